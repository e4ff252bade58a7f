/* SPDX-License-Identifier: MIT */
/*
 * Health probes: names, config checks, the state machine and timers, and the log and
 * notify kinds. tcp/http checks are in superd-health-net.c, command checks in
 * superd-health-cmd.c.
 */
#include "superd-health-internal.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "strutil.h"

/* A log line is matched on its first 64 KiB. */
#define LOG_MATCH_MAX (64u * 1024)
/* Startup back-off: 10 ms doubling, capped here (and by the interval). */
#define STARTUP_DELAY_FIRST_MS 10
#define STARTUP_DELAY_MAX_MS 250

static const char *const kind_names[_HEALTH_KIND_MAX] = {
	[HEALTH_KIND_TCP] = "tcp",         [HEALTH_KIND_HTTP] = "http",
	[HEALTH_KIND_COMMAND] = "command", [HEALTH_KIND_LOG] = "log",
	[HEALTH_KIND_NOTIFY] = "notify",
};

static const char *const state_names[_HEALTH_STATE_MAX] = {
	[HEALTH_STARTING] = "starting",
	[HEALTH_HEALTHY] = "healthy",
	[HEALTH_UNHEALTHY] = "unhealthy",
};

const char *health_kind_to_string(HealthKind k)
{
	return k >= 0 && k < _HEALTH_KIND_MAX ? kind_names[k] : NULL;
}

HealthKind health_kind_from_string(const char *s)
{
	for (int k = 0; s && k < _HEALTH_KIND_MAX; k++)
		if (streq(s, kind_names[k]))
			return (HealthKind)k;
	return _HEALTH_KIND_INVALID;
}

const char *health_state_to_string(HealthState s)
{
	return s >= 0 && s < _HEALTH_STATE_MAX ? state_names[s] : NULL;
}

static void format_duration(uint64_t ms, char *buf, size_t size)
{
	if (ms < 1000)
		(void)strfmt(buf, size, "%llums", (unsigned long long)ms);
	else if (ms % 1000 == 0)
		(void)strfmt(buf, size, "%llus", (unsigned long long)(ms / 1000));
	else
		(void)strfmt(buf, size, "%llu.%llus", (unsigned long long)(ms / 1000),
			     (unsigned long long)(ms % 1000 / 100));
}

static bool has_crlf_or_space(const char *s)
{
	return strpbrk(s, "\r\n \t") != NULL;
}

int health_config_check(const HealthConfig *c, char **ret_error)
{
	const char *err = NULL;
	char *msg = NULL;

	if (!c || c->kind < 0 || c->kind >= _HEALTH_KIND_MAX)
		err = "unknown health check type";
	else if ((c->kind == HEALTH_KIND_TCP || c->kind == HEALTH_KIND_HTTP) && c->port == 0)
		err = "a tcp or http health check needs a port";
	else if (c->kind == HEALTH_KIND_HTTP && c->path &&
		 (c->path[0] != '/' || has_crlf_or_space(c->path)))
		err = "the http health check path must start with '/' and contain no spaces";
	else if (c->kind == HEALTH_KIND_HTTP && c->host_header && has_crlf_or_space(c->host_header))
		err = "the http health check host must not contain spaces or line breaks";
	else if (c->kind == HEALTH_KIND_COMMAND && isempty(c->command))
		err = "a command health check needs a command";
	else if (c->kind == HEALTH_KIND_LOG) {
		if (isempty(c->ready_log_line))
			err = "a log health check needs ready_log_line";
		else {
			regex_t re;
			int r = regcomp(&re, c->ready_log_line, REG_EXTENDED | REG_NOSUB);
			if (r != 0) {
				char buf[256];
				regerror(r, &re, buf, sizeof(buf));
				msg = strdupf("ready_log_line: %s", buf);
				if (!msg)
					return -ENOMEM;
			} else
				regfree(&re);
		}
	}
	if (!err && !msg)
		return 0;
	if (ret_error) {
		*ret_error = msg ? msg : strdup(err);
		msg = NULL;
	}
	free(msg);
	return -EINVAL;
}

/* ---- State machine ---- */

static void probe_close(HealthProbe *p);
static void probe_run_check(HealthProbe *p);

