/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parse-util.h"
#include "strutil.h"
#include "superd-health.h"
#include "superd-spawn.h"
#include "test.h"

/* Upper bound for anything we wait for; the tests wait for events, never for speed. */
#define WAIT_MS 30000
/*
 * The check timeout of every test that is not about timeouts: on a loaded machine (ASan,
 * two cores, a busy neighbour) a loopback answer or a fork can take longer than the 1 s
 * default, and a test must not turn that into a different outcome. For the same reason,
 * tests read a check's result as the probe's last reason once it is in, instead of racing
 * a short start_timeout against it; the start timeout itself is tested where its outcome is
 * fixed (the check in flight, or failed before the timer could fire).
 */
#define CHECK_TIMEOUT_MS WAIT_MS

static char *const base_env[] = { (char *)"PATH=/usr/local/bin:/usr/bin:/bin", (char *)"FOO=bar",
				  NULL };

/* ---- A tiny HTTP server on the test's own loop (real sockets) ---- */

typedef enum Answer {
	ANSWER_STATUS,  /* "HTTP/1.1 <status>" */
	ANSWER_GARBAGE, /* not HTTP */
	ANSWER_HANG,    /* read the request, never answer */
} Answer;

typedef struct Server {
	uv_tcp_t tcp;
	uint16_t port;
	Answer answer;
	int status;
	int requests;
	char last_request[2048];
} Server;

typedef struct Conn {
	uv_tcp_t tcp;
	uv_write_t wr;
	Server *server;
	char buf[2048];
	size_t len;
	char reply[256];
} Conn;

static void conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void conn_close(Conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_written(uv_write_t *w, int status)
{
	conn_close(w->data);
}

static void conn_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	Conn *c = h->data;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	Conn *c = s->data;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = 0;
	if (!strstr(c->buf, "\r\n\r\n"))
		return;
	Server *srv = c->server;
	srv->requests++;
	strscpy(srv->last_request, sizeof(srv->last_request), c->buf);
	if (srv->answer == ANSWER_HANG)
		return;
	if (srv->answer == ANSWER_GARBAGE)
		strscpy(c->reply, sizeof(c->reply), "SSH-2.0-OpenSSH_9.2\r\n");
	else
		strfmt(c->reply, sizeof(c->reply),
		       "HTTP/1.1 %d Whatever\r\nContent-Length: 0\r\nLocation: /x\r\n\r\n",
		       srv->status);
	uv_buf_t out = uv_buf_init(c->reply, (unsigned)strlen(c->reply));
	c->wr.data = c;
	ASSERT_OK(uv_write(&c->wr, s, &out, 1, conn_written));
}

static void on_connection(uv_stream_t *s, int status)
{
	Server *srv = s->data;
	Conn *c = calloc(1, sizeof(*c));
	ASSERT_NOT_NULL(c);
	c->server = srv;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	ASSERT_OK(uv_accept(s, (uv_stream_t *)&c->tcp));
	ASSERT_OK(uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read));
}

/* Listen on 127.0.0.1 (or ::1 only) at `port` (0: any). Returns <0 if ::1 is unavailable. */
static int server_start(uv_loop_t *loop, Server *srv, bool ipv6, uint16_t port)
{
	struct sockaddr_storage ss;
	uv_tcp_init(loop, &srv->tcp);
	srv->tcp.data = srv;
	if (ipv6)
		uv_ip6_addr("::1", port, (struct sockaddr_in6 *)&ss);
	else
		uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)&ss);
	int r = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&ss, ipv6 ? UV_TCP_IPV6ONLY : 0);
	if (r >= 0)
		r = uv_listen((uv_stream_t *)&srv->tcp, 16, on_connection);
	if (r < 0)
		return r;
	int len = sizeof(ss);
	ASSERT_OK(uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &len));
	srv->port = ntohs(ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			       : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static void server_stop(Server *srv)
{
	uv_close((uv_handle_t *)&srv->tcp, NULL);
}

/* A port nobody listens on (kernel pick, released). */
static uint16_t unused_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	socklen_t l = sizeof(sa);
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&sa, &l));
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- Probe harness ---- */

typedef struct T T;
/* What a wait is for; arg is the wait's own. */
typedef bool (*TCond)(T *t, const void *arg);

