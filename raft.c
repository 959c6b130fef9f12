/*
 * Core Raft implementation - Consensus Module (part 1: leader election).
 * C twin of part1/raft.go in eliben/raft; every Go function has a C function
 * of the same name in snake_case.
 *
 * DESIGN
 * Tasks (each one a goroutine in the Go code, started with lib/go.h's go()
 * in the server's group, so the server names them and waits for them):
 *   "s<id>-start"  waits for "ready", then runs the first election timer.
 *   "s<id>-elect"  run_election_timer: one-shot, until it starts an election
 *                  or finds itself obsolete. It sleeps until a decision is
 *                  due (see wait_for_decision), not on every 10 ms tick.
 *   "s<id>-hb"     the leader's loop: leader_send_heartbeats every 50 ms.
 *   "s<id>-rv>P"   one per RequestVote sent to peer P; handles the reply.
 *   "s<id>-ae>P"   one per AppendEntries sent to peer P; handles the reply.
 * Locking: cm->mu guards all CM state. Every wait is a timed wait on cm->wake
 * (CLOCK_MONOTONIC), broadcast by cm_stop and by every change of term or
 * state, so a stopped CM's tasks end within milliseconds. No lock is held
 * across an RPC (server_call).
 *
 * Election safety fixes over part1 of the Go original are marked "SAFETY:"
 * below; each says whether and where upstream fixed it (part2: issue #14;
 * part3: PR #27) or that no part of the Go code has it.
 */
#include "raft.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chan.h"
#include "lib/clock.h"
#include "lib/go.h"
#include "lib/log.h"
#include "server.h"

#define ELECTION_TICK_MS 10
#define HEARTBEAT_MS	 50

void dlog(struct cm *cm, const char *fmt, ...)
{
	char prefix[24];
	va_list ap;

	if (!raft_debug_enabled())
		return;
	snprintf(prefix, sizeof(prefix), "[%d] ", cm->id);
	va_start(ap, fmt);
	log_vprintf_prefixed(prefix, fmt, ap);
	va_end(ap);
}

const char *cm_state_string(enum cm_state s)
{
	switch (s) {
	case CM_FOLLOWER:
		return "Follower";
	case CM_CANDIDATE:
		return "Candidate";
	case CM_LEADER:
		return "Leader";
	case CM_DEAD:
		return "Dead";
	}
	return "unknown";
}

/* ---- ready ---------------------------------------------------------------- */

/*
 * Go: <-ready. Waits until the harness closes ready, or cm_stop is called
 * (Go's goroutine would wait forever): cm_stop sets stopping, then
 * interrupts the channel, so no wake-up is lost. true once ready is closed.
 */
static bool wait_ready(struct cm *cm)
{
	char nothing;

	return chan_recv(cm->ready, &nothing, NULL, &cm->stopping) == -EPIPE;
}

/* ---- observer ------------------------------------------------------------- */

/*
 * Sets current_term, telling the observer and waking the CM's timers (an
 * obsolete election timer bails out at its next tick). Expects cm->mu held.
 */
static void set_term(struct cm *cm, int term)
{
	int old = cm->current_term;

	cm->current_term = term;
	if (cm->observer.term_changed)
		cm->observer.term_changed(cm->observer.ctx, cm->id, old, term);
	pthread_cond_broadcast(&cm->wake);
}

/* Sets state, waking the CM's timers as set_term does. Expects cm->mu held. */
static void set_state(struct cm *cm, enum cm_state state)
{
	cm->state = state;
	pthread_cond_broadcast(&cm->wake);
}

/* ---- the consensus module ------------------------------------------------ */

static void cm_start(void *arg);

/* Go: NewConsensusModule. */
struct cm *cm_new(int id, const int *peer_ids, int npeers, struct server *server,
		  struct chan *ready, const struct cm_observer *observer)
{
	struct cm *cm = calloc(1, sizeof(*cm));
	size_t n = npeers > 0 ? (size_t)npeers : 1;

