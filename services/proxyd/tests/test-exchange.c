/* SPDX-License-Identifier: MIT */
/*
 * The upstream request head (upstream_build_request_head) and proxyd's local responses
 * (local.c) through a recording DownstreamOps. The proxying itself is covered end to
 * end by integration/test_proxyd_proxy.py.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "local.h"
#include "strutil.h"
#include "test.h"
#include "upstream.h"

#define F(n, v)                                                                                    \
	{                                                                                          \
		.name = n, .value = v, .name_len = sizeof(n) - 1, .value_len = sizeof(v) - 1       \
	}

static struct sockaddr_in v4(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(40000) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	return a;
}

static char *build(const ExchangeRequest *req)
{
	Buf b = BUF_INIT(0);
	ASSERT_OK(upstream_build_request_head(req, &b));
	return buf_steal(&b, NULL);
}

TEST(head_forwarding_fields)
{
	struct sockaddr_in a = v4();
	HttpField fields[] = {
		F("Host", "web.shop.localhost:8080"),
		F("Accept", "*/*"),
		F("Connection", "keep-alive, X-Drop"),
		F("X-Drop", "1"),
		F("Keep-Alive", "timeout=5"),
		F("TE", "trailers"),
		F("X-Forwarded-For", "10.0.0.1"),
		F("X-Forwarded-Proto", "gopher"),
		F("Forwarded", "for=10.0.0.1"),
		F("Expect", "100-continue"),
		F("Content-Length", "5"),
	};
	ExchangeRequest req = {
		.protocol = EXCHANGE_HTTP1_1,
		.tls = true,
		.client = (struct sockaddr *)&a,
		.client_len = sizeof(a),
		.method = "POST",
		.path = "/a?b=c",
		.authority = "web.shop.localhost:8080",
		.fields = fields,
		.n_fields = ELEMENTSOF(fields),
		.body = HTTP1_BODY_LENGTH,
		.content_length = 5,
	};
	_cleanup_free_ char *h = build(&req);
	ASSERT_TRUE(startswith(h, "POST /a?b=c HTTP/1.1\r\nHost: web.shop.localhost:8080\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nAccept: */*\r\n"));
	ASSERT_TRUE(!strstr(h, "X-Drop") && !strstr(h, "Keep-Alive") && !strstr(h, "TE:"));
	ASSERT_TRUE(!strstr(h, "Connection") && !strstr(h, "Expect") && !strstr(h, "gopher"));
	ASSERT_TRUE(strstr(h, "\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nX-Forwarded-Proto: https\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nX-Forwarded-Host: web.shop.localhost:8080\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nForwarded: for=10.0.0.1, "
			      "for=127.0.0.1;proto=https;host=\"web.shop.localhost:8080\"\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nContent-Length: 5\r\n\r\n"));
	/* Exactly one Content-Length: the client's is replaced by ours. */
	ASSERT_TRUE(strstr(strstr(h, "Content-Length") + 1, "Content-Length") == NULL);
	ASSERT_TRUE(endswith(h, "\r\n\r\n"));
}

TEST(head_ipv6_client_and_chunked_body)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	ExchangeRequest req = {
		.protocol = EXCHANGE_H2,
		.client = (struct sockaddr *)&a,
		.client_len = sizeof(a),
		.method = "PUT",
		.path = "/upload",
		.authority = "web.shop.localhost",
		.body = HTTP1_BODY_CHUNKED,
	};
	_cleanup_free_ char *h = build(&req);
	ASSERT_TRUE(strstr(h, "\r\nX-Forwarded-For: ::1\r\n"));
	ASSERT_TRUE(
	    strstr(h, "\r\nForwarded: for=\"[::1]\";proto=http;host=web.shop.localhost\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nTransfer-Encoding: chunked\r\n\r\n"));
	ASSERT_TRUE(!strstr(h, "Content-Length"));
}

