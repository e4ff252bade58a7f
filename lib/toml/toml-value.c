/* SPDX-License-Identifier: MIT */
/*
 * The document tree: values, arrays, tables, and the read-only accessors.
 *
 * A table keeps its entries in document order in one array and indexes them with an
 * AVL tree threaded through the same array (indices, not pointers, so growing the array
 * moves nothing). A tree rather than a hash: lookups stay O(log n) whatever keys a
 * hostile document chooses, with no seed to keep secret.
 */
#include <assert.h>
#include <string.h>

#include "toml-internal.h"

TomlValue *toml_value_new(TomlType type, TomlPos pos)
{
	TomlValue *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->type = type;
	v->pos = pos;
	if (type == TOML_TABLE)
		v->table.root = TOML_NIL;
	return v;
}

void toml_value_free(TomlValue *v)
{
	if (!v)
		return;
	switch (v->type) {
	case TOML_STRING:
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL:
		free(v->str.data);
		break;
	case TOML_ARRAY:
		/* Recursion is bounded: the parser refuses nesting past max_depth. */
		for (size_t i = 0; i < v->array.n; i++)
			toml_value_free(v->array.items[i]);
		free(v->array.items);
		break;
	case TOML_TABLE:
		for (size_t i = 0; i < v->table.n; i++) {
			free(v->table.entries[i].key);
			toml_value_free(v->table.entries[i].value);
		}
		free(v->table.entries);
		break;
	default:
		break;
	}
	free(v);
}

TomlValue *toml_free(TomlValue *root)
{
	toml_value_free(root);
	return NULL;
}

/* Room for one more element in an array of `size`-byte items. */
static int grow(void **items, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 4;
	if (c > SIZE_MAX / size)
		return -ENOMEM;
	void *p = realloc(*items, c * size);
	if (!p)
		return -ENOMEM;
	*items = p;
	*cap = c;
	return 0;
}

int toml_array_push(TomlValue *a, TomlValue *v)
{
	assert(a->type == TOML_ARRAY);
	int r = grow((void **)&a->array.items, a->array.n, &a->array.cap, sizeof(TomlValue *));
	if (r < 0)
		return r;
	a->array.items[a->array.n++] = v;
	return 0;
}

/* ---- AVL index ---- */

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, MIN(alen, blen));
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int height(const TomlEntry *e, uint32_t i)
{
	return i == TOML_NIL ? 0 : e[i].height;
}

static void update(TomlEntry *e, uint32_t i)
{
	e[i].height = (uint8_t)(1 + MAX(height(e, e[i].left), height(e, e[i].right)));
}

static uint32_t rotate_right(TomlEntry *e, uint32_t i)
{
	uint32_t l = e[i].left;
	e[i].left = e[l].right;
	e[l].right = i;
	update(e, i);
	update(e, l);
	return l;
}

static uint32_t rotate_left(TomlEntry *e, uint32_t i)
{
	uint32_t r = e[i].right;
	e[i].right = e[r].left;
	e[r].left = i;
	update(e, i);
	update(e, r);
	return r;
}

static uint32_t rebalance(TomlEntry *e, uint32_t i)
{
	update(e, i);
	int balance = height(e, e[i].left) - height(e, e[i].right);
	if (balance > 1) {
		if (height(e, e[e[i].left].left) < height(e, e[e[i].left].right))
			e[i].left = rotate_left(e, e[i].left);
		return rotate_right(e, i);
	}
	if (balance < -1) {
		if (height(e, e[e[i].right].right) < height(e, e[e[i].right].left))
			e[i].right = rotate_right(e, e[i].right);
		return rotate_left(e, i);
	}
	return i;
}

/* Recursion depth is the tree height: under 1.45 log2(n), so under 50. */
static uint32_t avl_insert(TomlEntry *e, uint32_t node, uint32_t i)
{
	if (node == TOML_NIL)
		return i;
	if (key_cmp(e[i].key, e[i].len, e[node].key, e[node].len) < 0)
		e[node].left = avl_insert(e, e[node].left, i);
	else
		e[node].right = avl_insert(e, e[node].right, i);
	return rebalance(e, node);
}

TomlEntry *toml_table_find(const TomlValue *t, const char *key, size_t len)
{
	assert(t->type == TOML_TABLE);
	TomlEntry *e = t->table.entries;
	uint32_t i = t->table.root;
	while (i != TOML_NIL) {
		int c = key_cmp(key, len, e[i].key, e[i].len);
		if (c == 0)
			return &e[i];
		i = c < 0 ? e[i].left : e[i].right;
	}
	return NULL;
}

