/* SPDX-License-Identifier: MIT */
#include "bus-codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bus-wire.h"
#include "strutil.h"

/* ---- Allocation (with failure injection for tests) ---- */

static __thread int fail_alloc_after = -1;

void bus_codec_fail_alloc_after(int n)
{
	fail_alloc_after = n;
}

typedef struct AllocState {
	bool failed;
} AllocState;

static void *codec_malloc(size_t size)
{
	if (fail_alloc_after == 0)
		return NULL;
	if (fail_alloc_after > 0)
		fail_alloc_after--;
	return malloc(size ? size : 1);
}

static void *alloc_cb(void *data, size_t size)
{
	AllocState *st = data;
	void *p = codec_malloc(size);
	if (!p && st)
		st->failed = true;
	return p;
}

static void free_cb(void *data, void *p)
{
	(void)data;
	free(p);
}

#define ALLOCATOR(st)                                                                              \
	((ProtobufCAllocator){ .alloc = alloc_cb, .free = free_cb, .allocator_data = (st) })

/* ---- Errors ---- */

/* Copy src into dst (size bytes with NUL): invalid UTF-8 bytes and control characters
 * become '?' / ' ', and a multi-byte character never gets cut in half. */
static void text_copy(char *dst, size_t size, const char *src)
{
	size_t o = 0, n = strlen(src);

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)src[i];
		size_t len = c < 0x80             ? 1
			     : (c & 0xe0) == 0xc0 ? 2
			     : (c & 0xf0) == 0xe0 ? 3
			     : (c & 0xf8) == 0xf0 ? 4
						  : 0;
		if (len == 0 || i + len > n || !utf8_is_valid(src + i, len)) {
			if (o + 1 >= size)
				break;
			dst[o++] = '?';
			i++;
			continue;
		}
		if (o + len >= size)
			break;
		if (len == 1 && (c < 0x20 || c == 0x7f))
			dst[o] = ' ';
		else
			memcpy(dst + o, src + i, len);
		o += len;
		i += len;
	}
	dst[o] = 0;
}

void bus_error_setv(BusError *e, BusErrorCode code, const char *hint, const char *fmt, va_list ap)
{
	char buf[BUS_ERROR_TEXT_MAX * 2];

	e->code = code;
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	text_copy(e->message, sizeof(e->message), buf);
	text_copy(e->hint, sizeof(e->hint), hint ? hint : "");
}

void bus_error_set(BusError *e, BusErrorCode code, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bus_error_setv(e, code, hint, fmt, ap);
	va_end(ap);
}

const char *bus_error_code_to_string(BusErrorCode code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&locald__v1__error__code__descriptor, (int)code);
	return v ? v->name : "CODE_UNSPECIFIED";
}

BusErrorCode bus_error_code_from_errno(int error)
{
	switch (error < 0 ? -error : error) {
	case EINVAL:
	case EBADMSG:
	case E2BIG:
	case ERANGE:
	case EDOM:
	case ENAMETOOLONG:
	case EILSEQ:
		return LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT;
	case ENOENT:
	case ESRCH:
	case ENXIO:
		return LOCALD__V1__ERROR__CODE__NOT_FOUND;
	case EEXIST:
	case EADDRINUSE:
		return LOCALD__V1__ERROR__CODE__ALREADY_EXISTS;
	case EBUSY:
	case EALREADY:
	case ESTALE:
	case EPROTONOSUPPORT:
	case ENOTEMPTY:
		return LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION;
	case EAGAIN:
	case ENOMEM:
	case ENOBUFS:
	case ETIMEDOUT:
	case ECONNREFUSED:
	case ESHUTDOWN:
	case ECANCELED:
		return LOCALD__V1__ERROR__CODE__UNAVAILABLE;
	case EPERM:
	case EACCES:
		return LOCALD__V1__ERROR__CODE__PERMISSION_DENIED;
	case EOPNOTSUPP:
	case ENOSYS:
		return LOCALD__V1__ERROR__CODE__UNIMPLEMENTED;
	default:
		return LOCALD__V1__ERROR__CODE__INTERNAL;
	}
}

