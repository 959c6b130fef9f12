/*
 * Writes the fuzzer's seed corpus: one valid frame of every method, kind
 * and status (and one stream of two frames), each to its own file in the
 * directory given. The files are kept in the repo (fuzz/corpus/); run
 * `make fuzz-corpus` to rewrite them after a change to the wire format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define CORPUS_PROG "make_corpus"
#include "fuzz/corpus_seed.h"

static void fill_seeds(struct seed *s)
{
	s[0] = seed("rv-request", FRAME_REQUEST, RPC_REQUEST_VOTE, FRAME_OK, 1);
	s[0].f.call.args.rv = (struct request_vote_args){ 3, 2, -1, -1 };
	s[1] = seed("rv-reply", FRAME_REPLY, RPC_REQUEST_VOTE, FRAME_OK, 1);
	s[1].f.call.reply.rv = (struct request_vote_reply){ 3, true };
	s[2] = seed("rv-reply-failed", FRAME_REPLY, RPC_REQUEST_VOTE, FRAME_FAILED, 2);
	s[3] = seed("ae-request", FRAME_REQUEST, RPC_APPEND_ENTRIES, FRAME_OK, 7);
	s[3].f.call.args.ae = (struct append_entries_args){ 5, 1, -1, -1, -1 };
	s[4] = seed("ae-reply", FRAME_REPLY, RPC_APPEND_ENTRIES, FRAME_OK, 7);
	s[4].f.call.reply.ae = (struct append_entries_reply){ 5, false };
	s[5] = seed("ae-reply-failed", FRAME_REPLY, RPC_APPEND_ENTRIES, FRAME_FAILED, 8);
}

int main(int argc, char **argv)
{
	uint8_t buf[FRAME_MAX_SIZE], stream[2 * FRAME_MAX_SIZE];
	struct seed seeds[6];
	size_t len, stream_len = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	fill_seeds(seeds);
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		len = server_frame_encode(&seeds[i].f, buf);
		if (write_file(argv[1], seeds[i].name, buf, len) < 0)
			return 1;
		/* The stream: a request and its reply, as on a real connection. */
		if (i == 3 || i == 4) {
			memcpy(stream + stream_len, buf, len);
			stream_len += len;
		}
	}
	return write_file(argv[1], "ae-request-then-reply", stream, stream_len) < 0 ? 1 : 0;
}
