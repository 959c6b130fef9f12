/*
 * Test harness for Raft: C twin of part2/testharness.go, with the hooks of
 * our stricter checks: every CM feeds an election-safety monitor, every
 * delivery on a commit channel feeds a commit-safety monitor
 * (lib/commit_monitor.h), shutdown waits for every task of every server and
 * of the harness, and each test ends with a thread leak check
 * (lib/testing.h).
 *
 * DESIGN
 * Tasks: one commit collector per server ("h-collect<i>", Go's
 * collectCommits), in the harness's own group, which harness_shutdown waits
 * for after it has closed the commit channels.
 * Locking: h->mu guards commits, ncommits, connected and failure (Go's
 * h.mu guards commits). It is never held across a call into a server or a
 * CM, nor across a channel operation, nor when a check fails the test
 * (cmocka's longjmp would leave it locked).
 */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/chan.h"
#include "lib/commit_monitor.h"
#include "lib/go.h"
#include "lib/log.h"
#include "raft.h"
#include "server.h"

/* Go's CheckSingleLeader: 8 tries, 150 ms apart. */
#define CHECK_TRIES	  8
#define CHECK_INTERVAL_MS 150
#define MAX_SERVERS	  64
/* harness_shutdown waits this long for the commit collectors. */
#define COLLECTOR_TIMEOUT_MS 2000

/* One delivery, as the checks look at it: Go's CommitEntry with Command.(int). */
struct harness_commit {
	int cmd; /* INT_MIN if the command is not an int */
	int index;
	int term;
};

/* What each commit collector gets. */
struct collector {
	harness_t *h;
	int id;
};

struct harness {
	pthread_mutex_t mu;
	/* cluster lists all the servers; connected says which are not cut off. */
	struct server **cluster;
	bool *connected;
	int n;
	struct chan *ready;
	struct safety_monitor *safety;
	struct commit_monitor *commit_safety;
	/* Per server: its commit channel and the commits collected from it. */
	struct chan **commit_chans;
	struct harness_commit **commits;
	int *ncommits;
	int *commits_cap;
	struct collector *collectors;
	struct go_group *tasks;
	bool collecting; /* the collectors were started */
	pthread_t test_thread;
	char failure[512]; /* the first check that failed on another thread */
};

/* Go: tlog. */
void tlog(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_printf("[TEST] %s", msg);
}

/*
 * A failed check: fails the test on the test's thread; on another, records
 * the message for the test thread to report (cmocka cannot fail a test from
 * another thread). Expects h->mu not held.
 */
static void check_failed(harness_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check_failed(harness_t *h, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pthread_equal(pthread_self(), h->test_thread))
		fail_msg("%s", msg);
	pthread_mutex_lock(&h->mu);
	if (!h->failure[0])
		snprintf(h->failure, sizeof(h->failure), "%s", msg);
	pthread_mutex_unlock(&h->mu);
}

static bool on_test_thread(harness_t *h)
{
	return pthread_equal(pthread_self(), h->test_thread);
}

/* A snapshot of connected, for looking at the servers without h->mu. */
static void snapshot_connected(harness_t *h, bool *connected)
{
	pthread_mutex_lock(&h->mu);
	memcpy(connected, h->connected, (size_t)h->n * sizeof(bool));
	pthread_mutex_unlock(&h->mu);
}

static void set_connected(harness_t *h, int id, bool connected)
{
	pthread_mutex_lock(&h->mu);
	h->connected[id] = connected;
	pthread_mutex_unlock(&h->mu);
}

/* ---- commands ------------------------------------------------------------------ */

struct cm_command harness_command(int cmd)
{
	struct cm_command c = { 0 };
	int n = snprintf((char *)c.bytes, sizeof(c.bytes), "%d", cmd);

	c.len = (uint16_t)n;
	return c;
}

/* Go's Command.(int): the int a command holds, or INT_MIN. */
static int command_int(const struct cm_command *c)
{
	char text[CM_COMMAND_MAX + 1];
	char *end;
	long v;

	if (c->len == 0 || c->len > CM_COMMAND_MAX)
		return INT_MIN;
	memcpy(text, c->bytes, c->len);
	text[c->len] = '\0';
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v <= INT_MIN || v > INT_MAX)
		return INT_MIN;
	return (int)v;
}

/* ---- commit collectors --------------------------------------------------------- */

