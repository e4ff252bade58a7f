/* SPDX-License-Identifier: MIT */
/*
 * Client connections: a raw non-blocking socket watched with uv_poll_t (GnuTLS reads
 * and writes the fd itself), the TLS handshake, protocol detection, and buffered output.
 *
 * Output is a list of chunks (16 KiB, or one bigger chunk for a bigger write): writes
 * append, the socket drains from the front with writev (cleartext) or one TLS record
 * per chunk slice (≤ 16 KiB), so small writes of one loop iteration (a response head and
 * its first body bytes) leave in one syscall and one record. Writes are flushed from the
 * worker's check handle, right after the I/O callbacks of the iteration that made them.
 *
 * Lifetime: every path to the end (conn_close after its flush, conn_abort, errors,
 * timeouts) goes through the pending list, so ConnProtocol.closed is called from the
 * check handle, never from inside a handler's own call into us. The memory goes after
 * libuv has closed both handles.
 */

#include <errno.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "proxyd-internal.h"
#include "strutil.h"

#define CHUNK_SIZE (16 * 1024)
#define CHUNK_CACHE_MAX 64
#define TLS_RECORD_MAX (16 * 1024)
#define WRITE_HIGH (256 * 1024)
#define WRITE_LOW (64 * 1024)
#define READS_PER_EVENT 16
#define IOV_MAX_BATCH 64
#define HANDSHAKE_TIMEOUT_MS 10000
#define LINGER_TIMEOUT_MS 2000
#define LINGER_MAX_BYTES (1024 * 1024)

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

struct Chunk {
	Chunk *next;
	size_t off, len, cap;
	uint8_t data[];
};

typedef enum ConnState {
	CONN_HANDSHAKE, /* TLS handshake running */
	CONN_DETECT,    /* cleartext: h2 preface or HTTP/1 */
	CONN_ACTIVE,    /* a protocol handler is attached */
	CONN_LINGER,    /* our side is shut; discarding what the client still sends */
	CONN_DEAD,      /* handles closing, memory goes in their close callbacks */
} ConnState;

struct Conn {
	Worker *w;
	Conn *prev, *next;                 /* worker's list */
	Conn *pending_prev, *pending_next; /* worker's pending list */
	bool is_pending;

	int fd;
	uv_poll_t poll;
	uv_timer_t timer;
	int poll_events;
	int handles_open;
	ConnState state;

	gnutls_session_t tls;
	bool tls_want_write;   /* handshake waits for POLLOUT */
	bool tls_send_pending; /* a record_send said AGAIN: retry with NULL, 0 */
	char *sni;

	void *proto;
	const ConnProtocol *ops;
	bool closed_called;

	Chunk *out_head, *out_tail;
	size_t out_len;
	bool write_blocked;   /* the socket said EAGAIN: wait for POLLOUT */
	bool notify_writable; /* conn_write_full() was reached: call ops->writable below LOW */

	bool read_paused, want_read, eof, closing, counted;

	uint64_t idle_ms, last_activity, deadline_at, handshake_until, linger_until;
	uint64_t timer_due;
	void (*deadline_cb)(void *proto);
	size_t linger_bytes;

	struct sockaddr_storage peer;
	socklen_t peer_len;
	uint8_t detect[H2_PREFACE_LEN];
	size_t detect_len;
};

static void conn_update_poll(Conn *c);
static void conn_arm_timer(Conn *c);

/* ---- chunks ---- */

static Chunk *chunk_get(Worker *w, size_t want)
{
	if (want <= CHUNK_SIZE && w->free_chunks) {
		Chunk *k = w->free_chunks;
		w->free_chunks = k->next;
		w->n_free_chunks--;
		k->next = NULL;
		k->off = k->len = 0;
		return k;
	}
	size_t cap = MAX(want, (size_t)CHUNK_SIZE);
	Chunk *k = malloc(sizeof(Chunk) + cap);
	if (!k)
		return NULL;
	*k = (Chunk){ .cap = cap };
	return k;
}

static void chunk_put(Worker *w, Chunk *k)
{
	if (k->cap == CHUNK_SIZE && w->n_free_chunks < CHUNK_CACHE_MAX) {
		k->next = w->free_chunks;
		w->free_chunks = k;
		w->n_free_chunks++;
	} else
		free(k);
}

