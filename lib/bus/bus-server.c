/* SPDX-License-Identifier: MIT */
#include "bus-server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "bus-endpoint.h"
#include "bus-frames.h"
#include "paths.h"
#include "strutil.h"
#include "time-util.h"

/* Time the ROUTER gets at close to flush the last (error) replies. */
#define RPC_CLOSE_LINGER_MS 1000
/* Subscription messages are a topic prefix plus one byte. */
#define PUB_MAXMSGSIZE (BUS_TOPIC_MAX + 16)

typedef struct Handler {
	BusCallCase call;
	BusHandler func;
	void *userdata;
} Handler;

typedef struct Family {
	char name[BUS_FAMILY_MAX + 1];
	uint64_t seq;
} Family;

struct BusCall {
	BusServer *server;    /* NULL once answered or detached */
	BusCall *prev, *next; /* in server->deferred while deferred and unanswered */
	BusFrames envelope;
	BusRequest *request;
	usec_t deadline; /* CLOCK_MONOTONIC; 0 = none */
	bool in_dispatch;
	bool deferred; /* the handler owns it */
	bool released; /* ... and has let go of it (reply or free) */
	bool answered;
};

struct BusServer {
	Loop *loop;
	void *ctx;
	bool own_ctx;
	void *rpc, *pub;
	LoopZmq *rpc_source;
	LoopZmq *pub_source;
	LoopTimer *sweep;

	char *name, *rpc_path, *events_path;
	struct stat rpc_st, events_st;
	bool uid_filter;
	uid_t uid;

	Handler *handlers;
	size_t n_handlers;

	BusCall *deferred;
	size_t n_deferred;
	uint64_t call_timeout_ms;

	Family families[BUS_FAMILY_COUNT_MAX];
	size_t n_families;
	uint64_t epoch;
	usec_t start_time;

	BusServerStats stats;

	/* Topic prefixes some subscriber holds (XPUB tells the first subscribe and the last
	 * unsubscribe of each): events nobody would receive are not encoded at all. */
	char **subs;
	size_t n_subs;
	usec_t subs_checked;
};

/* ---- Sending ---- */

static void send_frames(BusServer *s, BusFrames *envelope, zmq_msg_t *body)
{
	zmq_msg_t frames[BUS_ENVELOPE_FRAMES_MAX + 1];
	size_t n = 0;

	for (size_t i = 0; i < envelope->n; i++) {
		zmq_msg_init(&frames[n]);
		zmq_msg_move(&frames[n++], &envelope->frames[i]);
	}
	envelope->n = 0;
	zmq_msg_init(&frames[n]);
	zmq_msg_move(&frames[n++], body);
	/* EHOSTUNREACH: the peer is gone (ROUTER_MANDATORY); EAGAIN: its queue is full. */
	if (loop_zmq_send(s->rpc_source, frames, n, ZMQ_DONTWAIT) < 0)
		s->stats.replies_dropped++;
}

static void send_error(BusServer *s, BusFrames *envelope, const char *request_id, const BusError *e)
{
	uint8_t buf[BUS_ERROR_REPLY_MAX];
	zmq_msg_t body;

	s->stats.errors++;
	size_t n = bus_error_reply_encode(request_id, e, buf);
	if (zmq_msg_init_size(&body, n) < 0) {
		/* Out of memory for 1 KiB: nothing left we could send. */
		s->stats.replies_dropped++;
		bus_frames_clear(envelope);
		return;
	}
	memcpy(zmq_msg_data(&body), buf, n);
	send_frames(s, envelope, &body);
}

static void free_buffer(void *data, void *hint)
{
	(void)hint;
	free(data);
}

