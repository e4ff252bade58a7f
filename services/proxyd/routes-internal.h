/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Between routes.c (immutable tables, lookup, usage objects, address parsing) and
 * routes-feed.c (the Routes object fed by superd). Not for other modules.
 */

#include <stdatomic.h>
#include <stddef.h>

#include "routes.h"

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
int table_builder_finish(TableBuilder *b, uint64_t generation, bool superd_seen,
			 RouteTable **ret);
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
