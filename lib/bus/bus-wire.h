/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Protobuf wire-format walks the codec needs beyond protobuf-c's unpacker: finding a
 * field in a frame that failed to decode, and checking every string field of a decoded
 * frame. Bounds-checked, bytes in, no allocation.
 */

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * The last top-level length-delimited field `field` before the end of the frame or the
 * first malformed byte. 0 and a pointer into data, or -ENOENT.
 */
int bus_wire_find_bytes(const void *data, size_t size, uint32_t field, const uint8_t **ret,
			size_t *ret_size);

/*
 * Walk a message of type desc (and its nested messages, following the descriptors):
 * every string field must be valid UTF-8 without NUL bytes. 0; -EILSEQ with
 * *ret_bad_field = the field's name; -EBADMSG if the bytes are not a valid encoding
 * (including groups, which proto3 has not).
 */
int bus_wire_validate_strings(const ProtobufCMessageDescriptor *desc, const void *data, size_t size,
			      const char **ret_bad_field);
