/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "test.h"

/* Point stderr at a file, log, and give back what was written. */
static char *capture(void (*fn)(void))
{
	_cleanup_free_ char *path = path_join(test_tmpdir(), "stderr");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	static char out[8192];
	ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	return out;
}

static void plain(void)
{
	unsetenv("JOURNAL_STREAM");
	log_setup("/usr/bin/locald-test");
	log_set_max_level(LOG_LEVEL_INFO);
	log_info("hello %d", 1);
	log_debug("not shown");
	int r = log_error_errno(-ENOENT, "opening %s: %m", "x.toml");
	ASSERT_EQ(r, -ENOENT);
	log_warning("two\nlines");
}

TEST(plain_format)
{
	const char *out = capture(plain);
	ASSERT_STRCONTAINS(out, "locald-test: info: hello 1\n");
	ASSERT_STRCONTAINS(out, "locald-test: error: opening x.toml: No such file or directory\n");
	ASSERT_STRCONTAINS(out, "locald-test: warning: two lines\n");
	ASSERT_TRUE(strstr(out, "not shown") == NULL);
}

static void journal(void)
{
	struct stat st;
	ASSERT_OK(fstat(STDERR_FILENO, &st));
	char v[64];
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	log_setup("superd");
	log_notice("ready");
	log_error("bad");
}

TEST(journal_format)
{
	const char *out = capture(journal);
	ASSERT_STREQ(out, "<5>ready\n<3>bad\n");
}

static void env_level(void)
{
	unsetenv("JOURNAL_STREAM");
	setenv("LOCALD_LOG_LEVEL", "debug", 1);
	log_setup("x");
	log_debug("visible");
}

TEST(level_from_env)
{
	const char *out = capture(env_level);
	ASSERT_STRCONTAINS(out, "visible");
	ASSERT_EQ(log_level_from_string("warning"), LOG_LEVEL_WARNING);
	ASSERT_EQ(log_level_from_string("7"), LOG_LEVEL_DEBUG);
	ASSERT_ERR(log_level_from_string("loud"), EINVAL);
}

TEST(returns_zero_without_error)
{
	ASSERT_EQ(log_full_errno(LOG_LEVEL_DEBUG, 0, "quiet"), 0);
	ASSERT_EQ(log_full_errno(LOG_LEVEL_DEBUG, EPERM, "quiet"), -EPERM);
}

TEST_MAIN();
