/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "buf.h"
#include "parse-util.h"
#include "strutil.h"
#include "superd-bus.h"

#define LOGS_LIMIT_DEFAULT 1000
#define LOGS_LIMIT_MAX 10000
#define DIAG_DETAILS_MAX 50

/* ---- a tiny arena: protobuf-c replies are trees of small allocations ---- */

typedef struct Arena {
	void **ptrs;
	size_t n, allocated;
	bool failed;
} Arena;

static void *arena_track(Arena *a, void *p)
{
	if (!p) {
		a->failed = true;
		return NULL;
	}
	if (a->n == a->allocated) {
		size_t m = a->allocated ? a->allocated * 2 : 32;
		void **l = realloc(a->ptrs, sizeof(void *) * m);
		if (!l) {
			free(p);
			a->failed = true;
			return NULL;
		}
		a->ptrs = l;
		a->allocated = m;
	}
	return a->ptrs[a->n++] = p;
}

static void *arena_new(Arena *a, size_t size)
{
	return arena_track(a, calloc(1, size));
}

static void arena_done(Arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->ptrs[i]);
	free(a->ptrs);
	*a = (Arena){ 0 };
}

/* ---- waiting for a change to finish ---- */

typedef enum WaitKind {
	WAIT_UNIT_STOPPED,
	WAIT_UNIT_SETTLED,
} WaitKind;

typedef struct UnitWait {
	BusCall *call;
	char *project, *service;
	WaitKind kind;
} UnitWait;

struct SuperdBus {
	Loop *loop;
	BusServer *server;
	Engine *engine;
	UnitWait *waits;
	size_t n_waits;
	LoopTimer *waits_timer; /* check_waits() once the engine is at rest */
	bool shutdown;
	bool draining;
};

/* ---- status ---- */

static Locald__V1__HealthSource health_source_to_proto(const char *s, bool inferred)
{
	if (streq_ptr(s, "http"))
		return LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_HTTP;
	if (streq_ptr(s, "tcp"))
		return inferred ? LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_PORT
				: LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_TCP;
	if (streq_ptr(s, "command"))
		return LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_COMMAND;
	if (streq_ptr(s, "notify"))
		return LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_NOTIFY;
	if (streq_ptr(s, "log"))
		return LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_LOG;
	return LOCALD__V1__HEALTH_SOURCE__HEALTH_SOURCE_NONE;
}

static Locald__V1__ServiceStatus *service_status(Arena *a, Unit *u)
{
	UnitInfo i;
	unit_get_info(u, &i);
	Locald__V1__ServiceStatus *s = arena_new(a, sizeof(*s));
	if (!s)
		return NULL;
	locald__v1__service_status__init(s);
	s->project = (char *)i.project;
	s->service = (char *)i.service;
	s->type = (Locald__V1__ServiceType)(i.type + 1);
	s->state = (Locald__V1__ServiceState)(i.state + 1);
	s->pid = (uint32_t)(i.pid > 0 ? i.pid : 0);
	s->port = i.port;
	s->url = (char *)strempty(i.url);
	s->health = !i.health_known		    ? LOCALD__V1__HEALTH__HEALTH_UNKNOWN
		    : i.health == HEALTH_HEALTHY ? LOCALD__V1__HEALTH__HEALTH_PASSING
		    : i.health == HEALTH_UNHEALTHY ? LOCALD__V1__HEALTH__HEALTH_FAILING
						   : LOCALD__V1__HEALTH__HEALTH_UNKNOWN;
	const Project *cfg = engine_project_config(unit_project(u));
	const Service *svc = cfg ? project_find_service(cfg, i.service) : NULL;
	bool inferred = svc && svc->health_check.type == HEALTH_CHECK_AUTO;
	s->health_source = health_source_to_proto(i.health_source, inferred);
	s->health_detail = (char *)strempty(i.health_detail);
	s->restarts = i.restarts;
	s->uptime_usec = i.uptime;
	s->start_time_usec = (int64_t)i.start_time;
	s->status_reason = (char *)strempty(i.reason);
	s->cgroup = (char *)strempty(i.cgroup);
	if (i.has_exit) {
		Locald__V1__ExitStatus *x = arena_new(a, sizeof(*x));
		if (x) {
			locald__v1__exit_status__init(x);
			x->time_usec = (int64_t)i.exit_time;
			if (i.exit_status_unknown)
				x->unknown = true;
			else if (WIFEXITED(i.exit_status)) {
				x->exited = true;
				x->exit_code = WEXITSTATUS(i.exit_status);
			} else if (WIFSIGNALED(i.exit_status)) {
				x->signal = WTERMSIG(i.exit_status);
				x->signal_name = (char *)strempty(signal_to_string(x->signal));
				x->core_dumped = WCOREDUMP(i.exit_status);
			}
			s->last_exit = x;
		}
	}
	s->n_warnings = strv_length(i.warnings);
	s->warnings = (char **)i.warnings;
	s->n_depends_on = strv_length(i.depends_on);
	s->depends_on = (char **)i.depends_on;
	/* What the proxy needs to route it. A removed service is not in the config any more:
	 * it has no host, so the proxy drops its route at once. */
	s->autostart = svc ? svc->autostart : true;
	if (svc) {
		s->host = (char *)strempty(svc->host);
		if (svc->type == SERVICE_SITE)
			s->site_path = (char *)strempty(svc->path);
		s->idle_stop_usec = svc->idle_stop_ms * 1000;
	}
	return s;
}

