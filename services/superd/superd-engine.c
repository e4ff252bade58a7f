/* SPDX-License-Identifier: MIT */
/* Projects: apply and reload, dependency scheduling, settling, status. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "buf.h"
#include "paths.h"
#include "strutil.h"
#include "superd-cgroup.h"
#include "superd-ports.h"
#include "superd-unit.h"

extern char **environ;

#define SAVE_DELAY_MS 20

/* ---- helpers ---- */

Unit *engine_project_unit_by_service(EngineProject *p, const char *service)
{
	for (size_t i = 0; i < p->n_units; i++)
		if (streq(p->units[i]->name, service))
			return p->units[i];
	return NULL;
}

int engine_port_lookup(const Project *cfg, const Service *s, void *userdata, uint16_t *ret)
{
	EngineProject *p = userdata;
	Unit *u = engine_project_unit_by_service(p, s->name);
	if (!u || u->port == 0)
		return -ENOENT;
	*ret = u->port;
	return 0;
}

static void on_save_timer(uv_timer_t *t)
{
	engine_state_save(t->data);
}

void engine_request_save(Engine *e)
{
	if (!e->freeing && e->save_timer && !uv_is_active((uv_handle_t *)e->save_timer))
		uv_timer_start(e->save_timer, on_save_timer, SAVE_DELAY_MS, 0);
}

/* ---- per-unit config ---- */

/* Ports every other unit of the engine holds, so two services never get the same one. */
static size_t collect_ports(Engine *e, const Unit *except, uint16_t *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < e->n_projects; i++)
		for (size_t k = 0; k < e->projects[i]->n_units; k++) {
			Unit *u = e->projects[i]->units[k];
			if (u != except && u->port && n < max)
				out[n++] = u->port;
		}
	return n;
}

int unit_assign_port(Unit *u)
{
	const Service *s = u->svc;
	if (!s || !service_has_port(s) || s->type == SERVICE_SITE) {
		u->port = 0;
		return 0;
	}
	if (s->port) {
		u->port = s->port;
		return 0;
	}
	if (u->port && unit_has_process(u))
		return 0; /* it is listening there now */
	uint16_t exclude[1024];
	size_t n = collect_ports(u->project->engine, u, exclude, ELEMENTSOF(exclude));
	uint16_t port;
	int r = port_pick(u->port, exclude, n, &port);
	if (r < 0)
		return r;
	u->port = port;
	return 0;
}

static int fingerprint(const Unit *u, char **ret)
{
	const Service *s = u->svc;
	_cleanup_buf_ Buf b = BUF_INIT(1 << 20);
	int r = buf_printf(&b, "type=%d\ncmd=%s\n", s->type, strempty(s->command));
	STRV_FOREACH (a, s->argv)
		r = r < 0 ? r : buf_printf(&b, "arg=%s\n", *a);
	const HealthCheck *h = &s->health_check;
	r = r < 0
		? r
		: buf_printf(&b,
			     "workdir=%s\nport=%u\npty=%d\nstop=%d/%llu\nrestart=%d/%u/%llu/%llu\n"
			     "health=%d/%s/%s/%s/%llu/%llu/%u/%llu/%llu/%d\npath=%s\nimage=%s\n",
			     strempty(s->workdir), (unsigned)s->port, s->pty, s->stop_signal,
			     (unsigned long long)s->stop_timeout_ms, s->restart.policy,
			     (unsigned)s->restart.max_restarts,
			     (unsigned long long)s->restart.backoff_ms,
			     (unsigned long long)s->restart.max_backoff_ms, h->type,
			     strempty(h->command), strempty(h->path), strempty(h->ready_log_line),
			     (unsigned long long)h->interval_ms, (unsigned long long)h->timeout_ms,
			     (unsigned)h->retries, (unsigned long long)h->start_period_ms,
			     (unsigned long long)h->start_timeout_ms, h->liveness,
			     strempty(s->path), strempty(s->image));
	STRV_FOREACH (v, u->env)
		r = r < 0 ? r : buf_printf(&b, "env=%s\n", *v);
	if (r < 0)
		return r;
	char *f = buf_steal(&b, NULL);
	if (!f)
		return -ENOMEM;
	*ret = f;
	return 0;
}

