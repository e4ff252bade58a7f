/* SPDX-License-Identifier: MIT */
/*
 * Reaping children (superd-spawn.h, "Reaping"): spawn_reap_all(), the per-loop ChildReaper
 * and how an exit status reads to a person.
 */
#include "superd-spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "macro.h"
#include "parse-util.h"
#include "strutil.h"

size_t spawn_reap_all(SpawnReaped *ret, size_t n)
{
	size_t k = 0;
	while (k < n) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			break;
		ret[k++] = (SpawnReaped){ .pid = pid, .status = status };
	}
	return k;
}

int spawn_describe_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		return strfmt(buf, size, "exited with status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status)) {
		const char *name = signal_to_string(WTERMSIG(status));
		char num[32];
		if (!name) {
			(void)strfmt(num, sizeof(num), "signal %d", WTERMSIG(status));
			name = num;
		}
		return strfmt(buf, size, "killed by %s%s", name,
			      WCOREDUMP(status) ? " (core dumped)" : "");
	}
	return strfmt(buf, size, "ended with unknown status 0x%x", (unsigned)status);
}

typedef struct ChildWatch {
	pid_t pid;
	ChildExitFunc func;
	void *userdata;
} ChildWatch;

struct ChildReaper {
	uv_signal_t sigchld;
	ChildWatch *watches;
	size_t n, allocated;
	ChildExitFunc fallback;
	void *fallback_userdata;
	bool dispatching, free_requested;
};

static void reaper_closed(uv_handle_t *h)
{
	ChildReaper *r = h->data;
	free(r->watches);
	free(r);
}

static void reaper_close(ChildReaper *r)
{
	uv_signal_stop(&r->sigchld);
	uv_close((uv_handle_t *)&r->sigchld, reaper_closed);
}

static ssize_t watch_find(ChildReaper *r, pid_t pid)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->watches[i].pid == pid)
			return (ssize_t)i;
	return -1;
}

/* Remove watch i and call it. Returns false if the reaper was freed by the callback. */
static bool watch_fire(ChildReaper *r, size_t i, int status)
{
	ChildWatch w = r->watches[i];
	r->watches[i] = r->watches[--r->n];
	w.func(w.pid, status, w.userdata);
	return !r->free_requested;
}

static void reaper_dispatch(ChildReaper *r)
{
	if (r->dispatching)
		return;
	r->dispatching = true;

	/* Callbacks may add or remove watches: after each one, scan again from the start. */
	bool again = true;
	while (again) {
		again = false;
		for (size_t i = 0; i < r->n; i++) {
			int status = 0;
			pid_t pid = waitpid(r->watches[i].pid, &status, WNOHANG);
			if (pid == 0 || (pid < 0 && errno == EINTR))
				continue;
			/* ECHILD: someone else reaped it; its status is lost (-1). */
			if (!watch_fire(r, i, pid > 0 ? status : -1))
				goto out;
			again = true;
			break;
		}
		if (again || !r->fallback)
			continue;
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		ssize_t i = watch_find(r, pid);
		if (i >= 0) {
			if (!watch_fire(r, (size_t)i, status))
				goto out;
		} else {
			r->fallback(pid, status, r->fallback_userdata);
			if (r->free_requested)
				goto out;
		}
		again = true;
	}
out:
	r->dispatching = false;
	if (r->free_requested)
		reaper_close(r);
}

static void on_sigchld(uv_signal_t *h, int signo)
{
	reaper_dispatch(h->data);
}

int child_reaper_new(uv_loop_t *loop, ChildReaper **ret)
{
	ChildReaper *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int e = uv_signal_init(loop, &r->sigchld);
	if (e < 0) {
		free(r);
		return e;
	}
	r->sigchld.data = r;
	e = uv_signal_start(&r->sigchld, on_sigchld, SIGCHLD);
	if (e < 0) {
		uv_close((uv_handle_t *)&r->sigchld, reaper_closed);
		return e;
	}
	*ret = r;
	return 0;
}

ChildReaper *child_reaper_free(ChildReaper *r)
{
	if (!r)
		return NULL;
	if (r->dispatching)
		r->free_requested = true;
	else
		reaper_close(r);
	return NULL;
}

int child_reaper_watch(ChildReaper *r, pid_t pid, ChildExitFunc func, void *userdata)
{
	if (pid <= 0 || !func)
		return -EINVAL;
	ssize_t i = watch_find(r, pid);
	if (i >= 0) {
		r->watches[i].func = func;
		r->watches[i].userdata = userdata;
		return 0;
	}
	if (r->n == r->allocated) {
		size_t na = r->allocated ? r->allocated * 2 : 16;
		ChildWatch *w = reallocarray(r->watches, na, sizeof(ChildWatch));
		if (!w)
			return -ENOMEM;
		r->watches = w;
		r->allocated = na;
	}
	r->watches[r->n++] = (ChildWatch){ .pid = pid, .func = func, .userdata = userdata };
	return 0;
}

void child_reaper_unwatch(ChildReaper *r, pid_t pid)
{
	ssize_t i = watch_find(r, pid);
	if (i >= 0)
		r->watches[i] = r->watches[--r->n];
}

void child_reaper_set_fallback(ChildReaper *r, ChildExitFunc func, void *userdata)
{
	r->fallback = func;
	r->fallback_userdata = userdata;
}

void child_reaper_check(ChildReaper *r)
{
	reaper_dispatch(r);
}
