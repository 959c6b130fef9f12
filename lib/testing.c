/*
 * DESIGN: stands in for go test (the runner and its flags), leaktest and a
 * safety monitor. The runner and the leak check run on the test's thread;
 * the monitor is called from any thread and guards its state with m->mu,
 * which nothing else is taken under.
 */
#include "lib/testing.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/go.h"

/* ---- safety monitor ------------------------------------------------------- */

struct term_leader {
	int term;
	int leader;
};

struct safety_monitor {
	pthread_mutex_t mu;
	int n;
	int *last_term;		     /* per server, the last term it reported */
	struct term_leader *leaders; /* sorted by term */
	size_t nleaders, cap;
	struct verdict verdict;
};

struct safety_monitor *safety_monitor_new(int n)
{
	struct safety_monitor *m = calloc(1, sizeof(*m));

	if (!m || !(m->last_term = calloc((size_t)n, sizeof(int)))) {
		free(m);
		return NULL;
	}
	m->n = n;
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void safety_monitor_free(struct safety_monitor *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->last_term);
	free(m->leaders);
	free(m);
}

void verdict_record(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	if (v->violated)
		return;
	v->violated = true;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
}

bool verdict_read(const struct verdict *v, char *why, size_t whylen)
{
	if (v->violated)
		snprintf(why, whylen, "%s", v->why);
	return v->violated;
}

void safety_term_changed(struct safety_monitor *m, int id, int old_term, int new_term)
{
	pthread_mutex_lock(&m->mu);
	if (new_term < old_term || (id >= 0 && id < m->n && new_term < m->last_term[id]))
		verdict_record(&m->verdict, "server %d: term went down from %d to %d", id, old_term,
			       new_term);
	if (id >= 0 && id < m->n)
		m->last_term[id] = new_term;
	pthread_mutex_unlock(&m->mu);
}

/* The index of term in m->leaders, or where it would go. Expects m->mu held. */
static size_t find_term(const struct safety_monitor *m, int term)
{
	size_t lo = 0, hi = m->nleaders;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->leaders[mid].term < term)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Inserts (term, id) at i. Expects m->mu held. false if out of memory. */
static bool insert_leader(struct safety_monitor *m, size_t i, int term, int id)
{
	if (m->nleaders == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct term_leader *p = reallocarray(m->leaders, cap, sizeof(*p));

		if (!p)
			return false;
		m->leaders = p;
		m->cap = cap;
	}
	memmove(&m->leaders[i + 1], &m->leaders[i], (m->nleaders - i) * sizeof(*m->leaders));
	m->leaders[i] = (struct term_leader){ .term = term, .leader = id };
	m->nleaders++;
	return true;
}

void safety_became_leader(struct safety_monitor *m, int id, int term)
{
	size_t i;

	pthread_mutex_lock(&m->mu);
	i = find_term(m, term);
	if (i < m->nleaders && m->leaders[i].term == term) {
		if (m->leaders[i].leader != id)
			verdict_record(&m->verdict, "two leaders in term %d: %d and %d", term,
				       m->leaders[i].leader, id);
	} else if (term < 0 || !insert_leader(m, i, term, id)) {
		verdict_record(&m->verdict, "server %d: cannot record leadership of term %d", id,
			       term);
	}
	pthread_mutex_unlock(&m->mu);
}

bool safety_violation(struct safety_monitor *m, char *why, size_t whylen)
{
	bool violated;

	pthread_mutex_lock(&m->mu);
	violated = verdict_read(&m->verdict, why, whylen);
	pthread_mutex_unlock(&m->mu);
	return violated;
}

/* ---- thread leak check ---------------------------------------------------- */

int task_set_snapshot(struct task_set *set)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int cap = 0;

	set->n = 0;
	set->tids = NULL;
	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		if (set->n == cap) {
			pid_t *p = reallocarray(set->tids, (size_t)(cap = cap * 2 + 64),
						sizeof(pid_t));

			if (!p) {
				closedir(dir);
				task_set_free(set);
				return -ENOMEM;
			}
			set->tids = p;
		}
		set->tids[set->n++] = (pid_t)strtol(e->d_name, NULL, 10);
	}
	closedir(dir);
	return 0;
}

void task_set_free(struct task_set *set)
{
	free(set->tids);
	set->tids = NULL;
	set->n = 0;
}

static bool task_set_has(const struct task_set *set, pid_t tid)
{
	for (int i = 0; i < set->n; i++)
		if (set->tids[i] == tid)
			return true;
	return false;
}

/* Appends " name(tid)" for each thread of now that before does not have. */
static int name_new_tasks(const struct task_set *before, const struct task_set *now, char *why,
			  size_t whylen)
{
	size_t len = strlen(why);
	int leaked = 0;

	for (int i = 0; i < now->n; i++) {
		char path[64], name[32] = "?";
		FILE *f;

		if (task_set_has(before, now->tids[i]) || go_pool_is_parked(now->tids[i]))
			continue;
		leaked++;
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)now->tids[i]);
		if ((f = fopen(path, "r"))) {
			if (fgets(name, sizeof(name), f))
				name[strcspn(name, "\n")] = '\0';
			fclose(f);
		}
		if (len < whylen)
			len += (size_t)snprintf(why + len, whylen - len, " %s(%d)", name,
						(int)now->tids[i]);
	}
	return leaked;
}