int unit_prepare_config(Unit *u)
{
	EngineProject *p = u->project;
	Engine *e = p->engine;
	const Service *s = u->svc;
	int r;

	if (!s)
		return -ENOENT;
	r = unit_assign_port(u);
	if (r < 0)
		return r;

	free(u->url);
	u->url = NULL;
	if (service_has_port(s))
		(void)project_service_url(p->cfg, s, e->https_port, &u->url);

	_cleanup_strv_free_ char **injected = NULL;
	char kv[512];
	if (u->port) {
		strfmt(kv, sizeof(kv), "PORT=%u", (unsigned)u->port);
		r = strv_extend(&injected, kv);
		if (r < 0)
			return r;
	}
	if (u->url) {
		strfmt(kv, sizeof(kv), "LOCALD_URL=%s", u->url);
		if (strv_extend(&injected, kv) < 0)
			return -ENOMEM;
	}
	strfmt(kv, sizeof(kv), "LOCALD_PROJECT=%s", p->name);
	if (strv_extend(&injected, kv) < 0)
		return -ENOMEM;
	strfmt(kv, sizeof(kv), "LOCALD_SERVICE=%s", u->name);
	if (strv_extend(&injected, kv) < 0)
		return -ENOMEM;

	ProjectResolver res = { .port = engine_port_lookup,
				.userdata = p,
				.https_port = e->https_port };
	_cleanup_strv_free_ char **env = NULL;
	r = project_service_env(p->cfg, s, p->environment ? p->environment : environ, injected,
				&res, &env);
	if (r < 0)
		return r;
	strv_free(u->env);
	u->env = TAKE_PTR(env);

	_cleanup_free_ char *f = NULL;
	r = fingerprint(u, &f);
	if (r < 0)
		return r;
	free(u->fingerprint);
	u->fingerprint = TAKE_PTR(f);
	return 0;
}

/* ---- scheduling ---- */

typedef enum DepVerdict {
	DEP_READY,
	DEP_WAIT,
	DEP_BLOCKED
} DepVerdict;

static DepVerdict unit_deps(Unit *u, char *why, size_t size)
{
	if (!u->svc)
		return DEP_WAIT;
	DepVerdict v = DEP_READY;
	STRV_FOREACH (d, u->svc->depends_on) {
		Unit *dep = engine_project_unit_by_service(u->project, *d);
		if (!dep) {
			strfmt(why, size, "depends on \"%s\", which does not exist", *d);
			return DEP_BLOCKED;
		}
		switch (dep->state) {
		case UNIT_RUNNING:
			break;
		case UNIT_EXITED:
			/* a one-shot job (migrations) that finished fine */
			if (!dep->has_exit || dep->exit_status_unknown ||
			    !WIFEXITED(dep->exit_status) || WEXITSTATUS(dep->exit_status) != 0)
				goto blocked;
			break;
		case UNIT_FAILED:
		case UNIT_BLOCKED:
blocked:
			strfmt(why, size, "dependency \"%s\" %s%s%s", *d,
			       unit_state_to_string(dep->state), dep->reason ? ": " : "",
			       strempty(dep->reason));
			return DEP_BLOCKED;
		case UNIT_STOPPED:
			if (!dep->wanted) {
				strfmt(why, size, "dependency \"%s\" is stopped", *d);
				return DEP_BLOCKED;
			}
			_fallthrough_;
		default:
			if (v == DEP_READY)
				strfmt(why, size, "waiting for \"%s\" (%s)", *d,
				       unit_state_to_string(dep->state));
			v = DEP_WAIT;
		}
	}
	return v;
}

/* Does an unwanted dependent of u still have a process? Then u must wait to stop. */
static bool unit_has_stopping_dependents(Unit *u)
{
	EngineProject *p = u->project;
	for (size_t i = 0; i < p->n_units; i++) {
		Unit *v = p->units[i];
		if (v == u || v->wanted || !v->svc || !unit_has_process(v))
			continue;
		if (strv_contains(v->svc->depends_on, u->name))
			return true;
	}
	return false;
}

