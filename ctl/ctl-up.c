/* SPDX-License-Identifier: MIT */
/*
 * `up` and `down`.
 *
 * up: check the config locally (one error line + hint, before any daemon is involved),
 * start superd if needed, subscribe to the project's events, send ApplyProject(wait)
 * on a second connection, and render progress from service.state events (plus a Status
 * tick, which also covers events sent before our subscription reached superd) while
 * waiting for its reply; one poll(2) loop waits for signals, events, that reply and
 * the tick. When the apply settles: failures, URLs, then either return (-d) or follow
 * the logs until Ctrl-C, which stops the project (StopProject, waited for); a second
 * Ctrl-C exits at once.
 *
 * Logs are read from the store by cursor, an event only says "there is more": the PUB
 * socket may drop events, the store never drops lines, so none is missed or shown twice.
 */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ctl.h"
#include "project.h"
#include "strutil.h"
#include "time-util.h"

static const char up_help[] =
    "Usage: localctl up [-d] [PATH] [SERVICE…]\n\n"
    "Start the project in PATH (default: found from the current directory; a directory,\n"
    "its locald.toml or its Procfile) — all its services, or the SERVICEs named and what\n"
    "they depend on. Starts locald-superd first if it is not running. Shows each\n"
    "service's progress, then the URLs, then follows the logs; Ctrl-C stops the\n"
    "project's services (twice: exit at once, leaving them running).\n\n"
    "  -d, --detach   return once every service is ready (exit 1 if one failed)\n"
    "  -q, --quiet    no progress lines\n";

static const char down_help[] = "Usage: localctl down [--forget] [PATH|PROJECT]\n\n"
				"Stop every service of the project (found from the current "
				"directory, or PATH, or\n"
				"a project name) and wait until they are down.\n\n"
				"      --forget   also remove the project from locald's list\n";

typedef enum Phase {
	PHASE_APPLYING,
	PHASE_FOLLOWING,
	PHASE_STOPPING,
} Phase;

typedef struct Row {
	char *name;
	int state;
	char text[320];
	usec_t ready_at; /* monotonic, 0 until ready */
	bool printed;    /* non-TTY: text printed */
} Row;

typedef struct Up {
	Ctl *ctl;
	BusZmtpClient *client;
	BusZmtpClient *async; /* ApplyProject, then StopProject: replies awaited in the loop */
	BusZmtpSubscriber *sub;
	CtlSignals sig;
	usec_t tick_usec, next_tick;
	bool want_logs; /* read the store before polling again */
	bool done;
	char *project;
	char *dir;
	char **only;
	bool detach, tty, quiet;
	usec_t t0, t0_real;
	Phase phase;
	Row *rows;
	size_t n_rows;
	size_t drawn;
	unsigned spin;
	size_t width;
	size_t cols; /* terminal width */
	LogPrinter printer;
	char *cursor;
	bool log_started;
	int rc;
} Up;

static bool state_failed(int st)
{
	return st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_FAILED ||
	       st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BLOCKED;
}

static void phase_text(const Locald__V1__ServiceStatus *s, char *buf, size_t size)
{
	const char *reason = strempty(s->status_reason);
	switch (s->state) {
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_WAITING:
		snprintf(buf, size, "waiting for deps%s%s", *reason ? ": " : "", reason);
		break;
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BUILDING:
		snprintf(buf, size, "building");
		break;
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STARTING:
		if (s->pid && s->health_source != LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_NONE &&
		    s->health_source != 0)
			snprintf(buf, size, "checking health (%s)",
				 ctl_health_source_name(s->health_source));
		else
			snprintf(buf, size, "starting");
		break;
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_RUNNING:
		snprintf(buf, size, "ready");
		break;
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_EXITED:
		snprintf(buf, size, "done (exited 0)");
		break;
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BACKOFF:
		snprintf(buf, size, "restarting%s%s", *reason ? ": " : "", reason);
		break;
	default:
		snprintf(buf, size, "%s%s%s", ctl_state_name(s->state), *reason ? ": " : "",
			 reason);
		break;
	}
}

