/* SPDX-License-Identifier: MIT */
/*
 * The strict HTTP/1.1 parser: every strictness rule of http1.h has a test named after
 * the attack it stops. Most tests compare a transcript of the events (one line per
 * event, body bytes gathered per message) so a failure shows what the parser saw.
 */
#include <string.h>

#include "buf.h"
#include "http1.h"
#include "strutil.h"
#include "test.h"

static void describe_head(Buf *out, const HttpHead *h, Http1Kind kind)
{
	static const char *const bodies[] = { "none", "length", "chunked", "close" };
	if (kind == HTTP1_REQUEST)
		ASSERT_OK(buf_printf(out, "HEAD %s %s [%s] 1.%d", h->method, h->target,
				     h->authority, h->version_minor));
	else
		ASSERT_OK(
		    buf_printf(out, "HEAD %d \"%s\" 1.%d", h->status, h->reason, h->version_minor));
	ASSERT_OK(buf_printf(out, " body=%s", bodies[h->body]));
	if (h->body == HTTP1_BODY_LENGTH)
		ASSERT_OK(buf_printf(out, ":%" PRIu64, h->content_length));
	if (h->keep_alive)
		ASSERT_OK(buf_append_str(out, " keep-alive"));
	if (h->upgrade)
		ASSERT_OK(buf_append_str(out, " upgrade"));
	if (h->expect_continue)
		ASSERT_OK(buf_append_str(out, " expect-continue"));
	for (size_t i = 0; i < h->n_fields; i++) {
		const HttpField *f = &h->fields[i];
		/* The lengths agree with the NUL terminators. */
		ASSERT_EQ(strlen(f->name), f->name_len);
		ASSERT_EQ(strlen(f->value), f->value_len);
		ASSERT_OK(buf_printf(out, " %s=%s", f->name, f->value));
	}
	ASSERT_OK(buf_append_str(out, "\n"));
}

/*
 * Feed `in` like a connection would: `step` bytes arrive at a time (0 = all at once);
 * unconsumed bytes are fed again with the next arrival. `eof`: then the peer closes.
 */
static char *transcript_full(Http1Kind kind, const char *method, const Http1Limits *limits,
			     const void *in_, size_t len, size_t step, bool eof)
{
	const uint8_t *in = in_;
	_cleanup_buf_ Buf out = BUF_INIT(0), body = BUF_INIT(0);
	Http1Parser *p = NULL;
	ASSERT_OK(http1_parser_new(kind, limits, &p));
	if (method)
		http1_parser_set_request_method(p, method);

	size_t off = 0, end = step ? MIN(step, len) : len;
	unsigned idle_events = 0;
	for (;;) {
		Http1Result r;
		size_t consumed = 99999;
		Http1Event ev = http1_parse(p, in + off, end - off, &consumed, &r);
		ASSERT_TRUE(consumed <= end - off);
		idle_events = consumed == 0 && ev != HTTP1_NEED_MORE ? idle_events + 1 : 0;
		ASSERT_TRUE(idle_events <= 2);
		if (ev == HTTP1_DATA) {
			ASSERT_TRUE(r.len > 0);
			ASSERT_TRUE(r.data >= in + off && r.data + r.len <= in + off + consumed);
			ASSERT_OK(buf_append(&body, r.data, r.len));
		}
		off += consumed;
		if (ev == HTTP1_HEAD)
			describe_head(&out, r.head, kind);
		else if (ev == HTTP1_END) {
			if (body.len > 0)
				ASSERT_OK(buf_printf(&out, "BODY %s\n", body.data));
			buf_clear(&body);
			ASSERT_OK(buf_append_str(&out, "END\n"));
		} else if (ev == HTTP1_ERROR) {
			ASSERT_TRUE(r.error && *r.error && !strchr(r.error, '\n'));
			ASSERT_OK(buf_printf(&out, "ERROR %d %s\n", r.status, r.error));
			/* Sticky. */
			Http1Result r2;
			ASSERT_EQ(http1_parse(p, in + off, end - off, &consumed, &r2), HTTP1_ERROR);
			ASSERT_EQ(r2.status, r.status);
			break;
		} else if (ev == HTTP1_NEED_MORE) {
			if (off < end) { /* stopped: upgraded protocol bytes */
				ASSERT_EQ(consumed, 0);
				ASSERT_OK(buf_printf(&out, "REST %.*s\n", (int)(len - off),
						     (const char *)in + off));
				break;
			}
			if (end == len) {
				if (eof) {
					Http1Event e = http1_parse_eof(p, &r);
					if (body.len > 0)
						ASSERT_OK(buf_printf(&out, "BODY %s\n", body.data));
					if (e == HTTP1_END) {
						ASSERT_OK(buf_append_str(&out, "EOF-END\n"));
					} else if (e == HTTP1_ERROR)
						ASSERT_OK(buf_printf(&out, "EOF-ERROR %d %s\n",
								     r.status, r.error));
					else
						ASSERT_OK(buf_append_str(&out, "EOF-CLEAN\n"));
				}
				break;
			}
			end = step ? MIN(end + step, len) : len;
		}
	}
	http1_parser_free(p);
	return buf_steal(&out, NULL);
}

static char *req(const char *s)
{
	return transcript_full(HTTP1_REQUEST, NULL, NULL, s, strlen(s), 0, false);
}

static char *resp(const char *method, const char *s)
{
	return transcript_full(HTTP1_RESPONSE, method, NULL, s, strlen(s), 0, true);
}

#define ASSERT_REQ(in, expected)                                                                   \
	do {                                                                                       \
		_cleanup_free_ char *_t = req(in);                                                 \
		ASSERT_STREQ(_t, expected);                                                        \
	} while (0)

