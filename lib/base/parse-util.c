/* SPDX-License-Identifier: MIT */
#include "parse-util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "strutil.h"

/* strto* accept leading whitespace, '+', and (for unsigned) '-'; we accept none of that
 * except a '-' on signed numbers. */
static int check_number_start(const char *s, bool allow_minus)
{
	if (!s || !*s)
		return -EINVAL;
	if (*s == '-' && allow_minus)
		s++;
	return isdigit((unsigned char)*s) ? 0 : -EINVAL;
}

int safe_atoi64(const char *s, int64_t *ret)
{
	int r = check_number_start(s, true);
	if (r < 0)
		return r;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno != 0 || *end)
		return -EINVAL;
	*ret = (int64_t)v;
	return 0;
}

int safe_atou64(const char *s, uint64_t *ret)
{
	int r = check_number_start(s, false);
	if (r < 0)
		return r;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno != 0 || *end)
		return -EINVAL;
	*ret = (uint64_t)v;
	return 0;
}

int safe_atoi(const char *s, int *ret)
{
	int64_t v;
	int r = safe_atoi64(s, &v);
	if (r < 0)
		return r;
	if (v < INT_MIN || v > INT_MAX)
		return -ERANGE;
	*ret = (int)v;
	return 0;
}

int safe_atou32(const char *s, uint32_t *ret)
{
	uint64_t v;
	int r = safe_atou64(s, &v);
	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

int parse_port(const char *s, uint16_t *ret)
{
	uint64_t v;
	int r = safe_atou64(s, &v);
	if (r < 0)
		return r;
	if (v == 0 || v > 65535)
		return -ERANGE;
	*ret = (uint16_t)v;
	return 0;
}

int parse_boolean(const char *s, bool *ret)
{
	static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
	static const char *const no[] = { "0", "no", "n", "false", "f", "off" };
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(yes); i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
	for (size_t i = 0; i < ELEMENTSOF(no); i++)
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	return -EINVAL;
}

static const struct {
	const char *suffix;
	uint64_t ms;
} duration_units[] = {
	/* longest suffix first so "ms" wins over "m" */
	{ "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 3600 * 1000 },
};

int parse_duration_ms(const char *s, uint64_t *ret_ms)
{
	if (isempty(s))
		return -EINVAL;

	uint64_t total = 0;
	const char *p = s;
	bool first = true;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		/* integer part */
		uint64_t whole = 0;
		while (isdigit((unsigned char)*p)) {
			if (whole > UINT32_MAX)
				return -ERANGE;
			whole = whole * 10 + (uint64_t)(*p++ - '0');
		}
		/* optional fraction, kept to millionths */
		uint64_t frac = 0, frac_div = 1;
		if (*p == '.') {
			p++;
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			while (isdigit((unsigned char)*p)) {
				if (frac_div < 1000000) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					frac_div *= 10;
				}
				p++;
			}
		}
		uint64_t unit = 1000; /* a bare number means seconds */
		if (*p) {
			bool found = false;
			for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
				const char *rest = startswith(p, duration_units[i].suffix);
				if (rest && (!*rest || isdigit((unsigned char)*rest))) {
					unit = duration_units[i].ms;
					p = rest;
					found = true;
					break;
				}
			}
			if (!found)
				return -EINVAL;
		} else if (!first)
			return -EINVAL; /* "1m30" is ambiguous */
		first = false;
		total += whole * unit + frac * unit / frac_div;
		if (total > UINT32_MAX)
			return -ERANGE;
	}
	*ret_ms = total;
	return 0;
}

static const struct {
	int sig;
	const char *name;
} signals[] = {
	{ SIGHUP, "SIGHUP" },   { SIGINT, "SIGINT" },   { SIGQUIT, "SIGQUIT" },
	{ SIGKILL, "SIGKILL" }, { SIGUSR1, "SIGUSR1" }, { SIGUSR2, "SIGUSR2" },
	{ SIGTERM, "SIGTERM" }, { SIGCONT, "SIGCONT" }, { SIGSTOP, "SIGSTOP" },
	{ SIGWINCH, "SIGWINCH" }, { SIGALRM, "SIGALRM" }, { SIGPIPE, "SIGPIPE" },
	{ SIGABRT, "SIGABRT" },
};

int signal_from_string(const char *s)
{
	if (isempty(s))
		return -EINVAL;
	if (isdigit((unsigned char)s[0])) {
		int n;
		if (safe_atoi(s, &n) < 0)
			return -EINVAL;
		return signal_to_string(n) ? n : -EINVAL;
	}
	const char *bare = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ELEMENTSOF(signals); i++)
		if (strcasecmp(bare, signals[i].name + 3) == 0)
			return signals[i].sig;
	return -EINVAL;
}

const char *signal_to_string(int sig)
{
	for (size_t i = 0; i < ELEMENTSOF(signals); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return NULL;
}
