/*
 * raft-testlog-viz: turns the log of a Raft test run into one HTML page per
 * test, with a timeline of every server's state over real time and the
 * Go tool's table (one column per server, each cell coloured by that
 * server's state at that moment).
 *
 *   tools/raft-testlog-viz [-o DIR] < /tmp/raftlog
 *
 * Mirrors eliben/raft's tools/raft-testlog-viz (Go): same test splitting,
 * same entry count, same "_1", "_2" suffixes for repeated test names, same
 * state rules ("becomes Leader" and friends). Differences, on purpose:
 * cmocka output is read too; all log text is HTML-escaped; file names are
 * sanitized; a test without an end marker is INCOMPLETE instead of blank;
 * malformed lines are skipped instead of ending the program.
 *
 * DESIGN: one thread. The whole log is parsed first (struct viz_log, one
 * struct viz_test per test); then each page is written through a struct
 * viz_buf that flushes to the file every 64 KiB, so a page of a big log is
 * never held in memory whole. Server states are replayed from the entries
 * (viz_replay_apply) by each part of the page that needs them.
 */
#include "raft-testlog-viz.h"

#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG	     "raft-testlog-viz"
#define DAY_US	     (24LL * 3600 * 1000000)
#define BUF_FLUSH_AT ((size_t)64 * 1024)
/* How far back an end or "=== CONT" line looks for its test: enough for
 * nested subtests and paused parallel tests, and bounded so that a log of
 * many unmatched end lines stays linear. */
#define LOOKBACK_TESTS 64

const char *viz_state_name(enum viz_state st)
{
	static const char *const names[] = {
		[VIZ_NONE] = "None",	 [VIZ_FOLLOWER] = "Follower", [VIZ_CANDIDATE] = "Candidate",
		[VIZ_LEADER] = "Leader", [VIZ_DEAD] = "Dead",
	};
	return names[st];
}

/* The one-letter CSS class of a state, short because the table repeats
 * it in every cell of a page that can have a million cells. */
static const char *state_class(enum viz_state st)
{
	static const char *const classes[] = {
		[VIZ_NONE] = "N",   [VIZ_FOLLOWER] = "F", [VIZ_CANDIDATE] = "C",
		[VIZ_LEADER] = "L", [VIZ_DEAD] = "D",
	};
	return classes[st];
}

const char *viz_status_name(enum viz_status st)
{
	static const char *const names[] = {
		[VIZ_INCOMPLETE] = "INCOMPLETE",
		[VIZ_PASS] = "PASS",
		[VIZ_FAIL] = "FAIL",
		[VIZ_SKIP] = "SKIP",
		[VIZ_ERROR] = "ERROR",
	};
	return names[st];
}

/* ---- Output buffer ---------------------------------------------------- */

static bool buf_reserve(struct viz_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return false;
	if (b->cap - b->len >= n)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->err = ENOMEM;
			return false;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (!p) {
		b->err = ENOMEM;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void viz_buf_put(struct viz_buf *b, const char *s, size_t n)
{
	if (n == 0 || !buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	if (b->sink && b->len >= BUF_FLUSH_AT)
		(void)viz_buf_flush(b); /* an error sticks in b->err */
}

void viz_buf_puts(struct viz_buf *b, const char *s)
{
	viz_buf_put(b, s, strlen(s));
}

void viz_buf_printf(struct viz_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (!b->err)
			b->err = EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		viz_buf_put(b, small, (size_t)n);
		return;
	}
	if (!buf_reserve(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	(void)vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap); /* sized above */
	va_end(ap);
	b->len += (size_t)n;
}

/* The entity for a byte that may not appear raw in HTML text or in a
 * quoted attribute, or NULL. Control characters (a cut or binary line)
 * become U+FFFD so that the page stays valid. */
static const char *escape_of(unsigned char c)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '"':
		return "&quot;";
	case '\'':
		return "&#39;";
	case '\t':
		return NULL;
	default:
		return c < 0x20 || c == 0x7f ? "&#xFFFD;" : NULL;
	}
}

void viz_buf_escape(struct viz_buf *b, const char *s, size_t n)
{
	size_t run = 0; /* start of the bytes not written yet */
	const char *ent;

	for (size_t i = 0; i < n; i++) {
		ent = escape_of((unsigned char)s[i]);
		if (!ent)
			continue;
		viz_buf_put(b, s + run, i - run);
		viz_buf_puts(b, ent);
		run = i + 1;
	}
	viz_buf_put(b, s + run, n - run);
}

int viz_buf_flush(struct viz_buf *b)
{
	if (b->err)
		return -b->err;
	if (!b->sink || b->len == 0)
		return 0;
	errno = 0;
	if (fwrite(b->p, 1, b->len, b->sink) != b->len) {
		b->err = errno ? errno : EIO;
		return -b->err;
	}
	b->len = 0;
	return 0;
}

void viz_buf_free(struct viz_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- Line parsing ------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t skip_blanks(const char *s, size_t len, size_t i)
{
	while (i < len && is_blank(s[i]))
		i++;
	return i;
}

static size_t trim_end(const char *s, size_t len)
{
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	return len;
}

/* Reads min..max digits at s[*i] into *val. */
static bool take_digits(const char *s, size_t len, size_t *i, int min, int max, long *val)
{
	int n = 0;

	*val = 0;
	while (n < max && *i < len && is_digit(s[*i])) {
		*val = *val * 10 + (s[*i] - '0');
		(*i)++;
		n++;
	}
	return n >= min;
}

static bool take_char(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return false;
	(*i)++;
	return true;
}

/* Fraction digits after the '.', as microseconds. */
static bool take_fraction(const char *s, size_t len, size_t *i, long long *us)
{
	size_t start = *i;
	long digits;
	int n;

	if (!take_digits(s, len, i, 1, 9, &digits))
		return false;
	*us = digits;
	for (n = (int)(*i - start); n < 6; n++)
		*us *= 10;
	for (; n > 6; n--)
		*us /= 10;
	return true;
}

/* Parses "HH:MM:SS.uuuuuu" (1-2 hour digits, 0-9 fraction digits) at the
 * start of s; returns its length, or 0 if s does not start with one. */
static size_t parse_timestamp(const char *s, size_t len, long long *us)
{
	long h, m, sec;
	long long frac = 0;
	size_t i = 0;

	if (!take_digits(s, len, &i, 1, 2, &h) || !take_char(s, len, &i, ':') ||
	    !take_digits(s, len, &i, 2, 2, &m) || !take_char(s, len, &i, ':') ||
	    !take_digits(s, len, &i, 2, 2, &sec))
		return 0;
	if (h > 23 || m > 59 || sec > 60)
		return 0;
	if (take_char(s, len, &i, '.') && !take_fraction(s, len, &i, &frac))
		return 0;
	*us = ((h * 60 + m) * 60 + sec) * 1000000LL + frac;
	return i;
}

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

/* Parses the "[id]" of an entry: a server number below VIZ_MAX_SERVERS or
 * TEST. Other ids are not entries (the Go tool would stop on them). As the
 * Go tool does for parts 4 and 5, "[kv N]" (a key/value service) is folded
 * into server N and "[clientNNN]" into TEST; *fold is then true and the id
 * is kept in front of the message. */
/* A server number below VIZ_MAX_SERVERS, the whole of s. */
static bool parse_server_id(const char *s, size_t len, int *id)
{
	long v = 0;
	size_t i = 0;

	if (len == 0 || len > 4 || !take_digits(s, len, &i, 1, 4, &v) || i != len ||
	    v >= VIZ_MAX_SERVERS)
		return false;
	*id = (int)v;
	return true;
}

static bool parse_id(const char *s, size_t len, int *id, bool *fold)
{
	size_t i = 0;

	*fold = false;
	if (len == 4 && memcmp(s, "TEST", 4) == 0) {
		*id = VIZ_ID_TEST;
		return true;
	}
	if (len >= 6 && len <= 32 && memcmp(s, "client", 6) == 0) {
		for (i = 6; i < len && is_word_char(s[i]);)
			i++;
		*id = VIZ_ID_TEST;
		*fold = true;
		return i == len;
	}
	if (len > 3 && memcmp(s, "kv ", 3) == 0) {
		*fold = true;
		return parse_server_id(s + 3, len - 3, id);
	}
	return parse_server_id(s, len, id);
}

/* An entry line is "HH:MM:SS.uuuuuu [id] message", as matched by the Go
 * tool's ([0-9:.]+) \[(\w+)\] (.*) but anchored at the line's start (after
 * blanks), so that text inside a message never starts an entry. On
 * success fills e's time, id and ts, and *msg_off. */
static bool parse_entry(const char *s, size_t len, struct viz_entry *e, size_t *msg_off,
			size_t *fold_off, size_t *fold_len)
{
	size_t i = skip_blanks(s, len, 0), n;
	const char *close;
	bool fold;

	n = parse_timestamp(s + i, len - i, &e->t_us);
	if (n == 0)
		return false;
	memcpy(e->ts, s + i, n);
	e->ts[n] = '\0';
	i += n;
	if (!take_char(s, len, &i, ' ') || !take_char(s, len, &i, '['))
		return false;
	close = memchr(s + i, ']', len - i);
	if (!close || !parse_id(s + i, (size_t)(close - (s + i)), &e->id, &fold))
		return false;
	*fold_off = i;
	*fold_len = fold ? (size_t)(close - (s + i)) : 0;
	i = (size_t)(close - s) + 1;
	if (!take_char(s, len, &i, ' '))
		return false;
	*msg_off = i;
	return true;
}

/* cmocka's "[ RUN      ] Name": tag in brackets, padded with blanks.
 * On a match *rest is the trimmed text after the bracket. */
static bool match_cmocka(const char *s, size_t len, const char *tag, const char **rest,
			 size_t *rest_len)
{
	size_t tl = strlen(tag), i;

	if (len == 0 || s[0] != '[')
		return false;
	i = skip_blanks(s, len, 1);
	if (len - i < tl || memcmp(s + i, tag, tl) != 0)
		return false;
	i = skip_blanks(s, len, i + tl);
	if (!take_char(s, len, &i, ']'))
		return false;
	i = skip_blanks(s, len, i);
	*rest = s + i;
	*rest_len = trim_end(s + i, len - i);
	return true;
}

/* go test -v's "=== RUN   Name" (also "=== CONT", "=== NAME"). */
static bool match_go_marker(const char *s, size_t len, const char *word, const char **rest,
			    size_t *rest_len)
{
	size_t wl = strlen(word), i;

	if (len < 4 + wl || memcmp(s, "=== ", 4) != 0 || memcmp(s + 4, word, wl) != 0)
		return false;
	i = 4 + wl;
	if (i < len && !is_blank(s[i]))
		return false;
	i = skip_blanks(s, len, i);
	*rest = s + i;
	*rest_len = trim_end(s + i, len - i);
	return true;
}

/* A test's start; *fmt tells which format it was in. */
static bool match_run(const char *s, size_t len, const char **name, size_t *n, enum viz_format *fmt)
{
	if (match_go_marker(s, len, "RUN", name, n))
		*fmt = VIZ_FMT_GO;
	else if (match_cmocka(s, len, "RUN", name, n))
		*fmt = VIZ_FMT_CMOCKA;
	else
		return false;
	return *n > 0;
}

/* "=== CONT  Name" and "=== NAME  Name": the following lines belong to
 * that (parallel) test again. */
static bool match_switch(const char *s, size_t len, const char **name, size_t *n)
{
	return (match_go_marker(s, len, "CONT", name, n) ||
		match_go_marker(s, len, "NAME", name, n)) &&
	       *n > 0;
}

/* The "(0.31s)" after a go test status line's name. */
static double parse_go_secs(const char *s, size_t len)
{
	char tmp[32];
	char *end;
	double v;

	if (len < 4 || len >= sizeof(tmp) || s[0] != '(' || memcmp(s + len - 2, "s)", 2) != 0)
		return -1;
	memcpy(tmp, s + 1, len - 3);
	tmp[len - 3] = '\0';
	v = strtod(tmp, &end);
	return end != tmp && *end == '\0' && v >= 0 ? v : -1;
}

/* go test's "--- PASS: Name (0.31s)", possibly indented (subtests). */
static bool match_go_end(const char *s, size_t len, enum viz_status *st, const char **name,
			 size_t *n, double *secs)
{
	static const struct {
		const char *word;
		enum viz_status st;
	} words[] = { { "--- PASS:", VIZ_PASS },
		      { "--- FAIL:", VIZ_FAIL },
		      { "--- SKIP:", VIZ_SKIP } };
	size_t i = skip_blanks(s, len, 0), j;

	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		size_t wl = strlen(words[w].word);

		if (len - i < wl || memcmp(s + i, words[w].word, wl) != 0)
			continue;
		i = skip_blanks(s, len, i + wl);
		for (j = i; j < len && !is_blank(s[j]);)
			j++;
		*st = words[w].st;
		*name = s + i;
		*n = j - i;
		j = skip_blanks(s, len, j);
		*secs = parse_go_secs(s + j, trim_end(s + j, len - j));
		return *n > 0;
	}
	return false;
}

static bool match_cmocka_end(const char *s, size_t len, enum viz_status *st, const char **name,
			     size_t *n)
{
	static const struct {
		const char *tag;
		enum viz_status st;
	} tags[] = { { "OK", VIZ_PASS },
		     { "FAILED", VIZ_FAIL },
		     { "SKIPPED", VIZ_SKIP },
		     { "ERROR", VIZ_ERROR } };

	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		if (match_cmocka(s, len, tags[i].tag, name, n)) {
			*st = tags[i].st;
			return *n > 0;
		}
	}
	return false;
}

