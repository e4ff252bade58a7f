/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strutil.h"
#include "superd-logstore.h"
#include "test.h"

/* A copy of a record that outlives the read result. */
typedef struct Rec {
	uint64_t seq;
	usec_t time;
	LogStream stream;
	unsigned flags, source;
	size_t len;
	char *data;
} Rec;

typedef struct Recs {
	Rec *v;
	size_t n;
} Recs;

static void recs_add(Recs *rs, const LogRecord *r)
{
	rs->v = realloc(rs->v, (rs->n + 1) * sizeof(Rec));
	ASSERT_NOT_NULL(rs->v);
	char *d = malloc(r->len + 1);
	ASSERT_NOT_NULL(d);
	memcpy(d, r->data, r->len);
	d[r->len] = 0;
	rs->v[rs->n++] = (Rec){ r->seq, r->time, r->stream, r->flags, r->source, r->len, d };
}

static void recs_done(Recs *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free(rs->v[i].data);
	free(rs->v);
	*rs = (Recs){};
}

static void recs_from_result(Recs *rs, const LogReadResult *res)
{
	for (size_t i = 0; i < res->n_records; i++) {
		/* read results are NUL-terminated */
		ASSERT_EQ(res->records[i].data[res->records[i].len], 0);
		recs_add(rs, &res->records[i]);
	}
}

/* Everything from cursor on, in pages. */
static Recs read_all(LogService *svc, uint64_t cursor, const LogFilter *f, size_t page)
{
	Recs rs = {};
	for (;;) {
		LogReadResult res = {};
		ASSERT_OK(logstore_read(svc, cursor, page, f, &res));
		recs_from_result(&rs, &res);
		ASSERT_TRUE(res.next_cursor >= cursor);
		cursor = res.next_cursor;
		bool more = res.more;
		ASSERT_EQ(more, res.next_cursor < res.end_cursor);
		log_read_result_done(&res);
		if (!more)
			return rs;
	}
}

static LogStore *store_new(const LogStoreOptions *o)
{
	LogStore *s = NULL;
	ASSERT_OK(logstore_new(test_tmpdir(), o, &s));
	return s;
}

static LogService *svc_open(LogStore *s, const char *project, const char *name)
{
	LogService *svc = NULL;
	ASSERT_OK(logstore_open(s, project, name, &svc));
	return svc;
}

static void feed_str(LogService *svc, LogStream st, const char *s, usec_t now)
{
	ASSERT_OK(logstore_feed(svc, st, s, strlen(s), now));
}

static char *path_of(const char *name)
{
	char *p = strdupf("%s/p/%s", test_tmpdir(), name);
	ASSERT_NOT_NULL(p);
	return p;
}

static bool file_exists(const char *name)
{
	_cleanup_free_ char *p = path_of(name);
	return access(p, F_OK) == 0;
}

static off_t file_size(const char *name)
{
	_cleanup_free_ char *p = path_of(name);
	struct stat st;
	ASSERT_OK(stat(p, &st) < 0 ? -errno : 0);
	return st.st_size;
}

TEST(lines_split_across_feeds)
{
	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");

	feed_str(svc, LOG_STREAM_STDOUT, "hel", 100);
	feed_str(svc, LOG_STREAM_STDOUT, "lo\nwor", 101);
	feed_str(svc, LOG_STREAM_STDERR, "err\n", 102);
	feed_str(svc, LOG_STREAM_STDOUT, "ld\n\nx", 103);

	Recs rs = read_all(svc, 0, NULL, 100);
	ASSERT_EQ(rs.n, 4);
	ASSERT_STREQ(rs.v[0].data, "hello");
	ASSERT_EQ(rs.v[0].seq, 1);
	ASSERT_EQ(rs.v[0].time, 101);
	ASSERT_EQ(rs.v[0].stream, LOG_STREAM_STDOUT);
	ASSERT_STREQ(rs.v[1].data, "err");
	ASSERT_EQ(rs.v[1].stream, LOG_STREAM_STDERR);
	ASSERT_STREQ(rs.v[2].data, "world");
	ASSERT_STREQ(rs.v[3].data, "");
	ASSERT_EQ(rs.v[3].seq, 4);
	for (size_t i = 0; i < rs.n; i++)
		ASSERT_EQ(rs.v[i].flags, 0);
	recs_done(&rs);

	/* the partial "x" shows up only when the service exits */
	ASSERT_OK(logstore_flush_partial(svc, 200));
	rs = read_all(svc, 5, NULL, 100);
	ASSERT_EQ(rs.n, 1);
	ASSERT_STREQ(rs.v[0].data, "x");
	ASSERT_EQ(rs.v[0].flags, LOG_RECORD_NO_NEWLINE);
	recs_done(&rs);
	logstore_free(s);
}

