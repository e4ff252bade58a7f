/* SPDX-License-Identifier: MIT */
#include "bus-subscriber.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "bus-frames.h"
#include "strutil.h"

typedef struct Track {
	char family[BUS_FAMILY_MAX + 1];
	uint64_t epoch;
	uint64_t seq;
} Track;

struct BusSubscriber {
	void *ctx;
	bool own_ctx;
	void *socket;
	LoopZmq *source;
	BusSubscriberCallbacks cb;
	void *userdata;

	char *prefixes[BUS_SUBSCRIBER_PREFIXES_MAX];
	size_t n_prefixes;
	Track tracks[BUS_SUBSCRIBER_FAMILIES_MAX];
	size_t n_tracks;

	unsigned in_callback;
	bool free_requested;
	BusSubscriberStats stats;
	char endpoint[];
};

static void subscriber_destroy(BusSubscriber *s)
{
	loop_zmq_free(s->source);
	if (s->socket)
		zmq_close(s->socket);
	if (s->own_ctx)
		zmq_ctx_term(s->ctx);
	for (size_t i = 0; i < s->n_prefixes; i++)
		free(s->prefixes[i]);
	free(s);
}

/* Both return false if the subscriber was freed by the callback. */
static bool callback_done(BusSubscriber *s)
{
	s->in_callback--;
	if (!s->free_requested)
		return true;
	if (s->in_callback == 0)
		subscriber_destroy(s);
	return false;
}

static bool report_error(BusSubscriber *s, int error, const char *message)
{
	s->stats.errors++;
	if (!s->cb.error)
		return true;
	s->in_callback++;
	s->cb.error(s, error, message, s->userdata);
	return callback_done(s);
}

/* Does one of our subscriptions receive every topic of this family? */
static bool family_covered(BusSubscriber *s, const char *family)
{
	size_t fl = strlen(family);
	for (size_t i = 0; i < s->n_prefixes; i++) {
		const char *p = s->prefixes[i];
		size_t pl = strlen(p);
		if (pl <= fl ? strncmp(p, family, pl) == 0
			     : pl == fl + 1 && strncmp(p, family, fl) == 0 && p[fl] == '.')
			return true;
	}
	return false;
}

static Track *track_get(BusSubscriber *s, const char *family, bool *ret_new)
{
	*ret_new = false;
	for (size_t i = 0; i < s->n_tracks; i++)
		if (streq(s->tracks[i].family, family))
			return &s->tracks[i];
	if (s->n_tracks >= BUS_SUBSCRIBER_FAMILIES_MAX)
		return NULL;
	Track *t = &s->tracks[s->n_tracks++];
	strscpy(t->family, sizeof(t->family), family);
	*ret_new = true;
	return t;
}

/* Returns false if the subscriber was freed by the gap callback. */
static bool check_gap(BusSubscriber *s, const BusEvent *ev)
{
	char family[BUS_FAMILY_MAX + 1];

	if (!isempty(ev->family) && strlen(ev->family) <= BUS_FAMILY_MAX)
		strscpy(family, sizeof(family), ev->family);
	else if (bus_topic_family(ev->topic, family, sizeof(family)) < 0)
		return true;
	if (!family_covered(s, family))
		return true;

	bool is_new;
	Track *t = track_get(s, family, &is_new);
	if (!t)
		return true;
	BusGap gap = { .family = family, .expected_seq = t->seq + 1, .seq = ev->seq };
	bool report = false;
	if (!is_new) {
		if (ev->epoch != t->epoch || ev->seq <= t->seq) {
			gap.kind = BUS_GAP_RESTARTED;
			report = true;
		} else if (ev->seq > t->seq + 1) {
			gap.kind = BUS_GAP_DROPPED;
			s->stats.missed += ev->seq - t->seq - 1;
			report = true;
		}
	}
	t->epoch = ev->epoch;
	t->seq = ev->seq;
	if (!report)
		return true;
	s->stats.gaps++;
	if (!s->cb.gap)
		return true;
	s->in_callback++;
	s->cb.gap(s, &gap, s->userdata);
	return callback_done(s);
}

