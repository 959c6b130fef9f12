# tools/bench.mk: raft-bench, the benchmarks against the Go original (issue 4).
# Included by the top Makefile (before its all: rule), which defines CC,
# CFLAGS_BASE, LDLIBS_BASE, CORE_SRCS, CORE_HDRS and the deps target.
#
#   make tools/raft-bench    the core and the bench at -O2, no sanitizer
#   make bench               run it: a markdown table on stdout, one JSON
#                            line per measurement in $(BENCH_OUT)
#   make bench BENCH_ARGS='rpc idle'   only some groups (see raft-bench -h)
#   make tools/part2-bench   part 2's bench (commit latency, throughput, idle cost and RSS,
#                            issue 9), which `make bench` runs after raft-bench;
#                            PART2_BENCH_ARGS='latency3' for some groups only
#   make tools/part3-bench   part 3's (issue 10): the same source with
#                            RAFT_PART=3, plus latency without the proxy's
#                            delay, a 100,000-entry log and file storage;
#                            PART3_BENCH_ARGS='file3' for some groups only
#
# Not part of `make test`: it takes about three minutes (part 2's and part 3's about a minute each) and wants a quiet
# machine.

BENCH_DIR := build-bench
BENCH_OUT ?= bench-results.jsonl
# The servers' own lines (`listening at`, `[TEST] Disconnect`) go here, so
# that stdout carries the table only.
BENCH_LOG ?= $(BENCH_DIR)/raft-bench.log
BENCH_ARGS ?=
PART2_BENCH_ARGS ?=
PART2_BENCH_LOG ?= $(BENCH_DIR)/part2-bench.log
PART3_BENCH_ARGS ?=
PART3_BENCH_LOG ?= $(BENCH_DIR)/part3-bench.log
# CM debug logging is off at run time (raft-bench sets RAFT_DEBUG=0).
BENCH_CFLAGS = $(CFLAGS_BASE) -O2

ALL_BINS += tools/raft-bench tools/part2-bench tools/part3-bench

.PHONY: bench bench-clean
clean: bench-clean

$(BENCH_DIR)/%.o: %.c $(CORE_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -c $< -o $@

tools/raft-bench: $(patsubst %.c,$(BENCH_DIR)/%.o,$(CORE_SRCS) tools/raft-bench.c tools/bench_stats.c)
	$(CC) $^ $(LDLIBS_BASE) -o $@

# Part 2's objects (part2/part2.mk has PART2_*): their symbols clash with
# part 1's, so they make a program of their own.
$(BENCH_DIR)/part2/%.o: part2/%.c $(PART2_HDRS) $(LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -c $< -o $@

$(BENCH_DIR)/tools/part2-bench.o: $(PART2_HDRS)

tools/part2-bench: $(patsubst %.c,$(BENCH_DIR)/%.o,part2/raft.c part2/server.c $(LIB_SRCS) tools/part2-bench.c tools/bench_stats.c)
	$(CC) $^ $(LDLIBS_BASE) -o $@

# Part 3's bench is part2-bench.c again, with RAFT_PART=3 and part3/'s
# objects (PART3_* from part3/part3.mk).
$(BENCH_DIR)/part3/%.o: part3/%.c $(PART3_HDRS) $(LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -c $< -o $@

$(BENCH_DIR)/tools/part3-bench.o: tools/part2-bench.c $(PART3_HDRS) $(LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -DRAFT_PART=3 -c $< -o $@

tools/part3-bench: $(patsubst %.c,$(BENCH_DIR)/%.o,part3/raft.c part3/server.c part3/storage.c $(LIB_SRCS)) \
		$(BENCH_DIR)/tools/part3-bench.o $(BENCH_DIR)/tools/bench_stats.o
	$(CC) $^ $(LDLIBS_BASE) -o $@

# The samples, summaries and JSON lines every bench shares.
$(patsubst %,$(BENCH_DIR)/tools/%.o,raft-bench part2-bench part3-bench bench_stats): \
	tools/bench_stats.h

bench: tools/raft-bench tools/part2-bench tools/part3-bench build-tsan/raft_test
	@echo "bench: $$(nproc) cores, load $$(cut -d' ' -f1-3 /proc/loadavg); server log in $(BENCH_LOG)"
	@BENCH_OUT='$(BENCH_OUT)' ./tools/raft-bench $(BENCH_ARGS) 2> '$(BENCH_LOG)' || \
		{ echo "bench: raft-bench failed; last lines of $(BENCH_LOG):" >&2; \
		  tail -n 20 '$(BENCH_LOG)' >&2; exit 1; }
	@echo
	@BENCH_OUT='$(BENCH_OUT)' ./tools/part2-bench $(PART2_BENCH_ARGS) 2> '$(PART2_BENCH_LOG)' || \
		{ echo "bench: part2-bench failed; last lines of $(PART2_BENCH_LOG):" >&2; \
		  tail -n 20 '$(PART2_BENCH_LOG)' >&2; exit 1; }
	@echo
	@BENCH_OUT='$(BENCH_OUT)' ./tools/part3-bench $(PART3_BENCH_ARGS) 2> '$(PART3_BENCH_LOG)' || \
		{ echo "bench: part3-bench failed; last lines of $(PART3_BENCH_LOG):" >&2; \
		  tail -n 20 '$(PART3_BENCH_LOG)' >&2; exit 1; }

bench-clean:
	rm -rf $(BENCH_DIR)
