/* SPDX-License-Identifier: MIT */
/*
 * FUSE operations that change the merged view. Each holds ns_lock exclusive, copies
 * up what it touches, and leaves whiteouts where a lower object must stay hidden.
 * Errno values follow overlayfs (without redirect_dir: renaming a directory that has
 * lower parts is EXDEV, and `mv` falls back to copying).
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsd-ops.h"
#include "strutil.h"

/* Make sure `name` is free in the merged view of `dir` and that dir is in upper.
 * ret_whiteout: the upper holds a whiteout there (removed here). */
static int prepare_create(Fs *fs, Node *dir, const char *name, bool *ret_whiteout, int *ret_ufd)
{
	if (!node_is_dir(dir))
		return -ENOTDIR;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	Node *n;
	struct stat st;
	int r = fs_lookup(fs, dir, name, &n, &st);
	if (r == 0) {
		node_forget(fs, n, 1);
		return -EEXIST;
	}
	if (r != -ENOENT)
		return r;
	r = copy_up_dir(fs, dir);
	if (r < 0)
		return r;
	int d = node_upper_dir_open(fs, dir);
	if (d < 0)
		return d;
	bool wh = false;
	if (fstatat(d, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!st_is_whiteout(&st)) {
			close(d);
			return -EEXIST; /* an upper object we do not show: should not happen */
		}
		if (unlinkat(d, name, 0) < 0) {
			r = -errno;
			close(d);
			return r;
		}
		wh = true;
	} else if (fs->aufs_whiteouts && whiteout_aufs_exists(d, name)) {
		char w[NAME_MAX + 8];
		snprintf(w, sizeof w, ".wh.%s", name);
		(void)unlinkat(d, w, 0);
		wh = true;
	}
	*ret_whiteout = wh;
	*ret_ufd = d;
	return 0;
}

