/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for services/proxyd/http1 (the proxy's request-smuggling defence).
 * The input is fed to a request parser and to a response parser, each time once whole
 * and once in pieces of pseudo-random sizes derived from the input, with the default
 * limits and with tiny ones. Checked: consumed <= len; DATA slices non-empty and within
 * the bytes consumed by that call; no loop without progress; errors sticky, one line;
 * head strings NUL-terminated at their stated lengths; and the split feeding produces
 * exactly the events (body bytes concatenated) of the whole feeding.
 * Invariant violations abort(), so they are caught in builds without assert() too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

typedef struct Digest {
	uint64_t h;
	unsigned heads, ends, errors;
	int error_status;
} Digest;

static void mix(Digest *d, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		d->h = (d->h ^ b[i]) * 0x100000001b3ull;
}

static void mix_str(Digest *d, const char *s)
{
	if (!s) {
		mix(d, "\xff", 1);
		return;
	}
	mix(d, s, strlen(s) + 1);
}

static void mix_head(Digest *d, const HttpHead *h, Http1Kind kind)
{
	CHECK(h);
	CHECK(h->version_minor == 0 || h->version_minor == 1);
	CHECK(h->body <= HTTP1_BODY_UNTIL_CLOSE);
	if (kind == HTTP1_REQUEST) {
		CHECK(h->method && h->target && h->authority);
		CHECK(h->body != HTTP1_BODY_UNTIL_CLOSE);
	} else {
		CHECK(h->status >= 100 && h->status <= 999 && h->reason);
		CHECK(h->body != HTTP1_BODY_UNTIL_CLOSE || !h->keep_alive);
	}
	mix_str(d, h->method);
	mix_str(d, h->target);
	mix_str(d, h->authority);
	mix_str(d, h->reason);
	int v[] = { h->status,     h->version_minor, (int)h->body,
		    h->keep_alive, h->upgrade,       h->expect_continue };
	mix(d, v, sizeof(v));
	mix(d, &h->content_length, sizeof(h->content_length));
	CHECK(h->n_fields == 0 || h->fields);
	for (size_t i = 0; i < h->n_fields; i++) {
		const HttpField *f = &h->fields[i];
		CHECK(f->name && f->value && f->name_len > 0);
		CHECK(strlen(f->name) == f->name_len && strlen(f->value) == f->value_len);
		CHECK(http_head_field(h, f->name) != NULL);
		mix_str(d, f->name);
		mix_str(d, f->value);
		(void)http_field_is_hop_by_hop(h, f);
	}
	(void)http_field_has_token(h, "Connection", "close");
}

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* step 0: all at once; else pieces of 1..step bytes, sizes drawn from `seed`. */
static Digest run(Http1Kind kind, const char *method, const Http1Limits *limits,
		  const uint8_t *data, size_t size, size_t step, uint64_t seed)
{
	Digest d = { .h = 0xcbf29ce484222325ull };
	Http1Parser *p = NULL;
	if (http1_parser_new(kind, limits, &p) < 0)
		abort();
	http1_parser_set_request_method(p, method);

	size_t off = 0, end = step ? 0 : size;
	unsigned no_progress = 0;
	uint64_t rnd = seed | 1;
	for (;;) {
		Http1Result r;
		size_t consumed = SIZE_MAX;
		Http1Event ev = http1_parse(p, data + off, end - off, &consumed, &r);
		CHECK(consumed <= end - off);
		no_progress = consumed == 0 && ev != HTTP1_NEED_MORE ? no_progress + 1 : 0;
		CHECK(no_progress <= 2);

		switch (ev) {
		case HTTP1_HEAD:
			CHECK(consumed > 0);
			mix(&d, "H", 1);
			mix_head(&d, r.head, kind);
			d.heads++;
			break;
		case HTTP1_DATA:
			CHECK(r.len > 0 && r.data >= data + off &&
			      r.data + r.len <= data + off + consumed);
			mix(&d, r.data, r.len);
			break;
		case HTTP1_END:
			mix(&d, "E", 1);
			d.ends++;
			CHECK(d.ends == d.heads);
			break;
		case HTTP1_ERROR: {
			CHECK(r.error && r.error[0] && !strchr(r.error, '\n'));
			CHECK(r.status >= 400 && r.status <= 599);
			CHECK(kind == HTTP1_REQUEST || r.status == 502);
			Http1Result r2;
			size_t c2;
			CHECK(http1_parse(p, data + off, end - off, &c2, &r2) == HTTP1_ERROR);
			CHECK(r2.status == r.status && c2 <= end - off);
			CHECK(http1_parse_eof(p, &r2) == HTTP1_ERROR);
			d.errors++;
			d.error_status = r.status;
			mix(&d, &r.status, sizeof(r.status));
			http1_parser_free(p);
			return d;
		}
		case HTTP1_NEED_MORE:
			break;
		default:
			abort();
		}
		off += consumed;
		if (ev != HTTP1_NEED_MORE)
			continue;
		if (off < end) {
			/* Stopped after an upgrade: nothing more is taken, ever. */
			CHECK(consumed == 0 && !http1_parser_idle(p));
			mix(&d, "S", 1);
			mix(&d, &off, sizeof(off));
			break;
		}
		if (end == size)
			break;
		end += step ? 1 + (size_t)(next_random(&rnd) % step) : size;
		if (end > size)
			end = size;
	}

	Http1Result r;
	Http1Event ev = http1_parse_eof(p, &r);
	CHECK(ev == HTTP1_NEED_MORE || ev == HTTP1_END || ev == HTTP1_ERROR);
	if (ev == HTTP1_ERROR)
		CHECK(r.error && r.error[0]);
	mix(&d, &ev, sizeof(ev));
	http1_parser_free(p);
	return d;
}

static void compare(Http1Kind kind, const char *method, const Http1Limits *limits,
		    const uint8_t *data, size_t size, uint64_t seed)
{
	Digest once = run(kind, method, limits, data, size, 0, seed);
	static const size_t steps[] = { 1, 7, 64 };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		Digest split = run(kind, method, limits, data, size, steps[i], seed + i);
		CHECK(split.h == once.h);
		CHECK(split.heads == once.heads && split.ends == once.ends);
		CHECK(split.errors == once.errors && split.error_status == once.error_status);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seed = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ull;

	static const Http1Limits tiny = { .max_start_line = 48,
					  .max_head_bytes = 160,
					  .max_fields = 4 };
	compare(HTTP1_REQUEST, NULL, NULL, data, size, seed);
	compare(HTTP1_REQUEST, NULL, &tiny, data, size, seed);

	/* The request method changes the framing of responses (HEAD, CONNECT 2xx). */
	static const char *const methods[] = { NULL, "HEAD", "CONNECT" };
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		compare(HTTP1_RESPONSE, methods[i], NULL, data, size, seed);
	compare(HTTP1_RESPONSE, "GET", &tiny, data, size, seed);
	return 0;
}
