/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Receiving a daemon's events (its PUB at ipc://<runtime>/<daemon>.events) on the loop.
 *
 * Subscriptions are topic prefixes, matched bytewise by ZeroMQ ("log.shop." gets
 * log.shop.web and log.shop.db; "" gets everything). A new subscription takes a moment
 * to reach the publisher: events published meanwhile are not received.
 *
 * Gaps: seq counts per topic family without holes, so for every family a subscription
 * covers completely (the prefix is a prefix of "<family>.", e.g. "", "log." or
 * "service."), a jump in seq means events were dropped (PUB high-water mark): the gap
 * callback runs before the event that revealed it, so the owner can fetch what it
 * missed by request (Logs, Status, ...). A changed epoch (the daemon restarted) is
 * reported as a gap of kind RESTARTED. For narrower subscriptions (log.shop.web) holes
 * are normal and not reported.
 */

#include <stdbool.h>
#include <stdint.h>

#include "bus-codec.h"
#include "loop.h"

typedef struct BusSubscriber BusSubscriber;

typedef enum BusGapKind {
	BUS_GAP_DROPPED,   /* seq jumped forward: events expected_seq .. seq-1 were lost */
	BUS_GAP_RESTARTED, /* epoch changed or seq went back: the publisher restarted */
	_BUS_GAP_KIND_MAX,
	_BUS_GAP_KIND_INVALID = -22,
} BusGapKind;

typedef struct BusGap {
	const char *family;
	BusGapKind kind;
	uint64_t expected_seq;
	uint64_t seq;
} BusGap;

typedef struct BusSubscriberCallbacks {
	/* An event; valid during the call. */
	void (*event)(BusSubscriber *s, const BusEvent *event, void *userdata);
	/* Optional. */
	void (*gap)(BusSubscriber *s, const BusGap *gap, void *userdata);
	/* Optional: a message that did not decode (dropped). error is -errno, message for humans.
	 */
	void (*error)(BusSubscriber *s, int error, const char *message, void *userdata);
} BusSubscriberCallbacks;

/* Families tracked for gap detection; events of further families are delivered untracked. */
#define BUS_SUBSCRIBER_FAMILIES_MAX 64
#define BUS_SUBSCRIBER_PREFIXES_MAX 64
#define BUS_SUBSCRIBER_HWM 10000

/* Connects at once (lazily: the daemon may start later). callbacks is copied. */
int bus_subscriber_new(Loop *loop, void *zmq_ctx, const char *endpoint,
		       const BusSubscriberCallbacks *callbacks, void *userdata,
		       BusSubscriber **ret);
/* The subscriber may be freed from its own callbacks. Accepts NULL. */
BusSubscriber *bus_subscriber_free(BusSubscriber *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusSubscriber *, bus_subscriber_free);

/* -EINVAL for a prefix longer than BUS_TOPIC_MAX, -ENOSPC past BUS_SUBSCRIBER_PREFIXES_MAX. */
int bus_subscriber_subscribe(BusSubscriber *s, const char *prefix);
int bus_subscriber_unsubscribe(BusSubscriber *s, const char *prefix);
/* Receive-side high-water mark (messages queued before delivery); call before events
 * flow. Default BUS_SUBSCRIBER_HWM. */
int bus_subscriber_set_hwm(BusSubscriber *s, int hwm);

typedef struct BusSubscriberStats {
	uint64_t events;
	uint64_t gaps;
	uint64_t missed; /* sum of the DROPPED gaps' sizes */
	uint64_t errors;
} BusSubscriberStats;
void bus_subscriber_get_stats(BusSubscriber *s, BusSubscriberStats *ret);
