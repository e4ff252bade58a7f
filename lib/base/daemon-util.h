/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What every locald daemon does at start, libc only:
 *
 * daemon_notify(): sd_notify() without libsystemd. superd and systemd both listen on a
 *   datagram socket named by $NOTIFY_SOCKET ("@name" = abstract namespace); `state` is
 *   a newline-separated list such as "READY=1\nSTATUS=listening". No-op without
 *   $NOTIFY_SOCKET. Returns 0, or -errno when sending failed (already logged).
 *
 * daemon_lock(): one instance per user: an exclusive flock on <runtime>/<name>.lock,
 *   held for the life of the returned fd, with our pid written into the file. When
 *   another process holds it, returns -EBUSY and its pid in *ret_holder (0 if unknown);
 *   with `wait`, blocks until the holder is gone instead (a signal ends the wait with
 *   -EINTR).
 */

#include <stdbool.h>
#include <sys/types.h>

int daemon_notify(const char *state);
int daemon_lock(const char *runtime, const char *name, bool wait, int *ret_fd,
		pid_t *ret_holder);
