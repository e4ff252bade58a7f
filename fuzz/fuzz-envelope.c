/* SPDX-License-Identifier: MIT */
/*
 * The bus envelope decoder on arbitrary bytes, as a daemon sees a request frame.
 * Invariants checked (abort() on violation):
 *   - a refused frame yields an error reply that encodes within BUS_ERROR_REPLY_MAX
 *     and decodes back with the same code and request_id;
 *   - an accepted request re-encodes, and the re-encoding is accepted again with the
 *     same call and request_id.
 * The same bytes also go through the reply and event decoders (clients' side).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus-codec.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

static void check_error_reply(const BusError *e)
{
	uint8_t buf[BUS_ERROR_REPLY_MAX];
	BusReply *reply = NULL;
	BusError e2 = {};

	CHECK(e->code > LOCALD__V1__ERROR__CODE__CODE_UNSPECIFIED &&
	      e->code <= LOCALD__V1__ERROR__CODE__UNIMPLEMENTED);
	CHECK(e->request_id[0] == 0 || bus_request_id_is_valid(e->request_id));
	size_t n = bus_error_reply_encode(e->request_id, e, buf);
	CHECK(n > 0 && n <= BUS_ERROR_REPLY_MAX);
	CHECK(bus_reply_decode(buf, n, &reply, &e2) == 0);
	CHECK(reply->result_case == LOCALD__V1__REPLY__RESULT_ERROR);
	CHECK(reply->error->code == e->code);
	CHECK(strcmp(reply->request_id, e->request_id) == 0);
	bus_reply_free(reply);
}

static void check_reencode(const BusRequest *req)
{
	void *out = NULL;
	size_t n = 0;
	BusRequest *again = NULL;
	BusError e = {};

	int r = bus_request_encode(req, &out, &n);
	CHECK(r == 0 || r == -E2BIG || r == -ENOMEM);
	if (r < 0)
		return;
	CHECK(bus_request_decode(out, n, &again, &e) == 0);
	CHECK(again->call_case == req->call_case);
	CHECK(strcmp(again->request_id, req->request_id) == 0);
	bus_request_free(again);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	BusRequest *req = NULL;
	BusReply *reply = NULL;
	BusEvent *ev = NULL;
	BusError e = {};

	int r = bus_request_decode(data, size, &req, &e);
	if (r < 0) {
		CHECK(req == NULL);
		check_error_reply(&e);
	} else {
		CHECK(req && req->call_case != LOCALD__V1__REQUEST__CALL__NOT_SET);
		CHECK(bus_request_id_is_valid(req->request_id));
		CHECK(req->api_version == BUS_API_VERSION);
		check_reencode(req);
		bus_request_free(req);
	}

	if (bus_reply_decode(data, size, &reply, &e) == 0)
		bus_reply_free(reply);

	/* First byte: length of a topic taken from the input's start. */
	if (size > 0) {
		size_t tlen = MIN((size_t)data[0], size - 1);
		char family[BUS_FAMILY_MAX + 1];
		char topic[256];
		memcpy(topic, data + 1, tlen);
		topic[tlen] = 0;
		if (bus_topic_is_valid(topic, tlen) && strlen(topic) == tlen)
			CHECK(bus_topic_family(topic, family, sizeof(family)) > 0 ||
			      bus_topic_family(topic, family, sizeof(family)) == -ENOBUFS);
		if (bus_event_decode(data + 1, tlen, data + 1 + tlen, size - 1 - tlen, &ev, &e) ==
		    0)
			bus_event_free(ev);
	}
	return 0;
}
