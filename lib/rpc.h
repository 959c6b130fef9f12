/*
 * net/rpc: a service's methods called over TCP between servers, with one
 * client per peer and any number of calls in flight on it.
 *
 * Wire format: every message is one frame, a 20-byte header and a payload,
 * all integers big-endian.
 *   u32 magic "RAFT" | u8 version | u8 kind | u8 method | u8 status |
 *   u64 sequence number | u32 payload length
 * kind 1 is a request, 2 a reply; status is 0, or 1 for "RPC failed" (a
 * reply with no payload). The payload is the method's own encoding of its
 * arguments or reply (each part's server.c holds its codecs, as Go's gob
 * would encode its structs), never longer than the method says.
 */
#ifndef LIB_RPC_H
#define LIB_RPC_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct go_group;

#define RPC_MAGIC	0x52414654u
#define RPC_VERSION	1
#define RPC_HEADER_SIZE 20
/* No method may declare a payload larger than this. */
#define RPC_MAX_PAYLOAD (1u << 20)

enum rpc_kind { RPC_REQUEST = 1, RPC_REPLY = 2 };
enum rpc_status { RPC_OK = 0, RPC_FAILED = 1 };

struct rpc_header {
	enum rpc_kind kind;
	int method; /* 1 .. service->nmethods */
	enum rpc_status status;
	uint64_t seq;
	uint32_t len;
};

/*
 * One method, as net/rpc's reflection would find it: the sizes of its
 * argument and reply structs, the largest payloads it allows, and codecs.
 * encode_* write into a buffer of *_max bytes and return the length;
 * decode_* check every field and count before use: 0 or -EPROTO.
 */
struct rpc_method_def {
	const char *name;      /* "RequestVote" */
	const char *task_name; /* its handlers' task names: "h-rv" */
	size_t args_size;
	size_t reply_size;
	uint32_t args_max;
	uint32_t reply_max;
	size_t (*encode_args)(const void *args, uint8_t *buf);
	int (*decode_args)(const uint8_t *p, uint32_t len, void *args);
	size_t (*encode_reply)(const void *reply, uint8_t *buf);
	int (*decode_reply)(const uint8_t *p, uint32_t len, void *reply);
	/*
	 * What decode_args allocated, if anything (NULL: nothing). Called on
	 * every decoded request, and on one whose decoding failed: a decoder
	 * leaves args freeable (zeroed or complete) at every exit.
	 */
	void (*free_args)(void *args);
	/*
	 * The encoded length of these args (NULL: args_max). For a method whose
	 * largest frame is large, so that a small one is not encoded into a
	 * buffer of the largest.
	 */
	size_t (*args_len)(const void *args);
};

/* Go's RegisterName: a named service; method n is methods[n - 1]. */
struct rpc_service {
	const char *name; /* "ConsensusModule" */
	const struct rpc_method_def *methods;
	int nmethods;
	/*
	 * Serves one call on the receiver: 0 with *reply filled, or a negative
	 * code to answer "RPC failed" (the RPC proxy dropped it).
	 */
	int (*serve)(void *receiver, int method, const void *args, void *reply);
};

/* Encodes h into buf (RPC_HEADER_SIZE bytes). */
void rpc_header_encode(const struct rpc_header *h, uint8_t *buf);
/*
 * Decodes and checks a header against svc's methods: 0 or -EPROTO with a
 * reason in why (at least 80 bytes).
 */
int rpc_header_decode(const struct rpc_service *svc, const uint8_t *buf, struct rpc_header *h,
		      char *why, size_t whylen);
/* The largest payload a header of this kind and method may announce. */
uint32_t rpc_payload_max(const struct rpc_service *svc, enum rpc_kind kind, int method);

/* Big-endian helpers for the codecs. */
void rpc_put_u32(uint8_t *p, uint32_t v);
void rpc_put_u64(uint8_t *p, uint64_t v);
uint32_t rpc_get_u32(const uint8_t *p);
uint64_t rpc_get_u64(const uint8_t *p);

/* ---- server ---------------------------------------------------------------- */

struct rpc_server;

/*
 * A server for svc on behalf of receiver; its tasks (accept loop, one reader
 * per connection, one handler per request) join group g. id names it in the
 * log ("[id] ..."). NULL if out of memory.
 */
struct rpc_server *rpc_server_new(int id, const struct rpc_service *svc, void *receiver,
				  struct go_group *g);
/* Listens on 127.0.0.1 (port 0: any) and starts accepting. 0 or -errno, logged. */
int rpc_server_listen(struct rpc_server *srv, struct sockaddr_in *addr);
/*
 * Requests waiting for a handler at most; beyond it a request is answered
 * "RPC failed" at once, so that a flood cannot queue without bound.
 */
#define RPC_MAX_HANDLERS 1024
/* Serve requests on the connection's reader itself (no handler task): for
 * a receiver that never blocks, it saves a hand-off per call. */
void rpc_server_set_inline(struct rpc_server *srv, bool on);
/* A frame begun must end within ms (1000 by default), or the connection is cut. */
void rpc_server_set_read_deadline(struct rpc_server *srv, int ms);
/* Stops accepting and ends every connection; handlers finish on their own. */
void rpc_server_close(struct rpc_server *srv);
/* After rpc_server_close, once g's tasks have all returned. */
void rpc_server_free(struct rpc_server *srv);

/* ---- client ---------------------------------------------------------------- */

struct rpc_client;

/*
 * Go's rpc.Dial: connects to addr. *out holds one reference. 0 or -errno,
 * logged. The client has no task of its own: callers read their replies.
 */
int rpc_dial(int id, int peer_id, const struct sockaddr_in *addr, const struct rpc_service *svc,
	     struct rpc_client **out);
/*
 * Go's client.Call: sends args, blocks until the reply (0, *reply filled) or
 * a failure: -ECONNRESET (closed, before or during the call), -EIO (the
 * server answered "RPC failed"), -EINVAL (no such method).
 */
int rpc_call(struct rpc_client *c, int method, const void *args, void *reply);
/* Fails every pending and every later call, and ends the reply reader. */
void rpc_client_close(struct rpc_client *c);
void rpc_client_ref(struct rpc_client *c);
void rpc_client_unref(struct rpc_client *c);

#endif
