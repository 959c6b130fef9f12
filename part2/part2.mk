# part2/part2.mk: part 2 of the blog (commands and log replication), as
# eliben/raft's part2/. Included by the top Makefile (before its all: rule),
# which defines CC, CFLAGS_BASE, LDLIBS_BASE, TSAN_FLAGS, LIB_SRCS,
# LIB_HDRS, run_test, GO_TEST_FLAGS, PART_TESTS, ALL_BINS, the deps target
# and the build/%.o and build-tsan/%.o rules the lib/ objects come from.
#
#   make test PART=2 [RUN=REGEX] [COUNT=N]   part 2's suite under TSan
#   make build/part2/raft_test               the same without TSan
#   make robust-test-part2                   hostile peers (part2/robust_test.c)

# part2's sources include "raft.h" etc.: the compiler looks in part2/ first.
PART2_SRCS := part2/raft.c part2/server.c part2/harness.c
PART2_HDRS := part2/raft.h part2/server.h part2/harness.h
# The runtime part 2 links: lib/, as every part.
PART2_LIB_SRCS := $(LIB_SRCS)
PART2_LIB_HDRS := $(LIB_HDRS)

ALL_BINS += build/part2/raft_test
PART_TESTS += test-part2

.PHONY: test-part2

build/part2/%.o: part2/%.c $(PART2_HDRS) $(PART2_LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -O1 -c $< -o $@

build-tsan/part2/%.o: part2/%.c $(PART2_HDRS) $(PART2_LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(TSAN_FLAGS) -c $< -o $@

build/part2/raft_test: $(patsubst %.c,build/%.o,$(PART2_SRCS) part2/raft_test.c $(PART2_LIB_SRCS))
	$(CC) $^ $(LDLIBS_BASE) -o $@

build-tsan/part2/raft_test: $(patsubst %.c,build-tsan/%.o,$(PART2_SRCS) part2/raft_test.c $(PART2_LIB_SRCS))
	$(CC) $(TSAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

test-part2: build-tsan/part2/raft_test
	@$(call run_test,./build-tsan/part2/raft_test $(GO_TEST_FLAGS))

# ---- robustness (part2/robust_test.c): hostile AppendEntries frames --------
#
#   make robust-test-part2      under TSan; `make test` runs it after the suites

TEST_EXTRAS += robust-test-part2

.PHONY: robust-test-part2

build-tsan/part2/robust_test: $(patsubst %.c,build-tsan/%.o,$(PART2_SRCS) part2/robust_test.c $(PART2_LIB_SRCS))
	$(CC) $(TSAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

robust-test-part2: build-tsan/part2/robust_test
	@$(call run_test,./build-tsan/part2/robust_test $(if $(RUN),-run '$(RUN)'))