void worker_free_chunks(Worker *w)
{
	while (w->free_chunks) {
		Chunk *k = w->free_chunks;
		w->free_chunks = k->next;
		free(k);
	}
	w->n_free_chunks = 0;
}

static void conn_drop_output(Conn *c)
{
	while (c->out_head) {
		Chunk *k = c->out_head;
		c->out_head = k->next;
		chunk_put(c->w, k);
	}
	c->out_tail = NULL;
	c->out_len = 0;
}

/* Drop n sent bytes from the front. */
static void conn_consume_output(Conn *c, size_t n)
{
	c->out_len -= n;
	while (n > 0 && c->out_head) {
		Chunk *k = c->out_head;
		size_t avail = k->len - k->off;
		if (n < avail) {
			k->off += n;
			return;
		}
		n -= avail;
		c->out_head = k->next;
		if (!c->out_head)
			c->out_tail = NULL;
		chunk_put(c->w, k);
	}
}

/* ---- the pending list ---- */

static void on_idle(uv_idle_t *h)
{
}

static void conn_schedule(Conn *c)
{
	Worker *w = c->w;
	if (c->is_pending)
		return;
	c->is_pending = true;
	c->pending_prev = NULL;
	c->pending_next = w->pending;
	if (w->pending)
		w->pending->pending_prev = c;
	w->pending = c;
	if (!w->idle_active) {
		/* Keeps the next poll from blocking while work is queued (a timer callback may
		 * have queued it, after which the loop would otherwise sleep). */
		w->idle_active = true;
		uv_idle_start(&w->idle, on_idle);
	}
}

static void conn_unschedule(Conn *c)
{
	Worker *w = c->w;
	if (!c->is_pending)
		return;
	if (c->pending_prev)
		c->pending_prev->pending_next = c->pending_next;
	else
		w->pending = c->pending_next;
	if (c->pending_next)
		c->pending_next->pending_prev = c->pending_prev;
	c->pending_prev = c->pending_next = NULL;
	c->is_pending = false;
}

/* ---- the end ---- */