static Locald__V1__ProjectStatus *project_status(Arena *a, EngineProject *p)
{
	Locald__V1__ProjectStatus *ps = arena_new(a, sizeof(*ps));
	if (!ps)
		return NULL;
	locald__v1__project_status__init(ps);
	ps->name = (char *)engine_project_name(p);
	ps->domain = (char *)strempty(engine_project_domain(p));
	ps->path = (char *)strempty(engine_project_path(p));
	size_t n = engine_project_n_units(p);
	ps->services = arena_new(a, sizeof(void *) * (n ? n : 1));
	if (!ps->services)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		ps->services[i] = service_status(a, engine_project_unit_at(p, i));
		if (!ps->services[i])
			return NULL;
	}
	ps->n_services = n;
	return ps;
}

/* ---- replies ---- */

static int reply_unit(BusCall **call, Unit *u, BusCallCase which)
{
	Arena a = { 0 };
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__ServiceStatus *s = service_status(&a, u);
	int r;
	if (!s || a.failed) {
		arena_done(&a);
		return bus_call_reply_errno(call, -ENOMEM, NULL, "out of memory");
	}
	/* Start/Stop/RestartServiceResult all hold just a ServiceStatus. */
	Locald__V1__StartServiceResult start = LOCALD__V1__START_SERVICE_RESULT__INIT;
	Locald__V1__StopServiceResult stop = LOCALD__V1__STOP_SERVICE_RESULT__INIT;
	Locald__V1__RestartServiceResult restart = LOCALD__V1__RESTART_SERVICE_RESULT__INIT;
	switch (which) {
	case LOCALD__V1__REQUEST__CALL_START_SERVICE:
		start.service = s;
		reply.result_case = LOCALD__V1__REPLY__RESULT_START_SERVICE;
		reply.start_service = &start;
		break;
	case LOCALD__V1__REQUEST__CALL_STOP_SERVICE:
		stop.service = s;
		reply.result_case = LOCALD__V1__REPLY__RESULT_STOP_SERVICE;
		reply.stop_service = &stop;
		break;
	default:
		restart.service = s;
		reply.result_case = LOCALD__V1__REPLY__RESULT_RESTART_SERVICE;
		reply.restart_service = &restart;
		break;
	}
	r = bus_call_reply(call, &reply);
	arena_done(&a);
	return r;
}

static int reply_project(BusCall **call, EngineProject *p, BusCallCase which, char *const *warnings)
{
	Arena a = { 0 };
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__ProjectStatus *ps = project_status(&a, p);
	if (!ps || a.failed) {
		arena_done(&a);
		return bus_call_reply_errno(call, -ENOMEM, NULL, "out of memory");
	}
	Locald__V1__ApplyProjectResult apply = LOCALD__V1__APPLY_PROJECT_RESULT__INIT;
	Locald__V1__StopProjectResult stop = LOCALD__V1__STOP_PROJECT_RESULT__INIT;
	if (which == LOCALD__V1__REQUEST__CALL_APPLY_PROJECT) {
		apply.project = ps;
		apply.n_warnings = strv_length(warnings);
		apply.warnings = (char **)warnings;
		reply.result_case = LOCALD__V1__REPLY__RESULT_APPLY_PROJECT;
		reply.apply_project = &apply;
	} else {
		stop.project = ps;
		reply.result_case = LOCALD__V1__REPLY__RESULT_STOP_PROJECT;
		reply.stop_project = &stop;
	}
	int r = bus_call_reply(call, &reply);
	arena_done(&a);
	return r;
}

