/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>

#include "proxyd.h"
#include "test.h"

static void write_config(const char *text)
{
	char path[4096];
	(void)snprintf(path, sizeof path, "%s/locald.toml", test_tmpdir());
	FILE *f = fopen(path, "we");
	ASSERT_NOT_NULL(f);
	fputs(text, f);
	fclose(f);
	setenv("LOCALD_CONFIG_DIR", test_tmpdir(), 1);
	unsetenv("LOCALD_HTTP_PORT");
	unsetenv("LOCALD_HTTPS_PORT");
}

TEST(defaults_without_file)
{
	setenv("LOCALD_CONFIG_DIR", test_tmpdir(), 1);
	unsetenv("LOCALD_HTTP_PORT");
	unsetenv("LOCALD_HTTPS_PORT");
	ProxydConfig c;
	char *err = NULL;
	ASSERT_OK(proxyd_config_load(&c, &err));
	ASSERT_EQ(c.http_port, -1);
	ASSERT_EQ(c.https_port, -1);
	ASSERT_TRUE(c.workers >= 1 && c.workers <= 4);
	ASSERT_EQ(c.connect_timeout_ms, 5000);
	ASSERT_EQ(c.upstream_timeout_ms, 0);
	ASSERT_EQ(c.start_wait_ms, 30000);
	ASSERT_EQ(c.loading_page_ms, 500);
	ASSERT_EQ(c.client_idle_ms, 75000);
	ASSERT_EQ(c.header_timeout_ms, 30000);
	ASSERT_EQ(c.max_connections_per_client, 4096);
	ASSERT_EQ(c.h1_limits.max_head_bytes, 64 * 1024);
	ASSERT_NULL(err);
}

TEST(proxy_table_read)
{
	write_config("[superd]\nwhatever = 1\n\n[proxy]\nhttp_port = 8081\nhttps_port = 0\n"
		     "workers = 2\nconnect_timeout = \"2s\"\nupstream_timeout = \"1m30s\"\n"
		     "start_timeout = \"10s\"\nloading_page_after = \"250ms\"\n"
		     "client_idle_timeout = 60\nheader_timeout = \"5s\"\n"
		     "max_connections_per_client = 2000\nipv6 = false\n");
	ProxydConfig c;
	char *err = NULL;
	ASSERT_OK(proxyd_config_load(&c, &err));
	ASSERT_EQ(c.http_port, 8081);
	ASSERT_EQ(c.https_port, 0);
	ASSERT_EQ(c.workers, 2);
	ASSERT_EQ(c.connect_timeout_ms, 2000);
	ASSERT_EQ(c.upstream_timeout_ms, 90000);
	ASSERT_EQ(c.start_wait_ms, 10000);
	ASSERT_EQ(c.loading_page_ms, 250);
	ASSERT_EQ(c.client_idle_ms, 60000);
	ASSERT_EQ(c.header_timeout_ms, 5000);
	ASSERT_EQ(c.max_connections_per_client, 2000);
	ASSERT_FALSE(c.ipv6);
}

TEST(unknown_key_has_position)
{
	write_config("[proxy]\nhttp_port = 8081\nhttp_prot = 1\n");
	ProxydConfig c = { .http_port = 4242 };
	char *err = NULL;
	ASSERT_ERR(proxyd_config_load(&c, &err), EINVAL);
	ASSERT_STRCONTAINS(err, "locald.toml:3:1: unknown key \"http_prot\" in [proxy]");
	ASSERT_EQ(c.http_port, 4242); /* untouched on failure */
	free(err);
}

TEST(bad_values)
{
	static const char *cases[][2] = {
		{ "[proxy]\nconnect_timeout = \"soon\"\n",
		  ":2:1: [proxy] connect_timeout: \"soon\" is not a duration" },
		{ "[proxy]\nhttp_port = 70000\n",
		  ":2:1: [proxy] http_port: out of range (0..65535)" },
		{ "[proxy]\nworkers = \"two\"\n",
		  "[proxy] workers: expected an integer, got string" },
		{ "[proxy]\nheader_timeout = \"0s\"\n",
		  "header_timeout: must be greater than zero" },
		{ "proxy = 3\n", "proxy: expected a table" },
		{ "[proxy\n", "locald.toml:1:" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		write_config(cases[i][0]);
		ProxydConfig c;
		char *err = NULL;
		ASSERT_TRUE(proxyd_config_load(&c, &err) < 0);
		ASSERT_STRCONTAINS(err, cases[i][1]);
		free(err);
	}
}

TEST(environment_overrides)
{
	write_config("[proxy]\nhttp_port = 8081\nhttps_port = 8444\n");
	setenv("LOCALD_HTTP_PORT", "0", 1);
	setenv("LOCALD_HTTPS_PORT", "9443", 1);
	ProxydConfig c;
	char *err = NULL;
	ASSERT_OK(proxyd_config_load(&c, &err));
	ASSERT_EQ(c.http_port, 0);
	ASSERT_EQ(c.https_port, 9443);

	setenv("LOCALD_HTTP_PORT", "http", 1);
	ASSERT_ERR(proxyd_config_load(&c, &err), EINVAL);
	ASSERT_STRCONTAINS(err, "$LOCALD_HTTP_PORT: \"http\" is not a port");
	free(err);
}

TEST_MAIN();
