/* SPDX-License-Identifier: MIT */
/* virtio-blk (spec §5.2) on a raw image file: read, write, flush, get-id; read-only. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm-virtio.h"

#define BLK_F_RO (1ULL << 5)
#define BLK_F_FLUSH (1ULL << 9)
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

typedef struct Blk {
	int fd;
	bool read_only;
	uint64_t capacity; /* 512-byte sectors */
} Blk;

static void blk_config(VirtioDevice *d, uint8_t *buf, size_t size)
{
	Blk *b = d->impl;
	memcpy(buf, &b->capacity, 8);
	uint32_t blk_size = 512;
	memcpy(buf + 20, &blk_size, 4);
}

static uint8_t blk_do(VirtioDevice *d, Blk *b, const VirtqChain *c, uint32_t *written)
{
	uint8_t hdr[16];
	if (c->n < 2 || c->buf[0].write || c->buf[0].len < 16 || !c->buf[c->n - 1].write ||
	    guest_memory_read(d->mem, c->buf[0].addr, hdr, 16) < 0)
		return S_IOERR;
	uint32_t type;
	uint64_t sector;
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	uint64_t off = sector * 512;
	if (sector > b->capacity)
		return S_IOERR;
	switch (type) {
	case T_IN:
	case T_OUT:
		for (unsigned i = 1; i + 1 < c->n; i++) {
			const VirtqBuf *v = &c->buf[i];
			if (v->write != (type == T_IN))
				return S_IOERR;
			if (type == T_OUT && b->read_only)
				return S_IOERR;
			if (off + v->len > b->capacity * 512)
				return S_IOERR;
			void *p = guest_memory_ptr(d->mem, v->addr, v->len);
			size_t done = 0;
			while (done < v->len) {
				ssize_t n = type == T_IN
						? pread(b->fd, (uint8_t *)p + done, v->len - done,
							(off_t)(off + done))
						: pwrite(b->fd, (uint8_t *)p + done, v->len - done,
							 (off_t)(off + done));
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0)
					return S_IOERR;
				done += (size_t)n;
			}
			if (type == T_IN)
				*written += v->len;
			off += v->len;
		}
		return S_OK;
	case T_FLUSH:
		return fdatasync(b->fd) < 0 ? S_IOERR : S_OK;
	case T_GET_ID:
		if (c->n >= 3 && c->buf[1].write) {
			static const char id[20] = "locald-vmmd";
			uint32_t n = c->buf[1].len < 20 ? c->buf[1].len : 20;
			if (guest_memory_write(d->mem, c->buf[1].addr, id, n) < 0)
				return S_IOERR;
			*written += n;
			return S_OK;
		}
		return S_IOERR;
	default:
		return S_UNSUPP;
	}
}

static void blk_notify(VirtioDevice *d, unsigned queue)
{
	Blk *b = d->impl;
	VirtqChain c;
	while (virtq_pop(d, queue, &c) > 0) {
		uint32_t written = 0;
		uint8_t status = blk_do(d, b, &c, &written);
		const VirtqBuf *s = &c.buf[c.n - 1];
		if (s->write && s->len >= 1)
			(void)guest_memory_write(d->mem, s->addr + s->len - 1, &status, 1);
		virtq_push(d, queue, c.head, written + 1);
	}
}

static void blk_free(VirtioDevice *d)
{
	Blk *b = d->impl;
	if (b && b->fd >= 0)
		close(b->fd);
	free(b);
}

static const VirtioDeviceOps blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.n_queues = 1,
	.notify = blk_notify,
	.config = blk_config,
	.free = blk_free,
};

int virtio_blk_new(int fd, bool read_only, GuestMemory *mem, const DeviceHost *host, unsigned index,
		   VirtioDevice **ret)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	Blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fd = fd;
	b->read_only = read_only;
	b->capacity = (uint64_t)st.st_size / 512;
	uint64_t features = BLK_F_FLUSH | (read_only ? BLK_F_RO : 0) | (1ULL << 6) /* BLK_SIZE */;
	int r = virtio_device_new(&blk_ops, b, features, mem, host, index, ret);
	if (r < 0) {
		free(b);
		return r;
	}
	return 0;
}
