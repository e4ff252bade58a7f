/* SPDX-License-Identifier: MIT */
/* TEMPORARY unity build of superd-logfile.c, superd-logwriter.c, superd-logread.c and the
 * store; replaced by the split sources once meson lists them. */
/* ==== superd-logfile.c ==== */
#include "superd-logfile.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

#define READ_BLOCK (256u << 10)

static uint32_t crc_table[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* Slicing-by-8: eight table lookups per 8 bytes. */
static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t v = le64_get(p) ^ crc;
		crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
		      crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
		      crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
		      crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
	}
	while (n--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
							     size_t n)
{
	uint64_t c = ~crc;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	uint32_t c32 = (uint32_t)c;
	while (n--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}
#endif

static void crc_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;
		for (unsigned k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (unsigned t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
	/* Files must read back on any machine: use the instruction only if it agrees. */
	static const uint8_t check[] = "123456789";
	if (__builtin_cpu_supports("sse4.2"))
		crc_hw = crc32c_hw(0, check, 9) == 0xE3069283u &&
			 crc32c_sw(0, check, 9) == 0xE3069283u;
#endif
}

uint32_t logfile_crc32c(const void *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return crc32c_hw(0, p, n);
#endif
	return crc32c_sw(0, p, n);
}

void logrec_encode(uint8_t *p, uint64_t seq, usec_t time, LogStream stream, unsigned flags,
		   const void *data, size_t len)
{
	le32_put(p + 4, (uint32_t)len);
	le64_put(p + 8, seq);
	le64_put(p + 16, time);
	p[24] = (uint8_t)stream;
	p[25] = (uint8_t)flags;
	p[26] = p[27] = 0;
	memcpy(p + LOGREC_HEADER_SIZE, data, len);
	le32_put(p, logfile_crc32c(p + 4, LOGREC_HEADER_SIZE - 4 + len));
}

void logrec_decode(const uint8_t *p, LogRecord *rec)
{
	*rec = (LogRecord){
		.len = le32_get(p + 4),
		.seq = le64_get(p + 8),
		.time = le64_get(p + 16),
		.stream = (LogStream)p[24],
		.flags = p[25],
		.data = (const char *)p + LOGREC_HEADER_SIZE,
	};
}

void logfile_header_encode(uint8_t h[LOGFILE_HEADER_SIZE], uint64_t first_seq, usec_t first_time)
{
	memcpy(h, LOGFILE_MAGIC, 8);
	le32_put(h + 8, LOGFILE_VERSION);
	le32_put(h + 12, LOGFILE_HEADER_SIZE);
	le64_put(h + 16, first_seq);
	le64_put(h + 24, first_time);
	le32_put(h + 32, 0);
	le32_put(h + 36, logfile_crc32c(h, 36));
}

int logfile_header_read(int fd, uint64_t *ret_first_seq, usec_t *ret_first_time)
{
	uint8_t h[LOGFILE_HEADER_SIZE];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(h) || memcmp(h, LOGFILE_MAGIC, 8) != 0 ||
	    le32_get(h + 8) != LOGFILE_VERSION || le32_get(h + 12) != LOGFILE_HEADER_SIZE ||
	    le32_get(h + 36) != logfile_crc32c(h, 36) || le64_get(h + 16) == 0)
		return -EBADMSG;
	*ret_first_seq = le64_get(h + 16);
	*ret_first_time = le64_get(h + 24);
	return 0;
}

int logfile_pwritev_full(int fd, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t k = pwritev(fd, iov, MIN(n, IOV_MAX), (off_t)off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		off += (uint64_t)k;
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

void logfile_reader_done(LogFileReader *fr)
{
	free(fr->buf);
	fr->buf = NULL;
	fr->cap = fr->len = 0;
}

/* Refill the buffer from fr->off, growing it to at least need bytes. */
static int reader_fill(LogFileReader *fr, size_t need)
{
	need = MAX(need, (size_t)READ_BLOCK);
	if (need > fr->cap) {
		uint8_t *b = realloc(fr->buf, need);
		if (!b)
			return -ENOMEM;
		fr->buf = b;
		fr->cap = need;
	}
	fr->buf_off = fr->off;
	fr->len = 0;
	while (fr->len < fr->cap) {
		ssize_t n = pread(fr->fd, fr->buf + fr->len, fr->cap - fr->len,
				  (off_t)(fr->off + fr->len));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		fr->len += (size_t)n;
	}
	return 0;
}

int logfile_reader_next(LogFileReader *fr, LogRecord *ret)
{
	int r;

	if (!fr->buf || fr->off < fr->buf_off || fr->off - fr->buf_off + LOGREC_HEADER_SIZE > fr->len) {
		if ((r = reader_fill(fr, 0)) < 0)
			return r;
		if (fr->len < LOGREC_HEADER_SIZE)
			return 0;
	}
	size_t pos = (size_t)(fr->off - fr->buf_off);
	uint32_t len = le32_get(fr->buf + pos + 4);
	if (len > LOGREC_LEN_MAX)
		return 0;
	size_t size = LOGREC_HEADER_SIZE + (size_t)len;
	if (pos + size > fr->len) {
		if ((r = reader_fill(fr, size)) < 0)
			return r;
		pos = 0;
		if (size > fr->len)
			return 0;
	}
	const uint8_t *p = fr->buf + pos;
	if (le32_get(p) != logfile_crc32c(p + 4, size - 4) || p[24] >= _LOG_STREAM_MAX)
		return 0;
	logrec_decode(p, ret);
	fr->off += size;
	return 1;
}

int logfile_scan(int fd, uint64_t first_seq, uint64_t sample_every, LogFileSampleFunc sample,
		 void *userdata, uint64_t *ret_end, uint64_t *ret_next_seq)
{
	_cleanup_(logfile_reader_done) LogFileReader fr = LOGFILE_READER_INIT(fd, LOGFILE_HEADER_SIZE);
	uint64_t next = first_seq, last_sample = LOGFILE_HEADER_SIZE;
	LogRecord rec;
	int r;

	for (;;) {
		uint64_t off = fr.off;
		r = logfile_reader_next(&fr, &rec);
		if (r < 0)
			return r;
		if (r == 0 || rec.seq != next)
			break;
		if (sample && off - last_sample >= sample_every) {
			sample(userdata, rec.seq, rec.time, off);
			last_sample = off;
		}
		next++;
	}
	*ret_end = fr.off;
	*ret_next_seq = next;
	return 0;
}
/* ==== superd-logwriter.c ==== */
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
	if (svc->fd >= 0 && fdatasync(svc->fd) < 0)
		return -errno;
	return 0;
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

static void wait_until_locked(LogStore *s, usec_t wake_at)
{
	if (wake_at == USEC_NEVER) {
		pthread_cond_wait(&s->wake, &s->lock);
		return;
	}
	struct timespec ts = {
		.tv_sec = (time_t)(wake_at / USEC_PER_SEC),
		.tv_nsec = (long)(wake_at % USEC_PER_SEC) * 1000,
	};
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
/* ==== superd-logread.c ==== */
/*
 * Reading the log store: by cursor, the last N, and several services merged by time.
 * Records older than the memory tail come from the files: the file index says which
 * file holds a seq, seek samples and the last read's position (ReadHint) say where to
 * start in it, and from there records are scanned. Everything runs on the loop thread.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "superd-logfile.h"
#include "superd-logstore-internal.h"

#define READ_BYTES_MAX (8u << 20)

/* Called per record in seq order: 0 go on, 1 stop after this one, -errno. */
typedef int (*RecordFunc)(void *userdata, const LogRecord *rec);

typedef struct OpenedFile {
	int fd;
	uint64_t first_seq;
	uint64_t offset; /* where to start scanning for the wanted seq */
} OpenedFile;

/* Open the file that holds *seq: 0 and *of; 1 with *seq moved up to the oldest record
 * in the files (the seq was rotated away); or -errno. */
static int open_for_seq(LogService *svc, uint64_t *seq, uint64_t limit, OpenedFile *of)
{
	char name[NAME_MAX + 1];
	int r = 0;

	pthread_mutex_lock(&svc->files_lock);
	size_t i = 0;
	while (i < svc->n_files && svc->files[i].first_seq > *seq)
		i++;
	if (i == svc->n_files) {
		*seq = svc->n_files > 0 ? svc->files[svc->n_files - 1].first_seq : limit;
		r = 1;
		goto out;
	}
	const LogFileInfo *f = &svc->files[i];
	uint64_t off = LOGFILE_HEADER_SIZE, at = f->first_seq;
	for (size_t k = 0; k < f->n_samples && f->samples[k].seq <= *seq; k++) {
		off = f->samples[k].offset;
		at = f->samples[k].seq;
	}
	if (svc->hint.file_first_seq == f->first_seq && svc->hint.seq <= *seq && svc->hint.seq >= at)
		off = svc->hint.offset;
	if ((r = logstore_file_name(svc, f->suffix, name, sizeof(name))) < 0)
		goto out;
	int fd = openat(svc->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	uint64_t hseq;
	usec_t htime;
	r = logfile_header_read(fd, &hseq, &htime);
	if (r >= 0 && hseq != f->first_seq)
		r = -ESTALE;
	if (r < 0) {
		safe_close(fd);
		goto out;
	}
	*of = (OpenedFile){ .fd = fd, .first_seq = f->first_seq, .offset = off };
out:
	pthread_mutex_unlock(&svc->files_lock);
	return r;
}

/* Where the file that started at first_seq ends: the next newer file's first seq (the
 * file may have been rotated away meanwhile), or limit. */
static uint64_t file_end_seq(LogService *svc, uint64_t first_seq, uint64_t limit)
{
	uint64_t end = limit;
	pthread_mutex_lock(&svc->files_lock);
	for (size_t i = 0; i < svc->n_files; i++)
		if (svc->files[i].first_seq > first_seq)
			end = MIN(end, svc->files[i].first_seq);
	pthread_mutex_unlock(&svc->files_lock);
	return end;
}

/* Records from *seq up to (not including) limit, from the files. Moves *seq on. */
static int iterate_files(LogService *svc, uint64_t *seq, uint64_t limit, RecordFunc f, void *ud)
{
	unsigned failures = 0;
	int r;

	while (*seq < limit) {
		OpenedFile of = { .fd = -1 };
		r = open_for_seq(svc, seq, limit, &of);
		if (r == 1)
			continue;
		if (r < 0) {
			/* A file vanished or was replaced behind our back: skip what is gone. */
			if (++failures > 3) {
				*seq = limit;
				return 0;
			}
			continue;
		}
		_cleanup_close_ int fd = of.fd;
		_cleanup_(logfile_reader_done) LogFileReader fr = LOGFILE_READER_INIT(fd, of.offset);
		LogRecord rec;
		for (;;) {
			r = logfile_reader_next(&fr, &rec);
			if (r < 0)
				return r;
			if (r == 0 || rec.seq >= limit)
				break;
			if (rec.seq < *seq)
				continue;
			*seq = rec.seq + 1;
			svc->hint = (ReadHint){ of.first_seq, *seq, fr.off };
			if ((r = f(ud, &rec)) != 0)
				return r;
		}
		/* The file ended: go on in the next one, skipping what a damaged file lost. */
		*seq = MAX(*seq, file_end_seq(svc, of.first_seq, limit));
	}
	return 0;
}

/* Walk the chunks from *seq on; store lock held (the writer may drop old chunks). */
static int iterate_memory_locked(LogService *svc, uint64_t *seq, RecordFunc f, void *ud)
{
	for (LogChunk *c = svc->head; c; c = c->next) {
		if (c->first_seq + c->n_records <= *seq)
			continue;
		const uint8_t *p = c->data;
		for (size_t i = 0; i < c->n_records; i++) {
			LogRecord rec;
			logrec_decode(p, &rec);
			p += LOGREC_HEADER_SIZE + rec.len;
			if (rec.seq < *seq)
				continue;
			*seq = rec.seq + 1;
			int r = f(ud, &rec);
			if (r != 0)
				return r;
		}
	}
	return 0;
}

/* Every record from *seq on, files first, then memory; *seq ends after the last one. */
static int iterate(LogService *svc, uint64_t *seq, RecordFunc f, void *ud)
{
	LogStore *s = svc->store;
	int r;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		uint64_t mem_first = svc->head ? svc->head->first_seq : svc->next_seq;
		if (*seq >= mem_first) {
			r = iterate_memory_locked(svc, seq, f, ud);
			pthread_mutex_unlock(&s->lock);
			return r;
		}
		pthread_mutex_unlock(&s->lock);
		/* The writer may trim memory meanwhile; then the loop goes back to the files
		 * for what it dropped, which is written by then. */
		if ((r = iterate_files(svc, seq, mem_first, f, ud)) != 0)
			return r;
		*seq = MAX(*seq, mem_first);
	}
}

/* A seq before which every record is older than t, as far as the index can tell
 * (records are in time order unless the clock steps back). 0 if none is known. */
static uint64_t seek_time(LogService *svc, usec_t t)
{
	uint64_t best = 0;

	pthread_mutex_lock(&svc->store->lock);
	for (LogChunk *c = svc->head; c; c = c->next)
		if (c->n_records > 0 && c->first_time < t)
			best = c->first_seq;
	pthread_mutex_unlock(&svc->store->lock);
	if (best)
		return best;

	pthread_mutex_lock(&svc->files_lock);
	for (size_t i = 0; i < svc->n_files && !best; i++) {
		const LogFileInfo *f = &svc->files[i];
		if (f->first_time >= t)
			continue;
		best = f->first_seq;
		for (size_t k = 0; k < f->n_samples; k++)
			if (f->samples[k].time < t)
				best = f->samples[k].seq;
	}
	pthread_mutex_unlock(&svc->files_lock);
	return best;
}

static bool filter_match(const LogFilter *f, const LogRecord *rec)
{
	if (!f)
		return true;
	if (f->stream_mask && !(f->stream_mask & LOG_STREAM_MASK(rec->stream)))
		return false;
	if (f->since && rec->time < f->since)
		return false;
	if (f->until && rec->time >= f->until)
		return false;
	return true;
}

static bool filter_trivial(const LogFilter *f)
{
	return !f || ((!f->stream_mask || (f->stream_mask & LOG_STREAM_MASK_ALL) == LOG_STREAM_MASK_ALL) &&
		      !f->since && !f->until);
}

void log_read_result_done(LogReadResult *r)
{
	if (!r)
		return;
	free(r->records);
	free(r->arena);
	*r = (LogReadResult){};
}

typedef struct Collector {
	LogReadResult res;
	size_t cap_records;
	size_t max;
	unsigned source;
	const LogFilter *filter;
} Collector;

static int collector_add(Collector *c, const LogRecord *rec)
{
	LogReadResult *res = &c->res;

	if (res->n_records == c->cap_records) {
		size_t cap = MAX(c->cap_records * 2, (size_t)64);
		LogRecord *n = realloc(res->records, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		res->records = n;
		c->cap_records = cap;
	}
	if (res->arena_cap - res->arena_len < rec->len + 1) {
		size_t cap = MAX(res->arena_cap * 2, res->arena_len + rec->len + 1);
		cap = MAX(cap, (size_t)4096);
		char *a = realloc(res->arena, cap);
		if (!a)
			return -ENOMEM;
		res->arena = a;
		res->arena_cap = cap;
	}
	LogRecord *out = &res->records[res->n_records++];
	*out = *rec;
	out->source = c->source;
	/* An offset while the arena may still move; collector_finish() makes it a pointer. */
	out->data = (const char *)(uintptr_t)res->arena_len;
	memcpy(res->arena + res->arena_len, rec->data, rec->len);
	res->arena[res->arena_len + rec->len] = 0;
	res->arena_len += rec->len + 1;
	return 0;
}

static void collector_finish(Collector *c)
{
	for (size_t i = 0; i < c->res.n_records; i++)
		c->res.records[i].data = c->res.arena + (uintptr_t)c->res.records[i].data;
}

static int collect_cb(void *userdata, const LogRecord *rec)
{
	Collector *c = userdata;
	int r;

	if (!filter_match(c->filter, rec))
		return 0;
	if ((r = collector_add(c, rec)) < 0)
		return r;
	return c->res.n_records >= c->max || c->res.arena_len >= READ_BYTES_MAX ? 1 : 0;
}

static int read_into(LogService *svc, uint64_t cursor, size_t max_lines, const LogFilter *filter,
		     Collector *c)
{
	uint64_t first = logstore_first_available(svc), end = svc->next_seq;
	uint64_t seq = MAX(cursor, first);
	int r;

	if (filter && filter->since)
		seq = MAX(seq, seek_time(svc, filter->since));
	seq = MIN(seq, end);
	c->max = max_lines;
	c->filter = filter;
	if (max_lines > 0 && (r = iterate(svc, &seq, collect_cb, c)) < 0)
		return r;
	collector_finish(c);
	c->res.next_cursor = seq;
	c->res.end_cursor = end;
	c->res.first_available = first;
	c->res.more = seq < end;
	return 0;
}

static int collector_return(Collector *c, int r, LogReadResult *ret_result)
{
	if (r < 0) {
		log_read_result_done(&c->res);
		return r;
	}
	*ret_result = c->res;
	return 0;
}

int logstore_read(LogService *svc, uint64_t cursor, size_t max_lines, const LogFilter *filter,
		  LogReadResult *ret_result)
{
	Collector c = {};

	if (!svc || !ret_result)
		return -EINVAL;
	return collector_return(&c, read_into(svc, cursor, max_lines, filter, &c), ret_result);
}

typedef struct Counter {
	const LogFilter *filter;
	uint64_t *ring; /* seqs of the last n matches */
	size_t n, count;
} Counter;

static int count_cb(void *userdata, const LogRecord *rec)
{
	Counter *c = userdata;
	if (filter_match(c->filter, rec))
		c->ring[c->count++ % c->n] = rec->seq;
	return 0;
}

/* The seq of the n-th last record that passes filter (or the first one, if fewer do). */
static int tail_cursor(LogService *svc, size_t n, const LogFilter *filter, uint64_t first,
		       uint64_t end, uint64_t *ret)
{
	_cleanup_free_ uint64_t *ring = malloc(n * sizeof(uint64_t));
	int r;

	if (!ring)
		return -ENOMEM;
	/* Look back over growing windows until n records match or the start is reached. */
	for (uint64_t window = MAX((uint64_t)n, (uint64_t)256);; window *= 4) {
		uint64_t start = end - first > window ? end - window : first;
		Counter c = { .filter = filter, .ring = ring, .n = n };
		uint64_t seq = start;
		if ((r = iterate(svc, &seq, count_cb, &c)) < 0)
			return r;
		if (c.count >= n) {
			*ret = ring[c.count % n];
			return 0;
		}
		if (start <= first) {
			*ret = c.count > 0 ? ring[0] : end;
			return 0;
		}
	}
}

int logstore_tail(LogService *svc, size_t n, const LogFilter *filter, LogReadResult *ret_result)
{
	Collector c = {};
	uint64_t cursor;
	int r;

	if (!svc || !ret_result)
		return -EINVAL;
	uint64_t first = logstore_first_available(svc), end = svc->next_seq;
	if (n == 0 || filter_trivial(filter))
		cursor = end - first > n ? end - n : first;
	else if ((r = tail_cursor(svc, n, filter, first, end, &cursor)) < 0)
		return r;
	return collector_return(&c, read_into(svc, cursor, n, filter, &c), ret_result);
}

int logstore_read_merged(LogService *const *svcs, size_t n, uint64_t *cursors, size_t max_lines,
			 const LogFilter *filter, LogReadResult *ret_result)
{
	_cleanup_free_ Collector *parts = NULL;
	_cleanup_free_ size_t *pos = NULL;
	Collector out = {};
	int r = 0;

	if (!ret_result || ((!svcs || !cursors) && n > 0))
		return -EINVAL;
	parts = calloc(MAX(n, (size_t)1), sizeof(Collector));
	pos = calloc(MAX(n, (size_t)1), sizeof(size_t));
	if (!parts || !pos)
		return -ENOMEM;
	for (size_t i = 0; i < n && r >= 0; i++) {
		parts[i].source = (unsigned)i;
		r = read_into(svcs[i], cursors[i], max_lines, filter, &parts[i]);
	}
	while (r >= 0 && out.res.n_records < max_lines) {
		/* The smallest (time, service, seq). A service whose batch ran out but has more
		 * stops the merge: its next record might sort before anyone's. */
		size_t best = SIZE_MAX;
		bool starved = false;
		for (size_t i = 0; i < n; i++) {
			const LogReadResult *p = &parts[i].res;
			if (pos[i] == p->n_records) {
				starved = starved || p->more;
				continue;
			}
			if (best == SIZE_MAX ||
			    p->records[pos[i]].time < parts[best].res.records[pos[best]].time)
				best = i;
		}
		if (best == SIZE_MAX || starved)
			break;
		out.source = (unsigned)best;
		r = collector_add(&out, &parts[best].res.records[pos[best]++]);
	}
	if (r >= 0) {
		collector_finish(&out);
		for (size_t i = 0; i < n; i++) {
			const LogReadResult *p = &parts[i].res;
			cursors[i] = pos[i] < p->n_records ? p->records[pos[i]].seq : p->next_cursor;
			out.res.more = out.res.more || pos[i] < p->n_records || p->more;
		}
	}
	for (size_t i = 0; i < n; i++)
		log_read_result_done(&parts[i].res);
	return collector_return(&out, r, ret_result);
}
/* ==== superd-logstore.c ==== */
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
#define CHUNK_MIN (4u << 10) /* idle services stay small; busy ones grow to CHUNK_MAX */
#define CHUNK_MAX (256u << 10)

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
	const LogStoreOptions *o = &svc->store->opts;
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
	LogChunk *c = malloc(sizeof(LogChunk) + size);
	if (!c)
		return -ENOMEM;
	*c = (LogChunk){ .cap = size };
	svc->next_chunk_size = MIN(svc->next_chunk_size * 2, (size_t)CHUNK_MAX);

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
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
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
	(void)pthread_setname_np(s->writer, "logstore");
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
	svc->next_chunk_size = CHUNK_MIN;
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
