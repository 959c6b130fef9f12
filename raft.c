/*
 * Core Raft implementation - Consensus Module (part 1: leader election).
 * C twin of part1/raft.go in eliben/raft; every Go function has a C function
 * of the same name in snake_case.
 *
 * DESIGN
 * Threads (each one a goroutine in the Go code, all started with server_go,
 * so the server counts, names and joins them):
 *   "s<id>-start"  waits for "ready", then runs the first election timer.
 *   "s<id>-elect"  run_election_timer: ticks every 10 ms until it starts an
 *                  election or finds itself obsolete. One per term (one-shot).
 *   "s<id>-hb"     the leader's loop: leader_send_heartbeats every 50 ms.
 *   "s<id>-rv>P"   one per RequestVote sent to peer P; handles the reply.
 *   "s<id>-ae>P"   one per AppendEntries sent to peer P; handles the reply.
 * Locking: cm->mu guards all CM state. Every wait is a timed wait on cm->wake
 * (CLOCK_MONOTONIC), which cm_stop broadcasts, so a stopped CM's threads end
 * within milliseconds. No lock is held across an RPC (server_call) or a join.
 *
 * Election safety fixes over part1 of the Go original (upstream fixed these
 * in part2/part3, eliben/raft issues #14 and #25, PR #27) are marked
 * "SAFETY:" below.
 */
#include "raft.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "server.h"

#define ELECTION_TICK_MS 10
#define HEARTBEAT_MS	 50

/* ---- time ---------------------------------------------------------------- */

struct timespec mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

struct timespec timespec_add_ms(struct timespec t, long ms)
{
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static long timespec_diff_ms(struct timespec a, struct timespec b)
{
	return (a.tv_sec - b.tv_sec) * 1000L + (a.tv_nsec - b.tv_nsec) / 1000000L;
}

long elapsed_ms(struct timespec since)
{
	return timespec_diff_ms(mono_now(), since);
}

static bool timespec_reached(struct timespec deadline)
{
	struct timespec now = mono_now();

	return now.tv_sec > deadline.tv_sec ||
	       (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

int cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc = pthread_condattr_init(&attr);

	if (rc)
		return -rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!rc)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return -rc;
}

/* ---- logging and environment -------------------------------------------- */

struct raft_env {
	bool debug;
	bool unreliable_rpc;
	bool force_more_reelection;
};

static struct raft_env env;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

/* As Go's len(os.Getenv(name)) > 0. */
static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

static void read_env(void)
{
	const char *debug = getenv("RAFT_DEBUG");

	/* Go's DebugCM = 1: on unless RAFT_DEBUG=0. */
	env.debug = !(debug && strcmp(debug, "0") == 0);
	env.unreliable_rpc = env_set("RAFT_UNRELIABLE_RPC");
	env.force_more_reelection = env_set("RAFT_FORCE_MORE_REELECTION");
}

static const struct raft_env *get_env(void)
{
	pthread_once(&env_once, read_env);
	return &env;
}

bool raft_debug_enabled(void)
{
	return get_env()->debug;
}

bool raft_unreliable_rpc(void)
{
	return get_env()->unreliable_rpc;
}

bool raft_force_more_reelection(void)
{
	return get_env()->force_more_reelection;
}

static void write_all_stderr(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to report a logging failure */
		buf += n;
		len -= (size_t)n;
	}
}

/* Held from timestamp to write, so that the log's times never go backwards. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void vlog_printf(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];
	struct timeval tv;
	struct tm tm;
	size_t len;
	int n;

	pthread_mutex_lock(&log_mu);
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	len = strftime(line, sizeof(line), "%H:%M:%S", &tm);
	n = snprintf(line + len, sizeof(line) - len, ".%06ld %s", (long)tv.tv_usec, prefix);
	len += (size_t)n;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line) - len) {
		/* Truncated: say so, and keep the line a line. */
		len = sizeof(line) - 5;
		/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a line, not a string */
		memcpy(line + len, "...", 3);
		len += 3;
	} else {
		len += (size_t)n;
	}
	line[len++] = '\n';
	write_all_stderr(line, len);
	pthread_mutex_unlock(&log_mu);
}

void log_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_printf("", fmt, ap);
	va_end(ap);
}

