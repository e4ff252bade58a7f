/* SPDX-License-Identifier: MIT */
/*
 * The Routes object: superd's services as routes. Main thread only, except the few
 * functions routes.h says any thread may call (acquire, listeners, request_*).
 *
 * The feed keeps one Entry per superd service (what its routes are built from), the
 * project domains from the last snapshot, and the SetRoutes routes; every change
 * publishes a new table built from all of them.
 *
 * Keeping up with superd: events update one entry each. A Status snapshot replaces all
 * of them at start, after a gap or a new epoch, shortly after a burst of events (a
 * service that was removed while stopped has no event of its own, and events published
 * before our subscription reached superd are lost), and when superd's socket reappears in
 * the runtime directory (a restarted superd that has nothing to say). While superd does
 * not answer, one attempt a second.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus.h"
#include "routes-internal.h"
#include "strutil.h"
#include "time-util.h"

#define STATUS_TIMEOUT_MS 5000
#define START_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 60000
#define LOGS_TIMEOUT_MS 5000
#define RETRY_MS 1000
#define RESYNC_MS 300
/* > lib/bus clients' longest reconnect interval (1 s) */
#define RESYNC_AFTER_RECONNECT_MS 1500
#define START_COALESCE_USEC (2 * USEC_PER_SEC)
#define LOGS_INTERVAL_USEC USEC_PER_SEC
#define LOG_LINES 20
#define LOG_LINE_MAX 1024

typedef enum CallKind {
	CALL_STATUS,
	CALL_START,
	CALL_STOP,
	CALL_LOGS,
} CallKind;

typedef struct Call {
	Routes *r;
	CallKind kind;
	uint64_t gen;
	char *project, *service;
} Call;

static void request_snapshot(Routes *r);
static void request_logs(Routes *r, Entry *e);

/* ---- entries ---- */

static Entry *entry_free(Entry *e)
{
	if (!e)
		return NULL;
	free(e->project);
	free(e->service);
	free(e->host);
	free(e->site_path);
	free(e->reason);
	free(e->last_exit);
	strv_free(e->last_lines);
	usage_box_unref(e->box);
	free(e);
	return NULL;
}

static Entry *entry_find(Routes *r, const char *project, const char *service, size_t *ret_idx)
{
	for (size_t i = 0; i < r->n_entries; i++)
		if (streq(r->entries[i]->project, project) &&
		    streq(r->entries[i]->service, service)) {
			if (ret_idx)
				*ret_idx = i;
			return r->entries[i];
		}
	return NULL;
}

static void entry_remove_at(Routes *r, size_t i)
{
	entry_free(r->entries[i]);
	memmove(&r->entries[i], &r->entries[i + 1], sizeof(Entry *) * (r->n_entries - i - 1));
	r->n_entries--;
}

static RouteReadiness readiness_of(const Entry *e)
{
	switch (e->state) {
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_RUNNING:
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_UNHEALTHY:
		/* Running but its port not known yet: nothing to connect to. */
		return e->port ? ROUTE_READY : ROUTE_STARTING;
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_WAITING:
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BUILDING:
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STARTING:
		return ROUTE_STARTING;
	/* Stopping counts as stopped: a request then asks for a start, which superd holds
	 * until the stop is done (an idle stop racing a request, a restart). As "starting",
	 * a request that saw it would take the stop that follows for a failed start. */
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPING:
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPED:
	case LOCALD__V1__SERVICE_STATE__SERVICE_STATE_EXITED:
		return ROUTE_STOPPED;
	default:
		return ROUTE_DOWN;
	}
}

static char *exit_text(const Locald__V1__ExitStatus *x)
{
	if (!x || x->unknown)
		return NULL;
	if (x->exited)
		return strdupf("exited with status %d", x->exit_code);
	if (x->signal)
		return strdupf("killed by signal %s%s",
			       isempty(x->signal_name) ? "?" : x->signal_name,
			       x->core_dumped ? " (core dumped)" : "");
	return NULL;
}

