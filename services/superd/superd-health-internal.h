/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared by the probe state machine (superd-health.c) and its check kinds:
 * tcp/http (superd-health-net.c) and command (superd-health-cmd.c).
 *
 * A check kind starts one attempt per check and owns it until it ends. It reports its
 * outcome exactly once through health_probe_check_done(), after detaching the attempt
 * from the probe (p->net / p->cmd back to NULL), since the callback that follows may free
 * the probe. health_*_abandon() detaches the attempt without a report (the probe stops, or
 * the check timed out); the attempt then frees itself once its handles are closed, without
 * touching the probe again.
 */

#include <regex.h>

#include "superd-health.h"

/* How much of a line or output a reason quotes. */
#define HEALTH_REASON_QUOTE_MAX 200

typedef struct NetAttempt NetAttempt;
typedef struct CmdAttempt CmdAttempt;

struct HealthProbe {
	uv_loop_t *loop;
	ChildReaper *reaper;

	HealthKind kind;
	uint16_t port;
	char *path, *host_header, *command, *workdir, *ready_log_line;
	char **envp;
	regex_t regex;
	bool regex_compiled;
	uint64_t interval_ms, timeout_ms, start_timeout_ms, start_period_ms;
	uint32_t retries;
	bool liveness;

	HealthFunc func;
	void *userdata;

	HealthState state;
	bool started, finished, free_requested;
	unsigned in_callback;
	unsigned startup_round;
	uint32_t failures;
	uint64_t started_at; /* uv_now() */
	char *last_reason;

	uv_timer_t schedule_timer, timeout_timer, start_timer;
	unsigned handles_open;
	NetAttempt *net;
	CmdAttempt *cmd;
};

/* Every check, and every outside report, ends here. The probe may be freed on return. */
void health_probe_check_done(HealthProbe *p, bool ok, const char *reason, int family);

/* tcp/http: connect to 127.0.0.1 (family AF_INET) or [::1]; v4_error says why 127.0.0.1
 * failed when trying ::1 next. */
int health_net_start(HealthProbe *p, int family, const char *v4_error);
void health_net_abandon(HealthProbe *p);

/* command: -errno and, if the process could not start, a sentence in *ret_error. */
int health_cmd_start(HealthProbe *p, char **ret_error);
/* SIGKILLs the process group of a running command. */
void health_cmd_abandon(HealthProbe *p);
