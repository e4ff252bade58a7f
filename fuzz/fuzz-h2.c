/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for proxyd's HTTP/2 server side (services/proxyd/h2-server.c): the
 * input is what a client sends after the connection preface. It goes through the real
 * code path (h2_server_attach, ConnProtocol.data/writable/closed) against a fake Conn and
 * a fake exchange defined here, so the linker takes only h2-server.o from libproxyd.
 *
 * The fakes push the server through its other paths too: the Conn reports "full" now and
 * then, exchanges refuse request bytes and answer in different ways (error page, body in
 * pieces, tunnel, abort), and the connection is closed at the end with exchanges alive.
 * Invariants (DownstreamOps.done exactly once, no call after done) abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "exchange.h"
#include "proxyd.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

/* ---- fake Conn ---- */

struct Conn {
	size_t pending;
	size_t full_at;
	bool close_called;
	void (*deadline_cb)(void *proto);
};

int conn_write(Conn *c, const void *p, size_t n)
{
	CHECK(p || n == 0);
	c->pending += n;
	return 0;
}
bool conn_write_full(const Conn *c)
{
	return c->full_at && c->pending >= c->full_at;
}
void conn_pause_read(Conn *c)
{
}
void conn_resume_read(Conn *c)
{
}
void conn_close(Conn *c)
{
	c->close_called = true;
}
void conn_set_idle_timeout(Conn *c, uint64_t ms)
{
}
void conn_set_deadline(Conn *c, uint64_t ms, void (*cb)(void *proto))
{
	c->deadline_cb = ms ? cb : NULL;
}
Worker *conn_worker(Conn *c)
{
	return NULL;
}
const struct sockaddr *conn_peer(const Conn *c, socklen_t *len)
{
	static struct sockaddr_in sin = { .sin_family = AF_INET };
	*len = sizeof(sin);
	return (const struct sockaddr *)&sin;
}
bool conn_is_tls(const Conn *c)
{
	return true;
}
Proxyd *worker_proxyd(Worker *w)
{
	return NULL;
}
const ProxydConfig *proxyd_config(Proxyd *p)
{
	return NULL;
}

/* ---- fake exchange ---- */

struct Exchange {
	Exchange *next;
	const DownstreamOps *ops;
	void *ds;
	unsigned mode, step;
	size_t received;
	bool done, head, blocked, extended;
};

static Exchange *exchanges;
static unsigned n_started;

int exchange_start(Worker *w, const ExchangeRequest *req, const DownstreamOps *ops, void *ds,
		   Exchange **ret)
{
	CHECK(req->method && req->path && req->authority);
	CHECK(req->n_fields == 0 || req->fields);
	for (size_t i = 0; i < req->n_fields; i++)
		CHECK(strlen(req->fields[i].name) == req->fields[i].name_len &&
		      strlen(req->fields[i].value) == req->fields[i].value_len);
	CHECK(!req->extended_connect || req->upgrade);
	if (n_started++ % 7 == 6)
		return -ENOMEM; /* the exchange could not be set up */
	Exchange *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->ops = ops;
	x->ds = ds;
	x->mode = (unsigned)(req->path[0] + strlen(req->path) + req->n_fields) % 5;
	x->extended = req->extended_connect;
	x->next = exchanges;
	exchanges = x;
	if (x->mode == 4) {
		/* An error page delivered from inside exchange_start(). */
		static const HttpField f[] = { { "Content-Type", "text/plain", 12, 10 } };
		x->head = true;
		ops->head(ds, 404, f, 1, HTTP1_BODY_LENGTH, 9);
		ops->data(ds, (const uint8_t *)"not found", 9);
		ops->end(ds);
		x->done = true;
		ops->done(ds);
	}
	*ret = x;
	return 0;
}

bool exchange_send(Exchange *x, const uint8_t *p, size_t n)
{
	CHECK(!x->done);
	x->received += n;
	x->blocked = x->received % 3 == 0;
	return !x->blocked;
}
void exchange_send_end(Exchange *x)
{
	CHECK(!x->done);
}
void exchange_resume_response(Exchange *x)
{
	CHECK(!x->done);
}
void exchange_cancel(Exchange *x)
{
	CHECK(!x->done);
	x->done = true;
	x->ops->done(x->ds);
}

/* One step of each live exchange's answer. */
static void exchanges_step(void)
{
	static const uint8_t body[3000];
	for (Exchange *x = exchanges; x; x = x->next) {
		if (x->done)
			continue;
		if (x->blocked) {
			x->blocked = false;
			x->ops->resume_request(x->ds);
			if (x->done)
				continue;
		}
		const DownstreamOps *o = x->ops;
		switch (x->step++) {
		case 0: {
			static const HttpField f[] = { { "Content-Type", "text/plain", 12, 10 },
						       { "Connection", "close", 10, 5 },
						       { "Bad Name", "v", 8, 1 },
						       { "X-Ok", "1", 4, 1 } };
			int status = x->mode == 1 ? 100 : x->mode == 3 && x->extended ? 101 : 200;
			o->head(x->ds, status, f, 4,
				x->mode == 0 ? HTTP1_BODY_NONE : HTTP1_BODY_CHUNKED, 0);
			if (x->mode == 0) {
				x->done = true;
				o->done(x->ds);
			}
			break;
		}
		case 1:
			if (x->mode == 1)
				o->head(x->ds, 200, NULL, 0, HTTP1_BODY_CHUNKED, 0);
			(void)o->data(x->ds, body, sizeof(body));
			break;
		case 2:
			(void)o->data(x->ds, body, sizeof(body) / 2);
			if (x->mode == 2) {
				o->abort(x->ds);
				x->done = true;
				o->done(x->ds);
			}
			break;
		default:
			o->end(x->ds);
			x->done = true;
			o->done(x->ds);
			break;
		}
	}
}

static void exchanges_free(void)
{
	while (exchanges) {
		Exchange *x = exchanges;
		exchanges = x->next;
		CHECK(x->done);
		free(x);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	Conn c = { 0 };
	void *proto = NULL;
	const ConnProtocol *ops = NULL;

	n_started = 0;
	if (h2_server_attach(&c, (const uint8_t *)preface, sizeof(preface) - 1, &proto, &ops) < 0)
		return 0;

	/* Chunk sizes vary with the input so frames get split at every offset. */
	size_t off = 0, round = 0;
	while (off < size && !c.close_called) {
		size_t n = 1 + (data[off] * 7u + round * 13u) % 512;
		if (n > size - off)
			n = size - off;
		ops->data(proto, data + off, n);
		off += n;
		round++;
		c.full_at = round % 4 == 0 ? 1 : 0;
		exchanges_step();
		if (c.deadline_cb && round % 3 == 0 && !c.close_called)
			c.deadline_cb(proto);
		if (c.pending > 0) {
			bool was_full = conn_write_full(&c);
			c.pending = 0;
			c.full_at = 0;
			if (was_full && !c.close_called)
				ops->writable(proto);
		}
	}
	/* The header deadline expires for a block still incomplete. */
	if (c.deadline_cb && !c.close_called)
		c.deadline_cb(proto);
	for (int i = 0; i < 4 && !c.close_called; i++) {
		exchanges_step();
		c.pending = 0;
		ops->writable(proto);
	}
	ops->closed(proto);
	exchanges_free();
	return 0;
}
