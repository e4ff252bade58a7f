/* SPDX-License-Identifier: MIT */
/* One service's life: spawn, output capture, health, exit, restart, stop. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include "buf.h"
#include "paths.h"
#include "parse-util.h"
#include "strutil.h"
#include "superd-cgroup.h"
#include "superd-ports.h"
#include "superd-unit.h"

static const char *const unit_state_names[_UNIT_STATE_MAX] = {
	[UNIT_STOPPED] = "stopped",   [UNIT_WAITING] = "waiting", [UNIT_BUILDING] = "building",
	[UNIT_STARTING] = "starting", [UNIT_RUNNING] = "running", [UNIT_UNHEALTHY] = "unhealthy",
	[UNIT_STOPPING] = "stopping", [UNIT_BACKOFF] = "backoff", [UNIT_FAILED] = "failed",
	[UNIT_EXITED] = "exited",     [UNIT_BLOCKED] = "blocked",
};

const char *unit_state_to_string(UnitState s)
{
	return s >= 0 && s < _UNIT_STATE_MAX ? unit_state_names[s] : NULL;
}

static void close_free_cb(uv_handle_t *h)
{
	free(h);
}

void uv_handle_close_free(uv_handle_t *h)
{
	if (h && !uv_is_closing(h))
		uv_close(h, close_free_cb);
}

uv_timer_t *uv_timer_new(uv_loop_t *loop, void *data)
{
	uv_timer_t *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	uv_timer_init(loop, t);
	t->data = data;
	return t;
}

static void log_line_cb(void *userdata, LogService *svc, const LogRecord *rec);

Unit *unit_new(EngineProject *p, const char *name)
{
	Unit *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->project = p;
	u->name = strdup(name);
	u->pidfd = -1;
	for (size_t i = 0; i < UNIT_OUTPUTS; i++)
		u->out[i] = (UnitOutput){ .unit = u, .fd = -1 };
	u->timer = uv_timer_new(p->engine->loop, u);
	u->port_timer = uv_timer_new(p->engine->loop, u);
	u->health_source = "none";
	if (!u->name || !u->timer || !u->port_timer) {
		unit_free(u);
		return NULL;
	}
	if (logstore_open(p->engine->logs, p->name, name, &u->log) < 0) {
		unit_free(u);
		return NULL;
	}
	logstore_set_on_line(u->log, log_line_cb, u);
	return u;
}

static void pidfd_close(Unit *u)
{
	if (u->pidfd_poll) {
		uv_poll_stop(u->pidfd_poll);
		uv_handle_close_free((uv_handle_t *)u->pidfd_poll);
		u->pidfd_poll = NULL;
	}
	u->pidfd = safe_close(u->pidfd);
}

void unit_free(Unit *u)
{
	if (!u)
		return;
	Engine *e = u->project->engine;
	if (u->pid > 0 && e->reaper)
		child_reaper_unwatch(e->reaper, u->pid);
	for (size_t i = 0; i < UNIT_OUTPUTS; i++)
		unit_output_close(&u->out[i]);
	pidfd_close(u);
	health_probe_free(u->probe);
	notify_socket_free(u->notify);
	uv_handle_close_free((uv_handle_t *)u->timer);
	uv_handle_close_free((uv_handle_t *)u->port_timer);
	logstore_close(u->log);
	free(u->name);
	free(u->fingerprint);
	free(u->reason);
	free(u->cgroup);
	free(u->health_detail);
	free(u->status_text);
	free(u->url);
	strv_free(u->warnings);
	strv_free(u->env);
	free(u);
}

bool unit_has_process(const Unit *u)
{
	return u->pid > 0;
}

static void unit_vnote(Unit *u, const char *fmt, va_list ap)
{
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	logstore_append(u->log, LOG_STREAM_SYSTEM, line, strlen(line), now_realtime());
}

void unit_note(Unit *u, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	unit_vnote(u, fmt, ap);
	va_end(ap);
}

void unit_set_state(Unit *u, UnitState state, const char *fmt, ...)
{
	UnitState previous = u->state;
	char reason[1024] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(reason, sizeof(reason), fmt, ap);
		va_end(ap);
	}
	if (previous == state && streq(reason, strempty(u->reason)))
		return;
	free(u->reason);
	u->reason = *reason ? strdup(reason) : NULL;
	u->state = state;
	if (previous != state)
		unit_note(u, "%s%s%s", unit_state_to_string(state), *reason ? ": " : "", reason);

	Engine *e = u->project->engine;
	if (e->cb.state_changed)
		e->cb.state_changed(e->cb.userdata, u, previous, reason);
	engine_request_save(e);
	engine_project_schedule(u->project);
}

/* The last few lines a service wrote, for failure reasons. */
static char *last_lines(Unit *u)
{
	_cleanup_buf_ Buf b = BUF_INIT(4096);
	_cleanup_log_read_result_ LogReadResult res = { 0 };
	LogFilter f = { .stream_mask = LOG_STREAM_MASK(LOG_STREAM_STDOUT) |
				       LOG_STREAM_MASK(LOG_STREAM_STDERR) };
	if (logstore_tail(u->log, UNIT_LAST_LINES, &f, &res) < 0 || res.n_records == 0)
		return NULL;
	(void)buf_append_str(&b, "; last output:");
	for (size_t i = 0; i < res.n_records; i++) {
		(void)buf_append_str(&b, " | ");
		(void)buf_append(&b, res.records[i].data, MIN(res.records[i].len, (size_t)200));
	}
	/* One line: a reason is shown on one line in status and errors. */
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20)
			b.data[i] = ' ';
	return buf_steal(&b, NULL);
}

