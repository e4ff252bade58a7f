/* SPDX-License-Identifier: MIT */
/*
 * h2-server.c against a real nghttp2 client session, in memory: the Conn and the
 * exchange are fakes defined here (the linker then takes only h2-server.o from the
 * library), so each test sees exactly what the server sent and what it asked of the
 * exchange.
 */
#include <nghttp2/nghttp2.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conn.h"
#include "exchange.h"
#include "parse-util.h"
#include "proxyd.h"
#include "strutil.h"
#include "test.h"

/* ---- fake Conn ---- */

struct Conn {
	Buf out;
	size_t full_at; /* conn_write_full() once this much is pending; 0 = never */
	bool close_called, paused, tls;
	uint64_t idle_ms, deadline_ms;
	void (*deadline_cb)(void *proto);
	void *proto;
	const ConnProtocol *ops;
};

int conn_write(Conn *c, const void *p, size_t n)
{
	return buf_append(&c->out, p, n) < 0 ? -ENOMEM : 0;
}
bool conn_write_full(const Conn *c)
{
	return c->full_at && c->out.len >= c->full_at;
}
void conn_pause_read(Conn *c)
{
	c->paused = true;
}
void conn_resume_read(Conn *c)
{
	c->paused = false;
}
void conn_close(Conn *c)
{
	c->close_called = true;
}
void conn_set_idle_timeout(Conn *c, uint64_t ms)
{
	c->idle_ms = ms;
}
void conn_set_deadline(Conn *c, uint64_t ms, void (*cb)(void *proto))
{
	c->deadline_ms = ms;
	c->deadline_cb = cb;
}
static ProxydConfig config;
static int dummy;

Worker *conn_worker(Conn *c)
{
	return (Worker *)&dummy;
}
const struct sockaddr *conn_peer(const Conn *c, socklen_t *len)
{
	static struct sockaddr_in sin = { .sin_family = AF_INET };
	*len = sizeof(sin);
	return (const struct sockaddr *)&sin;
}
bool conn_is_tls(const Conn *c)
{
	return c->tls;
}
Proxyd *worker_proxyd(Worker *w)
{
	return (Proxyd *)w;
}
const ProxydConfig *proxyd_config(Proxyd *p)
{
	return &config;
}

/* ---- fake exchange ---- */

struct Exchange {
	const DownstreamOps *ops;
	void *ds;
	char method[16], path[256], authority[256], upgrade[32];
	Buf fields; /* "name: value\n" */
	Http1BodyKind body;
	uint64_t content_length;
	bool extended, tls, ended, cancelled, done, resumed;
	Buf received;
	size_t accept_until; /* exchange_send() says "full" past this many bytes; 0 = never */
};

#define MAX_X 512
static Exchange *xs[MAX_X];
static size_t n_xs;
static size_t accept_default;

int exchange_start(Worker *w, const ExchangeRequest *req, const DownstreamOps *ops, void *ds,
		   Exchange **ret)
{
	Exchange *x = calloc(1, sizeof(*x));
	ASSERT_TRUE(x && n_xs < MAX_X);
	x->ops = ops;
	x->ds = ds;
	x->fields = BUF_INIT(0);
	x->received = BUF_INIT(0);
	snprintf(x->method, sizeof(x->method), "%s", req->method);
	snprintf(x->path, sizeof(x->path), "%s", req->path);
	snprintf(x->authority, sizeof(x->authority), "%s", req->authority);
	snprintf(x->upgrade, sizeof(x->upgrade), "%s", req->upgrade ?: "");
	for (size_t i = 0; i < req->n_fields; i++)
		ASSERT_OK(
		    buf_printf(&x->fields, "%s: %s\n", req->fields[i].name, req->fields[i].value));
	x->body = req->body;
	x->content_length = req->content_length;
	x->extended = req->extended_connect;
	x->tls = req->tls;
	x->accept_until = accept_default;
	xs[n_xs++] = x;
	*ret = x;
	return 0;
}

