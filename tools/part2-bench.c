/*
 * part2-bench: measures part 2 (commands and log replication) the way the
 * Go original (eliben/raft part2) was measured on the same machine (issue 9):
 *   - commit latency: Submit to the leader until the leader's own delivery
 *     of that entry on its commit channel, one command at a time (the next
 *     is submitted once the last is delivered), so that each waits for the
 *     next 50 ms heartbeat, as in Go;
 *   - throughput: 5,000 commands submitted to the leader at once, commits
 *     per second until every server has delivered all of them;
 *   - idle cost and RSS of 5 servers at rest, as raft-bench measures part 1.
 * Both for 3 and 5 servers, with the CM's log off (RAFT_DEBUG=0) and the
 * RPC proxy's 1-5 ms delay on, as Go's figures were taken.
 *
 *   tools/part2-bench [GROUP...]   GROUP: latency3 latency5 throughput3 throughput5 idle5
 *   BENCH_OUT=FILE (default bench-results.jsonl) gets one JSON line per
 *   measurement, appended (`make bench` runs tools/raft-bench first, which
 *   starts the file); stdout gets a markdown table in raft-bench's format
 *   with the Go numbers and the targets beside ours. The servers log to
 *   stderr (`listening at`): `make bench` sends it to a file.
 *
 * It links part2/'s objects, whose symbols are part 1's names: a program of
 * its own, not a group of raft-bench.
 *
 * DESIGN: the main thread drives; each server's commits are read by a
 * collector task of our own (the harness's would log every commit), which
 * stamps each delivery with the monotonic clock under c->mu and signals
 * c->cond once its count reaches the one awaited; the main thread waits on
 * it with a deadline. No lock is held
 * across a call into a server. Percentiles are nearest-rank; the median of
 * an even count is the mean of the two middle samples.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chan.h"
#include "lib/clock.h"
#include "lib/go.h"
#include "lib/testing.h"
#include "tools/bench_stats.h"
/*
 * Built twice: as part2-bench (RAFT_PART 2, part2/'s objects) and as
 * part3-bench (RAFT_PART 3, part3/'s): the same cluster and measurements,
 * part 3's own groups and targets besides (issue 10).
 */
#ifndef RAFT_PART
#define RAFT_PART 2
#endif
#if RAFT_PART == 3
#include <unistd.h>

#include "part3/raft.h"
#include "part3/server.h"
#include "part3/storage.h"
#define PROG "part3-bench"
#else
#include "part2/raft.h"
#include "part2/server.h"
#define PROG "part2-bench"
#endif

#define MAX_SERVERS	  5
#define LEADER_TIMEOUT_MS 5000
#define COMMIT_TIMEOUT_MS 5000
#define LATENCY_SAMPLES	  100
#define THROUGHPUT_RUNS	  5
#if RAFT_PART == 3
/* Go part3's figures are over the first 1,000 entries (issue 10). */
#define THROUGHPUT_SUBMITS 1000
/* The long log: this many entries are committed before the runs. */
#define PREFILL_ENTRIES 100000
#else
#define THROUGHPUT_SUBMITS 5000
#define PREFILL_ENTRIES	   0
#endif
#define MAX_COMMITS                                                                                \
	(1 + LATENCY_SAMPLES + PREFILL_ENTRIES + 2 * THROUGHPUT_RUNS * THROUGHPUT_SUBMITS + 16)
#define COLLECTOR_WAIT_MS 2000

/* ---- targets (issue 9) --------------------------------------------------- */

/* A check is met when the statistic is at most the limit, or at least it if at_least. */
struct check {
	enum bench_stat stat;
	double limit;
	bool at_least;
};

struct target {
	const char *name;
	const char *go;	  /* Go's (the same part) on this machine, CM log off */
	const char *text; /* the target as printed */
	int nchecks;
	struct check checks[2];
};