/* Appends e to server id's commits. Expects h->mu held. */
static void append_commit(harness_t *h, int id, const struct commit_entry *e)
{
	if (h->ncommits[id] == h->commits_cap[id]) {
		int cap = h->commits_cap[id] ? h->commits_cap[id] * 2 : 64;
		struct harness_commit *p = reallocarray(h->commits[id], (size_t)cap, sizeof(*p));

		if (!p) {
			fprintf(stderr, "harness: out of memory for commits\n");
			abort();
		}
		h->commits[id] = p;
		h->commits_cap[id] = cap;
	}
	h->commits[id][h->ncommits[id]++] = (struct harness_commit){
		.cmd = command_int(&e->command), .index = e->index, .term = e->term
	};
}

/*
 * Go: collectCommits. Reads server id's commit channel until it is closed
 * (harness_shutdown closes it once the server is down), and records every
 * entry, in the commit-safety monitor too.
 */
static void collect_commits(void *arg)
{
	struct collector *c = arg;
	harness_t *h = c->h;
	struct commit_entry e;
	char cmd[4 * CM_COMMAND_MAX + 8];

	while (chan_recv(h->commit_chans[c->id], &e, NULL, NULL) == 0) {
		pthread_mutex_lock(&h->mu);
		tlog("collectCommits(%d) got {Command:%s Index:%d Term:%d}", c->id,
		     format_command(&e.command, cmd, sizeof(cmd)), e.index, e.term);
		commit_delivered(h->commit_safety, c->id, e.index, e.term, e.command.bytes,
				 e.command.len);
		append_commit(h, c->id, &e);
		pthread_mutex_unlock(&h->mu);
	}
}

/* ---- hooks of the safety monitor --------------------------------------------- */

static void on_term_changed(void *ctx, int id, int old_term, int new_term)
{
	safety_term_changed(ctx, id, old_term, new_term);
}

static void on_became_leader(void *ctx, int id, int term)
{
	safety_became_leader(ctx, id, term);
}

void harness_end_test(harness_t *h, struct task_set *before)
{
	char why[1024];
	bool back;

	harness_shutdown(h); /* fails the test on a safety violation */
	back = task_set_wait_back(before, HARNESS_LEAK_TIMEOUT_MS, why, sizeof(why));
	task_set_free(before);
	if (!back)
		fail_msg("thread leak: %s", why);
}

int harness_run_tests(const char *prog, const struct CMUnitTest *tests, size_t ntests, int argc,
		      char **argv)
{
	return go_test_main(prog, tests, ntests, argc, argv);
}

/* ---- the harness ---------------------------------------------------------- */

static struct server *new_server(harness_t *h, int id)
{
	struct cm_observer observer = {
		.term_changed = on_term_changed,
		.became_leader = on_became_leader,
		.ctx = h->safety,
	};
	int peer_ids[MAX_SERVERS], npeers = 0;
	struct server *s;
	char why[256];

	for (int p = 0; p < h->n; p++)
		if (p != id)
			peer_ids[npeers++] = p;
	s = server_new(id, peer_ids, npeers, h->ready, h->commit_chans[id], &observer);
	if (s && server_serve(s) < 0) {
		if (server_shutdown(s, why, sizeof(why)) == 0)
			server_free(s);
		s = NULL;
	}
	return s;
}

static int connect_pair(harness_t *h, int from, int to)
{
	struct sockaddr_in addr;
	int rc = server_get_listen_addr(h->cluster[to], &addr);

	if (!rc)
		rc = server_connect_to_peer(h->cluster[from], to, &addr);
	if (rc)
		log_printf("[TEST] server %d cannot connect to %d: %s", from, to, strerror(-rc));
	return rc;
}

/* Connects every pair of servers. 0 or the first error. */
static int connect_all(harness_t *h)
{
	for (int i = 0; i < h->n; i++) {
		for (int j = 0; j < h->n; j++)
			if (i != j && connect_pair(h, i, j))
				return -1;
		set_connected(h, i, true);
	}
	return 0;
}

