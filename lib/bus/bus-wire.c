/* SPDX-License-Identifier: MIT */
#include "bus-wire.h"

#include <errno.h>
#include <string.h>

#include "strutil.h"

/* Deep enough for any message of our schema (which has no recursive types). */
#define WIRE_DEPTH_MAX 32

enum {
	WIRE_VARINT = 0,
	WIRE_FIXED64 = 1,
	WIRE_LEN = 2,
	WIRE_GROUP_START = 3,
	WIRE_GROUP_END = 4,
	WIRE_FIXED32 = 5,
};

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -EBADMSG;
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

/*
 * Read one field's key and, for length-delimited fields, its payload bounds; skip the
 * others. Leaves *p after the field.
 */
static int next_field(const uint8_t **p, const uint8_t *end, uint32_t *ret_field,
		      unsigned *ret_type, const uint8_t **ret_data, size_t *ret_size)
{
	uint64_t key, len;
	int r = read_varint(p, end, &key);
	if (r < 0)
		return r;
	uint64_t field = key >> 3;
	unsigned type = key & 7;
	if (field == 0 || field > 536870911u)
		return -EBADMSG;

	switch (type) {
	case WIRE_VARINT:
		r = read_varint(p, end, &len);
		if (r < 0)
			return r;
		break;
	case WIRE_FIXED64:
		if (end - *p < 8)
			return -EBADMSG;
		*p += 8;
		break;
	case WIRE_FIXED32:
		if (end - *p < 4)
			return -EBADMSG;
		*p += 4;
		break;
	case WIRE_LEN:
		r = read_varint(p, end, &len);
		if (r < 0)
			return r;
		if (len > (uint64_t)(end - *p))
			return -EBADMSG;
		*ret_data = *p;
		*ret_size = (size_t)len;
		*p += len;
		break;
	default:
		return -EBADMSG;
	}
	*ret_field = (uint32_t)field;
	*ret_type = type;
	return 0;
}

int bus_wire_find_bytes(const void *data, size_t size, uint32_t field, const uint8_t **ret,
			size_t *ret_size)
{
	const uint8_t *p = data, *end = p + size, *found = NULL;
	size_t found_size = 0;

	if (!data)
		return -ENOENT;
	while (p < end) {
		uint32_t f;
		unsigned type;
		const uint8_t *d = NULL;
		size_t n = 0;
		if (next_field(&p, end, &f, &type, &d, &n) < 0)
			break;
		if (f == field && type == WIRE_LEN) {
			found = d;
			found_size = n;
		}
	}
	if (!found)
		return -ENOENT;
	*ret = found;
	*ret_size = found_size;
	return 0;
}

static int validate(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
		    unsigned depth, const char **ret_bad_field)
{
	if (depth > WIRE_DEPTH_MAX)
		return -EBADMSG;
	while (p < end) {
		uint32_t f;
		unsigned type;
		const uint8_t *d = NULL;
		size_t n = 0;
		int r = next_field(&p, end, &f, &type, &d, &n);
		if (r < 0)
			return r;
		if (type != WIRE_LEN)
			continue;
		const ProtobufCFieldDescriptor *fd =
		    protobuf_c_message_descriptor_get_field(desc, f);
		if (!fd)
			continue; /* unknown field: kept as bytes, never read as a string */
		if (fd->type == PROTOBUF_C_TYPE_STRING) {
			if (memchr(d, 0, n) || !utf8_is_valid((const char *)d, n)) {
				*ret_bad_field = fd->name;
				return -EILSEQ;
			}
		} else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			r = validate(fd->descriptor, d, d + n, depth + 1, ret_bad_field);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int bus_wire_validate_strings(const ProtobufCMessageDescriptor *desc, const void *data, size_t size,
			      const char **ret_bad_field)
{
	const uint8_t *p = data;
	if (!p)
		return size == 0 ? 0 : -EBADMSG;
	return validate(desc, p, p + size, 0, ret_bad_field);
}
