/* SPDX-License-Identifier: MIT */
/* One `[services.<name>]` table → one Service: its keys, then what its type requires. */
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"
#include "project-toml.h"
#include "strutil.h"

#define T(type) (1u << (type))
#define T_ALL                                                                                      \
	(T(SERVICE_EXEC) | T(SERVICE_WORKER) | T(SERVICE_POSTGRES) | T(SERVICE_CONTAINER) |        \
	 T(SERVICE_SITE))
#define T_PROCESS (T(SERVICE_EXEC) | T(SERVICE_WORKER) | T(SERVICE_CONTAINER))

/* What a table's keys leave behind for the checks that look at several keys at once. */
typedef struct Scratch {
	char **args;
	bool command_is_array;
} Scratch;

typedef int (*KeyParser)(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x);

static int key_command(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	if (toml_type(v) == TOML_ARRAY) {
		_cleanup_strv_free_ char **argv = NULL;
		int r = value_string_array(c, key, v, 4096, &argv, NULL);
		if (r < 0)
			return r;
		if (strv_length(argv) == 0)
			return ctx_error(c, pos_of(v), "write command = [\"program\", \"arg\", …]",
					 "\"command\" is an empty array");
		s->argv = TAKE_PTR(argv);
		x->command_is_array = true;
		return 0;
	}
	const char *cmd;
	if (toml_type(v) != TOML_STRING)
		return ctx_type_error(c, key, v, "a string or an array of strings",
				      "write command = \"python3 -m http.server $PORT\"");
	int r = value_string(c, key, v, false, &cmd);
	if (r < 0)
		return r;
	_cleanup_free_ char *stripped = strdup(cmd);
	if (!stripped)
		return -ENOMEM;
	if (isempty(strstrip(stripped)))
		return ctx_error(c, pos_of(v), NULL, "\"command\" is blank");
	return (s->command = strdup(cmd)) ? 0 : -ENOMEM;
}

static int key_args(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	return value_string_array(c, key, v, 4096, &x->args, NULL);
}

static int key_workdir(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	const char *dir;
	int r = value_string(c, key, v, false, &dir);
	if (r < 0)
		return r;
	/* A container's workdir is a path inside the container, not on this machine. */
	s->workdir =
	    s->type == SERVICE_CONTAINER ? strdup(dir) : project_path_resolve(c->p->dir, dir);
	return s->workdir ? 0 : -ENOMEM;
}

static int key_port(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	return value_port(c, key, v, &s->port);
}

static int key_container_port(TomlCtx *c, Service *s, const char *key, const TomlValue *v,
			      Scratch *x)
{
	return value_port(c, key, v, &s->container_port);
}

/* Variables locald sets itself at spawn; a value in `env` would be overridden. */
static const char *const injected_keys[] = {
	"PORT", "NOTIFY_SOCKET", "LOCALD_URL", "LOCALD_PROJECT", "LOCALD_SERVICE", NULL,
};

static int key_env(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	if (toml_type(v) != TOML_TABLE)
		return ctx_type_error(c, key, v, "a table", "write env = { NAME = \"value\" }");

	int result = 0;
	for (size_t i = 0; i < toml_table_size(v); i++) {
		TomlPos kpos;
		const char *name = ctx_key(c, v, i, &kpos);
		if (!name)
			continue;
		const TomlValue *e = toml_table_value(v, i);
		_cleanup_free_ char *owned = NULL;
		const char *value;

		if (isempty(name) || strchr(name, '=') || strlen(name) > 1024) {
			result = ctx_error(c, pos_from_toml(kpos), "use letters, digits and '_'",
					   "invalid environment variable name \"%s\"", name);
			continue;
		}
		/* Numbers and booleans are what people mean as text; the rest is a mistake. */
		switch (toml_type(e)) {
		case TOML_STRING:
			if (value_string(c, name, e, true, &value) < 0) {
				result = -EINVAL;
				continue;
			}
			break;
		case TOML_INTEGER:
			value = owned = strdupf("%" PRId64, toml_integer(e));
			if (!owned)
				return -ENOMEM;
			break;
		case TOML_BOOL:
			value = toml_bool(e) ? "true" : "false";
			break;
		default:
			result = ctx_type_error(c, name, e, "a string", "quote the value");
			continue;
		}

		for (const char *const *k = injected_keys; *k; k++)
			if (streq(name, *k))
				ctx_warning(c, pos_from_toml(kpos),
					    streq(name, "PORT")
						? "to fix the port, write port = … for the service"
						: NULL,
					    "%s is set by locald and overrides this value", name);
		if (env_list_set(&s->env, name, value, pos_of(e)) < 0)
			return -ENOMEM;
	}
	return result;
}