static Row *row_find(Up *u, const char *name)
{
	for (size_t i = 0; i < u->n_rows; i++)
		if (streq(u->rows[i].name, name))
			return &u->rows[i];
	return NULL;
}

static Row *row_get(Up *u, const char *name)
{
	for (size_t i = 0; i < u->n_rows; i++)
		if (streq(u->rows[i].name, name))
			return &u->rows[i];
	Row *rows = realloc(u->rows, (u->n_rows + 1) * sizeof(Row));
	if (!rows)
		return NULL;
	u->rows = rows;
	Row *r = &rows[u->n_rows];
	*r = (Row){ .name = strdup(name) };
	if (!r->name)
		return NULL;
	u->n_rows++;
	u->width = MAX(u->width, strlen(name));
	return r;
}

static bool wanted(Up *u, const Locald__V1__ServiceStatus *s)
{
	if (!u->only)
		return true;
	return strv_contains(u->only, s->service) ||
	       s->state != LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPED;
}

/* Cut s to at most n bytes on a UTF-8 boundary, ending in "…" when cut. */
static void utf8_cut(char *s, size_t n)
{
	if (n < 4)
		n = 4;
	size_t i = n - 3;
	while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
		i--;
	memcpy(s + i, "…", sizeof("…"));
}

static void render_row_line(Up *u, const Row *r, bool final)
{
	Ctl *ctl = u->ctl;
	static const char *const spinner[] = { "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏" };
	const char *mark, *color;
	if (r->state == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_RUNNING ||
	    r->state == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_EXITED)
		mark = "✓", color = ANSI_GREEN;
	else if (state_failed(r->state))
		mark = "✗", color = ANSI_RED;
	else
		mark = u->tty ? spinner[u->spin % ELEMENTSOF(spinner)] : "·", color = ANSI_YELLOW;
	char elapsed[32];
	usec_t end = r->ready_at ? r->ready_at : now_monotonic();
	ctl_format_duration(end - u->t0, elapsed, sizeof(elapsed));
	if (u->tty) {
		/* Cut to the terminal's usual width so a long reason does not wrap and break
		 * the in-place redraw. */
		char text[sizeof(r->text)];
		strscpy(text, sizeof(text), r->text);
		/* The mark, name and time take width + 12 columns; the text gets the rest. */
		size_t room = u->cols > u->width + 14 ? u->cols - u->width - 13 : 10;
		if (strlen(text) > room)
			utf8_cut(text, room);
		printf("\r\x1b[2K %s%s%s %-*s  %s%-6s%s %s\n", ctl_color(ctl, false, color), mark,
		       ctl_color(ctl, false, ANSI_RESET), (int)u->width, r->name,
		       ctl_color(ctl, false, ANSI_DIM), elapsed, ctl_color(ctl, false, ANSI_RESET),
		       text);
	} else
		printf("%s %-*s  %-6s %s\n", mark, (int)u->width, r->name, elapsed, r->text);
	(void) final;
}

static void render(Up *u)
{
	if (u->quiet)
		return;
	if (u->tty) {
		if (u->drawn)
			printf("\x1b[%zuA", u->drawn);
		for (size_t i = 0; i < u->n_rows; i++)
			render_row_line(u, &u->rows[i], false);
		u->drawn = u->n_rows;
	} else {
		for (size_t i = 0; i < u->n_rows; i++)
			if (!u->rows[i].printed) {
				render_row_line(u, &u->rows[i], false);
				u->rows[i].printed = true;
			}
	}
	fflush(stdout);
}

static void update_row(Up *u, const Locald__V1__ServiceStatus *s)
{
	if (!wanted(u, s))
		return;
	Row *r = row_get(u, s->service);
	if (!r)
		return;
	char text[sizeof(r->text)];
	phase_text(s, text, sizeof(text));
	if (s->state == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_RUNNING ||
	    s->state == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_EXITED) {
		if (!r->ready_at)
			r->ready_at = now_monotonic();
	} else
		r->ready_at = 0;
	if (!streq(text, r->text) || r->state != (int)s->state)
		r->printed = false;
	r->state = s->state;
	snprintf(r->text, sizeof(r->text), "%s", text);
}

