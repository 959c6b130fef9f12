/*
 * DESIGN: stands in for Go's channels. No threads. ch->mu guards all of a
 * channel; ch->cond is broadcast on every change (an element in or out, a
 * close, an interrupt), and every waiter loops on its own predicate. A
 * channel has few waiters here (a commit sender and its reader, say), so a
 * broadcast wakes only them. A waiter yields the CPU a few times (with the
 * lock dropped) before it sleeps on the cond: see CHAN_YIELDS.
 *
 * An unbuffered channel is a buffer of one slot whose sender waits until a
 * receiver has taken its element: nrecv counts elements taken, and a
 * sender knows its element by its ticket (the value of nsent it got).
 */
#include "lib/chan.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"

struct chan {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	size_t elem_size;
	size_t capacity; /* 0: unbuffered */
	size_t slots;	 /* max(capacity, 1) */
	size_t head;	 /* the oldest element */
	size_t count;
	uint64_t nsent; /* elements ever put in */
	uint64_t nrecv; /* elements ever taken out */
	bool closed;
	unsigned char *buf;
};

struct chan *chan_new(size_t elem_size, size_t capacity)
{
	struct chan *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	ch->elem_size = elem_size;
	ch->capacity = capacity;
	ch->slots = capacity ? capacity : 1;
	ch->buf = calloc(ch->slots, elem_size ? elem_size : 1);
	if (!ch->buf || cond_init_monotonic(&ch->cond) < 0) {
		free(ch->buf);
		free(ch);
		return NULL;
	}
	pthread_mutex_init(&ch->mu, NULL);
	return ch;
}

void chan_free(struct chan *ch)
{
	if (!ch)
		return;
	pthread_cond_destroy(&ch->cond);
	pthread_mutex_destroy(&ch->mu);
	free(ch->buf);
	free(ch);
}

void chan_close(struct chan *ch)
{
	pthread_mutex_lock(&ch->mu);
	ch->closed = true;
	pthread_cond_broadcast(&ch->cond);
	pthread_mutex_unlock(&ch->mu);
}

void chan_interrupt(struct chan *ch)
{
	pthread_mutex_lock(&ch->mu);
	pthread_cond_broadcast(&ch->cond);
	pthread_mutex_unlock(&ch->mu);
}

size_t chan_len(struct chan *ch)
{
	size_t n;

	pthread_mutex_lock(&ch->mu);
	n = ch->capacity ? ch->count : 0;
	pthread_mutex_unlock(&ch->mu);
	return n;
}

static unsigned char *slot(struct chan *ch, size_t i)
{
	return ch->buf + ((ch->head + i) % ch->slots) * ch->elem_size;
}

/*
 * How many times a waiter yields the CPU, with ch->mu dropped, before it
 * sleeps on ch->cond. A hand-off on an unbuffered channel is a round trip
 * (put, take): with both sides asleep between elements, each element costs
 * two futex wake-ups, and a commit sender delivering 5,000 entries spent
 * 20-50 us on each (part2-bench throughput: 15,000 commits/s; with the
 * yields, 49,000, as Go's). A waiter that yields a few times sees the
 * other side's next step without sleeping; one that waits long (an idle
 * reader) pays the yields once. Busy-waiting instead of yielding was
 * tried: on 2 cores the other side is often not running, and throughput
 * fell to 6,000-17,000.
 */
#define CHAN_YIELDS 4

/*
 * Waits once, unless the wait is over: 0 to go on waiting, -ETIMEDOUT or
 * -ECANCELED. The first CHAN_YIELDS waits of a caller (*yields counts them)
 * yield instead of sleeping on ch->cond. Expects ch->mu held.
 */
static int wait_once(struct chan *ch, const struct timespec *deadline, const atomic_bool *cancel,
		     int *yields)
{
	if (cancel && atomic_load(cancel))
		return -ECANCELED;
	if (*yields < CHAN_YIELDS) {
		if (deadline && timespec_reached(*deadline))
			return -ETIMEDOUT;
		(*yields)++;
		pthread_mutex_unlock(&ch->mu);
		sched_yield();
		pthread_mutex_lock(&ch->mu);
		return 0;
	}
	if (!deadline) {
		pthread_cond_wait(&ch->cond, &ch->mu);
		return 0;
	}
	if (timespec_reached(*deadline))
		return -ETIMEDOUT;
	pthread_cond_timedwait(&ch->cond, &ch->mu, deadline);
	return 0;
}

/* Appends *elem. Expects ch->mu held and a free slot. Returns its ticket. */
static uint64_t put(struct chan *ch, const void *elem)
{
	memcpy(slot(ch, ch->count), elem, ch->elem_size);
	ch->count++;
	pthread_cond_broadcast(&ch->cond);
	return ch->nsent++;
}

/* Takes the oldest element into *out. Expects ch->mu held and count > 0. */
static void take(struct chan *ch, void *out)
{
	memcpy(out, slot(ch, 0), ch->elem_size);
	ch->head = (ch->head + 1) % ch->slots;
	ch->count--;
	ch->nrecv++;
	pthread_cond_broadcast(&ch->cond);
}

/*
 * Unbuffered: waits until the element with this ticket is taken, or takes
 * it back (it is still the one in the slot) when the wait ends otherwise.
 */
static int wait_taken(struct chan *ch, uint64_t ticket, const struct timespec *deadline,
		      const atomic_bool *cancel)
{
	int rc = 0, yields = 0;

	while (ch->nrecv <= ticket && !ch->closed && rc == 0)
		rc = wait_once(ch, deadline, cancel, &yields);
	if (ch->nrecv > ticket)
		return 0;
	/* Not taken: ours is the only element of the one slot. */
	ch->count = 0;
	ch->nsent--;
	pthread_cond_broadcast(&ch->cond);
	return ch->closed ? -EPIPE : rc;
}

int chan_send(struct chan *ch, const void *elem, const struct timespec *deadline,
	      const atomic_bool *cancel)
{
	uint64_t ticket;
	int rc = 0, yields = 0;

	pthread_mutex_lock(&ch->mu);
	while (!ch->closed && ch->count == ch->slots && rc == 0)
		rc = wait_once(ch, deadline, cancel, &yields);
	if (ch->closed)
		rc = -EPIPE;
	if (rc == 0) {
		ticket = put(ch, elem);
		if (ch->capacity == 0)
			rc = wait_taken(ch, ticket, deadline, cancel);
	}
	pthread_mutex_unlock(&ch->mu);
	return rc;
}

int chan_try_send(struct chan *ch, const void *elem)
{
	int rc = 0;

	pthread_mutex_lock(&ch->mu);
	if (ch->closed)
		rc = -EPIPE;
	else if (ch->capacity == 0 || ch->count == ch->slots)
		/* Unbuffered: Go's select would need a receiver already waiting. */
		rc = -EAGAIN;
	else
		put(ch, elem);
	pthread_mutex_unlock(&ch->mu);
	return rc;
}

int chan_recv(struct chan *ch, void *out, const struct timespec *deadline,
	      const atomic_bool *cancel)
{
	int rc = 0, yields = 0;

	pthread_mutex_lock(&ch->mu);
	while (ch->count == 0 && !ch->closed && rc == 0)
		rc = wait_once(ch, deadline, cancel, &yields);
	if (ch->count > 0)
		take(ch, out);
	else if (rc == 0)
		rc = -EPIPE;
	pthread_mutex_unlock(&ch->mu);
	return rc;
}
