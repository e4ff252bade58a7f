/* SPDX-License-Identifier: MIT */
/*
 * What superd must remember across its own death: which projects it runs, from where,
 * with which environment, and for each service whether it is wanted, its (sticky) port,
 * and the process it started (pid + start time in ticks since boot, which tells our
 * process from a recycled pid) and its cgroup.
 *
 * <state>/superd/state.json, replaced atomically (write a temp file, rename) shortly after
 * every change. On start, restore() loads each project again, re-adopts the processes
 * that are still ours, kills the leftovers of those that are not (never orphans, never
 * two copies), and lets scheduling start the rest.
 */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"
#include "strutil.h"
#include "superd-cgroup.h"
#include "superd-unit.h"

#define STATE_VERSION 1
#define STATE_MAX_BYTES (16u << 20)

static char *state_path(Engine *e)
{
	return strdupf("%s/superd/state.json", e->state_dir);
}

static json_t *strv_to_json(char *const *l)
{
	json_t *a = json_array();
	STRV_FOREACH(s, l)
	json_array_append_new(a, json_string(*s));
	return a;
}

static json_t *unit_to_json(Unit *u)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(u->name));
	json_object_set_new(o, "wanted", json_boolean(u->wanted));
	json_object_set_new(o, "port", json_integer(u->port));
	json_object_set_new(o, "restarts", json_integer(u->restarts));
	if (u->pid > 0) {
		/* Whether it had passed its health check: a re-adopted service that had not
		 * must still do so before its dependents start. */
		json_object_set_new(o, "ready", json_boolean(u->state == UNIT_RUNNING ||
							     u->state == UNIT_UNHEALTHY));
		json_object_set_new(o, "pid", json_integer(u->pid));
		json_object_set_new(o, "start_ticks", json_integer((json_int_t)u->start_ticks));
		json_object_set_new(o, "start_time", json_integer((json_int_t)u->start_time));
	}
	if (u->cgroup)
		json_object_set_new(o, "cgroup", json_string(u->cgroup));
	return o;
}

int engine_state_save(Engine *e)
{
	json_t *root = json_object();
	json_t *projects = json_array();
	json_object_set_new(root, "version", json_integer(STATE_VERSION));
	for (size_t i = 0; i < e->n_projects; i++) {
		EngineProject *p = e->projects[i];
		json_t *po = json_object();
		json_object_set_new(po, "name", json_string(p->name));
		json_object_set_new(po, "path", json_string(p->path));
		if (p->environment)
			json_object_set_new(po, "environment", strv_to_json(p->environment));
		json_t *units = json_array();
		for (size_t k = 0; k < p->n_units; k++)
			json_array_append_new(units, unit_to_json(p->units[k]));
		json_object_set_new(po, "units", units);
		json_array_append_new(projects, po);
	}
	json_object_set_new(root, "projects", projects);

	_cleanup_free_ char *path = state_path(e);
	_cleanup_free_ char *dir = strdupf("%s/superd", e->state_dir);
	_cleanup_free_ char *tmp = strdupf("%s/superd/.state.json.%d", e->state_dir, (int)getpid());
	int r = 0;
	if (!path || !dir || !tmp) {
		r = -ENOMEM;
		goto out;
	}
	r = mkdir_p(dir, 0700);
	if (r < 0)
		goto out;
	if (json_dump_file(root, tmp, JSON_COMPACT) < 0) {
		r = -EIO;
		goto out;
	}
	/* rename() is atomic: a reader (or the next superd) sees the old or the new file. */
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
	}
out:
	json_decref(root);
	return r;
}

/* A process from the saved state that is not ours any more (config gone, or broken):
 * end it, and whatever it left in its cgroup. */
static void kill_saved_process(json_t *uo)
{
	json_int_t pid = json_integer_value(json_object_get(uo, "pid"));
	json_int_t ticks = json_integer_value(json_object_get(uo, "start_ticks"));
	const char *cg = json_string_value(json_object_get(uo, "cgroup"));
	if (pid > 0 && process_exists_with_start_time((pid_t)pid, (uint64_t)ticks) == 1)
		spawn_kill_group((pid_t)pid, SIGKILL);
	if (cg)
		(void)cgroup_kill(cg);
}