TEST(crlf)
{
	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");

	feed_str(svc, LOG_STREAM_STDOUT, "a\r\nb\r", 1);
	feed_str(svc, LOG_STREAM_STDOUT, "\nc\rd\n\r\ne\r\r\n", 1);
	Recs rs = read_all(svc, 0, NULL, 100);
	ASSERT_EQ(rs.n, 5);
	ASSERT_STREQ(rs.v[0].data, "a");
	ASSERT_STREQ(rs.v[1].data, "b");
	ASSERT_STREQ(rs.v[2].data, "c\rd"); /* a lone \r (progress bars) is kept */
	ASSERT_STREQ(rs.v[3].data, "");
	ASSERT_STREQ(rs.v[4].data, "e\r");
	recs_done(&rs);
	logstore_free(s);
}

/* Reassemble the lines of one stream from records. */
static char *reassemble(const Recs *rs, size_t *i, size_t *ret_len)
{
	size_t cap = 0, len = 0;
	char *out = NULL;
	for (bool first = true;; first = false) {
		ASSERT_TRUE(*i < rs->n);
		const Rec *r = &rs->v[(*i)++];
		ASSERT_EQ(!!(r->flags & LOG_RECORD_CONTINUATION), !first);
		if (len + r->len + 1 > cap) {
			cap = (len + r->len + 1) * 2;
			out = realloc(out, cap);
			ASSERT_NOT_NULL(out);
		}
		memcpy(out + len, r->data, r->len);
		len += r->len;
		if (!(r->flags & LOG_RECORD_MORE))
			break;
	}
	out[len] = 0;
	*ret_len = len;
	return out;
}

static void check_long_line(LogService *svc, const char *line, size_t n, uint64_t cursor,
			    size_t expect_records)
{
	Recs rs = read_all(svc, cursor, NULL, 7);
	ASSERT_TRUE(rs.n >= expect_records);
	size_t i = 0, len;
	_cleanup_free_ char *got = reassemble(&rs, &i, &len);
	ASSERT_EQ(len, n);
	ASSERT_TRUE(memcmp(got, line, n) == 0);
	ASSERT_EQ(i, expect_records - 1);
	ASSERT_STREQ(rs.v[i].data, "after");
	recs_done(&rs);
}

TEST(long_line_split_and_reassembled)
{
	const size_t n = 1u << 20;
	_cleanup_free_ char *line = malloc(n + 1);
	ASSERT_NOT_NULL(line);
	for (size_t i = 0; i < n; i++)
		line[i] = (char)('a' + i % 26);
	line[n] = '\n';

	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	/* one feed */
	ASSERT_OK(logstore_feed(svc, LOG_STREAM_STDOUT, line, n + 1, 1));
	feed_str(svc, LOG_STREAM_STDOUT, "after\n", 1);
	check_long_line(svc, line, n, 1, 16 + 1);
	Recs rs = read_all(svc, 1, NULL, 100);
	ASSERT_EQ(rs.v[0].flags, LOG_RECORD_MORE);
	ASSERT_EQ(rs.v[0].len, 64 * 1024);
	ASSERT_EQ(rs.v[7].flags, LOG_RECORD_MORE | LOG_RECORD_CONTINUATION);
	ASSERT_EQ(rs.v[15].flags, LOG_RECORD_CONTINUATION);
	recs_done(&rs);

	/* many small feeds, with stderr lines in between */
	for (size_t off = 0; off <= n; off += 1000) {
		ASSERT_OK(logstore_feed(svc, LOG_STREAM_STDOUT, line + off, MIN((size_t)1000, n + 1 - off), 2));
		if (off % 300000 == 0)
			feed_str(svc, LOG_STREAM_STDERR, "noise\n", 2);
	}
	feed_str(svc, LOG_STREAM_STDOUT, "after\n", 2);
	LogFilter out = { .stream_mask = LOG_STREAM_MASK(LOG_STREAM_STDOUT) };
	rs = read_all(svc, 18, &out, 5);
	ASSERT_EQ(rs.n, 17);
	size_t i = 0, len;
	_cleanup_free_ char *got = reassemble(&rs, &i, &len);
	ASSERT_EQ(len, n);
	ASSERT_TRUE(memcmp(got, line, n) == 0);
	recs_done(&rs);

	/* and from the files, after a restart */
	logstore_free(s);
	s = store_new(NULL);
	svc = svc_open(s, "p", "web");
	check_long_line(svc, line, n, 1, 17);
	logstore_free(s);
}

