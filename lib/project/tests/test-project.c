/* SPDX-License-Identifier: MIT */
/* The model from valid configs: defaults, every key, host names and URLs, compatibility. */
#include <signal.h>

#include "paths.h"
#include "project-test-util.h"
#include "strutil.h"

TEST(minimal_defaults)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml("[project]\n"
			    "name = \"shop\"\n"
			    "\n"
			    "[services.web]\n"
			    "command = \"python3 -m http.server $PORT\"\n",
			    &p, &d));
	ASSERT_CLEAN(&d);
	ASSERT_STREQ(p->name, "shop");
	ASSERT_STREQ(p->domain, "shop.localhost");
	ASSERT_EQ(p->name_pos.line, 2);
	ASSERT_EQ(p->name_pos.col, 8);
	ASSERT_EQ(p->source, PROJECT_SOURCE_TOML);
	ASSERT_TRUE(p->dir[0] == '/');
	ASSERT_TRUE(endswith(p->dir, "/shop"));
	ASSERT_TRUE(endswith(p->config_path, "/shop/locald.toml"));
	ASSERT_NULL(p->dotenv_path);
	ASSERT_EQ(p->n_services, 1);

	Service *s = &p->services[0];
	ASSERT_STREQ(s->name, "web");
	ASSERT_EQ(s->type, SERVICE_EXEC);
	ASSERT_STREQ(s->command, "python3 -m http.server $PORT");
	ASSERT_NULL(s->argv);
	ASSERT_STREQ(s->workdir, p->dir);
	ASSERT_EQ(s->port, 0);
	ASSERT_EQ(s->stop_signal, SIGTERM);
	ASSERT_EQ(s->stop_timeout_ms, 5000);
	ASSERT_EQ(s->restart.policy, RESTART_ON_FAILURE);
	ASSERT_EQ(s->restart.max_restarts, 5);
	ASSERT_EQ(s->restart.backoff_ms, 1000);
	ASSERT_EQ(s->restart.max_backoff_ms, 30000);
	ASSERT_EQ(s->health_check.type, HEALTH_CHECK_AUTO);
	ASSERT_EQ(s->health_check.interval_ms, 1000);
	ASSERT_EQ(s->health_check.timeout_ms, 1000);
	ASSERT_EQ(s->health_check.retries, 3);
	ASSERT_EQ(s->build.kind, BUILD_NONE);
	ASSERT_NULL(s->depends_on);
	ASSERT_EQ(s->env.n, 0);
	ASSERT_STREQ(s->host, "shop.localhost");
	ASSERT_EQ(s->pos.name.line, 4);
	ASSERT_EQ(s->pos.command.line, 5);
	ASSERT_EQ(s->pos.command.col, 11);
	ASSERT_EQ(s->pos.port.line, 0);
	ASSERT_TRUE(project_find_service(p, "web") == s);
	ASSERT_NULL(project_find_service(p, "api"));
}

