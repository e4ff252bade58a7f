/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The worker's sandbox, applied by the worker to itself once it holds every fd it needs
 * (/dev/kvm, the kernel, initrd and disks, its control socket), in this order:
 *   1. no_new_privs;
 *   2. an empty root: a private mount namespace, a read-only tmpfs mounted on `mountpoint`
 *      (an existing directory; the mount is invisible outside the namespace),
 *      pivot_root into it and the old root detached; chroot as a fallback;
 *   3. as root: setgroups(0) and uid/gid 65534; then every capability dropped (bounding,
 *      ambient, effective, permitted, inheritable);
 *   4. a seccomp filter (raw BPF): an allow-list of the syscalls a running VM needs,
 *      ioctl only with KVM's ioctl type (0xAE), clone only for threads, clone3 answered
 *      ENOSYS (glibc falls back to clone); anything else kills the process (SIGSYS).
 * Each step that cannot be applied is reported in `notes` (one line each), not fatal:
 * steps 1 and 4 work unprivileged; 2 and 3 need root or a user namespace.
 */

#include <stddef.h>

typedef struct SandboxReport {
	int no_new_privs;
	int empty_root;
	int uid_dropped;
	int caps_dropped;
	int seccomp;
	char notes[512];
} SandboxReport;

int sandbox_no_new_privs(SandboxReport *r);
int sandbox_empty_root(const char *mountpoint, SandboxReport *r);
int sandbox_drop_privileges(SandboxReport *r);
int sandbox_seccomp(SandboxReport *r);
/* All four. Fails only if no_new_privs or seccomp cannot be set. */
int sandbox_enter(const char *mountpoint, SandboxReport *r);