static void settle_check(EngineProject *p);

static void schedule_pass(EngineProject *p)
{
	char why[1024];
	for (size_t i = 0; i < p->n_units; i++) {
		Unit *u = p->units[i];
		if (u->wanted) {
			if (u->state != UNIT_STOPPED && u->state != UNIT_WAITING &&
			    u->state != UNIT_BLOCKED)
				continue;
			why[0] = 0;
			switch (unit_deps(u, why, sizeof(why))) {
			case DEP_READY:
				unit_start(u);
				break;
			case DEP_WAIT:
				unit_set_state(u, UNIT_WAITING, "%s", why);
				break;
			case DEP_BLOCKED:
				unit_set_state(u, UNIT_BLOCKED, "%s", why);
				break;
			}
		} else {
			switch (u->state) {
			case UNIT_WAITING:
			case UNIT_BLOCKED:
			case UNIT_BACKOFF:
				unit_stop(u, STOP_REQUESTED);
				break;
			case UNIT_STARTING:
			case UNIT_RUNNING:
			case UNIT_UNHEALTHY:
			case UNIT_BUILDING:
				if (!unit_has_stopping_dependents(u))
					unit_stop(u, STOP_REQUESTED);
				break;
			default:
				break;
			}
		}
	}
}

void engine_project_schedule(EngineProject *p)
{
	/* State changes inside a pass schedule again: run passes until nothing moves, one
	 * at a time (never nested). */
	if (p->scheduling) {
		p->reschedule = true;
		return;
	}
	p->scheduling = true;
	do {
		p->reschedule = false;
		schedule_pass(p);
	} while (p->reschedule);
	p->scheduling = false;

	/* Removed units that have stopped go away now. */
	for (size_t i = 0; i < p->n_units;) {
		Unit *u = p->units[i];
		if (u->removed && !unit_has_process(u) && u->state != UNIT_STOPPING) {
			unit_free(u);
			memmove(&p->units[i], &p->units[i + 1],
				sizeof(Unit *) * (p->n_units - i - 1));
			p->n_units--;
			engine_request_save(p->engine);
		} else
			i++;
	}
	settle_check(p);
}

/* ---- settling ---- */

static bool project_settled(EngineProject *p, bool for_stop)
{
	for (size_t i = 0; i < p->n_units; i++) {
		Unit *u = p->units[i];
		if (for_stop) {
			if (unit_has_process(u) || u->state == UNIT_STOPPING)
				return false;
			continue;
		}
		if (!u->wanted)
			continue;
		if (u->state != UNIT_RUNNING && u->state != UNIT_EXITED &&
		    u->state != UNIT_FAILED && u->state != UNIT_BLOCKED)
			return false;
	}
	return true;
}

static void settle_check(EngineProject *p)
{
	for (size_t i = 0; i < p->n_waiters;) {
		SettledWaiter w = p->waiters[i];
		if (!project_settled(p, w.for_stop)) {
			i++;
			continue;
		}
		memmove(&p->waiters[i], &p->waiters[i + 1],
			sizeof(SettledWaiter) * (p->n_waiters - i - 1));
		p->n_waiters--;
		w.func(p, true, w.userdata);
	}
}

int engine_project_when_settled(EngineProject *p, bool for_stop, EngineSettledFunc func,
				void *userdata)
{
	if (project_settled(p, for_stop)) {
		func(p, true, userdata);
		return 0;
	}
	SettledWaiter *w = realloc(p->waiters, sizeof(*w) * (p->n_waiters + 1));
	if (!w)
		return -ENOMEM;
	p->waiters = w;
	p->waiters[p->n_waiters++] = (SettledWaiter){ func, userdata, for_stop };
	return 0;
}

static void project_cancel_waiters(EngineProject *p)
{
	while (p->n_waiters > 0) {
		SettledWaiter w = p->waiters[--p->n_waiters];
		w.func(p, false, w.userdata);
	}
}

/* ---- projects ---- */

