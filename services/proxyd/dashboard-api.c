/* SPDX-License-Identifier: MIT */
/*
 * The dashboard's API (README.md, "Dashboard API"): superd's state kept as JSON and
 * updated from its events, the /api handlers, and the events published to the SSE
 * streams (service state, log lines; proxy requests come from dashboard.c).
 *
 * The state is a copy of superd's Status, replaced by a snapshot at start, after an
 * event gap or a superd restart, and a second after a burst of state events (what events
 * cannot say: removals); each service.state event replaces one service in between.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>

#include "bus-names.h"
#include "dashboard-internal.h"
#include "log.h"
#include "macro.h"
#include "paths.h"
#include "project.h"
#include "strutil.h"
#include "time-util.h"

#define CALL_TIMEOUT_MS 5000
#define ACTION_TIMEOUT_MS 60000
#define RETRY_MS 1000
#define RESYNC_MS 1000
#define LOGS_DEFAULT 500
#define LOGS_MAX 5000

/* ---- enums as the API spells them ---- */

static const char *type_name(Locald__V1__ServiceType t)
{
	static const char *const names[] = {
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_EXEC] = "exec",
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_WORKER] = "worker",
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_POSTGRES] = "postgres",
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_CONTAINER] = "container",
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_SITE] = "site",
	};
	return (unsigned)t < ELEMENTSOF(names) && names[t] ? names[t] : "exec";
}

static const char *health_name(Locald__V1__Health h)
{
	switch (h) {
	case LOCALD__V1__HEALTH__HEALTH_PASSING:
		return "passing";
	case LOCALD__V1__HEALTH__HEALTH_FAILING:
		return "failing";
	default:
		return "unknown";
	}
}

static const char *health_source_name(Locald__V1__HealthSource s)
{
	static const char *const names[] = {
		[LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_NONE] = "none",
		[LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_HTTP] = "http",
		[LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_TCP] = "tcp",
		[LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_COMMAND] = "command",
		[LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_NOTIFY] = "notify",
		[LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_PORT] = "port",
		[LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_LOG] = "log",
	};
	return (unsigned)s < ELEMENTSOF(names) && names[s] ? names[s] : "none";
}

static const char *stream_name(Locald__V1__LogStream s)
{
	switch (s) {
	case LOCALD__V1__LOG_STREAM__LOG_STREAM_STDERR:
		return "stderr";
	case LOCALD__V1__LOG_STREAM__LOG_STREAM_SYSTEM:
		return "system";
	default:
		return "stdout";
	}
}

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(strempty(v[i])));
	return a;
}

static json_t *exit_json(const Locald__V1__ExitStatus *x)
{
	if (!x)
		return json_null();
	char text[128] = "";
	if (x->unknown)
		(void)strscpy(text, sizeof text, "unknown (adopted after a superd restart)");
	else if (x->exited)
		(void)strfmt(text, sizeof text, "exited with status %d", x->exit_code);
	else if (x->signal)
		(void)strfmt(text, sizeof text, "killed by signal %s%s",
			     isempty(x->signal_name) ? "?" : x->signal_name,
			     x->core_dumped ? " (core dumped)" : "");
	return json_pack("{s:b,s:i,s:i,s:s,s:b,s:I,s:b,s:s}", "exited", x->exited, "code",
			 x->exit_code, "signal", x->signal, "signal_name", strempty(x->signal_name),
			 "core_dumped", x->core_dumped, "time_usec", (json_int_t)x->time_usec,
			 "unknown", x->unknown, "text", text);
}

static json_t *service_json(const Locald__V1__ServiceStatus *s)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	json_object_set_new(j, "project", json_string(strempty(s->project)));
	json_object_set_new(j, "service", json_string(strempty(s->service)));
	json_object_set_new(j, "type", json_string(type_name(s->type)));
	json_object_set_new(j, "state", json_string(bus_service_state_name(s->state)));
	json_object_set_new(j, "pid", json_integer(s->pid));
	json_object_set_new(j, "port", json_integer(s->port));
	json_object_set_new(j, "url", json_string(strempty(s->url)));
	json_object_set_new(j, "host", json_string(strempty(s->host)));
	json_object_set_new(j, "health", json_string(health_name(s->health)));
	json_object_set_new(j, "health_source", json_string(health_source_name(s->health_source)));
	json_object_set_new(j, "health_detail", json_string(strempty(s->health_detail)));
	json_object_set_new(j, "restarts", json_integer(s->restarts));
	json_object_set_new(j, "start_time_usec", json_integer((json_int_t)s->start_time_usec));
	json_object_set_new(j, "uptime_usec", json_integer((json_int_t)s->uptime_usec));
	json_object_set_new(j, "last_exit", exit_json(s->last_exit));
	json_object_set_new(j, "warnings", strv_json(s->warnings, s->n_warnings));
	json_object_set_new(j, "depends_on", strv_json(s->depends_on, s->n_depends_on));
	json_object_set_new(j, "status_reason", json_string(strempty(s->status_reason)));
	json_object_set_new(j, "autostart", json_boolean(s->autostart));
	return j;
}

