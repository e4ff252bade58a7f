/* SPDX-License-Identifier: MIT */
/* Finding and reading files: Procfile projects, .env, paths, limits. */
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "project-test-util.h"
#include "strutil.h"

TEST(procfile_alone)
{
	_cleanup_free_ char *dir = make_dir("My_Shop");
	write_file(dir, "Procfile",
		   "# processes\n"
		   "\n"
		   "web: python3 -m http.server $PORT\n"
		   "  worker:while true; do echo 'working...'; sleep 1; done  \r\n"
		   "release_task: ./migrate\n");
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(project_load(dir, &p, &d));
	ASSERT_CLEAN(&d);
	ASSERT_EQ(p->source, PROJECT_SOURCE_PROCFILE);
	ASSERT_STREQ(p->name, "my-shop");
	ASSERT_STREQ(p->domain, "my-shop.localhost");
	ASSERT_TRUE(endswith(p->config_path, "/Procfile"));
	ASSERT_EQ(p->n_services, 3);
	ASSERT_STREQ(p->services[0].name, "web");
	ASSERT_EQ(p->services[0].type, SERVICE_EXEC);
	ASSERT_STREQ(p->services[0].host, "my-shop.localhost");
	ASSERT_STREQ(p->services[0].command, "python3 -m http.server $PORT");
	ASSERT_EQ(p->services[0].pos.name.line, 3);
	ASSERT_EQ(p->services[0].pos.command.col, 6);
	ASSERT_STREQ(p->services[1].name, "worker");
	ASSERT_EQ(p->services[1].type, SERVICE_WORKER);
	ASSERT_STREQ(p->services[1].command, "while true; do echo 'working...'; sleep 1; done");
	ASSERT_EQ(p->services[1].pos.name.col, 3);
	ASSERT_NULL(p->services[1].host);
	ASSERT_EQ(p->services[2].type, SERVICE_WORKER);
	ASSERT_STREQ(p->services[2].workdir, p->dir);
}

TEST(procfile_errors)
{
	_cleanup_free_ char *dir = make_dir("pf");
	write_file(dir, "Procfile",
		   "web: ok\n"
		   "this line has no colon\n"
		   ": no name\n"
		   "empty:\n"
		   "web: again\n"
		   "we b: x\n");
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	Project *p = NULL;
	ASSERT_ERR(project_load(dir, &p, &d), EINVAL);
	ASSERT_NULL(p);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 2, 5, "expected ':' after the process name");
	ASSERT_STRCONTAINS(x->hint, "name: command");
	ASSERT_TRUE(endswith(x->file, "pf/Procfile"));
	ASSERT_DIAG(&d, DIAG_ERROR, 3, 1, "expected a process name");
	ASSERT_DIAG(&d, DIAG_ERROR, 4, 7, "expected a command after ':'");
	ASSERT_DIAG(&d, DIAG_ERROR, 5, 1, "process \"web\" is defined twice (first on line 1)");
	ASSERT_DIAG(&d, DIAG_ERROR, 6, 3, "expected ':' after the process name");
	ASSERT_EQ(d.n_errors, 5);
}

TEST(toml_wins_over_procfile)
{
	_cleanup_free_ char *dir = make_dir("both");
	write_file(dir, "Procfile", "web: from-procfile\n");
	write_file(dir, "locald.toml",
		   "[project]\nname = \"both\"\n[services.web]\ncommand = \"from-toml\"\n");
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(project_load(dir, &p, &d));
	ASSERT_EQ(p->source, PROJECT_SOURCE_TOML);
	ASSERT_STREQ(p->services[0].command, "from-toml");

	/* Naming the Procfile loads it instead; any other file name is read as TOML. */
	_cleanup_(project_freep) Project *q = NULL, *o = NULL;
	_cleanup_free_ char *procfile = path_join(dir, "Procfile");
	ASSERT_OK(project_load(procfile, &q, &d));
	ASSERT_EQ(q->source, PROJECT_SOURCE_PROCFILE);
	ASSERT_STREQ(q->services[0].command, "from-procfile");
	write_file(dir, "other.toml", "[project]\nname = \"other\"\n");
	_cleanup_free_ char *other = path_join(dir, "other.toml");
	ASSERT_OK(project_load(other, &o, &d));
	ASSERT_STREQ(o->name, "other");
	ASSERT_TRUE(endswith(o->config_path, "/both/other.toml"));
	ASSERT_STREQ(o->dir, p->dir);
}

