/* SPDX-License-Identifier: MIT */
/*
 * The strict HTTP/1.1 parser (contract and strictness list in http1.h).
 *
 * Head: each line is found with memchr('\n'), copied once into the parser's head buffer
 * (grown geometrically up to the limits, kept across the messages of a connection) and
 * validated as soon as its LF arrives, so an error is reported at the first bad line and
 * the limits bound what a peer can make us hold. Strings are NUL-terminated in place;
 * pointers are made from offsets only when the head is complete, since the buffer may
 * move while it grows.
 *
 * Body: returned as slices of the caller's input. The chunk-size lines and trailers are
 * short and bounded, so they are scanned byte by byte with a table lookup and never
 * copied.
 *
 * Choices beyond the list in http1.h:
 *   - tolerated, as RFC 9112 asks: up to EMPTY_LINES_MAX empty lines before a request
 *     line, a status line without reason phrase, whitespace before ';' in a chunk size
 *     line (BWS);
 *   - refused: Transfer-Encoding with Content-Length in responses too (502), empty
 *     elements in a request's Transfer-Encoding, userinfo or a scheme other than http(s)
 *     in an absolute-form target, a Host that is not uri-host[:port];
 *   - bytes >= 0x80 are allowed in the request-target (curl sends raw UTF-8 paths); SP,
 *     HTAB, CTLs and DEL are not.
 */
#include "http1.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define DEFAULT_MAX_START_LINE (8u * 1024u)
#define DEFAULT_MAX_HEAD_BYTES (64u * 1024u)
#define DEFAULT_MAX_FIELDS 100u
#define HEAD_BUF_INITIAL 2048u
#define FIELDS_INITIAL 16u
/* A chunk size of more than 16 hex digits does not fit in 64 bits. */
#define CHUNK_SIZE_DIGITS_MAX 16u
/* Bytes of chunk extensions (and the whitespace before them) on one chunk-size line. */
#define CHUNK_EXT_MAX 4096u
/* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request line. */
#define EMPTY_LINES_MAX 4u

enum {
	C_TCHAR = 1 << 0,  /* token character */
	C_FVAL = 1 << 1,   /* field value / reason phrase: VCHAR, obs-text, SP, HTAB */
	C_TARGET = 1 << 2, /* request-target: VCHAR, obs-text */
	C_HOST = 1 << 3,   /* reg-name: unreserved, sub-delims, '%' */
	C_DIGIT = 1 << 4,
	C_HEX = 1 << 5,
};

/* clang-format off */
static const uint8_t char_class[256] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x0f, 0x06, 0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x0e, 0x0f, 0x0f, 0x0e, 0x0f, 0x0f, 0x06,
	0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x06, 0x0e, 0x06, 0x0e, 0x06, 0x06,
	0x06, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
	0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x06, 0x06, 0x06, 0x07, 0x0f,
	0x07, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
	0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x06, 0x07, 0x06, 0x0f, 0x00,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
};
/* clang-format on */

static inline bool is_class(uint8_t c, unsigned cls)
{
	return char_class[c] & cls;
}

/*
 * Index of the first byte of s[0..n) not in class `cls`, or n. The common case (no
 * control character, no DEL) is checked 8 bytes at a time: a word in which some byte is
 * below `below` or is 0x7f is looked at byte by byte. Bytes >= 0x80 (obs-text) pass the
 * word test, as they pass both classes this is used with.
 */
static inline size_t find_invalid(const char *s, size_t n, uint8_t below, unsigned cls)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w, del;
		memcpy(&w, s + i, sizeof(w));
		del = w ^ (ones * 0x7f);
		if ((((w - ones * below) & ~w) | ((del - ones) & ~del)) & highs)
			for (size_t k = i; k < i + 8; k++)
				if (!is_class((uint8_t)s[k], cls))
					return k;
	}
	for (; i < n; i++)
		if (!is_class((uint8_t)s[i], cls))
			return i;
	return n;
}

static inline bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static inline unsigned hex_value(uint8_t c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static inline uint8_t ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

static bool ascii_eq_nocase(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((uint8_t)a[i]) != ascii_lower((uint8_t)b[i]))
			return false;
	return true;
}

/* `s` (length n) equals the lowercase literal `lit`, case-insensitively. */
#define EQ_LIT(s, n, lit) ((n) == STRLEN(lit) && ascii_eq_nocase((s), lit, STRLEN(lit)))

/*
 * One element of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed; empty elements
 * are returned as such (length 0). Returns false at the end of the list.
 */
static bool list_next(const char **cursor, const char *end, const char **ret_el, size_t *ret_len)
{
	const char *s = *cursor;
	if (!s)
		return false;
	const char *comma = memchr(s, ',', (size_t)(end - s));
	const char *e = comma ? comma : end;
	*cursor = comma ? comma + 1 : NULL;
	while (s < e && is_ows((uint8_t)*s))
		s++;
	while (e > s && is_ows((uint8_t)e[-1]))
		e--;
	*ret_el = s;
	*ret_len = (size_t)(e - s);
	return true;
}

static bool is_token(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_class((uint8_t)s[i], C_TCHAR))
			return false;
	return true;
}

/*
 * uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986): a reg-name or IPv4 address, or an
 * IP-literal in brackets. A port, when required (CONNECT), must be present and non-empty.
 */
