/* SPDX-License-Identifier: MIT */
/*
 * The routing table against a real locald-superd (built next to this test): projects
 * applied over the bus, services started, stopped, restarted, superd killed and started
 * again, idle services stopped; plus SetRoutes and lookups without superd.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus.h"
#include "loop.h"
#include "paths.h"
#include "routes.h"
#include "strutil.h"
#include "test.h"
#include "time-util.h"

#define PY "/usr/bin/python3"
#define HTTP_SERVER PY " -m http.server --bind 127.0.0.1 $PORT"

typedef struct Env {
	char *runtime, *state, *config;
	char *rpc, *events;
	char *superd;
	pid_t pid;
	Loop *loop;
	Routes *routes;
	BusClient *client;
	char name[32]; /* unique project name prefix: cgroups are shared machine-wide */
} Env;

static char *superd_binary(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	char *p = strdupf("%s/../superd/locald-superd", self);
	if (p && access(p, X_OK) < 0)
		p = mfree(p);
	return p;
}

static void env_init(Env *e, bool need_superd)
{
	*e = (Env){ .pid = -1 };
	const char *tmp = test_tmpdir();
	e->runtime = path_join(tmp, "run");
	e->state = path_join(tmp, "state");
	e->config = path_join(tmp, "cfg");
	ASSERT_NOT_NULL(e->runtime);
	ASSERT_OK(mkdir_p(e->runtime, 0700));
	ASSERT_OK(mkdir_p(e->state, 0700));
	ASSERT_OK(mkdir_p(e->config, 0700));
	ASSERT_OK(bus_endpoint(e->runtime, "superd", BUS_SOCKET_RPC, &e->rpc));
	ASSERT_OK(bus_endpoint(e->runtime, "superd", BUS_SOCKET_EVENTS, &e->events));
	strfmt(e->name, sizeof(e->name), "rt%u", (unsigned)getpid());
	if (need_superd) {
		e->superd = superd_binary();
		if (!e->superd)
			SKIP("locald-superd is not built next to this test");
	}
	ASSERT_OK(loop_new(&e->loop));
}

static void superd_start(Env *e)
{
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		/* A failing test must not leave superd (and so its services) behind. */
		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		setenv("LOCALD_RUNTIME_DIR", e->runtime, 1);
		setenv("LOCALD_STATE_DIR", e->state, 1);
		setenv("LOCALD_CONFIG_DIR", e->config, 1);
		setenv("LOCALD_EMBEDDED", "0", 1); /* no proxyd as the `system` project */
		setenv("LOCALD_LOG_LEVEL", "warning", 1);
		execl(e->superd, e->superd, "--no-cgroups", (char *)NULL);
		_exit(127);
	}
	e->pid = pid;
	/* Wait for it to listen, so the calls below do not race its start. */
	usec_t deadline = now_monotonic() + 20 * USEC_PER_SEC;
	while (bus_endpoint_probe(e->rpc) < 0) {
		ASSERT_TRUE(now_monotonic() < deadline);
		int status;
		ASSERT_EQ(waitpid(pid, &status, WNOHANG), 0);
		usleep(20000);
	}
}

static void superd_stop(Env *e, int signo)
{
	if (e->pid <= 0)
		return;
	int status;
	kill(e->pid, signo);
	waitpid(e->pid, &status, 0);
	e->pid = -1;
}

static void env_done(Env *e)
{
	routes_free(e->routes);
	bus_client_free(e->client);
	superd_stop(e, SIGTERM);
	loop_free(e->loop);
	free(e->runtime);
	free(e->state);
	free(e->config);
	free(e->rpc);
	free(e->events);
	free(e->superd);
}

static void routes_start(Env *e, uint64_t idle_interval_usec, char **dashboard)
{
	RoutesOptions o = {
		.superd_rpc = e->rpc,
		.superd_events = e->events,
		.dashboard_hosts = dashboard,
		.idle_check_interval_usec = idle_interval_usec,
	};
	ASSERT_OK(routes_new(e->loop, &o, &e->routes));
}

/* ---- driving superd ---- */

static BusReply *call(Env *e, BusRequest *req)
{
	if (!e->client)
		ASSERT_OK(bus_client_new(NULL, e->rpc, &e->client));
	BusReply *reply = NULL;
	ASSERT_OK(bus_client_call(e->client, req, 60000, &reply));
	const BusErrorMessage *err = bus_reply_get_error(reply);
	if (err)
		test_fail(__FILE__, __LINE__, "superd: %s", err->message);
	return reply;
}

static char *write_project(Env *e, const char *name, const char *toml)
{
	char *dir = path_join(test_tmpdir(), name);
	ASSERT_OK(mkdir_p(dir, 0755));
	char *file = path_join(dir, "locald.toml");
	FILE *f = fopen(file, "we");
	ASSERT_NOT_NULL(f);
	fprintf(f, "[project]\nname = \"%s\"\n%s", name, toml);
	ASSERT_EQ(fclose(f), 0);
	free(file);
	return dir;
}