/* ---- lookups ---- */

static int find_unit(SuperdBus *b, BusCall *call, const char *project, const char *service,
		     Unit **ret)
{
	EngineProject *p = engine_find_project(b->engine, strempty(project));
	if (!p) {
		bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND,
				     "`localctl status --all` lists the known projects",
				     "no project \"%s\"", strempty(project));
		return -ENOENT;
	}
	Unit *u = engine_project_find_unit(p, strempty(service));
	if (!u) {
		bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND,
				     "`localctl status` lists the services of the project",
				     "project \"%s\" has no service \"%s\"", project, strempty(service));
		return -ENOENT;
	}
	*ret = u;
	return 0;
}

/* ---- waits ---- */

static bool wait_done(UnitWait *w, Unit *u)
{
	UnitState s = unit_get_state(u);
	if (w->kind == WAIT_UNIT_STOPPED)
		return s != UNIT_STOPPING && s != UNIT_STARTING && s != UNIT_RUNNING &&
		       s != UNIT_UNHEALTHY && s != UNIT_BUILDING;
	return s == UNIT_RUNNING || s == UNIT_FAILED || s == UNIT_BLOCKED || s == UNIT_EXITED ||
	       s == UNIT_STOPPED;
}

static int add_wait(SuperdBus *b, BusCall *call, Unit *u, WaitKind kind)
{
	UnitWait w = { .kind = kind };
	w.project = strdup(engine_project_name(unit_project(u)));
	w.service = strdup(unit_name(u));
	UnitWait *l = realloc(b->waits, sizeof(*l) * (b->n_waits + 1));
	if (!w.project || !w.service || !l) {
		free(w.project);
		free(w.service);
		if (l)
			b->waits = l;
		return -ENOMEM;
	}
	w.call = bus_call_defer(call);
	b->waits = l;
	b->waits[b->n_waits++] = w;
	return 0;
}

static void check_waits(SuperdBus *b)
{
	for (size_t i = 0; i < b->n_waits;) {
		UnitWait *w = &b->waits[i];
		EngineProject *p = engine_find_project(b->engine, w->project);
		Unit *u = p ? engine_project_find_unit(p, w->service) : NULL;
		if (u && !wait_done(w, u)) {
			i++;
			continue;
		}
		UnitWait done = *w;
		memmove(w, w + 1, sizeof(*w) * (b->n_waits - i - 1));
		b->n_waits--;
		if (!u)
			bus_call_reply_error(&done.call, LOCALD__V1__ERROR__CODE__NOT_FOUND, NULL,
					     "service %s:%s went away", done.project, done.service);
		else
			reply_unit(&done.call, u, bus_call_get_request(done.call)->call_case);
		free(done.project);
		free(done.service);
	}
}

void superd_bus_on_state(void *userdata, Unit *u, UnitState previous, const char *reason)
{
	SuperdBus *b = userdata;
	Arena a = { 0 };
	char topic[BUS_TOPIC_MAX + 1];
	if (strfmt(topic, sizeof(topic), "service.state.%s.%s",
		   engine_project_name(unit_project(u)), unit_name(u)) >= 0) {
		Locald__V1__ServiceStateChanged ch = LOCALD__V1__SERVICE_STATE_CHANGED__INIT;
		ch.service = service_status(&a, u);
		ch.previous_state = (Locald__V1__ServiceState)(previous + 1);
		ch.reason = (char *)strempty(reason);
		BusEvent ev = LOCALD__V1__EVENT__INIT;
		ev.payload_case = LOCALD__V1__EVENT__PAYLOAD_SERVICE_STATE_CHANGED;
		ev.service_state_changed = &ch;
		if (ch.service)
			(void)bus_server_publish(b->server, topic, &ev, NULL);
	}
	arena_done(&a);
	/*
	 * Not now: the engine calls us in the middle of a transition, before its scheduling
	 * pass. A restarted service is STOPPED here for an instant and then starts again
	 * in the same pass; a RestartService answered now would say "stopped".
	 */
	if (b->n_waits > 0 && b->waits_timer && !loop_timer_is_armed(b->waits_timer))
		(void)loop_timer_set(b->waits_timer, 0, 0);
	if (b->draining && engine_all_stopped(b->engine))
		loop_exit(b->loop, 0);
}

