/* SPDX-License-Identifier: MIT */
#include "bus-zmtp-client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "bus-zmtp-conn.h"
#include "strutil.h"
#include "time-util.h"

#define CLIENT_ID_MAX 32

struct BusZmtpClient {
	ZmtpConn *conn;
	uint32_t tag;
	uint64_t counter;
	uint64_t dropped;
	bool pending;
	usec_t deadline;
	char id[CLIENT_ID_MAX];
	char path[];
};

static usec_t deadline_after(uint64_t ms)
{
	usec_t now = now_monotonic();
	return ms > (UINT64_MAX - now) / USEC_PER_MSEC ? UINT64_MAX : now + ms * USEC_PER_MSEC;
}

static int endpoint_path(const char *endpoint, const char **ret)
{
	const char *p = startswith(endpoint, "ipc://");
	if (!p || *p == 0)
		return -EINVAL;
	*ret = p;
	return 0;
}

int bus_zmtp_client_new(const char *endpoint, BusZmtpClient **ret)
{
	const char *path;
	int r = endpoint_path(endpoint, &path);
	if (r < 0)
		return r;
	size_t n = strlen(path);
	BusZmtpClient *c = calloc(1, sizeof(*c) + n + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c->path, path, n + 1);
	if (getrandom(&c->tag, sizeof(c->tag), GRND_NONBLOCK) != (ssize_t)sizeof(c->tag))
		c->tag = (uint32_t)getpid() ^ (uint32_t)now_monotonic() ^ (uint32_t)(uintptr_t)c;
	*ret = c;
	return 0;
}

static void drop_conn(BusZmtpClient *c)
{
	c->conn = zmtp_conn_free(c->conn);
	c->pending = false;
}

BusZmtpClient *bus_zmtp_client_free(BusZmtpClient *c)
{
	if (!c)
		return NULL;
	zmtp_conn_free(c->conn);
	free(c);
	return NULL;
}

static int connect_now(BusZmtpClient *c, usec_t deadline)
{
	int r = zmtp_conn_connect(c->path, ZMTP_SOCKET_DEALER, BUS_FRAME_MAX, BUS_TRANSPORT_MAX,
				  deadline, &c->conn);
	/* No socket file, or a stale one: no daemon. */
	return r == -ENOENT ? -ECONNREFUSED : r;
}

static int send_frame(BusZmtpClient *c, const void *data, size_t size, usec_t deadline)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = size };
	/* A daemon that restarted since our last call closed our old connection: that is
	 * seen at the first write (or as a stray end of stream), before anything of this
	 * request was delivered, so connecting again and resending is safe. */
	for (int attempt = 0;; attempt++) {
		if (!c->conn) {
			int r = connect_now(c, deadline);
			if (r < 0)
				return r;
		}
		int r = zmtp_conn_send(c->conn, &iov, 1, deadline);
		if (r == 0)
			return 0;
		drop_conn(c);
		if (r != -ECONNRESET || attempt > 0)
			return r;
	}
}

int bus_zmtp_client_send(BusZmtpClient *c, BusRequest *request, uint64_t timeout_ms)
{
	usec_t deadline = deadline_after(timeout_ms);
	_cleanup_free_ void *data = NULL;
	size_t size = 0;
	char id[CLIENT_ID_MAX];

	(void)snprintf(id, sizeof(id), "%08" PRIx32 "-%" PRIu64, c->tag, ++c->counter);
	char *old_id = request->request_id;
	uint32_t old_version = request->api_version;
	request->request_id = id;
	request->api_version = BUS_API_VERSION;
	int r = bus_request_encode(request, &data, &size);
	request->request_id = old_id;
	request->api_version = old_version;
	if (r < 0)
		return r;

	/* Replies of an earlier call left unread must not wait in front of this one's. */
	if (c->conn && c->pending) {
		ZmtpMessage m;
		while ((r = zmtp_conn_receive(c->conn, 0, &m)) == 0)
			c->dropped++;
		if (r != -EAGAIN)
			drop_conn(c);
	}
	c->pending = false;
	r = send_frame(c, data, size, deadline);
	if (r < 0)
		return r;
	memcpy(c->id, id, sizeof(id));
	c->deadline = deadline;
	c->pending = true;
	return 0;
}

