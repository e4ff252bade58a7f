/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between the files of lib/project; not part of the contract (project.h is). */

#include <sys/types.h>

#include "project.h"

#define _cleanup_project_ _cleanup_(project_freep)

/* Record a diagnostic at a SourcePos of `file`. */
#define diag_at(diags, severity, file, pos, hint, ...)                                             \
	diag_add((diags), (severity), (file), (pos).line, (pos).col, (hint), __VA_ARGS__)

#define POS(l, c) ((SourcePos){ .line = (l), .col = (c) })
#define POS_NONE ((SourcePos){ 0, 0 })

/* A new Project with dir/config_path/source set and nothing else. */
int project_new(const ProjectInput *in, Project **ret);

/* Append a service with the defaults of `type` (see README), named `name`. Returns the
 * new service (owned by p) or NULL on ENOMEM. Pointers to earlier services may move. */
Service *project_add_service(Project *p, const char *name, SourcePos pos);

/* Defaults that depend on what was written (domain from name, hosts, version, …);
 * run once after parsing. Warnings about host names go into diags. */
int project_finish(Project *p, DiagList *diags);

/* dir + "/" + rel, or rel when it is absolute; "." and trailing "/" folded. NULL on ENOMEM. */
char *project_path_resolve(const char *dir, const char *rel);

/* Is s a DNS label? `relaxed` also allows '_' and uppercase (worker names: no host). */
bool name_is_label(const char *s, bool relaxed);

/* Parsers filling a project made by project_new(). 0, -EINVAL (nothing usable), -ENOMEM. */
int project_parse_toml(Project *p, const char *data, size_t len, DiagList *diags);
int project_parse_procfile(Project *p, const char *data, size_t len, DiagList *diags);

/* Check every ${…} in service env values (unknown service/field, worker port, …). */
int project_check_references(const Project *p, DiagList *diags);

/* Report each dependency cycle once (one per strongly connected component). */
int project_check_cycles(const Project *p, DiagList *diags);

/* The names the config accepts, NULL-terminated (for "did you mean"). */
const char *const *service_type_names(void);
const char *const *health_check_type_names(void);
const char *const *restart_policy_names(void);

/* Index of the service named `name`, or -1. */
ssize_t project_service_index(const Project *p, const char *name);

/* NULL-terminated list of service names (borrowed strings) for "did you mean". */
const char **project_service_names(const Project *p);
