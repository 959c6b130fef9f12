/*
 * Server container for a Raft consensus module: exposes the CM to the
 * network and carries RPCs between peers. C twin of part1/server.go in
 * eliben/raft, with a small RPC system in place of Go's net/rpc.
 *
 * DESIGN
 * Threads, all started with server_go (counted, named "s<id>-...", joined):
 *   "s<id>-accept"   accept loop; one reader per accepted connection.
 *   "s<id>-conn"     reads request frames from one peer; one handler each.
 *   "s<id>-h-rv"     serves one request (RequestVote / AppendEntries) as
 *   "s<id>-h-ae"     net/rpc does, on its own thread: the RPC proxy's delay,
 *                    the CM call, the reply.
 *   "s<id>-reply<P>" reads replies from peer P's connection, wakes callers.
 *   "s<id>-reap"     joins every thread that has finished, and starts those
 *                    that could not start at once for want of threads
 *                    (started directly; server_shutdown joins it last).
 * plus the CM's threads (see raft.c).
 * Locking:
 *   s->mu          peer_clients, conns, quit, the listener's state.
 *   s->threads_mu  the thread lists and counts.
 *   client->mu     a client's pending calls and closed flag.
 *   client->write_mu, conn->write_mu  keep frames whole on a shared socket.
 * Order: s->mu before client->mu; threads_mu is innermost. No lock is held
 * across a call to the CM (which has its own), a wait for a reply or a join.
 * Sockets are never closed under a thread that may use them: shutdown(2)
 * wakes the readers, and the last reference closes the descriptor.
 * A peer cannot hold a reader forever: once a frame has begun, the rest must
 * arrive within the read deadline (FRAME_READ_DEADLINE_MS by default).
 */
#include "server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

/* A peer that stops mid-frame for this long is cut off. */
#define FRAME_READ_DEADLINE_MS 1000
/* Pause after accept fails for lack of descriptors or memory. */
#define ACCEPT_BACKOFF_MS 50
/*
 * Stack size of every thread server_go starts. The deepest frame is a log
 * line (1 KiB under vsnprintf); glibc's default of 8 MiB would not fit in
 * its cache of free stacks (40 MiB), so every heartbeat round would mmap
 * and munmap stacks (measured: tools/raft-bench, idle CPU).
 */
#define GO_STACK_SIZE (256 * 1024)
/* Out of threads, the reaper retries deferred starts this often. */
#define DEFER_RETRY_MS 10

/* ---- threads -------------------------------------------------------------- */

struct go_thread {
	TAILQ_ENTRY(go_thread) link;
	pthread_t tid;
	struct server *s;
	void *(*fn)(void *);
	void *arg;
	char name[16];
};
TAILQ_HEAD(go_thread_list, go_thread);

/* ---- connections ---------------------------------------------------------- */

/* Server side of one accepted connection. */
struct conn {
	TAILQ_ENTRY(conn) link;
	struct server *s;
	int fd;
	pthread_mutex_t write_mu;
	int refs; /* guarded by s->mu: the reader and each handler */
};
TAILQ_HEAD(conn_list, conn);

/* A caller waiting in server_call; lives on the caller's stack. */
struct pending_call {
	TAILQ_ENTRY(pending_call) link;
	uint64_t seq;
	struct rpc_call *call;
	bool done;
	int err;
};

/* Go's rpc.Client: one connection to a peer, any number of calls in flight. */
struct client {
	struct server *s;
	int peer_id;
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* broadcast when a call completes or on close */
	pthread_mutex_t write_mu;
	uint64_t next_seq;
	bool closed;
	int refs; /* guarded by mu: peer_clients, the reply reader, callers */
	TAILQ_HEAD(, pending_call) pending;
};

struct server {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* broadcast on quit; RPC delays wait on it */

	int id;
	int *peer_ids;
	int npeers;
	int nslots; /* peer_clients has one slot per id up to the largest */

	struct cm *cm;
	struct ready *ready;
	struct cm_observer observer;

	int listen_fd;
	struct sockaddr_in addr;
	struct client **peer_clients;
	struct conn_list conns;
	bool quit;
	bool rpc_delay;
	/* Read on every frame without s->mu: a test may lower it while serving. */
	atomic_int read_deadline_ms;
	/* The accept thread's own: a run of failures is logged once. */
	long accept_failures; /* since the last success */
	int accept_last_err;

	pthread_mutex_t threads_mu;
	pthread_cond_t threads_cond; /* a thread finished, or shutdown */
	pthread_attr_t thread_attr;  /* GO_STACK_SIZE stacks */
	struct go_thread_list running;
	struct go_thread_list finished;
	struct go_thread_list deferred; /* could not start yet; the reaper retries */
	int ndeferred;
	long deferred_total; /* deferred since the last time all of them started */
	long started;
	long live;
	bool reaper_stop;
	bool reaper_exited;
	pthread_t reaper;
	bool reaper_started;
	int fail_thread_starts; /* test hook; guarded by threads_mu */
};

static atomic_long process_started;
static atomic_long process_live;

static void thread_finished(struct go_thread *t)
{
	struct server *s = t->s;

	pthread_mutex_lock(&s->threads_mu);
	TAILQ_REMOVE(&s->running, t, link);
	TAILQ_INSERT_TAIL(&s->finished, t, link);
	pthread_cond_broadcast(&s->threads_cond);
	pthread_mutex_unlock(&s->threads_mu);
}

