/* SPDX-License-Identifier: MIT */
/*
 * Talking to the daemons, and starting superd in the embedded mode (DESIGN §1): when
 * <runtime>/superd.rpc does not answer, take <runtime>/localctl-start.lock, look again,
 * start locald-superd detached (own session, stdin /dev/null, output appended to
 * <state>/superd.log) and wait for it to answer Ping. superd holds <runtime>/superd.lock
 * itself, so even starts that bypass our lock end with one daemon.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#ifdef __linux__
#include <sys/inotify.h>
#include <sys/syscall.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "paths.h"
#include "strutil.h"
#include "time-util.h"

extern char **environ;

#define SUPERD_START_TIMEOUT_USEC (5 * USEC_PER_SEC)

static int runtime_dir(Ctl *ctl, const char **ret)
{
	if (!ctl->runtime_dir) {
		int r = locald_runtime_dir(&ctl->runtime_dir);
		if (r < 0)
			return r;
	}
	*ret = ctl->runtime_dir;
	return 0;
}

int ctl_client_new(Ctl *ctl, const char *daemon, BusZmtpClient **ret)
{
	const char *rt;
	int r = runtime_dir(ctl, &rt);
	if (r < 0)
		return r;
	_cleanup_free_ char *ep = NULL;
	r = bus_endpoint(rt, daemon, BUS_SOCKET_RPC, &ep);
	if (r < 0)
		return r;
	return bus_zmtp_client_new(ep, ret);
}

int ctl_superd(Ctl *ctl, BusZmtpClient **ret)
{
	if (!ctl->superd) {
		int r = ctl_client_new(ctl, "superd", &ctl->superd);
		if (r < 0)
			return ctl_fail(ctl, EXIT_FAILED, "check $LOCALD_RUNTIME_DIR",
					"cannot reach locald-superd: %s", strerror(-r));
	}
	*ret = ctl->superd;
	return 0;
}

static int ping(BusZmtpClient *c, uint64_t timeout_ms)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Ping p = LOCALD__V1__PING__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_PING;
	req.ping = &p;
	BusReply *reply = NULL;
	int r = bus_zmtp_client_call(c, &req, timeout_ms, &reply);
	if (r < 0)
		return r;
	r = reply->result_case == LOCALD__V1__REPLY__RESULT_PONG ? 0 : -EPROTO;
	bus_reply_free(reply);
	return r;
}

bool ctl_superd_alive(Ctl *ctl, uint64_t timeout_ms)
{
	BusZmtpClient *c = NULL;
	if (!ctl->superd && ctl_client_new(ctl, "superd", &ctl->superd) < 0)
		return false;
	c = ctl->superd;
	return ping(c, timeout_ms) == 0;
}

int ctl_superd_binary(char **ret)
{
	const char *e = getenv("LOCALD_SUPERD");
	if (!isempty(e)) {
		*ret = strdup(e);
		return *ret ? 0 : -ENOMEM;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		/* No /proc (not Linux): whatever PATH finds. */
		*ret = strdup("locald-superd");
		return *ret ? 0 : -ENOMEM;
	}
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	/* Installed: next to us. Build tree: build/ctl/localctl → build/services/superd/. */
	static const char *const candidates[] = { "locald-superd",
						  "../services/superd/locald-superd",
						  "../libexec/locald/locald-superd" };
	for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
		_cleanup_free_ char *p = path_join(self, candidates[i]);
		if (!p)
			return -ENOMEM;
		if (access(p, X_OK) == 0) {
			*ret = TAKE_PTR(p);
			return 0;
		}
	}
	return -ENOENT;
}

static void print_log_tail(Ctl *ctl, const char *log_path)
{
	_cleanup_close_ int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t start = end > 2048 ? end - 2048 : 0;
	char buf[2049];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, start);
	if (n <= 0)
		return;
	buf[n] = 0;
	/* The last 10 lines. */
	int lines = 0;
	char *p = buf + n;
	while (p > buf) {
		p--;
		if (*p == '\n' && p != buf + n - 1 && ++lines == 10) {
			p++;
			break;
		}
	}
	fprintf(stderr, "last lines of %s:\n", log_path);
	fputs(p, stderr);
	if (n > 0 && buf[n - 1] != '\n')
		fputc('\n', stderr);
}

