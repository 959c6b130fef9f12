/*
 * Server container for a Raft consensus module: exposes the CM to the
 * network and carries RPCs between peers. C twin of part3/raft/server.go in
 * eliben/raft; lib/rpc.c stands in for Go's net/rpc.
 *
 * DESIGN
 * Tasks (lib/go.h), all in the server's group, which shutdown waits for:
 * the RPC server's accept loop, connection readers and request handlers,
 * one reply reader per peer client (see lib/rpc.c), and the CM's own (see
 * raft.c).
 * Locking: s->mu guards peer_clients, quit, rpc_delay, unreliable and
 * num_calls_before_drop (Go's RPCProxy.mu), as Go's Server.mu guards
 * peerClients. It is never held across an RPC, a connect(2) or a wait.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chan.h"
#include "lib/clock.h"
#include "lib/go.h"
#include "lib/log.h"
#include "storage.h"

struct server {
	pthread_mutex_t mu;
	pthread_cond_t quit_cond; /* broadcast on quit; RPC proxy delays wait on it */

	int server_id;
	int *peer_ids;
	int npeers;
	int nslots; /* peer_clients has one slot per id up to the largest */

	struct cm *cm;
	struct storage *storage;
	struct rpc_server *rpc_server;
	struct sockaddr_in addr;
	bool listening;
	struct rpc_client **peer_clients;

	struct chan *ready;
	struct chan *commit_chan;
	struct cm_observer observer;
	bool quit;
	bool rpc_delay;
	bool unreliable;
	/* Go's RPCProxy.numCallsBeforeDrop: -1 none, 0 all from now, n > 0 after n more. */
	int num_calls_before_drop;
	atomic_long served;	/* requests served, for harness_rpc_count */
	struct go_group *tasks; /* Go's wg */
};

/* ---- RPCProxy ---------------------------------------------------------------- */

/* Sleeps for ms, or less if the server shuts down. */
static void server_sleep_ms(struct server *s, long ms)
{
	struct timespec deadline = timespec_add_ms(mono_now(), ms);

	pthread_mutex_lock(&s->mu);
	while (!s->quit && !timespec_reached(deadline))
		pthread_cond_timedwait(&s->quit_cond, &s->mu, &deadline);
	pthread_mutex_unlock(&s->mu);
}

/*
 * Go: RPCProxy. Each request waits 1-5 ms first; with RAFT_UNRELIABLE_RPC
 * set, one in ten is dropped instead and one in ten delayed by 75 ms.
 * Returns false if the request is dropped.
 */
static bool rpc_proxy(struct server *s, const char *method)
{
	bool delay, unreliable;

	pthread_mutex_lock(&s->mu);
	unreliable = s->unreliable;
	pthread_mutex_unlock(&s->mu);
	if (unreliable) {
		uint32_t dice = arc4random_uniform(10);

		if (dice == 9) {
			dlog(s->cm, "drop %s", method);
			return false;
		} else if (dice == 8) {
			dlog(s->cm, "delay %s", method);
			server_sleep_ms(s, 75);
		}
		return true;
	}
	pthread_mutex_lock(&s->mu);
	delay = s->rpc_delay;
	pthread_mutex_unlock(&s->mu);
	if (delay)
		server_sleep_ms(s, 1 + (long)arc4random_uniform(5));
	return true;
}

/* Go: RPCProxy.RequestVote. */
static int proxy_request_vote(struct server *s, const struct request_vote_args *args,
			      struct request_vote_reply *reply)
{
	if (!rpc_proxy(s, "RequestVote"))
		return -ECANCELED; /* Go: fmt.Errorf("RPC failed") */
	return cm_request_vote(s->cm, args, reply);
}

/* Go: RPCProxy.AppendEntries. */
static int proxy_append_entries(struct server *s, const struct append_entries_args *args,
				struct append_entries_reply *reply)
{
	if (!rpc_proxy(s, "AppendEntries"))
		return -ECANCELED;
	return cm_append_entries(s->cm, args, reply);
}