static void log_line_cb(void *userdata, LogService *svc, const LogRecord *rec)
{
	Unit *u = userdata;
	if (u->probe && rec->stream != LOG_STREAM_SYSTEM)
		health_probe_feed_line(u->probe, rec->data, rec->len);
	Engine *e = u->project->engine;
	if (e->cb.log_line)
		e->cb.log_line(e->cb.userdata, u, rec);
}

/* ---- warnings ---- */

static void unit_set_warning(Unit *u, const char *prefix, const char *text)
{
	/* one warning per prefix: replace an older one */
	char **w = u->warnings;
	for (size_t i = 0; w && w[i]; i++)
		if (startswith(w[i], prefix)) {
			if (text && streq(w[i], text))
				return;
			free(w[i]);
			memmove(&w[i], &w[i + 1], sizeof(char *) * (strv_length(&w[i + 1]) + 1));
			break;
		}
	if (text)
		(void)strv_extend(&u->warnings, text);
}

/* The service listens, but not on $PORT: say so (the proxy would never reach it). */
static void unit_check_ports(Unit *u)
{
	if (u->pid <= 0 || u->port == 0)
		return;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n_pids = 0;
	if (!u->cgroup || cgroup_get_pids(u->cgroup, &pids, &n_pids) < 0 || n_pids == 0) {
		free(pids);
		pids = malloc(sizeof(pid_t));
		if (!pids)
			return;
		pids[0] = u->pid;
		n_pids = 1;
	}
	_cleanup_free_ PortListener *l = NULL;
	size_t n = 0;
	if (ports_listening_for_pids(pids, n_pids, &l, &n) < 0)
		return;
	bool on_port = false;
	for (size_t i = 0; i < n; i++)
		on_port |= l[i].port == u->port;
	if (n == 0 || on_port) {
		unit_set_warning(u, "listening on ", NULL);
		return;
	}
	char text[256];
	strfmt(text, sizeof(text), "listening on %u but $PORT is %u", (unsigned)l[0].port,
	       (unsigned)u->port);
	unit_set_warning(u, "listening on ", text);
	unit_note(u, "warning: %s (the proxy sends traffic to $PORT)", text);
}

static void on_port_timer(uv_timer_t *t)
{
	unit_check_ports(t->data);
}

/* ---- health ---- */