/* Encode and send; on failure send the error that explains it. Returns 0 or -errno. */
static int send_reply(BusServer *s, BusFrames *envelope, const char *request_id, BusReply *reply)
{
	void *data = NULL;
	size_t size = 0;
	BusError e = {};
	zmq_msg_t body;
	int r;

	reply->request_id = (char *)request_id;
	r = bus_reply_encode(reply, &data, &size);
	if (r == -E2BIG) {
		bus_error_set(&e, LOCALD__V1__ERROR__CODE__INTERNAL,
			      "ask for less (e.g. Logs.limit)",
			      "reply exceeds the frame limit of %zu bytes", BUS_FRAME_MAX);
		send_error(s, envelope, request_id, &e);
		return r;
	}
	if (r >= 0 && zmq_msg_init_data(&body, data, size, free_buffer, NULL) < 0) {
		free(data);
		r = -ENOMEM;
	}
	if (r < 0) {
		bus_error_set(&e, bus_error_code_from_errno(r), "retry later",
			      "cannot encode reply: %s", strerror(-r));
		send_error(s, envelope, request_id, &e);
		return r;
	}
	send_frames(s, envelope, &body);
	return 0;
}

/* ---- Calls ---- */

static void call_unlink(BusCall *c)
{
	BusServer *s = c->server;
	if (!s || !c->deferred)
		return;
	if (c->prev || s->deferred == c) {
		if (c->prev)
			c->prev->next = c->next;
		else
			s->deferred = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->prev = c->next = NULL;
		s->n_deferred--;
	}
}

static void call_destroy(BusCall *c)
{
	call_unlink(c);
	bus_frames_clear(&c->envelope);
	bus_request_free(c->request);
	free(c);
}

static void call_maybe_destroy(BusCall *c)
{
	if (c->in_dispatch || (c->deferred && !c->released))
		return;
	call_destroy(c);
}

/* The call got its one reply (or cannot get one any more): detach it from the server. */
static void call_mark_answered(BusCall *c)
{
	call_unlink(c);
	c->answered = true;
	c->server = NULL;
	bus_frames_clear(&c->envelope);
}

static void call_answer_error(BusCall *c, const BusError *e)
{
	if (c->answered)
		return;
	if (c->server)
		send_error(c->server, &c->envelope, c->request->request_id, e);
	call_mark_answered(c);
}

BusCall *bus_call_defer(BusCall *c)
{
	BusServer *s = c->server;
	if (c->deferred || c->answered || !s)
		return c;
	c->deferred = true;
	c->next = s->deferred;
	if (s->deferred)
		s->deferred->prev = c;
	s->deferred = c;
	s->n_deferred++;
	if (s->call_timeout_ms > 0) {
		c->deadline = now_monotonic() + s->call_timeout_ms * USEC_PER_MSEC;
		if (!loop_timer_is_armed(s->sweep)) {
			uint64_t every =
			    MIN(MAX(s->call_timeout_ms / 4, (uint64_t)10), (uint64_t)1000);
			(void)loop_timer_set(s->sweep, every, every);
		}
	}
	return c;
}

int bus_call_reply(BusCall **call, BusReply *reply)
{
	BusCall *c = *call;
	int r;

	*call = NULL;
	if (!c)
		return -EINVAL;
	c->released = true;
	if (c->answered || !c->server)
		r = -ESTALE;
	else {
		r = send_reply(c->server, &c->envelope, c->request->request_id, reply);
		call_mark_answered(c);
	}
	call_maybe_destroy(c);
	return r;
}

_printf_(4, 0) static int call_reply_errorv(BusCall **call, BusErrorCode code, const char *hint,
					    const char *fmt, va_list ap)
{
	BusCall *c = *call;
	BusError e = {};
	int r = 0;

	*call = NULL;
	if (!c)
		return -EINVAL;
	c->released = true;
	if (c->answered || !c->server)
		r = -ESTALE;
	else {
		bus_error_setv(&e, code, hint, fmt, ap);
		call_answer_error(c, &e);
	}
	call_maybe_destroy(c);
	return r;
}

int bus_call_reply_error(BusCall **call, BusErrorCode code, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = call_reply_errorv(call, code, hint, fmt, ap);
	va_end(ap);
	return r;
}

