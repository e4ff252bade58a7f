/* SPDX-License-Identifier: MIT */
/* Every error and warning of locald.toml: file:line:col, message, hint; all collected. */
#include "project-test-util.h"
#include "strutil.h"

#define HEADER "[project]\nname = \"shop\"\n"

/* Load `toml`, expect -EINVAL and no project. */
static void load_bad(const char *toml, DiagList *d)
{
	Project *p = NULL;
	int r = load_toml(toml, &p, d);
	if (r != -EINVAL) {
		_cleanup_free_ char *all = diags_dump(d);
		test_fail(__FILE__, __LINE__, "expected -EINVAL, got %d; diagnostics:\n%s", r, all);
	}
	ASSERT_NULL(p);
	ASSERT_TRUE(d->n_errors > 0);
}

TEST(missing_project_table)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad("[services.web]\ncommand = \"x\"\n", &d);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 1, 1, "missing [project] table");
	ASSERT_STRCONTAINS(x->hint, "name = \"shop\""); /* from the directory name */
	ASSERT_TRUE(endswith(x->file, "shop/locald.toml"));
}

TEST(project_name_problems)
{
	_cleanup_diag_list_ DiagList d1 = DIAG_LIST_INIT, d2 = DIAG_LIST_INIT, d3 = DIAG_LIST_INIT,
				     d4 = DIAG_LIST_INIT;
	load_bad("[project]\ndomain = \"x.localhost\"\n", &d1);
	ASSERT_DIAG(&d1, DIAG_ERROR, 1, 1, "[project] has no name");

	load_bad("[project]\nname = \"\"\n", &d2);
	ASSERT_DIAG(&d2, DIAG_ERROR, 2, 8, "project name is empty");

	load_bad("[project]\nname = \"My App\"\n", &d3);
	const Diag *x = ASSERT_DIAG(&d3, DIAG_ERROR, 2, 8,
				    "project name \"My App\" is not a valid host name label");
	ASSERT_STRCONTAINS(x->hint, "\"my-app\"");

	load_bad("[project]\nname = 42\n", &d4);
	ASSERT_DIAG(&d4, DIAG_ERROR, 2, 8, "expected a string for \"name\", got integer");
}

TEST(bad_domain)
{
	static const char *const bad[] = { "shop..localhost", "-shop.localhost", "shop.localhost.",
					   "sh op.localhost", "shop_x.localhost" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
		_cleanup_free_ char *toml =
		    strdupf("[project]\nname = \"shop\"\ndomain = \"%s\"\n", bad[i]);
		load_bad(toml, &d);
		ASSERT_DIAG(&d, DIAG_ERROR, 3, 10, "is not a valid host name");
	}
}

TEST(unknown_dependency_with_suggestion)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.database]\ntype = \"postgres\"\n"
			"[services.web]\ncommand = \"x\"\ndepends_on = [\"databse\", \"queue\"]\n",
		 &d);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 7, 15,
				    "service \"web\" depends on unknown service \"databse\"");
	ASSERT_STREQ(x->hint, "did you mean \"database\"?");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 7, 26, "unknown service \"queue\"");
	ASSERT_STRCONTAINS(x->hint, "define [services.queue]");
	ASSERT_EQ(d.n_errors, 2);
}

TEST(dependency_cycle_named_in_full)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.a]\ncommand = \"x\"\ndepends_on = [\"b\"]\n"
			"[services.b]\ncommand = \"x\"\ndepends_on = [\"c\"]\n"
			"[services.c]\ncommand = \"x\"\ndepends_on = [\"a\"]\n"
			"[services.d]\ncommand = \"x\"\ndepends_on = [\"a\"]\n",
		 &d);
	ASSERT_DIAG(&d, DIAG_ERROR, 5, 15, "dependency cycle: a -> b -> c -> a");
	ASSERT_EQ(d.n_errors, 1); /* d waits on the cycle but is not part of it */
}

