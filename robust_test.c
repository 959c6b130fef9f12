/*
 * Robustness tests of raft-c (issue 5): "A raft-c server must keep working
 * under bad input, faults and load, lose nothing and never crash."
 *
 * Hostile peers connect to a live server's port and misbehave; after each,
 * the server has cut the connection off and said why in one log line, its
 * reader thread has ended, the cluster elects a leader and the server still
 * serves a well-behaved peer. Exhaustion: thread starts that fail, and a
 * child process whose descriptors run out (RLIMIT_NOFILE) while its cluster
 * runs, then come back.
 *
 * Usage: robust_test [-run REGEX]   (unanchored POSIX extended regex, as
 * raft_test). `robust_test -emfile-child` is the child process of
 * TestAcceptOutOfDescriptors; its exit status is the failed step, 0 if none.
 *
 * Every test captures the process's log (fd 2 goes to a temporary file, so
 * that the test can read back what the servers logged), replays it to the
 * real stderr in teardown, shuts the cluster down and checks that every
 * thread started since setup has exited within 100 ms. Sanitizer reports go
 * straight to the real stderr, so that a report that ends the process is
 * never lost in the capture.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

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
/* A stalled peer's read deadline in the tests (the default is 1000 ms). */
#define STALL_DEADLINE_MS 200
#define BURST_CONNS	  500
#define BURST_SETTLE_MS	  30000
#define CHILD_TIMEOUT_MS  60000
/* Server 0, the one attacked, has a reader thread for each of its 2 peers. */
#define PEER_READERS 2

/* ---- a peer's side of the wire (lib/robust.h) ----------------------------- */

/* Opens a TCP connection to server's port, as any peer could; -errno on failure. */
static int dial_server(struct server *s)
{
	struct sockaddr_in addr;
	int rc = server_get_listen_addr(s, &addr);

	return rc < 0 ? rc : dial_addr(&addr);
}

/* A valid RequestVote request, which the hostile tests then spoil. */
static size_t rv_request(uint8_t *buf)
{
	struct frame f = { .kind = FRAME_REQUEST, .seq = 1 };

	f.call.method = RPC_REQUEST_VOTE;
	f.call.args.rv = (struct request_vote_args){ .term = 1, .last_log_index = -1 };
	return server_frame_encode(&f, buf);
}

/*
 * Sends an AppendEntries of term 0 on fd and checks its reply. Term 0 is
 * never above the callee's: the callee refuses it and changes nothing, or,
 * if it has not heard of term 1 yet, takes it for a heartbeat (success in
 * term 0; its election timer restarts, which a real heartbeat does too).
 * Returns 0, or -1 with the reason in why.
 */
/* A reply to an AppendEntries of term 0: success exactly when in term 0. */
static bool stale_heartbeat_reply_ok(const struct frame *rep)
{
	const struct append_entries_reply *r = &rep->call.reply.ae;

	return r->term >= 0 && r->success == (r->term == 0);
}

static int exchange_stale_heartbeat(int fd, char *why, size_t whylen)
{
	struct frame req = { .kind = FRAME_REQUEST, .seq = 42 }, rep;
	uint8_t buf[FRAME_MAX_SIZE];
	size_t len;

	req.call.method = RPC_APPEND_ENTRIES;
	len = server_frame_encode(&req, buf);
	snprintf(why, whylen, "no whole reply within %d ms", CUT_OFF_TIMEOUT_MS);
	if (send_bytes(fd, buf, len) < 0 ||
	    recv_exact(fd, buf, FRAME_HEADER_SIZE, CUT_OFF_TIMEOUT_MS))
		return -1;
	if (server_frame_decode_header(buf, &rep, why, whylen) < 0)
		return -1;
	if (recv_exact(fd, buf, rep.payload_len, CUT_OFF_TIMEOUT_MS) < 0 ||
	    server_frame_decode_payload(buf, &rep, why, whylen) < 0)
		return -1;
	if (rep.kind != FRAME_REPLY || rep.seq != 42 || rep.status != FRAME_OK ||
	    rep.call.method != RPC_APPEND_ENTRIES || !stale_heartbeat_reply_ok(&rep)) {
		snprintf(why, whylen, "wrong reply: kind %d seq %llu status %d term %d success %d",
			 rep.kind, (unsigned long long)rep.seq, rep.status, rep.call.reply.ae.term,
			 rep.call.reply.ae.success);
		return -1;
	}
	return 0;
}

/* ---- setup and teardown --------------------------------------------------- */

/* What a test started, for teardown to stop. */
struct test_ctx {
	struct task_set before;
	struct log_capture log;
	harness_t *h;
	int fds[BURST_CONNS]; /* the test's own connections; -1 when closed */
};

