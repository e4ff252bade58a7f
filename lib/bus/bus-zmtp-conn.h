/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One blocking ZMTP 3.x connection over an AF_UNIX stream socket (an ipc:// endpoint):
 * connect and handshake, send a multipart message, receive the next message. Waiting
 * is bounded by deadlines (CLOCK_MONOTONIC, time-util.h); a deadline of 0 never waits.
 * Single-threaded; one connection per thread.
 *
 * After any error but -EAGAIN and -ETIMEDOUT on receive, the connection is unusable
 * (zmtp_conn_is_broken()): the caller frees it and connects again if it wants.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bus-zmtp.h"
#include "macro.h"
#include "time-util.h"

/* Frames of a message we keep; further frames are received and dropped (truncated). */
#define ZMTP_MESSAGE_FRAMES_MAX 16

typedef struct ZmtpConn ZmtpConn;

typedef struct ZmtpMessage {
	size_t n;
	bool truncated;
	struct {
		const uint8_t *data;
		size_t size;
	} frames[ZMTP_MESSAGE_FRAMES_MAX];
} ZmtpMessage;

/*
 * Connect to the socket at path as `type` and complete the handshake by the deadline.
 *   -ENOENT        no socket file
 *   -ECONNREFUSED  a socket file nobody listens on
 *   -ETIMEDOUT     the listener did not accept or answer in time
 *   -ECONNRESET    the peer closed the connection during the handshake (e.g. a daemon
 *                  refusing our uid)
 *   -EPROTO, -EMSGSIZE, -ECONNABORTED  as zmtp_parse()
 */
int zmtp_conn_connect(const char *path, ZmtpSocketType type, size_t frame_max, size_t message_max,
		      usec_t deadline, ZmtpConn **ret);
ZmtpConn *zmtp_conn_free(ZmtpConn *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ZmtpConn *, zmtp_conn_free);

/* The socket, to poll(2) for POLLIN alongside other fds. */
int zmtp_conn_fd(ZmtpConn *c);
bool zmtp_conn_is_broken(ZmtpConn *c);
/* The peer's ERROR reason after -ECONNABORTED, else "". */
const char *zmtp_conn_peer_error(ZmtpConn *c);

/* Send one message of n frames (1..ZMTP_MESSAGE_FRAMES_MAX). -ETIMEDOUT, -ECONNRESET
 * (the peer is gone), -EINVAL. A message is sent whole or the connection is broken. */
int zmtp_conn_send(ZmtpConn *c, const struct iovec *frames, size_t n, usec_t deadline);

/*
 * Receive the next message: 0 and *ret (its frames point into the connection's buffer,
 * valid until the next receive or free), -EAGAIN (deadline 0 and no whole message
 * yet), -ETIMEDOUT, -ECONNRESET (the peer closed the connection), -EPROTO, -EMSGSIZE,
 * -ECONNABORTED. PINGs are answered on the way.
 */
int zmtp_conn_receive(ZmtpConn *c, usec_t deadline, ZmtpMessage *ret);
