/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Starting service processes, knowing them again later, and reaping them.
 *
 * spawn_process() starts the child with clone(CLONE_VM | CLONE_VFORK) on Linux (no page
 * tables copied; the child joins its cgroup by writing "0" to cgroup.procs), or, with
 * spawn_force_fork() / elsewhere, forks (clone3() with CLONE_INTO_CGROUP where the kernel
 * has it, so the child is born in its cgroup; else fork() and the child moves itself),
 * and execs. Between fork and exec the child only makes system
 * calls on data prepared by the parent — no malloc, no stdio, no locks — so it is safe
 * in a threaded superd. In the child, in order:
 *   default dispositions for every signal, then setsid() (own session and process
 *   group: pid == pgid == sid), cgroup join (fork path), stdin/stdout/stderr, the PTY
 *   as controlling terminal, chdir(workdir), an empty signal mask, every fd above 2
 *   marked close-on-exec (close_range), execve().
 * A failing step is reported through a CLOEXEC pipe: spawn_process() returns its errno
 * and a sentence ("exec of 'foo' failed: No such file or directory"), never a child
 * that mysteriously exits 127. The failed child is reaped before returning.
 *
 * The parent blocks every signal around the fork, so no handler of ours (libuv's
 * included) ever runs in the child. Not posix_spawn(): it cannot make a PTY the
 * controlling terminal, start in a cgroup, or say which setup step failed. The parent
 * waits for the exec (EOF on the error pipe; with CLONE_VFORK it is suspended until then); a child stuck before
 * exec (chdir into a hung NFS mount) would stall the loop meanwhile.
 *
 * Reaping: children must only be reaped through one ChildReaper per loop (below) or
 * spawn_reap_all(); do not mix with uv_spawn(), whose children a waitpid(-1) would
 * steal (ChildReaper only reaps the pids it watches unless told to reap everything).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
/* Before <uv.h>: its <sys/param.h> would otherwise have its MIN/MAX redefined by ours. */
#include "macro.h"
#include <uv.h>

typedef enum SpawnOutput {
	SPAWN_OUTPUT_PIPES,  /* stdout and stderr on two pipes */
	SPAWN_OUTPUT_PTY,    /* stdin, stdout, stderr on one PTY, which is the controlling tty */
	SPAWN_OUTPUT_MERGED, /* stdout and stderr on one pipe (health-check commands) */
	SPAWN_OUTPUT_NULL,   /* both to /dev/null */
	SPAWN_OUTPUT_FDS,    /* the caller's fds (SpawnOptions.stdout_fd/stderr_fd), e.g. FIFOs */
	_SPAWN_OUTPUT_MAX,
	_SPAWN_OUTPUT_INVALID = -EINVAL,
} SpawnOutput;

#define SPAWN_PTY_COLUMNS_DEFAULT 120
#define SPAWN_PTY_ROWS_DEFAULT 40

typedef struct SpawnOptions {
	/* Exactly one: a shell string run as `/bin/sh -c command`, or an argv exec'd
	 * directly (argv[0] without '/' is looked up in the PATH of envp, relative PATH
	 * entries against workdir, like execvp). */
	const char *command;
	char *const *argv;
	const char *workdir; /* NULL: superd's own cwd */
	char *const *envp;   /* the complete environment; NULL: empty */
	/* If set, NOTIFY_SOCKET=<this> replaces any NOTIFY_SOCKET in envp. */
	const char *notify_socket;
	SpawnOutput output;
	/* PTY size; 0 means 120x40. With a PTY and no TERM in envp, TERM=xterm-256color. */
	unsigned short pty_columns, pty_rows;
	/* A leaf cgroup directory (superd-cgroup.h) to start in; NULL: none. */
	const char *cgroup;
	/* SPAWN_OUTPUT_FDS: what the child gets as stdout and stderr (still the caller's;
	 * Spawned then has no output fds). */
	int stdout_fd, stderr_fd;
} SpawnOptions;

