/* SPDX-License-Identifier: MIT */
/* virtio-vsock against a driver written in a buffer and a real Unix-socket client:
 * the CONNECT handshake, data both ways, shutdown, refusals. */

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "strutil.h"
#include "test.h"
#include "vmm-virtio.h"

#define MEM (1 << 20)
#define QBASE(q) (0x10000 + (q)*0x4000)
#define RXBUF 0x40000
#define TXBUF 0x50000
#define QSZ 8

static uint8_t mem[MEM];
static const DeviceHost host = { 0 };

typedef struct Desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
} Desc;

static void w32(VirtioDevice *d, uint64_t off, uint32_t v)
{
	virtio_mmio_write(d, off, (const uint8_t *)&v, 4);
}

static uint16_t *avail(unsigned q)
{
	return (uint16_t *)(mem + QBASE(q) + 0x1000);
}

static uint16_t used_idx(unsigned q)
{
	return ((uint16_t *)(mem + QBASE(q) + 0x2000))[1];
}

static uint32_t used_len(unsigned q, unsigned i)
{
	return ((uint32_t *)(mem + QBASE(q) + 0x2000 + 4))[2 * (i % QSZ) + 1];
}

static uint32_t used_id(unsigned q, unsigned i)
{
	return ((uint32_t *)(mem + QBASE(q) + 0x2000 + 4))[2 * (i % QSZ)];
}

static void init(VirtioDevice *d)
{
	w32(d, 0x70, 3);
	w32(d, 0x24, 1);
	w32(d, 0x20, 1);
	w32(d, 0x70, 3 | 8);
	for (unsigned q = 0; q < 3; q++) {
		w32(d, 0x30, q);
		w32(d, 0x38, QSZ);
		w32(d, 0x80, QBASE(q));
		w32(d, 0x90, QBASE(q) + 0x1000);
		w32(d, 0xa0, QBASE(q) + 0x2000);
		w32(d, 0x44, 1);
	}
	w32(d, 0x70, 3 | 8 | 4);
	/* four receive buffers */
	Desc *rx = (Desc *)(mem + QBASE(0));
	for (unsigned i = 0; i < 4; i++) {
		rx[i] = (Desc){ RXBUF + i * 0x1000, 0x1000, 2, 0 };
		avail(0)[2 + i] = (uint16_t)i;
	}
	avail(0)[1] = 4;
	w32(d, 0x50, 0);
}

static void repost(VirtioDevice *d, uint16_t id)
{
	avail(0)[2 + avail(0)[1] % QSZ] = id;
	avail(0)[1]++;
	w32(d, 0x50, 0);
}

static void hdr(uint8_t *h, uint32_t src_port, uint32_t dst_port, uint32_t len, uint16_t op)
{
	uint64_t src = 3, dst = 2;
	uint16_t type = 1;
	uint32_t zero = 0, buf_alloc = 65536;
	memcpy(h, &src, 8);
	memcpy(h + 8, &dst, 8);
	memcpy(h + 16, &src_port, 4);
	memcpy(h + 20, &dst_port, 4);
	memcpy(h + 24, &len, 4);
	memcpy(h + 28, &type, 2);
	memcpy(h + 30, &op, 2);
	memcpy(h + 32, &zero, 4);
	memcpy(h + 36, &buf_alloc, 4);
	memcpy(h + 40, &zero, 4);
}

/* The guest sends one packet: header and payload in one descriptor. */
static void guest_send(VirtioDevice *d, uint32_t src_port, uint32_t dst_port, uint16_t op,
		       const char *data)
{
	size_t len = data ? strlen(data) : 0;
	hdr(mem + TXBUF, src_port, dst_port, (uint32_t)len, op);
	if (len)
		memcpy(mem + TXBUF + 44, data, len);
	Desc *tx = (Desc *)(mem + QBASE(1));
	tx[0] = (Desc){ TXBUF, (uint32_t)(44 + len), 0, 0 };
	avail(1)[2 + avail(1)[1] % QSZ] = 0;
	avail(1)[1]++;
	w32(d, 0x50, 1);
}

static void serve(VirtioDevice *d)
{
	struct pollfd p[40];
	size_t n = vsock_poll_fill(d, p, 40);
	ASSERT_TRUE(poll(p, n, 2000) > 0);
	vsock_poll_handle(d, p, n);
}

static const uint8_t *rx_packet(unsigned i, uint16_t *ret_op, uint32_t *ret_len)
{
	const uint8_t *h = mem + RXBUF + used_id(0, i) * 0x1000;
	memcpy(ret_op, h + 30, 2);
	memcpy(ret_len, h + 24, 4);
	ASSERT_EQ(used_len(0, i), 44 + *ret_len);
	return h;
}

static int listener(char *path, size_t size)
{
	snprintf(path, size, "%s/v.sock", test_tmpdir());
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strscpy(sa.sun_path, sizeof(sa.sun_path), path);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_OK(listen(fd, 8));
	return fd;
}