static void apply(Env *e, const char *dir)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__ApplyProject m = LOCALD__V1__APPLY_PROJECT__INIT;
	m.path = (char *)dir;
	m.wait = true;
	req.call_case = LOCALD__V1__REQUEST__CALL_APPLY_PROJECT;
	req.apply_project = &m;
	bus_reply_free(call(e, &req));
}

static void service_call(Env *e, BusCallCase which, const char *project, const char *service)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__StopService stop = LOCALD__V1__STOP_SERVICE__INIT;
	Locald__V1__RestartService restart = LOCALD__V1__RESTART_SERVICE__INIT;
	req.call_case = which;
	if (which == LOCALD__V1__REQUEST__CALL_STOP_SERVICE) {
		stop.project = (char *)project;
		stop.service = (char *)service;
		req.stop_service = &stop;
	} else {
		restart.project = (char *)project;
		restart.service = (char *)service;
		req.restart_service = &restart;
	}
	bus_reply_free(call(e, &req));
}

static uint32_t service_pid(Env *e, const char *project, const char *service)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Status m = LOCALD__V1__STATUS__INIT;
	m.project = (char *)project;
	req.call_case = LOCALD__V1__REQUEST__CALL_STATUS;
	req.status = &m;
	BusReply *reply = call(e, &req);
	uint32_t pid = 0;
	for (size_t i = 0; i < reply->status->n_projects; i++)
		for (size_t j = 0; j < reply->status->projects[i]->n_services; j++) {
			const Locald__V1__ServiceStatus *s =
			    reply->status->projects[i]->services[j];
			if (streq(s->service, service))
				pid = s->pid;
		}
	bus_reply_free(reply);
	return pid;
}

/*
 * While superd is killed, nothing would stop its services if the test failed: a guard
 * process kills the process group when this test process dies, unless released first.
 */
static int guard_group(pid_t pgid)
{
	int p[2];
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		char c;
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			kill(-pgid, SIGKILL);
		_exit(0);
	}
	close(p[0]);
	return p[1];
}

static void guard_release(int fd)
{
	ASSERT_EQ(write(fd, "x", 1), 1);
	close(fd);
}

/* ---- waiting for the table ---- */

static void on_tick(LoopTimer *t, void *userdata)
{
}

typedef bool (*TablePred)(const RouteTable *t, const void *arg);

static bool run_until(Env *e, uint64_t timeout_ms, TablePred pred, const void *arg)
{
	LoopTimer *tick = NULL;
	ASSERT_OK(loop_timer_new(e->loop, 20, 20, on_tick, NULL, &tick));
	usec_t deadline = now_monotonic() + timeout_ms * USEC_PER_MSEC;
	bool ok;
	for (;;) {
		RouteTable *t = routes_acquire(e->routes);
		ok = pred(t, arg);
		route_table_unref(t);
		if (ok || now_monotonic() > deadline)
			break;
		loop_run_once(e->loop, true);
	}
	loop_timer_free(tick);
	return ok;
}

typedef struct Want {
	const char *host;
	int readiness; /* -1: no route; -2: never true (run the loop for a while) */
} Want;

static bool route_is(const RouteTable *t, const void *arg)
{
	const Want *w = arg;
	const Route *r = route_table_lookup(t, w->host);
	if (w->readiness == -2)
		return false;
	return w->readiness == -1 ? r == NULL : r && (int)r->readiness == w->readiness;
}

/* The route's superd state name is `state` (STOPPING already reads as ROUTE_STOPPED). */
typedef struct WantState {
	const char *host, *state;
} WantState;

static bool route_state_is(const RouteTable *t, const void *arg)
{
	const WantState *w = arg;
	const Route *r = route_table_lookup(t, w->host);
	return r && r->state && streq(r->state, w->state);
}

#define WAIT_ROUTE(e, h, rd)                                                                       \
	do {                                                                                       \
		Want _w = { (h), (rd) };                                                           \
		if (!run_until((e), 30000, route_is, &_w))                                         \
			test_fail(__FILE__, __LINE__, "%s never became %d", _w.host,               \
				  _w.readiness);                                                   \
	} while (0)

static bool superd_seen(const RouteTable *t, const void *arg)
{
	return route_table_superd_seen(t);
}

/* The route for host in a fresh table, copied out (the table may go meanwhile). */
typedef struct Seen {
	bool found;
	RouteKind kind;
	RouteReadiness readiness;
	char upstream[64], project[64], service[64], site_path[PATH_MAX], last_exit[128];
	RouteUsage *usage;
	bool autostart, owned;
	uint64_t idle_stop_usec;
	char lines[4096];
	bool has_lines;
} Seen;

