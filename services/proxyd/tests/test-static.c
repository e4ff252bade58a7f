/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "static.h"
#include "strutil.h"
#include "test.h"

/* static.c: run the component-by-component resolver even where openat2() exists. */
extern bool static_portable_only;

static char root[4096];

static void write_file(const char *rel, const char *content)
{
	char path[8192];
	ASSERT_OK(strfmt(path, sizeof(path), "%s/%s", root, rel));
	FILE *f = fopen(path, "we");
	ASSERT_NOT_NULL(f);
	ASSERT_EQ(fwrite(content, 1, strlen(content), f), strlen(content));
	ASSERT_EQ(fclose(f), 0);
}

static void make_dir(const char *rel)
{
	char path[8192];
	ASSERT_OK(strfmt(path, sizeof(path), "%s/%s", root, rel));
	ASSERT_EQ(mkdir(path, 0755), 0);
}

static void make_link(const char *target, const char *rel)
{
	char path[8192];
	ASSERT_OK(strfmt(path, sizeof(path), "%s/%s", root, rel));
	ASSERT_EQ(symlink(target, path), 0);
}

/*
 * site/                      outside/secret.txt
 *   index.html                 (next to site/, must never be served)
 *   hello.txt  "0123456789abcdefghij"
 *   app.js, style.css, data.json, logo.svg, font.woff2, blob.bin, empty.txt
 *   docs/ (no index)  a.txt  <b>&"'.txt  sub/
 *   blog/index.html
 *   passwd → /etc/passwd     up → ../outside/secret.txt     up-dir → ../outside
 *   alias.txt → hello.txt    docs-link → docs               loop → loop
 *   fifo (a named pipe)
 */
static void setup_tree(void)
{
	ASSERT_OK(strfmt(root, sizeof(root), "%s/site", test_tmpdir()));
	char outside[4096];
	ASSERT_OK(strfmt(outside, sizeof(outside), "%s/outside", test_tmpdir()));
	ASSERT_EQ(mkdir(root, 0755), 0);
	ASSERT_EQ(mkdir(outside, 0755), 0);
	char secret[8192];
	ASSERT_OK(strfmt(secret, sizeof(secret), "%s/secret.txt", outside));
	FILE *f = fopen(secret, "we");
	ASSERT_NOT_NULL(f);
	fputs("top secret\n", f);
	fclose(f);

	write_file("index.html", "<h1>home</h1>\n");
	write_file("hello.txt", "0123456789abcdefghij");
	write_file("app.js", "export {};\n");
	write_file("style.css", "body{}\n");
	write_file("data.json", "{}\n");
	write_file("logo.svg", "<svg/>\n");
	write_file("font.woff2", "wOF2");
	write_file("blob.bin", "\x01\x02");
	write_file("empty.txt", "");
	make_dir("docs");
	write_file("docs/a.txt", "a\n");
	write_file("docs/<b>&\"'.txt", "x\n");
	make_dir("docs/sub");
	make_dir("blog");
	write_file("blog/index.html", "<h1>blog</h1>\n");
	make_link("/etc/passwd", "passwd");
	make_link("../outside/secret.txt", "up");
	make_link("../outside", "up-dir");
	make_link("hello.txt", "alias.txt");
	make_link("docs", "docs-link");
	make_link("loop", "loop");
	char fifo[8192];
	ASSERT_OK(strfmt(fifo, sizeof(fifo), "%s/fifo", root));
	ASSERT_EQ(mkfifo(fifo, 0644), 0);
}

static StaticResponse get_with(const char *method, const char *path, const char *inm,
			       const char *ims, const char *range)
{
	StaticRequest req = {
		.method = method,
		.path = path,
		.if_none_match = inm,
		.if_modified_since = ims,
		.range = range,
	};
	StaticResponse r;
	ASSERT_OK(static_resolve(root, &req, &r));
	return r;
}

static StaticResponse get(const char *path)
{
	return get_with("GET", path, NULL, NULL, NULL);
}

/* The bytes the caller would send: from the fd at offset, or the body. */
static char *content(const StaticResponse *r)
{
	char *s = calloc(1, r->length + 1);
	ASSERT_NOT_NULL(s);
	if (r->fd >= 0) {
		ASSERT_EQ(pread(r->fd, s, r->length, (off_t)r->offset), (ssize_t)r->length);
	} else {
		ASSERT_NOT_NULL(r->body);
		ASSERT_EQ(r->length, r->body_len);
		memcpy(s, r->body, r->body_len);
	}
	return s;
}

