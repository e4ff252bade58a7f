/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon-util.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "strutil.h"

int daemon_notify(const char *state)
{
	const char *e = getenv("NOTIFY_SOCKET");
	if (isempty(e))
		return 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(e);
	if (n >= sizeof sa.sun_path || (e[0] != '/' && e[0] != '@')) {
		log_warning("$NOTIFY_SOCKET: \"%s\" is not a socket path; not notifying", e);
		return -EINVAL;
	}
	memcpy(sa.sun_path, e, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		return log_warning_errno(-errno, "notifying %s: %m", e);
	return 0;
}

static pid_t lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	strstrip(buf);
	int pid = 0;
	return safe_atoi(buf, &pid) == 0 && pid > 0 ? (pid_t)pid : 0;
}

int daemon_lock(const char *runtime, const char *name, bool wait, int *ret_fd,
		pid_t *ret_holder)
{
	char path[4096];
	if (strfmt(path, sizeof path, "%s/%s.lock", runtime, name) < 0)
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return log_error_errno(-errno, "%s: %m", path);
	if (ret_holder)
		*ret_holder = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			return log_error_errno(-errno, "locking %s: %m", path);
		if (ret_holder)
			*ret_holder = lock_holder(fd);
		if (!wait)
			return -EBUSY;
		if (flock(fd, LOCK_EX) < 0)
			return -errno;
	}
	char pid[32];
	int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) < 0)
		log_debug("writing our pid to %s: %m", path);
	*ret_fd = TAKE_FD(fd);
	return 0;
}