TEST(every_key)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(
	    load_toml("[project]\n"
		      "name = \"shop\"\n"
		      "domain = \"Shop.Test\"\n"
		      "\n"
		      "[services.db]\n"
		      "type = \"postgres\"\n"
		      "version = 16\n"
		      "port = 5433\n"
		      "\n"
		      "[services.api]\n"
		      "type = \"exec\"\n"
		      "command = \"./api\"\n"
		      "args = [\"--port\", \"$PORT\"]\n"
		      "workdir = \"./backend/\"\n"
		      "port = 4000\n"
		      "depends_on = [\"db\"]\n"
		      "stop_signal = \"INT\"\n"
		      "stop_timeout = \"10s\"\n"
		      "restart = { policy = \"always\", max_restarts = 0, backoff = \"250ms\", "
		      "max_backoff = \"1m\" }\n"
		      "build = { builder = \"paketo/builder\", buildpacks = [\"a/b\", \"c/d\"] }\n"
		      "env = { MODE = \"dev\", WORKERS = 4, DEBUG = true }\n"
		      "[services.api.health_check]\n"
		      "type = \"http\"\n"
		      "path = \"/health\"\n"
		      "interval = \"2s\"\n"
		      "timeout = 3\n"
		      "retries = 5\n"
		      "start_period = \"1m30s\"\n"
		      "\n"
		      "[services.cache]\n"
		      "type = \"container\"\n"
		      "image = \"redis:7\"\n"
		      "container_port = 6379\n"
		      "workdir = \"/data\"\n"
		      "command = \"redis-server --save ''\"\n"
		      "\n"
		      "[services.docs]\n"
		      "type = \"site\"\n"
		      "path = \"docs/out\"\n"
		      "build = \"make html\"\n"
		      "\n"
		      "[services.jobs]\n"
		      "type = \"worker\"\n"
		      "command = [\"python3\", \"-u\", \"jobs.py\"]\n"
		      "health_check = \"test -f /tmp/ready\"\n"
		      "restart = \"no\"\n"
		      "stop_signal = 3\n",
		      &p, &d));
	ASSERT_CLEAN(&d);
	ASSERT_STREQ(p->domain, "shop.test");
	ASSERT_EQ(p->n_services, 5);

	Service *db = &p->services[0];
	ASSERT_EQ(db->type, SERVICE_POSTGRES);
	ASSERT_STREQ(db->version, "16");
	ASSERT_EQ(db->port, 5433);
	ASSERT_STREQ(db->host, "db.shop.test");

	Service *api = &p->services[1];
	ASSERT_NULL(api->command);
	ASSERT_EQ(strv_length(api->argv), 3);
	ASSERT_STREQ(api->argv[0], "./api");
	ASSERT_STREQ(api->argv[2], "$PORT");
	_cleanup_free_ char *backend = path_join(p->dir, "backend");
	ASSERT_STREQ(api->workdir, backend);
	ASSERT_EQ(api->port, 4000);
	ASSERT_EQ(api->pos.port.line, 15);
	ASSERT_EQ(strv_length(api->depends_on), 1);
	ASSERT_STREQ(api->depends_on[0], "db");
	ASSERT_EQ(api->depends_on_pos[0].line, 16);
	ASSERT_EQ(api->depends_on_pos[0].col, 15);
	ASSERT_EQ(api->stop_signal, SIGINT);
	ASSERT_EQ(api->stop_timeout_ms, 10000);
	ASSERT_EQ(api->restart.policy, RESTART_ALWAYS);
	ASSERT_EQ(api->restart.max_restarts, 0);
	ASSERT_EQ(api->restart.backoff_ms, 250);
	ASSERT_EQ(api->restart.max_backoff_ms, 60000);
	ASSERT_EQ(api->build.kind, BUILD_BUILDPACKS);
	ASSERT_STREQ(api->build.builder, "paketo/builder");
	ASSERT_EQ(strv_length(api->build.buildpacks), 2);
	ASSERT_EQ(api->env.n, 3);
	ASSERT_STREQ(env_list_get(&api->env, "MODE")->value, "dev");
	ASSERT_STREQ(env_list_get(&api->env, "WORKERS")->value, "4");
	ASSERT_STREQ(env_list_get(&api->env, "DEBUG")->value, "true");
	ASSERT_EQ(env_list_get(&api->env, "MODE")->pos.line, 21);
	ASSERT_EQ(api->health_check.type, HEALTH_CHECK_HTTP);
	ASSERT_STREQ(api->health_check.path, "/health");
	ASSERT_EQ(api->health_check.interval_ms, 2000);
	ASSERT_EQ(api->health_check.timeout_ms, 3000);
	ASSERT_EQ(api->health_check.retries, 5);
	ASSERT_EQ(api->health_check.start_period_ms, 90000);
	ASSERT_EQ(api->health_check.pos.line, 22);

	Service *cache = &p->services[2];
	ASSERT_EQ(cache->type, SERVICE_CONTAINER);
	ASSERT_STREQ(cache->image, "redis:7");
	ASSERT_EQ(cache->container_port, 6379);
	ASSERT_STREQ(cache->workdir, "/data"); /* inside the container */
	ASSERT_STREQ(cache->command, "redis-server --save ''");

	Service *docs = &p->services[3];
	ASSERT_EQ(docs->type, SERVICE_SITE);
	_cleanup_free_ char *out = path_join(p->dir, "docs/out");
	ASSERT_STREQ(docs->path, out);
	ASSERT_EQ(docs->build.kind, BUILD_COMMAND);
	ASSERT_STREQ(docs->build.command, "make html");

	Service *jobs = &p->services[4];
	ASSERT_EQ(jobs->type, SERVICE_WORKER);
	ASSERT_EQ(strv_length(jobs->argv), 3);
	ASSERT_STREQ(jobs->argv[2], "jobs.py");
	ASSERT_EQ(jobs->health_check.type, HEALTH_CHECK_COMMAND);
	ASSERT_STREQ(jobs->health_check.command, "test -f /tmp/ready");
	ASSERT_EQ(jobs->restart.policy, RESTART_NO);
	ASSERT_EQ(jobs->stop_signal, SIGQUIT);
	ASSERT_NULL(jobs->host);
}

