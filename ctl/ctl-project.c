/* SPDX-License-Identifier: MIT */
/* Project discovery: walk up to a locald.toml or Procfile; `project:service` names. */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "paths.h"
#include "project.h"
#include "strutil.h"

static bool has_config(const char *dir)
{
	static const char *const names[] = { "locald.toml", "Procfile" };
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		_cleanup_free_ char *p = path_join(dir, names[i]);
		struct stat st;
		if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode))
			return true;
	}
	return false;
}

int ctl_find_project_dir(const char *path, char **ret_dir)
{
	if (path) {
		_cleanup_free_ char *abs = realpath(path, NULL);
		if (!abs)
			return -errno;
		struct stat st;
		if (stat(abs, &st) < 0)
			return -errno;
		if (S_ISREG(st.st_mode)) {
			char *slash = strrchr(abs, '/');
			if (slash == abs)
				slash[1] = 0;
			else
				*slash = 0;
		} else if (!has_config(abs))
			return -ENOENT;
		*ret_dir = TAKE_PTR(abs);
		return 0;
	}
	_cleanup_free_ char *dir = getcwd(NULL, 0);
	if (!dir)
		return -errno;
	for (;;) {
		if (has_config(dir)) {
			*ret_dir = TAKE_PTR(dir);
			return 0;
		}
		char *slash = strrchr(dir, '/');
		if (!slash || streq(dir, "/"))
			return -ENOENT;
		if (slash == dir)
			slash[1] = 0;
		else
			*slash = 0;
	}
}

/* A project superd knows under this directory. */
static int name_from_registry(Ctl *ctl, const char *dir, char **ret)
{
	if (!ctl_superd_alive(ctl, 1000))
		return -ENOENT;
	BusReply *reply = NULL;
	if (ctl_status(ctl, NULL, &reply) != 0)
		return -ENOENT;
	int r = -ENOENT;
	const Locald__V1__StatusResult *s = reply->status;
	for (size_t i = 0; s && i < s->n_projects; i++)
		if (streq_ptr(s->projects[i]->path, dir)) {
			*ret = strdup(s->projects[i]->name);
			r = *ret ? 0 : -ENOMEM;
			break;
		}
	bus_reply_free(reply);
	return r;
}

int ctl_project_name(Ctl *ctl, const char *dir, char **ret_name)
{
	_cleanup_diag_list_ DiagList diags = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	if (project_load(dir, &p, &diags) >= 0) {
		*ret_name = strdup(p->name);
		return *ret_name ? 0 : -ENOMEM;
	}
	/* A broken config still names a running project: ask superd which one lives here. */
	return name_from_registry(ctl, dir, ret_name);
}

int ctl_current_project(Ctl *ctl, const char *path, char **ret_name, char **ret_dir)
{
	_cleanup_free_ char *dir = NULL, *name = NULL;
	int r = ctl_find_project_dir(path, &dir);
	if (r < 0) {
		_cleanup_free_ char *cwd = getcwd(NULL, 0);
		if (path)
			return ctl_fail(ctl, EXIT_NOT_FOUND,
					"give a project directory, its locald.toml or its Procfile",
					"%s: no locald.toml or Procfile (%s)", path, strerror(-r));
		return ctl_fail(
		    ctl, EXIT_NOT_FOUND,
		    "`localctl init` writes one; or name the service as project:service",
		    "no locald.toml or Procfile in %s or its parents", strempty(cwd));
	}
	r = ctl_project_name(ctl, dir, &name);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, "`localctl up` shows what is wrong with it",
				"%s: cannot read the project's name from its config", dir);
	if (ret_name)
		*ret_name = TAKE_PTR(name);
	if (ret_dir)
		*ret_dir = TAKE_PTR(dir);
	return 0;
}

int ctl_resolve_service(Ctl *ctl, const char *arg, char **ret_project, char **ret_service)
{
	const char *colon = strchr(arg, ':');
	if (colon) {
		if (colon == arg || !colon[1])
			return ctl_fail(ctl, EXIT_USAGE, "write project:service, e.g. shop:web",
					"\"%s\" is not a service name", arg);
		char *p = strndup_safe(arg, (size_t)(colon - arg));
		char *s = strdup(colon + 1);
		if (!p || !s) {
			free(p);
			free(s);
			return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
		}
		*ret_project = p;
		*ret_service = s;
		return 0;
	}
	_cleanup_free_ char *name = NULL;
	int r = ctl_current_project(ctl, NULL, &name, NULL);
	if (r > 0)
		return r;
	char *s = strdup(arg);
	if (!s)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	*ret_project = TAKE_PTR(name);
	*ret_service = s;
	return 0;
}