TEST(cycles_each_reported_once)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.x]\ncommand = \"x\"\ndepends_on = [\"x\"]\n"
			"[services.p]\ncommand = \"x\"\ndepends_on = [\"x\", \"q\"]\n"
			"[services.q]\ncommand = \"x\"\ndepends_on = [\"p\"]\n",
		 &d);
	ASSERT_DIAG(&d, DIAG_ERROR, 5, 15, "dependency cycle: x -> x");
	ASSERT_DIAG(&d, DIAG_ERROR, 8, 20, "dependency cycle: p -> q -> p");
	ASSERT_EQ(d.n_errors, 2);
}

TEST(duplicate_fixed_ports)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.web]\ncommand = \"x\"\nport = 3000\n"
			"[services.api]\ncommand = \"x\"\nport = 3000\n"
			"[services.db]\ntype = \"postgres\"\nport = 3000\n",
		 &d);
	const Diag *x = ASSERT_DIAG(
	    &d, DIAG_ERROR, 8, 8,
	    "port 3000 of service \"api\" is already the port of service \"web\" (line 5)");
	ASSERT_STRCONTAINS(x->hint, "free one assigned");
	ASSERT_DIAG(&d, DIAG_ERROR, 11, 8, "service \"db\" is already the port of service \"web\"");
	ASSERT_EQ(d.n_errors, 2);
}

TEST(bad_ports)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER
		 "[services.a]\ncommand = \"x\"\nport = 0\n"
		 "[services.b]\ncommand = \"x\"\nport = 70000\n"
		 "[services.c]\ncommand = \"x\"\nport = \"80\"\n"
		 "[services.d]\ncommand = \"x\"\nport = 80.5\n"
		 "[services.e]\ncommand = \"x\"\nport = -1\n"
		 "[services.f]\ntype = \"container\"\nimage = \"i\"\ncontainer_port = 65536\n",
		 &d);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 5, 8, "port 0 is out of range 1..65535");
	ASSERT_STRCONTAINS(x->hint, "leave the key out");
	ASSERT_DIAG(&d, DIAG_ERROR, 8, 8, "port 70000 is out of range");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 11, 8, "expected an integer for \"port\", got string");
	ASSERT_STREQ(x->hint, "write port = 80, without quotes");
	ASSERT_DIAG(&d, DIAG_ERROR, 14, 8, "expected an integer for \"port\", got float");
	ASSERT_DIAG(&d, DIAG_ERROR, 17, 8, "port -1 is out of range");
	ASSERT_DIAG(&d, DIAG_ERROR, 21, 18, "container_port 65536 is out of range");
	ASSERT_EQ(d.n_errors, 6);
}

TEST(bad_signals)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.a]\ncommand = \"x\"\nstop_signal = \"SIGFOO\"\n"
			"[services.b]\ncommand = \"x\"\nstop_signal = 99\n"
			"[services.c]\ncommand = \"x\"\nstop_signal = [\"INT\"]\n",
		 &d);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 5, 15, "unknown signal \"SIGFOO\"");
	ASSERT_STRCONTAINS(x->hint, "SIGTERM");
	ASSERT_DIAG(&d, DIAG_ERROR, 8, 15, "unknown signal 99");
	ASSERT_DIAG(&d, DIAG_ERROR, 11, 15,
		    "expected a signal name for \"stop_signal\", got array");
}