static void update_from_project(Up *u, const Locald__V1__ProjectStatus *p)
{
	for (size_t i = 0; p && i < p->n_services; i++)
		update_row(u, p->services[i]);
}

static void poll_status(Up *u)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Status st = LOCALD__V1__STATUS__INIT;
	st.project = u->project;
	req.call_case = LOCALD__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	BusReply *reply = NULL;
	if (bus_zmtp_client_call(u->client, &req, 2000, &reply) < 0)
		return;
	if (reply->result_case == LOCALD__V1__REPLY__RESULT_STATUS && reply->status->n_projects)
		update_from_project(u, reply->status->projects[0]);
	bus_reply_free(reply);
}

/* ---- logs ---- */

static void fetch_logs(Up *u)
{
	for (int pages = 0; pages < 100; pages++) {
		BusRequest req = LOCALD__V1__REQUEST__INIT;
		Locald__V1__Logs lg = LOCALD__V1__LOGS__INIT;
		lg.project = u->project;
		lg.cursor = u->cursor ? u->cursor : (char *)"";
		lg.since_usec = u->cursor ? 0 : (int64_t)u->t0_real;
		lg.limit = 1000;
		req.call_case = LOCALD__V1__REQUEST__CALL_LOGS;
		req.logs = &lg;
		BusReply *reply = NULL;
		int r = bus_zmtp_client_call(u->client, &req, 5000, &reply);
		if ((r == -ECONNREFUSED || r == -ENOENT || r == -ECONNRESET) &&
		    u->phase == PHASE_FOLLOWING) {
			/* `localctl server stop` elsewhere: superd stopped the services too. */
			u->rc = ctl_fail(u->ctl, EXIT_UNREACHABLE, "`localctl up` starts it again",
					 "locald-superd stopped");
			u->done = true;
			return;
		}
		if (r < 0)
			return;
		if (reply->result_case != LOCALD__V1__REPLY__RESULT_LOGS) {
			bus_reply_free(reply);
			return;
		}
		const Locald__V1__LogsResult *res = reply->logs;
		for (size_t i = 0; i < res->n_lines; i++)
			log_printer_print(&u->printer, res->lines[i]);
		if (!isempty(res->next_cursor)) {
			char *c = strdup(res->next_cursor);
			if (c) {
				free(u->cursor);
				u->cursor = c;
			}
		}
		bool more = res->more;
		bus_reply_free(reply);
		fflush(stdout);
		if (!more)
			return;
	}
	/* Still more: come back on the next iteration rather than block the loop. */
	u->want_logs = true;
}

/* ---- events, ticks, signals ---- */

/* Is every service we started stopped (by someone else)? */
static bool all_stopped(Up *u)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Status st = LOCALD__V1__STATUS__INIT;
	st.project = u->project;
	req.call_case = LOCALD__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	BusReply *reply = NULL;
	if (bus_zmtp_client_call(u->client, &req, 2000, &reply) < 0)
		return false;
	bool all = reply->result_case == LOCALD__V1__REPLY__RESULT_STATUS &&
		   reply->status->n_projects == 1;
	const Locald__V1__ProjectStatus *p = all ? reply->status->projects[0] : NULL;
	for (size_t i = 0; p && i < p->n_services; i++) {
		const Locald__V1__ServiceStatus *s = p->services[i];
		bool ours = !u->only || row_find(u, s->service);
		if (ours && s->state != LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPED)
			all = false;
	}
	bus_reply_free(reply);
	return all;
}

