/* SPDX-License-Identifier: MIT */
/*
 * The upstream HTTP/1.1 client and the worker's keep-alive pool (see upstream.h).
 *
 * An UpstreamConn is a socket with its uv_poll_t and one timer (connect timeout, then
 * the read timeout while it serves a request, then the idle timeout in the pool). An
 * UpstreamRequest borrows one connection at a time (two when a retry happens) and owns
 * the bytes in flight: the request head, a bounded queue toward the service and one read
 * buffer from it. When the downstream is full the request stops polling for input and
 * keeps the unparsed rest of its read buffer until resumed; when the queue toward the
 * service is full upstream_request_send() says so.
 *
 * Entry points (poll/timer callbacks, the public calls) hold a reference on the request
 * while they run, so a callback that ends it (the exchange cancelling from inside
 * ops->data) only marks it finished; it is freed when the outermost entry returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "macro.h"
#include "parse-util.h"
#include "proxyd.h"
#include "strutil.h"
#include "upstream.h"

#define READ_BUF_SIZE (64 * 1024)
#define READS_PER_WAKEUP 16
#define RESPONSE_MAX_FIELDS 128

typedef struct UpstreamConn UpstreamConn;

typedef struct Pool {
	uv_loop_t *loop;
	UpstreamConn *idle;  /* most recently used first */
	uint8_t *spare_rbuf; /* one read buffer kept for the next request */
	UpstreamStats stats;
} Pool;

static _Thread_local Pool *tl_pool;
static pthread_key_t pool_key;
static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;

struct UpstreamConn {
	Pool *pool;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int fd;
	uv_poll_t poll;
	uv_timer_t timer;
	int events; /* what the poll handle waits for now; 0 = stopped */
	unsigned open_handles;
	bool connected, idle;
	unsigned served; /* requests completed on it */
	UpstreamRequest *req;
	UpstreamConn *idle_prev, *idle_next;
};

struct UpstreamRequest {
	Pool *pool;
	const UpstreamOps *ops;
	void *userdata;
	unsigned n_ref;
	bool finished;

	struct sockaddr_storage addr;
	socklen_t addr_len;
	char *target_text;
	char *method;
	bool idempotent, is_head, tunnel_ok;
	Http1BodyKind body;
	uint64_t connect_timeout_ms, read_timeout_ms;

	UpstreamConn *conn;
	bool reused, retried;

	/* toward the service */
	Buf head;
	size_t head_off;
	Buf out;
	size_t out_off;
	bool out_full;   /* send() said false: resume_request owed */
	bool send_ended; /* the body (client direction) is complete */
	bool wrote_body; /* body bytes reached the socket */
	bool write_dead; /* the service stopped reading: further bytes are dropped */
	bool shut_wr;
	bool sent_armed; /* the read timer started once the request was sent */

	/* from the service */
	Http1Parser *parser;
	uint8_t *rbuf;
	size_t rlen, roff;
	bool got_byte;    /* any response byte arrived */
	bool head_done;   /* the final head went to ops->head */
	bool tunnel_next; /* a 101 head was delivered: the tunnel starts after its END */
	bool tunnel;
	bool paused;       /* ops->data said false */
	bool upstream_eof; /* tunnel: the service's direction ended */
	bool keep_alive;
};

/* ---- sockets ---- */

static bool sockaddr_equal(const struct sockaddr_storage *a, socklen_t alen,
			   const struct sockaddr_storage *b, socklen_t blen)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
		       x->sin6_scope_id == y->sin6_scope_id;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* ---- the pool ---- */

/*
 * The worker thread is exiting: its loop has closed every handle (worker.c walks them),
 * so what is left of the pool is memory and the idle sockets' fds. Connections still
 * serving a request belong to that request (cancelled with its exchange).
 */
static void pool_thread_exit(void *userdata)
{
	Pool *p = userdata;
	while (p->idle) {
		UpstreamConn *c = p->idle;
		p->idle = c->idle_next;
		safe_close(c->fd);
		free(c);
	}
	free(p->spare_rbuf);
	free(p);
	tl_pool = NULL;
}

static void pool_key_create(void)
{
	(void)pthread_key_create(&pool_key, pool_thread_exit);
}

static Pool *pool_get(Worker *w)
{
	if (tl_pool)
		return tl_pool;
	Pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->loop = worker_uv(w);
	(void)pthread_once(&pool_key_once, pool_key_create);
	(void)pthread_setspecific(pool_key, p);
	tl_pool = p;
	return p;
}

void upstream_get_stats(UpstreamStats *ret)
{
	*ret = tl_pool ? tl_pool->stats : (UpstreamStats){ 0 };
}

static void conn_handle_closed(uv_handle_t *h)
{
	UpstreamConn *c = h->data;
	if (--c->open_handles == 0)
		free(c);
}