TEST(bad_health_checks)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(
	    HEADER
	    "[services.a]\ncommand = \"x\"\nhealth_check = { type = \"htp\" }\n"
	    "[services.b]\ntype = \"worker\"\ncommand = \"x\"\nhealth_check = { type = \"http\" }\n"
	    "[services.c]\ncommand = \"x\"\nhealth_check = { type = \"command\" }\n"
	    "[services.d]\ncommand = \"x\"\nhealth_check = { type = \"tcp\", interval = \"fast\" "
	    "}\n"
	    "[services.e]\ncommand = \"x\"\nhealth_check = { type = \"http\", path = \"health\" }\n"
	    "[services.f]\ncommand = \"x\"\nhealth_check = { interval = \"1s\" }\n"
	    "[services.g]\ncommand = \"x\"\nhealth_check = 5\n"
	    "[services.h]\ncommand = \"x\"\nhealth_check = { type = \"tcp\", timeout = \"0s\", "
	    "retries = 0 }\n",
	    &d);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 5, 25, "unknown health_check type \"htp\"");
	ASSERT_STREQ(x->hint, "did you mean \"http\"?");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 9, 16,
			"health_check type \"http\" needs a port, and worker \"b\" has none");
	ASSERT_DIAG(&d, DIAG_ERROR, 12, 16, "health_check of type \"command\" needs a command");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 15, 43, "invalid duration \"fast\" for \"interval\"");
	ASSERT_STRCONTAINS(x->hint, "\"250ms\"");
	ASSERT_DIAG(&d, DIAG_ERROR, 18, 40, "health_check path \"health\" does not start with '/'");
	ASSERT_DIAG(&d, DIAG_ERROR, 21, 16, "health_check of service \"f\" has no type");
	ASSERT_DIAG(&d, DIAG_ERROR, 24, 16,
		    "expected a command string or a table for \"health_check\", got integer");
	ASSERT_DIAG(&d, DIAG_ERROR, 27, 42, "\"timeout\" must be longer than zero");
	ASSERT_DIAG(&d, DIAG_ERROR, 27, 58, "retries 0 is out of range 1..1000");
	ASSERT_EQ(d.n_errors, 9);
}

TEST(required_keys_per_type)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.web]\nport = 3000\n"
			"[services.jobs]\ntype = \"worker\"\n"
			"[services.redis]\ntype = \"container\"\n"
			"[services.docs]\ntype = \"site\"\n"
			"[services.x]\ntype = \"lambda\"\n"
			"[services.y]\ncommand = \"   \"\n",
		 &d);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 3, 11, "service \"web\" has no command");
	ASSERT_STRCONTAINS(x->hint, "$PORT");
	ASSERT_DIAG(&d, DIAG_ERROR, 5, 11, "worker \"jobs\" has no command");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 7, 11, "container \"redis\" has no image");
	ASSERT_STRCONTAINS(x->hint, "image = ");
	ASSERT_DIAG(&d, DIAG_ERROR, 9, 11, "site \"docs\" has no path");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 12, 8, "unknown service type \"lambda\"");
	ASSERT_STRCONTAINS(x->hint, "exec, worker, postgres, container or site");
	ASSERT_DIAG(&d, DIAG_ERROR, 14, 11, "\"command\" is blank");
	ASSERT_EQ(d.n_errors, 6);
}

TEST(wrong_value_types)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER
		 "[services.web]\ncommand = 5\n"
		 "depends_on = \"db\"\n"
		 "env = [\"A=1\"]\n"
		 "workdir = true\n"
		 "stop_timeout = \"soon\"\n"
		 "restart = \"sometimes\"\n"
		 "[services.db]\ntype = \"postgres\"\n"
		 "[services.other]\ncommand = [\"x\", 1]\nargs = \"y\"\n"
		 "env = { A = [1], B = 1.5 }\n"
		 "[services.z]\n"
		 "command = \"x\"\n"
		 "build = 3\n"
		 "[services.s]\ntype = \"site\"\npath = \"x\"\nbuild = { builder = \"b\" }\n",
		 &d);
	ASSERT_DIAG(&d, DIAG_ERROR, 4, 11,
		    "expected a string or an array of strings for \"command\", got integer");
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 5, 14,
				    "expected an array of strings for \"depends_on\", got string");
	ASSERT_STREQ(x->hint, "write depends_on = [\"db\"]");
	ASSERT_DIAG(&d, DIAG_ERROR, 6, 7, "expected a table for \"env\", got array");
	ASSERT_DIAG(&d, DIAG_ERROR, 7, 11, "expected a string for \"workdir\", got boolean");
	ASSERT_DIAG(&d, DIAG_ERROR, 8, 16, "invalid duration \"soon\"");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 9, 11, "unknown restart policy \"sometimes\"");
	ASSERT_STRCONTAINS(x->hint, "on-failure");
	ASSERT_DIAG(&d, DIAG_ERROR, 13, 17,
		    "expected a string in the array for \"command\", got integer");
	ASSERT_DIAG(&d, DIAG_ERROR, 14, 8, "expected an array of strings for \"args\", got string");
	ASSERT_DIAG(&d, DIAG_ERROR, 15, 13, "expected a string for \"A\", got array");
	ASSERT_DIAG(&d, DIAG_ERROR, 15, 22, "expected a string for \"B\", got float");
	ASSERT_DIAG(&d, DIAG_ERROR, 18, 9,
		    "expected a command string or a table for \"build\", got integer");
	ASSERT_DIAG(&d, DIAG_ERROR, 22, 9, "expected a command string for \"build\", got table");
}