static void *go_trampoline(void *p)
{
	struct go_thread *t = p;

	pthread_setname_np(pthread_self(), t->name);
	t->fn(t->arg);
	thread_finished(t);
	return NULL;
}

static void make_thread_name(char *name, size_t size, int id, const char *fmt, va_list ap)
{
	int n = snprintf(name, size, "s%d-", id);

	/* pthread_setname_np takes 15 characters: longer names are cut. */
	if (n > 0 && (size_t)n < size)
		vsnprintf(name + n, size - (size_t)n, fmt, ap);
}

/*
 * Starts t's thread, or returns pthread_create's error (or the injected
 * one). Expects s->threads_mu held.
 */
static int start_go_thread(struct server *s, struct go_thread *t)
{
	int rc;

	if (s->fail_thread_starts > 0) {
		s->fail_thread_starts--;
		return EAGAIN; /* what pthread_create says when out of threads */
	}
	/* Listed before it runs, so that it is on a list when it finishes. */
	TAILQ_INSERT_TAIL(&s->running, t, link);
	rc = pthread_create(&t->tid, &s->thread_attr, go_trampoline, t);
	if (rc) {
		TAILQ_REMOVE(&s->running, t, link);
		return rc;
	}
	s->started++;
	s->live++;
	atomic_fetch_add(&process_started, 1);
	atomic_fetch_add(&process_live, 1);
	return 0;
}

/*
 * Queues t for the reaper to start when threads are available again: Go's
 * `go` cannot fail, and the CM relies on that (a follower whose election
 * timer never starts would never stand for election). The first deferral
 * of a run is logged; the reaper logs when they have all started. Expects
 * s->threads_mu held; false if the queue is full.
 */
static bool defer_go_thread(struct server *s, struct go_thread *t, int err)
{
	if (s->ndeferred >= SERVER_GO_DEFER_MAX)
		return false;
	if (s->ndeferred == 0 && s->deferred_total == 0)
		log_printf("[%d] cannot start thread %s: %s; retrying", s->id, t->name,
			   strerror(err));
	TAILQ_INSERT_TAIL(&s->deferred, t, link);
	s->ndeferred++;
	s->deferred_total++;
	pthread_cond_broadcast(&s->threads_cond); /* the reaper shortens its wait */
	return true;
}

int server_go(struct server *s, void *(*fn)(void *), void *arg, const char *name_fmt, ...)
{
	struct go_thread *t = calloc(1, sizeof(*t));
	va_list ap;
	int rc;

	if (!t) {
		log_printf("[%d] cannot start a thread: %s", s->id, strerror(ENOMEM));
		return -ENOMEM;
	}
	t->s = s;
	t->fn = fn;
	t->arg = arg;
	va_start(ap, name_fmt);
	make_thread_name(t->name, sizeof(t->name), s->id, name_fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&s->threads_mu);
	if (s->reaper_exited) {
		rc = ESHUTDOWN;
		goto out_unlock;
	}
	/* Threads already waiting go first, and a new one waits behind them. */
	rc = s->ndeferred ? EAGAIN : start_go_thread(s, t);
	if (rc == EAGAIN && defer_go_thread(s, t, rc))
		rc = 0;
out_unlock:
	pthread_mutex_unlock(&s->threads_mu);
	if (rc) {
		log_printf("[%d] cannot start thread %s: %s", s->id, t->name, strerror(rc));
		free(t);
	}
	return -rc;
}

void server_fail_thread_starts(struct server *s, int n)
{
	pthread_mutex_lock(&s->threads_mu);
	s->fail_thread_starts = n;
	pthread_mutex_unlock(&s->threads_mu);
}

/* Joins every finished thread; returns with threads_mu held. */
static void join_finished(struct server *s)
{
	while (!TAILQ_EMPTY(&s->finished)) {
		struct go_thread *t = TAILQ_FIRST(&s->finished);

		TAILQ_REMOVE(&s->finished, t, link);
		pthread_mutex_unlock(&s->threads_mu);
		pthread_join(t->tid, NULL);
		free(t);
		atomic_fetch_sub(&process_live, 1);
		pthread_mutex_lock(&s->threads_mu);
		s->live--;
	}
}

/* Starts deferred threads in order until one fails. Expects threads_mu held. */
static void start_deferred(struct server *s)
{
	while (!TAILQ_EMPTY(&s->deferred)) {
		struct go_thread *t = TAILQ_FIRST(&s->deferred);

		TAILQ_REMOVE(&s->deferred, t, link);
		if (start_go_thread(s, t) != 0) {
			TAILQ_INSERT_HEAD(&s->deferred, t, link);
			return;
		}
		s->ndeferred--;
	}
	if (s->deferred_total > 0)
		log_printf("[%d] threads start again; %ld deferred starts done", s->id,
			   s->deferred_total);
	s->deferred_total = 0;
}

/*
 * At shutdown, runs each thread that never started on the reaper itself:
 * its function returns at once on a stopped server (every thread's does),
 * and frees what it was given. Expects threads_mu held.
 */
static void run_deferred_inline(struct server *s)
{
	while (!TAILQ_EMPTY(&s->deferred)) {
		struct go_thread *t = TAILQ_FIRST(&s->deferred);

		TAILQ_REMOVE(&s->deferred, t, link);
		s->ndeferred--;
		pthread_mutex_unlock(&s->threads_mu);
		t->fn(t->arg);
		free(t);
		pthread_mutex_lock(&s->threads_mu);
	}
}