/* Frees what alloc_harness made; chans[i] only if free_chan[i] (NULL: all). */
static void free_parts(harness_t *h, const bool *free_chan)
{
	for (int i = 0; h->commit_chans && i < h->n; i++)
		if (!free_chan || free_chan[i])
			chan_free(h->commit_chans[i]);
	for (int i = 0; h->commits && i < h->n; i++)
		free(h->commits[i]);
	free(h->commit_chans);
	free(h->commits);
	free(h->ncommits);
	free(h->commits_cap);
	free(h->collectors);
	free(h->cluster);
	free(h->connected);
	go_group_free(h->tasks);
	commit_monitor_free(h->commit_safety);
	safety_monitor_free(h->safety);
	chan_free(h->ready);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static harness_t *alloc_harness(int n)
{
	harness_t *h = calloc(1, sizeof(*h));
	bool ok;

	if (!h)
		return NULL;
	pthread_mutex_init(&h->mu, NULL);
	h->n = n;
	h->test_thread = pthread_self();
	h->cluster = calloc((size_t)n, sizeof(struct server *));
	h->connected = calloc((size_t)n, sizeof(*h->connected));
	h->commit_chans = calloc((size_t)n, sizeof(struct chan *));
	h->commits = calloc((size_t)n, sizeof(struct harness_commit *));
	h->ncommits = calloc((size_t)n, sizeof(int));
	h->commits_cap = calloc((size_t)n, sizeof(int));
	h->collectors = calloc((size_t)n, sizeof(struct collector));
	h->safety = safety_monitor_new(n);
	h->commit_safety = commit_monitor_new(n);
	h->tasks = go_group_new("h");
	h->ready = chan_new(1, 0);
	ok = h->cluster && h->connected && h->commit_chans && h->commits && h->ncommits &&
	     h->commits_cap && h->collectors && h->safety && h->commit_safety && h->tasks &&
	     h->ready;
	/* Go: commitChans[i] = make(chan CommitEntry), unbuffered. */
	for (int i = 0; ok && i < n; i++)
		ok = (h->commit_chans[i] = chan_new(sizeof(struct commit_entry), 0)) != NULL;
	if (!ok) {
		free_parts(h, NULL);
		return NULL;
	}
	return h;
}

static void start_collectors(harness_t *h)
{
	for (int i = 0; i < h->n; i++) {
		h->collectors[i] = (struct collector){ .h = h, .id = i };
		go(h->tasks, collect_commits, &h->collectors[i], "collect%d", i);
	}
	h->collecting = true;
}

/*
 * Frees h but what a task still running may use: the server that leaked
 * tasks and its commit channel stay allocated.
 */
static void free_harness(harness_t *h, const bool *leaked)
{
	bool free_chan[MAX_SERVERS];

	for (int i = 0; i < h->n; i++) {
		free_chan[i] = !leaked[i];
		if (!leaked[i])
			server_free(h->cluster[i]);
	}
	free_parts(h, free_chan);
}

/*
 * Disconnects and shuts down every server. A server whose tasks outlive
 * the shutdown's deadline is marked in leaked (it stays allocated, as they
 * still use it) and the first one is described in why.
 */
static void stop_servers(harness_t *h, bool *leaked, char *why, size_t whylen)
{
	for (int i = 0; i < h->n; i++) {
		if (h->cluster[i])
			server_disconnect_all(h->cluster[i]);
		set_connected(h, i, false);
	}
	for (int i = 0; i < h->n; i++) {
		char tasks[256];

		if (!h->cluster[i] || server_shutdown(h->cluster[i], tasks, sizeof(tasks)) == 0)
			continue;
		leaked[i] = true;
		if (!why[0])
			snprintf(why, whylen, "server %d: %s", i, tasks);
	}
}

/* Shuts down and frees a harness that failed to start: no server outlives it. */
static void abandon(harness_t *h)
{
	char why[512] = "";
	bool leaked[MAX_SERVERS] = { false };

	stop_servers(h, leaked, why, sizeof(why));
	if (why[0])
		log_printf("[TEST] %s", why);
	free_harness(h, leaked);
}

harness_t *harness_try_new(int n, char *why, size_t whylen)
{
	harness_t *h;
	int started = 0;

	snprintf(why, whylen, "%s", strerror(ENOMEM));
	if (n <= 0 || n > MAX_SERVERS || !(h = alloc_harness(n)))
		return NULL;
	while (started < n && (h->cluster[started] = new_server(h, started)))
		started++;
	if (started < n || connect_all(h) < 0) {
		if (started < n)
			snprintf(why, whylen, "cannot start server %d", started);
		else
			snprintf(why, whylen, "cannot connect the servers");
		abandon(h);
		return NULL;
	}
	chan_close(h->ready);
	start_collectors(h);
	return h;
}

/* Go: NewHarness. */
harness_t *harness_new(int n)
{
	char why[128];
	harness_t *h = harness_try_new(n, why, sizeof(why));

	if (!h)
		fail_msg("%s", why);
	return h;
}

/*
 * Go: Shutdown. Then, stricter than Go: every task of every server has
 * returned (server_shutdown waits 2 s at most, then names the stragglers;
 * their server is left allocated, as they still use it), and the safety
 * monitor saw nothing wrong. The harness is freed before a failure is
 * reported, as cmocka does not return from one.
 */
void harness_shutdown(harness_t *h)
{
	char safety[512] = "", commits[512] = "", tasks[512] = "", failure[512];
	bool leaked[MAX_SERVERS] = { false };
	bool collectors_leaked = false;

	if (!h)
		return;
	stop_servers(h, leaked, tasks, sizeof(tasks));
	/* Go: close(h.commitChans[i]); each collector returns once it sees it. */
	for (int i = 0; i < h->n; i++)
		chan_close(h->commit_chans[i]);
	if (h->collecting &&
	    go_group_wait(h->tasks, COLLECTOR_TIMEOUT_MS, commits, sizeof(commits)) < 0) {
		collectors_leaked = true;
		if (!tasks[0])
			snprintf(tasks, sizeof(tasks), "commit collectors: %s", commits);
	}
	commits[0] = '\0';
	safety_violation(h->safety, safety, sizeof(safety));
	commit_violation(h->commit_safety, commits, sizeof(commits));
	snprintf(failure, sizeof(failure), "%s", h->failure);
	/* Collectors still running use all of h: it stays allocated. */
	if (!collectors_leaked)
		free_harness(h, leaked);
	if (safety[0])
		fail_msg("election safety: %s", safety);
	if (commits[0])
		fail_msg("commit safety: %s", commits);
	if (failure[0])
		fail_msg("%s", failure);
	if (tasks[0])
		fail_msg("shutdown: %s", tasks);
}

/* Go: DisconnectPeer. */
void harness_disconnect_peer(harness_t *h, int id)
{
	tlog("Disconnect %d", id);
	server_disconnect_all(h->cluster[id]);
	for (int j = 0; j < h->n; j++)
		if (j != id)
			server_disconnect_peer(h->cluster[j], id);
	set_connected(h, id, false);
}

static bool is_connected(harness_t *h, int id)
{
	bool connected;

	pthread_mutex_lock(&h->mu);
	connected = h->connected[id];
	pthread_mutex_unlock(&h->mu);
	return connected;
}

/*
 * Go: ReconnectPeer, but with the servers the harness counts as connected
 * only. Go's connects the server to every other, also to one that a test has
 * cut off and still counts as disconnected: that one can then win a term that
 * CheckSingleLeader does not look at, and keep the servers it does look at
 * from electing a leader in time (TestElectionLeaderAndAnotherDisconnect
 * fails so). Here the network is always what the harness thinks it is: the
 * connected servers all reach each other, and a disconnected one reaches none.
 */
void harness_reconnect_peer(harness_t *h, int id)
{
	tlog("Reconnect %d", id);
	for (int j = 0; j < h->n; j++) {
		if (j == id || !is_connected(h, j))
			continue;
		if (connect_pair(h, id, j) || connect_pair(h, j, id))
			check_failed(h, "cannot reconnect %d and %d", id, j);
	}
	set_connected(h, id, true);
}

void harness_report(harness_t *h, int id, int *term, bool *is_leader)
{
	cm_report(server_cm(h->cluster[id]), NULL, term, is_leader);
}

void harness_check_safety(harness_t *h)
{
	char why[512];

	/* Another thread's check records its failure; the test thread reports. */
	if (!on_test_thread(h))
		return;
	if (safety_violation(h->safety, why, sizeof(why)))
		fail_msg("election safety: %s", why);
	if (commit_violation(h->commit_safety, why, sizeof(why)))
		fail_msg("commit safety: %s", why);
	pthread_mutex_lock(&h->mu);
	snprintf(why, sizeof(why), "%s", h->failure);
	pthread_mutex_unlock(&h->mu);
	if (why[0])
		fail_msg("%s", why);
}

/*
 * One look at the connected servers: the leader's id, -1 if none. Two
 * leaders fail the test, as in Go; their terms tell a stale leader that has
 * not heard of the new term yet (different terms) from a broken election
 * (the same term, which the safety monitor reports too).
 */
static int find_leader(harness_t *h, int *leader_term, bool *two)
{
	bool connected[MAX_SERVERS];
	int leader_id = -1;

	*two = false;
	snapshot_connected(h, connected);
	for (int i = 0; i < h->n; i++) {
		int term;
		bool is_leader;

		if (!connected[i])
			continue;
		harness_report(h, i, &term, &is_leader);
		if (!is_leader)
			continue;
		if (leader_id >= 0) {
			check_failed(h, "both %d (term %d) and %d (term %d) think they're leaders",
				     leader_id, *leader_term, i, term);
			*two = true;
			return -1;
		}
		leader_id = i;
		*leader_term = term;
	}
	return leader_id;
}

/* Go: CheckSingleLeader. */
int harness_check_single_leader(harness_t *h, int *term)
{
	for (int r = 0; r < CHECK_TRIES; r++) {
		int leader_term = -1;
		bool two;
		int leader_id = find_leader(h, &leader_term, &two);

		harness_check_safety(h);
		if (two)
			return -1;
		if (leader_id >= 0) {
			if (term)
				*term = leader_term;
			return leader_id;
		}
		sleep_ms(CHECK_INTERVAL_MS);
	}
	check_failed(h, "leader not found");
	return -1;
}

/* Go: CheckNoLeader. */
void harness_check_no_leader(harness_t *h)
{
	bool connected[MAX_SERVERS];

	harness_check_safety(h);
	snapshot_connected(h, connected);
	for (int i = 0; i < h->n; i++) {
		bool is_leader;

		if (!connected[i])
			continue;
		harness_report(h, i, NULL, &is_leader);
		if (is_leader) {
			check_failed(h, "server %d leader; want none", i);
			return;
		}
	}
}

/* Go's %d of h.commits[i], a []CommitEntry: "[{42 0 1} {55 1 1}]". */
static void format_commits(harness_t *h, int id, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "[");

	for (int c = 0; c < h->ncommits[id] && len < size; c++) {
		const struct harness_commit *e = &h->commits[id][c];

		len += (size_t)snprintf(buf + len, size - len, "%s{%d %d %d}", c ? " " : "", e->cmd,
					e->index, e->term);
	}
	if (len < size)
		snprintf(buf + len, size - len, "]");
}