#if RAFT_PART == 3
/*
 * The Go figures of issue 10 (eliben/raft part3, DebugCM = 0, MapStorage,
 * on this machine) and its targets: latency with the proxy's delay on no
 * worse than Go's; without it (map storage) p50 <= 0.5 ms; throughput with
 * map storage >= 20,000 commits/s over the first 1,000 entries and after
 * 100,000 (at most 2x slower there); with file storage and fsync >= 2,000,
 * with fewer fsyncs than commits when entries come in together. Beside
 * ours on 2026-12-01 (the same steps in Go, /tmp/gobench3): latency p50
 * 2.8 ms with 3 servers; 1,000 submits at once had not all committed
 * after 10 minutes (the issue saw the same with 5,000; the cause was not
 * looked into), so its 5-server figures are the issue's.
 */
static const struct target targets[] = {
	{ "commit_latency_ms_3",
	  "p50 2.8 (beside; issue: 3.2)",
	  "p50 <= 2.8",
	  1,
	  { { STAT_MEDIAN, 2.8, false } } },
	{ "commit_latency_ms_5", "p50 3.6", "p50 <= 3.6", 1, { { STAT_MEDIAN, 3.6, false } } },
	{ "commit_latency_nodelay_ms_3", "", "p50 <= 0.5", 1, { { STAT_MEDIAN, 0.5, false } } },
	{ "commit_latency_nodelay_ms_5", "", "p50 <= 0.5", 1, { { STAT_MEDIAN, 0.5, false } } },
	{ "throughput_commits_per_s_3",
	  "beside: stuck > 10 min (1,000 at once); issue: 1790",
	  "median >= 20000",
	  1,
	  { { STAT_MEDIAN, 20000, true } } },
	{ "throughput_commits_per_s_5",
	  "962 (first 1,000)",
	  "median >= 20000",
	  1,
	  { { STAT_MEDIAN, 20000, true } } },
	{ "throughput_after_100k_commits_per_s_3",
	  "5,000 entries: not done in 10 min",
	  "median >= 20000",
	  1,
	  { { STAT_MEDIAN, 20000, true } } },
	{ "throughput_slowdown_after_100k_3", "", "<= 2x", 1, { { STAT_MEDIAN, 2, false } } },
	{ "throughput_file_commits_per_s_3",
	  "(MapStorage only)",
	  "median >= 2000",
	  1,
	  { { STAT_MEDIAN, 2000, true } } },
	{ "fsyncs_per_commit_file_3", "", "median < 1", 1, { { STAT_MEDIAN, 0.999, false } } },
};
#else
/*
 * The Go figures of issue 9: eliben/raft part2 built by go-baseline.sh,
 * DebugCM = 0, on this machine. Latency within 5% of Go's (the same
 * algorithm: each command waits for the next 50 ms heartbeat); throughput
 * at least Go's. Go's throughput is the median, over 15 runs of its own
 * bench, of each run's median of 5 bursts (the same steps, 5,000 submits,
 * alternated with 15 runs of ours on 2026-12-02 06:23; the 78,000
 * was not reproduced: both programs wait for the heartbeat after the
 * submits and the one after it, about 100 ms).
 */
static const struct target targets[] = {
	{ "commit_latency_ms_3",
	  "p50 49.6, p99 54",
	  "p50 <= 52.1, p99 <= 56.7 (Go + 5%)",
	  2,
	  { { STAT_MEDIAN, 49.6 * 1.05, false }, { STAT_P99, 54 * 1.05, false } } },
	{ "commit_latency_ms_5",
	  "p50 49.5, p99 63.4 (measured beside)",
	  "p50 <= 52.1, p99 <= 56.7 (Go + 5%)",
	  2,
	  { { STAT_MEDIAN, 49.6 * 1.05, false }, { STAT_P99, 54 * 1.05, false } } },
	{ "throughput_commits_per_s_3",
	  "49534 (measured beside; issue: 78000)",
	  "median >= 49534 (Go beside)",
	  1,
	  { { STAT_MEDIAN, 49534, true } } },
	{ "throughput_commits_per_s_5",
	  "49860 (measured beside)",
	  "median >= 49860 (Go beside)",
	  1,
	  { { STAT_MEDIAN, 49860, true } } },
};
#endif

/*
 * Issue 9: idle cost and RSS no worse than part 1's. This program cannot see
 * part 1's figures (raft-bench idle measures them in the same make bench),
 * so the bars are part 1's targets. Parts 2 and 3 alike.
 */
