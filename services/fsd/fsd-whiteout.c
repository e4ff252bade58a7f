/* SPDX-License-Identifier: MIT */
/*
 * Whiteouts and opaque directories in the kernel overlayfs format: a whiteout is a
 * 0/0 character device (any user may make one since Linux 5.8, in a user namespace
 * too), an opaque directory carries trusted.overlay.opaque="y" where the kernel lets
 * us set trusted.* xattrs (real root) or user.overlay.opaque="y" elsewhere (rootless,
 * the form overlayfs reads with `-o userxattr`); fsd-layers.c probes which. Where
 * mknod of 0/0 is not permitted, the aufs form fuse-overlayfs also writes: an empty
 * ".wh.<name>" file; both forms are read.
 */

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsd.h"
#include "strutil.h"

bool st_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

bool xattr_is_private(const char *name)
{
	return startswith(name, "trusted.overlay.") || startswith(name, "user.overlay.");
}

bool dir_is_opaque(Fs *fs, int dirfd)
{
	char p[32], v[4];
	fd_path(dirfd, p);
	ssize_t n = getxattr(p, "trusted.overlay.opaque", v, sizeof v);
	if (n == 1 && v[0] == 'y')
		return true;
	n = getxattr(p, "user.overlay.opaque", v, sizeof v);
	if (n == 1 && v[0] == 'y')
		return true;
	if (fs->aufs_whiteouts) {
		struct stat st;
		if (fstatat(dirfd, ".wh..wh..opq", &st, AT_SYMLINK_NOFOLLOW) == 0)
			return true;
	}
	return false;
}

int dir_set_opaque(Fs *fs, int dirfd)
{
	char p[32];
	fd_path(dirfd, p);
	if (setxattr(p, fs->opaque_xattr, "y", 1, 0) == 0)
		return 0;
	if (!fs->aufs_whiteouts)
		return -errno;
	_cleanup_close_ int d = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return -errno;
	int f = openat(d, ".wh..wh..opq", O_CREAT | O_WRONLY | O_CLOEXEC, 0);
	if (f < 0)
		return -errno;
	close(f);
	return 0;
}

static int open_dir_rw(int dirfd)
{
	char p[32];
	fd_path(dirfd, p);
	int d = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return d < 0 ? -errno : d;
}

int whiteout_create(Fs *fs, int dirfd, const char *name)
{
	_cleanup_close_ int d = open_dir_rw(dirfd);
	if (d < 0)
		return d;
	STAT_INC(fs, whiteouts);
	if (!fs->aufs_whiteouts) {
		if (mknodat(d, name, S_IFCHR | 0, makedev(0, 0)) < 0)
			return -errno;
		return 0;
	}
	char wh[NAME_MAX + 8];
	if (snprintf(wh, sizeof wh, ".wh.%s", name) >= (int)sizeof wh)
		return -ENAMETOOLONG;
	int f = openat(d, wh, O_CREAT | O_WRONLY | O_CLOEXEC, 0);
	if (f < 0)
		return -errno;
	close(f);
	return 0;
}

bool whiteout_aufs_exists(int dirfd, const char *name)
{
	char wh[NAME_MAX + 8];
	struct stat st;
	if (snprintf(wh, sizeof wh, ".wh.%s", name) >= (int)sizeof wh)
		return false;
	return fstatat(dirfd, wh, &st, AT_SYMLINK_NOFOLLOW) == 0;
}