static void on_readable(LoopZmq *z, void *socket, void *userdata)
{
	BusSubscriber *s = userdata;
	BusFrames frames = {};
	bool truncated = false;
	BusEvent *ev = NULL;
	BusError e = {};

	if (bus_frames_recv(socket, &frames, &truncated) <= 0)
		return;
	if (frames.n != 2 || truncated) {
		bus_frames_clear(&frames);
		(void)report_error(s, -EBADMSG, "event message without exactly two frames");
		return;
	}
	int r = bus_event_decode(zmq_msg_data(&frames.frames[0]), zmq_msg_size(&frames.frames[0]),
				 zmq_msg_data(&frames.frames[1]), zmq_msg_size(&frames.frames[1]),
				 &ev, &e);
	bus_frames_clear(&frames);
	if (r < 0) {
		(void)report_error(s, r, e.message);
		return;
	}
	s->stats.events++;
	if (check_gap(s, ev) && s->cb.event) {
		s->in_callback++;
		s->cb.event(s, ev, s->userdata);
		(void)callback_done(s);
	}
	bus_event_free(ev);
}

int bus_subscriber_new(Loop *loop, void *zmq_ctx, const char *endpoint,
		       const BusSubscriberCallbacks *callbacks, void *userdata, BusSubscriber **ret)
{
	size_t n = strlen(endpoint);
	BusSubscriber *s = calloc(1, sizeof(*s) + n + 1);
	int r;

	if (!s)
		return -ENOMEM;
	memcpy(s->endpoint, endpoint, n + 1);
	s->cb = *callbacks;
	s->userdata = userdata;
	if (zmq_ctx)
		s->ctx = zmq_ctx;
	else {
		s->ctx = zmq_ctx_new();
		if (!s->ctx) {
			free(s);
			return -ENOMEM;
		}
		s->own_ctx = true;
	}
	s->socket = zmq_socket(s->ctx, ZMQ_SUB);
	if (!s->socket) {
		r = negative_errno();
		goto fail;
	}
	r = bus_client_socket_setup(s->socket, false);
	int hwm = BUS_SUBSCRIBER_HWM;
	if (r >= 0 && zmq_setsockopt(s->socket, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0)
		r = negative_errno();
	if (r >= 0 && zmq_connect(s->socket, endpoint) < 0)
		r = negative_errno();
	if (r >= 0)
		r = loop_zmq_new(loop, s->socket, on_readable, s, &s->source);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	subscriber_destroy(s);
	return r;
}

BusSubscriber *bus_subscriber_free(BusSubscriber *s)
{
	if (!s || s->free_requested)
		return NULL;
	s->free_requested = true;
	if (s->in_callback == 0)
		subscriber_destroy(s);
	else
		s->source = loop_zmq_free(s->source);
	return NULL;
}

int bus_subscriber_subscribe(BusSubscriber *s, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n > BUS_TOPIC_MAX)
		return -EINVAL;
	for (size_t i = 0; i < s->n_prefixes; i++)
		if (streq(s->prefixes[i], prefix))
			return 0;
	if (s->n_prefixes >= BUS_SUBSCRIBER_PREFIXES_MAX)
		return -ENOSPC;
	char *copy = strdup(prefix);
	if (!copy)
		return -ENOMEM;
	if (zmq_setsockopt(s->socket, ZMQ_SUBSCRIBE, prefix, n) < 0) {
		int r = negative_errno();
		free(copy);
		return r;
	}
	s->prefixes[s->n_prefixes++] = copy;
	loop_zmq_kick(s->source);
	return 0;
}

int bus_subscriber_unsubscribe(BusSubscriber *s, const char *prefix)
{
	for (size_t i = 0; i < s->n_prefixes; i++) {
		if (!streq(s->prefixes[i], prefix))
			continue;
		if (zmq_setsockopt(s->socket, ZMQ_UNSUBSCRIBE, prefix, strlen(prefix)) < 0)
			return negative_errno();
		free(s->prefixes[i]);
		s->prefixes[i] = s->prefixes[--s->n_prefixes];
		/* A family may no longer be covered: start over; the next events set baselines. */
		s->n_tracks = 0;
		loop_zmq_kick(s->source);
		return 0;
	}
	return -ENOENT;
}

int bus_subscriber_set_hwm(BusSubscriber *s, int hwm)
{
	if (hwm < 0)
		return -EINVAL;
	/* The HWM applies to pipes made at connect: reconnect (subscriptions are resent). */
	if (zmq_disconnect(s->socket, s->endpoint) < 0 && errno != ENOENT)
		return negative_errno();
	if (zmq_setsockopt(s->socket, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0)
		return negative_errno();
	if (zmq_connect(s->socket, s->endpoint) < 0)
		return negative_errno();
	loop_zmq_kick(s->source);
	return 0;
}

void bus_subscriber_get_stats(BusSubscriber *s, BusSubscriberStats *ret)
{
	*ret = s->stats;
}
