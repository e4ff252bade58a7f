/* SPDX-License-Identifier: MIT */
/*
 * proxyd's configuration: defaults, then the [proxy] table of <config>/locald.toml, then
 * LOCALD_HTTP_PORT / LOCALD_HTTPS_PORT. Other tables of that file belong to other
 * daemons and are not looked at; an unknown key inside [proxy] is an error, reported as
 * file:line:col so a typo never silently keeps a default.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "parse-util.h"
#include "paths.h"
#include "proxyd.h"
#include "strutil.h"
#include "toml.h"

#define CONFIG_FILE_MAX (1u << 20)

static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return (unsigned)MIN(n, 4L);
}

static void config_defaults(ProxydConfig *c)
{
	*c = (ProxydConfig){
		.http_port = -1,
		.https_port = -1,
		.ipv6 = true,
		.workers = default_workers(),
		.connect_timeout_ms = 5000,
		.upstream_timeout_ms = 0,
		.start_wait_ms = 30000,
		.loading_page_ms = 500,
		.client_idle_ms = 75000,
		.header_timeout_ms = 30000,
		.max_connections_per_client = 4096,
		.h2_max_concurrent_streams = 128,
		.h2_max_header_list = 64 * 1024,
		.h1_limits = { .max_start_line = 8 * 1024,
			       .max_head_bytes = 64 * 1024,
			       .max_fields = 100 },
	};
}

typedef enum KeyKind {
	KEY_PORT,
	KEY_UINT,
	KEY_DURATION,
	KEY_BOOL,
} KeyKind;

typedef struct KeyDef {
	const char *name;
	KeyKind kind;
	size_t offset;
	size_t size; /* of the field: 4 or 8 (uints), sizeof(bool) */
	uint64_t min, max;
} KeyDef;

#define FIELD(f) offsetof(ProxydConfig, f), sizeof(((ProxydConfig *)0)->f)

static const KeyDef keys[] = {
	{ "http_port", KEY_PORT, FIELD(http_port), 0, 65535 },
	{ "https_port", KEY_PORT, FIELD(https_port), 0, 65535 },
	{ "ipv6", KEY_BOOL, FIELD(ipv6), 0, 1 },
	{ "workers", KEY_UINT, FIELD(workers), 1, 64 },
	{ "connect_timeout", KEY_DURATION, FIELD(connect_timeout_ms), 1, UINT32_MAX },
	{ "upstream_timeout", KEY_DURATION, FIELD(upstream_timeout_ms), 0, UINT32_MAX },
	{ "start_timeout", KEY_DURATION, FIELD(start_wait_ms), 0, UINT32_MAX },
	{ "loading_page_after", KEY_DURATION, FIELD(loading_page_ms), 0, UINT32_MAX },
	{ "client_idle_timeout", KEY_DURATION, FIELD(client_idle_ms), 0, UINT32_MAX },
	{ "header_timeout", KEY_DURATION, FIELD(header_timeout_ms), 1, UINT32_MAX },
	{ "max_connections_per_client", KEY_UINT, FIELD(max_connections_per_client), 1, 1000000 },
	{ "h2_max_concurrent_streams", KEY_UINT, FIELD(h2_max_concurrent_streams), 1, 100000 },
	{ "h2_max_header_list", KEY_UINT, FIELD(h2_max_header_list), 1024, 16u << 20 },
	{ "max_request_line", KEY_UINT, FIELD(h1_limits.max_start_line), 256, 1u << 20 },
	{ "max_header_bytes", KEY_UINT, FIELD(h1_limits.max_head_bytes), 1024, 16u << 20 },
	{ "max_header_fields", KEY_UINT, FIELD(h1_limits.max_fields), 4, 10000 },
};

static void store_uint(void *field, size_t size, uint64_t v)
{
	if (size == sizeof(uint64_t))
		*(uint64_t *)field = v;
	else if (size == sizeof(uint32_t))
		*(uint32_t *)field = (uint32_t)v;
	else
		*(uint16_t *)field = (uint16_t)v;
}

static int fail(char **error, const char *file, TomlPos pos, const char *fmt, ...) _printf_(4, 5);
static int fail(char **error, const char *file, TomlPos pos, const char *fmt, ...)
{
	char msg[512];
	if (file && pos.line)
		(void)snprintf(msg, sizeof msg, "%s:%u:%u: ", file, pos.line, pos.col);
	else if (file)
		(void)snprintf(msg, sizeof msg, "%s: ", file);
	else
		msg[0] = 0;
	size_t l = strlen(msg);
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(msg + l, sizeof msg - l, fmt, ap);
	va_end(ap);
	if (error)
		*error = strdup(msg);
	return -EINVAL;
}