int bus_error_code_to_errno(BusErrorCode code)
{
	switch (code) {
	case LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT:
		return -EINVAL;
	case LOCALD__V1__ERROR__CODE__NOT_FOUND:
		return -ENOENT;
	case LOCALD__V1__ERROR__CODE__ALREADY_EXISTS:
		return -EEXIST;
	case LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION:
		return -EBUSY;
	case LOCALD__V1__ERROR__CODE__UNAVAILABLE:
		return -EAGAIN;
	case LOCALD__V1__ERROR__CODE__PERMISSION_DENIED:
		return -EACCES;
	case LOCALD__V1__ERROR__CODE__UNIMPLEMENTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

bool bus_request_id_is_valid(const char *id)
{
	size_t n = 0;
	if (!id)
		return false;
	for (; id[n]; n++)
		if ((unsigned char)id[n] < 0x20 || (unsigned char)id[n] > 0x7e ||
		    n >= BUS_REQUEST_ID_MAX)
			return false;
	return n > 0;
}

/* Best effort: the request_id of a frame we could not decode, so the error reply can be
 * matched by the client. Only a valid id is used. */
static void recover_request_id(const void *data, size_t size, uint32_t field, BusError *e)
{
	const uint8_t *p;
	size_t n;

	e->request_id[0] = 0;
	if (field == 0 || bus_wire_find_bytes(data, size, field, &p, &n) < 0 || n == 0 ||
	    n > BUS_REQUEST_ID_MAX)
		return;
	memcpy(e->request_id, p, n);
	e->request_id[n] = 0;
	if (strlen(e->request_id) != n || !bus_request_id_is_valid(e->request_id))
		e->request_id[0] = 0;
}

/* ---- Decoding ---- */

static const char hint_framing[] =
    "send one serialized locald.v1.Request per frame (see proto/README.md)";

static int check_size(size_t size, const char *what, uint32_t id_field, const void *data,
		      BusError *e)
{
	if (size <= BUS_FRAME_MAX)
		return 0;
	recover_request_id(data, size, id_field, e);
	bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
		      "split the data over several calls, or ask for less (e.g. Logs.limit)",
		      "%s frame of %zu bytes exceeds the limit of %zu bytes", what, size,
		      BUS_FRAME_MAX);
	return -E2BIG;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *desc, const void *data,
				size_t size, const char *what, uint32_t id_field, BusError *e,
				int *ret_error)
{
	AllocState st = {};
	ProtobufCAllocator a = ALLOCATOR(&st);
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a, size, data);
	if (m)
		return m;
	recover_request_id(data, size, id_field, e);
	if (st.failed) {
		bus_error_set(e, LOCALD__V1__ERROR__CODE__UNAVAILABLE, "retry later",
			      "out of memory decoding the %s", what);
		*ret_error = -ENOMEM;
	} else {
		bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, hint_framing,
			      "malformed frame: not a locald.v1.%s protobuf", what);
		*ret_error = -EBADMSG;
	}
	return NULL;
}

static void message_free(ProtobufCMessage *m)
{
	ProtobufCAllocator a = ALLOCATOR(NULL);
	if (m)
		protobuf_c_message_free_unpacked(m, &a);
}

/* Every string field (at any depth) UTF-8 without NUL. */
static int check_strings(const ProtobufCMessageDescriptor *desc, const void *data, size_t size,
			 const char *what, BusError *e)
{
	const char *bad = NULL;
	int r = bus_wire_validate_strings(desc, data, size, &bad);
	if (r == -EILSEQ)
		bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
			      "strings must be UTF-8 without NUL bytes",
			      "field '%s' of the %s is not valid UTF-8", bad ? bad : "?", what);
	else if (r < 0)
		bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, hint_framing,
			      "malformed frame: not a locald.v1.%s protobuf", what);
	return r < 0 ? (r == -EILSEQ ? -EINVAL : -EBADMSG) : 0;
}

