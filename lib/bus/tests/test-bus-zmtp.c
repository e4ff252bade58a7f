/* SPDX-License-Identifier: MIT */
/*
 * The libzmq-free client (bus-zmtp*) against real libzmq sockets in this process (a
 * ROUTER or XPUB/PUB served by a thread), and against a hand-written peer for what
 * libzmq never sends: PINGs unasked, garbage, a connection closed mid-frame.
 */

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "bus-endpoint.h"
#include "bus-zmtp-client.h"
#include "bus-zmtp-conn.h"
#include "bus-zmtp.h"
#include "strutil.h"
#include "test.h"
#include "time-util.h"

static char *path_in_tmp(const char *name)
{
	char *p = strdupf("%s/%s", test_tmpdir(), name);
	ASSERT_NOT_NULL(p);
	return p;
}

static char *endpoint_of(const char *path)
{
	char *e = strdupf("ipc://%s", path);
	ASSERT_NOT_NULL(e);
	return e;
}

/* ---- the sans-I/O parser ---- */

static size_t peer_greeting(uint8_t *out, uint8_t minor)
{
	zmtp_greeting_write(out);
	out[1] = 0x42; /* libzmq puts a length in the padding: must be ignored */
	out[11] = minor;
	return ZMTP_GREETING_SIZE;
}

static size_t peer_ready(uint8_t *out, const char *type)
{
	uint8_t body[128];
	size_t n = 0, tl = strlen(type);
	body[n++] = 5;
	memcpy(body + n, "READY", 5);
	n += 5;
	body[n++] = 11;
	memcpy(body + n, "Socket-Type", 11);
	n += 11;
	body[n++] = 0, body[n++] = 0, body[n++] = 0, body[n++] = (uint8_t)tl;
	memcpy(body + n, type, tl);
	n += tl;
	size_t h = zmtp_frame_header_write(ZMTP_FLAG_COMMAND, n, out);
	memcpy(out + h, body, n);
	return h + n;
}

TEST(parser_byte_by_byte)
{
	uint8_t in[4096];
	size_t n = peer_greeting(in, 1);
	n += peer_ready(in + n, "ROUTER");
	uint8_t big[300];
	memset(big, 'x', sizeof(big));
	n += zmtp_frame_header_write(ZMTP_FLAG_MORE, 0, in + n);
	n += zmtp_frame_header_write(0, sizeof(big), in + n);
	memcpy(in + n, big, sizeof(big));
	n += sizeof(big);

	ZmtpParser p;
	zmtp_parser_init(&p, ZMTP_SOCKET_DEALER, 1024, 4096);
	/* Fed one more byte at a time, it reports each event exactly once. */
	size_t start = 0, events = 0;
	for (size_t end = 0; end <= n; end++) {
		for (;;) {
			size_t used;
			ZmtpEvent ev;
			ASSERT_OK(zmtp_parse(&p, in + start, end - start, &used, &ev));
			start += used;
			if (ev.type == ZMTP_EVENT_NEED_MORE) {
				ASSERT_TRUE(ev.need > end - start);
				break;
			}
			events++;
			if (events == 1)
				ASSERT_EQ(ev.type, ZMTP_EVENT_READY);
			else if (events == 2) {
				ASSERT_EQ(ev.type, ZMTP_EVENT_FRAME);
				ASSERT_EQ(ev.size, 0);
				ASSERT_TRUE(ev.more);
			} else {
				ASSERT_EQ(ev.type, ZMTP_EVENT_FRAME);
				ASSERT_EQ(ev.size, sizeof(big));
				ASSERT_FALSE(ev.more);
				ASSERT_EQ(memcmp(ev.data, big, sizeof(big)), 0);
			}
		}
	}
	ASSERT_EQ(events, 3);
	ASSERT_EQ(start, n);
	ASSERT_EQ(p.peer_minor, 1);
}

static int parse_all(ZmtpSocketType type, const uint8_t *in, size_t n, size_t frame_max)
{
	ZmtpParser p;
	zmtp_parser_init(&p, type, frame_max, frame_max * 2);
	size_t start = 0;
	for (;;) {
		size_t used;
		ZmtpEvent ev;
		int r = zmtp_parse(&p, in + start, n - start, &used, &ev);
		if (r < 0)
			return r;
		start += used;
		if (ev.type == ZMTP_EVENT_NEED_MORE)
			return 0;
	}
}

