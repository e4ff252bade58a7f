/* SPDX-License-Identifier: MIT */
/*
 * Merged directory listings: the upper part first, then each lower part down to the
 * first opaque one; a name seen in a higher part (whiteouts included) hides the same
 * name below; ignored lower paths are left out. Listings are built at opendir and
 * served by offset, so a concurrent change does not shift entries under a reader.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsd.h"
#include "strutil.h"

#define DIR_ENTRIES_MAX (16u * 1024 * 1024)

typedef struct NameSet {
	char **slot;
	size_t size, used;
} NameSet;

static uint64_t hash_name(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* 1 added, 0 already there, -ENOMEM. The set borrows `name`. */
static int nameset_add(NameSet *s, char *name)
{
	if ((s->used + 1) * 2 > s->size) {
		size_t ns = s->size ? s->size * 2 : 64;
		char **n = calloc(ns, sizeof(char *));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < s->size; i++)
			if (s->slot[i]) {
				size_t j = hash_name(s->slot[i]) & (ns - 1);
				while (n[j])
					j = (j + 1) & (ns - 1);
				n[j] = s->slot[i];
			}
		free(s->slot);
		s->slot = n;
		s->size = ns;
	}
	size_t j = hash_name(name) & (s->size - 1);
	while (s->slot[j]) {
		if (strcmp(s->slot[j], name) == 0)
			return 0;
		j = (j + 1) & (s->size - 1);
	}
	s->slot[j] = name;
	s->used++;
	return 1;
}

static bool nameset_has(const NameSet *s, const char *name)
{
	if (!s->size)
		return false;
	size_t j = hash_name(name) & (s->size - 1);
	while (s->slot[j]) {
		if (strcmp(s->slot[j], name) == 0)
			return true;
		j = (j + 1) & (s->size - 1);
	}
	return false;
}

void dir_list_done(DirList *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	*l = (DirList){};
}

void listing_unref(Fs *fs, Listing *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&fs->listing_lock);
	bool last = --l->refs == 0;
	pthread_mutex_unlock(&fs->listing_lock);
	if (last) {
		dir_list_done(&l->list);
		free(l);
	}
}

static int list_push(DirList *l, char *name, uint64_t ino, unsigned char type)
{
	if (l->n >= DIR_ENTRIES_MAX)
		return -E2BIG;
	if (l->n == l->allocated) {
		size_t na = l->allocated ? l->allocated * 2 : 64;
		DirEntry *e = realloc(l->e, na * sizeof(DirEntry));
		if (!e)
			return -ENOMEM;
		l->e = e;
		l->allocated = na;
	}
	l->e[l->n++] = (DirEntry){ .name = name, .ino = ino, .type = type };
	return 0;
}

static int reopen_dir(int pathfd)
{
	char p[32];
	fd_path(pathfd, p);
	int d = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return d < 0 ? -errno : d;
}

int fs_list_dir(Fs *fs, Node *dir, bool stop_at_first, DirList *ret)
{
	DirList list = {};
	NameSet seen = {};
	/* names of whiteouts etc. that are not in the list are owned here */
	char **extra = NULL;
	size_t n_extra = 0, extra_alloc = 0;
	int r = 0;
	char path[PATH_MAX];
	size_t plen = 0;
	bool have_path = false;
	bool check_ignore = fs->ignore && ignore_count(fs->ignore) > 0;

	for (int l = 0; l < fs->n_layers && r >= 0; l++) {
		if (!dir_has_part(dir, l))
			continue;
		int d;
		{
			DIR_PIN(fs, dir, l, pfd);
			d = pfd < 0 ? pfd : reopen_dir(pfd);
		}
		if (d < 0) {
			r = d;
			break;
		}
		DIR *dp = fdopendir(d);
		if (!dp) {
			r = -errno;
			close(d);
			break;
		}
		struct dirent *de;
		while ((errno = 0, de = readdir(dp))) {
			const char *nm = de->d_name;
			if (streq(nm, ".") || streq(nm, ".."))
				continue;
			bool marker = false;
			const char *wh = NULL;
			if (fs->aufs_whiteouts && startswith(nm, ".wh.")) {
				marker = true;
				wh = nm + 4;
				if (startswith(nm, ".wh..wh."))
					continue; /* .wh..wh..opq and friends */
			}
			if (nameset_has(&seen, wh ? wh : nm))
				continue;
			bool whiteout = marker;
			if (!marker && (de->d_type == DT_CHR || de->d_type == DT_UNKNOWN)) {
				struct stat st;
				if (fstatat(d, nm, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    st_is_whiteout(&st))
					whiteout = true;
			}
			char *name = strdup(wh ? wh : nm);
			if (!name) {
				r = -ENOMEM;
				break;
			}
			int a = nameset_add(&seen, name);
			if (a < 0) {
				free(name);
				r = a;
				break;
			}
			bool skip = whiteout;
			if (!skip && l > 0 && check_ignore) {
				if (!have_path) {
					r = node_path(dir, path, sizeof path);
					if (r < 0)
						break;
					plen = strlen(path);
					have_path = true;
				}
				size_t nl = strlen(name);
				if (plen + nl + 2 > sizeof path)
					skip = true;
				else {
					size_t k = plen;
					if (k > 0)
						path[k++] = '/';
					memcpy(path + k, name, nl + 1);
					skip =
					    ignore_hidden(fs->ignore, path, de->d_type == DT_DIR);
					path[plen] = 0;
				}
			}
			if (skip) {
				if (n_extra == extra_alloc) {
					size_t na = extra_alloc ? extra_alloc * 2 : 32;
					char **e = realloc(extra, na * sizeof(char *));
					if (!e) {
						r = -ENOMEM;
						break;
					}
					extra = e;
					extra_alloc = na;
				}
				extra[n_extra++] = name;
				continue;
			}
			r = list_push(&list, name, de->d_ino, de->d_type);
			if (r < 0) {
				free(name);
				break;
			}
			if (stop_at_first)
				break;
		}
		if (r >= 0 && errno != 0 && !de)
			r = -errno;
		closedir(dp);
		if (stop_at_first && list.n > 0)
			break;
	}
	for (size_t i = 0; i < n_extra; i++)
		free(extra[i]);
	free(extra);
	free(seen.slot);
	if (r < 0) {
		dir_list_done(&list);
		return r;
	}
	*ret = list;
	return 0;
}

int fs_clear_upper_dir(Fs *fs, int dirfd)
{
	/* Only whiteouts (and aufs markers) can be left in an upper dir that is empty in
	 * the merged view; anything else means it is not empty after all. */
	int d = reopen_dir(dirfd);
	if (d < 0)
		return d;
	DIR *dp = fdopendir(d);
	if (!dp) {
		close(d);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(dp))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(d, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		bool marker = startswith(de->d_name, ".wh.");
		if (!st_is_whiteout(&st) && !marker) {
			r = -ENOTEMPTY;
			break;
		}
		if (unlinkat(d, de->d_name, 0) < 0) {
			r = -errno;
			break;
		}
	}
	closedir(dp);
	return r;
}
