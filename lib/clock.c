/*
 * DESIGN: stands in for the parts of Go's time package the Go code uses
 * (time.Now for durations, time.Sleep). No threads, no locks.
 */
#include "lib/clock.h"

#include <errno.h>

#define NS_PER_S 1000000000LL

struct timespec mono_now(void)
{
	struct timespec t;

	/* Cannot fail with a valid clock id and pointer. */
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

struct timespec timespec_add_ns(struct timespec t, long long ns)
{
	long long total = (long long)t.tv_nsec + ns % NS_PER_S;

	t.tv_sec += (time_t)(ns / NS_PER_S);
	if (total >= NS_PER_S) {
		t.tv_sec++;
		total -= NS_PER_S;
	} else if (total < 0) {
		t.tv_sec--;
		total += NS_PER_S;
	}
	t.tv_nsec = (long)total;
	return t;
}

struct timespec timespec_add_ms(struct timespec t, long ms)
{
	return timespec_add_ns(t, (long long)ms * 1000000LL);
}

long long timespec_diff_ns(struct timespec a, struct timespec b)
{
	return (long long)(a.tv_sec - b.tv_sec) * NS_PER_S + (a.tv_nsec - b.tv_nsec);
}

long elapsed_ms(struct timespec since)
{
	return (long)(timespec_diff_ns(mono_now(), since) / 1000000LL);
}

bool timespec_reached(struct timespec deadline)
{
	return timespec_diff_ns(mono_now(), deadline) >= 0;
}

int cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc = pthread_condattr_init(&attr);

	if (rc)
		return -rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!rc)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return -rc;
}

void sleep_ms(int ms)
{
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}
