/*
 * Consensus module (CM): one node of Raft, with commands, log replication and
 * persistence. C twin of part3/raft/raft.go in eliben/raft; see raft.c for
 * the design notes.
 */
#ifndef RAFT_H
#define RAFT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct chan;
struct server;
struct storage;

/*
 * The largest term this CM takes from a peer or reaches itself. The RPC
 * decoder refuses larger ones, and start_election stops short of it, so
 * that no term arithmetic can overflow: a hostile term of 2^31-1 is
 * refused, one of 2^30 leaves a billion elections of room.
 */
#define CM_MAX_TERM (INT32_MAX / 4 * 3)

/*
 * AppendEntries a leader keeps in flight to one peer at most: a peer that
 * does not answer holds this many senders, not one more per round.
 */
#define AE_MAX_IN_FLIGHT 4

/*
 * A client command: opaque bytes, at most CM_COMMAND_MAX of them (Go's
 * Command any). The tests submit ints as their decimal digits, so that the
 * log shows them as Go shows ints; see format_command.
 */
#define CM_COMMAND_MAX 64

struct cm_command {
	uint16_t len;
	uint8_t bytes[CM_COMMAND_MAX];
};

/*
 * Go: CommitEntry, the data reported by Raft to the commit channel: consensus
 * was reached on command, and it can be applied to the client's state machine.
 */
struct commit_entry {
	struct cm_command command;
	int index; /* the log index at which the command is committed */
	int term;  /* the term of the log entry (Go: the sender's current term) */
};

enum cm_state { CM_FOLLOWER, CM_CANDIDATE, CM_LEADER, CM_DEAD };

struct log_entry {
	struct cm_command command;
	int term;
};

/*
 * The most entries one AppendEntries carries. Go sends log[ni:] whatever its
 * length; a bounded frame needs a bound, and the next heartbeat carries the
 * rest (nextIndex advances by what was sent).
 */
#define AE_MAX_ENTRIES 1024

/* Figure 2 of the Raft paper. */
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

struct append_entries_args {
	int term;
	int leader_id;
	int prev_log_index;
	int prev_log_term;
	struct log_entry *entries; /* nentries of them; owned by whoever built the args */
	int nentries;
	int leader_commit;
};

struct append_entries_reply {
	int term;
	bool success;

	/*
	 * Faster conflict resolution optimization (described near the end of
	 * section 5.3 in the paper).
	 */
	int conflict_index;
	int conflict_term;
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
	struct storage *storage;     /* immutable; used to persist state */
	struct chan *ready;	     /* immutable; closed by the harness */
	struct cm_observer observer; /* immutable */
	/*
	 * immutable: where this CM reports committed entries (struct
	 * commit_entry); the client's, unbuffered in the harness.
	 */
	struct chan *commit_chan;
	/*
	 * immutable: notifications (one byte each, buffered 16) that entries may
	 * be ready to go on commit_chan; closed by cm_stop.
	 */
	struct chan *new_commit_ready_chan;
	/*
	 * immutable: closed by the commit sender when it returns; cm_stop waits
	 * for it (Go's newCommitReadyChanWg).
	 */
	struct chan *commit_sender_done;
	/*
	 * immutable: Go's triggerAEChan, buffer 1: a token asks the leader loop
	 * to send AppendEntries at once. Only ever sent to without blocking: a
	 * full buffer already holds a request that no one has taken.
	 */
	struct chan *trigger_ae_chan;

	/* Persistent Raft state on all servers. */
	int current_term;
	int voted_for;
	struct log_entry *log; /* log_len entries, room for log_cap */
	int log_len;
	int log_cap;
	/*
	 * The first log_synced entries of log are in storage as they are here:
	 * persist_to_storage writes the log from there on (an append, or a
	 * truncation and an append), never the whole log again.
	 */
	int log_synced;

	/* Volatile Raft state on all servers. */
	int commit_index; /* -1: nothing committed */
	int last_applied; /* -1: nothing sent on commit_chan */
	enum cm_state state;
	struct timespec election_reset_event; /* CLOCK_MONOTONIC */

	/* Volatile Raft state on leaders, per peer (as peer_ids): Go's maps. */
	int *next_index;
	int *match_index;