/* After creating parent/name in upper: owner from the caller, then the reply. */
static int finish_create(Fs *fs, fuse_req_t req, Node *dir, int ufd, const char *name, Node **ret,
			 struct stat *ret_st)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	if (ctx->uid != geteuid() || ctx->gid != getegid())
		if (fchownat(ufd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	return fs_lookup(fs, dir, name, ret, ret_st);
}

static void create_common(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			  dev_t rdev, const char *link)
{
	Fs *fs = req_fs(req);
	Node *dir = ino_node(fs, parent);
	bool wh;
	_cleanup_close_ int ufd = -1;
	Node *n;
	struct stat st;
	WR_LOCK(fs);
	int r = prepare_create(fs, dir, name, &wh, &ufd);
	if (r < 0)
		goto out;
	if (link)
		r = symlinkat(link, ufd, name);
	else if (S_ISDIR(mode))
		r = mkdirat(ufd, name, mode & 07777);
	else
		r = mknodat(ufd, name, mode, rdev);
	if (r < 0) {
		r = -errno;
		goto out;
	}
	if (S_ISDIR(mode)) {
		/* over a whiteout, or over a lower dir hidden by ignore patterns: lower
		 * contents must not show through */
		bool lower_dir = false;
		if (wh || (fs_lower_has(fs, dir, name, &lower_dir) && lower_dir)) {
			_cleanup_close_ int f = openat(ufd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
			r = f < 0 ? -errno : dir_set_opaque(fs, f);
			if (r < 0) {
				(void)unlinkat(ufd, name, AT_REMOVEDIR);
				goto out;
			}
		}
	}
	r = finish_create(fs, req, dir, ufd, name, &n, &st);
out:
	UNLOCK(fs);
	if (r < 0)
		return reply_err(fs, req, r);
	struct fuse_entry_param e;
	fill_entry(fs, n, &st, &e);
	if (fuse_reply_entry(req, &e) < 0)
		node_forget(fs, n, 1);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	create_common(req, parent, name, mode, rdev, NULL);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	create_common(req, parent, name, S_IFDIR | mode, 0, NULL);
}

void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	create_common(req, parent, name, S_IFLNK | 0777, 0, link);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	Node *dir = ino_node(fs, parent);
	Node *n = NULL;
	struct stat st;
	bool wh;
	_cleanup_close_ int ufd = -1;
	int fd = -1;
	WR_LOCK(fs);
	int r = prepare_create(fs, dir, name, &wh, &ufd);
	if (r == -EEXIST && !(fi->flags & O_EXCL)) {
		/* the kernel thought it absent: open what is there */
		r = fs_lookup(fs, dir, name, &n, &st);
		if (r == 0 && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)))
			r = copy_up(fs, n, !(fi->flags & O_TRUNC));
		if (r == 0) {
			fd = open_node(fs, n, fi->flags);
			if (fd < 0)
				r = fd;
		}
		if (r < 0 && n)
			node_forget(fs, n, 1);
		goto out;
	}
	if (r < 0)
		goto out;
	int flags = fi->flags & ~(O_NOCTTY | O_NOFOLLOW);
	if (fs->writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	fd = openat(ufd, name, (flags | O_CREAT | O_EXCL | O_CLOEXEC) & ~O_NOFOLLOW, mode & 07777);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = finish_create(fs, req, dir, ufd, name, &n, &st);
	if (r < 0) {
		close(fd);
		fd = -1;
	}
out:
	UNLOCK(fs);
	if (r < 0)
		return reply_err(fs, req, r);
	struct fuse_entry_param e;
	fill_entry(fs, n, &st, &e);
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	if (fuse_reply_create(req, &e, fi) < 0) {
		close(fd);
		node_forget(fs, n, 1);
	}
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	Node *n = ino_node(fs, ino);
	bool writes = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
	int r = 0;
	if (writes) {
		WR_LOCK(fs);
		r = copy_up(fs, n, !(fi->flags & O_TRUNC));
	} else
		RD_LOCK(fs);
	int fd = r < 0 ? r : open_node(fs, n, fi->flags);
	UNLOCK(fs);
	if (fd < 0)
		return reply_err(fs, req, fd);
	fi->fh = (uint64_t)fd;
	/* Nothing changes a file behind our back (lowers are read-only, the upper is
	 * ours), so the page cache survives an open. */
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) < 0)
		close(fd);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	Node *n = ino_node(fs, ino);
	struct stat st;
	char p[32];
	WR_LOCK(fs);
	bool trunc0 = (to_set & FUSE_SET_ATTR_SIZE) && attr->st_size == 0;
	int r = copy_up(fs, n, !trunc0);
	if (r < 0)
		goto out;
	/* A block: a goto before it must not jump into the scope of PIN's cleanup variable. */
	{
		PIN(fs, n, fd);
		if (fd < 0) {
			r = fd;
			goto out;
		}
		fd_path(fd, p);
		if (to_set & FUSE_SET_ATTR_MODE) {
			if (n->type == S_IFLNK)
				r = -EOPNOTSUPP;
			else if ((fi ? fchmod((int)fi->fh, attr->st_mode & 07777)
				     : chmod(p, attr->st_mode & 07777)) < 0)
				r = -errno;
			if (r < 0)
				goto out;
		}
		if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
			uid_t u = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
			gid_t g = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
			if (fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
				r = -errno;
				goto out;
			}
		}
		if (to_set & FUSE_SET_ATTR_SIZE) {
			if ((fi ? ftruncate((int)fi->fh, attr->st_size)
				: truncate(p, attr->st_size)) < 0) {
				r = -errno;
				goto out;
			}
		}
		if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
			struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
						  { .tv_nsec = UTIME_OMIT } };
			if (to_set & FUSE_SET_ATTR_ATIME_NOW)
				ts[0].tv_nsec = UTIME_NOW;
			else if (to_set & FUSE_SET_ATTR_ATIME)
				ts[0] = attr->st_atim;
			if (to_set & FUSE_SET_ATTR_MTIME_NOW)
				ts[1].tv_nsec = UTIME_NOW;
			else if (to_set & FUSE_SET_ATTR_MTIME)
				ts[1] = attr->st_mtim;
			int rr = fi ? futimens((int)fi->fh, ts)
				    : utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
			if (rr < 0) {
				r = -errno;
				goto out;
			}
		}
		r = fs_getattr(fs, n, &st);
	}