static void on_health(HealthProbe *p, const HealthResult *r, void *userdata)
{
	Unit *u = userdata;
	u->health = r->state;
	u->health_known = true;
	u->health_source = r->source;
	free(u->health_detail);
	u->health_detail = r->reason ? strdup(r->reason) : NULL;

	if (r->state == HEALTH_HEALTHY) {
		u->healthy_mono = now_monotonic();
		if (u->state == UNIT_STARTING || u->state == UNIT_UNHEALTHY) {
			/* A tcp or http check has just reached $PORT, and the port timer looks
			 * closer later: a scan here walks the kernel's whole TCP table
			 * (milliseconds) while the services after this one wait. */
			if (!streq(r->source, "tcp") && !streq(r->source, "http"))
				unit_check_ports(u);
			unit_set_state(u, UNIT_RUNNING, "%s check passed", r->source);
		}
		return;
	}
	if (r->state != HEALTH_UNHEALTHY)
		return;
	u->healthy_mono = 0;
	if (u->state == UNIT_STARTING) {
		unit_check_ports(u);
		_cleanup_free_ char *tail = last_lines(u);
		unit_set_state(u, UNIT_STARTING, "never became ready: %s%s", strempty(r->reason),
			       strempty(tail));
		unit_stop(u, STOP_NEVER_READY);
	} else if (u->state == UNIT_RUNNING) {
		unit_set_state(u, UNIT_UNHEALTHY, "%s", strempty(r->reason));
		if (u->svc && u->svc->restart.policy != RESTART_NO)
			unit_stop(u, STOP_LIVENESS);
	}
}

static void on_notify(NotifySocket *ns, const NotifyMessage *msg, const char *rejected,
		      void *userdata)
{
	Unit *u = userdata;
	if (rejected) {
		unit_note(u, "ignored a notification: %s", rejected);
		return;
	}
	if (msg->status) {
		free(u->status_text);
		u->status_text = strdup(msg->status);
		Engine *e = u->project->engine;
		if (e->cb.state_changed)
			e->cb.state_changed(e->cb.userdata, u, u->state, u->status_text);
	}
	if (msg->ready && u->probe)
		health_probe_report(u->probe, true, "READY=1");
}

static HealthKind health_kind_for(const Service *s)
{
	switch (s->health_check.type) {
	case HEALTH_CHECK_HTTP:
		return HEALTH_KIND_HTTP;
	case HEALTH_CHECK_TCP:
		return HEALTH_KIND_TCP;
	case HEALTH_CHECK_COMMAND:
		return HEALTH_KIND_COMMAND;
	case HEALTH_CHECK_NOTIFY:
		return HEALTH_KIND_NOTIFY;
	case HEALTH_CHECK_LOG:
		return HEALTH_KIND_LOG;
	default:
		return service_has_port(s) ? HEALTH_KIND_TCP : _HEALTH_KIND_INVALID;
	}
}

static int unit_start_probe(Unit *u, char **ret_error)
{
	const Service *s = u->svc;
	const HealthCheck *hc = &s->health_check;
	HealthKind kind = health_kind_for(s);
	if (kind < 0) {
		/* nothing to check: running is ready */
		u->health_source = "none";
		return 0;
	}
	HealthConfig c = {
		.kind = kind,
		.port = u->port,
		.path = hc->path,
		.command = hc->command,
		.envp = u->env,
		.workdir = s->workdir,
		.ready_log_line = hc->ready_log_line,
		.interval_ms = hc->interval_ms,
		.timeout_ms = hc->timeout_ms,
		.retries = hc->retries,
		.start_timeout_ms = hc->start_timeout_ms,
		.start_period_ms = hc->start_period_ms,
		.liveness = hc->liveness,
	};
	Engine *e = u->project->engine;
	int r = health_probe_new(e->loop, e->reaper, &c, on_health, u, &u->probe, ret_error);
	if (r < 0)
		return r;
	u->health_source = health_kind_to_string(kind);
	return health_probe_start(u->probe);
}

/* ---- exit ---- */

static void on_backoff_timer(uv_timer_t *t)
{
	Unit *u = t->data;
	if (u->state == UNIT_BACKOFF)
		unit_set_state(u, UNIT_WAITING, "restarting");
}

static void unit_kill_leftovers(Unit *u, pid_t pgid)
{
	if (u->cgroup)
		(void)cgroup_kill(u->cgroup);
	if (pgid > 0)
		(void)spawn_kill_group(pgid, SIGKILL);
}

