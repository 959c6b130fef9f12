/*
 * Channels: Go's chan T, unbuffered or buffered, with close. Elements are
 * copied in and out by value (elem_size bytes).
 *
 * Beyond Go: every blocking operation can also end at a deadline, or when
 * a "cancel" flag is set and chan_interrupt is called (a two-case select:
 * the channel or a stop signal), so that no send or receive need block
 * forever once its reader or writer is gone.
 */
#ifndef LIB_CHAN_H
#define LIB_CHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct chan;

/* make(chan T, capacity); NULL only if out of memory. */
struct chan *chan_new(size_t elem_size, size_t capacity);
/* Frees ch; nothing may be waiting on it. Elements left in it are dropped. */
void chan_free(struct chan *ch);

/* close(ch): receivers get what is buffered, then -EPIPE. Closing twice is a no-op. */
void chan_close(struct chan *ch);

/*
 * ch <- *elem. Returns 0 once the element is in the buffer (unbuffered: once
 * a receiver has taken it), -EPIPE if ch is closed (Go would panic),
 * -ETIMEDOUT at deadline (NULL: none), -ECANCELED if *cancel is set (NULL:
 * no flag). An element not delivered is taken back.
 */
int chan_send(struct chan *ch, const void *elem, const struct timespec *deadline,
	      const atomic_bool *cancel);
/* select { case ch <- *elem: default: }: 0, -EAGAIN or -EPIPE. */
int chan_try_send(struct chan *ch, const void *elem);

/*
 * *out = <-ch. Returns 0, -EPIPE if ch is closed and empty, -ETIMEDOUT or
 * -ECANCELED as chan_send.
 */
int chan_recv(struct chan *ch, void *out, const struct timespec *deadline,
	      const atomic_bool *cancel);

/* Wakes every waiter on ch so that it looks at its cancel flag again. */
void chan_interrupt(struct chan *ch);

/* len(ch). */
size_t chan_len(struct chan *ch);

#endif
