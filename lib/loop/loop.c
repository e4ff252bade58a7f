/* SPDX-License-Identifier: MIT */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

/*
 * Every wrapper starts with a LoopSource: the loop keeps them in a list so that
 * loop_shutdown() can close what its owners left open, and a wrapper is freed when the
 * last of its libuv handles has finished closing (libuv owns the memory until then).
 */
typedef struct LoopSource LoopSource;
struct LoopSource {
	Loop *loop;
	LoopSource *prev, *next;
	uv_handle_t *handles[2]; /* initialised handles */
	unsigned n_handles;      /* of which not yet closed */
	bool closing;
};

struct Loop {
	uv_loop_t uv;
	LoopSource *sources;
	int exit_code;
	bool exit_requested;
	bool initialized;
	bool closed;
};

struct LoopTimer {
	LoopSource src;
	uv_timer_t timer;
	LoopTimerFunc func;
	void *userdata;
};

struct LoopSignal {
	LoopSource src;
	uv_signal_t signal;
	LoopSignalFunc func;
	void *userdata;
};

struct LoopZmq {
	LoopSource src;
	uv_poll_t poll;
	uv_idle_t idle;
	void *socket;
	LoopZmqFunc func;
	void *userdata;
};

static void source_link(Loop *loop, LoopSource *s)
{
	s->loop = loop;
	s->prev = NULL;
	s->next = loop->sources;
	if (loop->sources)
		loop->sources->prev = s;
	loop->sources = s;
}

