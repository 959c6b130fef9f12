# repeat-log.awk: makes a big log for timing raft-testlog-viz. Prints the
# entries of one go test -v log (the first test in it) N times in a row
# under one "=== RUN   Name", each copy shifted to start where the last
# one ended, so that a 100,000-entry page can be timed with real words.
#
#   awk -v n=158 -f tools/testdata/repeat-log.awk LOG > big.log
function us(ts, a) {
	split(ts, a, /[:.]/)
	return ((a[1] * 60 + a[2]) * 60 + a[3]) * 1000000 + a[4]
}
function fmt(t) {
	t = t % 86400000000
	return sprintf("%02d:%02d:%02d.%06d", int(t / 3600000000), int(t / 60000000) % 60,
		       int(t / 1000000) % 60, t % 1000000)
}
/^=== RUN/ { if (!name) name = $3; next }
/^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]+ \[/ {
	t[m] = us($1)
	sub(/^[^ ]+ /, "")
	rest[m++] = $0
}
END {
	if (!n)
		n = 1
	print "=== RUN   " name "Repeated"
	span = t[m - 1] - t[0] + 1000
	for (k = 0; k < n; k++)
		for (i = 0; i < m; i++)
			print fmt(t[i] + k * span) " " rest[i]
	print "--- PASS: " name "Repeated (1.00s)"
}
