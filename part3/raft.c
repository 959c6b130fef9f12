/*
 * Core Raft implementation - Consensus Module (part 3: persistence and
 * optimizations). C twin of part3/raft/raft.go in eliben/raft; every Go
 * function has a C function of the same name in snake_case.
 *
 * DESIGN
 * Tasks (each one a goroutine in the Go code, started with lib/go.h's go()
 * in the server's group, so the server names them and waits for them):
 *   "s<id>-start"  waits for "ready", then runs the first election timer.
 *   "s<id>-elect"  run_election_timer: one-shot, until it starts an election
 *                  or finds itself obsolete. It sleeps until a decision is
 *                  due (see wait_for_decision), not on every 10 ms tick.
 *   "s<id>-hb"     the leader's loop: leader_send_aes at once, then on every
 *                  token of trigger_ae_chan, or 50 ms after the last send.
 *   "s<id>-rv>P"   one per RequestVote sent to peer P; handles the reply.
 *   "s<id>-ae>P"   one per AppendEntries sent to peer P; handles the reply.
 *   "s<id>-commit" commit_chan_sender: waits on new_commit_ready_chan, then
 *                  sends the newly committed entries on commit_chan; closes
 *                  commit_sender_done when it returns (cm_stop waits).
 * Persistence: persist_to_storage runs where Go's persistToStorage does
 * (every RequestVote and AppendEntries of a live CM, start_election after
 * the self-vote, become_follower when the term rises), under cm->mu, before
 * the reply or the next RPC goes out; but Submit's entries are persisted
 * when they first leave, before the AppendEntries that carries them (see
 * cm_submit): nothing is sent or counted that is not on disk. The log is
 * written from log_synced on, not whole (see struct cm). If the storage
 * fails, the CM becomes Dead (Go: log.Fatal) and acknowledges nothing.
 * Locking: cm->mu guards all CM state. Every wait is a timed wait on cm->wake
 * (CLOCK_MONOTONIC), broadcast by cm_stop and by every change of term or
 * state, so a stopped CM's tasks end within milliseconds. No lock is held
 * across an RPC (server_call) or a send on commit_chan. Under cm->mu only
 * non-blocking channel operations happen (chan_try_send, chan_close), so
 * the order is cm->mu, then a channel's own lock.
 *
 * Election safety fixes over part1 of the Go original (upstream fixed these
 * in part2/part3, eliben/raft issues #14 and #25, PR #27) and the fixes over
 * part2's Go code (a send that can block forever, a commit index from
 * entries the leader did not send, a Dead CM brought back) are marked
 * "SAFETY:" below; "FIX:" marks a wrong value Go reports.
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
#include "storage.h"

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

/* ---- Go's %v, for the log lines -------------------------------------------- */

/*
 * What a formatter returns when the log is off, without a byte written: the
 * formatting would be work for nobody, and a LOG_BUF_SIZE buffer (lib/log.h)
 * has 1 byte then.
 */
#define LOG_OFF ""

/* Appends to a fixed buffer; once it is full, what follows is dropped. */
struct strbuf {
	char *buf;
	size_t size;
	size_t len;
};

static void sb_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->len + 1 >= sb->size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->size - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb->len += (size_t)n;
	if (sb->len >= sb->size)
		sb->len = sb->size - 1;
}

static bool sb_full(const struct strbuf *sb)
{
	return sb->len + 1 >= sb->size;
}

char *format_command(const struct cm_command *c, char *buf, size_t size)
{
	struct strbuf sb = { buf, size, 0 };
	size_t len = c->len <= CM_COMMAND_MAX ? c->len : CM_COMMAND_MAX;
	bool text = len > 0;

	buf[0] = '\0';
	for (size_t i = 0; i < len; i++)
		if (c->bytes[i] <= ' ' || c->bytes[i] > '~')
			text = false;
	if (text) {
		sb_printf(&sb, "%.*s", (int)len, (const char *)c->bytes);
		return buf;
	}
	sb_printf(&sb, "[");
	for (size_t i = 0; i < len; i++)
		sb_printf(&sb, "%s%u", i ? " " : "", c->bytes[i]);
	sb_printf(&sb, "]");
	return buf;
}

/*
 * Go's %v of a []LogEntry, "[{42 1} {55 1}]", or with plus its %+v,
 * "[{Command:42 Term:1}]". Returns buf (LOG_OFF when the log is off).
 */
static const char *format_entries(const struct log_entry *e, int n, bool plus, char *buf,
				  size_t size)
{
	struct strbuf sb = { buf, size, 0 };
	char cmd[4 * CM_COMMAND_MAX + 8];

	if (!raft_debug_enabled())
		return LOG_OFF;
	buf[0] = '\0';
	sb_printf(&sb, "[");
	for (int i = 0; i < n && !sb_full(&sb); i++)
		sb_printf(&sb, plus ? "%s{Command:%s Term:%d}" : "%s{%s %d}", i ? " " : "",
			  format_command(&e[i].command, cmd, sizeof(cmd)), e[i].term);
	sb_printf(&sb, "]");
	return buf;
}

/* Go's %v of cm.log. Expects cm->mu held. */
static const char *format_log(struct cm *cm, char *buf, size_t size)
{
	return format_entries(cm->log, cm->log_len, false, buf, size);
}