static int setup(void **state)
{
	struct test_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return -1;
	for (int i = 0; i < BURST_CONNS; i++)
		ctx->fds[i] = -1;
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
	for (int i = 0; i < BURST_CONNS; i++)
		if (ctx->fds[i] >= 0)
			close(ctx->fds[i]);
	free(ctx);
	*state = NULL;
	harness_end_test(h, &before);
	return 0;
}

static harness_t *new_harness(void **state, int n)
{
	struct test_ctx *ctx = *state;

	ctx->h = harness_new(n);
	return ctx->h;
}

/* Connects to server id and keeps the descriptor for teardown to close. */
static int hostile_dial(void **state, int id)
{
	struct test_ctx *ctx = *state;
	int fd = dial_server(harness_server(ctx->h, id));

	if (fd < 0)
		fail_msg("cannot connect to server %d: %s", id, strerror(-fd));
	for (int i = 0; i < BURST_CONNS; i++) {
		if (ctx->fds[i] < 0) {
			ctx->fds[i] = fd;
			return fd;
		}
	}
	close(fd);
	fail_msg("too many connections for one test");
	return -1;
}

static void hostile_send(int fd, const void *buf, size_t len)
{
	int rc = send_bytes(fd, buf, len);

	if (rc < 0)
		fail_msg("send: %s", strerror(-rc));
}

/* A fresh connection to server id gets a right reply to a request. */
static void check_serves(void **state, int id)
{
	int fd = hostile_dial(state, id);
	char why[256];

	if (exchange_stale_heartbeat(fd, why, sizeof(why)) < 0)
		fail_msg("server %d does not serve a good peer: %s", id, why);
}

/*
 * The checks after each hostile peer: server 0 closed fd and said why in
 * exactly one line, its reader thread for fd ended, the cluster elects a
 * leader, and server 0 still serves a well-behaved peer.
 */
static void expect_cut_off(void **state, int fd, const char *reason)
{
	struct test_ctx *ctx = *state;
	char line[256];

	snprintf(line, sizeof(line), "[0] closing connection from a peer: %s", reason);
	if (wait_closed_by_server(fd, CUT_OFF_TIMEOUT_MS) < 0)
		fail_msg("server 0 kept a hostile connection open for %d ms", CUT_OFF_TIMEOUT_MS);
	if (!wait_for_log(&ctx->log, line, LOG_TIMEOUT_MS))
		fail_msg("no log line \"%s\"", line);
	if (!wait_threads_named("s0-conn", PEER_READERS, CUT_OFF_TIMEOUT_MS))
		fail_msg("the hostile connection's reader thread did not end");
	harness_check_single_leader(ctx->h, NULL);
	check_serves(state, 0);
	assert_int_equal(log_count(&ctx->log, "closing connection from a peer"), 1);
}

/*
 * Polls until exactly one of the n servers reports Leader; fails the test
 * after timeout_ms. Unlike harness_check_single_leader, a moment with two
 * leaders is no failure: after a fault, a deposed leader may not have heard
 * of the new term yet, which Raft allows. The safety monitor, checked last,
 * fails the test if one term ever had two leaders.
 */
static void wait_single_leader(harness_t *h, int n, int timeout_ms)
{
	struct timespec start = mono_now();
	int leaders;

	for (;;) {
		leaders = 0;
		for (int i = 0; i < n; i++) {
			bool is_leader;

			harness_report(h, i, NULL, &is_leader);
			leaders += is_leader;
		}
		if (leaders == 1 || elapsed_ms(start) >= timeout_ms)
			break;
		sleep_ms(2);
	}
	harness_check_safety(h);
	if (leaders != 1)
		fail_msg("%d leaders after %d ms; want 1", leaders, timeout_ms);
}

/* ---- hostile peers -------------------------------------------------------- */

/* A peer that sends random bytes is cut off at the first header, with one line. */
static void TestHostileRandomBytes(void **state)
{
	harness_t *h = new_harness(state, 3);
	uint8_t junk[4096];
	int fd = hostile_dial(state, 0);

	(void)h;
	arc4random_buf(junk, sizeof(junk));
	junk[0] = 'X'; /* never the magic's 'R', so the reason is known */
	hostile_send(fd, junk, sizeof(junk));
	expect_cut_off(state, fd, "bad magic 0x58");
}

/* A frame whose magic is wrong is refused before any other field is read. */
static void TestHostileBadMagic(void **state)
{
	harness_t *h = new_harness(state, 3);
	uint8_t buf[FRAME_MAX_SIZE];
	size_t len = rv_request(buf);
	int fd = hostile_dial(state, 0);

	(void)h;
	buf[3] = 'X'; /* "RAFX" */
	hostile_send(fd, buf, len);
	expect_cut_off(state, fd, "bad magic 0x52414658");
}