bool exchange_send(Exchange *x, const uint8_t *p, size_t n)
{
	ASSERT_FALSE(x->done);
	ASSERT_OK(buf_append(&x->received, p, n));
	return !x->accept_until || x->received.len < x->accept_until;
}
void exchange_send_end(Exchange *x)
{
	ASSERT_FALSE(x->done);
	x->ended = true;
}
void exchange_resume_response(Exchange *x)
{
	x->resumed = true;
}
void exchange_cancel(Exchange *x)
{
	ASSERT_FALSE(x->done);
	x->cancelled = true;
	x->done = true;
	x->ops->done(x->ds);
}

static void x_respond(Exchange *x, int status, const HttpField *f, size_t n, const char *body,
		      bool end)
{
	x->ops->head(x->ds, status, f, n, body ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE,
		     body ? strlen(body) : 0);
	if (body && *body)
		x->ops->data(x->ds, (const uint8_t *)body, strlen(body));
	if (end) {
		if (body)
			x->ops->end(x->ds);
		x->done = true;
		x->ops->done(x->ds);
	}
}

/* ---- the client side ---- */

typedef struct Resp {
	int status;
	char headers[1024];
	Buf body;
	bool closed;
	uint32_t error_code;
} Resp;

#define MAX_RESP 1200
static Resp resp[MAX_RESP];
static uint32_t goaway_code = UINT32_MAX;

static Resp *resp_of(int32_t id)
{
	ASSERT_TRUE(id > 0 && (size_t)(id / 2) < MAX_RESP);
	return &resp[id / 2];
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		       void *ud)
{
	Resp *r = resp_of(f->hd.stream_id);
	if (namelen == 7 && memcmp(name, ":status", 7) == 0)
		(void)safe_atoi((const char *)value, &r->status); /* nghttp2 NUL-terminates */
	else {
		size_t l = strlen(r->headers);
		snprintf(r->headers + l, sizeof(r->headers) - l, "%.*s: %.*s\n", (int)namelen, name,
			 (int)valuelen, value);
	}
	return 0;
}
static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		     void *ud)
{
	ASSERT_OK(buf_append(&resp_of(id)->body, data, len));
	return 0;
}
static int c_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	resp_of(id)->closed = true;
	resp_of(id)->error_code = code;
	return 0;
}
static int c_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	if (f->hd.type == NGHTTP2_GOAWAY)
		goaway_code = f->goaway.error_code;
	return 0;
}

typedef struct Pair {
	Conn conn;
	nghttp2_session *client;
} Pair;

static void pair_init(Pair *p, uint32_t client_window)
{
	memset(p, 0, sizeof(*p));
	memset(resp, 0, sizeof(resp));
	n_xs = 0;
	accept_default = 0;
	if (config.h2_max_concurrent_streams == 0)
		config = (ProxydConfig){ .h2_max_concurrent_streams = 128,
					 .h2_max_header_list = 64 * 1024,
					 .client_idle_ms = 75000,
					 .header_timeout_ms = 30000 };
	goaway_code = UINT32_MAX;
	p->conn.out = BUF_INIT(0);

	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	ASSERT_EQ(nghttp2_session_callbacks_new(&cbs), 0);
	ASSERT_EQ(nghttp2_option_new(&opt), 0);
	nghttp2_option_set_no_http_messaging(opt, 1);
	nghttp2_option_set_peer_max_concurrent_streams(opt, 100000);
	nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
	nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_on_frame);
	ASSERT_EQ(nghttp2_session_client_new2(&p->client, cbs, NULL, opt), 0);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, client_window } };
	ASSERT_EQ(nghttp2_submit_settings(p->client, NGHTTP2_FLAG_NONE, iv, 1), 0);

	/* The client sends the preface itself: nothing was read before attach. */
	ASSERT_OK(h2_server_attach(&p->conn, NULL, 0, &p->conn.proto, &p->conn.ops));
}

