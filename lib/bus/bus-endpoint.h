/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where a daemon's bus sockets live and how they are bound:
 *   ipc://<runtime>/<daemon>.rpc     ROUTER, requests
 *   ipc://<runtime>/<daemon>.events  PUB, events
 * with <runtime> from locald_runtime_dir() (DESIGN §1).
 */

#include <stdbool.h>

typedef enum BusSocketKind {
	BUS_SOCKET_RPC,
	BUS_SOCKET_EVENTS,
	_BUS_SOCKET_KIND_MAX,
	_BUS_SOCKET_KIND_INVALID = -22,
} BusSocketKind;

/* [a-z0-9][a-z0-9-]{0,31}: "superd", "proxyd", "test-server". */
bool bus_daemon_name_is_valid(const char *name);

/*
 * "<runtime_dir>/<daemon>.rpc" (or ".events"); runtime_dir NULL = locald_runtime_dir().
 * -EINVAL for a bad daemon name, -ENAMETOOLONG if it does not fit in sun_path.
 */
int bus_socket_path(const char *runtime_dir, const char *daemon, BusSocketKind kind, char **ret);
/* The same as an endpoint: "ipc://<path>". */
int bus_endpoint(const char *runtime_dir, const char *daemon, BusSocketKind kind, char **ret);

/*
 * Is anything accepting connections on this endpoint? Only ipc:// endpoints can be told
 * without talking ZMTP: 0 if a listener accepts (or we cannot tell: other transports),
 * -ECONNREFUSED if the socket file exists but no one listens (stale), -ENOENT if there
 * is no socket file, other -errno as connect(2) reports them.
 */
int bus_endpoint_probe(const char *endpoint);
/* The same for a socket path. */
int bus_socket_probe(const char *path);

/* bus-endpoint-zmq.c (libzmq). The peer-uid check the bus sockets use: ZMQ_IPC_FILTER_UID for our
 * uid and root. Returns 0, or -errno if libzmq was built without it (then only file modes protect).
 */
int bus_socket_restrict_uid(void *socket);

/*
 * Bind a ZeroMQ socket to ipc://<path> for a daemon: refuse (-EADDRINUSE) if a live
 * listener holds the path, unlink a stale socket file, bind with umask 0077 and leave
 * the socket file 0600. The caller sets socket options (uid filter, ...) before.
 */
int bus_bind_ipc(void *socket, const char *path);