/* What lib/rpc calls for each request: net/rpc's dispatch by method name. */
static int serve_cm(void *receiver, int method, const void *args, void *reply)
{
	struct server *s = receiver;

	atomic_fetch_add(&s->served, 1);
	if (method == RPC_REQUEST_VOTE)
		return proxy_request_vote(receiver, args, reply);
	return proxy_append_entries(receiver, args, reply);
}

/* ---- the server -------------------------------------------------------------- */

static int max_id(int id, const int *peer_ids, int npeers)
{
	int m = id;

	for (int i = 0; i < npeers; i++)
		if (peer_ids[i] > m)
			m = peer_ids[i];
	return m;
}

/* Go: NewServer. */
struct server *server_new(int server_id, const int *peer_ids, int npeers, struct storage *storage,
			  struct chan *ready, struct chan *commit_chan,
			  const struct cm_observer *observer)
{
	struct server *s = calloc(1, sizeof(*s));
	char prefix[GO_NAME_SIZE];

	if (!s)
		goto out_nomem;
	snprintf(prefix, sizeof(prefix), "s%d", server_id);
	s->server_id = server_id;
	s->npeers = npeers;
	s->nslots = max_id(server_id, peer_ids, npeers) + 1;
	s->peer_ids = calloc((size_t)npeers + 1, sizeof(int));
	s->peer_clients = calloc((size_t)s->nslots, sizeof(struct rpc_client *));
	s->tasks = go_group_new(prefix);
	if (!s->peer_ids || !s->peer_clients || !s->tasks || cond_init_monotonic(&s->quit_cond))
		goto out_free;
	if (npeers > 0) /* memcpy's pointers must not be NULL, even for 0 bytes */
		memcpy(s->peer_ids, peer_ids, (size_t)npeers * sizeof(int));
	s->storage = storage;
	s->ready = ready;
	s->commit_chan = commit_chan;
	s->unreliable = raft_unreliable_rpc();
	s->num_calls_before_drop = -1;
	atomic_init(&s->served, 0);
	if (observer)
		s->observer = *observer;
	s->rpc_delay = true;
	pthread_mutex_init(&s->mu, NULL);
	return s;

out_free:
	go_group_free(s->tasks);
	free(s->peer_ids);
	free(s->peer_clients);
	free(s);
out_nomem:
	log_printf("[%d] server_new: %s", server_id, strerror(ENOMEM));
	return NULL;
}

/* Go: Serve. */
int server_serve(struct server *s)
{
	char ip[INET_ADDRSTRLEN];
	int rc;

	s->cm = cm_new(s->server_id, s->peer_ids, s->npeers, s, s->storage, s->ready,
		       s->commit_chan, &s->observer);
	if (!s->cm)
		return s->storage && storage_has_data(s->storage) ? -EBADMSG : -ENOMEM;
	s->rpc_server = rpc_server_new(s->server_id, &cm_service, s, s->tasks);
	if (!s->rpc_server)
		return -ENOMEM;
	rc = rpc_server_listen(s->rpc_server, &s->addr);
	if (rc < 0)
		return rc;
	s->listening = true;
	inet_ntop(AF_INET, &s->addr.sin_addr, ip, sizeof(ip));
	log_printf("[%d] listening at %s:%d", s->server_id, ip, ntohs(s->addr.sin_port));
	return 0;
}

/* Go: DisconnectAll. */
void server_disconnect_all(struct server *s)
{
	for (int id = 0; id < s->nslots; id++)
		if (id != s->server_id)
			server_disconnect_peer(s, id);
}

/*
 * Go: Shutdown. Unlike Go's, it returns only when every task the server
 * started has returned (milliseconds: each waits on something this wakes),
 * or after SERVER_SHUTDOWN_TIMEOUT_MS, naming those that did not.
 */
int server_shutdown(struct server *s, char *why, size_t whylen)
{
	if (s->cm)
		cm_stop(s->cm);
	pthread_mutex_lock(&s->mu);
	s->quit = true;
	pthread_cond_broadcast(&s->quit_cond);
	pthread_mutex_unlock(&s->mu);
	if (s->rpc_server)
		rpc_server_close(s->rpc_server);
	server_disconnect_all(s);
	return go_group_wait(s->tasks, SERVER_SHUTDOWN_TIMEOUT_MS, why, whylen);
}

