/* SPDX-License-Identifier: MIT */
/*
 * Routing tables: built from the feed's entries, SetRoutes routes and the dashboard
 * names, immutable once published, shared by reference between threads. Also what other
 * threads call on a Routes object (acquire, listeners, requests) and SetRoutes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "bus-names.h"
#include "log.h"
#include "parse-util.h"
#include "routes-internal.h"
#include "shim-client.h"
#include "strutil.h"
#include "time-util.h"

struct RouteTable {
	atomic_uint refs;
	uint64_t generation;
	bool superd_seen;
	Route *routes; /* sorted by host, one per host */
	size_t n;
	const char **hosts; /* routes[i].host, NULL-terminated */
};

/* ---- usage ---- */

UsageBox *usage_box_new(void)
{
	UsageBox *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	return b;
}

UsageBox *usage_box_ref(UsageBox *b)
{
	if (b)
		atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void usage_box_unref(UsageBox *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
}

void route_usage_begin(const Route *route)
{
	if (!route || !route->usage)
		return;
	atomic_fetch_add(&route->usage->active, 1);
	atomic_store(&route->usage->last_request_usec, now_monotonic());
}

void route_usage_end(const Route *route)
{
	if (!route || !route->usage)
		return;
	/* The end of a long request (a WebSocket) is activity too. */
	atomic_store(&route->usage->last_request_usec, now_monotonic());
	atomic_fetch_sub(&route->usage->active, 1);
}

/* ---- building ---- */

static void route_done(Route *r)
{
	free((char *)r->host);
	free((char *)r->project);
	free((char *)r->service);
	free((char *)r->upstream_text);
	free((char *)r->state);
	free((char *)r->reason);
	free((char *)r->last_exit);
	free((char *)r->site_path);
	free((char *)r->owner);
	strv_free(r->last_lines);
	usage_box_unref(usage_box_of(r->usage));
	*r = (Route){ 0 };
}

static bool dup_opt(const char *s, const char **ret)
{
	*ret = NULL;
	if (!s)
		return true;
	return (*ret = strdup(s)) != NULL;
}

static int route_copy(const Route *from, Route *to)
{
	char host[ROUTE_HOST_MAX + 1];
	*to = (Route){
		.kind = from->kind,
		.readiness = from->readiness,
		.upstream = from->upstream,
		.upstream_len = from->upstream_len,
		.autostart = from->autostart,
		.idle_stop_usec = from->idle_stop_usec,
	};
	if (!route_host_normalize(from->host, host, sizeof(host)))
		return -EINVAL;
	bool ok = dup_opt(host, &to->host) && dup_opt(from->project, &to->project) &&
		  dup_opt(from->service, &to->service) &&
		  dup_opt(from->upstream_text, &to->upstream_text) &&
		  dup_opt(from->state, &to->state) && dup_opt(from->reason, &to->reason) &&
		  dup_opt(from->last_exit, &to->last_exit) &&
		  dup_opt(from->site_path, &to->site_path) && dup_opt(from->owner, &to->owner);
	if (ok && from->last_lines) {
		to->last_lines = strv_copy(from->last_lines);
		ok = to->last_lines != NULL;
	}
	if (!ok) {
		route_done(to);
		return -ENOMEM;
	}
	to->usage = from->usage ? &usage_box_ref(usage_box_of(from->usage))->usage : NULL;
	return 0;
}

void table_builder_add(TableBuilder *b, const Route *route, unsigned rank)
{
	if (b->failed)
		return;
	if (b->n == b->allocated) {
		size_t m = b->allocated ? b->allocated * 2 : 16;
		Route *rs = realloc(b->routes, m * sizeof(*rs));
		if (!rs) {
			b->failed = true;
			return;
		}
		b->routes = rs;
		unsigned *ks = realloc(b->ranks, m * sizeof(*ks));
		if (!ks) {
			b->failed = true;
			return;
		}
		b->ranks = ks;
		b->allocated = m;
	}
	int r = route_copy(route, &b->routes[b->n]);
	if (r == -ENOMEM)
		b->failed = true;
	if (r < 0)
		return; /* a host that cannot be looked up is no route */
	b->ranks[b->n++] = rank;
}

void table_builder_done(TableBuilder *b)
{
	for (size_t i = 0; i < b->n; i++)
		route_done(&b->routes[i]);
	free(b->routes);
	free(b->ranks);
	*b = (TableBuilder){ 0 };
}

typedef struct SortItem {
	Route route;
	unsigned rank;
	size_t order;
} SortItem;

static int sort_item_cmp(const void *a, const void *b)
{
	const SortItem *x = a, *y = b;
	int c = strcmp(x->route.host, y->route.host);
	if (c)
		return c;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static RouteTable *table_free(RouteTable *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		route_done(&t->routes[i]);
	free(t->routes);
	free(t->hosts);
	free(t);
	return NULL;
}

int table_builder_finish(TableBuilder *b, uint64_t generation, bool superd_seen, RouteTable **ret)
{
	if (b->failed) {
		table_builder_done(b);
		return -ENOMEM;
	}
	RouteTable *t = calloc(1, sizeof(*t));
	SortItem *items = calloc(b->n ? b->n : 1, sizeof(*items));
	if (t)
		t->routes = calloc(b->n ? b->n : 1, sizeof(Route));
	if (t)
		t->hosts = calloc(b->n + 1, sizeof(char *));
	if (!t || !items || !t->routes || !t->hosts) {
		free(items);
		table_free(t);
		table_builder_done(b);
		return -ENOMEM;
	}
	atomic_init(&t->refs, 1);
	t->generation = generation;
	t->superd_seen = superd_seen;
	for (size_t i = 0; i < b->n; i++)
		items[i] = (SortItem){ .route = b->routes[i], .rank = b->ranks[i], .order = i };
	qsort(items, b->n, sizeof(*items), sort_item_cmp);
	for (size_t i = 0; i < b->n; i++) {
		if (t->n > 0 && streq(t->routes[t->n - 1].host, items[i].route.host)) {
			route_done(&items[i].route);
			continue;
		}
		t->hosts[t->n] = items[i].route.host;
		t->routes[t->n++] = items[i].route;
	}
	free(items);
	b->n = 0; /* moved into the table */
	table_builder_done(b);
	*ret = t;
	return 0;
}

/* ---- tables ---- */

RouteTable *route_table_ref(RouteTable *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void route_table_unref(RouteTable *t)
{
	if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		table_free(t);
}

uint64_t route_table_generation(const RouteTable *t)
{
	return t->generation;
}

bool route_table_superd_seen(const RouteTable *t)
{
	return t->superd_seen;
}

char *const *route_table_hosts(const RouteTable *t)
{
	return (char *const *)t->hosts;
}

bool route_host_normalize(const char *host, char *buf, size_t size)
{
	if (!host || size == 0)
		return false;
	size_t n;
	if (host[0] == '[') { /* an IPv6 literal keeps its colons */
		const char *end = strchr(host, ']');
		if (!end)
			return false;
		n = (size_t)(end - host) + 1;
	} else
		n = strcspn(host, ":");
	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0 || n > ROUTE_HOST_MAX || n >= size)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = host[i];
		buf[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	buf[n] = 0;
	return true;
}

const Route *route_table_lookup(const RouteTable *t, const char *host)
{
	char key[ROUTE_HOST_MAX + 1];
	if (!t || !route_host_normalize(host, key, sizeof(key)))
		return NULL;
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, t->routes[mid].host);
		if (c == 0)
			return &t->routes[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- addresses ---- */

bool route_host_is_valid(const char *host)
{
	if (isempty(host) || strlen(host) > ROUTE_HOST_MAX)
		return false;
	const char *label = host;
	for (const char *p = host;; p++) {
		if (*p == '.' || *p == 0) {
			size_t n = (size_t)(p - label);
			if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
				return false;
			if (*p == 0)
				return true;
			label = p + 1;
			continue;
		}
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
}

int route_upstream_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	struct sockaddr_storage ss = { 0 };
	char addr[INET6_ADDRSTRLEN + 1];
	const char *port_s;
	uint16_t port;

	if (isempty(text))
		return -EINVAL;
	const char *path = startswith(text, "unix:");
	if (path) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		size_t n = strlen(path);
		if (path[0] != '/' || n >= sizeof(un->sun_path))
			return -EINVAL;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, path, n + 1);
		*ret = ss;
		*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		return 0;
	}
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(addr))
			return -EINVAL;
		memcpy(addr, text + 1, (size_t)(end - text - 1));
		addr[end - text - 1] = 0;
		port_s = end + 2;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1 ||
		    parse_port(port_s, &port) < 0)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*ret = ss;
		*ret_len = sizeof(*in6);
		return 0;
	}
	const char *colon = strrchr(text, ':');
	if (!colon || (size_t)(colon - text) >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, text, (size_t)(colon - text));
	addr[colon - text] = 0;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	if (inet_pton(AF_INET, addr, &in->sin_addr) != 1 || parse_port(colon + 1, &port) < 0)
		return -EINVAL;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	*ret = ss;
	*ret_len = sizeof(*in);
	return 0;
}

