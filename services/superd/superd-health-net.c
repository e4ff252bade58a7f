/* SPDX-License-Identifier: MIT */
/* tcp and http checks (superd-health.h, "Kinds"). */
#include "superd-health-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "strutil.h"

/* Only the status line matters; a server sending more than this before it is broken. */
#define HTTP_RESPONSE_MAX 1024

struct NetAttempt {
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	uv_write_t write_req;
	HealthProbe *probe; /* NULL once abandoned: callbacks then only wait for the close */
	int family;
	char *request;
	char v4_error[128]; /* why 127.0.0.1 failed, when we went on to try ::1 */
	char response[HTTP_RESPONSE_MAX + 1];
	size_t len;
};

static void net_closed(uv_handle_t *h)
{
	NetAttempt *a = h->data;
	free(a->request);
	free(a);
}

/* Detach from the probe and close; memory goes in net_closed. */
static void net_release(NetAttempt *a)
{
	if (a->probe && a->probe->net == a)
		a->probe->net = NULL;
	a->probe = NULL;
	if (!uv_is_closing((uv_handle_t *)&a->tcp))
		uv_close((uv_handle_t *)&a->tcp, net_closed);
}

void health_net_abandon(HealthProbe *p)
{
	if (p->net)
		net_release(p->net);
}

static void net_finish(NetAttempt *a, bool ok, const char *reason)
{
	HealthProbe *p = a->probe;
	int family = a->family;
	char copy[256];
	(void)strscpy(copy, sizeof(copy), reason); /* reason may point into a */
	net_release(a);
	health_probe_check_done(p, ok, copy, family);
}

static void net_format_addr(const NetAttempt *a, char *buf, size_t size)
{
	(void)strfmt(buf, size, a->family == AF_INET ? "127.0.0.1:%u" : "[::1]:%u",
		     (unsigned)a->probe->port);
}

/* 1: complete (code set), 0: need more, -EBADMSG: not HTTP. */
static int http_status_parse(const char *buf, size_t len, int *ret_code)
{
	if (memcmp(buf, "HTTP/", MIN(len, (size_t)5)) != 0)
		return -EBADMSG;
	const char *eol = memchr(buf, '\n', len);
	if (!eol)
		return len >= HTTP_RESPONSE_MAX ? -EBADMSG : 0;
	/* HTTP/1.1 200 OK */
	size_t n = (size_t)(eol - buf);
	if (n < 12 || buf[5] < '0' || buf[5] > '9' || buf[6] != '.' || buf[7] < '0' ||
	    buf[7] > '9' || buf[8] != ' ')
		return -EBADMSG;
	int code = 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EBADMSG;
		code = code * 10 + (buf[i] - '0');
	}
	if (n > 12 && buf[12] != ' ' && buf[12] != '\r')
		return -EBADMSG;
	*ret_code = code;
	return 1;
}

static void http_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	NetAttempt *a = h->data;
	*buf = uv_buf_init(a->response + a->len, (unsigned)(HTTP_RESPONSE_MAX - a->len));
}

static void http_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	NetAttempt *a = s->data;
	HealthProbe *p = a->probe;
	char why[256];
	if (!p || nread == 0)
		return;
	if (nread > 0) {
		a->len += (size_t)nread;
		a->response[a->len] = 0;
		int code;
		int r = http_status_parse(a->response, a->len, &code);
		if (r == 0)
			return;
		if (r < 0) {
			(void)strfmt(why, sizeof(why), "GET %s: not an HTTP response", p->path);
			net_finish(a, false, why);
			return;
		}
		(void)strfmt(why, sizeof(why), "GET %s → %d", p->path, code);
		net_finish(a, code >= 200 && code < 400, why);
		return;
	}
	if (nread == UV_EOF)
		(void)strfmt(why, sizeof(why), "GET %s: connection closed before a status line",
			     p->path);
	else
		(void)strfmt(why, sizeof(why), "GET %s: %s", p->path, strerror((int)-nread));
	net_finish(a, false, why);
}

static void http_written(uv_write_t *req, int status)
{
	NetAttempt *a = req->data;
	if (!a->probe || status >= 0)
		return;
	char why[256];
	(void)strfmt(why, sizeof(why), "GET %s: sending the request: %s", a->probe->path,
		     strerror(-status));
	net_finish(a, false, why);
}

static void net_connected(uv_connect_t *req, int status)
{
	NetAttempt *a = req->data;
	HealthProbe *p = a->probe;
	char addr[64], why[256];
	if (!p)
		return;
	net_format_addr(a, addr, sizeof(addr));

	if (status < 0) {
		if (a->family == AF_INET && status == UV_ECONNREFUSED) {
			/* Maybe it listens on ::1 only. */
			char v4_error[128];
			(void)strfmt(v4_error, sizeof(v4_error), "connect %s: %s", addr,
				     strerror(-status));
			net_release(a);
			int r = health_net_start(p, AF_INET6, v4_error);
			if (r < 0)
				health_probe_check_done(p, false, v4_error, 0);
			return;
		}
		if (a->family == AF_INET6 && a->v4_error[0])
			(void)strscpy(why, sizeof(why), a->v4_error);
		else
			(void)strfmt(why, sizeof(why), "connect %s: %s", addr, strerror(-status));
		if (p->kind == HEALTH_KIND_HTTP) {
			char inner[256];
			(void)strscpy(inner, sizeof(inner), why);
			(void)strfmt(why, sizeof(why), "GET %s: %s", p->path, inner);
		}
		net_finish(a, false, why);
		return;
	}

	if (p->kind == HEALTH_KIND_TCP) {
		(void)strfmt(why, sizeof(why), "connected to %s", addr);
		net_finish(a, true, why);
		return;
	}

	uv_buf_t b = uv_buf_init(a->request, (unsigned)strlen(a->request));
	a->write_req.data = a;
	int r = uv_write(&a->write_req, (uv_stream_t *)&a->tcp, &b, 1, http_written);
	if (r >= 0)
		r = uv_read_start((uv_stream_t *)&a->tcp, http_alloc, http_read);
	if (r < 0) {
		(void)strfmt(why, sizeof(why), "GET %s: %s", p->path, strerror(-r));
		net_finish(a, false, why);
	}
}

int health_net_start(HealthProbe *p, int family, const char *v4_error)
{
	NetAttempt *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->family = family;
	if (v4_error)
		(void)strscpy(a->v4_error, sizeof(a->v4_error), v4_error);
	if (p->kind == HEALTH_KIND_HTTP) {
		_cleanup_free_ char *host = p->host_header
						? strdup(p->host_header)
						: strdupf("localhost:%u", (unsigned)p->port);
		a->request =
		    host ? strdupf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: locald-health\r\n"
				   "Accept: */*\r\nConnection: close\r\n\r\n",
				   p->path, host)
			 : NULL;
		if (!a->request) {
			free(a);
			return -ENOMEM;
		}
	}
	int r = uv_tcp_init(p->loop, &a->tcp);
	if (r < 0) {
		free(a->request);
		free(a);
		return r;
	}
	a->tcp.data = a;
	a->connect_req.data = a;
	a->probe = p;
	p->net = a;

	struct sockaddr_storage ss;
	if (family == AF_INET)
		r = uv_ip4_addr("127.0.0.1", p->port, (struct sockaddr_in *)&ss);
	else
		r = uv_ip6_addr("::1", p->port, (struct sockaddr_in6 *)&ss);
	if (r >= 0)
		r = uv_tcp_connect(&a->connect_req, &a->tcp, (struct sockaddr *)&ss, net_connected);
	if (r < 0) {
		net_release(a);
		return r;
	}
	return 0;
}