static void on_event(Up *u, const BusEvent *ev)
{
	if (ev->payload_case == LOCALD__V1__EVENT__PAYLOAD_SERVICE_STATE_CHANGED &&
	    ev->service_state_changed->service && u->phase == PHASE_APPLYING) {
		update_row(u, ev->service_state_changed->service);
		render(u);
	} else if (ev->payload_case == LOCALD__V1__EVENT__PAYLOAD_SERVICE_STATE_CHANGED &&
		   ev->service_state_changed->service && u->phase == PHASE_FOLLOWING &&
		   ev->service_state_changed->service->state ==
		       LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPED &&
		   all_stopped(u)) {
		/* `localctl down` (or stop) elsewhere: nothing left to follow. */
		fetch_logs(u);
		if (!u->quiet)
			fprintf(stderr, "every service of %s was stopped\n", u->project);
		u->rc = EXIT_OK;
		u->done = true;
	} else if (ev->payload_case == LOCALD__V1__EVENT__PAYLOAD_LOG_LINE && u->log_started)
		/* A burst of events becomes one read, after the loop drained them. */
		u->want_logs = true;
}

static void on_tick(Up *u)
{
	if (u->phase == PHASE_APPLYING) {
		u->spin++;
		poll_status(u);
		render(u);
	} else if (u->log_started)
		fetch_logs(u); /* a safety net for dropped events; the store has every line */
}

static void on_stopped(Up *u, int error, const BusReply *reply)
{
	if (u->log_started)
		fetch_logs(u);
	const BusErrorMessage *e = reply ? bus_reply_get_error(reply) : NULL;
	if (error < 0)
		u->rc = ctl_fail(u->ctl, EXIT_UNREACHABLE, "`localctl status` shows what is left",
				 "stopping %s: %s", u->project, strerror(-error));
	else if (e)
		u->rc = ctl_fail_reply(u->ctl, e, "stopping");
	else {
		if (!u->quiet)
			fprintf(stderr, "%s stopped\n", u->project);
		u->rc = EXIT_OK;
	}
	u->done = true;
}

static void stop_project(Up *u)
{
	u->phase = PHASE_STOPPING;
	if (u->tty)
		printf("\r\x1b[2K");
	fflush(stdout);
	fprintf(stderr, "stopping %s … (Ctrl-C again to exit at once)\n", u->project);
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__StopProject sp = LOCALD__V1__STOP_PROJECT__INIT;
	sp.project = u->project;
	req.call_case = LOCALD__V1__REQUEST__CALL_STOP_PROJECT;
	req.stop_project = &sp;
	int r = bus_zmtp_client_send(u->async, &req, 120000);
	if (r < 0) {
		u->rc = ctl_fail(u->ctl, EXIT_UNREACHABLE, NULL, "stopping %s: %s", u->project,
				 strerror(-r));
		u->done = true;
	}
}

static void on_signal(Up *u, int signo)
{
	if (u->phase == PHASE_STOPPING || u->detach) {
		if (u->tty)
			printf("\n");
		u->rc = 128 + signo;
		u->done = true;
		return;
	}
	stop_project(u);
}

/* ---- after the apply ---- */

/* Is the system project's proxyd (embedded mode) still starting? */
static bool proxyd_starting(Up *u)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Status st = LOCALD__V1__STATUS__INIT;
	st.project = (char *)"system";
	req.call_case = LOCALD__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	BusReply *reply = NULL;
	if (bus_zmtp_client_call(u->client, &req, 2000, &reply) < 0)
		return false;
	bool starting = false;
	if (reply->result_case == LOCALD__V1__REPLY__RESULT_STATUS && reply->status->n_projects) {
		const Locald__V1__ProjectStatus *p = reply->status->projects[0];
		for (size_t i = 0; i < p->n_services; i++)
			if (streq(p->services[i]->service, "proxyd"))
				starting = p->services[i]->state ==
					   LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STARTING;
	}
	bus_reply_free(reply);
	return starting;
}

/* The proxy's ports; while superd is still starting its proxyd (its first start makes
 * the CA, which the shim may be adding to the system store), wait for it, so the URLs
 * printed answer at once. */
static bool proxy_ports(Up *u, uint32_t *https, uint32_t *http)
{
	for (int i = 0; i < 300; i++) {
		if (ctl_proxy_ports(u->ctl, https, http) >= 0 && (*https || *http))
			return true;
		if (u->done || !proxyd_starting(u))
			return false;
		(void)poll(NULL, 0, 100);
	}
	return false;
}

