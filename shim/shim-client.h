/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * For daemons and localctl: run the installed locald-shim. The shim is looked up as
 * $LOCALD_SHIM, else `locald-shim` next to the running executable, else
 * ../libexec/locald/locald-shim from the executable's directory (PREFIX/bin →
 * PREFIX/libexec/locald, where `admin setup --prefix` installs it), else
 * /usr/local/libexec/locald/locald-shim; only a root-owned setuid file counts as
 * installed. Errors are -errno: -ENOENT no shim installed, -EACCES the shim refused
 * (exit 3), -EPERM it is not setuid root (exit 4), -EIO any other failure.
 */

#include <stdbool.h>
#include <stdint.h>

/* Path of the installed shim (heap) or -ENOENT. */
int shim_find(char **ret_path);
/* A loopback TCP listener on `port` (80/443 or shim.conf's allow-port), CLOEXEC. */
int shim_bind_port(uint16_t port, bool ipv6, int *ret_fd);
/* Run the installed shim with `args` (after the program name, NULL-terminated); its
 * stderr is ours, its stdout discarded. Same error mapping as above. */
int shim_run(char *const *args);
/* Make /etc/hosts' locald block list exactly these names (NULL-terminated; may be empty). */
int shim_hosts_sync(char *const *names);
