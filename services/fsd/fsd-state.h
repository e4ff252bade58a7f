/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's list of mounts, <state>/fsd/mounts.json, written atomically on every
 * change and read at start to re-create them. */

#include <stddef.h>

#include "fsd-mount.h"

/* Read the specs; a missing file is 0 specs. ret_specs is an array of n specs. */
int fsd_state_load(const char *path, MountSpec **ret_specs, size_t *ret_n);
int fsd_state_save(const char *path, const MountSpec *const *specs, size_t n);
