/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "bus-codec.h"
#include "bus-wire.h"
#include "test.h"

/* Pack any message, valid or not: protobuf-c does not check what it packs. */
static size_t pack(const ProtobufCMessage *m, uint8_t **ret)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	*ret = malloc(n ? n : 1);
	ASSERT_NOT_NULL(*ret);
	ASSERT_EQ(protobuf_c_message_pack(m, *ret), n);
	return n;
}

static size_t pack_ping(const char *id, uint32_t version, const char *token, uint8_t **ret)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Ping ping = LOCALD__V1__PING__INIT;
	req.api_version = version;
	req.request_id = (char *)id;
	req.call_case = LOCALD__V1__REQUEST__CALL_PING;
	req.ping = &ping;
	ping.token = (char *)token;
	return pack(&req.base, ret);
}

TEST(decode_valid_request)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t n = pack_ping("r-1", 1, "héllo", &buf);
	_cleanup_(bus_request_freep) BusRequest *req = NULL;
	BusError e = {};

	ASSERT_OK(bus_request_decode(buf, n, &req, &e));
	ASSERT_STREQ(req->request_id, "r-1");
	ASSERT_EQ(req->call_case, LOCALD__V1__REQUEST__CALL_PING);
	ASSERT_STREQ(req->ping->token, "héllo");
}

TEST(decode_nested_request)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__ApplyProject apply = LOCALD__V1__APPLY_PROJECT__INIT;
	Locald__V1__EnvVar v1 = LOCALD__V1__ENV_VAR__INIT, v2 = LOCALD__V1__ENV_VAR__INIT;
	Locald__V1__EnvVar *vars[] = { &v1, &v2 };
	char *services[] = { (char *)"web", (char *)"db" };
	req.api_version = 1;
	req.request_id = (char *)"apply-1";
	req.call_case = LOCALD__V1__REQUEST__CALL_APPLY_PROJECT;
	req.apply_project = &apply;
	apply.path = (char *)"/home/me/shop";
	apply.n_services = 2;
	apply.services = services;
	apply.n_environment = 2;
	apply.environment = vars;
	v1.name = (char *)"PATH";
	v1.value = (char *)"/usr/bin";
	v2.name = (char *)"LANG";
	v2.value = (char *)"C.UTF-8";

	_cleanup_free_ uint8_t *buf = NULL;
	size_t n = pack(&req.base, &buf);
	_cleanup_(bus_request_freep) BusRequest *got = NULL;
	BusError e = {};
	ASSERT_OK(bus_request_decode(buf, n, &got, &e));
	ASSERT_STREQ(got->apply_project->path, "/home/me/shop");
	ASSERT_EQ(got->apply_project->n_environment, 2);
	ASSERT_STREQ(got->apply_project->environment[1]->value, "C.UTF-8");
	ASSERT_STREQ(got->apply_project->services[1], "db");

	/* Encoding it back gives the same bytes. */
	_cleanup_free_ void *again = NULL;
	size_t m = 0;
	ASSERT_OK(bus_request_encode(got, &again, &m));
	ASSERT_EQ(m, n);
	ASSERT_TRUE(memcmp(again, buf, n) == 0);
}

TEST(decode_garbage)
{
	static const uint8_t garbage[][8] = {
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0x12, 0x7f, 'a', 'b' }, /* length past the end */
		{ 0x0b, 0x00 },           /* group start (wire type 3) */
		{ 0x00, 0x01 },           /* field number 0 */
	};
	for (size_t i = 0; i < ELEMENTSOF(garbage); i++) {
		BusRequest *req = NULL;
		BusError e = {};
		ASSERT_ERR(bus_request_decode(garbage[i], sizeof(garbage[i]), &req, &e), EBADMSG);
		ASSERT_NULL(req);
		ASSERT_EQ(e.code, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT);
		ASSERT_STRCONTAINS(e.message, "malformed");
		ASSERT_STREQ(e.request_id, "");
	}
}