static void source_unlink(LoopSource *s)
{
	if (!s->loop)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->loop->sources = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static void on_handle_closed(uv_handle_t *h)
{
	LoopSource *s = h->data;
	if (--s->n_handles == 0)
		free(s);
}

static void source_add_handle(LoopSource *s, uv_handle_t *h)
{
	h->data = s;
	s->handles[s->n_handles++] = h;
}

/* Close the wrapper's handles; it is freed once they are closed (or now, if none). */
static void source_close(LoopSource *s)
{
	if (s->closing)
		return;
	s->closing = true;
	source_unlink(s);
	unsigned n = s->n_handles;
	if (n == 0) {
		free(s);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		uv_close(s->handles[i], on_handle_closed);
}

int loop_new(Loop **ret)
{
	Loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	int r = uv_loop_init(&loop->uv);
	if (r < 0) {
		free(loop);
		return r;
	}
	loop->initialized = true;
	loop->uv.data = loop;
	*ret = loop;
	return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int loop_shutdown(Loop *loop)
{
	if (!loop->initialized)
		return 0;
	if (loop->closed)
		return 0;
	while (loop->sources)
		source_close(loop->sources);
	/* Handles the owners made directly on the uv loop: close them, memory stays theirs. */
	uv_walk(&loop->uv, close_any, NULL);
	/* Runs the close callbacks; returns once nothing is active any more. */
	(void)uv_run(&loop->uv, UV_RUN_DEFAULT);
	int r = uv_loop_close(&loop->uv);
	if (r == 0)
		loop->closed = true;
	return r;
}

Loop *loop_free(Loop *loop)
{
	if (!loop)
		return NULL;
	(void)loop_shutdown(loop);
	free(loop);
	return NULL;
}

uv_loop_t *loop_get_uv(Loop *loop)
{
	return &loop->uv;
}

int loop_run(Loop *loop)
{
	loop->exit_requested = false;
	(void)uv_run(&loop->uv, UV_RUN_DEFAULT);
	if (loop->exit_requested) {
		loop->exit_requested = false;
		return loop->exit_code;
	}
	return 0;
}

int loop_run_once(Loop *loop, bool block)
{
	return uv_run(&loop->uv, block ? UV_RUN_ONCE : UV_RUN_NOWAIT);
}

void loop_exit(Loop *loop, int code)
{
	loop->exit_code = code;
	loop->exit_requested = true;
	uv_stop(&loop->uv);
}

/* ---- Timers ---- */

static void on_timer(uv_timer_t *t)
{
	LoopTimer *timer = t->data;
	timer->func(timer, timer->userdata);
}

int loop_timer_new(Loop *loop, uint64_t after_ms, uint64_t repeat_ms, LoopTimerFunc func,
		   void *userdata, LoopTimer **ret)
{
	LoopTimer *timer = calloc(1, sizeof(*timer));
	if (!timer)
		return -ENOMEM;
	int r = uv_timer_init(&loop->uv, &timer->timer);
	if (r < 0) {
		free(timer);
		return r;
	}
	source_add_handle(&timer->src, (uv_handle_t *)&timer->timer);
	timer->func = func;
	timer->userdata = userdata;
	source_link(loop, &timer->src);
	r = loop_timer_set(timer, after_ms, repeat_ms);
	if (r < 0) {
		loop_timer_free(timer);
		return r;
	}
	*ret = timer;
	return 0;
}

int loop_timer_set(LoopTimer *timer, uint64_t after_ms, uint64_t repeat_ms)
{
	if (timer->src.closing)
		return -ESTALE;
	/* The loop's clock is cached per iteration; a busy callback would shorten timeouts. */
	uv_update_time(timer->timer.loop);
	return uv_timer_start(&timer->timer, on_timer, after_ms, repeat_ms);
}

void loop_timer_stop(LoopTimer *timer)
{
	if (!timer->src.closing)
		(void)uv_timer_stop(&timer->timer);
}

bool loop_timer_is_armed(LoopTimer *timer)
{
	return !timer->src.closing && uv_is_active((uv_handle_t *)&timer->timer);
}

LoopTimer *loop_timer_free(LoopTimer *timer)
{
	if (timer)
		source_close(&timer->src);
	return NULL;
}

/* ---- Signals ---- */

static void on_signal(uv_signal_t *s, int signo)
{
	LoopSignal *signal = s->data;
	signal->func(signal, signo, signal->userdata);
}

int loop_signal_new(Loop *loop, int signo, LoopSignalFunc func, void *userdata, LoopSignal **ret)
{
	LoopSignal *signal = calloc(1, sizeof(*signal));
	if (!signal)
		return -ENOMEM;
	int r = uv_signal_init(&loop->uv, &signal->signal);
	if (r < 0) {
		free(signal);
		return r;
	}
	source_add_handle(&signal->src, (uv_handle_t *)&signal->signal);
	signal->func = func;
	signal->userdata = userdata;
	source_link(loop, &signal->src);
	r = uv_signal_start(&signal->signal, on_signal, signo);
	if (r < 0) {
		loop_signal_free(signal);
		return r;
	}
	*ret = signal;
	return 0;
}

LoopSignal *loop_signal_free(LoopSignal *signal)
{
	if (signal)
		source_close(&signal->src);
	return NULL;
}

/* ---- ZeroMQ ---- */

static void on_zmq_idle(uv_idle_t *idle);

static void zmq_dispatch(LoopZmq *z)
{
	for (unsigned i = 0; i < LOOP_ZMQ_BATCH; i++) {
		int events = 0;
		size_t len = sizeof(events);
		/* Also processes the socket's pending commands, which consumes the FD's edge. */
		if (zmq_getsockopt(z->socket, ZMQ_EVENTS, &events, &len) < 0)
			return;
		if (!(events & ZMQ_POLLIN))
			return;
		z->func(z, z->socket, z->userdata);
		if (z->src.closing)
			return;
	}
	/* Budget spent with messages left: continue on the next iteration. */
	loop_zmq_kick(z);
}

static void on_zmq_poll(uv_poll_t *poll, int status, int events)
{
	(void)status;
	(void)events;
	zmq_dispatch(poll->data);
}

static void on_zmq_idle(uv_idle_t *idle)
{
	LoopZmq *z = idle->data;
	(void)uv_idle_stop(idle);
	zmq_dispatch(z);
}

int loop_zmq_new(Loop *loop, void *socket, LoopZmqFunc func, void *userdata, LoopZmq **ret)
{
	int fd;
	size_t len = sizeof(fd);
	if (zmq_getsockopt(socket, ZMQ_FD, &fd, &len) < 0)
		return negative_errno();

	LoopZmq *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->socket = socket;
	z->func = func;
	z->userdata = userdata;

	int r = uv_poll_init(&loop->uv, &z->poll, fd);
	if (r < 0) {
		free(z);
		return r;
	}
	source_add_handle(&z->src, (uv_handle_t *)&z->poll);
	source_link(loop, &z->src);

	r = uv_idle_init(&loop->uv, &z->idle);
	if (r < 0) {
		loop_zmq_free(z);
		return r;
	}
	source_add_handle(&z->src, (uv_handle_t *)&z->idle);

	r = uv_poll_start(&z->poll, UV_READABLE, on_zmq_poll);
	if (r < 0) {
		loop_zmq_free(z);
		return r;
	}
	/* Messages may have queued before we watched: look once. */
	loop_zmq_kick(z);
	*ret = z;
	return 0;
}

void loop_zmq_kick(LoopZmq *z)
{
	if (z && !z->src.closing)
		(void)uv_idle_start(&z->idle, on_zmq_idle);
}

int loop_zmq_send(LoopZmq *z, zmq_msg_t *msgs, size_t n, int flags)
{
	int r = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		int f = flags | (i + 1 < n ? ZMQ_SNDMORE : 0);
		if (zmq_msg_send(&msgs[i], z->socket, f) < 0) {
			r = negative_errno();
			break;
		}
	}
	for (; i < n; i++)
		zmq_msg_close(&msgs[i]);
	loop_zmq_kick(z);
	return r;
}

void *loop_zmq_get_socket(LoopZmq *z)
{
	return z->socket;
}

LoopZmq *loop_zmq_free(LoopZmq *z)
{
	if (z)
		/* uv_close() stops the poll at once (epoll_ctl DEL): the caller may now
		 * zmq_close(). */
		source_close(&z->src);
	return NULL;
}
