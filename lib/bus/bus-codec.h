/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The bus envelope codec: bytes in, messages or an Error out. No I/O, no logging.
 * Everything a peer sends goes through here before any handler sees it, so every
 * decoder checks the size limit, the protobuf structure, the request_id, the api_version
 * and that every string field is UTF-8 without NUL bytes (proto3 strings must be UTF-8;
 * a reply that echoes a bad one would be unreadable to other languages' clients).
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#include "locald/v1/envelope.pb-c.h"

typedef Locald__V1__Request BusRequest;
typedef Locald__V1__Reply BusReply;
typedef Locald__V1__Event BusEvent;
typedef Locald__V1__Error BusErrorMessage;
typedef Locald__V1__Error__Code BusErrorCode;
typedef Locald__V1__Request__CallCase BusCallCase;

#define BUS_API_VERSION 1u

/* Largest request, reply or event body the codec accepts or produces. */
#define BUS_FRAME_MAX ((size_t)4 << 20)
/*
 * ZMQ_MAXMSGSIZE of every bus socket: a peer sending a bigger frame is disconnected by
 * libzmq before we see it (no reply is possible then). Between BUS_FRAME_MAX and this,
 * the frame is received and answered INVALID_ARGUMENT.
 */
#define BUS_TRANSPORT_MAX ((size_t)16 << 20)
#define BUS_REQUEST_ID_MAX 128
/* Bytes of Error.message / Error.hint we produce (longer text is cut on a UTF-8 boundary). */
#define BUS_ERROR_TEXT_MAX 256
/* An encoded error Reply always fits in this. */
#define BUS_ERROR_REPLY_MAX 1024
/* Topic: 1..255 bytes. */
#define BUS_TOPIC_MAX 255
#define BUS_FAMILY_MAX 64

/* An error on its way to the wire. Fixed size: making one never allocates. */
typedef struct BusError {
	BusErrorCode code;
	/* The request_id the error answers, if it could be read from the frame. */
	char request_id[BUS_REQUEST_ID_MAX + 1];
	char message[BUS_ERROR_TEXT_MAX];
	char hint[BUS_ERROR_TEXT_MAX];
} BusError;

/* Set code, hint (may be NULL) and a formatted message; request_id is left alone. */
void bus_error_set(BusError *e, BusErrorCode code, const char *hint, const char *fmt, ...)
    _printf_(4, 5);
void bus_error_setv(BusError *e, BusErrorCode code, const char *hint, const char *fmt, va_list ap)
    _printf_(4, 0);
/* "INVALID_ARGUMENT", ...; "CODE_UNSPECIFIED" for unknown values. */
const char *bus_error_code_to_string(BusErrorCode code);
/* -EINVAL → INVALID_ARGUMENT, -ENOENT → NOT_FOUND, ... ; anything else → INTERNAL. */
BusErrorCode bus_error_code_from_errno(int error);
/* The reverse, for clients: NOT_FOUND → -ENOENT, ... */
int bus_error_code_to_errno(BusErrorCode code);

/* Printable ASCII (0x20-0x7e), 1..BUS_REQUEST_ID_MAX bytes. */
bool bus_request_id_is_valid(const char *id);

/*
 * Decode one request frame. On success returns 0 and the request (free with
 * bus_request_free()). Otherwise fills *ret_error with the error to send back (its
 * request_id recovered from the frame when possible) and returns:
 *   -E2BIG            frame larger than BUS_FRAME_MAX            INVALID_ARGUMENT
 *   -EBADMSG          not a locald.v1.Request                      INVALID_ARGUMENT
 *   -EINVAL           bad request_id, non-UTF-8 string, no call    INVALID_ARGUMENT
 *   -EPROTONOSUPPORT  api_version is not BUS_API_VERSION          FAILED_PRECONDITION
 *   -EOPNOTSUPP       a call this build does not know             UNIMPLEMENTED
 *   -ENOMEM                                                       UNAVAILABLE
 */
int bus_request_decode(const void *data, size_t size, BusRequest **ret, BusError *ret_error);
BusRequest *bus_request_free(BusRequest *request);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusRequest *, bus_request_free);

/* Same checks for the other direction (clients). A reply's result may be unset
 * (a result newer than this build): that is not an error. */
int bus_reply_decode(const void *data, size_t size, BusReply **ret, BusError *ret_error);
BusReply *bus_reply_free(BusReply *reply);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusReply *, bus_reply_free);

/* An event's two frames. The Event's topic must equal the topic frame. */
int bus_event_decode(const void *topic, size_t topic_size, const void *data, size_t size,
		     BusEvent **ret, BusError *ret_error);
BusEvent *bus_event_free(BusEvent *event);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusEvent *, bus_event_free);

/*
 * Encode into a malloc()ed buffer. -E2BIG if larger than BUS_FRAME_MAX, -ENOMEM.
 * bus_request_encode() checks request_id and api_version like the decoder (-EINVAL).
 */
int bus_request_encode(const BusRequest *request, void **ret, size_t *ret_size);
int bus_reply_encode(const BusReply *reply, void **ret, size_t *ret_size);
int bus_event_encode(const BusEvent *event, void **ret, size_t *ret_size);

/* Encode Reply{request_id, error} into buf (BUS_ERROR_REPLY_MAX bytes). Never fails:
 * an invalid request_id is sent empty. Returns the length. */
size_t bus_error_reply_encode(const char *request_id, const BusError *error, uint8_t *buf);

/* The reply's error, or NULL if it carries a result. */
const BusErrorMessage *bus_reply_get_error(const BusReply *reply);

/*
 * The topic family an event's seq counts in: the topic's first component, or its first
 * two for topics under "service." and "proxy." ("service.state.shop.web" →
 * "service.state", "log.shop.web" → "log"). Returns the family's length, -EINVAL for an
 * invalid topic, -ENOBUFS if it does not fit in size bytes (with the NUL).
 */
int bus_topic_family(const char *topic, char *ret, size_t size);
/* 1..BUS_TOPIC_MAX bytes of UTF-8 without spaces or control characters; dot-separated
 * non-empty components. */
bool bus_topic_is_valid(const char *topic, size_t size);

/* Name of a call ("apply_project"), NULL if this build does not know it. */
const char *bus_call_case_to_string(BusCallCase call);

/*
 * Allocation-failure injection for tests: the codec's n-th allocation from now fails
 * (and every one after it, until reset with -1). Per thread.
 */
void bus_codec_fail_alloc_after(int n);
