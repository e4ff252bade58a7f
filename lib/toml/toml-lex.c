/* SPDX-License-Identifier: MIT */
/*
 * The scanner: the cursor and its position, encoding, whitespace, comments, newlines,
 * keys and the four kinds of string. Everything reads from TomlParser.data through
 * toml_peek() and moves only through toml_advance(), which keeps line and column exact.
 */
#include <string.h>

#include "buf.h"
#include "toml-internal.h"

void toml_advance(TomlParser *p, size_t n)
{
	while (n > 0 && p->off < p->len) {
		unsigned char c = (unsigned char)p->data[p->off++];
		if (c == '\n') {
			p->here.line++;
			p->here.col = 1;
		} else if ((c & 0xC0) != 0x80) {
			/* Each code point has one lead byte: columns count code points. */
			p->here.col++;
		}
		n--;
	}
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static size_t utf8_valid_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else
		return 0;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return need;
}

int toml_check_encoding(TomlParser *p)
{
	const unsigned char *s = (const unsigned char *)p->data;
	size_t off = 0;

	while (off < p->len) {
		if (s[off] < 0x80) {
			off++;
			continue;
		}
		size_t n = utf8_valid_seq(s + off, p->len - off);
		if (n == 0) {
			/* Everything before off is valid, so the cursor can count its way there. */
			TomlParser at = *p;
			toml_advance(&at, off - at.off);
			return toml_fail(p, at.here, -EINVAL, "invalid UTF-8 byte 0x%02X", s[off]);
		}
		off += n;
	}
	return 0;
}

void toml_skip_ws(TomlParser *p)
{
	for (int c = toml_peek(p); c == ' ' || c == '\t'; c = toml_peek(p))
		toml_advance(p, 1);
}

/* Control characters TOML forbids in comments and strings: all but tab, and DEL. */
static bool is_control(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7F;
}

int toml_skip_comment(TomlParser *p)
{
	if (toml_peek(p) != '#')
		return 0;
	toml_advance(p, 1);
	for (;;) {
		int c = toml_peek(p);
		if (c < 0 || c == '\n' || (c == '\r' && toml_peek_at(p, 1) == '\n'))
			return 0;
		if (is_control(c))
			return toml_fail(p, p->here, -EINVAL,
					 "control character U+%04X is not allowed in a comment", c);
		toml_advance(p, 1);
	}
}

int toml_skip_newline(TomlParser *p)
{
	int c = toml_peek(p);
	if (c == '\n') {
		toml_advance(p, 1);
		return 1;
	}
	if (c != '\r')
		return 0;
	if (toml_peek_at(p, 1) != '\n')
		return toml_fail(p, p->here, -EINVAL, "carriage return not followed by a newline");
	toml_advance(p, 2);
	return 1;
}

int toml_skip_blank(TomlParser *p)
{
	for (;;) {
		toml_skip_ws(p);
		int r = toml_skip_comment(p);
		if (r < 0)
			return r;
		r = toml_skip_newline(p);
		if (r <= 0)
			return r;
	}
}

int toml_expect_eol(TomlParser *p, const char *after)
{
	toml_skip_ws(p);
	int r = toml_skip_comment(p);
	if (r < 0)
		return r;
	if (toml_peek(p) < 0)
		return 0;
	r = toml_skip_newline(p);
	if (r != 0)
		return r < 0 ? r : 0;
	char found[32];
	toml_describe_char(p, found, sizeof(found));
	return toml_fail(p, p->here, -EINVAL, "expected end of line after %s, found %s", after,
			 found);
}

static int string_too_long(TomlParser *p, TomlPos start)
{
	return toml_fail(p, start, -E2BIG, "string longer than %zu bytes", p->limits.max_string);
}

static int append(TomlParser *p, TomlPos start, Buf *b, const void *data, size_t n)
{
	int r = buf_append(b, data, n);
	if (r == -E2BIG)
		return string_too_long(p, start);
	return r;
}

