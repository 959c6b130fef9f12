/*
 * viz_test.c: cmocka tests of raft-testlog-viz's parser and page writer.
 * Built with tools/raft-testlog-viz.c compiled with -DVIZ_NO_MAIN, under
 * ASan and UBSan (tools/viz.mk), from the repository's root directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft-testlog-viz.h"

#define TESTDATA "tools/testdata/"

/* Feeds text through viz_log_read (getline), as the tool reads stdin. */
static void read_text(struct viz_log *log, const char *text, size_t len)
{
	FILE *f = fmemopen((void *)text, len, "r");

	assert_non_null(f);
	assert_int_equal(viz_log_read(log, f), 0);
	assert_int_equal(fclose(f), 0);
}

static void read_str(struct viz_log *log, const char *text)
{
	read_text(log, text, strlen(text));
}

static void read_file(struct viz_log *log, const char *path)
{
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	assert_int_equal(viz_log_read(log, f), 0);
	assert_int_equal(fclose(f), 0);
}

/* The whole page of t, NUL-terminated; free it. */
static char *render(const struct viz_test *t)
{
	struct viz_buf b = { 0 };

	assert_int_equal(viz_render_page(t, &b), 0);
	viz_buf_put(&b, "", 1);
	assert_int_equal(b.err, 0);
	return b.p;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A go test -v log of the Go original is split as the Go tool splits it:
 * entries after "--- PASS" still belong to the test. */
static void go_log_is_parsed(void **state)
{
	struct viz_log log;
	struct viz_test *t;

	(void)state;
	viz_log_init(&log);
	read_file(&log, TESTDATA "go-TestElectionFollowerComesBack.log");
	assert_int_equal(log.n_tests, 1);
	t = &log.tests[0];
	assert_string_equal(t->name, "TestElectionFollowerComesBack");
	assert_int_equal(t->format, VIZ_FMT_GO);
	assert_int_equal(t->status, VIZ_PASS);
	assert_true(t->go_secs > 1.31 && t->go_secs < 1.33);
	assert_int_equal(t->n_entries, 156);
	assert_int_equal(t->end_at, 156);
	assert_int_equal(t->n_servers, 3);
	assert_true(t->have_test);
	assert_int_equal(t->n_others, 2); /* "PASS" and "ok  ..." */
	assert_string_equal(t->entries[0].ts, "06:05:54.204592");
	assert_int_equal(t->entries[0].id, 0);
	assert_string_equal(t->entries[0].msg, "listening at [::]:42345");
	viz_log_free(&log);

	viz_log_init(&log);
	read_file(&log, TESTDATA "go-TestElectionBasic.log");
	assert_int_equal(log.n_tests, 1);
	assert_int_equal(log.tests[0].n_entries, 45);
	assert_int_equal(log.tests[0].end_at, 43); /* two lines after "--- PASS" */
	assert_false(log.tests[0].have_test);
	viz_log_free(&log);
}

/* cmocka's header and summary lines are not boundaries; a FAILED test
 * listed again in the summary keeps its first end. */
static void cmocka_log_is_parsed(void **state)
{
	static const char text[] = "[==========] Running 2 test(s).\n"
				   "[ RUN      ] TestA\n"
				   "10:00:00.000001 [0] listening at 127.0.0.1:5000\n"
				   "10:00:00.000002 [1] listening at 127.0.0.1:5001\n"
				   "[       OK ] TestA\n"
				   "[ RUN      ] TestB\n"
				   "10:00:01.000000 [TEST] Disconnect 1\n"
				   "raft_test.c:99: error: Failure!\n"
				   "[  FAILED  ] TestB\n"
				   "10:00:01.500000 [1] becomes Dead\n"
				   "[==========] 2 test(s) run.\n"
				   "[  PASSED  ] 1 test(s).\n"
				   "[  FAILED  ] 1 test(s), listed below:\n"
				   "[  FAILED  ] TestB\n";
	struct viz_log log;

	(void)state;
	viz_log_init(&log);
	read_str(&log, text);
	assert_int_equal(log.n_tests, 2);
	assert_string_equal(log.tests[0].name, "TestA");
	assert_int_equal(log.tests[0].format, VIZ_FMT_CMOCKA);
	assert_int_equal(log.tests[0].status, VIZ_PASS);
	assert_int_equal(log.tests[0].n_entries, 2);
	assert_true(log.tests[0].go_secs < 0);
	assert_string_equal(log.tests[1].name, "TestB");
	assert_int_equal(log.tests[1].status, VIZ_FAIL);
	assert_int_equal(log.tests[1].n_entries, 2);
	assert_int_equal(log.tests[1].end_at, 1);
	assert_int_equal(log.tests[1].n_servers, 2);
	assert_false(log.tests[1].seen[0]);
	assert_true(log.tests[1].seen[1]);
	/* The assertion message and the summary are kept as other lines. */
	assert_int_equal(log.tests[1].n_others, 5);
	assert_string_equal(log.tests[1].others[0].text, "raft_test.c:99: error: Failure!");
	assert_int_equal(log.tests[1].others[0].after, 1);
	viz_log_free(&log);
}

/* The same log in both formats gives the same entries. */
static void both_formats_agree(void **state)
{
	struct viz_log go, cm;

	(void)state;
	viz_log_init(&go);
	viz_log_init(&cm);
	read_file(&go, TESTDATA "go-TestElectionFollowerComesBack.log");
	read_file(&cm, TESTDATA "cmocka-TestElectionFollowerComesBack.log");
	assert_int_equal(cm.n_tests, 1);
	assert_int_equal(cm.tests[0].status, VIZ_PASS);
	assert_int_equal(cm.tests[0].n_entries, go.tests[0].n_entries);
	for (size_t i = 0; i < go.tests[0].n_entries; i++) {
		assert_int_equal(cm.tests[0].entries[i].t_us, go.tests[0].entries[i].t_us);
		assert_int_equal(cm.tests[0].entries[i].id, go.tests[0].entries[i].id);
	}
	viz_log_free(&go);
	viz_log_free(&cm);
}

static struct viz_entry entry(int id, const char *msg)
{
	struct viz_entry e = { .id = id, .msg = (char *)msg, .msg_len = strlen(msg) };

	return e;
}

/* States follow the Go tool's rules, terms come from the state lines. */
static void states_are_replayed(void **state)
{
	struct viz_replay r;
	struct viz_entry e;

	(void)state;
	viz_replay_init(&r);
	assert_int_equal(r.state[2], VIZ_NONE);
	e = entry(2, "listening at 127.0.0.1:4000");
	assert_int_equal(viz_replay_apply(&r, &e), 2);
	assert_int_equal(r.state[2], VIZ_FOLLOWER);
	e = entry(2, "election timer started (150ms), term=0");
	assert_int_equal(viz_replay_apply(&r, &e), -1);
	e = entry(2, "becomes Candidate (currentTerm=3); log=[]");
	assert_int_equal(viz_replay_apply(&r, &e), 2);
	assert_int_equal(r.state[2], VIZ_CANDIDATE);
	assert_int_equal(r.term[2], 3);
	e = entry(2, "becomes Leader; term=3, log=[]");
	assert_int_equal(viz_replay_apply(&r, &e), 2);
	assert_int_equal(r.state[2], VIZ_LEADER);
	assert_int_equal(r.term[2], 3);
	e = entry(2, "becomes Follower with term=4; log=[]");
	viz_replay_apply(&r, &e);
	assert_int_equal(r.state[2], VIZ_FOLLOWER);
	assert_int_equal(r.term[2], 4);
	e = entry(2, "becomes Dead");
	viz_replay_apply(&r, &e);
	assert_int_equal(r.state[2], VIZ_DEAD);
	assert_int_equal(r.term[2], 4);
	e = entry(2, "in election timer state=Dead, bailing out");
	assert_int_equal(viz_replay_apply(&r, &e), -1);
	assert_int_equal(r.state[2], VIZ_DEAD);
	/* A server first seen in mid-run is a follower. */
	e = entry(0, "AppendEntries reply: {Term:4 Success:true}");
	assert_int_equal(viz_replay_apply(&r, &e), 0);
	assert_int_equal(r.state[0], VIZ_FOLLOWER);
	e = entry(VIZ_ID_TEST, "Disconnect 0");
	assert_int_equal(viz_replay_apply(&r, &e), 0);
	assert_true(r.disconnected[0]);
	e = entry(VIZ_ID_TEST, "Disconnect 0");
	assert_int_equal(viz_replay_apply(&r, &e), -1);
	e = entry(VIZ_ID_TEST, "Reconnect 0");
	assert_int_equal(viz_replay_apply(&r, &e), 0);
	assert_false(r.disconnected[0]);
	e = entry(VIZ_ID_TEST, "Disconnect 99999");
	assert_int_equal(viz_replay_apply(&r, &e), -1);
}

static const struct viz_span *find_span(const struct viz_span *v, size_t n, int id,
					enum viz_span_kind kind, enum viz_state st)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].id == id && v[i].kind == kind &&
		    (kind != VIZ_SPAN_STATE || v[i].state == st))
			return &v[i];
	}
	return NULL;
}

