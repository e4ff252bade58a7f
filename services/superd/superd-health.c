/* SPDX-License-Identifier: MIT */
#include "superd-health.h"

#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "strutil.h"

/* Only the status line matters; a server sending more than this before it is broken. */
#define HTTP_RESPONSE_MAX 1024
/* Command output kept for the reason (the rest is drained and dropped). */
#define COMMAND_OUTPUT_MAX 4096
/* A log line is matched on its first 64 KiB. */
#define LOG_MATCH_MAX (64u * 1024)
/* How much of a line or output a reason quotes. */
#define REASON_QUOTE_MAX 200
/* Startup back-off: 10 ms doubling, capped here (and by the interval). */
#define STARTUP_DELAY_FIRST_MS 10
#define STARTUP_DELAY_MAX_MS 250

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
static void net_abandon(HealthProbe *p);
static void cmd_abandon(HealthProbe *p);

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
	net_abandon(p);
	cmd_abandon(p);
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
static void probe_check_done(HealthProbe *p, bool ok, const char *reason, int family)
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
	net_abandon(p);
	cmd_abandon(p);
	probe_check_done(p, false, why, 0);
}

/* ---- tcp and http ---- */

struct NetAttempt {
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	uv_write_t write_req;
	HealthProbe *probe; /* NULL once abandoned: callbacks then only wait for the close */
	int family;
	char *request;
	char v4_error[128]; /* why 127.0.0.1 failed, when we went on to try ::1 */
	char response[HTTP_RESPONSE_MAX + 1];
	size_t len;
};

static int net_start(HealthProbe *p, int family, const char *v4_error);

static void net_closed(uv_handle_t *h)
{
	NetAttempt *a = h->data;
	free(a->request);
	free(a);
}

/* Detach from the probe and close; memory goes in net_closed. */
static void net_release(NetAttempt *a)
{
	if (a->probe && a->probe->net == a)
		a->probe->net = NULL;
	a->probe = NULL;
	if (!uv_is_closing((uv_handle_t *)&a->tcp))
		uv_close((uv_handle_t *)&a->tcp, net_closed);
}

static void net_abandon(HealthProbe *p)
{
	if (p->net)
		net_release(p->net);
}

static void net_finish(NetAttempt *a, bool ok, const char *reason)
{
	HealthProbe *p = a->probe;
	int family = a->family;
	char copy[256];
	(void)strscpy(copy, sizeof(copy), reason); /* reason may point into a */
	net_release(a);
	probe_check_done(p, ok, copy, family);
}

static void net_format_addr(const NetAttempt *a, char *buf, size_t size)
{
	(void)strfmt(buf, size, a->family == AF_INET ? "127.0.0.1:%u" : "[::1]:%u",
		     (unsigned)a->probe->port);
}

/* 1: complete (code set), 0: need more, -EBADMSG: not HTTP. */
static int http_status_parse(const char *buf, size_t len, int *ret_code)
{
	if (memcmp(buf, "HTTP/", MIN(len, (size_t)5)) != 0)
		return -EBADMSG;
	const char *eol = memchr(buf, '\n', len);
	if (!eol)
		return len >= HTTP_RESPONSE_MAX ? -EBADMSG : 0;
	/* HTTP/1.1 200 OK */
	size_t n = (size_t)(eol - buf);
	if (n < 12 || buf[5] < '0' || buf[5] > '9' || buf[6] != '.' || buf[7] < '0' ||
	    buf[7] > '9' || buf[8] != ' ')
		return -EBADMSG;
	int code = 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EBADMSG;
		code = code * 10 + (buf[i] - '0');
	}
	if (n > 12 && buf[12] != ' ' && buf[12] != '\r')
		return -EBADMSG;
	*ret_code = code;
	return 1;
}

static void http_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	NetAttempt *a = h->data;
	*buf = uv_buf_init(a->response + a->len, (unsigned)(HTTP_RESPONSE_MAX - a->len));
}

static void http_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	NetAttempt *a = s->data;
	HealthProbe *p = a->probe;
	char why[256];
	if (!p || nread == 0)
		return;
	if (nread > 0) {
		a->len += (size_t)nread;
		a->response[a->len] = 0;
		int code;
		int r = http_status_parse(a->response, a->len, &code);
		if (r == 0)
			return;
		if (r < 0) {
			(void)strfmt(why, sizeof(why), "GET %s: not an HTTP response", p->path);
			net_finish(a, false, why);
			return;
		}
		(void)strfmt(why, sizeof(why), "GET %s → %d", p->path, code);
		net_finish(a, code >= 200 && code < 400, why);
		return;
	}
	if (nread == UV_EOF)
		(void)strfmt(why, sizeof(why), "GET %s: connection closed before a status line",
			     p->path);
	else
		(void)strfmt(why, sizeof(why), "GET %s: %s", p->path, strerror((int)-nread));
	net_finish(a, false, why);
}