/* ---- publishing (main thread) ---- */

/* ---- domains ---- */

static const char *domain_known(Routes *r, const char *project)
{
	for (size_t i = 0; i < r->n_domains; i++)
		if (streq(r->domains[i].project, project))
			return r->domains[i].domain;
	return NULL;
}

void routes_domains_clear(Routes *r)
{
	for (size_t i = 0; i < r->n_domains; i++) {
		free(r->domains[i].project);
		free(r->domains[i].domain);
	}
	free(r->domains);
	r->domains = NULL;
	r->n_domains = 0;
}

/* The project's domain: from the last snapshot, else from a host superd gave one of its
 * services ("api.shop.localhost" → "shop.localhost"; the bare domain belongs to "web"). */
static const char *project_domain(Routes *r, const char *project)
{
	const char *d = domain_known(r, project);
	if (d)
		return d;
	for (size_t i = 0; i < r->n_entries; i++) {
		Entry *e = r->entries[i];
		/* The bare domain's owners ("web", or named like the project) say nothing. */
		if (!streq(e->project, project) || !e->routed || streq(e->service, "web") ||
		    streq(e->service, project))
			continue;
		const char *rest = startswith(e->host, e->service);
		if (rest && rest[0] == '.' && rest[1])
			return rest + 1;
	}
	for (size_t i = 0; i < r->n_entries; i++) {
		Entry *e = r->entries[i];
		if (streq(e->project, project) && e->routed &&
		    (streq(e->service, "web") || streq(e->service, project)))
			return e->host;
	}
	return NULL;
}