int bus_call_reply_errno(BusCall **call, int error, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = call_reply_errorv(call, bus_error_code_from_errno(error), hint, fmt, ap);
	va_end(ap);
	return r;
}

BusCall *bus_call_free(BusCall *c)
{
	if (!c)
		return NULL;
	if (!c->answered) {
		BusError e = {};
		bus_error_set(&e, LOCALD__V1__ERROR__CODE__INTERNAL, NULL,
			      "the daemon dropped the call without answering");
		call_answer_error(c, &e);
	}
	c->released = true;
	call_maybe_destroy(c);
	return NULL;
}

const BusRequest *bus_call_get_request(BusCall *c)
{
	return c->request;
}

const char *bus_call_get_request_id(BusCall *c)
{
	return c->request->request_id;
}

BusServer *bus_call_get_server(BusCall *c)
{
	return c->server;
}

bool bus_call_is_answered(BusCall *c)
{
	return c->answered;
}

static void on_sweep(LoopTimer *t, void *userdata)
{
	BusServer *s = userdata;
	usec_t now = now_monotonic();
	BusCall *next;

	for (BusCall *c = s->deferred; c; c = next) {
		next = c->next;
		if (c->deadline == 0 || c->deadline > now)
			continue;
		BusError e = {};
		bus_error_set(&e, LOCALD__V1__ERROR__CODE__UNAVAILABLE, "retry later",
			      "%s did not answer within %" PRIu64 " ms", s->name,
			      s->call_timeout_ms);
		call_answer_error(c, &e);
		/* Still the handler's: it finishes the call (its reply gets -ESTALE). */
	}
	if (!s->deferred)
		loop_timer_stop(t);
}

/* ---- Dispatch ---- */

static const Handler *handler_find(BusServer *s, BusCallCase call)
{
	for (size_t i = 0; i < s->n_handlers; i++)
		if (s->handlers[i].call == call)
			return &s->handlers[i];
	return NULL;
}

static size_t peer_inflight(BusServer *s, zmq_msg_t *routing_id)
{
	size_t n = 0;
	for (BusCall *c = s->deferred; c; c = c->next)
		if (c->envelope.n > 0 && bus_frames_equal(&c->envelope.frames[0], routing_id))
			n++;
	return n;
}

static void answer_builtin(BusServer *s, BusFrames *envelope, const BusRequest *req)
{
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__Pong pong = LOCALD__V1__PONG__INIT;
	Locald__V1__Version version = LOCALD__V1__VERSION__INIT;

	if (req->call_case == LOCALD__V1__REQUEST__CALL_PING) {
		pong.token = req->ping->token;
		pong.daemon = s->name;
		pong.time_usec = (int64_t)now_realtime();
		reply.result_case = LOCALD__V1__REPLY__RESULT_PONG;
		reply.pong = &pong;
	} else {
		version.daemon = s->name;
		version.version = (char *)LOCALD_VERSION;
		version.api_version = BUS_API_VERSION;
		version.pid = (uint32_t)getpid();
		version.start_time_usec = (int64_t)s->start_time;
		version.epoch = s->epoch;
		reply.result_case = LOCALD__V1__REPLY__RESULT_VERSION;
		reply.version = &version;
	}
	(void)send_reply(s, envelope, req->request_id, &reply);
}