/* ---- the state ---- */

static json_t *project_find(Dashboard *d, const char *name)
{
	size_t i;
	json_t *p;
	json_array_foreach(d->projects, i, p)
	{
		if (streq(json_string_value(json_object_get(p, "name")), name))
			return p;
	}
	return NULL;
}

static json_t *service_find(json_t *project, const char *name, size_t *ret_idx)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(project, "services"), i, s)
	{
		if (streq(json_string_value(json_object_get(s, "service")), name)) {
			if (ret_idx)
				*ret_idx = i;
			return s;
		}
	}
	return NULL;
}

/* The uptime as of now (the stored one is as of the snapshot). */
static void refresh_uptimes(json_t *projects)
{
	usec_t now = now_realtime();
	size_t i, k;
	json_t *p, *s;
	json_array_foreach(projects, i, p)
	{
		json_array_foreach(json_object_get(p, "services"), k, s)
		{
			json_int_t start =
			    json_integer_value(json_object_get(s, "start_time_usec"));
			json_int_t pid = json_integer_value(json_object_get(s, "pid"));
			json_int_t up = pid > 0 && start > 0 && (json_int_t)now > start
					    ? (json_int_t)now - start
					    : 0;
			json_object_set_new(s, "uptime_usec", json_integer(up));
		}
	}
}