/*
 * Go's %v of a map[int]int from peer id to v[i] (as peer_ids), keys sorted:
 * "map[1:0 2:0]". Expects cm->mu held.
 */
static const char *format_peer_map(struct cm *cm, const int *v, char *buf, size_t size)
{
	struct strbuf sb = { buf, size, 0 };
	int last = -1;

	if (!raft_debug_enabled())
		return LOG_OFF;
	sb_printf(&sb, "map[");
	for (int k = 0; k < cm->npeers; k++) {
		int next = -1;

		for (int i = 0; i < cm->npeers; i++)
			if (cm->peer_ids[i] > last &&
			    (next < 0 || cm->peer_ids[i] < cm->peer_ids[next]))
				next = i;
		sb_printf(&sb, "%s%d:%d", k ? " " : "", cm->peer_ids[next], v[next]);
		last = cm->peer_ids[next];
	}
	sb_printf(&sb, "]");
	return buf;
}

/* Go's %+v (plus) or %v of AppendEntriesArgs. */
const char *format_ae_args(const struct append_entries_args *a, bool plus, char *buf, size_t size)
{
	char entries[LOG_BUF_SIZE];
	const char *e;

	if (!raft_debug_enabled())
		return LOG_OFF;
	e = format_entries(a->entries, a->nentries, plus, entries, sizeof(entries));
	if (plus)
		snprintf(buf, size,
			 "{Term:%d LeaderId:%d PrevLogIndex:%d PrevLogTerm:%d Entries:%s "
			 "LeaderCommit:%d}",
			 a->term, a->leader_id, a->prev_log_index, a->prev_log_term, e,
			 a->leader_commit);
	else
		snprintf(buf, size, "{%d %d %d %d %s %d}", a->term, a->leader_id, a->prev_log_index,
			 a->prev_log_term, e, a->leader_commit);
	return buf;
}

/* ---- the log ------------------------------------------------------------------ */

/* Makes room for n entries in cm->log. Expects cm->mu held. */
static void log_reserve(struct cm *cm, int n)
{
	struct log_entry *log;
	int cap;

	if (n <= cm->log_cap)
		return;
	cap = cm->log_cap ? cm->log_cap : 16;
	while (cap < n)
		cap = cap <= INT32_MAX / 2 ? cap * 2 : n;
	log = reallocarray(cm->log, (size_t)cap, sizeof(*log));
	if (!log) {
		fprintf(stderr, "raft: out of memory for a log of %d entries\n", n);
		abort(); /* as Go's append does */
	}
	cm->log = log;
	cm->log_cap = cap;
}

/* A copy of the n entries from log[from], or NULL if n is 0. Expects cm->mu held. */
static struct log_entry *copy_entries(struct cm *cm, int from, int n)
{
	struct log_entry *e;

