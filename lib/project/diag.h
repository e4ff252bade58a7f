/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Diagnostics: what a loader found wrong with a user's files, each pinned to a place.
 * Library code never logs; it collects these and the caller prints them, typically one
 * line each through diag_format():
 *
 *     locald.toml:7:8: error: expected integer, got string (hint: write port = 8080)
 *
 * A list holds at most DIAG_LIST_MAX entries so a hostile file cannot make us hold
 * millions of messages; past that entries are only counted (n_dropped), while
 * n_errors/n_warnings always count everything, so "did it fail?" stays exact.
 *
 * Allocation failure while recording is sticky (oom = true): a loader checks it once at
 * the end and returns -ENOMEM, instead of every call site checking.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "macro.h"

#define DIAG_LIST_MAX 256

typedef enum DiagSeverity {
	DIAG_ERROR,
	DIAG_WARNING,
	_DIAG_SEVERITY_MAX,
	_DIAG_SEVERITY_INVALID = -EINVAL,
} DiagSeverity;

typedef struct Diag {
	DiagSeverity severity;
	char *file;    /* as the loader was given it; NULL when not about a file */
	uint32_t line; /* 1-based; 0 = the whole file */
	uint32_t col;  /* 1-based, in code points; 0 = the whole line */
	char *message; /* "expected integer, got string" */
	char *hint;    /* NULL or "write port = 8080" */
} Diag;

typedef struct DiagList {
	Diag *items;
	size_t n, allocated;
	size_t n_errors, n_warnings; /* including dropped ones */
	size_t n_dropped;
	bool oom;
} DiagList;

#define DIAG_LIST_INIT ((DiagList){ 0 })

/* Record one diagnostic. hint may be NULL. Returns 0, or -ENOMEM (then l->oom is set). */
int diag_add(DiagList *l, DiagSeverity severity, const char *file, uint32_t line, uint32_t col,
	     const char *hint, const char *fmt, ...) _printf_(7, 8);
int diag_addv(DiagList *l, DiagSeverity severity, const char *file, uint32_t line, uint32_t col,
	      const char *hint, const char *fmt, va_list ap) _printf_(7, 0);

static inline bool diag_list_has_errors(const DiagList *l)
{
	return l->n_errors > 0;
}
void diag_list_done(DiagList *l);
static inline void diag_list_donep(DiagList *l)
{
	diag_list_done(l);
}
#define _cleanup_diag_list_ _cleanup_(diag_list_donep)

/* Sort by file, line, column (stable), so a report reads top to bottom. */
void diag_list_sort(DiagList *l);

const char *diag_severity_to_string(DiagSeverity s); /* "error", "warning" */

/*
 * One line, no trailing newline: "file:line:col: error: message (hint: hint)".
 * Parts that are unknown are left out ("file: error: …", "error: …"). Control characters
 * coming from user input are escaped so one diagnostic is always one line.
 */
int diag_format(const Diag *d, Buf *out);
/* Same, as a new string; NULL on ENOMEM. */
char *diag_to_string(const Diag *d);

/*
 * "Did you mean": the candidate closest to `word` by edit distance, if it is close enough
 * to be a plausible typo (distance ≤ 1 for short words, ≤ 2 otherwise, case-insensitive);
 * else NULL. candidates is NULL-terminated.
 */
const char *diag_suggest(const char *word, const char *const *candidates);
