/* SPDX-License-Identifier: MIT */
/*
 * The listening sockets and the worker threads that accept on them.
 *
 * Each worker has its own SO_REUSEPORT socket per listener (the kernel spreads new
 * connections over them by hash, so no thundering herd and no shared accept lock); an
 * inherited socket (socket activation) is shared: every worker polls it and accept4()
 * decides who gets the connection (EAGAIN for the others).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "parse-util.h"
#include "proxyd-internal.h"
#include "shim-client.h"
#include "strutil.h"

#define ACCEPTS_PER_EVENT 64
#define LISTEN_BACKLOG 4096
#define SHUTDOWN_GRACE_MS 5000
#define READ_BUFFER_SIZE (64 * 1024)
#define SD_LISTEN_FDS_START 3

struct WorkerHook {
	WorkerHook *next;
	void (*cb)(void *userdata);
	void *userdata;
};

/* ---- listening sockets ---- */

static int bind_one(int family, uint16_t port, int *ret_fd, uint16_t *ret_port)
{
	_cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		return -errno;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof *a;
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof *a;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
			return -errno;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return -errno;
	if (listen(fd, LISTEN_BACKLOG) < 0)
		return -errno;
	len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	*ret_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* n SO_REUSEPORT sockets on one address and port (port 0: the first picks). */
static int bind_group(int family, uint16_t port, unsigned n, int *fds, uint16_t *ret_port)
{
	uint16_t actual = port;
	unsigned i;
	int r = 0;
	for (i = 0; i < n; i++) {
		uint16_t got = 0;
		r = bind_one(family, actual, &fds[i], &got);
		if (r < 0)
			break;
		actual = got;
	}
	if (r < 0) {
		while (i > 0) {
			i--;
			fds[i] = safe_close(fds[i]);
		}
		return r;
	}
	*ret_port = actual;
	return 0;
}

static void listener_done(ProxydListener *l)
{
	if (!l->fds)
		return;
	if (l->shared)
		safe_close(l->fds[0]);
	else
		for (size_t i = 0; i < l->n_fds; i++)
			safe_close(l->fds[i]);
	l->fds = mfree(l->fds);
}

void proxyd_listeners_free(ProxydListener *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		listener_done(&l[i]);
	free(l);
}

static int listeners_add(ProxydListener **l, size_t *n, const ProxydListener *add)
{
	ProxydListener *m = realloc(*l, sizeof(ProxydListener) * (*n + 1));
	if (!m)
		return -ENOMEM;
	m[(*n)++] = *add;
	*l = m;
	return 0;
}

static bool ipv6_unavailable(int r)
{
	return r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL || r == -EPROTONOSUPPORT;
}

/*
 * A privileged port we may not bind: ask locald-shim (installed by `sudo localctl admin
 * setup`) for the listener. One socket shared by all workers. 0, or the bind's error.
 */
static int bind_via_shim(int family, uint16_t port, int bind_error, ProxydListener *l)
{
	if (bind_error != -EACCES || port >= 1024)
		return bind_error;
	int fd = -1;
	int r = shim_bind_port(port, family == AF_INET6, &fd);
	if (r < 0) {
		log_debug("port %u: locald-shim: %s", port, strerror(-r));
		return bind_error;
	}
	for (size_t i = 0; i < l->n_fds; i++)
		l->fds[i] = safe_close(l->fds[i]);
	l->fds[0] = fd;
	l->n_fds = 1;
	l->shared = true;
	l->via_shim = true;
	l->port = port;
	return 0;
}

/* One scheme: `want` as configured (-1 default, 0 any, else exact). */
static int open_scheme(const ProxydConfig *c, bool tls, unsigned n_workers, ProxydListener **l,
		       size_t *n, char **error)
{
	const char *scheme = tls ? "https" : "http";
	int want = tls ? c->https_port : c->http_port;
	uint16_t primary = tls ? 443 : 80, fallback = tls ? 8443 : 8080;
	ProxydListener v4 = { .tls = tls, .n_fds = n_workers }, v6 = v4;
	int r;

	v4.fds = calloc(n_workers, sizeof(int));
	if (!v4.fds)
		return -ENOMEM;
	strscpy(v4.address, sizeof v4.address, "127.0.0.1");
	for (unsigned i = 0; i < n_workers; i++)
		v4.fds[i] = -1;
	if (want < 0) {
		r = bind_group(AF_INET, primary, n_workers, v4.fds, &v4.port);
		r = bind_via_shim(AF_INET, primary, r, &v4);
		if (r == -EACCES)
			log_notice("%s: port %u needs privileges: run `sudo localctl admin setup` "
				   "once to get it through locald-shim",
				   scheme, primary);
		if (r == -EACCES || r == -EADDRINUSE) {
			log_info("%s: port %u %s, using %u", scheme, primary,
				 r == -EACCES ? "needs privileges" : "is in use", fallback);
			r = bind_group(AF_INET, fallback, n_workers, v4.fds, &v4.port);
		}
	} else {
		r = bind_group(AF_INET, (uint16_t)want, n_workers, v4.fds, &v4.port);
		r = bind_via_shim(AF_INET, (uint16_t)want, r, &v4);
	}
	if (r < 0) {
		unsigned port = want < 0 ? fallback : (unsigned)want;
		*error = strdupf(
		    "%s: cannot listen on 127.0.0.1:%u: %s%s", scheme, port, strerror(-r),
		    r == -EADDRINUSE ? " (set LOCALD_%s_PORT or [proxy] in locald.toml)" : "");
		if (*error && r == -EADDRINUSE) {
			char *e =
			    strdupf("%s: cannot listen on 127.0.0.1:%u: %s (set LOCALD_%s_PORT, "
				    "0 = any, or %s_port in [proxy] of locald.toml)",
				    scheme, port, strerror(-r), tls ? "HTTPS" : "HTTP", scheme);
			free(*error);
			*error = e;
		}
		free(v4.fds);
		return r;
	}
	r = listeners_add(l, n, &v4);
	if (r < 0) {
		listener_done(&v4);
		return r;
	}

	if (!c->ipv6)
		return 0;
	v6.fds = calloc(n_workers, sizeof(int));
	if (!v6.fds)
		return -ENOMEM;
	strscpy(v6.address, sizeof v6.address, "::1");
	v6.n_fds = n_workers;
	v6.shared = v6.via_shim = false;
	for (unsigned i = 0; i < n_workers; i++)
		v6.fds[i] = -1;
	r = bind_group(AF_INET6, v4.port, n_workers, v6.fds, &v6.port);
	r = bind_via_shim(AF_INET6, v4.port, r, &v6);
	if (r == -EADDRINUSE && want == 0)
		r = bind_group(AF_INET6, 0, n_workers, v6.fds, &v6.port);
	if (r < 0) {
		free(v6.fds);
		if (ipv6_unavailable(r))
			log_debug("%s: no IPv6 loopback (%s): IPv4 only", scheme, strerror(-r));
		else
			log_warning("%s: cannot listen on [::1]:%u: %s; IPv4 only", scheme, v4.port,
				    strerror(-r));
		return 0;
	}
	r = listeners_add(l, n, &v6);
	if (r < 0)
		listener_done(&v6);
	return r;
}

/* systemd-style socket activation: LISTEN_FDNAMES "http"/"https" name each socket. */
static int take_activated(ProxydListener **l, size_t *n, bool *have_http, bool *have_https,
			  char **error)
{
	const char *e_pid = getenv("LISTEN_PID"), *e_fds = getenv("LISTEN_FDS");
	const char *e_names = getenv("LISTEN_FDNAMES");
	int64_t pid;
	uint32_t nfds;
	int r;

	if (!e_pid || !e_fds)
		return 0;
	if (safe_atoi64(e_pid, &pid) < 0 || pid != getpid())
		return 0;
	if (safe_atou32(e_fds, &nfds) < 0 || nfds > 64) {
		*error = strdupf("$LISTEN_FDS: \"%s\" is not a number of sockets", e_fds);
		return -EINVAL;
	}
	_cleanup_strv_free_ char **names = NULL;
	if (e_names) {
		_cleanup_free_ char *copy = strdup(e_names);
		if (!copy)
			return -ENOMEM;
		char *save = NULL;
		for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
			if (strv_extend(&names, t) < 0)
				return -ENOMEM;
	}
	for (uint32_t i = 0; i < nfds; i++) {
		int fd = SD_LISTEN_FDS_START + (int)i;
		const char *name = i < strv_length(names) ? names[i] : NULL;
		bool tls;
		if (streq_ptr(name, "http"))
			tls = false;
		else if (streq_ptr(name, "https"))
			tls = true;
		else {
			*error =
			    strdupf("socket activation: fd %d is named \"%s\"; LISTEN_FDNAMES must "
				    "name each socket \"http\" or \"https\"",
				    fd, strempty(name));
			return -EINVAL;
		}
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int type = 0, listening = 0;
		socklen_t tl = sizeof type, ll = sizeof listening;
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 ||
		    type != SOCK_STREAM || !listening ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
			*error =
			    strdupf("socket activation: fd %d is not a listening TCP socket", fd);
			return -EINVAL;
		}
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			return -errno;
		ProxydListener x = {
			.tls = tls, .socket_activated = true, .shared = true, .n_fds = 1
		};
		x.fds = malloc(sizeof(int));
		if (!x.fds)
			return -ENOMEM;
		x.fds[0] = fd;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, x.address, sizeof x.address);
			x.port = ntohs(a->sin_port);
		} else {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, x.address, sizeof x.address);
			x.port = ntohs(a->sin6_port);
		}
		r = listeners_add(l, n, &x);
		if (r < 0) {
			free(x.fds);
			return r;
		}
		*(tls ? have_https : have_http) = true;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (int)nfds;
}