static void unit_exited(Unit *u, bool status_known, int status)
{
	pid_t pgid = u->pid;
	Engine *e = u->project->engine;

	u->pid = 0;
	u->adopted = false;
	pidfd_close(u);
	u->has_exit = true;
	u->exit_status_unknown = !status_known;
	u->exit_status = status;
	u->exit_time = now_realtime();
	uv_timer_stop(u->timer);
	uv_timer_stop(u->port_timer);
	u->probe = health_probe_free(u->probe);
	u->health_known = false;

	/* What it wrote just before dying belongs before the "exited" line. */
	for (size_t i = 0; i < UNIT_OUTPUTS; i++)
		if (u->out[i].fd >= 0 && !unit_output_drain(&u->out[i], 64))
			unit_output_close(&u->out[i]);
	logstore_flush_partial(u->log, now_realtime());

	/* Whatever it left behind dies with it: a restart must not meet a stale copy. */
	unit_kill_leftovers(u, pgid);

	char how[128];
	if (status_known)
		spawn_describe_status(status, how, sizeof(how));
	else
		strscpy(how, sizeof(how), "exited (status unknown: started by an earlier superd)");
	bool clean = status_known && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	StopCause cause = u->stop_cause;
	u->stop_cause = STOP_NONE;

	if (cause == STOP_REQUESTED || !u->svc) {
		unit_set_state(u, UNIT_STOPPED, "%s", how);
		return;
	}
	if (cause == STOP_NEVER_READY) {
		/* the reason was set when the probe gave up */
		_cleanup_free_ char *why = u->reason ? strdup(u->reason) : NULL;
		unit_set_state(u, UNIT_FAILED, "%s", why ? why : "never became ready");
		return;
	}

	const RestartConfig *rc = &u->svc->restart;
	bool restart =
	    u->wanted && (rc->policy == RESTART_ALWAYS ||
			  (rc->policy == RESTART_ON_FAILURE && (!clean || cause == STOP_LIVENESS)));
	_cleanup_free_ char *tail = clean ? NULL : last_lines(u);
	if (!restart) {
		if (clean && cause != STOP_LIVENESS)
			unit_set_state(u, UNIT_EXITED, "%s", how);
		else
			unit_set_state(u, UNIT_FAILED, "%s%s", how, strempty(tail));
		return;
	}

	/* A run that stayed healthy long enough ends the crash loop. */
	if (u->healthy_mono && now_monotonic() - u->healthy_mono >= UNIT_HEALTHY_RESET_USEC)
		u->restarts_in_row = 0;
	u->healthy_mono = 0;
	if (rc->max_restarts > 0 && u->restarts_in_row >= rc->max_restarts) {
		unit_set_state(u, UNIT_FAILED, "crash loop: %s after %u restarts in a row%s", how,
			       (unsigned)u->restarts_in_row, strempty(tail));
		return;
	}
	uint64_t delay = rc->backoff_ms;
	for (uint32_t i = 0; i < u->restarts_in_row && delay < rc->max_backoff_ms; i++)
		delay *= 2;
	delay = MIN(delay, rc->max_backoff_ms ? rc->max_backoff_ms : delay);
	u->restarts_in_row++;
	u->restarts++;
	uv_timer_start(u->timer, on_backoff_timer, delay, 0);
	unit_set_state(u, UNIT_BACKOFF, "%s; restarting in %.1fs", how, (double)delay / 1000.0);
	(void)e;
}

static void on_child_exit(pid_t pid, int status, void *userdata)
{
	Unit *u = userdata;
	if (u->pid == pid)
		unit_exited(u, true, status);
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
	Unit *u = h->data;
	unit_exited(u, false, 0);
}

/* ---- start ---- */

static void unit_fail_start(Unit *u, const char *fmt, ...) _printf_(2, 3);
static void unit_fail_start(Unit *u, const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	unit_set_state(u, UNIT_FAILED, "%s", why);
}

/*
 * `sh -c "python3 app.py"` keeps the shell as the service's main process (dash does not
 * exec the last command), so the stop signal and the exit status would be the shell's.
 * A simple command — no lists, pipes, subshells, keywords or leading assignments — runs
 * as `exec <command>` instead; anything else is left to the shell as written.
 */