TEST(invalid_service_names)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.My_Web]\ncommand = \"x\"\n"
			"[services.\"a.b\"]\ncommand = \"x\"\n"
			"[services.my_jobs]\ntype = \"worker\"\ncommand = \"x\"\n"
			"[services.\"x y\"]\ntype = \"worker\"\ncommand = \"x\"\n",
		 &d);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 3, 0,
				    "service name \"My_Web\" is not a valid host name label");
	ASSERT_STRCONTAINS(x->hint, "\"my-web\"");
	ASSERT_DIAG(&d, DIAG_ERROR, 5, 0, "service name \"a.b\" is not a valid");
	ASSERT_DIAG(&d, DIAG_ERROR, 10, 0, "service name \"x y\" is not a valid");
	ASSERT_EQ(d.n_errors, 3); /* my_jobs is a worker: it never becomes a host name */
}

TEST(unknown_keys_are_warnings_with_suggestions)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(
	    load_toml("[project]\nname = \"shop\"\nnmae = \"x\"\n"
		      "[servces.web]\n"
		      "[services.web]\ncomand = \"x\"\ncommand = \"y\"\nhealthcheck = \"true\"\n"
		      "restart = { policy = \"always\", max_retries = 3 }\n"
		      "health_check = { type = \"tcp\", intervall = \"1s\", bogus = 1 }\n"
		      "build = { builder = \"x\", buildpack = [\"y\"] }\n",
		      &p, &d));
	ASSERT_EQ(d.n_errors, 0);
	const Diag *x = ASSERT_DIAG(&d, DIAG_WARNING, 3, 1, "unknown key \"nmae\" in [project]");
	ASSERT_STREQ(x->hint, "did you mean \"name\"?");
	x = ASSERT_DIAG(&d, DIAG_WARNING, 4, 2, "unknown key \"servces\" in the top level");
	ASSERT_STREQ(x->hint, "did you mean \"services\"?");
	x = ASSERT_DIAG(&d, DIAG_WARNING, 6, 1, "unknown key \"comand\" in service \"web\"");
	ASSERT_STREQ(x->hint, "did you mean \"command\"?");
	x = ASSERT_DIAG(&d, DIAG_WARNING, 8, 1, "unknown key \"healthcheck\"");
	ASSERT_STREQ(x->hint, "did you mean \"health_check\"?");
	x = ASSERT_DIAG(&d, DIAG_WARNING, 9, 32,
			"unknown key \"max_retries\" in the restart table of service \"web\"");
	ASSERT_STRCONTAINS(x->hint, "README"); /* too far from max_restarts to guess */
	ASSERT_DIAG(&d, DIAG_WARNING, 10, 32,
		    "unknown key \"intervall\" in the health_check of service \"web\"");
	x = ASSERT_DIAG(&d, DIAG_WARNING, 10, 50, "unknown key \"bogus\"");
	ASSERT_STRCONTAINS(x->hint, "README");
	ASSERT_DIAG(&d, DIAG_WARNING, 11, 26, "unknown key \"buildpack\" in the build table");
	ASSERT_STREQ(p->services[0].command, "y");
}

