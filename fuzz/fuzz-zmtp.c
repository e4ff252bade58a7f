/* SPDX-License-Identifier: MIT */
/*
 * The ZMTP parser (lib/bus/bus-zmtp.c) on arbitrary bytes, as localctl reads a daemon's
 * socket. Input: one byte choosing our socket type and the chunking, then the stream.
 * Invariants checked (abort() on violation):
 *   - every event lies inside the bytes given; NEED_MORE asks for more than was there;
 *     frames respect the frame and message limits;
 *   - the stream fed in small chunks yields the same events (types, sizes, bytes) and
 *     the same final error as the stream given whole;
 *   - a PING's answer parses back as a PONG command carrying its context.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus-zmtp.h"
#include "macro.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

#define FRAME_MAX ((size_t)4096)
#define MESSAGE_MAX ((size_t)8192)

typedef struct Trace {
	uint64_t hash;
	size_t events;
	int error;
} Trace;

static void mix(Trace *t, uint64_t v)
{
	t->hash = (t->hash ^ v) * 0x100000001b3ull;
}

static void check_pong(const ZmtpEvent *ev)
{
	uint8_t out[64];
	size_t n = zmtp_pong_write(ev->data, ev->size, out, sizeof(out));
	CHECK(n > 2 && out[0] == ZMTP_FLAG_COMMAND && out[1] == n - 2);
	const uint8_t *name, *data;
	size_t nl, dl;
	CHECK(zmtp_command_split(out + 2, n - 2, &name, &nl, &data, &dl) == 0);
	CHECK(nl == 4 && memcmp(name, "PONG", 4) == 0);
	CHECK(dl == ev->size && (dl == 0 || memcmp(data, ev->data, dl) == 0));
}

/* Parse data[0..size) delivered in chunks of the given sizes (0: all at once). */
static Trace run(ZmtpSocketType type, const uint8_t *data, size_t size, unsigned chunk)
{
	ZmtpParser p;
	Trace t = { .hash = 0xcbf29ce484222325ull };
	size_t start = 0, avail = chunk ? 0 : size, message = 0;
	zmtp_parser_init(&p, type, FRAME_MAX, MESSAGE_MAX);
	for (;;) {
		size_t used = 0;
		ZmtpEvent ev;
		int r = zmtp_parse(&p, data + start, avail - start, &used, &ev);
		if (r < 0) {
			CHECK(p.state == ZMTP_PARSER_FAILED);
			CHECK(r == -EPROTO || r == -EMSGSIZE || r == -ECONNABORTED);
			t.error = r;
			/* Failed stays failed. */
			CHECK(zmtp_parse(&p, data + start, avail - start, &used, &ev) == -EPROTO);
			return t;
		}
		CHECK(used <= avail - start);
		if (ev.type == ZMTP_EVENT_NEED_MORE) {
			CHECK(ev.need > avail - start - used);
			CHECK(ev.need <= ZMTP_FRAME_HEADER_MAX + MAX(FRAME_MAX, ZMTP_COMMAND_MAX) ||
			      ev.need == ZMTP_GREETING_SIZE);
			start += used;
			if (avail == size)
				return t;
			avail = MIN(size, avail + chunk);
			continue;
		}
		CHECK(used > 0);
		if (ev.size)
			CHECK(ev.data >= data + start && ev.data + ev.size <= data + start + used);
		t.events++;
		mix(&t, ev.type);
		mix(&t, ev.size);
		mix(&t, ev.more);
		for (size_t i = 0; i < ev.size; i++)
			mix(&t, ev.data[i]);
		if (ev.type == ZMTP_EVENT_FRAME) {
			CHECK(ev.size <= FRAME_MAX);
			message += ev.size;
			CHECK(message <= MESSAGE_MAX);
			if (!ev.more)
				message = 0;
		} else if (ev.type == ZMTP_EVENT_PING) {
			CHECK(ev.size <= ZMTP_PING_CONTEXT_MAX);
			check_pong(&ev);
		}
		start += used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	ZmtpSocketType type = data[0] & 1 ? ZMTP_SOCKET_SUB : ZMTP_SOCKET_DEALER;
	unsigned chunk = 1u + (data[0] >> 1);
	Trace whole = run(type, data + 1, size - 1, 0);
	Trace split = run(type, data + 1, size - 1, chunk);
	CHECK(whole.hash == split.hash && whole.events == split.events);
	CHECK(whole.error == split.error);
	return 0;
}
