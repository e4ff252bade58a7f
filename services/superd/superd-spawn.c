/* SPDX-License-Identifier: MIT */
#include "superd-spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifdef __linux__
#include <sched.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#endif

#include "macro.h"
#include "parse-util.h"
#include "paths.h"
#include "strutil.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define SHELL_PATH "/bin/sh"
#define PROC_STAT_MAX 4096

/* What went wrong in the child, sent back over the error pipe. */
typedef enum ChildStage {
	STAGE_SETSID = 1,
	STAGE_CGROUP,
	STAGE_STDIO,
	STAGE_CTTY,
	STAGE_CHDIR,
	STAGE_FDS,
	STAGE_EXEC,
} ChildStage;

typedef struct ChildError {
	int32_t stage;
	int32_t error;
} ChildError;

/* Everything the child needs, prepared by the parent so the child never allocates. */
typedef struct ChildSetup {
	char **exec_paths; /* candidates tried in order, like execvp */
	char *const *argv;
	char **envp;
	const char *workdir;
	int stdin_fd, stdout_fd, stderr_fd; /* all > 2 */
	int tty_fd;                         /* PTY slave to make the controlling terminal, or -1 */
	int cgroup_procs_fd;                /* fork path: write "0" here to join; else -1 */
	int error_fd;
} ChildSetup;

static bool force_fork_fallback;

void spawn_force_fork_fallback(bool force)
{
	force_fork_fallback = force;
}

/* ---- The child: async-signal-safe system calls only ---- */

_noreturn_ static void child_fail(int error_fd, ChildStage stage, int error)
{
	ChildError e = { .stage = stage, .error = error };
	ssize_t n = write(error_fd, &e, sizeof(e));
	(void)n;
	_exit(127);
}

static int child_mark_fds_cloexec(int keep_fd)
{
#ifdef __linux__
	/* Every fd above stdio closes at exec, the error pipe included: its EOF is our "ok". */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	/* Before Linux 5.11: close everything except the error pipe now. */
	if ((keep_fd <= 3 || close_range(3, (unsigned)keep_fd - 1, 0) == 0) &&
	    close_range((unsigned)keep_fd + 1, ~0U, 0) == 0)
		return 0;
#endif
	struct rlimit rl;
	int max = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = (int)MIN(rl.rlim_cur, (rlim_t)(1 << 20));
	for (int fd = 3; fd < max; fd++)
		if (fd != keep_fd)
			(void)close(fd);
	return 0;
}

_noreturn_ static void child_run(const ChildSetup *c)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t empty;

	/* Handlers would reset at exec anyway, but SIG_IGN survives it (SIGPIPE!). */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);

	if (setsid() < 0)
		child_fail(c->error_fd, STAGE_SETSID, errno);

	if (c->cgroup_procs_fd >= 0 && write(c->cgroup_procs_fd, "0", 1) < 0)
		child_fail(c->error_fd, STAGE_CGROUP, errno);

	if (c->tty_fd >= 0 && ioctl(c->tty_fd, TIOCSCTTY, 0) < 0)
		child_fail(c->error_fd, STAGE_CTTY, errno);

	/* All source fds are > 2, so no dup2() here overwrites one still needed. */
	if (dup2(c->stdin_fd, STDIN_FILENO) < 0 || dup2(c->stdout_fd, STDOUT_FILENO) < 0 ||
	    dup2(c->stderr_fd, STDERR_FILENO) < 0)
		child_fail(c->error_fd, STAGE_STDIO, errno);

	if (c->workdir && chdir(c->workdir) < 0)
		child_fail(c->error_fd, STAGE_CHDIR, errno);

	if (child_mark_fds_cloexec(c->error_fd) < 0)
		child_fail(c->error_fd, STAGE_FDS, errno);

	sigemptyset(&empty);
	(void)sigprocmask(SIG_SETMASK, &empty, NULL);

	/* execvp's rules: EACCES from any candidate wins over ENOENT; other errors stop. */
	int error = ENOENT;
	bool saw_eacces = false;
	for (char **p = c->exec_paths; *p; p++) {
		execve(*p, c->argv, c->envp);
		int e = errno;
		if (e == EACCES)
			saw_eacces = true;
		else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV &&
			 e != ETIMEDOUT) {
			error = e;
			saw_eacces = false;
			break;
		}
	}
	child_fail(c->error_fd, STAGE_EXEC, saw_eacces ? EACCES : error);
}