TEST(hosts_and_urls)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml("[project]\nname = \"shop\"\n"
			    "[services.shop]\ncommand = \"a\"\n"
			    "[services.api]\ncommand = \"b\"\n"
			    "[services.jobs]\ntype = \"worker\"\ncommand = \"c\"\n",
			    &p, &d));
	ASSERT_CLEAN(&d);
	Service *shop = project_find_service(p, "shop"), *api = project_find_service(p, "api"),
		*jobs = project_find_service(p, "jobs");
	ASSERT_STREQ(shop->host, "shop.localhost"); /* named like the project */
	ASSERT_STREQ(api->host, "api.shop.localhost");
	ASSERT_NULL(jobs->host);
	ASSERT_FALSE(service_has_port(jobs));

	_cleanup_free_ char *u1 = NULL, *u2 = NULL, *u3 = NULL, *u4 = NULL;
	ASSERT_OK(project_service_url(p, api, 443, &u1));
	ASSERT_STREQ(u1, "https://api.shop.localhost");
	ASSERT_OK(project_service_url(p, api, 8443, &u2));
	ASSERT_STREQ(u2, "https://api.shop.localhost:8443");
	ASSERT_OK(project_service_url(p, shop, 0, &u3));
	ASSERT_STREQ(u3, "https://shop.localhost");
	ASSERT_ERR(project_service_url(p, jobs, 443, &u4), ENOENT);
	ASSERT_NULL(u4);
}

TEST(web_wins_the_bare_domain)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml("[project]\nname = \"shop\"\n"
			    "[services.shop]\ncommand = \"a\"\n"
			    "[services.web]\ncommand = \"b\"\n",
			    &p, &d));
	ASSERT_DIAG(&d, DIAG_WARNING, 3, 11, "named like the project");
	ASSERT_STREQ(project_find_service(p, "web")->host, "shop.localhost");
	ASSERT_STREQ(project_find_service(p, "shop")->host, "shop.shop.localhost");
}

TEST(worker_port_key_has_no_effect)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml("[project]\nname = \"shop\"\n"
			    "[services.jobs]\ntype = \"worker\"\ncommand = \"c\"\nport = 3000\n"
			    "[services.web]\ncommand = \"b\"\npath = \"x\"\n",
			    &p, &d));
	ASSERT_EQ(d.n_errors, 0);
	ASSERT_DIAG(&d, DIAG_WARNING, 6, 1, "\"port\" has no effect on a service of type worker");
	ASSERT_DIAG(&d, DIAG_WARNING, 9, 1, "\"path\" has no effect on a service of type exec");
	ASSERT_EQ(project_find_service(p, "jobs")->port, 0);
}