static char *command_for_shell(const char *cmd)
{
	static const char *const keywords[] = { "if",     "for", "while", "until",   "case",
						"{",      "!",   "[[",    "exec",    "cd",
						"export", "set", "trap",  "function" };
	if (strpbrk(cmd, ";&|()`\n"))
		return strdup(cmd);
	const char *w = cmd + strspn(cmd, " \t");
	size_t n = strcspn(w, " \t");
	if (n == 0 || memchr(w, '=', n))
		return strdup(cmd);
	for (size_t i = 0; i < ELEMENTSOF(keywords); i++)
		if (strlen(keywords[i]) == n && strncmp(w, keywords[i], n) == 0)
			return strdup(cmd);
	return strdupf("exec %s", w);
}

/*
 * A command made only of plain words — letters, digits and `_./-+,:@%^` separated by
 * blanks, nothing the shell would expand, redirect or interpret — is exec'd directly
 * as an argv (PATH lookup like execvp), exactly what `sh -c "exec <command>"` would run,
 * without starting a shell first: half the exec work of every start. NULL = not plain
 * (or out of memory: the shell path then reports that).
 */
static char **plain_command_argv(const char *cmd)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789_./-+,:@%^ \t";
	if (cmd[strspn(cmd, plain)] != 0)
		return NULL;
	char **argv = NULL;
	for (const char *p = cmd;;) {
		p += strspn(p, " \t");
		if (!*p)
			break;
		size_t n = strcspn(p, " \t");
		char *w = strndup(p, n);
		if (!w || strv_push(&argv, w) < 0) {
			free(w);
			strv_free(argv);
			return NULL;
		}
		p += n;
	}
	if (!argv)
		return NULL;
	/* the first word must not look like an assignment or a shell keyword */
	if (strchr(argv[0], '=') || streq(argv[0], "exec") || streq(argv[0], "cd") ||
	    streq(argv[0], "set") || streq(argv[0], "export") || streq(argv[0], "trap")) {
		strv_free(argv);
		return NULL;
	}
	return argv;
}

/*
 * Every run starts in a fresh, empty leaf. Besides hygiene this is needed because on some
 * kernels (seen on 6.18) a leaf that once received `cgroup.kill` SIGKILLs every process
 * later cloned into it with CLONE_INTO_CGROUP. So: kill what is left in the old leaf,
 * remove it, make a new one; if the old one cannot go yet (its processes are still dying),
 * use the next name (<service>.<n>) and leave the old leaf to be removed later.
 */
static int unit_fresh_cgroup(Unit *u)
{
	Engine *e = u->project->engine;
	for (unsigned tries = 0; tries < 16; tries++) {
		if (!u->cgroup) {
			_cleanup_free_ char *leaf =
			    u->cgroup_generation ? strdupf("%s.%u", u->name, u->cgroup_generation)
						 : strdup(u->name);
			if (!leaf)
				return -ENOMEM;
			int r = cgroup_service_create(e->cgroup_base, u->project->name, leaf,
						      &u->cgroup);
			if (r < 0)
				return r;
		}
		/* Whatever is there (ours from before, or an earlier superd's) goes, and the
		 * leaf with it; then a new one is made on the next turn. */
		if (cgroup_is_empty(u->cgroup) == 0)
			(void)cgroup_kill(u->cgroup);
		bool removed = cgroup_service_remove(u->cgroup) >= 0;
		u->cgroup = mfree(u->cgroup);
		if (!removed)
			u->cgroup_generation++;
		_cleanup_free_ char *leaf = u->cgroup_generation
						? strdupf("%s.%u", u->name, u->cgroup_generation)
						: strdup(u->name);
		if (!leaf)
			return -ENOMEM;
		_cleanup_free_ char *path = NULL;
		int r = cgroup_service_create(e->cgroup_base, u->project->name, leaf, &path);
		if (r < 0)
			return r;
		if (cgroup_is_empty(path) == 1) {
			u->cgroup = TAKE_PTR(path);
			return 0;
		}
		u->cgroup = TAKE_PTR(path); /* busy: clean it on the next turn */
	}
	return -EBUSY;
}