static int spawn_superd(Ctl *ctl, const char *binary, const char *log_path, pid_t *ret_pid)
{
	_cleanup_close_ int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int log =
	    open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
	if (null < 0 || log < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (setsid() < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(log, STDOUT_FILENO) < 0 ||
		    dup2(log, STDERR_FILENO) < 0)
			_exit(127);
		if (chdir("/") < 0)
			_exit(127);
		execlp(binary, binary, (char *)NULL);
		dprintf(STDERR_FILENO, "localctl: cannot run %s: %s\n", binary, strerror(errno));
		_exit(127);
	}
	*ret_pid = pid;
	return 0;
}

/*
 * Sleep until something appears in the runtime directory (inotify), at most timeout_ms:
 * superd binding superd.rpc wakes us at once. Without inotify, just the time-out.
 */
static void wait_runtime_change(int inotify_fd, int timeout_ms)
{
	struct pollfd p = { .fd = inotify_fd, .events = POLLIN };
	if (poll(&p, inotify_fd >= 0 ? 1 : 0, timeout_ms) > 0) {
		char buf[4096];
		while (read(inotify_fd, buf, sizeof(buf)) > 0)
			;
	}
}

static int open_runtime_watch(const char *rt)
{
#ifdef __linux__
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd >= 0 && inotify_add_watch(fd, rt, IN_CREATE | IN_MOVED_TO | IN_ATTRIB) < 0)
		fd = safe_close(fd);
	return fd;
#else
	return -1;
#endif
}

/* Wait for pid to exit, at most timeout_ms. 0, or -ETIMEDOUT. */
static int wait_pid_gone(pid_t pid, uint64_t timeout_ms)
{
	usec_t deadline = now_monotonic() + timeout_ms * USEC_PER_MSEC;
	_cleanup_close_ int pidfd = -1;
#if defined(__linux__) && defined(SYS_pidfd_open)
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
	while (kill(pid, 0) == 0) {
		/* A zombie child of ours (we started it in this process) counts as gone. */
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return 0;
		usec_t now = now_monotonic();
		if (now > deadline)
			return -ETIMEDOUT;
		/* The pidfd turns readable when it exits; without one, look every 10 ms. */
		int left = (int)MIN((deadline - now) / USEC_PER_MSEC + 1, (usec_t)1000);
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		poll(&p, pidfd >= 0 ? 1 : 0, pidfd >= 0 ? left : MIN(left, 10));
	}
	return 0;
}