static void conn_free(Conn *c)
{
	Worker *w = c->w;
	conn_unschedule(c);
	if (c->prev)
		c->prev->next = c->next;
	else if (w->conns == c)
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->n_conns--;
	conn_drop_output(c);
	if (c->tls)
		gnutls_deinit(c->tls);
	if (c->counted)
		proxyd_conn_release(w->p, (const struct sockaddr *)&c->peer);
	free(c->sni);
	free(c);
	/* A stopping worker ends its loop from the check handle once this was the last:
	 * make sure the loop comes around to it without waiting for an event. */
	if (w->stopping && w->n_conns == 0 && !w->idle_active) {
		w->idle_active = true;
		uv_idle_start(&w->idle, on_idle);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	Conn *c = h->data;
	if (--c->handles_open == 0)
		conn_free(c);
}

static void conn_call_closed(Conn *c)
{
	if (c->ops && !c->closed_called) {
		c->closed_called = true;
		c->ops->closed(c->proto);
	}
}

/* Close the socket and handles now. Only from the pending processing or from our own
 * event callbacks (never inside a handler's call into conn_*). */
static void conn_destroy(Conn *c)
{
	if (c->state == CONN_DEAD && c->fd < 0)
		return;
	c->state = CONN_DEAD;
	conn_call_closed(c);
	conn_unschedule(c);
	if (c->fd >= 0) {
		uv_close((uv_handle_t *)&c->poll, on_handle_closed);
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
		c->fd = safe_close(c->fd);
	}
}

void conn_abort(Conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	conn_drop_output(c);
	if (c->poll_events) {
		uv_poll_stop(&c->poll);
		c->poll_events = 0;
	}
	conn_schedule(c);
}

void conn_close(Conn *c)
{
	if (c->state == CONN_DEAD || c->state == CONN_LINGER || c->closing)
		return;
	c->closing = true;
	conn_schedule(c);
}

/* Our output is all sent: say goodbye, then wait a little for the client's FIN so a
 * response followed by close is not destroyed by an RST (unread request bytes). */
static void conn_finish_close(Conn *c)
{
	conn_call_closed(c);
	if (c->tls && c->state == CONN_ACTIVE)
		(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
	if (c->eof || shutdown(c->fd, SHUT_WR) < 0) {
		conn_destroy(c);
		return;
	}
	c->state = CONN_LINGER;
	c->read_paused = false;
	c->deadline_at = 0;
	c->idle_ms = 0;
	c->linger_until = uv_now(&c->w->loop) + LINGER_TIMEOUT_MS;
	conn_arm_timer(c);
	conn_update_poll(c);
}

/* ---- timers ---- */

static uint64_t conn_next_due(Conn *c)
{
	uint64_t due = UINT64_MAX;
	if (c->deadline_at)
		due = MIN(due, c->deadline_at);
	if (c->idle_ms)
		due = MIN(due, c->last_activity + c->idle_ms);
	if (c->handshake_until)
		due = MIN(due, c->handshake_until);
	if (c->linger_until)
		due = MIN(due, c->linger_until);
	return due;
}

static void on_timer(uv_timer_t *t);

static void conn_arm_timer(Conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	uint64_t due = conn_next_due(c);
	/* Nothing due, or an armed timer fires first: leave it, it re-arms itself when it
	 * finds nothing to do (keep-alive requests then cost no timer heap operations). */
	if (due == UINT64_MAX || (c->timer_due && c->timer_due <= due))
		return;
	uint64_t now = uv_now(&c->w->loop);
	c->timer_due = due;
	uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
	Conn *c = t->data;
	uint64_t now = uv_now(&c->w->loop);
	c->timer_due = 0;
	if (c->state == CONN_DEAD)
		return;
	if ((c->linger_until && now >= c->linger_until) ||
	    (c->handshake_until && now >= c->handshake_until)) {
		conn_destroy(c);
		return;
	}
	if (c->deadline_at && now >= c->deadline_at) {
		void (*cb)(void *) = c->deadline_cb;
		c->deadline_at = 0;
		c->deadline_cb = NULL;
		if (cb && c->state == CONN_ACTIVE && !c->closing)
			cb(c->proto);
	}
	if (c->state == CONN_ACTIVE && c->idle_ms && now >= c->last_activity + c->idle_ms) {
		log_debug("client connection idle for %" PRIu64 " ms: closing", c->idle_ms);
		c->idle_ms = 0;
		conn_close(c);
	}
	conn_arm_timer(c);
}

void conn_set_idle_timeout(Conn *c, uint64_t ms)
{
	c->idle_ms = ms;
	c->last_activity = uv_now(&c->w->loop);
	conn_arm_timer(c);
}

void conn_set_deadline(Conn *c, uint64_t ms, void (*cb)(void *proto))
{
	if (ms == 0 || !cb) {
		c->deadline_at = 0;
		c->deadline_cb = NULL;
		return; /* a stale timer firing finds nothing due and re-arms */
	}
	c->deadline_at = uv_now(&c->w->loop) + ms;
	c->deadline_cb = cb;
	conn_arm_timer(c);
}

/* ---- output ---- */

int conn_write(Conn *c, const void *p, size_t n)
{
	const uint8_t *s = p;
	if (c->state == CONN_DEAD || c->state == CONN_LINGER || c->closing)
		return -EPIPE;
	if (n == 0)
		return 0;
	size_t left = n;
	if (c->out_tail) {
		Chunk *k = c->out_tail;
		size_t room = k->cap - k->len;
		size_t m = MIN(room, left);
		memcpy(k->data + k->len, s, m);
		k->len += m;
		s += m;
		left -= m;
	}
	if (left > 0) {
		Chunk *k = chunk_get(c->w, left);
		if (!k) {
			log_warning("out of memory: dropping a client connection");
			conn_abort(c);
			return -ENOMEM;
		}
		memcpy(k->data, s, left);
		k->len = left;
		if (c->out_tail)
			c->out_tail->next = k;
		else
			c->out_head = k;
		c->out_tail = k;
	}
	c->out_len += n;
	if (c->out_len >= WRITE_HIGH)
		c->notify_writable = true;
	if (!c->write_blocked)
		conn_schedule(c);
	return 0;
}

bool conn_write_full(const Conn *c)
{
	return c->out_len >= WRITE_HIGH;
}

size_t conn_write_pending(const Conn *c)
{
	return c->out_len;
}

static int conn_flush_plain(Conn *c)
{
	while (c->out_head) {
		struct iovec iov[IOV_MAX_BATCH];
		int n_iov = 0;
		for (Chunk *k = c->out_head; k && n_iov < IOV_MAX_BATCH; k = k->next)
			iov[n_iov++] = (struct iovec){ k->data + k->off, k->len - k->off };
		ssize_t n = writev(c->fd, iov, n_iov);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return -EAGAIN;
			return -errno;
		}
		conn_consume_output(c, (size_t)n);
	}
	return 0;
}

static int conn_flush_tls(Conn *c)
{
	while (c->out_head) {
		ssize_t n;
		if (c->tls_send_pending)
			n = gnutls_record_send(c->tls, NULL, 0);
		else {
			Chunk *k = c->out_head;
			n = gnutls_record_send(c->tls, k->data + k->off,
					       MIN(k->len - k->off, (size_t)TLS_RECORD_MAX));
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			c->tls_send_pending = true;
			if (n == GNUTLS_E_INTERRUPTED)
				continue;
			return -EAGAIN;
		}
		c->tls_send_pending = false;
		if (n < 0) {
			log_debug("TLS send: %s", gnutls_strerror((int)n));
			return -EPIPE;
		}
		conn_consume_output(c, (size_t)n);
	}
	return 0;
}

static void conn_flush(Conn *c)
{
	if (c->state == CONN_DEAD || c->state == CONN_LINGER)
		return;
	if (c->out_head) {
		int r = c->tls ? conn_flush_tls(c) : conn_flush_plain(c);
		if (r == -EAGAIN)
			c->write_blocked = true;
		else if (r < 0) {
			log_debug("client connection: write failed: %s", strerror(-r));
			conn_destroy(c);
			return;
		} else {
			c->write_blocked = false;
			c->last_activity = uv_now(&c->w->loop);
		}
	}
	if (!c->out_head && c->closing) {
		conn_finish_close(c);
		return;
	}
	if (c->notify_writable && c->out_len < WRITE_LOW && c->state == CONN_ACTIVE && c->ops) {
		c->notify_writable = false;
		if (c->ops->writable)
			c->ops->writable(c->proto);
	}
	conn_update_poll(c);
}

/* ---- input ---- */

void conn_pause_read(Conn *c)
{
	if (c->read_paused)
		return;
	c->read_paused = true;
	if (c->state == CONN_ACTIVE)
		conn_update_poll(c);
}

void conn_resume_read(Conn *c)
{
	if (!c->read_paused)
		return;
	c->read_paused = false;
	if (c->state != CONN_ACTIVE)
		return;
	/* GnuTLS may hold decrypted records the socket will not announce again. */
	if (c->tls && gnutls_record_check_pending(c->tls) > 0) {
		c->want_read = true;
		conn_schedule(c);
	}
	conn_update_poll(c);
}

static void conn_on_eof(Conn *c)
{
	c->eof = true;
	conn_update_poll(c);
	if (c->ops && c->ops->eof)
		c->ops->eof(c->proto);
}

static void conn_do_read(Conn *c)
{
	Worker *w = c->w;
	for (int i = 0; i < READS_PER_EVENT; i++) {
		if (c->state != CONN_ACTIVE || c->read_paused || c->eof || c->closing)
			return;
		ssize_t n;
		if (c->tls) {
			n = gnutls_record_recv(c->tls, w->rbuf, w->rbuf_size);
			if (n == GNUTLS_E_AGAIN)
				return;
			if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_REHANDSHAKE ||
			    (n < 0 && !gnutls_error_is_fatal((int)n)))
				continue;
			if (n == GNUTLS_E_PREMATURE_TERMINATION)
				n = 0;
			if (n < 0) {
				log_debug("TLS receive: %s", gnutls_strerror((int)n));
				conn_destroy(c);
				return;
			}
		} else {
			n = read(c->fd, w->rbuf, w->rbuf_size);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					return;
				log_debug("client connection: read: %m");
				conn_destroy(c);
				return;
			}
		}
		if (n == 0) {
			conn_on_eof(c);
			return;
		}
		c->last_activity = uv_now(&w->loop);
		c->ops->data(c->proto, w->rbuf, (size_t)n);
		if (!c->tls && (size_t)n < w->rbuf_size)
			return; /* drained (level-triggered poll tells us if more came) */
	}
	if (c->tls && c->state == CONN_ACTIVE && gnutls_record_check_pending(c->tls) > 0) {
		c->want_read = true;
		conn_schedule(c);
	}
}