static Seen lookup(Env *e, const char *host)
{
	Seen s = { 0 };
	RouteTable *t = routes_acquire(e->routes);
	const Route *r = route_table_lookup(t, host);
	if (r) {
		s.found = true;
		s.kind = r->kind;
		s.readiness = r->readiness;
		strscpy(s.upstream, sizeof(s.upstream), strempty(r->upstream_text));
		strscpy(s.project, sizeof(s.project), strempty(r->project));
		strscpy(s.service, sizeof(s.service), strempty(r->service));
		strscpy(s.site_path, sizeof(s.site_path), strempty(r->site_path));
		strscpy(s.last_exit, sizeof(s.last_exit), strempty(r->last_exit));
		s.usage = r->usage;
		s.autostart = r->autostart;
		s.owned = r->owner != NULL;
		s.idle_stop_usec = r->idle_stop_usec;
		s.has_lines = r->last_lines != NULL;
		STRV_FOREACH (l, r->last_lines) {
			size_t n = strlen(s.lines);
			strfmt(s.lines + n, sizeof(s.lines) - n, "%s\n", *l);
		}
	}
	route_table_unref(t);
	return s;
}

static char *host_of(const char *service, const char *domain)
{
	return service ? strdupf("%s.%s", service, domain) : strdup(domain);
}

/* A TCP port nothing listens on right now. */
static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- tests ---- */