void server_free(struct server *s)
{
	if (!s)
		return;
	rpc_server_free(s->rpc_server);
	cm_free(s->cm);
	go_group_free(s->tasks);
	pthread_cond_destroy(&s->quit_cond);
	pthread_mutex_destroy(&s->mu);
	free(s->peer_clients);
	free(s->peer_ids);
	free(s);
}

/* Go: GetListenAddr. */
int server_get_listen_addr(struct server *s, struct sockaddr_in *addr)
{
	if (!s->listening)
		return -ENOTCONN;
	*addr = s->addr;
	return 0;
}

static bool valid_peer(struct server *s, int peer_id)
{
	return peer_id >= 0 && peer_id < s->nslots && peer_id != s->server_id;
}

/* 0 if peer_id has no client yet, 1 if it has, -ESHUTDOWN. Expects s->mu held. */
static int peer_slot_state(struct server *s, int peer_id)
{
	if (s->quit)
		return -ESHUTDOWN;
	return s->peer_clients[peer_id] ? 1 : 0;
}

/*
 * Go: ConnectToPeer. A no-op if already connected. No lock is held across
 * connect(2): a peer whose backlog is full can keep it waiting for seconds.
 */
int server_connect_to_peer(struct server *s, int peer_id, const struct sockaddr_in *addr)
{
	struct rpc_client *c;
	int rc;

	if (!valid_peer(s, peer_id))
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	rc = peer_slot_state(s, peer_id);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		return rc > 0 ? 0 : rc;
	rc = rpc_dial(s->server_id, peer_id, addr, &cm_service, &c);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	/* Connected meanwhile by another caller, or shutting down: drop ours. */
	rc = peer_slot_state(s, peer_id);
	if (!rc)
		s->peer_clients[peer_id] = c;
	pthread_mutex_unlock(&s->mu);
	if (rc) {
		rpc_client_close(c);
		rpc_client_unref(c);
	}
	return rc > 0 ? 0 : rc;
}

/* Go: DisconnectPeer. Every pending and every later call to peer_id fails. */
int server_disconnect_peer(struct server *s, int peer_id)
{
	struct rpc_client *c;

	if (!valid_peer(s, peer_id))
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	c = s->peer_clients[peer_id];
	s->peer_clients[peer_id] = NULL;
	pthread_mutex_unlock(&s->mu);
	if (c) {
		rpc_client_close(c);
		rpc_client_unref(c);
	}
	return 0;
}

int server_submit(struct server *s, const struct cm_command *cmd)
{
	return cm_submit(s->cm, cmd);
}

bool server_is_leader(struct server *s)
{
	bool is_leader;

	cm_report(s->cm, NULL, NULL, &is_leader);
	return is_leader;
}

void server_drop_calls_after_n(struct server *s, int n)
{
	pthread_mutex_lock(&s->mu);
	s->num_calls_before_drop = n;
	pthread_mutex_unlock(&s->mu);
}

void server_dont_drop_calls(struct server *s)
{
	pthread_mutex_lock(&s->mu);
	s->num_calls_before_drop = -1;
	pthread_mutex_unlock(&s->mu);
}

void server_set_unreliable(struct server *s, bool on)
{
	pthread_mutex_lock(&s->mu);
	s->unreliable = on;
	pthread_mutex_unlock(&s->mu);
	if (on && s->rpc_server)
		rpc_server_set_inline(s->rpc_server, false);
}

/*
 * Go: RPCProxy.Call, the outgoing side of the proxy: true if the call may
 * go out, false if it is dropped (logged as Go logs it).
 */