/* A frame for a method the server does not have is refused. */
static void TestHostileUnknownMethod(void **state)
{
	harness_t *h = new_harness(state, 3);
	uint8_t buf[FRAME_MAX_SIZE];
	size_t len = rv_request(buf);
	int fd = hostile_dial(state, 0);

	(void)h;
	buf[6] = 9;
	hostile_send(fd, buf, len);
	expect_cut_off(state, fd, "unknown method 9");
}

/* A header that announces a 4 GiB payload is refused at once, without waiting for it. */
static void TestHostileHugeLength(void **state)
{
	harness_t *h = new_harness(state, 3);
	uint8_t buf[FRAME_MAX_SIZE];
	int fd = hostile_dial(state, 0);

	(void)h;
	rv_request(buf);
	memset(buf + 16, 0xff, 4); /* payload length 2^32 - 1 */
	hostile_send(fd, buf, FRAME_HEADER_SIZE);
	expect_cut_off(state, fd, "payload length 4294967295, at most 32");
}

/* A peer that closes its side in the middle of a frame is told "frame cut short". */
static void TestHostileTruncatedFrameThenClose(void **state)
{
	harness_t *h = new_harness(state, 3);
	uint8_t buf[FRAME_MAX_SIZE];
	size_t len = rv_request(buf);
	int fd = hostile_dial(state, 0);

	(void)h;
	hostile_send(fd, buf, len - 10);
	if (shutdown(fd, SHUT_WR) < 0)
		fail_msg("shutdown: %s", strerror(errno));
	expect_cut_off(state, fd, "frame cut short");
}

/*
 * Sends the first len bytes of a frame and then nothing: the server must
 * close the connection once the read deadline has passed, not before, and
 * not wait forever.
 */
static void stall_mid_frame(void **state, size_t len)
{
	harness_t *h = new_harness(state, 3);
	uint8_t buf[FRAME_MAX_SIZE];
	struct timespec start;
	char reason[64];
	int fd;
	long ms;

	server_set_frame_read_deadline(harness_server(h, 0), STALL_DEADLINE_MS);
	rv_request(buf);
	fd = hostile_dial(state, 0);
	/* From before the send: the server's deadline cannot start earlier. */
	start = mono_now();
	hostile_send(fd, buf, len);
	if (wait_closed_by_server(fd, STALL_DEADLINE_MS + CUT_OFF_TIMEOUT_MS) < 0)
		fail_msg("a stalled connection was still open after %d ms",
			 STALL_DEADLINE_MS + CUT_OFF_TIMEOUT_MS);
	ms = elapsed_ms(start);
	/* Whole milliseconds on both sides: allow 2 for rounding. */
	if (ms < STALL_DEADLINE_MS - 2)
		fail_msg("a stalled connection was closed after %ld ms, before its deadline", ms);
	snprintf(reason, sizeof(reason), "frame not finished within %d ms", STALL_DEADLINE_MS);
	expect_cut_off(state, fd, reason);
}

/* A peer that stops in the middle of a header is cut off at the read deadline. */
static void TestHostileStallInHeader(void **state)
{
	stall_mid_frame(state, FRAME_HEADER_SIZE / 2);
}

/* A peer that stops in the middle of a payload is cut off at the read deadline. */
static void TestHostileStallInPayload(void **state)
{
	stall_mid_frame(state, FRAME_HEADER_SIZE + 16);
}

/* Sends a RequestVote of term from a candidate that is no server of the cluster. */
static void send_vote_request(int fd, int term)
{
	struct frame f = { .kind = FRAME_REQUEST, .seq = 1 };
	uint8_t buf[FRAME_MAX_SIZE];

	f.call.method = RPC_REQUEST_VOTE;
	f.call.args.rv = (struct request_vote_args){
		.term = term, .candidate_id = 9, .last_log_index = -1, .last_log_term = -1
	};
	hostile_send(fd, buf, server_frame_encode(&f, buf));
}

/* Polls until some server leads a term above min_term; fails after timeout_ms. */
static int wait_leader_above(harness_t *h, int n, int min_term, int timeout_ms)
{
	struct timespec start = mono_now();

	while (elapsed_ms(start) < timeout_ms) {
		for (int i = 0; i < n; i++) {
			bool is_leader;
			int term;

			harness_report(h, i, &term, &is_leader);
			if (is_leader && term > min_term)
				return term;
		}
		sleep_ms(2);
	}
	fail_msg("no leader above term %d within %d ms", min_term, timeout_ms);
	return -1;
}

/*
 * Huge terms from a hostile peer cannot stop elections: a term of 2^30 is
 * taken and the cluster goes on electing above it; one of 2^31-1, which
 * the next election would overflow, is refused and the peer cut off.
 */
