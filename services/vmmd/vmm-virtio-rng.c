/* SPDX-License-Identifier: MIT */
/* virtio-rng (spec §5.4): every device-writable buffer is filled from getrandom(). */

#include <errno.h>
#include <sys/random.h>

#include "vmm-virtio.h"

static void rng_notify(VirtioDevice *d, unsigned queue)
{
	VirtqChain c;
	while (virtq_pop(d, queue, &c) > 0) {
		uint32_t written = 0;
		for (unsigned i = 0; i < c.n; i++) {
			if (!c.buf[i].write)
				continue;
			void *p = guest_memory_ptr(d->mem, c.buf[i].addr, c.buf[i].len);
			ssize_t n = p ? getrandom(p, c.buf[i].len, GRND_NONBLOCK) : -1;
			if (n > 0)
				written += (uint32_t)n;
			if (n < (ssize_t)c.buf[i].len)
				break;
		}
		virtq_push(d, queue, c.head, written);
	}
}

static const VirtioDeviceOps rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.n_queues = 1,
	.notify = rng_notify,
};

int virtio_rng_new(GuestMemory *mem, const DeviceHost *host, unsigned index, VirtioDevice **ret)
{
	return virtio_device_new(&rng_ops, NULL, 0, mem, host, index, ret);
}