struct T {
	uv_loop_t loop;
	uv_timer_t guard;
	uv_prepare_t prepare;
	TCond until;
	const void *until_arg;
	ChildReaper *reaper;
	HealthProbe *probe;
	int n;
	HealthState states[16];
	char reasons[16][300];
	char sources[16][16];
	int families[16];
	bool free_in_callback;
};

static void on_guard(uv_timer_t *t)
{
	test_fail(__FILE__, __LINE__, "timed out waiting for the probe");
}

static void on_result(HealthProbe *p, const HealthResult *r, void *userdata)
{
	T *t = userdata;
	ASSERT_TRUE(t->n < 16);
	t->states[t->n] = r->state;
	strscpy(t->reasons[t->n], sizeof(t->reasons[0]), strempty(r->reason));
	strscpy(t->sources[t->n], sizeof(t->sources[0]), strempty(r->source));
	t->families[t->n] = r->family;
	t->n++;
	if (t->free_in_callback)
		t->probe = health_probe_free(t->probe);
}

/*
 * Prepare callbacks run after the due timers and right before the loop blocks for I/O. If
 * what we wait for has happened by then, do not block: uv_run(UV_RUN_ONCE) runs timers that
 * are already due (a start timeout that passed while a slow machine was still setting up)
 * before it polls, and would then sleep until the next event, which may be the guard.
 */
static void on_prepare(uv_prepare_t *h)
{
	T *t = h->data;
	if (t->until && t->until(t, t->until_arg))
		uv_stop(&t->loop);
}

static void t_init(T *t)
{
	memset(t, 0, sizeof(*t));
	ASSERT_OK(uv_loop_init(&t->loop));
	uv_timer_init(&t->loop, &t->guard);
	uv_timer_start(&t->guard, on_guard, WAIT_MS, 0);
	uv_prepare_init(&t->loop, &t->prepare);
	t->prepare.data = t;
	uv_prepare_start(&t->prepare, on_prepare);
	uv_unref((uv_handle_t *)&t->prepare);
	ASSERT_OK(child_reaper_new(&t->loop, &t->reaper));
}

static void t_probe(T *t, const HealthConfig *c)
{
	_cleanup_free_ char *error = NULL;
	int r = health_probe_new(&t->loop, t->reaper, c, on_result, t, &t->probe, &error);
	if (r < 0)
		test_fail(__FILE__, __LINE__, "health_probe_new: %s", error ? error : strerror(-r));
	ASSERT_OK(health_probe_start(t->probe));
	ASSERT_ERR(health_probe_start(t->probe), EALREADY);
}

/* Run the loop until cond holds; the guard fails the test if that takes WAIT_MS. */
static void t_run_until(T *t, TCond cond, const void *arg)
{
	t->until = cond;
	t->until_arg = arg;
	while (!cond(t, arg))
		uv_run(&t->loop, UV_RUN_ONCE);
	t->until = NULL;
}

static bool have_results(T *t, const void *arg)
{
	return t->n >= *(const int *)arg;
}

/* Run the loop until the probe has reported n results in total. */
static void t_wait(T *t, int n)
{
	t_run_until(t, have_results, &n);
}

static bool have_reason(T *t, const void *arg)
{
	return health_probe_last_reason(t->probe) != NULL;
}

/* Run the loop until the probe's first check is in: a pass emits HEALTHY, a failure while
 * starting only sets the reason. */
static void wait_first_result(T *t)
{
	t_run_until(t, have_reason, NULL);
}