/* ---- Building the log -------------------------------------------------- */

/* Makes room for one more element; returns the (maybe moved) array, or
 * NULL with the old array untouched. */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return arr;
	ncap = *cap ? *cap * 2 : 16;
	p = reallocarray(arr, ncap, size);
	if (!p)
		return NULL;
	*cap = ncap;
	return p;
}

/* Test names are printed on the terminal: no control characters. */
static char name_char(char c)
{
	return (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
}

static char *copy_name(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = name_char(s[i]);
	p[n] = '\0';
	return p;
}

static bool name_eq(const char *stored, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (stored[i] == '\0' || stored[i] != name_char(s[i]))
			return false;
	}
	return stored[n] == '\0';
}

static char *copy_bytes(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static struct viz_test *cur_test(struct viz_log *log)
{
	return log->has_cur ? &log->tests[log->cur] : NULL;
}

static int start_test(struct viz_log *log, const char *name, size_t n, enum viz_format fmt)
{
	struct viz_test *tests, *t;

	tests = grow(log->tests, &log->cap_tests, log->n_tests, sizeof(*tests));
	if (!tests)
		return -ENOMEM;
	log->tests = tests;
	t = &tests[log->n_tests];
	memset(t, 0, sizeof(*t));
	t->name = copy_name(name, n);
	if (!t->name)
		return -ENOMEM;
	t->format = fmt;
	t->go_secs = -1;
	log->cur = log->n_tests++;
	log->has_cur = true;
	return 0;
}

/* The latest test called name, if it has not ended (or if any is fine). */
static struct viz_test *find_test(struct viz_log *log, const char *name, size_t n, bool any)
{
	size_t stop = log->n_tests > LOOKBACK_TESTS ? log->n_tests - LOOKBACK_TESTS : 0;

	for (size_t i = log->n_tests; i-- > stop;) {
		struct viz_test *t = &log->tests[i];

		if ((any || !t->ended) && name_eq(t->name, name, n))
			return t;
	}
	return NULL;
}

/* Lines after the end marker still go to the test, as in the Go tool:
 * they are its servers shutting down. The page marks where it ended. */
static bool end_test(struct viz_log *log, const char *name, size_t n, enum viz_status st,
		     double secs)
{
	struct viz_test *t = find_test(log, name, n, false);

	if (!t)
		return false;
	t->status = st;
	t->ended = true;
	t->end_at = t->n_entries;
	t->go_secs = secs;
	return true;
}

static void switch_test(struct viz_log *log, const char *name, size_t n)
{
	struct viz_test *t = find_test(log, name, n, true);

	if (t)
		log->cur = (size_t)(t - log->tests);
}

/* Entries are never out of order on the page: a step back of more than
 * half a day is midnight; a smaller one is two threads racing to write
 * their lines, and the later line is drawn at the earlier one's time. */
static void fix_time(struct viz_test *t, struct viz_entry *e)
{
	long long raw = e->t_us + t->day_us, prev;

	if (t->n_entries > 0 && raw + DAY_US / 2 < t->last_raw_us) {
		t->day_us += DAY_US;
		raw += DAY_US;
	}
	t->last_raw_us = raw;
	prev = t->n_entries > 0 ? t->entries[t->n_entries - 1].t_us : raw;
	e->t_us = raw < prev ? prev : raw;
}

/* The message is copied, after the folded id ("kv 1 ", "client7 ") if
 * there is one (pre_len > 0). */
static int add_entry(struct viz_log *log, struct viz_entry *e, const char *pre, size_t pre_len,
		     const char *msg, size_t n)
{
	struct viz_test *t = cur_test(log);
	struct viz_entry *entries;
	size_t total = pre_len ? pre_len + 1 + n : n;

	if (!t) {
		log->n_orphans++;
		return 0;
	}
	entries = grow(t->entries, &t->cap_entries, t->n_entries, sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	t->entries = entries;
	e->msg = malloc(total + 1);
	if (!e->msg)
		return -ENOMEM;
	if (pre_len) {
		memcpy(e->msg, pre, pre_len);
		e->msg[pre_len] = ' ';
	}
	memcpy(e->msg + total - n, msg, n);
	e->msg[total] = '\0';
	e->msg_len = total;
	fix_time(t, e);
	if (e->id == VIZ_ID_TEST) {
		t->have_test = true;
	} else {
		t->seen[e->id] = true;
		if (e->id >= t->n_servers)
			t->n_servers = e->id + 1;
	}
	t->entries[t->n_entries++] = *e;
	return 0;
}

static int add_other(struct viz_log *log, const char *s, size_t n)
{
	struct viz_test *t = cur_test(log);
	struct viz_other *others;
	struct viz_other *o;

	if (!t || n == 0)
		return 0;
	others = grow(t->others, &t->cap_others, t->n_others, sizeof(*others));
	if (!others)
		return -ENOMEM;
	t->others = others;
	o = &others[t->n_others];
	o->text = copy_bytes(s, n);
	if (!o->text)
		return -ENOMEM;
	o->len = n;
	o->after = t->n_entries;
	t->n_others++;
	return 0;
}

void viz_log_init(struct viz_log *log)
{
	memset(log, 0, sizeof(*log));
}

static void free_test(struct viz_test *t)
{
	for (size_t i = 0; i < t->n_entries; i++)
		free(t->entries[i].msg);
	for (size_t i = 0; i < t->n_others; i++)
		free(t->others[i].text);
	free(t->entries);
	free(t->others);
	free(t->name);
	free(t->file_name);
}

void viz_log_free(struct viz_log *log)
{
	for (size_t i = 0; i < log->n_tests; i++)
		free_test(&log->tests[i]);
	free(log->tests);
	viz_log_init(log);
}

/* go test's "ok  \tgithub.com/eliben/raft/part2\t1.2s" (or "FAIL\t...")
 * ends a package: its part goes to the tests since the previous one. */
static void package_line(struct viz_log *log, const char *s, size_t len)
{
	const char *p;
	int part;

	if (!((len > 4 && memcmp(s, "ok  ", 4) == 0) || (len > 5 && memcmp(s, "FAIL\t", 5) == 0)))
		return;
	p = memmem(s, len, "/part", 5);
	if (!p || p + 5 >= s + len || !is_digit(p[5]))
		return;
	part = p[5] - '0';
	for (size_t i = log->pkg_from; i < log->n_tests; i++)
		log->tests[i].pkg_part = part;
	log->pkg_from = log->n_tests;
}

/* Takes one line, with or without its "\n" or "\r\n"; returns 0 or
 * -ENOMEM. Lines that are neither boundaries nor entries are kept as the
 * current test's other lines. */
int viz_log_feed(struct viz_log *log, const char *line, size_t len)
{
	enum viz_format fmt;
	enum viz_status st;
	struct viz_entry e;
	const char *name;
	size_t n, off, fold_off, fold_len;
	double secs = -1;

	log->n_lines++;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (match_run(line, len, &name, &n, &fmt))
		return start_test(log, name, n, fmt);
	if (match_switch(line, len, &name, &n)) {
		switch_test(log, name, n);
		return 0;
	}
	if ((match_go_end(line, len, &st, &name, &n, &secs) ||
	     match_cmocka_end(line, len, &st, &name, &n)) &&
	    end_test(log, name, n, st, secs))
		return 0;
	if (parse_entry(line, len, &e, &off, &fold_off, &fold_len))
		return add_entry(log, &e, line + fold_off, fold_len, line + off, len - off);
	package_line(log, line, len);
	return add_other(log, line, len);
}

/* getline, so a line of any length is read whole. Returns 0, or a
 * negative errno if reading failed. */
int viz_log_read(struct viz_log *log, FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rv = 0;

	for (;;) {
		errno = 0;
		n = getline(&line, &cap, in);
		if (n < 0)
			break;
		rv = viz_log_feed(log, line, (size_t)n);
		if (rv)
			break;
	}
	if (!rv && (ferror(in) || !feof(in)))
		rv = errno ? -errno : -EIO;
	free(line);
	return rv;
}

/* ---- File names -------------------------------------------------------- */

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
	       c == '-';
}

/* Keeps [A-Za-z0-9_-], so that no test name can reach outside the output
 * directory ("../x", "/etc/x") or make a hidden file. */
void viz_sanitize_name(const char *name, char *out, size_t out_size)
{
	size_t j = 0;

	for (size_t i = 0; name[i] && j + 1 < out_size && j < VIZ_NAME_MAX; i++)
		out[j++] = is_name_char(name[i]) ? name[i] : '_';
	if (j == 0)
		j = (size_t)snprintf(out, out_size, "test");
	out[j] = '\0';
}

/* The table maps each file name given so far to the test that has it;
 * that test's next_suffix is the next suffix to try for the name, so
 * repeated names get _1, _2... as in the Go tool. */
static int name_one(struct hsearch_data *tab, struct viz_test *t)
{
	char base[VIZ_NAME_MAX + 1], cand[VIZ_NAME_MAX + 32];
	ENTRY query = { 0 }, *found = NULL, *hit;
	struct viz_test *owner;
	size_t next;

	viz_sanitize_name(t->name, base, sizeof(base));
	query.key = base;
	if (!hsearch_r(query, FIND, &found, tab))
		found = NULL;
	owner = found ? found->data : NULL;
	next = owner ? owner->next_suffix : 0;
	for (;; next++) {
		if (next == 0)
			memcpy(cand, base, sizeof(base));
		else
			(void)snprintf(cand, sizeof(cand), "%s_%zu", base, next); /* fits */
		query.key = cand;
		if (!hsearch_r(query, FIND, &hit, tab))
			break;
	}
	t->dup = next;
	t->next_suffix = 1;
	t->file_name = strdup(cand);
	if (!t->file_name)
		return -ENOMEM;
	query.key = t->file_name;
	query.data = t;
	if (!hsearch_r(query, ENTER, &hit, tab))
		return -ENOMEM;
	if (owner)
		owner->next_suffix = next + 1;
	return 0;
}

int viz_log_name_files(struct viz_log *log)
{
	struct hsearch_data tab;
	int rv = 0;

	memset(&tab, 0, sizeof(tab));
	if (!hcreate_r(log->n_tests * 2 + 16, &tab))
		return -ENOMEM;
	for (size_t i = 0; i < log->n_tests && !rv; i++)
		rv = name_one(&tab, &log->tests[i]);
	hdestroy_r(&tab);
	return rv;
}

/* ---- Replaying server states ------------------------------------------- */

void viz_replay_init(struct viz_replay *r)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < VIZ_MAX_SERVERS; i++)
		r->state[i] = VIZ_NONE;
}

static bool has(const struct viz_entry *e, const char *needle)
{
	return memmem(e->msg, e->msg_len, needle, strlen(needle)) != NULL;
}

/* The Go tool's rules, plus "listening at" (a server's first line). A
 * server that logs anything before a state line is a follower: every Raft
 * server starts as one. */
static enum viz_state state_after(const struct viz_entry *e, enum viz_state cur, bool *becomes)
{
	static const struct {
		const char *needle;
		enum viz_state st;
	} rules[] = {
		{ "becomes Follower", VIZ_FOLLOWER },
		{ "becomes Candidate", VIZ_CANDIDATE },
		{ "becomes Leader", VIZ_LEADER },
		{ "becomes Dead", VIZ_DEAD },
		{ "created in state Follower", VIZ_FOLLOWER },
		{ "listening at", VIZ_FOLLOWER },
	};

	*becomes = false;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (has(e, rules[i].needle)) {
			*becomes = i < 4;
			return rules[i].st;
		}
	}
	return cur == VIZ_NONE ? VIZ_FOLLOWER : cur;
}

/* The number after "term=" ("becomes Leader; term=2", "becomes Follower
 * with term=2") or "Term=" ("becomes Candidate (currentTerm=2)"). */
static long term_in(const struct viz_entry *e, long cur)
{
	static const char *const keys[] = { "term=", "Term=" };
	const char *p, *end = e->msg + e->msg_len;
	size_t i;
	long v;

	for (size_t k = 0; k < 2; k++) {
		p = memmem(e->msg, e->msg_len, keys[k], 5);
		if (!p)
			continue;
		i = 0;
		if (take_digits(p + 5, (size_t)(end - (p + 5)), &i, 1, 9, &v))
			return v;
	}
	return cur;
}

/* "Disconnect N", "Reconnect N", "Crash N", "Restart N" from [TEST]; *id
 * is N. */
enum viz_event viz_test_event(const struct viz_entry *e, int *id)
{
	static const struct {
		const char *word;
		enum viz_event ev;
	} words[] = { { "Disconnect ", VIZ_EV_DISCONNECT },
		      { "Reconnect ", VIZ_EV_RECONNECT },
		      { "Crash ", VIZ_EV_CRASH },
		      { "Restart ", VIZ_EV_RESTART } };
	size_t i = skip_blanks(e->msg, e->msg_len, 0), wl, j;
	long v;

	if (e->id != VIZ_ID_TEST)
		return VIZ_EV_NONE;
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		wl = strlen(words[w].word);
		if (e->msg_len - i < wl || memcmp(e->msg + i, words[w].word, wl) != 0)
			continue;
		j = i + wl;
		if (!take_digits(e->msg, e->msg_len, &j, 1, 4, &v) || v >= VIZ_MAX_SERVERS)
			return VIZ_EV_NONE;
		*id = (int)v;
		return words[w].ev;
	}
	return VIZ_EV_NONE;
}