char *dash_state_dump(Dashboard *d)
{
	refresh_uptimes(d->projects);
	json_t *j = json_pack("{s:O,s:b,s:I}", "projects", d->projects, "superd", d->superd_seen,
			      "now_usec", (json_int_t)now_realtime());
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

static void publish_state(Dashboard *d)
{
	_cleanup_free_ char *s = dash_state_dump(d);
	if (s)
		dash_publish(d, "state", s);
}

static void apply_snapshot(Dashboard *d, const Locald__V1__StatusResult *res)
{
	json_t *projects = json_array();
	if (!projects)
		return;
	for (size_t i = 0; i < res->n_projects; i++) {
		const Locald__V1__ProjectStatus *p = res->projects[i];
		json_t *services = json_array();
		for (size_t k = 0; services && k < p->n_services; k++)
			json_array_append_new(services, service_json(p->services[k]));
		json_array_append_new(
		    projects, json_pack("{s:s,s:s,s:s,s:o}", "name", strempty(p->name), "domain",
					strempty(p->domain), "path", strempty(p->path), "services",
					services ? services : json_array()));
	}
	/* Publish only what changed: a quiet snapshot costs the clients nothing. */
	_cleanup_free_ char *before = json_dumps(d->projects, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *after = json_dumps(projects, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d->projects);
	d->projects = projects;
	if (!before || !after || !streq(before, after))
		publish_state(d);
}

static void request_snapshot(Dashboard *d);

static void apply_service(Dashboard *d, const Locald__V1__ServiceStateChanged *ch)
{
	const Locald__V1__ServiceStatus *s = ch->service;
	json_t *sj = service_json(s);
	if (!sj)
		return;
	json_t *p = project_find(d, strempty(s->project));
	if (!p) {
		p = json_pack("{s:s,s:s,s:s,s:[]}", "name", strempty(s->project), "domain", "",
			      "path", "", "services");
		if (!p) {
			json_decref(sj);
			return;
		}
		json_array_append_new(d->projects, p);
		request_snapshot(d); /* its domain and path */
	}
	size_t idx;
	json_t *services = json_object_get(p, "services");
	if (service_find(p, strempty(s->service), &idx))
		json_array_set(services, idx, sj);
	else
		json_array_append(services, sj);
	json_t *ev =
	    json_pack("{s:O,s:s,s:s}", "service", sj, "previous_state",
		      bus_service_state_name(ch->previous_state), "reason", strempty(ch->reason));
	json_decref(sj);
	_cleanup_free_ char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (text)
		dash_publish(d, "service", text);
}

/* ---- superd ---- */

static void on_status_reply(BusAsyncClient *client, int error, const BusReply *reply,
			    void *userdata)
{
	Dashboard *d = userdata;
	if (error == -ECANCELED)
		return;
	d->snapshot_inflight = false;
	if (error < 0 || bus_reply_get_error(reply) ||
	    reply->result_case != LOCALD__V1__REPLY__RESULT_STATUS) {
		if (d->superd_seen) {
			d->superd_seen = false;
			publish_state(d);
		}
		(void)loop_timer_set(d->retry_timer, RETRY_MS, 0);
		return;
	}
	d->superd_seen = true;
	apply_snapshot(d, reply->status);
	if (d->snapshot_again) {
		d->snapshot_again = false;
		request_snapshot(d);
	}
}

static void request_snapshot(Dashboard *d)
{
	if (d->snapshot_inflight) {
		d->snapshot_again = true;
		return;
	}
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Status st = LOCALD__V1__STATUS__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	if (bus_async_client_call(d->client, &req, CALL_TIMEOUT_MS, on_status_reply, d) < 0) {
		(void)loop_timer_set(d->retry_timer, RETRY_MS, 0);
		return;
	}
	d->snapshot_inflight = true;
}

static void on_retry(LoopTimer *t, void *userdata)
{
	request_snapshot(userdata);
}

static void on_event(BusSubscriber *s, const BusEvent *ev, void *userdata)
{
	Dashboard *d = userdata;
	if (ev->payload_case == LOCALD__V1__EVENT__PAYLOAD_SERVICE_STATE_CHANGED &&
	    ev->service_state_changed->service) {
		if (!d->superd_seen)
			request_snapshot(d);
		apply_service(d, ev->service_state_changed);
		if (!loop_timer_is_armed(d->resync_timer))
			(void)loop_timer_set(d->resync_timer, RESYNC_MS, 0);
		return;
	}
	if (ev->payload_case == LOCALD__V1__EVENT__PAYLOAD_LOG_LINE && ev->log_line) {
		const Locald__V1__LogLine *l = ev->log_line;
		json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s}", "project",
				      strempty(l->project), "service", strempty(l->service), "seq",
				      (json_int_t)l->seq, "time_usec", (json_int_t)l->time_usec,
				      "stream", stream_name(l->stream), "text", strempty(l->text),
				      "cursor", strempty(l->cursor));
		_cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (text)
			dash_publish(d, "log", text);
	}
}

static void on_gap(BusSubscriber *s, const BusGap *gap, void *userdata)
{
	Dashboard *d = userdata;
	if (streq_ptr(gap->family, "log"))
		/* Lines were dropped on the way: clients fetch them by their cursors. */
		dash_publish(d, "logs-gap", "{}");
	request_snapshot(d);
}

int dash_superd_start(Dashboard *d, const char *runtime_dir)
{
	_cleanup_free_ char *rpc = NULL, *events = NULL;
	int r = bus_endpoint(runtime_dir, "superd", BUS_SOCKET_RPC, &rpc);
	if (r >= 0)
		r = bus_endpoint(runtime_dir, "superd", BUS_SOCKET_EVENTS, &events);
	if (r < 0)
		return r;
	d->zmq = zmq_ctx_new();
	if (!d->zmq)
		return -ENOMEM;
	static const BusSubscriberCallbacks cb = { .event = on_event, .gap = on_gap };
	r = bus_subscriber_new(d->loop, d->zmq, events, &cb, d, &d->sub);
	/* Room for a burst of log lines (a test suite's output) before the bus drops some;
	 * what it drops anyway, clients fetch by cursor. */
	if (r >= 0)
		r = bus_subscriber_set_hwm(d->sub, 200000);
	if (r >= 0)
		r = bus_subscriber_subscribe(d->sub, "service.state.");
	if (r >= 0)
		r = bus_subscriber_subscribe(d->sub, "log.");
	if (r >= 0)
		r = bus_async_client_new(d->loop, d->zmq, rpc, &d->client);
	if (r >= 0)
		r = loop_timer_new(d->loop, RETRY_MS, 0, on_retry, d, &d->retry_timer);
	if (r >= 0)
		r = loop_timer_new(d->loop, RESYNC_MS, 0, on_retry, d, &d->resync_timer);
	if (r < 0)
		return r;
	loop_timer_stop(d->retry_timer);
	loop_timer_stop(d->resync_timer);
	request_snapshot(d);
	return 0;
}