/* Spans cover real time: a leader span with its term, and the time a
 * server was disconnected, up to the last entry if never reconnected. */
static void spans_cover_real_time(void **state)
{
	static const char text[] = "=== RUN   TestS\n"
				   "00:00:01.000000 [0] listening at [::]:1\n"
				   "00:00:01.000000 [1] listening at [::]:2\n"
				   "00:00:01.200000 [1] becomes Candidate (currentTerm=1); log=[]\n"
				   "00:00:01.210000 [1] becomes Leader; term=1, log=[]\n"
				   "00:00:01.300000 [TEST] Disconnect 1\n"
				   "00:00:01.600000 [0] becomes Candidate (currentTerm=2); log=[]\n"
				   "00:00:01.700000 [TEST] Reconnect 1\n"
				   "00:00:01.800000 [TEST] Disconnect 0\n"
				   "00:00:02.000000 [0] becomes Dead\n";
	struct viz_span *v = NULL;
	const struct viz_span *s;
	struct viz_log log;
	size_t n = 0;

	(void)state;
	viz_log_init(&log);
	read_str(&log, text);
	assert_int_equal(viz_collect_spans(&log.tests[0], &v, &n), 0);
	s = find_span(v, n, 1, VIZ_SPAN_STATE, VIZ_LEADER);
	assert_non_null(s);
	assert_int_equal(s->term, 1);
	assert_int_equal(s->t0_us, 1210000);
	assert_int_equal(s->t1_us, 2000000); /* still leader at the end */
	assert_int_equal(s->row, 3);
	s = find_span(v, n, 1, VIZ_SPAN_DISCONNECTED, VIZ_NONE);
	assert_non_null(s);
	assert_int_equal(s->t0_us, 1300000);
	assert_int_equal(s->t1_us, 1700000);
	s = find_span(v, n, 0, VIZ_SPAN_DISCONNECTED, VIZ_NONE);
	assert_non_null(s);
	assert_int_equal(s->t0_us, 1800000);
	assert_int_equal(s->t1_us, 2000000);
	s = find_span(v, n, 0, VIZ_SPAN_STATE, VIZ_FOLLOWER);
	assert_non_null(s);
	assert_int_equal(s->t0_us, 1000000);
	assert_int_equal(s->t1_us, 1600000);
	s = find_span(v, n, 0, VIZ_SPAN_STATE, VIZ_CANDIDATE);
	assert_non_null(s);
	assert_int_equal(s->term, 2);
	free(v);
	viz_log_free(&log);
}