/*
 * The body of CheckCommitted, under h->mu: the first failure's message goes
 * to why (Go's Fatalf returns at once, its Errorf goes on). Expects h->mu held.
 */
static int check_committed_locked(harness_t *h, int cmd, int *index, char *why, size_t whylen)
{
	int commits_len = -1;
	char slice[256];

	/* Find the length of the commits slice for connected servers. */
	for (int i = 0; i < h->n; i++) {
		if (!h->connected[i])
			continue;
		if (commits_len < 0) {
			commits_len = h->ncommits[i];
		} else if (h->ncommits[i] != commits_len) {
			format_commits(h, i, slice, sizeof(slice));
			snprintf(why, whylen, "commits[%d] = %s, commitsLen = %d", i, slice,
				 commits_len);
			return -1;
		}
	}

	/* Commits must agree from the start up to cmd; returns once cmd is found. */
	for (int c = 0; c < commits_len; c++) {
		int cmd_at_c = -1, nc = 0;

		for (int i = 0; i < h->n; i++) {
			int cmd_of_n;

			if (!h->connected[i])
				continue;
			cmd_of_n = h->commits[i][c].cmd;
			if (cmd_at_c < 0)
				cmd_at_c = cmd_of_n;
			else if (cmd_of_n != cmd_at_c && !why[0])
				snprintf(why, whylen, "got %d, want %d at h.commits[%d][%d]",
					 cmd_of_n, cmd_at_c, i, c);
		}
		if (cmd_at_c != cmd)
			continue;
		/* Check consistency of Index. */
		*index = -1;
		for (int i = 0; i < h->n; i++) {
			if (!h->connected[i])
				continue;
			if (*index >= 0 && h->commits[i][c].index != *index) {
				if (!why[0])
					snprintf(why, whylen,
						 "got Index=%d, want %d at h.commits[%d][%d]",
						 h->commits[i][c].index, *index, i, c);
			} else {
				*index = h->commits[i][c].index;
			}
			nc++;
		}
		return nc;
	}
	if (!why[0])
		snprintf(why, whylen, "cmd=%d not found in commits", cmd);
	*index = -1;
	return -1;
}

