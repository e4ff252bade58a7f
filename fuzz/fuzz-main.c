/* SPDX-License-Identifier: MIT */
/*
 * Runs a libFuzzer target over every file in the directories (or files) named on the
 * command line, once each. This is how the seed corpora run as regression tests in
 * builds without libFuzzer; under ASan/UBSan it catches what the fuzzer caught before.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (16u << 20)

static int run_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size > INPUT_MAX) {
		fprintf(stderr, "%s: unreadable or larger than %u bytes\n", path, INPUT_MAX);
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *data = malloc(size ? size : 1);
	size_t got = 0;
	while (data && got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!data || got != size) {
		fprintf(stderr, "%s: short read\n", path);
		free(data);
		return -1;
	}
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	size_t runs = 0, errors = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return EXIT_FAILURE;
		}
		if (!S_ISDIR(st.st_mode)) {
			errors += run_file(argv[i]) < 0;
			runs++;
			continue;
		}
		struct dirent **names;
		int n = scandir(argv[i], &names, NULL, NULL);
		if (n < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return EXIT_FAILURE;
		}
		qsort(names, (size_t)n, sizeof(*names), cmp);
		for (int k = 0; k < n; k++) {
			if (names[k]->d_name[0] != '.') {
				char path[4096];
				snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
				errors += run_file(path) < 0;
				runs++;
			}
			free(names[k]);
		}
		free(names);
	}
	printf("%zu inputs, %zu unreadable\n", runs, errors);
	if (runs == 0) {
		fprintf(stderr, "no inputs: an empty corpus tests nothing\n");
		return EXIT_FAILURE;
	}
	return errors ? EXIT_FAILURE : EXIT_SUCCESS;
}
