/*
 * Robustness tests of part 2 (issue 9): hostile peers that send
 * AppendEntries frames whose entries lie, as the top-level robust_test.c
 * does for part 1's frames. "A malformed frame is logged and its connection
 * closed; a hostile peer cannot make a server allocate without bound", and
 * the cluster keeps electing and committing.
 *
 * Each hostile peer dials server 0's port and sends one hand-made frame:
 * an entry count beyond AE_MAX_ENTRIES or beyond what the payload holds, a
 * command longer than CM_COMMAND_MAX, lengths that disagree with the
 * payload, a term or an index near INT32_MAX. After each, server 0 has cut
 * the connection off and said why in one log line, its reader thread has
 * ended, the cluster has a leader, server 0 still serves a good peer, and a
 * command submitted to the leader is committed by all three servers.
 * Frames that are well formed but hostile (a term of 2^30 with an index
 * near INT32_MAX and a leaderCommit of INT32_MAX) are answered, refused by
 * the CM, and move no commit index.
 *
 * Usage: robust_test [-run REGEX] (as part2/raft_test).
 *
 * Every test captures the process's log (fd 2 goes to a temporary file),
 * replays it to the real stderr in teardown, shuts the cluster down (which
 * checks both safety monitors) and checks that every thread started since
 * setup has exited within 100 ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "lib/go.h"
#include "lib/log.h"
#include "lib/robust.h"
#include "raft.h"
#include "server.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#include <sanitizer/common_interface_defs.h>
#define HAVE_SANITIZER 1
#endif
#endif

/* Generous: a loaded 2-core machine under TSan is slow, never this slow. */
#define CUT_OFF_TIMEOUT_MS 5000
#define LOG_TIMEOUT_MS	   5000
#define LEADER_TIMEOUT_MS  5000
#define COMMIT_TIMEOUT_MS  5000
/* Server 0, the one attacked, has a reader thread for each of its 2 peers. */
#define PEER_READERS 2
/* A term the decoder takes (at most CM_MAX_TERM) that leaves room to elect. */
#define HUGE_TERM (1 << 30)
/* The largest prevLogIndex the decoder takes (server.c, decode_ae_args). */
#define MAX_PREV_INDEX (INT32_MAX - AE_MAX_ENTRIES - 1)
/* The command a hostile leader tries to slip in; never committed. */
#define FORGED_CMD 666
#define MAX_CONNS  16

/* ---- a peer's side of the wire (lib/robust.h) ----------------------------- */

/* Opens a TCP connection to server's port, as any peer could; -errno on failure. */
static int dial_server(struct server *s)
{
	struct sockaddr_in addr;
	int rc = server_get_listen_addr(s, &addr);

	return rc < 0 ? rc : dial_addr(&addr);
}

/* ---- hand-made AppendEntries frames --------------------------------------- */

/*
 * An AppendEntries request built field by field (server.h has the layout):
 * the six ints of the fixed part, in wire order, then entries appended one
 * by one; the header's length is the payload's unless told otherwise.
 */
struct ae_frame {
	uint8_t buf[FRAME_MAX_SIZE + 64];
	size_t len; /* header and payload so far */
};

/* The tests run one at a time on one thread: the hostile frame, and the good one. */
static struct ae_frame test_frame, good_frame;

static void put_i64(struct ae_frame *f, int64_t v)
{
	rpc_put_u64(f->buf + f->len, (uint64_t)v);
	f->len += 8;
}

/* term, leaderId, prevLogIndex, prevLogTerm, leaderCommit, then the entry count. */
static void ae_begin(struct ae_frame *f, int64_t term, int64_t prev_index, int64_t prev_term,
		     int64_t leader_commit, int64_t nentries)
{
	f->len = FRAME_HEADER_SIZE;
	put_i64(f, term);
	put_i64(f, 9); /* a leader that is no server of the cluster */
	put_i64(f, prev_index);
	put_i64(f, prev_term);
	put_i64(f, leader_commit);
	put_i64(f, nentries);
}

