/* SPDX-License-Identifier: MIT */
/* The parts of bus-endpoint.h that need libzmq: binding a daemon's sockets. */
#include "bus-endpoint.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "macro.h"
#include "strutil.h"

int bus_socket_restrict_uid(void *socket)
{
	int uids[] = { (int)getuid(), 0 };
	for (size_t i = 0; i < (uids[0] == 0 ? 1u : 2u); i++)
		if (zmq_setsockopt(socket, ZMQ_IPC_FILTER_UID, &uids[i], sizeof(uids[i])) < 0)
			return negative_errno();
	return 0;
}

int bus_bind_ipc(void *socket, const char *path)
{
	struct stat st;
	int r;

	r = bus_socket_probe(path);
	if (r == 0)
		return -EADDRINUSE;
	if (r == -ECONNREFUSED) {
		/* Only ever remove a socket: never a file someone put there by mistake. */
		if (lstat(path, &st) < 0)
			return negative_errno();
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		if (unlink(path) < 0 && errno != ENOENT)
			return negative_errno();
	} else if (r != -ENOENT)
		return r;

	_cleanup_free_ char *endpoint = strdupf("ipc://%s", path);
	if (!endpoint)
		return -ENOMEM;
	/* libzmq binds ipc:// synchronously in this thread, so the umask covers it. */
	mode_t old = umask(0077);
	r = zmq_bind(socket, endpoint) < 0 ? negative_errno() : 0;
	umask(old);
	if (r < 0)
		return r;
	if (chmod(path, 0600) < 0)
		return negative_errno();
	return 0;
}