static void conn_attach(Conn *c, bool h2, const uint8_t *initial, size_t n)
{
	void *proto = NULL;
	const ConnProtocol *ops = NULL;
	c->state = CONN_ACTIVE;
	c->handshake_until = 0;
	c->last_activity = uv_now(&c->w->loop);
	int r = h2 ? h2_server_attach(c, initial, n, &proto, &ops)
		   : h1_server_attach(c, initial, n, &proto, &ops);
	if (r < 0) {
		log_debug("client connection: %s handler: %s", h2 ? "h2" : "http/1.1",
			  strerror(-r));
		conn_destroy(c);
		return;
	}
	c->proto = proto;
	c->ops = ops;
	if (c->state == CONN_DEAD || c->closing)
		conn_schedule(c); /* the handler ended it during attach: closed() comes later */
	conn_arm_timer(c);
	conn_update_poll(c);
}

static void conn_do_handshake(Conn *c)
{
	for (;;) {
		int r = gnutls_handshake(c->tls);
		if (r == GNUTLS_E_SUCCESS)
			break;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			c->tls_want_write = gnutls_record_get_direction(c->tls) == 1;
			conn_update_poll(c);
			return;
		}
		if (!gnutls_error_is_fatal(r))
			continue;
		log_debug("TLS handshake failed: %s", gnutls_strerror(r));
		conn_destroy(c);
		return;
	}
	c->tls_want_write = false;
	const char *sni = tls_session_sni(c->tls);
	if (sni) {
		c->sni = strdup(sni);
		if (!c->sni) {
			conn_destroy(c);
			return;
		}
	}
	const char *alpn = tls_session_alpn(c->tls);
	conn_attach(c, streq_ptr(alpn, "h2"), NULL, 0);
	/* The client's first request often arrives with its Finished message. */
	if (c->state == CONN_ACTIVE) {
		c->want_read = true;
		conn_schedule(c);
	}
}

