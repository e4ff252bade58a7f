/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "loop.h"
#include "test.h"
#include "time-util.h"

/* Every test arms this: a stuck loop fails the test instead of hanging meson. */
static void on_watchdog(LoopTimer *t, void *userdata)
{
	(void)t;
	(void)userdata;
	test_fail(__FILE__, __LINE__, "watchdog: loop did not finish in time");
}

static LoopTimer *watchdog(Loop *loop, uint64_t ms)
{
	LoopTimer *t = NULL;
	ASSERT_OK(loop_timer_new(loop, ms, 0, on_watchdog, NULL, &t));
	return t;
}

typedef struct Counter {
	Loop *loop;
	unsigned fired;
	unsigned stop_at;
	usec_t first, last;
} Counter;

static void on_count(LoopTimer *t, void *userdata)
{
	Counter *c = userdata;
	usec_t now = now_monotonic();
	if (c->fired++ == 0)
		c->first = now;
	c->last = now;
	if (c->fired == c->stop_at) {
		loop_timer_stop(t);
		loop_exit(c->loop, 42);
	}
}

TEST(timer_oneshot)
{
	_cleanup_(loop_freep) Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	watchdog(loop, 5000);

	Counter c = { .loop = loop, .stop_at = 1 };
	LoopTimer *t = NULL;
	usec_t start = now_monotonic();
	ASSERT_OK(loop_timer_new(loop, 30, 0, on_count, &c, &t));
	ASSERT_TRUE(loop_timer_is_armed(t));
	ASSERT_EQ(loop_run(loop), 42);
	ASSERT_EQ(c.fired, 1);
	ASSERT_TRUE(c.first - start >= 30 * USEC_PER_MSEC);
	ASSERT_FALSE(loop_timer_is_armed(t));
	loop_timer_free(t);
	ASSERT_EQ(loop_shutdown(loop), 0);
}

TEST(timer_repeat_and_rearm)
{
	_cleanup_(loop_freep) Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	watchdog(loop, 5000);

	Counter c = { .loop = loop, .stop_at = 5 };
	LoopTimer *t = NULL;
	ASSERT_OK(loop_timer_new(loop, 1, 5, on_count, &c, &t));
	ASSERT_EQ(loop_run(loop), 42);
	ASSERT_EQ(c.fired, 5);
	ASSERT_TRUE(c.last - c.first >= 4 * 5 * USEC_PER_MSEC);

	/* Re-arm after it was stopped. */
	c.stop_at = 6;
	ASSERT_OK(loop_timer_set(t, 1, 0));
	ASSERT_EQ(loop_run(loop), 42);
	ASSERT_EQ(c.fired, 6);
	ASSERT_EQ(loop_shutdown(loop), 0);
}

static void on_free_self(LoopTimer *t, void *userdata)
{
	unsigned *n = userdata;
	(*n)++;
	loop_timer_free(t);
}

static void on_quit(LoopTimer *t, void *userdata)
{
	(void)t;
	loop_exit(userdata, 7);
}

TEST(timer_free_in_callback)
{
	_cleanup_(loop_freep) Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	watchdog(loop, 5000);

	unsigned n = 0;
	LoopTimer *t = NULL, *q = NULL;
	ASSERT_OK(loop_timer_new(loop, 1, 1, on_free_self, &n, &t));
	ASSERT_OK(loop_timer_new(loop, 50, 0, on_quit, loop, &q));
	ASSERT_EQ(loop_run(loop), 7);
	ASSERT_EQ(n, 1);
	ASSERT_EQ(loop_shutdown(loop), 0);
}

static void on_signal(LoopSignal *s, int signo, void *userdata)
{
	(void)s;
	loop_exit(userdata, signo);
}

static void on_raise(LoopTimer *t, void *userdata)
{
	(void)t;
	(void)userdata;
	raise(SIGUSR1);
}

TEST(signal_is_a_loop_event)
{
	_cleanup_(loop_freep) Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	watchdog(loop, 5000);

	LoopSignal *s = NULL;
	LoopTimer *t = NULL;
	ASSERT_OK(loop_signal_new(loop, SIGUSR1, on_signal, loop, &s));
	ASSERT_OK(loop_timer_new(loop, 5, 0, on_raise, NULL, &t));
	ASSERT_EQ(loop_run(loop), SIGUSR1);
	loop_signal_free(s);
	ASSERT_EQ(loop_shutdown(loop), 0);
}

TEST(signal_invalid)
{
	_cleanup_(loop_freep) Loop *loop = NULL;
	LoopSignal *s = NULL;
	ASSERT_OK(loop_new(&loop));
	ASSERT_TRUE(loop_signal_new(loop, 12345, on_signal, loop, &s) < 0);
	ASSERT_NULL(s);
	ASSERT_EQ(loop_shutdown(loop), 0);
}

/*
 * A relay, all on one loop over ipc://: client DEALER -> front ROUTER -> (relay) back
 * DEALER -> backend ROUTER, and the replies the same way back, with a window of
 * requests in flight (4: enough to reproduce the stall without kicks). The relay sends on one
 * socket from another socket's callback, which is when a send consumes a ZMQ_FD edge the loop never
 * sees: if the glue ever stranded a message, the exchange would stall and the watchdog would fire.
 */
