/* SPDX-License-Identifier: MIT */
/*
 * Unquoted scalars: booleans, integers, floats, and the four date/time kinds.
 * The scanner first takes the whole token (the characters these can be made of), then
 * matches it against the TOML 1.0 grammar exactly, so "1.2.3" or "2021-02-30" fails as
 * one token with one message instead of stopping half-way through it.
 */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "toml-internal.h"

static bool is_token_char(int c)
{
	return toml_is_bare_key_char(c) || c == '+' || c == '.' || c == ':';
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!toml_is_digit((unsigned char)s[i]))
			return false;
	return true;
}

/* ---- date and time ---- */

typedef struct Cursor {
	const char *s;
	size_t n, i;
} Cursor;

/* Exactly k digits. */
static bool take_digits(Cursor *c, size_t k, int *ret)
{
	if (c->n - c->i < k || !all_digits(c->s + c->i, k))
		return false;
	int v = 0;
	for (size_t j = 0; j < k; j++)
		v = v * 10 + (c->s[c->i + j] - '0');
	c->i += k;
	*ret = v;
	return true;
}

static bool take(Cursor *c, char ch)
{
	if (c->i < c->n && c->s[c->i] == ch) {
		c->i++;
		return true;
	}
	return false;
}

static bool at_end(const Cursor *c)
{
	return c->i == c->n;
}

static int days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

/* Why a well-formed date or time is still wrong; NULL if it is right. */
static const char *check_date(int y, int m, int d)
{
	if (m < 1 || m > 12)
		return "month must be 01 to 12";
	if (d < 1 || d > days_in_month(y, m))
		return "day out of range for the month";
	return NULL;
}

static const char *check_time(int h, int m, int s)
{
	if (h > 23)
		return "hour must be 00 to 23";
	if (m > 59)
		return "minute must be 00 to 59";
	if (s > 60) /* 60: RFC 3339 leap second */
		return "second must be 00 to 60";
	return NULL;
}

/* HH:MM:SS[.fraction]; false if malformed, else *ret_why says what is out of range. */
static bool take_time(Cursor *c, const char **ret_why)
{
	int h, m, s;
	if (!take_digits(c, 2, &h) || !take(c, ':') || !take_digits(c, 2, &m) || !take(c, ':') ||
	    !take_digits(c, 2, &s))
		return false;
	if (take(c, '.')) {
		size_t from = c->i;
		while (c->i < c->n && toml_is_digit((unsigned char)c->s[c->i]))
			c->i++;
		if (c->i == from)
			return false;
	}
	*ret_why = check_time(h, m, s);
	return true;
}

static bool take_offset(Cursor *c, const char **ret_why)
{
	if (take(c, 'Z') || take(c, 'z'))
		return true;
	if (!take(c, '+') && !take(c, '-'))
		return false;
	int h, m;
	if (!take_digits(c, 2, &h) || !take(c, ':') || !take_digits(c, 2, &m))
		return false;
	if (h > 23 || m > 59)
		*ret_why = "offset out of range";
	return true;
}

