/*
 * Tests of lib/, the runtime under every part: channels, goroutines and
 * their pool, the leak check and the safety monitor. Each test ends with
 * the leak check, as every part's tests do.
 *
 * Usage: lib_test [-run REGEX] [-count N]
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/chan.h"
#include "lib/clock.h"
#include "lib/go.h"
#include "lib/testing.h"

#define WAIT_MS 2000

static struct timespec in_ms(int ms)
{
	return timespec_add_ms(mono_now(), ms);
}

/* ---- channels --------------------------------------------------------------- */

struct pair {
	struct chan *ch;
	int value;
	int rc;
	atomic_bool cancel;
};

static void receive_one(void *arg)
{
	struct pair *p = arg;
	struct timespec deadline = in_ms(WAIT_MS);

	p->rc = chan_recv(p->ch, &p->value, &deadline, &p->cancel);
}

/* An unbuffered send returns once a receiver has the element, not before. */
static void TestChanUnbufferedHandsOver(void **state)
{
	struct go_group *g = go_group_new("t");
	struct pair p = { .ch = chan_new(sizeof(int), 0) };
	struct timespec soon = in_ms(20);
	int v = 7;
	char why[128];

	(void)state;
	assert_non_null(g);
	assert_non_null(p.ch);
	/* Nobody receives: the send times out and takes its element back. */
	assert_int_equal(chan_send(p.ch, &v, &soon, NULL), -ETIMEDOUT);
	soon = in_ms(20);
	assert_int_equal(chan_recv(p.ch, &v, &soon, NULL), -ETIMEDOUT);

	go(g, receive_one, &p, "recv");
	v = 42;
	assert_int_equal(chan_send(p.ch, &v, NULL, NULL), 0);
	assert_int_equal(go_group_wait(g, WAIT_MS, why, sizeof(why)), 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.value, 42);
	assert_int_equal(chan_try_send(p.ch, &v), -EAGAIN);
	chan_free(p.ch);
	go_group_free(g);
}

/* A buffered channel holds capacity elements; after close, what is left, then EPIPE. */
static void TestChanBufferedThenClosed(void **state)
{
	struct chan *ch = chan_new(sizeof(int), 2);
	int a = 1, b = 2, c = 3, out = 0;

	(void)state;
	assert_non_null(ch);
	assert_int_equal(chan_send(ch, &a, NULL, NULL), 0);
	assert_int_equal(chan_try_send(ch, &b), 0);
	assert_int_equal(chan_try_send(ch, &c), -EAGAIN);
	assert_int_equal(chan_len(ch), 2);
	chan_close(ch);
	assert_int_equal(chan_send(ch, &c, NULL, NULL), -EPIPE);
	assert_int_equal(chan_recv(ch, &out, NULL, NULL), 0);
	assert_int_equal(out, 1);
	assert_int_equal(chan_recv(ch, &out, NULL, NULL), 0);
	assert_int_equal(out, 2);
	assert_int_equal(chan_recv(ch, &out, NULL, NULL), -EPIPE);
	chan_free(ch);
}

/* A receive waiting with a cancel flag ends when the flag is set and the channel interrupted. */
static void TestChanCancel(void **state)
{
	struct go_group *g = go_group_new("t");
	struct pair p = { .ch = chan_new(sizeof(int), 1) };
	char why[128];

	(void)state;
	assert_non_null(g);
	assert_non_null(p.ch);
	atomic_init(&p.cancel, false);
	go(g, receive_one, &p, "recv");
	atomic_store(&p.cancel, true);
	chan_interrupt(p.ch);
	assert_int_equal(go_group_wait(g, WAIT_MS, why, sizeof(why)), 0);
	assert_int_equal(p.rc, -ECANCELED);
	chan_free(p.ch);
	go_group_free(g);
}

/* ---- goroutines ------------------------------------------------------------- */

/* A group's wait has a deadline and names the tasks still running. */
static void TestGoGroupWaitNamesStragglers(void **state)
{
	struct go_group *g = go_group_new("t9");
	struct pair p = { .ch = chan_new(sizeof(int), 0) };
	char why[256] = "";
	int v = 1;

	(void)state;
	assert_non_null(g);
	assert_non_null(p.ch);
	go(g, receive_one, &p, "stuck");
	assert_int_equal(go_group_wait(g, 50, why, sizeof(why)), -ETIMEDOUT);
	assert_non_null(strstr(why, "t9-stuck"));
	assert_int_equal(go_group_live(g), 1);
	assert_int_equal(chan_send(p.ch, &v, NULL, NULL), 0);
	assert_int_equal(go_group_wait(g, WAIT_MS, why, sizeof(why)), 0);
	assert_int_equal(go_group_started(g), 1);
	chan_free(p.ch);
	go_group_free(g);
}

