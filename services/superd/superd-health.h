/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Health probes of one service run, on the loop. A probe starts STARTING and reports
 * every change of state to its callback:
 *
 *   STARTING ──first success──▶ HEALTHY ──`retries` failures in a row──▶ UNHEALTHY
 *      │                          ▲                                         │
 *      └─start_timeout passes─▶ UNHEALTHY (final)     └──── a success ──────┘ (liveness)
 *
 * Startup: failures are expected while the service boots and never count; they only
 * update the last reason. Checks run right away and then back off (10 ms doubling, up
 * to min(interval, 250 ms)) so a fast service is seen ready within milliseconds. If no
 * check passes within start_timeout, the probe turns UNHEALTHY for good ("not ready
 * after 60s: connect 127.0.0.1:41234: Connection refused") and stops.
 * Readiness only (liveness = false): after HEALTHY the probe stops checking.
 * Liveness: checks continue every `interval`; `retries` consecutive failures (those
 * within start_period of the start excepted) turn it UNHEALTHY, a success HEALTHY again.
 *
 * Kinds:
 *   tcp      connect to 127.0.0.1:<port>; if refused, to [::1]:<port> (a server bound to
 *            "localhost" may have picked ::1 only); the result says which one answered.
 *   http     the same connect, then `GET <path> HTTP/1.1` (Host, Connection: close);
 *            a 2xx/3xx status line passes. Only the first 1 KiB of the answer is read.
 *   command  `/bin/sh -c <command>` with the service's env and workdir, its own session,
 *            output merged (the first line goes into the reason); exit 0 within
 *            `timeout` passes; on timeout its whole process group is SIGKILLed.
 *   log      the engine feeds each output line to health_probe_feed_line(); a match of
 *            the POSIX extended regex `ready_log_line` (after ANSI escape sequences are
 *            stripped, so colours do not break anchors) makes it HEALTHY. No checks.
 *   notify   the engine calls health_probe_report() on READY=1 (superd-notify.h).
 *
 * Only one check is in flight at a time; the next is scheduled when it ends.
 */

#include <stdbool.h>
#include <stdint.h>
/* Before <uv.h>: its <sys/param.h> would otherwise have its MIN/MAX redefined by ours. */
#include "macro.h"
#include <uv.h>

#include "superd-spawn.h"

typedef enum HealthKind {
	HEALTH_KIND_TCP,
	HEALTH_KIND_HTTP,
	HEALTH_KIND_COMMAND,
	HEALTH_KIND_LOG,
	HEALTH_KIND_NOTIFY,
	_HEALTH_KIND_MAX,
	_HEALTH_KIND_INVALID = -EINVAL,
} HealthKind;

typedef enum HealthState {
	HEALTH_STARTING,
	HEALTH_HEALTHY,
	HEALTH_UNHEALTHY,
	_HEALTH_STATE_MAX,
	_HEALTH_STATE_INVALID = -EINVAL,
} HealthState;

/* "tcp", "http", "command", "log", "notify" — also the result's `source`. */
const char *health_kind_to_string(HealthKind k);
HealthKind health_kind_from_string(const char *s);
/* "starting", "healthy", "unhealthy" */
const char *health_state_to_string(HealthState s);

#define HEALTH_DEFAULT_INTERVAL_MS 1000
#define HEALTH_DEFAULT_TIMEOUT_MS 1000
#define HEALTH_DEFAULT_RETRIES 3
#define HEALTH_DEFAULT_START_TIMEOUT_MS 60000
/* start_timeout_ms value for "wait for readiness as long as it takes". */
#define HEALTH_START_TIMEOUT_NONE UINT64_MAX

typedef struct HealthConfig {
	HealthKind kind;
	uint16_t port;              /* tcp, http */
	const char *path;           /* http; NULL = "/" */
	const char *host_header;    /* http; NULL = "localhost:<port>" */
	const char *command;        /* command */
	char *const *envp;          /* command: the service's environment */
	const char *workdir;        /* command: the service's workdir; NULL = superd's cwd */
	const char *ready_log_line; /* log: POSIX extended regular expression */
	uint64_t interval_ms;       /* 0 = default */
	uint64_t timeout_ms;        /* one check; 0 = default */
	uint32_t retries;           /* liveness failures in a row before UNHEALTHY; 0 = default */
	uint64_t start_timeout_ms;  /* 0 = default; HEALTH_START_TIMEOUT_NONE = no limit */
	uint64_t start_period_ms;   /* liveness failures this soon after start do not count */
	bool liveness;              /* keep checking after HEALTHY */
} HealthConfig;

/*
 * Validate at config time: required fields for the kind, and the regex compiles.
 * -EINVAL with a sentence in *ret_error ("ready_log_line: Unmatched ( or \\(").
 */
int health_config_check(const HealthConfig *c, char **ret_error);

typedef struct HealthResult {
	HealthState state;
	const char *source; /* health_kind_to_string() */
	const char *reason; /* "GET /health → 503", "connect 127.0.0.1:41234: Connection refused" */
	int family;         /* tcp/http HEALTHY: AF_INET or AF_INET6, whichever answered; else 0 */
} HealthResult;

typedef struct HealthProbe HealthProbe;
/* Called on each change of state; the result is valid during the call only. The probe may
 * be freed from inside. */
typedef void (*HealthFunc)(HealthProbe *p, const HealthResult *r, void *userdata);

/*
 * Make a probe (config copied; checked as by health_config_check()). `reaper` is needed
 * for command probes (and must outlive the probe); may be NULL otherwise. Nothing runs
 * until health_probe_start().
 */
int health_probe_new(uv_loop_t *loop, ChildReaper *reaper, const HealthConfig *c, HealthFunc func,
		     void *userdata, HealthProbe **ret, char **ret_error);
/* Start checking; start_timeout counts from now. Once per probe. */
int health_probe_start(HealthProbe *p);
/* log: one output line (without its newline; a trailing "\r" is ignored). */
void health_probe_feed_line(HealthProbe *p, const char *line, size_t n);
/* Outcome from outside (notify: READY=1), counted like a check's. */
void health_probe_report(HealthProbe *p, bool ok, const char *reason);
HealthState health_probe_get_state(HealthProbe *p);
/* The last check's outcome, for status ("connect …: Connection refused"); NULL if none yet. */
const char *health_probe_last_reason(HealthProbe *p);
/*
 * Stop (a running command check is SIGKILLed with its process group). No callback after
 * this; memory is released by the loop's close callbacks. NULL-safe.
 */
HealthProbe *health_probe_free(HealthProbe *p);
