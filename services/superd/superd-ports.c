/* SPDX-License-Identifier: MIT */
#include "superd-ports.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "parse-util.h"
#include "strutil.h"

/* Attempts before port_pick_free() gives up (each one is a kernel pick that lost a race). */
#define PICK_ATTEMPTS 64
#define TCP_LISTEN 0x0A

/* Bind a throwaway socket on the wildcard address: 0 if it binds, -errno if not. */
static int try_bind_any(int family, uint16_t port)
{
	_cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	if (family == AF_INET6) {
		/* Only the v6 side: the v4 side was tested on its own. */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			return -errno;
		struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
					   .sin6_port = htons(port),
					   .sin6_addr = IN6ADDR_ANY_INIT };
		return RET_NERRNO(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	}
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	return RET_NERRNO(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
}

int port_is_free(uint16_t port)
{
	if (port == 0)
		return -EINVAL;
	int r = try_bind_any(AF_INET, port);
	if (r == -EADDRINUSE)
		return 0;
	if (r < 0)
		return r;
	r = try_bind_any(AF_INET6, port);
	if (r == -EADDRINUSE)
		return 0;
	/* No IPv6 on this host: nobody can hold the port there. */
	if (r < 0 && r != -EAFNOSUPPORT && r != -EADDRNOTAVAIL && r != -EPROTONOSUPPORT)
		return r;
	return 1;
}

static bool excluded(uint16_t port, const uint16_t *exclude, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (exclude[i] == port)
			return true;
	return false;
}

static int kernel_pick(uint16_t *ret)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = 0,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	socklen_t len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	*ret = ntohs(sa.sin_port);
	return 0;
}

int port_pick_free(const uint16_t *exclude, size_t n_exclude, uint16_t *ret)
{
	for (unsigned i = 0; i < PICK_ATTEMPTS; i++) {
		uint16_t port = 0;
		int r = kernel_pick(&port);
		if (r < 0)
			return r;
		if (excluded(port, exclude, n_exclude))
			continue;
		r = port_is_free(port);
		if (r < 0)
			return r;
		if (r > 0) {
			*ret = port;
			return 0;
		}
	}
	return -EADDRNOTAVAIL;
}

int port_pick(uint16_t previous, const uint16_t *exclude, size_t n_exclude, uint16_t *ret)
{
	if (previous > 0 && !excluded(previous, exclude, n_exclude) && port_is_free(previous) > 0) {
		*ret = previous;
		return 0;
	}
	return port_pick_free(exclude, n_exclude, ret);
}

/* ---- /proc/net/tcp ---- */

static int parse_hex(const char *s, size_t n, uint64_t *ret)
{
	if (n == 0 || n > 16)
		return -EBADMSG;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return -EBADMSG;
		v = v << 4 | d;
	}
	*ret = v;
	return 0;
}

int port_parse_proc_net_line(const char *line, int family, PortListener *ret)
{
	const char *f[10];
	size_t fl[10], n = 0;
	for (const char *p = line; *p && n < ELEMENTSOF(f);) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '\n')
			break;
		f[n] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n')
			p++;
		fl[n] = (size_t)(p - f[n]);
		n++;
	}
	if (n < 10)
		return -EBADMSG;

	/* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
	size_t addr_hex = family == AF_INET ? 8 : 32;
	uint64_t st, port, uid, inode;
	if (fl[1] != addr_hex + 5 || f[1][addr_hex] != ':' ||
	    parse_hex(f[1] + addr_hex + 1, 4, &port) < 0 || parse_hex(f[3], fl[3], &st) < 0)
		return -EBADMSG;
	char num[24];
	if (fl[7] >= sizeof(num) || fl[9] >= sizeof(num))
		return -EBADMSG;
	memcpy(num, f[7], fl[7]);
	num[fl[7]] = 0;
	if (safe_atou64(num, &uid) < 0)
		return -EBADMSG;
	memcpy(num, f[9], fl[9]);
	num[fl[9]] = 0;
	if (safe_atou64(num, &inode) < 0)
		return -EBADMSG;
	if (st != TCP_LISTEN)
		return 0;

	PortListener l = {
		.port = (uint16_t)port, .family = family, .uid = (uid_t)uid, .inode = inode
	};
	/* The kernel prints each 32-bit word of the address as a host-order integer. */
	if (family == AF_INET) {
		uint64_t w;
		struct in_addr a;
		if (parse_hex(f[1], 8, &w) < 0)
			return -EBADMSG;
		a.s_addr = (uint32_t)w;
		inet_ntop(AF_INET, &a, l.address, sizeof(l.address));
	} else {
		uint32_t words[4];
		struct in6_addr a;
		for (int i = 0; i < 4; i++) {
			uint64_t w;
			if (parse_hex(f[1] + 8 * i, 8, &w) < 0)
				return -EBADMSG;
			words[i] = (uint32_t)w;
		}
		memcpy(&a, words, sizeof(a));
		inet_ntop(AF_INET6, &a, l.address, sizeof(l.address));
	}
	*ret = l;
	return 1;
}

