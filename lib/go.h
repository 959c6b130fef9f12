/*
 * Goroutines: Go's `go` statement and a sync.WaitGroup per server.
 *
 * go(g, fn, arg, "ae>%d", peer) runs fn(arg) on a pool of worker threads,
 * as the Go runtime runs goroutines on its Ms. Like Go's `go` it cannot
 * fail: the only fatal error is running out of memory (a message, then
 * abort). Every task has a name ("s2-ae>1": the group's prefix and the
 * name given), which its worker thread carries while it runs, so a leaked
 * task is named by the leak check and by gdb.
 *
 * A group is the set of tasks one server started; shutdown waits for it.
 */
#ifndef LIB_GO_H
#define LIB_GO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct go_group;

/* Task names are at most 15 characters (pthread_setname_np); longer ones are cut. */
#define GO_NAME_SIZE 16

/* A group whose tasks are named "<prefix>-<name>". NULL only if out of memory. */
struct go_group *go_group_new(const char *prefix);
/*
 * Frees g. Its tasks must all have finished (go_group_wait returned 0): a
 * group whose wait timed out is left allocated, since its tasks use it.
 */
void go_group_free(struct go_group *g);

void go(struct go_group *g, void (*fn)(void *), void *arg, const char *name_fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Waits until every task of g has returned, or timeout_ms pass. Returns 0,
 * or -ETIMEDOUT with the names of the tasks still running in why.
 */
int go_group_wait(struct go_group *g, int timeout_ms, char *why, size_t whylen);

/* Tasks started in g so far, and those still running or queued. */
long go_group_started(struct go_group *g);
long go_group_live(struct go_group *g);

/* Process-wide: tasks started, tasks live, worker threads ever created. */
long go_tasks_started(void);
long go_tasks_live(void);
long go_threads_created(void);
/* Worker threads now alive (running a task or parked). */
long go_threads_live(void);

/*
 * true if tid is a parked worker or the pool's keeper: threads of the
 * runtime, not of any task (Go's leak check counts goroutines, not Ms).
 */
bool go_pool_is_parked(pid_t tid);

/*
 * Ends every parked worker and joins it, so that the process has no pool
 * thread left but those running a task. The leak check calls it first.
 */
void go_pool_retire_idle(void);

/*
 * TEST HOOK, fault injection: the next n worker creations fail as if
 * pthread_create had said EAGAIN (0 ends it). A task that finds no worker
 * then waits in the pool's queue until a worker is free or can be made.
 */
void go_fail_thread_creates(int n);

#endif
