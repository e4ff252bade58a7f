/* SPDX-License-Identifier: MIT */
/*
 * The dashboard backend's HTTP/1.1 server (dashboard.h): the Unix socket, connections
 * parsed with our strict parser (http1.h), the request checks every request passes
 * (loopback, same origin, CSRF for state changes), the embedded UI files, and the SSE
 * streams with their event ring.
 *
 * Security: the socket is 0600 in the 0700 runtime directory, so only the proxy (and
 * the user's own processes) reach it. The proxy appends the client's address to
 * X-Forwarded-For; its last entry is the only one trusted, and it must be loopback.
 * A request carrying an Origin (or Sec-Fetch-Site: cross-site) that is not the page's
 * own origin is refused whatever its method, and no CORS header is ever sent, so other
 * sites can neither read nor change anything. A state-changing request (POST) must also
 * carry Origin, and the token of the locald_csrf cookie in X-Locald-CSRF.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dashboard-internal.h"
#include "log.h"
#include "macro.h"
#include "paths.h"
#include "strutil.h"
#include "time-util.h"

static bool strcaseeq_ascii(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

struct DConn {
	Dashboard *d;
	DConn *prev, *next;
	uv_pipe_t pipe;
	Http1Parser *parser;
	unsigned refs;
	bool closing, busy, sse, keep_alive, in_head;
	bool processing; /* inside dconn_process(): it goes on by itself */
	bool failed;     /* a malformed request was answered: closing */
	Buf pending;     /* input not parsed yet while a response is pending */
	uint64_t last_n; /* SSE: the last event sent */
};

/* Written before the workers start, read by them afterwards. */
static struct sockaddr_un dash_addr;
static socklen_t dash_addr_len;
static char dash_addr_text[sizeof(dash_addr.sun_path) + 8];
static bool dash_addr_set;

bool dashboard_upstream(const struct sockaddr **ret_addr, socklen_t *ret_len, const char **ret_text)
{
	if (!dash_addr_set)
		return false;
	*ret_addr = (const struct sockaddr *)&dash_addr;
	*ret_len = dash_addr_len;
	*ret_text = dash_addr_text;
	return true;
}

static void random_hex(char *out, size_t bytes)
{
	uint8_t b[64];
	bytes = MIN(bytes, sizeof b);
	if (getrandom(b, bytes, 0) != (ssize_t)bytes) {
		/* No entropy (very early boot): time and pid still make the ids distinct. */
		uint64_t v = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		for (size_t i = 0; i < bytes; i++)
			b[i] = (uint8_t)(v >> ((i % 8) * 8)) ^ (uint8_t)(i * 131);
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < bytes; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * bytes] = 0;
}

/* ---- connections ---- */

static void dconn_process(DConn *c);

DConn *dconn_ref(DConn *c)
{
	c->refs++;
	return c;
}

static void dconn_free(DConn *c)
{
	http1_parser_free(c->parser);
	buf_done(&c->pending);
	free(c);
}

void dconn_unref(DConn *c)
{
	if (c && --c->refs == 0)
		dconn_free(c);
}

bool dconn_alive(const DConn *c)
{
	return c && !c->closing;
}

static void dconn_closed_cb(uv_handle_t *h)
{
	dconn_unref(h->data);
}

static void dconn_close(DConn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	Dashboard *d = c->d;
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d->n_conns--;
	uv_close((uv_handle_t *)&c->pipe, dconn_closed_cb);
}

typedef struct WriteReq {
	uv_write_t req;
	DConn *c;
	bool close_after;
	size_t len;
	char data[];
} WriteReq;

static void sse_pump(DConn *c);

static void write_cb(uv_write_t *req, int status)
{
	WriteReq *w = (WriteReq *)req;
	DConn *c = w->c;
	if (!c->closing && (status < 0 || w->close_after))
		dconn_close(c);
	else if (c->sse)
		sse_pump(c);
	dconn_unref(c);
	free(w);
}

