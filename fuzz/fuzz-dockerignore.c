/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the .dockerignore matcher (services/fsd/fsd-ignore.c): the
 * input's first line is a path, the rest a .dockerignore text. Parse, then match the
 * path, its prefixes and a few fixed paths; the matcher must neither crash nor be
 * inconsistent (a hidden path is always an excluded one).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fsd-ignore.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - (const char *)data) : size;
	if (plen > 4096)
		plen = 4096;
	char path[4097];
	memcpy(path, data, plen);
	path[plen] = 0;
	const char *text = nl ? nl + 1 : "";
	size_t tlen = nl ? size - plen - 1 : 0;

	Ignore *ig = NULL;
	if (ignore_new(&ig) < 0)
		return 0;
	unsigned line = 0;
	(void)ignore_add_text(ig, text, tlen, &line);
	const char *fixed[] = { "a", "a/b", "node_modules/x", ".", "", "/", "../x" };
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
		bool m = ignore_match(ig, fixed[i]);
		CHECK(!ignore_hidden(ig, fixed[i], true) || m);
		CHECK(!ignore_hidden(ig, fixed[i], false) || m);
	}
	for (size_t i = 0; i <= plen; i++)
		if (i == plen || path[i] == '/') {
			char c = path[i];
			path[i] = 0;
			bool m = ignore_match(ig, path);
			CHECK(!ignore_hidden(ig, path, i != plen) || m);
			path[i] = c;
		}
	ignore_free(ig);
	return 0;
}
