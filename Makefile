# raft-c: leader election from eliben/raft part1, in C11 with pthreads.
#
#   make                       build the test program and the tools
#   make test                  run every test under ThreadSanitizer
#   make test RUN=REGEX        run the tests whose names match (as go test -run)
#   make clean
#
# clang is the compiler: its ThreadSanitizer runtime (v3) needs far less
# memory per live thread than gcc 12's (see README.md, "Build").

CC := clang
DEB_PKGS := clang make pkg-config libcmocka-dev libbsd-dev
PKGS := cmocka libbsd-overlay

STRICT := -std=c11 -Wall -Wextra -Wpedantic -Werror -g -D_GNU_SOURCE
# Recursive (=) on purpose: pkg-config runs only after the deps check.
DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS))
DEP_LIBS = $(shell pkg-config --libs $(PKGS))
CFLAGS_BASE = $(STRICT) -pthread -I. $(DEP_CFLAGS)
LDLIBS_BASE = $(DEP_LIBS) -pthread

TSAN_FLAGS := -O1 -fsanitize=thread -fno-omit-frame-pointer
TSAN_OPTIONS_RUN := halt_on_error=1 second_deadlock_stack=1

# lib/: the runtime every part links (Go's runtime and standard library).
LIB_SRCS := lib/clock.c lib/log.c lib/go.c lib/chan.c lib/rpc.c lib/testing.c lib/commit_monitor.c \
	lib/robust.c
LIB_HDRS := $(LIB_SRCS:.c=.h)
CORE_SRCS := raft.c server.c harness.c $(LIB_SRCS)
CORE_HDRS := raft.h server.h harness.h $(LIB_HDRS)

# Fragments append their programs to ALL_BINS, each part's suite target to
# PART_TESTS (test-part1, test-part2, ...), and the phony targets that
# `make test` runs after the suites (when RUN is empty) to TEST_EXTRAS.
ALL_BINS := build/raft_test
PART_TESTS := test-lib test-part1
TEST_EXTRAS :=

# A test binary that hangs past this is killed, with a message: shutdown
# waits 2 s at most per server, so no passing suite comes near it.
TEST_TIMEOUT_S ?= 900
# run_test PROGRAM ARGS: under TSan's options and the hang timeout.
run_test = TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" timeout -k 10 $(TEST_TIMEOUT_S) $(1) || \
	{ rc=$$?; [ $$rc -eq 124 ] && echo "make: $(1) still running after $(TEST_TIMEOUT_S) s: killed (a hang)" >&2; exit $$rc; }
# The flags of go test, for every part's suite.
GO_TEST_FLAGS = $(if $(RUN),-run '$(RUN)') $(if $(COUNT),-count $(COUNT))

-include part2/part2.mk
-include part3/part3.mk
-include tools/viz.mk
-include tools/bench.mk
-include mk/robust.mk
-include mk/gates.mk

.PHONY: all test test-lib test-partlib test-part1 clean deps
all: $(ALL_BINS)

# Order-only prerequisite of every compile: checks (and as root installs)
# the Debian packages, before pkg-config is asked anything.
deps:
	@tools/ensure-deps.sh $(DEB_PKGS)

build/%.o: %.c $(CORE_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -O1 -c $< -o $@

build/raft_test: $(patsubst %.c,build/%.o,$(CORE_SRCS) raft_test.c)
	$(CC) $^ $(LDLIBS_BASE) -o $@

build-tsan/%.o: %.c $(CORE_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(TSAN_FLAGS) -c $< -o $@

build-tsan/raft_test: $(patsubst %.c,build-tsan/%.o,$(CORE_SRCS) raft_test.c)
	$(CC) $(TSAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

# stdout and stderr both go to the terminal (or to `2>&1 | tee`): the test
# program writes both unbuffered, so the lines keep their order.
# PART=N runs part N's suite only (and no extras), as `go test ./partN`.
test:
	@$(MAKE) --no-print-directory $(if $(PART),test-part$(PART),$(PART_TESTS))
ifeq ($(RUN)$(PART),)
	@$(if $(TEST_EXTRAS),$(MAKE) --no-print-directory $(TEST_EXTRAS))
endif

build-tsan/lib/lib_test: $(patsubst %.c,build-tsan/%.o,$(LIB_SRCS) lib/lib_test.c)
	$(CC) $(TSAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

test-partlib: test-lib
test-lib: build-tsan/lib/lib_test
	@$(call run_test,./build-tsan/lib/lib_test $(GO_TEST_FLAGS))

test-part1: build-tsan/raft_test
	@$(call run_test,./build-tsan/raft_test $(GO_TEST_FLAGS))

clean:
	rm -rf build build-tsan build-asan build-fuzz $(filter-out build/%,$(ALL_BINS))