static void TestHostileHugeTerms(void **state)
{
	harness_t *h = new_harness(state, 3);
	int fd, term, leader;
	bool is_leader;

	wait_single_leader(h, 3, LEADER_TIMEOUT_MS);
	fd = hostile_dial(state, 0);
	send_vote_request(fd, 1 << 30);
	term = wait_leader_above(h, 3, 1 << 30, LEADER_TIMEOUT_MS);
	tlog("leader in term %d after a RequestVote of term %d", term, 1 << 30);

	/* The same connection: a second one would be a third reader to wait for. */
	send_vote_request(fd, INT32_MAX);
	expect_cut_off(state, fd, "field out of range in RequestVote request");
	harness_report(h, 0, &term, NULL);
	assert_true(term > 1 << 30 && term < CM_MAX_TERM);

	/* And it keeps electing: a new leader once this one is cut off. */
	leader = harness_check_single_leader(h, &term);
	harness_disconnect_peer(h, leader);
	wait_leader_above(h, 3, term, LEADER_TIMEOUT_MS);
	harness_report(h, leader, NULL, &is_leader);
	harness_reconnect_peer(h, leader);
}

/*
 * 500 connections opened at once and then closed: each is served by a
 * reader that ends when its peer closes. A connection closed before it sent
 * a frame is no error, so nothing is logged about it; no accept fails.
 */
static void TestHostileConnectionBurst(void **state)
{
	struct test_ctx *ctx = *state;
	harness_t *h = new_harness(state, 3);
	struct timespec start = mono_now();

	for (int i = 0; i < BURST_CONNS; i++)
		hostile_dial(state, 0);
	tlog("%d connections opened in %ld ms", BURST_CONNS, elapsed_ms(start));
	for (int i = 0; i < BURST_CONNS; i++) {
		close(ctx->fds[i]);
		ctx->fds[i] = -1;
	}
	if (!wait_threads_named("s0-conn", PEER_READERS, BURST_SETTLE_MS))
		fail_msg("%d reader threads still running %d ms after the burst",
			 count_threads_named("s0-conn") - PEER_READERS, BURST_SETTLE_MS);
	tlog("burst over after %ld ms", elapsed_ms(start));
	harness_check_single_leader(h, NULL);
	check_serves(state, 0);
	assert_int_equal(log_count(&ctx->log, "closing connection from a peer"), 0);
	assert_int_equal(log_count(&ctx->log, "accept error"), 0);
}

/* ---- exhaustion: threads -------------------------------------------------- */

/*
 * While no worker thread can be made, go() queues tasks instead of failing:
 * nothing is lost. A cluster started then does nothing (no task has a
 * thread); once threads can be made again, the pool's keeper starts them
 * and the cluster elects a leader.
 */
static void TestThreadCreateFailuresRecover(void **state)
{
	struct test_ctx *ctx = *state;
	harness_t *h;

	go_pool_retire_idle(); /* no parked worker left to run a task */
	go_fail_thread_creates(INT_MAX);
	h = new_harness(state, 3);
	/* Longer than the longest election timeout (300 ms): no task runs. */
	sleep_ms(400);
	for (int i = 0; i < 3; i++) {
		int term;

		harness_report(h, i, &term, NULL);
		assert_int_equal(term, 0);
	}
	harness_check_no_leader(h);
	assert_int_equal(log_count(&ctx->log, "go: cannot start a thread for"), 1);

	go_fail_thread_creates(0);
	wait_single_leader(h, 3, LEADER_TIMEOUT_MS);
	assert_int_equal(log_count(&ctx->log, "go: threads start again"), 1);
}

/*
 * A server shut down while its tasks still wait for threads runs them all
 * before it returns (each ends at once: the server is stopping), and
 * leaves no thread behind.
 */
static void TestShutdownWithQueuedTasks(void **state)
{
	struct test_ctx *ctx = *state;
	harness_t *h;

	go_pool_retire_idle();
	go_fail_thread_creates(INT_MAX);
	h = new_harness(state, 3);
	assert_true(go_tasks_live() > 0);
	go_fail_thread_creates(0);
	ctx->h = NULL;
	harness_shutdown(h); /* fails the test if a task outlives it */
	assert_int_equal(go_tasks_live(), 0);
}

/* A request for every handler a server lets wait, and 100 more. */
#define FLOOD		 (RPC_MAX_HANDLERS + 100)
#define FLOOD_TIMEOUT_MS 30000

/* Sends n stale AppendEntries requests, seq 1 to n, back to back. */
static void send_flood(int fd, int n)
{
	uint8_t *buf = malloc((size_t)n * FRAME_MAX_SIZE), *p = buf;
	int rc;

	assert_non_null(buf);
	for (int i = 1; i <= n; i++) {
		struct frame req = { .kind = FRAME_REQUEST, .seq = (uint64_t)i };

		req.call.method = RPC_APPEND_ENTRIES;
		p += server_frame_encode(&req, p);
	}
	rc = send_bytes(fd, buf, (size_t)(p - buf));
	free(buf);
	if (rc < 0)
		fail_msg("send: %s", strerror(-rc));
}

