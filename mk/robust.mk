# mk/robust.mk: robustness tests and the frame decoder's fuzzer.
# Included by the top Makefile (before its all: rule), which defines CC,
# CFLAGS_BASE, LDLIBS_BASE, TSAN_FLAGS, TSAN_OPTIONS_RUN, the deps target
# and the build-tsan/%.o pattern rule.
#
#   make robust-test            hostile peers and exhaustion, under TSan
#   make fuzz [FUZZ_SECONDS=N]  libFuzzer on part 1's frame decoder, then on
#                               part 2's and part 3's (fuzz/frame_fuzz_part2.c,
#                               built twice), N seconds each (default 30)
#   make fuzz-corpus            rewrite the seed corpora in fuzz/corpus/,
#                               fuzz/corpus-part2/ and fuzz/corpus-part3/

FUZZ_SECONDS ?= 30
# libFuzzer with ASan (leaks included) and UBSan, which aborts on the first
# report so that the fuzzer records it as a crash.
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJS = $(patsubst %.c,build-fuzz/%.o,raft.c server.c $(LIB_SRCS) fuzz/frame_fuzz.c)

TEST_EXTRAS += robust-test

.PHONY: robust-test fuzz fuzz-part1 fuzz-part2 fuzz-part3 fuzz-corpus

build-tsan/robust_test: $(patsubst %.c,build-tsan/%.o,$(CORE_SRCS) robust_test.c)
	$(CC) $(TSAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

robust-test: build-tsan/robust_test
	TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" ./build-tsan/robust_test

build-fuzz/%.o: %.c $(CORE_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

build-fuzz/frame_fuzz: $(FUZZ_OBJS)
	$(CC) -fsanitize=fuzzer $(FUZZ_SAN) $^ $(LDLIBS_BASE) -o $@

# Part 2's codec: part2/'s objects (their symbols clash with part 1's).
FUZZ2_OBJS = $(patsubst %.c,build-fuzz/%.o,part2/raft.c part2/server.c $(LIB_SRCS) fuzz/frame_fuzz_part2.c)

build-fuzz/part2/%.o: part2/%.c $(PART2_HDRS) $(LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

build-fuzz/fuzz/frame_fuzz_part2.o: $(PART2_HDRS)

build-fuzz/frame_fuzz_part2: $(FUZZ2_OBJS)
	$(CC) -fsanitize=fuzzer $(FUZZ_SAN) $^ $(LDLIBS_BASE) -o $@

# Part 3's codec (AppendEntries replies carry ConflictIndex/ConflictTerm):
# part 2's fuzzer and corpus maker again, with RAFT_PART=3 and part3/'s
# objects.
FUZZ3_OBJS = $(patsubst %.c,build-fuzz/%.o,part3/raft.c part3/server.c part3/storage.c $(LIB_SRCS)) \
	build-fuzz/fuzz/frame_fuzz_part3.o

build-fuzz/part3/%.o: part3/%.c $(PART3_HDRS) $(LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

build-fuzz/fuzz/frame_fuzz_part3.o: fuzz/frame_fuzz_part2.c $(PART3_HDRS) $(LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -DRAFT_PART=3 -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

build-fuzz/frame_fuzz_part3: $(FUZZ3_OBJS)
	$(CC) -fsanitize=fuzzer $(FUZZ_SAN) $^ $(LDLIBS_BASE) -o $@

fuzz: fuzz-part1 fuzz-part2 fuzz-part3

# New inputs go to build-fuzz/corpus*; fuzz/corpus* (the seeds) are only read.
fuzz-part1: build-fuzz/frame_fuzz
	@mkdir -p build-fuzz/corpus
	./build-fuzz/frame_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=256 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/ build-fuzz/corpus fuzz/corpus

build/fuzz/make_corpus: $(patsubst %.c,build/%.o,raft.c server.c $(LIB_SRCS) fuzz/make_corpus.c)
	$(CC) $^ $(LDLIBS_BASE) -o $@

# An AppendEntries of a few entries is a few hundred bytes: room for a dozen.
fuzz-part2: build-fuzz/frame_fuzz_part2
	@mkdir -p build-fuzz/corpus-part2
	./build-fuzz/frame_fuzz_part2 -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=2048 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/part2- build-fuzz/corpus-part2 \
		fuzz/corpus-part2

build/fuzz/make_corpus_part2: $(patsubst %.c,build/%.o,part2/raft.c part2/server.c $(LIB_SRCS) fuzz/make_corpus_part2.c)
	$(CC) $^ $(LDLIBS_BASE) -o $@

build/fuzz/make_corpus_part2.o: $(PART2_HDRS)

fuzz-part3: build-fuzz/frame_fuzz_part3
	@mkdir -p build-fuzz/corpus-part3
	./build-fuzz/frame_fuzz_part3 -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=2048 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/part3- build-fuzz/corpus-part3 \
		fuzz/corpus-part3

build/fuzz/make_corpus_part3: $(patsubst %.c,build/%.o,part3/raft.c part3/server.c part3/storage.c $(LIB_SRCS)) \
		build/fuzz/make_corpus_part3.o
	$(CC) $^ $(LDLIBS_BASE) -o $@

build/fuzz/make_corpus_part3.o: fuzz/make_corpus_part2.c $(PART3_HDRS) $(LIB_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -DRAFT_PART=3 -O1 -c $< -o $@

fuzz-corpus: build/fuzz/make_corpus build/fuzz/make_corpus_part2 build/fuzz/make_corpus_part3
	@mkdir -p fuzz/corpus fuzz/corpus-part2 fuzz/corpus-part3
	./build/fuzz/make_corpus fuzz/corpus
	./build/fuzz/make_corpus_part2 fuzz/corpus-part2
	./build/fuzz/make_corpus_part3 fuzz/corpus-part3
