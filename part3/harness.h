/*
 * Test harness: a cluster of servers on loopback, fully connected, each with
 * its map storage and a commit collector, and checks that fail the running
 * cmocka test. C twin of part3/raft/testharness.go.
 *
 * Thread safety: harness_submit_to_server, harness_report,
 * harness_commit_count, harness_commit_at, harness_rpc_count and the checks
 * may be called from any thread, while the test's thread (the one that
 * called harness_new) disconnects, reconnects, crashes and restarts
 * servers. A crashed server stays allocated (shut down, its CM Dead) until
 * harness_shutdown, so that a call on another thread never finds it freed. Checks fail a test
 * only from the test's own thread (see lib/testing.h): a check that fails on
 * another thread records its message, returns as Go's would, and the test
 * thread's next check (or harness_shutdown) fails the test with it.
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
struct cm_command;
struct storage;
struct CMUnitTest;

typedef struct harness harness_t;

/* n servers on loopback, fully connected, started; one commit collector per server. */
harness_t *harness_new(int n);
/*
 * harness_new without failing the test: NULL, with the reason in why, if a
 * server cannot start or connect; the servers started so far have then
 * been shut down.
 */
harness_t *harness_try_new(int n, char *why, size_t whylen);
/* Disconnect all, stop every server, close the commit channels, join every thread, free. */
void harness_shutdown(harness_t *h);
void harness_disconnect_peer(harness_t *h, int id); /* cut id off from all others */
void harness_reconnect_peer(harness_t *h, int id);
/* As CheckSingleLeader (8 tries, 150 ms apart): returns the id, stores the term. */
int harness_check_single_leader(harness_t *h, int *term);
void harness_check_no_leader(harness_t *h);
/* As CheckCommitted: returns nc, stores the index. */
int harness_check_committed(harness_t *h, int cmd, int *index);
void harness_check_committed_n(harness_t *h, int cmd, int n);
void harness_check_not_committed(harness_t *h, int cmd);
/*
 * As part 3's SubmitToServer: the entry's log index, or -1 when id is not
 * the leader. cmd goes in as its decimal digits (harness_command).
 */
int harness_submit_to_server(harness_t *h, int id, int cmd);
/* As CrashPeer: disconnect, shut the server down, keep its storage, clear its commits. */
void harness_crash_peer(harness_t *h, int id);
/* As RestartPeer: a new server on the kept storage, reconnected, then sleep_ms(20). */
void harness_restart_peer(harness_t *h, int id);
/* As PeerDropCallsAfterN / PeerDontDropCalls: server id's outgoing calls. */
void harness_peer_drop_calls_after_n(harness_t *h, int id, int n);
void harness_peer_dont_drop_calls(harness_t *h, int id);
/* RAFT_UNRELIABLE_RPC's drops and delays, switched on or off at run time for every server. */
void harness_set_unreliable(harness_t *h, bool on);
/* A thread-safe snapshot of server id's CM. */
void harness_report(harness_t *h, int id, int *term, bool *is_leader);
/* Commits server id has delivered so far. */
int harness_commit_count(harness_t *h, int id);
/* Its k-th commit (0-based); false if out of range. Any pointer may be NULL. */
bool harness_commit_at(harness_t *h, int id, int k, int *cmd, int *index, int *term);
/* RPC requests served by all servers since harness_new. */
long harness_rpc_count(harness_t *h);
void tlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* sleepMs is lib/clock.h's sleep_ms. */

/* ---- more helpers ---- */

struct server *harness_server(harness_t *h, int id);
struct cm *harness_cm(harness_t *h, int id);
/* Server id's storage (Go's h.storage[id]), kept across crashes. */
struct storage *harness_storage(harness_t *h, int id);
/*
 * Fails the running test if a safety monitor (election or commit) has seen
 * a violation, or a check on another thread has failed.
 */
void harness_check_safety(harness_t *h);
/*
 * Polls every millisecond until every connected server has delivered cmd
 * (true) or timeout_ms pass (false). Fails nothing.
 */
bool harness_wait_committed(harness_t *h, int cmd, int timeout_ms);
/* An int as a command: its decimal digits, as Go's %v prints the int. */
struct cm_command harness_command(int cmd);
/*
 * TEST HOOK: sends a forged entry on server id's commit channel, as if its
 * CM had delivered it (0, or a negative code at timeout). For the test that
 * shows the commit-safety monitor failing.
 */
int harness_forge_commit(harness_t *h, int id, int cmd, int index, int term);
/*
 * Takes the commit-safety monitor's violation, if any (true, its
 * description in why), so that the test which provoked it can pass.
 */
bool harness_take_commit_violation(harness_t *h, char *why, size_t whylen);
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
