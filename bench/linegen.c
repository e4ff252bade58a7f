/* SPDX-License-Identifier: MIT */
/*
 * The log writer of bench/superd-logs.py: N lines of exactly 100 bytes (99 + '\n'),
 * each the zero-padded decimal line number 0..N-1, written in 64 KiB write()s as fast as
 * the reader takes them. The numbers let the benchmark check order and loss by content.
 *
 *     linegen N
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE 100
#define PER_WRITE 655 /* lines per write: 65,500 bytes */

int main(int argc, char **argv)
{
	static char buf[PER_WRITE * LINE];
	char *end;
	unsigned long long n = argc == 2 ? strtoull(argv[1], &end, 10) : 0;
	if (argc != 2 || *end)
		return fprintf(stderr, "usage: linegen N\n"), 2;

	memset(buf, '0', sizeof(buf));
	for (unsigned long long i = 0; i < n;) {
		size_t k = 0;
		for (; k < PER_WRITE && i < n; k++, i++) {
			char *l = buf + k * LINE;
			unsigned long long v = i;
			for (int d = LINE - 2; d >= LINE - 21; d--, v /= 10)
				l[d] = (char)('0' + v % 10);
			l[LINE - 1] = '\n';
		}
		for (size_t off = 0, len = k * LINE; off < len;) {
			ssize_t w = write(STDOUT_FILENO, buf + off, len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return perror("linegen"), 1;
			off += (size_t)w;
		}
	}
	return 0;
}
