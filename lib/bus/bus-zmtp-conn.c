/* SPDX-License-Identifier: MIT */
#include "bus-zmtp-conn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "strutil.h"

#define READ_CHUNK_MIN ((size_t)16 << 10)
#define BUF_INITIAL ((size_t)64 << 10)

struct ZmtpConn {
	int fd;
	bool broken;
	ZmtpParser parser;
	/* buf[start, end) holds unconsumed bytes; [start, pos) the message being received. */
	uint8_t *buf;
	size_t alloc, start, pos, end;
	bool delivered; /* the message in [start, pos) was returned: release it next time */
	size_t n_frames;
	bool truncated;
	size_t frame_off[ZMTP_MESSAGE_FRAMES_MAX]; /* relative to start */
	size_t frame_size[ZMTP_MESSAGE_FRAMES_MAX];
};

static int ms_until(usec_t deadline)
{
	if (deadline == 0)
		return 0;
	usec_t now = now_monotonic();
	if (now >= deadline)
		return 0;
	usec_t ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Wait for events on the socket until the deadline: 0, -ETIMEDOUT, -EAGAIN (no wait). */
static int wait_fd(ZmtpConn *c, short events, usec_t deadline)
{
	for (;;) {
		if (deadline == 0)
			return -EAGAIN;
		int ms = ms_until(deadline);
		if (ms == 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = c->fd, .events = events };
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int broken(ZmtpConn *c, int r)
{
	c->broken = true;
	return r;
}

/* Write iov whole. Consumes (advances) iov. */
static int send_iov(ZmtpConn *c, struct iovec *iov, size_t n, usec_t deadline)
{
	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };
		ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return broken(c, errno == EPIPE ? -ECONNRESET : -errno);
			int r = wait_fd(c, POLLOUT, deadline);
			if (r < 0)
				return broken(c, r == -EAGAIN ? -ETIMEDOUT : r);
			continue;
		}
		size_t done = (size_t)k;
		while (n > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

int zmtp_conn_send(ZmtpConn *c, const struct iovec *frames, size_t n, usec_t deadline)
{
	uint8_t headers[ZMTP_MESSAGE_FRAMES_MAX][ZMTP_FRAME_HEADER_MAX];
	struct iovec iov[2 * ZMTP_MESSAGE_FRAMES_MAX];
	size_t k = 0;

	if (c->broken)
		return -ECONNRESET;
	if (n == 0 || n > ZMTP_MESSAGE_FRAMES_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t h = zmtp_frame_header_write(i + 1 < n ? ZMTP_FLAG_MORE : 0,
						   frames[i].iov_len, headers[i]);
		iov[k++] = (struct iovec){ .iov_base = headers[i], .iov_len = h };
		if (frames[i].iov_len)
			iov[k++] = frames[i];
	}
	return send_iov(c, iov, k, deadline);
}

/* Room for buf[pos .. pos+need) and at least READ_CHUNK_MIN bytes to read into. */
static int make_room(ZmtpConn *c, size_t need)
{
	if (c->start > 0 && (c->alloc - c->end < READ_CHUNK_MIN || c->pos + need > c->alloc)) {
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->pos -= c->start;
		c->end -= c->start;
		c->start = 0;
	}
	size_t want = MAX(c->pos + need, c->end + READ_CHUNK_MIN);
	if (want <= c->alloc)
		return 0;
	size_t alloc = MAX(want, MIN(c->alloc * 2, want + ((size_t)1 << 20)));
	uint8_t *b = realloc(c->buf, alloc);
	if (!b)
		return -ENOMEM;
	c->buf = b;
	c->alloc = alloc;
	return 0;
}

/* Read what is there: 0 (got bytes), -EAGAIN, -ECONNRESET at end of stream. */
static int fill(ZmtpConn *c)
{
	for (;;) {
		ssize_t k = read(c->fd, c->buf + c->end, c->alloc - c->end);
		if (k > 0) {
			c->end += (size_t)k;
			return 0;
		}
		if (k == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? -EAGAIN : (errno == EPIPE ? -ECONNRESET : -errno);
	}
}

static int answer_ping(ZmtpConn *c, const uint8_t *ctx, size_t n)
{
	uint8_t pong[2 + 5 + ZMTP_PING_CONTEXT_MAX];
	size_t len = zmtp_pong_write(ctx, n, pong, sizeof(pong));
	struct iovec iov = { .iov_base = pong, .iov_len = len };
	return send_iov(c, &iov, 1, now_monotonic() + USEC_PER_SEC);
}

/*
 * Run the parser until a message is complete (1) or the handshake is done (2).
 */
static int pump(ZmtpConn *c, usec_t deadline)
{
	if (c->broken)
		return -ECONNRESET;
	if (c->delivered) {
		c->start = c->pos;
		c->n_frames = 0;
		c->truncated = false;
		c->delivered = false;
		if (c->start == c->end)
			c->start = c->pos = c->end = 0;
	}
	for (;;) {
		size_t used = 0;
		ZmtpEvent ev;
		int r = zmtp_parse(&c->parser, c->buf + c->pos, c->end - c->pos, &used, &ev);
		if (r < 0)
			return broken(c, r);
		c->pos += used;
		switch (ev.type) {
		case ZMTP_EVENT_READY:
			return 2;
		case ZMTP_EVENT_PING:
			r = answer_ping(c, ev.data, ev.size);
			if (r < 0)
				return r;
			continue;
		case ZMTP_EVENT_FRAME:
			if (c->n_frames < ZMTP_MESSAGE_FRAMES_MAX) {
				c->frame_off[c->n_frames] = (size_t)(ev.data - c->buf) - c->start;
				c->frame_size[c->n_frames] = ev.size;
				c->n_frames++;
			} else
				c->truncated = true;
			if (!ev.more)
				return 1;
			continue;
		case ZMTP_EVENT_NEED_MORE:
			break;
		}
		r = make_room(c, ev.need);
		if (r < 0)
			return broken(c, r);
		r = fill(c);
		if (r == -EAGAIN) {
			r = wait_fd(c, POLLIN, deadline);
			if (r < 0)
				return r; /* -EAGAIN, -ETIMEDOUT: nothing lost, try again later */
			continue;
		}
		if (r < 0)
			return broken(c, r);
	}
}

int zmtp_conn_receive(ZmtpConn *c, usec_t deadline, ZmtpMessage *ret)
{
	int r = pump(c, deadline);
	if (r < 0)
		return r;
	if (r != 1)
		return broken(c, -EPROTO);
	c->delivered = true;
	ret->n = c->n_frames;
	ret->truncated = c->truncated;
	for (size_t i = 0; i < c->n_frames; i++) {
		ret->frames[i].data = c->buf + c->start + c->frame_off[i];
		ret->frames[i].size = c->frame_size[i];
	}
	return 0;
}

int zmtp_conn_connect(const char *path, ZmtpSocketType type, size_t frame_max, size_t message_max,
		      usec_t deadline, ZmtpConn **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int r;

	if (!zmtp_socket_type_to_string(type))
		return -EINVAL;
	if (strscpy(sa.sun_path, sizeof(sa.sun_path), path) < 0)
		return -ENAMETOOLONG;
	_cleanup_(zmtp_conn_freep) ZmtpConn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	zmtp_parser_init(&c->parser, type, frame_max, message_max);

	/* Blocking connect bounded by SO_SNDTIMEO: AF_UNIX waits there while the
	 * listener's backlog is full, and a non-blocking connect could not be resumed. */
	int ms = MAX(ms_until(deadline), 1);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EINPROGRESS)
			return -ETIMEDOUT;
		return -errno;
	}
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;

	uint8_t hello[ZMTP_GREETING_SIZE + 64];
	zmtp_greeting_write(hello);
	size_t n =
	    zmtp_ready_write(type, hello + ZMTP_GREETING_SIZE, sizeof(hello) - ZMTP_GREETING_SIZE);
	if (n == 0)
		return -EINVAL;
	struct iovec iov = { .iov_base = hello, .iov_len = ZMTP_GREETING_SIZE + n };
	r = send_iov(c, &iov, 1, deadline);
	if (r < 0)
		return r;
	r = pump(c, deadline);
	if (r == -EAGAIN)
		r = -ETIMEDOUT;
	if (r < 0)
		return r;
	if (r != 2)
		return -EPROTO;
	*ret = TAKE_PTR(c);
	return 0;
}

ZmtpConn *zmtp_conn_free(ZmtpConn *c)
{
	if (!c)
		return NULL;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
	return NULL;
}

int zmtp_conn_fd(ZmtpConn *c)
{
	return c->fd;
}

bool zmtp_conn_is_broken(ZmtpConn *c)
{
	return c->broken;
}

const char *zmtp_conn_peer_error(ZmtpConn *c)
{
	return c->parser.error;
}
