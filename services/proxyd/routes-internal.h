/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Between routes.c (immutable tables, lookup, usage objects, address parsing) and
 * routes-feed.c (the Routes object fed by superd). Not for other modules.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "bus.h"
#include "routes.h"
#include "time-util.h"

/*
 * A RouteUsage with its reference count, shared by every table and by the feed's entry
 * for one service (or one SetRoutes host). The flags are how any thread asks the main
 * thread for something about this route without allocating or locking.
 */
typedef struct UsageBox {
	RouteUsage usage;
	atomic_uint refs;
	atomic_bool start_wanted;
	atomic_bool logs_wanted;
} UsageBox;

UsageBox *usage_box_new(void);
UsageBox *usage_box_ref(UsageBox *b);
void usage_box_unref(UsageBox *b);
static inline UsageBox *usage_box_of(RouteUsage *u)
{
	return u ? (UsageBox *)((char *)u - offsetof(UsageBox, usage)) : NULL;
}

/*
 * Building a table: add routes (everything is copied, usage is referenced), then finish.
 * When two routes claim one host, the lower `rank` wins, then the one added first.
 */
typedef struct TableBuilder {
	Route *routes;
	unsigned *ranks;
	size_t n, allocated;
	bool failed; /* an allocation failed: finish returns -ENOMEM */
} TableBuilder;

void table_builder_add(TableBuilder *b, const Route *route, unsigned rank);
int table_builder_finish(TableBuilder *b, uint64_t generation, bool superd_seen, RouteTable **ret);
void table_builder_done(TableBuilder *b);

RouteTable *route_table_ref(RouteTable *t);

/* `host` as a lookup sees it (lower case, no port, no trailing dot) into buf; false if it
 * cannot name a route (empty, too long). */
bool route_host_normalize(const char *host, char *buf, size_t size);
#define ROUTE_HOST_MAX 253

/* A DNS name: dot-separated labels of letters, digits and '-' (not at either end), 1–63
 * bytes each, 253 in all. Case is ignored. */
bool route_host_is_valid(const char *host);

/* "127.0.0.1:5173", "[::1]:8080", "unix:/abs/path.sock" → a socket address. -EINVAL. */
int route_upstream_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len);

/* ---- the Routes object (routes-feed.c feeds it, routes.c publishes it) ---- */

/* One superd service, as its last ServiceStatus said. Main thread. */
typedef struct Entry {
	char *project, *service;
	Locald__V1__ServiceType type;
	Locald__V1__ServiceState state;
	uint32_t port;
	char *host, *site_path, *reason, *last_exit;
	bool autostart;
	uint64_t idle_stop_usec;
	char **last_lines; /* NULL: not fetched */
	UsageBox *box;

	bool routed;
	RouteReadiness readiness;
	usec_t ready_since;

	bool start_inflight, stop_inflight, logs_inflight, logs_pending;
	usec_t last_start, last_logs;
	bool seen; /* in the snapshot being applied */
} Entry;

typedef struct Domain {
	char *project, *domain;
} Domain;

typedef struct Owned {
	char *owner, *host, *upstream_text, *project, *service;
	struct sockaddr_storage upstream;
	socklen_t upstream_len;
	UsageBox *box;
} Owned;

struct Routes {
	Loop *loop;
	void *zmq;
	char *rpc, *events;
	char *watch_dir; /* the runtime dir holding superd.rpc, when it is an ipc endpoint */
	char **dashboard_hosts;
	uint64_t idle_interval_ms;

	BusSubscriber *sub;
	BusAsyncClient *client;
	LoopTimer *retry_timer, *resync_timer, *idle_timer, *logs_timer;
	uv_async_t *wakeup;
	uv_fs_event_t *watch;

	/* Guards `current` only: taken on every request, held for a pointer copy. */
	pthread_mutex_t table_lock;
	RouteTable *current;
	uint64_t generation;

	pthread_mutex_t listeners_lock;
	uv_async_t **listeners;
	size_t n_listeners;

	Entry **entries;
	size_t n_entries;
	Domain *domains;
	size_t n_domains;
	Owned *owned;
	size_t n_owned;

	bool superd_seen;
	bool resync_after_reconnect; /* superd re-bound its socket: snapshot again later */
	/* /etc/hosts through locald-shim: the names last synced */
	char **hosts_synced;
	bool snapshot_inflight, snapshot_again;
	uint64_t call_gen; /* bumped when superd restarts: replies to older calls are ignored */
	bool freeing;
	RoutesStats stats;
};

/* Build a table from the entries, SetRoutes routes and dashboard names, make it current
 * and wake the listeners. -ENOMEM keeps the previous table. */
int routes_publish(Routes *r);
void routes_domains_clear(Routes *r);
void routes_owned_done(Owned *o);
/* Arm the idle-stop timer if some route needs it, stop it otherwise (routes-feed.c). */
void routes_idle_arm(Routes *r);
