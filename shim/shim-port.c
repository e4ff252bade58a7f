/* SPDX-License-Identifier: MIT */
/* bind-port PORT [--ipv6]: a loopback listener on an allowed port, sent over fd 3. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

#define PASS_FD 3

static bool fd_is_unix_socket(int fd)
{
	struct stat st;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	memset(&ss, 0, sizeof(ss));
	return getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX;
}

static int send_fd(int sock, int fd)
{
	char byte = 'L';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	ssize_t k;
	do
		k = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (k < 0 && errno == EINTR);
	return k == 1 ? 0 : -errno;
}

int shim_cmd_bind_port(const ShimCaller *c, const ShimConf *conf, int argc, char **argv)
{
	uint16_t port;
	bool ipv6 = false;
	if (argc < 1 || argc > 2 || (argc == 2 && strcmp(argv[1], "--ipv6") != 0))
		return shim_fail(c, SHIM_EXIT_USAGE, "usage: locald-shim bind-port PORT [--ipv6]");
	if (shim_parse_port(argv[0], &port) < 0)
		return shim_fail(c, SHIM_EXIT_REFUSED, "bind-port: \"%.16s\" is not a port",
				 argv[0]);
	ipv6 = argc == 2;
	if (!shim_port_allowed(conf, port))
		return shim_fail(c, SHIM_EXIT_REFUSED,
				 "bind-port: port %u is not allowed (80, 443, or allow-port in %s)",
				 port, SHIM_CONF_PATH);
	if (!fd_is_unix_socket(PASS_FD))
		return shim_fail(c, SHIM_EXIT_REFUSED,
				 "bind-port: fd 3 must be a Unix socket to receive the listener");

	int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return shim_fail(c, SHIM_EXIT_FAILED, "bind-port: socket: %s", strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int r;
	if (ipv6) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6,
					  .sin6_port = htons(port),
					  .sin6_addr = IN6ADDR_LOOPBACK_INIT };
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		r = bind(fd, (struct sockaddr *)&a, sizeof(a));
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons(port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		r = bind(fd, (struct sockaddr *)&a, sizeof(a));
	}
	if (r < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;
		close(fd);
		return shim_fail(c, SHIM_EXIT_FAILED, "bind-port: %s port %u: %s",
				 ipv6 ? "[::1]" : "127.0.0.1", port, strerror(e));
	}
	shim_log(c, "bind-port %u%s", port, ipv6 ? " ipv6" : "");
	shim_drop_privileges(c);
	r = send_fd(PASS_FD, fd);
	close(fd);
	if (r < 0)
		return shim_fail(c, SHIM_EXIT_FAILED, "bind-port: sending the listener: %s",
				 strerror(-r));
	return SHIM_EXIT_OK;
}
