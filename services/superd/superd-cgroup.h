/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Per-service cgroup v2 leaves, so that stopping a service also kills what it
 * double-forked. Layout:
 *
 *     <base>/<project>/<service>        (leaves hold processes; nothing else does)
 *
 * where <base> comes from cgroup_find_base(). Paths are absolute filesystem paths
 * ("/sys/fs/cgroup/locald-superd/shop/web"). We never write cgroup.subtree_control,
 * so the "no internal processes" rule cannot bite the intermediate directories we
 * create; a leaf that someone else turned into an inner node is refused (-EBUSY).
 *
 * When there is no writable cgroup2 hierarchy, cgroup_find_base() says why in a
 * sentence for `localctl status`/`doctor`, and the engine falls back to process groups.
 * Without linux_extras every function returns -EOPNOTSUPP.
 *
 * To learn that a service's last process is gone, watch "<path>/cgroup.events" with
 * uv_fs_event (the kernel emits a modify event when "populated" flips) and confirm with
 * cgroup_is_empty().
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Find where superd may create service cgroups, first that works:
 *   1. our own cgroup, if we may create children in it and move processes out of it:
 *      <own>/locald-superd
 *   2. a subtree delegated to us by locald-shim, <root>/locald/<uid>, if writable by us
 *      and we already run inside it (moving a process needs write access to the common
 *      ancestor's cgroup.procs, so the shim must have moved superd in there)
 *   3. as root: <root>/locald
 * Returns 0 and *ret_base, or -errno and (if ret_reason) a human sentence in
 * *ret_reason ("no cgroup2 filesystem is mounted", ...). Creates nothing.
 */
int cgroup_find_base(char **ret_base, char **ret_reason);

/*
 * Sans-I/O pieces of cgroup_find_base(), exposed for tests (in every build).
 * From /proc/self/mountinfo text: the first cgroup2 mount (mount point, the mounted
 * subtree's root inside the hierarchy, and whether it is read-only). -ENOENT if none.
 */
int cgroup2_mount_parse(const char *mountinfo, char **ret_mountpoint, char **ret_root,
			bool *ret_read_only);
/* From /proc/<pid>/cgroup text: the "0::<path>" entry. -ENOENT if none (v1 only). */
int cgroup2_own_path_parse(const char *proc_cgroup, char **ret);

/*
 * A cgroup directory name for a project or service name: [A-Za-z0-9_-] kept, anything
 * else (including '.', so no name can collide with "cgroup.*" interface files)
 * replaced by '_'. If anything was replaced, or the name is long, a hash of the
 * original is appended so "a.b" and "a_b" stay distinct. NULL on ENOMEM.
 */
char *cgroup_escape_name(const char *name);

/*
 * mkdir -p <base>/<project>/<service> (names escaped) and return its path. An existing
 * leaf is reused (re-adoption after a superd restart finds its service there); callers
 * that need a fresh one check cgroup_is_empty().
 */
int cgroup_service_create(const char *base, const char *project, const char *service,
			  char **ret_path);

/* Write pid to <path>/cgroup.procs. */
int cgroup_move_pid(const char *path, pid_t pid);

/*
 * Kill every process in the cgroup and its descendants with SIGKILL: writes 1 to
 * cgroup.kill (Linux ≥ 5.14), else cgroup_signal_all(path, SIGKILL). Returns once the
 * signals are sent; the processes are gone when cgroup_is_empty() says so.
 */
int cgroup_kill(const char *path);

/*
 * Send sig to every process in the cgroup and its descendants. The cgroup is frozen
 * meanwhile (where cgroup.freeze exists) so nothing can fork past us, and re-read until
 * no new pid shows up. Useful for the stop signal too. Returns the number of processes
 * signalled.
 */
int cgroup_signal_all(const char *path, int sig);

/* 1 if no process is left in the cgroup or below ("populated 0"), 0 if some are. */
int cgroup_is_empty(const char *path);

/* The pids in <path>/cgroup.procs (this cgroup only). *ret is heap; may be NULL if n = 0. */
int cgroup_get_pids(const char *path, pid_t **ret, size_t *ret_n);

/* 1 if pid is in the cgroup or a descendant, 0 if not (or it has exited). */
int cgroup_contains_pid(const char *path, pid_t pid);

/*
 * Remove the leaf (and any sub-cgroups a service made), then its parent (the project
 * directory) if that is now empty. -EBUSY while processes remain. A missing leaf is fine.
 */
int cgroup_service_remove(const char *path);
