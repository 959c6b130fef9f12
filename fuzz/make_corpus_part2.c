/*
 * Writes the seed corpus of part 2's fuzzer (fuzz/frame_fuzz_part2.c): one
 * valid frame of every method, kind and status, AppendEntries requests with
 * no entry, with several and with a command of CM_COMMAND_MAX bytes, and
 * one stream of a request and its reply, each to its own file in the
 * directory given. The files are kept in the repo (fuzz/corpus-part2/); run
 * `make fuzz-corpus` to rewrite them after a change to the wire format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Built for part 3 too (RAFT_PART=3): the same codec, with ConflictIndex/Term. */
#if RAFT_PART == 3
#include "part3/server.h"
#else
#include "part2/server.h"
#endif

#if RAFT_PART == 3
#define NSEEDS 11
#else
#define NSEEDS 9
#endif

#define CORPUS_PROG "make_corpus_part2"
#include "fuzz/corpus_seed.h"

/* The entries of the seeds' AppendEntries requests (the frames point here). */
static struct log_entry entries[3];
static struct log_entry longest;

/* A command as the tests submit one: an int's decimal digits. */
static struct cm_command int_command(int v)
{
	struct cm_command c = { 0 };

	c.len = (uint16_t)snprintf((char *)c.bytes, sizeof(c.bytes), "%d", v);
	return c;
}

static void fill_seeds(struct seed *s)
{
	entries[0] = (struct log_entry){ .command = int_command(42), .term = 1 };
	entries[1] = (struct log_entry){ .command = int_command(55), .term = 1 };
	entries[2] = (struct log_entry){ .command = int_command(81), .term = 2 };
	longest.term = 2;
	longest.command.len = CM_COMMAND_MAX;
	memset(longest.command.bytes, 'x', CM_COMMAND_MAX);

	s[0] = seed("rv-request", FRAME_REQUEST, RPC_REQUEST_VOTE, FRAME_OK, 1);
	s[0].f.call.args.rv = (struct request_vote_args){ 3, 2, 4, 2 };
	s[1] = seed("rv-reply", FRAME_REPLY, RPC_REQUEST_VOTE, FRAME_OK, 1);
	s[1].f.call.reply.rv = (struct request_vote_reply){ 3, true };
	s[2] = seed("rv-reply-failed", FRAME_REPLY, RPC_REQUEST_VOTE, FRAME_FAILED, 2);
	s[3] = seed("ae-request-heartbeat", FRAME_REQUEST, RPC_APPEND_ENTRIES, FRAME_OK, 7);
	s[3].f.call.args.ae = (struct append_entries_args){ .term = 5,
							    .leader_id = 1,
							    .prev_log_index = -1,
							    .prev_log_term = -1,
							    .leader_commit = -1 };
	s[4] = seed("ae-request-entries", FRAME_REQUEST, RPC_APPEND_ENTRIES, FRAME_OK, 9);
	s[4].f.call.args.ae = (struct append_entries_args){ .term = 2,
							    .leader_id = 0,
							    .prev_log_index = 0,
							    .prev_log_term = 1,
							    .entries = entries,
							    .nentries = 3,
							    .leader_commit = 0 };
	s[5] = seed("ae-request-longest-command", FRAME_REQUEST, RPC_APPEND_ENTRIES, FRAME_OK, 10);
	s[5].f.call.args.ae = (struct append_entries_args){ .term = 2,
							    .leader_id = 2,
							    .prev_log_index = 3,
							    .prev_log_term = 2,
							    .entries = &longest,
							    .nentries = 1,
							    .leader_commit = 3 };
	s[6] = seed("ae-reply", FRAME_REPLY, RPC_APPEND_ENTRIES, FRAME_OK, 9);
	s[6].f.call.reply.ae = (struct append_entries_reply){ .term = 5, .success = true };
	s[7] = seed("ae-reply-failed", FRAME_REPLY, RPC_APPEND_ENTRIES, FRAME_FAILED, 8);
	s[8] = seed("rv-request-empty-log", FRAME_REQUEST, RPC_REQUEST_VOTE, FRAME_OK, 3);
	s[8].f.call.args.rv = (struct request_vote_args){ 1, 0, -1, -1 };
#if RAFT_PART == 3
	/* Part 3's refusals name where the follower's log conflicts. */
	s[9] = seed("ae-reply-conflict-term", FRAME_REPLY, RPC_APPEND_ENTRIES, FRAME_OK, 11);
	s[9].f.call.reply.ae = (struct append_entries_reply){
		.term = 5, .success = false, .conflict_index = 3, .conflict_term = 2
	};
	s[10] = seed("ae-reply-conflict-short-log", FRAME_REPLY, RPC_APPEND_ENTRIES, FRAME_OK, 12);
	s[10].f.call.reply.ae = (struct append_entries_reply){
		.term = 5, .success = false, .conflict_index = 7, .conflict_term = -1
	};
#endif
}

int main(int argc, char **argv)
{
	static uint8_t buf[FRAME_MAX_SIZE], stream[2 * FRAME_MAX_SIZE];
	struct seed seeds[NSEEDS];
	size_t len, stream_len = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus_part2 DIR\n");
		return 2;
	}
	fill_seeds(seeds);
	for (size_t i = 0; i < NSEEDS; i++) {
		len = server_frame_encode(&seeds[i].f, buf);
		if (write_file(argv[1], seeds[i].name, buf, len) < 0)
			return 1;
		/* The stream: a request with entries and its reply, as on a real connection. */
		if (i == 4 || i == 6) {
			memcpy(stream + stream_len, buf, len);
			stream_len += len;
		}
	}
	return write_file(argv[1], "ae-request-then-reply", stream, stream_len) < 0 ? 1 : 0;
}
