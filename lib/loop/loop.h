/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The event loop every daemon runs: a libuv loop plus sources for what daemons wait on
 * — ZeroMQ sockets, signals, timers. Single-threaded: every function here is called
 * from the loop's thread.
 *
 * Sources (LoopTimer, LoopSignal, LoopZmq) belong to their creator, who frees them with
 * their *_free(); freeing a source inside its own callback is allowed. loop_free()
 * closes and frees the sources still attached, so free the objects holding sources
 * before the loop, or do not touch their sources afterwards.
 *
 *     _cleanup_(loop_freep) Loop *loop = NULL;
 *     r = loop_new(&loop);
 *     r = loop_signal_new(loop, SIGTERM, on_sigterm, NULL, &sig);   // calls loop_exit()
 *     r = loop_run(loop);
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <zmq.h>

#include "macro.h"

typedef struct Loop Loop;
typedef struct LoopTimer LoopTimer;
typedef struct LoopSignal LoopSignal;
typedef struct LoopZmq LoopZmq;

int loop_new(Loop **ret);
/* Close every source and handle, run until they are closed, free. Accepts NULL. */
Loop *loop_free(Loop *loop);
DEFINE_TRIVIAL_CLEANUP_FUNC(Loop *, loop_free);

/*
 * Close every source and every handle still open on the loop (handles made directly on
 * loop_get_uv() are closed but their memory stays their owner's), run the loop until
 * they are closed, and close the libuv loop. Returns uv_loop_close()'s result: 0, or
 * -EBUSY if something is still active (a bug). The Loop must not run again; free it.
 */
int loop_shutdown(Loop *loop);

/* For code that needs a libuv handle we do not wrap (child processes, pipes, ...). */
uv_loop_t *loop_get_uv(Loop *loop);

/*
 * Run until loop_exit() and return its code, or return 0 when nothing is left to wait
 * for. May be called again after it returned.
 */
int loop_run(Loop *loop);
/* Run one iteration: wait for events only if `block`. Returns > 0 if work remains. */
int loop_run_once(Loop *loop, bool block);
/* Make loop_run() return `code` once the current callback returns. */
void loop_exit(Loop *loop, int code);

/* ---- Timers ---- */

typedef void (*LoopTimerFunc)(LoopTimer *timer, void *userdata);

/* Fire `after_ms` from now, then every `repeat_ms` (0 = only once). Starts armed. */
int loop_timer_new(Loop *loop, uint64_t after_ms, uint64_t repeat_ms, LoopTimerFunc func,
		   void *userdata, LoopTimer **ret);
/* Re-arm (also after it fired or was stopped), counting from now. */
int loop_timer_set(LoopTimer *timer, uint64_t after_ms, uint64_t repeat_ms);
void loop_timer_stop(LoopTimer *timer);
bool loop_timer_is_armed(LoopTimer *timer);
LoopTimer *loop_timer_free(LoopTimer *timer);
DEFINE_TRIVIAL_CLEANUP_FUNC(LoopTimer *, loop_timer_free);

/* ---- Signals ---- */

typedef void (*LoopSignalFunc)(LoopSignal *signal, int signo, void *userdata);

/*
 * Deliver `signo` as a loop event: func runs from the loop, never in a signal handler.
 * Several deliveries between two iterations may be coalesced into one call.
 */
int loop_signal_new(Loop *loop, int signo, LoopSignalFunc func, void *userdata, LoopSignal **ret);
LoopSignal *loop_signal_free(LoopSignal *signal);
DEFINE_TRIVIAL_CLEANUP_FUNC(LoopSignal *, loop_signal_free);

/* ---- ZeroMQ sockets ---- */

/*
 * Called while the socket has a message to read (ZMQ_EVENTS & ZMQ_POLLIN). It should
 * receive one message (all its frames) with ZMQ_DONTWAIT; it is called again while
 * more are queued, up to LOOP_ZMQ_BATCH times per loop iteration, so one busy socket
 * does not starve the others.
 */
typedef void (*LoopZmqFunc)(LoopZmq *source, void *socket, void *userdata);

#define LOOP_ZMQ_BATCH 64

/*
 * Watch a ZeroMQ socket (not owned: free the source before zmq_close()ing the socket).
 *
 * ZMQ_FD signals edges, not levels, and any zmq_send()/zmq_recv()/ZMQ_EVENTS on the
 * socket may consume an edge. So the source drains the socket until ZMQ_EVENTS shows
 * no POLLIN, and whoever sends on a watched socket outside its callback must call
 * loop_zmq_kick() afterwards (loop_zmq_send() does), which re-checks ZMQ_EVENTS on the
 * next iteration: no message is ever stranded.
 */
int loop_zmq_new(Loop *loop, void *socket, LoopZmqFunc func, void *userdata, LoopZmq **ret);
/* Schedule a ZMQ_EVENTS check before the loop next blocks. Cheap; idempotent. */
void loop_zmq_kick(LoopZmq *source);
/*
 * zmq_msg_send() of `n` frames (all but the last with ZMQ_SNDMORE), then kick. Frames
 * are consumed (closed) whether or not sending succeeds. Returns 0 or -errno
 * (-EAGAIN when the peer's queue is full and flags has ZMQ_DONTWAIT).
 */
int loop_zmq_send(LoopZmq *source, zmq_msg_t *msgs, size_t n, int flags);
void *loop_zmq_get_socket(LoopZmq *source);
LoopZmq *loop_zmq_free(LoopZmq *source);
DEFINE_TRIVIAL_CLEANUP_FUNC(LoopZmq *, loop_zmq_free);
