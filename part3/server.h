/*
 * Server: a CM exposed to its peers over TCP on 127.0.0.1, with its storage.
 * C twin of part3/raft/server.go in eliben/raft; see server.c for the design.
 */
#ifndef SERVER_H
#define SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/rpc.h"
#include "raft.h"

struct chan;
struct go_group;
struct storage;

/* The methods of the "ConsensusModule" service, by wire number. */
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

/*
 * Go: NewServer. The CM persists its state in storage (not owned: it
 * outlives the server, as Go's harness keeps it across a crash) and reports
 * committed entries (struct commit_entry) on commit_chan. Returns NULL
 * (after logging why) on failure.
 */
struct server *server_new(int server_id, const int *peer_ids, int npeers, struct storage *storage,
			  struct chan *ready, struct chan *commit_chan,
			  const struct cm_observer *observer);
/*
 * Go: Serve. Creates the CM (restored from storage if it has data), listens
 * on 127.0.0.1:0, starts accepting. 0 or a negative code (-EBADMSG: the
 * storage's state could not be restored).
 */
int server_serve(struct server *s);
/* Go: Submit: the CM's cm_submit (the log index, or -1). */
int server_submit(struct server *s, const struct cm_command *cmd);
/* Go: IsLeader. */
bool server_is_leader(struct server *s);
/*
 * Go: Proxy().DropCallsAfterN(n): the calls this server makes (to every
 * peer, both methods, one counter) go out n more times, then fail as
 * "RPC failed" without being sent (n = 0: from now on).
 */
void server_drop_calls_after_n(struct server *s, int n);
/* Go: Proxy().DontDropCalls(). */
void server_dont_drop_calls(struct server *s);
/*
 * RAFT_UNRELIABLE_RPC's drops and delays of served requests (the
 * environment's setting by default), switched at run time.
 */
void server_set_unreliable(struct server *s, bool on);
/* Go: DisconnectAll. Closes the client connections to every peer. */
void server_disconnect_all(struct server *s);
/*
 * Go: Shutdown. Stops the CM and the RPC server and waits (2 s at most) for
 * every task the server started. Returns 0, or -ETIMEDOUT with the names of
 * the tasks still running in why; such a server must not be freed.
 */
int server_shutdown(struct server *s, char *why, size_t whylen);
/* Frees a server after server_shutdown returned 0 (or one that never served). */
void server_free(struct server *s);
int server_get_listen_addr(struct server *s, struct sockaddr_in *addr);
int server_connect_to_peer(struct server *s, int peer_id, const struct sockaddr_in *addr);
int server_disconnect_peer(struct server *s, int peer_id);
/*
 * Go: Call. Sends call->args to peer_id (through the proxy's outgoing drop,
 * see server_drop_calls_after_n) and blocks until the reply arrives (0,
 * call->reply filled) or the call fails (negative errno-style code): the
 * call was dropped, the peer is not connected, the connection closed, or
 * the peer's proxy dropped the request.
 */
int server_call(struct server *s, int peer_id, struct rpc_call *call);

struct cm *server_cm(struct server *s);
/* The group of the server's tasks (its CM's too), which shutdown waits for. */
struct go_group *server_tasks(struct server *s);
/* Switches the 1-5 ms delay of served requests (on by default); for benchmarks. */
void server_set_rpc_delay(struct server *s, bool on);
/*
 * A peer that has sent part of a frame must send the rest within this many
 * milliseconds, or its connection is closed (1000 by default). For tests,
 * which lower it to keep a stalled peer's test short.
 */
void server_set_frame_read_deadline(struct server *s, int ms);
/* RPC requests this server has served (answered or dropped) so far. */
long server_rpc_count(struct server *s);

/* server_shutdown waits this long for the server's tasks. */
#define SERVER_SHUTDOWN_TIMEOUT_MS 2000

/*
 * The ConsensusModule service on the wire (lib/rpc.h has the header).
 * int fields as i64, bools as one byte 0 or 1. Every payload is fixed but
 * AppendEntries's request: its six ints (the fifth the number of entries),
 * then each entry as i64 term, u32 length and that many command bytes.
 * AppendEntries's reply is i64 term, bool success, i64 ConflictIndex, i64
 * ConflictTerm.
 * A frame, for tests and the fuzzer, which build and check frames byte by
 * byte.
 */
#define AE_ARGS_FIXED_SIZE (6 * 8)
#define AE_ENTRY_MAX_SIZE  (8 + 4 + CM_COMMAND_MAX)
#define FRAME_HEADER_SIZE  RPC_HEADER_SIZE
#define FRAME_MAX_PAYLOAD  (AE_ARGS_FIXED_SIZE + AE_MAX_ENTRIES * AE_ENTRY_MAX_SIZE)
#define FRAME_MAX_SIZE	   (FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD)

enum frame_kind { FRAME_REQUEST = RPC_REQUEST, FRAME_REPLY = RPC_REPLY };
enum frame_status { FRAME_OK = RPC_OK, FRAME_FAILED = RPC_FAILED };

struct frame {
	enum frame_kind kind;
	enum frame_status status;
	uint64_t seq;
	uint32_t payload_len;
	struct rpc_call call; /* method; args for a request, reply for a reply */
};

extern const struct rpc_service cm_service;

/* Encodes f into buf (FRAME_MAX_SIZE bytes); returns the frame's length. */
size_t server_frame_encode(const struct frame *f, uint8_t *buf);
/*
 * Decoding checks every field before anything uses it. Both return 0 or
 * -EPROTO, with a reason in why (at least 80 bytes).
 */
int server_frame_decode_header(const uint8_t *buf, struct frame *f, char *why, size_t whylen);
int server_frame_decode_payload(const uint8_t *payload, struct frame *f, char *why, size_t whylen);
/* Frees what decoding an AppendEntries request allocated (its entries). */
void server_frame_free(struct frame *f);

#endif
