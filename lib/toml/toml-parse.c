/* SPDX-License-Identifier: MIT */
/*
 * The grammar and the table rules: the document's lines, [headers] and [[headers]],
 * key/value pairs with dotted keys, arrays and inline tables, and the rules on which
 * table may be defined, extended or redefined by what (see TomlOrigin).
 *
 * Recursion happens only for nested arrays and inline tables, one level per nesting
 * level, and nesting is refused past limits.max_depth.
 */
#include <stdio.h>
#include <string.h>

#include "toml-internal.h"

#define DEFAULT_MAX_INPUT (8u << 20)
#define DEFAULT_MAX_DEPTH 128u
#define DEFAULT_MAX_STRING (1u << 20)
#define DEFAULT_MAX_KEYS 1000000u

typedef struct KeyPath {
	TomlKeyPart *parts;
	size_t n, cap;
} KeyPath;

static void key_path_done(KeyPath *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->parts[i].data);
	free(k->parts);
	*k = (KeyPath){};
}

static int parse_value(TomlParser *p, uint32_t parent_depth, TomlValue **ret);

/* key = simple-key *( ws '.' ws simple-key ), and the whitespace after it. */
static int parse_key(TomlParser *p, KeyPath *k)
{
	for (;;) {
		/* A key longer than the nesting limit could never be stored anyway. */
		if (k->n > p->limits.max_depth)
			return toml_fail(p, p->here, -E2BIG,
					 "key nested deeper than %" PRIu32 " levels",
					 p->limits.max_depth);
		if (k->n == k->cap) {
			size_t cap = k->cap ? k->cap * 2 : 4;
			TomlKeyPart *parts = realloc(k->parts, cap * sizeof(*parts));
			if (!parts)
				return -ENOMEM;
			k->parts = parts;
			k->cap = cap;
		}
		int r = toml_lex_key_part(p, &k->parts[k->n]);
		if (r < 0)
			return r;
		k->n++;
		toml_skip_ws(p);
		if (toml_peek(p) != '.')
			return 0;
		toml_advance(p, 1);
		toml_skip_ws(p);
	}
}

/* "a table", "an integer": what an existing value is, for messages. */
static const char *describe(const TomlValue *v)
{
	switch (v->type) {
	case TOML_TABLE:
		return v->origin == TOML_ORIGIN_INLINE   ? "an inline table"
		       : v->origin == TOML_ORIGIN_DOTTED ? "a table defined by dotted keys"
							 : "a table";
	case TOML_ARRAY:
		return v->origin == TOML_ORIGIN_AOT ? "an array of tables" : "an array";
	case TOML_STRING:
		return "a string";
	case TOML_INTEGER:
		return "an integer";
	case TOML_FLOAT:
		return "a float";
	case TOML_BOOL:
		return "a boolean";
	case TOML_DATETIME:
		return "an offset date-time";
	case TOML_DATETIME_LOCAL:
		return "a local date-time";
	case TOML_DATE_LOCAL:
		return "a local date";
	case TOML_TIME_LOCAL:
		return "a local time";
	default:
		return "a value";
	}
}

/* Where an existing entry was first written: a table's header, else its key. */
static TomlPos defined_at(const TomlEntry *e)
{
	if (e->value->type == TOML_TABLE || e->value->origin == TOML_ORIGIN_AOT)
		return e->value->pos;
	return e->pos;
}

/*
 * "cannot define table "a.b.c": "a.b" is already an integer (defined at 1:1)", or when
 * the whole key is the culprit, "cannot define table "a.b": it is already ...".
 */
static int fail_conflict(TomlParser *p, const char *doing, const KeyPath *k, size_t upto,
			 const TomlEntry *e)
{
	char whole[TOML_QUOTE_MAX], part[TOML_QUOTE_MAX];
	toml_quote_path(whole, sizeof(whole), k->parts, k->n);
	if (upto == k->n)
		(void)snprintf(part, sizeof(part), "it");
	else
		toml_quote_path(part, sizeof(part), k->parts, upto);
	TomlPos at = defined_at(e);
	return toml_fail(p, k->parts[upto - 1].pos, -EINVAL,
			 "cannot %s %s: %s is already %s (defined at %" PRIu32 ":%" PRIu32 ")",
			 doing, whole, part, describe(e->value), at.line, at.col);
}