/* The request is rejected with `status`, whatever way it is split. */
#define ASSERT_REQ_ERROR(in, status, what)                                                         \
	do {                                                                                       \
		const char *_in = (in);                                                            \
		for (size_t _step = 0; _step <= 3; _step++) {                                      \
			_cleanup_free_ char *_t = transcript_full(HTTP1_REQUEST, NULL, NULL, _in,  \
								  strlen(_in), _step, false);      \
			ASSERT_STRCONTAINS(_t, "ERROR " #status " ");                              \
			ASSERT_STRCONTAINS(_t, what);                                              \
		}                                                                                  \
	} while (0)

#define ASSERT_RESP(method, in, expected)                                                          \
	do {                                                                                       \
		_cleanup_free_ char *_t = resp(method, in);                                        \
		ASSERT_STREQ(_t, expected);                                                        \
	} while (0)

/* ---- basics ---- */

TEST(simple_get)
{
	ASSERT_REQ("GET /a?b=c HTTP/1.1\r\nHost: example.localhost\r\nAccept:  */* \r\n\r\n",
		   "HEAD GET /a?b=c [example.localhost] 1.1 body=none keep-alive "
		   "Host=example.localhost Accept=*/*\nEND\n");
}

TEST(field_name_case_preserved_and_value_ows_stripped)
{
	ASSERT_REQ("GET / HTTP/1.1\r\nHOST: h\r\nX-Empty:\r\nX-Tabs:\t a\tb \t\r\n\r\n",
		   "HEAD GET / [h] 1.1 body=none keep-alive HOST=h X-Empty= X-Tabs=a\tb\nEND\n");
}

TEST(obs_text_and_htab_in_value_accepted)
{
	ASSERT_REQ("GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\tok\r\n\r\n",
		   "HEAD GET / [h] 1.1 body=none keep-alive Host=h X=caf\xc3\xa9\tok\nEND\n");
}

TEST(post_content_length_body_is_zero_copy)
{
	static const char in[] = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
	Http1Parser *p;
	Http1Result r;
	size_t c, off = 0;
	ASSERT_OK(http1_parser_new(HTTP1_REQUEST, NULL, &p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in, sizeof(in) - 1, &c, &r), HTTP1_HEAD);
	ASSERT_EQ(r.head->body, HTTP1_BODY_LENGTH);
	ASSERT_EQ(r.head->content_length, 5);
	off += c;
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in + off, sizeof(in) - 1 - off, &c, &r),
		  HTTP1_DATA);
	ASSERT_TRUE(r.data == (const uint8_t *)in + off);
	ASSERT_EQ(r.len, 5);
	off += c;
	ASSERT_EQ(off, sizeof(in) - 1);
	ASSERT_EQ(http1_parse(p, NULL, 0, &c, &r), HTTP1_END);
	ASSERT_EQ(c, 0);
	ASSERT_TRUE(http1_parser_idle(p));
	http1_parser_free(p);
}

TEST(content_length_zero)
{
	ASSERT_REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		   "HEAD POST / [h] 1.1 body=length:0 keep-alive Host=h Content-Length=0\nEND\n");
}

TEST(pipelined_requests)
{
	ASSERT_REQ("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
		   "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
		   "POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		   "2\r\nxy\r\n0\r\n\r\n"
		   "GET /4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		   "HEAD GET /1 [h] 1.1 body=none keep-alive Host=h\nEND\n"
		   "HEAD POST /2 [h] 1.1 body=length:3 keep-alive Host=h Content-Length=3\n"
		   "BODY abc\nEND\n"
		   "HEAD POST /3 [h] 1.1 body=chunked keep-alive Host=h Transfer-Encoding=chunked\n"
		   "BODY xy\nEND\n"
		   "HEAD GET /4 [h] 1.1 body=none Host=h Connection=close\nEND\n");
}

TEST(chunked_with_extensions_and_trailers)
{
	ASSERT_REQ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
		   "5;name=value;quoted=\"a b\"\r\nhello\r\n"
		   "A \t;x\r\n, world!!!\r\n"
		   "000\r\nX-Checksum: abc\r\nX-Other:\r\n\r\n"
		   "GET /next HTTP/1.1\r\nHost: h\r\n\r\n",
		   "HEAD POST / [h] 1.1 body=chunked keep-alive Host=h Transfer-Encoding=Chunked\n"
		   "BODY hello, world!!!\nEND\n"
		   "HEAD GET /next [h] 1.1 body=none keep-alive Host=h\nEND\n");
}

TEST(chunk_data_is_zero_copy_and_split_by_input)
{
	static const char in[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "4\r\nabcd\r\n0\r\n\r\n";
	Http1Parser *p;
	Http1Result r;
	size_t c, off = 0, len = sizeof(in) - 1;
	ASSERT_OK(http1_parser_new(HTTP1_REQUEST, NULL, &p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in, len, &c, &r), HTTP1_HEAD);
	off += c;
	/* Only 2 of the 4 data bytes have arrived. */
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in + off, 5, &c, &r), HTTP1_DATA);
	ASSERT_EQ(r.len, 2);
	ASSERT_TRUE(r.data == (const uint8_t *)in + off + 3);
	ASSERT_EQ(c, 5);
	off += c;
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in + off, len - off, &c, &r), HTTP1_DATA);
	ASSERT_EQ(r.len, 2);
	ASSERT_TRUE(memcmp(r.data, "cd", 2) == 0);
	off += c;
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in + off, len - off, &c, &r), HTTP1_END);
	off += c;
	ASSERT_EQ(off, len);
	http1_parser_free(p);
}

TEST(leading_empty_line_ignored)
{
	ASSERT_REQ("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		   "HEAD GET / [h] 1.1 body=none keep-alive Host=h\nEND\n");
	ASSERT_REQ_ERROR("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
			 "empty line");
}

/* A corpus of messages, good and bad, fed at once and in every split size from 1 byte:
 * the transcripts must not differ. */
static const char *const corpus[] = {
	"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n"
	"10\r\n0123456789abcdef\r\n0;end\r\nT: 1\r\n\r\n",
	"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	"\x81\x05hello",
	"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01",
	"GET http://a.localhost:8080/x?y HTTP/1.1\r\nHost: other\r\n\r\n",
	"\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: a\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nT\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n\r",
	"GET / HTTP/1.1\r\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
};

TEST(byte_by_byte_equals_one_shot)
{
	for (size_t i = 0; i < ELEMENTSOF(corpus); i++) {
		size_t len = strlen(corpus[i]);
		_cleanup_free_ char *once =
		    transcript_full(HTTP1_REQUEST, NULL, NULL, corpus[i], len, 0, true);
		for (size_t step = 1; step <= 7; step++) {
			_cleanup_free_ char *split =
			    transcript_full(HTTP1_REQUEST, NULL, NULL, corpus[i], len, step, true);
			if (strcmp(once, split) != 0)
				test_fail(__FILE__, __LINE__,
					  "corpus[%zu] step %zu:\n%s--- vs one shot ---\n%s", i,
					  step, split, once);
		}
	}
}

static const char *const response_corpus[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	"2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81",
	"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
};

TEST(response_byte_by_byte_equals_one_shot)
{
	for (size_t i = 0; i < ELEMENTSOF(response_corpus); i++) {
		size_t len = strlen(response_corpus[i]);
		_cleanup_free_ char *once =
		    transcript_full(HTTP1_RESPONSE, "GET", NULL, response_corpus[i], len, 0, true);
		for (size_t step = 1; step <= 5; step++) {
			_cleanup_free_ char *split = transcript_full(
			    HTTP1_RESPONSE, "GET", NULL, response_corpus[i], len, step, true);
			ASSERT_STREQ(split, once);
		}
	}
}

/* ---- line endings ---- */

TEST(bare_lf_in_request_line_rejected)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "bare LF in request line");
}