TEST(parser_refuses)
{
	uint8_t in[512];
	size_t n;

	/* not ZMTP */
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, (const uint8_t *)"GET / HTTP/1.1\r\n", 16, 64),
		   EPROTO);
	/* ZMTP 2.0 */
	n = peer_greeting(in, 0);
	in[10] = 1;
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, in, n, 64), EPROTO);
	/* CURVE */
	n = peer_greeting(in, 0);
	memcpy(in + 12, "CURVE", 5);
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, in, n, 64), EPROTO);
	/* a SUB talking to a ROUTER */
	n = peer_greeting(in, 0);
	n += peer_ready(in + n, "ROUTER");
	ASSERT_ERR(parse_all(ZMTP_SOCKET_SUB, in, n, 64), EPROTO);
	ASSERT_OK(
	    parse_all(ZMTP_SOCKET_SUB, in, peer_greeting(in, 0) + peer_ready(in + 64, "XPUB"), 64));
	/* a message before READY */
	n = peer_greeting(in, 0);
	n += zmtp_frame_header_write(0, 1, in + n);
	in[n++] = 'x';
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, in, n, 64), EPROTO);
	/* reserved flag bits */
	n = peer_greeting(in, 0);
	n += peer_ready(in + n, "ROUTER");
	in[n++] = 0x80;
	in[n++] = 0;
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, in, n, 64), EPROTO);
	/* a frame over the limit is refused from its header, before its body */
	n = peer_greeting(in, 0);
	n += peer_ready(in + n, "ROUTER");
	n += zmtp_frame_header_write(0, (uint64_t)1 << 40, in + n);
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, in, n, 64), EMSGSIZE);
	/* a message over the limit, frame by frame */
	n = peer_greeting(in, 0);
	n += peer_ready(in + n, "ROUTER");
	for (int i = 0; i < 3; i++) {
		n += zmtp_frame_header_write(ZMTP_FLAG_MORE, 60, in + n);
		memset(in + n, 'm', 60);
		n += 60;
	}
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, in, n, 64), EMSGSIZE);
	/* the peer's ERROR */
	n = peer_greeting(in, 0);
	n += zmtp_frame_header_write(ZMTP_FLAG_COMMAND, 12, in + n);
	memcpy(in + n, "\5ERROR\5nope!", 12);
	n += 12;
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, in, n, 64), ECONNABORTED);
	/* malformed metadata */
	n = peer_greeting(in, 0);
	n += zmtp_frame_header_write(ZMTP_FLAG_COMMAND, 9, in + n);
	memcpy(in + n, "\5READY\11So", 9);
	n += 9;
	ASSERT_ERR(parse_all(ZMTP_SOCKET_DEALER, in, n, 64), EPROTO);
}

/* ---- a libzmq ROUTER served by a thread ---- */

typedef struct Router {
	void *ctx, *sock;
	char *path, *endpoint;
	pthread_t thread;
	enum {
		ROUTER_ECHO,
		ROUTER_PONG,
		ROUTER_SILENT
	} mode;
	bool stray_first; /* answer with a wrong request_id first */
	volatile int stop;
} Router;

static void *router_thread(void *userdata)
{
	Router *rt = userdata;
	while (!rt->stop) {
		zmq_pollitem_t it = { .socket = rt->sock, .events = ZMQ_POLLIN };
		if (zmq_poll(&it, 1, 50) <= 0)
			continue;
		zmq_msg_t frames[20];
		size_t n = 0;
		int more = 1;
		while (more && n < ELEMENTSOF(frames)) {
			zmq_msg_init(&frames[n]);
			if (zmq_msg_recv(&frames[n], rt->sock, 0) < 0)
				return NULL;
			more = zmq_msg_more(&frames[n]);
			n++;
		}
		if (rt->mode == ROUTER_ECHO) {
			for (size_t i = 0; i < n; i++)
				zmq_msg_send(&frames[i], rt->sock, i + 1 < n ? ZMQ_SNDMORE : 0);
			continue;
		}
		if (rt->mode == ROUTER_PONG) {
			BusRequest *req = NULL;
			BusError e = {};
			zmq_msg_t *body = &frames[n - 1];
			if (bus_request_decode(zmq_msg_data(body), zmq_msg_size(body), &req, &e) ==
			    0) {
				for (int k = rt->stray_first ? 0 : 1; k < 2; k++) {
					BusReply reply = LOCALD__V1__REPLY__INIT;
					Locald__V1__Pong pong = LOCALD__V1__PONG__INIT;
					pong.token = req->ping ? req->ping->token : (char *)"";
					reply.request_id =
					    k == 0 ? (char *)"stray-1" : req->request_id;
					reply.result_case = LOCALD__V1__REPLY__RESULT_PONG;
					reply.pong = &pong;
					void *data;
					size_t size;
					if (bus_reply_encode(&reply, &data, &size) == 0) {
						zmq_send(rt->sock, zmq_msg_data(&frames[0]),
							 zmq_msg_size(&frames[0]), ZMQ_SNDMORE);
						zmq_send(rt->sock, data, size, 0);
						free(data);
					}
				}
				bus_request_free(req);
			}
		}
		for (size_t i = 0; i < n; i++)
			zmq_msg_close(&frames[i]);
	}
	return NULL;
}