static void set_reason(HealthProbe *p, const char *reason)
{
	char *r = strdup(reason);
	if (!r)
		return; /* keep the previous one; the state machine goes on regardless */
	free(p->last_reason);
	p->last_reason = r;
}

/* Report a new state. Returns false if the callback freed the probe. */
static bool probe_emit(HealthProbe *p, HealthState state, const char *reason, int family)
{
	p->state = state;
	HealthResult r = {
		.state = state,
		.source = health_kind_to_string(p->kind),
		.reason = reason,
		.family = state == HEALTH_HEALTHY ? family : 0,
	};
	p->in_callback++;
	p->func(p, &r, p->userdata);
	p->in_callback--;
	if (p->free_requested && p->in_callback == 0) {
		probe_close(p);
		return false;
	}
	return !p->free_requested;
}

static void probe_stop_checks(HealthProbe *p)
{
	p->finished = true;
	uv_timer_stop(&p->schedule_timer);
	uv_timer_stop(&p->timeout_timer);
	uv_timer_stop(&p->start_timer);
	health_net_abandon(p);
	health_cmd_abandon(p);
}

static void on_schedule(uv_timer_t *t)
{
	probe_run_check(t->data);
}

static bool probe_has_checks(const HealthProbe *p)
{
	return p->kind == HEALTH_KIND_TCP || p->kind == HEALTH_KIND_HTTP ||
	       p->kind == HEALTH_KIND_COMMAND;
}

static void probe_schedule(HealthProbe *p, uint64_t delay_ms)
{
	if (p->finished || !probe_has_checks(p))
		return;
	uv_timer_start(&p->schedule_timer, on_schedule, delay_ms, 0);
}

static uint64_t startup_delay(HealthProbe *p)
{
	uint64_t cap = MIN(p->interval_ms, (uint64_t)STARTUP_DELAY_MAX_MS);
	unsigned shift = MIN(p->startup_round, 16u);
	p->startup_round++;
	return MIN((uint64_t)STARTUP_DELAY_FIRST_MS << shift, cap);
}

/* Every check, and every outside report, ends here. */
void health_probe_check_done(HealthProbe *p, bool ok, const char *reason, int family)
{
	if (p->finished)
		return;
	uv_timer_stop(&p->timeout_timer);
	set_reason(p, reason);

	if (ok) {
		p->failures = 0;
		if (p->state != HEALTH_HEALTHY) {
			if (p->state == HEALTH_STARTING)
				uv_timer_stop(&p->start_timer);
			if (!probe_emit(p, HEALTH_HEALTHY, reason, family))
				return;
		}
		if (!p->liveness)
			probe_stop_checks(p);
		else
			probe_schedule(p, p->interval_ms);
		return;
	}

	if (p->state == HEALTH_STARTING) {
		probe_schedule(p, startup_delay(p));
		return;
	}
	if (uv_now(p->loop) - p->started_at >= p->start_period_ms && p->failures < UINT32_MAX)
		p->failures++;
	if (p->state == HEALTH_HEALTHY && p->failures >= p->retries) {
		/* reason may live in an attempt that is gone by now: use our copy. */
		if (!probe_emit(p, HEALTH_UNHEALTHY, p->last_reason ? p->last_reason : reason, 0))
			return;
	}
	probe_schedule(p, p->interval_ms);
}

static void on_start_timeout(uv_timer_t *t)
{
	HealthProbe *p = t->data;
	if (p->state != HEALTH_STARTING || p->finished)
		return;
	probe_stop_checks(p);

	char d[32];
	format_duration(p->start_timeout_ms, d, sizeof(d));
	_cleanup_free_ char *why = NULL;
	if (p->kind == HEALTH_KIND_LOG)
		why = strdupf("no output line matched /%s/ within %s", p->ready_log_line, d);
	else if (p->kind == HEALTH_KIND_NOTIFY && !p->last_reason)
		why = strdupf("no READY=1 within %s", d);
	else
		why = strdupf("not ready after %s: %s", d,
			      p->last_reason ? p->last_reason : "no check completed");
	if (why)
		set_reason(p, why);
	(void)probe_emit(p, HEALTH_UNHEALTHY, why ? why : "not ready in time", 0);
}