TEST(split_keeps_cr_before_newline_out)
{
	LogStoreOptions o = { .max_line = 8 };
	LogStore *s = store_new(&o);
	LogService *svc = svc_open(s, "p", "web");

	/* exactly max_line bytes, then \r and \n in separate feeds: one record, no \r */
	feed_str(svc, LOG_STREAM_STDOUT, "12345678\r", 1);
	feed_str(svc, LOG_STREAM_STDOUT, "\n", 1);
	/* a \r that is not followed by \n is data */
	feed_str(svc, LOG_STREAM_STDOUT, "abcdefgh\r", 1);
	feed_str(svc, LOG_STREAM_STDOUT, "x\n", 1);
	/* 2 * max_line exactly: two records, no empty third */
	feed_str(svc, LOG_STREAM_STDOUT, "ABCDEFGHIJKLMNOP\n", 1);
	/* a partial longer than max_line, flushed at exit */
	feed_str(svc, LOG_STREAM_STDERR, "0123456789", 1);
	ASSERT_OK(logstore_flush_partial(svc, 2));

	Recs rs = read_all(svc, 0, NULL, 100);
	ASSERT_EQ(rs.n, 7);
	ASSERT_STREQ(rs.v[0].data, "12345678");
	ASSERT_EQ(rs.v[0].flags, 0);
	ASSERT_STREQ(rs.v[1].data, "abcdefgh");
	ASSERT_EQ(rs.v[1].flags, LOG_RECORD_MORE);
	ASSERT_STREQ(rs.v[2].data, "\rx");
	ASSERT_EQ(rs.v[2].flags, LOG_RECORD_CONTINUATION);
	ASSERT_STREQ(rs.v[3].data, "ABCDEFGH");
	ASSERT_STREQ(rs.v[4].data, "IJKLMNOP");
	ASSERT_EQ(rs.v[4].flags, LOG_RECORD_CONTINUATION);
	ASSERT_STREQ(rs.v[5].data, "01234567");
	ASSERT_EQ(rs.v[5].flags, LOG_RECORD_MORE);
	ASSERT_EQ(rs.v[5].stream, LOG_STREAM_STDERR);
	ASSERT_STREQ(rs.v[6].data, "89");
	ASSERT_EQ(rs.v[6].flags, LOG_RECORD_CONTINUATION | LOG_RECORD_NO_NEWLINE);
	recs_done(&rs);

	/* logstore_append: one line as given, newline included, split by length only */
	ASSERT_OK(logstore_append(svc, LOG_STREAM_SYSTEM, "a\nb", 3, 3));
	rs = read_all(svc, 8, NULL, 100);
	ASSERT_EQ(rs.n, 1);
	ASSERT_STREQ(rs.v[0].data, "a\nb");
	ASSERT_EQ(rs.v[0].stream, LOG_STREAM_SYSTEM);
	recs_done(&rs);
	logstore_free(s);
}

TEST(binary_and_invalid_utf8_survive)
{
	char line[300];
	size_t n = 0;
	for (int c = 0; c < 256; c++)
		if (c != '\n')
			line[n++] = (char)c;
	static const char bad[] = "\xff\xfe\xc0\x80\xed\xa0\x80\x1b[31mred\x1b[0m\0nul";
	memcpy(line + n, bad, sizeof(bad) - 1);
	n += sizeof(bad) - 1;
	ASSERT_FALSE(utf8_is_valid(line, n));

	for (int round = 0; round < 2; round++) {
		LogStore *s = store_new(NULL);
		LogService *svc = svc_open(s, "p", "bin");
		if (round == 0) {
			ASSERT_OK(logstore_feed(svc, LOG_STREAM_STDOUT, line, n, 1));
			ASSERT_OK(logstore_feed(svc, LOG_STREAM_STDOUT, "\n", 1, 1));
		}
		Recs rs = read_all(svc, 0, NULL, 10); /* round 1: from the file */
		ASSERT_EQ(rs.n, 1);
		ASSERT_EQ(rs.v[0].len, n); /* the \r (byte 13) stays: it does not end the line */
		ASSERT_TRUE(memcmp(rs.v[0].data, line, n) == 0);
		recs_done(&rs);
		logstore_free(s);
	}
}

TEST(binary_round_trip_exact)
{
	/* every byte value but \n, ending in something other than \r */
	char line[256];
	size_t n = 0;
	for (int c = 255; c >= 0; c--)
		if (c != '\n')
			line[n++] = (char)c;
	for (int round = 0; round < 2; round++) {
		LogStore *s = store_new(NULL);
		LogService *svc = svc_open(s, "p", "bin");
		if (round == 0) {
			ASSERT_OK(logstore_feed(svc, LOG_STREAM_STDERR, line, n, 1));
			ASSERT_OK(logstore_feed(svc, LOG_STREAM_STDERR, "\n", 1, 1));
		}
		Recs rs = read_all(svc, 0, NULL, 10);
		ASSERT_EQ(rs.n, 1);
		ASSERT_EQ(rs.v[0].len, n);
		ASSERT_TRUE(memcmp(rs.v[0].data, line, n) == 0);
		ASSERT_EQ(rs.v[0].stream, LOG_STREAM_STDERR);
		recs_done(&rs);
		logstore_free(s);
	}
}

static void feed_numbered(LogService *svc, LogStream st, size_t from, size_t count, usec_t now)
{
	for (size_t i = from; i < from + count; i++) {
		char b[64];
		ASSERT_OK(strfmt(b, sizeof(b), "line %zu\n", i));
		ASSERT_OK(logstore_feed(svc, st, b, strlen(b), now));
	}
}

