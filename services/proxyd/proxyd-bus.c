/* SPDX-License-Identifier: MIT */
/*
 * The Proxyd context and its bus side: ListRoutes, SetRoutes, ListListeners, and the
 * proxy.request.<host> events the workers queue (one lock, one uv_async wakeup of the
 * main loop; published only while someone subscribes, so a busy proxy with no dashboard
 * open pays a queue push per request).
 */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h" /* [dashboard] */
#include "log.h"
#include "proxyd-internal.h"
#include "strutil.h"
#include "time-util.h"

#define EVENTS_QUEUE_MAX 8192
#define EVENTS_FLUSH_MS 10
#define CLIENT_BUCKETS 1024
#define TOPIC_HOST_MAX 200

struct ProxyEventItem {
	ProxyEventItem *next;
	ProxyRequestLog log;
	char strings[]; /* the log's strings, packed */
};

/* ---- context ---- */

int proxyd_new(const ProxydConfig *config, Proxyd **ret)
{
	Proxyd *p = calloc(1, sizeof(Proxyd));
	if (!p)
		return -ENOMEM;
	p->config = *config;
	p->n_client_buckets = CLIENT_BUCKETS;
	p->clients = calloc(CLIENT_BUCKETS, sizeof(ClientCount *));
	if (!p->clients) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->events_lock, NULL);
	pthread_mutex_init(&p->clients_lock, NULL);
	p->conns_max = proxyd_max_connections();
	*ret = p;
	return 0;
}

Proxyd *proxyd_free(Proxyd *p)
{
	if (!p)
		return NULL;
	while (p->events_head) {
		ProxyEventItem *e = p->events_head;
		p->events_head = e->next;
		free(e);
	}
	proxyd_clients_clear(p);
	free(p->clients);
	pthread_mutex_destroy(&p->events_lock);
	pthread_mutex_destroy(&p->clients_lock);
	free(p);
	return NULL;
}

Ca *proxyd_ca(Proxyd *p)
{
	return p->ca;
}

TlsServer *proxyd_tls(Proxyd *p)
{
	return p->tls;
}

Routes *proxyd_routes(Proxyd *p)
{
	return p->routes;
}

const ProxydConfig *proxyd_config(Proxyd *p)
{
	return &p->config;
}

/* ---- events ---- */

void proxyd_emit_request(Proxyd *p, const ProxyRequestLog *log)
{
	const char *s[] = { log->method, log->host, log->path, log->protocol, log->upstream };
	size_t len[ELEMENTSOF(s)], total = 0;
	for (size_t i = 0; i < ELEMENTSOF(s); i++) {
		len[i] = strlen(strempty(s[i]));
		total += len[i] + 1;
	}
	ProxyEventItem *e = malloc(sizeof(ProxyEventItem) + total);
	if (!e)
		return; /* an event less; the request itself went fine */
	e->next = NULL;
	e->log = *log;
	char *q = e->strings;
	const char **dst[] = { &e->log.method, &e->log.host, &e->log.path, &e->log.protocol,
			       &e->log.upstream };
	for (size_t i = 0; i < ELEMENTSOF(s); i++) {
		memcpy(q, strempty(s[i]), len[i] + 1);
		*dst[i] = q;
		q += len[i] + 1;
	}

	bool wake = false;
	pthread_mutex_lock(&p->events_lock);
	if (p->n_events >= EVENTS_QUEUE_MAX) {
		p->events_dropped++;
		pthread_mutex_unlock(&p->events_lock);
		free(e);
		return;
	}
	if (p->events_tail)
		p->events_tail->next = e;
	else
		p->events_head = e;
	p->events_tail = e;
	p->n_events++;
	/* One wakeup per flush period, not per request: the main loop collects for
	 * EVENTS_FLUSH_MS after the first event, then publishes the batch. */
	wake = !p->events_notified && p->events_async_ready;
	p->events_notified = true;
	pthread_mutex_unlock(&p->events_lock);
	if (wake)
		uv_async_send(&p->events_async);
}

/* "Web.Shop.localhost:8443" → "web.shop.localhost"; safe as a topic component. */
static void topic_host(const char *host, char *out, size_t size)
{
	size_t n = 0;
	const char *h = strempty(host);
	if (*h == '[') { /* IPv6 literal: keep it, dots are fine, colons too */
		for (h++; *h && *h != ']' && n + 1 < size; h++)
			out[n++] = *h == '.' ? '_' : (char)tolower((unsigned char)*h);
	} else
		for (; *h && *h != ':' && n + 1 < size; h++) {
			unsigned char c = (unsigned char)*h;
			if (c == '.' && (n == 0 || out[n - 1] == '.'))
				continue;
			out[n++] = c <= 0x20 || c >= 0x7f ? '_' : (char)tolower(c);
		}
	while (n > 0 && out[n - 1] == '.')
		n--;
	if (n == 0)
		out[n++] = '_';
	out[n] = 0;
}