static int client(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strscpy(sa.sun_path, sizeof(sa.sun_path), path);
	ASSERT_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	return fd;
}

TEST(connect_echo_shutdown)
{
	char path[256];
	int lfd = listener(path, sizeof(path));
	GuestMemory *m;
	ASSERT_OK(guest_memory_wrap(mem, MEM, &m));
	VirtioDevice *d;
	ASSERT_OK(virtio_vsock_new(3, lfd, NULL, NULL, m, &host, 0, &d));
	uint64_t cid = 0;
	virtio_mmio_read(d, 0x100, (uint8_t *)&cid, 8);
	ASSERT_EQ(cid, 3);
	init(d);

	int c = client(path);
	serve(d); /* accept */
	ASSERT_EQ(write(c, "CONNECT 1234\n", 13), 13);
	serve(d); /* handshake -> REQUEST to the guest */
	ASSERT_EQ(used_idx(0), 1);
	uint16_t op;
	uint32_t len, local;
	const uint8_t *h = rx_packet(0, &op, &len);
	ASSERT_EQ(op, 1);
	ASSERT_EQ(*(const uint64_t *)(h + 8), 3);
	ASSERT_EQ(*(const uint32_t *)(h + 20), 1234);
	memcpy(&local, h + 16, 4);
	repost(d, (uint16_t)used_id(0, 0));

	guest_send(d, 1234, local, 2, NULL); /* RESPONSE */
	char ok[32] = { 0 };
	ASSERT_TRUE(read(c, ok, sizeof(ok) - 1) > 0);
	char want[32];
	snprintf(want, sizeof(want), "OK %u\n", local);
	ASSERT_STREQ(ok, want);

	ASSERT_EQ(write(c, "ping", 4), 4);
	serve(d);
	ASSERT_EQ(used_idx(0), 2);
	h = rx_packet(1, &op, &len);
	ASSERT_EQ(op, 5);
	ASSERT_EQ(len, 4);
	ASSERT_TRUE(memcmp(h + 44, "ping", 4) == 0);
	repost(d, (uint16_t)used_id(0, 1));

	guest_send(d, 1234, local, 5, "pong!");
	char buf[8] = { 0 };
	ASSERT_EQ(read(c, buf, sizeof(buf)), 5);
	ASSERT_STREQ(buf, "pong!");

	/* more than one receive buffer holds: split into packets, in order */
	static char big[5000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	ASSERT_EQ(write(c, big, sizeof(big)), (ssize_t)sizeof(big));
	size_t got = 0;
	for (int tries = 0; got < sizeof(big) && tries < 10; tries++) {
		uint16_t before = used_idx(0);
		serve(d);
		for (uint16_t i = before; i != used_idx(0); i++) {
			h = rx_packet(i, &op, &len);
			ASSERT_EQ(op, 5);
			ASSERT_TRUE(memcmp(h + 44, big + got, len) == 0);
			got += len;
			repost(d, (uint16_t)used_id(0, i));
		}
	}
	ASSERT_EQ(got, sizeof(big));

	uint16_t before_close = used_idx(0);
	close(c);
	serve(d); /* EOF -> SHUTDOWN to the guest */
	ASSERT_EQ(used_idx(0), before_close + 1);
	rx_packet(before_close, &op, &len);
	ASSERT_EQ(op, 4);
	guest_send(d, 1234, local, 3, NULL); /* RST */
	struct pollfd p[40];
	ASSERT_EQ(vsock_poll_fill(d, p, 40), 1); /* only the listener is left */
	virtio_device_free(d);
	guest_memory_free(m);
}

TEST(bad_handshake_and_guest_connect)
{
	char path[256];
	int lfd = listener(path, sizeof(path));
	GuestMemory *m;
	memset(mem, 0, sizeof(mem));
	ASSERT_OK(guest_memory_wrap(mem, MEM, &m));
	VirtioDevice *d;
	ASSERT_OK(virtio_vsock_new(5, lfd, NULL, NULL, m, &host, 0, &d));
	init(d);
	int c = client(path);
	serve(d);
	ASSERT_EQ(write(c, "HELLO there\n", 12), 12);
	serve(d);
	char b[4];
	ASSERT_EQ(read(c, b, sizeof(b)), 0); /* closed */
	close(c);
	ASSERT_EQ(used_idx(0), 0);
	/* a guest connecting to the host is refused with RST */
	guest_send(d, 5000, 80, 1, NULL);
	ASSERT_EQ(used_idx(0), 1);
	uint16_t op;
	uint32_t len;
	rx_packet(0, &op, &len);
	ASSERT_EQ(op, 3);
	ASSERT_EQ(virtio_vsock_new(2, -1, NULL, NULL, m, &host, 1, &(VirtioDevice *){ NULL }),
		  -EINVAL);
	virtio_device_free(d);
	guest_memory_free(m);
}

TEST_MAIN();
