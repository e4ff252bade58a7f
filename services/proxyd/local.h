/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * proxyd's own responses sent through DownstreamOps: a rendered Page (pages.h) or a
 * static-site file (static.h). The response owns what it sends; local_response_pump()
 * pushes head, body and end as far as the downstream takes them and is called again
 * after the downstream resumes. Bodies are sent in chunks of LOCAL_CHUNK bytes (a file is
 * read with pread as it goes, never whole).
 *
 * Fields: Content-Type, Content-Length, Date, and Cache-Control: no-store for pages
 * (they describe a moment), plus the page's extra fields; a static response gets the
 * fields static.h describes (ETag, Last-Modified, Accept-Ranges, Content-Range,
 * Location, Cache-Control: no-cache, Allow on 405). HEAD gets the head only.
 */

#include <stdbool.h>
#include <stdint.h>

#include "exchange.h"
#include "pages.h"
#include "static.h"

#define LOCAL_CHUNK (64 * 1024)

typedef struct LocalResponse LocalResponse;

/* Take the page's content (*page is emptied) / the static response's fd and strings. */
int local_response_new_page(Page *page, bool head_only, LocalResponse **ret);
int local_response_new_static(StaticResponse *sr, bool head_only, LocalResponse **ret);
/* A response with a body given as text ("application/json" for /api, ...). */
int local_response_new_text(int status, const char *content_type, const char *body, bool head_only,
			    LocalResponse **ret);
LocalResponse *local_response_free(LocalResponse *l);

int local_response_status(const LocalResponse *l);

/*
 * Send what the downstream takes. Returns 1 when everything was sent (end included),
 * 0 when ops->data returned false (call again after the downstream resumes), or -errno
 * when the file could not be read after the head went out (the caller aborts). Adds the
 * body bytes sent to *bytes.
 */
int local_response_pump(LocalResponse *l, const DownstreamOps *ops, void *ds, uint64_t *bytes);

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") for `t` (seconds since the epoch). */
void http_date_format(int64_t t, char buf[static 32]);