void unit_start(Unit *u)
{
	Engine *e = u->project->engine;
	const Service *s = u->svc;
	int r;

	if (!s || unit_has_process(u))
		return;
	switch (s->type) {
	case SERVICE_POSTGRES:
	case SERVICE_CONTAINER:
		unit_fail_start(u,
				"type \"%s\" is not supported yet (hint: run it as a command, "
				"e.g. `command = \"postgres -D data -p $PORT\"`)",
				service_type_to_string(s->type));
		return;
	case SERVICE_SITE:
		/* no process: the proxy serves the directory */
		unit_set_state(u, UNIT_RUNNING, "static site %s", strempty(s->path));
		return;
	default:
		break;
	}

	r = unit_prepare_config(u);
	if (r < 0) {
		unit_fail_start(u, "cannot prepare its environment: %s", strerror(-r));
		return;
	}
	if (s->port) {
		r = port_is_free(s->port);
		if (r == 0) {
			_cleanup_free_ char *holder = NULL;
			port_describe_holder(s->port, &holder);
			unit_fail_start(u, "%s (hint: stop it, or change `port` in %s)",
					holder ? holder : "the fixed port is in use",
					u->project->cfg->config_path);
			return;
		}
	}

	if (e->cgroup_base) {
		r = unit_fresh_cgroup(u);
		if (r < 0)
			unit_note(u, "no cgroup for this service (%s): process group only",
				  strerror(-r));
	}

	if (!u->notify) {
		r = notify_socket_new(e->loop, e->runtime_dir, u->project->name, u->name, on_notify,
				      u, &u->notify);
		if (r < 0)
			unit_note(u, "no $NOTIFY_SOCKET: %s", strerror(-r));
	}

	for (size_t i = 0; i < UNIT_OUTPUTS; i++)
		unit_output_close(&u->out[i]);
	u->paused = false;
	int child_fds[UNIT_OUTPUTS] = { -1, -1 };
	bool fifos = !s->pty;
	if (fifos) {
		r = unit_open_fifos(u, true, child_fds);
		if (r < 0) {
			for (size_t i = 0; i < UNIT_OUTPUTS; i++) {
				safe_close(child_fds[i]);
				unit_output_close(&u->out[i]);
			}
			unit_fail_start(u, "cannot create its output pipes: %s", strerror(-r));
			return;
		}
	}

	_cleanup_strv_free_ char **plain_argv = s->command ? plain_command_argv(s->command) : NULL;
	_cleanup_free_ char *shell_cmd =
	    s->command && !plain_argv ? command_for_shell(s->command) : NULL;
	if (s->command && !plain_argv && !shell_cmd) {
		for (size_t i = 0; i < UNIT_OUTPUTS; i++) {
			safe_close(child_fds[i]);
			unit_output_close(&u->out[i]);
		}
		unit_fail_start(u, "out of memory");
		return;
	}
	SpawnOptions so = {
		.command = shell_cmd,
		.argv = plain_argv ? plain_argv : s->argv,
		.workdir = s->workdir,
		.envp = u->env,
		.notify_socket = u->notify ? notify_socket_address(u->notify) : NULL,
		.output = fifos ? SPAWN_OUTPUT_FDS : SPAWN_OUTPUT_PTY,
		.cgroup = u->cgroup,
		.stdout_fd = child_fds[0],
		.stderr_fd = child_fds[1],
	};
	Spawned sp = SPAWNED_NULL;
	_cleanup_free_ char *error = NULL;
	r = spawn_process(&so, &sp, &error);
	if (r == -ENOEXEC && plain_argv) {
		/* a script without a #! line: the shell runs those itself */
		shell_cmd = command_for_shell(s->command);
		if (shell_cmd) {
			so.command = shell_cmd;
			so.argv = NULL;
			error = mfree(error);
			r = spawn_process(&so, &sp, &error);
		}
	}
	for (size_t i = 0; i < UNIT_OUTPUTS; i++)
		safe_close(child_fds[i]);
	if (r < 0) {
		for (size_t i = 0; i < UNIT_OUTPUTS; i++)
			unit_output_close(&u->out[i]);
		unit_fail_start(u, "%s", error ? error : strerror(-r));
		return;
	}
	r = child_reaper_watch(e->reaper, sp.pid, on_child_exit, u);
	if (r < 0) {
		/* without a watch we would never see it exit: do not let it run unseen */
		spawn_kill_group(sp.pid, SIGKILL);
		spawned_close(&sp);
		unit_fail_start(u, "cannot watch the process: %s", strerror(-r));
		return;
	}
	u->pid = sp.pid;
	u->start_ticks = sp.start_time;
	u->start_time = now_realtime();
	u->start_mono = now_monotonic();
	u->healthy_mono = 0;
	u->stop_signal = s->stop_signal;
	u->stop_timeout_ms = s->stop_timeout_ms;
	u->has_exit = false;
	if (u->notify)
		notify_socket_set_scope(u->notify, u->pid, u->cgroup);
	/* Now, not after SAVE_DELAY_MS: a superd killed in between would forget the process
	 * (and the project, on a first apply), and the next one could neither re-adopt nor
	 * stop it: an orphan. */
	r = engine_state_save(e);
	if (r < 0)
		unit_note(u, "cannot save superd's state: %s", strerror(-r));

	r = 0;
	if (sp.pty_fd >= 0)
		r = unit_output_open(u, 0, TAKE_FD(sp.pty_fd), LOG_STREAM_STDOUT);
	spawned_close(&sp);
	if (r < 0)
		unit_note(u, "cannot capture output: %s", strerror(-r));

	if (u->port)
		unit_note(u, "started pid %d with PORT=%u", (int)u->pid, (unsigned)u->port);
	else
		unit_note(u, "started pid %d", (int)u->pid);

	_cleanup_free_ char *perr = NULL;
	r = unit_start_probe(u, &perr);
	if (r < 0) {
		unit_set_state(u, UNIT_STARTING, "bad health check: %s",
			       perr ? perr : strerror(-r));
		unit_stop(u, STOP_NEVER_READY);
		return;
	}
	engine_request_save(e);
	if (!u->probe) {
		unit_set_state(u, UNIT_RUNNING,
			       "started (no health check: running counts as ready)");
		return;
	}
	if (u->port)
		uv_timer_start(u->port_timer, on_port_timer, UNIT_PORT_CHECK_MS, 0);
	unit_set_state(u, UNIT_STARTING, "waiting for the %s check", u->health_source);
}