static EngineProject *project_new(Engine *e, const char *name)
{
	EngineProject *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->engine = e;
	p->name = strdup(name);
	if (!p->name) {
		free(p);
		return NULL;
	}
	return p;
}

static void engine_project_free(EngineProject *p)
{
	if (!p)
		return;
	project_cancel_waiters(p);
	for (size_t i = 0; i < p->n_units; i++)
		unit_free(p->units[i]);
	free(p->units);
	free(p->waiters);
	project_free(p->cfg);
	strv_free(p->environment);
	free(p->name);
	free(p->path);
	free(p);
}

EngineProject *engine_find_project(Engine *e, const char *name)
{
	for (size_t i = 0; i < e->n_projects; i++)
		if (streq(e->projects[i]->name, name))
			return e->projects[i];
	return NULL;
}

size_t engine_n_projects(Engine *e)
{
	return e->n_projects;
}

EngineProject *engine_project_at(Engine *e, size_t i)
{
	return i < e->n_projects ? e->projects[i] : NULL;
}

static int engine_add_project(Engine *e, EngineProject *p)
{
	EngineProject **l = realloc(e->projects, sizeof(*l) * (e->n_projects + 1));
	if (!l)
		return -ENOMEM;
	e->projects = l;
	e->projects[e->n_projects++] = p;
	return 0;
}

static int project_add_unit(EngineProject *p, Unit *u)
{
	Unit **l = realloc(p->units, sizeof(*l) * (p->n_units + 1));
	if (!l)
		return -ENOMEM;
	p->units = l;
	p->units[p->n_units++] = u;
	return 0;
}

/* The services `only` names, plus everything they depend on. */
static int wanted_closure(const Project *cfg, char *const *only, bool **ret)
{
	_cleanup_free_ bool *want = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(bool));
	if (!want)
		return -ENOMEM;
	if (!only) {
		for (size_t i = 0; i < cfg->n_services; i++)
			want[i] = true;
		*ret = TAKE_PTR(want);
		return 0;
	}
	STRV_FOREACH (o, only) {
		const Service *s = project_find_service(cfg, *o);
		if (!s)
			return -ENOENT;
		want[s - cfg->services] = true;
	}
	/* depends_on closure; n passes suffice for n services */
	for (size_t pass = 0; pass < cfg->n_services; pass++) {
		bool changed = false;
		for (size_t i = 0; i < cfg->n_services; i++) {
			if (!want[i])
				continue;
			STRV_FOREACH (d, cfg->services[i].depends_on) {
				const Service *ds = project_find_service(cfg, *d);
				if (ds && !want[ds - cfg->services]) {
					want[ds - cfg->services] = true;
					changed = true;
				}
			}
		}
		if (!changed)
			break;
	}
	*ret = TAKE_PTR(want);
	return 0;
}

static bool proxy_settings_changed(const Project *old_cfg, Unit *u)
{
	const Service *a = old_cfg ? project_find_service(old_cfg, u->name) : NULL;
	const Service *b = u->svc;
	if (!a || !b)
		return false;
	return !streq_ptr(a->host, b->host) || a->autostart != b->autostart ||
	       a->idle_stop_ms != b->idle_stop_ms || !streq_ptr(a->path, b->path);
}

int engine_apply(Engine *e, const char *path, char *const *environment, char *const *only,
		 DiagList *diags, EngineProject **ret)
{
	return engine_apply_full(e, path, environment, only, diags, true, ret);
}