/* ---- The parent ---- */

static int pipe_cloexec(int fds[2])
{
#ifdef __linux__
	return RET_NERRNO(pipe2(fds, O_CLOEXEC));
#else
	if (pipe(fds) < 0)
		return -errno;
	if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) < 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) < 0) {
		int r = -errno;
		fds[0] = safe_close(fds[0]);
		fds[1] = safe_close(fds[1]);
		return r;
	}
	return 0;
#endif
}

static int fd_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* The child dup2()s onto 0..2; keep every fd it reads from out of that range. */
static int fd_move_above_stdio(int *fd)
{
	if (*fd > STDERR_FILENO)
		return 0;
	int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (n < 0)
		return -errno;
	safe_close(*fd);
	*fd = n;
	return 0;
}

static int open_pty(unsigned short cols, unsigned short rows, int *ret_master, int *ret_slave)
{
	_cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	_cleanup_close_ int slave = -1;
	if (master < 0)
		return -errno;
	if (grantpt(master) < 0 || unlockpt(master) < 0)
		return -errno;
#ifdef TIOCGPTPEER
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
#endif
	if (slave < 0) {
		char name[128];
		int r = ptsname_r(master, name, sizeof(name));
		if (r != 0)
			return -r;
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0)
			return -errno;
	}

	/* Log lines should end in "\n" as written, not "\r\n". */
	struct termios t;
	if (tcgetattr(slave, &t) < 0)
		return -errno;
	t.c_oflag &= ~(tcflag_t)ONLCR;
	if (tcsetattr(slave, TCSANOW, &t) < 0)
		return -errno;
	struct winsize ws = {
		.ws_col = cols ? cols : SPAWN_PTY_COLUMNS_DEFAULT,
		.ws_row = rows ? rows : SPAWN_PTY_ROWS_DEFAULT,
	};
	if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
		return -errno;
	int r = fd_nonblock(master);
	if (r < 0)
		return r;
	*ret_master = TAKE_FD(master);
	*ret_slave = TAKE_FD(slave);
	return 0;
}

static bool env_has(char *const *env, const char *key)
{
	size_t kl = strlen(key);
	STRV_FOREACH (e, env)
		if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
			return true;
	return false;
}

