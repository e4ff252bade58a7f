/* SPDX-License-Identifier: MIT */
/*
 * ${…} references in service env values: checked when the project loads (so a typo is a
 * config error with a position, not a surprise at start), expanded when superd knows the
 * ports. Also the layering of a service's environment.
 */
#include <stdlib.h>
#include <string.h>

#include "project-internal.h"
#include "strutil.h"

typedef enum SegmentKind {
	SEGMENT_TEXT,         /* literal text (also the `$` of `$$`) */
	SEGMENT_REF,          /* what is between `${` and `}` */
	SEGMENT_UNTERMINATED, /* `${` without `}`: kept as written */
} SegmentKind;

typedef int (*SegmentFunc)(SegmentKind kind, const char *s, size_t n, void *userdata);

/* Split a value into segments. Stops at the first callback error and returns it. */
static int segments_walk(const char *v, SegmentFunc f, void *userdata)
{
	const char *p = v, *text = v;
	int r;
#define FLUSH()                                                                                    \
	do {                                                                                       \
		if (p > text && (r = f(SEGMENT_TEXT, text, (size_t)(p - text), userdata)) < 0)     \
			return r;                                                                  \
	} while (0)

	while (*p) {
		if (p[0] == '$' && p[1] == '$') {
			FLUSH();
			if ((r = f(SEGMENT_TEXT, "$", 1, userdata)) < 0)
				return r;
			p += 2;
			text = p;
		} else if (p[0] == '$' && p[1] == '{') {
			FLUSH();
			const char *end = strchr(p + 2, '}');
			if (!end)
				return f(SEGMENT_UNTERMINATED, p, strlen(p), userdata);
			if ((r = f(SEGMENT_REF, p + 2, (size_t)(end - p - 2), userdata)) < 0)
				return r;
			p = end + 1;
			text = p;
		} else
			p++;
	}
	FLUSH();
	return 0;
#undef FLUSH
}

typedef enum RefField {
	REF_PORT,
	REF_HOST,
	REF_URL,
	REF_PROXY_HOST,
	REF_PROXY_URL,
	REF_PROJECT_NAME,
	REF_PROJECT_DOMAIN,
	_REF_FIELD_MAX,
	_REF_FIELD_INVALID = -EINVAL,
} RefField;

static const char *const service_fields[] = {
	"port", "host", "url", "proxy_host", "proxy_url", NULL
};
static const char *const project_fields[] = { "name", "domain", NULL };

/* A parsed reference. `foreign` = not ours (like ${HOME}): kept as written. */
typedef struct Ref {
	bool foreign;
	RefField field;
	const Service *service; /* for service fields */
} Ref;