TEST(nothing_to_load)
{
	_cleanup_free_ char *dir = make_dir("empty");
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	Project *p = NULL;
	ASSERT_ERR(project_load(dir, &p, &d), ENOENT);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 0, 0, "no locald.toml or Procfile here");
	ASSERT_STRCONTAINS(x->hint, "localctl init");

	_cleanup_free_ char *missing = path_join(dir, "nope");
	ASSERT_ERR(project_load(missing, &p, &d), ENOENT);
	ASSERT_NULL(p);
}

TEST(size_limits)
{
	_cleanup_free_ char *dir = make_dir("big");
	_cleanup_free_ char *big = malloc(PROJECT_CONFIG_MAX + 2);
	memset(big, '#', PROJECT_CONFIG_MAX + 1);
	big[PROJECT_CONFIG_MAX + 1] = 0;
	write_file(dir, "locald.toml", big);
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	Project *p = NULL;
	ASSERT_ERR(project_load(dir, &p, &d), EFBIG);
	ASSERT_DIAG(&d, DIAG_ERROR, 0, 0, "file is larger than 1048576 bytes");

	/* Exactly at the limit is fine (a file of comments). */
	big[PROJECT_CONFIG_MAX - 1] = '\n';
	big[PROJECT_CONFIG_MAX] = 0;
	memcpy(big, "[project]\nname = \"big\"\n", 24);
	write_file(dir, "locald.toml", big);
	_cleanup_diag_list_ DiagList d2 = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *q = NULL;
	ASSERT_OK(project_load(dir, &q, &d2));
}

TEST(config_not_regular)
{
	_cleanup_free_ char *dir = make_dir("fifo");
	_cleanup_free_ char *fifo = path_join(dir, "locald.toml");
	ASSERT_OK(mkfifo(fifo, 0600) < 0 ? -errno : 0);
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	Project *p = NULL;
	/* Not a regular file: neither picked from the directory nor read when named. */
	ASSERT_ERR(project_load(dir, &p, &d), ENOENT);
	ASSERT_TRUE(project_load(fifo, &p, &d) < 0);
	ASSERT_DIAG(&d, DIAG_ERROR, 0, 0, "not a regular file");
}

TEST(dotenv_forms)
{
	_cleanup_free_ char *dir = make_dir("env");
	write_file(dir, "locald.toml", "[project]\nname = \"env\"\n");
	write_file(dir, ".env",
		   "# comment\n"
		   "\n"
		   "PLAIN=value with spaces   \n"
		   "export EXPORTED=yes\n"
		   "  SPACED = around # trailing comment\n"
		   "HASH=a#b\n"
		   "SINGLE='lit $HOME \\n # not a comment'\n"
		   "DOUBLE=\"tab\\there\\nnew \\\"q\\\" \\\\ \\$ \\x\"  # c\n"
		   "MULTI=\"line1\n"
		   "line2\"\n"
		   "EMPTY=\n"
		   "EMPTYQ=''\n"
		   "PLAIN=override\n"
		   "CRLF=dos\r\n"
		   "LAST=no-newline");
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(project_load(dir, &p, &d));
	ASSERT_CLEAN(&d);
	ASSERT_TRUE(endswith(p->dotenv_path, "/env/.env"));
	const EnvList *e = &p->env;
	ASSERT_STREQ(env_list_get(e, "PLAIN")->value, "override");
	ASSERT_EQ(env_list_get(e, "PLAIN")->pos.line, 13);
	ASSERT_STREQ(e->vars[0].key, "PLAIN"); /* keeps its first place */
	ASSERT_STREQ(env_list_get(e, "EXPORTED")->value, "yes");
	ASSERT_STREQ(env_list_get(e, "SPACED")->value, "around");
	ASSERT_EQ(env_list_get(e, "SPACED")->pos.col, 12);
	ASSERT_STREQ(env_list_get(e, "HASH")->value, "a#b");
	ASSERT_STREQ(env_list_get(e, "SINGLE")->value, "lit $HOME \\n # not a comment");
	ASSERT_STREQ(env_list_get(e, "DOUBLE")->value, "tab\there\nnew \"q\" \\ $ \\x");
	ASSERT_STREQ(env_list_get(e, "MULTI")->value, "line1\nline2");
	ASSERT_STREQ(env_list_get(e, "EMPTY")->value, "");
	ASSERT_STREQ(env_list_get(e, "EMPTYQ")->value, "");
	ASSERT_STREQ(env_list_get(e, "CRLF")->value, "dos");
	ASSERT_STREQ(env_list_get(e, "LAST")->value, "no-newline");
	ASSERT_EQ(env_list_get(e, "LAST")->pos.line, 15);
	ASSERT_EQ(e->n, 11);
}