static void router_start(Router *rt, int mode)
{
	rt->mode = mode;
	rt->path = path_in_tmp("d.rpc");
	rt->endpoint = endpoint_of(rt->path);
	rt->ctx = zmq_ctx_new();
	rt->sock = zmq_socket(rt->ctx, ZMQ_ROUTER);
	int64_t maxmsg = (int64_t)BUS_TRANSPORT_MAX;
	int linger = 0;
	zmq_setsockopt(rt->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	zmq_setsockopt(rt->sock, ZMQ_LINGER, &linger, sizeof(linger));
	ASSERT_EQ(zmq_bind(rt->sock, rt->endpoint), 0);
	ASSERT_EQ(pthread_create(&rt->thread, NULL, router_thread, rt), 0);
}

static void router_stop(Router *rt)
{
	rt->stop = 1;
	pthread_join(rt->thread, NULL);
	zmq_close(rt->sock);
	zmq_ctx_term(rt->ctx);
	free(rt->path);
	free(rt->endpoint);
}

TEST(conn_round_trip_router)
{
	Router rt = {};
	router_start(&rt, ROUTER_ECHO);
	_cleanup_(zmtp_conn_freep) ZmtpConn *c = NULL;
	usec_t deadline = now_monotonic() + 5 * USEC_PER_SEC;
	ASSERT_OK(zmtp_conn_connect(rt.path, ZMTP_SOCKET_DEALER, BUS_FRAME_MAX, BUS_TRANSPORT_MAX,
				    deadline, &c));

	struct iovec one = { .iov_base = (void *)"hello", .iov_len = 5 };
	ASSERT_OK(zmtp_conn_send(c, &one, 1, deadline));
	ZmtpMessage m;
	ASSERT_OK(zmtp_conn_receive(c, deadline, &m));
	ASSERT_EQ(m.n, 1);
	ASSERT_EQ(m.frames[0].size, 5);
	ASSERT_EQ(memcmp(m.frames[0].data, "hello", 5), 0);

	/* Empty, short, long (> 255 bytes) and 1 MiB frames in one message. */
	size_t sizes[] = { 0, 255, 256, 300, (size_t)1 << 20 };
	struct iovec iov[ELEMENTSOF(sizes)];
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
		uint8_t *b = malloc(sizes[i] + 1);
		ASSERT_NOT_NULL(b);
		for (size_t k = 0; k < sizes[i]; k++)
			b[k] = (uint8_t)(k * 7 + i);
		iov[i] = (struct iovec){ .iov_base = b, .iov_len = sizes[i] };
	}
	for (int round = 0; round < 3; round++) {
		ASSERT_OK(zmtp_conn_send(c, iov, ELEMENTSOF(iov), deadline));
		ASSERT_OK(zmtp_conn_receive(c, deadline, &m));
		ASSERT_EQ(m.n, ELEMENTSOF(sizes));
		ASSERT_FALSE(m.truncated);
		for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
			ASSERT_EQ(m.frames[i].size, sizes[i]);
			ASSERT_TRUE(sizes[i] == 0 ||
				    memcmp(m.frames[i].data, iov[i].iov_base, sizes[i]) == 0);
		}
	}
	/* Nothing more: without waiting that is -EAGAIN, with a deadline -ETIMEDOUT. */
	ASSERT_ERR(zmtp_conn_receive(c, 0, &m), EAGAIN);
	ASSERT_ERR(zmtp_conn_receive(c, now_monotonic() + 50 * USEC_PER_MSEC, &m), ETIMEDOUT);
	ASSERT_FALSE(zmtp_conn_is_broken(c));
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++)
		free(iov[i].iov_base);
	c = zmtp_conn_free(c);
	router_stop(&rt);
}