static void count_one(void *arg)
{
	atomic_int *n = arg;

	atomic_fetch_add(n, 1);
}

/* At steady state a task needs no new thread: parked workers run them. */
static void TestGoReusesParkedWorkers(void **state)
{
	struct go_group *g = go_group_new("t");
	atomic_int n;
	long created;
	char why[128];

	(void)state;
	assert_non_null(g);
	atomic_init(&n, 0);
	go(g, count_one, &n, "warm");
	assert_int_equal(go_group_wait(g, WAIT_MS, why, sizeof(why)), 0);
	created = go_threads_created();
	for (int i = 0; i < 200; i++) {
		go(g, count_one, &n, "n%d", i);
		assert_int_equal(go_group_wait(g, WAIT_MS, why, sizeof(why)), 0);
	}
	assert_int_equal(atomic_load(&n), 201);
	assert_int_equal(go_threads_created(), created);
	go_group_free(g);
}

/* With no thread to be had, a task waits in the queue, and runs once one can be made. */
static void TestGoQueuesUntilAThreadCanBeMade(void **state)
{
	struct go_group *g = go_group_new("t");
	atomic_int n;
	char why[128];

	(void)state;
	assert_non_null(g);
	atomic_init(&n, 0);
	go_pool_retire_idle();
	go_fail_thread_creates(1000000);
	go(g, count_one, &n, "queued");
	assert_int_equal(go_group_wait(g, 50, why, sizeof(why)), -ETIMEDOUT);
	assert_int_equal(atomic_load(&n), 0);
	go_fail_thread_creates(0);
	assert_int_equal(go_group_wait(g, WAIT_MS, why, sizeof(why)), 0);
	assert_int_equal(atomic_load(&n), 1);
	go_group_free(g);
}

/* ---- the leak check and the safety monitor ------------------------------------- */

static pthread_mutex_t stray_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stray_cond = PTHREAD_COND_INITIALIZER;
static bool stray_release;

static void *stray(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "stray-thread");
	pthread_mutex_lock(&stray_mu);
	while (!stray_release)
		pthread_cond_wait(&stray_cond, &stray_mu);
	pthread_mutex_unlock(&stray_mu);
	return NULL;
}

/* The leak check reports a thread that outlives its test, by name. */
static void TestLeakCheckNamesStrayThread(void **state)
{
	struct task_set *before = *state;
	char why[512] = "";
	pthread_t t;

	stray_release = false;
	assert_int_equal(pthread_create(&t, NULL, stray, NULL), 0);
	/* Named by the thread itself: wait until the name shows. */
	for (int i = 0; i < 1000 && !strstr(why, "stray-thread"); i++) {
		assert_false(task_set_wait_back(before, 1, why, sizeof(why)));
		sleep_ms(1);
	}
	assert_non_null(strstr(why, "stray-thread"));
	pthread_mutex_lock(&stray_mu);
	stray_release = true;
	pthread_cond_signal(&stray_cond);
	pthread_mutex_unlock(&stray_mu);
	pthread_join(t, NULL);
	assert_true(task_set_wait_back(before, LEAK_TIMEOUT_MS, why, sizeof(why)));
}

/* The safety monitor is sparse: terms near 2^31 cost one entry each and still check. */
static void TestSafetyMonitorHugeTerms(void **state)
{
	struct safety_monitor *m = safety_monitor_new(3);
	char why[256];

	(void)state;
	assert_non_null(m);
	safety_became_leader(m, 0, INT32_MAX);
	safety_became_leader(m, 1, 1);
	safety_became_leader(m, 2, 1 << 30);
	safety_became_leader(m, 0, INT32_MAX);
	assert_false(safety_violation(m, why, sizeof(why)));
	safety_became_leader(m, 1, INT32_MAX);
	assert_true(safety_violation(m, why, sizeof(why)));
	assert_string_equal(why, "two leaders in term 2147483647: 0 and 1");
	safety_monitor_free(m);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, leak_check_setup, leak_check_teardown)

static const struct CMUnitTest all_tests[] = {
	TEST(TestChanUnbufferedHandsOver),
	TEST(TestChanBufferedThenClosed),
	TEST(TestChanCancel),
	TEST(TestGoGroupWaitNamesStragglers),
	TEST(TestGoReusesParkedWorkers),
	TEST(TestGoQueuesUntilAThreadCanBeMade),
	TEST(TestLeakCheckNamesStrayThread),
	TEST(TestSafetyMonitorHugeTerms),
};

int main(int argc, char **argv)
{
	return go_test_main("lib_test", all_tests, sizeof(all_tests) / sizeof(all_tests[0]), argc,
			    argv);
}