TEST(routes_follow_superd)
{
	Env e;
	env_init(&e, true);
	char *dash[] = { (char *)"Dash.Example.localhost", NULL };
	/* proxyd first: superd is not there yet, nor its runtime directory. */
	ASSERT_OK(rmdir(e.runtime));
	routes_start(&e, 0, dash);
	RouteTable *t0 = routes_acquire(e.routes);
	ASSERT_FALSE(route_table_superd_seen(t0));
	ASSERT_NOT_NULL(route_table_lookup(t0, "localhost"));
	route_table_unref(t0);
	Want none = { "nothing", -2 };             /* never true: run the loop for a while */
	(void)run_until(&e, 300, route_is, &none); /* a retry or two against no superd */

	superd_start(&e);
	ASSERT_TRUE(run_until(&e, 20000, superd_seen, NULL));

	char shop[40], named[40], solo[40];
	strfmt(shop, sizeof(shop), "%sa", e.name);
	strfmt(named, sizeof(named), "%sb", e.name);
	strfmt(solo, sizeof(solo), "%sc", e.name);
	char *d1 =
	    write_project(&e, shop,
			  "[services.web]\ncommand = \"" HTTP_SERVER "\"\n"
			  "[services.api]\ncommand = \"" HTTP_SERVER "\"\nautostart = false\n"
			  "[services.docs]\ntype = \"site\"\npath = \"public\"\n"
			  "[services.jobs]\ntype = \"worker\"\ncommand = \"sleep 600\"\n");
	_cleanup_free_ char *pub = path_join(d1, "public");
	ASSERT_OK(mkdir_p(pub, 0755));
	_cleanup_free_ char *named_toml =
	    strdupf("[services.%s]\ncommand = \"" HTTP_SERVER "\"\n"
		    "[services.other]\ncommand = \"" HTTP_SERVER "\"\n",
		    named);
	char *d2 = write_project(&e, named, named_toml);
	char *d3 = write_project(&e, solo,
				 "[services.api]\ncommand = \"" HTTP_SERVER "\"\n"
				 "[services.jobs]\ntype = \"worker\"\ncommand = \"sleep 600\"\n");
	apply(&e, d1);
	apply(&e, d2);
	apply(&e, d3);

	char dom1[64], dom2[64], dom3[64];
	strfmt(dom1, sizeof(dom1), "%s.localhost", shop);
	strfmt(dom2, sizeof(dom2), "%s.localhost", named);
	strfmt(dom3, sizeof(dom3), "%s.localhost", solo);
	_cleanup_free_ char *web1 = host_of("web", dom1), *api1 = host_of("api", dom1),
			    *docs1 = host_of("docs", dom1), *jobs1 = host_of("jobs", dom1),
			    *named2 = host_of(named, dom2), *other2 = host_of("other", dom2),
			    *api3 = host_of("api", dom3);
	WAIT_ROUTE(&e, web1, ROUTE_READY);
	WAIT_ROUTE(&e, api1, ROUTE_READY);
	WAIT_ROUTE(&e, other2, ROUTE_READY);
	WAIT_ROUTE(&e, named2, ROUTE_READY);
	WAIT_ROUTE(&e, api3, ROUTE_READY);

	/* Service hosts, and the project domain → web. */
	Seen web = lookup(&e, web1), dom = lookup(&e, dom1), api = lookup(&e, api1);
	ASSERT_EQ(web.kind, ROUTE_SERVICE);
	ASSERT_FALSE(web.owned);
	ASSERT_STREQ(web.project, shop);
	ASSERT_STREQ(web.service, "web");
	ASSERT_TRUE(startswith(web.upstream, "127.0.0.1:") != NULL);
	ASSERT_TRUE(web.autostart);
	ASSERT_FALSE(api.autostart);
	ASSERT_STREQ(dom.service, "web");
	ASSERT_STREQ(dom.upstream, web.upstream);
	ASSERT_TRUE(dom.usage == web.usage); /* one service, one idle clock */
	ASSERT_NOT_NULL(web.usage);
	ASSERT_STREQ(api.service, "api");
	ASSERT_TRUE(!streq(api.upstream, web.upstream));

	/* Normalization: case, port, trailing dot. */
	_cleanup_free_ char *upper = strdupf("API.%s:8443", dom1);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	ASSERT_STREQ(lookup(&e, upper).service, "api");
	_cleanup_free_ char *dotted = strdupf("%s.", api1);
	ASSERT_STREQ(lookup(&e, dotted).service, "api");
	_cleanup_free_ char *dom_port = strdupf("%s:443", dom1);
	ASSERT_STREQ(lookup(&e, dom_port).service, "web");

	/* A site serves its directory; a worker has no route. */
	Seen docs = lookup(&e, docs1);
	ASSERT_TRUE(docs.found);
	ASSERT_EQ(docs.kind, ROUTE_SITE);
	ASSERT_EQ(docs.readiness, ROUTE_READY);
	ASSERT_TRUE(endswith(docs.site_path, "/public"));
	ASSERT_NOT_NULL(docs.usage);
	ASSERT_FALSE(lookup(&e, jobs1).found);

	/* No web: the service named like the project; else the only one with a port. */
	ASSERT_STREQ(lookup(&e, dom2).service, named);
	ASSERT_STREQ(lookup(&e, named2).service, named);
	ASSERT_STREQ(lookup(&e, dom3).service, "api");
	_cleanup_free_ char *jobs3 = host_of("jobs", dom3);
	ASSERT_FALSE(lookup(&e, jobs3).found);

	/* Dashboard names. */
	ASSERT_EQ(lookup(&e, "localhost").kind, ROUTE_DASHBOARD);
	ASSERT_EQ(lookup(&e, "LOCALHOST:8080").kind, ROUTE_DASHBOARD);
	ASSERT_EQ(lookup(&e, "locald.localhost").kind, ROUTE_DASHBOARD);
	ASSERT_EQ(lookup(&e, "dash.example.localhost.").kind, ROUTE_DASHBOARD);
	ASSERT_NULL(lookup(&e, "localhost").usage);

	/* Unknown hosts and junk. */
	ASSERT_FALSE(lookup(&e, "nope.localhost").found);
	_cleanup_free_ char *deeper = strdupf("x.%s", api1);
	ASSERT_FALSE(lookup(&e, deeper).found);
	ASSERT_FALSE(lookup(&e, "").found);
	ASSERT_FALSE(lookup(&e, ":80").found);
	ASSERT_FALSE(lookup(&e, ".").found);
	ASSERT_FALSE(lookup(&e, "[::1]:8080").found);

	/* Every routed name, sorted. */
	RouteTable *t = routes_acquire(e.routes);
	char *const *hosts = route_table_hosts(t);
	size_t n = strv_length(hosts);
	for (size_t i = 1; i < n; i++)
		ASSERT_TRUE(strcmp(hosts[i - 1], hosts[i]) < 0);
	ASSERT_TRUE(strv_contains(hosts, web1));
	ASSERT_TRUE(strv_contains(hosts, dom1));
	ASSERT_TRUE(strv_contains(hosts, "localhost"));
	ASSERT_TRUE(strv_contains(hosts, "locald.localhost"));
	ASSERT_FALSE(strv_contains(hosts, jobs1));
	ASSERT_TRUE(route_table_superd_seen(t));
	uint64_t gen = route_table_generation(t);
	route_table_unref(t);

	/* Stop: STOPPED (and a new generation); on-demand start: READY again. */
	service_call(&e, LOCALD__V1__REQUEST__CALL_STOP_SERVICE, shop, "web");
	WAIT_ROUTE(&e, web1, ROUTE_STOPPED);
	WantState stopped = { web1, "stopped" };
	ASSERT_TRUE(run_until(&e, 30000, route_state_is, &stopped));
	ASSERT_EQ(lookup(&e, dom1).readiness, ROUTE_STOPPED);
	t = routes_acquire(e.routes);
	ASSERT_TRUE(route_table_generation(t) > gen);
	const Route *wr = route_table_lookup(t, web1);
	ASSERT_STREQ(wr->state, "stopped");
	/* Many requests, one StartService. */
	for (int i = 0; i < 5; i++)
		routes_request_start(e.routes, wr);
	route_table_unref(t);
	WAIT_ROUTE(&e, web1, ROUTE_READY);
	RoutesStats st;
	routes_get_stats(e.routes, &st);
	ASSERT_EQ(st.starts_requested, 1);
	ASSERT_TRUE(st.snapshots >= 1);
	ASSERT_TRUE(st.events > 0);

	/* autostart = false: the request is not turned into a start. */
	service_call(&e, LOCALD__V1__REQUEST__CALL_STOP_SERVICE, shop, "api");
	WAIT_ROUTE(&e, api1, ROUTE_STOPPED);
	t = routes_acquire(e.routes);
	routes_request_start(e.routes, route_table_lookup(t, api1));
	route_table_unref(t);
	(void)run_until(&e, 500, route_is, &none);
	routes_get_stats(e.routes, &st);
	ASSERT_EQ(st.starts_requested, 1);
	ASSERT_EQ(lookup(&e, api1).readiness, ROUTE_STOPPED);

	/* Removed and renamed services disappear; the new name appears. */
	char *d1b = write_project(&e, shop,
				  "[services.web]\ncommand = \"" HTTP_SERVER "\"\n"
				  "[services.api2]\ncommand = \"" HTTP_SERVER "\"\n");
	apply(&e, d1b);
	_cleanup_free_ char *api2 = host_of("api2", dom1);
	WAIT_ROUTE(&e, api2, ROUTE_READY);
	WAIT_ROUTE(&e, api1, -1);
	WAIT_ROUTE(&e, docs1, -1);

	free(d1);
	free(d1b);
	free(d2);
	free(d3);
	env_done(&e);
}

