/* SPDX-License-Identifier: MIT */
#include <signal.h>

#include "parse-util.h"
#include "test.h"

TEST(integers_strict)
{
	int64_t v = 7;
	ASSERT_OK(safe_atoi64("-42", &v));
	ASSERT_EQ(v, -42);
	ASSERT_ERR(safe_atoi64("", &v), EINVAL);
	ASSERT_ERR(safe_atoi64(" 1", &v), EINVAL);
	ASSERT_ERR(safe_atoi64("+1", &v), EINVAL);
	ASSERT_ERR(safe_atoi64("1x", &v), EINVAL);
	ASSERT_ERR(safe_atoi64("99999999999999999999", &v), ERANGE);
	ASSERT_EQ(v, -42); /* untouched on failure */

	uint64_t u;
	ASSERT_ERR(safe_atou64("-1", &u), EINVAL);
	ASSERT_OK(safe_atou64("18446744073709551615", &u));
	ASSERT_TRUE(u == UINT64_MAX);

	uint32_t u32;
	ASSERT_ERR(safe_atou32("4294967296", &u32), ERANGE);
	int i;
	ASSERT_ERR(safe_atoi("2147483648", &i), ERANGE);
}

TEST(ports)
{
	uint16_t p;
	ASSERT_OK(parse_port("8080", &p));
	ASSERT_EQ(p, 8080);
	ASSERT_ERR(parse_port("0", &p), ERANGE);
	ASSERT_ERR(parse_port("65536", &p), ERANGE);
	ASSERT_ERR(parse_port("http", &p), EINVAL);
}

TEST(booleans)
{
	bool b;
	ASSERT_OK(parse_boolean("Yes", &b));
	ASSERT_TRUE(b);
	ASSERT_OK(parse_boolean("off", &b));
	ASSERT_FALSE(b);
	ASSERT_ERR(parse_boolean("maybe", &b), EINVAL);
}

TEST(durations)
{
	uint64_t ms;
	ASSERT_OK(parse_duration_ms("250ms", &ms));
	ASSERT_EQ(ms, 250);
	ASSERT_OK(parse_duration_ms("1s", &ms));
	ASSERT_EQ(ms, 1000);
	ASSERT_OK(parse_duration_ms("1.5s", &ms));
	ASSERT_EQ(ms, 1500);
	ASSERT_OK(parse_duration_ms("2", &ms));
	ASSERT_EQ(ms, 2000);
	ASSERT_OK(parse_duration_ms("1m30s", &ms));
	ASSERT_EQ(ms, 90000);
	ASSERT_OK(parse_duration_ms("1h", &ms));
	ASSERT_EQ(ms, 3600000);
	ASSERT_ERR(parse_duration_ms("", &ms), EINVAL);
	ASSERT_ERR(parse_duration_ms("1m30", &ms), EINVAL);
	ASSERT_ERR(parse_duration_ms("0s30", &ms), EINVAL);
	ASSERT_ERR(parse_duration_ms("5 s", &ms), EINVAL);
	ASSERT_ERR(parse_duration_ms("1d", &ms), EINVAL);
	ASSERT_ERR(parse_duration_ms(".5s", &ms), EINVAL);
	ASSERT_ERR(parse_duration_ms("1000000h", &ms), ERANGE);
	ASSERT_ERR(parse_duration_ms("99999999999999999999999s", &ms), ERANGE);
}

TEST(signals)
{
	ASSERT_EQ(signal_from_string("SIGTERM"), SIGTERM);
	ASSERT_EQ(signal_from_string("int"), SIGINT);
	ASSERT_EQ(signal_from_string("9"), SIGKILL);
	ASSERT_ERR(signal_from_string("SIGFOO"), EINVAL);
	ASSERT_ERR(signal_from_string("999"), EINVAL);
	ASSERT_ERR(signal_from_string(""), EINVAL);
	ASSERT_STREQ(signal_to_string(SIGQUIT), "SIGQUIT");
	ASSERT_NULL(signal_to_string(1000));
}

TEST_MAIN();
