/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock (spec §5.10), stream sockets, host side as Firecracker does it: a Unix
 * socket listens on the host; a client connects, sends "CONNECT <port>\n", and once the
 * guest accepted (RESPONSE) reads "OK <host port>\n", then the connection is a byte
 * stream to the guest's <port>. Guest-initiated connections are refused (RST).
 *
 * Threads: the tx queue is processed on the vCPU that notifies; host sockets are served
 * by the worker's main thread through vsock_poll_fill()/vsock_poll_handle(). Both hold
 * the device lock. Data for the guest is read from a socket only when the guest has
 * posted receive buffers and given credit, so a slow guest pushes back on the client.
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm-virtio.h"

#define HDR 44
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define TYPE_STREAM 1
#define HOST_CID 2
#define BUF_ALLOC (256 * 1024)
#define RXQ 0
#define TXQ 1

typedef enum ConnState {
	CONN_FREE,
	CONN_HANDSHAKE,  /* reading "CONNECT <port>\n" */
	CONN_CONNECTING, /* REQUEST to send or sent */
	CONN_OPEN,
} ConnState;

typedef struct Conn {
	ConnState state;
	int fd;
	uint32_t local_port, peer_port;
	char line[32];
	size_t line_len;
	bool send_request, send_rst, send_credit, send_shutdown, sent_request;
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt, fwd_cnt, fwd_told;
} Conn;

typedef struct Vsock {
	uint64_t cid;
	int listen_fd;
	Conn conns[VSOCK_CONNS_MAX];
	uint32_t next_port;
	void (*wake)(void *userdata);
	void *wake_userdata;
} Vsock;

static void put_hdr(uint8_t *h, uint64_t src_cid, uint64_t dst_cid, uint32_t src_port,
		    uint32_t dst_port, uint32_t len, uint16_t op, uint32_t fwd_cnt)
{
	uint16_t type = TYPE_STREAM;
	uint32_t flags = 0, buf_alloc = BUF_ALLOC;
	memcpy(h, &src_cid, 8);
	memcpy(h + 8, &dst_cid, 8);
	memcpy(h + 16, &src_port, 4);
	memcpy(h + 20, &dst_port, 4);
	memcpy(h + 24, &len, 4);
	memcpy(h + 28, &type, 2);
	memcpy(h + 30, &op, 2);
	memcpy(h + 32, &flags, 4);
	memcpy(h + 36, &buf_alloc, 4);
	memcpy(h + 40, &fwd_cnt, 4);
}

static void conn_close(Conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	*c = (Conn){ .fd = -1 };
}

/* Bytes the guest can take now. */
static uint32_t credit(const Conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return c->peer_buf_alloc > in_flight ? c->peer_buf_alloc - in_flight : 0;
}

/* Copy bytes into a device-writable chain; returns bytes written. */
static uint32_t chain_write(VirtioDevice *d, const VirtqChain *ch, uint32_t off,
			    const uint8_t *data, uint32_t len)
{
	uint32_t done = 0, pos = 0;
	for (unsigned i = 0; i < ch->n && done < len; i++) {
		const VirtqBuf *b = &ch->buf[i];
		if (!b->write) {
			pos += b->len;
			continue;
		}
		if (off >= pos + b->len) {
			pos += b->len;
			continue;
		}
		uint32_t skip = off > pos ? off - pos : 0;
		uint32_t n = MIN(b->len - skip, len - done);
		if (guest_memory_write(d->mem, b->addr + skip, data + done, n) < 0)
			break;
		done += n;
		off += n;
		pos += b->len;
	}
	return done;
}

static uint32_t chain_capacity(const VirtqChain *ch)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < ch->n; i++)
		if (ch->buf[i].write)
			n += ch->buf[i].len;
	return n;
}