TEST(bare_lf_in_field_rejected)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400, "bare LF in header field");
	/* LF-only end of head: the smuggling classic. */
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "bare LF");
}

TEST(bare_cr_in_field_rejected)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400, "bare CR in header field");
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", 400, "bare CR");
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400, "bare CR");
}

TEST(bare_cr_in_request_line_rejected)
{
	ASSERT_REQ_ERROR("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bare CR in request line");
}

TEST(obs_fold_rejected)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400, "obs-fold");
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400, "obs-fold");
}

TEST(whitespace_before_first_field_rejected)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400,
			 "whitespace before the first header field");
}

/* ---- field syntax ---- */

TEST(field_name_not_token_rejected)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n", 400,
			 "invalid character in header field name");
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", 400,
			 "empty header field name");
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, "without colon");
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: 1\r\n\r\n", 400,
			 "invalid character in header field name");
}

TEST(whitespace_before_colon_rejected)
{
	/* "Transfer-Encoding : chunked" is read as chunked by some servers, ignored by
	 * others. */
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400,
			 "whitespace between header field name and colon");
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400, "whitespace between");
}

TEST(ctl_in_field_value_rejected)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01"
			 "b\r\n\r\n",
			 400, "invalid character in header field value");
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400,
			 "invalid character in header field value");
	static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
	_cleanup_free_ char *t =
	    transcript_full(HTTP1_REQUEST, NULL, NULL, nul, sizeof(nul) - 1, 0, false);
	ASSERT_STRCONTAINS(t, "ERROR 400 invalid character in header field value");
}

/* Every byte value at every position of a value long enough for the 8-byte fast path:
 * accepted exactly when it is HTAB, SP, VCHAR or obs-text; the same for the target, where
 * SP and HTAB end or break the request line. */
TEST(field_value_and_target_every_byte_every_position)
{
	for (unsigned b = 0; b < 256; b++) {
		bool value_ok = b == '\t' || b == ' ' || (b >= 0x21 && b != 0x7f);
		bool target_ok = b >= 0x21 && b != 0x7f;
		for (size_t pos = 0; pos < 20; pos++) {
			char value[21], target[22];
			memset(value, 'v', 20);
			value[20] = 0;
			value[pos] = (char)b;
			/* Leading/trailing OWS is stripped, not refused: keep SP/HTAB inside. */
			if (pos == 0 || pos == 19)
				continue;
			target[0] = '/';
			memset(target + 1, 't', 20);
			target[21] = 0;
			target[1 + pos] = (char)b;

			char in[128];
			size_t n =
			    (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: h\r\nX: ");
			memcpy(in + n, value, 20);
			n += 20;
			memcpy(in + n, "\r\n\r\n", 4);
			n += 4;
			_cleanup_free_ char *t =
			    transcript_full(HTTP1_REQUEST, NULL, NULL, in, n, 0, false);
			if ((strstr(t, "END\n") != NULL) != value_ok)
				test_fail(__FILE__, __LINE__, "value byte 0x%02x at %zu: %s", b,
					  pos, t);

			n = (size_t)snprintf(in, sizeof(in), "GET ");
			memcpy(in + n, target, 21);
			n += 21;
			static const char tail[] = " HTTP/1.1\r\nHost: h\r\n\r\n";
			memcpy(in + n, tail, sizeof(tail) - 1);
			n += sizeof(tail) - 1;
			_cleanup_free_ char *t2 =
			    transcript_full(HTTP1_REQUEST, NULL, NULL, in, n, 0, false);
			if ((strstr(t2, "END\n") != NULL) != target_ok)
				test_fail(__FILE__, __LINE__, "target byte 0x%02x at %zu: %s", b,
					  pos, t2);
		}
	}
}

TEST(bare_cr_deep_in_long_value_rejected)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789abcdef\r0123456789\r\n\r\n",
			 400, "bare CR in header field");
	ASSERT_REQ_ERROR("GET /0123456789abcdef\r0123 HTTP/1.1\r\nHost: h\r\n\r\n", 400,
			 "bare CR in request line");
}

/* ---- Content-Length ---- */

TEST(content_length_not_digits_rejected)
{
	static const char *const bad[] = { "+5", "-1", "0x10", "1 2", "", "5,", "1e3", "\"5\"" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ char *in =
		    strdupf("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n", bad[i]);
		ASSERT_REQ_ERROR(in, 400, "invalid Content-Length");
	}
}

TEST(content_length_overflow_rejected)
{
	ASSERT_REQ_ERROR(
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
	    "invalid Content-Length");
}

TEST(duplicate_content_length_same_accepted)
{
	ASSERT_REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok",
		   "HEAD POST / [h] 1.1 body=length:2 keep-alive Host=h Content-Length=2 "
		   "content-length=2\nBODY ok\nEND\n");
	ASSERT_REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2 , 2\r\n\r\nok",
		   "HEAD POST / [h] 1.1 body=length:2 keep-alive Host=h Content-Length=2 , 2\n"
		   "BODY ok\nEND\n");
}

TEST(duplicate_content_length_differs)
{
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 20"
			 "\r\n\r\nok",
			 400, "conflicting Content-Length");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 3\r\n\r\nok", 400,
			 "conflicting Content-Length");
}

/* ---- Transfer-Encoding ---- */

TEST(te_cl_conflict_rejected)
{
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			 400, "both Transfer-Encoding and Content-Length");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
			 "Content-Length: 0\r\n\r\n0\r\n\r\n",
			 400, "both Transfer-Encoding and Content-Length");
}

TEST(te_other_than_chunked_501)
{
	static const char *const bad[] = { "gzip",          "chunked, chunked",
					   "gzip, chunked", "chunked;foo=bar",
					   "identity",      "xchunked" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ char *in =
		    strdupf("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: %s\r\n\r\n", bad[i]);
		ASSERT_REQ_ERROR(in, 501, "unsupported Transfer-Encoding");
	}
	/* Two field lines are one list: chunked twice. */
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n",
			 501, "unsupported Transfer-Encoding");
}

