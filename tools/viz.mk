# tools/viz.mk: raft-testlog-viz, its tests and its end-to-end checks.
# Included by the top Makefile (before its all: rule), which defines CC,
# STRICT, TSAN_OPTIONS_RUN, the deps target and build-tsan/raft_test.
#
#   make tools/raft-testlog-viz   the tool (libc only)
#   make viz-test                 cmocka tests (ASan+UBSan) and CLI checks
#   make viz-e2e                  TestElectionBasic's real log -> page -> checks
#   make viz-bench                a 100,000-entry log must render in under 1 s
#   make browser-check            pages of a real part-1 and part-2 run of ours and
#                                 their index, in headless Chromium
#   make demo [RUN=Name] [DEMO_BIN=prog]
#                                 one test (default TestElectionFollowerComesBack)
#                                 -> /tmp/raftlog -> /tmp/Name.html

VIZ_SRC := tools/raft-testlog-viz.c
VIZ_HDR := tools/raft-testlog-viz.h
VIZ_TESTDATA := tools/testdata
# The Go original's logs of parts 1-3 (checked when present) and the Go
# tool's stdout line for each (tools/testdata/go-reference-counts.txt).
VIZ_REFERENCE ?= ../shared/reference
# Recursive (=): pkg-config runs only after the deps check.
VIZ_CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka)
VIZ_CMOCKA_LIBS = $(shell pkg-config --libs cmocka)
# The unit tests run under ASan (leaks included) and UBSan, every time.
VIZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

ALL_BINS += tools/raft-testlog-viz
TEST_EXTRAS += viz-test viz-e2e

.PHONY: viz-test viz-e2e viz-bench browser-check demo

# Explicit rules: the top Makefile's build/%.o pattern would make the
# tool depend on the core's headers.
build/tools/raft-testlog-viz.o: $(VIZ_SRC) $(VIZ_HDR) | deps
	@mkdir -p $(@D)
	$(CC) $(STRICT) -O2 -c $< -o $@

tools/raft-testlog-viz: build/tools/raft-testlog-viz.o
	$(CC) $^ -o $@

build/tools/viz_test: tools/viz_test.c $(VIZ_SRC) $(VIZ_HDR) | deps
	@mkdir -p $(@D)
	$(CC) $(STRICT) -O1 $(VIZ_SAN) -DVIZ_NO_MAIN $(VIZ_CMOCKA_CFLAGS) \
		tools/viz_test.c $(VIZ_SRC) $(VIZ_CMOCKA_LIBS) -o $@