/* Replies to the flood so far: each seq answered once, refused or failed. */
struct flood_tally {
	bool seen[FLOOD + 1];
	int ok;
	int failed;
};

/* Reads one reply to the flood and counts it; fails the test if it is wrong. */
static void read_flood_reply(int fd, struct flood_tally *t)
{
	uint8_t buf[FRAME_MAX_SIZE];
	char why[128] = "no reply in time";
	struct frame rep = { .kind = 0 };

	if (recv_exact(fd, buf, FRAME_HEADER_SIZE, FLOOD_TIMEOUT_MS) < 0 ||
	    server_frame_decode_header(buf, &rep, why, sizeof(why)) < 0 ||
	    recv_exact(fd, buf, rep.payload_len, FLOOD_TIMEOUT_MS) < 0 ||
	    server_frame_decode_payload(buf, &rep, why, sizeof(why)) < 0)
		fail_msg("after %d replies: %s", t->ok + t->failed, why);
	if (rep.kind != FRAME_REPLY || rep.seq < 1 || rep.seq > FLOOD || t->seen[rep.seq])
		fail_msg("unexpected reply: kind %d seq %llu", rep.kind,
			 (unsigned long long)rep.seq);
	t->seen[rep.seq] = true;
	if (rep.status == FRAME_FAILED)
		t->failed++;
	else if (stale_heartbeat_reply_ok(&rep))
		t->ok++;
	else
		fail_msg("wrong reply to seq %llu: term %d success %d", (unsigned long long)rep.seq,
			 rep.call.reply.ae.term, rep.call.reply.ae.success);
}

/*
 * A flood of requests while no thread can be made: at most RPC_MAX_HANDLERS
 * wait for a handler, the rest are answered "RPC failed" at once, each
 * request gets exactly one reply, and the CMs' own tasks, queued behind the
 * flood, are not lost: once threads are back the cluster elects a leader.
 */
static void TestRequestFloodWhileOutOfThreads(void **state)
{
	struct test_ctx *ctx = *state;
	harness_t *h = new_harness(state, 3);
	struct flood_tally *t = calloc(1, sizeof(*t));
	char why[256];
	int id, term, fd;

	assert_non_null(t);
	if (!harness_wait_for_leader(h, LEADER_TIMEOUT_MS, &id, &term))
		fail_msg("no leader within %d ms", LEADER_TIMEOUT_MS);
	fd = hostile_dial(state, 1);
	/* The connection's reader must be running before threads run out. */
	if (exchange_stale_heartbeat(fd, why, sizeof(why)) < 0)
		fail_msg("server 1 does not serve a new connection: %s", why);
	go_pool_retire_idle();
	go_fail_thread_creates(INT_MAX);
	send_flood(fd, FLOOD);
	/* Each handler takes 1-5 ms: the reader refuses some before they finish. */
	while (t->failed == 0)
		read_flood_reply(fd, t);
	assert_true(wait_for_log(&ctx->log, "requests waiting for a handler; refusing more",
				 LOG_TIMEOUT_MS));

	go_fail_thread_creates(0);
	while (t->ok + t->failed < FLOOD)
		read_flood_reply(fd, t);
	tlog("flood: %d served, %d refused at once", t->ok, t->failed);
	assert_true(t->ok >= RPC_MAX_HANDLERS - 8); /* peers' requests share the cap */
	free(t);
	wait_single_leader(h, 3, LEADER_TIMEOUT_MS);
}

/* ---- a stalled peer -------------------------------------------------------- */

/* A listener that never accepts: connections to it open, and nothing answers. */
static int silent_listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

/*
 * A leader whose heartbeats to one peer are never answered keeps
 * AE_MAX_IN_FLIGHT of them in flight, not one more every 50 ms: senders do
 * not pile up.
 */
static void TestStalledPeerHoldsBoundedHeartbeats(void **state)
{
	harness_t *h = new_harness(state, 3);
	struct sockaddr_in addr;
	char name[16];
	int leader, peer, fd, senders;

	leader = harness_check_single_leader(h, NULL);
	peer = (leader + 1) % 3;
	fd = silent_listener(&addr);
	if (fd < 0) {
		fail_msg("listen: %s", strerror(-fd));
		return; /* fail_msg does not return; cppcheck does not know */
	}
	/* The peer is cut off; the leader keeps the third server, a majority. */
	harness_disconnect_peer(h, peer);
	assert_int_equal(server_connect_to_peer(harness_server(h, leader), peer, &addr), 0);
	sleep_ms(500); /* ten heartbeat rounds */
	snprintf(name, sizeof(name), "s%d-ae>%d", leader, peer);
	senders = count_threads_named(name);
	tlog("%d sender(s) to the silent peer after 10 rounds", senders);
	assert_int_equal(harness_check_single_leader(h, NULL), leader);
	assert_int_equal(senders, AE_MAX_IN_FLIGHT);

	server_disconnect_peer(harness_server(h, leader), peer); /* ends the call */
	close(fd);
	harness_reconnect_peer(h, peer);
	harness_check_single_leader(h, NULL);
}

