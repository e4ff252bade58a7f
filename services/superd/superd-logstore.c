/* SPDX-License-Identifier: MIT */
#include "superd-logstore.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "paths.h"
#include "strutil.h"

/*
 * How it fits together. logstore_feed() (loop thread) encodes each line straight into the
 * on-disk record format inside a chain of chunks, so one copy serves three purposes: the
 * writer thread writes chunk bytes to the file as they are (no per-line work, one pwritev
 * per batch), reads of recent lines parse the chunks, and the chunks that are written and
 * still among the last tail_lines records are the in-memory tail. The loop thread is the
 * only one that appends to or frees chunks; the writer reads committed bytes, which never
 * change once committed. The store lock guards the hand-over counters (committed/written)
 * and chain links, and is taken once per feed call plus once per new chunk. Each service's
 * file index (which file holds which seqs) has its own lock, shared by the writer (when it
 * rotates) and readers (when they pick a file), so a rename never happens under a reader
 * that is opening a file.
 */

#define FILE_MAGIC "LOCALDLG"
#define FILE_VERSION 1u
#define FILE_HEADER_SIZE 40u
#define REC_HEADER_SIZE 28u
#define REC_LEN_MAX (64u << 20) /* sanity bound for lengths read from files */
#define MAX_LINE_LIMIT (16u << 20)
#define MAX_FILES_LIMIT 1000u
#define MIN_FILE_SIZE 1024u
#define NAME_LEN_MAX 200u

#define CHUNK_MIN (4u << 10) /* idle services stay small; busy ones grow to CHUNK_MAX */
#define CHUNK_MAX (256u << 10)
#define WRITE_BATCH_MAX (4u << 20)
#define WRITE_SEGMENTS_MAX 64u
#define SAMPLE_EVERY (256u << 10) /* seek index granularity inside a file */
#define READ_BLOCK (256u << 10)
#define READ_BYTES_MAX (8u << 20)
#define RETRY_USEC (1 * USEC_PER_SEC)
#define USEC_NEVER UINT64_MAX

/* ---- little-endian encoding and CRC32C ---- */

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static uint32_t crc_table[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t v = get_le64(p) ^ crc;
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
	/* Use the instruction only where it gives the same answer as the table. */
	static const char check[] = "123456789";
	if (__builtin_cpu_supports("sse4.2"))
		crc_hw = crc32c_hw(0, (const uint8_t *)check, 9) == 0xE3069283u;
#endif
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
	if (crc_hw)
		return crc32c_hw(0, p, n);
#endif
	return crc32c_sw(0, p, n);
}

/* ---- data structures ---- */

typedef struct LogChunk {
	struct LogChunk *next; /* set under the store lock */
	uint64_t first_seq;
	usec_t first_time;
	size_t n_records; /* loop thread */
	size_t len;       /* loop thread: bytes of records encoded */
	size_t committed; /* store lock: bytes handed to the writer (whole records) */
	size_t written;   /* store lock: bytes the writer has written */
	size_t cap;
	uint8_t data[];
} LogChunk;

typedef struct LogSample {
	uint64_t seq;
	usec_t time;
	uint64_t offset;
} LogSample;

typedef struct LogFile {
	unsigned suffix; /* 0 = <service>.log, k = <service>.log.k */
	uint64_t first_seq;
	usec_t first_time;
	LogSample *samples; /* ascending; for seeking by seq/time inside the file */
	size_t n_samples, cap_samples;
} LogFile;

typedef struct Partial {
	uint8_t *data;
	size_t len, cap;
	bool continued; /* an earlier piece of this line was already stored (MORE) */
} Partial;

typedef struct ReadHint {
	uint64_t file_first_seq; /* the file it points into */
	uint64_t seq;            /* the record starting at offset */
	uint64_t offset;
} ReadHint;

struct LogStore {
	char *dir;
	int dir_fd;
	LogStoreOptions opts;

	pthread_mutex_t lock;
	pthread_cond_t wake;     /* writer waits for work (CLOCK_MONOTONIC) */
	pthread_cond_t progress; /* logstore_sync()/close wait for the writer */
	pthread_t writer;
	bool writer_started, writer_idle, stop;
	LogService *services, *rr; /* rr: where the writer's round robin resumes */
};