/* Applies one entry; returns the id of the server whose state, term or
 * connection it changed, or -1. */
int viz_replay_apply(struct viz_replay *r, const struct viz_entry *e)
{
	enum viz_state st;
	enum viz_event ev;
	bool becomes;
	long term;
	int id;

	if (e->id == VIZ_ID_TEST) {
		ev = viz_test_event(e, &id);
		if (ev == VIZ_EV_DISCONNECT || ev == VIZ_EV_RECONNECT) {
			if (r->disconnected[id] == (ev == VIZ_EV_DISCONNECT))
				return -1;
			r->disconnected[id] = ev == VIZ_EV_DISCONNECT;
			return id;
		}
		if (ev == VIZ_EV_CRASH || ev == VIZ_EV_RESTART) {
			if (r->crashed[id] == (ev == VIZ_EV_CRASH))
				return -1;
			r->crashed[id] = ev == VIZ_EV_CRASH;
			return id;
		}
		return -1;
	}
	id = e->id;
	st = state_after(e, r->state[id], &becomes);
	term = becomes ? term_in(e, r->term[id]) : r->term[id];
	if (st == r->state[id] && term == r->term[id])
		return -1;
	r->state[id] = st;
	r->term[id] = term;
	return id;
}

/* ---- Spans for the timeline -------------------------------------------- */

struct span_list {
	struct viz_span *v;
	size_t n, cap;
};

static int push_span(struct span_list *l, const struct viz_span *s, long long t1)
{
	struct viz_span *v = grow(l->v, &l->cap, l->n, sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n] = *s;
	v[l->n].t1_us = t1;
	l->n++;
	return 0;
}

/* A disconnected or down span: opened when on becomes true, pushed when
 * it becomes false again (sp->state is the "open" flag). */
static int toggle_span(struct span_list *l, struct viz_span *sp, bool on, long long t, size_t row)
{
	int rv = 0;

	if ((sp->state != VIZ_NONE) == on)
		return 0;
	if (sp->state != VIZ_NONE)
		rv = push_span(l, sp, t);
	sp->state = on ? VIZ_DEAD : VIZ_NONE;
	sp->t0_us = t;
	sp->row = row;
	return rv;
}

/* The spans one server has open while the entries are replayed. */
struct open_spans {
	struct viz_span st, dc, down;
};

/* After entry row changed server id: closes its open spans that no longer
 * hold and opens the new ones. */
static int update_spans(struct span_list *l, struct open_spans *o, const struct viz_replay *r,
			int id, long long t, size_t row)
{
	int rv = 0;

	if (o->st.state != r->state[id] || o->st.term != r->term[id]) {
		if (o->st.state != VIZ_NONE)
			rv = push_span(l, &o->st, t);
		o->st.state = r->state[id];
		o->st.term = r->term[id];
		o->st.t0_us = t;
		o->st.row = row;
	}
	if (!rv)
		rv = toggle_span(l, &o->dc, r->disconnected[id], t, row);
	if (!rv)
		rv = toggle_span(l, &o->down, r->crashed[id], t, row);
	return rv;
}

/* Every server's state spans, disconnected spans and down spans over the
 * test, in the order they end; spans still open at the last entry end
 * there. */
int viz_collect_spans(const struct viz_test *t, struct viz_span **spans, size_t *n)
{
	struct open_spans o[VIZ_MAX_SERVERS];
	struct span_list l = { 0 };
	struct viz_replay r;
	long long t_end = t->n_entries ? t->entries[t->n_entries - 1].t_us : 0;
	int rv = 0, id;

	viz_replay_init(&r);
	for (int i = 0; i < VIZ_MAX_SERVERS; i++) {
		o[i].st = (struct viz_span){ .kind = VIZ_SPAN_STATE, .id = i, .state = VIZ_NONE };
		o[i].dc = (struct viz_span){ .kind = VIZ_SPAN_DISCONNECTED,
					     .id = i,
					     .state = VIZ_NONE };
		o[i].down = (struct viz_span){ .kind = VIZ_SPAN_DOWN, .id = i, .state = VIZ_NONE };
	}
	for (size_t i = 0; i < t->n_entries && !rv; i++) {
		id = viz_replay_apply(&r, &t->entries[i]);
		if (id >= 0)
			rv = update_spans(&l, &o[id], &r, id, t->entries[i].t_us, i);
	}
	for (int i = 0; i < VIZ_MAX_SERVERS && !rv; i++) {
		if (o[i].st.state != VIZ_NONE)
			rv = push_span(&l, &o[i].st, t_end);
		if (!rv && o[i].dc.state != VIZ_NONE)
			rv = push_span(&l, &o[i].dc, t_end);
		if (!rv && o[i].down.state != VIZ_NONE)
			rv = push_span(&l, &o[i].down, t_end);
	}
	if (rv) {
		free(l.v);
		return rv;
	}
	*spans = l.v;
	*n = l.n;
	return 0;
}

/* ---- Matching RPCs ------------------------------------------------------ */

/* Requests or replies waiting for their other end, oldest first. Capped:
 * a peer that never answers must not make matching quadratic; the oldest
 * waiting one is given up (it stays lost). */
#define PEND_MAX 256

struct pend {
	size_t *v;
	size_t n, cap;
};

struct matcher {
	const struct viz_test *t;
	struct viz_rpc *rpcs;
	size_t n, cap;
	size_t *args_off, *args_len; /* normalized request args, per rpc */
	size_t args_cap;
	char *arena;
	size_t alen, acap;
	struct pend req[VIZ_MAX_SERVERS][2];  /* by receiver and kind */
	struct pend rep[VIZ_MAX_SERVERS][2];  /* by the reply's receiver and kind */
	size_t last_recv[VIZ_MAX_SERVERS][2]; /* latest receipt without a reply */
	struct viz_rpc_stats st;
};

static bool msg_starts(const struct viz_entry *e, const char *prefix, size_t *after)
{
	size_t n = strlen(prefix);

	if (e->msg_len < n || memcmp(e->msg, prefix, n) != 0)
		return false;
	if (after)
		*after = n;
	return true;
}

/* Reads a (maybe negative) number at s[*i]. */
static bool take_long(const char *s, size_t len, size_t *i, long *v)
{
	bool neg = *i < len && s[*i] == '-';

	if (neg)
		(*i)++;
	if (!take_digits(s, len, i, 1, 18, v))
		return false;
	if (neg)
		*v = -*v;
	return true;
}

/* The number right after needle in e's message, or false. */
static bool number_after(const struct viz_entry *e, const char *needle, long *v)
{
	const char *p = memmem(e->msg, e->msg_len, needle, strlen(needle));
	size_t i;

	if (!p)
		return false;
	i = (size_t)(p - e->msg) + strlen(needle);
	return take_long(e->msg, e->msg_len, &i, v);
}

/* The end of the balanced {...} starting at s[i] (or the line's end). */
static size_t brace_end(const char *s, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		if (s[i] == '{')
			depth++;
		else if (s[i] == '}' && --depth == 0)
			return i + 1;
	}
	return len;
}

/* Appends the args s[0..n) to the arena without Go's %+v field names, so
 * that "{Term:1 LeaderId:0 Entries:[{Command:5 Term:1}]}" and the %v form
 * "{1 0 [{5 1}]}" of Go part 3's "drop Call" line compare equal. */
static bool put_norm(struct matcher *m, const char *s, size_t n, size_t *off, size_t *len)
{
	size_t i = 0, j;
	char *p;

	if (m->acap - m->alen < n) {
		size_t cap = m->acap ? m->acap : 4096;

		while (cap - m->alen < n)
			cap *= 2;
		p = realloc(m->arena, cap);
		if (!p)
			return false;
		m->arena = p;
		m->acap = cap;
	}
	*off = m->alen;
	while (i < n) {
		if ((s[i] >= 'A' && s[i] <= 'Z') &&
		    (i == 0 || s[i - 1] == '{' || s[i - 1] == ' ')) {
			for (j = i; j < n && is_word_char(s[j]);)
				j++;
			if (j < n && s[j] == ':') {
				i = j + 1;
				continue;
			}
		}
		m->arena[m->alen++] = s[i++];
	}
	*len = m->alen - *off;
	return true;
}

static bool pend_push(struct pend *q, size_t idx)
{
	size_t *v;

	if (q->n == PEND_MAX) {
		memmove(q->v, q->v + 1, (q->n - 1) * sizeof(*q->v));
		q->n--;
	}
	if (q->n == q->cap) {
		v = grow(q->v, &q->cap, q->n, sizeof(*v));
		if (!v)
			return false;
		q->v = v;
	}
	q->v[q->n++] = idx;
	return true;
}

static size_t pend_take(struct pend *q, size_t at)
{
	size_t idx = q->v[at];

	memmove(q->v + at, q->v + at + 1, (q->n - at - 1) * sizeof(*q->v));
	q->n--;
	return idx;
}

static int kind_in(const struct viz_entry *e, size_t from)
{
	if (memmem(e->msg + from, e->msg_len - from, "RequestVote", 11))
		return VIZ_RV;
	if (memmem(e->msg + from, e->msg_len - from, "AppendEntries", 13))
		return VIZ_AE;
	return -1;
}

/* "sending RequestVote to P: {...}", "sending AppendEntries to P: ni=N,
 * args={...}". */
static int on_send(struct matcher *m, const struct viz_replay *r, size_t row)
{
	const struct viz_entry *e = &m->t->entries[row];
	enum viz_rpc_kind kind;
	struct viz_rpc *rpcs, *c;
	const char *a;
	size_t i, end;
	long to;

	if (msg_starts(e, "sending RequestVote to ", &i))
		kind = VIZ_RV;
	else if (msg_starts(e, "sending AppendEntries to ", &i))
		kind = VIZ_AE;
	else
		return 0;
	if (!take_digits(e->msg, e->msg_len, &i, 1, 4, &to) || to >= VIZ_MAX_SERVERS)
		return 0;
	a = memmem(e->msg + i, e->msg_len - i, kind == VIZ_AE ? "args={" : "{",
		   kind == VIZ_AE ? 6 : 1);
	if (!a)
		return 0;
	i = (size_t)(a - e->msg) + (kind == VIZ_AE ? 5 : 0);
	end = brace_end(e->msg, e->msg_len, i);
	rpcs = grow(m->rpcs, &m->cap, m->n, sizeof(*rpcs));
	if (!rpcs)
		return -ENOMEM;
	m->rpcs = rpcs;
	if (m->n == m->args_cap) {
		size_t cap = m->args_cap ? m->args_cap * 2 : 16;
		size_t *o = reallocarray(m->args_off, cap, sizeof(*o)), *l;

		if (!o)
			return -ENOMEM;
		m->args_off = o;
		l = reallocarray(m->args_len, cap, sizeof(*l));
		if (!l)
			return -ENOMEM;
		m->args_len = l;
		m->args_cap = cap;
	}
	if (!put_norm(m, e->msg + i, end - i, &m->args_off[m->n], &m->args_len[m->n]))
		return -ENOMEM;
	c = &rpcs[m->n];
	*c = (struct viz_rpc){ .kind = kind,
			       .from = e->id,
			       .to = (int)to,
			       .send = row,
			       .recv = VIZ_NO_ROW,
			       .proxy = VIZ_NO_ROW,
			       .reply = VIZ_NO_ROW,
			       .reply_recv = VIZ_NO_ROW,
			       .reply_term = -1 };
	c->heartbeat = kind == VIZ_AE && memmem(e->msg + i, end - i, "Entries:[]", 10) != NULL;
	c->cut_off = r->disconnected[e->id] || r->disconnected[to] || r->crashed[e->id] ||
		     r->crashed[to];
	m->st.sends++;
	if (!pend_push(&m->req[to][kind], m->n))
		return -ENOMEM;
	m->n++;
	return 0;
}

static bool args_eq(const struct matcher *m, size_t idx, const char *a, size_t n)
{
	return m->args_len[idx] == n && memcmp(m->arena + m->args_off[idx], a, n) == 0;
}

/* "RequestVote: {...}" and "AppendEntries: {...}" at the receiver: the
 * first waiting request to it with the same kind, sender and args. One
 * sent while an end was disconnected is taken only if no other matches,
 * and then the latest: Go's harness can reconnect a pair of servers one of
 * which the test still calls disconnected, but a heartbeat sent into a
 * disconnection must not take the receipt of an identical later one. */
static int on_recv(struct matcher *m, size_t row)
{
	const struct viz_entry *e = &m->t->entries[row];
	enum viz_rpc_kind kind;
	struct pend *q;
	size_t i, end, off, len, fallback = VIZ_NO_ROW;
	long from = -1;

	if (msg_starts(e, "RequestVote: {", &i))
		kind = VIZ_RV;
	else if (msg_starts(e, "AppendEntries: {", &i))
		kind = VIZ_AE;
	else
		return 1;
	i--;
	end = brace_end(e->msg, e->msg_len, i);
	if (!number_after(e, kind == VIZ_RV ? "CandidateId:" : "LeaderId:", &from))
		from = -1;
	off = m->alen;
	if (!put_norm(m, e->msg + i, end - i, &off, &len))
		return -ENOMEM;
	m->alen = off; /* scratch only */
	q = &m->req[e->id][kind];
	m->last_recv[e->id][kind] = VIZ_NO_ROW;
	for (size_t k = 0; k < q->n; k++) {
		struct viz_rpc *c = &m->rpcs[q->v[k]];

		if ((from < 0 || c->from == from) && args_eq(m, q->v[k], m->arena + off, len)) {
			fallback = k;
			if (!c->cut_off)
				break;
		}
	}
	if (fallback == VIZ_NO_ROW) {
		m->st.orphan_recvs++;
		return 0;
	}
	m->rpcs[q->v[fallback]].recv = row;
	m->st.matched++;
	m->last_recv[e->id][kind] = pend_take(q, fallback);
	return 0;
}