void dlog(struct cm *cm, const char *fmt, ...)
{
	char prefix[24];
	va_list ap;

	if (!raft_debug_enabled())
		return;
	snprintf(prefix, sizeof(prefix), "[%d] ", cm->id);
	va_start(ap, fmt);
	vlog_printf(prefix, fmt, ap);
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

void ready_init(struct ready *r)
{
	pthread_mutex_init(&r->mu, NULL);
	cond_init_monotonic(&r->cond);
	r->closed = false;
}

void ready_close(struct ready *r)
{
	pthread_mutex_lock(&r->mu);
	r->closed = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
}

void ready_destroy(struct ready *r)
{
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
}

/*
 * Waits until the harness closes ready or cm_stop is called. ready is shared
 * by all CMs, so stopping is an atomic flag of this CM's, which cm_stop sets
 * before it broadcasts ready->cond under ready->mu: no wake-up is lost.
 */
static bool wait_ready(struct cm *cm)
{
	struct ready *r = cm->ready;
	bool closed;

	pthread_mutex_lock(&r->mu);
	while (!r->closed && !atomic_load(&cm->stopping)) {
		struct timespec deadline = timespec_add_ms(mono_now(), 1000);

		pthread_cond_timedwait(&r->cond, &r->mu, &deadline);
	}
	closed = r->closed && !atomic_load(&cm->stopping);
	pthread_mutex_unlock(&r->mu);
	return closed;
}

/* ---- observer ------------------------------------------------------------- */

/* Sets current_term, telling the observer. Expects cm->mu held. */
static void set_term(struct cm *cm, int term)
{
	int old = cm->current_term;

	cm->current_term = term;
	if (cm->observer.term_changed)
		cm->observer.term_changed(cm->observer.ctx, cm->id, old, term);
}

/* ---- the consensus module ------------------------------------------------ */

static void *cm_start_thread(void *arg);

struct cm *cm_new(int id, const int *peer_ids, int npeers, struct server *server,
		  struct ready *ready, const struct cm_observer *observer)
{
	struct cm *cm = calloc(1, sizeof(*cm));

	if (!cm || (npeers > 0 && !(cm->peer_ids = calloc((size_t)npeers, sizeof(int))))) {
		log_printf("[%d] cm_new: %s", id, strerror(ENOMEM));
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
	cond_init_monotonic(&cm->wake);

	/* The CM is quiescent until ready is closed; then its countdown starts. */
	if (server_go(server, cm_start_thread, cm, "start") < 0) {
		cm_free(cm);
		return NULL;
	}
	return cm;
}

static void *cm_start_thread(void *arg)
{
	struct cm *cm = arg;

	if (!wait_ready(cm))
		return NULL;
	pthread_mutex_lock(&cm->mu);
	cm->election_reset_event = mono_now();
	pthread_mutex_unlock(&cm->mu);
	run_election_timer(cm);
	return NULL;
}

void cm_free(struct cm *cm)
{
	if (!cm)
		return;
	pthread_cond_destroy(&cm->wake);
	pthread_mutex_destroy(&cm->mu);
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
 * Go: Stop. Unlike Go's, the CM's threads notice at once: every one of them
 * waits on cm->wake or ready->cond, and both are broadcast here.
 */
void cm_stop(struct cm *cm)
{
	pthread_mutex_lock(&cm->mu);
	cm->state = CM_DEAD;
	dlog(cm, "becomes Dead");
	atomic_store(&cm->stopping, true);
	pthread_cond_broadcast(&cm->wake);
	pthread_mutex_unlock(&cm->mu);

	pthread_mutex_lock(&cm->ready->mu);
	pthread_cond_broadcast(&cm->ready->cond);
	pthread_mutex_unlock(&cm->ready->mu);
}

/*
 * Sleeps until deadline, or less if cm_stop is called. Expects cm->mu held;
 * releases it while waiting, as a Go goroutine does around <-ticker.C.
 */
static void cm_wait_until(struct cm *cm, struct timespec deadline)
{
	while (cm->state != CM_DEAD && !timespec_reached(deadline))
		pthread_cond_timedwait(&cm->wake, &cm->mu, &deadline);
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

static void *run_election_timer_thread(void *arg)
{
	run_election_timer(arg);
	return NULL;
}

/* Starts run_election_timer on its own thread. Expects cm->mu held. */
static void go_election_timer(struct cm *cm)
{
	if (server_go(cm->server, run_election_timer_thread, cm, "elect") < 0)
		dlog(cm, "could not start election timer; this CM waits for a leader");
}

/*
 * Go: runElectionTimer. A one-shot timer towards becoming a candidate: it
 * returns when the CM is no longer a follower or candidate, when the term
 * changes (whoever changed it started a new timer), or after it starts an
 * election. A follower's timer runs for as long as it hears from a leader.
 */
void run_election_timer(struct cm *cm)
{
	int timeout_ms = election_timeout(cm);
	struct timespec tick;
	int term_started;

	pthread_mutex_lock(&cm->mu);
	term_started = cm->current_term;
	pthread_mutex_unlock(&cm->mu);
	dlog(cm, "election timer started (%dms), term=%d", timeout_ms, term_started);

	pthread_mutex_lock(&cm->mu);
	tick = mono_now();
	for (;;) {
		/* Absolute deadlines, like Go's ticker: work does not add drift. */
		tick = timespec_add_ms(tick, ELECTION_TICK_MS);
		cm_wait_until(cm, tick);

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
		dlog(cm, "cannot send to %d: %s", peer, strerror(ENOMEM));
		return NULL;
	}
	job->cm = cm;
	job->peer = peer;
	job->term = term;
	return job;
}

/* Starts fn(job) on a thread named name>peer; frees the job if it cannot. */
static void go_send(struct cm *cm, void *(*fn)(void *), const char *name, int peer, int term)
{
	struct send_job *job = send_job_new(cm, peer, term);

	if (job && server_go(cm->server, fn, job, "%s>%d", name, peer) < 0)
		free(job);
}

static void *send_request_vote(void *arg)
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
	return NULL;
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
	 * with the term saved before the call: a reply can never lower it.
	 */
	if (reply->term > cm->current_term) {
		dlog(cm, "term out of date in RequestVoteReply");
		become_follower(cm, reply->term);
		goto out_unlock;
	}

	/*
	 * SAFETY: count a vote only while still a candidate in the term the
	 * request was sent for; a vote from an earlier election of ours is stale.
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
	cm->state = CM_CANDIDATE;
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
	cm->state = CM_FOLLOWER;
	/*
	 * SAFETY: forget our vote only when the term increases. A candidate or
	 * leader that steps down in the same term has voted in it already (for
	 * itself, or for whoever it follows) and must not vote again.
	 */
	if (term > cm->current_term) {
		set_term(cm, term);
		cm->voted_for = -1;
	}
	cm->election_reset_event = mono_now();

	go_election_timer(cm);
}

static void *heartbeat_loop(void *arg)
{
	struct cm *cm = arg;

	/* Send periodic heartbeats, as long as still leader. */
	for (;;) {
		struct timespec next = timespec_add_ms(mono_now(), HEARTBEAT_MS);

		leader_send_heartbeats(cm);

		pthread_mutex_lock(&cm->mu);
		cm_wait_until(cm, next);
		if (cm->state != CM_LEADER) {
			pthread_mutex_unlock(&cm->mu);
			return NULL;
		}
		pthread_mutex_unlock(&cm->mu);
	}
}

/* Go: startLeader. Switches cm into the leader state and starts heartbeats. */
void start_leader(struct cm *cm)
{
	cm->state = CM_LEADER;
	if (cm->observer.became_leader)
		cm->observer.became_leader(cm->observer.ctx, cm->id, cm->current_term);
	dlog(cm, "becomes Leader; term=%d, log=[]", cm->current_term);

	if (server_go(cm->server, heartbeat_loop, cm, "hb") < 0)
		dlog(cm, "could not start heartbeats; followers will elect another leader");
}

static void *send_append_entries(void *arg)
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
	free(job);
	return NULL;
}

/* The reply half of leaderSendHeartbeats's goroutine. */
void handle_append_entries_reply(struct cm *cm, const struct append_entries_reply *reply)
{
	pthread_mutex_lock(&cm->mu);
	/*
	 * SAFETY: compare with the CM's current term, read under the lock: a
	 * reply to an old heartbeat can never lower current_term.
	 */
	if (cm->state != CM_DEAD && reply->term > cm->current_term) {
		dlog(cm, "term out of date in heartbeat reply");
		become_follower(cm, reply->term);
	}
	pthread_mutex_unlock(&cm->mu);
}

/*
 * Go: leaderSendHeartbeats. Sends a round of heartbeats to all peers; each
 * reply is handled on its sender's thread.
 */
void leader_send_heartbeats(struct cm *cm)
{
	int saved_term;
	bool is_leader;

	pthread_mutex_lock(&cm->mu);
	/*
	 * SAFETY: only a leader sends heartbeats. Without this check a leader
	 * that stepped down to a higher term before this round would send
	 * AppendEntries as leader of a term it never won.
	 */
	is_leader = cm->state == CM_LEADER;
	saved_term = cm->current_term;
	pthread_mutex_unlock(&cm->mu);

	/* Unlocked, as in Go: starting a thread can wait for the scheduler. */
	for (int i = 0; is_leader && i < cm->npeers; i++)
		go_send(cm, send_append_entries, "ae", cm->peer_ids[i], saved_term);
}