TEST(injected_env_warning)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(
	    HEADER "[services.web]\ncommand = \"x\"\nenv = { PORT = \"3000\", OK = \"1\" }\n", &p,
	    &d));
	const Diag *x =
	    ASSERT_DIAG(&d, DIAG_WARNING, 5, 9, "PORT is set by locald and overrides this value");
	ASSERT_STRCONTAINS(x->hint, "port = ");
	ASSERT_EQ(d.n_warnings, 1);
}

TEST(toml_syntax_error)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad("[project]\nname = \"shop\"\n[services.web]\ncommand = \"x\n", &d);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 4, 0, "");
	ASSERT_STRCONTAINS(x->hint, "TOML syntax");
	ASSERT_EQ(d.n_errors, 1);
}

TEST(many_errors_collected)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad("[project]\nname = \"Bad Name\"\n"
		 "[services.a]\nport = \"1\"\n"
		 "[services.b]\ncommand = \"x\"\nstop_signal = \"NOPE\"\ndepends_on = [\"zz\"]\n"
		 "[services.c]\ncommand = \"x\"\nhealth_check = { type = \"?\" }\n",
		 &d);
	ASSERT_DIAG(&d, DIAG_ERROR, 2, 8, "project name");
	ASSERT_DIAG(&d, DIAG_ERROR, 4, 8, "expected an integer");
	ASSERT_DIAG(&d, DIAG_ERROR, 3, 11, "service \"a\" has no command");
	ASSERT_DIAG(&d, DIAG_ERROR, 7, 15, "unknown signal");
	ASSERT_DIAG(&d, DIAG_ERROR, 8, 15, "unknown service \"zz\"");
	ASSERT_DIAG(&d, DIAG_ERROR, 11, 25, "unknown health_check type");
	ASSERT_EQ(d.n_errors, 6);
}

TEST(args_misuse)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.a]\nargs = [\"x\"]\n"
			"[services.b]\ncommand = [\"x\"]\nargs = [\"y\"]\n",
		 &d);
	ASSERT_DIAG(&d, DIAG_ERROR, 4, 8, "\"args\" given without \"command\"");
	ASSERT_DIAG(&d, DIAG_ERROR, 7, 8, "\"args\" cannot be combined with a command array");
}

TEST(nul_in_values_and_keys)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(HEADER "[services.web]\ncommand = \"a\\u0000b\"\n\"port\\u0000x\" = 1\n", &d);
	ASSERT_DIAG(&d, DIAG_ERROR, 4, 11, "\"command\" contains a NUL character");
	ASSERT_DIAG(&d, DIAG_ERROR, 5, 1, "contains a NUL character");
}

TEST(health_check_type_inferred_and_stray_keys)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(HEADER
			    "[services.a]\ncommand = \"x\"\nhealth_check = { command = \"true\" }\n"
			    "[services.b]\ncommand = \"x\"\nhealth_check = { path = \"/up\" }\n"
			    "[services.c]\ncommand = \"x\"\n"
			    "health_check = { type = \"tcp\", path = \"/\", command = \"y\" }\n",
			    &p, &d));
	ASSERT_EQ(d.n_errors, 0);
	ASSERT_EQ(p->services[0].health_check.type, HEALTH_CHECK_COMMAND);
	ASSERT_STREQ(p->services[0].health_check.command, "true");
	ASSERT_EQ(p->services[1].health_check.type, HEALTH_CHECK_HTTP);
	ASSERT_STREQ(p->services[1].health_check.path, "/up");
	ASSERT_DIAG(&d, DIAG_WARNING, 11, 32, "\"path\" has no effect on a tcp health check");
	ASSERT_DIAG(&d, DIAG_WARNING, 11, 44, "\"command\" has no effect on a tcp health check");
	ASSERT_NULL(p->services[2].health_check.path);
}