TEST(decode_empty_frame)
{
	BusRequest *req = NULL;
	BusError e = {};
	/* An empty frame is a Request with every field default: no request_id. */
	ASSERT_ERR(bus_request_decode("", 0, &req, &e), EINVAL);
	ASSERT_EQ(e.code, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT);
	ASSERT_STRCONTAINS(e.message, "request_id is missing");
}

TEST(decode_bad_request_id)
{
	char long_id[BUS_REQUEST_ID_MAX + 2];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = 0;
	const char *bad[] = { "tab\there", long_id, "é" };

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_free_ uint8_t *buf = NULL;
		size_t n = pack_ping(bad[i], 1, "", &buf);
		BusRequest *req = NULL;
		BusError e = {};
		ASSERT_ERR(bus_request_decode(buf, n, &req, &e), EINVAL);
		ASSERT_STRCONTAINS(e.message, "request_id is invalid");
		ASSERT_STREQ(e.request_id, "");
	}
	long_id[BUS_REQUEST_ID_MAX] = 0;
	ASSERT_TRUE(bus_request_id_is_valid(long_id));
	ASSERT_TRUE(bus_request_id_is_valid("a b~"));
	ASSERT_FALSE(bus_request_id_is_valid(""));
	ASSERT_FALSE(bus_request_id_is_valid(NULL));
}

TEST(decode_api_version_mismatch)
{
	uint32_t versions[] = { 0, 2, 0xffffffffu };
	for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
		_cleanup_free_ uint8_t *buf = NULL;
		size_t n = pack_ping("v", versions[i], "", &buf);
		BusRequest *req = NULL;
		BusError e = {};
		ASSERT_ERR(bus_request_decode(buf, n, &req, &e), EPROTONOSUPPORT);
		ASSERT_EQ(e.code, LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION);
		ASSERT_STREQ(e.request_id, "v");
		ASSERT_STRCONTAINS(e.hint, "api_version = 1");
	}
}

TEST(decode_oversize_recovers_request_id)
{
	size_t size = BUS_FRAME_MAX + 1;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Echo echo = LOCALD__V1__ECHO__INIT;
	req.api_version = 1;
	req.request_id = (char *)"big-1";
	req.call_case = LOCALD__V1__REQUEST__CALL_ECHO;
	req.echo = &echo;
	echo.payload.len = size;
	echo.payload.data = calloc(1, size);
	ASSERT_NOT_NULL(echo.payload.data);

	_cleanup_free_ uint8_t *buf = NULL;
	size_t n = pack(&req.base, &buf);
	free(echo.payload.data);
	BusRequest *got = NULL;
	BusError e = {};
	ASSERT_ERR(bus_request_decode(buf, n, &got, &e), E2BIG);
	ASSERT_EQ(e.code, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT);
	ASSERT_STREQ(e.request_id, "big-1");
	ASSERT_STRCONTAINS(e.message, "exceeds the limit of 4194304 bytes");

	/* And the encoder refuses to produce it. */
	void *out = NULL;
	size_t out_size = 0;
	echo.payload.data = buf; /* any bytes */
	ASSERT_ERR(bus_request_encode(&req, &out, &out_size), E2BIG);
	ASSERT_NULL(out);
}

TEST(decode_invalid_utf8)
{
	static const char *bad[] = { "a\xff", "\xc0\x80", "\xed\xa0\x80" /* surrogate */ };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		BusRequest req = LOCALD__V1__REQUEST__INIT;
		Locald__V1__ApplyProject apply = LOCALD__V1__APPLY_PROJECT__INIT;
		Locald__V1__EnvVar v = LOCALD__V1__ENV_VAR__INIT;
		Locald__V1__EnvVar *vars[] = { &v };
		req.api_version = 1;
		req.request_id = (char *)"u";
		req.call_case = LOCALD__V1__REQUEST__CALL_APPLY_PROJECT;
		req.apply_project = &apply;
		apply.path = (char *)"/p";
		apply.n_environment = 1;
		apply.environment = vars;
		v.name = (char *)"X";
		v.value = (char *)bad[i];

		_cleanup_free_ uint8_t *buf = NULL;
		size_t n = pack(&req.base, &buf);
		BusRequest *got = NULL;
		BusError e = {};
		ASSERT_ERR(bus_request_decode(buf, n, &got, &e), EINVAL);
		ASSERT_EQ(e.code, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT);
		ASSERT_STRCONTAINS(e.message, "field 'value'");
		ASSERT_STREQ(e.request_id, "u");
	}
}

