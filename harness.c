/*
 * Test harness for Raft: C twin of part1/testharness.go, with checks the Go
 * harness does not have: an election-safety monitor fed by every CM, and a
 * thread-leak check at every shutdown.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
	struct ready ready;
	struct safety_monitor *safety;
};

/* ---- logging -------------------------------------------------------------- */

void tlog(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_printf("[TEST] %s", msg);
}

void sleep_ms(int ms)
{
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* ---- safety monitor ------------------------------------------------------- */

struct safety_monitor {
	pthread_mutex_t mu;
	int n;
	int *last_term;	     /* per server, the last term it reported */
	int *leader_of_term; /* per term, the leader's id or -1 */
	int nterms;
	bool violated;
	char why[256];
};

struct safety_monitor *safety_monitor_new(int n)
{
	struct safety_monitor *m = calloc(1, sizeof(*m));

	if (!m || !(m->last_term = calloc((size_t)n, sizeof(int)))) {
		free(m);
		return NULL;
	}
	m->n = n;
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void safety_monitor_free(struct safety_monitor *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->last_term);
	free(m->leader_of_term);
	free(m);
}

/* Records the first violation only: it is the one that explains the rest. */
static void violation(struct safety_monitor *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void violation(struct safety_monitor *m, const char *fmt, ...)
{
	va_list ap;

	if (m->violated)
		return;
	m->violated = true;
	va_start(ap, fmt);
	vsnprintf(m->why, sizeof(m->why), fmt, ap);
	va_end(ap);
}

void safety_term_changed(struct safety_monitor *m, int id, int old_term, int new_term)
{
	pthread_mutex_lock(&m->mu);
	if (new_term < old_term || (id >= 0 && id < m->n && new_term < m->last_term[id]))
		violation(m, "server %d: term went down from %d to %d", id, old_term, new_term);
	if (id >= 0 && id < m->n)
		m->last_term[id] = new_term;
	pthread_mutex_unlock(&m->mu);
}

/* Makes leader_of_term hold term. Expects m->mu held. */
static bool grow_terms(struct safety_monitor *m, int term)
{
	int n = m->nterms ? m->nterms : 16;
	int *p;

	while (n <= term)
		n *= 2;
	if (n == m->nterms)
		return true;
	p = reallocarray(m->leader_of_term, (size_t)n, sizeof(int));
	if (!p)
		return false;
	for (int i = m->nterms; i < n; i++)
		p[i] = -1;
	m->leader_of_term = p;
	m->nterms = n;
	return true;
}

void safety_became_leader(struct safety_monitor *m, int id, int term)
{
	pthread_mutex_lock(&m->mu);
	if (term < 0 || !grow_terms(m, term))
		violation(m, "server %d: cannot record leadership of term %d", id, term);
	else if (m->leader_of_term[term] >= 0 && m->leader_of_term[term] != id)
		violation(m, "two leaders in term %d: %d and %d", term, m->leader_of_term[term],
			  id);
	else
		m->leader_of_term[term] = id;
	pthread_mutex_unlock(&m->mu);
}

bool safety_violation(struct safety_monitor *m, char *why, size_t whylen)
{
	bool violated;

	pthread_mutex_lock(&m->mu);
	violated = m->violated;
	if (violated)
		snprintf(why, whylen, "%s", m->why);
	pthread_mutex_unlock(&m->mu);
	return violated;
}

static void on_term_changed(void *ctx, int id, int old_term, int new_term)
{
	safety_term_changed(ctx, id, old_term, new_term);
}

static void on_became_leader(void *ctx, int id, int term)
{
	safety_became_leader(ctx, id, term);
}

/* ---- thread leak check ---------------------------------------------------- */

int task_set_snapshot(struct task_set *set)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int cap = 0;

	set->n = 0;
	set->tids = NULL;
	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		if (set->n == cap) {
			pid_t *p = reallocarray(set->tids, (size_t)(cap = cap * 2 + 64),
						sizeof(pid_t));

			if (!p) {
				closedir(dir);
				task_set_free(set);
				return -ENOMEM;
			}
			set->tids = p;
		}
		set->tids[set->n++] = (pid_t)strtol(e->d_name, NULL, 10);
	}
	closedir(dir);
	return 0;
}