static bool proxy_call(struct server *s, const struct rpc_call *call)
{
	char buf[LOG_BUF_SIZE];
	bool drop;

	pthread_mutex_lock(&s->mu);
	drop = s->num_calls_before_drop == 0;
	if (s->num_calls_before_drop > 0)
		s->num_calls_before_drop--;
	pthread_mutex_unlock(&s->mu);
	if (!drop)
		return true;
	if (call->method == RPC_REQUEST_VOTE) {
		const struct request_vote_args *a = &call->args.rv;

		dlog(s->cm, "drop Call ConsensusModule.RequestVote: {%d %d %d %d}", a->term,
		     a->candidate_id, a->last_log_index, a->last_log_term);
	} else {
		dlog(s->cm, "drop Call ConsensusModule.AppendEntries: %s",
		     format_ae_args(&call->args.ae, false, buf, sizeof(buf)));
	}
	return false;
}

/* Go: Call. */
int server_call(struct server *s, int peer_id, struct rpc_call *call)
{
	struct rpc_client *c;
	int rc;

	if (!valid_peer(s, peer_id))
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	c = s->peer_clients[peer_id];
	if (c)
		rpc_client_ref(c);
	pthread_mutex_unlock(&s->mu);

	/* Go: "call client %d after it's closed". */
	if (!c)
		return -ENOTCONN;
	if (!proxy_call(s, call)) {
		rpc_client_unref(c);
		return -EIO; /* Go: fmt.Errorf("RPC failed") */
	}
	rc = rpc_call(c, (int)call->method, &call->args, &call->reply);
	rpc_client_unref(c);
	return rc;
}

struct cm *server_cm(struct server *s)
{
	return s->cm;
}

struct go_group *server_tasks(struct server *s)
{
	return s->tasks;
}

/* Without the proxy's delay, a request is served on its reader (lib/rpc.h). */
void server_set_rpc_delay(struct server *s, bool on)
{
	pthread_mutex_lock(&s->mu);
	s->rpc_delay = on;
	pthread_mutex_unlock(&s->mu);
	if (s->rpc_server)
		rpc_server_set_inline(s->rpc_server, !on && !s->unreliable);
}

void server_set_frame_read_deadline(struct server *s, int ms)
{
	rpc_server_set_read_deadline(s->rpc_server, ms);
}

long server_rpc_count(struct server *s)
{
	return atomic_load(&s->served);
}

/* ---- the codecs of the two methods (Go's gob) ------------------------------- */

/* Payload sizes: int fields are 8 bytes, bools 1. */
#define RV_ARGS_SIZE  32u /* four ints */
#define RV_REPLY_SIZE (8 + 1)
#define AE_REPLY_SIZE (8 + 1 + 8 + 8)

static uint8_t *put_int(uint8_t *p, int v)
{
	rpc_put_u64(p, (uint64_t)(int64_t)v);
	return p + 8;
}

/* Reads one int field, which must lie in [min, max]. */
static bool get_int(const uint8_t **p, int min, int max, int *out)
{
	int64_t v = (int64_t)rpc_get_u64(*p);

	*p += 8;
	if (v < min || v > max)
		return false;
	*out = (int)v;
	return true;
}

/* A term from the wire: never one that an election could overflow. */
static bool get_term(const uint8_t **p, int *term)
{
	return get_int(p, 0, CM_MAX_TERM, term);
}

static bool get_bool(const uint8_t **p, bool *out)
{
	uint8_t v = *(*p)++;

	*out = v == 1;
	return v <= 1;
}

static size_t encode_rv_args(const void *v, uint8_t *p)
{
	const struct request_vote_args *a = v;

	p = put_int(p, a->term);
	p = put_int(p, a->candidate_id);
	p = put_int(p, a->last_log_index);
	put_int(p, a->last_log_term);
	return RV_ARGS_SIZE;
}

static int decode_rv_args(const uint8_t *p, uint32_t len, void *v)
{
	struct request_vote_args *a = v;

	if (len != RV_ARGS_SIZE || !get_term(&p, &a->term) ||
	    !get_int(&p, 0, INT32_MAX, &a->candidate_id) ||
	    !get_int(&p, -1, INT32_MAX, &a->last_log_index) ||
	    !get_int(&p, -1, INT32_MAX, &a->last_log_term))
		return -EPROTO;
	return 0;
}

