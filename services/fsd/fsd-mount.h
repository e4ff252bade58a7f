/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One live mount: its specification, the overlay (Fs), the ignore patterns, and the
 * FUSE session served by its own thread pool. Starting mounts the filesystem and
 * returns once the kernel has it; stopping unmounts lazily and waits for the session
 * to end (aborting the connection if open files keep it alive).
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fsd.h"

typedef struct MountSpec {
	char **lowers;
	char *upper;
	char *work;
	char *mountpoint;
	char **ignore_files; /* NULL: <first lower>/.dockerignore then .localdignore */
	char **patterns;     /* added after the files */
	bool no_ignore;      /* no default ignore files */
	double timeout;      /* <= 0: the default */
	bool writeback;
	unsigned max_threads; /* 0: the default */
} MountSpec;

#define FSD_TIMEOUT_DEFAULT 60.0
#define FSD_MAX_THREADS_DEFAULT 16

typedef struct FsdMount FsdMount;

void mount_spec_done(MountSpec *s);
int mount_spec_copy(const MountSpec *src, MountSpec *dst);
/* Turn relative paths absolute (against the cwd) and check the directories exist. */
int mount_spec_resolve(MountSpec *s, char **ret_error);

/* Load the ignore patterns of a spec: -errno and a message naming the file/line. */
int mount_spec_load_ignore(const MountSpec *s, Ignore **ret, char **ret_error);

/*
 * Mount and start serving: as root, as the root of a user namespace (mount(2)), or as
 * an ordinary user (the setuid fusermount3). On failure ret_error gets a one-line reason
 * and, where there is one, ret_hint what to do (static text; for a missing /dev/fuse
 * access, fusermount3, ...), else NULL. The spec is
 * copied. A stale mount on the mountpoint (a dead fsd's) is lazily unmounted first.
 */
int fsd_mount_start(const MountSpec *spec, FsdMount **ret, char **ret_error,
		    const char **ret_hint);
/* Unmount and free. Accepts NULL. */
FsdMount *fsd_mount_stop(FsdMount *m);
/* True once the session ended by itself (someone unmounted it from outside). */
bool fsd_mount_ended(FsdMount *m);
const MountSpec *fsd_mount_spec(FsdMount *m);
Fs *fsd_mount_fs(FsdMount *m);
uint64_t fsd_mount_started_usec(FsdMount *m);
/* An fd that becomes readable when the session ends (for a poll loop). */
int fsd_mount_end_fd(FsdMount *m);

/* Lazily unmount whatever is mounted on path (ENOTCONN leftovers). 0 if nothing. */
int fsd_unmount_stale(const char *path);