/* Send one control packet to the guest if a receive buffer is there. */
static bool rx_control(VirtioDevice *d, Vsock *v, Conn *c, uint16_t op)
{
	VirtqChain ch;
	if (virtq_pop(d, RXQ, &ch) <= 0)
		return false;
	uint8_t h[HDR];
	put_hdr(h, HOST_CID, v->cid, c->local_port, c->peer_port, 0, op, c->fwd_cnt);
	c->fwd_told = c->fwd_cnt;
	uint32_t n = chain_capacity(&ch) >= HDR ? chain_write(d, &ch, 0, h, HDR) : 0;
	virtq_push(d, RXQ, ch.head, n);
	return true;
}

/* Move what can move towards the guest. Device lock held. */
static void rx_pump(VirtioDevice *d, Vsock *v)
{
	static uint8_t buf[65536];
	for (unsigned i = 0; i < VSOCK_CONNS_MAX; i++) {
		Conn *c = &v->conns[i];
		if (c->state == CONN_FREE)
			continue;
		if (c->send_rst) {
			if (!rx_control(d, v, c, OP_RST))
				return;
			conn_close(c);
			continue;
		}
		if (c->send_request && !c->sent_request) {
			if (!rx_control(d, v, c, OP_REQUEST))
				return;
			c->sent_request = true;
		}
		if (c->send_credit) {
			if (!rx_control(d, v, c, OP_CREDIT_UPDATE))
				return;
			c->send_credit = false;
		}
		while (c->state == CONN_OPEN && credit(c) > 0 && !c->send_shutdown) {
			VirtqChain ch;
			if (virtq_pop(d, RXQ, &ch) <= 0)
				return;
			uint32_t cap = chain_capacity(&ch);
			uint32_t room =
			    MIN(MIN(credit(c), (uint32_t)sizeof(buf)), cap > HDR ? cap - HDR : 0);
			if (!room) { /* a buffer too small for any data: return it empty */
				virtq_push(d, RXQ, ch.head, 0);
				continue;
			}
			ssize_t n = recv(c->fd, buf, room, MSG_DONTWAIT);
			if (n <= 0) {
				if (n == 0)
					c->send_shutdown = true; /* the host side closed */
				else if (errno != EAGAIN && errno != EINTR)
					c->send_rst = true;
				/* un-pop: nothing was written into the buffer */
				d->vq[RXQ].last_avail--;
				d->requests--;
				break;
			}
			uint32_t len = (uint32_t)n;
			uint8_t h[HDR];
			put_hdr(h, HOST_CID, v->cid, c->local_port, c->peer_port, len, OP_RW,
				c->fwd_cnt);
			c->fwd_told = c->fwd_cnt;
			chain_write(d, &ch, 0, h, HDR);
			chain_write(d, &ch, HDR, buf, len);
			virtq_push(d, RXQ, ch.head, HDR + len);
			c->tx_cnt += len;
		}
		if (c->send_shutdown && c->state == CONN_OPEN) {
			if (!rx_control(d, v, c, OP_SHUTDOWN))
				return;
			c->send_shutdown = false;
			c->state = CONN_CONNECTING; /* wait for the guest's RST */
			c->sent_request = true;
		}
	}
}

static Conn *find(Vsock *v, uint32_t local_port, uint32_t peer_port)
{
	for (unsigned i = 0; i < VSOCK_CONNS_MAX; i++)
		if (v->conns[i].state != CONN_FREE && v->conns[i].local_port == local_port &&
		    v->conns[i].peer_port == peer_port)
			return &v->conns[i];
	return NULL;
}

