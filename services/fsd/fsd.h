/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The overlay filesystem of one mount: layers, the inode cache, copy-up, whiteouts,
 * and the FUSE operations on top. Shared by the fsd-*.c files of this directory.
 *
 * Locking: `ns_lock` (a rwlock) guards the namespace, i.e. what is in the layers and
 * how nodes hang together (parent, name, fds): operations that only look take it
 * shared, operations that change the upper layer take it exclusive. `table_lock`
 * guards the node hash table and reference counts, which lookups change while
 * holding ns_lock shared. Data reads and writes on open files take neither. A node's
 * fd slots (Node.fd, Node.dirs) may go from "not kept" to an fd under ns_lock shared
 * (atomically, see node_pin); a kept fd is closed only under ns_lock exclusive or when
 * the node dies.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fsd-ignore.h"
#include "macro.h"

#define FSD_LAYERS_MAX 32
#define FSD_UPPER 0 /* layer index of the upper; lowers are 1..n_layers-1 */

typedef struct Node Node;
typedef struct Fs Fs;

struct Node {
	Node *parent; /* NULL for the root and for nodes gone from the namespace */
	char *name;
	Node *hnext;
	Node *inext;        /* in the hard link table (upper non-dirs with nlink > 1) */
	uint64_t link_ino;  /* its key there, 0 when not in it */
	uint64_t nlookup;   /* kernel references */
	uint64_t nchildren; /* hashed children pointing at us */
	bool hashed;
	mode_t type; /* S_IFMT bits */
	uint64_t ino;
	/* Non-directories: an O_PATH fd of the object (-1 when not kept) and the layer it
	 * is in. Directories: layer is the topmost part's. */
	int fd;
	int layer;
	/* Directories: per layer, an O_PATH fd of the merged directory's part there,
	 * FSD_FD_DROPPED where it has a part but keeps no fd (past the fd budget), -1 where
	 * it has none (lowers below an opaque part included). */
	int *dirs;
	/* Directories, when the kernel opens them without us (no OPENDIR): the merged
	 * listing a READDIR at offset 0 built, served to the READDIRs that follow and
	 * dropped at the end. Guarded by Fs.listing_lock; see fsd-ops-read.c. */
	struct Listing *listing;
};

#define FSD_FD_DROPPED (-2)

typedef struct FsStats {
	uint64_t ops;
	uint64_t lookups;
	uint64_t cache_hits; /* lookups answered by an existing node */
	uint64_t copy_ups;
	uint64_t whiteouts;
	uint64_t nodes;
	uint64_t errors;
} FsStats;

typedef struct FsConfig {
	char **lowers; /* first wins */
	char *upper;
	char *work;
	Ignore *ignore; /* may be NULL; owned by the caller */
	double timeout; /* entry/attr cache timeout, seconds */
	bool writeback;
} FsConfig;

struct Fs {
	int n_layers;
	int layer_fd[FSD_LAYERS_MAX]; /* O_PATH|O_DIRECTORY roots */
	dev_t layer_dev[FSD_LAYERS_MAX];
	bool multi_dev;
	int work_fd;
	bool aufs_whiteouts; /* mknod of 0/0 not permitted: ".wh.<name>" files */
	const char *opaque_xattr;
	Node *root;

	pthread_rwlock_t ns_lock;
	pthread_mutex_t table_lock;
	pthread_mutex_t listing_lock; /* Node.listing pointers and Listing.refs; nothing nests in it */
	bool no_opendir; /* the kernel opens directories itself, caching their listings */
	Node **buckets;
	Node *link_buckets[256];
	size_t n_buckets, n_nodes;
	/* upper inode number → the inode number reported before copy-up */
	uint64_t *ino_keys, *ino_vals;
	size_t ino_size, ino_used;

	const Ignore *ignore;
	/* Nodes keep O_PATH fds (one per file, one per directory part) while fewer than
	 * fd_budget are kept; past it a node's fd is opened per operation from the nearest
	 * ancestor that keeps one (the root always does). node_fds counts the kept ones. */
	uint64_t node_fds, fd_budget;
	double timeout;
	bool writeback;
	uint64_t tmp_seq;
	FsStats stats;
};

#define STAT_INC(fs, f) __atomic_add_fetch(&(fs)->stats.f, 1, __ATOMIC_RELAXED)

/* ---- fsd-layers.c ---- */
int fs_new(const FsConfig *config, Fs **ret);
Fs *fs_free(Fs *fs);
static inline void fs_freep(Fs **fs)
{
	if (*fs)
		fs_free(*fs);
}
void fs_get_stats(Fs *fs, FsStats *ret);
/* "/proc/self/fd/N" */
void fd_path(int fd, char buf[static 32]);

/* ---- fsd-whiteout.c ---- */
bool st_is_whiteout(const struct stat *st);
/* Is the directory (O_PATH fd) marked opaque? */
bool dir_is_opaque(Fs *fs, int dirfd);
int dir_set_opaque(Fs *fs, int dirfd);
/* Make `name` in upper dir `dirfd` a whiteout (replacing nothing: the name must be free). */
int whiteout_create(Fs *fs, int dirfd, const char *name);
/* Is there an aufs-style ".wh.<name>" in dirfd? */
bool whiteout_aufs_exists(int dirfd, const char *name);
/* Is this xattr name ours (hidden from the merged view)? */
bool xattr_is_private(const char *name);