static void on_check_timeout(uv_timer_t *t)
{
	HealthProbe *p = t->data;
	char d[32], why[128];
	format_duration(p->timeout_ms, d, sizeof(d));
	if (p->kind == HEALTH_KIND_HTTP)
		(void)strfmt(why, sizeof(why), "GET %s: timed out after %s", p->path, d);
	else if (p->kind == HEALTH_KIND_COMMAND)
		(void)strfmt(why, sizeof(why), "command timed out after %s (killed)", d);
	else
		(void)strfmt(why, sizeof(why), "connect 127.0.0.1:%u: timed out after %s",
			     (unsigned)p->port, d);
	health_net_abandon(p);
	health_cmd_abandon(p);
	health_probe_check_done(p, false, why, 0);
}

/* ---- Running checks ---- */

static void probe_run_check(HealthProbe *p)
{
	if (p->finished)
		return;
	uv_timer_start(&p->timeout_timer, on_check_timeout, p->timeout_ms, 0);

	int r;
	char why[256];
	if (p->kind == HEALTH_KIND_COMMAND) {
		_cleanup_free_ char *err = NULL;
		r = health_cmd_start(p, &err);
		if (r < 0) {
			(void)strfmt(why, sizeof(why), "command: %s", err ? err : strerror(-r));
			health_probe_check_done(p, false, why, 0);
		}
		return;
	}
	r = health_net_start(p, AF_INET, NULL);
	if (r < 0) {
		(void)strfmt(why, sizeof(why), "connect 127.0.0.1:%u: %s", (unsigned)p->port,
			     strerror(-r));
		health_probe_check_done(p, false, why, 0);
	}
}

/* ---- log ---- */

/* Copy s without ANSI escape sequences (CSI, OSC and two-byte ESC x). Returns the length. */
static size_t strip_ansi(const char *s, size_t n, char *out)
{
	size_t j = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] != 0x1b) {
			out[j++] = s[i++];
			continue;
		}
		if (i + 1 < n && s[i + 1] == '[') {
			i += 2;
			while (i < n &&
			       !((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e))
				i++;
			i++;
		} else if (i + 1 < n && s[i + 1] == ']') {
			i += 2;
			while (i < n && s[i] != 0x07 &&
			       !(s[i] == 0x1b && i + 1 < n && s[i + 1] == '\\'))
				i++;
			i += i < n && s[i] == 0x1b ? 2 : 1;
		} else
			i += 2;
	}
	out[j] = 0;
	return j;
}

void health_probe_feed_line(HealthProbe *p, const char *line, size_t n)
{
	if (!p || p->kind != HEALTH_KIND_LOG || p->finished || p->state != HEALTH_STARTING)
		return;
	n = MIN(n, (size_t)LOG_MATCH_MAX);
	_cleanup_free_ char *clean = malloc(n + 1);
	if (!clean)
		return;
	size_t len = strip_ansi(line, n, clean);
	while (len > 0 && (clean[len - 1] == '\r' || clean[len - 1] == '\n'))
		clean[--len] = 0;

	int r;
#ifdef REG_STARTEND
	regmatch_t m[1] = { { .rm_so = 0, .rm_eo = (regoff_t)len } };
	r = regexec(&p->regex, clean, 1, m, REG_STARTEND);
#else
	r = regexec(&p->regex, clean, 0, NULL, 0);
#endif
	if (r != 0)
		return;
	char why[HEALTH_REASON_QUOTE_MAX + 64];
	(void)strfmt(why, sizeof(why), "log line matched: %.*s",
		     (int)MIN(len, (size_t)HEALTH_REASON_QUOTE_MAX), clean);
	health_probe_check_done(p, true, why, 0);
}

void health_probe_report(HealthProbe *p, bool ok, const char *reason)
{
	if (p)
		health_probe_check_done(p, ok, reason ? reason : ok ? "ready" : "failed", 0);
}

/* ---- Lifecycle ---- */

static void probe_release(HealthProbe *p)
{
	if (p->regex_compiled)
		regfree(&p->regex);
	free(p->path);
	free(p->host_header);
	free(p->command);
	free(p->workdir);
	free(p->ready_log_line);
	strv_free(p->envp);
	free(p->last_reason);
	free(p);
}

