/* SPDX-License-Identifier: MIT */
/* Per-service commands: start, stop, restart, env, run, open, dashboard. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "strutil.h"

extern char **environ;

static const char start_help[] =
    "Usage: localctl start|stop|restart [SERVICE…]\n\n"
    "Start, stop or restart the SERVICEs (service, or project:service), waiting until\n"
    "each has settled. Without SERVICE: every service of the project found from the\n"
    "current directory. Needs locald running (`localctl up` starts it).\n";

static const char env_help[] = "Usage: localctl env [--json] SERVICE\n\n"
			       "Print the environment SERVICE runs with (after ${…} "
			       "substitution, with PORT,\n"
			       "LOCALD_URL, …), one KEY=value per line.\n";

static const char run_help[] =
    "Usage: localctl run SERVICE [--] COMMAND [ARG…]\n\n"
    "Run COMMAND in the foreground with SERVICE's environment (its PORT, its env, the\n"
    "${…} references resolved). One argument with spaces runs through /bin/sh -c.\n"
    "The exit code is COMMAND's.\n";

static const char open_help[] = "Usage: localctl open [SERVICE]\n\n"
				"Print the URL of SERVICE (default: the project's front end) "
				"and open it in a\n"
				"browser when there is a display.\n";

static const char dashboard_help[] = "Usage: localctl dashboard\n\n"
				     "Print the dashboard's URL and open it in a browser when "
				     "there is a display.\n";

typedef enum Action {
	ACTION_START,
	ACTION_STOP,
	ACTION_RESTART
} Action;

static int service_call(Ctl *ctl, BusZmtpClient *c, Action a, const char *project,
			const char *service)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__StartService st = LOCALD__V1__START_SERVICE__INIT;
	Locald__V1__StopService sp = LOCALD__V1__STOP_SERVICE__INIT;
	Locald__V1__RestartService rs = LOCALD__V1__RESTART_SERVICE__INIT;
	switch (a) {
	case ACTION_START:
		st.project = (char *)project, st.service = (char *)service;
		req.call_case = LOCALD__V1__REQUEST__CALL_START_SERVICE;
		req.start_service = &st;
		break;
	case ACTION_STOP:
		sp.project = (char *)project, sp.service = (char *)service;
		req.call_case = LOCALD__V1__REQUEST__CALL_STOP_SERVICE;
		req.stop_service = &sp;
		break;
	default:
		rs.project = (char *)project, rs.service = (char *)service;
		req.call_case = LOCALD__V1__REQUEST__CALL_RESTART_SERVICE;
		req.restart_service = &rs;
		break;
	}
	BusReply *reply = NULL;
	int r = ctl_call_ok(ctl, c, &req, 120000, &reply);
	if (r)
		return r;
	const Locald__V1__ServiceStatus *s = a == ACTION_START  ? reply->start_service->service
					     : a == ACTION_STOP ? reply->stop_service->service
								: reply->restart_service->service;
	int rc = EXIT_OK;
	if (s) {
		bool bad = s->state == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_FAILED ||
			   s->state == LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BLOCKED;
		if (bad) {
			_cleanup_free_ char *hint =
			    strdupf("`localctl logs %s:%s` shows its output", project, service);
			rc = ctl_fail(ctl, EXIT_FAILED, hint, "%s:%s %s: %s", project, service,
				      ctl_state_name(s->state), strempty(s->status_reason));
		} else if (!ctl->quiet)
			printf("%s:%s %s\n", project, service, ctl_state_name(s->state));
	}
	bus_reply_free(reply);
	return rc;
}

static int action_all(Ctl *ctl, BusZmtpClient *c, Action a)
{
	_cleanup_free_ char *project = NULL;
	int r = ctl_current_project(ctl, NULL, &project, NULL);
	if (r)
		return r;
	BusReply *reply = NULL;
	r = ctl_status(ctl, project, &reply);
	if (r)
		return r;
	int rc = EXIT_OK;
	const Locald__V1__ProjectStatus *p =
	    reply->status->n_projects ? reply->status->projects[0] : NULL;
	for (size_t i = 0; p && i < p->n_services; i++) {
		r = service_call(ctl, c, a, project, p->services[i]->service);
		if (r && !rc)
			rc = r;
	}
	bus_reply_free(reply);
	return rc;
}

static int service_action(Ctl *ctl, Action a, int argc, char **argv)
{
	int pr = ctl_parse_simple(ctl, argc, argv, 0, start_help);
	if (pr >= 0)
		return pr;
	BusZmtpClient *cl = NULL;
	int r = ctl_superd(ctl, &cl);
	if (r)
		return r;
	if (optind >= argc)
		return action_all(ctl, cl, a);
	int rc = EXIT_OK;
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *p = NULL, *s = NULL;
		r = ctl_resolve_service(ctl, argv[i], &p, &s);
		if (!r)
			r = service_call(ctl, cl, a, p, s);
		if (r && !rc)
			rc = r;
		if (r == EXIT_UNREACHABLE)
			break;
	}
	return rc;
}

int cmd_start(Ctl *ctl, int argc, char **argv)
{
	return service_action(ctl, ACTION_START, argc, argv);
}

int cmd_stop(Ctl *ctl, int argc, char **argv)
{
	return service_action(ctl, ACTION_STOP, argc, argv);
}

int cmd_restart(Ctl *ctl, int argc, char **argv)
{
	return service_action(ctl, ACTION_RESTART, argc, argv);
}

/* ---- env, run ---- */