	if (!cm || !(cm->peer_ids = calloc(n, sizeof(int))) ||
	    !(cm->ae_in_flight = calloc(n, sizeof(int))) || cond_init_monotonic(&cm->wake)) {
		log_printf("[%d] cm_new: %s", id, strerror(ENOMEM));
		if (cm)
			free(cm->peer_ids);
		free(cm);
		return NULL;
	}
	if (npeers > 0) /* memcpy's pointers must not be NULL, even for 0 bytes */
		memcpy(cm->peer_ids, peer_ids, (size_t)npeers * sizeof(int));
	cm->id = id;
	cm->npeers = npeers;
	cm->server = server;
	cm->ready = ready;
	if (observer)
		cm->observer = *observer;
	cm->state = CM_FOLLOWER;
	cm->voted_for = -1;
	atomic_init(&cm->stopping, false);
	pthread_mutex_init(&cm->mu, NULL);

	/* The CM is quiescent until ready is closed; then its countdown starts. */
	go(server_tasks(server), cm_start, cm, "start");
	return cm;
}

/* The goroutine of NewConsensusModule. */
static void cm_start(void *arg)
{
	struct cm *cm = arg;

	if (!wait_ready(cm))
		return;
	pthread_mutex_lock(&cm->mu);
	cm->election_reset_event = mono_now();
	pthread_mutex_unlock(&cm->mu);
	run_election_timer(cm);
}

void cm_free(struct cm *cm)
{
	if (!cm)
		return;
	pthread_cond_destroy(&cm->wake);
	pthread_mutex_destroy(&cm->mu);
	free(cm->ae_in_flight);
	free(cm->peer_ids);
	free(cm);
}

/* Go: Report. */
void cm_report(struct cm *cm, int *id, int *term, bool *is_leader)
{
	pthread_mutex_lock(&cm->mu);
	if (id)
		*id = cm->id;
	if (term)
		*term = cm->current_term;
	if (is_leader)
		*is_leader = cm->state == CM_LEADER;
	pthread_mutex_unlock(&cm->mu);
}

/*
 * Go: Stop. Unlike Go's, the CM's tasks notice at once: they wait on
 * cm->wake or on ready, and both are woken here.
 */
void cm_stop(struct cm *cm)
{
	pthread_mutex_lock(&cm->mu);
	set_state(cm, CM_DEAD);
	dlog(cm, "becomes Dead");
	atomic_store(&cm->stopping, true);
	pthread_mutex_unlock(&cm->mu);
	chan_interrupt(cm->ready);
}

/* ---- RPC handlers --------------------------------------------------------- */

/* Go: RequestVote RPC. */
int cm_request_vote(struct cm *cm, const struct request_vote_args *args,
		    struct request_vote_reply *reply)
{
	pthread_mutex_lock(&cm->mu);
	memset(reply, 0, sizeof(*reply));
	if (cm->state == CM_DEAD)
		goto out_unlock;
	dlog(cm,
	     "RequestVote: {Term:%d CandidateId:%d LastLogIndex:%d LastLogTerm:%d} "
	     "[currentTerm=%d, votedFor=%d]",
	     args->term, args->candidate_id, args->last_log_index, args->last_log_term,
	     cm->current_term, cm->voted_for);

	if (args->term > cm->current_term) {
		dlog(cm, "... term out of date in RequestVote");
		become_follower(cm, args->term);
	}

	/* At most one vote per term: a candidate asking again gets it again. */
	if (cm->current_term == args->term &&
	    (cm->voted_for == -1 || cm->voted_for == args->candidate_id)) {
		reply->vote_granted = true;
		cm->voted_for = args->candidate_id;
		cm->election_reset_event = mono_now();
	} else {
		reply->vote_granted = false;
	}
	reply->term = cm->current_term;
	dlog(cm, "... RequestVote reply: &{Term:%d VoteGranted:%s}", reply->term,
	     reply->vote_granted ? "true" : "false");
out_unlock:
	pthread_mutex_unlock(&cm->mu);
	return 0;
}

/* Go: AppendEntries RPC. */
int cm_append_entries(struct cm *cm, const struct append_entries_args *args,
		      struct append_entries_reply *reply)
{
	pthread_mutex_lock(&cm->mu);
	memset(reply, 0, sizeof(*reply));
	if (cm->state == CM_DEAD)
		goto out_unlock;
	dlog(cm,
	     "AppendEntries: {Term:%d LeaderId:%d PrevLogIndex:%d PrevLogTerm:%d Entries:[] "
	     "LeaderCommit:%d}",
	     args->term, args->leader_id, args->prev_log_index, args->prev_log_term,
	     args->leader_commit);

