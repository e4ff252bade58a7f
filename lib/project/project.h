/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The project model: what a `locald.toml` (or a `Procfile`) plus the project's `.env`
 * describe, checked and resolved, ready for the supervisor. The schema is documented in
 * lib/project/README.md; it accepts every file the original locald accepts.
 *
 * Loading never logs and never stops at the first problem: every finding goes into a
 * DiagList with file:line:col, and the result is -EINVAL if any of them is an error.
 *
 *     _cleanup_diag_list_ DiagList diags = DIAG_LIST_INIT;
 *     _cleanup_(project_freep) Project *p = NULL;
 *     r = project_load("/home/me/shop", &p, &diags);
 *     for (size_t i = 0; i < diags.n; i++) { print diag_to_string(&diags.items[i]) }
 *     if (r < 0) return r;
 *
 * Ownership: a Project owns everything reachable from it; project_free() frees it all.
 * Pointers into it (services, names, env) live as long as the Project.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

/* Hard limits on what we read: config files are small, and these keep a mistake (or a
 * hostile file) from costing more than a few MiB. */
#define PROJECT_CONFIG_MAX (1024u * 1024u) /* bytes of locald.toml or Procfile */
#define PROJECT_DOTENV_MAX (1024u * 1024u) /* bytes of .env */
#define PROJECT_SERVICES_MAX 512u
#define PROJECT_DEPENDS_MAX 256u /* depends_on entries of one service */

/* Where something was written; {0, 0} = not written (a default). */
typedef struct SourcePos {
	uint32_t line; /* 1-based */
	uint32_t col;  /* 1-based, in code points */
} SourcePos;

typedef enum ProjectSource {
	PROJECT_SOURCE_TOML,
	PROJECT_SOURCE_PROCFILE,
	_PROJECT_SOURCE_MAX,
	_PROJECT_SOURCE_INVALID = -EINVAL,
} ProjectSource;

typedef enum ServiceType {
	SERVICE_EXEC,      /* a command on the host that listens on $PORT (the default) */
	SERVICE_WORKER,    /* a command on the host without a port or URL */
	SERVICE_POSTGRES,  /* a managed PostgreSQL server */
	SERVICE_CONTAINER, /* an OCI image */
	SERVICE_SITE,      /* a static directory served by locald */
	_SERVICE_TYPE_MAX,
	_SERVICE_TYPE_INVALID = -EINVAL,
} ServiceType;

typedef enum HealthCheckType {
	HEALTH_CHECK_AUTO, /* none configured: superd infers it (sd_notify, else TCP on the port) */
	HEALTH_CHECK_HTTP, /* GET http://127.0.0.1:<port><path> answers 2xx/3xx */
	HEALTH_CHECK_TCP,  /* connect to 127.0.0.1:<port> succeeds */
	HEALTH_CHECK_COMMAND, /* `sh -c <command>` in the service's workdir exits 0 */
	HEALTH_CHECK_NOTIFY,  /* the service sends READY=1 on $NOTIFY_SOCKET */
	HEALTH_CHECK_LOG,     /* an output line matches ready_log_line (POSIX extended regex) */
	_HEALTH_CHECK_TYPE_MAX,
	_HEALTH_CHECK_TYPE_INVALID = -EINVAL,
} HealthCheckType;

typedef enum RestartPolicy {
	RESTART_NO,         /* never */
	RESTART_ON_FAILURE, /* after a non-zero exit or a death by a signal locald did not send */
	RESTART_ALWAYS,     /* after any exit locald did not ask for */
	_RESTART_POLICY_MAX,
	_RESTART_POLICY_INVALID = -EINVAL,
} RestartPolicy;

typedef enum BuildKind {
	BUILD_NONE,
	BUILD_COMMAND, /* `build = "make"`: a shell command run in the workdir before each start */
	BUILD_BUILDPACKS, /* `[services.x.build]` table: Cloud Native Buildpacks */
	_BUILD_KIND_MAX,
	_BUILD_KIND_INVALID = -EINVAL,
} BuildKind;

typedef struct EnvVar {
	char *key;
	char *value;   /* as written; service env values may hold ${…} references */
	SourcePos pos; /* of the value */
} EnvVar;

/* An ordered environment: setting a key again replaces its value in place. */
typedef struct EnvList {
	EnvVar *vars;
	size_t n, allocated;
} EnvList;

typedef struct HealthCheck {
	HealthCheckType type;
	char *command;        /* COMMAND */
	char *path;           /* HTTP; default "/" */
	uint64_t interval_ms; /* between probes; default 1000 */
	uint64_t timeout_ms;  /* one probe; default 1000 */
	uint32_t
	    retries; /* consecutive failures that make a healthy service unhealthy; default 3 */
	uint64_t start_period_ms; /* failures in this window after start do not count; default 0 */
	uint64_t start_timeout_ms; /* not ready by then: the start failed; default 60000 */
	bool liveness;            /* keep checking once ready; unhealthy → restart per policy */
	char *ready_log_line;     /* LOG */
	SourcePos pos;            /* of the health_check value */
} HealthCheck;

