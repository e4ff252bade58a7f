/* SPDX-License-Identifier: MIT */
/*
 * Copy-up: bring a lower object into the upper before it changes. The copy is built
 * in the work directory (data with copy_file_range, so reflinks where the filesystem
 * has them; then xattrs, owner, mode, times) and renamed into place, so the upper
 * never shows a half-copied file. Directories are copied up ancestors first. Runs
 * with ns_lock held exclusive.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsd.h"

#define XATTR_LIST_MAX_ 65536

void work_tmpname(Fs *fs, char buf[static 64])
{
	uint64_t s = __atomic_add_fetch(&fs->tmp_seq, 1, __ATOMIC_RELAXED);
	snprintf(buf, 64, "#fsd-%d-%llu", (int)getpid(), (unsigned long long)s);
}

static int copy_xattrs(int src, int dst, bool symlink)
{
	if (symlink)
		return 0; /* no race-free xattr calls on symlinks through O_PATH fds */
	char sp[32], dp[32];
	fd_path(src, sp);
	fd_path(dst, dp);
	_cleanup_free_ char *list = malloc(XATTR_LIST_MAX_);
	if (!list)
		return -ENOMEM;
	ssize_t n = listxattr(sp, list, XATTR_LIST_MAX_);
	if (n < 0)
		return errno == ENOTSUP ? 0 : -errno;
	_cleanup_free_ char *val = malloc(XATTR_LIST_MAX_);
	if (!val)
		return -ENOMEM;
	for (char *k = list; k < list + n; k += strlen(k) + 1) {
		if (xattr_is_private(k))
			continue;
		ssize_t v = getxattr(sp, k, val, XATTR_LIST_MAX_);
		if (v < 0)
			continue;
		if (setxattr(dp, k, val, (size_t)v, 0) < 0 && errno != ENOTSUP && errno != EPERM)
			return -errno;
	}
	return 0;
}

int copy_attrs(Fs *fs, int src, int dst, const struct stat *st)
{
	bool lnk = S_ISLNK(st->st_mode);
	int r = copy_xattrs(src, dst, lnk);
	if (r < 0)
		return r;
	if (fchownat(dst, "", st->st_uid, st->st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno != EPERM)
		return -errno;
	if (!lnk) {
		char dp[32];
		fd_path(dst, dp);
		if (chmod(dp, st->st_mode & 07777) < 0)
			return -errno;
	}
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	if (utimensat(dst, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int work_dirfd(Fs *fs)
{
	char p[32];
	fd_path(fs->work_fd, p);
	int d = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return d < 0 ? -errno : d;
}

int copy_up_dir(Fs *fs, Node *n)
{
	if (dir_has_part(n, FSD_UPPER))
		return 0;
	if (!n->parent)
		return -ESTALE;
	int r = copy_up_dir(fs, n->parent);
	if (r < 0)
		return r;
	PIN(fs, n, src);
	if (src < 0)
		return src;
	struct stat st;
	if (fstatat(src, "", &st, AT_EMPTY_PATH) < 0)
		return -errno;
	_cleanup_close_ int w = work_dirfd(fs);
	if (w < 0)
		return w;
	_cleanup_close_ int pu = node_upper_dir_open(fs, n->parent);
	if (pu < 0)
		return pu;
	char tmp[64];
	work_tmpname(fs, tmp);
	if (mkdirat(w, tmp, 0700) < 0)
		return -errno;
	_cleanup_close_ int f = openat(w, tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0)
		r = -errno;
	else
		r = copy_attrs(fs, src, f, &st);
	if (r >= 0 && renameat(w, tmp, pu, n->name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(w, tmp, AT_REMOVEDIR);
		return r;
	}
	struct stat ust;
	if (fstat(f, &ust) == 0)
		fs_ino_remember(fs, ust.st_ino, n->ino);
	node_keep_dir_fd(fs, n, FSD_UPPER, TAKE_FD(f));
	n->layer = FSD_UPPER;
	STAT_INC(fs, copy_ups);
	return 0;
}

static int copy_data(int in, int out, off_t size)
{
	off_t done = 0;
	while (done < size) {
		ssize_t k = copy_file_range(in, NULL, out, NULL,
					    (size_t)MIN(size - done, (off_t)1 << 30), 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP &&
			    errno != EINVAL)
				return -errno;
			break;
		}
		if (k == 0)
			break;
		done += k;
	}
	if (done >= size)
		return 0;
	char buf[128 * 1024];
	while (done < size) {
		ssize_t k = pread(in, buf, sizeof buf, done);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		for (ssize_t w = 0; w < k;) {
			ssize_t m = pwrite(out, buf + w, (size_t)(k - w), done + w);
			if (m < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			w += m;
		}
		done += k;
	}
	return 0;
}

int copy_up(Fs *fs, Node *n, bool with_data)
{
	if (node_is_dir(n))
		return copy_up_dir(fs, n);
	if (n->layer == FSD_UPPER)
		return 0;
	if (!n->parent)
		return -ESTALE; /* removed from the namespace meanwhile */
	int r = copy_up_dir(fs, n->parent);
	if (r < 0)
		return r;
	PIN(fs, n, src);
	if (src < 0)
		return src;
	struct stat st;
	if (fstatat(src, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	_cleanup_close_ int w = work_dirfd(fs);
	if (w < 0)
		return w;
	_cleanup_close_ int pu = node_upper_dir_open(fs, n->parent);
	if (pu < 0)
		return pu;
	char tmp[64];
	work_tmpname(fs, tmp);

	if (S_ISREG(st.st_mode)) {
		_cleanup_close_ int out =
		    openat(w, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (out < 0)
			return -errno;
		if (with_data && st.st_size > 0) {
			char sp[32];
			fd_path(src, sp);
			_cleanup_close_ int in = open(sp, O_RDONLY | O_CLOEXEC);
			if (in < 0)
				r = -errno;
			else
				r = copy_data(in, out, st.st_size);
		}
	} else if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX + 1];
		ssize_t k = readlinkat(src, "", target, sizeof target - 1);
		if (k < 0)
			return -errno;
		target[k] = 0;
		if (symlinkat(target, w, tmp) < 0)
			return -errno;
	} else {
		if (mknodat(w, tmp, st.st_mode & (S_IFMT | 0777), st.st_rdev) < 0)
			return -errno;
	}
	_cleanup_close_ int f = -1;
	if (r >= 0) {
		f = openat(w, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (f < 0)
			r = -errno;
	}
	if (r >= 0)
		r = copy_attrs(fs, src, f, &st);
	if (r >= 0 && renameat(w, tmp, pu, n->name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(w, tmp, 0);
		return r;
	}
	struct stat ust;
	if (fstat(f, &ust) == 0)
		fs_ino_remember(fs, ust.st_ino, n->ino);
	node_keep_fd(fs, n, TAKE_FD(f));
	n->layer = FSD_UPPER;
	STAT_INC(fs, copy_ups);
	return 0;
}