	if (args->term > cm->current_term) {
		dlog(cm, "... term out of date in AppendEntries");
		become_follower(cm, args->term);
	}

	reply->success = false;
	if (args->term == cm->current_term) {
		/* A candidate that hears from this term's leader steps down. */
		if (cm->state != CM_FOLLOWER)
			become_follower(cm, args->term);
		cm->election_reset_event = mono_now();
		reply->success = true;
	}

	reply->term = cm->current_term;
	dlog(cm, "AppendEntries reply: {Term:%d Success:%s}", reply->term,
	     reply->success ? "true" : "false");
out_unlock:
	pthread_mutex_unlock(&cm->mu);
	return 0;
}

/* ---- election timer ------------------------------------------------------- */

/* Go: electionTimeout. A pseudo-random election timeout, in milliseconds. */
int election_timeout(struct cm *cm)
{
	(void)cm;
	/*
	 * With RAFT_FORCE_MORE_REELECTION set, stress-test by often returning
	 * the same number: servers collide and must hold re-elections.
	 */
	if (raft_force_more_reelection() && arc4random_uniform(3) == 0)
		return 150;
	return 150 + (int)arc4random_uniform(150);
}

static void run_election_timer_task(void *arg)
{
	run_election_timer(arg);
}

/* Go: go cm.runElectionTimer(). */
static void go_election_timer(struct cm *cm)
{
	go(server_tasks(cm->server), run_election_timer_task, cm, "elect");
}

/*
 * The first tick of the timer's 10 ms grid (ticks at start + k * 10 ms,
 * k >= 1) at or after t.
 */
static struct timespec grid_tick_at_or_after(struct timespec start, struct timespec t)
{
	const long long tick_ns = ELECTION_TICK_MS * 1000000LL;
	long long since = timespec_diff_ns(t, start);
	long long k = since <= 0 ? 1 : (since + tick_ns - 1) / tick_ns;

	return timespec_add_ns(start, (k < 1 ? 1 : k) * tick_ns);
}

/*
 * Sleeps until the tick at which Go's 10 ms ticker would see something to
 * decide: the first tick at or after election_reset_event + timeout (when
 * the timeout may have elapsed), or, once the term or state has changed
 * (set_term and set_state broadcast cm->wake), the next tick after now.
 * At every tick in between, Go's loop would find nothing to do: same term,
 * same state, timeout not elapsed. Expects cm->mu held.
 */
static void wait_for_decision(struct cm *cm, struct timespec start, int term_started,
			      int timeout_ms)
{
	enum cm_state state = cm->state;
	bool changed = false;
	struct timespec due;

	for (;;) {
		if (!changed && (cm->current_term != term_started || cm->state != state ||
				 (state != CM_FOLLOWER && state != CM_CANDIDATE))) {
			/* Fixed once: the next tick after the change is when Go bails out. */
			changed = true;
			due = grid_tick_at_or_after(start, mono_now());
		} else if (!changed) {
			/* The reset event moves with every heartbeat: look again. */
			due = grid_tick_at_or_after(
				start, timespec_add_ms(cm->election_reset_event, timeout_ms));
		}
		if (cm->state == CM_DEAD || timespec_reached(due))
			return;
		pthread_cond_timedwait(&cm->wake, &cm->mu, &due);
	}
}

/*
 * Go: runElectionTimer. A one-shot timer towards becoming a candidate: it
 * returns when the CM is no longer a follower or candidate, when the term
 * changes (whoever changed it started a new timer), or after it starts an
 * election. A follower's timer runs for as long as it hears from a leader.
 *
 * Go wakes on a 10 ms ticker and checks three things at every tick. This
 * loop and its checks are Go's; only the wait differs: wait_for_decision
 * sleeps through the ticks at which no check could fire, and wakes at the
 * same grid instants Go's ticker would fire at.
 */