/* ---- publishing ---- */

enum {
	RANK_DASHBOARD,
	RANK_SERVICE_HOST,
	RANK_OWNED,
	RANK_SERVICE_ALIAS,
	RANK_PROJECT_DOMAIN,
};

static void entry_to_route(const Entry *e, const char *host, char *upstream_text, Route *ret)
{
	*ret = (Route){
		.host = host,
		.kind = e->type == LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_SITE ? ROUTE_SITE
									       : ROUTE_SERVICE,
		.project = e->project,
		.service = e->service,
		.readiness = e->readiness,
		.state = bus_service_state_name(e->state),
		.reason = e->reason,
		.last_exit = e->last_exit,
		.last_lines = e->last_lines,
		.site_path = e->site_path,
		.autostart = e->autostart,
		.idle_stop_usec = e->idle_stop_usec,
		.usage = &e->box->usage,
	};
	if (ret->kind == ROUTE_SERVICE && e->port) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ret->upstream;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)e->port);
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ret->upstream_len = sizeof(*in);
		(void)strfmt(upstream_text, 32, "127.0.0.1:%u", (unsigned)e->port);
		ret->upstream_text = upstream_text;
	}
}

static void add_entry_routes(Routes *r, TableBuilder *b, Entry *e)
{
	char up[32];
	Route route;
	entry_to_route(e, e->host, up, &route);
	table_builder_add(b, &route, RANK_SERVICE_HOST);
	/* <service>.<domain> always names the service, also where its own host is the
	 * bare domain ("web"). */
	const char *domain = project_domain(r, e->project);
	if (domain) {
		char alias[ROUTE_HOST_MAX + 2];
		if (strfmt(alias, sizeof(alias), "%s.%s", e->service, domain) >= 0 &&
		    !streq(alias, e->host)) {
			route.host = alias;
			table_builder_add(b, &route, RANK_SERVICE_ALIAS);
		}
	}
}

