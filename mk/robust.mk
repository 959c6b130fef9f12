# mk/robust.mk: robustness tests and the frame decoder's fuzzer.
# Included by the top Makefile (before its all: rule), which defines CC,
# CFLAGS_BASE, LDLIBS_BASE, TSAN_FLAGS, TSAN_OPTIONS_RUN, the deps target
# and the build-tsan/%.o pattern rule.
#
#   make robust-test            hostile peers and exhaustion, under TSan
#   make fuzz [FUZZ_SECONDS=N]  libFuzzer on the frame decoder (default 60 s)
#   make fuzz-corpus            rewrite the seed corpus in fuzz/corpus/

FUZZ_SECONDS ?= 60
# libFuzzer with ASan (leaks included) and UBSan, which aborts on the first
# report so that the fuzzer records it as a crash.
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJS = $(patsubst %.c,build-fuzz/%.o,raft.c server.c $(LIB_SRCS) fuzz/frame_fuzz.c)

TEST_EXTRAS += robust-test

.PHONY: robust-test fuzz fuzz-corpus

build-tsan/robust_test: $(patsubst %.c,build-tsan/%.o,$(CORE_SRCS) robust_test.c)
	$(CC) $(TSAN_FLAGS) $^ $(LDLIBS_BASE) -o $@

robust-test: build-tsan/robust_test
	TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" ./build-tsan/robust_test

build-fuzz/%.o: %.c $(CORE_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

build-fuzz/frame_fuzz: $(FUZZ_OBJS)
	$(CC) -fsanitize=fuzzer $(FUZZ_SAN) $^ $(LDLIBS_BASE) -o $@

# New inputs go to build-fuzz/corpus; fuzz/corpus (the seeds) is only read.
fuzz: build-fuzz/frame_fuzz
	@mkdir -p build-fuzz/corpus
	./build-fuzz/frame_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=256 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/ build-fuzz/corpus fuzz/corpus

build/fuzz/make_corpus: $(patsubst %.c,build/%.o,raft.c server.c $(LIB_SRCS) fuzz/make_corpus.c)
	$(CC) $^ $(LDLIBS_BASE) -o $@

fuzz-corpus: build/fuzz/make_corpus
	@mkdir -p fuzz/corpus
	./build/fuzz/make_corpus fuzz/corpus
