/* SPDX-License-Identifier: MIT */
/*
 * The bus over real ZeroMQ ipc:// sockets in the test's temporary runtime directory.
 * Servers run in child processes (forked with test handlers, or bus-test-server
 * exec'd), clients in the test process.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bus.h"
#include "strutil.h"
#include "test.h"
#include "time-util.h"

#define CALL_TIMEOUT_MS 5000

/* ---- A server with test handlers, in a child process ---- */

typedef struct Deferred Deferred;
struct Deferred {
	Deferred *next;
	BusCall *call;
	LoopTimer *timer;
};

typedef struct ChildServer {
	Loop *loop;
	BusServer *bus;
	Deferred *deferred;
} ChildServer;

static void reply_echo(BusCall **call, const ProtobufCBinaryData *payload)
{
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__EchoResult result = LOCALD__V1__ECHO_RESULT__INIT;
	result.payload = *payload;
	reply.result_case = LOCALD__V1__REPLY__RESULT_ECHO;
	reply.echo = &result;
	(void)bus_call_reply(call, &reply);
}

static void on_echo_later(LoopTimer *t, void *userdata)
{
	Deferred *d = userdata;
	loop_timer_stop(t);
	if (d->call)
		reply_echo(&d->call, &bus_call_get_request(d->call)->echo->payload);
}

static bool payload_is(const Locald__V1__Echo *e, const char *s)
{
	return e->payload.len == strlen(s) && memcmp(e->payload.data, s, e->payload.len) == 0;
}

static int child_on_echo(BusCall *call, const BusRequest *req, void *userdata)
{
	ChildServer *cs = userdata;
	const Locald__V1__Echo *e = req->echo;

	if (payload_is(e, "forget"))
		return 0;
	if (payload_is(e, "fail-enoent"))
		return -ENOENT;
	if (payload_is(e, "big")) {
		ProtobufCBinaryData big = { .len = BUS_FRAME_MAX,
					    .data = calloc(1, BUS_FRAME_MAX) };
		reply_echo(&call, &big);
		free(big.data);
		return 0;
	}
	if (payload_is(e, "defer-then-exit"))
		loop_exit(cs->loop, 0);
	if (payload_is(e, "defer-forever") || payload_is(e, "defer-then-exit") || e->delay_ms > 0) {
		Deferred *d = calloc(1, sizeof(*d));
		if (!d)
			return -ENOMEM;
		d->call = bus_call_defer(call);
		d->next = cs->deferred;
		cs->deferred = d;
		if (e->delay_ms > 0 &&
		    loop_timer_new(cs->loop, e->delay_ms, 0, on_echo_later, d, &d->timer) < 0)
			return -ENOMEM;
		return 0;
	}
	reply_echo(&call, &e->payload);
	return 0;
}

static void child_on_sigterm(LoopSignal *s, int signo, void *userdata)
{
	loop_exit(userdata, 0);
}

static _Noreturn void child_server_main(int ready_fd, const char *dir, const char *name,
					uint64_t call_timeout_ms)
{
	ChildServer cs = {};
	LoopSignal *sig = NULL;
	char ok = 1;

	if (loop_new(&cs.loop) < 0 ||
	    loop_signal_new(cs.loop, SIGTERM, child_on_sigterm, cs.loop, &sig) < 0)
		_exit(10);
	int r = bus_server_new(cs.loop, NULL, dir, name, &cs.bus);
	if (r < 0) {
		fprintf(stderr, "child server: %s\n", strerror(-r));
		_exit(11);
	}
	if (bus_server_add_handler(cs.bus, LOCALD__V1__REQUEST__CALL_ECHO, child_on_echo, &cs) < 0)
		_exit(12);
	bus_server_set_call_timeout(cs.bus, call_timeout_ms);
	if (write(ready_fd, &ok, 1) != 1)
		_exit(13);
	close(ready_fd);

	r = loop_run(cs.loop);
	cs.bus = bus_server_free(cs.bus);
	while (cs.deferred) {
		Deferred *d = cs.deferred;
		cs.deferred = d->next;
		/* Answered by bus_server_free(); ours to free. */
		if (d->call && !bus_call_is_answered(d->call))
			_exit(14);
		bus_call_free(d->call);
		loop_timer_free(d->timer);
		free(d);
	}
	loop_signal_free(sig);
	loop_free(cs.loop);
	_exit(r == 0 ? 0 : 15);
}

/* Call before the test process has ZeroMQ threads (any context): the child goes on
 * without exec. Otherwise use spawn_test_server(). */
static pid_t fork_server(const char *name, uint64_t call_timeout_ms)
{
	int p[2];
	char c;
	const char *dir = test_tmpdir();

	ASSERT_OK(pipe2(p, O_CLOEXEC));
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		/* A failing test must not leave its server behind. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		child_server_main(p[1], dir, name, call_timeout_ms);
	}
	close(p[1]);
	ASSERT_EQ(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static int stop_server(pid_t pid, int signo)
{
	int status;
	ASSERT_OK(kill(pid, signo));
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* The bus-test-server binary; "ready ..." on its stdout when bound. */
static pid_t spawn_test_server(const char *name)
{
	int p[2];
	char buf[1024];
	size_t n = 0;
	const char *dir = test_tmpdir(); /* before fork: the child would make its own */

	ASSERT_OK(pipe2(p, O_CLOEXEC));
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		execl(BUS_TEST_SERVER, BUS_TEST_SERVER, "--runtime-dir", dir, "--name", name,
		      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (n < sizeof(buf) - 1 && !memchr(buf, '\n', n)) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		ASSERT_EQ(poll(&pfd, 1, 5000), 1);
		ssize_t k = read(p[0], buf + n, sizeof(buf) - 1 - n);
		ASSERT_TRUE(k > 0);
		n += (size_t)k;
	}
	buf[n] = 0;
	close(p[0]);
	ASSERT_TRUE(startswith(buf, "ready ipc://") != NULL);
	return pid;
}

static char *endpoint(const char *name, BusSocketKind kind)
{
	char *e = NULL;
	ASSERT_OK(bus_endpoint(test_tmpdir(), name, kind, &e));
	return e;
}

/* ---- Client helpers ---- */

static BusReply *call_echo(BusClient *c, const char *payload, uint32_t delay_ms,
			   uint64_t timeout_ms, int *ret)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Echo echo = LOCALD__V1__ECHO__INIT;
	BusReply *reply = NULL;
	req.call_case = LOCALD__V1__REQUEST__CALL_ECHO;
	req.echo = &echo;
	echo.payload.data = (uint8_t *)payload;
	echo.payload.len = strlen(payload);
	echo.delay_ms = delay_ms;
	*ret = bus_client_call(c, &req, timeout_ms, &reply);
	return reply;
}

