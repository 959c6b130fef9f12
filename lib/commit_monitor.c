/*
 * DESIGN: a commit-safety monitor for tests, beside lib/testing.c's
 * election-safety monitor. No threads. m->mu guards all of it and nothing
 * else is taken under it; it is called from any thread (the harness's
 * commit collectors) and read from the test's thread.
 *
 * It keeps the first delivery at every index (term and command bytes) in
 * an array that grows with the highest index delivered, and per server the
 * next index it must deliver. Memory: one record per index delivered,
 * which is what the harness keeps anyway.
 */
#include "lib/commit_monitor.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testing.h"

/* The first delivery at one index. */
struct delivery {
	int id;
	int term;
	size_t len;
	unsigned char *cmd;
};

struct commit_monitor {
	pthread_mutex_t mu;
	int n;
	int *next_index;	/* per server: the index it must deliver next */
	struct delivery *first; /* per index, the first delivery; nfirst of them */
	size_t nfirst, cap;
	struct verdict verdict;
};

struct commit_monitor *commit_monitor_new(int n)
{
	struct commit_monitor *m = calloc(1, sizeof(*m));

	if (!m || n <= 0 || !(m->next_index = calloc((size_t)n, sizeof(int)))) {
		free(m);
		return NULL;
	}
	m->n = n;
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void commit_monitor_free(struct commit_monitor *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfirst; i++)
		free(m->first[i].cmd);
	free(m->first);
	free(m->next_index);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* Records the first delivery at index (== m->nfirst). Expects m->mu held. */
static bool record_first(struct commit_monitor *m, int id, int term, const void *cmd, size_t len)
{
	struct delivery *d;

	if (m->nfirst == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct delivery *p = reallocarray(m->first, cap, sizeof(*p));

		if (!p)
			return false;
		m->first = p;
		m->cap = cap;
	}
	d = &m->first[m->nfirst];
	d->cmd = malloc(len ? len : 1);
	if (!d->cmd)
		return false;
	if (len)
		memcpy(d->cmd, cmd, len);
	d->id = id;
	d->term = term;
	d->len = len;
	m->nfirst++;
	return true;
}

void commit_delivered(struct commit_monitor *m, int id, int index, int term, const void *cmd,
		      size_t len)
{
	pthread_mutex_lock(&m->mu);
	if (id < 0 || id >= m->n) {
		verdict_record(&m->verdict, "delivery from unknown server %d", id);
		goto out_unlock;
	}
	if (index != m->next_index[id]) {
		verdict_record(&m->verdict, "server %d delivered index %d, expected %d (%s)", id,
			       index, m->next_index[id],
			       index < m->next_index[id] ? "a repeat" : "a gap");
		goto out_unlock;
	}
	m->next_index[id]++;
	if ((size_t)index < m->nfirst) {
		const struct delivery *d = &m->first[index];

		if (d->term != term || d->len != len || (len && memcmp(d->cmd, cmd, len) != 0))
			verdict_record(&m->verdict,
				       "servers %d and %d delivered different entries at index %d "
				       "(terms %d and %d)",
				       d->id, id, index, d->term, term);
	} else if (!record_first(m, id, term, cmd, len)) {
		verdict_record(&m->verdict, "server %d: cannot record index %d (out of memory)", id,
			       index);
	}
out_unlock:
	pthread_mutex_unlock(&m->mu);
}

bool commit_violation(struct commit_monitor *m, char *why, size_t whylen)
{
	bool violated;

	pthread_mutex_lock(&m->mu);
	violated = verdict_read(&m->verdict, why, whylen);
	pthread_mutex_unlock(&m->mu);
	return violated;
}

void commit_monitor_reset_violation(struct commit_monitor *m)
{
	pthread_mutex_lock(&m->mu);
	m->verdict = (struct verdict){ .violated = false };
	pthread_mutex_unlock(&m->mu);
}
