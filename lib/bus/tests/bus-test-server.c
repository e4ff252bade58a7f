/* SPDX-License-Identifier: MIT */
/*
 * A bus server for tests (not a shipped daemon): answers Ping and GetVersion (the
 * library does), Echo (optionally after a delay, i.e. asynchronously) and EmitEvents
 * (publishes DebugEvents). Runs until SIGTERM or SIGINT.
 *
 *     bus-test-server [--name NAME] [--runtime-dir DIR]
 *
 * Prints "ready <rpc endpoint> <events endpoint>" on stdout once both sockets are bound.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"
#include "parse-util.h"
#include "strutil.h"

#define EMIT_COUNT_MAX 1000000u

typedef struct Delayed Delayed;
struct Delayed {
	Delayed *prev, *next;
	struct Server *srv;
	BusCall *call;
	LoopTimer *timer;
};

typedef struct Server {
	Loop *loop;
	BusServer *bus;
	Delayed *delayed;
} Server;

static void delayed_free(Server *srv, Delayed *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		srv->delayed = d->next;
	if (d->next)
		d->next->prev = d->prev;
	loop_timer_free(d->timer);
	bus_call_free(d->call);
	free(d);
}

static void echo_reply(BusCall **call)
{
	const BusRequest *req = bus_call_get_request(*call);
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__EchoResult result = LOCALD__V1__ECHO_RESULT__INIT;

	result.payload = req->echo->payload;
	reply.result_case = LOCALD__V1__REPLY__RESULT_ECHO;
	reply.echo = &result;
	int r = bus_call_reply(call, &reply);
	if (r < 0 && r != -ESTALE)
		log_warning_errno(r, "echo reply failed: %m");
}

static void on_delay(LoopTimer *t, void *userdata)
{
	Delayed *d = userdata;
	(void)t;
	echo_reply(&d->call);
	delayed_free(d->srv, d);
}

static int on_echo(BusCall *call, const BusRequest *req, void *userdata)
{
	Server *srv = userdata;

	if (req->echo->delay_ms == 0) {
		echo_reply(&call);
		return 0;
	}
	Delayed *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	int r = loop_timer_new(srv->loop, req->echo->delay_ms, 0, on_delay, d, &d->timer);
	if (r < 0) {
		free(d);
		return r;
	}
	d->srv = srv;
	d->call = bus_call_defer(call);
	d->next = srv->delayed;
	if (srv->delayed)
		srv->delayed->prev = d;
	srv->delayed = d;
	return 0;
}

static int on_emit_events(BusCall *call, const BusRequest *req, void *userdata)
{
	Server *srv = userdata;
	const Locald__V1__EmitEvents *em = req->emit_events;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__EmitEventsResult result = LOCALD__V1__EMIT_EVENTS_RESULT__INIT;
	char family[BUS_FAMILY_MAX + 1];
	int r;

	if (bus_topic_family(em->topic, family, sizeof(family)) < 0)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
					    "topics are dot-separated, e.g. test.a",
					    "invalid topic '%s'", em->topic);
	if (em->count > EMIT_COUNT_MAX)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, NULL,
					    "count %" PRIu32 " exceeds %u", em->count,
					    EMIT_COUNT_MAX);
	if (em->skip > 0) {
		r = bus_server_skip_seq(srv->bus, family, em->skip);
		if (r < 0)
			return r;
	}
	for (uint32_t i = 0; i < em->count; i++) {
		BusEvent ev = LOCALD__V1__EVENT__INIT;
		Locald__V1__DebugEvent dbg = LOCALD__V1__DEBUG_EVENT__INIT;
		char text[32];
		uint64_t seq;

		(void)strfmt(text, sizeof(text), "event %" PRIu32, i);
		dbg.index = i;
		dbg.text = text;
		ev.payload_case = LOCALD__V1__EVENT__PAYLOAD_DEBUG;
		ev.debug = &dbg;
		r = bus_server_publish(srv->bus, em->topic, &ev, &seq);
		if (r < 0)
			return r;
		if (i == 0)
			result.first_seq = seq;
		result.last_seq = seq;
	}
	reply.result_case = LOCALD__V1__REPLY__RESULT_EMIT_EVENTS;
	reply.emit_events = &result;
	return bus_call_reply(&call, &reply);
}

static void on_signal(LoopSignal *s, int signo, void *userdata)
{
	(void)s;
	log_info("%s: exiting", signal_to_string(signo) ? signal_to_string(signo) : "signal");
	loop_exit(userdata, 0);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "runtime-dir", required_argument, NULL, 'r' },
		{},
	};
	const char *name = "test", *runtime_dir = NULL;
	Server srv = {};
	LoopSignal *sigterm = NULL, *sigint = NULL;
	int c, r;

	log_setup("bus-test-server");
	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'r':
			runtime_dir = optarg;
			break;
		default:
			return EXIT_FAILURE;
		}

	r = loop_new(&srv.loop);
	if (r < 0) {
		log_error_errno(r, "loop: %m");
		return EXIT_FAILURE;
	}
	r = loop_signal_new(srv.loop, SIGTERM, on_signal, srv.loop, &sigterm);
	if (r >= 0)
		r = loop_signal_new(srv.loop, SIGINT, on_signal, srv.loop, &sigint);
	if (r < 0) {
		log_error_errno(r, "signals: %m");
		goto finish;
	}
	r = bus_server_new(srv.loop, NULL, runtime_dir, name, &srv.bus);
	if (r < 0) {
		log_error_errno(r, "cannot serve the bus as '%s': %m", name);
		goto finish;
	}
	r = bus_server_add_handler(srv.bus, LOCALD__V1__REQUEST__CALL_ECHO, on_echo, &srv);
	if (r >= 0)
		r = bus_server_add_handler(srv.bus, LOCALD__V1__REQUEST__CALL_EMIT_EVENTS,
					   on_emit_events, &srv);
	if (r < 0) {
		log_error_errno(r, "handlers: %m");
		goto finish;
	}
	if (!bus_server_uid_filter_active(srv.bus))
		log_warning("ZMQ_IPC_FILTER_UID unavailable: only file modes keep other users out");

	printf("ready ipc://%s ipc://%s\n", bus_server_get_rpc_path(srv.bus),
	       bus_server_get_events_path(srv.bus));
	fflush(stdout);
	r = loop_run(srv.loop);

finish:
	srv.bus = bus_server_free(srv.bus);
	while (srv.delayed)
		delayed_free(&srv, srv.delayed);
	loop_signal_free(sigterm);
	loop_signal_free(sigint);
	loop_free(srv.loop);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