static void dispatch(BusServer *s, BusFrames *envelope, BusRequest **request)
{
	BusRequest *req = *request;
	BusError e = {};

	if (req->call_case == LOCALD__V1__REQUEST__CALL_PING ||
	    req->call_case == LOCALD__V1__REQUEST__CALL_GET_VERSION) {
		answer_builtin(s, envelope, req);
		return;
	}

	const Handler *h = handler_find(s, req->call_case);
	if (!h) {
		const char *name = bus_call_case_to_string(req->call_case);
		bus_error_set(
		    &e, LOCALD__V1__ERROR__CODE__UNIMPLEMENTED,
		    "check the daemon: Request fields 100-199 are superd's, 200-299 proxyd's, "
		    "300-399 fsd's, 400-499 vmmd's, 500-599 buildd's",
		    "%s does not implement %s (Request field %u)", s->name, strempty(name),
		    (unsigned)req->call_case);
		send_error(s, envelope, req->request_id, &e);
		return;
	}

	if (s->n_deferred >= BUS_SERVER_INFLIGHT_MAX) {
		bus_error_set(&e, LOCALD__V1__ERROR__CODE__UNAVAILABLE, "retry later",
			      "%s has too many calls in progress", s->name);
		send_error(s, envelope, req->request_id, &e);
		return;
	}
	if (peer_inflight(s, &envelope->frames[0]) >= BUS_PEER_INFLIGHT_MAX) {
		bus_error_set(&e, LOCALD__V1__ERROR__CODE__UNAVAILABLE,
			      "wait for replies before sending more calls",
			      "too many calls in progress from this client (limit %d)",
			      BUS_PEER_INFLIGHT_MAX);
		send_error(s, envelope, req->request_id, &e);
		return;
	}

	BusCall *c = calloc(1, sizeof(*c));
	if (!c) {
		bus_error_set(&e, LOCALD__V1__ERROR__CODE__UNAVAILABLE, "retry later",
			      "out of memory");
		send_error(s, envelope, req->request_id, &e);
		return;
	}
	c->server = s;
	bus_frames_move(&c->envelope, envelope);
	c->request = TAKE_PTR(*request);

	c->in_dispatch = true;
	int r = h->func(c, c->request, h->userdata);
	c->in_dispatch = false;

	if (!c->answered) {
		if (r < 0) {
			bus_error_set(&e, bus_error_code_from_errno(r), NULL, "%s failed: %s",
				      strempty(bus_call_case_to_string(c->request->call_case)),
				      strerror(-r));
			call_answer_error(c, &e);
		} else if (!c->deferred) {
			bus_error_set(&e, LOCALD__V1__ERROR__CODE__INTERNAL, NULL,
				      "the handler of %s returned without a reply",
				      strempty(bus_call_case_to_string(c->request->call_case)));
			call_answer_error(c, &e);
		}
	}
	call_maybe_destroy(c);
}

/* Another uid's message, when the kernel-level filter is not available: the peer's
 * credentials come with the message ("Peer-Address" ends in ":uid:gid:pid"). */
static bool peer_is_foreign(BusServer *s, zmq_msg_t *m)
{
	const char *addr = zmq_msg_gets(m, "Peer-Address");
	if (!addr)
		return false;
	const char *p[3] = {};
	for (const char *q = addr + strlen(addr); q > addr; q--)
		if (q[-1] == ':') {
			p[2] = p[1];
			p[1] = p[0];
			p[0] = q;
			if (p[2])
				break;
		}
	if (!p[2])
		return false;
	unsigned long uid = strtoul(p[0], NULL, 10);
	return uid != (unsigned long)s->uid && uid != 0;
}

static void on_rpc(LoopZmq *z, void *socket, void *userdata)
{
	BusServer *s = userdata;
	BusFrames frames = {};
	bool truncated = false;
	BusError e = {};

	if (bus_frames_recv(socket, &frames, &truncated) <= 0)
		return;
	s->stats.requests++;

	/* [routing id, (hops..., empty delimiter,) body] */
	zmq_msg_t *body = &frames.frames[frames.n - 1];
	BusFrames envelope = {};
	size_t n_env = frames.n - 1;
	bool ok = !truncated && frames.n >= 2 &&
		  (n_env == 1 || zmq_msg_size(&frames.frames[n_env - 1]) == 0);

	if (!s->uid_filter && peer_is_foreign(s, body)) {
		s->stats.foreign_dropped++;
		bus_frames_clear(&frames);
		return;
	}

	if (!ok) {
		/* Answer like REQ expects if there is a delimiter, else like DEALER. */
		size_t k = 1;
		for (size_t i = 1; i + 1 < frames.n; i++)
			if (zmq_msg_size(&frames.frames[i]) == 0) {
				k = i + 1;
				break;
			}
		bus_frames_take_prefix(&envelope, &frames, k);
		bus_frames_clear(&frames);
		bus_error_set(&e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
			      "send one frame holding a serialized locald.v1.Request (REQ adds an "
			      "empty delimiter frame before it, which is fine)",
			      "malformed message: %s",
			      truncated ? "too many frames" : "the request must be one frame");
		send_error(s, &envelope, "", &e);
		return;
	}

	bus_frames_take_prefix(&envelope, &frames, n_env);
	_cleanup_(bus_request_freep) BusRequest *req = NULL;
	int r = bus_request_decode(zmq_msg_data(body), zmq_msg_size(body), &req, &e);
	bus_frames_clear(&frames);
	if (r < 0) {
		send_error(s, &envelope, e.request_id, &e);
		return;
	}
	dispatch(s, &envelope, &req);
	bus_frames_clear(&envelope);
}

