/* SPDX-License-Identifier: MIT */
#include "bus-frames.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "bus-codec.h"
#include "macro.h"
#include "time-util.h"

int bus_frames_recv(void *socket, BusFrames *f, bool *ret_truncated)
{
	bool truncated = false;

	f->n = 0;
	for (;;) {
		zmq_msg_t scratch, *m = f->n < BUS_MESSAGE_FRAMES_MAX ? &f->frames[f->n] : &scratch;
		zmq_msg_init(m);
		/* The first frame may be absent; the others of a started message never are. */
		if (zmq_msg_recv(m, socket, ZMQ_DONTWAIT) < 0) {
			int r = negative_errno();
			zmq_msg_close(m);
			if (f->n == 0 && r == -EAGAIN)
				return 0;
			bus_frames_clear(f);
			return r;
		}
		bool more = zmq_msg_more(m);
		if (m == &scratch) {
			zmq_msg_close(m);
			truncated = true;
		} else
			f->n++;
		if (!more)
			break;
	}
	if (ret_truncated)
		*ret_truncated = truncated;
	return (int)f->n;
}

void bus_frames_clear(BusFrames *f)
{
	for (size_t i = 0; i < f->n; i++)
		zmq_msg_close(&f->frames[i]);
	f->n = 0;
}

void bus_frames_move(BusFrames *dst, BusFrames *src)
{
	bus_frames_take_prefix(dst, src, src->n);
	bus_frames_clear(src);
}

void bus_frames_take_prefix(BusFrames *dst, BusFrames *src, size_t k)
{
	dst->n = 0;
	for (size_t i = 0; i < k && i < src->n; i++) {
		zmq_msg_init(&dst->frames[i]);
		zmq_msg_move(&dst->frames[i], &src->frames[i]);
		dst->n++;
	}
}

bool bus_frames_equal(zmq_msg_t *a, zmq_msg_t *b)
{
	size_t n = zmq_msg_size(a);
	return n == zmq_msg_size(b) && (n == 0 || memcmp(zmq_msg_data(a), zmq_msg_data(b), n) == 0);
}

uint32_t bus_client_tag(void)
{
	uint32_t tag;
	if (getrandom(&tag, sizeof(tag), GRND_NONBLOCK) != (ssize_t)sizeof(tag))
		tag = (uint32_t)getpid() ^ (uint32_t)now_monotonic() ^ (uint32_t)(uintptr_t)&tag;
	return tag;
}

void bus_client_format_id(char buf[static BUS_CLIENT_ID_MAX], uint32_t tag, uint64_t counter)
{
	(void)snprintf(buf, BUS_CLIENT_ID_MAX, "%08" PRIx32 "-%" PRIu64, tag, counter);
}

int bus_client_socket_setup(void *socket, bool immediate)
{
	int zero = 0, one = 1;
	int64_t maxmsg = (int64_t)BUS_TRANSPORT_MAX;

	/* A daemon that is not there is retried 100 ms, 200 ms, … up to every second, not
	 * ten times a second forever (libzmq's default). */
	int ivl = 100, ivl_max = 1000;
	if (zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
	    zmq_setsockopt(socket, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0 ||
	    zmq_setsockopt(socket, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) < 0)
		return negative_errno();
	if (immediate && zmq_setsockopt(socket, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0)
		return negative_errno();
	return 0;
}