static int fail_depth(TomlParser *p, TomlPos pos)
{
	return toml_fail(p, pos, -E2BIG, "nesting deeper than %" PRIu32 " levels",
			 p->limits.max_depth);
}

/* A new container one level below parent_depth, refused past the depth limit. */
static int container_new(TomlParser *p, TomlType type, TomlOrigin origin, uint32_t depth,
			 TomlPos pos, TomlValue **ret)
{
	if (depth > p->limits.max_depth)
		return fail_depth(p, pos);
	TomlValue *v = toml_value_new(type, pos);
	if (!v)
		return -ENOMEM;
	v->origin = (uint8_t)origin;
	v->depth = (uint16_t)depth;
	v->section = p->section;
	*ret = v;
	return 0;
}

/* Add key `part` = v to t, counting it against the key limit; takes v on success. */
static int table_add(TomlParser *p, TomlValue *t, const TomlKeyPart *part, TomlValue *v)
{
	if (p->keys >= p->limits.max_keys)
		return toml_fail(p, part->pos, -E2BIG, "more than %zu keys", p->limits.max_keys);
	_cleanup_free_ char *key = malloc(part->len + 1);
	if (!key)
		return -ENOMEM;
	memcpy(key, part->data, part->len + 1);
	int r = toml_table_add(t, &key, part->len, part->pos, v);
	if (r == -E2BIG)
		return toml_fail(p, part->pos, r, "too many keys in one table");
	if (r < 0)
		return r;
	p->keys++;
	return 0;
}