static int get_env(Ctl *ctl, const char *arg, BusReply **ret)
{
	_cleanup_free_ char *p = NULL, *s = NULL;
	int r = ctl_resolve_service(ctl, arg, &p, &s);
	if (r)
		return r;
	BusZmtpClient *cl = NULL;
	r = ctl_superd(ctl, &cl);
	if (r)
		return r;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__GetServiceEnv ge = LOCALD__V1__GET_SERVICE_ENV__INIT;
	ge.project = p;
	ge.service = s;
	req.call_case = LOCALD__V1__REQUEST__CALL_GET_SERVICE_ENV;
	req.get_service_env = &ge;
	return ctl_call_ok(ctl, cl, &req, 10000, ret);
}

int cmd_env(Ctl *ctl, int argc, char **argv)
{
	int pr = ctl_parse_simple(ctl, argc, argv, CTL_PARSE_JSON, env_help);
	if (pr >= 0)
		return pr;
	if (argc - optind != 1)
		return ctl_usage(ctl, false, env_help);
	BusReply *reply = NULL;
	int r = get_env(ctl, argv[optind], &reply);
	if (r)
		return r;
	const Locald__V1__GetServiceEnvResult *res = reply->get_service_env;
	if (ctl->json) {
		json_t *o = json_object();
		for (size_t i = 0; o && i < res->n_environment; i++)
			json_object_set_new(o, res->environment[i]->name,
					    json_string(res->environment[i]->value));
		r = ctl_print_json(ctl, o);
	} else
		for (size_t i = 0; i < res->n_environment; i++)
			printf("%s=%s\n", res->environment[i]->name, res->environment[i]->value);
	bus_reply_free(reply);
	return r;
}

