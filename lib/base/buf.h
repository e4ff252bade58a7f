/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A bounded growable byte buffer. It grows geometrically up to `max` bytes and refuses
 * (-E2BIG) to grow past it, so a peer can never make us hold more than we agreed to.
 * The data is always followed by a NUL byte (not counted in len), so text can be used
 * as a C string directly.
 *
 *     Buf b = BUF_INIT(64 * 1024);
 *     r = buf_append(&b, data, n);
 *     ...
 *     buf_done(&b);
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct Buf {
	char *data;
	size_t len;
	size_t cap; /* allocated bytes, including the trailing NUL */
	size_t max; /* hard limit on len; 0 = SIZE_MAX/2 */
} Buf;

#define BUF_INIT(limit) ((Buf){ .data = NULL, .len = 0, .cap = 0, .max = (limit) })

/* Make room for `extra` more bytes. -E2BIG past max, -ENOMEM. */
int buf_reserve(Buf *b, size_t extra);
int buf_append(Buf *b, const void *data, size_t n);
int buf_append_str(Buf *b, const char *s);
int buf_append_byte(Buf *b, uint8_t c);
int buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
int buf_vprintf(Buf *b, const char *fmt, va_list ap) _printf_(2, 0);
/* Drop the first n bytes (n > len drops all). */
void buf_consume(Buf *b, size_t n);
void buf_clear(Buf *b);
/* Hand the NUL-terminated data to the caller (never NULL: "" when empty); b is reset. */
char *buf_steal(Buf *b, size_t *ret_len);
void buf_done(Buf *b);
static inline void buf_donep(Buf *b)
{
	buf_done(b);
}
#define _cleanup_buf_ _cleanup_(buf_donep)