typedef struct Spawned {
	pid_t pid;           /* also the process group and session id */
	uint64_t start_time; /* /proc/<pid>/stat starttime (clock ticks since boot); 0 if unknown */
	/* Our ends, O_NONBLOCK | O_CLOEXEC; -1 where the output mode has none.
	 * A PTY master reads EIO (not 0) once every holder of the terminal is gone: treat
	 * EIO as end of file. The PTY does not translate "\n" to "\r\n" (ONLCR is off), so
	 * lines come out as the program wrote them. */
	int stdout_fd; /* PIPES, MERGED */
	int stderr_fd; /* PIPES */
	int pty_fd;    /* PTY */
} Spawned;

#define SPAWNED_NULL ((Spawned){ .pid = 0, .stdout_fd = -1, .stderr_fd = -1, .pty_fd = -1 })

/*
 * Start a process. On success fills *ret and returns 0. On failure returns -errno and,
 * if ret_error, a sentence for the user in *ret_error (heap); *ret is untouched.
 */
int spawn_process(const SpawnOptions *o, Spawned *ret, char **ret_error);
/* Close the fds in *s (the process is not touched). */
void spawned_close(Spawned *s);

/* Tests: force the fork() + "write 0 to cgroup.procs" path used on kernels before 5.7. */
void spawn_force_fork_fallback(bool force);
/* Use a copy-on-write fork (clone3 into the cgroup) instead of the CLONE_VM|CLONE_VFORK
 * fast path (tests; $LOCALD_SPAWN_FORK=1). */
void spawn_force_fork(bool force);

/* kill(-pgid, sig). -ESRCH when the group is gone. */
int spawn_kill_group(pid_t pgid, int sig);

/* ---- Knowing a process again (re-adoption after a superd restart) ---- */

typedef struct ProcessStat {
	char comm[64]; /* as in /proc: at most 15 bytes, may contain spaces and ')' */
	char state;    /* 'R', 'S', 'Z', ... */
	pid_t ppid, pgrp, session;
	uint64_t start_time; /* field 22 */
} ProcessStat;

/* Sans-I/O: parse the text of /proc/<pid>/stat. -EBADMSG if malformed. */
int process_stat_parse(const char *text, ProcessStat *ret);
/* Read /proc/<pid>/stat. -ESRCH if there is no such process. */
int process_stat(pid_t pid, ProcessStat *ret);
int process_get_start_time(pid_t pid, uint64_t *ret);
/*
 * 1 if pid exists, is not a zombie and started at start_time (so it is the process we
 * started, not a recycled pid); 0 if not; -errno if we cannot tell.
 */
int process_exists_with_start_time(pid_t pid, uint64_t start_time);

/* ---- Reaping ---- */

typedef struct SpawnReaped {
	pid_t pid;
	int status; /* as from waitpid(): WIFEXITED()/WEXITSTATUS()/WIFSIGNALED()/WTERMSIG() */
} SpawnReaped;

/* waitpid(-1, WNOHANG) until nothing is left: up to n pairs into ret; returns how many. */
size_t spawn_reap_all(SpawnReaped *ret, size_t n);

/* "exited with status 3", "killed by SIGKILL", "killed by SIGSEGV (core dumped)". */
int spawn_describe_status(int status, char *buf, size_t size);

/*
 * One per loop: watches SIGCHLD (uv_signal) and, on each delivery, reaps the watched
 * pids that exited and calls their functions from the loop. Pids nobody watches are
 * left alone (so uv_spawn() keeps working) unless a fallback is set, which makes the
 * reaper reap every child (needed when superd is a child subreaper and adopts orphans)
 * and hand unwatched ones to the fallback.
 *
 * Watch a pid right after spawning it, before returning to the loop: a child reaped
 * with nobody watching is gone for good.
 */
typedef struct ChildReaper ChildReaper;
typedef void (*ChildExitFunc)(pid_t pid, int status, void *userdata);

int child_reaper_new(uv_loop_t *loop, ChildReaper **ret);
/* Stops watching; the memory goes when the loop runs the close callback. NULL-safe. */
ChildReaper *child_reaper_free(ChildReaper *r);
int child_reaper_watch(ChildReaper *r, pid_t pid, ChildExitFunc func, void *userdata);
void child_reaper_unwatch(ChildReaper *r, pid_t pid);
void child_reaper_set_fallback(ChildReaper *r, ChildExitFunc func, void *userdata);
/* Reap now instead of waiting for the next SIGCHLD delivery (e.g. after watching). */
void child_reaper_check(ChildReaper *r);
