/*
 * Tests of raft-c: the part1 tests of eliben/raft under their Go names, the
 * 2026 election-safety tests of part3 adapted to part 1, deterministic tests
 * of a single CM, and tests of the harness itself.
 *
 * Usage: raft_test [-run REGEX] [-count N]   (as go test: unanchored POSIX
 * extended regex on the test name; N runs of the selection)
 *
 * Every test runs with setup/teardown: teardown shuts down whatever the test
 * started, as Go's `defer h.Shutdown()`, and then checks that every thread
 * started since setup has exited within 100 ms (Go's leaktest, in all tests).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "lib/chan.h"
#include "lib/go.h"
#include "raft.h"
#include "server.h"

/* What a test started, for teardown to stop. */
struct test_ctx {
	struct task_set before;
	harness_t *h;
	/* A lone CM on an unserved server, for the deterministic tests. */
	struct chan *ready;
	struct server *s;
	struct cm *cm;
};

static int setup(void **state)
{
	struct test_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx || task_set_snapshot(&ctx->before) < 0) {
		free(ctx);
		return -1;
	}
	*state = ctx;
	return 0;
}

static void stop_lone_cm(struct test_ctx *ctx)
{
	char why[256];

	if (!ctx->s)
		return;
	cm_stop(ctx->cm);
	if (server_shutdown(ctx->s, why, sizeof(why)) < 0)
		fail_msg("lone CM's server: %s", why);
	cm_free(ctx->cm);
	server_free(ctx->s);
	chan_free(ctx->ready);
	ctx->s = NULL;
	ctx->cm = NULL;
}