void run_election_timer(struct cm *cm)
{
	int timeout_ms = election_timeout(cm);
	struct timespec start;
	int term_started;

	pthread_mutex_lock(&cm->mu);
	term_started = cm->current_term;
	pthread_mutex_unlock(&cm->mu);
	dlog(cm, "election timer started (%dms), term=%d", timeout_ms, term_started);

	pthread_mutex_lock(&cm->mu);
	/*
	 * The grid starts now, as Go's ticker does; not at a random phase. A
	 * follower starts this timer on the leader's first message, just
	 * before the leader's heartbeats start, so it ticks a few ms after
	 * each heartbeat arrives: a heartbeat that comes one timeout after the
	 * last (TestDisconnectLeaderBriefly: a 90 ms disconnect, a 150 ms
	 * timeout) lands before the tick. A random phase was tried: it evened
	 * out split votes under RAFT_UNRELIABLE_RPC but lost that race (2 of
	 * 27 part-3 suite runs).
	 */
	start = mono_now();
	for (;;) {
		wait_for_decision(cm, start, term_started, timeout_ms);

		if (cm->state != CM_CANDIDATE && cm->state != CM_FOLLOWER) {
			dlog(cm, "in election timer state=%s, bailing out",
			     cm_state_string(cm->state));
			break;
		}
		if (term_started != cm->current_term) {
			dlog(cm, "in election timer term changed from %d to %d, bailing out",
			     term_started, cm->current_term);
			break;
		}
		/* No word from a leader, and no vote given, for a whole timeout. */
		if (elapsed_ms(cm->election_reset_event) >= timeout_ms) {
			start_election(cm);
			break;
		}
	}
	pthread_mutex_unlock(&cm->mu);
}

/* ---- elections ------------------------------------------------------------ */

/* What each sender thread gets: its own copy of the request's arguments. */
struct send_job {
	struct cm *cm;
	int peer;
	int term; /* the term the request was sent for */
};

static struct send_job *send_job_new(struct cm *cm, int peer, int term)
{
	struct send_job *job = malloc(sizeof(*job));

	if (!job) {
		fprintf(stderr, "raft: out of memory for a send to %d\n", peer);
		abort(); /* as Go's runtime does */
	}
	job->cm = cm;
	job->peer = peer;
	job->term = term;
	return job;
}

/* Go: go func(peerId int) {...}(peerId), the task named name>peer. */
static void go_send(struct cm *cm, void (*fn)(void *), const char *name, int peer, int term)
{
	go(server_tasks(cm->server), fn, send_job_new(cm, peer, term), "%s>%d", name, peer);
}

static void send_request_vote(void *arg)
{
	struct send_job *job = arg;
	struct cm *cm = job->cm;
	struct rpc_call call = { .method = RPC_REQUEST_VOTE };

	call.args.rv.term = job->term;
	call.args.rv.candidate_id = cm->id;
	dlog(cm,
	     "sending RequestVote to %d: {Term:%d CandidateId:%d LastLogIndex:%d LastLogTerm:%d}",
	     job->peer, call.args.rv.term, call.args.rv.candidate_id, call.args.rv.last_log_index,
	     call.args.rv.last_log_term);
	if (server_call(cm->server, job->peer, &call) == 0)
		handle_request_vote_reply(cm, job->term, &call.reply.rv);
	free(job);
}

/*
 * The reply half of startElection's goroutine. A vote counts only for the
 * election it was asked for.
 */
void handle_request_vote_reply(struct cm *cm, int sent_term, const struct request_vote_reply *reply)
{
	pthread_mutex_lock(&cm->mu);
	dlog(cm, "received RequestVoteReply {Term:%d VoteGranted:%s}", reply->term,
	     reply->vote_granted ? "true" : "false");

	if (cm->state != CM_CANDIDATE) {
		dlog(cm, "while waiting for reply, state = %s", cm_state_string(cm->state));
		goto out_unlock;
	}

	/*
	 * SAFETY: compare with the CM's current term, read under the lock, not
	 * with Go part1's savedCurrentTerm (the term the request was sent for):
	 * a reply can never lower the term. Upstream fixed this in part3 only
	 * (PR #27); part2 still compares with savedCurrentTerm.
	 */
	if (reply->term > cm->current_term) {
		dlog(cm, "term out of date in RequestVoteReply");
		become_follower(cm, reply->term);
		goto out_unlock;
	}

	/*
	 * SAFETY: count a vote only while still a candidate in the term the
	 * request was sent for; a vote from an earlier election of ours is
	 * stale. Go part1 and part2 compare reply.Term with savedCurrentTerm
	 * only (a vote of an old election counts); part3 (PR #27) with the
	 * current term. The sent_term clause goes beyond part3: it also refuses
	 * a vote granted "in" the current term to a request of an earlier one,
	 * which only a peer that breaks the protocol sends.
	 */
	if (reply->term == cm->current_term && sent_term == cm->current_term &&
	    reply->vote_granted) {
		cm->votes_received++;
		if (cm->votes_received * 2 > cm->npeers + 1) {
			/* Won the election! */
			dlog(cm, "wins election with %d votes", cm->votes_received);
			start_leader(cm);
		}
	}
out_unlock:
	pthread_mutex_unlock(&cm->mu);
}

