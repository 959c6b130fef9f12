/*
 * Time, as Go's time package gives it to the Go code: a monotonic clock,
 * deadlines and sleeps. Every condition variable in raft-c waits on
 * CLOCK_MONOTONIC, so that a change of the wall clock moves no timer.
 */
#ifndef LIB_CLOCK_H
#define LIB_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

struct timespec mono_now(void);
struct timespec timespec_add_ms(struct timespec t, long ms);
struct timespec timespec_add_ns(struct timespec t, long long ns);
/* a - b, in nanoseconds. */
long long timespec_diff_ns(struct timespec a, struct timespec b);
/* Milliseconds since `since` (negative if it is in the future). */
long elapsed_ms(struct timespec since);
bool timespec_reached(struct timespec deadline);
/* pthread_cond_init with CLOCK_MONOTONIC; 0 or a negative errno code. */
int cond_init_monotonic(pthread_cond_t *cond);
/* Go's time.Sleep: sleeps ms milliseconds, resuming after signals. */
void sleep_ms(int ms);

#endif
