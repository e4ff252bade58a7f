/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The service log store of locald-superd: every line a service writes to stdout/stderr
 * (and superd's own notes about it) gets a per-service sequence number, a µs realtime
 * timestamp and a stream, is kept in memory (a tail) and appended to a per-service file
 * by a writer thread, so a slow disk shows as lag and never stalls the loop that drains
 * the pipes. Nothing is dropped: a line over the limit is split into several records,
 * bytes are stored as they came (binary, invalid UTF-8, ANSI), and when the writer falls
 * behind the store asks the engine to stop reading that service's pipe (backpressure),
 * so the kernel pipe blocks the service instead of the store throwing lines away.
 *
 * Threads: everything below is called from one thread (superd's loop thread), except
 * LogStoreOptions.on_drain, which the writer thread calls. The store's own writer thread
 * only touches the pending queue and the files.
 *
 * The engine's use of it:
 *
 *     logstore_new("<state>/logs", &(LogStoreOptions){ .on_drain = wake, .userdata = e }, &store);
 *     logstore_open(store, "shop", "web", &svc);   // once per service, across its restarts
 *     read cb:   if (logstore_feed(svc, LOG_STREAM_STDOUT, buf, n, now_realtime()) > 0)
 *                        uv_read_stop(pipe);       // wake() → uv_async_send(); its handler
 *                                                  // resumes pipes once !logstore_backpressure()
 *     exit:      logstore_flush_partial(svc, now); logstore_append(svc, LOG_STREAM_SYSTEM, …);
 *     bus Logs:  logstore_read(svc, cursor, max, &filter, &res); …; log_read_result_done(&res);
 *
 * Files: <dir>/<project>/<service>.log (active), .log.1 … .log.<max_files-1> (older).
 * Each file is a 40-byte header followed by records, all integers little-endian:
 *
 *   file header  magic "LOCALDLG" | u32 version (1) | u32 header size (40)
 *                | u64 first seq | u64 first time (µs) | u32 reserved (0) | u32 crc32c of bytes 0..35
 *   record       u32 crc32c of bytes 4..end | u32 payload length | u64 seq | u64 time (µs)
 *                | u8 stream | u8 flags | u16 reserved (0) | payload (no terminator)
 *
 * Sequence numbers are consecutive inside a file. A record whose length runs past the end
 * of the file, whose CRC does not match or whose seq breaks the sequence ends the file:
 * on reopen (after superd was killed) the active file is truncated there.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

typedef enum LogStream {
	LOG_STREAM_STDOUT,
	LOG_STREAM_STDERR,
	LOG_STREAM_SYSTEM, /* superd's own lines about the service: started, exited, … */
	_LOG_STREAM_MAX,
	_LOG_STREAM_INVALID = -EINVAL,
} LogStream;

#define LOG_STREAM_MASK(s) (1u << (s))
#define LOG_STREAM_MASK_ALL ((1u << _LOG_STREAM_MAX) - 1)

const char *log_stream_to_string(LogStream s);
LogStream log_stream_from_string(const char *s);

/* Record flags. A line longer than max_line is split; reassemble per stream. */
enum {
	LOG_RECORD_MORE = 1u << 0,         /* the line goes on in the next record of this stream */
	LOG_RECORD_CONTINUATION = 1u << 1, /* this record continues the previous one of this stream */
	LOG_RECORD_NO_NEWLINE = 1u << 2,   /* the line ended without '\n' (flushed at exit) */
};

typedef struct LogRecord {
	uint64_t seq;     /* per service, consecutive, from 1; also the read cursor */
	usec_t time;      /* CLOCK_REALTIME µs, as passed to logstore_feed() */
	LogStream stream;
	unsigned flags;   /* LOG_RECORD_* */
	unsigned source;  /* logstore_read_merged(): index of the service; else 0 */
	size_t len;
	/* The bytes of the line without '\n' (and without the '\r' of "\r\n"). In read results
	 * they are followed by a NUL (not counted in len); in on_line callbacks they are not. */
	const char *data;
} LogRecord;

typedef struct LogStore LogStore;
typedef struct LogService LogService;

typedef struct LogStoreOptions {
	uint64_t max_file_size; /* rotate before a file grows past this; default 16 MiB */
	unsigned max_files;     /* files kept per service, the active one included; default 5 */
	size_t tail_lines;      /* records kept in memory per service; default 2000 */
	size_t tail_bytes;      /* … and at most about this many bytes of them; default 1 MiB */
	size_t max_line;        /* longer lines are split into records; default 64 KiB */
	/* Unwritten bytes per service above which logstore_feed() asks for backpressure;
	 * it is released below half of this. Default 8 MiB. */
	size_t pending_max;
	usec_t sync_interval; /* fdatasync at most this often while writing; 0 = never */
	/* Called on the writer thread when a service under backpressure may be read again.
	 * Do only thread-safe things here (uv_async_send), never call into the store. */
	void (*on_drain)(void *userdata, LogService *svc);
	void *userdata;
} LogStoreOptions;

/* Start a store rooted at dir (created if missing, 0700). opts may be NULL; zero fields
 * take the defaults. Starts the writer thread. 0 or -errno. */
int logstore_new(const char *dir, const LogStoreOptions *opts, LogStore **ret_store);
/* Close every service still open (flushing it), stop the writer; returns NULL. */
LogStore *logstore_free(LogStore *s);

/*
 * Open the log of one service, resuming its files: sequence numbers continue where the
 * last run stopped, a torn record at the end of the active file is cut off. Names must be
 * usable as file names (no '/', not "." or ".."). -EEXIST if it is already open.
 */
int logstore_open(LogStore *s, const char *project, const char *service, LogService **ret_svc);
/* Flush partial lines, wait until everything is written (this blocks the caller for as
 * long as the disk needs for what is pending, at most pending_max; on a failing disk, one
 * more attempt), release. Returns NULL. */
LogService *logstore_close(LogService *svc);

typedef void (*LogLineFunc)(void *userdata, LogService *svc, const LogRecord *rec);
/* Called from logstore_feed() for every record appended, on the caller's thread. The
 * record is valid during the call only. The callback must not feed or close svc. */
void logstore_set_on_line(LogService *svc, LogLineFunc cb, void *userdata);

/*
 * Bytes a service wrote. Lines end at '\n' ("\r\n" loses the '\r'); the rest waits per
 * stream for the next call or logstore_flush_partial(). now = CLOCK_REALTIME µs.
 * Returns 0, 1 if the engine should stop reading this service until on_drain (the
 * bytes were stored all the same), or -ENOMEM/-EINVAL (then the bytes from the line that
 * failed on are not stored).
 */
int logstore_feed(LogService *svc, LogStream stream, const void *bytes, size_t n, usec_t now);
/* Store exactly one line (no newline processing; split only by length). Same returns. */
int logstore_append(LogService *svc, LogStream stream, const void *line, size_t n, usec_t now);
/* End the partial lines of every stream (the service exited): stored with
 * LOG_RECORD_NO_NEWLINE. Same returns. */
int logstore_flush_partial(LogService *svc, usec_t now);
/* Whether the engine should keep the service's pipes paused (see pending_max). */
bool logstore_backpressure(LogService *svc);
/* Wait (blocking) until everything fed so far is written to the files. 0, or the writer's
 * error (-ENOSPC, -EIO, …) if its latest attempt failed (it keeps retrying every second,
 * and the service stays under backpressure meanwhile). */
int logstore_sync(LogService *svc);

typedef struct LogFilter {
	unsigned stream_mask; /* LOG_STREAM_MASK(…) bits; 0 = every stream */
	usec_t since;         /* only records with time >= since; 0 = no bound */
	usec_t until;         /* only records with time < until; 0 = no bound */
} LogFilter;

typedef struct LogReadResult {
	LogRecord *records;
	size_t n_records;
	uint64_t next_cursor;     /* read on from here; == end_cursor when caught up */
	uint64_t end_cursor;      /* the seq the next line will get */
	uint64_t first_available; /* oldest seq still stored; a cursor below it was rotated away */
	bool more;                /* more is there to read right now: call again */
	char *arena;              /* owns the records' bytes */
	size_t arena_len, arena_cap;
} LogReadResult;

void log_read_result_done(LogReadResult *r);
static inline void log_read_result_donep(LogReadResult *r)
{
	log_read_result_done(r);
}
#define _cleanup_log_read_result_ __attribute__((cleanup(log_read_result_donep)))

/*
 * Up to max_lines records with seq >= cursor that pass filter (NULL = all), oldest first.
 * A cursor of 0, or one that was rotated away, starts at the oldest record kept; with
 * filter->since the read skips ahead to about that time using the file index. A read
 * may stop early (about 8 MiB of line bytes per call); go on from next_cursor.
 * 0 and *ret_result set (release it with log_read_result_done()), or -errno and
 * *ret_result untouched.
 */
int logstore_read(LogService *svc, uint64_t cursor, size_t max_lines, const LogFilter *filter,
		  LogReadResult *ret_result);
/* The last n records that pass filter, oldest first. */
int logstore_tail(LogService *svc, size_t n, const LogFilter *filter, LogReadResult *ret_result);
/*
 * Several services merged by time (ties: service order, then seq), for `localctl logs`.
 * cursors[i] is the cursor for svcs[i] and is advanced past what was returned; record.source
 * says which service a record came from. Of the result's cursors only `more` is set.
 */
int logstore_read_merged(LogService *const *svcs, size_t n, uint64_t *cursors, size_t max_lines,
			 const LogFilter *filter, LogReadResult *ret_result);

typedef struct LogServiceStats {
	uint64_t end_cursor;      /* next seq */
	uint64_t first_available; /* oldest seq still stored */
	uint64_t unwritten;       /* bytes waiting for the writer */
	unsigned n_files;         /* files on disk */
	bool backpressure;
	int write_error; /* last writer error, 0 when the latest write worked */
} LogServiceStats;

void logstore_stats(LogService *svc, LogServiceStats *ret_stats);
const char *logstore_project(LogService *svc);
const char *logstore_service(LogService *svc);