/* What the unit keeps across a superd restart: wanted, counters, its sticky port, its cgroup. */
static void restore_unit_config(Unit *u, json_t *uo)
{
	json_int_t port = json_integer_value(json_object_get(uo, "port"));
	const char *cg = json_string_value(json_object_get(uo, "cgroup"));

	u->wanted = json_is_true(json_object_get(uo, "wanted")) && u->svc;
	u->restarts = (uint32_t)json_integer_value(json_object_get(uo, "restarts"));
	if (port > 0 && port < 65536 && u->svc && !u->svc->port)
		u->port = (uint16_t)port;
	if (cg && !u->cgroup)
		u->cgroup = strdup(cg);
}

/* Its process: re-adopt it, or make sure nothing of it survives. */
static void restore_unit_process(Unit *u, json_t *uo)
{
	json_int_t pid = json_integer_value(json_object_get(uo, "pid"));
	json_int_t ticks = json_integer_value(json_object_get(uo, "start_ticks"));
	json_int_t started = json_integer_value(json_object_get(uo, "start_time"));

	bool alive = pid > 0 && process_exists_with_start_time((pid_t)pid, (uint64_t)ticks) == 1;
	if (alive && u->svc) {
		/* unit_adopt() resumes the health check from the state it is given here (a
		 * state file without "ready" comes from a superd that only saved ready ones). */
		u->state = json_is_false(json_object_get(uo, "ready")) ? UNIT_STARTING
									: UNIT_RUNNING;
		if (unit_adopt(u, (pid_t)pid, (uint64_t)ticks, (usec_t)started) == 0) {
			free(u->reason);
			u->reason = strdup(u->state == UNIT_STARTING
						   ? "re-adopted after a superd restart, not ready yet"
						   : "re-adopted after a superd restart");
			return;
		}
		u->state = UNIT_STOPPED;
	}
	/* Not adoptable: make sure nothing of it survives, then scheduling starts it fresh. */
	kill_saved_process(uo);
	if (pid > 0)
		unit_note(u, "pid %d from before the superd restart is gone", (int)pid);
}

int engine_state_restore(Engine *e)
{
	_cleanup_free_ char *path = state_path(e);
	if (!path)
		return -ENOMEM;
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return access(path, F_OK) < 0 ? 0 : -EBADMSG;

	int restored = 0;
	json_t *projects = json_object_get(root, "projects");
	size_t i;
	json_t *po;
	json_array_foreach(projects, i, po)
	{
		const char *ppath = json_string_value(json_object_get(po, "path"));
		json_t *units = json_object_get(po, "units");
		if (!ppath)
			continue;
		_cleanup_strv_free_ char **env = NULL;
		json_t *ea = json_object_get(po, "environment");
		size_t k;
		json_t *ev;
		json_array_foreach(ea, k, ev)
		{
			const char *s = json_string_value(ev);
			if (s && strv_extend(&env, s) < 0)
				break;
		}

		_cleanup_diag_list_ DiagList diags = DIAG_LIST_INIT;
		EngineProject *p = NULL;
		int r = engine_apply_full(e, ppath, env, NULL, &diags, false, &p);
		if (r < 0) {
			/* the config is gone or broken now: its processes must not linger */
			json_t *uo;
			json_array_foreach(units, k, uo) kill_saved_process(uo);
			continue;
		}
		/* Every port first: an adopted service's env (${services.x.port}) reads them. */
		json_t *uo;
		json_array_foreach(units, k, uo)
		{
			const char *name = json_string_value(json_object_get(uo, "name"));
			Unit *u = name ? engine_project_unit_by_service(p, name) : NULL;
			if (u)
				restore_unit_config(u, uo);
		}
		json_array_foreach(units, k, uo)
		{
			const char *name = json_string_value(json_object_get(uo, "name"));
			Unit *u = name ? engine_project_unit_by_service(p, name) : NULL;
			if (u)
				restore_unit_process(u, uo);
			else
				kill_saved_process(uo);
		}
		/* ports were restored: recompute the environments (adopted units keep theirs) */
		for (size_t n = 0; n < p->n_units; n++)
			if (p->units[n]->svc)
				(void)unit_prepare_config(p->units[n]);
		engine_project_schedule(p);
		restored++;
	}
	json_decref(root);
	return restored;
}
