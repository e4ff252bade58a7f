/* SPDX-License-Identifier: MIT */
/*
 * A polling virtio-mmio (version 2) driver for the test guest: finds devices from the
 * `virtio_mmio.device=<size>@<addr>:<irq>` command-line entries (the Linux syntax the
 * VMM announces them with), sets up one queue and waits on the used ring.
 */

#include "guest.h"

#define VQ_SIZE 8

enum {
	R_MAGIC = 0x000,
	R_VERSION = 0x004,
	R_DEVICE_ID = 0x008,
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
	R_CONFIG = 0x100,
};

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq {
	struct vdesc desc[VQ_SIZE];
	struct {
		uint16_t flags, idx, ring[VQ_SIZE], used_event;
	} avail;
	uint8_t pad[4096 - 16 * VQ_SIZE - 2 * (VQ_SIZE + 3)];
	struct {
		uint16_t flags, idx;
		struct {
			uint32_t id, len;
		} ring[VQ_SIZE];
		uint16_t avail_event;
	} used;
	uint16_t last_used;
} __attribute__((aligned(4096)));

static struct vq queues[3];

static uint32_t rd(uint64_t base, uint32_t off)
{
	return *(volatile uint32_t *)(uintptr_t)(base + off);
}

static void wr(uint64_t base, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(base + off) = v;
}

/* The base address of the first virtio-mmio device with this id; 0 when none. */
static uint64_t find_device(uint32_t id)
{
	char buf[64];
	for (unsigned i = 0; cmdline_get_nth("virtio_mmio.device", i, buf, sizeof(buf)); i++) {
		const char *p = buf;
		while (*p && *p != '@')
			p++;
		if (!*p)
			continue;
		uint64_t base = parse_num(p + 1, NULL);
		if (rd(base, R_MAGIC) == 0x74726976 && rd(base, R_VERSION) == 2 &&
		    rd(base, R_DEVICE_ID) == id)
			return base;
	}
	return 0;
}

/* Reset, negotiate VIRTIO_F_VERSION_1 (+ `want` of the low 32 bits), set up n queues. */
static int device_init(uint64_t base, uint32_t want, uint32_t *ret_features, unsigned nq)
{
	wr(base, R_STATUS, 0);
	wr(base, R_STATUS, 1 | 2); /* ACKNOWLEDGE | DRIVER */
	wr(base, R_DEV_FEATURES_SEL, 0);
	uint32_t lo = rd(base, R_DEV_FEATURES);
	wr(base, R_DEV_FEATURES_SEL, 1);
	uint32_t hi = rd(base, R_DEV_FEATURES);
	if (!(hi & 1)) {
		puts_("virtio: device lacks VIRTIO_F_VERSION_1\n");
		return -1;
	}
	wr(base, R_DRV_FEATURES_SEL, 0);
	wr(base, R_DRV_FEATURES, lo & want);
	wr(base, R_DRV_FEATURES_SEL, 1);
	wr(base, R_DRV_FEATURES, 1);
	wr(base, R_STATUS, 1 | 2 | 8); /* FEATURES_OK */
	if (!(rd(base, R_STATUS) & 8)) {
		puts_("virtio: features not accepted\n");
		return -1;
	}
	for (unsigned q = 0; q < nq; q++) {
		struct vq *v = &queues[q];
		memset(v, 0, sizeof(*v));
		wr(base, R_QUEUE_SEL, q);
		if (rd(base, R_QUEUE_NUM_MAX) < VQ_SIZE) {
			puts_("virtio: queue too small\n");
			return -1;
		}
		wr(base, R_QUEUE_NUM, VQ_SIZE);
		uint64_t d = (uintptr_t)v->desc, a = (uintptr_t)&v->avail, u = (uintptr_t)&v->used;
		wr(base, R_DESC_LO, (uint32_t)d);
		wr(base, R_DESC_HI, (uint32_t)(d >> 32));
		wr(base, R_AVAIL_LO, (uint32_t)a);
		wr(base, R_AVAIL_HI, (uint32_t)(a >> 32));
		wr(base, R_USED_LO, (uint32_t)u);
		wr(base, R_USED_HI, (uint32_t)(u >> 32));
		wr(base, R_QUEUE_READY, 1);
	}
	wr(base, R_STATUS, 1 | 2 | 8 | 4); /* DRIVER_OK */
	if (ret_features)
		*ret_features = lo & want;
	return 0;
}