typedef struct RestartConfig {
	RestartPolicy policy;  /* default RESTART_ON_FAILURE */
	uint32_t max_restarts; /* consecutive restarts before giving up; 0 = no limit; default 5 */
	uint64_t backoff_ms;   /* delay before the first restart, doubled each time; default 1000 */
	uint64_t max_backoff_ms; /* cap on that delay; a run longer than this resets the count;
				    default 30000 */
} RestartConfig;

typedef struct BuildConfig {
	BuildKind kind;
	char *command;     /* BUILD_COMMAND */
	char *builder;     /* BUILD_BUILDPACKS; default "heroku/builder:22" */
	char **buildpacks; /* BUILD_BUILDPACKS; NULL = let the builder detect */
} BuildConfig;

/* Where each key of a service was written (the value's position; {0,0} = defaulted). */
typedef struct ServicePositions {
	SourcePos name; /* the key that names the service: `[services.web]` or `web:` */
	SourcePos type, command, args, workdir, port, env, depends_on, health_check, stop_signal,
	    stop_timeout, restart, build, image, container_port, path, version, pty, ready_log_line,
	    autostart, idle_stop;
} ServicePositions;

typedef struct Service {
	char *name;
	ServiceType type;
	/*
	 * How to run it, one of:
	 *   command (argv NULL): a shell string, run as `/bin/sh -c command`;
	 *   argv (command NULL): exec'd directly, from `command = [..]` or `command` + `args`;
	 *   neither: the type's own default (postgres, the image's entrypoint, a buildpack's
	 * process).
	 */
	char *command;
	char **argv;
	/* Absolute; the project dir unless set. For containers: the path inside the container
	 * as written, NULL for the image's default. */
	char *workdir;
	uint16_t port; /* fixed port; 0 = superd assigns one. Always 0 for workers. */
	EnvList env;
	char **depends_on; /* as written, without duplicates */
	SourcePos *depends_on_pos;
	HealthCheck health_check;
	int stop_signal;          /* default SIGTERM */
	uint64_t stop_timeout_ms; /* before SIGKILL; default 5000 */
	RestartConfig restart;
	BuildConfig build;
	char *image;             /* container */
	uint16_t container_port; /* container; 0 = unset */
	char *path;              /* site: the directory served, absolute */
	char *version;           /* postgres; default "15" */
	bool pty;                /* run on a pseudo-terminal (tools keep their colours) */
	char *host;              /* name the proxy serves it under; NULL for workers */
	bool autostart;          /* the proxy starts it when a request arrives; default true */
	uint64_t idle_stop_ms;   /* the proxy stops it after this long without requests; 0 = never */
	ServicePositions pos;
} Service;

typedef struct Project {
	char *name;
	char *domain;      /* default "<name>.localhost" */
	char *dir;         /* absolute; relative paths in the config start here */
	char *config_path; /* the locald.toml or Procfile this came from */
	ProjectSource source;
	char *dotenv_path; /* NULL when there is no .env */
	EnvList env;       /* from .env, in file order */
	Service *services; /* in file order */
	size_t n_services;
	SourcePos name_pos, domain_pos;
} Project;

/*
 * Load a project from `path`: a directory (its locald.toml, else its Procfile), or the
 * path of a locald.toml-style file (any name) or of a file named Procfile. A `.env`
 * next to it is read too. Files larger than the limits above are refused.
 *
 * Returns 0 and the project (diags may hold warnings); -EINVAL if any diagnostic is an
 * error; -ENOENT if there is nothing to load (with a diagnostic saying so); -ENOMEM; or
 * another -errno from reading the files (with a diagnostic). On failure *ret is untouched.
 */
int project_load(const char *path, Project **ret, DiagList *diags);

/* What project_load() reads from disk, given from memory instead. */
typedef struct ProjectInput {
	ProjectSource source;
	const char *dir;         /* absolute */
	const char *config_path; /* the name diagnostics and Project.config_path use */
	const char *config;
	size_t config_len;
	const char *dotenv_path; /* NULL = no .env */
	const char *dotenv;
	size_t dotenv_len;
} ProjectInput;

/* project_load() without the filesystem. Same results. */
int project_load_memory(const ProjectInput *in, Project **ret, DiagList *diags);

/*
 * The two steps of project_load_memory(), for tools that want the model even when it has
 * errors (an editor integration, `localctl doctor`, the fuzzer). project_parse() builds
 * what the input allows and returns 0 (errors only in diags), or -EINVAL when nothing
 * could be built (a TOML syntax error), or -ENOMEM. project_validate() adds the checks
 * that look across services (dependencies, cycles, ports, host names, references);
 * it returns 0 or -ENOMEM, never -EINVAL.
 */
int project_parse(const ProjectInput *in, Project **ret, DiagList *diags);
int project_validate(const Project *p, DiagList *diags);

Project *project_free(Project *p); /* returns NULL; accepts NULL and half-built projects */
DEFINE_TRIVIAL_CLEANUP_FUNC(Project *, project_free)

Service *project_find_service(const Project *p, const char *name);