/* "drop RequestVote", "delay AppendEntries" by the receiver's RPC proxy
 * (no args: the first waiting request it has not seen yet), or Go part
 * 3's "drop Call ConsensusModule.AppendEntries: {...}" by the sender (the
 * latest waiting request from it with those args). */
static bool on_proxy(struct matcher *m, size_t row)
{
	const struct viz_entry *e = &m->t->entries[row];
	bool drop;
	size_t i, end, off, len, best_k = 0;
	struct pend *best = NULL;
	int kind;

	if (msg_starts(e, "drop Call ", &i)) {
		const char *a = memchr(e->msg + i, '{', e->msg_len - i);

		kind = kind_in(e, i);
		if (kind < 0 || !a)
			return true;
		i = (size_t)(a - e->msg);
		end = brace_end(e->msg, e->msg_len, i);
		off = m->alen;
		if (!put_norm(m, e->msg + i, end - i, &off, &len))
			return false;
		m->alen = off;
		for (int p = 0; p < m->t->n_servers; p++) {
			struct pend *q = &m->req[p][kind];

			for (size_t k = 0; k < q->n; k++) {
				const struct viz_rpc *c = &m->rpcs[q->v[k]];

				if (c->from == e->id && args_eq(m, q->v[k], m->arena + off, len) &&
				    (!best || c->send > m->rpcs[best->v[best_k]].send)) {
					best = q;
					best_k = k;
				}
			}
		}
		if (best) {
			struct viz_rpc *c = &m->rpcs[pend_take(best, best_k)];

			c->dropped = c->drop_at_sender = true;
			c->proxy = row;
			m->st.dropped++;
		}
		return true;
	}
	if (msg_starts(e, "drop ", &i))
		drop = true;
	else if (msg_starts(e, "delay ", &i))
		drop = false;
	else
		return true;
	kind = kind_in(e, i);
	if (kind < 0)
		return true;
	best = &m->req[e->id][kind];
	for (size_t k = 0; k < best->n; k++) {
		struct viz_rpc *c = &m->rpcs[best->v[k]];

		if (c->proxy != VIZ_NO_ROW || c->cut_off)
			continue;
		c->proxy = row;
		if (drop) {
			c->dropped = true;
			m->st.dropped++;
			(void)pend_take(best, k);
		} else {
			c->delayed = true;
			m->st.delayed++;
		}
		break;
	}
	return true;
}

/* "... RequestVote reply: &{Term:T VoteGranted:B}" and "AppendEntries
 * reply: {Term:T Success:B ...}" at the receiver: logged under the same
 * lock as the receipt, so they answer its latest one. */
static int on_reply(struct matcher *m, size_t row)
{
	const struct viz_entry *e = &m->t->entries[row];
	size_t idx;
	long term;
	int kind;

	if (msg_starts(e, "... RequestVote reply: ", NULL))
		kind = VIZ_RV;
	else if (msg_starts(e, "AppendEntries reply: {", NULL))
		kind = VIZ_AE;
	else
		return 1;
	idx = m->last_recv[e->id][kind];
	if (idx == VIZ_NO_ROW)
		return 0;
	m->last_recv[e->id][kind] = VIZ_NO_ROW;
	m->rpcs[idx].reply = row;
	m->rpcs[idx].ok = kind == VIZ_RV
				  ? memmem(e->msg, e->msg_len, "VoteGranted:true", 16) != NULL
				  : memmem(e->msg, e->msg_len, "Success:true", 12) != NULL;
	m->rpcs[idx].reply_term = number_after(e, "Term:", &term) ? term : -1;
	m->st.replies++;
	return pend_push(&m->rep[m->rpcs[idx].from][kind], idx) ? 0 : -ENOMEM;
}

/* The sender's side of a reply: "received RequestVoteReply {Term:T
 * VoteGranted:B}" (first waiting reply with that term and vote),
 * "AppendEntries reply from P success" / "!success" (first waiting reply
 * from P with that outcome), "term out of date in heartbeat reply" (first
 * waiting AppendEntries reply with a higher term than the sender's). */
static void on_reply_recv(struct matcher *m, const struct viz_replay *r, size_t row)
{
	const struct viz_entry *e = &m->t->entries[row];
	bool ok = false, by_term = false;
	long term = -1, from = -1;
	struct pend *q;
	size_t i;

	if (msg_starts(e, "received RequestVoteReply {", NULL)) {
		q = &m->rep[e->id][VIZ_RV];
		ok = has(e, "VoteGranted:true");
		if (!number_after(e, "Term:", &term))
			term = -1;
	} else if (msg_starts(e, "AppendEntries reply from ", &i)) {
		q = &m->rep[e->id][VIZ_AE];
		if (!take_digits(e->msg, e->msg_len, &i, 1, 4, &from))
			return;
		ok = i + 8 <= e->msg_len && memcmp(e->msg + i, " success", 8) == 0;
	} else if (msg_starts(e, "term out of date in heartbeat reply", NULL)) {
		q = &m->rep[e->id][VIZ_AE];
		by_term = true;
	} else {
		return;
	}
	for (size_t k = 0; k < q->n; k++) {
		struct viz_rpc *c = &m->rpcs[q->v[k]];
		bool hit;

		if (by_term)
			hit = c->reply_term > r->term[e->id];
		else if (c->kind == VIZ_RV)
			hit = c->ok == ok && (term < 0 || c->reply_term == term);
		else
			hit = c->ok == ok && c->to == from;
		if (hit) {
			c->reply_recv = row;
			m->st.replies_matched++;
			(void)pend_take(q, k);
			return;
		}
	}
}

static void free_matcher(struct matcher *m)
{
	for (int i = 0; i < VIZ_MAX_SERVERS; i++) {
		for (int k = 0; k < 2; k++) {
			free(m->req[i][k].v);
			free(m->rep[i][k].v);
		}
	}
	free(m->args_off);
	free(m->args_len);
	free(m->arena);
}

/* Every RPC of the test in the order of their send lines, matched to
 * their receipts, drops, delays and replies; *stats counts them. */
int viz_match_rpcs(const struct viz_test *t, struct viz_rpc **rpcs, size_t *n,
		   struct viz_rpc_stats *stats)
{
	struct matcher *m = calloc(1, sizeof(*m));
	struct viz_replay r;
	int rv = 0;

	*rpcs = NULL;
	*n = 0;
	memset(stats, 0, sizeof(*stats));
	if (!m)
		return -ENOMEM;
	m->t = t;
	for (int i = 0; i < VIZ_MAX_SERVERS; i++)
		m->last_recv[i][0] = m->last_recv[i][1] = VIZ_NO_ROW;
	viz_replay_init(&r);
	for (size_t i = 0; i < t->n_entries && !rv; i++) {
		const struct viz_entry *e = &t->entries[i];

		(void)viz_replay_apply(&r, e);
		if (e->id == VIZ_ID_TEST)
			continue;
		rv = on_send(m, &r, i);
		if (rv)
			break;
		rv = on_recv(m, i);
		if (rv <= 0)
			continue;
		rv = on_reply(m, i);
		if (rv <= 0)
			continue;
		rv = 0;
		if (!on_proxy(m, i))
			rv = -ENOMEM;
		on_reply_recv(m, &r, i);
	}
	if (rv) {
		free(m->rpcs);
	} else {
		*rpcs = m->rpcs;
		*n = m->n;
		m->st.lost = m->st.sends - m->st.matched - m->st.dropped;
		*stats = m->st;
	}
	free_matcher(m);
	free(m);
	return rv;
}

/* ---- Commit index, log length, per-test numbers ------------------------ */

/* N of "... setting commitIndex=N" (follower) or "leader sets commitIndex
 * := N"; -2 if the entry sets none. */
long viz_commit_index(const struct viz_entry *e)
{
	long v;

	if (e->id == VIZ_ID_TEST)
		return -2;
	if (number_after(e, "setting commitIndex=", &v) ||
	    number_after(e, "leader sets commitIndex := ", &v))
		return v;
	return -2;
}

/* The number of entries in a "log=[...]" or "log is now: [...]" dump
 * (counted as the {...} at the bracket's top level); -1 if none. */
long viz_log_length(const struct viz_entry *e)
{
	static const char *const keys[] = { "log=[", "log is now: [" };
	const char *p = NULL, *end = e->msg + e->msg_len;
	long n = 0;
	int depth = 0;

	for (size_t k = 0; k < 2 && !p; k++) {
		p = memmem(e->msg, e->msg_len, keys[k], strlen(keys[k]));
		if (p)
			p += strlen(keys[k]);
	}
	if (!p || e->id == VIZ_ID_TEST)
		return -1;
	for (; p < end && !(depth == 0 && *p == ']'); p++) {
		if (*p == '{' && depth++ == 0)
			n++;
		else if (*p == '}')
			depth--;
	}
	return n;
}

/* Part 3's words, part 2's words, or neither (part 1). */
static int infer_part(const struct viz_test *t)
{
	static const char *const p3[] = { "ConflictIndex", "drop Call ", "persist" };
	static const char *const p2[] = { "Submit received", "commitIndex",
					  "nextIndex=", "collectCommits", "Entries:[{" };
	int part = 1, id;

	for (size_t i = 0; i < t->n_entries; i++) {
		const struct viz_entry *e = &t->entries[i];
		enum viz_event ev = viz_test_event(e, &id);

		if (ev == VIZ_EV_CRASH || ev == VIZ_EV_RESTART)
			return 3;
		for (size_t k = 0; k < sizeof(p3) / sizeof(p3[0]); k++) {
			if (has(e, p3[k]))
				return 3;
		}
		for (size_t k = 0; k < sizeof(p2) / sizeof(p2[0]) && part == 1; k++) {
			if (has(e, p2[k]))
				part = 2;
		}
	}
	return part;
}

void viz_test_stats(const struct viz_test *t, struct viz_stats *st)
{
	int id;

	memset(st, 0, sizeof(*st));
	st->max_commit = -2;
	st->part = t->pkg_part;
	if (!st->part) {
		st->part = infer_part(t);
		st->part_inferred = true;
	}
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct viz_entry *e = &t->entries[i];
		long c = viz_commit_index(e);

		if (e->id == VIZ_ID_TEST) {
			if (viz_test_event(e, &id) == VIZ_EV_CRASH)
				st->crashes++;
			continue;
		}
		st->elections += has(e, "becomes Candidate");
		st->leaders += has(e, "becomes Leader");
		st->commits += has(e, "leader sets commitIndex := ");
		st->submits += msg_starts(e, "Submit received by", NULL);
		if (c > st->max_commit)
			st->max_commit = c;
	}
	st->duration_us = t->n_entries ? t->entries[t->n_entries - 1].t_us - t->entries[0].t_us : 0;
}

/* ---- The page ---------------------------------------------------------- */

