/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm-virtio.h"

enum {
	R_MAGIC = 0x000,
	R_VERSION = 0x004,
	R_DEVICE_ID = 0x008,
	R_VENDOR_ID = 0x00c,
	R_DEV_FEATURES = 0x010,
	R_DEV_FEATURES_SEL = 0x014,
	R_DRV_FEATURES = 0x020,
	R_DRV_FEATURES_SEL = 0x024,
	R_QUEUE_SEL = 0x030,
	R_QUEUE_NUM_MAX = 0x034,
	R_QUEUE_NUM = 0x038,
	R_QUEUE_READY = 0x044,
	R_QUEUE_NOTIFY = 0x050,
	R_INT_STATUS = 0x060,
	R_INT_ACK = 0x064,
	R_STATUS = 0x070,
	R_DESC_LO = 0x080,
	R_DESC_HI = 0x084,
	R_AVAIL_LO = 0x090,
	R_AVAIL_HI = 0x094,
	R_USED_LO = 0x0a0,
	R_USED_HI = 0x0a4,
	R_CONFIG_GEN = 0x0fc,
	R_CONFIG = 0x100,
};

#define STATUS_FEATURES_OK 8
#define STATUS_DRIVER_OK 4
#define STATUS_NEEDS_RESET 64
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

int virtio_device_new(const VirtioDeviceOps *ops, void *impl, uint64_t features, GuestMemory *mem,
		      const DeviceHost *host, unsigned index, VirtioDevice **ret)
{
	if (index >= VIRTIO_DEVICES_MAX || ops->n_queues > VIRTIO_QUEUES_MAX)
		return -EINVAL;
	VirtioDevice *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ops = ops;
	d->impl = impl;
	d->mem = mem;
	d->host = host;
	d->irq = VIRTIO_IRQ_BASE + index;
	d->base = VIRTIO_MMIO_BASE + index * VIRTIO_MMIO_SIZE;
	d->device_features = features | VIRTIO_F_VERSION_1;
	pthread_mutex_init(&d->lock, NULL);
	*ret = d;
	return 0;
}

VirtioDevice *virtio_device_free(VirtioDevice *d)
{
	if (!d)
		return NULL;
	if (d->ops && d->ops->free)
		d->ops->free(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return NULL;
}

static void reset(VirtioDevice *d)
{
	d->status = 0;
	d->driver_features = 0;
	d->int_status = 0;
	d->queue_sel = d->dev_features_sel = d->drv_features_sel = 0;
	memset(d->vq, 0, sizeof(d->vq));
}

static uint32_t get_le(const uint8_t *p, unsigned len)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < len && i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, unsigned len, uint32_t v)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = i < 4 ? (uint8_t)(v >> (8 * i)) : 0;
}

void virtio_mmio_read(VirtioDevice *d, uint64_t offset, uint8_t *data, unsigned len)
{
	pthread_mutex_lock(&d->lock);
	if (offset >= R_CONFIG) {
		uint8_t cfg[256] = { 0 };
		if (d->ops->config)
			d->ops->config(d, cfg, sizeof(cfg));
		uint64_t o = offset - R_CONFIG;
		for (unsigned i = 0; i < len; i++)
			data[i] = o + i < sizeof(cfg) ? cfg[o + i] : 0;
		pthread_mutex_unlock(&d->lock);
		return;
	}
	uint32_t v = 0;
	VirtQueue *q = d->queue_sel < d->ops->n_queues ? &d->vq[d->queue_sel] : NULL;
	switch (offset) {
	case R_MAGIC:
		v = 0x74726976;
		break;
	case R_VERSION:
		v = 2;
		break;
	case R_DEVICE_ID:
		v = d->ops->device_id;
		break;
	case R_VENDOR_ID:
		v = 0x4c434c44; /* "LCLD" */
		break;
	case R_DEV_FEATURES:
		v = d->dev_features_sel == 0   ? (uint32_t)d->device_features
		    : d->dev_features_sel == 1 ? (uint32_t)(d->device_features >> 32)
					       : 0;
		break;
	case R_QUEUE_NUM_MAX:
		v = q ? VIRTIO_QUEUE_SIZE_MAX : 0;
		break;
	case R_QUEUE_READY:
		v = q ? q->ready : 0;
		break;
	case R_INT_STATUS:
		v = d->int_status;
		break;
	case R_STATUS:
		v = d->status;
		break;
	case R_CONFIG_GEN:
		v = 0;
		break;
	default:
		v = 0;
	}
	put_le(data, len, v);
	pthread_mutex_unlock(&d->lock);
}

static void set_addr(uint64_t *a, bool high, uint32_t v)
{
	*a = high ? (*a & 0xffffffffULL) | (uint64_t)v << 32 : (*a & ~0xffffffffULL) | v;
}