TEST(te_malformed_400)
{
	static const char *const bad[] = { "", "chunked,", ", chunked", "\"chunked\"", "chu nked" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ char *in =
		    strdupf("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: %s\r\n\r\n", bad[i]);
		ASSERT_REQ_ERROR(in, 400, "malformed Transfer-Encoding");
	}
}

TEST(te_in_http10_request_rejected)
{
	ASSERT_REQ_ERROR("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
			 "Transfer-Encoding in an HTTP/1.0 request");
}

/* ---- chunked framing ---- */

TEST(chunk_size_overflow_rejected)
{
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "10000000000000001\r\n",
			 400, "chunk size too large");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "fffffffffffffffffffffffffffffffff\r\n",
			 400, "chunk size too large");
}

TEST(chunk_size_not_hex_rejected)
{
	static const char *const bad[] = { "g\r\n",   "\r\n",   "-1\r\n", "+1\r\n",
					   "0x1\r\n", " 1\r\n", "1 \r\n", "1 x\r\n" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ char *in = strdupf(
		    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%s", bad[i]);
		ASSERT_REQ_ERROR(in, 400, "invalid chunk size");
	}
}

TEST(bare_lf_in_chunk_size_line_rejected)
{
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "1\na\r\n0\r\n\r\n",
			 400, "bare LF in chunk size line");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "1;ext\na\r\n0\r\n\r\n",
			 400, "bare LF in chunk size line");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "1;ext\rX\r\n",
			 400, "bare CR in chunk size line");
}

TEST(chunk_extension_too_long_rejected)
{
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(
	    &b, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;"));
	for (int i = 0; i < 5000; i++)
		ASSERT_OK(buf_append_str(&b, "x"));
	ASSERT_OK(buf_append_str(&b, "\r\na\r\n0\r\n\r\n"));
	ASSERT_REQ_ERROR(b.data, 400, "chunk extensions too long");
}

TEST(chunk_whitespace_before_extension_bounded)
{
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(
	    &b, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1"));
	for (int i = 0; i < 5000; i++)
		ASSERT_OK(buf_append_byte(&b, ' '));
	ASSERT_OK(buf_append_str(&b, ";x\r\na\r\n0\r\n\r\n"));
	ASSERT_REQ_ERROR(b.data, 400, "chunk extensions too long");
}

TEST(chunk_extension_ctl_rejected)
{
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "1;a=\"\x01\"\r\na\r\n0\r\n\r\n",
			 400, "invalid character in chunk extension");
}

TEST(missing_crlf_after_chunk_data_rejected)
{
	/* A length that disagrees with the data must not resynchronise anywhere. */
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "3\r\nabcd\r\n0\r\n\r\n",
			 400, "missing CRLF after chunk data");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "3\r\nabc\n0\r\n\r\n",
			 400, "missing CRLF after chunk data");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "3\r\nabc0\r\n\r\n",
			 400, "missing CRLF after chunk data");
}

TEST(trailer_fields_checked_and_dropped)
{
	ASSERT_REQ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		   "0\r\nX-Trailer: 1\r\nSecond:two\r\n\r\n",
		   "HEAD POST / [h] 1.1 body=chunked keep-alive Host=h Transfer-Encoding=chunked\n"
		   "END\n");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "0\r\nX: 1\r\n folded\r\n\r\n",
			 400, "obs-fold");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "0\r\nX: 1\n\r\n",
			 400, "bare LF in trailer field");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "0\r\nX : 1\r\n\r\n",
			 400, "whitespace between trailer field name and colon");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "0\r\nX: \x01\r\n\r\n",
			 400, "invalid character in trailer field value");
	ASSERT_REQ_ERROR("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "0\r\n\n",
			 400, "bare LF");
}

TEST(trailer_syntax_rejected)
{
#define CHUNKED_HEAD "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
	ASSERT_REQ_ERROR(CHUNKED_HEAD ": x\r\n\r\n", 400, "empty trailer field name");
	ASSERT_REQ_ERROR(CHUNKED_HEAD "(x): 1\r\n\r\n", 400,
			 "invalid character in trailer field name");
	ASSERT_REQ_ERROR(CHUNKED_HEAD "x\x01: 1\r\n\r\n", 400,
			 "invalid character in trailer field name");
	ASSERT_REQ_ERROR(CHUNKED_HEAD "x\r\n\r\n", 400, "trailer field line without colon");
	ASSERT_REQ_ERROR(CHUNKED_HEAD "x: 1\rx\r\n\r\n", 400, "bare CR in trailer field");
	ASSERT_REQ_ERROR(CHUNKED_HEAD "\rx", 400, "bare CR in trailer section");
#undef CHUNKED_HEAD
}

TEST(oversize_trailer_section_431)
{
	Http1Limits limits = { .max_head_bytes = 100 };
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(
	    &b, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: "));
	for (int i = 0; i < 200; i++)
		ASSERT_OK(buf_append_byte(&b, 'x'));
	ASSERT_OK(buf_append_str(&b, "\r\n\r\n"));
	_cleanup_free_ char *t =
	    transcript_full(HTTP1_REQUEST, NULL, &limits, b.data, b.len, 0, false);
	ASSERT_STRCONTAINS(t, "ERROR 431 trailer section too large");
}

TEST(too_many_trailer_fields_431)
{
	Http1Limits limits = { .max_fields = 3 };
	static const char in[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
	_cleanup_free_ char *t =
	    transcript_full(HTTP1_REQUEST, NULL, &limits, in, sizeof(in) - 1, 0, false);
	ASSERT_STRCONTAINS(t, "ERROR 431 too many trailer fields");
}

/* ---- limits ---- */

static char *request_with_target_len(size_t n)
{
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(&b, "GET /"));
	for (size_t i = 1; i < n; i++)
		ASSERT_OK(buf_append_byte(&b, 'a'));
	ASSERT_OK(buf_append_str(&b, " HTTP/1.1\r\nHost: h\r\n\r\n"));
	return buf_steal(&b, NULL);
}

TEST(oversize_request_line_414)
{
	Http1Limits limits = { .max_start_line = 100 };
	/* "GET " + target + " HTTP/1.1" = 13 + target */
	_cleanup_free_ char *ok = request_with_target_len(87);
	_cleanup_free_ char *bad = request_with_target_len(88);
	for (size_t step = 0; step <= 2; step++) {
		_cleanup_free_ char *t1 =
		    transcript_full(HTTP1_REQUEST, NULL, &limits, ok, strlen(ok), step, false);
		ASSERT_STRCONTAINS(t1, "END\n");
		_cleanup_free_ char *t2 =
		    transcript_full(HTTP1_REQUEST, NULL, &limits, bad, strlen(bad), step, false);
		ASSERT_STRCONTAINS(t2, "ERROR 414 request line too long");
	}
	/* A request line that never ends is refused once it passes the limit, before any
	 * LF: the buffer never holds more. */
	Http1Parser *p;
	Http1Result r;
	size_t c;
	ASSERT_OK(http1_parser_new(HTTP1_REQUEST, &limits, &p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)bad, 60, &c, &r), HTTP1_NEED_MORE);
	ASSERT_EQ(http1_parse(p, (const uint8_t *)bad + 60, 60, &c, &r), HTTP1_ERROR);
	ASSERT_EQ(r.status, 414);
	http1_parser_free(p);
}