static const char page_css[] =
	"body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 16px 24px;"
	"color:#1f2328}\n"
	"h1{font-size:21px;margin:14px 0 2px}\n"
	".badge{display:inline-block;padding:1px 9px;border-radius:4px;color:#fff;"
	"font-size:15px;vertical-align:2px;margin-left:8px}\n"
	".st-PASS{background:#2e7d32}.st-FAIL,.st-ERROR{background:#c62828}"
	".st-INCOMPLETE{background:#e65100}.st-SKIP{background:#757575}\n"
	".meta{margin:2px 0 6px;color:#444}\n"
	".legend{margin:4px 0 2px;font-size:13px}\n"
	".legend span{margin-right:16px;white-space:nowrap}\n"
	".sw{display:inline-block;width:24px;height:12px;border:1px solid #777;"
	"vertical-align:-2px;margin-right:5px}\n"
	".sw.F{background:#d2e1f5}.sw.C{background:#f2d65c}.sw.L{background:#72cf98}"
	".sw.D{background:#a3a3a3}.sw.N{background:#fff;border-style:dashed}\n"
	".sw.x{background:repeating-linear-gradient(135deg,#d32f2f 0 2px,#fff 2px 6px)}\n"
	".sw.mk{width:3px;border:0;height:14px;margin:0 5px 0 9px}\n"
	".sw.mk.dis{background:#c62828}.sw.mk.rec{background:#2e7d32}.sw.mk.oth{background:#666}\n"
	"svg.timeline{display:block;width:100%;height:auto;margin:6px 0 10px;"
	"font-family:system-ui,sans-serif}\n"
	"svg .lbg{fill:#fafafa;stroke:#ccc}\n"
	"svg rect.F{fill:#d2e1f5}svg rect.C{fill:#f2d65c}svg rect.L{fill:#72cf98}"
	"svg rect.D{fill:#a3a3a3}\n"
	"svg .span{stroke:#fff;stroke-width:.6}\n"
	"svg .disc{fill:url(#hatch);stroke:#c62828;stroke-width:1.2}\n"

	"svg .ln{font-size:13px;font-weight:600;fill:#333}\n"
	"svg .term{font-size:11px;font-weight:700;fill:#0b3d1f;pointer-events:none;"
	"paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}\n"
	"svg .tick{stroke:#e4e4e4}svg .tl{font-size:10px;fill:#666}\n"
	"svg .mk{stroke-width:1.5}svg .mk.dis{stroke:#c62828}svg .mk.rec{stroke:#2e7d32}"
	"svg .mk.oth{stroke:#888;stroke-dasharray:2 2}svg .mk.end{stroke:#000;stroke-dasharray:4 "
	"3}\n"
	"svg .ml{font-size:10px;font-weight:700}svg .ml.dis{fill:#c62828}"
	"svg .ml.rec{fill:#2e7d32}svg .ml.end{fill:#000}\n"
	"table.log{border-collapse:separate;border-spacing:0;width:100%;table-layout:fixed;"
	"font:12px/1.3 'Courier New',monospace}\n"
	"table.hdr{position:sticky;top:0;z-index:2}\n"
	"table.log th{background:#37474f;color:#fff;padding:5px 6px;text-align:left;"
	"font-family:system-ui,sans-serif;border-right:1px solid #56707c}\n"
	".chunk{content-visibility:auto}\n"
	"table.log td{padding:3px 6px;border-right:1px solid #d5d5d5;"
	"border-bottom:1px solid #d5d5d5;vertical-align:top;overflow-wrap:anywhere;"
	"white-space:pre-wrap}\n"
	"col.t{width:14.5em}col.c{width:11em}\n"
	"td.t{white-space:nowrap;overflow:hidden}\n"
	"td.t i{color:#888;font-style:normal;font-size:10px;margin-left:4px}\n"
	/* The Go tool's cell colours. */
	"td.F{background:#ffffff}td.C{background:#e2e2a3}td.L{background:#e6fff5}"
	"td.D{background:#dddddd}td.N{background:#fff}\n"
	"td.z{background-image:repeating-linear-gradient(45deg,rgba(0,0,0,.22) 0 2px,"
	"transparent 2px 7px)}\n"
	"tr.crash td.c{color:#000}tr.rst td.c{color:#1565c0}\n"
	"td.x{background-image:repeating-linear-gradient(135deg,rgba(211,47,47,.2) 0 2px,"
	"transparent 2px 9px)}\n"
	"tr.test td.c{background:#fff3e0;font-weight:bold}\n"
	"tr.dis td.c{color:#c62828}tr.rec td.c{color:#2e7d32}\n"
	"tr.late td.t{color:#aaa}\n"
	"tr.end td{background:#455a64;color:#fff;text-align:center;white-space:normal;"
	"font-family:system-ui,sans-serif}\n"
	"tr[id]{scroll-margin-top:40px}\n"
	"pre.other{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap;"
	"overflow-wrap:anywhere}\n";

/* The arrows, lane marks and layer switches (a second string: C11
 * compilers need not take literals over 4095 bytes). */
static const char rpc_css[] =
	"svg .down{fill:url(#downp);stroke:#212121;stroke-width:1.4}\n"
	"svg line.rv{stroke:#e65100;stroke-width:1.4;marker-end:url(#a-rv)}\n"
	"svg line.ae{stroke:#1565c0;stroke-width:1.8;marker-end:url(#a-ae)}\n"
	"svg line.hb{stroke:#78909c;stroke-width:.7;stroke-opacity:.8;marker-end:url(#a-hb)}\n"
	"svg line.rp.ok{stroke:#2e7d32;marker-end:url(#a-ok)}"
	"svg line.rp.no{stroke:#c62828;stroke-dasharray:3 2;marker-end:url(#a-no)}\n"
	"svg line.rp.hb{stroke-width:.6;stroke-opacity:.6}svg line.rp.rv{stroke-width:1.3}\n"
	"svg line.stub{stroke:#9e9e9e;stroke-dasharray:2 1.5;marker-end:url(#a-st)}\n"
	"svg line.rqx{marker-end:none}svg .xx{stroke:#d50000;stroke-width:2;fill:none}\n"
	"svg .dl{stroke:#6a1b9a;stroke-width:2.5;stroke-dasharray:1.5 1.5}\n"
	"svg .cmt{fill:#6a1b9a}svg .cl{font-size:9px;font-weight:700;fill:#6a1b9a}\n"
	"svg .sub{fill:#ff6f00;stroke:#fff;stroke-width:.6}svg .sub.no{fill:#fff;stroke:#ff6f00;"
	"stroke-width:1.2}\n"
	"svg .ll{fill:none;stroke:#37474f;stroke-width:1}svg .lt{font-size:8px;fill:#37474f}\n"
	".layers{font-size:13px;margin:4px 0}.layers label{margin-right:12px}\n"
	"input.ly{margin:0 3px 0 0;vertical-align:-2px}\n"
	"#ly-rv:not(:checked)~svg .rv,#ly-ae:not(:checked)~svg .ae,"
	"#ly-hb:not(:checked)~svg .hb,#ly-rp:not(:checked)~svg .rp,"
	"#ly-lost:not(:checked)~svg .lost,#ly-lm:not(:checked)~svg .lm{display:none}\n"
	".sw.ar{height:0;border:0;border-top:2px solid;width:22px;vertical-align:3px}"
	".sw.ar.rv{border-color:#e65100}.sw.ar.ae{border-color:#1565c0}"
	".sw.ar.hb{border-top-width:1px;border-color:#78909c}.sw.ar.ok{border-color:#2e7d32}"
	".sw.ar.no{border-top-style:dashed;border-color:#c62828}"
	".sw.ar.st{border-top-style:dotted;border-color:#9e9e9e;width:8px}"
	".sw.ar.dl{border-top:3px dotted #6a1b9a}\n"
	".sw.z{background:repeating-linear-gradient(45deg,#212121 0 2px,#fff 2px 6px)}"
	".sw.cm{width:0;height:0;border:5px solid transparent;border-top:7px solid #6a1b9a;"
	"border-bottom:0}"
	".sw.sb{width:8px;height:8px;background:#ff6f00;border:0;transform:rotate(45deg)}\n"
	".sw.xx{border:0;width:auto;height:auto;color:#d50000;font-weight:700}\n"
	"svg .mk.crash{stroke:#000}svg .mk.rst{stroke:#1565c0}svg .ml.crash{fill:#000}"
	"svg .ml.rst{fill:#1565c0}\n";

/* Microseconds as "1234.567" milliseconds. */
static void fmt_ms(char *out, size_t size, long long us)
{
	(void)snprintf(out, size, "%lld.%03lld", us / 1000, us % 1000); /* us >= 0 */
}

static long long first_time(const struct viz_test *t)
{
	return t->n_entries ? t->entries[0].t_us : 0;
}

static long long last_time(const struct viz_test *t)
{
	return t->n_entries ? t->entries[t->n_entries - 1].t_us : 0;
}

static const char *format_name(enum viz_format f)
{
	return f == VIZ_FMT_GO ? "go test -v" : "cmocka";
}

static void put_head(struct viz_buf *b, const struct viz_test *t)
{
	viz_buf_puts(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
			"<meta name=\"generator\" content=\"raft-testlog-viz\">\n<title>");
	viz_buf_escape(b, t->name, strlen(t->name));
	viz_buf_printf(b, " -- %s</title>\n<style>\n%s%s</style>\n</head>\n<body>\n",
		       viz_status_name(t->status), page_css, rpc_css);
}

static size_t entries_after_end(const struct viz_test *t)
{
	return t->ended ? t->n_entries - t->end_at : 0;
}

static void put_summary(struct viz_buf *b, const struct viz_test *t, const struct viz_rpc_stats *rs)
{
	const char *st = viz_status_name(t->status);
	char span[32];

	viz_buf_puts(b, "<h1>");
	viz_buf_escape(b, t->name, strlen(t->name));
	viz_buf_printf(b, "<span class=\"badge st-%s\" data-status=\"%s\">%s</span></h1>\n", st, st,
		       st);
	fmt_ms(span, sizeof(span), last_time(t) - first_time(t));
	viz_buf_printf(b, "<p class=\"meta\">%s log &middot; %d server%s &middot; %zu entries",
		       format_name(t->format), t->n_servers, t->n_servers == 1 ? "" : "s",
		       t->n_entries);
	if (t->go_secs >= 0)
		viz_buf_printf(b, " &middot; duration %.2f s (go test)", t->go_secs);
	viz_buf_printf(b, " &middot; %s ms from first to last entry", span);
	if (!t->ended)
		viz_buf_puts(b,
			     " &middot; <b>no end marker: the log was cut or the test crashed</b>");
	else if (entries_after_end(t))
		viz_buf_printf(b, " &middot; %zu entries logged after the test's end marker",
			       entries_after_end(t));
	viz_buf_printf(b,
		       "</p>\n<p class=\"meta\" data-rpcs>RPCs: %zu sent, %zu arrived (arrows), "
		       "%zu dropped, %zu delayed, %zu never arrived; %zu replies, %zu taken back",
		       rs->sends, rs->matched, rs->dropped, rs->delayed, rs->lost, rs->replies,
		       rs->replies_matched);
	if (rs->orphan_recvs)
		viz_buf_printf(b, "; %zu receipts without a send in the log", rs->orphan_recvs);
	viz_buf_puts(b, "</p>\n");
}

static void put_legend(struct viz_buf *b)
{
	viz_buf_puts(b, "<div class=\"legend\">"
			"<span><i class=\"sw F\"></i>Follower</span>"
			"<span><i class=\"sw C\"></i>Candidate</span>"
			"<span><i class=\"sw L\"></i>Leader (T<i>n</i> = term)</span>"
			"<span><i class=\"sw D\"></i>Dead</span>"
			"<span><i class=\"sw N\"></i>not started</span>"
			"<span><i class=\"sw x\"></i>disconnected</span>"
			"<span><i class=\"sw z\"></i>down (Crash&#8230;Restart)</span>"
			"<span><i class=\"sw mk dis\"></i>[TEST] Disconnect</span>"
			"<span><i class=\"sw mk rec\"></i>[TEST] Reconnect</span>"
			"<span><i class=\"sw mk oth\"></i>other [TEST] line</span>"
			"</div>\n<div class=\"legend\">"
			"<span><i class=\"sw ar rv\"></i>RequestVote</span>"
			"<span><i class=\"sw ar ok\"></i>vote granted / append succeeded</span>"
			"<span><i class=\"sw ar no\"></i>vote refused / append failed</span>"
			"<span><i class=\"sw ar ae\"></i>AppendEntries with entries</span>"
			"<span><i class=\"sw ar hb\"></i>heartbeat (no entries)</span>"
			"<span><i class=\"sw ar dl\"></i>delayed</span>"
			"<span><i class=\"sw xx\">&#215;</i>dropped</span>"
			"<span><i class=\"sw ar st\"></i>never arrived</span>"
			"<span><i class=\"sw cm\"></i>commit index (c<i>n</i>)</span>"
			"<span><i class=\"sw sb\"></i>Submit</span>"
			"<span>n<i>n</i> = log length</span>"
			"</div>\n");
}

/* Checkboxes that show or hide layers of the timeline through CSS
 * (#ly-x:not(:checked) ~ svg .x), so no script is needed. They must be
 * siblings before the <svg>. */
static void put_layers(struct viz_buf *b)
{
	static const struct {
		const char *id, *label;
	} layers[] = {
		{ "rv", "RequestVote &amp; votes" },
		{ "ae", "AppendEntries with entries" },
		{ "hb", "heartbeats" },
		{ "rp", "replies" },
		{ "lost", "drops &amp; never arrived" },
		{ "lm", "commit, Submit, log length" },
	};

	viz_buf_puts(b, "<span class=\"layers\">Show:</span>\n");
	for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++)
		viz_buf_printf(b,
			       "<input type=\"checkbox\" class=\"ly\" id=\"ly-%s\" checked>"
			       "<label class=\"layers\" for=\"ly-%s\">%s</label>\n",
			       layers[i].id, layers[i].id, layers[i].label);
}

/* Timeline geometry, in SVG user units. */
#define TL_X0	56.0
#define TL_W	1224.0
#define TL_TOP	30.0
#define TL_LANE 24.0
#define TL_GAP	26.0
#define TL_AXIS 20.0

struct scale {
	long long t0, span;
};

static double tl_x(const struct scale *s, long long t)
{
	return TL_X0 + (double)(t - s->t0) * TL_W / (double)s->span;
}

static double lane_y(int id)
{
	return TL_TOP + id * (TL_LANE + TL_GAP);
}

static double lanes_bottom(const struct viz_test *t)
{
	return lane_y(t->n_servers) - TL_GAP;
}

/* The smallest 1, 2 or 5 times a power of ten that cuts span into at
 * most 8 steps. */
static long long tick_step(long long span)
{
	static const int mult[] = { 1, 2, 5 };

	for (long long p = 1;; p *= 10) {
		for (int i = 0; i < 3; i++) {
			if (mult[i] * p * 8 >= span)
				return mult[i] * p;
		}
	}
}

