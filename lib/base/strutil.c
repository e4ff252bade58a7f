/* SPDX-License-Identifier: MIT */
#include "strutil.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"

const char *startswith(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

bool endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int strscpy(char *dst, size_t size, const char *src)
{
	if (size == 0)
		return -ENOBUFS;
	size_t n = strnlen(src, size);
	if (n == size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = 0;
		return -ENOBUFS;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int strfmt(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= size ? -ENOBUFS : 0;
}

char *strdupf(const char *fmt, ...)
{
	Buf b = BUF_INIT(0);
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (r < 0) {
		buf_done(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

char *strndup_safe(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = malloc(len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = 0;
	return p;
}

char *strstrip(char *s)
{
	char *start = s;
	while (*start && isspace((unsigned char)*start))
		start++;
	size_t n = strlen(start);
	while (n > 0 && isspace((unsigned char)start[n - 1]))
		n--;
	memmove(s, start, n);
	s[n] = 0;
	return s;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	uint32_t cp;
	size_t len;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		cp = c & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	static const uint32_t min_for_len[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int utf8_sanitize(const char *str, size_t n, Buf *out)
{
	const unsigned char *s = (const unsigned char *)str;
	int replaced = 0, r;
	size_t i = 0, run = 0; /* run: valid bytes not yet copied, starting at i - run */
	while (i < n) {
		size_t len = s[i] ? utf8_sequence_length(s + i, n - i) : 0;
		if (len > 0) {
			i += len;
			run += len;
			continue;
		}
		r = buf_append(out, s + i - run, run);
		if (r < 0)
			return r;
		r = buf_append(out, "\xef\xbf\xbd", 3);
		if (r < 0)
			return r;
		run = 0;
		i++;
		replaced = 1;
	}
	r = buf_append(out, s + n - run, run);
	return r < 0 ? r : replaced;
}

bool utf8_is_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else
			return false;
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		static const uint32_t min_for_len[] = { 0, 0, 0x80, 0x800, 0x10000 };
		if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

char *shell_quote(const char *s)
{
	Buf b = BUF_INIT(0);
	int r = buf_append_byte(&b, '\'');
	for (const char *p = s; r >= 0 && *p; p++)
		r = *p == '\'' ? buf_append_str(&b, "'\\''") : buf_append_byte(&b, (uint8_t)*p);
	if (r >= 0)
		r = buf_append_byte(&b, '\'');
	if (r < 0) {
		buf_done(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

size_t strv_length(char *const *l)
{
	size_t n = 0;
	while (l && l[n])
		n++;
	return n;
}

char **strv_free(char **l)
{
	STRV_FOREACH(s, l)
	free(*s);
	free(l);
	return NULL;
}

int strv_push(char ***l, char *s)
{
	size_t n = strv_length(*l);
	char **c = realloc(*l, sizeof(char *) * (n + 2));
	if (!c)
		return -ENOMEM;
	c[n] = s;
	c[n + 1] = NULL;
	*l = c;
	return 0;
}

int strv_extend(char ***l, const char *s)
{
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	int r = strv_push(l, copy);
	if (r < 0)
		free(copy);
	return r;
}

char **strv_copy(char *const *l)
{
	size_t n = strv_length(l);
	char **c = calloc(n + 1, sizeof(char *));
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		c[i] = strdup(l[i]);
		if (!c[i])
			return strv_free(c);
	}
	return c;
}

bool strv_contains(char *const *l, const char *s)
{
	STRV_FOREACH(i, l)
	if (streq(*i, s))
		return true;
	return false;
}
