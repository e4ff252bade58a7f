/* SPDX-License-Identifier: MIT */
/* What the shim accepts: ports, host names, shim.conf, the /etc/hosts block. No I/O. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

static const uint16_t builtin_ports[] = { 80, 443 };

int shim_parse_port(const char *s, uint16_t *ret)
{
	unsigned long v = 0;
	size_t i = 0;
	for (; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || s[0] == '0' || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

bool shim_port_allowed(const ShimConf *conf, uint16_t port)
{
	for (size_t i = 0; i < sizeof(builtin_ports) / sizeof(builtin_ports[0]); i++)
		if (builtin_ports[i] == port)
			return true;
	for (size_t i = 0; conf && i < conf->n_ports; i++)
		if (conf->ports[i] == port)
			return true;
	return false;
}

/* One LDH label, lower case, 1..63 bytes, no '-' at either end. */
static bool label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

static bool has_suffix(const char *name, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);
	return len > sl && memcmp(name + len - sl, suffix, sl) == 0;
}

int shim_host_name_check(const ShimConf *conf, const char *name, size_t len)
{
	if (len == 0 || len > SHIM_MAX_NAME_LEN)
		return -EINVAL;
	for (size_t start = 0, i = 0; i <= len; i++)
		if (i == len || name[i] == '.') {
			if (!label_ok(name + start, i - start))
				return -EINVAL;
			start = i + 1;
		}
	/* Labels are checked, so a suffix match is at a label boundary with a label before. */
	if (has_suffix(name, len, ".localhost"))
		return 0;
	for (size_t i = 0; conf && i < conf->n_suffixes; i++)
		if (has_suffix(name, len, conf->suffixes[i]))
			return 0;
	return -EINVAL;
}

int shim_names_parse(const ShimConf *conf, char *buf, size_t n, char **names, size_t max,
		     size_t *ret_bad)
{
	size_t count = 0, line = 0;
	for (size_t start = 0; start < n;) {
		char *nl = memchr(buf + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - buf) : n;
		line++;
		if (count >= max || count >= SHIM_MAX_NAMES)
			return -E2BIG;
		if (shim_host_name_check(conf, buf + start, end - start) < 0) {
			*ret_bad = line;
			return -EINVAL;
		}
		buf[end] = '\0'; /* buf has room: callers NUL-terminate at n */
		names[count++] = buf + start;
		start = end + 1;
	}
	return (int)count;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

int shim_conf_parse(const char *text, size_t n, ShimConf *conf, unsigned *ret_line)
{
	ShimConf c = { 0 };
	unsigned line = 0;
	for (const char *p = text, *end = text + n; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		line++;
		const char *k = skip_ws(p, le), *ke = k;
		while (ke < le && *ke != ' ' && *ke != '\t')
			ke++;
		const char *v = skip_ws(ke, le), *ve = v;
		while (ve < le && *ve != ' ' && *ve != '\t')
			ve++;
		const char *rest = skip_ws(ve, le);
		char val[SHIM_MAX_SUFFIX_LEN + 1];
		size_t kl = (size_t)(ke - k), vl = (size_t)(ve - v);
		p = nl ? nl + 1 : end;

		if (k == le || *k == '#')
			continue;
		if (rest != le || vl == 0 || vl > SHIM_MAX_SUFFIX_LEN)
			goto bad;
		memcpy(val, v, vl);
		val[vl] = '\0';
		if (kl == 10 && memcmp(k, "allow-port", 10) == 0) {
			uint16_t port;
			if (shim_parse_port(val, &port) < 0 || c.n_ports >= SHIM_MAX_CONF_ITEMS)
				goto bad;
			c.ports[c.n_ports++] = port;
		} else if (kl == 12 && memcmp(k, "allow-suffix", 12) == 0) {
			if (!label_ok(val, vl) || c.n_suffixes >= SHIM_MAX_CONF_ITEMS)
				goto bad;
			c.suffixes[c.n_suffixes][0] = '.';
			memcpy(c.suffixes[c.n_suffixes] + 1, val, vl + 1);
			c.n_suffixes++;
		} else
			goto bad;
	}
	*conf = c;
	return 0;
bad:
	*ret_line = line;
	return -EINVAL;
}

/* Find a line equal to `marker` at or after `from`; returns its offset or -1. */
static long find_line(const char *s, size_t n, size_t from, const char *marker)
{
	size_t ml = strlen(marker);
	for (size_t i = from; i < n;) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t le = nl ? (size_t)(nl - s) : n;
		size_t l = le - i;
		if (l > 0 && s[le - 1] == '\r')
			l--;
		if (l == ml && memcmp(s + i, marker, ml) == 0)
			return (long)i;
		i = le + 1;
	}
	return -1;
}

static size_t line_end(const char *s, size_t n, size_t at)
{
	const char *nl = memchr(s + at, '\n', n - at);
	return nl ? (size_t)(nl - s) + 1 : n;
}

int shim_hosts_rewrite(const char *in, size_t in_len, char *const *names, size_t n_names,
		       char **ret, size_t *ret_len)
{
	long b = find_line(in, in_len, 0, SHIM_HOSTS_BEGIN);
	long e = find_line(in, in_len, 0, SHIM_HOSTS_END);
	size_t head, tail;

	if (b < 0 && e < 0)
		head = tail = in_len;
	else if (b < 0 || e < 0 || e < b)
		return -EBADMSG;
	else {
		size_t after = line_end(in, in_len, (size_t)e);
		/* A second block, or a BEGIN inside the block, means the markers are not ours. */
		if (find_line(in, in_len, (size_t)b + 1, SHIM_HOSTS_BEGIN) >= 0 ||
		    find_line(in, in_len, after, SHIM_HOSTS_END) >= 0)
			return -EBADMSG;
		head = (size_t)b;
		tail = after;
	}

	bool need_nl = n_names > 0 && head == in_len && head > 0 && in[head - 1] != '\n';
	size_t size = in_len + 64;
	for (size_t i = 0; i < n_names; i++)
		size += 2 * strlen(names[i]) + 16;
	char *out = malloc(size), *p = out;
	if (!out)
		return -ENOMEM;
	memcpy(p, in, head);
	p += head;
	if (need_nl)
		*p++ = '\n';
	if (n_names > 0) {
		p += (size_t)snprintf(p, (size_t)(out + size - p), "%s\n", SHIM_HOSTS_BEGIN);
		for (size_t i = 0; i < n_names; i++)
			p += (size_t)snprintf(p, (size_t)(out + size - p), "127.0.0.1 %s\n::1 %s\n",
					      names[i], names[i]);
		p += (size_t)snprintf(p, (size_t)(out + size - p), "%s\n", SHIM_HOSTS_END);
	}
	memcpy(p, in + tail, in_len - tail);
	p += in_len - tail;
	*ret = out;
	*ret_len = (size_t)(p - out);
	return 0;
}
