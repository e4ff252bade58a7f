/* SPDX-License-Identifier: MIT */
/*
 * The log store: life cycle of the store and its services, resuming files after a
 * restart, and the feed path (lines → records in memory → handed to the writer thread).
 * See superd-logstore-internal.h for who touches what.
 *
 * Backpressure, decided: feeding never blocks and never drops. When a service's unwritten
 * bytes pass pending_max, logstore_feed() returns 1 and the engine stops reading that
 * service's pipe (uv_read_stop); the kernel pipe fills and the service blocks in write(),
 * as it would under `service | slow-consumer`. Once the writer is below pending_max / 2
 * it calls on_drain and the engine reads again. What the engine has read already is
 * always stored, so memory is bounded by pending_max plus one read per service.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "paths.h"
#include "strutil.h"
#include "superd-logfile.h"
#include "superd-logstore-internal.h"

#define MAX_LINE_LIMIT (16u << 20)
#define MAX_FILES_LIMIT 1000u
#define MIN_FILE_SIZE 1024u
#define NAME_LEN_MAX 200u

static const char *const stream_names[_LOG_STREAM_MAX] = {
	[LOG_STREAM_STDOUT] = "stdout",
	[LOG_STREAM_STDERR] = "stderr",
	[LOG_STREAM_SYSTEM] = "system",
};

const char *log_stream_to_string(LogStream s)
{
	return s >= 0 && s < _LOG_STREAM_MAX ? stream_names[s] : NULL;
}

LogStream log_stream_from_string(const char *s)
{
	for (int i = 0; s && i < _LOG_STREAM_MAX; i++)
		if (streq(s, stream_names[i]))
			return (LogStream)i;
	return _LOG_STREAM_INVALID;
}

const char *logstore_project(LogService *svc)
{
	return svc->project;
}

const char *logstore_service(LogService *svc)
{
	return svc->name;
}

int logstore_file_name(const LogService *svc, unsigned suffix, char *buf, size_t size)
{
	return suffix == 0 ? strfmt(buf, size, "%s.log", svc->name)
			   : strfmt(buf, size, "%s.log.%u", svc->name, suffix);
}

void logstore_file_info_done(LogFileInfo *f)
{
	free(f->samples);
	*f = (LogFileInfo){};
}

void logstore_file_add_sample(LogFileInfo *f, uint64_t seq, usec_t time, uint64_t offset)
{
	if (f->n_samples == f->cap_samples) {
		size_t cap = MAX(f->cap_samples * 2, (size_t)16);
		LogSample *s = realloc(f->samples, cap * sizeof(*s));
		if (!s)
			return; /* the index only speeds up seeking */
		f->samples = s;
		f->cap_samples = cap;
	}
	f->samples[f->n_samples++] = (LogSample){ seq, time, offset };
}

/* ---- resuming ---- */

typedef struct ScanSampler {
	LogService *svc;
	LogFileInfo *file;
} ScanSampler;

static void scan_sample(void *userdata, uint64_t seq, usec_t time, uint64_t offset)
{
	ScanSampler *ss = userdata;
	logstore_file_add_sample(ss->file, seq, time, offset);
	ss->svc->last_sample_offset = offset;
}

/* The active file could not be used: a 0-byte file (killed between create and header)
 * goes, anything else is kept for a human as <service>.log.broken. */
static int active_set_aside(LogService *svc, int fd, const char *name)
{
	char aside[NAME_MAX + 1];
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < (off_t)LOGFILE_HEADER_SIZE)
		return RET_NERRNO(unlinkat(svc->dir_fd, name, 0));
	if ((r = strfmt(aside, sizeof(aside), "%s.log.broken", svc->name)) < 0)
		return r;
	return RET_NERRNO(renameat(svc->dir_fd, name, svc->dir_fd, aside));
}