/* Create table `part` in t; the new table is owned by t and returned in *ret. */
static int table_add_table(TomlParser *p, TomlValue *t, const TomlKeyPart *part, TomlOrigin origin,
			   TomlValue **ret)
{
	_cleanup_(toml_value_freep) TomlValue *v = NULL;
	int r = container_new(p, TOML_TABLE, origin, t->depth + 1u, part->pos, &v);
	if (r < 0)
		return r;
	r = table_add(p, t, part, v);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

/*
 * Walk the parts of a [header] but the last from the root. Headers may pass through
 * any table except an inline one, creating missing ones as IMPLICIT, and through an
 * array of tables into its last element.
 */
static int header_walk(TomlParser *p, const char *doing, const KeyPath *k, TomlValue **ret)
{
	TomlValue *t = p->root;
	for (size_t i = 0; i + 1 < k->n; i++) {
		const TomlKeyPart *part = &k->parts[i];
		TomlEntry *e = toml_table_find(t, part->data, part->len);
		if (!e) {
			int r = table_add_table(p, t, part, TOML_ORIGIN_IMPLICIT, &t);
			if (r < 0)
				return r;
			continue;
		}
		TomlValue *v = e->value;
		if (v->type == TOML_TABLE && v->origin != TOML_ORIGIN_INLINE)
			t = v;
		else if (v->type == TOML_ARRAY && v->origin == TOML_ORIGIN_AOT)
			t = v->array.items[v->array.n - 1];
		else
			return fail_conflict(p, doing, k, i + 1, e);
	}
	*ret = t;
	return 0;
}

static int define_table(TomlParser *p, const KeyPath *k, TomlPos pos)
{
	TomlValue *parent = NULL;
	int r = header_walk(p, "define table", k, &parent);
	if (r < 0)
		return r;
	const TomlKeyPart *last = &k->parts[k->n - 1];
	TomlEntry *e = toml_table_find(parent, last->data, last->len);
	TomlValue *t = NULL;
	if (!e) {
		r = table_add_table(p, parent, last, TOML_ORIGIN_HEADER, &t);
		if (r < 0)
			return r;
	} else if (e->value->type == TOML_TABLE && e->value->origin == TOML_ORIGIN_IMPLICIT) {
		/* [a.b] named a on the way; this is a's one definition. */
		t = e->value;
		t->origin = TOML_ORIGIN_HEADER;
	} else if (e->value->type == TOML_TABLE && e->value->origin == TOML_ORIGIN_HEADER) {
		char q[TOML_QUOTE_MAX];
		toml_quote_path(q, sizeof(q), k->parts, k->n);
		TomlPos at = defined_at(e);
		return toml_fail(p, last->pos, -EINVAL,
				 "table %s is already defined (first defined at %" PRIu32
				 ":%" PRIu32 ")",
				 q, at.line, at.col);
	} else
		return fail_conflict(p, "define table", k, k->n, e);
	t->pos = pos;
	p->current = t;
	return 0;
}

static int append_table(TomlParser *p, const KeyPath *k, TomlPos pos)
{
	TomlValue *parent = NULL, *array = NULL;
	int r = header_walk(p, "define array of tables", k, &parent);
	if (r < 0)
		return r;
	const TomlKeyPart *last = &k->parts[k->n - 1];
	TomlEntry *e = toml_table_find(parent, last->data, last->len);
	if (!e) {
		_cleanup_(toml_value_freep) TomlValue *v = NULL;
		r = container_new(p, TOML_ARRAY, TOML_ORIGIN_AOT, parent->depth + 1u, pos, &v);
		if (r < 0)
			return r;
		r = table_add(p, parent, last, v);
		if (r < 0)
			return r;
		array = TAKE_PTR(v);
	} else if (e->value->type == TOML_ARRAY && e->value->origin == TOML_ORIGIN_AOT)
		array = e->value;
	else
		return fail_conflict(p, "define array of tables", k, k->n, e);

	_cleanup_(toml_value_freep) TomlValue *t = NULL;
	r = container_new(p, TOML_TABLE, TOML_ORIGIN_HEADER, array->depth + 1u, pos, &t);
	if (r < 0)
		return r;
	r = toml_array_push(array, t);
	if (r < 0)
		return r;
	p->current = TAKE_PTR(t);
	return 0;
}

/* [key] or [[key]], the cursor on the first '['. */
static int parse_header(TomlParser *p)
{
	_cleanup_(key_path_done) KeyPath k = {};
	TomlPos pos = p->here;
	bool aot = toml_peek_at(p, 1) == '[';

	toml_advance(p, aot ? 2 : 1);
	toml_skip_ws(p);
	int r = parse_key(p, &k);
	if (r < 0)
		return r;
	if (toml_peek(p) != ']' || (aot && toml_peek_at(p, 1) != ']')) {
		char q[TOML_QUOTE_MAX], found[32];
		toml_quote_path(q, sizeof(q), k.parts, k.n);
		toml_describe_char(p, found, sizeof(found));
		return toml_fail(p, p->here, -EINVAL, "expected '%s' after table name %s, found %s",
				 aot ? "]]" : "]", q, found);
	}
	toml_advance(p, aot ? 2 : 1);
	r = toml_expect_eol(p, "table header");
	if (r < 0)
		return r;

	/* A new section: tables made by dotted keys before it are now closed. */
	p->section = ++p->next_section;
	return aot ? append_table(p, &k, pos) : define_table(p, &k, pos);
}

/*
 * Walk the parts of a dotted key but the last from base. Dotted keys may only pass
 * through tables they created in this same section (or that a header merely named),
 * never through a table with its own [header], an inline table or any array.
 */
static int dotted_walk(TomlParser *p, TomlValue *base, const KeyPath *k, TomlValue **ret)
{
	TomlValue *t = base;
	for (size_t i = 0; i + 1 < k->n; i++) {
		const TomlKeyPart *part = &k->parts[i];
		TomlEntry *e = toml_table_find(t, part->data, part->len);
		if (!e) {
			int r = table_add_table(p, t, part, TOML_ORIGIN_DOTTED, &t);
			if (r < 0)
				return r;
			continue;
		}
		TomlValue *v = e->value;
		if (v->type == TOML_TABLE && v->origin == TOML_ORIGIN_IMPLICIT) {
			v->origin = TOML_ORIGIN_DOTTED;
			v->section = p->section;
			t = v;
		} else if (v->type == TOML_TABLE && v->origin == TOML_ORIGIN_DOTTED &&
			   v->section == p->section)
			t = v;
		else if (v->type == TOML_TABLE && v->origin == TOML_ORIGIN_HEADER) {
			char whole[TOML_QUOTE_MAX], q[TOML_QUOTE_MAX];
			toml_quote_path(whole, sizeof(whole), k->parts, k->n);
			toml_quote_path(q, sizeof(q), k->parts, i + 1);
			TomlPos at = defined_at(e);
			return toml_fail(p, part->pos, -EINVAL,
					 "cannot set %s: table %s has its own header at %" PRIu32
					 ":%" PRIu32 " and cannot be extended with dotted keys",
					 whole, q, at.line, at.col);
		} else
			return fail_conflict(p, "set", k, i + 1, e);
	}
	*ret = t;
	return 0;
}

/* key = value, into base (the current table, or an inline table being read). */
static int parse_keyval(TomlParser *p, TomlValue *base)
{
	_cleanup_(key_path_done) KeyPath k = {};
	int r = parse_key(p, &k);
	if (r < 0)
		return r;
	if (toml_peek(p) != '=') {
		char q[TOML_QUOTE_MAX], found[32];
		toml_quote_path(q, sizeof(q), k.parts, k.n);
		toml_describe_char(p, found, sizeof(found));
		return toml_fail(p, p->here, -EINVAL, "expected '=' after key %s, found %s", q,
				 found);
	}
	toml_advance(p, 1);
	toml_skip_ws(p);

	/* Resolve the key before reading the value, so a duplicate is reported at once. */
	TomlValue *t = NULL;
	r = dotted_walk(p, base, &k, &t);
	if (r < 0)
		return r;
	const TomlKeyPart *last = &k.parts[k.n - 1];
	TomlEntry *e = toml_table_find(t, last->data, last->len);
	if (e) {
		char q[TOML_QUOTE_MAX];
		toml_quote(q, sizeof(q), last->data, last->len);
		TomlPos at = defined_at(e);
		return toml_fail(p, last->pos, -EINVAL,
				 "duplicate key %s (first defined at %" PRIu32 ":%" PRIu32 ")", q,
				 at.line, at.col);
	}

	_cleanup_(toml_value_freep) TomlValue *v = NULL;
	r = parse_value(p, t->depth, &v);
	if (r < 0)
		return r;
	r = table_add(p, t, last, v);
	if (r < 0)
		return r;
	TAKE_PTR(v);
	return 0;
}

static int parse_array(TomlParser *p, uint32_t depth, TomlValue **ret)
{
	_cleanup_(toml_value_freep) TomlValue *a = NULL;
	int r = container_new(p, TOML_ARRAY, TOML_ORIGIN_INLINE, depth, p->here, &a);
	if (r < 0)
		return r;
	toml_advance(p, 1);
	for (;;) {
		r = toml_skip_blank(p);
		if (r < 0)
			return r;
		if (toml_peek(p) == ']')
			break;
		_cleanup_(toml_value_freep) TomlValue *item = NULL;
		r = parse_value(p, depth, &item);
		if (r < 0)
			return r;
		r = toml_array_push(a, item);
		if (r < 0)
			return r;
		TAKE_PTR(item);
		r = toml_skip_blank(p);
		if (r < 0)
			return r;
		if (toml_peek(p) == ',') {
			toml_advance(p, 1);
			continue;
		}
		if (toml_peek(p) == ']')
			break;
		char found[32];
		toml_describe_char(p, found, sizeof(found));
		return toml_fail(p, p->here, -EINVAL,
				 "expected ',' or ']' after array element, found %s", found);
	}
	toml_advance(p, 1);
	*ret = TAKE_PTR(a);
	return 0;
}

static int parse_inline_table_body(TomlParser *p, TomlValue *t)
{
	toml_skip_ws(p);
	if (toml_peek(p) == '}')
		return 0;
	for (;;) {
		toml_skip_ws(p);
		int r = parse_keyval(p, t);
		if (r < 0)
			return r;
		toml_skip_ws(p);
		int c = toml_peek(p);
		if (c == '}')
			return 0;
		if (c == ',') {
			toml_advance(p, 1);
			toml_skip_ws(p);
			if (toml_peek(p) == '}')
				return toml_fail(p, p->here, -EINVAL,
						 "trailing comma in an inline table");
			continue;
		}
		char found[32];
		toml_describe_char(p, found, sizeof(found));
		return toml_fail(
		    p, p->here, -EINVAL, "expected ',' or '}' in inline table, found %s%s", found,
		    c == '\n' || c == '\r' || c == '#' ? " (an inline table must be on one line)"
						       : "");
	}
}

static int parse_inline_table(TomlParser *p, uint32_t depth, TomlValue **ret)
{
	_cleanup_(toml_value_freep) TomlValue *t = NULL;
	int r = container_new(p, TOML_TABLE, TOML_ORIGIN_INLINE, depth, p->here, &t);
	if (r < 0)
		return r;
	toml_advance(p, 1);

	/* Its own section: dotted keys inside may build on each other, nothing else may. */
	uint32_t outer = p->section;
	p->section = ++p->next_section;
	r = parse_inline_table_body(p, t);
	p->section = outer;
	if (r < 0)
		return r;
	toml_advance(p, 1);
	*ret = TAKE_PTR(t);
	return 0;
}

static int parse_value(TomlParser *p, uint32_t parent_depth, TomlValue **ret)
{
	int c = toml_peek(p);
	if (c == '[')
		return parse_array(p, parent_depth + 1, ret);
	if (c == '{')
		return parse_inline_table(p, parent_depth + 1, ret);
	if (c != '"' && c != '\'')
		return toml_lex_scalar(p, ret);

	_cleanup_(toml_value_freep) TomlValue *v = toml_value_new(TOML_STRING, p->here);
	if (!v)
		return -ENOMEM;
	int r = toml_lex_string(p, &v->str.data, &v->str.len);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

static int parse_document(TomlParser *p)
{
	/* A UTF-8 byte order mark may open the document; it is not content. */
	if (p->len >= 3 && memcmp(p->data, "\xEF\xBB\xBF", 3) == 0) {
		toml_advance(p, 3);
		p->here.col = 1;
	}
	for (;;) {
		int r = toml_skip_blank(p);
		if (r < 0)
			return r;
		if (toml_peek(p) < 0)
			return 0;
		if (toml_peek(p) == '[')
			r = parse_header(p);
		else {
			r = parse_keyval(p, p->current);
			if (r >= 0)
				r = toml_expect_eol(p, "value");
		}
		if (r < 0)
			return r;
	}
}

static TomlLimits limits_or_defaults(const TomlLimits *l)
{
	TomlLimits d = l ? *l : (TomlLimits){};
	if (d.max_input == 0)
		d.max_input = DEFAULT_MAX_INPUT;
	/* Lines, columns and section numbers are 32-bit: no input may overflow them. */
	if (d.max_input > UINT32_MAX - 1)
		d.max_input = UINT32_MAX - 1;
	if (d.max_depth == 0)
		d.max_depth = DEFAULT_MAX_DEPTH;
	if (d.max_depth > TOML_DEPTH_HARD_MAX)
		d.max_depth = TOML_DEPTH_HARD_MAX;
	if (d.max_string == 0)
		d.max_string = DEFAULT_MAX_STRING;
	if (d.max_keys == 0)
		d.max_keys = DEFAULT_MAX_KEYS;
	return d;
}

int toml_parse(const char *data, size_t len, const TomlLimits *limits, TomlValue **ret_root,
	       TomlError *ret_err)
{
	TomlError err = {};
	TomlParser p = {
		.data = data ? data : "",
		.len = len,
		.here = { 1, 1 },
		.limits = limits_or_defaults(limits),
		.err = &err,
	};
	int r;

	if (!ret_root || (!data && len > 0))
		return -EINVAL;
	if (len > p.limits.max_input)
		r = toml_fail(&p, p.here, -E2BIG, "document larger than %zu bytes",
			      p.limits.max_input);
	else
		r = toml_check_encoding(&p);

	_cleanup_(toml_value_freep) TomlValue *root = NULL;
	if (r >= 0) {
		root = toml_value_new(TOML_TABLE, p.here);
		if (!root)
			r = -ENOMEM;
	}
	if (r >= 0) {
		p.root = p.current = root;
		r = parse_document(&p);
	}
	if (r < 0) {
		if (!err.message[0]) {
			err.pos = p.here;
			(void)snprintf(err.message, sizeof(err.message), "%s",
				       r == -ENOMEM ? "out of memory" : "invalid document");
		}
		if (ret_err)
			*ret_err = err;
		return r;
	}
	*ret_root = TAKE_PTR(root);
	return 0;
}
