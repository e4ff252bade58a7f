/* SPDX-License-Identifier: MIT */
/*
 * The inode cache: one Node per path the kernel knows, found by (parent, name) in a
 * hash table so two lookups of one path share a node (and its copy-up state). A node
 * lives while the kernel holds references (nlookup) or hashed children point at it.
 * The cache is bounded by the kernel: it forgets nodes under memory pressure.
 *
 * Inode numbers are stable for the life of a mount: the real file's, and after a
 * copy-up the one reported before it (an upper ino → ino table). With layers on
 * several filesystems, the layer's device index goes into the top bits.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fsd.h"

static size_t hash_key(const Node *parent, const char *name, size_t n_buckets)
{
	uint64_t h = (uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ULL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return (size_t)(h ^ (h >> 29)) & (n_buckets - 1);
}

Node *node_new(Fs *fs, mode_t type)
{
	Node *n = calloc(1, sizeof(Node));
	if (!n)
		return NULL;
	n->type = type;
	n->fd = -1;
	if (type == S_IFDIR) {
		n->dirs = malloc(sizeof(int) * (size_t)fs->n_layers);
		if (!n->dirs) {
			free(n);
			return NULL;
		}
		for (int l = 0; l < fs->n_layers; l++)
			n->dirs[l] = -1;
	}
	return n;
}

Node *node_find_link(Fs *fs, uint64_t upper_ino)
{
	for (Node *n = fs->link_buckets[upper_ino & 255]; n; n = n->inext)
		if (n->link_ino == upper_ino)
			return n;
	return NULL;
}

void node_add_link(Fs *fs, Node *n, uint64_t upper_ino)
{
	if (n->link_ino || node_find_link(fs, upper_ino))
		return;
	n->link_ino = upper_ino;
	n->inext = fs->link_buckets[upper_ino & 255];
	fs->link_buckets[upper_ino & 255] = n;
}

void node_del_link(Fs *fs, Node *n)
{
	if (!n->link_ino)
		return;
	for (Node **pp = &fs->link_buckets[n->link_ino & 255]; *pp; pp = &(*pp)->inext)
		if (*pp == n) {
			*pp = n->inext;
			break;
		}
	n->link_ino = 0;
	n->inext = NULL;
}

static void node_destroy(Fs *fs, Node *n)
{
	node_del_link(fs, n);
	if (n->listing) {
		pthread_mutex_lock(&fs->listing_lock);
		Listing *l = n->listing;
		n->listing = NULL;
		pthread_mutex_unlock(&fs->listing_lock);
		listing_unref(fs, l);
	}
	uint64_t kept = 0;
	if (n->dirs) {
		for (int l = 0; l < fs->n_layers; l++)
			if (n->dirs[l] >= 0) {
				safe_close(n->dirs[l]);
				kept++;
			}
		free(n->dirs);
	} else if (n->fd >= 0) {
		safe_close(n->fd);
		kept++;
	}
	if (kept)
		__atomic_sub_fetch(&fs->node_fds, kept, __ATOMIC_RELAXED);
	free(n->name);
	free(n);
}

static bool budget_take(Fs *fs)
{
	if (__atomic_add_fetch(&fs->node_fds, 1, __ATOMIC_RELAXED) <= fs->fd_budget)
		return true;
	__atomic_sub_fetch(&fs->node_fds, 1, __ATOMIC_RELAXED);
	return false;
}

/* A node that dropped its fd keeps one it had to open again, if the budget has room
 * by now. Shared ns_lock: another thread may race us to it; slots only go from
 * "dropped" to an fd here, and fds are closed only with ns_lock exclusive or when
 * the node dies, so a reader holding either value is safe. */
static bool adopt_fd(Fs *fs, int *slot, int dropped, int fd)
{
	if (!budget_take(fs))
		return false;
	if (__atomic_compare_exchange_n(slot, &dropped, fd, false, __ATOMIC_RELEASE,
					__ATOMIC_RELAXED))
		return true;
	__atomic_sub_fetch(&fs->node_fds, 1, __ATOMIC_RELAXED);
	return false;
}

