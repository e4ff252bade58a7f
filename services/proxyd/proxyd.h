/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * proxyd's process-wide context and worker threads.
 *
 * Threads: the main thread runs the Loop with proxyd's bus server (proxyd.rpc/.events)
 * and the Routes feed from superd. N worker threads (ProxydConfig.workers) each run
 * their own libuv loop: they accept on their own SO_REUSEPORT listening sockets (or a
 * shared inherited one), do TLS, HTTP/1.1 and HTTP/2, and keep their own upstream
 * keep-alive pool. Workers share only the Ca (locked), the TlsServer (read-only), the
 * Routes table (immutable snapshots), and the request-event queue below.
 */

#include <stdbool.h>
#include <stdint.h>

#include "ca.h"
#include "http1.h"
#include "routes.h"

typedef struct ProxydConfig {
	/* Listening ports: -1 = default (80/443 if we can bind them, else 8080/8443),
	 * 0 = any free port. From [proxy] in <config>/locald.toml, overridden by
	 * LOCALD_HTTP_PORT / LOCALD_HTTPS_PORT. */
	int http_port, https_port;
	bool ipv6;                           /* also listen on ::1 (default true when available) */
	unsigned workers;                    /* default: number of CPUs, at most 4 */
	uint64_t connect_timeout_ms;         /* upstream connect; default 5 s */
	uint64_t upstream_timeout_ms;        /* upstream idle read once the request is sent;
					      * default 0 = none (long-poll, SSE) */
	uint64_t start_wait_ms;              /* wait for a starting service; default 30 s */
	uint64_t loading_page_ms;            /* browsers get the loading page after; default 500 */
	uint64_t client_idle_ms;             /* idle keep-alive client connection; default 75 s */
	uint64_t header_timeout_ms;          /* request head must arrive within; default 30 s */
	unsigned max_connections_per_client; /* per peer address; default 4096 (on loopback every
						client is 127.0.0.1) */
	unsigned h2_max_concurrent_streams;  /* default 128 */
	uint32_t h2_max_header_list;         /* default 64 KiB */
	Http1Limits h1_limits;
} ProxydConfig;

/* Defaults, then <config>/locald.toml [proxy], then the environment. */
int proxyd_config_load(ProxydConfig *ret, char **error);

typedef struct Proxyd Proxyd;

/* The pieces workers share. */
Ca *proxyd_ca(Proxyd *p);
TlsServer *proxyd_tls(Proxyd *p);
Routes *proxyd_routes(Proxyd *p);
const ProxydConfig *proxyd_config(Proxyd *p);

/* One finished request, for the proxy.request.<host> event. Any thread; copies. */
typedef struct ProxyRequestLog {
	const char *method, *host, *path, *protocol, *upstream;
	unsigned status;
	uint64_t duration_usec, response_bytes;
} ProxyRequestLog;
void proxyd_emit_request(Proxyd *p, const ProxyRequestLog *log);

/* A worker thread's loop and its process. */
#include <uv.h>
typedef struct Worker Worker;
Proxyd *worker_proxyd(Worker *w);
uv_loop_t *worker_uv(Worker *w);
/* Worker thread: run cb(userdata) on the worker's loop after every routes publication
 * (the worker's own uv_async_t given to routes_add_listener()). exchange.c uses it to
 * re-check requests waiting for a starting service. The registration lasts as long as
 * the worker; 0 or -ENOMEM. */
int worker_on_routes_changed(Worker *w, void (*cb)(void *userdata), void *userdata);