/* Put a chain of n descriptors (starting at 0) on queue q, notify, wait until used. */
static uint32_t submit_wait(uint64_t base, unsigned q, unsigned n)
{
	struct vq *v = &queues[q];
	for (unsigned i = 0; i + 1 < n; i++) {
		v->desc[i].flags |= 1; /* NEXT */
		v->desc[i].next = (uint16_t)(i + 1);
	}
	v->avail.ring[v->avail.idx % VQ_SIZE] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	v->avail.idx++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	wr(base, R_QUEUE_NOTIFY, q);
	while (*(volatile uint16_t *)&v->used.idx == v->last_used)
		__asm__ volatile("pause");
	uint32_t len = v->used.ring[v->last_used % VQ_SIZE].len;
	v->last_used++;
	wr(base, R_INT_ACK, rd(base, R_INT_STATUS));
	return len;
}

struct blk_req {
	uint32_t type, reserved;
	uint64_t sector;
};

static uint8_t sector_buf[512] __attribute__((aligned(512)));
static struct blk_req req;
static volatile uint8_t blk_status;

static int blk_io(uint64_t base, uint32_t type, uint64_t sector)
{
	struct vq *v = &queues[0];
	memset(v->desc, 0, sizeof(v->desc));
	req = (struct blk_req){ .type = type, .sector = sector };
	blk_status = 0xff;
	v->desc[0] = (struct vdesc){ .addr = (uintptr_t)&req, .len = sizeof(req) };
	unsigned n = 1;
	if (type != 4) { /* not FLUSH: a data buffer */
		v->desc[1] = (struct vdesc){ .addr = (uintptr_t)sector_buf, .len = 512,
					     .flags = type == 0 ? 2 : 0 }; /* WRITE (by device) */
		n = 2;
	}
	v->desc[n] = (struct vdesc){ .addr = (uintptr_t)&blk_status, .len = 1, .flags = 2 };
	submit_wait(base, 0, n + 1);
	return blk_status;
}

int test_disk(void)
{
	uint64_t base = find_device(2);
	uint32_t features = 0;
	if (!base) {
		puts_("disk: no virtio-blk device\n");
		return -1;
	}
	/* VIRTIO_BLK_F_RO (5), VIRTIO_BLK_F_FLUSH (9) */
	if (device_init(base, (1u << 5) | (1u << 9), &features, 1) < 0)
		return -1;
	uint64_t capacity = (uint64_t)rd(base, R_CONFIG) | (uint64_t)rd(base, R_CONFIG + 4) << 32;
	puts_("disk: ");
	put_dec(capacity);
	puts_(" sectors");
	puts_(features & (1u << 5) ? ", read-only\n" : "\n");

	if (blk_io(base, 0, 0) != 0) {
		puts_("disk: read failed\n");
		return -1;
	}
	char first[33];
	size_t n = 0;
	for (; n < 32 && sector_buf[n] >= 0x20 && sector_buf[n] < 0x7f; n++)
		first[n] = (char)sector_buf[n];
	first[n] = 0;
	puts_("disk: sector 0 says '");
	puts_(first);
	puts_("'\n");

	static const char msg[] = "written by the locald test guest";
	memset(sector_buf, 0, sizeof(sector_buf));
	memcpy(sector_buf, msg, sizeof(msg) - 1);
	int s = blk_io(base, 1, 1);
	if (features & (1u << 5)) {
		if (s == 0) {
			puts_("disk: write to a read-only disk succeeded\n");
			return -1;
		}
		puts_("disk: write refused (read-only), ok\n");
		return 0;
	}
	if (s != 0) {
		puts_("disk: write failed\n");
		return -1;
	}
	if ((features & (1u << 9)) && blk_io(base, 4, 0) != 0) {
		puts_("disk: flush failed\n");
		return -1;
	}
	memset(sector_buf, 0, sizeof(sector_buf));
	if (blk_io(base, 0, 1) != 0 || memcmp(sector_buf, msg, sizeof(msg) - 1) != 0) {
		puts_("disk: read back differs\n");
		return -1;
	}
	puts_("disk: round trip ok\n");
	return 0;
}

static uint8_t rng_buf[16];