/* Client → server only (the client does not see the server's SETTINGS yet). */
static void client_send(Pair *p)
{
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(p->client, &data);
		ASSERT_TRUE(n >= 0);
		if (n == 0)
			break;
		p->conn.ops->data(p->conn.proto, data, (size_t)n);
	}
}

/* Until neither side has anything more to say. */
static void pump(Pair *p)
{
	for (int round = 0; round < 10000; round++) {
		size_t before = p->conn.out.len;
		client_send(p);
		if (p->conn.out.len == 0 && before == 0)
			return;
		size_t n = p->conn.out.len;
		ssize_t r =
		    nghttp2_session_mem_recv(p->client, (const uint8_t *)p->conn.out.data, n);
		ASSERT_EQ(r, (ssize_t)n);
		bool was_full = conn_write_full(&p->conn);
		buf_clear(&p->conn.out);
		if (was_full)
			p->conn.ops->writable(p->conn.proto);
		if (!nghttp2_session_want_write(p->client) && p->conn.out.len == 0)
			return;
	}
	test_fail(__FILE__, __LINE__, "pump did not settle");
}

static void pair_done(Pair *p)
{
	p->conn.ops->closed(p->conn.proto);
	nghttp2_session_del(p->client);
	for (size_t i = 0; i < n_xs; i++) {
		ASSERT_TRUE(xs[i]->done);
		buf_done(&xs[i]->fields);
		buf_done(&xs[i]->received);
		free(xs[i]);
	}
	buf_done(&p->conn.out);
	for (size_t i = 0; i < MAX_RESP; i++)
		buf_done(&resp[i].body);
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                    \
	}

static int32_t submit(Pair *p, const nghttp2_nv *nv, size_t n, nghttp2_data_provider *prd)
{
	int32_t id = nghttp2_submit_request(p->client, NULL, nv, n, prd, NULL);
	ASSERT_TRUE(id > 0);
	return id;
}

static int32_t submit_get(Pair *p, const char *path)
{
	nghttp2_nv nv[] = {
		NV(":method", "GET"),
		NV(":scheme", "https"),
		NV(":authority", "web.shop.localhost"),
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0 },
	};
	return submit(p, nv, ELEMENTSOF(nv), NULL);
}

