/*
 * Commit-safety monitor: what Go's harness does not check about the
 * entries every server delivers on its commit channel (Raft's State Machine
 * Safety, section 5.4.3 of the paper):
 *   - no two servers ever deliver different commands (or terms) at the same
 *     index, and an entry once delivered is never contradicted later;
 *   - each server delivers indices in order from 0, with no gap and no
 *     repeat.
 * Commands are opaque bytes, compared byte for byte. Thread-safe; the
 * harness feeds it from every commit collector. Checks fail a test only
 * from the test's own thread (lib/testing.h): a violation is recorded here,
 * and the test thread asks commit_violation.
 */
#ifndef LIB_COMMIT_MONITOR_H
#define LIB_COMMIT_MONITOR_H

#include <stdbool.h>
#include <stddef.h>

struct commit_monitor;

/* A monitor for servers 0 .. n-1; NULL only if out of memory. */
struct commit_monitor *commit_monitor_new(int n);
void commit_monitor_free(struct commit_monitor *m);

/* Server id delivered the command cmd (len bytes) of term at index. */
void commit_delivered(struct commit_monitor *m, int id, int index, int term, const void *cmd,
		      size_t len);

/* true if a violation was seen; the first one's description goes to why. */
bool commit_violation(struct commit_monitor *m, char *why, size_t whylen);

/* Forgets a violation seen so far (for a test that provokes one on purpose). */
void commit_monitor_reset_violation(struct commit_monitor *m);

#endif
