/* SPDX-License-Identifier: MIT */
/* shim-grammar.c: ports, host names, shim.conf and the /etc/hosts block rewrite. */

#include "test.h"
#include "../shim.h"

static int name(const ShimConf *conf, const char *s)
{
	return shim_host_name_check(conf, s, strlen(s));
}

TEST(ports)
{
	uint16_t p;
	ASSERT_OK(shim_parse_port("80", &p));
	ASSERT_EQ(p, 80);
	ASSERT_OK(shim_parse_port("65535", &p));
	ASSERT_ERR(shim_parse_port("65536", &p), EINVAL);
	ASSERT_ERR(shim_parse_port("0", &p), EINVAL);
	ASSERT_ERR(shim_parse_port("080", &p), EINVAL);
	ASSERT_ERR(shim_parse_port("", &p), EINVAL);
	ASSERT_ERR(shim_parse_port("+80", &p), EINVAL);
	ASSERT_ERR(shim_parse_port("80 ", &p), EINVAL);
	ASSERT_ERR(shim_parse_port("0x50", &p), EINVAL);
	ASSERT_ERR(shim_parse_port("999999999999", &p), EINVAL);
	ASSERT_TRUE(shim_port_allowed(NULL, 80));
	ASSERT_TRUE(shim_port_allowed(NULL, 443));
	ASSERT_FALSE(shim_port_allowed(NULL, 22));
	ASSERT_FALSE(shim_port_allowed(NULL, 8080));
	ShimConf c = { .ports = { 8443 }, .n_ports = 1 };
	ASSERT_TRUE(shim_port_allowed(&c, 8443));
	ASSERT_FALSE(shim_port_allowed(&c, 22));
}

TEST(host_names)
{
	ASSERT_OK(name(NULL, "web.localhost"));
	ASSERT_OK(name(NULL, "web.shop.localhost"));
	ASSERT_OK(name(NULL, "a-1.b2.localhost"));
	ASSERT_ERR(name(NULL, "localhost"), EINVAL);
	ASSERT_ERR(name(NULL, ".localhost"), EINVAL);
	ASSERT_ERR(name(NULL, "web.localhost."), EINVAL);
	ASSERT_ERR(name(NULL, "web..localhost"), EINVAL);
	ASSERT_ERR(name(NULL, "we b.localhost"), EINVAL);
	ASSERT_ERR(name(NULL, "web\n.localhost"), EINVAL);
	ASSERT_ERR(name(NULL, "Web.localhost"), EINVAL);
	ASSERT_ERR(name(NULL, "-web.localhost"), EINVAL);
	ASSERT_ERR(name(NULL, "web-.localhost"), EINVAL);
	ASSERT_ERR(name(NULL, "web_x.localhost"), EINVAL);
	ASSERT_ERR(name(NULL, "example.com"), EINVAL);
	ASSERT_ERR(name(NULL, "evillocalhost"), EINVAL);
	ASSERT_ERR(name(NULL, "web.localhost.com"), EINVAL);
	ASSERT_ERR(name(NULL, "web.test"), EINVAL);
	char buf[300];
	memset(buf, 'a', 64);
	snprintf(buf + 64, sizeof(buf) - 64, ".localhost");
	ASSERT_ERR(name(NULL, buf), EINVAL); /* 64-byte label */
	memset(buf, 'a', 63);
	snprintf(buf + 63, sizeof(buf) - 63, ".localhost");
	ASSERT_OK(name(NULL, buf));
	/* 254 bytes in total: a.a.a....localhost */
	size_t n = 0;
	while (n < 244) {
		buf[n++] = 'a';
		buf[n++] = '.';
	}
	snprintf(buf + n, sizeof(buf) - n, "localhost");
	ASSERT_EQ(strlen(buf), 253);
	ASSERT_OK(name(NULL, buf));
	memmove(buf + 1, buf, strlen(buf) + 1);
	buf[0] = 'b';
	ASSERT_ERR(name(NULL, buf), EINVAL);
	ShimConf c = { 0 };
	unsigned line;
	ASSERT_OK(shim_conf_parse("allow-suffix test\n", 18, &c, &line));
	ASSERT_OK(name(&c, "web.test"));
	ASSERT_ERR(name(&c, "test"), EINVAL);
	ASSERT_ERR(name(&c, "webtest"), EINVAL);
}

TEST(names_from_stdin)
{
	char in[] = "a.localhost\nb.localhost\n";
	char *names[4];
	size_t bad = 0;
	ASSERT_EQ(shim_names_parse(NULL, in, strlen(in), names, 4, &bad), 2);
	ASSERT_STREQ(names[0], "a.localhost");
	ASSERT_STREQ(names[1], "b.localhost");
	char in2[] = "a.localhost\nb.localhost";
	ASSERT_EQ(shim_names_parse(NULL, in2, strlen(in2), names, 4, &bad), 2);
	ASSERT_STREQ(names[1], "b.localhost");
	char in3[] = "a.localhost\n\nb.localhost\n";
	ASSERT_ERR(shim_names_parse(NULL, in3, strlen(in3), names, 4, &bad), EINVAL);
	ASSERT_EQ(bad, 2);
	char in4[] = "a.localhost\r\n";
	ASSERT_ERR(shim_names_parse(NULL, in4, strlen(in4), names, 4, &bad), EINVAL);
	char in5[] = "a.localhost\nb.localhost\nc.localhost\n";
	ASSERT_ERR(shim_names_parse(NULL, in5, strlen(in5), names, 2, &bad), E2BIG);
	char in6[] = "a.localhost\0evil\n";
	ASSERT_ERR(shim_names_parse(NULL, in6, sizeof(in6) - 1, names, 4, &bad), EINVAL);
	ASSERT_EQ(shim_names_parse(NULL, in6, 0, names, 4, &bad), 0);
}