static void assert_served(const char *path, int status, const char *expected)
{
	StaticResponse r = get(path);
	if (r.status != status)
		test_fail(__FILE__, __LINE__, "GET %s: status %d, expected %d", path, r.status,
			  status);
	if (expected) {
		_cleanup_free_ char *c = content(&r);
		if (!streq(c, expected))
			test_fail(__FILE__, __LINE__, "GET %s: \"%s\", expected \"%s\"", path, c,
				  expected);
	}
	static_response_done(&r);
}

static void assert_not_found(const char *path)
{
	StaticResponse r = get(path);
	if (r.status != 404)
		test_fail(__FILE__, __LINE__, "GET %s: status %d, expected 404", path, r.status);
	ASSERT_EQ(r.fd, -1);
	ASSERT_FALSE(r.body && strstr(r.body, "secret"));
	ASSERT_FALSE(r.body && strstr(r.body, "root:"));
	static_response_done(&r);
}

static void both_resolvers(void (*body)(void))
{
	setup_tree();
	static_portable_only = false;
	body();
	static_portable_only = true;
	body();
}

static void index_and_files(void)
{
	assert_served("/", 200, "<h1>home</h1>\n");
	assert_served("/hello.txt", 200, "0123456789abcdefghij");
	assert_served("/blog/", 200, "<h1>blog</h1>\n");
	assert_served("/docs/a.txt", 200, "a\n");
	assert_served("/docs/%3Cb%3E%26%22'.txt", 200, "x\n");
	assert_served("/empty.txt", 200, "");
	/* ".." that stays inside the root, "." and doubled slashes are fine. */
	assert_served("/docs/../hello.txt", 200, "0123456789abcdefghij");
	assert_served("/docs/sub/../a.txt", 200, "a\n");
	assert_served("/docs/sub/%2E%2E/%2e%2e/docs/a.txt", 200, "a\n");
	assert_served("/./docs//a.txt", 200, "a\n");
	/* Symlinks inside the root are followed. */
	assert_served("/alias.txt", 200, "0123456789abcdefghij");
	assert_served("/docs-link/a.txt", 200, "a\n");

	StaticResponse r = get("/hello.txt");
	ASSERT_STREQ(r.content_type, "text/plain; charset=utf-8");
	ASSERT_EQ(r.file_size, 20);
	ASSERT_EQ(r.offset, 0);
	ASSERT_EQ(r.length, 20);
	ASSERT_TRUE(startswith(r.etag, "W/\"20-"));
	ASSERT_TRUE(endswith(r.last_modified, " GMT"));
	ASSERT_EQ(strlen(r.last_modified), 29);
	ASSERT_NULL(r.location);
	/* The fd is blocking again (O_NONBLOCK only guarded the open) and close-on-exec. */
	ASSERT_EQ(fcntl(r.fd, F_GETFL) & O_NONBLOCK, 0);
	ASSERT_TRUE(fcntl(r.fd, F_GETFD) & FD_CLOEXEC);
	static_response_done(&r);
	ASSERT_EQ(r.fd, -1);
}
TEST(index_and_files)
{
	both_resolvers(index_and_files);
}

static void directories(void)
{
	StaticResponse r = get("/blog");
	ASSERT_EQ(r.status, 301);
	ASSERT_STREQ(r.location, "/blog/");
	ASSERT_EQ(r.fd, -1);
	static_response_done(&r);

	/* The Location is rebuilt from the clean path: never "//host/" (an open redirect). */
	r = get("//docs");
	ASSERT_EQ(r.status, 301);
	ASSERT_STREQ(r.location, "/docs/");
	static_response_done(&r);
	r = get("/docs/sub/..%2F..%2Fdocs%2Fsub");
	ASSERT_EQ(r.status, 301);
	ASSERT_STREQ(r.location, "/docs/sub/");
	static_response_done(&r);

	/* No index.html: a listing, names escaped in text and in links. */
	r = get("/docs/");
	ASSERT_EQ(r.status, 200);
	ASSERT_STREQ(r.content_type, "text/html; charset=utf-8");
	ASSERT_EQ(r.fd, -1);
	ASSERT_NOT_NULL(r.body);
	ASSERT_EQ(r.length, r.body_len);
	ASSERT_STRCONTAINS(r.body, "Index of /docs/");
	ASSERT_STRCONTAINS(r.body, "href=\"./a.txt\">a.txt</a>");
	ASSERT_STRCONTAINS(r.body, "href=\"./sub/\">sub/</a>");
	ASSERT_STRCONTAINS(r.body,
			   "href=\"./%3Cb%3E%26%22%27.txt\">&lt;b&gt;&amp;&quot;&#39;.txt</a>");
	ASSERT_STRCONTAINS(r.body, "href=\"../\"");
	ASSERT_FALSE(strstr(r.body, "<b>"));
	ASSERT_FALSE(strstr(r.body, "<script"));
	/* Directories first. */
	ASSERT_TRUE(strstr(r.body, "sub/</a>") < strstr(r.body, "a.txt</a>"));
	static_response_done(&r);

	r = get("/docs/sub/");
	ASSERT_EQ(r.status, 200);
	ASSERT_STRCONTAINS(r.body, "(empty)");
	static_response_done(&r);

	/* A file asked for as a directory. */
	assert_not_found("/hello.txt/");
}
TEST(directories)
{
	both_resolvers(directories);
}