TEST(settings_advertised)
{
	Pair p;
	pair_init(&p, 65535);
	pump(&p);
	ASSERT_EQ(
	    nghttp2_session_get_remote_settings(p.client, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL),
	    1);
	ASSERT_EQ(
	    nghttp2_session_get_remote_settings(p.client, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
	    128);
	ASSERT_EQ(
	    nghttp2_session_get_remote_settings(p.client, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE),
	    1 << 20);
	ASSERT_EQ(
	    nghttp2_session_get_remote_settings(p.client, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE),
	    65536);
	ASSERT_TRUE(nghttp2_session_get_remote_window_size(p.client) >= (16 << 20) - 1);
	ASSERT_TRUE(p.conn.idle_ms > 0);
	pair_done(&p);
}

TEST(get_translated_and_answered)
{
	Pair p;
	pair_init(&p, 65535);
	nghttp2_nv nv[] = {
		NV(":method", "GET"),
		NV(":scheme", "https"),
		NV(":authority", "web.shop.localhost:8443"),
		NV(":path", "/a?b=1"),
		NV("cookie", "a=1"),
		NV("accept", "text/html"),
		NV("cookie", "b=2"),
		NV("host", "other"),
	};
	int32_t id = submit(&p, nv, ELEMENTSOF(nv), NULL);
	pump(&p);
	ASSERT_EQ(n_xs, 1);
	Exchange *x = xs[0];
	ASSERT_TRUE(streq(x->method, "GET"));
	ASSERT_TRUE(streq(x->path, "/a?b=1"));
	ASSERT_TRUE(streq(x->authority, "web.shop.localhost:8443"));
	ASSERT_TRUE(streq(x->fields.data, "accept: text/html\ncookie: a=1; b=2\n"));
	ASSERT_EQ(x->body, HTTP1_BODY_NONE);
	ASSERT_FALSE(x->extended);
	ASSERT_EQ(p.conn.idle_ms, 0); /* a stream is open: no idle timeout */

	HttpField f[] = {
		{ "Content-Type", "text/plain", 12, 10 },
		{ "Connection", "close", 10, 5 },
		{ "X-Up", "yes", 4, 3 },
		{ "Transfer-Encoding", "chunked", 17, 7 },
	};
	x_respond(x, 200, f, ELEMENTSOF(f), "hello", true);
	pump(&p);
	Resp *r = resp_of(id);
	ASSERT_EQ(r->status, 200);
	ASSERT_TRUE(streq(r->headers, "content-type: text/plain\nx-up: yes\n"));
	ASSERT_TRUE(r->body.len == 5 && memcmp(r->body.data, "hello", 5) == 0);
	ASSERT_TRUE(r->closed);
	ASSERT_EQ(r->error_code, 0);
	ASSERT_TRUE(p.conn.idle_ms > 0);
	pair_done(&p);
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	size_t *left = src->ptr;
	size_t n = len < *left ? len : *left;
	memset(buf, 'x', n);
	*left -= n;
	if (*left == 0)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

TEST(post_bodies)
{
	Pair p;
	pair_init(&p, 65535);
	size_t left1 = 100000, left2 = 3000;
	nghttp2_data_provider prd1 = { .source.ptr = &left1, .read_callback = body_read };
	nghttp2_data_provider prd2 = { .source.ptr = &left2, .read_callback = body_read };
	nghttp2_nv nv1[] = { NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "a"),
			     NV(":path", "/up"), NV("content-length", "100000") };
	nghttp2_nv nv2[] = { NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "a"),
			     NV(":path", "/up") };
	submit(&p, nv1, ELEMENTSOF(nv1), &prd1);
	submit(&p, nv2, ELEMENTSOF(nv2), &prd2);
	pump(&p);
	ASSERT_EQ(n_xs, 2);
	ASSERT_EQ(xs[0]->body, HTTP1_BODY_LENGTH);
	ASSERT_EQ(xs[0]->content_length, 100000);
	ASSERT_EQ(xs[0]->received.len, 100000);
	ASSERT_TRUE(xs[0]->ended);
	ASSERT_FALSE(xs[0]->tls);
	ASSERT_EQ(xs[1]->body, HTTP1_BODY_CHUNKED);
	ASSERT_EQ(xs[1]->received.len, 3000);
	ASSERT_TRUE(xs[1]->ended);
	x_respond(xs[0], 204, NULL, 0, NULL, true);
	x_respond(xs[1], 201, NULL, 0, "", true);
	pump(&p);
	ASSERT_EQ(resp[0].status, 204);
	ASSERT_EQ(resp[1].status, 201);
	ASSERT_TRUE(resp[0].closed && resp[1].closed);
	pair_done(&p);
}

TEST(request_body_backpressure)
{
	Pair p;
	pair_init(&p, 65535);
	pump(&p); /* the client learns the 1 MiB window */
	size_t left = 5u << 20;
	nghttp2_data_provider prd = { .source.ptr = &left, .read_callback = body_read };
	nghttp2_nv nv[] = { NV(":method", "PUT"), NV(":scheme", "http"), NV(":authority", "a"),
			    NV(":path", "/big") };
	/* The exchange says "full" at once: the client must stop after one stream window. */
	accept_default = 1;
	submit(&p, nv, ELEMENTSOF(nv), &prd);
	pump(&p);
	ASSERT_EQ(n_xs, 1);
	Exchange *x = xs[0];
	ASSERT_TRUE(x->received.len <= (1u << 20));
	ASSERT_TRUE(x->received.len >= (1u << 19));
	ASSERT_FALSE(x->ended);
	size_t stalled = x->received.len;
	pump(&p);
	ASSERT_EQ(x->received.len, stalled);

	/* Resumed: the rest flows. */
	x->accept_until = 0;
	x->ops->resume_request(x->ds);
	for (int i = 0; i < 20 && !x->ended; i++)
		pump(&p);
	ASSERT_TRUE(x->ended);
	ASSERT_EQ(x->received.len, 5u << 20);
	x_respond(x, 200, NULL, 0, "ok", true);
	pump(&p);
	ASSERT_EQ(resp[0].status, 200);
	pair_done(&p);
}