/* Go: CheckCommitted. */
int harness_check_committed(harness_t *h, int cmd, int *index)
{
	char why[512] = "";
	int nc, idx = -1;

	harness_check_safety(h);
	pthread_mutex_lock(&h->mu);
	nc = check_committed_locked(h, cmd, &idx, why, sizeof(why));
	pthread_mutex_unlock(&h->mu);
	if (why[0])
		check_failed(h, "%s", why);
	if (index)
		*index = idx;
	return nc;
}

/* Go: CheckCommittedN. */
void harness_check_committed_n(harness_t *h, int cmd, int n)
{
	int nc = harness_check_committed(h, cmd, NULL);

	if (nc != n)
		check_failed(h, "CheckCommittedN got nc=%d, want %d", nc, n);
}

/* Go: CheckNotCommitted. */
void harness_check_not_committed(harness_t *h, int cmd)
{
	char why[512] = "";

	harness_check_safety(h);
	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < h->n && !why[0]; i++) {
		if (!h->connected[i])
			continue;
		for (int c = 0; c < h->ncommits[i] && !why[0]; c++)
			if (h->commits[i][c].cmd == cmd)
				snprintf(why, sizeof(why),
					 "found %d at commits[%d][%d], expected none", cmd, i, c);
	}
	pthread_mutex_unlock(&h->mu);
	if (why[0])
		check_failed(h, "%s", why);
}