static int apply_key(ProxydConfig *c, const KeyDef *k, const TomlValue *v, const char *file,
		     TomlPos pos, char **error)
{
	void *field = (char *)c + k->offset;
	uint64_t u;
	switch (k->kind) {
	case KEY_BOOL:
		if (toml_type(v) != TOML_BOOL)
			return fail(error, file, pos, "[proxy] %s: expected a boolean, got %s",
				    k->name, toml_type_to_string(toml_type(v)));
		*(bool *)field = toml_bool(v);
		return 0;
	case KEY_PORT:
	case KEY_UINT:
		if (toml_type(v) != TOML_INTEGER)
			return fail(error, file, pos, "[proxy] %s: expected an integer, got %s",
				    k->name, toml_type_to_string(toml_type(v)));
		if (toml_integer(v) < (int64_t)k->min || (uint64_t)toml_integer(v) > k->max) {
			char range[64];
			(void)snprintf(range, sizeof range, "%" PRIu64 "..%" PRIu64, k->min,
				       k->max);
			return fail(error, file, pos, "[proxy] %s: out of range (%s)", k->name,
				    range);
		}
		if (k->kind == KEY_PORT)
			*(int *)field = (int)toml_integer(v);
		else
			store_uint(field, k->size, (uint64_t)toml_integer(v));
		return 0;
	case KEY_DURATION:
		if (toml_type(v) == TOML_INTEGER && toml_integer(v) >= 0 &&
		    toml_integer(v) <= (int64_t)(UINT32_MAX / 1000))
			u = (uint64_t)toml_integer(v) * 1000;
		else if (toml_type(v) == TOML_STRING) {
			const char *s = toml_string(v, NULL);
			if (parse_duration_ms(s, &u) < 0)
				return fail(
				    error, file, pos,
				    "[proxy] %s: \"%s\" is not a duration (e.g. \"5s\", \"250ms\", "
				    "\"2m\")",
				    k->name, s);
		} else
			return fail(error, file, pos,
				    "[proxy] %s: expected a duration string such as \"5s\", got %s",
				    k->name, toml_type_to_string(toml_type(v)));
		if (u < k->min)
			return fail(error, file, pos, "[proxy] %s: must be greater than zero",
				    k->name);
		store_uint(field, k->size, u);
		return 0;
	}
	return -EINVAL;
}

static int read_file(const char *path, Buf *ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		int r = buf_reserve(ret, 64 * 1024);
		if (r < 0)
			return r;
		ssize_t n = read(fd, ret->data + ret->len, ret->cap - ret->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		ret->len += (size_t)n;
		ret->data[ret->len] = 0;
	}
	return 0;
}

static int load_file(ProxydConfig *c, const char *path, char **error)
{
	_cleanup_buf_ Buf data = BUF_INIT(CONFIG_FILE_MAX);
	int r = read_file(path, &data);
	if (r == -ENOENT)
		return 0;
	if (r == -E2BIG)
		return fail(error, path, (TomlPos){ 0 }, "larger than 1 MiB");
	if (r < 0) {
		if (error)
			*error = strdupf("%s: %s", path, strerror(-r));
		return r;
	}

	TomlValue *root = NULL;
	TomlError terr;
	r = toml_parse(data.data ? data.data : "", data.len, NULL, &root, &terr);
	if (r < 0) {
		char msg[512];
		toml_error_format(&terr, path, msg, sizeof msg);
		if (error)
			*error = strdup(msg);
		return r;
	}

	TomlPos tpos;
	const TomlValue *proxy = toml_table_get(root, "proxy", &tpos);
	if (!proxy)
		goto out;
	if (toml_type(proxy) != TOML_TABLE) {
		r = fail(error, path, tpos, "proxy: expected a table ([proxy]), got %s",
			 toml_type_to_string(toml_type(proxy)));
		goto out;
	}
	for (size_t i = 0; i < toml_table_size(proxy); i++) {
		TomlPos kpos;
		const char *name = toml_table_key(proxy, i, &kpos);
		const KeyDef *k = NULL;
		for (size_t j = 0; j < ELEMENTSOF(keys); j++)
			if (streq(keys[j].name, name)) {
				k = &keys[j];
				break;
			}
		if (!k) {
			r = fail(error, path, kpos, "unknown key \"%s\" in [proxy]", name);
			goto out;
		}
		r = apply_key(c, k, toml_table_value(proxy, i), path, kpos, error);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	toml_free(root);
	return r;
}

static int env_port(const char *name, int *ret, char **error)
{
	const char *e = getenv(name);
	uint16_t port;
	if (isempty(e))
		return 0;
	if (streq(e, "0")) {
		*ret = 0;
		return 0;
	}
	if (parse_port(e, &port) < 0) {
		if (error)
			*error = strdupf("$%s: \"%s\" is not a port (0-65535, 0 = any)", name, e);
		return -EINVAL;
	}
	*ret = port;
	return 0;
}

int proxyd_config_load(ProxydConfig *ret, char **error)
{
	ProxydConfig c;
	_cleanup_free_ char *dir = NULL, *path = NULL;
	config_defaults(&c);

	int r = locald_config_dir(&dir);
	if (r < 0) {
		if (error)
			*error = strdupf("config directory: %s", strerror(-r));
		return r;
	}
	path = path_join(dir, "locald.toml");
	if (!path)
		return -ENOMEM;
	r = load_file(&c, path, error);
	if (r < 0)
		return r;
	r = env_port("LOCALD_HTTP_PORT", &c.http_port, error);
	if (r < 0)
		return r;
	r = env_port("LOCALD_HTTPS_PORT", &c.https_port, error);
	if (r < 0)
		return r;
	*ret = c;
	return 0;
}
