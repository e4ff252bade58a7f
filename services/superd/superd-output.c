/* SPDX-License-Identifier: MIT */
/*
 * A service's output: its stdout/stderr FIFOs (or PTY) read on the loop into the log store,
 * paused while the store's writer catches up (backpressure, never loss).
 */

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "strutil.h"
#include "superd-unit.h"

#define OUTPUT_READ_MAX (64 * 1024)
#define OUTPUT_READS_PER_EVENT 16

void unit_output_close(UnitOutput *o)
{
	if (o->poll) {
		uv_poll_stop(o->poll);
		uv_handle_close_free((uv_handle_t *)o->poll);
		o->poll = NULL;
	}
	o->fd = safe_close(o->fd);
}

/* ---- output ---- */

static void unit_pause_output(Unit *u)
{
	if (u->paused)
		return;
	u->paused = true;
	for (size_t i = 0; i < UNIT_OUTPUTS; i++)
		if (u->out[i].poll)
			uv_poll_stop(u->out[i].poll);
}

static void on_output(uv_poll_t *h, int status, int events);

void unit_resume_output(Unit *u)
{
	if (!u->paused || logstore_backpressure(u->log))
		return;
	u->paused = false;
	for (size_t i = 0; i < UNIT_OUTPUTS; i++)
		if (u->out[i].poll)
			uv_poll_start(u->out[i].poll, UV_READABLE | UV_DISCONNECT, on_output);
}

/* Read what is there now. Returns false once the output reached its end. */
bool unit_output_drain(UnitOutput *o, unsigned max_reads)
{
	static char buf[OUTPUT_READ_MAX];
	Unit *u = o->unit;

	for (unsigned i = 0; i < max_reads && o->fd >= 0; i++) {
		ssize_t n = read(o->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0) /* EOF; a PTY master reads EIO once the terminal is gone */
			return false;
		if (logstore_feed(u->log, o->stream, buf, (size_t)n, now_realtime()) == 1) {
			unit_pause_output(u);
			return true;
		}
	}
	return true;
}

static void on_output(uv_poll_t *h, int status, int events)
{
	UnitOutput *o = h->data;
	if (status < 0 || !unit_output_drain(o, OUTPUT_READS_PER_EVENT)) {
		unit_output_close(o);
		bool open = false;
		for (size_t i = 0; i < UNIT_OUTPUTS; i++)
			open |= o->unit->out[i].fd >= 0;
		if (!open)
			logstore_flush_partial(o->unit->log, now_realtime());
	}
}

int unit_output_open(Unit *u, size_t i, int fd, LogStream stream)
{
	UnitOutput *o = &u->out[i];
	o->fd = fd;
	o->stream = stream;
	o->poll = calloc(1, sizeof(*o->poll));
	if (!o->poll)
		return -ENOMEM;
	int r = uv_poll_init(u->project->engine->loop, o->poll, fd);
	if (r < 0) {
		free(TAKE_PTR(o->poll));
		return r;
	}
	o->poll->data = o;
	if (!u->paused)
		uv_poll_start(o->poll, UV_READABLE | UV_DISCONNECT, on_output);
	return 0;
}

/*
 * stdout/stderr go through named FIFOs in <runtime>/io, which the child holds open for
 * reading and writing: if superd dies, the child's writes do not fail (EPIPE) but wait in
 * the pipe, and the next superd opens the same FIFO and reads on. Plain pipes would break
 * with the reader. The kernel's pipe buffer (64 KiB) is what a service can write while no
 * superd runs; past that it blocks until one is back.
 */
static char *unit_fifo_path(Unit *u, const char *which)
{
	return strdupf("%s/io/%s.%s.%s", u->project->engine->runtime_dir, u->project->name,
		       u->name, which);
}

static const char *const fifo_names[UNIT_OUTPUTS] = { "out", "err" };

/* Reader ends into u->out[]; with create, fresh FIFOs and the child's ends in ret_child. */
int unit_open_fifos(Unit *u, bool create, int ret_child[UNIT_OUTPUTS])
{
	int r;
	if (create) {
		_cleanup_free_ char *dir = strdupf("%s/io", u->project->engine->runtime_dir);
		if (!dir)
			return -ENOMEM;
		r = mkdir_p(dir, 0700);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < UNIT_OUTPUTS; i++) {
		_cleanup_free_ char *path = unit_fifo_path(u, fifo_names[i]);
		if (!path)
			return -ENOMEM;
		if (create) {
			(void)unlink(path);
			if (mkfifo(path, 0600) < 0)
				return -errno;
		}
		int rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		if (rd < 0)
			return -errno;
		struct stat st;
		if (fstat(rd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
			safe_close(rd);
			return -EBADF;
		}
		if (create) {
			/* read-write: the child is a reader too, so its writes never EPIPE */
			ret_child[i] = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
			if (ret_child[i] < 0) {
				r = -errno;
				safe_close(rd);
				return r;
			}
		}
		r = unit_output_open(u, i, rd, i == 0 ? LOG_STREAM_STDOUT : LOG_STREAM_STDERR);
		if (r < 0)
			return r;
	}
	return 0;
}
