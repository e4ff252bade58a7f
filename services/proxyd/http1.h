/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A strict, sans-I/O HTTP/1.1 message parser, for requests (downstream) and responses
 * (upstream). It never reads or writes a socket: the caller feeds bytes as they arrive
 * and gets events back, one at a time.
 *
 * The head (request/status line + header fields) is accumulated in the parser's own
 * bounded buffer; once complete it is returned as an HttpHead whose strings point into
 * that buffer and stay valid until the next http1_parse() or http1_parser_reset(). Body
 * bytes are returned as slices of the caller's input (zero copy).
 *
 * Strictness (request smuggling and desync defences, RFC 9112):
 *   - the start line and every field line end with CRLF; a bare CR or bare LF is an
 *     error (400); obs-fold (a line starting with SP/HTAB) is an error (400);
 *   - field names are tokens, field values contain no CTLs but HTAB (400); whitespace
 *     between name and colon is an error (400);
 *   - Content-Length: digits only, repeated/comma-separated only if all equal, else 400;
 *     Transfer-Encoding together with Content-Length is 400 (requests) — we never guess;
 *   - Transfer-Encoding other than exactly "chunked" (final, once) is 501 in requests;
 *     in responses, a non-chunked final coding means read until close;
 *   - request line > limits.max_start_line → 414; head > limits.max_head_bytes or more
 *     than limits.max_fields fields → 431; chunk-size lines bounded; chunk extensions
 *     skipped but bounded; trailer fields parsed with the same rules and dropped;
 *   - HTTP versions other than 1.0/1.1 → 505; a Host field missing in an HTTP/1.1
 *     request or repeated → 400; an absolute-form target's authority wins over Host
 *     (RFC 9112 §3.2.2) and is reported in `authority`.
 * After an error the parser stays in the error state; the connection must close.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HttpField {
	const char *name; /* as received (case preserved), NUL-terminated */
	const char *value; /* leading/trailing OWS stripped, NUL-terminated */
	size_t name_len, value_len;
} HttpField;

typedef enum Http1BodyKind {
	HTTP1_BODY_NONE,
	HTTP1_BODY_LENGTH,      /* Content-Length */
	HTTP1_BODY_CHUNKED,     /* Transfer-Encoding: chunked */
	HTTP1_BODY_UNTIL_CLOSE, /* responses only: no framing, ends when the peer closes */
} Http1BodyKind;

typedef struct HttpHead {
	/* Requests */
	const char *method; /* "GET", ... */
	const char *target; /* request-target as received: "/a?b", "*", "host:443", "http://..." */
	const char *authority; /* Host field value, or the absolute-form target's authority, or
				* the CONNECT target; "" when there is none (HTTP/1.0 without
				* Host). Responses: method, target, authority are NULL. */
	/* Responses */
	int status;         /* 100..999 */
	const char *reason; /* may be "" */

	int version_minor; /* HTTP/1.<minor>: 0 or 1 */
	HttpField *fields;
	size_t n_fields;

	/* Derived from the fields */
	Http1BodyKind body;
	uint64_t content_length; /* HTTP1_BODY_LENGTH */
	bool keep_alive;         /* per version and Connection: close/keep-alive */
	bool upgrade;            /* Connection has "upgrade" and an Upgrade field is present */
	bool expect_continue;    /* requests: Expect: 100-continue */
} HttpHead;

/* A member left 0 takes its default. */
typedef struct Http1Limits {
	size_t max_start_line; /* default 8 KiB */
	size_t max_head_bytes; /* start line + fields; default 64 KiB */
	size_t max_fields;     /* default 100 */
} Http1Limits;

typedef enum Http1Kind {
	HTTP1_REQUEST,
	HTTP1_RESPONSE,
} Http1Kind;

typedef enum Http1Event {
	HTTP1_NEED_MORE,   /* everything given was consumed; feed more */
	HTTP1_HEAD,        /* result.head is complete */
	HTTP1_DATA,        /* result.data/result.len: body bytes (de-chunked) */
	HTTP1_END,         /* message complete; the parser is ready for the next one */
	HTTP1_ERROR,       /* result.status/result.error: reply that status, then close */
} Http1Event;

typedef struct Http1Result {
	const HttpHead *head;  /* HTTP1_HEAD */
	const uint8_t *data;   /* HTTP1_DATA: points into the caller's input */
	size_t len;
	int status;            /* HTTP1_ERROR: 400, 413, 414, 431, 501, 505; 503 when memory ran
				* out; 502 for responses (whatever the cause) */
	const char *error;     /* HTTP1_ERROR: static, one line: "bare LF in header field" */
} Http1Result;

typedef struct Http1Parser Http1Parser;

/* limits may be NULL for the defaults. */
int http1_parser_new(Http1Kind kind, const Http1Limits *limits, Http1Parser **ret);
Http1Parser *http1_parser_free(Http1Parser *p);

/*
 * Responses only: the next response answers a request with this method ("HEAD" →
 * no body whatever the framing says; "CONNECT" + 2xx → no body). 1xx, 204 and 304
 * responses never have a body; after a 1xx (other than 101) the parser expects the
 * final response of the same request. Call before feeding each response.
 */
void http1_parser_set_request_method(Http1Parser *p, const char *method);

/*
 * Feed `len` bytes. Sets *consumed to how many were used (the rest must be fed again,
 * after handling the event) and returns the event. One event per call: call in a loop
 * until HTTP1_NEED_MORE with everything consumed. An HTTP1_DATA event's slice is
 * within the bytes consumed by that call.
 *
 * After HTTP1_HEAD of a request with `upgrade` (or a 101/2xx-to-CONNECT response) and
 * after its body, the parser returns HTTP1_END and then stops: the rest of the bytes
 * belong to the upgraded protocol (http1_parse returns HTTP1_NEED_MORE, consuming 0).
 * A CONNECT request (it has no body) stops the same way: what follows is the tunnel.
 * An event that needs no more bytes (HTTP1_END after the last body bytes or after a head
 * without body) is returned with consumed 0, also when len is 0 (data may then be NULL).
 */
Http1Event http1_parse(Http1Parser *p, const uint8_t *data, size_t len, size_t *consumed,
		       Http1Result *result);

/*
 * The peer closed its side: completes an HTTP1_BODY_UNTIL_CLOSE body (returns
 * HTTP1_END), is HTTP1_NEED_MORE between messages (a clean close), else HTTP1_ERROR
 * (a truncated message).
 */
Http1Event http1_parse_eof(Http1Parser *p, Http1Result *result);

/* Back to "expecting a message", keeping the limits (connection reuse after an upgrade
 * was refused, tests). */
void http1_parser_reset(Http1Parser *p);

/* Whether the parser is between messages (nothing of a next message received yet). */
bool http1_parser_idle(const Http1Parser *p);

/* Field lookup, case-insensitive; the first match or NULL. */
const HttpField *http_head_field(const HttpHead *h, const char *name);
/* Whether a comma-separated field (Connection, TE, ...) contains `token`, case-insensitively. */
bool http_field_has_token(const HttpHead *h, const char *name, const char *token);

/*
 * Hop-by-hop fields a proxy must not forward: Connection, Keep-Alive, Proxy-Connection,
 * TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization, and
 * every field named in this message's Connection header.
 */
bool http_field_is_hop_by_hop(const HttpHead *h, const HttpField *f);

/* "Bad Request", "Not Found", ...; "Unknown" for codes it does not know. */
const char *http_status_reason(int status);
