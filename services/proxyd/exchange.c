/* SPDX-License-Identifier: MIT */
/*
 * Exchanges (exchange.h): the route decision for each request and the plumbing between
 * the downstream (h1-server.c/h2-server.c), proxyd's own responses (local.c) and the
 * upstream client (upstream.c).
 *
 * exchange_start() only copies the request and queues it: the decision runs from the
 * worker's check handle right after, so no DownstreamOps callback ever runs inside
 * exchange_start() (the downstream has its Exchange pointer before anything happens).
 *
 * A request for a service that is not ready waits on the worker's list: every routes
 * publication (worker_on_routes_changed) and a timer re-run the decision; the timer also
 * produces the loading page for browsers (after loading_page_ms) and the 504 at
 * start_wait_ms.
 *
 * Lifetime: an Exchange holds one reference for being alive (dropped when it finishes
 * and ops->done has been called) and every entry point holds one while it runs, so
 * ops->done may be called from deep inside a callback chain without freeing what the
 * outer frames still use.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "exchange.h"
#include "dashboard.h" /* [dashboard] */
#include "local.h"
#include "log.h"
#include "macro.h"
#include "pages.h"
#include "proxyd.h"
#include "routes.h"
#include "static.h"
#include "strutil.h"
#include "time-util.h"
#include "upstream.h"

/* How often a waiting request re-checks its route even without a publication. */
#define WAIT_RECHECK_MS 250

typedef enum ExchangeState {
	X_QUEUED,   /* waiting for the check handle to decide */
	X_WAITING,  /* for a starting service */
	X_LOCAL,    /* sending one of proxyd's responses */
	X_UPSTREAM, /* proxying */
} ExchangeState;

typedef struct ExchangeWorker ExchangeWorker;
typedef struct WaitTimer WaitTimer;

struct Exchange {
	ExchangeWorker *xw;
	Worker *worker;
	Proxyd *proxyd;
	const ProxydConfig *config;
	const DownstreamOps *ops;
	void *ds;
	unsigned n_ref;
	ExchangeState state;
	bool done; /* finished: ops->done was called */

	Exchange *queue_next;
	Exchange *wait_prev, *wait_next;
	bool waiting_linked;
	uint64_t seen_gen;
	WaitTimer *timer;

	/* The request (copied) */
	char *method, *path, *authority, *host;
	char *if_none_match, *if_modified_since, *range;
	ExchangeProtocol protocol;
	bool tls, html, is_head, upgrade;
	Http1BodyKind body;
	Buf up_head;

	/* Request body that arrived before there was an upstream */
	Buf pending;
	bool pending_full, send_ended;

	/* Routing */
	RouteTable *table;
	const Route *route;
	RouteTable *usage_table;
	const Route *usage_route;
	usec_t started, deadline, page_at;
	bool seen_starting;

	LocalResponse *local;
	UpstreamRequest *up;
	char *upstream_text;

	/* What went to the client */
	int status;
	uint64_t bytes;
	bool head_sent, tunnel;
};

struct WaitTimer {
	uv_timer_t timer;
	Exchange *x;
};

struct ExchangeWorker {
	Worker *worker;
	uv_idle_t idle;
	uv_check_t check;
	bool idle_active;
	Exchange *queue_head, *queue_tail;
	Exchange *waiting;
	uint64_t gen;
};

static _Thread_local ExchangeWorker *tl_xw;
static pthread_key_t xw_key;
static pthread_once_t xw_key_once = PTHREAD_ONCE_INIT;

static void x_dispatch(Exchange *x);

/* ---- lifetime ---- */

static void x_ref(Exchange *x)
{
	x->n_ref++;
}