static int build_env(const SpawnOptions *o, char ***ret)
{
	_cleanup_strv_free_ char **env = NULL;
	STRV_FOREACH (e, o->envp) {
		if (o->notify_socket && startswith(*e, "NOTIFY_SOCKET="))
			continue;
		if (strv_extend(&env, *e) < 0)
			return -ENOMEM;
	}
	if (o->notify_socket) {
		char *e = strdupf("NOTIFY_SOCKET=%s", o->notify_socket);
		if (!e || strv_push(&env, e) < 0) {
			free(e);
			return -ENOMEM;
		}
	}
	/* Tools decide on colours from TERM; a terminal without one is "dumb" to them. */
	if (o->output == SPAWN_OUTPUT_PTY && !env_has(env, "TERM") &&
	    strv_extend(&env, "TERM=xterm-256color") < 0)
		return -ENOMEM;
	if (!env) {
		env = calloc(1, sizeof(char *));
		if (!env)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(env);
	return 0;
}

static const char *env_get(char *const *env, const char *key)
{
	size_t kl = strlen(key);
	STRV_FOREACH (e, env)
		if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
			return *e + kl + 1;
	return NULL;
}

/* The paths execvp would try for argv0, with PATH taken from the service's env. */
static int exec_candidates(const char *argv0, char *const *env, char ***ret)
{
	_cleanup_strv_free_ char **l = NULL;
	if (strchr(argv0, '/')) {
		if (strv_extend(&l, argv0) < 0)
			return -ENOMEM;
	} else {
		const char *path = env_get(env, "PATH");
		if (!path)
			path = DEFAULT_PATH;
		for (const char *p = path;;) {
			const char *colon = strchr(p, ':');
			size_t len = colon ? (size_t)(colon - p) : strlen(p);
			/* An empty entry means the current (working) directory. */
			char *c =
			    len ? strdupf("%.*s/%s", (int)len, p, argv0) : strdupf("./%s", argv0);
			if (!c || strv_push(&l, c) < 0) {
				free(c);
				return -ENOMEM;
			}
			if (!colon)
				break;
			p = colon + 1;
		}
	}
	*ret = TAKE_PTR(l);
	return 0;
}

static char *describe_child_error(const SpawnOptions *o, const ChildError *e)
{
	const char *err = strerror(e->error);
	switch (e->stage) {
	case STAGE_SETSID:
		return strdupf("setsid() failed: %s", err);
	case STAGE_CGROUP:
		return strdupf("cannot join cgroup '%s': %s", strempty(o->cgroup), err);
	case STAGE_STDIO:
		return strdupf("cannot set up stdin/stdout/stderr: %s", err);
	case STAGE_CTTY:
		return strdupf("cannot make the PTY the controlling terminal: %s", err);
	case STAGE_CHDIR:
		return strdupf("cannot change to working directory '%s': %s", strempty(o->workdir),
			       err);
	case STAGE_FDS:
		return strdupf("cannot close inherited file descriptors: %s", err);
	case STAGE_EXEC:
		return strdupf(
		    "exec of '%s' failed: %s%s", o->command ? SHELL_PATH : o->argv[0], err,
		    e->error == ENOEXEC ? " (not a binary, and a script needs a #! line)" : "");
	}
	return strdupf("child setup failed: %s", err);
}

#ifdef __linux__
/*
 * The fast path: clone(CLONE_VM | CLONE_VFORK), like posix_spawn() does. The child runs
 * on this stack, in our address space, until it execs; we are suspended meanwhile. No
 * page tables are copied and no copy-on-write faults follow in either process, which is
 * most of what a fork costs superd (and very much more under nested virtualization,
 * where each fault and TLB flush exits to the hypervisor). child_run() only makes system
 * calls on data we prepared — no malloc, no locks — so sharing memory with our other
 * threads is safe; it writes nothing but its own stack (and errno, in our suspended
 * thread's TLS). Only the loop thread spawns, one at a time, so one stack is enough.
 * The child joins its cgroup by writing to cgroup.procs (clone() has no
 * CLONE_INTO_CGROUP).
 */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
/* ASan cannot follow a child running on a stack it did not make (false reports): the
 * sanitizer builds take the fork path. */
#define VFORK_DEFAULT false
#else
#define VFORK_DEFAULT true
#endif
#define VFORK_STACK_SIZE (256 * 1024)
static _Alignas(64) char vfork_stack[VFORK_STACK_SIZE];
static bool use_fork = !VFORK_DEFAULT;

static int vfork_child(void *arg)
{
	child_run(arg);
}
#endif

void spawn_force_fork(bool force)
{
#ifdef __linux__
	use_fork = force || !VFORK_DEFAULT;
#else
	(void)force;
#endif
}

static pid_t do_clone(int cgroup_fd, bool *ret_joined)
{
	*ret_joined = false;
#if defined(__linux__) && defined(CLONE_INTO_CGROUP) && defined(SYS_clone3)
	static bool clone3_unsupported;
	if (cgroup_fd >= 0 && !clone3_unsupported && !force_fork_fallback) {
		struct clone_args args = {
			.flags = CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)cgroup_fd,
		};
		/* Without CLONE_VM and a stack this behaves like fork(): a copy-on-write child. */
		long pid = syscall(SYS_clone3, &args, sizeof(args));
		if (pid >= 0) {
			*ret_joined = true;
			return (pid_t)pid;
		}
		/* ENOSYS: before 5.3; E2BIG: struct too new; EINVAL: no CLONE_INTO_CGROUP (< 5.7).
		 * Anything else is about the cgroup itself, which the fork path would meet too. */
		if (errno == ENOSYS || errno == E2BIG)
			clone3_unsupported = true;
		else if (errno != EINVAL)
			return -1;
	}
#endif
	return fork();
}

