/* SPDX-License-Identifier: MIT */
/*
 * The log store's writer thread: takes committed chunk bytes of each service in turn
 * (round robin, up to WRITE_BATCH_MAX at a time, so one chatty service cannot starve the
 * others), writes them with one pwritev per file, rotates by size, and fdatasyncs when
 * asked to. A failed write is retried after RETRY_USEC from the same offset, so a short
 * write never leaves a hole; meanwhile the backlog grows and backpressure holds the
 * service, which is how "never lose a line" survives a full disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "superd-logfile.h"
#include "superd-logstore-internal.h"

#define WRITE_BATCH_MAX (4u << 20)
#define WRITE_SEGMENTS_MAX 64u
#define RETRY_USEC (1 * USEC_PER_SEC)

typedef struct Segment {
	LogChunk *chunk;
	const uint8_t *p;
	size_t len;
} Segment;

/* Whole records taken from the chain; the bytes stay put while they are unwritten. */
typedef struct Batch {
	Segment seg[WRITE_SEGMENTS_MAX];
	size_t n, total;
	size_t i, off; /* position of the next byte to write */
} Batch;

static void batch_collect_locked(LogService *svc, Batch *b)
{
	LogChunk *c = svc->wchunk;

	while (c && c->written == c->committed && c->next)
		c = c->next;
	svc->wchunk = c;
	*b = (Batch){};
	for (; c && b->n < WRITE_SEGMENTS_MAX && b->total < WRITE_BATCH_MAX; c = c->next) {
		if (c->committed == c->written)
			continue;
		b->seg[b->n++] = (Segment){ c, c->data + c->written, c->committed - c->written };
		b->total += c->committed - c->written;
	}
}

static const uint8_t *batch_pos(const Batch *b)
{
	return b->seg[b->i].p + b->off;
}

static void batch_advance(Batch *b, size_t n)
{
	while (n > 0) {
		size_t k = MIN(n, b->seg[b->i].len - b->off);
		b->off += k;
		n -= k;
		if (b->off == b->seg[b->i].len) {
			b->i++;
			b->off = 0;
		}
	}
}

/* Bytes of the longest run of whole records from the current position that fits in
 * avail (a segment holds whole records, so none straddles two). */
static size_t batch_fit(const Batch *b, uint64_t avail)
{
	size_t fit = 0, i = b->i, off = b->off;

	while (i < b->n) {
		size_t size = logrec_size(b->seg[i].p + off);
		if (fit + size > avail)
			break;
		fit += size;
		off += size;
		if (off == b->seg[i].len) {
			i++;
			off = 0;
		}
	}
	return fit;
}

