/* SPDX-License-Identifier: MIT */
/* The model's life cycle, names of its enums, and what is derived from what was written. */
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "project-internal.h"
#include "strutil.h"

/* NULL-terminated too, so they double as "did you mean" candidate lists. */
static const char *const service_type_table[_SERVICE_TYPE_MAX + 1] = {
	[SERVICE_EXEC] = "exec",         [SERVICE_WORKER] = "worker",
	[SERVICE_POSTGRES] = "postgres", [SERVICE_CONTAINER] = "container",
	[SERVICE_SITE] = "site",
};

static const char *const health_check_type_table[_HEALTH_CHECK_TYPE_MAX + 1] = {
	[HEALTH_CHECK_AUTO] = "auto",     [HEALTH_CHECK_HTTP] = "http",
	[HEALTH_CHECK_TCP] = "tcp",       [HEALTH_CHECK_COMMAND] = "command",
	[HEALTH_CHECK_NOTIFY] = "notify", [HEALTH_CHECK_LOG] = "log",
};

static const char *const restart_policy_table[_RESTART_POLICY_MAX + 1] = {
	[RESTART_NO] = "no",
	[RESTART_ON_FAILURE] = "on-failure",
	[RESTART_ALWAYS] = "always",
};

static int table_lookup(const char *const *table, size_t n, const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (table[i] && streq(table[i], s))
			return (int)i;
	return -EINVAL;
}

const char *const *service_type_names(void)
{
	return service_type_table;
}

const char *const *health_check_type_names(void)
{
	return health_check_type_table + 1; /* not "auto": that is what no check means */
}

const char *const *restart_policy_names(void)
{
	return restart_policy_table;
}

const char *service_type_to_string(ServiceType t)
{
	return t >= 0 && t < _SERVICE_TYPE_MAX ? service_type_table[t] : NULL;
}

ServiceType service_type_from_string(const char *s)
{
	return (ServiceType)table_lookup(service_type_table, _SERVICE_TYPE_MAX, s);
}

const char *health_check_type_to_string(HealthCheckType t)
{
	return t >= 0 && t < _HEALTH_CHECK_TYPE_MAX ? health_check_type_table[t] : NULL;
}

HealthCheckType health_check_type_from_string(const char *s)
{
	/* "auto" is what an absent health_check means; nobody writes it. */
	int t = table_lookup(health_check_type_table, _HEALTH_CHECK_TYPE_MAX, s);
	return t == HEALTH_CHECK_AUTO ? _HEALTH_CHECK_TYPE_INVALID : (HealthCheckType)t;
}

const char *restart_policy_to_string(RestartPolicy p)
{
	return p >= 0 && p < _RESTART_POLICY_MAX ? restart_policy_table[p] : NULL;
}

RestartPolicy restart_policy_from_string(const char *s)
{
	/* Spellings of process-compose ("on_failure") and devenv ("never") too. */
	if (s && streq(s, "never"))
		return RESTART_NO;
	if (s && streq(s, "on_failure"))
		return RESTART_ON_FAILURE;
	return (RestartPolicy)table_lookup(restart_policy_table, _RESTART_POLICY_MAX, s);
}

int env_list_set(EnvList *l, const char *key, const char *value, SourcePos pos)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->vars[i].key, key)) {
			char *v = strdup(value);
			if (!v)
				return -ENOMEM;
			free(l->vars[i].value);
			l->vars[i].value = v;
			l->vars[i].pos = pos;
			return 0;
		}

	if (l->n == l->allocated) {
		size_t m = l->allocated ? l->allocated * 2 : 8;
		EnvVar *vars = reallocarray(l->vars, m, sizeof(EnvVar));
		if (!vars)
			return -ENOMEM;
		l->vars = vars;
		l->allocated = m;
	}
	_cleanup_free_ char *k = strdup(key), *v = strdup(value);
	if (!k || !v)
		return -ENOMEM;
	l->vars[l->n++] = (EnvVar){ .key = TAKE_PTR(k), .value = TAKE_PTR(v), .pos = pos };
	return 0;
}