/* ---- exhaustion: connect -------------------------------------------------- */

/* An address on 127.0.0.1 that nothing listens on (its socket is closed). */
static int closed_port(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * A refused connect is logged with strerror and fails cleanly: no client is
 * left behind, calls to that peer fail, and a later connect works.
 */
static void TestConnectRefusedThenRetried(void **state)
{
	struct test_ctx *ctx = *state;
	harness_t *h = new_harness(state, 3);
	struct server *s1 = harness_server(h, 1);
	struct rpc_call call = { .method = RPC_APPEND_ENTRIES };
	struct sockaddr_in refused = { .sin_family = AF_INET }, addr2 = { .sin_family = AF_INET };
	char line[64];
	int id, term;

	if (!harness_wait_for_leader(h, LEADER_TIMEOUT_MS, &id, &term))
		fail_msg("no leader within %d ms", LEADER_TIMEOUT_MS);
	assert_int_equal(closed_port(&refused), 0);
	assert_int_equal(server_disconnect_peer(s1, 2), 0);
	assert_int_equal(server_connect_to_peer(s1, 2, &refused), -ECONNREFUSED);
	snprintf(line, sizeof(line), "[1] connect to port %d: Connection refused",
		 ntohs(refused.sin_port));
	assert_int_equal(log_count(&ctx->log, line), 1);
	assert_int_equal(server_call(s1, 2, &call), -ENOTCONN);

	assert_int_equal(server_get_listen_addr(harness_server(h, 2), &addr2), 0);
	assert_int_equal(server_connect_to_peer(s1, 2, &addr2), 0);
	assert_int_equal(server_call(s1, 2, &call), 0);
	/* Term 0 is stale unless server 2 is still in it (see exchange_stale_heartbeat). */
	assert_int_equal(call.reply.ae.success, call.reply.ae.term == 0);
	wait_single_leader(h, 3, LEADER_TIMEOUT_MS);
}

/* ---- exhaustion: descriptors (a child process) ----------------------------- */

/* The highest open descriptor of this process; -1 if /proc cannot say. */
static int highest_fd(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int max = -1;

	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		int fd = (int)strtol(e->d_name, NULL, 10);

		if (e->d_name[0] != '.' && fd > max && fd != dirfd(dir))
			max = fd;
	}
	closedir(dir);
	return max;
}

/*
 * Descriptors above the highest open one that exhaust_fds takes too, so that
 * a test always has fillers to give back even when nothing below has a gap
 * (CI once ran with none: "cannot use up descriptors").
 */
#define EXHAUST_SPARE 4

/*
 * Uses up every descriptor: the soft RLIMIT_NOFILE goes down to
 * EXHAUST_SPARE above the highest open one, and the gaps below and the spare
 * slots are filled with dups. Returns the number of fillers (in fillers, at
 * least EXHAUST_SPARE), or -1.
 */
static int exhaust_fds(struct rlimit *saved, int *fillers, int max_fillers)
{
	struct rlimit lim;
	int top = highest_fd(), n = 0;

	if (top < 0 || getrlimit(RLIMIT_NOFILE, saved) < 0)
		return -1;
	lim = *saved;
	lim.rlim_cur = (rlim_t)top + 1 + EXHAUST_SPARE;
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		return -1;
	while (n < max_fillers) {
		int fd = dup(STDERR_FILENO);

		if (fd < 0)
			return errno == EMFILE ? n : -1;
		fillers[n++] = fd;
	}
	return -1; /* more gaps than expected */
}

static void restore_fds(const struct rlimit *saved, int *fillers, int n)
{
	if (setrlimit(RLIMIT_NOFILE, saved) < 0)
		log_printf("[TEST] setrlimit: %s", strerror(errno));
	for (int i = 0; i < n; i++)
		close(fillers[i]);
}

/*
 * A harness that cannot start all its servers or connect them (out of
 * descriptors half-way) shuts down the ones it started: no thread of theirs
 * outlives the failure.
 */