static size_t encode_ae_args(const void *v, uint8_t *buf)
{
	const struct append_entries_args *a = v;
	uint8_t *p = buf;

	p = put_int(p, a->term);
	p = put_int(p, a->leader_id);
	p = put_int(p, a->prev_log_index);
	p = put_int(p, a->prev_log_term);
	p = put_int(p, a->leader_commit);
	p = put_int(p, a->nentries);
	for (int i = 0; i < a->nentries; i++) {
		const struct cm_command *c = &a->entries[i].command;

		p = put_int(p, a->entries[i].term);
		rpc_put_u32(p, c->len);
		memcpy(p + 4, c->bytes, c->len);
		p += 4 + c->len;
	}
	return (size_t)(p - buf);
}

/*
 * Decodes the entries that follow the fixed part: every count and length
 * is checked against what is left of the payload before it is used, so a
 * frame that lies about them allocates nothing. 0 or -EPROTO.
 */
static int decode_ae_entries(const uint8_t *p, uint32_t left, struct append_entries_args *a)
{
	if (a->nentries == 0)
		return left == 0 ? 0 : -EPROTO;
	/* Each entry takes 12 bytes at least: a count larger than that is a lie. */
	if ((uint32_t)a->nentries > left / 12)
		return -EPROTO;
	a->entries = calloc((size_t)a->nentries, sizeof(*a->entries));
	if (!a->entries)
		return -EPROTO;
	for (int i = 0; i < a->nentries; i++) {
		struct cm_command *c = &a->entries[i].command;
		uint32_t len;

		if (left < 12 || !get_term(&p, &a->entries[i].term))
			goto out_free;
		len = rpc_get_u32(p);
		p += 4;
		left -= 12;
		if (len > CM_COMMAND_MAX || len > left)
			goto out_free;
		c->len = (uint16_t)len;
		memcpy(c->bytes, p, len);
		p += len;
		left -= len;
	}
	if (left == 0)
		return 0;
out_free:
	free(a->entries);
	a->entries = NULL;
	return -EPROTO;
}

static int decode_ae_args(const uint8_t *p, uint32_t len, void *v)
{
	struct append_entries_args *a = v;

	a->entries = NULL;
	if (len < AE_ARGS_FIXED_SIZE || !get_term(&p, &a->term) ||
	    !get_int(&p, 0, INT32_MAX, &a->leader_id) ||
	    !get_int(&p, -1, INT32_MAX, &a->prev_log_index) ||
	    !get_int(&p, -1, CM_MAX_TERM, &a->prev_log_term) ||
	    !get_int(&p, -1, INT32_MAX, &a->leader_commit) ||
	    !get_int(&p, 0, AE_MAX_ENTRIES, &a->nentries))
		return -EPROTO;
	/* An index near INT32_MAX would overflow prev_log_index + nentries. */
	if (a->prev_log_index > INT32_MAX - AE_MAX_ENTRIES - 1)
		return -EPROTO;
	return decode_ae_entries(p, len - AE_ARGS_FIXED_SIZE, a);
}

static void free_ae_args(void *v)
{
	struct append_entries_args *a = v;

	free(a->entries);
	a->entries = NULL;
}

/* Both replies are a term and a bool. */
static size_t encode_term_bool(int term, bool b, uint8_t *p)
{
	p = put_int(p, term);
	*p = b;
	return 8 + 1;
}

static size_t encode_rv_reply(const void *v, uint8_t *p)
{
	const struct request_vote_reply *r = v;

	return encode_term_bool(r->term, r->vote_granted, p);
}

static int decode_rv_reply(const uint8_t *p, uint32_t len, void *v)
{
	struct request_vote_reply *r = v;

	return len == RV_REPLY_SIZE && get_term(&p, &r->term) && get_bool(&p, &r->vote_granted)
		       ? 0
		       : -EPROTO;
}

static size_t encode_ae_reply(const void *v, uint8_t *p)
{
	const struct append_entries_reply *r = v;

	p += encode_term_bool(r->term, r->success, p);
	p = put_int(p, r->conflict_index);
	put_int(p, r->conflict_term);
	return AE_REPLY_SIZE;
}