const EnvVar *env_list_get(const EnvList *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->vars[i].key, key))
			return &l->vars[i];
	return NULL;
}

void env_list_done(EnvList *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->vars[i].key);
		free(l->vars[i].value);
	}
	free(l->vars);
	*l = (EnvList){ 0 };
}

static void service_done(Service *s)
{
	free(s->name);
	free(s->command);
	strv_free(s->argv);
	free(s->workdir);
	env_list_done(&s->env);
	strv_free(s->depends_on);
	free(s->depends_on_pos);
	free(s->health_check.command);
	free(s->health_check.path);
	free(s->health_check.ready_log_line);
	free(s->build.command);
	free(s->build.builder);
	strv_free(s->build.buildpacks);
	free(s->image);
	free(s->path);
	free(s->version);
	free(s->host);
}

Project *project_free(Project *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_services; i++)
		service_done(&p->services[i]);
	free(p->services);
	env_list_done(&p->env);
	free(p->name);
	free(p->domain);
	free(p->dir);
	free(p->config_path);
	free(p->dotenv_path);
	free(p);
	return NULL;
}

int project_new(const ProjectInput *in, Project **ret)
{
	_cleanup_project_ Project *p = calloc(1, sizeof(Project));
	if (!p)
		return -ENOMEM;
	p->source = in->source;
	p->dir = strdup(in->dir);
	p->config_path = strdup(in->config_path);
	if (!p->dir || !p->config_path)
		return -ENOMEM;
	if (in->dotenv_path && !(p->dotenv_path = strdup(in->dotenv_path)))
		return -ENOMEM;
	*ret = TAKE_PTR(p);
	return 0;
}

Service *project_add_service(Project *p, const char *name, SourcePos pos)
{
	_cleanup_free_ char *n = strdup(name);
	if (!n)
		return NULL;
	Service *services = reallocarray(p->services, p->n_services + 1, sizeof(Service));
	if (!services)
		return NULL;
	p->services = services;

	Service *s = &p->services[p->n_services++];
	*s = (Service){
		.name = TAKE_PTR(n),
		.type = SERVICE_EXEC,
		.health_check = {
			.type = HEALTH_CHECK_AUTO,
			.interval_ms = 1000,
			.timeout_ms = 1000,
			.retries = 3,
			.start_timeout_ms = 60000,
		},
		.stop_signal = SIGTERM,
		.stop_timeout_ms = 5000,
		.autostart = true,
		.restart = {
			.policy = RESTART_ON_FAILURE,
			.max_restarts = 5,
			.backoff_ms = 1000,
			.max_backoff_ms = 30000,
		},
		.pos.name = pos,
	};
	return s;
}

Service *project_find_service(const Project *p, const char *name)
{
	ssize_t i = project_service_index(p, name);
	return i < 0 ? NULL : &p->services[i];
}

ssize_t project_service_index(const Project *p, const char *name)
{
	for (size_t i = 0; i < p->n_services; i++)
		if (streq(p->services[i].name, name))
			return (ssize_t)i;
	return -1;
}

const char **project_service_names(const Project *p)
{
	const char **names = calloc(p->n_services + 1, sizeof(char *));
	if (!names)
		return NULL;
	for (size_t i = 0; i < p->n_services; i++)
		names[i] = p->services[i].name;
	return names;
}

bool name_is_label(const char *s, bool relaxed)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			  (relaxed && (c == '_' || (c >= 'A' && c <= 'Z')));
		if (!ok)
			return false;
	}
	return s[0] != '-' && s[n - 1] != '-';
}

bool project_name_is_valid(const char *name)
{
	return name && name_is_label(name, false);
}

