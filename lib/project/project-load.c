/* SPDX-License-Identifier: MIT */
/* Entry points: find and read a project's files (bounded), then parse and validate. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "project-internal.h"
#include "strutil.h"

int project_parse(const ProjectInput *in, Project **ret, DiagList *diags)
{
	if (!in->dir || in->dir[0] != '/' || !in->config_path || (!in->config && in->config_len))
		return -EINVAL;

	_cleanup_project_ Project *p = NULL;
	int r = project_new(in, &p);
	if (r < 0)
		return r;

	const char *data = in->config ? in->config : "";
	switch (in->source) {
	case PROJECT_SOURCE_TOML:
		r = project_parse_toml(p, data, in->config_len, diags);
		break;
	case PROJECT_SOURCE_PROCFILE:
		r = project_parse_procfile(p, data, in->config_len, diags);
		break;
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;

	if (in->dotenv) {
		const char *file = in->dotenv_path ? in->dotenv_path : ".env";
		if (in->dotenv_len > PROJECT_DOTENV_MAX)
			(void)diag_add(diags, DIAG_ERROR, file, 0, 0, NULL,
				       "file is larger than %u bytes", PROJECT_DOTENV_MAX);
		else if ((r = dotenv_parse(in->dotenv, in->dotenv_len, file, &p->env, diags)) < 0)
			return r;
	}

	r = project_finish(p, diags);
	if (r < 0)
		return r;
	if (diags->oom)
		return -ENOMEM;
	*ret = TAKE_PTR(p);
	return 0;
}

int project_load_memory(const ProjectInput *in, Project **ret, DiagList *diags)
{
	size_t errors_before = diags->n_errors;
	_cleanup_project_ Project *p = NULL;

	if (in->config_len > PROJECT_CONFIG_MAX) {
		(void)diag_add(diags, DIAG_ERROR, in->config_path, 0, 0,
			       "a project file is hand-written and small; is this the right file?",
			       "file is larger than %u bytes", PROJECT_CONFIG_MAX);
		return -EFBIG;
	}
	int r = project_parse(in, &p, diags);
	if (r < 0)
		return r;
	r = project_validate(p, diags);
	if (r < 0)
		return r;
	if (diags->n_errors > errors_before)
		return -EINVAL;
	*ret = TAKE_PTR(p);
	return 0;
}

/*
 * Read a whole regular file of at most `max` bytes. O_NONBLOCK so that a FIFO planted
 * where a config is expected cannot hang us in open(); we then refuse non-regular files.
 */
static int read_bounded(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	struct stat st;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;

	_cleanup_buf_ Buf b = BUF_INIT(max);
	for (;;) {
		char probe;
		bool full = b.len == max; /* then one more byte means the file grew too big */
		if (!full) {
			int r = buf_reserve(&b, MIN(max - b.len, (size_t)64 * 1024));
			if (r < 0)
				return r;
		}
		/* buf caps cap at max + 1, so this never reads past max. */
		ssize_t n =
		    full ? read(fd, &probe, 1) : read(fd, b.data + b.len, b.cap - 1 - b.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			break;
		if (full)
			return -EFBIG;
		b.len += (size_t)n;
		b.data[b.len] = 0;
	}
	*ret = buf_steal(&b, ret_len);
	return 0;
}

static bool file_exists(int dir_fd, const char *name)
{
	struct stat st;
	return fstatat(dir_fd, name, &st, 0) >= 0 && S_ISREG(st.st_mode);
}

static int read_error(DiagList *diags, const char *path, int r, size_t max)
{
	if (r == -EFBIG)
		(void)diag_add(diags, DIAG_ERROR, path, 0, 0,
			       "a project file is hand-written and small; is this the right file?",
			       "file is larger than %zu bytes", max);
	else if (r == -EBADFD)
		(void)diag_add(diags, DIAG_ERROR, path, 0, 0, NULL, "not a regular file");
	else
		(void)diag_add(diags, DIAG_ERROR, path, 0, 0, NULL, "cannot read: %s",
			       strerror(-r));
	return r;
}

int project_load(const char *path, Project **ret, DiagList *diags)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		int r = negative_errno();
		(void)diag_add(diags, DIAG_ERROR, path, 0, 0,
			       r == -ENOENT ? "give a project directory or its locald.toml" : NULL,
			       "cannot open: %s", strerror(-r));
		return r;
	}

	/* The directory, made absolute (it anchors workdir/path and is the project's id),
	 * and the config file's name in it, if one was given. */
	_cleanup_free_ char *dir = NULL, *name = NULL;
	if (S_ISDIR(st.st_mode))
		dir = realpath(path, NULL);
	else {
		const char *slash = strrchr(path, '/');
		_cleanup_free_ char *parent =
		    slash ? strndup_safe(path, (size_t)(slash - path)) : strdup(".");
		if (!parent || !(name = strdup(slash ? slash + 1 : path)))
			return -ENOMEM;
		dir = realpath(isempty(parent) ? "/" : parent, NULL);
	}
	if (!dir) {
		int r = negative_errno();
		(void)diag_add(diags, DIAG_ERROR, path, 0, 0, NULL, "cannot resolve: %s",
			       strerror(-r));
		return r;
	}
	_cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return read_error(diags, dir, negative_errno(), 0);

	if (!name) {
		/* Both present: locald.toml wins, as in the original. */
		const char *pick = file_exists(dir_fd, "locald.toml") ? "locald.toml"
				   : file_exists(dir_fd, "Procfile")  ? "Procfile"
								      : NULL;
		if (!pick) {
			(void)diag_add(diags, DIAG_ERROR, dir, 0, 0,
				       "create one with `localctl init`, or write a Procfile",
				       "no locald.toml or Procfile here");
			return -ENOENT;
		}
		if (!(name = strdup(pick)))
			return -ENOMEM;
	}

	_cleanup_free_ char *config_path = path_join(dir, name);
	_cleanup_free_ char *dotenv_path = path_join(dir, ".env");
	if (!config_path || !dotenv_path)
		return -ENOMEM;

	_cleanup_free_ char *config = NULL, *dotenv = NULL;
	size_t config_len = 0, dotenv_len = 0;
	int r = read_bounded(dir_fd, name, PROJECT_CONFIG_MAX, &config, &config_len);
	if (r < 0)
		return read_error(diags, config_path, r, PROJECT_CONFIG_MAX);
	r = read_bounded(dir_fd, ".env", PROJECT_DOTENV_MAX, &dotenv, &dotenv_len);
	if (r == -ENOENT) {
		free(dotenv_path);
		dotenv_path = NULL;
	} else if (r < 0)
		return read_error(diags, dotenv_path, r, PROJECT_DOTENV_MAX);

	ProjectInput in = {
		.source = streq(name, "Procfile") ? PROJECT_SOURCE_PROCFILE : PROJECT_SOURCE_TOML,
		.dir = dir,
		.config_path = config_path,
		.config = config,
		.config_len = config_len,
		.dotenv_path = dotenv_path,
		.dotenv = dotenv,
		.dotenv_len = dotenv_len,
	};
	return project_load_memory(&in, ret, diags);
}
