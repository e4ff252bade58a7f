/* SPDX-License-Identifier: MIT */
/* locald.toml → Project: the top level, [project], and the [services] table. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "project-toml.h"
#include "strutil.h"

/* Tighter than the parser's defaults: a project file is small and written by hand. */
static const TomlLimits project_toml_limits = {
	.max_input = PROJECT_CONFIG_MAX,
	.max_depth = 32,
	.max_string = 256 * 1024,
	.max_keys = 64 * 1024,
};

static const char *const root_keys[] = { "project", "services", NULL };
/* workspace/constellation are filled in by the original's loader; accepted and unused. */
static const char *const project_keys[] = { "name", "domain", "workspace", "constellation", NULL };

/* A domain is dot-separated DNS labels; we compare host names in lowercase. */
static bool domain_is_valid(const char *d)
{
	size_t n = strlen(d);
	if (n == 0 || n > 253)
		return false;
	const char *p = d;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		_cleanup_free_ char *label = strndup_safe(p, len);
		if (!label || !name_is_label(label, false))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

static int parse_project_name(TomlCtx *c, const TomlValue *v)
{
	const char *name;
	int r = value_string(c, "name", v, true, &name);
	if (r < 0)
		return r;
	c->p->name_pos = pos_of(v);
	if (isempty(name)) {
		_cleanup_free_ char *suggestion = NULL, *hint = NULL;
		if (project_name_from_dir(c->p->dir, &suggestion) >= 0)
			hint = strdupf("write name = \"%s\"", suggestion);
		return ctx_error(c, pos_of(v), hint, "project name is empty");
	}
	if (!project_name_is_valid(name)) {
		_cleanup_free_ char *suggestion = NULL, *hint = NULL;
		if (project_name_from_dir(name, &suggestion) >= 0)
			hint = strdupf("it becomes a host name: use lowercase letters, digits and "
				       "'-', like \"%s\"",
				       suggestion);
		return ctx_error(c, pos_of(v), hint,
				 "project name \"%s\" is not a valid host name label", name);
	}
	return (c->p->name = strdup(name)) ? 0 : -ENOMEM;
}

static int parse_project_domain(TomlCtx *c, const TomlValue *v)
{
	const char *domain;
	int r = value_string(c, "domain", v, false, &domain);
	if (r < 0)
		return r;
	c->p->domain_pos = pos_of(v);

	/* Host names are case-insensitive; the original accepted any case. */
	_cleanup_free_ char *lower = strdup(domain);
	if (!lower)
		return -ENOMEM;
	for (char *q = lower; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	if (!domain_is_valid(lower))
		return ctx_error(c, pos_of(v),
				 "write dot-separated labels of letters, digits and '-', like "
				 "\"shop.localhost\"",
				 "domain \"%s\" is not a valid host name", domain);
	c->p->domain = TAKE_PTR(lower);
	return 0;
}

static int parse_project_table(TomlCtx *c, const TomlValue *root)
{
	TomlPos ppos;
	const TomlValue *t = toml_table_get(root, "project", &ppos);
	_cleanup_free_ char *suggestion = NULL, *hint = NULL;
	if (project_name_from_dir(c->p->dir, &suggestion) < 0)
		return -ENOMEM;
	hint = strdupf("start the file with [project] and name = \"%s\"", suggestion);

	if (!t)
		return ctx_error(c, POS(1, 1), hint, "missing [project] table");
	if (toml_type(t) != TOML_TABLE)
		return ctx_type_error(c, "project", t, "a table", hint);

	for (size_t i = 0; i < toml_table_size(t); i++) {
		TomlPos kpos;
		const char *key = ctx_key(c, t, i, &kpos);
		if (!key)
			continue;
		const TomlValue *v = toml_table_value(t, i);
		const char *ignored;
		int r = 0;
		if (streq(key, "name"))
			r = parse_project_name(c, v);
		else if (streq(key, "domain"))
			r = parse_project_domain(c, v);
		else if (streq(key, "workspace") || streq(key, "constellation"))
			r = value_string(c, key, v, true, &ignored);
		else
			ctx_unknown_key(c, "[project]", key, kpos, project_keys);
		if (r == -ENOMEM)
			return r;
	}
	if (!toml_table_get(t, "name", NULL)) {
		free(hint);
		hint = strdupf("add name = \"%s\"", suggestion);
		return ctx_error(c, pos_of(t), hint, "[project] has no name");
	}
	return 0;
}

static int parse_services(TomlCtx *c, const TomlValue *root)
{
	const TomlValue *t = toml_table_get(root, "services", NULL);
	if (!t)
		return 0; /* a project without services is valid, if not useful */
	if (toml_type(t) != TOML_TABLE)
		return ctx_type_error(c, "services", t, "a table",
				      "write [services.web] and its keys below it");

	size_t n = toml_table_size(t);
	if (n > PROJECT_SERVICES_MAX) {
		ctx_error(c, pos_of(t), "split the project",
			  "%zu services, more than the %u allowed", n, PROJECT_SERVICES_MAX);
		n = PROJECT_SERVICES_MAX;
	}
	for (size_t i = 0; i < n; i++) {
		TomlPos kpos;
		const char *name = ctx_key(c, t, i, &kpos);
		if (!name)
			continue;
		const TomlValue *v = toml_table_value(t, i);
		if (toml_type(v) != TOML_TABLE) {
			_cleanup_free_ char *hint = strdupf(
			    "write [services.%s] and its keys (command = …) below it", name);
			ctx_error(c, pos_of(v), hint, "expected a table for service \"%s\", got %s",
				  name, strempty(toml_type_to_string(toml_type(v))));
			continue;
		}
		if (!project_add_service(c->p, name, pos_from_toml(kpos)))
			return -ENOMEM;
		int r = service_from_toml(c, c->p->n_services - 1, v);
		if (r < 0)
			return r;
	}
	return 0;
}

int project_parse_toml(Project *p, const char *data, size_t len, DiagList *diags)
{
	TomlCtx c = { .p = p, .diags = diags, .file = p->config_path };
	TomlValue *root = NULL;
	TomlError err = { 0 };

	int r = toml_parse(data, len, &project_toml_limits, &root, &err);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		ctx_error(&c, POS(err.pos.line, err.pos.col),
			  r == -E2BIG ? "locald.toml files are small; this one hit a size limit"
				      : "this is a TOML syntax error",
			  "%s", err.message[0] ? err.message : "invalid TOML");
		return -EINVAL;
	}

	for (size_t i = 0; i < toml_table_size(root); i++) {
		TomlPos kpos;
		const char *key = ctx_key(&c, root, i, &kpos);
		if (!key)
			continue;
		if (!streq(key, "project") && !streq(key, "services"))
			ctx_unknown_key(&c, "the top level", key, kpos, root_keys);
	}
	r = parse_project_table(&c, root);
	if (r >= 0 || r == -EINVAL)
		r = parse_services(&c, root);
	toml_free(root);
	return r == -ENOMEM ? r : 0;
}