#ifdef __linux__

typedef bool (*ListenerFunc)(const PortListener *l, void *userdata);

/* Call func for every LISTEN socket in /proc/net/tcp and tcp6; stops when it returns false. */
static int foreach_listener(ListenerFunc func, void *userdata)
{
	static const struct {
		const char *path;
		int family;
	} tables[] = { { "/proc/net/tcp", AF_INET }, { "/proc/net/tcp6", AF_INET6 } };

	for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
		FILE *f = fopen(tables[t].path, "re");
		if (!f) {
			if (errno == ENOENT) /* no IPv6 */
				continue;
			return -errno;
		}
		char *line = NULL;
		size_t cap = 0;
		bool header = true, go_on = true;
		while (go_on && getline(&line, &cap, f) > 0) {
			if (header) {
				header = false;
				continue;
			}
			PortListener l;
			if (port_parse_proc_net_line(line, tables[t].family, &l) > 0)
				go_on = func(&l, userdata);
		}
		free(line);
		fclose(f);
		if (!go_on)
			break;
	}
	return 0;
}

static bool parse_socket_link(const char *link, uint64_t *ret)
{
	const char *p = startswith(link, "socket:[");
	if (!p)
		return false;
	const char *end = strchr(p, ']');
	char num[24];
	if (!end || end[1] || (size_t)(end - p) >= sizeof(num))
		return false;
	memcpy(num, p, (size_t)(end - p));
	num[end - p] = 0;
	return safe_atou64(num, ret) >= 0;
}

typedef bool (*SocketFunc)(pid_t pid, uint64_t inode, void *userdata);

/* Call func for every socket fd of pid. Processes we may not look into are skipped. */
static int foreach_socket_of(pid_t pid, SocketFunc func, void *userdata, bool *stop)
{
	char path[64];
	int r = strfmt(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (r < 0)
		return r;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT || errno == EACCES || errno == EPERM ? 0 : -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		safe_close(dfd);
		return -errno;
	}
	struct dirent *de;
	while (!*stop && (de = readdir(d))) {
		char link[64];
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		uint64_t inode;
		if (parse_socket_link(link, &inode) && !func(pid, inode, userdata))
			*stop = true;
	}
	closedir(d);
	return 0;
}

typedef struct OwnerSearch {
	uint64_t inode;
	pid_t pid;
} OwnerSearch;

static bool owner_match(pid_t pid, uint64_t inode, void *userdata)
{
	OwnerSearch *s = userdata;
	if (inode != s->inode)
		return true;
	s->pid = pid;
	return false;
}

static pid_t socket_owner(uint64_t inode)
{
	OwnerSearch s = { .inode = inode };
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *de;
	bool stop = false;
	while (!stop && (de = readdir(d))) {
		int pid;
		if (safe_atoi(de->d_name, &pid) < 0 || pid <= 0)
			continue;
		(void)foreach_socket_of(pid, owner_match, &s, &stop);
	}
	closedir(d);
	return s.pid;
}

static void read_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	buf[0] = 0;
	if (strfmt(path, sizeof(path), "/proc/%d/comm", (int)pid) < 0)
		return;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, size - 1);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
}

typedef struct PortSearch {
	uint16_t port;
	bool found;
	PortListener l;
} PortSearch;

static bool port_match(const PortListener *l, void *userdata)
{
	PortSearch *s = userdata;
	if (l->port != s->port)
		return true;
	s->l = *l;
	s->found = true;
	return false;
}

int port_find_listener(uint16_t port, PortListener *ret)
{
	PortSearch s = { .port = port };
	int r = foreach_listener(port_match, &s);
	if (r < 0)
		return r;
	if (!s.found)
		return -ENOENT;
	s.l.pid = socket_owner(s.l.inode);
	if (s.l.pid > 0)
		read_comm(s.l.pid, s.l.comm, sizeof(s.l.comm));
	*ret = s.l;
	return 0;
}