int cmd_run(Ctl *ctl, int argc, char **argv)
{
	int pr = ctl_parse_simple(ctl, argc, argv, CTL_PARSE_STOP_AT_OPERAND, run_help);
	if (pr >= 0)
		return pr;
	if (optind >= argc)
		return ctl_usage(ctl, false, run_help);
	const char *service = argv[optind++];
	if (optind < argc && streq(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return ctl_fail(ctl, EXIT_USAGE,
				"e.g. localctl run api -- python3 manage.py migrate",
				"no command to run");
	BusReply *reply = NULL;
	int r = get_env(ctl, service, &reply);
	if (r)
		return r;
	const Locald__V1__GetServiceEnvResult *res = reply->get_service_env;
	/* The service's environment replaces ours (execvp() looks up PATH in it). */
	char **envp = calloc(res->n_environment + 1, sizeof(char *));
	for (size_t i = 0; envp && i < res->n_environment; i++)
		if (!(envp[i] = strdupf("%s=%s", res->environment[i]->name,
					res->environment[i]->value))) {
			envp = strv_free(envp);
			break;
		}
	bus_reply_free(reply);
	if (!envp)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	environ = envp;
	fflush(stdout);
	char **cmd = argv + optind;
	if (argc - optind == 1 && strpbrk(cmd[0], " \t;&|$<>()'\"*?")) {
		execl("/bin/sh", "sh", "-c", cmd[0], (char *)NULL);
		return ctl_fail(ctl, 127, NULL, "cannot run /bin/sh: %s", strerror(errno));
	}
	execvp(cmd[0], cmd);
	return ctl_fail(ctl, errno == ENOENT ? 127 : 126, "check the command's name and $PATH",
			"cannot run %s: %s", cmd[0], strerror(errno));
}

/* ---- open, dashboard ---- */

char *ctl_url_with_port(const char *url, uint32_t https_port)
{
	const char *host = startswith(url, "https://");
	if (!host || !https_port || https_port == 443)
		return strdup(url);
	size_t hl = strcspn(host, "/");
	if (memchr(host, ':', hl))
		return strdup(url);
	return strdupf("https://%.*s:%u%s", (int)hl, host, https_port, host + hl);
}

void ctl_open_url(const char *url)
{
	if (isempty(getenv("DISPLAY")) && isempty(getenv("WAYLAND_DISPLAY")))
		return;
	pid_t pid = fork();
	if (pid != 0)
		return;
	/* Detached: the browser outlives us and never writes on our terminal. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
	}
	setsid();
	if (fork() == 0) {
		execlp("xdg-open", "xdg-open", url, (char *)NULL);
		_exit(127);
	}
	_exit(0);
}

static int print_and_open(Ctl *ctl, const char *url)
{
	printf("%s\n", url);
	fflush(stdout);
	ctl_open_url(url);
	return EXIT_OK;
}

/* The service served at the project's bare domain. */
static bool is_front_end(const Locald__V1__ProjectStatus *p, const Locald__V1__ServiceStatus *s)
{
	if (isempty(s->url) || isempty(p->domain))
		return false;
	const char *host = startswith(s->url, "https://");
	if (!host)
		host = startswith(s->url, "http://");
	const char *rest = host ? startswith(host, p->domain) : NULL;
	return rest && (*rest == 0 || *rest == ':' || *rest == '/');
}

int cmd_open(Ctl *ctl, int argc, char **argv)
{
	int pr = ctl_parse_simple(ctl, argc, argv, 0, open_help);
	if (pr >= 0)
		return pr;
	if (argc - optind > 1)
		return ctl_usage(ctl, false, open_help);
	_cleanup_free_ char *project = NULL, *service = NULL;
	int r = optind < argc ? ctl_resolve_service(ctl, argv[optind], &project, &service)
			      : ctl_current_project(ctl, NULL, &project, NULL);
	if (r)
		return r;
	BusReply *reply = NULL;
	r = ctl_status(ctl, project, &reply);
	if (r)
		return r;
	const Locald__V1__ProjectStatus *p =
	    reply->status->n_projects ? reply->status->projects[0] : NULL;
	const Locald__V1__ServiceStatus *pick = NULL;
	for (size_t i = 0; p && i < p->n_services; i++) {
		const Locald__V1__ServiceStatus *s = p->services[i];
		if (service ? streq(s->service, service) : is_front_end(p, s))
			pick = s;
	}
	for (size_t i = 0; !pick && !service && p && i < p->n_services; i++)
		if (!isempty(p->services[i]->url))
			pick = p->services[i];
	if (!pick) {
		r = ctl_fail(ctl, EXIT_NOT_FOUND, "`localctl status` lists the services and URLs",
			     service ? "project %s has no service \"%s\""
				     : "project %s has no service with a URL",
			     project, strempty(service));
		bus_reply_free(reply);
		return r;
	}
	if (isempty(pick->url)) {
		r = ctl_fail(ctl, EXIT_FAILED, "workers have no URL", "service \"%s\" has no URL",
			     pick->service);
		bus_reply_free(reply);
		return r;
	}
	uint32_t https = 0, http = 0;
	(void)ctl_proxy_ports(ctl, &https, &http);
	_cleanup_free_ char *url = ctl_url_with_port(pick->url, https);
	bus_reply_free(reply);
	return url ? print_and_open(ctl, url) : ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
}

int cmd_dashboard(Ctl *ctl, int argc, char **argv)
{
	int pr = ctl_parse_simple(ctl, argc, argv, 0, dashboard_help);
	if (pr >= 0)
		return pr;
	uint32_t https = 0, http = 0;
	if (ctl_proxy_ports(ctl, &https, &http) < 0 || (!https && !http))
		return ctl_fail(ctl, EXIT_UNREACHABLE, "`localctl up` starts locald",
				"locald-proxyd is not running: the dashboard is served by it");
	_cleanup_free_ char *url =
	    https ? ctl_url_with_port("https://locald.localhost/", https)
		  : (http == 80 ? strdup("http://locald.localhost/")
				: strdupf("http://locald.localhost:%u/", http));
	return url ? print_and_open(ctl, url) : ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
}