/* Every piece of log text is escaped: the test name, [TEST] lines, server
 * lines, other lines; control bytes become U+FFFD. */
static void text_is_escaped(void **state)
{
	static const char text[] = "=== RUN   Test<b>&\n"
				   "01:02:03.000004 [TEST] <script>alert(1)</script>\n"
				   "01:02:03.000005 [0] a&b \"q\" 'x' <i>\x01\n"
				   "<img src=x onerror=alert(2)>\n";
	struct viz_log log;
	char *page;

	(void)state;
	viz_log_init(&log);
	read_str(&log, text);
	page = render(&log.tests[0]);
	assert_null(strstr(page, "<script"));
	assert_null(strstr(page, "<b>&"));
	assert_null(strstr(page, "<img"));
	assert_null(strstr(page, "<i>\x01"));
	assert_non_null(strstr(page, "<title>Test&lt;b&gt;&amp; -- INCOMPLETE</title>"));
	assert_non_null(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(page, "a&amp;b &quot;q&quot; &#39;x&#39; &lt;i&gt;&#xFFFD;"));
	assert_non_null(strstr(page, "&lt;img src=x onerror=alert(2)&gt;"));
	free(page);
	viz_log_free(&log);
}

/* Repeated names get _1, _2 as in the Go tool; hostile names cannot
 * leave the output directory. */
static void file_names_are_unique_and_safe(void **state)
{
	static const char text[] = "=== RUN   X\n=== RUN   X\n=== RUN   X_1\n=== RUN   X\n"
				   "=== RUN   ../../etc/passwd\n=== RUN   .\n=== RUN   a/b c\n";
	struct viz_log log;
	char out[VIZ_NAME_MAX + 1];
	char longname[400];

	(void)state;
	viz_log_init(&log);
	read_str(&log, text);
	assert_int_equal(log.n_tests, 7);
	assert_int_equal(viz_log_name_files(&log), 0);
	assert_string_equal(log.tests[0].file_name, "X");
	assert_string_equal(log.tests[1].file_name, "X_1");
	assert_string_equal(log.tests[2].file_name, "X_1_1");
	assert_string_equal(log.tests[3].file_name, "X_2");
	assert_int_equal(log.tests[0].dup, 0);
	assert_int_equal(log.tests[3].dup, 2);
	assert_string_equal(log.tests[4].file_name, "______etc_passwd");
	assert_string_equal(log.tests[5].file_name, "_");
	assert_string_equal(log.tests[6].file_name, "a_b_c");
	viz_log_free(&log);

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	viz_sanitize_name(longname, out, sizeof(out));
	assert_int_equal(strlen(out), VIZ_NAME_MAX);
	viz_sanitize_name("", out, sizeof(out));
	assert_string_equal(out, "test");
}

/* A log without a test start is an empty log: main turns that into an
 * error; entries before the first test are counted, not kept. */
static void no_test_is_detected(void **state)
{
	struct viz_log log;

	(void)state;
	viz_log_init(&log);
	read_str(&log, "PASS\n10:00:00.000000 [0] listening at x\n[==========] Running 0 test(s).\n"
		       "=== RUN\n--- PASS: TestX (0.00s)\n");
	assert_int_equal(log.n_tests, 0);
	assert_int_equal(log.n_orphans, 1);
	viz_log_free(&log);
	viz_log_init(&log);
	read_str(&log, "");
	assert_int_equal(log.n_tests, 0);
	viz_log_free(&log);
}

static void crlf_is_stripped(void **state)
{
	static const char text[] = "=== RUN   TestCR\r\n"
				   "06:05:54.409506 [2] becomes Leader; term=7, log=[]\r\n"
				   "--- FAIL: TestCR (0.50s)\r\n";
	struct viz_log log;
	struct viz_replay r;

	(void)state;
	viz_log_init(&log);
	read_str(&log, text);
	assert_string_equal(log.tests[0].name, "TestCR");
	assert_int_equal(log.tests[0].status, VIZ_FAIL);
	assert_true(log.tests[0].go_secs > 0.49 && log.tests[0].go_secs < 0.51);
	assert_string_equal(log.tests[0].entries[0].msg, "becomes Leader; term=7, log=[]");
	viz_replay_init(&r);
	viz_replay_apply(&r, &log.tests[0].entries[0]);
	assert_int_equal(r.term[2], 7);
	viz_log_free(&log);
}