/* ---- fsd-inode.c ---- */
Node *node_lookup_hashed(Fs *fs, Node *parent, const char *name);
/* Insert `n` (fresh, nlookup 1) under parent/name; table_lock held by the caller. */
void node_hash(Fs *fs, Node *parent, Node *n);
void node_unhash(Fs *fs, Node *n);
/* Move a hashed node to a new parent/name (rename). Takes ownership of new_name. */
void node_rehash(Fs *fs, Node *n, Node *new_parent, char *new_name);
/* Swap the (parent, name) of two hashed nodes (RENAME_EXCHANGE). table_lock held. */
void node_exchange(Fs *fs, Node *a, Node *b);
Node *node_new(Fs *fs, mode_t type);
/* Hard links in the upper share one node, so the kernel sees one inode (and one set
 * of cached attributes) for them. table_lock held. */
Node *node_find_link(Fs *fs, uint64_t upper_ino);
void node_add_link(Fs *fs, Node *n, uint64_t upper_ino);
void node_del_link(Fs *fs, Node *n);
/* Free a node that was never hashed (a lookup that lost a race). */
void node_free_fresh(Fs *fs, Node *n);
void node_forget(Fs *fs, Node *n, uint64_t nlookup);
/* An O_PATH fd of the node (a directory: its topmost part) for one operation: its own,
 * or one opened from the nearest ancestor keeping an fd into *tmp, which the caller
 * closes (kept in the node instead when the budget has room again). -ESTALE for a
 * node gone from the namespace without an fd. ns_lock held (shared is enough). */
int node_pin(Fs *fs, Node *n, int *tmp);
#define PIN(fs, n, var)                                                                            \
	_cleanup_close_ int var##_tmp = -1;                                                        \
	int var = node_pin(fs, n, &var##_tmp)
/* The same for the part of directory n in `layer`: -ENOENT where it has none. */
int node_dir_pin(Fs *fs, Node *n, int layer, int *tmp);
#define DIR_PIN(fs, n, layer, var)                                                                 \
	_cleanup_close_ int var##_tmp = -1;                                                        \
	int var = node_dir_pin(fs, n, layer, &var##_tmp)
/* Store a fresh O_PATH fd in a non-directory node, or close it past the budget. */
void node_keep_fd(Fs *fs, Node *n, int fd);
/* The same for the part of a directory node in `layer` (FSD_FD_DROPPED past it). */
void node_keep_dir_fd(Fs *fs, Node *n, int layer, int fd);
/* An fd of the upper part of directory n, opened O_RDONLY for *at() calls that
 * change it (the caller closes it). */
int node_upper_dir_open(Fs *fs, Node *n);
static inline bool node_is_dir(const Node *n)
{
	return n->type == S_IFDIR;
}
/* Does directory n have a part in `layer`? */
static inline bool dir_has_part(const Node *n, int layer)
{
	return __atomic_load_n(&n->dirs[layer], __ATOMIC_RELAXED) != -1;
}
/* Is the node (whole object) in the upper layer? */
static inline bool node_in_upper(const Node *n)
{
	return node_is_dir(n) ? dir_has_part(n, FSD_UPPER) : n->layer == FSD_UPPER;
}
/* Does directory n have a part in a lower layer (overlayfs: "merge or lower")? */
bool dir_has_lower(Fs *fs, const Node *n);
/* Path relative to the root ("" for the root), into buf. -ENAMETOOLONG, -ESTALE. */
int node_path(const Node *n, char *buf, size_t size);
uint64_t fs_ino_for(Fs *fs, int layer, const struct stat *st);
void fs_ino_remember(Fs *fs, uint64_t upper_ino, uint64_t ino);

/* ---- fsd-lookup.c ---- */
/* Resolve parent/name in the merged view; returns a referenced node (nlookup += 1). */
int fs_lookup(Fs *fs, Node *parent, const char *name, Node **ret, struct stat *ret_st);
/* Is `name` present in any lower part of dir `parent` (whiteout needed on removal)? */
bool fs_lower_has(Fs *fs, Node *parent, const char *name, bool *ret_is_dir);
int fs_getattr(Fs *fs, Node *n, struct stat *st);
/* How long the kernel may cache these attributes of n: fs->timeout, but 0 for a lower
 * hard link, whose link count drops when a copy-up breaks the link (the kernel learns
 * of no change from an open for writing or a setxattr, so it has to ask). */
double fs_attr_timeout(Fs *fs, const Node *n, const struct stat *st);

/* ---- fsd-readdir.c ---- */
typedef struct DirEntry {
	char *name;
	uint64_t ino;
	unsigned char type; /* DT_* */
} DirEntry;
typedef struct DirList {
	DirEntry *e;
	size_t n, allocated;
} DirList;
/* Merged listing (whiteouts, opaque parts and ignore patterns applied). stop_at_first:
 * return after one visible entry (emptiness checks). */
int fs_list_dir(Fs *fs, Node *dir, bool stop_at_first, DirList *ret);
void dir_list_done(DirList *l);
/* A shared, reference-counted listing (Node.listing). */
typedef struct Listing {
	DirList list;
	unsigned refs;
} Listing;
void listing_unref(Fs *fs, Listing *l);
/* Remove every whiteout inside an upper directory that is empty in the merged view. */
int fs_clear_upper_dir(Fs *fs, int dirfd);

/* ---- fsd-copyup.c ---- */
/* Make the directory present in upper (creating its ancestors). ns_lock exclusive. */
int copy_up_dir(Fs *fs, Node *n);
/* Copy a non-directory up; with_data false: contents are about to be truncated. */
int copy_up(Fs *fs, Node *n, bool with_data);
/* Copy xattrs (except ours), owner, mode and times from src to dst (O_PATH fds). */
int copy_attrs(Fs *fs, int src, int dst, const struct stat *st);
/* A fresh temporary name in the work dir. */
void work_tmpname(Fs *fs, char buf[static 64]);

/* ---- fsd-ops.c ---- */
struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops fsd_ops;
