/* SPDX-License-Identifier: MIT */
#pragma once

#include <signal.h>

/*
 * The daemon: binds <runtime>/fsd.rpc, answers Mount, Unmount, List and Stats, keeps
 * the list of mounts in <state>/fsd/mounts (re-created at the next start, stale ones
 * lazily unmounted first), unmounts everything on SIGTERM/SIGINT (keeping the list).
 * `signals` are blocked in every thread already. Returns the exit code.
 */
int fsd_daemon_run(const sigset_t *signals);
