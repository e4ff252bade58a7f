/* SPDX-License-Identifier: MIT */
/*
 * `status`: one Status call, then a table or JSON. Kept to that one round trip (plus
 * reading the local config for the project's name) so it stays a few milliseconds.
 * `-w` redraws on every service.state event, and every second for uptimes.
 */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "strutil.h"
#include "time-util.h"

static const char status_help[] =
    "Usage: localctl status [--all] [--json] [-w] [PROJECT]\n\n"
    "Show the services of the project found from the current directory (every project\n"
    "when there is none, or with --all): service, state, health, port, URL, pid, uptime,\n"
    "restarts, and warnings. Does not start locald: exit 3 when it is not running.\n\n"
    "  -a, --all     every project superd knows\n"
    "      --json    machine-readable (shape in ctl/README.md)\n"
    "  -w, --watch   redraw as states change, until Ctrl-C\n";

static bool is_bad_state(int st)
{
	return st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_FAILED ||
	       st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BLOCKED ||
	       st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_UNHEALTHY ||
	       st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BACKOFF;
}

static const char *state_color(int st)
{
	if (st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_RUNNING)
		return ANSI_GREEN;
	if (is_bad_state(st))
		return ANSI_RED;
	if (st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPED ||
	    st == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_EXITED)
		return ANSI_DIM;
	return ANSI_YELLOW;
}

static json_t *service_json(const Locald__V1__ServiceStatus *s)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_t *warnings = json_array(), *deps = json_array();
	for (size_t i = 0; warnings && i < s->n_warnings; i++)
		json_array_append_new(warnings, json_string(s->warnings[i]));
	for (size_t i = 0; deps && i < s->n_depends_on; i++)
		json_array_append_new(deps, json_string(s->depends_on[i]));
	json_t *last_exit = json_null();
	if (s->last_exit) {
		const Locald__V1__ExitStatus *e = s->last_exit;
		last_exit =
		    json_pack("{s:o,s:o,s:b,s:I}", "exit_code",
			      e->exited ? json_integer(e->exit_code) : json_null(), "signal",
			      e->exited ? json_null() : json_string(strempty(e->signal_name)),
			      "unknown", (int)e->unknown, "time_usec", (json_int_t)e->time_usec);
	}
	json_object_set_new(o, "name", json_string(s->service));
	json_object_set_new(o, "project", json_string(s->project));
	json_object_set_new(o, "type", json_string(ctl_type_name(s->type)));
	json_object_set_new(o, "state", json_string(ctl_state_name(s->state)));
	json_object_set_new(o, "health", json_string(ctl_health_name(s->health)));
	json_object_set_new(o, "health_check",
			    json_string(ctl_health_source_name(s->health_source)));
	json_object_set_new(o, "health_detail", json_string(strempty(s->health_detail)));
	json_object_set_new(o, "port", s->port ? json_integer(s->port) : json_null());
	json_object_set_new(o, "url", isempty(s->url) ? json_null() : json_string(s->url));
	json_object_set_new(o, "host", isempty(s->host) ? json_null() : json_string(s->host));
	json_object_set_new(o, "pid", s->pid ? json_integer(s->pid) : json_null());
	json_object_set_new(o, "uptime_ms", json_integer((json_int_t)(s->uptime_usec / 1000)));
	json_object_set_new(o, "restarts", json_integer(s->restarts));
	json_object_set_new(o, "reason", json_string(strempty(s->status_reason)));
	json_object_set_new(o, "depends_on", deps ? deps : json_array());
	json_object_set_new(o, "warnings", warnings ? warnings : json_array());
	json_object_set_new(o, "last_exit", last_exit ? last_exit : json_null());
	return o;
}

static json_t *status_json(const Locald__V1__StatusResult *res)
{
	json_t *projects = json_array();
	for (size_t i = 0; projects && i < res->n_projects; i++) {
		const Locald__V1__ProjectStatus *p = res->projects[i];
		json_t *svcs = json_array();
		for (size_t k = 0; svcs && k < p->n_services; k++)
			json_array_append_new(svcs, service_json(p->services[k]));
		json_array_append_new(projects,
				      json_pack("{s:s,s:s,s:s,s:o}", "name", p->name, "domain",
						strempty(p->domain), "path", strempty(p->path),
						"services", svcs ? svcs : json_array()));
	}
	return json_pack("{s:i,s:o}", "version", 1, "projects", projects ? projects : json_array());
}

typedef struct Col {
	const char *title;
	size_t width;
} Col;

enum {
	C_SERVICE,
	C_STATE,
	C_HEALTH,
	C_PORT,
	C_URL,
	C_PID,
	C_UPTIME,
	C_RESTARTS,
	_C_MAX
};

static void service_cells(const Locald__V1__ServiceStatus *s, char cells[_C_MAX][256])
{
	snprintf(cells[C_SERVICE], 256, "%s", s->service);
	snprintf(cells[C_STATE], 256, "%s", ctl_state_name(s->state));
	if (s->health_source == LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_NONE ||
	    s->health_source == 0)
		snprintf(cells[C_HEALTH], 256, "-");
	else
		snprintf(cells[C_HEALTH], 256, "%s (%s)", ctl_health_name(s->health),
			 ctl_health_source_name(s->health_source));
	if (s->port)
		snprintf(cells[C_PORT], 256, "%u", s->port);
	else
		snprintf(cells[C_PORT], 256, "-");
	snprintf(cells[C_URL], 256, "%s", isempty(s->url) ? "-" : s->url);
	if (s->pid)
		snprintf(cells[C_PID], 256, "%u", s->pid);
	else
		snprintf(cells[C_PID], 256, "-");
	if (s->uptime_usec)
		ctl_format_duration(s->uptime_usec, cells[C_UPTIME], 256);
	else
		snprintf(cells[C_UPTIME], 256, "-");
	snprintf(cells[C_RESTARTS], 256, "%u", s->restarts);
}

