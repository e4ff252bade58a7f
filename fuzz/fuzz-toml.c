/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for lib/toml: parse, walk the whole tree through the public
 * accessors checking what they promise, format any error, free. Then parse again
 * under tiny limits, which may only turn success into -E2BIG.
 * Invariant violations abort(), so they are caught in builds without assert() too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "toml.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

static void check_pos(TomlPos pos, uint32_t lines)
{
	CHECK(pos.line >= 1 && pos.line <= lines && pos.col >= 1);
}

static void walk(const TomlValue *v, uint32_t lines, unsigned depth)
{
	TomlType t = toml_type(v);
	CHECK(depth <= TOML_DEPTH_HARD_MAX + 1);
	CHECK(toml_type_to_string(t) != NULL);
	check_pos(toml_pos(v), lines);

	switch (t) {
	case TOML_STRING: {
		size_t len;
		const char *s = toml_string(v, &len);
		CHECK(s && s[len] == 0 && strlen(s) <= len);
		break;
	}
	case TOML_INTEGER:
		(void)toml_integer(v);
		break;
	case TOML_FLOAT:
		(void)toml_float(v);
		break;
	case TOML_BOOL:
		(void)toml_bool(v);
		break;
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL: {
		const char *s = toml_datetime(v);
		CHECK(s && strlen(s) >= 8);
		break;
	}
	case TOML_ARRAY: {
		size_t n = toml_array_size(v);
		for (size_t i = 0; i < n; i++)
			walk(toml_array_get(v, i), lines, depth + 1);
		CHECK(toml_array_get(v, n) == NULL);
		break;
	}
	case TOML_TABLE: {
		size_t n = toml_table_size(v);
		for (size_t i = 0; i < n; i++) {
			size_t len;
			TomlPos pos, found_pos;
			const char *key = toml_table_key_n(v, i, &len, &pos);
			const TomlValue *value = toml_table_value(v, i);
			CHECK(key && key[len] == 0);
			CHECK(toml_table_key(v, i, NULL) == key);
			check_pos(pos, lines);
			/* Every key must be found again, as itself (the index agrees with the
			 * order). */
			CHECK(toml_table_get_n(v, key, len, &found_pos) == value);
			CHECK(found_pos.line == pos.line && found_pos.col == pos.col);
			if (strlen(key) == len)
				CHECK(toml_table_get(v, key, NULL) == value);
			walk(value, lines, depth + 1);
		}
		CHECK(toml_table_key(v, n, NULL) == NULL);
		CHECK(toml_table_value(v, n) == NULL);
		break;
	}
	default:
		abort();
	}
}

static uint32_t count_lines(const uint8_t *data, size_t size)
{
	uint32_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	return lines;
}

static int parse_and_check(const uint8_t *data, size_t size, const TomlLimits *limits)
{
	TomlValue *root = NULL;
	TomlError err;
	uint32_t lines = count_lines(data, size);

	memset(&err, 0, sizeof(err));
	int r = toml_parse((const char *)data, size, limits, &root, &err);
	if (r < 0) {
		char line[512];
		CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
		CHECK(root == NULL);
		CHECK(err.message[0] != 0 && memchr(err.message, 0, sizeof(err.message)));
		check_pos(err.pos, lines);
		toml_error_format(&err, "fuzz.toml", line, sizeof(line));
		CHECK(strchr(line, '\n') == NULL);
		return r;
	}
	CHECK(root && toml_type(root) == TOML_TABLE);
	walk(root, lines, 0);
	toml_free(root);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int r = parse_and_check(data, size, NULL);

	static const TomlLimits tiny = { .max_depth = 3, .max_string = 16, .max_keys = 8 };
	int r2 = parse_and_check(data, size, &tiny);
	if (r == 0)
		CHECK(r2 == 0 || r2 == -E2BIG);
	return 0;
}
