/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * TCP ports for services: picking a free one ($PORT), keeping it across restarts,
 * and, when a port is taken, saying who took it.
 *
 * "Free" means a server could bind it whichever address it picks: 0.0.0.0:<port> and
 * [::]:<port> (IPV6_V6ONLY) both bind with SO_REUSEADDR — which, like the servers we
 * start, ignores TIME_WAIT leftovers but not listeners, whether they listen on
 * 127.0.0.1, ::1, a wildcard or another interface. Where the host has no IPv6, only the
 * IPv4 test counts.
 *
 * Who holds a port and what a process listens on come from /proc/net/tcp{,6} (LISTEN
 * sockets and their inodes) and /proc/<pid>/fd ("socket:[inode]"). Linux only
 * (-EOPNOTSUPP elsewhere). Another user's processes show no fds to a non-root superd:
 * then the holder is known only by its uid.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* 1 if free, 0 if in use, -errno if we cannot tell. */
int port_is_free(uint16_t port);

/*
 * A free port: the kernel's pick for 127.0.0.1:0, accepted when port_is_free() agrees
 * (so ::1 and the wildcards are free too) and it is not in exclude[] (ports handed to
 * services that may not listen yet).
 */
int port_pick_free(const uint16_t *exclude, size_t n_exclude, uint16_t *ret);

/* Sticky: `previous` again if it is still free and not excluded, else port_pick_free(). */
int port_pick(uint16_t previous, const uint16_t *exclude, size_t n_exclude, uint16_t *ret);

typedef struct PortListener {
	uint16_t port;
	int family;                     /* AF_INET, AF_INET6 */
	char address[INET6_ADDRSTRLEN]; /* "127.0.0.1", "::", ... */
	uid_t uid;
	uint64_t inode;
	pid_t pid;     /* 0 if no process of ours shows this socket (another user's, or gone) */
	char comm[64]; /* /proc/<pid>/comm; "" if pid is 0 */
} PortListener;

/*
 * Sans-I/O: one line of /proc/net/tcp or tcp6 (not the header). Returns 1 and fills
 * port, family, address, uid and inode if the line is a LISTEN socket, 0 if it is
 * another state, -EBADMSG if malformed.
 */
int port_parse_proc_net_line(const char *line, int family, PortListener *ret);

/* The TCP listener on port (the first found, IPv4 first). -ENOENT if nobody listens. */
int port_find_listener(uint16_t port, PortListener *ret);

/*
 * A sentence for a conflict: "port 8080 is in use by python3 (pid 1234)", "port 8080 is
 * in use by a process of uid 1001", "port 8080 is in use" (holder not found).
 */
int port_describe_holder(uint16_t port, char **ret);

/*
 * The TCP ports the given processes (a service's cgroup or process group) listen on,
 * each once, ascending; with the listener details in ret[i]. *ret is heap (NULL if none).
 */
int ports_listening_for_pids(const pid_t *pids, size_t n_pids, PortListener **ret, size_t *ret_n);