static void print_urls(Up *u, const Locald__V1__ProjectStatus *p)
{
	Ctl *ctl = u->ctl;
	size_t n = 0, width = 0;
	for (size_t i = 0; i < p->n_services; i++)
		if (!isempty(p->services[i]->url) && wanted(u, p->services[i]) &&
		    !state_failed(p->services[i]->state)) {
			n++;
			width = MAX(width, strlen(p->services[i]->service));
		}
	if (!n)
		return;
	uint32_t https = 0, http = 0;
	bool proxy = proxy_ports(u, &https, &http);
	printf("\n");
	for (size_t i = 0; i < p->n_services; i++) {
		const Locald__V1__ServiceStatus *s = p->services[i];
		if (isempty(s->url) || !wanted(u, s) || state_failed(s->state))
			continue;
		_cleanup_free_ char *url = ctl_url_with_port(s->url, proxy ? https : 0);
		printf("  %-*s  %s%s%s", (int)width, s->service, ctl_color(ctl, false, ANSI_BOLD),
		       url ? url : s->url, ctl_color(ctl, false, ANSI_RESET));
		if (s->port)
			printf("  %s(http://127.0.0.1:%u)%s", ctl_color(ctl, false, ANSI_DIM),
			       s->port, ctl_color(ctl, false, ANSI_RESET));
		printf("\n");
	}
	if (!proxy)
		printf("  %s(locald-proxyd is not running: the https:// names answer once it "
		       "does; the 127.0.0.1 addresses answer now)%s\n",
		       ctl_color(ctl, false, ANSI_DIM), ctl_color(ctl, false, ANSI_RESET));
}

static int report_failures(Up *u, const Locald__V1__ProjectStatus *p)
{
	int rc = EXIT_OK;
	for (size_t i = 0; i < p->n_services; i++) {
		const Locald__V1__ServiceStatus *s = p->services[i];
		if (!wanted(u, s) || !state_failed(s->state))
			continue;
		/* A blocked service is the consequence; report the cause once. */
		if (s->state == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BLOCKED && rc)
			continue;
		_cleanup_free_ char *hint =
		    strdupf("`localctl logs %s:%s` shows its output; fix it "
			    "and run `localctl up` again",
			    p->name, s->service);
		if (u->detach)
			ctl_fail(u->ctl, EXIT_FAILED, hint, "service \"%s\" %s: %s", s->service,
				 ctl_state_name(s->state), strempty(s->status_reason));
		else
			ctl_warn(u->ctl, "service \"%s\" %s: %s", s->service,
				 ctl_state_name(s->state), strempty(s->status_reason));
		if (s->state == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_FAILED)
			ctl_print_last_lines(u->ctl, u->client, p->name, s->service, 10);
		rc = EXIT_FAILED;
	}
	return rc;
}

static void start_following(Up *u)
{
	u->phase = PHASE_FOLLOWING;
	u->log_started = true;
	if (!u->quiet)
		fprintf(stderr, "%sfollowing logs; Ctrl-C stops %s%s\n",
			ctl_color(u->ctl, true, ANSI_DIM), u->project,
			ctl_color(u->ctl, true, ANSI_RESET));
	u->tick_usec = USEC_PER_SEC;
	u->next_tick = now_monotonic() + u->tick_usec;
	fetch_logs(u);
}

static void on_applied(Up *u, int error, const BusReply *reply)
{
	if (u->phase != PHASE_APPLYING)
		return; /* Ctrl-C came first: we are stopping */
	if (error < 0) {
		u->rc = ctl_fail(u->ctl, EXIT_UNREACHABLE, "`localctl server status` checks it",
				 "locald-superd did not finish applying %s: %s", u->project,
				 strerror(-error));
		u->done = true;
		return;
	}
	const BusErrorMessage *e = bus_reply_get_error(reply);
	if (e) {
		if (u->tty && u->drawn)
			printf("\n");
		u->rc = ctl_fail_reply(u->ctl, e, NULL);
		u->done = true;
		return;
	}
	const Locald__V1__ApplyProjectResult *res = reply->apply_project;
	update_from_project(u, res->project);
	render(u);
	for (size_t i = 0; i < res->n_warnings; i++)
		ctl_warn(u->ctl, "%s", res->warnings[i]);
	int rc = res->project ? report_failures(u, res->project) : EXIT_OK;
	if (res->project)
		print_urls(u, res->project);
	fflush(stdout);
	if (u->detach) {
		u->rc = rc;
		u->done = true;
		return;
	}
	start_following(u);
}

