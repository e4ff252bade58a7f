/* SPDX-License-Identifier: MIT */
/* The service keys that are a string or a table: health_check, restart, build. */
#include <stdlib.h>
#include <regex.h>
#include <string.h>

#include "project-toml.h"
#include "strutil.h"

static const char *const health_check_keys[] = {
	"type",	   "path",	     "interval", "timeout",	   "command",
	"retries", "start_period", "liveness", "start_timeout", "ready_log_line", NULL,
};

static int health_check_table(TomlCtx *c, Service *s, const TomlValue *v)
{
	HealthCheck *h = &s->health_check;
	_cleanup_free_ char *where = strdupf("the health_check of service \"%s\"", s->name);
	if (!where)
		return -ENOMEM;

	const TomlValue *t = toml_table_get(v, "type", NULL);
	if (t) {
		const char *name;
		if (value_string(c, "type", t, false, &name) < 0)
			return -EINVAL;
		HealthCheckType ht = health_check_type_from_string(name);
		if (ht < 0) {
			const char *near = diag_suggest(name, health_check_type_names());
			_cleanup_free_ char *hint =
			    near ? strdupf("did you mean \"%s\"?", near)
				 : strdup("use \"http\", \"tcp\", \"command\", \"notify\" or \"log\"");
			return ctx_error(c, pos_of(t), hint, "unknown health_check type \"%s\"",
					 name);
		}
		h->type = ht;
	} else if (toml_table_get(v, "command", NULL))
		h->type = HEALTH_CHECK_COMMAND; /* unambiguous, so no need to insist on type */
	else if (toml_table_get(v, "path", NULL))
		h->type = HEALTH_CHECK_HTTP;
	else if (toml_table_get(v, "ready_log_line", NULL))
		h->type = HEALTH_CHECK_LOG;
	else
		return ctx_error(c, pos_of(v),
				 "add type = \"http\", \"tcp\", \"command\", \"notify\" or \"log\"",
				 "health_check of service \"%s\" has no type", s->name);

	int result = 0;
	for (size_t i = 0; i < toml_table_size(v); i++) {
		TomlPos kpos;
		const char *key = ctx_key(c, v, i, &kpos);
		if (!key)
			continue;
		const TomlValue *e = toml_table_value(v, i);
		const char *str;
		uint64_t n;
		int r = 0;

		if (streq(key, "type"))
			continue;
		if (streq(key, "path")) {
			if (h->type != HEALTH_CHECK_HTTP) {
				ctx_warning(c, pos_from_toml(kpos), NULL,
					    "\"path\" has no effect on a %s health check",
					    health_check_type_to_string(h->type));
				continue;
			}
			r = value_string(c, key, e, false, &str);
			if (r >= 0 && str[0] != '/')
				r = ctx_error(
				    c, pos_of(e), "write it from the root, like \"/health\"",
				    "health_check path \"%s\" does not start with '/'", str);
			if (r >= 0 && !(h->path = strdup(str)))
				return -ENOMEM;
		} else if (streq(key, "command")) {
			if (h->type != HEALTH_CHECK_COMMAND) {
				ctx_warning(c, pos_from_toml(kpos), NULL,
					    "\"command\" has no effect on a %s health check",
					    health_check_type_to_string(h->type));
				continue;
			}
			r = value_string(c, key, e, false, &str);
			if (r >= 0 && !(h->command = strdup(str)))
				return -ENOMEM;
		} else if (streq(key, "interval"))
			r = value_duration(c, key, e, false, &h->interval_ms);
		else if (streq(key, "timeout"))
			r = value_duration(c, key, e, false, &h->timeout_ms);
		else if (streq(key, "start_period"))
			r = value_duration(c, key, e, true, &h->start_period_ms);
		else if (streq(key, "start_timeout"))
			r = value_duration(c, key, e, false, &h->start_timeout_ms);
		else if (streq(key, "liveness")) {
			if (toml_type(e) != TOML_BOOL)
				r = ctx_type_error(c, key, e, "true or false", NULL);
			else
				h->liveness = toml_bool(e);
		} else if (streq(key, "ready_log_line")) {
			if (h->type != HEALTH_CHECK_LOG) {
				ctx_warning(c, pos_from_toml(kpos), NULL,
					    "\"ready_log_line\" has no effect on a %s health check",
					    health_check_type_to_string(h->type));
				continue;
			}
			r = value_ready_log_line(c, key, e, &h->ready_log_line);
			if (r == -ENOMEM)
				return r;
		}
		else if (streq(key, "retries")) {
			r = value_uint(c, key, e, 1, 1000, &n);
			if (r >= 0)
				h->retries = (uint32_t)n;
		} else
			ctx_unknown_key(c, where, key, kpos, health_check_keys);
		if (r < 0)
			result = r;
	}

	if (h->type == HEALTH_CHECK_LOG && !h->ready_log_line && result >= 0)
		return ctx_error(c, pos_of(v),
				 "add ready_log_line = \"listening on\" (a regular expression)",
				 "health_check of type \"log\" needs ready_log_line");
	if (h->type == HEALTH_CHECK_COMMAND && !h->command && result >= 0)
		return ctx_error(c, pos_of(v), "add command = \"…\" (it succeeds when it exits 0)",
				 "health_check of type \"command\" needs a command");
	return result;
}