static void idle_unlink(UpstreamConn *c)
{
	if (!c->idle)
		return;
	if (c->idle_prev)
		c->idle_prev->idle_next = c->idle_next;
	else
		c->pool->idle = c->idle_next;
	if (c->idle_next)
		c->idle_next->idle_prev = c->idle_prev;
	c->idle_prev = c->idle_next = NULL;
	c->idle = false;
	c->pool->stats.idle--;
}

static void conn_close(UpstreamConn *c)
{
	if (!c)
		return;
	idle_unlink(c);
	c->req = NULL;
	uv_timer_stop(&c->timer);
	/* uv_close first: libuv drops the fd from epoll while it is still ours. */
	uv_close((uv_handle_t *)&c->poll, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	c->fd = safe_close(c->fd);
}

static void conn_poll_cb(uv_poll_t *h, int status, int events);

static int conn_set_events(UpstreamConn *c, int events)
{
	if (events == c->events)
		return 0;
	int r;
	if (events == 0)
		r = uv_poll_stop(&c->poll);
	else
		r = uv_poll_start(&c->poll, events, conn_poll_cb);
	if (r < 0)
		return r;
	c->events = events;
	return 0;
}

static void conn_timer_cb(uv_timer_t *t);

/* A new socket connecting to addr. -errno when connect() fails at once. */
static int conn_connect(Pool *pool, const struct sockaddr_storage *addr, socklen_t addr_len,
			UpstreamConn **ret)
{
	_cleanup_close_ int fd =
	    socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (addr->ss_family == AF_INET || addr->ss_family == AF_INET6) {
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	bool connected = true;
	if (connect(fd, (const struct sockaddr *)addr, addr_len) < 0) {
		if (errno != EINPROGRESS && errno != EINTR)
			return negative_errno();
		connected = false;
	}
	UpstreamConn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int r = uv_poll_init(pool->loop, &c->poll, fd);
	if (r < 0) {
		free(c);
		return r;
	}
	r = uv_timer_init(pool->loop, &c->timer);
	if (r < 0) {
		c->open_handles = 1;
		c->poll.data = c;
		uv_close((uv_handle_t *)&c->poll, conn_handle_closed);
		return r;
	}
	c->pool = pool;
	c->addr = *addr;
	c->addr_len = addr_len;
	c->fd = TAKE_FD(fd);
	c->poll.data = c;
	c->timer.data = c;
	c->open_handles = 2;
	c->connected = connected;
	pool->stats.connects++;
	*ret = c;
	return 0;
}

/* An idle connection to addr that still looks alive, or NULL. */
static UpstreamConn *pool_take(Pool *pool, const struct sockaddr_storage *addr, socklen_t len)
{
	for (UpstreamConn *c = pool->idle, *next; c; c = next) {
		next = c->idle_next;
		if (!sockaddr_equal(&c->addr, c->addr_len, addr, len))
			continue;
		idle_unlink(c);
		uint8_t b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			uv_timer_stop(&c->timer);
			pool->stats.reuses++;
			return c;
		}
		/* EOF, unexpected bytes or an error: the service is done with it. */
		pool->stats.idle_closed++;
		conn_close(c);
	}
	return NULL;
}

static void pool_put(UpstreamConn *c)
{
	Pool *pool = c->pool;
	c->req = NULL;
	unsigned same = 0;
	for (UpstreamConn *i = pool->idle; i; i = i->idle_next)
		if (sockaddr_equal(&i->addr, i->addr_len, &c->addr, c->addr_len))
			same++;
	/* Readable while idle = EOF or bytes nobody asked for. The same events as while a
	 * response is read, so that going idle and back costs no epoll_ctl. */
	if (same >= UPSTREAM_MAX_IDLE || conn_set_events(c, UV_READABLE) < 0 ||
	    uv_timer_start(&c->timer, conn_timer_cb, UPSTREAM_IDLE_USEC / 1000, 0) < 0) {
		conn_close(c);
		return;
	}
	c->idle = true;
	c->idle_prev = NULL;
	c->idle_next = pool->idle;
	if (pool->idle)
		pool->idle->idle_prev = c;
	pool->idle = c;
	pool->stats.idle++;
}

/* ---- requests: lifetime ---- */

static void request_free(UpstreamRequest *u)
{
	conn_close(u->conn);
	http1_parser_free(u->parser);
	buf_done(&u->head);
	buf_done(&u->out);
	if (u->rbuf && !u->pool->spare_rbuf)
		u->pool->spare_rbuf = u->rbuf;
	else
		free(u->rbuf);
	free(u->target_text);
	free(u->method);
	free(u);
}

static void request_ref(UpstreamRequest *u)
{
	u->n_ref++;
}

static void request_unref(UpstreamRequest *u)
{
	if (--u->n_ref == 0)
		request_free(u);
}

/* The terminal callback; drops the owner's reference. */
static void request_finish(UpstreamRequest *u, int error, const char *detail)
{
	if (u->finished)
		return;
	u->finished = true;
	conn_close(TAKE_PTR(u->conn));
	request_ref(u);
	u->ops->finished(u->userdata, error, detail);
	request_unref(u); /* ours */
	request_unref(u); /* the owner's */
}

static void request_failf(UpstreamRequest *u, int error, const char *fmt, ...) _printf_(3, 4);
static void request_failf(UpstreamRequest *u, int error, const char *fmt, ...)
{
	char detail[256];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	request_finish(u, error, detail);
}

/* ---- requests: I/O ---- */

static size_t out_pending(const UpstreamRequest *u)
{
	return u->out.len - u->out_off;
}

static bool head_pending(const UpstreamRequest *u)
{
	return u->head_off < u->head.len;
}

static void request_update(UpstreamRequest *u);
static void request_flush(UpstreamRequest *u);
static void request_read(UpstreamRequest *u);
static int request_attach(UpstreamRequest *u, bool allow_pool);

/* Whether a failure now may be retried on a fresh connection. */
static bool request_can_retry(const UpstreamRequest *u)
{
	return u->reused && !u->retried && u->idempotent && !u->got_byte && !u->wrote_body &&
	       !u->head_done;
}

static void request_retry(UpstreamRequest *u)
{
	u->retried = true;
	u->pool->stats.retries++;
	conn_close(TAKE_PTR(u->conn));
	u->head_off = 0;
	u->sent_armed = false;
	u->rlen = u->roff = 0;
	http1_parser_reset(u->parser);
	http1_parser_set_request_method(u->parser, u->is_head ? "HEAD" : u->method);
	int r = request_attach(u, false);
	if (r < 0)
		request_failf(u, r, "cannot connect to %s: %s", u->target_text, strerror(-r));
}

/* The service reset or closed the connection before the response was complete. */
static void request_lost(UpstreamRequest *u, int error)
{
	if (request_can_retry(u)) {
		request_retry(u);
		return;
	}
	if (!u->got_byte)
		request_failf(u, -ECONNRESET, "%s closed the connection without a response%s%s",
			      u->target_text, error ? ": " : "", error ? strerror(-error) : "");
	else
		request_failf(u, -ECONNRESET,
			      "%s closed the connection in the middle of the response",
			      u->target_text);
}

static void request_write_failed(UpstreamRequest *u, int error)
{
	if (request_can_retry(u)) {
		request_retry(u);
		return;
	}
	if (head_pending(u) || u->tunnel) {
		/* No response can come for a request the service did not receive whole; a tunnel
		 * whose peer stopped reading is over. */
		request_lost(u, error);
		return;
	}
	/* The service may have answered before it stopped reading (413 and the like): keep
	 * reading, drop the rest of the body. */
	u->write_dead = true;
	buf_clear(&u->out);
	u->out_off = 0;
	if (u->out_full) {
		u->out_full = false;
		u->ops->resume_request(u->userdata);
	}
}

/* The whole request reached the socket: from now on the service owes us bytes. */
static bool request_sent(const UpstreamRequest *u)
{
	if (head_pending(u))
		return false;
	if (u->write_dead)
		return true;
	return out_pending(u) == 0 && (u->body == HTTP1_BODY_NONE || u->send_ended);
}

/* The upstream timeout runs between reads once the request is sent (a slow upload is
 * not the service's fault), and not while the downstream holds us back. */
static void request_arm_read_timer(UpstreamRequest *u)
{
	UpstreamConn *c = u->conn;
	if (!c || !c->connected || u->read_timeout_ms == 0 || u->tunnel || u->paused ||
	    !request_sent(u))
		return;
	(void)uv_timer_start(&c->timer, conn_timer_cb, u->read_timeout_ms, 0);
}

static void request_flush(UpstreamRequest *u)
{
	UpstreamConn *c = u->conn;
	if (!c || !c->connected || u->finished)
		return;
	while (!u->write_dead) {
		const char *p;
		size_t n;
		bool body;
		if (head_pending(u)) {
			p = u->head.data + u->head_off;
			n = u->head.len - u->head_off;
			body = false;
		} else if (out_pending(u) > 0) {
			p = u->out.data + u->out_off;
			n = out_pending(u);
			body = true;
		} else
			break;
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			request_write_failed(u, negative_errno());
			return;
		}
		if (body) {
			u->wrote_body = true;
			u->out_off += (size_t)k;
			if (u->out_off == u->out.len) {
				buf_clear(&u->out);
				u->out_off = 0;
			}
		} else
			u->head_off += (size_t)k;
	}
	if (!u->sent_armed && request_sent(u)) {
		u->sent_armed = true;
		request_arm_read_timer(u);
	}
	if (u->out_full && out_pending(u) <= UPSTREAM_SEND_LOW) {
		u->out_full = false;
		u->ops->resume_request(u->userdata);
		if (u->finished)
			return;
	}
	if (u->tunnel && u->send_ended && !u->shut_wr && !head_pending(u) && out_pending(u) == 0) {
		u->shut_wr = true;
		(void)shutdown(c->fd, SHUT_WR);
		if (u->upstream_eof)
			request_finish(u, 0, NULL);
	}
}