static void put_ticks(struct viz_buf *b, const struct viz_test *t, const struct scale *s)
{
	long long step = tick_step(s->span);
	double y1 = lanes_bottom(t) + 4, x;

	for (long long v = 0; v <= s->span; v += step) {
		x = tl_x(s, s->t0 + v);
		viz_buf_printf(
			b, "<line class=\"tick\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
			x, x, TL_TOP - 4, y1);
		if (step >= 1000000)
			viz_buf_printf(b,
				       "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\" "
				       "text-anchor=\"middle\">%lld s</text>\n",
				       x, y1 + 12, v / 1000000);
		else if (step >= 1000)
			viz_buf_printf(b,
				       "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\" "
				       "text-anchor=\"middle\">%lld ms</text>\n",
				       x, y1 + 12, v / 1000);
		else
			viz_buf_printf(b,
				       "<text class=\"tl\" x=\"%.1f\" y=\"%.1f\" "
				       "text-anchor=\"middle\">%lld us</text>\n",
				       x, y1 + 12, v);
	}
}

static void put_span_title(struct viz_buf *b, const struct viz_span *sp, const struct scale *s)
{
	char from[32], to[32];

	fmt_ms(from, sizeof(from), sp->t0_us - s->t0);
	fmt_ms(to, sizeof(to), sp->t1_us - s->t0);
	if (sp->kind == VIZ_SPAN_DISCONNECTED)
		viz_buf_printf(b, "<title>server %d disconnected, +%s ms to +%s ms</title>", sp->id,
			       from, to);
	else if (sp->kind == VIZ_SPAN_DOWN)
		viz_buf_printf(b, "<title>server %d down (crashed), +%s ms to +%s ms</title>",
			       sp->id, from, to);
	else
		viz_buf_printf(b, "<title>server %d: %s, term %ld, +%s ms to +%s ms</title>",
			       sp->id, viz_state_name(sp->state), sp->term, from, to);
}

/* One span as a rect that links to the table row that started it. */
static void put_span(struct viz_buf *b, const struct viz_span *sp, const struct scale *s)
{
	double x = tl_x(s, sp->t0_us), w = tl_x(s, sp->t1_us) - x, y = lane_y(sp->id);

	if (w < 1)
		w = 1; /* a span too short to see still gets a sliver */
	viz_buf_printf(b, "<a href=\"#r%zu\">", sp->row);
	if (sp->kind == VIZ_SPAN_DISCONNECTED)
		viz_buf_printf(b,
			       "<rect class=\"disc\" data-disconnected=\"%d\" x=\"%.1f\" "
			       "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">",
			       sp->id, x, y + 1, w, TL_LANE - 2);
	else if (sp->kind == VIZ_SPAN_DOWN)
		viz_buf_printf(b,
			       "<rect class=\"down\" data-down=\"%d\" x=\"%.1f\" "
			       "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">",
			       sp->id, x, y + 3, w, TL_LANE - 6);
	else
		viz_buf_printf(b,
			       "<rect class=\"span %s\" data-state=\"%s\" data-term=\"%ld\" "
			       "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">",
			       state_class(sp->state), viz_state_name(sp->state), sp->term, x, y, w,
			       TL_LANE);
	put_span_title(b, sp, s);
	viz_buf_puts(b, "</rect></a>\n");
}

/* "T3" on a leader span wide enough to hold it. */
static void put_term_label(struct viz_buf *b, const struct viz_span *sp, const struct scale *s)
{
	double x = tl_x(s, sp->t0_us), w = tl_x(s, sp->t1_us) - x;

	if (sp->kind != VIZ_SPAN_STATE || sp->state != VIZ_LEADER || w < 18)
		return;
	viz_buf_printf(
		b,
		"<text class=\"term\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">T%ld</text>\n",
		x + w / 2, lane_y(sp->id) + TL_LANE / 2 + 4, sp->term);
}

/* A lane: its label and background, then its state spans, then its
 * disconnected spans on top (hatched, so the state still shows), then its
 * down spans (crashed: hatched black), then the leaders' terms above all. */
