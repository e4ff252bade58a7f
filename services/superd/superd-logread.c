/* SPDX-License-Identifier: MIT */
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

/* Errors that mean the file is not (any more) the one the index describes. */
static bool file_gone(int r)
{
	return r == -ENOENT || r == -ESTALE || r == -EBADMSG;
}

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
			if (!file_gone(r))
				return r;
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
	n = (size_t)MIN((uint64_t)n, end - first); /* more cannot match; bounds the ring */
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