void task_set_free(struct task_set *set)
{
	free(set->tids);
	set->tids = NULL;
	set->n = 0;
}

static bool task_set_has(const struct task_set *set, pid_t tid)
{
	for (int i = 0; i < set->n; i++)
		if (set->tids[i] == tid)
			return true;
	return false;
}

/* Appends " name(tid)" for each thread of now that before does not have. */
static int name_new_tasks(const struct task_set *before, const struct task_set *now, char *why,
			  size_t whylen)
{
	size_t len = strlen(why);
	int leaked = 0;

	for (int i = 0; i < now->n; i++) {
		char path[64], name[32] = "?";
		FILE *f;

		if (task_set_has(before, now->tids[i]))
			continue;
		leaked++;
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)now->tids[i]);
		if ((f = fopen(path, "r"))) {
			if (fgets(name, sizeof(name), f))
				name[strcspn(name, "\n")] = '\0';
			fclose(f);
		}
		if (len < whylen)
			len += (size_t)snprintf(why + len, whylen - len, " %s(%d)", name,
						(int)now->tids[i]);
	}
	return leaked;
}

bool task_set_wait_back(const struct task_set *before, int timeout_ms, char *why, size_t whylen)
{
	struct timespec start = mono_now();

	for (;;) {
		struct task_set now;
		int leaked;

		if (task_set_snapshot(&now) < 0) {
			snprintf(why, whylen, "cannot list /proc/self/task: %s", strerror(errno));
			return false;
		}
		snprintf(why, whylen, "threads still running after %d ms:", timeout_ms);
		leaked = name_new_tasks(before, &now, why, whylen);
		task_set_free(&now);
		if (leaked == 0)
			return true;
		/* A joined thread can stay listed for a few milliseconds. */
		if (elapsed_ms(start) >= timeout_ms)
			return false;
		sleep_ms(1);
	}
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

	for (int p = 0; p < h->n; p++)
		if (p != id)
			peer_ids[npeers++] = p;
	s = server_new(id, peer_ids, npeers, &h->ready, &observer);
	if (s && server_serve(s) < 0) {
		server_shutdown(s);
		server_free(s);
		s = NULL;
	}
	return s;
}

static void connect_pair(harness_t *h, int from, int to)
{
	struct sockaddr_in addr;
	int rc = server_get_listen_addr(h->cluster[to], &addr);

	if (!rc)
		rc = server_connect_to_peer(h->cluster[from], to, &addr);
	if (rc)
		fail_msg("server %d cannot connect to %d: %s", from, to, strerror(-rc));
}

/* Go: NewHarness. */
harness_t *harness_new(int n)
{
	harness_t *h = calloc(1, sizeof(*h));

	assert_true(n > 0 && n <= 64);
	assert_non_null(h);
	h->n = n;
	h->cluster = calloc((size_t)n, sizeof(struct server *));
	h->connected = calloc((size_t)n, sizeof(*h->connected));
	h->safety = safety_monitor_new(n);
	assert_true(h->cluster && h->connected && h->safety);
	ready_init(&h->ready);

	for (int i = 0; i < n; i++) {
		h->cluster[i] = new_server(h, i);
		if (!h->cluster[i])
			fail_msg("cannot start server %d", i);
	}
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++)
			if (i != j)
				connect_pair(h, i, j);
		h->connected[i] = true;
	}
	ready_close(&h->ready);
	return h;
}

static void free_harness(harness_t *h)
{
	for (int i = 0; i < h->n; i++)
		server_free(h->cluster[i]);
	ready_destroy(&h->ready);
	safety_monitor_free(h->safety);
	free(h->cluster);
	free(h->connected);
	free(h);
}

/*
 * Go: Shutdown. Then, stricter than Go: every thread the servers started
 * has been joined (server_shutdown returns only then), and the safety
 * monitor saw nothing wrong. The harness is freed before a failure is
 * reported, as cmocka does not return from one.
 */