static void request_update(UpstreamRequest *u)
{
	UpstreamConn *c = u->conn;
	if (!c || u->finished)
		return;
	int ev = 0;
	if (!c->connected)
		ev = UV_WRITABLE;
	else {
		if (!u->write_dead && (head_pending(u) || out_pending(u) > 0))
			ev |= UV_WRITABLE;
		if (!u->paused && !u->upstream_eof)
			ev |= UV_READABLE;
	}
	if (c->connected && (u->paused || u->tunnel))
		uv_timer_stop(&c->timer);
	int r = conn_set_events(c, ev);
	if (r < 0)
		request_failf(u, -EIO, "cannot watch the connection to %s: %s", u->target_text,
			      uv_strerror(r));
}

/* Fill *ret with the response fields to forward and the framing to announce. */
static size_t response_fields(UpstreamRequest *u, const HttpHead *h, HttpField *out,
			      char lenbuf[static 32], Http1BodyKind *ret_kind, uint64_t *ret_len)
{
	Http1BodyKind kind = h->body;
	uint64_t len = h->content_length;
	const HttpField *cl = http_head_field(h, "Content-Length");
	bool no_body_status =
	    (h->status >= 100 && h->status < 200) || h->status == 204 || h->status == 304;

	if (no_body_status)
		kind = HTTP1_BODY_NONE;
	else if (u->is_head) {
		kind = HTTP1_BODY_NONE;
		if (cl && safe_atou64(cl->value, &len) >= 0)
			kind = HTTP1_BODY_LENGTH;
	} else if (kind == HTTP1_BODY_NONE) {
		kind = HTTP1_BODY_LENGTH;
		len = 0;
	}

	size_t n = 0;
	for (size_t i = 0; i < h->n_fields && n < RESPONSE_MAX_FIELDS - 1; i++) {
		const HttpField *f = &h->fields[i];
		if (http_field_is_hop_by_hop(h, f))
			continue;
		if (strcasecmp(f->name, "Content-Length") == 0) {
			/* Ours (below) when we know the length; none when the length is unknown. */
			continue;
		}
		out[n++] = *f;
	}
	uint64_t shown;
	bool show = false;
	if (kind == HTTP1_BODY_LENGTH) {
		shown = len;
		show = true;
	} else if (cl && (no_body_status || u->is_head) && safe_atou64(cl->value, &shown) >= 0)
		show = true;
	if (show) {
		(void)strfmt(lenbuf, 32, "%" PRIu64, shown);
		out[n++] = (HttpField){
			.name = "Content-Length",
			.value = lenbuf,
			.name_len = STRLEN("Content-Length"),
			.value_len = strlen(lenbuf),
		};
	}
	*ret_kind = kind;
	*ret_len = kind == HTTP1_BODY_LENGTH ? len : 0;
	return n;
}

