#!/bin/sh
# Renders a raft-testlog-viz page in headless Chromium, saves a screenshot
# and checks the DOM that Chromium parsed: timeline lanes, state spans,
# table rows. Fails loudly, with what it saw, when a check fails.
#
# Usage: tools/browser-check.sh [LOG [SCREENSHOT [FRAGMENT]]]
#   LOG         default tools/testdata/go-TestElectionFollowerComesBack.log
#   SCREENSHOT  default build/viz-browser-check.png
#   FRAGMENT    e.g. r60: screenshot scrolled to that row (sticky header)
# Run from the repository's root, after `make tools/raft-testlog-viz`.
set -eu

log=${1:-tools/testdata/go-TestElectionFollowerComesBack.log}
shot=${2:-build/viz-browser-check.png}
fragment=${3:-}
tool=tools/raft-testlog-viz

fail() {
	echo "browser-check: FAIL: $*" >&2
	exit 1
}

[ -x "$tool" ] || fail "$tool is missing: run make tools/raft-testlog-viz"
[ -r "$log" ] || fail "cannot read the log $log"
tools/ensure-deps.sh chromium || fail "chromium is not installed (see above)"

work=$(mktemp -d /tmp/viz-browser.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$tool" -o "$work/pages" <"$log" >"$work/out" || fail "$tool failed on $log"
page=$(sed -n 's|^\.\.\. Emitted file://||p' "$work/out" | head -n 1)
entries=$(sed -n 's/.*; entries: \([0-9]*\)$/\1/p' "$work/out" | head -n 1)
[ -n "$page" ] && [ -n "$entries" ] || fail "the tool emitted no page: $(cat "$work/out")"

# One fresh profile per run; the timeout because a headless browser that
# hangs must not hang make.
chrome() {
	profile=$(mktemp -d "$work/profile.XXXXXX")
	timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$profile" "$@"
}

chrome --dump-dom "file://$page" >"$work/dom.html" 2>"$work/dom.err" ||
	fail "chromium --dump-dom exited with $?: $(tail -n 5 "$work/dom.err")"
mkdir -p "$(dirname "$shot")"
rm -f "$shot"
url="file://$page"
[ -z "$fragment" ] || url="$url#$fragment"
chrome --screenshot="$shot" --window-size=1400,900 "$url" >"$work/shot.out" 2>&1 ||
	fail "chromium --screenshot exited with $?: $(tail -n 5 "$work/shot.out")"

dom="$work/dom.html"
[ -s "$dom" ] || fail "chromium dumped an empty DOM"
servers=$(sed -n 's/.*<svg class="timeline" data-servers="\([0-9]*\)".*/\1/p' "$dom" | head -n 1)
[ -n "$servers" ] || fail "no timeline <svg> in the DOM"
[ "$servers" -gt 0 ] || fail "the timeline has no servers"
lanes=$(grep -o '<g class="lane" data-server="[0-9]*"' "$dom" | wc -l)
[ "$lanes" -eq "$servers" ] || fail "timeline: $lanes lanes for $servers servers"
spans=$(grep -o '<rect class="span [FCLD]"' "$dom" | wc -l)
[ "$spans" -ge "$servers" ] || fail "timeline: only $spans state spans"
grep -q '<table class="log hdr" data-servers="'"$servers"'"' "$dom" || fail "no log table for $servers servers"
heads=$(grep -o '<th>[0-9]*</th>' "$dom" | wc -l)
[ "$heads" -eq "$servers" ] || fail "table: $heads server columns for $servers servers"
# Each entry is a row, plus the header row and maybe the end row.
rows=$(grep -o '<tr' "$dom" | wc -l)
[ "$rows" -ge $((entries + 1)) ] || fail "table: $rows rows for $entries entries"
[ "$rows" -le $((entries + 2)) ] || fail "table: $rows rows for $entries entries"
grep -q '<script' "$dom" && fail "the page has a script"

# The sticky header, checked in a probe copy of the page (the page itself
# has no script): the body becomes a 900 px scroller (headless Chromium
# paints a scrolled body, not a scrolled window), scrolls half-way down,
# and records the offset and where the header row is: 0 means sticky.
probe="$work/probe.html"
sed 's|</body>|<script>var b = document.body; document.documentElement.style.overflow = "hidden"; b.style.height = "900px"; b.style.overflow = "auto"; b.scrollTop = b.scrollHeight / 2; b.setAttribute("data-probe", Math.round(b.scrollTop) + " " + Math.round(document.querySelector("table.log th").getBoundingClientRect().top));</script></body>|' \
	"$page" >"$probe"
chrome --window-size=1400,900 --dump-dom "file://$probe" >"$work/probe.dom" 2>"$work/probe.err" ||
	fail "chromium --dump-dom of the probe exited with $?: $(tail -n 5 "$work/probe.err")"
chrome --screenshot="${shot%.png}-scrolled.png" --window-size=1400,900 "file://$probe" \
	>"$work/probe.out" 2>&1 || fail "chromium --screenshot of the probe failed"
probe_vals=$(sed -n 's/.*data-probe="\([0-9-]*\) \([0-9-]*\)".*/\1 \2/p' "$work/probe.dom" | head -n 1)
[ -n "$probe_vals" ] || fail "the sticky-header probe did not run"
set -- $probe_vals
[ "$1" -gt 0 ] || fail "the probe could not scroll the page (scrollTop=$1)"
[ "$2" -eq 0 ] || fail "the table header is not sticky: at y=$2 after scrolling $1 px"

[ -s "$shot" ] || fail "no screenshot written to $shot"
magic=$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')
[ "$magic" = "89504e470d0a1a0a" ] || fail "$shot is not a PNG"

echo "browser-check: ok: $servers lanes, $spans state spans, $rows table rows" \
	"($entries entries), header sticky after scrolling $1 px;" \
	"screenshots $shot ($(wc -c <"$shot") bytes) and ${shot%.png}-scrolled.png"