/* Digits then sep: what a date (sep '-') or a time (sep ':') starts with. */
static bool starts_like(const char *s, size_t n, size_t digits, char sep)
{
	size_t i = 0;
	while (i < n && toml_is_digit((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != sep)
		return false;
	return digits == 0 || i == digits;
}

static bool looks_like_date(const char *s, size_t n)
{
	return starts_like(s, n, 4, '-');
}

/* Close enough to a date or time that a message about a number would confuse. */
static bool looks_like_datetime(const char *s, size_t n)
{
	return starts_like(s, n, 0, '-') || starts_like(s, n, 0, ':');
}

static bool looks_like_time(const char *s, size_t n)
{
	return starts_like(s, n, 0, ':');
}

/* One spelling per value: 'T' and 'Z' upper case, the date/time separator a 'T'. */
static int datetime_value(TomlType type, const char *s, size_t n, TomlPos pos, TomlValue **ret)
{
	_cleanup_(toml_value_freep) TomlValue *v = toml_value_new(type, pos);
	char *norm = v ? malloc(n + 1) : NULL;
	if (!norm)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		norm[i] = s[i] == 't' || s[i] == ' ' ? 'T' : s[i] == 'z' ? 'Z' : s[i];
	norm[n] = 0;
	v->str.data = norm;
	v->str.len = n;
	*ret = TAKE_PTR(v);
	return 0;
}

static int lex_datetime(TomlParser *p, const char *s, size_t n, TomlPos pos, TomlValue **ret)
{
	Cursor c = { s, n, 0 };
	const char *why = NULL, *what, *format;
	TomlType type;
	char q[TOML_QUOTE_MAX];

	if (looks_like_time(s, n)) {
		what = "local time";
		format = "HH:MM:SS[.fraction]";
		type = TOML_TIME_LOCAL;
		if (!take_time(&c, &why) || !at_end(&c))
			goto malformed;
	} else {
		int y, m, d;
		what = "date";
		format = "YYYY-MM-DD";
		type = TOML_DATE_LOCAL;
		if (!take_digits(&c, 4, &y) || !take(&c, '-') || !take_digits(&c, 2, &m) ||
		    !take(&c, '-') || !take_digits(&c, 2, &d))
			goto malformed;
		why = check_date(y, m, d);
		if (!at_end(&c)) {
			what = "date-time";
			format = "YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM]";
			type = TOML_DATETIME_LOCAL;
			const char *time_why = NULL;
			if (!(take(&c, 'T') || take(&c, 't') || take(&c, ' ')) ||
			    !take_time(&c, &time_why))
				goto malformed;
			why = why ? why : time_why;
			if (!at_end(&c)) {
				const char *offset_why = NULL;
				type = TOML_DATETIME;
				if (!take_offset(&c, &offset_why) || !at_end(&c))
					goto malformed;
				why = why ? why : offset_why;
			}
		}
	}
	toml_quote(q, sizeof(q), s, n);
	if (why)
		return toml_fail(p, pos, -EINVAL, "invalid %s %s: %s", what, q, why);

	return datetime_value(type, s, n, pos, ret);

malformed:
	toml_quote(q, sizeof(q), s, n);
	return toml_fail(p, pos, -EINVAL, "invalid %s %s (expected %s)", what, q, format);
}

/* ---- numbers ---- */

static int digit_value(int c, int base)
{
	int v = c >= '0' && c <= '9'   ? c - '0'
		: c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10
				       : 99;
	return v < base ? v : -1;
}

/* One or more digits of base, underscores allowed only between two digits. */
static bool take_number_digits(Cursor *c, int base)
{
	if (at_end(c) || digit_value((unsigned char)c->s[c->i], base) < 0)
		return false;
	c->i++;
	while (!at_end(c)) {
		if (c->s[c->i] == '_') {
			if (c->i + 1 >= c->n ||
			    digit_value((unsigned char)c->s[c->i + 1], base) < 0)
				return false;
			c->i += 2;
		} else if (digit_value((unsigned char)c->s[c->i], base) >= 0)
			c->i++;
		else
			break;
	}
	return true;
}

/* Value of digits (underscores skipped) in s[0..n), at most limit; false on overflow. */
static bool digits_value(const char *s, size_t n, int base, uint64_t limit, uint64_t *ret)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_')
			continue;
		uint64_t d = (uint64_t)digit_value((unsigned char)s[i], base);
		if (v > (limit - d) / (uint64_t)base)
			return false;
		v = v * (uint64_t)base + d;
	}
	*ret = v;
	return true;
}