static void probe_handle_closed(uv_handle_t *h)
{
	HealthProbe *p = h->data;
	if (--p->handles_open == 0)
		probe_release(p);
}

static void probe_close(HealthProbe *p)
{
	probe_stop_checks(p);
	uv_close((uv_handle_t *)&p->schedule_timer, probe_handle_closed);
	uv_close((uv_handle_t *)&p->timeout_timer, probe_handle_closed);
	uv_close((uv_handle_t *)&p->start_timer, probe_handle_closed);
}

static int dup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (s && !(*ret = strdup(s)))
		return -ENOMEM;
	return 0;
}

int health_probe_new(uv_loop_t *loop, ChildReaper *reaper, const HealthConfig *c, HealthFunc func,
		     void *userdata, HealthProbe **ret, char **ret_error)
{
	int r = health_config_check(c, ret_error);
	if (r < 0)
		return r;
	if (!func || (c->kind == HEALTH_KIND_COMMAND && !reaper))
		return -EINVAL;

	HealthProbe *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->reaper = reaper;
	p->kind = c->kind;
	p->port = c->port;
	p->interval_ms = c->interval_ms ? c->interval_ms : HEALTH_DEFAULT_INTERVAL_MS;
	p->timeout_ms = c->timeout_ms ? c->timeout_ms : HEALTH_DEFAULT_TIMEOUT_MS;
	p->retries = c->retries ? c->retries : HEALTH_DEFAULT_RETRIES;
	p->start_timeout_ms =
	    c->start_timeout_ms ? c->start_timeout_ms : HEALTH_DEFAULT_START_TIMEOUT_MS;
	p->start_period_ms = c->start_period_ms;
	p->liveness = c->liveness;
	p->func = func;
	p->userdata = userdata;
	p->state = HEALTH_STARTING;

	if (dup_opt(c->kind == HEALTH_KIND_HTTP ? (c->path ? c->path : "/") : NULL, &p->path) < 0 ||
	    dup_opt(c->host_header, &p->host_header) < 0 || dup_opt(c->command, &p->command) < 0 ||
	    dup_opt(c->workdir, &p->workdir) < 0 ||
	    dup_opt(c->ready_log_line, &p->ready_log_line) < 0 ||
	    (c->envp && !(p->envp = strv_copy(c->envp)))) {
		probe_release(p);
		return -ENOMEM;
	}
	if (c->kind == HEALTH_KIND_LOG) {
		if (regcomp(&p->regex, c->ready_log_line, REG_EXTENDED | REG_NOSUB) != 0) {
			probe_release(p);
			return -EINVAL; /* health_config_check() said it compiles */
		}
		p->regex_compiled = true;
	}

	uv_timer_init(loop, &p->schedule_timer);
	uv_timer_init(loop, &p->timeout_timer);
	uv_timer_init(loop, &p->start_timer);
	p->schedule_timer.data = p->timeout_timer.data = p->start_timer.data = p;
	p->handles_open = 3;
	*ret = p;
	return 0;
}

int health_probe_start(HealthProbe *p)
{
	if (p->started)
		return -EALREADY;
	p->started = true;
	/* The loop's cached time is from before this iteration's work (50 spawns can take
	 * a while): count the start timeout from now. */
	uv_update_time(p->loop);
	p->started_at = uv_now(p->loop);
	if (p->finished)
		return 0; /* a log line matched before the start */
	if (p->start_timeout_ms != HEALTH_START_TIMEOUT_NONE)
		uv_timer_start(&p->start_timer, on_start_timeout, p->start_timeout_ms, 0);
	probe_schedule(p, 0);
	return 0;
}

HealthState health_probe_get_state(HealthProbe *p)
{
	return p->state;
}

const char *health_probe_last_reason(HealthProbe *p)
{
	return p->last_reason;
}

HealthProbe *health_probe_free(HealthProbe *p)
{
	if (!p)
		return NULL;
	if (p->in_callback) {
		p->free_requested = true;
		probe_stop_checks(p);
	} else
		probe_close(p);
	return NULL;
}
