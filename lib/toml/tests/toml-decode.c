/* SPDX-License-Identifier: MIT */
/*
 * The toml-test decoder: a TOML document on stdin, toml-test's tagged JSON on stdout
 * ({"type":"integer","value":"42"} for scalars, JSON arrays and objects for arrays and
 * tables). Invalid input: exit 1 with the one-line error on stderr.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "toml.h"

#define INPUT_MAX (64u << 20)

static int read_all(int fd, Buf *b)
{
	for (;;) {
		int r = buf_reserve(b, 64 * 1024);
		if (r < 0)
			return r;
		ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		b->len += (size_t)n;
		b->data[b->len] = 0;
	}
}

static void json_string(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			/* Everything else below 0x20 (NUL included) as \u00XX; UTF-8 as is. */
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

/* The shortest decimal that reads back as exactly d. */
static void format_float(double d, char *buf, size_t size)
{
	if (isnan(d)) {
		snprintf(buf, size, "nan");
		return;
	}
	if (isinf(d)) {
		snprintf(buf, size, "%sinf", d < 0 ? "-" : "");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

static void json_tagged(FILE *f, const char *type, const char *value, size_t len)
{
	fprintf(f, "{\"type\":\"%s\",\"value\":", type);
	json_string(f, value, len);
	fputc('}', f);
}

static void json_value(FILE *f, const TomlValue *v)
{
	char buf[64];

	switch (toml_type(v)) {
	case TOML_STRING: {
		size_t len;
		const char *s = toml_string(v, &len);
		json_tagged(f, "string", s, len);
		break;
	}
	case TOML_INTEGER:
		snprintf(buf, sizeof(buf), "%" PRId64, toml_integer(v));
		json_tagged(f, "integer", buf, strlen(buf));
		break;
	case TOML_FLOAT:
		format_float(toml_float(v), buf, sizeof(buf));
		json_tagged(f, "float", buf, strlen(buf));
		break;
	case TOML_BOOL:
		json_tagged(f, "bool", toml_bool(v) ? "true" : "false", toml_bool(v) ? 4 : 5);
		break;
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL: {
		static const char *const tags[] = {
			[TOML_DATETIME] = "datetime",
			[TOML_DATETIME_LOCAL] = "datetime-local",
			[TOML_DATE_LOCAL] = "date-local",
			[TOML_TIME_LOCAL] = "time-local",
		};
		const char *s = toml_datetime(v);
		json_tagged(f, tags[toml_type(v)], s, strlen(s));
		break;
	}
	case TOML_ARRAY:
		fputc('[', f);
		for (size_t i = 0; i < toml_array_size(v); i++) {
			if (i > 0)
				fputc(',', f);
			json_value(f, toml_array_get(v, i));
		}
		fputc(']', f);
		break;
	case TOML_TABLE:
		fputc('{', f);
		for (size_t i = 0; i < toml_table_size(v); i++) {
			size_t len;
			const char *key = toml_table_key_n(v, i, &len, NULL);
			if (i > 0)
				fputc(',', f);
			json_string(f, key, len);
			fputc(':', f);
			json_value(f, toml_table_value(v, i));
		}
		fputc('}', f);
		break;
	default:
		abort();
	}
}

int main(void)
{
	_cleanup_buf_ Buf in = BUF_INIT(INPUT_MAX);
	int r = read_all(STDIN_FILENO, &in);
	if (r < 0) {
		fprintf(stderr, "toml-decode: reading stdin: %s\n", strerror(-r));
		return 2;
	}

	TomlValue *root = NULL;
	TomlError err;
	TomlLimits limits = { .max_input = INPUT_MAX };
	r = toml_parse(in.data, in.len, &limits, &root, &err);
	if (r < 0) {
		char line[512];
		toml_error_format(&err, "<stdin>", line, sizeof(line));
		fprintf(stderr, "%s\n", line);
		return 1;
	}
	json_value(stdout, root);
	fputc('\n', stdout);
	toml_free(root);
	return fflush(stdout) == 0 ? 0 : 2;
}
