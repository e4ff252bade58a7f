/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_MAX 512
#define EXIT_SKIP 77

typedef struct Test {
	const char *name;
	TestFunc func;
} Test;

static Test tests[TEST_MAX];
static size_t n_tests;
static char tmpdir[4096];

void test_register(const char *name, TestFunc func)
{
	if (n_tests >= TEST_MAX) {
		fprintf(stderr, "test harness: more than %d tests in one binary\n", TEST_MAX);
		abort();
	}
	tests[n_tests++] = (Test){ name, func };
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(EXIT_FAILURE);
}

void test_skip(const char *file, int line, const char *why)
{
	fprintf(stderr, "%s:%d: skipped: %s\n", file, line, why);
	fflush(stderr);
	_exit(EXIT_SKIP);
}

const char *test_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/locald-test-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(tmpdir)) {
			fprintf(stderr, "mkdtemp(%s): %m\n", tmpdir);
			_exit(EXIT_FAILURE);
		}
	}
	return tmpdir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? 0 : 0;
}

static int run_one(const Test *t)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "fork: %m\n");
		return EXIT_FAILURE;
	}
	if (pid == 0) {
		tmpdir[0] = 0;
		t->func();
		fflush(NULL);
		if (tmpdir[0])
			nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		/* exit(), not _exit(): LeakSanitizer checks at exit. */
		exit(EXIT_SUCCESS);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_FAILURE;
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "%s: killed by signal %d\n", t->name, WTERMSIG(status));
		return EXIT_FAILURE;
	}
	return WEXITSTATUS(status);
}

static bool selected(const char *name, int argc, char **argv)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int test_main(int argc, char **argv, void (*setup)(void))
{
	size_t passed = 0, failed = 0, skipped = 0;

	if (setup)
		setup();
	for (size_t i = 0; i < n_tests; i++) {
		if (!selected(tests[i].name, argc, argv))
			continue;
		int r = run_one(&tests[i]);
		const char *verdict = r == 0 ? "ok" : r == EXIT_SKIP ? "skip" : "FAIL";
		printf("%-4s %s\n", verdict, tests[i].name);
		if (r == 0)
			passed++;
		else if (r == EXIT_SKIP)
			skipped++;
		else
			failed++;
	}
	printf("%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
	if (failed)
		return EXIT_FAILURE;
	if (passed == 0 && skipped > 0)
		return EXIT_SKIP;
	return EXIT_SUCCESS;
}