TEST(client_call)
{
	Router rt = { .stray_first = true };
	router_start(&rt, ROUTER_PONG);
	_cleanup_(bus_zmtp_client_freep) BusZmtpClient *c = NULL;
	ASSERT_OK(bus_zmtp_client_new(rt.endpoint, &c));
	for (int i = 0; i < 20; i++) {
		BusRequest req = LOCALD__V1__REQUEST__INIT;
		Locald__V1__Ping ping = LOCALD__V1__PING__INIT;
		char token[32];
		snprintf(token, sizeof(token), "tok-%d", i);
		ping.token = token;
		req.call_case = LOCALD__V1__REQUEST__CALL_PING;
		req.ping = &ping;
		BusReply *reply = NULL;
		ASSERT_OK(bus_zmtp_client_call(c, &req, 5000, &reply));
		ASSERT_EQ(reply->result_case, LOCALD__V1__REPLY__RESULT_PONG);
		ASSERT_STREQ(reply->pong->token, token);
		/* The caller's request is left as it was. */
		ASSERT_STREQ(req.request_id, "");
		bus_reply_free(reply);
	}
	/* The stray reply before each real one was dropped, not taken for it. */
	ASSERT_EQ(bus_zmtp_client_get_dropped(c), 20);
	c = bus_zmtp_client_free(c);
	router_stop(&rt);
}

static BusRequest *ping_request(void)
{
	static Locald__V1__Ping ping = LOCALD__V1__PING__INIT;
	static BusRequest req = LOCALD__V1__REQUEST__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_PING;
	req.ping = &ping;
	return &req;
}

TEST(client_peer_absent)
{
	_cleanup_free_ char *path = path_in_tmp("none.rpc");
	_cleanup_free_ char *ep = endpoint_of(path);
	_cleanup_(bus_zmtp_client_freep) BusZmtpClient *c = NULL;
	BusReply *reply = NULL;
	ASSERT_OK(bus_zmtp_client_new(ep, &c));
	ASSERT_ERR(bus_zmtp_client_call(c, ping_request(), 1000, &reply), ECONNREFUSED);

	/* A socket file nobody listens on (a crashed daemon's). */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strscpy(sa.sun_path, sizeof(sa.sun_path), path);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	close(fd);
	ASSERT_ERR(bus_zmtp_client_call(c, ping_request(), 1000, &reply), ECONNREFUSED);

	_cleanup_(bus_zmtp_subscriber_freep) BusZmtpSubscriber *s = NULL;
	ASSERT_ERR(bus_zmtp_subscriber_new(ep, &s), ECONNREFUSED);
	ASSERT_ERR(bus_zmtp_client_new("tcp://127.0.0.1:1", &c), EINVAL);
}

TEST(client_timeout)
{
	Router rt = {};
	router_start(&rt, ROUTER_SILENT);
	_cleanup_(bus_zmtp_client_freep) BusZmtpClient *c = NULL;
	ASSERT_OK(bus_zmtp_client_new(rt.endpoint, &c));
	BusReply *reply = NULL;
	usec_t t0 = now_monotonic();
	ASSERT_ERR(bus_zmtp_client_call(c, ping_request(), 200, &reply), ETIMEDOUT);
	ASSERT_TRUE(now_monotonic() - t0 >= 150 * USEC_PER_MSEC);
	/* In two steps: not yet, then the call's own time-out. */
	ASSERT_OK(bus_zmtp_client_send(c, ping_request(), 100));
	ASSERT_TRUE(bus_zmtp_client_pending(c));
	ASSERT_TRUE(bus_zmtp_client_fd(c) >= 0);
	ASSERT_ERR(bus_zmtp_client_receive(c, 0, &reply), EAGAIN);
	ASSERT_ERR(bus_zmtp_client_receive(c, 20, &reply), EAGAIN);
	ASSERT_ERR(bus_zmtp_client_receive(c, 5000, &reply), ETIMEDOUT);
	ASSERT_ERR(bus_zmtp_client_receive(c, 0, &reply), ESRCH);
	c = bus_zmtp_client_free(c);
	router_stop(&rt);
}

