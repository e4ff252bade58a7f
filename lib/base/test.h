/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The in-tree unit test harness. A test file:
 *
 *     #include "test.h"
 *     TEST(buf_grows) { ... ASSERT_EQ(x, 3); ... }
 *     TEST_MAIN();   // optional setup hook: TEST_MAIN_WITH(setup_fn)
 *
 * Tests register themselves; each runs in a forked child so a crash fails only that test.
 * Assertions print file:line and the values. A test calls SKIP("why") to be skipped;
 * if every test skipped, the binary exits 77 (meson's SKIP). `test-foo NAME…` runs a subset.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

typedef void (*TestFunc)(void);

void test_register(const char *name, TestFunc func);
int test_main(int argc, char **argv, void (*setup)(void));
_Noreturn void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
_Noreturn void test_skip(const char *file, int line, const char *why);
/* A fresh empty directory for this test, removed by the harness afterwards. */
const char *test_tmpdir(void);

#define TEST(name)                                                                                 \
	static void test_##name(void);                                                             \
	__attribute__((constructor)) static void test_register_##name(void)                      \
	{                                                                                          \
		test_register(#name, test_##name);                                                 \
	}                                                                                          \
	static void test_##name(void)

#define TEST_MAIN_WITH(setup)                                                                      \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return test_main(argc, argv, setup);                                               \
	}
#define TEST_MAIN() TEST_MAIN_WITH(NULL)

#define SKIP(why) test_skip(__FILE__, __LINE__, why)

#define ASSERT_TRUE(expr)                                                                          \
	do {                                                                                       \
		if (!(expr))                                                                       \
			test_fail(__FILE__, __LINE__, "expected true: %s", #expr);                 \
	} while (0)
#define ASSERT_FALSE(expr)                                                                         \
	do {                                                                                       \
		if (expr)                                                                          \
			test_fail(__FILE__, __LINE__, "expected false: %s", #expr);                \
	} while (0)
#define ASSERT_EQ(a, b)                                                                            \
	do {                                                                                       \
		intmax_t _a = (intmax_t)(a), _b = (intmax_t)(b);                                   \
		if (_a != _b)                                                                      \
			test_fail(__FILE__, __LINE__, "%s == %s: %jd != %jd", #a, #b, _a, _b);     \
	} while (0)
#define ASSERT_NE(a, b)                                                                            \
	do {                                                                                       \
		intmax_t _a = (intmax_t)(a), _b = (intmax_t)(b);                                   \
		if (_a == _b)                                                                      \
			test_fail(__FILE__, __LINE__, "%s != %s: both %jd", #a, #b, _a);           \
	} while (0)
#define ASSERT_OK(expr)                                                                            \
	do {                                                                                       \
		intmax_t _r = (intmax_t)(expr);                                                    \
		if (_r < 0)                                                                        \
			test_fail(__FILE__, __LINE__, "%s failed: %jd (%s)", #expr, _r,            \
				  strerror((int)-_r));                                             \
	} while (0)
#define ASSERT_ERR(expr, err)                                                                      \
	do {                                                                                       \
		intmax_t _r = (intmax_t)(expr);                                                    \
		if (_r != -(intmax_t)(err))                                                        \
			test_fail(__FILE__, __LINE__, "%s: expected -%s, got %jd", #expr, #err,    \
				  _r);                                                             \
	} while (0)
#define ASSERT_NULL(p)                                                                             \
	do {                                                                                       \
		if ((p) != NULL)                                                                   \
			test_fail(__FILE__, __LINE__, "expected NULL: %s", #p);                    \
	} while (0)
#define ASSERT_NOT_NULL(p)                                                                         \
	do {                                                                                       \
		if ((p) == NULL)                                                                   \
			test_fail(__FILE__, __LINE__, "expected non-NULL: %s", #p);                \
	} while (0)
#define ASSERT_STREQ(a, b)                                                                         \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0)                                             \
			test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,        \
				  _a ? _a : "(null)", _b ? _b : "(null)");                         \
	} while (0)
#define ASSERT_STRCONTAINS(hay, needle)                                                            \
	do {                                                                                       \
		const char *_h = (hay), *_n = (needle);                                            \
		if (!_h || !strstr(_h, _n))                                                        \
			test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"",            \
				  _h ? _h : "(null)", _n);                                         \
	} while (0)
