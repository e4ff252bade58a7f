/* SPDX-License-Identifier: MIT */
/* virtio-mmio transport, split virtqueues, blk and rng: a driver written against guest
 * memory in a buffer, as the test guest does it. */

#include <fcntl.h>
#include <unistd.h>

#include "test.h"
#include "vmm-virtio.h"

#define MEM (1 << 20)
#define DESC 0x10000
#define AVAIL 0x11000
#define USED 0x12000
#define QSZ 8

static int irqs;
static void irq(void *u, unsigned line, int level)
{
	irqs += level;
}
static const DeviceHost host = { .irq_line = irq };

static void w32(VirtioDevice *d, uint64_t off, uint32_t v)
{
	virtio_mmio_write(d, off, (const uint8_t *)&v, 4);
}

static uint32_t r32(VirtioDevice *d, uint64_t off)
{
	uint32_t v = 0;
	virtio_mmio_read(d, off, (uint8_t *)&v, 4);
	return v;
}

static void driver_init(VirtioDevice *d, uint32_t feat_lo)
{
	ASSERT_EQ(r32(d, 0), 0x74726976);
	ASSERT_EQ(r32(d, 4), 2);
	w32(d, 0x70, 0);
	w32(d, 0x70, 3);
	w32(d, 0x14, 1);
	ASSERT_EQ(r32(d, 0x10) & 1, 1); /* VERSION_1 */
	w32(d, 0x24, 0);
	w32(d, 0x20, feat_lo);
	w32(d, 0x24, 1);
	w32(d, 0x20, 1);
	w32(d, 0x70, 3 | 8);
	ASSERT_TRUE(r32(d, 0x70) & 8);
	w32(d, 0x30, 0);
	ASSERT_TRUE(r32(d, 0x34) >= QSZ);
	w32(d, 0x38, QSZ);
	w32(d, 0x80, DESC);
	w32(d, 0x90, AVAIL);
	w32(d, 0xa0, USED);
	w32(d, 0x44, 1);
	w32(d, 0x70, 3 | 8 | 4);
}

typedef struct Desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
} Desc;

static void submit(uint8_t *mem, VirtioDevice *d, const Desc *chain, unsigned n)
{
	Desc *t = (Desc *)(mem + DESC);
	for (unsigned i = 0; i < n; i++) {
		t[i] = chain[i];
		if (i + 1 < n) {
			t[i].flags |= 1;
			t[i].next = (uint16_t)(i + 1);
		}
	}
	uint16_t *avail = (uint16_t *)(mem + AVAIL);
	avail[2 + avail[1] % QSZ] = 0;
	avail[1]++;
	w32(d, 0x50, 0);
}

static uint16_t used_idx(uint8_t *mem)
{
	return ((uint16_t *)(mem + USED))[1];
}

TEST(feature_negotiation)
{
	static uint8_t mem[MEM];
	GuestMemory *m;
	ASSERT_OK(guest_memory_wrap(mem, MEM, &m));
	VirtioDevice *d;
	ASSERT_OK(virtio_rng_new(m, &host, 0, &d));
	ASSERT_EQ(r32(d, 8), VIRTIO_ID_RNG);
	/* a driver without VERSION_1 is refused */
	w32(d, 0x70, 3);
	w32(d, 0x24, 1);
	w32(d, 0x20, 0);
	w32(d, 0x70, 3 | 8);
	ASSERT_FALSE(r32(d, 0x70) & 8);
	/* as is one asking for a feature not offered */
	w32(d, 0x70, 0);
	w32(d, 0x70, 3);
	w32(d, 0x24, 0);
	w32(d, 0x20, 1u << 28);
	w32(d, 0x24, 1);
	w32(d, 0x20, 1);
	w32(d, 0x70, 3 | 8);
	ASSERT_FALSE(r32(d, 0x70) & 8);
	/* queue size must be a power of 2 */
	w32(d, 0x70, 0);
	w32(d, 0x30, 0);
	w32(d, 0x38, 3);
	w32(d, 0x44, 1);
	ASSERT_EQ(r32(d, 0x44), 0);
	virtio_device_free(d);
	guest_memory_free(m);
}

TEST(rng)
{
	static uint8_t mem[MEM];
	GuestMemory *m;
	ASSERT_OK(guest_memory_wrap(mem, MEM, &m));
	VirtioDevice *d;
	ASSERT_OK(virtio_rng_new(m, &host, 1, &d));
	ASSERT_EQ(d->base, VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE);
	ASSERT_EQ(d->irq, VIRTIO_IRQ_BASE + 1);
	driver_init(d, 0);
	irqs = 0;
	Desc c[] = { { 0x20000, 64, 2, 0 } };
	submit(mem, d, c, 1);
	ASSERT_EQ(used_idx(mem), 1);
	ASSERT_EQ(((uint32_t *)(mem + USED + 4))[1], 64);
	ASSERT_EQ(irqs, 1);
	ASSERT_EQ(r32(d, 0x60) & 1, 1);
	w32(d, 0x64, 1);
	ASSERT_EQ(r32(d, 0x60), 0);
	int nonzero = 0;
	for (int i = 0; i < 64; i++)
		nonzero += mem[0x20000 + i] != 0;
	ASSERT_TRUE(nonzero > 32);
	virtio_device_free(d);
	guest_memory_free(m);
}