/* One entry: its term, the length it claims and len bytes of command. */
static void ae_entry(struct ae_frame *f, int64_t term, uint32_t claimed_len, const char *cmd,
		     size_t len)
{
	put_i64(f, term);
	rpc_put_u32(f->buf + f->len, claimed_len);
	f->len += 4;
	memcpy(f->buf + f->len, cmd, len);
	f->len += len;
}

/* Writes the header; its payload length is payload_len (SIZE_MAX: the real one). */
static size_t ae_finish(struct ae_frame *f, uint64_t seq, size_t payload_len)
{
	struct rpc_header h = { .kind = RPC_REQUEST, .method = RPC_APPEND_ENTRIES, .seq = seq };

	h.len = (uint32_t)(payload_len == SIZE_MAX ? f->len - FRAME_HEADER_SIZE : payload_len);
	rpc_header_encode(&h, f->buf);
	return f->len;
}

/*
 * Sends a request and reads its reply, which must be a well-formed
 * AppendEntries reply of seq. Returns 0, or -1 with the reason in why.
 */
static int exchange(int fd, const uint8_t *req, size_t len, uint64_t seq,
		    struct append_entries_reply *reply, char *why, size_t whylen)
{
	uint8_t buf[FRAME_HEADER_SIZE + 64];
	struct frame rep;

	snprintf(why, whylen, "no whole reply within %d ms", CUT_OFF_TIMEOUT_MS);
	if (send_bytes(fd, req, len) < 0 ||
	    recv_exact(fd, buf, FRAME_HEADER_SIZE, CUT_OFF_TIMEOUT_MS))
		return -1;
	if (server_frame_decode_header(buf, &rep, why, whylen) < 0)
		return -1;
	if (rep.payload_len > sizeof(buf) ||
	    recv_exact(fd, buf, rep.payload_len, CUT_OFF_TIMEOUT_MS) < 0 ||
	    server_frame_decode_payload(buf, &rep, why, whylen) < 0)
		return -1;
	if (rep.kind != FRAME_REPLY || rep.seq != seq || rep.status != FRAME_OK ||
	    rep.call.method != RPC_APPEND_ENTRIES) {
		snprintf(why, whylen, "wrong reply: kind %d seq %llu status %d method %d", rep.kind,
			 (unsigned long long)rep.seq, rep.status, rep.call.method);
		return -1;
	}
	*reply = rep.call.reply.ae;
	return 0;
}

/* ---- setup and teardown --------------------------------------------------- */

struct test_ctx {
	struct task_set before;
	struct log_capture log;
	harness_t *h;
	int fds[MAX_CONNS]; /* the test's own connections; -1 when closed */
	int next_cmd;	    /* the next command to submit */
	int cut_offs;	    /* connections server 0 has cut off so far */
};

static int setup(void **state)
{
	struct test_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return -1;
	for (int i = 0; i < MAX_CONNS; i++)
		ctx->fds[i] = -1;
	ctx->next_cmd = 100;
	if (task_set_snapshot(&ctx->before) < 0) {
		free(ctx);
		return -1;
	}
	if (capture_start(&ctx->log) < 0) {
		task_set_free(&ctx->before);
		free(ctx);
		return -1;
	}
	*state = ctx;
	return 0;
}

static int teardown(void **state)
{
	struct test_ctx *ctx = *state;
	harness_t *h = ctx->h;
	struct task_set before = ctx->before;

	capture_stop(&ctx->log);
	for (int i = 0; i < MAX_CONNS; i++)
		if (ctx->fds[i] >= 0)
			close(ctx->fds[i]);
	free(ctx);
	*state = NULL;
	harness_end_test(h, &before);
	return 0;
}

/* A 3-server cluster that has elected a leader and committed one command. */
static harness_t *new_cluster(void **state);

