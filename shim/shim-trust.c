/* SPDX-License-Identifier: MIT */
/*
 * trust-ca [PATH] / untrust-ca: the caller's CA in the system trust store. The file is
 * opened with the caller's identity (effective uid/gid switched to theirs), must be a
 * regular file they own under their home directory, and must be a locald CA
 * (shim-cert.c). What is installed is a fresh PEM of the checked DER, root-owned 0644,
 * named after the caller's uid so users never overwrite each other's.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

#define STATE_CA_SUFFIX "/ca/ca.crt"
#define DEFAULT_STATE "/.local/state/locald"

typedef struct TrustStore {
	const char *dir;     /* anchors directory */
	const char *tool;    /* absolute path of the refresh tool */
	const char *argv[3]; /* its arguments */
} TrustStore;

static const TrustStore stores[] = {
#ifdef __APPLE__
	/* The file is kept for untrust; `security` adds/removes it in the System keychain. */
	{ "/Library/Application Support/locald", "/usr/bin/security", { "security", NULL } },
#else
	{ "/usr/local/share/ca-certificates",
	  "/usr/sbin/update-ca-certificates",
	  { "update-ca-certificates", NULL } }, /* Debian */
	{ "/etc/pki/ca-trust/source/anchors",
	  "/usr/bin/update-ca-trust",
	  { "update-ca-trust", "extract", NULL } }, /* Fedora */
	{ "/etc/ca-certificates/trust-source/anchors",
	  "/usr/bin/trust",
	  { "trust", "extract-compat", NULL } }, /* Arch */
	{ "/usr/share/pki/trust/anchors",
	  "/usr/sbin/update-ca-certificates",
	  { "update-ca-certificates", NULL } }, /* SUSE */
#endif
};

static const TrustStore *find_store(void)
{
	struct stat st;
	for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++)
		if (stat(stores[i].dir, &st) == 0 && S_ISDIR(st.st_mode) &&
		    access(stores[i].tool, X_OK) == 0)
			return &stores[i];
	return NULL;
}