static bool authority_is_valid(const char *s, size_t n, bool require_port)
{
	size_t i = 0;
	if (n == 0)
		return false;
	if (s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			if (!is_class((uint8_t)s[i], C_HEX) && s[i] != ':' && s[i] != '.')
				return false;
		if (i >= n || i == 1)
			return false;
		i++;
	} else {
		while (i < n && is_class((uint8_t)s[i], C_HOST))
			i++;
		if (i == 0)
			return false;
	}
	if (i == n)
		return !require_port;
	if (s[i] != ':')
		return false;
	size_t digits = n - i - 1;
	if (digits > 5 || (digits == 0 && require_port))
		return false;
	unsigned port = 0;
	for (i++; i < n; i++) {
		if (!is_class((uint8_t)s[i], C_DIGIT))
			return false;
		port = port * 10 + (unsigned)(s[i] - '0');
	}
	return port <= 65535;
}

typedef enum State {
	S_HEAD,
	S_BODY_LENGTH,
	S_CHUNK_SIZE,
	S_CHUNK_BWS, /* whitespace after the size, before ';' */
	S_CHUNK_EXT,
	S_CHUNK_SIZE_LF,
	S_CHUNK_DATA,
	S_CHUNK_DATA_CR,
	S_CHUNK_DATA_LF,
	S_TRAILER_LINE,
	S_TRAILER_NAME,
	S_TRAILER_VALUE,
	S_TRAILER_LF,
	S_TRAILER_END_LF,
	S_UNTIL_CLOSE,
	S_END, /* the message is complete, HTTP1_END not returned yet */
	S_STOPPED,
	S_ERROR,
} State;

typedef struct FieldPos {
	size_t name, name_len, value, value_len;
} FieldPos;

struct Http1Parser {
	Http1Kind kind;
	Http1Limits limits;
	State state;

	/* The head being accumulated: bytes of complete and partial lines. */
	char *buf;
	size_t len, cap, cap_max;
	size_t line_start;
	bool have_start_line;
	unsigned empty_lines;

	FieldPos *pos;
	HttpField *fields; /* in the same allocation as pos */
	size_t n_fields, fields_cap;
	size_t method_off, target_off, reason_off;
	HttpHead head;

	/* Body */
	uint64_t remaining;
	unsigned chunk_digits;
	size_t chunk_ext_len;
	size_t trailer_bytes, n_trailers;

	bool stop_after_end; /* upgrade, CONNECT: the bytes after this message are not HTTP */
	bool final_response; /* responses: not a 1xx (other than 101) */
	bool req_head, req_connect;

	int err_status;
	const char *err_msg;
};

int http1_parser_new(Http1Kind kind, const Http1Limits *limits, Http1Parser **ret)
{
	if (!ret || (kind != HTTP1_REQUEST && kind != HTTP1_RESPONSE))
		return -EINVAL;

	Http1Parser *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->kind = kind;
	if (limits)
		p->limits = *limits;
	if (p->limits.max_start_line == 0)
		p->limits.max_start_line = DEFAULT_MAX_START_LINE;
	if (p->limits.max_head_bytes == 0)
		p->limits.max_head_bytes = DEFAULT_MAX_HEAD_BYTES;
	if (p->limits.max_fields == 0)
		p->limits.max_fields = DEFAULT_MAX_FIELDS;
	if (p->limits.max_start_line > SIZE_MAX / 4)
		p->limits.max_start_line = SIZE_MAX / 4;
	if (p->limits.max_head_bytes > SIZE_MAX / 4)
		p->limits.max_head_bytes = SIZE_MAX / 4;
	if (p->limits.max_fields > SIZE_MAX / (2 * sizeof(HttpField)))
		p->limits.max_fields = SIZE_MAX / (2 * sizeof(HttpField));
	/* The head, plus a NUL-terminated copy of an absolute-form target's authority. */
	p->cap_max = p->limits.max_head_bytes + p->limits.max_start_line + 1;
	*ret = p;
	return 0;
}

Http1Parser *http1_parser_free(Http1Parser *p)
{
	if (!p)
		return NULL;
	free(p->buf);
	free(p->pos); /* and fields */
	free(p);
	return NULL;
}

void http1_parser_set_request_method(Http1Parser *p, const char *method)
{
	p->req_head = method && strcmp(method, "HEAD") == 0;
	p->req_connect = method && strcmp(method, "CONNECT") == 0;
}

static void message_reset(Http1Parser *p)
{
	p->state = S_HEAD;
	p->len = 0;
	p->line_start = 0;
	p->have_start_line = false;
	p->empty_lines = 0;
	p->n_fields = 0;
	p->remaining = 0;
	p->trailer_bytes = 0;
	p->n_trailers = 0;
	p->stop_after_end = false;
	p->final_response = true;
}

void http1_parser_reset(Http1Parser *p)
{
	message_reset(p);
	p->req_head = p->req_connect = false;
	p->err_status = 0;
	p->err_msg = NULL;
}

bool http1_parser_idle(const Http1Parser *p)
{
	return p->state == S_HEAD && p->len == 0;
}

static Http1Event error_event(Http1Parser *p, Http1Result *result)
{
	result->status = p->err_status;
	result->error = p->err_msg;
	return HTTP1_ERROR;
}

/* Enter the error state. Responses come from the upstream: whatever is wrong, the client
 * gets 502 Bad Gateway. */
static Http1Event fail(Http1Parser *p, int status, const char *msg, Http1Result *result)
{
	p->state = S_ERROR;
	p->err_status = p->kind == HTTP1_RESPONSE ? 502 : status;
	p->err_msg = msg;
	return error_event(p, result);
}