static char *dup_nonempty(const char *s, bool *oom)
{
	if (isempty(s))
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

/* Update (or create) the entry for one ServiceStatus. -ENOMEM leaves the entry as it was. */
static int entry_apply(Routes *r, const Locald__V1__ServiceStatus *s, Entry **ret)
{
	if (isempty(s->project) || isempty(s->service))
		return -EINVAL;
	Entry *e = entry_find(r, s->project, s->service, NULL);
	bool created = false;
	if (!e) {
		Entry **l = realloc(r->entries, sizeof(Entry *) * (r->n_entries + 1));
		if (!l)
			return -ENOMEM;
		r->entries = l;
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->project = strdup(s->project);
		e->service = strdup(s->service);
		e->box = usage_box_new();
		if (!e->project || !e->service || !e->box) {
			entry_free(e);
			return -ENOMEM;
		}
		created = true;
	}

	bool oom = false;
	char *host = dup_nonempty(s->host, &oom);
	char *site_path = dup_nonempty(s->site_path, &oom);
	char *reason = dup_nonempty(s->status_reason, &oom);
	char *last_exit = exit_text(s->last_exit);
	if (s->last_exit && !s->last_exit->unknown &&
	    (s->last_exit->exited || s->last_exit->signal) && !last_exit)
		oom = true;
	if (oom) {
		free(host);
		free(site_path);
		free(reason);
		free(last_exit);
		if (created)
			entry_free(e);
		return -ENOMEM;
	}
	free(e->host);
	e->host = host;
	free(e->site_path);
	e->site_path = site_path;
	free(e->reason);
	e->reason = reason;
	free(e->last_exit);
	e->last_exit = last_exit;
	e->type = s->type;
	e->state = s->state;
	e->port = s->port;
	e->autostart = s->autostart;
	e->idle_stop_usec = s->idle_stop_usec;

	bool was_routed = e->routed;
	RouteReadiness was = e->readiness;
	e->routed =
	    !streq(e->project, "system") && !isempty(e->host) &&
	    e->type != LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_WORKER &&
	    (e->type != LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_SITE || !isempty(e->site_path));
	e->readiness =
	    e->type == LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_SITE ? ROUTE_READY : readiness_of(e);
	if (created)
		r->entries[r->n_entries++] = e;
	if (e->routed && (!was_routed || created || was != e->readiness)) {
		if (e->readiness == ROUTE_READY) {
			e->ready_since = now_monotonic();
			/* A stop we asked for is over (a request started it again meanwhile,
			 * and superd may answer that stop only much later). */
			e->stop_inflight = false;
		} else if (e->readiness == ROUTE_STARTING || e->readiness == ROUTE_DOWN)
			request_logs(r, e);
	}
	if (ret)
		*ret = e;
	return 0;
}

/* ---- calls to superd ---- */

static void superd_absent(Routes *r)
{
	if (!loop_timer_is_armed(r->retry_timer))
		(void)loop_timer_set(r->retry_timer, RETRY_MS, 0);
}

/* superd restarted: calls in flight went to the old one. */
static void superd_restarted(Routes *r)
{
	r->call_gen++;
	for (size_t i = 0; i < r->n_entries; i++) {
		Entry *e = r->entries[i];
		e->start_inflight = e->stop_inflight = e->logs_inflight = false;
	}
}

static void on_reply(BusAsyncClient *client, int error, const BusReply *reply, void *userdata);

static int call_send(Routes *r, BusRequest *req, uint64_t timeout_ms, CallKind kind, const Entry *e)
{
	Call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = (Call){ .r = r, .kind = kind, .gen = r->call_gen };
	if (e) {
		c->project = strdup(e->project);
		c->service = strdup(e->service);
		if (!c->project || !c->service) {
			free(c->project);
			free(c->service);
			free(c);
			return -ENOMEM;
		}
	}
	int ret = bus_async_client_call(r->client, req, timeout_ms, on_reply, c);
	if (ret < 0) {
		free(c->project);
		free(c->service);
		free(c);
		if (ret == -ECONNREFUSED)
			superd_absent(r);
	}
	return ret;
}

static void request_snapshot(Routes *r)
{
	if (r->freeing)
		return;
	if (r->snapshot_inflight) {
		r->snapshot_again = true;
		return;
	}
	loop_timer_stop(r->retry_timer);
	loop_timer_stop(r->resync_timer);
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Status st = LOCALD__V1__STATUS__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	if (call_send(r, &req, STATUS_TIMEOUT_MS, CALL_STATUS, NULL) < 0)
		superd_absent(r);
	else
		r->snapshot_inflight = true;
}

static void maybe_start(Routes *r, Entry *e)
{
	usec_t now = now_monotonic();
	if (!e->routed || !e->autostart || e->start_inflight ||
	    (e->last_start && now - e->last_start < START_COALESCE_USEC))
		return;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__StartService m = LOCALD__V1__START_SERVICE__INIT;
	m.project = e->project;
	m.service = e->service;
	req.call_case = LOCALD__V1__REQUEST__CALL_START_SERVICE;
	req.start_service = &m;
	if (call_send(r, &req, START_TIMEOUT_MS, CALL_START, e) < 0)
		return;
	e->start_inflight = true;
	e->last_start = now;
	r->stats.starts_requested++;
}

static void logs_timer_arm(Routes *r)
{
	usec_t now = now_monotonic(), next = 0;
	for (size_t i = 0; i < r->n_entries; i++) {
		Entry *e = r->entries[i];
		if (!e->logs_pending || e->logs_inflight)
			continue;
		usec_t due = e->last_logs + LOGS_INTERVAL_USEC;
		if (!next || due < next)
			next = due;
	}
	if (!next)
		return;
	uint64_t ms = next > now ? (next - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC : 0;
	(void)loop_timer_set(r->logs_timer, ms, 0);
}

static void request_logs(Routes *r, Entry *e)
{
	usec_t now = now_monotonic();
	if (e->logs_inflight || (e->last_logs && now - e->last_logs < LOGS_INTERVAL_USEC)) {
		e->logs_pending = true;
		if (!e->logs_inflight)
			logs_timer_arm(r);
		return;
	}
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Logs m = LOCALD__V1__LOGS__INIT;
	m.project = e->project;
	m.service = e->service;
	m.limit = LOG_LINES;
	m.tail = true;
	req.call_case = LOCALD__V1__REQUEST__CALL_LOGS;
	req.logs = &m;
	e->logs_pending = false;
	if (call_send(r, &req, LOGS_TIMEOUT_MS, CALL_LOGS, e) < 0)
		return;
	e->logs_inflight = true;
	e->last_logs = now;
}

static void stop_idle(Routes *r, Entry *e)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__StopService m = LOCALD__V1__STOP_SERVICE__INIT;
	m.project = e->project;
	m.service = e->service;
	req.call_case = LOCALD__V1__REQUEST__CALL_STOP_SERVICE;
	req.stop_service = &m;
	if (call_send(r, &req, STOP_TIMEOUT_MS, CALL_STOP, e) < 0)
		return;
	e->stop_inflight = true;
	r->stats.idle_stops++;
}

/* Last lines of a Logs reply, each cut to LOG_LINE_MAX bytes on a character boundary. */
static char **lines_from_reply(const Locald__V1__LogsResult *res)
{
	size_t n = res ? res->n_lines : 0, first = n > LOG_LINES ? n - LOG_LINES : 0;
	char **l = calloc(n - first + 1, sizeof(char *));
	if (!l)
		return NULL;
	for (size_t i = first; i < n; i++) {
		const char *t = strempty(res->lines[i]->text);
		size_t len = strlen(t);
		if (len > LOG_LINE_MAX) {
			len = LOG_LINE_MAX;
			while (len > 0 && ((unsigned char)t[len] & 0xc0) == 0x80)
				len--;
		}
		l[i - first] = strndup_safe(t, len);
		if (!l[i - first])
			return strv_free(l);
	}
	return l;
}

static int apply_snapshot(Routes *r, const Locald__V1__StatusResult *res)
{
	/* Domains first: they decide the aliases. */
	Domain *domains = calloc(res->n_projects ? res->n_projects : 1, sizeof(*domains));
	if (!domains)
		return -ENOMEM;
	size_t nd = 0;
	for (size_t i = 0; i < res->n_projects; i++) {
		const Locald__V1__ProjectStatus *p = res->projects[i];
		if (isempty(p->name) || isempty(p->domain))
			continue;
		domains[nd].project = strdup(p->name);
		domains[nd].domain = strdup(p->domain);
		nd++;
		if (!domains[nd - 1].project || !domains[nd - 1].domain) {
			for (size_t j = 0; j < nd; j++) {
				free(domains[j].project);
				free(domains[j].domain);
			}
			free(domains);
			return -ENOMEM;
		}
	}
	routes_domains_clear(r);
	r->domains = domains;
	r->n_domains = nd;

	for (size_t i = 0; i < r->n_entries; i++)
		r->entries[i]->seen = false;
	int ret = 0;
	for (size_t i = 0; i < res->n_projects; i++) {
		const Locald__V1__ProjectStatus *p = res->projects[i];
		for (size_t j = 0; j < p->n_services; j++) {
			Entry *e;
			int k = entry_apply(r, p->services[j], &e);
			if (k == -ENOMEM)
				ret = k;
			if (k >= 0)
				e->seen = true;
			else if ((e = entry_find(r, strempty(p->services[j]->project),
						 strempty(p->services[j]->service), NULL)))
				e->seen = true; /* keep what we had rather than drop it */
		}
	}
	/* Removed, renamed, forgotten: gone at once. */
	for (size_t i = 0; i < r->n_entries;)
		if (!r->entries[i]->seen)
			entry_remove_at(r, i);
		else
			i++;
	return ret;
}

static void on_reply(BusAsyncClient *client, int error, const BusReply *reply, void *userdata)
{
	Call *c = userdata;
	Routes *r = c->r;
	const BusErrorMessage *err = reply ? bus_reply_get_error(reply) : NULL;

	if (r->freeing)
		goto done;
	if (c->kind == CALL_STATUS) {
		r->snapshot_inflight = false;
		if (error < 0 || err || reply->result_case != LOCALD__V1__REPLY__RESULT_STATUS) {
			superd_absent(r);
			goto done;
		}
		if (!r->superd_seen)
			r->superd_seen = true;
		(void)apply_snapshot(r, reply->status);
		r->stats.snapshots++;
		(void)routes_publish(r);
		if (r->resync_after_reconnect) {
			r->resync_after_reconnect = false;
			(void)loop_timer_set(r->resync_timer, RESYNC_AFTER_RECONNECT_MS, 0);
		}
		if (r->snapshot_again) {
			r->snapshot_again = false;
			request_snapshot(r);
		}
		goto done;
	}
	if (c->gen != r->call_gen)
		goto done;
	Entry *e = entry_find(r, c->project, c->service, NULL);
	if (!e)
		goto done;
	switch (c->kind) {
	case CALL_START:
		e->start_inflight = false;
		break;
	case CALL_STOP:
		/* The state itself comes with the events (the reply's copy may be older). */
		e->stop_inflight = false;
		routes_idle_arm(r);
		break;
	case CALL_LOGS:
		e->logs_inflight = false;
		if (error >= 0 && !err && reply->result_case == LOCALD__V1__REPLY__RESULT_LOGS) {
			char **lines = lines_from_reply(reply->logs);
			if (lines) {
				strv_free(e->last_lines);
				e->last_lines = lines;
				(void)routes_publish(r);
			}
		}
		if (e->logs_pending)
			logs_timer_arm(r);
		break;
	default:
		break;
	}
done:
	free(c->project);
	free(c->service);
	free(c);
}

/* ---- events ---- */

static void on_event(BusSubscriber *s, const BusEvent *ev, void *userdata)
{
	Routes *r = userdata;
	if (ev->payload_case != LOCALD__V1__EVENT__PAYLOAD_SERVICE_STATE_CHANGED ||
	    !ev->service_state_changed->service)
		return;
	r->stats.events++;
	r->superd_seen = true;
	if (entry_apply(r, ev->service_state_changed->service, NULL) >= 0)
		(void)routes_publish(r);
	else
		request_snapshot(r);
	/* A little later, the whole picture: what events cannot say (removals of stopped
	 * services, a project forgotten) and what was published before we subscribed. */
	if (!loop_timer_is_armed(r->resync_timer))
		(void)loop_timer_set(r->resync_timer, RESYNC_MS, 0);
}

static void on_gap(BusSubscriber *s, const BusGap *gap, void *userdata)
{
	Routes *r = userdata;
	r->stats.gaps++;
	if (gap->kind == BUS_GAP_RESTARTED)
		superd_restarted(r);
	request_snapshot(r);
}

/* ---- timers and wakeups ---- */

static void watch_start(Routes *r);

static void on_retry(LoopTimer *t, void *userdata)
{
	watch_start(userdata); /* the runtime directory may exist by now */
	request_snapshot(userdata);
}

static void on_logs_timer(LoopTimer *t, void *userdata)
{
	Routes *r = userdata;
	for (size_t i = 0; i < r->n_entries; i++)
		if (r->entries[i]->logs_pending && !r->entries[i]->logs_inflight)
			request_logs(r, r->entries[i]);
}

static bool idle_candidate(const Entry *e)
{
	return e->routed && e->idle_stop_usec > 0 && e->readiness == ROUTE_READY &&
	       e->type != LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_SITE;
}

void routes_idle_arm(Routes *r)
{
	bool want = false;
	for (size_t i = 0; i < r->n_entries && !want; i++)
		want = idle_candidate(r->entries[i]) && !r->entries[i]->stop_inflight;
	if (!want)
		loop_timer_stop(r->idle_timer);
	else if (!loop_timer_is_armed(r->idle_timer))
		(void)loop_timer_set(r->idle_timer, r->idle_interval_ms, r->idle_interval_ms);
}

static void on_idle_timer(LoopTimer *t, void *userdata)
{
	Routes *r = userdata;
	usec_t now = now_monotonic();
	for (size_t i = 0; i < r->n_entries; i++) {
		Entry *e = r->entries[i];
		if (!idle_candidate(e) || e->stop_inflight)
			continue;
		if (atomic_load(&e->box->usage.active) > 0)
			continue;
		usec_t last =
		    MAX((usec_t)atomic_load(&e->box->usage.last_request_usec), e->ready_since);
		if (now > last && now - last >= e->idle_stop_usec)
			stop_idle(r, e);
	}
	routes_idle_arm(r);
}

static void on_wakeup(uv_async_t *a)
{
	Routes *r = a->data;
	if (!r || r->freeing)
		return;
	for (size_t i = 0; i < r->n_entries; i++) {
		Entry *e = r->entries[i];
		if (atomic_exchange(&e->box->start_wanted, false))
			maybe_start(r, e);
		if (atomic_exchange(&e->box->logs_wanted, false))
			request_logs(r, e);
	}
	for (size_t i = 0; i < r->n_owned; i++) {
		Owned *o = &r->owned[i];
		bool start = atomic_exchange(&o->box->start_wanted, false);
		bool logs = atomic_exchange(&o->box->logs_wanted, false);
		Entry *e =
		    o->project && o->service ? entry_find(r, o->project, o->service, NULL) : NULL;
		if (e && start)
			maybe_start(r, e);
		if (e && logs)
			request_logs(r, e);
	}
}

static void on_watch(uv_fs_event_t *h, const char *filename, int events, int status)
{
	Routes *r = h->data;
	if (status < 0 || !r || r->freeing || !streq_ptr(filename, "superd.rpc"))
		return;
	/* superd (re)bound its socket: it may have restarted without anything to publish.
	 * Give it a moment to finish starting. */
	(void)loop_timer_set(r->retry_timer, 200, 0);
	/* Our subscriber reconnects on its own schedule (up to a second, lib/bus): what the
	 * new superd publishes before then is lost, so look again once it surely is back. */
	r->resync_after_reconnect = true;
}

static void handle_free_cb(uv_handle_t *h)
{
	free(h);
}

static void watch_start(Routes *r)
{
	if (!r->watch_dir || r->watch)
		return;
	uv_fs_event_t *w = calloc(1, sizeof(*w));
	if (!w)
		return;
	if (uv_fs_event_init(loop_get_uv(r->loop), w) < 0) {
		free(w);
		return;
	}
	w->data = r;
	if (uv_fs_event_start(w, on_watch, r->watch_dir, 0) < 0) {
		uv_close((uv_handle_t *)w, handle_free_cb);
		return;
	}
	r->watch = w;
}

/* ---- public ---- */

static int resolve_endpoint(const char *given, BusSocketKind kind, char **ret)
{
	if (given) {
		*ret = strdup(given);
		return *ret ? 0 : -ENOMEM;
	}
	return bus_endpoint(NULL, "superd", kind, ret);
}

int routes_new(Loop *loop, const RoutesOptions *opts, Routes **ret)
{
	RoutesOptions o = opts ? *opts : (RoutesOptions){ 0 };
	Routes *r = calloc(1, sizeof(*r));
	int ret_r;
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	pthread_mutex_init(&r->table_lock, NULL);
	pthread_mutex_init(&r->listeners_lock, NULL);
	r->idle_interval_ms = o.idle_check_interval_usec
				  ? MAX(o.idle_check_interval_usec / USEC_PER_MSEC, (uint64_t)1)
				  : 1000;
	STRV_FOREACH (h, o.dashboard_hosts) {
		char norm[ROUTE_HOST_MAX + 1];
		if (!route_host_normalize(*h, norm, sizeof(norm)))
			continue;
		if (strv_extend(&r->dashboard_hosts, norm) < 0) {
			ret_r = -ENOMEM;
			goto fail;
		}
	}
	ret_r = resolve_endpoint(o.superd_rpc, BUS_SOCKET_RPC, &r->rpc);
	if (ret_r >= 0)
		ret_r = resolve_endpoint(o.superd_events, BUS_SOCKET_EVENTS, &r->events);
	if (ret_r < 0)
		goto fail;
	const char *path = startswith(r->rpc, "ipc://");
	const char *slash = path ? strrchr(path, '/') : NULL;
	if (slash && slash > path) {
		r->watch_dir = strndup_safe(path, (size_t)(slash - path));
		if (!r->watch_dir) {
			ret_r = -ENOMEM;
			goto fail;
		}
	}

	r->zmq = zmq_ctx_new();
	if (!r->zmq) {
		ret_r = -ENOMEM;
		goto fail;
	}
	static const BusSubscriberCallbacks cb = { .event = on_event, .gap = on_gap };
	ret_r = bus_subscriber_new(loop, r->zmq, r->events, &cb, r, &r->sub);
	if (ret_r >= 0)
		ret_r = bus_subscriber_subscribe(r->sub, "service.state.");
	if (ret_r >= 0)
		ret_r = bus_async_client_new(loop, r->zmq, r->rpc, &r->client);
	if (ret_r >= 0)
		ret_r = loop_timer_new(loop, RETRY_MS, 0, on_retry, r, &r->retry_timer);
	if (ret_r >= 0)
		ret_r = loop_timer_new(loop, RESYNC_MS, 0, on_retry, r, &r->resync_timer);
	if (ret_r >= 0)
		ret_r = loop_timer_new(loop, 1000, 0, on_idle_timer, r, &r->idle_timer);
	if (ret_r >= 0)
		ret_r = loop_timer_new(loop, 1000, 0, on_logs_timer, r, &r->logs_timer);
	if (ret_r < 0)
		goto fail;
	loop_timer_stop(r->retry_timer);
	loop_timer_stop(r->resync_timer);
	loop_timer_stop(r->idle_timer);
	loop_timer_stop(r->logs_timer);

	r->wakeup = calloc(1, sizeof(*r->wakeup));
	if (!r->wakeup) {
		ret_r = -ENOMEM;
		goto fail;
	}
	ret_r = uv_async_init(loop_get_uv(loop), r->wakeup, on_wakeup);
	if (ret_r < 0) {
		r->wakeup = mfree(r->wakeup);
		goto fail;
	}
	r->wakeup->data = r;

	ret_r = routes_publish(r); /* never NULL: an empty table (with the dashboard) at once */
	if (ret_r < 0)
		goto fail;
	watch_start(r);
	request_snapshot(r);
	*ret = r;
	return 0;
fail:
	routes_free(r);
	return ret_r;
}

Routes *routes_free(Routes *r)
{
	if (!r)
		return NULL;
	r->freeing = true;
	bus_async_client_free(r->client); /* pending callbacks run now and see `freeing` */
	bus_subscriber_free(r->sub);
	if (r->zmq)
		zmq_ctx_term(r->zmq);
	loop_timer_free(r->retry_timer);
	loop_timer_free(r->resync_timer);
	loop_timer_free(r->idle_timer);
	loop_timer_free(r->logs_timer);
	if (r->wakeup) {
		r->wakeup->data = NULL;
		uv_close((uv_handle_t *)r->wakeup, handle_free_cb);
	}
	if (r->watch) {
		r->watch->data = NULL;
		uv_close((uv_handle_t *)r->watch, handle_free_cb);
	}
	for (size_t i = 0; i < r->n_entries; i++)
		entry_free(r->entries[i]);
	free(r->entries);
	routes_domains_clear(r);
	for (size_t i = 0; i < r->n_owned; i++)
		routes_owned_done(&r->owned[i]);
	free(r->owned);
	route_table_unref(r->current);
	free(r->listeners);
	strv_free(r->dashboard_hosts);
	strv_free(r->hosts_synced);
	free(r->rpc);
	free(r->events);
	free(r->watch_dir);
	pthread_mutex_destroy(&r->table_lock);
	pthread_mutex_destroy(&r->listeners_lock);
	free(r);
	return NULL;
}