/* Process the read buffer from roff; returns when it is used up, paused or finished. */
static void request_parse(UpstreamRequest *u)
{
	while (!u->finished && !u->paused && !u->tunnel) {
		size_t consumed = 0;
		Http1Result res = { 0 };
		Http1Event ev =
		    http1_parse(u->parser, u->rbuf + u->roff, u->rlen - u->roff, &consumed, &res);
		u->roff += consumed;
		switch (ev) {
		case HTTP1_NEED_MORE:
			if (u->roff >= u->rlen) {
				u->rlen = u->roff = 0;
				return;
			}
			if (consumed == 0) {
				request_failf(u, -EPROTO, "%s sent bytes after the response",
					      u->target_text);
				return;
			}
			continue;
		case HTTP1_HEAD: {
			const HttpHead *h = res.head;
			if (h->status >= 100 && h->status < 200 && h->status != 101)
				continue; /* 100-continue, 103: never forwarded */
			if (h->status == 101 && !u->tunnel_ok) {
				request_failf(u, -EPROTO,
					      "%s switched protocols without being asked",
					      u->target_text);
				return;
			}
			HttpField fields[RESPONSE_MAX_FIELDS];
			Http1BodyKind kind;
			uint64_t len;
			char lenbuf[32];
			size_t n = response_fields(u, h, fields, lenbuf, &kind, &len);
			u->head_done = true;
			u->tunnel_next = h->status == 101;
			u->keep_alive =
			    h->keep_alive && kind != HTTP1_BODY_UNTIL_CLOSE && h->status != 101;
			u->ops->head(u->userdata, h->status, fields, n, kind, len);
			continue;
		}
		case HTTP1_DATA:
			if (!u->ops->data(u->userdata, res.data, res.len))
				u->paused = true;
			continue;
		case HTTP1_END:
			if (!u->head_done)
				continue; /* the end of a skipped 1xx */
			if (u->tunnel_next) {
				u->tunnel = true;
				if (u->roff < u->rlen) {
					const uint8_t *p = u->rbuf + u->roff;
					size_t n = u->rlen - u->roff;
					u->rlen = u->roff = 0;
					if (!u->ops->data(u->userdata, p, n))
						u->paused = true;
					if (u->finished)
						return;
				} else
					u->rlen = u->roff = 0;
				uv_timer_stop(&u->conn->timer);
				request_flush(u);
				return;
			}
			/* The response is complete. */
			{
				UpstreamConn *c = TAKE_PTR(u->conn);
				bool sent_all = !head_pending(u) && !u->write_dead &&
						(u->body == HTTP1_BODY_NONE ||
						 (u->send_ended && out_pending(u) == 0));
				uv_timer_stop(&c->timer);
				/* After an upgrade the service refused, the client may already
				 * have sent bytes of the new protocol: never reuse that one. */
				if (u->keep_alive && sent_all && !u->tunnel_ok &&
				    u->roff == u->rlen) {
					c->served++;
					pool_put(c);
				} else
					conn_close(c);
			}
			u->ops->end(u->userdata);
			request_finish(u, 0, NULL);
			return;
		case HTTP1_ERROR:
			request_failf(u, -EPROTO, "%s sent a malformed response: %s",
				      u->target_text, res.error ? res.error : "bad message");
			return;
		}
	}
}

