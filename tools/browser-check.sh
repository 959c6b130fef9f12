#!/bin/sh
# Renders raft-testlog-viz pages in headless Chromium, saves screenshots
# and checks the DOM that Chromium parsed: for every page, one timeline
# lane per server, each with state spans (and commit marks if the test
# logged commits), as many request arrows as the tool matched sends and
# as the log has receipts, one table row per entry; for the index page,
# one row per test, every link resolving to a page. Fails loudly, with
# what it saw, when a check fails.
#
# Usage: tools/browser-check.sh [LOG... ]
#   LOG   go test -v or cmocka logs, read as one run (default: part 1's
#         TestElectionFollowerComesBack and part 2's
#         TestCommitWithDisconnectionAndRecover, both Go logs in tools/testdata)
#   SHOTS=DIR  where the screenshots go (default build): DIR/viz-NAME.png per
#         test, DIR/viz-NAME-scrolled.png for the first, DIR/viz-index.png
# Run from the repository's root, after `make tools/raft-testlog-viz`.
set -eu

shots=${SHOTS:-build}
tool=tools/raft-testlog-viz
[ $# -gt 0 ] || set -- tools/testdata/go-TestElectionFollowerComesBack.log \
	tools/testdata/go-TestCommitWithDisconnectionAndRecover.log

fail() {
	echo "browser-check: FAIL: $*" >&2
	exit 1
}

[ -x "$tool" ] || fail "$tool is missing: run make tools/raft-testlog-viz"
for log in "$@"; do
	[ -r "$log" ] || fail "cannot read the log $log"
done
tools/ensure-deps.sh chromium || fail "chromium is not installed (see above)"

work=$(mktemp -d /tmp/viz-browser.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$shots"

cat "$@" >"$work/run.log"
"$tool" -o "$work/pages" <"$work/run.log" >"$work/out" || fail "$tool failed on $*"

# One fresh profile per run; the timeout because a headless browser that
# hangs must not hang make.
chrome() {
	profile=$(mktemp -d "$work/profile.XXXXXX")
	timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$profile" "$@"
}

is_png() {
	[ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]
}

# check_page PAGE ENTRIES LOG SHOT: the checks of one test's page.
check_page() {
	page=$1 entries=$2 tlog=$3 shot=$4
	name=$(basename "$page" .html)
	dom="$work/$name.dom"
	chrome --dump-dom "file://$page" >"$dom" 2>"$work/dom.err" ||
		fail "$name: chromium --dump-dom exited with $?: $(tail -n 5 "$work/dom.err")"
	[ -s "$dom" ] || fail "$name: chromium dumped an empty DOM"
	rm -f "$shot"
	chrome --screenshot="$shot" --window-size=1400,900 "file://$page" >"$work/shot.out" 2>&1 ||
		fail "$name: chromium --screenshot exited with $?: $(tail -n 5 "$work/shot.out")"
	is_png "$shot" || fail "$name: no PNG screenshot written to $shot"

	servers=$(sed -n 's/.*<svg class="timeline" data-servers="\([0-9]*\)".*/\1/p' "$dom" | head -n 1)
	[ -n "$servers" ] || fail "$name: no timeline <svg> in the DOM"
	[ "$servers" -gt 0 ] || fail "$name: the timeline has no servers"
	lanes=$(grep -o '<g class="lane" data-server="[0-9]*"' "$dom" | wc -l)
	[ "$lanes" -eq "$servers" ] || fail "$name: $lanes lanes for $servers servers"
	# State spans per lane: the rects between a lane's <g> and the next group.
	awk -v n="$servers" '
		/<g class="lane" data-server="/ { match($0, /data-server="[0-9]+"/); cur = substr($0, RSTART + 13, RLENGTH - 14) + 0; next }
		/<g class="(lm|rpcs)"/ { cur = -1 }
		/<rect class="span [FCLD]"/ && cur >= 0 { spans[cur]++ }
		END { for (i = 0; i < n; i++) if (!spans[i]) { print "lane " i " has no state span"; exit 1 } }' \
		"$dom" >"$work/lanes.out" || fail "$name: $(cat "$work/lanes.out")"
	spans=$(grep -o '<rect class="span [FCLD]"' "$dom" | wc -l)
	# Commit marks on every lane, if the test committed anything.
	commit_lines=$(grep -c 'setting commitIndex=\|leader sets commitIndex := ' "$tlog" || true)
	marks=$(grep -o '<path class="cmt" data-server="[0-9]*"' "$dom" | wc -l)
	if [ "$commit_lines" -gt 0 ]; then
		for id in $(seq 0 $((servers - 1))); do
			grep -q "<path class=\"cmt\" data-server=\"$id\"" "$dom" ||
				fail "$name: lane $id has no commit mark ($commit_lines commit lines in the log)"
		done
	else
		[ "$marks" -eq 0 ] || fail "$name: $marks commit marks but no commit line in the log"
	fi
	# Arrows: one per matched send, as the tool counted them, and as
	# many as the log has receipts (less those it found no send for).
	arrows=$(grep -o '<line class="rq [a-z]*"' "$dom" | wc -l)
	matched=$(sed -n 's/.*<svg class="timeline"[^>]* data-matched="\([0-9]*\)".*/\1/p' "$dom" | head -n 1)
	receipts=$(grep -cE '^ *[0-9:.]+ \[[0-9]+\] (RequestVote|AppendEntries): \{' "$tlog" || true)
	orphans=$(sed -n 's/.*; \([0-9]*\) receipts without a send.*/\1/p' "$dom" | head -n 1)
	[ "$arrows" -eq "$matched" ] || fail "$name: $arrows arrows for $matched matched sends"
	[ "$arrows" -eq $((receipts - ${orphans:-0})) ] ||
		fail "$name: $arrows arrows for $receipts receipts in the log (${orphans:-0} without a send)"
	[ "$arrows" -gt 0 ] || fail "$name: no arrows"
	grep -q '<table class="log hdr" data-servers="'"$servers"'"' "$dom" || fail "$name: no log table for $servers servers"
	heads=$(grep -o '<th>[0-9]*</th>' "$dom" | wc -l)
	[ "$heads" -eq "$servers" ] || fail "$name: table: $heads server columns for $servers servers"
	# Each entry is a row, plus the header row and maybe the end row.
	rows=$(grep -o '<tr' "$dom" | wc -l)
	[ "$rows" -ge $((entries + 1)) ] || fail "$name: table: $rows rows for $entries entries"
	[ "$rows" -le $((entries + 2)) ] || fail "$name: table: $rows rows for $entries entries"
	grep -q '<script' "$dom" && fail "$name: the page has a script"
	# The layer switches work without a script: the heartbeats' switch off
	# hides them (CSS only), checked in a probe copy below for the first page.
	grep -q '<input type="checkbox" class="ly" id="ly-hb" checked=""' "$dom" ||
		fail "$name: no heartbeat layer switch"
	echo "browser-check: $name: $servers lanes, $spans state spans, $marks commit marks," \
		"$arrows arrows = $matched matched sends = $receipts receipts - ${orphans:-0}," \
		"$rows table rows ($entries entries); screenshot $shot"
}

# Pages in the order the tool emitted them, each with its entry count.
sed -n 's/.*; entries: \([0-9]*\)$/\1/p' "$work/out" >"$work/entries"
sed -n 's|^\.\.\. Emitted file://||p' "$work/out" | grep -v '/index\.html$' >"$work/pages.txt"
[ -s "$work/pages.txt" ] || fail "the tool emitted no page: $(cat "$work/out")"
[ "$(wc -l <"$work/pages.txt")" -eq "$(wc -l <"$work/entries")" ] || fail "pages and entry lines differ: $(cat "$work/out")"
i=0
for log in "$@"; do
	i=$((i + 1))
	page=$(sed -n "${i}p" "$work/pages.txt")
	entries=$(sed -n "${i}p" "$work/entries")
	[ -n "$page" ] || fail "no page for $log"
	check_page "$page" "$entries" "$log" "$shots/viz-$(basename "$page" .html).png"
done
first=$(head -n 1 "$work/pages.txt")

# The sticky header and a layer switch, checked in a probe copy of the
# first page (the page itself has no script): the body becomes a 900 px
# scroller (headless Chromium paints a scrolled body, not a scrolled
# window), scrolls half-way down, and records the offset and where the
# header row is (0 means sticky); then the heartbeat switch is turned off
# and the probe records whether a heartbeat arrow is still displayed.
probe="$work/probe.html"
sed 's|</body>|<script>var b = document.body; document.documentElement.style.overflow = "hidden"; b.style.height = "900px"; b.style.overflow = "auto"; b.scrollTop = b.scrollHeight / 2; var hb = document.querySelector("svg line.hb"), before = hb ? getComputedStyle(hb).display : "none"; document.getElementById("ly-hb").checked = false; var after = hb ? getComputedStyle(hb).display : "none"; b.setAttribute("data-probe", Math.round(b.scrollTop) + " " + Math.round(document.querySelector("table.log th").getBoundingClientRect().top) + " " + before + " " + after);</script></body>|' \
	"$first" >"$probe"
chrome --window-size=1400,900 --dump-dom "file://$probe" >"$work/probe.dom" 2>"$work/probe.err" ||
	fail "chromium --dump-dom of the probe exited with $?: $(tail -n 5 "$work/probe.err")"
scrolled="$shots/viz-$(basename "$first" .html)-scrolled.png"
chrome --screenshot="$scrolled" --window-size=1400,900 "file://$probe" \
	>"$work/probe.out" 2>&1 || fail "chromium --screenshot of the probe failed"
probe_vals=$(sed -n 's/.*data-probe="\([0-9-]*\) \([0-9-]*\) \([a-z]*\) \([a-z]*\)".*/\1 \2 \3 \4/p' "$work/probe.dom" | head -n 1)
[ -n "$probe_vals" ] || fail "the probe did not run"
set -- $probe_vals
[ "$1" -gt 0 ] || fail "the probe could not scroll the page (scrollTop=$1)"
[ "$2" -eq 0 ] || fail "the table header is not sticky: at y=$2 after scrolling $1 px"
[ "$3" = inline ] || fail "a heartbeat arrow is not displayed (display: $3)"
[ "$4" = none ] || fail "switching heartbeats off did not hide them (display: $4)"
echo "browser-check: header sticky after scrolling $1 px; heartbeat switch hides heartbeats;" \
	"screenshot $scrolled"

# The index: one row per test, every link to a page that exists.
index="$work/pages/index.html"
n_tests=$(wc -l <"$work/pages.txt")
if [ "$n_tests" -gt 1 ]; then
	[ -s "$index" ] || fail "no index.html for $n_tests tests"
	chrome --dump-dom "file://$index" >"$work/index.dom" 2>"$work/index.err" ||
		fail "chromium --dump-dom of the index exited with $?"
	chrome --screenshot="$shots/viz-index.png" --window-size=1400,400 "file://$index" \
		>"$work/index.out" 2>&1 || fail "chromium --screenshot of the index failed"
	is_png "$shots/viz-index.png" || fail "no PNG screenshot of the index"
	idx_rows=$(grep -o '<tr data-test' "$work/index.dom" | wc -l)
	[ "$idx_rows" -eq "$n_tests" ] || fail "index: $idx_rows rows for $n_tests tests"
	links=0
	for href in $(grep -o '<a href="[^"]*"' "$work/index.dom" | sed 's/<a href="\(.*\)"/\1/'); do
		[ -s "$work/pages/$href" ] || fail "index: link $href does not resolve"
		grep -qx "$work/pages/$href" "$work/pages.txt" || fail "index: link $href is not an emitted page"
		links=$((links + 1))
	done
	[ "$links" -eq "$n_tests" ] || fail "index: $links links for $n_tests tests"
	echo "browser-check: index: $idx_rows rows, $links links resolve; screenshot $shots/viz-index.png"
fi
echo "browser-check: ok"