static void assert_echo(BusClient *c, const char *payload, uint32_t delay_ms)
{
	int r;
	_cleanup_(bus_reply_freep) BusReply *reply =
	    call_echo(c, payload, delay_ms, CALL_TIMEOUT_MS, &r);
	ASSERT_OK(r);
	ASSERT_EQ(reply->result_case, LOCALD__V1__REPLY__RESULT_ECHO);
	ASSERT_EQ(reply->echo->payload.len, strlen(payload));
	ASSERT_TRUE(reply->echo->payload.len == 0 ||
		    memcmp(reply->echo->payload.data, payload, strlen(payload)) == 0);
}

static void assert_echo_error(BusClient *c, const char *payload, BusErrorCode code,
			      const char *needle)
{
	int r;
	_cleanup_(bus_reply_freep) BusReply *reply = call_echo(c, payload, 0, CALL_TIMEOUT_MS, &r);
	ASSERT_OK(r);
	const BusErrorMessage *e = bus_reply_get_error(reply);
	ASSERT_NOT_NULL(e);
	ASSERT_EQ(e->code, code);
	ASSERT_STRCONTAINS(e->message, needle);
}

static int ping(BusClient *c, uint64_t timeout_ms)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Ping p = LOCALD__V1__PING__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_PING;
	req.ping = &p;
	p.token = (char *)"tok";
	_cleanup_(bus_reply_freep) BusReply *reply = NULL;
	int r = bus_client_call(c, &req, timeout_ms, &reply);
	if (r < 0)
		return r;
	ASSERT_EQ(reply->result_case, LOCALD__V1__REPLY__RESULT_PONG);
	ASSERT_STREQ(reply->pong->token, "tok");
	return 0;
}

/* Send raw frames on a fresh socket, return the decoded reply (NULL on timeout). */
static BusReply *raw_call(int type, const char *ep, const void *const *frames, const size_t *sizes,
			  size_t n, int timeout_ms)
{
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, type);
	int zero = 0;
	int64_t max = -1;
	BusReply *reply = NULL;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	ASSERT_OK(zmq_connect(s, ep));
	for (size_t i = 0; i < n; i++)
		ASSERT_TRUE(zmq_send(s, frames[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
	zmq_pollitem_t item = { .socket = s, .events = ZMQ_POLLIN };
	if (zmq_poll(&item, 1, timeout_ms) == 1) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		ASSERT_TRUE(zmq_msg_recv(&m, s, 0) >= 0);
		ASSERT_FALSE(zmq_msg_more(&m)); /* DEALER and REQ both get one frame */
		BusError e = {};
		ASSERT_OK(bus_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), &reply, &e));
		zmq_msg_close(&m);
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
	return reply;
}

static void assert_error_reply(BusReply *reply, BusErrorCode code, const char *request_id,
			       const char *needle)
{
	ASSERT_NOT_NULL(reply);
	const BusErrorMessage *e = bus_reply_get_error(reply);
	ASSERT_NOT_NULL(e);
	ASSERT_EQ(e->code, code);
	ASSERT_STREQ(reply->request_id, request_id);
	ASSERT_STRCONTAINS(e->message, needle);
	bus_reply_free(reply);
}

static size_t pack_request(BusRequest *req, uint8_t **ret)
{
	size_t n = protobuf_c_message_get_packed_size(&req->base);
	*ret = malloc(n ? n : 1);
	ASSERT_NOT_NULL(*ret);
	protobuf_c_message_pack(&req->base, *ret);
	return n;
}

/* ---- Request / reply ---- */

TEST(ping_version_echo)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));

	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));

	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__GetVersion gv = LOCALD__V1__GET_VERSION__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_GET_VERSION;
	req.get_version = &gv;
	req.request_id = (char *)"kept";
	_cleanup_(bus_reply_freep) BusReply *reply = NULL;
	ASSERT_OK(bus_client_call(c, &req, CALL_TIMEOUT_MS, &reply));
	ASSERT_EQ(reply->result_case, LOCALD__V1__REPLY__RESULT_VERSION);
	ASSERT_STREQ(reply->version->daemon, "t");
	ASSERT_STREQ(reply->version->version, LOCALD_VERSION);
	ASSERT_EQ(reply->version->api_version, BUS_API_VERSION);
	ASSERT_EQ(reply->version->pid, pid);
	/* The caller's request is left as it was. */
	ASSERT_STREQ(req.request_id, "kept");
	ASSERT_EQ(req.api_version, 0);

	assert_echo(c, "hello", 0);
	assert_echo(c, "", 0);

	/* Socket files: 0600, in a 0700 directory. */
	struct stat st;
	_cleanup_free_ char *path = NULL;
	ASSERT_OK(bus_socket_path(test_tmpdir(), "t", BUS_SOCKET_RPC, &path));
	ASSERT_OK(stat(path, &st));
	ASSERT_TRUE(S_ISSOCK(st.st_mode));
	ASSERT_EQ(st.st_mode & 07777, 0600);

	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
	/* A clean stop removes the socket files. */
	ASSERT_TRUE(access(path, F_OK) < 0);
}

