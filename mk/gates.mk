# mk/gates.mk: quality gates. Included by the top Makefile before its all:
# rule; it defines CC, STRICT, CFLAGS_BASE, LDLIBS_BASE, DEP_CFLAGS,
# TSAN_OPTIONS_RUN, CORE_SRCS, CORE_HDRS and the deps target.
#
#   make asan [RUN=REGEX]          every part's suite under ASan + UBSan + LSan
#                                  (build-asan/raft_test, build-asan/part2/raft_test)
#   make asan-robust [RUN=REGEX]   robust_test.c and part2/robust_test.c under the same
#   make lint                      cppcheck, then clang-tidy one file per process
#   make format-check              clang-format --dry-run --Werror
#   make gates                     asan, lint and format-check
#   make stress [N=5] [MODE=all] [PART=2]
#                                  the TSan suite (part 1's, or PART's) N times per mode, stops at the
#                                  first failure and keeps its log; MODE is
#                                  default, unreliable, reelection or all;
#                                  STRESS_DIR (default /tmp/raft-stress) holds the logs;
#                                  NICE=-10 runs it under nice -n -10 (root);
#                                  KEEP_GOING=1 counts failures instead of stopping

.PHONY: asan asan-part1 asan-part2 asan-part3 asan-robust lint lint-deps cppcheck clang-tidy format-check gates stress

# ---- AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer -----------

ASAN_FLAGS := -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
# detect_leaks=1 is LSan (on by default on x86_64 Linux; explicit here).
ASAN_OPTIONS_RUN := detect_leaks=1 halt_on_error=1 detect_stack_use_after_return=1 \
	strict_string_checks=1
UBSAN_OPTIONS_RUN := print_stacktrace=1 halt_on_error=1