	if (n <= 0)
		return NULL;
	e = malloc((size_t)n * sizeof(*e));
	if (!e) {
		fprintf(stderr, "raft: out of memory for %d entries\n", n);
		abort();
	}
	memcpy(e, &cm->log[from], (size_t)n * sizeof(*e));
	return e;
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

/*
 * Go: cm.newCommitReadyChan <- struct{}{}, which Go sends holding cm.mu.
 * SAFETY: it never blocks. Go's send blocks once the buffer of 16 is full,
 * and commitChanSender needs cm.mu to take anything out of it. A full buffer
 * holds notifications commit_chan_sender has not yet taken, and it reads
 * commit_index only after taking one, so this one can go: nothing is lost.
 * Expects cm->mu held.
 */
static void notify_commit_ready(struct cm *cm)
{
	char token = 0;

	(void)chan_try_send(cm->new_commit_ready_chan, &token);
}

/*
 * Go: cm.triggerAEChan <- struct{}{}, sent after unlocking. SAFETY: it never
 * blocks. Go's send blocks forever once the buffer of 1 is full and the
 * leader loop is gone (a leader that stepped down, then a Submit or a late
 * reply). A full buffer holds a request the loop has not yet taken, and one
 * request sends everything there is, so this one can go. With or without
 * cm->mu held.
 */
static void trigger_ae(struct cm *cm)
{
	char token = 0;

	(void)chan_try_send(cm->trigger_ae_chan, &token);
}

/*
 * The storage failed: the CM stops, as Go's log.Fatal stops the process (but
 * only this CM, and its server answers "RPC failed" from now on), so that
 * nothing not on disk is ever acknowledged. Expects cm->mu held.
 */
static void die_storage_failed(struct cm *cm, int rc)
{
	if (cm->state == CM_DEAD)
		return;
	log_printf("[%d] persistToStorage: %s; the CM stops", cm->id, strerror(-rc));
	set_state(cm, CM_DEAD);
	dlog(cm, "becomes Dead");
	atomic_store(&cm->stopping, true);
	chan_close(cm->new_commit_ready_chan);
	chan_interrupt(cm->ready);
	chan_interrupt(cm->trigger_ae_chan);
	if (cm->commit_chan)
		chan_interrupt(cm->commit_chan);
}

/* ---- persistence ------------------------------------------------------------ */

/* Go: persistToStorage. */
int persist_to_storage(struct cm *cm)
{
	uint8_t term_data[STORAGE_INT_SIZE], voted_data[STORAGE_INT_SIZE];
	int n = cm->log_len - cm->log_synced;
	int rc;

	if (!cm->storage)
		return 0;
	storage_encode_int(cm->current_term, term_data);
	rc = storage_set(cm->storage, "currentTerm", term_data, sizeof(term_data));
	if (!rc) {
		storage_encode_int(cm->voted_for, voted_data);
		rc = storage_set(cm->storage, "votedFor", voted_data, sizeof(voted_data));
	}
	/* The log: only what changed since the last persist (Go: all of it). */
	if (!rc)
		rc = storage_log_write(cm->storage, cm->log_synced,
				       n > 0 ? &cm->log[cm->log_synced] : NULL, n);
	if (!rc)
		rc = storage_sync(cm->storage);
	if (rc) {
		die_storage_failed(cm, rc);
		return rc;
	}
	cm->log_synced = cm->log_len;
	return 0;
}

/* One int of restoreFromStorage: Go's Get, then gob's Decode. */
static int restore_int(struct cm *cm, const char *key, int min, int max, int *v)
{
	uint8_t *data;
	size_t len;
	bool ok;

	if (!storage_get(cm->storage, key, &data, &len)) {
		log_printf("[%d] %s not found in storage", cm->id, key);
		return -EBADMSG;
	}
	ok = storage_decode_int(data, len, v) && *v >= min && *v <= max;
	free(data);
	if (!ok) {
		log_printf("[%d] %s in storage: not an int in [%d, %d]", cm->id, key, min, max);
		return -EBADMSG;
	}
	return 0;
}

/* Go: restoreFromStorage. Go's log.Fatal is a message and an error here. */
int restore_from_storage(struct cm *cm)
{
	struct log_entry *log;
	int n, rc, term, voted_for;

	rc = restore_int(cm, "currentTerm", 0, CM_MAX_TERM, &term);
	if (!rc)
		rc = restore_int(cm, "votedFor", -1, INT32_MAX, &voted_for);
	if (rc)
		return rc;
	if (storage_log_read(cm->storage, &log, &n) < 0) {
		log_printf("[%d] log not found in storage", cm->id);
		return -EBADMSG;
	}
	/* No entry of a term this CM has not reached: the state does not hang together. */
	for (int i = 0; i < n; i++) {
		if (log[i].term < 0 || log[i].term > term ||
		    (i > 0 && log[i].term < log[i - 1].term)) {
			log_printf("[%d] log in storage: entry %d has term %d (currentTerm=%d)",
				   cm->id, i, log[i].term, term);
			free(log);
			return -EBADMSG;
		}
	}
	pthread_mutex_lock(&cm->mu);
	free(cm->log);
	cm->log = log;
	cm->log_len = cm->log_cap = cm->log_synced = n;
	cm->voted_for = voted_for;
	/* The monitor learns the restored term: one lower than before the crash is a violation. */
	set_term(cm, term);
	pthread_mutex_unlock(&cm->mu);
	return 0;
}

/* ---- the consensus module ------------------------------------------------ */

static void cm_start(void *arg);
static void commit_chan_sender(void *arg);

/* Go: NewConsensusModule. */
/* Frees what cm_new allocated, for its failure paths. */
static void cm_free_parts(struct cm *cm)
{
	free(cm->log);
	free(cm->peer_ids);
	free(cm->ae_in_flight);
	free(cm->next_index);
	free(cm->match_index);
	chan_free(cm->new_commit_ready_chan);
	chan_free(cm->trigger_ae_chan);
	chan_free(cm->commit_sender_done);
	free(cm);
}

struct cm *cm_new(int id, const int *peer_ids, int npeers, struct server *server,
		  struct storage *storage, struct chan *ready, struct chan *commit_chan,
		  const struct cm_observer *observer)
{
	struct cm *cm = calloc(1, sizeof(*cm));
	size_t n = npeers > 0 ? (size_t)npeers : 1;

	if (!cm || !(cm->peer_ids = calloc(n, sizeof(int))) ||
	    !(cm->ae_in_flight = calloc(n, sizeof(int))) ||
	    !(cm->next_index = calloc(n, sizeof(int))) ||
	    !(cm->match_index = calloc(n, sizeof(int))) ||
	    !(cm->new_commit_ready_chan = chan_new(1, 16)) ||
	    !(cm->trigger_ae_chan = chan_new(1, 1)) || !(cm->commit_sender_done = chan_new(1, 0)) ||
	    cond_init_monotonic(&cm->wake)) {
		log_printf("[%d] cm_new: %s", id, strerror(ENOMEM));
		if (cm)
			cm_free_parts(cm);
		return NULL;
	}
	if (npeers > 0) /* memcpy's pointers must not be NULL, even for 0 bytes */
		memcpy(cm->peer_ids, peer_ids, (size_t)npeers * sizeof(int));
	cm->id = id;
	cm->npeers = npeers;
	cm->server = server;
	cm->storage = storage;
	cm->ready = ready;
	cm->commit_chan = commit_chan;
	if (observer)
		cm->observer = *observer;
	cm->state = CM_FOLLOWER;
	cm->voted_for = -1;
	cm->commit_index = -1;
	cm->last_applied = -1;
	atomic_init(&cm->stopping, false);
	pthread_mutex_init(&cm->mu, NULL);

	if (storage && storage_has_data(storage) && restore_from_storage(cm) < 0) {
		pthread_cond_destroy(&cm->wake);
		pthread_mutex_destroy(&cm->mu);
		cm_free_parts(cm);
		return NULL;
	}

	/* The CM is dormant until ready is closed; then its countdown starts. */
	go(server_tasks(server), cm_start, cm, "start");
	/* A CM without a client (commit_chan NULL) has nothing to report. */
	if (commit_chan)
		go(server_tasks(server), commit_chan_sender, cm, "commit");
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
	cm_free_parts(cm);
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
 * Go: Submit. Does not block: the leader loop sends the command to the
 * followers at once (trigger_ae), and the client learns of its commit on
 * commit_chan. A command longer than CM_COMMAND_MAX is refused (-1).
 */
int cm_submit(struct cm *cm, const struct cm_command *command)
{
	char cmd[4 * CM_COMMAND_MAX + 8], log[LOG_BUF_SIZE];
	int submit_index = -1;

	if (command->len > CM_COMMAND_MAX)
		return -1;
	pthread_mutex_lock(&cm->mu);
	dlog(cm, "Submit received by %s: %s", cm_state_string(cm->state),
	     format_command(command, cmd, sizeof(cmd)));
	if (cm->state == CM_LEADER) {
		submit_index = cm->log_len;
		log_reserve(cm, cm->log_len + 1);
		/*
		 * Go persists here. We persist before the entry first leaves
		 * (persist_before_send): a burst of Submits then costs one fsync,
		 * not one each (file storage: 1,857 commits/s with an fsync per
		 * Submit). Nothing anyone is told depends on it before then: a
		 * follower acknowledges an entry only once it has it, from an
		 * AppendEntries sent after the persist, and the leader commits
		 * only on such acknowledgements. An entry lost by a crash before
		 * then was never replicated, as one cut off by a crash in Go's
		 * Submit would be.
		 */
		cm->log[cm->log_len++] =
			(struct log_entry){ .command = *command, .term = cm->current_term };
		dlog(cm, "... log=%s", format_log(cm, log, sizeof(log)));
	}
	pthread_mutex_unlock(&cm->mu);
	if (submit_index >= 0)
		trigger_ae(cm);
	return submit_index;
}

/*
 * Go: Stop. Unlike Go's, the CM's tasks notice at once: they wait on
 * cm->wake, on ready, on trigger_ae_chan, on new_commit_ready_chan or on
 * commit_chan, and all are woken here. As Go's, it returns once the commit
 * sender has (Go's newCommitReadyChanWg.Wait). SAFETY: Stop ends the commit
 * sender even while it waits on a commit_chan nobody reads (Go's would
 * block there, and Stop with it, until the client reads).
 */
void cm_stop(struct cm *cm)
{
	struct timespec deadline = timespec_add_ms(mono_now(), SERVER_SHUTDOWN_TIMEOUT_MS);
	char nothing;

	dlog(cm, "CM.Stop called");
	pthread_mutex_lock(&cm->mu);
	set_state(cm, CM_DEAD);
	atomic_store(&cm->stopping, true);
	pthread_mutex_unlock(&cm->mu);
	dlog(cm, "becomes Dead");

	/* Close the commit notification channel, and wait for its reader to exit. */
	chan_close(cm->new_commit_ready_chan);
	chan_interrupt(cm->ready);
	chan_interrupt(cm->trigger_ae_chan);
	if (cm->commit_chan) {
		chan_interrupt(cm->commit_chan);
		if (chan_recv(cm->commit_sender_done, &nothing, &deadline, NULL) == -ETIMEDOUT)
			log_printf("[%d] CM.Stop: the commit sender has not returned", cm->id);
	}
}

/* ---- RPC handlers --------------------------------------------------------- */

/* Go: RequestVote RPC. */
int cm_request_vote(struct cm *cm, const struct request_vote_args *args,
		    struct request_vote_reply *reply)
{
	int last_log_index, last_log_term, rc = 0;

	pthread_mutex_lock(&cm->mu);
	memset(reply, 0, sizeof(*reply));
	if (cm->state == CM_DEAD)
		goto out_unlock;
	last_log_index_and_term(cm, &last_log_index, &last_log_term);
	dlog(cm,
	     "RequestVote: {Term:%d CandidateId:%d LastLogIndex:%d LastLogTerm:%d} "
	     "[currentTerm=%d, votedFor=%d, log index/term=(%d, %d)]",
	     args->term, args->candidate_id, args->last_log_index, args->last_log_term,
	     cm->current_term, cm->voted_for, last_log_index, last_log_term);

	if (args->term > cm->current_term) {
		dlog(cm, "... term out of date in RequestVote");
		become_follower(cm, args->term);
	}

	/*
	 * At most one vote per term: a candidate asking again gets it again.
	 * And only for a candidate whose log is at least as up to date as ours
	 * (section 5.4.1): a later last term, or the same one and no shorter.
	 */
	if (cm->current_term == args->term &&
	    (cm->voted_for == -1 || cm->voted_for == args->candidate_id) &&
	    (args->last_log_term > last_log_term ||
	     (args->last_log_term == last_log_term && args->last_log_index >= last_log_index))) {
		reply->vote_granted = true;
		cm->voted_for = args->candidate_id;
		cm->election_reset_event = mono_now();
	} else {
		reply->vote_granted = false;
	}
	reply->term = cm->current_term;
	rc = persist_to_storage(cm) < 0 ? -EIO : 0;
	if (rc < 0) {
		memset(reply, 0, sizeof(*reply));
		goto out_unlock; /* not on disk: no reply (the caller's "RPC failed") */
	}
	dlog(cm, "... RequestVote reply: &{Term:%d VoteGranted:%s}", reply->term,
	     reply->vote_granted ? "true" : "false");
out_unlock:
	pthread_mutex_unlock(&cm->mu);
	return rc;
}

/*
 * Does our log hold an entry at prev_log_index whose term is prev_log_term?
 * With prev_log_index -1, vacuously true. Expects cm->mu held.
 */
static bool log_matches(struct cm *cm, int prev_log_index, int prev_log_term)
{
	return prev_log_index == -1 || (prev_log_index >= 0 && prev_log_index < cm->log_len &&
					prev_log_term == cm->log[prev_log_index].term);
}

/*
 * The entries of args from new_entries_index on replace our log from
 * log_insert_index on. Expects cm->mu held.
 */
static void insert_entries(struct cm *cm, const struct append_entries_args *args,
			   int log_insert_index, int new_entries_index)
{
	int n = args->nentries - new_entries_index;
	char entries[LOG_BUF_SIZE], log[LOG_BUF_SIZE];

	dlog(cm, "... inserting entries %s from index %d",
	     format_entries(&args->entries[new_entries_index], n, false, entries, sizeof(entries)),
	     log_insert_index);
	log_reserve(cm, log_insert_index + n);
	memcpy(&cm->log[log_insert_index], &args->entries[new_entries_index],
	       (size_t)n * sizeof(*cm->log));
	cm->log_len = log_insert_index + n;
	/* Storage holds the old entries from here on: persist rewrites them. */
	if (cm->log_synced > log_insert_index)
		cm->log_synced = log_insert_index;
	dlog(cm, "... log is now: %s", format_log(cm, log, sizeof(log)));
}

/* Go: AppendEntries RPC. */
int cm_append_entries(struct cm *cm, const struct append_entries_args *args,
		      struct append_entries_reply *reply)
{
	char buf[LOG_BUF_SIZE];
	int rc = 0;

	pthread_mutex_lock(&cm->mu);
	memset(reply, 0, sizeof(*reply));
	if (cm->state == CM_DEAD)
		goto out_unlock;
	dlog(cm, "AppendEntries: %s", format_ae_args(args, true, buf, sizeof(buf)));

	if (args->term > cm->current_term) {
		dlog(cm, "... term out of date in AppendEntries");
		become_follower(cm, args->term);
		if (cm->state == CM_DEAD) { /* its persist failed */
			rc = -EIO;
			goto out_unlock;
		}
	}

	reply->success = false;
	if (args->term == cm->current_term) {
		/* A candidate that hears from this term's leader steps down. */
		if (cm->state != CM_FOLLOWER)
			become_follower(cm, args->term);
		cm->election_reset_event = mono_now();

		if (log_matches(cm, args->prev_log_index, args->prev_log_term)) {
			/*
			 * Find an insertion point: where the existing log from
			 * prev_log_index + 1 and the new entries first differ in term.
			 */
			int log_insert_index = args->prev_log_index + 1;
			int new_entries_index = 0;
			int last_new_index = args->prev_log_index + args->nentries;

			while (log_insert_index < cm->log_len &&
			       new_entries_index < args->nentries &&
			       cm->log[log_insert_index].term ==
				       args->entries[new_entries_index].term) {
				log_insert_index++;
				new_entries_index++;
			}
			/*
			 * Now log_insert_index is the end of the log or the first
			 * conflict, new_entries_index the end of the entries or the
			 * first one that conflicts. A stale AppendEntries with fewer
			 * entries that all match truncates nothing.
			 *
			 * SAFETY: never replace a committed entry: only a leader that
			 * breaks Leader Completeness asks it, and the commit sender
			 * has sent it on already. Refused.
			 */
			if (new_entries_index < args->nentries &&
			    log_insert_index <= cm->commit_index) {
				dlog(cm, "... refusing to replace committed index %d",
				     log_insert_index);
				goto out_reply;
			}
			reply->success = true;
			if (new_entries_index < args->nentries)
				insert_entries(cm, args, log_insert_index, new_entries_index);

			/*
			 * Set commit index. SAFETY: min(leaderCommit, index of the last
			 * new entry), as Figure 2 says; Go takes len(log)-1, which
			 * counts entries past what this request matched (a suffix of
			 * an old term it did not carry, since AE_MAX_ENTRIES bounds a
			 * request). It never moves back.
			 */
			if (args->leader_commit > cm->commit_index) {
				int commit_index = args->leader_commit < last_new_index
							   ? args->leader_commit
							   : last_new_index;

				if (commit_index > cm->commit_index) {
					cm->commit_index = commit_index;
					dlog(cm, "... setting commitIndex=%d", cm->commit_index);
					notify_commit_ready(cm);
				}
			}
		} else if (args->prev_log_index >= cm->log_len) {
			/*
			 * No match for PrevLogIndex/PrevLogTerm. Populate
			 * ConflictIndex/ConflictTerm to help the leader bring us up
			 * to date quickly.
			 */
			reply->conflict_index = cm->log_len;
			reply->conflict_term = -1;
		} else {
			/*
			 * PrevLogIndex points within our log, but PrevLogTerm does
			 * not match cm->log[PrevLogIndex]: the first index of our
			 * term there. (prev_log_index >= 0 here: -1 always matches.)
			 */
			int i;

			reply->conflict_term = cm->log[args->prev_log_index].term;
			for (i = args->prev_log_index - 1; i >= 0; i--)
				if (cm->log[i].term != reply->conflict_term)
					break;
			reply->conflict_index = i + 1;
		}
	}
out_reply:
	reply->term = cm->current_term;
	rc = persist_to_storage(cm) < 0 ? -EIO : 0;
	if (rc < 0) {
		memset(reply, 0, sizeof(*reply));
		goto out_unlock; /* not on disk: no reply (the caller's "RPC failed") */
	}
	dlog(cm, "AppendEntries reply: {Term:%d Success:%s ConflictIndex:%d ConflictTerm:%d}",
	     reply->term, reply->success ? "true" : "false", reply->conflict_index,
	     reply->conflict_term);
out_unlock:
	pthread_mutex_unlock(&cm->mu);
	return rc;
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

	pthread_mutex_lock(&cm->mu);
	last_log_index_and_term(cm, &call.args.rv.last_log_index, &call.args.rv.last_log_term);
	pthread_mutex_unlock(&cm->mu);

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
	char log[LOG_BUF_SIZE];
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
	/* The new term and the self-vote are on disk before any RequestVote goes out. */
	if (persist_to_storage(cm) < 0)
		return; /* the CM is Dead */
	dlog(cm, "becomes Candidate (currentTerm=%d); log=%s", saved_term,
	     format_log(cm, log, sizeof(log)));

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
	char log[LOG_BUF_SIZE];

	assert(term >= cm->current_term);
	/* SAFETY: a Dead CM stays dead (a failed persist makes a CM Dead). */
	if (cm->state == CM_DEAD)
		return;
	dlog(cm, "becomes Follower with term=%d; log=%s", term, format_log(cm, log, sizeof(log)));
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
		if (persist_to_storage(cm) < 0)
			return; /* the CM is Dead */
	}
	cm->election_reset_event = mono_now();

	go_election_timer(cm);
}

/* What the leader loop gets: the term of the leadership it serves. */
struct leader_job {
	struct cm *cm;
	int term;
};

/*
 * The goroutine of startLeader: sends AEs to peers at once, then whenever
 * something is sent on trigger_ae_chan, or 50 ms after the last send if
 * nothing is (the timer restarts at every send).
 */
static void leader_loop(void *arg)
{
	struct leader_job *job = arg;
	struct cm *cm = job->cm;

	/* Immediately send AEs to peers. */
	leader_send_aes(cm);
	for (;;) {
		struct timespec deadline = timespec_add_ms(mono_now(), HEARTBEAT_MS);
		bool still_leader;
		char token;
		int rc = chan_recv(cm->trigger_ae_chan, &token, &deadline, &cm->stopping);

		if (rc != 0 && rc != -ETIMEDOUT)
			break; /* stopped */
		/*
		 * If this isn't a leader any more, stop the loop. SAFETY: nor the
		 * leader of the term it was started for: a CM that stepped down and
		 * won again within 50 ms would run two loops (Go's checks the state
		 * only). A trigger it took goes back for the current loop.
		 */
		pthread_mutex_lock(&cm->mu);
		still_leader = cm->state == CM_LEADER && cm->current_term == job->term;
		pthread_mutex_unlock(&cm->mu);
		if (!still_leader) {
			if (rc == 0)
				trigger_ae(cm);
			break;
		}
		leader_send_aes(cm);
	}
	free(job);
}

/* Go: startLeader. Switches cm into the leader state and starts heartbeats. */
void start_leader(struct cm *cm)
{
	char next[LOG_BUF_SIZE], match[LOG_BUF_SIZE], log[LOG_BUF_SIZE];
	struct leader_job *job;

	set_state(cm, CM_LEADER);
	if (cm->observer.became_leader)
		cm->observer.became_leader(cm->observer.ctx, cm->id, cm->current_term);
	for (int i = 0; i < cm->npeers; i++) {
		cm->next_index[i] = cm->log_len;
		cm->match_index[i] = -1;
	}
	dlog(cm, "becomes Leader; term=%d, nextIndex=%s, matchIndex=%s; log=%s", cm->current_term,
	     format_peer_map(cm, cm->next_index, next, sizeof(next)),
	     format_peer_map(cm, cm->match_index, match, sizeof(match)),
	     format_log(cm, log, sizeof(log)));

	job = malloc(sizeof(*job));
	if (!job) {
		fprintf(stderr, "raft: out of memory for the leader loop\n");
		abort(); /* as Go's runtime does */
	}
	job->cm = cm;
	job->term = cm->current_term;
	go(server_tasks(cm->server), leader_loop, job, "hb");
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

/*
 * Fills args for peer i from nextIndex: the entries from ni on (at most
 * AE_MAX_ENTRIES, copied: the log may move once cm->mu is dropped). Returns
 * ni. Expects cm->mu held.
 */
static int build_append_entries(struct cm *cm, int i, int term, struct append_entries_args *args)
{
	int ni = cm->next_index[i];
	int n;

	if (ni < 0 || ni > cm->log_len) /* never, as nextIndex only moves within the log */
		ni = cm->next_index[i] = cm->log_len;
	n = cm->log_len - ni < AE_MAX_ENTRIES ? cm->log_len - ni : AE_MAX_ENTRIES;
	args->term = term;
	args->leader_id = cm->id;
	args->prev_log_index = ni - 1;
	args->prev_log_term = ni > 0 ? cm->log[ni - 1].term : -1;
	args->entries = copy_entries(cm, ni, n);
	args->nentries = n;
	args->leader_commit = cm->commit_index;
	return ni;
}

/*
 * Persists the entries Submit appended since the last persist, before an
 * AppendEntries can carry them (one fsync for all of them). false if the
 * storage failed (the CM is then Dead). Expects cm->mu held.
 */
static bool persist_before_send(struct cm *cm)
{
	return cm->log_synced == cm->log_len || persist_to_storage(cm) == 0;
}

/*
 * Sends one AppendEntries to job->peer and handles its reply; a follow-up
 * (rest) is sent only if the log holds entries past the peer's nextIndex.
 * Returns true when the message carried AE_MAX_ENTRIES and was accepted:
 * the round has more entries to carry.
 */
static bool send_one_append_entries(struct send_job *job, bool rest)
{
	struct cm *cm = job->cm;
	struct rpc_call call = { .method = RPC_APPEND_ENTRIES };
	int i = peer_index(cm, job->peer), ni = 0;
	char buf[LOG_BUF_SIZE];
	bool send, more = false;

	pthread_mutex_lock(&cm->mu);
	/*
	 * SAFETY: a sender started for a term that has ended sends nothing. Go
	 * builds the request anyway, from a nextIndex that may be another
	 * term's by now, and sends it with the old term.
	 */
	send = cm->state == CM_LEADER && cm->current_term == job->term &&
	       (!rest || cm->next_index[i] < cm->log_len) && persist_before_send(cm);
	if (send)
		ni = build_append_entries(cm, i, job->term, &call.args.ae);
	pthread_mutex_unlock(&cm->mu);

	if (send) {
		dlog(cm, "sending AppendEntries to %d: ni=%d, args=%s", job->peer, ni,
		     format_ae_args(&call.args.ae, true, buf, sizeof(buf)));
		if (server_call(cm->server, job->peer, &call) == 0) {
			handle_append_entries_reply(cm, job->peer, job->term, ni,
						    call.args.ae.nentries, &call.reply.ae);
			more = call.reply.ae.success && call.args.ae.nentries == AE_MAX_ENTRIES;
		}
	}
	free(call.args.ae.entries);
	return more;
}

/*
 * One peer's part of a round of AEs. Go's AppendEntries carries every entry
 * from nextIndex on in one message; ours carries at most AE_MAX_ENTRIES, so
 * a round cut short goes on at once with the rest while the peer accepts.
 */
static void send_append_entries(void *arg)
{
	struct send_job *job = arg;
	struct cm *cm = job->cm;
	int i = peer_index(cm, job->peer);

	for (bool rest = false; send_one_append_entries(job, rest);)
		rest = true;
	pthread_mutex_lock(&cm->mu);
	cm->ae_in_flight[i]--;
	pthread_mutex_unlock(&cm->mu);
	free(job);
}

/*
 * The leader's commit rule (Figure 2): the highest N > commitIndex with a
 * majority of matchIndex[i] >= N and log[N].term == currentTerm. An entry of
 * an earlier term is committed only with one of the current term after it
 * (section 5.4.2, Figure 8), never by counting its replicas. Expects cm->mu
 * held.
 */
static void leader_advance_commit_index(struct cm *cm)
{
	for (int i = cm->commit_index + 1; i < cm->log_len; i++) {
		if (cm->log[i].term == cm->current_term) {
			int match_count = 1;

			for (int p = 0; p < cm->npeers; p++)
				if (cm->match_index[p] >= i)
					match_count++;
			if (match_count * 2 > cm->npeers + 1)
				cm->commit_index = i;
		}
	}
}

/*
 * The nextIndex for a peer that refused an AppendEntries sent with nextIndex
 * ni: Go's ConflictIndex/ConflictTerm backup. SAFETY: never outside
 * [0, ni - 1] (0 for ni = 0): an honest peer's answer always is (its
 * conflict lies before ni), a broken peer's would move nextIndex past the
 * log or forward in a loop. Expects cm->mu held.
 */
static int conflict_next_index(struct cm *cm, int ni, const struct append_entries_reply *reply)
{
	int next = reply->conflict_index;

	if (reply->conflict_term >= 0) {
		int last_index_of_term = -1;

		for (int i = cm->log_len - 1; i >= 0; i--) {
			if (cm->log[i].term == reply->conflict_term) {
				last_index_of_term = i;
				break;
			}
		}
		if (last_index_of_term >= 0)
			next = last_index_of_term + 1;
	}
	if (next > ni - 1)
		next = ni - 1;
	return next < 0 ? 0 : next;
}

/* The reply half of leaderSendAEs's goroutine. */
void handle_append_entries_reply(struct cm *cm, int peer, int sent_term, int ni, int nentries,
				 const struct append_entries_reply *reply)
{
	char next[LOG_BUF_SIZE], match[LOG_BUF_SIZE];
	int i = peer_index(cm, peer);
	bool trigger = false;

	pthread_mutex_lock(&cm->mu);
	/*
	 * SAFETY: a Dead CM stays dead. Go makes a stopped CM a follower again
	 * (and starts its election timer) when a heartbeat reply with a higher
	 * term arrives after Stop. The term is compared with the current term
	 * read under the lock, as Go part2 does (part1: savedCurrentTerm).
	 */
	if (cm->state != CM_DEAD && reply->term > cm->current_term) {
		dlog(cm, "term out of date in heartbeat reply");
		become_follower(cm, reply->term);
		goto out_unlock;
	}
	/* A reply counts only while still the leader of the term it was sent in. */
	if (cm->state != CM_LEADER || sent_term != reply->term || sent_term != cm->current_term)
		goto out_unlock;
	if (reply->success) {
		int saved_commit_index = cm->commit_index;

		cm->next_index[i] = ni + nentries;
		cm->match_index[i] = cm->next_index[i] - 1;
		leader_advance_commit_index(cm);
		dlog(cm,
		     "AppendEntries reply from %d success: nextIndex := %s, matchIndex := %s; "
		     "commitIndex := %d",
		     peer, format_peer_map(cm, cm->next_index, next, sizeof(next)),
		     format_peer_map(cm, cm->match_index, match, sizeof(match)), cm->commit_index);
		if (cm->commit_index != saved_commit_index) {
			dlog(cm, "leader sets commitIndex := %d", cm->commit_index);
			/*
			 * Commit index changed: the leader considers new entries to be
			 * committed. Send new entries on the commit channel to this
			 * leader's clients, and notify followers by sending them AEs.
			 */
			notify_commit_ready(cm);
			trigger = true;
		}
	} else {
		cm->next_index[i] = conflict_next_index(cm, ni, reply);
		/* FIX: the new nextIndex; Go prints ni-1, which it no longer is. */
		dlog(cm, "AppendEntries reply from %d !success: nextIndex := %d", peer,
		     cm->next_index[i]);
	}
out_unlock:
	pthread_mutex_unlock(&cm->mu);
	if (trigger)
		trigger_ae(cm);
}

/*
 * Claims the right to send peer i an AppendEntries: false while
 * AE_MAX_IN_FLIGHT are still in flight to it. Go starts a new sender at
 * every round (each heartbeat, Submit, commit-index change) whatever
 * happened to the last; against a stalled peer they pile up without bound
 * (goroutines are cheap; our tasks hold threads). A healthy peer answers
 * within milliseconds, so a round triggered by Submit goes out at once even
 * while the last heartbeat is in flight, as in Go (with one sender per peer
 * it waited for that heartbeat's reply, up to 5 ms, and
 * TestDisconnectAfterSubmit's 1 ms before the disconnect was too short).
 * Expects cm->mu held.
 */
static bool claim_heartbeat(struct cm *cm, int i)
{
	if (cm->ae_in_flight[i] >= AE_MAX_IN_FLIGHT)
		return false;
	cm->ae_in_flight[i]++;
	return true;
}

/*
 * Go: leaderSendAEs (part 2: leaderSendHeartbeats). Sends a round of AEs to
 * all peers; each reply is handled on its sender's task.
 */
void leader_send_aes(struct cm *cm)
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

/* Go: lastLogIndexAndTerm. */
void last_log_index_and_term(struct cm *cm, int *index, int *term)
{
	if (cm->log_len > 0) {
		*index = cm->log_len - 1;
		*term = cm->log[*index].term;
	} else {
		*index = -1;
		*term = -1;
	}
}

/*
 * Go: commitChanSender. Sends committed entries on commit_chan, in order,
 * each once: woken by new_commit_ready_chan, it takes the entries between
 * last_applied and commit_index. commit_chan may be unbuffered and limits
 * how fast the client consumes them. Returns when new_commit_ready_chan is
 * closed, or (stricter than Go) as soon as the CM is stopped, even in the
 * middle of a send that nobody receives.
 */
static void commit_chan_sender(void *arg)
{
	struct cm *cm = arg;
	char token, buf[LOG_BUF_SIZE], cmd[4 * CM_COMMAND_MAX + 8];

	while (chan_recv(cm->new_commit_ready_chan, &token, NULL, &cm->stopping) == 0) {
		struct log_entry *entries = NULL;
		int saved_last_applied, n = 0, rc = 0;

		/* Find which entries we have to apply. */
		pthread_mutex_lock(&cm->mu);
		saved_last_applied = cm->last_applied;
		if (cm->commit_index > cm->last_applied) {
			n = cm->commit_index - cm->last_applied;
			entries = copy_entries(cm, cm->last_applied + 1, n);
			cm->last_applied = cm->commit_index;
		}
		pthread_mutex_unlock(&cm->mu);
		dlog(cm, "commitChanSender entries=%s, savedLastApplied=%d",
		     format_entries(entries, n, false, buf, sizeof(buf)), saved_last_applied);

		for (int i = 0; i < n && rc == 0; i++) {
			dlog(cm, "send on commitchan i=%d, entry={%s %d}", i,
			     format_command(&entries[i].command, cmd, sizeof(cmd)),
			     entries[i].term);
			/* FIX: the entry's own term; Go sends its currentTerm of now. */
			struct commit_entry ce = {
				.command = entries[i].command,
				.index = saved_last_applied + i + 1,
				.term = entries[i].term,
			};

			rc = chan_send(cm->commit_chan, &ce, NULL, &cm->stopping);
		}
		free(entries);
		if (rc < 0) /* stopped, or the client closed commit_chan */
			break;
	}
	dlog(cm, "commitChanSender done");
	chan_close(cm->commit_sender_done);
}