static void escapes_refused(void)
{
	assert_not_found("/../outside/secret.txt");
	assert_not_found("/docs/../../outside/secret.txt");
	assert_not_found("/%2e%2e/outside/secret.txt");
	assert_not_found("/%2E%2E%2Foutside%2Fsecret.txt");
	assert_not_found("/..%2f..%2f..%2f..%2fetc%2fpasswd");
	assert_not_found("/docs/%2e%2e/%2e%2e/%2e%2e/etc/passwd");
	/* Symlinks pointing out of the root, absolute or relative. */
	assert_not_found("/passwd");
	assert_not_found("/up");
	assert_not_found("/up-dir/secret.txt");
	assert_not_found("/up-dir/");
	assert_not_found("/loop");
	/* NUL, bad escapes, control bytes. */
	assert_not_found("/hello.txt%00.html");
	assert_not_found("/%00");
	assert_not_found("/hello%2");
	assert_not_found("/hello%zz");
	assert_not_found("/hello%0a.txt");
	assert_not_found("hello.txt");
	assert_not_found("");
	/* Neither a FIFO (opening it must not block) nor a missing file. */
	assert_not_found("/fifo");
	assert_not_found("/missing.txt");
	assert_not_found("/missing/a.txt");
}
TEST(escapes_refused)
{
	both_resolvers(escapes_refused);
}

