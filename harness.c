/*
 * Test harness for Raft: C twin of part1/testharness.go, with the hooks of
 * our stricter checks: every CM feeds an election-safety monitor, shutdown
 * waits for every task of every server, and each test ends with a thread
 * leak check (lib/testing.h).
 */
#include "harness.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/chan.h"
#include "lib/log.h"
#include "raft.h"
#include "server.h"

/* Go's CheckSingleLeader: 5 tries, 150 ms apart. */
#define CHECK_TRIES	  5
#define CHECK_INTERVAL_MS 150

struct harness {
	/* cluster lists all the servers; connected says which are not cut off. */
	struct server **cluster;
	bool *connected;
	int n;
	struct chan *ready;
	struct safety_monitor *safety;
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
	int peer_ids[64], npeers = 0;
	struct server *s;
	char why[256];

	for (int p = 0; p < h->n; p++)
		if (p != id)
			peer_ids[npeers++] = p;
	s = server_new(id, peer_ids, npeers, h->ready, &observer);
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
		h->connected[i] = true;
	}
	return 0;
}

static harness_t *alloc_harness(int n)
{
	harness_t *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->n = n;
	h->cluster = calloc((size_t)n, sizeof(struct server *));
	h->connected = calloc((size_t)n, sizeof(*h->connected));
	h->safety = safety_monitor_new(n);
	h->ready = chan_new(1, 0);
	if (!h->cluster || !h->connected || !h->safety || !h->ready) {
		free(h->cluster);
		free(h->connected);
		safety_monitor_free(h->safety);
		chan_free(h->ready);
		free(h);
		return NULL;
	}
	return h;
}

static void free_harness(harness_t *h, const bool *leaked)
{
	for (int i = 0; i < h->n; i++)
		if (!leaked[i])
			server_free(h->cluster[i]);
	chan_free(h->ready);
	safety_monitor_free(h->safety);
	free(h->cluster);
	free(h->connected);
	free(h);
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
		h->connected[i] = false;
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
	bool leaked[64] = { false };

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
	if (n <= 0 || n > 64 || !(h = alloc_harness(n)))
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
	char safety[512] = "", tasks[512] = "";
	bool leaked[64] = { false };

	if (!h)
		return;
	stop_servers(h, leaked, tasks, sizeof(tasks));
	safety_violation(h->safety, safety, sizeof(safety));
	free_harness(h, leaked);
	if (safety[0])
		fail_msg("election safety: %s", safety);
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
	h->connected[id] = false;
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
		if (j == id || !h->connected[j])
			continue;
		if (connect_pair(h, id, j) || connect_pair(h, j, id))
			fail_msg("cannot reconnect %d and %d", id, j);
	}
	h->connected[id] = true;
}

void harness_report(harness_t *h, int id, int *term, bool *is_leader)
{
	cm_report(server_cm(h->cluster[id]), NULL, term, is_leader);
}

void harness_check_safety(harness_t *h)
{
	char why[256];

	if (safety_violation(h->safety, why, sizeof(why)))
		fail_msg("election safety: %s", why);
}

/*
 * One look at the connected servers: the leader's id, -1 if none. Two
 * leaders fail the test, as in Go; their terms tell a stale leader that has
 * not heard of the new term yet (different terms) from a broken election
 * (the same term, which the safety monitor reports too).
 */
static int find_leader(harness_t *h, int *leader_term)
{
	int leader_id = -1;

	for (int i = 0; i < h->n; i++) {
		int term;
		bool is_leader;

		if (!h->connected[i])
			continue;
		harness_report(h, i, &term, &is_leader);
		if (!is_leader)
			continue;
		if (leader_id >= 0)
			fail_msg("both %d (term %d) and %d (term %d) think they're leaders",
				 leader_id, *leader_term, i, term);
		leader_id = i;
		*leader_term = term;
	}
	return leader_id;
}

/* Go: CheckSingleLeader. */
int harness_check_single_leader(harness_t *h, int *term)
{
	return harness_check_single_leader_tries(h, CHECK_TRIES, term);
}

int harness_check_single_leader_tries(harness_t *h, int tries, int *term)
{
	for (int r = 0; r < tries; r++) {
		int leader_term = -1;
		int leader_id = find_leader(h, &leader_term);

		harness_check_safety(h);
		if (leader_id >= 0) {
			if (term)
				*term = leader_term;
			return leader_id;
		}
		sleep_ms(CHECK_INTERVAL_MS);
	}
	fail_msg("leader not found");
	return -1;
}

/* Go: CheckNoLeader. */
void harness_check_no_leader(harness_t *h)
{
	harness_check_safety(h);
	for (int i = 0; i < h->n; i++) {
		bool is_leader;

		if (!h->connected[i])
			continue;
		harness_report(h, i, NULL, &is_leader);
		if (is_leader)
			fail_msg("server %d leader; want none", i);
	}
}

bool harness_wait_for_leader(harness_t *h, int timeout_ms, int *id, int *term)
{
	struct timespec start = mono_now();

	do {
		for (int i = 0; i < h->n; i++) {
			bool is_leader;

			if (!h->connected[i])
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