TEST(empty_project_is_valid)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml("[project]\nname = \"rust-simple\"\n", &p, &d));
	ASSERT_CLEAN(&d);
	ASSERT_EQ(p->n_services, 0);
	ASSERT_STREQ(p->domain, "rust-simple.localhost");
}

TEST(restart_spellings)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml("[project]\nname = \"shop\"\n"
			    "[services.a]\ncommand = \"a\"\nrestart = \"never\"\n"
			    "[services.b]\ncommand = \"a\"\nrestart = \"on_failure\"\n"
			    "[services.c]\ncommand = \"a\"\nrestart = { backoff = \"1m\" }\n",
			    &p, &d));
	ASSERT_CLEAN(&d);
	ASSERT_EQ(p->services[0].restart.policy, RESTART_NO);
	ASSERT_EQ(p->services[1].restart.policy, RESTART_ON_FAILURE);
	/* a first delay longer than the default cap raises the cap */
	ASSERT_EQ(p->services[2].restart.backoff_ms, 60000);
	ASSERT_EQ(p->services[2].restart.max_backoff_ms, 60000);
}

TEST(enum_names_round_trip)
{
	for (ServiceType t = 0; t < _SERVICE_TYPE_MAX; t++)
		ASSERT_EQ(service_type_from_string(service_type_to_string(t)), t);
	for (HealthCheckType t = HEALTH_CHECK_HTTP; t < _HEALTH_CHECK_TYPE_MAX; t++)
		ASSERT_EQ(health_check_type_from_string(health_check_type_to_string(t)), t);
	for (RestartPolicy t = 0; t < _RESTART_POLICY_MAX; t++)
		ASSERT_EQ(restart_policy_from_string(restart_policy_to_string(t)), t);
	ASSERT_EQ(service_type_from_string("Exec"), _SERVICE_TYPE_INVALID);
	ASSERT_EQ(health_check_type_from_string("auto"), _HEALTH_CHECK_TYPE_INVALID);
	ASSERT_NULL(service_type_to_string(_SERVICE_TYPE_MAX));
}

TEST(names)
{
	ASSERT_TRUE(project_name_is_valid("shop"));
	ASSERT_TRUE(project_name_is_valid("test-postgres-3"));
	ASSERT_FALSE(project_name_is_valid("-shop"));
	ASSERT_FALSE(project_name_is_valid("shop-"));
	ASSERT_FALSE(project_name_is_valid("Shop"));
	ASSERT_FALSE(project_name_is_valid("my_app"));
	ASSERT_FALSE(project_name_is_valid(""));
	ASSERT_FALSE(project_name_is_valid("a.b"));
	ASSERT_FALSE(project_name_is_valid(
	    "0123456789012345678901234567890123456789012345678901234567890123"));

	static const struct {
		const char *dir, *name;
	} cases[] = {
		{ "/home/me/My_App", "my-app" },    { "/srv/shop/", "shop" },
		{ "/x/--Hi There!--", "hi-there" }, { "/", "project" },
		{ "/x/ünïcode", "n-code" },         { "relative", "relative" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *n = NULL;
		ASSERT_OK(project_name_from_dir(cases[i].dir, &n));
		ASSERT_STREQ(n, cases[i].name);
		ASSERT_TRUE(project_name_is_valid(n));
	}
}

TEST(diag_format_and_suggest)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	ASSERT_OK(diag_add(&d, DIAG_ERROR, "locald.toml", 7, 8, "write port = 80, without quotes",
			   "expected %s for \"%s\", got string", "an integer", "port"));
	ASSERT_OK(diag_add(&d, DIAG_WARNING, "a\nb", 0, 0, NULL, "line\none"));
	ASSERT_OK(diag_add(&d, DIAG_ERROR, NULL, 3, 4, NULL, "no file"));
	_cleanup_free_ char *a = diag_to_string(&d.items[0]);
	_cleanup_free_ char *b = diag_to_string(&d.items[1]);
	_cleanup_free_ char *c = diag_to_string(&d.items[2]);
	ASSERT_STREQ(a, "locald.toml:7:8: error: expected an integer for \"port\", got string "
			"(hint: write port = 80, without quotes)");
	ASSERT_STREQ(b, "a\\nb: warning: line\\none");
	ASSERT_STREQ(c, "error: no file");
	ASSERT_EQ(d.n_errors, 2);
	ASSERT_EQ(d.n_warnings, 1);

	static const char *const keys[] = { "command", "depends_on", "port", "env", NULL };
	ASSERT_STREQ(diag_suggest("comand", keys), "command");
	ASSERT_STREQ(diag_suggest("dependson", keys), "depends_on");
	ASSERT_STREQ(diag_suggest("depends-on", keys), "depends_on");
	ASSERT_STREQ(diag_suggest("Port", keys), "port");
	ASSERT_STREQ(diag_suggest("prot", keys), "port"); /* transposition */
	ASSERT_NULL(diag_suggest("xyzzy", keys));
	ASSERT_NULL(diag_suggest("e", keys));
}