static void set_mtime(const char *rel, time_t t)
{
	char path[8192];
	ASSERT_OK(strfmt(path, sizeof(path), "%s/%s", root, rel));
	struct timespec ts[2] = { { .tv_sec = t }, { .tv_sec = t } };
	ASSERT_EQ(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void conditionals(void)
{
	set_mtime("hello.txt", 1500000000);
	StaticResponse r = get("/hello.txt");
	char etag[64], lm[64];
	ASSERT_OK(strscpy(etag, sizeof(etag), r.etag));
	ASSERT_OK(strscpy(lm, sizeof(lm), r.last_modified));
	static_response_done(&r);

	r = get_with("GET", "/hello.txt", etag, NULL, NULL);
	ASSERT_EQ(r.status, 304);
	ASSERT_EQ(r.fd, -1);
	ASSERT_EQ(r.length, 0);
	ASSERT_NULL(r.body);
	ASSERT_STREQ(r.etag, etag);
	static_response_done(&r);

	/* A list, a strong form of our weak tag, "*". */
	char list[256];
	ASSERT_OK(strfmt(list, sizeof(list), "\"nope\", %s", etag + 2));
	r = get_with("GET", "/hello.txt", list, NULL, NULL);
	ASSERT_EQ(r.status, 304);
	static_response_done(&r);
	r = get_with("GET", "/hello.txt", "*", NULL, NULL);
	ASSERT_EQ(r.status, 304);
	static_response_done(&r);
	r = get_with("GET", "/hello.txt", "W/\"1-2\"", NULL, NULL);
	ASSERT_EQ(r.status, 200);
	static_response_done(&r);
	/* If-None-Match wins over If-Modified-Since. */
	r = get_with("GET", "/hello.txt", "W/\"1-2\"", lm, NULL);
	ASSERT_EQ(r.status, 200);
	static_response_done(&r);

	r = get_with("GET", "/hello.txt", NULL, lm, NULL);
	ASSERT_EQ(r.status, 304);
	static_response_done(&r);
	r = get_with("HEAD", "/hello.txt", NULL, lm, NULL);
	ASSERT_EQ(r.status, 304);
	static_response_done(&r);
	r = get_with("GET", "/hello.txt", NULL, "Thu, 01 Jan 1970 00:00:01 GMT", NULL);
	ASSERT_EQ(r.status, 200);
	static_response_done(&r);
	r = get_with("GET", "/hello.txt", NULL, "not a date", NULL);
	ASSERT_EQ(r.status, 200);
	static_response_done(&r);

	/* Touching the file changes the tag. */
	set_mtime("hello.txt", 1000000000);
	r = get_with("GET", "/hello.txt", etag, NULL, NULL);
	ASSERT_EQ(r.status, 200);
	ASSERT_STREQ(r.last_modified, "Sun, 09 Sep 2001 01:46:40 GMT");
	ASSERT_STREQ(r.etag, "W/\"20-de0b6b3a7640000\"");
	static_response_done(&r);
}
TEST(conditionals)
{
	both_resolvers(conditionals);
}

static void assert_range(const char *range, int status, const char *body, const char *cr)
{
	StaticResponse r = get_with("GET", "/hello.txt", NULL, NULL, range);
	if (r.status != status)
		test_fail(__FILE__, __LINE__, "Range %s: status %d, expected %d", range, r.status,
			  status);
	if (body) {
		_cleanup_free_ char *c = content(&r);
		if (!streq(c, body))
			test_fail(__FILE__, __LINE__, "Range %s: \"%s\", expected \"%s\"", range, c,
				  body);
	}
	ASSERT_STREQ(r.content_range, cr);
	ASSERT_EQ(r.file_size, 20);
	static_response_done(&r);
}

TEST(ranges)
{
	setup_tree();
	assert_range("bytes=0-9", 206, "0123456789", "bytes 0-9/20");
	assert_range("bytes=10-", 206, "abcdefghij", "bytes 10-19/20");
	assert_range("bytes=-5", 206, "fghij", "bytes 15-19/20");
	assert_range("bytes=5-5", 206, "5", "bytes 5-5/20");
	assert_range("bytes=15-100", 206, "fghij", "bytes 15-19/20");
	assert_range("bytes=-100", 206, "0123456789abcdefghij", "bytes 0-19/20");
	assert_range("BYTES=0-0", 206, "0", "bytes 0-0/20");
	/* Unsatisfiable. */
	assert_range("bytes=20-", 416, NULL, "bytes */20");
	assert_range("bytes=100-200", 416, NULL, "bytes */20");
	assert_range("bytes=-0", 416, NULL, "bytes */20");
	/* Ignored: several ranges, other units, nonsense → the whole file. */
	assert_range("bytes=0-1,5-6", 200, "0123456789abcdefghij", "");
	assert_range("items=0-1", 200, "0123456789abcdefghij", "");
	assert_range("bytes=5-1", 200, "0123456789abcdefghij", "");
	assert_range("bytes=abc", 200, "0123456789abcdefghij", "");
	assert_range("bytes=99999999999999999999999-", 200, "0123456789abcdefghij", "");

	/* An empty file has no satisfiable range. */
	StaticResponse r = get_with("GET", "/empty.txt", NULL, NULL, "bytes=0-");
	ASSERT_EQ(r.status, 416);
	ASSERT_STREQ(r.content_range, "bytes */0");
	static_response_done(&r);
}

TEST(head_and_methods)
{
	setup_tree();
	/* HEAD: GET's response (the caller sends only the head); Range does not apply. */
	StaticResponse r = get_with("HEAD", "/hello.txt", NULL, NULL, "bytes=0-1");
	ASSERT_EQ(r.status, 200);
	ASSERT_TRUE(r.fd >= 0);
	ASSERT_EQ(r.length, 20);
	ASSERT_STREQ(r.content_type, "text/plain; charset=utf-8");
	ASSERT_TRUE(startswith(r.etag, "W/\""));
	ASSERT_STREQ(r.content_range, "");
	static_response_done(&r);

	r = get_with("HEAD", "/docs/", NULL, NULL, NULL);
	ASSERT_EQ(r.status, 200);
	ASSERT_NOT_NULL(r.body);
	ASSERT_EQ(r.length, r.body_len);
	static_response_done(&r);

	r = get_with("HEAD", "/passwd", NULL, NULL, NULL);
	ASSERT_EQ(r.status, 404);
	ASSERT_EQ(r.fd, -1);
	static_response_done(&r);

	const char *methods[] = { "POST", "PUT", "DELETE", "OPTIONS", "get", "PATCH" };
	for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
		r = get_with(methods[i], "/hello.txt", NULL, NULL, NULL);
		ASSERT_EQ(r.status, 405);
		ASSERT_STREQ(r.allow, "GET, HEAD");
		ASSERT_EQ(r.fd, -1);
		static_response_done(&r);
	}
}

TEST(mime_types)
{
	ASSERT_STREQ(static_mime_type("index.html"), "text/html; charset=utf-8");
	ASSERT_STREQ(static_mime_type("/a/b/INDEX.HTM"), "text/html; charset=utf-8");
	ASSERT_STREQ(static_mime_type("style.css"), "text/css; charset=utf-8");
	ASSERT_STREQ(static_mime_type("app.js"), "text/javascript; charset=utf-8");
	ASSERT_STREQ(static_mime_type("mod.mjs"), "text/javascript; charset=utf-8");
	ASSERT_STREQ(static_mime_type("data.json"), "application/json");
	ASSERT_STREQ(static_mime_type("app.js.map"), "application/json");
	ASSERT_STREQ(static_mime_type("logo.svg"), "image/svg+xml");
	ASSERT_STREQ(static_mime_type("a.png"), "image/png");
	ASSERT_STREQ(static_mime_type("a.jpg"), "image/jpeg");
	ASSERT_STREQ(static_mime_type("a.jpeg"), "image/jpeg");
	ASSERT_STREQ(static_mime_type("a.gif"), "image/gif");
	ASSERT_STREQ(static_mime_type("a.webp"), "image/webp");
	ASSERT_STREQ(static_mime_type("favicon.ico"), "image/x-icon");
	ASSERT_STREQ(static_mime_type("f.woff2"), "font/woff2");
	ASSERT_STREQ(static_mime_type("m.wasm"), "application/wasm");
	ASSERT_STREQ(static_mime_type("r.txt"), "text/plain; charset=utf-8");
	ASSERT_STREQ(static_mime_type("feed.xml"), "application/xml");
	ASSERT_STREQ(static_mime_type("doc.pdf"), "application/pdf");
	ASSERT_STREQ(static_mime_type("v.mp4"), "video/mp4");
	ASSERT_STREQ(static_mime_type("blob.bin"), "application/octet-stream");
	ASSERT_STREQ(static_mime_type("Makefile"), "application/octet-stream");
	ASSERT_STREQ(static_mime_type(".htaccess"), "application/octet-stream");
	ASSERT_STREQ(static_mime_type("dir.html/file"), "application/octet-stream");
	ASSERT_STREQ(static_mime_type("trailing."), "application/octet-stream");
	ASSERT_STREQ(static_mime_type(NULL), "application/octet-stream");

	setup_tree();
	StaticResponse r = get("/logo.svg");
	ASSERT_STREQ(r.content_type, "image/svg+xml");
	static_response_done(&r);
	r = get("/");
	ASSERT_STREQ(r.content_type, "text/html; charset=utf-8");
	static_response_done(&r);
}

TEST(missing_root)
{
	ASSERT_OK(strfmt(root, sizeof(root), "%s/no-such-site", test_tmpdir()));
	StaticResponse r = get("/");
	ASSERT_EQ(r.status, 500);
	ASSERT_STRCONTAINS(r.body, "no-such-site");
	static_response_done(&r);

	StaticRequest req = { .method = "GET", .path = "/" };
	ASSERT_OK(static_resolve(NULL, &req, &r));
	ASSERT_EQ(r.status, 500);
	static_response_done(&r);
	ASSERT_ERR(static_resolve(root, NULL, &r), EINVAL);
}

TEST(unreadable_file_is_not_found)
{
	setup_tree();
	char path[8192];
	ASSERT_OK(strfmt(path, sizeof(path), "%s/hello.txt", root));
	ASSERT_EQ(chmod(path, 0), 0);
	/* As root, look as nobody (the effective uid only, so the harness can clean up). */
	bool as_root = geteuid() == 0;
	if (as_root) {
		ASSERT_EQ(chmod(test_tmpdir(), 0755), 0);
		ASSERT_EQ(seteuid(65534), 0);
	}
	assert_not_found("/hello.txt");
	static_portable_only = true;
	assert_not_found("/hello.txt");
	assert_served("/docs/a.txt", 200, "a\n");
	if (as_root)
		ASSERT_EQ(seteuid(0), 0);
}

TEST_MAIN();