static char *format_cursor(const char *service, uint64_t seq)
{
	return strdupf("%s=%llu", service, (unsigned long long)seq);
}

static Locald__V1__LogStream stream_to_proto(LogStream s)
{
	return s == LOG_STREAM_STDERR	? LOCALD__V1__LOG_STREAM__LOG_STREAM_STDERR
	       : s == LOG_STREAM_SYSTEM ? LOCALD__V1__LOG_STREAM__LOG_STREAM_SYSTEM
					: LOCALD__V1__LOG_STREAM__LOG_STREAM_STDOUT;
}

/* Fill a LogLine from a record; text is valid UTF-8, raw holds the bytes when it is not. */
static int log_line_fill(Arena *a, Locald__V1__LogLine *l, const char *project,
			 const char *service, const LogRecord *rec)
{
	Buf text = BUF_INIT(0);
	int r = utf8_sanitize(rec->data, rec->len, &text);
	if (r < 0) {
		buf_done(&text);
		return r;
	}
	locald__v1__log_line__init(l);
	l->project = (char *)project;
	l->service = (char *)service;
	l->stream = stream_to_proto(rec->stream);
	l->time_usec = (int64_t)rec->time;
	l->text = arena_track(a, buf_steal(&text, NULL));
	l->truncated = (rec->flags & LOG_RECORD_MORE) != 0;
	l->continuation = (rec->flags & LOG_RECORD_CONTINUATION) != 0;
	l->seq = rec->seq;
	if (r > 0) {
		l->raw.data = (uint8_t *)rec->data;
		l->raw.len = rec->len;
	}
	l->cursor = arena_track(a, format_cursor(service, rec->seq + 1));
	return a->failed ? -ENOMEM : 0;
}

void superd_bus_on_log(void *userdata, Unit *u, const LogRecord *rec)
{
	SuperdBus *b = userdata;
	const char *project = engine_project_name(unit_project(u));
	char topic[BUS_TOPIC_MAX + 1];
	/* Nobody listening: skip the encoding (most of the cost of a log line). */
	if (strfmt(topic, sizeof(topic), "log.%s.%s", project, unit_name(u)) < 0 ||
	    !bus_server_has_subscriber(b->server, topic))
		return;
	Arena a = { 0 };
	Locald__V1__LogLine line;
	if (log_line_fill(&a, &line, project, unit_name(u), rec) >= 0) {
		BusEvent ev = LOCALD__V1__EVENT__INIT;
		ev.payload_case = LOCALD__V1__EVENT__PAYLOAD_LOG_LINE;
		ev.log_line = &line;
		/* A subscriber past its queue limit misses events; the store has every line. */
		(void)bus_server_publish(b->server, topic, &ev, NULL);
	}
	arena_done(&a);
}

/* ---- handlers ---- */

static int env_from_request(const Locald__V1__ApplyProject *m, char ***ret)
{
	_cleanup_strv_free_ char **env = NULL;
	for (size_t i = 0; i < m->n_environment; i++) {
		const Locald__V1__EnvVar *v = m->environment[i];
		if (isempty(v->name) || strchr(v->name, '='))
			return -EINVAL;
		_cleanup_free_ char *kv = strdupf("%s=%s", v->name, strempty(v->value));
		if (!kv || strv_push(&env, kv) < 0)
			return -ENOMEM;
		kv = NULL;
	}
	*ret = TAKE_PTR(env);
	return 0;
}

typedef struct ApplyWait {
	BusCall *call;
	char **warnings;
} ApplyWait;