TEST(diag_list_is_bounded)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	for (size_t i = 0; i < DIAG_LIST_MAX + 10; i++)
		ASSERT_OK(diag_add(&d, i % 2 ? DIAG_WARNING : DIAG_ERROR, "f",
				   (uint32_t)(DIAG_LIST_MAX + 10 - i), 1, NULL, "m%zu", i));
	ASSERT_EQ(d.n, DIAG_LIST_MAX);
	ASSERT_EQ(d.n_dropped, 10);
	ASSERT_EQ(d.n_errors + d.n_warnings, DIAG_LIST_MAX + 10);
	diag_list_sort(&d);
	for (size_t i = 1; i < d.n; i++)
		ASSERT_TRUE(d.items[i - 1].line <= d.items[i].line);
}

TEST(long_user_text_is_truncated)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_free_ char *key = malloc(5001);
	memset(key, 'k', 5000);
	key[5000] = 0;
	_cleanup_free_ char *toml = strdupf("[project]\nname = \"x\"\n%s = 1\n", key);
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(toml, &p, &d));
	const Diag *x = ASSERT_DIAG(&d, DIAG_WARNING, 3, 1, "unknown key \"kkkk");
	ASSERT_TRUE(strlen(x->message) <= 520);
	ASSERT_TRUE(endswith(x->message, "…"));
}

TEST(demo_project_is_clean)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	int r = project_load(LOCALD_SOURCE_ROOT "/examples/demo", &p, &d);
	if (r < 0) {
		_cleanup_free_ char *all = diags_dump(&d);
		test_fail(__FILE__, __LINE__, "demo failed to load (%d):\n%s", r, all);
	}
	ASSERT_CLEAN(&d);
	ASSERT_STREQ(p->name, "demo");
	ASSERT_EQ(p->n_services, 4);

	bool have_worker = false, have_url_ref = false, have_explicit_check = false;
	for (size_t i = 0; i < p->n_services; i++) {
		Service *s = &p->services[i];
		have_worker |= s->type == SERVICE_WORKER;
		have_explicit_check |= s->health_check.type != HEALTH_CHECK_AUTO && s->depends_on;
		for (size_t k = 0; k < s->env.n; k++)
			have_url_ref |= strstr(s->env.vars[k].value, "${services.api.url}") != NULL;
	}
	ASSERT_TRUE(have_worker);
	ASSERT_TRUE(have_url_ref);
	ASSERT_TRUE(have_explicit_check);

	ProjectWaves w;
	ASSERT_OK(project_start_waves(p, &w, NULL));
	ASSERT_TRUE(w.n_waves >= 3);
	project_waves_done(&w);
}

TEST_MAIN();