/* Copy a run of ordinary characters: up to a quote, a backslash, or a control char. */
static int append_run(TomlParser *p, TomlPos start, Buf *b, int quote, bool escapes)
{
	size_t from = p->off;
	for (int c = toml_peek(p);
	     c >= 0 && c != quote && !is_control(c) && !(escapes && c == '\\'); c = toml_peek(p))
		toml_advance(p, 1);
	return append(p, start, b, p->data + from, p->off - from);
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static int lex_unicode_escape(TomlParser *p, TomlPos start, Buf *b)
{
	TomlPos pos = p->here;
	int kind = toml_peek_at(p, 1);
	size_t digits = kind == 'u' ? 4 : 8;
	uint32_t cp = 0;

	for (size_t i = 0; i < digits; i++) {
		int h = hex_value(toml_peek_at(p, 2 + i));
		if (h < 0)
			return toml_fail(p, pos, -EINVAL,
					 "escape '\\%c' needs exactly %zu hex digits", kind,
					 digits);
		cp = (cp << 4) | (uint32_t)h;
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return toml_fail(p, pos, -EINVAL, "escape '\\%c%.*s' is not a Unicode scalar value",
				 kind, (int)digits, p->data + p->off + 2);
	toml_advance(p, 2 + digits);
	char out[4];
	return append(p, start, b, out, utf8_encode(cp, out));
}

/*
 * In a multi-line basic string a backslash ending a line (trailing blanks allowed)
 * swallows the newline and all whitespace and newlines after it. Returns 1 if that was
 * what followed the backslash, 0 if not.
 */
static int lex_line_ending_backslash(TomlParser *p)
{
	size_t k = 1;
	while (toml_peek_at(p, k) == ' ' || toml_peek_at(p, k) == '\t')
		k++;
	int c = toml_peek_at(p, k);
	if (c != '\n' && !(c == '\r' && toml_peek_at(p, k + 1) == '\n'))
		return 0;
	toml_advance(p, k);
	for (;;) {
		toml_skip_ws(p);
		int r = toml_skip_newline(p);
		if (r <= 0)
			return r < 0 ? r : 1;
	}
}

static int lex_escape(TomlParser *p, TomlPos start, Buf *b, bool multiline)
{
	static const char simple[][2] = {
		{ 'b', '\b' }, { 't', '\t' }, { 'n', '\n' },  { 'f', '\f' },
		{ 'r', '\r' }, { '"', '"' },  { '\\', '\\' },
	};
	int c = toml_peek_at(p, 1);

	for (size_t i = 0; i < ELEMENTSOF(simple); i++)
		if (c == simple[i][0]) {
			toml_advance(p, 2);
			return append(p, start, b, &simple[i][1], 1);
		}
	if (c == 'u' || c == 'U')
		return lex_unicode_escape(p, start, b);
	if (multiline) {
		int r = lex_line_ending_backslash(p);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	if (c >= 0x20 && c < 0x7F)
		return toml_fail(p, p->here, -EINVAL, "invalid escape '\\%c' in string", c);
	TomlParser next = *p;
	toml_advance(&next, 1);
	char found[32];
	toml_describe_char(&next, found, sizeof(found));
	return toml_fail(p, p->here, -EINVAL, "invalid escape in string: '\\' followed by %s",
			 found);
}

/*
 * A quote run inside a multi-line string: fewer than three are content, three to five
 * close it with the extra ones as content, six or more cannot be written.
 * Returns 1 when the string ended.
 */
static int lex_quote_run(TomlParser *p, TomlPos start, Buf *b, int quote, bool *ret_end)
{
	size_t n = 0;
	while (toml_peek_at(p, n) == quote)
		n++;
	if (n >= 6)
		return toml_fail(p, p->here, -EINVAL,
				 "too many quotes at the end of a multi-line string");
	*ret_end = n >= 3;
	size_t content = n >= 3 ? n - 3 : n;
	int r = append(p, start, b, p->data + p->off, content);
	if (r < 0)
		return r;
	toml_advance(p, n);
	return 0;
}

/* One string; the cursor is on its opening quote. quote is '"' (basic) or '\'' (literal). */
static int lex_string(TomlParser *p, int quote, bool multiline, Buf *b)
{
	TomlPos start = p->here;
	bool escapes = quote == '"';
	int r;

	toml_advance(p, multiline ? 3 : 1);
	if (multiline) {
		/* A newline right after the opening delimiter is not content. */
		r = toml_skip_newline(p);
		if (r < 0)
			return r;
	}
	for (;;) {
		int c = toml_peek(p);
		if (c < 0)
			return toml_fail(p, start, -EINVAL, "unterminated string");
		if (c == quote) {
			if (!multiline) {
				toml_advance(p, 1);
				return 0;
			}
			bool end = false;
			r = lex_quote_run(p, start, b, quote, &end);
			if (r < 0 || end)
				return r;
		} else if (c == '\\' && escapes) {
			r = lex_escape(p, start, b, multiline);
			if (r < 0)
				return r;
		} else if (c == '\n' || c == '\r') {
			if (!multiline)
				return toml_fail(p, p->here, -EINVAL,
						 "newline in a single-line string");
			r = toml_skip_newline(p);
			if (r < 0)
				return r;
			/* CRLF and LF both become LF: the value does not depend on the editor. */
			r = append(p, start, b, "\n", 1);
			if (r < 0)
				return r;
		} else if (is_control(c)) {
			return toml_fail(p, p->here, -EINVAL,
					 "control character U+%04X must be escaped in a string", c);
		} else {
			r = append_run(p, start, b, quote, escapes);
			if (r < 0)
				return r;
		}
	}
}

static bool at_triple(const TomlParser *p, int quote)
{
	return toml_peek_at(p, 1) == quote && toml_peek_at(p, 2) == quote;
}

int toml_lex_string(TomlParser *p, char **ret, size_t *ret_len)
{
	_cleanup_buf_ Buf b = BUF_INIT(p->limits.max_string);
	int quote = toml_peek(p);
	int r = lex_string(p, quote, at_triple(p, quote), &b);
	if (r < 0)
		return r;
	char *s = buf_steal(&b, ret_len);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

int toml_lex_key_part(TomlParser *p, TomlKeyPart *ret)
{
	_cleanup_buf_ Buf b = BUF_INIT(p->limits.max_string);
	TomlPos pos = p->here;
	int c = toml_peek(p);
	int r;

	if (toml_is_bare_key_char(c)) {
		size_t from = p->off;
		while (toml_is_bare_key_char(toml_peek(p)))
			toml_advance(p, 1);
		r = append(p, pos, &b, p->data + from, p->off - from);
	} else if (c == '"' || c == '\'') {
		if (at_triple(p, c))
			return toml_fail(p, pos, -EINVAL, "a key cannot be a multi-line string");
		r = lex_string(p, c, false, &b);
	} else {
		char found[32];
		toml_describe_char(p, found, sizeof(found));
		return toml_fail(p, pos, -EINVAL, "expected a key, found %s", found);
	}
	if (r < 0)
		return r;

	size_t len;
	char *s = buf_steal(&b, &len);
	if (!s)
		return -ENOMEM;
	*ret = (TomlKeyPart){ .data = s, .len = len, .pos = pos };
	return 0;
}