/* Index the files an earlier run left; cut a torn tail off the active one. */
static int service_load_files(LogService *svc)
{
	unsigned max_files = svc->store->opts.max_files;
	char name[NAME_MAX + 1];
	int r;

	for (unsigned k = 0; k < max_files; k++) {
		if ((r = logstore_file_name(svc, k, name, sizeof(name))) < 0)
			return r;
		_cleanup_close_ int fd = openat(svc->dir_fd, name,
						(k == 0 ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		uint64_t seq, end, next;
		usec_t time;
		r = logfile_header_read(fd, &seq, &time);
		if (r == -EBADMSG) {
			if (k == 0 && (r = active_set_aside(svc, fd, name)) < 0)
				return r;
			continue; /* a damaged rotated file is skipped, and replaced in time */
		}
		if (r < 0)
			return r;
		/* Seqs fall going back in time; anything else is a stray file. */
		if (svc->n_files > 0 && seq >= svc->files[svc->n_files - 1].first_seq)
			continue;
		LogFileInfo *f = &svc->files[svc->n_files++];
		*f = (LogFileInfo){ .suffix = k, .first_seq = seq, .first_time = time };

		if (k == 0) {
			ScanSampler ss = { svc, f };
			svc->last_sample_offset = LOGFILE_HEADER_SIZE;
			r = logfile_scan(fd, seq, LOGSTORE_SAMPLE_EVERY, scan_sample, &ss, &end, &next);
			if (r < 0)
				return r;
			struct stat st;
			if (fstat(fd, &st) < 0)
				return -errno;
			if ((uint64_t)st.st_size > end && ftruncate(fd, (off_t)end) < 0)
				return -errno;
			svc->next_seq = next;
			svc->file_size = end;
			svc->fd = TAKE_FD(fd);
		} else if (svc->n_files == 1) {
			/* No active file: the newest rotated one says where the sequence is. */
			if ((r = logfile_scan(fd, seq, 0, NULL, NULL, &end, &next)) < 0)
				return r;
			svc->next_seq = next;
		}
	}
	return 0;
}

uint64_t logstore_first_available(LogService *svc)
{
	pthread_mutex_lock(&svc->store->lock);
	uint64_t first = svc->head ? svc->head->first_seq : svc->next_seq;
	pthread_mutex_unlock(&svc->store->lock);
	pthread_mutex_lock(&svc->files_lock);
	if (svc->n_files > 0)
		first = MIN(first, svc->files[svc->n_files - 1].first_seq);
	pthread_mutex_unlock(&svc->files_lock);
	return first;
}

/* ---- feeding ---- */

static void wake_writer_locked(LogStore *s)
{
	if (s->writer_idle)
		pthread_cond_signal(&s->wake);
}

static void commit_locked(LogService *svc, LogChunk *c)
{
	svc->committed_total += c->len - c->committed;
	svc->mem_bytes += c->len - c->committed;
	svc->mem_records += c->n_records - c->committed_records;
	c->committed = c->len;
	c->committed_records = c->n_records;
}

LogChunk *logstore_trim_locked(LogService *svc)
{
	LogStore *s = svc->store;
	const LogStoreOptions *o = &s->opts;
	LogChunk *dead = NULL, **tail = &dead;

	/* Whole chunks go while the rest still holds tail_lines records (or more than
	 * tail_bytes); a chunk the writer has not finished stays whatever the tail says. */
	while (svc->head && svc->head->next && svc->head->written == svc->head->committed) {
		LogChunk *c = svc->head;
		if (svc->mem_records - c->committed_records < o->tail_lines &&
		    svc->mem_bytes - c->committed < o->tail_bytes)
			break;
		svc->head = c->next;
		if (svc->wchunk == c)
			svc->wchunk = c->next;
		svc->mem_records -= c->committed_records;
		svc->mem_bytes -= c->committed;
		if (c->cap == LOGSTORE_CHUNK_MAX && s->n_spare < LOGSTORE_SPARE_MAX) {
			c->next = s->spare;
			s->spare = c;
			s->n_spare++;
			continue;
		}
		c->next = NULL;
		*tail = c;
		tail = &c->next;
	}
	return dead;
}

void logstore_chunks_free(LogChunk *c)
{
	while (c) {
		LogChunk *next = c->next;
		free(c);
		c = next;
	}
}

static int chunk_new(LogService *svc, size_t need)
{
	LogStore *s = svc->store;
	size_t size = MAX(svc->next_chunk_size, need);
	LogChunk *c = NULL;

	svc->next_chunk_size = MIN(svc->next_chunk_size * 2, (size_t)LOGSTORE_CHUNK_MAX);
	pthread_mutex_lock(&s->lock);
	if (size == LOGSTORE_CHUNK_MAX && s->spare) {
		c = s->spare;
		s->spare = c->next;
		s->n_spare--;
	}
	pthread_mutex_unlock(&s->lock);
	if (!c && !(c = malloc(sizeof(LogChunk) + size)))
		return -ENOMEM;
	*c = (LogChunk){ .cap = size };

	pthread_mutex_lock(&s->lock);
	if (svc->cur) {
		commit_locked(svc, svc->cur);
		svc->cur->next = c;
		wake_writer_locked(s);
	} else
		svc->head = c;
	if (!svc->wchunk)
		svc->wchunk = c;
	pthread_mutex_unlock(&s->lock);
	svc->cur = c;
	return 0;
}

static int emit(LogService *svc, LogStream stream, unsigned flags, const uint8_t *data, size_t len,
		usec_t now)
{
	size_t need = LOGREC_HEADER_SIZE + len;
	int r;

	if (!svc->cur || svc->cur->cap - svc->cur->len < need)
		if ((r = chunk_new(svc, need)) < 0)
			return r;
	LogChunk *c = svc->cur;
	uint8_t *p = c->data + c->len;
	logrec_encode(p, svc->next_seq, now, stream, flags, data, len);
	if (c->n_records == 0) {
		c->first_seq = svc->next_seq;
		c->first_time = now;
	}
	c->n_records++;
	c->len += need;
	svc->next_seq++;

	if (svc->on_line) {
		LogRecord rec;
		logrec_decode(p, &rec);
		svc->on_line(svc->userdata, svc, &rec);
	}
	return 0;
}

/* One logical line, split into records of at most max_line bytes. */
static int emit_line(LogService *svc, LogStream stream, const uint8_t *d, size_t n, usec_t now)
{
	size_t max = svc->store->opts.max_line;
	int r;

	if (n <= max)
		return emit(svc, stream, 0, d, n, now);
	for (size_t off = 0; off < n; off += max) {
		size_t k = MIN(max, n - off);
		unsigned f = (off > 0 ? LOG_RECORD_CONTINUATION : 0) | (off + k < n ? LOG_RECORD_MORE : 0);
		if ((r = emit(svc, stream, f, d + off, k, now)) < 0)
			return r;
	}
	return 0;
}

/*
 * Add bytes of an unfinished line to the stream's partial buffer, storing max_line pieces
 * as they fill up. The buffer holds at most max_line + 1 bytes: the extra one is a '\r'
 * held back while we do not know whether '\n' follows (then it is dropped, not split off).
 */
static int partial_add(LogService *svc, LogStream stream, const uint8_t *d, size_t n, usec_t now)
{
	Partial *p = &svc->partial[stream];
	size_t max = svc->store->opts.max_line;
	int r;

	for (;;) {
		while (p->len > max && (n > 0 || p->data[p->len - 1] != '\r')) {
			unsigned f = LOG_RECORD_MORE | (p->continued ? LOG_RECORD_CONTINUATION : 0);
			if ((r = emit(svc, stream, f, p->data, max, now)) < 0)
				return r;
			memmove(p->data, p->data + max, p->len - max);
			p->len -= max;
			p->continued = true;
		}
		if (n == 0)
			return 0;
		size_t k = MIN(max + 1 - p->len, n);
		if (p->len + k > p->cap) {
			size_t cap = MAX(p->cap * 2, p->len + k);
			cap = MAX(cap, (size_t)256);
			cap = MIN(cap, max + 1);
			uint8_t *b = realloc(p->data, cap);
			if (!b)
				return -ENOMEM;
			p->data = b;
			p->cap = cap;
		}
		memcpy(p->data + p->len, d, k);
		p->len += k;
		d += k;
		n -= k;
	}
}

static int partial_finish(LogService *svc, LogStream stream, unsigned flags, usec_t now)
{
	Partial *p = &svc->partial[stream];
	int r = emit(svc, stream, flags | (p->continued ? LOG_RECORD_CONTINUATION : 0), p->data,
		     p->len, now);
	if (r < 0)
		return r;
	p->len = 0;
	p->continued = false;
	return 0;
}

/* Hand what was fed to the writer, drop memory nobody needs, report backpressure. */
static int publish(LogService *svc)
{
	LogStore *s = svc->store;

	pthread_mutex_lock(&s->lock);
	if (svc->cur && svc->cur->committed != svc->cur->len) {
		commit_locked(svc, svc->cur);
		wake_writer_locked(s);
	}
	LogChunk *dead = logstore_trim_locked(svc);
	if (svc->committed_total - svc->written_total > s->opts.pending_max)
		svc->backpressure = true;
	bool bp = svc->backpressure;
	pthread_mutex_unlock(&s->lock);

	logstore_chunks_free(dead);
	return bp ? 1 : 0;
}

static bool stream_valid(LogStream stream)
{
	return stream >= 0 && stream < _LOG_STREAM_MAX;
}

int logstore_feed(LogService *svc, LogStream stream, const void *bytes, size_t n, usec_t now)
{
	const uint8_t *d = bytes, *end = d + n;
	int r = 0;

	if (!svc || !stream_valid(stream) || (!bytes && n > 0))
		return -EINVAL;
	Partial *p = &svc->partial[stream];

	while (d < end) {
		const uint8_t *nl = memchr(d, '\n', (size_t)(end - d));
		if (!nl) {
			r = partial_add(svc, stream, d, (size_t)(end - d), now);
			break;
		}
		size_t len = (size_t)(nl - d);
		if (p->len > 0) {
			if ((r = partial_add(svc, stream, d, len, now)) < 0)
				break;
			if (p->data[p->len - 1] == '\r')
				p->len--;
			r = partial_finish(svc, stream, 0, now);
		} else {
			/* The common case: a whole line inside this read, encoded in place. */
			if (len > 0 && d[len - 1] == '\r')
				len--;
			r = emit_line(svc, stream, d, len, now);
		}
		if (r < 0)
			break;
		d = nl + 1;
	}
	int bp = publish(svc);
	return r < 0 ? r : bp;
}

int logstore_append(LogService *svc, LogStream stream, const void *line, size_t n, usec_t now)
{
	if (!svc || !stream_valid(stream) || (!line && n > 0))
		return -EINVAL;
	int r = emit_line(svc, stream, line, n, now);
	int bp = publish(svc);
	return r < 0 ? r : bp;
}

int logstore_flush_partial(LogService *svc, usec_t now)
{
	int r = 0;

	if (!svc)
		return -EINVAL;
	for (int i = 0; i < _LOG_STREAM_MAX && r >= 0; i++)
		if (svc->partial[i].len > 0)
			r = partial_finish(svc, (LogStream)i, LOG_RECORD_NO_NEWLINE, now);
	int bp = publish(svc);
	return r < 0 ? r : bp;
}

void logstore_set_on_line(LogService *svc, LogLineFunc cb, void *userdata)
{
	svc->on_line = cb;
	svc->userdata = userdata;
}

bool logstore_backpressure(LogService *svc)
{
	pthread_mutex_lock(&svc->store->lock);
	bool bp = svc->backpressure;
	pthread_mutex_unlock(&svc->store->lock);
	return bp;
}

int logstore_sync(LogService *svc)
{
	LogStore *s = svc->store;
	int r;

	pthread_mutex_lock(&s->lock);
	uint64_t target = svc->committed_total, failures = svc->write_failures;
	wake_writer_locked(s);
	while (svc->written_total < target && svc->write_failures == failures)
		pthread_cond_wait(&s->progress, &s->lock);
	r = svc->written_total >= target ? 0 : svc->write_error;
	pthread_mutex_unlock(&s->lock);
	return r;
}

void logstore_stats(LogService *svc, LogServiceStats *ret_stats)
{
	LogServiceStats st = {
		.end_cursor = svc->next_seq,
		.first_available = logstore_first_available(svc),
	};
	pthread_mutex_lock(&svc->files_lock);
	st.n_files = (unsigned)svc->n_files;
	pthread_mutex_unlock(&svc->files_lock);
	pthread_mutex_lock(&svc->store->lock);
	st.unwritten = svc->committed_total - svc->written_total;
	st.backpressure = svc->backpressure;
	st.write_error = svc->write_error;
	pthread_mutex_unlock(&svc->store->lock);
	*ret_stats = st;
}

/* ---- life cycle ---- */

int logstore_new(const char *dir, const LogStoreOptions *opts, LogStore **ret_store)
{
	LogStoreOptions o = opts ? *opts : (LogStoreOptions){};
	pthread_condattr_t ca;
	sigset_t all, old;
	int r;

	if (isempty(dir) || !ret_store)
		return -EINVAL;
	if (!o.max_file_size)
		o.max_file_size = 16u << 20;
	if (!o.max_files)
		o.max_files = 5;
	if (!o.tail_lines)
		o.tail_lines = 2000;
	if (!o.tail_bytes)
		o.tail_bytes = 1u << 20;
	if (!o.max_line)
		o.max_line = 64u << 10;
	if (!o.pending_max)
		o.pending_max = 8u << 20;
	if (o.max_line > MAX_LINE_LIMIT || o.max_files > MAX_FILES_LIMIT ||
	    o.max_file_size < MIN_FILE_SIZE)
		return -EINVAL;

	LogStore *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->opts = o;
	s->dir_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
#if !defined(__APPLE__)
	pthread_condattr_setclock(&ca, LOGSTORE_COND_CLOCK);
#endif
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->progress, NULL);

	s->dir = strdup(dir);
	if (!s->dir) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = mkdir_p(dir, 0700)) < 0)
		goto fail;
	s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		r = -errno;
		goto fail;
	}

	/* Signals belong to the loop thread (libuv's signal watchers), not to the writer. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&s->writer, NULL, logwriter_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	s->writer_started = true;
#if defined(__linux__)
	(void)pthread_setname_np(s->writer, "logstore");
#endif
	*ret_store = s;
	return 0;
fail:
	logstore_free(s);
	return r;
}

LogStore *logstore_free(LogStore *s)
{
	if (!s)
		return NULL;
	while (s->services)
		logstore_close(s->services);
	if (s->writer_started) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->writer, NULL);
	}
	logstore_chunks_free(s->spare);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->progress);
	pthread_mutex_destroy(&s->lock);
	safe_close(s->dir_fd);
	free(s->dir);
	free(s);
	return NULL;
}

static bool name_valid(const char *n)
{
	return !isempty(n) && strlen(n) <= NAME_LEN_MAX && !strchr(n, '/') && !streq(n, ".") &&
	       !streq(n, "..");
}

static LogService *service_free(LogService *svc)
{
	if (!svc)
		return NULL;
	logstore_chunks_free(svc->head);
	for (int i = 0; i < _LOG_STREAM_MAX; i++)
		free(svc->partial[i].data);
	for (size_t i = 0; i < svc->n_files; i++)
		logstore_file_info_done(&svc->files[i]);
	free(svc->files);
	pthread_mutex_destroy(&svc->files_lock);
	safe_close(svc->fd);
	safe_close(svc->dir_fd);
	free(svc->project);
	free(svc->name);
	free(svc);
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(LogService *, service_free);

int logstore_open(LogStore *s, const char *project, const char *service, LogService **ret_svc)
{
	_cleanup_(service_freep) LogService *svc = NULL;
	int r;

	if (!s || !ret_svc || !name_valid(project) || !name_valid(service))
		return -EINVAL;
	for (LogService *i = s->services; i; i = i->next) /* only this thread adds or removes */
		if (streq(i->project, project) && streq(i->name, service))
			return -EEXIST;

	svc = calloc(1, sizeof(*svc));
	if (!svc)
		return -ENOMEM;
	svc->store = s;
	svc->fd = svc->dir_fd = -1;
	svc->next_seq = 1;
	svc->next_chunk_size = LOGSTORE_CHUNK_MIN;
	pthread_mutex_init(&svc->files_lock, NULL);
	svc->project = strdup(project);
	svc->name = strdup(service);
	svc->files = calloc(s->opts.max_files, sizeof(LogFileInfo));
	if (!svc->project || !svc->name || !svc->files)
		return -ENOMEM;

	if (mkdirat(s->dir_fd, project, 0700) < 0 && errno != EEXIST)
		return -errno;
	svc->dir_fd = openat(s->dir_fd, project, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (svc->dir_fd < 0)
		return -errno;
	if ((r = service_load_files(svc)) < 0)
		return r;

	pthread_mutex_lock(&s->lock);
	svc->next = s->services;
	if (s->services)
		s->services->prev = svc;
	s->services = svc;
	pthread_mutex_unlock(&s->lock);
	*ret_svc = TAKE_PTR(svc);
	return 0;
}

LogService *logstore_close(LogService *svc)
{
	if (!svc)
		return NULL;
	LogStore *s = svc->store;

	(void)logstore_flush_partial(svc, now_realtime());
	/* On a persistent write error this gives up after one more failed attempt: a daemon
	 * that forgets a service must not hang on a full disk. */
	(void)logstore_sync(svc);

	pthread_mutex_lock(&s->lock);
	while (svc->busy)
		pthread_cond_wait(&s->progress, &s->lock);
	if (svc->prev)
		svc->prev->next = svc->next;
	else
		s->services = svc->next;
	if (svc->next)
		svc->next->prev = svc->prev;
	if (s->rr == svc)
		s->rr = svc->next;
	pthread_mutex_unlock(&s->lock);

	if (s->opts.sync_interval > 0)
		(void)logwriter_sync_fd(svc);
	return service_free(svc);
}