/* Connects to server 0 and keeps the descriptor for teardown to close. */
static int hostile_dial(void **state)
{
	struct test_ctx *ctx = *state;
	int fd = dial_server(harness_server(ctx->h, 0));

	if (fd < 0)
		fail_msg("cannot connect to server 0: %s", strerror(-fd));
	for (int i = 0; i < MAX_CONNS; i++) {
		if (ctx->fds[i] < 0) {
			ctx->fds[i] = fd;
			return fd;
		}
	}
	close(fd);
	fail_msg("too many connections for one test");
	return -1;
}

/* Closes a connection of the test's own. */
static void hostile_close(void **state, int fd)
{
	struct test_ctx *ctx = *state;

	for (int i = 0; i < MAX_CONNS; i++)
		if (ctx->fds[i] == fd)
			ctx->fds[i] = -1;
	close(fd);
}

/*
 * A command submitted to the leader is committed by all three servers. A
 * leader that has lost its office by the time of the submit refuses it,
 * and the command goes to the next one.
 */
static void expect_commits(void **state)
{
	struct test_ctx *ctx = *state;
	int cmd = ctx->next_cmd++, leader, term;
	struct timespec start = mono_now();

	for (;;) {
		if (!harness_wait_for_leader(ctx->h, LEADER_TIMEOUT_MS, &leader, &term))
			fail_msg("no leader within %d ms", LEADER_TIMEOUT_MS);
		if (harness_submit_to_server(ctx->h, leader, cmd))
			break;
		if (elapsed_ms(start) >= LEADER_TIMEOUT_MS)
			fail_msg("no leader took command %d within %d ms", cmd, LEADER_TIMEOUT_MS);
		sleep_ms(5);
	}
	if (!harness_wait_committed(ctx->h, cmd, COMMIT_TIMEOUT_MS))
		fail_msg(
			"command %d (submitted to %d in term %d) not committed by all within %d ms",
			cmd, leader, term, COMMIT_TIMEOUT_MS);
	harness_check_committed_n(ctx->h, cmd, 3);
	harness_check_safety(ctx->h);
}

/* A fresh connection to server 0 gets a right reply to a stale heartbeat. */
static void check_serves(void **state)
{
	struct ae_frame *f = &good_frame;
	struct append_entries_reply r = { 0 };
	char why[256];
	int fd, rc;

	fd = hostile_dial(state);
	ae_begin(f, 0, -1, -1, -1, 0); /* term 0: below every term of the cluster */
	rc = exchange(fd, f->buf, ae_finish(f, 42, SIZE_MAX), 42, &r, why, sizeof(why));
	if (rc < 0)
		fail_msg("server 0 does not serve a good peer: %s", why);
	if (r.success || r.term < 1)
		fail_msg("a stale heartbeat got success %d in term %d", r.success, r.term);
	hostile_close(state, fd);
	if (!wait_threads_named("s0-conn", PEER_READERS, CUT_OFF_TIMEOUT_MS))
		fail_msg("the good peer's reader thread did not end");
}

/*
 * Sends a frame on a fresh connection to server 0, then checks what follows
 * a hostile frame: server 0 closed the connection and said why in exactly
 * one more line, its reader thread for it ended, the cluster has a leader,
 * server 0 still serves a good peer, and the cluster still commits.
 */
static void expect_cut_off(void **state, const struct ae_frame *f, size_t len, const char *reason)
{
	struct test_ctx *ctx = *state;
	int fd = hostile_dial(state), rc;
	char line[256];

	rc = send_bytes(fd, f->buf, len);
	if (rc < 0)
		fail_msg("send: %s", strerror(-rc));
	snprintf(line, sizeof(line), "[0] closing connection from a peer: %s", reason);
	if (wait_closed_by_server(fd, CUT_OFF_TIMEOUT_MS) < 0)
		fail_msg("server 0 kept a hostile connection open for %d ms (%s)",
			 CUT_OFF_TIMEOUT_MS, reason);
	hostile_close(state, fd);
	if (!wait_for_log(&ctx->log, line, LOG_TIMEOUT_MS))
		fail_msg("no log line \"%s\"", line);
	ctx->cut_offs++;
	if (!wait_threads_named("s0-conn", PEER_READERS, CUT_OFF_TIMEOUT_MS))
		fail_msg("the hostile connection's reader thread did not end");
	harness_check_single_leader(ctx->h, NULL);
	check_serves(state);
	expect_commits(state);
	assert_int_equal(log_count(&ctx->log, "closing connection from a peer"), ctx->cut_offs);
}