static void conn_do_detect(Conn *c)
{
	Worker *w = c->w;
	uint8_t *buf = w->rbuf + H2_PREFACE_LEN;
	ssize_t n;
	do
		n = read(c->fd, buf, w->rbuf_size - H2_PREFACE_LEN);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN)
			conn_destroy(c);
		return;
	}
	if (n == 0) {
		conn_destroy(c); /* closed before saying anything */
		return;
	}
	c->last_activity = uv_now(&w->loop);
	/* Put what an earlier read left right before the new bytes. */
	uint8_t *all = buf - c->detect_len;
	memcpy(all, c->detect, c->detect_len);
	size_t len = c->detect_len + (size_t)n;
	size_t cmp = MIN(len, H2_PREFACE_LEN);
	bool prefix = memcmp(all, h2_preface, cmp) == 0;
	if (prefix && len < H2_PREFACE_LEN) {
		memcpy(c->detect, all, len);
		c->detect_len = len;
		return;
	}
	c->detect_len = 0;
	conn_attach(c, prefix, all, len);
}

/* ---- polling ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void conn_update_poll(Conn *c)
{
	int ev = 0;
	switch (c->state) {
	case CONN_HANDSHAKE:
		ev = c->tls_want_write ? UV_WRITABLE : UV_READABLE;
		break;
	case CONN_DETECT:
	case CONN_LINGER:
		ev = UV_READABLE;
		break;
	case CONN_ACTIVE:
		if (!c->read_paused && !c->eof && !c->closing)
			ev |= UV_READABLE;
		if (c->write_blocked && c->out_head)
			ev |= UV_WRITABLE;
		break;
	case CONN_DEAD:
		return;
	}
	if (ev == c->poll_events)
		return;
	c->poll_events = ev;
	if (ev)
		uv_poll_start(&c->poll, ev, on_poll);
	else
		uv_poll_stop(&c->poll);
}

static void conn_do_linger(Conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->w->rbuf, c->w->rbuf_size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_destroy(c);
			return;
		}
		c->linger_bytes += (size_t)n;
		if (c->linger_bytes > LINGER_MAX_BYTES) {
			conn_destroy(c);
			return;
		}
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	Conn *c = h->data;
	if (c->state == CONN_DEAD)
		return;
	if (status < 0) {
		/* POLLERR (a reset): libuv has already stopped watching the fd. */
		c->poll_events = 0;
		log_debug("client connection: %s", uv_strerror(status));
		conn_destroy(c);
		return;
	}
	switch (c->state) {
	case CONN_HANDSHAKE:
		conn_do_handshake(c);
		break;
	case CONN_DETECT:
		conn_do_detect(c);
		break;
	case CONN_LINGER:
		conn_do_linger(c);
		break;
	case CONN_ACTIVE:
		if ((events & UV_WRITABLE) && c->write_blocked) {
			c->write_blocked = false;
			conn_schedule(c);
		}
		if (events & UV_READABLE)
			conn_do_read(c);
		if (c->state == CONN_ACTIVE)
			conn_update_poll(c);
		break;
	case CONN_DEAD:
		break;
	}
}

