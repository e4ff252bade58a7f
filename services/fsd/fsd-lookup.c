/* SPDX-License-Identifier: MIT */
/*
 * Name resolution in the merged view, like overlayfs: the upper first, then each
 * lower in order; a whiteout ends the search; a non-directory is taken from the first
 * layer that has it; a directory merges with the directories below it until one is
 * opaque or a layer has a non-directory there. Lower objects whose path matches the
 * ignore patterns do not exist; objects created in the upper through the mount do.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "fsd.h"

static bool hidden(Fs *fs, Node *parent, const char *name, bool is_dir)
{
	if (!fs->ignore || ignore_count(fs->ignore) == 0)
		return false;
	char path[PATH_MAX];
	if (node_path(parent, path, sizeof path) < 0)
		return true;
	size_t l = strlen(path), nl = strlen(name);
	if (l + nl + 2 > sizeof path)
		return true;
	if (l > 0)
		path[l++] = '/';
	memcpy(path + l, name, nl + 1);
	return ignore_hidden(fs->ignore, path, is_dir);
}

int fs_getattr(Fs *fs, Node *n, struct stat *st)
{
	PIN(fs, n, fd);
	if (fd < 0)
		return fd;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	st->st_ino = n->ino;
	if (node_is_dir(n)) {
		/* overlayfs: a merged directory does not count its subdirectories */
		int parts = 0;
		for (int l = 0; l < fs->n_layers; l++)
			parts += dir_has_part(n, l);
		if (parts > 1)
			st->st_nlink = 1;
	}
	return 0;
}

double fs_attr_timeout(Fs *fs, const Node *n, const struct stat *st)
{
	if (!node_is_dir(n) && n->layer != FSD_UPPER && st->st_nlink > 1)
		return 0;
	return fs->timeout;
}

bool fs_lower_has(Fs *fs, Node *parent, const char *name, bool *ret_is_dir)
{
	struct stat st;
	for (int l = 1; l < fs->n_layers; l++) {
		DIR_PIN(fs, parent, l, d);
		if (d < 0)
			continue;
		if (fstatat(d, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (fs->aufs_whiteouts && whiteout_aufs_exists(d, name))
				return false;
			continue;
		}
		if (st_is_whiteout(&st))
			return false;
		if (ret_is_dir)
			*ret_is_dir = S_ISDIR(st.st_mode);
		return true;
	}
	return false;
}

/* Build a fresh node for parent/name from the layers; ENOENT when absent. */
static int resolve(Fs *fs, Node *parent, const char *name, Node **ret, struct stat *ret_st)
{
	Node *n = NULL;
	struct stat st;
	int r = -ENOENT;

	for (int l = 0; l < fs->n_layers; l++) {
		if (!dir_has_part(parent, l))
			continue;
		DIR_PIN(fs, parent, l, d);
		if (d < 0) {
			r = d;
			break;
		}
		if (fstatat(d, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && errno != ENOTDIR) {
				r = -errno;
				break;
			}
			if (fs->aufs_whiteouts && whiteout_aufs_exists(d, name))
				break;
			continue;
		}
		if (st_is_whiteout(&st))
			break;
		if (!n) {
			if (l > 0 && hidden(fs, parent, name, S_ISDIR(st.st_mode)))
				break;
			int f = openat(d, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (f < 0) {
				r = -errno;
				break;
			}
			n = node_new(fs, st.st_mode & S_IFMT);
			if (!n) {
				close(f);
				r = -ENOMEM;
				break;
			}
			n->ino = fs_ino_for(fs, l, &st);
			n->layer = l;
			*ret_st = st;
			if (!S_ISDIR(st.st_mode)) {
				node_keep_fd(fs, n, f);
				r = 0;
				break;
			}
			r = 0;
			bool opaque = dir_is_opaque(fs, f);
			node_keep_dir_fd(fs, n, l, f);
			if (opaque)
				break;
			continue;
		}
		/* below a directory part: merge directories, stop at anything else */
		if (!S_ISDIR(st.st_mode))
			break;
		int f = openat(d, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		if (f < 0)
			break;
		bool opaque = dir_is_opaque(fs, f);
		node_keep_dir_fd(fs, n, l, f);
		if (opaque)
			break;
	}
	if (r < 0) {
		if (n)
			node_free_fresh(fs, n);
		return r;
	}
	n->name = strdup(name);
	if (!n->name) {
		node_free_fresh(fs, n);
		return -ENOMEM;
	}
	*ret = n;
	return 0;
}

int fs_lookup(Fs *fs, Node *parent, const char *name, Node **ret, struct stat *ret_st)
{
	STAT_INC(fs, lookups);
	if (!node_is_dir(parent))
		return -ENOTDIR;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;

	pthread_mutex_lock(&fs->table_lock);
	Node *n = node_lookup_hashed(fs, parent, name);
	if (n) {
		n->nlookup++;
		pthread_mutex_unlock(&fs->table_lock);
		STAT_INC(fs, cache_hits);
		int r = fs_getattr(fs, n, ret_st);
		if (r < 0) {
			node_forget(fs, n, 1);
			return r;
		}
		*ret = n;
		return 0;
	}
	pthread_mutex_unlock(&fs->table_lock);

	Node *fresh = NULL;
	struct stat fst = {};
	int r = resolve(fs, parent, name, &fresh, &fst);
	if (r < 0)
		return r;
	uint64_t fresh_ino = fst.st_ino, fresh_nlink = fst.st_nlink;

	pthread_mutex_lock(&fs->table_lock);
	n = node_lookup_hashed(fs, parent, name);
	if (n) {
		/* another thread resolved it meanwhile (both under ns_lock shared) */
		n->nlookup++;
		pthread_mutex_unlock(&fs->table_lock);
		node_free_fresh(fs, fresh);
	} else if (fresh->layer == FSD_UPPER && !node_is_dir(fresh) && fresh_nlink > 1 &&
		   (n = node_find_link(fs, fresh_ino))) {
		/* another name of a hard-linked upper file: the same inode */
		n->nlookup++;
		pthread_mutex_unlock(&fs->table_lock);
		node_free_fresh(fs, fresh);
	} else {
		n = fresh;
		n->nlookup = 1;
		node_hash(fs, parent, n);
		if (n->layer == FSD_UPPER && !node_is_dir(n) && fresh_nlink > 1)
			node_add_link(fs, n, fresh_ino);
		pthread_mutex_unlock(&fs->table_lock);
	}
	r = fs_getattr(fs, n, ret_st);
	if (r < 0) {
		node_forget(fs, n, 1);
		return r;
	}
	*ret = n;
	return 0;
}
