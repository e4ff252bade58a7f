/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "pages.h"
#include "strutil.h"
#include "test.h"

/* A writable copy of a literal, for char * arrays (-Wwrite-strings). */
#define W(s) ((char[]){ s })

static const char *extra(const Page *p, const char *name)
{
	for (size_t i = 0; i < p->n_extra; i++)
		if (strcasecmp(p->extra_name[i], name) == 0)
			return p->extra_value[i];
	return NULL;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void assert_page_sane(const Page *p)
{
	ASSERT_NOT_NULL(p->body);
	ASSERT_EQ(strlen(p->body), p->body_len);
	ASSERT_TRUE(utf8_is_valid(p->body, p->body_len));
	/* No escape sequence or control byte other than newline and tab reaches a client. */
	for (size_t i = 0; i < p->body_len; i++) {
		unsigned char c = (unsigned char)p->body[i];
		ASSERT_TRUE(c >= 0x20 || c == '\n' || c == '\t');
		ASSERT_TRUE(c != 0x7f);
	}
	ASSERT_FALSE(strstr(p->body, "\xc2\x9b"));
	if (strstr(p->content_type, "text/html")) {
		/* Self-contained: no script, nothing loaded from elsewhere. */
		ASSERT_FALSE(strstr(p->body, "<script"));
		ASSERT_FALSE(strstr(p->body, "src="));
		ASSERT_FALSE(strstr(p->body, "<link"));
		ASSERT_FALSE(strstr(p->body, "@import"));
		ASSERT_FALSE(strstr(p->body, "url("));
		ASSERT_STRCONTAINS(p->body, "prefers-color-scheme:dark");
		ASSERT_STRCONTAINS(p->body, "system-ui");
	}
}

static char *lines_hostile[] = {
	W("Server listening on http://127.0.0.1:3000"),
	W("\x1b[31merror\x1b[0m: <script>alert(1)</script> & \"quotes\" 'single'"),
	W("bad utf-8: \xff\xfe\xc3 end"),
	W("osc title \x1b]0;evil title\x07 after"),
	W("c1 csi \xc2\x9b"
	  "31m red"),
	W("bell\x07 nul-free \x01\x02 controls"),
	NULL,
};

static Route hostile_route(void)
{
	return (Route){
		.host = "web.shop.localhost",
		.kind = ROUTE_SERVICE,
		.project = "shop",
		.service = "<script>web</script>&\"'",
		.readiness = ROUTE_STARTING,
		.state = "starting",
		.reason = "waiting for <db> & \"cache\"",
		.last_exit = "exited with status 1",
		.upstream_text = "127.0.0.1:41234",
		.last_lines = lines_hostile,
	};
}

TEST(wants_html)
{
	ASSERT_TRUE(page_wants_html("text/html,application/xhtml+xml,application/xml;q=0.9,"
				    "*/*;q=0.8"));
	ASSERT_TRUE(page_wants_html("application/json, TEXT/HTML;q=0.5"));
	ASSERT_FALSE(page_wants_html("*/*"));
	ASSERT_FALSE(page_wants_html(NULL));
	ASSERT_FALSE(page_wants_html(""));
	ASSERT_FALSE(page_wants_html("application/json"));
	ASSERT_FALSE(page_wants_html("text/html;q=0"));
	ASSERT_FALSE(page_wants_html("text/html; q=0.000"));
	ASSERT_FALSE(page_wants_html("text/htmlx"));
	ASSERT_TRUE(page_wants_html("text/html;level=1;q=0.1"));
}

TEST(starting_page_refreshes_and_escapes)
{
	Route route = hostile_route();
	Page p;
	ASSERT_OK(page_starting(&route, true, &p));
	assert_page_sane(&p);
	ASSERT_EQ(p.status, 503);
	ASSERT_STRCONTAINS(p.content_type, "text/html");
	ASSERT_STREQ(extra(&p, "Refresh"), "1");
	ASSERT_STREQ(extra(&p, "Retry-After"), "1");
	ASSERT_STRCONTAINS(p.body, "<meta http-equiv=\"refresh\" content=\"1\">");
	ASSERT_STRCONTAINS(p.body, "Starting &lt;script&gt;web&lt;/script&gt;&amp;&quot;&#39;");
	ASSERT_STRCONTAINS(p.body, "waiting for &lt;db&gt; &amp; &quot;cache&quot;");
	ASSERT_STRCONTAINS(p.body, "<pre>Server listening on http://127.0.0.1:3000\n");
	ASSERT_STRCONTAINS(p.body, "error: &lt;script&gt;alert(1)&lt;/script&gt; &amp; "
				   "&quot;quotes&quot; &#39;single&#39;");
	ASSERT_STRCONTAINS(p.body, "bad utf-8: \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
	ASSERT_STRCONTAINS(p.body, "osc title  after");
	ASSERT_STRCONTAINS(p.body, "c1 csi  red");
	ASSERT_STRCONTAINS(p.body, "bell nul-free  controls");
	ASSERT_STRCONTAINS(p.body, "shop");
	ASSERT_FALSE(strstr(p.body, "[31m"));
	ASSERT_FALSE(strstr(p.body, "evil title"));
	page_done(&p);
	ASSERT_NULL(p.body);
	ASSERT_EQ(p.n_extra, 0);
}

TEST(starting_page_plain_text)
{
	Route route = hostile_route();
	Page p;
	ASSERT_OK(page_starting(&route, false, &p));
	assert_page_sane(&p);
	ASSERT_EQ(p.status, 503);
	ASSERT_STRCONTAINS(p.content_type, "text/plain");
	ASSERT_STREQ(extra(&p, "Refresh"), "1");
	/* One line of summary first, then the details. */
	ASSERT_TRUE(startswith(p.body, "starting <script>web</script>&\"' (project shop); "
				       "retry in a moment\n"));
	ASSERT_STRCONTAINS(p.body, "\nstate: starting\n");
	ASSERT_STRCONTAINS(p.body, "  error: <script>alert(1)</script>");
	ASSERT_FALSE(strstr(p.body, "\x1b"));
	page_done(&p);
}

TEST(starting_page_without_logs_or_names)
{
	Route route = { .host = "api.localhost", .kind = ROUTE_SERVICE };
	Page p;
	ASSERT_OK(page_starting(&route, true, &p));
	assert_page_sane(&p);
	ASSERT_STRCONTAINS(p.body, "Starting api.localhost");
	ASSERT_STRCONTAINS(p.body, "No output yet.");
	page_done(&p);
}

TEST(bad_gateway_shows_exit_and_last_20_lines)
{
	char *lines[31];
	char storage[30][32];
	for (int i = 0; i < 30; i++) {
		(void)strfmt(storage[i], sizeof(storage[i]), "log line %02d", i);
		lines[i] = storage[i];
	}
	lines[30] = NULL;
	Route route = {
		.host = "web.shop.localhost",
		.project = "shop",
		.service = "web",
		.readiness = ROUTE_DOWN,
		.state = "failed",
		.reason = "exited 5 times in 10 s",
		.last_exit = "killed by signal SIGSEGV",
		.last_lines = lines,
	};
	Page p;
	ASSERT_OK(page_bad_gateway(&route, NULL, true, &p));
	assert_page_sane(&p);
	ASSERT_EQ(p.status, 502);
	ASSERT_NULL(extra(&p, "Refresh"));
	ASSERT_STRCONTAINS(p.body, "web crashed");
	ASSERT_STRCONTAINS(p.body, "killed by signal SIGSEGV");
	ASSERT_STRCONTAINS(p.body, "exited 5 times in 10 s");
	ASSERT_STRCONTAINS(p.body, "<code>localctl logs shop:web</code>");
	ASSERT_FALSE(strstr(p.body, "log line 09"));
	ASSERT_STRCONTAINS(p.body, "log line 10");
	ASSERT_STRCONTAINS(p.body, "log line 29");
	ASSERT_EQ(count(p.body, "log line "), 20);
	page_done(&p);

	ASSERT_OK(page_bad_gateway(&route, "connection refused by 127.0.0.1:41234", false, &p));
	assert_page_sane(&p);
	ASSERT_TRUE(startswith(p.body, "502 web crashed: connection refused by "
				       "127.0.0.1:41234\n"));
	ASSERT_STRCONTAINS(p.body, "last exit: killed by signal SIGSEGV\n");
	ASSERT_STRCONTAINS(p.body, "run `localctl logs shop:web`");
	ASSERT_EQ(count(p.body, "log line "), 20);
	page_done(&p);
}

TEST(bad_gateway_escapes_everything)
{
	Route route = hostile_route();
	route.readiness = ROUTE_READY;
	route.state = "running";
	Page p;
	ASSERT_OK(page_bad_gateway(&route, "<b>refused</b> & \"gone\"", true, &p));
	assert_page_sane(&p);
	ASSERT_FALSE(strstr(p.body, "<script>"));
	ASSERT_FALSE(strstr(p.body, "<b>"));
	ASSERT_STRCONTAINS(p.body, "&lt;b&gt;refused&lt;/b&gt; &amp; &quot;gone&quot;");
	ASSERT_STRCONTAINS(p.body, "is not answering");
	ASSERT_STRCONTAINS(p.body, "localctl logs shop:&lt;script&gt;");
	page_done(&p);
}

TEST(long_and_huge_values_are_bounded)
{
	size_t n = 1 << 20;
	char *big = malloc(n + 1);
	ASSERT_NOT_NULL(big);
	memset(big, 'x', n);
	big[n] = 0;
	/* Multi-byte characters at the cut must stay whole. */
	memcpy(big + 2040, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9);
	char *lines[] = { big, big, NULL };
	Route route = { .service = big, .project = "p", .state = big, .last_lines = lines };
	Page p;
	ASSERT_OK(page_bad_gateway(&route, big, true, &p));
	assert_page_sane(&p);
	ASSERT_TRUE(p.body_len < 64 * 1024);
	page_done(&p);
	ASSERT_OK(page_starting(&route, false, &p));
	assert_page_sane(&p);
	ASSERT_TRUE(p.body_len < 64 * 1024);
	page_done(&p);
	free(big);
}

TEST(gateway_timeout_page)
{
	Route route = {
		.host = "api.shop.localhost",
		.project = "shop",
		.service = "api",
		.readiness = ROUTE_STARTING,
		.state = "starting",
		.reason = "health check failing: GET /health returned 500",
	};
	Page p;
	ASSERT_OK(page_gateway_timeout(&route, "not ready after 30 s", true, &p));
	assert_page_sane(&p);
	ASSERT_EQ(p.status, 504);
	ASSERT_STRCONTAINS(p.body, "api did not become ready in time");
	ASSERT_STRCONTAINS(p.body, "not ready after 30 s");
	ASSERT_STRCONTAINS(p.body, "GET /health returned 500");
	page_done(&p);
	ASSERT_OK(page_gateway_timeout(&route, NULL, false, &p));
	ASSERT_TRUE(startswith(p.body, "504 api did not become ready in time\n"));
	page_done(&p);
}

TEST(not_found_lists_hosts_as_links)
{
	char *hosts[] = { W("api.shop.localhost"), W("shop.localhost"), W("<x>.localhost"), NULL };
	Page p;
	ASSERT_OK(page_not_found("nope.localhost", hosts, true, true, &p));
	assert_page_sane(&p);
	ASSERT_EQ(p.status, 404);
	ASSERT_STRCONTAINS(p.body, "No site at nope.localhost");
	ASSERT_STRCONTAINS(
	    p.body, "<a href=\"https://api.shop.localhost/\">https://api.shop.localhost/</a>");
	ASSERT_STRCONTAINS(p.body, "href=\"https://shop.localhost/\"");
	ASSERT_STRCONTAINS(p.body, "https://&lt;x&gt;.localhost/");
	page_done(&p);

	/* The port the user typed carries over to the links; the default one does not. */
	ASSERT_OK(page_not_found("nope.localhost:8080", hosts, false, true, &p));
	ASSERT_STRCONTAINS(p.body, "href=\"http://shop.localhost:8080/\"");
	page_done(&p);
	ASSERT_OK(page_not_found("nope.localhost:443", hosts, true, true, &p));
	ASSERT_STRCONTAINS(p.body, "href=\"https://shop.localhost/\"");
	page_done(&p);
	ASSERT_OK(page_not_found("[::1]:8443", hosts, true, false, &p));
	assert_page_sane(&p);
	ASSERT_TRUE(startswith(p.body, "404 no site at [::1]:8443\n"));
	ASSERT_STRCONTAINS(p.body, "  https://api.shop.localhost:8443/\n");
	page_done(&p);

	ASSERT_OK(page_not_found("<script>", NULL, false, true, &p));
	assert_page_sane(&p);
	ASSERT_STRCONTAINS(p.body, "No site at &lt;script&gt;");
	ASSERT_STRCONTAINS(p.body, "localctl up");
	page_done(&p);
	ASSERT_OK(page_not_found(NULL, NULL, false, false, &p));
	assert_page_sane(&p);
	page_done(&p);
}

TEST(error_pages)
{
	Page p;
	ASSERT_OK(page_error(431, NULL, true, &p));
	assert_page_sane(&p);
	ASSERT_EQ(p.status, 431);
	ASSERT_STRCONTAINS(p.body, "431 Request Header Fields Too Large");
	page_done(&p);
	ASSERT_OK(page_error(503, "superd is not running", false, &p));
	ASSERT_STREQ(p.body, "503 Service Unavailable: superd is not running\n");
	page_done(&p);
	ASSERT_OK(page_error(500, "<oops>", true, &p));
	ASSERT_STRCONTAINS(p.body, "&lt;oops&gt;");
	page_done(&p);
	ASSERT_ERR(page_error(200, NULL, true, &p), EINVAL);
	ASSERT_ERR(page_error(-1, NULL, false, &p), EINVAL);
}

TEST(dashboard_placeholder)
{
	char *hosts[] = { W("shop.localhost"), W("web.shop.localhost"), NULL };
	Page p;
	ASSERT_OK(page_dashboard(hosts, false, &p));
	assert_page_sane(&p);
	ASSERT_EQ(p.status, 200);
	ASSERT_STRCONTAINS(p.body, "dashboard is coming");
	ASSERT_STRCONTAINS(p.body, "href=\"http://web.shop.localhost/\"");
	page_done(&p);
	ASSERT_OK(page_dashboard(NULL, true, &p));
	assert_page_sane(&p);
	ASSERT_STRCONTAINS(p.body, "No hosts are routed yet");
	page_done(&p);
}

TEST_MAIN();