TEST(response_backpressure)
{
	Pair p;
	pair_init(&p, 1 << 30); /* the client never limits us: the conn does */
	p.conn.full_at = 64 * 1024;
	int32_t id = submit_get(&p, "/dl");
	client_send(&p);
	Exchange *x = xs[0];
	x->ops->head(x->ds, 200, NULL, 0, HTTP1_BODY_CHUNKED, 0);
	static uint8_t block[16384];
	size_t sent = 0;
	while (x->ops->data(x->ds, block, sizeof(block)))
		sent += sizeof(block);
	sent += sizeof(block);
	/* The stream's buffer filled while the conn was full: bounded. */
	ASSERT_TRUE(sent <= 256 * 1024);
	ASSERT_FALSE(x->resumed);
	pump(&p);
	ASSERT_TRUE(x->resumed);
	x->ops->end(x->ds);
	x->done = true;
	x->ops->done(x->ds);
	pump(&p);
	ASSERT_EQ(resp_of(id)->body.len, sent);
	ASSERT_TRUE(resp_of(id)->closed);
	pair_done(&p);
}

TEST(extended_connect_tunnel)
{
	Pair p;
	pair_init(&p, 65535);
	pump(&p);
	nghttp2_nv nv[] = { NV(":method", "CONNECT"), NV(":protocol", "websocket"),
			    NV(":scheme", "https"),   NV(":authority", "ws.localhost"),
			    NV(":path", "/chat"),     NV("sec-websocket-version", "13") };
	size_t left = 10;
	nghttp2_data_provider prd = { .source.ptr = &left, .read_callback = body_read };
	int32_t id = submit(&p, nv, ELEMENTSOF(nv), &prd);
	pump(&p);
	ASSERT_EQ(n_xs, 1);
	Exchange *x = xs[0];
	ASSERT_TRUE(x->extended);
	ASSERT_TRUE(streq(x->upgrade, "websocket"));
	ASSERT_TRUE(streq(x->method, "CONNECT"));
	ASSERT_TRUE(streq(x->path, "/chat"));
	ASSERT_EQ(x->body, HTTP1_BODY_CHUNKED);
	ASSERT_EQ(x->received.len, 10);
	ASSERT_TRUE(x->ended);

	HttpField f[] = { { "Upgrade", "websocket", 7, 9 },
			  { "Connection", "Upgrade", 10, 7 },
			  { "Sec-WebSocket-Accept", "abc", 20, 3 } };
	x->ops->head(x->ds, 101, f, ELEMENTSOF(f), HTTP1_BODY_UNTIL_CLOSE, 0);
	x->ops->data(x->ds, (const uint8_t *)"\x81\x02hi", 4);
	pump(&p);
	Resp *r = resp_of(id);
	ASSERT_EQ(r->status, 200);
	ASSERT_TRUE(streq(r->headers, ""));
	ASSERT_EQ(r->body.len, 4);
	ASSERT_FALSE(r->closed);
	x->ops->end(x->ds);
	x->done = true;
	x->ops->done(x->ds);
	pump(&p);
	ASSERT_TRUE(r->closed);
	pair_done(&p);
}

