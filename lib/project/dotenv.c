/* SPDX-License-Identifier: MIT */
/* The .env format; see dotenv_parse() in project.h for what it accepts. */
#include <stdlib.h>
#include <string.h>

#include "project-internal.h"
#include "strutil.h"

typedef struct Cursor {
	const char *data;
	size_t len, i;
	uint32_t line;
	size_t line_start; /* offset of the current line, for columns */
	const char *file;
	DiagList *diags;
} Cursor;

static bool at_end(const Cursor *c)
{
	return c->i >= c->len;
}

static char peek(const Cursor *c)
{
	return at_end(c) ? 0 : c->data[c->i];
}

/* Column of offset `at` on the current line, in code points (like TOML positions). */
static uint32_t col_at(const Cursor *c, size_t at)
{
	uint32_t col = 1;
	for (size_t k = c->line_start; k < at && k < c->len; k++)
		if (((unsigned char)c->data[k] & 0xc0) != 0x80)
			col++;
	return col;
}

static void advance(Cursor *c)
{
	if (c->data[c->i] == '\n') {
		c->line++;
		c->line_start = c->i + 1;
	}
	c->i++;
}

static void skip_blanks(Cursor *c)
{
	while (!at_end(c) && (peek(c) == ' ' || peek(c) == '\t' || peek(c) == '\r'))
		c->i++;
}

static void skip_line(Cursor *c)
{
	while (!at_end(c) && peek(c) != '\n')
		c->i++;
	if (!at_end(c))
		advance(c);
}

static void error_at(Cursor *c, size_t at, const char *hint, const char *msg)
{
	(void)diag_add(c->diags, DIAG_ERROR, c->file, c->line, col_at(c, at), hint, "%s", msg);
}

static bool is_key_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool is_key_char(char ch)
{
	return is_key_start(ch) || (ch >= '0' && ch <= '9');
}

/* A quoted value, the cursor on its opening quote. It may span lines. */
static int quoted_value(Cursor *c, Buf *out, bool *ret_ok)
{
	char q = peek(c);
	size_t open_at = c->i;
	uint32_t open_line = c->line;
	size_t open_line_start = c->line_start;
	c->i++;
	while (!at_end(c) && peek(c) != q) {
		char ch = peek(c);
		int r;
		if (q == '"' && ch == '\\' && c->i + 1 < c->len) {
			char e = c->data[c->i + 1];
			const char *rep = e == 'n'    ? "\n"
					  : e == 't'  ? "\t"
					  : e == 'r'  ? "\r"
					  : e == '"'  ? "\""
					  : e == '\\' ? "\\"
					  : e == '$'  ? "$"
						      : NULL;
			if (rep) {
				r = buf_append_str(out, rep);
				c->i += 2;
			} else {
				r = buf_append_byte(out,
						    '\\'); /* unknown escapes stay as written */
				c->i++;
			}
		} else {
			r = buf_append_byte(out, (uint8_t)ch);
			advance(c);
		}
		if (r < 0)
			return r;
	}
	if (at_end(c)) {
		/* Report where the quote opened: that is where the mistake is. */
		uint32_t col = 1;
		for (size_t k = open_line_start; k < open_at; k++)
			if (((unsigned char)c->data[k] & 0xc0) != 0x80)
				col++;
		(void)diag_add(c->diags, DIAG_ERROR, c->file, open_line, col,
			       "close the value with a matching quote",
			       "unterminated %s-quoted value", q == '"' ? "double" : "single");
		*ret_ok = false;
		return 0;
	}
	c->i++; /* closing quote */
	skip_blanks(c);
	if (!at_end(c) && peek(c) != '\n' && peek(c) != '#') {
		error_at(c, c->i, "put comments after a '#'",
			 "unexpected text after the closing quote");
		skip_line(c);
		*ret_ok = false;
		return 0;
	}
	skip_line(c);
	*ret_ok = true;
	return 0;
}

/* An unquoted value: the rest of the line, without a trailing " # comment" and blanks. */
static int plain_value(Cursor *c, Buf *out)
{
	size_t start = c->i;
	while (!at_end(c) && peek(c) != '\n')
		c->i++;
	size_t end = c->i;
	for (size_t k = start; k < end; k++)
		/* k ≥ 1: a value always follows its '='. */
		if (c->data[k] == '#' && (c->data[k - 1] == ' ' || c->data[k - 1] == '\t')) {
			end = k;
			break;
		}
	while (end > start &&
	       (c->data[end - 1] == ' ' || c->data[end - 1] == '\t' || c->data[end - 1] == '\r'))
		end--;
	skip_line(c);
	return buf_append(out, c->data + start, end - start);
}

/* One assignment (or blank/comment line). Diagnostics for bad lines; -ENOMEM only. */
static int dotenv_entry(Cursor *c, EnvList *env)
{
	skip_blanks(c);
	if (at_end(c))
		return 0;
	if (peek(c) == '\n' || peek(c) == '#') {
		skip_line(c);
		return 0;
	}

	const char *rest = c->data + c->i;
	size_t left = c->len - c->i;
	if (left > 7 && memcmp(rest, "export", 6) == 0 && (rest[6] == ' ' || rest[6] == '\t')) {
		c->i += 6;
		skip_blanks(c);
	}

	uint32_t line = c->line;
	size_t key_start = c->i;
	if (!is_key_start(peek(c))) {
		error_at(c, c->i, "write KEY=value", "expected a variable name");
		skip_line(c);
		return 0;
	}
	while (!at_end(c) && is_key_char(peek(c)))
		c->i++;
	_cleanup_free_ char *key = strndup_safe(c->data + key_start, c->i - key_start);
	if (!key)
		return -ENOMEM;
	skip_blanks(c);
	if (peek(c) != '=') {
		error_at(c, c->i, "write KEY=value; names are letters, digits and '_'",
			 "expected '=' after the variable name");
		skip_line(c);
		return 0;
	}
	c->i++;
	skip_blanks(c);

	SourcePos pos = POS(line, col_at(c, c->i));
	_cleanup_buf_ Buf value = BUF_INIT(PROJECT_DOTENV_MAX);
	bool ok = true;
	int r = peek(c) == '"' || peek(c) == '\'' ? quoted_value(c, &value, &ok)
						  : plain_value(c, &value);
	if (r < 0)
		return r;
	if (!ok)
		return 0;
	if (memchr(value.data ? value.data : "", 0, value.len)) {
		(void)diag_add(c->diags, DIAG_ERROR, c->file, pos.line, pos.col, NULL,
			       "value of %s contains a NUL character", key);
		return 0;
	}
	return env_list_set(env, key, value.data ? value.data : "", pos);
}

int dotenv_parse(const char *data, size_t len, const char *file, EnvList *env, DiagList *diags)
{
	Cursor c = { .data = data, .len = len, .line = 1, .file = file, .diags = diags };
	while (!at_end(&c)) {
		int r = dotenv_entry(&c, env);
		if (r < 0)
			return r;
	}
	return 0;
}