static void x_unref(Exchange *x)
{
	if (--x->n_ref > 0)
		return;
	if (x->usage_table)
		route_table_unref(x->usage_table);
	if (x->table)
		route_table_unref(x->table);
	local_response_free(x->local);
	buf_done(&x->up_head);
	buf_done(&x->pending);
	free(x->method);
	free(x->path);
	free(x->authority);
	free(x->host);
	free(x->if_none_match);
	free(x->if_modified_since);
	free(x->range);
	free(x->upstream_text);
	free(x);
}

static void wait_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void x_unwait(Exchange *x)
{
	if (x->waiting_linked) {
		if (x->wait_prev)
			x->wait_prev->wait_next = x->wait_next;
		else
			x->xw->waiting = x->wait_next;
		if (x->wait_next)
			x->wait_next->wait_prev = x->wait_prev;
		x->wait_prev = x->wait_next = NULL;
		x->waiting_linked = false;
	}
	if (x->timer) {
		x->timer->x = NULL;
		uv_timer_stop(&x->timer->timer);
		uv_close((uv_handle_t *)&x->timer->timer, wait_timer_closed);
		x->timer = NULL;
	}
}

static const char *x_protocol_name(const Exchange *x)
{
	if (x->tunnel)
		return "websocket";
	switch (x->protocol) {
	case EXCHANGE_H2:
		return "h2";
	case EXCHANGE_HTTP1_0:
		return "HTTP/1.0";
	default:
		return "HTTP/1.1";
	}
}

static void x_finish(Exchange *x)
{
	if (x->done)
		return;
	x->done = true;
	x_unwait(x);
	if (x->up)
		upstream_request_cancel(TAKE_PTR(x->up));
	x->local = local_response_free(x->local);
	if (x->usage_route)
		route_usage_end(x->usage_route);

	ProxyRequestLog log = {
		.method = x->method,
		.host = x->host,
		.path = x->path,
		.protocol = x_protocol_name(x),
		.upstream = strempty(x->upstream_text),
		.status = x->head_sent ? (unsigned)x->status : 0,
		.duration_usec = now_monotonic() - x->started,
		.response_bytes = x->bytes,
	};
	proxyd_emit_request(x->proxyd, &log);

	x->ops->done(x->ds);
	x_unref(x);
}

static void x_abort(Exchange *x)
{
	if (x->done)
		return;
	x->ops->abort(x->ds);
	x_finish(x);
}

/* ---- proxyd's own responses ---- */

static void x_l_head(void *ds, int status, const HttpField *fields, size_t n_fields,
		     Http1BodyKind body, uint64_t content_length)
{
	Exchange *x = ds;
	if (x->done)
		return;
	x->head_sent = true;
	x->status = status;
	x->ops->head(x->ds, status, fields, n_fields, body, content_length);
}

static bool x_l_data(void *ds, const uint8_t *p, size_t n)
{
	Exchange *x = ds;
	if (x->done)
		return false;
	return x->ops->data(x->ds, p, n);
}

static void x_l_end(void *ds)
{
	Exchange *x = ds;
	if (!x->done)
		x->ops->end(x->ds);
}

static const DownstreamOps x_local_ops = {
	.head = x_l_head,
	.data = x_l_data,
	.end = x_l_end,
};

static void x_local_pump(Exchange *x)
{
	int r = local_response_pump(x->local, &x_local_ops, x, &x->bytes);
	if (x->done)
		return;
	if (r > 0)
		x_finish(x);
	else if (r < 0) {
		log_warning_errno(r, "%s %s%s: cannot read the file: %m", x->method, x->host,
				  x->path);
		x_abort(x);
	}
}

static void x_local_start(Exchange *x, LocalResponse *l)
{
	x_unwait(x);
	x->local = local_response_free(x->local);
	x->local = l;
	x->state = X_LOCAL;
	x->pending_full = false;
	buf_done(&x->pending);
	x_local_pump(x);
}