int bus_zmtp_client_receive(BusZmtpClient *c, uint64_t wait_ms, BusReply **ret_reply)
{
	if (!c->pending || !c->conn)
		return -ESRCH;
	usec_t deadline = wait_ms == 0 ? 0 : MIN(deadline_after(wait_ms), c->deadline);
	for (;;) {
		ZmtpMessage m;
		int r = zmtp_conn_receive(c->conn, deadline, &m);
		if (r == -EAGAIN || r == -ETIMEDOUT) {
			if (now_monotonic() < c->deadline)
				return -EAGAIN;
			r = -ETIMEDOUT;
		}
		if (r < 0) {
			/* Timed out: the request may still be queued in the daemon, and its
			 * reply must not meet a later call. Broken: nothing more will come. */
			drop_conn(c);
			return r;
		}
		if (m.n == 0 || m.truncated) {
			c->dropped++;
			continue;
		}
		/* DEALER gets [body], or ["", body] from a daemon answering like for REQ. */
		BusReply *reply = NULL;
		BusError e = {};
		r = bus_reply_decode(m.frames[m.n - 1].data, m.frames[m.n - 1].size, &reply, &e);
		if (r < 0) {
			if (streq(e.request_id, c->id)) {
				c->pending = false;
				return -EBADMSG;
			}
			c->dropped++;
			continue;
		}
		if (!streq(reply->request_id, c->id)) {
			bus_reply_free(reply);
			c->dropped++;
			continue;
		}
		c->pending = false;
		*ret_reply = reply;
		return 0;
	}
}

int bus_zmtp_client_call(BusZmtpClient *c, BusRequest *request, uint64_t timeout_ms,
			 BusReply **ret_reply)
{
	int r = bus_zmtp_client_send(c, request, timeout_ms);
	if (r < 0)
		return r;
	/* Never 0: that would mean "do not wait". */
	r = bus_zmtp_client_receive(c, MAX(timeout_ms, (uint64_t)1), ret_reply);
	return r == -EAGAIN ? -ETIMEDOUT : r;
}

bool bus_zmtp_client_pending(BusZmtpClient *c)
{
	return c->pending;
}

int bus_zmtp_client_fd(BusZmtpClient *c)
{
	return c->conn ? zmtp_conn_fd(c->conn) : -EBADF;
}

uint64_t bus_zmtp_client_get_dropped(BusZmtpClient *c)
{
	return c->dropped;
}

/* ---- subscriber ---- */

typedef struct Track {
	char family[BUS_FAMILY_MAX + 1];
	uint64_t epoch;
	uint64_t seq;
} Track;

struct BusZmtpSubscriber {
	ZmtpConn *conn;
	char *prefixes[BUS_ZMTP_SUBSCRIBER_PREFIXES_MAX];
	size_t n_prefixes;
	Track tracks[BUS_ZMTP_SUBSCRIBER_FAMILIES_MAX];
	size_t n_tracks;
	uint64_t skipped;
};

int bus_zmtp_subscriber_new(const char *endpoint, BusZmtpSubscriber **ret)
{
	const char *path;
	int r = endpoint_path(endpoint, &path);
	if (r < 0)
		return r;
	_cleanup_(bus_zmtp_subscriber_freep) BusZmtpSubscriber *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* Event frames are at most BUS_FRAME_MAX; a topic frame is far smaller. */
	r = zmtp_conn_connect(path, ZMTP_SOCKET_SUB, BUS_FRAME_MAX, BUS_FRAME_MAX + BUS_TOPIC_MAX,
			      deadline_after(5000), &s->conn);
	if (r < 0)
		return r == -ENOENT ? -ECONNREFUSED : r;
	*ret = TAKE_PTR(s);
	return 0;
}

