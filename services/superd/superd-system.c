/* SPDX-License-Identifier: MIT */
/*
 * Embedded mode: superd runs the daemons locald needs (proxyd, and fsd where FUSE is
 * usable) as services of a built-in project named `system`, so they are supervised like
 * everything else — restarted when they crash, visible in Status, stopped with superd.
 * A locald-fsd that `localctl fs` started before superd keeps serving; the supervised
 * one stands by until it exits, then takes its mounts over.
 *
 * The project is an ordinary locald.toml that superd writes into <runtime>/system/ and
 * applies: reload, crash recovery and re-adoption work for it unchanged. superd chooses
 * the proxy's ports before it starts anything, because service URLs (and the
 * ${services.x.url} values services get) depend on them: 80/443 when they can be bound
 * (or locald-shim is installed to bind them for proxyd), else 8080/8443, else free ports;
 * LOCALD_HTTP_PORT/LOCALD_HTTPS_PORT override (0 = any free port). proxyd is told the chosen ports
 * explicitly, so URLs and listeners agree. After a restart of superd while the old proxyd still
 * runs, the ports it was given are kept.
 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "paths.h"
#include "strutil.h"
#include "superd-engine.h"
#include "superd-ports.h"
#include "shim-client.h"
#include "superd-system.h"

static void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static bool port_bindable(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	safe_close(fd);
	return ok;
}

/* One port: the environment's, else `low` if bindable, else `fallback`, else any. */
static int choose_port(const char *env_name, uint16_t low, uint16_t fallback,
		       const uint16_t *exclude, size_t n_exclude, uint16_t *ret)
{
	const char *v = getenv(env_name);
	if (v && *v) {
		uint16_t p;
		if (streq(v, "0"))
			return port_pick_free(exclude, n_exclude, ret);
		if (parse_port(v, &p) < 0) {
			log_error("$%s=\"%s\" is not a port (0-65535)", env_name, v);
			return -EINVAL;
		}
		*ret = p;
		return 0;
	}
	if (port_bindable(low)) {
		*ret = low;
		return 0;
	}
	/* proxyd gets a privileged port from locald-shim when it is installed */
	_cleanup_free_ char *shim = NULL;
	if (low < 1024 && shim_find(&shim) == 0) {
		*ret = low;
		return 0;
	}
	if (port_bindable(fallback)) {
		*ret = fallback;
		return 0;
	}
	return port_pick_free(exclude, n_exclude, ret);
}

/* The ports an earlier superd gave a proxyd that still runs (it holds proxyd.lock). */
static bool previous_ports(const char *runtime, const char *system_dir, uint16_t *http,
			   uint16_t *https)
{
	_cleanup_free_ char *lock_path = path_join(runtime, "proxyd.lock");
	_cleanup_free_ char *ports_path = path_join(system_dir, "ports");
	if (!lock_path || !ports_path)
		return false;
	_cleanup_close_ int fd = open(lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		(void)flock(fd, LOCK_UN);
		return false; /* nobody holds it: no proxyd alive */
	}
	_cleanup_fclose_ FILE *f = fopen(ports_path, "re");
	unsigned a, b;
	if (!f || fscanf(f, "%u %u", &a, &b) != 2 || !a || !b || a > 65535 || b > 65535)
		return false;
	*http = (uint16_t)a;
	*https = (uint16_t)b;
	return true;
}

/* Where a daemon (locald-proxyd) is: $LOCALD_PROXYD, next to us (installed), or the build tree. */
static char *find_daemon(const char *name, const char *env_name)
{
	const char *v = getenv(env_name);
	if (v && *v)
		return access(v, X_OK) == 0 ? strdup(v) : NULL;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	char *p = strdupf("%s/%s", self, name);
	if (p && access(p, X_OK) == 0)
		return p;
	free(p);
	/* build tree: services/superd/locald-superd → services/proxyd/locald-proxyd */
	const char *sub = name + strlen("locald-");
	p = strdupf("%s/../%s/%s", self, sub, name);
	if (p && access(p, X_OK) == 0)
		return p;
	free(p);
	return NULL;
}

/* A TOML basic string's contents: \\ and " escaped. */
static char *toml_quote(const char *s)
{
	char *quoted = malloc(strlen(s) * 2 + 1);
	if (!quoted)
		return NULL;
	char *q = quoted;
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			*q++ = '\\';
		*q++ = *s;
	}
	*q = 0;
	return quoted;
}