static void TestHarnessNewFailureLeavesNothing(void **state)
{
	struct test_ctx *ctx = *state;
	int fillers[1024], n;
	struct rlimit saved;
	harness_t *h;
	char why[128];

	n = exhaust_fds(&saved, fillers, 1024);
	if (n < 3) {
		if (n >= 0)
			restore_fds(&saved, fillers, n);
		ctx->h = NULL;
		fail_msg("cannot use up descriptors");
		return;
	}
	/* Three descriptors back: server 0 starts (a listener), a later one cannot. */
	for (int i = 0; i < 3; i++)
		close(fillers[--n]);
	h = harness_try_new(3, why, sizeof(why));
	restore_fds(&saved, fillers, n);
	if (h) {
		ctx->h = h;
		fail_msg("harness_try_new succeeded with three descriptors");
	}
	tlog("harness_try_new: %s", why);
	/*
	 * Which step runs out depends on the descriptors the runtime holds at
	 * the moment; any but the first server's start leaves servers to stop.
	 */
	assert_string_not_equal(why, "cannot start server 0");
	assert_int_equal(go_tasks_live(), 0);
	/* teardown's leak check: no thread of servers 0 and 1 is left */
}

/* Exit codes of the child: the step that failed. */
enum child_step {
	CHILD_OK,
	CHILD_SETUP,
	CHILD_FIRST_LEADER,
	CHILD_EXHAUST,
	CHILD_ACCEPT_LOGGED,
	CHILD_SOCKET_FAILS,
	CHILD_LEADER_DURING,
	CHILD_ACCEPT_RECOVERED,
	CHILD_SERVED,
	CHILD_RECONNECT,
	CHILD_LEADER_AFTER,
};

/* Two connections to server 0: see while_out_of_fds. */
#define CHILD_CONNS 2

