/* SPDX-License-Identifier: MIT */
/*
 * locald-proxyd: the local reverse proxy (HTTP/1.1, HTTP/2, TLS with the local CA).
 *
 * One per user: <runtime>/proxyd.lock is held for life; a second one exits 1 saying so.
 * The main thread runs the bus (proxyd.rpc/.events) and the routing feed from superd;
 * worker threads accept and serve connections. SIGTERM/SIGINT: stop accepting, let
 * requests in flight finish (at most 5 s), exit.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus.h"
#include "dashboard.h" /* [dashboard] */
#include "daemon-util.h"
#include "log.h"
#include "loop.h"
#include "parse-util.h"
#include "paths.h"
#include "proxyd-internal.h"
#include "shim-client.h"
#include "strutil.h"

static void on_signal(LoopSignal *s, int signo, void *userdata)
{
	log_info("%s: finishing requests in flight, then exiting", signal_to_string(signo));
	loop_exit(userdata, 0);
}

static bool ca_filter(const char *host, void *userdata)
{
	Proxyd *p = userdata;
	if (!p->routes)
		return false;
	RouteTable *t = routes_acquire(p->routes);
	bool routed = route_table_lookup(t, host) != NULL;
	route_table_unref(t);
	return routed;
}

/*
 * A CA generated just now is in no trust store yet. With locald-shim installed (`sudo
 * localctl admin setup`, which trusts a CA that already exists), have it trusted now, before
 * READY=1, so that the URLs `localctl up` prints verify at once. A CA that already existed
 * is left alone: the user may have untrusted it on purpose.
 */
static void trust_new_ca(const char *cert_path)
{
	_cleanup_free_ char *shim = NULL;
	if (shim_find(&shim) < 0) {
		log_info("new CA %s: `localctl trust` adds it to the system store", cert_path);
		return;
	}
	char *args[] = { (char *)"trust-ca", (char *)cert_path, NULL };
	int r = shim_run(args);
	if (r == -EACCES)
		log_warning(
		    "new CA %s: locald-shim refused it (its reason is above): it trusts only "
		    "a CA in a state directory under your home, such as "
		    "~/.local/state/locald",
		    cert_path);
	else if (r < 0)
		log_warning("new CA %s: locald-shim did not add it to the system store (%s; its "
			    "message is above); `localctl trust` tries again",
			    cert_path, strerror(-r));
	else
		log_info("new CA %s: added to the system store by %s", cert_path, shim);
}

