/*
 * DESIGN: stands in for Go's `go` statement, its scheduler's threads (Ms)
 * and sync.WaitGroup.
 *
 * Threads:
 *   workers  each runs one task at a time, then takes the next queued task
 *            or parks on its own condition variable. go() hands a task to
 *            the most recently parked worker (its stack and cache are warm)
 *            and wakes that one only; it makes a new worker only when none
 *            is parked. Nothing is created per task at steady state.
 *   keeper   one per process, made with the first worker. It sleeps until
 *            tasks are queued because no worker could be made (pthread_create
 *            said EAGAIN), then retries every KEEPER_RETRY_MS until the queue
 *            is empty: a queued task never waits for a worker that may not
 *            come (every busy worker could be blocked in a read).
 * Locking: pool.mu guards everything in struct pool, every group's counts
 * and task list, and every worker's fields. It is never held while a task
 * runs, nor across pthread_create or pthread_join.
 */
#include "lib/go.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"

/*
 * The deepest frame of any task is a log line (4 KiB under vsnprintf);
 * glibc's default of 8 MiB per thread would only cost address space.
 */
#define WORKER_STACK_SIZE ((size_t)256 * 1024)
#define KEEPER_RETRY_MS	  10

struct task {
	TAILQ_ENTRY(task) queue_link; /* pool.queue, while waiting for a worker */
	TAILQ_ENTRY(task) group_link; /* g->tasks, until it returns */
	void (*fn)(void *);
	void *arg;
	struct go_group *g;
	char name[GO_NAME_SIZE];
};
TAILQ_HEAD(task_list, task);

struct worker {
	TAILQ_ENTRY(worker) link; /* pool.idle while parked; pool.retiring */
	pthread_t tid;
	pid_t os_tid;		 /* gettid(), for the leak check */
	char name[GO_NAME_SIZE]; /* the thread's name now: its last task's */
	pthread_cond_t wake;
	struct task *task; /* handed over by go(); NULL while parked */
	bool retire;
};
TAILQ_HEAD(worker_list, worker);

struct go_group {
	char prefix[GO_NAME_SIZE];
	pthread_cond_t done; /* broadcast when live drops to 0 */
	struct task_list tasks;
	long started;
	long live;
};

static struct pool {
	pthread_mutex_t mu;
	pthread_attr_t attr;
	bool attr_ready;
	struct worker_list idle; /* most recently parked first */
	struct task_list queue;	 /* no worker could be made for these */
	long nqueued;
	long threads_live;
	long threads_created;
	long tasks_started;
	long tasks_live;
	int fail_creates; /* test hook */
	long waited;	  /* tasks queued since the queue was last empty */
	/* The keeper. */
	pthread_t keeper;
	pid_t keeper_os_tid;
	bool keeper_running;
	bool keeper_retire;
	pthread_cond_t keeper_wake;
	bool keeper_cond_ready;
} pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.idle = TAILQ_HEAD_INITIALIZER(pool.idle),
	.queue = TAILQ_HEAD_INITIALIZER(pool.queue),
};

static void out_of_memory(const char *what)
{
	fprintf(stderr, "go: out of memory for %s\n", what);
	abort();
}

/* ---- groups ---------------------------------------------------------------- */

struct go_group *go_group_new(const char *prefix)
{
	struct go_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	strlcpy(g->prefix, prefix, sizeof(g->prefix));
	TAILQ_INIT(&g->tasks);
	if (cond_init_monotonic(&g->done) < 0) {
		free(g);
		return NULL;
	}
	return g;
}

void go_group_free(struct go_group *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&pool.mu);
	assert(g->live == 0);
	pthread_mutex_unlock(&pool.mu);
	pthread_cond_destroy(&g->done);
	free(g);
}

/* Lists the names of g's live tasks in why. Expects pool.mu held. */
static void name_live_tasks(struct go_group *g, char *why, size_t whylen)
{
	struct task *t;
	size_t len;

	len = (size_t)snprintf(why, whylen, "%ld task(s) still running:", g->live);
	TAILQ_FOREACH (t, &g->tasks, group_link) {
		if (len >= whylen)
			break;
		len += (size_t)snprintf(why + len, whylen - len, " %s", t->name);
	}
}

int go_group_wait(struct go_group *g, int timeout_ms, char *why, size_t whylen)
{
	struct timespec deadline = timespec_add_ms(mono_now(), timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&pool.mu);
	while (g->live > 0 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&g->done, &pool.mu, &deadline);
	if (g->live > 0)
		name_live_tasks(g, why, whylen);
	rc = g->live > 0 ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&pool.mu);
	return rc;
}

static long locked_read(const long *v)
{
	long x;

	pthread_mutex_lock(&pool.mu);
	x = *v;
	pthread_mutex_unlock(&pool.mu);
	return x;
}

long go_group_started(struct go_group *g)
{
	return locked_read(&g->started);
}

long go_group_live(struct go_group *g)
{
	return locked_read(&g->live);
}