out:
	UNLOCK(fs);
	if (r < 0)
		return reply_err(fs, req, r);
	fuse_reply_attr(req, &st, fs_attr_timeout(fs, n, &st));
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	Fs *fs = req_fs(req);
	Node *src = ino_node(fs, ino), *dir = ino_node(fs, parent), *n = NULL;
	struct stat st;
	bool wh;
	_cleanup_close_ int ufd = -1;
	WR_LOCK(fs);
	int r = node_is_dir(src) ? -EPERM : prepare_create(fs, dir, name, &wh, &ufd);
	if (r < 0)
		goto out;
	r = copy_up(fs, src, true);
	if (r < 0)
		goto out;
	{
		PIN(fs, src, sfd);
		if (sfd < 0) {
			r = sfd;
			goto out;
		}
		if (linkat(sfd, "", ufd, name, AT_EMPTY_PATH) < 0) {
			char p[32];
			fd_path(sfd, p);
			if (linkat(AT_FDCWD, p, ufd, name, AT_SYMLINK_FOLLOW) < 0) {
				r = -errno;
				goto out;
			}
		}
		/* the new name is the same inode for the kernel: answer with the source node */
		n = src;
		r = fs_getattr(fs, n, &st);
		if (r == 0) {
			struct stat rst;
			pthread_mutex_lock(&fs->table_lock);
			n->nlookup++;
			if (fstat(sfd, &rst) == 0)
				node_add_link(fs, n, rst.st_ino);
			pthread_mutex_unlock(&fs->table_lock);
		}
	}
out:
	UNLOCK(fs);
	if (r < 0)
		return reply_err(fs, req, r);
	struct fuse_entry_param e;
	fill_entry(fs, n, &st, &e);
	if (fuse_reply_entry(req, &e) < 0)
		node_forget(fs, n, 1);
}

/* Remove dir/name (node n) from the merged view. ns_lock exclusive. */
static int remove_entry(Fs *fs, Node *dir, const char *name, Node *n)
{
	int r = copy_up_dir(fs, dir);
	if (r < 0)
		return r;
	_cleanup_close_ int d = node_upper_dir_open(fs, dir);
	if (d < 0)
		return d;
	if (node_in_upper(n)) {
		if (node_is_dir(n)) {
			DIR_PIN(fs, n, FSD_UPPER, nfd);
			r = nfd < 0 ? nfd : fs_clear_upper_dir(fs, nfd);
			if (r < 0)
				return r;
		}
		if (unlinkat(d, name, node_is_dir(n) ? AT_REMOVEDIR : 0) < 0)
			return -errno;
	}
	if (fs_lower_has(fs, dir, name, NULL)) {
		r = whiteout_create(fs, d, name);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&fs->table_lock);
	node_del_link(fs, n); /* inode numbers get reused once the last link goes */
	node_unhash(fs, n);
	pthread_mutex_unlock(&fs->table_lock);
	return 0;
}

static void remove_common(fuse_req_t req, fuse_ino_t parent, const char *name, bool is_rmdir)
{
	Fs *fs = req_fs(req);
	Node *dir = ino_node(fs, parent), *n;
	struct stat st;
	WR_LOCK(fs);
	int r = fs_lookup(fs, dir, name, &n, &st);
	if (r < 0)
		goto out;
	if (is_rmdir && !node_is_dir(n))
		r = -ENOTDIR;
	else if (!is_rmdir && node_is_dir(n))
		r = -EISDIR;
	else if (is_rmdir) {
		DirList l;
		r = fs_list_dir(fs, n, true, &l);
		if (r == 0) {
			if (l.n > 0)
				r = -ENOTEMPTY;
			dir_list_done(&l);
		}
	}
	if (r == 0)
		r = remove_entry(fs, dir, name, n);
	node_forget(fs, n, 1);
out:
	UNLOCK(fs);
	reply_err(fs, req, r);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_common(req, parent, name, false);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_common(req, parent, name, true);
}