static harness_t *new_cluster(void **state)
{
	struct test_ctx *ctx = *state;

	ctx->h = harness_new(3);
	harness_check_single_leader(ctx->h, NULL);
	expect_commits(state); /* the logs are not empty: index 0 is committed */
	return ctx->h;
}

/* The reason lib/rpc.c gives for an AppendEntries payload that fails to decode. */
#define BAD_AE "field out of range in AppendEntries request"

/* ---- hostile peers -------------------------------------------------------- */

/*
 * An entry count beyond AE_MAX_ENTRIES, up to 2^63 - 1 and negative, is
 * refused before anything is allocated for it.
 */
static void TestHostileAppendEntriesHugeCount(void **state)
{
	static const int64_t counts[] = { AE_MAX_ENTRIES + 1, INT32_MAX, INT64_MAX, -1, INT64_MIN };
	struct ae_frame *f = &test_frame;

	new_cluster(state);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		tlog("entry count %lld", (long long)counts[i]);
		ae_begin(f, 1, -1, -1, -1, counts[i]);
		ae_entry(f, 1, 2, "77", 2);
		expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);
	}
}

/*
 * An entry count within AE_MAX_ENTRIES that the payload cannot hold (each
 * entry takes 12 bytes at least) is refused: a 60-byte frame cannot make
 * the server allocate 1024 entries.
 */
static void TestHostileAppendEntriesCountBeyondPayload(void **state)
{
	struct ae_frame *f = &test_frame;

	new_cluster(state);
	ae_begin(f, 1, -1, -1, -1, AE_MAX_ENTRIES);
	ae_entry(f, 1, 0, "", 0);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);
	/* Two entries announced, one sent. */
	ae_begin(f, 1, -1, -1, -1, 2);
	ae_entry(f, 1, 2, "77", 2);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);
}

/*
 * A frame longer than the largest AppendEntries can be (AE_MAX_ENTRIES
 * entries of CM_COMMAND_MAX bytes) is refused by its header, before its
 * payload is read or room made for it.
 */
static void TestHostileAppendEntriesFrameTooLong(void **state)
{
	struct ae_frame *f = &test_frame;
	char reason[80];

	new_cluster(state);
	ae_begin(f, 1, -1, -1, -1, 0);
	snprintf(reason, sizeof(reason), "payload length %u, at most %u",
		 (unsigned)FRAME_MAX_PAYLOAD + 1, (unsigned)FRAME_MAX_PAYLOAD);
	ae_finish(f, 1, FRAME_MAX_PAYLOAD + 1);
	expect_cut_off(state, f, FRAME_HEADER_SIZE, reason);
	ae_finish(f, 1, UINT32_MAX);
	snprintf(reason, sizeof(reason), "payload length %u, at most %u", UINT32_MAX,
		 (unsigned)FRAME_MAX_PAYLOAD);
	expect_cut_off(state, f, FRAME_HEADER_SIZE, reason);
}

/*
 * A command longer than CM_COMMAND_MAX is refused, whether its bytes follow
 * or it claims 4 GiB.
 */
static void TestHostileAppendEntriesOversizedCommand(void **state)
{
	char big[CM_COMMAND_MAX + 1];
	struct ae_frame *f = &test_frame;

	memset(big, '7', sizeof(big));
	new_cluster(state);
	ae_begin(f, 1, -1, -1, -1, 1);
	ae_entry(f, 1, sizeof(big), big, sizeof(big));
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);
	ae_begin(f, 1, -1, -1, -1, 1);
	ae_entry(f, 1, UINT32_MAX, big, sizeof(big));
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);
}

/*
 * Lengths that disagree with the payload are refused: a command longer than
 * what is left, bytes after the last entry, a payload shorter than the fixed
 * part, and a header that announces fewer bytes than the entries take.
 */
