/* SPDX-License-Identifier: MIT */
/*
 * .dockerignore patterns compiled to small token programs and matched by a memoised
 * walk (no regex library, no backtracking blow-up: O(tokens × path) per pattern).
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fsd-ignore.h"
#include "macro.h"

typedef enum {
	TOK_LIT,       /* one byte */
	TOK_ONE,       /* ? : one byte, not '/' */
	TOK_STAR,      /* * : any run without '/' */
	TOK_DSTAR,     /* ** not at the end: any run of whole directories, or none */
	TOK_DSTAR_END, /* ** at the end: anything */
	TOK_CLASS,     /* [...] */
} TokType;

typedef struct Tok {
	uint8_t type;
	uint8_t c;       /* TOK_LIT */
	bool negate;     /* TOK_CLASS */
	uint8_t set[32]; /* TOK_CLASS: bitmap */
} Tok;

typedef struct Pattern {
	bool exception;
	unsigned n_dirs; /* components of the cleaned pattern */
	size_t n_tok;
	Tok *tok;
	char *literal_prefix; /* up to the first wildcard: to know what an exception can reach */
} Pattern;

struct Ignore {
	Pattern *patterns;
	size_t n, allocated;
	bool has_exceptions;
};

int ignore_new(Ignore **ret)
{
	Ignore *ig = calloc(1, sizeof(Ignore));
	if (!ig)
		return -ENOMEM;
	*ret = ig;
	return 0;
}

Ignore *ignore_free(Ignore *ig)
{
	if (!ig)
		return NULL;
	for (size_t i = 0; i < ig->n; i++) {
		free(ig->patterns[i].tok);
		free(ig->patterns[i].literal_prefix);
	}
	free(ig->patterns);
	free(ig);
	return NULL;
}

size_t ignore_count(const Ignore *ig)
{
	return ig ? ig->n : 0;
}

bool ignore_has_exceptions(const Ignore *ig)
{
	return ig && ig->has_exceptions;
}