static void x_send_page(Exchange *x, int r, Page *page)
{
	LocalResponse *l = NULL;
	if (r >= 0)
		r = local_response_new_page(page, x->is_head, &l);
	page_done(page);
	if (r < 0) {
		/* Not even a page: a bare status line, or shed the request. */
		r = local_response_new_text(r == -ENOMEM ? 503 : 500, "text/plain; charset=utf-8",
					    "proxyd could not build its response\n", x->is_head,
					    &l);
		if (r < 0) {
			x_abort(x);
			return;
		}
	}
	x_local_start(x, l);
}

static const char *route_name(const Route *route)
{
	return route && route->service ? route->service : route ? route->host : "the service";
}

/* ---- the upstream side ---- */

static void x_u_head(void *userdata, int status, const HttpField *fields, size_t n_fields,
		     Http1BodyKind body, uint64_t content_length)
{
	Exchange *x = userdata;
	if (x->done)
		return;
	x->head_sent = true;
	x->status = status;
	x->tunnel = status == 101;
	x->ops->head(x->ds, status, fields, n_fields, body, content_length);
}

static bool x_u_data(void *userdata, const uint8_t *p, size_t n)
{
	Exchange *x = userdata;
	if (x->done)
		return false;
	x->bytes += n;
	return x->ops->data(x->ds, p, n);
}

static void x_u_end(void *userdata)
{
	Exchange *x = userdata;
	if (!x->done)
		x->ops->end(x->ds);
}

static void x_u_resume_request(void *userdata)
{
	Exchange *x = userdata;
	if (!x->done)
		x->ops->resume_request(x->ds);
}

static void x_upstream_error(Exchange *x, int error, const char *detail)
{
	log_debug("%s %s%s: %s", x->method, x->host, x->path, detail);
	Page page = { 0 };
	int r;
	if (error == -ETIMEDOUT || error == -ETIME)
		r = page_gateway_timeout(x->route, detail, x->html, &page);
	else
		r = page_bad_gateway(x->route, detail, x->html, &page);
	x_send_page(x, r, &page);
}

static void x_u_finished(void *userdata, int error, const char *detail)
{
	Exchange *x = userdata;
	x->up = NULL;
	if (x->done)
		return;
	x_ref(x);
	if (error == 0)
		x_finish(x);
	else if (x->head_sent) {
		log_debug("%s %s%s: %s", x->method, x->host, x->path, strempty(detail));
		x_abort(x);
	} else
		x_upstream_error(x, error, strempty(detail));
	x_unref(x);
}

static const UpstreamOps x_upstream_ops = {
	.head = x_u_head,
	.data = x_u_data,
	.end = x_u_end,
	.resume_request = x_u_resume_request,
	.finished = x_u_finished,
};

static void x_upstream_begin(Exchange *x)
{
	const Route *route = x->route;
	x_unwait(x);
	x->state = X_UPSTREAM;
	free(x->upstream_text);
	/* [dashboard] ROUTE_DASHBOARD is proxied to the dashboard backend's socket. */
	UpstreamTarget target = {
		.addr = (const struct sockaddr *)&route->upstream,
		.addr_len = route->upstream_len,
		.text = route->upstream_text,
	};
	if (route->kind == ROUTE_DASHBOARD)
		(void)dashboard_upstream(&target.addr, &target.addr_len, &target.text);
	x->upstream_text = target.text ? strdup(target.text) : NULL;

	UpstreamRequestParams params = {
		.worker = x->worker,
		.target = target,
		.method = x->method,
		.head = &x->up_head,
		.body = x->body,
		.tunnel_ok = x->upgrade,
		.connect_timeout_usec = x->config->connect_timeout_ms * USEC_PER_MSEC,
		.read_timeout_usec = x->config->upstream_timeout_ms * USEC_PER_MSEC,
	};
	/* An extended CONNECT goes upstream as a GET. */
	if (x->upgrade && streq(x->method, "CONNECT"))
		params.method = "GET";

	int r = upstream_request_start(&params, &x_upstream_ops, x, &x->up);
	if (r < 0) {
		char detail[256];
		if (r == -ECONNREFUSED)
			(void)strfmt(detail, sizeof(detail), "connection refused by %s",
				     strempty(target.text));
		else
			(void)strfmt(detail, sizeof(detail), "cannot connect to %s: %s",
				     strempty(target.text), strerror(-r));
		x_upstream_error(x, r, detail);
		return;
	}

	bool more = true;
	if (x->pending.len > 0) {
		more =
		    upstream_request_send(x->up, (const uint8_t *)x->pending.data, x->pending.len);
		buf_done(&x->pending);
	}
	if (x->done || !x->up)
		return;
	if (x->send_ended)
		upstream_request_send_end(x->up);
	if (x->done || !x->up)
		return;
	if (x->pending_full && more) {
		x->pending_full = false;
		x->ops->resume_request(x->ds);
	}
}

