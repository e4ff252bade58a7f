/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A strict TOML 1.0.0 parser. Sans-I/O: bytes in, a read-only document tree out.
 * Bounded: input size, nesting depth, string length and key count have hard limits
 * (TomlLimits), so hostile input costs at most O(limit) memory (the tree takes up to
 * ~40 bytes per input byte, for an array of one-digit numbers) and O(n log n) time.
 *
 * Every value and every key remembers where it was written (1-based line and column,
 * columns counted in Unicode code points) so callers can report `file:line:col: …`.
 *
 * Ownership: toml_parse() returns one tree owned by the caller; toml_free() frees it all.
 * Pointers returned by the accessors live as long as the tree.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum TomlType {
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
	TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
	TOML_DATE_LOCAL,     /* 1979-05-27 */
	TOML_TIME_LOCAL,     /* 07:32:00 */
	TOML_ARRAY,
	TOML_TABLE,
	_TOML_TYPE_MAX,
	_TOML_TYPE_INVALID = -22,
} TomlType;

typedef struct TomlPos {
	uint32_t line; /* 1-based */
	uint32_t col;  /* 1-based, in code points */
} TomlPos;

/*
 * A field left 0 takes its default, so `(TomlLimits){ .max_depth = 8 }` changes one limit.
 * Hitting a limit makes toml_parse() fail with -E2BIG.
 */
typedef struct TomlLimits {
	size_t max_input;   /* bytes; default 8 MiB, at most 4 GiB - 1 (positions are 32-bit) */
	uint32_t max_depth; /* nesting of tables and arrays below the root, however written
			       ([a.b], a.b = 1, [[x]], [ [ ] ], { }); default 128, at most
			       TOML_DEPTH_HARD_MAX (the parser recurses once per level) */
	size_t max_string;  /* bytes in one string or key after unescaping; default 1 MiB */
	size_t max_keys;    /* keys in the whole document, implicit tables included;
			       default 1,000,000 */
} TomlLimits;

#define TOML_DEPTH_HARD_MAX 512u

typedef struct TomlError {
	TomlPos pos;
	/* One line: what was expected and what was found, e.g. "expected '=' after key
	 * \"name\", found end of line", "duplicate key \"port\" (first defined at 4:1)". */
	char message[256];
} TomlError;

typedef struct TomlValue TomlValue;

/*
 * Parse `len` bytes. `limits` may be NULL for the defaults. On success returns 0 and
 * sets *ret_root to the root table. On failure returns -EINVAL (syntax/semantic error),
 * -E2BIG (a limit was hit) or -ENOMEM, fills *ret_err (if non-NULL), and leaves
 * *ret_root untouched.
 */
int toml_parse(const char *data, size_t len, const TomlLimits *limits, TomlValue **ret_root,
	       TomlError *ret_err);
TomlValue *toml_free(TomlValue *root); /* returns NULL; accepts NULL */

/* Format "file:line:col: message" into buf (always NUL-terminated). */
void toml_error_format(const TomlError *err, const char *filename, char *buf, size_t size);

/* "string", "integer", "float", "boolean", "offset date-time", "local date-time",
 * "local date", "local time", "array", "table"; NULL for an invalid type. */
const char *toml_type_to_string(TomlType t);

TomlType toml_type(const TomlValue *v); /* _TOML_TYPE_INVALID for NULL */
/* Where the value starts; for tables the [header], the '{', or the key that created it. */
TomlPos toml_pos(const TomlValue *v);

/* Scalars. Calling an accessor of the wrong type is a programming error (asserts). */
/* NUL-terminated, but may hold NUL itself ("\u0000"): ret_len (may be NULL) has the length. */
const char *toml_string(const TomlValue *v, size_t *ret_len);
int64_t toml_integer(const TomlValue *v);
double toml_float(const TomlValue *v);
bool toml_bool(const TomlValue *v);
/* Date/time types: the value as written, normalized (uppercase T and Z, ' ' → 'T'). */
const char *toml_datetime(const TomlValue *v);

/* Arrays. */
size_t toml_array_size(const TomlValue *a);
const TomlValue *toml_array_get(const TomlValue *a, size_t i);

/*
 * Tables keep keys in document order. Keys are NUL-terminated, but a quoted key may
 * itself hold NUL ("\u0000"): the _n variants carry the length for callers that care.
 * Lookups take O(log n).
 */
size_t toml_table_size(const TomlValue *t);
const char *toml_table_key(const TomlValue *t, size_t i, TomlPos *ret_key_pos);
const char *toml_table_key_n(const TomlValue *t, size_t i, size_t *ret_len, TomlPos *ret_key_pos);
const TomlValue *toml_table_value(const TomlValue *t, size_t i);
/* Look up one key (not a dotted path); NULL if absent. ret_key_pos may be NULL. */
const TomlValue *toml_table_get(const TomlValue *t, const char *key, TomlPos *ret_key_pos);
const TomlValue *toml_table_get_n(const TomlValue *t, const char *key, size_t len,
				  TomlPos *ret_key_pos);
