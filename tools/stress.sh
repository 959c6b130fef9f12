#!/bin/sh
# Runs the TSan test program again and again, per mode, and stops a mode at
# its first failure, keeping that run's log.
#
# Usage: tools/stress.sh [-k] [-p NICE] [-n N] [-m MODE] [-o DIR] [-r REGEX] [-t SECS] PROGRAM
#   -k        keep going after a failure (count failures, keep every failing log)
#   -n N      runs per mode (default 5)
#   -m MODE   default | unreliable | reelection | all (default all: the three
#             in turn; a mode that fails does not stop the next)
#   -o DIR    logs and summary (default /tmp/raft-stress); each campaign gets
#             DIR/YYYYmmdd-HHMMSS-PID/
#   -r REGEX  passed to the program as -run REGEX
#   -s REGEX  passed to the program as -skip REGEX
#   -t SECS   per-run time limit (default 300): a hung run counts as a failure
#   -p NICE   run the program under nice -n NICE (negative needs root): on a
#             shared machine, so that other work does not starve its timers
#
# The program is copied into the campaign directory first, so a rebuild of
# build-tsan/raft_test while the campaign runs does not change what is tested.
# Passing runs' logs are deleted (runs.txt keeps each run's status, time
# and load average); a failing run's log is kept, and its path
# is printed. The load average (uptime) is recorded before and after each
# mode, since timing-sensitive tests share 2 cores with other work.
# Exit status: 0 if every mode passed N/N, 1 otherwise, 2 on usage errors.
set -u

n=5
mode=all
outdir=/tmp/raft-stress
regex=
skip=
limit=300
keep_going=false
niceness=

usage()
{
	sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while getopts kp:n:m:o:r:s:t:h opt; do
	case $opt in
	n) n=$OPTARG ;;
	m) mode=$OPTARG ;;
	o) outdir=$OPTARG ;;
	r) regex=$OPTARG ;;
	s) skip=$OPTARG ;;
	t) limit=$OPTARG ;;
	k) keep_going=true ;;
	p) niceness=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
prog=$1
case $n in '' | *[!0-9]*) echo "stress: -n wants a number, got '$n'" >&2; exit 2 ;; esac
case $mode in
default | unreliable | reelection) modes=$mode ;;
all) modes="default unreliable reelection" ;;
*) echo "stress: unknown mode '$mode' (default|unreliable|reelection|all)" >&2; exit 2 ;;
esac
[ -x "$prog" ] || { echo "stress: $prog is not an executable" >&2; exit 2; }

dir=$outdir/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$dir" || exit 2
cp "$prog" "$dir/raft_test" || exit 2
summary=$dir/summary.txt
say()
{
	echo "$*" | tee -a "$summary"
}

say "stress: $n run(s) per mode of $prog ($(sha1sum < "$prog" | cut -c1-12))${regex:+ -run '$regex'}${skip:+ -skip '$skip'}"
say "stress: tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git status --porcelain 2>/dev/null | grep -q . && echo ' (with uncommitted changes)'); logs in $dir"
say "stress: TSAN_OPTIONS=${TSAN_OPTIONS:-}${niceness:+; under nice -n $niceness}"

status=0
for m in $modes; do
	case $m in
	default) envs="" ;;
	unreliable) envs="RAFT_UNRELIABLE_RPC=1" ;;
	reelection) envs="RAFT_FORCE_MORE_REELECTION=1" ;;
	esac
	say "stress: mode $m${envs:+ ($envs)}: start, load $(uptime | sed 's/.*load average: //')"
	start=$(date +%s)
	pass=0
	slowest=0
	i=1
	while [ "$i" -le "$n" ]; do
		log=$dir/$m-$i.log
		t0=$(date +%s)
		# RAFT_* are cleared first, so the caller's environment cannot mix modes.
		env -u RAFT_UNRELIABLE_RPC -u RAFT_FORCE_MORE_REELECTION $envs \
			timeout -k 10 "$limit" ${niceness:+nice -n "$niceness"} "$dir/raft_test" ${regex:+-run "$regex"} ${skip:+-skip "$skip"} > "$log" 2>&1
		rc=$?
		t=$(($(date +%s) - t0))
		# One line per run: mode, run, exit status, seconds, load average.
		echo "$m $i $rc $t $(cut -d' ' -f1-3 /proc/loadavg)" >> "$dir/runs.txt"
		[ "$t" -gt "$slowest" ] && slowest=$t
		if [ "$rc" -ne 0 ]; then
			what="exit status $rc"
			[ "$rc" -eq 124 ] && what="timed out after ${limit}s"
			[ "$rc" -eq 66 ] && what="ThreadSanitizer report (exit 66)"
			say "stress: mode $m: run $i FAILED ($what, ${t}s), load $(uptime | sed 's/.*load average: //')"
			grep -E '^\[  FAILED  \]|^\[  ERROR   \]|Failure!|WARNING: ThreadSanitizer|ERROR: [A-Za-z]*Sanitizer' "$log" | sort -u | head -10 | sed 's/^/stress:   /' | tee -a "$summary"
			say "stress: mode $m: log kept: $log"
			status=1
			$keep_going || break
		else
			rm -f "$log"
			pass=$((pass + 1))
		fi
		i=$((i + 1))
	done
	wall=$(($(date +%s) - start))
	say "stress: mode $m: $pass/$((i - 1)) passed (of $n asked) in ${wall}s (slowest run ${slowest}s), load $(uptime | sed 's/.*load average: //')"
done
say "stress: summary in $summary"
exit $status
