/* SPDX-License-Identifier: MIT */
/* Start waves, dependency lists, closures, cycles. */
#include "project-test-util.h"
#include "strutil.h"

#define HEADER "[project]\nname = \"shop\"\n"

static size_t idx(const Project *p, const char *name)
{
	Service *s = project_find_service(p, name);
	ASSERT_NOT_NULL(s);
	return (size_t)(s - p->services);
}

/* Wave w as "a b c" (names in start order). */
static char *wave_names(const Project *p, const ProjectWaves *w, size_t wave)
{
	Buf b = BUF_INIT(0);
	for (size_t k = w->wave_start[wave]; k < w->wave_start[wave + 1]; k++)
		buf_printf(&b, "%s%s", k > w->wave_start[wave] ? " " : "",
			   p->services[w->order[k]].name);
	return buf_steal(&b, NULL);
}

TEST(waves_expose_parallelism)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	/*      db   cache
	 *     /  \  /
	 *   api  jobs      web -> api, cache       admin (alone)
	 */
	ASSERT_OK(load_toml(HEADER
			    "[services.web]\ncommand = \"x\"\ndepends_on = [\"api\", \"cache\"]\n"
			    "[services.api]\ncommand = \"x\"\ndepends_on = [\"db\"]\n"
			    "[services.jobs]\ntype = \"worker\"\ncommand = \"x\"\ndepends_on = "
			    "[\"db\", \"cache\"]\n"
			    "[services.db]\ntype = \"postgres\"\n"
			    "[services.admin]\ncommand = \"x\"\n"
			    "[services.cache]\ntype = \"container\"\nimage = \"redis\"\n",
			    &p, &d));
	ASSERT_CLEAN(&d);

	ProjectWaves w;
	ASSERT_OK(project_start_waves(p, &w, NULL));
	ASSERT_EQ(w.n_services, 6);
	ASSERT_EQ(w.n_waves, 3);
	_cleanup_free_ char *w0 = wave_names(p, &w, 0), *w1 = wave_names(p, &w, 1),
			    *w2 = wave_names(p, &w, 2);
	ASSERT_STREQ(w0, "db admin cache"); /* file order within a wave */
	ASSERT_STREQ(w1, "api jobs");
	ASSERT_STREQ(w2, "web");
	ASSERT_EQ(w.nodes[idx(p, "web")].wave, 2);
	ASSERT_EQ(w.nodes[idx(p, "cache")].wave, 0);

	const ServiceNode *web = &w.nodes[idx(p, "web")];
	ASSERT_EQ(web->n_deps, 2);
	ASSERT_EQ(web->deps[0], idx(p, "api"));
	ASSERT_EQ(web->deps[1], idx(p, "cache"));
	const ServiceNode *db = &w.nodes[idx(p, "db")];
	ASSERT_EQ(db->n_dependents, 2);

	/* What `up web` must start, and what stopping db takes down with it. */
	bool need[6] = { false };
	ASSERT_OK(project_waves_closure(&w, idx(p, "web"), false, need));
	ASSERT_TRUE(need[idx(p, "web")] && need[idx(p, "api")] && need[idx(p, "db")] &&
		    need[idx(p, "cache")]);
	ASSERT_FALSE(need[idx(p, "jobs")] || need[idx(p, "admin")]);
	bool down[6] = { false };
	ASSERT_OK(project_waves_closure(&w, idx(p, "db"), true, down));
	ASSERT_TRUE(down[idx(p, "db")] && down[idx(p, "api")] && down[idx(p, "jobs")] &&
		    down[idx(p, "web")]);
	ASSERT_FALSE(down[idx(p, "cache")] || down[idx(p, "admin")]);
	ASSERT_ERR(project_waves_closure(&w, 6, false, down), EINVAL);
	project_waves_done(&w);
}

TEST(waves_of_nothing)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(HEADER, &p, &d));
	ProjectWaves w;
	ASSERT_OK(project_start_waves(p, &w, NULL));
	ASSERT_EQ(w.n_waves, 0);
	ASSERT_EQ(w.wave_start[0], 0);
	project_waves_done(&w);
}

TEST(waves_refuse_cycles)
{
	static const char toml[] =
	    HEADER "[services.ok]\ncommand = \"x\"\n"
		   "[services.b]\ncommand = \"x\"\ndepends_on = [\"c\", \"ok\", \"ghost\"]\n"
		   "[services.c]\ncommand = \"x\"\ndepends_on = [\"b\"]\n"
		   "[services.d]\ncommand = \"x\"\ndepends_on = [\"c\"]\n";
	ProjectInput in = { .source = PROJECT_SOURCE_TOML,
			    .dir = "/x",
			    .config_path = "locald.toml",
			    .config = toml,
			    .config_len = sizeof(toml) - 1 };
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(project_parse(&in, &p, &d));

	ProjectWaves w = { 0 };
	_cleanup_free_ char *cycle = NULL;
	ASSERT_ERR(project_start_waves(p, &w, &cycle), ELOOP);
	ASSERT_STREQ(cycle, "b -> c -> b");
	ASSERT_NULL(w.nodes);
	ASSERT_ERR(project_start_waves(p, &w, NULL), ELOOP);
}

TEST(unknown_deps_are_ignored_by_waves)
{
	static const char toml[] =
	    HEADER "[services.a]\ncommand = \"x\"\ndepends_on = [\"ghost\"]\n"
		   "[services.b]\ncommand = \"x\"\ndepends_on = [\"a\"]\n";
	ProjectInput in = { .source = PROJECT_SOURCE_TOML,
			    .dir = "/x",
			    .config_path = "locald.toml",
			    .config = toml,
			    .config_len = sizeof(toml) - 1 };
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(project_parse(&in, &p, &d));
	ProjectWaves w;
	ASSERT_OK(project_start_waves(p, &w, NULL));
	ASSERT_EQ(w.n_waves, 2);
	ASSERT_EQ(w.nodes[0].n_deps, 0);
	project_waves_done(&w);
}

TEST(long_chain)
{
	/* 300 services in a chain, written last-first: 300 waves of one. */
	Buf b = BUF_INIT(0);
	buf_append_str(&b, HEADER);
	for (int i = 299; i >= 0; i--) {
		buf_printf(&b, "[services.s%d]\ncommand = \"x\"\n", i);
		if (i > 0)
			buf_printf(&b, "depends_on = [\"s%d\"]\n", i - 1);
	}
	_cleanup_free_ char *toml = buf_steal(&b, NULL);
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(toml, &p, &d));
	ProjectWaves w;
	ASSERT_OK(project_start_waves(p, &w, NULL));
	ASSERT_EQ(w.n_waves, 300);
	ASSERT_STREQ(p->services[w.order[0]].name, "s0");
	ASSERT_STREQ(p->services[w.order[299]].name, "s299");
	project_waves_done(&w);
}