char *ignore_path_clean(char *s)
{
	/* Go's filepath.Clean, for '/' paths. */
	size_t n = strlen(s);
	bool rooted = n > 0 && s[0] == '/';
	size_t r = 0, w = 0, dotdot = 0;
	if (rooted) {
		s[w++] = '/';
		r = 1;
		dotdot = 1;
	}
	while (r < n) {
		if (s[r] == '/')
			r++;
		else if (s[r] == '.' && (r + 1 == n || s[r + 1] == '/'))
			r++;
		else if (s[r] == '.' && s[r + 1] == '.' && (r + 2 == n || s[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && s[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					s[w++] = '/';
				s[w++] = '.';
				s[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				s[w++] = '/';
			for (; r < n && s[r] != '/'; r++)
				s[w++] = s[r];
		}
	}
	if (w == 0)
		s[w++] = '.';
	s[w] = 0;
	return s;
}

static void set_bit(uint8_t *set, unsigned c)
{
	set[c / 8] |= (uint8_t)(1u << (c % 8));
}

static bool get_bit(const uint8_t *set, unsigned c)
{
	return set[c / 8] & (1u << (c % 8));
}

/* p: cleaned pattern without '!'. */
static int compile(const char *p, Pattern *ret)
{
	size_t len = strlen(p);
	Tok *tok = calloc(len + 1, sizeof(Tok));
	if (!tok)
		return -ENOMEM;
	size_t n = 0, i = 0, lit_end = SIZE_MAX;
	while (i < len) {
		char ch = p[i];
		Tok *t = &tok[n];
		if (ch == '*') {
			if (lit_end == SIZE_MAX)
				lit_end = i;
			if (p[i + 1] == '*') {
				i += 2;
				if (p[i] == '/')
					i++;
				t->type = i >= len ? TOK_DSTAR_END : TOK_DSTAR;
			} else {
				i++;
				t->type = TOK_STAR;
			}
		} else if (ch == '?') {
			if (lit_end == SIZE_MAX)
				lit_end = i;
			t->type = TOK_ONE;
			i++;
		} else if (ch == '[') {
			if (lit_end == SIZE_MAX)
				lit_end = i;
			size_t j = i + 1;
			t->type = TOK_CLASS;
			if (p[j] == '^') {
				t->negate = true;
				j++;
			}
			bool first = true, closed = false;
			while (j < len) {
				unsigned char lo = (unsigned char)p[j];
				if (lo == ']' && !first) {
					closed = true;
					j++;
					break;
				}
				first = false;
				if (lo == '\\' && j + 1 < len)
					lo = (unsigned char)p[++j];
				j++;
				if (p[j] == '-' && j + 1 < len && p[j + 1] != ']') {
					unsigned char hi = (unsigned char)p[j + 1];
					j += 2;
					if (hi == '\\' && j < len)
						hi = (unsigned char)p[j++];
					if (hi < lo) {
						free(tok);
						return -EINVAL;
					}
					for (unsigned c = lo; c <= hi; c++)
						set_bit(t->set, c);
				} else
					set_bit(t->set, lo);
			}
			if (!closed) {
				free(tok);
				return -EINVAL;
			}
			i = j;
		} else if (ch == '\\' && i + 1 < len) {
			if (lit_end == SIZE_MAX)
				lit_end = i;
			t->type = TOK_LIT;
			t->c = (uint8_t)p[i + 1];
			i += 2;
		} else {
			t->type = TOK_LIT;
			t->c = (uint8_t)ch;
			i++;
		}
		n++;
	}
	if (lit_end == SIZE_MAX)
		lit_end = len;
	char *prefix = strndup(p, lit_end);
	if (!prefix) {
		free(tok);
		return -ENOMEM;
	}
	unsigned dirs = 1;
	for (const char *q = p; *q; q++)
		dirs += *q == '/';
	ret->tok = tok;
	ret->n_tok = n;
	ret->n_dirs = dirs;
	ret->literal_prefix = prefix;
	return 0;
}

/* Memo: 0 unknown, 1 no, 2 yes; indexed [ti * (len + 1) + si]. */
static bool match_at(const Pattern *p, size_t ti, const char *s, size_t len, size_t si,
		     uint8_t *memo)
{
	uint8_t *m = memo ? &memo[ti * (len + 1) + si] : NULL;
	if (m && *m)
		return *m == 2;
	bool ok = false;
	if (ti == p->n_tok)
		ok = si == len;
	else {
		const Tok *t = &p->tok[ti];
		switch (t->type) {
		case TOK_LIT:
			ok = si < len && (uint8_t)s[si] == t->c &&
			     match_at(p, ti + 1, s, len, si + 1, memo);
			break;
		case TOK_ONE:
			ok = si < len && s[si] != '/' && match_at(p, ti + 1, s, len, si + 1, memo);
			break;
		case TOK_CLASS:
			ok = si < len && s[si] != '/' &&
			     get_bit(t->set, (uint8_t)s[si]) != t->negate &&
			     match_at(p, ti + 1, s, len, si + 1, memo);
			break;
		case TOK_STAR:
			for (size_t j = si;; j++) {
				if (match_at(p, ti + 1, s, len, j, memo)) {
					ok = true;
					break;
				}
				if (j >= len || s[j] == '/')
					break;
			}
			break;
		case TOK_DSTAR:
			if (match_at(p, ti + 1, s, len, si, memo)) {
				ok = true;
				break;
			}
			for (size_t j = si; j < len; j++)
				if (s[j] == '/' && match_at(p, ti + 1, s, len, j + 1, memo)) {
					ok = true;
					break;
				}
			break;
		case TOK_DSTAR_END:
			ok = true;
			break;
		}
	}
	if (m)
		*m = ok ? 2 : 1;
	return ok;
}

static bool pattern_match(const Pattern *p, const char *s, size_t len)
{
	/* Small programs on short paths need no memo; long ones get one (bounded by the
	 * pattern and path limits: 4 KiB × 4 KiB at worst, allocated only then). */
	size_t cells = (p->n_tok + 1) * (len + 1);
	bool wild = false;
	for (size_t i = 0; i < p->n_tok && !wild; i++)
		wild = p->tok[i].type == TOK_STAR || p->tok[i].type == TOK_DSTAR;
	if (!wild)
		return match_at(p, 0, s, len, 0, NULL);
	uint8_t stackmemo[4096];
	uint8_t *memo = stackmemo;
	_cleanup_free_ uint8_t *heap = NULL;
	if (cells > sizeof stackmemo) {
		heap = calloc(cells, 1);
		if (!heap)
			return match_at(p, 0, s, len, 0, NULL);
		memo = heap;
	} else
		memset(stackmemo, 0, cells);
	return match_at(p, 0, s, len, 0, memo);
}

int ignore_add_pattern(Ignore *ig, const char *pattern)
{
	size_t len = strlen(pattern);
	if (len > IGNORE_PATTERN_LEN_MAX)
		return -E2BIG;
	/* Trim white space like strings.TrimSpace (ASCII part). */
	while (len > 0 && strchr(" \t\r\n\v\f", pattern[0])) {
		pattern++;
		len--;
	}
	while (len > 0 && strchr(" \t\r\n\v\f", pattern[len - 1]))
		len--;
	if (len == 0)
		return 0;
	bool exception = pattern[0] == '!';
	if (exception) {
		pattern++;
		len--;
		while (len > 0 && strchr(" \t\r\n\v\f", pattern[0])) {
			pattern++;
			len--;
		}
		if (len == 0)
			return -EINVAL; /* "illegal exclusion pattern: !" */
	}
	_cleanup_free_ char *p = strndup(pattern, len);
	if (!p)
		return -ENOMEM;
	ignore_path_clean(p);
	char *q = p;
	if (q[0] == '/' && q[1])
		q++;
	if (strcmp(q, ".") == 0)
		return 0;
	if (ig->n >= IGNORE_PATTERNS_MAX)
		return -E2BIG;
	if (ig->n == ig->allocated) {
		size_t na = ig->allocated ? ig->allocated * 2 : 16;
		Pattern *np = realloc(ig->patterns, na * sizeof(Pattern));
		if (!np)
			return -ENOMEM;
		ig->patterns = np;
		ig->allocated = na;
	}
	Pattern pat = { .exception = exception };
	int r = compile(q, &pat);
	if (r < 0)
		return r;
	ig->patterns[ig->n++] = pat;
	if (exception)
		ig->has_exceptions = true;
	return 0;
}

int ignore_add_text(Ignore *ig, const char *text, size_t size, unsigned *ret_line)
{
	if (size > IGNORE_TEXT_MAX)
		return -E2BIG;
	const char *p = text, *end = text + size;
	unsigned line = 0;
	if (size >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		if (n > 0 && p[0] != '#') {
			if (n > IGNORE_PATTERN_LEN_MAX) {
				if (ret_line)
					*ret_line = line;
				return -E2BIG;
			}
			char buf[IGNORE_PATTERN_LEN_MAX + 1];
			memcpy(buf, p, n);
			buf[n] = 0;
			/* A NUL inside a line ends it; Docker would keep it, a path never has one.
			 */
			int r = ignore_add_pattern(ig, buf);
			if (r < 0) {
				if (ret_line)
					*ret_line = line;
				return r;
			}
		}
		p += n + 1;
	}
	return 0;
}

bool ignore_match(const Ignore *ig, const char *path)
{
	if (!ig || ig->n == 0)
		return false;
	size_t len = strlen(path);
	if (len > IGNORE_PATTERN_LEN_MAX * 2)
		return false;
	char buf[IGNORE_PATTERN_LEN_MAX * 2 + 1];
	memcpy(buf, path, len + 1);
	ignore_path_clean(buf);
	len = strlen(buf);

	bool matched = false;
	for (size_t i = 0; i < ig->n; i++) {
		const Pattern *p = &ig->patterns[i];
		if (p->exception != matched)
			continue;
		bool m = pattern_match(p, buf, len);
		/* MatchesOrParentMatches: every parent directory, shortest first */
		for (size_t k = 0; !m && k < len; k++)
			if (buf[k] == '/')
				m = pattern_match(p, buf, k);
		if (m)
			matched = !p->exception;
	}
	return matched;
}

/* Could exception p match `dir` or something beneath it? Conservative: compare the
 * literal prefix of the pattern with dir + "/". */
static bool exception_may_reach(const Pattern *p, const char *dir, size_t len)
{
	bool dstar = false;
	for (size_t i = 0; i < p->n_tok; i++)
		dstar |= p->tok[i].type == TOK_DSTAR || p->tok[i].type == TOK_DSTAR_END;
	if (!dstar) {
		/* Without "**" a pattern spans exactly n_dirs components: beneath a dir that is
		 * as deep or deeper it can only match through that dir's own prefix. */
		unsigned depth = 1;
		for (size_t i = 0; i < len; i++)
			depth += dir[i] == '/';
		if (p->n_dirs <= depth) {
			size_t k = 0, seen = 0;
			for (; k < len; k++)
				if (dir[k] == '/' && ++seen == p->n_dirs)
					break;
			return pattern_match(p, dir, k);
		}
	}
	const char *pre = p->literal_prefix;
	size_t pl = strlen(pre);
	if (pl == 0)
		return true;
	if (pl <= len)
		return strncmp(pre, dir, pl) == 0;
	/* prefix longer than dir: it must continue dir with '/' */
	return strncmp(pre, dir, len) == 0 && pre[len] == '/';
}

bool ignore_hidden(const Ignore *ig, const char *path, bool is_dir)
{
	if (!ignore_match(ig, path))
		return false;
	if (!is_dir || !ig->has_exceptions)
		return true;
	size_t len = strlen(path);
	for (size_t i = 0; i < ig->n; i++)
		if (ig->patterns[i].exception && exception_may_reach(&ig->patterns[i], path, len))
			return false;
	return true;
}