static bool have_no_children(T *t, const void *arg)
{
	siginfo_t si;
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

/* Run the loop until the reaper has reaped every child we had (killed checks included). */
static void wait_no_children(T *t)
{
	t_run_until(t, have_no_children, NULL);
}

/* Everything closed: uv_loop_close() fails with EBUSY if a handle was left behind. */
static void t_done(T *t)
{
	t->probe = health_probe_free(t->probe);
	child_reaper_free(t->reaper);
	uv_close((uv_handle_t *)&t->guard, NULL);
	uv_close((uv_handle_t *)&t->prepare, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	ASSERT_OK(uv_loop_close(&t->loop));
}

TEST(names)
{
	ASSERT_STREQ(health_kind_to_string(HEALTH_KIND_HTTP), "http");
	ASSERT_EQ(health_kind_from_string("command"), HEALTH_KIND_COMMAND);
	ASSERT_EQ(health_kind_from_string("nope"), _HEALTH_KIND_INVALID);
	ASSERT_STREQ(health_state_to_string(HEALTH_UNHEALTHY), "unhealthy");
	ASSERT_NULL(health_state_to_string(_HEALTH_STATE_MAX));
}

TEST(config_check)
{
	char *e = NULL;
	HealthConfig c = { .kind = HEALTH_KIND_TCP };
	ASSERT_ERR(health_config_check(&c, &e), EINVAL);
	ASSERT_STRCONTAINS(e, "needs a port");
	free(e);
	c = (HealthConfig){ .kind = HEALTH_KIND_HTTP, .port = 80, .path = "/a b" };
	ASSERT_ERR(health_config_check(&c, &e), EINVAL);
	free(e);
	c = (HealthConfig){ .kind = HEALTH_KIND_HTTP, .port = 80, .path = "/x\r\nEvil: 1" };
	ASSERT_ERR(health_config_check(&c, &e), EINVAL);
	free(e);
	c = (HealthConfig){ .kind = HEALTH_KIND_LOG, .ready_log_line = "ready (" };
	ASSERT_ERR(health_config_check(&c, &e), EINVAL);
	ASSERT_TRUE(startswith(e, "ready_log_line: ") != NULL);
	free(e);
	c = (HealthConfig){ .kind = HEALTH_KIND_COMMAND };
	ASSERT_ERR(health_config_check(&c, &e), EINVAL);
	free(e);
	c = (HealthConfig){ .kind = HEALTH_KIND_LOG, .ready_log_line = "^Listening on [0-9]+$" };
	ASSERT_OK(health_config_check(&c, NULL));
	c = (HealthConfig){ .kind = HEALTH_KIND_NOTIFY };
	ASSERT_OK(health_config_check(&c, NULL));
}

TEST(tcp_ready)
{
	T t;
	t_init(&t);
	Server srv = { 0 };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_TCP,
			   .port = srv.port,
			   .timeout_ms = CHECK_TIMEOUT_MS };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_HEALTHY);
	ASSERT_STREQ(t.sources[0], "tcp");
	ASSERT_EQ(t.families[0], AF_INET);
	char want[64];
	strfmt(want, sizeof(want), "connected to 127.0.0.1:%u", (unsigned)srv.port);
	ASSERT_STREQ(t.reasons[0], want);
	ASSERT_EQ(health_probe_get_state(t.probe), HEALTH_HEALTHY);
	server_stop(&srv);
	t_done(&t);
}

TEST(tcp_ipv6_only_listener)
{
	T t;
	t_init(&t);
	Server srv = { 0 };
	if (server_start(&t.loop, &srv, true, 0) < 0)
		SKIP("no IPv6 loopback");
	HealthConfig c = { .kind = HEALTH_KIND_TCP,
			   .port = srv.port,
			   .timeout_ms = CHECK_TIMEOUT_MS };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_HEALTHY);
	ASSERT_EQ(t.families[0], AF_INET6);
	ASSERT_STRCONTAINS(t.reasons[0], "connected to [::1]:");
	server_stop(&srv);
	t_done(&t);
}

TEST(tcp_refused_then_ready)
{
	T t;
	t_init(&t);
	uint16_t port = unused_port();
	HealthConfig c = { .kind = HEALTH_KIND_TCP,
			   .port = port,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .start_timeout_ms = HEALTH_START_TIMEOUT_NONE };
	t_probe(&t, &c);
	/* Failures while starting only update the reason. */
	wait_first_result(&t);
	char want[80];
	strfmt(want, sizeof(want), "connect 127.0.0.1:%u: Connection refused", (unsigned)port);
	ASSERT_STREQ(health_probe_last_reason(t.probe), want);
	ASSERT_EQ(t.n, 0);
	ASSERT_EQ(health_probe_get_state(t.probe), HEALTH_STARTING);

	Server srv = { 0 };
	if (server_start(&t.loop, &srv, false, port) < 0)
		SKIP("someone took the port meanwhile");
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_HEALTHY);
	server_stop(&srv);
	t_done(&t);
}