static void assert_numbered(const Rec *r, size_t i)
{
	char b[64];
	ASSERT_OK(strfmt(b, sizeof(b), "line %zu", i));
	ASSERT_STREQ(r->data, b);
}

TEST(cursor_reads)
{
	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	feed_numbered(svc, LOG_STREAM_STDOUT, 1, 100, 5);

	LogReadResult res = {};
	ASSERT_OK(logstore_read(svc, 1, 10, NULL, &res));
	ASSERT_EQ(res.n_records, 10);
	ASSERT_EQ(res.records[0].seq, 1);
	ASSERT_EQ(res.records[9].seq, 10);
	ASSERT_EQ(res.next_cursor, 11);
	ASSERT_EQ(res.end_cursor, 101);
	ASSERT_EQ(res.first_available, 1);
	ASSERT_TRUE(res.more);
	log_read_result_done(&res);

	ASSERT_OK(logstore_read(svc, 95, 10, NULL, &res));
	ASSERT_EQ(res.n_records, 6);
	ASSERT_STREQ(res.records[0].data, "line 95");
	ASSERT_EQ(res.next_cursor, 101);
	ASSERT_FALSE(res.more);
	log_read_result_done(&res);

	/* caught up, and a cursor from the future */
	ASSERT_OK(logstore_read(svc, 101, 10, NULL, &res));
	ASSERT_EQ(res.n_records, 0);
	ASSERT_EQ(res.next_cursor, 101);
	log_read_result_done(&res);
	ASSERT_OK(logstore_read(svc, 5000, 10, NULL, &res));
	ASSERT_EQ(res.n_records, 0);
	ASSERT_EQ(res.next_cursor, 101);
	log_read_result_done(&res);

	/* the same through the files */
	logstore_free(s);
	s = store_new(NULL);
	svc = svc_open(s, "p", "web");
	Recs rs = read_all(svc, 37, NULL, 9);
	ASSERT_EQ(rs.n, 64);
	for (size_t i = 0; i < rs.n; i++) {
		ASSERT_EQ(rs.v[i].seq, 37 + i);
		assert_numbered(&rs.v[i], 37 + i);
	}
	recs_done(&rs);
	logstore_free(s);
}

TEST(tail_from_memory_and_files)
{
	LogStoreOptions o = { .tail_lines = 10 };
	LogStore *s = store_new(&o);
	LogService *svc = svc_open(s, "p", "web");
	feed_numbered(svc, LOG_STREAM_STDOUT, 1, 5000, 5);
	ASSERT_OK(logstore_sync(svc));

	LogReadResult res = {};
	ASSERT_OK(logstore_tail(svc, 3, NULL, &res));
	ASSERT_EQ(res.n_records, 3);
	ASSERT_STREQ(res.records[0].data, "line 4998");
	ASSERT_STREQ(res.records[2].data, "line 5000");
	log_read_result_done(&res);

	ASSERT_OK(logstore_tail(svc, 2500, NULL, &res));
	ASSERT_EQ(res.n_records, 2500);
	ASSERT_STREQ(res.records[0].data, "line 2501");
	ASSERT_EQ(res.records[2499].seq, 5000);
	log_read_result_done(&res);

	ASSERT_OK(logstore_tail(svc, 100000, NULL, &res));
	ASSERT_EQ(res.n_records, 5000);
	log_read_result_done(&res);
	logstore_free(s);
}

TEST(stream_filter)
{
	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	for (size_t i = 1; i <= 3000; i++)
		feed_numbered(svc, i % 10 == 0 ? LOG_STREAM_STDERR : LOG_STREAM_STDOUT, i, 1, i);
	ASSERT_OK(logstore_append(svc, LOG_STREAM_SYSTEM, "exited", 6, 4000));

	LogFilter err = { .stream_mask = LOG_STREAM_MASK(LOG_STREAM_STDERR) };
	Recs rs = read_all(svc, 0, &err, 50);
	ASSERT_EQ(rs.n, 300);
	for (size_t i = 0; i < rs.n; i++) {
		ASSERT_EQ(rs.v[i].stream, LOG_STREAM_STDERR);
		assert_numbered(&rs.v[i], (i + 1) * 10);
	}
	recs_done(&rs);

	LogReadResult res = {};
	ASSERT_OK(logstore_tail(svc, 3, &err, &res));
	ASSERT_EQ(res.n_records, 3);
	ASSERT_STREQ(res.records[0].data, "line 2980");
	ASSERT_STREQ(res.records[2].data, "line 3000");
	log_read_result_done(&res);

	LogFilter sys = { .stream_mask = LOG_STREAM_MASK(LOG_STREAM_SYSTEM) };
	ASSERT_OK(logstore_tail(svc, 5, &sys, &res));
	ASSERT_EQ(res.n_records, 1);
	ASSERT_STREQ(res.records[0].data, "exited");
	log_read_result_done(&res);
	logstore_free(s);
}