TEST(structural_errors)
{
	_cleanup_diag_list_ DiagList d1 = DIAG_LIST_INIT, d2 = DIAG_LIST_INIT, d3 = DIAG_LIST_INIT;
	load_bad("project = \"shop\"\n", &d1);
	ASSERT_DIAG(&d1, DIAG_ERROR, 1, 11, "expected a table for \"project\", got string");

	load_bad("services = [\"web\"]\n" HEADER, &d2);
	ASSERT_DIAG(&d2, DIAG_ERROR, 1, 12, "expected a table for \"services\", got array");

	load_bad(HEADER "[services]\nweb = \"python3 -m http.server\"\n"
			"[services.api]\ncommand = \"x\"\nrestart = 3\n",
		 &d3);
	const Diag *x =
	    ASSERT_DIAG(&d3, DIAG_ERROR, 4, 7, "expected a table for service \"web\", got string");
	ASSERT_STRCONTAINS(x->hint, "[services.web]");
	ASSERT_DIAG(&d3, DIAG_ERROR, 7, 11,
		    "expected \"no\", \"on-failure\" or \"always\" for \"restart\"");
}

TEST(too_many_services)
{
	Buf b = BUF_INIT(0);
	buf_append_str(&b, HEADER "[services]\n");
	for (unsigned i = 0; i < PROJECT_SERVICES_MAX + 3; i++)
		buf_printf(&b, "s%u.command = \"x\"\n", i);
	_cleanup_free_ char *toml = buf_steal(&b, NULL);
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	load_bad(toml, &d);
	ASSERT_DIAG(&d, DIAG_ERROR, 3, 1, "515 services, more than the 512 allowed");
	ASSERT_EQ(d.n_errors, 1);
}

TEST(superd_keys_pty_liveness_log)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(HEADER "[services.web]\ncommand = \"x\"\npty = true\n"
			    "health_check = { type = \"http\", path = \"/up\", liveness = true, "
			    "start_timeout = \"90s\" }\n"
			    "[services.db]\ncommand = \"y\"\nready_log_line = \"ready to accept\"\n"
			    "[services.q]\ncommand = \"z\"\nhealth_check = { ready_log_line = \"^up$\" }\n",
			    &p, &d));
	const Service *web = project_find_service(p, "web");
	ASSERT_TRUE(web->pty);
	ASSERT_TRUE(web->health_check.liveness);
	ASSERT_EQ(web->health_check.start_timeout_ms, 90000);
	const Service *db = project_find_service(p, "db");
	ASSERT_FALSE(db->pty);
	ASSERT_EQ(db->health_check.type, HEALTH_CHECK_LOG);
	ASSERT_STREQ(db->health_check.ready_log_line, "ready to accept");
	ASSERT_EQ(db->health_check.start_timeout_ms, 60000);
	const Service *q = project_find_service(p, "q");
	ASSERT_EQ(q->health_check.type, HEALTH_CHECK_LOG);
	ASSERT_STREQ(q->health_check.ready_log_line, "^up$");
}

TEST(superd_keys_errors)
{
	_cleanup_diag_list_ DiagList d1 = DIAG_LIST_INIT, d2 = DIAG_LIST_INIT, d3 = DIAG_LIST_INIT,
				     d4 = DIAG_LIST_INIT;
	load_bad(HEADER "[services.web]\ncommand = \"x\"\nready_log_line = \"(unclosed\"\n", &d1);
	ASSERT_DIAG(&d1, DIAG_ERROR, 5, 18, "ready_log_line \"(unclosed\"");

	load_bad(HEADER "[services.web]\ncommand = \"x\"\npty = \"yes\"\n", &d2);
	ASSERT_DIAG(&d2, DIAG_ERROR, 5, 7, "expected true or false for \"pty\"");

	load_bad(HEADER "[services.web]\ncommand = \"x\"\nhealth_check = { type = \"log\" }\n", &d3);
	ASSERT_DIAG(&d3, DIAG_ERROR, 5, 16, "needs ready_log_line");

	load_bad(HEADER "[services.web]\ncommand = \"x\"\nhealth_check = \"true\"\n"
			"ready_log_line = \"up\"\n",
		 &d4);
	ASSERT_DIAG(&d4, DIAG_ERROR, 6, 18, "both say when \"web\" is ready");
}