static locale_t c_numeric_locale(void)
{
	/* strtod() obeys the caller's locale, where the decimal point may be ','. */
	static locale_t cached;
	locale_t l = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
	if (l)
		return l;
	l = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (!l)
		return (locale_t)0;
	locale_t expected = (locale_t)0;
	if (!__atomic_compare_exchange_n(&cached, &expected, l, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		freelocale(l);
		return expected;
	}
	return l;
}

static int float_value(TomlParser *p, const char *s, size_t n, TomlPos pos, double *ret)
{
	locale_t loc = c_numeric_locale();
	if (!loc)
		return -ENOMEM;
	_cleanup_free_ char *copy = malloc(n + 1);
	if (!copy)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_')
			copy[k++] = s[i];
	copy[k] = 0;

	char *end;
	errno = 0;
	double d = strtod_l(copy, &end, loc);
	if (end != copy + k)
		return -EINVAL; /* the grammar was checked: cannot happen */
	if (errno == ERANGE && isinf(d)) {
		char q[TOML_QUOTE_MAX];
		toml_quote(q, sizeof(q), s, n);
		return toml_fail(p, pos, -EINVAL, "float %s is out of range", q);
	}
	/* Underflow to a subnormal or zero is rounding, as for any decimal fraction. */
	*ret = d;
	return 0;
}

static int integer_value(int64_t i, TomlPos pos, TomlValue **ret)
{
	TomlValue *v = toml_value_new(TOML_INTEGER, pos);
	if (!v)
		return -ENOMEM;
	v->integer = i;
	*ret = v;
	return 0;
}

static int float_new(double d, TomlPos pos, TomlValue **ret)
{
	TomlValue *v = toml_value_new(TOML_FLOAT, pos);
	if (!v)
		return -ENOMEM;
	v->fp = d;
	*ret = v;
	return 0;
}

static int lex_prefixed_integer(TomlParser *p, const char *s, size_t n, TomlPos pos,
				TomlValue **ret)
{
	int base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
	Cursor c = { s, n, 2 };
	char q[TOML_QUOTE_MAX];
	uint64_t v;

	toml_quote(q, sizeof(q), s, n);
	if (!take_number_digits(&c, base) || !at_end(&c))
		return toml_fail(p, pos, -EINVAL, "invalid base-%d integer %s", base, q);
	if (!digits_value(s + 2, n - 2, base, INT64_MAX, &v))
		return toml_fail(p, pos, -EINVAL, "integer %s does not fit in 64 bits", q);
	return integer_value((int64_t)v, pos, ret);
}

static int lex_number(TomlParser *p, const char *s, size_t n, TomlPos pos, TomlValue **ret)
{
	Cursor c = { s, n, 0 };
	bool negative = false;
	char q[TOML_QUOTE_MAX];

	toml_quote(q, sizeof(q), s, n);
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b'))
		return lex_prefixed_integer(p, s, n, pos, ret);
	if (take(&c, '-'))
		negative = true;
	else
		(void)take(&c, '+');

	const char *rest = s + c.i;
	size_t rest_len = n - c.i;
	if (rest_len == 3 && (memcmp(rest, "inf", 3) == 0 || memcmp(rest, "nan", 3) == 0)) {
		double d = rest[0] == 'i' ? INFINITY : NAN;
		return float_new(negative ? -d : d, pos, ret);
	}

	size_t int_from = c.i;
	if (!take_number_digits(&c, 10))
		return toml_fail(p, pos, -EINVAL, "invalid number %s", q);
	size_t int_len = c.i - int_from;
	if (s[int_from] == '0' && int_len > 1)
		return toml_fail(p, pos, -EINVAL, "leading zeros are not allowed in %s", q);

	bool is_float = false;
	if (take(&c, '.')) {
		is_float = true;
		if (!take_number_digits(&c, 10))
			return toml_fail(p, pos, -EINVAL,
					 "invalid float %s (expected digits after '.')", q);
	}
	if (take(&c, 'e') || take(&c, 'E')) {
		is_float = true;
		if (!take(&c, '+'))
			(void)take(&c, '-');
		if (!take_number_digits(&c, 10))
			return toml_fail(p, pos, -EINVAL,
					 "invalid float %s (expected digits in the exponent)", q);
	}
	if (!at_end(&c))
		return toml_fail(p, pos, -EINVAL, "invalid %s %s", is_float ? "float" : "number",
				 q);

	if (is_float) {
		double d = 0;
		int r = float_value(p, s, n, pos, &d);
		if (r < 0)
			return r;
		return float_new(d, pos, ret);
	}

	/* Two's complement reaches one further below zero than above it. */
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t v;
	if (!digits_value(s + int_from, int_len, 10, limit, &v))
		return toml_fail(p, pos, -EINVAL, "integer %s does not fit in 64 bits", q);
	int64_t i = negative ? (int64_t)(0 - v) : (int64_t)v;
	return integer_value(i, pos, ret);
}

/* ---- dispatch ---- */

int toml_lex_scalar(TomlParser *p, TomlValue **ret)
{
	TomlPos pos = p->here;
	const char *s = p->data + p->off;
	size_t n = 0;

	while (is_token_char(toml_peek_at(p, n)))
		n++;
	/* "1979-05-27 07:32:00": the one place a space sits inside a value. */
	if (n == 10 && looks_like_date(s, n) && toml_peek_at(p, n) == ' ' &&
	    toml_is_digit(toml_peek_at(p, n + 1)) && toml_is_digit(toml_peek_at(p, n + 2)) &&
	    toml_peek_at(p, n + 3) == ':') {
		n++;
		while (is_token_char(toml_peek_at(p, n)))
			n++;
	}

	int r;
	if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0)) {
		TomlValue *v = toml_value_new(TOML_BOOL, pos);
		if (!v)
			return -ENOMEM;
		v->boolean = n == 4;
		*ret = v;
		r = 0;
	} else if (looks_like_datetime(s, n))
		r = lex_datetime(p, s, n, pos, ret);
	else if (n > 0 && (toml_is_digit((unsigned char)s[0]) || s[0] == '+' || s[0] == '-' ||
			   memcmp(s, "inf", MIN(n, (size_t)3)) == 0 ||
			   memcmp(s, "nan", MIN(n, (size_t)3)) == 0))
		r = lex_number(p, s, n, pos, ret);
	else {
		char found[TOML_QUOTE_MAX];
		if (n > 0)
			toml_quote(found, sizeof(found), s, n);
		else
			toml_describe_char(p, found, sizeof(found));
		return toml_fail(p, pos, -EINVAL, "expected a value, found %s", found);
	}
	if (r < 0)
		return r;
	toml_advance(p, n);
	return 0;
}