static void on_apply_settled(EngineProject *p, bool settled, void *userdata)
{
	ApplyWait *w = userdata;
	if (settled)
		reply_project(&w->call, p, LOCALD__V1__REQUEST__CALL_APPLY_PROJECT, w->warnings);
	else
		bus_call_reply_error(&w->call, LOCALD__V1__ERROR__CODE__UNAVAILABLE, NULL,
				     "the project was forgotten while starting");
	strv_free(w->warnings);
	free(w);
}

static int on_apply(BusCall *call, const BusRequest *req, void *userdata)
{
	SuperdBus *b = userdata;
	const Locald__V1__ApplyProject *m = req->apply_project;
	int r;

	if (isempty(m->path) || m->path[0] != '/')
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
					    "pass the absolute path of the project directory",
					    "path \"%s\" is not absolute", strempty(m->path));
	_cleanup_strv_free_ char **env = NULL;
	r = env_from_request(m, &env);
	if (r < 0)
		return bus_call_reply_errno(&call, r, NULL, "bad environment variable name");
	_cleanup_strv_free_ char **only = NULL;
	for (size_t i = 0; i < m->n_services; i++)
		if (strv_extend(&only, m->services[i]) < 0)
			return -ENOMEM;

	_cleanup_diag_list_ DiagList diags = DIAG_LIST_INIT;
	EngineProject *p = NULL;
	r = engine_apply(b->engine, m->path, m->n_environment ? env : NULL, only, &diags, &p);

	_cleanup_strv_free_ char **lines = NULL;
	for (size_t i = 0; i < diags.n && i < DIAG_DETAILS_MAX; i++) {
		_cleanup_free_ char *s = diag_to_string(&diags.items[i]);
		if (s && strv_push(&lines, s) >= 0)
			s = NULL;
	}
	if (r == -ENOENT && only && diags.n == 0)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND,
					    "`localctl status` lists the services",
					    "no such service in the project");
	if (r < 0) {
		/* The first error is message + hint ("file:line:col: what"); every diagnostic,
		 * formatted as one line, is in details. */
		const Diag *first = NULL;
		for (size_t i = 0; i < diags.n && !first; i++)
			if (diags.items[i].severity == DIAG_ERROR)
				first = &diags.items[i];
		BusReply reply = LOCALD__V1__REPLY__INIT;
		Locald__V1__Error err = LOCALD__V1__ERROR__INIT;
		err.code = r == -ENOENT ? LOCALD__V1__ERROR__CODE__NOT_FOUND
			   : r == -EINVAL ? LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT
					  : bus_error_code_from_errno(r);
		char msg[1024];
		if (first && first->line)
			strfmt(msg, sizeof(msg), "%s:%u:%u: %s", strempty(first->file),
			       (unsigned)first->line, (unsigned)MAX(first->col, 1u), first->message);
		else if (first)
			strfmt(msg, sizeof(msg), "%s%s%s", strempty(first->file),
			       first->file ? ": " : "", first->message);
		else
			strscpy(msg, sizeof(msg), strerror(-r));
		err.message = msg;
		err.hint = (char *)(first && first->hint
					    ? first->hint
					    : "fix the config and apply again; running services were not touched");
		err.n_details = strv_length(lines);
		err.details = lines;
		reply.result_case = LOCALD__V1__REPLY__RESULT_ERROR;
		reply.error = &err;
		return bus_call_reply(&call, &reply);
	}
	if (!m->wait)
		return reply_project(&call, p, LOCALD__V1__REQUEST__CALL_APPLY_PROJECT, lines);

	ApplyWait *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->warnings = TAKE_PTR(lines);
	w->call = bus_call_defer(call);
	return engine_project_when_settled(p, false, on_apply_settled, w);
}

static void on_project_stopped(EngineProject *p, bool settled, void *userdata)
{
	BusCall *call = userdata;
	if (!settled) {
		bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__UNAVAILABLE, NULL,
				     "superd is going away");
		return;
	}
	if (bus_call_get_request(call)->call_case == LOCALD__V1__REQUEST__CALL_FORGET_PROJECT) {
		BusReply reply = LOCALD__V1__REPLY__INIT;
		Locald__V1__ForgetProjectResult res = LOCALD__V1__FORGET_PROJECT_RESULT__INIT;
		reply.result_case = LOCALD__V1__REPLY__RESULT_FORGET_PROJECT;
		reply.forget_project = &res;
		bus_call_reply(&call, &reply);
		return;
	}
	reply_project(&call, p, LOCALD__V1__REQUEST__CALL_STOP_PROJECT, NULL);
}

