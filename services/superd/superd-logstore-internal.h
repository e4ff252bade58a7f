/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What superd-logstore.c (life cycle, feeding), superd-logwriter.c (the writer thread) and
 * superd-logread.c (reads) share. Nothing outside these files includes this.
 *
 * How it fits together. logstore_feed() (loop thread) encodes each line straight into the
 * on-disk record format inside a chain of chunks, so one copy serves three purposes: the
 * writer thread writes chunk bytes to the file as they are (no per-line work, one pwritev
 * per batch), reads of recent lines parse the chunks, and the chunks that are written and
 * still among the last tail_lines records are the in-memory tail.
 *
 * Who touches what:
 *   - Only the loop thread appends to the current chunk (svc->cur) and its private
 *     counters (len, n_records). Bytes up to a chunk's `committed` never change again.
 *   - The store lock guards the hand-over: committed/written counts, chain links, head,
 *     and the memory accounting. It is taken once per feed call and once per new chunk.
 *   - Both the loop thread (publish) and the writer (after a batch) drop written chunks
 *     that the tail no longer needs, under the store lock; so the loop thread walks the
 *     chain under that lock too. This way a service that logged a burst and went quiet
 *     does not keep its backlog in memory until its next line.
 *   - Each service's file index has its own lock, taken by the writer when it creates or
 *     rotates files and by readers while they pick and open a file, so a rename never
 *     happens between a reader's lookup and its open().
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "superd-logstore.h"

#define LOGSTORE_SAMPLE_EVERY (256u << 10) /* seek index granularity inside a file */
#define LOGSTORE_CHUNK_MIN (4u << 10)       /* idle services stay small… */
#define LOGSTORE_CHUNK_MAX (256u << 10)     /* …busy ones grow to this */
#define LOGSTORE_SPARE_MAX 4u /* full-size chunks kept for reuse: fresh memory costs page faults */
#define USEC_NEVER UINT64_MAX

/* The clock of store->wake: macOS has no pthread_condattr_setclock(). */
#if defined(__APPLE__)
#define LOGSTORE_COND_CLOCK CLOCK_REALTIME
#else
#define LOGSTORE_COND_CLOCK CLOCK_MONOTONIC
#endif

typedef struct LogChunk {
	struct LogChunk *next; /* store lock */
	uint64_t first_seq;
	usec_t first_time;
	size_t n_records;         /* loop thread */
	size_t len;               /* loop thread: bytes of records encoded */
	size_t committed;         /* store lock: bytes handed to the writer (whole records) */
	size_t committed_records; /* store lock */
	size_t written;           /* store lock: bytes the writer has written */
	size_t cap;
	uint8_t data[];
} LogChunk;

typedef struct LogSample {
	uint64_t seq;
	usec_t time;
	uint64_t offset;
} LogSample;

/* One file on disk, in the index. */
typedef struct LogFileInfo {
	unsigned suffix; /* 0 = <service>.log, k = <service>.log.k */
	uint64_t first_seq;
	usec_t first_time;
	LogSample *samples; /* ascending; for seeking by seq or time inside the file */
	size_t n_samples, cap_samples;
} LogFileInfo;

typedef struct Partial {
	uint8_t *data;
	size_t len, cap;
	bool continued; /* an earlier piece of this line is stored already (LOG_RECORD_MORE) */
} Partial;

/* Where the last read from the files stopped, so paging by cursor does not rescan. */
typedef struct ReadHint {
	uint64_t file_first_seq; /* the file it points into */
	uint64_t seq;            /* the record that starts at offset */
	uint64_t offset;
} ReadHint;

struct LogStore {
	char *dir;
	int dir_fd;
	LogStoreOptions opts;

	pthread_mutex_t lock;
	pthread_cond_t wake;     /* the writer waits for work (LOGSTORE_COND_CLOCK) */
	pthread_cond_t progress; /* logstore_sync() and close wait for the writer */
	pthread_t writer;
	bool writer_started, writer_idle, stop;
	LogService *services, *rr; /* rr: where the writer's round robin goes on */
	LogChunk *spare; /* store lock; linked through next */
	unsigned n_spare;
};

struct LogService {
	LogStore *store;
	LogService *prev, *next; /* store lock */
	char *project, *name;
	int dir_fd;

	/* Loop thread only. */
	uint64_t next_seq;
	Partial partial[_LOG_STREAM_MAX];
	LogChunk *cur; /* the chunk being filled; never freed while it is the last */
	size_t next_chunk_size;
	LogLineFunc on_line;
	void *userdata;
	ReadHint hint;

	/* Store lock. */
	LogChunk *head;   /* oldest chunk in memory */
	LogChunk *wchunk; /* first chunk with bytes the writer has not written */
	size_t mem_records, mem_bytes; /* committed ones in memory */
	uint64_t committed_total, written_total;
	bool busy; /* the writer holds one of our batches */
	bool backpressure;
	bool unsynced;
	int write_error;
	uint64_t write_failures;
	usec_t retry_at, sync_due;

	/* Writer thread only (and open/close, while the writer cannot see the service). */
	int fd; /* the active file, or -1 until the next record creates it */
	uint64_t file_size;
	uint64_t last_sample_offset;
	usec_t last_sync;

	pthread_mutex_t files_lock;
	LogFileInfo *files; /* newest first, at most opts.max_files; files_lock */
	size_t n_files;
};

/* "<service>.log" or "<service>.log.<suffix>". */
int logstore_file_name(const LogService *svc, unsigned suffix, char *buf, size_t size);
void logstore_file_add_sample(LogFileInfo *f, uint64_t seq, usec_t time, uint64_t offset);
void logstore_file_info_done(LogFileInfo *f);

/* Unlink chunks that are written and not needed for the tail; the caller frees the list
 * (returned through their next pointers) after dropping the store lock. */
LogChunk *logstore_trim_locked(LogService *svc);
void logstore_chunks_free(LogChunk *c);

/* The oldest seq still kept, in memory or in the files. Loop thread. */
uint64_t logstore_first_available(LogService *svc);

/* superd-logwriter.c */
void *logwriter_main(void *userdata);
int logwriter_sync_fd(LogService *svc);