/* Take away a whiteout (either form) at `name` in the upper dir `d`. */
static void whiteout_remove(Fs *fs, int d, const char *name)
{
	struct stat st;
	if (fstatat(d, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st_is_whiteout(&st))
		(void)unlinkat(d, name, 0);
	else if (fs->aufs_whiteouts && whiteout_aufs_exists(d, name)) {
		char w[NAME_MAX + 8];
		snprintf(w, sizeof w, ".wh.%s", name);
		(void)unlinkat(d, w, 0);
	}
}

/* A directory about to move into a merged directory (one with lower parts) is marked
 * opaque first, as overlayfs does, so that a lower directory of the same name never
 * merges into it. `d`/`name`: where it is in the upper now. */
static int mark_moving_dir(Fs *fs, Node *n, int d, const char *name, Node *new_parent)
{
	if (!node_is_dir(n) || !dir_has_lower(fs, new_parent))
		return 0;
	_cleanup_close_ int f = openat(d, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0)
		return -errno;
	if (dir_is_opaque(fs, f))
		return 0;
	return dir_set_opaque(fs, f);
}

static int dir_check_empty(Fs *fs, Node *n)
{
	DirList l;
	int r = fs_list_dir(fs, n, true, &l);
	if (r < 0)
		return r;
	bool empty = l.n == 0;
	dir_list_done(&l);
	return empty ? 0 : -ENOTEMPTY;
}

/* Whether node n is hashed under parent/name (an upper hard link may be hashed under
 * another of its names, having been found through the link table). */
static bool node_hashed_at(const Node *n, const Node *parent, const char *name)
{
	return n->hashed && n->parent == parent && streq(n->name, name);
}

/* The upper parts of both parents of a rename (copied up before). */
static int upper_dirs_open(Fs *fs, Node *dir, Node *ndir, int *ret_sd, int *ret_dd)
{
	*ret_sd = node_upper_dir_open(fs, dir);
	if (*ret_sd < 0)
		return *ret_sd;
	*ret_dd = node_upper_dir_open(fs, ndir);
	return *ret_dd < 0 ? *ret_dd : 0;
}

/* Rehash a node under ndir/name after its object moved there; table_lock held. Out of
 * memory, it is unhashed instead and looked up afresh next time. */
static void node_move(Fs *fs, Node *n, Node *ndir, const char *name)
{
	char *nn = strdup(name);
	if (nn)
		node_rehash(fs, n, ndir, nn);
	else
		node_unhash(fs, n);
}

static int do_rename(Fs *fs, Node *dir, const char *name, Node *ndir, const char *newname,
		     unsigned int flags, Node *src, Node *dst)
{
	_cleanup_close_ int sd = -1, dd = -1;
	if (dst && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (dst) {
		if (node_is_dir(src) && !node_is_dir(dst))
			return -ENOTDIR;
		if (!node_is_dir(src) && node_is_dir(dst))
			return -EISDIR;
	}
	/* overlayfs checks this before the target's emptiness */
	if (node_is_dir(src) && dir_has_lower(fs, src))
		return -EXDEV;
	int r;
	if (dst && node_is_dir(dst) && (r = dir_check_empty(fs, dst)) < 0)
		return r;
	r = copy_up(fs, src, true);
	if (r < 0)
		return r;
	r = copy_up_dir(fs, ndir);
	if (r < 0)
		return r;
	r = upper_dirs_open(fs, dir, ndir, &sd, &dd);
	if (r < 0)
		return r;
	if (dst && node_is_dir(dst) && node_in_upper(dst)) {
		DIR_PIN(fs, dst, FSD_UPPER, dfd);
		r = dfd < 0 ? dfd : fs_clear_upper_dir(fs, dfd);
		if (r < 0)
			return r;
	}
	whiteout_remove(fs, dd, newname);
	r = mark_moving_dir(fs, src, sd, name, ndir);
	if (r < 0)
		return r;
	if (renameat(sd, name, dd, newname) < 0)
		return -errno;
	if (fs_lower_has(fs, dir, name, NULL)) {
		r = whiteout_create(fs, sd, name);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&fs->table_lock);
	if (dst) {
		node_del_link(fs, dst);
		node_unhash(fs, dst);
	}
	node_move(fs, src, ndir, newname);
	pthread_mutex_unlock(&fs->table_lock);
	return 0;
}

/*
 * RENAME_EXCHANGE, as overlayfs does it: both sides copied up (a directory with lower
 * parts cannot move: EXDEV), a directory going into a merged parent marked opaque,
 * then one renameat2() in the upper. Both names stay occupied, so no whiteouts.
 */
static int do_exchange(Fs *fs, Node *dir, const char *name, Node *ndir, const char *newname,
		       Node *src, Node *dst)
{
	_cleanup_close_ int sd = -1, dd = -1;
	if ((node_is_dir(src) && dir_has_lower(fs, src)) ||
	    (node_is_dir(dst) && dir_has_lower(fs, dst)))
		return -EXDEV;
	int r = copy_up(fs, src, true);
	if (r < 0)
		return r;
	r = copy_up_dir(fs, ndir);
	if (r < 0)
		return r;
	r = copy_up(fs, dst, true);
	if (r < 0)
		return r;
	r = upper_dirs_open(fs, dir, ndir, &sd, &dd);
	if (r < 0)
		return r;
	r = mark_moving_dir(fs, src, sd, name, ndir);
	if (r < 0)
		return r;
	r = mark_moving_dir(fs, dst, dd, newname, dir);
	if (r < 0)
		return r;
	if (renameat2(sd, name, dd, newname, RENAME_EXCHANGE) < 0)
		return -errno;
	/* Each node follows its object to the other name. A node hashed under another
	 * name (an upper hard link) stays there: that name still leads to it. */
	bool s_at = node_hashed_at(src, dir, name), d_at = node_hashed_at(dst, ndir, newname);
	pthread_mutex_lock(&fs->table_lock);
	if (s_at && d_at)
		node_exchange(fs, src, dst);
	else if (s_at)
		node_move(fs, src, ndir, newname);
	else if (d_at)
		node_move(fs, dst, dir, name);
	pthread_mutex_unlock(&fs->table_lock);
	return 0;
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	Fs *fs = req_fs(req);
	Node *dir = ino_node(fs, parent), *ndir = ino_node(fs, newparent);
	Node *src = NULL, *dst = NULL;
	struct stat st;
	bool exchange = flags & RENAME_EXCHANGE;
	/* RENAME_WHITEOUT is not supported; the kernel refuses EXCHANGE|NOREPLACE itself */
	if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    (exchange && (flags & RENAME_NOREPLACE)))
		return reply_err(fs, req, -EINVAL);
	WR_LOCK(fs);
	int r = fs_lookup(fs, dir, name, &src, &st);
	if (r < 0)
		goto out;
	r = fs_lookup(fs, ndir, newname, &dst, &st);
	if (r == -ENOENT && !exchange) {
		dst = NULL;
		r = 0;
	}
	if (r < 0 || dst == src)
		goto out; /* the same object: nothing to do */
	if (exchange)
		r = do_exchange(fs, dir, name, ndir, newname, src, dst);
	else
		r = do_rename(fs, dir, name, ndir, newname, flags, src, dst);
out:
	if (src)
		node_forget(fs, src, 1);
	if (dst)
		node_forget(fs, dst, 1);
	UNLOCK(fs);
	reply_err(fs, req, r);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags)
{
	Fs *fs = req_fs(req);
	if (xattr_is_private(name))
		return reply_err(fs, req, -EPERM);
	Node *n = ino_node(fs, ino);
	WR_LOCK(fs);
	int r = n->type == S_IFLNK ? -EPERM : copy_up(fs, n, true);
	if (r == 0) {
		char p[32];
		PIN(fs, n, fd);
		fd_path(fd, p);
		if (fd < 0)
			r = fd;
		else if (setxattr(p, name, value, size, flags) < 0)
			r = -errno;
	}
	UNLOCK(fs);
	reply_err(fs, req, r);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	Fs *fs = req_fs(req);
	if (xattr_is_private(name))
		return reply_err(fs, req, -EPERM);
	Node *n = ino_node(fs, ino);
	WR_LOCK(fs);
	int r = n->type == S_IFLNK ? -EPERM : 0;
	if (r == 0) {
		/* nothing to remove means no copy-up */
		char p[32];
		PIN(fs, n, fd);
		fd_path(fd, p);
		if (fd < 0)
			r = fd;
		else if (getxattr(p, name, NULL, 0) < 0)
			r = -errno;
	}
	if (r == 0)
		r = copy_up(fs, n, true);
	if (r == 0) {
		char p[32];
		PIN(fs, n, fd);
		fd_path(fd, p);
		if (fd < 0)
			r = fd;
		else if (removexattr(p, name) < 0)
			r = -errno;
	}
	UNLOCK(fs);
	reply_err(fs, req, r);
}