static void http_written(uv_write_t *req, int status)
{
	NetAttempt *a = req->data;
	if (!a->probe || status >= 0)
		return;
	char why[256];
	(void)strfmt(why, sizeof(why), "GET %s: sending the request: %s", a->probe->path,
		     strerror(-status));
	net_finish(a, false, why);
}

static void net_connected(uv_connect_t *req, int status)
{
	NetAttempt *a = req->data;
	HealthProbe *p = a->probe;
	char addr[64], why[256];
	if (!p)
		return;
	net_format_addr(a, addr, sizeof(addr));

	if (status < 0) {
		if (a->family == AF_INET && status == UV_ECONNREFUSED) {
			/* Maybe it listens on ::1 only. */
			char v4_error[128];
			(void)strfmt(v4_error, sizeof(v4_error), "connect %s: %s", addr,
				     strerror(-status));
			net_release(a);
			int r = net_start(p, AF_INET6, v4_error);
			if (r < 0)
				probe_check_done(p, false, v4_error, 0);
			return;
		}
		if (a->family == AF_INET6 && a->v4_error[0])
			(void)strscpy(why, sizeof(why), a->v4_error);
		else
			(void)strfmt(why, sizeof(why), "connect %s: %s", addr, strerror(-status));
		if (p->kind == HEALTH_KIND_HTTP) {
			char inner[256];
			(void)strscpy(inner, sizeof(inner), why);
			(void)strfmt(why, sizeof(why), "GET %s: %s", p->path, inner);
		}
		net_finish(a, false, why);
		return;
	}

	if (p->kind == HEALTH_KIND_TCP) {
		(void)strfmt(why, sizeof(why), "connected to %s", addr);
		net_finish(a, true, why);
		return;
	}

	uv_buf_t b = uv_buf_init(a->request, (unsigned)strlen(a->request));
	a->write_req.data = a;
	int r = uv_write(&a->write_req, (uv_stream_t *)&a->tcp, &b, 1, http_written);
	if (r >= 0)
		r = uv_read_start((uv_stream_t *)&a->tcp, http_alloc, http_read);
	if (r < 0) {
		(void)strfmt(why, sizeof(why), "GET %s: %s", p->path, strerror(-r));
		net_finish(a, false, why);
	}
}

static int net_start(HealthProbe *p, int family, const char *v4_error)
{
	NetAttempt *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->family = family;
	if (v4_error)
		(void)strscpy(a->v4_error, sizeof(a->v4_error), v4_error);
	if (p->kind == HEALTH_KIND_HTTP) {
		_cleanup_free_ char *host = p->host_header
						? strdup(p->host_header)
						: strdupf("localhost:%u", (unsigned)p->port);
		a->request =
		    host ? strdupf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: locald-health\r\n"
				   "Accept: */*\r\nConnection: close\r\n\r\n",
				   p->path, host)
			 : NULL;
		if (!a->request) {
			free(a);
			return -ENOMEM;
		}
	}
	int r = uv_tcp_init(p->loop, &a->tcp);
	if (r < 0) {
		free(a->request);
		free(a);
		return r;
	}
	a->tcp.data = a;
	a->connect_req.data = a;
	a->probe = p;
	p->net = a;

	struct sockaddr_storage ss;
	if (family == AF_INET)
		r = uv_ip4_addr("127.0.0.1", p->port, (struct sockaddr_in *)&ss);
	else
		r = uv_ip6_addr("::1", p->port, (struct sockaddr_in6 *)&ss);
	if (r >= 0)
		r = uv_tcp_connect(&a->connect_req, &a->tcp, (struct sockaddr *)&ss, net_connected);
	if (r < 0) {
		net_release(a);
		return r;
	}
	return 0;
}

/* ---- command ---- */

struct CmdAttempt {
	HealthProbe *probe; /* NULL once abandoned */
	uv_poll_t poll;
	int fd;
	pid_t pid;
	bool exited;
	bool poll_active; /* initialized and not yet closing */
	bool poll_closed; /* closed, or never opened */
	char out[COMMAND_OUTPUT_MAX + 1];
	size_t out_len;
};

static void cmd_maybe_free(CmdAttempt *a)
{
	if (a->exited && a->poll_closed) {
		safe_close(a->fd);
		free(a);
	}
}

static void cmd_poll_closed(uv_handle_t *h)
{
	CmdAttempt *a = h->data;
	a->poll_closed = true;
	cmd_maybe_free(a);
}

static void cmd_close_poll(CmdAttempt *a)
{
	if (a->poll_active) {
		a->poll_active = false;
		uv_poll_stop(&a->poll);
		uv_close((uv_handle_t *)&a->poll, cmd_poll_closed);
	}
}