/* Go: startElection. Starts a new election with this CM as a candidate. */
void start_election(struct cm *cm)
{
	int saved_term;

	assert(cm->state != CM_DEAD);
	/* SAFETY: the term cannot overflow; the decoder refuses larger ones. */
	if (cm->current_term >= CM_MAX_TERM) {
		dlog(cm, "term %d is the largest; not standing for election", cm->current_term);
		return;
	}
	set_state(cm, CM_CANDIDATE);
	set_term(cm, cm->current_term + 1);
	saved_term = cm->current_term;
	cm->election_reset_event = mono_now();
	cm->voted_for = cm->id;
	cm->votes_received = 1;
	dlog(cm, "becomes Candidate (currentTerm=%d); log=[]", saved_term);

	/* Send RequestVote RPCs to all other servers concurrently. */
	for (int i = 0; i < cm->npeers; i++)
		go_send(cm, send_request_vote, "rv", cm->peer_ids[i], saved_term);

	/* Run another election timer, in case this election is not successful. */
	go_election_timer(cm);
}

/*
 * Go: becomeFollower. Makes cm a follower in term, which is never lower than
 * current_term.
 */
void become_follower(struct cm *cm, int term)
{
	assert(term >= cm->current_term);
	dlog(cm, "becomes Follower with term=%d; log=[]", term);
	set_state(cm, CM_FOLLOWER);
	/*
	 * SAFETY: forget our vote only when the term increases. A candidate or
	 * leader that steps down in the same term has voted in it already (for
	 * itself, or for whoever it follows) and must not vote again. Upstream:
	 * part3, PR #27; part1 and part2 reset votedFor every time.
	 */
	if (term > cm->current_term) {
		set_term(cm, term);
		cm->voted_for = -1;
	}
	cm->election_reset_event = mono_now();

	go_election_timer(cm);
}

/*
 * The tick that Go's `<-ticker.C` returns next, when the last one returned
 * at received and was due at tick. The ticks keep to a grid of HEARTBEAT_MS
 * from the first, so that a late wake-up does not push the later heartbeats
 * back (waking "50 ms after the last" drifted by each wake-up's delay: under
 * load, 54 ms a period, and part 2's TestCommitsWithLeaderDisconnects, which
 * expects the commit index two heartbeats after a Submit within 150 ms,
 * failed more often than Go's under RAFT_UNRELIABLE_RPC). The Ticker's
 * channel holds one tick: the first one due after received, returned at
 * once if it is due already; the ticks due while it waited in the channel
 * are dropped.
 */
static struct timespec next_tick(struct timespec tick, struct timespec received)
{
	tick = timespec_add_ms(tick, HEARTBEAT_MS);
	while (timespec_diff_ns(received, tick) >= 0)
		tick = timespec_add_ms(tick, HEARTBEAT_MS);
	return tick;
}

/* The goroutine of startLeader: heartbeats every 50 ms while leader. */
static void heartbeat_loop(void *arg)
{
	struct cm *cm = arg;
	struct timespec next = mono_now(), received = next;

	/* Send periodic heartbeats, as long as still leader. */
	for (;;) {
		leader_send_heartbeats(cm);
		next = next_tick(next, received);

		pthread_mutex_lock(&cm->mu);
		/* Woken early by a change of state (set_state): a leader no more. */
		while (cm->state == CM_LEADER && !timespec_reached(next))
			pthread_cond_timedwait(&cm->wake, &cm->mu, &next);
		if (cm->state != CM_LEADER) {
			pthread_mutex_unlock(&cm->mu);
			return;
		}
		pthread_mutex_unlock(&cm->mu);
		received = mono_now();
	}
}

