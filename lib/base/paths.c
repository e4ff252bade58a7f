/* SPDX-License-Identifier: MIT */
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "strutil.h"

char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	if (!*b)
		return strndup_safe(a, la);
	if (la == 1 && a[0] == '/')
		la = 0;
	return strdupf("%.*s/%s", (int)la, a, b);
}

static int home_dir(const char **ret)
{
	const char *h = getenv("HOME");
	if (h && h[0] == '/') {
		*ret = h;
		return 0;
	}
	struct passwd *pw = getpwuid(getuid());
	if (!pw || !pw->pw_dir || pw->pw_dir[0] != '/')
		return -ENXIO;
	*ret = pw->pw_dir;
	return 0;
}

/* $override as is (absolute only), else $xdg/locald, else $HOME/<fallback>/locald. */
static int xdg_dir(const char *override, const char *xdg, const char *fallback, char **ret)
{
	const char *e = getenv(override);
	char *p;
	if (!isempty(e)) {
		if (e[0] != '/')
			return -EINVAL;
		p = strdup(e);
	} else if (!isempty(e = getenv(xdg)) && e[0] == '/') {
		/* XDG says relative values are invalid and must be ignored. */
		p = path_join(e, "locald");
	} else {
		const char *home;
		int r = home_dir(&home);
		if (r < 0)
			return r;
		p = strdupf("%s/%s/locald", home, fallback);
	}
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

int locald_runtime_dir(char **ret)
{
	const char *e = getenv("LOCALD_RUNTIME_DIR");
	char *p;
	if (!isempty(e)) {
		if (e[0] != '/')
			return -EINVAL;
		p = strdup(e);
	} else if (!isempty(e = getenv("XDG_RUNTIME_DIR")) && e[0] == '/')
		p = path_join(e, "locald");
	else
		p = strdupf("/tmp/locald-%u", (unsigned)getuid());
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

int locald_state_dir(char **ret)
{
	return xdg_dir("LOCALD_STATE_DIR", "XDG_STATE_HOME", ".local/state", ret);
}

int locald_config_dir(char **ret)
{
	return xdg_dir("LOCALD_CONFIG_DIR", "XDG_CONFIG_HOME", ".config", ret);
}

int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != 0)
			continue;
		char saved = *s;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = saved;
		if (!saved)
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int locald_runtime_dir_ensure(char **ret)
{
	_cleanup_free_ char *p = NULL;
	int r = locald_runtime_dir(&p);
	if (r < 0)
		return r;

	/* Parents may be shared (/tmp); only the last component is ours and created 0700. */
	_cleanup_free_ char *parent = strdup(p);
	if (!parent)
		return -ENOMEM;
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		r = mkdir_p(parent, 0755);
		if (r < 0)
			return r;
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;

	/* O_NOFOLLOW|O_DIRECTORY: someone else's symlink planted in /tmp is refused. */
	_cleanup_close_ int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -ENOTDIR : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != geteuid())
		return -EPERM;
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		return -errno;
	*ret = TAKE_PTR(p);
	return 0;
}

static int ensure(int (*get)(char **), char **ret)
{
	_cleanup_free_ char *p = NULL;
	int r = get(&p);
	if (r < 0)
		return r;
	r = mkdir_p(p, 0700);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(p);
	return 0;
}

int locald_state_dir_ensure(char **ret)
{
	return ensure(locald_state_dir, ret);
}

int locald_config_dir_ensure(char **ret)
{
	return ensure(locald_config_dir, ret);
}