/* Queue bytes; false if the connection is (now) gone. */
static bool dconn_write(DConn *c, const char *a, size_t alen, const char *b, size_t blen,
			bool close_after)
{
	if (c->closing)
		return false;
	WriteReq *w = malloc(sizeof(WriteReq) + alen + blen);
	if (!w) {
		dconn_close(c);
		return false;
	}
	memcpy(w->data, a, alen);
	if (blen)
		memcpy(w->data + alen, b, blen);
	w->len = alen + blen;
	w->c = dconn_ref(c);
	w->close_after = close_after;
	uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, write_cb) < 0) {
		dconn_unref(c);
		free(w);
		dconn_close(c);
		return false;
	}
	return true;
}

static void dconn_finish(DConn *c)
{
	c->busy = false;
	if (c->closing)
		return;
	if (!c->keep_alive) {
		/* The write queued last closes it. */
		return;
	}
	/* An answer given later (a bus reply): take the next request now. */
	if (!c->processing)
		dconn_process(c);
}

/* 304 has neither body nor Content-Length. */
static void respond(DConn *c, int status, const char *content_type, const char *extra,
		    const char *body, size_t len, bool not_modified)
{
	/* Once per request: a connection that went away, or a second answer, gets nothing. */
	if (!dconn_alive(c) || c->sse || !c->busy)
		return;
	char length[48] = "";
	if (!not_modified)
		(void)strfmt(length, sizeof length, "Content-Length: %zu\r\n", len);
	char head[2048];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\n"
			 "%s%s%s%s%s"
			 "X-Content-Type-Options: nosniff\r\n"
			 "Referrer-Policy: no-referrer\r\n"
			 "%s\r\n",
			 status, http_status_reason(status), length,
			 content_type ? "Content-Type: " : "", strempty(content_type),
			 content_type ? "\r\n" : "", strempty(extra),
			 c->keep_alive ? "" : "Connection: close\r\n");
	if (n < 0 || (size_t)n >= sizeof head) {
		dconn_close(c);
		return;
	}
	bool no_body = c->in_head || not_modified || !body;
	(void)dconn_write(c, head, (size_t)n, body, no_body ? 0 : len, !c->keep_alive);
	dconn_finish(c);
}

void dconn_respond(DConn *c, int status, const char *content_type, const char *extra,
		   const char *body, size_t len)
{
	respond(c, status, content_type, extra, body, len, false);
}

void dconn_respond_json(DConn *c, int status, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!s) {
		dconn_respond(c, 500, "application/json", "Cache-Control: no-store\r\n",
			      "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"out of memory\"}}\n",
			      55);
		return;
	}
	size_t len = strlen(s);
	dconn_respond(c, status, "application/json", "Cache-Control: no-store\r\n", s, len);
	free(s);
}

void dconn_respond_error(DConn *c, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	dconn_respond_json(c, status, j);
}

/* ---- request checks ---- */

static const char *field(const HttpHead *h, const char *name)
{
	const HttpField *f = http_head_field(h, name);
	return f ? f->value : NULL;
}

static bool addr_is_loopback(const char *a)
{
	if (startswith(a, "127."))
		return true;
	if (strcaseeq_ascii(a, "::1") || strcaseeq_ascii(a, "[::1]"))
		return true;
	return startswith(a, "::ffff:127.") != NULL;
}

/* The last X-Forwarded-For entry (the one the proxy appended); NULL without the field. */
static bool from_loopback(const HttpHead *h)
{
	bool seen = false, ok = true;
	for (size_t i = 0; i < h->n_fields; i++) {
		if (strcasecmp(h->fields[i].name, "X-Forwarded-For") != 0)
			continue;
		seen = true;
		const char *v = h->fields[i].value;
		const char *last = strrchr(v, ',');
		last = last ? last + 1 : v;
		while (*last == ' ' || *last == '\t')
			last++;
		char buf[64];
		size_t n = strcspn(last, " \t");
		if (n >= sizeof buf) {
			ok = false;
			continue;
		}
		memcpy(buf, last, n);
		buf[n] = 0;
		ok = addr_is_loopback(buf);
	}
	/* Without the field: a local process of this user connected to the socket itself. */
	return !seen || ok;
}

