/* SPDX-License-Identifier: MIT */
#include "buf.h"
#include "test.h"

TEST(append_and_nul)
{
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(&b, "hello"));
	ASSERT_OK(buf_append_byte(&b, ' '));
	ASSERT_OK(buf_printf(&b, "%d-%s", 42, "x"));
	ASSERT_EQ(b.len, 10);
	ASSERT_STREQ(b.data, "hello 42-x");
}

TEST(limit_is_hard)
{
	_cleanup_buf_ Buf b = BUF_INIT(8);
	ASSERT_OK(buf_append(&b, "12345678", 8));
	ASSERT_ERR(buf_append_byte(&b, '9'), E2BIG);
	ASSERT_ERR(buf_printf(&b, "%s", "more"), E2BIG);
	/* a refused append leaves the content alone */
	ASSERT_EQ(b.len, 8);
	ASSERT_STREQ(b.data, "12345678");
	ASSERT_TRUE(b.cap <= 9);
}

TEST(overflowing_size_refused)
{
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(&b, "x"));
	ASSERT_ERR(buf_reserve(&b, SIZE_MAX), E2BIG);
	ASSERT_ERR(buf_reserve(&b, SIZE_MAX / 2), E2BIG);
}

TEST(consume_and_steal)
{
	_cleanup_buf_ Buf b = BUF_INIT(0);
	ASSERT_OK(buf_append_str(&b, "line1\nline2"));
	buf_consume(&b, 6);
	ASSERT_STREQ(b.data, "line2");
	buf_consume(&b, 100);
	ASSERT_EQ(b.len, 0);
	ASSERT_STREQ(b.data, "");
	ASSERT_OK(buf_append_str(&b, "abc"));
	size_t n;
	_cleanup_free_ char *s = buf_steal(&b, &n);
	ASSERT_STREQ(s, "abc");
	ASSERT_EQ(n, 3);
	ASSERT_NULL(b.data);
	_cleanup_free_ char *empty = buf_steal(&b, NULL);
	ASSERT_STREQ(empty, "");
}

TEST(grows_large)
{
	_cleanup_buf_ Buf b = BUF_INIT(1 << 20);
	for (int i = 0; i < 100000; i++)
		ASSERT_OK(buf_append_byte(&b, (uint8_t)('a' + i % 26)));
	ASSERT_EQ(b.len, 100000);
	ASSERT_EQ(b.data[99999], 'a' + 99999 % 26);
}

TEST_MAIN();