/* <domain> → "web", else the service named like the project, else the only one routed. */
static void add_project_route(Routes *r, TableBuilder *b, const char *project)
{
	const char *domain = project_domain(r, project);
	if (!domain)
		return;
	Entry *web = NULL, *named = NULL, *only = NULL;
	size_t n = 0;
	for (size_t i = 0; i < r->n_entries; i++) {
		Entry *e = r->entries[i];
		if (!streq(e->project, project) || !e->routed)
			continue;
		n++;
		only = e;
		if (streq(e->service, "web"))
			web = e;
		if (streq(e->service, project))
			named = e;
	}
	Entry *pick = web ? web : named ? named : n == 1 ? only : NULL;
	if (!pick)
		return;
	char up[32];
	Route route;
	entry_to_route(pick, domain, up, &route);
	table_builder_add(b, &route, RANK_PROJECT_DOMAIN);
}

static void wake_listeners(Routes *r)
{
	pthread_mutex_lock(&r->listeners_lock);
	for (size_t i = 0; i < r->n_listeners; i++)
		uv_async_send(r->listeners[i]);
	pthread_mutex_unlock(&r->listeners_lock);
}

/*
 * Keep /etc/hosts' locald block listing the routed *.localhost names (for tools that do
 * not resolve *.localhost themselves), through locald-shim when it is installed, and only
 * when the set of names changed (applies and removals: rare). The shim is a short
 * process; it runs here, on the main thread, which only delays bus events meanwhile.
 */
static bool strv_same(char *const *a, char *const *b)
{
	for (; *a && *b; a++, b++)
		if (!streq(*a, *b))
			return false;
	return !*a && !*b;
}

static void hosts_sync(Routes *r)
{
	_cleanup_free_ char *shim = NULL;
	if (shim_find(&shim) < 0)
		return; /* not installed: nothing to keep in sync */
	_cleanup_strv_free_ char **names = NULL;
	STRV_FOREACH (hp, route_table_hosts(r->current))
		if (endswith(*hp, ".localhost") && strv_extend(&names, *hp) < 0)
			return;
	if (!names && !(names = calloc(1, sizeof(char *))))
		return;
	if (r->hosts_synced && strv_same(names, r->hosts_synced))
		return;
	int ret = shim_hosts_sync(names);
	if (ret < 0) {
		log_warning("/etc/hosts: locald-shim hosts-sync failed: %s", strerror(-ret));
		return;
	}
	strv_free(r->hosts_synced);
	r->hosts_synced = TAKE_PTR(names);
}

