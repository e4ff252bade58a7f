/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A daemon's side of the bus: a ROUTER at ipc://<runtime>/<name>.rpc answering
 * Requests through a handler table, and a PUB at ipc://<runtime>/<name>.events.
 *
 * Every request frame gets exactly one reply:
 *   - frames that do not decode, are too large, or carry another api_version: the
 *     codec's error (bus-codec.h), before any handler runs;
 *   - Ping and GetVersion: answered here;
 *   - a call without a handler: UNIMPLEMENTED;
 *   - more than BUS_PEER_INFLIGHT_MAX deferred calls of one client, or
 *     BUS_SERVER_INFLIGHT_MAX in all: UNAVAILABLE;
 *   - a handler that returns -errno without replying: that error
 *     (bus_error_code_from_errno()); one that returns 0 without replying or deferring:
 *     INTERNAL;
 *   - a deferred call not answered within the call timeout, or still open when the
 *     server is freed: UNAVAILABLE. The handler's BusCall stays valid (its reply is
 *     then dropped) until the handler finishes it.
 * Replies to peers that went away are dropped (ZMQ_ROUTER_MANDATORY tells).
 *
 * Peers of another uid are refused at connect (ZMQ_IPC_FILTER_UID: our uid and root),
 * on top of the runtime directory's 0700 and the sockets' 0600.
 */

#include <stdbool.h>
#include <stdint.h>

#include "bus-codec.h"
#include "loop.h"

typedef struct BusServer BusServer;
typedef struct BusCall BusCall;

/* Deferred (not yet answered) calls one client may have open. */
#define BUS_PEER_INFLIGHT_MAX 64
#define BUS_SERVER_INFLIGHT_MAX 4096
#define BUS_SERVER_CALL_TIMEOUT_MS_DEFAULT (5 * 60 * 1000)
/* Outgoing queue per peer (ROUTER) and per subscriber (PUB). */
#define BUS_RPC_HWM 1000
#define BUS_EVENTS_HWM 10000

/*
 * Handle one request. Either reply before returning (bus_call_reply*()), or take the
 * call with bus_call_defer() and reply later from the loop, or return -errno to have the
 * server answer with the matching error. `request` stays valid as long as the call.
 */
typedef int (*BusHandler)(BusCall *call, const BusRequest *request, void *userdata);

/*
 * Bind <runtime_dir>/<name>.rpc and .events (runtime_dir NULL: locald_runtime_dir_ensure()).
 * zmq_ctx NULL: the server makes (and terminates) its own context.
 * -EADDRINUSE if a live daemon holds the endpoint.
 */
int bus_server_new(Loop *loop, void *zmq_ctx, const char *runtime_dir, const char *name,
		   BusServer **ret);
/* Answer every deferred call UNAVAILABLE, close and unlink the sockets. Accepts NULL. */
BusServer *bus_server_free(BusServer *server);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusServer *, bus_server_free);

/* One handler per call; replaces a previous one. -EINVAL for Ping/GetVersion/unknown. */
int bus_server_add_handler(BusServer *server, BusCallCase call, BusHandler handler, void *userdata);
/* Deadline for deferred calls (0 = none); applies to calls deferred afterwards. */
void bus_server_set_call_timeout(BusServer *server, uint64_t timeout_ms);

/*
 * Publish an event: fills in event->topic (= topic), family (points into the server),
 * seq, time_usec and epoch, and sends [topic, Event] without
 * blocking (a subscriber past its HWM misses it, and sees a gap). The caller sets the
 * payload. -EINVAL for a bad topic, -E2BIG, -ENOMEM, -ENOSPC past BUS_FAMILY_COUNT_MAX
 * families. The seq is consumed once the event is encoded.
 */
#define BUS_FAMILY_COUNT_MAX 64
int bus_server_publish(BusServer *server, const char *topic, BusEvent *event, uint64_t *ret_seq);
/* Whether a subscriber would receive an event on this topic now (XPUB subscriptions). */
bool bus_server_has_subscriber(BusServer *server, const char *topic);
/* For tests of gap handling: consume n sequence numbers of a family without publishing. */
int bus_server_skip_seq(BusServer *server, const char *family, uint64_t n);

const char *bus_server_get_name(BusServer *server);
const char *bus_server_get_rpc_path(BusServer *server);
const char *bus_server_get_events_path(BusServer *server);
uint64_t bus_server_get_epoch(BusServer *server);
/* Whether ZMQ_IPC_FILTER_UID took effect (else only file modes keep other uids out). */
bool bus_server_uid_filter_active(BusServer *server);

typedef struct BusServerStats {
	uint64_t requests;        /* frames received */
	uint64_t errors;          /* error replies sent, any reason */
	uint64_t replies_dropped; /* peer gone or its queue full */
	uint64_t foreign_dropped; /* messages from another uid (only without the uid filter) */
	uint64_t deferred;        /* calls currently deferred */
	uint64_t events_published;
} BusServerStats;
void bus_server_get_stats(BusServer *server, BusServerStats *ret);

/* ---- Calls ---- */

/* Keep the call beyond the handler: the caller now owns it and must finish it with
 * bus_call_reply*() or bus_call_free(). Returns call. */
BusCall *bus_call_defer(BusCall *call);
/*
 * Send the reply: sets reply->request_id (to the call's) and sends it. *call is consumed
 * and set to NULL, whatever happens. reply's result must be set. If the encoded reply is
 * too large, the peer gets INTERNAL instead and -E2BIG is returned. -ESTALE if the call
 * was already answered (timeout, server freed): nothing is sent.
 */
int bus_call_reply(BusCall **call, BusReply *reply);
int bus_call_reply_error(BusCall **call, BusErrorCode code, const char *hint, const char *fmt, ...)
    _printf_(4, 5);
int bus_call_reply_errno(BusCall **call, int error, const char *hint, const char *fmt, ...)
    _printf_(4, 5);
/* Drop a deferred call; if still unanswered, the peer gets INTERNAL. Accepts NULL. */
BusCall *bus_call_free(BusCall *call);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusCall *, bus_call_free);

const BusRequest *bus_call_get_request(BusCall *call);
const char *bus_call_get_request_id(BusCall *call);
/* NULL once the server is gone. */
BusServer *bus_call_get_server(BusCall *call);
/* True once a reply (or an error on the call's behalf) went out. */
bool bus_call_is_answered(BusCall *call);