struct LogService {
	LogStore *store;
	LogService *prev, *next; /* store lock */
	char *project, *name;
	int dir_fd;

	/* Loop thread only. */
	uint64_t next_seq;
	Partial partial[_LOG_STREAM_MAX];
	LogChunk *head, *cur; /* links are changed under the store lock */
	size_t mem_records, mem_bytes;
	size_t next_chunk_size;
	LogLineFunc on_line;
	void *userdata;
	ReadHint hint;

	/* Store lock. */
	LogChunk *wchunk; /* first chunk with bytes the writer has not written */
	uint64_t committed_total, written_total;
	bool busy; /* the writer holds one of our batches */
	bool backpressure;
	bool unsynced;
	int write_error;
	uint64_t write_failures;
	usec_t retry_at, sync_due;

	/* Writer thread only (and open/close, when the writer cannot see the service). */
	int fd; /* the active file, or -1 until the next record creates it */
	uint64_t file_size;
	uint64_t last_sample_offset;
	usec_t last_sync;

	pthread_mutex_t files_lock;
	LogFile *files; /* newest first; files_lock */
	size_t n_files;
};

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

static int file_name(const LogService *svc, unsigned suffix, char *buf, size_t size)
{
	return suffix == 0 ? strfmt(buf, size, "%s.log", svc->name)
			   : strfmt(buf, size, "%s.log.%u", svc->name, suffix);
}

/* ---- records ---- */

static void record_decode(const uint8_t *p, LogRecord *rec)
{
	*rec = (LogRecord){
		.len = get_le32(p + 4),
		.seq = get_le64(p + 8),
		.time = get_le64(p + 16),
		.stream = (LogStream)p[24],
		.flags = p[25],
		.data = (const char *)p + REC_HEADER_SIZE,
	};
}

static void file_header_encode(uint8_t h[FILE_HEADER_SIZE], uint64_t first_seq, usec_t first_time)
{
	memcpy(h, FILE_MAGIC, 8);
	put_le32(h + 8, FILE_VERSION);
	put_le32(h + 12, FILE_HEADER_SIZE);
	put_le64(h + 16, first_seq);
	put_le64(h + 24, first_time);
	put_le32(h + 32, 0);
	put_le32(h + 36, crc32c(h, 36));
}

static int file_header_read(int fd, uint64_t *ret_seq, usec_t *ret_time)
{
	uint8_t h[FILE_HEADER_SIZE];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(h) || memcmp(h, FILE_MAGIC, 8) != 0 ||
	    get_le32(h + 8) != FILE_VERSION || get_le32(h + 12) != FILE_HEADER_SIZE ||
	    get_le32(h + 36) != crc32c(h, 36) || get_le64(h + 16) == 0)
		return -EBADMSG;
	*ret_seq = get_le64(h + 16);
	*ret_time = get_le64(h + 24);
	return 0;
}

/* Sequential record reader over a file, through a block buffer. */
typedef struct FileReader {
	int fd;
	uint8_t *buf;
	size_t cap, len;
	uint64_t buf_off; /* file offset of buf[0] */
	uint64_t off;     /* next record */
} FileReader;

static void file_reader_done(FileReader *fr)
{
	free(fr->buf);
	fr->buf = NULL;
}