/*
 * The reaper joins threads as they finish, so that a long-running server
 * does not collect zombies, and at shutdown waits until every thread the
 * server started has finished and been joined.
 */
static void *reaper(void *arg)
{
	struct server *s = arg;

	pthread_mutex_lock(&s->threads_mu);
	for (;;) {
		join_finished(s);
		start_deferred(s);
		if (s->reaper_stop)
			run_deferred_inline(s);
		if (s->reaper_stop && TAILQ_EMPTY(&s->running) && TAILQ_EMPTY(&s->deferred))
			break;
		long wait_ms = TAILQ_EMPTY(&s->deferred) ? 1000 : DEFER_RETRY_MS;
		struct timespec deadline = timespec_add_ms(mono_now(), wait_ms);
		pthread_cond_timedwait(&s->threads_cond, &s->threads_mu, &deadline);
	}
	s->reaper_exited = true;
	pthread_mutex_unlock(&s->threads_mu);
	return NULL;
}

static int start_reaper(struct server *s)
{
	int rc = pthread_create(&s->reaper, NULL, reaper, s);
	char name[16];

	if (rc) {
		log_printf("[%d] cannot start thread reap: %s", s->id, strerror(rc));
		return -rc;
	}
	snprintf(name, sizeof(name), "s%d-reap", s->id);
	pthread_setname_np(s->reaper, name);
	s->reaper_started = true;
	pthread_mutex_lock(&s->threads_mu);
	s->started++;
	s->live++;
	pthread_mutex_unlock(&s->threads_mu);
	atomic_fetch_add(&process_started, 1);
	atomic_fetch_add(&process_live, 1);
	return 0;
}

static void stop_reaper(struct server *s)
{
	if (!s->reaper_started)
		return;
	pthread_mutex_lock(&s->threads_mu);
	s->reaper_stop = true;
	pthread_cond_broadcast(&s->threads_cond);
	pthread_mutex_unlock(&s->threads_mu);
	pthread_join(s->reaper, NULL);
	s->reaper_started = false;
	pthread_mutex_lock(&s->threads_mu);
	s->live--;
	pthread_mutex_unlock(&s->threads_mu);
	atomic_fetch_sub(&process_live, 1);
}

long server_threads_started(struct server *s)
{
	long n;

	pthread_mutex_lock(&s->threads_mu);
	n = s->started;
	pthread_mutex_unlock(&s->threads_mu);
	return n;
}

long server_threads_live(struct server *s)
{
	long n;

	pthread_mutex_lock(&s->threads_mu);
	n = s->live;
	pthread_mutex_unlock(&s->threads_mu);
	return n;
}

long server_process_threads_started(void)
{
	return atomic_load(&process_started);
}

long server_process_threads_live(void)
{
	return atomic_load(&process_live);
}

/* ---- socket I/O ----------------------------------------------------------- */