int proxyd_listeners_open(const ProxydConfig *c, unsigned n_workers, ProxydListener **ret,
			  size_t *ret_n, char **error)
{
	ProxydListener *l = NULL;
	size_t n = 0;
	bool have_http = false, have_https = false;
	int r = take_activated(&l, &n, &have_http, &have_https, error);
	if (r >= 0 && !have_http)
		r = open_scheme(c, false, n_workers, &l, &n, error);
	if (r >= 0 && !have_https)
		r = open_scheme(c, true, n_workers, &l, &n, error);
	if (r < 0) {
		proxyd_listeners_free(l, n);
		return r;
	}
	*ret = l;
	*ret_n = n;
	return 0;
}

/* ---- connection limits ---- */

struct ClientCount {
	ClientCount *next;
	uint8_t addr[16];
	unsigned count;
};

static void peer_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET)
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

static size_t peer_hash(const uint8_t key[16], size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return (size_t)(h % n);
}

bool proxyd_conn_admit(Proxyd *p, const struct sockaddr *peer)
{
	unsigned total = atomic_fetch_add(&p->conns_total, 1) + 1;
	if (total > p->conns_max) {
		atomic_fetch_sub(&p->conns_total, 1);
		return false;
	}
	uint8_t key[16];
	peer_key(peer, key);
	bool ok = true;
	pthread_mutex_lock(&p->clients_lock);
	ClientCount **b = &p->clients[peer_hash(key, p->n_client_buckets)], *e;
	for (e = *b; e; e = e->next)
		if (memcmp(e->addr, key, 16) == 0)
			break;
	if (!e) {
		e = calloc(1, sizeof *e);
		if (e) {
			memcpy(e->addr, key, 16);
			e->next = *b;
			*b = e;
		}
	}
	if (!e || e->count >= p->config.max_connections_per_client)
		ok = false;
	else
		e->count++;
	pthread_mutex_unlock(&p->clients_lock);
	if (!ok)
		atomic_fetch_sub(&p->conns_total, 1);
	return ok;
}