/* ---- waiting for a service ---- */

static void x_timer_cb(uv_timer_t *t);

static void x_arm_timer(Exchange *x)
{
	ExchangeWorker *xw = x->xw;
	if (!x->timer) {
		WaitTimer *wt = calloc(1, sizeof(*wt));
		if (!wt)
			return; /* the routes publications still wake us */
		if (uv_timer_init(worker_uv(xw->worker), &wt->timer) < 0) {
			free(wt);
			return;
		}
		wt->timer.data = wt;
		wt->x = x;
		x->timer = wt;
	}
	usec_t now = now_monotonic();
	usec_t next = x->deadline;
	if (x->html && x->page_at < next)
		next = x->page_at;
	uint64_t ms = next > now ? (next - now + 999) / 1000 : 0;
	if (ms > WAIT_RECHECK_MS)
		ms = WAIT_RECHECK_MS;
	(void)uv_timer_start(&x->timer->timer, x_timer_cb, ms, 0);
}

static void x_wait(Exchange *x)
{
	ExchangeWorker *xw = x->xw;
	if (!x->waiting_linked) {
		x->state = X_WAITING;
		x->waiting_linked = true;
		x->wait_prev = NULL;
		x->wait_next = xw->waiting;
		if (xw->waiting)
			xw->waiting->wait_prev = x;
		xw->waiting = x;
		x->deadline = x->started + x->config->start_wait_ms * USEC_PER_MSEC;
		x->page_at = x->started + x->config->loading_page_ms * USEC_PER_MSEC;
		if (x->html)
			routes_request_logs(proxyd_routes(x->proxyd), x->route);
	}
	x_arm_timer(x);
}

static void x_timer_cb(uv_timer_t *t)
{
	WaitTimer *wt = t->data;
	Exchange *x = wt->x;
	if (!x || x->done)
		return;
	x_ref(x);
	usec_t now = now_monotonic();
	if (now >= x->deadline) {
		char detail[160];
		(void)strfmt(detail, sizeof(detail),
			     "%s did not become ready within %" PRIu64 " ms", route_name(x->route),
			     x->config->start_wait_ms);
		Page page = { 0 };
		int r = page_gateway_timeout(x->route, detail, x->html, &page);
		x_send_page(x, r, &page);
	} else if (x->html && now >= x->page_at) {
		Page page = { 0 };
		int r = page_starting(x->route, x->html, &page);
		x_send_page(x, r, &page);
	} else
		x_dispatch(x); /* re-check, in case a publication went unnoticed */
	x_unref(x);
}

static void xw_routes_changed(void *userdata)
{
	ExchangeWorker *xw = userdata;
	uint64_t gen = ++xw->gen;
	for (;;) {
		Exchange *x = xw->waiting;
		while (x && x->seen_gen == gen)
			x = x->wait_next;
		if (!x)
			return;
		x->seen_gen = gen;
		x_ref(x);
		x_dispatch(x);
		x_unref(x);
	}
}

/* ---- the decision ---- */