/* A line far longer than any fixed buffer is read and rendered whole. */
static void overlong_line_is_kept_whole(void **state)
{
	const size_t msg_len = (size_t)3 * 1024 * 1024;
	const char *head = "=== RUN   TestLong\n12:00:00.000001 [1] ";
	size_t hl = strlen(head);
	char *text = malloc(hl + msg_len + 64), *page;
	struct viz_log log;
	struct viz_entry *e;

	(void)state;
	assert_non_null(text);
	assert_int_equal(snprintf(text, hl + 1, "%s", head), (int)hl);
	memset(text + hl, 'x', msg_len); /* overwrites head's NUL */
	assert_int_equal(snprintf(text + hl + msg_len - 8, 64 + 8, "%s",
				  "THE-END!\n12:00:00.000002 [1] next\n"),
			 34);
	viz_log_init(&log);
	read_text(&log, text, hl + msg_len + 26);
	assert_int_equal(log.tests[0].n_entries, 2);
	e = &log.tests[0].entries[0];
	assert_int_equal(e->msg_len, msg_len);
	assert_memory_equal(e->msg + msg_len - 8, "THE-END!", 8);
	assert_string_equal(log.tests[0].entries[1].msg, "next");
	page = render(&log.tests[0]);
	assert_non_null(strstr(page, "xxxxTHE-END!"));
	assert_true(strlen(page) > msg_len);
	free(page);
	viz_log_free(&log);
	free(text);
}

/* A log cut mid-line: a cut timestamp is not an entry, a cut message is;
 * the test has no end marker and is INCOMPLETE on its page. */
static void cut_lines_are_tolerated(void **state)
{
	struct viz_log log;
	char *page;

	(void)state;
	viz_log_init(&log);
	read_str(&log, "=== RUN   TestCut\n06:05:54.409506 [2] becomes Lea");
	assert_int_equal(log.tests[0].n_entries, 1);
	assert_string_equal(log.tests[0].entries[0].msg, "becomes Lea");
	assert_int_equal(log.tests[0].status, VIZ_INCOMPLETE);
	assert_false(log.tests[0].ended);
	page = render(&log.tests[0]);
	assert_non_null(strstr(page, "data-status=\"INCOMPLETE\""));
	assert_non_null(strstr(page, "no end marker"));
	free(page);
	viz_log_free(&log);

	viz_log_init(&log);
	read_str(&log, "=== RUN   TestCut\n06:05:54.409506 [2] x\n06:05:5");
	assert_int_equal(log.tests[0].n_entries, 1);
	assert_int_equal(log.tests[0].n_others, 1);
	viz_log_free(&log);

	viz_log_init(&log);
	read_str(&log, "=== RUN   TestCut\n06:05:54.409506 [2]");
	assert_int_equal(log.tests[0].n_entries, 0); /* as the Go regexp: no space, no entry */
	viz_log_free(&log);
}

/* Only "[N]" below VIZ_MAX_SERVERS and "[TEST]" make entries. */
static void bad_ids_and_timestamps_are_not_entries(void **state)
{
	struct viz_log log;
	struct viz_test *t;

	(void)state;
	viz_log_init(&log);
	read_str(&log, "=== RUN   T\n"
		       "06:05:54.000001 [64] too big\n"
		       "06:05:54.000001 [abc] word id\n"
		       "06:05:54.000001 [-1] negative\n"
		       "06:05:54.000001 [] empty\n"
		       "25:05:54.000001 [1] bad hour\n"
		       "06:05:54.0000011111 [1] ten fraction digits\n"
		       "x 06:05:54.000001 [1] not at line start\n"
		       "6:05:54.5 [1] short hour, short fraction\n"
		       "06:05:55 [63] no fraction\n");
	t = &log.tests[0];
	assert_int_equal(t->n_entries, 2);
	assert_int_equal(t->n_others, 7);
	assert_int_equal(t->entries[0].t_us, ((6 * 60 + 5) * 60 + 54) * 1000000LL + 500000);
	assert_int_equal(t->entries[1].id, 63);
	assert_int_equal(t->n_servers, 64);
	viz_log_free(&log);
}

/* Time never goes back on the page: midnight is crossed, and a line
 * written late by a racing thread is drawn at its predecessor's time. */
static void times_are_monotonic(void **state)
{
	struct viz_log log;
	struct viz_test *t;

	(void)state;
	viz_log_init(&log);
	read_str(&log, "=== RUN   T\n23:59:59.900000 [0] a\n00:00:00.100000 [0] b\n"
		       "00:00:00.090000 [1] c\n00:00:00.200000 [1] d\n");
	t = &log.tests[0];
	assert_int_equal(t->entries[1].t_us - t->entries[0].t_us, 200000);
	assert_int_equal(t->entries[2].t_us, t->entries[1].t_us);
	assert_int_equal(t->entries[3].t_us - t->entries[1].t_us, 100000);
	viz_log_free(&log);
}

/* "=== CONT" sends the following lines back to a paused parallel test. */
static void go_cont_switches_test(void **state)
{
	struct viz_log log;

	(void)state;
	viz_log_init(&log);
	read_str(&log, "=== RUN   TestA\n=== PAUSE TestA\n=== RUN   TestB\n"
		       "01:00:00.000000 [0] b\n=== CONT  TestA\n01:00:00.000001 [0] a\n"
		       "--- PASS: TestA (0.01s)\n--- PASS: TestB (0.02s)\n");
	assert_int_equal(log.n_tests, 2);
	assert_int_equal(log.tests[0].n_entries, 1);
	assert_string_equal(log.tests[0].entries[0].msg, "a");
	assert_int_equal(log.tests[1].n_entries, 1);
	assert_int_equal(log.tests[0].status, VIZ_PASS);
	assert_int_equal(log.tests[1].status, VIZ_PASS);
	viz_log_free(&log);
}

/* The page of a real log: timeline lanes and spans, the table with a
 * sticky header and one row per entry, the end row, nothing external. */