void proxyd_conn_release(Proxyd *p, const struct sockaddr *peer)
{
	uint8_t key[16];
	peer_key(peer, key);
	pthread_mutex_lock(&p->clients_lock);
	ClientCount **b = &p->clients[peer_hash(key, p->n_client_buckets)];
	for (ClientCount **e = b; *e; e = &(*e)->next)
		if (memcmp((*e)->addr, key, 16) == 0) {
			if (--(*e)->count == 0) {
				ClientCount *dead = *e;
				*e = dead->next;
				free(dead);
			}
			break;
		}
	pthread_mutex_unlock(&p->clients_lock);
	atomic_fetch_sub(&p->conns_total, 1);
}

void proxyd_clients_clear(Proxyd *p)
{
	for (size_t i = 0; i < p->n_client_buckets; i++)
		while (p->clients[i]) {
			ClientCount *e = p->clients[i];
			p->clients[i] = e->next;
			free(e);
		}
}

/* ---- workers ---- */

Proxyd *worker_proxyd(Worker *w)
{
	return w->p;
}

uv_loop_t *worker_uv(Worker *w)
{
	return &w->loop;
}

bool worker_is_stopping(Worker *w)
{
	return w->stopping;
}

int worker_on_routes_changed(Worker *w, void (*cb)(void *userdata), void *userdata)
{
	WorkerHook *h = malloc(sizeof *h);
	if (!h)
		return -ENOMEM;
	*h = (WorkerHook){ .next = w->hooks, .cb = cb, .userdata = userdata };
	w->hooks = h;
	return 0;
}