TEST(since_filter)
{
	LogStoreOptions o = { .tail_lines = 5, .tail_bytes = 4096 };
	for (int round = 0; round < 2; round++) {
		LogStore *s = store_new(&o);
		LogService *svc = svc_open(s, "p", "web");
		if (round == 0)
			for (usec_t t = 1; t <= 3; t++)
				feed_numbered(svc, LOG_STREAM_STDOUT, (size_t)t * 1000, 1000, t * 1000000);

		LogFilter f = { .since = 2000000 };
		Recs rs = read_all(svc, 0, &f, 333);
		ASSERT_EQ(rs.n, 2000);
		assert_numbered(&rs.v[0], 2000);
		ASSERT_EQ(rs.v[0].time, 2000000);
		assert_numbered(&rs.v[1999], 3999);
		recs_done(&rs);

		f = (LogFilter){ .since = 1500000, .until = 3000000 };
		rs = read_all(svc, 0, &f, 333);
		ASSERT_EQ(rs.n, 1000);
		assert_numbered(&rs.v[0], 2000);
		recs_done(&rs);

		LogReadResult res = {};
		f = (LogFilter){ .until = 2000000 };
		ASSERT_OK(logstore_tail(svc, 2, &f, &res));
		ASSERT_EQ(res.n_records, 2);
		ASSERT_STREQ(res.records[1].data, "line 1999");
		log_read_result_done(&res);
		logstore_free(s);
	}
}

TEST(rotation_keeps_n_files_and_reads_across)
{
	LogStoreOptions o = { .max_file_size = 4096, .max_files = 3, .tail_lines = 1, .tail_bytes = 1 };
	LogStore *s = store_new(&o);
	LogService *svc = svc_open(s, "p", "web");
	feed_numbered(svc, LOG_STREAM_STDOUT, 1, 1000, 1);
	ASSERT_OK(logstore_sync(svc));

	ASSERT_TRUE(file_exists("web.log"));
	ASSERT_TRUE(file_exists("web.log.1"));
	ASSERT_TRUE(file_exists("web.log.2"));
	ASSERT_FALSE(file_exists("web.log.3"));
	ASSERT_TRUE(file_size("web.log.1") <= 4096);
	ASSERT_TRUE(file_size("web.log.2") <= 4096);
	ASSERT_TRUE(file_size("web.log.1") > 3800);

	LogServiceStats st;
	logstore_stats(svc, &st);
	ASSERT_EQ(st.n_files, 3);
	ASSERT_EQ(st.end_cursor, 1001);
	ASSERT_EQ(st.unwritten, 0);

	for (int round = 0; round < 3; round++) {
		/* memory may still hold the newest chunk; after a reopen only the files count */
		logstore_stats(svc, &st);
		if (round > 0 && (st.first_available < 600 || st.first_available > 1000))
			test_fail(__FILE__, __LINE__, "first_available %" PRIu64, st.first_available);
		/* a rotated-away cursor: what is left, and where it starts */
		LogReadResult res = {};
		ASSERT_OK(logstore_read(svc, 1, 5, NULL, &res));
		ASSERT_EQ(res.first_available, st.first_available);
		ASSERT_EQ(res.records[0].seq, st.first_available);
		ASSERT_EQ(res.n_records, 5);
		log_read_result_done(&res);

		Recs rs = read_all(svc, 0, NULL, 17);
		ASSERT_EQ(rs.n, 1001 - st.first_available);
		for (size_t i = 0; i < rs.n; i++) {
			ASSERT_EQ(rs.v[i].seq, st.first_available + i);
			assert_numbered(&rs.v[i], st.first_available + i);
		}
		recs_done(&rs);

		/* reopen: the same view from the files alone */
		logstore_free(s);
		s = store_new(&o);
		svc = svc_open(s, "p", "web");
	}
	feed_numbered(svc, LOG_STREAM_STDOUT, 1001, 1, 1);
	Recs rs = read_all(svc, 1000, NULL, 17);
	ASSERT_EQ(rs.n, 2);
	assert_numbered(&rs.v[1], 1001);
	ASSERT_EQ(rs.v[1].seq, 1001);
	recs_done(&rs);
	logstore_free(s);
}

TEST(reads_while_the_writer_rotates)
{
	LogStoreOptions o = { .max_file_size = 16384, .max_files = 64, .tail_lines = 1, .tail_bytes = 1 };
	LogStore *s = store_new(&o);
	LogService *svc = svc_open(s, "p", "web");
	uint64_t cursor = 1;

	for (size_t i = 0; i < 200; i++) {
		feed_numbered(svc, LOG_STREAM_STDOUT, i * 100 + 1, 100, 1);
		LogReadResult res = {};
		ASSERT_OK(logstore_read(svc, cursor, 150, NULL, &res));
		ASSERT_EQ(res.first_available, 1);
		for (size_t k = 0; k < res.n_records; k++) {
			ASSERT_EQ(res.records[k].seq, cursor + k);
			char want[64];
			ASSERT_OK(strfmt(want, sizeof(want), "line %" PRIu64, cursor + k));
			ASSERT_STREQ(res.records[k].data, want);
		}
		cursor = res.next_cursor;
		log_read_result_done(&res);
	}
	Recs rs = read_all(svc, cursor, NULL, 1000);
	ASSERT_EQ(cursor + rs.n, 20001);
	recs_done(&rs);
	ASSERT_OK(logstore_sync(svc));
	LogServiceStats st;
	logstore_stats(svc, &st);
	ASSERT_TRUE(st.n_files > 40);
	logstore_free(s);
}