TEST(dotenv_errors)
{
	_cleanup_free_ char *dir = make_dir("envbad");
	write_file(dir, "locald.toml", "[project]\nname = \"envbad\"\n");
	write_file(dir, ".env",
		   "GOOD=1\n"
		   "1BAD=x\n"
		   "NOEQUALS value\n"
		   "Q=\"closed\" junk\n"
		   "ALSO_GOOD=2\n"
		   "OPEN='never closed\n"
		   "LOST=3\n");
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	Project *p = NULL;
	ASSERT_ERR(project_load(dir, &p, &d), EINVAL);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 2, 1, "expected a variable name");
	ASSERT_TRUE(endswith(x->file, "envbad/.env"));
	ASSERT_DIAG(&d, DIAG_ERROR, 3, 10, "expected '=' after the variable name");
	ASSERT_DIAG(&d, DIAG_ERROR, 4, 12, "unexpected text after the closing quote");
	ASSERT_DIAG(&d, DIAG_ERROR, 6, 6, "unterminated single-quoted value");
	ASSERT_EQ(d.n_errors, 4);

	/* The good lines still parse (for tools that want the partial model). */
	EnvList env = { 0 };
	DiagList d2 = DIAG_LIST_INIT;
	static const char text[] = "GOOD=1\n1BAD=x\nALSO_GOOD=2\n";
	ASSERT_OK(dotenv_parse(text, sizeof(text) - 1, ".env", &env, &d2));
	ASSERT_EQ(env.n, 2);
	ASSERT_EQ(d2.n_errors, 1);
	env_list_done(&env);
	diag_list_done(&d2);
}

TEST(env_layering)
{
	_cleanup_free_ char *dir = make_dir("layers");
	write_file(dir, "locald.toml",
		   "[project]\nname = \"layers\"\n"
		   "[services.web]\ncommand = \"x\"\nport = 8080\n"
		   "env = { FROM_SERVICE = \"svc\", SHARED = \"service\", SELF = "
		   "\"${services.web.url}\" }\n");
	write_file(dir, ".env", "SHARED=dotenv\nFROM_DOTENV=dot\nHOME=/dotenv-home\n");
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(project_load(dir, &p, &d));
	ASSERT_CLEAN(&d);

	/* strvs hold non-const strings; these literals are never written through */
	char *inherited[] = { (char *)"HOME=/home/me", (char *)"PATH=/usr/bin",
			      (char *)"SHARED=inherited", (char *)"junk", NULL };
	char *injected[] = { (char *)"PORT=8080", (char *)"LOCALD_SERVICE=web",
			     (char *)"SHARED=injected-last", NULL };
	_cleanup_strv_free_ char **env = NULL;
	ASSERT_OK(project_service_env(p, &p->services[0], inherited, injected, NULL, &env));
	ASSERT_TRUE(strv_contains(env, "HOME=/dotenv-home"));
	ASSERT_TRUE(strv_contains(env, "PATH=/usr/bin"));
	ASSERT_TRUE(strv_contains(env, "FROM_DOTENV=dot"));
	ASSERT_TRUE(strv_contains(env, "FROM_SERVICE=svc"));
	ASSERT_TRUE(strv_contains(env, "SELF=http://127.0.0.1:8080"));
	ASSERT_TRUE(strv_contains(env, "PORT=8080"));
	ASSERT_TRUE(strv_contains(env, "SHARED=injected-last"));
	ASSERT_EQ(strv_length(env), 8);
	ASSERT_STREQ(env[0], "HOME=/dotenv-home"); /* replaced in place */

	/* Without injected, the service's env wins over .env and inherited. */
	_cleanup_strv_free_ char **env2 = NULL;
	ASSERT_OK(project_service_env(p, &p->services[0], inherited, NULL, NULL, &env2));
	ASSERT_TRUE(strv_contains(env2, "SHARED=service"));
}