# The unit tests, then the command line: exit codes and messages that the
# tests (built without main) cannot see.
viz-test: build/tools/viz_test tools/raft-testlog-viz | deps
	./build/tools/viz_test
	@set -e; d=$$(mktemp -d /tmp/viz-test.XXXXXX); \
	if tools/raft-testlog-viz -o "$$d" < /dev/null 2> "$$d/err"; then \
		echo "viz-test: FAIL: an empty log was accepted" >&2; exit 1; fi; \
	grep -q 'no test found' "$$d/err" || { echo "viz-test: FAIL: no 'no test found' message:" >&2; cat "$$d/err" >&2; exit 1; }; \
	if tools/raft-testlog-viz -o "$$d/missing/sub" < $(VIZ_TESTDATA)/go-TestElectionBasic.log > /dev/null 2> "$$d/err"; then \
		echo "viz-test: FAIL: an uncreatable -o DIR was accepted" >&2; exit 1; fi; \
	grep -q 'cannot create directory' "$$d/err" || { echo "viz-test: FAIL: bad -o message:" >&2; cat "$$d/err" >&2; exit 1; }; \
	cat $(VIZ_TESTDATA)/go-TestElectionBasic.log $(VIZ_TESTDATA)/go-TestElectionBasic.log \
		$(VIZ_TESTDATA)/cmocka-TestElectionFollowerComesBack.log \
		| tools/raft-testlog-viz -o "$$d" > "$$d/out"; \
	grep -qx 'PASS TestElectionBasic map\[0:true 1:true 2:true\] ; entries: 45' "$$d/out"; \
	grep -qx 'PASS TestElectionBasic_1 map\[0:true 1:true 2:true\] ; entries: 45' "$$d/out"; \
	grep -qx "\.\.\. Emitted file://$$d/TestElectionBasic_1.html" "$$d/out"; \
	grep -q '^PASS TestElectionFollowerComesBack .*; entries: 156$$' "$$d/out"; \
	grep -qx 'PASS (3 tests: 3 passed, 0 failed, 0 skipped, 0 incomplete)' "$$d/out"; \
	test -s "$$d/TestElectionFollowerComesBack.html"; \
	grep -qx "\.\.\. Emitted file://$$d/index\.html" "$$d/out"; \
	[ $$(grep -c '<tr data-test>' "$$d/index.html") -eq 3 ]; \
	grep -qx '\.\.\. rpcs: 46 sent, 29 arrived, 0 dropped, 0 delayed, 17 never arrived' "$$d/out"; \
	rm -rf "$$d"; echo "viz-test: command line checks passed"
	@set -e; ref="$(VIZ_REFERENCE)"; \
	if [ ! -d "$$ref" ]; then echo "viz-test: $$ref not found: reference logs not checked"; exit 0; fi; \
	d=$$(mktemp -d /tmp/viz-ref.XXXXXX); n=0; \
	while IFS='	' read -r log want; do \
		case "$$log" in '#'*|'') continue;; esac; \
		tools/raft-testlog-viz -o "$$d" < "$$ref/$$log" > "$$d/out" 2> "$$d/err" || \
			{ echo "viz-test: FAIL: $$log did not render:" >&2; cat "$$d/err" >&2; exit 1; }; \
		[ ! -s "$$d/err" ] || { echo "viz-test: FAIL: $$log: messages:" >&2; cat "$$d/err" >&2; exit 1; }; \
		grep -qxF "$$want" "$$d/out" || { echo "viz-test: FAIL: $$log: the Go tool says '$$want', we say:" >&2; \
			grep 'entries:' "$$d/out" >&2; exit 1; }; \
		n=$$((n + 1)); \
	done < $(VIZ_TESTDATA)/go-reference-counts.txt; \
	rm -rf "$$d"; echo "viz-test: $$n reference logs of parts 1-3 rendered, entry counts equal to the Go tool's"

# A real run of the C test program, rendered and checked.
viz-e2e: tools/raft-testlog-viz build-tsan/raft_test | deps
	@set -e; d=$$(mktemp -d /tmp/viz-e2e.XXXXXX); \
	rc=0; TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" ./build-tsan/raft_test -run '^TestElectionBasic$$' \
		> "$$d/raftlog" 2>&1 || rc=$$?; \
	tools/raft-testlog-viz -o "$$d" < "$$d/raftlog" | tee "$$d/out"; \
	p="$$d/TestElectionBasic.html"; \
	fail() { echo "viz-e2e: FAIL: $$1 (log and page kept in $$d)" >&2; exit 1; }; \
	[ $$rc -eq 0 ] || fail "raft_test exited with $$rc"; \
	grep -q '^PASS TestElectionBasic ' "$$d/out" || fail "the tool did not report PASS TestElectionBasic"; \
	grep -q '<svg class="timeline" data-servers="3"' "$$p" || fail "timeline does not name 3 servers"; \
	grep -q '<table class="log hdr" data-servers="3"' "$$p" || fail "table does not name 3 servers"; \
	[ $$(grep -c '<g class="lane" data-server="[012]"' "$$p") -eq 3 ] || fail "not 3 timeline lanes"; \
	grep -q 'data-state="Leader" data-term="[1-9]' "$$p" || fail "no leader span with a term"; \
	grep -q '<td class="L">[^<]*becomes Leader' "$$p" || fail "no table cell coloured Leader"; \
	rm -rf "$$d"; echo "viz-e2e: passed"

