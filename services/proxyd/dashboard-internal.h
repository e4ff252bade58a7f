/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Between dashboard.c (the HTTP server on the Unix socket, SSE clients, the event ring)
 * and dashboard-api.c (superd's state and the /api handlers). Main thread only.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "bus.h"
#include "dashboard.h"
#include "http1.h"

/* Unsent bytes an SSE client may have queued: the ring's events go out while below half of
 * it. A client that falls out of the ring is dropped (it reconnects and catches up). */
#define DASH_SSE_QUEUE_MAX (2 * 1024 * 1024)
#define DASH_HEARTBEAT_MS 15000
/* Events kept for Last-Event-ID resumes: whichever limit is reached first. */
#define DASH_RING_EVENTS 100000
#define DASH_RING_BYTES (32 * 1024 * 1024)
#define DASH_CONNS_MAX 256

typedef struct DConn DConn;

typedef struct DashEvent {
	uint64_t n;
	char *text; /* the whole SSE record, "id: ...\nevent: ...\ndata: ...\n\n" */
	size_t len;
} DashEvent;

struct Dashboard {
	Loop *loop;
	uv_pipe_t *server;
	char *path;
	DConn *conns;
	size_t n_conns;
	LoopTimer *heartbeat;

	/* superd */
	void *zmq;
	BusAsyncClient *client;
	BusSubscriber *sub;
	LoopTimer *retry_timer, *resync_timer;
	bool snapshot_inflight, snapshot_again, superd_seen;
	json_t *projects; /* array of project objects, each with "services" */

	/* Events: one counter for every kind; ids are "<boot>-<n>". */
	char boot[17];
	uint64_t n;
	DashEvent *ring;
	size_t ring_head, ring_count, ring_bytes;

	char csrf[65];
};

/* A request as the handlers see it (strings valid during the call). */
typedef struct DReq {
	const char *method, *path, *query; /* path without query; query may be "" */
	const HttpHead *head;
	bool head_only;
} DReq;

/* ---- dashboard.c ---- */
/* Respond and finish the request (conn may be kept alive). body may be NULL. Extra header
 * lines ("Name: value\r\n...") may be NULL. */
void dconn_respond(DConn *c, int status, const char *content_type, const char *extra,
		   const char *body, size_t len);
void dconn_respond_json(DConn *c, int status, json_t *body); /* steals body */
void dconn_respond_error(DConn *c, int status, const char *code, const char *fmt, ...)
    _printf_(4, 5);
/* An async handler keeps the connection with a reference; unref after responding. A
 * connection closed meanwhile: dconn_alive() is false and responding does nothing. */
DConn *dconn_ref(DConn *c);
void dconn_unref(DConn *c);
bool dconn_alive(const DConn *c);
/* Turn the connection into an SSE stream (sends the head) and replay events after
 * `last_id` (NULL: a fresh stream). */
void dconn_start_sse(Dashboard *d, DConn *c, const char *last_id);

/* Publish one event to every SSE client and the ring; data is JSON text. */
void dash_publish(Dashboard *d, const char *event, const char *data);
/* Send one event only to this client, with the given id. */
void dash_send_to(DConn *c, const char *id, const char *event, const char *data);
void dash_event_id(Dashboard *d, uint64_t n, char buf[static 48]);

/* ---- dashboard-api.c ---- */
int dash_superd_start(Dashboard *d, const char *runtime_dir);
void dash_superd_stop(Dashboard *d);
/* Route one /api request. */
void dash_api_handle(Dashboard *d, DConn *c, const DReq *req);
/* The state as JSON text (for /api/state and the SSE snapshot). malloc'd or NULL. */
char *dash_state_dump(Dashboard *d);

/* ---- dashboard-assets.c (generated) ---- */
typedef struct DashAsset {
	const char *path; /* "/", "/assets/app.js" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
	const char *etag; /* "\"<hash>\"" */
} DashAsset;
extern const DashAsset dash_assets[];
extern const size_t dash_n_assets;