/* ---- Server ---- */

/* Read the (un)subscription messages XPUB has queued: 1 or 0, then the prefix. */
static void subs_update(BusServer *s)
{
	char buf[PUB_MAXMSGSIZE];
	int n;
	while ((n = zmq_recv(s->pub, buf, sizeof(buf), ZMQ_DONTWAIT)) > 0) {
		if (n > (int)sizeof(buf) || (buf[0] != 0 && buf[0] != 1))
			continue;
		size_t len = (size_t)n - 1;
		size_t i = 0;
		while (i < s->n_subs && !(strlen(s->subs[i]) == len && memcmp(s->subs[i], buf + 1, len) == 0))
			i++;
		if (buf[0] == 1 && i == s->n_subs) {
			char **ns = realloc(s->subs, (s->n_subs + 1) * sizeof(char *));
			char *p = ns ? strndup(buf + 1, len) : NULL;
			if (ns)
				s->subs = ns;
			if (p)
				s->subs[s->n_subs++] = p;
		} else if (buf[0] == 0 && i < s->n_subs) {
			free(s->subs[i]);
			s->subs[i] = s->subs[--s->n_subs];
		}
	}
}

bool bus_server_has_subscriber(BusServer *s, const char *topic)
{
	/* on_pub keeps the set current; a new subscription may still wait in libzmq (where
	 * PUB would have applied it at the next send), so look at most once a millisecond:
	 * zmq_recv() per log line would cost more than the event it saves. */
	usec_t now = now_monotonic();
	if (now - s->subs_checked >= 1000) {
		s->subs_checked = now;
		subs_update(s);
	}
	for (size_t i = 0; i < s->n_subs; i++)
		if (startswith(topic, s->subs[i]))
			return true;
	return false;
}

static void on_pub(LoopZmq *z, void *socket, void *userdata)
{
	subs_update(userdata);
}

static int setsockopt_int(void *socket, int option, int value)
{
	return zmq_setsockopt(socket, option, &value, sizeof(value)) < 0 ? negative_errno() : 0;
}

static int open_socket(BusServer *s, int type, const char *path, struct stat *ret_st, void **ret)
{
	void *sock = zmq_socket(s->ctx, type);
	int r;

	if (!sock)
		return negative_errno();
	int64_t maxmsg = type == ZMQ_ROUTER ? (int64_t)BUS_TRANSPORT_MAX : (int64_t)PUB_MAXMSGSIZE;
	r = zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ? negative_errno()
									      : 0;
	if (r >= 0)
		r = setsockopt_int(sock, ZMQ_LINGER, type == ZMQ_ROUTER ? RPC_CLOSE_LINGER_MS : 0);
	if (r >= 0)
		r = setsockopt_int(sock, ZMQ_SNDHWM,
				   type == ZMQ_ROUTER ? BUS_RPC_HWM : BUS_EVENTS_HWM);
	if (r >= 0 && type == ZMQ_ROUTER)
		r = setsockopt_int(sock, ZMQ_RCVHWM, BUS_RPC_HWM);
	if (r >= 0 && type == ZMQ_ROUTER)
		r = setsockopt_int(sock, ZMQ_ROUTER_MANDATORY, 1);
	if (r >= 0)
		s->uid_filter = bus_socket_restrict_uid(sock) >= 0;
	if (r >= 0)
		r = bus_bind_ipc(sock, path);
	if (r >= 0 && stat(path, ret_st) < 0)
		r = negative_errno();
	if (r < 0) {
		zmq_close(sock);
		return r;
	}
	*ret = sock;
	return 0;
}