/* "http://locald.localhost:8080" from Host and X-Forwarded-Proto, lower case. */
static bool own_origin(const HttpHead *h, char *buf, size_t size)
{
	const char *proto = field(h, "X-Forwarded-Proto");
	const char *host = h->authority;
	if (isempty(host))
		return false;
	if (!proto || (!strcaseeq_ascii(proto, "https") && !strcaseeq_ascii(proto, "http")))
		proto = "http";
	if (strfmt(buf, size, "%s://%s", strcaseeq_ascii(proto, "https") ? "https" : "http", host) <
	    0)
		return false;
	for (char *p = buf; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	/* Default ports are left out of an Origin. */
	size_t n = strlen(buf);
	if (startswith(buf, "http://") && endswith(buf, ":80"))
		buf[n - 3] = 0;
	else if (startswith(buf, "https://") && endswith(buf, ":443"))
		buf[n - 4] = 0;
	return true;
}

static bool origin_matches(const HttpHead *h, const char *origin)
{
	char own[600];
	if (!own_origin(h, own, sizeof own))
		return false;
	return strcaseeq_ascii(origin, own);
}

static const char *cookie_value(const HttpHead *h, const char *name, char *buf, size_t size)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < h->n_fields; i++) {
		if (strcasecmp(h->fields[i].name, "Cookie") != 0)
			continue;
		for (const char *p = h->fields[i].value; p && *p;) {
			while (*p == ' ' || *p == ';')
				p++;
			size_t len = strcspn(p, ";");
			if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
				size_t vl = len - nl - 1;
				if (vl >= size)
					return NULL;
				memcpy(buf, p + nl + 1, vl);
				buf[vl] = 0;
				return buf;
			}
			p += len;
		}
	}
	return NULL;
}