static Http1Event end_message(Http1Parser *p)
{
	bool stop = p->stop_after_end;
	if (p->kind == HTTP1_RESPONSE && p->final_response)
		p->req_head = p->req_connect = false;
	message_reset(p);
	if (stop)
		p->state = S_STOPPED;
	return HTTP1_END;
}

static int head_reserve(Http1Parser *p, size_t need)
{
	if (need <= p->cap)
		return 0;
	if (need > p->cap_max)
		return -E2BIG;
	size_t cap = p->cap ? p->cap : HEAD_BUF_INITIAL;
	while (cap < need)
		cap *= 2;
	if (cap > p->cap_max)
		cap = p->cap_max;
	char *b = realloc(p->buf, cap);
	if (!b)
		return -ENOMEM;
	p->buf = b;
	p->cap = cap;
	return 0;
}

static int fields_reserve(Http1Parser *p)
{
	if (p->n_fields < p->fields_cap)
		return 0;
	size_t cap = p->fields_cap ? p->fields_cap * 2 : FIELDS_INITIAL;
	if (cap > p->limits.max_fields)
		cap = p->limits.max_fields;
	/* One block: the offsets, then the HttpFields made from them at the end of the head
	 * (so only the offsets need to survive the move). */
	FieldPos *pos = realloc(p->pos, cap * (sizeof(FieldPos) + sizeof(HttpField)));
	if (!pos)
		return -ENOMEM;
	p->pos = pos;
	p->fields = (HttpField *)(pos + cap);
	p->fields_cap = cap;
	return 0;
}

/* "HTTP/1.1": 0 and the minor version, or an HTTP status (400 malformed, 505 other). */
static int parse_version(const char *s, size_t n, int *ret_minor)
{
	if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || !is_class((uint8_t)s[5], C_DIGIT) ||
	    s[6] != '.' || !is_class((uint8_t)s[7], C_DIGIT))
		return 400;
	if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
		return 505;
	*ret_minor = s[7] - '0';
	return 0;
}

static Http1Event parse_request_line(Http1Parser *p, char *line, size_t n, Http1Result *result)
{
	char *sp1 = memchr(line, ' ', n);
	if (!sp1)
		return fail(p, 400, "malformed request line", result);
	size_t method_len = (size_t)(sp1 - line);
	if (!is_token(line, method_len))
		return fail(p, 400, "invalid method", result);

	char *target = sp1 + 1;
	char *sp2 = memchr(target, ' ', n - method_len - 1);
	if (!sp2)
		return fail(p, 400, "malformed request line", result);
	size_t target_len = (size_t)(sp2 - target);
	if (target_len == 0)
		return fail(p, 400, "malformed request line", result);
	if (find_invalid(target, target_len, 0x21, C_TARGET) < target_len)
		return fail(p, 400, "invalid character in request target", result);

	int minor = 0;
	int r = parse_version(sp2 + 1, (size_t)(line + n - (sp2 + 1)), &minor);
	if (r == 505)
		return fail(p, 505, "unsupported HTTP version", result);
	if (r != 0)
		return fail(p, 400, "malformed HTTP version in request line", result);

	*sp1 = 0;
	*sp2 = 0;
	p->method_off = (size_t)(line - p->buf);
	p->target_off = (size_t)(target - p->buf);
	p->head.version_minor = minor;
	return HTTP1_NEED_MORE;
}

static Http1Event parse_status_line(Http1Parser *p, char *line, size_t n, Http1Result *result)
{
	int minor = 0;
	/* "HTTP/1.1 200" at least; the reason phrase and the SP before it may be missing. */
	if (n < 12 || line[8] != ' ')
		return fail(p, 502, "malformed status line", result);
	int r = parse_version(line, 8, &minor);
	if (r == 505)
		return fail(p, 502, "unsupported HTTP version in response", result);
	if (r != 0)
		return fail(p, 502, "malformed status line", result);
	if (!is_class((uint8_t)line[9], C_DIGIT) || !is_class((uint8_t)line[10], C_DIGIT) ||
	    !is_class((uint8_t)line[11], C_DIGIT) || line[9] == '0')
		return fail(p, 502, "invalid status code", result);
	size_t reason = 12;
	if (n > 12) {
		if (line[12] != ' ')
			return fail(p, 502, "malformed status line", result);
		reason = 13;
		if (find_invalid(line + reason, n - reason, 0x20, C_FVAL) < n - reason)
			return fail(p, 502, "invalid character in reason phrase", result);
	}
	line[n] = 0; /* the CR */
	p->head.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	p->head.version_minor = minor;
	p->reason_off = (size_t)(line + reason - p->buf);
	return HTTP1_NEED_MORE;
}