/* Everything but a worker listens on a port (and so has a host and URL). */
static inline bool service_has_port(const Service *s)
{
	return s->type != SERVICE_WORKER;
}

/* "https://<host>", with ":<https_port>" unless it is 443. -ENOENT for workers. */
int project_service_url(const Project *p, const Service *s, uint16_t https_port, char **ret);

/*
 * A name the project config accepts for a service or project: a DNS label (lowercase
 * letters, digits, '-', not at either end, 1–63 bytes), because it becomes a host name.
 * project_name_from_dir() makes one from a directory name ("My_App" → "my-app"; "project"
 * if nothing is left).
 */
bool project_name_is_valid(const char *name);
int project_name_from_dir(const char *dir, char **ret);

const char *service_type_to_string(ServiceType t);
ServiceType service_type_from_string(const char *s);
const char *health_check_type_to_string(HealthCheckType t);
HealthCheckType health_check_type_from_string(const char *s);
const char *restart_policy_to_string(RestartPolicy p);
RestartPolicy restart_policy_from_string(const char *s); /* also "never", "on_failure" */

/* ---- environment ---- */

/* Set key (replacing in place, keeping its first position in the order). 0 or -ENOMEM. */
int env_list_set(EnvList *l, const char *key, const char *value, SourcePos pos);
const EnvVar *env_list_get(const EnvList *l, const char *key);
void env_list_done(EnvList *l);

/*
 * Parse a .env file: `KEY=value`, `export KEY=value`, 'single' (literal) and "double"
 * (escapes \n \t \r \" \\ \$) quoted values that may span lines, `#` comments (also after
 * an unquoted value when preceded by a space), blank lines. Values are literal otherwise
 * (no $VAR expansion). A bad line is an error diagnostic naming it; the rest still load.
 * Returns 0 or -ENOMEM.
 */
int dotenv_parse(const char *data, size_t len, const char *file, EnvList *env, DiagList *diags);

/*
 * Interpolation of service env values: ${services.<name>.port|host|url|proxy_host|proxy_url},
 * ${project.name}, ${project.domain}; `$$` is a literal `$`. Other `${…}` (say ${HOME})
 * are kept as written (with a warning at load time). port/host/url are the direct
 * address (http://127.0.0.1:<port>; postgres://postgres:postgres@127.0.0.1:<port>/postgres
 * for postgres); proxy_host/proxy_url go through the proxy.
 *
 * Ports are assigned by the supervisor at run time, so the caller resolves them.
 */
typedef int (*PortLookup)(const Project *p, const Service *s, void *userdata, uint16_t *ret_port);

typedef struct ProjectResolver {
	PortLookup port; /* NULL: only fixed ports are known */
	void *userdata;
	uint16_t https_port; /* the proxy's; 0 = 443 */
} ProjectResolver;

/* Expand one value. -EINVAL on a bad reference (validation reports those earlier);
 * -ENOENT if a port is not known; -ENOMEM; or the PortLookup's error. */
int project_interpolate(const Project *p, const char *value, const ProjectResolver *r, char **ret);

/*
 * The environment of one service as a NULL-terminated "KEY=VALUE" strv, layered with
 * later layers winning: inherited → the project's .env → the service's env (interpolated)
 * → injected. inherited and injected are "KEY=VALUE" strvs (NULL = none; entries
 * without '=' are skipped). Keys keep the position where they first appeared.
 */
int project_service_env(const Project *p, const Service *s, char *const *inherited,
			char *const *injected, const ProjectResolver *r, char ***ret);

/* ---- start order ---- */

typedef struct ServiceNode {
	size_t wave;
	size_t *deps; /* indices of the services this one waits for (known ones, no duplicates) */
	size_t n_deps;
	size_t *dependents; /* indices of the services that wait for this one */
	size_t n_dependents;
} ServiceNode;

/*
 * Start order with its parallelism: wave 0 is every service without dependencies, wave k
 * every service whose dependencies are all in earlier waves; services of one wave may
 * start together. Stop order is the reverse (last wave first). Superd can do better than
 * waves by starting each service as soon as its own deps are healthy: nodes[] has them.
 */
typedef struct ProjectWaves {
	size_t n_services;
	ServiceNode *nodes; /* indexed like Project.services */
	size_t n_waves;
	size_t *order; /* all service indices in start order, wave by wave */
	size_t *
	    wave_start; /* n_waves + 1 offsets: wave w is order[wave_start[w] .. wave_start[w+1]) */
} ProjectWaves;

/*
 * Unknown names in depends_on are ignored here (validation reports them). On a cycle
 * returns -ELOOP and, if ret_cycle is non-NULL, the cycle as "a -> b -> c -> a".
 * On failure *ret is untouched.
 */
int project_start_waves(const Project *p, ProjectWaves *ret, char **ret_cycle);
void project_waves_done(ProjectWaves *w);

/* Mark service idx and everything it needs, transitively (dependents instead when
 * `dependents`), in in_set[n_services]. 0 or -ENOMEM. */
int project_waves_closure(const ProjectWaves *w, size_t idx, bool dependents, bool *in_set);
