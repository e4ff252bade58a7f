/* SPDX-License-Identifier: MIT */
/*
 * HTTP/2 downstream: one nghttp2 server session per client connection, one Exchange per
 * request stream.
 *
 * nghttp2 does the framing, HPACK and the protocol checks (pseudo-headers, connection-
 * specific fields, content-length against DATA: stream errors PROTOCOL_ERROR); this file
 * moves bytes between it and the Conn, turns request heads into ExchangeRequests and
 * response heads into HEADERS, and couples flow control to the exchange's buffers:
 *
 *   client → upstream: DATA goes to exchange_send(); the bytes are given back to the
 *   client's flow-control window (nghttp2_session_consume, automatic window updates are
 *   off) only while the exchange accepts more, so a slow upstream stops the client after
 *   at most one stream window (and the connection window bounds all streams together).
 *
 *   upstream → client: DownstreamOps.data appends to a bounded per-stream buffer that
 *   the data provider drains (no copy: straight from the buffer into the Conn); a full
 *   buffer pauses the exchange until the buffer drains.
 *
 * Re-entrancy: nghttp2 must not be driven (session_send) from inside its own callbacks,
 * and exchanges call DownstreamOps from inside exchange_*(), so output is produced by
 * h2_flush(), which defers itself while nghttp2 is on the stack. The server is freed
 * only when the outermost entry point returns (`depth`), and a stream only when both
 * nghttp2 and its exchange are finished with it.
 */

#include <errno.h>
#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conn.h"
#include "exchange.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "proxyd.h"
#include "strutil.h"
#include "time-util.h"

#define H2_STREAM_WINDOW (1u << 20) /* per stream, advertised in SETTINGS */
#define H2_CONN_WINDOW (16u << 20)  /* all streams of a connection together */
#define H2_OUT_HIGH (128u * 1024)   /* response bytes buffered per stream */
#define H2_OUT_LOW (32u * 1024)     /* resume the exchange below this */
#define H2_DEFAULT_STREAMS 128u
#define H2_DEFAULT_HEADER_LIST (64u * 1024)
#define H2_DEFAULT_IDLE_MS (75u * 1000)
#define H2_DEFAULT_HEADER_TIMEOUT_MS (30u * 1000)
/* Frames that cost us work but carry no request (PING, SETTINGS, PRIORITY, RST_STREAM,
 * empty DATA): a token bucket; a client that drains it gets GOAWAY ENHANCE_YOUR_CALM. */
#define H2_CTL_BURST 1000.0
#define H2_CTL_PER_SEC 100.0

typedef struct H2Server H2Server;

typedef struct H2Stream {
	H2Server *srv; /* NULL once the connection is gone */
	struct H2Stream *prev, *next;
	int32_t id;

	/* Request head, collected field by field. */
	char *method, *scheme, *authority, *path, *protocol, *host;
	Buf fields; /* "name\0value\0" pairs */
	size_t n_fields;
	Buf cookie;        /* crumbs joined with "; " */
	size_t head_bytes; /* RFC 9113 §6.5.2 accounting: name + value + 32 per field */
	bool too_large;    /* → 431 */
	bool malformed;    /* → RST_STREAM PROTOCOL_ERROR */
	bool has_body;
	bool in_head; /* HEADERS begun, END_HEADERS not seen yet */

	/* The exchange; done once it called DownstreamOps.done (or never started). */
	Exchange *x;
	bool starting, x_done;
	bool closed;         /* nghttp2 closed the stream */
	bool cancel_pending; /* closed while the exchange was calling us: cancel it later */
	bool aborted;        /* the exchange gave up (ops->abort): done follows */

	/* Request body flow control. */
	bool in_blocked;
	size_t unconsumed;

	/* Response. */
	bool head_sent, extended, tunnel;
	uint8_t *out;
	size_t out_start, out_end, out_cap;
	bool out_eof, out_deferred, out_blocked;
} H2Stream;

struct H2Server {
	Conn *conn;
	nghttp2_session *session;
	H2Stream *streams;
	unsigned n_streams;
	uint64_t idle_ms, header_timeout_ms;
	uint32_t max_header_list;
	unsigned n_heads;   /* streams with an unfinished header block */
	usec_t head_since;  /* when the oldest of those began */
	bool reap_pending;  /* a stream waits for h2_reap() */
	unsigned n_blocked; /* streams whose exchange waits for buffer space */

	unsigned depth; /* nesting of our entry points */
	unsigned in_op; /* inside a DownstreamOps call: never exchange_cancel() from here */
	unsigned in_ng; /* nghttp2 is on the stack */
	bool flushing, want_flush;
	bool gone;    /* ConnProtocol.closed came */
	bool closing; /* conn_close() called */
	bool read_paused;
	bool calm; /* abuse seen inside a callback: GOAWAY ENHANCE_YOUR_CALM */