#define RELAY_TOTAL 20000u
#define RELAY_WINDOW 4u

typedef struct Relay {
	Loop *loop;
	LoopZmq *client, *front, *back, *backend;
	unsigned sent, received, served;
} Relay;

static int recv_frames(void *socket, zmq_msg_t *m, size_t max)
{
	size_t n = 0;
	for (;;) {
		ASSERT_TRUE(n < max);
		zmq_msg_init(&m[n]);
		if (zmq_msg_recv(&m[n], socket, ZMQ_DONTWAIT) < 0) {
			ASSERT_EQ(errno, EAGAIN);
			ASSERT_EQ(n, 0);
			zmq_msg_close(&m[n]);
			return 0;
		}
		n++;
		if (!zmq_msg_more(&m[n - 1]))
			return (int)n;
	}
}

static void client_send_one(Relay *rl)
{
	zmq_msg_t m;
	ASSERT_OK(zmq_msg_init_size(&m, sizeof(unsigned)));
	memcpy(zmq_msg_data(&m), &rl->sent, sizeof(unsigned));
	ASSERT_OK(loop_zmq_send(rl->client, &m, 1, ZMQ_DONTWAIT));
	rl->sent++;
}

static void on_client(LoopZmq *z, void *socket, void *userdata)
{
	Relay *rl = userdata;
	zmq_msg_t m[4];
	int n = recv_frames(socket, m, ELEMENTSOF(m));
	if (n == 0)
		return;
	ASSERT_EQ(n, 1);
	unsigned v;
	ASSERT_EQ(zmq_msg_size(&m[0]), sizeof(v));
	memcpy(&v, zmq_msg_data(&m[0]), sizeof(v));
	ASSERT_EQ(v, rl->received); /* one pipe each way: order is kept */
	zmq_msg_close(&m[0]);
	if (++rl->received == RELAY_TOTAL) {
		loop_exit(rl->loop, 0);
		return;
	}
	if (rl->sent < RELAY_TOTAL)
		client_send_one(rl);
}

/* front ROUTER: [id, body] -> back DEALER: [id, body] */
static void on_front(LoopZmq *z, void *socket, void *userdata)
{
	Relay *rl = userdata;
	zmq_msg_t m[4];
	int n = recv_frames(socket, m, ELEMENTSOF(m));
	if (n == 0)
		return;
	ASSERT_EQ(n, 2);
	ASSERT_OK(loop_zmq_send(rl->back, m, 2, ZMQ_DONTWAIT));
}

/* backend ROUTER: [bid, id, body] -> reply the same frames */
static void on_backend(LoopZmq *z, void *socket, void *userdata)
{
	Relay *rl = userdata;
	zmq_msg_t m[4];
	int n = recv_frames(socket, m, ELEMENTSOF(m));
	if (n == 0)
		return;
	ASSERT_EQ(n, 3);
	rl->served++;
	ASSERT_OK(loop_zmq_send(z, m, 3, ZMQ_DONTWAIT));
}

/* back DEALER: [id, body] -> front ROUTER: [id, body] */
static void on_back(LoopZmq *z, void *socket, void *userdata)
{
	Relay *rl = userdata;
	zmq_msg_t m[4];
	int n = recv_frames(socket, m, ELEMENTSOF(m));
	if (n == 0)
		return;
	ASSERT_EQ(n, 2);
	ASSERT_OK(loop_zmq_send(rl->front, m, 2, ZMQ_DONTWAIT));
}

static void *make_socket(void *ctx, int type, const char *name, bool bind)
{
	char endpoint[512];
	int zero = 0;
	snprintf(endpoint, sizeof(endpoint), "ipc://%s/%s", test_tmpdir(), name);
	void *s = zmq_socket(ctx, type);
	ASSERT_NOT_NULL(s);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	ASSERT_OK(bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint));
	return s;
}

TEST(zmq_relay_never_strands)
{
	void *ctx = zmq_ctx_new();
	void *front = make_socket(ctx, ZMQ_ROUTER, "front", true);
	void *backend = make_socket(ctx, ZMQ_ROUTER, "backend", true);
	void *client = make_socket(ctx, ZMQ_DEALER, "front", false);
	void *back = make_socket(ctx, ZMQ_DEALER, "backend", false);

	_cleanup_(loop_freep) Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	LoopTimer *wd = watchdog(loop, 20000);
	Relay rl = { .loop = loop };
	ASSERT_OK(loop_zmq_new(loop, client, on_client, &rl, &rl.client));
	ASSERT_OK(loop_zmq_new(loop, front, on_front, &rl, &rl.front));
	ASSERT_OK(loop_zmq_new(loop, back, on_back, &rl, &rl.back));
	ASSERT_OK(loop_zmq_new(loop, backend, on_backend, &rl, &rl.backend));
	for (unsigned i = 0; i < RELAY_WINDOW; i++)
		client_send_one(&rl);

	ASSERT_EQ(loop_run(loop), 0);
	ASSERT_EQ(rl.received, RELAY_TOTAL);
	ASSERT_EQ(rl.served, RELAY_TOTAL);

	loop_zmq_free(rl.client);
	loop_zmq_free(rl.front);
	loop_zmq_free(rl.back);
	loop_zmq_free(rl.backend);
	loop_timer_free(wd);
	zmq_close(client);
	zmq_close(front);
	zmq_close(back);
	zmq_close(backend);
	ASSERT_EQ(loop_shutdown(loop), 0);
	zmq_ctx_term(ctx);
}