static int make_disk(const char *content)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/disk.img", test_tmpdir());
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(ftruncate(fd, 8 * 512));
	ASSERT_EQ(pwrite(fd, content, strlen(content), 0), (ssize_t)strlen(content));
	return fd;
}

static uint8_t blk(uint8_t *mem, VirtioDevice *d, uint32_t type, uint64_t sector, uint32_t len)
{
	uint32_t hdr[4] = { type, 0, (uint32_t)sector, (uint32_t)(sector >> 32) };
	memcpy(mem + 0x20000, hdr, 16);
	mem[0x30000] = 0xee;
	Desc c[] = { { 0x20000, 16, 0, 0 },
		     { 0x21000, len, type == 0 ? 2 : 0, 0 },
		     { 0x30000, 1, 2, 0 } };
	uint16_t before = used_idx(mem);
	if (type == 4) {
		c[1] = c[2];
		submit(mem, d, c, 2);
	} else
		submit(mem, d, c, 3);
	ASSERT_EQ(used_idx(mem), before + 1);
	return mem[0x30000];
}

TEST(blk_read_write_flush)
{
	static uint8_t mem[MEM];
	GuestMemory *m;
	ASSERT_OK(guest_memory_wrap(mem, MEM, &m));
	int fd = make_disk("hello from the host");
	VirtioDevice *d;
	ASSERT_OK(virtio_blk_new(fd, false, m, &host, 0, &d));
	ASSERT_EQ(r32(d, 0x100), 8); /* capacity in sectors */
	driver_init(d, 1u << 9);
	ASSERT_EQ(blk(mem, d, 0, 0, 512), 0);
	ASSERT_TRUE(memcmp(mem + 0x21000, "hello from the host", 19) == 0);
	memcpy(mem + 0x21000, "guest was here", 14);
	ASSERT_EQ(blk(mem, d, 1, 3, 512), 0);
	ASSERT_EQ(blk(mem, d, 4, 0, 0), 0);
	char back[14];
	ASSERT_EQ(pread(fd, back, 14, 3 * 512), 14);
	ASSERT_TRUE(memcmp(back, "guest was here", 14) == 0);
	/* past the end, unknown request */
	ASSERT_EQ(blk(mem, d, 0, 8, 512), 1);
	ASSERT_EQ(blk(mem, d, 0, 7, 1024), 1);
	ASSERT_EQ(blk(mem, d, 99, 0, 512), 2);
	virtio_device_free(d); /* closes fd */
	guest_memory_free(m);
}

TEST(blk_read_only)
{
	static uint8_t mem[MEM];
	GuestMemory *m;
	ASSERT_OK(guest_memory_wrap(mem, MEM, &m));
	int fd = make_disk("ro");
	VirtioDevice *d;
	ASSERT_OK(virtio_blk_new(fd, true, m, &host, 0, &d));
	ASSERT_TRUE(r32(d, 0x10) & (1u << 5)); /* VIRTIO_BLK_F_RO offered */
	driver_init(d, 1u << 5);
	ASSERT_EQ(blk(mem, d, 0, 0, 512), 0);
	ASSERT_EQ(blk(mem, d, 1, 0, 512), 1);
	virtio_device_free(d);
	guest_memory_free(m);
}

TEST(malformed_chains)
{
	static uint8_t mem[MEM];
	GuestMemory *m;
	ASSERT_OK(guest_memory_wrap(mem, MEM, &m));
	VirtioDevice *d;
	ASSERT_OK(virtio_rng_new(m, &host, 0, &d));
	driver_init(d, 0);
	/* a descriptor pointing outside guest memory */
	Desc out[] = { { MEM - 8, 64, 2, 0 } };
	submit(mem, d, out, 1);
	ASSERT_EQ(used_idx(mem), 0);
	ASSERT_TRUE(r32(d, 0x70) & 64); /* NEEDS_RESET */
	/* reset and a loop: 0 -> 1 -> 0 */
	memset(mem, 0, 0x13000);
	driver_init(d, 0);
	Desc *t = (Desc *)(mem + DESC);
	t[0] = (Desc){ 0x20000, 8, 1 | 2, 1 };
	t[1] = (Desc){ 0x20000, 8, 1 | 2, 0 };
	uint16_t *avail = (uint16_t *)(mem + AVAIL);
	avail[2] = 0;
	avail[1] = 1;
	w32(d, 0x50, 0);
	ASSERT_TRUE(r32(d, 0x70) & 64);
	ASSERT_EQ(used_idx(mem), 0);
	/* notify before DRIVER_OK, or of a queue that does not exist: ignored */
	w32(d, 0x50, 7);
	virtio_device_free(d);
	guest_memory_free(m);
}

TEST_MAIN();
