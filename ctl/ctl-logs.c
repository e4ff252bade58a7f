/* SPDX-License-Identifier: MIT */
/*
 * `logs`: stored lines by cursor (merged by time across services by superd), then with
 * -f every new line: subscribed to log.<project>. first, an event triggers a read from
 * the cursor (a burst of events is one read), and a 1 s tick reads too in case events
 * were dropped. The store is the source of truth; events are only a doorbell.
 */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "parse-util.h"
#include "strutil.h"
#include "time-util.h"

static const char logs_help[] =
    "Usage: localctl logs [-f] [-n N] [--since DURATION] [--json] [-t] [SERVICE…]\n\n"
    "Show the logs of the SERVICEs (default: every service of the project found from\n"
    "the current directory), merged by time, each line as `service | text`. SERVICE\n"
    "may be project:service; `project:` means the whole project.\n\n"
    "  -f, --follow        keep printing new lines until Ctrl-C\n"
    "  -n, --lines N       the last N lines (default 100; 0 or \"all\": everything)\n"
    "      --since D       lines from the last D (\"30s\", \"5m\", \"1h\")\n"
    "  -t, --timestamps    prefix each line with its time\n"
    "      --json          one JSON object per line (time_usec, project, service,\n"
    "                      stream, text)\n";

void log_printer_done(LogPrinter *p)
{
	p->services = strv_free(p->services);
}

static size_t printer_index(LogPrinter *p, const char *service)
{
	size_t i = 0;
	STRV_FOREACH (s, p->services) {
		if (streq(*s, service))
			return i;
		i++;
	}
	if (strv_extend(&p->services, service) < 0)
		return 0;
	p->width = MAX(p->width, strlen(service));
	return i;
}

void log_printer_print(LogPrinter *p, const Locald__V1__LogLine *l)
{
	Ctl *ctl = p->ctl;
	if (p->json) {
		json_t *o =
		    json_pack("{s:I,s:s,s:s,s:s,s:s,s:b}", "time_usec", (json_int_t)l->time_usec,
			      "project", strempty(l->project), "service", strempty(l->service),
			      "stream", ctl_stream_name(l->stream), "text", strempty(l->text),
			      "continued", (int)l->truncated);
		if (o) {
			json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			json_decref(o);
		}
		return;
	}
	size_t idx = printer_index(p, strempty(l->service));
	if (p->timestamps) {
		time_t t = (time_t)(l->time_usec / 1000000);
		struct tm tm;
		char ts[32] = "";
		if (localtime_r(&t, &tm))
			strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
		printf("%s%s.%03d%s ", ctl_color(ctl, false, ANSI_DIM), ts,
		       (int)(l->time_usec / 1000 % 1000), ctl_color(ctl, false, ANSI_RESET));
	}
	bool sys = l->stream == LOCALD__V1__LOG_STREAM__LOG_STREAM_SYSTEM;
	printf("%s%-*s |%s %s%s%s\n", ctl_color(ctl, false, ctl_service_color(idx)), (int)p->width,
	       strempty(l->service), ctl_color(ctl, false, ANSI_RESET),
	       sys ? ctl_color(ctl, false, ANSI_DIM) : "", strempty(l->text),
	       sys ? ctl_color(ctl, false, ANSI_RESET) : "");
}

void ctl_print_last_lines(Ctl *ctl, BusZmtpClient *c, const char *project, const char *service,
			  unsigned n)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Logs lg = LOCALD__V1__LOGS__INIT;
	lg.project = (char *)project;
	lg.service = (char *)service;
	lg.tail = true;
	lg.limit = n;
	req.call_case = LOCALD__V1__REQUEST__CALL_LOGS;
	req.logs = &lg;
	BusReply *reply = NULL;
	if (bus_zmtp_client_call(c, &req, 3000, &reply) < 0)
		return;
	if (reply->result_case == LOCALD__V1__REPLY__RESULT_LOGS && reply->logs->n_lines) {
		fprintf(stderr, "last lines of %s:\n", service);
		for (size_t i = 0; i < reply->logs->n_lines; i++)
			fprintf(stderr, "  %s| %s\n",
				reply->logs->lines[i]->stream ==
					LOCALD__V1__LOG_STREAM__LOG_STREAM_SYSTEM
				    ? "*"
				    : " ",
				reply->logs->lines[i]->text);
	}
	bus_reply_free(reply);
}

typedef struct Follow {
	Ctl *ctl;
	BusZmtpClient *client;
	LogPrinter printer;
	char *project;
	char *service; /* the one service asked for, or NULL */
	char **filter; /* several services: filtered here */
	char *cursor;
	int64_t since;
} Follow;

static bool keep(Follow *f, const Locald__V1__LogLine *l)
{
	return !f->filter || strv_contains(f->filter, l->service);
}

/* Read from the cursor until the store has no more. Returns 0 or an exit code. */
static int read_more(Follow *f)
{
	for (int pages = 0; pages < 1000; pages++) {
		BusRequest req = LOCALD__V1__REQUEST__INIT;
		Locald__V1__Logs lg = LOCALD__V1__LOGS__INIT;
		lg.project = f->project;
		lg.service = f->service ? f->service : (char *)"";
		lg.cursor = f->cursor ? f->cursor : (char *)"";
		lg.since_usec = f->cursor ? 0 : f->since;
		lg.limit = 1000;
		req.call_case = LOCALD__V1__REQUEST__CALL_LOGS;
		req.logs = &lg;
		BusReply *reply = NULL;
		int r = ctl_call_ok(f->ctl, f->client, &req, 10000, &reply);
		if (r)
			return r;
		for (size_t i = 0; i < reply->logs->n_lines; i++)
			f->printer.width =
			    MAX(f->printer.width, strlen(reply->logs->lines[i]->service));
		for (size_t i = 0; i < reply->logs->n_lines; i++)
			if (keep(f, reply->logs->lines[i]))
				log_printer_print(&f->printer, reply->logs->lines[i]);
		char *c = strdup(reply->logs->next_cursor);
		bool more = reply->logs->more;
		bus_reply_free(reply);
		if (!c)
			return ctl_fail(f->ctl, EXIT_FAILED, NULL, "out of memory");
		free(f->cursor);
		f->cursor = c;
		fflush(stdout);
		if (!more)
			return 0;
	}
	return 0;
}