long go_tasks_started(void)
{
	return locked_read(&pool.tasks_started);
}

long go_tasks_live(void)
{
	return locked_read(&pool.tasks_live);
}

long go_threads_created(void)
{
	return locked_read(&pool.threads_created);
}

long go_threads_live(void)
{
	return locked_read(&pool.threads_live);
}

void go_fail_thread_creates(int n)
{
	pthread_mutex_lock(&pool.mu);
	pool.fail_creates = n;
	pthread_mutex_unlock(&pool.mu);
}

/* ---- the queue ----------------------------------------------------------- */

/* Says so once the queue has emptied. Expects pool.mu held. */
static void note_queue_empty(void)
{
	if (pool.nqueued == 0 && pool.waited > 0) {
		log_printf("go: threads start again (%ld tasks waited for one)", pool.waited);
		pool.waited = 0;
	}
}

/* Takes the first queued task. Expects pool.mu held and the queue not empty. */
static struct task *dequeue(void)
{
	struct task *t = TAILQ_FIRST(&pool.queue);

	TAILQ_REMOVE(&pool.queue, t, queue_link);
	pool.nqueued--;
	return t;
}

/* ---- workers --------------------------------------------------------------- */

/* Marks t returned and frees it. Expects pool.mu held. */
static void task_done(struct task *t)
{
	struct go_group *g = t->g;

	TAILQ_REMOVE(&g->tasks, t, group_link);
	pool.tasks_live--;
	if (--g->live == 0)
		pthread_cond_broadcast(&g->done);
	free(t);
}

/* The next task for w: a queued one, or one handed over while parked. */
static struct task *next_task(struct worker *w)
{
	struct task *t;

	if (pool.nqueued > 0) {
		t = dequeue();
		note_queue_empty();
		return t;
	}
	TAILQ_INSERT_HEAD(&pool.idle, w, link);
	while (!w->task && !w->retire)
		pthread_cond_wait(&w->wake, &pool.mu);
	/* go() or go_pool_retire_idle took w off the idle list. */
	t = w->task;
	w->task = NULL;
	return t;
}

/*
 * Names the worker after its task, as gdb and /proc show it. A parked
 * worker keeps its last task's name (renaming it costs a system call per
 * task); go_pool_is_parked tells the leak check it is the runtime's.
 */
