/* SPDX-License-Identifier: MIT */
/*
 * Feed stdin through the log store as fast as it comes, the way superd's engine does
 * (64 KiB reads, pause on backpressure until on_drain), and print lines/s. For the
 * ingestion benchmark against `writer | cat > file`:
 *
 *     writer | logstore-ingest [--dir DIR] [--max-file-size BYTES] [--max-files N] [--verify]
 *
 * Without --dir a temporary directory is used and removed. --verify reads every record
 * back by cursor, checks the sequence has no gap, and compares the line count with the
 * newlines read (what rotation dropped is counted from the sequence numbers).
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse-util.h"
#include "strutil.h"
#include "superd-logstore.h"

static pthread_mutex_t drain_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drain_cond = PTHREAD_COND_INITIALIZER;
static unsigned drains;

/* On the writer thread: what the engine does with uv_async_send. */
static void on_drain(void *userdata, LogService *svc)
{
	pthread_mutex_lock(&drain_lock);
	drains++;
	pthread_cond_signal(&drain_cond);
	pthread_mutex_unlock(&drain_lock);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

static int verify(LogService *svc, uint64_t lines_in, uint64_t *ret_lines)
{
	uint64_t cursor = 0, expect = 0, lines = 0, records = 0, first = 0;

	for (;;) {
		LogReadResult res = {};
		int r = logstore_read(svc, cursor, 100000, NULL, &res);
		if (r < 0)
			return r;
		for (size_t i = 0; i < res.n_records; i++) {
			const LogRecord *rec = &res.records[i];
			if (!first)
				expect = first = rec->seq;
			if (rec->seq != expect) {
				fprintf(stderr, "gap: seq %" PRIu64 " after %" PRIu64 "\n", rec->seq, expect - 1);
				log_read_result_done(&res);
				return -EBADMSG;
			}
			expect++;
			records++;
			if (!(rec->flags & LOG_RECORD_MORE))
				lines++;
		}
		cursor = res.next_cursor;
		bool more = res.more;
		log_read_result_done(&res);
		if (!more)
			break;
	}
	/* Records before `first` were rotated away; they were 1 line each unless split. */
	uint64_t rotated = first > 0 ? first - 1 : 0;
	fprintf(stderr, "verify: %" PRIu64 " records readable (seq %" PRIu64 "..%" PRIu64
			"), %" PRIu64 " rotated away, %" PRIu64 " lines in\n",
		records, first, expect ? expect - 1 : 0, rotated, lines_in);
	*ret_lines = lines + rotated;
	return lines + rotated == lines_in ? 0 : -EBADMSG;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "max-file-size", required_argument, NULL, 's' },
		{ "max-files", required_argument, NULL, 'n' },
		{ "verify", no_argument, NULL, 'v' },
		{}
	};
	LogStoreOptions o = { .on_drain = on_drain };
	const char *dir = NULL;
	char tmp[] = "/tmp/logstore-ingest-XXXXXX";
	bool do_verify = false;
	uint64_t u;
	int c, r;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			if (safe_atou64(optarg, &u) < 0)
				return fprintf(stderr, "bad --max-file-size\n"), 2;
			o.max_file_size = u;
			break;
		case 'n':
			if (safe_atou64(optarg, &u) < 0 || u > 1000)
				return fprintf(stderr, "bad --max-files\n"), 2;
			o.max_files = (unsigned)u;
			break;
		case 'v':
			do_verify = true;
			break;
		default:
			return 2;
		}
	if (!dir && !(dir = mkdtemp(tmp)))
		return perror("mkdtemp"), 1;

	LogStore *s = NULL;
	LogService *svc = NULL;
	if ((r = logstore_new(dir, &o, &s)) < 0 || (r = logstore_open(s, "bench", "ingest", &svc)) < 0)
		return fprintf(stderr, "logstore: %s\n", strerror(-r)), 1;

	static char buf[64 * 1024];
	uint64_t bytes = 0, newlines = 0, pauses = 0;
	bool last_newline = true;
	usec_t t0 = now_monotonic();
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return perror("read"), 1;
		if (n == 0)
			break;
		bytes += (uint64_t)n;
		if (do_verify) {
			for (const char *p = buf; (p = memchr(p, '\n', (size_t)(n - (p - buf)))); p++)
				newlines++;
			last_newline = buf[n - 1] == '\n';
		}
		r = logstore_feed(svc, LOG_STREAM_STDOUT, buf, (size_t)n, now_realtime());
		if (r < 0)
			return fprintf(stderr, "feed: %s\n", strerror(-r)), 1;
		if (r > 0) {
			/* uv_read_stop() until on_drain */
			pauses++;
			pthread_mutex_lock(&drain_lock);
			while (logstore_backpressure(svc))
				pthread_cond_wait(&drain_cond, &drain_lock);
			pthread_mutex_unlock(&drain_lock);
		}
	}
	if ((r = logstore_flush_partial(svc, now_realtime())) < 0 || (r = logstore_sync(svc)) < 0)
		return fprintf(stderr, "flush: %s\n", strerror(-r)), 1;
	double secs = (double)(now_monotonic() - t0) / 1e6;

	LogServiceStats st;
	logstore_stats(svc, &st);
	uint64_t records = st.end_cursor - 1;
	printf("records %" PRIu64 " bytes %" PRIu64 " seconds %.3f lines/s %.0f MB/s %.1f pauses %" PRIu64
	       "\n",
	       records, bytes, secs, (double)records / secs, (double)bytes / secs / 1e6, pauses);

	int ret = 0;
	if (do_verify) {
		uint64_t lines_in = newlines + (last_newline || bytes == 0 ? 0 : 1), stored = 0;
		r = verify(svc, lines_in, &stored);
		printf("lost %" PRId64 "\n", (int64_t)lines_in - (int64_t)stored);
		if (r < 0)
			ret = 1;
	}
	logstore_free(s);
	if (dir == tmp)
		nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return ret;
}
