/* SPDX-License-Identifier: MIT */
#include "bus-client.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "bus-endpoint.h"
#include "bus-frames.h"
#include "strutil.h"
#include "time-util.h"

struct BusClient {
	void *ctx;
	bool own_ctx;
	void *socket;
	uint32_t tag;
	uint64_t counter;
	uint64_t dropped;
	char endpoint[];
};

/*
 * Not ZMQ_IMMEDIATE: with it, libzmq discards the messages a connection delivered but we
 * have not read yet when that connection drops, so the reply of a daemon that answers
 * and exits (Shutdown) could vanish. Instead a socket whose call timed out is replaced
 * (see bus_client_call()), which drops a request still queued for a daemon that is not
 * there, so it cannot reach one started later.
 */
static int client_open_socket(BusClient *c)
{
	void *s = zmq_socket(c->ctx, ZMQ_DEALER);
	if (!s)
		return negative_errno();
	int r = bus_client_socket_setup(s, false);
	if (r >= 0 && zmq_connect(s, c->endpoint) < 0)
		r = negative_errno();
	if (r < 0) {
		zmq_close(s);
		return r;
	}
	if (c->socket)
		zmq_close(c->socket);
	c->socket = s;
	return 0;
}

int bus_client_new(void *zmq_ctx, const char *endpoint, BusClient **ret)
{
	size_t n = strlen(endpoint);
	BusClient *c = calloc(1, sizeof(*c) + n + 1);
	int r;

	if (!c)
		return -ENOMEM;
	memcpy(c->endpoint, endpoint, n + 1);
	c->tag = bus_client_tag();
	if (zmq_ctx)
		c->ctx = zmq_ctx;
	else {
		c->ctx = zmq_ctx_new();
		if (!c->ctx) {
			free(c);
			return -ENOMEM;
		}
		c->own_ctx = true;
	}
	r = client_open_socket(c);
	if (r < 0) {
		bus_client_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

BusClient *bus_client_free(BusClient *c)
{
	if (!c)
		return NULL;
	if (c->socket)
		zmq_close(c->socket);
	if (c->own_ctx)
		zmq_ctx_term(c->ctx);
	free(c);
	return NULL;
}

uint64_t bus_client_get_dropped(BusClient *c)
{
	return c->dropped;
}

static int encode_with_id(BusRequest *req, const char *id, void **ret, size_t *ret_size)
{
	char *old_id = req->request_id;
	uint32_t old_version = req->api_version;

	req->request_id = (char *)id;
	req->api_version = BUS_API_VERSION;
	int r = bus_request_encode(req, ret, ret_size);
	req->request_id = old_id;
	req->api_version = old_version;
	return r;
}

static int ms_until(usec_t deadline)
{
	usec_t now = now_monotonic();
	if (now >= deadline)
		return 0;
	usec_t ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static void free_buffer(void *data, void *hint)
{
	(void)hint;
	free(data);
}

int bus_client_call(BusClient *c, BusRequest *request, uint64_t timeout_ms, BusReply **ret_reply)
{
	char id[BUS_CLIENT_ID_MAX];
	void *data = NULL;
	size_t size = 0;
	zmq_msg_t m;
	int r;

	usec_t deadline = now_monotonic() + timeout_ms * USEC_PER_MSEC;

	r = bus_endpoint_probe(c->endpoint);
	if (r == -ENOENT || r == -ECONNREFUSED)
		return -ECONNREFUSED;
	if (r < 0)
		return r;

	bus_client_format_id(id, c->tag, ++c->counter);
	r = encode_with_id(request, id, &data, &size);
	if (r < 0)
		return r;
	if (zmq_msg_init_data(&m, data, size, free_buffer, NULL) < 0) {
		free(data);
		return -ENOMEM;
	}
	/* Queued at once (HWM permitting); bounded by the deadline anyway. */
	int sndtimeo = ms_until(deadline);
	(void)zmq_setsockopt(c->socket, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo));
	if (zmq_msg_send(&m, c->socket, 0) < 0) {
		r = negative_errno();
		zmq_msg_close(&m);
		(void)client_open_socket(c);
		return r == -EAGAIN ? -ETIMEDOUT : r;
	}

	for (;;) {
		zmq_pollitem_t item = { .socket = c->socket, .events = ZMQ_POLLIN };
		int timeout = ms_until(deadline);
		if (timeout <= 0) {
			/* The request may still wait in the queue for a daemon that is gone. */
			(void)client_open_socket(c);
			return -ETIMEDOUT;
		}
		r = zmq_poll(&item, 1, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (r == 0)
			continue;

		BusFrames frames = {};
		r = bus_frames_recv(c->socket, &frames, NULL);
		if (r < 0)
			return r;
		if (r == 0)
			continue;

		/* DEALER gets [body], or ["", body] if a broker added a delimiter. */
		zmq_msg_t *body = &frames.frames[frames.n - 1];
		BusReply *reply = NULL;
		BusError e = {};
		r = bus_reply_decode(zmq_msg_data(body), zmq_msg_size(body), &reply, &e);
		bus_frames_clear(&frames);
		if (r < 0) {
			if (streq(e.request_id, id))
				return -EBADMSG;
			c->dropped++;
			continue;
		}
		if (!streq(reply->request_id, id)) {
			/* A late reply to a call that timed out before. */
			bus_reply_free(reply);
			c->dropped++;
			continue;
		}
		*ret_reply = reply;
		return 0;
	}
}