/* Read what is there; returns false at EOF or error. */
static bool cmd_drain(CmdAttempt *a)
{
	for (;;) {
		char scratch[4096];
		char *dst = a->out_len < COMMAND_OUTPUT_MAX ? a->out + a->out_len : scratch;
		size_t room = a->out_len < COMMAND_OUTPUT_MAX ? COMMAND_OUTPUT_MAX - a->out_len
							      : sizeof(scratch);
		ssize_t n = read(a->fd, dst, room);
		if (n > 0) {
			if (dst != scratch)
				a->out_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

static void cmd_readable(uv_poll_t *h, int status, int events)
{
	CmdAttempt *a = h->data;
	if (status < 0 || !cmd_drain(a))
		cmd_close_poll(a);
}

/* The first non-empty output line, shortened, for the reason. */
static void cmd_first_line(CmdAttempt *a, char *buf, size_t size)
{
	a->out[a->out_len] = 0;
	const char *s = a->out;
	while (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, "\r\n");
	n = MIN(n, (size_t)REASON_QUOTE_MAX);
	(void)strfmt(buf, size, "%.*s", (int)n, s);
}

static void cmd_exited(pid_t pid, int status, void *userdata)
{
	CmdAttempt *a = userdata;
	a->exited = true;
	HealthProbe *p = a->probe;
	if (!p) {
		cmd_close_poll(a);
		cmd_maybe_free(a);
		return;
	}
	/* Whatever it printed before exiting is in the pipe already. */
	(void)cmd_drain(a);
	char what[96], line[REASON_QUOTE_MAX + 1], why[400];
	(void)spawn_describe_status(status, what, sizeof(what));
	cmd_first_line(a, line, sizeof(line));
	if (line[0])
		(void)strfmt(why, sizeof(why), "command %s: %s", what, line);
	else
		(void)strfmt(why, sizeof(why), "command %s", what);
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;

	p->cmd = NULL;
	a->probe = NULL;
	cmd_close_poll(a);
	cmd_maybe_free(a);
	probe_check_done(p, ok, why, 0);
}

static void cmd_abandon(HealthProbe *p)
{
	CmdAttempt *a = p->cmd;
	if (!a)
		return;
	p->cmd = NULL;
	a->probe = NULL;
	/* Not reaped yet, so the group id cannot have been recycled. The reaper still
	 * delivers its exit, which frees a. */
	if (!a->exited)
		(void)spawn_kill_group(a->pid, SIGKILL);
	cmd_close_poll(a);
}

static int cmd_start(HealthProbe *p, char **ret_error)
{
	SpawnOptions o = {
		.command = p->command,
		.envp = p->envp,
		.workdir = p->workdir,
		.output = SPAWN_OUTPUT_MERGED,
	};
	Spawned s = SPAWNED_NULL;
	int r = spawn_process(&o, &s, ret_error);
	if (r < 0)
		return r;

	CmdAttempt *a = calloc(1, sizeof(*a));
	if (a)
		r = child_reaper_watch(p->reaper, s.pid, cmd_exited, a);
	if (!a || r < 0) {
		(void)spawn_kill_group(s.pid, SIGKILL);
		while (waitpid(s.pid, NULL, 0) < 0 && errno == EINTR)
			;
		spawned_close(&s);
		free(a);
		return -ENOMEM;
	}
	a->pid = s.pid;
	a->fd = TAKE_FD(s.stdout_fd);
	a->probe = p;
	p->cmd = a;
	r = uv_poll_init(p->loop, &a->poll, a->fd);
	a->poll.data = a;
	if (r < 0) {
		/* The exit will still be reaped; we only lose the output. */
		a->poll_closed = true;
		return 0;
	}
	a->poll_active = true;
	if (uv_poll_start(&a->poll, UV_READABLE, cmd_readable) < 0)
		cmd_close_poll(a);
	return 0;
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
		r = cmd_start(p, &err);
		if (r < 0) {
			(void)strfmt(why, sizeof(why), "command: %s", err ? err : strerror(-r));
			probe_check_done(p, false, why, 0);
		}
		return;
	}
	r = net_start(p, AF_INET, NULL);
	if (r < 0) {
		(void)strfmt(why, sizeof(why), "connect 127.0.0.1:%u: %s", (unsigned)p->port,
			     strerror(-r));
		probe_check_done(p, false, why, 0);
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
	char why[REASON_QUOTE_MAX + 64];
	(void)strfmt(why, sizeof(why), "log line matched: %.*s",
		     (int)MIN(len, (size_t)REASON_QUOTE_MAX), clean);
	probe_check_done(p, true, why, 0);
}

void health_probe_report(HealthProbe *p, bool ok, const char *reason)
{
	if (p)
		probe_check_done(p, ok, reason ? reason : ok ? "ready" : "failed", 0);
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