int routes_publish(Routes *r)
{
	TableBuilder b = { 0 };
	static const char *const builtin[] = { "localhost", "locald.localhost" };
	Route dash = { .kind = ROUTE_DASHBOARD, .readiness = ROUTE_READY, .state = "running" };
	for (size_t i = 0; i < ELEMENTSOF(builtin); i++) {
		dash.host = builtin[i];
		table_builder_add(&b, &dash, RANK_DASHBOARD);
	}
	STRV_FOREACH (h, r->dashboard_hosts) {
		dash.host = *h;
		table_builder_add(&b, &dash, RANK_DASHBOARD);
	}

	for (size_t i = 0; i < r->n_entries; i++)
		if (r->entries[i]->routed)
			add_entry_routes(r, &b, r->entries[i]);
	for (size_t i = 0; i < r->n_entries; i++) {
		Entry *e = r->entries[i];
		if (!e->routed)
			continue;
		bool first = true; /* one domain route per project */
		for (size_t j = 0; j < i && first; j++)
			if (r->entries[j]->routed && streq(r->entries[j]->project, e->project))
				first = false;
		if (first)
			add_project_route(r, &b, e->project);
	}
	for (size_t i = 0; i < r->n_owned; i++) {
		Owned *o = &r->owned[i];
		Route route = {
			.host = o->host,
			.kind = ROUTE_SERVICE,
			.project = o->project,
			.service = o->service,
			.readiness = ROUTE_READY,
			.state = "running",
			.upstream = o->upstream,
			.upstream_len = o->upstream_len,
			.upstream_text = o->upstream_text,
			.usage = &o->box->usage,
			.owner = o->owner,
		};
		table_builder_add(&b, &route, RANK_OWNED);
	}

	RouteTable *t;
	int ret = table_builder_finish(&b, r->generation + 1, r->superd_seen, &t);
	if (ret < 0)
		return ret; /* the old table stays: shed this change, not the process */
	r->generation++;
	pthread_mutex_lock(&r->table_lock);
	RouteTable *old = r->current;
	r->current = t;
	pthread_mutex_unlock(&r->table_lock);
	route_table_unref(old);
	wake_listeners(r);
	routes_idle_arm(r);
	hosts_sync(r);
	return 0;
}

/* ---- any thread ---- */

RouteTable *routes_acquire(Routes *r)
{
	pthread_mutex_lock(&r->table_lock);
	RouteTable *t = route_table_ref(r->current);
	pthread_mutex_unlock(&r->table_lock);
	return t;
}

int routes_add_listener(Routes *r, uv_async_t *async)
{
	pthread_mutex_lock(&r->listeners_lock);
	uv_async_t **l = realloc(r->listeners, sizeof(*l) * (r->n_listeners + 1));
	if (!l) {
		pthread_mutex_unlock(&r->listeners_lock);
		return -ENOMEM;
	}
	r->listeners = l;
	r->listeners[r->n_listeners++] = async;
	pthread_mutex_unlock(&r->listeners_lock);
	return 0;
}

void routes_remove_listener(Routes *r, uv_async_t *async)
{
	pthread_mutex_lock(&r->listeners_lock);
	for (size_t i = 0; i < r->n_listeners; i++)
		if (r->listeners[i] == async) {
			r->listeners[i] = r->listeners[--r->n_listeners];
			break;
		}
	pthread_mutex_unlock(&r->listeners_lock);
}

static void request_flag(Routes *r, const Route *route, bool start)
{
	if (!r || !route || !route->usage)
		return;
	UsageBox *b = usage_box_of(route->usage);
	if (!atomic_exchange(start ? &b->start_wanted : &b->logs_wanted, true))
		uv_async_send(r->wakeup);
}

void routes_request_start(Routes *r, const Route *route)
{
	request_flag(r, route, true);
}

void routes_request_logs(Routes *r, const Route *route)
{
	request_flag(r, route, false);
}

void routes_get_stats(Routes *r, RoutesStats *ret)
{
	*ret = r->stats;
}

/* ---- SetRoutes ---- */

void routes_owned_done(Owned *o)
{
	free(o->owner);
	free(o->host);
	free(o->upstream_text);
	free(o->project);
	free(o->service);
	usage_box_unref(o->box);
	*o = (Owned){ 0 };
}