TEST(load_from_memory)
{
	static const char toml[] = "[project]\nname = \"mem\"\n[services.web]\ncommand = \"x\"\n";
	static const char dotenv[] = "A=1\n";
	ProjectInput in = {
		.source = PROJECT_SOURCE_TOML,
		.dir = "/nonexistent/mem",
		.config_path = "mem.toml",
		.config = toml,
		.config_len = sizeof(toml) - 1,
		.dotenv_path = "mem.env",
		.dotenv = dotenv,
		.dotenv_len = sizeof(dotenv) - 1,
	};
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(project_load_memory(&in, &p, &d));
	ASSERT_STREQ(p->config_path, "mem.toml");
	ASSERT_STREQ(p->dotenv_path, "mem.env");
	ASSERT_STREQ(p->services[0].workdir, "/nonexistent/mem");
	ASSERT_STREQ(env_list_get(&p->env, "A")->value, "1");

	/* A relative dir is a caller bug. */
	in.dir = "relative";
	Project *q = NULL;
	ASSERT_ERR(project_load_memory(&in, &q, &d), EINVAL);

	/* parse + validate keep a partial model when there are errors. */
	static const char bad[] =
	    "[project]\nname = \"mem\"\n[services.web]\ncommand = \"x\"\ndepends_on = [\"nope\"]\n";
	in.dir = "/m";
	in.config = bad;
	in.config_len = sizeof(bad) - 1;
	_cleanup_diag_list_ DiagList d2 = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *partial = NULL;
	ASSERT_OK(project_parse(&in, &partial, &d2));
	ASSERT_OK(project_validate(partial, &d2));
	ASSERT_DIAG(&d2, DIAG_ERROR, 5, 15, "unknown service \"nope\"");
	ASSERT_EQ(partial->n_services, 1);
}

TEST(original_locald_examples)
{
	/* The locald.toml files of the original's repository (examples/ and its root), which
	 * must keep loading unchanged. */
	static const struct {
		const char *dir, *toml;
		size_t warnings;
	} cases[] = {
		{ "adhoc-test",
		  "[project]\nname = \"adhoc-test\"\ndomain = \"adhoc-test.localhost\"\n\n"
		  "[services.myservice]\ntype = \"exec\"\ncommand = \"echo 'Hello from try'\"\n\n"
		  "[services.web]\ntype = \"exec\"\ncommand = \"last --name myservice\"\n",
		  0 },
		{ "ansi-test",
		  "[project]\nname = \"ansi-test\"\n\n[services.ansi-log]\ncommand = \"bash\"\n"
		  "args = [\n  \"-c\",\n  \"while true; do echo -e '\\\\x1b[31mRed Log\\\\x1b[0m'; "
		  "sleep 1; done\",\n]\n",
		  0 },
		{ "cnb-opt-in-test",
		  "[project]\nname = \"cnb-opt-in-test\"\n\n[services.web]\ncommand = \"npm "
		  "start\"\n"
		  "build = { builder = \"heroku/builder:22\" }\n",
		  0 },
		{ "color-system",
		  "[project]\nname = \"color-system\"\ndomain = \"color-system.localhost\"\n\n"
		  "[services.web]\ntype = \"exec\"\ncommand = \"python3 -m http.server $PORT "
		  "--directory web\"\nport = 3000\n\n"
		  "[services.api]\ntype = \"exec\"\ncommand = \"python3 api/server.py\"\nport = "
		  "4000\ndepends_on = [\"db\"]\n\n"
		  "[services.db]\ntype = \"postgres\"\nversion = \"15\"\n",
		  0 },
		{ "container-test",
		  "[project]\nname = \"container-test\"\n\n[services.redis]\ntype = \"container\"\n"
		  "image = \"redis:7\"\ncontainer_port = 6379\n",
		  0 },
		{ "dependency-test",
		  "[project]\nname = \"dep-test\"\n\n[services.a]\ncommand = \"./script.sh a\"\n"
		  "depends_on = [\"b\"]\n\n[services.b]\ncommand = \"./script.sh b\"\n",
		  0 },
		{ "docker-service",
		  "[project]\nname = \"docker-test\"\ndomain = "
		  "\"docker.test\"\n\n[services.redis]\n"
		  "image = \"redis:alpine\"\ncontainer_port = 6379\n\n[services.worker]\n"
		  "command = \"echo 'Worker started'; while true; do echo 'Working...'; sleep 5; "
		  "done\"\n"
		  "depends_on = [\"redis\"]\n",
		  1 /* exec + image runs as a container */ },
		{ "health-check-test",
		  "[project]\nname = \"health-check-test\"\n\n[services.http-web]\n"
		  "command = \"python3 -m http.server 8081\"\nport = 8081\n"
		  "# health_check = \"curl localhost:8081\"\n[services.http-web.health_check]\n"
		  "type = \"http\"\npath = \"/\"\n\n[services.cmd-worker]\ntype = \"worker\"\n"
		  "command = \"sh -c \\\"sleep 5; touch ready; sleep 1000\\\"\"\n"
		  "health_check = \"test -f ready\"\n\n",
		  0 },
		{ "no-start-script",
		  "[project]\nname = \"no-start-script\"\n\n[services.web]\n"
		  "# No command specified, relies on CNB default\n[services.web.build]\n",
		  0 },
		{ "postgres-test",
		  "[project]\nname = \"test-postgres\"\ndomain = \"test-postgres.localhost\"\n\n"
		  "[services.db]\ntype = \"postgres\"\nversion = \"15\"\nport = 5432\n",
		  0 },
		{ "signal-test",
		  "[project]\nname = \"signal-test\"\n\n[services.trapper]\ncommand = "
		  "\"./trap.sh\"\n"
		  "stop_signal = \"SIGINT\"\n",
		  0 },
		{ "validation-test",
		  "[project]\nname = \"validation-test\"\ndomain = "
		  "\"validation-test.localhost\"\n\n"
		  "[services.web]\ncommand = \"python3 -m http.server $PORT\"\ndepends_on = []\n\n"
		  "[services.web.env]\n",
		  0 },
		{ "worker-test",
		  "[project]\nname = \"worker-test\"\n\n[services.worker]\ntype = \"worker\"\n"
		  "command = \"while true; do echo 'working...'; sleep 1; done\"\n",
		  0 },
		{ "dashboard",
		  "[project]\nname = \"locald-dashboard\"\ndomain = \"dev.locald.localhost\"\n\n"
		  "[services.web]\ntype = \"exec\"\ncommand = \"pnpm dev --port $PORT\"\n",
		  0 },
		{ "root",
		  "[project]\nname = \"dotlocal\"\n\n[services.test-postgres-3]\ntype = "
		  "\"postgres\"\n\n"
		  "[services.docs]\ntype = \"site\"\npath = \"docs\"\n\n[services.docs-dev]\n"
		  "command = \"node ./scripts/sync-manifesto.mjs && pnpm astro dev --port $PORT\"\n"
		  "workdir = \"locald-docs\"\n\n[services.dashboard]\ncommand = \"pnpm dev --port "
		  "$PORT\"\n"
		  "workdir = \"locald-dashboard\"\ndepends_on = "
		  "[\"test-postgres-3\"]\n[services.dashboard.env]\n"
		  "DEMO_DB_URL = \"${services.test-postgres-3.url}\"\n\n# [services.rustdocs]\n# "
		  "type = \"site\"\n",
		  0 },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
		_cleanup_(project_freep) Project *p = NULL;
		int r = load_toml_in(cases[i].dir, cases[i].toml, &p, &d);
		if (r < 0 || d.n_warnings != cases[i].warnings) {
			_cleanup_free_ char *all = diags_dump(&d);
			test_fail(__FILE__, __LINE__, "%s: r=%d, %zu warnings:\n%s", cases[i].dir,
				  r, d.n_warnings, all);
		}
	}
}

