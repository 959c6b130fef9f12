/*
 * crash_test: real crashes (issue 10). Three raft_server processes, each on
 * its own file storage, get a stream of submits while this test kills one
 * of them with SIGKILL at a random moment and starts it again on what it
 * left on disk, again and again. Go's tests crash a server by shutting it
 * down in-process, on MapStorage; here nothing gets a chance to finish.
 *
 * What must hold, checked on every line the servers print:
 *   - State Machine Safety: no two deliveries (any server, any run of it)
 *     put different commands at one index;
 *   - each run of a server delivers indices in order from 0, no gap, no
 *     repeat (a restarted server's commit index starts at -1, as in Go);
 *   - no server's term goes down, also across a restart (the term it
 *     restores is at least the last one it reported);
 * and at the end, after one more command in a final term: every server
 * delivers every index ever delivered anywhere, so nothing acknowledged
 * (committed) was lost.
 *
 *   crash_test [-run REGEX] [-count N]
 *   RAFT_CRASHES=N   kills per run (default 20; the campaign: 200)
 *   RAFT_CRASH_SEED=S   the random seed (printed at the start)
 *
 * The servers' logs and storage are in a temporary directory, kept (and
 * named) when the test fails.
 *
 * DESIGN: the test thread drives (submits, kills, restarts); one reader
 * task per server run ("read<i>") parses its stdout and checks it under
 * w->mu, signalling w->cond. A run's reader ends at the end of its output
 * (the process exited or was killed), and is waited for before the server
 * starts again.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/go.h"
#include "lib/log.h"
#include "lib/testing.h"

#define NSERVERS	 3
#define DEFAULT_CRASHES	 20
#define SUBMIT_EVERY_MS	 5
#define STATUS_EVERY_MS	 20
#define START_TIMEOUT_MS 10000
#define FINAL_TIMEOUT_MS 20000

extern char **environ;

/* One server: its current process and what its runs delivered. */
struct proc {
	pid_t pid;
	int in_fd;     /* the process's stdin */
	int port;      /* 0 until it printed "listening" */
	bool running;  /* its reader has not seen the end of its output */
	int run;       /* runs so far (1 for the first) */
	int delivered; /* commits of the current run */
	int last_term; /* the highest term it reported, over all runs */
};

struct world {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct proc procs[NSERVERS];
	/* The command committed at each index (NULL: none seen yet). */
	char **committed;
	int ncommitted, cap;
	struct verdict verdict;
	struct go_group *readers;
	char dir[PATH_MAX];
	char server_path[PATH_MAX];
};

struct reader_job {
	struct world *w;
	int id;
	int fd;
};

static void tlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprintf_prefixed("[TEST] ", fmt, ap);
	va_end(ap);
}

/* ---- what the servers print ---------------------------------------------- */

/* Records that index holds cmd. Expects w->mu held. */
static void record_commit(struct world *w, int id, int index, const char *cmd)
{
	struct proc *p = &w->procs[id];

	if (index != p->delivered)
		verdict_record(&w->verdict,
			       "server %d (run %d) delivered index %d after %d entries", id, p->run,
			       index, p->delivered);
	p->delivered++;
	if (index >= w->cap) {
		int cap = w->cap ? w->cap * 2 : 256;

		while (cap <= index)
			cap *= 2;
		w->committed = realloc(w->committed, (size_t)cap * sizeof(char *));
		if (!w->committed) {
			fprintf(stderr, "crash_test: out of memory\n");
			abort();
		}
		memset(w->committed + w->cap, 0, (size_t)(cap - w->cap) * sizeof(char *));
		w->cap = cap;
	}
	if (!w->committed[index]) {
		w->committed[index] = strdup(cmd);
		if (index >= w->ncommitted)
			w->ncommitted = index + 1;
	} else if (strcmp(w->committed[index], cmd) != 0) {
		verdict_record(&w->verdict, "index %d: server %d (run %d) delivered %s, another %s",
			       index, id, p->run, cmd, w->committed[index]);
	}
}