/* Can locald-fsd mount here? /dev/fuse openable, or fusermount3 to do it for us. */
static bool fuse_usable(void)
{
	if (access("/dev/fuse", F_OK) < 0)
		return false;
	return access("/dev/fuse", R_OK | W_OK) == 0 || access("/usr/bin/fusermount3", X_OK) == 0 ||
	       access("/bin/fusermount3", X_OK) == 0;
}

int system_choose_ports(const char *runtime, SystemPorts *ret)
{
	_cleanup_free_ char *dir = path_join(runtime, "system");
	if (!dir)
		return -ENOMEM;
	*ret = (SystemPorts){};
	if (previous_ports(runtime, dir, &ret->http, &ret->https)) {
		ret->kept = true;
		return 0;
	}
	int r = choose_port("LOCALD_HTTPS_PORT", 443, 8443, NULL, 0, &ret->https);
	if (r < 0)
		return r;
	r = choose_port("LOCALD_HTTP_PORT", 80, 8080, &ret->https, 1, &ret->http);
	if (r < 0)
		return r;
	return 0;
}

int system_project_apply(Engine *e, const char *runtime, const SystemPorts *ports,
			 char **ret_warning)
{
	*ret_warning = NULL;
	_cleanup_free_ char *proxyd = find_daemon("locald-proxyd", "LOCALD_PROXYD");
	if (!proxyd) {
		*ret_warning = strdup("locald-proxyd not found next to locald-superd (set "
				      "$LOCALD_PROXYD): services get no https://*.localhost URLs");
		return 0;
	}
	_cleanup_free_ char *dir = path_join(runtime, "system");
	_cleanup_free_ char *toml = path_join(dir, "locald.toml");
	_cleanup_free_ char *tmp = path_join(dir, "locald.toml.tmp");
	_cleanup_free_ char *ports_path = path_join(dir, "ports");
	if (!dir || !toml || !tmp || !ports_path)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;

	_cleanup_free_ char *quoted = toml_quote(proxyd);
	_cleanup_free_ char *fsd = fuse_usable() ? find_daemon("locald-fsd", "LOCALD_FSD") : NULL;
	_cleanup_free_ char *fsd_quoted = fsd ? toml_quote(fsd) : NULL;
	if (!quoted || (fsd && !fsd_quoted))
		return -ENOMEM;

	_cleanup_fclose_ FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"# Written by locald-superd at every start: the daemons it supervises.\n"
		"[project]\n"
		"name = \"system\"\n"
		"domain = \"locald.localhost\"\n\n"
		"[services.proxyd]\n"
		"type = \"worker\"\n"
		"command = [\"%s\"]\n"
		"health_check = { type = \"notify\", start_timeout = \"30s\" }\n"
		"restart = { policy = \"always\", max_restarts = 0 }\n"
		"stop_timeout = \"10s\"\n"
		"env = { LOCALD_HTTP_PORT = \"%u\", LOCALD_HTTPS_PORT = \"%u\" }\n",
		quoted, (unsigned)ports->http, (unsigned)ports->https);
	if (fsd_quoted)
		fprintf(f,
			"\n[services.fsd]\n"
			"type = \"worker\"\n"
			"command = [\"%s\"]\n"
			"health_check = { type = \"notify\", start_timeout = \"30s\" }\n"
			"restart = { policy = \"always\", max_restarts = 0 }\n"
			"stop_timeout = \"10s\"\n",
			fsd_quoted);
	if (fflush(f) != 0 || ferror(f))
		return -EIO;
	if (rename(tmp, toml) < 0)
		return -errno;

	_cleanup_fclose_ FILE *pf = fopen(ports_path, "we");
	if (pf)
		fprintf(pf, "%u %u\n", (unsigned)ports->http, (unsigned)ports->https);

	_cleanup_diag_list_ DiagList diags = DIAG_LIST_INIT;
	EngineProject *p = NULL;
	int r = engine_apply(e, toml, NULL, NULL, &diags, &p);
	if (r < 0) {
		_cleanup_free_ char *why = diags.n ? diag_to_string(&diags.items[0]) : NULL;
		log_error("system project: %s", why ? why : strerror(-r));
		return r;
	}
	return 0;
}