TEST(default_limits_request_line_8k)
{
	_cleanup_free_ char *ok = request_with_target_len(8192 - 13);
	_cleanup_free_ char *bad = request_with_target_len(8192 - 12);
	_cleanup_free_ char *t1 = req(ok);
	ASSERT_STRCONTAINS(t1, "END\n");
	_cleanup_free_ char *t2 = req(bad);
	ASSERT_STRCONTAINS(t2, "ERROR 414");
}

TEST(too_many_fields_431)
{
	Http1Limits limits = { .max_fields = 4 };
	static const char ok[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	static const char bad[] =
	    "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
	_cleanup_free_ char *t1 =
	    transcript_full(HTTP1_REQUEST, NULL, &limits, ok, sizeof(ok) - 1, 0, false);
	ASSERT_STRCONTAINS(t1, "END\n");
	_cleanup_free_ char *t2 =
	    transcript_full(HTTP1_REQUEST, NULL, &limits, bad, sizeof(bad) - 1, 0, false);
	ASSERT_STRCONTAINS(t2, "ERROR 431 too many header fields");

	/* Defaults: 100. */
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(&b, "GET / HTTP/1.1\r\nHost: h\r\n"));
	for (int i = 0; i < 100; i++)
		ASSERT_OK(buf_printf(&b, "X-%d: %d\r\n", i, i));
	ASSERT_OK(buf_append_str(&b, "\r\n"));
	_cleanup_free_ char *t3 = req(b.data);
	ASSERT_STRCONTAINS(t3, "ERROR 431 too many header fields");
}