/* Start a new active file whose first record is the one at p. */
static int active_create(LogService *svc, const uint8_t *p)
{
	uint8_t h[LOGFILE_HEADER_SIZE];
	char name[NAME_MAX + 1];
	LogRecord rec;
	int r;

	logrec_decode(p, &rec);
	if ((r = logstore_file_name(svc, 0, name, sizeof(name))) < 0)
		return r;
	_cleanup_close_ int fd = openat(svc->dir_fd, name,
					O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	logfile_header_encode(h, rec.seq, rec.time);
	struct iovec iov = { h, sizeof(h) };
	if ((r = logfile_pwritev_full(fd, &iov, 1, 0)) < 0)
		return r;

	pthread_mutex_lock(&svc->files_lock);
	/* Only when the active file had gone missing with every slot taken. */
	if (svc->n_files == svc->store->opts.max_files)
		logstore_file_info_done(&svc->files[--svc->n_files]);
	memmove(svc->files + 1, svc->files, svc->n_files * sizeof(LogFileInfo));
	svc->files[0] = (LogFileInfo){ .first_seq = rec.seq, .first_time = rec.time };
	svc->n_files++;
	pthread_mutex_unlock(&svc->files_lock);

	svc->fd = TAKE_FD(fd);
	svc->file_size = LOGFILE_HEADER_SIZE;
	svc->last_sample_offset = LOGFILE_HEADER_SIZE;
	return 0;
}

/* <svc>.log → .log.1 → …; the oldest falls off. Oldest first, so a failure half-way
 * leaves every file under a name the index knows, and a retry carries on. */
static int rotate(LogService *svc)
{
	unsigned max_files = svc->store->opts.max_files;
	char from[NAME_MAX + 1], to[NAME_MAX + 1];
	int r = 0;

	pthread_mutex_lock(&svc->files_lock);
	while (svc->n_files > 0) {
		LogFileInfo *f = &svc->files[svc->n_files - 1];
		if (f->suffix + 1 < max_files)
			break;
		if ((r = logstore_file_name(svc, f->suffix, from, sizeof(from))) < 0)
			goto out;
		if (unlinkat(svc->dir_fd, from, 0) < 0 && errno != ENOENT) {
			r = -errno;
			goto out;
		}
		logstore_file_info_done(f);
		svc->n_files--;
	}
	for (size_t i = svc->n_files; i-- > 0;) {
		LogFileInfo *f = &svc->files[i];
		if ((r = logstore_file_name(svc, f->suffix, from, sizeof(from))) < 0 ||
		    (r = logstore_file_name(svc, f->suffix + 1, to, sizeof(to))) < 0)
			goto out;
		if (renameat(svc->dir_fd, from, svc->dir_fd, to) < 0) {
			r = -errno;
			goto out;
		}
		f->suffix++;
	}
out:
	pthread_mutex_unlock(&svc->files_lock);
	if (r >= 0)
		svc->fd = safe_close(svc->fd);
	return r;
}

static int write_batch(LogService *svc, Batch *b, size_t *ret_done)
{
	const LogStoreOptions *o = &svc->store->opts;
	struct iovec iov[WRITE_SEGMENTS_MAX];
	int r;

	*ret_done = 0;
	while (b->i < b->n) {
		if (svc->fd < 0 && (r = active_create(svc, batch_pos(b))) < 0)
			return r;
		uint64_t avail = svc->file_size < o->max_file_size ? o->max_file_size - svc->file_size : 0;
		size_t n = b->total - *ret_done;
		if (n > avail) {
			n = batch_fit(b, avail);
			if (n == 0 && svc->file_size > LOGFILE_HEADER_SIZE) {
				if ((r = rotate(svc)) < 0)
					return r;
				continue;
			}
			if (n == 0) /* a record bigger than a whole file gets a file of its own */
				n = logrec_size(batch_pos(b));
		}

		LogRecord first;
		logrec_decode(batch_pos(b), &first);
		Batch pos = *b;
		int cnt = 0;
		for (size_t left = n; left > 0; cnt++) {
			size_t k = MIN(left, pos.seg[pos.i].len - pos.off);
			iov[cnt] = (struct iovec){ (void *)batch_pos(&pos), k };
			batch_advance(&pos, k);
			left -= k;
		}
		if ((r = logfile_pwritev_full(svc->fd, iov, cnt, svc->file_size)) < 0)
			return r;

		if (svc->file_size - svc->last_sample_offset >= LOGSTORE_SAMPLE_EVERY) {
			pthread_mutex_lock(&svc->files_lock);
			logstore_file_add_sample(&svc->files[0], first.seq, first.time, svc->file_size);
			pthread_mutex_unlock(&svc->files_lock);
			svc->last_sample_offset = svc->file_size;
		}
		svc->file_size += n;
		*ret_done += n;
		batch_advance(b, n);
	}
	return 0;
}

int logwriter_sync_fd(LogService *svc)
{
	if (svc->fd < 0)
		return 0;
#if defined(__APPLE__)
	return RET_NERRNO(fsync(svc->fd));
#else
	return RET_NERRNO(fdatasync(svc->fd));
#endif
}

/* The next service with work, round robin; *wake_at is lowered to when one that waits
 * (retry after an error, a due fdatasync) wants attention. */
static LogService *pick_locked(LogStore *s, usec_t now, usec_t *wake_at, bool *ret_sync_only)
{
	LogService *start = s->rr ? s->rr : s->services;

	if (!start)
		return NULL;
	for (LogService *svc = start;;) {
		LogService *next = svc->next ? svc->next : s->services;
		if (!svc->busy) {
			bool pending = svc->committed_total > svc->written_total;
			if (pending && svc->retry_at <= now) {
				s->rr = next;
				*ret_sync_only = false;
				return svc;
			}
			if (pending)
				*wake_at = MIN(*wake_at, svc->retry_at);
			else if (svc->unsynced && svc->sync_due <= now) {
				s->rr = next;
				*ret_sync_only = true;
				return svc;
			} else if (svc->unsynced)
				*wake_at = MIN(*wake_at, svc->sync_due);
		}
		svc = next;
		if (svc == start)
			return NULL;
	}
}

/* wake_at is CLOCK_MONOTONIC µs. */
static void wait_until_locked(LogStore *s, usec_t wake_at)
{
	if (wake_at == USEC_NEVER) {
		pthread_cond_wait(&s->wake, &s->lock);
		return;
	}
	usec_t now = now_monotonic(), left = wake_at > now ? wake_at - now : 0;
	struct timespec ts;
	clock_gettime(LOGSTORE_COND_CLOCK, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + (left % USEC_PER_SEC) * 1000;
	ts.tv_sec += (time_t)(left / USEC_PER_SEC + ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	pthread_cond_timedwait(&s->wake, &s->lock, &ts);
}

void *logwriter_main(void *userdata)
{
	LogStore *s = userdata;
	const LogStoreOptions *o = &s->opts;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		usec_t now = now_monotonic(), wake_at = USEC_NEVER;
		bool sync_only = false;
		LogService *svc = pick_locked(s, now, &wake_at, &sync_only);
		if (!svc) {
			if (s->stop)
				break;
			s->writer_idle = true;
			wait_until_locked(s, wake_at);
			s->writer_idle = false;
			continue;
		}

		Batch b = {};
		if (!sync_only)
			batch_collect_locked(svc, &b);
		svc->busy = true;
		pthread_mutex_unlock(&s->lock);

		size_t done = 0;
		int r = sync_only ? 0 : write_batch(svc, &b, &done);
		now = now_monotonic();
		bool do_sync = o->sync_interval > 0 &&
			       (sync_only || now >= svc->last_sync + o->sync_interval);
		if (r >= 0 && do_sync) {
			r = logwriter_sync_fd(svc);
			svc->last_sync = now;
		}

		pthread_mutex_lock(&s->lock);
		for (size_t i = 0, left = done; i < b.n && left > 0; i++) {
			size_t k = MIN(left, b.seg[i].len);
			b.seg[i].chunk->written += k;
			left -= k;
		}
		svc->written_total += done;
		if (done > 0 && o->sync_interval > 0 && !do_sync) {
			if (!svc->unsynced)
				svc->sync_due = svc->last_sync + o->sync_interval;
			svc->unsynced = true;
		}
		if (do_sync && r >= 0)
			svc->unsynced = false;
		if (r < 0) {
			svc->write_error = r;
			svc->write_failures++;
			svc->retry_at = now + RETRY_USEC;
			if (sync_only) /* do not spin on a failing fdatasync */
				svc->sync_due = now + RETRY_USEC;
		} else
			svc->write_error = 0;
		bool drained = svc->backpressure &&
			       svc->committed_total - svc->written_total <= o->pending_max / 2;
		if (drained)
			svc->backpressure = false;
		LogChunk *dead = logstore_trim_locked(svc);
		pthread_cond_broadcast(&s->progress);
		pthread_mutex_unlock(&s->lock);

		logstore_chunks_free(dead);
		/* Still busy, so logstore_close() cannot free svc under the callback. */
		if (drained && o->on_drain)
			o->on_drain(o->userdata, svc);

		pthread_mutex_lock(&s->lock);
		svc->busy = false;
		pthread_cond_broadcast(&s->progress);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}