void dash_superd_stop(Dashboard *d)
{
	d->client = bus_async_client_free(d->client); /* callbacks see -ECANCELED */
	d->sub = bus_subscriber_free(d->sub);
	if (d->zmq)
		zmq_ctx_term(d->zmq);
	d->zmq = NULL;
	d->retry_timer = loop_timer_free(d->retry_timer);
	d->resync_timer = loop_timer_free(d->resync_timer);
}

/* ---- helpers for handlers ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode (and '+' → ' ' in queries) into a new string; NULL on a bad escape. */
static char *url_decode(const char *s, size_t n, bool plus)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int a = i + 2 < n + 1 && i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int b = a >= 0 && i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (a < 0 || b < 0 || (a == 0 && b == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(a * 16 + b);
			i += 2;
		} else
			*o++ = plus && s[i] == '+' ? ' ' : s[i];
	}
	*o = 0;
	return out;
}

/* A query parameter, decoded, or NULL. */
static char *query_get(const char *query, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = query; p && *p;) {
		size_t len = strcspn(p, "&");
		if (len >= nl && strncmp(p, name, nl) == 0 && (p[nl] == '=' || len == nl))
			return p[nl] == '=' ? url_decode(p + nl + 1, len - nl - 1, true)
					    : strdup("");
		p += len;
		if (*p == '&')
			p++;
	}
	return NULL;
}

static int http_status_of(const BusErrorMessage *e)
{
	switch (e->code) {
	case LOCALD__V1__ERROR__CODE__NOT_FOUND:
		return 404;
	case LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT:
		return 400;
	case LOCALD__V1__ERROR__CODE__ALREADY_EXISTS:
	case LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION:
		return 409;
	case LOCALD__V1__ERROR__CODE__PERMISSION_DENIED:
		return 403;
	case LOCALD__V1__ERROR__CODE__UNAVAILABLE:
		return 503;
	case LOCALD__V1__ERROR__CODE__UNIMPLEMENTED:
		return 501;
	default:
		return 500;
	}
}

/* Answer a failed call; true if it failed. */
static bool reply_failed(DConn *c, int error, const BusReply *reply, BusCallCase want_result)
{
	if (error < 0) {
		dconn_respond_error(c, 503, "UNAVAILABLE",
				    error == -ETIMEDOUT ? "locald-superd did not answer in time"
							: "locald-superd is not running");
		return true;
	}
	const BusErrorMessage *e = bus_reply_get_error(reply);
	if (e) {
		json_t *j = json_pack("{s:{s:s,s:s,s:s}}", "error", "code",
				      bus_error_code_to_string(e->code), "message",
				      strempty(e->message), "hint", strempty(e->hint));
		dconn_respond_json(c, http_status_of(e), j);
		return true;
	}
	if ((int)reply->result_case != (int)want_result) {
		dconn_respond_error(c, 502, "INTERNAL", "locald-superd answered something else");
		return true;
	}
	return false;
}

typedef struct ApiCall {
	Dashboard *d;
	DConn *c;
	char *project, *service, *q;
	size_t n;
	json_t *detail;
	unsigned pending;
	json_t *results;
	int first_error;
} ApiCall;

static ApiCall *api_call_new(Dashboard *d, DConn *c, const char *project, const char *service)
{
	ApiCall *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->d = d;
	a->project = strdup(strempty(project));
	a->service = service ? strdup(service) : NULL;
	if (!a->project || (service && !a->service)) {
		free(a->project);
		free(a->service);
		free(a);
		return NULL;
	}
	a->c = dconn_ref(c);
	return a;
}

static void api_call_free(ApiCall *a)
{
	dconn_unref(a->c);
	free(a->project);
	free(a->service);
	free(a->q);
	json_decref(a->detail);
	json_decref(a->results);
	free(a);
}

static int send_call(Dashboard *d, DConn *c, BusRequest *req, uint64_t timeout, BusReplyFunc func,
		     ApiCall *a)
{
	int r = bus_async_client_call(d->client, req, timeout, func, a);
	if (r < 0)
		dconn_respond_error(c, 503, "UNAVAILABLE", "%s",
				    r == -ECONNREFUSED ? "locald-superd is not running"
						       : "cannot reach locald-superd");
	return r;
}

/* ---- service actions ---- */