static void help(void)
{
	printf(
	    "locald-proxyd — the locald reverse proxy\n\n"
	    "Usage: locald-proxyd [--help] [--version]\n\n"
	    "Normally started by locald-superd. Listens on 127.0.0.1 and ::1: HTTP on 80 (else\n"
	    "8080), HTTPS on 443 (else 8443); $LOCALD_HTTP_PORT / $LOCALD_HTTPS_PORT or [proxy]\n"
	    "in <config>/locald.toml choose others (0 = any free port; ListListeners tells).\n"
	    "Directories come from $LOCALD_RUNTIME_DIR, $LOCALD_STATE_DIR, $LOCALD_CONFIG_DIR.\n"
	    "$LOCALD_LOG_LEVEL=debug for detail.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	int c, r;
	log_setup("locald-proxyd");
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			help();
			return 0;
		case 'V':
			printf("locald-proxyd %s\n", LOCALD_VERSION);
			return 0;
		default:
			return 2;
		}
	if (optind < argc) {
		log_error("unexpected argument \"%s\" (see --help)", argv[optind]);
		return 2;
	}

	ProxydConfig config;
	_cleanup_free_ char *cerr = NULL;
	r = proxyd_config_load(&config, &cerr);
	if (r < 0) {
		log_error("configuration: %s", cerr ? cerr : strerror(-r));
		return 1;
	}

	_cleanup_free_ char *runtime = NULL, *state = NULL, *ca_dir = NULL, *ca_cert = NULL;
	r = locald_runtime_dir_ensure(&runtime);
	if (r < 0)
		return log_error_errno(r, "runtime directory: %m"), 1;
	r = locald_state_dir_ensure(&state);
	if (r < 0)
		return log_error_errno(r, "state directory: %m"), 1;
	_cleanup_close_ int lock = -1;
	pid_t holder = 0;
	r = daemon_lock(runtime, "proxyd", false, &lock, &holder);
	if (r == -EBUSY) {
		log_error("another locald-proxyd (pid %d) already runs for %s; only one per user",
			  (int)holder, runtime);
		return 1;
	}
	if (r < 0)
		return 1;

	signal(SIGPIPE, SIG_IGN);

	Proxyd *p = NULL;
	r = proxyd_new(&config, &p);
	if (r < 0)
		return log_oom(), 1;
	_cleanup_(loop_freep) Loop *loop = NULL;
	r = loop_new(&loop);
	if (r < 0)
		return log_error_errno(r, "event loop: %m"), 1;
	p->loop = loop;

	/* Declared before the first goto: cleanup attributes and jumps do not mix. */
	int ret = 1;
	LoopSignal *sigterm = NULL, *sigint = NULL;
	_cleanup_free_ char *lerr = NULL;
	RoutesOptions ro = { 0 };
	r = routes_new(loop, &ro, &p->routes);
	if (r < 0) {
		log_error_errno(r, "routing table: %m");
		goto out;
	}
	/* [dashboard] the backend on this thread; proxied to by the workers. */
	if (dashboard_new(loop, runtime, &p->dashboard) < 0)
		log_warning("dashboard: cannot listen in %s; the dashboard is unavailable",
			    runtime);

	ca_dir = path_join(state, "ca");
	if (!ca_dir) {
		log_oom();
		goto out;
	}
	CaOptions co = { .dir = ca_dir, .filter = ca_filter, .filter_userdata = p };
	/* ca_open() generates a CA only when neither ca.crt nor ca.key exists, and
	 * proxyd.lock keeps any other proxyd of this user away meanwhile. */
	ca_cert = path_join(ca_dir, "ca.crt");
	if (!ca_cert) {
		log_oom();
		goto out;
	}
	bool new_ca = access(ca_cert, F_OK) < 0 && errno == ENOENT;
	r = ca_open(&co, &p->ca);
	if (r < 0) {
		log_error_errno(r, "certificate authority in %s: %m", ca_dir);
		goto out;
	}
	if (new_ca)
		trust_new_ca(ca_cert_path(p->ca));
	r = tls_server_new(p->ca, true, &p->tls);
	if (r < 0) {
		log_error_errno(r, "TLS setup: %m");
		goto out;
	}

	r = proxyd_listeners_open(&config, config.workers, &p->listeners, &p->n_listeners, &lerr);
	if (r < 0) {
		log_error("%s", lerr ? lerr : strerror(-r));
		goto out;
	}

	r = bus_server_new(loop, NULL, runtime, "proxyd", &p->bus);
	if (r < 0) {
		log_error_errno(r, "binding %s/proxyd.rpc: %m", runtime);
		goto out;
	}
	r = proxyd_bus_setup(p);
	if (r < 0) {
		log_error_errno(r, "bus handlers: %m");
		goto out;
	}

	p->workers = calloc(config.workers, sizeof(Worker *));
	if (!p->workers) {
		log_oom();
		goto out;
	}
	for (unsigned i = 0; i < config.workers; i++) {
		r = worker_new(p, i, &p->workers[i]);
		if (r < 0) {
			log_error_errno(r, "worker %u: %m", i);
			goto out;
		}
		p->n_workers++;
	}
	for (unsigned i = 0; i < p->n_workers; i++) {
		r = worker_start(p->workers[i]);
		if (r < 0) {
			log_error_errno(r, "starting worker thread %u: %m", i);
			goto out;
		}
	}

	loop_signal_new(loop, SIGTERM, on_signal, loop, &sigterm);
	loop_signal_new(loop, SIGINT, on_signal, loop, &sigint);

	for (size_t i = 0; i < p->n_listeners; i++) {
		ProxydListener *l = &p->listeners[i];
		bool v6 = strchr(l->address, ':');
		log_info("listening on %s://%s%s%s:%u%s", l->tls ? "https" : "http", v6 ? "[" : "",
			 l->address, v6 ? "]" : "", l->port,
			 l->socket_activated ? " (socket activation)" : "");
	}
	log_info("%u worker thread(s); CA %s", p->n_workers, ca_cert_path(p->ca));
	(void)daemon_notify("READY=1\nSTATUS=listening");

	r = loop_run(loop);
	ret = r < 0 ? 1 : 0;

out:
	for (unsigned i = 0; i < p->n_workers; i++)
		worker_stop(p->workers[i]);
	for (unsigned i = 0; i < p->n_workers; i++)
		p->workers[i] = worker_join_free(p->workers[i]);
	free(p->workers);
	p->workers = NULL;
	proxyd_flush_events(p);
	p->events_timer = loop_timer_free(p->events_timer);
	sigterm = loop_signal_free(sigterm);
	sigint = loop_signal_free(sigint);
	p->bus = bus_server_free(p->bus);
	p->dashboard = dashboard_free(p->dashboard); /* [dashboard] */
	p->routes = routes_free(p->routes);
	p->tls = tls_server_free(p->tls);
	p->ca = ca_free(p->ca);
	proxyd_listeners_free(p->listeners, p->n_listeners);
	loop = loop_free(loop);
	proxyd_free(p);
	return ret;
}