int bus_request_decode(const void *data, size_t size, BusRequest **ret, BusError *ret_error)
{
	BusError *e = ret_error;
	int r;

	e->request_id[0] = 0;
	r = check_size(size, "request", 2, data, e);
	if (r < 0)
		return r;
	BusRequest *req =
	    (BusRequest *)unpack(&locald__v1__request__descriptor, data, size, "Request", 2, e, &r);
	if (!req)
		return r;

	if (!bus_request_id_is_valid(req->request_id)) {
		bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
			      "set request_id to 1-128 printable ASCII characters, unique per call",
			      isempty(req->request_id) ? "request_id is missing"
						       : "request_id is invalid");
		r = -EINVAL;
		goto fail;
	}
	strscpy(e->request_id, sizeof(e->request_id), req->request_id);

	if (req->api_version != BUS_API_VERSION) {
		bus_error_set(e, LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION,
			      "set api_version = 1 and use the .proto files of this locald release",
			      "api_version %" PRIu32
			      " is not supported: this daemon speaks api_version %u",
			      req->api_version, BUS_API_VERSION);
		r = -EPROTONOSUPPORT;
		goto fail;
	}

	r = check_strings(&locald__v1__request__descriptor, data, size, "request", e);
	if (r < 0)
		goto fail;

	if (req->call_case == LOCALD__V1__REQUEST__CALL__NOT_SET) {
		if (req->base.n_unknown_fields > 0) {
			bus_error_set(e, LOCALD__V1__ERROR__CODE__UNIMPLEMENTED,
				      "the daemon is older than your client: update locald",
				      "unknown call (Request field %" PRIu32 ")",
				      req->base.unknown_fields[0].tag);
			r = -EOPNOTSUPP;
		} else {
			bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
				      "set exactly one field of the Request's 'call' oneof",
				      "request has no call");
			r = -EINVAL;
		}
		goto fail;
	}

	*ret = req;
	return 0;
fail:
	bus_request_free(req);
	return r;
}

BusRequest *bus_request_free(BusRequest *request)
{
	message_free(request ? &request->base : NULL);
	return NULL;
}

int bus_reply_decode(const void *data, size_t size, BusReply **ret, BusError *ret_error)
{
	BusError *e = ret_error;
	int r;

	e->request_id[0] = 0;
	r = check_size(size, "reply", 1, data, e);
	if (r < 0)
		return r;
	BusReply *reply =
	    (BusReply *)unpack(&locald__v1__reply__descriptor, data, size, "Reply", 1, e, &r);
	if (!reply)
		return r;
	if (!isempty(reply->request_id)) {
		if (!bus_request_id_is_valid(reply->request_id)) {
			bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, NULL,
				      "reply has an invalid request_id");
			r = -EINVAL;
			goto fail;
		}
		strscpy(e->request_id, sizeof(e->request_id), reply->request_id);
	}
	r = check_strings(&locald__v1__reply__descriptor, data, size, "reply", e);
	if (r < 0)
		goto fail;
	*ret = reply;
	return 0;
fail:
	bus_reply_free(reply);
	return r;
}

BusReply *bus_reply_free(BusReply *reply)
{
	message_free(reply ? &reply->base : NULL);
	return NULL;
}

int bus_event_decode(const void *topic, size_t topic_size, const void *data, size_t size,
		     BusEvent **ret, BusError *ret_error)
{
	BusError *e = ret_error;
	int r;

	e->request_id[0] = 0;
	if (!bus_topic_is_valid(topic, topic_size)) {
		bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, NULL,
			      "invalid topic frame");
		return -EBADMSG;
	}
	r = check_size(size, "event", 0, data, e);
	if (r < 0)
		return r;
	BusEvent *ev =
	    (BusEvent *)unpack(&locald__v1__event__descriptor, data, size, "Event", 0, e, &r);
	if (!ev)
		return r;
	r = check_strings(&locald__v1__event__descriptor, data, size, "event", e);
	if (r < 0)
		goto fail;
	if (strlen(ev->topic) != topic_size || memcmp(ev->topic, topic, topic_size) != 0) {
		bus_error_set(e, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, NULL,
			      "event topic '%s' differs from its topic frame", ev->topic);
		r = -EBADMSG;
		goto fail;
	}
	*ret = ev;
	return 0;
