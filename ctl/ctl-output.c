/* SPDX-License-Identifier: MIT */
/* Output: terminal detection, colours (NO_COLOR, --no-color), errors, durations, JSON. */

#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-names.h"
#include "ctl.h"
#include "strutil.h"
#include "time-util.h"

void ctl_output_init(Ctl *ctl)
{
	bool allowed = !ctl->no_color && isempty(getenv("NO_COLOR"));
	const char *term = getenv("TERM");
	if (term && streq(term, "dumb"))
		allowed = false;
	ctl->tty_out = isatty(STDOUT_FILENO);
	ctl->color_out = allowed && ctl->tty_out;
	ctl->color_err = allowed && isatty(STDERR_FILENO);
}

const char *ctl_color(Ctl *ctl, bool err, const char *seq)
{
	return (err ? ctl->color_err : ctl->color_out) ? seq : "";
}

/* One line: control characters (a peer's text) must not break the "one line" rule. */
static void put_line(FILE *f, const char *s)
{
	for (const char *p = s; *p; p++)
		fputc((unsigned char)*p < 0x20 && *p != '\t' ? ' ' : *p, f);
}

static int vfail(Ctl *ctl, int code, const char *hint, const char *fmt, va_list ap)
{
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fflush(stdout);
	fprintf(stderr, "%serror:%s ", ctl_color(ctl, true, ANSI_BOLD ANSI_RED),
		ctl_color(ctl, true, ANSI_RESET));
	put_line(stderr, msg);
	fputc('\n', stderr);
	if (!isempty(hint)) {
		fprintf(stderr, "%shint:%s ", ctl_color(ctl, true, ANSI_BOLD ANSI_CYAN),
			ctl_color(ctl, true, ANSI_RESET));
		put_line(stderr, hint);
		fputc('\n', stderr);
	}
	return code;
}

int ctl_fail(Ctl *ctl, int code, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(ctl, code, hint, fmt, ap);
	va_end(ap);
	return r;
}

int ctl_fail_reply(Ctl *ctl, const BusErrorMessage *e, const char *what)
{
	int code = EXIT_FAILED;
	if (e->code == LOCALD__V1__ERROR__CODE__NOT_FOUND)
		code = EXIT_NOT_FOUND;
	else if (e->code == LOCALD__V1__ERROR__CODE__UNAVAILABLE)
		code = EXIT_UNREACHABLE;
	const char *hint = e->hint;
	char more[128];
	/* The first diagnostic is the message; say how many others there are. */
	if (e->n_details > 1 && isempty(hint)) {
		snprintf(more, sizeof(more),
			 "%zu more problems: `localctl up` shows them after a fix",
			 e->n_details - 1);
		hint = more;
	}
	if (isempty(hint) && code == EXIT_NOT_FOUND)
		hint = "`localctl status --all` lists the projects and their services";
	if (what)
		return ctl_fail(ctl, code, hint, "%s: %s", what, strempty(e->message));
	return ctl_fail(ctl, code, hint, "%s", strempty(e->message));
}

void ctl_warn(Ctl *ctl, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fprintf(stderr, "%swarning:%s ", ctl_color(ctl, true, ANSI_BOLD ANSI_YELLOW),
		ctl_color(ctl, true, ANSI_RESET));
	put_line(stderr, msg);
	fputc('\n', stderr);
}

const char *ctl_service_color(size_t i)
{
	static const char *const colors[] = { "\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m",
					      "\x1b[34m", "\x1b[91m", "\x1b[96m", "\x1b[93m",
					      "\x1b[95m", "\x1b[92m", "\x1b[94m" };
	return colors[i % ELEMENTSOF(colors)];
}

void ctl_format_duration(uint64_t usec, char *buf, size_t size)
{
	uint64_t s = usec / USEC_PER_SEC;
	if (usec < 60 * USEC_PER_SEC)
		snprintf(buf, size, "%.1fs", (double)usec / 1e6);
	else if (s < 3600)
		snprintf(buf, size, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, size, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60));
	else
		snprintf(buf, size, "%llud%02lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s / 3600 % 24));
}

const char *ctl_state_name(int state)
{
	return bus_service_state_name(state);
}

const char *ctl_health_name(int health)
{
	switch (health) {
	case LOCALD__V1__HEALTH__HEALTH_PASSING:
		return "passing";
	case LOCALD__V1__HEALTH__HEALTH_FAILING:
		return "failing";
	default:
		return "unknown";
	}
}

const char *ctl_health_source_name(int source)
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
	if (source <= 0 || (size_t)source >= ELEMENTSOF(names) || !names[source])
		return "none";
	return names[source];
}

const char *ctl_type_name(int type)
{
	static const char *const names[] = {
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_EXEC] = "exec",
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_WORKER] = "worker",
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_POSTGRES] = "postgres",
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_CONTAINER] = "container",
		[LOCALD__V1__SERVICE_TYPE__SERVICE_TYPE_SITE] = "site",
	};
	if (type <= 0 || (size_t)type >= ELEMENTSOF(names) || !names[type])
		return "exec";
	return names[type];
}

const char *ctl_stream_name(int stream)
{
	switch (stream) {
	case LOCALD__V1__LOG_STREAM__LOG_STREAM_STDOUT:
		return "stdout";
	case LOCALD__V1__LOG_STREAM__LOG_STREAM_STDERR:
		return "stderr";
	case LOCALD__V1__LOG_STREAM__LOG_STREAM_SYSTEM:
		return "system";
	default:
		return "unknown";
	}
}

int ctl_print_json(Ctl *ctl, json_t *v)
{
	if (!v)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	size_t flags = JSON_PRESERVE_ORDER | (ctl->tty_out ? JSON_INDENT(2) : JSON_COMPACT);
	int r = json_dumpf(v, stdout, flags);
	json_decref(v);
	fputc('\n', stdout);
	return r < 0 ? EXIT_FAILED : EXIT_OK;
}

int ctl_usage(Ctl *ctl, bool help, const char *text)
{
	fputs(text, help ? stdout : stderr);
	return help ? EXIT_OK : EXIT_USAGE;
}

int ctl_parse_simple(Ctl *ctl, int argc, char **argv, unsigned flags, const char *help)
{
	/* --json first, so that opts + 1 is the --help-only table */
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	bool json = flags & CTL_PARSE_JSON;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, flags & CTL_PARSE_STOP_AT_OPERAND ? "+h" : "h",
				json ? opts : opts + 1, NULL)) >= 0) {
		if (c == 'j')
			ctl->json = true;
		else
			return ctl_usage(ctl, c == 'h', help);
	}
	return -1;
}