static void page_has_timeline_and_table(void **state)
{
	struct viz_log log;
	struct viz_test *t;
	char *page, *tbody;

	(void)state;
	viz_log_init(&log);
	read_file(&log, TESTDATA "go-TestElectionFollowerComesBack.log");
	t = &log.tests[0];
	page = render(t);
	assert_non_null(strstr(page, "<svg class=\"timeline\" data-servers=\"3\""));
	assert_int_equal(count(page, "<g class=\"lane\" data-server="), 3);
	assert_non_null(strstr(page, "data-state=\"Leader\" data-term=\"1\""));
	assert_non_null(strstr(page, "data-state=\"Leader\" data-term=\"4\""));
	assert_non_null(strstr(page, ">T4</text>"));
	assert_int_equal(count(page, "<rect class=\"disc\" data-disconnected=\"0\""), 1);
	assert_int_equal(count(page, "<line class=\"mk dis\""), 1);
	assert_int_equal(count(page, "<line class=\"mk rec\""), 1);
	assert_non_null(strstr(page, "position:sticky"));
	assert_non_null(
		strstr(page, "<th class=\"t\">Time<th class=\"c\">TEST<th>0<th>1<th>2</tr>"));
	tbody = strstr(page, "<tbody>");
	assert_non_null(tbody);
	assert_int_equal(count(tbody, "<tr"), t->n_entries + 1); /* + the end row */
	assert_int_equal(count(page, "<tr class=\"end\""), 1);
	assert_non_null(strstr(page, "<td class=\"L\">becomes Leader; term=1, log=[]"));
	assert_non_null(strstr(page, "<td class=\"C x\">becomes Candidate (currentTerm=2)"));
	/* Self-contained and script-free. */
	assert_null(strstr(page, "<script"));
	assert_null(strstr(page, "http:"));
	assert_null(strstr(page, "https:"));
	assert_null(strstr(page, " src="));
	free(page);
	viz_log_free(&log);
}

/* Big tables come in chunks of 500 rows that a browser lays out only
 * when in view; every entry still has its row. */
static void big_tables_are_chunked(void **state)
{
	struct viz_log log;
	char line[64], *page;
	int n;

	(void)state;
	viz_log_init(&log);
	assert_int_equal(viz_log_feed(&log, "=== RUN   TestBig\n", 18), 0);
	for (int i = 0; i < 1201; i++) {
		n = snprintf(line, sizeof(line), "01:00:%02d.%06d [%d] entry %d\n", i / 100, i,
			     i % 3, i);
		assert_int_equal(viz_log_feed(&log, line, (size_t)n), 0);
	}
	page = render(&log.tests[0]);
	assert_int_equal(count(page, "<div class=\"chunk\""), 3);
	/* The last chunk's placeholder height fits its 201 rows. */
	assert_non_null(strstr(page, "contain-intrinsic-size:auto 6060px\"><table class=\"log\">"));
	assert_int_equal(count(page, "<tr"), 1201 + 1);
	assert_int_equal(count(page, "<table class=\"log hdr\" data-servers=\"3\">"), 1);
	assert_non_null(strstr(page, "<td class=\"F\">entry 1200<td"));
	free(page);
	viz_log_free(&log);
}

/* Write errors are reported, not lost: /dev/full fails the final flush. */
static void write_errors_are_reported(void **state)
{
	struct viz_buf b = { 0 };
	struct viz_log log;

	(void)state;
	viz_log_init(&log);
	read_file(&log, TESTDATA "go-TestElectionBasic.log");
	b.sink = fopen("/dev/full", "w");
	assert_non_null(b.sink);
	assert_int_equal(setvbuf(b.sink, NULL, _IONBF, 0), 0);
	/* The page is smaller than the flush threshold: the final flush fails, and the
	 * error sticks. */
	assert_int_equal(viz_render_page(&log.tests[0], &b), 0);
	assert_int_equal(viz_buf_flush(&b), -ENOSPC);
	assert_int_equal(viz_render_page(&log.tests[0], &b), -ENOSPC);
	viz_buf_free(&b);
	assert_int_equal(fclose(b.sink), 0);
	viz_log_free(&log);
}

/* Pages land in the directory under their file name; a symlink planted
 * at that name is not followed. */
static void pages_are_written_safely(void **state)
{
	char dir[] = "/tmp/viz_test.XXXXXX", *path = NULL, link[64];
	struct viz_log log;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	viz_log_init(&log);
	read_str(&log, "=== RUN   ../Evil\n01:00:00.000000 [0] hi\n");
	assert_int_equal(viz_log_name_files(&log), 0);
	assert_int_equal(viz_write_page(dir, &log.tests[0], &path), 0);
	assert_non_null(path);
	assert_int_equal(strncmp(path, dir, strlen(dir)), 0);
	assert_string_equal(path + strlen(dir), "/___Evil.html");
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 1000);
	assert_int_equal(unlink(path), 0);
	free(path);

	(void)snprintf(link, sizeof(link), "%s/___Evil.html", dir);
	assert_int_equal(symlink("/tmp/viz_test_victim", link), 0);
	assert_true(viz_write_page(dir, &log.tests[0], &path) < 0);
	assert_null(path);
	assert_int_equal(lstat("/tmp/viz_test_victim", &st), -1);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(rmdir(dir), 0);
	viz_log_free(&log);
}

/* Matches the RPCs of text (one test); *stats filled. Free *rpcs. */
static struct viz_rpc *match(struct viz_log *log, const char *text, size_t *n,
			     struct viz_rpc_stats *stats)
{
	struct viz_rpc *rpcs;

	viz_log_init(log);
	read_str(log, text);
	assert_int_equal(log->n_tests, 1);
	assert_int_equal(viz_match_rpcs(&log->tests[0], &rpcs, n, stats), 0);
	return rpcs;
}

/* Receipts that come in another order than the sends still find their
 * own send (by receiver and args), and the votes find their way back. */