static void put_lane(struct viz_buf *b, int id, const struct viz_span *spans, size_t n,
		     const struct scale *s)
{
	double y = lane_y(id);

	viz_buf_printf(b, "<g class=\"lane\" data-server=\"%d\">\n", id);
	viz_buf_printf(b, "<text class=\"ln\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d</text>",
		       TL_X0 - 10, y + TL_LANE / 2 + 5, id);
	viz_buf_printf(
		b, "<rect class=\"lbg\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
		TL_X0, y, TL_W, TL_LANE);
	for (int kind = VIZ_SPAN_STATE; kind <= VIZ_SPAN_DOWN; kind++) {
		for (size_t i = 0; i < n; i++) {
			if (spans[i].id == id && (int)spans[i].kind == kind)
				put_span(b, &spans[i], s);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (spans[i].id == id)
			put_term_label(b, &spans[i], s);
	}
	viz_buf_puts(b, "</g>\n");
}

/* The class and label of a [TEST] line's marker. */
static const char *marker_class(const struct viz_entry *e, char *label, size_t size)
{
	static const char *const cls[] = { [VIZ_EV_NONE] = "oth",
					   [VIZ_EV_DISCONNECT] = "dis",
					   [VIZ_EV_RECONNECT] = "rec",
					   [VIZ_EV_CRASH] = "crash",
					   [VIZ_EV_RESTART] = "rst" };
	static const char *const letter[] = { [VIZ_EV_NONE] = "",
					      [VIZ_EV_DISCONNECT] = "D",
					      [VIZ_EV_RECONNECT] = "R",
					      [VIZ_EV_CRASH] = "&#215;",
					      [VIZ_EV_RESTART] = "&#8593;" };
	int id = 0;
	enum viz_event ev = viz_test_event(e, &id);

	label[0] = '\0';
	if (ev != VIZ_EV_NONE)
		(void)snprintf(label, size, "%s%d", letter[ev], id);
	return cls[ev];
}

static void put_marker(struct viz_buf *b, const struct viz_test *t, const struct scale *s,
		       size_t row, double *last_label_x)
{
	const struct viz_entry *e = &t->entries[row];
	double x = tl_x(s, e->t_us);
	char label[24];
	const char *cls = marker_class(e, label, sizeof(label));

	viz_buf_printf(b,
		       "<a href=\"#r%zu\"><line class=\"mk %s\" x1=\"%.1f\" x2=\"%.1f\" "
		       "y1=\"%.1f\" y2=\"%.1f\"><title>",
		       row, cls, x, x, TL_TOP - 12, lanes_bottom(t) + 2);
	viz_buf_escape(b, e->msg, e->msg_len);
	viz_buf_puts(b, "</title></line>");
	/* Labels closer than this would overlap; the line and its title stay. */
	if (label[0] && x - *last_label_x >= 18) {
		viz_buf_printf(b,
			       "<text class=\"ml %s\" x=\"%.1f\" y=\"%.1f\" "
			       "text-anchor=\"middle\">%s</text>",
			       cls, x, TL_TOP - 15, label);
		*last_label_x = x;
	}
	viz_buf_puts(b, "</a>\n");
}

static void put_end_marker(struct viz_buf *b, const struct viz_test *t, const struct scale *s)
{
	double x;

	if (!t->ended || t->end_at == 0 || t->end_at >= t->n_entries)
		return;
	x = tl_x(s, t->entries[t->end_at - 1].t_us);
	viz_buf_printf(
		b,
		"<a href=\"#end\"><line class=\"mk end\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" "
		"y2=\"%.1f\"><title>test ended (%s); later entries are shutdown</title></line>"
		"<text class=\"ml end\" x=\"%.1f\" y=\"%.1f\" "
		"text-anchor=\"middle\">end</text></a>\n",
		x, x, TL_TOP - 12, lanes_bottom(t) + 2, viz_status_name(t->status), x, TL_TOP - 15);
}

/* The ends of an arrow between two lanes: from the edge of from's lane
 * that faces to's lane, to the facing edge of to's lane. */
static void edge_ys(int from, int to, double *y1, double *y2)
{
	if (to > from) {
		*y1 = lane_y(from) + TL_LANE;
		*y2 = lane_y(to);
	} else {
		*y1 = lane_y(from);
		*y2 = lane_y(to) + TL_LANE;
	}
}

static const char *rpc_name(enum viz_rpc_kind k)
{
	return k == VIZ_RV ? "RequestVote" : "AppendEntries";
}

/* The layer class of an RPC's arrows: rv, ae (with entries) or hb. */
static const char *rpc_layer(const struct viz_rpc *c)
{
	return c->kind == VIZ_RV ? "rv" : c->heartbeat ? "hb" : "ae";
}

static double row_x(const struct viz_test *t, const struct scale *s, size_t row)
{
	return tl_x(s, t->entries[row].t_us);
}

static void put_line(struct viz_buf *b, const char *cls, const char *layer, double x1, double y1,
		     double x2, double y2)
{
	viz_buf_printf(b, "<line class=\"%s %s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\">",
		       cls, layer, x1, y1, x2, y2);
}

/* "+12.345 ms" of a row, for titles. */
static void put_rel(struct viz_buf *b, const struct viz_test *t, size_t row)
{
	char rel[32];

	fmt_ms(rel, sizeof(rel), t->entries[row].t_us - first_time(t));
	viz_buf_printf(b, "+%s ms", rel);
}

/* The request: an arrow to the receiver's lane if it arrived (with a
 * dotted wait along the lane if the proxy delayed it), a cross where it
 * was dropped, a short stub if it never arrived. Each links to its send
 * row. Only arrived requests have class "rq". */
static void put_request(struct viz_buf *b, const struct viz_test *t, const struct scale *s,
			const struct viz_rpc *c)
{
	const char *layer = rpc_layer(c);
	double x1 = row_x(t, s, c->send), x2, y1, y2, ye;

	edge_ys(c->from, c->to, &y1, &y2);
	viz_buf_printf(b, "<a href=\"#r%zu\">", c->send);
	if (c->recv != VIZ_NO_ROW) {
		bool wait = c->delayed && c->proxy != VIZ_NO_ROW && c->proxy < c->recv;

		x2 = row_x(t, s, wait ? c->proxy : c->recv);
		put_line(b, "rq", layer, x1, y1, x2, y2);
	} else if (c->dropped) {
		x2 = c->drop_at_sender ? row_x(t, s, c->proxy) + 2 : row_x(t, s, c->proxy);
		ye = c->drop_at_sender ? y1 + (y2 - y1) * 0.3 : y2;
		put_line(b, "rqx lost", layer, x1, y1, x2, ye);
	} else {
		put_line(b, "stub lost", layer, x1, y1, x1 + 1.5, y1 + (y2 - y1) * 0.22);
	}
	viz_buf_printf(b, "<title>%s %d&#8594;%d, sent ", rpc_name(c->kind), c->from, c->to);
	put_rel(b, t, c->send);
	if (c->recv != VIZ_NO_ROW) {
		viz_buf_puts(b, ", received ");
		put_rel(b, t, c->recv);
		if (c->delayed)
			viz_buf_puts(b, " (delayed by the proxy)");
	} else if (c->dropped) {
		viz_buf_puts(b, c->drop_at_sender ? ", dropped by the sender " : ", dropped ");
		put_rel(b, t, c->proxy);
	} else {
		viz_buf_puts(b, c->cut_off ? ", not received: disconnected or down"
					   : ", no receipt in the log");
	}
	viz_buf_puts(b, "</title></line>");
	if (c->recv != VIZ_NO_ROW && c->delayed && c->proxy != VIZ_NO_ROW && c->proxy < c->recv)
		viz_buf_printf(b,
			       "<line class=\"dl %s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
			       "y2=\"%.1f\"><title>delayed by the proxy</title></line>",
			       layer, row_x(t, s, c->proxy), y2, row_x(t, s, c->recv), y2);
	if (c->dropped && c->recv == VIZ_NO_ROW) {
		x2 = c->drop_at_sender ? row_x(t, s, c->proxy) + 2 : row_x(t, s, c->proxy);
		ye = c->drop_at_sender ? y1 + (y2 - y1) * 0.3 : y2;
		viz_buf_printf(b, "<path class=\"xx lost %s\" d=\"M%.1f %.1fl6 6m0 -6l-6 6\"/>",
			       layer, x2 - 3, ye - 3);
	}
	viz_buf_puts(b, "</a>\n");
}

/* The reply, from the receiver's reply line back to the sender's line
 * that took it, or a stub if the sender never logged it. Green when the
 * vote was granted or the append succeeded, dashed red otherwise. In part
 * 1 a leader logs no AppendEntries reply it takes (stubs is false for
 * them): those replies are not drawn, not a stub each. */
static void put_reply(struct viz_buf *b, const struct viz_test *t, const struct scale *s,
		      const struct viz_rpc *c, bool stubs)
{
	const char *layer = rpc_layer(c);
	double x1, y1, y2;
	char cls[24];

	if (c->reply == VIZ_NO_ROW || (c->reply_recv == VIZ_NO_ROW && !stubs))
		return;
	x1 = row_x(t, s, c->reply);
	edge_ys(c->to, c->from, &y1, &y2);
	(void)snprintf(cls, sizeof(cls), "rp %s%s", c->ok ? "ok" : "no",
		       c->reply_recv == VIZ_NO_ROW ? " stub lost" : "");
	viz_buf_printf(b, "<a href=\"#r%zu\">", c->reply);
	if (c->reply_recv != VIZ_NO_ROW)
		put_line(b, cls, layer, x1, y1, row_x(t, s, c->reply_recv), y2);
	else
		put_line(b, cls, layer, x1, y1, x1 + 1.5, y1 + (y2 - y1) * 0.22);
	viz_buf_printf(b, "<title>%s reply %d&#8594;%d (%s, term %lld), sent ", rpc_name(c->kind),
		       c->to, c->from,
		       c->kind == VIZ_RV ? (c->ok ? "vote granted" : "vote refused")
					 : (c->ok ? "success" : "failure"),
		       c->reply_term);
	put_rel(b, t, c->reply);
	if (c->reply_recv != VIZ_NO_ROW) {
		viz_buf_puts(b, ", received ");
		put_rel(b, t, c->reply_recv);
	} else {
		viz_buf_puts(b, ", not taken by the sender in the log");
	}
	viz_buf_puts(b, "</title></line></a>\n");
}

static void put_rpcs(struct viz_buf *b, const struct viz_test *t, const struct scale *s,
		     const struct viz_rpc *rpcs, size_t n)
{
	bool ae_back = false; /* does any sender log the AppendEntries replies it takes? */

	for (size_t i = 0; i < n && !ae_back; i++)
		ae_back = rpcs[i].kind == VIZ_AE && rpcs[i].reply_recv != VIZ_NO_ROW;
	viz_buf_puts(b, "<g class=\"rpcs\">\n");
	for (size_t i = 0; i < n && !b->err; i++) {
		if (rpcs[i].from == rpcs[i].to)
			continue;
		put_request(b, t, s, &rpcs[i]);
		put_reply(b, t, s, &rpcs[i], rpcs[i].kind == VIZ_RV || ae_back);
	}
	viz_buf_puts(b, "</g>\n");
}

/* Labels on one lane closer than this would overlap. */
#define LABEL_GAP 16.0

/* The log length of server id as a step line in the lane's bottom
 * quarter; with labels (nN where it changes to N > 0, if there is room)
 * or without. */
static void put_log_length(struct viz_buf *b, const struct viz_test *t, const struct scale *s,
			   int id, long max_len, bool labels)
{
	double y = lane_y(id), last = -100, x, ly, h = TL_LANE * 0.3;
	long len = -1, v;
	bool open = false;

	for (size_t i = 0; i < t->n_entries && !b->err; i++) {
		const struct viz_entry *e = &t->entries[i];

		if (e->id != id || (v = viz_log_length(e)) < 0 || v == len)
			continue;
		len = v;
		x = tl_x(s, e->t_us);
		ly = y + TL_LANE - 1 - h * (double)v / (double)max_len;
		if (labels) {
			if (v > 0 && x - last >= LABEL_GAP * 1.4) {
				viz_buf_printf(
					b, "<text class=\"lt\" x=\"%.1f\" y=\"%.1f\">n%ld</text>",
					x + 1, ly - 1.5, v);
				last = x;
			}
		} else if (!open) {
			viz_buf_printf(b, "<path class=\"ll\" d=\"M%.1f %.1f", x, ly);
			open = true;
		} else {
			viz_buf_printf(b, "H%.1fV%.1f", x, ly);
		}
	}
	if (open)
		viz_buf_printf(b, "H%.1f\"><title>server %d: log length</title></path>",
			       tl_x(s, last_time(t)), id);
}

/* A lane's part 2/3 marks: a purple triangle where the commit index moves
 * (labelled cN), an orange diamond per "Submit received by" (hollow if
 * the server was not the leader), and the log length. */
static void put_lane_marks(struct viz_buf *b, const struct viz_test *t, const struct scale *s,
			   int id, long max_len)
{
	double y = lane_y(id), last_c = -100, x;
	long commit = -2, v;

	viz_buf_printf(b, "<g class=\"lm\" data-server=\"%d\">", id);
	if (max_len > 0) {
		put_log_length(b, t, s, id, max_len, false);
		put_log_length(b, t, s, id, max_len, true);
	}
	for (size_t i = 0; i < t->n_entries && !b->err; i++) {
		const struct viz_entry *e = &t->entries[i];

		if (e->id != id)
			continue;
		x = tl_x(s, e->t_us);
		v = viz_commit_index(e);
		if (v != -2 && v != commit) {
			commit = v;
			viz_buf_printf(b,
				       "<a href=\"#r%zu\"><path class=\"cmt\" data-server=\"%d\" "
				       "data-commit=\"%ld\" d=\"M%.1f %.1fh8l-4 7z\"><title>server "
				       "%d: commitIndex=%ld</title></path>",
				       i, id, v, x - 4, y, id, v);
			if (x - last_c >= LABEL_GAP) {
				viz_buf_printf(
					b, "<text class=\"cl\" x=\"%.1f\" y=\"%.1f\">c%ld</text>",
					x + 4, y + 8, v);
				last_c = x;
			}
			viz_buf_puts(b, "</a>");
		}
		if (msg_starts(e, "Submit received by", NULL)) {
			viz_buf_printf(b,
				       "<a href=\"#r%zu\"><path class=\"sub%s\" d=\"M%.1f %.1fl4 "
				       "4-4 4-4-4z\"><title>",
				       i, has(e, "by Leader") ? "" : " no", x, y + TL_LANE - 9);
			viz_buf_escape(b, e->msg, e->msg_len);
			viz_buf_puts(b, "</title></path></a>");
		}
	}
	viz_buf_puts(b, "</g>\n");
}

static long max_log_length(const struct viz_test *t)
{
	long m = 0, v;

	for (size_t i = 0; i < t->n_entries; i++) {
		v = viz_log_length(&t->entries[i]);
		if (v > m)
			m = v;
	}
	return m;
}

/* The arrowheads, one per colour (markers cannot take their line's). */
static void put_defs(struct viz_buf *b)
{
	static const struct {
		const char *id, *fill;
	} heads[] = { { "a-rv", "#e65100" }, { "a-ae", "#1565c0" }, { "a-hb", "#78909c" },
		      { "a-ok", "#2e7d32" }, { "a-no", "#c62828" }, { "a-st", "#9e9e9e" } };

	viz_buf_puts(b, "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" "
			"patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
			"<rect width=\"2\" height=\"6\" fill=\"#c62828\" "
			"fill-opacity=\".7\"/></pattern>"
			"<pattern id=\"downp\" width=\"5\" height=\"5\" "
			"patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(-45)\">"
			"<rect width=\"5\" height=\"5\" fill=\"#616161\"/>"
			"<rect width=\"2\" height=\"5\" fill=\"#111\"/></pattern>\n");
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		viz_buf_printf(
			b,
			"<marker id=\"%s\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" "
			"markerWidth=\"6\" markerHeight=\"6\" markerUnits=\"userSpaceOnUse\" "
			"orient=\"auto\"><path d=\"M0 0L8 4L0 8z\" fill=\"%s\"/></marker>\n",
			heads[i].id, heads[i].fill);
	viz_buf_puts(b, "</defs>\n");
}

static void put_timeline(struct viz_buf *b, const struct viz_test *t, const struct viz_span *spans,
			 size_t n, const struct viz_rpc *rpcs, size_t n_rpcs,
			 const struct viz_rpc_stats *rs)
{
	struct scale s = { first_time(t), last_time(t) - first_time(t) };
	double last_label_x = -100;
	long max_len = max_log_length(t);

	if (s.span < 1000)
		s.span = 1000; /* a test of one instant still gets an axis */
	viz_buf_printf(b,
		       "<svg class=\"timeline\" data-servers=\"%d\" data-sends=\"%zu\" "
		       "data-matched=\"%zu\" viewBox=\"0 0 %.0f %.0f\" "
		       "role=\"img\" aria-label=\"server states and RPCs over time\">\n",
		       t->n_servers, rs->sends, rs->matched, TL_X0 + TL_W + 16,
		       lanes_bottom(t) + TL_AXIS);
	put_defs(b);
	put_ticks(b, t, &s);
	for (int id = 0; id < t->n_servers; id++)
		put_lane(b, id, spans, n, &s);
	for (int id = 0; id < t->n_servers; id++)
		put_lane_marks(b, t, &s, id, max_len);
	put_rpcs(b, t, &s, rpcs, n_rpcs);
	for (size_t i = 0; i < t->n_entries; i++) {
		if (t->entries[i].id == VIZ_ID_TEST)
			put_marker(b, t, &s, i, &last_label_x);
	}
	put_end_marker(b, t, &s);
	viz_buf_puts(b, "</svg>\n");
}

static int n_columns(const struct viz_test *t)
{
	return 1 + (t->have_test ? 1 : 0) + t->n_servers;
}

/* Same columns in the header table and in every chunk's table: with
 * table-layout:fixed they line up. */
static void put_colgroup(struct viz_buf *b, const struct viz_test *t)
{
	viz_buf_puts(b, "<colgroup><col class=\"t\">");
	if (t->have_test)
		viz_buf_puts(b, "<col class=\"c\">");
	if (t->n_servers > 0)
		viz_buf_printf(b, "<col span=\"%d\">", t->n_servers);
	viz_buf_puts(b, "</colgroup>");
}

/* The header is a table of its own, sticky at the top of the window
 * while the chunks below it scroll. */
static void put_table_head(struct viz_buf *b, const struct viz_test *t)
{
	viz_buf_printf(b, "<div class=\"rows\">\n<table class=\"log hdr\" data-servers=\"%d\">",
		       t->n_servers);
	put_colgroup(b, t);
	viz_buf_puts(b, "\n<thead><tr><th class=\"t\">Time");
	if (t->have_test)
		viz_buf_puts(b, "<th class=\"c\">TEST");
	for (int id = 0; id < t->n_servers; id++)
		viz_buf_printf(b, "<th>%d", id);
	viz_buf_puts(b, "</tr></thead></table>\n");
}

/* Rows go in chunks of CHUNK_ROWS, each its own table in a div with
 * content-visibility:auto, so that a browser lays out only the chunks
 * in view: one table of 100,000 rows takes Chromium minutes. */
#define CHUNK_ROWS 500

/* The chunk's height until a browser lays it out: about 30 px a row. */
static void open_chunk(struct viz_buf *b, const struct viz_test *t, size_t first)
{
	size_t rows = t->n_entries - first < CHUNK_ROWS ? t->n_entries - first : CHUNK_ROWS;

	viz_buf_printf(b,
		       "<div class=\"chunk\" style=\"contain-intrinsic-size:auto %zupx\">"
		       "<table class=\"log\">",
		       rows * 30 + 30);
	put_colgroup(b, t);
	viz_buf_puts(b, "\n<tbody>\n");
}

static void close_chunk(struct viz_buf *b)
{
	viz_buf_puts(b, "</tbody></table></div>\n");
}

static void put_end_row(struct viz_buf *b, const struct viz_test *t)
{
	viz_buf_printf(b, "<tr class=\"end\" id=\"end\"><td colspan=\"%d\">test ended: %s",
		       n_columns(t), viz_status_name(t->status));
	if (t->go_secs >= 0)
		viz_buf_printf(b, " (%.2fs)", t->go_secs);
	if (t->end_at < t->n_entries)
		viz_buf_puts(b, "; the rows below were logged after the end marker");
	viz_buf_puts(b, "\n");
}

static const char *row_class(const struct viz_test *t, size_t i)
{
	static const char *const cls[2][VIZ_EV_RESTART + 1] = {
		{ "test", "test dis", "test rec", "test crash", "test rst" },
		{ "test late", "test dis late", "test rec late", "test crash late",
		  "test rst late" },
	};
	const struct viz_entry *e = &t->entries[i];
	bool late = t->ended && i >= t->end_at;
	int id;

	if (e->id != VIZ_ID_TEST)
		return late ? "late" : NULL;
	return cls[late][viz_test_event(e, &id)];
}

/* One table row, with the states after the entry (as in the Go tool).
 * Every row has an id, for the links of the timeline's spans, arrows and
 * marks. */
static void put_row(struct viz_buf *b, const struct viz_test *t, const struct viz_replay *r,
		    size_t i)
{
	const struct viz_entry *e = &t->entries[i];
	const char *cls = row_class(t, i);
	char rel[32];

	viz_buf_puts(b, "<tr");
	if (cls)
		viz_buf_printf(b, " class=\"%s\"", cls);
	viz_buf_printf(b, " id=\"r%zu\"", i);
	fmt_ms(rel, sizeof(rel), e->t_us - first_time(t));
	viz_buf_printf(b, "><td class=\"t\">%s<i>+%s</i>", e->ts, rel);
	if (t->have_test) {
		viz_buf_puts(b, "<td class=\"c\">");
		if (e->id == VIZ_ID_TEST)
			viz_buf_escape(b, e->msg, e->msg_len);
	}
	for (int id = 0; id < t->n_servers; id++) {
		viz_buf_printf(b, "<td class=\"%s%s%s\">", state_class(r->state[id]),
			       r->disconnected[id] ? " x" : "", r->crashed[id] ? " z" : "");
		if (id == e->id)
			viz_buf_escape(b, e->msg, e->msg_len);
	}
	viz_buf_puts(b, "\n");
}

static void put_table(struct viz_buf *b, const struct viz_test *t)
{
	struct viz_replay r;

	viz_replay_init(&r);
	put_table_head(b, t);
	open_chunk(b, t, 0);
	for (size_t i = 0; i < t->n_entries && !b->err; i++) {
		if (i > 0 && i % CHUNK_ROWS == 0) {
			close_chunk(b);
			open_chunk(b, t, i);
		}
		if (t->ended && i == t->end_at)
			put_end_row(b, t);
		(void)viz_replay_apply(&r, &t->entries[i]);
		put_row(b, t, &r, i);
	}
	if (t->ended && t->end_at == t->n_entries)
		put_end_row(b, t);
	close_chunk(b);
	viz_buf_puts(b, "</div>\n");
	if (t->n_entries == 0)
		viz_buf_puts(b, "<p>This test logged no entries.</p>\n");
}

static void put_others(struct viz_buf *b, const struct viz_test *t)
{
	if (t->n_others == 0)
		return;
	viz_buf_printf(b,
		       "<details><summary>%zu other line%s in this test's part of the log "
		       "(not entries: left out of the table)</summary>\n<pre class=\"other\">",
		       t->n_others, t->n_others == 1 ? "" : "s");
	for (size_t i = 0; i < t->n_others; i++) {
		viz_buf_escape(b, t->others[i].text, t->others[i].len);
		viz_buf_puts(b, "\n");
	}
	viz_buf_puts(b, "</pre></details>\n");
}

/* Writes the whole page of one test into out; returns 0 or a negative
 * errno (ENOMEM, or the sink's write error). */
int viz_render_page(const struct viz_test *t, struct viz_buf *out)
{
	struct viz_span *spans = NULL;
	struct viz_rpc *rpcs = NULL;
	struct viz_rpc_stats rs;
	size_t n = 0, n_rpcs = 0;
	int rv;

	rv = viz_collect_spans(t, &spans, &n);
	if (rv)
		return rv;
	rv = viz_match_rpcs(t, &rpcs, &n_rpcs, &rs);
	if (rv)
		goto out_free_spans;
	put_head(out, t);
	put_summary(out, t, &rs);
	put_legend(out);
	put_layers(out);
	put_timeline(out, t, spans, n, rpcs, n_rpcs, &rs);
	put_table(out, t);
	put_others(out, t);
	viz_buf_puts(out, "</body>\n</html>\n");
	rv = out->err ? -out->err : 0;
	free(rpcs);
out_free_spans:
	free(spans);
	return rv;
}

static int render_to(FILE *f, const struct viz_test *t)
{
	struct viz_buf b = { .sink = f };
	int rv = viz_render_page(t, &b);

	if (!rv)
		rv = viz_buf_flush(&b);
	viz_buf_free(&b);
	return rv;
}

/* O_NOFOLLOW: in a shared /tmp, a symlink planted at our file name must
 * not make us overwrite its target. */
static FILE *create_page(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	FILE *f;
	int err;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, "w");
	if (!f) {
		err = errno;
		(void)close(fd); /* the fdopen error is the one to report */
		errno = err;
	}
	return f;
}