fail:
	bus_event_free(ev);
	return r;
}

BusEvent *bus_event_free(BusEvent *event)
{
	message_free(event ? &event->base : NULL);
	return NULL;
}

/* ---- Encoding ---- */

static int pack(const ProtobufCMessage *m, void **ret, size_t *ret_size)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > BUS_FRAME_MAX)
		return -E2BIG;
	uint8_t *buf = codec_malloc(n);
	if (!buf)
		return -ENOMEM;
	size_t k = protobuf_c_message_pack(m, buf);
	if (k != n) {
		free(buf);
		return -EIO;
	}
	*ret = buf;
	*ret_size = n;
	return 0;
}

int bus_request_encode(const BusRequest *request, void **ret, size_t *ret_size)
{
	if (!bus_request_id_is_valid(request->request_id) ||
	    request->api_version != BUS_API_VERSION)
		return -EINVAL;
	return pack(&request->base, ret, ret_size);
}

int bus_reply_encode(const BusReply *reply, void **ret, size_t *ret_size)
{
	return pack(&reply->base, ret, ret_size);
}

int bus_event_encode(const BusEvent *event, void **ret, size_t *ret_size)
{
	return pack(&event->base, ret, ret_size);
}

size_t bus_error_reply_encode(const char *request_id, const BusError *error, uint8_t *buf)
{
	Locald__V1__Reply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__Error err = LOCALD__V1__ERROR__INIT;
	char message[BUS_ERROR_TEXT_MAX], hint[BUS_ERROR_TEXT_MAX];

	/* Re-sanitise: the error may have been filled in by hand. */
	text_copy(message, sizeof(message), error->message);
	text_copy(hint, sizeof(hint), error->hint);
	err.code = error->code;
	err.message = message;
	err.hint = hint;
	reply.request_id = bus_request_id_is_valid(request_id) ? (char *)request_id : (char *)"";
	reply.result_case = LOCALD__V1__REPLY__RESULT_ERROR;
	reply.error = &err;
	/* ≤ 2 + 128 + 2 + (2 + 2 + 256 + 3 + 256) < BUS_ERROR_REPLY_MAX */
	return protobuf_c_message_pack(&reply.base, buf);
}

const BusErrorMessage *bus_reply_get_error(const BusReply *reply)
{
	return reply->result_case == LOCALD__V1__REPLY__RESULT_ERROR ? reply->error : NULL;
}

/* ---- Topics ---- */

bool bus_topic_is_valid(const char *topic, size_t size)
{
	if (!topic || size == 0 || size > BUS_TOPIC_MAX)
		return false;
	if (!utf8_is_valid(topic, size))
		return false;
	if (topic[0] == '.' || topic[size - 1] == '.')
		return false;
	for (size_t i = 0; i < size; i++) {
		unsigned char c = (unsigned char)topic[i];
		if (c <= 0x20 || c == 0x7f)
			return false;
		if (c == '.' && topic[i + 1] == '.')
			return false;
	}
	return true;
}

int bus_topic_family(const char *topic, char *ret, size_t size)
{
	size_t n = strlen(topic);
	if (!bus_topic_is_valid(topic, n))
		return -EINVAL;

	unsigned components = startswith(topic, "service.") || startswith(topic, "proxy.") ? 2 : 1;
	size_t len = 0;
	for (unsigned c = 0; c < components && len < n; c++) {
		if (c > 0)
			len++; /* the dot */
		while (len < n && topic[len] != '.')
			len++;
	}
	if (len >= size || len > BUS_FAMILY_MAX)
		return -ENOBUFS;
	memcpy(ret, topic, len);
	ret[len] = 0;
	return (int)len;
}

const char *bus_call_case_to_string(BusCallCase call)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
	    &locald__v1__request__descriptor, (unsigned)call);
	return f && f->id >= 10 ? f->name : NULL;
}
