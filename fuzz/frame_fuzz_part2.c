/*
 * libFuzzer target for part 2's frame codec (part2/server.c:
 * server_frame_decode_header, server_frame_decode_payload and their inverse
 * server_frame_encode), whose AppendEntries requests carry entries: a count,
 * then per entry a term, a length and that many command bytes.
 *
 * The input is a byte stream as a peer could send it: frames one after
 * another. Each header and each payload is copied into a heap buffer of
 * exactly its size, so that AddressSanitizer catches a decoder that reads
 * one byte further than the wire format allows, and LeakSanitizer one that
 * loses the entries it allocated. The checks:
 *   - a refused frame says why, in a NUL-terminated, non-empty reason, and
 *     leaves nothing allocated (server_frame_free is still safe on it);
 *   - an accepted header promises a payload no bigger than FRAME_MAX_PAYLOAD;
 *   - an accepted AppendEntries holds at most AE_MAX_ENTRIES entries, each
 *     of at most CM_COMMAND_MAX bytes, with terms in [0, CM_MAX_TERM];
 *   - an accepted frame re-encodes to exactly the bytes it came from.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Built for part 3 too (RAFT_PART=3): the same codec, with ConflictIndex/Term. */
#if RAFT_PART == 3
#include "part3/server.h"
#else
#include "part2/server.h"
#endif

#define FUZZ_PROG "frame_fuzz_part2"
#include "fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a decoded AppendEntries request may hold. */
static void check_entries(const struct frame *f)
{
	const struct append_entries_args *a = &f->call.args.ae;

	if (f->kind != FRAME_REQUEST || f->call.method != RPC_APPEND_ENTRIES)
		return;
	check(a->nentries >= 0 && a->nentries <= AE_MAX_ENTRIES, "entry count out of bounds");
	check((a->nentries == 0) == (a->entries == NULL), "entries and their count disagree");
	for (int i = 0; i < a->nentries; i++) {
		check(a->entries[i].command.len <= CM_COMMAND_MAX,
		      "command longer than the maximum");
		check(a->entries[i].term >= 0 && a->entries[i].term <= CM_MAX_TERM,
		      "entry term out of range");
	}
}

/* Decodes the frame at data; returns its length, or 0 if it is refused or cut short. */
static size_t fuzz_one_frame(const uint8_t *data, size_t size)
{
	static uint8_t out[FRAME_MAX_SIZE];
	uint8_t *header, *payload;
	char why[WHY_SIZE] = "";
	struct frame f;
	size_t len;
	int rc;

	if (size < FRAME_HEADER_SIZE)
		return 0;
	header = exact_copy(data, FRAME_HEADER_SIZE);
	rc = server_frame_decode_header(header, &f, why, sizeof(why));
	free(header);
	if (rc) {
		check(rc == -EPROTO, "header refused with a code other than -EPROTO");
		check_why(why);
		return 0;
	}
	check(f.payload_len <= FRAME_MAX_PAYLOAD, "accepted payload longer than the maximum");
	if (size - FRAME_HEADER_SIZE < f.payload_len)
		return 0;
	payload = exact_copy(data + FRAME_HEADER_SIZE, f.payload_len);
	rc = server_frame_decode_payload(payload, &f, why, sizeof(why));
	free(payload);
	if (rc) {
		check(rc == -EPROTO, "payload refused with a code other than -EPROTO");
		check_why(why);
		check(f.kind != FRAME_REQUEST || f.call.method != RPC_APPEND_ENTRIES ||
			      f.call.args.ae.entries == NULL,
		      "a refused AppendEntries kept its entries");
		server_frame_free(&f);
		return 0;
	}
	check_entries(&f);
	len = server_frame_encode(&f, out);
	server_frame_free(&f);
	check(len == FRAME_HEADER_SIZE + f.payload_len, "re-encoded frame has another length");
	check(memcmp(out, data, len) == 0, "re-encoded frame differs from the input");
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;

	/* As lib/rpc.c's reader does: frames back to back until one is refused. */
	while ((len = fuzz_one_frame(data, size)) > 0) {
		data += len;
		size -= len;
	}
	return 0;
}
