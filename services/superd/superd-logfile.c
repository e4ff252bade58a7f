/* SPDX-License-Identifier: MIT */
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