build-asan/%.o: %.c $(CORE_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(ASAN_FLAGS) -c $< -o $@

build-asan/raft_test: $(patsubst %.c,build-asan/%.o,$(CORE_SRCS) raft_test.c)
	$(CC) $(ASAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

asan: asan-part1 asan-part2 asan-part3

asan-part1: build-asan/raft_test
	ASAN_OPTIONS="$(ASAN_OPTIONS_RUN)" UBSAN_OPTIONS="$(UBSAN_OPTIONS_RUN)" \
		./build-asan/raft_test $(if $(RUN),-run '$(RUN)')

# Part 2 (part2/part2.mk): its own objects, with part2/'s headers.
build-asan/part2/%.o: part2/%.c $(PART2_HDRS) $(PART2_LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(ASAN_FLAGS) -c $< -o $@

build-asan/part2/raft_test: $(patsubst %.c,build-asan/%.o,$(PART2_SRCS) part2/raft_test.c $(PART2_LIB_SRCS))
	$(CC) $(ASAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

asan-part2: build-asan/part2/raft_test
	ASAN_OPTIONS="$(ASAN_OPTIONS_RUN)" UBSAN_OPTIONS="$(UBSAN_OPTIONS_RUN)" \
		./build-asan/part2/raft_test $(if $(RUN),-run '$(RUN)')

# Part 3 (part3/part3.mk): the Raft tests (without the three that race in Go
# too, as make test), the storage tests and the crash test, whose
# raft_server children are built under the same sanitizers.
build-asan/part3/%.o: part3/%.c $(PART3_HDRS) $(PART3_LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(ASAN_FLAGS) -c $< -o $@

build-asan/part3/raft_test: $(patsubst %.c,build-asan/%.o,$(PART3_SRCS) part3/raft_test.c $(PART3_LIB_SRCS))
	$(CC) $(ASAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

build-asan/part3/storage_test: $(patsubst %.c,build-asan/%.o,$(PART3_STORAGE_TEST_SRCS))
	$(CC) $(ASAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

build-asan/part3/raft_server: $(patsubst %.c,build-asan/%.o,$(PART3_SERVER_SRCS))
	$(CC) $(ASAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

build-asan/part3/crash_test: $(patsubst %.c,build-asan/%.o,$(PART3_CRASH_TEST_SRCS)) \
		build-asan/part3/raft_server
	$(CC) $(ASAN_FLAGS) $(filter %.o,$^) $(LDLIBS_BASE) -o $@

asan-part3: build-asan/part3/raft_test build-asan/part3/storage_test build-asan/part3/crash_test
	ASAN_OPTIONS="$(ASAN_OPTIONS_RUN)" UBSAN_OPTIONS="$(UBSAN_OPTIONS_RUN)" \
		./build-asan/part3/raft_test $(if $(RUN),-run '$(RUN)',-skip '$(PART3_UPSTREAM_RACY)')
	ASAN_OPTIONS="$(ASAN_OPTIONS_RUN)" UBSAN_OPTIONS="$(UBSAN_OPTIONS_RUN)" \
		./build-asan/part3/storage_test $(if $(RUN),-run '$(RUN)')
	ASAN_OPTIONS="$(ASAN_OPTIONS_RUN)" UBSAN_OPTIONS="$(UBSAN_OPTIONS_RUN)" \
		./build-asan/part3/crash_test $(if $(RUN),-run '$(RUN)')

# robust_test (robust_test.c, mk/robust.mk) under the same sanitizers.
build-asan/robust_test: $(patsubst %.c,build-asan/%.o,$(CORE_SRCS) robust_test.c)
	$(CC) $(ASAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

build-asan/part2/robust_test: $(patsubst %.c,build-asan/%.o,$(PART2_SRCS) part2/robust_test.c $(PART2_LIB_SRCS))
	$(CC) $(ASAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

asan-robust: build-asan/robust_test build-asan/part2/robust_test
	ASAN_OPTIONS="$(ASAN_OPTIONS_RUN)" UBSAN_OPTIONS="$(UBSAN_OPTIONS_RUN)" \
		./build-asan/robust_test $(if $(RUN),-run '$(RUN)')
	ASAN_OPTIONS="$(ASAN_OPTIONS_RUN)" UBSAN_OPTIONS="$(UBSAN_OPTIONS_RUN)" \
		./build-asan/part2/robust_test $(if $(RUN),-run '$(RUN)')

# ---- lint and format ------------------------------------------------------------

# Every C file of the repository, picked up as files are added. Part 2's
# files (part2/, and the fuzzer, corpus maker and bench built on them) define
# the same structs and functions as part 1's, differently: cppcheck checks
# each part in its own run, or it reports ctuOneDefinitionRuleViolation.
LINT_SRCS_PART2 = $(sort $(wildcard part2/*.c fuzz/*part2*.c tools/part2-*.c))
LINT_SRCS_PART3 = $(sort $(wildcard part3/*.c fuzz/*part3*.c tools/part3-*.c))
LINT_SRCS_PART1 = $(filter-out $(LINT_SRCS_PART2) $(LINT_SRCS_PART3),$(sort $(wildcard *.c lib/*.c tools/*.c fuzz/*.c)))
LINT_SRCS = $(LINT_SRCS_PART1) $(LINT_SRCS_PART2) $(LINT_SRCS_PART3)
LINT_HDRS = $(sort $(wildcard *.h lib/*.h part2/*.h part3/*.h tools/*.h fuzz/*.h))
# The compile flags clang-tidy needs (after --); the same for every file.
LINT_CFLAGS = $(STRICT) -pthread -I. $(DEP_CFLAGS)
# cppcheck does not read system headers: it is given libbsd's sys/queue.h
# (TAILQ_HEAD etc. are syntax errors to it otherwise). readdirCalled is off:
# it recommends readdir_r, which glibc deprecates; readdir is thread-safe
# on a DIR * that one thread owns, as every caller here does.
CPPCHECK_FLAGS = --std=c11 --enable=warning,performance,portability --inline-suppr \
	--error-exitcode=1 -q --library=posix -D_GNU_SOURCE -I. \
	--include=$(shell pkg-config --variable=includedir libbsd)/bsd/sys/queue.h \
	--suppress=readdirCalled

lint-deps: | deps
	@tools/ensure-deps.sh clang-tidy cppcheck clang-format

lint: cppcheck clang-tidy

cppcheck: | lint-deps
	cppcheck $(CPPCHECK_FLAGS) $(LINT_SRCS_PART1)
	cppcheck $(CPPCHECK_FLAGS) $(LINT_SRCS_PART2)
	cppcheck $(CPPCHECK_FLAGS) $(LINT_SRCS_PART3)

# One stamp per file (re-checked when the file, any header or .clang-tidy
# changes), each its own clang-tidy process: clang-tidy 14 gives false
# clang-analyzer-valist warnings when one process gets several files.
LINT_STAMPS = $(patsubst %.c,build/lint/%.tidy,$(LINT_SRCS))

clang-tidy: $(LINT_STAMPS)

build/lint/%.tidy: %.c $(LINT_HDRS) .clang-tidy | lint-deps
	@mkdir -p $(@D)
	clang-tidy --quiet $< -- $(LINT_CFLAGS)
	@touch $@

format-check: | lint-deps
	clang-format --dry-run --Werror $(LINT_SRCS) $(LINT_HDRS)

gates: asan lint format-check

# ---- stress -----------------------------------------------------------------

# N and MODE are read, never defined here: other fragments may use the names.
STRESS_DIR ?= /tmp/raft-stress

# PART=2 stresses part 2's suite (build-tsan/part2/raft_test), PART=3 part
# 3's Raft tests (without the three that race in Go too, as make test, unless
# RUN names tests); no PART, or PART=1, part 1's (build-tsan/raft_test).
STRESS_PROG = $(if $(filter-out 1,$(or $(PART),1)),build-tsan/part$(PART)/raft_test,build-tsan/raft_test)

stress: $(STRESS_PROG)
	TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" tools/stress.sh -n '$(or $(N),5)' -m '$(or $(MODE),all)' \
		-o '$(STRESS_DIR)' $(if $(RUN),-r '$(RUN)') $(if $(NICE),-p '$(NICE)') \
		$(if $(and $(filter 3,$(PART)),$(if $(RUN),,y)),-s '$(PART3_UPSTREAM_RACY)') \
		$(if $(KEEP_GOING),-k) $(STRESS_PROG)
