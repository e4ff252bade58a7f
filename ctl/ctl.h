/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * localctl's shared pieces: the command context, exit codes, output helpers, project
 * discovery, talking to the daemons. One file per concern (see README.md).
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bus-codec.h"
#include "bus-endpoint.h"
#include "bus-zmtp-client.h"
#include "macro.h"

/* Exit codes (documented in README.md). */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
	EXIT_NOT_FOUND = 4,
};

/* Global options, parsed before the command name. */
typedef struct Ctl {
	bool json;
	bool no_color;
	bool color_out; /* colours on stdout */
	bool color_err; /* colours on stderr */
	bool tty_out;   /* stdout is a terminal */
	bool quiet;
	char *runtime_dir;
	char *state_dir;
	BusZmtpClient *superd; /* lazily connected */
} Ctl;

typedef int (*CtlCommandFunc)(Ctl *ctl, int argc, char **argv);

typedef struct CtlCommand {
	const char *name;
	CtlCommandFunc func;
	const char *summary;
} CtlCommand;

/* ---- ctl-output.c ---- */

void ctl_output_init(Ctl *ctl);
/* "error: <msg>" then "hint: <hint>" (when hint is non-empty) on stderr. Returns code. */
int ctl_fail(Ctl *ctl, int code, const char *hint, const char *fmt, ...) _printf_(4, 5);
/* An Error from a reply: message, hint, exit code from its code. */
int ctl_fail_reply(Ctl *ctl, const BusErrorMessage *e, const char *what);
/* "warning: ..." on stderr. */
void ctl_warn(Ctl *ctl, const char *fmt, ...) _printf_(2, 3);
/* ANSI sequence when colours are on for that stream, else "". */
const char *ctl_color(Ctl *ctl, bool err, const char *seq);
#define ANSI_RESET "\x1b[0m"
#define ANSI_BOLD "\x1b[1m"
#define ANSI_DIM "\x1b[2m"
#define ANSI_RED "\x1b[31m"
#define ANSI_GREEN "\x1b[32m"
#define ANSI_YELLOW "\x1b[33m"
#define ANSI_CYAN "\x1b[36m"
/* The colour of the i-th service (log prefixes). */
const char *ctl_service_color(size_t i);
/* "1.2s", "3m04s", "2h05m", "5d03h" */
void ctl_format_duration(uint64_t usec, char *buf, size_t size);
/* Human names of the proto enums ("running", "passing", "http", "exec"). */
const char *ctl_state_name(int state);
const char *ctl_health_name(int health);
const char *ctl_health_source_name(int source);
const char *ctl_type_name(int type);
const char *ctl_stream_name(int stream);
/* Print a jansson value on stdout (compact when not a TTY, indented otherwise). Consumes it. */
struct json_t;
int ctl_print_json(Ctl *ctl, struct json_t *v);
/* Print the usage text of a command and return EXIT_OK (--help) or EXIT_USAGE. */
int ctl_usage(Ctl *ctl, bool help, const char *text);
/* For commands whose only options are --help (and --json with CTL_PARSE_JSON, which sets
 * ctl->json): parses argv from optind 0, stopping at the first operand with
 * CTL_PARSE_STOP_AT_OPERAND (`run SERVICE -- CMD …`). Returns -1 to go on (optind is at
 * the operands), else the exit code (help printed, or a usage error). */
enum { CTL_PARSE_STOP_AT_OPERAND = 1 << 0, CTL_PARSE_JSON = 1 << 1 };
int ctl_parse_simple(Ctl *ctl, int argc, char **argv, unsigned flags, const char *help);

/* ---- ctl-project.c ---- */

/* Directory holding locald.toml or Procfile: `path` (a dir or one of those files) or,
 * when NULL, the first one walking up from the cwd. -ENOENT when none. */
int ctl_find_project_dir(const char *path, char **ret_dir);
/*
 * The project name of a directory: from its config (lib/project), else from superd's
 * registry (a project applied from that path), else -ENOENT. On a config error ret_diag
 * gets its first message (may be NULL).
 */
int ctl_project_name(Ctl *ctl, const char *dir, char **ret_name);
/* "project:service" or "service" (in the project found from the cwd). */
int ctl_resolve_service(Ctl *ctl, const char *arg, char **ret_project, char **ret_service);
/* The project of the cwd, or a failure printed (returns the exit code, > 0). */
int ctl_current_project(Ctl *ctl, const char *path, char **ret_name, char **ret_dir);

/* ---- ctl-daemon.c ---- */

/* A client for a daemon's rpc socket in our runtime directory (connects at its first call). */
int ctl_client_new(Ctl *ctl, const char *daemon, BusZmtpClient **ret);
/* Connect to superd (not starting it). EXIT_UNREACHABLE printed when not running. */
int ctl_superd(Ctl *ctl, BusZmtpClient **ret);
/* Is superd answering Ping? */
bool ctl_superd_alive(Ctl *ctl, uint64_t timeout_ms);
/* Start superd if it does not answer (embedded mode); then ctl_superd(). */
int ctl_superd_ensure(Ctl *ctl, BusZmtpClient **ret);
/* Call and turn transport failures into a printed error. On success *ret_reply may carry an
 * Error (check bus_reply_get_error()). Returns 0 or an exit code. */
