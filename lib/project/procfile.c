/* SPDX-License-Identifier: MIT */
/*
 * Procfile → Project. The format (Heroku's, as foreman and the original locald read it):
 * one `name: command` per line, `#` comments, blank lines. `web` listens on $PORT (an
 * exec service); every other process is a worker. The project is named after its
 * directory.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "project-internal.h"
#include "strutil.h"

static bool is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-';
}

static void procfile_error(Project *p, DiagList *diags, uint32_t line, uint32_t col,
			   const char *hint, const char *msg)
{
	(void)diag_add(diags, DIAG_ERROR, p->config_path, line, col, hint, "%s", msg);
}

/* One line, without its '\n'. Adds the service, or a diagnostic. -ENOMEM only. */
static int procfile_line(Project *p, const char *l, size_t n, uint32_t line, DiagList *diags)
{
	static const char shape[] =
	    "write \"name: command\", like \"web: python3 -m http.server $PORT\"";

	if (memchr(l, 0, n)) {
		procfile_error(p, diags, line, 0, NULL, "line contains a NUL character");
		return 0;
	}
	size_t i = 0;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	while (n > i && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
		n--;
	if (i == n || l[i] == '#')
		return 0;

	size_t name_start = i;
	while (i < n && is_name_char(l[i]))
		i++;
	if (i == name_start || i == n || l[i] != ':') {
		procfile_error(p, diags, line, (uint32_t)(i + 1), shape,
			       i == name_start ? "expected a process name"
					       : "expected ':' after the process name");
		return 0;
	}
	_cleanup_free_ char *name = strndup_safe(l + name_start, i - name_start);
	if (!name)
		return -ENOMEM;
	i++; /* ':' */
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i == n) {
		procfile_error(p, diags, line, (uint32_t)(i + 1), shape,
			       "expected a command after ':'");
		return 0;
	}

	Service *dup = project_find_service(p, name);
	if (dup) {
		(void)diag_add(diags, DIAG_ERROR, p->config_path, line, (uint32_t)(name_start + 1),
			       "give each process its own name",
			       "process \"%s\" is defined twice (first on line %" PRIu32 ")", name,
			       dup->pos.name.line);
		return 0;
	}
	if (p->n_services >= PROJECT_SERVICES_MAX) {
		procfile_error(p, diags, line, 1, "split the project", "too many processes");
		return 0;
	}

	bool web = streq(name, "web");
	if (!web && !name_is_label(name, true))
		procfile_error(p, diags, line, (uint32_t)(name_start + 1),
			       "use at most 63 letters, digits, '_' and '-', not '-' at either end",
			       "invalid process name");
	Service *s = project_add_service(p, name, POS(line, (uint32_t)(name_start + 1)));
	if (!s)
		return -ENOMEM;
	s->type = web ? SERVICE_EXEC : SERVICE_WORKER;
	s->pos.command = POS(line, (uint32_t)(i + 1));
	s->command = strndup_safe(l + i, n - i);
	return s->command ? 0 : -ENOMEM;
}

int project_parse_procfile(Project *p, const char *data, size_t len, DiagList *diags)
{
	int r = project_name_from_dir(p->dir, &p->name);
	if (r < 0)
		return r;

	uint32_t line = 1;
	for (size_t i = 0; i < len; line++) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (data + i)) : len - i;
		r = procfile_line(p, data + i, n, line, diags);
		if (r < 0)
			return r;
		i += n + 1;
	}
	return 0;
}