TEST(streams_over_the_limit_refused)
{
	Pair p;
	pair_init(&p, 65535);
	/* All at once, before the client has seen our SETTINGS. */
	for (int i = 0; i < 300; i++)
		submit_get(&p, "/x");
	client_send(&p);
	ASSERT_EQ(n_xs, 128);
	pump(&p);
	size_t refused = 0;
	for (int i = 0; i < 300; i++)
		if (resp[i].closed && resp[i].error_code == NGHTTP2_REFUSED_STREAM)
			refused++;
	ASSERT_EQ(refused, 300 - 128);
	for (size_t i = 0; i < n_xs; i++)
		x_respond(xs[i], 200, NULL, 0, "ok", true);
	pump(&p);
	/* The connection is still good. */
	int32_t id = submit_get(&p, "/after");
	pump(&p);
	ASSERT_EQ(n_xs, 129);
	x_respond(xs[128], 200, NULL, 0, "ok", true);
	pump(&p);
	ASSERT_EQ(resp_of(id)->status, 200);
	ASSERT_EQ(goaway_code, UINT32_MAX);
	pair_done(&p);
}

TEST(header_list_too_large)
{
	Pair p;
	pair_init(&p, 65535);
	static char big[70000];
	memset(big, 'a', sizeof(big) - 1);
	nghttp2_nv nv[] = { NV(":method", "GET"),
			    NV(":scheme", "https"),
			    NV(":authority", "a"),
			    NV(":path", "/"),
			    { (uint8_t *)"x-big", (uint8_t *)big, 5, 40000, 0 },
			    { (uint8_t *)"x-big2", (uint8_t *)big, 6, 40000, 0 } };
	int32_t id = submit(&p, nv, ELEMENTSOF(nv), NULL);
	pump(&p);
	ASSERT_EQ(n_xs, 0);
	ASSERT_EQ(resp_of(id)->status, 431);
	pair_done(&p);
}

TEST(connection_specific_field_is_stream_error)
{
	Pair p;
	pair_init(&p, 65535);
	nghttp2_nv nv[] = { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "a"),
			    NV(":path", "/"), NV("connection", "keep-alive") };
	int32_t id = submit(&p, nv, ELEMENTSOF(nv), NULL);
	nghttp2_nv nv2[] = { NV(":method", "GET"), NV(":scheme", "https"), NV(":path", "/") };
	int32_t id2 = submit(&p, nv2, ELEMENTSOF(nv2), NULL); /* no :authority, no host */
	nghttp2_nv nv3[] = { NV(":method", "CONNECT"), NV(":authority", "a:443") };
	int32_t id3 = submit(&p, nv3, ELEMENTSOF(nv3), NULL);
	int32_t id4 = submit_get(&p, "/fine");
	pump(&p);
	ASSERT_TRUE(resp_of(id)->closed);
	ASSERT_EQ(resp_of(id)->error_code, NGHTTP2_PROTOCOL_ERROR);
	ASSERT_TRUE(resp_of(id2)->closed);
	ASSERT_EQ(resp_of(id2)->error_code, NGHTTP2_PROTOCOL_ERROR);
	ASSERT_EQ(resp_of(id3)->status, 405);
	ASSERT_EQ(n_xs, 1);
	x_respond(xs[0], 200, NULL, 0, "ok", true);
	pump(&p);
	ASSERT_EQ(resp_of(id4)->status, 200);
	pair_done(&p);
}