int test_rng(void)
{
	uint64_t base = find_device(4);
	if (!base) {
		puts_("rng: no virtio-rng device\n");
		return -1;
	}
	if (device_init(base, 0, NULL, 1) < 0)
		return -1;
	struct vq *v = &queues[0];
	memset(v->desc, 0, sizeof(v->desc));
	v->desc[0] = (struct vdesc){ .addr = (uintptr_t)rng_buf, .len = sizeof(rng_buf), .flags = 2 };
	uint32_t len = submit_wait(base, 0, 1);
	puts_("rng: got ");
	put_dec(len);
	puts_(" bytes ");
	put_hex(*(uint64_t *)rng_buf);
	puts_("\n");
	return len > 0 ? 0 : -1;
}

/* vsock echo server: accepts connections on vsock_port= (1234), echoes what it gets,
 * ends when the peer shuts the connection down. */
#define VS_BUFS 4
#define VS_BUF 4096
static uint8_t vs_rx[VS_BUFS][VS_BUF] __attribute__((aligned(16)));
static uint8_t vs_tx[VS_BUF + 64] __attribute__((aligned(16)));
static uint64_t vs_cid;
static uint32_t vs_fwd;

struct vs_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static void vs_send(uint64_t base, const struct vs_hdr *to, uint16_t op, const void *data,
		    uint32_t len)
{
	struct vs_hdr h = { .src_cid = vs_cid, .dst_cid = to->src_cid, .src_port = to->dst_port,
			    .dst_port = to->src_port, .len = len, .type = 1, .op = op,
			    .buf_alloc = 16384, .fwd_cnt = vs_fwd };
	memcpy(vs_tx, &h, sizeof(h));
	if (len)
		memcpy(vs_tx + sizeof(h), data, len);
	struct vq *v = &queues[1];
	memset(v->desc, 0, sizeof(v->desc));
	v->desc[0] = (struct vdesc){ .addr = (uintptr_t)vs_tx, .len = (uint32_t)sizeof(h) + len };
	submit_wait(base, 1, 1);
}

int test_vsock(void)
{
	uint64_t base = find_device(19);
	if (!base) {
		puts_("vsock: no virtio-vsock device\n");
		return -1;
	}
	if (device_init(base, 0, NULL, 3) < 0)
		return -1;
	vs_cid = (uint64_t)rd(base, R_CONFIG) | (uint64_t)rd(base, R_CONFIG + 4) << 32;
	char b[16];
	uint32_t port = cmdline_get("vsock_port", b, sizeof(b)) ? (uint32_t)parse_num(b, NULL) : 1234;
	struct vq *rx = &queues[0];
	for (unsigned i = 0; i < VS_BUFS; i++) {
		rx->desc[i] = (struct vdesc){ .addr = (uintptr_t)vs_rx[i], .len = VS_BUF, .flags = 2 };
		rx->avail.ring[i] = (uint16_t)i;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	rx->avail.idx = VS_BUFS;
	wr(base, R_QUEUE_NOTIFY, 0);
	puts_("vsock: cid ");
	put_dec(vs_cid);
	puts_(" listening on port ");
	put_dec(port);
	puts_("\n");
	uint64_t echoed = 0;
	for (;;) {
		while (*(volatile uint16_t *)&rx->used.idx == rx->last_used)
			__asm__ volatile("pause");
		uint32_t id = rx->used.ring[rx->last_used % VQ_SIZE].id;
		rx->last_used++;
		struct vs_hdr h;
		memcpy(&h, vs_rx[id % VS_BUFS], sizeof(h));
		int done = 0;
		if (h.dst_port != port) {
			if (h.op != 3)
				vs_send(base, &h, 3, NULL, 0); /* RST: nobody listens there */
		} else if (h.op == 1) {
			puts_("vsock: connection from port ");
			put_dec(h.src_port);
			puts_("\n");
			vs_send(base, &h, 2, NULL, 0); /* RESPONSE */
		} else if (h.op == 5 && h.len <= VS_BUF - sizeof(h)) {
			vs_fwd += h.len;
			echoed += h.len;
			vs_send(base, &h, 5, vs_rx[id % VS_BUFS] + sizeof(h), h.len);
		} else if (h.op == 7) {
			vs_send(base, &h, 6, NULL, 0); /* CREDIT_UPDATE */
		} else if (h.op == 4 || h.op == 3) {
			if (h.op == 4)
				vs_send(base, &h, 3, NULL, 0);
			puts_("vsock: peer closed after ");
			put_dec(echoed);
			puts_(" bytes echoed\n");
			done = 1;
		}
		rx->avail.ring[rx->avail.idx % VQ_SIZE] = (uint16_t)id;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		rx->avail.idx++;
		wr(base, R_QUEUE_NOTIFY, 0);
		if (done)
			return 0;
	}
}