TEST(routes_new_port_and_superd_restart)
{
	Env e;
	env_init(&e, true);
	superd_start(&e);
	routes_start(&e, 0, NULL);
	char name[40], toml[256];
	strfmt(name, sizeof(name), "%sd", e.name);
	uint16_t p1 = free_port();
	strfmt(toml, sizeof(toml), "[services.web]\ncommand = \"" HTTP_SERVER "\"\nport = %u\n",
	       (unsigned)p1);
	char *dir = write_project(&e, name, toml);
	apply(&e, dir);
	char dom[64], up[64];
	strfmt(dom, sizeof(dom), "%s.localhost", name);
	WAIT_ROUTE(&e, dom, ROUTE_READY);
	strfmt(up, sizeof(up), "127.0.0.1:%u", (unsigned)p1);
	ASSERT_STREQ(lookup(&e, dom).upstream, up);

	/* A new port: superd restarts the service; the route follows. */
	uint16_t p2 = free_port();
	if (p2 == p1)
		p2 = free_port();
	strfmt(toml, sizeof(toml), "[services.web]\ncommand = \"" HTTP_SERVER "\"\nport = %u\n",
	       (unsigned)p2);
	free(write_project(&e, name, toml));
	apply(&e, dir);
	strfmt(up, sizeof(up), "127.0.0.1:%u", (unsigned)p2);
	usec_t deadline = now_monotonic() + 30 * USEC_PER_SEC;
	while (!streq(lookup(&e, dom).upstream, up) || lookup(&e, dom).readiness != ROUTE_READY) {
		ASSERT_TRUE(now_monotonic() < deadline);
		(void)run_until(&e, 50, route_is, &(Want){ "nothing", -2 });
	}

	/* superd killed: the table keeps what it knew (the services still run). */
	RoutesStats before;
	routes_get_stats(e.routes, &before);
	pid_t web_pid = (pid_t)service_pid(&e, name, "web");
	ASSERT_TRUE(web_pid > 0);
	int guard = guard_group(web_pid); /* superd --no-cgroups: a process group each */
	superd_stop(&e, SIGKILL);
	e.client = bus_client_free(e.client);
	(void)run_until(&e, 500, route_is, &(Want){ "nothing", -2 });
	ASSERT_EQ(lookup(&e, dom).readiness, ROUTE_READY);

	/* A new superd (a new epoch) re-adopts them; the table is taken again from it, and
	 * its events are followed. */
	superd_start(&e);
	RoutesStats after;
	deadline = now_monotonic() + 20 * USEC_PER_SEC;
	do {
		ASSERT_TRUE(now_monotonic() < deadline);
		(void)run_until(&e, 50, route_is, &(Want){ "nothing", -2 });
		routes_get_stats(e.routes, &after);
	} while (after.snapshots <= before.snapshots);
	service_call(&e, LOCALD__V1__REQUEST__CALL_STOP_SERVICE, name, "web");
	WAIT_ROUTE(&e, dom, ROUTE_STOPPED);
	routes_get_stats(e.routes, &after);
	service_call(&e, LOCALD__V1__REQUEST__CALL_RESTART_SERVICE, name, "web");
	WAIT_ROUTE(&e, dom, ROUTE_READY);
	ASSERT_STREQ(lookup(&e, dom).upstream, up);
	/* Events published before our subscriber reconnected (it backs off up to 1 s) are
	 * caught by a later snapshot; once it is back, the new superd's events arrive and
	 * tell of its new epoch. */
	deadline = now_monotonic() + 20 * USEC_PER_SEC;
	do {
		ASSERT_TRUE(now_monotonic() < deadline);
		service_call(&e, LOCALD__V1__REQUEST__CALL_STOP_SERVICE, name, "web");
		WAIT_ROUTE(&e, dom, ROUTE_STOPPED);
		service_call(&e, LOCALD__V1__REQUEST__CALL_START_SERVICE, name, "web");
		WAIT_ROUTE(&e, dom, ROUTE_READY);
		routes_get_stats(e.routes, &after);
	} while (after.gaps <= before.gaps);
	free(dir);
	env_done(&e);
	guard_release(guard);
}

