/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One KVM virtual machine: guest memory, in-kernel irqchip (PIC + IOAPIC + local APICs)
 * and PIT, the legacy devices and virtio-mmio devices, one thread per vCPU. This runs
 * inside the per-VM worker process (vmm-worker.c), never in the daemon.
 *
 * The first exit wins: a power-off, reset, triple fault, KVM error or vm_stop() ends
 * every vCPU (immediate_exit + a signal to each thread) and calls `exited` once, from
 * the thread that saw it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm-boot.h"

#define VM_DISKS_MAX 4

typedef enum VmExitKind {
	VM_EXIT_POWEROFF,     /* debug-exit port: code */
	VM_EXIT_RESET,        /* i8042 reset or KVM reset event */
	VM_EXIT_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN */
	VM_EXIT_STOPPED,      /* vm_stop() */
	VM_EXIT_ERROR,        /* KVM failure, emulation failure: message */
	_VM_EXIT_KIND_MAX,
	_VM_EXIT_KIND_INVALID = -EINVAL,
} VmExitKind;

const char *vm_exit_kind_to_string(VmExitKind k);

typedef struct VmDiskConfig {
	int fd; /* owned by the VM once vm_new() succeeds */
	bool read_only;
} VmDiskConfig;

typedef struct VmConfig {
	int kvm_fd; /* /dev/kvm, opened by the caller (before the sandbox); not owned */
	unsigned vcpus;
	uint64_t memory;
	const uint8_t *kernel;
	size_t kernel_size;
	const uint8_t *initrd;
	size_t initrd_size;
	const char *cmdline;
	VmDiskConfig disks[VM_DISKS_MAX];
	unsigned n_disks;
	bool rng;
	uint32_t vsock_cid;  /* 0: no vsock device */
	int vsock_listen_fd; /* its host side (owned by the VM once vm_new() succeeds) */
	void (*vsock_wake)(void *userdata); /* the vsock poll set may have changed */
	void *vsock_wake_userdata;
} VmConfig;

typedef struct VmCallbacks {
	/* From vCPU threads, serialised by the port-bus lock. */
	void (*console_out)(void *userdata, const uint8_t *data, size_t len);
	void (*exited)(void *userdata, VmExitKind kind, int code, const char *message);
	void *userdata;
} VmCallbacks;

typedef struct Vm Vm;

/* Build the VM and load the kernel. On failure ret_error gets a one-line reason. */
int vm_new(const VmConfig *config, const VmCallbacks *cb, Vm **ret, char **ret_error);
/* Start one thread per vCPU. */
int vm_start(Vm *vm);
size_t vm_console_input(Vm *vm, const uint8_t *data, size_t len);
/* Ask the guest to shut down (Ctrl-Alt-Del on the i8042). */
void vm_request_shutdown(Vm *vm);
/* End the VM with this reason if it has not ended yet. */
void vm_stop(Vm *vm, VmExitKind kind, int code, const char *message);
/* Wait for every vCPU thread. */
void vm_join(Vm *vm);
Vm *vm_free(Vm *vm);
const BootSetup *vm_boot_setup(Vm *vm);
/* The command line the guest got (with the virtio_mmio.device= entries). */
const char *vm_cmdline(Vm *vm);
uint64_t vm_exits(Vm *vm);
/* The vsock device (for vsock_poll_fill/handle), NULL when none. */
struct VirtioDevice *vm_vsock(Vm *vm);