TEST(garbage_gets_invalid_argument)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	const void *f[20];
	size_t sz[20];

	/* DEALER, one frame of garbage. */
	f[0] = "\xff\xff\xff garbage";
	sz[0] = 12;
	assert_error_reply(raw_call(ZMQ_DEALER, ep, f, sz, 1, 5000),
			   LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, "", "malformed frame");
	/* REQ adds the empty delimiter itself; the reply comes back through it. */
	assert_error_reply(raw_call(ZMQ_REQ, ep, f, sz, 1, 5000),
			   LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, "", "malformed frame");
	/* DEALER with an explicit delimiter, like REQ: fine too. */
	f[1] = f[0];
	sz[1] = sz[0];
	f[0] = "";
	sz[0] = 0;
	{
		void *ctx = zmq_ctx_new();
		void *s = zmq_socket(ctx, ZMQ_DEALER);
		int zero = 0;
		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
		ASSERT_OK(zmq_connect(s, ep));
		ASSERT_TRUE(zmq_send(s, "", 0, ZMQ_SNDMORE) == 0);
		ASSERT_TRUE(zmq_send(s, "junk", 4, 0) == 4);
		char buf[BUS_ERROR_REPLY_MAX];
		ASSERT_EQ(zmq_recv(s, buf, sizeof(buf), 0), 0); /* the delimiter comes back */
		int n = zmq_recv(s, buf, sizeof(buf), 0);
		ASSERT_TRUE(n > 0);
		BusReply *reply = NULL;
		BusError e = {};
		ASSERT_OK(bus_reply_decode(buf, (size_t)n, &reply, &e));
		assert_error_reply(reply, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, "",
				   "malformed frame");
		zmq_close(s);
		zmq_ctx_term(ctx);
	}
	/* Two frames without a delimiter. */
	f[0] = "a";
	sz[0] = 1;
	f[1] = "b";
	sz[1] = 1;
	assert_error_reply(raw_call(ZMQ_DEALER, ep, f, sz, 2, 5000),
			   LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, "", "must be one frame");
	/* Too many frames. */
	for (size_t i = 0; i < 20; i++) {
		f[i] = "x";
		sz[i] = 1;
	}
	assert_error_reply(raw_call(ZMQ_DEALER, ep, f, sz, 20, 5000),
			   LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, "", "too many frames");
	/* An empty frame: a Request without request_id. */
	f[0] = "";
	sz[0] = 0;
	assert_error_reply(raw_call(ZMQ_DEALER, ep, f, sz, 1, 5000),
			   LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, "", "request_id is missing");

	/* The server is still fine. */
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));
	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

TEST(api_version_mismatch)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Ping p = LOCALD__V1__PING__INIT;
	req.api_version = 2;
	req.request_id = (char *)"v2-call";
	req.call_case = LOCALD__V1__REQUEST__CALL_PING;
	req.ping = &p;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t n = pack_request(&req, &buf);
	const void *f[] = { buf };
	BusReply *reply = raw_call(ZMQ_DEALER, ep, f, &n, 1, 5000);
	ASSERT_NOT_NULL(reply);
	ASSERT_STRCONTAINS(bus_reply_get_error(reply)->hint, "api_version = 1");
	assert_error_reply(reply, LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION, "v2-call",
			   "api_version 2");
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

TEST(unimplemented_call)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));

	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Status st = LOCALD__V1__STATUS__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	_cleanup_(bus_reply_freep) BusReply *reply = NULL;
	ASSERT_OK(bus_client_call(c, &req, CALL_TIMEOUT_MS, &reply));
	const BusErrorMessage *e = bus_reply_get_error(reply);
	ASSERT_NOT_NULL(e);
	ASSERT_EQ(e->code, LOCALD__V1__ERROR__CODE__UNIMPLEMENTED);
	ASSERT_STRCONTAINS(e->message, "status");

	/* A call newer than the daemon (unknown field 777). */
	static const uint8_t frame[] = { 0x08, 0x01, 0x12, 0x03, 'n', 'e', 'w', 0xca, 0x30, 0x00 };
	const void *f[] = { frame };
	size_t sz[] = { sizeof(frame) };
	assert_error_reply(raw_call(ZMQ_DEALER, ep, f, sz, 1, 5000),
			   LOCALD__V1__ERROR__CODE__UNIMPLEMENTED, "new", "unknown call");
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

TEST(handler_errors)
{
	pid_t pid = fork_server("t", 300);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));

	assert_echo_error(c, "forget", LOCALD__V1__ERROR__CODE__INTERNAL,
			  "returned without a reply");
	assert_echo_error(c, "fail-enoent", LOCALD__V1__ERROR__CODE__NOT_FOUND, "echo failed");
	assert_echo_error(c, "big", LOCALD__V1__ERROR__CODE__INTERNAL, "exceeds the frame limit");
	usec_t t0 = now_monotonic();
	assert_echo_error(c, "defer-forever", LOCALD__V1__ERROR__CODE__UNAVAILABLE,
			  "did not answer within 300 ms");
	ASSERT_TRUE(now_monotonic() - t0 >= 300 * USEC_PER_MSEC);
	/* Deferred, answered later: fine. */
	assert_echo(c, "later", 50);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