TEST(conf)
{
	ShimConf c;
	unsigned line = 0;
	const char *ok = "# comment\n\n  allow-port 8443\nallow-suffix test \t\nallow-port 3000";
	ASSERT_OK(shim_conf_parse(ok, strlen(ok), &c, &line));
	ASSERT_EQ(c.n_ports, 2);
	ASSERT_EQ(c.ports[0], 8443);
	ASSERT_EQ(c.ports[1], 3000);
	ASSERT_EQ(c.n_suffixes, 1);
	ASSERT_STREQ(c.suffixes[0], ".test");
	const char *bad[] = { "allow-port",        "allow-port 0",     "allow-port 80 81",
			      "port 80",           "allow-suffix a.b", "allow-suffix -x",
			      "allow-suffix Test", "allow-port 70000" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		line = 0;
		ASSERT_ERR(shim_conf_parse(bad[i], strlen(bad[i]), &c, &line), EINVAL);
		ASSERT_EQ(line, 1);
	}
	char many[1024];
	size_t used = 0;
	for (int i = 0; i < 17; i++)
		used += (size_t)snprintf(many + used, sizeof(many) - used, "allow-port 1000\n");
	ASSERT_ERR(shim_conf_parse(many, strlen(many), &c, &line), EINVAL);
	ASSERT_EQ(line, 17);
}

static char *rewrite(const char *in, char *const *names, size_t n, int *ret)
{
	char *out = NULL;
	size_t len = 0;
	*ret = shim_hosts_rewrite(in, strlen(in), names, n, &out, &len);
	if (*ret < 0)
		return NULL;
	char *s = malloc(len + 1);
	memcpy(s, out, len);
	s[len] = '\0';
	free(out);
	return s;
}

TEST(hosts_append_replace_remove)
{
	char *names[] = { (char *)"a.localhost", (char *)"b.localhost" };
	const char *base = "127.0.0.1\tlocalhost\n# keep me  \n::1 ip6-localhost\n";
	int r;
	char *s = rewrite(base, names, 2, &r);
	ASSERT_OK(r);
	ASSERT_STREQ(s, "127.0.0.1\tlocalhost\n# keep me  \n::1 ip6-localhost\n"
			"# BEGIN locald\n127.0.0.1 a.localhost\n::1 a.localhost\n"
			"127.0.0.1 b.localhost\n::1 b.localhost\n# END locald\n");
	/* Same again: unchanged. */
	char *s2 = rewrite(s, names, 2, &r);
	ASSERT_STREQ(s2, s);
	/* One name: block replaced in place, the rest kept. */
	size_t mid_size = strlen(s) + 32;
	char *mid = malloc(mid_size);
	snprintf(mid, mid_size, "%sother line\n", s);
	char *s3 = rewrite(mid, names + 1, 1, &r);
	ASSERT_STREQ(s3, "127.0.0.1\tlocalhost\n# keep me  \n::1 ip6-localhost\n"
			 "# BEGIN locald\n127.0.0.1 b.localhost\n::1 b.localhost\n# END locald\n"
			 "other line\n");
	/* Zero names: block removed, every other byte back. */
	char *s4 = rewrite(s3, NULL, 0, &r);
	ASSERT_STREQ(s4, "127.0.0.1\tlocalhost\n# keep me  \n::1 ip6-localhost\nother line\n");
	char *s5 = rewrite(base, NULL, 0, &r);
	ASSERT_STREQ(s5, base);
	free(s);
	free(s2);
	free(mid);
	free(s3);
	free(s4);
	free(s5);
}

TEST(hosts_no_trailing_newline_and_empty)
{
	char *names[] = { (char *)"a.localhost" };
	int r;
	char *s = rewrite("127.0.0.1 localhost", names, 1, &r);
	ASSERT_STREQ(s, "127.0.0.1 localhost\n# BEGIN locald\n127.0.0.1 a.localhost\n"
			"::1 a.localhost\n# END locald\n");
	free(s);
	s = rewrite("", names, 1, &r);
	ASSERT_STREQ(s, "# BEGIN locald\n127.0.0.1 a.localhost\n::1 a.localhost\n# END locald\n");
	free(s);
	/* CRLF markers are recognised; the rest is kept as it was. */
	s = rewrite("x\r\n# BEGIN locald\r\n1.2.3.4 old\r\n# END locald\r\ny\r\n", names, 1, &r);
	ASSERT_STREQ(s, "x\r\n# BEGIN locald\n127.0.0.1 a.localhost\n::1 a.localhost\n"
			"# END locald\ny\r\n");
	free(s);
}

TEST(hosts_damaged_markers_refused)
{
	char *names[] = { (char *)"a.localhost" };
	const char *bad[] = {
		"# BEGIN locald\n1.2.3.4 x\n",
		"1.2.3.4 x\n# END locald\n",
		"# END locald\n# BEGIN locald\n",
		"# BEGIN locald\n# BEGIN locald\n# END locald\n",
		"# BEGIN locald\n# END locald\n# BEGIN locald\n# END locald\n",
		"# BEGIN locald\n# END locald\n# END locald\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		int r;
		ASSERT_NULL(rewrite(bad[i], names, 1, &r));
		ASSERT_EQ(r, -EBADMSG);
	}
	/* A marker that is only part of a line is just text. */
	int r;
	char *s = rewrite("#  BEGIN locald\nfoo # END locald\n", names, 1, &r);
	ASSERT_OK(r);
	free(s);
}

TEST_MAIN();