void virtio_mmio_write(VirtioDevice *d, uint64_t offset, const uint8_t *data, unsigned len)
{
	if (offset >= R_CONFIG)
		return; /* no writable config fields in our devices */
	uint32_t v = get_le(data, len);
	pthread_mutex_lock(&d->lock);
	VirtQueue *q = d->queue_sel < d->ops->n_queues ? &d->vq[d->queue_sel] : NULL;
	/* Queue registers change only while the queue is not live. */
	bool q_writable = q && !q->ready;
	switch (offset) {
	case R_DEV_FEATURES_SEL:
		d->dev_features_sel = v;
		break;
	case R_DRV_FEATURES_SEL:
		d->drv_features_sel = v;
		break;
	case R_DRV_FEATURES:
		if (d->status & STATUS_FEATURES_OK)
			break;
		if (d->drv_features_sel == 0)
			d->driver_features = (d->driver_features & ~0xffffffffULL) | v;
		else if (d->drv_features_sel == 1)
			d->driver_features = (d->driver_features & 0xffffffffULL) | (uint64_t)v
											<< 32;
		break;
	case R_QUEUE_SEL:
		d->queue_sel = v;
		break;
	case R_QUEUE_NUM:
		/* a power of 2 up to the maximum (split rings) */
		if (q_writable && v && v <= VIRTIO_QUEUE_SIZE_MAX && (v & (v - 1)) == 0)
			q->num = (uint16_t)v;
		break;
	case R_QUEUE_READY:
		if (q)
			q->ready = v == 1 && q->num;
		break;
	case R_QUEUE_NOTIFY:
		if (v < d->ops->n_queues && (d->status & STATUS_DRIVER_OK) &&
		    !(d->status & STATUS_NEEDS_RESET) && d->vq[v].ready && d->ops->notify)
			d->ops->notify(d, v);
		break;
	case R_INT_ACK:
		d->int_status &= ~v;
		break;
	case R_STATUS:
		if (v == 0) {
			reset(d);
			break;
		}
		if ((v & STATUS_FEATURES_OK) && !(d->status & STATUS_FEATURES_OK) &&
		    ((d->driver_features & ~d->device_features) ||
		     !(d->driver_features & VIRTIO_F_VERSION_1)))
			v &= ~(uint32_t)STATUS_FEATURES_OK; /* refuse: the driver reads it back */
		d->status = v;
		break;
	case R_DESC_LO:
	case R_DESC_HI:
		if (q_writable)
			set_addr(&q->desc, offset == R_DESC_HI, v);
		break;
	case R_AVAIL_LO:
	case R_AVAIL_HI:
		if (q_writable)
			set_addr(&q->avail, offset == R_AVAIL_HI, v);
		break;
	case R_USED_LO:
	case R_USED_HI:
		if (q_writable)
			set_addr(&q->used, offset == R_USED_HI, v);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&d->lock);
}

static void needs_reset(VirtioDevice *d)
{
	d->status |= STATUS_NEEDS_RESET;
	d->int_status |= 2; /* configuration change */
	if (d->host && d->host->irq_line) {
		d->host->irq_line(d->host->userdata, d->irq, 1);
		d->host->irq_line(d->host->userdata, d->irq, 0);
	}
}

static uint16_t rd16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

int virtq_pop(VirtioDevice *d, unsigned queue, VirtqChain *ret)
{
	if (queue >= d->ops->n_queues)
		return -EINVAL;
	VirtQueue *q = &d->vq[queue];
	if (!q->ready)
		return 0;
	const uint8_t *avail = guest_memory_ptr(d->mem, q->avail, 4 + 2ULL * q->num);
	const uint8_t *desc = guest_memory_ptr(d->mem, q->desc, 16ULL * q->num);
	if (!avail || !desc)
		goto bad;
	uint16_t idx = rd16(avail + 2);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (idx == q->last_avail)
		return 0;
	if ((uint16_t)(idx - q->last_avail) > q->num)
		goto bad;
	uint16_t head = rd16(avail + 4 + 2 * (q->last_avail % q->num));
	if (head >= q->num)
		goto bad;
	q->last_avail++;
	ret->head = head;
	ret->n = 0;
	uint16_t i = head;
	for (;;) {
		if (ret->n == VIRTIO_CHAIN_MAX || ret->n >= q->num)
			goto bad; /* a loop or a chain longer than we take */
		const uint8_t *e = desc + 16 * i;
		uint64_t addr;
		uint32_t len;
		memcpy(&addr, e, 8);
		memcpy(&len, e + 8, 4);
		uint16_t flags = rd16(e + 12), next = rd16(e + 14);
		if (flags & VRING_DESC_F_INDIRECT)
			goto bad;
		if (!guest_memory_ptr(d->mem, addr, len))
			goto bad;
		ret->buf[ret->n++] = (VirtqBuf){ addr, len, (flags & VRING_DESC_F_WRITE) != 0 };
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (next >= q->num)
			goto bad;
		i = next;
	}
	d->requests++;
	return 1;
bad:
	needs_reset(d);
	return -EINVAL;
}

bool virtq_has_avail(VirtioDevice *d, unsigned queue)
{
	VirtQueue *q = &d->vq[queue];
	if (queue >= d->ops->n_queues || !q->ready || !(d->status & STATUS_DRIVER_OK))
		return false;
	const uint8_t *avail = guest_memory_ptr(d->mem, q->avail, 4);
	return avail && rd16(avail + 2) != q->last_avail;
}

int virtq_push(VirtioDevice *d, unsigned queue, uint16_t head, uint32_t written)
{
	VirtQueue *q = &d->vq[queue];
	uint8_t *used = guest_memory_ptr(d->mem, q->used, 4 + 8ULL * q->num);
	if (!used) {
		needs_reset(d);
		return -EINVAL;
	}
	uint16_t idx = rd16(used + 2);
	uint8_t *e = used + 4 + 8 * (idx % q->num);
	uint32_t id = head;
	memcpy(e, &id, 4);
	memcpy(e + 4, &written, 4);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	idx++;
	memcpy(used + 2, &idx, 2);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	d->int_status |= 1;
	if (d->host && d->host->irq_line) {
		d->host->irq_line(d->host->userdata, d->irq, 1);
		d->host->irq_line(d->host->userdata, d->irq, 0);
	}
	return 0;
}