static void name_worker(struct worker *w, const char *name)
{
	if (strcmp(w->name, name) == 0)
		return;
	strlcpy(w->name, name, sizeof(w->name));
	pthread_setname_np(pthread_self(), name);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct task *t;

	pthread_mutex_lock(&pool.mu);
	w->os_tid = gettid();
	t = w->task;
	w->task = NULL;
	while (t) {
		pthread_mutex_unlock(&pool.mu);
		name_worker(w, t->name);
		t->fn(t->arg);
		pthread_mutex_lock(&pool.mu);
		task_done(t);
		t = next_task(w);
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

static int pool_attr_init(void)
{
	int rc;

	if (pool.attr_ready)
		return 0;
	rc = pthread_attr_init(&pool.attr);
	if (rc)
		return rc;
	/* Only a smaller stack is lost if this fails. */
	(void)pthread_attr_setstacksize(&pool.attr, WORKER_STACK_SIZE);
	pool.attr_ready = true;
	return 0;
}

/*
 * Makes a worker that starts with t. Expects pool.mu held; drops it across
 * pthread_create (which, under TSan, waits for the new thread to run).
 * Returns 0 or pthread_create's error.
 */
static int new_worker(struct task *t)
{
	struct worker *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		out_of_memory("a worker");
	if (pool.fail_creates > 0) {
		pool.fail_creates--;
		free(w);
		return EAGAIN;
	}
	rc = pool_attr_init();
	if (!rc)
		rc = -cond_init_monotonic(&w->wake);
	if (rc) {
		free(w);
		return rc;
	}
	w->task = t;
	pool.threads_live++;
	pthread_mutex_unlock(&pool.mu);
	rc = pthread_create(&w->tid, &pool.attr, worker_main, w);
	pthread_mutex_lock(&pool.mu);
	if (rc) {
		pool.threads_live--;
		pthread_cond_destroy(&w->wake);
		free(w);
		return rc;
	}
	pool.threads_created++;
	return 0;
}

/* ---- the keeper ------------------------------------------------------------ */

/* Makes workers for queued tasks while it can. Expects pool.mu held. */
static void drain_queue(void)
{
	while (pool.nqueued > 0) {
		struct task *t = dequeue();

		if (new_worker(t)) {
			TAILQ_INSERT_HEAD(&pool.queue, t, queue_link);
			pool.nqueued++;
			return;
		}
	}
	note_queue_empty();
}

static void *keeper_main(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "go-keeper");
	pthread_mutex_lock(&pool.mu);
	pool.keeper_os_tid = gettid();
	while (!pool.keeper_retire) {
		struct timespec retry = timespec_add_ms(mono_now(), KEEPER_RETRY_MS);

		if (pool.nqueued == 0)
			pthread_cond_wait(&pool.keeper_wake, &pool.mu);
		else
			pthread_cond_timedwait(&pool.keeper_wake, &pool.mu, &retry);
		drain_queue();
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

/* Starts the keeper if it is not running. Expects pool.mu held. */
static void start_keeper(void)
{
	int rc;

	if (pool.keeper_running)
		return;
	if (!pool.keeper_cond_ready) {
		if (cond_init_monotonic(&pool.keeper_wake) < 0)
			return;
		pool.keeper_cond_ready = true;
	}
	if (pool_attr_init())
		return;
	pool.keeper_retire = false;
	/* Under pool.mu: the keeper only takes it once it runs. */
	rc = pthread_create(&pool.keeper, &pool.attr, keeper_main, NULL);
	if (rc)
		fprintf(stderr, "go: cannot start the pool's keeper: %s\n", strerror(rc));
	else
		pool.keeper_running = true;
}

/* ---- go -------------------------------------------------------------------- */

static struct task *new_task(struct go_group *g, void (*fn)(void *), void *arg,
			     const char *name_fmt, va_list ap)
{
	struct task *t = calloc(1, sizeof(*t));
	int n;

	if (!t)
		out_of_memory("a task");
	t->fn = fn;
	t->arg = arg;
	t->g = g;
	n = snprintf(t->name, sizeof(t->name), "%s-", g->prefix);
	if (n > 0 && (size_t)n < sizeof(t->name))
		vsnprintf(t->name + n, sizeof(t->name) - (size_t)n, name_fmt, ap);
	return t;
}

/* Hands t to a worker, or queues it for the keeper. Expects pool.mu held. */
static void schedule(struct task *t)
{
	struct worker *w = TAILQ_FIRST(&pool.idle);

	if (w) {
		TAILQ_REMOVE(&pool.idle, w, link);
		w->task = t;
		pthread_cond_signal(&w->wake);
		return;
	}
	start_keeper();
	if (pool.nqueued == 0) {
		int rc = new_worker(t);

		if (rc == 0)
			return;
		log_printf("go: cannot start a thread for %s: %s; tasks wait for one", t->name,
			   strerror(rc));
	}
	/* FIFO behind the others: no task overtakes one queued before it. */
	TAILQ_INSERT_TAIL(&pool.queue, t, queue_link);
	pool.waited++;
	if (pool.nqueued++ == 0 && pool.keeper_running)
		pthread_cond_signal(&pool.keeper_wake);
}

void go(struct go_group *g, void (*fn)(void *), void *arg, const char *name_fmt, ...)
{
	struct task *t;
	va_list ap;

	va_start(ap, name_fmt);
	t = new_task(g, fn, arg, name_fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&pool.mu);
	g->started++;
	g->live++;
	TAILQ_INSERT_TAIL(&g->tasks, t, group_link);
	pool.tasks_started++;
	pool.tasks_live++;
	schedule(t);
	pthread_mutex_unlock(&pool.mu);
}

bool go_pool_is_parked(pid_t tid)
{
	struct worker *w;
	bool parked = false;

	pthread_mutex_lock(&pool.mu);
	TAILQ_FOREACH (w, &pool.idle, link)
		parked = parked || w->os_tid == tid;
	/* The keeper is the pool's own, like a parked worker. */
	parked = parked || (pool.keeper_running && pool.keeper_os_tid == tid);
	pthread_mutex_unlock(&pool.mu);
	return parked;
}

/* ---- retiring -------------------------------------------------------------- */

static void retire_keeper(void)
{
	bool running;

	pthread_mutex_lock(&pool.mu);
	running = pool.keeper_running && pool.nqueued == 0;
	if (running) {
		pool.keeper_retire = true;
		pthread_cond_signal(&pool.keeper_wake);
	}
	pthread_mutex_unlock(&pool.mu);
	if (!running)
		return;
	pthread_join(pool.keeper, NULL);
	pthread_mutex_lock(&pool.mu);
	pool.keeper_running = false;
	pthread_mutex_unlock(&pool.mu);
}

void go_pool_retire_idle(void)
{
	struct worker_list retiring = TAILQ_HEAD_INITIALIZER(retiring);
	struct worker *w, *tmp;

	pthread_mutex_lock(&pool.mu);
	while ((w = TAILQ_FIRST(&pool.idle))) {
		TAILQ_REMOVE(&pool.idle, w, link);
		w->retire = true;
		pthread_cond_signal(&w->wake);
		TAILQ_INSERT_TAIL(&retiring, w, link);
	}
	pthread_mutex_unlock(&pool.mu);

	TAILQ_FOREACH_SAFE (w, &retiring, link, tmp) {
		pthread_join(w->tid, NULL);
		pthread_cond_destroy(&w->wake);
		free(w);
		pthread_mutex_lock(&pool.mu);
		pool.threads_live--;
		pthread_mutex_unlock(&pool.mu);
	}
	retire_keeper();
}