int engine_apply_full(Engine *e, const char *path, char *const *environment, char *const *only,
		      DiagList *diags, bool schedule, EngineProject **ret)
{
	_cleanup_(project_freep) Project *cfg = NULL;
	int r = project_load(path, &cfg, diags);
	if (r < 0)
		return r;
	if (streq(cfg->name, "system")) {
		/* Reserved for superd's own daemons (superd-system.c). */
		_cleanup_free_ char *sys = strdupf("%s/system/locald.toml", e->runtime_dir);
		if (!sys)
			return -ENOMEM;
		if (!streq(cfg->config_path, sys)) {
			diag_add(diags, DIAG_ERROR, cfg->config_path, cfg->name_pos.line,
				 cfg->name_pos.col, "choose another [project] name",
				 "project name \"system\" is reserved for locald's own daemons");
			return -EINVAL;
		}
	}

	_cleanup_free_ bool *want = NULL;
	r = wanted_closure(cfg, only, &want);
	if (r < 0)
		return r;

	EngineProject *p = engine_find_project(e, cfg->name);
	bool fresh = !p;
	if (fresh) {
		p = project_new(e, cfg->name);
		if (!p)
			return -ENOMEM;
		r = engine_add_project(e, p);
		if (r < 0) {
			engine_project_free(p);
			return r;
		}
	}

	char *new_path = strdup(path);
	char **new_env = environment ? strv_copy(environment) : NULL;
	if (!new_path || (environment && !new_env)) {
		free(new_path);
		strv_free(new_env);
		return -ENOMEM;
	}
	free(p->path);
	p->path = new_path;
	if (environment || fresh) {
		strv_free(p->environment);
		p->environment = new_env;
	} else
		strv_free(new_env);

	Project *old_cfg = p->cfg;
	p->cfg = TAKE_PTR(cfg);

	/* Match units to the new services; mark the rest removed. */
	for (size_t i = 0; i < p->n_units; i++) {
		Unit *u = p->units[i];
		u->svc = project_find_service(p->cfg, u->name);
		if (!u->svc) {
			u->removed = true;
			u->wanted = false;
		}
	}
	for (size_t i = 0; i < p->cfg->n_services; i++) {
		const Service *s = &p->cfg->services[i];
		Unit *u = engine_project_unit_by_service(p, s->name);
		if (!u) {
			u = unit_new(p, s->name);
			if (!u || project_add_unit(p, u) < 0) {
				unit_free(u);
				r = -ENOMEM;
				goto restore;
			}
		}
		u->svc = s;
		u->removed = false;
	}

	/* Ports first (interpolation reads them), then env and fingerprints. */
	for (size_t i = 0; i < p->n_units; i++)
		if (p->units[i]->svc && unit_assign_port(p->units[i]) < 0)
			unit_note(p->units[i], "no free port found");
	for (size_t i = 0; i < p->n_units; i++) {
		Unit *u = p->units[i];
		if (!u->svc)
			continue;
		_cleanup_free_ char *before = u->fingerprint ? strdup(u->fingerprint) : NULL;
		r = unit_prepare_config(u);
		if (r < 0)
			unit_note(u, "cannot compute its environment: %s", strerror(-r));
		/* A partial apply leaves the services it does not name as they are. */
		bool named = want[u->svc - p->cfg->services];
		bool want_it = only ? named || u->wanted : true;
		if (want_it && (!u->wanted || u->state == UNIT_FAILED || u->state == UNIT_BLOCKED ||
				u->state == UNIT_EXITED)) {
			u->restarts = u->restarts_in_row = 0;
			u->wanted = true;
			if (u->state == UNIT_FAILED || u->state == UNIT_BLOCKED ||
			    u->state == UNIT_EXITED)
				unit_set_state(u, UNIT_WAITING, "start requested");
		}
		u->wanted = want_it;
		/* Changed config of a running service: restart just that one. */
		if (unit_has_process(u) && before && u->fingerprint &&
		    !streq(before, u->fingerprint)) {
			unit_note(u, "configuration changed: restarting");
			unit_stop(u, STOP_REQUESTED);
		} else if (proxy_settings_changed(old_cfg, u)) {
			/* What only the proxy reads (host, autostart, idle_stop, a site's path)
			 * needs no restart, but its subscribers must hear of it. */
			if (e->cb.state_changed)
				e->cb.state_changed(e->cb.userdata, u, u->state,
						    "configuration changed");
		}
	}
	project_free(old_cfg);
	engine_request_save(e);
	if (schedule)
		engine_project_schedule(p);
	if (ret)
		*ret = p;
	return 0;

restore:
	/* keep running what runs; the new config is dropped */
	project_free(p->cfg);
	p->cfg = old_cfg;
	for (size_t i = 0; i < p->n_units; i++)
		p->units[i]->svc =
		    old_cfg ? project_find_service(old_cfg, p->units[i]->name) : NULL;
	return r;
}