	double ctl_tokens;
	usec_t ctl_at;
};

static void h2_flush(H2Server *s);
static void h2_head_end(H2Server *s, H2Stream *st);
static void h2_deadline(void *proto);

/* ---- lifetime ---- */

static void h2_stream_free(H2Stream *st)
{
	if (!st)
		return;
	free(st->method);
	free(st->scheme);
	free(st->authority);
	free(st->path);
	free(st->protocol);
	free(st->host);
	buf_done(&st->fields);
	buf_done(&st->cookie);
	free(st->out);
	free(st);
}

static void h2_stream_unlink(H2Stream *st)
{
	H2Server *s = st->srv;
	if (!s)
		return;
	if (st->prev)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	if (st->out_blocked) {
		st->out_blocked = false;
		s->n_blocked--;
	}
	if (!s->gone)
		h2_head_end(s, st);
	st->srv = NULL;
	if (s->n_streams > 0 && --s->n_streams == 0 && !s->gone)
		conn_set_idle_timeout(s->conn, s->idle_ms);
}

/* Free the stream once neither nghttp2 nor the exchange can reach it. */
static void h2_stream_maybe_free(H2Stream *st)
{
	if ((st->closed || !st->srv) && !st->x && !st->starting) {
		h2_stream_unlink(st);
		h2_stream_free(st);
	}
}

static void h2_server_free(H2Server *s)
{
	nghttp2_session_del(s->session);
	free(s);
}

static void h2_enter(H2Server *s)
{
	s->depth++;
}

static void h2_leave(H2Server *s)
{
	if (--s->depth == 0 && s->gone)
		h2_server_free(s);
}

static void h2_close(H2Server *s)
{
	if (s->gone || s->closing)
		return;
	s->closing = true;
	conn_close(s->conn);
}

/* ---- output ---- */

static size_t out_len(const H2Stream *st)
{
	return st->out_end - st->out_start;
}

static int out_append(H2Stream *st, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	if (st->out_cap - st->out_end < n && st->out_start > 0) {
		memmove(st->out, st->out + st->out_start, out_len(st));
		st->out_end -= st->out_start;
		st->out_start = 0;
	}
	if (st->out_cap - st->out_end < n) {
		size_t want = MAX(st->out_end + n, MIN((size_t)H2_OUT_HIGH, st->out_cap * 2));
		uint8_t *q = realloc(st->out, want);
		if (!q)
			return -ENOMEM;
		st->out = q;
		st->out_cap = want;
	}
	memcpy(st->out + st->out_end, p, n);
	st->out_end += n;
	return 0;
}

static void out_consume(H2Stream *st, size_t n)
{
	st->out_start += n;
	if (st->out_start == st->out_end)
		st->out_start = st->out_end = 0;
}