int node_dir_pin(Fs *fs, Node *n, int layer, int *tmp)
{
	*tmp = -1;
	int f = __atomic_load_n(&n->dirs[layer], __ATOMIC_ACQUIRE);
	if (f >= 0)
		return f;
	if (f == -1)
		return -ENOENT;

	/* The path from the nearest ancestor that keeps an fd for this layer (a part of a
	 * directory implies a part of its parent in the same layer; the root keeps all),
	 * written right to left, then walked one O_NOFOLLOW component at a time. */
	char path[PATH_MAX];
	size_t pos = sizeof path - 1;
	path[pos] = 0;
	const Node *a = n;
	int base;
	for (;;) {
		if (!a->parent)
			return -ESTALE; /* gone from the namespace */
		size_t l = strlen(a->name);
		if (l + 1 > pos)
			return -ENAMETOOLONG;
		pos -= l;
		memcpy(path + pos, a->name, l);
		path[--pos] = '/';
		a = a->parent;
		base = __atomic_load_n(&a->dirs[layer], __ATOMIC_ACQUIRE);
		if (base >= 0)
			break;
		if (base == -1)
			return -ESTALE;
	}
	int cur = -1;
	for (char *c = path + pos + 1; *c;) {
		char *e = strchr(c, '/');
		if (e)
			*e = 0;
		int nf =
		    openat(cur >= 0 ? cur : base, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int err = errno;
		safe_close(cur);
		if (nf < 0)
			return -err;
		cur = nf;
		c = e ? e + 1 : c + strlen(c);
	}
	if (adopt_fd(fs, &n->dirs[layer], FSD_FD_DROPPED, cur))
		return cur;
	*tmp = cur;
	return cur;
}

int node_pin(Fs *fs, Node *n, int *tmp)
{
	if (node_is_dir(n))
		return node_dir_pin(fs, n, n->layer, tmp);
	*tmp = -1;
	int f = __atomic_load_n(&n->fd, __ATOMIC_ACQUIRE);
	if (f >= 0)
		return f;
	if (!n->parent)
		return -ESTALE;
	_cleanup_close_ int ptmp = -1;
	int pfd = node_dir_pin(fs, n->parent, n->layer, &ptmp);
	if (pfd < 0)
		return pfd == -ENOENT ? -ESTALE : pfd;
	f = openat(pfd, n->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0)
		return -errno;
	if (adopt_fd(fs, &n->fd, -1, f))
		return f;
	*tmp = f;
	return f;
}

void node_keep_fd(Fs *fs, Node *n, int fd)
{
	if (n->fd >= 0) {
		safe_close(n->fd);
		n->fd = fd;
		return;
	}
	if (!budget_take(fs)) {
		safe_close(fd);
		return;
	}
	n->fd = fd;
}

void node_keep_dir_fd(Fs *fs, Node *n, int layer, int fd)
{
	if (n->dirs[layer] >= 0) {
		safe_close(n->dirs[layer]);
		n->dirs[layer] = fd;
		return;
	}
	if (!budget_take(fs)) {
		safe_close(fd);
		fd = FSD_FD_DROPPED;
	}
	n->dirs[layer] = fd;
}

int node_upper_dir_open(Fs *fs, Node *n)
{
	DIR_PIN(fs, n, FSD_UPPER, pfd);
	if (pfd < 0)
		return pfd;
	char p[32];
	fd_path(pfd, p);
	int d = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return d < 0 ? -errno : d;
}

bool dir_has_lower(Fs *fs, const Node *n)
{
	for (int l = 1; l < fs->n_layers; l++)
		if (dir_has_part(n, l))
			return true;
	return false;
}

void node_free_fresh(Fs *fs, Node *n)
{
	node_destroy(fs, n);
}

Node *node_lookup_hashed(Fs *fs, Node *parent, const char *name)
{
	for (Node *n = fs->buckets[hash_key(parent, name, fs->n_buckets)]; n; n = n->hnext)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

static void grow(Fs *fs)
{
	size_t nb = fs->n_buckets * 2;
	Node **b = calloc(nb, sizeof(Node *));
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < fs->n_buckets; i++)
		while (fs->buckets[i]) {
			Node *n = fs->buckets[i];
			fs->buckets[i] = n->hnext;
			size_t h = hash_key(n->parent, n->name, nb);
			n->hnext = b[h];
			b[h] = n;
		}
	free(fs->buckets);
	fs->buckets = b;
	fs->n_buckets = nb;
}

void node_hash(Fs *fs, Node *parent, Node *n)
{
	if (fs->n_nodes >= fs->n_buckets)
		grow(fs);
	n->parent = parent;
	parent->nchildren++;
	size_t h = hash_key(parent, n->name, fs->n_buckets);
	n->hnext = fs->buckets[h];
	fs->buckets[h] = n;
	n->hashed = true;
	fs->n_nodes++;
}

static void maybe_free(Fs *fs, Node *n);

static void unlink_from_bucket(Fs *fs, Node *n)
{
	Node **pp = &fs->buckets[hash_key(n->parent, n->name, fs->n_buckets)];
	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == n) {
			*pp = n->hnext;
			break;
		}
	n->hnext = NULL;
}

void node_unhash(Fs *fs, Node *n)
{
	if (!n->hashed)
		return;
	unlink_from_bucket(fs, n);
	n->hashed = false;
	fs->n_nodes--;
	Node *p = n->parent;
	n->parent = NULL;
	p->nchildren--;
	maybe_free(fs, p);
}

void node_rehash(Fs *fs, Node *n, Node *new_parent, char *new_name)
{
	Node *old_parent = n->parent;
	if (n->hashed)
		unlink_from_bucket(fs, n);
	else
		fs->n_nodes++;
	free(n->name);
	n->name = new_name;
	n->parent = new_parent;
	new_parent->nchildren++;
	size_t h = hash_key(new_parent, new_name, fs->n_buckets);
	n->hnext = fs->buckets[h];
	fs->buckets[h] = n;
	n->hashed = true;
	if (old_parent) {
		old_parent->nchildren--;
		maybe_free(fs, old_parent);
	}
}