static int key_depends_on(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	_cleanup_strv_free_ char **deps = NULL;
	_cleanup_free_ SourcePos *pos = NULL;
	int r = value_string_array(c, key, v, PROJECT_DEPENDS_MAX, &deps, &pos);
	if (r < 0)
		return r;

	/* Drop repeats (in place) so every consumer sees each edge once. */
	size_t k = 0;
	for (size_t i = 0; deps[i]; i++) {
		bool seen = false;
		for (size_t j = 0; j < k; j++)
			if (streq(deps[j], deps[i]))
				seen = true;
		if (seen) {
			ctx_warning(c, pos[i], "remove the repeat",
				    "\"%s\" is listed twice in depends_on", deps[i]);
			free(deps[i]);
			continue;
		}
		deps[k] = deps[i];
		pos[k++] = pos[i];
	}
	deps[k] = NULL;
	s->depends_on = TAKE_PTR(deps);
	s->depends_on_pos = TAKE_PTR(pos);
	return 0;
}

static int key_stop_signal(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	static const char hint[] =
	    "use a name like \"SIGTERM\", \"INT\" or \"SIGQUIT\", or a number";
	int sig;
	if (toml_type(v) == TOML_INTEGER) {
		int64_t n = toml_integer(v);
		sig = n > 0 && n < 65 && signal_to_string((int)n) ? (int)n : -EINVAL;
		if (sig < 0)
			return ctx_error(c, pos_of(v), hint, "unknown signal %" PRId64, n);
	} else {
		const char *name;
		if (toml_type(v) != TOML_STRING)
			return ctx_type_error(c, key, v, "a signal name", hint);
		int r = value_string(c, key, v, false, &name);
		if (r < 0)
			return r;
		sig = signal_from_string(name);
		if (sig < 0)
			return ctx_error(c, pos_of(v), hint, "unknown signal \"%s\"", name);
	}
	s->stop_signal = sig;
	return 0;
}

static int key_stop_timeout(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	return value_duration(c, key, v, true, &s->stop_timeout_ms);
}

static int key_pty(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	if (toml_type(v) != TOML_BOOL)
		return ctx_type_error(c, key, v, "true or false", NULL);
	s->pty = toml_bool(v);
	return 0;
}

static int key_autostart(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	if (toml_type(v) != TOML_BOOL)
		return ctx_type_error(c, key, v, "true or false", NULL);
	s->autostart = toml_bool(v);
	return 0;
}

static int key_idle_stop(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	return value_duration(c, key, v, false, &s->idle_stop_ms);
}

/* Service-level shorthand (process-compose's spelling) for a log health check. */
static int key_ready_log_line(TomlCtx *c, Service *s, const char *key, const TomlValue *v,
			      Scratch *x)
{
	HealthCheck *h = &s->health_check;
	if (h->type != HEALTH_CHECK_AUTO && h->type != HEALTH_CHECK_LOG)
		return ctx_error(c, pos_of(v), "keep one of them",
				 "ready_log_line and a %s health_check both say when \"%s\" is ready",
				 health_check_type_to_string(h->type), s->name);
	int r = value_ready_log_line(c, key, v, &h->ready_log_line);
	if (r >= 0)
		h->type = HEALTH_CHECK_LOG;
	return r;
}

static int key_health_check(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	return service_parse_health_check(c, s, key, v);
}

static int key_restart(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	return service_parse_restart(c, s, key, v);
}

static int key_build(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	return service_parse_build(c, s, key, v);
}

static int key_image(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	const char *img;
	int r = value_string(c, key, v, false, &img);
	if (r < 0)
		return r;
	return (s->image = strdup(img)) ? 0 : -ENOMEM;
}

static int key_path(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	const char *path;
	int r = value_string(c, key, v, false, &path);
	if (r < 0)
		return r;
	return (s->path = project_path_resolve(c->p->dir, path)) ? 0 : -ENOMEM;
}

