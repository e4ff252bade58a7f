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
 * An unprivileged superd whose own cgroup is not writable gets one from locald-shim
 * (cgroup_setup_base()): `cgroup-setup --move-parent` makes <root>/locald/<uid> ours and
 * moves superd into it, and superd then moves itself one level down, so that:
 *
 *     <root>/locald/<uid>/                 delegated (owned by uid); no process
 *     <root>/locald/<uid>/superd           superd itself (every superd of this uid)
 *     <root>/locald/<uid>/services         <base>
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

/* Names inside the delegated directory <root>/locald/<uid> (see the layout above). */
#define CGROUP_SUPERD_LEAF "superd"
#define CGROUP_SERVICES_DIR "services"

/*
 * Find where superd may create service cgroups, first that works:
 *   1. the subtree delegated to us by locald-shim, <root>/locald/<uid>, if writable by
 *      us and we run in it or in its `superd` leaf: <root>/locald/<uid>/services
 *   2. our own cgroup, if we may create children in it and move processes out of it:
 *      <own>/locald-superd
 *   3. as root: <root>/locald
 * Returns 0, *ret_base and (if ret_why) a sentence saying why this one, or -errno and
 * (if ret_why) a sentence saying why none ("no cgroup2 filesystem is mounted", ...).
 * Creates nothing, moves nothing.
 */
int cgroup_find_base(char **ret_base, char **ret_why);

/*
 * cgroup_find_base(), after putting an unprivileged superd in its delegated cgroup when
 * it may: if its own cgroup is not writable and locald-shim is installed (shim_find()),
 * run `locald-shim cgroup-setup --move-parent`, then move itself into
 * <root>/locald/<uid>/superd (allowed: we own the common ancestor). Does nothing as root
 * or when our own cgroup is writable (unless it is <root>/locald/<uid> itself). Moves the whole
 * process, so call it at start, before any service runs. Same results as cgroup_find_base();
 * *ret_why also says when superd was moved, or why the shim could not move it.
 */
int cgroup_setup_base(char **ret_base, char **ret_why);

/* What cgroup_find_base() decides from, as paths under the cgroup2 mount. */
typedef struct CgroupFacts {
	const char *mountpoint;  /* the first cgroup2 mount */
	const char *own;         /* our cgroup (mountpoint + /proc/self/cgroup); NULL: unknown */
	bool own_writable;       /* we may create children in `own` and move processes out */
	bool delegated_writable; /* <mountpoint>/locald/<uid> exists and is writable by us */
	bool mount_writable;     /* we may create directories at the top */
	uid_t uid;               /* effective */
} CgroupFacts;

/* The decision of cgroup_find_base(), sans I/O (for tests). */
int cgroup_base_choose(const CgroupFacts *f, char **ret_base, char **ret_why);

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
