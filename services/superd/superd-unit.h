/* SPDX-License-Identifier: MIT */
#pragma once

/* Internal to the engine (superd-engine.c, superd-unit.c, superd-state.c). */

#include "superd-engine.h"
#include "superd-notify.h"

#define UNIT_OUTPUTS 2
#define UNIT_HEALTHY_RESET_USEC (60 * USEC_PER_SEC)
#define UNIT_PORT_CHECK_MS 3000
#define UNIT_LAST_LINES 5

typedef enum StopCause {
	STOP_NONE,
	STOP_REQUESTED, /* user, reload or shutdown */
	STOP_LIVENESS,  /* turned unhealthy: restart under the policy */
	STOP_NEVER_READY,
} StopCause;

typedef struct UnitOutput {
	Unit *unit;
	uv_poll_t *poll; /* NULL once closed */
	int fd;
	LogStream stream;
} UnitOutput;

struct Unit {
	EngineProject *project;
	char *name;
	const Service *svc; /* config; NULL when removed from the project (being stopped) */
	char *fingerprint;  /* effective config: a change means restart on reload */

	UnitState state;
	char *reason;
	bool wanted;
	bool removed; /* not in the config any more: free once stopped */

	/* the process */
	pid_t pid; /* also its process group and session */
	uint64_t start_ticks;
	usec_t start_time;   /* realtime */
	usec_t start_mono;   /* monotonic */
	usec_t healthy_mono; /* when it last became healthy; 0 = not healthy */
	bool adopted;        /* not our child: exits seen through a pidfd */
	uv_poll_t *pidfd_poll;
	int pidfd;
	char *cgroup;
	unsigned cgroup_generation; /* leaf name suffix when an old leaf could not be removed */
	StopCause stop_cause;
	int stop_signal;
	uint64_t stop_timeout_ms;
	uv_timer_t *timer; /* stop escalation, or backoff delay */
	uv_timer_t *port_timer;

	UnitOutput out[UNIT_OUTPUTS];
	bool paused; /* by log backpressure */
	LogService *log;

	uint16_t port;

	HealthProbe *probe;
	HealthState health;
	bool health_known;
	const char *health_source;
	char *health_detail;
	NotifySocket *notify;
	char *status_text; /* STATUS= */

	uint32_t restarts;         /* since the user last started it */
	uint32_t restarts_in_row;  /* consecutive, for back-off and crash-loop */
	bool has_exit;
	int exit_status;
	usec_t exit_time;
	bool exit_status_unknown;

	char **warnings;
	char **env; /* what it was started with */
	char *url;
};

typedef struct SettledWaiter {
	EngineSettledFunc func;
	void *userdata;
	bool for_stop;
} SettledWaiter;

struct EngineProject {
	Engine *engine;
	char *name;
	char *path; /* as given to apply: directory or file */
	Project *cfg;
	char **environment; /* the caller's, from apply */
	Unit **units;
	size_t n_units;
	SettledWaiter *waiters;
	size_t n_waiters;
	bool forgotten;
	bool scheduling;
	bool reschedule;
};

struct Engine {
	uv_loop_t *loop;
	char *runtime_dir;
	char *state_dir;
	uint16_t https_port;
	char *cgroup_base;
	char *cgroup_reason;
	EngineCallbacks cb;
	ChildReaper *reaper;
	LogStore *logs;
	uv_async_t *drain_async;
	uv_timer_t *save_timer;
	EngineProject **projects;
	size_t n_projects;
	bool freeing;
};

/* superd-unit.c */
Unit *unit_new(EngineProject *p, const char *name);
void unit_free(Unit *u);
void unit_set_state(Unit *u, UnitState state, const char *fmt, ...) _printf_(3, 4);
/* Spawn now (deps are satisfied). Failure → FAILED with the reason. */
void unit_start(Unit *u);
/* Send the stop signal (escalating to SIGKILL), or go STOPPED at once without a process. */
void unit_stop(Unit *u, StopCause cause);
bool unit_has_process(const Unit *u);
/* Note a line in the unit's log from superd itself. */
void unit_note(Unit *u, const char *fmt, ...) _printf_(2, 3);
/* superd-output.c: reading stdout/stderr into the log store. */
void unit_resume_output(Unit *u); /* after log backpressure */
int unit_output_open(Unit *u, size_t i, int fd, LogStream stream);
void unit_output_close(UnitOutput *o);
/* Read what is there now (at most max_reads reads); false once the output ended. */
bool unit_output_drain(UnitOutput *o, unsigned max_reads);
/* The reader ends of the service's FIFOs into u->out[]; with create, fresh FIFOs and the
 * child's (read-write) ends in ret_child. */
int unit_open_fifos(Unit *u, bool create, int ret_child[UNIT_OUTPUTS]);
/* Re-attach to a process a previous superd started (superd-state.c). */
int unit_adopt(Unit *u, pid_t pid, uint64_t start_ticks, usec_t start_time);
/* Pick the unit's port (fixed, sticky, or a free one). */
int unit_assign_port(Unit *u);
/* Compute env, port, URL and fingerprint from the unit's config. */
int unit_prepare_config(Unit *u);

/* superd-engine.c */
/* engine_apply(), optionally without the scheduling pass (restore adopts first). */
int engine_apply_full(Engine *e, const char *path, char *const *environment, char *const *only,
		      DiagList *diags, bool schedule, EngineProject **ret);
void engine_project_schedule(EngineProject *p);
void engine_request_save(Engine *e);
Unit *engine_project_unit_by_service(EngineProject *p, const char *service);
int engine_port_lookup(const Project *p, const Service *s, void *userdata, uint16_t *ret);

/* superd-state.c */
int engine_state_save(Engine *e);

/* Heap uv handles closed (and freed) through the loop. */
uv_timer_t *uv_timer_new(uv_loop_t *loop, void *data);
void uv_handle_close_free(uv_handle_t *h);
