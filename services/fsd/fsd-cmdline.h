/* SPDX-License-Identifier: MIT */
#pragma once

/* Parsing `-o lowerdir=A:B,upperdir=U,workdir=W,...` (the overlayfs option syntax)
 * into a MountSpec; shared by the foreground `mount` mode and the tests. */

#include "fsd-mount.h"

/* Add the options of one -o argument to spec. -EINVAL with a message naming the bad
 * option. Recognised: lowerdir (':'-separated, '\' escapes), upperdir, workdir,
 * timeout=SECONDS, writeback, threads=N, ignore=FILE (repeatable), noignore. */
int mount_spec_parse_options(MountSpec *spec, const char *opts, char **ret_error);