/* One field line (CRLF excluded, not starting with whitespace): record name and value. */
static Http1Event parse_field_line(Http1Parser *p, char *line, size_t n, Http1Result *result)
{
	size_t i = 0;
	while (i < n && is_class((uint8_t)line[i], C_TCHAR))
		i++;
	if (i == n)
		return fail(p, 400, "header field line without colon", result);
	if (line[i] != ':') {
		if (is_ows((uint8_t)line[i]))
			return fail(p, 400, "whitespace between header field name and colon",
				    result);
		return fail(p, 400, "invalid character in header field name", result);
	}
	if (i == 0)
		return fail(p, 400, "empty header field name", result);
	if (find_invalid(line + i + 1, n - i - 1, 0x20, C_FVAL) < n - i - 1)
		return fail(p, 400, "invalid character in header field value", result);

	size_t v = i + 1, e = n;
	while (v < e && is_ows((uint8_t)line[v]))
		v++;
	while (e > v && is_ows((uint8_t)line[e - 1]))
		e--;

	if (p->n_fields >= p->limits.max_fields)
		return fail(p, 431, "too many header fields", result);
	if (fields_reserve(p) < 0)
		return fail(p, 503, "out of memory", result);
	line[i] = 0;
	line[e] = 0; /* trailing OWS or the CR */
	size_t base = (size_t)(line - p->buf);
	p->pos[p->n_fields++] = (FieldPos){
		.name = base,
		.name_len = i,
		.value = base + v,
		.value_len = e - v,
	};
	return HTTP1_NEED_MORE;
}

typedef struct Framing {
	const HttpField *host;
	unsigned n_host;
	bool has_cl, has_te, te_chunked_final, te_bad_token, te_empty_element;
	unsigned te_codings, te_chunked;
	bool cl_invalid, cl_conflict;
	uint64_t cl;
	bool conn_close, conn_keep_alive, conn_upgrade, has_upgrade, expect_continue;
} Framing;

static void scan_content_length(Framing *fr, const HttpField *f)
{
	const char *cursor = f->value, *end = f->value + f->value_len, *el;
	size_t n;
	while (list_next(&cursor, end, &el, &n)) {
		if (n == 0 || n > 19) { /* 19 digits always fit in 63 bits */
			fr->cl_invalid = true;
			return;
		}
		uint64_t v = 0;
		for (size_t i = 0; i < n; i++) {
			if (!is_class((uint8_t)el[i], C_DIGIT)) {
				fr->cl_invalid = true;
				return;
			}
			v = v * 10 + (uint64_t)(el[i] - '0');
		}
		if (fr->has_cl && v != fr->cl)
			fr->cl_conflict = true;
		fr->cl = v;
		fr->has_cl = true;
	}
}

static void scan_transfer_encoding(Framing *fr, const HttpField *f)
{
	const char *cursor = f->value, *end = f->value + f->value_len, *el;
	size_t n;
	fr->has_te = true;
	while (list_next(&cursor, end, &el, &n)) {
		if (n == 0) {
			fr->te_empty_element = true;
			continue;
		}
		/* A coding may carry parameters ("gzip;q=1" is not one, but transfer-parameters
		 * are allowed): only the coding name decides. */
		const char *semi = memchr(el, ';', n);
		size_t name_len = n;
		if (semi) {
			name_len = (size_t)(semi - el);
			while (name_len > 0 && is_ows((uint8_t)el[name_len - 1]))
				name_len--;
		}
		if (!is_token(el, name_len))
			fr->te_bad_token = true;
		fr->te_codings++;
		bool chunked = !semi && EQ_LIT(el, name_len, "chunked");
		fr->te_chunked += chunked;
		fr->te_chunked_final = chunked;
	}
}

static void scan_connection(Framing *fr, const HttpField *f)
{
	const char *cursor = f->value, *end = f->value + f->value_len, *el;
	size_t n;
	while (list_next(&cursor, end, &el, &n)) {
		if (EQ_LIT(el, n, "close"))
			fr->conn_close = true;
		else if (EQ_LIT(el, n, "keep-alive"))
			fr->conn_keep_alive = true;
		else if (EQ_LIT(el, n, "upgrade"))
			fr->conn_upgrade = true;
	}
}

static void scan_fields(const HttpHead *h, Framing *fr)
{
	for (size_t i = 0; i < h->n_fields; i++) {
		const HttpField *f = &h->fields[i];
		switch (f->name_len) {
		case 4:
			if (EQ_LIT(f->name, 4, "host")) {
				fr->host = fr->host ? fr->host : f;
				fr->n_host++;
			}
			break;
		case 6:
			if (EQ_LIT(f->name, 6, "expect") &&
			    EQ_LIT(f->value, f->value_len, "100-continue"))
				fr->expect_continue = true;
			break;
		case 7:
			if (EQ_LIT(f->name, 7, "upgrade"))
				fr->has_upgrade = true;
			break;
		case 10:
			if (EQ_LIT(f->name, 10, "connection"))
				scan_connection(fr, f);
			break;
		case 14:
			if (EQ_LIT(f->name, 14, "content-length"))
				scan_content_length(fr, f);
			break;
		case 17:
			if (EQ_LIT(f->name, 17, "transfer-encoding"))
				scan_transfer_encoding(fr, f);
			break;
		default:
			break;
		}
	}
}

/* Pointers from offsets, now that the buffer no longer moves. */
static void head_materialize(Http1Parser *p)
{
	for (size_t i = 0; i < p->n_fields; i++)
		p->fields[i] = (HttpField){
			.name = p->buf + p->pos[i].name,
			.value = p->buf + p->pos[i].value,
			.name_len = p->pos[i].name_len,
			.value_len = p->pos[i].value_len,
		};
	p->head.fields = p->n_fields > 0 ? p->fields : NULL;
	p->head.n_fields = p->n_fields;
}

/* For an absolute-form target: where its authority is (scheme "://" authority ...),
 * or false if the target is not absolute-form. */