static const struct target idle_targets[] = {
	{ "idle_cpu_s_per_s_5",
	  "",
	  "max <= " IDLE_CPU_MAX_STR " (part 1's target; compare raft-bench)",
	  1,
	  { { STAT_MAX, IDLE_CPU_MAX, false } } },
	{ "rss_kb_5",
	  "",
	  "max <= " IDLE_RSS_KB_MAX_STR " (part 1's target; compare raft-bench)",
	  1,
	  { { STAT_MAX, IDLE_RSS_KB_MAX, false } } },
};

static const struct target *find_in(const struct target *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

static const struct target *find_target(const char *name)
{
	const struct target *t = find_in(targets, sizeof(targets) / sizeof(targets[0]), name);

	return t ? t : find_in(idle_targets, sizeof(idle_targets) / sizeof(idle_targets[0]), name);
}

/* ---- output: JSON lines and the table ------------------------------------ */

struct bench {
	FILE *json;
	const char *json_path;
	int met;
	int missed;
};

static void print_table_header(void)
{
	printf("| name | unit | n | min | median | p90 | p99 | max | Go part%d | target | |\n",
	       RAFT_PART);
	printf("|---|---|--:|--:|--:|--:|--:|--:|---|---|---|\n");
	fflush(stdout);
}

static bool check_met(const struct check *c, const double *stat)
{
	return c->at_least ? stat[c->stat] >= c->limit : stat[c->stat] <= c->limit;
}

static const char *verdict(struct bench *b, const struct target *t, const double *stat)
{
	bool met = true;

	if (!t || t->nchecks == 0)
		return "";
	for (int i = 0; i < t->nchecks; i++)
		met = met && check_met(&t->checks[i], stat);
	if (met)
		b->met++;
	else
		b->missed++;
	return met ? "met" : "**missed**";
}

static void print_row(struct bench *b, const char *name, const char *unit,
		      const struct summary *sum)
{
	const struct target *t = find_target(name);
	const double *v = sum->stat;
	int p = unit_precision(unit);

	printf("| %s | %s | %d | %.*f | %.*f | %.*f | %.*f | %.*f | %s | %s | %s |\n", name, unit,
	       sum->n, p, v[STAT_MIN], p, v[STAT_MEDIAN], p, v[STAT_P90], p, v[STAT_P99], p,
	       v[STAT_MAX], t ? t->go : "", t ? t->text : "", verdict(b, t, v));
	fflush(stdout);
}

/* One JSON line, as tools/raft-bench.c writes them. */
static int write_json(struct bench *b, const char *name, const char *unit,
		      const struct summary *sum)
{
	return write_json_line(b->json, b->json_path, name, unit, sum);
}

/* Summarizes s, prints the row and writes the JSON line; frees s. */
static int report(struct bench *b, const char *name, const char *unit, struct samples *s)
{
	struct summary sum;
	int rc;

	if (s->n == 0) {
		fprintf(stderr, PROG ": %s: no samples\n", name);
		return -EINVAL;
	}
	summarize(s, &sum);
	print_row(b, name, unit, &sum);
	rc = write_json(b, name, unit, &sum);
	samples_free(s);
	return rc;
}

/* ---- a cluster with timed commit collectors ------------------------------- */

struct cluster;

struct collector {
	struct cluster *c;
	int id;
};

struct cluster {
	int n;
	struct server *s[MAX_SERVERS];
	struct chan *commit_chans[MAX_SERVERS];
	struct chan *ready;
	struct go_group *tasks; /* the collectors */
	struct collector col[MAX_SERVERS];

	/* mu guards ncommits, wanted and at; cond is signalled when a count reaches wanted. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int ncommits[MAX_SERVERS];
	int wanted;			  /* the count wait_commits waits for */
	struct timespec *at[MAX_SERVERS]; /* at[i][k]: when server i delivered its k-th */
#if RAFT_PART == 3
	struct storage *st[MAX_SERVERS];
	char dir[PATH_MAX]; /* the file storages' parent; "" with map storage */
#endif
};

/* Reads server id's commits until its channel is closed, stamping each. */
static void collect(void *arg)
{
	struct collector *col = arg;
	struct cluster *c = col->c;
	struct commit_entry e;

	while (chan_recv(c->commit_chans[col->id], &e, NULL, NULL) == 0) {
		struct timespec now = mono_now();

		pthread_mutex_lock(&c->mu);
		if (c->ncommits[col->id] < MAX_COMMITS)
			c->at[col->id][c->ncommits[col->id]] = now;
		c->ncommits[col->id]++;
		/* Only the delivery awaited: a wake-up per commit would slow them. */
		if (c->ncommits[col->id] >= c->wanted)
			pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->mu);
	}
}