void harness_shutdown(harness_t *h)
{
	char why[512] = "";
	long live = 0;

	if (!h)
		return;
	for (int i = 0; i < h->n; i++) {
		if (h->cluster[i])
			server_disconnect_all(h->cluster[i]);
		h->connected[i] = false;
	}
	for (int i = 0; i < h->n; i++) {
		if (!h->cluster[i])
			continue;
		server_shutdown(h->cluster[i]);
		live += server_threads_live(h->cluster[i]);
	}
	safety_violation(h->safety, why, sizeof(why));
	free_harness(h);
	if (why[0])
		fail_msg("election safety: %s", why);
	if (live)
		fail_msg("%ld server threads not joined after shutdown", live);
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

/* Go: ReconnectPeer. */
void harness_reconnect_peer(harness_t *h, int id)
{
	tlog("Reconnect %d", id);
	for (int j = 0; j < h->n; j++) {
		if (j == id)
			continue;
		connect_pair(h, id, j);
		connect_pair(h, j, id);
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
	for (int r = 0; r < CHECK_TRIES; r++) {
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

/* ---- test programs' main -------------------------------------------------- */

static int parse_count(const char *prog, const char *s, int *count)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < 1 || n > 1000000) {
		fprintf(stderr, "%s: -count wants a positive number, got \"%s\"\n", prog, s);
		return -EINVAL;
	}
	*count = (int)n;
	return 0;
}

/* Copies the tests whose names match pattern (all if NULL) into sel. */
static int select_tests(const char *prog, const char *pattern, const struct CMUnitTest *tests,
			size_t ntests, struct CMUnitTest *sel, size_t *nsel)
{
	regex_t re;
	int rc;

	*nsel = 0;
	if (!pattern)
		pattern = "";
	rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char msg[256];

		regerror(rc, &re, msg, sizeof(msg));
		fprintf(stderr, "%s: invalid -run regexp \"%s\": %s\n", prog, pattern, msg);
		return -EINVAL;
	}
	for (size_t i = 0; i < ntests; i++)
		if (regexec(&re, tests[i].name, 0, NULL, 0) == 0)
			sel[(*nsel)++] = tests[i];
	regfree(&re);
	return 0;
}

static void *nothing(void *arg)
{
	return arg;
}

/*
 * ThreadSanitizer starts a background thread of its own at the first
 * pthread_create; start it now, so that it is in every test's baseline.
 */
static void settle_runtime_threads(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, nothing, NULL) == 0)
		pthread_join(t, NULL);
}

static int parse_flags(const char *prog, int argc, char **argv, const char **pattern, int *count)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-run") == 0 && i + 1 < argc) {
			*pattern = argv[++i];
		} else if (strcmp(argv[i], "-count") == 0 && i + 1 < argc) {
			if (parse_count(prog, argv[++i], count) < 0)
				return -EINVAL;
		} else {
			fprintf(stderr, "usage: %s [-run REGEX] [-count N]\n", prog);
			return -EINVAL;
		}
	}
	return 0;
}

int harness_run_tests(const char *prog, const struct CMUnitTest *tests, size_t ntests, int argc,
		      char **argv)
{
	struct CMUnitTest *sel = calloc(ntests ? ntests : 1, sizeof(*sel));
	const char *pattern = NULL;
	int count = 1, failed = 0;
	size_t n;

	if (!sel) {
		fprintf(stderr, "%s: %s\n", prog, strerror(ENOMEM));
		return 2;
	}
	if (parse_flags(prog, argc, argv, &pattern, &count) < 0 ||
	    select_tests(prog, pattern, tests, ntests, sel, &n) < 0) {
		free(sel);
		return 2;
	}
	/* Unbuffered, so test names and log lines keep their order in `2>&1 | tee`. */
	setvbuf(stdout, NULL, _IONBF, 0);
	if (n == 0)
		printf("testing: warning: no tests to run\n");
	else
		settle_runtime_threads();
	for (int i = 0; n > 0 && i < count; i++)
		failed += _cmocka_run_group_tests(prog, sel, n, NULL, NULL);
	free(sel);
	return failed ? 1 : 0;
}
