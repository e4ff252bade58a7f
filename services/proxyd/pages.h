/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * proxyd's own responses: the pages it renders when it cannot (yet) proxy, and the
 * dashboard placeholder. Pure functions, any thread. HTML pages are self-contained
 * (inline CSS, no script from anywhere, no CDN), escape every value they show, use the
 * system font stack, and work in light and dark mode. Plain-text variants are for
 * clients that did not ask for HTML (curl, fetch from code).
 *
 * Each fills a Page: status, content type, body (malloc'd), and extra header fields
 * (e.g. "Refresh: 1" on the loading page; "Retry-After"). page_done() frees it.
 */

#include <stdbool.h>
#include <stddef.h>

#include "routes.h"

typedef struct Page {
	int status;
	const char *content_type; /* static */
	char *body;
	size_t body_len;
	/* Extra fields: name/value pairs, static or owned by the Page (freed by page_done). */
	char *extra_name[4], *extra_value[4];
	size_t n_extra;
} Page;

void page_done(Page *p);

/* Whether the request prefers HTML: Accept contains text/html (browsers' navigations). */
bool page_wants_html(const char *accept);

/* 404 for a host with no route: lists the known hosts as links (scheme as requested). */
int page_not_found(const char *host, char *const *known_hosts, bool https, bool html,
		   Page *ret);
/* 503 "starting <service>" page with its last log lines; refreshes itself every second. */
int page_starting(const Route *route, bool html, Page *ret);
/* 502 for a crashed/failed/blocked service or an upstream that refused or died: its
 * state, last exit and last 20 log lines. `detail` is the proxy's own reason
 * ("connection refused by 127.0.0.1:41234"), may be NULL. */
int page_bad_gateway(const Route *route, const char *detail, bool html, Page *ret);
/* 504 when the service did not become ready in time / the upstream timed out. */
int page_gateway_timeout(const Route *route, const char *detail, bool html, Page *ret);
/* A generic error page (400, 413, 431, 500, 503 "superd is not running", ...). */
int page_error(int status, const char *detail, bool html, Page *ret);
/* The dashboard placeholder at locald.localhost and localhost until issue 6. */
int page_dashboard(char *const *known_hosts, bool https, Page *ret);