/* ---- setup ---- */

static char *display_path(const char *file)
{
	_cleanup_free_ char *cwd = getcwd(NULL, 0);
	const char *rel = cwd ? startswith(file, cwd) : NULL;
	if (rel && *rel == '/')
		return strdup(rel + 1);
	return strdup(file);
}

/* The config as the user wrote it: one error line + hint, before any daemon is involved. */
static int check_config(Up *u, Ctl *ctl, const char *dir, char **only, char **ret_name,
			size_t *ret_width)
{
	_cleanup_diag_list_ DiagList diags = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	int r = project_load(dir, &p, &diags);
	if (r < 0) {
		diag_list_sort(&diags);
		const Diag *d = NULL;
		for (size_t i = 0; i < diags.n && !d; i++)
			if (diags.items[i].severity == DIAG_ERROR)
				d = &diags.items[i];
		if (!d)
			return ctl_fail(ctl, EXIT_FAILED, NULL, "%s: %s", dir, strerror(-r));
		_cleanup_free_ char *file = d->file ? display_path(d->file) : NULL;
		char more[96] = "";
		if (diags.n_errors > 1)
			snprintf(more, sizeof(more), " (%zu more error%s after this one)",
				 diags.n_errors - 1, diags.n_errors > 2 ? "s" : "");
		_cleanup_free_ char *hint =
		    strdupf("%s%s", d->hint ? d->hint : "fix it and run `localctl up` again", more);
		if (file && d->line)
			return ctl_fail(ctl, EXIT_FAILED, hint, "%s:%u:%u: %s", file, d->line,
					MAX(d->col, 1u), d->message);
		return ctl_fail(ctl, EXIT_FAILED, hint, "%s%s%s", strempty(file), file ? ": " : "",
				d->message);
	}
	STRV_FOREACH (s, only)
		if (!project_find_service(p, *s)) {
			Buf names = BUF_INIT(4096);
			for (size_t i = 0; i < p->n_services; i++)
				buf_printf(&names, "%s%s", i ? ", " : "", p->services[i].name);
			int rc = ctl_fail(ctl, EXIT_NOT_FOUND, names.data,
					  "project %s has no service \"%s\"", p->name, *s);
			buf_done(&names);
			return rc;
		}
	for (size_t i = 0; i < p->n_services; i++) {
		*ret_width = MAX(*ret_width, strlen(p->services[i].name));
		/* Every row from the start (in file order), so the block never changes height. */
		Row *row = only ? NULL : row_get(u, p->services[i].name);
		if (row) {
			strscpy(row->text, sizeof(row->text), "pending");
			row->printed = true; /* plain output: only real progress */
		}
	}
	*ret_name = strdup(p->name);
	return *ret_name ? 0 : ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
}

static int send_apply(Up *u)
{
	_cleanup_(ctl_env_done) CtlEnv env = {};
	int r = ctl_env_build(&env);
	if (r < 0)
		return r;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__ApplyProject ap = LOCALD__V1__APPLY_PROJECT__INIT;
	ap.path = u->dir;
	ap.wait = true;
	ap.n_environment = env.n;
	ap.environment = env.ptrs;
	ap.n_services = strv_length(u->only);
	ap.services = u->only;
	req.call_case = LOCALD__V1__REQUEST__CALL_APPLY_PROJECT;
	req.apply_project = &ap;
	/* superd gives up on a call after 5 minutes; wait a little longer than that. */
	return bus_zmtp_client_send(u->async, &req, 310000);
}