/* Parse "services.api.port" / "project.domain". On error, ret_msg and ret_hint say why. */
static int ref_parse(const Project *p, const char *s, size_t n, Ref *ret, char **ret_msg,
		     char **ret_hint)
{
	_cleanup_free_ char *body = strndup_safe(s, n);
	if (!body)
		return -ENOMEM;
	const char *rest;

	if ((rest = startswith(body, "project."))) {
		for (size_t i = 0; project_fields[i]; i++)
			if (streq(rest, project_fields[i])) {
				*ret = (Ref){ .field = REF_PROJECT_NAME + (RefField)i };
				return 0;
			}
		*ret_msg = strdupf("unknown project field \"%s\" in ${%s}", rest, body);
		*ret_hint = strdup("use ${project.name} or ${project.domain}");
		return -EINVAL;
	}
	if (!(rest = startswith(body, "services."))) {
		*ret = (Ref){ .foreign = true };
		return 0;
	}

	const char *dot = strrchr(rest, '.');
	if (!dot || dot == rest) {
		*ret_msg = strdupf("malformed reference ${%s}", body);
		*ret_hint =
		    strdup("write ${services.<name>.port}, .host, .url, .proxy_host or .proxy_url");
		return -EINVAL;
	}
	_cleanup_free_ char *name = strndup_safe(rest, (size_t)(dot - rest));
	if (!name)
		return -ENOMEM;
	const char *field = dot + 1;

	const Service *svc = project_find_service(p, name);
	if (!svc) {
		_cleanup_free_ const char **names = project_service_names(p);
		if (!names)
			return -ENOMEM;
		const char *near = diag_suggest(name, names);
		*ret_msg = strdupf("${%s} refers to unknown service \"%s\"", body, name);
		*ret_hint = near ? strdupf("did you mean \"%s\"?", near)
				 : strdup("reference a service defined in this file");
		return -EINVAL;
	}
	ssize_t f = -1;
	for (size_t i = 0; service_fields[i]; i++)
		if (streq(field, service_fields[i]))
			f = (ssize_t)i;
	if (f < 0) {
		const char *near = diag_suggest(field, service_fields);
		*ret_msg = strdupf("unknown field \"%s\" in ${%s}", field, body);
		*ret_hint = near ? strdupf("did you mean \"%s\"?", near)
				 : strdup("use port, host, url, proxy_host or proxy_url");
		return -EINVAL;
	}
	if (!service_has_port(svc)) {
		*ret_msg = strdupf("${%s}: worker \"%s\" has no port, host or URL", body, name);
		*ret_hint = strdup("workers do not listen; reference a service that does");
		return -EINVAL;
	}
	*ret = (Ref){ .field = (RefField)f, .service = svc };
	return 0;
}

typedef struct CheckCtx {
	const Project *p;
	const Service *s;
	const EnvVar *var;
	DiagList *diags;
} CheckCtx;

static int check_segment(SegmentKind kind, const char *str, size_t n, void *userdata)
{
	CheckCtx *c = userdata;
	if (kind == SEGMENT_TEXT)
		return 0;
	if (kind == SEGMENT_UNTERMINATED) {
		diag_at(c->diags, DIAG_WARNING, c->p->config_path, c->var->pos,
			"close it with '}', or write $${ for a literal",
			"%s: \"${\" without a closing '}' is kept as written", c->var->key);
		return 0;
	}

	Ref ref;
	_cleanup_free_ char *msg = NULL, *hint = NULL;
	int r = ref_parse(c->p, str, n, &ref, &msg, &hint);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		if (!msg)
			return -ENOMEM;
		diag_at(c->diags, DIAG_ERROR, c->p->config_path, c->var->pos, hint, "%s: %s",
			c->var->key, msg);
		return 0;
	}
	if (ref.foreign)
		diag_at(
		    c->diags, DIAG_WARNING, c->p->config_path, c->var->pos,
		    "locald expands ${services.<name>.port|host|url} and ${project.name|domain}; "
		    "write $${…} to keep it literal and silence this",
		    "%s: ${%.*s} is not a locald reference and is passed on as written",
		    c->var->key, (int)MIN(n, (size_t)200), str);
	return 0;
}

