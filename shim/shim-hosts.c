/* SPDX-License-Identifier: MIT */
/*
 * hosts-sync / hosts-clear: rewrite only locald's block of /etc/hosts. Serialized by a
 * lock on the /etc directory; written to a temp file in /etc with the old file's mode
 * and owner, fsync'ed and renamed over it. When /etc/hosts is a mount point (containers,
 * tests) rename() fails with EBUSY and the file is rewritten in place under the lock.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#define HOSTS_DIR "/etc"
#define HOSTS_NAME "hosts"

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int replace_file(int dirfd, const struct stat *st, const char *data, size_t n)
{
	char tmp[64];
	int fd = -1, r;
	for (unsigned i = 0; i < 100 && fd < 0; i++) {
		snprintf(tmp, sizeof(tmp), ".hosts.locald.%ld.%u", (long)getpid(), i);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EEXIST;
	r = write_all(fd, data, n);
	if (r == 0 && (fchown(fd, st->st_uid, st->st_gid) < 0 ||
		       fchmod(fd, st->st_mode & 07777) < 0 || fsync(fd) < 0))
		r = -errno;
	close(fd);
	if (r == 0 && renameat(dirfd, tmp, dirfd, HOSTS_NAME) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	(void)fsync(dirfd);
	return 0;
}

static int rewrite_in_place(int fd, const char *data, size_t n)
{
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	int r = write_all(fd, data, n);
	if (r == 0 && (ftruncate(fd, (off_t)n) < 0 || fsync(fd) < 0))
		r = -errno;
	return r;
}

int shim_cmd_hosts(const ShimCaller *c, const ShimConf *conf, bool clear)
{
	char *in = NULL, *names[SHIM_MAX_NAMES];
	size_t in_len = 0, bad = 0;
	int n_names = 0, r;

	if (!clear) {
		r = shim_read_all(STDIN_FILENO, SHIM_MAX_STDIN, &in, &in_len);
		if (r == -EFBIG)
			return shim_fail(c, SHIM_EXIT_REFUSED,
					 "hosts-sync: more than %u bytes on stdin",
					 (unsigned)SHIM_MAX_STDIN);
		if (r < 0)
			return shim_fail(c, SHIM_EXIT_FAILED, "hosts-sync: reading stdin: %s",
					 strerror(-r));
		n_names = shim_names_parse(conf, in, in_len, names, SHIM_MAX_NAMES, &bad);
		if (n_names == -E2BIG)
			return shim_fail(c, SHIM_EXIT_REFUSED, "hosts-sync: more than %u names",
					 (unsigned)SHIM_MAX_NAMES);
		if (n_names < 0)
			return shim_fail(c, SHIM_EXIT_REFUSED,
					 "hosts-sync: line %zu is not a host name ending in "
					 ".localhost or an allowed suffix",
					 bad);
	}

	int dirfd = open(HOSTS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || flock(dirfd, LOCK_EX) < 0)
		return shim_fail(c, SHIM_EXIT_FAILED, "%s: %s", HOSTS_DIR, strerror(errno));
	int fd = openat(dirfd, HOSTS_NAME, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	char *old = NULL, *new = NULL;
	size_t old_len = 0, new_len = 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		return shim_fail(c, SHIM_EXIT_FAILED, "/etc/hosts: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return shim_fail(c, SHIM_EXIT_FAILED, "/etc/hosts is not a regular file");
	r = shim_read_all(fd, SHIM_MAX_HOSTS_FILE, &old, &old_len);
	if (r < 0)
		return shim_fail(c, SHIM_EXIT_FAILED, "/etc/hosts: %s", strerror(-r));
	r = shim_hosts_rewrite(old, old_len, names, (size_t)n_names, &new, &new_len);
	if (r == -EBADMSG)
		return shim_fail(c, SHIM_EXIT_FAILED,
				 "/etc/hosts: damaged \"%s\"/\"%s\" markers; fix them by hand",
				 SHIM_HOSTS_BEGIN, SHIM_HOSTS_END);
	if (r < 0)
		return shim_fail(c, SHIM_EXIT_FAILED, "/etc/hosts: %s", strerror(-r));

	if (new_len != old_len || memcmp(new, old, old_len) != 0) {
		r = replace_file(dirfd, &st, new, new_len);
		if (r == -EBUSY || r == -EXDEV)
			r = rewrite_in_place(fd, new, new_len);
		if (r < 0)
			return shim_fail(c, SHIM_EXIT_FAILED, "writing /etc/hosts: %s",
					 strerror(-r));
	}
	shim_log(c, "%s: %d names", clear ? "hosts-clear" : "hosts-sync", n_names);
	close(fd);
	close(dirfd); /* releases the lock */
	shim_drop_privileges(c);
	free(old);
	free(new);
	free(in);
	return SHIM_EXIT_OK;
}