/* The loop: until a handler sets done. */
static void up_run(Up *u)
{
	while (!u->done) {
		struct pollfd p[3] = {
			{ .fd = u->sig.fd, .events = POLLIN },
			{ .fd = u->sub ? bus_zmtp_subscriber_fd(u->sub) : -1, .events = POLLIN },
			{ .fd =
			      bus_zmtp_client_pending(u->async) ? bus_zmtp_client_fd(u->async) : -1,
			  .events = POLLIN },
		};
		int timeout = u->want_logs ? 0 : ctl_ms_until(u->next_tick);
		if (poll(p, ELEMENTSOF(p), timeout) < 0 && errno != EINTR) {
			u->rc = ctl_fail(u->ctl, EXIT_FAILED, NULL, "poll: %s", strerror(errno));
			return;
		}
		if (p[0].revents) {
			int signo = ctl_signals_read(&u->sig);
			if (signo)
				on_signal(u, signo);
		}
		if (!u->done && bus_zmtp_client_pending(u->async)) {
			Phase phase = u->phase;
			BusReply *reply = NULL;
			int r = bus_zmtp_client_receive(u->async, 0, &reply);
			if (r != -EAGAIN) {
				if (phase == PHASE_STOPPING)
					on_stopped(u, MIN(r, 0), reply);
				else
					on_applied(u, MIN(r, 0), reply);
				bus_reply_free(reply);
			}
		}
		while (!u->done && u->sub) {
			BusEvent *ev = NULL;
			bool gap = false;
			int r = bus_zmtp_subscriber_receive(u->sub, 0, &ev, &gap);
			if (r < 0) {
				/* Gone with superd: fetch_logs and the tick notice that. */
				if (r != -EAGAIN)
					u->sub = bus_zmtp_subscriber_free(u->sub);
				break;
			}
			if (gap && u->log_started)
				u->want_logs = true;
			on_event(u, ev);
			bus_event_free(ev);
		}
		if (!u->done && now_monotonic() >= u->next_tick) {
			u->next_tick = now_monotonic() + u->tick_usec;
			on_tick(u);
		}
		if (!u->done && u->want_logs) {
			u->want_logs = false;
			if (u->log_started)
				fetch_logs(u);
		}
	}
}

static void up_done(Up *u)
{
	bus_zmtp_subscriber_free(u->sub);
	bus_zmtp_client_free(u->async);
	ctl_signals_close(&u->sig);
	for (size_t i = 0; i < u->n_rows; i++)
		free(u->rows[i].name);
	free(u->rows);
	free(u->project);
	free(u->dir);
	free(u->cursor);
	strv_free(u->only);
	log_printer_done(&u->printer);
}

/* `up web`: a service, unless ./web is a project directory or a config file. */
static bool looks_like_path(const char *a)
{
	_cleanup_free_ char *dir = NULL;
	return strchr(a, '/') || streq(a, ".") || streq(a, "..") ||
	       ctl_find_project_dir(a, &dir) >= 0;
}