/* Writes all of buf; 0 or a negative errno. Never raises SIGPIPE. */
static int write_full(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Waits until fd is readable or deadline passes: 0, -ETIMEDOUT or -errno. */
static int wait_readable(int fd, struct timespec deadline)
{
	for (;;) {
		long left = -elapsed_ms(deadline);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int rc;

		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&pfd, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/*
 * Reads exactly len bytes, all of which must arrive within deadline_ms.
 * The bytes are usually there already (the peer wrote the frame in one
 * send), so it reads first and polls only when they are not: one syscall
 * in the common case. Returns 0, -ETIMEDOUT, -EPIPE on end of stream, or
 * another negative errno.
 */
static int read_full(int fd, uint8_t *buf, size_t len, int deadline_ms)
{
	struct timespec deadline = timespec_add_ms(mono_now(), deadline_ms);
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		int rc;

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		rc = wait_readable(fd, deadline);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Waits, without a deadline (a quiet peer is fine), for a frame to begin,
 * and reads as much of its header as has come. Returns the number of bytes
 * read, -ECONNRESET on end of stream, or another negative errno.
 */
static ssize_t read_frame_start(int fd, uint8_t *buf)
{
	for (;;) {
		ssize_t n = recv(fd, buf, FRAME_HEADER_SIZE, 0);

		if (n > 0)
			return n;
		if (n == 0)
			return -ECONNRESET;
		if (errno != EINTR)
			return -errno;
	}
}

/* ---- wire format ---------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* Payload sizes: int fields are 8 bytes, bools 1. */
#define RV_ARGS_SIZE  (4 * 8)
#define RV_REPLY_SIZE (8 + 1)
#define AE_ARGS_SIZE  (6 * 8) /* five ints and the number of entries */
#define AE_REPLY_SIZE (8 + 1)

static uint32_t payload_size(enum frame_kind kind, enum rpc_method method, enum frame_status status)
{
	if (kind == FRAME_REPLY && status == FRAME_FAILED)
		return 0;
	if (method == RPC_REQUEST_VOTE)
		return kind == FRAME_REQUEST ? RV_ARGS_SIZE : RV_REPLY_SIZE;
	return kind == FRAME_REQUEST ? AE_ARGS_SIZE : AE_REPLY_SIZE;
}

static uint8_t *put_int(uint8_t *p, int v)
{
	put_u64(p, (uint64_t)(int64_t)v);
	return p + 8;
}

static size_t encode_payload(const struct frame *f, uint8_t *p)
{
	const struct rpc_call *c = &f->call;
	uint8_t *start = p;

	if (f->kind == FRAME_REPLY && f->status == FRAME_FAILED)
		return 0;
	if (f->kind == FRAME_REQUEST && c->method == RPC_REQUEST_VOTE) {
		p = put_int(p, c->args.rv.term);
		p = put_int(p, c->args.rv.candidate_id);
		p = put_int(p, c->args.rv.last_log_index);
		p = put_int(p, c->args.rv.last_log_term);
	} else if (f->kind == FRAME_REQUEST) {
		p = put_int(p, c->args.ae.term);
		p = put_int(p, c->args.ae.leader_id);
		p = put_int(p, c->args.ae.prev_log_index);
		p = put_int(p, c->args.ae.prev_log_term);
		p = put_int(p, c->args.ae.leader_commit);
		p = put_int(p, 0); /* no entries in part 1 */
	} else if (c->method == RPC_REQUEST_VOTE) {
		p = put_int(p, c->reply.rv.term);
		*p++ = c->reply.rv.vote_granted;
	} else {
		p = put_int(p, c->reply.ae.term);
		*p++ = c->reply.ae.success;
	}
	return (size_t)(p - start);
}

size_t server_frame_encode(const struct frame *f, uint8_t *buf)
{
	size_t len = encode_payload(f, buf + FRAME_HEADER_SIZE);

	put_u32(buf, FRAME_MAGIC);
	buf[4] = FRAME_VERSION;
	buf[5] = (uint8_t)f->kind;
	buf[6] = (uint8_t)f->call.method;
	buf[7] = (uint8_t)f->status;
	put_u64(buf + 8, f->seq);
	put_u32(buf + 16, (uint32_t)len);
	return FRAME_HEADER_SIZE + len;
}

static int bad_frame(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad_frame(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

int server_frame_decode_header(const uint8_t *buf, struct frame *f, char *why, size_t whylen)
{
	uint32_t magic = get_u32(buf);
	uint8_t kind = buf[5], method = buf[6], status = buf[7];

	memset(f, 0, sizeof(*f));
	if (magic != FRAME_MAGIC)
		return bad_frame(why, whylen, "bad magic 0x%08x", magic);
	if (buf[4] != FRAME_VERSION)
		return bad_frame(why, whylen, "unsupported version %u", buf[4]);
	if (kind != FRAME_REQUEST && kind != FRAME_REPLY)
		return bad_frame(why, whylen, "unknown kind %u", kind);
	if (method != RPC_REQUEST_VOTE && method != RPC_APPEND_ENTRIES)
		return bad_frame(why, whylen, "unknown method %u", method);
	if (status != FRAME_OK && !(kind == FRAME_REPLY && status == FRAME_FAILED))
		return bad_frame(why, whylen, "bad status %u", status);
	f->kind = kind;
	f->call.method = method;
	f->status = status;
	f->seq = get_u64(buf + 8);
	f->payload_len = get_u32(buf + 16);
	if (f->payload_len != payload_size(f->kind, f->call.method, f->status))
		return bad_frame(why, whylen, "payload length %u, want %u", f->payload_len,
				 payload_size(f->kind, f->call.method, f->status));
	return 0;
}

/* Reads one int field, which must lie in [min, INT32_MAX]. */
static bool get_int(const uint8_t **p, int min, int *out)
{
	int64_t v = (int64_t)get_u64(*p);

	*p += 8;
	if (v < min || v > INT32_MAX)
		return false;
	*out = (int)v;
	return true;
}

static bool get_bool(const uint8_t **p, bool *out)
{
	uint8_t v = *(*p)++;

	*out = v == 1;
	return v <= 1;
}

static bool decode_rv_args(const uint8_t *p, struct request_vote_args *a)
{
	return get_int(&p, 0, &a->term) && get_int(&p, 0, &a->candidate_id) &&
	       get_int(&p, -1, &a->last_log_index) && get_int(&p, -1, &a->last_log_term);
}

static bool decode_ae_args(const uint8_t *p, struct append_entries_args *a)
{
	int nentries;

	return get_int(&p, 0, &a->term) && get_int(&p, 0, &a->leader_id) &&
	       get_int(&p, -1, &a->prev_log_index) && get_int(&p, -1, &a->prev_log_term) &&
	       get_int(&p, -1, &a->leader_commit) && get_int(&p, 0, &nentries) && nentries == 0;
}

int server_frame_decode_payload(const uint8_t *p, struct frame *f, char *why, size_t whylen)
{
	struct rpc_call *c = &f->call;
	bool ok = true;

	if (f->kind == FRAME_REPLY && f->status == FRAME_FAILED)
		return 0;
	if (f->kind == FRAME_REQUEST && c->method == RPC_REQUEST_VOTE)
		ok = decode_rv_args(p, &c->args.rv);
	else if (f->kind == FRAME_REQUEST)
		ok = decode_ae_args(p, &c->args.ae);
	else if (c->method == RPC_REQUEST_VOTE)
		ok = get_int(&p, 0, &c->reply.rv.term) && get_bool(&p, &c->reply.rv.vote_granted);
	else
		ok = get_int(&p, 0, &c->reply.ae.term) && get_bool(&p, &c->reply.ae.success);
	if (!ok)
		return bad_frame(why, whylen, "field out of range in %s %s",
				 c->method == RPC_REQUEST_VOTE ? "RequestVote" : "AppendEntries",
				 f->kind == FRAME_REQUEST ? "request" : "reply");
	return 0;
}

/*
 * Reads one whole frame. Waiting for a frame to begin has no deadline (a
 * quiet peer is fine); once it has begun, it must end within the deadline.
 */
static int read_frame(int fd, int deadline_ms, struct frame *f, char *why, size_t whylen)
{
	uint8_t buf[FRAME_MAX_SIZE];
	ssize_t n;
	int rc;

	snprintf(why, whylen, "connection closed");
	n = read_frame_start(fd, buf);
	rc = n < 0 ? (int)n : read_full(fd, buf + n, FRAME_HEADER_SIZE - (size_t)n, deadline_ms);
	if (!rc)
		rc = server_frame_decode_header(buf, f, why, whylen);
	if (!rc)
		rc = read_full(fd, buf + FRAME_HEADER_SIZE, f->payload_len, deadline_ms);
	if (!rc)
		rc = server_frame_decode_payload(buf + FRAME_HEADER_SIZE, f, why, whylen);
	if (rc == -ETIMEDOUT)
		snprintf(why, whylen, "frame not finished within %d ms", deadline_ms);
	else if (rc && rc != -EPROTO && rc != -ECONNRESET)
		snprintf(why, whylen, "%s", rc == -EPIPE ? "frame cut short" : strerror(-rc));
	return rc;
}

static int write_frame(int fd, pthread_mutex_t *write_mu, const struct frame *f)
{
	uint8_t buf[FRAME_MAX_SIZE];
	size_t len = server_frame_encode(f, buf);
	int rc;

	pthread_mutex_lock(write_mu);
	rc = write_full(fd, buf, len);
	pthread_mutex_unlock(write_mu);
	return rc;
}

static const char *method_name(enum rpc_method m)
{
	return m == RPC_REQUEST_VOTE ? "RequestVote" : "AppendEntries";
}

/* ---- the server ----------------------------------------------------------- */

static int max_id(int id, const int *peer_ids, int npeers)
{
	int m = id;

	for (int i = 0; i < npeers; i++)
		if (peer_ids[i] > m)
			m = peer_ids[i];
	return m;
}

/* Go: NewServer. */
struct server *server_new(int server_id, const int *peer_ids, int npeers, struct ready *ready,
			  const struct cm_observer *observer)
{
	struct server *s = calloc(1, sizeof(*s));

	if (!s)
		goto out_nomem;
	s->id = server_id;
	s->npeers = npeers;
	s->nslots = max_id(server_id, peer_ids, npeers) + 1;
	s->peer_ids = calloc((size_t)npeers + 1, sizeof(int));
	s->peer_clients = calloc((size_t)s->nslots, sizeof(struct client *));
	if (!s->peer_ids || !s->peer_clients)
		goto out_free;
	if (npeers > 0) /* memcpy's pointers must not be NULL, even for 0 bytes */
		memcpy(s->peer_ids, peer_ids, (size_t)npeers * sizeof(int));
	s->ready = ready;
	if (observer)
		s->observer = *observer;
	s->listen_fd = -1;
	s->rpc_delay = true;
	atomic_init(&s->read_deadline_ms, FRAME_READ_DEADLINE_MS);
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->running);
	TAILQ_INIT(&s->finished);
	TAILQ_INIT(&s->deferred);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->threads_mu, NULL);
	cond_init_monotonic(&s->cond);
	cond_init_monotonic(&s->threads_cond);
	pthread_attr_init(&s->thread_attr);
	if (pthread_attr_setstacksize(&s->thread_attr, (size_t)GO_STACK_SIZE))
		log_printf("[%d] cannot set a %d KiB stack size; using the default", server_id,
			   GO_STACK_SIZE / 1024);
	if (start_reaper(s) < 0) {
		server_free(s);
		return NULL;
	}
	return s;

out_free:
	free(s->peer_ids);
	free(s->peer_clients);
	free(s);
out_nomem:
	log_printf("[%d] server_new: %s", server_id, strerror(ENOMEM));
	return NULL;
}

struct cm *server_cm(struct server *s)
{
	return s->cm;
}

void server_set_rpc_delay(struct server *s, bool on)
{
	pthread_mutex_lock(&s->mu);
	s->rpc_delay = on;
	pthread_mutex_unlock(&s->mu);
}

void server_set_frame_read_deadline(struct server *s, int ms)
{
	atomic_store(&s->read_deadline_ms, ms);
}

/* Sleeps for ms, or less if the server shuts down. Returns false on quit. */
static bool server_sleep_ms(struct server *s, long ms)
{
	struct timespec deadline = timespec_add_ms(mono_now(), ms);
	bool quit;

	pthread_mutex_lock(&s->mu);
	while (!s->quit && elapsed_ms(deadline) < 0)
		pthread_cond_timedwait(&s->cond, &s->mu, &deadline);
	quit = s->quit;
	pthread_mutex_unlock(&s->mu);
	return !quit;
}

static bool server_quitting(struct server *s)
{
	bool quit;

	pthread_mutex_lock(&s->mu);
	quit = s->quit;
	pthread_mutex_unlock(&s->mu);
	return quit;
}

static void conn_unref(struct conn *c)
{
	struct server *s = c->s;
	bool last;

	pthread_mutex_lock(&s->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->write_mu);
	free(c);
}

/* What a handler thread serves: one request on one connection. */
struct handler_job {
	struct conn *conn;
	struct frame req;
};

/*
 * Go: RPCProxy. Each request waits 1-5 ms first; with RAFT_UNRELIABLE_RPC
 * set, one in ten is dropped instead and one in ten delayed by 75 ms.
 * Returns false if the request is dropped.
 */
static bool rpc_proxy(struct server *s, enum rpc_method method)
{
	bool delay;

	if (raft_unreliable_rpc()) {
		uint32_t dice = arc4random_uniform(10);

		if (dice == 9) {
			dlog(s->cm, "drop %s", method_name(method));
			return false;
		} else if (dice == 8) {
			dlog(s->cm, "delay %s", method_name(method));
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

static void *handle_request(void *arg)
{
	struct handler_job *job = arg;
	struct conn *conn = job->conn;
	struct server *s = conn->s;
	struct frame reply = { .kind = FRAME_REPLY, .seq = job->req.seq };
	struct rpc_call *call = &job->req.call;

	reply.call.method = call->method;
	if (!rpc_proxy(s, call->method))
		reply.status = FRAME_FAILED;
	else if (call->method == RPC_REQUEST_VOTE)
		cm_request_vote(s->cm, &call->args.rv, &reply.call.reply.rv);
	else
		cm_append_entries(s->cm, &call->args.ae, &reply.call.reply.ae);

	/* The caller may have gone: a failed write only means that. */
	(void)write_frame(conn->fd, &conn->write_mu, &reply);
	conn_unref(conn);
	free(job);
	return NULL;
}

/*
 * Answers req with "RPC failed" from the reader's own thread: the caller
 * waits for its reply without a deadline, and must not wait forever.
 */
static void reply_failed(struct conn *conn, const struct frame *req)
{
	struct frame reply = { .kind = FRAME_REPLY, .status = FRAME_FAILED, .seq = req->seq };

	reply.call.method = req->call.method;
	/* The caller may have gone: a failed write only means that. */
	(void)write_frame(conn->fd, &conn->write_mu, &reply);
}

static void serve_request(struct conn *conn, const struct frame *req)
{
	struct server *s = conn->s;
	struct handler_job *job = malloc(sizeof(*job));

	if (!job) {
		log_printf("[%d] dropping %s request: %s", s->id, method_name(req->call.method),
			   strerror(ENOMEM));
		reply_failed(conn, req);
		return;
	}
	job->conn = conn;
	job->req = *req;
	pthread_mutex_lock(&s->mu);
	conn->refs++;
	pthread_mutex_unlock(&s->mu);
	if (server_go(s, handle_request, job, "h-%s",
		      req->call.method == RPC_REQUEST_VOTE ? "rv" : "ae") < 0) {
		reply_failed(conn, req);
		/* Never the last reference: the reader, our caller, holds one. */
		pthread_mutex_lock(&s->mu);
		conn->refs--;
		assert(conn->refs > 0);
		pthread_mutex_unlock(&s->mu);
		free(job);
	}
}

/* Go: rpcServer.ServeConn. Reads requests until the connection ends. */
static void *serve_conn(void *arg)
{
	struct conn *conn = arg;
	struct server *s = conn->s;
	char why[128];
	struct frame req;
	int rc;

	while ((rc = read_frame(conn->fd, atomic_load(&s->read_deadline_ms), &req, why,
				sizeof(why))) == 0) {
		if (req.kind != FRAME_REQUEST) {
			rc = bad_frame(why, sizeof(why), "a reply where a request belongs");
			break;
		}
		serve_request(conn, &req);
	}
	if (rc != -ECONNRESET && !server_quitting(s))
		log_printf("[%d] closing connection from a peer: %s", s->id, why);

	pthread_mutex_lock(&s->mu);
	TAILQ_REMOVE(&s->conns, conn, link);
	pthread_mutex_unlock(&s->mu);
	conn_unref(conn);
	return NULL;
}

static void accept_conn(struct server *s, int fd)
{
	struct conn *conn = calloc(1, sizeof(*conn));
	int one = 1;

	if (!conn) {
		log_printf("[%d] refusing a connection: %s", s->id, strerror(ENOMEM));
		close(fd);
		return;
	}
	/* Small frames, sent at once: no Nagle delay. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_printf("[%d] TCP_NODELAY: %s", s->id, strerror(errno));
	conn->s = s;
	conn->fd = fd;
	conn->refs = 1;
	pthread_mutex_init(&conn->write_mu, NULL);
	pthread_mutex_lock(&s->mu);
	TAILQ_INSERT_TAIL(&s->conns, conn, link);
	/* Accepted as shutdown_conns ran: end it now, or its reader waits forever. */
	if (s->quit)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	if (server_go(s, serve_conn, conn, "conn") < 0) {
		pthread_mutex_lock(&s->mu);
		TAILQ_REMOVE(&s->conns, conn, link);
		pthread_mutex_unlock(&s->mu);
		conn_unref(conn);
	}
}

static bool accept_error_is_transient(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
	       err == ECONNABORTED || err == EPROTO || err == EPERM;
}

/*
 * Logs an accept error once per run of the same error: out of descriptors,
 * the loop retries 20 times a second, and one line says it all.
 */
static void log_accept_error(struct server *s, int err)
{
	if (s->accept_failures++ == 0 || err != s->accept_last_err)
		log_printf("[%d] accept error: %s", s->id, strerror(err));
	s->accept_last_err = err;
}

static void log_accept_recovered(struct server *s)
{
	if (s->accept_failures > 0)
		log_printf("[%d] accept working again (%ld attempts failed)", s->id,
			   s->accept_failures);
	s->accept_failures = 0;
}

static void *accept_loop(void *arg)
{
	struct server *s = arg;

	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		int err = errno;

		if (fd >= 0) {
			log_accept_recovered(s);
			accept_conn(s, fd);
			continue;
		}
		if (server_quitting(s))
			return NULL;
		if (err == EINTR)
			continue;
		log_accept_error(s, err);
		if (!accept_error_is_transient(err))
			return NULL;
		/* Out of descriptors or memory: wait for some to come back. */
		if (!server_sleep_ms(s, ACCEPT_BACKOFF_MS))
			return NULL;
	}
}

static int listen_loopback(struct server *s)
{
	socklen_t len = sizeof(s->addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		log_printf("[%d] socket: %s", s->id, strerror(errno));
		return -errno;
	}
	memset(&s->addr, 0, sizeof(s->addr));
	s->addr.sin_family = AF_INET;
	s->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->addr.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&s->addr, &len) < 0) {
		int err = errno;

		log_printf("[%d] listen on 127.0.0.1: %s", s->id, strerror(err));
		close(fd);
		return -err;
	}
	s->listen_fd = fd;
	return 0;
}

/* Go: Serve. */
int server_serve(struct server *s)
{
	char ip[INET_ADDRSTRLEN];
	int rc;

	s->cm = cm_new(s->id, s->peer_ids, s->npeers, s, s->ready, &s->observer);
	if (!s->cm)
		return -ENOMEM;
	rc = listen_loopback(s);
	if (rc < 0)
		return rc;
	inet_ntop(AF_INET, &s->addr.sin_addr, ip, sizeof(ip));
	log_printf("[%d] listening at %s:%d", s->id, ip, ntohs(s->addr.sin_port));
	return server_go(s, accept_loop, s, "accept");
}

int server_get_listen_addr(struct server *s, struct sockaddr_in *addr)
{
	pthread_mutex_lock(&s->mu);
	*addr = s->addr;
	pthread_mutex_unlock(&s->mu);
	return s->listen_fd >= 0 ? 0 : -ENOTCONN;
}

/* ---- clients -------------------------------------------------------------- */

static void client_unref(struct client *c)
{
	bool last;

	pthread_mutex_lock(&c->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (!last)
		return;
	close(c->fd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->write_mu);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/*
 * Fails every pending call and every later one, and wakes the reply reader
 * (shutdown(2) makes its read return). Expects c->mu held.
 */
static void client_close_locked(struct client *c)
{
	struct pending_call *p;

	if (c->closed)
		return;
	c->closed = true;
	shutdown(c->fd, SHUT_RDWR);
	TAILQ_FOREACH (p, &c->pending, link) {
		p->done = true;
		p->err = -ECONNRESET;
	}
	pthread_cond_broadcast(&c->cond);
}

static void client_close(struct client *c)
{
	pthread_mutex_lock(&c->mu);
	client_close_locked(c);
	pthread_mutex_unlock(&c->mu);
}

/* Hands a reply to the call waiting for it. Expects c->mu held. */
static int deliver_reply(struct client *c, const struct frame *f, char *why, size_t whylen)
{
	struct pending_call *p;

	if (f->kind != FRAME_REPLY)
		return bad_frame(why, whylen, "a request where a reply belongs");
	TAILQ_FOREACH (p, &c->pending, link) {
		if (p->seq != f->seq || p->done)
			continue;
		if (p->call->method != f->call.method)
			return bad_frame(why, whylen, "reply %llu is for another method",
					 (unsigned long long)f->seq);
		p->done = true;
		p->err = f->status == FRAME_FAILED ? -EIO : 0;
		p->call->reply = f->call.reply;
		pthread_cond_broadcast(&c->cond);
		return 0;
	}
	return 0; /* its caller gave up (the client closed): nothing to do */
}

/* The client-side reply reader, Go's rpc.Client.input. */
static void *read_replies(void *arg)
{
	struct client *c = arg;
	char why[128];
	struct frame f;
	int rc;

	while ((rc = read_frame(c->fd, atomic_load(&c->s->read_deadline_ms), &f, why,
				sizeof(why))) == 0) {
		pthread_mutex_lock(&c->mu);
		rc = deliver_reply(c, &f, why, sizeof(why));
		pthread_mutex_unlock(&c->mu);
		if (rc)
			break;
	}
	pthread_mutex_lock(&c->mu);
	if (!c->closed && rc != -ECONNRESET)
		log_printf("[%d] closing connection to %d: %s", c->s->id, c->peer_id, why);
	client_close_locked(c);
	pthread_mutex_unlock(&c->mu);
	client_unref(c);
	return NULL;
}

static int dial(int id, const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0) {
		log_printf("[%d] socket: %s", id, strerror(errno));
		return -errno;
	}
	while (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		int err = errno;

		if (err == EINTR)
			continue;
		log_printf("[%d] connect to port %d: %s", id, ntohs(addr->sin_port), strerror(err));
		close(fd);
		return -err;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_printf("[%d] TCP_NODELAY: %s", id, strerror(errno));
	return fd;
}

static struct client *client_new(struct server *s, int peer_id, int fd)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c) {
		log_printf("[%d] connect to %d: %s", s->id, peer_id, strerror(ENOMEM));
		return NULL;
	}
	c->s = s;
	c->peer_id = peer_id;
	c->fd = fd;
	c->next_seq = 1;
	c->refs = 2; /* peer_clients and the reply reader */
	TAILQ_INIT(&c->pending);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->write_mu, NULL);
	cond_init_monotonic(&c->cond);
	return c;
}

static bool valid_peer(struct server *s, int peer_id)
{
	return peer_id >= 0 && peer_id < s->nslots && peer_id != s->id;
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
 * connect(2): a peer whose backlog is full (out of descriptors, say) can
 * keep it waiting for seconds, and s->mu would stall the whole server.
 */
int server_connect_to_peer(struct server *s, int peer_id, const struct sockaddr_in *addr)
{
	struct client *c;
	int fd, rc;

	if (!valid_peer(s, peer_id))
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	rc = peer_slot_state(s, peer_id);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		return rc > 0 ? 0 : rc;
	fd = dial(s->id, addr);
	if (fd < 0)
		return fd;
	c = client_new(s, peer_id, fd);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_lock(&s->mu);
	/* Connected meanwhile by another caller, or shutting down: drop ours. */
	rc = peer_slot_state(s, peer_id);
	if (!rc && server_go(s, read_replies, c, "reply<%d", peer_id) < 0)
		rc = -EAGAIN;
	if (!rc)
		s->peer_clients[peer_id] = c;
	pthread_mutex_unlock(&s->mu);
	if (rc) {
		c->refs = 1; /* no reply reader: the last reference is ours */
		client_unref(c);
	}
	return rc > 0 ? 0 : rc;
}

/* Go: DisconnectPeer. Every pending and every later call to peer_id fails. */
int server_disconnect_peer(struct server *s, int peer_id)
{
	struct client *c;

	if (!valid_peer(s, peer_id))
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	c = s->peer_clients[peer_id];
	s->peer_clients[peer_id] = NULL;
	pthread_mutex_unlock(&s->mu);
	if (c) {
		client_close(c);
		client_unref(c);
	}
	return 0;
}

/* Go: DisconnectAll. */
void server_disconnect_all(struct server *s)
{
	for (int id = 0; id < s->nslots; id++)
		if (id != s->id)
			server_disconnect_peer(s, id);
}

/* Sends call on c and waits for its reply. */
static int client_call(struct client *c, struct rpc_call *call)
{
	struct pending_call p = { .call = call };
	struct frame req = { .kind = FRAME_REQUEST, .call = *call };
	int rc;

	pthread_mutex_lock(&c->mu);
	if (c->closed) {
		pthread_mutex_unlock(&c->mu);
		return -ECONNRESET;
	}
	p.seq = req.seq = c->next_seq++;
	TAILQ_INSERT_TAIL(&c->pending, &p, link);
	pthread_mutex_unlock(&c->mu);

	rc = write_frame(c->fd, &c->write_mu, &req);

	pthread_mutex_lock(&c->mu);
	if (rc)
		client_close_locked(c);
	while (!p.done)
		pthread_cond_wait(&c->cond, &c->mu);
	TAILQ_REMOVE(&c->pending, &p, link);
	pthread_mutex_unlock(&c->mu);
	return p.err;
}

/* Go: Call. */
int server_call(struct server *s, int peer_id, struct rpc_call *call)
{
	struct client *c = NULL;
	int rc;

	if (!valid_peer(s, peer_id))
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	c = s->peer_clients[peer_id];
	if (c) {
		pthread_mutex_lock(&c->mu);
		c->refs++;
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&s->mu);

	/* Called after DisconnectPeer or shutdown: the peer is unreachable. */
	if (!c)
		return -ENOTCONN;
	rc = client_call(c, call);
	client_unref(c);
	return rc;
}

/* ---- shutdown ------------------------------------------------------------- */

/* Wakes every connection reader; each closes its own socket as it exits. */
static void shutdown_conns(struct server *s)
{
	struct conn *conn;

	pthread_mutex_lock(&s->mu);
	TAILQ_FOREACH (conn, &s->conns, link)
		shutdown(conn->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
}

/*
 * Go: Shutdown. Unlike Go's, it returns only when every thread the server
 * started has finished and been joined, which takes milliseconds: all of
 * them wait on something this function wakes.
 */
void server_shutdown(struct server *s)
{
	if (s->cm)
		cm_stop(s->cm);
	pthread_mutex_lock(&s->mu);
	s->quit = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	if (s->listen_fd >= 0)
		shutdown(s->listen_fd, SHUT_RDWR); /* wakes accept */
	server_disconnect_all(s);
	shutdown_conns(s);
	stop_reaper(s);
}

void server_free(struct server *s)
{
	if (!s)
		return;
	stop_reaper(s);
	assert(TAILQ_EMPTY(&s->running) && TAILQ_EMPTY(&s->finished) && TAILQ_EMPTY(&s->deferred));
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	cm_free(s->cm);
	pthread_attr_destroy(&s->thread_attr);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->threads_cond);
	pthread_mutex_destroy(&s->threads_mu);
	pthread_mutex_destroy(&s->mu);
	free(s->peer_clients);
	free(s->peer_ids);
	free(s);
}
