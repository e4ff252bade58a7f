/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "bus.h"
#include "loop.h"
#include "vmm-boot.h"
#include "vmmd.h"

#define VMMD_VMS_MAX 64
#define VMMD_DISKS_MAX 4
#define VMMD_CONSOLE_RING (1u << 20)
#define VMMD_CONSOLE_WAITERS_MAX 64
#define VMMD_STOP_GRACE_MS_DEFAULT 2000

typedef struct VmmdDisk {
	char *path;
	bool read_only;
} VmmdDisk;

typedef struct ConsoleWaiter {
	BusCall *call;
	uint64_t cursor;
	uint32_t max_bytes;
	LoopTimer *timer;
	struct VmmdVm *vm;
} ConsoleWaiter;

typedef struct VmmdVm {
	Vmmd *d;
	char *name, *kernel, *initrd, *cmdline;
	uint32_t vcpus, memory_mib, vsock_cid;
	char *vsock_path; /* <runtime>/vm-<name>.vsock while running */
	bool rng;
	VmmdDisk disks[VMMD_DISKS_MAX];
	unsigned n_disks;
	KernelFormat format;

	Locald__V1__VmState state;
	char *exit_reason;
	int exit_code;
	bool got_exit, killed_by_stop;
	char *effective_cmdline;
	uint64_t start_usec, end_usec, starts;

	uv_process_t *proc; /* NULL when no worker */
	pid_t pid;
	int ctl;
	uv_poll_t *poll;
	LoopTimer *stop_timer;

	uint8_t *ring;
	uint64_t total; /* console bytes this run */

	BusCall *start_call;
	BusCall *stop_calls[8];
	unsigned n_stop_calls;
	ConsoleWaiter *waiters[VMMD_CONSOLE_WAITERS_MAX];
	unsigned n_waiters;
	bool destroyed; /* freed once its worker is gone */
} VmmdVm;

struct Vmmd {
	Loop *loop;
	BusServer *server;
	char *runtime_dir, *self_exe, *empty_root;
	VmmdVm *vms[VMMD_VMS_MAX];
	unsigned n_vms;
};

VmmdVm *vmmd_find(Vmmd *d, const char *name);
/* Validate and add; on failure ret_code and ret_msg (malloc'd) say why. */
int vmmd_create(Vmmd *d, const Locald__V1__CreateVm *c, VmmdVm **ret, BusErrorCode *ret_code,
		char **ret_msg);
int vmmd_start(VmmdVm *vm, char **ret_msg);
void vmmd_stop(VmmdVm *vm, uint32_t grace_ms);
void vmmd_destroy(VmmdVm *vm);
int vmmd_console_write(VmmdVm *vm, const uint8_t *data, size_t len);
/* Kept console bytes from cursor: pointer pairs (ring wraps). */
void vmmd_console_slice(VmmdVm *vm, uint64_t cursor, uint32_t max, uint64_t *ret_first,
			uint8_t *buf, size_t *ret_len);

/* vmmd-bus.c */
int vmmd_bus_register(Vmmd *d);
void vmmd_bus_publish_console(VmmdVm *vm, const uint8_t *data, size_t len, uint64_t offset);
void vmmd_bus_publish_state(VmmdVm *vm);
void vmmd_bus_answer_start(VmmdVm *vm, const char *error);
void vmmd_bus_answer_stops(VmmdVm *vm);
void vmmd_bus_answer_waiters(VmmdVm *vm);
