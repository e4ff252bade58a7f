/* SPDX-License-Identifier: MIT */
/*
 * locald-shim: the setuid-root helper. main() hardens the process before it looks at
 * anything the caller controls, then runs one command from a fixed table. README.md
 * explains each step.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "shim.h"

#define SAFE_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

#ifdef __linux__
#define shim_clearenv clearenv
#else
extern char **environ;
static int shim_clearenv(void)
{
	environ = NULL;
	return 0;
}
#endif

void shim_log(const ShimCaller *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* With no syslog daemon the message is dropped; that is not an error. */
	syslog(LOG_AUTHPRIV | LOG_NOTICE, "uid=%u: %s", (unsigned)c->uid, msg);
}

int shim_fail(const ShimCaller *c, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "locald-shim: %s\n", msg);
	syslog(LOG_AUTHPRIV | LOG_WARNING, "uid=%u: refused/failed (%d): %s", (unsigned)c->uid,
	       code, msg);
	return code;
}

int shim_read_all(int fd, size_t max, char **ret, size_t *ret_len)
{
	char *buf = malloc(max + 2);
	size_t n = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k = read(fd, buf + n, max + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int r = -errno;
			free(buf);
			return r;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > max) {
			free(buf);
			return -EFBIG;
		}
	}
	buf[n] = '\0';
	*ret = buf;
	*ret_len = n;
	return 0;
}

void shim_drop_privileges(const ShimCaller *c)
{
	if (c->uid == 0)
		return; /* called by root: there is nothing to drop */
	if (setgroups(0, NULL) < 0 || setregid(c->gid, c->gid) < 0 || setgid(c->gid) < 0 ||
	    setreuid(c->uid, c->uid) < 0 || setuid(c->uid) < 0)
		exit(shim_fail(c, SHIM_EXIT_PRIVDROP, "cannot drop privileges: %s",
			       strerror(errno)));
	if (setuid(0) == 0 || geteuid() == 0 || getegid() != c->gid)
		exit(shim_fail(c, SHIM_EXIT_PRIVDROP, "privileges could be regained; aborting"));
}

/* Our own binary must be setuid root in a directory only root can write to. */
static int check_installation(const ShimCaller *c)
{
	if (geteuid() != 0)
		return shim_fail(c, SHIM_EXIT_NOT_SETUID,
				 "not running as root: install with `sudo localctl admin setup`");
#ifdef __linux__
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st, dst;
	if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
		return shim_fail(c, SHIM_EXIT_NOT_SETUID, "cannot find our own executable");
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (stat(exe, &st) < 0 || !slash)
		return shim_fail(c, SHIM_EXIT_NOT_SETUID, "cannot stat %s", exe);
	*slash = '\0';
	if (stat(slash == exe ? "/" : exe, &dst) < 0)
		return shim_fail(c, SHIM_EXIT_NOT_SETUID, "cannot stat %s", exe);
	if (st.st_uid != 0 || !(st.st_mode & S_ISUID) || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return shim_fail(c, SHIM_EXIT_NOT_SETUID,
				 "%s/locald-shim must be owned by root, setuid, not group/world "
				 "writable",
				 exe);
	if (dst.st_uid != 0 || (dst.st_mode & (S_IWGRP | S_IWOTH)))
		return shim_fail(c, SHIM_EXIT_NOT_SETUID,
				 "%s must be owned by root and writable only by root", exe);
#endif
	return 0;
}

/* stdin/stdout/stderr must exist, so a file we open never becomes one of them. */
static void sanitize_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			_exit(SHIM_EXIT_FAILED);
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
#ifdef __linux__
	if (close_range(4, ~0U, 0) == 0)
		return;
#endif
	for (int fd = 4; fd < max; fd++)
		close(fd);
}

/* shim.conf: root-owned and not writable by others, or it is ignored (with a warning). */
static void load_conf(const ShimCaller *c, ShimConf *conf)
{
	int fd = open(SHIM_CONF_PATH, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *text = NULL;
	size_t n;
	unsigned line = 0;
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)))
		fprintf(stderr, "locald-shim: warning: ignoring %s: not a root-owned file\n",
			SHIM_CONF_PATH);
	else if (shim_read_all(fd, SHIM_MAX_CONF, &text, &n) < 0 ||
		 shim_conf_parse(text, n, conf, &line) < 0)
		fprintf(stderr, "locald-shim: warning: ignoring %s: invalid (line %u)\n",
			SHIM_CONF_PATH, line);
	free(text);
	close(fd);
	(void)c;
}

static int usage(const ShimCaller *c)
{
	return shim_fail(c, SHIM_EXIT_USAGE,
			 "usage: locald-shim bind-port PORT [--ipv6] | hosts-sync | hosts-clear | "
			 "trust-ca [PATH] | untrust-ca | cgroup-setup [--move-parent] | version");
}

int main(int argc, char **argv)
{
	ShimCaller caller = { .uid = getuid(), .gid = getgid() };
	ShimConf conf = { 0 };

	sanitize_fds();
	if (shim_clearenv() != 0 || setenv("PATH", SAFE_PATH, 1) < 0)
		_exit(SHIM_EXIT_FAILED);
	umask(022);
	openlog("locald-shim", LOG_PID, LOG_AUTHPRIV);

	if (argc < 2 || argc > 4)
		return usage(&caller);
	const char *cmd = argv[1];
	if (strcmp(cmd, "version") == 0 && argc == 2) {
		printf("locald-shim %s\n", SHIM_VERSION);
		return SHIM_EXIT_OK;
	}

	int r = check_installation(&caller);
	if (r != 0)
		return r;
	/* setuid does not change the group: files we create must not get the caller's. */
	if (setegid(0) < 0)
		return shim_fail(&caller, SHIM_EXIT_PRIVDROP, "setegid(0): %s", strerror(errno));
	load_conf(&caller, &conf);

	if (strcmp(cmd, "bind-port") == 0)
		return shim_cmd_bind_port(&caller, &conf, argc - 2, argv + 2);
	if (strcmp(cmd, "hosts-sync") == 0 && argc == 2)
		return shim_cmd_hosts(&caller, &conf, false);
	if (strcmp(cmd, "hosts-clear") == 0 && argc == 2)
		return shim_cmd_hosts(&caller, &conf, true);
	if (strcmp(cmd, "trust-ca") == 0 && argc <= 3)
		return shim_cmd_trust(&caller, argc - 2, argv + 2, true);
	if (strcmp(cmd, "untrust-ca") == 0 && argc == 2)
		return shim_cmd_trust(&caller, 0, NULL, false);
	if (strcmp(cmd, "cgroup-setup") == 0 &&
	    (argc == 2 || (argc == 3 && strcmp(argv[2], "--move-parent") == 0)))
		return shim_cmd_cgroup_setup(&caller, argc == 3);
	return usage(&caller);
}