static void request_eof(UpstreamRequest *u)
{
	if (u->tunnel) {
		u->upstream_eof = true;
		u->ops->end(u->userdata);
		if (u->finished)
			return;
		if (u->shut_wr || u->write_dead)
			request_finish(u, 0, NULL);
		return;
	}
	Http1Result res = { 0 };
	Http1Event ev = http1_parse_eof(u->parser, &res);
	if (ev == HTTP1_END && u->head_done) {
		conn_close(TAKE_PTR(u->conn));
		u->ops->end(u->userdata);
		request_finish(u, 0, NULL);
		return;
	}
	request_lost(u, 0);
}

static void request_read(UpstreamRequest *u)
{
	UpstreamConn *c = u->conn;
	if (!u->rbuf) {
		u->rbuf = TAKE_PTR(u->pool->spare_rbuf);
		if (!u->rbuf)
			u->rbuf = malloc(READ_BUF_SIZE);
		if (!u->rbuf) {
			request_failf(u, -ENOMEM, "out of memory");
			return;
		}
	}
	for (unsigned i = 0; i < READS_PER_WAKEUP; i++) {
		if (u->finished || u->paused || u->upstream_eof || u->conn != c)
			return;
		if (u->roff < u->rlen) {
			request_parse(u);
			continue;
		}
		ssize_t k = recv(c->fd, u->rbuf, READ_BUF_SIZE, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			request_lost(u, negative_errno());
			return;
		}
		if (k == 0) {
			request_eof(u);
			return;
		}
		u->got_byte = true;
		u->rlen = (size_t)k;
		u->roff = 0;
		if (u->tunnel) {
			u->rlen = 0;
			if (!u->ops->data(u->userdata, u->rbuf, (size_t)k))
				u->paused = true;
			continue;
		}
		request_arm_read_timer(u);
		request_parse(u);
	}
}

static void conn_poll_cb(uv_poll_t *h, int status, int events)
{
	UpstreamConn *c = h->data;
	UpstreamRequest *u = c->req;
	if (!u) {
		/* Idle in the pool: readable means EOF or bytes nobody asked for. */
		c->pool->stats.idle_closed++;
		conn_close(c);
		return;
	}
	request_ref(u);
	if (!c->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (status < 0)
			err = -status;
		else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY)
			goto out;
		if (err != 0) {
			if (err == ECONNREFUSED)
				request_failf(u, -ECONNREFUSED, "connection refused by %s",
					      u->target_text);
			else
				request_failf(u, -err, "cannot connect to %s: %s", u->target_text,
					      strerror(err));
			goto out;
		}
		c->connected = true;
		uv_timer_stop(&c->timer);
		events = UV_WRITABLE;
	} else if (status < 0) {
		request_lost(u, status);
		goto out;
	}
	if (events & UV_WRITABLE)
		request_flush(u);
	if (!u->finished && u->conn == c && (events & (UV_READABLE | UV_DISCONNECT)))
		request_read(u);
	request_update(u);
