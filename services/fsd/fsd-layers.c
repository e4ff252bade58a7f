/* SPDX-License-Identifier: MIT */
/*
 * The layers of a mount: their pinned root fds, which form of whiteout the upper
 * takes, and the Fs object's life.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsd.h"

void fd_path(int fd, char buf[static 32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

static int open_layer(const char *path, int *ret_fd, struct stat *ret_st)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, ret_st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/*
 * Which on-disk forms the upper takes is probed in the work dir (same filesystem as
 * the upper), never guessed from the euid: inside a user namespace we are uid 0 yet
 * the kernel refuses trusted.* xattrs, and whether a 0/0 character device may be made
 * depends on the kernel (any user since Linux 5.8) and on the filesystem.
 */

/* Can we make 0/0 character devices (the kernel's whiteout)? */
static bool probe_mknod_whiteout(Fs *fs, int wfd)
{
	char name[64];
	work_tmpname(fs, name);
	if (mknodat(wfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return false;
	(void)unlinkat(wfd, name, 0);
	return true;
}

/* Can we set trusted.* xattrs (CAP_SYS_ADMIN in the initial user namespace)? If not,
 * the upper is written in overlayfs' `userxattr` form (user.overlay.*). */
static bool probe_trusted_xattr(Fs *fs, int wfd)
{
	char name[64];
	work_tmpname(fs, name);
	if (mkdirat(wfd, name, 0700) < 0)
		return false;
	bool ok = false;
	int d = openat(wfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d >= 0) {
		ok = fsetxattr(d, "trusted.overlay.opaque", "y", 1, 0) == 0;
		close(d);
	}
	(void)unlinkat(wfd, name, AT_REMOVEDIR);
	return ok;
}

static void probe_forms(Fs *fs)
{
	char wp[32];
	fd_path(fs->work_fd, wp);
	_cleanup_close_ int wfd = open(wp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fs->aufs_whiteouts = wfd < 0 || !probe_mknod_whiteout(fs, wfd);
	fs->opaque_xattr = wfd >= 0 && probe_trusted_xattr(fs, wfd) ? "trusted.overlay.opaque"
								    : "user.overlay.opaque";
}

int fs_new(const FsConfig *config, Fs **ret)
{
	size_t n_lowers = 0;
	while (config->lowers && config->lowers[n_lowers])
		n_lowers++;
	if (n_lowers == 0 || n_lowers + 1 > FSD_LAYERS_MAX)
		return -EINVAL;
	if (!config->upper || !config->work)
		return -EINVAL;

	Fs *fs = calloc(1, sizeof(Fs));
	if (!fs)
		return -ENOMEM;
	for (int i = 0; i < FSD_LAYERS_MAX; i++)
		fs->layer_fd[i] = -1;
	fs->work_fd = -1;
	pthread_rwlock_init(&fs->ns_lock, NULL);
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_mutex_init(&fs->listing_lock, NULL);
	fs->ignore = config->ignore;
	fs->timeout = config->timeout;
	fs->writeback = config->writeback;
	fs->n_layers = (int)n_lowers + 1;

	int r;
	struct stat st, upper_st;
	r = open_layer(config->upper, &fs->layer_fd[FSD_UPPER], &upper_st);
	if (r < 0)
		goto fail;
	fs->layer_dev[FSD_UPPER] = upper_st.st_dev;
	for (size_t i = 0; i < n_lowers; i++) {
		r = open_layer(config->lowers[i], &fs->layer_fd[i + 1], &st);
		if (r < 0)
			goto fail;
		fs->layer_dev[i + 1] = st.st_dev;
		if (st.st_dev != upper_st.st_dev)
			fs->multi_dev = true;
	}
	r = open_layer(config->work, &fs->work_fd, &st);
	if (r < 0)
		goto fail;
	if (st.st_dev != upper_st.st_dev) {
		r = -EXDEV; /* copy-up renames from work into upper */
		goto fail;
	}

	struct rlimit rl;
	fs->fd_budget = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
			    ? rl.rlim_cur / 2
			    : 65536;
	fs->n_buckets = 1024;
	fs->buckets = calloc(fs->n_buckets, sizeof(Node *));
	if (!fs->buckets) {
		r = -ENOMEM;
		goto fail;
	}

	probe_forms(fs);

	/* The root: a directory present in every layer. */
	Node *root = node_new(fs, S_IFDIR);
	if (!root) {
		r = -ENOMEM;
		goto fail;
	}
	fs->root = root;
	root->nlookup = 1;
	for (int l = 0; l < fs->n_layers; l++) {
		root->dirs[l] = fcntl(fs->layer_fd[l], F_DUPFD_CLOEXEC, 3);
		if (root->dirs[l] < 0) {
			r = -errno;
			goto fail;
		}
		if (l > 0 && dir_is_opaque(fs, root->dirs[l]))
			break;
	}
	root->fd = root->dirs[FSD_UPPER];
	root->ino = upper_st.st_ino;
	*ret = fs;
	return 0;
fail:
	fs_free(fs);
	return r;
}

static void node_destroy(Node *n, int n_layers)
{
	if (n->dirs) {
		for (int l = 0; l < n_layers; l++)
			safe_close(n->dirs[l]);
		free(n->dirs);
	} else
		safe_close(n->fd);
	free(n->name);
	free(n);
}

Fs *fs_free(Fs *fs)
{
	if (!fs)
		return NULL;
	for (size_t b = 0; b < fs->n_buckets; b++)
		while (fs->buckets[b]) {
			Node *n = fs->buckets[b];
			fs->buckets[b] = n->hnext;
			node_destroy(n, fs->n_layers);
		}
	/* Unhashed nodes the kernel never forgot leak here only when the session ended
	 * without FORGETs (unmount): the process frees them with the Fs at exit. */
	if (fs->root)
		node_destroy(fs->root, fs->n_layers);
	free(fs->buckets);
	free(fs->ino_keys);
	free(fs->ino_vals);
	for (int i = 0; i < FSD_LAYERS_MAX; i++)
		safe_close(fs->layer_fd[i]);
	safe_close(fs->work_fd);
	pthread_rwlock_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->table_lock);
	pthread_mutex_destroy(&fs->listing_lock);
	free(fs);
	return NULL;
}

void fs_get_stats(Fs *fs, FsStats *ret)
{
	ret->ops = __atomic_load_n(&fs->stats.ops, __ATOMIC_RELAXED);
	ret->lookups = __atomic_load_n(&fs->stats.lookups, __ATOMIC_RELAXED);
	ret->cache_hits = __atomic_load_n(&fs->stats.cache_hits, __ATOMIC_RELAXED);
	ret->copy_ups = __atomic_load_n(&fs->stats.copy_ups, __ATOMIC_RELAXED);
	ret->whiteouts = __atomic_load_n(&fs->stats.whiteouts, __ATOMIC_RELAXED);
	ret->errors = __atomic_load_n(&fs->stats.errors, __ATOMIC_RELAXED);
	pthread_mutex_lock(&fs->table_lock);
	ret->nodes = fs->n_nodes;
	pthread_mutex_unlock(&fs->table_lock);
}
