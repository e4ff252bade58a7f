/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the project model (lib/project). The first byte selects what the
 * rest is (its low two bits, so the seed files can start with a readable '0'..'3'):
 *   0  a locald.toml
 *   1  a Procfile
 *   2  a .env, next to a small fixed locald.toml that references it
 *   3  a locald.toml, a NUL byte, then a .env
 * Everything the model offers then runs on the result: validation, start waves and
 * closures, interpolation and environment layering, URLs, and formatting of every
 * diagnostic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "project.h"
#include "strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fake_port(const Project *p, const Service *s, void *userdata, uint16_t *ret)
{
	size_t i = (size_t)(s - p->services);
	if (i % 7 == 6)
		return -ENOENT; /* some ports are "not assigned yet" */
	*ret = s->port ? s->port : (uint16_t)(20000 + i);
	return 0;
}

static void exercise(Project *p)
{
	ProjectResolver r = { .port = fake_port, .https_port = 8443 };
	char *inherited[] = { (char *)"PATH=/usr/bin", (char *)"HOME=/root", NULL };
	char *injected[] = { (char *)"PORT=1", NULL };

	for (size_t i = 0; i < p->n_services; i++) {
		Service *s = &p->services[i];
		char *url = NULL;
		if (project_service_url(p, s, (uint16_t)(i % 2 ? 443 : 8443), &url) >= 0)
			free(url);
		for (size_t k = 0; k < s->env.n; k++) {
			char *v = NULL;
			if (project_interpolate(p, s->env.vars[k].value, &r, &v) >= 0)
				free(v);
		}
		char **env = NULL;
		if (project_service_env(p, s, inherited, injected, &r, &env) >= 0)
			strv_free(env);
	}

	ProjectWaves w;
	char *cycle = NULL;
	if (project_start_waves(p, &w, &cycle) >= 0) {
		bool *set = calloc(w.n_services + 1, sizeof(bool));
		for (size_t i = 0; set && i < w.n_services; i++) {
			memset(set, 0, w.n_services * sizeof(bool));
			(void)project_waves_closure(&w, i, i % 2, set);
		}
		free(set);
		project_waves_done(&w);
	}
	free(cycle);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char fixed_toml[] = "[project]\nname = \"fuzz\"\n[services.web]\n"
					 "command = \"x\"\nenv = { A = \"${services.web.url}\" }\n";
	if (size < 1)
		return 0;
	unsigned selector = data[0] & 3;
	const char *rest = (const char *)data + 1;
	size_t len = size - 1;

	ProjectInput in = {
		.source = selector == 1 ? PROJECT_SOURCE_PROCFILE : PROJECT_SOURCE_TOML,
		.dir = "/srv/Fuzz Project",
		.config_path = selector == 1 ? "Procfile" : "locald.toml",
		.config = rest,
		.config_len = len,
	};
	if (selector == 2) {
		in.config = fixed_toml;
		in.config_len = sizeof(fixed_toml) - 1;
		in.dotenv_path = ".env";
		in.dotenv = rest;
		in.dotenv_len = len;
	} else if (selector == 3) {
		const char *nul = memchr(rest, 0, len);
		if (nul) {
			in.config_len = (size_t)(nul - rest);
			in.dotenv_path = ".env";
			in.dotenv = nul + 1;
			in.dotenv_len = len - in.config_len - 1;
		}
	}

	DiagList diags = DIAG_LIST_INIT;
	Project *p = NULL;
	if (project_parse(&in, &p, &diags) >= 0) {
		(void)project_validate(p, &diags);
		exercise(p);
		p = project_free(p);
	}
	/* The all-in-one entry point must find the same errors, and fail exactly when it does. */
	size_t errors = diags.n_errors;
	diag_list_done(&diags);
	int r = project_load_memory(&in, &p, &diags);
	if (r != -ENOMEM && r != -EFBIG &&
	    (errors != diags.n_errors || (r == -EINVAL) != (errors > 0)))
		abort();
	if (r >= 0) {
		exercise(p);
		p = project_free(p);
	}

	diag_list_sort(&diags);
	Buf b = BUF_INIT(0);
	for (size_t i = 0; i < diags.n; i++)
		(void)diag_format(&diags.items[i], &b);
	buf_done(&b);
	for (size_t i = 0; i < diags.n; i++)
		free(diag_to_string(&diags.items[i]));
	diag_list_done(&diags);
	return 0;
}
