/* SPDX-License-Identifier: MIT */
/*
 * locald-superd: supervises the services of every project it is given.
 *
 * One per user: an exclusive lock on <runtime>/superd.lock is held for life, so two
 * concurrent starts end with one daemon (the loser exits 0 saying so). On start it
 * re-adopts the services an earlier superd left running (superd-state.c). SIGTERM,
 * SIGINT or a Shutdown call stop every service, then exit; a SIGKILLed superd leaves
 * them running for the next one.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bus.h"
#include "log.h"
#include "loop.h"
#include "parse-util.h"
#include "paths.h"
#include "strutil.h"
#include "superd-bus.h"
#include "superd-cgroup.h"
#include "superd-engine.h"
#include "superd-spawn.h"
#include "superd-system.h"

#define SHUTDOWN_GRACE_MS 30000

static void on_signal(LoopSignal *s, int signo, void *userdata)
{
	log_info("%s: stopping every service", signal_to_string(signo));
	loop_exit(userdata, 0);
}

static void on_shutdown_timeout(LoopTimer *t, void *userdata)
{
	log_warning("services did not stop within %ds; exiting anyway", SHUTDOWN_GRACE_MS / 1000);
	loop_exit(userdata, 0);
}

static void help(void)
{
	printf("locald-superd — the locald supervision daemon\n\n"
	       "Usage: locald-superd [--no-cgroups] [--https-port N] [--no-embedded]\n\n"
	       "  --no-embedded   do not start locald-proxyd as the `system` project\n"
	       "                  (also $LOCALD_EMBEDDED=0)\n\n"
	       "Normally started by `localctl up`. Directories come from $LOCALD_RUNTIME_DIR,\n"
	       "$LOCALD_STATE_DIR (see README). $LOCALD_LOG_LEVEL=debug for detail.\n");
}

int main(int argc, char **argv)
{
	bool no_cgroups = false, embedded = true;
	uint16_t https_port = 0;
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "no-cgroups", no_argument, NULL, 'C' },
		{ "https-port", required_argument, NULL, 'p' },
		{ "no-embedded", no_argument, NULL, 'E' },
		{},
	};
	int c;
	log_setup(argv[0]);
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			help();
			return 0;
		case 'V':
			printf("locald-superd %s\n", LOCALD_VERSION);
			return 0;
		case 'C':
			no_cgroups = true;
			break;
		case 'E':
			embedded = false;
			break;
		case 'p':
			if (parse_port(optarg, &https_port) < 0) {
				log_error("--https-port: \"%s\" is not a port (1-65535)", optarg);
				return 2;
			}
			break;
		default:
			return 2;
		}
	const char *fk = getenv("LOCALD_SPAWN_FORK");
	bool fk_on;
	if (fk && parse_boolean(fk, &fk_on) == 0 && fk_on)
		spawn_force_fork(true);
	const char *emb = getenv("LOCALD_EMBEDDED");
	bool emb_on;
	if (emb && parse_boolean(emb, &emb_on) == 0 && !emb_on)
		embedded = false;
	if (!https_port && !embedded) {
		const char *e = getenv("LOCALD_HTTPS_PORT");
		if (e && parse_port(e, &https_port) < 0)
			https_port = 0;
	}

	_cleanup_free_ char *runtime = NULL, *state = NULL;
	int r = locald_runtime_dir_ensure(&runtime);
	if (r < 0)
		return log_error_errno(r, "runtime directory: %m"), 1;
	r = locald_state_dir_ensure(&state);
	if (r < 0)
		return log_error_errno(r, "state directory: %m"), 1;

	_cleanup_free_ char *lock_path = path_join(runtime, "superd.lock");
	if (!lock_path)
		return log_oom(), 1;
	_cleanup_close_ int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0)
		return log_error_errno(-errno, "%s: %m", lock_path), 1;
	if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			log_info("another locald-superd already runs for %s", runtime);
			return 0;
		}
		return log_error_errno(-errno, "locking %s: %m", lock_path), 1;
	}

	/* Before anything is spawned: an unprivileged superd may first have to move itself
	 * into the cgroup locald-shim delegates, and services are placed relative to it. */
	_cleanup_free_ char *cgroup_base = NULL, *cgroup_why = NULL;
	if (!no_cgroups) {
		r = cgroup_setup_base(&cgroup_base, &cgroup_why);
		if (r >= 0)
			log_info("service cgroups under %s: %s", cgroup_base, strempty(cgroup_why));
		else
			log_notice("services run without their own cgroups (%s): stop uses "
				   "process groups",
				   cgroup_why ? cgroup_why : strerror(-r));
	}

	/* Embedded mode: the proxy's ports are decided first, service URLs depend on them. */
	SystemPorts ports = {};
	if (embedded) {
		r = system_choose_ports(runtime, &ports);
		if (r < 0)
			return log_error_errno(r, "choosing the proxy's ports: %m"), 1;
		if (!https_port)
			https_port = ports.https;
	}

	/* Orphans of our services (double forks) come to us, and the reaper reaps them. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);

	_cleanup_(loop_freep) Loop *loop = NULL;
	r = loop_new(&loop);
	if (r < 0)
		return log_error_errno(r, "event loop: %m"), 1;

	_cleanup_(bus_server_freep) BusServer *server = NULL;
	r = bus_server_new(loop, NULL, runtime, "superd", &server);
	if (r < 0)
		return log_error_errno(r, "binding %s/superd.rpc: %m", runtime), 1;

	Engine *engine = NULL;
	SuperdBus *sbus = NULL;
	EngineOptions eo = {
		.loop = loop_get_uv(loop),
		.runtime_dir = runtime,
		.state_dir = state,
		.https_port = https_port,
		.no_cgroups = no_cgroups,
		.cgroup_base = cgroup_base, /* NULL: the engine finds none either, and says why */
		.callbacks = { .state_changed = superd_bus_on_state,
			       .log_line = superd_bus_on_log },
	};
	/* The bus glue is the engine's callback target: make it first, with a NULL engine
	 * it never reads before engine_new() returns. */
	r = superd_bus_new(loop, server, NULL, &sbus);
	if (r < 0)
		return log_error_errno(r, "bus handlers: %m"), 1;
	eo.callbacks.userdata = sbus;
	r = engine_new(&eo, &engine);
	if (r < 0)
		return log_error_errno(r, "engine: %m"), 1;
	superd_bus_set_engine(sbus, engine);

	r = engine_state_restore(engine);
	if (r < 0)
		log_warning_errno(r, "previous state unreadable, starting empty: %m");
	else if (r > 0)
		log_info("restored %d project(s) from the previous run", r);

	if (embedded) {
		_cleanup_free_ char *warning = NULL;
		r = system_project_apply(engine, runtime, &ports, &warning);
		if (r < 0)
			log_error_errno(r, "starting the system project: %m");
		else if (warning)
			log_warning("%s", warning);
		else
			log_info("proxy on http :%u, https :%u%s", ports.http, ports.https,
				 ports.kept ? " (kept from the running proxyd)" : "");
	}

	_cleanup_(loop_signal_freep) LoopSignal *sigterm = NULL, *sigint = NULL;
	loop_signal_new(loop, SIGTERM, on_signal, loop, &sigterm);
	loop_signal_new(loop, SIGINT, on_signal, loop, &sigint);

	log_info("ready on %s", bus_server_get_rpc_path(server));
	r = loop_run(loop);

	/* Stop every service, then exit: the bus glue ends the loop when the last one is down. */
	superd_bus_drain(sbus);
	engine_stop_all(engine);
	_cleanup_(loop_timer_freep) LoopTimer *deadline = NULL;
	loop_timer_new(loop, SHUTDOWN_GRACE_MS, 0, on_shutdown_timeout, loop, &deadline);
	if (!engine_all_stopped(engine))
		loop_run(loop);

	superd_bus_free(sbus);
	engine_free(engine);
	return r < 0 ? 1 : 0;
}
