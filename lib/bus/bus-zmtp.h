/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * ZMTP 3.x (rfc.zeromq.org/spec/23 and /37), the wire protocol of ZeroMQ, for a client
 * that connects to libzmq peers: greeting, the NULL mechanism's READY, frames, commands.
 * Sans-I/O: bytes in, events out; the caller owns the socket (bus-zmtp-conn.c).
 *
 * We announce version 3.0, so a libzmq peer speaks 3.0 to us: subscriptions are
 * messages whose first byte is 1 (subscribe) or 0 (cancel), and it only sends PING when
 * its socket has ZMQ_HEARTBEAT_IVL set (the bus does not). A PING is answered anyway.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZMTP_GREETING_SIZE 64
#define ZMTP_FRAME_HEADER_MAX 9
/* Largest command we accept (READY with the peer's metadata, PING, ERROR). */
#define ZMTP_COMMAND_MAX ((size_t)64 << 10)
/* PING context (rfc 37: at most 16 octets). */
#define ZMTP_PING_CONTEXT_MAX 16

enum {
	ZMTP_FLAG_MORE = 1u << 0,
	ZMTP_FLAG_LONG = 1u << 1,
	ZMTP_FLAG_COMMAND = 1u << 2,
};

typedef enum ZmtpSocketType {
	ZMTP_SOCKET_DEALER,
	ZMTP_SOCKET_SUB,
	_ZMTP_SOCKET_TYPE_MAX,
	_ZMTP_SOCKET_TYPE_INVALID = -22,
} ZmtpSocketType;

const char *zmtp_socket_type_to_string(ZmtpSocketType t);

/* Our greeting: signature, version 3.0, mechanism NULL, as-server 0. */
void zmtp_greeting_write(uint8_t out[static ZMTP_GREETING_SIZE]);

/*
 * Our READY command as a whole frame (header included): Socket-Type, and an empty
 * Identity for DEALER. Returns its length, or 0 if it does not fit in size.
 */
size_t zmtp_ready_write(ZmtpSocketType type, uint8_t *out, size_t size);
/* A PONG frame echoing a PING's context (at most ZMTP_PING_CONTEXT_MAX bytes). */
size_t zmtp_pong_write(const uint8_t *context, size_t n, uint8_t *out, size_t size);
/* The header of a frame of `size` bytes with the flags (MORE/COMMAND; LONG is chosen
 * here). Returns its length: 2 or 9. */
size_t zmtp_frame_header_write(uint8_t flags, uint64_t size,
			       uint8_t out[static ZMTP_FRAME_HEADER_MAX]);

typedef enum ZmtpEventType {
	ZMTP_EVENT_NEED_MORE, /* nothing complete yet: have `need` bytes from the offset */
	ZMTP_EVENT_READY,     /* the peer's greeting and READY checked: messages may flow */
	ZMTP_EVENT_FRAME,     /* a message frame: data, size, more */
	ZMTP_EVENT_PING,      /* answer with zmtp_pong_write(data, size) */
} ZmtpEventType;

typedef struct ZmtpEvent {
	ZmtpEventType type;
	const uint8_t *data;
	size_t size;
	bool more;
	size_t need;
} ZmtpEvent;

typedef enum ZmtpParserState {
	ZMTP_PARSER_GREETING,
	ZMTP_PARSER_HANDSHAKE,
	ZMTP_PARSER_MESSAGES,
	ZMTP_PARSER_FAILED,
} ZmtpParserState;

typedef struct ZmtpParser {
	ZmtpSocketType type;
	ZmtpParserState state;
	uint8_t peer_minor;
	size_t frame_max;   /* per message frame */
	size_t message_max; /* sum of a message's frames */
	size_t message_size;
	/* The reason of the peer's ERROR command, for humans (NUL-terminated). */
	char error[64];
} ZmtpParser;

void zmtp_parser_init(ZmtpParser *p, ZmtpSocketType type, size_t frame_max, size_t message_max);

/*
 * Look at buf[0..n), the bytes the peer sent from the last consumed position on, and
 * report the next event, setting *ret_consumed to the bytes it used (then the next call
 * starts after them). Commands that need nothing from the caller (PONG, a stray READY's
 * successors, unknown commands) are consumed silently. Data pointers point into buf.
 *   -EPROTO    not ZMTP 3.x, another mechanism, reserved flag bits, a malformed or
 *              misplaced command, a peer socket type that does not match ours
 *   -EMSGSIZE  a frame, message or command over the limits
 *   -ECONNABORTED  the peer sent ERROR (reason in p->error)
 * After an error the parser stays failed.
 */
int zmtp_parse(ZmtpParser *p, const uint8_t *buf, size_t n, size_t *ret_consumed, ZmtpEvent *ret);

/* A command frame's body: name, then data. -EPROTO if malformed. */
int zmtp_command_split(const uint8_t *body, size_t size, const uint8_t **ret_name,
		       size_t *ret_name_size, const uint8_t **ret_data, size_t *ret_data_size);
/*
 * Find a property in READY metadata (name-size, name, 4-byte value-size, value)*.
 * The whole list is checked first: -EPROTO if malformed, -ENOENT if absent. Names
 * compare case-insensitively (rfc 23).
 */
int zmtp_metadata_find(const uint8_t *data, size_t size, const char *name,
		       const uint8_t **ret_value, size_t *ret_size);