BusZmtpSubscriber *bus_zmtp_subscriber_free(BusZmtpSubscriber *s)
{
	if (!s)
		return NULL;
	zmtp_conn_free(s->conn);
	for (size_t i = 0; i < s->n_prefixes; i++)
		free(s->prefixes[i]);
	free(s);
	return NULL;
}

int bus_zmtp_subscriber_subscribe(BusZmtpSubscriber *s, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n > BUS_TOPIC_MAX)
		return -EINVAL;
	if (s->n_prefixes >= BUS_ZMTP_SUBSCRIBER_PREFIXES_MAX)
		return -ENOSPC;
	char *p = strdup(prefix);
	if (!p)
		return -ENOMEM;
	/* ZMTP 3.0: a message of 1 (subscribe) followed by the prefix. */
	uint8_t msg[1 + BUS_TOPIC_MAX];
	msg[0] = 1;
	memcpy(msg + 1, prefix, n);
	struct iovec iov = { .iov_base = msg, .iov_len = n + 1 };
	int r = zmtp_conn_send(s->conn, &iov, 1, deadline_after(5000));
	if (r < 0) {
		free(p);
		return r;
	}
	s->prefixes[s->n_prefixes++] = p;
	return 0;
}

int bus_zmtp_subscriber_fd(BusZmtpSubscriber *s)
{
	return zmtp_conn_fd(s->conn);
}

uint64_t bus_zmtp_subscriber_get_skipped(BusZmtpSubscriber *s)
{
	return s->skipped;
}

/* Does one of our prefixes receive every topic of this family? */
static bool family_covered(BusZmtpSubscriber *s, const char *family)
{
	size_t fl = strlen(family);
	for (size_t i = 0; i < s->n_prefixes; i++) {
		const char *p = s->prefixes[i];
		size_t pl = strlen(p);
		if (pl <= fl ? strncmp(p, family, pl) == 0
			     : pl == fl + 1 && strncmp(p, family, fl) == 0 && p[fl] == '.')
			return true;
	}
	return false;
}

static bool check_gap(BusZmtpSubscriber *s, const BusEvent *ev)
{
	char family[BUS_FAMILY_MAX + 1];
	if (!isempty(ev->family) && strlen(ev->family) <= BUS_FAMILY_MAX)
		strscpy(family, sizeof(family), ev->family);
	else if (bus_topic_family(ev->topic, family, sizeof(family)) < 0)
		return false;
	if (!family_covered(s, family))
		return false;
	Track *t = NULL;
	for (size_t i = 0; i < s->n_tracks && !t; i++)
		if (streq(s->tracks[i].family, family))
			t = &s->tracks[i];
	if (!t) {
		if (s->n_tracks >= BUS_ZMTP_SUBSCRIBER_FAMILIES_MAX)
			return false;
		t = &s->tracks[s->n_tracks++];
		strscpy(t->family, sizeof(t->family), family);
		t->epoch = ev->epoch;
		t->seq = ev->seq;
		return false;
	}
	bool gap = ev->epoch != t->epoch || ev->seq != t->seq + 1;
	t->epoch = ev->epoch;
	t->seq = ev->seq;
	return gap;
}

int bus_zmtp_subscriber_receive(BusZmtpSubscriber *s, uint64_t wait_ms, BusEvent **ret_event,
				bool *ret_gap)
{
	usec_t deadline = wait_ms ? deadline_after(wait_ms) : 0;
	for (;;) {
		ZmtpMessage m;
		int r = zmtp_conn_receive(s->conn, deadline, &m);
		if (r < 0)
			return r;
		BusEvent *ev = NULL;
		BusError e = {};
		if (m.n != 2 || m.truncated ||
		    bus_event_decode(m.frames[0].data, m.frames[0].size, m.frames[1].data,
				     m.frames[1].size, &ev, &e) < 0) {
			s->skipped++;
			continue;
		}
		*ret_gap = check_gap(s, ev);
		*ret_event = ev;
		return 0;
	}
}