	/* Votes granted to us in current_term's election, our own included. */
	int votes_received;

	/* Per peer (as peer_ids): AppendEntries to it still in flight. */
	int *ae_in_flight;

	/* Set by cm_stop; read without mu by the wait for "ready". */
	atomic_bool stopping;
};

/* Go: NewConsensusModule. Returns NULL (after logging why) on failure. */
/*
 * storage is the server's (immutable, not owned); if it has data, the CM
 * starts from it (restore_from_storage).
 */
struct cm *cm_new(int id, const int *peer_ids, int npeers, struct server *server,
		  struct storage *storage, struct chan *ready, struct chan *commit_chan,
		  const struct cm_observer *observer);
/* Frees a CM whose threads have all been joined (server_shutdown does). */
void cm_free(struct cm *cm);

void cm_report(struct cm *cm, int *id, int *term, bool *is_leader);
/*
 * Go: Submit. Appends command to the leader's log (persisted before it is
 * first sent: see cm_submit), asks the leader loop to send it at once, and
 * returns its log index; -1 if this CM is not the leader.
 */
int cm_submit(struct cm *cm, const struct cm_command *command);
/* Go: Stop. Returns once the commit sender has returned. */
void cm_stop(struct cm *cm);

/*
 * The RPC handlers. Both return 0; a Dead CM leaves the reply zeroed. If
 * the state cannot be persisted, the CM becomes Dead and -EIO is returned:
 * the caller answers "RPC failed", nothing is acknowledged.
 */
int cm_request_vote(struct cm *cm, const struct request_vote_args *args,
		    struct request_vote_reply *reply);
int cm_append_entries(struct cm *cm, const struct append_entries_args *args,
		      struct append_entries_reply *reply);

/*
 * What a sender thread does with a reply (to a request sent for sent_term;
 * an AppendEntries to peer with ni = nextIndex[peer] and nentries entries).
 * In Go these are the bodies of the goroutines in startElection and
 * leaderSendHeartbeats; they are functions here so that tests can feed them
 * hand-built replies. Both take cm->mu themselves.
 */
void handle_request_vote_reply(struct cm *cm, int sent_term,
			       const struct request_vote_reply *reply);
void handle_append_entries_reply(struct cm *cm, int peer, int sent_term, int ni, int nentries,
				 const struct append_entries_reply *reply);

/*
 * Go: persistToStorage: currentTerm, votedFor and the log (from log_synced
 * on), then a storage sync. 0, or a negative code: the storage failed (it
 * has logged why), and the CM has become Dead. Expects cm->mu held.
 */
int persist_to_storage(struct cm *cm);
/*
 * Go: restoreFromStorage. Reads currentTerm, votedFor and the log. 0, or
 * -EBADMSG after logging which key is missing or malformed. Called by
 * cm_new before any task starts.
 */
int restore_from_storage(struct cm *cm);

/* Internal steps of the state machine, visible for tests. */
int election_timeout(struct cm *cm); /* milliseconds */
void run_election_timer(struct cm *cm);
void start_election(struct cm *cm);	       /* expects cm->mu held */
void become_follower(struct cm *cm, int term); /* expects cm->mu held */
void start_leader(struct cm *cm);	       /* expects cm->mu held */
/* Go: leaderSendAEs (part 2: leaderSendHeartbeats). */
void leader_send_aes(struct cm *cm);
/* Expects cm->mu held. (-1, -1) for an empty log. */
void last_log_index_and_term(struct cm *cm, int *index, int *term);

const char *cm_state_string(enum cm_state s);

/*
 * A command as Go's %v shows it: its bytes as text if they are all printable
 * (so the tests' ints show as ints), else as Go shows a []byte: [52 50].
 * Returns buf.
 */
char *format_command(const struct cm_command *c, char *buf, size_t size);
/*
 * Go's %v of AppendEntriesArgs, "{1 0 -1 -1 [{5 1}] -1}", or with plus its
 * %+v, "{Term:1 LeaderId:0 ...}". Returns buf, or "" when the log is off
 * (nothing is written then).
 */
const char *format_ae_args(const struct append_entries_args *a, bool plus, char *buf, size_t size);

/* Go's cm.dlog: "[id] msg", unless RAFT_DEBUG=0. */
void dlog(struct cm *cm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