TEST(start_timeout)
{
	T t;
	t_init(&t);
	/* The one check hangs and its own timeout is far off, so at the start timeout it is
	 * in flight, however slow the machine is. */
	Server srv = { .answer = ANSWER_HANG };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = srv.port,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .start_timeout_ms = 300 };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_UNHEALTHY);
	ASSERT_STREQ(t.reasons[0], "not ready after 300ms: no check completed");
	/* Final: nothing more happens. */
	uv_run(&t.loop, UV_RUN_NOWAIT);
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(health_probe_get_state(t.probe), HEALTH_UNHEALTHY);
	ASSERT_STREQ(health_probe_last_reason(t.probe),
		     "not ready after 300ms: no check completed");
	server_stop(&srv);
	t_done(&t);
}

static void http_case(int status, HealthState want_state, const char *want_reason)
{
	T t;
	t_init(&t);
	Server srv = { .answer = ANSWER_STATUS, .status = status };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = srv.port,
			   .path = "/health",
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .start_timeout_ms = HEALTH_START_TIMEOUT_NONE };
	t_probe(&t, &c);
	wait_first_result(&t);
	ASSERT_EQ(health_probe_get_state(t.probe), want_state);
	ASSERT_STREQ(health_probe_last_reason(t.probe), want_reason);
	if (want_state == HEALTH_HEALTHY) {
		ASSERT_EQ(t.n, 1);
		ASSERT_EQ(t.states[0], HEALTH_HEALTHY);
		ASSERT_STREQ(t.sources[0], "http");
		ASSERT_STREQ(t.reasons[0], want_reason);
	} else
		ASSERT_EQ(t.n, 0);
	ASSERT_TRUE(startswith(srv.last_request, "GET /health HTTP/1.1\r\n") != NULL);
	char host[64];
	strfmt(host, sizeof(host), "\r\nHost: localhost:%u\r\n", (unsigned)srv.port);
	ASSERT_STRCONTAINS(srv.last_request, host);
	ASSERT_STRCONTAINS(srv.last_request, "\r\nConnection: close\r\n");
	server_stop(&srv);
	t_done(&t);
}

TEST(http_200)
{
	http_case(200, HEALTH_HEALTHY, "GET /health → 200");
}

TEST(http_redirect_passes)
{
	http_case(302, HEALTH_HEALTHY, "GET /health → 302");
}

TEST(http_503_never_ready)
{
	http_case(503, HEALTH_STARTING, "GET /health → 503");
}

TEST(http_garbage)
{
	T t;
	t_init(&t);
	Server srv = { .answer = ANSWER_GARBAGE };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = srv.port,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .start_timeout_ms = HEALTH_START_TIMEOUT_NONE };
	t_probe(&t, &c);
	wait_first_result(&t);
	ASSERT_EQ(t.n, 0);
	ASSERT_STREQ(health_probe_last_reason(t.probe), "GET /: not an HTTP response");
	server_stop(&srv);
	t_done(&t);
}

TEST(http_hang_times_out)
{
	T t;
	t_init(&t);
	Server srv = { .answer = ANSWER_HANG };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = srv.port,
			   .timeout_ms = 100,
			   .start_timeout_ms = HEALTH_START_TIMEOUT_NONE };
	t_probe(&t, &c);
	wait_first_result(&t);
	ASSERT_STREQ(health_probe_last_reason(t.probe), "GET /: timed out after 100ms");
	ASSERT_EQ(health_probe_get_state(t.probe), HEALTH_STARTING);
	server_stop(&srv);
	t_done(&t);
}

TEST(http_refused_reason)
{
	T t;
	t_init(&t);
	uint16_t port = unused_port();
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = port,
			   .path = "/up",
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .start_timeout_ms = HEALTH_START_TIMEOUT_NONE };
	t_probe(&t, &c);
	wait_first_result(&t);
	char want[120];
	strfmt(want, sizeof(want), "GET /up: connect 127.0.0.1:%u: Connection refused",
	       (unsigned)port);
	ASSERT_STREQ(health_probe_last_reason(t.probe), want);
	ASSERT_EQ(t.n, 0);
	t_done(&t);
}

typedef struct RequestCount {
	const Server *srv;
	int n;
} RequestCount;

static bool have_requests(T *t, const void *arg)
{
	const RequestCount *c = arg;
	return c->srv->requests >= c->n;
}

/* Run the loop until the server has seen n requests in total. */
static void wait_requests(T *t, Server *srv, int n)
{
	t_run_until(t, have_requests, &(RequestCount){ .srv = srv, .n = n });
}