TEST(routes_idle_stop)
{
	Env e;
	env_init(&e, true);
	superd_start(&e);
	routes_start(&e, 100 * USEC_PER_MSEC, NULL);
	char name[40];
	strfmt(name, sizeof(name), "%se", e.name);
	char *dir =
	    write_project(&e, name,
			  "[services.web]\ncommand = \"" HTTP_SERVER "\"\nidle_stop = \"1s\"\n"
			  "[services.api]\ncommand = \"" HTTP_SERVER "\"\n");
	apply(&e, dir);
	char dom[64];
	strfmt(dom, sizeof(dom), "%s.localhost", name);
	_cleanup_free_ char *api = host_of("api", dom);
	WAIT_ROUTE(&e, dom, ROUTE_READY);
	ASSERT_EQ(lookup(&e, dom).idle_stop_usec, USEC_PER_SEC);
	ASSERT_EQ(lookup(&e, api).idle_stop_usec, 0);

	/* Nobody asks for it: stopped about a second after it became ready. */
	WAIT_ROUTE(&e, dom, ROUTE_STOPPED);
	RoutesStats st;
	routes_get_stats(e.routes, &st);
	ASSERT_EQ(st.idle_stops, 1);
	ASSERT_EQ(lookup(&e, api).readiness, ROUTE_READY); /* no idle_stop: left alone */

	/* Started on demand; a request in progress keeps it up however long it lasts. */
	RouteTable *t = routes_acquire(e.routes);
	const Route *r = route_table_lookup(t, dom);
	routes_request_start(e.routes, r);
	WAIT_ROUTE(&e, dom, ROUTE_READY);
	route_usage_begin(r);
	Want never = { "nothing", -2 };
	(void)run_until(&e, 2500, route_is, &never);
	ASSERT_EQ(lookup(&e, dom).readiness, ROUTE_READY);
	route_usage_end(r);
	route_table_unref(t); /* the usage outlives this table: the newer ones share it */
	WAIT_ROUTE(&e, dom, ROUTE_STOPPED);
	routes_get_stats(e.routes, &st);
	ASSERT_EQ(st.idle_stops, 2);
	free(dir);
	env_done(&e);
}

TEST(routes_last_lines)
{
	Env e;
	env_init(&e, true);
	superd_start(&e);
	routes_start(&e, 0, NULL);
	char name[40];
	strfmt(name, sizeof(name), "%sf", e.name);
	char *dir =
	    write_project(&e, name,
			  "[services.web]\ncommand = \"echo boom-$PORT >&2; exit 3\"\n"
			  "restart = \"no\"\n"
			  "[services.api]\ncommand = \"echo hello-api; exec " HTTP_SERVER "\"\n");
	apply(&e, dir);
	char dom[64];
	strfmt(dom, sizeof(dom), "%s.localhost", name);
	_cleanup_free_ char *api = host_of("api", dom);
	WAIT_ROUTE(&e, dom, ROUTE_DOWN);
	/* Fetched on its own when it went down. */
	usec_t deadline = now_monotonic() + 20 * USEC_PER_SEC;
	while (!strstr(lookup(&e, dom).lines, "boom-")) {
		ASSERT_TRUE(now_monotonic() < deadline);
		(void)run_until(&e, 50, route_is, &(Want){ "nothing", -2 });
	}
	Seen s = lookup(&e, dom);
	ASSERT_STREQ(s.last_exit, "exited with status 3");
	ASSERT_NOT_NULL(strstr(s.lines, "boom-"));

	/* On request for a ready one. */
	WAIT_ROUTE(&e, api, ROUTE_READY);
	RouteTable *t = routes_acquire(e.routes);
	routes_request_logs(e.routes, route_table_lookup(t, api));
	route_table_unref(t);
	deadline = now_monotonic() + 20 * USEC_PER_SEC;
	while (!strstr(lookup(&e, api).lines, "hello-api")) {
		ASSERT_TRUE(now_monotonic() < deadline);
		(void)run_until(&e, 50, route_is, &(Want){ "nothing", -2 });
	}
	s = lookup(&e, api);
	size_t n = 0;
	for (const char *p = s.lines; (p = strchr(p, '\n')); p++)
		n++;
	ASSERT_TRUE(n >= 1 && n <= 20);
	free(dir);
	env_done(&e);
}

static void on_async(uv_async_t *a)
{
	(*(int *)a->data)++;
}