TEST(proxy_keys_autostart_idle_stop)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(HEADER "[services.web]\ncommand = \"x\"\nautostart = false\n"
			    "idle_stop = \"15m\"\n"
			    "[services.api]\ncommand = \"y\"\nidle_stop = 30\n"
			    "[services.db]\ncommand = \"z\"\n",
			    &p, &d));
	const Service *web = project_find_service(p, "web");
	ASSERT_FALSE(web->autostart);
	ASSERT_EQ(web->idle_stop_ms, 15 * 60 * 1000);
	ASSERT_EQ(web->pos.autostart.line, 5);
	ASSERT_EQ(web->pos.autostart.col, 13);
	ASSERT_EQ(web->pos.idle_stop.line, 6);
	ASSERT_EQ(web->pos.idle_stop.col, 13);
	const Service *api = project_find_service(p, "api");
	ASSERT_TRUE(api->autostart);
	ASSERT_EQ(api->idle_stop_ms, 30 * 1000);
	const Service *db = project_find_service(p, "db");
	ASSERT_TRUE(db->autostart); /* the defaults: started on demand, never stopped */
	ASSERT_EQ(db->idle_stop_ms, 0);
	ASSERT_EQ(db->pos.idle_stop.line, 0);

	/* Procfile services get the same defaults. */
	_cleanup_diag_list_ DiagList d2 = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *pf = NULL;
	_cleanup_free_ char *dir = make_dir("pf");
	write_file(dir, "Procfile", "web: python3 -m http.server $PORT\n");
	ASSERT_OK(project_load(dir, &pf, &d2));
	ASSERT_TRUE(pf->services[0].autostart);
	ASSERT_EQ(pf->services[0].idle_stop_ms, 0);
}

TEST(proxy_keys_errors)
{
	_cleanup_diag_list_ DiagList d1 = DIAG_LIST_INIT, d2 = DIAG_LIST_INIT, d3 = DIAG_LIST_INIT,
				     d4 = DIAG_LIST_INIT, d5 = DIAG_LIST_INIT;
	load_bad(HEADER "[services.web]\ncommand = \"x\"\nautostart = \"no\"\n", &d1);
	ASSERT_DIAG(&d1, DIAG_ERROR, 5, 13, "expected true or false for \"autostart\"");

	load_bad(HEADER "[services.web]\ncommand = \"x\"\nidle_stop = \"0s\"\n", &d2);
	ASSERT_DIAG(&d2, DIAG_ERROR, 5, 13, "\"idle_stop\" must be longer than zero");

	load_bad(HEADER "[services.web]\ncommand = \"x\"\nidle_stop = \"soon\"\n", &d3);
	ASSERT_DIAG(&d3, DIAG_ERROR, 5, 13, "invalid duration \"soon\" for \"idle_stop\"");

	load_bad(HEADER "[services.web]\ncommand = \"x\"\nidle_stop = true\n", &d4);
	ASSERT_DIAG(&d4, DIAG_ERROR, 5, 13, "expected a duration for \"idle_stop\"");

	/* A worker has no route: the proxy never starts or stops it. */
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(HEADER "[services.q]\ntype = \"worker\"\ncommand = \"x\"\n"
			    "idle_stop = \"1m\"\n",
			    &p, &d5));
	ASSERT_DIAG(&d5, DIAG_WARNING, 6, 1, "\"idle_stop\" has no effect on a service of type worker");
	ASSERT_EQ(project_find_service(p, "q")->idle_stop_ms, 0);
}
