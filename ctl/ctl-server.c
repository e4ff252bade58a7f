/* SPDX-License-Identifier: MIT */
/* `server status|stop|restart` and `version`: the daemons themselves. */

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "strutil.h"
#include "time-util.h"

static const char server_help[] =
    "Usage: localctl server status|stop|restart [--json]\n\n"
    "  status    is locald-superd (and locald-proxyd) running: pid, version, uptime\n"
    "  stop      stop every service of every project and the daemons\n"
    "  restart   stop, then start locald-superd again (projects are restored)\n";

static const char version_help[] = "Usage: localctl version [--json]\n\n"
				   "Print the version of localctl and of each running daemon.\n";

static const char *const daemons[] = { "superd", "proxyd" };

/* GetVersion of one daemon; NULL reply when it does not answer. */
static BusReply *daemon_version(Ctl *ctl, const char *daemon)
{
	const char *rt = ctl->runtime_dir;
	_cleanup_free_ char *ep = NULL;
	if (bus_endpoint(rt, daemon, BUS_SOCKET_RPC, &ep) < 0)
		return NULL;
	_cleanup_(bus_zmtp_client_freep) BusZmtpClient *c = NULL;
	if (bus_zmtp_client_new(ep, &c) < 0)
		return NULL;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__GetVersion gv = LOCALD__V1__GET_VERSION__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_GET_VERSION;
	req.get_version = &gv;
	BusReply *reply = NULL;
	if (bus_zmtp_client_call(c, &req, 1000, &reply) < 0)
		return NULL;
	if (reply->result_case != LOCALD__V1__REPLY__RESULT_VERSION)
		return bus_reply_free(reply);
	return reply;
}

static void ensure_runtime(Ctl *ctl)
{
	if (!ctl->runtime_dir) {
		BusZmtpClient *c = NULL;
		(void)ctl_superd(ctl, &c); /* computes ctl->runtime_dir */
	}
}

static int show(Ctl *ctl, bool with_ctl)
{
	ensure_runtime(ctl);
	json_t *arr = ctl->json ? json_object() : NULL;
	if (with_ctl) {
		if (arr)
			json_object_set_new(arr, "localctl",
					    json_pack("{s:s}", "version", LOCALD_VERSION));
		else
			printf("localctl %s\n", LOCALD_VERSION);
	}
	bool superd_up = false;
	for (size_t i = 0; i < ELEMENTSOF(daemons); i++) {
		BusReply *reply = daemon_version(ctl, daemons[i]);
		const Locald__V1__Version *v = reply ? reply->version : NULL;
		if (v && streq(daemons[i], "superd"))
			superd_up = true;
		if (arr) {
			json_t *o = v ? json_pack("{s:b,s:s,s:i,s:I,s:I}", "running", 1, "version",
						  strempty(v->version), "api_version",
						  (int)v->api_version, "pid", (json_int_t)v->pid,
						  "start_time_usec", (json_int_t)v->start_time_usec)
				      : json_pack("{s:b}", "running", 0);
			if (v && streq(daemons[i], "proxyd")) {
				uint32_t https = 0, http = 0;
				(void)ctl_proxy_ports(ctl, &https, &http);
				json_object_set_new(o, "https_port",
						    https ? json_integer(https) : json_null());
				json_object_set_new(o, "http_port",
						    http ? json_integer(http) : json_null());
			}
			json_object_set_new(arr, daemons[i], o);
		} else if (v) {
			char up[32];
			usec_t now = now_realtime();
			ctl_format_duration(
			    now > (usec_t)v->start_time_usec ? now - (usec_t)v->start_time_usec : 0,
			    up, sizeof(up));
			printf("locald-%s %s (pid %u, up %s)", daemons[i], v->version, v->pid, up);
			uint32_t https = 0, http = 0;
			if (streq(daemons[i], "proxyd") && ctl_proxy_ports(ctl, &https, &http) >= 0)
				printf(": https on port %u, http on port %u", https, http);
			printf("\n");
		} else
			printf("locald-%s not running\n", daemons[i]);
		bus_reply_free(reply);
	}
	if (arr) {
		json_object_set_new(arr, "runtime_dir", json_string(strempty(ctl->runtime_dir)));
		ctl_print_json(ctl, arr);
	}
	return superd_up ? EXIT_OK : EXIT_UNREACHABLE;
}

int cmd_version(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{},
	};
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			return ctl_usage(ctl, true, version_help);
		case 'j':
			ctl->json = true;
			break;
		default:
			return ctl_usage(ctl, false, version_help);
		}
	/* The daemons not running is no failure for `version`. */
	(void)show(ctl, true);
	return EXIT_OK;
}

