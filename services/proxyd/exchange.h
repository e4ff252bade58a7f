/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An exchange: one request from a client and its response, whatever the downstream
 * protocol. The downstream side (h1-server.c for HTTP/1.1, h2-server.c for HTTP/2, one
 * per client connection/stream) turns what it parsed into an ExchangeRequest and gives
 * it here; the exchange does everything else on the worker's loop:
 *
 *   route lookup → dashboard placeholder / static site / 404 page / on-demand start /
 *   wait for a starting service (loading page for browsers after 500 ms) / 502 page /
 *   upstream connection from the worker's keep-alive pool → request head rewritten
 *   (hop-by-hop fields removed, Host preserved, X-Forwarded-For/-Proto/-Host and
 *   Forwarded set, a Sec-WebSocket-Key made up for an RFC 8441 extended CONNECT) →
 *   request body streamed → response head and body streamed back → proxy.request event.
 *
 * Bytes flow both ways without being buffered whole: each direction has a bounded
 * buffer, and a full buffer pauses the side that fills it (returning false from
 * exchange_send() / DownstreamOps.data), resumed through the `resume` callbacks.
 *
 * Every function is called on the owning worker's loop thread. Callbacks may be called
 * from inside exchange_*() calls; the downstream must tolerate that (no re-entrancy on
 * the same stream other than what is documented below).
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http1.h"

typedef struct Exchange Exchange;
typedef struct Worker Worker;

typedef enum ExchangeProtocol {
	EXCHANGE_HTTP1_0,
	EXCHANGE_HTTP1_1,
	EXCHANGE_H2,
} ExchangeProtocol;

typedef struct ExchangeRequest {
	ExchangeProtocol protocol;
	bool tls; /* the client came over HTTPS */
	const struct sockaddr *client; /* peer address, for X-Forwarded-For / Forwarded */
	socklen_t client_len;
	const char *method;
	const char *path;      /* origin-form target: "/x?y" (h2 :path, h1 target) */
	const char *authority; /* Host / :authority, as received (may carry a port) */
	/* Other fields as received, pseudo-headers excluded; h2 cookie crumbs already joined
	 * with "; ". Hop-by-hop fields may be present: the exchange drops them. */
	const HttpField *fields;
	size_t n_fields;
	/* The request body: none, a known length, or unknown (h1 chunked / h2 without
	 * content-length): the exchange frames it for the upstream. */
	Http1BodyKind body;
	uint64_t content_length;
	/* "websocket" etc. when the client asks to switch protocols: h1 Upgrade, or h2
	 * extended CONNECT's :protocol (then extended_connect is true). NULL otherwise. */
	const char *upgrade;
	bool extended_connect;
} ExchangeRequest;

/* How the exchange talks back to the downstream side. `ds` is the downstream's pointer. */
typedef struct DownstreamOps {
	/*
	 * The response head: status and fields to send (hop-by-hop fields already removed,
	 * Content-Length present when the length is known). `body` says how the body will
	 * come (HTTP1_BODY_NONE: response_end follows at once). For an accepted upgrade the
	 * status is 101 (h1 downstream: send it with Connection: upgrade + Upgrade; h2 with
	 * extended CONNECT: send :status 200), and from then on data flows both ways as a
	 * tunnel until one side ends.
	 */
	/*
	 * Framing, so the downstream never has to guess: `fields` never carry
	 * Transfer-Encoding; with HTTP1_BODY_LENGTH they carry exactly one Content-Length
	 * (also "Content-Length: 0" for an empty body of a status that has a body);
	 * HTTP1_BODY_NONE is used only for 1xx/204/304 and answers to HEAD without a known
	 * length. For a HEAD request head() gives what a GET would get (Content-Length and
	 * HTTP1_BODY_LENGTH when known) and end() follows at once without data: a downstream
	 * sends no body bytes for HEAD whatever `body` says.
	 */
	void (*head)(void *ds, int status, const HttpField *fields, size_t n_fields,
		     Http1BodyKind body, uint64_t content_length);
	/* Body bytes (or tunnel bytes). Return false when the downstream's buffer is now
	 * full: the exchange stops reading its source until exchange_resume_response(). */
	bool (*data)(void *ds, const uint8_t *p, size_t n);
	/* The body (or the tunnel's upstream direction) ended cleanly. */
	void (*end)(void *ds);
	/*
	 * The exchange failed after the head was sent (the upstream died mid-body): the
	 * downstream must abort (h1: close the connection; h2: RST_STREAM). Failures before
	 * the head are delivered as a normal error page via head/data/end.
	 */
	void (*abort)(void *ds);
	/* The upstream can take request body again (after exchange_send() returned false). */
	void (*resume_request)(void *ds);
	/* The exchange is finished and freed (after end or abort, or after
	 * exchange_cancel()): forget the pointer. Called exactly once. */
	void (*done)(void *ds);
} DownstreamOps;

/*
 * Start an exchange. The request's strings need only live during the call (the exchange
 * copies what it keeps). The exchange calls ops->done exactly once, at the end.
 */
int exchange_start(Worker *w, const ExchangeRequest *req, const DownstreamOps *ops, void *ds,
		   Exchange **ret);

/* Request body bytes (or tunnel bytes from the client). Returns false when the
 * exchange's buffer toward the upstream is full: stop reading the client until
 * DownstreamOps.resume_request. The bytes given are always taken. */
bool exchange_send(Exchange *x, const uint8_t *p, size_t n);
/* The request body (or the client's tunnel direction) ended. */
void exchange_send_end(Exchange *x);
/* The downstream can take response bytes again. */
void exchange_resume_response(Exchange *x);
/* The client went away or reset the stream: drop everything; ops->done is still
 * called (possibly from inside this call). */
void exchange_cancel(Exchange *x);
