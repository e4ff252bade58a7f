/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Bus calls and events without libzmq: a blocking DEALER client and a SUB subscriber
 * that speak ZMTP themselves (bus-zmtp-conn.h) to a daemon's ROUTER and PUB over
 * ipc:// endpoints. For short-lived programs (localctl), whose start-up would otherwise
 * be dominated by loading libzmq and its dependencies.
 *
 * Same contract as bus-client.h's blocking client: api_version and request_id are
 * filled in, replies are matched by request_id (late ones dropped), replies carrying
 * an Error are successful calls. Differences: no background threads and no automatic
 * reconnection; a connection is made at the first call and made again after it broke
 * or a call timed out (so a request cannot reach a daemon started later).
 */

#include <stdbool.h>
#include <stdint.h>

#include "bus-codec.h"

typedef struct BusZmtpClient BusZmtpClient;

/* endpoint: "ipc://<path>". Does not connect yet. */
int bus_zmtp_client_new(const char *endpoint, BusZmtpClient **ret);
BusZmtpClient *bus_zmtp_client_free(BusZmtpClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusZmtpClient *, bus_zmtp_client_free);

/*
 * Send `request` and wait up to timeout_ms for its reply.
 *   0             *ret_reply set (free with bus_reply_free())
 *   -ECONNREFUSED nothing listens on the endpoint (no daemon)
 *   -ETIMEDOUT    no reply in time
 *   -ECONNRESET   the daemon closed the connection before replying (it exited)
 *   -E2BIG        request larger than BUS_FRAME_MAX
 *   -EBADMSG      the reply to this call could not be decoded
 *   -EPROTO, -EMSGSIZE, -ENOMEM
 */
int bus_zmtp_client_call(BusZmtpClient *c, BusRequest *request, uint64_t timeout_ms,
			 BusReply **ret_reply);

/*
 * The same in two steps, to wait for the reply alongside other fds: send, then poll
 * bus_zmtp_client_fd() for POLLIN and call bus_zmtp_client_receive(c, 0, ...) until it
 * returns 0 or an error. One call is pending at a time; sending another forgets the
 * previous one (its reply will be dropped). receive: 0 and the reply, -EAGAIN (not
 * yet), -ETIMEDOUT (the call's own timeout passed), -ESRCH (no call pending), or an
 * error as above.
 */
int bus_zmtp_client_send(BusZmtpClient *c, BusRequest *request, uint64_t timeout_ms);
int bus_zmtp_client_receive(BusZmtpClient *c, uint64_t wait_ms, BusReply **ret_reply);
bool bus_zmtp_client_pending(BusZmtpClient *c);
/* The connection's fd, -EBADF when not connected. */
int bus_zmtp_client_fd(BusZmtpClient *c);
/* Replies dropped because no call of ours was waiting for them. */
uint64_t bus_zmtp_client_get_dropped(BusZmtpClient *c);

typedef struct BusZmtpSubscriber BusZmtpSubscriber;

/* Connects at once: -ECONNREFUSED when no daemon publishes there. */
int bus_zmtp_subscriber_new(const char *endpoint, BusZmtpSubscriber **ret);
BusZmtpSubscriber *bus_zmtp_subscriber_free(BusZmtpSubscriber *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusZmtpSubscriber *, bus_zmtp_subscriber_free);

#define BUS_ZMTP_SUBSCRIBER_PREFIXES_MAX 16
#define BUS_ZMTP_SUBSCRIBER_FAMILIES_MAX 16

/* A topic prefix ("" for everything). -EINVAL for a prefix longer than BUS_TOPIC_MAX,
 * -ENOSPC past BUS_ZMTP_SUBSCRIBER_PREFIXES_MAX. Takes a moment to reach the publisher. */
int bus_zmtp_subscriber_subscribe(BusZmtpSubscriber *s, const char *prefix);
/* To poll(2) for POLLIN. */
int bus_zmtp_subscriber_fd(BusZmtpSubscriber *s);
/*
 * The next event, waiting up to wait_ms (0: only what has arrived): 0 and *ret_event
 * (free with bus_event_free()); *ret_gap is true when events of a family our
 * prefixes cover completely were lost before it, or the publisher restarted (the
 * same rules as bus-subscriber.h). -EAGAIN / -ETIMEDOUT: none; -ECONNRESET: the
 * publisher went away; -EPROTO, -EMSGSIZE. Events that do not decode are skipped and
 * counted.
 */
int bus_zmtp_subscriber_receive(BusZmtpSubscriber *s, uint64_t wait_ms, BusEvent **ret_event,
				bool *ret_gap);
uint64_t bus_zmtp_subscriber_get_skipped(BusZmtpSubscriber *s);