static void x_service(Exchange *x)
{
	const Route *route = x->route;
	char detail[256];
	Page page = { 0 };
	int r;

	switch (route->readiness) {
	case ROUTE_READY:
		x_upstream_begin(x);
		return;
	case ROUTE_STARTING:
		x->seen_starting = true;
		x_wait(x);
		return;
	case ROUTE_STOPPED:
		if (!route->autostart) {
			(void)strfmt(detail, sizeof(detail),
				     "%s is stopped, and autostart = false: start it with "
				     "`localctl start %s`",
				     route_name(route), route_name(route));
			r = page_bad_gateway(route, detail, x->html, &page);
			x_send_page(x, r, &page);
			return;
		}
		if (x->seen_starting) {
			(void)strfmt(detail, sizeof(detail), "%s stopped while starting",
				     route_name(route));
			r = page_bad_gateway(route, detail, x->html, &page);
			x_send_page(x, r, &page);
			return;
		}
		routes_request_start(proxyd_routes(x->proxyd), route);
		x_wait(x);
		return;
	case ROUTE_DOWN:
	default:
		r = page_bad_gateway(route, NULL, x->html, &page);
		x_send_page(x, r, &page);
		return;
	}
}

static bool path_is_api(const char *path)
{
	const char *rest = startswith(path, "/api");
	return rest && (*rest == '\0' || *rest == '/' || *rest == '?');
}

static void x_site(Exchange *x)
{
	const Route *route = x->route;
	_cleanup_free_ char *path = strndup_safe(x->path, strcspn(x->path, "?#"));
	StaticRequest sreq = {
		.method = x->method,
		.path = path ? path : "/",
		.if_none_match = x->if_none_match,
		.if_modified_since = x->if_modified_since,
		.range = x->range,
	};
	StaticResponse sr = { .fd = -1 };
	int r = path ? static_resolve(route->site_path, &sreq, &sr) : -ENOMEM;
	if (r < 0) {
		Page page = { 0 };
		r = page_error(500, "cannot serve the site", x->html, &page);
		x_send_page(x, r, &page);
		return;
	}
	LocalResponse *l = NULL;
	r = local_response_new_static(&sr, x->is_head, &l);
	static_response_done(&sr);
	if (r < 0) {
		Page page = { 0 };
		r = page_error(500, "cannot serve the site", x->html, &page);
		x_send_page(x, r, &page);
		return;
	}
	x_local_start(x, l);
}

static void x_dispatch(Exchange *x)
{
	if (x->done)
		return;
	RouteTable *t = routes_acquire(proxyd_routes(x->proxyd));
	const Route *route = route_table_lookup(t, strempty(x->authority));
	/* Keep the route the exchange looks at alive with its table. */
	if (x->table)
		route_table_unref(x->table);
	x->table = t;
	x->route = route;

	Page page = { 0 };
	int r;
	if (!route) {
		if (!route_table_superd_seen(t))
			r = page_error(503,
				       "locald-superd is not running, so no service is routed yet",
				       x->html, &page);
		else
			r = page_not_found(x->host, route_table_hosts(t), x->tls, x->html, &page);
		x_send_page(x, r, &page);
		return;
	}

	if ((route->kind == ROUTE_SERVICE || route->kind == ROUTE_SITE) && !x->usage_route &&
	    route->usage) {
		/* The usage is counted on this route until the end: its table's reference moves
		 * to usage_table, and x->table takes a fresh one (the current table). */
		route_usage_begin(route);
		x->usage_route = route;
		x->usage_table = TAKE_PTR(x->table);
		x->table = t = routes_acquire(proxyd_routes(x->proxyd));
		x->route = route = route_table_lookup(t, strempty(x->authority));
		if (!route) {
			r = page_not_found(x->host, route_table_hosts(t), x->tls, x->html, &page);
			x_send_page(x, r, &page);
			return;
		}
	}

	switch (route->kind) {
	case ROUTE_DASHBOARD: {
		/* [dashboard] The backend on the main thread answers, like a ready service. */
		const struct sockaddr *da;
		socklen_t dl;
		const char *dt;
		if (dashboard_upstream(&da, &dl, &dt)) {
			x_upstream_begin(x);
			return;
		}
	}
		if (path_is_api(x->path)) {
			LocalResponse *l = NULL;
			r = local_response_new_text(
			    404, "application/json",
			    "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"the dashboard API "
			    "is not available yet\"}}\n",
			    x->is_head, &l);
			if (r < 0) {
				x_abort(x);
				return;
			}
			x_local_start(x, l);
			return;
		}
		r = page_dashboard(route_table_hosts(t), x->tls, &page);
		x_send_page(x, r, &page);
		return;
	case ROUTE_SITE:
		x_site(x);
		return;
	case ROUTE_SERVICE:
		x_service(x);
		return;
	}
	r = page_error(500, "unknown route kind", x->html, &page);
	x_send_page(x, r, &page);
}