TEST(reopen_continues_sequence)
{
	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	feed_numbered(svc, LOG_STREAM_STDOUT, 1, 10, 1);
	feed_str(svc, LOG_STREAM_STDOUT, "partial", 1);
	svc = logstore_close(svc); /* flushes the partial line */
	ASSERT_NULL(svc);

	svc = svc_open(s, "p", "web");
	LogServiceStats st;
	logstore_stats(svc, &st);
	ASSERT_EQ(st.end_cursor, 12);
	feed_numbered(svc, LOG_STREAM_STDOUT, 12, 5, 2);
	Recs rs = read_all(svc, 0, NULL, 4);
	ASSERT_EQ(rs.n, 16);
	for (size_t i = 0; i < rs.n; i++)
		ASSERT_EQ(rs.v[i].seq, i + 1);
	ASSERT_STREQ(rs.v[10].data, "partial");
	ASSERT_EQ(rs.v[10].flags, LOG_RECORD_NO_NEWLINE);
	assert_numbered(&rs.v[15], 16);
	recs_done(&rs);

	LogService *dup = NULL;
	ASSERT_ERR(logstore_open(s, "p", "web", &dup), EEXIST);
	ASSERT_ERR(logstore_open(s, "p", "..", &dup), EINVAL);
	ASSERT_ERR(logstore_open(s, "p", "a/b", &dup), EINVAL);
	ASSERT_ERR(logstore_open(s, "", "a", &dup), EINVAL);
	ASSERT_NULL(dup);
	logstore_free(s);
}

static void damage_and_reopen(const char *how)
{
	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	feed_numbered(svc, LOG_STREAM_STDOUT, 1, 10, 1);
	logstore_free(s);

	off_t size = file_size("web.log");
	_cleanup_free_ char *p = path_of("web.log");
	int fd = open(p, O_RDWR | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	if (streq(how, "truncate"))
		ASSERT_OK(ftruncate(fd, size - 3));
	else if (streq(how, "flip")) {
		char c;
		ASSERT_EQ(pread(fd, &c, 1, size - 1), 1);
		c ^= 1;
		ASSERT_EQ(pwrite(fd, &c, 1, size - 1), 1);
	} else {
		/* what a crash can leave: the size grew, the data did not land */
		char zero[100] = {};
		ASSERT_EQ(pwrite(fd, zero, sizeof(zero), size), (ssize_t)sizeof(zero));
	}
	close(fd);

	s = store_new(NULL);
	svc = svc_open(s, "p", "web");
	bool lost_last = !streq(how, "zeros");
	LogServiceStats st;
	logstore_stats(svc, &st);
	ASSERT_EQ(st.end_cursor, lost_last ? 10 : 11);
	ASSERT_TRUE(file_size("web.log") == size - (lost_last ? (off_t)(28 + strlen("line 10")) : 0));
	feed_str(svc, LOG_STREAM_STDOUT, "new\n", 2);
	Recs rs = read_all(svc, 0, NULL, 100);
	ASSERT_EQ(rs.n, lost_last ? 10 : 11);
	for (size_t i = 0; i < rs.n; i++)
		ASSERT_EQ(rs.v[i].seq, i + 1);
	ASSERT_STREQ(rs.v[rs.n - 1].data, "new");
	recs_done(&rs);
	logstore_free(s);

	/* and the repaired file reads back whole */
	s = store_new(NULL);
	svc = svc_open(s, "p", "web");
	rs = read_all(svc, 0, NULL, 100);
	ASSERT_EQ(rs.n, lost_last ? 10 : 11);
	ASSERT_STREQ(rs.v[rs.n - 1].data, "new");
	recs_done(&rs);
	logstore_free(s);
}

TEST(torn_tail_truncated_on_reopen)
{
	damage_and_reopen("truncate");
}

TEST(corrupt_tail_truncated_on_reopen)
{
	damage_and_reopen("flip");
}

TEST(zero_filled_tail_truncated_on_reopen)
{
	damage_and_reopen("zeros");
}

TEST(broken_active_file_moved_aside)
{
	_cleanup_free_ char *dir = strdupf("%s/p", test_tmpdir());
	ASSERT_OK(mkdir(dir, 0700) < 0 ? -errno : 0);
	_cleanup_free_ char *p = path_of("web.log");
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, "not a log file at all, but long enough to hold a header\n", 56), 56);
	close(fd);

	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	ASSERT_TRUE(file_exists("web.log.broken"));
	feed_str(svc, LOG_STREAM_STDOUT, "fresh\n", 1);
	ASSERT_OK(logstore_sync(svc));
	Recs rs = read_all(svc, 0, NULL, 10);
	ASSERT_EQ(rs.n, 1);
	ASSERT_EQ(rs.v[0].seq, 1);
	recs_done(&rs);
	logstore_free(s);
}