TEST(liveness_flip)
{
	T t;
	t_init(&t);
	Server srv = { .answer = ANSWER_STATUS, .status = 200 };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = srv.port,
			   .interval_ms = 20,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .retries = 3,
			   .liveness = true };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_HEALTHY);

	/* Still checking after ready. */
	int seen = srv.requests;
	wait_requests(&t, &srv, seen + 2);
	ASSERT_EQ(t.n, 1);

	/* Two failures are tolerated, the third turns it unhealthy. */
	srv.status = 500;
	seen = srv.requests;
	wait_requests(&t, &srv, seen + 2);
	ASSERT_EQ(t.n, 1);
	t_wait(&t, 2);
	ASSERT_EQ(t.states[1], HEALTH_UNHEALTHY);
	ASSERT_STREQ(t.reasons[1], "GET / → 500");
	ASSERT_TRUE(srv.requests >= seen + 3);

	srv.status = 204;
	t_wait(&t, 3);
	ASSERT_EQ(t.states[2], HEALTH_HEALTHY);
	ASSERT_STREQ(t.reasons[2], "GET / → 204");
	server_stop(&srv);
	t_done(&t);
}

TEST(readiness_only_stops_after_ready)
{
	T t;
	t_init(&t);
	Server srv = { .answer = ANSWER_STATUS, .status = 200 };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = srv.port,
			   .interval_ms = 10,
			   .timeout_ms = CHECK_TIMEOUT_MS };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_HEALTHY);
	/* The probe has no timer left: the loop only has the server, guard and reaper. */
	srv.status = 500;
	int seen = srv.requests;
	uv_run(&t.loop, UV_RUN_NOWAIT);
	uv_run(&t.loop, UV_RUN_NOWAIT);
	ASSERT_EQ(srv.requests, seen);
	ASSERT_EQ(t.n, 1);
	server_stop(&srv);
	t_done(&t);
}

TEST(start_period_failures_do_not_count)
{
	T t;
	t_init(&t);
	Server srv = { .answer = ANSWER_STATUS, .status = 200 };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = srv.port,
			   .interval_ms = 10,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .retries = 1,
			   .liveness = true,
			   .start_period_ms = 60000 };
	t_probe(&t, &c);
	t_wait(&t, 1);
	srv.status = 503;
	wait_requests(&t, &srv, srv.requests + 5);
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(health_probe_get_state(t.probe), HEALTH_HEALTHY);
	ASSERT_STREQ(health_probe_last_reason(t.probe), "GET / → 503");
	server_stop(&srv);
	t_done(&t);
}

TEST(command_ok_with_env_and_cwd)
{
	T t;
	t_init(&t);
	_cleanup_free_ char *cwd = realpath(test_tmpdir(), NULL);
	_cleanup_free_ char *cmd = strdupf("test \"$FOO\" = bar && test \"$(pwd)\" = '%s'", cwd);
	HealthConfig c = { .kind = HEALTH_KIND_COMMAND,
			   .command = cmd,
			   .envp = base_env,
			   .workdir = cwd,
			   .timeout_ms = CHECK_TIMEOUT_MS };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_HEALTHY);
	ASSERT_STREQ(t.sources[0], "command");
	ASSERT_STREQ(t.reasons[0], "command exited with status 0");
	t_done(&t);
}

TEST(command_failure_quotes_output)
{
	T t;
	t_init(&t);
	/* No start timeout: the reason is looked at once the first run is in, however long
	 * that takes (a fork under ASan on a busy machine can take longer than any small
	 * start_timeout). */
	HealthConfig c = { .kind = HEALTH_KIND_COMMAND,
			   .command = "echo; echo 'db: not yet' >&2; exit 3",
			   .envp = base_env,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .start_timeout_ms = HEALTH_START_TIMEOUT_NONE };
	t_probe(&t, &c);
	wait_first_result(&t);
	ASSERT_STREQ(health_probe_last_reason(t.probe),
		     "command exited with status 3: db: not yet");
	ASSERT_EQ(t.n, 0);
	ASSERT_EQ(health_probe_get_state(t.probe), HEALTH_STARTING);
	/* A retry may be running: freeing the probe kills it and frees its attempt even
	 * though the reaper goes before the exit is seen. */
	t_done(&t);
}

/* Wait for our only child, which must have been SIGKILLed. */
static void wait_child_killed(void)
{
	siginfo_t si = { 0 };
	while (waitid(P_ALL, 0, &si, WEXITED) < 0)
		ASSERT_EQ(errno, EINTR);
	ASSERT_EQ(si.si_code, CLD_KILLED);
	ASSERT_EQ(si.si_status, SIGKILL);
}

