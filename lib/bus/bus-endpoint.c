/* SPDX-License-Identifier: MIT */
#include "bus-endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "paths.h"
#include "strutil.h"

#define DAEMON_NAME_MAX 32

bool bus_daemon_name_is_valid(const char *name)
{
	size_t n = 0;
	if (!name)
		return false;
	for (; name[n]; n++) {
		char c = name[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && n > 0);
		if (!ok || n >= DAEMON_NAME_MAX)
			return false;
	}
	return n > 0;
}

int bus_socket_path(const char *runtime_dir, const char *daemon, BusSocketKind kind, char **ret)
{
	_cleanup_free_ char *dir = NULL;
	int r;

	if (!bus_daemon_name_is_valid(daemon) || kind < 0 || kind >= _BUS_SOCKET_KIND_MAX)
		return -EINVAL;
	if (!runtime_dir) {
		r = locald_runtime_dir(&dir);
		if (r < 0)
			return r;
		runtime_dir = dir;
	}
	if (runtime_dir[0] != '/')
		return -EINVAL;
	char *p =
	    strdupf("%s/%s.%s", runtime_dir, daemon, kind == BUS_SOCKET_RPC ? "rpc" : "events");
	if (!p)
		return -ENOMEM;
	if (strlen(p) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		free(p);
		return -ENAMETOOLONG;
	}
	*ret = p;
	return 0;
}

int bus_endpoint(const char *runtime_dir, const char *daemon, BusSocketKind kind, char **ret)
{
	_cleanup_free_ char *path = NULL;
	int r = bus_socket_path(runtime_dir, daemon, kind, &path);
	if (r < 0)
		return r;
	char *e = strdupf("ipc://%s", path);
	if (!e)
		return -ENOMEM;
	*ret = e;
	return 0;
}

int bus_socket_probe(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strscpy(sa.sun_path, sizeof(sa.sun_path), path) < 0)
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* A full backlog means someone listens. */
		if (errno == EAGAIN || errno == EINPROGRESS)
			return 0;
		return negative_errno();
	}
	return 0;
}

int bus_endpoint_probe(const char *endpoint)
{
	const char *path = startswith(endpoint, "ipc://");
	if (!path)
		return 0;
	return bus_socket_probe(path);
}
