/*
 * Go's testing package as the Go tests use it, and the checks Go gets from
 * elsewhere: the go test runner (-run, -count) over cmocka, the thread leak
 * check (fortytw2/leaktest), and an election-safety monitor that Go's
 * harness does not have.
 *
 * Checks fail a test only from the test's own thread: cmocka ends the
 * whole process when asked to fail on another. Worker threads record what
 * they saw (the safety monitor) and the test thread reports it.
 */
#ifndef LIB_TESTING_H
#define LIB_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct CMUnitTest;

/*
 * The main() of a cmocka test program, with go test's flags: -run REGEX
 * (POSIX extended, unanchored: every test whose name matches), -skip REGEX
 * (but not those that match it, as go test -skip since Go 1.20) and
 * -count N (runs the selection N times), or -list REGEX (prints the names of the
 * tests that match, one per line, and runs none). Returns the exit status:
 * 0 if every test passed, 1 if one failed, 2 on a bad flag or pattern.
 */
int go_test_main(const char *prog, const struct CMUnitTest *tests, size_t ntests, int argc,
		 char **argv);

/*
 * Leak check: the threads of this process, by /proc/self/task. The check
 * polls until every thread not in the snapshot is gone, or timeout_ms pass;
 * then it names each leaked thread in why and returns false. Parked pool
 * workers and the pool's keeper are the runtime's, not leaks (Go's leaktest
 * counts goroutines, not the threads under them); a task still running is
 * one, named as its task.
 */
struct task_set {
	int n;
	pid_t *tids;
};
int task_set_snapshot(struct task_set *set);
void task_set_free(struct task_set *set);
bool task_set_wait_back(const struct task_set *before, int timeout_ms, char *why, size_t whylen);

/* Go's leaktest.CheckTimeout(t, 100*time.Millisecond). */
#define LEAK_TIMEOUT_MS 100

/*
 * A cmocka setup and teardown that wrap a test in the leak check: the
 * snapshot goes in *state, and the teardown fails the test, naming the
 * threads, if any outlives it by LEAK_TIMEOUT_MS.
 */
int leak_check_setup(void **state);
int leak_check_teardown(void **state);

/*
 * What a safety monitor saw wrong: the first violation only, as it is the
 * one that explains the rest. The monitor's own lock guards it.
 */
struct verdict {
	bool violated;
	char why[256];
};
/* Records a violation, unless one is recorded already. */
void verdict_record(struct verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* true if a violation is recorded; its description goes to why. */
bool verdict_read(const struct verdict *v, char *why, size_t whylen);

/*
 * Go: os.RemoveAll, as the tests and benches clean up their temporary
 * directories: removes path and everything below it (symbolic links are
 * removed, not followed). 0, or -errno of the first failure.
 */
int remove_all(const char *path);

/*
 * Election-safety monitor: remembers every (term, leader) and every term
 * change; a second leader in one term or a term going down is a violation.
 * Sparse in terms: a hostile term of 2^31-1 costs one entry. Thread-safe;
 * the harness feeds it from every CM, under the CM's lock.
 */
struct safety_monitor;
struct safety_monitor *safety_monitor_new(int n);
void safety_monitor_free(struct safety_monitor *m);
void safety_term_changed(struct safety_monitor *m, int id, int old_term, int new_term);
void safety_became_leader(struct safety_monitor *m, int id, int term);
/* true if a violation was seen; its description goes to why. */
bool safety_violation(struct safety_monitor *m, char *why, size_t whylen);

#endif