static uint32_t crc32c_bitwise(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

TEST(on_disk_format_as_documented)
{
	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	feed_str(svc, LOG_STREAM_STDERR, "hello, format\n", 1234567);
	logstore_free(s);

	uint8_t b[256];
	_cleanup_free_ char *p = path_of("web.log");
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	ASSERT_EQ(n, 40 + 28 + 13);
	ASSERT_TRUE(memcmp(b, "LOCALDLG", 8) == 0);
	ASSERT_EQ(le32(b + 8), 1);
	ASSERT_EQ(le32(b + 12), 40);
	ASSERT_EQ(le64(b + 16), 1);
	ASSERT_EQ(le64(b + 24), 1234567);
	ASSERT_EQ(le32(b + 36), crc32c_bitwise(b, 36));
	const uint8_t *r = b + 40;
	ASSERT_EQ(le32(r + 4), 13);
	ASSERT_EQ(le64(r + 8), 1);
	ASSERT_EQ(le64(r + 16), 1234567);
	ASSERT_EQ(r[24], LOG_STREAM_STDERR);
	ASSERT_EQ(r[25], 0);
	ASSERT_TRUE(memcmp(r + 28, "hello, format", 13) == 0);
	ASSERT_EQ(le32(r), crc32c_bitwise(r + 4, 24 + 13));
	ASSERT_EQ(crc32c_bitwise((const uint8_t *)"123456789", 9), 0xE3069283u);
}

TEST(million_lines_in_order_no_gap)
{
	const size_t total = 1000000;
	LogStoreOptions o = { .max_file_size = 64u << 20, .max_files = 4 };
	LogStore *s = store_new(&o);
	LogService *svc = svc_open(s, "p", "chatty");

	/* 100-byte lines, fed in pipe-read-sized blocks that cut lines anywhere */
	char *block = malloc(65536 + 100);
	ASSERT_NOT_NULL(block);
	size_t len = 0;
	for (size_t i = 1; i <= total; i++) {
		ASSERT_OK(strfmt(block + len, 101, "%09zu %089d", i, 0));
		block[len + 99] = '\n';
		len += 100;
		if (len >= 65536 - 7 || i == total) {
			size_t cut = MIN(len, (size_t)65536 - 7);
			ASSERT_OK(logstore_feed(svc, LOG_STREAM_STDOUT, block, cut, i));
			memmove(block, block + cut, len - cut);
			len -= cut;
		}
	}
	ASSERT_OK(logstore_feed(svc, LOG_STREAM_STDOUT, block, len, total));
	free(block);
	ASSERT_OK(logstore_sync(svc));

	uint64_t cursor = 0, seen = 0;
	for (;;) {
		LogReadResult res = {};
		ASSERT_OK(logstore_read(svc, cursor, 10000, NULL, &res));
		for (size_t k = 0; k < res.n_records; k++) {
			const LogRecord *r = &res.records[k];
			seen++;
			ASSERT_EQ(r->seq, seen);
			ASSERT_EQ(r->len, 99);
			char want[16];
			ASSERT_OK(strfmt(want, sizeof(want), "%09" PRIu64 " ", seen));
			if (memcmp(r->data, want, 10) != 0)
				test_fail(__FILE__, __LINE__, "record %" PRIu64 ": %.12s", seen, r->data);
		}
		cursor = res.next_cursor;
		bool more = res.more;
		log_read_result_done(&res);
		if (!more)
			break;
	}
	ASSERT_EQ(seen, total);
	logstore_free(s);
}

static atomic_int drained;
static void on_drain(void *userdata, LogService *svc)
{
	ASSERT_NOT_NULL(svc);
	atomic_fetch_add((atomic_int *)userdata, 1);
}

TEST(backpressure_signal_and_release)
{
	LogStoreOptions o = { .pending_max = 16, .on_drain = on_drain, .userdata = &drained };
	LogStore *s = store_new(&o);
	LogService *svc = svc_open(s, "p", "web");

	/* the line is stored even though it trips the limit */
	const char *line = "0123456789012345678901234567890123456789\n";
	ASSERT_EQ(logstore_feed(svc, LOG_STREAM_STDOUT, line, strlen(line), 1), 1);
	ASSERT_OK(logstore_sync(svc));
	ASSERT_FALSE(logstore_backpressure(svc));
	LogService *other = svc_open(s, "p", "quiet");
	ASSERT_FALSE(logstore_backpressure(other));
	svc = logstore_close(svc); /* waits for the writer, callback included */
	ASSERT_EQ(atomic_load(&drained), 1);
	logstore_free(s);
}

TEST(backpressure_holds_while_the_disk_fails)
{
	LogStoreOptions o = { .pending_max = 1000 };
	LogStore *s = store_new(&o);
	LogService *svc = svc_open(s, "p", "web");
	/* The writer cannot create web.log in a directory that is gone. */
	_cleanup_free_ char *dir = strdupf("%s/p", test_tmpdir());
	ASSERT_OK(rmdir(dir) < 0 ? -errno : 0);

	int bp = 0;
	for (size_t i = 0; i < 100 && bp == 0; i++) {
		char b[64];
		ASSERT_OK(strfmt(b, sizeof(b), "line %zu\n", i));
		bp = logstore_feed(svc, LOG_STREAM_STDOUT, b, strlen(b), 1);
		ASSERT_OK(bp);
	}
	ASSERT_EQ(bp, 1);
	ASSERT_TRUE(logstore_backpressure(svc));
	ASSERT_ERR(logstore_sync(svc), ENOENT);
	LogServiceStats st;
	logstore_stats(svc, &st);
	ASSERT_EQ(st.write_error, -ENOENT);
	ASSERT_TRUE(st.unwritten > 1000);
	ASSERT_TRUE(st.backpressure);
	/* nothing is lost while superd runs: the lines are still readable from memory */
	Recs rs = read_all(svc, 0, NULL, 1000);
	ASSERT_EQ(rs.n, st.end_cursor - 1);
	recs_done(&rs);
	/* and forgetting the service does not hang on the broken disk */
	logstore_free(s);
}

typedef struct Seen {
	uint64_t next;
	size_t n;
} Seen;

static void on_line(void *userdata, LogService *svc, const LogRecord *rec)
{
	Seen *seen = userdata;
	ASSERT_EQ(rec->seq, seen->next);
	ASSERT_STREQ(logstore_service(svc), "web");
	char want[32];
	ASSERT_OK(strfmt(want, sizeof(want), "line %" PRIu64, rec->seq));
	ASSERT_EQ(rec->len, strlen(want));
	ASSERT_TRUE(memcmp(rec->data, want, rec->len) == 0);
	seen->next++;
	seen->n++;
}

TEST(on_line_hook)
{
	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	Seen seen = { .next = 1 };
	logstore_set_on_line(svc, on_line, &seen);
	feed_numbered(svc, LOG_STREAM_STDOUT, 1, 50, 1);
	ASSERT_EQ(seen.n, 50);
	logstore_free(s);
}

TEST(merged_by_time)
{
	LogStore *s = store_new(NULL);
	LogService *a = svc_open(s, "p", "a"), *b = svc_open(s, "p", "b");
	for (usec_t t = 1; t <= 100; t++) {
		feed_numbered(t % 2 ? a : b, LOG_STREAM_STDOUT, (size_t)t, 1, t);
		if (t % 10 == 0) /* a tie: a sorts first */
			feed_numbered(a, LOG_STREAM_STDOUT, (size_t)t, 1, t);
	}
	LogService *svcs[] = { a, b };
	for (size_t page = 1; page <= 200; page *= 7) {
		uint64_t cursors[2] = { 0, 0 };
		Recs rs = {};
		for (;;) {
			LogReadResult res = {};
			ASSERT_OK(logstore_read_merged(svcs, 2, cursors, page, NULL, &res));
			recs_from_result(&rs, &res);
			bool more = res.more;
			log_read_result_done(&res);
			if (!more)
				break;
		}
		ASSERT_EQ(rs.n, 110);
		for (size_t i = 1; i < rs.n; i++) {
			ASSERT_TRUE(rs.v[i - 1].time <= rs.v[i].time);
			if (rs.v[i - 1].time == rs.v[i].time)
				ASSERT_TRUE(rs.v[i - 1].source <= rs.v[i].source);
			assert_numbered(&rs.v[i], rs.v[i].time);
		}
		ASSERT_EQ(rs.v[0].source, 0);
		ASSERT_EQ(rs.v[1].source, 1);
		ASSERT_EQ(cursors[0], 61);
		ASSERT_EQ(cursors[1], 51);
		recs_done(&rs);
	}
	logstore_free(s);
}

TEST(streams_and_strings)
{
	ASSERT_STREQ(log_stream_to_string(LOG_STREAM_STDERR), "stderr");
	ASSERT_EQ(log_stream_from_string("system"), LOG_STREAM_SYSTEM);
	ASSERT_EQ(log_stream_from_string("nope"), _LOG_STREAM_INVALID);
	ASSERT_NULL(log_stream_to_string(_LOG_STREAM_MAX));

	LogStore *s = store_new(NULL);
	LogService *svc = svc_open(s, "p", "web");
	ASSERT_ERR(logstore_feed(svc, _LOG_STREAM_MAX, "x\n", 2, 1), EINVAL);
	ASSERT_STREQ(logstore_project(svc), "p");
	logstore_free(s);
}

TEST_MAIN();
