/*
 * DESIGN: stands in for Go's net/rpc (rpc.Server, ServeConn, rpc.Client)
 * over TCP on loopback, with our own framing in place of gob.
 *
 * Tasks (lib/go.h), all in the group the server or client was given:
 *   "accept"    the accept loop; starts one reader per connection.
 *   "conn"      reads request frames from one connection, one read(2) per
 *               burst of frames, and starts a handler task for each (or
 *               serves it itself, in inline mode).
 *   "h-<m>"     serves one request, as net/rpc does on its own goroutine:
 *               the service's serve function (the part's RPC proxy and CM
 *               call), then the reply.
 * A client has no task of its own: its callers take turns reading the
 * connection (one at a time, the "reader"), each until its own reply has
 * come, handing every other reply to the caller waiting for it and the
 * reader's turn to another waiting caller when it leaves. A call thus
 * costs the two wake-ups of a bare ping-pong, not four.
 * Locking:
 *   srv->mu     the listener, the connection list, closed, handlers.
 *   c->mu       a client's pending calls, its closed and reading flags;
 *               the frame reader belongs to whoever has set reading.
 *   write_mu    (one per connection and per client) keeps frames whole.
 * Order: srv->mu and c->mu are never held together; write_mu is innermost.
 * No lock is held across serve, a wait for a reply or a blocking read.
 * Sockets are never closed under a task that may use them: shutdown(2)
 * wakes the readers, and the last reference closes the descriptor.
 * A peer cannot hold a reader forever: once a frame has begun, the rest
 * must come within the read deadline. A peer cannot make us allocate
 * without bound: every length is checked against its method's maximum
 * before any buffer grows, and requests waiting for a handler are capped.
 */
#include "lib/rpc.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/go.h"
#include "lib/log.h"

#define READ_DEADLINE_MS  1000 /* to finish a frame once begun */
#define ACCEPT_BACKOFF_MS 50   /* after accept fails for want of descriptors */
#define READ_BUF_INITIAL  4096
#define STACK_FRAME_MAX	  512 /* frames up to this size are encoded on the stack */

/* ---- wire format ------------------------------------------------------------ */

void rpc_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void rpc_put_u64(uint8_t *p, uint64_t v)
{
	rpc_put_u32(p, (uint32_t)(v >> 32));
	rpc_put_u32(p + 4, (uint32_t)v);
}

uint32_t rpc_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t rpc_get_u64(const uint8_t *p)
{
	return (uint64_t)rpc_get_u32(p) << 32 | rpc_get_u32(p + 4);
}