TEST(original_locald_example_details)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml_in("docker-service",
			       "[project]\nname = \"docker-test\"\ndomain = \"docker.test\"\n"
			       "[services.redis]\nimage = \"redis:alpine\"\ncontainer_port = 6379\n"
			       "[services.worker]\ncommand = \"w\"\ndepends_on = [\"redis\"]\n",
			       &p, &d));
	ASSERT_DIAG(&d, DIAG_WARNING, 5, 9, "has an image, so it runs as a container");
	ASSERT_EQ(p->services[0].type, SERVICE_CONTAINER);
	ASSERT_STREQ(p->services[0].host, "redis.docker.test");
	/* legacy exec named "worker" is still an exec (with a port), as in the original */
	ASSERT_EQ(p->services[1].type, SERVICE_EXEC);
	ASSERT_STREQ(p->services[1].host, "worker.docker.test");

	_cleanup_diag_list_ DiagList d2 = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *q = NULL;
	ASSERT_OK(load_toml_in(
	    "no-start-script",
	    "[project]\nname = \"no-start-script\"\n[services.web]\n[services.web.build]\n", &q,
	    &d2));
	ASSERT_EQ(q->services[0].build.kind, BUILD_BUILDPACKS);
	ASSERT_STREQ(q->services[0].build.builder, "heroku/builder:22");
	ASSERT_NULL(q->services[0].command);

	_cleanup_diag_list_ DiagList d3 = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *r = NULL;
	ASSERT_OK(load_toml_in(
	    "pg", "[project]\nname = \"pg\"\n[services.db]\ntype = \"postgres\"\n", &r, &d3));
	ASSERT_STREQ(r->services[0].version, "15");
}