/* Records a reported term. Expects w->mu held. */
static void record_term(struct world *w, int id, int term)
{
	struct proc *p = &w->procs[id];

	if (term < p->last_term)
		verdict_record(&w->verdict, "server %d (run %d) reported term %d after %d", id,
			       p->run, term, p->last_term);
	else
		p->last_term = term;
}

/*
 * If line starts with word, reads the n ints after it into v and leaves
 * *rest at what follows them: true; false otherwise.
 */
static bool parse_line(char *line, const char *word, int *v, int n, char **rest)
{
	size_t len = strlen(word);
	char *s = line + len;

	if (strncmp(line, word, len) != 0 || line[len] != ' ')
		return false;
	for (int i = 0; i < n; i++) {
		char *end;
		long x;

		errno = 0;
		x = strtol(s, &end, 10);
		if (errno || end == s || x < INT_MIN || x > INT_MAX)
			return false;
		v[i] = (int)x;
		s = end;
	}
	*rest = s + strspn(s, " ");
	return true;
}

static void handle_output(struct world *w, int id, char *line)
{
	char *rest;
	int v[2];

	pthread_mutex_lock(&w->mu);
	if (parse_line(line, "listening", v, 1, &rest))
		w->procs[id].port = v[0];
	else if (parse_line(line, "commit", v, 2, &rest) && *rest)
		record_commit(w, id, v[0], rest);
	else if (parse_line(line, "status", v, 2, &rest))
		record_term(w, id, v[0]);
	else if (strncmp(line, "submitted ", 10) != 0)
		tlog("server %d: %s", id, line);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

/* Reads one run's stdout to its end. */
static void read_output(void *arg)
{
	struct reader_job *job = arg;
	struct world *w = job->w;
	FILE *out = fdopen(job->fd, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!out) {
		close(job->fd);
	} else {
		while ((len = getline(&line, &cap, out)) > 0) {
			if (line[len - 1] == '\n')
				line[len - 1] = '\0';
			handle_output(w, job->id, line);
		}
		fclose(out);
	}
	free(line);
	pthread_mutex_lock(&w->mu);
	w->procs[job->id].running = false;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	free(job);
}

/* ---- driving the servers --------------------------------------------------- */

/* Sends a line to server id's stdin; a server just killed may miss it. */
static void tell(struct world *w, int id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void tell(struct world *w, int id, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* A short write or EPIPE: it is being killed; its next run is told again. */
	if (w->procs[id].in_fd >= 0)
		(void)!write(w->procs[id].in_fd, line, (size_t)n);
}

static void tell_all(struct world *w, const char *line)
{
	for (int i = 0; i < NSERVERS; i++)
		tell(w, i, "%s", line);
}

/* Waits until pred(w, id) or timeout_ms pass. Expects w->mu held. */
static bool await(struct world *w, bool (*pred)(struct world *, int), int id, int timeout_ms)
{
	struct timespec deadline = timespec_add_ms(mono_now(), timeout_ms);

	while (!pred(w, id))
		if (pthread_cond_timedwait(&w->cond, &w->mu, &deadline) == ETIMEDOUT)
			return pred(w, id);
	return true;
}

static bool has_port(struct world *w, int id)
{
	return w->procs[id].port > 0 || !w->procs[id].running;
}

static bool has_ended(struct world *w, int id)
{
	return !w->procs[id].running;
}

/*
 * Starts server id's next run: raft_server ID N DIR/s<id>, its stderr
 * appended to DIR/s<id>.log. Returns its port, or -1.
 */
static int spawn_server(struct world *w, int id)
{
	char sid[16], sn[16], dir[PATH_MAX + 8], log[PATH_MAX + 8];
	char *argv[] = { w->server_path, sid, sn, dir, NULL };
	posix_spawn_file_actions_t fa;
	int in[2], out[2], rc, port;
	struct reader_job *job;
	struct proc *p = &w->procs[id];

	snprintf(sid, sizeof(sid), "%d", id);
	snprintf(sn, sizeof(sn), "%d", NSERVERS);
	snprintf(dir, sizeof(dir), "%s/s%d", w->dir, id);
	snprintf(log, sizeof(log), "%s/s%d.log", w->dir, id);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log, O_WRONLY | O_CREAT | O_APPEND,
					 0600);
	pthread_mutex_lock(&w->mu);
	rc = posix_spawn(&p->pid, w->server_path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (rc != 0) {
		pthread_mutex_unlock(&w->mu);
		tlog("posix_spawn %s: %s", w->server_path, strerror(rc));
		close(in[1]);
		close(out[0]);
		return -1;
	}
	p->in_fd = in[1];
	p->port = 0;
	p->running = true;
	p->run++;
	p->delivered = 0;
	job = malloc(sizeof(*job));
	if (!job)
		abort();
	*job = (struct reader_job){ .w = w, .id = id, .fd = out[0] };
	go(w->readers, read_output, job, "read%d", id);
	(void)await(w, has_port, id, START_TIMEOUT_MS);
	port = p->port > 0 ? p->port : -1;
	pthread_mutex_unlock(&w->mu);
	return port;
}

/* Connects server id and the others to each other, then starts its CM. */
static void join_cluster(struct world *w, int id)
{
	for (int j = 0; j < NSERVERS; j++) {
		if (j == id || w->procs[j].port <= 0)
			continue;
		tell(w, id, "connect %d %d\n", j, w->procs[j].port);
		tell(w, j, "connect %d %d\n", id, w->procs[id].port);
	}
	tell(w, id, "start\n");
}

/* SIGKILL, then waits for the process and for its reader to see the end. */
static void kill_server(struct world *w, int id)
{
	struct proc *p = &w->procs[id];
	int status;

	tlog("Crash %d (kill -9 pid %d)", id, (int)p->pid);
	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	close(p->in_fd);
	p->in_fd = -1;
	pthread_mutex_lock(&w->mu);
	(void)await(w, has_ended, id, START_TIMEOUT_MS);
	pthread_mutex_unlock(&w->mu);
}

/* Asks server id to quit; its exit status (-1 if it did not exit normally). */
static int quit_server(struct world *w, int id)
{
	struct proc *p = &w->procs[id];
	int status;

	tell(w, id, "quit\n");
	close(p->in_fd);
	p->in_fd = -1;
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Submits to every server (the leader takes it) and asks for statuses, for ms. */
static void run_for(struct world *w, int ms, int *next_cmd)
{
	struct timespec end = timespec_add_ms(mono_now(), ms);
	int tick = 0;
	char line[32];

	while (!timespec_reached(end)) {
		snprintf(line, sizeof(line), "submit %d\n", (*next_cmd)++);
		tell_all(w, line);
		if (tick++ % (STATUS_EVERY_MS / SUBMIT_EVERY_MS) == 0)
			tell_all(w, "status\n");
		sleep_ms(SUBMIT_EVERY_MS);
	}
}

static bool all_caught_up(struct world *w, int id)
{
	(void)id;
	for (int i = 0; i < NSERVERS; i++)
		if (w->procs[i].delivered < w->ncommitted || !w->procs[i].running)
			return false;
	return w->ncommitted > 0;
}

/* ---- the test ----------------------------------------------------------------- */

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);
	char *end;
	long x;

	if (!v || !*v)
		return def;
	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || *end || x < 0 || x > INT_MAX) {
		fprintf(stderr, "crash_test: %s=%s is not a number; using %d\n", name, v, def);
		return def;
	}
	return (int)x;
}

