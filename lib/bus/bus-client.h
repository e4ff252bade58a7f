/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Calling a daemon. Both clients use a DEALER socket, set the Request's api_version and
 * request_id themselves, and match replies by request_id: a reply that arrives after its
 * call timed out is recognised and dropped, never taken for another call's.
 *
 * A call that timed out may still run in the daemon: time-outs bound waiting, they do
 * not cancel. Replies carrying an Error are successful calls at this level (0 and the
 * reply); bus_reply_get_error() tells.
 */

#include <stdint.h>

#include "bus-codec.h"
#include "loop.h"

/* ---- Blocking, for the CLI ---- */

typedef struct BusClient BusClient;

/* zmq_ctx NULL: the client makes (and terminates) its own context. Connecting is lazy:
 * this succeeds whether or not the daemon runs. */
int bus_client_new(void *zmq_ctx, const char *endpoint, BusClient **ret);
BusClient *bus_client_free(BusClient *client);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusClient *, bus_client_free);

/*
 * Send `request` (its call set by the caller; api_version and request_id are filled in
 * and restored afterwards) and wait up to timeout_ms for its reply.
 *   0             *ret_reply set (free with bus_reply_free())
 *   -ECONNREFUSED nothing listens on the endpoint (no daemon; checked before sending)
 *   -ETIMEDOUT    no reply in time (daemon busy, hung, gone meanwhile, or refusing us);
 *                 the client then starts over with a new socket, so the request, if it
 *                 was still queued, never reaches a daemon started later
 *   -E2BIG        request larger than BUS_FRAME_MAX
 *   -EBADMSG      the reply to this call could not be decoded
 *   -ENOMEM, other -errno from ZeroMQ
 */
int bus_client_call(BusClient *client, BusRequest *request, uint64_t timeout_ms,
		    BusReply **ret_reply);
/* Replies dropped because no call of ours was waiting for them (late or foreign). */
uint64_t bus_client_get_dropped(BusClient *client);

/* ---- Asynchronous, on the loop, for daemons ---- */

typedef struct BusAsyncClient BusAsyncClient;

#define BUS_ASYNC_PENDING_MAX 1024

/*
 * Called exactly once per accepted call: error 0 with the reply (owned by the client,
 * valid during the callback), or error < 0 and reply NULL: -ETIMEDOUT, -EBADMSG (the
 * reply to this call did not decode), -ECANCELED (client freed). The client may be
 * freed from the callback.
 */
typedef void (*BusReplyFunc)(BusAsyncClient *client, int error, const BusReply *reply,
			     void *userdata);

int bus_async_client_new(Loop *loop, void *zmq_ctx, const char *endpoint, BusAsyncClient **ret);
/* Pending callbacks run with -ECANCELED before it returns. Accepts NULL. */
BusAsyncClient *bus_async_client_free(BusAsyncClient *client);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusAsyncClient *, bus_async_client_free);

/*
 * Start a call. On success the callback will run (never from inside this function).
 * On failure it will not: -ECONNREFUSED (nothing listens), -EBUSY (BUS_ASYNC_PENDING_MAX
 * calls pending), -E2BIG, -ENOMEM, -EAGAIN (queue to the daemon full).
 * timeout_ms 0: no time-out (the call ends with a reply or when the client is freed).
 * The request is not kept; fields are filled in as for bus_client_call().
 */
int bus_async_client_call(BusAsyncClient *client, BusRequest *request, uint64_t timeout_ms,
			  BusReplyFunc func, void *userdata);
size_t bus_async_client_get_pending(BusAsyncClient *client);