TEST(command_start_timeout_while_running)
{
	T t;
	t_init(&t);
	/* The one check hangs and its own timeout is far off, so at the start timeout it is
	 * always in flight, however slow the machine is. */
	HealthConfig c = { .kind = HEALTH_KIND_COMMAND,
			   .command = "exec sleep 300",
			   .envp = base_env,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .start_timeout_ms = 300 };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_UNHEALTHY);
	ASSERT_STREQ(t.reasons[0], "not ready after 300ms: no check completed");
	/* The reaper goes before the killed command's exit is seen: the attempt must not
	 * wait for it (LeakSanitizer checks at exit). */
	t_done(&t);
	wait_child_killed();
}

TEST(command_free_while_running_then_reaper)
{
	T t;
	t_init(&t);
	HealthConfig c = { .kind = HEALTH_KIND_COMMAND,
			   .command = "exec sleep 300",
			   .envp = base_env,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .start_timeout_ms = HEALTH_START_TIMEOUT_NONE };
	t_probe(&t, &c);
	/* The first check is due at once and spawns synchronously. */
	uv_run(&t.loop, UV_RUN_NOWAIT);
	siginfo_t si = { 0 };
	ASSERT_OK(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT));
	ASSERT_EQ(si.si_pid, 0); /* running, not exited */
	ASSERT_EQ(t.n, 0);
	/* The engine's shutdown order: probes first, then the reaper, then the loop. */
	t_done(&t);
	wait_child_killed();
}

TEST(command_missing_workdir)
{
	T t;
	t_init(&t);
	HealthConfig c = { .kind = HEALTH_KIND_COMMAND,
			   .command = "true",
			   .envp = base_env,
			   .workdir = "/nonexistent",
			   .start_timeout_ms = 200 };
	t_probe(&t, &c);
	t_wait(&t, 1);
	/* Deterministic: the spawn fails inside the first check, which is due before the
	 * start timeout, so the failure is in before the timeout wraps it. */
	ASSERT_EQ(t.states[0], HEALTH_UNHEALTHY);
	ASSERT_STREQ(t.reasons[0], "not ready after 200ms: command: cannot change to working "
				   "directory '/nonexistent': No such file or directory");
	t_done(&t);
}

/* Wait until pid (not necessarily our child) has exited: its pidfd turns readable. */
static void wait_pid_gone(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		ASSERT_EQ(errno, ESRCH);
		return;
	}
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ASSERT_EQ(poll(&pfd, 1, WAIT_MS), 1);
	close(fd);
}

/* Whether a line of the file at path starts with prefix; false if there is no file yet. */
static bool file_has_line(const char *path, const char *prefix)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[64];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found = startswith(line, prefix) != NULL;
	fclose(f);
	return found;
}

static bool timed_out_after_a_sleep(T *t, const void *pids_file)
{
	return health_probe_last_reason(t->probe) && file_has_line(pids_file, "bg ");
}

TEST(command_timeout_kills_process_group)
{
	T t;
	t_init(&t);
	_cleanup_free_ char *pids_file = strdupf("%s/pids", test_tmpdir());
	_cleanup_free_ char *cmd = strdupf(
	    "echo sh $$ >> '%s'; sleep 300 & echo bg $! >> '%s'; wait", pids_file, pids_file);
	HealthConfig c = { .kind = HEALTH_KIND_COMMAND,
			   .command = cmd,
			   .envp = base_env,
			   .timeout_ms = 200,
			   .start_timeout_ms = HEALTH_START_TIMEOUT_NONE };
	t_probe(&t, &c);
	/* Attempts are retried until one has timed out and some attempt got as far as starting
	 * its background sleep: a busy machine may kill a few before they write anything. */
	t_run_until(&t, timed_out_after_a_sleep, pids_file);
	ASSERT_STREQ(health_probe_last_reason(t.probe), "command timed out after 200ms (killed)");
	t.probe = health_probe_free(t.probe);

	/* Every shell and every sleep any attempt started is gone. */
	FILE *f = fopen(pids_file, "re");
	ASSERT_NOT_NULL(f);
	char line[64];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		int pid;
		line[strcspn(line, "\n")] = 0;
		ASSERT_TRUE(strlen(line) > 3);
		ASSERT_OK(safe_atoi(line + 3, &pid));
		wait_pid_gone(pid);
		n++;
	}
	fclose(f);
	ASSERT_TRUE(n >= 2);
	wait_no_children(&t);
	t_done(&t);
}

