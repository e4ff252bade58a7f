/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sd_notify(3) socket of one service: a datagram socket whose address goes into the
 * service's $NOTIFY_SOCKET, read from the loop (uv_poll), every message checked against
 * the service's processes before the engine sees it.
 *
 * Address, first that fits in sun_path (108 bytes with the NUL):
 *   <runtime>/notify/<project>.<service>.sock       (names escaped as for cgroups)
 *   <runtime>/notify/<16 hex digits>.sock           (hash of runtime, project, service)
 *   @locald/<uid>/<16 hex digits>                   (Linux abstract socket)
 * All three are deterministic, so a service re-adopted after a superd restart keeps
 * notifying the new superd at the address it inherited. An abstract socket has no file
 * permissions, but every message's sender credentials are checked anyway.
 *
 * Who may send (SO_PASSCRED; the kernel supplies pid and uid with every datagram):
 *   - uid must be ours (or root's);
 *   - the pid must be in the service: in its cgroup when it has one, else in its session
 *     (services run in their own session);
 *   - a sender that has already exited cannot be checked — `systemd-notify --ready; exec
 *     server` in a shell does exactly this — so its message is accepted on the uid check
 *     alone and marked sender_gone. Any same-uid process could equally ptrace the
 *     service, so this opens nothing new.
 * Rejected messages reach the callback too, with a reason, for debug logging.
 * File descriptors sent along (FDSTORE=1) are closed: we do not keep them.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
/* Before <uv.h>: its <sys/param.h> would otherwise have its MIN/MAX redefined by ours. */
#include "macro.h"
#include <uv.h>

/* Larger datagrams are rejected (systemd uses the same bound). */
#define NOTIFY_MESSAGE_MAX 4096

typedef struct NotifyMessage {
	bool ready;            /* READY=1 */
	bool reloading;        /* RELOADING=1 */
	bool stopping;         /* STOPPING=1 */
	bool watchdog;         /* WATCHDOG=1 */
	bool watchdog_trigger; /* WATCHDOG=trigger */
	const char *status;    /* STATUS=…; NULL if absent; control characters replaced by ' ' */
	pid_t main_pid;        /* MAINPID=; 0 if absent or invalid */
	int errno_value;       /* ERRNO=; -1 if absent or invalid */
	uint64_t extend_timeout_usec; /* EXTEND_TIMEOUT_USEC=; 0 if absent */

	/* Filled by the socket, not the parser: */
	pid_t sender_pid;
	uid_t sender_uid;
	bool sender_gone; /* exited before we could check where it runs */
} NotifyMessage;

/*
 * Sans-I/O: parse "KEY=VALUE\n…". Works in place: buf must have room for n + 1 bytes
 * (a NUL is written at buf[n]), is modified, and the strings in *ret point into it. Unknown keys
 * and lines without '=' are ignored; a NUL byte in the message is -EBADMSG. When a key repeats, the
 * last one wins.
 */
int notify_parse(char *buf, size_t n, NotifyMessage *ret);

/* The address for a service, as it goes into $NOTIFY_SOCKET (see above). Heap. */
int notify_socket_address_for(const char *runtime_dir, const char *project, const char *service,
			      char **ret);

typedef struct NotifySocket NotifySocket;

/*
 * msg is valid during the call only. rejected is NULL for an accepted message, else why
 * it was dropped ("pid 123 is not in the service's cgroup").
 */
typedef void (*NotifyFunc)(NotifySocket *ns, const NotifyMessage *msg, const char *rejected,
			   void *userdata);

/*
 * Create (replacing a stale socket file of ours) and start reading. The directory
 * <runtime_dir>/notify is created 0700 if missing. Until notify_socket_set_scope(),
 * every message is rejected.
 */
int notify_socket_new(uv_loop_t *loop, const char *runtime_dir, const char *project,
		      const char *service, NotifyFunc func, void *userdata, NotifySocket **ret);
/* Stop, close, unlink the socket file. No callback after this; memory goes with the loop's
 * close callback. NULL-safe. */
NotifySocket *notify_socket_free(NotifySocket *ns);

/* The value for $NOTIFY_SOCKET ("/run/…/notify/shop.web.sock" or "@locald/…"). */
const char *notify_socket_address(NotifySocket *ns);

/*
 * Which processes may send: those in `cgroup` (a leaf from superd-cgroup.h) if set,
 * else those in session `session` (the service's main pid, a session leader). Call after
 * each start (or re-adoption) of the service; session 0 and cgroup NULL reject everyone.
 */
int notify_socket_set_scope(NotifySocket *ns, pid_t session, const char *cgroup);

/*
 * Is pid one of the service's processes (for checking MAINPID=)? 1 yes, 0 no,
 * -ESRCH if it does not exist.
 */
int notify_socket_scope_contains(NotifySocket *ns, pid_t pid);
