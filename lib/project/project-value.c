/* SPDX-License-Identifier: MIT */
/* Typed reads of TOML values, each failure a diagnostic that says what was expected. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"
#include "project-toml.h"
#include "strutil.h"

int ctx_error(TomlCtx *c, SourcePos pos, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)diag_addv(c->diags, DIAG_ERROR, c->file, pos.line, pos.col, hint, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void ctx_warning(TomlCtx *c, SourcePos pos, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)diag_addv(c->diags, DIAG_WARNING, c->file, pos.line, pos.col, hint, fmt, ap);
	va_end(ap);
}

int ctx_type_error(TomlCtx *c, const char *key, const TomlValue *v, const char *what,
		   const char *hint)
{
	return ctx_error(c, pos_of(v), hint, "expected %s for \"%s\", got %s", what, key,
			 strempty(toml_type_to_string(toml_type(v))));
}

void ctx_unknown_key(TomlCtx *c, const char *where, const char *key, TomlPos pos,
		     const char *const *known)
{
	const char *near = diag_suggest(key, known);
	_cleanup_free_ char *hint = near ? strdupf("did you mean \"%s\"?", near) : NULL;
	ctx_warning(c, pos_from_toml(pos),
		    hint ? hint : "it is ignored; see lib/project/README.md for the keys",
		    "unknown key \"%s\" in %s", key, where);
}

int value_string(TomlCtx *c, const char *key, const TomlValue *v, bool allow_empty,
		 const char **ret)
{
	if (toml_type(v) != TOML_STRING)
		return ctx_type_error(c, key, v, "a string", NULL);
	size_t len;
	const char *s = toml_string(v, &len);
	if (strlen(s) != len)
		return ctx_error(c, pos_of(v), "remove the \\u0000 escape",
				 "\"%s\" contains a NUL character", key);
	if (!allow_empty && len == 0)
		return ctx_error(c, pos_of(v), NULL, "\"%s\" is empty", key);
	*ret = s;
	return 0;
}

int value_port(TomlCtx *c, const char *key, const TomlValue *v, uint16_t *ret)
{
	if (toml_type(v) == TOML_STRING) {
		/* The common mistake: port = "8080". Say exactly what to write. */
		uint16_t p;
		const char *s = toml_string(v, NULL);
		if (parse_port(s, &p) >= 0) {
			_cleanup_free_ char *hint =
			    strdupf("write %s = %u, without quotes", key, p);
			return ctx_type_error(c, key, v, "an integer", hint);
		}
	}
	if (toml_type(v) != TOML_INTEGER)
		return ctx_type_error(c, key, v, "an integer",
				      "a port is a number from 1 to 65535");
	int64_t n = toml_integer(v);
	if (n < 1 || n > 65535)
		return ctx_error(c, pos_of(v),
				 n == 0 ? "leave the key out to have a free port assigned"
					: "a port is a number from 1 to 65535",
				 "%s %" PRId64 " is out of range 1..65535", key, n);
	*ret = (uint16_t)n;
	return 0;
}

int value_duration(TomlCtx *c, const char *key, const TomlValue *v, bool allow_zero,
		   uint64_t *ret_ms)
{
	static const char hint[] = "write a duration like \"1s\", \"250ms\" or \"1m30s\"";
	uint64_t ms;

	if (toml_type(v) == TOML_INTEGER) {
		int64_t n = toml_integer(v);
		if (n < 0 || n > UINT32_MAX / 1000)
			return ctx_error(c, pos_of(v), hint, "%s %" PRId64 " is out of range", key,
					 n);
		ms = (uint64_t)n * 1000;
	} else if (toml_type(v) == TOML_STRING) {
		const char *s = toml_string(v, NULL);
		int r = parse_duration_ms(s, &ms);
		if (r == -ERANGE)
			return ctx_error(c, pos_of(v), "the limit is about 49 days",
					 "duration \"%s\" for \"%s\" is too long", s, key);
		if (r < 0)
			return ctx_error(c, pos_of(v), hint, "invalid duration \"%s\" for \"%s\"",
					 s, key);
	} else
		return ctx_type_error(c, key, v, "a duration", hint);

	if (ms == 0 && !allow_zero)
		return ctx_error(c, pos_of(v), hint, "\"%s\" must be longer than zero", key);
	*ret_ms = ms;
	return 0;
}

int value_uint(TomlCtx *c, const char *key, const TomlValue *v, uint64_t min, uint64_t max,
	       uint64_t *ret)
{
	if (toml_type(v) != TOML_INTEGER)
		return ctx_type_error(c, key, v, "an integer", NULL);
	int64_t n = toml_integer(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return ctx_error(c, pos_of(v), NULL,
				 "%s %" PRId64 " is out of range %" PRIu64 "..%" PRIu64, key, n,
				 min, max);
	*ret = (uint64_t)n;
	return 0;
}

int value_string_array(TomlCtx *c, const char *key, const TomlValue *v, size_t max, char ***ret,
		       SourcePos **ret_pos)
{
	if (toml_type(v) != TOML_ARRAY) {
		_cleanup_free_ char *hint = NULL;
		if (toml_type(v) == TOML_STRING)
			hint = strdupf("write %s = [\"%s\"]", key, toml_string(v, NULL));
		return ctx_type_error(c, key, v, "an array of strings", hint);
	}
	size_t n = toml_array_size(v);
	if (n > max)
		return ctx_error(c, pos_of(v), NULL, "\"%s\" has %zu entries, more than %zu", key,
				 n, max);

	_cleanup_strv_free_ char **l = calloc(n + 1, sizeof(char *));
	_cleanup_free_ SourcePos *pos = calloc(n + 1, sizeof(SourcePos));
	if (!l || !pos)
		return -ENOMEM;
	int ret_r = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const TomlValue *e = toml_array_get(v, i);
		const char *s;
		if (toml_type(e) != TOML_STRING) {
			ret_r = ctx_type_error(c, key, e, "a string in the array", NULL);
			continue;
		}
		if (value_string(c, key, e, false, &s) < 0) {
			ret_r = -EINVAL;
			continue;
		}
		if (!(l[k] = strdup(s)))
			return -ENOMEM;
		pos[k++] = pos_of(e);
	}
	if (ret_r < 0)
		return ret_r;
	*ret = TAKE_PTR(l);
	if (ret_pos)
		*ret_pos = TAKE_PTR(pos);
	return 0;
}

const char *ctx_key(TomlCtx *c, const TomlValue *t, size_t i, TomlPos *ret_pos)
{
	size_t len;
	const char *key = toml_table_key_n(t, i, &len, ret_pos);
	if (strlen(key) != len) {
		ctx_error(c, pos_from_toml(*ret_pos), "remove the \\u0000 escape",
			  "key \"%s\\u0000…\" contains a NUL character", key);
		return NULL;
	}
	return key;
}