static void rpcs_match_reordered_receipts(void **state)
{
	static const char text[] =
		"=== RUN   T\n"
		"01:00:00.000000 [0] sending RequestVote to 1: {Term:1 CandidateId:0 "
		"LastLogIndex:-1 "
		"LastLogTerm:-1}\n"
		"01:00:00.000100 [0] sending RequestVote to 2: {Term:1 CandidateId:0 "
		"LastLogIndex:-1 "
		"LastLogTerm:-1}\n"
		"01:00:00.001000 [2] RequestVote: {Term:1 CandidateId:0 LastLogIndex:-1 "
		"LastLogTerm:-1} [currentTerm=1, votedFor=2]\n"
		"01:00:00.001100 [2] ... RequestVote reply: &{Term:1 VoteGranted:false}\n"
		"01:00:00.002000 [1] RequestVote: {Term:1 CandidateId:0 LastLogIndex:-1 "
		"LastLogTerm:-1} [currentTerm=0, votedFor=-1]\n"
		"01:00:00.002100 [1] ... RequestVote reply: &{Term:1 VoteGranted:true}\n"
		"01:00:00.003000 [0] received RequestVoteReply {Term:1 VoteGranted:true}\n"
		"01:00:00.003500 [0] received RequestVoteReply {Term:1 VoteGranted:false}\n";
	struct viz_rpc_stats st;
	struct viz_log log;
	struct viz_rpc *r;
	size_t n;
	char *page;

	(void)state;
	r = match(&log, text, &n, &st);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].to, 1);
	assert_int_equal(r[0].recv, 4);
	assert_int_equal(r[1].to, 2);
	assert_int_equal(r[1].recv, 2);
	assert_true(r[0].ok);
	assert_false(r[1].ok);
	assert_int_equal(r[0].reply, 5);
	assert_int_equal(r[0].reply_recv, 6); /* the granted vote */
	assert_int_equal(r[1].reply_recv, 7); /* the refused one */
	assert_int_equal(st.sends, 2);
	assert_int_equal(st.matched, 2);
	assert_int_equal(st.replies_matched, 2);
	assert_int_equal(st.lost, 0);
	/* Granted and refused votes are told apart on the page. */
	page = render(&log.tests[0]);
	assert_int_equal(count(page, "<line class=\"rq rv\""), 2);
	assert_int_equal(count(page, "<line class=\"rp ok rv\""), 1);
	assert_int_equal(count(page, "<line class=\"rp no rv\""), 1);
	assert_non_null(strstr(page, "data-sends=\"2\" data-matched=\"2\""));
	free(page);
	free(r);
	viz_log_free(&log);
}

#define HB(t, to)                                                                                  \
	"01:00:" t " [0] sending AppendEntries to " to ": ni=0, args={Term:1 LeaderId:0 "          \
	"PrevLogIndex:-1 PrevLogTerm:-1 Entries:[] LeaderCommit:-1}\n"
#define HB_RECV(t, at)                                                                             \
	"01:00:" t " [" at "] AppendEntries: {Term:1 LeaderId:0 PrevLogIndex:-1 PrevLogTerm:-1 "   \
	"Entries:[] LeaderCommit:-1}\n"

/* Identical heartbeats match first-unmatched-first; one sent while its
 * receiver was disconnected never arrives (a stub), and does not take
 * the receipt of an identical one sent after the reconnection. */
static void rpcs_identical_heartbeats_and_disconnection(void **state)
{
	static const char text[] = "=== RUN   T\n" HB("00.000000", "1") HB(
		"00.050000", "1") HB_RECV("00.051000", "1")
		HB_RECV("00.052000", "1") "01:00:00.060000 [TEST] Disconnect 1\n" HB(
			"00.100000", "1") "01:00:00.120000 [TEST] Reconnect 1\n" HB("00.150000",
										    "1")
			HB_RECV("00.151000",
				"1") "01:00:00.151100 [1] AppendEntries reply: {Term:1 "
				     "Success:true}\n"
				     "01:00:00.152000 [0] AppendEntries reply from 1 success: "
				     "nextIndex := map[1:0], matchIndex := map[1:-1]\n";
	struct viz_rpc_stats st;
	struct viz_log log;
	struct viz_rpc *r;
	size_t n;
	char *page;

	(void)state;
	r = match(&log, text, &n, &st);
	assert_int_equal(n, 4);
	assert_true(r[0].heartbeat);
	assert_int_equal(r[0].recv, 2);
	assert_int_equal(r[1].recv, 3);
	assert_true(r[2].cut_off);
	assert_int_equal(r[2].recv, VIZ_NO_ROW);
	assert_int_equal(r[3].recv, 8);
	assert_int_equal(r[3].reply, 9);
	assert_int_equal(r[3].reply_recv, 10);
	assert_true(r[3].ok);
	assert_int_equal(st.matched, 3);
	assert_int_equal(st.lost, 1);
	page = render(&log.tests[0]);
	assert_int_equal(count(page, "<line class=\"rq hb\""), 3);
	assert_int_equal(count(page, "<line class=\"stub lost hb\""), 1);
	assert_int_equal(count(page, "<line class=\"rp ok hb\""), 1);
	/* The layer switches come before the timeline, checked: CSS only. */
	assert_true(strstr(page, "id=\"ly-hb\" checked>") <
		    strstr(page, "<svg class=\"timeline\""));
	assert_non_null(strstr(page, "#ly-hb:not(:checked)~svg .hb"));
	assert_null(strstr(page, "<script"));
	free(page);
	free(r);
	viz_log_free(&log);
}