void node_exchange(Fs *fs, Node *a, Node *b)
{
	unlink_from_bucket(fs, a);
	unlink_from_bucket(fs, b);
	Node *p = a->parent;
	char *name = a->name;
	a->parent = b->parent;
	a->name = b->name;
	b->parent = p;
	b->name = name;
	size_t h = hash_key(a->parent, a->name, fs->n_buckets);
	a->hnext = fs->buckets[h];
	fs->buckets[h] = a;
	h = hash_key(b->parent, b->name, fs->n_buckets);
	b->hnext = fs->buckets[h];
	fs->buckets[h] = b;
}

static void maybe_free(Fs *fs, Node *n)
{
	while (n && n != fs->root && n->nlookup == 0 && n->nchildren == 0) {
		Node *p = n->parent;
		if (n->hashed) {
			unlink_from_bucket(fs, n);
			fs->n_nodes--;
		}
		node_destroy(fs, n);
		if (!p)
			break;
		p->nchildren--;
		n = p;
	}
}

void node_forget(Fs *fs, Node *n, uint64_t nlookup)
{
	pthread_mutex_lock(&fs->table_lock);
	n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
	maybe_free(fs, n);
	pthread_mutex_unlock(&fs->table_lock);
}

int node_path(const Node *n, char *buf, size_t size)
{
	/* Walk up, writing names right to left, then move to the front. */
	if (size == 0)
		return -ENAMETOOLONG;
	size_t pos = size - 1;
	buf[pos] = 0;
	bool first = true;
	const Node *c = n;
	for (; c->parent; c = c->parent) {
		size_t l = strlen(c->name) + (first ? 0 : 1);
		if (l > pos)
			return -ENAMETOOLONG;
		pos -= l;
		memcpy(buf + pos, c->name, strlen(c->name));
		if (!first)
			buf[pos + l - 1] = '/';
		first = false;
	}
	if (c->name)
		return -ESTALE; /* gone from the namespace */
	memmove(buf, buf + pos, size - pos);
	return 0;
}

static uint64_t mix_dev(Fs *fs, int layer, uint64_t ino)
{
	if (!fs->multi_dev)
		return ino;
	/* Index of the first layer with this device: layers on one fs share it. */
	int d = 0;
	for (int l = 0; l < fs->n_layers; l++)
		if (fs->layer_dev[l] == fs->layer_dev[layer]) {
			d = l;
			break;
		}
	return ino ^ ((uint64_t)d << 56);
}

uint64_t fs_ino_for(Fs *fs, int layer, const struct stat *st)
{
	if (layer == FSD_UPPER && fs->ino_used) {
		uint64_t k = st->st_ino;
		pthread_mutex_lock(&fs->table_lock);
		for (size_t i = (size_t)(k * 0x9e3779b97f4a7c15ULL) & (fs->ino_size - 1);;
		     i = (i + 1) & (fs->ino_size - 1)) {
			if (fs->ino_keys[i] == 0)
				break;
			if (fs->ino_keys[i] == k) {
				uint64_t v = fs->ino_vals[i];
				pthread_mutex_unlock(&fs->table_lock);
				return v;
			}
		}
		pthread_mutex_unlock(&fs->table_lock);
	}
	return mix_dev(fs, layer, st->st_ino);
}

void fs_ino_remember(Fs *fs, uint64_t upper_ino, uint64_t ino)
{
	if (upper_ino == 0)
		return;
	pthread_mutex_lock(&fs->table_lock);
	if ((fs->ino_used + 1) * 2 > fs->ino_size) {
		size_t ns = fs->ino_size ? fs->ino_size * 2 : 1024;
		uint64_t *k = calloc(ns, sizeof(uint64_t)), *v = calloc(ns, sizeof(uint64_t));
		if (!k || !v) {
			free(k);
			free(v);
			pthread_mutex_unlock(&fs->table_lock);
			return; /* the number may change after a forget; nothing breaks */
		}
		for (size_t i = 0; i < fs->ino_size; i++)
			if (fs->ino_keys[i]) {
				size_t j =
				    (size_t)(fs->ino_keys[i] * 0x9e3779b97f4a7c15ULL) & (ns - 1);
				while (k[j])
					j = (j + 1) & (ns - 1);
				k[j] = fs->ino_keys[i];
				v[j] = fs->ino_vals[i];
			}
		free(fs->ino_keys);
		free(fs->ino_vals);
		fs->ino_keys = k;
		fs->ino_vals = v;
		fs->ino_size = ns;
	}
	size_t j = (size_t)(upper_ino * 0x9e3779b97f4a7c15ULL) & (fs->ino_size - 1);
	while (fs->ino_keys[j] && fs->ino_keys[j] != upper_ino)
		j = (j + 1) & (fs->ino_size - 1);
	if (!fs->ino_keys[j])
		fs->ino_used++;
	fs->ino_keys[j] = upper_ino;
	fs->ino_vals[j] = ino;
	pthread_mutex_unlock(&fs->table_lock);
}
