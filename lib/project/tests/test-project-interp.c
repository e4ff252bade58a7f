/* SPDX-License-Identifier: MIT */
/* ${…} references: load-time checks with positions, expansion with a port resolver. */
#include "project-test-util.h"
#include "strutil.h"

#define HEADER "[project]\nname = \"shop\"\n"

static int fake_ports(const Project *p, const Service *s, void *userdata, uint16_t *ret)
{
	int *calls = userdata;
	(*calls)++;
	if (streq(s->name, "missing"))
		return -EADDRNOTAVAIL;
	*ret = s->port ? s->port : 40000 + (uint16_t)(s - p->services);
	return 0;
}

TEST(expand_references)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(HEADER "[services.api]\ncommand = \"x\"\nport = 4000\n"
				   "[services.db]\ntype = \"postgres\"\n"
				   "[services.web]\ncommand = \"x\"\n"
				   "[services.missing]\ncommand = \"x\"\n"
				   "[services.front]\ncommand = \"x\"\n"
				   "env.API = \"${services.api.url}/v1\"\n",
			    &p, &d));
	ASSERT_CLEAN(&d);

	int calls = 0;
	ProjectResolver r = { .port = fake_ports, .userdata = &calls, .https_port = 8443 };
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "${services.api.url}", "http://127.0.0.1:4000" },
		{ "${services.api.port}", "4000" },
		{ "${services.api.host}", "127.0.0.1" },
		{ "${services.api.proxy_host}", "api.shop.localhost" },
		{ "${services.api.proxy_url}/x", "https://api.shop.localhost:8443/x" },
		{ "${services.web.proxy_url}", "https://shop.localhost:8443" },
		{ "${services.db.url}", "postgres://postgres:postgres@127.0.0.1:40001/postgres" },
		{ "${services.db.port}", "40001" },
		{ "${project.name}|${project.domain}", "shop|shop.localhost" },
		{ "cost: $$5, $${services.api.port}, $HOME, ${HOME}, $",
		  "cost: $5, ${services.api.port}, $HOME, ${HOME}, $" },
		{ "open ${services.api.port", "open ${services.api.port" },
		{ "", "" },
		{ "plain", "plain" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *out = NULL;
		ASSERT_OK(project_interpolate(p, cases[i].in, &r, &out));
		ASSERT_STREQ(out, cases[i].out);
	}
	ASSERT_TRUE(calls > 0);

	/* The resolver's failure is the caller's to see. */
	_cleanup_free_ char *out = NULL;
	ASSERT_ERR(project_interpolate(p, "${services.missing.port}", &r, &out), EADDRNOTAVAIL);
	ASSERT_NULL(out);
	/* Without a resolver only fixed ports are known. */
	ASSERT_ERR(project_interpolate(p, "${services.web.port}", NULL, &out), ENOENT);
	ASSERT_OK(project_interpolate(p, "${services.api.port}", NULL, &out));
	ASSERT_STREQ(out, "4000");
	free(TAKE_PTR(out));
	ASSERT_OK(project_interpolate(p, "${services.api.proxy_url}", NULL, &out));
	ASSERT_STREQ(out, "https://api.shop.localhost");
	free(TAKE_PTR(out));
	/* Bad references (validation reports these at load) fail expansion too. */
	ASSERT_ERR(project_interpolate(p, "${services.nope.port}", &r, &out), EINVAL);
	ASSERT_ERR(project_interpolate(p, "${project.nope}", &r, &out), EINVAL);
}

TEST(bad_references_are_load_errors)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	Project *p = NULL;
	ASSERT_ERR(load_toml(HEADER "[services.api]\ncommand = \"x\"\n"
				    "[services.jobs]\ntype = \"worker\"\ncommand = \"x\"\n"
				    "[services.web]\ncommand = \"x\"\n"
				    "[services.web.env]\n"
				    "A = \"${services.apl.url}\"\n"
				    "B = \"${services.api.prot}\"\n"
				    "C = \"${services.jobs.port}\"\n"
				    "D = \"${project.title}\"\n"
				    "E = \"${services.api}\"\n"
				    "F = \"${HOME}/x\"\n"
				    "G = \"${services.api.port\"\n"
				    "H = \"$${services.nope.port}\"\n",
			     &p, &d),
		   EINVAL);
	const Diag *x = ASSERT_DIAG(&d, DIAG_ERROR, 11, 5,
				    "A: ${services.apl.url} refers to unknown service \"apl\"");
	ASSERT_STREQ(x->hint, "did you mean \"api\"?");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 12, 5, "B: unknown field \"prot\" in ${services.api.prot}");
	ASSERT_STREQ(x->hint, "did you mean \"port\"?");
	ASSERT_DIAG(&d, DIAG_ERROR, 13, 5, "C: ${services.jobs.port}: worker \"jobs\" has no port");
	x = ASSERT_DIAG(&d, DIAG_ERROR, 14, 5, "D: unknown project field \"title\"");
	ASSERT_STRCONTAINS(x->hint, "${project.domain}");
	ASSERT_DIAG(&d, DIAG_ERROR, 15, 5, "E: malformed reference ${services.api}");
	x = ASSERT_DIAG(&d, DIAG_WARNING, 16, 5,
			"F: ${HOME} is not a locald reference and is passed on as written");
	ASSERT_STRCONTAINS(x->hint, "$${");
	ASSERT_DIAG(&d, DIAG_WARNING, 17, 5, "G: \"${\" without a closing '}' is kept as written");
	ASSERT_EQ(d.n_errors, 5);
	ASSERT_EQ(d.n_warnings, 2);
}

TEST(references_do_not_add_dependencies)
{
	_cleanup_diag_list_ DiagList d = DIAG_LIST_INIT;
	_cleanup_(project_freep) Project *p = NULL;
	ASSERT_OK(load_toml(
	    HEADER "[services.web]\ncommand = \"x\"\nenv = { API = \"${services.api.url}\" }\n"
		   "[services.api]\ncommand = \"x\"\nenv = { WEB = \"${services.web.url}\" }\n",
	    &p, &d));
	/* Mutual references are fine: ports are assigned before anything starts. */
	ASSERT_CLEAN(&d);
	ASSERT_NULL(p->services[0].depends_on);
	ProjectWaves w;
	ASSERT_OK(project_start_waves(p, &w, NULL));
	ASSERT_EQ(w.n_waves, 1);
	project_waves_done(&w);
}