int port_describe_holder(uint16_t port, char **ret)
{
	PortListener l;
	int r = port_find_listener(port, &l);
	char *s;
	if (r == -ENOENT || (r >= 0 && l.pid <= 0 && l.uid == geteuid()))
		s = strdupf("port %u is in use", (unsigned)port);
	else if (r < 0)
		return r;
	else if (l.pid > 0)
		s = strdupf("port %u is in use by %s (pid %d)", (unsigned)port,
			    l.comm[0] ? l.comm : "a process", (int)l.pid);
	else
		s = strdupf("port %u is in use by a process of uid %u", (unsigned)port,
			    (unsigned)l.uid);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

typedef struct InodeSet {
	uint64_t *inodes;
	pid_t *pids;
	size_t n, allocated;
	int error;
} InodeSet;

static bool inode_collect(pid_t pid, uint64_t inode, void *userdata)
{
	InodeSet *s = userdata;
	if (s->n == s->allocated) {
		size_t na = s->allocated ? s->allocated * 2 : 32;
		uint64_t *ni = reallocarray(s->inodes, na, sizeof(uint64_t));
		if (ni)
			s->inodes = ni;
		pid_t *np = ni ? reallocarray(s->pids, na, sizeof(pid_t)) : NULL;
		if (!np) {
			s->error = -ENOMEM;
			return false;
		}
		s->pids = np;
		s->allocated = na;
	}
	s->inodes[s->n] = inode;
	s->pids[s->n] = pid;
	s->n++;
	return true;
}

typedef struct ListenCollect {
	const InodeSet *set;
	PortListener *out;
	size_t n, allocated;
	int error;
} ListenCollect;

static bool listen_collect(const PortListener *l, void *userdata)
{
	ListenCollect *c = userdata;
	ssize_t found = -1;
	for (size_t i = 0; i < c->set->n && found < 0; i++)
		if (c->set->inodes[i] == l->inode)
			found = (ssize_t)i;
	if (found < 0)
		return true;
	for (size_t i = 0; i < c->n; i++)
		if (c->out[i].port == l->port)
			return true; /* IPv4 came first; one entry per port */
	if (c->n == c->allocated) {
		size_t na = c->allocated ? c->allocated * 2 : 8;
		PortListener *np = reallocarray(c->out, na, sizeof(PortListener));
		if (!np) {
			c->error = -ENOMEM;
			return false;
		}
		c->out = np;
		c->allocated = na;
	}
	PortListener *o = &c->out[c->n++];
	*o = *l;
	o->pid = c->set->pids[found];
	read_comm(o->pid, o->comm, sizeof(o->comm));
	return true;
}

static int listener_cmp(const void *a, const void *b)
{
	const PortListener *x = a, *y = b;
	return (int)x->port - (int)y->port;
}

int ports_listening_for_pids(const pid_t *pids, size_t n_pids, PortListener **ret, size_t *ret_n)
{
	InodeSet set = { 0 };
	int r = 0;
	for (size_t i = 0; i < n_pids && r >= 0 && !set.error; i++) {
		bool stop = false;
		r = foreach_socket_of(pids[i], inode_collect, &set, &stop);
	}
	if (r >= 0 && set.error)
		r = set.error;

	ListenCollect c = { .set = &set };
	if (r >= 0 && set.n > 0) {
		r = foreach_listener(listen_collect, &c);
		if (r >= 0 && c.error)
			r = c.error;
	}
	free(set.inodes);
	free(set.pids);
	if (r < 0) {
		free(c.out);
		return r;
	}
	if (c.n > 1)
		qsort(c.out, c.n, sizeof(PortListener), listener_cmp);
	*ret = c.out;
	*ret_n = c.n;
	return 0;
}

#else /* no /proc/net */

int port_find_listener(uint16_t port, PortListener *ret)
{
	return -EOPNOTSUPP;
}

int port_describe_holder(uint16_t port, char **ret)
{
	char *s = strdupf("port %u is in use", (unsigned)port);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

int ports_listening_for_pids(const pid_t *pids, size_t n_pids, PortListener **ret, size_t *ret_n)
{
	return -EOPNOTSUPP;
}

#endif