int spawn_process(const SpawnOptions *o, Spawned *ret, char **ret_error)
{
	_cleanup_strv_free_ char **env = NULL, **paths = NULL;
	_cleanup_close_ int null_fd = -1, out_r = -1, out_w = -1, err_r = -1, err_w = -1,
			    pty_master = -1, pty_slave = -1, cgroup_fd = -1, procs_fd = -1,
			    error_r = -1, error_w = -1;
	int r;

	if (!o || (!o->command == !o->argv) || (o->argv && !o->argv[0]) || o->output < 0 ||
	    o->output >= _SPAWN_OUTPUT_MAX)
		return -EINVAL;

	r = build_env(o, &env);
	if (r < 0)
		return r;
	r = exec_candidates(o->command ? SHELL_PATH : o->argv[0], env, &paths);
	if (r < 0)
		return r;
	char *sh_argv[] = { (char *)"sh", (char *)"-c", (char *)o->command, NULL };

	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (null_fd < 0)
		return -errno;
	r = fd_move_above_stdio(&null_fd);
	if (r < 0)
		return r;

	int fds[2];
	if (o->output == SPAWN_OUTPUT_PIPES || o->output == SPAWN_OUTPUT_MERGED) {
		r = pipe_cloexec(fds);
		if (r < 0)
			return r;
		out_r = fds[0];
		out_w = fds[1];
		if ((r = fd_move_above_stdio(&out_w)) < 0 || (r = fd_nonblock(out_r)) < 0)
			return r;
	}
	if (o->output == SPAWN_OUTPUT_PIPES) {
		r = pipe_cloexec(fds);
		if (r < 0)
			return r;
		err_r = fds[0];
		err_w = fds[1];
		if ((r = fd_move_above_stdio(&err_w)) < 0 || (r = fd_nonblock(err_r)) < 0)
			return r;
	}
	if (o->output == SPAWN_OUTPUT_FDS) {
		if (o->stdout_fd < 0 || o->stderr_fd < 0)
			return -EBADF;
		out_w = fcntl(o->stdout_fd, F_DUPFD_CLOEXEC, 3);
		if (out_w < 0)
			return -errno;
		err_w = fcntl(o->stderr_fd, F_DUPFD_CLOEXEC, 3);
		if (err_w < 0)
			return -errno;
	}
	if (o->output == SPAWN_OUTPUT_PTY) {
		r = open_pty(o->pty_columns, o->pty_rows, &pty_master, &pty_slave);
		if (r < 0) {
			if (ret_error)
				*ret_error = strdupf("cannot allocate a PTY: %s", strerror(-r));
			return r;
		}
		if ((r = fd_move_above_stdio(&pty_slave)) < 0)
			return r;
	}

	if (o->cgroup) {
		cgroup_fd = open(o->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_cleanup_free_ char *procs = path_join(o->cgroup, "cgroup.procs");
		if (!procs)
			return -ENOMEM;
		if (cgroup_fd >= 0)
			procs_fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (cgroup_fd < 0 || procs_fd < 0) {
			r = -errno;
			if (ret_error)
				*ret_error =
				    strdupf("cannot open cgroup '%s': %s", o->cgroup, strerror(-r));
			return r;
		}
		if ((r = fd_move_above_stdio(&procs_fd)) < 0)
			return r;
	}

	r = pipe_cloexec(fds);
	if (r < 0)
		return r;
	error_r = fds[0];
	error_w = fds[1];
	if ((r = fd_move_above_stdio(&error_w)) < 0)
		return r;

	ChildSetup setup = {
		.exec_paths = paths,
		.argv = o->command ? sh_argv : o->argv,
		.envp = env,
		.workdir = o->workdir,
		.stdin_fd = pty_slave >= 0 ? pty_slave : null_fd,
		.stdout_fd = pty_slave >= 0 ? pty_slave
			     : out_w >= 0   ? out_w
					    : null_fd,
		.stderr_fd = pty_slave >= 0 ? pty_slave
			     : err_w >= 0   ? err_w
			     : out_w >= 0   ? out_w
					    : null_fd,
		.tty_fd = pty_slave,
		.cgroup_procs_fd = -1,
		.error_fd = error_w,
	};

	sigset_t all, saved;
	sigfillset(&all);
	r = pthread_sigmask(SIG_SETMASK, &all, &saved);
	if (r != 0)
		return -r;
	bool joined = false;
	pid_t pid;
#ifdef __linux__
	if (!use_fork && !force_fork_fallback) {
		setup.cgroup_procs_fd = procs_fd;
		pid = clone(vfork_child, vfork_stack + VFORK_STACK_SIZE,
			    CLONE_VM | CLONE_VFORK | SIGCHLD, &setup);
	} else
#endif
		pid = do_clone(cgroup_fd, &joined);
	if (pid == 0) {
		if (!joined)
			setup.cgroup_procs_fd = procs_fd;
		child_run(&setup);
	}
	int clone_errno = errno;
	(void)pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0) {
		r = -clone_errno;
		if (ret_error)
			*ret_error = o->cgroup
					 ? strdupf("cannot start a process in cgroup '%s': %s",
						   o->cgroup, strerror(clone_errno))
					 : strdupf("fork failed: %s", strerror(clone_errno));
		return r;
	}

	/* Our copies of the child's ends must go, or we would never see EOF / EIO. */
	error_w = safe_close(error_w);
	out_w = safe_close(out_w);
	err_w = safe_close(err_w);
	pty_slave = safe_close(pty_slave);

	ChildError ce;
	ssize_t n;
	do
		n = read(error_r, &ce, sizeof(ce));
	while (n < 0 && errno == EINTR);
	if (n != 0) {
		/* The child failed before exec (or we cannot tell): it is exiting; reap it here so
		 * nobody else sees a pid that never ran the service. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof(ce)) {
			r = n < 0 ? -errno : -EIO;
			if (ret_error)
				*ret_error = strdupf("lost track of the child during setup: %s",
						     strerror(-r));
			return r;
		}
		if (ret_error)
			*ret_error = describe_child_error(o, &ce);
		return ce.error > 0 ? -ce.error : -EIO;
	}

	uint64_t start_time = 0;
	(void)process_get_start_time(pid, &start_time);
	*ret = (Spawned){
		.pid = pid,
		.start_time = start_time,
		.stdout_fd = TAKE_FD(out_r),
		.stderr_fd = TAKE_FD(err_r),
		.pty_fd = TAKE_FD(pty_master),
	};
	return 0;
}

void spawned_close(Spawned *s)
{
	s->stdout_fd = safe_close(s->stdout_fd);
	s->stderr_fd = safe_close(s->stderr_fd);
	s->pty_fd = safe_close(s->pty_fd);
}

int spawn_kill_group(pid_t pgid, int sig)
{
	if (pgid <= 1)
		return -EINVAL;
	return RET_NERRNO(kill(-pgid, sig));
}

/* ---- /proc/<pid>/stat ---- */

int process_stat_parse(const char *text, ProcessStat *ret)
{
	const char *open = strchr(text, '(');
	const char *close = strrchr(text, ')'); /* comm may itself contain ')' */
	if (!open || !close || close < open || close[1] != ' ')
		return -EBADMSG;

	ProcessStat st = { 0 };
	size_t cl = MIN((size_t)(close - open - 1), sizeof(st.comm) - 1);
	memcpy(st.comm, open + 1, cl);
	st.comm[cl] = 0;

	/* Fields from 3 (state) on, separated by single spaces. */
	const char *p = close + 2;
	for (unsigned field = 3; field <= 22; field++) {
		const char *end = p;
		while (*end && *end != ' ' && *end != '\n')
			end++;
		if (end == p)
			return -EBADMSG;
		char tok[32];
		if ((size_t)(end - p) >= sizeof(tok))
			return -EBADMSG;
		memcpy(tok, p, (size_t)(end - p));
		tok[end - p] = 0;

		int64_t v = 0;
		if (field == 3) {
			if (end - p != 1)
				return -EBADMSG;
			st.state = tok[0];
		} else if (field == 4 || field == 5 || field == 6 || field == 22) {
			if (safe_atoi64(tok, &v) < 0 || v < 0)
				return -EBADMSG;
			if (field == 4)
				st.ppid = (pid_t)v;
			else if (field == 5)
				st.pgrp = (pid_t)v;
			else if (field == 6)
				st.session = (pid_t)v;
			else
				st.start_time = (uint64_t)v;
		}
		p = *end == ' ' ? end + 1 : end;
	}
	*ret = st;
	return 0;
}

int process_stat(pid_t pid, ProcessStat *ret)
{
	char path[64], text[PROC_STAT_MAX];
	int r = strfmt(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (r < 0 || pid <= 0)
		return -EINVAL;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, text + len, sizeof(text) - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ESRCH ? -ESRCH : -errno;
		}
		if (n == 0 || (len += (size_t)n) == sizeof(text) - 1)
			break;
	}
	text[len] = 0;
	return process_stat_parse(text, ret);
}

int process_get_start_time(pid_t pid, uint64_t *ret)
{
	ProcessStat st;
	int r = process_stat(pid, &st);
	if (r < 0)
		return r;
	*ret = st.start_time;
	return 0;
}

int process_exists_with_start_time(pid_t pid, uint64_t start_time)
{
	ProcessStat st;
	int r = process_stat(pid, &st);
	if (r == -ESRCH)
		return 0;
	if (r < 0)
		return r;
	if (st.state == 'Z' || st.state == 'X')
		return 0;
	return st.start_time == start_time;
}
