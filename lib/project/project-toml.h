/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Internal to the TOML → model step (project-toml.c, project-service.c, project-value.c).
 *
 * Convention: helpers that find a problem record it in c->diags and return -EINVAL, so
 * callers skip that one value and go on (we report everything, not the first thing).
 * Only -ENOMEM stops the walk. Recording a diagnostic cannot fail the walk: DiagList
 * notes its own out-of-memory and project_parse() checks it once at the end.
 */

#include "project-internal.h"
#include "toml.h"

typedef struct TomlCtx {
	Project *p;
	DiagList *diags;
	const char *file;
} TomlCtx;

static inline SourcePos pos_of(const TomlValue *v)
{
	TomlPos t = toml_pos(v);
	return POS(t.line, t.col);
}
static inline SourcePos pos_from_toml(TomlPos t)
{
	return POS(t.line, t.col);
}

/* Record an error/warning at pos; returns -EINVAL (errors) or 0 (warnings). */
int ctx_error(TomlCtx *c, SourcePos pos, const char *hint, const char *fmt, ...) _printf_(4, 5);
void ctx_warning(TomlCtx *c, SourcePos pos, const char *hint, const char *fmt, ...) _printf_(4, 5);

/* "expected <what> for "<key>", got <type>" with a hint; returns -EINVAL. */
/* ready_log_line: a string that compiles as a POSIX extended regex; replaces *ret. */
int value_ready_log_line(TomlCtx *c, const char *key, const TomlValue *v, char **ret);
int ctx_type_error(TomlCtx *c, const char *key, const TomlValue *v, const char *what,
		   const char *hint);

/* Warn about a key we do not know, suggesting a close known one. `where` says whose key
 * it is ("[project]", "service \"web\"", …). */
void ctx_unknown_key(TomlCtx *c, const char *where, const char *key, TomlPos pos,
		     const char *const *known);

/* Scalars. Strings must be valid C strings (no NUL inside); empty ones are refused
 * unless allow_empty. Results borrow from the TOML tree. */
int value_string(TomlCtx *c, const char *key, const TomlValue *v, bool allow_empty,
		 const char **ret);
int value_port(TomlCtx *c, const char *key, const TomlValue *v, uint16_t *ret);
/* A duration: a string ("250ms", "1s", "1m30s") or an integer number of seconds (the
 * original locald's form). Zero is refused unless allow_zero. */
int value_duration(TomlCtx *c, const char *key, const TomlValue *v, bool allow_zero,
		   uint64_t *ret_ms);
int value_uint(TomlCtx *c, const char *key, const TomlValue *v, uint64_t min, uint64_t max,
	       uint64_t *ret);
/* An array of non-empty strings, at most `max`; ret_pos (optional) gets each one's position. */
int value_string_array(TomlCtx *c, const char *key, const TomlValue *v, size_t max, char ***ret,
		       SourcePos **ret_pos);

/* Fill one service from its table. */
int service_from_toml(TomlCtx *c, size_t idx, const TomlValue *table);

/* The keys whose value may be a table of their own (project-service-tables.c). */
int service_parse_health_check(TomlCtx *c, Service *s, const char *key, const TomlValue *v);
int service_parse_restart(TomlCtx *c, Service *s, const char *key, const TomlValue *v);
int service_parse_build(TomlCtx *c, Service *s, const char *key, const TomlValue *v);

/* Key i of table t, or NULL (after an error diagnostic) when it holds a NUL character,
 * which would otherwise read as a shorter, different key. */
const char *ctx_key(TomlCtx *c, const TomlValue *t, size_t i, TomlPos *ret_pos);
