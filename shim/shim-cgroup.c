/* SPDX-License-Identifier: MIT */
/*
 * cgroup-setup: <cgroup2 root>/locald/<uid>, owned by the caller, with the controllers
 * the root offers enabled down to it (cgroup v2 delegation: the directory and its
 * cgroup.procs, cgroup.subtree_control, cgroup.threads belong to the user). Refused when
 * systemd runs the machine: it delegates through user@.service instead. With
 * --move-parent the calling process (a daemon of the same uid, e.g. superd) is moved
 * into it: cgroup v2 lets only the owner of the common ancestor move a process in.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#ifdef __linux__
/* The first cgroup2 mount in our mount table. */
static int cgroup2_root(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	int r = -ENOENT;
	if (!f)
		return -errno;
	while (r < 0 && fgets(line, sizeof(line), f)) {
		char mnt[512], fstype[64];
		char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0 ||
		    strchr(mnt, '\\'))
			continue;
		r = snprintf(buf, size, "%s", mnt) < (int)size ? 0 : -ENAMETOOLONG;
	}
	fclose(f);
	return r;
}

/* Enable every controller listed in dir/cgroup.controllers in dir/cgroup.subtree_control. */
static void enable_controllers(const char *dir)
{
	char path[600], list[512];
	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, list, sizeof(list) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	list[n] = '\0';
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	for (char *save = NULL, *c = strtok_r(list, " \n", &save); c;
	     c = strtok_r(NULL, " \n", &save)) {
		char op[80];
		int w = open(path, O_WRONLY | O_CLOEXEC);
		int len = snprintf(op, sizeof(op), "+%s", c);
		if (w >= 0) {
			(void)!write(w, op, (size_t)len); /* a busy controller stays off */
			close(w);
		}
	}
}

static int make_owned_dir(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return chown(path, uid, gid) < 0 ? -errno : 0;
}

/* The parent's real, effective, saved and fs uids are all the caller's. */
static bool parent_is_callers(pid_t ppid, uid_t uid)
{
	char path[64], line[256];
	unsigned a, b, d, e;
	bool ok = false;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)ppid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %u %u %u %u", &a, &b, &d, &e) == 4)
			ok = a == uid && b == uid && d == uid && e == uid;
	fclose(f);
	return ok;
}

int shim_cmd_cgroup_setup(const ShimCaller *c, bool move_parent)
{
	char root[512], top[600], mine[640], f[700];
	static const char *const delegated[] = { "cgroup.procs", "cgroup.subtree_control",
						 "cgroup.threads" };
	struct stat st;
	if (stat("/run/systemd/system", &st) == 0)
		return shim_fail(c, SHIM_EXIT_UNSUPPORTED,
				 "cgroup-setup: systemd manages cgroups here; it delegates one "
				 "to user@%u.service",
				 (unsigned)c->uid);
	if (cgroup2_root(root, sizeof(root)) < 0)
		return shim_fail(c, SHIM_EXIT_UNSUPPORTED, "cgroup-setup: no cgroup2 mount");
	snprintf(top, sizeof(top), "%s/locald", root);
	snprintf(mine, sizeof(mine), "%s/%u", top, (unsigned)c->uid);

	enable_controllers(root);
	int r = make_owned_dir(top, 0, 0);
	if (r == 0) {
		enable_controllers(top);
		r = make_owned_dir(mine, c->uid, c->gid);
	}
	for (size_t i = 0; r == 0 && i < sizeof(delegated) / sizeof(delegated[0]); i++) {
		snprintf(f, sizeof(f), "%s/%s", mine, delegated[i]);
		if (chown(f, c->uid, c->gid) < 0 && errno != ENOENT)
			r = -errno;
	}
	pid_t ppid = getppid();
	if (r == 0 && move_parent) {
		if (ppid <= 1 || c->uid == 0 || !parent_is_callers(ppid, c->uid))
			return shim_fail(c, SHIM_EXIT_REFUSED,
					 "cgroup-setup: the parent process is not uid %u's",
					 (unsigned)c->uid);
		char pid[32];
		int len = snprintf(pid, sizeof(pid), "%ld", (long)ppid);
		snprintf(f, sizeof(f), "%s/cgroup.procs", mine);
		int fd = open(f, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, pid, (size_t)len) != len)
			r = -errno;
		if (fd >= 0)
			close(fd);
	}
	if (r < 0)
		return shim_fail(c, SHIM_EXIT_FAILED, "cgroup-setup: %s: %s", mine, strerror(-r));
	shim_log(c, "cgroup-setup %s%s", mine, move_parent ? " (parent moved in)" : "");
	shim_drop_privileges(c);
	printf("%s\n", mine);
	return SHIM_EXIT_OK;
}
#else
int shim_cmd_cgroup_setup(const ShimCaller *c, bool move_parent)
{
	(void)move_parent;
	return shim_fail(c, SHIM_EXIT_UNSUPPORTED, "cgroup-setup: cgroups are Linux-only");
}
#endif
