/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers shared by the project tests: write real files, load them, find diagnostics. */

#include "project.h"
#include "test.h"

/* Write `content` to dir/name (dir is created if missing). Fails the test on error. */
void write_file(const char *dir, const char *name, const char *content);

/* A fresh directory under test_tmpdir() named `name`; returns its path (static storage
 * per call is not kept: the result is heap, owned by the caller). */
char *make_dir(const char *name);

/* Write `toml` as <tmp>/<dirname>/locald.toml and project_load() that directory. */
int load_toml_in(const char *dirname, const char *toml, Project **ret, DiagList *diags);
int load_toml(const char *toml, Project **ret, DiagList *diags);

/* Every diagnostic formatted, one per line (for failure messages). Heap. */
char *diags_dump(const DiagList *d);

/*
 * The diagnostic of `severity` at line:col whose message contains `needle`
 * (line/col 0 = any). Fails the test, printing all diagnostics, if there is none.
 */
const Diag *assert_diag(const char *file, int line, const DiagList *d, DiagSeverity severity,
			uint32_t at_line, uint32_t at_col, const char *needle);
#define ASSERT_DIAG(d, sev, l, c, needle)                                                          \
	assert_diag(__FILE__, __LINE__, (d), (sev), (l), (c), (needle))

/* Fails the test (printing them) if d holds any error / any diagnostic at all. */
void assert_no_errors(const char *file, int line, const DiagList *d);
void assert_clean(const char *file, int line, const DiagList *d);
#define ASSERT_NO_ERRORS(d) assert_no_errors(__FILE__, __LINE__, (d))
#define ASSERT_CLEAN(d) assert_clean(__FILE__, __LINE__, (d))