/* ---- a hand-written peer ---- */

typedef struct RawPeer {
	int listen_fd;
	char *path, *endpoint;
	pthread_t thread;
	void (*script)(int fd);
} RawPeer;

static void write_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k <= 0)
			return;
		p = (const uint8_t *)p + k;
		n -= (size_t)k;
	}
}

/* Read until n bytes or the end. */
static size_t read_some(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 2000) <= 0)
			break;
		ssize_t k = read(fd, buf + got, n - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	return got;
}

/* The handshake as a ROUTER, then one whole request frame read (greeting + READY of
 * the client are 64 + its READY's length; the request follows). */
static void raw_handshake(int fd)
{
	uint8_t out[256];
	size_t n = peer_greeting(out, 0);
	n += peer_ready(out + n, "ROUTER");
	write_all(fd, out, n);
	uint8_t in[ZMTP_GREETING_SIZE];
	read_some(fd, in, sizeof(in));
}

static void *raw_thread(void *userdata)
{
	RawPeer *rp = userdata;
	int fd = accept4(rp->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return NULL;
	rp->script(fd);
	close(fd);
	return NULL;
}

static void raw_start(RawPeer *rp, void (*script)(int fd))
{
	rp->script = script;
	rp->path = path_in_tmp("raw.rpc");
	rp->endpoint = endpoint_of(rp->path);
	rp->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strscpy(sa.sun_path, sizeof(sa.sun_path), rp->path);
	ASSERT_OK(bind(rp->listen_fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_OK(listen(rp->listen_fd, 4));
	ASSERT_EQ(pthread_create(&rp->thread, NULL, raw_thread, rp), 0);
}

static void raw_stop(RawPeer *rp)
{
	pthread_join(rp->thread, NULL);
	close(rp->listen_fd);
	unlink(rp->path);
	free(rp->path);
	free(rp->endpoint);
}

/* The client's READY (a command frame), then its request (a short message frame) into
 * in; returns the request's size. */
static size_t raw_read_request(int fd, uint8_t in[static 258])
{
	size_t n = read_some(fd, in, 2);
	n += read_some(fd, in + n, in[1]);
	n = read_some(fd, in, 2);
	if (n < 2)
		return 0;
	return read_some(fd, in + 2, in[1]);
}

static void script_close_mid_frame(int fd)
{
	raw_handshake(fd);
	uint8_t in[512];
	raw_read_request(fd, in);
	/* A reply frame announcing 1000 bytes, 10 of them sent, then the end. */
	uint8_t out[32];
	size_t n = zmtp_frame_header_write(0, 1000, out);
	memset(out + n, 'r', 10);
	write_all(fd, out, n + 10);
}

TEST(peer_closes_mid_frame)
{
	RawPeer rp = {};
	raw_start(&rp, script_close_mid_frame);
	_cleanup_(bus_zmtp_client_freep) BusZmtpClient *c = NULL;
	ASSERT_OK(bus_zmtp_client_new(rp.endpoint, &c));
	BusReply *reply = NULL;
	usec_t t0 = now_monotonic();
	ASSERT_ERR(bus_zmtp_client_call(c, ping_request(), 10000, &reply), ECONNRESET);
	/* At once, not at the time-out. */
	ASSERT_TRUE(now_monotonic() - t0 < 5 * USEC_PER_SEC);
	c = bus_zmtp_client_free(c);
	raw_stop(&rp);
}

static void script_garbage(int fd)
{
	static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
	write_all(fd, junk, sizeof(junk) - 1);
	uint8_t in[128];
	read_some(fd, in, sizeof(in));
}

static void script_reserved_bits(int fd)
{
	raw_handshake(fd);
	uint8_t out[] = { 0xf1, 0x03, 'a', 'b', 'c' };
	write_all(fd, out, sizeof(out));
	uint8_t in[128];
	read_some(fd, in, sizeof(in));
}

static void script_huge_frame(int fd)
{
	raw_handshake(fd);
	uint8_t out[16];
	size_t n = zmtp_frame_header_write(0, (uint64_t)BUS_FRAME_MAX + 1, out);
	write_all(fd, out, n);
	uint8_t in[128];
	read_some(fd, in, sizeof(in));
}

TEST(peer_sends_garbage)
{
	void (*scripts[])(int) = { script_garbage, script_reserved_bits, script_huge_frame };
	int expect[] = { EPROTO, EPROTO, EMSGSIZE };
	for (size_t i = 0; i < ELEMENTSOF(scripts); i++) {
		RawPeer rp = {};
		raw_start(&rp, scripts[i]);
		_cleanup_(bus_zmtp_client_freep) BusZmtpClient *c = NULL;
		ASSERT_OK(bus_zmtp_client_new(rp.endpoint, &c));
		BusReply *reply = NULL;
		int r = bus_zmtp_client_call(c, ping_request(), 5000, &reply);
		if (r != -expect[i])
			test_fail(__FILE__, __LINE__, "script %zu: %d", i, r);
		c = bus_zmtp_client_free(c);
		raw_stop(&rp);
	}
}

/* A PING while a reply is awaited: answered with the same context, then the reply. */
static void script_ping(int fd)
{
	raw_handshake(fd);
	uint8_t in[512];
	raw_read_request(fd, in);
	BusRequest *req = NULL;
	BusError e = {};
	if (bus_request_decode(in + 2, in[1], &req, &e) < 0)
		return;
	uint8_t ping[] = { ZMTP_FLAG_COMMAND, 9, 4, 'P', 'I', 'N', 'G', 0, 10, 'c', 'x' };
	write_all(fd, ping, sizeof(ping));
	uint8_t pong[16];
	size_t k = read_some(fd, pong, 9);
	if (k != 9 || memcmp(pong, "\4\7\4PONGcx", 9) != 0) {
		bus_request_free(req);
		return; /* no reply: the test times out */
	}
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__Pong pg = LOCALD__V1__PONG__INIT;
	reply.request_id = req->request_id;
	reply.result_case = LOCALD__V1__REPLY__RESULT_PONG;
	reply.pong = &pg;
	void *data;
	size_t size;
	if (bus_reply_encode(&reply, &data, &size) == 0) {
		uint8_t h[ZMTP_FRAME_HEADER_MAX];
		size_t hl = zmtp_frame_header_write(0, size, h);
		write_all(fd, h, hl);
		write_all(fd, data, size);
		free(data);
	}
	bus_request_free(req);
	read_some(fd, in, 1); /* until the client closes */
}

TEST(peer_pings)
{
	RawPeer rp = {};
	raw_start(&rp, script_ping);
	_cleanup_(bus_zmtp_client_freep) BusZmtpClient *c = NULL;
	ASSERT_OK(bus_zmtp_client_new(rp.endpoint, &c));
	BusReply *reply = NULL;
	ASSERT_OK(bus_zmtp_client_call(c, ping_request(), 5000, &reply));
	ASSERT_EQ(reply->result_case, LOCALD__V1__REPLY__RESULT_PONG);
	bus_reply_free(reply);
	c = bus_zmtp_client_free(c);
	raw_stop(&rp);
}

/* ---- SUB against libzmq's XPUB and PUB ---- */

static void publish(void *pub, const char *topic, uint64_t seq, uint64_t epoch)
{
	BusEvent ev = LOCALD__V1__EVENT__INIT;
	char family[BUS_FAMILY_MAX + 1];
	ASSERT_OK(bus_topic_family(topic, family, sizeof(family)));
	ev.topic = (char *)topic;
	ev.family = family;
	ev.seq = seq;
	ev.epoch = epoch;
	void *data;
	size_t size;
	ASSERT_OK(bus_event_encode(&ev, &data, &size));
	ASSERT_TRUE(zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE) >= 0);
	ASSERT_TRUE(zmq_send(pub, data, size, 0) >= 0);
	free(data);
}

static BusEvent *next_event(BusZmtpSubscriber *s, bool *ret_gap)
{
	BusEvent *ev = NULL;
	ASSERT_OK(bus_zmtp_subscriber_receive(s, 5000, &ev, ret_gap));
	return ev;
}

TEST(sub_xpub_prefixes_and_gaps)
{
	_cleanup_free_ char *path = path_in_tmp("d.events");
	_cleanup_free_ char *ep = endpoint_of(path);
	void *ctx = zmq_ctx_new();
	void *pub = zmq_socket(ctx, ZMQ_XPUB);
	int linger = 0;
	zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof(linger));
	ASSERT_EQ(zmq_bind(pub, ep), 0);

	_cleanup_(bus_zmtp_subscriber_freep) BusZmtpSubscriber *s = NULL;
	ASSERT_OK(bus_zmtp_subscriber_new(ep, &s));
	ASSERT_OK(bus_zmtp_subscriber_subscribe(s, "log.shop."));
	ASSERT_OK(bus_zmtp_subscriber_subscribe(s, "service.state."));
	/* XPUB hands us the subscriptions: then they are in force. */
	char buf[300];
	for (int i = 0; i < 2; i++) {
		int n = zmq_recv(pub, buf, sizeof(buf), 0);
		ASSERT_TRUE(n > 1 && buf[0] == 1);
	}
	publish(pub, "log.other.web", 1, 7);
	publish(pub, "log.shop.web", 2, 7);
	publish(pub, "proxy.request.x", 1, 7);
	publish(pub, "service.state.shop.web", 1, 7);
	publish(pub, "service.state.shop.web", 2, 7);
	publish(pub, "service.state.shop.web", 4, 7); /* 3 lost */
	publish(pub, "service.state.shop.db", 1, 8);  /* restarted */

	bool gap;
	const char *want[] = { "log.shop.web", "service.state.shop.web", "service.state.shop.web",
			       "service.state.shop.web", "service.state.shop.db" };
	bool want_gap[] = { false, false, false, true, true };
	for (size_t i = 0; i < ELEMENTSOF(want); i++) {
		BusEvent *ev = next_event(s, &gap);
		ASSERT_STREQ(ev->topic, want[i]);
		if (gap != want_gap[i])
			test_fail(__FILE__, __LINE__, "event %zu: gap %d", i, gap);
		bus_event_free(ev);
	}
	BusEvent *ev = NULL;
	ASSERT_ERR(bus_zmtp_subscriber_receive(s, 0, &ev, &gap), EAGAIN);

	/* The publisher goes away: an error, not a hang. */
	zmq_close(pub);
	zmq_ctx_term(ctx);
	ASSERT_ERR(bus_zmtp_subscriber_receive(s, 5000, &ev, &gap), ECONNRESET);
}

TEST(sub_plain_pub_large_event)
{
	_cleanup_free_ char *path = path_in_tmp("p.events");
	_cleanup_free_ char *ep = endpoint_of(path);
	void *ctx = zmq_ctx_new();
	void *pub = zmq_socket(ctx, ZMQ_PUB);
	int linger = 0;
	zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof(linger));
	ASSERT_EQ(zmq_bind(pub, ep), 0);
	_cleanup_(bus_zmtp_subscriber_freep) BusZmtpSubscriber *s = NULL;
	ASSERT_OK(bus_zmtp_subscriber_new(ep, &s));
	ASSERT_OK(bus_zmtp_subscriber_subscribe(s, ""));

	/* A DebugEvent-free way to a big event: a LogLine with 1 MiB of text. */
	char *text = malloc((1 << 20) + 1);
	ASSERT_NOT_NULL(text);
	memset(text, 'L', 1 << 20);
	text[1 << 20] = 0;
	BusEvent ev = LOCALD__V1__EVENT__INIT;
	Locald__V1__LogLine line = LOCALD__V1__LOG_LINE__INIT;
	line.text = text;
	ev.topic = (char *)"log.p.s";
	ev.family = (char *)"log";
	ev.seq = 1;
	ev.payload_case = LOCALD__V1__EVENT__PAYLOAD_LOG_LINE;
	ev.log_line = &line;
	void *data;
	size_t size;
	ASSERT_OK(bus_event_encode(&ev, &data, &size));
	/* PUB does not tell when the subscription arrived: publish until it is seen. */
	BusEvent *got = NULL;
	bool gap;
	for (int i = 0; i < 200 && !got; i++) {
		ASSERT_TRUE(zmq_send(pub, "log.p.s", 7, ZMQ_SNDMORE) >= 0);
		ASSERT_TRUE(zmq_send(pub, data, size, 0) >= 0);
		if (bus_zmtp_subscriber_receive(s, 20, &got, &gap) < 0)
			got = NULL;
	}
	ASSERT_NOT_NULL(got);
	ASSERT_EQ(got->payload_case, LOCALD__V1__EVENT__PAYLOAD_LOG_LINE);
	ASSERT_EQ(strlen(got->log_line->text), 1 << 20);
	bus_event_free(got);
	free(data);
	free(text);
	zmq_close(pub);
	zmq_ctx_term(ctx);
}

TEST_MAIN();
