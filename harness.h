/*
 * Test harness: a cluster of servers on loopback, fully connected, with
 * checks that fail the running cmocka test. C twin of part1/testharness.go.
 *
 * Checks fail a test only from the test's own thread (cmocka ends the whole
 * process when asked to fail on another). Worker threads record what they
 * saw (the safety monitor below) and the test thread reports it.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct server;
struct cm;
struct CMUnitTest;

typedef struct harness harness_t;

harness_t *harness_new(int n);			    /* n servers, fully connected, started */
void harness_shutdown(harness_t *h);		    /* stop, join every thread, check, free */
void harness_disconnect_peer(harness_t *h, int id); /* cut id off from all others */
void harness_reconnect_peer(harness_t *h, int id);
int harness_check_single_leader(harness_t *h, int *term);
void harness_check_no_leader(harness_t *h);
void harness_report(harness_t *h, int id, int *term, bool *is_leader);
void tlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sleep_ms(int ms);

/* ---- more helpers ---- */

struct server *harness_server(harness_t *h, int id);
struct cm *harness_cm(harness_t *h, int id);
/* Fails the running test if the safety monitor has seen a violation. */
void harness_check_safety(harness_t *h);
/*
 * Polls every millisecond until some connected server reports Leader (true,
 * *id and *term set) or timeout_ms pass (false). Fails nothing.
 */
bool harness_wait_for_leader(harness_t *h, int timeout_ms, int *id, int *term);

/*
 * Election-safety monitor: remembers every (term, leader) and every term
 * change; a second leader in one term or a term going down is a violation.
 * Thread-safe; the harness feeds it from every CM, under the CM's lock.
 */
struct safety_monitor;
struct safety_monitor *safety_monitor_new(int n);
void safety_monitor_free(struct safety_monitor *m);
void safety_term_changed(struct safety_monitor *m, int id, int old_term, int new_term);
void safety_became_leader(struct safety_monitor *m, int id, int term);
/* true if a violation was seen; its description goes to why. */
bool safety_violation(struct safety_monitor *m, char *why, size_t whylen);

/*
 * Leak check: the threads of this process, by /proc/self/task. The check
 * polls until every thread not in the snapshot is gone, or timeout_ms pass;
 * then it names each leaked thread in why and returns false.
 */
struct task_set {
	int n;
	pid_t *tids;
};
int task_set_snapshot(struct task_set *set);
void task_set_free(struct task_set *set);
bool task_set_wait_back(const struct task_set *before, int timeout_ms, char *why, size_t whylen);

/* Go's leaktest.CheckTimeout(t, 100*time.Millisecond). */
#define HARNESS_LEAK_TIMEOUT_MS 100

/*
 * The end of every test (its teardown): shuts down h, if not NULL, then
 * fails the test if a thread started since before was taken has not exited
 * within 100 ms (Go's leaktest, in every test). Frees before.
 */
void harness_end_test(harness_t *h, struct task_set *before);

/*
 * The main() of a cmocka test program, with go test's flags: -run REGEX
 * (POSIX extended, unanchored: it selects every test whose name matches)
 * and -count N (runs the selection N times). Returns the exit status: 0
 * if every test passed, 1 if one failed, 2 on a bad flag or pattern.
 */
int harness_run_tests(const char *prog, const struct CMUnitTest *tests, size_t ntests, int argc,
		      char **argv);

#endif
