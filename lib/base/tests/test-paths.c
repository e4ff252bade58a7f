/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "test.h"

TEST(overrides_win)
{
	setenv("LOCALD_RUNTIME_DIR", "/run/x", 1);
	setenv("LOCALD_STATE_DIR", "/var/s", 1);
	setenv("LOCALD_CONFIG_DIR", "/etc/c", 1);
	_cleanup_free_ char *r = NULL, *s = NULL, *c = NULL;
	ASSERT_OK(locald_runtime_dir(&r));
	ASSERT_OK(locald_state_dir(&s));
	ASSERT_OK(locald_config_dir(&c));
	ASSERT_STREQ(r, "/run/x");
	ASSERT_STREQ(s, "/var/s");
	ASSERT_STREQ(c, "/etc/c");
}

TEST(relative_override_refused)
{
	setenv("LOCALD_STATE_DIR", "relative/dir", 1);
	char *s = NULL;
	ASSERT_ERR(locald_state_dir(&s), EINVAL);
	ASSERT_NULL(s);
}

TEST(xdg_fallbacks)
{
	unsetenv("LOCALD_RUNTIME_DIR");
	unsetenv("LOCALD_STATE_DIR");
	unsetenv("LOCALD_CONFIG_DIR");
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	setenv("XDG_STATE_HOME", "/home/u/.st", 1);
	setenv("XDG_CONFIG_HOME", "relative", 1); /* ignored per XDG */
	setenv("HOME", "/home/u", 1);
	_cleanup_free_ char *r = NULL, *s = NULL, *c = NULL;
	ASSERT_OK(locald_runtime_dir(&r));
	ASSERT_OK(locald_state_dir(&s));
	ASSERT_OK(locald_config_dir(&c));
	ASSERT_STREQ(r, "/run/user/1000/locald");
	ASSERT_STREQ(s, "/home/u/.st/locald");
	ASSERT_STREQ(c, "/home/u/.config/locald");

	unsetenv("XDG_RUNTIME_DIR");
	_cleanup_free_ char *t = NULL, *expect = NULL;
	ASSERT_OK(locald_runtime_dir(&t));
	ASSERT_TRUE(asprintf(&expect, "/tmp/locald-%u", (unsigned)getuid()) > 0);
	ASSERT_STREQ(t, expect);
}

TEST(runtime_dir_created_0700)
{
	_cleanup_free_ char *want = path_join(test_tmpdir(), "a/b/locald");
	setenv("LOCALD_RUNTIME_DIR", want, 1);
	_cleanup_free_ char *r = NULL;
	ASSERT_OK(locald_runtime_dir_ensure(&r));
	ASSERT_STREQ(r, want);
	struct stat st;
	ASSERT_OK(stat(r, &st));
	ASSERT_EQ(st.st_mode & 07777, 0700);
	ASSERT_EQ(st.st_uid, geteuid());

	/* a loose mode on our own dir is tightened */
	ASSERT_OK(chmod(r, 0755));
	free(r);
	r = NULL;
	ASSERT_OK(locald_runtime_dir_ensure(&r));
	ASSERT_OK(stat(r, &st));
	ASSERT_EQ(st.st_mode & 07777, 0700);
}

TEST(runtime_dir_symlink_refused)
{
	_cleanup_free_ char *target = path_join(test_tmpdir(), "real");
	_cleanup_free_ char *link = path_join(test_tmpdir(), "link");
	ASSERT_OK(mkdir(target, 0700));
	ASSERT_OK(symlink(target, link));
	setenv("LOCALD_RUNTIME_DIR", link, 1);
	char *r = NULL;
	ASSERT_ERR(locald_runtime_dir_ensure(&r), ENOTDIR);
}

TEST(runtime_dir_foreign_owner_refused)
{
	if (geteuid() != 0)
		SKIP("needs root to create a directory owned by someone else");
	_cleanup_free_ char *d = path_join(test_tmpdir(), "foreign");
	ASSERT_OK(mkdir(d, 0700));
	ASSERT_OK(chown(d, 65534, 65534));
	setenv("LOCALD_RUNTIME_DIR", d, 1);
	char *r = NULL;
	ASSERT_ERR(locald_runtime_dir_ensure(&r), EPERM);
}

TEST(path_join_normalizes)
{
	_cleanup_free_ char *a = path_join("/a/", "/b");
	_cleanup_free_ char *b = path_join("/", "x");
	_cleanup_free_ char *c = path_join("/a", "");
	ASSERT_STREQ(a, "/a/b");
	ASSERT_STREQ(b, "/x");
	ASSERT_STREQ(c, "/a");
}

TEST_MAIN();
