/* SPDX-License-Identifier: MIT */
#include "superd-notify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "parse-util.h"
#include "paths.h"
#include "strutil.h"
#include "superd-cgroup.h"
#include "superd-spawn.h"

/* Datagrams handled per wake-up, so one chatty service cannot starve the loop. */
#define NOTIFY_BATCH 64
/* SCM_MAX_FD: the most fds one message can carry; we must make room to close them. */
#define NOTIFY_FDS_MAX 253

static bool value_is(const char *line, const char *key, const char **ret_value)
{
	const char *v = startswith(line, key);
	if (!v || *v != '=')
		return false;
	*ret_value = v + 1;
	return true;
}

int notify_parse(char *buf, size_t n, NotifyMessage *ret)
{
	if (memchr(buf, 0, n))
		return -EBADMSG;
	buf[n] = 0;

	NotifyMessage m = { .errno_value = -1 };
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		const char *v;
		int i;
		uint64_t u;
		if (value_is(line, "READY", &v))
			m.ready = streq(v, "1");
		else if (value_is(line, "RELOADING", &v))
			m.reloading = streq(v, "1");
		else if (value_is(line, "STOPPING", &v))
			m.stopping = streq(v, "1");
		else if (value_is(line, "WATCHDOG", &v)) {
			m.watchdog = streq(v, "1");
			m.watchdog_trigger = streq(v, "trigger");
		} else if (value_is(line, "STATUS", &v)) {
			for (char *c = line + STRLEN("STATUS="); *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = ' ';
			m.status = v;
		} else if (value_is(line, "MAINPID", &v))
			m.main_pid = safe_atoi(v, &i) >= 0 && i > 0 ? (pid_t)i : 0;
		else if (value_is(line, "ERRNO", &v))
			m.errno_value = safe_atoi(v, &i) >= 0 && i >= 0 ? i : -1;
		else if (value_is(line, "EXTEND_TIMEOUT_USEC", &v))
			m.extend_timeout_usec = safe_atou64(v, &u) >= 0 ? u : 0;
		line = nl ? nl + 1 : NULL;
	}
	*ret = m;
	return 0;
}

static uint64_t fnv1a64_update(uint64_t h, const char *s)
{
	/* Include the NUL so ("ab","c") and ("a","bc") differ. */
	do {
		h ^= (uint8_t)*s;
		h *= UINT64_C(0x100000001b3);
	} while (*s++);
	return h;
}

int notify_socket_address_for(const char *runtime_dir, const char *project, const char *service,
			      char **ret)
{
	struct sockaddr_un sa;
	_cleanup_free_ char *p = cgroup_escape_name(project), *s = cgroup_escape_name(service);
	if (!p || !s)
		return -ENOMEM;

	char *a = strdupf("%s/notify/%s.%s.sock", runtime_dir, p, s);
	if (!a)
		return -ENOMEM;
	if (strlen(a) < sizeof(sa.sun_path)) {
		*ret = a;
		return 0;
	}
	free(a);

	uint64_t h = UINT64_C(0xcbf29ce484222325);
	h = fnv1a64_update(h, runtime_dir);
	h = fnv1a64_update(h, project);
	h = fnv1a64_update(h, service);
	a = strdupf("%s/notify/%016" PRIx64 ".sock", runtime_dir, h);
	if (!a)
		return -ENOMEM;
	if (strlen(a) < sizeof(sa.sun_path)) {
		*ret = a;
		return 0;
	}
	free(a);
#ifdef __linux__
	a = strdupf("@locald/%u/%016" PRIx64, (unsigned)geteuid(), h);
	if (!a)
		return -ENOMEM;
	*ret = a;
	return 0;
#else
	return -ENAMETOOLONG;
#endif
}

#if defined(__linux__) && defined(SO_PASSCRED)

struct NotifySocket {
	uv_poll_t poll;
	int fd;
	char *address;
	NotifyFunc func;
	void *userdata;
	pid_t session;
	char *cgroup;
	bool dispatching, free_requested;
};

static int address_to_sockaddr(const char *address, struct sockaddr_un *sa, socklen_t *len)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	size_t n = strlen(address);
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, address, n);
	if (address[0] == '@')
		sa->sun_path[0] = 0; /* abstract: no trailing NUL in the length */
	*len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (address[0] == '@' ? 0 : 1));
	return 0;
}

static int scope_contains(NotifySocket *ns, pid_t pid)
{
	if (pid <= 0)
		return 0;
	if (ns->session > 0 && pid == ns->session)
		return 1;
	if (ns->cgroup) {
		int r = cgroup_contains_pid(ns->cgroup, pid);
		if (r != 0)
			return r;
		/* Not listed: an exited process (zombies leave cgroup.procs) or a stranger. */
		ProcessStat st;
		r = process_stat(pid, &st);
		if (r < 0)
			return r;
		return st.state == 'Z' || st.state == 'X' ? -ESRCH : 0;
	}
	if (ns->session <= 0)
		return 0;
	pid_t sid = getsid(pid);
	if (sid < 0)
		return -errno;
	return sid == ns->session;
}

int notify_socket_scope_contains(NotifySocket *ns, pid_t pid)
{
	return scope_contains(ns, pid);
}

static void close_passed_fds(struct msghdr *mh, struct ucred **ret_creds)
{
	*ret_creds = NULL;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
			*ret_creds = (struct ucred *)(void *)CMSG_DATA(c);
		else if (c->cmsg_type == SCM_RIGHTS) {
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				safe_close(fd);
			}
		}
	}
}