Unit *engine_project_find_unit(EngineProject *p, const char *name)
{
	return engine_project_unit_by_service(p, name);
}

size_t engine_project_n_units(EngineProject *p)
{
	return p->n_units;
}

Unit *engine_project_unit_at(EngineProject *p, size_t i)
{
	return i < p->n_units ? p->units[i] : NULL;
}

const char *engine_project_name(EngineProject *p)
{
	return p->name;
}

const char *engine_project_path(EngineProject *p)
{
	return p->cfg ? p->cfg->dir : p->path;
}

const char *engine_project_domain(EngineProject *p)
{
	return p->cfg ? p->cfg->domain : NULL;
}

const Project *engine_project_config(EngineProject *p)
{
	return p->cfg;
}

int engine_project_stop(EngineProject *p)
{
	for (size_t i = 0; i < p->n_units; i++)
		p->units[i]->wanted = false;
	engine_request_save(p->engine);
	engine_project_schedule(p);
	return 0;
}

static void on_free_project(uv_timer_t *t)
{
	engine_project_free(t->data);
	uv_handle_close_free((uv_handle_t *)t);
}

static void forget_when_stopped(EngineProject *p, bool settled, void *userdata)
{
	Engine *e = p->engine;
	if (!settled || e->freeing)
		return;
	for (size_t i = 0; i < e->n_projects; i++)
		if (e->projects[i] == p) {
			memmove(&e->projects[i], &e->projects[i + 1],
				sizeof(EngineProject *) * (e->n_projects - i - 1));
			e->n_projects--;
			break;
		}
	p->forgotten = true;
	engine_request_save(e);
	/* We are inside p's own settle_check: free it from the loop, not from here. */
	uv_timer_t *t = uv_timer_new(e->loop, p);
	if (!t)
		return; /* a small leak beats a use-after-free */
	uv_timer_start(t, on_free_project, 0, 0);
}

int engine_project_forget(EngineProject *p)
{
	engine_project_stop(p);
	return engine_project_when_settled(p, true, forget_when_stopped, NULL);
}

int engine_stop_all(Engine *e)
{
	for (size_t i = 0; i < e->n_projects; i++)
		engine_project_stop(e->projects[i]);
	return 0;
}

bool engine_all_stopped(Engine *e)
{
	for (size_t i = 0; i < e->n_projects; i++)
		if (!project_settled(e->projects[i], true))
			return false;
	return true;
}

/* ---- engine ---- */

static void on_drain_async(uv_async_t *a)
{
	Engine *e = a->data;
	for (size_t i = 0; i < e->n_projects; i++)
		for (size_t k = 0; k < e->projects[i]->n_units; k++)
			unit_resume_output(e->projects[i]->units[k]);
}

static void on_log_drain(void *userdata, LogService *svc)
{
	Engine *e = userdata;
	uv_async_send(e->drain_async); /* thread-safe; the loop resumes the readers */
}

int engine_new(const EngineOptions *o, Engine **ret)
{
	_cleanup_(engine_freep) Engine *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->loop = o->loop;
	e->cb = o->callbacks;
	e->https_port = o->https_port ? o->https_port : 443;
	e->runtime_dir = strdup(o->runtime_dir);
	e->state_dir = strdup(o->state_dir);
	if (!e->runtime_dir || !e->state_dir)
		return -ENOMEM;

	int r;
	if (o->no_cgroups)
		e->cgroup_reason = strdup("disabled");
	else if (o->cgroup_base)
		e->cgroup_base = strdup(o->cgroup_base);
	else {
		r = cgroup_find_base(&e->cgroup_base, &e->cgroup_reason);
		if (r < 0 && !e->cgroup_reason)
			e->cgroup_reason = strdup(strerror(-r));
	}

	r = child_reaper_new(e->loop, &e->reaper);
	if (r < 0)
		return r;

	e->drain_async = calloc(1, sizeof(*e->drain_async));
	if (!e->drain_async)
		return -ENOMEM;
	r = uv_async_init(e->loop, e->drain_async, on_drain_async);
	if (r < 0) {
		free(TAKE_PTR(e->drain_async));
		return r;
	}
	e->drain_async->data = e;
	e->save_timer = uv_timer_new(e->loop, e);
	if (!e->save_timer)
		return -ENOMEM;

	LogStoreOptions lo = o->log_options ? *o->log_options : (LogStoreOptions){ 0 };
	lo.on_drain = on_log_drain;
	lo.userdata = e;
	_cleanup_free_ char *logdir = path_join(e->state_dir, "logs");
	if (!logdir)
		return -ENOMEM;
	r = logstore_new(logdir, &lo, &e->logs);
	if (r < 0)
		return r;

	*ret = TAKE_PTR(e);
	return 0;
}

