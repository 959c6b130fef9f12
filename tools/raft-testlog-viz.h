/*
 * raft-testlog-viz.h: the parser and page writer of tools/raft-testlog-viz,
 * exposed so that tools/viz_test.c can test them without running main().
 *
 * A log is read line by line into a struct viz_log: one struct viz_test per
 * test (started by "=== RUN   Name" or "[ RUN      ] Name"), each holding
 * its entry lines ("HH:MM:SS.uuuuuu [id] message"). Server states are not
 * stored: they are replayed from the entries (struct viz_replay) each time a
 * page part needs them, exactly as the Go tool replays them row by row.
 */
#ifndef RAFT_TESTLOG_VIZ_H
#define RAFT_TESTLOG_VIZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Server ids at or above this are not entries: a hostile "[999999999]"
 * must not make a table with a billion columns. */
#define VIZ_MAX_SERVERS 64
#define VIZ_ID_TEST	(-1)
/* Longest timestamp we accept: "HH:MM:SS." and up to 9 fraction digits. */
#define VIZ_TS_MAX 18
/* File names are cut to this many bytes before ".html" and any suffix. */
#define VIZ_NAME_MAX 160

enum viz_state { VIZ_NONE, VIZ_FOLLOWER, VIZ_CANDIDATE, VIZ_LEADER, VIZ_DEAD };
enum viz_status { VIZ_INCOMPLETE, VIZ_PASS, VIZ_FAIL, VIZ_SKIP, VIZ_ERROR };
enum viz_format { VIZ_FMT_GO, VIZ_FMT_CMOCKA };

struct viz_entry {
	long long t_us;		 /* time since midnight of the test's first day,
				    never less than the previous entry's */
	int id;			 /* server id, or VIZ_ID_TEST */
	char ts[VIZ_TS_MAX + 1]; /* the timestamp as written in the log */
	char *msg;		 /* NUL-terminated copy; may hold other NULs */
	size_t msg_len;
};

/* A line of a test's part of the log that is neither an entry nor a test
 * boundary (a cmocka assertion message, a sanitizer report, "PASS"...). */
struct viz_other {
	size_t after; /* number of entries logged before it */
	char *text;
	size_t len;
};

struct viz_test {
	char *name;	    /* as in the log, control characters as '?' */
	char *file_name;    /* [A-Za-z0-9_-] only, unique in the log */
	size_t dup;	    /* the file name's _N suffix, 0 if none */
	size_t next_suffix; /* the next suffix for a test of the same name */
	enum viz_format format;
	enum viz_status status;
	double go_secs; /* from "--- PASS: Name (0.31s)"; < 0 if none */
	bool ended;
	size_t end_at; /* entries logged before the end marker */

	struct viz_entry *entries;
	size_t n_entries, cap_entries;
	struct viz_other *others;
	size_t n_others, cap_others;

	int n_servers; /* highest server id seen + 1 */
	bool seen[VIZ_MAX_SERVERS];
	bool have_test; /* some entry came from [TEST] */
	int pkg_part;	/* N of ".../partN" on go test's "ok" line, 0 if none */

	/* Parser state: raw times can go back at midnight. */
	long long day_us, last_raw_us;
};

struct viz_log {
	struct viz_test *tests;
	size_t n_tests, cap_tests;
	size_t cur; /* index of the test receiving lines */
	bool has_cur;
	size_t n_lines;
	size_t n_orphans; /* entry lines before the first test */
	size_t pkg_from;  /* first test not yet given a package line's part */
};

/* Server states while the entries of one test are replayed in order.
 * crashed is set by "[TEST] Crash N" and cleared by "Restart N" (part 3):
 * a server that is down, not just cut off from the others. */
struct viz_replay {
	enum viz_state state[VIZ_MAX_SERVERS];
	long term[VIZ_MAX_SERVERS];
	bool disconnected[VIZ_MAX_SERVERS];
	bool crashed[VIZ_MAX_SERVERS];
};

/* What a [TEST] line does to the cluster, if anything. */
enum viz_event { VIZ_EV_NONE, VIZ_EV_DISCONNECT, VIZ_EV_RECONNECT, VIZ_EV_CRASH, VIZ_EV_RESTART };

enum viz_span_kind { VIZ_SPAN_STATE, VIZ_SPAN_DISCONNECTED, VIZ_SPAN_DOWN };

/* A stretch of time one server spent in one state (and term), or
 * disconnected; row is the index of the entry that started it. */