TEST(oversize_frames)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);

	/* Over the codec limit, under the transport limit: answered, with the request_id. */
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Echo echo = LOCALD__V1__ECHO__INIT;
	req.api_version = 1;
	req.request_id = (char *)"too-big";
	req.call_case = LOCALD__V1__REQUEST__CALL_ECHO;
	req.echo = &echo;
	echo.payload.len = BUS_FRAME_MAX + 1;
	echo.payload.data = calloc(1, BUS_TRANSPORT_MAX + 1);
	_cleanup_free_ uint8_t *buf = NULL;
	size_t n = pack_request(&req, &buf);
	const void *f[] = { buf };
	assert_error_reply(raw_call(ZMQ_DEALER, ep, f, &n, 1, 5000),
			   LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, "too-big",
			   "exceeds the limit");

	/* The client refuses to send it. */
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	_cleanup_(bus_reply_freep) BusReply *reply = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));
	ASSERT_ERR(bus_client_call(c, &req, CALL_TIMEOUT_MS, &reply), E2BIG);

	/* Over the transport limit: libzmq drops the connection; no reply, no harm. */
	free(buf);
	echo.payload.len = BUS_TRANSPORT_MAX + 1;
	n = pack_request(&req, &buf);
	f[0] = buf;
	ASSERT_NULL(raw_call(ZMQ_DEALER, ep, f, &n, 1, 1000));
	free(echo.payload.data);

	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

/* ---- Timeouts and dead servers ---- */

TEST(client_timeout_no_confusion_with_late_reply)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));
	int r;

	/* Connected first, so "first" surely reaches the server. */
	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));
	usec_t t0 = now_monotonic();
	BusReply *reply = call_echo(c, "first", 300, 100, &r);
	ASSERT_ERR(r, ETIMEDOUT);
	ASSERT_NULL(reply);
	usec_t took = now_monotonic() - t0;
	ASSERT_TRUE(took >= 100 * USEC_PER_MSEC && took < 2000 * USEC_PER_MSEC);

	/* The late reply to "first" (due at 300 ms) comes while we wait for "second": it must
	 * not be taken for it (the client replaced its socket after the time-out, and
	 * matches request ids anyway). */
	assert_echo(c, "second", 600);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

/* The servers are exec'd: forking a process that already runs ZeroMQ threads (our
 * client's) and going on without exec is asking for a lock held by a thread that does
 * not exist in the child. */
/* A server that answers every request with someone else's reply, garbage and an
 * anonymous error before the real reply. */
static _Noreturn void foreign_server_main(int ready_fd, const char *ep)
{
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_ROUTER);
	char ok = 1;
	if (zmq_bind(s, ep) < 0 || write(ready_fd, &ok, 1) != 1)
		_exit(10);
	for (;;) {
		zmq_pollitem_t item = { .socket = s, .events = ZMQ_POLLIN };
		if (zmq_poll(&item, 1, -1) < 0)
			_exit(11);
		zmq_msg_t id, body;
		zmq_msg_init(&id);
		zmq_msg_init(&body);
		if (zmq_msg_recv(&id, s, 0) < 0 || zmq_msg_recv(&body, s, 0) < 0)
			_exit(12);
		BusRequest *req = NULL;
		BusError e = {};
		if (bus_request_decode(zmq_msg_data(&body), zmq_msg_size(&body), &req, &e) < 0)
			_exit(13);

		BusReply reply = LOCALD__V1__REPLY__INIT;
		Locald__V1__Pong pong = LOCALD__V1__PONG__INIT;
		reply.result_case = LOCALD__V1__REPLY__RESULT_PONG;
		reply.pong = &pong;
		uint8_t buf[BUS_ERROR_REPLY_MAX];
		const char *ids[] = { "someone-else", NULL, "", req->request_id };
		for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
			size_t n;
			if (!ids[i]) {
				memcpy(buf, "\xff\xff garbage", 10);
				n = 10;
			} else if (isempty(ids[i])) {
				bus_error_set(&e, LOCALD__V1__ERROR__CODE__INTERNAL, NULL,
					      "anonymous");
				n = bus_error_reply_encode("", &e, buf);
			} else {
				reply.request_id = (char *)ids[i];
				pong.token = (char *)(i == 3 ? "right" : "wrong");
				n = protobuf_c_message_pack(&reply.base, buf);
			}
			zmq_send(s, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
			zmq_send(s, buf, n, 0);
		}
		bus_request_free(req);
		zmq_msg_close(&id);
		zmq_msg_close(&body);
	}
}

TEST(client_matches_replies_by_request_id)
{
	_cleanup_free_ char *ep = endpoint("raw", BUS_SOCKET_RPC);
	int p[2];
	char ok;
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		foreign_server_main(p[1], ep);
	}
	close(p[1]);
	ASSERT_EQ(read(p[0], &ok, 1), 1);
	close(p[0]);

	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Ping ping_ = LOCALD__V1__PING__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_PING;
	req.ping = &ping_;
	for (unsigned i = 1; i <= 3; i++) {
		_cleanup_(bus_reply_freep) BusReply *reply = NULL;
		ASSERT_OK(bus_client_call(c, &req, CALL_TIMEOUT_MS, &reply));
		ASSERT_STREQ(reply->pong->token, "right");
		ASSERT_EQ(bus_client_get_dropped(c), 3 * i);
	}
	ASSERT_EQ(stop_server(pid, SIGKILL), -SIGKILL);
}

