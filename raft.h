/*
 * Consensus module (CM): one node of Raft leader election.
 * C twin of part1/raft.go in eliben/raft; see raft.c for the design notes.
 */
#ifndef RAFT_H
#define RAFT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct chan;
struct server;

/*
 * The largest term this CM takes from a peer or reaches itself. The RPC
 * decoder refuses larger ones, and start_election stops short of it, so
 * that no term arithmetic can overflow: a hostile term of 2^31-1 is
 * refused, one of 2^30 leaves a billion elections of room.
 */
#define CM_MAX_TERM (INT32_MAX / 4 * 3)

/*
 * AppendEntries a leader keeps in flight to one peer at most: a peer that
 * does not answer holds this many senders, not one more per heartbeat.
 */
#define AE_MAX_IN_FLIGHT 4

enum cm_state { CM_FOLLOWER, CM_CANDIDATE, CM_LEADER, CM_DEAD };

/* Figure 2 of the Raft paper. Part 1 has no log, so the log fields are 0. */
struct request_vote_args {
	int term;
	int candidate_id;
	int last_log_index;
	int last_log_term;
};

struct request_vote_reply {
	int term;
	bool vote_granted;
};

/* Entries is always empty in part 1; the log line still prints "Entries:[]". */
struct append_entries_args {
	int term;
	int leader_id;
	int prev_log_index;
	int prev_log_term;
	int leader_commit;
};

struct append_entries_reply {
	int term;
	bool success;
};

/*
 * The harness watches every CM for election safety. Both callbacks run with
 * the CM's mutex held, at the moment the change happens, so the observer
 * sees the changes of one CM in order.
 */
struct cm_observer {
	void (*term_changed)(void *ctx, int id, int old_term, int new_term);
	void (*became_leader)(void *ctx, int id, int term);
	void *ctx;
};

/*
 * The CM's fields are public so that tests can inspect them under cm->mu,
 * as the Go tests do with cm.mu; everything else goes through functions.
 */
struct cm {
	/* mu guards every field below that is not marked immutable. */
	pthread_mutex_t mu;
	/*
	 * wake is broadcast by cm_stop and on every change of term or state,
	 * so that a timer that has become obsolete notices at its next tick.
	 */
	pthread_cond_t wake;

	int id;			     /* immutable */
	int *peer_ids;		     /* immutable */
	int npeers;		     /* immutable */
	struct server *server;	     /* immutable; used to issue RPCs to peers */
	struct chan *ready;	     /* immutable; closed by the harness */
	struct cm_observer observer; /* immutable */

	/* Persistent Raft state on all servers (part 1: in memory only). */
	int current_term;
	int voted_for;

	/* Volatile Raft state on all servers. */
	enum cm_state state;
	struct timespec election_reset_event; /* CLOCK_MONOTONIC */

	/* Votes granted to us in current_term's election, our own included. */
	int votes_received;

	/* Per peer (as peer_ids): AppendEntries to it still in flight. */
	int *ae_in_flight;

	/* Set by cm_stop; read without mu by the wait for "ready". */
	atomic_bool stopping;
};

/* Go: NewConsensusModule. Returns NULL (after logging why) on failure. */
struct cm *cm_new(int id, const int *peer_ids, int npeers, struct server *server,
		  struct chan *ready, const struct cm_observer *observer);
/* Frees a CM whose threads have all been joined (server_shutdown does). */
void cm_free(struct cm *cm);

void cm_report(struct cm *cm, int *id, int *term, bool *is_leader);
void cm_stop(struct cm *cm);

/* The RPC handlers. Both return 0; a Dead CM leaves the reply zeroed. */
int cm_request_vote(struct cm *cm, const struct request_vote_args *args,
		    struct request_vote_reply *reply);
int cm_append_entries(struct cm *cm, const struct append_entries_args *args,
		      struct append_entries_reply *reply);

/*
 * What a sender thread does with a reply (to a RequestVote sent for
 * sent_term). In Go these are the bodies of the goroutines in startElection
 * and leaderSendHeartbeats; they are functions here so that tests can feed
 * them hand-built replies. Both take cm->mu themselves.
 */
void handle_request_vote_reply(struct cm *cm, int sent_term,
			       const struct request_vote_reply *reply);
void handle_append_entries_reply(struct cm *cm, const struct append_entries_reply *reply);

/* Internal steps of the state machine, visible for tests. */
int election_timeout(struct cm *cm); /* milliseconds */
void run_election_timer(struct cm *cm);
void start_election(struct cm *cm);	       /* expects cm->mu held */
void become_follower(struct cm *cm, int term); /* expects cm->mu held */
void start_leader(struct cm *cm);	       /* expects cm->mu held */
void leader_send_heartbeats(struct cm *cm);

const char *cm_state_string(enum cm_state s);

/* Go's cm.dlog: "[id] msg", unless RAFT_DEBUG=0. */
void dlog(struct cm *cm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