static int key_version(TomlCtx *c, Service *s, const char *key, const TomlValue *v, Scratch *x)
{
	const char *ver;
	if (toml_type(v) == TOML_INTEGER) /* version = 15 means what version = "15" means */
		s->version = strdupf("%" PRId64, toml_integer(v));
	else if (value_string(c, key, v, false, &ver) < 0)
		return -EINVAL;
	else
		s->version = strdup(ver);
	return s->version ? 0 : -ENOMEM;
}

typedef struct ServiceKey {
	const char *key;
	KeyParser parse;
	unsigned types; /* where the key has an effect */
	size_t pos_offset;
} ServiceKey;

#define KEY(k, fn, t)                                                                              \
	{                                                                                          \
#k, fn, t, offsetof(ServicePositions, k)                                           \
	}
static const ServiceKey service_keys[] = {
	KEY(type, NULL, T_ALL),
	KEY(command, key_command, T_PROCESS),
	KEY(args, key_args, T_PROCESS),
	KEY(workdir, key_workdir, T_PROCESS),
	KEY(port, key_port, T_ALL & ~T(SERVICE_WORKER)),
	KEY(env, key_env, T_ALL),
	KEY(depends_on, key_depends_on, T_ALL),
	KEY(health_check, key_health_check, T_ALL),
	KEY(stop_signal, key_stop_signal, T_ALL),
	KEY(stop_timeout, key_stop_timeout, T_ALL),
	KEY(restart, key_restart, T_ALL),
	KEY(build, key_build, T(SERVICE_EXEC) | T(SERVICE_WORKER) | T(SERVICE_SITE)),
	/* exec + image is the original's legacy container form (see finish_service) */
	KEY(image, key_image, T(SERVICE_CONTAINER) | T(SERVICE_EXEC)),
	KEY(container_port, key_container_port, T(SERVICE_CONTAINER) | T(SERVICE_EXEC)),
	KEY(path, key_path, T(SERVICE_SITE)),
	KEY(version, key_version, T(SERVICE_POSTGRES)),
	KEY(pty, key_pty, T_PROCESS),
	KEY(ready_log_line, key_ready_log_line, T_PROCESS),
	/* what the proxy does on its own: only services it routes to */
	KEY(autostart, key_autostart, T_ALL & ~T(SERVICE_WORKER)),
	KEY(idle_stop, key_idle_stop, T_ALL & ~T(SERVICE_WORKER) & ~T(SERVICE_SITE)),
};

static const ServiceKey *service_key_find(const char *key)
{
	for (size_t i = 0; i < ELEMENTSOF(service_keys); i++)
		if (streq(service_keys[i].key, key))
			return &service_keys[i];
	return NULL;
}

/* Reads `type` first: which keys apply, and what is required, depend on it.
 * Returns false if the type is unknown, so requirement checks do not pile up. */
static bool parse_type(TomlCtx *c, Service *s, const TomlValue *table)
{
	const TomlValue *v = toml_table_get(table, "type", NULL);
	const char *name;
	if (!v)
		return true; /* the original's untagged (legacy) exec */
	s->pos.type = pos_of(v);
	if (value_string(c, "type", v, false, &name) < 0)
		return false;
	ServiceType t = service_type_from_string(name);
	if (t < 0) {
		const char *near = diag_suggest(name, service_type_names());
		_cleanup_free_ char *hint =
		    near ? strdupf("did you mean \"%s\"?", near)
			 : strdup("use exec, worker, postgres, container or site");
		ctx_error(c, pos_of(v), hint, "unknown service type \"%s\"", name);
		return false;
	}
	s->type = t;
	return true;
}