static void TestHostileAppendEntriesLengthMismatch(void **state)
{
	struct ae_frame *f = &test_frame;

	new_cluster(state);
	tlog("a command of 10 bytes with 4 sent");
	ae_begin(f, 1, -1, -1, -1, 1);
	ae_entry(f, 1, 10, "7777", 4);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("3 bytes after the last entry");
	ae_begin(f, 1, -1, -1, -1, 1);
	ae_entry(f, 1, 2, "77777", 5);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("no entries announced, one sent");
	ae_begin(f, 1, -1, -1, -1, 0);
	ae_entry(f, 1, 2, "77", 2);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("a payload shorter than the fixed part");
	ae_begin(f, 1, -1, -1, -1, 0);
	expect_cut_off(state, f, ae_finish(f, 1, AE_ARGS_FIXED_SIZE - 1), BAD_AE);

	tlog("a header that announces less than the entry takes");
	ae_begin(f, 1, -1, -1, -1, 1);
	ae_entry(f, 1, 2, "77", 2);
	ae_finish(f, 1, f->len - FRAME_HEADER_SIZE - 1);
	expect_cut_off(state, f, f->len - 1, BAD_AE);
}

/*
 * A term or an index at or near INT32_MAX that arithmetic on it could
 * overflow is refused: the request's term, prevLogTerm and an entry's term
 * above CM_MAX_TERM, prevLogIndex above INT32_MAX - AE_MAX_ENTRIES - 1, and
 * any field beyond 32 bits.
 */
static void TestHostileAppendEntriesHugeTermOrIndex(void **state)
{
	struct ae_frame *f = &test_frame;

	new_cluster(state);
	tlog("term INT32_MAX");
	ae_begin(f, INT32_MAX, -1, -1, -1, 0);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("term 2^32 + 1 (1 in 32 bits)");
	ae_begin(f, (INT64_C(1) << 32) + 1, -1, -1, -1, 0);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("prevLogTerm INT32_MAX");
	ae_begin(f, 1, 0, INT32_MAX, -1, 0);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("an entry of term INT32_MAX");
	ae_begin(f, 1, -1, -1, -1, 1);
	ae_entry(f, INT32_MAX, 2, "77", 2);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("prevLogIndex INT32_MAX");
	ae_begin(f, 1, INT32_MAX, 1, -1, 1);
	ae_entry(f, 1, 2, "77", 2);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("prevLogIndex just above the largest taken");
	ae_begin(f, 1, (int64_t)MAX_PREV_INDEX + 1, 1, -1, 0);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);

	tlog("leaderCommit 2^31");
	ae_begin(f, 1, -1, -1, INT64_C(1) << 31, 0);
	expect_cut_off(state, f, ae_finish(f, 1, SIZE_MAX), BAD_AE);
}

/* Server 0's commit index is within its log (Figure 2: min(leaderCommit, last new index)). */
static void check_commit_index_within_log(harness_t *h)
{
	struct cm *cm = harness_cm(h, 0);
	int commit_index, log_len;

	pthread_mutex_lock(&cm->mu);
	commit_index = cm->commit_index;
	log_len = cm->log_len;
	pthread_mutex_unlock(&cm->mu);
	if (commit_index >= log_len)
		fail_msg("server 0: commitIndex %d with a log of %d entries", commit_index,
			 log_len);
}

/* Polls until some server leads a term above min_term; fails after timeout_ms. */
static void wait_leader_above(harness_t *h, int min_term, int timeout_ms)
{
	struct timespec start = mono_now();

	while (elapsed_ms(start) < timeout_ms) {
		for (int i = 0; i < 3; i++) {
			bool is_leader;
			int term;

			harness_report(h, i, &term, &is_leader);
			if (is_leader && term > min_term)
				return;
		}
		sleep_ms(2);
	}
	fail_msg("no leader above term %d within %d ms", min_term, timeout_ms);
}