/* ---- pending work (the worker's check handle) ---- */

void conn_run_pending(Worker *w)
{
	/* Work queued while we run (a flush that made a handler write) is taken in the next
	 * round of this loop; bounded rounds so one chatty connection cannot starve I/O. */
	for (int round = 0; round < 8 && w->pending; round++) {
		Conn *list = w->pending;
		w->pending = NULL;
		for (Conn *c = list; c; c = c->pending_next)
			c->is_pending = false;
		while (list) {
			Conn *c = list;
			list = c->pending_next;
			if (list)
				list->pending_prev = NULL;
			c->pending_prev = c->pending_next = NULL;
			if (c->state == CONN_DEAD) {
				conn_destroy(c);
				continue;
			}
			if (c->want_read) {
				c->want_read = false;
				if (c->state == CONN_ACTIVE)
					conn_do_read(c);
			}
			if (c->state != CONN_DEAD && !c->write_blocked)
				conn_flush(c);
			else if (c->state == CONN_DEAD)
				conn_destroy(c);
		}
	}
	if (!w->pending && w->idle_active) {
		w->idle_active = false;
		uv_idle_stop(&w->idle);
	}
}

/* ---- construction ---- */

int conn_new(Worker *w, int fd, bool tls, const struct sockaddr *peer, socklen_t peer_len)
{
	Conn *c = calloc(1, sizeof(Conn));
	if (!c)
		return -ENOMEM;
	c->w = w;
	c->fd = -1;
	if (peer_len > sizeof(c->peer))
		peer_len = sizeof(c->peer);
	memcpy(&c->peer, peer, peer_len);
	c->peer_len = peer_len;

	if (tls) {
		int r = tls_session_new(proxyd_tls(w->p), &c->tls);
		if (r < 0) {
			free(c);
			return r;
		}
		gnutls_transport_set_int(c->tls, fd);
		c->state = CONN_HANDSHAKE;
	} else
		c->state = CONN_DETECT;

	if (uv_poll_init(&w->loop, &c->poll, fd) < 0) {
		if (c->tls)
			gnutls_deinit(c->tls);
		free(c);
		return -EIO;
	}
	c->fd = fd;
	c->counted = true;
	uv_timer_init(&w->loop, &c->timer);
	c->poll.data = c->timer.data = c;
	c->handles_open = 2;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;

	uint64_t now = uv_now(&w->loop);
	c->last_activity = now;
	/* Until a handler takes over, the request head deadline bounds a silent client. */
	c->handshake_until =
	    now + (tls ? HANDSHAKE_TIMEOUT_MS : proxyd_config(w->p)->header_timeout_ms);
	conn_arm_timer(c);
	conn_update_poll(c);
	return 0;
}

void conn_shutdown_all(Worker *w, bool abort_all)
{
	Conn *next;
	for (Conn *c = w->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_DEAD)
			continue;
		if (abort_all || c->state == CONN_HANDSHAKE || c->state == CONN_DETECT)
			conn_abort(c);
		else if (c->state == CONN_ACTIVE && c->ops && c->ops->shutdown && !c->closing)
			c->ops->shutdown(c->proto);
	}
}

/* ---- accessors ---- */

Worker *conn_worker(Conn *c)
{
	return c->w;
}

const struct sockaddr *conn_peer(const Conn *c, socklen_t *len)
{
	if (len)
		*len = c->peer_len;
	return (const struct sockaddr *)&c->peer;
}

bool conn_is_tls(const Conn *c)
{
	return c->tls != NULL;
}

const char *conn_sni(const Conn *c)
{
	return c->sni;
}