int ctl_superd_ensure(Ctl *ctl, BusZmtpClient **ret)
{
	if (ctl_superd_alive(ctl, 1000))
		return ctl_superd(ctl, ret);

	_cleanup_free_ char *rt = NULL, *state = NULL, *binary = NULL;
	int r = locald_runtime_dir_ensure(&rt);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, "set $LOCALD_RUNTIME_DIR to a directory you own",
				"runtime directory: %s", strerror(-r));
	r = locald_state_dir_ensure(&state);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, "set $LOCALD_STATE_DIR to a directory you own",
				"state directory: %s", strerror(-r));
	r = ctl_superd_binary(&binary);
	if (r < 0)
		return ctl_fail(ctl, EXIT_UNREACHABLE,
				"install it next to localctl, or set $LOCALD_SUPERD to its path",
				"locald-superd not found next to localctl");

	_cleanup_free_ char *lock_path = path_join(rt, "localctl-start.lock");
	_cleanup_free_ char *log_path = path_join(state, "superd.log");
	if (!lock_path || !log_path)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	_cleanup_close_ int lock =
	    open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (lock < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "%s: %s", lock_path, strerror(errno));
	/* Blocking: a holder keeps it for at most its own start time-out (or dies, and the
	 * kernel releases it). */
	while (flock(lock, LOCK_EX) < 0)
		if (errno != EINTR)
			return ctl_fail(ctl, EXIT_UNREACHABLE, NULL, "cannot lock %s: %s",
					lock_path, strerror(errno));
	/* Someone else may have started it while we waited for the lock. */
	if (ctl_superd_alive(ctl, 1000))
		return ctl_superd(ctl, ret);

	_cleanup_close_ int watch = open_runtime_watch(rt);
	pid_t pid = 0;
	r = spawn_superd(ctl, binary, log_path, &pid);
	if (r < 0)
		return ctl_fail(ctl, EXIT_UNREACHABLE, NULL, "cannot start %s: %s", binary,
				strerror(-r));
	usec_t deadline = now_monotonic() + SUPERD_START_TIMEOUT_USEC;
	bool exited = false;
	int status = 0;
	for (;;) {
		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = true; /* lost the superd.lock race (exit 0) or failed */
		if (ctl_superd_alive(ctl, 200))
			return ctl_superd(ctl, ret);
		if (now_monotonic() > deadline ||
		    (exited && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)))
			break;
		/* Woken when superd binds its socket; every 20 ms without inotify, or to notice
		 * its exit. */
		wait_runtime_change(watch, 20);
	}
	if (!exited)
		kill(pid, SIGTERM);
	ctl_fail(ctl, EXIT_UNREACHABLE, "the lines above are from its log",
		 "locald-superd did not start (%s)", binary);
	print_log_tail(ctl, log_path);
	return EXIT_UNREACHABLE;
}

int ctl_call(Ctl *ctl, BusZmtpClient *c, BusRequest *req, uint64_t timeout_ms, BusReply **ret_reply)
{
	int r = bus_zmtp_client_call(c, req, timeout_ms, ret_reply);
	if (r == -ECONNREFUSED || r == -ENOENT)
		return ctl_fail(ctl, EXIT_UNREACHABLE, "`localctl up` starts it",
				"locald is not running (no locald-superd in %s)",
				strempty(ctl->runtime_dir));
	if (r == -ECONNRESET)
		return ctl_fail(ctl, EXIT_UNREACHABLE, "`localctl up` starts it again",
				"locald-superd went away before answering");
	if (r == -ETIMEDOUT)
		return ctl_fail(ctl, EXIT_UNREACHABLE,
				"`localctl server status` checks it; `localctl server restart` "
				"restarts it",
				"locald-superd did not answer within %llums",
				(unsigned long long)timeout_ms);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "talking to locald-superd: %s",
				strerror(-r));
	return 0;
}

int ctl_call_ok(Ctl *ctl, BusZmtpClient *c, BusRequest *req, uint64_t timeout_ms,
		BusReply **ret_reply)
{
	BusReply *reply = NULL;
	int r = ctl_call(ctl, c, req, timeout_ms, &reply);
	if (r)
		return r;
	const BusErrorMessage *e = bus_reply_get_error(reply);
	if (e) {
		r = ctl_fail_reply(ctl, e, NULL);
		bus_reply_free(reply);
		return r;
	}
	*ret_reply = reply;
	return 0;
}

int ctl_status(Ctl *ctl, const char *project, BusReply **ret_reply)
{
	BusZmtpClient *c = NULL;
	int r = ctl_superd(ctl, &c);
	if (r)
		return r;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Status st = LOCALD__V1__STATUS__INIT;
	st.project = (char *)strempty(project);
	req.call_case = LOCALD__V1__REQUEST__CALL_STATUS;
	req.status = &st;
	return ctl_call_ok(ctl, c, &req, 10000, ret_reply);
}