static int file_reader_fill(FileReader *fr, size_t need)
{
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

/* 1 and the next intact record (pointing into the buffer), 0 at the end of the intact
 * records (end of file, torn or corrupt record), or -errno. */
static int file_reader_next(FileReader *fr, LogRecord *ret)
{
	int r;

	if (!fr->buf && (r = file_reader_fill(fr, READ_BLOCK)) < 0)
		return r;
	size_t pos = (size_t)(fr->off - fr->buf_off);
	if (fr->off < fr->buf_off || pos + REC_HEADER_SIZE > fr->len) {
		if ((r = file_reader_fill(fr, MAX(fr->cap, (size_t)READ_BLOCK))) < 0)
			return r;
		pos = 0;
		if (fr->len < REC_HEADER_SIZE)
			return 0;
	}
	uint32_t len = get_le32(fr->buf + pos + 4);
	if (len > REC_LEN_MAX)
		return 0;
	size_t size = REC_HEADER_SIZE + (size_t)len;
	if (pos + size > fr->len) {
		if ((r = file_reader_fill(fr, MAX(fr->cap, size))) < 0)
			return r;
		pos = 0;
		if (size > fr->len)
			return 0;
	}
	const uint8_t *p = fr->buf + pos;
	if (get_le32(p) != crc32c(p + 4, size - 4) || p[24] >= _LOG_STREAM_MAX)
		return 0;
	record_decode(p, ret);
	fr->off += size;
	return 1;
}

/* ---- file index ---- */

static void log_file_done(LogFile *f)
{
	free(f->samples);
	*f = (LogFile){};
}

static void file_add_sample(LogFile *f, uint64_t seq, usec_t time, uint64_t offset)
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

/* Walk the records of an open file: the offset after the last record continuing the
 * sequence from first_seq, and the seq after it. Adds seek samples to f if given. */
static int file_scan(int fd, uint64_t first_seq, LogFile *f, uint64_t *ret_end,
		     uint64_t *ret_next_seq, uint64_t *ret_last_sample)
{
	_cleanup_(file_reader_done) FileReader fr = { .fd = fd, .off = FILE_HEADER_SIZE };
	uint64_t next = first_seq, last_sample = FILE_HEADER_SIZE;
	LogRecord rec;
	int r;

	for (;;) {
		uint64_t off = fr.off;
		r = file_reader_next(&fr, &rec);
		if (r < 0)
			return r;
		if (r == 0 || rec.seq != next)
			break;
		if (f && off - last_sample >= SAMPLE_EVERY) {
			file_add_sample(f, rec.seq, rec.time, off);
			last_sample = off;
		}
		next++;
	}
	*ret_end = fr.off;
	*ret_next_seq = next;
	if (ret_last_sample)
		*ret_last_sample = last_sample;
	return 0;
}

/* Index the files a previous run left; truncate a torn tail of the active one. */
static int service_load_files(LogService *svc)
{
	unsigned max_files = svc->store->opts.max_files;
	char name[NAME_MAX + 1];
	int r;

	for (unsigned k = 0; k < max_files; k++) {
		if ((r = file_name(svc, k, name, sizeof(name))) < 0)
			return r;
		_cleanup_close_ int fd = openat(svc->dir_fd, name,
						(k == 0 ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		uint64_t seq;
		usec_t time;
		r = file_header_read(fd, &seq, &time);
		if (r == -EBADMSG) {
			struct stat st;
			if (k == 0 && fstat(fd, &st) >= 0 && (uint64_t)st.st_size < FILE_HEADER_SIZE) {
				/* Killed between creating the file and writing its header. */
				if (unlinkat(svc->dir_fd, name, 0) < 0)
					return -errno;
			} else if (k == 0) {
				/* Not ours, or damaged: keep it for a human, start afresh. */
				char aside[NAME_MAX + 1];
				if ((r = strfmt(aside, sizeof(aside), "%s.log.broken", svc->name)) < 0)
					return r;
				if (renameat(svc->dir_fd, name, svc->dir_fd, aside) < 0)
					return -errno;
			}
			continue;
		}
		if (r < 0)
			return r;
		/* Seqs must fall going back in time; anything else is a stray file. */
		if (svc->n_files > 0 && seq >= svc->files[svc->n_files - 1].first_seq)
			continue;
		LogFile *f = &svc->files[svc->n_files++];
		*f = (LogFile){ .suffix = k, .first_seq = seq, .first_time = time };

		if (k == 0) {
			uint64_t end, next, last_sample;
			if ((r = file_scan(fd, seq, f, &end, &next, &last_sample)) < 0)
				return r;
			struct stat st;
			if (fstat(fd, &st) < 0)
				return -errno;
			if ((uint64_t)st.st_size > end && ftruncate(fd, (off_t)end) < 0)
				return -errno;
			svc->next_seq = next;
			svc->file_size = end;
			svc->last_sample_offset = last_sample;
			svc->fd = TAKE_FD(fd);
		} else if (svc->n_files == 1) {
			/* No active file: the newest rotated one says where the sequence is. */
			uint64_t end, next;
			if ((r = file_scan(fd, seq, NULL, &end, &next, NULL)) < 0)
				return r;
			svc->next_seq = next;
		}
	}
	return 0;
}

static uint64_t service_first_available(LogService *svc)
{
	uint64_t first = svc->head ? svc->head->first_seq : svc->next_seq;
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
	c->committed = c->len;
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
	size_t need = REC_HEADER_SIZE + len;
	int r;

	if (!svc->cur || svc->cur->cap - svc->cur->len < need)
		if ((r = chunk_new(svc, need)) < 0)
			return r;
	LogChunk *c = svc->cur;
	uint8_t *p = c->data + c->len;
	put_le32(p + 4, (uint32_t)len);
	put_le64(p + 8, svc->next_seq);
	put_le64(p + 16, now);
	p[24] = (uint8_t)stream;
	p[25] = (uint8_t)flags;
	put_le16(p + 26, 0);
	memcpy(p + REC_HEADER_SIZE, data, len);
	put_le32(p, crc32c(p + 4, need - 4));

	if (c->n_records == 0) {
		c->first_seq = svc->next_seq;
		c->first_time = now;
	}
	c->n_records++;
	c->len += need;
	svc->mem_records++;
	svc->mem_bytes += need;
	svc->next_seq++;

	if (svc->on_line) {
		LogRecord rec;
		record_decode(p, &rec);
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
			size_t cap = MIN(MAX(p->cap * 2, MAX(p->len + k, (size_t)256)), max + 1);
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
	LogChunk *dead = NULL, **dead_tail = &dead;
	bool bp;

	pthread_mutex_lock(&s->lock);
	if (svc->cur && svc->cur->committed != svc->cur->len) {
		commit_locked(svc, svc->cur);
		wake_writer_locked(s);
	}
	/* Keep whole chunks while they hold the last tail_lines records (within tail_bytes);
	 * unwritten chunks stay whatever the tail wants. */
	while (svc->head && svc->head->next && svc->head->written == svc->head->committed) {
		LogChunk *c = svc->head;
		if (svc->mem_records - c->n_records < s->opts.tail_lines &&
		    svc->mem_bytes - c->len < s->opts.tail_bytes)
			break;
		svc->head = c->next;
		if (svc->wchunk == c)
			svc->wchunk = c->next;
		svc->mem_records -= c->n_records;
		svc->mem_bytes -= c->len;
		c->next = NULL;
		*dead_tail = c;
		dead_tail = &c->next;
	}
	if (svc->committed_total - svc->written_total > s->opts.pending_max)
		svc->backpressure = true;
	bp = svc->backpressure;
	pthread_mutex_unlock(&s->lock);

	while (dead) {
		LogChunk *c = dead;
		dead = c->next;
		free(c);
	}
	return bp ? 1 : 0;
}

static bool stream_valid(LogStream stream)
{
	return stream >= 0 && stream < _LOG_STREAM_MAX;
}

int logstore_feed(LogService *svc, LogStream stream, const void *bytes, size_t n, usec_t now)
{
	const uint8_t *d = bytes, *end = d + n;
	Partial *p;
	int r = 0;

	if (!svc || !stream_valid(stream) || (!bytes && n > 0))
		return -EINVAL;
	p = &svc->partial[stream];

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
		.first_available = service_first_available(svc),
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

/* ---- the writer thread ---- */

typedef struct Segment {
	LogChunk *chunk;
	const uint8_t *p;
	size_t len;
} Segment;

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

/* Bytes of the longest run of whole records from the current position that fits in avail
 * (segments hold whole records, so a record never straddles two). */
static size_t batch_fit(const Batch *b, uint64_t avail)
{
	size_t fit = 0, i = b->i, off = b->off;

	while (i < b->n) {
		size_t size = REC_HEADER_SIZE + get_le32(b->seg[i].p + off + 4);
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

static int pwritev_full(int fd, struct iovec *iov, int n, uint64_t off)
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

/* Start a new active file whose first record is the one at p. */
static int active_create(LogService *svc, const uint8_t *p)
{
	uint8_t h[FILE_HEADER_SIZE];
	char name[NAME_MAX + 1];
	LogRecord rec;
	int r;

	record_decode(p, &rec);
	if ((r = file_name(svc, 0, name, sizeof(name))) < 0)
		return r;
	_cleanup_close_ int fd = openat(svc->dir_fd, name,
					O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	file_header_encode(h, rec.seq, rec.time);
	struct iovec iov = { h, sizeof(h) };
	if ((r = pwritev_full(fd, &iov, 1, 0)) < 0)
		return r;

	pthread_mutex_lock(&svc->files_lock);
	if (svc->n_files == svc->store->opts.max_files) /* a stray entry can't outlive rotation */
		log_file_done(&svc->files[--svc->n_files]);
	memmove(svc->files + 1, svc->files, svc->n_files * sizeof(LogFile));
	svc->files[0] = (LogFile){ .first_seq = rec.seq, .first_time = rec.time };
	svc->n_files++;
	pthread_mutex_unlock(&svc->files_lock);

	svc->fd = TAKE_FD(fd);
	svc->file_size = FILE_HEADER_SIZE;
	svc->last_sample_offset = FILE_HEADER_SIZE;
	return 0;
}

/* <svc>.log → .log.1 → … ; the oldest falls off. Oldest first, so a failure half-way
 * leaves every file under a name the index still knows. */
static int rotate(LogService *svc)
{
	unsigned max_files = svc->store->opts.max_files;
	char from[NAME_MAX + 1], to[NAME_MAX + 1];
	int r = 0;

	pthread_mutex_lock(&svc->files_lock);
	while (svc->n_files > 0) {
		LogFile *f = &svc->files[svc->n_files - 1];
		if (f->suffix + 1 < max_files)
			break;
		if ((r = file_name(svc, f->suffix, from, sizeof(from))) < 0)
			goto out;
		if (unlinkat(svc->dir_fd, from, 0) < 0 && errno != ENOENT) {
			r = -errno;
			goto out;
		}
		log_file_done(f);
		svc->n_files--;
	}
	for (size_t i = svc->n_files; i-- > 0;) {
		LogFile *f = &svc->files[i];
		if ((r = file_name(svc, f->suffix, from, sizeof(from))) < 0 ||
		    (r = file_name(svc, f->suffix + 1, to, sizeof(to))) < 0)
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
			if (n == 0 && svc->file_size > FILE_HEADER_SIZE) {
				if ((r = rotate(svc)) < 0)
					return r;
				continue;
			}
			if (n == 0) /* a record bigger than a whole file gets a file of its own */
				n = REC_HEADER_SIZE + get_le32(batch_pos(b) + 4);
		}

		LogRecord first;
		record_decode(batch_pos(b), &first);
		Batch pos = *b;
		int cnt = 0;
		for (size_t left = n; left > 0; cnt++) {
			size_t k = MIN(left, pos.seg[pos.i].len - pos.off);
			iov[cnt] = (struct iovec){ (void *)batch_pos(&pos), k };
			batch_advance(&pos, k);
			left -= k;
		}
		if ((r = pwritev_full(svc->fd, iov, cnt, svc->file_size)) < 0)
			return r;

		if (svc->file_size - svc->last_sample_offset >= SAMPLE_EVERY) {
			pthread_mutex_lock(&svc->files_lock);
			file_add_sample(&svc->files[0], first.seq, first.time, svc->file_size);
			pthread_mutex_unlock(&svc->files_lock);
			svc->last_sample_offset = svc->file_size;
		}
		svc->file_size += n;
		*ret_done += n;
		batch_advance(b, n);
	}
	return 0;
}

static int sync_service(LogService *svc)
{
	if (svc->fd >= 0 && fdatasync(svc->fd) < 0)
		return -errno;
	return 0;
}

/* Next service with work, round robin; *wake_at lowered to when a waiting one is due. */
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

static void *writer_main(void *userdata)
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
		bool do_sync = o->sync_interval > 0 && (sync_only || now >= svc->last_sync + o->sync_interval);
		if (r >= 0 && do_sync) {
			r = sync_service(svc);
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
		pthread_cond_broadcast(&s->progress);

		if (drained && o->on_drain) {
			/* Still busy, so logstore_close() cannot free svc under the callback. */
			pthread_mutex_unlock(&s->lock);
			o->on_drain(o->userdata, svc);
			pthread_mutex_lock(&s->lock);
		}
		svc->busy = false;
		pthread_cond_broadcast(&s->progress);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- store and service life cycle ---- */

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
	pthread_once(&crc_once, crc_init);

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

	/* Signals belong to the loop thread (libuv's signal watchers). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&s->writer, NULL, writer_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	s->writer_started = true;
	pthread_setname_np(s->writer, "logstore");
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
	for (LogChunk *c = svc->head; c;) {
		LogChunk *next = c->next;
		free(c);
		c = next;
	}
	for (int i = 0; i < _LOG_STREAM_MAX; i++)
		free(svc->partial[i].data);
	for (size_t i = 0; i < svc->n_files; i++)
		log_file_done(&svc->files[i]);
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

	pthread_mutex_lock(&s->lock);
	for (LogService *i = s->services; i; i = i->next)
		if (streq(i->project, project) && streq(i->name, service)) {
			pthread_mutex_unlock(&s->lock);
			return -EEXIST;
		}
	pthread_mutex_unlock(&s->lock);

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
	svc->files = calloc(s->opts.max_files, sizeof(LogFile));
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
	/* On a persistent write error this gives up after one failed attempt: a daemon
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
		(void)sync_service(svc);
	return service_free(svc);
}

/* ---- reading ---- */

/* Called per record in seq order: 0 go on, 1 stop after this one, -errno. */
typedef int (*RecordFunc)(void *userdata, const LogRecord *rec);

typedef struct OpenedFile {
	int fd;
	uint64_t first_seq;
	uint64_t offset; /* where to start scanning for the wanted seq */
} OpenedFile;

/* Open the file that holds seq. 0 and *of, or 1 with *seq moved up to the oldest record
 * kept (seq was rotated away or sits in a hole), or -errno. */
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
	const LogFile *f = &svc->files[i];
	uint64_t off = FILE_HEADER_SIZE, at = f->first_seq;
	for (size_t k = 0; k < f->n_samples && f->samples[k].seq <= *seq; k++) {
		off = f->samples[k].offset;
		at = f->samples[k].seq;
	}
	if (svc->hint.file_first_seq == f->first_seq && svc->hint.seq <= *seq && svc->hint.seq >= at)
		off = svc->hint.offset;
	if ((r = file_name(svc, f->suffix, name, sizeof(name))) < 0)
		goto out;
	int fd = openat(svc->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	uint64_t hseq;
	usec_t htime;
	r = file_header_read(fd, &hseq, &htime);
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

/* First seq of the next newer file than the one starting at first_seq (which may have
 * been rotated away meanwhile), or limit. */
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
		OpenedFile of;
		r = open_for_seq(svc, seq, limit, &of);
		if (r == 1)
			continue;
		if (r < 0) {
			/* A file vanished or changed under us: the index is never wrong for long. */
			if (++failures > 3) {
				*seq = limit;
				return 0;
			}
			continue;
		}
		_cleanup_close_ int fd = of.fd;
		_cleanup_(file_reader_done) FileReader fr = { .fd = fd, .off = of.offset };
		LogRecord rec;
		r = 0;
		while (*seq < limit) {
			r = file_reader_next(&fr, &rec);
			if (r <= 0)
				break;
			if (rec.seq >= limit) {
				r = 0;
				break;
			}
			if (rec.seq < *seq)
				continue;
			*seq = rec.seq + 1;
			svc->hint = (ReadHint){ of.first_seq, *seq, fr.off };
			if ((r = f(ud, &rec)) != 0)
				return r;
		}
		if (r < 0)
			return r;
		/* The file ended: go on in the next one, skipping what a damaged file lost. */
		uint64_t end = file_end_seq(svc, of.first_seq, limit);
		if (*seq < end)
			*seq = end;
	}
	return 0;
}

static int iterate_memory(LogService *svc, uint64_t *seq, RecordFunc f, void *ud)
{
	for (LogChunk *c = svc->head; c; c = c->next) {
		if (c->first_seq + c->n_records <= *seq)
			continue;
		const uint8_t *p = c->data;
		for (size_t i = 0; i < c->n_records; i++) {
			LogRecord rec;
			record_decode(p, &rec);
			p += REC_HEADER_SIZE + rec.len;
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

/* Every record from seq on, files first, then memory. *seq ends after the last one seen. */
static int iterate(LogService *svc, uint64_t *seq, RecordFunc f, void *ud)
{
	uint64_t mem_first = svc->head ? svc->head->first_seq : svc->next_seq;
	int r;

	if (*seq < mem_first) {
		r = iterate_files(svc, seq, mem_first, f, ud);
		if (r != 0)
			return r;
		*seq = MAX(*seq, mem_first);
	}
	return iterate_memory(svc, seq, f, ud);
}

/* A seq at or before the first record at or after time t (clock steps aside). */
static uint64_t seek_time(LogService *svc, usec_t t)
{
	uint64_t best = 0;

	for (LogChunk *c = svc->head; c; c = c->next)
		if (c->n_records > 0 && c->first_time <= t)
			best = c->first_seq;
	if (best)
		return best;
	pthread_mutex_lock(&svc->files_lock);
	for (size_t i = 0; i < svc->n_files && !best; i++) {
		const LogFile *f = &svc->files[i];
		if (f->first_time > t)
			continue;
		best = f->first_seq;
		for (size_t k = 0; k < f->n_samples; k++)
			if (f->samples[k].time <= t)
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
	/* An offset until the arena stops moving; see collector_finish(). */
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
	uint64_t first = service_first_available(svc), end = svc->next_seq;
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

int logstore_read(LogService *svc, uint64_t cursor, size_t max_lines, const LogFilter *filter,
		  LogReadResult *ret_result)
{
	Collector c = {};
	int r;

	if (!svc || !ret_result)
		return -EINVAL;
	r = read_into(svc, cursor, max_lines, filter, &c);
	if (r < 0) {
		log_read_result_done(&c.res);
		return r;
	}
	*ret_result = c.res;
	return 0;
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

int logstore_tail(LogService *svc, size_t n, const LogFilter *filter, LogReadResult *ret_result)
{
	uint64_t first, end, cursor;
	int r;

	if (!svc || !ret_result)
		return -EINVAL;
	first = service_first_available(svc);
	end = svc->next_seq;
	if (n == 0 || filter_trivial(filter))
		cursor = end - first > n ? end - n : first;
	else {
		/* Look back over growing windows until n records match or the start is hit. */
		_cleanup_free_ uint64_t *ring = malloc(n * sizeof(uint64_t));
		if (!ring)
			return -ENOMEM;
		for (uint64_t window = MAX((uint64_t)n, 256);; window *= 4) {
			uint64_t start = end - first > window ? end - window : first;
			Counter c = { .filter = filter, .ring = ring, .n = n };
			uint64_t seq = start;
			if ((r = iterate(svc, &seq, count_cb, &c)) < 0)
				return r;
			if (c.count >= n) {
				cursor = ring[c.count % n];
				break;
			}
			if (start <= first) {
				cursor = c.count > 0 ? ring[0] : end;
				break;
			}
		}
	}
	Collector c = {};
	r = read_into(svc, cursor, n, filter, &c);
	if (r < 0) {
		log_read_result_done(&c.res);
		return r;
	}
	*ret_result = c.res;
	return 0;
}

int logstore_read_merged(LogService *const *svcs, size_t n, uint64_t *cursors, size_t max_lines,
			 const LogFilter *filter, LogReadResult *ret_result)
{
	_cleanup_free_ Collector *parts = NULL;
	_cleanup_free_ size_t *pos = NULL;
	Collector out = {};
	int r = 0;

	if ((!svcs || !cursors) && n > 0)
		return -EINVAL;
	if (!ret_result)
		return -EINVAL;
	parts = calloc(MAX(n, (size_t)1), sizeof(Collector));
	pos = calloc(MAX(n, (size_t)1), sizeof(size_t));
	if (!parts || !pos)
		return -ENOMEM;
	for (size_t i = 0; i < n && r >= 0; i++) {
		parts[i].source = (unsigned)i;
		r = read_into(svcs[i], cursors[i], max_lines, filter, &parts[i]);
	}
	out.max = max_lines;
	while (r >= 0 && out.res.n_records < max_lines) {
		/* Smallest (time, service, seq) head. A service whose batch ran out but that has
		 * more stops the merge: its next record might sort before anyone's. */
		size_t best = SIZE_MAX;
		bool starved = false;
		for (size_t i = 0; i < n; i++) {
			const LogReadResult *p = &parts[i].res;
			if (pos[i] == p->n_records) {
				if (p->next_cursor < p->end_cursor)
					starved = true;
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
	if (r < 0) {
		log_read_result_done(&out.res);
		return r;
	}
	*ret_result = out.res;
	return 0;
}