void proxyd_flush_events(Proxyd *p)
{
	pthread_mutex_lock(&p->events_lock);
	ProxyEventItem *list = p->events_head;
	p->events_head = p->events_tail = NULL;
	p->n_events = 0;
	p->events_notified = false;
	pthread_mutex_unlock(&p->events_lock);

	while (list) {
		ProxyEventItem *e = list;
		list = e->next;
		char host[TOPIC_HOST_MAX + 1], topic[TOPIC_HOST_MAX + 32];
		dashboard_proxy_request(p->dashboard, &e->log); /* [dashboard] */
		topic_host(e->log.host, host, sizeof host);
		(void)strfmt(topic, sizeof topic, "proxy.request.%s", host);
		if (p->bus && bus_server_has_subscriber(p->bus, topic)) {
			Locald__V1__ProxyRequest pr = LOCALD__V1__PROXY_REQUEST__INIT;
			BusEvent ev = LOCALD__V1__EVENT__INIT;
			pr.method = (char *)e->log.method;
			pr.host = (char *)e->log.host;
			pr.path = (char *)e->log.path;
			pr.status = e->log.status;
			pr.duration_usec = e->log.duration_usec;
			pr.protocol = (char *)e->log.protocol;
			pr.upstream = (char *)e->log.upstream;
			pr.response_bytes = e->log.response_bytes;
			ev.payload_case = LOCALD__V1__EVENT__PAYLOAD_PROXY_REQUEST;
			ev.proxy_request = &pr;
			int r = bus_server_publish(p->bus, topic, &ev, NULL);
			if (r < 0)
				log_debug("publishing %s: %s", topic, strerror(-r));
		}
		free(e);
	}
}

static void on_events_timer(LoopTimer *t, void *userdata)
{
	proxyd_flush_events(userdata);
}

static void on_events(uv_async_t *a)
{
	Proxyd *p = a->data;
	if (!loop_timer_is_armed(p->events_timer))
		(void)loop_timer_set(p->events_timer, EVENTS_FLUSH_MS, 0);
}

/* ---- bus handlers ---- */

static int on_list_routes(BusCall *call, const BusRequest *req, void *userdata)
{
	Proxyd *p = userdata;
	RouteTable *t = routes_acquire(p->routes);
	char *const *hosts = route_table_hosts(t);
	size_t n = strv_length(hosts);
	Locald__V1__Route *routes = calloc(n ? n : 1, sizeof(Locald__V1__Route));
	Locald__V1__Route **ptrs = calloc(n ? n : 1, sizeof(void *));
	size_t m = 0;
	if (!routes || !ptrs) {
		(void)bus_call_reply_errno(&call, -ENOMEM, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const Route *rt = route_table_lookup(t, hosts[i]);
		if (!rt)
			continue;
		Locald__V1__Route *x = &routes[m];
		locald__v1__route__init(x);
		x->host = (char *)rt->host;
		x->upstream = (char *)(rt->kind == ROUTE_SERVICE ? strempty(rt->upstream_text)
				       : rt->kind == ROUTE_SITE  ? strempty(rt->site_path)
								 : "dashboard");
		x->project = (char *)strempty(rt->project);
		x->service = (char *)strempty(rt->service);
		x->owner = (char *)strempty(rt->project);
		ptrs[m++] = x;
	}
	Locald__V1__ListRoutesResult res = LOCALD__V1__LIST_ROUTES_RESULT__INIT;
	res.n_routes = m;
	res.routes = ptrs;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_LIST_ROUTES;
	reply.list_routes = &res;
	(void)bus_call_reply(&call, &reply);
out:
	free(routes);
	free(ptrs);
	route_table_unref(t);
	return 0;
}

static int on_set_routes(BusCall *call, const BusRequest *req, void *userdata)
{
	Proxyd *p = userdata;
	const Locald__V1__SetRoutes *sr = req->set_routes;
	if (isempty(sr->owner))
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
					    "name who the routes belong to, e.g. the project",
					    "SetRoutes: owner is empty"),
		       0;
	_cleanup_free_ RouteSpec *specs =
	    calloc(sr->n_routes ? sr->n_routes : 1, sizeof(RouteSpec));
	if (!specs)
		return -ENOMEM;
	for (size_t i = 0; i < sr->n_routes; i++)
		specs[i] = (RouteSpec){
			.host = sr->routes[i]->host,
			.upstream = sr->routes[i]->upstream,
			.project = isempty(sr->routes[i]->project) ? NULL : sr->routes[i]->project,
			.service = isempty(sr->routes[i]->service) ? NULL : sr->routes[i]->service,
		};
	const char *error = NULL;
	int r = routes_set_owner(p->routes, sr->owner, specs, sr->n_routes, &error);
	if (r == -EEXIST)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__ALREADY_EXISTS, NULL,
					    "%s",
					    error ? error : "a host is routed by another owner"),
		       0;
	if (r < 0)
		return bus_call_reply_errno(&call, r, NULL, "SetRoutes: %s",
					    error ? error : strerror(-r)),
		       0;

	/* The owner's routes as set (copies: the request is freed as it was decoded). */
	size_t n = sr->n_routes;
	_cleanup_free_ Locald__V1__Route *out = calloc(n ? n : 1, sizeof(Locald__V1__Route));
	_cleanup_free_ Locald__V1__Route **ptrs = calloc(n ? n : 1, sizeof(void *));
	if (!out || !ptrs)
		return bus_call_reply_errno(&call, -ENOMEM, NULL, "out of memory"), 0;
	for (size_t i = 0; i < n; i++) {
		out[i] = *sr->routes[i];
		out[i].owner = sr->owner;
		ptrs[i] = &out[i];
	}
	Locald__V1__SetRoutesResult res = LOCALD__V1__SET_ROUTES_RESULT__INIT;
	res.n_routes = n;
	res.routes = ptrs;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_SET_ROUTES;
	reply.set_routes = &res;
	(void)bus_call_reply(&call, &reply);
	return 0;
}