TEST(set_owner)
{
	Env e;
	env_init(&e, false); /* no superd: SetRoutes works without it */
	routes_start(&e, 0, NULL);
	int woken = 0;
	uv_async_t async;
	ASSERT_OK(uv_async_init(loop_get_uv(e.loop), &async, on_async));
	async.data = &woken;
	ASSERT_OK(routes_add_listener(e.routes, &async));

	const char *err = NULL;
	RouteSpec specs[] = {
		{ "vite.localhost", "127.0.0.1:5173", "shop", "web" },
		{ "Six.localhost", "[::1]:8080", NULL, NULL },
		{ "sock.localhost", "unix:/run/app.sock", NULL, NULL },
	};
	ASSERT_OK(routes_set_owner(e.routes, "dev", specs, 3, &err));
	Want w = { "vite.localhost", ROUTE_READY };
	ASSERT_TRUE(run_until(&e, 1000, route_is, &w));
	while (woken == 0)
		loop_run_once(e.loop, true);

	RouteTable *t = routes_acquire(e.routes);
	ASSERT_FALSE(route_table_superd_seen(t));
	const Route *r = route_table_lookup(t, "VITE.localhost:443");
	ASSERT_NOT_NULL(r);
	ASSERT_EQ(r->kind, ROUTE_SERVICE);
	ASSERT_STREQ(r->upstream_text, "127.0.0.1:5173");
	ASSERT_STREQ(r->project, "shop");
	ASSERT_STREQ(r->owner, "dev");
	ASSERT_NOT_NULL(r->usage);
	const struct sockaddr_in *in = (const struct sockaddr_in *)&r->upstream;
	ASSERT_EQ(in->sin_family, AF_INET);
	ASSERT_EQ(ntohs(in->sin_port), 5173);
	ASSERT_EQ(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
	ASSERT_EQ(r->upstream_len, sizeof(struct sockaddr_in));
	r = route_table_lookup(t, "six.localhost.");
	ASSERT_NOT_NULL(r);
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&r->upstream;
	ASSERT_EQ(in6->sin6_family, AF_INET6);
	ASSERT_EQ(ntohs(in6->sin6_port), 8080);
	ASSERT_TRUE(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
	r = route_table_lookup(t, "sock.localhost");
	ASSERT_EQ(((const struct sockaddr_un *)&r->upstream)->sun_family, AF_UNIX);
	ASSERT_STREQ(((const struct sockaddr_un *)&r->upstream)->sun_path, "/run/app.sock");
	ASSERT_TRUE(strv_contains(route_table_hosts(t), "six.localhost"));
	route_table_unref(t);

	/* Another owner cannot take a host; nothing changes then. */
	RouteSpec clash[] = { { "other.localhost", "127.0.0.1:1", NULL, NULL },
			      { "vite.localhost", "127.0.0.1:9999", NULL, NULL } };
	err = NULL;
	ASSERT_ERR(routes_set_owner(e.routes, "intruder", clash, 2, &err), EEXIST);
	ASSERT_NOT_NULL(err);
	ASSERT_FALSE(lookup(&e, "other.localhost").found);
	ASSERT_STREQ(lookup(&e, "vite.localhost").upstream, "127.0.0.1:5173");
	RouteSpec dash[] = { { "locald.localhost", "127.0.0.1:1", NULL, NULL } };
	ASSERT_ERR(routes_set_owner(e.routes, "intruder", dash, 1, &err), EEXIST);

	/* Bad input: one clear message each. */
	static const RouteSpec bad[] = {
		{ "bad host.localhost", "127.0.0.1:1", NULL, NULL },
		{ "-x.localhost", "127.0.0.1:1", NULL, NULL },
		{ "a..localhost", "127.0.0.1:1", NULL, NULL },
		{ "", "127.0.0.1:1", NULL, NULL },
		{ NULL, "127.0.0.1:1", NULL, NULL },
		{ "ok.localhost", "127.0.0.1", NULL, NULL },
		{ "ok.localhost", "127.0.0.1:0", NULL, NULL },
		{ "ok.localhost", "127.0.0.1:70000", NULL, NULL },
		{ "ok.localhost", "localhost:80", NULL, NULL },
		{ "ok.localhost", "[::1:80", NULL, NULL },
		{ "ok.localhost", "[::1]", NULL, NULL },
		{ "ok.localhost", "unix:relative.sock", NULL, NULL },
		{ "ok.localhost", "", NULL, NULL },
		{ "ok.localhost", NULL, NULL, NULL },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		err = NULL;
		ASSERT_ERR(routes_set_owner(e.routes, "x", &bad[i], 1, &err), EINVAL);
		ASSERT_NOT_NULL(err);
	}
	RouteSpec twice[] = { { "a.localhost", "127.0.0.1:1", NULL, NULL },
			      { "A.localhost", "127.0.0.1:2", NULL, NULL } };
	ASSERT_ERR(routes_set_owner(e.routes, "x", twice, 2, &err), EINVAL);
	ASSERT_ERR(routes_set_owner(e.routes, "", specs, 1, &err), EINVAL);
	ASSERT_FALSE(lookup(&e, "ok.localhost").found);

	/* Replacing keeps the usage of a host that stays; an empty list removes. */
	RouteUsage *u = lookup(&e, "vite.localhost").usage;
	RouteSpec moved[] = { { "vite.localhost", "127.0.0.1:5174", NULL, NULL } };
	ASSERT_OK(routes_set_owner(e.routes, "dev", moved, 1, &err));
	ASSERT_STREQ(lookup(&e, "vite.localhost").upstream, "127.0.0.1:5174");
	ASSERT_TRUE(lookup(&e, "vite.localhost").usage == u);
	ASSERT_FALSE(lookup(&e, "six.localhost").found);
	ASSERT_ERR(routes_set_owner(e.routes, "intruder", clash, 2, &err), EEXIST);
	ASSERT_OK(routes_set_owner(e.routes, "dev", NULL, 0, &err));
	ASSERT_FALSE(lookup(&e, "vite.localhost").found);
	ASSERT_OK(routes_set_owner(e.routes, "intruder", clash, 2, &err));
	ASSERT_STREQ(lookup(&e, "vite.localhost").upstream, "127.0.0.1:9999");

	routes_remove_listener(e.routes, &async);
	uv_close((uv_handle_t *)&async, NULL);
	env_done(&e);
}

TEST(usage_outlives_tables)
{
	Env e;
	env_init(&e, false);
	routes_start(&e, 0, NULL);
	const char *err;
	RouteSpec s[] = { { "a.localhost", "127.0.0.1:1", NULL, NULL } };
	ASSERT_OK(routes_set_owner(e.routes, "o", s, 1, &err));
	RouteTable *old = routes_acquire(e.routes);
	const Route *r = route_table_lookup(old, "a.localhost");
	route_usage_begin(r);
	ASSERT_EQ(atomic_load(&r->usage->active), 1);
	ASSERT_TRUE(atomic_load(&r->usage->last_request_usec) > 0);
	/* The owner drops the route; the table a request holds stays whole. */
	ASSERT_OK(routes_set_owner(e.routes, "o", NULL, 0, &err));
	ASSERT_FALSE(lookup(&e, "a.localhost").found);
	route_usage_end(r);
	ASSERT_EQ(atomic_load(&r->usage->active), 0);
	ASSERT_STREQ(r->host, "a.localhost");
	route_table_unref(old);
	env_done(&e);
}

/* Workers look up while the main thread publishes: every lookup sees a whole route. */
typedef struct Worker {
	Routes *routes;
	atomic_bool *stop;
	unsigned long lookups, misses, torn;
} Worker;

static void *worker_main(void *arg)
{
	Worker *w = arg;
	while (!atomic_load(w->stop)) {
		RouteTable *t = routes_acquire(w->routes);
		const Route *r = route_table_lookup(t, "App.localhost:8080");
		if (!r)
			w->misses++;
		else {
			route_usage_begin(r);
			if (!streq(r->upstream_text, "127.0.0.1:1001") &&
			    !streq(r->upstream_text, "127.0.0.1:1002"))
				w->torn++;
			routes_request_start(w->routes, r);
			route_usage_end(r);
		}
		w->lookups++;
		route_table_unref(t);
	}
	return NULL;
}

TEST(acquire_from_threads)
{
	Env e;
	env_init(&e, false);
	routes_start(&e, 0, NULL);
	const char *err;
	RouteSpec a[] = { { "app.localhost", "127.0.0.1:1001", NULL, NULL } };
	RouteSpec b[] = { { "app.localhost", "127.0.0.1:1002", NULL, NULL } };
	ASSERT_OK(routes_set_owner(e.routes, "o", a, 1, &err));
	atomic_bool stop = false;
	Worker w[4];
	pthread_t th[4];
	for (size_t i = 0; i < ELEMENTSOF(w); i++) {
		w[i] = (Worker){ .routes = e.routes, .stop = &stop };
		ASSERT_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 2000; i++) {
		ASSERT_OK(routes_set_owner(e.routes, "o", i % 2 ? a : b, 1, &err));
		loop_run_once(e.loop, false); /* the wakeups from routes_request_start */
	}
	atomic_store(&stop, true);
	unsigned long lookups = 0;
	for (size_t i = 0; i < ELEMENTSOF(w); i++) {
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
		ASSERT_EQ(w[i].misses, 0);
		ASSERT_EQ(w[i].torn, 0);
		lookups += w[i].lookups;
	}
	ASSERT_TRUE(lookups > 0);
	RouteTable *t = routes_acquire(e.routes);
	const Route *r = route_table_lookup(t, "app.localhost");
	ASSERT_EQ(atomic_load(&r->usage->active), 0);
	ASSERT_TRUE(route_table_generation(t) > 2000);
	route_table_unref(t);
	RoutesStats st;
	routes_get_stats(e.routes, &st);
	ASSERT_EQ(st.starts_requested, 0); /* no superd service behind it */
	env_done(&e);
}

TEST_MAIN();