/* Checks that need several keys at once; runs after every key was read. */
static void finish_service(TomlCtx *c, Service *s, Scratch *x, bool type_ok)
{
	if (!name_is_label(s->name, type_ok && s->type == SERVICE_WORKER)) {
		_cleanup_free_ char *suggestion = NULL;
		_cleanup_free_ char *hint = NULL;
		if (project_name_from_dir(s->name, &suggestion) >= 0)
			hint = strdupf("service names become host names: use lowercase letters, "
				       "digits and '-', like \"%s\"",
				       suggestion);
		ctx_error(c, s->pos.name, hint,
			  "service name \"%s\" is not a valid host name label", s->name);
	}

	if (x->args) {
		if (x->command_is_array)
			ctx_error(c, s->pos.args, "put the arguments in the command array",
				  "\"args\" cannot be combined with a command array");
		else if (!s->command)
			ctx_error(c, s->pos.args, "add command = \"program\"",
				  "\"args\" given without \"command\"");
		else {
			if (strpbrk(s->command, " \t"))
				ctx_warning(
				    c, s->pos.command,
				    "with args, command is the program to run, not a shell line",
				    "command \"%s\" contains spaces but is run without a shell",
				    s->command);
			/* argv = command + args; from here on the service is exec'd directly. */
			char **argv = calloc(strv_length(x->args) + 2, sizeof(char *));
			if (!argv) {
				c->diags->oom = true;
				return;
			}
			argv[0] = TAKE_PTR(s->command);
			memcpy(argv + 1, x->args, strv_length(x->args) * sizeof(char *));
			free(TAKE_PTR(x->args));
			s->argv = argv;
		}
	}
	if (!type_ok)
		return;

	/* A key that was written but was bad is already reported; "missing" would be noise. */
	bool has_command = s->command || s->argv || s->pos.command.line > 0;
	bool has_image = s->image || s->pos.image.line > 0;
	bool has_path = s->path || s->pos.path.line > 0;
	switch (s->type) {
	case SERVICE_EXEC:
		if (has_image) {
			ctx_warning(c, s->pos.image, "write type = \"container\"",
				    "service \"%s\" has an image, so it runs as a container",
				    s->name);
			s->type = SERVICE_CONTAINER;
		} else if (!has_command && s->build.kind != BUILD_BUILDPACKS)
			ctx_error(c, s->pos.name,
				  "add command = \"…\" (the program that listens on $PORT)",
				  "service \"%s\" has no command", s->name);
		else if (s->container_port)
			ctx_warning(c, s->pos.container_port, "remove it, or add image = \"…\"",
				    "container_port has no effect without an image");
		break;
	case SERVICE_WORKER:
		if (!has_command)
			ctx_error(c, s->pos.name, "add command = \"…\"",
				  "worker \"%s\" has no command", s->name);
		break;
	case SERVICE_CONTAINER:
		if (!has_image)
			ctx_error(c, s->pos.name, "add image = \"…\", like image = \"redis:7\"",
				  "container \"%s\" has no image", s->name);
		break;
	case SERVICE_SITE:
		if (!has_path)
			ctx_error(c, s->pos.name, "add path = \"…\", the directory to serve",
				  "site \"%s\" has no path", s->name);
		break;
	default:
		break;
	}

	HealthCheckType h = s->health_check.type;
	if (!service_has_port(s) && (h == HEALTH_CHECK_HTTP || h == HEALTH_CHECK_TCP))
		ctx_error(c, s->health_check.pos, "use a command or notify check for a worker",
			  "health_check type \"%s\" needs a port, and worker \"%s\" has none",
			  health_check_type_to_string(h), s->name);
}

int service_from_toml(TomlCtx *c, size_t idx, const TomlValue *table)
{
	Service *s = &c->p->services[idx];
	_cleanup_free_ char *where = strdupf("service \"%s\"", s->name);
	if (!where)
		return -ENOMEM;

	bool type_ok = parse_type(c, s, table);
	Scratch x = { 0 };
	for (size_t i = 0; i < toml_table_size(table); i++) {
		TomlPos kpos;
		const char *key = ctx_key(c, table, i, &kpos);
		if (!key)
			continue;
		const TomlValue *v = toml_table_value(table, i);
		const ServiceKey *k = service_key_find(key);

		if (!k) {
			const char *names[ELEMENTSOF(service_keys) + 1] = { NULL };
			for (size_t j = 0; j < ELEMENTSOF(service_keys); j++)
				names[j] = service_keys[j].key;
			ctx_unknown_key(c, where, key, kpos, names);
			continue;
		}
		if (!k->parse)
			continue; /* type: read first */
		if (type_ok && !(k->types & T(s->type))) {
			ctx_warning(c, pos_from_toml(kpos), "remove it",
				    "\"%s\" has no effect on a service of type %s", key,
				    service_type_to_string(s->type));
			continue;
		}
		*(SourcePos *)((char *)&s->pos + k->pos_offset) = pos_of(v);
		int r = k->parse(c, s, key, v, &x);
		if (r == -ENOMEM) {
			strv_free(x.args);
			return r;
		}
	}
	finish_service(c, s, &x, type_ok);
	strv_free(x.args);
	return 0;
}
