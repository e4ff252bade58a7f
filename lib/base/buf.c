/* SPDX-License-Identifier: MIT */
#include "buf.h"

#include <stdio.h>
#include <string.h>

static size_t buf_limit(const Buf *b)
{
	return b->max ? b->max : SIZE_MAX / 2;
}

int buf_reserve(Buf *b, size_t extra)
{
	size_t limit = buf_limit(b);
	if (extra > limit || b->len > limit - extra)
		return -E2BIG;
	size_t need = b->len + extra + 1; /* + NUL */
	if (need <= b->cap)
		return 0;

	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 4 ? need : cap * 2;
	/* Never allocate much beyond what the limit can ever use. */
	if (cap > limit + 1)
		cap = limit + 1;

	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(Buf *b, const void *data, size_t n)
{
	int r = buf_reserve(b, n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int buf_append_str(Buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_append_byte(Buf *b, uint8_t c)
{
	return buf_append(b, &c, 1);
}

int buf_vprintf(Buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return -EINVAL;
	int r = buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(Buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void buf_consume(Buf *b, size_t n)
{
	if (n >= b->len) {
		buf_clear(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = 0;
}

void buf_clear(Buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

char *buf_steal(Buf *b, size_t *ret_len)
{
	char *p = b->data;
	if (!p) {
		p = calloc(1, 1);
		if (!p)
			return NULL;
	}
	if (ret_len)
		*ret_len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void buf_done(Buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