Engine *engine_free(Engine *e)
{
	if (!e)
		return NULL;
	e->freeing = true;
	for (size_t i = 0; i < e->n_projects; i++)
		engine_project_free(e->projects[i]);
	free(e->projects);
	logstore_free(e->logs);
	child_reaper_free(e->reaper);
	uv_handle_close_free((uv_handle_t *)e->drain_async);
	uv_handle_close_free((uv_handle_t *)e->save_timer);
	free(e->runtime_dir);
	free(e->state_dir);
	free(e->cgroup_base);
	free(e->cgroup_reason);
	free(e);
	return NULL;
}

const char *engine_cgroup_reason(Engine *e)
{
	return e->cgroup_base ? NULL : e->cgroup_reason;
}

const char *engine_cgroup_base(Engine *e)
{
	return e->cgroup_base;
}

/* ---- unit queries ---- */

void unit_get_info(Unit *u, UnitInfo *ret)
{
	*ret = (UnitInfo){
		.project = u->project->name,
		.service = u->name,
		.type = u->svc ? u->svc->type : SERVICE_EXEC,
		.state = u->state,
		.pid = u->pid,
		.port = u->port,
		.url = u->url,
		.health = u->health,
		.health_known = u->health_known,
		.health_source = u->health_source,
		.health_detail = u->status_text ? u->status_text : u->health_detail,
		.restarts = u->restarts,
		.start_time = u->start_time,
		.uptime = u->pid > 0 && u->start_mono ? now_monotonic() - u->start_mono : 0,
		.has_exit = u->has_exit,
		.exit_status = u->exit_status,
		.exit_time = u->exit_time,
		.exit_status_unknown = u->exit_status_unknown,
		.reason = u->reason,
		.warnings = u->warnings,
		.depends_on = u->svc ? u->svc->depends_on : NULL,
		.cgroup = u->cgroup,
	};
}

UnitState unit_get_state(Unit *u)
{
	return u->state;
}

const char *unit_name(Unit *u)
{
	return u->name;
}

EngineProject *unit_project(Unit *u)
{
	return u->project;
}

LogService *unit_log(Unit *u)
{
	return u->log;
}

int unit_get_env(Unit *u, char ***ret)
{
	int r;
	if (!u->env) {
		r = unit_prepare_config(u);
		if (r < 0)
			return r;
	}
	/* spawn replaces $NOTIFY_SOCKET with the service's socket (u->env does not have
	 * it): show the environment as the service sees it. */
	_cleanup_free_ char *addr = NULL;
	if (u->notify)
		addr = strdup(notify_socket_address(u->notify));
	else
		(void)notify_socket_address_for(u->project->engine->runtime_dir, u->project->name,
						u->name, &addr);
	_cleanup_strv_free_ char **c = NULL;
	STRV_FOREACH (e, u->env) {
		if (addr && startswith(*e, "NOTIFY_SOCKET="))
			continue;
		r = strv_extend(&c, *e);
		if (r < 0)
			return r;
	}
	if (addr) {
		_cleanup_free_ char *kv = strdupf("NOTIFY_SOCKET=%s", addr);
		if (!kv)
			return -ENOMEM;
		r = strv_extend(&c, kv);
		if (r < 0)
			return r;
	}
	if (!c) {
		c = strv_copy(NULL);
		if (!c)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(c);
	return 0;
}