TEST(server_gone)
{
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));

	/* Never started. */
	usec_t t0 = now_monotonic();
	ASSERT_ERR(ping(c, CALL_TIMEOUT_MS), ECONNREFUSED);
	ASSERT_TRUE(now_monotonic() - t0 < 2000 * USEC_PER_MSEC);

	/* Stopped cleanly. */
	pid_t pid = spawn_test_server("t");
	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
	ASSERT_ERR(ping(c, CALL_TIMEOUT_MS), ECONNREFUSED);

	/* Killed: a stale socket file stays behind. */
	pid = spawn_test_server("t");
	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));
	ASSERT_EQ(stop_server(pid, SIGKILL), -SIGKILL);
	ASSERT_ERR(ping(c, CALL_TIMEOUT_MS), ECONNREFUSED);

	/* The next server replaces the stale file; the same client talks to it. */
	pid = spawn_test_server("t");
	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));

	/* Hung: times out. */
	ASSERT_OK(kill(pid, SIGSTOP));
	t0 = now_monotonic();
	ASSERT_ERR(ping(c, 200), ETIMEDOUT);
	ASSERT_TRUE(now_monotonic() - t0 < 2000 * USEC_PER_MSEC);
	ASSERT_OK(kill(pid, SIGCONT));
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

TEST(endpoint_in_use)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_(loop_freep) Loop *loop = NULL;
	BusServer *s = NULL;
	ASSERT_OK(loop_new(&loop));
	ASSERT_ERR(bus_server_new(loop, NULL, test_tmpdir(), "t", &s), EADDRINUSE);
	ASSERT_NULL(s);
	ASSERT_ERR(bus_server_new(loop, NULL, test_tmpdir(), "Bad/Name", &s), EINVAL);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);

	/* A regular file where the socket should be is not ours to remove. */
	_cleanup_free_ char *path = NULL;
	ASSERT_OK(bus_socket_path(test_tmpdir(), "f", BUS_SOCKET_RPC, &path));
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	ASSERT_TRUE(bus_server_new(loop, NULL, test_tmpdir(), "f", &s) < 0);
	ASSERT_TRUE(access(path, F_OK) == 0);
}

TEST(shutdown_answers_deferred_calls)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	int r;

	ASSERT_OK(bus_client_new(NULL, ep, &c));
	/* The server parks the call, then starts shutting down. */
	_cleanup_(bus_reply_freep) BusReply *reply =
	    call_echo(c, "defer-then-exit", 0, CALL_TIMEOUT_MS, &r);
	ASSERT_OK(r);
	const BusErrorMessage *e = bus_reply_get_error(reply);
	ASSERT_NOT_NULL(e);
	ASSERT_EQ(e->code, LOCALD__V1__ERROR__CODE__UNAVAILABLE);
	ASSERT_STRCONTAINS(e->message, "shutting down");
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- Many clients ---- */

#define N_CLIENTS 200
#define CALLS_PER_CLIENT 5

typedef struct Worker {
	pthread_t thread;
	void *ctx;
	const char *ep;
	unsigned index;
	int result;
} Worker;

static void *worker_main(void *arg)
{
	Worker *w = arg;
	BusClient *c = NULL;
	w->result = bus_client_new(w->ctx, w->ep, &c);
	for (unsigned j = 0; w->result >= 0 && j < CALLS_PER_CLIENT; j++) {
		char payload[64];
		int r;
		(void)strfmt(payload, sizeof(payload), "client %u call %u", w->index, j);
		/* Some deferred, so replies to different clients interleave. */
		BusReply *reply = call_echo(c, payload, (w->index + j) % 3, 30000, &r);
		if (r < 0)
			w->result = r;
		else if (reply->result_case != LOCALD__V1__REPLY__RESULT_ECHO ||
			 reply->echo->payload.len != strlen(payload) ||
			 memcmp(reply->echo->payload.data, payload, strlen(payload)) != 0)
			w->result = -EBADMSG;
		bus_reply_free(reply);
	}
	bus_client_free(c);
	return NULL;
}

TEST(concurrent_clients)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	static Worker w[N_CLIENTS];
	void *ctx = zmq_ctx_new();
	/* 200 DEALERs plus the context's own sockets. */
	ASSERT_OK(zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 1024));

	for (unsigned i = 0; i < N_CLIENTS; i++) {
		w[i] = (Worker){ .ctx = ctx, .ep = ep, .index = i };
		ASSERT_EQ(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < N_CLIENTS; i++) {
		ASSERT_EQ(pthread_join(w[i].thread, NULL), 0);
		if (w[i].result < 0)
			test_fail(__FILE__, __LINE__, "client %u: %s", i, strerror(-w[i].result));
	}
	zmq_ctx_term(ctx);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

/* ---- Other users ---- */

/* In a child that became `nobody`: what does a ping get? */
static int ping_as_nobody(const char *ep, int *ret_probe)
{
	int p[2];
	int res[2];
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		BusClient *c = NULL;
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(77);
		res[0] = bus_endpoint_probe(ep);
		res[1] = bus_client_new(NULL, ep, &c);
		if (res[1] >= 0)
			res[1] = ping(c, 500);
		bus_client_free(c);
		if (write(p[1], res, sizeof(res)) != sizeof(res))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (WEXITSTATUS(status) == 77)
		SKIP("cannot become uid 65534");
	ASSERT_EQ(read(p[0], res, sizeof(res)), sizeof(res));
	close(p[0]);
	*ret_probe = res[0];
	return res[1];
}

TEST(other_uid_refused)
{
	if (geteuid() != 0)
		SKIP("needs root to run a client as another uid");
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	_cleanup_free_ char *path = NULL;
	int probe;
	ASSERT_OK(bus_socket_path(test_tmpdir(), "t", BUS_SOCKET_RPC, &path));

	/* As set up: the 0700 runtime directory keeps others from even reaching the socket. */
	ASSERT_ERR(ping_as_nobody(ep, &probe), EACCES);
	ASSERT_ERR(probe, EACCES);

	/* Loosen the directory and the socket file: the kernel now lets nobody connect
	 * (the probe's plain connect() works), and the uid filter is what refuses. */
	ASSERT_OK(chmod(test_tmpdir(), 0755));
	ASSERT_OK(chmod(path, 0666));
	ASSERT_ERR(ping_as_nobody(ep, &probe), ETIMEDOUT);
	ASSERT_EQ(probe, 0);

	/* We still get in. */
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, ep, &c));
	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