static ssize_t h2_send_cb(nghttp2_session *session _unused_, const uint8_t *data, size_t len,
			  int flags _unused_, void *user_data)
{
	H2Server *s = user_data;
	if (s->gone || s->closing)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (conn_write_full(s->conn))
		return NGHTTP2_ERR_WOULDBLOCK;
	if (conn_write(s->conn, data, len) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

static ssize_t h2_read_cb(nghttp2_session *session _unused_, int32_t stream_id _unused_,
			  uint8_t *buf _unused_, size_t length, uint32_t *data_flags,
			  nghttp2_data_source *source, void *user_data _unused_)
{
	H2Stream *st = source->ptr;
	size_t n = MIN(length, out_len(st));

	if (n == 0 && !st->out_eof) {
		st->out_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	*data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (n == out_len(st) && st->out_eof)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int h2_send_data_cb(nghttp2_session *session _unused_, nghttp2_frame *frame,
			   const uint8_t *framehd, size_t length, nghttp2_data_source *source,
			   void *user_data)
{
	H2Server *s = user_data;
	H2Stream *st = source->ptr;

	if (s->gone || s->closing)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (conn_write_full(s->conn))
		return NGHTTP2_ERR_WOULDBLOCK;
	if (length > out_len(st) || frame->data.padlen > 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (conn_write(s->conn, framehd, 9) < 0 ||
	    (length > 0 && conn_write(s->conn, st->out + st->out_start, length) < 0))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	out_consume(st, length);
	return 0;
}

/* Hand response buffer space back to exchanges that were told to stop. */
static bool h2_resume_exchanges(H2Server *s)
{
	bool any = false;
	if (s->n_blocked == 0)
		return false;
	for (H2Stream *st = s->streams; st && !s->gone; st = st->next) {
		if (st->out_blocked && st->x && !st->closed && out_len(st) < H2_OUT_LOW) {
			st->out_blocked = false;
			s->n_blocked--;
			exchange_resume_response(st->x);
			any = true;
		}
	}
	return any;
}

static void h2_flush(H2Server *s)
{
	if (s->gone || s->closing)
		return;
	if (s->in_ng > 0 || s->flushing) {
		s->want_flush = true;
		return;
	}
	s->flushing = true;
	do {
		s->want_flush = false;
		s->in_ng++;
		int r = nghttp2_session_send(s->session);
		s->in_ng--;
		if (r < 0) {
			log_debug("h2: sending failed: %s", nghttp2_strerror(r));
			s->flushing = false;
			h2_close(s);
			return;
		}
		if (s->gone || s->closing)
			break;
		h2_resume_exchanges(s);
	} while (s->want_flush && !s->gone && !s->closing);
	s->flushing = false;
	if (s->gone || s->closing)
		return;

	if (!nghttp2_session_want_read(s->session) && !nghttp2_session_want_write(s->session)) {
		h2_close(s);
		return;
	}
	/* A client that sends but does not read: stop reading it until output drains. */
	if (conn_write_full(s->conn)) {
		if (!s->read_paused) {
			s->read_paused = true;
			conn_pause_read(s->conn);
		}
	} else if (s->read_paused) {
		s->read_paused = false;
		conn_resume_read(s->conn);
	}
}

static void h2_terminate(H2Server *s, uint32_t code)
{
	if (s->gone || s->closing)
		return;
	(void)nghttp2_session_terminate_session(s->session, code);
}

static void h2_rst(H2Server *s, H2Stream *st, uint32_t code)
{
	if (!st->closed)
		(void)nghttp2_submit_rst_stream(s->session, NGHTTP2_FLAG_NONE, st->id, code);
}

/* A short response we produce ourselves (431, 405, 400): no body. */
static void h2_reply_status(H2Server *s, H2Stream *st, int status)
{
	char code[4];
	(void)snprintf(code, sizeof(code), "%03d", status);
	nghttp2_nv nv[] = {
		{ (uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-length", (uint8_t *)"0", 14, 1, NGHTTP2_NV_FLAG_NONE },
	};
	st->head_sent = true;
	if (nghttp2_submit_response(s->session, st->id, nv, ELEMENTSOF(nv), NULL) < 0)
		h2_rst(s, st, NGHTTP2_INTERNAL_ERROR);
}

/* ---- DownstreamOps: the exchange talking back ---- */

/* Connection-specific fields (RFC 9113 §8.2.2) never go out in HTTP/2. */
static bool field_is_connection_specific(const char *name)
{
	static const char *const names[] = {
		"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
	};
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (streq(name, names[i]))
			return true;
	return false;
}

static H2Server *ds_enter(H2Stream *st)
{
	H2Server *s = st->srv;
	if (!s || s->gone || st->closed)
		return NULL;
	h2_enter(s);
	s->in_op++;
	return s;
}

static void ds_leave(H2Server *s)
{
	h2_flush(s);
	s->in_op--;
	h2_leave(s);
}

static int h2_submit_head(H2Server *s, H2Stream *st, int status, const HttpField *fields,
			  size_t n_fields, Http1BodyKind body)
{
	bool informational = status >= 100 && status < 200 && status != 101;
	if (st->head_sent || status < 100 || status > 999 || (status == 101 && !st->extended))
		return -EPROTO;
	if (status == 101) {
		status = 200;
		st->tunnel = true;
	}

	_cleanup_free_ nghttp2_nv *nv = calloc(n_fields + 1, sizeof(nghttp2_nv));
	_cleanup_free_ char *names = NULL;
	size_t names_len = 0;
	for (size_t i = 0; i < n_fields; i++)
		names_len += fields[i].name_len + 1;
	names = malloc(names_len + 1);
	if (!nv || !names)
		return -ENOMEM;

	char code[4];
	(void)snprintf(code, sizeof(code), "%03d", status);
	size_t n = 0;
	nv[n++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE };
	char *q = names;
	for (size_t i = 0; i < n_fields; i++) {
		const HttpField *f = &fields[i];
		for (size_t k = 0; k < f->name_len; k++) {
			char ch = f->name[k];
			q[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
		}
		q[f->name_len] = 0;
		if (field_is_connection_specific(q) ||
		    !nghttp2_check_header_name((const uint8_t *)q, f->name_len) ||
		    !nghttp2_check_header_value((const uint8_t *)f->value, f->value_len))
			continue;
		/* A tunnel's 200 carries no framing and no RFC 6455 handshake answer. */
		if (st->tunnel && (streq(q, "content-length") || streq(q, "sec-websocket-accept")))
			continue;
		nv[n++] = (nghttp2_nv){ (uint8_t *)q, (uint8_t *)f->value, f->name_len,
					f->value_len, NGHTTP2_NV_FLAG_NONE };
		q += f->name_len + 1;
	}

	int r;
	if (informational) {
		r = nghttp2_submit_headers(s->session, NGHTTP2_FLAG_NONE, st->id, NULL, nv, n,
					   NULL);
	} else {
		st->head_sent = true;
		if (body == HTTP1_BODY_NONE && !st->tunnel) {
			st->out_eof = true;
			r = nghttp2_submit_response(s->session, st->id, nv, n, NULL);
		} else {
			nghttp2_data_provider prd = { .source.ptr = st,
						      .read_callback = h2_read_cb };
			r = nghttp2_submit_response(s->session, st->id, nv, n, &prd);
		}
	}
	return r < 0 ? -EIO : 0;
}

static void ds_head(void *ds, int status, const HttpField *fields, size_t n_fields,
		    Http1BodyKind body, uint64_t content_length _unused_)
{
	H2Stream *st = ds;
	H2Server *s = ds_enter(st);
	if (!s)
		return;
	if (h2_submit_head(s, st, status, fields, n_fields, body) < 0)
		h2_rst(s, st, NGHTTP2_INTERNAL_ERROR);
	ds_leave(s);
}

static void h2_wake_data(H2Server *s, H2Stream *st)
{
	if (st->out_deferred && !st->closed) {
		st->out_deferred = false;
		(void)nghttp2_session_resume_data(s->session, st->id);
	}
}

static bool ds_data(void *ds, const uint8_t *p, size_t n)
{
	H2Stream *st = ds;
	H2Server *s = ds_enter(st);
	if (!s)
		return false; /* the stream is gone: the exchange is about to be cancelled */

	bool more = true;
	if (!st->head_sent || st->out_eof) {
		h2_rst(s, st, NGHTTP2_INTERNAL_ERROR);
	} else if (out_append(st, p, n) < 0) {
		log_debug("h2: stream %" PRId32 ": out of memory for response bytes", st->id);
		h2_rst(s, st, NGHTTP2_INTERNAL_ERROR);
	} else {
		h2_wake_data(s, st);
		if (out_len(st) >= H2_OUT_HIGH) {
			if (!st->out_blocked)
				s->n_blocked++;
			st->out_blocked = true;
			more = false;
		}
	}
	ds_leave(s);
	return more;
}

static void ds_end(void *ds)
{
	H2Stream *st = ds;
	H2Server *s = ds_enter(st);
	if (!s)
		return;
	if (st->head_sent && !st->out_eof) {
		st->out_eof = true;
		h2_wake_data(s, st);
	}
	ds_leave(s);
}

static void ds_abort(void *ds)
{
	H2Stream *st = ds;
	H2Server *s = ds_enter(st);
	if (!s)
		return;
	st->aborted = true;
	h2_rst(s, st, NGHTTP2_INTERNAL_ERROR);
	ds_leave(s);
}

static void ds_resume_request(void *ds)
{
	H2Stream *st = ds;
	H2Server *s = ds_enter(st);
	if (!s)
		return;
	st->in_blocked = false;
	if (st->unconsumed > 0) {
		(void)nghttp2_session_consume(s->session, st->id, st->unconsumed);
		st->unconsumed = 0;
	}
	ds_leave(s);
}

static void ds_done(void *ds)
{
	H2Stream *st = ds;
	H2Server *s = st->srv && !st->srv->gone ? st->srv : NULL;
	bool flush = false;

	st->x = NULL;
	st->x_done = true;
	/* Request bytes the exchange will never take: open the window for the rest. */
	if (s && !st->closed && st->unconsumed > 0) {
		(void)nghttp2_session_consume(s->session, st->id, st->unconsumed);
		st->unconsumed = 0;
		flush = true;
	}
	h2_stream_maybe_free(st);
	if (flush) {
		h2_enter(s);
		h2_flush(s);
		h2_leave(s);
	}
}

static const DownstreamOps h2_downstream_ops = {
	.head = ds_head,
	.data = ds_data,
	.end = ds_end,
	.abort = ds_abort,
	.resume_request = ds_resume_request,
	.done = ds_done,
};

/* ---- request side ---- */

/*
 * The connection's one deadline (conn_set_deadline) serves two things:
 *  - a header block must be complete within header_timeout_ms (slowloris): nothing else
 *    can be sent on the connection meanwhile, so one that never ends costs the connection;
 *  - exchanges of streams reset while that exchange was calling us are cancelled from
 *    here, soon after, outside the exchange's own call.
 */
static void h2_reap(H2Server *s);

static void h2_arm_deadline(H2Server *s)
{
	uint64_t ms = 0;
	if (s->gone)
		return;
	if (s->reap_pending)
		ms = 1;
	else if (s->n_heads > 0 && s->header_timeout_ms > 0) {
		usec_t due = s->head_since + s->header_timeout_ms * USEC_PER_MSEC;
		usec_t now = now_monotonic();
		ms = due > now ? (due - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC : 1;
	}
	conn_set_deadline(s->conn, ms, ms ? h2_deadline : NULL);
}

static void h2_deadline(void *proto)
{
	H2Server *s = proto;
	if (s->gone || s->closing)
		return;
	h2_enter(s);
	if (s->reap_pending) {
		s->reap_pending = false;
		h2_reap(s);
	}
	if (!s->gone && s->n_heads > 0 && s->header_timeout_ms > 0 &&
	    now_monotonic() >= s->head_since + s->header_timeout_ms * USEC_PER_MSEC) {
		log_debug("h2: request head not complete within %" PRIu64 " ms: closing",
			  s->header_timeout_ms);
		h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM);
	} else
		h2_arm_deadline(s);
	h2_flush(s);
	h2_leave(s);
}

static void h2_head_begin(H2Server *s, H2Stream *st)
{
	st->in_head = true;
	if (s->n_heads++ == 0) {
		s->head_since = now_monotonic();
		h2_arm_deadline(s);
	}
}

static void h2_head_end(H2Server *s, H2Stream *st)
{
	if (!st->in_head)
		return;
	st->in_head = false;
	/* The next unfinished block (if any) gets a full period of its own. */
	if (--s->n_heads > 0)
		s->head_since = now_monotonic();
	h2_arm_deadline(s);
}

static bool ctl_frame_allowed(H2Server *s)
{
	usec_t now = now_monotonic();
	if (s->ctl_at == 0 || now < s->ctl_at) {
		s->ctl_at = now;
	} else {
		s->ctl_tokens += (double)(now - s->ctl_at) * H2_CTL_PER_SEC / (double)USEC_PER_SEC;
		if (s->ctl_tokens > H2_CTL_BURST)
			s->ctl_tokens = H2_CTL_BURST;
		s->ctl_at = now;
	}
	if (s->ctl_tokens < 1.0)
		return false;
	s->ctl_tokens -= 1.0;
	return true;
}

static H2Stream *stream_of(H2Server *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s->session, id);
}

static int h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
			       void *user_data)
{
	H2Server *s = user_data;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;

	H2Stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->id = frame->hd.stream_id;
	st->fields = BUF_INIT(s->max_header_list + 64);
	st->cookie = BUF_INIT(s->max_header_list + 64);
	if (nghttp2_session_set_stream_user_data(session, st->id, st) < 0) {
		free(st);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	st->srv = s;
	st->next = s->streams;
	if (s->streams)
		s->streams->prev = st;
	s->streams = st;
	if (s->n_streams++ == 0)
		conn_set_idle_timeout(s->conn, 0);
	h2_head_begin(s, st);
	return 0;
}

static int set_pseudo(char **slot, const uint8_t *value, size_t len)
{
	if (*slot)
		return -EEXIST;
	*slot = strndup_safe((const char *)value, len);
	return *slot ? 0 : -ENOMEM;
}

static int h2_on_header(nghttp2_session *session _unused_, const nghttp2_frame *frame,
			const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen,
			uint8_t flags _unused_, void *user_data)
{
	H2Server *s = user_data;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers: dropped */
	H2Stream *st = stream_of(s, frame->hd.stream_id);
	if (!st || st->malformed)
		return 0;

	st->head_bytes += namelen + valuelen + 32;
	if (st->head_bytes > s->max_header_list) {
		/* Answered with 431 once the block ends; a block that goes on and on (endless
		 * CONTINUATION) costs the connection. */
		st->too_large = true;
		if (st->head_bytes > 4 * (size_t)s->max_header_list) {
			s->calm = true;
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		return 0;
	}

	const char *n = (const char *)name;
	int r = 0;
	if (namelen > 0 && name[0] == ':') {
		if (namelen == 7 && memcmp(n, ":method", 7) == 0)
			r = set_pseudo(&st->method, value, valuelen);
		else if (namelen == 7 && memcmp(n, ":scheme", 7) == 0)
			r = set_pseudo(&st->scheme, value, valuelen);
		else if (namelen == 10 && memcmp(n, ":authority", 10) == 0)
			r = set_pseudo(&st->authority, value, valuelen);
		else if (namelen == 5 && memcmp(n, ":path", 5) == 0)
			r = set_pseudo(&st->path, value, valuelen);
		else if (namelen == 9 && memcmp(n, ":protocol", 9) == 0)
			r = set_pseudo(&st->protocol, value, valuelen);
		else
			r = -EBADMSG;
	} else if (namelen == 6 && memcmp(n, "cookie", 6) == 0) {
		if (st->cookie.len > 0)
			r = buf_append(&st->cookie, "; ", 2);
		if (r >= 0)
			r = buf_append(&st->cookie, value, valuelen);
	} else if (namelen == 4 && memcmp(n, "host", 4) == 0) {
		/* Kept aside: :authority wins, and the exchange sets Host from authority. */
		if (!st->host)
			r = set_pseudo(&st->host, value, valuelen);
	} else {
		char lower[32];
		size_t k = MIN(namelen, sizeof(lower) - 1);
		memcpy(lower, n, k);
		lower[k] = 0;
		if (field_is_connection_specific(lower) ||
		    (streq(lower, "te") && !(valuelen == 8 && memcmp(value, "trailers", 8) == 0)))
			r = -EBADMSG;
		else {
			r = buf_append(&st->fields, name, namelen);
			if (r >= 0)
				r = buf_append_byte(&st->fields, 0);
			if (r >= 0)
				r = buf_append(&st->fields, value, valuelen);
			if (r >= 0)
				r = buf_append_byte(&st->fields, 0);
			if (r >= 0)
				st->n_fields++;
		}
	}
	if (r == -ENOMEM)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (r == -E2BIG)
		st->too_large = true;
	else if (r < 0)
		st->malformed = true;
	return 0;
}

/* The end of a request head: answer it ourselves or start its exchange. */
static void h2_stream_start(H2Server *s, H2Stream *st, bool end_stream)
{
	if (st->malformed) {
		h2_rst(s, st, NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	if (st->too_large) {
		h2_reply_status(s, st, 431);
		return;
	}
	if (!st->method) {
		h2_rst(s, st, NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	bool connect = streq(st->method, "CONNECT");
	if (connect && !st->protocol) {
		/* Classic CONNECT (a forward proxy's tunnel): not what we are. */
		h2_reply_status(s, st, 405);
		return;
	}
	if (!st->path || !st->scheme || (st->protocol && !connect)) {
		h2_rst(s, st, NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	if (st->path[0] != '/') {
		h2_reply_status(s, st, 400); /* "*" (OPTIONS): nothing upstream wants it */
		return;
	}
	const char *authority = st->authority ?: st->host;
	if (isempty(authority)) {
		h2_reply_status(s, st, 400);
		return;
	}

	size_t n = st->n_fields + (st->cookie.len > 0);
	_cleanup_free_ HttpField *fields = calloc(n ? n : 1, sizeof(HttpField));
	if (!fields) {
		h2_rst(s, st, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	const char *p = st->fields.data;
	for (size_t i = 0; i < st->n_fields; i++) {
		fields[i].name = p;
		fields[i].name_len = strlen(p);
		p += fields[i].name_len + 1;
		fields[i].value = p;
		fields[i].value_len = strlen(p);
		p += fields[i].value_len + 1;
	}
	if (st->cookie.len > 0)
		fields[n - 1] = (HttpField){ .name = "cookie",
					     .name_len = 6,
					     .value = st->cookie.data,
					     .value_len = st->cookie.len };

	ExchangeRequest req = {
		.protocol = EXCHANGE_H2,
		.tls = conn_is_tls(s->conn),
		.method = st->method,
		.path = st->path,
		.authority = authority,
		.fields = fields,
		.n_fields = n,
		.body = HTTP1_BODY_CHUNKED,
	};
	req.client = conn_peer(s->conn, &req.client_len);
	if (st->protocol) {
		req.upgrade = st->protocol;
		req.extended_connect = true;
		st->extended = true;
	}
	if (end_stream)
		req.body = HTTP1_BODY_NONE;
	else if (!st->protocol) {
		for (size_t i = 0; i < st->n_fields; i++)
			if (streq(fields[i].name, "content-length")) {
				uint64_t len;
				if (safe_atou64(fields[i].value, &len) < 0) {
					h2_rst(s, st, NGHTTP2_PROTOCOL_ERROR);
					return;
				}
				req.body = HTTP1_BODY_LENGTH;
				req.content_length = len;
				break;
			}
	}
	st->has_body = req.body != HTTP1_BODY_NONE;

	Exchange *x = NULL;
	st->starting = true;
	int r = exchange_start(conn_worker(s->conn), &req, &h2_downstream_ops, st, &x);
	st->starting = false;
	if (r < 0) {
		log_debug("h2: stream %" PRId32 ": cannot start exchange: %s", st->id,
			  strerror(-r));
		st->x_done = true;
		if (!st->head_sent)
			h2_rst(s, st, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	if (!st->x_done)
		st->x = x;
	if (s->gone) {
		/* The connection went away while the exchange was starting. */
		if (st->x)
			exchange_cancel(st->x);
		else
			h2_stream_maybe_free(st);
		return;
	}
	/* The header strings are not needed any more. */
	buf_done(&st->fields);
	buf_done(&st->cookie);
}

static int h2_on_frame_recv(nghttp2_session *session _unused_, const nghttp2_frame *frame,
			    void *user_data)
{
	H2Server *s = user_data;
	bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
	H2Stream *st;

	switch (frame->hd.type) {
	case NGHTTP2_PING:
	case NGHTTP2_SETTINGS:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK)
			break;
		_fallthrough_;
	case NGHTTP2_PRIORITY:
	case NGHTTP2_RST_STREAM:
		if (!ctl_frame_allowed(s)) {
			log_debug("h2: control frame flood, sending GOAWAY");
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM);
		}
		break;
	case NGHTTP2_HEADERS:
		st = stream_of(s, frame->hd.stream_id);
		if (!st)
			break;
		if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
			h2_head_end(s, st);
			h2_stream_start(s, st, end_stream);
		} else if (end_stream && st->x && st->has_body)
			exchange_send_end(st->x); /* trailers end the body */
		break;
	case NGHTTP2_DATA:
		if (frame->hd.length == 0 && !end_stream && !ctl_frame_allowed(s)) {
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM);
			break;
		}
		st = stream_of(s, frame->hd.stream_id);
		if (st && end_stream && st->x && st->has_body)
			exchange_send_end(st->x);
		break;
	default:
		break;
	}
	return 0;
}

static int h2_on_data_chunk(nghttp2_session *session, uint8_t flags _unused_, int32_t stream_id,
			    const uint8_t *data, size_t len, void *user_data)
{
	H2Server *s = user_data;
	H2Stream *st = stream_of(s, stream_id);

	if (!st || !st->x) {
		(void)nghttp2_session_consume(session, stream_id, len);
		return 0;
	}
	bool more = exchange_send(st->x, data, len);
	if (st->in_blocked || !more) {
		st->in_blocked = st->in_blocked || !more;
		if (st->x) {
			st->unconsumed += len;
			return 0;
		}
	}
	(void)nghttp2_session_consume(session, stream_id, len);
	return 0;
}

static int h2_on_stream_close(nghttp2_session *session _unused_, int32_t stream_id,
			      uint32_t error_code, void *user_data)
{
	H2Server *s = user_data;
	H2Stream *st = stream_of(s, stream_id);
	if (!st)
		return 0;
	/* nghttp2 may keep a closed stream around: it must not lead here any more. */
	(void)nghttp2_session_set_stream_user_data(s->session, stream_id, NULL);
	st->closed = true;
	if (!st->x || st->aborted || (st->out_eof && error_code == NGHTTP2_NO_ERROR)) {
		/* Finished (or the exchange is finishing): its done frees the stream. */
		h2_stream_unlink(st);
		h2_stream_maybe_free(st);
		return 0;
	}
	if (s->in_op > 0) {
		/* Reset by us while an exchange was calling in: cancel once it returned. */
		st->cancel_pending = true;
		s->reap_pending = true;
		h2_arm_deadline(s);
		return 0;
	}
	/* The client reset it. */
	h2_stream_unlink(st);
	exchange_cancel(st->x); /* ds_done frees st, maybe from in here */
	return 0;
}

/* Cancel the exchanges of streams that were reset while their exchange was calling us. */
static void h2_reap(H2Server *s)
{
	s->reap_pending = false;
	H2Stream *next;
	for (H2Stream *st = s->streams; st && !s->gone; st = next) {
		next = st->next;
		if (st->closed && st->cancel_pending) {
			st->cancel_pending = false;
			h2_stream_unlink(st);
			if (st->x)
				exchange_cancel(st->x);
			else
				h2_stream_maybe_free(st);
		}
	}
}

static int h2_on_error(nghttp2_session *session _unused_, int lib_error_code _unused_,
		       const char *msg, size_t len, void *user_data _unused_)
{
	log_debug("h2: %.*s", (int)MIN(len, (size_t)200), msg);
	return 0;
}

/* ---- ConnProtocol ---- */

static void h2_feed(H2Server *s, const uint8_t *p, size_t n)
{
	s->in_ng++;
	ssize_t r = nghttp2_session_mem_recv(s->session, p, n);
	s->in_ng--;
	if (s->gone || s->closing)
		return;
	if (r < 0) {
		log_debug("h2: closing connection: %s", nghttp2_strerror((int)r));
		switch (s->calm ? NGHTTP2_ERR_FLOODED : r) {
		case NGHTTP2_ERR_FLOODED:
		case -905: /* NGHTTP2_ERR_TOO_MANY_CONTINUATIONS (newer or patched nghttp2) */
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM);
			break;
		case NGHTTP2_ERR_NOMEM:
		case NGHTTP2_ERR_CALLBACK_FAILURE:
			h2_terminate(s, NGHTTP2_INTERNAL_ERROR);
			break;
		default:
			h2_terminate(s, NGHTTP2_PROTOCOL_ERROR);
			break;
		}
		h2_flush(s);
		h2_close(s);
		return;
	}
	h2_flush(s);
}

static void h2_conn_data(void *proto, const uint8_t *p, size_t n)
{
	H2Server *s = proto;
	if (s->gone || s->closing)
		return;
	h2_enter(s);
	h2_feed(s, p, n);
	if (!s->gone)
		h2_reap(s);
	h2_leave(s);
}

static void h2_conn_eof(void *proto)
{
	H2Server *s = proto;
	if (s->gone)
		return;
	h2_enter(s);
	/* A client that stops sending cannot send WINDOW_UPDATE or finish requests. */
	h2_close(s);
	h2_leave(s);
}

static void h2_conn_writable(void *proto)
{
	H2Server *s = proto;
	if (s->gone)
		return;
	h2_enter(s);
	h2_flush(s);
	if (!s->gone)
		h2_reap(s);
	h2_leave(s);
}

static void h2_conn_closed(void *proto)
{
	H2Server *s = proto;
	if (s->gone)
		return;
	s->gone = true;
	h2_enter(s);
	/* Detach every stream first, then cancel the exchanges: ds_done frees what is left. */
	H2Stream *list = s->streams;
	s->streams = NULL;
	s->n_streams = 0;
	for (H2Stream *st = list; st; st = st->next)
		st->srv = NULL;
	while (list) {
		H2Stream *st = list;
		list = st->next;
		st->prev = st->next = NULL;
		if (st->x) {
			Exchange *x = st->x;
			exchange_cancel(x);
		} else if (!st->starting) {
			h2_stream_free(st);
		}
	}
	h2_leave(s);
}

/* The worker is stopping: GOAWAY, finish the streams in flight, then close (h2_flush
 * closes once nghttp2 has nothing left to read or write). */
static void h2_conn_shutdown(void *proto)
{
	H2Server *s = proto;
	if (s->gone || s->closing)
		return;
	h2_enter(s);
	if (nghttp2_submit_goaway(s->session, NGHTTP2_FLAG_NONE,
				  nghttp2_session_get_last_proc_stream_id(s->session),
				  NGHTTP2_NO_ERROR, NULL, 0) < 0)
		h2_close(s);
	else
		h2_flush(s);
	h2_leave(s);
}

static const ConnProtocol h2_conn_ops = {
	.data = h2_conn_data,
	.eof = h2_conn_eof,
	.writable = h2_conn_writable,
	.closed = h2_conn_closed,
	.shutdown = h2_conn_shutdown,
};

int h2_server_attach(Conn *c, const uint8_t *initial, size_t n, void **proto,
		     const ConnProtocol **ops)
{
	unsigned max_streams = H2_DEFAULT_STREAMS;
	uint32_t max_header_list = H2_DEFAULT_HEADER_LIST;
	uint64_t idle_ms = H2_DEFAULT_IDLE_MS;
	uint64_t header_timeout_ms = H2_DEFAULT_HEADER_TIMEOUT_MS;
	Worker *w = conn_worker(c);
	Proxyd *p = w ? worker_proxyd(w) : NULL;
	const ProxydConfig *cfg = p ? proxyd_config(p) : NULL;
	if (cfg) {
		if (cfg->h2_max_concurrent_streams > 0)
			max_streams = cfg->h2_max_concurrent_streams;
		if (cfg->h2_max_header_list > 0)
			max_header_list = cfg->h2_max_header_list;
		idle_ms = cfg->client_idle_ms;
		header_timeout_ms = cfg->header_timeout_ms;
	}

	H2Server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->conn = c;
	s->max_header_list = max_header_list;
	s->idle_ms = idle_ms;
	s->header_timeout_ms = header_timeout_ms;
	s->ctl_tokens = H2_CTL_BURST;

	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	int r = nghttp2_session_callbacks_new(&cbs);
	if (r == 0)
		r = nghttp2_option_new(&opt);
	if (r != 0) {
		nghttp2_session_callbacks_del(cbs);
		free(s);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_send_callback(cbs, h2_send_cb);
	nghttp2_session_callbacks_set_send_data_callback(cbs, h2_send_data_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
	nghttp2_session_callbacks_set_error_callback2(cbs, h2_on_error);

	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_no_closed_streams(opt, 1);
	nghttp2_option_set_max_settings(opt, 32);
	nghttp2_option_set_max_outbound_ack(opt, 1000);

	r = nghttp2_session_server_new2(&s->session, cbs, s, opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	if (r != 0) {
		free(s);
		return -ENOMEM;
	}

	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, max_header_list },
		{ NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 },
	};
	r = nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, iv, ELEMENTSOF(iv));
	if (r == 0)
		r = nghttp2_session_set_local_window_size(s->session, NGHTTP2_FLAG_NONE, 0,
							  H2_CONN_WINDOW);
	if (r != 0) {
		h2_server_free(s);
		return -ENOMEM;
	}

	conn_set_idle_timeout(c, idle_ms);
	*proto = s;
	*ops = &h2_conn_ops;

	h2_enter(s);
	if (n > 0)
		h2_feed(s, initial, n);
	else
		h2_flush(s);
	h2_leave(s);
	return 0;
}
