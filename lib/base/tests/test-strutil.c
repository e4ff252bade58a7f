/* SPDX-License-Identifier: MIT */
#include "buf.h"
#include "strutil.h"
#include "test.h"

TEST(prefix_suffix)
{
	ASSERT_STREQ(startswith("service.state.x", "service."), "state.x");
	ASSERT_NULL(startswith("log", "logs"));
	ASSERT_TRUE(endswith("web.shop.localhost", ".localhost"));
	ASSERT_FALSE(endswith("localhost", ".localhost"));
}

TEST(strscpy_truncates_and_reports)
{
	char small[4];
	ASSERT_ERR(strscpy(small, sizeof(small), "abcdef"), ENOBUFS);
	ASSERT_STREQ(small, "abc");
	ASSERT_OK(strscpy(small, sizeof(small), "ab"));
	ASSERT_STREQ(small, "ab");
	ASSERT_ERR(strfmt(small, sizeof(small), "%d", 12345), ENOBUFS);
	ASSERT_STREQ(small, "123");
}

TEST(strstrip_trims)
{
	char s[] = "  \t hello world \n";
	ASSERT_STREQ(strstrip(s), "hello world");
	char e[] = "   ";
	ASSERT_STREQ(strstrip(e), "");
}

TEST(utf8_validation)
{
	ASSERT_TRUE(utf8_is_valid("h\xc3\xa9llo", 6));
	ASSERT_TRUE(utf8_is_valid("\xf0\x9f\x98\x80", 4));
	ASSERT_FALSE(utf8_is_valid("\xc0\xaf", 2));         /* overlong '/' */
	ASSERT_FALSE(utf8_is_valid("\xed\xa0\x80", 3));     /* surrogate */
	ASSERT_FALSE(utf8_is_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	ASSERT_FALSE(utf8_is_valid("\xe2\x82", 2));         /* truncated */
	ASSERT_FALSE(utf8_is_valid("\x80", 1));
}

TEST(utf8_sanitize_replaces)
{
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_EQ(utf8_sanitize("ok \xc3\xa9", 5, &b), 0);
	ASSERT_STREQ(b.data, "ok \xc3\xa9");
	buf_clear(&b);
	ASSERT_EQ(utf8_sanitize("a\xff" "b\0c\xe2\x82", 7, &b), 1);
	ASSERT_STREQ(b.data, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd");
	ASSERT_TRUE(utf8_is_valid(b.data, b.len));
}

TEST(shell_quote_roundtrip)
{
	_cleanup_free_ char *q = shell_quote("it's $HOME");
	ASSERT_STREQ(q, "'it'\\''s $HOME'");
}

TEST(strv_ops)
{
	_cleanup_strv_free_ char **l = NULL;
	ASSERT_EQ(strv_length(l), 0);
	ASSERT_OK(strv_extend(&l, "a"));
	ASSERT_OK(strv_extend(&l, "b"));
	ASSERT_EQ(strv_length(l), 2);
	ASSERT_TRUE(strv_contains(l, "b"));
	ASSERT_FALSE(strv_contains(l, "c"));
	_cleanup_strv_free_ char **c = strv_copy(l);
	ASSERT_STREQ(c[1], "b");
	ASSERT_NULL(c[2]);
	size_t n = 0;
	STRV_FOREACH(s, c)
	n += strlen(*s);
	ASSERT_EQ(n, 2);
}

TEST_MAIN();