static int teardown(void **state)
{
	struct test_ctx *ctx = *state;
	harness_t *h = ctx->h;
	struct task_set before = ctx->before;

	stop_lone_cm(ctx);
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

/* ---- part1/raft_test.go --------------------------------------------------- */

static void TestElectionBasic(void **state)
{
	harness_t *h = new_harness(state, 3);

	harness_check_single_leader(h, NULL);
}

static void TestElectionLeaderDisconnect(void **state)
{
	harness_t *h = new_harness(state, 3);
	int orig_term, new_term;
	int orig_leader_id = harness_check_single_leader(h, &orig_term);

	harness_disconnect_peer(h, orig_leader_id);
	sleep_ms(350);

	int new_leader_id = harness_check_single_leader(h, &new_term);
	if (new_leader_id == orig_leader_id)
		fail_msg("want new leader to be different from orig leader");
	if (new_term <= orig_term)
		fail_msg("want newTerm <= origTerm, got %d and %d", new_term, orig_term);
}

static void TestElectionLeaderAndAnotherDisconnect(void **state)
{
	harness_t *h = new_harness(state, 3);
	int orig_leader_id = harness_check_single_leader(h, NULL);

	harness_disconnect_peer(h, orig_leader_id);
	int other_id = (orig_leader_id + 1) % 3;
	harness_disconnect_peer(h, other_id);

	/* No quorum. */
	sleep_ms(450);
	harness_check_no_leader(h);

	/* Reconnect one other server; now we'll have quorum. */
	harness_reconnect_peer(h, other_id);
	harness_check_single_leader(h, NULL);
}

static void TestDisconnectAllThenRestore(void **state)
{
	harness_t *h = new_harness(state, 3);

	sleep_ms(100);
	/* Disconnect all servers from the start. There will be no leader. */
	for (int i = 0; i < 3; i++)
		harness_disconnect_peer(h, i);
	sleep_ms(450);
	harness_check_no_leader(h);

	/* Reconnect all servers. A leader will be found. */
	for (int i = 0; i < 3; i++)
		harness_reconnect_peer(h, i);
	harness_check_single_leader(h, NULL);
}

/* The shared body of the two ...DisconnectThenReconnect tests. */
static void leader_disconnect_then_reconnect(void **state, int n, int wait_ms)
{
	harness_t *h = new_harness(state, n);
	int orig_leader_id = harness_check_single_leader(h, NULL);
	int new_term, again_term;

	harness_disconnect_peer(h, orig_leader_id);
	sleep_ms(wait_ms);
	int new_leader_id = harness_check_single_leader(h, &new_term);

	harness_reconnect_peer(h, orig_leader_id);
	sleep_ms(150);

	int again_leader_id = harness_check_single_leader(h, &again_term);

	if (new_leader_id != again_leader_id)
		fail_msg("again leader id got %d; want %d", again_leader_id, new_leader_id);
	if (again_term != new_term)
		fail_msg("again term got %d; want %d", again_term, new_term);
}

static void TestElectionLeaderDisconnectThenReconnect(void **state)
{
	leader_disconnect_then_reconnect(state, 3, 350);
}

static void TestElectionLeaderDisconnectThenReconnect5(void **state)
{
	leader_disconnect_then_reconnect(state, 5, 150);
}

static void TestElectionFollowerComesBack(void **state)
{
	harness_t *h = new_harness(state, 3);
	int orig_term, new_term;
	int orig_leader_id = harness_check_single_leader(h, &orig_term);

	int other_id = (orig_leader_id + 1) % 3;
	harness_disconnect_peer(h, other_id);
	sleep_ms(650);
	harness_reconnect_peer(h, other_id);
	sleep_ms(150);

	/*
	 * We can't assert on the new leader id here, because it depends on the
	 * relative election timeouts. We can assert that the term changed,
	 * which implies that re-election has occurred.
	 */
	harness_check_single_leader(h, &new_term);
	if (new_term <= orig_term)
		fail_msg("newTerm=%d, origTerm=%d", new_term, orig_term);
}

static void TestElectionDisconnectLoop(void **state)
{
	harness_t *h = new_harness(state, 3);

	for (int cycle = 0; cycle < 5; cycle++) {
		int leader_id = harness_check_single_leader(h, NULL);

		harness_disconnect_peer(h, leader_id);
		int other_id = (leader_id + 1) % 3;
		harness_disconnect_peer(h, other_id);
		sleep_ms(310);
		harness_check_no_leader(h);

		/* Reconnect both. */
		harness_reconnect_peer(h, other_id);
		harness_reconnect_peer(h, leader_id);

		/* Give it time to settle. */
		sleep_ms(150);
	}
}

/* ---- part3/raft/raft_test.go: election safety, adapted to part 1 ---------- */

/* Finds a follower that has voted, and returns it with its mutex held. */
static struct cm *lock_voted_follower(harness_t *h, int n)
{
	for (int i = 0; i < n; i++) {
		struct cm *cm = harness_cm(h, i);

		pthread_mutex_lock(&cm->mu);
		if (cm->state == CM_FOLLOWER && cm->voted_for >= 0)
			return cm;
		pthread_mutex_unlock(&cm->mu);
	}
	fail_msg("no follower with votedFor >= 0 found");
	return NULL;
}

/* CheckSingleLeader of part3/raft/testharness.go, where these tests come from: 8 tries. */
static int check_single_leader_part3(harness_t *h, int *term)
{
	return harness_check_single_leader_tries(h, 8, term);
}

/* becomeFollower keeps votedFor when the term stays: one vote per term. */
static void TestBecomeFollowerSameTermPreservesVotedFor(void **state)
{
	harness_t *h = new_harness(state, 3);

	check_single_leader_part3(h, NULL);

	struct cm *cm = lock_voted_follower(h, 3);
	int saved_voted_for = cm->voted_for, saved_term = cm->current_term;

	/* Call become_follower with the same term. voted_for must not change. */
	become_follower(cm, saved_term);
	int voted_for = cm->voted_for;
	pthread_mutex_unlock(&cm->mu);

	if (voted_for != saved_voted_for)
		fail_msg("becomeFollower(%d) reset votedFor from %d to %d on same-term transition",
			 saved_term, saved_voted_for, voted_for);
}

/* becomeFollower resets votedFor when the term increases. */
static void TestBecomeFollowerHigherTermResetsVotedFor(void **state)
{
	harness_t *h = new_harness(state, 3);

	check_single_leader_part3(h, NULL);

	struct cm *cm = lock_voted_follower(h, 3);
	int saved_term = cm->current_term;

	/* Call become_follower with a higher term. voted_for must be reset. */
	become_follower(cm, saved_term + 1);
	int voted_for = cm->voted_for;
	pthread_mutex_unlock(&cm->mu);

	if (voted_for != -1)
		fail_msg("becomeFollower(%d) did not reset votedFor (got %d, want -1)",
			 saved_term + 1, voted_for);
}

/*
 * Replies from terms long past (two leaders cut off and brought back) are
 * not counted as votes: at most one leader per term.
 */
static void TestStaleVoteReplyIgnored(void **state)
{
	harness_t *h = new_harness(state, 5);
	int orig_term, new_term;
	int orig_leader_id = check_single_leader_part3(h, &orig_term);

	/* Disconnect the leader so a new election happens. */
	harness_disconnect_peer(h, orig_leader_id);
	sleep_ms(450);

	int new_leader_id = check_single_leader_part3(h, &new_term);
	if (new_term <= orig_term)
		fail_msg("expected newTerm > origTerm, got %d <= %d", new_term, orig_term);

	/* Disconnect the new leader to force yet another election. */
	harness_disconnect_peer(h, new_leader_id);
	sleep_ms(450);

	/* Reconnect both old leaders; they receive replies from old terms. */
	harness_reconnect_peer(h, orig_leader_id);
	harness_reconnect_peer(h, new_leader_id);
	sleep_ms(450);

	/* The key assertion: one leader (and the monitor: one per term, ever). */
	check_single_leader_part3(h, NULL);
}

/* A follower that voted for leader_id in term, or -1. */
static int find_voter(harness_t *h, int leader_id, int term)
{
	for (int i = 0; i < 3; i++) {
		struct cm *cm = harness_cm(h, i);
		bool voted;

		if (i == leader_id)
			continue;
		pthread_mutex_lock(&cm->mu);
		voted = cm->voted_for == leader_id && cm->current_term == term;
		pthread_mutex_unlock(&cm->mu);
		if (voted)
			return i;
	}
	return -1;
}

/*
 * A follower that voted for this term's leader refuses another candidate.
 * Go's version looks once; on a loaded machine a follower can time out and
 * move to the next term between the looks, which proves nothing either way,
 * so this one looks again (a heartbeat later) until the follower answers in
 * the leader's term.
 */
static void TestSameTermDoubleVotePrevented(void **state)
{
	harness_t *h = new_harness(state, 3);

	for (int attempt = 0; attempt < 5; attempt++, sleep_ms(50)) {
		int leader_term;
		int leader_id = check_single_leader_part3(h, &leader_term);

		/* Find a follower that voted for the leader. */
		int follower_id = find_voter(h, leader_id, leader_term);
		if (follower_id < 0)
			continue;

		/* Another candidate asks the follower for a vote in the same term. */
		int other_candidate = 3 - leader_id - follower_id;
		struct request_vote_args args = {
			.term = leader_term,
			.candidate_id = other_candidate,
			.last_log_index = -1,
			.last_log_term = -1,
		};
		struct request_vote_reply reply;

		assert_int_equal(cm_request_vote(harness_cm(h, follower_id), &args, &reply), 0);
		if (reply.term != leader_term)
			continue; /* the follower has moved on to a later term */
		if (reply.vote_granted)
			fail_msg("follower %d granted vote to %d in term %d, but already voted for "
				 "%d",
				 follower_id, other_candidate, leader_term, leader_id);
		return;
	}
	fail_msg("could not find a follower that voted for the leader");
}

/* Repeated leader disconnections never give two leaders in one term. */
static void TestElectionSafetyStress(void **state)
{
	harness_t *h = new_harness(state, 5);

	for (int cycle = 0; cycle < 8; cycle++) {
		int leader_id = check_single_leader_part3(h, NULL);

		harness_disconnect_peer(h, leader_id);
		sleep_ms(350);

		/* Check that there's exactly one leader. */
		check_single_leader_part3(h, NULL);

		harness_reconnect_peer(h, leader_id);
		sleep_ms(150);
	}

	/* Final check after all the churn. */
	sleep_ms(300);
	check_single_leader_part3(h, NULL);
}

/* ---- one CM, driven by hand ------------------------------------------------ */

/*
 * CM 0 of a 3-server cluster, on a server that never serves: its peers are
 * unreachable and ready is never closed, so nothing happens unless the test
 * does it. (An election timer started by the test fires after 150 ms at the
 * earliest; these tests take microseconds.)
 */
static struct cm *new_lone_cm(void **state)
{
	struct test_ctx *ctx = *state;
	int peers[] = { 1, 2 };

	ctx->ready = chan_new(1, 0);
	assert_non_null(ctx->ready);
	ctx->s = server_new(0, peers, 2, ctx->ready, NULL);
	assert_non_null(ctx->s);
	ctx->cm = cm_new(0, peers, 2, ctx->s, ctx->ready, NULL);
	assert_non_null(ctx->cm);
	return ctx->cm;
}

static void assert_cm(struct cm *cm, enum cm_state state, int term, int voted_for)
{
	pthread_mutex_lock(&cm->mu);
	enum cm_state got_state = cm->state;
	int got_term = cm->current_term, got_voted_for = cm->voted_for;
	pthread_mutex_unlock(&cm->mu);

	assert_string_equal(cm_state_string(got_state), cm_state_string(state));
	assert_int_equal(got_term, term);
	assert_int_equal(got_voted_for, voted_for);
}

static void lone_start_election(struct cm *cm)
{
	pthread_mutex_lock(&cm->mu);
	start_election(cm);
	pthread_mutex_unlock(&cm->mu);
}

/* A vote granted for an earlier election of ours is not counted in this one. */
static void TestLoneStaleVoteReplyNotCounted(void **state)
{
	struct cm *cm = new_lone_cm(state);
	struct request_vote_reply old_vote = { .term = 1, .vote_granted = true };
	struct request_vote_reply new_vote = { .term = 2, .vote_granted = true };

	lone_start_election(cm); /* term 1 */
	lone_start_election(cm); /* term 1 timed out: term 2 */
	assert_cm(cm, CM_CANDIDATE, 2, 0);

	/* Part1's Go code counts this one (its reply.Term == savedCurrentTerm). */
	handle_request_vote_reply(cm, 1, &old_vote);
	assert_cm(cm, CM_CANDIDATE, 2, 0);
	assert_int_equal(cm->votes_received, 1);

	/* A vote of this term makes a majority of 3 with our own. */
	handle_request_vote_reply(cm, 2, &new_vote);
	assert_cm(cm, CM_LEADER, 2, 0);
}

/* A reply with a higher term makes the CM a follower; none lowers its term. */
static void TestLoneHigherTermReplyNeverLowersTerm(void **state)
{
	struct cm *cm = new_lone_cm(state);
	struct request_vote_reply rv_between = { .term = 2, .vote_granted = false };
	struct request_vote_reply rv_higher = { .term = 5, .vote_granted = false };
	struct request_vote_reply rv_lower = { .term = 4, .vote_granted = true };
	struct append_entries_reply ae_lower = { .term = 3, .success = false };
	struct append_entries_args ae_old = { .term = 2, .leader_id = 1 };
	struct append_entries_reply ae_reply;

	lone_start_election(cm); /* term 1 */
	lone_start_election(cm); /* term 2 */
	lone_start_election(cm); /* term 3 */
	/*
	 * A late reply to the request of term 1, from a peer now in term 2:
	 * Go part1 compares it with the term it was sent for (2 > 1) and would
	 * make this candidate of term 3 a follower of term 2.
	 */
	handle_request_vote_reply(cm, 1, &rv_between);
	assert_cm(cm, CM_CANDIDATE, 3, 0);

	handle_request_vote_reply(cm, 3, &rv_higher);
	assert_cm(cm, CM_FOLLOWER, 5, -1);

	handle_request_vote_reply(cm, 1, &rv_lower);
	handle_append_entries_reply(cm, &ae_lower);
	assert_cm(cm, CM_FOLLOWER, 5, -1);

	/* An AppendEntries from an old leader is refused with our term. */
	assert_int_equal(cm_append_entries(cm, &ae_old, &ae_reply), 0);
	assert_false(ae_reply.success);
	assert_int_equal(ae_reply.term, 5);
	assert_cm(cm, CM_FOLLOWER, 5, -1);
}

/*
 * A vote granted "in" the current term to a request of an earlier one is
 * not counted: an honest peer never sends it (it grants only in the term it
 * was asked for), so only the sent_term check refuses it.
 */
static void TestLoneVoteForAnotherTermNotCounted(void **state)
{
	struct cm *cm = new_lone_cm(state);
	struct request_vote_reply odd_vote = { .term = 2, .vote_granted = true };

	lone_start_election(cm); /* term 1 */
	lone_start_election(cm); /* term 2 */
	handle_request_vote_reply(cm, 1, &odd_vote);
	assert_cm(cm, CM_CANDIDATE, 2, 0);
	assert_int_equal(cm->votes_received, 1);
}

/* Polls until g has n live tasks; false after timeout_ms. */
static bool wait_tasks(struct go_group *g, long n, int timeout_ms)
{
	struct timespec start = mono_now();

	while (go_group_live(g) != n && elapsed_ms(start) < timeout_ms)
		sleep_ms(1);
	return go_group_live(g) == n;
}

/*
 * An election timer made obsolete by a change of term ends at its next
 * tick, as Go's does, not at shutdown: it does not hold a thread.
 */
static void TestLoneObsoleteTimerEnds(void **state)
{
	struct test_ctx *ctx = *state;
	struct cm *cm = new_lone_cm(state);
	struct go_group *g = server_tasks(ctx->s);
	struct request_vote_args from1 = { .term = 5, .candidate_id = 1 };
	struct request_vote_reply reply;

	lone_start_election(cm); /* term 1, and its election timer */
	/* "start" waits for ready, which never closes; the RequestVotes fail at once. */
	assert_true(wait_tasks(g, 2, 1000));
	assert_int_equal(cm_request_vote(cm, &from1, &reply), 0); /* term 5, a new timer */
	assert_cm(cm, CM_FOLLOWER, 5, 1);
	/* The timer of term 1 bails out; the new one runs on (150 ms at least). */
	assert_true(wait_tasks(g, 2, 1000));
}

/* One vote per term: a second candidate is refused, the first re-granted. */
static void TestLoneOneVotePerTerm(void **state)
{
	struct cm *cm = new_lone_cm(state);
	struct request_vote_args from1 = { .term = 1, .candidate_id = 1 };
	struct request_vote_args from2 = { .term = 1, .candidate_id = 2 };
	struct request_vote_reply reply;

	assert_int_equal(cm_request_vote(cm, &from1, &reply), 0);
	assert_true(reply.vote_granted);
	assert_int_equal(reply.term, 1);

	assert_int_equal(cm_request_vote(cm, &from2, &reply), 0);
	assert_false(reply.vote_granted);
	assert_int_equal(reply.term, 1);

	/* The same candidate asking again (its reply was lost) gets it again. */
	assert_int_equal(cm_request_vote(cm, &from1, &reply), 0);
	assert_true(reply.vote_granted);
	assert_cm(cm, CM_FOLLOWER, 1, 1);
}

/* A candidate that hears from its term's leader steps down but keeps its vote. */
static void TestLoneCandidateStepsDownKeepsVote(void **state)
{
	struct cm *cm = new_lone_cm(state);
	struct append_entries_args heartbeat = { .term = 1, .leader_id = 2 };
	struct request_vote_args from1 = { .term = 1, .candidate_id = 1 };
	struct append_entries_reply ae_reply;
	struct request_vote_reply rv_reply;

	lone_start_election(cm); /* term 1, voted for itself */
	assert_int_equal(cm_append_entries(cm, &heartbeat, &ae_reply), 0);
	assert_true(ae_reply.success);
	assert_cm(cm, CM_FOLLOWER, 1, 0);

	assert_int_equal(cm_request_vote(cm, &from1, &rv_reply), 0);
	assert_false(rv_reply.vote_granted);
}

/* ---- the harness itself ------------------------------------------------------ */

/*
 * With RAFT_UNRELIABLE_RPC set, the callee's proxy drops one request in ten
 * (-EIO): a dropped call is tried again, so that only a disconnection fails.
 */
static int call_append_entries(harness_t *h, int from, int to)
{
	int rc = -EIO;

	for (int try = 0; try < 20; try++) {
		struct rpc_call call = { .method = RPC_APPEND_ENTRIES };

		/* Term 0 is below every term: the callee refuses it and changes nothing. */
		call.args.ae.leader_id = from;
		rc = server_call(harness_server(h, from), to, &call);
		if (rc != -EIO)
			break;
	}
	return rc;
}

/* A disconnected server can neither call nor be called; reconnected, both work. */
static void TestHarnessDisconnectedCallsFail(void **state)
{
	harness_t *h = new_harness(state, 3);

	assert_int_equal(call_append_entries(h, 0, 1), 0);
	harness_disconnect_peer(h, 0);
	assert_int_not_equal(call_append_entries(h, 0, 1), 0);
	assert_int_not_equal(call_append_entries(h, 1, 0), 0);
	assert_int_not_equal(call_append_entries(h, 2, 0), 0);
	assert_int_equal(call_append_entries(h, 1, 2), 0);

	harness_reconnect_peer(h, 0);
	assert_int_equal(call_append_entries(h, 0, 1), 0);
	assert_int_equal(call_append_entries(h, 2, 0), 0);
}

/*
 * Reconnecting a server links it with the connected servers only: one that a
 * test cut off stays cut off until it is reconnected itself (Go's
 * ReconnectPeer linked it too; see harness_reconnect_peer).
 */
static void TestHarnessReconnectLeavesOthersCutOff(void **state)
{
	harness_t *h = new_harness(state, 3);

	harness_disconnect_peer(h, 0);
	harness_disconnect_peer(h, 1);
	harness_reconnect_peer(h, 1);
	assert_int_equal(call_append_entries(h, 1, 2), 0);
	assert_int_equal(call_append_entries(h, 2, 1), 0);
	assert_int_not_equal(call_append_entries(h, 0, 1), 0);
	assert_int_not_equal(call_append_entries(h, 1, 0), 0);
	assert_int_not_equal(call_append_entries(h, 0, 2), 0);

	harness_reconnect_peer(h, 0);
	assert_int_equal(call_append_entries(h, 0, 1), 0);
	assert_int_equal(call_append_entries(h, 1, 0), 0);
	assert_int_equal(call_append_entries(h, 2, 0), 0);
}

/* After harness_shutdown every thread the servers started is joined. */
static void TestHarnessShutdownLeavesNoThread(void **state)
{
	struct test_ctx *ctx = *state;
	long started = go_tasks_started();
	harness_t *h = new_harness(state, 5);
	int id, term;
	char why[1024];

	assert_true(harness_wait_for_leader(h, 3000, &id, &term));
	assert_true(go_tasks_live() > 0);
	ctx->h = NULL;
	harness_shutdown(h);
	assert_int_equal(go_tasks_live(), 0);
	assert_true(go_tasks_started() > started);
	if (!task_set_wait_back(&ctx->before, HARNESS_LEAK_TIMEOUT_MS, why, sizeof(why)))
		fail_msg("%s", why);
}

/* The safety monitor flags two leaders in one term and a term going down. */
static void TestSafetyMonitorCatchesTwoLeaders(void **state)
{
	struct safety_monitor *m = safety_monitor_new(3);
	char why[256];

	(void)state;
	assert_non_null(m);
	/* A legal history: 0 leads term 1, then 1 leads term 2. */
	safety_term_changed(m, 0, 0, 1);
	safety_became_leader(m, 0, 1);
	safety_term_changed(m, 1, 1, 2);
	safety_became_leader(m, 1, 2);
	safety_became_leader(m, 1, 2);
	assert_false(safety_violation(m, why, sizeof(why)));

	/* Server 2 also leads term 1. */
	safety_became_leader(m, 2, 1);
	assert_true(safety_violation(m, why, sizeof(why)));
	assert_string_equal(why, "two leaders in term 1: 0 and 2");
	safety_monitor_free(m);

	m = safety_monitor_new(3);
	assert_non_null(m);
	safety_term_changed(m, 1, 0, 3);
	safety_term_changed(m, 1, 3, 2);
	assert_true(safety_violation(m, why, sizeof(why)));
	assert_string_equal(why, "server 1: term went down from 3 to 2");
	safety_monitor_free(m);
}

/* Frames survive encoding; a frame with any bad field is refused. */
static void TestFrameDecodeChecksFields(void **state)
{
	struct frame f = { .kind = FRAME_REQUEST, .seq = 7 }, g;
	uint8_t buf[FRAME_MAX_SIZE];
	char why[128];
	size_t len;

	(void)state;
	f.call.method = RPC_REQUEST_VOTE;
	f.call.args.rv = (struct request_vote_args){ .term = 3, .candidate_id = 2 };
	len = server_frame_encode(&f, buf);
	assert_int_equal(len, FRAME_HEADER_SIZE + 32);
	assert_int_equal(server_frame_decode_header(buf, &g, why, sizeof(why)), 0);
	assert_int_equal(server_frame_decode_payload(buf + FRAME_HEADER_SIZE, &g, why, sizeof(why)),
			 0);
	assert_int_equal(g.seq, 7);
	assert_int_equal(g.call.args.rv.term, 3);
	assert_int_equal(g.call.args.rv.candidate_id, 2);

	buf[0] ^= 1; /* magic */
	assert_int_equal(server_frame_decode_header(buf, &g, why, sizeof(why)), -EPROTO);
	buf[0] ^= 1;
	buf[6] = 9; /* method */
	assert_int_equal(server_frame_decode_header(buf, &g, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "unknown method 9");
	buf[6] = RPC_REQUEST_VOTE;
	buf[16] = 0xff; /* a length of about 4 GiB */
	assert_int_equal(server_frame_decode_header(buf, &g, why, sizeof(why)), -EPROTO);
	buf[16] = 0;
	buf[FRAME_HEADER_SIZE] = 0x80; /* a negative term */
	assert_int_equal(server_frame_decode_header(buf, &g, why, sizeof(why)), 0);
	assert_int_equal(server_frame_decode_payload(buf + FRAME_HEADER_SIZE, &g, why, sizeof(why)),
			 -EPROTO);
}

/* ---- main: go test's -run and -count (harness_run_tests) ---------------------- */

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest all_tests[] = {
	TEST(TestElectionBasic),
	TEST(TestElectionLeaderDisconnect),
	TEST(TestElectionLeaderAndAnotherDisconnect),
	TEST(TestDisconnectAllThenRestore),
	TEST(TestElectionLeaderDisconnectThenReconnect),
	TEST(TestElectionLeaderDisconnectThenReconnect5),
	TEST(TestElectionFollowerComesBack),
	TEST(TestElectionDisconnectLoop),
	TEST(TestBecomeFollowerSameTermPreservesVotedFor),
	TEST(TestBecomeFollowerHigherTermResetsVotedFor),
	TEST(TestStaleVoteReplyIgnored),
	TEST(TestSameTermDoubleVotePrevented),
	TEST(TestElectionSafetyStress),
	TEST(TestLoneStaleVoteReplyNotCounted),
	TEST(TestLoneHigherTermReplyNeverLowersTerm),
	TEST(TestLoneVoteForAnotherTermNotCounted),
	TEST(TestLoneObsoleteTimerEnds),
	TEST(TestLoneOneVotePerTerm),
	TEST(TestLoneCandidateStepsDownKeepsVote),
	TEST(TestHarnessDisconnectedCallsFail),
	TEST(TestHarnessReconnectLeavesOthersCutOff),
	TEST(TestHarnessShutdownLeavesNoThread),
	TEST(TestSafetyMonitorCatchesTwoLeaders),
	TEST(TestFrameDecodeChecksFields),
};

#define NTESTS (sizeof(all_tests) / sizeof(all_tests[0]))

int main(int argc, char **argv)
{
	return harness_run_tests("raft_test", all_tests, NTESTS, argc, argv);
}