/* Messages queued before the socket is watched, more than one batch: all delivered. */
typedef struct Drain {
	Loop *loop;
	unsigned n, want;
} Drain;

static void on_drain(LoopZmq *z, void *socket, void *userdata)
{
	Drain *d = userdata;
	char buf[16];
	(void)z;
	if (zmq_recv(socket, buf, sizeof(buf), ZMQ_DONTWAIT) < 0)
		return;
	if (++d->n == d->want)
		loop_exit(d->loop, 0);
}

TEST(zmq_drains_backlog_in_batches)
{
	char endpoint[512];
	snprintf(endpoint, sizeof(endpoint), "ipc://%s/drain", test_tmpdir());

	void *ctx = zmq_ctx_new();
	void *pull = zmq_socket(ctx, ZMQ_PULL);
	void *push = zmq_socket(ctx, ZMQ_PUSH);
	ASSERT_OK(zmq_bind(pull, endpoint));
	ASSERT_OK(zmq_connect(push, endpoint));
	Drain d = { .want = LOOP_ZMQ_BATCH * 10 + 3 };
	for (unsigned i = 0; i < d.want; i++)
		ASSERT_TRUE(zmq_send(push, "x", 1, 0) == 1);
	/* Let them all arrive at the PULL side before it is watched. */
	usleep(200 * 1000);

	_cleanup_(loop_freep) Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	d.loop = loop;
	watchdog(loop, 10000);
	LoopZmq *z = NULL;
	ASSERT_OK(loop_zmq_new(loop, pull, on_drain, &d, &z));
	ASSERT_EQ(loop_run(loop), 0);
	ASSERT_EQ(d.n, d.want);

	/* Free the source, not the socket: loop_shutdown() must still close cleanly. */
	ASSERT_EQ(loop_shutdown(loop), 0);
	int zero = 0;
	zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(push);
	zmq_close(pull);
	zmq_ctx_term(ctx);
}

/* A source freed inside its own callback stops being called; the loop closes cleanly. */
static void on_free_zmq(LoopZmq *z, void *socket, void *userdata)
{
	unsigned *n = userdata;
	char buf[16];
	(void)zmq_recv(socket, buf, sizeof(buf), ZMQ_DONTWAIT);
	(*n)++;
	loop_zmq_free(z);
}

TEST(zmq_free_in_callback)
{
	void *ctx = zmq_ctx_new();
	void *pull = zmq_socket(ctx, ZMQ_PULL);
	void *push = zmq_socket(ctx, ZMQ_PUSH);
	ASSERT_OK(zmq_bind(pull, "inproc://x"));
	ASSERT_OK(zmq_connect(push, "inproc://x"));
	for (unsigned i = 0; i < 10; i++)
		ASSERT_TRUE(zmq_send(push, "x", 1, 0) == 1);

	_cleanup_(loop_freep) Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	unsigned n = 0;
	LoopZmq *z = NULL;
	LoopTimer *q = NULL;
	ASSERT_OK(loop_zmq_new(loop, pull, on_free_zmq, &n, &z));
	ASSERT_OK(loop_timer_new(loop, 50, 0, on_quit, loop, &q));
	ASSERT_EQ(loop_run(loop), 7);
	ASSERT_EQ(n, 1);
	ASSERT_EQ(loop_shutdown(loop), 0);
	int zero = 0;
	zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(push);
	zmq_close(pull);
	zmq_ctx_term(ctx);
}

static void on_raw_timer(uv_timer_t *t)
{
	(void)t;
}

/* Sources left open and a raw uv handle: loop_shutdown() closes all, uv_loop_close() = 0. */
TEST(shutdown_closes_everything)
{
	Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	LoopTimer *t = NULL;
	LoopSignal *s = NULL;
	ASSERT_OK(loop_timer_new(loop, 100000, 1000, on_count, NULL, &t));
	ASSERT_OK(loop_signal_new(loop, SIGUSR2, on_signal, loop, &s));
	static uv_timer_t raw;
	ASSERT_OK(uv_timer_init(loop_get_uv(loop), &raw));
	ASSERT_OK(uv_timer_start(&raw, on_raw_timer, 100000, 0));
	ASSERT_EQ(loop_shutdown(loop), 0);
	loop = loop_free(loop);
	ASSERT_NULL(loop);
}

TEST(run_returns_when_idle)
{
	_cleanup_(loop_freep) Loop *loop = NULL;
	ASSERT_OK(loop_new(&loop));
	ASSERT_EQ(loop_run(loop), 0);
	ASSERT_EQ(loop_run_once(loop, false), 0);
}

TEST_MAIN();
