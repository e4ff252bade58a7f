/* SPDX-License-Identifier: MIT */
/* `-o` option parsing of `locald-fsd mount`. */

#include "fsd-cmdline.h"
#include "strutil.h"
#include "test.h"

TEST(overlayfs_syntax)
{
	MountSpec s = {};
	_cleanup_free_ char *err = NULL;
	ASSERT_OK(mount_spec_parse_options(&s,
					   "lowerdir=/a:/b\\:c,upperdir=/u,workdir=/w,timeout=2.5,"
					   "writeback,threads=4,ignore=/i1,ignore=/i2,noignore",
					   &err));
	ASSERT_EQ(strv_length(s.lowers), 2u);
	ASSERT_TRUE(streq(s.lowers[0], "/a"));
	ASSERT_TRUE(streq(s.lowers[1], "/b:c"));
	ASSERT_TRUE(streq(s.upper, "/u"));
	ASSERT_TRUE(streq(s.work, "/w"));
	ASSERT_TRUE(s.timeout > 2.4 && s.timeout < 2.6);
	ASSERT_TRUE(s.writeback);
	ASSERT_TRUE(s.no_ignore);
	ASSERT_EQ(s.max_threads, 4u);
	ASSERT_EQ(strv_length(s.ignore_files), 2u);
	mount_spec_done(&s);
}

TEST(bad_options_name_themselves)
{
	static const char *bad[] = { "frob=1",       "timeout=x",     "timeout=-1", "threads=0",
				     "threads=1000", "writeback=yes", "lowerdir" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		MountSpec s = {};
		_cleanup_free_ char *err = NULL;
		ASSERT_EQ(mount_spec_parse_options(&s, bad[i], &err), -EINVAL);
		ASSERT_TRUE(err != NULL);
		mount_spec_done(&s);
	}
}

TEST(resolve_checks_directories)
{
	MountSpec s = {};
	_cleanup_free_ char *err = NULL;
	ASSERT_EQ(mount_spec_resolve(&s, &err), -EINVAL);
	ASSERT_TRUE(err && strstr(err, "lower"));
	mount_spec_done(&s);
	free(TAKE_PTR(err));

	const char *d = test_tmpdir();
	char *l = strdupf("%s/nope", d);
	ASSERT_OK(strv_push(&s.lowers, l));
	s.upper = strdup(d);
	s.work = strdup(d);
	s.mountpoint = strdup(d);
	ASSERT_EQ(mount_spec_resolve(&s, &err), -ENOENT);
	ASSERT_TRUE(err && strstr(err, "nope"));
	mount_spec_done(&s);
}

TEST_MAIN();
