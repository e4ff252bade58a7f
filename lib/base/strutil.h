/* SPDX-License-Identifier: MIT */
#pragma once

/* String helpers. strv = NULL-terminated array of heap strings, owned by its holder. */

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "macro.h"

static inline bool streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}
static inline bool isempty(const char *s)
{
	return !s || !*s;
}
static inline const char *strempty(const char *s)
{
	return s ? s : "";
}
/* If s starts with prefix, return the rest of s; else NULL. */
const char *startswith(const char *s, const char *prefix) _pure_;
bool endswith(const char *s, const char *suffix) _pure_;

/* Copy into a fixed buffer, always NUL-terminating. Returns -ENOBUFS if truncated. */
int strscpy(char *dst, size_t size, const char *src);
/* snprintf into a fixed buffer; -ENOBUFS if truncated (buffer still terminated). */
int strfmt(char *dst, size_t size, const char *fmt, ...) _printf_(3, 4);
/* asprintf that returns NULL on failure. */
char *strdupf(const char *fmt, ...) _printf_(1, 2);
/* strndup that never reads past n bytes; NULL on ENOMEM. */
char *strndup_safe(const char *s, size_t n);

/* Strip ASCII whitespace at both ends, in place; returns s. */
char *strstrip(char *s);

/* Valid UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF) in exactly n bytes. */
bool utf8_is_valid(const char *s, size_t n) _pure_;

/* Append s[0..n) to out as valid UTF-8 without NUL bytes: every invalid sequence and every
 * NUL becomes U+FFFD. Returns 1 if something was replaced, 0 if not, or the Buf's -errno. */
struct Buf;
int utf8_sanitize(const char *s, size_t n, struct Buf *out);

/* Shell-safe single-quoted copy of s ('a'\''b'). NULL on ENOMEM. */
char *shell_quote(const char *s);

size_t strv_length(char *const *l) _pure_;
char **strv_free(char **l); /* returns NULL; accepts NULL */
/* Append a copy of s; *l may be NULL. 0 or -ENOMEM (then *l is unchanged). */
int strv_extend(char ***l, const char *s);
/* Append s itself (ownership taken only on success). */
int strv_push(char ***l, char *s);
char **strv_copy(char *const *l);
bool strv_contains(char *const *l, const char *s) _pure_;

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)

static inline void strv_freep(char ***l)
{
	strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
