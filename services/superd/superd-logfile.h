/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The on-disk format of service logs (documented in superd-logstore.h): encoding and
 * decoding of the file header and of records, the CRC32C that guards them, and a
 * sequential reader that stops at the first record that is torn or damaged.
 * The store encodes records in memory in exactly this format, so the writer thread
 * copies bytes to the file without looking at them.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "superd-logstore.h"

#define LOGFILE_MAGIC "LOCALDLG"
#define LOGFILE_VERSION 1u
#define LOGFILE_HEADER_SIZE 40u
#define LOGREC_HEADER_SIZE 28u
#define LOGREC_LEN_MAX (64u << 20) /* sanity bound for lengths read back */

static inline void le32_put(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void le64_put(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t le64_get(const uint8_t *p)
{
	return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

/* CRC32C (Castagnoli); the SSE4.2 instruction where there is one. */
uint32_t logfile_crc32c(const void *p, size_t n);

/* Size of the encoded record that starts at p. */
static inline size_t logrec_size(const uint8_t *p)
{
	return LOGREC_HEADER_SIZE + (size_t)le32_get(p + 4);
}
/* Encode a record at p (room for LOGREC_HEADER_SIZE + len bytes). */
void logrec_encode(uint8_t *p, uint64_t seq, usec_t time, LogStream stream, unsigned flags,
		   const void *data, size_t len);
/* Fill rec from an encoded record; rec->data points into p. No checks. */
void logrec_decode(const uint8_t *p, LogRecord *rec);

void logfile_header_encode(uint8_t h[LOGFILE_HEADER_SIZE], uint64_t first_seq, usec_t first_time);
/* 0, -EBADMSG if the file does not start with a valid header, or -errno. */
int logfile_header_read(int fd, uint64_t *ret_first_seq, usec_t *ret_first_time);

/* Write all of iov at off, on through short writes. 0 or -errno. */
int logfile_pwritev_full(int fd, struct iovec *iov, int n, uint64_t off);

typedef struct LogFileReader {
	int fd; /* not owned */
	uint8_t *buf;
	size_t cap, len;
	uint64_t buf_off; /* file offset of buf[0] */
	uint64_t off;     /* the next record */
} LogFileReader;

#define LOGFILE_READER_INIT(_fd, _off) ((LogFileReader){ .fd = (_fd), .off = (_off) })

void logfile_reader_done(LogFileReader *fr);
/* 1 and the next intact record (data valid until the next call), 0 at the end of the
 * intact records (end of file, a torn or damaged record), or -errno. */
int logfile_reader_next(LogFileReader *fr, LogRecord *ret);

/* Called by logfile_scan() about every sample_every bytes, with the record at offset. */
typedef void (*LogFileSampleFunc)(void *userdata, uint64_t seq, usec_t time, uint64_t offset);

/*
 * Walk the records of a file whose header says first_seq, as long as the sequence holds:
 * *ret_end is the offset after the last such record (where a torn tail starts), and
 * *ret_next_seq the seq after it.
 */
int logfile_scan(int fd, uint64_t first_seq, uint64_t sample_every, LogFileSampleFunc sample,
		 void *userdata, uint64_t *ret_end, uint64_t *ret_next_seq);