TEST(decode_embedded_nul)
{
	/* Request{api_version=1, request_id="n", status{project="a\0b"}} by hand. */
	static const uint8_t frame[] = { 0x08, 0x01, 0x12, 0x01, 'n',  0xd2, 0x06,
					 0x05, 0x0a, 0x03, 'a',  0x00, 'b' };
	BusRequest *req = NULL;
	BusError e = {};
	ASSERT_ERR(bus_request_decode(frame, sizeof(frame), &req, &e), EINVAL);
	ASSERT_STRCONTAINS(e.message, "field 'project'");
}

TEST(decode_no_call)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	req.api_version = 1;
	req.request_id = (char *)"x";
	_cleanup_free_ uint8_t *buf = NULL;
	size_t n = pack(&req.base, &buf);
	BusRequest *got = NULL;
	BusError e = {};
	ASSERT_ERR(bus_request_decode(buf, n, &got, &e), EINVAL);
	ASSERT_STRCONTAINS(e.message, "no call");
}

TEST(decode_unknown_call)
{
	/* A newer client's call: field 777 (an empty message) is unknown to this build. */
	static const uint8_t frame[] = { 0x08, 0x01, 0x12, 0x01, 'x', 0xca, 0x30, 0x00 };
	BusRequest *req = NULL;
	BusError e = {};
	ASSERT_ERR(bus_request_decode(frame, sizeof(frame), &req, &e), EOPNOTSUPP);
	ASSERT_EQ(e.code, LOCALD__V1__ERROR__CODE__UNIMPLEMENTED);
	ASSERT_STRCONTAINS(e.message, "field 777");
	ASSERT_STREQ(e.request_id, "x");
}

TEST(error_reply_roundtrip)
{
	BusError e = {};
	uint8_t buf[BUS_ERROR_REPLY_MAX];
	char huge[4096];

	/* Longest text, multi-byte characters across the cut, invalid bytes, newlines. */
	for (size_t i = 0; i + 2 < sizeof(huge); i += 2)
		memcpy(huge + i, "é", 2);
	huge[sizeof(huge) - 2] = 0;
	huge[11] = '\xff';
	huge[20] = '\n';
	bus_error_set(&e, LOCALD__V1__ERROR__CODE__NOT_FOUND, huge, "%s", huge);
	ASSERT_TRUE(strlen(e.message) < BUS_ERROR_TEXT_MAX);

	char id[BUS_REQUEST_ID_MAX + 1];
	memset(id, 'i', BUS_REQUEST_ID_MAX);
	id[BUS_REQUEST_ID_MAX] = 0;
	size_t n = bus_error_reply_encode(id, &e, buf);
	ASSERT_TRUE(n <= BUS_ERROR_REPLY_MAX);

	_cleanup_(bus_reply_freep) BusReply *reply = NULL;
	BusError e2 = {};
	ASSERT_OK(bus_reply_decode(buf, n, &reply, &e2));
	ASSERT_STREQ(reply->request_id, id);
	const BusErrorMessage *err = bus_reply_get_error(reply);
	ASSERT_NOT_NULL(err);
	ASSERT_EQ(err->code, LOCALD__V1__ERROR__CODE__NOT_FOUND);
	ASSERT_STREQ(err->message, e.message);
	ASSERT_TRUE(strchr(err->message, '\n') == NULL);

	/* An invalid request_id is not echoed. */
	n = bus_error_reply_encode("bad\x01", &e, buf);
	_cleanup_(bus_reply_freep) BusReply *r2 = NULL;
	ASSERT_OK(bus_reply_decode(buf, n, &r2, &e2));
	ASSERT_STREQ(r2->request_id, "");
}