struct viz_span {
	enum viz_span_kind kind;
	int id;
	enum viz_state state;
	long term;
	long long t0_us, t1_us;
	size_t row;
};

/* "No such row" in the row fields of struct viz_rpc. */
#define VIZ_NO_ROW ((size_t)-1)

enum viz_rpc_kind { VIZ_RV, VIZ_AE };

/*
 * One RPC as the log tells it. The request goes from the sender's
 * "sending RequestVote to P" / "sending AppendEntries to P" line (send)
 * to the receiver's "RequestVote: {...}" / "AppendEntries: {...}" line
 * (recv); the reply from the receiver's "... RequestVote reply" /
 * "AppendEntries reply" line (reply) to the sender's "received
 * RequestVoteReply" / "AppendEntries reply from P" line (reply_recv).
 * A request that neither arrived nor was dropped is lost: the peer was
 * disconnected or crashed, or the log ends first.
 */
struct viz_rpc {
	enum viz_rpc_kind kind;
	int from, to;
	bool heartbeat;	     /* AppendEntries with Entries:[] */
	bool dropped;	     /* "drop ..." by the receiver's proxy or the sender */
	bool drop_at_sender; /* Go part 3's "drop Call ..." */
	bool delayed;	     /* "delay ..." by the receiver's proxy */
	bool cut_off;	     /* sent while either end was disconnected or down */
	bool ok;	     /* reply: VoteGranted:true / Success:true */
	size_t send, recv, proxy, reply, reply_recv; /* rows, or VIZ_NO_ROW */
	long long reply_term;			     /* Term: of the reply, -1 if none */
};

/* Counts of what matching found, for the page and the tests. */
struct viz_rpc_stats {
	size_t sends, matched, dropped, delayed, lost, replies, replies_matched;
	size_t orphan_recvs; /* receipts with no send to match */
};

/* Per-test numbers for the index page. */
struct viz_stats {
	int part;	       /* 1, 2 or 3: from the package line or the log's words */
	bool part_inferred;    /* true if guessed from the words */
	size_t elections;      /* "becomes Candidate" lines */
	size_t leaders;	       /* "becomes Leader" lines */
	size_t commits;	       /* "leader sets commitIndex :=" lines */
	long max_commit;       /* highest commit index seen, -2 if none */
	size_t submits;	       /* "Submit received by" lines */
	size_t crashes;	       /* "[TEST] Crash N" lines */
	long long duration_us; /* first to last entry */
};

/* Output buffer with a sticky error. With a sink it flushes to it as it
 * grows (pages of big logs are not held in memory); without, it keeps
 * everything (used by the tests). */
struct viz_buf {
	char *p;
	size_t len, cap;
	FILE *sink;
	int err; /* first errno-style error, 0 if none */
};

const char *viz_state_name(enum viz_state st);
const char *viz_status_name(enum viz_status st);

void viz_log_init(struct viz_log *log);
void viz_log_free(struct viz_log *log);
int viz_log_feed(struct viz_log *log, const char *line, size_t len);
int viz_log_read(struct viz_log *log, FILE *in);
int viz_log_name_files(struct viz_log *log);
void viz_sanitize_name(const char *name, char *out, size_t out_size);

void viz_replay_init(struct viz_replay *r);
int viz_replay_apply(struct viz_replay *r, const struct viz_entry *e);
int viz_collect_spans(const struct viz_test *t, struct viz_span **spans, size_t *n);
enum viz_event viz_test_event(const struct viz_entry *e, int *id);
int viz_match_rpcs(const struct viz_test *t, struct viz_rpc **rpcs, size_t *n,
		   struct viz_rpc_stats *stats);
long viz_commit_index(const struct viz_entry *e);
long viz_log_length(const struct viz_entry *e);
void viz_test_stats(const struct viz_test *t, struct viz_stats *st);

void viz_buf_put(struct viz_buf *b, const char *s, size_t n);
void viz_buf_puts(struct viz_buf *b, const char *s);
void viz_buf_printf(struct viz_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void viz_buf_escape(struct viz_buf *b, const char *s, size_t n);
int viz_buf_flush(struct viz_buf *b);
void viz_buf_free(struct viz_buf *b);

int viz_render_page(const struct viz_test *t, struct viz_buf *out);
int viz_write_page(const char *dir, const struct viz_test *t, char **path);
int viz_render_index(const struct viz_log *log, struct viz_buf *out);
int viz_write_index(const char *dir, const struct viz_log *log, char **path);

#endif