# 158 copies of part 2's TestCommitsWithLeaderDisconnects (5 servers):
# 100,172 entries, some 25,000 RPCs.
viz-bench: tools/raft-testlog-viz | deps
	@set -e; d=$$(mktemp -d /tmp/viz-bench.XXXXXX); \
	awk -v n=158 -f $(VIZ_TESTDATA)/repeat-log.awk $(VIZ_TESTDATA)/go-TestCommitsWithLeaderDisconnects.log > "$$d/big.log"; \
	t0=$$(date +%s%N); tools/raft-testlog-viz -o "$$d" < "$$d/big.log" > "$$d/out"; t1=$$(date +%s%N); \
	ms=$$(( (t1 - t0) / 1000000 )); entries=$$(sed -n 's/.*; entries: //p' "$$d/out"); \
	echo "viz-bench: $$entries entries rendered in $$ms ms ($$(cat "$$d"/*Repeated.html | wc -c) bytes)"; \
	rm -rf "$$d"; [ "$$entries" -ge 100000 ] && [ $$ms -lt 1000 ] || { echo "viz-bench: FAIL: over 1 s" >&2; exit 1; }

# Real runs of ours: part 1's TestElectionFollowerComesBack and part 2's
# TestCommitWithDisconnectionAndRecover, each log rendered and checked.
BROWSER_LOGS := build/viz-c-part1.log build/viz-c-part2.log
build/viz-c-part1.log: build-tsan/raft_test
	@mkdir -p $(@D)
	TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" ./build-tsan/raft_test -run '^TestElectionFollowerComesBack$$' > $@ 2>&1
build/viz-c-part2.log: build-tsan/part2/raft_test
	@mkdir -p $(@D)
	TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" ./build-tsan/part2/raft_test -run '^TestCommitWithDisconnectionAndRecover$$' > $@ 2>&1

browser-check: tools/raft-testlog-viz $(BROWSER_LOGS) | deps
	tools/browser-check.sh $(BROWSER_LOGS)

# The log goes to the terminal and to /tmp/raftlog (stdout and stderr
# both, in order); the page is rendered even if the test failed. The test
# is looked up in every part's suite (`-list`, as go test -list), so RUN
# names a test of any part; DEMO_BIN=prog picks the program by hand.
DEMO_RUN = $(if $(RUN),$(RUN),TestElectionFollowerComesBack)
DEMO_BINS ?= build-tsan/raft_test $(if $(wildcard part2/part2.mk),build-tsan/part2/raft_test) \
	$(if $(wildcard part3/part3.mk),build-tsan/part3/raft_test)
demo: tools/raft-testlog-viz $(or $(DEMO_BIN),$(DEMO_BINS)) | deps
	@bin='$(DEMO_BIN)'; \
	for b in $(DEMO_BINS); do [ -n "$$bin" ] && break; \
		[ "$$(./$$b -list '^$(DEMO_RUN)$$')" = '$(DEMO_RUN)' ] && bin=$$b; done; \
	[ -n "$$bin" ] || { echo "demo: no test named $(DEMO_RUN) in $(DEMO_BINS)" >&2; exit 1; }; \
	echo "demo: $(DEMO_RUN) from $$bin"; \
	{ TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" ./$$bin -run '^$(DEMO_RUN)$$' 2>&1; \
		echo $$? > /tmp/raftlog.rc; } | tee /tmp/raftlog
	tools/raft-testlog-viz < /tmp/raftlog
	@echo "open file:///tmp/$(DEMO_RUN).html"
	@rc=$$(cat /tmp/raftlog.rc); rm -f /tmp/raftlog.rc; [ "$$rc" -eq 0 ] || { echo "demo: the test program exited with $$rc" >&2; exit 1; }