/* Is `host` routed to a superd service or the dashboard in the current table? */
static bool host_taken_by_service(Routes *r, const char *host)
{
	const Route *route = route_table_lookup(r->current, host);
	if (!route)
		return false;
	for (size_t i = 0; i < r->n_owned; i++)
		if (route->usage == &r->owned[i].box->usage)
			return false;
	return true;
}

int routes_set_owner(Routes *r, const char *owner, const RouteSpec *specs, size_t n,
		     const char **error)
{
	static const char *dummy;
	if (!error)
		error = &dummy;
	if (isempty(owner)) {
		*error = "the owner is empty";
		return -EINVAL;
	}
	Owned *fresh = calloc(n ? n : 1, sizeof(*fresh));
	if (!fresh) {
		*error = "out of memory";
		return -ENOMEM;
	}
	int ret = 0;
	size_t k = 0;
	for (; k < n; k++) {
		const RouteSpec *s = &specs[k];
		Owned *o = &fresh[k];
		char host[ROUTE_HOST_MAX + 1];
		if (!s->host || !route_host_is_valid(s->host) ||
		    !route_host_normalize(s->host, host, sizeof(host))) {
			*error = "invalid host name (expected a DNS name like \"app.localhost\")";
			ret = -EINVAL;
			break;
		}
		if (route_upstream_parse(s->upstream, &o->upstream, &o->upstream_len) < 0) {
			*error = "invalid upstream (expected \"127.0.0.1:5173\", \"[::1]:8080\" or "
				 "\"unix:/absolute/path.sock\")";
			ret = -EINVAL;
			break;
		}
		for (size_t j = 0; j < k; j++)
			if (streq(fresh[j].host, host)) {
				*error = "a host is listed twice";
				ret = -EINVAL;
				break;
			}
		if (ret < 0)
			break;
		if (host_taken_by_service(r, host)) {
			*error = "the host belongs to a service or the dashboard";
			ret = -EEXIST;
			break;
		}
		bool other = false;
		for (size_t j = 0; j < r->n_owned; j++)
			if (streq(r->owned[j].host, host) && !streq(r->owned[j].owner, owner))
				other = true;
		if (other) {
			*error = "the host is routed by another owner";
			ret = -EEXIST;
			break;
		}
		o->owner = strdup(owner);
		o->host = strdup(host);
		o->upstream_text = strdup(s->upstream);
		o->project = isempty(s->project) ? NULL : strdup(s->project);
		o->service = isempty(s->service) ? NULL : strdup(s->service);
		/* The same host keeps its usage (idle bookkeeping of requests in flight). */
		for (size_t j = 0; j < r->n_owned && !o->box; j++)
			if (streq(r->owned[j].host, host))
				o->box = usage_box_ref(r->owned[j].box);
		if (!o->box)
			o->box = usage_box_new();
		if (!o->owner || !o->host || !o->upstream_text || !o->box ||
		    (!isempty(s->project) && !o->project) ||
		    (!isempty(s->service) && !o->service)) {
			*error = "out of memory";
			ret = -ENOMEM;
			k++;
			break;
		}
	}
	if (ret < 0) {
		for (size_t j = 0; j < k && j < n; j++)
			routes_owned_done(&fresh[j]);
		free(fresh);
		return ret;
	}

	/* Others' routes, then ours. */
	Owned *all = calloc(r->n_owned + n + 1, sizeof(*all));
	if (!all) {
		for (size_t j = 0; j < n; j++)
			routes_owned_done(&fresh[j]);
		free(fresh);
		*error = "out of memory";
		return -ENOMEM;
	}
	size_t m = 0;
	for (size_t j = 0; j < r->n_owned; j++)
		if (streq(r->owned[j].owner, owner))
			routes_owned_done(&r->owned[j]);
		else
			all[m++] = r->owned[j];
	memcpy(all + m, fresh, n * sizeof(*fresh));
	free(fresh);
	free(r->owned);
	r->owned = all;
	r->n_owned = m + n;
	(void)routes_publish(r);
	return 0;
}