/* Open descriptors of this process; -1 if /proc cannot say. */
static int count_open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Polls until want descriptors are open; false after timeout_ms. */
static bool wait_open_fds(int want, int timeout_ms)
{
	struct timespec start = mono_now();

	while (count_open_fds() != want) {
		if (elapsed_ms(start) >= timeout_ms)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* A cluster of 3 holds 15 descriptors: 3 listeners and 2 ends of 6 connections. */
#define CLUSTER_FDS (3 + 2 * 6)

/*
 * Cuts server 1 off from server 2 (to reconnect it while out of descriptors)
 * and waits until both ends of the cut connection are closed: the last of
 * its users (a reader, or a handler still replying) closes each, and none
 * may come free while descriptors are used up. base_fds were open before
 * the cluster started; its servers accept their connections in their own
 * time, so the count is awaited first.
 */
static int prepare_child(harness_t *h, int base_fds, int *fds)
{
	int id, term;

	if (!harness_wait_for_leader(h, LEADER_TIMEOUT_MS, &id, &term))
		return CHILD_FIRST_LEADER;
	if (!wait_open_fds(base_fds + CLUSTER_FDS, CUT_OFF_TIMEOUT_MS) ||
	    server_disconnect_peer(harness_server(h, 1), 2) < 0 ||
	    !wait_open_fds(base_fds + CLUSTER_FDS - 2, CUT_OFF_TIMEOUT_MS))
		return CHILD_SETUP;
	/* The peers' sockets exist before the descriptors run out. */
	for (int i = 0; i < CHILD_CONNS; i++)
		if ((fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			return CHILD_SETUP;
	return CHILD_OK;
}

/*
 * Out of descriptors: server 0's accept fails with EMFILE and says so once,
 * server 1 cannot open a socket to reconnect to server 2, and the cluster
 * still has a leader. Connecting takes no new descriptor. Accepting takes
 * one, which Linux reserves when accept begins, before any connection comes:
 * the accept already waiting has one, and takes the first connection; the
 * next accept fails, and the second connection waits in the backlog.
 */
static int while_out_of_fds(harness_t *h, const struct log_capture *log, const int *fds)
{
	struct sockaddr_in addr0, addr2;
	int id, term;

	if (server_get_listen_addr(harness_server(h, 0), &addr0) < 0 ||
	    server_get_listen_addr(harness_server(h, 2), &addr2) < 0)
		return CHILD_SETUP;
	for (int i = 0; i < CHILD_CONNS; i++)
		if (connect(fds[i], (struct sockaddr *)&addr0, sizeof(addr0)) < 0)
			return CHILD_SETUP;
	if (!wait_for_log(log, "[0] accept error: Too many open files", LOG_TIMEOUT_MS))
		return CHILD_ACCEPT_LOGGED;
	if (server_connect_to_peer(harness_server(h, 1), 2, &addr2) != -EMFILE ||
	    log_count(log, "[1] socket: Too many open files") != 1)
		return CHILD_SOCKET_FAILS;
	if (!harness_wait_for_leader(h, LEADER_TIMEOUT_MS, &id, &term))
		return CHILD_LEADER_DURING;
	return CHILD_OK;
}

/* Descriptors are back: both connections are served, server 1 reconnects. */
static int after_fds_back(harness_t *h, const struct log_capture *log, const int *fds)
{
	struct sockaddr_in addr2;
	char why[256];
	int id, term;

	if (!wait_for_log(log, "[0] accept working again", LOG_TIMEOUT_MS))
		return CHILD_ACCEPT_RECOVERED;
	for (int i = 0; i < CHILD_CONNS; i++) {
		if (exchange_stale_heartbeat(fds[i], why, sizeof(why)) < 0) {
			log_printf("[TEST] connection %d: %s", i, why);
			return CHILD_SERVED;
		}
	}
	if (server_get_listen_addr(harness_server(h, 2), &addr2) < 0 ||
	    server_connect_to_peer(harness_server(h, 1), 2, &addr2) < 0)
		return CHILD_RECONNECT;
	if (!harness_wait_for_leader(h, LEADER_TIMEOUT_MS, &id, &term))
		return CHILD_LEADER_AFTER;
	return CHILD_OK;
}

/* The child's steps; returns the first that failed, CHILD_OK if none. */
static int emfile_scenario(harness_t *h, int base_fds, const struct log_capture *log)
{
	int fds[CHILD_CONNS] = { -1, -1 }, fillers[256], nfill, rc;
	struct rlimit saved;

	rc = prepare_child(h, base_fds, fds);
	if (rc == CHILD_OK) {
		nfill = exhaust_fds(&saved, fillers, 256);
		if (nfill < 0)
			rc = CHILD_EXHAUST;
	}
	if (rc == CHILD_OK) {
		rc = while_out_of_fds(h, log, fds);
		restore_fds(&saved, fillers, nfill);
	}
	if (rc == CHILD_OK)
		rc = after_fds_back(h, log, fds);
	for (int i = 0; i < CHILD_CONNS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

/*
 * The child's main, in a process of its own (fork and exec): its rlimit and
 * descriptors cannot disturb the test program, and it starts its threads in
 * a fresh ThreadSanitizer runtime. No cmocka here: the exit status says
 * which step failed.
 */
static int emfile_child(void)
{
	struct log_capture log;
	harness_t *h;
	int base_fds, rc;

	if (capture_start(&log) < 0 || (base_fds = count_open_fds()) < 0)
		return CHILD_SETUP;
	h = harness_new(3);
	rc = emfile_scenario(h, base_fds, &log);
	harness_shutdown(h);
	log_printf("[TEST] emfile child: exit %d", rc);
	capture_stop(&log);
	return rc;
}

/* Waits for pid to exit, at most timeout_ms; its wait status, or -1. */
static int wait_child(pid_t pid, int timeout_ms)
{
	struct timespec start = mono_now();
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		if (elapsed_ms(start) >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ms(10);
	}
}

/*
 * Out of descriptors, accept fails with EMFILE and socket too: both are
 * logged with strerror, nothing crashes or hangs, the cluster keeps its
 * leader, and everything works again once descriptors are back.
 */
static void TestAcceptOutOfDescriptors(void **state)
{
	struct test_ctx *ctx = *state;
	pid_t pid = fork();
	int status;

	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		execl("/proc/self/exe", "robust_test", "-emfile-child", (char *)NULL);
		_exit(127);
	}
	status = wait_child(pid, CHILD_TIMEOUT_MS);
	if (status < 0)
		fail_msg("the child did not finish within %d ms", CHILD_TIMEOUT_MS);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child failed: %s %d", WIFEXITED(status) ? "step" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	/* The child's log came through the capture it inherited: one line each. */
	assert_int_equal(log_count(&ctx->log, "[0] accept error: Too many open files"), 1);
	assert_int_equal(log_count(&ctx->log, "[0] accept working again"), 1);
}

/* ---- main ----------------------------------------------------------------- */

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest all_tests[] = {
	TEST(TestHostileRandomBytes),
	TEST(TestHostileBadMagic),
	TEST(TestHostileUnknownMethod),
	TEST(TestHostileHugeLength),
	TEST(TestHostileTruncatedFrameThenClose),
	TEST(TestHostileStallInHeader),
	TEST(TestHostileStallInPayload),
	TEST(TestHostileHugeTerms),
	TEST(TestHostileConnectionBurst),
	TEST(TestThreadCreateFailuresRecover),
	TEST(TestShutdownWithQueuedTasks),
	TEST(TestRequestFloodWhileOutOfThreads),
	TEST(TestStalledPeerHoldsBoundedHeartbeats),
	TEST(TestHarnessNewFailureLeavesNothing),
	TEST(TestConnectRefusedThenRetried),
	TEST(TestAcceptOutOfDescriptors),
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
	if (argc == 2 && strcmp(argv[1], "-emfile-child") == 0)
		return emfile_child();
	report_to_real_stderr();
	return harness_run_tests("robust_test", all_tests, NTESTS, argc, argv);
}
