/*
 * What both seed writers (make_corpus.c, make_corpus_part2.c) share: a seed
 * is a named frame, written to a file of its own. Include the part's
 * server.h (struct frame) and define CORPUS_PROG (the program's name, for
 * its messages) first.
 */
#ifndef FUZZ_CORPUS_SEED_H
#define FUZZ_CORPUS_SEED_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct seed {
	const char *name;
	struct frame f;
};

static inline struct seed seed(const char *name, enum frame_kind kind, enum rpc_method method,
			       enum frame_status status, uint64_t seq)
{
	struct seed s = { .name = name };

	s.f.kind = kind;
	s.f.status = status;
	s.f.seq = seq;
	s.f.call.method = method;
	return s;
}

/* Writes len bytes of buf to dir/name; 0 or -1 (after saying why). */
static inline int write_file(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, CORPUS_PROG ": %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fwrite(buf, 1, len, f) != len)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc)
		fprintf(stderr, CORPUS_PROG ": writing %s: %s\n", path, strerror(errno));
	return rc;
}

#endif