int cmd_up(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "detach", no_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{},
	};
	_cleanup_(up_done) Up u = { .ctl = ctl, .rc = EXIT_OK, .quiet = ctl->quiet, .sig.fd = -1 };
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "hdq", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			return ctl_usage(ctl, true, up_help);
		case 'd':
			u.detach = true;
			break;
		case 'q':
			u.quiet = true;
			break;
		default:
			return ctl_usage(ctl, false, up_help);
		}
	const char *path = NULL;
	if (optind < argc && looks_like_path(argv[optind]))
		path = argv[optind++];
	for (; optind < argc; optind++)
		if (strv_extend(&u.only, argv[optind]) < 0)
			return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");

	u.t0 = now_monotonic();
	u.t0_real = now_realtime();
	u.tty = ctl->tty_out;
	struct winsize ws;
	u.cols = u.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 100;
	int r = ctl_find_project_dir(path, &u.dir);
	if (r < 0) {
		_cleanup_free_ char *cwd = getcwd(NULL, 0);
		if (path)
			return ctl_fail(ctl, EXIT_NOT_FOUND,
					"give a project directory, its locald.toml or its Procfile",
					"%s: no locald.toml or Procfile (%s)", path, strerror(-r));
		return ctl_fail(ctl, EXIT_NOT_FOUND, "`localctl init` writes one",
				"no locald.toml or Procfile in %s or its parents", strempty(cwd));
	}
	r = check_config(&u, ctl, u.dir, u.only, &u.project, &u.width);
	if (r)
		return r;

	r = ctl_superd_ensure(ctl, &u.client);
	if (r)
		return r;

	_cleanup_free_ char *ev = NULL, *rpc = NULL;
	if (bus_endpoint(ctl->runtime_dir, "superd", BUS_SOCKET_EVENTS, &ev) < 0 ||
	    bus_endpoint(ctl->runtime_dir, "superd", BUS_SOCKET_RPC, &rpc) < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	r = bus_zmtp_subscriber_new(ev, &u.sub);
	if (r >= 0)
		r = bus_zmtp_client_new(rpc, &u.async);
	_cleanup_free_ char *state_prefix = strdupf("service.state.%s.", u.project);
	_cleanup_free_ char *log_prefix = strdupf("log.%s.", u.project);
	if (r >= 0 && (!state_prefix || !log_prefix))
		r = -ENOMEM;
	if (r >= 0)
		r = bus_zmtp_subscriber_subscribe(u.sub, state_prefix);
	if (r >= 0 && !u.detach)
		r = bus_zmtp_subscriber_subscribe(u.sub, log_prefix);
	/* The terminal closed (SIGHUP): like Ctrl-C, the project's services stop. */
	if (r >= 0)
		r = ctl_signals_open(&u.sig, true);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "setting up: %s", strerror(-r));
	u.tick_usec = (u.tty ? 80 : 250) * USEC_PER_MSEC;
	u.next_tick = now_monotonic() + u.tick_usec;
	u.printer = (LogPrinter){ .ctl = ctl, .width = u.width };

	if (!u.quiet)
		fprintf(stderr, "%sstarting %s (%s)%s\n", ctl_color(ctl, true, ANSI_DIM), u.project,
			u.dir, ctl_color(ctl, true, ANSI_RESET));
	r = send_apply(&u);
	if (r < 0)
		return ctl_fail(ctl, EXIT_UNREACHABLE, NULL, "applying %s: %s", u.project,
				strerror(-r));
	up_run(&u);
	return u.rc;
}

/* ---- down ---- */

int cmd_down(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "forget", no_argument, NULL, 'f' },
		{},
	};
	bool forget = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			return ctl_usage(ctl, true, down_help);
		case 'f':
			forget = true;
			break;
		default:
			return ctl_usage(ctl, false, down_help);
		}
	if (argc - optind > 1)
		return ctl_usage(ctl, false, down_help);
	_cleanup_free_ char *name = NULL;
	const char *arg = optind < argc ? argv[optind] : NULL;
	int r;
	if (arg && !looks_like_path(arg))
		name = strdup(arg);
	else {
		r = ctl_current_project(ctl, arg, &name, NULL);
		if (r)
			return r;
	}
	if (!name)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	BusZmtpClient *cl = NULL;
	r = ctl_superd(ctl, &cl);
	if (r)
		return r;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__StopProject sp = LOCALD__V1__STOP_PROJECT__INIT;
	Locald__V1__ForgetProject fp = LOCALD__V1__FORGET_PROJECT__INIT;
	if (forget) {
		fp.project = name;
		req.call_case = LOCALD__V1__REQUEST__CALL_FORGET_PROJECT;
		req.forget_project = &fp;
	} else {
		sp.project = name;
		req.call_case = LOCALD__V1__REQUEST__CALL_STOP_PROJECT;
		req.stop_project = &sp;
	}
	BusReply *reply = NULL;
	r = ctl_call_ok(ctl, cl, &req, 120000, &reply);
	if (r)
		return r;
	bus_reply_free(reply);
	if (!ctl->quiet)
		printf("%s %s\n", name, forget ? "stopped and forgotten" : "stopped");
	return EXIT_OK;
}