/* ---- stop ---- */

static void on_stop_timer(uv_timer_t *t)
{
	Unit *u = t->data;
	if (u->pid <= 0)
		return;
	unit_note(u, "did not stop within %.1fs: sending SIGKILL",
		  (double)u->stop_timeout_ms / 1000.0);
	unit_kill_leftovers(u, u->pid);
}

void unit_stop(Unit *u, StopCause cause)
{
	if (u->state == UNIT_BACKOFF) {
		uv_timer_stop(u->timer);
		unit_set_state(u, UNIT_STOPPED, "restart cancelled");
		return;
	}
	if (!unit_has_process(u)) {
		if (u->state == UNIT_WAITING || u->state == UNIT_BLOCKED ||
		    u->state == UNIT_STARTING || u->state == UNIT_RUNNING ||
		    u->state == UNIT_BUILDING)
			unit_set_state(u, UNIT_STOPPED, "stopped");
		return;
	}
	if (u->state == UNIT_STOPPING) {
		if (cause == STOP_REQUESTED)
			u->stop_cause = STOP_REQUESTED;
		return;
	}
	u->stop_cause = cause;
	u->probe = health_probe_free(u->probe);
	uv_timer_stop(u->port_timer);
	int sig = u->stop_signal > 0 ? u->stop_signal : SIGTERM;
	int r = spawn_kill_group(u->pid, sig);
	if (r == -ESRCH && u->cgroup)
		(void)cgroup_kill(u->cgroup);
	uint64_t timeout = u->stop_timeout_ms ? u->stop_timeout_ms : 5000;
	uv_timer_start(u->timer, on_stop_timer, timeout, 0);
	const char *signame = signal_to_string(sig);
	if (cause == STOP_NEVER_READY) {
		/* The reason says why it never became ready (and its last output): it must
		 * survive to FAILED, which unit_exited() takes from here. */
		unit_note(u, "sent %s", signame ? signame : "signal");
		unit_set_state(u, UNIT_STOPPING, "%s", strempty(u->reason));
		return;
	}
	unit_set_state(u, UNIT_STOPPING, "sent %s%s", signame ? signame : "signal",
		       cause == STOP_LIVENESS ? " (unhealthy)" : "");
}

/* ---- adoption ---- */

