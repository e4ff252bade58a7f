/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 downstream: the strict parser (http1.c) on a client connection, each
 * request handed to an exchange, the response written back as HTTP/1.1.
 *
 * One exchange at a time: pipelined requests stay unparsed in our input buffer (and
 * reading is paused) until the current response has ended. Request bodies stream into
 * exchange_send(); when it says full, reading pauses until resume_request. Responses of
 * unknown length are chunked for HTTP/1.1 clients and close-delimited for HTTP/1.0 ones.
 * A 101 turns the connection into a tunnel: raw bytes both ways until one side ends.
 *
 * Re-entrancy: exchange callbacks may run inside exchange_start()/exchange_send(), and
 * done() may come from inside them; `processing` makes h1_run() a trampoline so a chain
 * of pipelined requests answered synchronously never recurses.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "conn.h"
#include "exchange.h"
#include "http1.h"
#include "log.h"
#include "pages.h"
#include "proxyd.h"
#include "strutil.h"

#define IN_MAX (1024 * 1024)
#define IN_PAUSE (64 * 1024) /* buffered input beyond which reading pauses */
#define OUT_HEAD_MAX (256 * 1024)
#define UPGRADE_MAX 64

typedef enum ReqState {
	REQ_HEAD, /* waiting for / reading a request head */
	REQ_BODY, /* head given to the exchange; reading its body */
	REQ_DONE, /* request complete; its response is under way */
} ReqState;

typedef struct H1 {
	Conn *c;
	Worker *w;
	const ProxydConfig *cfg;
	Http1Parser *parser;

	uint8_t *in; /* input we could not process yet */
	size_t in_off, in_len, in_cap;

	Exchange *x;
	ReqState req;
	bool in_start, done_in_start;
	bool req_paused;   /* exchange_send() said full */
	bool resp_started; /* final head written */
	bool resp_ended;
	bool resp_blocked; /* data() returned false: resume on writable */
	bool resp_chunked, resp_no_body;
	bool tunnel;
	bool keep_alive, close_after, is_head, expect_continue;
	int version_minor;
	bool deadline_armed;
	bool next_at_end; /* the exchange finished before the request's END */
	Http1BodyKind body_kind;
	bool closing, conn_gone, stopping, eof;
	bool processing;
	char upgrade[UPGRADE_MAX];
	Buf out; /* response head scratch, reused */
} H1;

static void h1_run(H1 *h);
static void h1_update_read(H1 *h);

/* ---- writing ---- */

static void out_field(Buf *b, const char *name, size_t nl, const char *value, size_t vl)
{
	(void)buf_append(b, name, nl);
	(void)buf_append(b, ": ", 2);
	(void)buf_append(b, value, vl);
	(void)buf_append(b, "\r\n", 2);
}

static bool field_is(const HttpField *f, const char *name, size_t len)
{
	return f->name_len == len && strncasecmp(f->name, name, len) == 0;
}

#define FIELD_IS(f, lit) field_is(f, lit, STRLEN(lit))

/* Fields we write ourselves (framing, connection management). */
static bool field_is_ours(const HttpField *f)
{
	return FIELD_IS(f, "connection") || FIELD_IS(f, "keep-alive") ||
	       FIELD_IS(f, "transfer-encoding") || FIELD_IS(f, "proxy-connection") ||
	       FIELD_IS(f, "upgrade") || FIELD_IS(f, "content-length");
}

static int h1_write_head(H1 *h, Buf *b)
{
	if (b->len > OUT_HEAD_MAX) /* buf refused parts: never send a torn head */
		return -E2BIG;
	return conn_write(h->c, b->data, b->len);
}