TEST(head_h1_upgrade_keeps_key)
{
	struct sockaddr_in a = v4();
	HttpField fields[] = {
		F("Host", "ws.localhost"),
		F("Connection", "Upgrade"),
		F("Upgrade", "websocket"),
		F("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
		F("Sec-WebSocket-Version", "13"),
	};
	ExchangeRequest req = {
		.protocol = EXCHANGE_HTTP1_1,
		.client = (struct sockaddr *)&a,
		.client_len = sizeof(a),
		.method = "GET",
		.path = "/chat",
		.authority = "ws.localhost",
		.fields = fields,
		.n_fields = ELEMENTSOF(fields),
		.upgrade = "websocket",
	};
	_cleanup_free_ char *h = build(&req);
	ASSERT_TRUE(startswith(h, "GET /chat HTTP/1.1\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nSec-WebSocket-Version: 13\r\n"));
}

TEST(head_extended_connect_becomes_get)
{
	struct sockaddr_in a = v4();
	HttpField fields[] = {
		F("sec-websocket-version", "13"),
		F("sec-websocket-protocol", "chat"),
	};
	ExchangeRequest req = {
		.protocol = EXCHANGE_H2,
		.tls = true,
		.client = (struct sockaddr *)&a,
		.client_len = sizeof(a),
		.method = "CONNECT",
		.path = "/chat",
		.authority = "ws.localhost",
		.fields = fields,
		.n_fields = ELEMENTSOF(fields),
		.body = HTTP1_BODY_CHUNKED,
		.upgrade = "websocket",
		.extended_connect = true,
	};
	_cleanup_free_ char *h = build(&req);
	ASSERT_TRUE(startswith(h, "GET /chat HTTP/1.1\r\nHost: ws.localhost\r\n"));
	ASSERT_TRUE(strstr(h, "\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"));
	const char *key = strstr(h, "\r\nSec-WebSocket-Key: ");
	ASSERT_TRUE(key);
	key += STRLEN("\r\nSec-WebSocket-Key: ");
	ASSERT_EQ(strcspn(key, "\r"), 24u); /* base64 of 16 bytes */
	ASSERT_TRUE(strstr(h, "\r\nsec-websocket-version: 13\r\n"));
	ASSERT_TRUE(!strstr(h, "Transfer-Encoding") && !strstr(h, "Content-Length"));
}

TEST(head_rejects_bad_input)
{
	HttpField fields[] = { F("X-Evil", "a\r\nInjected: 1") };
	ExchangeRequest req = {
		.method = "GET",
		.path = "/",
		.authority = "x.localhost",
		.fields = fields,
		.n_fields = 1,
	};
	_cleanup_free_ char *h = build(&req);
	ASSERT_TRUE(!strstr(h, "Injected")); /* a field that could split the head is dropped */
	Buf b = BUF_INIT(0);
	req.path = "/a b";
	ASSERT_EQ(upstream_build_request_head(&req, &b), -EINVAL);
	req.path = "/";
	req.method = "GE T";
	ASSERT_EQ(upstream_build_request_head(&req, &b), -EINVAL);
	req.method = NULL;
	ASSERT_EQ(upstream_build_request_head(&req, &b), -EINVAL);
	buf_done(&b);
}

/* ---- local responses ---- */

typedef struct Rec {
	int status;
	Http1BodyKind kind;
	uint64_t length;
	Buf head, body;
	int ends;
	unsigned refuse_after; /* data() says full after this many calls */
	unsigned calls;
} Rec;

static void rec_head(void *ds, int status, const HttpField *fields, size_t n, Http1BodyKind body,
		     uint64_t len)
{
	Rec *r = ds;
	r->status = status;
	r->kind = body;
	r->length = len;
	for (size_t i = 0; i < n; i++)
		buf_printf(&r->head, "%s: %s\n", fields[i].name, fields[i].value);
}

static bool rec_data(void *ds, const uint8_t *p, size_t n)
{
	Rec *r = ds;
	buf_append(&r->body, p, n);
	return ++r->calls != r->refuse_after;
}

static void rec_end(void *ds)
{
	((Rec *)ds)->ends++;
}

static const DownstreamOps rec_ops = { .head = rec_head, .data = rec_data, .end = rec_end };

TEST(local_page)
{
	Page p = { .status = 503, .content_type = "text/plain; charset=utf-8" };
	p.body = strdup("starting web\n");
	p.body_len = strlen(p.body);
	p.extra_name[0] = strdup("Refresh");
	p.extra_value[0] = strdup("1");
	p.n_extra = 1;
	LocalResponse *l = NULL;
	ASSERT_OK(local_response_new_page(&p, false, &l));
	Rec r = { .head = BUF_INIT(0), .body = BUF_INIT(0) };
	uint64_t bytes = 0;
	ASSERT_EQ(local_response_pump(l, &rec_ops, &r, &bytes), 1);
	ASSERT_EQ(r.status, 503);
	ASSERT_EQ(r.kind, HTTP1_BODY_LENGTH);
	ASSERT_EQ(r.length, 13u);
	ASSERT_EQ(bytes, 13u);
	ASSERT_TRUE(streq(r.body.data, "starting web\n"));
	ASSERT_TRUE(strstr(r.head.data, "Cache-Control: no-store\n"));
	ASSERT_TRUE(strstr(r.head.data, "Refresh: 1\n"));
	ASSERT_TRUE(strstr(r.head.data, "Content-Length: 13\n"));
	ASSERT_TRUE(strstr(r.head.data, " GMT\n")); /* Date */
	ASSERT_EQ(r.ends, 1);
	local_response_free(l);
	buf_done(&r.head);
	buf_done(&r.body);
}

TEST(local_static_file_streams_with_backpressure)
{
	char path[512];
	strfmt(path, sizeof(path), "%s/f", test_tmpdir());
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	size_t size = 3 * LOCAL_CHUNK + 17;
	uint8_t *data = malloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 7);
	ASSERT_EQ(write(fd, data, size), (ssize_t)size);
	StaticResponse sr = { .status = 206,
			      .fd = fd,
			      .offset = 5,
			      .length = size - 10,
			      .content_type = "application/octet-stream" };
	strscpy(sr.etag, sizeof(sr.etag), "W/\"x\"");
	strscpy(sr.content_range, sizeof(sr.content_range), "bytes 5-...");
	LocalResponse *l = NULL;
	ASSERT_OK(local_response_new_static(&sr, false, &l));
	Rec r = { .head = BUF_INIT(0), .body = BUF_INIT(0), .refuse_after = 2 };
	uint64_t bytes = 0;
	ASSERT_EQ(local_response_pump(l, &rec_ops, &r, &bytes), 0); /* full after 2 chunks */
	ASSERT_EQ(r.body.len, 2u * LOCAL_CHUNK);
	ASSERT_EQ(r.ends, 0);
	ASSERT_EQ(local_response_pump(l, &rec_ops, &r, &bytes), 1);
	ASSERT_EQ(r.body.len, size - 10);
	ASSERT_EQ(bytes, size - 10);
	ASSERT_TRUE(memcmp(r.body.data, data + 5, size - 10) == 0);
	ASSERT_EQ(r.status, 206);
	ASSERT_TRUE(strstr(r.head.data, "ETag: W/\"x\"\n"));
	ASSERT_TRUE(strstr(r.head.data, "Content-Range: bytes 5-...\n"));
	ASSERT_TRUE(strstr(r.head.data, "Accept-Ranges: bytes\n"));
	ASSERT_EQ(r.ends, 1);
	local_response_free(l);
	buf_done(&r.head);
	buf_done(&r.body);
	free(data);
}

TEST(local_head_only_sends_no_body)
{
	LocalResponse *l = NULL;
	ASSERT_OK(local_response_new_text(200, "text/plain", "hello\n", true, &l));
	Rec r = { .head = BUF_INIT(0), .body = BUF_INIT(0) };
	uint64_t bytes = 0;
	ASSERT_EQ(local_response_pump(l, &rec_ops, &r, &bytes), 1);
	ASSERT_EQ(r.kind, HTTP1_BODY_LENGTH);
	ASSERT_EQ(r.length, 6u);
	ASSERT_EQ(r.body.len, 0u);
	ASSERT_EQ(r.ends, 1);
	local_response_free(l);
	buf_done(&r.head);
	buf_done(&r.body);
}

TEST(http_date)
{
	char b[32];
	http_date_format(784111777, b);
	ASSERT_TRUE(streq(b, "Sun, 06 Nov 1994 08:49:37 GMT"));
}

TEST_MAIN();