static int on_stop_project(BusCall *call, const BusRequest *req, void *userdata)
{
	SuperdBus *b = userdata;
	bool forget = req->call_case == LOCALD__V1__REQUEST__CALL_FORGET_PROJECT;
	const char *name = forget ? req->forget_project->project : req->stop_project->project;
	EngineProject *p = engine_find_project(b->engine, strempty(name));
	if (!p)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND,
					    "`localctl status --all` lists the known projects",
					    "no project \"%s\"", strempty(name));
	BusCall *deferred = bus_call_defer(call);
	if (forget) {
		/* reply first (when stopped), then the engine frees the project */
		int r = engine_project_when_settled(p, true, on_project_stopped, deferred);
		return r < 0 ? r : engine_project_forget(p);
	}
	engine_project_stop(p);
	return engine_project_when_settled(p, true, on_project_stopped, deferred);
}

static int on_service_call(BusCall *call, const BusRequest *req, void *userdata)
{
	SuperdBus *b = userdata;
	const char *project, *service;
	switch (req->call_case) {
	case LOCALD__V1__REQUEST__CALL_START_SERVICE:
		project = req->start_service->project;
		service = req->start_service->service;
		break;
	case LOCALD__V1__REQUEST__CALL_STOP_SERVICE:
		project = req->stop_service->project;
		service = req->stop_service->service;
		break;
	default:
		project = req->restart_service->project;
		service = req->restart_service->service;
		break;
	}
	Unit *u;
	if (find_unit(b, call, project, service, &u) < 0)
		return 0;
	int r;
	WaitKind kind = WAIT_UNIT_SETTLED;
	switch (req->call_case) {
	case LOCALD__V1__REQUEST__CALL_START_SERVICE:
		r = unit_start_request(u);
		break;
	case LOCALD__V1__REQUEST__CALL_STOP_SERVICE:
		r = unit_stop_request(u);
		kind = WAIT_UNIT_STOPPED;
		break;
	default:
		r = unit_restart_request(u);
		break;
	}
	if (r < 0)
		return bus_call_reply_errno(&call, r, NULL, "cannot change %s:%s", project, service);
	/* The state machine may already be where we wait for it to be; a restart never is,
	 * because its stop has not completed yet. */
	UnitWait probe = { .kind = kind };
	if (wait_done(&probe, u) && unit_get_state(u) != UNIT_STOPPING)
		return reply_unit(&call, u, req->call_case);
	r = add_wait(b, call, u, kind);
	return r;
}

static int on_status(BusCall *call, const BusRequest *req, void *userdata)
{
	SuperdBus *b = userdata;
	const char *only = req->status->project;
	Arena a = { 0 };
	size_t n = engine_n_projects(b->engine);
	Locald__V1__StatusResult res = LOCALD__V1__STATUS_RESULT__INIT;
	res.projects = arena_new(&a, sizeof(void *) * (n ? n : 1));
	for (size_t i = 0; res.projects && i < n; i++) {
		EngineProject *p = engine_project_at(b->engine, i);
		if (!isempty(only) && !streq(only, engine_project_name(p)))
			continue;
		res.projects[res.n_projects++] = project_status(&a, p);
	}
	if (!isempty(only) && res.n_projects == 0 && !a.failed) {
		arena_done(&a);
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND,
					    "`localctl up` starts it",
					    "no project \"%s\"", only);
	}
	if (a.failed) {
		arena_done(&a);
		return -ENOMEM;
	}
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_STATUS;
	reply.status = &res;
	int r = bus_call_reply(&call, &reply);
	arena_done(&a);
	return r;
}