/* ---- the worker's part ---- */

/*
 * The queue runs from a check handle: right after the poll phase that queued it, so no
 * extra loop turn. The idle handle only keeps that poll phase from blocking when
 * exchange_start() was called from outside it (a timer or check callback), where the
 * check phase of this turn may already be over.
 */
static void xw_run_queue(ExchangeWorker *xw)
{
	while (xw->queue_head) {
		Exchange *x = xw->queue_head;
		xw->queue_head = x->queue_next;
		if (!xw->queue_head)
			xw->queue_tail = NULL;
		x->queue_next = NULL;
		x_dispatch(x);
		x_unref(x); /* the queue's reference */
	}
	uv_check_stop(&xw->check);
	uv_idle_stop(&xw->idle);
	xw->idle_active = false;
}

static void xw_check_cb(uv_check_t *h)
{
	xw_run_queue(h->data);
}

static void xw_idle_cb(uv_idle_t *h)
{
	xw_run_queue(h->data);
}

/* The worker thread is exiting; its loop has closed our idle handle already. */
static void xw_thread_exit(void *userdata)
{
	free(userdata);
	tl_xw = NULL;
}

static void xw_key_create(void)
{
	(void)pthread_key_create(&xw_key, xw_thread_exit);
}

static ExchangeWorker *xw_get(Worker *w)
{
	if (tl_xw)
		return tl_xw;
	ExchangeWorker *xw = calloc(1, sizeof(*xw));
	if (!xw)
		return NULL;
	if (uv_idle_init(worker_uv(w), &xw->idle) < 0) {
		free(xw);
		return NULL;
	}
	(void)uv_check_init(worker_uv(w), &xw->check); /* cannot fail */
	xw->idle.data = xw->check.data = xw;
	xw->worker = w;
	/* Without the hook, waiting requests still re-check on their timers. */
	if (worker_on_routes_changed(w, xw_routes_changed, xw) < 0)
		log_warning("proxyd: cannot follow route changes on this worker; waiting "
			    "requests re-check every %d ms",
			    WAIT_RECHECK_MS);
	(void)pthread_once(&xw_key_once, xw_key_create);
	(void)pthread_setspecific(xw_key, xw);
	tl_xw = xw;
	return xw;
}

/* ---- the public calls ---- */