/* ---- Asynchronous calls ---- */

static void on_stop(LoopTimer *t, void *userdata)
{
	loop_exit(userdata, 0);
}

static void run_for(Loop *loop, uint64_t ms)
{
	LoopTimer *t = NULL;
	ASSERT_OK(loop_timer_new(loop, ms, 0, on_stop, loop, &t));
	ASSERT_EQ(loop_run(loop), 0);
	loop_timer_free(t);
}

typedef struct AsyncState {
	Loop *loop;
	unsigned done, ok, errors, timeouts, cancelled;
	unsigned want;
	int last_error;
	bool free_in_callback;
	BusAsyncClient *client;
} AsyncState;

static void on_async_reply(BusAsyncClient *c, int error, const BusReply *reply, void *userdata)
{
	AsyncState *st = userdata;
	st->done++;
	st->last_error = error;
	if (error == -ETIMEDOUT)
		st->timeouts++;
	else if (error == -ECANCELED)
		st->cancelled++;
	else if (error == 0 && bus_reply_get_error(reply))
		st->errors++;
	else if (error == 0)
		st->ok++;
	if (st->free_in_callback) {
		st->free_in_callback = false;
		st->client = bus_async_client_free(c);
	}
	if (st->done == st->want)
		loop_exit(st->loop, 0);
}

static void on_watchdog(LoopTimer *t, void *userdata)
{
	test_fail(__FILE__, __LINE__, "watchdog fired");
}

static int async_echo(BusAsyncClient *c, const char *payload, uint32_t delay_ms,
		      uint64_t timeout_ms, AsyncState *st)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Echo echo = LOCALD__V1__ECHO__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_ECHO;
	req.echo = &echo;
	echo.payload.data = (uint8_t *)payload;
	echo.payload.len = strlen(payload);
	echo.delay_ms = delay_ms;
	return bus_async_client_call(c, &req, timeout_ms, on_async_reply, st);
}

TEST(async_calls)
{
	pid_t pid = fork_server("t", 0);
	_cleanup_free_ char *ep = endpoint("t", BUS_SOCKET_RPC);
	_cleanup_(loop_freep) Loop *loop = NULL;
	LoopTimer *wd = NULL;
	ASSERT_OK(loop_new(&loop));
	ASSERT_OK(loop_timer_new(loop, 20000, 0, on_watchdog, NULL, &wd));

	AsyncState st = { .loop = loop };
	ASSERT_OK(bus_async_client_new(loop, NULL, ep, &st.client));

	/* Replies, in any order, each to its own call; one times out. */
	st.want = 4;
	ASSERT_OK(async_echo(st.client, "a", 100, 5000, &st));
	ASSERT_OK(async_echo(st.client, "b", 0, 5000, &st));
	ASSERT_OK(async_echo(st.client, "c", 20, 5000, &st));
	ASSERT_OK(async_echo(st.client, "slow", 500, 100, &st));
	ASSERT_EQ(bus_async_client_get_pending(st.client), 4);
	ASSERT_EQ(loop_run(loop), 0);
	ASSERT_EQ(st.ok, 3);
	ASSERT_EQ(st.timeouts, 1);
	ASSERT_EQ(bus_async_client_get_pending(st.client), 0);
	/* The server still works on "slow"; its reply, when it comes, is dropped. */
	run_for(loop, 600);

	/* Per-client in-flight limit in the server: 64 deferred, the rest UNAVAILABLE. */
	st = (AsyncState){ .loop = loop, .client = st.client, .want = BUS_PEER_INFLIGHT_MAX + 6 };
	for (unsigned i = 0; i < st.want; i++)
		ASSERT_OK(async_echo(st.client, "parked", 300, 5000, &st));
	ASSERT_EQ(loop_run(loop), 0);
	ASSERT_EQ(st.ok, BUS_PEER_INFLIGHT_MAX);
	ASSERT_EQ(st.errors, 6);

	/* Freeing the client cancels what is pending; from a callback too. */
	st = (AsyncState){ .loop = loop, .client = st.client, .want = 3, .free_in_callback = true };
	ASSERT_OK(async_echo(st.client, "x", 0, 5000, &st));
	ASSERT_OK(async_echo(st.client, "y", 1000, 5000, &st));
	ASSERT_OK(async_echo(st.client, "z", 1000, 5000, &st));
	ASSERT_EQ(loop_run(loop), 0);
	ASSERT_NULL(st.client);
	ASSERT_EQ(st.ok, 1);
	ASSERT_EQ(st.cancelled, 2);

	/* Nobody listening: refused at once, no callback. */
	_cleanup_free_ char *nowhere = endpoint("nobody", BUS_SOCKET_RPC);
	BusAsyncClient *c2 = NULL;
	ASSERT_OK(bus_async_client_new(loop, NULL, nowhere, &c2));
	ASSERT_ERR(async_echo(c2, "x", 0, 100, &st), ECONNREFUSED);
	bus_async_client_free(c2);

	loop_timer_free(wd);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
	ASSERT_EQ(loop_shutdown(loop), 0);
}

/* ---- Events ---- */

typedef struct EventState {
	Loop *loop;
	unsigned events, debug_events;
	uint64_t last_seq;
	uint32_t last_index;
	BusGap gaps[16];
	char gap_family[16][BUS_FAMILY_MAX + 1];
	unsigned n_gaps;
	unsigned errors;
} EventState;