/* Cursor: "svc=seq,svc=seq" (next seq to read per service). */
static uint64_t cursor_for(const char *cursor, const char *service)
{
	size_t n = strlen(service);
	for (const char *p = cursor; p && *p;) {
		if (strncmp(p, service, n) == 0 && p[n] == '=') {
			uint64_t v = 0;
			for (const char *q = p + n + 1; *q >= '0' && *q <= '9'; q++)
				v = v * 10 + (uint64_t)(*q - '0');
			return v;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

static int on_logs(BusCall *call, const BusRequest *req, void *userdata)
{
	SuperdBus *b = userdata;
	const Locald__V1__Logs *m = req->logs;
	EngineProject *p = engine_find_project(b->engine, strempty(m->project));
	if (!p)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND, NULL,
					    "no project \"%s\"", strempty(m->project));
	size_t n_units = engine_project_n_units(p);
	_cleanup_free_ LogService **svcs = calloc(n_units ? n_units : 1, sizeof(LogService *));
	_cleanup_free_ uint64_t *cursors = calloc(n_units ? n_units : 1, sizeof(uint64_t));
	if (!svcs || !cursors)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < n_units; i++) {
		Unit *u = engine_project_unit_at(p, i);
		if (!isempty(m->service) && !streq(m->service, unit_name(u)))
			continue;
		svcs[n] = unit_log(u);
		cursors[n] = cursor_for(m->cursor, unit_name(u));
		n++;
	}
	if (n == 0)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND, NULL,
					    "project \"%s\" has no service \"%s\"", m->project,
					    m->service);

	LogFilter f = { .since = m->since_usec > 0 ? (usec_t)m->since_usec : 0 };
	for (size_t i = 0; i < m->n_streams; i++)
		switch (m->streams[i]) {
		case LOCALD__V1__LOG_STREAM__LOG_STREAM_STDOUT:
			f.stream_mask |= LOG_STREAM_MASK(LOG_STREAM_STDOUT);
			break;
		case LOCALD__V1__LOG_STREAM__LOG_STREAM_STDERR:
			f.stream_mask |= LOG_STREAM_MASK(LOG_STREAM_STDERR);
			break;
		case LOCALD__V1__LOG_STREAM__LOG_STREAM_SYSTEM:
			f.stream_mask |= LOG_STREAM_MASK(LOG_STREAM_SYSTEM);
			break;
		default:
			break;
		}
	size_t limit = m->limit ? MIN((size_t)m->limit, (size_t)LOGS_LIMIT_MAX) : LOGS_LIMIT_DEFAULT;

	/* Last N: find where each service's tail starts, then read merged from there. */
	if (m->tail && isempty(m->cursor)) {
		for (size_t i = 0; i < n; i++) {
			_cleanup_log_read_result_ LogReadResult t = { 0 };
			if (logstore_tail(svcs[i], limit, &f, &t) >= 0 && t.n_records > 0)
				cursors[i] = t.records[0].seq;
			else
				cursors[i] = t.end_cursor;
		}
	}

	_cleanup_log_read_result_ LogReadResult res = { 0 };
	int r = logstore_read_merged(svcs, n, cursors, m->tail && isempty(m->cursor) ? SIZE_MAX : limit,
				     &f, &res);
	if (r < 0)
		return bus_call_reply_errno(&call, r, NULL, "reading logs failed");
	size_t first = res.n_records > limit ? res.n_records - limit : 0;

	Arena a = { 0 };
	Locald__V1__LogsResult out = LOCALD__V1__LOGS_RESULT__INIT;
	out.lines = arena_new(&a, sizeof(void *) * (res.n_records ? res.n_records : 1));
	for (size_t i = first; out.lines && i < res.n_records; i++) {
		Locald__V1__LogLine *l = arena_new(&a, sizeof(*l));
		if (!l)
			break;
		const LogRecord *rec = &res.records[i];
		const char *svc = logstore_service(svcs[rec->source]);
		if (log_line_fill(&a, l, m->project, svc, rec) < 0)
			break;
		out.lines[out.n_lines++] = l;
	}
	_cleanup_buf_ Buf cur = BUF_INIT(1 << 20);
	for (size_t i = 0; i < n; i++)
		(void)buf_printf(&cur, "%s%s=%llu", i ? "," : "", logstore_service(svcs[i]),
				 (unsigned long long)cursors[i]);
	out.next_cursor = cur.data ? cur.data : (char *)"";
	out.more = res.more;
	if (a.failed) {
		arena_done(&a);
		return -ENOMEM;
	}
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_LOGS;
	reply.logs = &out;
	r = bus_call_reply(&call, &reply);
	arena_done(&a);
	return r;
}