/* raft_server is built beside this program. */
static bool find_server(struct world *w)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		return false;
	self[n] = '\0';
	snprintf(w->server_path, sizeof(w->server_path), "%s/raft_server", dirname(self));
	return access(w->server_path, X_OK) == 0;
}

/* rm -r path. */
static void remove_tree(const char *path)
{
	int rc = remove_all(path);

	if (rc < 0)
		tlog("cannot remove %s: %s", path, strerror(-rc));
}

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	pthread_mutex_init(&w->mu, NULL);
	assert_int_equal(cond_init_monotonic(&w->cond), 0);
	w->readers = go_group_new("crash");
	assert_non_null(w->readers);
	for (int i = 0; i < NSERVERS; i++)
		w->procs[i].in_fd = -1;
	if (!find_server(w))
		fail_msg("no raft_server beside this program (%s)", w->server_path);
	snprintf(w->dir, sizeof(w->dir), "%s/raft-crash-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(w->dir))
		fail_msg("mkdtemp: %s", strerror(errno));
	return w;
}

static void world_free(struct world *w, bool keep_dir)
{
	char why[256];

	if (go_group_wait(w->readers, 5000, why, sizeof(why)) == 0)
		go_group_free(w->readers);
	if (keep_dir)
		tlog("servers' logs and storage kept in %s", w->dir);
	else
		remove_tree(w->dir);
	for (int i = 0; i < w->cap; i++)
		free(w->committed[i]);
	free(w->committed);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* The crashes: kill one server at a random moment, start it again. */
static void crash_and_restart(struct world *w, int crashes, unsigned *seed, int *next_cmd)
{
	for (int c = 0; c < crashes; c++) {
		int victim = (int)(rand_r(seed) % NSERVERS);

		run_for(w, 100 + (int)(rand_r(seed) % 300), next_cmd);
		kill_server(w, victim);
		run_for(w, (int)(rand_r(seed) % 200), next_cmd);
		tlog("Restart %d", victim);
		if (spawn_server(w, victim) < 0)
			fail_msg("server %d did not start again (see %s/s%d.log)", victim, w->dir,
				 victim);
		join_cluster(w, victim);
	}
}

/*
 * SIGKILL of a random server at a random moment, many times, under a
 * stream of submits: nothing committed is lost or contradicted, no term
 * goes down, and every server ends with every committed entry.
 */
static void TestKill9ServersKeepCommitted(void **state)
{
	struct world *w = world_new();
	int crashes = env_int("RAFT_CRASHES", DEFAULT_CRASHES), next_cmd = 1000, exits = 0;
	unsigned seed =
		(unsigned)env_int("RAFT_CRASH_SEED", (int)(mono_now().tv_nsec & 0x7fffffff));
	char why[256];
	bool ok;

	(void)state;
	tlog("%d crashes, seed %u, in %s", crashes, seed, w->dir);
	for (int i = 0; i < NSERVERS; i++)
		if (spawn_server(w, i) < 0)
			fail_msg("server %d did not start (see %s/s%d.log)", i, w->dir, i);
	for (int i = 0; i < NSERVERS; i++)
		join_cluster(w, i);
	crash_and_restart(w, crashes, &seed, &next_cmd);

	/* A final command, in a term of its own, commits everything before it. */
	run_for(w, 500, &next_cmd);
	pthread_mutex_lock(&w->mu);
	ok = await(w, all_caught_up, 0, FINAL_TIMEOUT_MS);
	tlog("%d entries committed; delivered %d, %d, %d", w->ncommitted, w->procs[0].delivered,
	     w->procs[1].delivered, w->procs[2].delivered);
	pthread_mutex_unlock(&w->mu);

	for (int i = 0; i < NSERVERS; i++) {
		int rc = quit_server(w, i);

		if (rc != 0) {
			tlog("server %d exited with %d", i, rc);
			exits++;
		}
	}
	if (!verdict_read(&w->verdict, why, sizeof(why)) && (!ok || exits))
		snprintf(why, sizeof(why), "%s",
			 !ok ? "the servers did not all deliver every committed entry"
			     : "a server did not exit cleanly (TSan report?)");
	else if (ok && !exits)
		why[0] = '\0';
	world_free(w, why[0] != '\0');
	if (why[0])
		fail_msg("%s", why);
}

int main(int argc, char **argv)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(TestKill9ServersKeepCommitted, leak_check_setup,
						leak_check_teardown),
	};

	/* A server killed while we write to it: EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	return go_test_main("crash_test", tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