TEST(reply_too_large)
{
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__EchoResult echo = LOCALD__V1__ECHO_RESULT__INIT;
	reply.request_id = (char *)"r";
	reply.result_case = LOCALD__V1__REPLY__RESULT_ECHO;
	reply.echo = &echo;
	echo.payload.len = BUS_FRAME_MAX;
	echo.payload.data = calloc(1, BUS_FRAME_MAX);
	void *out = NULL;
	size_t n = 0;
	ASSERT_ERR(bus_reply_encode(&reply, &out, &n), E2BIG);
	echo.payload.len = 1000;
	ASSERT_OK(bus_reply_encode(&reply, &out, &n));
	free(out);
	free(echo.payload.data);
}

TEST(event_roundtrip_and_topic_check)
{
	BusEvent ev = LOCALD__V1__EVENT__INIT;
	Locald__V1__LogLine line = LOCALD__V1__LOG_LINE__INIT;
	ev.topic = (char *)"log.shop.web";
	ev.family = (char *)"log";
	ev.seq = 7;
	ev.payload_case = LOCALD__V1__EVENT__PAYLOAD_LOG_LINE;
	ev.log_line = &line;
	line.text = (char *)"listening on :3000";

	_cleanup_free_ void *buf = NULL;
	size_t n = 0;
	ASSERT_OK(bus_event_encode(&ev, &buf, &n));
	_cleanup_(bus_event_freep) BusEvent *got = NULL;
	BusError e = {};
	ASSERT_OK(bus_event_decode("log.shop.web", 12, buf, n, &got, &e));
	ASSERT_EQ(got->seq, 7);
	ASSERT_STREQ(got->log_line->text, "listening on :3000");

	BusEvent *bad = NULL;
	ASSERT_ERR(bus_event_decode("log.shop.db", 11, buf, n, &bad, &e), EBADMSG);
	ASSERT_STRCONTAINS(e.message, "differs");
	ASSERT_ERR(bus_event_decode("log..x", 6, buf, n, &bad, &e), EBADMSG);
	ASSERT_NULL(bad);
}

TEST(topic_family)
{
	char f[BUS_FAMILY_MAX + 1];
	static const struct {
		const char *topic, *family;
	} ok[] = {
		{ "service.state.shop.web", "service.state" },
		{ "service.state", "service.state" },
		{ "log.shop.web", "log" },
		{ "build.shop.api", "build" },
		{ "proxy.request.web.shop.localhost", "proxy.request" },
		{ "vm.dev", "vm" },
		{ "test", "test" },
		{ "proxy", "proxy" },
	};
	for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
		ASSERT_EQ(bus_topic_family(ok[i].topic, f, sizeof(f)), strlen(ok[i].family));
		ASSERT_STREQ(f, ok[i].family);
	}
	static const char *bad[] = { "", ".log", "log.", "log..x", "log x", "log\x01", "\xff" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		ASSERT_ERR(bus_topic_family(bad[i], f, sizeof(f)), EINVAL);
	ASSERT_ERR(bus_topic_family("service.state.x", f, 5), ENOBUFS);
	ASSERT_TRUE(bus_topic_is_valid("log.café.web", strlen("log.café.web")));
}