static char *host_for_events(const char *authority)
{
	if (isempty(authority))
		return strdup("");
	const char *s = authority;
	size_t n;
	if (*s == '[') {
		const char *e = strchr(s, ']');
		n = e ? (size_t)(e - s) + 1 : strlen(s);
	} else
		n = strcspn(s, ":");
	char *h = strndup_safe(s, n);
	if (!h)
		return NULL;
	for (char *p = h; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	size_t len = strlen(h);
	if (len > 1 && h[len - 1] == '.')
		h[len - 1] = '\0';
	return h;
}

static const char *request_field(const ExchangeRequest *req, const char *name)
{
	for (size_t i = 0; i < req->n_fields; i++)
		if (strcasecmp(req->fields[i].name, name) == 0)
			return req->fields[i].value;
	return NULL;
}

static int dup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int exchange_start(Worker *w, const ExchangeRequest *req, const DownstreamOps *ops, void *ds,
		   Exchange **ret)
{
	if (!req || !ops || !req->method || !req->path)
		return -EINVAL;
	ExchangeWorker *xw = xw_get(w);
	if (!xw)
		return -ENOMEM;
	Exchange *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->n_ref = 1;
	x->xw = xw;
	x->worker = w;
	x->proxyd = worker_proxyd(w);
	x->config = proxyd_config(x->proxyd);
	x->ops = ops;
	x->ds = ds;
	x->started = now_monotonic();
	x->protocol = req->protocol;
	x->tls = req->tls;
	x->body = req->body;
	x->upgrade = req->upgrade && *req->upgrade;
	x->is_head = streq(req->method, "HEAD");
	x->html = page_wants_html(request_field(req, "Accept"));
	x->up_head = BUF_INIT(0);
	x->pending = BUF_INIT(0);

	int r = 0;
	x->method = strdup(req->method);
	x->path = strdup(req->path);
	x->host = host_for_events(req->authority);
	if (!x->method || !x->path || !x->host)
		r = -ENOMEM;
	if (r >= 0)
		r = dup_opt(req->authority, &x->authority);
	if (r >= 0)
		r = dup_opt(request_field(req, "If-None-Match"), &x->if_none_match);
	if (r >= 0)
		r = dup_opt(request_field(req, "If-Modified-Since"), &x->if_modified_since);
	if (r >= 0)
		r = dup_opt(request_field(req, "Range"), &x->range);
	if (r >= 0)
		r = upstream_build_request_head(req, &x->up_head);
	if (r < 0) {
		x_unref(x);
		return r;
	}

	/* Decide on the next loop iteration, outside the downstream's call stack. */
	x_ref(x);
	if (xw->queue_tail)
		xw->queue_tail->queue_next = x;
	else
		xw->queue_head = x;
	xw->queue_tail = x;
	if (!xw->idle_active) {
		(void)uv_check_start(&xw->check, xw_check_cb);
		(void)uv_idle_start(&xw->idle, xw_idle_cb);
		xw->idle_active = true;
	}
	*ret = x;
	return 0;
}

bool exchange_send(Exchange *x, const uint8_t *p, size_t n)
{
	if (x->done)
		return true;
	bool more = true;
	x_ref(x);
	if (x->up)
		more = upstream_request_send(x->up, p, n);
	else if (x->state == X_QUEUED || x->state == X_WAITING) {
		if (buf_append(&x->pending, p, n) < 0) {
			Page page = { 0 };
			int r = page_error(503, "proxyd is out of memory", x->html, &page);
			x_send_page(x, r, &page);
		} else if (x->pending.len >= UPSTREAM_SEND_HIGH) {
			x->pending_full = true;
			more = false;
		}
	}
	/* else: proxyd answers this one itself; the body is not needed. */
	x_unref(x);
	return more;
}

void exchange_send_end(Exchange *x)
{
	if (x->done || x->send_ended)
		return;
	x_ref(x);
	x->send_ended = true;
	if (x->up)
		upstream_request_send_end(x->up);
	x_unref(x);
}

void exchange_resume_response(Exchange *x)
{
	if (x->done)
		return;
	x_ref(x);
	if (x->up)
		upstream_request_resume_response(x->up);
	else if (x->local)
		x_local_pump(x);
	x_unref(x);
}

void exchange_cancel(Exchange *x)
{
	if (!x || x->done)
		return;
	x_ref(x);
	x_finish(x);
	x_unref(x);
}
