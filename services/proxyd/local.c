/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "macro.h"
#include "strutil.h"
#include "time-util.h"

#define LOCAL_MAX_FIELDS 16

typedef enum LocalStage {
	LOCAL_HEAD,
	LOCAL_BODY,
	LOCAL_DONE,
} LocalStage;

struct LocalResponse {
	int status;
	bool head_only;
	LocalStage stage;
	HttpField fields[LOCAL_MAX_FIELDS];
	char *owned[LOCAL_MAX_FIELDS * 2]; /* strings the fields point to that we free */
	size_t n_fields, n_owned;
	Http1BodyKind body_kind;
	uint64_t length; /* body bytes to send */
	uint64_t sent;
	/* The body: a buffer, or a range of a file. */
	char *body;
	int fd;
	uint64_t offset;
	uint8_t *chunk;
};

static const char *const wkday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const month[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void http_date_format(int64_t t, char buf[static 32])
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (!gmtime_r(&tt, &tm)) {
		strscpy(buf, 32, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	(void)strfmt(buf, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", wkday[tm.tm_wday % 7],
		     tm.tm_mday, month[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		     tm.tm_sec);
}

LocalResponse *local_response_free(LocalResponse *l)
{
	if (!l)
		return NULL;
	for (size_t i = 0; i < l->n_owned; i++)
		free(l->owned[i]);
	free(l->body);
	free(l->chunk);
	safe_close(l->fd);
	free(l);
	return NULL;
}

static void local_response_freep(LocalResponse **l)
{
	local_response_free(*l);
}

static int local_new(int status, bool head_only, LocalResponse **ret)
{
	LocalResponse *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->status = status;
	l->head_only = head_only;
	l->fd = -1;
	*ret = l;
	return 0;
}

/* Add a field; the strings are copied (name and value may be static or not). */
static int local_add(LocalResponse *l, const char *name, const char *value)
{
	if (l->n_fields >= LOCAL_MAX_FIELDS || l->n_owned + 2 > ELEMENTSOF(l->owned))
		return -ENOBUFS;
	char *n = strdup(name);
	if (!n)
		return -ENOMEM;
	l->owned[l->n_owned++] = n;
	char *v = strdup(value);
	if (!v)
		return -ENOMEM;
	l->owned[l->n_owned++] = v;
	l->fields[l->n_fields++] = (HttpField){
		.name = n,
		.value = v,
		.name_len = strlen(n),
		.value_len = strlen(v),
	};
	return 0;
}

static int local_add_common(LocalResponse *l, const char *content_type, bool has_body)
{
	char date[32];
	http_date_format((int64_t)(now_realtime() / USEC_PER_SEC), date);
	int r = local_add(l, "Date", date);
	if (r < 0)
		return r;
	if (content_type && has_body) {
		r = local_add(l, "Content-Type", content_type);
		if (r < 0)
			return r;
	}
	if (has_body) {
		char len[32];
		(void)strfmt(len, sizeof(len), "%" PRIu64, l->length);
		r = local_add(l, "Content-Length", len);
		if (r < 0)
			return r;
		l->body_kind = HTTP1_BODY_LENGTH;
	} else
		l->body_kind = HTTP1_BODY_NONE;
	return 0;
}

int local_response_new_page(Page *page, bool head_only, LocalResponse **ret)
{
	_cleanup_(local_response_freep) LocalResponse *l = NULL;
	int r = local_new(page->status, head_only, &l);
	if (r < 0)
		return r;
	l->body = TAKE_PTR(page->body);
	l->length = page->body_len;
	r = local_add_common(
	    l, page->content_type ? page->content_type : "text/plain; charset=utf-8", true);
	if (r < 0)
		return r;
	bool own_cache_control = false;
	for (size_t i = 0; i < page->n_extra && i < ELEMENTSOF(page->extra_name); i++)
		if (page->extra_name[i] && strcasecmp(page->extra_name[i], "Cache-Control") == 0)
			own_cache_control = true;
	if (!own_cache_control) {
		r = local_add(l, "Cache-Control", "no-store");
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < page->n_extra && i < ELEMENTSOF(page->extra_name); i++) {
		if (!page->extra_name[i] || !page->extra_value[i])
			continue;
		r = local_add(l, page->extra_name[i], page->extra_value[i]);
		if (r < 0)
			return r;
	}
	page_done(page);
	*ret = TAKE_PTR(l);
	return 0;
}

int local_response_new_text(int status, const char *content_type, const char *body, bool head_only,
			    LocalResponse **ret)
{
	Page p = {
		.status = status,
		.content_type = content_type,
		.body = strdup(body),
		.body_len = strlen(body),
	};
	if (!p.body)
		return -ENOMEM;
	int r = local_response_new_page(&p, head_only, ret);
	page_done(&p);
	return r;
}

int local_response_new_static(StaticResponse *sr, bool head_only, LocalResponse **ret)
{
	_cleanup_(local_response_freep) LocalResponse *l = NULL;
	int r = local_new(sr->status, head_only, &l);
	if (r < 0)
		return r;

	bool has_body = sr->status != 304;
	const char *type = sr->content_type;
	if (sr->body) {
		l->body = TAKE_PTR(sr->body);
		l->length = sr->body_len;
		if (!type)
			type = "text/plain; charset=utf-8";
	} else if (sr->status == 200 || sr->status == 206) {
		/* A HEAD may come without an open file; the length is still the file's. */
		l->fd = TAKE_FD(sr->fd);
		l->offset = sr->offset;
		l->length = sr->length;
		if (l->fd < 0 && !head_only && l->length > 0)
			return -EBADF;
	} else
		l->length = 0;

	r = local_add_common(l, type ? type : "application/octet-stream", has_body);
	if (r < 0)
		return r;
	if (sr->etag[0]) {
		r = local_add(l, "ETag", sr->etag);
		if (r < 0)
			return r;
	}
	if (sr->last_modified[0]) {
		r = local_add(l, "Last-Modified", sr->last_modified);
		if (r < 0)
			return r;
	}
	if (sr->content_range[0]) {
		r = local_add(l, "Content-Range", sr->content_range);
		if (r < 0)
			return r;
	}
	if (sr->location) {
		r = local_add(l, "Location", sr->location);
		if (r < 0)
			return r;
	}
	if (sr->status == 405) {
		r = local_add(l, "Allow", "GET, HEAD");
		if (r < 0)
			return r;
	}
	if (sr->status == 200 || sr->status == 206 || sr->status == 304 || sr->status == 416) {
		r = local_add(l, "Accept-Ranges", "bytes");
		if (r < 0)
			return r;
	}
	r = local_add(l, "Cache-Control", "no-cache");
	if (r < 0)
		return r;
	static_response_done(sr);
	*ret = TAKE_PTR(l);
	return 0;
}

int local_response_status(const LocalResponse *l)
{
	return l->status;
}

int local_response_pump(LocalResponse *l, const DownstreamOps *ops, void *ds, uint64_t *bytes)
{
	if (l->stage == LOCAL_HEAD) {
		l->stage = l->head_only || l->body_kind == HTTP1_BODY_NONE || l->length == 0
			       ? LOCAL_DONE
			       : LOCAL_BODY;
		ops->head(ds, l->status, l->fields, l->n_fields, l->body_kind, l->length);
	}
	while (l->stage == LOCAL_BODY) {
		uint64_t left = l->length - l->sent;
		if (left == 0) {
			l->stage = LOCAL_DONE;
			break;
		}
		size_t n = (size_t)MIN(left, (uint64_t)LOCAL_CHUNK);
		const uint8_t *p;
		if (l->fd >= 0) {
			if (!l->chunk) {
				l->chunk = malloc(LOCAL_CHUNK);
				if (!l->chunk)
					return -ENOMEM;
			}
			ssize_t k = pread(l->fd, l->chunk, n, (off_t)(l->offset + l->sent));
			if (k < 0) {
				if (errno == EINTR)
					continue;
				return negative_errno();
			}
			if (k == 0)
				return -EIO; /* the file shrank under us */
			n = (size_t)k;
			p = l->chunk;
		} else
			p = (const uint8_t *)l->body + l->sent;
		l->sent += n;
		*bytes += n;
		if (l->sent == l->length)
			l->stage = LOCAL_DONE;
		if (!ops->data(ds, p, n))
			return l->stage == LOCAL_DONE ? (ops->end(ds), 1) : 0;
	}
	if (l->stage == LOCAL_DONE) {
		ops->end(ds);
		return 1;
	}
	return 0;
}