void rpc_header_encode(const struct rpc_header *h, uint8_t *buf)
{
	rpc_put_u32(buf, RPC_MAGIC);
	buf[4] = RPC_VERSION;
	buf[5] = (uint8_t)h->kind;
	buf[6] = (uint8_t)h->method;
	buf[7] = (uint8_t)h->status;
	rpc_put_u64(buf + 8, h->seq);
	rpc_put_u32(buf + 16, h->len);
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

uint32_t rpc_payload_max(const struct rpc_service *svc, enum rpc_kind kind, int method)
{
	const struct rpc_method_def *m = &svc->methods[method - 1];

	return kind == RPC_REQUEST ? m->args_max : m->reply_max;
}

int rpc_header_decode(const struct rpc_service *svc, const uint8_t *buf, struct rpc_header *h,
		      char *why, size_t whylen)
{
	uint32_t magic = rpc_get_u32(buf);
	uint8_t kind = buf[5], method = buf[6], status = buf[7];
	uint32_t max;

	memset(h, 0, sizeof(*h));
	if (magic != RPC_MAGIC)
		return bad_frame(why, whylen, "bad magic 0x%08x", magic);
	if (buf[4] != RPC_VERSION)
		return bad_frame(why, whylen, "unsupported version %u", buf[4]);
	if (kind != RPC_REQUEST && kind != RPC_REPLY)
		return bad_frame(why, whylen, "unknown kind %u", kind);
	if (method < 1 || method > svc->nmethods)
		return bad_frame(why, whylen, "unknown method %u", method);
	if (status != RPC_OK && !(kind == RPC_REPLY && status == RPC_FAILED))
		return bad_frame(why, whylen, "bad status %u", status);
	h->kind = kind;
	h->method = method;
	h->status = status;
	h->seq = rpc_get_u64(buf + 8);
	h->len = rpc_get_u32(buf + 16);
	max = status == RPC_FAILED ? 0 : rpc_payload_max(svc, h->kind, method);
	if (h->len > max)
		return bad_frame(why, whylen, "payload length %u, at most %u", h->len, max);
	return 0;
}

/* ---- socket I/O --------------------------------------------------------------- */

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
 * Encodes one frame (header and m's payload for body) and sends it whole
 * under write_mu. Returns 0 or -errno.
 */
static int write_frame(int fd, pthread_mutex_t *write_mu, struct rpc_header *h,
		       const struct rpc_method_def *m, const void *body)
{
	uint32_t max = h->kind == RPC_REQUEST ? m->args_max : m->reply_max;
	uint8_t small[STACK_FRAME_MAX], *buf = small;
	int rc;

	if (h->status == RPC_FAILED)
		max = 0;
	else if (h->kind == RPC_REQUEST && m->args_len)
		max = (uint32_t)m->args_len(body);
	assert(max <= (h->kind == RPC_REQUEST ? m->args_max : m->reply_max));
	if (RPC_HEADER_SIZE + (size_t)max > sizeof(small) &&
	    !(buf = malloc(RPC_HEADER_SIZE + (size_t)max)))
		return -ENOMEM;
	h->len = 0;
	if (h->status == RPC_OK)
		h->len = (uint32_t)(h->kind == RPC_REQUEST
					    ? m->encode_args(body, buf + RPC_HEADER_SIZE)
					    : m->encode_reply(body, buf + RPC_HEADER_SIZE));
	assert(h->len <= max);
	rpc_header_encode(h, buf);
	pthread_mutex_lock(write_mu);
	rc = write_full(fd, buf, RPC_HEADER_SIZE + h->len);
	pthread_mutex_unlock(write_mu);
	if (buf != small)
		free(buf);
	return rc;
}

/*
 * Reads frames from one socket: one recv(2) takes as many frames as have
 * come, and later calls hand them out without a system call.
 */
struct frame_reader {
	int fd;
	const struct rpc_service *svc;
	const atomic_int *deadline_ms;
	uint8_t *buf;
	size_t cap, start, end; /* bytes [start, end) are unread */
};

static int frame_reader_init(struct frame_reader *r, int fd, const struct rpc_service *svc,
			     const atomic_int *deadline_ms)
{
	r->fd = fd;
	r->svc = svc;
	r->deadline_ms = deadline_ms;
	r->cap = READ_BUF_INITIAL;
	r->start = r->end = 0;
	r->buf = malloc(r->cap);
	return r->buf ? 0 : -ENOMEM;
}

static void frame_reader_free(struct frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Makes room for a frame of need bytes from start. 0 or -ENOMEM. */
static int make_room(struct frame_reader *r, size_t need)
{
	size_t have = r->end - r->start;

	if (r->start > 0 && r->cap - r->start < need) {
		memmove(r->buf, r->buf + r->start, have);
		r->start = 0;
		r->end = have;
	}
	if (r->cap < need) {
		uint8_t *buf = realloc(r->buf, need);

		if (!buf)
			return -ENOMEM;
		r->buf = buf;
		r->cap = need;
	}
	return 0;
}

/*
 * Reads more bytes. With nothing of a frame read yet it waits without a
 * deadline (a quiet peer is fine); in the middle of a frame, until
 * deadline. 0, -ECONNRESET (end of stream between frames), -EPIPE (end in
 * the middle of one), -ETIMEDOUT or -errno.
 */
static int fill(struct frame_reader *r, const struct timespec *deadline)
{
	for (;;) {
		int flags = deadline ? MSG_DONTWAIT : 0;
		ssize_t n = recv(r->fd, r->buf + r->end, r->cap - r->end, flags);
		int rc;

		if (n > 0) {
			r->end += (size_t)n;
			return 0;
		}
		if (n == 0)
			return deadline ? -EPIPE : -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (!deadline || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -errno;
		rc = wait_readable(r->fd, *deadline);
		if (rc)
			return rc;
	}
}

/*
 * The next whole frame: its header in h, its payload at *payload (valid
 * until the next call). 0, or a negative code with the reason in why.
 */
static int next_frame(struct frame_reader *r, struct rpc_header *h, const uint8_t **payload,
		      char *why, size_t whylen)
{
	int ms = atomic_load(r->deadline_ms);
	struct timespec deadline = timespec_add_ms(mono_now(), ms);
	size_t need = RPC_HEADER_SIZE;
	bool have_header = false;
	int rc = 0;

	snprintf(why, whylen, "connection closed");
	while (rc == 0) {
		size_t have = r->end - r->start;

		if (!have_header && have >= RPC_HEADER_SIZE) {
			rc = rpc_header_decode(r->svc, r->buf + r->start, h, why, whylen);
			if (rc)
				break;
			have_header = true;
			need = RPC_HEADER_SIZE + h->len;
			rc = make_room(r, need);
			continue;
		}
		if (have_header && have >= need) {
			*payload = r->buf + r->start + RPC_HEADER_SIZE;
			r->start += need;
			if (r->start == r->end)
				r->start = r->end = 0;
			return 0;
		}
		if (r->end == r->cap)
			rc = make_room(r, need);
		if (rc)
			break;
		if (have == 0) {
			rc = fill(r, NULL);
			deadline = timespec_add_ms(mono_now(), ms);
		} else {
			rc = fill(r, &deadline);
		}
	}
	if (rc == -ETIMEDOUT)
		snprintf(why, whylen, "frame not finished within %d ms", ms);
	else if (rc && rc != -EPROTO && rc != -ECONNRESET)
		snprintf(why, whylen, "%s", rc == -EPIPE ? "frame cut short" : strerror(-rc));
	return rc;
}

static void set_nodelay(int id, int fd)
{
	int one = 1;

	/* Small frames, sent at once: no Nagle delay. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_printf("[%d] TCP_NODELAY: %s", id, strerror(errno));
}

/* ---- server ----------------------------------------------------------------- */

/* The server side of one accepted connection. */
struct conn {
	TAILQ_ENTRY(conn) link;
	struct rpc_server *srv;
	int fd;
	pthread_mutex_t write_mu;
	int refs; /* guarded by srv->mu: the reader and each handler */
};
TAILQ_HEAD(conn_list, conn);

struct rpc_server {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* broadcast on close; the accept backoff waits on it */
	int id;
	const struct rpc_service *svc;
	void *receiver;
	struct go_group *g;
	int listen_fd;
	struct conn_list conns;
	bool closed;
	int handlers; /* handler tasks started and not yet done */
	long refused; /* requests refused since the last one served */
	atomic_bool serve_inline;
	atomic_int read_deadline_ms;
	/* The accept task's own: a run of failures is logged once. */
	long accept_failures;
	int accept_last_err;
};

/* One request, decoded, on its way to a handler. */
struct request {
	struct conn *conn;
	struct rpc_header h;
	void *args;
};

struct rpc_server *rpc_server_new(int id, const struct rpc_service *svc, void *receiver,
				  struct go_group *g)
{
	struct rpc_server *srv = calloc(1, sizeof(*srv));

	if (!srv || cond_init_monotonic(&srv->cond) < 0) {
		free(srv);
		log_printf("[%d] rpc_server_new: %s", id, strerror(ENOMEM));
		return NULL;
	}
	pthread_mutex_init(&srv->mu, NULL);
	srv->id = id;
	srv->svc = svc;
	srv->receiver = receiver;
	srv->g = g;
	srv->listen_fd = -1;
	TAILQ_INIT(&srv->conns);
	atomic_init(&srv->serve_inline, false);
	atomic_init(&srv->read_deadline_ms, READ_DEADLINE_MS);
	return srv;
}

void rpc_server_set_inline(struct rpc_server *srv, bool on)
{
	atomic_store(&srv->serve_inline, on);
}

void rpc_server_set_read_deadline(struct rpc_server *srv, int ms)
{
	atomic_store(&srv->read_deadline_ms, ms);
}

static bool server_closed(struct rpc_server *srv)
{
	bool closed;

	pthread_mutex_lock(&srv->mu);
	closed = srv->closed;
	pthread_mutex_unlock(&srv->mu);
	return closed;
}

static void conn_unref(struct conn *c)
{
	struct rpc_server *srv = c->srv;
	bool last;

	pthread_mutex_lock(&srv->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&srv->mu);
	if (!last)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->write_mu);
	free(c);
}

static void request_free(struct request *req)
{
	const struct rpc_method_def *m = &req->conn->srv->svc->methods[req->h.method - 1];

	if (m->free_args)
		m->free_args(req->args);
	free(req->args);
	free(req);
}

/* Serves req and sends its reply; the caller may have gone, which is fine. */
static void serve_request(struct request *req)
{
	struct rpc_server *srv = req->conn->srv;
	const struct rpc_method_def *m = &srv->svc->methods[req->h.method - 1];
	struct rpc_header h = { .kind = RPC_REPLY, .method = req->h.method, .seq = req->h.seq };
	void *reply = calloc(1, m->reply_size ? m->reply_size : 1);

	if (!reply || srv->svc->serve(srv->receiver, req->h.method, req->args, reply) < 0)
		h.status = RPC_FAILED;
	(void)write_frame(req->conn->fd, &req->conn->write_mu, &h, m, reply);
	free(reply);
}

static void handle_request(void *arg)
{
	struct request *req = arg;
	struct conn *conn = req->conn;
	struct rpc_server *srv = conn->srv;

	serve_request(req);
	request_free(req);
	pthread_mutex_lock(&srv->mu);
	srv->handlers--;
	pthread_mutex_unlock(&srv->mu);
	conn_unref(conn);
}

/*
 * Takes a handler slot and a connection reference for a new handler, or
 * refuses: too many handlers are waiting (logged once per run of refusals).
 */
static bool admit_handler(struct rpc_server *srv, struct conn *conn)
{
	bool ok;

	pthread_mutex_lock(&srv->mu);
	ok = srv->handlers < RPC_MAX_HANDLERS;
	if (ok) {
		srv->handlers++;
		conn->refs++;
		if (srv->refused > 0)
			log_printf("[%d] serving requests again (%ld refused)", srv->id,
				   srv->refused);
		srv->refused = 0;
	} else if (srv->refused++ == 0) {
		log_printf("[%d] %d requests waiting for a handler; refusing more", srv->id,
			   RPC_MAX_HANDLERS);
	}
	pthread_mutex_unlock(&srv->mu);
	return ok;
}

/* Decodes one request and serves it, here or on a handler task. */
static int dispatch(struct conn *conn, const struct rpc_header *h, const uint8_t *payload,
		    char *why, size_t whylen)
{
	struct rpc_server *srv = conn->srv;
	const struct rpc_method_def *m = &srv->svc->methods[h->method - 1];
	struct request *req = calloc(1, sizeof(*req));

	if (!req || !(req->args = calloc(1, m->args_size ? m->args_size : 1))) {
		free(req);
		return bad_frame(why, whylen, "no memory for a %s request", m->name);
	}
	req->conn = conn;
	req->h = *h;
	if (m->decode_args(payload, h->len, req->args) < 0) {
		request_free(req);
		return bad_frame(why, whylen, "field out of range in %s request", m->name);
	}
	if (atomic_load(&srv->serve_inline)) {
		serve_request(req);
		request_free(req);
	} else if (admit_handler(srv, conn)) {
		go(srv->g, handle_request, req, "%s", m->task_name);
	} else {
		struct rpc_header fh = { .kind = RPC_REPLY, .method = h->method, .seq = h->seq };

		fh.status = RPC_FAILED;
		(void)write_frame(conn->fd, &conn->write_mu, &fh, m, NULL);
		request_free(req);
	}
	return 0;
}

/* Go: rpcServer.ServeConn. Reads requests until the connection ends. */
static void serve_conn(void *arg)
{
	struct conn *conn = arg;
	struct rpc_server *srv = conn->srv;
	struct frame_reader r;
	const uint8_t *payload;
	struct rpc_header h;
	char why[128];
	int rc = frame_reader_init(&r, conn->fd, srv->svc, &srv->read_deadline_ms);

	snprintf(why, sizeof(why), "%s", strerror(ENOMEM));
	while (rc == 0 && (rc = next_frame(&r, &h, &payload, why, sizeof(why))) == 0) {
		if (h.kind != RPC_REQUEST)
			rc = bad_frame(why, sizeof(why), "a reply where a request belongs");
		else
			rc = dispatch(conn, &h, payload, why, sizeof(why));
	}
	frame_reader_free(&r);
	if (rc != -ECONNRESET && !server_closed(srv))
		log_printf("[%d] closing connection from a peer: %s", srv->id, why);

	pthread_mutex_lock(&srv->mu);
	TAILQ_REMOVE(&srv->conns, conn, link);
	pthread_mutex_unlock(&srv->mu);
	conn_unref(conn);
}

static void accept_conn(struct rpc_server *srv, int fd)
{
	struct conn *conn = calloc(1, sizeof(*conn));

	if (!conn) {
		log_printf("[%d] refusing a connection: %s", srv->id, strerror(ENOMEM));
		close(fd);
		return;
	}
	set_nodelay(srv->id, fd);
	conn->srv = srv;
	conn->fd = fd;
	conn->refs = 1;
	pthread_mutex_init(&conn->write_mu, NULL);
	pthread_mutex_lock(&srv->mu);
	TAILQ_INSERT_TAIL(&srv->conns, conn, link);
	/* Accepted as rpc_server_close ran: end it now, or its reader waits forever. */
	if (srv->closed)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&srv->mu);
	go(srv->g, serve_conn, conn, "conn");
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
static void log_accept_error(struct rpc_server *srv, int err)
{
	if (srv->accept_failures++ == 0 || err != srv->accept_last_err)
		log_printf("[%d] accept error: %s", srv->id, strerror(err));
	srv->accept_last_err = err;
}

static void log_accept_recovered(struct rpc_server *srv)
{
	if (srv->accept_failures > 0)
		log_printf("[%d] accept working again (%ld attempts failed)", srv->id,
			   srv->accept_failures);
	srv->accept_failures = 0;
}

/* Waits ms, or less if the server closes. false once it is closed. */
static bool backoff(struct rpc_server *srv, long ms)
{
	struct timespec deadline = timespec_add_ms(mono_now(), ms);
	bool closed;

	pthread_mutex_lock(&srv->mu);
	while (!srv->closed && !timespec_reached(deadline))
		pthread_cond_timedwait(&srv->cond, &srv->mu, &deadline);
	closed = srv->closed;
	pthread_mutex_unlock(&srv->mu);
	return !closed;
}

static void accept_loop(void *arg)
{
	struct rpc_server *srv = arg;

	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		int err = errno;

		if (fd >= 0) {
			log_accept_recovered(srv);
			accept_conn(srv, fd);
			continue;
		}
		if (server_closed(srv))
			return;
		if (err == EINTR)
			continue;
		log_accept_error(srv, err);
		if (!accept_error_is_transient(err))
			return;
		/* Out of descriptors or memory: wait for some to come back. */
		if (!backoff(srv, ACCEPT_BACKOFF_MS))
			return;
	}
}

int rpc_server_listen(struct rpc_server *srv, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		log_printf("[%d] socket: %s", srv->id, strerror(errno));
		return -errno;
	}
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
		int err = errno;

		log_printf("[%d] listen on 127.0.0.1: %s", srv->id, strerror(err));
		close(fd);
		return -err;
	}
	srv->listen_fd = fd;
	go(srv->g, accept_loop, srv, "accept");
	return 0;
}

void rpc_server_close(struct rpc_server *srv)
{
	struct conn *conn;

	pthread_mutex_lock(&srv->mu);
	srv->closed = true;
	pthread_cond_broadcast(&srv->cond);
	if (srv->listen_fd >= 0)
		shutdown(srv->listen_fd, SHUT_RDWR); /* wakes accept */
	/* Wakes every connection reader; each closes its own socket as it exits. */
	TAILQ_FOREACH (conn, &srv->conns, link)
		shutdown(conn->fd, SHUT_RDWR);
	pthread_mutex_unlock(&srv->mu);
}

void rpc_server_free(struct rpc_server *srv)
{
	if (!srv)
		return;
	assert(TAILQ_EMPTY(&srv->conns));
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	pthread_cond_destroy(&srv->cond);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}

/* ---- client ----------------------------------------------------------------- */

/* A caller waiting in rpc_call; lives on the caller's stack. */
struct pending_call {
	TAILQ_ENTRY(pending_call) link;
	uint64_t seq;
	int method;
	void *reply;
	bool done;
	int err;
	pthread_cond_t cond; /* signalled when done: only this caller wakes */
};

/* Go's rpc.Client: one connection to a peer, any number of calls in flight. */
struct rpc_client {
	int id;
	int peer_id;
	int fd;
	const struct rpc_service *svc;
	pthread_mutex_t mu;
	pthread_mutex_t write_mu;
	uint64_t next_seq;
	bool closed;
	bool reading; /* a caller is reading replies; only it uses r */
	int refs;     /* guarded by mu: the dialer's and callers' */
	TAILQ_HEAD(, pending_call) pending;
	atomic_int read_deadline_ms;
	struct frame_reader r;
};

void rpc_client_ref(struct rpc_client *c)
{
	pthread_mutex_lock(&c->mu);
	c->refs++;
	pthread_mutex_unlock(&c->mu);
}

void rpc_client_unref(struct rpc_client *c)
{
	bool last;

	pthread_mutex_lock(&c->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (!last)
		return;
	close(c->fd);
	frame_reader_free(&c->r);
	pthread_mutex_destroy(&c->write_mu);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/*
 * Fails every pending call and every later one, and wakes the reply reader
 * (shutdown(2) makes its read return). Expects c->mu held.
 */
static void client_close_locked(struct rpc_client *c)
{
	struct pending_call *p;

	if (c->closed)
		return;
	c->closed = true;
	/* Wakes the reader, if any: its recv(2) returns. */
	shutdown(c->fd, SHUT_RDWR);
	TAILQ_FOREACH (p, &c->pending, link) {
		if (p->done)
			continue;
		p->done = true;
		p->err = -ECONNRESET;
		pthread_cond_signal(&p->cond);
	}
}

void rpc_client_close(struct rpc_client *c)
{
	pthread_mutex_lock(&c->mu);
	client_close_locked(c);
	pthread_mutex_unlock(&c->mu);
}

/* Hands a reply to the call waiting for it. Expects c->mu held. */
static int deliver_reply(struct rpc_client *c, const struct rpc_header *h, const uint8_t *payload,
			 char *why, size_t whylen)
{
	const struct rpc_method_def *m = &c->svc->methods[h->method - 1];
	struct pending_call *p;

	if (h->kind != RPC_REPLY)
		return bad_frame(why, whylen, "a request where a reply belongs");
	TAILQ_FOREACH (p, &c->pending, link) {
		if (p->seq != h->seq || p->done)
			continue;
		if (p->method != h->method)
			return bad_frame(why, whylen, "reply %llu is for another method",
					 (unsigned long long)h->seq);
		if (h->status == RPC_OK && m->decode_reply(payload, h->len, p->reply) < 0)
			return bad_frame(why, whylen, "field out of range in %s reply", m->name);
		p->done = true;
		p->err = h->status == RPC_FAILED ? -EIO : 0;
		pthread_cond_signal(&p->cond);
		return 0;
	}
	return 0; /* its caller gave up (the client closed): nothing to do */
}

/*
 * Reads one frame and hands it to its caller, as Go's rpc.Client.input
 * does in a loop. Expects c->mu held and c->reading set by the caller;
 * drops the lock while it reads.
 */
static void read_one_reply(struct rpc_client *c)
{
	const uint8_t *payload;
	struct rpc_header h;
	char why[128];
	int rc;

	pthread_mutex_unlock(&c->mu);
	rc = next_frame(&c->r, &h, &payload, why, sizeof(why));
	pthread_mutex_lock(&c->mu);
	if (!rc)
		rc = deliver_reply(c, &h, payload, why, sizeof(why));
	if (!rc)
		return;
	if (!c->closed && rc != -ECONNRESET)
		log_printf("[%d] closing connection to %d: %s", c->id, c->peer_id, why);
	client_close_locked(c);
}

/* Hands the reader's turn to a caller still waiting. Expects c->mu held. */
static void pass_reading(struct rpc_client *c)
{
	struct pending_call *p;

	TAILQ_FOREACH (p, &c->pending, link) {
		if (!p->done) {
			pthread_cond_signal(&p->cond);
			return;
		}
	}
}

/*
 * Waits for p's reply, reading the connection itself whenever no other
 * caller is. Expects c->mu held.
 */
static void await_reply(struct rpc_client *c, struct pending_call *p)
{
	while (!p->done) {
		if (c->reading || c->closed) {
			pthread_cond_wait(&p->cond, &c->mu);
			continue;
		}
		c->reading = true;
		while (!p->done)
			read_one_reply(c);
		c->reading = false;
	}
	if (!c->reading)
		pass_reading(c);
}

static int dial(int id, const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

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
	set_nodelay(id, fd);
	return fd;
}

int rpc_dial(int id, int peer_id, const struct sockaddr_in *addr, const struct rpc_service *svc,
	     struct rpc_client **out)
{
	struct rpc_client *c;
	int fd = dial(id, addr);

	if (fd < 0)
		return fd;
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_printf("[%d] connect to %d: %s", id, peer_id, strerror(ENOMEM));
		close(fd);
		return -ENOMEM;
	}
	c->id = id;
	c->peer_id = peer_id;
	c->fd = fd;
	c->svc = svc;
	c->next_seq = 1;
	c->refs = 1; /* the dialer's */
	TAILQ_INIT(&c->pending);
	atomic_init(&c->read_deadline_ms, READ_DEADLINE_MS);
	if (frame_reader_init(&c->r, fd, svc, &c->read_deadline_ms) < 0) {
		log_printf("[%d] connect to %d: %s", id, peer_id, strerror(ENOMEM));
		close(fd);
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->write_mu, NULL);
	*out = c;
	return 0;
}

int rpc_call(struct rpc_client *c, int method, const void *args, void *reply)
{
	struct pending_call p = { .method = method, .reply = reply };
	struct rpc_header h = { .kind = RPC_REQUEST, .method = method };
	int rc;

	if (method < 1 || method > c->svc->nmethods)
		return -EINVAL;
	if (pthread_cond_init(&p.cond, NULL))
		return -ENOMEM;
	pthread_mutex_lock(&c->mu);
	if (c->closed) {
		pthread_mutex_unlock(&c->mu);
		pthread_cond_destroy(&p.cond);
		return -ECONNRESET;
	}
	p.seq = h.seq = c->next_seq++;
	TAILQ_INSERT_TAIL(&c->pending, &p, link);
	pthread_mutex_unlock(&c->mu);

	rc = write_frame(c->fd, &c->write_mu, &h, &c->svc->methods[method - 1], args);

	pthread_mutex_lock(&c->mu);
	if (rc)
		client_close_locked(c);
	await_reply(c, &p);
	TAILQ_REMOVE(&c->pending, &p, link);
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&p.cond);
	return p.err;
}