int ctl_proxy_ports(Ctl *ctl, uint32_t *ret_https, uint32_t *ret_http)
{
	*ret_https = *ret_http = 0;
	_cleanup_(bus_zmtp_client_freep) BusZmtpClient *c = NULL;
	int r = ctl_client_new(ctl, "proxyd", &c);
	if (r < 0)
		return r;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__ListListeners ll = LOCALD__V1__LIST_LISTENERS__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_LIST_LISTENERS;
	req.list_listeners = &ll;
	BusReply *reply = NULL;
	r = bus_zmtp_client_call(c, &req, 1000, &reply);
	if (r < 0)
		return r;
	if (reply->result_case != LOCALD__V1__REPLY__RESULT_LIST_LISTENERS) {
		bus_reply_free(reply);
		return -EPROTO;
	}
	for (size_t i = 0; i < reply->list_listeners->n_listeners; i++) {
		const Locald__V1__Listener *l = reply->list_listeners->listeners[i];
		if (l->scheme == LOCALD__V1__SCHEME__SCHEME_HTTPS && !*ret_https)
			*ret_https = l->port;
		else if (l->scheme == LOCALD__V1__SCHEME__SCHEME_HTTP && !*ret_http)
			*ret_http = l->port;
	}
	bus_reply_free(reply);
	return 0;
}

int ctl_superd_shutdown(Ctl *ctl, uint64_t timeout_ms)
{
	BusZmtpClient *c = NULL;
	int r = ctl_superd(ctl, &c);
	if (r)
		return r;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__GetVersion gv = LOCALD__V1__GET_VERSION__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_GET_VERSION;
	req.get_version = &gv;
	BusReply *reply = NULL;
	r = ctl_call_ok(ctl, c, &req, 2000, &reply);
	if (r)
		return r;
	pid_t pid = (pid_t)reply->version->pid;
	bus_reply_free(reply);

	Locald__V1__Shutdown sd = LOCALD__V1__SHUTDOWN__INIT;
	req = (BusRequest)LOCALD__V1__REQUEST__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_SHUTDOWN;
	req.shutdown = &sd;
	r = ctl_call_ok(ctl, c, &req, 10000, &reply);
	if (r)
		return r;
	bus_reply_free(reply);
	/* It stops every service, then exits. */
	if (pid > 0 && wait_pid_gone(pid, timeout_ms) < 0)
		return ctl_fail(ctl, EXIT_FAILED, "its log is <state>/superd.log",
				"locald-superd (pid %d) did not exit within %llus", (int)pid,
				(unsigned long long)(timeout_ms / 1000));
	return 0;
}

/*
 * Variables that change with where and how `up` is typed, not with what the services
 * need. superd restarts a service whose environment changed, so passing these would
 * restart everything when `up` is run again from another directory or terminal.
 */
static bool is_volatile(const char *kv, size_t len)
{
	static const char *const names[] = { "PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES" };
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strlen(names[i]) == len && strncmp(kv, names[i], len) == 0)
			return true;
	return false;
}

void ctl_env_done(CtlEnv *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->names[i]);
	free(e->names);
	free(e->ptrs);
	free(e->vars);
	*e = (CtlEnv){};
}

int ctl_env_build(CtlEnv *e)
{
	size_t n = 0;
	for (char **v = environ; v && *v; v++)
		n++;
	*e = (CtlEnv){};
	e->vars = calloc(n ? n : 1, sizeof(*e->vars));
	e->ptrs = calloc(n ? n : 1, sizeof(*e->ptrs));
	e->names = calloc(n ? n : 1, sizeof(char *));
	if (!e->vars || !e->ptrs || !e->names) {
		ctl_env_done(e);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		if (!eq || eq == environ[i] || is_volatile(environ[i], (size_t)(eq - environ[i])))
			continue;
		char *name = strndup_safe(environ[i], (size_t)(eq - environ[i]));
		if (!name) {
			ctl_env_done(e);
			return -ENOMEM;
		}
		e->names[e->n] = name;
		locald__v1__env_var__init(&e->vars[e->n]);
		e->vars[e->n].name = name;
		e->vars[e->n].value = (char *)eq + 1;
		e->ptrs[e->n] = &e->vars[e->n];
		e->n++;
	}
	return 0;
}
