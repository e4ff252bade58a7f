/* SPDX-License-Identifier: MIT */
/*
 * `sudo localctl admin setup|uninstall`: install locald-shim root:root 4755 into
 * PREFIX/libexec/locald (default /usr/local), then, as the user who ran sudo, delegate a
 * cgroup and trust the CA; uninstall reverses each step. Both are idempotent and report
 * one line per step.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl-privileged.h"
#include "parse-util.h"
#include "paths.h"
#include "strutil.h"

static const char admin_help[] =
    "Usage: sudo localctl admin setup|uninstall [--prefix DIR]\n\n"
    "  setup      install locald-shim setuid root into DIR/libexec/locald (default\n"
    "             /usr/local), delegate a cgroup to $SUDO_USER and trust their CA\n"
    "  uninstall  untrust the CA, clear /etc/hosts' locald block, remove the cgroup\n"
    "             and the shim\n";

/* The shim we ship: $LOCALD_SHIM_SOURCE, next to localctl, or ../shim/ in a build tree. */
static char *shim_source(void)
{
	const char *env = getenv("LOCALD_SHIM_SOURCE");
	if (!isempty(env))
		return strdup(env);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	static const char *const rel[] = { "locald-shim", "../libexec/locald/locald-shim",
					   "../shim/locald-shim" };
	for (size_t i = 0; i < ELEMENTSOF(rel); i++) {
		char *p = path_join(exe, rel[i]);
		if (p && access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

static int copy_file(const char *src, const char *dst)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	char buf[65536];
	if (in < 0 || out < 0)
		return -errno;
	for (;;) {
		ssize_t k = read(in, buf, sizeof(buf));
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		if (write(out, buf, (size_t)k) != k)
			return -EIO;
	}
	if (fchown(out, 0, 0) < 0 || fchmod(out, 04755) < 0 || fsync(out) < 0)
		return -errno;
	return 0;
}

static bool same_file(const char *a, const char *b)
{
	struct stat st;
	if (stat(b, &st) < 0 || st.st_uid != 0 || (st.st_mode & 07777) != 04755)
		return false;
	FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
	bool same = fa && fb;
	while (same) {
		int ca = fgetc(fa), cb = fgetc(fb);
		if (ca != cb)
			same = false;
		if (ca == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Run the installed shim as the user who ran sudo (so it acts for them). */
static int shim_as_user(const char *shim, uid_t uid, gid_t gid, const char *a, const char *b)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
			_exit(127);
		/* we print one line per step ourselves; the shim's errors stay on stderr */
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0)
			(void)dup2(null, STDOUT_FILENO);
		execl(shim, "locald-shim", a, b, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#ifdef __linux__
/*
 * Remove the cgroup `name` under `dir_fd` and the cgroups superd made in it (services/…,
 * superd/), deepest first. Populated ones stay (rmdir fails with EBUSY): a running superd
 * keeps the tree. cgroupfs holds no symlinks; O_NOFOLLOW anyway.
 */
static int cgroup_remove_tree(int dir_fd, const char *name, unsigned depth)
{
	if (depth > 16)
		return -ELOOP;
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && !streq(de->d_name, ".") && !streq(de->d_name, "..")) {
			int k = cgroup_remove_tree(dirfd(d), de->d_name, depth + 1);
			if (k < 0 && r == 0)
				r = k;
		}
	closedir(d);
	if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && r == 0)
		r = -errno;
	return r;
}

/*
 * A locald-proxyd of `uid` started before the shim was installed keeps the ports superd
 * gave it (8443, …) until locald restarts. superd passes them as LOCALD_HTTPS_PORT, which
 * root can read back. Returns its pid, else 0.
 */
static pid_t proxyd_off_443(uid_t uid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;
	while (d && !found && (de = readdir(d))) {
		uint32_t pid;
		struct stat st;
		char path[64], comm[32] = "", env[16384];
		if (safe_atou32(de->d_name, &pid) < 0 ||
		    fstatat(dirfd(d), de->d_name, &st, 0) < 0 || st.st_uid != uid)
			continue;
		(void)strfmt(path, sizeof path, "/proc/%s/comm", de->d_name);
		_cleanup_close_ int cfd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = cfd < 0 ? -1 : read(cfd, comm, sizeof comm - 1);
		if (n <= 0 || !streq(strstrip(comm), "locald-proxyd"))
			continue;
		(void)strfmt(path, sizeof path, "/proc/%s/environ", de->d_name);
		_cleanup_close_ int efd = open(path, O_RDONLY | O_CLOEXEC);
		n = efd < 0 ? -1 : read(efd, env, sizeof env - 1);
		if (n < 0)
			continue;
		env[n] = '\0';
		const char *port = NULL;
		for (const char *e = env; e < env + n; e += strlen(e) + 1)
			if (startswith(e, "LOCALD_HTTPS_PORT="))
				port = e + STRLEN("LOCALD_HTTPS_PORT=");
		if (!port || !streq(port, "443"))
			found = (pid_t)pid;
	}
	if (d)
		closedir(d);
	return found;
}
#endif

int cmd_admin(Ctl *ctl, int argc, char **argv)
{
	const char *prefix = "/usr/local", *verb = NULL;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-h") || streq(argv[i], "--help"))
			return ctl_usage(ctl, true, admin_help);
		else if (streq(argv[i], "--prefix") && i + 1 < argc)
			prefix = argv[++i];
		else if (!verb && (streq(argv[i], "setup") || streq(argv[i], "uninstall")))
			verb = argv[i];
		else
			return ctl_usage(ctl, false, admin_help);
	}
	if (!verb)
		return ctl_usage(ctl, false, admin_help);
	if (prefix[0] != '/')
		return ctl_fail(ctl, EXIT_USAGE, NULL, "--prefix must be an absolute path");
	if (geteuid() != 0)
		return ctl_fail(ctl, EXIT_FAILED, "run it with sudo", "admin %s needs root", verb);

	/* Who we act for: the user who ran sudo, else root itself. */
	uid_t uid = 0;
	gid_t gid = 0;
	const char *su = getenv("SUDO_UID");
	uint32_t v;
	if (!isempty(su) && safe_atou32(su, &v) == 0) {
		struct passwd *pw = getpwuid((uid_t)v);
		if (!pw)
			return ctl_fail(ctl, EXIT_FAILED, NULL, "SUDO_UID %s is not a user", su);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}

	_cleanup_free_ char *dir = strdupf("%s/libexec/locald", prefix);
	_cleanup_free_ char *dst = dir ? path_join(dir, "locald-shim") : NULL;
	_cleanup_free_ char *tmp = dst ? strdupf("%s.new", dst) : NULL;
	if (!tmp)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	int failed = 0, r;

	if (streq(verb, "setup")) {
		_cleanup_free_ char *src = shim_source();
		if (!src)
			return ctl_fail(ctl, EXIT_FAILED,
					"set LOCALD_SHIM_SOURCE to the built shim",
					"cannot find locald-shim to install");
		if (same_file(src, dst))
			printf("shim: %s already installed\n", dst);
		else {
			r = mkdir_p(dir, 0755);
			if (r >= 0)
				r = copy_file(src, tmp);
			if (r >= 0 && rename(tmp, dst) < 0)
				r = -errno;
			if (r < 0) {
				(void)unlink(tmp);
				return ctl_fail(ctl, EXIT_FAILED, NULL, "installing %s: %s", dst,
						strerror(-r));
			}
			printf("shim: installed %s (root:root 4755)\n", dst);
		}
		r = shim_as_user(dst, uid, gid, "cgroup-setup", NULL);
		if (r == 0)
			printf("cgroup: delegated to uid %u\n", (unsigned)uid);
		else if (r == 6)
			printf("cgroup: not needed here (see the shim's message)\n");
		else
			failed++;
		struct passwd *pw = getpwuid(uid);
		_cleanup_free_ char *ca =
		    pw ? strdupf("%s/.local/state/locald/ca/ca.crt", pw->pw_dir) : NULL;
		if (!ca || access(ca, F_OK) < 0)
			printf("CA: none yet: the first `localctl up` creates it and has the shim "
			       "trust it (a CA kept elsewhere: `localctl trust`)\n");
		else if (shim_as_user(dst, uid, gid, "trust-ca", NULL) == 0)
			printf("CA: trusted by the system store\n");
		else
			failed++;
#ifdef __linux__
		pid_t old = proxyd_off_443(uid);
		if (old > 0)
			printf("proxy: the running locald-proxyd (pid %d) keeps its ports: run "
			       "`localctl server restart` as %s to move it to 80/443\n",
			       (int)old, pw ? pw->pw_name : "the user");
#endif
	} else {
		if (access(dst, X_OK) == 0) {
			if (shim_as_user(dst, uid, gid, "untrust-ca", NULL) != 0)
				failed++;
			else
				printf("CA: removed from the system store\n");
			if (shim_as_user(dst, uid, gid, "hosts-clear", NULL) != 0)
				failed++;
			else
				printf("/etc/hosts: locald block removed\n");
		}
#ifdef __linux__
		/* The delegated cgroup and what superd made in it, unless populated. */
		static const char *const roots[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
		for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
			_cleanup_free_ char *top = strdupf("%s/locald", roots[i]);
			_cleanup_close_ int fd =
			    top ? open(top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
			char name[16];
			(void)strfmt(name, sizeof name, "%u", (unsigned)uid);
			r = fd < 0 ? -ENOENT : cgroup_remove_tree(fd, name, 0);
			if (r == 0)
				printf("cgroup: removed %s/%s\n", top, name);
			else if (r == -EBUSY) {
				printf("cgroup: %s/%s still has processes (locald is running: "
				       "`localctl server stop`, then uninstall again)\n",
				       top, name);
				failed++;
			}
			if (top)
				(void)rmdir(top);
		}
#endif
		if (unlink(dst) == 0)
			printf("shim: removed %s\n", dst);
		else if (errno != ENOENT)
			return ctl_fail(ctl, EXIT_FAILED, NULL, "removing %s: %s", dst,
					strerror(errno));
		else
			printf("shim: not installed in %s\n", dir);
		(void)rmdir(dir);
	}
	return failed ? EXIT_FAILED : EXIT_OK;
}