/* Go: SubmitToServer. */
bool harness_submit_to_server(harness_t *h, int id, int cmd)
{
	struct cm_command c = harness_command(cmd);

	return cm_submit(server_cm(h->cluster[id]), &c);
}

int harness_commit_count(harness_t *h, int id)
{
	int n;

	pthread_mutex_lock(&h->mu);
	n = h->ncommits[id];
	pthread_mutex_unlock(&h->mu);
	return n;
}

bool harness_commit_at(harness_t *h, int id, int k, int *cmd, int *index, int *term)
{
	struct harness_commit e;
	bool ok;

	pthread_mutex_lock(&h->mu);
	ok = k >= 0 && k < h->ncommits[id];
	if (ok)
		e = h->commits[id][k];
	pthread_mutex_unlock(&h->mu);
	if (!ok)
		return false;
	if (cmd)
		*cmd = e.cmd;
	if (index)
		*index = e.index;
	if (term)
		*term = e.term;
	return true;
}

long harness_rpc_count(harness_t *h)
{
	long n = 0;

	for (int i = 0; i < h->n; i++)
		n += server_rpc_count(h->cluster[i]);
	return n;
}

/* Has every connected server delivered cmd? */
static bool all_committed(harness_t *h, int cmd)
{
	bool all = true;

	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < h->n && all; i++) {
		bool found = false;

		if (!h->connected[i])
			continue;
		for (int c = 0; c < h->ncommits[i] && !found; c++)
			found = h->commits[i][c].cmd == cmd;
		all = found;
	}
	pthread_mutex_unlock(&h->mu);
	return all;
}

bool harness_wait_committed(harness_t *h, int cmd, int timeout_ms)
{
	struct timespec start = mono_now();

	do {
		if (all_committed(h, cmd))
			return true;
		sleep_ms(1);
	} while (elapsed_ms(start) < timeout_ms);
	return false;
}

int harness_forge_commit(harness_t *h, int id, int cmd, int index, int term)
{
	struct commit_entry e = { .command = harness_command(cmd), .index = index, .term = term };
	struct timespec deadline = timespec_add_ms(mono_now(), 1000);

	return chan_send(h->commit_chans[id], &e, &deadline, NULL);
}

bool harness_take_commit_violation(harness_t *h, char *why, size_t whylen)
{
	bool violated = commit_violation(h->commit_safety, why, whylen);

	commit_monitor_reset_violation(h->commit_safety);
	return violated;
}

bool harness_wait_for_leader(harness_t *h, int timeout_ms, int *id, int *term)
{
	struct timespec start = mono_now();
	bool connected[MAX_SERVERS];

	do {
		snapshot_connected(h, connected);
		for (int i = 0; i < h->n; i++) {
			bool is_leader;

			if (!connected[i])
				continue;
			harness_report(h, i, term, &is_leader);
			if (is_leader) {
				*id = i;
				return true;
			}
		}
		sleep_ms(1);
	} while (elapsed_ms(start) < timeout_ms);
	return false;
}

struct server *harness_server(harness_t *h, int id)
{
	return h->cluster[id];
}

struct cm *harness_cm(harness_t *h, int id)
{
	return server_cm(h->cluster[id]);
}