TEST(client_reset_cancels_exchange)
{
	Pair p;
	pair_init(&p, 65535);
	int32_t id = submit_get(&p, "/slow");
	pump(&p);
	ASSERT_EQ(n_xs, 1);
	ASSERT_EQ(nghttp2_submit_rst_stream(p.client, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
	pump(&p);
	ASSERT_TRUE(xs[0]->cancelled);
	pair_done(&p);
}

TEST(exchange_abort_resets_stream)
{
	Pair p;
	pair_init(&p, 65535);
	int32_t id = submit_get(&p, "/x");
	pump(&p);
	Exchange *x = xs[0];
	x->ops->head(x->ds, 200, NULL, 0, HTTP1_BODY_LENGTH, 100);
	x->ops->data(x->ds, (const uint8_t *)"abc", 3);
	x->ops->abort(x->ds);
	x->done = true;
	x->ops->done(x->ds);
	pump(&p);
	ASSERT_TRUE(resp_of(id)->closed);
	ASSERT_EQ(resp_of(id)->error_code, NGHTTP2_INTERNAL_ERROR);
	pair_done(&p);
}

TEST(close_with_live_exchanges)
{
	Pair p;
	pair_init(&p, 65535);
	submit_get(&p, "/1");
	submit_get(&p, "/2");
	pump(&p);
	ASSERT_EQ(n_xs, 2);
	xs[0]->ops->head(xs[0]->ds, 200, NULL, 0, HTTP1_BODY_CHUNKED, 0);
	pair_done(&p); /* asserts both exchanges were cancelled (done) */
}

TEST(garbage_frame_ends_connection)
{
	Pair p;
	pair_init(&p, 65535);
	pump(&p);
	/* A DATA frame on stream 0: connection error PROTOCOL_ERROR. */
	static const uint8_t bad[] = { 0, 0, 4, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 'd' };
	p.conn.ops->data(p.conn.proto, bad, sizeof(bad));
	ASSERT_TRUE(p.conn.close_called);
	ASSERT_TRUE(p.conn.out.len > 0); /* GOAWAY */
	ASSERT_EQ(
	    nghttp2_session_mem_recv(p.client, (const uint8_t *)p.conn.out.data, p.conn.out.len),
	    (ssize_t)p.conn.out.len);
	ASSERT_EQ(goaway_code, NGHTTP2_PROTOCOL_ERROR);
	buf_clear(&p.conn.out);
	pair_done(&p);
}

TEST(ping_flood_calmed)
{
	Pair p;
	pair_init(&p, 65535);
	pump(&p);
	for (int i = 0; i < 5000 && !p.conn.close_called; i++) {
		ASSERT_EQ(nghttp2_submit_ping(p.client, NGHTTP2_FLAG_NONE, NULL), 0);
		client_send(&p);
		buf_clear(&p.conn.out);
	}
	ASSERT_TRUE(p.conn.close_called);
	pair_done(&p);
}

TEST(shutdown_finishes_streams_in_flight)
{
	Pair p;
	pair_init(&p, 65535);
	int32_t id = submit_get(&p, "/in-flight");
	pump(&p);
	ASSERT_EQ(n_xs, 1);
	p.conn.ops->shutdown(p.conn.proto);
	pump(&p);
	ASSERT_EQ(goaway_code, NGHTTP2_NO_ERROR);
	ASSERT_FALSE(p.conn.close_called);
	x_respond(xs[0], 200, NULL, 0, "bye", true);
	pump(&p);
	ASSERT_EQ(resp_of(id)->status, 200);
	ASSERT_TRUE(p.conn.close_called);
	pair_done(&p);
}

static void frame_hd(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t id)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(id >> 24);
	p[6] = (uint8_t)(id >> 16);
	p[7] = (uint8_t)(id >> 8);
	p[8] = (uint8_t)id;
}

TEST(endless_header_block_calmed)
{
	Pair p;
	pair_init(&p, 65535);
	pump(&p);
	/* 300 fields of 1 KB in one header block, cut into 16 KB frames: far past the
	 * header list limit and past any sane number of CONTINUATION frames. */
	static char value[1000];
	memset(value, 'v', sizeof(value));
	nghttp2_nv nv[304] = { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "a"),
			       NV(":path", "/") };
	char names[300][8];
	for (int i = 0; i < 300; i++) {
		snprintf(names[i], sizeof(names[i]), "x-%d", i);
		nv[4 + i] = (nghttp2_nv){ (uint8_t *)names[i], (uint8_t *)value, strlen(names[i]),
					  sizeof(value), NGHTTP2_NV_FLAG_NO_INDEX };
	}
	nghttp2_hd_deflater *d;
	ASSERT_EQ(nghttp2_hd_deflate_new(&d, 4096), 0);
	size_t cap = nghttp2_hd_deflate_bound(d, nv, ELEMENTSOF(nv));
	uint8_t *block = malloc(cap);
	ASSERT_TRUE(block);
	ssize_t blen = nghttp2_hd_deflate_hd(d, block, cap, nv, ELEMENTSOF(nv));
	ASSERT_TRUE(blen > 256 * 1024);
	nghttp2_hd_deflate_del(d);

	for (size_t off = 0; off < (size_t)blen && !p.conn.close_called; off += 16384) {
		size_t n = MIN((size_t)blen - off, (size_t)16384);
		uint8_t hd[9];
		frame_hd(hd, n, off == 0 ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION,
			 off + n == (size_t)blen ? NGHTTP2_FLAG_END_HEADERS : 0, 1);
		p.conn.ops->data(p.conn.proto, hd, sizeof(hd));
		p.conn.ops->data(p.conn.proto, block + off, n);
	}
	free(block);
	ASSERT_TRUE(p.conn.close_called);
	ASSERT_EQ(
	    nghttp2_session_mem_recv(p.client, (const uint8_t *)p.conn.out.data, p.conn.out.len),
	    (ssize_t)p.conn.out.len);
	ASSERT_EQ(goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
	buf_clear(&p.conn.out);
	pair_done(&p);
}

TEST(unfinished_header_block_times_out)
{
	Pair p;
	config = (ProxydConfig){ .h2_max_concurrent_streams = 128,
				 .h2_max_header_list = 64 * 1024,
				 .client_idle_ms = 75000,
				 .header_timeout_ms = 20 };
	pair_init(&p, 65535);
	pump(&p);
	ASSERT_TRUE(p.conn.deadline_cb == NULL);
	/* A complete request arms and disarms the deadline. */
	submit_get(&p, "/a");
	client_send(&p);
	ASSERT_EQ(n_xs, 1);
	ASSERT_EQ(p.conn.deadline_ms, 0);
	/* HEADERS without END_HEADERS, and then nothing. */
	static const uint8_t partial[] = { 0, 0, 1, NGHTTP2_HEADERS, 0, 0, 0, 0, 3, 0x82 };
	p.conn.ops->data(p.conn.proto, partial, sizeof(partial));
	ASSERT_TRUE(p.conn.deadline_ms > 0 && p.conn.deadline_ms <= 20);
	ASSERT_TRUE(p.conn.deadline_cb != NULL);
	ASSERT_FALSE(p.conn.close_called);
	(void)usleep(30 * 1000); /* the fake Conn has no timer: let the deadline pass */
	p.conn.deadline_cb(p.conn.proto);
	ASSERT_TRUE(p.conn.close_called);
	ASSERT_EQ(
	    nghttp2_session_mem_recv(p.client, (const uint8_t *)p.conn.out.data, p.conn.out.len),
	    (ssize_t)p.conn.out.len);
	ASSERT_EQ(goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
	buf_clear(&p.conn.out);
	pair_done(&p);
}

TEST(stream_reset_inside_an_op_cancels_later)
{
	Pair p;
	pair_init(&p, 65535);
	int32_t id = submit_get(&p, "/x");
	pump(&p);
	Exchange *x = xs[0];
	/* 101 without extended CONNECT: the stream is reset from inside ops->head, and the
	 * exchange must not be cancelled while it is still calling us. */
	x->ops->head(x->ds, 101, NULL, 0, HTTP1_BODY_UNTIL_CLOSE, 0);
	ASSERT_FALSE(x->cancelled);
	ASSERT_FALSE(x->ops->data(x->ds, (const uint8_t *)"x", 1));
	ASSERT_EQ(p.conn.deadline_ms, 1);
	p.conn.deadline_cb(p.conn.proto);
	ASSERT_TRUE(x->cancelled);
	pump(&p);
	ASSERT_EQ(resp_of(id)->error_code, NGHTTP2_INTERNAL_ERROR);
	pair_done(&p);
}

TEST_MAIN();
