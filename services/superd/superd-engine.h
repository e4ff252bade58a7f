/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The supervision engine of locald-superd: projects and their services ("units"), each a
 * small state machine driven by loop events (child exits, health results, timers, output).
 *
 *   STOPPED ─want─▶ WAITING ─deps healthy─▶ STARTING ─health passes─▶ RUNNING
 *      ▲               │ a dep failed           │ exit                 │ liveness fails
 *      │               ▼                        ▼                      ▼
 *      │            BLOCKED                  BACKOFF ─timer─▶ …     UNHEALTHY
 *      └──exit── STOPPING ◀──unwant / restart──(any with a process)
 *   FAILED: gave up (crash loop, never healthy, could not spawn). EXITED: ended with 0
 *   and the policy does not restart it; counts as "done" for its dependents.
 *
 * Scheduling is one idempotent pass over a project (engine_project_schedule()) run after
 * every change: a wanted unit starts when all its dependencies are RUNNING (or EXITED
 * successfully), becomes BLOCKED when one of them failed; an unwanted unit stops once no
 * unwanted dependent of it still has a process (reverse dependency order).
 *
 * Single-threaded: everything runs on the loop thread. The engine does not know the bus;
 * superd-bus.c translates, and EngineCallbacks tell it about changes.
 */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include <uv.h>

#include "project.h"
#include "superd-health.h"
#include "superd-logstore.h"
#include "superd-spawn.h"
#include "time-util.h"

typedef enum UnitState {
	UNIT_STOPPED,
	UNIT_WAITING,
	UNIT_BUILDING,
	UNIT_STARTING,
	UNIT_RUNNING,
	UNIT_UNHEALTHY,
	UNIT_STOPPING,
	UNIT_BACKOFF,
	UNIT_FAILED,
	UNIT_EXITED,
	UNIT_BLOCKED,
	_UNIT_STATE_MAX,
	_UNIT_STATE_INVALID = -EINVAL,
} UnitState;

const char *unit_state_to_string(UnitState s);

typedef struct Engine Engine;
typedef struct EngineProject EngineProject;
typedef struct Unit Unit;

typedef struct EngineCallbacks {
	/* A unit changed state; reason is for humans ("exited with status 1"). */
	void (*state_changed)(void *userdata, Unit *u, UnitState previous, const char *reason);
	/* A log line was stored for a unit (stdout, stderr, or superd's own notes). */
	void (*log_line)(void *userdata, Unit *u, const LogRecord *rec);
	void *userdata;
} EngineCallbacks;

typedef struct EngineOptions {
	uv_loop_t *loop;
	const char *runtime_dir; /* sockets: <runtime>/notify/… */
	const char *state_dir;   /* logs and the persisted state */
	uint16_t https_port;     /* the proxy's, for URLs; 0 = 443 */
	/* cgroup v2 base to create service cgroups under; NULL: find one (or none). */
	const char *cgroup_base;
	bool no_cgroups; /* process groups only */
	EngineCallbacks callbacks;
	const LogStoreOptions *log_options; /* NULL: defaults */
} EngineOptions;

int engine_new(const EngineOptions *o, Engine **ret);
/* Stops nothing: services keep running (the next superd re-adopts them). */
Engine *engine_free(Engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Engine *, engine_free)

/* Why service cgroups are not used, or NULL if they are. */
const char *engine_cgroup_reason(Engine *e);
const char *engine_cgroup_base(Engine *e);

/*
 * Load (or reload) the project at `path` and make its services run: new services start,
 * services whose effective config changed restart, removed ones stop. `environment` is the
 * caller's environment ("K=V" strv; NULL = superd's own), below the project's .env.
 * `only` limits which services are wanted (NULL = all; their dependencies come along).
 * A config with errors changes nothing: -EINVAL, the diagnostics say why.
 */
int engine_apply(Engine *e, const char *path, char *const *environment, char *const *only,
		 DiagList *diags, EngineProject **ret);

EngineProject *engine_find_project(Engine *e, const char *name);
size_t engine_n_projects(Engine *e);
EngineProject *engine_project_at(Engine *e, size_t i);

/* Stop every service (reverse dependency order); the project stays known. */
int engine_project_stop(EngineProject *p);
/* Stop and forget once stopped. Pointers to it stay valid until the loop runs again. */
int engine_project_forget(EngineProject *p);
/* Stop everything, for superd's exit. */
int engine_stop_all(Engine *e);
/* True when no unit of any project has a process. */
bool engine_all_stopped(Engine *e);

Unit *engine_project_find_unit(EngineProject *p, const char *name);
size_t engine_project_n_units(EngineProject *p);
Unit *engine_project_unit_at(EngineProject *p, size_t i);
const char *engine_project_name(EngineProject *p);
const char *engine_project_path(EngineProject *p);
const char *engine_project_domain(EngineProject *p);
const Project *engine_project_config(EngineProject *p);

/* Start (also a FAILED/BLOCKED one: counters reset), stop, restart one service. */
int unit_start_request(Unit *u);
int unit_stop_request(Unit *u);
int unit_restart_request(Unit *u);

/*
 * Waiting for a project to settle: func runs once every wanted unit of p is RUNNING,
 * EXITED, FAILED or BLOCKED (for_stop = false) — or once no unit has a process
 * (for_stop = true) — or when p is forgotten/the engine freed (then settled = false).
 */
typedef void (*EngineSettledFunc)(EngineProject *p, bool settled, void *userdata);
int engine_project_when_settled(EngineProject *p, bool for_stop, EngineSettledFunc func,
				void *userdata);

/* ---- what status shows ---- */

typedef struct UnitInfo {
	const char *project, *service;
	ServiceType type;
	UnitState state;
	pid_t pid;
	uint16_t port;
	const char *url; /* NULL if none */
	HealthState health;
	bool health_known;
	const char *health_source; /* "tcp", "http", "command", "log", "notify", "none" */
	const char *health_detail; /* last failure, or the service's STATUS= text */
	uint32_t restarts;
	usec_t start_time;        /* realtime µs of the current/last start; 0 = never */
	usec_t uptime;            /* 0 when not running */
	bool has_exit;
	int exit_status; /* waitpid() status, when has_exit */
	usec_t exit_time;
	bool exit_status_unknown; /* adopted and exited: we were not its parent */
	const char *reason;       /* why it is in its state */
	char *const *warnings;
	char *const *depends_on;
	const char *cgroup; /* NULL when process groups only */
} UnitInfo;

void unit_get_info(Unit *u, UnitInfo *ret);
UnitState unit_get_state(Unit *u);
const char *unit_name(Unit *u);
EngineProject *unit_project(Unit *u);
LogService *unit_log(Unit *u);

/* Load the state an earlier superd left (superd-state.c): re-adopt its processes, clean
 * up the rest. Returns how many projects came back, or -errno. */
int engine_state_restore(Engine *e);

/* The environment the service runs with (or would), "K=V" strv. */
int unit_get_env(Unit *u, char ***ret);
