/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by fsd-ops-read.c and fsd-ops-write.c: request plumbing. */

#define FUSE_USE_VERSION 312 /* fuse_session_loop_mt() with struct fuse_loop_config */
#include <fuse_lowlevel.h>

#include "fsd.h"

static inline Fs *req_fs(fuse_req_t req)
{
	Fs *fs = fuse_req_userdata(req);
	STAT_INC(fs, ops);
	return fs;
}

static inline Node *ino_node(Fs *fs, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? fs->root : (Node *)(uintptr_t)ino;
}

static inline void reply_err(Fs *fs, fuse_req_t req, int r)
{
	int e = r < 0 ? -r : r;
	if (e != ENOENT && e != ENODATA && e != EEXIST && e != ENOTEMPTY)
		STAT_INC(fs, errors);
	fuse_reply_err(req, e);
}

#define RD_LOCK(fs) pthread_rwlock_rdlock(&(fs)->ns_lock)
#define WR_LOCK(fs) pthread_rwlock_wrlock(&(fs)->ns_lock)
#define UNLOCK(fs) pthread_rwlock_unlock(&(fs)->ns_lock)

void fill_entry(Fs *fs, Node *n, const struct stat *st, struct fuse_entry_param *e);
int open_node(Fs *fs, Node *n, int flags);

/* write side */
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name);
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