TEST(oversize_head_431)
{
	Http1Limits limits = { .max_head_bytes = 200 };
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(&b, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: "));
	for (int i = 0; i < 300; i++)
		ASSERT_OK(buf_append_byte(&b, 'x'));
	ASSERT_OK(buf_append_str(&b, "\r\n\r\n"));
	for (size_t step = 0; step <= 3; step++) {
		_cleanup_free_ char *t =
		    transcript_full(HTTP1_REQUEST, NULL, &limits, b.data, b.len, step, false);
		ASSERT_STRCONTAINS(t, "ERROR 431 request header section too large");
	}
}

TEST(zero_limits_take_defaults)
{
	Http1Limits zero = {};
	_cleanup_free_ char *in = request_with_target_len(4000);
	_cleanup_free_ char *t =
	    transcript_full(HTTP1_REQUEST, NULL, &zero, in, strlen(in), 0, false);
	ASSERT_STRCONTAINS(t, "END\n");
}

/* ---- start line ---- */

TEST(version_other_than_1x_505)
{
	ASSERT_REQ_ERROR("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "unsupported HTTP version");
	ASSERT_REQ_ERROR("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "unsupported HTTP version");
	ASSERT_REQ_ERROR("GET / HTTP/0.9\r\n\r\n", 505, "unsupported HTTP version");
}

TEST(version_malformed_400)
{
	static const char *const bad[] = {
		"GET / HTTP/1.10\r\n", "GET / http/1.1\r\n",  "GET / HTTP/1\r\n",
		"GET /\r\n",           "GET / HTTP/1.1 \r\n", "GET / HTTP/1.1 x\r\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ char *in = strdupf("%sHost: h\r\n\r\n", bad[i]);
		ASSERT_REQ_ERROR(in, 400, "malformed");
	}
}

TEST(request_line_separators_strict)
{
	ASSERT_REQ_ERROR("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed request line");
	ASSERT_REQ_ERROR("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
	ASSERT_REQ_ERROR(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
	ASSERT_REQ_ERROR("GET\r\nHost: h\r\n\r\n", 400, "malformed request line");
	ASSERT_REQ_ERROR("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
	ASSERT_REQ_ERROR("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400,
			 "invalid character in request target");
	ASSERT_REQ_ERROR("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400,
			 "invalid character in request target");
}

TEST(unknown_method_token_accepted)
{
	ASSERT_REQ("PROPFIND /d HTTP/1.1\r\nHost: h\r\n\r\n",
		   "HEAD PROPFIND /d [h] 1.1 body=none keep-alive Host=h\nEND\n");
}

TEST(http10_without_host_accepted)
{
	ASSERT_REQ("GET / HTTP/1.0\r\n\r\n", "HEAD GET / [] 1.0 body=none\nEND\n");
}

TEST(missing_host_400)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "missing Host header field");
}

TEST(repeated_host_400)
{
	ASSERT_REQ_ERROR("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "repeated Host");
	ASSERT_REQ_ERROR("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400, "repeated Host");
}

TEST(invalid_host_400)
{
	static const char *const bad[] = { "a b", "a/b",  "a@b",      "a:80:80",
					   "a:x", "[::1", "a:123456", "\"a\"" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ char *in = strdupf("GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
		ASSERT_REQ_ERROR(in, 400, "invalid Host header field");
	}
	ASSERT_REQ("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
		   "HEAD GET / [[::1]:8080] 1.1 body=none keep-alive Host=[::1]:8080\nEND\n");
	ASSERT_REQ("GET / HTTP/1.1\r\nHost:\r\n\r\n",
		   "HEAD GET / [] 1.1 body=none keep-alive Host=\nEND\n");
}

TEST(absolute_form_authority_wins_over_host)
{
	ASSERT_REQ("GET http://app.localhost:8080/p?q HTTP/1.1\r\nHost: evil.localhost\r\n\r\n",
		   "HEAD GET http://app.localhost:8080/p?q [app.localhost:8080] 1.1 body=none "
		   "keep-alive Host=evil.localhost\nEND\n");
	ASSERT_REQ(
	    "GET HTTPS://a.localhost HTTP/1.1\r\nHost: b\r\n\r\n",
	    "HEAD GET HTTPS://a.localhost [a.localhost] 1.1 body=none keep-alive Host=b\nEND\n");
	/* Host is still required in HTTP/1.1. */
	ASSERT_REQ_ERROR("GET http://a/ HTTP/1.1\r\n\r\n", 400, "missing Host");
}

TEST(absolute_form_bad_authority_rejected)
{
	ASSERT_REQ_ERROR("GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "userinfo");
	ASSERT_REQ_ERROR("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority");
	ASSERT_REQ_ERROR("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "unsupported scheme");
}

TEST(authority_form_only_with_connect)
{
	ASSERT_REQ_ERROR("GET a.localhost:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400,
			 "invalid request target");
	ASSERT_REQ_ERROR("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CONNECT needs");
	ASSERT_REQ_ERROR("CONNECT http://a:443/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CONNECT needs");
	ASSERT_REQ_ERROR("CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CONNECT needs");
	ASSERT_REQ_ERROR("CONNECT a:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 400,
			 "CONNECT request with a body");
}

TEST(connect_stops_parsing)
{
	ASSERT_REQ("CONNECT a.localhost:443 HTTP/1.1\r\nHost: a.localhost:443\r\n\r\n\x16\x03",
		   "HEAD CONNECT a.localhost:443 [a.localhost:443] 1.1 body=none keep-alive "
		   "Host=a.localhost:443\nEND\nREST \x16\x03\n");
}

TEST(asterisk_only_with_options)
{
	ASSERT_REQ("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		   "HEAD OPTIONS * [h] 1.1 body=none keep-alive Host=h\nEND\n");
	ASSERT_REQ_ERROR("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "only allowed with OPTIONS");
}

TEST(invalid_target_form_rejected)
{
	ASSERT_REQ_ERROR("GET foo HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request target");
	ASSERT_REQ_ERROR("GET ?x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request target");
	ASSERT_REQ_ERROR("GET ** HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request target");
}

/* ---- connection semantics ---- */

TEST(keep_alive_rules)
{
	ASSERT_REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n",
		   "HEAD GET / [h] 1.1 body=none Host=h Connection=foo, Close\nEND\n");
	ASSERT_REQ("GET / HTTP/1.0\r\n\r\n", "HEAD GET / [] 1.0 body=none\nEND\n");
	ASSERT_REQ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		   "HEAD GET / [] 1.0 body=none keep-alive Connection=keep-alive\nEND\n");
}

TEST(upgrade_stops_parsing)
{
	ASSERT_REQ("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
		   "Upgrade: websocket\r\n\r\nGET / HTTP/1.1\r\n",
		   "HEAD GET /ws [h] 1.1 body=none keep-alive upgrade Host=h "
		   "Connection=keep-alive, Upgrade Upgrade=websocket\nEND\n"
		   "REST GET / HTTP/1.1\r\n\n");
	/* With a body: the body first. */
	ASSERT_REQ("POST /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: x\r\n"
		   "Content-Length: 2\r\n\r\nabXYZ",
		   "HEAD POST /ws [h] 1.1 body=length:2 keep-alive upgrade Host=h "
		   "Connection=upgrade Upgrade=x Content-Length=2\nBODY ab\nEND\nREST XYZ\n");
	/* Connection: upgrade without an Upgrade field is no upgrade. */
	ASSERT_REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n",
		   "HEAD GET / [h] 1.1 body=none keep-alive Host=h Connection=upgrade\nEND\n");
}

TEST(upgrade_ignored_in_http10)
{
	ASSERT_REQ("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
		   "HEAD GET / [] 1.0 body=none Connection=upgrade Upgrade=websocket\nEND\n");
}

TEST(reset_after_refused_upgrade)
{
	static const char in[] = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n"
				 "Upgrade: websocket\r\n\r\n";
	static const char next[] = "GET /after HTTP/1.1\r\nHost: h\r\n\r\n";
	Http1Parser *p;
	Http1Result r;
	size_t c;
	ASSERT_OK(http1_parser_new(HTTP1_REQUEST, NULL, &p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in, sizeof(in) - 1, &c, &r), HTTP1_HEAD);
	ASSERT_TRUE(r.head->upgrade);
	ASSERT_EQ(http1_parse(p, NULL, 0, &c, &r), HTTP1_END);
	ASSERT_EQ(http1_parse(p, (const uint8_t *)next, sizeof(next) - 1, &c, &r), HTTP1_NEED_MORE);
	ASSERT_EQ(c, 0);
	ASSERT_FALSE(http1_parser_idle(p));
	ASSERT_EQ(http1_parse_eof(p, &r), HTTP1_NEED_MORE);
	http1_parser_reset(p);
	ASSERT_TRUE(http1_parser_idle(p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)next, sizeof(next) - 1, &c, &r), HTTP1_HEAD);
	ASSERT_STREQ(r.head->target, "/after");
	http1_parser_free(p);
}

TEST(expect_continue)
{
	ASSERT_REQ(
	    "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
	    "HEAD PUT / [h] 1.1 body=length:1 keep-alive expect-continue Host=h "
	    "Expect=100-Continue Content-Length=1\nBODY x\nEND\n");
	ASSERT_REQ("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
		   "HEAD PUT / [] 1.0 body=none Expect=100-continue\nEND\n");
}

TEST(error_state_is_sticky_until_reset)
{
	Http1Parser *p;
	Http1Result r;
	size_t c;
	static const char bad[] = "GET / HTTP/1.1\nHost: h\r\n\r\n";
	static const char good[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	ASSERT_OK(http1_parser_new(HTTP1_REQUEST, NULL, &p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)bad, sizeof(bad) - 1, &c, &r), HTTP1_ERROR);
	ASSERT_EQ(r.status, 400);
	ASSERT_EQ(http1_parse(p, (const uint8_t *)good, sizeof(good) - 1, &c, &r), HTTP1_ERROR);
	ASSERT_EQ(http1_parse_eof(p, &r), HTTP1_ERROR);
	ASSERT_STREQ(r.error, "bare LF in request line");
	http1_parser_reset(p);
	ASSERT_EQ(http1_parse(p, (const uint8_t *)good, sizeof(good) - 1, &c, &r), HTTP1_HEAD);
	http1_parser_free(p);
}

/* ---- eof ---- */

TEST(parse_eof_cases)
{
	_cleanup_free_ char *t1 = transcript_full(HTTP1_REQUEST, NULL, NULL, "", 0, 0, true);
	ASSERT_STREQ(t1, "EOF-CLEAN\n");
	static const char between[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	_cleanup_free_ char *t2 =
	    transcript_full(HTTP1_REQUEST, NULL, NULL, between, sizeof(between) - 1, 0, true);
	ASSERT_STREQ(t2, "HEAD GET / [h] 1.1 body=none keep-alive Host=h\nEND\nEOF-CLEAN\n");
	static const char in_head[] = "GET / HTTP/1.1\r\nHo";
	_cleanup_free_ char *t3 =
	    transcript_full(HTTP1_REQUEST, NULL, NULL, in_head, sizeof(in_head) - 1, 0, true);
	ASSERT_STRCONTAINS(t3, "EOF-ERROR 400 connection closed in the middle of the header");
	static const char in_body[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nab";
	_cleanup_free_ char *t4 =
	    transcript_full(HTTP1_REQUEST, NULL, NULL, in_body, sizeof(in_body) - 1, 0, true);
	ASSERT_STRCONTAINS(t4, "EOF-ERROR 400 connection closed in the middle of the body");
	static const char in_chunk[] =
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n2\r\nab\r\n";
	_cleanup_free_ char *t5 =
	    transcript_full(HTTP1_REQUEST, NULL, NULL, in_chunk, sizeof(in_chunk) - 1, 0, true);
	ASSERT_STRCONTAINS(t5, "EOF-ERROR 400 connection closed in the middle of the body");
	/* Only the empty line a client may send after a body: a clean close. */
	_cleanup_free_ char *t6 = transcript_full(HTTP1_REQUEST, NULL, NULL, "\r\n", 2, 0, true);
	ASSERT_STREQ(t6, "EOF-CLEAN\n");
}

TEST(parser_idle)
{
	Http1Parser *p;
	Http1Result r;
	size_t c;
	ASSERT_OK(http1_parser_new(HTTP1_REQUEST, NULL, &p));
	ASSERT_TRUE(http1_parser_idle(p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)"G", 1, &c, &r), HTTP1_NEED_MORE);
	ASSERT_EQ(c, 1);
	ASSERT_FALSE(http1_parser_idle(p));
	http1_parser_free(p);
}

/* ---- responses ---- */

TEST(response_content_length_and_pipelining)
{
	ASSERT_RESP("GET",
		    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\n"
		    "Content-Length: 0\r\n\r\n",
		    "HEAD 200 \"OK\" 1.1 body=length:2 keep-alive Content-Length=2\nBODY ok\nEND\n"
		    "HEAD 404 \"Not Found\" 1.1 body=length:0 keep-alive Content-Length=0\nEND\n"
		    "EOF-CLEAN\n");
}

TEST(response_to_head_has_no_body)
{
	ASSERT_RESP(
	    "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
	    "HEAD 200 \"OK\" 1.1 body=none keep-alive Content-Length=1000\nEND\nEOF-CLEAN\n");
	ASSERT_RESP("HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		    "HEAD 200 \"OK\" 1.1 body=none keep-alive Transfer-Encoding=chunked\nEND\n"
		    "EOF-CLEAN\n");
}

TEST(response_204_304_1xx_have_no_body)
{
	ASSERT_RESP("GET", "HTTP/1.1 204 No Content\r\n\r\n",
		    "HEAD 204 \"No Content\" 1.1 body=none keep-alive\nEND\nEOF-CLEAN\n");
	ASSERT_RESP("GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
		    "HEAD 304 \"Not Modified\" 1.1 body=none keep-alive Content-Length=50\nEND\n"
		    "EOF-CLEAN\n");
}

TEST(response_1xx_then_final_of_same_request)
{
	/* The request was HEAD: the final response after the 103 still has no body. */
	ASSERT_RESP("HEAD",
		    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
		    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		    "HEAD 103 \"Early Hints\" 1.1 body=none keep-alive Link=</s.css>\nEND\n"
		    "HEAD 200 \"OK\" 1.1 body=none keep-alive Content-Length=5\nEND\nEOF-CLEAN\n");
	/* After the final response the method is forgotten: the next one needs its own. */
	ASSERT_RESP("HEAD",
		    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"
		    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		    "HEAD 200 \"OK\" 1.1 body=none keep-alive Content-Length=1\nEND\n"
		    "HEAD 200 \"OK\" 1.1 body=length:1 keep-alive Content-Length=1\nBODY x\nEND\n"
		    "EOF-CLEAN\n");
}

TEST(response_101_stops_parsing)
{
	ASSERT_RESP("GET",
		    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket"
		    "\r\n\r\n\x81\x02hi",
		    "HEAD 101 \"Switching Protocols\" 1.1 body=none keep-alive upgrade "
		    "Connection=Upgrade Upgrade=websocket\nEND\nREST \x81\x02hi\n");
}

TEST(response_connect_2xx_is_tunnel)
{
	ASSERT_RESP(
	    "CONNECT", "HTTP/1.1 200 Connection Established\r\nContent-Length: 9\r\n\r\nTLS",
	    "HEAD 200 \"Connection Established\" 1.1 body=none keep-alive Content-Length=9\n"
	    "END\nREST TLS\n");
	/* A refused CONNECT has a body as usual. */
	ASSERT_RESP("CONNECT", "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
		    "HEAD 403 \"Forbidden\" 1.1 body=length:2 keep-alive Content-Length=2\n"
		    "BODY no\nEND\nEOF-CLEAN\n");
}

TEST(response_chunked)
{
	ASSERT_RESP("GET",
		    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
		    "3\r\nabc\r\n0\r\nServer-Timing: x\r\n\r\n",
		    "HEAD 200 \"OK\" 1.1 body=chunked keep-alive Transfer-Encoding=gzip, chunked\n"
		    "BODY abc\nEND\nEOF-CLEAN\n");
}

TEST(response_until_close)
{
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\r\n\r\nstream of bytes",
		    "HEAD 200 \"OK\" 1.1 body=close\nBODY stream of bytes\nEOF-END\n");
	/* A final coding other than chunked: read until close, and no keep-alive. */
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzz",
		    "HEAD 200 \"OK\" 1.1 body=close Transfer-Encoding=chunked, gzip\nBODY zz\n"
		    "EOF-END\n");
}

TEST(response_invalid_content_length_502)
{
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		    "ERROR 502 invalid Content-Length in response\n");
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		    "ERROR 502 conflicting Content-Length values in response\n");
	ASSERT_RESP("GET",
		    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		    "ERROR 502 both Transfer-Encoding and Content-Length in response\n");
	ASSERT_RESP("GET", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		    "ERROR 502 Transfer-Encoding in an HTTP/1.0 response\n");
}

TEST(response_malformed_is_502)
{
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
		    "ERROR 502 bare LF in status line\n");
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		    "ERROR 502 obsolete line folding (obs-fold) in header field\n");
	ASSERT_RESP("GET", "HTTP/2 200\r\n\r\n", "ERROR 502 malformed status line\n");
	ASSERT_RESP("GET", "HTTP/1.1 2000 OK\r\n\r\n", "ERROR 502 malformed status line\n");
	ASSERT_RESP("GET", "HTTP/1.1 099 OK\r\n\r\n", "ERROR 502 invalid status code\n");
	ASSERT_RESP("GET", "HTTP/2.0 200 OK\r\n\r\n",
		    "ERROR 502 unsupported HTTP version in response\n");
	ASSERT_RESP("GET", "HTTP/1.1x200 OK\r\n\r\n", "ERROR 502 malformed status line\n");
	ASSERT_RESP("GET", "HTTP/1.1 200 O\x01K\r\n\r\n",
		    "ERROR 502 invalid character in reason phrase\n");
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
		    "ERROR 502 chunked applied more than once in response\n");
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
		    "ERROR 502 malformed Transfer-Encoding in response\n");
	ASSERT_RESP("GET", "\r\nHTTP/1.1 200 OK\r\n\r\n",
		    "ERROR 502 empty line instead of a start line\n");
	ASSERT_RESP("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
		    "HEAD 200 \"OK\" 1.1 body=length:5 keep-alive Content-Length=5\nBODY ab\n"
		    "EOF-ERROR 502 connection closed in the middle of the body\n");
}