static void tx_packet(VirtioDevice *d, Vsock *v, const VirtqChain *ch)
{
	uint8_t h[HDR];
	uint32_t got = 0;
	unsigned i = 0;
	uint32_t in_buf = 0; /* offset into buf[i] where the payload starts */
	for (; i < ch->n && got < HDR; i++) {
		uint32_t n = MIN(ch->buf[i].len, HDR - got);
		if (ch->buf[i].write || guest_memory_read(d->mem, ch->buf[i].addr, h + got, n) < 0)
			return;
		got += n;
		if (n < ch->buf[i].len) {
			in_buf = n;
			break;
		}
	}
	if (got < HDR)
		return;
	uint64_t dst_cid;
	uint32_t src_port, dst_port, len, buf_alloc, fwd_cnt;
	uint16_t type, op;
	memcpy(&dst_cid, h + 8, 8);
	memcpy(&src_port, h + 16, 4);
	memcpy(&dst_port, h + 20, 4);
	memcpy(&len, h + 24, 4);
	memcpy(&type, h + 28, 2);
	memcpy(&op, h + 30, 2);
	memcpy(&buf_alloc, h + 36, 4);
	memcpy(&fwd_cnt, h + 40, 4);
	if (dst_cid != HOST_CID || type != TYPE_STREAM)
		return;
	Conn *c = find(v, dst_port, src_port);
	if (!c) {
		if (op != OP_RST) { /* nobody here (or a guest-initiated REQUEST): refuse */
			for (unsigned k = 0; k < VSOCK_CONNS_MAX; k++)
				if (v->conns[k].state == CONN_FREE) {
					/* a transient entry just to send the RST */
					v->conns[k] = (Conn){ .state = CONN_CONNECTING,
							      .fd = -1,
							      .local_port = dst_port,
							      .peer_port = src_port,
							      .send_rst = true };
					break;
				}
		}
		return;
	}
	c->peer_buf_alloc = buf_alloc;
	c->peer_fwd_cnt = fwd_cnt;
	switch (op) {
	case OP_RESPONSE:
		if (c->state == CONN_CONNECTING && c->fd >= 0) {
			char ok[32];
			int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
			if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL) != n)
				c->send_rst = true;
			else
				c->state = CONN_OPEN;
		}
		break;
	case OP_RW: {
		uint32_t left = len;
		for (; i < ch->n && left; i++, in_buf = 0) {
			const VirtqBuf *b = &ch->buf[i];
			uint32_t n = MIN(b->len - in_buf, left);
			const uint8_t *p = guest_memory_ptr(d->mem, b->addr + in_buf, n);
			if (!p || b->write)
				break;
			size_t off = 0;
			while (off < n) {
				ssize_t w = send(c->fd, p + off, n - off, MSG_NOSIGNAL);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					break;
				off += (size_t)w;
			}
			left -= n;
		}
		c->fwd_cnt += len - left;
		if (left)
			c->send_rst = true;
		else if (c->fwd_cnt - c->fwd_told >= BUF_ALLOC / 2)
			c->send_credit = true;
		break;
	}
	case OP_SHUTDOWN:
	case OP_RST:
		if (op == OP_SHUTDOWN)
			c->send_rst = true;
		else
			conn_close(c);
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		break;
	case OP_CREDIT_REQUEST:
		c->send_credit = true;
		break;
	default:
		break;
	}
}

static void vsock_notify(VirtioDevice *d, unsigned queue)
{
	Vsock *v = d->impl;
	if (queue == TXQ) {
		VirtqChain ch;
		while (virtq_pop(d, TXQ, &ch) > 0) {
			tx_packet(d, v, &ch);
			virtq_push(d, TXQ, ch.head, 0);
		}
	}
	rx_pump(d, v);
	if (v->wake)
		v->wake(v->wake_userdata); /* the poll set may have changed */
}

static void vsock_config(VirtioDevice *d, uint8_t *buf, size_t size)
{
	Vsock *v = d->impl;
	memcpy(buf, &v->cid, 8);
}

static void vsock_free(VirtioDevice *d)
{
	Vsock *v = d->impl;
	if (!v)
		return;
	for (unsigned i = 0; i < VSOCK_CONNS_MAX; i++)
		conn_close(&v->conns[i]);
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	free(v);
}

static const VirtioDeviceOps vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.n_queues = 3,
	.notify = vsock_notify,
	.config = vsock_config,
	.free = vsock_free,
};