static int on_env(BusCall *call, const BusRequest *req, void *userdata)
{
	SuperdBus *b = userdata;
	Unit *u;
	if (find_unit(b, call, req->get_service_env->project, req->get_service_env->service, &u) < 0)
		return 0;
	_cleanup_strv_free_ char **env = NULL;
	int r = unit_get_env(u, &env);
	if (r < 0)
		return bus_call_reply_errno(&call, r, NULL, "cannot compute the environment");
	size_t n = strv_length(env);
	_cleanup_free_ Locald__V1__EnvVar *vars = calloc(n ? n : 1, sizeof(*vars));
	_cleanup_free_ Locald__V1__EnvVar **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!vars || !ptrs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		locald__v1__env_var__init(&vars[i]);
		char *eq = strchr(env[i], '=');
		if (eq)
			*eq = 0;
		vars[i].name = env[i];
		vars[i].value = eq ? eq + 1 : (char *)"";
		ptrs[i] = &vars[i];
	}
	Locald__V1__GetServiceEnvResult res = LOCALD__V1__GET_SERVICE_ENV_RESULT__INIT;
	res.n_environment = n;
	res.environment = ptrs;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_GET_SERVICE_ENV;
	reply.get_service_env = &res;
	return bus_call_reply(&call, &reply);
}

static int on_shutdown(BusCall *call, const BusRequest *req, void *userdata)
{
	SuperdBus *b = userdata;
	b->shutdown = true;
	Locald__V1__ShutdownResult res = LOCALD__V1__SHUTDOWN_RESULT__INIT;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_SHUTDOWN;
	reply.shutdown = &res;
	int r = bus_call_reply(&call, &reply);
	loop_exit(b->loop, 0);
	return r;
}

void superd_bus_set_engine(SuperdBus *b, Engine *engine)
{
	b->engine = engine;
}

void superd_bus_drain(SuperdBus *b)
{
	b->draining = true;
}

bool superd_bus_shutdown_requested(SuperdBus *b)
{
	return b->shutdown;
}

static void on_waits_timer(LoopTimer *t, void *userdata)
{
	check_waits(userdata);
}

int superd_bus_new(Loop *loop, BusServer *server, Engine *engine, SuperdBus **ret)
{
	SuperdBus *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->loop = loop;
	b->server = server;
	b->engine = engine;
	int r = loop_timer_new(loop, 0, 0, on_waits_timer, b, &b->waits_timer);
	if (r < 0) {
		free(b);
		return r;
	}
	loop_timer_stop(b->waits_timer);
	static const struct {
		BusCallCase call;
		BusHandler handler;
	} table[] = {
		{ LOCALD__V1__REQUEST__CALL_APPLY_PROJECT, on_apply },
		{ LOCALD__V1__REQUEST__CALL_STOP_PROJECT, on_stop_project },
		{ LOCALD__V1__REQUEST__CALL_FORGET_PROJECT, on_stop_project },
		{ LOCALD__V1__REQUEST__CALL_START_SERVICE, on_service_call },
		{ LOCALD__V1__REQUEST__CALL_STOP_SERVICE, on_service_call },
		{ LOCALD__V1__REQUEST__CALL_RESTART_SERVICE, on_service_call },
		{ LOCALD__V1__REQUEST__CALL_STATUS, on_status },
		{ LOCALD__V1__REQUEST__CALL_LOGS, on_logs },
		{ LOCALD__V1__REQUEST__CALL_GET_SERVICE_ENV, on_env },
		{ LOCALD__V1__REQUEST__CALL_SHUTDOWN, on_shutdown },
	};
	for (size_t i = 0; i < ELEMENTSOF(table); i++) {
		r = bus_server_add_handler(server, table[i].call, table[i].handler, b);
		if (r < 0) {
			loop_timer_free(b->waits_timer);
			free(b);
			return r;
		}
	}
	*ret = b;
	return 0;
}

SuperdBus *superd_bus_free(SuperdBus *b)
{
	if (!b)
		return NULL;
	for (size_t i = 0; i < b->n_waits; i++) {
		bus_call_reply_error(&b->waits[i].call, LOCALD__V1__ERROR__CODE__UNAVAILABLE, NULL,
				     "superd is shutting down");
		free(b->waits[i].project);
		free(b->waits[i].service);
	}
	free(b->waits);
	loop_timer_free(b->waits_timer);
	free(b);
	return NULL;
}