/* Absolute, no "." / ".." / empty components, under home, ending in /ca/ca.crt. */
static bool ca_path_ok(const char *path, const char *home)
{
	size_t n = strlen(path), hl = strlen(home), sl = strlen(STATE_CA_SUFFIX);
	if (n >= 4096 || path[0] != '/' || hl < 2 || n <= hl + sl || strncmp(path, home, hl) != 0 ||
	    path[hl] != '/' || strcmp(path + n - sl, STATE_CA_SUFFIX) != 0)
		return false;
	for (const char *p = path; *p; p++)
		if (*p == '/' &&
		    (p[1] == '/' ||
		     (p[1] == '.' && (p[2] == '/' || p[2] == '\0' ||
				      (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))))
			return false;
	return true;
}

/* Read the CA as the caller: their effective uid/gid, no symlink, owned by them. */
static int read_as_caller(const ShimCaller *c, const char *path, char **ret, size_t *ret_len)
{
	int r = 0, fd;
	struct stat st;
	if (setegid(c->gid) < 0 || seteuid(c->uid) < 0)
		return -EPERM;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		r = -errno;
	if (seteuid(0) < 0 || setegid(0) < 0)
		exit(shim_fail(c, SHIM_EXIT_PRIVDROP, "cannot switch back to root"));
	if (r < 0)
		return r == -ELOOP ? -EMLINK : r;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EMLINK;
	else if (st.st_uid != c->uid)
		r = -EACCES;
	else
		r = shim_read_all(fd, SHIM_MAX_CERT_FILE, ret, ret_len);
	close(fd);
	return r;
}

static int run_tool(const TrustStore *s, const char *file, bool install)
{
	const char *argv[8] = { 0 };
	size_t k = 0;
	for (; s->argv[k]; k++)
		argv[k] = s->argv[k];
#ifdef __APPLE__
	if (install) {
		argv[k++] = "add-trusted-cert";
		argv[k++] = "-d";
		argv[k++] = "-r";
		argv[k++] = "trustRoot";
		argv[k++] = "-k";
		argv[k++] = "/Library/Keychains/System.keychain";
	} else
		argv[k++] = "remove-trusted-cert", argv[k++] = "-d";
	argv[k++] = file;
#else
	(void)file;
	(void)install;
#endif
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
		/* Fully root: shells (dash, bash) drop to the real uid when it differs. */
		int null = open("/dev/null", O_RDWR);
		if (setgroups(0, NULL) < 0 || setgid(0) < 0 || setuid(0) < 0 || null < 0 ||
		    dup2(null, 0) < 0 || dup2(null, 1) < 0)
			_exit(127);
		close(3);
		execve(s->tool, (char *const *)argv, envp);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int write_anchor(const char *dir, const char *name, const char *pem, size_t n)
{
	char tmp[4200], dst[4200];
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp%ld", dir, name, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int r = 0;
	if (fchmod(fd, 0644) < 0 || write(fd, pem, n) != (ssize_t)n || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	if (r == 0 && rename(tmp, dst) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int shim_cmd_trust(const ShimCaller *c, int argc, char **argv, bool install)
{
	struct passwd *pw = getpwuid(c->uid);
	char path[4096], name[64], dst[4200];
	char *raw = NULL, *pem = NULL, *cur = NULL;
	size_t raw_len = 0, pem_len = 0, cur_len = 0;
	int r;

	if (!pw || !pw->pw_dir || pw->pw_dir[0] != '/')
		return shim_fail(c, SHIM_EXIT_REFUSED, "trust-ca: uid %u has no home directory",
				 (unsigned)c->uid);
	snprintf(name, sizeof(name), "locald-%u.crt", (unsigned)c->uid);
	const TrustStore *store = find_store();
	if (!store)
		return shim_fail(c, SHIM_EXIT_UNSUPPORTED,
				 "no system trust store found (update-ca-certificates, "
				 "update-ca-trust or trust)");
	snprintf(dst, sizeof(dst), "%s/%s", store->dir, name);

	if (!install) {
		r = 0;
#ifdef __APPLE__
		/* `security remove-trusted-cert` needs the file: run it first. */
		if (access(dst, F_OK) == 0)
			r = run_tool(store, dst, false);
#endif
		bool existed = unlink(dst) == 0;
		if (!existed && errno != ENOENT)
			return shim_fail(c, SHIM_EXIT_FAILED, "untrust-ca: %s: %s", dst,
					 strerror(errno));
#ifndef __APPLE__
		if (existed)
			r = run_tool(store, dst, false);
#endif
		shim_log(c, "untrust-ca %s", dst);
		shim_drop_privileges(c);
		return r < 0 ? shim_fail(c, SHIM_EXIT_FAILED, "%s failed", store->tool)
			     : SHIM_EXIT_OK;
	}

	if (argc == 1) {
		if (!ca_path_ok(argv[0], pw->pw_dir))
			return shim_fail(c, SHIM_EXIT_REFUSED,
					 "trust-ca: %.200s is not <state dir under %s>/ca/ca.crt",
					 argv[0], pw->pw_dir);
		snprintf(path, sizeof(path), "%s", argv[0]);
	} else if (snprintf(path, sizeof(path), "%s%s%s", pw->pw_dir, DEFAULT_STATE,
			    STATE_CA_SUFFIX) >= (int)sizeof(path))
		return shim_fail(c, SHIM_EXIT_REFUSED, "trust-ca: home directory too long");

	r = read_as_caller(c, path, &raw, &raw_len);
	if (r == -EMLINK)
		return shim_fail(c, SHIM_EXIT_REFUSED, "trust-ca: %.200s is not a regular file",
				 path);
	if (r == -EACCES)
		return shim_fail(c, SHIM_EXIT_REFUSED, "trust-ca: %.200s is not owned by uid %u",
				 path, (unsigned)c->uid);
	if (r == -EFBIG)
		return shim_fail(c, SHIM_EXIT_REFUSED, "trust-ca: %.200s is larger than %u bytes",
				 path, (unsigned)SHIM_MAX_CERT_FILE);
	if (r < 0)
		return shim_fail(c, SHIM_EXIT_REFUSED, "trust-ca: %.200s: %s", path, strerror(-r));
	r = shim_ca_check(raw, raw_len, &pem, &pem_len);
	if (r == -EPERM)
		return shim_fail(c, SHIM_EXIT_REFUSED,
				 "trust-ca: %.200s is not a locald CA (CA:TRUE, O=locald)", path);
	if (r < 0)
		return shim_fail(c, SHIM_EXIT_REFUSED,
				 "trust-ca: %.200s is not one PEM certificate", path);

	/* Unchanged: nothing to write, no tool to run. */
	int fd = open(dst, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	bool same = fd >= 0 && shim_read_all(fd, SHIM_MAX_CERT_FILE, &cur, &cur_len) == 0 &&
		    cur_len == pem_len && memcmp(cur, pem, pem_len) == 0;
	if (fd >= 0)
		close(fd);
	r = 0;
	if (!same) {
#ifdef __APPLE__
		(void)mkdir(store->dir, 0755);
#endif
		r = write_anchor(store->dir, name, pem, pem_len);
		if (r < 0)
			return shim_fail(c, SHIM_EXIT_FAILED, "trust-ca: writing %s: %s", dst,
					 strerror(-r));
		r = run_tool(store, dst, true);
	}
	shim_log(c, "trust-ca %s -> %s%s", path, dst, same ? " (unchanged)" : "");
	shim_drop_privileges(c);
	free(raw);
	free(pem);
	free(cur);
	return r < 0 ? shim_fail(c, SHIM_EXIT_FAILED, "trust-ca: %s failed", store->tool)
		     : SHIM_EXIT_OK;
}
