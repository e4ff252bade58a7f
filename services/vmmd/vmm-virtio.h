/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * virtio 1.x over MMIO (virtio spec 1.2, §4.2, version 2 register layout) and split
 * virtqueues (§2.7), sans-I/O: the transport works on a GuestMemory and reports
 * interrupts through DeviceHost.irq_line; device models (blk, rng) plug in through
 * VirtioDeviceOps. Each device window is VIRTIO_MMIO_SIZE bytes at
 * VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE, interrupt VIRTIO_IRQ_BASE + i, and is announced
 * to the guest as `virtio_mmio.device=4K@<base>:<irq>` on the command line.
 *
 * Offered features: VIRTIO_F_VERSION_1 plus the device's own. No indirect descriptors,
 * no event index. Every descriptor address and length is checked against guest memory;
 * a malformed chain puts the device in NEEDS_RESET instead of touching anything else.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm-devices.h"
#include "vmm-memory.h"

#define VIRTIO_MMIO_BASE 0xd0000000ULL
#define VIRTIO_MMIO_SIZE 0x1000ULL
#define VIRTIO_IRQ_BASE 5
#define VIRTIO_DEVICES_MAX 8
#define VIRTIO_QUEUES_MAX 3
#define VIRTIO_QUEUE_SIZE_MAX 256
#define VIRTIO_CHAIN_MAX 64

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19

#define VIRTIO_F_VERSION_1 (1ULL << 32)

typedef struct VirtQueue {
	uint16_t num;
	bool ready;
	uint64_t desc, avail, used;
	uint16_t last_avail;
} VirtQueue;

typedef struct VirtqBuf {
	uint64_t addr;
	uint32_t len;
	bool write; /* device writes into it */
} VirtqBuf;

typedef struct VirtqChain {
	uint16_t head;
	unsigned n;
	VirtqBuf buf[VIRTIO_CHAIN_MAX];
} VirtqChain;

typedef struct VirtioDevice VirtioDevice;

typedef struct VirtioDeviceOps {
	const char *name;
	uint32_t device_id;
	unsigned n_queues;
	/* Called with the device lock held, from a vCPU thread. */
	void (*notify)(VirtioDevice *d, unsigned queue);
	/* Device configuration space; bytes beyond it read as 0. */
	void (*config)(VirtioDevice *d, uint8_t *buf, size_t size);
	void (*free)(VirtioDevice *d);
} VirtioDeviceOps;

struct VirtioDevice {
	const VirtioDeviceOps *ops;
	void *impl;
	GuestMemory *mem;
	const DeviceHost *host;
	unsigned irq;
	uint64_t base;
	uint64_t device_features;
	uint64_t driver_features;
	uint32_t status, dev_features_sel, drv_features_sel, queue_sel, int_status;
	VirtQueue vq[VIRTIO_QUEUES_MAX];
	uint64_t requests; /* chains processed */
	pthread_mutex_t lock;
};

int virtio_device_new(const VirtioDeviceOps *ops, void *impl, uint64_t features, GuestMemory *mem,
		      const DeviceHost *host, unsigned index, VirtioDevice **ret);
VirtioDevice *virtio_device_free(VirtioDevice *d);

/* MMIO accesses at `offset` into the window; 1, 2, 4 (and 8 for config) byte wide. */
void virtio_mmio_read(VirtioDevice *d, uint64_t offset, uint8_t *data, unsigned len);
void virtio_mmio_write(VirtioDevice *d, uint64_t offset, const uint8_t *data, unsigned len);

/* Next available chain of `queue`: 1, 0 when none, -EINVAL when malformed (the device is
 * then marked NEEDS_RESET). */
int virtq_pop(VirtioDevice *d, unsigned queue, VirtqChain *ret);
/* Return a chain with `written` bytes to the used ring and interrupt the guest. */
int virtq_push(VirtioDevice *d, unsigned queue, uint16_t head, uint32_t written);

/* Device models. */
int virtio_blk_new(int fd, bool read_only, GuestMemory *mem, const DeviceHost *host, unsigned index,
		   VirtioDevice **ret);
int virtio_rng_new(GuestMemory *mem, const DeviceHost *host, unsigned index, VirtioDevice **ret);

/* virtio-vsock: listen_fd is the host side's listening Unix socket (owned by the device);
 * wake is called when the set of fds to poll may have changed. */
#define VSOCK_CONNS_MAX 32
struct pollfd;
int virtio_vsock_new(uint64_t cid, int listen_fd, void (*wake)(void *), void *wake_userdata,
		     GuestMemory *mem, const DeviceHost *host, unsigned index, VirtioDevice **ret);
/* The fds the worker's main thread polls for the device, and their events. */
size_t vsock_poll_fill(VirtioDevice *d, struct pollfd *p, size_t max);
void vsock_poll_handle(VirtioDevice *d, const struct pollfd *p, size_t n);
/* Leave the listening fd to whoever passed it (vm_new() failure paths). */
void vsock_forget_listen_fd(VirtioDevice *d);
/* Whether the driver has made buffers available on a queue (device lock held). */
bool virtq_has_avail(VirtioDevice *d, unsigned queue);