int value_ready_log_line(TomlCtx *c, const char *key, const TomlValue *v, char **ret)
{
	const char *str;
	int r = value_string(c, key, v, false, &str);
	if (r < 0)
		return r;
	/* Checked here so a typo is a config error with a position, not a start failure. */
	regex_t re;
	int rc = regcomp(&re, str, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char why[128];
		regerror(rc, &re, why, sizeof(why));
		return ctx_error(c, pos_of(v), "it is a POSIX extended regular expression",
				 "ready_log_line \"%s\": %s", str, why);
	}
	regfree(&re);
	free(*ret);
	*ret = strdup(str);
	return *ret ? 0 : -ENOMEM;
}

int service_parse_health_check(TomlCtx *c, Service *s, const char *key, const TomlValue *v)
{
	s->health_check.pos = pos_of(v);
	if (toml_type(v) == TOML_STRING) {
		const char *cmd;
		int r = value_string(c, key, v, false, &cmd);
		if (r < 0)
			return r;
		s->health_check.type = HEALTH_CHECK_COMMAND;
		s->health_check.command = strdup(cmd);
		return s->health_check.command ? 0 : -ENOMEM;
	}
	if (toml_type(v) != TOML_TABLE)
		return ctx_type_error(c, key, v, "a command string or a table",
				      "write health_check = \"curl -f localhost:$PORT\" or "
				      "health_check = { type = \"http\", path = \"/\" }");
	int r = health_check_table(c, s, v);
	if (r < 0 && r != -ENOMEM)
		s->health_check.type = HEALTH_CHECK_AUTO; /* do not half-apply a bad check */
	return r;
}

static const char *const restart_keys[] = { "policy", "max_restarts", "backoff", "max_backoff",
					    NULL };

static int restart_policy(TomlCtx *c, const char *key, const TomlValue *v, RestartPolicy *ret)
{
	const char *name;
	if (toml_type(v) != TOML_STRING)
		return ctx_type_error(c, key, v, "\"no\", \"on-failure\" or \"always\"", NULL);
	if (value_string(c, key, v, false, &name) < 0)
		return -EINVAL;
	RestartPolicy p = restart_policy_from_string(name);
	if (p < 0) {
		const char *near = diag_suggest(name, restart_policy_names());
		_cleanup_free_ char *hint =
		    near ? strdupf("did you mean \"%s\"?", near)
			 : strdup("use \"no\", \"on-failure\" or \"always\"");
		return ctx_error(c, pos_of(v), hint, "unknown restart policy \"%s\"", name);
	}
	*ret = p;
	return 0;
}

