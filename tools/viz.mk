# tools/viz.mk: raft-testlog-viz, its tests and its end-to-end checks.
# Included by the top Makefile (before its all: rule), which defines CC,
# STRICT, TSAN_OPTIONS_RUN, the deps target and build-tsan/raft_test.
#
#   make tools/raft-testlog-viz   the tool (libc only)
#   make viz-test                 cmocka tests (ASan+UBSan) and CLI checks
#   make viz-e2e                  TestElectionBasic's real log -> page -> checks
#   make browser-check            a page rendered by headless Chromium
#   make demo                     TestElectionFollowerComesBack -> /tmp/raftlog -> page

VIZ_SRC := tools/raft-testlog-viz.c
VIZ_HDR := tools/raft-testlog-viz.h
VIZ_TESTDATA := tools/testdata
# Recursive (=): pkg-config runs only after the deps check.
VIZ_CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka)
VIZ_CMOCKA_LIBS = $(shell pkg-config --libs cmocka)
# The unit tests run under ASan (leaks included) and UBSan, every time.
VIZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

ALL_BINS += tools/raft-testlog-viz
TEST_EXTRAS += viz-test viz-e2e

.PHONY: viz-test viz-e2e browser-check demo

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
	rm -rf "$$d"; echo "viz-test: command line checks passed"

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

browser-check: tools/raft-testlog-viz | deps
	tools/browser-check.sh

# The log goes to the terminal and to /tmp/raftlog (stdout and stderr
# both, in order); the page is rendered even if the test failed.
demo: tools/raft-testlog-viz build-tsan/raft_test | deps
	@{ TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" ./build-tsan/raft_test \
		-run '^TestElectionFollowerComesBack$$' 2>&1; echo $$? > /tmp/raftlog.rc; } | tee /tmp/raftlog
	tools/raft-testlog-viz < /tmp/raftlog
	@echo "open file:///tmp/TestElectionFollowerComesBack.html"
	@rc=$$(cat /tmp/raftlog.rc); rm -f /tmp/raftlog.rc; [ "$$rc" -eq 0 ] || { echo "demo: raft_test exited with $$rc" >&2; exit 1; }