/* A request the receiver's proxy drops ends in a cross; one it delays is
 * marked and still matched; Go part 3's sender-side "drop Call" (args in
 * %v form) finds its send too. */
static void rpcs_drops_and_delays(void **state)
{
	static const char text[] = "=== RUN   T\n" HB(
		"00.000000",
		"1") "01:00:00.001000 [1] drop AppendEntries\n"
		     "01:00:00.010000 [0] sending RequestVote to 2: {Term:2 CandidateId:0 "
		     "LastLogIndex:-1 "
		     "LastLogTerm:-1}\n"
		     "01:00:00.011000 [2] delay RequestVote\n"
		     "01:00:00.086000 [2] RequestVote: {Term:2 CandidateId:0 LastLogIndex:-1 "
		     "LastLogTerm:-1} [currentTerm=1, votedFor=-1]\n"
		     "01:00:00.100000 [0] sending AppendEntries to 2: ni=0, args={Term:2 "
		     "LeaderId:0 "
		     "PrevLogIndex:-1 PrevLogTerm:-1 Entries:[{Command:5 Term:2}] "
		     "LeaderCommit:-1}\n"
		     "01:00:00.100100 [0] drop Call ConsensusModule.AppendEntries: {2 0 -1 -1 [{5 "
		     "2}] -1}\n";
	struct viz_rpc_stats st;
	struct viz_log log;
	struct viz_rpc *r;
	size_t n;
	char *page;

	(void)state;
	r = match(&log, text, &n, &st);
	assert_int_equal(n, 3);
	assert_true(r[0].dropped);
	assert_false(r[0].drop_at_sender);
	assert_int_equal(r[0].proxy, 1);
	assert_int_equal(r[0].recv, VIZ_NO_ROW);
	assert_true(r[1].delayed);
	assert_int_equal(r[1].proxy, 3);
	assert_int_equal(r[1].recv, 4);
	assert_false(r[2].heartbeat);
	assert_true(r[2].dropped);
	assert_true(r[2].drop_at_sender);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.delayed, 1);
	assert_int_equal(st.matched, 1);
	assert_int_equal(st.lost, 0);
	page = render(&log.tests[0]);
	assert_int_equal(count(page, "<path class=\"xx lost"), 2);
	assert_int_equal(count(page, "<line class=\"dl rv\""), 1);
	assert_int_equal(count(page, "<line class=\"rqx lost ae\""), 1);
	free(page);
	free(r);
	viz_log_free(&log);
}

/* Part 4/5 ids are folded as the Go tool folds them: [kv N] into server
 * N, [clientNNN] into TEST, the id kept in front of the message. */
static void kv_and_client_ids_are_folded(void **state)
{
	struct viz_log log;
	struct viz_test *t;

	(void)state;
	viz_log_init(&log);
	read_str(&log, "=== RUN   T\n"
		       "01:00:00.000001 [kv 1] applying Put\n"
		       "01:00:00.000002 [client42] sending Put to 1\n"
		       "01:00:00.000003 [kv 99] too big\n"
		       "01:00:00.000004 [kv x] not a number\n"
		       "01:00:00.000005 [client 4] a space\n");
	t = &log.tests[0];
	assert_int_equal(t->n_entries, 2);
	assert_int_equal(t->entries[0].id, 1);
	assert_string_equal(t->entries[0].msg, "kv 1 applying Put");
	assert_int_equal(t->entries[1].id, VIZ_ID_TEST);
	assert_string_equal(t->entries[1].msg, "client42 sending Put to 1");
	assert_true(t->have_test);
	assert_int_equal(t->n_servers, 2);
	assert_false(t->seen[0]);
	viz_log_free(&log);
}

/* Part 2/3 marks: commit index moves, Submit, log length, and Crash ...
 * Restart as a down span apart from the disconnection. */
