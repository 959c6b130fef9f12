/*
 * Server: a CM exposed to its peers over TCP on 127.0.0.1.
 * C twin of part1/server.go in eliben/raft; see server.c for the design.
 */
#ifndef SERVER_H
#define SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

enum rpc_method { RPC_REQUEST_VOTE = 1, RPC_APPEND_ENTRIES = 2 };

/* One RPC: the method, its arguments and, after server_call, its reply. */
struct rpc_call {
	enum rpc_method method;
	union {
		struct request_vote_args rv;
		struct append_entries_args ae;
	} args;
	union {
		struct request_vote_reply rv;
		struct append_entries_reply ae;
	} reply;
};

/* Go: NewServer. Returns NULL (after logging why) on failure. */
struct server *server_new(int server_id, const int *peer_ids, int npeers, struct ready *ready,
			  const struct cm_observer *observer);
/* Go: Serve. Creates the CM, listens on 127.0.0.1:0, starts accepting. */
int server_serve(struct server *s);
/* Go: DisconnectAll. Closes the client connections to every peer. */
void server_disconnect_all(struct server *s);
/* Go: Shutdown. Stops the CM and joins every thread the server started. */
void server_shutdown(struct server *s);
/* Frees a server after server_shutdown (or one that never served). */
void server_free(struct server *s);
int server_get_listen_addr(struct server *s, struct sockaddr_in *addr);
int server_connect_to_peer(struct server *s, int peer_id, const struct sockaddr_in *addr);
int server_disconnect_peer(struct server *s, int peer_id);
/*
 * Go: Call. Sends call->args to peer_id and blocks until the reply arrives
 * (0, call->reply filled) or the call fails (negative errno-style code): the
 * peer is not connected, the connection closed, or the peer's proxy dropped
 * the request.
 */
int server_call(struct server *s, int peer_id, struct rpc_call *call);

struct cm *server_cm(struct server *s);
/* Switches the 1-5 ms delay of served requests (on by default); for benchmarks. */
void server_set_rpc_delay(struct server *s, bool on);
/*
 * A peer that has sent part of a frame must send the rest within this many
 * milliseconds, or its connection is closed (1000 by default). For tests,
 * which lower it to keep a stalled peer's test short.
 */
void server_set_frame_read_deadline(struct server *s, int ms);
/*
 * TEST HOOK, fault injection: the next n thread starts of s fail as if
 * pthread_create had said EAGAIN (0 ends the injection).
 */
void server_fail_thread_starts(struct server *s, int n);

/*
 * Starts a thread, Go's `go` statement: counted per server and per process,
 * named "s<id>-<name>" (15 characters at most), joined by server_shutdown.
 * Like Go's `go`, it does not fail for want of threads: if pthread_create
 * says EAGAIN, the start is deferred and the server's reaper retries it
 * (at shutdown it runs fn itself, which then returns at once). Returns 0,
 * or a negative errno code (logged) when out of memory, shutting down, or
 * with too many starts deferred already; on failure fn never runs.
 */
int server_go(struct server *s, void *(*fn)(void *), void *arg, const char *name_fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Starts deferred at most per server; a request beyond it is answered "RPC failed". */
#define SERVER_GO_DEFER_MAX 1024

/* Threads of this server started so far, and those not yet joined. */
long server_threads_started(struct server *s);
long server_threads_live(struct server *s);
/* The same, over every server of the process. */
long server_process_threads_started(void);
long server_process_threads_live(void);

/*
 * Wire format: every message is one frame, a 20-byte header and a payload,
 * all integers big-endian.
 *   u32 magic "RAFT" | u8 version | u8 kind | u8 method | u8 status |
 *   u64 sequence number | u32 payload length
 * kind 1 is a request, 2 a reply; status is 0, or 1 for "RPC failed" (a
 * reply with no payload). Payloads are fixed per method and kind: int
 * fields as i64, bools as one byte 0 or 1.
 */
#define FRAME_MAGIC	  0x52414654u
#define FRAME_VERSION	  1
#define FRAME_HEADER_SIZE 20
#define FRAME_MAX_PAYLOAD 48
#define FRAME_MAX_SIZE	  (FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD)

enum frame_kind { FRAME_REQUEST = 1, FRAME_REPLY = 2 };
enum frame_status { FRAME_OK = 0, FRAME_FAILED = 1 };

struct frame {
	enum frame_kind kind;
	enum frame_status status;
	uint64_t seq;
	uint32_t payload_len;
	struct rpc_call call; /* method; args for a request, reply for a reply */
};

/* Encodes f into buf (FRAME_MAX_SIZE bytes); returns the frame's length. */
size_t server_frame_encode(const struct frame *f, uint8_t *buf);
/*
 * Decoding checks every field before anything uses it. Both return 0 or
 * -EPROTO, with a reason in why (at least 80 bytes).
 */
int server_frame_decode_header(const uint8_t *buf, struct frame *f, char *why, size_t whylen);
int server_frame_decode_payload(const uint8_t *payload, struct frame *f, char *why, size_t whylen);

#endif