/* Writes t's page as DIR/FILE_NAME.html; on success *path is that path
 * (to be freed). On failure prints why and removes the partial file. */
int viz_write_page(const char *dir, const struct viz_test *t, char **path)
{
	FILE *f;
	int rv;

	*path = NULL;
	if (asprintf(path, "%s/%s.html", dir, t->file_name) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	f = create_page(*path);
	if (!f) {
		rv = -errno;
		fprintf(stderr, PROG ": cannot create %s: %s\n", *path, strerror(errno));
		goto out_free_path;
	}
	rv = render_to(f, t);
	if (fclose(f) != 0 && !rv)
		rv = -errno;
	if (!rv)
		return 0;
	fprintf(stderr, PROG ": cannot write %s: %s\n", *path, strerror(-rv));
	if (unlink(*path) != 0)
		fprintf(stderr, PROG ": cannot remove %s: %s\n", *path, strerror(errno));
out_free_path:
	free(*path);
	*path = NULL;
	return rv;
}

/* ---- The index page ---------------------------------------------------- */

static const char index_css[] =
	"body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 16px 24px;"
	"color:#1f2328}\n"
	"h1{font-size:21px;margin:14px 0 8px}\n"
	"table.idx{border-collapse:collapse}\n"
	"table.idx th,table.idx td{border:1px solid #ccc;padding:4px 10px;text-align:right}\n"
	"table.idx th{background:#37474f;color:#fff}\n"
	"table.idx td.n{text-align:left}\n"
	"table.idx td.PASS{background:#c8e6c9}table.idx td.FAIL,table.idx td.ERROR{"
	"background:#ffcdd2}table.idx td.INCOMPLETE{background:#ffe0b2}"
	"table.idx td.SKIP{background:#eee}\n";

static void put_index_row(struct viz_buf *b, const struct viz_test *t)
{
	const char *st = viz_status_name(t->status);
	struct viz_stats s;
	char dur[32];

	viz_test_stats(t, &s);
	if (t->go_secs >= 0)
		(void)snprintf(dur, sizeof(dur), "%.2f s", t->go_secs);
	else
		(void)snprintf(dur, sizeof(dur), "%.2f s*", (double)s.duration_us / 1e6);
	/* file_name is [A-Za-z0-9_-] only: safe in an href as it is. */
	viz_buf_printf(b, "<tr data-test><td class=\"n\"><a href=\"%s.html\">", t->file_name);
	viz_buf_escape(b, t->name, strlen(t->name));
	if (t->dup)
		viz_buf_printf(b, "_%zu", t->dup);
	viz_buf_printf(b, "</a><td%s>%d%s<td class=\"%s\">%s<td>%s<td>%d<td>%zu<td>%zu<td>%zu",
		       s.part_inferred ? " title=\"guessed from the log's words\"" : "", s.part,
		       s.part_inferred ? "?" : "", st, st, dur, t->n_servers, s.elections,
		       s.leaders, s.commits);
	if (s.max_commit > -2)
		viz_buf_printf(b, " (to %ld)", s.max_commit);
	viz_buf_printf(b, "<td>%zu<td>%zu<td>%zu\n", s.submits, s.crashes, t->n_entries);
}

/* index.html: one row per test of the log, linking to its page. */
int viz_render_index(const struct viz_log *log, struct viz_buf *out)
{
	size_t pass = 0;

	for (size_t i = 0; i < log->n_tests; i++)
		pass += log->tests[i].status == VIZ_PASS;
	viz_buf_printf(out,
		       "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		       "<meta name=\"generator\" content=\"raft-testlog-viz\">\n"
		       "<title>raft test log: %zu tests</title>\n<style>\n%s</style>\n</head>\n"
		       "<body>\n<h1>%zu tests, %zu passed</h1>\n",
		       log->n_tests, index_css, log->n_tests, pass);
	viz_buf_puts(out, "<table class=\"idx\"><thead><tr><th>Test<th>Part<th>Status"
			  "<th>Duration<th>Servers<th>Elections<th>Leaders<th>Commits"
			  "<th>Submits<th>Crashes<th>Entries</tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < log->n_tests && !out->err; i++)
		put_index_row(out, &log->tests[i]);
	viz_buf_puts(out, "</tbody></table>\n<p>Part: from go test's package line, or guessed "
			  "from the log's words (?). Duration: go test's, or first to last entry "
			  "(*). Elections: \"becomes Candidate\" lines; Leaders: \"becomes "
			  "Leader\"; Commits: \"leader sets commitIndex\" lines (to the highest "
			  "commit index).</p>\n</body>\n</html>\n");
	return out->err ? -out->err : 0;
}

/* Writes DIR/index.html; *path as in viz_write_page. */
int viz_write_index(const char *dir, const struct viz_log *log, char **path)
{
	struct viz_buf b = { 0 };
	FILE *f;
	int rv;

	if (asprintf(path, "%s/index.html", dir) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	f = create_page(*path);
	if (!f) {
		rv = -errno;
		fprintf(stderr, PROG ": cannot create %s: %s\n", *path, strerror(errno));
		goto out_free_path;
	}
	b.sink = f;
	rv = viz_render_index(log, &b);
	if (!rv)
		rv = viz_buf_flush(&b);
	viz_buf_free(&b);
	if (fclose(f) != 0 && !rv)
		rv = -errno;
	if (!rv)
		return 0;
	fprintf(stderr, PROG ": cannot write %s: %s\n", *path, strerror(-rv));
	if (unlink(*path) != 0)
		fprintf(stderr, PROG ": cannot remove %s: %s\n", *path, strerror(errno));
out_free_path:
	free(*path);
	*path = NULL;
	return rv;
}

#ifndef VIZ_NO_MAIN

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [-o DIR] < LOG\n"
		   "Reads a raft test log (go test -v or cmocka output) on stdin and writes\n"
		   "one HTML page per test into DIR (default /tmp).\n");
}

/* Makes dir if missing and returns its absolute path (to be freed). */
static char *open_out_dir(const char *dir)
{
	struct stat st;
	char *abs;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": cannot create directory %s: %s\n", dir, strerror(errno));
		return NULL;
	}
	if (stat(dir, &st) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, PROG ": %s: not a directory\n", dir);
		return NULL;
	}
	abs = realpath(dir, NULL);
	if (!abs)
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
	return abs;
}

/* As the Go tool: "PASS TestName_1 map[0:true 1:true TEST:true] ; entries: N". */
static void print_test(const struct viz_test *t)
{
	const char *sep = "";

	printf("%s %s", viz_status_name(t->status), t->name);
	if (t->dup)
		printf("_%zu", t->dup);
	printf(" map[");
	for (int id = 0; id < t->n_servers; id++) {
		if (t->seen[id]) {
			printf("%s%d:true", sep, id);
			sep = " ";
		}
	}
	printf("%s] ; entries: %zu\n", t->have_test ? (*sep ? " TEST:true" : "TEST:true") : "",
	       t->n_entries);
}

/* What matching found, after the Go tool's line: "... rpcs: 46 sent, 29
 * arrived, 0 dropped, 0 delayed, 17 never arrived". */
static int print_rpcs(const struct viz_test *t)
{
	struct viz_rpc_stats rs;
	struct viz_rpc *rpcs;
	size_t n;
	int rv = viz_match_rpcs(t, &rpcs, &n, &rs);

	if (rv) {
		fprintf(stderr, PROG ": matching RPCs: %s\n", strerror(-rv));
		return rv;
	}
	free(rpcs);
	printf("... rpcs: %zu sent, %zu arrived, %zu dropped, %zu delayed, %zu never arrived\n",
	       rs.sends, rs.matched, rs.dropped, rs.delayed, rs.lost);
	return 0;
}

/* Like go test's last line: PASS, FAIL, or INCOMPLETE if some test has no
 * end marker and none failed. */
static void print_overall(const struct viz_log *log)
{
	size_t count[VIZ_ERROR + 1] = { 0 };
	const char *overall = "PASS";

	for (size_t i = 0; i < log->n_tests; i++)
		count[log->tests[i].status]++;
	if (count[VIZ_FAIL] + count[VIZ_ERROR])
		overall = "FAIL";
	else if (count[VIZ_INCOMPLETE])
		overall = "INCOMPLETE";
	printf("%s (%zu test%s: %zu passed, %zu failed, %zu skipped, %zu incomplete)\n", overall,
	       log->n_tests, log->n_tests == 1 ? "" : "s", count[VIZ_PASS],
	       count[VIZ_FAIL] + count[VIZ_ERROR], count[VIZ_SKIP], count[VIZ_INCOMPLETE]);
}

static int read_input(struct viz_log *log)
{
	int rv = viz_log_read(log, stdin);

	if (rv) {
		fprintf(stderr, PROG ": reading stdin: %s\n", strerror(-rv));
		return rv;
	}
	if (log->n_tests == 0) {
		fprintf(stderr,
			PROG
			": no test found in the input (%zu lines): expected a "
			"\"=== RUN   Name\" (go test -v) or \"[ RUN      ] Name\" (cmocka) line\n",
			log->n_lines);
		return -EINVAL;
	}
	if (log->n_orphans)
		fprintf(stderr, PROG ": warning: %zu entry lines before the first test left out\n",
			log->n_orphans);
	rv = viz_log_name_files(log);
	if (rv)
		fprintf(stderr, PROG ": naming files: %s\n", strerror(-rv));
	return rv;
}

static int emit_all(struct viz_log *log, const char *dir)
{
	char *path = NULL;
	int rv = 0;

	for (size_t i = 0; i < log->n_tests && !rv; i++) {
		path = NULL;
		print_test(&log->tests[i]);
		rv = print_rpcs(&log->tests[i]);
		if (!rv)
			rv = viz_write_page(dir, &log->tests[i], &path);
		if (!rv)
			printf("... Emitted file://%s\n\n", path);
		free(path);
	}
	/* A whole run's log gets a page listing its tests. */
	if (!rv && log->n_tests > 1) {
		path = NULL;
		rv = viz_write_index(dir, log, &path);
		if (!rv)
			printf("... Emitted file://%s\n\n", path);
		free(path);
	}
	if (!rv)
		print_overall(log);
	return rv;
}

int main(int argc, char **argv)
{
	const char *dir = "/tmp";
	struct viz_log log;
	char *abs = NULL;
	int c, rv;

	while ((c = getopt(argc, argv, "o:h")) != -1) {
		switch (c) {
		case 'o':
			dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s' (the log is read from stdin)\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (isatty(STDIN_FILENO))
		fprintf(stderr, PROG ": reading the log from the terminal (end with Ctrl-D)\n");
	viz_log_init(&log);
	rv = read_input(&log);
	if (!rv) {
		abs = open_out_dir(dir);
		rv = abs ? emit_all(&log, abs) : -EINVAL;
	}
	free(abs);
	viz_log_free(&log);
	/* stdout's writes are checked here, once: a full disk or closed pipe
	 * shows in its error flag or in the final flush. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing stdout: %s\n", strerror(errno));
		return 1;
	}
	return rv ? 1 : 0;
}

#endif /* VIZ_NO_MAIN */