/*
 * Well-formed frames of a hostile leader in term 2^30 are served, and the
 * CM refuses what they ask: an entry after prevLogIndex INT32_MAX - 1025
 * (no such entry), a leaderCommit of INT32_MAX (the commit index stays
 * within the log), and a forged entry at a committed index (never replaced).
 * The cluster then elects above 2^30, commits, and never commits the
 * forged command. No connection is cut off.
 */
static void TestHostileAppendEntriesHugeIndexServed(void **state)
{
	struct test_ctx *ctx = *state;
	struct ae_frame *f = &test_frame;
	struct append_entries_reply r = { 0 };
	char why[256], cmd[8];
	harness_t *h;
	int fd, n = snprintf(cmd, sizeof(cmd), "%d", FORGED_CMD);

	h = new_cluster(state);
	fd = hostile_dial(state);

	tlog("an entry after prevLogIndex %d, leaderCommit INT32_MAX", MAX_PREV_INDEX);
	ae_begin(f, HUGE_TERM, MAX_PREV_INDEX, HUGE_TERM, INT32_MAX, 1);
	ae_entry(f, HUGE_TERM, (uint32_t)n, cmd, (size_t)n);
	if (exchange(fd, f->buf, ae_finish(f, 1, SIZE_MAX), 1, &r, why, sizeof(why)) < 0)
		fail_msg("first frame: %s", why);
	tlog("reply {Term:%d Success:%d}", r.term, r.success);
	assert_false(r.success);
	assert_true(r.term >= HUGE_TERM);
	check_commit_index_within_log(h);

	tlog("a heartbeat with leaderCommit INT32_MAX");
	ae_begin(f, HUGE_TERM, -1, -1, INT32_MAX, 0);
	if (exchange(fd, f->buf, ae_finish(f, 2, SIZE_MAX), 2, &r, why, sizeof(why)) < 0)
		fail_msg("second frame: %s", why);
	tlog("reply {Term:%d Success:%d}", r.term, r.success);
	/* Success only while server 0 is still in term 2^30 (no election yet). */
	assert_int_equal(r.success, r.term == HUGE_TERM);
	check_commit_index_within_log(h);

	tlog("a forged entry at the committed index 0");
	ae_begin(f, HUGE_TERM, -1, -1, INT32_MAX, 1);
	ae_entry(f, HUGE_TERM, (uint32_t)n, cmd, (size_t)n);
	if (exchange(fd, f->buf, ae_finish(f, 3, SIZE_MAX), 3, &r, why, sizeof(why)) < 0)
		fail_msg("third frame: %s", why);
	tlog("reply {Term:%d Success:%d}", r.term, r.success);
	assert_false(r.success);
	check_commit_index_within_log(h);

	wait_leader_above(h, HUGE_TERM, LEADER_TIMEOUT_MS);
	expect_commits(state);
	harness_check_not_committed(h, FORGED_CMD);
	assert_int_equal(log_count(&ctx->log, "closing connection from a peer"), 0);
}

/* ---- main ----------------------------------------------------------------- */

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest all_tests[] = {
	TEST(TestHostileAppendEntriesHugeCount),
	TEST(TestHostileAppendEntriesCountBeyondPayload),
	TEST(TestHostileAppendEntriesFrameTooLong),
	TEST(TestHostileAppendEntriesOversizedCommand),
	TEST(TestHostileAppendEntriesLengthMismatch),
	TEST(TestHostileAppendEntriesHugeTermOrIndex),
	TEST(TestHostileAppendEntriesHugeIndexServed),
};

#define NTESTS (sizeof(all_tests) / sizeof(all_tests[0]))

/* Sanitizer reports go to the real stderr, never into a test's capture. */
static void report_to_real_stderr(void)
{
#ifdef HAVE_SANITIZER
	int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);

	if (fd >= 0)
		__sanitizer_set_report_fd((void *)(intptr_t)fd);
#endif
}

int main(int argc, char **argv)
{
	report_to_real_stderr();
	return harness_run_tests("robust_test", all_tests, NTESTS, argc, argv);
}
