/* SPDX-License-Identifier: MIT */
#include "bus-zmtp.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "macro.h"

static const char *const socket_type_names[_ZMTP_SOCKET_TYPE_MAX] = {
	[ZMTP_SOCKET_DEALER] = "DEALER",
	[ZMTP_SOCKET_SUB] = "SUB",
};

const char *zmtp_socket_type_to_string(ZmtpSocketType t)
{
	return t >= 0 && t < _ZMTP_SOCKET_TYPE_MAX ? socket_type_names[t] : NULL;
}

/* The peers each of our types may talk to (rfc 28/29). */
static bool peer_type_ok(ZmtpSocketType t, const uint8_t *v, size_t n)
{
	static const char *const dealer_peers[] = { "ROUTER", "DEALER", "REP" };
	static const char *const sub_peers[] = { "PUB", "XPUB" };
	const char *const *list = t == ZMTP_SOCKET_DEALER ? dealer_peers : sub_peers;
	size_t k = t == ZMTP_SOCKET_DEALER ? ELEMENTSOF(dealer_peers) : ELEMENTSOF(sub_peers);
	for (size_t i = 0; i < k; i++)
		if (strlen(list[i]) == n && memcmp(list[i], v, n) == 0)
			return true;
	return false;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

void zmtp_greeting_write(uint8_t out[static ZMTP_GREETING_SIZE])
{
	memset(out, 0, ZMTP_GREETING_SIZE);
	out[0] = 0xff; /* signature: 0xff, 8 bytes of padding, 0x7f */
	out[9] = 0x7f;
	out[10] = 3; /* version 3.0 */
	out[11] = 0;
	memcpy(out + 12, "NULL", 4); /* mechanism, 20 bytes NUL-padded */
	out[32] = 0;                 /* as-server: no (NULL ignores it) */
}

size_t zmtp_frame_header_write(uint8_t flags, uint64_t size,
			       uint8_t out[static ZMTP_FRAME_HEADER_MAX])
{
	flags &= ZMTP_FLAG_MORE | ZMTP_FLAG_COMMAND;
	if (size <= UINT8_MAX) {
		out[0] = flags;
		out[1] = (uint8_t)size;
		return 2;
	}
	out[0] = flags | ZMTP_FLAG_LONG;
	put_be32(out + 1, (uint32_t)(size >> 32));
	put_be32(out + 5, (uint32_t)size);
	return 9;
}

/* Append a property (name-size, name, value-size, value) if it fits. */
static bool put_property(uint8_t *out, size_t size, size_t *pos, const char *name,
			 const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (nl > UINT8_MAX || size - *pos < 1 + nl + 4 + vl)
		return false;
	out[(*pos)++] = (uint8_t)nl;
	memcpy(out + *pos, name, nl);
	*pos += nl;
	put_be32(out + *pos, (uint32_t)vl);
	*pos += 4;
	memcpy(out + *pos, value, vl);
	*pos += vl;
	return true;
}

size_t zmtp_ready_write(ZmtpSocketType type, uint8_t *out, size_t size)
{
	const char *st = zmtp_socket_type_to_string(type);
	uint8_t body[64];
	size_t n = 0;
	if (!st)
		return 0;
	body[n++] = 5;
	memcpy(body + n, "READY", 5);
	n += 5;
	if (!put_property(body, sizeof(body), &n, "Socket-Type", st))
		return 0;
	/* An empty identity: the ROUTER picks a routing id for us. */
	if (type == ZMTP_SOCKET_DEALER && !put_property(body, sizeof(body), &n, "Identity", ""))
		return 0;
	uint8_t hdr[ZMTP_FRAME_HEADER_MAX];
	size_t h = zmtp_frame_header_write(ZMTP_FLAG_COMMAND, n, hdr);
	if (size < h + n)
		return 0;
	memcpy(out, hdr, h);
	memcpy(out + h, body, n);
	return h + n;
}

size_t zmtp_pong_write(const uint8_t *context, size_t n, uint8_t *out, size_t size)
{
	n = MIN(n, (size_t)ZMTP_PING_CONTEXT_MAX);
	size_t body = 1 + 4 + n;
	if (size < 2 + body)
		return 0;
	size_t h = zmtp_frame_header_write(ZMTP_FLAG_COMMAND, body, out);
	out[h] = 4;
	memcpy(out + h + 1, "PONG", 4);
	if (n)
		memcpy(out + h + 5, context, n);
	return h + body;
}

int zmtp_command_split(const uint8_t *body, size_t size, const uint8_t **ret_name,
		       size_t *ret_name_size, const uint8_t **ret_data, size_t *ret_data_size)
{
	if (size < 1 || body[0] == 0 || (size_t)body[0] + 1 > size)
		return -EPROTO;
	*ret_name = body + 1;
	*ret_name_size = body[0];
	*ret_data = body + 1 + body[0];
	*ret_data_size = size - 1 - body[0];
	return 0;
}

int zmtp_metadata_find(const uint8_t *data, size_t size, const char *name,
		       const uint8_t **ret_value, size_t *ret_size)
{
	size_t want = strlen(name);
	const uint8_t *found = NULL;
	size_t found_size = 0;
	for (size_t i = 0; i < size;) {
		size_t nl = data[i];
		if (nl == 0 || size - i - 1 < nl + 4)
			return -EPROTO;
		const uint8_t *n = data + i + 1;
		uint32_t vl = get_be32(n + nl);
		if (size - i - 1 - nl - 4 < vl)
			return -EPROTO;
		if (!found && nl == want && strncasecmp((const char *)n, name, nl) == 0) {
			found = n + nl + 4;
			found_size = vl;
		}
		i += 1 + nl + 4 + vl;
	}
	if (!found)
		return -ENOENT;
	*ret_value = found;
	*ret_size = found_size;
	return 0;
}

void zmtp_parser_init(ZmtpParser *p, ZmtpSocketType type, size_t frame_max, size_t message_max)
{
	*p = (ZmtpParser){ .type = type, .frame_max = frame_max, .message_max = message_max };
}

static int fail(ZmtpParser *p, int r)
{
	p->state = ZMTP_PARSER_FAILED;
	return r;
}

/* Check the part of the peer's greeting that has arrived. 0: complete, 1: need more. */
static int check_greeting(ZmtpParser *p, const uint8_t *b, size_t n)
{
	static const uint8_t null_mech[20] = "NULL";
	if (n >= 1 && b[0] != 0xff)
		return -EPROTO; /* ZMTP 1.0 without a signature, or not ZMTP */
	if (n >= 10 && !(b[9] & 1))
		return -EPROTO; /* ZMTP 1.0 */
	if (n >= 11 && b[10] < 3)
		return -EPROTO; /* ZMTP 2.0 */
	if (n >= 32 && memcmp(b + 12, null_mech, sizeof(null_mech)) != 0)
		return -EPROTO;
	if (n < ZMTP_GREETING_SIZE)
		return 1;
	p->peer_minor = b[11];
	return 0;
}

static void copy_reason(ZmtpParser *p, const uint8_t *data, size_t size)
{
	size_t n = size >= 1 ? MIN((size_t)data[0], size - 1) : 0;
	n = MIN(n, sizeof(p->error) - 1);
	for (size_t i = 0; i < n; i++)
		p->error[i] = data[1 + i] >= 0x20 && data[1 + i] < 0x7f ? (char)data[1 + i] : '?';
	p->error[n] = 0;
}

static bool name_is(const uint8_t *name, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(name, s, n) == 0;
}

/* A whole command frame's body. 1: an event was filled in, 0: consumed silently. */
static int handle_command(ZmtpParser *p, const uint8_t *body, size_t size, ZmtpEvent *ev)
{
	const uint8_t *name, *data;
	size_t nl, dl;
	if (zmtp_command_split(body, size, &name, &nl, &data, &dl) < 0)
		return -EPROTO;
	if (name_is(name, nl, "ERROR")) {
		copy_reason(p, data, dl);
		return -ECONNABORTED;
	}
	if (p->state == ZMTP_PARSER_HANDSHAKE) {
		const uint8_t *v;
		size_t vl;
		if (!name_is(name, nl, "READY"))
			return -EPROTO;
		if (zmtp_metadata_find(data, dl, "Socket-Type", &v, &vl) < 0 ||
		    !peer_type_ok(p->type, v, vl))
			return -EPROTO;
		p->state = ZMTP_PARSER_MESSAGES;
		ev->type = ZMTP_EVENT_READY;
		return 1;
	}
	if (name_is(name, nl, "READY"))
		return -EPROTO;
	if (name_is(name, nl, "PING")) {
		if (dl < 2 || dl - 2 > ZMTP_PING_CONTEXT_MAX)
			return -EPROTO;
		ev->type = ZMTP_EVENT_PING;
		ev->data = data + 2;
		ev->size = dl - 2;
		return 1;
	}
	/* PONG (we never ping), SUBSCRIBE/CANCEL (we publish nothing), newer commands. */
	return 0;
}

int zmtp_parse(ZmtpParser *p, const uint8_t *buf, size_t n, size_t *ret_consumed, ZmtpEvent *ret)
{
	size_t off = 0;
	int r;

	*ret_consumed = 0;
	*ret = (ZmtpEvent){ .type = ZMTP_EVENT_NEED_MORE };
	if (p->state == ZMTP_PARSER_FAILED)
		return -EPROTO;
	for (;;) {
		if (p->state == ZMTP_PARSER_GREETING) {
			r = check_greeting(p, buf, n);
			if (r < 0)
				return fail(p, r);
			if (r > 0) {
				ret->need = ZMTP_GREETING_SIZE;
				return 0;
			}
			off = ZMTP_GREETING_SIZE;
			p->state = ZMTP_PARSER_HANDSHAKE;
		}

		const uint8_t *h = buf + off;
		size_t avail = n - off;
		*ret_consumed = off;
		if (avail < 2) {
			ret->need = 2;
			return 0;
		}
		uint8_t flags = h[0];
		if (flags & ~(ZMTP_FLAG_MORE | ZMTP_FLAG_LONG | ZMTP_FLAG_COMMAND))
			return fail(p, -EPROTO);
		bool command = flags & ZMTP_FLAG_COMMAND, more = flags & ZMTP_FLAG_MORE;
		size_t hl = flags & ZMTP_FLAG_LONG ? 9 : 2;
		if (avail < hl) {
			ret->need = hl;
			return 0;
		}
		uint64_t size = hl == 9 ? get_be64(h + 1) : h[1];
		if (command) {
			if (more)
				return fail(p, -EPROTO);
			if (size > ZMTP_COMMAND_MAX)
				return fail(p, -EMSGSIZE);
		} else {
			if (p->state != ZMTP_PARSER_MESSAGES)
				return fail(p, -EPROTO);
			if (size > p->frame_max || size > p->message_max - p->message_size)
				return fail(p, -EMSGSIZE);
		}
		if (avail - hl < size) {
			ret->need = hl + (size_t)size;
			return 0;
		}
		const uint8_t *body = h + hl;
		off += hl + (size_t)size;
		if (!command) {
			p->message_size = more ? p->message_size + (size_t)size : 0;
			*ret_consumed = off;
			*ret = (ZmtpEvent){ .type = ZMTP_EVENT_FRAME,
					    .data = body,
					    .size = (size_t)size,
					    .more = more };
			return 0;
		}
		r = handle_command(p, body, (size_t)size, ret);
		if (r < 0)
			return fail(p, r);
		if (r > 0) {
			*ret_consumed = off;
			return 0;
		}
	}
}