int ctl_call(Ctl *ctl, BusZmtpClient *c, BusRequest *req, uint64_t timeout_ms,
	     BusReply **ret_reply);
/* Same, but an Error in the reply is printed and returned as an exit code. */
int ctl_call_ok(Ctl *ctl, BusZmtpClient *c, BusRequest *req, uint64_t timeout_ms,
		BusReply **ret_reply);
/* Where locald-superd is: $LOCALD_SUPERD, next to us, or ../services/superd/ in the build tree. */
int ctl_superd_binary(char **ret);
/* The proxy's https/http ports when proxyd answers (0 when unknown). */
int ctl_proxy_ports(Ctl *ctl, uint32_t *ret_https, uint32_t *ret_http);
/* Stop superd (Shutdown) and wait until it is gone. */
int ctl_superd_shutdown(Ctl *ctl, uint64_t timeout_ms);
/* Status of one project (NULL: all). Returns 0 or an exit code (printed). */
int ctl_status(Ctl *ctl, const char *project, BusReply **ret_reply);

/* The caller's environment for ApplyProject.environment, without the variables that
 * only say where `up` was typed (PWD, OLDPWD, SHLVL, _, COLUMNS, LINES). */
typedef struct CtlEnv {
	Locald__V1__EnvVar *vars;
	Locald__V1__EnvVar **ptrs;
	char **names;
	size_t n;
} CtlEnv;
int ctl_env_build(CtlEnv *e);
void ctl_env_done(CtlEnv *e);

/* ---- ctl-signals.c ---- */

/*
 * SIGINT, SIGTERM (and SIGHUP with hup) as a signalfd to poll alongside the bus, the
 * signals blocked meanwhile (nothing is spawned while they are; superd is spawned with
 * an empty mask anyway).
 * Returns the fd or -errno; close with ctl_signals_close(), which restores the mask.
 */
typedef struct CtlSignals {
	int fd;
	sigset_t old_mask;
} CtlSignals;
int ctl_signals_open(CtlSignals *s, bool hup);
/* The next pending signal's number, 0 if none. */
int ctl_signals_read(CtlSignals *s);
void ctl_signals_close(CtlSignals *s);

/* Milliseconds from now until a CLOCK_MONOTONIC deadline (usec), for poll(): >= 0. */
int ctl_ms_until(uint64_t deadline_usec);

/* The waiting loop of `logs -f` and `status -w`: subscribe to superd's events under
 * `prefix`, then call refresh() after each burst of events (drained first) and at least
 * every second, until it returns non-zero (returned) or SIGINT/SIGTERM arrives (0).
 * `what` names the step in the error when subscribing fails. */
int ctl_watch(Ctl *ctl, const char *prefix, const char *what, int (*refresh)(void *userdata),
	      void *userdata);

/* ---- commands ---- */

int cmd_up(Ctl *ctl, int argc, char **argv);
int cmd_down(Ctl *ctl, int argc, char **argv);
int cmd_start(Ctl *ctl, int argc, char **argv);
int cmd_stop(Ctl *ctl, int argc, char **argv);
int cmd_restart(Ctl *ctl, int argc, char **argv);
int cmd_status(Ctl *ctl, int argc, char **argv);
int cmd_logs(Ctl *ctl, int argc, char **argv);
int cmd_env(Ctl *ctl, int argc, char **argv);
int cmd_run(Ctl *ctl, int argc, char **argv);
int cmd_try(Ctl *ctl, int argc, char **argv);
int cmd_init(Ctl *ctl, int argc, char **argv);
int cmd_open(Ctl *ctl, int argc, char **argv);
int cmd_dashboard(Ctl *ctl, int argc, char **argv);
int cmd_server(Ctl *ctl, int argc, char **argv);
int cmd_version(Ctl *ctl, int argc, char **argv);
int cmd_vm(Ctl *ctl, int argc, char **argv);
int cmd_fs(Ctl *ctl, int argc, char **argv);

/* ctl-logs.c, shared with up: print one line with a coloured "service |" prefix. */
typedef struct LogPrinter {
	Ctl *ctl;
	bool json;
	bool timestamps;
	size_t width;
	char **services; /* colour index = position; grows as names appear */
} LogPrinter;
void log_printer_done(LogPrinter *p);
void log_printer_print(LogPrinter *p, const Locald__V1__LogLine *l);
/* Print the last n lines of a service to stderr, indented (failure reports). */
void ctl_print_last_lines(Ctl *ctl, BusZmtpClient *c, const char *project, const char *service,
			  unsigned n);
/* Open a URL in a browser when there is a display (xdg-open, detached). */
void ctl_open_url(const char *url);
/* Add the proxy's port to an https://host URL without one when the proxy is not on 443. */
char *ctl_url_with_port(const char *url, uint32_t https_port);