static int read_tail(Follow *f, unsigned n)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Logs lg = LOCALD__V1__LOGS__INIT;
	lg.project = f->project;
	lg.service = f->service ? f->service : (char *)"";
	lg.since_usec = f->since;
	lg.tail = true;
	lg.limit = n;
	req.call_case = LOCALD__V1__REQUEST__CALL_LOGS;
	req.logs = &lg;
	BusReply *reply = NULL;
	int r = ctl_call_ok(f->ctl, f->client, &req, 10000, &reply);
	if (r)
		return r;
	for (size_t i = 0; i < reply->logs->n_lines; i++)
		f->printer.width = MAX(f->printer.width, strlen(reply->logs->lines[i]->service));
	for (size_t i = 0; i < reply->logs->n_lines; i++)
		if (keep(f, reply->logs->lines[i]))
			log_printer_print(&f->printer, reply->logs->lines[i]);
	f->cursor = strdup(reply->logs->next_cursor);
	bus_reply_free(reply);
	fflush(stdout);
	return f->cursor ? 0 : ctl_fail(f->ctl, EXIT_FAILED, NULL, "out of memory");
}

/*
 * Every event (or a gap) means "there is more": drain what arrived, then one read from
 * the cursor. A 1 s tick reads too, for events the publisher dropped.
 */
static int follow_refresh(void *userdata)
{
	return read_more(userdata);
}

static int follow(Follow *f)
{
	_cleanup_free_ char *prefix = f->service ? strdupf("log.%s.%s", f->project, f->service)
						 : strdupf("log.%s.", f->project);
	if (!prefix)
		return ctl_fail(f->ctl, EXIT_FAILED, NULL, "out of memory");
	/* Lines written while the subscription travels are read by the tick. */
	int rc = read_more(f);
	return rc ? rc : ctl_watch(f->ctl, prefix, "following", follow_refresh, f);
}

int cmd_logs(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "follow", no_argument, NULL, 'f' },
		{ "lines", required_argument, NULL, 'n' },
		{ "since", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timestamps", no_argument, NULL, 't' },
		{},
	};
	bool follow_flag = false, timestamps = false;
	unsigned lines = 100;
	int64_t since = 0;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "hfn:t", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			return ctl_usage(ctl, true, logs_help);
		case 'f':
			follow_flag = true;
			break;
		case 'n':
			if (streq(optarg, "all"))
				lines = 0;
			else if (safe_atou32(optarg, &(uint32_t){ 0 }) < 0)
				return ctl_fail(ctl, EXIT_USAGE, "write -n 50, or -n all",
						"-n: \"%s\" is not a number of lines", optarg);
			else
				safe_atou32(optarg, &lines);
			break;
		case 's': {
			uint64_t ms;
			if (parse_duration_ms(optarg, &ms) < 0)
				return ctl_fail(ctl, EXIT_USAGE,
						"write e.g. --since 5m or --since 30s",
						"--since: \"%s\" is not a duration", optarg);
			since = (int64_t)(now_realtime() - ms * USEC_PER_MSEC);
			break;
		}
		case 'j':
			ctl->json = true;
			break;
		case 't':
			timestamps = true;
			break;
		default:
			return ctl_usage(ctl, false, logs_help);
		}

	Follow f = { .ctl = ctl, .since = since };
	f.printer = (LogPrinter){ .ctl = ctl, .json = ctl->json, .timestamps = timestamps };
	int r = 0;
	for (int i = optind; i < argc && !r; i++) {
		_cleanup_free_ char *p = NULL, *s = NULL;
		size_t len = strlen(argv[i]);
		if (len > 1 && argv[i][len - 1] == ':') {
			p = strndup_safe(argv[i], len - 1);
			if (!p)
				r = ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
		} else
			r = ctl_resolve_service(ctl, argv[i], &p, &s);
		if (r)
			break;
		if (f.project && !streq(f.project, p)) {
			r = ctl_fail(ctl, EXIT_USAGE, "run one `localctl logs` per project",
				     "services of different projects (%s, %s)", f.project, p);
			break;
		}
		if (!f.project)
			f.project = TAKE_PTR(p);
		if (s && strv_extend(&f.filter, s) < 0)
			r = ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	}
	if (!r && !f.project)
		r = ctl_current_project(ctl, NULL, &f.project, NULL);
	if (!r && strv_length(f.filter) == 1) {
		f.service = strdup(f.filter[0]);
		f.filter = strv_free(f.filter);
	}
	if (!r)
		r = ctl_superd(ctl, &f.client);
	/* Each printer line is padded to the widest name seen: start with the ones asked for. */
	STRV_FOREACH (s, f.filter)
		f.printer.width = MAX(f.printer.width, strlen(*s));
	if (!r)
		r = lines ? read_tail(&f, lines) : read_more(&f);
	if (!r && follow_flag)
		r = follow(&f);
	free(f.project);
	free(f.service);
	free(f.cursor);
	strv_free(f.filter);
	log_printer_done(&f.printer);
	return r;
}