static void on_routes_changed(uv_async_t *a)
{
	Worker *w = a->data;
	for (WorkerHook *h = w->hooks; h; h = h->next)
		h->cb(h->userdata);
}

static void listeners_poll(Worker *w, bool on);

static void on_accept_retry(uv_timer_t *t)
{
	Worker *w = t->data;
	if (!w->stopping)
		listeners_poll(w, true);
}

static void on_listen(uv_poll_t *h, int status, int events)
{
	WorkerListener *l = h->data;
	Worker *w = l->w;
	for (int i = 0; i < ACCEPTS_PER_EVENT && !w->stopping; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN)
				return;
			/* Out of fds or memory: stop accepting a moment, else we spin. */
			log_warning("accept: %m; pausing new connections for 100 ms");
			listeners_poll(w, false);
			uv_timer_start(&w->accept_timer, on_accept_retry, 100, 0);
			return;
		}
		if (!proxyd_conn_admit(w->p, (struct sockaddr *)&ss)) {
			log_debug("connection limit reached: refusing a connection");
			close(fd);
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		int r = conn_new(w, fd, l->tls, (struct sockaddr *)&ss, len);
		if (r < 0) {
			log_debug("new connection: %s", strerror(-r));
			proxyd_conn_release(w->p, (struct sockaddr *)&ss);
			close(fd);
		}
	}
}

static void listeners_poll(Worker *w, bool on)
{
	for (size_t i = 0; i < w->n_listeners; i++) {
		WorkerListener *l = &w->listeners[i];
		if (!l->open)
			continue;
		if (on)
			uv_poll_start(&l->poll, UV_READABLE, on_listen);
		else
			uv_poll_stop(&l->poll);
	}
}

static void on_check(uv_check_t *h)
{
	Worker *w = h->data;
	if (w->pending)
		conn_run_pending(w);
	if (w->stopping && w->n_conns == 0 && !uv_is_closing((uv_handle_t *)&w->check)) {
		/* Done: close our handles; uv_run returns once they are closed. */
		uv_close((uv_handle_t *)&w->check, NULL);
		uv_close((uv_handle_t *)&w->idle, NULL);
		uv_close((uv_handle_t *)&w->accept_timer, NULL);
		uv_close((uv_handle_t *)&w->shutdown_timer, NULL);
		uv_close((uv_handle_t *)&w->stop_async, NULL);
		if (w->routes_registered) {
			routes_remove_listener(w->p->routes, &w->routes_async);
			w->routes_registered = false;
		}
		uv_close((uv_handle_t *)&w->routes_async, NULL);
		/* Other modules' handles on this loop (the upstream pool's idle connections,
		 * the exchanges' timers) have no teardown of their own: stop here, and
		 * worker_main() closes what is left. */
		uv_stop(&w->loop);
	}
}

static void on_idle_noop(uv_idle_t *h)
{
}

static void on_shutdown_timeout(uv_timer_t *t)
{
	Worker *w = t->data;
	if (w->n_conns > 0)
		log_info("worker %u: %zu connection(s) still open after %d s: closing them",
			 w->index, w->n_conns, SHUTDOWN_GRACE_MS / 1000);
	conn_shutdown_all(w, true);
	/* Let the check handle see the empty list even if nothing else wakes the loop. */
	uv_idle_start(&w->idle, on_idle_noop);
	w->idle_active = true;
}

static void on_stop(uv_async_t *a)
{
	Worker *w = a->data;
	if (w->stopping)
		return;
	w->stopping = true;
	uv_timer_stop(&w->accept_timer);
	for (size_t i = 0; i < w->n_listeners; i++) {
		WorkerListener *l = &w->listeners[i];
		if (!l->open)
			continue;
		l->open = false;
		uv_close((uv_handle_t *)&l->poll, NULL);
		if (l->owned)
			l->fd = safe_close(l->fd);
	}
	conn_shutdown_all(w, false);
	uv_timer_start(&w->shutdown_timer, on_shutdown_timeout, SHUTDOWN_GRACE_MS, 0);
	/* The check handle ends the loop once the last connection is gone. */
	w->idle_active = true;
	uv_idle_start(&w->idle, on_idle_noop);
}