TEST(errno_mapping)
{
	ASSERT_EQ(bus_error_code_from_errno(-ENOENT), LOCALD__V1__ERROR__CODE__NOT_FOUND);
	ASSERT_EQ(bus_error_code_from_errno(EEXIST), LOCALD__V1__ERROR__CODE__ALREADY_EXISTS);
	ASSERT_EQ(bus_error_code_from_errno(-EACCES), LOCALD__V1__ERROR__CODE__PERMISSION_DENIED);
	ASSERT_EQ(bus_error_code_from_errno(-EIO), LOCALD__V1__ERROR__CODE__INTERNAL);
	for (int c = 1; c <= 8; c++) {
		if (c == LOCALD__V1__ERROR__CODE__INTERNAL)
			continue;
		ASSERT_EQ(bus_error_code_from_errno(bus_error_code_to_errno((BusErrorCode)c)), c);
	}
	ASSERT_STREQ(bus_error_code_to_string(LOCALD__V1__ERROR__CODE__UNIMPLEMENTED),
		     "UNIMPLEMENTED");
	ASSERT_STREQ(bus_error_code_to_string((BusErrorCode)99), "CODE_UNSPECIFIED");
	ASSERT_STREQ(bus_call_case_to_string(LOCALD__V1__REQUEST__CALL_APPLY_PROJECT),
		     "apply_project");
	ASSERT_NULL(bus_call_case_to_string((BusCallCase)2));
	ASSERT_NULL(bus_call_case_to_string((BusCallCase)777));
}

TEST(wire_find_bytes)
{
	static const uint8_t frame[] = { 0x12, 0x01, 'a', 0x08, 0x01, 0x12, 0x02, 'b', 'c', 0xff };
	const uint8_t *p;
	size_t n;
	/* Last occurrence before the malformed tail wins, as in protobuf. */
	ASSERT_OK(bus_wire_find_bytes(frame, sizeof(frame), 2, &p, &n));
	ASSERT_EQ(n, 2);
	ASSERT_TRUE(memcmp(p, "bc", 2) == 0);
	ASSERT_ERR(bus_wire_find_bytes(frame, sizeof(frame), 3, &p, &n), ENOENT);
	ASSERT_ERR(bus_wire_find_bytes(NULL, 0, 2, &p, &n), ENOENT);
}

/* Every allocation of the decoder failing in turn: -ENOMEM and UNAVAILABLE, no leak
 * (the ASan build checks), and success once there are enough. */
TEST(decode_allocation_failures)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__ApplyProject apply = LOCALD__V1__APPLY_PROJECT__INIT;
	Locald__V1__EnvVar v = LOCALD__V1__ENV_VAR__INIT;
	Locald__V1__EnvVar *vars[] = { &v, &v, &v };
	char *services[] = { (char *)"a", (char *)"b" };
	req.api_version = 1;
	req.request_id = (char *)"oom";
	req.call_case = LOCALD__V1__REQUEST__CALL_APPLY_PROJECT;
	req.apply_project = &apply;
	apply.path = (char *)"/p";
	apply.n_services = 2;
	apply.services = services;
	apply.n_environment = 3;
	apply.environment = vars;
	v.name = (char *)"N";
	v.value = (char *)"V";
	_cleanup_free_ uint8_t *buf = NULL;
	size_t n = pack(&req.base, &buf);

	int k;
	for (k = 0; k < 1000; k++) {
		BusRequest *got = NULL;
		BusError e = {};
		bus_codec_fail_alloc_after(k);
		int r = bus_request_decode(buf, n, &got, &e);
		bus_codec_fail_alloc_after(-1);
		if (r == 0) {
			bus_request_free(got);
			break;
		}
		ASSERT_ERR(r, ENOMEM);
		ASSERT_EQ(e.code, LOCALD__V1__ERROR__CODE__UNAVAILABLE);
		ASSERT_STREQ(e.request_id, "oom");
	}
	ASSERT_TRUE(k > 3 && k < 1000);

	/* Encoding under failure. */
	void *out = NULL;
	size_t out_size = 0;
	bus_codec_fail_alloc_after(0);
	ASSERT_ERR(bus_request_encode(&req, &out, &out_size), ENOMEM);
	bus_codec_fail_alloc_after(-1);
	ASSERT_NULL(out);
}

TEST_MAIN();
