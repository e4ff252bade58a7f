/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The routing table, fed by superd.
 *
 * The main thread owns a Routes object: it subscribes to superd's `service.state.`
 * events, takes a Status snapshot at start and after every sequence gap (or when superd
 * restarts: a new epoch), keeps routes set over the bus by other owners (SetRoutes), and
 * publishes an immutable RouteTable after every change. Workers (other threads) take a
 * reference to the current table per request, look up a host and let go. A table is
 * never modified after publication, so lookups need no lock beyond the acquire.
 *
 * Host rules (lower case, port and trailing dot stripped by the lookup):
 *   <service-host> (ServiceStatus.host, e.g. web.shop.localhost) → that service;
 *   <project domain> (shop.localhost) → the project's "web" service, else the service
 *     named like the project, else the only service with a port; none of those → no route;
 *   "localhost", "locald.localhost", and any name given in RoutesOptions.dashboard_hosts
 *     → ROUTE_DASHBOARD;
 *   SetRoutes hosts → their upstream;
 *   anything else → NULL (404 page listing route_table_hosts()).
 * Services of the built-in `system` project get no routes.
 */

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "loop.h"

typedef enum RouteKind {
	ROUTE_SERVICE,   /* proxy to `upstream` */
	ROUTE_SITE,      /* type = "site": serve files from site_path */
	ROUTE_DASHBOARD, /* the dashboard and /api (proxyd's own pages) */
} RouteKind;

typedef enum RouteReadiness {
	ROUTE_READY,    /* running (healthy, or no check, or unhealthy-but-running): proxy now */
	ROUTE_STARTING, /* waiting, building, starting: wait for it (bounded) */
	ROUTE_STOPPED,  /* stopped, stopping or exited: start on demand if autostart */
	ROUTE_DOWN,     /* failed, blocked, backoff after a crash: 502 page */
} RouteReadiness;

/* Shared between tables, atomics only: what idle-stop needs to know. */
typedef struct RouteUsage {
	_Atomic uint64_t last_request_usec; /* CLOCK_MONOTONIC µs */
	_Atomic uint32_t active;            /* open requests/tunnels/streams right now */
} RouteUsage;

typedef struct Route {
	const char *host;
	RouteKind kind;
	const char *project, *service; /* NULL for SetRoutes routes without them */
	RouteReadiness readiness;
	/* ROUTE_SERVICE: where to connect; upstream_text for logs/events ("127.0.0.1:41234"). */
	struct sockaddr_storage upstream;
	socklen_t upstream_len;
	const char *upstream_text;
	/* For the pages: superd's state name ("starting"), status_reason, and the last exit
	 * as text ("exited with status 1", "killed by signal SIGSEGV"), each may be NULL. */
	const char *state, *reason, *last_exit;
	/* The service's last log lines (≤ 20, oldest first, NULL-terminated; NULL if not
	 * fetched): refreshed when the state changes to starting/down and, while requests
	 * wait, at most once a second (routes_request_logs()). */
	char **last_lines;
	const char *site_path; /* ROUTE_SITE */
	bool autostart;
	uint64_t idle_stop_usec; /* 0 = never */
	RouteUsage *usage;       /* never NULL for ROUTE_SERVICE/ROUTE_SITE */
	const char *owner;       /* SetRoutes routes: who set them; NULL otherwise */
} Route;

typedef struct RouteTable RouteTable;
typedef struct Routes Routes;

typedef struct RoutesOptions {
	const char *superd_rpc, *superd_events; /* endpoints; NULL = <runtime>/superd.* */
	char **dashboard_hosts;                 /* extra names; may be NULL */
	uint64_t idle_check_interval_usec;      /* default 1 s */
} RoutesOptions;

/* Main thread. Connects to superd lazily and keeps retrying (1 s) while it is absent. */
int routes_new(Loop *loop, const RoutesOptions *opts, Routes **ret);
Routes *routes_free(Routes *r);

/* Any thread. The current table, referenced; never NULL. */
RouteTable *routes_acquire(Routes *r);
void route_table_unref(RouteTable *t);
/* Bumped on every publication. */
uint64_t route_table_generation(const RouteTable *t);
/* `host` as received (may carry ":port", upper case, a trailing dot). NULL = no route. */
const Route *route_table_lookup(const RouteTable *t, const char *host);
/* Every routed host name, sorted, NULL-terminated (for the 404 page and the CA filter). */
char *const *route_table_hosts(const RouteTable *t);
/* Whether a table has connected to superd at least once (pages say "superd is not
 * running" otherwise). */
bool route_table_superd_seen(const RouteTable *t);

/*
 * Any thread. `async` is uv_async_send()'d after every publication (a worker's wakeup:
 * requests waiting for a starting service re-check). The handle must stay valid until
 * routes_remove_listener() returns.
 */
int routes_add_listener(Routes *r, uv_async_t *async);
void routes_remove_listener(Routes *r, uv_async_t *async);

/*
 * Any thread; cheap and idempotent (the main thread coalesces): ask superd to start the
 * route's service (on demand), or to refresh its last_lines soon.
 */
void routes_request_start(Routes *r, const Route *route);
void routes_request_logs(Routes *r, const Route *route);

/* Any thread: a request for this route began/ended (idle-stop bookkeeping). */
void route_usage_begin(const Route *route);
void route_usage_end(const Route *route);

/*
 * Main thread (the bus handlers): routes of `owner` replaced by hosts → upstreams
 * ("127.0.0.1:5173", "[::1]:8080"). -EEXIST if a host belongs to another owner or to a
 * service; -EINVAL for a bad host or upstream, with *error set to a static message.
 */
typedef struct RouteSpec {
	const char *host, *upstream, *project, *service;
} RouteSpec;
int routes_set_owner(Routes *r, const char *owner, const RouteSpec *specs, size_t n,
		     const char **error);

/* Counters for tests and Stats. */
typedef struct RoutesStats {
	unsigned long snapshots, events, gaps, starts_requested, idle_stops;
} RoutesStats;
void routes_get_stats(Routes *r, RoutesStats *ret);
