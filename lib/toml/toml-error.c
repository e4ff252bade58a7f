/* SPDX-License-Identifier: MIT */
/*
 * Error messages. A message names what was expected and what was found, quoting keys
 * so that control characters and very long keys cannot garble the one-line report.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "toml-internal.h"

int toml_fail(TomlParser *p, TomlPos pos, int r, const char *fmt, ...)
{
	/* The first failure is the one worth reporting; later ones are its echoes. */
	if (p->err->message[0])
		return r;
	p->err->pos = pos;
	va_list ap;
	va_start(ap, fmt);
	/* A message cut short at 255 bytes is still a message. */
	(void)vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
	va_end(ap);
	return r;
}

/* Length of the UTF-8 sequence led by c; the input was validated, so this is exact. */
static size_t utf8_seq_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static uint32_t utf8_decode(const unsigned char *s, size_t n)
{
	static const unsigned char lead_mask[] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
	uint32_t cp = s[0] & lead_mask[n];
	for (size_t i = 1; i < n; i++)
		cp = (cp << 6) | (s[i] & 0x3F);
	return cp;
}

void toml_describe_char(const TomlParser *p, char *buf, size_t size)
{
	int c = toml_peek(p);
	if (c < 0)
		(void)snprintf(buf, size, "end of input");
	else if (c == '\n' || (c == '\r' && toml_peek_at(p, 1) == '\n'))
		(void)snprintf(buf, size, "end of line");
	else if (c >= 0x21 && c < 0x7F)
		(void)snprintf(buf, size, "'%c'", c);
	else if (c == ' ')
		(void)snprintf(buf, size, "space");
	else if (c == '\t')
		(void)snprintf(buf, size, "tab");
	else {
		size_t n = utf8_seq_len((unsigned char)c);
		if (n > p->len - p->off)
			n = 1;
		uint32_t cp = utf8_decode((const unsigned char *)p->data + p->off, n);
		(void)snprintf(buf, size, "U+%04X", (unsigned)cp);
	}
}

/* Append to buf[*pos], keeping room for the terminator; false once it does not fit. */
static bool put(char *buf, size_t size, size_t *pos, const char *s, size_t n)
{
	if (n >= size - *pos)
		return false;
	memcpy(buf + *pos, s, n);
	*pos += n;
	buf[*pos] = 0;
	return true;
}

/*
 * Copy text escaped (control characters as \uXXXX, '"' and '\' with a backslash),
 * stopping at a character boundary when only `reserve` bytes would be left.
 * false if it had to stop.
 */
static bool escape_into(char *buf, size_t size, size_t *pos, size_t reserve, const char *s,
			size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		size_t n, step;
		if (c < 0x20 || c == 0x7F) {
			(void)snprintf(esc, sizeof(esc), "\\u%04X", c);
			n = strlen(esc);
			step = 1;
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
			step = 1;
		} else {
			n = step = MIN(utf8_seq_len(c), len - i);
			memcpy(esc, s + i, n);
		}
		if (*pos + n + reserve >= size)
			return false;
		put(buf, size, pos, esc, n);
		i += step;
	}
	return true;
}

/* Room kept for "...\"" and the terminator, so a cut text still ends well. */
#define RESERVE 5

void toml_quote(char *buf, size_t size, const char *s, size_t len)
{
	size_t pos = 0;
	if (size < RESERVE + 2) {
		if (size > 0)
			buf[0] = 0;
		return;
	}
	buf[0] = 0;
	put(buf, size, &pos, "\"", 1);
	if (!escape_into(buf, size, &pos, RESERVE, s, len))
		put(buf, size, &pos, "...", 3);
	put(buf, size, &pos, "\"", 1);
}

static bool is_bare(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!toml_is_bare_key_char((unsigned char)s[i]))
			return false;
	return true;
}

static bool is_literal_safe(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\'' || c < 0x20 || c == 0x7F)
			return false;
	}
	return true;
}

/* The path as TOML would write it (a.'b c'.d), in double quotes like a single key. */
void toml_quote_path(char *buf, size_t size, const TomlKeyPart *parts, size_t n)
{
	size_t pos = 0;
	if (n == 1) {
		/* One part needs no inner quotes: nothing to tell apart from a dot. */
		toml_quote(buf, size, parts[0].data, parts[0].len);
		return;
	}
	if (size < RESERVE + 2) {
		if (size > 0)
			buf[0] = 0;
		return;
	}
	buf[0] = 0;
	put(buf, size, &pos, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		const char *s = parts[i].data;
		size_t len = parts[i].len;
		const char *q = is_bare(s, len) ? "" : is_literal_safe(s, len) ? "'" : "\"";
		bool ok = (i == 0 || escape_into(buf, size, &pos, RESERVE, ".", 1)) &&
			  escape_into(buf, size, &pos, RESERVE, q, strlen(q)) &&
			  escape_into(buf, size, &pos, RESERVE, s, len) &&
			  escape_into(buf, size, &pos, RESERVE, q, strlen(q));
		if (!ok) {
			put(buf, size, &pos, "...", 3);
			break;
		}
	}
	put(buf, size, &pos, "\"", 1);
}

void toml_error_format(const TomlError *err, const char *filename, char *buf, size_t size)
{
	if (!buf || size == 0)
		return;
	if (filename)
		(void)snprintf(buf, size, "%s:%" PRIu32 ":%" PRIu32 ": %s", filename, err->pos.line,
			       err->pos.col, err->message);
	else
		(void)snprintf(buf, size, "%" PRIu32 ":%" PRIu32 ": %s", err->pos.line,
			       err->pos.col, err->message);
}