bool task_set_wait_back(const struct task_set *before, int timeout_ms, char *why, size_t whylen)
{
	struct timespec start = mono_now();

	for (;;) {
		struct task_set now;
		int leaked;

		if (task_set_snapshot(&now) < 0) {
			snprintf(why, whylen, "cannot list /proc/self/task: %s", strerror(errno));
			return false;
		}
		snprintf(why, whylen, "threads still running after %d ms:", timeout_ms);
		leaked = name_new_tasks(before, &now, why, whylen);
		task_set_free(&now);
		if (leaked == 0)
			return true;
		/* A joined thread can stay listed for a few milliseconds. */
		if (elapsed_ms(start) >= timeout_ms)
			return false;
		sleep_ms(1);
	}
}

/* ---- go test ---------------------------------------------------------------- */

static int parse_count(const char *prog, const char *s, int *count)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < 1 || n > 1000000) {
		fprintf(stderr, "%s: -count wants a positive number, got \"%s\"\n", prog, s);
		return -EINVAL;
	}
	*count = (int)n;
	return 0;
}

/* Compiles a -run or -skip pattern; 0, or -EINVAL after saying why. */
static int compile(const char *prog, const char *flag, const char *pattern, regex_t *re)
{
	int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);

	if (rc) {
		char msg[256];

		regerror(rc, re, msg, sizeof(msg));
		fprintf(stderr, "%s: invalid %s regexp \"%s\": %s\n", prog, flag, pattern, msg);
		return -EINVAL;
	}
	return 0;
}

/*
 * Copies the tests whose names match pattern (all if NULL) and not skip
 * (none skipped if NULL) into sel.
 */
static int select_tests(const char *prog, const char *pattern, const char *skip,
			const struct CMUnitTest *tests, size_t ntests, struct CMUnitTest *sel,
			size_t *nsel)
{
	regex_t re, skip_re;

	*nsel = 0;
	if (compile(prog, "-run", pattern ? pattern : "", &re) < 0)
		return -EINVAL;
	if (skip && compile(prog, "-skip", skip, &skip_re) < 0) {
		regfree(&re);
		return -EINVAL;
	}
	for (size_t i = 0; i < ntests; i++)
		if (regexec(&re, tests[i].name, 0, NULL, 0) == 0 &&
		    !(skip && regexec(&skip_re, tests[i].name, 0, NULL, 0) == 0))
			sel[(*nsel)++] = tests[i];
	regfree(&re);
	if (skip)
		regfree(&skip_re);
	return 0;
}

static void *nothing(void *arg)
{
	return arg;
}

/*
 * ThreadSanitizer starts a background thread of its own at the first
 * pthread_create; start it now, so that it is in every test's baseline.
 */
static void settle_runtime_threads(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, nothing, NULL) == 0)
		pthread_join(t, NULL);
}

struct flags {
	const char *pattern; /* -run */
	const char *skip;    /* -skip */
	int count;	     /* -count */
	bool list;	     /* -list: the pattern is -list's */
};

static int parse_flags(const char *prog, int argc, char **argv, struct flags *f)
{
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-run") == 0 || strcmp(argv[i], "-list") == 0) &&
		    i + 1 < argc) {
			f->list = f->list || strcmp(argv[i], "-list") == 0;
			f->pattern = argv[++i];
		} else if (strcmp(argv[i], "-skip") == 0 && i + 1 < argc) {
			f->skip = argv[++i];
		} else if (strcmp(argv[i], "-count") == 0 && i + 1 < argc) {
			if (parse_count(prog, argv[++i], &f->count) < 0)
				return -EINVAL;
		} else {
			fprintf(stderr,
				"usage: %s [-run REGEX] [-skip REGEX] [-count N] | -list REGEX\n",
				prog);
			return -EINVAL;
		}
	}
	return 0;
}

int go_test_main(const char *prog, const struct CMUnitTest *tests, size_t ntests, int argc,
		 char **argv)
{
	struct CMUnitTest *sel = calloc(ntests ? ntests : 1, sizeof(*sel));
	struct flags f = { .count = 1 };
	int failed = 0;
	size_t n;

	if (!sel) {
		fprintf(stderr, "%s: %s\n", prog, strerror(ENOMEM));
		return 2;
	}
	if (parse_flags(prog, argc, argv, &f) < 0 ||
	    select_tests(prog, f.pattern, f.skip, tests, ntests, sel, &n) < 0) {
		free(sel);
		return 2;
	}
	/* go test -list: the names, one per line, and nothing run. */
	for (size_t i = 0; f.list && i < n; i++)
		printf("%s\n", sel[i].name);
	if (f.list) {
		free(sel);
		return 0;
	}
	/* Unbuffered, so test names and log lines keep their order in `2>&1 | tee`. */
	setvbuf(stdout, NULL, _IONBF, 0);
	if (n == 0)
		printf("testing: warning: no tests to run\n");
	else
		settle_runtime_threads();
	for (int i = 0; n > 0 && i < f.count; i++)
		failed += _cmocka_run_group_tests(prog, sel, n, NULL, NULL);
	free(sel);
	go_pool_retire_idle();
	return failed ? 1 : 0;
}

int leak_check_setup(void **state)
{
	struct task_set *before = calloc(1, sizeof(*before));

	if (!before || task_set_snapshot(before) < 0) {
		free(before);
		return -1;
	}
	*state = before;
	return 0;
}

int leak_check_teardown(void **state)
{
	struct task_set *before = *state;
	char why[512];
	bool back = task_set_wait_back(before, LEAK_TIMEOUT_MS, why, sizeof(why));

	task_set_free(before);
	free(before);
	if (!back)
		fail_msg("thread leak: %s", why);
	return 0;
}

/* ---- os.RemoveAll ---------------------------------------------------------- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -errno : 0;
}

int remove_all(const char *path)
{
	int rc = nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);

	return rc < 0 ? -errno : rc;
}