int worker_new(Proxyd *p, unsigned index, Worker **ret)
{
	Worker *w = calloc(1, sizeof(Worker));
	if (!w)
		return -ENOMEM;
	w->p = p;
	w->index = index;
	w->rbuf_size = READ_BUFFER_SIZE;
	w->rbuf = malloc(w->rbuf_size);
	w->listeners = calloc(p->n_listeners ? p->n_listeners : 1, sizeof(WorkerListener));
	if (!w->rbuf || !w->listeners)
		goto oom;
	int r = uv_loop_init(&w->loop);
	if (r < 0) {
		free(w->rbuf);
		free(w->listeners);
		free(w);
		return r;
	}
	uv_async_init(&w->loop, &w->stop_async, on_stop);
	uv_async_init(&w->loop, &w->routes_async, on_routes_changed);
	uv_check_init(&w->loop, &w->check);
	uv_idle_init(&w->loop, &w->idle);
	uv_timer_init(&w->loop, &w->accept_timer);
	uv_timer_init(&w->loop, &w->shutdown_timer);
	w->stop_async.data = w->routes_async.data = w->check.data = w->idle.data = w;
	w->accept_timer.data = w->shutdown_timer.data = w;
	uv_check_start(&w->check, on_check);
	/* The timers and the routes wakeup must not keep the loop alive on their own;
	 * the check handle (closed at the end) does. */
	uv_unref((uv_handle_t *)&w->routes_async);

	for (size_t i = 0; i < p->n_listeners; i++) {
		ProxydListener *pl = &p->listeners[i];
		WorkerListener *l = &w->listeners[w->n_listeners];
		l->fd = pl->shared ? pl->fds[0] : pl->fds[index];
		l->tls = pl->tls;
		l->owned = !pl->shared;
		l->w = w;
		if (uv_poll_init(&w->loop, &l->poll, l->fd) < 0)
			continue;
		l->poll.data = l;
		l->open = true;
		w->n_listeners++;
		if (l->owned)
			pl->fds[index] = -1; /* the worker closes it */
	}
	if (p->routes) {
		r = routes_add_listener(p->routes, &w->routes_async);
		if (r >= 0)
			w->routes_registered = true;
	}
	*ret = w;
	return 0;
oom:
	free(w->rbuf);
	free(w->listeners);
	free(w);
	return -ENOMEM;
}

static void close_walk(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void *worker_main(void *userdata)
{
	Worker *w = userdata;
	listeners_poll(w, true);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	/* On this thread: their close callbacks may use thread-local state. */
	uv_walk(&w->loop, close_walk, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	return NULL;
}

int worker_start(Worker *w)
{
	int r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r != 0)
		return -r;
	w->started = true;
	return 0;
}

void worker_stop(Worker *w)
{
	uv_async_send(&w->stop_async);
}

Worker *worker_join_free(Worker *w)
{
	if (!w)
		return NULL;
	if (w->started)
		pthread_join(w->thread, NULL);
	if (w->routes_registered)
		routes_remove_listener(w->p->routes, &w->routes_async);
	/* A worker that never ran (start failed) still has its handles open. */
	uv_walk(&w->loop, close_walk, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&w->loop);
	for (size_t i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].owned)
			safe_close(w->listeners[i].fd);
	while (w->hooks) {
		WorkerHook *h = w->hooks;
		w->hooks = h->next;
		free(h);
	}
	worker_free_chunks(w);
	free(w->listeners);
	free(w->rbuf);
	free(w);
	return NULL;
}

/* Connections we may hold: two fds each (client + upstream), a reserve for the rest. */
unsigned proxyd_max_connections(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 512;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
		struct rlimit nl = { .rlim_cur = want, .rlim_max = rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
			rl.rlim_cur = want;
	}
	rlim_t n = rl.rlim_cur == RLIM_INFINITY ? 1048576 : rl.rlim_cur;
	if (n < 256)
		return 64;
	return (unsigned)MIN((n - 128) / 2, (rlim_t)1000000);
}