int bus_server_new(Loop *loop, void *zmq_ctx, const char *runtime_dir, const char *name,
		   BusServer **ret)
{
	_cleanup_free_ char *dir = NULL;
	int r;

	if (!bus_daemon_name_is_valid(name))
		return -EINVAL;
	if (!runtime_dir) {
		r = locald_runtime_dir_ensure(&dir);
		if (r < 0)
			return r;
		runtime_dir = dir;
	}

	_cleanup_(bus_server_freep) BusServer *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->uid = getuid();
	s->call_timeout_ms = BUS_SERVER_CALL_TIMEOUT_MS_DEFAULT;
	s->start_time = now_realtime();
	/* Distinct per run: a restarted daemon's seq numbers are not confused with the old. */
	s->epoch = s->start_time ^ ((uint64_t)getpid() << 48);
	s->name = strdup(name);
	if (!s->name)
		return -ENOMEM;
	r = bus_socket_path(runtime_dir, name, BUS_SOCKET_RPC, &s->rpc_path);
	if (r < 0)
		return r;
	r = bus_socket_path(runtime_dir, name, BUS_SOCKET_EVENTS, &s->events_path);
	if (r < 0)
		return r;

	if (zmq_ctx) {
		s->ctx = zmq_ctx;
	} else {
		s->ctx = zmq_ctx_new();
		if (!s->ctx)
			return negative_errno();
		s->own_ctx = true;
	}

	r = open_socket(s, ZMQ_ROUTER, s->rpc_path, &s->rpc_st, &s->rpc);
	if (r < 0)
		return r;
	r = open_socket(s, ZMQ_XPUB, s->events_path, &s->events_st, &s->pub);
	if (r < 0)
		return r;

	r = loop_zmq_new(loop, s->rpc, on_rpc, s, &s->rpc_source);
	if (r < 0)
		return r;
	/* PUB has nothing to read, but watching it makes libzmq process its commands
	 * (new subscriptions, a subscriber's queue draining) when they come, not only at
	 * the next publish, whose event a still-"full" queue would drop. */
	r = loop_zmq_new(loop, s->pub, on_pub, s, &s->pub_source);
	if (r < 0)
		return r;
	r = loop_timer_new(loop, 1000, 1000, on_sweep, s, &s->sweep);
	if (r < 0)
		return r;
	loop_timer_stop(s->sweep);

	*ret = TAKE_PTR(s);
	return 0;
}

/* Remove our socket file, unless someone else's has replaced it. */
static void unlink_own(const char *path, const struct stat *st)
{
	struct stat now;
	if (path && st->st_ino != 0 && lstat(path, &now) == 0 && now.st_dev == st->st_dev &&
	    now.st_ino == st->st_ino)
		(void)unlink(path);
}

BusServer *bus_server_free(BusServer *s)
{
	if (!s)
		return NULL;

	while (s->deferred) {
		BusError e = {};
		bus_error_set(&e, LOCALD__V1__ERROR__CODE__UNAVAILABLE, "retry when it is back",
			      "%s is shutting down", s->name);
		call_answer_error(s->deferred, &e);
	}

	loop_zmq_free(s->rpc_source);
	loop_zmq_free(s->pub_source);
	loop_timer_free(s->sweep);
	if (s->rpc) {
		zmq_close(s->rpc);
		unlink_own(s->rpc_path, &s->rpc_st);
	}
	if (s->pub) {
		zmq_close(s->pub);
		unlink_own(s->events_path, &s->events_st);
	}
	if (s->own_ctx)
		zmq_ctx_term(s->ctx);
	for (size_t i = 0; i < s->n_subs; i++)
		free(s->subs[i]);
	free(s->subs);
	free(s->handlers);
	free(s->name);
	free(s->rpc_path);
	free(s->events_path);
	free(s);
	return NULL;
}