out:
	request_unref(u);
}

static void conn_timer_cb(uv_timer_t *t)
{
	UpstreamConn *c = t->data;
	UpstreamRequest *u = c->req;
	if (!u) {
		c->pool->stats.idle_closed++;
		conn_close(c);
		return;
	}
	request_ref(u);
	if (!c->connected)
		request_failf(u, -ETIMEDOUT, "timed out connecting to %s after %" PRIu64 " ms",
			      u->target_text, u->connect_timeout_ms);
	else if (!u->got_byte || !u->head_done)
		request_failf(u, -ETIME, "%s sent no response within %" PRIu64 " ms",
			      u->target_text, u->read_timeout_ms);
	else
		request_failf(u, -ETIME, "%s sent nothing for %" PRIu64 " ms", u->target_text,
			      u->read_timeout_ms);
	request_unref(u);
}

/* Get a connection: from the pool (allow_pool) or a new one. */
static int request_attach(UpstreamRequest *u, bool allow_pool)
{
	UpstreamConn *c = allow_pool ? pool_take(u->pool, &u->addr, u->addr_len) : NULL;
	u->reused = c != NULL;
	if (!c) {
		int r = conn_connect(u->pool, &u->addr, u->addr_len, &c);
		if (r < 0)
			return r;
		if (!c->connected && u->connect_timeout_ms > 0)
			(void)uv_timer_start(&c->timer, conn_timer_cb, u->connect_timeout_ms, 0);
	}
	c->req = u;
	u->conn = c;
	if (c->connected) {
		/* A pooled connection: the head goes out now, most often whole, and the poll
		 * handle keeps waiting for input only. A failure here shows again on the
		 * socket (EOF/reset) and is handled there, not inside this call. */
		while (head_pending(u)) {
			ssize_t k = send(c->fd, u->head.data + u->head_off,
					 u->head.len - u->head_off, MSG_NOSIGNAL);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			u->head_off += (size_t)k;
		}
		if (!u->sent_armed && request_sent(u)) {
			u->sent_armed = true;
			request_arm_read_timer(u);
		}
	}
	request_update(u);
	return 0;
}

/* ---- the request head ---- */

static bool is_token_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       strchr("!#$%&'*+-.^_`|~", c);
}

static bool text_is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_token_char(*s))
			return false;
	return true;
}

static bool safe_field_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return false;
	return true;
}

/* The client's address as text; "[v6]" in `bracketed` form for Forwarded. */
static int client_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t size,
		       bool *ret_v6)
{
	*ret_v6 = false;
	if (!sa)
		return -EINVAL;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		return inet_ntop(AF_INET, &in->sin_addr, buf, size) ? 0 : -EINVAL;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, size) ? 0
											  : -EINVAL;
		*ret_v6 = true;
		return inet_ntop(AF_INET6, &in6->sin6_addr, buf, size) ? 0 : -EINVAL;
	}
	return -EAFNOSUPPORT;
}

static void base64_16(const uint8_t in[16], char out[25])
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < 15; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = tbl[(v >> 6) & 63];
		out[o++] = tbl[v & 63];
	}
	uint32_t v = (uint32_t)in[15] << 16;
	out[o++] = tbl[(v >> 18) & 63];
	out[o++] = tbl[(v >> 12) & 63];
	out[o++] = '=';
	out[o++] = '=';
	out[o] = '\0';
}

