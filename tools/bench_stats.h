/*
 * What the benchmarks (tools/raft-bench.c, tools/part2-bench.c) share:
 * samples, their summary (min, median, nearest-rank p90/p99, max), the
 * digits a unit is printed with, the JSON line each measurement leaves
 * in BENCH_OUT, and the process's CPU time, threads and RSS.
 */
#ifndef TOOLS_BENCH_STATS_H
#define TOOLS_BENCH_STATS_H

#include <stdio.h>

struct samples {
	double *v;
	int n;
	int cap;
};

/* STAT_EXTRA is a line's extra count (raft-bench's struct extra), if it has one. */
enum bench_stat { STAT_MIN, STAT_MEDIAN, STAT_P90, STAT_P99, STAT_MAX, STAT_EXTRA, NSTATS };

struct summary {
	int n;
	double stat[NSTATS];
	const char *extra_key; /* NULL: no extra count */
};

/* Appends x; 0, or -ENOMEM (after saying so on stderr). */
int samples_add(struct samples *s, double x);
void samples_free(struct samples *s);

/* Sorts s in place (order does not matter once measured); no extra count. Expects s->n > 0. */
void summarize(struct samples *s, struct summary *sum);

/* Digits after the point in the table, by unit. */
int unit_precision(const char *unit);

/*
 * One JSON line of sum to f, flushed (an interrupted run keeps what it
 * measured); 0, or -EIO after saying why, naming path.
 */
int write_json_line(FILE *f, const char *path, const char *name, const char *unit,
		    const struct summary *sum);

/*
 * The process's cost and footprint, for the idle measurements: CPU
 * seconds used so far (user + system; 0 after saying why if unknown), its
 * threads (entries of /proc/self/task) and its VmRSS in kB (-1 after saying
 * why if unknown).
 */
double process_cpu_seconds(void);
int process_threads(void);
long process_rss_kb(void);

/*
 * The idle measurement every bench makes (raft-bench's idle of part 1,
 * part2-bench's idle5 of parts 2 and 3), so that the parts compare: windows
 * of IDLE_WINDOW_S, IDLE_WINDOWS of them, then the footprint sampled every
 * FOOTPRINT_PERIOD_MS for FOOTPRINT_WINDOW_MS.
 */
#define IDLE_WINDOWS	    3
#define IDLE_WINDOW_S	    10
#define FOOTPRINT_WINDOW_MS 5000
#define FOOTPRINT_PERIOD_MS 10

/*
 * Part 1's bars at rest (issue 4: 0.4x Go's idle CPU; RSS under 4 MiB),
 * which parts 2 and 3 must meet too (issue 9: no worse than part 1's).
 * Numbers for the targets, strings for their descriptions.
 */
#define IDLE_CPU_MAX	    0.012
#define IDLE_CPU_MAX_STR    "0.012"
#define IDLE_RSS_KB_MAX	    4096
#define IDLE_RSS_KB_MAX_STR "4096"

/* Sleeps one idle window; the process's CPU seconds per wall second over it. */
double idle_window_cpu_per_s(void);

#endif
