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

/* Parses the "[id]" of an entry: a server number below VIZ_MAX_SERVERS or
 * TEST. Other ids are not entries (the Go tool would stop on them). */
static bool parse_id(const char *s, size_t len, int *id)
{
	long v = 0;
	size_t i = 0;

	if (len == 4 && memcmp(s, "TEST", 4) == 0) {
		*id = VIZ_ID_TEST;
		return true;
	}
	if (len == 0 || len > 4 || !take_digits(s, len, &i, 1, 4, &v) || i != len ||
	    v >= VIZ_MAX_SERVERS)
		return false;
	*id = (int)v;
	return true;
}

/* An entry line is "HH:MM:SS.uuuuuu [id] message", as matched by the Go
 * tool's ([0-9:.]+) \[(\w+)\] (.*) but anchored at the line's start (after
 * blanks), so that text inside a message never starts an entry. On
 * success fills e's time, id and ts, and *msg_off. */
static bool parse_entry(const char *s, size_t len, struct viz_entry *e, size_t *msg_off)
{
	size_t i = skip_blanks(s, len, 0), n;
	const char *close;

	n = parse_timestamp(s + i, len - i, &e->t_us);
	if (n == 0)
		return false;
	memcpy(e->ts, s + i, n);
	e->ts[n] = '\0';
	i += n;
	if (!take_char(s, len, &i, ' ') || !take_char(s, len, &i, '['))
		return false;
	close = memchr(s + i, ']', len - i);
	if (!close || !parse_id(s + i, (size_t)(close - (s + i)), &e->id))
		return false;
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

static int add_entry(struct viz_log *log, struct viz_entry *e, const char *msg, size_t n)
{
	struct viz_test *t = cur_test(log);
	struct viz_entry *entries;

	if (!t) {
		log->n_orphans++;
		return 0;
	}
	entries = grow(t->entries, &t->cap_entries, t->n_entries, sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	t->entries = entries;
	e->msg = copy_bytes(msg, n);
	if (!e->msg)
		return -ENOMEM;
	e->msg_len = n;
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

/* Takes one line, with or without its "\n" or "\r\n"; returns 0 or
 * -ENOMEM. Lines that are neither boundaries nor entries are kept as the
 * current test's other lines. */
int viz_log_feed(struct viz_log *log, const char *line, size_t len)
{
	enum viz_format fmt;
	enum viz_status st;
	struct viz_entry e;
	const char *name;
	size_t n, off;
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
	if (parse_entry(line, len, &e, &off))
		return add_entry(log, &e, line + off, len - off);
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

/* "Disconnect N" / "Reconnect N" from [TEST]; *id is N. */
static bool test_event(const struct viz_entry *e, bool *disconnect, int *id)
{
	static const char *const words[] = { "Disconnect ", "Reconnect " };
	size_t i = skip_blanks(e->msg, e->msg_len, 0), wl, j;
	long v;

	for (int w = 0; w < 2; w++) {
		wl = strlen(words[w]);
		if (e->msg_len - i < wl || memcmp(e->msg + i, words[w], wl) != 0)
			continue;
		j = i + wl;
		if (!take_digits(e->msg, e->msg_len, &j, 1, 4, &v) || v >= VIZ_MAX_SERVERS)
			return false;
		*disconnect = w == 0;
		*id = (int)v;
		return true;
	}
	return false;
}

/* Applies one entry; returns the id of the server whose state, term or
 * connection it changed, or -1. */
int viz_replay_apply(struct viz_replay *r, const struct viz_entry *e)
{
	enum viz_state st;
	bool becomes, disconnect;
	long term;
	int id;

	if (e->id == VIZ_ID_TEST) {
		if (!test_event(e, &disconnect, &id) || r->disconnected[id] == disconnect)
			return -1;
		r->disconnected[id] = disconnect;
		return id;
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

/* After entry row changed server id: closes its open spans that no longer
 * hold and opens the new ones. */
static int update_spans(struct span_list *l, struct viz_span *st, struct viz_span *dc,
			const struct viz_replay *r, int id, long long t, size_t row)
{
	int rv = 0;

	if (st->state != r->state[id] || st->term != r->term[id]) {
		if (st->state != VIZ_NONE)
			rv = push_span(l, st, t);
		st->state = r->state[id];
		st->term = r->term[id];
		st->t0_us = t;
		st->row = row;
	}
	if (!rv && (dc->state != VIZ_NONE) != r->disconnected[id]) {
		if (dc->state != VIZ_NONE)
			rv = push_span(l, dc, t);
		dc->state = r->disconnected[id] ? VIZ_DEAD : VIZ_NONE; /* "open" flag */
		dc->t0_us = t;
		dc->row = row;
	}
	return rv;
}

/* Every server's state spans and disconnected spans over the test, in the
 * order they end; spans still open at the last entry end there. */
int viz_collect_spans(const struct viz_test *t, struct viz_span **spans, size_t *n)
{
	struct viz_span st[VIZ_MAX_SERVERS], dc[VIZ_MAX_SERVERS];
	struct span_list l = { 0 };
	struct viz_replay r;
	long long t_end = t->n_entries ? t->entries[t->n_entries - 1].t_us : 0;
	int rv = 0, id;

	viz_replay_init(&r);
	for (int i = 0; i < VIZ_MAX_SERVERS; i++) {
		st[i] = (struct viz_span){ .kind = VIZ_SPAN_STATE, .id = i, .state = VIZ_NONE };
		dc[i] = (struct viz_span){ .kind = VIZ_SPAN_DISCONNECTED,
					   .id = i,
					   .state = VIZ_NONE };
	}
	for (size_t i = 0; i < t->n_entries && !rv; i++) {
		id = viz_replay_apply(&r, &t->entries[i]);
		if (id >= 0)
			rv = update_spans(&l, &st[id], &dc[id], &r, id, t->entries[i].t_us, i);
	}
	for (int i = 0; i < VIZ_MAX_SERVERS && !rv; i++) {
		if (st[i].state != VIZ_NONE)
			rv = push_span(&l, &st[i], t_end);
		if (!rv && dc[i].state != VIZ_NONE)
			rv = push_span(&l, &dc[i], t_end);
	}
	if (rv) {
		free(l.v);
		return rv;
	}
	*spans = l.v;
	*n = l.n;
	return 0;
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
	"td.F{background:#f2f6fc}td.C{background:#fbf0b8}td.L{background:#c9efd8}"
	"td.D{background:#d9d9d9}td.N{background:#fff}\n"
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
	viz_buf_printf(b, " -- %s</title>\n<style>\n%s</style>\n</head>\n<body>\n",
		       viz_status_name(t->status), page_css);
}

static size_t entries_after_end(const struct viz_test *t)
{
	return t->ended ? t->n_entries - t->end_at : 0;
}

static void put_summary(struct viz_buf *b, const struct viz_test *t)
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
			"<span><i class=\"sw mk dis\"></i>[TEST] Disconnect</span>"
			"<span><i class=\"sw mk rec\"></i>[TEST] Reconnect</span>"
			"<span><i class=\"sw mk oth\"></i>other [TEST] line</span>"
			"</div>\n");
}

/* Timeline geometry, in SVG user units. */
#define TL_X0	56.0
#define TL_W	1224.0
#define TL_TOP	30.0
#define TL_LANE 22.0
#define TL_GAP	8.0
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
 * disconnected spans on top (hatched, so the state still shows), then the
 * leaders' terms above all. */
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
	for (int kind = VIZ_SPAN_STATE; kind <= VIZ_SPAN_DISCONNECTED; kind++) {
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
	bool disconnect;
	int id;

	if (!test_event(e, &disconnect, &id)) {
		label[0] = '\0';
		return "oth";
	}
	(void)snprintf(label, size, "%c%d", disconnect ? 'D' : 'R', id);
	return disconnect ? "dis" : "rec";
}

static void put_marker(struct viz_buf *b, const struct viz_test *t, const struct scale *s,
		       size_t row, double *last_label_x)
{
	const struct viz_entry *e = &t->entries[row];
	double x = tl_x(s, e->t_us);
	char label[16];
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

static void put_timeline(struct viz_buf *b, const struct viz_test *t, const struct viz_span *spans,
			 size_t n)
{
	struct scale s = { first_time(t), last_time(t) - first_time(t) };
	double last_label_x = -100;

	if (s.span < 1000)
		s.span = 1000; /* a test of one instant still gets an axis */
	viz_buf_printf(b,
		       "<svg class=\"timeline\" data-servers=\"%d\" viewBox=\"0 0 %.0f %.0f\" "
		       "role=\"img\" aria-label=\"server states over time\">\n",
		       t->n_servers, TL_X0 + TL_W + 16, lanes_bottom(t) + TL_AXIS);
	viz_buf_puts(b, "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" "
			"patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
			"<rect width=\"2\" height=\"6\" fill=\"#c62828\" "
			"fill-opacity=\".7\"/></pattern></defs>\n");
	put_ticks(b, t, &s);
	for (int id = 0; id < t->n_servers; id++)
		put_lane(b, id, spans, n, &s);
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
	const struct viz_entry *e = &t->entries[i];
	bool late = t->ended && i >= t->end_at;
	bool disconnect;
	int id;

	if (e->id != VIZ_ID_TEST)
		return late ? "late" : NULL;
	if (!test_event(e, &disconnect, &id))
		return late ? "test late" : "test";
	if (disconnect)
		return late ? "test dis late" : "test dis";
	return late ? "test rec late" : "test rec";
}

/* One table row, with the states after the entry (as in the Go tool).
 * Rows that start a timeline span get an id for the span's link. */
static void put_row(struct viz_buf *b, const struct viz_test *t, const struct viz_replay *r,
		    size_t i, bool anchor)
{
	const struct viz_entry *e = &t->entries[i];
	const char *cls = row_class(t, i);
	char rel[32];

	viz_buf_puts(b, "<tr");
	if (cls)
		viz_buf_printf(b, " class=\"%s\"", cls);
	if (anchor)
		viz_buf_printf(b, " id=\"r%zu\"", i);
	fmt_ms(rel, sizeof(rel), e->t_us - first_time(t));
	viz_buf_printf(b, "><td class=\"t\">%s<i>+%s</i>", e->ts, rel);
	if (t->have_test) {
		viz_buf_puts(b, "<td class=\"c\">");
		if (e->id == VIZ_ID_TEST)
			viz_buf_escape(b, e->msg, e->msg_len);
	}
	for (int id = 0; id < t->n_servers; id++) {
		viz_buf_printf(b, "<td class=\"%s%s\">", state_class(r->state[id]),
			       r->disconnected[id] ? " x" : "");
		if (id == e->id)
			viz_buf_escape(b, e->msg, e->msg_len);
	}
	viz_buf_puts(b, "\n");
}

static void put_table(struct viz_buf *b, const struct viz_test *t)
{
	struct viz_replay r;
	int changed;

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
		changed = viz_replay_apply(&r, &t->entries[i]);
		put_row(b, t, &r, i, changed >= 0 || t->entries[i].id == VIZ_ID_TEST);
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
	size_t n = 0;
	int rv;

	rv = viz_collect_spans(t, &spans, &n);
	if (rv)
		return rv;
	put_head(out, t);
	put_summary(out, t);
	put_legend(out);
	put_timeline(out, t, spans, n);
	put_table(out, t);
	put_others(out, t);
	viz_buf_puts(out, "</body>\n</html>\n");
	free(spans);
	return out->err ? -out->err : 0;
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
	char *path;
	int rv = 0;

	for (size_t i = 0; i < log->n_tests && !rv; i++) {
		print_test(&log->tests[i]);
		rv = viz_write_page(dir, &log->tests[i], &path);
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