/* An error response of our own, then close. */
static void h1_error(H1 *h, int status, const char *detail)
{
	if (h->closing || h->conn_gone)
		return;
	h->closing = true;
	if (h->x) {
		Exchange *x = h->x;
		h->x = NULL;
		exchange_cancel(x);
	}
	if (h->resp_started) {
		conn_abort(h->c);
		return;
	}
	Page page = { 0 };
	Buf *b = &h->out;
	buf_clear(b);
	if (page_error(status, detail, false, &page) < 0) {
		conn_abort(h->c);
		return;
	}
	char line[128];
	(void)strfmt(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
	(void)buf_append_str(b, line);
	out_field(b, "Content-Type", 12, page.content_type, strlen(page.content_type));
	(void)buf_printf(b, "Content-Length: %zu\r\nConnection: close\r\n", page.body_len);
	for (size_t i = 0; i < page.n_extra; i++)
		out_field(b, page.extra_name[i], strlen(page.extra_name[i]), page.extra_value[i],
			  strlen(page.extra_value[i]));
	(void)buf_append(b, "\r\n", 2);
	if (h1_write_head(h, b) >= 0 && page.body_len)
		(void)conn_write(h->c, page.body, page.body_len);
	page_done(&page);
	log_debug("client request rejected: %d %s", status, strempty(detail));
	conn_close(h->c);
}

/* ---- downstream ops (the exchange talks back) ---- */

static void ds_head(void *ds, int status, const HttpField *fields, size_t n_fields,
		    Http1BodyKind body, uint64_t content_length)
{
	H1 *h = ds;
	if (h->conn_gone || h->closing)
		return;
	Buf *b = &h->out;
	buf_clear(b);
	char line[128];
	(void)strfmt(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
	(void)buf_append_str(b, line);

	bool informational = status >= 100 && status < 200;
	if (informational && status != 101) {
		/* 100/103: pass through, the final head follows. HTTP/1.0 clients get none. */
		if (h->version_minor == 0)
			return;
		for (size_t i = 0; i < n_fields; i++)
			if (!field_is_ours(&fields[i]))
				out_field(b, fields[i].name, fields[i].name_len, fields[i].value,
					  fields[i].value_len);
		(void)buf_append(b, "\r\n", 2);
		(void)h1_write_head(h, b);
		return;
	}

	h->resp_started = true;
	bool keep_cl = body == HTTP1_BODY_NONE && (h->is_head || status == 304);
	for (size_t i = 0; i < n_fields; i++) {
		const HttpField *f = &fields[i];
		if (field_is_ours(f) && !(keep_cl && FIELD_IS(f, "content-length")))
			continue;
		out_field(b, f->name, f->name_len, f->value, f->value_len);
	}

	if (status == 101) {
		h->tunnel = true;
		h->resp_no_body = true;
		(void)buf_append_str(b, "Connection: upgrade\r\nUpgrade: ");
		(void)buf_append_str(b, h->upgrade);
		(void)buf_append(b, "\r\n\r\n", 4);
		if (h1_write_head(h, b) < 0) {
			conn_abort(h->c);
			return;
		}
		h1_run(h); /* bytes the client sent after the request are the tunnel's */
		return;
	}
	if (h->upgrade[0])
		h->close_after = true; /* refused upgrade: what follows may be the new protocol */

	h->resp_no_body = h->is_head || status == 204 || status == 304;
	switch (body) {
	case HTTP1_BODY_NONE:
		if (!h->resp_no_body)
			(void)buf_append_str(b, "Content-Length: 0\r\n");
		break;
	case HTTP1_BODY_LENGTH:
		if (status != 204 && status != 304)
			(void)buf_printf(b, "Content-Length: %" PRIu64 "\r\n", content_length);
		break;
	case HTTP1_BODY_CHUNKED:
	case HTTP1_BODY_UNTIL_CLOSE:
		if (h->resp_no_body)
			break;
		if (h->version_minor >= 1) {
			h->resp_chunked = true;
			(void)buf_append_str(b, "Transfer-Encoding: chunked\r\n");
		} else
			h->close_after = true;
		break;
	}
	if (h->close_after || !h->keep_alive || h->stopping) {
		h->close_after = true;
		(void)buf_append_str(b, "Connection: close\r\n");
	} else if (h->version_minor == 0)
		(void)buf_append_str(b, "Connection: keep-alive\r\n");
	(void)buf_append(b, "\r\n", 2);
	if (h1_write_head(h, b) < 0)
		conn_abort(h->c);
}

static bool ds_data(void *ds, const uint8_t *p, size_t n)
{
	H1 *h = ds;
	if (h->conn_gone || h->closing || n == 0)
		return true;
	if (h->resp_no_body && !h->tunnel)
		return true;
	if (h->resp_chunked) {
		char size[24];
		int l = snprintf(size, sizeof size, "%zx\r\n", n);
		(void)conn_write(h->c, size, (size_t)l);
		(void)conn_write(h->c, p, n);
		(void)conn_write(h->c, "\r\n", 2);
	} else
		(void)conn_write(h->c, p, n);
	if (conn_write_full(h->c)) {
		h->resp_blocked = true;
		return false;
	}
	return true;
}

static void ds_end(void *ds)
{
	H1 *h = ds;
	if (h->conn_gone || h->closing)
		return;
	if (h->tunnel) {
		/* The service ended its side of the tunnel: we are done with the client too. */
		h->closing = true;
		conn_close(h->c);
		return;
	}
	if (h->resp_chunked && !h->resp_no_body)
		(void)conn_write(h->c, "0\r\n\r\n", 5);
	h->resp_ended = true;
}

static void ds_abort(void *ds)
{
	H1 *h = ds;
	if (h->conn_gone)
		return;
	h->closing = true;
	conn_abort(h->c);
}

static void ds_resume_request(void *ds)
{
	H1 *h = ds;
	if (h->conn_gone || !h->req_paused)
		return;
	h->req_paused = false;
	h1_run(h);
}

/* The request/response pair is complete: get ready for the next one (or close). */
static void h1_next(H1 *h)
{
	if (h->closing)
		return;
	if (h->close_after || !h->keep_alive || h->stopping || h->eof) {
		h->closing = true;
		conn_close(h->c);
		return;
	}
	h->req = REQ_HEAD;
	h->resp_started = h->resp_ended = h->resp_blocked = false;
	h->resp_chunked = h->resp_no_body = false;
	h->tunnel = h->is_head = h->expect_continue = false;
	h->upgrade[0] = 0;
	h->deadline_armed = h->next_at_end = false;
	conn_set_idle_timeout(h->c, h->cfg->client_idle_ms);
}

static void ds_done(void *ds)
{
	H1 *h = ds;
	log_debug("h1: exchange done (response %s, request %s)",
		  h->resp_ended     ? "complete"
		  : h->resp_started ? "cut"
				    : "none",
		  h->req == REQ_DONE ? "complete" : "partial");
	h->x = NULL;
	if (h->in_start)
		h->done_in_start = true;
	if (h->conn_gone || h->closing)
		return;
	if (!h->resp_started || (!h->resp_ended && !h->tunnel)) {
		/* Ended without a complete response (cancelled, aborted): nothing to reuse. */
		h->closing = true;
		conn_abort(h->c);
		return;
	}
	if (h->tunnel) {
		h->closing = true;
		conn_close(h->c);
		return;
	}
	if (h->req == REQ_DONE) {
		h1_next(h);
		h1_run(h);
	} else if (h->body_kind == HTTP1_BODY_NONE) {
		h->next_at_end = true; /* the parser's END of this request is next */
	} else {
		/* Answered before the request body was read (an error page): the rest of the
		 * body is not worth reading. */
		h->close_after = true;
		h1_next(h);
	}
}

static const DownstreamOps ds_ops = {
	.head = ds_head,
	.data = ds_data,
	.end = ds_end,
	.abort = ds_abort,
	.resume_request = ds_resume_request,
	.done = ds_done,
};

/* ---- requests ---- */

static void on_header_deadline(void *proto)
{
	H1 *h = proto;
	h->deadline_armed = false;
	if (h->closing || h->req != REQ_HEAD)
		return;
	if (http1_parser_idle(h->parser) && h->in_off == h->in_len) {
		h->closing = true;
		conn_close(h->c); /* connected, said nothing */
		return;
	}
	h1_error(h, 408, "the request head did not arrive in time");
}

/* Origin-form path of a request target; NULL if the form is not one we serve. */
static const char *target_path(const char *target)
{
	if (target[0] == '/' || streq(target, "*"))
		return target;
	const char *rest = startswith(target, "http://");
	if (!rest)
		rest = startswith(target, "https://");
	if (!rest) {
		if (strncasecmp(target, "http://", 7) == 0)
			rest = target + 7;
		else if (strncasecmp(target, "https://", 8) == 0)
			rest = target + 8;
		else
			return NULL;
	}
	const char *slash = strpbrk(rest, "/?");
	if (!slash)
		return "/";
	return *slash == '/' ? slash : NULL; /* "http://host?x": no path; refuse */
}

static void h1_on_head(H1 *h, const HttpHead *head)
{
	conn_set_deadline(h->c, 0, NULL);
	h->deadline_armed = false;
	conn_set_idle_timeout(h->c, 0); /* the exchange owns the waiting now */

	h->version_minor = head->version_minor;
	h->keep_alive = head->keep_alive;
	h->is_head = streq(head->method, "HEAD");
	h->expect_continue = head->expect_continue;
	h->req = REQ_BODY; /* until the parser's END, even without a body */
	h->body_kind = head->body;
	h->upgrade[0] = 0;

	const char *path = target_path(head->target);
	if (!path) {
		h1_error(h, streq(head->method, "CONNECT") ? 405 : 400,
			 streq(head->method, "CONNECT") ? "CONNECT is not supported"
							: "request target is not a path");
		return;
	}
	const char *upgrade = NULL;
	if (head->upgrade) {
		const HttpField *u = http_head_field(head, "upgrade");
		if (u && u->value_len > 0 && u->value_len < UPGRADE_MAX) {
			memcpy(h->upgrade, u->value, u->value_len + 1);
			upgrade = h->upgrade;
		}
	}
	socklen_t plen;
	const struct sockaddr *peer = conn_peer(h->c, &plen);
	ExchangeRequest req = {
		.protocol = head->version_minor == 0 ? EXCHANGE_HTTP1_0 : EXCHANGE_HTTP1_1,
		.tls = conn_is_tls(h->c),
		.client = peer,
		.client_len = plen,
		.method = head->method,
		.path = path,
		.authority = head->authority ? head->authority : "",
		.fields = head->fields,
		.n_fields = head->n_fields,
		.body = head->body,
		.content_length = head->content_length,
		.upgrade = upgrade,
	};
	Exchange *x = NULL;
	h->in_start = true;
	h->done_in_start = false;
	int r = exchange_start(h->w, &req, &ds_ops, h, &x);
	h->in_start = false;
	if (h->closing || h->conn_gone)
		return;
	if (r < 0) {
		if (!h->done_in_start)
			h1_error(h, r == -ENOMEM ? 503 : 500, "the request could not be handled");
		return;
	}
	if (!h->done_in_start)
		h->x = x;
	if (h->expect_continue && h->version_minor >= 1 && head->body != HTTP1_BODY_NONE &&
	    !h->resp_started && h->x)
		(void)conn_write(h->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/* Feed bytes while we can; returns how many were used. */
static size_t h1_feed(H1 *h, const uint8_t *data, size_t len)
{
	size_t off = 0;
	/* Until the parser needs more: a HEAD's END may come without another byte. */
	for (;;) {
		if (h->closing || h->conn_gone)
			return len;
		if (h->req_paused)
			break;
		if (h->tunnel) {
			if (!h->x || off == len)
				return len;
			if (!exchange_send(h->x, data + off, len - off))
				h->req_paused = true;
			return len;
		}
		if (h->req == REQ_DONE)
			break; /* pipelined: wait for the current response to end */

		Http1Result res = { 0 };
		size_t used = 0;
		Http1Event ev = http1_parse(h->parser, data + off, len - off, &used, &res);
		off += used;
		switch (ev) {
		case HTTP1_NEED_MORE:
			if (h->req == REQ_HEAD && !h->deadline_armed &&
			    !http1_parser_idle(h->parser)) {
				h->deadline_armed = true;
				conn_set_deadline(h->c, h->cfg->header_timeout_ms,
						  on_header_deadline);
			}
			return off; /* all used, or the parser stopped after an upgrade request */
		case HTTP1_HEAD:
			h1_on_head(h, res.head);
			break;
		case HTTP1_DATA:
			if (h->x && !exchange_send(h->x, res.data, res.len))
				h->req_paused = true;
			break;
		case HTTP1_END:
			if (h->x && h->body_kind != HTTP1_BODY_NONE && !h->upgrade[0])
				exchange_send_end(h->x);
			h->req = REQ_DONE;
			if (h->next_at_end) {
				h->next_at_end = false;
				h1_next(h);
			}
			break;
		case HTTP1_ERROR:
			h1_error(h, res.status ? res.status : 400, res.error);
			return len;
		}
	}
	return off;
}

static int h1_buffer(H1 *h, const uint8_t *p, size_t n)
{
	if (h->in_off == h->in_len)
		h->in_off = h->in_len = 0;
	if (h->in_len + n > h->in_cap) {
		if (h->in_off > 0) {
			memmove(h->in, h->in + h->in_off, h->in_len - h->in_off);
			h->in_len -= h->in_off;
			h->in_off = 0;
		}
		if (h->in_len + n > IN_MAX)
			return -E2BIG;
		size_t cap = MAX(h->in_cap * 2, h->in_len + n);
		cap = MIN(MAX(cap, (size_t)16384), (size_t)IN_MAX);
		uint8_t *m = realloc(h->in, cap);
		if (!m)
			return -ENOMEM;
		h->in = m;
		h->in_cap = cap;
	}
	memcpy(h->in + h->in_len, p, n);
	h->in_len += n;
	return 0;
}

/* Reading stays on while a response is under way (no poll changes per request, and a
 * client that goes away is noticed): what arrives meanwhile is buffered, up to a limit. */
static bool h1_can_read(H1 *h)
{
	if (h->closing || h->conn_gone || h->req_paused || h->eof)
		return false;
	return h->in_len - h->in_off < IN_PAUSE;
}

static void h1_update_read(H1 *h)
{
	if (h->conn_gone || h->closing)
		return;
	if (h1_can_read(h))
		conn_resume_read(h->c);
	else
		conn_pause_read(h->c);
}

static void h1_run(H1 *h)
{
	if (h->processing || h->conn_gone)
		return;
	h->processing = true;
	/* At least once even with nothing buffered: the parser may hold an event (the END
	 * of a request whose last bytes came while we were paused). */
	static const uint8_t none[1];
	for (;;) {
		size_t before = h->in_off;
		const uint8_t *p = h->in ? h->in + h->in_off : none;
		h->in_off += h1_feed(h, p, h->in_len - h->in_off);
		if (h->closing || h->in_off == h->in_len || h->in_off == before)
			break;
	}
	if (h->in_off == h->in_len)
		h->in_off = h->in_len = 0;
	h->processing = false;
	h1_update_read(h);
	if (h->stopping && !h->closing && !h->x && h->req == REQ_HEAD && h->in_len == 0 &&
	    http1_parser_idle(h->parser)) {
		h->closing = true;
		conn_close(h->c);
	}
}

/* ---- connection protocol ---- */

static void h1_data(void *proto, const uint8_t *p, size_t n)
{
	H1 *h = proto;
	if (h->closing || h->conn_gone)
		return;
	size_t used = 0;
	if (h->in_off == h->in_len && !h->processing) {
		h->processing = true;
		used = h1_feed(h, p, n);
		h->processing = false;
	}
	if (used < n && !h->closing) {
		int r = h1_buffer(h, p + used, n - used);
		if (r < 0) {
			h->closing = true;
			conn_abort(h->c);
			return;
		}
	}
	h1_run(h);
}

static void h1_eof(void *proto)
{
	H1 *h = proto;
	h->eof = true;
	if (h->closing || h->conn_gone)
		return;
	if (h->tunnel) {
		if (h->x)
			exchange_send_end(h->x);
		return;
	}
	if (h->x && h->req == REQ_BODY) {
		/* The body was cut short: nothing sensible can follow. */
		h->closing = true;
		conn_abort(h->c);
		return;
	}
	if (h->x)
		return; /* a half-close after the request: answer, then close */
	if (h->req == REQ_HEAD && !http1_parser_idle(h->parser)) {
		h1_error(h, 400, "the connection closed in the middle of a request head");
		return;
	}
	h->closing = true;
	conn_close(h->c);
}

static void h1_writable(void *proto)
{
	H1 *h = proto;
	if (h->resp_blocked && h->x && !h->conn_gone) {
		h->resp_blocked = false;
		exchange_resume_response(h->x);
	}
}

static void h1_closed(void *proto)
{
	H1 *h = proto;
	h->conn_gone = true;
	if (h->x) {
		Exchange *x = h->x;
		h->x = NULL;
		exchange_cancel(x);
	}
	http1_parser_free(h->parser);
	buf_done(&h->out);
	free(h->in);
	free(h);
}

static void h1_shutdown(void *proto)
{
	H1 *h = proto;
	h->stopping = true;
	if (!h->processing)
		h1_run(h);
}

static const ConnProtocol h1_ops = {
	.data = h1_data,
	.eof = h1_eof,
	.writable = h1_writable,
	.closed = h1_closed,
	.shutdown = h1_shutdown,
};

int h1_server_attach(Conn *c, const uint8_t *initial, size_t n, void **proto,
		     const ConnProtocol **ops)
{
	H1 *h = calloc(1, sizeof(H1));
	if (!h)
		return -ENOMEM;
	h->c = c;
	h->w = conn_worker(c);
	h->cfg = proxyd_config(worker_proxyd(h->w));
	h->out = BUF_INIT(OUT_HEAD_MAX);
	h->keep_alive = true;
	h->version_minor = 1;
	int r = http1_parser_new(HTTP1_REQUEST, &h->cfg->h1_limits, &h->parser);
	if (r < 0) {
		free(h);
		return r;
	}
	/* From here on conn.c owns h through h1_ops.closed, even if we end it right away. */
	*proto = h;
	*ops = &h1_ops;
	h->deadline_armed = true;
	conn_set_deadline(c, h->cfg->header_timeout_ms, on_header_deadline);
	if (n > 0)
		h1_data(h, initial, n);
	return 0;
}
