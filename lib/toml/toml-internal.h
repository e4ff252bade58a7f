/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the parser's files share: the tree's layout, the parser state (one cursor over
 * the input), and the scanner functions toml-parse.c builds the grammar from.
 * Nothing here is part of the public contract.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "toml.h"

/*
 * How a table or array came to be. TOML's redefinition rules depend on it:
 * a [header] may define an IMPLICIT table once but never a DOTTED or INLINE one;
 * dotted keys may only extend tables they created themselves in the same section.
 */
typedef enum TomlOrigin {
	TOML_ORIGIN_VALUE,    /* scalars, and the root table */
	TOML_ORIGIN_IMPLICIT, /* table named on the way to a [header]: [a.b] creates a */
	TOML_ORIGIN_HEADER,   /* table defined by [header], or one element of [[header]] */
	TOML_ORIGIN_DOTTED,   /* table created by a dotted key: a.b = 1 creates a */
	TOML_ORIGIN_INLINE,   /* { } or [ ]: complete as written, immutable */
	TOML_ORIGIN_AOT,      /* array grown by [[header]] */
} TomlOrigin;

#define TOML_NIL UINT32_MAX

/* One key of a table. left/right/height index the table's AVL tree over the keys. */
typedef struct TomlEntry {
	char *key;
	size_t len;
	TomlPos pos;
	TomlValue *value;
	uint32_t left, right;
	uint8_t height;
} TomlEntry;

struct TomlValue {
	TomlType type;
	uint8_t origin;   /* TomlOrigin */
	uint16_t depth;   /* containers between the root and this value */
	uint32_t section; /* DOTTED tables: the section that created them */
	TomlPos pos;
	union {
		struct {
			char *data; /* NUL-terminated; strings and date-times */
			size_t len;
		} str;
		int64_t integer;
		double fp;
		bool boolean;
		struct {
			TomlValue **items;
			size_t n, cap;
		} array;
		struct {
			TomlEntry *entries; /* in document order */
			size_t n, cap;
			uint32_t root; /* of the AVL tree; TOML_NIL when empty */
		} table;
	};
};

/* toml-value.c: building the tree. */
TomlValue *toml_value_new(TomlType type, TomlPos pos);
void toml_value_free(TomlValue *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(TomlValue *, toml_value_free);
int toml_array_push(TomlValue *a, TomlValue *v); /* takes v only on success */
TomlEntry *toml_table_find(const TomlValue *t, const char *key, size_t len);
/* Add a key known to be absent; takes *key and v only on success. */
int toml_table_add(TomlValue *t, char **key, size_t len, TomlPos pos, TomlValue *v);

/* One part of a dotted key, as written. */
typedef struct TomlKeyPart {
	char *data; /* unescaped, NUL-terminated */
	size_t len;
	TomlPos pos;
} TomlKeyPart;

typedef struct TomlParser {
	const char *data;
	size_t len;
	size_t off;
	TomlPos here; /* position of data[off] */
	TomlLimits limits;
	TomlError *err;
	size_t keys; /* table entries created so far */
	TomlValue *root;
	TomlValue *current; /* the table key/value lines go to: the last [header]'s */
	uint32_t section;   /* the [header] section or inline table being filled */
	uint32_t next_section;
} TomlParser;

static inline int toml_peek(const TomlParser *p)
{
	return p->off < p->len ? (unsigned char)p->data[p->off] : -1;
}

static inline int toml_peek_at(const TomlParser *p, size_t k)
{
	return k < p->len - p->off ? (unsigned char)p->data[p->off + k] : -1;
}

static inline bool toml_is_bare_key_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static inline bool toml_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* toml-error.c: messages. All return r (negative), so `return toml_fail(...)` reads well. */
int toml_fail(TomlParser *p, TomlPos pos, int r, const char *fmt, ...) _printf_(4, 5);
/* "'x'", "end of line", "end of input", "U+00A0": what the parser found instead. */
void toml_describe_char(const TomlParser *p, char *buf, size_t size);
/* A key or other text quoted for a message, escaped and cut to a readable length. */
void toml_quote(char *buf, size_t size, const char *s, size_t len);
/* A dotted key path for a message: a.b."c d" */
void toml_quote_path(char *buf, size_t size, const TomlKeyPart *parts, size_t n);
#define TOML_QUOTE_MAX 96

/* toml-lex.c: the cursor, whitespace, comments, newlines, keys and strings. */
void toml_advance(TomlParser *p, size_t n);
/* Validate UTF-8 up front, so everything after may count code points by lead bytes. */
int toml_check_encoding(TomlParser *p);
void toml_skip_ws(TomlParser *p);
int toml_skip_comment(TomlParser *p);
/* 1 if a newline was consumed, 0 if none here, -EINVAL for a bare CR. */
int toml_skip_newline(TomlParser *p);
/* Whitespace, comments and newlines, as between array elements and top-level lines. */
int toml_skip_blank(TomlParser *p);
/* After a key/value pair or a header: whitespace, an optional comment, then a newline. */
int toml_expect_eol(TomlParser *p, const char *after);
int toml_lex_key_part(TomlParser *p, TomlKeyPart *ret);
int toml_lex_string(TomlParser *p, char **ret, size_t *ret_len);

/* toml-scalar.c: booleans, integers, floats and the four date/time kinds. */
int toml_lex_scalar(TomlParser *p, TomlValue **ret);