/* Append the values of every field `name` to *b, comma-separated. */
static int join_fields(const ExchangeRequest *req, const char *name, Buf *b)
{
	for (size_t i = 0; i < req->n_fields; i++) {
		const HttpField *f = &req->fields[i];
		if (strcasecmp(f->name, name) != 0 || f->value_len == 0 ||
		    !safe_field_text(f->value, f->value_len))
			continue;
		int r = b->len ? buf_append_str(b, ", ") : 0;
		if (r >= 0)
			r = buf_append(b, f->value, f->value_len);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool field_is_one_of(const char *name, const char *const *names)
{
	for (; *names; names++)
		if (strcasecmp(name, *names) == 0)
			return true;
	return false;
}

int upstream_build_request_head(const ExchangeRequest *req, Buf *out)
{
	if (isempty(req->method) || isempty(req->path))
		return -EINVAL;
	if (!safe_field_text(req->path, strlen(req->path)) || strchr(req->path, ' ') ||
	    !text_is_token(req->method))
		return -EINVAL;
	const char *authority = req->authority;
	if (authority && !safe_field_text(authority, strlen(authority)))
		return -EINVAL;
	bool upgrade = req->upgrade && *req->upgrade;
	if (upgrade && !safe_field_text(req->upgrade, strlen(req->upgrade)))
		return -EINVAL;

	static const char *const replaced[] = {
		"Host",
		"Content-Length",
		"Expect",
		"X-Forwarded-For",
		"X-Forwarded-Proto",
		"X-Forwarded-Host",
		"Forwarded",
		"Sec-WebSocket-Key",
		"Transfer-Encoding",
		"Connection",
		"Upgrade",
		NULL,
	};
	HttpHead fake = { .fields = (HttpField *)req->fields, .n_fields = req->n_fields };
	_cleanup_buf_ Buf xff = BUF_INIT(16 * 1024), fwd = BUF_INIT(16 * 1024);
	int r = join_fields(req, "X-Forwarded-For", &xff);
	if (r >= 0)
		r = join_fields(req, "Forwarded", &fwd);
	if (r < 0)
		return r == -E2BIG ? -EINVAL : r;

	const char *method = req->extended_connect ? "GET" : req->method;
	r = buf_printf(out, "%s %s HTTP/1.1\r\n", method, req->path);
	if (r >= 0 && !isempty(authority))
		r = buf_printf(out, "Host: %s\r\n", authority);
	for (size_t i = 0; r >= 0 && i < req->n_fields; i++) {
		const HttpField *f = &req->fields[i];
		if (f->name_len == 0 || f->name[0] == ':' ||
		    !safe_field_text(f->name, f->name_len) ||
		    !safe_field_text(f->value, f->value_len))
			continue;
		if (http_field_is_hop_by_hop(&fake, f) || field_is_one_of(f->name, replaced))
			continue;
		r = buf_append(out, f->name, f->name_len);
		if (r >= 0)
			r = buf_append_str(out, ": ");
		if (r >= 0)
			r = buf_append(out, f->value, f->value_len);
		if (r >= 0)
			r = buf_append_str(out, "\r\n");
	}
	if (r < 0)
		return r;

	char client[INET6_ADDRSTRLEN];
	bool v6 = false;
	bool have_client =
	    client_text(req->client, req->client_len, client, sizeof(client), &v6) >= 0;
	const char *proto = req->tls ? "https" : "http";
	if (have_client)
		r = buf_printf(out, "X-Forwarded-For: %s%s%s\r\n", xff.len ? xff.data : "",
			       xff.len ? ", " : "", client);
	else if (xff.len)
		r = buf_printf(out, "X-Forwarded-For: %s\r\n", xff.data);
	if (r >= 0)
		r = buf_printf(out, "X-Forwarded-Proto: %s\r\n", proto);
	if (r >= 0 && !isempty(authority))
		r = buf_printf(out, "X-Forwarded-Host: %s\r\n", authority);
	if (r >= 0) {
		r = buf_printf(out, "Forwarded: %s%s", fwd.len ? fwd.data : "",
			       fwd.len ? ", " : "");
		if (r >= 0) {
			if (!have_client)
				r = buf_append_str(out, "for=unknown");
			else if (v6)
				r = buf_printf(out, "for=\"[%s]\"", client);
			else
				r = buf_printf(out, "for=%s", client);
		}
		if (r >= 0)
			r = buf_printf(out, ";proto=%s", proto);
		if (r >= 0 && !isempty(authority)) {
			if (text_is_token(authority))
				r = buf_printf(out, ";host=%s", authority);
			else if (!strpbrk(authority, "\"\\"))
				r = buf_printf(out, ";host=\"%s\"", authority);
		}
		if (r >= 0)
			r = buf_append_str(out, "\r\n");
	}
	if (r < 0)
		return r;

	if (upgrade) {
		r = buf_printf(out, "Connection: upgrade\r\nUpgrade: %s\r\n", req->upgrade);
		if (r >= 0 && req->extended_connect && strcasecmp(req->upgrade, "websocket") == 0) {
			uint8_t key[16];
			char b64[25];
			if (gnutls_rnd(GNUTLS_RND_NONCE, key, sizeof(key)) < 0)
				return -EIO;
			base64_16(key, b64);
			r = buf_printf(out, "Sec-WebSocket-Key: %s\r\n", b64);
		} else if (r >= 0) {
			/* An h1 upgrade keeps the client's key (the client checks the accept). */
			for (size_t i = 0; r >= 0 && i < req->n_fields; i++) {
				const HttpField *f = &req->fields[i];
				if (strcasecmp(f->name, "Sec-WebSocket-Key") == 0 &&
				    safe_field_text(f->value, f->value_len))
					r = buf_printf(out, "Sec-WebSocket-Key: %s\r\n", f->value);
			}
		}
	} else if (req->body == HTTP1_BODY_LENGTH)
		r = buf_printf(out, "Content-Length: %" PRIu64 "\r\n", req->content_length);
	else if (req->body == HTTP1_BODY_CHUNKED || req->body == HTTP1_BODY_UNTIL_CLOSE)
		r = buf_append_str(out, "Transfer-Encoding: chunked\r\n");
	if (r >= 0)
		r = buf_append_str(out, "\r\n");
	return r < 0 ? r : 0;
}

/* ---- the public calls ---- */

static bool method_is_idempotent(const char *m)
{
	static const char *const idem[] = {
		"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", NULL
	};
	for (const char *const *i = idem; *i; i++)
		if (streq(m, *i))
			return true;
	return false;
}

int upstream_request_start(const UpstreamRequestParams *params, const UpstreamOps *ops,
			   void *userdata, UpstreamRequest **ret)
{
	if (!params->target.addr || params->target.addr_len == 0 ||
	    params->target.addr_len > sizeof(struct sockaddr_storage) || !params->method ||
	    !params->head)
		return -EINVAL;
	Pool *pool = pool_get(params->worker);
	if (!pool)
		return -ENOMEM;
	UpstreamRequest *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->pool = pool;
	u->ops = ops;
	u->userdata = userdata;
	u->n_ref = 1;
	memcpy(&u->addr, params->target.addr, params->target.addr_len);
	u->addr_len = params->target.addr_len;
	u->target_text = strdup(params->target.text ? params->target.text : "the service");
	u->method = strdup(params->method);
	u->idempotent = method_is_idempotent(params->method);
	u->is_head = streq(params->method, "HEAD");
	u->tunnel_ok = params->tunnel_ok;
	u->body = params->tunnel_ok ? HTTP1_BODY_NONE : params->body;
	u->connect_timeout_ms = params->connect_timeout_usec / 1000;
	u->read_timeout_ms = params->read_timeout_usec / 1000;
	u->head = *params->head;
	*params->head = BUF_INIT(params->head->max);
	u->out = BUF_INIT(0);
	int r = (!u->target_text || !u->method)
		    ? -ENOMEM
		    : http1_parser_new(HTTP1_RESPONSE, NULL, &u->parser);
	if (r >= 0) {
		http1_parser_set_request_method(u->parser, u->method);
		r = request_attach(u, true);
	}
	if (r < 0) {
		request_free(u);
		return r;
	}
	*ret = u;
	return 0;
}

bool upstream_request_send(UpstreamRequest *u, const uint8_t *p, size_t n)
{
	if (u->finished || u->write_dead || n == 0)
		return true;
	request_ref(u);
	bool chunked = u->body == HTTP1_BODY_CHUNKED && !u->tunnel_ok;
	UpstreamConn *c = u->conn;
	/* Straight to the socket when nothing is queued before these bytes. */
	if (!chunked && c && c->connected && !head_pending(u) && out_pending(u) == 0) {
		ssize_t k;
		do
			k = send(c->fd, p, n, MSG_NOSIGNAL);
		while (k < 0 && errno == EINTR);
		if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			request_write_failed(u, negative_errno());
			goto out;
		}
		if (k > 0) {
			u->wrote_body = true;
			p += k;
			n -= (size_t)k;
		}
	}
	if (n > 0) {
		if (u->out_off > 0 && u->out_off >= u->out.len / 2) {
			buf_consume(&u->out, u->out_off);
			u->out_off = 0;
		}
		int r = chunked ? buf_printf(&u->out, "%zx\r\n", n) : 0;
		if (r >= 0)
			r = buf_append(&u->out, p, n);
		if (r >= 0 && chunked)
			r = buf_append_str(&u->out, "\r\n");
		if (r < 0) {
			request_failf(u, r, "out of memory");
			goto out;
		}
	}
	request_update(u);
out:;
	bool more = true;
	if (!u->finished && !u->write_dead && out_pending(u) >= UPSTREAM_SEND_HIGH) {
		u->out_full = true;
		more = false;
	}
	request_unref(u);
	return more;
}

void upstream_request_send_end(UpstreamRequest *u)
{
	if (u->finished || u->send_ended)
		return;
	request_ref(u);
	u->send_ended = true;
	if (u->body == HTTP1_BODY_CHUNKED && !u->tunnel_ok && !u->write_dead) {
		if (buf_append_str(&u->out, "0\r\n\r\n") < 0) {
			request_failf(u, -ENOMEM, "out of memory");
			goto out;
		}
	}
	request_flush(u);
	request_update(u);
out:
	request_unref(u);
}

void upstream_request_resume_response(UpstreamRequest *u)
{
	if (u->finished || !u->paused)
		return;
	request_ref(u);
	u->paused = false;
	if (!u->tunnel && u->roff < u->rlen)
		request_parse(u);
	if (!u->paused)
		request_arm_read_timer(u);
	request_update(u);
	request_unref(u);
}

void upstream_request_cancel(UpstreamRequest *u)
{
	if (!u || u->finished)
		return;
	u->finished = true;
	conn_close(TAKE_PTR(u->conn));
	request_unref(u);
}