static bool token_equal(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (!a || strlen(a) != n)
		return false;
	unsigned char diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* 0 if the request may go on; else it was answered. */
static int check_request(Dashboard *d, DConn *c, const DReq *req)
{
	const HttpHead *h = req->head;
	if (!from_loopback(h)) {
		dconn_respond_error(c, 403, "PERMISSION_DENIED",
				    "the dashboard answers only on loopback");
		return -EPERM;
	}
	const char *origin = field(h, "Origin");
	const char *site = field(h, "Sec-Fetch-Site");
	if (origin && !strcaseeq_ascii(origin, "null") && !origin_matches(h, origin)) {
		dconn_respond_error(c, 403, "PERMISSION_DENIED",
				    "cross-origin request refused (Origin %s)", origin);
		return -EPERM;
	}
	if (site && strcaseeq_ascii(site, "cross-site")) {
		dconn_respond_error(c, 403, "PERMISSION_DENIED", "cross-site request refused");
		return -EPERM;
	}
	bool safe = streq(req->method, "GET") || streq(req->method, "HEAD");
	if (safe)
		return 0;
	if (!origin || !origin_matches(h, origin)) {
		dconn_respond_error(c, 403, "PERMISSION_DENIED",
				    "a state-changing request needs this page's Origin");
		return -EPERM;
	}
	char cookie[128];
	const char *ck = cookie_value(h, "locald_csrf", cookie, sizeof cookie);
	const char *hdr = field(h, "X-Locald-CSRF");
	if (!token_equal(ck, d->csrf) || !token_equal(hdr, d->csrf)) {
		dconn_respond_error(c, 403, "PERMISSION_DENIED",
				    "missing or wrong CSRF token (reload the dashboard)");
		return -EPERM;
	}
	return 0;
}

/* ---- the UI files ---- */

static bool etag_matches(const char *inm, const char *etag)
{
	if (!inm)
		return false;
	if (streq(inm, "*"))
		return true;
	size_t n = strlen(etag);
	for (const char *p = inm; (p = strstr(p, etag)); p += n)
		return true;
	return false;
}

static void serve_asset(Dashboard *d, DConn *c, const DReq *req)
{
	const DashAsset *a = NULL;
	const char *path = req->path;
	/* The app is one page: unknown non-asset paths get it too (deep links). */
	bool page = !startswith(path, "/assets/");
	for (size_t i = 0; i < dash_n_assets; i++)
		if (streq(dash_assets[i].path, page ? "/" : path)) {
			a = &dash_assets[i];
			break;
		}
	if (!a) {
		dconn_respond(c, 404, "text/plain; charset=utf-8", "Cache-Control: no-store\r\n",
			      "not found\n", 10);
		return;
	}
	if (!streq(req->method, "GET") && !streq(req->method, "HEAD")) {
		dconn_respond(c, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
			      "method not allowed\n", 19);
		return;
	}
	char extra[512];
	if (page)
		(void)strfmt(extra, sizeof extra,
			     /* It sets a cookie: never stored; the assets carry the caching. */
			     "ETag: %s\r\nCache-Control: no-store\r\n"
			     "Set-Cookie: locald_csrf=%s; Path=/; SameSite=Strict\r\n"
			     "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
			     "style-src 'self'; script-src 'self'; connect-src 'self'; "
			     "frame-ancestors 'none'\r\n"
			     "X-Frame-Options: DENY\r\n",
			     a->etag, d->csrf);
	else
		(void)strfmt(extra, sizeof extra, "ETag: %s\r\nCache-Control: no-cache\r\n",
			     a->etag);
	if (etag_matches(field(req->head, "If-None-Match"), a->etag)) {
		respond(c, 304, NULL, extra, NULL, 0, true);
		return;
	}
	dconn_respond(c, 200, a->content_type, extra, (const char *)a->data, a->len);
}

/* ---- dispatch ---- */

static void handle_request(Dashboard *d, DConn *c, const HttpHead *h)
{
	c->busy = true;
	c->keep_alive = h->keep_alive;
	c->in_head = streq(h->method, "HEAD");
	_cleanup_free_ char *target = strdup(h->target);
	if (!target) {
		dconn_respond_error(c, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	char *q = strchr(target, '?');
	if (q)
		*q++ = 0;
	DReq req = {
		.method = h->method,
		.path = target,
		.query = q ? q : "",
		.head = h,
		.head_only = c->in_head,
	};
	if (target[0] != '/') {
		dconn_respond_error(c, 400, "INVALID_ARGUMENT", "the target must be a path");
		return;
	}
	if (check_request(d, c, &req) < 0)
		return;
	const char *rest = startswith(target, "/api");
	if (rest && (*rest == 0 || *rest == '/'))
		dash_api_handle(d, c, &req);
	else
		serve_asset(d, c, &req);
}

static void dconn_process(DConn *c)
{
	Dashboard *d = c->d;
	if (c->processing || c->failed)
		return;
	dconn_ref(c);
	c->processing = true;
	while (!c->closing && !c->busy && !c->sse) {
		size_t consumed = 0;
		Http1Result res = { 0 };
		Http1Event ev = http1_parse(c->parser, (const uint8_t *)c->pending.data,
					    c->pending.len, &consumed, &res);
		buf_consume(&c->pending, consumed);
		if (ev == HTTP1_NEED_MORE)
			break;
		if (ev == HTTP1_ERROR) {
			/* Answer, then close once that is written; read nothing more. */
			c->keep_alive = false;
			c->busy = true;
			c->failed = true;
			(void)uv_read_stop((uv_stream_t *)&c->pipe);
			dconn_respond_error(c, res.status ? res.status : 400, "INVALID_ARGUMENT",
					    "%s", strempty(res.error));
			break;
		}
		if (ev == HTTP1_HEAD)
			handle_request(d, c, res.head);
		/* Bodies are not used by the API: skipped. */
	}
	c->processing = false;
	dconn_unref(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	DConn *c = h->data;
	if (buf_reserve(&c->pending, 16384) < 0) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init(c->pending.data + c->pending.len, 16384);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	DConn *c = s->data;
	if (n < 0) {
		dconn_close(c);
		return;
	}
	c->pending.len += (size_t)n;
	if (c->pending.len > 1024 * 1024) { /* a client sending without reading answers */
		dconn_close(c);
		return;
	}
	if (!c->sse)
		dconn_process(c);
	else
		buf_clear(&c->pending);
}

static void on_connection(uv_stream_t *server, int status)
{
	Dashboard *d = server->data;
	if (status < 0)
		return;
	DConn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->d = d;
	c->refs = 1;
	c->pending = BUF_INIT(1024 * 1024 + 16384);
	c->pipe.data = c;
	if (uv_pipe_init(loop_get_uv(d->loop), &c->pipe, 0) < 0) {
		free(c);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 || d->n_conns >= DASH_CONNS_MAX ||
	    http1_parser_new(HTTP1_REQUEST, NULL, &c->parser) < 0) {
		uv_close((uv_handle_t *)&c->pipe, dconn_closed_cb);
		return;
	}
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	d->n_conns++;
	(void)uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* ---- SSE ---- */

void dash_event_id(Dashboard *d, uint64_t n, char buf[static 48])
{
	(void)snprintf(buf, 48, "%s-%" PRIu64, d->boot, n);
}

static bool sse_write(DConn *c, const char *text, size_t len)
{
	if (!dconn_alive(c))
		return false;
	return dconn_write(c, text, len, NULL, 0, false);
}

/*
 * Each SSE client is a cursor into the ring (last_n): events go out from the ring while
 * the socket's queue is below DASH_SSE_QUEUE_HIGH, batched, and again as writes complete.
 * A client whose cursor falls out of the ring (too slow for that long) is dropped: it
 * reconnects, gets "reset", and catches up with the logs API by its cursors.
 */
#define DASH_SSE_QUEUE_HIGH (DASH_SSE_QUEUE_MAX / 2)
#define DASH_SSE_BATCH (64 * 1024)

static void sse_pump(DConn *c)
{
	Dashboard *d = c->d;
	while (dconn_alive(c) && c->last_n < d->n) {
		if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) >= DASH_SSE_QUEUE_HIGH)
			return; /* write_cb calls again */
		uint64_t oldest = d->ring_count ? d->ring[d->ring_head].n : d->n + 1;
		if (c->last_n + 1 < oldest) {
			log_debug("dashboard: dropping an event-stream client that fell behind");
			dconn_close(c);
			return;
		}
		Buf b = BUF_INIT(0);
		while (c->last_n < d->n && b.len < DASH_SSE_BATCH) {
			const DashEvent *e =
			    &d->ring[(d->ring_head + (c->last_n + 1 - oldest)) % DASH_RING_EVENTS];
			if (buf_append(&b, e->text, e->len) < 0)
				break;
			c->last_n++;
		}
		if (b.len == 0) {
			buf_done(&b);
			dconn_close(c);
			return;
		}
		bool ok = dconn_write(c, b.data, b.len, NULL, 0, false);
		buf_done(&b);
		if (!ok)
			return;
	}
}

static char *sse_format(const char *id, const char *event, const char *data, size_t *ret_len)
{
	Buf b = BUF_INIT(0);
	(void)buf_printf(&b, "id: %s\nevent: %s\n", id, event);
	/* JSON text has no raw newlines, but be safe: one data: line per line. */
	for (const char *p = data;;) {
		size_t n = strcspn(p, "\n");
		(void)buf_append_str(&b, "data: ");
		(void)buf_append(&b, p, n);
		(void)buf_append_byte(&b, '\n');
		if (!p[n])
			break;
		p += n + 1;
	}
	if (buf_append_byte(&b, '\n') < 0) {
		buf_done(&b);
		return NULL;
	}
	return buf_steal(&b, ret_len);
}

static void ring_push(Dashboard *d, uint64_t n, char *text, size_t len)
{
	if (!d->ring) {
		free(text);
		return;
	}
	while (d->ring_count > 0 &&
	       (d->ring_count >= DASH_RING_EVENTS || d->ring_bytes + len > DASH_RING_BYTES)) {
		DashEvent *old = &d->ring[d->ring_head];
		d->ring_bytes -= old->len;
		free(old->text);
		old->text = NULL;
		d->ring_head = (d->ring_head + 1) % DASH_RING_EVENTS;
		d->ring_count--;
	}
	DashEvent *e = &d->ring[(d->ring_head + d->ring_count) % DASH_RING_EVENTS];
	*e = (DashEvent){ .n = n, .text = text, .len = len };
	d->ring_count++;
	d->ring_bytes += len;
}

void dash_publish(Dashboard *d, const char *event, const char *data)
{
	/* Ring entries have consecutive numbers: n is taken only once the text exists. */
	char id[48];
	dash_event_id(d, d->n + 1, id);
	size_t len;
	char *text = sse_format(id, event, data, &len);
	if (!text)
		return;
	d->n++;
	ring_push(d, d->n, text, len);
	for (DConn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (c->sse)
			sse_pump(c);
	}
}

void dash_send_to(DConn *c, const char *id, const char *event, const char *data)
{
	size_t len;
	_cleanup_free_ char *text = sse_format(id, event, data, &len);
	if (text)
		(void)sse_write(c, text, len);
}

/* "<boot>-<n>" of this run → n; 0 otherwise. */
static uint64_t parse_last_id(Dashboard *d, const char *id)
{
	const char *rest = id ? startswith(id, d->boot) : NULL;
	if (!rest || *rest != '-')
		return 0;
	uint64_t v = 0;
	for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
		if (v > UINT64_MAX / 10 - 10)
			return 0;
		v = v * 10 + (uint64_t)(*rest - '0');
	}
	return *rest ? 0 : v;
}

void dconn_start_sse(Dashboard *d, DConn *c, const char *last_id)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
				   "Content-Type: text/event-stream; charset=utf-8\r\n"
				   "Cache-Control: no-store\r\n"
				   "X-Content-Type-Options: nosniff\r\n"
				   "X-Accel-Buffering: no\r\n"
				   "Connection: close\r\n\r\n"
				   "retry: 1000\n\n";
	c->sse = true;
	c->busy = false;
	if (!dconn_write(c, head, sizeof head - 1, NULL, 0, false))
		return;
	uint64_t from = parse_last_id(d, last_id);
	uint64_t oldest = d->ring_count ? d->ring[d->ring_head].n : d->n + 1;
	char id[48];
	_cleanup_free_ char *state = dash_state_dump(d);
	if (from > 0 && from <= d->n && from + 1 >= oldest) {
		/* Resume: the state as it is now, then everything after `from` (pumped). The
		 * snapshot and "ready" carry the client's own id, so a drop during the replay
		 * resumes from there again. */
		dash_event_id(d, from, id);
		dash_send_to(c, id, "state", state ? state : "{}");
		c->last_n = from;
	} else {
		/* Fresh, or too old / from an earlier run: "reset" tells a client that had
		 * something to catch up by the bus cursors it holds (the logs API). */
		dash_event_id(d, d->n, id);
		if (last_id)
			dash_send_to(c, id, "reset", "{\"reason\":\"the event history moved on\"}");
		dash_send_to(c, id, "state", state ? state : "{}");
		c->last_n = d->n;
	}
	dash_send_to(c, id, "ready", "{}");
	sse_pump(c);
}

static void on_heartbeat(LoopTimer *t, void *userdata)
{
	Dashboard *d = userdata;
	for (DConn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (c->sse)
			(void)sse_write(c, ": heartbeat\n\n", 13);
	}
}

void dashboard_proxy_request(Dashboard *d, const ProxyRequestLog *log)
{
	if (!d || !log)
		return;
	/* The dashboard's own traffic is not news. */
	if (dash_addr_set && streq_ptr(log->upstream, dash_addr_text))
		return;
	json_t *j =
	    json_pack("{s:s,s:s,s:s,s:i,s:I,s:s,s:s,s:I,s:I}", "method", strempty(log->method),
		      "host", strempty(log->host), "path", strempty(log->path), "status",
		      (int)log->status, "duration_usec", (json_int_t)log->duration_usec, "protocol",
		      strempty(log->protocol), "upstream", strempty(log->upstream), "bytes",
		      (json_int_t)log->response_bytes, "time_usec", (json_int_t)now_realtime());
	_cleanup_free_ char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (s)
		dash_publish(d, "request", s);
}

/* ---- lifetime ---- */

static void server_closed_cb(uv_handle_t *h)
{
	free(h);
}

int dashboard_new(Loop *loop, const char *runtime_dir, Dashboard **ret)
{
	_cleanup_free_ Dashboard *d = calloc(1, sizeof(Dashboard));
	if (!d)
		return -ENOMEM;
	d->loop = loop;
	random_hex(d->boot, 8);
	random_hex(d->csrf, 32);
	d->ring = calloc(DASH_RING_EVENTS, sizeof(DashEvent));
	d->path = path_join(runtime_dir, "proxyd-dashboard.sock");
	d->projects = json_array();
	if (!d->ring || !d->path || !d->projects) {
		free(d->ring);
		free(d->path);
		json_decref(d->projects);
		return -ENOMEM;
	}
	Dashboard *dd = TAKE_PTR(d);
	int r;
	if (strlen(dd->path) >= sizeof(dash_addr.sun_path)) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	dd->server = calloc(1, sizeof(uv_pipe_t));
	if (!dd->server) {
		r = -ENOMEM;
		goto fail;
	}
	r = uv_pipe_init(loop_get_uv(loop), dd->server, 0);
	if (r < 0) {
		free(dd->server);
		dd->server = NULL;
		goto fail;
	}
	dd->server->data = dd;
	(void)unlink(dd->path); /* a stale socket of an earlier run: the lock says we own it */
	mode_t old = umask(0077);
	r = uv_pipe_bind(dd->server, dd->path);
	umask(old);
	if (r >= 0 && chmod(dd->path, 0600) < 0)
		r = -errno;
	if (r >= 0)
		r = uv_listen((uv_stream_t *)dd->server, 64, on_connection);
	if (r < 0)
		goto fail;
	r = loop_timer_new(loop, DASH_HEARTBEAT_MS, DASH_HEARTBEAT_MS, on_heartbeat, dd,
			   &dd->heartbeat);
	if (r < 0)
		goto fail;
	r = dash_superd_start(dd, runtime_dir);
	if (r < 0)
		goto fail;

	memset(&dash_addr, 0, sizeof dash_addr);
	dash_addr.sun_family = AF_UNIX;
	memcpy(dash_addr.sun_path, dd->path, strlen(dd->path) + 1);
	dash_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(dd->path) + 1);
	(void)strfmt(dash_addr_text, sizeof dash_addr_text, "unix:%s", dd->path);
	dash_addr_set = true;
	*ret = dd;
	return 0;
fail:
	dashboard_free(dd);
	return r;
}

Dashboard *dashboard_free(Dashboard *d)
{
	if (!d)
		return NULL;
	dash_addr_set = false;
	dash_superd_stop(d);
	while (d->conns)
		dconn_close(d->conns);
	if (d->server) {
		uv_close((uv_handle_t *)d->server, server_closed_cb);
		(void)unlink(d->path);
	}
	loop_timer_free(d->heartbeat);
	for (size_t i = 0; d->ring && i < d->ring_count; i++)
		free(d->ring[(d->ring_head + i) % DASH_RING_EVENTS].text);
	free(d->ring);
	json_decref(d->projects);
	free(d->path);
	free(d);
	return NULL;
}