int unit_adopt(Unit *u, pid_t pid, uint64_t start_ticks, usec_t start_time)
{
	Engine *e = u->project->engine;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	u->pidfd = fd;
	u->pidfd_poll = calloc(1, sizeof(*u->pidfd_poll));
	if (!u->pidfd_poll)
		return -ENOMEM;
	int r = uv_poll_init(e->loop, u->pidfd_poll, fd);
	if (r < 0) {
		free(TAKE_PTR(u->pidfd_poll));
		return r;
	}
	u->pidfd_poll->data = u;
	uv_poll_start(u->pidfd_poll, UV_READABLE, on_pidfd);
	u->pid = pid;
	u->adopted = true;
	u->start_ticks = start_ticks;
	u->start_time = start_time;
	u->start_mono = now_monotonic();
	u->stop_signal = u->svc ? u->svc->stop_signal : SIGTERM;
	u->stop_timeout_ms = u->svc ? u->svc->stop_timeout_ms : 5000;
	/* Its $NOTIFY_SOCKET died with the last superd: bind the same address again. */
	if (!u->notify && u->svc) {
		r = notify_socket_new(e->loop, e->runtime_dir, u->project->name, u->name, on_notify,
				      u, &u->notify);
		if (r < 0)
			unit_note(u, "no $NOTIFY_SOCKET: %s", strerror(-r));
	}
	if (u->notify)
		notify_socket_set_scope(u->notify, pid, u->cgroup);
	/* Read on where the last superd stopped: what the service wrote meanwhile waited
	 * in the FIFO. (A PTY service cannot be re-attached: its terminal died with superd.) */
	if (!u->svc || !u->svc->pty) {
		r = unit_open_fifos(u, false, NULL);
		if (r < 0)
			unit_note(u, "output of the re-adopted process is lost: %s", strerror(-r));
	}
	unit_note(u, "re-adopted pid %d after a superd restart", (int)pid);

	/*
	 * The health check goes on from where the last superd left it (the caller sets
	 * u->state from the saved state): a service that was not ready yet must become ready
	 * before its dependents start, and liveness keeps watching one that was. A ready
	 * service's notify or log check is not resumed: its READY=1 or line is not coming
	 * again.
	 */
	if (!u->svc)
		return 0;
	r = unit_prepare_config(u); /* its port is kept: it has a process */
	if (r < 0)
		unit_note(u, "cannot compute its environment: %s", strerror(-r));
	HealthKind kind = health_kind_for(u->svc);
	bool ready = u->state != UNIT_STARTING;
	bool active =
	    kind == HEALTH_KIND_TCP || kind == HEALTH_KIND_HTTP || kind == HEALTH_KIND_COMMAND;
	u->health_source = kind >= 0 ? health_kind_to_string(kind) : "none";
	if (!ready || (active && u->svc->health_check.liveness)) {
		_cleanup_free_ char *perr = NULL;
		r = unit_start_probe(u, &perr);
		if (r < 0) {
			unit_note(u, "health check not resumed: %s", perr ? perr : strerror(-r));
			u->probe = health_probe_free(u->probe);
		}
	}
	if (!u->probe)
		u->state = UNIT_RUNNING;
	return 0;
}

/* ---- requests ---- */

int unit_start_request(Unit *u)
{
	if (u->removed || !u->svc)
		return -ENOENT;
	u->wanted = true;
	if (u->state == UNIT_FAILED || u->state == UNIT_BLOCKED || u->state == UNIT_EXITED ||
	    u->state == UNIT_STOPPED) {
		u->restarts = 0;
		u->restarts_in_row = 0;
		unit_set_state(u, UNIT_WAITING, "start requested");
	}
	engine_project_schedule(u->project);
	return 0;
}

int unit_stop_request(Unit *u)
{
	u->wanted = false;
	engine_project_schedule(u->project);
	return 0;
}

int unit_restart_request(Unit *u)
{
	if (u->removed || !u->svc)
		return -ENOENT;
	u->wanted = true;
	u->restarts_in_row = 0;
	if (unit_has_process(u))
		unit_stop(u, STOP_REQUESTED); /* wanted stays: scheduling starts it again */
	else
		return unit_start_request(u);
	return 0;
}
