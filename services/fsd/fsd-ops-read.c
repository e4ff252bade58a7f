/* SPDX-License-Identifier: MIT */
/*
 * FUSE operations that read the merged view (lookup, getattr, readdir, read, xattrs,
 * statfs) and the operation table. Data moves with splice where the kernel allows.
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsd-ops.h"
#include "strutil.h"

/* An open directory: its merged listing, built at the first READDIR. When the kernel
 * still caches the listing (cache_readdir) it sends only OPENDIR and RELEASEDIR, so a
 * warm `find` costs no layer reads at all. The kernel serialises READDIRs of one open
 * directory (f_pos lock), so `loaded` needs no lock. */
typedef struct DirHandle {
	DirList list;
	bool loaded;
} DirHandle;

void fill_entry(Fs *fs, Node *n, const struct stat *st, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = (fuse_ino_t)(uintptr_t)n;
	e->attr = *st;
	e->attr_timeout = fs_attr_timeout(fs, n, st);
	e->entry_timeout = fs->timeout;
}

int open_node(Fs *fs, Node *n, int flags)
{
	char p[32];
	PIN(fs, n, fd0);
	if (fd0 < 0)
		return fd0;
	fd_path(fd0, p);
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
	if (fs->writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	int fd = open(p, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	Fs *fs = userdata;
	unsigned want[] = { FUSE_CAP_SPLICE_READ,    FUSE_CAP_SPLICE_WRITE,
			    FUSE_CAP_SPLICE_MOVE,    FUSE_CAP_ATOMIC_O_TRUNC,
			    FUSE_CAP_CACHE_SYMLINKS, FUSE_CAP_PARALLEL_DIROPS,
			    FUSE_CAP_READDIRPLUS,    FUSE_CAP_READDIRPLUS_AUTO };
	for (size_t i = 0; i < ELEMENTSOF(want); i++)
		if (conn->capable & want[i])
			conn->want |= want[i];
	/* Directories opened by the kernel alone: no OPENDIR/RELEASEDIR round trips, and
	 * it keeps their listings (what it does for a filesystem without opendir). */
	fs->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	if (fs->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* a kernel that can read 1 MiB per request halves the round trips of big reads */
	conn->max_readahead = conn->max_readahead ? conn->max_readahead : 1 << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Fs *fs = req_fs(req);
	Node *n;
	struct stat st;
	struct fuse_entry_param e;
	RD_LOCK(fs);
	int r = fs_lookup(fs, ino_node(fs, parent), name, &n, &st);
	UNLOCK(fs);
	if (r == -ENOENT) {
		/* negative entry, cached like a positive one */
		memset(&e, 0, sizeof e);
		e.entry_timeout = fs->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (r < 0)
		return reply_err(fs, req, r);
	fill_entry(fs, n, &st, &e);
	if (fuse_reply_entry(req, &e) < 0)
		node_forget(fs, n, 1);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	Fs *fs = req_fs(req);
	if (ino != FUSE_ROOT_ID)
		node_forget(fs, ino_node(fs, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	Fs *fs = req_fs(req);
	for (size_t i = 0; i < count; i++)
		if (f[i].ino != FUSE_ROOT_ID)
			node_forget(fs, ino_node(fs, f[i].ino), f[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	struct stat st;
	Node *n = ino_node(fs, ino);
	RD_LOCK(fs);
	int r = fs_getattr(fs, n, &st);
	double timeout = r < 0 ? 0 : fs_attr_timeout(fs, n, &st);
	UNLOCK(fs);
	if (r < 0)
		return reply_err(fs, req, r);
	fuse_reply_attr(req, &st, timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	Fs *fs = req_fs(req);
	char buf[PATH_MAX + 1];
	RD_LOCK(fs);
	ssize_t k;
	int e;
	{
		PIN(fs, ino_node(fs, ino), fd);
		k = fd < 0 ? -1 : readlinkat(fd, "", buf, sizeof buf - 1);
		e = fd < 0 ? -fd : errno;
	}
	UNLOCK(fs);
	if (k < 0)
		return reply_err(fs, req, -e);
	buf[k] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	if (fs->no_opendir) /* the kernel then opens directories itself, for good */
		return (void)fuse_reply_err(req, ENOSYS);
	DirHandle *h = calloc(1, sizeof(DirHandle));
	if (!h)
		return reply_err(fs, req, -ENOMEM);
	fi->fh = (uint64_t)(uintptr_t)h;
	/* The kernel drops a cached listing when the directory changes through the
	 * mount (and nothing changes it otherwise), so it may keep listings. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) < 0) {
		dir_list_done(&h->list);
		free(h);
	}
}

/*
 * The listing of a directory the kernel opened without us: built anew by a READDIR at
 * offset 0 (a new read of the directory), shared by the READDIRs that continue it. A
 * directory changed between two reads is listed anew by the next one, like any
 * filesystem whose offsets index a listing. Returns a reference.
 */
static int node_listing(Fs *fs, Node *dir, off_t off, Listing **ret)
{
	pthread_mutex_lock(&fs->listing_lock);
	Listing *l = off > 0 ? dir->listing : NULL;
	if (l)
		l->refs++;
	pthread_mutex_unlock(&fs->listing_lock);
	if (l) {
		*ret = l;
		return 0;
	}
	l = calloc(1, sizeof(Listing));
	if (!l)
		return -ENOMEM;
	RD_LOCK(fs);
	int r = fs_list_dir(fs, dir, false, &l->list);
	UNLOCK(fs);
	if (r < 0) {
		free(l);
		return r;
	}
	l->refs = 2; /* the node's and the caller's */
	pthread_mutex_lock(&fs->listing_lock);
	Listing *old = dir->listing;
	dir->listing = l;
	pthread_mutex_unlock(&fs->listing_lock);
	listing_unref(fs, old);
	*ret = l;
	return 0;
}

/* The end of a listing was read: the node lets go of it (unless a newer read replaced it). */
static void node_listing_drop(Fs *fs, Node *dir, Listing *l)
{
	pthread_mutex_lock(&fs->listing_lock);
	bool ours = dir->listing == l;
	if (ours)
		dir->listing = NULL;
	pthread_mutex_unlock(&fs->listing_lock);
	if (ours)
		listing_unref(fs, l);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	Fs *fs = req_fs(req);
	DirHandle *h = (DirHandle *)(uintptr_t)fi->fh;
	Node *dir = ino_node(fs, ino);
	Listing *shared = NULL;
	const DirList *list;
	int r;
	if (h) {
		if (!h->loaded) {
			RD_LOCK(fs);
			r = fs_list_dir(fs, dir, false, &h->list);
			UNLOCK(fs);
			if (r < 0)
				return reply_err(fs, req, r);
			h->loaded = true;
		}
		list = &h->list;
	} else {
		r = node_listing(fs, dir, off, &shared);
		if (r < 0)
			return reply_err(fs, req, r);
		list = &shared->list;
	}
	if (size > 1 << 20)
		size = 1 << 20;
	_cleanup_free_ char *buf = malloc(size);
	if (!buf) {
		listing_unref(fs, shared);
		return reply_err(fs, req, -ENOMEM);
	}
	size_t used = 0;
	/* offsets: 1 ".", 2 "..", 3 + i entry i */
	for (off_t o = off; (size_t)o < list->n + 2; o++) {
		struct stat st = {};
		const char *name;
		Node *n = NULL;
		if (o < 2) {
			name = o == 0 ? "." : "..";
			st.st_ino = o == 0 ? dir->ino : 1;
			st.st_mode = S_IFDIR;
		} else {
			const DirEntry *de = &list->e[o - 2];
			name = de->name;
			st.st_ino = de->ino;
			st.st_mode = (mode_t)DTTOIF(de->type);
		}
		size_t k;
		if (plus) {
			struct fuse_entry_param e = { .attr = st };
			if (o >= 2) {
				RD_LOCK(fs);
				r = fs_lookup(fs, dir, name, &n, &st);
				UNLOCK(fs);
				if (r < 0)
					continue; /* gone meanwhile, or became hidden */
				fill_entry(fs, n, &st, &e);
			}
			k = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, o + 1);
		} else
			k = fuse_add_direntry(req, buf + used, size - used, name, &st, o + 1);
		if (k > size - used) {
			if (n)
				node_forget(fs, n, 1);
			break;
		}
		used += k;
	}
	if (shared && used == 0)
		node_listing_drop(fs, dir, shared); /* read to the end */
	listing_unref(fs, shared);
	fuse_reply_buf(req, buf, used);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	DirHandle *h = (DirHandle *)(uintptr_t)fi->fh;
	if (h) {
		dir_list_done(&h->list);
		free(h);
	}
	fuse_reply_err(req, 0);
	(void)fs;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	req_fs(req);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = (int)fi->fh;
	out.buf[0].pos = off;
	ssize_t k = fuse_buf_copy(&out, in, 0);
	if (k < 0)
		return reply_err(fs, req, (int)k);
	fuse_reply_write(req, (size_t)k);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	req_fs(req);
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	int r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
	reply_err(fs, req, r < 0 ? -errno : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	int r = fallocate((int)fi->fh, mode, offset, length);
	reply_err(fs, req, r < 0 ? -errno : 0);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	Fs *fs = req_fs(req);
	off_t r = lseek((int)fi->fh, off, whence);
	if (r < 0)
		return reply_err(fs, req, -errno);
	fuse_reply_lseek(req, r);
}

static void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	Fs *fs = req_fs(req);
	int r = flock((int)fi->fh, op);
	reply_err(fs, req, r < 0 ? -errno : 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	Fs *fs = req_fs(req);
	struct statvfs sv;
	if (fstatvfs(fs->layer_fd[FSD_UPPER], &sv) < 0)
		return reply_err(fs, req, -errno);
	fuse_reply_statfs(req, &sv);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	Fs *fs = req_fs(req);
	if (xattr_is_private(name))
		return reply_err(fs, req, -ENODATA);
	_cleanup_free_ char *val = NULL;
	if (size > 0 && !(val = malloc(size)))
		return reply_err(fs, req, -ENOMEM);
	RD_LOCK(fs);
	Node *n = ino_node(fs, ino);
	ssize_t k;
	int e = 0;
	if (n->type == S_IFLNK) {
		k = -1;
		e = ENODATA;
	} else {
		char p[32];
		PIN(fs, n, fd);
		fd_path(fd, p);
		k = fd < 0 ? -1 : getxattr(p, name, val, size);
		e = fd < 0 ? -fd : errno;
	}
	UNLOCK(fs);
	if (k < 0)
		return reply_err(fs, req, -e);
	if (size == 0)
		fuse_reply_xattr(req, (size_t)k);
	else
		fuse_reply_buf(req, val, (size_t)k);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	Fs *fs = req_fs(req);
	_cleanup_free_ char *list = malloc(65536);
	if (!list)
		return reply_err(fs, req, -ENOMEM);
	RD_LOCK(fs);
	Node *n = ino_node(fs, ino);
	ssize_t k = 0;
	int e = 0;
	if (n->type != S_IFLNK) {
		char p[32];
		PIN(fs, n, fd);
		fd_path(fd, p);
		k = fd < 0 ? -1 : listxattr(p, list, 65536);
		e = fd < 0 ? -fd : errno;
	}
	UNLOCK(fs);
	if (k < 0)
		return reply_err(fs, req, -e);
	/* drop our own names, in place */
	size_t w = 0;
	for (size_t i = 0; i < (size_t)k;) {
		size_t l = strlen(list + i) + 1;
		if (!xattr_is_private(list + i)) {
			memmove(list + w, list + i, l);
			w += l;
		}
		i += l;
	}
	if (size == 0)
		fuse_reply_xattr(req, w);
	else if (w > size)
		reply_err(fs, req, -ERANGE);
	else
		fuse_reply_buf(req, list, w);
}

const struct fuse_lowlevel_ops fsd_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write_buf = op_write_buf,
	/* No .flush: libfuse answers ENOSYS and the kernel stops sending FLUSH on every
	 * close(). Closing a duplicate of a local upper/lower fd reports nothing, and POSIX
	 * locks are the kernel's (no getlk/setlk here), so it was a round trip for nothing. */
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.flock = op_flock,
};