static int on_list_listeners(BusCall *call, const BusRequest *req, void *userdata)
{
	Proxyd *p = userdata;
	size_t n = p->n_listeners;
	_cleanup_free_ Locald__V1__Listener *l = calloc(n ? n : 1, sizeof(Locald__V1__Listener));
	_cleanup_free_ Locald__V1__Listener **ptrs = calloc(n ? n : 1, sizeof(void *));
	if (!l || !ptrs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		locald__v1__listener__init(&l[i]);
		l[i].address = p->listeners[i].address;
		l[i].port = p->listeners[i].port;
		l[i].scheme = p->listeners[i].tls ? LOCALD__V1__SCHEME__SCHEME_HTTPS
						  : LOCALD__V1__SCHEME__SCHEME_HTTP;
		l[i].socket_activated = p->listeners[i].socket_activated;
		l[i].via_shim = p->listeners[i].via_shim;
		ptrs[i] = &l[i];
	}
	Locald__V1__ListListenersResult res = LOCALD__V1__LIST_LISTENERS_RESULT__INIT;
	res.n_listeners = n;
	res.listeners = ptrs;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_LIST_LISTENERS;
	reply.list_listeners = &res;
	(void)bus_call_reply(&call, &reply);
	return 0;
}

int proxyd_bus_setup(Proxyd *p)
{
	int r = bus_server_add_handler(p->bus, LOCALD__V1__REQUEST__CALL_LIST_ROUTES,
				       on_list_routes, p);
	if (r >= 0)
		r = bus_server_add_handler(p->bus, LOCALD__V1__REQUEST__CALL_SET_ROUTES,
					   on_set_routes, p);
	if (r >= 0)
		r = bus_server_add_handler(p->bus, LOCALD__V1__REQUEST__CALL_LIST_LISTENERS,
					   on_list_listeners, p);
	if (r < 0)
		return r;
	r = loop_timer_new(p->loop, EVENTS_FLUSH_MS, 0, on_events_timer, p, &p->events_timer);
	if (r < 0)
		return r;
	loop_timer_stop(p->events_timer);
	r = uv_async_init(loop_get_uv(p->loop), &p->events_async, on_events);
	if (r < 0)
		return r;
	p->events_async.data = p;
	pthread_mutex_lock(&p->events_lock);
	p->events_async_ready = true;
	bool queued = p->n_events > 0;
	p->events_notified = queued;
	pthread_mutex_unlock(&p->events_lock);
	if (queued)
		uv_async_send(&p->events_async);
	return 0;
}