static void on_event(BusSubscriber *s, const BusEvent *ev, void *userdata)
{
	EventState *st = userdata;
	st->events++;
	if (ev->payload_case == LOCALD__V1__EVENT__PAYLOAD_DEBUG) {
		st->debug_events++;
		st->last_index = ev->debug->index;
	}
	st->last_seq = ev->seq;
}

static void on_gap(BusSubscriber *s, const BusGap *gap, void *userdata)
{
	EventState *st = userdata;
	if (st->n_gaps < ELEMENTSOF(st->gaps)) {
		strscpy(st->gap_family[st->n_gaps], sizeof(st->gap_family[0]), gap->family);
		st->gaps[st->n_gaps] = *gap;
		st->gaps[st->n_gaps].family = st->gap_family[st->n_gaps];
	}
	st->n_gaps++;
}

static void on_sub_error(BusSubscriber *s, int error, const char *message, void *userdata)
{
	EventState *st = userdata;
	st->errors++;
}

static void emit(BusClient *c, const char *topic, uint32_t count, uint32_t skip,
		 uint64_t *ret_first, uint64_t *ret_last)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__EmitEvents em = LOCALD__V1__EMIT_EVENTS__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_EMIT_EVENTS;
	req.emit_events = &em;
	em.topic = (char *)topic;
	em.count = count;
	em.skip = skip;
	_cleanup_(bus_reply_freep) BusReply *reply = NULL;
	ASSERT_OK(bus_client_call(c, &req, 30000, &reply));
	ASSERT_EQ(reply->result_case, LOCALD__V1__REPLY__RESULT_EMIT_EVENTS);
	if (ret_first)
		*ret_first = reply->emit_events->first_seq;
	if (ret_last)
		*ret_last = reply->emit_events->last_seq;
}

/* Publish until the subscription has reached the publisher (ZeroMQ's slow joiner). */
static void warm_up(Loop *loop, BusClient *c, EventState *st, const char *topic)
{
	unsigned before = st->events;
	for (unsigned i = 0; i < 100 && st->events == before; i++) {
		emit(c, topic, 1, 0, NULL, NULL);
		run_for(loop, 20);
	}
	ASSERT_TRUE(st->events > before);
}

static void run_until_events(Loop *loop, EventState *st, unsigned n)
{
	for (unsigned i = 0; i < 500 && st->events < n; i++)
		run_for(loop, 10);
	ASSERT_EQ(st->events, n);
}

static const BusSubscriberCallbacks callbacks = { on_event, on_gap, on_sub_error };

