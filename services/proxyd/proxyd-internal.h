/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What main.c, proxyd-bus.c, worker.c and conn.c share beyond the public contracts:
 * the Proxyd context, the listening sockets, the worker's innards and the connection
 * constructor. Nothing here is for the protocol handlers (they use conn.h/exchange.h).
 */

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "bus.h"
#include "conn.h"
#include "loop.h"
#include "proxyd.h"

/* ---- listening sockets (worker.c) ---- */

typedef struct ProxydListener {
	char address[INET6_ADDRSTRLEN]; /* "127.0.0.1", "::1" */
	uint16_t port;
	bool tls;
	bool socket_activated;
	/* One socket per worker (SO_REUSEPORT), or one shared by all (inherited). */
	int *fds;
	size_t n_fds;
	bool shared;
	bool via_shim; /* a port below 1024 bound by locald-shim and passed to us */
} ProxydListener;

/*
 * Bind (or take over from socket activation: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES) the
 * HTTP and HTTPS sockets on 127.0.0.1 and ::1, `n_workers` SO_REUSEPORT sockets each.
 * On failure *error says what (malloc'd).
 */
int proxyd_listeners_open(const ProxydConfig *c, unsigned n_workers, ProxydListener **ret,
			  size_t *ret_n, char **error);
void proxyd_listeners_free(ProxydListener *l, size_t n);

/* ---- the process ---- */

typedef struct ProxyEventItem ProxyEventItem;
typedef struct ClientCount ClientCount;

struct Proxyd {
	ProxydConfig config;
	Loop *loop; /* main thread */
	BusServer *bus;
	Ca *ca;
	TlsServer *tls;
	Routes *routes;
	ProxydListener *listeners;
	size_t n_listeners;
	Worker **workers;
	unsigned n_workers;

	/* proxy.request events: workers queue, the main loop publishes. */
	pthread_mutex_t events_lock;
	ProxyEventItem *events_head, *events_tail;
	size_t n_events;
	uint64_t events_dropped;
	uv_async_t events_async;
	struct Dashboard *dashboard; /* [dashboard] main thread: taps the request events */
	bool events_async_ready;
	bool events_notified; /* an async is on its way or the flush timer runs */
	LoopTimer *events_timer;

	/* Connection limits (any worker thread). */
	atomic_uint conns_total;
	unsigned conns_max;
	pthread_mutex_t clients_lock;
	ClientCount **clients; /* hash buckets by peer address */
	size_t n_client_buckets;
};

int proxyd_new(const ProxydConfig *config, Proxyd **ret);
Proxyd *proxyd_free(Proxyd *p);
/* Main thread: the bus handlers and the event publisher on p->loop/p->bus. */
int proxyd_bus_setup(Proxyd *p);
/* Main thread: publish what the workers queued (also called by the async). */
void proxyd_flush_events(Proxyd *p);

/* Any thread: count a new client connection; false if a limit says no. */
bool proxyd_conn_admit(Proxyd *p, const struct sockaddr *peer);
void proxyd_conn_release(Proxyd *p, const struct sockaddr *peer);
/* Free the per-client counts (at exit; connections are gone by then). */
void proxyd_clients_clear(Proxyd *p);
/* Raise RLIMIT_NOFILE to its hard limit; the total connection limit that leaves. */
unsigned proxyd_max_connections(void);

/* ---- workers (worker.c) ---- */

typedef struct Chunk Chunk;
typedef struct WorkerHook WorkerHook;

typedef struct WorkerListener {
	uv_poll_t poll;
	int fd;
	bool tls, owned, open;
	Worker *w;
} WorkerListener;

struct Worker {
	Proxyd *p;
	unsigned index;
	pthread_t thread;
	bool started;
	uv_loop_t loop;
	uv_async_t stop_async, routes_async;
	uv_check_t check;
	uv_idle_t idle;
	uv_timer_t accept_timer, shutdown_timer;
	bool idle_active, routes_registered;
	WorkerListener *listeners;
	size_t n_listeners;

	/* Connections (conn.c) */
	Conn *conns; /* every connection, doubly linked */
	size_t n_conns;
	Conn *pending; /* connections with deferred work (flush, read, close) */
	uint8_t *rbuf;
	size_t rbuf_size;
	Chunk *free_chunks;
	size_t n_free_chunks;

	WorkerHook *hooks;
	bool stopping;
};

int worker_new(Proxyd *p, unsigned index, Worker **ret);
int worker_start(Worker *w);
/* Any thread: begin the graceful stop (stop accepting, finish in-flight, ≤ 5 s). */
void worker_stop(Worker *w);
/* Wait for the thread and free. Accepts NULL. */
Worker *worker_join_free(Worker *w);
/* Whether the worker is stopping (protocol handlers close idle keep-alive connections). */
bool worker_is_stopping(Worker *w);

/* ---- connections (conn.c) ---- */

/* Take an accepted socket (non-blocking): TLS handshake or protocol detection. The fd is
 * the connection's on success; on failure the caller closes it. */
int conn_new(Worker *w, int fd, bool tls, const struct sockaddr *peer, socklen_t peer_len);
/* Worker loop: the deferred work (check/idle handles call this). */
void conn_run_pending(Worker *w);
/* Worker stopping: tell each connection (ConnProtocol.shutdown) or drop it if it has no
 * request yet; abort_all drops every one. */
void conn_shutdown_all(Worker *w, bool abort_all);
void worker_free_chunks(Worker *w);