int service_parse_restart(TomlCtx *c, Service *s, const char *key, const TomlValue *v)
{
	RestartConfig *rc = &s->restart;
	if (toml_type(v) != TOML_TABLE)
		return restart_policy(c, key, v, &rc->policy);

	_cleanup_free_ char *where = strdupf("the restart table of service \"%s\"", s->name);
	if (!where)
		return -ENOMEM;
	int result = 0;
	bool backoff_set = false, max_set = false;
	for (size_t i = 0; i < toml_table_size(v); i++) {
		TomlPos kpos;
		const char *k = ctx_key(c, v, i, &kpos);
		if (!k)
			continue;
		const TomlValue *e = toml_table_value(v, i);
		uint64_t n;
		int r = 0;
		if (streq(k, "policy"))
			r = restart_policy(c, k, e, &rc->policy);
		else if (streq(k, "max_restarts")) {
			r = value_uint(c, k, e, 0, 1000000, &n);
			if (r >= 0)
				rc->max_restarts = (uint32_t)n;
		} else if (streq(k, "backoff")) {
			r = value_duration(c, k, e, false, &rc->backoff_ms);
			backoff_set = r >= 0;
		} else if (streq(k, "max_backoff")) {
			r = value_duration(c, k, e, false, &rc->max_backoff_ms);
			max_set = r >= 0;
		} else
			ctx_unknown_key(c, where, k, kpos, restart_keys);
		if (r < 0)
			result = r;
	}
	if (result >= 0 && rc->max_backoff_ms < rc->backoff_ms) {
		if (max_set)
			return ctx_error(c, pos_of(v),
					 "make max_backoff at least as long as backoff",
					 "restart max_backoff is shorter than backoff");
		if (backoff_set)
			rc->max_backoff_ms = rc->backoff_ms; /* a long first delay raises the cap */
	}
	return result;
}

static const char *const build_keys[] = { "builder", "buildpacks", NULL };

int service_parse_build(TomlCtx *c, Service *s, const char *key, const TomlValue *v)
{
	BuildConfig *b = &s->build;

	if (toml_type(v) == TOML_STRING) {
		const char *cmd;
		int r = value_string(c, key, v, true, &cmd);
		if (r < 0)
			return r;
		if (isempty(cmd))
			return 0; /* the original's default for sites: no build */
		b->kind = BUILD_COMMAND;
		b->command = strdup(cmd);
		return b->command ? 0 : -ENOMEM;
	}
	if (toml_type(v) != TOML_TABLE || s->type == SERVICE_SITE)
		return ctx_type_error(
		    c, key, v,
		    s->type == SERVICE_SITE ? "a command string" : "a command string or a table",
		    s->type == SERVICE_SITE ? "write build = \"make html\""
					    : "write build = \"make\" or build = { builder = "
					      "\"heroku/builder:22\" }");

	_cleanup_free_ char *where = strdupf("the build table of service \"%s\"", s->name);
	if (!where)
		return -ENOMEM;
	b->kind = BUILD_BUILDPACKS;
	int result = 0;
	for (size_t i = 0; i < toml_table_size(v); i++) {
		TomlPos kpos;
		const char *k = ctx_key(c, v, i, &kpos);
		if (!k)
			continue;
		const TomlValue *e = toml_table_value(v, i);
		const char *str;
		int r = 0;
		if (streq(k, "builder")) {
			r = value_string(c, k, e, false, &str);
			if (r >= 0 && !(b->builder = strdup(str)))
				return -ENOMEM;
		} else if (streq(k, "buildpacks")) {
			r = value_string_array(c, k, e, 64, &b->buildpacks, NULL);
			if (r == -ENOMEM)
				return r;
		} else
			ctx_unknown_key(c, where, k, kpos, build_keys);
		if (r < 0)
			result = r;
	}
	return result;
}
