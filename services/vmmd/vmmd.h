/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon side of locald-vmmd: the table of VMs, one worker process per running VM
 * (vmm-worker.h), console buffers, and the bus calls of vmm.proto.
 */

#include "bus.h"
#include "loop.h"

typedef struct Vmmd Vmmd;

/* self_exe: the locald-vmmd binary the workers are started from. */
int vmmd_new(Loop *loop, BusServer *server, const char *runtime_dir, const char *self_exe,
	     Vmmd **ret);
/* Kill every worker (SIGKILL), wait for none: the kernel reaps them with us. */
Vmmd *vmmd_free(Vmmd *d);
/* Running VMs. */
unsigned vmmd_running(Vmmd *d);
