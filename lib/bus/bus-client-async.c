/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "bus-client.h"
#include "bus-endpoint.h"
#include "bus-frames.h"
#include "strutil.h"

typedef struct Pending Pending;
struct Pending {
	Pending *prev, *next;
	BusAsyncClient *client;
	LoopTimer *timer;
	BusReplyFunc func;
	void *userdata;
	char id[BUS_CLIENT_ID_MAX];
};

struct BusAsyncClient {
	Loop *loop;
	void *ctx;
	bool own_ctx;
	void *socket;
	LoopZmq *source;
	Pending *pending;
	size_t n_pending;
	uint32_t tag;
	uint64_t counter;
	/* Freed while a callback ran: the memory goes when the outermost one returns. */
	unsigned in_callback;
	bool free_requested;
	char endpoint[];
};

static void client_destroy(BusAsyncClient *c)
{
	if (c->source)
		c->source = loop_zmq_free(c->source);
	if (c->socket) {
		zmq_close(c->socket);
		c->socket = NULL;
	}
	if (c->own_ctx)
		zmq_ctx_term(c->ctx);
	free(c);
}

static void pending_unlink(Pending *p)
{
	BusAsyncClient *c = p->client;
	if (p->prev)
		p->prev->next = p->next;
	else
		c->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	c->n_pending--;
}

/*
 * Finish a call: unlink, run its callback, free it. Returns false if the client was
 * freed (by this or an enclosing callback) and must not be touched any more.
 */
static bool pending_complete(Pending *p, int error, const BusReply *reply)
{
	BusAsyncClient *c = p->client;

	pending_unlink(p);
	loop_timer_free(p->timer);
	c->in_callback++;
	p->func(c, error, reply, p->userdata);
	c->in_callback--;
	free(p);
	if (c->free_requested) {
		if (c->in_callback == 0)
			client_destroy(c);
		return false;
	}
	return true;
}

static Pending *pending_find(BusAsyncClient *c, const char *id)
{
	for (Pending *p = c->pending; p; p = p->next)
		if (streq(p->id, id))
			return p;
	return NULL;
}

static void on_timeout(LoopTimer *t, void *userdata)
{
	(void)t;
	(void)pending_complete(userdata, -ETIMEDOUT, NULL);
}

static void on_readable(LoopZmq *z, void *socket, void *userdata)
{
	BusAsyncClient *c = userdata;
	BusFrames frames = {};
	BusReply *reply = NULL;
	BusError e = {};

	if (bus_frames_recv(socket, &frames, NULL) <= 0)
		return;
	zmq_msg_t *body = &frames.frames[frames.n - 1];
	int r = bus_reply_decode(zmq_msg_data(body), zmq_msg_size(body), &reply, &e);
	bus_frames_clear(&frames);

	/* Unknown ids are replies to calls that timed out: dropped. */
	Pending *p = pending_find(c, r < 0 ? e.request_id : reply->request_id);
	if (p)
		(void)pending_complete(p, r < 0 ? -EBADMSG : 0, reply);
	bus_reply_free(reply);
}

int bus_async_client_new(Loop *loop, void *zmq_ctx, const char *endpoint, BusAsyncClient **ret)
{
	size_t n = strlen(endpoint);
	BusAsyncClient *c = calloc(1, sizeof(*c) + n + 1);
	int r;

	if (!c)
		return -ENOMEM;
	memcpy(c->endpoint, endpoint, n + 1);
	c->loop = loop;
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
	c->socket = zmq_socket(c->ctx, ZMQ_DEALER);
	if (!c->socket) {
		r = negative_errno();
		goto fail;
	}
	/* Not IMMEDIATE: the loop cannot wait for the connection, so the first calls queue
	 * until it is up; the call timeout bounds them. HWM above our own pending limit, so
	 * a full queue really means a stuck connection. */
	r = bus_client_socket_setup(c->socket, false);
	int hwm = BUS_ASYNC_PENDING_MAX * 2;
	if (r >= 0 && zmq_setsockopt(c->socket, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0)
		r = negative_errno();
	if (r >= 0 && zmq_connect(c->socket, endpoint) < 0)
		r = negative_errno();
	if (r >= 0)
		r = loop_zmq_new(loop, c->socket, on_readable, c, &c->source);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	client_destroy(c);
	return r;
}

BusAsyncClient *bus_async_client_free(BusAsyncClient *c)
{
	if (!c || c->free_requested)
		return NULL;
	c->free_requested = true;
	c->in_callback++;
	while (c->pending)
		(void)pending_complete(c->pending, -ECANCELED, NULL);
	c->in_callback--;
	if (c->in_callback == 0)
		client_destroy(c);
	else {
		/* Stop receiving now; the memory goes when the running callback returns. */
		c->source = loop_zmq_free(c->source);
	}
	return NULL;
}

size_t bus_async_client_get_pending(BusAsyncClient *c)
{
	return c->n_pending;
}

static void free_buffer(void *data, void *hint)
{
	(void)hint;
	free(data);
}

int bus_async_client_call(BusAsyncClient *c, BusRequest *request, uint64_t timeout_ms,
			  BusReplyFunc func, void *userdata)
{
	void *data = NULL;
	size_t size = 0;
	zmq_msg_t m;
	int r;

	if (c->free_requested)
		return -ECANCELED;
	if (c->n_pending >= BUS_ASYNC_PENDING_MAX)
		return -EBUSY;
	r = bus_endpoint_probe(c->endpoint);
	if (r == -ENOENT || r == -ECONNREFUSED)
		return -ECONNREFUSED;
	if (r < 0)
		return r;

	Pending *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->client = c;
	p->func = func;
	p->userdata = userdata;
	bus_client_format_id(p->id, c->tag, ++c->counter);

	char *old_id = request->request_id;
	uint32_t old_version = request->api_version;
	request->request_id = p->id;
	request->api_version = BUS_API_VERSION;
	r = bus_request_encode(request, &data, &size);
	request->request_id = old_id;
	request->api_version = old_version;
	if (r < 0)
		goto fail;

	if (timeout_ms > 0) {
		r = loop_timer_new(c->loop, timeout_ms, 0, on_timeout, p, &p->timer);
		if (r < 0)
			goto fail;
	}
	if (zmq_msg_init_data(&m, data, size, free_buffer, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	data = NULL;
	r = loop_zmq_send(c->source, &m, 1, ZMQ_DONTWAIT);
	if (r < 0)
		goto fail;

	p->next = c->pending;
	if (c->pending)
		c->pending->prev = p;
	c->pending = p;
	c->n_pending++;
	return 0;
fail:
	free(data);
	loop_timer_free(p->timer);
	free(p);
	return r;
}