static bool target_absolute_authority(const char *t, size_t n, size_t *ret_off, size_t *ret_len)
{
	size_t i = 0;
	if (n == 0 || !((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
		return false;
	while (i < n &&
	       (((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') ||
		is_class((uint8_t)t[i], C_DIGIT) || t[i] == '+' || t[i] == '-' || t[i] == '.'))
		i++;
	if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
		return false;
	size_t start = i + 3, e = start;
	while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#')
		e++;
	*ret_off = start;
	*ret_len = e - start;
	return true;
}

static Http1Event head_event(Http1Parser *p, Http1Result *result)
{
	switch (p->head.body) {
	case HTTP1_BODY_LENGTH:
		p->remaining = p->head.content_length;
		p->state = p->remaining > 0 ? S_BODY_LENGTH : S_END;
		break;
	case HTTP1_BODY_CHUNKED:
		p->state = S_CHUNK_SIZE;
		p->remaining = 0;
		p->chunk_digits = 0;
		p->chunk_ext_len = 0;
		break;
	case HTTP1_BODY_UNTIL_CLOSE:
		p->state = S_UNTIL_CLOSE;
		break;
	default:
		p->state = S_END;
		break;
	}
	result->head = &p->head;
	return HTTP1_HEAD;
}

static Http1Event finish_request_head(Http1Parser *p, Http1Result *result)
{
	HttpHead *h = &p->head;
	const char *target = p->buf + p->target_off;
	size_t target_len = strlen(target);

	/* Room for a copy of the target's authority, so that the buffer does not move once
	 * pointers into it are handed out. */
	if (target[0] != '/' && head_reserve(p, p->len + target_len + 1) < 0)
		return fail(p, 503, "out of memory", result);
	target = p->buf + p->target_off;
	const char *method = p->buf + p->method_off;
	head_materialize(p);

	Framing fr = {};
	scan_fields(h, &fr);

	bool connect = strcmp(method, "CONNECT") == 0;
	const char *authority = NULL;
	size_t auth_off = 0, auth_len = 0;
	if (connect) {
		if (!authority_is_valid(target, target_len, true))
			return fail(p, 400, "CONNECT needs an authority-form target (host:port)",
				    result);
		authority = target;
	} else if (target[0] == '/') {
		/* origin-form */
	} else if (target_len == 1 && target[0] == '*') {
		if (strcmp(method, "OPTIONS") != 0)
			return fail(p, 400, "request target '*' is only allowed with OPTIONS",
				    result);
	} else if (target_absolute_authority(target, target_len, &auth_off, &auth_len)) {
		size_t scheme_len = auth_off - 3;
		if (!EQ_LIT(target, scheme_len, "http") && !EQ_LIT(target, scheme_len, "https"))
			return fail(p, 400, "unsupported scheme in request target", result);
		if (memchr(target + auth_off, '@', auth_len))
			return fail(p, 400, "userinfo in request target", result);
		if (!authority_is_valid(target + auth_off, auth_len, false))
			return fail(p, 400, "invalid authority in request target", result);
		char *copy = p->buf + p->len;
		memcpy(copy, target + auth_off, auth_len);
		copy[auth_len] = 0;
		p->len += auth_len + 1;
		authority = copy;
	} else
		return fail(p, 400, "invalid request target", result);

	if (fr.n_host > 1)
		return fail(p, 400, "repeated Host header field", result);
	if (fr.n_host == 0 && h->version_minor == 1)
		return fail(p, 400, "missing Host header field", result);
	if (fr.host && fr.host->value_len > 0 &&
	    !authority_is_valid(fr.host->value, fr.host->value_len, false))
		return fail(p, 400, "invalid Host header field", result);
	if (!authority)
		authority = fr.host ? fr.host->value : "";

	if (fr.cl_invalid)
		return fail(p, 400, "invalid Content-Length", result);
	if (fr.cl_conflict)
		return fail(p, 400, "conflicting Content-Length values", result);
	h->body = HTTP1_BODY_NONE;
	h->content_length = 0;
	if (fr.has_te) {
		if (fr.has_cl)
			return fail(p, 400, "both Transfer-Encoding and Content-Length", result);
		if (h->version_minor == 0)
			return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request", result);
		if (fr.te_bad_token || fr.te_empty_element || fr.te_codings == 0)
			return fail(p, 400, "malformed Transfer-Encoding", result);
		if (fr.te_codings != 1 || !fr.te_chunked_final)
			return fail(p, 501, "unsupported Transfer-Encoding (only chunked)", result);
		h->body = HTTP1_BODY_CHUNKED;
	} else if (fr.has_cl) {
		h->body = HTTP1_BODY_LENGTH;
		h->content_length = fr.cl;
	}
	if (connect && (h->body == HTTP1_BODY_CHUNKED || h->content_length > 0))
		return fail(p, 400, "CONNECT request with a body", result);

	h->method = method;
	h->target = target;
	h->authority = authority;
	h->status = 0;
	h->reason = NULL;
	h->keep_alive =
	    h->version_minor == 1 ? !fr.conn_close : fr.conn_keep_alive && !fr.conn_close;
	/* RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored; so is Expect (§10.1.1). */
	h->upgrade = h->version_minor == 1 && fr.conn_upgrade && fr.has_upgrade;
	h->expect_continue = h->version_minor == 1 && fr.expect_continue;
	p->stop_after_end = h->upgrade || connect;
	return head_event(p, result);
}

static Http1Event finish_response_head(Http1Parser *p, Http1Result *result)
{
	HttpHead *h = &p->head;
	head_materialize(p);

	Framing fr = {};
	scan_fields(h, &fr);

	int status = h->status;
	bool tunnel = p->req_connect && status >= 200 && status < 300;
	bool no_body = p->req_head || status < 200 || status == 204 || status == 304 || tunnel;

	if (fr.cl_invalid)
		return fail(p, 502, "invalid Content-Length in response", result);
	if (fr.cl_conflict)
		return fail(p, 502, "conflicting Content-Length values in response", result);
	if (fr.has_te && fr.te_bad_token)
		return fail(p, 502, "malformed Transfer-Encoding in response", result);
	if (fr.has_te && h->version_minor == 0)
		return fail(p, 502, "Transfer-Encoding in an HTTP/1.0 response", result);

	h->body = HTTP1_BODY_NONE;
	h->content_length = 0;
	if (no_body) {
		/* RFC 9112 §6.3 rules 1 and 2: the framing fields describe something else. */
	} else if (fr.has_te) {
		if (fr.has_cl)
			return fail(p, 502, "both Transfer-Encoding and Content-Length in response",
				    result);
		if (fr.te_chunked > 1)
			return fail(p, 502, "chunked applied more than once in response", result);
		h->body = fr.te_chunked_final ? HTTP1_BODY_CHUNKED : HTTP1_BODY_UNTIL_CLOSE;
	} else if (fr.has_cl) {
		h->body = HTTP1_BODY_LENGTH;
		h->content_length = fr.cl;
	} else
		h->body = HTTP1_BODY_UNTIL_CLOSE;

	h->method = NULL;
	h->target = NULL;
	h->authority = NULL;
	h->reason = p->buf + p->reason_off;
	h->keep_alive =
	    (h->version_minor == 1 ? !fr.conn_close : fr.conn_keep_alive && !fr.conn_close) &&
	    h->body != HTTP1_BODY_UNTIL_CLOSE;
	h->upgrade = fr.conn_upgrade && fr.has_upgrade;
	h->expect_continue = false;
	p->stop_after_end = status == 101 || tunnel;
	p->final_response = status >= 200 || status == 101;
	return head_event(p, result);
}

static Http1Event parse_head(Http1Parser *p, const uint8_t *data, size_t len, size_t *consumed,
			     Http1Result *result)
{
	const bool request = p->kind == HTTP1_REQUEST;
	size_t i = 0;

	while (i < len) {
		const uint8_t *nl = memchr(data + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (data + i)) + 1 : len - i;
		size_t line_len = p->len - p->line_start + n;

		if (!p->have_start_line) {
			/* A partial line of more than max + 1 bytes (a CR may end it) can only
			 * complete too long. */
			size_t content = line_len;
			if (nl) {
				content--;
				if (content > 0 && (n >= 2 ? data[i + n - 2]
							   : (uint8_t)p->buf[p->len - 1]) == '\r')
					content--;
			} else if (content > 0)
				content--;
			if (content > p->limits.max_start_line) {
				*consumed = i;
				return fail(p, 414,
					    request ? "request line too long"
						    : "status line too long",
					    result);
			}
		}
		if (p->len + n > p->limits.max_head_bytes) {
			*consumed = i;
			return fail(p, 431,
				    request ? "request header section too large"
					    : "response header section too large",
				    result);
		}
		if (head_reserve(p, p->len + n) < 0) {
			*consumed = i;
			return fail(p, 503, "out of memory", result);
		}
		memcpy(p->buf + p->len, data + i, n);
		p->len += n;
		i += n;
		if (!nl)
			break;

		char *line = p->buf + p->line_start;
		line_len = p->len - p->line_start;
		*consumed = i;
		if (line_len < 2 || line[line_len - 2] != '\r')
			return fail(p, 400,
				    !p->have_start_line ? (request ? "bare LF in request line"
								   : "bare LF in status line")
							: "bare LF in header field",
				    result);
		size_t content = line_len - 2;
		/* A CR inside a line is caught by the character checks of every part of it;
		 * only then is it worth looking for one, to say so. */

		Http1Event ev;
		if (!p->have_start_line) {
			if (content == 0) {
				if (!request || ++p->empty_lines > EMPTY_LINES_MAX)
					return fail(p, 400, "empty line instead of a start line",
						    result);
				p->len = p->line_start;
				continue;
			}
			ev = request ? parse_request_line(p, line, content, result)
				     : parse_status_line(p, line, content, result);
			p->have_start_line = true;
		} else if (content == 0) {
			return request ? finish_request_head(p, result)
				       : finish_response_head(p, result);
		} else if (is_ows((uint8_t)line[0])) {
			ev = fail(p, 400,
				  p->n_fields == 0
				      ? "whitespace before the first header field"
				      : "obsolete line folding (obs-fold) in header field",
				  result);
		} else
			ev = parse_field_line(p, line, content, result);
		if (ev == HTTP1_ERROR) {
			if (memchr(line, '\r', content)) {
				p->err_msg = p->line_start == 0
						 ? (request ? "bare CR in request line"
							    : "bare CR in status line")
						 : "bare CR in header field";
				result->error = p->err_msg;
			}
			return ev;
		}
		p->line_start = p->len;
	}

	*consumed = i;
	return HTTP1_NEED_MORE;
}

static Http1Event trailer_byte(Http1Parser *p, uint8_t c, Http1Result *result)
{
	if (++p->trailer_bytes > p->limits.max_head_bytes)
		return fail(p, 431, "trailer section too large", result);
	switch (p->state) {
	case S_TRAILER_LINE:
		if (c == '\r') {
			p->state = S_TRAILER_END_LF;
			return HTTP1_NEED_MORE;
		}
		if (is_class(c, C_TCHAR)) {
			if (++p->n_trailers > p->limits.max_fields)
				return fail(p, 431, "too many trailer fields", result);
			p->state = S_TRAILER_NAME;
			return HTTP1_NEED_MORE;
		}
		if (is_ows(c))
			return fail(p, 400, "obsolete line folding (obs-fold) in trailer field",
				    result);
		if (c == '\n')
			return fail(p, 400, "bare LF in trailer field", result);
		if (c == ':')
			return fail(p, 400, "empty trailer field name", result);
		return fail(p, 400, "invalid character in trailer field name", result);
	case S_TRAILER_NAME:
		if (is_class(c, C_TCHAR))
			return HTTP1_NEED_MORE;
		if (c == ':') {
			p->state = S_TRAILER_VALUE;
			return HTTP1_NEED_MORE;
		}
		if (is_ows(c))
			return fail(p, 400, "whitespace between trailer field name and colon",
				    result);
		if (c == '\r' || c == '\n')
			return fail(p, 400, "trailer field line without colon", result);
		return fail(p, 400, "invalid character in trailer field name", result);
	case S_TRAILER_VALUE:
		if (is_class(c, C_FVAL))
			return HTTP1_NEED_MORE;
		if (c == '\r') {
			p->state = S_TRAILER_LF;
			return HTTP1_NEED_MORE;
		}
		if (c == '\n')
			return fail(p, 400, "bare LF in trailer field", result);
		return fail(p, 400, "invalid character in trailer field value", result);
	case S_TRAILER_LF:
		if (c != '\n')
			return fail(p, 400, "bare CR in trailer field", result);
		p->state = S_TRAILER_LINE;
		return HTTP1_NEED_MORE;
	case S_TRAILER_END_LF:
		if (c != '\n')
			return fail(p, 400, "bare CR in trailer section", result);
		return end_message(p);
	default:
		return fail(p, 400, "internal parser state error", result);
	}
}

static Http1Event parse_chunked(Http1Parser *p, const uint8_t *data, size_t len, size_t *consumed,
				Http1Result *result)
{
	size_t i = 0;
	Http1Event ev;

	while (i < len) {
		uint8_t c;
		switch (p->state) {
		case S_CHUNK_DATA: {
			size_t n = len - i;
			if ((uint64_t)n > p->remaining)
				n = (size_t)p->remaining;
			result->data = data + i;
			result->len = n;
			p->remaining -= n;
			if (p->remaining == 0)
				p->state = S_CHUNK_DATA_CR;
			*consumed = i + n;
			return HTTP1_DATA;
		}
		case S_CHUNK_SIZE:
			c = data[i++];
			if (is_class(c, C_HEX)) {
				if (++p->chunk_digits > CHUNK_SIZE_DIGITS_MAX)
					goto fail_size_too_large;
				p->remaining = (p->remaining << 4) | hex_value(c);
				break;
			}
			if (p->chunk_digits == 0)
				goto fail_size;
			if (c == '\r')
				p->state = S_CHUNK_SIZE_LF;
			else if (c == ';')
				p->state = S_CHUNK_EXT;
			else if (is_ows(c))
				p->state = S_CHUNK_BWS;
			else if (c == '\n')
				goto fail_bare_lf;
			else
				goto fail_size;
			break;
		case S_CHUNK_BWS:
			c = data[i++];
			if (++p->chunk_ext_len > CHUNK_EXT_MAX)
				goto fail_ext_too_long;
			if (c == ';')
				p->state = S_CHUNK_EXT;
			else if (!is_ows(c))
				goto fail_size;
			break;
		case S_CHUNK_EXT:
			c = data[i++];
			if (is_class(c, C_FVAL)) {
				if (++p->chunk_ext_len > CHUNK_EXT_MAX)
					goto fail_ext_too_long;
			} else if (c == '\r')
				p->state = S_CHUNK_SIZE_LF;
			else if (c == '\n')
				goto fail_bare_lf;
			else {
				*consumed = i;
				return fail(p, 400, "invalid character in chunk extension", result);
			}
			break;
		case S_CHUNK_SIZE_LF:
			c = data[i++];
			if (c != '\n') {
				*consumed = i;
				return fail(p, 400, "bare CR in chunk size line", result);
			}
			if (p->remaining == 0) {
				p->state = S_TRAILER_LINE;
				p->trailer_bytes = 0;
				p->n_trailers = 0;
			} else
				p->state = S_CHUNK_DATA;
			break;
		case S_CHUNK_DATA_CR:
		case S_CHUNK_DATA_LF:
			c = data[i++];
			if (c != (p->state == S_CHUNK_DATA_CR ? '\r' : '\n')) {
				*consumed = i;
				return fail(p, 400, "missing CRLF after chunk data", result);
			}
			if (p->state == S_CHUNK_DATA_CR)
				p->state = S_CHUNK_DATA_LF;
			else {
				p->state = S_CHUNK_SIZE;
				p->remaining = 0;
				p->chunk_digits = 0;
				p->chunk_ext_len = 0;
			}
			break;
		default: /* trailer section */
			ev = trailer_byte(p, data[i++], result);
			if (ev != HTTP1_NEED_MORE) {
				*consumed = i;
				return ev;
			}
			break;
		}
	}
	*consumed = i;
	return HTTP1_NEED_MORE;

fail_size:
	*consumed = i;
	return fail(p, 400, "invalid chunk size", result);
fail_size_too_large:
	*consumed = i;
	return fail(p, 400, "chunk size too large", result);
fail_ext_too_long:
	*consumed = i;
	return fail(p, 400, "chunk extensions too long", result);
fail_bare_lf:
	*consumed = i;
	return fail(p, 400, "bare LF in chunk size line", result);
}

Http1Event http1_parse(Http1Parser *p, const uint8_t *data, size_t len, size_t *consumed,
		       Http1Result *result)
{
	*consumed = 0;
	*result = (Http1Result){};
	if (!data)
		len = 0;

	switch (p->state) {
	case S_HEAD:
		if (len == 0)
			return HTTP1_NEED_MORE;
		return parse_head(p, data, len, consumed, result);
	case S_BODY_LENGTH:
	case S_UNTIL_CLOSE: {
		if (len == 0)
			return HTTP1_NEED_MORE;
		size_t n = len;
		if (p->state == S_BODY_LENGTH) {
			if ((uint64_t)n > p->remaining)
				n = (size_t)p->remaining;
			p->remaining -= n;
			if (p->remaining == 0)
				p->state = S_END;
		}
		result->data = data;
		result->len = n;
		*consumed = n;
		return HTTP1_DATA;
	}
	case S_END:
		return end_message(p);
	case S_STOPPED:
		return HTTP1_NEED_MORE;
	case S_ERROR:
		return error_event(p, result);
	default:
		if (len == 0)
			return HTTP1_NEED_MORE;
		return parse_chunked(p, data, len, consumed, result);
	}
}

Http1Event http1_parse_eof(Http1Parser *p, Http1Result *result)
{
	*result = (Http1Result){};
	switch (p->state) {
	case S_HEAD:
		if (p->len == 0)
			return HTTP1_NEED_MORE;
		return fail(p, 400, "connection closed in the middle of the header section",
			    result);
	case S_UNTIL_CLOSE:
	case S_END:
		return end_message(p);
	case S_STOPPED:
		return HTTP1_NEED_MORE;
	case S_ERROR:
		return error_event(p, result);
	default:
		return fail(p, 400, "connection closed in the middle of the body", result);
	}
}

const HttpField *http_head_field(const HttpHead *h, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < h->n_fields; i++)
		if (h->fields[i].name_len == n && ascii_eq_nocase(h->fields[i].name, name, n))
			return &h->fields[i];
	return NULL;
}

static bool field_has_token(const HttpField *f, const char *token, size_t token_len)
{
	const char *cursor = f->value, *end = f->value + f->value_len, *el;
	size_t n;
	while (list_next(&cursor, end, &el, &n))
		if (n == token_len && ascii_eq_nocase(el, token, n))
			return true;
	return false;
}

bool http_field_has_token(const HttpHead *h, const char *name, const char *token)
{
	size_t name_len = strlen(name), token_len = strlen(token);
	for (size_t i = 0; i < h->n_fields; i++) {
		const HttpField *f = &h->fields[i];
		if (f->name_len == name_len && ascii_eq_nocase(f->name, name, name_len) &&
		    field_has_token(f, token, token_len))
			return true;
	}
	return false;
}

bool http_field_is_hop_by_hop(const HttpHead *h, const HttpField *f)
{
	static const char *const always[] = {
		"connection",
		"keep-alive",
		"proxy-connection",
		"te",
		"trailer",
		"transfer-encoding",
		"upgrade",
		"proxy-authenticate",
		"proxy-authorization",
	};
	for (size_t i = 0; i < ELEMENTSOF(always); i++)
		if (f->name_len == strlen(always[i]) &&
		    ascii_eq_nocase(f->name, always[i], f->name_len))
			return true;
	for (size_t i = 0; i < h->n_fields; i++) {
		const HttpField *c = &h->fields[i];
		if (EQ_LIT(c->name, c->name_len, "connection") &&
		    field_has_token(c, f->name, f->name_len))
			return true;
	}
	return false;
}

const char *http_status_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
		{ 100, "Continue" },
		{ 101, "Switching Protocols" },
		{ 103, "Early Hints" },
		{ 200, "OK" },
		{ 201, "Created" },
		{ 202, "Accepted" },
		{ 203, "Non-Authoritative Information" },
		{ 204, "No Content" },
		{ 205, "Reset Content" },
		{ 206, "Partial Content" },
		{ 300, "Multiple Choices" },
		{ 301, "Moved Permanently" },
		{ 302, "Found" },
		{ 303, "See Other" },
		{ 304, "Not Modified" },
		{ 307, "Temporary Redirect" },
		{ 308, "Permanent Redirect" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 406, "Not Acceptable" },
		{ 407, "Proxy Authentication Required" },
		{ 408, "Request Timeout" },
		{ 409, "Conflict" },
		{ 410, "Gone" },
		{ 411, "Length Required" },
		{ 412, "Precondition Failed" },
		{ 413, "Content Too Large" },
		{ 414, "URI Too Long" },
		{ 415, "Unsupported Media Type" },
		{ 416, "Range Not Satisfiable" },
		{ 417, "Expectation Failed" },
		{ 421, "Misdirected Request" },
		{ 422, "Unprocessable Content" },
		{ 426, "Upgrade Required" },
		{ 428, "Precondition Required" },
		{ 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 502, "Bad Gateway" },
		{ 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
		{ 505, "HTTP Version Not Supported" },
	};
	for (size_t i = 0; i < ELEMENTSOF(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}