static void on_action_reply(BusAsyncClient *client, int error, const BusReply *reply,
			    void *userdata)
{
	ApiCall *a = userdata;
	if (dconn_alive(a->c)) {
		const Locald__V1__ServiceStatus *s = NULL;
		if (error >= 0 && !bus_reply_get_error(reply)) {
			if (reply->result_case == LOCALD__V1__REPLY__RESULT_START_SERVICE)
				s = reply->start_service->service;
			else if (reply->result_case == LOCALD__V1__REPLY__RESULT_STOP_SERVICE)
				s = reply->stop_service->service;
			else if (reply->result_case == LOCALD__V1__REPLY__RESULT_RESTART_SERVICE)
				s = reply->restart_service->service;
		}
		if (!reply_failed(a->c, error, reply, reply ? (BusCallCase)reply->result_case : 0))
			dconn_respond_json(a->c, 200,
					   json_pack("{s:b,s:o}", "ok", true, "service",
						     s ? service_json(s) : json_null()));
	}
	api_call_free(a);
}

static void service_action(Dashboard *d, DConn *c, const char *project, const char *service,
			   const char *action)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__StartService st = LOCALD__V1__START_SERVICE__INIT;
	Locald__V1__StopService sp = LOCALD__V1__STOP_SERVICE__INIT;
	Locald__V1__RestartService rs = LOCALD__V1__RESTART_SERVICE__INIT;
	if (streq(action, "start")) {
		st.project = (char *)project;
		st.service = (char *)service;
		req.call_case = LOCALD__V1__REQUEST__CALL_START_SERVICE;
		req.start_service = &st;
	} else if (streq(action, "stop")) {
		sp.project = (char *)project;
		sp.service = (char *)service;
		req.call_case = LOCALD__V1__REQUEST__CALL_STOP_SERVICE;
		req.stop_service = &sp;
	} else if (streq(action, "restart")) {
		rs.project = (char *)project;
		rs.service = (char *)service;
		req.call_case = LOCALD__V1__REQUEST__CALL_RESTART_SERVICE;
		req.restart_service = &rs;
	} else {
		dconn_respond_error(c, 404, "NOT_FOUND",
				    "unknown action \"%s\" (start, stop or restart)", action);
		return;
	}
	ApiCall *a = api_call_new(d, c, project, service);
	if (!a) {
		dconn_respond_error(c, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	if (send_call(d, c, &req, ACTION_TIMEOUT_MS, on_action_reply, a) < 0)
		api_call_free(a);
}

/* ---- project actions: StopProject, or one call per service ---- */

static void on_project_reply(BusAsyncClient *client, int error, const BusReply *reply,
			     void *userdata)
{
	ApiCall *a = userdata;
	const BusErrorMessage *e = reply ? bus_reply_get_error(reply) : NULL;
	if ((error < 0 || e) && !a->first_error)
		a->first_error = error < 0 ? error : -EIO;
	if (e && a->results)
		json_array_append_new(a->results, json_string(strempty(e->message)));
	if (--a->pending > 0)
		return;
	if (dconn_alive(a->c)) {
		if (a->first_error == -EIO)
			dconn_respond_json(
			    a->c, 409,
			    json_pack("{s:{s:s,s:s,s:O}}", "error", "code", "FAILED_PRECONDITION",
				      "message", "some services refused", "details", a->results));
		else if (a->first_error < 0)
			dconn_respond_error(a->c, 503, "UNAVAILABLE",
					    "locald-superd is not running");
		else
			dconn_respond_json(a->c, 200, json_pack("{s:b}", "ok", true));
	}
	api_call_free(a);
}

static void project_action(Dashboard *d, DConn *c, const char *project, const char *action)
{
	json_t *p = project_find(d, project);
	if (!p) {
		dconn_respond_error(c, 404, "NOT_FOUND", "no project \"%s\"", project);
		return;
	}
	bool stop = streq(action, "stop"), start = streq(action, "start"),
	     restart = streq(action, "restart");
	if (!stop && !start && !restart) {
		dconn_respond_error(c, 404, "NOT_FOUND",
				    "unknown action \"%s\" (start, stop or restart)", action);
		return;
	}
	ApiCall *a = api_call_new(d, c, project, NULL);
	if (!a || !(a->results = json_array())) {
		if (a)
			api_call_free(a);
		dconn_respond_error(c, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	a->pending = 1; /* held while the calls go out */
	if (stop) {
		BusRequest req = LOCALD__V1__REQUEST__INIT;
		Locald__V1__StopProject m = LOCALD__V1__STOP_PROJECT__INIT;
		m.project = (char *)project;
		req.call_case = LOCALD__V1__REQUEST__CALL_STOP_PROJECT;
		req.stop_project = &m;
		if (bus_async_client_call(d->client, &req, ACTION_TIMEOUT_MS, on_project_reply,
					  a) >= 0)
			a->pending++;
		else
			a->first_error = -ECONNREFUSED;
	} else {
		size_t i;
		json_t *s;
		json_array_foreach(json_object_get(p, "services"), i, s)
		{
			const char *state = json_string_value(json_object_get(s, "state"));
			/* Start: what is not up already; restart: every service. */
			if (start && (streq_ptr(state, "running") || streq_ptr(state, "starting") ||
				      streq_ptr(state, "unhealthy") ||
				      streq_ptr(state, "waiting") || streq_ptr(state, "building")))
				continue;
			BusRequest req = LOCALD__V1__REQUEST__INIT;
			Locald__V1__StartService st = LOCALD__V1__START_SERVICE__INIT;
			Locald__V1__RestartService rs = LOCALD__V1__RESTART_SERVICE__INIT;
			char *name = (char *)json_string_value(json_object_get(s, "service"));
			if (start) {
				st.project = (char *)project;
				st.service = name;
				req.call_case = LOCALD__V1__REQUEST__CALL_START_SERVICE;
				req.start_service = &st;
			} else {
				rs.project = (char *)project;
				rs.service = name;
				req.call_case = LOCALD__V1__REQUEST__CALL_RESTART_SERVICE;
				req.restart_service = &rs;
			}
			if (bus_async_client_call(d->client, &req, ACTION_TIMEOUT_MS,
						  on_project_reply, a) >= 0)
				a->pending++;
			else if (!a->first_error)
				a->first_error = -ECONNREFUSED;
		}
	}
	on_project_reply(NULL, 0, NULL, a); /* drop the hold */
}

/* ---- logs ---- */

static bool text_matches(const char *text, const char *q)
{
	if (isempty(q))
		return true;
	size_t n = strlen(q);
	for (const char *p = text; *p; p++)
		if (strncasecmp(p, q, n) == 0)
			return true;
	return false;
}

static void on_logs_reply(BusAsyncClient *client, int error, const BusReply *reply, void *userdata)
{
	ApiCall *a = userdata;
	if (dconn_alive(a->c) &&
	    !reply_failed(a->c, error, reply, (BusCallCase)LOCALD__V1__REPLY__RESULT_LOGS)) {
		const Locald__V1__LogsResult *res = reply->logs;
		json_t *lines = json_array();
		size_t first = 0;
		if (a->q) {
			/* The last n matches. */
			size_t matches = 0;
			for (size_t i = res->n_lines; i > 0; i--)
				if (text_matches(strempty(res->lines[i - 1]->text), a->q) &&
				    ++matches == a->n) {
					first = i - 1;
					break;
				}
		}
		for (size_t i = first; lines && i < res->n_lines; i++) {
			const Locald__V1__LogLine *l = res->lines[i];
			if (a->q && !text_matches(strempty(l->text), a->q))
				continue;
			json_array_append_new(
			    lines,
			    json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s}", "project",
				      strempty(l->project), "service", strempty(l->service), "seq",
				      (json_int_t)l->seq, "time_usec", (json_int_t)l->time_usec,
				      "stream", stream_name(l->stream), "text", strempty(l->text),
				      "cursor", strempty(l->cursor)));
		}
		dconn_respond_json(a->c, 200,
				   json_pack("{s:o,s:s,s:b}", "lines", lines ? lines : json_array(),
					     "next_cursor", strempty(res->next_cursor), "more",
					     res->more));
	}
	api_call_free(a);
}

static void service_logs(Dashboard *d, DConn *c, const DReq *req, const char *project,
			 const char *service)
{
	_cleanup_free_ char *cursor = query_get(req->query, "cursor");
	_cleanup_free_ char *ns = query_get(req->query, "n");
	char *q = query_get(req->query, "q");
	size_t n = LOGS_DEFAULT;
	if (!isempty(ns)) {
		char *end = NULL;
		errno = 0;
		unsigned long long v = strtoull(ns, &end, 10);
		if (errno || !end || *end || v == 0 || v > LOGS_MAX || ns[0] == '-') {
			free(q);
			dconn_respond_error(c, 400, "INVALID_ARGUMENT",
					    "n must be a number from 1 to %d", LOGS_MAX);
			return;
		}
		n = (size_t)v;
	}
	ApiCall *a = api_call_new(d, c, project, service);
	if (!a) {
		free(q);
		dconn_respond_error(c, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	a->q = isempty(q) ? (free(q), NULL) : q;
	a->n = n;
	BusRequest breq = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Logs m = LOCALD__V1__LOGS__INIT;
	m.project = (char *)project;
	m.service = streq(service, "*") ? (char *)"" : (char *)service;
	m.cursor = cursor ? cursor : (char *)"";
	/* A search looks through more lines than it returns. */
	m.limit = (uint32_t)(a->q ? LOGS_MAX : n);
	m.tail = isempty(cursor);
	breq.call_case = LOCALD__V1__REQUEST__CALL_LOGS;
	breq.logs = &m;
	if (send_call(d, c, &breq, CALL_TIMEOUT_MS, on_logs_reply, a) < 0)
		api_call_free(a);
}

/* ---- service detail ---- */

static bool name_is_secret(const char *name)
{
	static const char *const words[] = { "SECRET", "TOKEN",      "PASSWORD", "PASSWD",
					     "KEY",    "CREDENTIAL", "AUTH",     "PRIVATE" };
	for (size_t i = 0; i < ELEMENTSOF(words); i++) {
		size_t n = strlen(words[i]);
		for (const char *p = name; *p; p++)
			if (strncasecmp(p, words[i], n) == 0)
				return true;
	}
	return false;
}

/* "postgres://user:pw@host/db" → "postgres://user:••••@host/db"; NULL if nothing to hide. */
static char *mask_url_password(const char *v)
{
	const char *scheme = strstr(v, "://");
	if (!scheme)
		return NULL;
	const char *auth = scheme + 3;
	size_t authlen = strcspn(auth, "/?#");
	const char *at = memrchr(auth, '@', authlen);
	if (!at)
		return NULL;
	const char *colon = memchr(auth, ':', (size_t)(at - auth));
	if (!colon || colon + 1 == at)
		return NULL;
	return strdupf("%.*s••••%s", (int)(colon + 1 - v), v, at);
}

static void on_env_reply(BusAsyncClient *client, int error, const BusReply *reply, void *userdata)
{
	ApiCall *a = userdata;
	if (dconn_alive(a->c)) {
		json_t *env = json_array();
		bool ok = error >= 0 && !bus_reply_get_error(reply) &&
			  reply->result_case == LOCALD__V1__REPLY__RESULT_GET_SERVICE_ENV;
		for (size_t i = 0; ok && env && i < reply->get_service_env->n_environment; i++) {
			const Locald__V1__EnvVar *e = reply->get_service_env->environment[i];
			const char *name = strempty(e->name), *value = strempty(e->value);
			bool masked = false;
			_cleanup_free_ char *m = NULL;
			if (name_is_secret(name) && *value) {
				value = "••••••••";
				masked = true;
			} else if ((m = mask_url_password(value))) {
				value = m;
				masked = true;
			}
			json_array_append_new(env, json_pack("{s:s,s:s,s:b}", "name", name, "value",
							     value, "masked", masked));
		}
		json_object_set_new(a->detail, "env", env ? env : json_array());
		if (!ok)
			json_object_set_new(a->detail, "env_error",
					    json_string("the environment is not available"));
		dconn_respond_json(a->c, 200, json_incref(a->detail));
	}
	api_call_free(a);
}

/* The command as configured (superd's status does not carry it): from the project file. */
static json_t *command_of(const char *dir, const char *service)
{
	if (isempty(dir))
		return json_null();
	static const char *const names[] = { "locald.toml", "Procfile" };
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		_cleanup_free_ char *path = path_join(dir, names[i]);
		if (!path || access(path, R_OK) < 0)
			continue;
		_cleanup_(project_freep) Project *p = NULL;
		DiagList diags = DIAG_LIST_INIT;
		int r = project_load(path, &p, &diags);
		diag_list_done(&diags);
		if (r < 0)
			return json_null();
		Service *s = project_find_service(p, service);
		if (!s)
			return json_null();
		if (s->command)
			return json_string(s->command);
		if (s->argv) {
			_cleanup_free_ char *joined = NULL;
			Buf b = BUF_INIT(0);
			STRV_FOREACH (arg, s->argv) {
				_cleanup_free_ char *q = shell_quote(*arg);
				(void)buf_printf(&b, "%s%s", b.len ? " " : "", q ? q : *arg);
			}
			joined = buf_steal(&b, NULL);
			return joined ? json_string(joined) : json_null();
		}
		return json_null();
	}
	return json_null();
}

static void service_detail(Dashboard *d, DConn *c, const char *project, const char *service)
{
	json_t *p = project_find(d, project);
	json_t *s = p ? service_find(p, service, NULL) : NULL;
	if (!s) {
		dconn_respond_error(c, 404, "NOT_FOUND", "no service \"%s\" in project \"%s\"",
				    service, project);
		return;
	}
	ApiCall *a = api_call_new(d, c, project, service);
	if (!a || !(a->detail = json_deep_copy(s))) {
		if (a)
			api_call_free(a);
		dconn_respond_error(c, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	json_object_set_new(a->detail, "command",
			    command_of(json_string_value(json_object_get(p, "path")), service));
	json_object_set_new(a->detail, "project_path", json_incref(json_object_get(p, "path")));
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__GetServiceEnv m = LOCALD__V1__GET_SERVICE_ENV__INIT;
	m.project = (char *)project;
	m.service = (char *)service;
	req.call_case = LOCALD__V1__REQUEST__CALL_GET_SERVICE_ENV;
	req.get_service_env = &m;
	if (send_call(d, c, &req, CALL_TIMEOUT_MS, on_env_reply, a) < 0)
		api_call_free(a);
}

/* ---- routing ---- */

/* Split "/a/b/c" into at most `max` decoded segments; -EINVAL on a bad one. */
static int split_path(const char *path, char **segs, size_t max, size_t *ret_n)
{
	size_t n = 0;
	for (const char *p = path; *p;) {
		if (*p == '/') {
			p++;
			continue;
		}
		size_t len = strcspn(p, "/");
		if (n == max)
			return -E2BIG;
		segs[n] = url_decode(p, len, false);
		if (!segs[n] || !*segs[n] || strchr(segs[n], '/'))
			return -EINVAL;
		n++;
		p += len;
	}
	*ret_n = n;
	return 0;
}

void dash_api_handle(Dashboard *d, DConn *c, const DReq *req)
{
	char *segs[6] = { 0 };
	size_t n = 0;
	int r = split_path(req->path, segs, ELEMENTSOF(segs), &n);
	bool get = streq(req->method, "GET") || streq(req->method, "HEAD");
	bool post = streq(req->method, "POST");
	if (r < 0) {
		dconn_respond_error(c, 404, "NOT_FOUND", "no such API path");
		goto out;
	}
	/* segs[0] == "api" */
	if (n == 2 && streq(segs[1], "state")) {
		if (!get)
			goto method;
		_cleanup_free_ char *s = dash_state_dump(d);
		if (!s)
			dconn_respond_error(c, 503, "UNAVAILABLE", "out of memory");
		else
			dconn_respond(c, 200, "application/json", "Cache-Control: no-store\r\n", s,
				      strlen(s));
		goto out;
	}
	if (n == 2 && streq(segs[1], "events")) {
		if (!streq(req->method, "GET"))
			goto method;
		const HttpField *f = http_head_field(req->head, "Last-Event-ID");
		_cleanup_free_ char *last = query_get(req->query, "last_event_id");
		dconn_start_sse(d, c, f ? f->value : last);
		goto out;
	}
	if (n >= 4 && streq(segs[1], "services")) {
		if (n == 4) {
			if (!get)
				goto method;
			service_detail(d, c, segs[2], segs[3]);
		} else if (n == 5 && streq(segs[4], "logs")) {
			if (!get)
				goto method;
			service_logs(d, c, req, segs[2], segs[3]);
		} else if (n == 5) {
			if (!post)
				goto method;
			service_action(d, c, segs[2], segs[3], segs[4]);
		} else
			dconn_respond_error(c, 404, "NOT_FOUND", "no such API path");
		goto out;
	}
	if (n == 4 && streq(segs[1], "projects")) {
		if (!post)
			goto method;
		project_action(d, c, segs[2], segs[3]);
		goto out;
	}
	dconn_respond_error(c, 404, "NOT_FOUND", "no such API path: %s", req->path);
	goto out;
method:
	dconn_respond_error(c, 405, "INVALID_ARGUMENT", "%s is not allowed on %s", req->method,
			    req->path);
out:
	for (size_t i = 0; i < ELEMENTSOF(segs); i++)
		free(segs[i]);
}
