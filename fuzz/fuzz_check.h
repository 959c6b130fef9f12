/*
 * The checks both fuzz targets (frame_fuzz.c, frame_fuzz_part2.c) make of a
 * decoder. Define FUZZ_PROG (the target's name, for its messages) first.
 * A violation aborts, which libFuzzer reports as a crash.
 */
#ifndef FUZZ_FUZZ_CHECK_H
#define FUZZ_FUZZ_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Large enough for any reason; small enough to catch an unbounded write. */
#define WHY_SIZE 80

static inline void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, FUZZ_PROG ": %s\n", what);
		abort();
	}
}

/* A refused frame must carry a reason. */
static inline void check_why(const char *why)
{
	size_t len = strnlen(why, WHY_SIZE);

	check(len > 0, "refused without a reason");
	check(len < WHY_SIZE, "reason not NUL-terminated within its buffer");
}

/* Copies n bytes to a heap buffer of exactly n bytes (ASan guards its end). */
static inline uint8_t *exact_copy(const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);

	check(copy != NULL, "out of memory");
	if (n)
		memcpy(copy, p, n);
	return copy;
}

#endif