static int decode_ae_reply(const uint8_t *p, uint32_t len, void *v)
{
	struct append_entries_reply *r = v;

	return len == AE_REPLY_SIZE && get_term(&p, &r->term) && get_bool(&p, &r->success) &&
			       get_int(&p, 0, INT32_MAX, &r->conflict_index) &&
			       get_int(&p, -1, CM_MAX_TERM, &r->conflict_term)
		       ? 0
		       : -EPROTO;
}

static const struct rpc_method_def cm_methods[] = {
	[RPC_REQUEST_VOTE - 1] = {
		.name = "RequestVote", .task_name = "h-rv",
		.args_size = sizeof(struct request_vote_args),
		.reply_size = sizeof(struct request_vote_reply),
		.args_max = RV_ARGS_SIZE, .reply_max = RV_REPLY_SIZE,
		.encode_args = encode_rv_args, .decode_args = decode_rv_args,
		.encode_reply = encode_rv_reply, .decode_reply = decode_rv_reply,
	},
	[RPC_APPEND_ENTRIES - 1] = {
		.name = "AppendEntries", .task_name = "h-ae",
		.args_size = sizeof(struct append_entries_args),
		.reply_size = sizeof(struct append_entries_reply),
		.args_max = FRAME_MAX_PAYLOAD, .reply_max = AE_REPLY_SIZE,
		.encode_args = encode_ae_args, .decode_args = decode_ae_args,
		.encode_reply = encode_ae_reply, .decode_reply = decode_ae_reply,
		.free_args = free_ae_args,
	},
};

/* Go: s.rpcServer.RegisterName("ConsensusModule", s.rpcProxy). */
const struct rpc_service cm_service = {
	.name = "ConsensusModule",
	.methods = cm_methods,
	.nmethods = 2,
	.serve = serve_cm,
};

/* ---- frames, for tests and the fuzzer ------------------------------------------ */

size_t server_frame_encode(const struct frame *f, uint8_t *buf)
{
	const struct rpc_method_def *m = &cm_methods[f->call.method - 1];
	struct rpc_header h = { .kind = (enum rpc_kind)f->kind,
				.method = (int)f->call.method,
				.status = (enum rpc_status)f->status,
				.seq = f->seq };
	uint8_t *p = buf + FRAME_HEADER_SIZE;

	if (f->status == FRAME_OK)
		h.len = (uint32_t)(f->kind == FRAME_REQUEST ? m->encode_args(&f->call.args, p)
							    : m->encode_reply(&f->call.reply, p));
	rpc_header_encode(&h, buf);
	return FRAME_HEADER_SIZE + h.len;
}

int server_frame_decode_header(const uint8_t *buf, struct frame *f, char *why, size_t whylen)
{
	struct rpc_header h;
	int rc = rpc_header_decode(&cm_service, buf, &h, why, whylen);

	memset(f, 0, sizeof(*f));
	if (rc)
		return rc;
	f->kind = (enum frame_kind)h.kind;
	f->status = (enum frame_status)h.status;
	f->seq = h.seq;
	f->payload_len = h.len;
	f->call.method = (enum rpc_method)h.method;
	return 0;
}

int server_frame_decode_payload(const uint8_t *p, struct frame *f, char *why, size_t whylen)
{
	const struct rpc_method_def *m = &cm_methods[f->call.method - 1];
	int rc;

	if (f->status == FRAME_FAILED)
		return 0;
	rc = f->kind == FRAME_REQUEST ? m->decode_args(p, f->payload_len, &f->call.args)
				      : m->decode_reply(p, f->payload_len, &f->call.reply);
	if (rc)
		snprintf(why, whylen, "field out of range in %s %s", m->name,
			 f->kind == FRAME_REQUEST ? "request" : "reply");
	return rc;
}

void server_frame_free(struct frame *f)
{
	if (f->kind == FRAME_REQUEST && f->call.method == RPC_APPEND_ENTRIES)
		free_ae_args(&f->call.args.ae);
}