#if RAFT_PART == 3
/* A storage for server id: in memory, or in a directory of c->dir. */
static struct storage *open_storage(struct cluster *c, int id)
{
	char dir[PATH_MAX + 16], why[512];
	struct storage *st = NULL;

	if (!c->dir[0])
		return map_storage_new();
	snprintf(dir, sizeof(dir), "%s/s%d", c->dir, id);
	if (file_storage_open(dir, &st, why, sizeof(why)) < 0)
		fprintf(stderr, PROG ": %s\n", why);
	return st;
}
#endif

/* A new server id of c, on its storage (part 3). */
static struct server *new_server(struct cluster *c, int id, const int *peers, int np)
{
#if RAFT_PART == 3
	if (!(c->st[id] = open_storage(c, id)))
		return NULL;
	return server_new(id, peers, np, c->st[id], c->ready, c->commit_chans[id], NULL);
#else
	return server_new(id, peers, np, c->ready, c->commit_chans[id], NULL);
#endif
}

static void cluster_free(struct cluster *c)
{
	for (int i = 0; i < c->n; i++) {
		server_free(c->s[i]);
		chan_free(c->commit_chans[i]);
		free(c->at[i]);
#if RAFT_PART == 3
		if (c->st[i])
			storage_free(c->st[i]);
#endif
	}
#if RAFT_PART == 3
	if (c->dir[0]) {
		int rc = remove_all(c->dir);

		if (rc < 0)
			fprintf(stderr, PROG ": cannot remove %s: %s\n", c->dir, strerror(-rc));
	}
#endif
	chan_free(c->ready);
	go_group_free(c->tasks);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Stops every server, then the collectors. 0, or -ETIMEDOUT (c is then leaked). */
static int cluster_stop(struct cluster *c)
{
	char why[256];
	int rc = 0;

	for (int i = 0; i < c->n; i++)
		if (c->s[i])
			server_disconnect_all(c->s[i]);
	for (int i = 0; i < c->n; i++) {
		if (c->s[i] && server_shutdown(c->s[i], why, sizeof(why)) < 0) {
			fprintf(stderr, PROG ": server %d: %s\n", i, why);
			rc = -ETIMEDOUT;
		}
	}
	for (int i = 0; i < c->n; i++)
		if (c->commit_chans[i])
			chan_close(c->commit_chans[i]);
	if (c->tasks && go_group_wait(c->tasks, COLLECTOR_WAIT_MS, why, sizeof(why)) < 0) {
		fprintf(stderr, PROG ": collectors: %s\n", why);
		rc = -ETIMEDOUT;
	}
	if (rc == 0)
		cluster_free(c);
	return rc;
}

/*
 * n servers on loopback, fully connected, started (as Go's NewHarness), on
 * map storage or (on_files, part 3) on file storages in a new directory of
 * $TMPDIR; NULL on failure.
 */
static struct cluster *cluster_start(int n, bool on_files)
{
	struct cluster *c = calloc(1, sizeof(*c));
	struct sockaddr_in addr;
	bool ok;

	if (!c)
		return NULL;
	c->n = n;
#if RAFT_PART == 3
	if (on_files) {
		const char *tmp = getenv("TMPDIR");

		snprintf(c->dir, sizeof(c->dir), "%s/part3-bench-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(c->dir)) {
			fprintf(stderr, PROG ": mkdtemp %s: %s\n", c->dir, strerror(errno));
			free(c);
			return NULL;
		}
	}
#else
	(void)on_files;
#endif
	pthread_mutex_init(&c->mu, NULL);
	ok = cond_init_monotonic(&c->cond) == 0 && (c->ready = chan_new(1, 0)) &&
	     (c->tasks = go_group_new("b"));
	for (int i = 0; ok && i < n; i++) {
		int peers[MAX_SERVERS], np = 0;

		for (int p = 0; p < n; p++)
			if (p != i)
				peers[np++] = p;
		ok = (c->at[i] = calloc(MAX_COMMITS, sizeof(struct timespec))) &&
		     (c->commit_chans[i] = chan_new(sizeof(struct commit_entry), 0)) &&
		     (c->s[i] = new_server(c, i, peers, np)) && server_serve(c->s[i]) == 0;
	}
	for (int i = 0; ok && i < n; i++)
		for (int j = 0; ok && j < n; j++)
			ok = i == j || (server_get_listen_addr(c->s[j], &addr) == 0 &&
					server_connect_to_peer(c->s[i], j, &addr) == 0);
	if (!ok) {
		fprintf(stderr, PROG ": cannot start a cluster of %d\n", n);
		(void)cluster_stop(c);
		return NULL;
	}
	chan_close(c->ready);
	for (int i = 0; i < n; i++) {
		c->col[i] = (struct collector){ .c = c, .id = i };
		go(c->tasks, collect, &c->col[i], "collect%d", i);
	}
	return c;
}

/* Polls every millisecond for a leader; its id, or -1 after LEADER_TIMEOUT_MS. */
static int find_leader(struct cluster *c)
{
	struct timespec start = mono_now();

	do {
		for (int i = 0; i < c->n; i++) {
			bool is_leader;

			cm_report(server_cm(c->s[i]), NULL, NULL, &is_leader);
			if (is_leader)
				return i;
		}
		sleep_ms(1);
	} while (elapsed_ms(start) < LEADER_TIMEOUT_MS);
	fprintf(stderr, PROG ": no leader within %d ms\n", LEADER_TIMEOUT_MS);
	return -1;
}

/* Submits cmd (its decimal digits, as the tests do) to server id. */
static bool submit(struct cluster *c, int id, int cmd)
{
	struct cm_command command = { 0 };

	command.len = (uint16_t)snprintf((char *)command.bytes, sizeof(command.bytes), "%d", cmd);
#if RAFT_PART == 3
	return cm_submit(server_cm(c->s[id]), &command) >= 0;
#else
	return cm_submit(server_cm(c->s[id]), &command);
#endif
}

/*
 * Waits until server id has delivered count commits (every server, if id
 * is -1). 0, or -ETIMEDOUT after COMMIT_TIMEOUT_MS.
 */
static int wait_commits(struct cluster *c, int id, int count)
{
	struct timespec deadline = timespec_add_ms(mono_now(), COMMIT_TIMEOUT_MS);
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	c->wanted = count;
	for (;;) { /* c->mu held */
		bool all = true;

		for (int i = 0; i < c->n; i++)
			if ((id < 0 || i == id) && c->ncommits[i] < count)
				all = false;
		if (all || rc == ETIMEDOUT)
			break;
		rc = pthread_cond_timedwait(&c->cond, &c->mu, &deadline);
	}
	pthread_mutex_unlock(&c->mu);
	if (rc == ETIMEDOUT) {
		fprintf(stderr, PROG ": %d commits not delivered within %d ms\n", count,
			COMMIT_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	return 0;
}

/* When server id delivered its k-th commit (0-based). */
static struct timespec delivered_at(struct cluster *c, int id, int k)
{
	struct timespec t;

	pthread_mutex_lock(&c->mu);
	t = c->at[id][k];
	pthread_mutex_unlock(&c->mu);
	return t;
}

/* A cluster with a leader that has committed one command on every server. */
static struct cluster *warm_cluster(int n, bool on_files, int *leader, int *count)
{
	struct cluster *c = cluster_start(n, on_files);

	if (!c)
		return NULL;
	*leader = find_leader(c);
	if (*leader < 0 || !submit(c, *leader, 1) || wait_commits(c, -1, 1) < 0) {
		fprintf(stderr, PROG ": the cluster of %d does not commit\n", n);
		(void)cluster_stop(c);
		return NULL;
	}
	*count = 1;
	return c;
}

/* ---- the measurements ------------------------------------------------------ */

/*
 * Commit latency: a command at a time, submitted as soon as the last one
 * was delivered by the leader, until LATENCY_SAMPLES were timed. With
 * delay false, the servers serve requests without the proxy's 1-5 ms.
 */
static int bench_latency(struct bench *b, int n, bool delay)
{
	struct samples s = { 0 };
	char name[64];
	int leader, count, rc = 0;
	struct cluster *c = warm_cluster(n, false, &leader, &count);

	if (!c)
		return -1;
	for (int i = 0; i < n; i++)
		server_set_rpc_delay(c->s[i], delay);
	for (int k = 0; k < LATENCY_SAMPLES && rc == 0; k++) {
		struct timespec t0 = mono_now();

		if (!submit(c, leader, 1000 + k)) {
			fprintf(stderr, PROG ": server %d is no longer the leader\n", leader);
			rc = -EAGAIN;
			break;
		}
		rc = wait_commits(c, leader, count + 1);
		if (rc == 0)
			rc = samples_add(
				&s,
				(double)timespec_diff_ns(delivered_at(c, leader, count), t0) / 1e6);
		count++;
	}
	if (cluster_stop(c) < 0 && rc == 0)
		rc = -ETIMEDOUT;
	snprintf(name, sizeof(name), "commit_latency%s_ms_%d", delay ? "" : "_nodelay", n);
	if (rc == 0)
		return report(b, name, "ms", &s);
	samples_free(&s);
	return rc;
}

/*
 * submits commands submitted to the leader at once: commits per second
 * from the first submit until the last server delivered the last of them
 * (*count: the commits so far, updated). 0 and the rate in *rate, or a
 * negative code.
 */
static int run_burst(struct cluster *c, int leader, int submits, int *count, double *rate)
{
	struct timespec t0 = mono_now(), last = t0;
	int rc = 0;

	for (int k = 0; k < submits && rc == 0; k++) {
		if (!submit(c, leader, 100000 + *count + k)) {
			fprintf(stderr, PROG ": server %d is no longer the leader\n", leader);
			rc = -EAGAIN;
		}
	}
	if (rc == 0)
		rc = wait_commits(c, -1, *count + submits);
	*count += submits;
	for (int i = 0; i < c->n && rc == 0; i++) {
		struct timespec t = delivered_at(c, i, *count - 1);

		if (timespec_diff_ns(t, last) > 0)
			last = t;
	}
	*rate = submits / ((double)timespec_diff_ns(last, t0) / 1e9);
	return rc;
}

/* THROUGHPUT_RUNS bursts of THROUGHPUT_SUBMITS into s. */
static int run_bursts(struct cluster *c, int leader, int *count, struct samples *s)
{
	int rc = 0;

	for (int r = 0; r < THROUGHPUT_RUNS && rc == 0; r++) {
		double rate;

		rc = run_burst(c, leader, THROUGHPUT_SUBMITS, count, &rate);
		if (rc == 0)
			rc = samples_add(s, rate);
	}
	return rc;
}

/* Throughput: THROUGHPUT_RUNS bursts in one cluster of n, on map storage. */
static int bench_throughput(struct bench *b, int n)
{
	struct samples s = { 0 };
	char name[64];
	int leader, count, rc;
	struct cluster *c = warm_cluster(n, false, &leader, &count);

	if (!c)
		return -1;
	rc = run_bursts(c, leader, &count, &s);
	if (cluster_stop(c) < 0 && rc == 0)
		rc = -ETIMEDOUT;
	snprintf(name, sizeof(name), "throughput_commits_per_s_%d", n);
	if (rc == 0)
		return report(b, name, "commits/s", &s);
	samples_free(&s);
	return rc;
}

static int bench_latency3(struct bench *b)
{
	return bench_latency(b, 3, true);
}

static int bench_latency5(struct bench *b)
{
	return bench_latency(b, 5, true);
}

static int bench_throughput3(struct bench *b)
{
	return bench_throughput(b, 3);
}

static int bench_throughput5(struct bench *b)
{
	return bench_throughput(b, 5);
}

#if RAFT_PART == 3
static int bench_latency_nodelay3(struct bench *b)
{
	return bench_latency(b, 3, false);
}

static int bench_latency_nodelay5(struct bench *b)
{
	return bench_latency(b, 5, false);
}

/* The median of s (sorted in place); s->n > 0. */
static double median_of(struct samples *s)
{
	struct summary sum;

	summarize(s, &sum);
	return sum.stat[STAT_MEDIAN];
}

/*
 * The long log: bursts at the start, then PREFILL_ENTRIES more entries
 * committed (in bursts of THROUGHPUT_SUBMITS), then bursts again; reports
 * the later rate and how many times slower it is than the first.
 */
static int bench_long_log3(struct bench *b)
{
	struct samples before = { 0 }, after = { 0 }, slowdown = { 0 };
	int leader, count, rc;
	struct cluster *c = warm_cluster(3, false, &leader, &count);

	if (!c)
		return -1;
	rc = run_bursts(c, leader, &count, &before);
	for (int k = 0; k < PREFILL_ENTRIES / THROUGHPUT_SUBMITS && rc == 0; k++) {
		double rate;

		rc = run_burst(c, leader, THROUGHPUT_SUBMITS, &count, &rate);
	}
	if (rc == 0)
		rc = run_bursts(c, leader, &count, &after);
	if (cluster_stop(c) < 0 && rc == 0)
		rc = -ETIMEDOUT;
	if (rc == 0)
		rc = samples_add(&slowdown, median_of(&before) / median_of(&after));
	if (rc == 0)
		rc = report(b, "throughput_after_100k_commits_per_s_3", "commits/s", &after);
	if (rc == 0)
		rc = report(b, "throughput_slowdown_after_100k_3", "x", &slowdown);
	samples_free(&before);
	samples_free(&after);
	samples_free(&slowdown);
	return rc;
}

/* fsyncs the file storages of c have made so far. */
static long cluster_fsyncs(struct cluster *c)
{
	long n = 0;

	for (int i = 0; i < c->n; i++)
		n += file_storage_fsyncs(c->st[i]);
	return n;
}

/*
 * Throughput on file storage (fsync on every persist), and the fsyncs each
 * server made per commit, per burst.
 */
static int bench_file3(struct bench *b)
{
	struct samples s = { 0 }, fsyncs = { 0 };
	int leader, count, rc = 0;
	struct cluster *c = warm_cluster(3, true, &leader, &count);

	if (!c)
		return -1;
	for (int r = 0; r < THROUGHPUT_RUNS && rc == 0; r++) {
		long f0 = cluster_fsyncs(c);
		double rate;

		rc = run_burst(c, leader, THROUGHPUT_SUBMITS, &count, &rate);
		if (rc == 0)
			rc = samples_add(&s, rate);
		if (rc == 0)
			rc = samples_add(&fsyncs, (double)(cluster_fsyncs(c) - f0) /
							  (3.0 * THROUGHPUT_SUBMITS));
	}
	if (cluster_stop(c) < 0 && rc == 0)
		rc = -ETIMEDOUT;
	if (rc == 0)
		rc = report(b, "throughput_file_commits_per_s_3", "commits/s", &s);
	if (rc == 0)
		rc = report(b, "fsyncs_per_commit_file_3", "fsyncs", &fsyncs);
	samples_free(&s);
	samples_free(&fsyncs);
	return rc;
}
#endif

/*
 * Idle cost and footprint: CPU seconds per wall second of the whole
 * process over IDLE_WINDOWS windows, then its VmRSS every 10 ms for 5 s,
 * with a healthy cluster of 5 at rest (one command committed, map
 * storage). The same windows as raft-bench's idle_cpu_s_per_s_5 and
 * rss_kb_5 for part 1; the bench's own cost is raft-bench's idle0.
 */
static int bench_idle5(struct bench *b)
{
	struct samples idle = { 0 }, rss = { 0 };
	int leader, count, rc = 0;
	struct cluster *c = warm_cluster(5, false, &leader, &count);

	if (!c)
		return -1;
	for (int w = 0; w < IDLE_WINDOWS && rc == 0; w++)
		rc = samples_add(&idle, idle_window_cpu_per_s());
	for (int i = 0; i < FOOTPRINT_WINDOW_MS / FOOTPRINT_PERIOD_MS && rc == 0; i++) {
		long kb = process_rss_kb();

		rc = kb < 0 ? -EIO : samples_add(&rss, (double)kb);
		sleep_ms(FOOTPRINT_PERIOD_MS);
	}
	/* At rest, the leader stays: a change would mean a cost that is not idle. */
	if (rc == 0 && find_leader(c) != leader) {
		fprintf(stderr, PROG ": the leader changed while idle\n");
		rc = -EAGAIN;
	}
	if (cluster_stop(c) < 0 && rc == 0)
		rc = -ETIMEDOUT;
	if (rc == 0)
		rc = report(b, "idle_cpu_s_per_s_5", "CPU-s/s", &idle);
	if (rc == 0)
		rc = report(b, "rss_kb_5", "kB", &rss);
	samples_free(&idle);
	samples_free(&rss);
	return rc;
}

static const struct group {
	const char *name;
	int (*run)(struct bench *b);
} groups[] = {
	{ "latency3", bench_latency3 },
	{ "latency5", bench_latency5 },
	{ "throughput3", bench_throughput3 },
	{ "throughput5", bench_throughput5 },
	{ "idle5", bench_idle5 },
#if RAFT_PART == 3
	{ "latency_nodelay3", bench_latency_nodelay3 },
	{ "latency_nodelay5", bench_latency_nodelay5 },
	{ "long_log3", bench_long_log3 },
	{ "file3", bench_file3 },
#endif
};

#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " [GROUP...]\nGROUP:");
	for (size_t i = 0; i < NGROUPS; i++)
		fprintf(stderr, " %s", groups[i].name);
	fprintf(stderr, "\nenv: BENCH_OUT=FILE (default bench-results.jsonl, appended)\n");
	exit(2);
}

/* Marks the groups named on the command line, or all of them. */
static void select_groups(int argc, char **argv, bool *sel)
{
	for (size_t g = 0; g < NGROUPS; g++)
		sel[g] = argc < 2;
	for (int i = 1; i < argc; i++) {
		size_t g = 0;

		while (g < NGROUPS && strcmp(argv[i], groups[g].name) != 0)
			g++;
		if (g == NGROUPS)
			usage();
		sel[g] = true;
	}
}

int main(int argc, char **argv)
{
	const char *out = getenv("BENCH_OUT");
	struct bench b = { 0 };
	bool sel[NGROUPS];
	int rc = 0;

	/* Before any raft call: the environment is read once. */
	if (setenv("RAFT_DEBUG", "0", 1) < 0) {
		fprintf(stderr, PROG ": setenv: %s\n", strerror(errno));
		return 1;
	}
	select_groups(argc, argv, sel);
	b.json_path = out && *out ? out : "bench-results.jsonl";
	b.json = fopen(b.json_path, "a");
	if (!b.json) {
		fprintf(stderr, PROG ": %s: %s\n", b.json_path, strerror(errno));
		return 1;
	}
	print_table_header();
	for (size_t g = 0; g < NGROUPS && rc == 0; g++) {
		if (!sel[g])
			continue;
		fprintf(stderr, PROG ": running %s\n", groups[g].name);
		rc = groups[g].run(&b);
	}
	if (fclose(b.json) != 0 && rc == 0) {
		fprintf(stderr, PROG ": closing %s: %s\n", b.json_path, strerror(errno));
		rc = -EIO;
	}
	if (rc) {
		fprintf(stderr, PROG ": stopped: a measurement failed (see above)\n");
		return 1;
	}
	printf("\ntargets: %d met, %d missed; JSON lines appended to %s\n", b.met, b.missed,
	       b.json_path);
	return 0;
}