int virtio_vsock_new(uint64_t cid, int listen_fd, void (*wake)(void *), void *wake_userdata,
		     GuestMemory *mem, const DeviceHost *host, unsigned index, VirtioDevice **ret)
{
	if (cid < 3 || cid > UINT32_MAX)
		return -EINVAL;
	Vsock *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->cid = cid;
	v->listen_fd = listen_fd;
	v->next_port = 1u << 30;
	v->wake = wake;
	v->wake_userdata = wake_userdata;
	for (unsigned i = 0; i < VSOCK_CONNS_MAX; i++)
		v->conns[i] = (Conn){ .fd = -1 };
	int r = virtio_device_new(&vsock_ops, v, 0, mem, host, index, ret);
	if (r < 0)
		free(v);
	return r;
}

size_t vsock_poll_fill(VirtioDevice *d, struct pollfd *p, size_t max)
{
	Vsock *v = d->impl;
	size_t n = 0;
	pthread_mutex_lock(&d->lock);
	bool rx_ready = virtq_has_avail(d, RXQ);
	if (v->listen_fd >= 0 && n < max)
		p[n++] = (struct pollfd){ .fd = v->listen_fd, .events = POLLIN };
	for (unsigned i = 0; i < VSOCK_CONNS_MAX && n < max; i++) {
		Conn *c = &v->conns[i];
		if (c->fd < 0)
			continue;
		bool want = c->state == CONN_HANDSHAKE ||
			    (c->state == CONN_OPEN && rx_ready && credit(c) > 0);
		p[n++] = (struct pollfd){ .fd = c->fd, .events = want ? POLLIN : 0 };
	}
	pthread_mutex_unlock(&d->lock);
	return n;
}

static void handshake(Vsock *v, Conn *c)
{
	ssize_t n =
	    recv(c->fd, c->line + c->line_len, sizeof(c->line) - 1 - c->line_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->line_len += (size_t)n;
	c->line[c->line_len] = 0;
	char *nl = strchr(c->line, '\n');
	if (!nl) {
		if (c->line_len == sizeof(c->line) - 1)
			conn_close(c);
		return;
	}
	*nl = 0;
	unsigned long port;
	char *end;
	if (strncmp(c->line, "CONNECT ", 8) != 0 ||
	    (errno = 0, port = strtoul(c->line + 8, &end, 10), errno) || *end ||
	    end == c->line + 8 || port > UINT32_MAX) {
		conn_close(c);
		return;
	}
	/* bytes after the line belong to the stream: not supported before OK */
	c->peer_port = (uint32_t)port;
	c->local_port = v->next_port++;
	c->state = CONN_CONNECTING;
	c->send_request = true;
}

void vsock_poll_handle(VirtioDevice *d, const struct pollfd *p, size_t n)
{
	Vsock *v = d->impl;
	pthread_mutex_lock(&d->lock);
	for (size_t k = 0; k < n; k++) {
		if (!p[k].revents)
			continue;
		if (p[k].fd == v->listen_fd) {
			int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd < 0)
				continue;
			Conn *slot = NULL;
			for (unsigned i = 0; i < VSOCK_CONNS_MAX && !slot; i++)
				if (v->conns[i].state == CONN_FREE)
					slot = &v->conns[i];
			if (!slot) {
				close(fd);
				continue;
			}
			*slot = (Conn){ .state = CONN_HANDSHAKE, .fd = fd };
			continue;
		}
		for (unsigned i = 0; i < VSOCK_CONNS_MAX; i++) {
			Conn *c = &v->conns[i];
			if (c->fd != p[k].fd)
				continue;
			if (c->state == CONN_HANDSHAKE)
				handshake(v, c);
			else if ((p[k].revents & (POLLHUP | POLLERR)) && c->state != CONN_OPEN)
				c->send_rst = true;
		}
	}
	if (d->status & 4) /* DRIVER_OK */
		rx_pump(d, v);
	pthread_mutex_unlock(&d->lock);
}

void vsock_forget_listen_fd(VirtioDevice *d)
{
	Vsock *v = d->impl;
	v->listen_fd = -1;
}