TEST(events_order_and_gaps)
{
	pid_t pid = spawn_test_server("ev");
	_cleanup_free_ char *rpc = endpoint("ev", BUS_SOCKET_RPC);
	_cleanup_free_ char *events = endpoint("ev", BUS_SOCKET_EVENTS);
	_cleanup_(loop_freep) Loop *loop = NULL;
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	BusSubscriber *sub = NULL;
	EventState st = {};
	uint64_t first, last;

	ASSERT_OK(loop_new(&loop));
	ASSERT_OK(bus_client_new(NULL, rpc, &c));
	ASSERT_OK(bus_subscriber_new(loop, NULL, events, &callbacks, &st, &sub));
	ASSERT_OK(bus_subscriber_subscribe(sub, "test."));
	warm_up(loop, c, &st, "test.warmup");
	run_for(loop, 50);

	/* 100 in order, no gap. */
	unsigned base = st.events;
	uint64_t base_seq = st.last_seq;
	emit(c, "test.a", 100, 0, &first, &last);
	ASSERT_EQ(first, base_seq + 1);
	ASSERT_EQ(last, base_seq + 100);
	run_until_events(loop, &st, base + 100);
	ASSERT_EQ(st.last_seq, last);
	ASSERT_EQ(st.last_index, 99);
	ASSERT_EQ(st.n_gaps, 0);

	/* 5 sequence numbers burnt (dropped events): one gap, reported before the next event. */
	emit(c, "test.b", 10, 5, &first, &last);
	ASSERT_EQ(first, base_seq + 106);
	run_until_events(loop, &st, base + 110);
	ASSERT_EQ(st.n_gaps, 1);
	ASSERT_STREQ(st.gaps[0].family, "test");
	ASSERT_EQ(st.gaps[0].kind, BUS_GAP_DROPPED);
	ASSERT_EQ(st.gaps[0].expected_seq, base_seq + 101);
	ASSERT_EQ(st.gaps[0].seq, base_seq + 106);
	BusSubscriberStats stats;
	bus_subscriber_get_stats(sub, &stats);
	ASSERT_EQ(stats.missed, 5);
	ASSERT_EQ(st.errors, 0);

	/* Another family has its own numbering. */
	emit(c, "other.x", 1, 0, &first, NULL);
	ASSERT_EQ(first, 1);

	bus_subscriber_free(sub);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

TEST(events_narrow_subscription_no_false_gaps)
{
	pid_t pid = spawn_test_server("ev");
	_cleanup_free_ char *rpc = endpoint("ev", BUS_SOCKET_RPC);
	_cleanup_free_ char *events = endpoint("ev", BUS_SOCKET_EVENTS);
	_cleanup_(loop_freep) Loop *loop = NULL;
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	BusSubscriber *sub = NULL;
	EventState st = {};

	ASSERT_OK(loop_new(&loop));
	ASSERT_OK(bus_client_new(NULL, rpc, &c));
	ASSERT_OK(bus_subscriber_new(loop, NULL, events, &callbacks, &st, &sub));
	ASSERT_OK(bus_subscriber_subscribe(sub, "log.shop.web"));
	warm_up(loop, c, &st, "log.shop.web");
	unsigned base = st.events;
	for (unsigned i = 0; i < 10; i++) {
		emit(c, "log.shop.web", 1, 0, NULL, NULL);
		emit(c, "log.shop.db", 2, 0, NULL, NULL);
	}
	run_until_events(loop, &st, base + 10);
	ASSERT_EQ(st.n_gaps, 0);

	bus_subscriber_free(sub);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

TEST(events_gap_from_high_water_mark)
{
	pid_t pid = spawn_test_server("ev");
	_cleanup_free_ char *rpc = endpoint("ev", BUS_SOCKET_RPC);
	_cleanup_free_ char *events = endpoint("ev", BUS_SOCKET_EVENTS);
	_cleanup_(loop_freep) Loop *loop = NULL;
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	BusSubscriber *sub = NULL;
	EventState st = {};
	uint64_t first, last;

	ASSERT_OK(loop_new(&loop));
	ASSERT_OK(bus_client_new(NULL, rpc, &c));
	ASSERT_OK(bus_subscriber_new(loop, NULL, events, &callbacks, &st, &sub));
	ASSERT_OK(bus_subscriber_set_hwm(sub, 10));
	ASSERT_OK(bus_subscriber_subscribe(sub, ""));
	warm_up(loop, c, &st, "flood.warmup");
	run_for(loop, 50);
	unsigned base = st.events;
	uint64_t base_seq = st.last_seq;

	/* Publish far more than the queues hold while we do not read. */
	for (unsigned i = 0; i < 10; i++)
		emit(c, "flood.x", 10000, 0, i == 0 ? &first : NULL, NULL);
	ASSERT_EQ(first, base_seq + 1);
	/* Markers until one gets through (the queues must drain first; a marker published
	 * while they are full is dropped too): that reveals any loss at the tail. */
	for (unsigned i = 0; i < 1000; i++) {
		emit(c, "flood.marker", 1, 0, NULL, &last);
		run_for(loop, 20);
		if (st.last_seq == last)
			break;
	}
	ASSERT_EQ(st.last_seq, last);

	BusSubscriberStats stats;
	bus_subscriber_get_stats(sub, &stats);
	ASSERT_TRUE(st.n_gaps >= 1);
	ASSERT_EQ(st.gaps[0].kind, BUS_GAP_DROPPED);
	ASSERT_TRUE(stats.missed > 0);
	/* Every event after the baseline was either received or counted as missed. */
	ASSERT_EQ((st.events - base) + stats.missed, st.last_seq - base_seq);

	bus_subscriber_free(sub);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

TEST(events_publisher_restart)
{
	pid_t pid = spawn_test_server("ev");
	_cleanup_free_ char *rpc = endpoint("ev", BUS_SOCKET_RPC);
	_cleanup_free_ char *events = endpoint("ev", BUS_SOCKET_EVENTS);
	_cleanup_(loop_freep) Loop *loop = NULL;
	BusClient *c = NULL;
	BusSubscriber *sub = NULL;
	EventState st = {};

	ASSERT_OK(loop_new(&loop));
	ASSERT_OK(bus_client_new(NULL, rpc, &c));
	ASSERT_OK(bus_subscriber_new(loop, NULL, events, &callbacks, &st, &sub));
	ASSERT_OK(bus_subscriber_subscribe(sub, "test."));
	warm_up(loop, c, &st, "test.warmup");
	emit(c, "test.a", 20, 0, NULL, NULL);
	run_for(loop, 50);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);

	pid = spawn_test_server("ev");
	warm_up(loop, c, &st, "test.warmup");
	ASSERT_EQ(st.n_gaps, 1);
	ASSERT_EQ(st.gaps[0].kind, BUS_GAP_RESTARTED);
	ASSERT_EQ(st.gaps[0].seq, st.last_seq);

	bus_client_free(c);
	bus_subscriber_free(sub);
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
}

/* ---- The test server binary ---- */

TEST(test_server_binary)
{
	pid_t pid = spawn_test_server("bin");
	_cleanup_free_ char *rpc = endpoint("bin", BUS_SOCKET_RPC);
	_cleanup_(bus_client_freep) BusClient *c = NULL;
	ASSERT_OK(bus_client_new(NULL, rpc, &c));
	ASSERT_OK(ping(c, CALL_TIMEOUT_MS));
	assert_echo(c, "over there", 0);
	assert_echo(c, "and later", 30);
	/* SIGTERM arrives as a loop event: clean exit, sockets removed. */
	ASSERT_EQ(stop_server(pid, SIGTERM), 0);
	_cleanup_free_ char *path = NULL;
	ASSERT_OK(bus_socket_path(test_tmpdir(), "bin", BUS_SOCKET_RPC, &path));
	ASSERT_TRUE(access(path, F_OK) < 0);
}

TEST(endpoint_names)
{
	_cleanup_free_ char *e = NULL;
	ASSERT_OK(bus_endpoint("/run/user/1000/locald", "superd", BUS_SOCKET_EVENTS, &e));
	ASSERT_STREQ(e, "ipc:///run/user/1000/locald/superd.events");
	ASSERT_ERR(bus_endpoint("relative", "superd", BUS_SOCKET_RPC, &e), EINVAL);
	ASSERT_ERR(bus_endpoint("/x", "-bad", BUS_SOCKET_RPC, &e), EINVAL);
	ASSERT_ERR(bus_endpoint("/x", "", BUS_SOCKET_RPC, &e), EINVAL);
	char longdir[200];
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = 0;
	ASSERT_ERR(bus_endpoint(longdir, "superd", BUS_SOCKET_RPC, &e), ENAMETOOLONG);
	ASSERT_TRUE(bus_daemon_name_is_valid("test-server"));
	ASSERT_FALSE(bus_daemon_name_is_valid("Super"));
}

TEST_MAIN();