/* Go: startLeader. Switches cm into the leader state and starts heartbeats. */
void start_leader(struct cm *cm)
{
	set_state(cm, CM_LEADER);
	if (cm->observer.became_leader)
		cm->observer.became_leader(cm->observer.ctx, cm->id, cm->current_term);
	dlog(cm, "becomes Leader; term=%d, log=[]", cm->current_term);

	go(server_tasks(cm->server), heartbeat_loop, cm, "hb");
}

/* Index of peer in cm->peer_ids. */
static int peer_index(struct cm *cm, int peer)
{
	for (int i = 0; i < cm->npeers; i++)
		if (cm->peer_ids[i] == peer)
			return i;
	assert(!"not a peer");
	return 0;
}

static void send_append_entries(void *arg)
{
	struct send_job *job = arg;
	struct cm *cm = job->cm;
	struct rpc_call call = { .method = RPC_APPEND_ENTRIES };

	call.args.ae.term = job->term;
	call.args.ae.leader_id = cm->id;
	dlog(cm,
	     "sending AppendEntries to %d: ni=%d, args={Term:%d LeaderId:%d PrevLogIndex:%d "
	     "PrevLogTerm:%d Entries:[] LeaderCommit:%d}",
	     job->peer, 0, call.args.ae.term, call.args.ae.leader_id, call.args.ae.prev_log_index,
	     call.args.ae.prev_log_term, call.args.ae.leader_commit);
	if (server_call(cm->server, job->peer, &call) == 0)
		handle_append_entries_reply(cm, &call.reply.ae);
	pthread_mutex_lock(&cm->mu);
	cm->ae_in_flight[peer_index(cm, job->peer)]--;
	pthread_mutex_unlock(&cm->mu);
	free(job);
}

/* The reply half of leaderSendHeartbeats's goroutine. */
void handle_append_entries_reply(struct cm *cm, const struct append_entries_reply *reply)
{
	pthread_mutex_lock(&cm->mu);
	/*
	 * SAFETY: a Dead CM stays dead. Every part of the Go code makes a
	 * stopped CM a follower again (and starts its election timer) when a
	 * heartbeat reply with a higher term arrives after Stop. And, as for
	 * RequestVote replies, compare with the current term read under the
	 * lock: Go part1 compares with savedCurrentTerm; upstream fixed this
	 * for heartbeat replies in part2 (issue #14) and part3.
	 */
	if (cm->state != CM_DEAD && reply->term > cm->current_term) {
		dlog(cm, "term out of date in heartbeat reply");
		become_follower(cm, reply->term);
	}
	pthread_mutex_unlock(&cm->mu);
}

/*
 * Claims the right to send peer i a heartbeat: false while AE_MAX_IN_FLIGHT
 * are still in flight to it. Go starts a new sender every 50 ms whatever
 * happened to the last; against a stalled peer they pile up without bound
 * (goroutines are cheap; our tasks hold threads). A healthy peer answers
 * within milliseconds, and a slow one (RAFT_UNRELIABLE_RPC delays one
 * request in ten by 75 ms) still gets every heartbeat, as in Go. Expects
 * cm->mu held.
 */
static bool claim_heartbeat(struct cm *cm, int i)
{
	if (cm->ae_in_flight[i] >= AE_MAX_IN_FLIGHT)
		return false;
	cm->ae_in_flight[i]++;
	return true;
}

/*
 * Go: leaderSendHeartbeats. Sends a round of heartbeats to all peers; each
 * reply is handled on its sender's task.
 */
void leader_send_heartbeats(struct cm *cm)
{
	int saved_term;

	pthread_mutex_lock(&cm->mu);
	if (cm->state != CM_LEADER) {
		pthread_mutex_unlock(&cm->mu);
		return;
	}
	saved_term = cm->current_term;
	/* Go unlocks first; go() never blocks, so the claim and start stay together. */
	for (int i = 0; i < cm->npeers; i++)
		if (claim_heartbeat(cm, i))
			go_send(cm, send_append_entries, "ae", cm->peer_ids[i], saved_term);
	pthread_mutex_unlock(&cm->mu);
}
