/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where locald keeps things (DESIGN §1). Each directory honours an override so tests
 * and sandboxes run in isolation:
 *   runtime  $LOCALD_RUNTIME_DIR, else $XDG_RUNTIME_DIR/locald, else /tmp/locald-$UID
 *   state    $LOCALD_STATE_DIR,   else $XDG_STATE_HOME/locald, else ~/.local/state/locald
 *   config   $LOCALD_CONFIG_DIR,  else $XDG_CONFIG_HOME/locald, else ~/.config/locald
 * Relative overrides are rejected (-EINVAL): a daemon's cwd must not change its paths.
 */

#include <stddef.h>
#include <sys/types.h>

/* Compute the paths only (no filesystem access). Return 0 or -errno; *ret is heap. */
int locald_runtime_dir(char **ret);
int locald_state_dir(char **ret);
int locald_config_dir(char **ret);

/*
 * Create the runtime dir (and missing parents) and make sure it is safe to put sockets in:
 * a real directory (not a symlink), owned by us, mode 0700 (tightened if we own it and it
 * is looser). -EPERM if another user owns it, -ENOTDIR if it is not a directory.
 */
int locald_runtime_dir_ensure(char **ret);
/* Create the state/config dirs (0700 if created) and return them. */
int locald_state_dir_ensure(char **ret);
int locald_config_dir_ensure(char **ret);

/* mkdir -p with mode for directories it creates. */
int mkdir_p(const char *path, mode_t mode);
/* a + "/" + b without doubled slashes; NULL on ENOMEM. */
char *path_join(const char *a, const char *b);
