/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The upstream side of a proxied exchange: one HTTP/1.1 request to a service and its
 * response, over a connection from the worker's keep-alive pool.
 *
 * The pool is per worker thread (created on first use), keyed by the upstream's socket
 * address: at most UPSTREAM_MAX_IDLE idle connections per address, each closed after
 * UPSTREAM_IDLE_USEC without use or as soon as the service closes it (an idle connection
 * that turns readable is dropped). Connections are non-blocking sockets watched with
 * uv_poll_t; there is no copy of the body beyond one bounded buffer per direction.
 *
 * A request that fails before any response byte arrived, on a connection that had
 * served an earlier request, is retried once on a fresh connection when its method is
 * idempotent and none of its body was written yet (the race with a service closing an
 * idle connection).
 *
 * Everything runs on the worker's loop thread. Callbacks may be called from inside
 * upstream_request_*() calls except upstream_request_start().
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "exchange.h"
#include "http1.h"

#define UPSTREAM_MAX_IDLE 32
#define UPSTREAM_IDLE_USEC (30 * 1000000ULL)
/* The buffer toward the upstream: upstream_request_send() returns false above this. */
#define UPSTREAM_SEND_HIGH (256 * 1024)
#define UPSTREAM_SEND_LOW (64 * 1024)

typedef struct UpstreamRequest UpstreamRequest;

typedef struct UpstreamOps {
	/* The final response head (1xx other than 101 are skipped), hop-by-hop fields
	 * removed, framing as DownstreamOps.head documents it. A 101 starts a tunnel. */
	void (*head)(void *userdata, int status, const HttpField *fields, size_t n_fields,
		     Http1BodyKind body, uint64_t content_length);
	/* Body or tunnel bytes; false = stop until upstream_request_resume_response(). */
	bool (*data)(void *userdata, const uint8_t *p, size_t n);
	/* The response (or the tunnel's upstream→client direction) ended cleanly. */
	void (*end)(void *userdata);
	/* upstream_request_send() may be called again after it returned false. */
	void (*resume_request)(void *userdata);
	/*
	 * Terminal, exactly once: the request is over and freed after this returns. error 0
	 * = clean (after end; for a tunnel once both directions ended). Otherwise -errno and
	 * a one-line detail: -ECONNREFUSED (connection refused), -ETIMEDOUT (connect timed
	 * out), -ETIME (no response bytes within the upstream timeout), -ECONNRESET (the
	 * service closed or reset the connection), -EPROTO (a malformed response).
	 */
	void (*finished)(void *userdata, int error, const char *detail);
} UpstreamOps;

typedef struct UpstreamTarget {
	const struct sockaddr *addr;
	socklen_t addr_len;
	const char *text; /* "127.0.0.1:41234", for details */
} UpstreamTarget;

/*
 * Build the request head sent upstream from a downstream request (RFC 9110 §7.6 / RFC
 * 7239): method, origin-form target, HTTP/1.1, Host = the client's authority, the
 * client's fields without hop-by-hop ones (nor Content-Length, Expect,
 * X-Forwarded-Proto/-Host: they are set anew), X-Forwarded-For appended to, Forwarded
 * appended to, X-Forwarded-Proto/-Host, body framing (Content-Length, or
 * Transfer-Encoding: chunked for an unknown length), the upgrade fields (an RFC 8441
 * extended CONNECT becomes a GET with Connection: upgrade, Upgrade and a fresh
 * Sec-WebSocket-Key). Appends to *out. 0, -ENOMEM, or -EINVAL for a request without
 * method or path.
 */
int upstream_build_request_head(const ExchangeRequest *req, Buf *out);

/*
 * Send a request upstream. `head` is what upstream_build_request_head() built (taken,
 * *head is reset); `method` the method sent ("GET" for an extended CONNECT); `body` the
 * request body's framing (HTTP1_BODY_CHUNKED: upstream_request_send() frames the bytes
 * as chunks); `tunnel_ok` whether a 101 is acceptable (the request asked to upgrade).
 * Connects or reuses a pooled connection. Errors that are known at once (connection
 * refused on loopback) are returned here and no callback is called: -ECONNREFUSED etc.
 */
typedef struct UpstreamRequestParams {
	Worker *worker;
	UpstreamTarget target;
	const char *method;
	Buf *head;
	Http1BodyKind body;
	bool tunnel_ok;
	uint64_t connect_timeout_usec, read_timeout_usec; /* 0 = none */
} UpstreamRequestParams;

int upstream_request_start(const UpstreamRequestParams *params, const UpstreamOps *ops,
			   void *userdata, UpstreamRequest **ret);

/* Request body (or tunnel) bytes: always taken; false when the buffer toward the
 * upstream is above UPSTREAM_SEND_HIGH (wait for ops->resume_request). */
bool upstream_request_send(UpstreamRequest *u, const uint8_t *p, size_t n);
/* The request body (tunnel: the client's direction) ended. */
void upstream_request_send_end(UpstreamRequest *u);
/* The downstream takes response bytes again. */
void upstream_request_resume_response(UpstreamRequest *u);
/* Drop the request now (the connection is closed, not pooled). No callback. */
void upstream_request_cancel(UpstreamRequest *u);

/* Counters for this thread's pool (tests). */
typedef struct UpstreamStats {
	unsigned long connects, reuses, retries, idle_closed, idle;
} UpstreamStats;
void upstream_get_stats(UpstreamStats *ret);
