/* SPDX-License-Identifier: MIT */
/* Running locald-shim from a daemon: find it, pass fd 3, collect the listener. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim-client.h"

/* macOS has no SOCK_CLOEXEC/MSG_CMSG_CLOEXEC/pipe2: FD_CLOEXEC is set afterwards. */
#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC 0
#endif
#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0
#endif

static int cloexec_pipe(int fds[2])
{
	if (pipe(fds) < 0)
		return -1;
	(void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	(void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	return 0;
}

static bool installed(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 &&
	       (st.st_mode & S_ISUID);
}

int shim_find(char **ret_path)
{
	char buf[PATH_MAX];
	const char *env = getenv("LOCALD_SHIM");
	if (env && *env) {
		if (!installed(env))
			return -ENOENT;
		return (*ret_path = strdup(env)) ? 0 : -ENOMEM;
	}
#ifdef __linux__
	/* Installed layout: PREFIX/bin/<us> and PREFIX/libexec/locald/locald-shim, where
	 * `admin setup --prefix PREFIX` puts it; or a copy right next to us. */
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			static const char *const rel[] = { "locald-shim",
							   "../libexec/locald/locald-shim" };
			*slash = '\0';
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				int k = snprintf(buf, sizeof(buf), "%s/%s", self, rel[i]);
				if (k > 0 && (size_t)k < sizeof(buf) && installed(buf))
					return (*ret_path = strdup(buf)) ? 0 : -ENOMEM;
			}
		}
	}
#endif
	snprintf(buf, sizeof(buf), "/usr/local/libexec/locald/locald-shim");
	if (installed(buf))
		return (*ret_path = strdup(buf)) ? 0 : -ENOMEM;
	return -ENOENT;
}

/* Run the shim with argv, stdin from `in` (may be NULL), fd 3 = pass_fd (or none). */
static int run(const char *path, char *const *argv, const char *in, int pass_fd)
{
	int pipefd[2] = { -1, -1 };
	if (in && cloexec_pipe(pipefd) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		if (in) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return r;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(in ? pipefd[0] : null, 0) < 0 || dup2(null, 1) < 0)
			_exit(127);
		if (pass_fd >= 0 ? dup2(pass_fd, 3) < 0 : (close(3), false))
			_exit(127);
		execv(path, argv);
		_exit(127);
	}
	if (in) {
		close(pipefd[0]);
		size_t n = strlen(in);
		void (*old)(int) = signal(SIGPIPE, SIG_IGN);
		while (n > 0) {
			ssize_t k = write(pipefd[1], in, n);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			in += k;
			n -= (size_t)k;
		}
		signal(SIGPIPE, old);
		close(pipefd[1]);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status))
		return -EIO;
	switch (WEXITSTATUS(status)) {
	case 0:
		return 0;
	case 3:
		return -EACCES;
	case 4:
		return -EPERM;
	default:
		return -EIO;
	}
}

int shim_run(char *const *args)
{
	char *path = NULL, *argv[8];
	size_t n = 0;
	argv[n++] = (char *)"locald-shim";
	for (; args && args[n - 1] && n < 7; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	int r = shim_find(&path);
	if (r < 0)
		return r;
	r = run(path, argv, NULL, -1);
	free(path);
	return r;
}

int shim_bind_port(uint16_t port, bool ipv6, int *ret_fd)
{
	char *path = NULL, portstr[8];
	int sv[2], r = shim_find(&path);
	if (r < 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		free(path);
		return r;
	}
	snprintf(portstr, sizeof(portstr), "%u", port);
	char *argv[] = { (char *)"locald-shim", (char *)"bind-port", portstr,
			 ipv6 ? (char *)"--ipv6" : NULL, NULL };
	r = run(path, argv, NULL, sv[1]);
	free(path);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}

	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t k = recvmsg(sv[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	close(sv[0]);
	struct cmsghdr *cm = k == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EIO;
	memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
	(void)fcntl(*ret_fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

int shim_hosts_sync(char *const *names)
{
	size_t len = 1;
	for (size_t i = 0; names && names[i]; i++)
		len += strlen(names[i]) + 1;
	char *in = malloc(len), *p = in, *path = NULL;
	if (!in)
		return -ENOMEM;
	*p = '\0';
	for (size_t i = 0; names && names[i]; i++) {
		size_t l = strlen(names[i]);
		memcpy(p, names[i], l);
		p[l] = '\n';
		p += l + 1;
		*p = '\0';
	}
	int r = shim_find(&path);
	if (r == 0) {
		char *argv[] = { (char *)"locald-shim", (char *)"hosts-sync", NULL };
		r = run(path, argv, in, -1);
	}
	free(path);
	free(in);
	return r;
}
