/* SPDX-License-Identifier: MIT */
#include "project-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "paths.h"
#include "strutil.h"

void write_file(const char *dir, const char *name, const char *content)
{
	if (mkdir_p(dir, 0755) < 0)
		test_fail(__FILE__, __LINE__, "mkdir_p(%s) failed", dir);
	_cleanup_free_ char *path = path_join(dir, name);
	ASSERT_NOT_NULL(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		test_fail(__FILE__, __LINE__, "open(%s): %s", path, strerror(errno));
	size_t n = strlen(content);
	ASSERT_EQ(write(fd, content, n), (ssize_t)n);
	close(fd);
}

char *make_dir(const char *name)
{
	char *dir = path_join(test_tmpdir(), name);
	ASSERT_NOT_NULL(dir);
	ASSERT_OK(mkdir_p(dir, 0755));
	return dir;
}

int load_toml_in(const char *dirname, const char *toml, Project **ret, DiagList *diags)
{
	_cleanup_free_ char *dir = make_dir(dirname);
	write_file(dir, "locald.toml", toml);
	return project_load(dir, ret, diags);
}

int load_toml(const char *toml, Project **ret, DiagList *diags)
{
	return load_toml_in("shop", toml, ret, diags);
}

char *diags_dump(const DiagList *d)
{
	Buf b = BUF_INIT(0);
	for (size_t i = 0; i < d->n; i++) {
		diag_format(&d->items[i], &b);
		buf_append_byte(&b, '\n');
	}
	return buf_steal(&b, NULL);
}

const Diag *assert_diag(const char *file, int line, const DiagList *d, DiagSeverity severity,
			uint32_t at_line, uint32_t at_col, const char *needle)
{
	for (size_t i = 0; i < d->n; i++) {
		const Diag *x = &d->items[i];
		if (x->severity == severity && (at_line == 0 || x->line == at_line) &&
		    (at_col == 0 || x->col == at_col) && strstr(x->message, needle))
			return x;
	}
	_cleanup_free_ char *all = diags_dump(d);
	test_fail(file, line, "no %s at %u:%u containing \"%s\"; diagnostics:\n%s",
		  diag_severity_to_string(severity), at_line, at_col, needle, all);
}

void assert_no_errors(const char *file, int line, const DiagList *d)
{
	if (d->n_errors == 0)
		return;
	_cleanup_free_ char *all = diags_dump(d);
	test_fail(file, line, "expected no errors; diagnostics:\n%s", all);
}

void assert_clean(const char *file, int line, const DiagList *d)
{
	if (d->n_errors == 0 && d->n_warnings == 0)
		return;
	_cleanup_free_ char *all = diags_dump(d);
	test_fail(file, line, "expected no diagnostics; got:\n%s", all);
}
