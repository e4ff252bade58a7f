/* SPDX-License-Identifier: MIT */
#include "diag.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strutil.h"

/* Messages quote user text (keys, values), which may be long; a diagnostic stays short. */
#define DIAG_TEXT_MAX 512

static int truncate_text(char **s)
{
	if (strlen(*s) <= DIAG_TEXT_MAX)
		return 0;
	size_t cut = DIAG_TEXT_MAX;
	while (cut > 0 && ((unsigned char)(*s)[cut] & 0xc0) == 0x80)
		cut--; /* not inside a UTF-8 sequence */
	char *t = strdupf("%.*s…", (int)cut, *s);
	if (!t)
		return -ENOMEM;
	free(*s);
	*s = t;
	return 0;
}

int diag_addv(DiagList *l, DiagSeverity severity, const char *file, uint32_t line, uint32_t col,
	      const char *hint, const char *fmt, va_list ap)
{
	if (severity == DIAG_ERROR)
		l->n_errors++;
	else
		l->n_warnings++;

	if (l->n >= DIAG_LIST_MAX) {
		l->n_dropped++;
		return 0;
	}
	if (l->n == l->allocated) {
		size_t m = l->allocated ? l->allocated * 2 : 8;
		Diag *items = reallocarray(l->items, m, sizeof(Diag));
		if (!items) {
			l->oom = true;
			return -ENOMEM;
		}
		l->items = items;
		l->allocated = m;
	}

	_cleanup_buf_ Buf msg = BUF_INIT(0);
	_cleanup_free_ char *f = file ? strdup(file) : NULL;
	_cleanup_free_ char *h = hint ? strdup(hint) : NULL;
	if (buf_vprintf(&msg, fmt, ap) < 0 || (file && !f) || (hint && !h)) {
		l->oom = true;
		return -ENOMEM;
	}
	_cleanup_free_ char *text = buf_steal(&msg, NULL);
	if (truncate_text(&text) < 0 || (h && truncate_text(&h) < 0)) {
		l->oom = true;
		return -ENOMEM;
	}
	l->items[l->n++] = (Diag){
		.severity = severity,
		.file = TAKE_PTR(f),
		.line = line,
		.col = col,
		.message = TAKE_PTR(text),
		.hint = TAKE_PTR(h),
	};
	return 0;
}

int diag_add(DiagList *l, DiagSeverity severity, const char *file, uint32_t line, uint32_t col,
	     const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = diag_addv(l, severity, file, line, col, hint, fmt, ap);
	va_end(ap);
	return r;
}

void diag_list_done(DiagList *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].file);
		free(l->items[i].message);
		free(l->items[i].hint);
	}
	free(l->items);
	*l = DIAG_LIST_INIT;
}

static int diag_cmp(const Diag *a, const Diag *b)
{
	int c = strcmp(strempty(a->file), strempty(b->file));
	if (c != 0)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

void diag_list_sort(DiagList *l)
{
	/* Insertion sort: stable (qsort is not), and lists are short (≤ DIAG_LIST_MAX). */
	for (size_t i = 1; i < l->n; i++) {
		Diag d = l->items[i];
		size_t j = i;
		while (j > 0 && diag_cmp(&l->items[j - 1], &d) > 0) {
			l->items[j] = l->items[j - 1];
			j--;
		}
		l->items[j] = d;
	}
}

const char *diag_severity_to_string(DiagSeverity s)
{
	switch (s) {
	case DIAG_ERROR:
		return "error";
	case DIAG_WARNING:
		return "warning";
	default:
		return NULL;
	}
}

/* User text (keys, values, file names) may hold newlines or escapes; keep one line. */
static int append_sanitized(Buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int r;
		if (*p < 0x20 || *p == 0x7f) {
			if (*p == '\n')
				r = buf_append_str(b, "\\n");
			else if (*p == '\t')
				r = buf_append_str(b, "\\t");
			else
				r = buf_printf(b, "\\x%02x", *p);
		} else
			r = buf_append_byte(b, *p);
		if (r < 0)
			return r;
	}
	return 0;
}

int diag_format(const Diag *d, Buf *out)
{
	int r = 0;
	if (d->file) {
		r = append_sanitized(out, d->file);
		if (r >= 0 && d->line > 0)
			r = buf_printf(out, ":%" PRIu32, d->line);
		if (r >= 0 && d->line > 0 && d->col > 0)
			r = buf_printf(out, ":%" PRIu32, d->col);
		if (r >= 0)
			r = buf_append_str(out, ": ");
	}
	if (r >= 0)
		r = buf_printf(out, "%s: ", strempty(diag_severity_to_string(d->severity)));
	if (r >= 0)
		r = append_sanitized(out, strempty(d->message));
	if (r >= 0 && d->hint) {
		r = buf_append_str(out, " (hint: ");
		if (r >= 0)
			r = append_sanitized(out, d->hint);
		if (r >= 0)
			r = buf_append_byte(out, ')');
	}
	return r < 0 ? r : 0;
}

char *diag_to_string(const Diag *d)
{
	_cleanup_buf_ Buf b = BUF_INIT(0);
	if (diag_format(d, &b) < 0)
		return NULL;
	return buf_steal(&b, NULL);
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions), capped:
 * anything past `cap` is reported as cap + 1, which keeps this O(len) per row. */
static size_t edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return cap + 1; /* no keyword is that long; not a typo of one */
	if ((la > lb ? la - lb : lb - la) > cap)
		return cap + 1;

	size_t prev2[65], prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			char ca = (char)tolower((unsigned char)a[i - 1]);
			char cb = (char)tolower((unsigned char)b[j - 1]);
			size_t cost = ca == cb ? 0 : 1;
			size_t v = MIN(prev[j] + 1, cur[j - 1] + 1);
			v = MIN(v, prev[j - 1] + cost);
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb)
				v = MIN(v, prev2[j - 2] + 1);
			cur[j] = v;
		}
		memcpy(prev2, prev, sizeof(prev));
		memcpy(prev, cur, sizeof(cur));
	}
	return MIN(prev[lb], cap + 1);
}

const char *diag_suggest(const char *word, const char *const *candidates)
{
	size_t len = strlen(word);
	size_t cap = len <= 4 ? 1 : 2;
	const char *best = NULL;
	size_t best_d = cap + 1;

	for (const char *const *c = candidates; c && *c; c++) {
		size_t d = edit_distance(word, *c, cap);
		/* A one-letter word is "close" to every one-letter name; that is not a typo. */
		if (d < best_d && d < MAX(len, strlen(*c))) {
			best = *c;
			best_d = d;
		}
	}
	return best;
}