/* Returns false when the socket has nothing more to read (or must stop reading). */
static bool receive_one(NotifySocket *ns)
{
	char buf[NOTIFY_MESSAGE_MAX + 1];
	union {
		struct cmsghdr h;
		uint8_t
		    b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = NOTIFY_MESSAGE_MAX };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = &control,
		.msg_controllen = sizeof(control),
	};

	ssize_t n = recvmsg(ns->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
	if (n < 0)
		return errno == EINTR;

	struct ucred *uc;
	close_passed_fds(&mh, &uc);

	NotifyMessage m = { .errno_value = -1 };
	char why[160];
	const char *rejected = NULL;
	if (uc) {
		m.sender_pid = uc->pid;
		m.sender_uid = uc->uid;
	}

	if (!uc)
		rejected = "message without sender credentials";
	else if ((size_t)n > NOTIFY_MESSAGE_MAX || (mh.msg_flags & MSG_TRUNC))
		rejected = "message longer than 4096 bytes";
	else if (notify_parse(buf, (size_t)n, &m) < 0)
		rejected = "message contains a NUL byte";
	else if (uc->uid != geteuid() && uc->uid != 0) {
		(void)strfmt(why, sizeof(why), "sender uid %u is not ours", (unsigned)uc->uid);
		rejected = why;
	} else {
		m.sender_pid = uc->pid;
		m.sender_uid = uc->uid;
		int r = scope_contains(ns, uc->pid);
		if (r == -ESRCH)
			m.sender_gone = true;
		else if (r <= 0) {
			if (r < 0)
				(void)strfmt(why, sizeof(why), "cannot check sender pid %d: %s",
					     (int)uc->pid, strerror(-r));
			else if (!ns->cgroup && ns->session <= 0)
				(void)strfmt(why, sizeof(why),
					     "sender pid %d: the service is not running",
					     (int)uc->pid);
			else
				(void)strfmt(why, sizeof(why),
					     "sender pid %d is not in the service's %s",
					     (int)uc->pid, ns->cgroup ? "cgroup" : "session");
			rejected = why;
		}
	}

	ns->func(ns, &m, rejected, ns->userdata);
	return !ns->free_requested;
}

static void notify_closed(uv_handle_t *h)
{
	NotifySocket *ns = h->data;
	safe_close(ns->fd);
	free(ns->address);
	free(ns->cgroup);
	free(ns);
}

static void notify_close(NotifySocket *ns)
{
	if (ns->address && ns->address[0] != '@')
		(void)unlink(ns->address);
	uv_poll_stop(&ns->poll);
	uv_close((uv_handle_t *)&ns->poll, notify_closed);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	NotifySocket *ns = h->data;
	ns->dispatching = true;
	for (unsigned i = 0; i < NOTIFY_BATCH; i++)
		if (!receive_one(ns))
			break;
	ns->dispatching = false;
	if (ns->free_requested)
		notify_close(ns);
}

static int remove_stale_socket(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Only ever a socket of ours from an earlier run; anything else is not ours to delete. */
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	return RET_NERRNO(unlink(path));
}

int notify_socket_new(uv_loop_t *loop, const char *runtime_dir, const char *project,
		      const char *service, NotifyFunc func, void *userdata, NotifySocket **ret)
{
	_cleanup_free_ char *address = NULL;
	int r = notify_socket_address_for(runtime_dir, project, service, &address);
	if (r < 0)
		return r;

	struct sockaddr_un sa;
	socklen_t salen;
	r = address_to_sockaddr(address, &sa, &salen);
	if (r < 0)
		return r;

	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return -errno;

	if (address[0] != '@') {
		_cleanup_free_ char *dir = path_join(runtime_dir, "notify");
		if (!dir)
			return -ENOMEM;
		r = mkdir_p(dir, 0700);
		if (r < 0)
			return r;
		r = remove_stale_socket(address);
		if (r < 0)
			return r;
	}
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0)
		return -errno;

	NotifySocket *ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->fd = fd;
	ns->func = func;
	ns->userdata = userdata;
	ns->address = TAKE_PTR(address);
	int e = uv_poll_init(loop, &ns->poll, fd);
	if (e < 0) {
		if (ns->address[0] != '@')
			(void)unlink(ns->address);
		free(ns->address);
		free(ns);
		return e;
	}
	ns->poll.data = ns;
	fd = -1; /* owned by ns from here on */
	e = uv_poll_start(&ns->poll, UV_READABLE, on_readable);
	if (e < 0) {
		notify_close(ns);
		return e;
	}
	*ret = ns;
	return 0;
}

NotifySocket *notify_socket_free(NotifySocket *ns)
{
	if (!ns)
		return NULL;
	if (ns->dispatching)
		ns->free_requested = true;
	else
		notify_close(ns);
	return NULL;
}

const char *notify_socket_address(NotifySocket *ns)
{
	return ns->address;
}

int notify_socket_set_scope(NotifySocket *ns, pid_t session, const char *cgroup)
{
	char *c = NULL;
	if (cgroup && !(c = strdup(cgroup)))
		return -ENOMEM;
	free(ns->cgroup);
	ns->cgroup = c;
	ns->session = session;
	return 0;
}

#else /* no SO_PASSCRED: sender credentials cannot be checked, so no notify sockets */

int notify_socket_new(uv_loop_t *loop, const char *runtime_dir, const char *project,
		      const char *service, NotifyFunc func, void *userdata, NotifySocket **ret)
{
	return -EOPNOTSUPP;
}

NotifySocket *notify_socket_free(NotifySocket *ns)
{
	return NULL;
}

const char *notify_socket_address(NotifySocket *ns)
{
	return NULL;
}

int notify_socket_set_scope(NotifySocket *ns, pid_t session, const char *cgroup)
{
	return -EOPNOTSUPP;
}

int notify_socket_scope_contains(NotifySocket *ns, pid_t pid)
{
	return -EOPNOTSUPP;
}

#endif