/* The projects (by path) and their services that are wanted now. */
typedef struct Running {
	char **paths;
	char ***services; /* parallel to paths */
	size_t n;
} Running;

static void running_done(Running *r)
{
	for (size_t i = 0; i < r->n; i++)
		strv_free(r->services[i]);
	free(r->services);
	strv_free(r->paths);
	*r = (Running){};
}
static inline void running_donep(Running *r)
{
	running_done(r);
}

static bool is_wanted(int st)
{
	return st != LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPED &&
	       st != LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPING &&
	       st != LOCALD__V1__SERVICE_STATE__SERVICE_STATE_EXITED &&
	       st != LOCALD__V1__SERVICE_STATE__SERVICE_STATE_FAILED && st != 0;
}

static int running_collect(Ctl *ctl, Running *run)
{
	BusReply *reply = NULL;
	int r = ctl_status(ctl, NULL, &reply);
	if (r)
		return r;
	const Locald__V1__StatusResult *res = reply->status;
	for (size_t i = 0; i < res->n_projects; i++) {
		const Locald__V1__ProjectStatus *p = res->projects[i];
		char **svcs = NULL;
		/* superd's own `system` project comes back by itself. */
		if (isempty(p->path) || streq(p->name, "system"))
			continue;
		for (size_t k = 0; k < p->n_services; k++)
			if (is_wanted(p->services[k]->state) &&
			    strv_extend(&svcs, p->services[k]->service) < 0)
				goto oom;
		if (!svcs)
			continue;
		char ***more = realloc(run->services, (run->n + 1) * sizeof(char **));
		if (!more) {
			strv_free(svcs);
			goto oom;
		}
		run->services = more;
		if (strv_extend(&run->paths, p->path) < 0) {
			strv_free(svcs);
			goto oom;
		}
		run->services[run->n++] = svcs;
	}
	bus_reply_free(reply);
	return 0;
oom:
	bus_reply_free(reply);
	return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
}

static int running_restore(Ctl *ctl, BusZmtpClient *c, const Running *run)
{
	_cleanup_(ctl_env_done) CtlEnv env = {};
	if (ctl_env_build(&env) < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < run->n; i++) {
		BusRequest req = LOCALD__V1__REQUEST__INIT;
		Locald__V1__ApplyProject ap = LOCALD__V1__APPLY_PROJECT__INIT;
		ap.path = run->paths[i];
		ap.n_services = strv_length(run->services[i]);
		ap.services = run->services[i];
		ap.n_environment = env.n;
		ap.environment = env.ptrs;
		req.call_case = LOCALD__V1__REQUEST__CALL_APPLY_PROJECT;
		req.apply_project = &ap;
		BusReply *reply = NULL;
		int r = ctl_call_ok(ctl, c, &req, 30000, &reply);
		if (r && !rc)
			rc = r;
		bus_reply_free(reply);
	}
	return rc;
}

int cmd_server(Ctl *ctl, int argc, char **argv)
{
	int pr = ctl_parse_simple(ctl, argc, argv, CTL_PARSE_JSON, server_help);
	if (pr >= 0)
		return pr;
	if (argc - optind != 1)
		return ctl_usage(ctl, false, server_help);
	const char *verb = argv[optind];
	if (streq(verb, "status")) {
		int r = show(ctl, false);
		if (r == EXIT_UNREACHABLE && !ctl->json)
			return ctl_fail(ctl, EXIT_UNREACHABLE, "`localctl up` starts it",
					"locald is not running");
		return r;
	}
	if (streq(verb, "stop") || streq(verb, "restart")) {
		bool alive = ctl_superd_alive(ctl, 1000);
		if (!alive && streq(verb, "stop")) {
			if (!ctl->quiet)
				printf("locald is not running\n");
			return EXIT_OK;
		}
		/* What runs now runs again after a restart (superd's Shutdown stops it all). */
		_cleanup_(running_donep) Running run = {};
		if (alive && streq(verb, "restart")) {
			int r = running_collect(ctl, &run);
			if (r)
				return r;
		}
		if (alive) {
			int r = ctl_superd_shutdown(ctl, 45000);
			if (r)
				return r;
			if (!ctl->quiet)
				printf("locald stopped\n");
		}
		if (streq(verb, "stop"))
			return EXIT_OK;
		BusZmtpClient *cl = NULL;
		int r = ctl_superd_ensure(ctl, &cl);
		if (r)
			return r;
		r = running_restore(ctl, cl, &run);
		int s = show(ctl, false);
		return r ? r : s;
	}
	return ctl_fail(ctl, EXIT_USAGE, "server status, server stop or server restart",
			"unknown server command \"%s\"", verb);
}