TEST(response_status_line_forms)
{
	ASSERT_RESP(
	    "GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	    "HEAD 200 \"\" 1.1 body=length:0 keep-alive Content-Length=0\nEND\nEOF-CLEAN\n");
	ASSERT_RESP(
	    "GET", "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n",
	    "HEAD 599 \"\" 1.1 body=length:0 keep-alive Content-Length=0\nEND\nEOF-CLEAN\n");
}

TEST(response_http10_keep_alive)
{
	ASSERT_RESP("GET",
		    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
		    "HEAD 200 \"OK\" 1.0 body=length:1 keep-alive Connection=keep-alive "
		    "Content-Length=1\nBODY x\nEND\nEOF-CLEAN\n");
	ASSERT_RESP("GET", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
		    "HEAD 200 \"OK\" 1.0 body=length:1 Content-Length=1\nBODY x\nEND\nEOF-CLEAN\n");
}

/* ---- field helpers ---- */

static Http1Parser *parse_head_of(const char *in, const HttpHead **ret)
{
	Http1Parser *p;
	Http1Result r;
	size_t c;
	ASSERT_OK(http1_parser_new(HTTP1_REQUEST, NULL, &p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in, strlen(in), &c, &r), HTTP1_HEAD);
	*ret = r.head;
	return p;
}

