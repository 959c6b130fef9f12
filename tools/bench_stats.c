/* What the benchmarks share (tools/bench_stats.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lib/clock.h"
#include "tools/bench_stats.h"

int samples_add(struct samples *s, double x)
{
	if (s->n == s->cap) {
		int cap = s->cap ? s->cap * 2 : 64;
		double *v = reallocarray(s->v, (size_t)cap, sizeof(double));

		if (!v) {
			fprintf(stderr, "%s: out of memory for samples\n",
				program_invocation_short_name);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return 0;
}

void samples_free(struct samples *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least permille/1000 of all at or below it. */
static double rank(const double *sorted, int n, int permille)
{
	int idx = (permille * n + 999) / 1000 - 1;

	return sorted[idx < 0 ? 0 : idx];
}

void summarize(struct samples *s, struct summary *sum)
{
	double *v = s->v;
	int n = s->n;

	qsort(v, (size_t)n, sizeof(double), cmp_double);
	sum->n = n;
	sum->stat[STAT_MIN] = v[0];
	sum->stat[STAT_MEDIAN] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	sum->stat[STAT_P90] = rank(v, n, 900);
	sum->stat[STAT_P99] = rank(v, n, 990);
	sum->stat[STAT_MAX] = v[n - 1];
	sum->stat[STAT_EXTRA] = 0;
	sum->extra_key = NULL;
}

int unit_precision(const char *unit)
{
	if (strcmp(unit, "fsyncs") == 0)
		return 4; /* 0.001: one fsync per 1,000 commits per server */
	if (strcmp(unit, "CPU-s/s") == 0)
		return 5;
	if (strcmp(unit, "CPU-s") == 0 || strcmp(unit, "s") == 0 || strcmp(unit, "x") == 0)
		return 2;
	if (strcmp(unit, "kB") == 0 || strcmp(unit, "threads") == 0 ||
	    strcmp(unit, "commits/s") == 0)
		return 0;
	return 1;
}

/* %.6g keeps 6 significant digits (issue 4's format). */
int write_json_line(FILE *f, const char *path, const char *name, const char *unit,
		    const struct summary *sum)
{
	const double *v = sum->stat;

	fprintf(f,
		"{\"name\": \"%s\", \"unit\": \"%s\", \"n\": %d, \"min\": %.6g, "
		"\"median\": %.6g, \"p90\": %.6g, \"p99\": %.6g, \"max\": %.6g",
		name, unit, sum->n, v[STAT_MIN], v[STAT_MEDIAN], v[STAT_P90], v[STAT_P99],
		v[STAT_MAX]);
	if (sum->extra_key)
		fprintf(f, ", \"%s\": %.0f", sum->extra_key, v[STAT_EXTRA]);
	fprintf(f, "}\n");
	if (fflush(f) != 0 || ferror(f)) {
		fprintf(stderr, "%s: writing %s: %s\n", program_invocation_short_name, path,
			strerror(errno));
		return -EIO;
	}
	return 0;
}

/* ---- the process ----------------------------------------------------------- */

double process_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0) {
		fprintf(stderr, "%s: getrusage: %s\n", program_invocation_short_name,
			strerror(errno));
		return 0;
	}
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int process_threads(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!dir) {
		fprintf(stderr, "%s: /proc/self/task: %s\n", program_invocation_short_name,
			strerror(errno));
		return -1;
	}
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

long process_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f) {
		fprintf(stderr, "%s: /proc/self/status: %s\n", program_invocation_short_name,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *end;

		if (strncmp(line, "VmRSS:", 6) != 0)
			continue;
		errno = 0;
		kb = strtol(line + 6, &end, 10);
		if (errno || end == line + 6)
			kb = -1;
		break;
	}
	fclose(f);
	return kb;
}

double idle_window_cpu_per_s(void)
{
	struct timespec t0 = mono_now();
	double cpu0 = process_cpu_seconds();

	sleep_ms(IDLE_WINDOW_S * 1000);
	return (process_cpu_seconds() - cpu0) / ((double)timespec_diff_ns(mono_now(), t0) / 1e9);
}
