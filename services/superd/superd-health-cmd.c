/* SPDX-License-Identifier: MIT */
/* command checks (superd-health.h, "Kinds"). */
#include "superd-health-internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "strutil.h"

/* Command output kept for the reason (the rest is drained and dropped). */
#define COMMAND_OUTPUT_MAX 4096

/*
 * One run of the command. Two things refer to it besides the probe: the reaper's watch of
 * its pid and the poll handle on its output. It is freed once both have let go, whichever
 * is last: the watch fires (cmd_exited) or is pointed elsewhere (cmd_abandon), and the poll
 * handle's close callback has run. An abandoned attempt does not wait for the exit: the
 * reaper may be freed, or the loop stop, before the killed command's SIGCHLD is seen.
 */
struct CmdAttempt {
	HealthProbe *probe; /* NULL once abandoned */
	uv_poll_t poll;
	int fd;
	pid_t pid;
	bool watched;     /* the reaper's watch of pid still has us as its userdata */
	bool poll_active; /* initialized and not yet closing */
	bool poll_closed; /* closed, or never opened */
	char out[COMMAND_OUTPUT_MAX + 1];
	size_t out_len;
};

static void cmd_maybe_free(CmdAttempt *a)
{
	if (!a->watched && a->poll_closed) {
		safe_close(a->fd);
		free(a);
	}
}

static void cmd_poll_closed(uv_handle_t *h)
{
	CmdAttempt *a = h->data;
	a->poll_closed = true;
	cmd_maybe_free(a);
}

static void cmd_close_poll(CmdAttempt *a)
{
	if (a->poll_active) {
		a->poll_active = false;
		uv_poll_stop(&a->poll);
		uv_close((uv_handle_t *)&a->poll, cmd_poll_closed);
	}
}

/* Read what is there; returns false at EOF or error. */
static bool cmd_drain(CmdAttempt *a)
{
	for (;;) {
		char scratch[4096];
		char *dst = a->out_len < COMMAND_OUTPUT_MAX ? a->out + a->out_len : scratch;
		size_t room = a->out_len < COMMAND_OUTPUT_MAX ? COMMAND_OUTPUT_MAX - a->out_len
							      : sizeof(scratch);
		ssize_t n = read(a->fd, dst, room);
		if (n > 0) {
			if (dst != scratch)
				a->out_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

static void cmd_readable(uv_poll_t *h, int status, int events)
{
	CmdAttempt *a = h->data;
	if (status < 0 || !cmd_drain(a))
		cmd_close_poll(a);
}

/* The first non-empty output line, shortened, for the reason. */
static void cmd_first_line(CmdAttempt *a, char *buf, size_t size)
{
	a->out[a->out_len] = 0;
	const char *s = a->out;
	while (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, "\r\n");
	n = MIN(n, (size_t)HEALTH_REASON_QUOTE_MAX);
	(void)strfmt(buf, size, "%.*s", (int)n, s);
}

/* The reaper's watch of an abandoned command: reaped so it leaves no zombie, nothing else. */
static void cmd_orphan_exited(pid_t pid, int status, void *userdata)
{
}

static void cmd_exited(pid_t pid, int status, void *userdata)
{
	CmdAttempt *a = userdata;
	HealthProbe *p = a->probe;
	a->watched = false;
	if (!p) {
		/* Not reached while health_cmd_abandon() repoints the watch; safe regardless. */
		cmd_close_poll(a);
		cmd_maybe_free(a);
		return;
	}
	/* Whatever it printed before exiting is in the pipe already. */
	(void)cmd_drain(a);
	char what[96], line[HEALTH_REASON_QUOTE_MAX + 1], why[400];
	(void)spawn_describe_status(status, what, sizeof(what));
	cmd_first_line(a, line, sizeof(line));
	if (line[0])
		(void)strfmt(why, sizeof(why), "command %s: %s", what, line);
	else
		(void)strfmt(why, sizeof(why), "command %s", what);
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;

	p->cmd = NULL;
	a->probe = NULL;
	cmd_close_poll(a);
	cmd_maybe_free(a);
	health_probe_check_done(p, ok, why, 0);
}

void health_cmd_abandon(HealthProbe *p)
{
	CmdAttempt *a = p->cmd;
	if (!a)
		return;
	p->cmd = NULL;
	a->probe = NULL;
	if (a->watched) {
		/* Not reaped yet, so the group id cannot have been recycled. */
		(void)spawn_kill_group(a->pid, SIGKILL);
		/* The pid is watched, so this replaces the watch in place without allocating:
		 * the reaper still reaps the pid but no longer refers to a, which can go as soon
		 * as its poll handle is closed, even if the reaper or the loop ends first. */
		(void)child_reaper_watch(p->reaper, a->pid, cmd_orphan_exited, NULL);
		a->watched = false;
	}
	cmd_close_poll(a);
	cmd_maybe_free(a);
}

int health_cmd_start(HealthProbe *p, char **ret_error)
{
	SpawnOptions o = {
		.command = p->command,
		.envp = p->envp,
		.workdir = p->workdir,
		.output = SPAWN_OUTPUT_MERGED,
	};
	Spawned s = SPAWNED_NULL;
	int r = spawn_process(&o, &s, ret_error);
	if (r < 0)
		return r;

	CmdAttempt *a = calloc(1, sizeof(*a));
	r = a ? child_reaper_watch(p->reaper, s.pid, cmd_exited, a) : -ENOMEM;
	if (r < 0) {
		(void)spawn_kill_group(s.pid, SIGKILL);
		while (waitpid(s.pid, NULL, 0) < 0 && errno == EINTR)
			;
		spawned_close(&s);
		free(a);
		return r;
	}
	a->pid = s.pid;
	a->watched = true;
	a->fd = TAKE_FD(s.stdout_fd);
	a->probe = p;
	p->cmd = a;
	r = uv_poll_init(p->loop, &a->poll, a->fd);
	a->poll.data = a;
	if (r < 0) {
		/* The exit will still be reaped; we only lose the output. */
		a->poll_closed = true;
		return 0;
	}
	a->poll_active = true;
	if (uv_poll_start(&a->poll, UV_READABLE, cmd_readable) < 0)
		cmd_close_poll(a);
	return 0;
}