int toml_table_add(TomlValue *t, char **key, size_t len, TomlPos pos, TomlValue *v)
{
	assert(t->type == TOML_TABLE);
	if (t->table.n >= TOML_NIL - 1)
		return -E2BIG;
	int r = grow((void **)&t->table.entries, t->table.n, &t->table.cap, sizeof(TomlEntry));
	if (r < 0)
		return r;
	uint32_t i = (uint32_t)t->table.n++;
	t->table.entries[i] = (TomlEntry){
		.key = TAKE_PTR(*key),
		.len = len,
		.pos = pos,
		.value = v,
		.left = TOML_NIL,
		.right = TOML_NIL,
		.height = 1,
	};
	t->table.root = avl_insert(t->table.entries, t->table.root, i);
	return 0;
}

/* ---- accessors ---- */

const char *toml_type_to_string(TomlType t)
{
	static const char *const names[_TOML_TYPE_MAX] = {
		[TOML_STRING] = "string",
		[TOML_INTEGER] = "integer",
		[TOML_FLOAT] = "float",
		[TOML_BOOL] = "boolean",
		[TOML_DATETIME] = "offset date-time",
		[TOML_DATETIME_LOCAL] = "local date-time",
		[TOML_DATE_LOCAL] = "local date",
		[TOML_TIME_LOCAL] = "local time",
		[TOML_ARRAY] = "array",
		[TOML_TABLE] = "table",
	};
	if (t < 0 || t >= _TOML_TYPE_MAX)
		return NULL;
	return names[t];
}

TomlType toml_type(const TomlValue *v)
{
	return v ? v->type : _TOML_TYPE_INVALID;
}

/*
 * Accessors assert their type: a wrong type is the caller's bug. Where assert() is
 * compiled out they still return something harmless rather than read the wrong member.
 */
#define CHECK_TYPE(v, cond, fallback)                                                              \
	do {                                                                                       \
		assert((v) && (cond));                                                             \
		if (!(v) || !(cond))                                                               \
			return fallback;                                                           \
	} while (0)

static bool is_datetime(TomlType t)
{
	return t == TOML_DATETIME || t == TOML_DATETIME_LOCAL || t == TOML_DATE_LOCAL ||
	       t == TOML_TIME_LOCAL;
}

TomlPos toml_pos(const TomlValue *v)
{
	CHECK_TYPE(v, true, ((TomlPos){ 0, 0 }));
	return v->pos;
}

const char *toml_string(const TomlValue *v, size_t *ret_len)
{
	CHECK_TYPE(v, v->type == TOML_STRING, "");
	if (ret_len)
		*ret_len = v->str.len;
	return v->str.data;
}

int64_t toml_integer(const TomlValue *v)
{
	CHECK_TYPE(v, v->type == TOML_INTEGER, 0);
	return v->integer;
}

double toml_float(const TomlValue *v)
{
	CHECK_TYPE(v, v->type == TOML_FLOAT, 0.0);
	return v->fp;
}

bool toml_bool(const TomlValue *v)
{
	CHECK_TYPE(v, v->type == TOML_BOOL, false);
	return v->boolean;
}

const char *toml_datetime(const TomlValue *v)
{
	CHECK_TYPE(v, is_datetime(v->type), "");
	return v->str.data;
}

size_t toml_array_size(const TomlValue *a)
{
	CHECK_TYPE(a, a->type == TOML_ARRAY, 0);
	return a->array.n;
}

const TomlValue *toml_array_get(const TomlValue *a, size_t i)
{
	CHECK_TYPE(a, a->type == TOML_ARRAY, NULL);
	return i < a->array.n ? a->array.items[i] : NULL;
}

size_t toml_table_size(const TomlValue *t)
{
	CHECK_TYPE(t, t->type == TOML_TABLE, 0);
	return t->table.n;
}

const char *toml_table_key_n(const TomlValue *t, size_t i, size_t *ret_len, TomlPos *ret_key_pos)
{
	CHECK_TYPE(t, t->type == TOML_TABLE, NULL);
	if (i >= t->table.n)
		return NULL;
	const TomlEntry *e = &t->table.entries[i];
	if (ret_len)
		*ret_len = e->len;
	if (ret_key_pos)
		*ret_key_pos = e->pos;
	return e->key;
}

const char *toml_table_key(const TomlValue *t, size_t i, TomlPos *ret_key_pos)
{
	return toml_table_key_n(t, i, NULL, ret_key_pos);
}

const TomlValue *toml_table_value(const TomlValue *t, size_t i)
{
	CHECK_TYPE(t, t->type == TOML_TABLE, NULL);
	return i < t->table.n ? t->table.entries[i].value : NULL;
}

const TomlValue *toml_table_get_n(const TomlValue *t, const char *key, size_t len,
				  TomlPos *ret_key_pos)
{
	CHECK_TYPE(t, t->type == TOML_TABLE && key, NULL);
	const TomlEntry *e = toml_table_find(t, key, len);
	if (!e)
		return NULL;
	if (ret_key_pos)
		*ret_key_pos = e->pos;
	return e->value;
}

const TomlValue *toml_table_get(const TomlValue *t, const char *key, TomlPos *ret_key_pos)
{
	CHECK_TYPE(t, key, NULL);
	return toml_table_get_n(t, key, strlen(key), ret_key_pos);
}