static void commits_log_length_and_crashes(void **state)
{
	static const char text[] = "=== RUN   T\n"
				   "01:00:00.000000 [0] becomes Leader; term=1, "
				   "nextIndex=map[1:0], matchIndex=map[1:-1]; "
				   "log=[]\n"
				   "01:00:00.010000 [0] Submit received by Leader: 5\n"
				   "01:00:00.010001 [0] ... log=[{5 1} {6 1}]\n"
				   "01:00:00.020000 [0] leader sets commitIndex := 1\n"
				   "01:00:00.021000 [1] ... log is now: [{5 1} {6 1}]\n"
				   "01:00:00.022000 [1] ... setting commitIndex=1\n"
				   "01:00:00.023000 [1] Submit received by Follower: 7\n"
				   "01:00:00.030000 [TEST] Crash 1\n"
				   "01:00:00.030001 [TEST] Disconnect 1\n"
				   "01:00:00.040000 [TEST] Restart 1\n"
				   "01:00:00.050000 [TEST] Reconnect 1\n";
	struct viz_span *v = NULL;
	struct viz_stats st;
	struct viz_log log;
	size_t n = 0, down = 0;
	char *page;

	(void)state;
	viz_log_init(&log);
	read_str(&log, text);
	assert_int_equal(viz_commit_index(&log.tests[0].entries[3]), 1);
	assert_int_equal(viz_commit_index(&log.tests[0].entries[5]), 1);
	assert_int_equal(viz_commit_index(&log.tests[0].entries[1]), -2);
	assert_int_equal(viz_log_length(&log.tests[0].entries[0]), 0);
	assert_int_equal(viz_log_length(&log.tests[0].entries[2]), 2);
	assert_int_equal(viz_log_length(&log.tests[0].entries[4]), 2);
	assert_int_equal(viz_log_length(&log.tests[0].entries[1]), -1);
	assert_int_equal(viz_collect_spans(&log.tests[0], &v, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (v[i].kind == VIZ_SPAN_DOWN) {
			down++;
			assert_int_equal(v[i].id, 1);
			assert_int_equal(v[i].t0_us, 3600000000LL + 30000);
			assert_int_equal(v[i].t1_us, 3600000000LL + 40000);
		}
	}
	assert_int_equal(down, 1);
	free(v);
	viz_test_stats(&log.tests[0], &st);
	assert_int_equal(st.part, 3); /* Crash */
	assert_true(st.part_inferred);
	assert_int_equal(st.leaders, 1);
	assert_int_equal(st.commits, 1);
	assert_int_equal(st.max_commit, 1);
	assert_int_equal(st.submits, 2);
	assert_int_equal(st.crashes, 1);
	page = render(&log.tests[0]);
	assert_int_equal(count(page, "<path class=\"cmt\" data-server=\"0\" data-commit=\"1\""), 1);
	assert_int_equal(count(page, "<path class=\"cmt\" data-server=\"1\" data-commit=\"1\""), 1);
	assert_int_equal(count(page, "<path class=\"sub\""), 1);
	assert_int_equal(count(page, "<path class=\"sub no\""), 1);
	assert_int_equal(count(page, "<rect class=\"down\" data-down=\"1\""), 1);
	assert_int_equal(count(page, "<rect class=\"disc\" data-disconnected=\"1\""), 1);
	assert_int_equal(count(page, "<path class=\"ll\""), 2);
	assert_non_null(strstr(page, ">n2</text>"));
	assert_non_null(strstr(page, "<line class=\"mk crash\""));
	assert_non_null(strstr(page, "<line class=\"mk rst\""));
	assert_non_null(strstr(page, "<td class=\"F x z\">")); /* down and cut off */
	free(page);
	viz_log_free(&log);
}

/* A log of several tests gets an index: one row per test with its part,
 * status, duration, servers, elections and commits, linking its page. */
static void index_lists_every_test(void **state)
{
	struct viz_buf b = { 0 };
	struct viz_log log;

	(void)state;
	viz_log_init(&log);
	read_file(&log, TESTDATA "go-TestElectionBasic.log");
	read_file(&log, TESTDATA "go-TestCommitWithDisconnectionAndRecover.log");
	read_str(&log, "=== RUN   TestElectionBasic\n01:00:00.000000 [0] becomes Candidate "
		       "(currentTerm=1); log=[]\n--- FAIL: TestElectionBasic (0.10s)\n"
		       "FAIL\tgithub.com/eliben/raft/part2\t0.5s\n"
		       "=== RUN   Test<x>\n");
	assert_int_equal(log.n_tests, 4);
	assert_int_equal(viz_log_name_files(&log), 0);
	assert_int_equal(viz_render_index(&log, &b), 0);
	viz_buf_put(&b, "", 1);
	assert_int_equal(count(b.p, "<tr data-test>"), 4);
	/* The package line names the part of the tests it ends (all three). */
	assert_non_null(strstr(b.p,
			       "<a href=\"TestElectionBasic.html\">TestElectionBasic</a>"
			       "<td>2<td class=\"PASS\">PASS<td>0.31 s<td>3<td>1<td>1<td>0<td>0"
			       "<td>0<td>45\n"));
	assert_non_null(strstr(b.p,
			       "<a href=\"TestCommitWithDisconnectionAndRecover.html\">"
			       "TestCommitWithDisconnectionAndRecover</a><td>2<td class=\"PASS\">"
			       "PASS<td>1.64 s<td>3<td>6<td>2<td>2 (to 2)<td>3<td>0<td>278\n"));
	assert_non_null(strstr(b.p, "<a href=\"TestElectionBasic_1.html\">TestElectionBasic_1</a>"
				    "<td>2<td class=\"FAIL\">FAIL"));
	assert_non_null(strstr(b.p, ">Test&lt;x&gt;</a><td title=\"guessed from the log's words\">"
				    "1?<td class=\"INCOMPLETE\">"));
	assert_null(strstr(b.p, "<script"));
	viz_buf_free(&b);
	viz_log_free(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(go_log_is_parsed),
		cmocka_unit_test(cmocka_log_is_parsed),
		cmocka_unit_test(both_formats_agree),
		cmocka_unit_test(states_are_replayed),
		cmocka_unit_test(spans_cover_real_time),
		cmocka_unit_test(text_is_escaped),
		cmocka_unit_test(file_names_are_unique_and_safe),
		cmocka_unit_test(no_test_is_detected),
		cmocka_unit_test(crlf_is_stripped),
		cmocka_unit_test(overlong_line_is_kept_whole),
		cmocka_unit_test(cut_lines_are_tolerated),
		cmocka_unit_test(bad_ids_and_timestamps_are_not_entries),
		cmocka_unit_test(times_are_monotonic),
		cmocka_unit_test(go_cont_switches_test),
		cmocka_unit_test(page_has_timeline_and_table),
		cmocka_unit_test(big_tables_are_chunked),
		cmocka_unit_test(write_errors_are_reported),
		cmocka_unit_test(pages_are_written_safely),
		cmocka_unit_test(rpcs_match_reordered_receipts),
		cmocka_unit_test(rpcs_identical_heartbeats_and_disconnection),
		cmocka_unit_test(rpcs_drops_and_delays),
		cmocka_unit_test(kv_and_client_ids_are_folded),
		cmocka_unit_test(commits_log_length_and_crashes),
		cmocka_unit_test(index_lists_every_test),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