TEST(http_field_is_hop_by_hop_with_connection_named_fields)
{
	const HttpHead *h;
	Http1Parser *p =
	    parse_head_of("GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret ,keep-alive"
			  "\r\nconnection: x-other\r\nX-Secret: 1\r\nX-Other: 2\r\n"
			  "X-Kept: 3\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
			  "Proxy-Authorization: x\r\nUpgrade: y\r\n\r\n",
			  &h);
	static const struct {
		const char *name;
		bool hop;
	} expect[] = {
		{ "Host", false },      { "Connection", true }, { "connection", true },
		{ "X-Secret", true },   { "X-Other", true },    { "X-Kept", false },
		{ "Keep-Alive", true }, { "TE", true },         { "Proxy-Authorization", true },
		{ "Upgrade", true },
	};
	ASSERT_EQ(h->n_fields, ELEMENTSOF(expect));
	for (size_t i = 0; i < h->n_fields; i++) {
		ASSERT_STREQ(h->fields[i].name, expect[i].name);
		if (http_field_is_hop_by_hop(h, &h->fields[i]) != expect[i].hop)
			test_fail(__FILE__, __LINE__, "%s: hop-by-hop should be %d", expect[i].name,
				  expect[i].hop);
	}
	http1_parser_free(p);
}

TEST(http_field_lookup_and_tokens)
{
	const HttpHead *h;
	Http1Parser *p = parse_head_of("GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n"
				       "accept-encoding: br, zstd\r\nTE: trailers\r\n\r\n",
				       &h);
	const HttpField *f = http_head_field(h, "ACCEPT-ENCODING");
	ASSERT_NOT_NULL(f);
	ASSERT_STREQ(f->value, "gzip");
	ASSERT_NULL(http_head_field(h, "Accept"));
	ASSERT_TRUE(http_field_has_token(h, "Accept-Encoding", "ZSTD"));
	ASSERT_TRUE(http_field_has_token(h, "accept-encoding", "gzip"));
	ASSERT_FALSE(http_field_has_token(h, "Accept-Encoding", "deflate"));
	ASSERT_FALSE(http_field_has_token(h, "Accept-Encoding", "zst"));
	ASSERT_TRUE(http_field_has_token(h, "te", "trailers"));
	http1_parser_free(p);
}

TEST(head_strings_stay_valid_through_body_and_trailers)
{
	/* Stronger than the contract (until the next http1_parse): the head survives the body
	 * and the trailers of its own message. */
	static const char in[] =
	    "POST /keep HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "1\r\na\r\n0\r\nT: 1\r\n\r\n";
	Http1Parser *p;
	Http1Result r;
	size_t c, off = 0;
	ASSERT_OK(http1_parser_new(HTTP1_REQUEST, NULL, &p));
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in, sizeof(in) - 1, &c, &r), HTTP1_HEAD);
	const HttpHead *h = r.head;
	off += c;
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in + off, sizeof(in) - 1 - off, &c, &r),
		  HTTP1_DATA);
	off += c;
	ASSERT_EQ(http1_parse(p, (const uint8_t *)in + off, sizeof(in) - 1 - off, &c, &r),
		  HTTP1_END);
	ASSERT_STREQ(h->target, "/keep");
	ASSERT_STREQ(h->fields[0].value, "h");
	http1_parser_free(p);
}

TEST(status_reason)
{
	ASSERT_STREQ(http_status_reason(400), "Bad Request");
	ASSERT_STREQ(http_status_reason(431), "Request Header Fields Too Large");
	ASSERT_STREQ(http_status_reason(502), "Bad Gateway");
	ASSERT_STREQ(http_status_reason(299), "Unknown");
}

TEST_MAIN();