int bus_server_add_handler(BusServer *s, BusCallCase call, BusHandler handler, void *userdata)
{
	if (call == LOCALD__V1__REQUEST__CALL_PING ||
	    call == LOCALD__V1__REQUEST__CALL_GET_VERSION || !bus_call_case_to_string(call) ||
	    !handler)
		return -EINVAL;
	Handler *h = (Handler *)handler_find(s, call);
	if (!h) {
		Handler *n = realloc(s->handlers, (s->n_handlers + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->handlers = n;
		h = &s->handlers[s->n_handlers++];
	}
	*h = (Handler){ call, handler, userdata };
	return 0;
}

void bus_server_set_call_timeout(BusServer *s, uint64_t timeout_ms)
{
	s->call_timeout_ms = timeout_ms;
}

static Family *family_get(BusServer *s, const char *name)
{
	for (size_t i = 0; i < s->n_families; i++)
		if (streq(s->families[i].name, name))
			return &s->families[i];
	if (s->n_families >= BUS_FAMILY_COUNT_MAX)
		return NULL;
	Family *f = &s->families[s->n_families++];
	strscpy(f->name, sizeof(f->name), name);
	f->seq = 0;
	return f;
}

int bus_server_publish(BusServer *s, const char *topic, BusEvent *event, uint64_t *ret_seq)
{
	char family[BUS_FAMILY_MAX + 1];
	void *data = NULL;
	size_t size = 0;
	int r;

	r = bus_topic_family(topic, family, sizeof(family));
	if (r < 0)
		return -EINVAL;
	Family *f = family_get(s, family);
	if (!f)
		return -ENOSPC;

	event->topic = (char *)topic;
	event->family = f->name;
	event->seq = f->seq + 1;
	event->time_usec = (int64_t)now_realtime();
	event->epoch = s->epoch;
	r = bus_event_encode(event, &data, &size);
	if (r < 0)
		return r;
	f->seq++;

	zmq_msg_t m[2];
	size_t tlen = strlen(topic);
	if (zmq_msg_init_size(&m[0], tlen) < 0) {
		free(data);
		return -ENOMEM;
	}
	memcpy(zmq_msg_data(&m[0]), topic, tlen);
	if (zmq_msg_init_data(&m[1], data, size, free_buffer, NULL) < 0) {
		zmq_msg_close(&m[0]);
		free(data);
		return -ENOMEM;
	}
	/* PUB never blocks: a subscriber past its HWM misses this one and sees a gap. */
	if (zmq_msg_send(&m[0], s->pub, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_msg_send(&m[1], s->pub, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m[0]);
		zmq_msg_close(&m[1]);
	} else
		s->stats.events_published++;
	if (ret_seq)
		*ret_seq = f->seq;
	return 0;
}

int bus_server_skip_seq(BusServer *s, const char *family, uint64_t n)
{
	if (isempty(family) || strlen(family) > BUS_FAMILY_MAX)
		return -EINVAL;
	Family *f = family_get(s, family);
	if (!f)
		return -ENOSPC;
	f->seq += n;
	return 0;
}

const char *bus_server_get_name(BusServer *s)
{
	return s->name;
}

const char *bus_server_get_rpc_path(BusServer *s)
{
	return s->rpc_path;
}

const char *bus_server_get_events_path(BusServer *s)
{
	return s->events_path;
}

uint64_t bus_server_get_epoch(BusServer *s)
{
	return s->epoch;
}

bool bus_server_uid_filter_active(BusServer *s)
{
	return s->uid_filter;
}

void bus_server_get_stats(BusServer *s, BusServerStats *ret)
{
	*ret = s->stats;
	ret->deferred = s->n_deferred;
}
