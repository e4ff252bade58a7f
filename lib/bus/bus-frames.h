/* SPDX-License-Identifier: MIT */
#pragma once

/* A received ZeroMQ multipart message with a bounded number of frames. Internal. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* Routing envelope frames we keep: the ROUTER's routing id, broker hops, the delimiter. */
#define BUS_ENVELOPE_FRAMES_MAX 8
#define BUS_MESSAGE_FRAMES_MAX (BUS_ENVELOPE_FRAMES_MAX + 1)

typedef struct BusFrames {
	zmq_msg_t frames[BUS_MESSAGE_FRAMES_MAX];
	size_t n;
} BusFrames;

/*
 * Receive one whole message without waiting: its first BUS_MESSAGE_FRAMES_MAX frames,
 * the rest received and dropped (*ret_truncated = true). Returns the number of frames
 * kept, 0 if nothing was queued, -errno.
 */
int bus_frames_recv(void *socket, BusFrames *f, bool *ret_truncated);
/* Close every frame. */
void bus_frames_clear(BusFrames *f);
/* Move all frames of src (emptied) into dst (must be empty). */
void bus_frames_move(BusFrames *dst, BusFrames *src);
/* Move src's first k frames into dst (must be empty); their slots in src become empty
 * messages, so src's other frames keep their index. */
void bus_frames_take_prefix(BusFrames *dst, BusFrames *src, size_t k);
bool bus_frames_equal(zmq_msg_t *a, zmq_msg_t *b);

/* A client's request_id: "<8 hex digits, random per client>-<counter>". */
#define BUS_CLIENT_ID_MAX 32
uint32_t bus_client_tag(void);
void bus_client_format_id(char buf[static BUS_CLIENT_ID_MAX], uint32_t tag, uint64_t counter);
/* Socket options every client DEALER gets. */
int bus_client_socket_setup(void *socket, bool immediate);
