/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Static sites (`type = "site"`): resolve a request to a file under a root directory and
 * decide the response; the caller sends the head and streams the bytes from the fd.
 *
 *   - Only GET and HEAD (others: 405 with Allow).
 *   - The path is percent-decoded, must not contain NUL, and is resolved component by
 *     component with openat(O_NOFOLLOW) from an O_PATH fd of the root, or with
 *     openat2(RESOLVE_BENEATH) where available; ".." that would leave the root and any
 *     symlink that points outside it → 404 (never 403: do not confirm existence).
 *     Symlinks inside the root are followed.
 *   - A directory: without a trailing slash → 301 to path + "/"; with one → its
 *     index.html, else a generated listing (HTML, names escaped).
 *   - MIME type from the extension (a built-in table of the common web types; text
 *     types get "; charset=utf-8"); unknown → application/octet-stream.
 *   - ETag (W/"<size>-<mtime ns hex>"), Last-Modified, If-None-Match → 304,
 *     If-Modified-Since → 304, single Range "bytes=a-b", "a-", "-n" → 206 with
 *     Content-Range; unsatisfiable → 416; multiple ranges → whole file (200).
 *   - Accept-Ranges: bytes; Cache-Control: no-cache (development: always revalidate).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct StaticRequest {
	const char *method;
	const char *path; /* request target's path, before '?', still percent-encoded */
	const char *if_none_match, *if_modified_since, *range; /* NULL if absent */
} StaticRequest;

typedef struct StaticResponse {
	int status;          /* 200, 206, 301, 304, 404, 405, 416, 500 */
	int fd;              /* open file to send (200/206), else -1; the caller closes it */
	uint64_t offset, length; /* bytes of fd to send; also the Content-Length */
	uint64_t file_size;
	const char *content_type; /* static string */
	char etag[64];
	char last_modified[64];   /* IMF-fixdate */
	char content_range[96];   /* 206/416 */
	char *location;           /* 301: malloc'd */
	char *body;               /* generated listing or short error text: malloc'd */
	size_t body_len;
	/* HEAD gets GET's response, fd and body included (Range aside: ignored for HEAD);
	 * the caller sends the head only. With a body, length == body_len. */
	const char *allow; /* 405: the Allow field ("GET, HEAD"); else NULL */
} StaticResponse;

/* Returns 0 and fills *ret (always a response, errors included), or -ENOMEM. */
int static_resolve(const char *root, const StaticRequest *req, StaticResponse *ret);
void static_response_done(StaticResponse *r);
const char *static_mime_type(const char *path);