int project_name_from_dir(const char *dir, char **ret)
{
	const char *base = strrchr(dir, '/');
	base = base ? base + 1 : dir;
	/* "/srv/app/" names "app": skip trailing slashes by taking the last non-empty part. */
	size_t len = strlen(base);
	if (len == 0) {
		size_t n = strlen(dir);
		while (n > 0 && dir[n - 1] == '/')
			n--;
		size_t start = n;
		while (start > 0 && dir[start - 1] != '/')
			start--;
		base = dir + start;
		len = n - start;
	}

	char out[64];
	size_t o = 0;
	for (size_t i = 0; i < len && o < sizeof(out) - 1; i++) {
		unsigned char c = (unsigned char)tolower((unsigned char)base[i]);
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (ok)
			out[o++] = (char)c;
		else if (o > 0 && out[o - 1] != '-')
			out[o++] = '-';
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	out[o] = 0;

	char *n = strdup(o > 0 ? out : "project");
	if (!n)
		return -ENOMEM;
	*ret = n;
	return 0;
}

char *project_path_resolve(const char *dir, const char *rel)
{
	if (rel[0] == '/')
		return strdup(rel);
	while (rel[0] == '.' && rel[1] == '/') {
		rel += 2;
		while (*rel == '/')
			rel++;
	}
	if (streq(rel, "."))
		rel = "";
	_cleanup_free_ char *p = path_join(dir, rel);
	if (!p)
		return NULL;
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = 0;
	return TAKE_PTR(p);
}

static int assign_hosts(Project *p, DiagList *diags)
{
	if (!p->domain)
		return 0; /* the name is missing or bad: already an error */

	/* `web` wins the bare domain; a service named like the project gets it otherwise. */
	bool have_web = false;
	for (size_t i = 0; i < p->n_services; i++)
		if (service_has_port(&p->services[i]) && streq(p->services[i].name, "web"))
			have_web = true;

	for (size_t i = 0; i < p->n_services; i++) {
		Service *s = &p->services[i];
		if (!service_has_port(s))
			continue;
		bool bare =
		    streq(s->name, "web") || (p->name && streq(s->name, p->name) && !have_web);
		if (!bare && p->name && streq(s->name, p->name))
			diag_at(diags, DIAG_WARNING, p->config_path, s->pos.name,
				"rename one of them to choose",
				"service \"%s\" is named like the project, but \"web\" is served "
				"at %s; "
				"\"%s\" is served at %s.%s",
				s->name, p->domain, s->name, s->name, p->domain);
		s->host = bare ? strdup(p->domain) : strdupf("%s.%s", s->name, p->domain);
		if (!s->host)
			return -ENOMEM;
	}
	return 0;
}

int project_finish(Project *p, DiagList *diags)
{
	if (!p->domain && p->name && project_name_is_valid(p->name)) {
		p->domain = strdupf("%s.localhost", p->name);
		if (!p->domain)
			return -ENOMEM;
	}

	for (size_t i = 0; i < p->n_services; i++) {
		Service *s = &p->services[i];
		if (!s->workdir && s->type != SERVICE_CONTAINER && !(s->workdir = strdup(p->dir)))
			return -ENOMEM;
		if (s->type == SERVICE_POSTGRES && !s->version && !(s->version = strdup("15")))
			return -ENOMEM;
		if (s->health_check.type == HEALTH_CHECK_HTTP && !s->health_check.path &&
		    !(s->health_check.path = strdup("/")))
			return -ENOMEM;
		if (s->build.kind == BUILD_BUILDPACKS && !s->build.builder &&
		    !(s->build.builder = strdup("heroku/builder:22")))
			return -ENOMEM;
		if (!service_has_port(s))
			s->port = 0;
	}
	return assign_hosts(p, diags);
}

int project_service_url(const Project *p, const Service *s, uint16_t https_port, char **ret)
{
	if (!s->host)
		return -ENOENT;
	char *u = https_port == 0 || https_port == 443
		      ? strdupf("https://%s", s->host)
		      : strdupf("https://%s:%u", s->host, (unsigned)https_port);
	if (!u)
		return -ENOMEM;
	*ret = u;
	return 0;
}
