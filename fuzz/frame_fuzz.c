/*
 * libFuzzer target for the frame decoder (server_frame_decode_header,
 * server_frame_decode_payload) and its inverse, server_frame_encode.
 *
 * The input is a byte stream as a peer could send it: frames one after
 * another. Each header and each payload is copied into a heap buffer of
 * exactly its size, so that AddressSanitizer catches a decoder that reads
 * one byte further than the wire format allows. The checks:
 *   - a refused frame says why, in a NUL-terminated, non-empty reason;
 *   - an accepted header promises a payload no bigger than FRAME_MAX_PAYLOAD;
 *   - an accepted frame re-encodes to exactly the bytes it came from.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define FUZZ_PROG "frame_fuzz"
#include "fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes the frame at data; returns its length, or 0 if it is refused or cut short. */
static size_t fuzz_one_frame(const uint8_t *data, size_t size)
{
	uint8_t *header, *payload, out[FRAME_MAX_SIZE];
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
		return 0;
	}
	len = server_frame_encode(&f, out);
	check(len == FRAME_HEADER_SIZE + f.payload_len, "re-encoded frame has another length");
	check(memcmp(out, data, len) == 0, "re-encoded frame differs from the input");
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;

	/* As read_frame does: frames back to back until one is refused. */
	while ((len = fuzz_one_frame(data, size)) > 0) {
		data += len;
		size -= len;
	}
	return 0;
}
