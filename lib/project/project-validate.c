/* SPDX-License-Identifier: MIT */
/* Checks that look across services: dependencies, cycles, fixed ports, references. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "project-internal.h"
#include "strutil.h"

static int check_depends_on(const Project *p, DiagList *diags)
{
	_cleanup_free_ const char **names = project_service_names(p);
	if (!names)
		return -ENOMEM;

	for (size_t i = 0; i < p->n_services; i++) {
		const Service *s = &p->services[i];
		STRV_FOREACH (d, s->depends_on) {
			if (project_find_service(p, *d))
				continue;
			SourcePos pos = s->depends_on_pos[d - s->depends_on];
			const char *near = diag_suggest(*d, names);
			_cleanup_free_ char *hint =
			    near
				? strdupf("did you mean \"%s\"?", near)
				: strdupf("define [services.%s], or remove it from depends_on", *d);
			diag_at(diags, DIAG_ERROR, p->config_path, pos, hint,
				"service \"%s\" depends on unknown service \"%s\"", s->name, *d);
		}
	}
	return 0;
}

static int check_ports(const Project *p, DiagList *diags)
{
	for (size_t i = 0; i < p->n_services; i++) {
		const Service *s = &p->services[i];
		if (s->port == 0)
			continue;
		/* Report each later duplicate against the first service that took the port. */
		for (size_t j = 0; j < i; j++) {
			const Service *o = &p->services[j];
			if (o->port != s->port)
				continue;
			diag_at(diags, DIAG_ERROR, p->config_path, s->pos.port,
				"remove one of the fixed ports to have a free one assigned",
				"port %u of service \"%s\" is already the port of service \"%s\" "
				"(line %" PRIu32 ")",
				(unsigned)s->port, s->name, o->name, o->pos.port.line);
			break;
		}
	}
	return 0;
}

int project_validate(const Project *p, DiagList *diags)
{
	int r = check_depends_on(p, diags);
	if (r >= 0)
		r = project_check_cycles(p, diags);
	if (r >= 0)
		r = check_ports(p, diags);
	if (r >= 0)
		r = project_check_references(p, diags);
	if (r >= 0 && diags->oom)
		r = -ENOMEM;
	return r;
}
