/*
 * Test harness: a cluster of servers on loopback, fully connected, with
 * checks that fail the running cmocka test. C twin of part1/testharness.go.
 * Checks fail a test only from the test's own thread (see lib/testing.h).
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/clock.h"	 /* sleep_ms */
#include "lib/testing.h" /* the safety monitor, the leak check */

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
/* sleepMs is lib/clock.h's sleep_ms. */

/* ---- more helpers ---- */

/*
 * harness_new without failing the test: NULL, with the reason in why, if a
 * server cannot start or connect; the servers started so far have then
 * been shut down.
 */
harness_t *harness_try_new(int n, char *why, size_t whylen);

struct server *harness_server(harness_t *h, int id);
struct cm *harness_cm(harness_t *h, int id);
/*
 * CheckSingleLeader with another number of tries, 150 ms apart: the tests
 * ported from part3/raft/raft_test.go use part3's harness, which tries 8
 * times where part1's tries 5.
 */
int harness_check_single_leader_tries(harness_t *h, int tries, int *term);
/* Fails the running test if the safety monitor has seen a violation. */
void harness_check_safety(harness_t *h);
/*
 * Polls every millisecond until some connected server reports Leader (true,
 * *id and *term set) or timeout_ms pass (false). Fails nothing.
 */
bool harness_wait_for_leader(harness_t *h, int timeout_ms, int *id, int *term);

/* Go's leaktest.CheckTimeout(t, 100*time.Millisecond). */
#define HARNESS_LEAK_TIMEOUT_MS LEAK_TIMEOUT_MS

/*
 * The end of every test (its teardown): shuts down h, if not NULL, then
 * fails the test if a thread started since before was taken has not exited
 * within 100 ms (Go's leaktest, in every test). Frees before.
 */
void harness_end_test(harness_t *h, struct task_set *before);

/* The main() of a test program: lib/testing.h's go_test_main. */
int harness_run_tests(const char *prog, const struct CMUnitTest *tests, size_t ntests, int argc,
		      char **argv);

#endif
