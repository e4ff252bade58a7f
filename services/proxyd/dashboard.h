/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The dashboard backend: a small HTTP/1.1 server on the main thread, listening on the
 * Unix socket <runtime>/proxyd-dashboard.sock (0600). exchange.c proxies every request
 * routed to ROUTE_DASHBOARD there, like to a service, so TLS, HTTP/2, streaming and
 * backpressure are the proxy's; the backend sees Host, Origin, Cookie and the
 * X-Forwarded-* fields the proxy sets.
 *
 * It serves the embedded UI (dashboard/ in the source tree) at / and /assets/..., and
 * the JSON API under /api (documented in README.md), fed by its own bus client and
 * subscriber to superd (state, logs) and by proxyd's own request events.
 */

#include <stdbool.h>
#include <sys/socket.h>

#include "loop.h"
#include "proxyd.h"

typedef struct Dashboard Dashboard;

/* Main thread, before the workers start (they read the socket address without a lock).
 * superd endpoints NULL = <runtime>/superd.{rpc,events}. */
int dashboard_new(Loop *loop, const char *runtime_dir, Dashboard **ret);
Dashboard *dashboard_free(Dashboard *d);

/* Main thread: one finished proxied request (proxyd_flush_events taps its queue). */
void dashboard_proxy_request(Dashboard *d, const ProxyRequestLog *log);

/* Any thread: where the dashboard backend listens; false before dashboard_new() or after
 * it failed (exchange.c then answers with an error page). */
bool dashboard_upstream(const struct sockaddr **ret_addr, socklen_t *ret_len,
			const char **ret_text);