TEST(log_line_regex)
{
	T t;
	t_init(&t);
	HealthConfig c = { .kind = HEALTH_KIND_LOG,
			   .ready_log_line = "^Listening on port [0-9]+$" };
	t_probe(&t, &c);
	const char *l1 = "starting up";
	const char *l2 = "Listening on port 80 (not yet)";
	const char *l3 = "\033[32mListening on port 8080\033[0m\r";
	health_probe_feed_line(t.probe, l1, strlen(l1));
	health_probe_feed_line(t.probe, l2, strlen(l2));
	ASSERT_EQ(t.n, 0);
	health_probe_feed_line(t.probe, l3, strlen(l3));
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(t.states[0], HEALTH_HEALTHY);
	ASSERT_STREQ(t.sources[0], "log");
	ASSERT_STREQ(t.reasons[0], "log line matched: Listening on port 8080");
	/* Later lines change nothing. */
	health_probe_feed_line(t.probe, l3, strlen(l3));
	ASSERT_EQ(t.n, 1);
	t_done(&t);
}

TEST(log_line_with_nul_and_no_match_times_out)
{
	T t;
	t_init(&t);
	HealthConfig c = { .kind = HEALTH_KIND_LOG,
			   .ready_log_line = "ready",
			   .start_timeout_ms = 200 };
	t_probe(&t, &c);
	health_probe_feed_line(t.probe, "re\0ady", 6);
	t_wait(&t, 1);
	ASSERT_EQ(t.states[0], HEALTH_UNHEALTHY);
	ASSERT_STREQ(t.reasons[0], "no output line matched /ready/ within 200ms");
	t_done(&t);
}

TEST(notify_is_engine_driven)
{
	T t;
	t_init(&t);
	HealthConfig c = { .kind = HEALTH_KIND_NOTIFY };
	t_probe(&t, &c);
	uv_run(&t.loop, UV_RUN_NOWAIT);
	ASSERT_EQ(t.n, 0);
	health_probe_report(t.probe, true, "READY=1");
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(t.states[0], HEALTH_HEALTHY);
	ASSERT_STREQ(t.sources[0], "notify");
	ASSERT_STREQ(t.reasons[0], "READY=1");
	t_done(&t);
}

TEST(notify_start_timeout)
{
	T t;
	t_init(&t);
	HealthConfig c = { .kind = HEALTH_KIND_NOTIFY, .start_timeout_ms = 100 };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_STREQ(t.reasons[0], "no READY=1 within 100ms");
	t_done(&t);
}

TEST(free_inside_callback)
{
	T t;
	t_init(&t);
	Server srv = { .answer = ANSWER_STATUS, .status = 200 };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	t.free_in_callback = true;
	HealthConfig c = { .kind = HEALTH_KIND_HTTP,
			   .port = srv.port,
			   .timeout_ms = CHECK_TIMEOUT_MS,
			   .liveness = true,
			   .interval_ms = 10 };
	t_probe(&t, &c);
	t_wait(&t, 1);
	ASSERT_NULL(t.probe);
	server_stop(&srv);
	t_done(&t);
}

TEST(free_while_checks_in_flight)
{
	T t;
	t_init(&t);
	Server srv = { .answer = ANSWER_HANG };
	ASSERT_OK(server_start(&t.loop, &srv, false, 0));
	HealthConfig c = { .kind = HEALTH_KIND_HTTP, .port = srv.port };
	t_probe(&t, &c);
	wait_requests(&t, &srv, 1);
	t.probe = health_probe_free(t.probe);

	T u;
	t_init(&u);
	HealthConfig d = { .kind = HEALTH_KIND_COMMAND, .command = "sleep 300", .envp = base_env };
	t_probe(&u, &d);
	uv_run(&u.loop, UV_RUN_NOWAIT);
	u.probe = health_probe_free(u.probe);
	ASSERT_EQ(u.n, 0);
	/* The killed command is still reaped through the reaper. */
	wait_no_children(&u);
	ASSERT_EQ(u.n, 0);
	t_done(&u);

	ASSERT_EQ(t.n, 0);
	server_stop(&srv);
	t_done(&t);
}

TEST_MAIN();