int project_check_references(const Project *p, DiagList *diags)
{
	for (size_t i = 0; i < p->n_services; i++) {
		const Service *s = &p->services[i];
		for (size_t k = 0; k < s->env.n; k++) {
			CheckCtx c = { .p = p, .s = s, .var = &s->env.vars[k], .diags = diags };
			int r = segments_walk(s->env.vars[k].value, check_segment, &c);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

typedef struct ExpandCtx {
	const Project *p;
	const ProjectResolver *resolver;
	Buf out;
} ExpandCtx;

static int service_port(const Project *p, const Service *s, const ProjectResolver *r, uint16_t *ret)
{
	if (r && r->port)
		return r->port(p, s, r->userdata, ret);
	if (s->port == 0)
		return -ENOENT;
	*ret = s->port;
	return 0;
}

static int expand_segment(SegmentKind kind, const char *str, size_t n, void *userdata)
{
	ExpandCtx *c = userdata;
	if (kind != SEGMENT_REF)
		return buf_append(&c->out, str, n);

	Ref ref;
	_cleanup_free_ char *msg = NULL, *hint = NULL;
	int r = ref_parse(c->p, str, n, &ref, &msg, &hint);
	if (r < 0)
		return r;
	if (ref.foreign) {
		r = buf_append_str(&c->out, "${");
		if (r >= 0)
			r = buf_append(&c->out, str, n);
		return r < 0 ? r : buf_append_byte(&c->out, '}');
	}

	const Service *s = ref.service;
	uint16_t port;
	switch (ref.field) {
	case REF_PROJECT_NAME:
		return buf_append_str(&c->out, strempty(c->p->name));
	case REF_PROJECT_DOMAIN:
		return buf_append_str(&c->out, strempty(c->p->domain));
	case REF_PROXY_HOST:
		return buf_append_str(&c->out, strempty(s->host));
	case REF_PROXY_URL: {
		_cleanup_free_ char *url = NULL;
		r = project_service_url(c->p, s, c->resolver ? c->resolver->https_port : 0, &url);
		return r < 0 ? r : buf_append_str(&c->out, url);
	}
	case REF_HOST:
		/* The direct address: what the proxy and health checks connect to. */
		return buf_append_str(&c->out, "127.0.0.1");
	default:
		break;
	}
	r = service_port(c->p, s, c->resolver, &port);
	if (r < 0)
		return r;
	if (ref.field == REF_PORT)
		return buf_printf(&c->out, "%u", (unsigned)port);
	if (s->type == SERVICE_POSTGRES) /* the original's credentials for managed postgres */
		return buf_printf(&c->out, "postgres://postgres:postgres@127.0.0.1:%u/postgres",
				  (unsigned)port);
	return buf_printf(&c->out, "http://127.0.0.1:%u", (unsigned)port);
}

int project_interpolate(const Project *p, const char *value, const ProjectResolver *r, char **ret)
{
	ExpandCtx c = { .p = p, .resolver = r, .out = BUF_INIT(PROJECT_DOTENV_MAX) };
	int k = segments_walk(value, expand_segment, &c);
	if (k < 0) {
		buf_done(&c.out);
		return k == -E2BIG ? -EINVAL : k;
	}
	*ret = buf_steal(&c.out, NULL);
	return 0;
}

static int env_add_strv(EnvList *env, char *const *l)
{
	STRV_FOREACH (e, l) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e)
			continue;
		_cleanup_free_ char *key = strndup_safe(*e, (size_t)(eq - *e));
		if (!key)
			return -ENOMEM;
		int r = env_list_set(env, key, eq + 1, POS_NONE);
		if (r < 0)
			return r;
	}
	return 0;
}

int project_service_env(const Project *p, const Service *s, char *const *inherited,
			char *const *injected, const ProjectResolver *r, char ***ret)
{
	EnvList env = { 0 };
	char **l = NULL;
	int k = env_add_strv(&env, inherited);
	for (size_t i = 0; k >= 0 && i < p->env.n; i++)
		k = env_list_set(&env, p->env.vars[i].key, p->env.vars[i].value, POS_NONE);
	for (size_t i = 0; k >= 0 && i < s->env.n; i++) {
		_cleanup_free_ char *v = NULL;
		k = project_interpolate(p, s->env.vars[i].value, r, &v);
		if (k >= 0)
			k = env_list_set(&env, s->env.vars[i].key, v, POS_NONE);
	}
	if (k >= 0)
		k = env_add_strv(&env, injected);
	if (k >= 0 && !(l = calloc(env.n + 1, sizeof(char *))))
		k = -ENOMEM;
	for (size_t i = 0; k >= 0 && i < env.n; i++)
		if (!(l[i] = strdupf("%s=%s", env.vars[i].key, env.vars[i].value)))
			k = -ENOMEM;
	env_list_done(&env);
	if (k < 0) {
		strv_free(l);
		return k;
	}
	*ret = l;
	return 0;
}