static void print_table(Ctl *ctl, const Locald__V1__StatusResult *res)
{
	Col cols[_C_MAX] = { { "SERVICE" }, { "STATE" }, { "HEALTH" }, { "PORT" },
			     { "URL" },     { "PID" },   { "UPTIME" }, { "RESTARTS" } };
	char cells[_C_MAX][256];
	for (size_t c = 0; c < _C_MAX; c++)
		cols[c].width = strlen(cols[c].title);
	for (size_t i = 0; i < res->n_projects; i++)
		for (size_t k = 0; k < res->projects[i]->n_services; k++) {
			service_cells(res->projects[i]->services[k], cells);
			for (size_t c = 0; c < _C_MAX; c++)
				cols[c].width = MAX(cols[c].width, strlen(cells[c]));
		}
	if (res->n_projects == 0) {
		printf("no projects: `localctl up` in a project directory starts one\n");
		return;
	}
	for (size_t i = 0; i < res->n_projects; i++) {
		const Locald__V1__ProjectStatus *p = res->projects[i];
		printf("%s%s%s  %s%s%s\n", ctl_color(ctl, false, ANSI_BOLD), p->name,
		       ctl_color(ctl, false, ANSI_RESET), ctl_color(ctl, false, ANSI_DIM),
		       strempty(p->path), ctl_color(ctl, false, ANSI_RESET));
		printf("%s", ctl_color(ctl, false, ANSI_DIM));
		for (size_t c = 0; c < _C_MAX; c++)
			printf("  %-*s", (int)cols[c].width, cols[c].title);
		printf("%s\n", ctl_color(ctl, false, ANSI_RESET));
		for (size_t k = 0; k < p->n_services; k++) {
			const Locald__V1__ServiceStatus *s = p->services[k];
			service_cells(s, cells);
			for (size_t c = 0; c < _C_MAX; c++) {
				bool colored = c == C_STATE;
				printf("  %s%-*s%s",
				       colored ? ctl_color(ctl, false, state_color(s->state)) : "",
				       (int)cols[c].width, cells[c],
				       colored ? ctl_color(ctl, false, ANSI_RESET) : "");
			}
			printf("\n");
			if (!isempty(s->status_reason) &&
			    s->state != LOCALD__V1__SERVICE_STATE__SERVICE_STATE_RUNNING)
				printf("    %s↳ %s%s\n", ctl_color(ctl, false, ANSI_DIM),
				       s->status_reason, ctl_color(ctl, false, ANSI_RESET));
			for (size_t w = 0; w < s->n_warnings; w++)
				printf("    %swarning:%s %s\n", ctl_color(ctl, false, ANSI_YELLOW),
				       ctl_color(ctl, false, ANSI_RESET), s->warnings[w]);
		}
		if (i + 1 < res->n_projects)
			printf("\n");
	}
}

static int draw(Ctl *ctl, const char *project, bool clear)
{
	BusReply *reply = NULL;
	int r = ctl_status(ctl, project, &reply);
	if (r)
		return r;
	if (clear)
		printf("\x1b[H\x1b[2J");
	if (ctl->json)
		r = ctl_print_json(ctl, status_json(reply->status));
	else
		print_table(ctl, reply->status);
	fflush(stdout);
	bus_reply_free(reply);
	return r;
}

typedef struct Watch {
	Ctl *ctl;
	const char *project;
} Watch;

static int watch_refresh(void *userdata)
{
	Watch *w = userdata;
	return draw(w->ctl, w->project, w->ctl->tty_out && !w->ctl->json);
}

/* Redraw on every state change (an event) and each second, until a signal. */
static int watch(Ctl *ctl, const char *project)
{
	_cleanup_free_ char *prefix =
	    project ? strdupf("service.state.%s.", project) : strdup("service.state.");
	if (!prefix)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	Watch w = { ctl, project };
	return ctl_watch(ctl, prefix, "subscribing", watch_refresh, &w);
}

int cmd_status(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{},
	};
	bool all = false, w = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "haw", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			return ctl_usage(ctl, true, status_help);
		case 'a':
			all = true;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'w':
			w = true;
			break;
		default:
			return ctl_usage(ctl, false, status_help);
		}
	if (argc - optind > 1)
		return ctl_usage(ctl, false, status_help);

	_cleanup_free_ char *project = NULL;
	if (optind < argc)
		project = strdup(argv[optind]);
	else if (!all) {
		_cleanup_free_ char *dir = NULL;
		/* In a project: that one. Elsewhere: all of them. */
		if (ctl_find_project_dir(NULL, &dir) >= 0 &&
		    ctl_project_name(ctl, dir, &project) < 0)
			project = NULL;
	}
	BusZmtpClient *cl = NULL;
	int r = ctl_superd(ctl, &cl);
	if (r)
		return r;
	if (!w)
		return draw(ctl, project, false);
	r = draw(ctl, project, ctl->tty_out && !ctl->json);
	if (r)
		return r;
	return watch(ctl, project);
}
