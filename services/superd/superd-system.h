/* SPDX-License-Identifier: MIT */
#pragma once

/* Embedded mode: the built-in `system` project (superd-system.c). */

#include <stdbool.h>
#include <stdint.h>

#include "superd-engine.h"

typedef struct SystemPorts {
	uint16_t http, https;
	bool kept; /* reused from a proxyd that outlived the previous superd */
} SystemPorts;

/* The proxy's ports, decided before any service URL is computed. */
int system_choose_ports(const char *runtime, SystemPorts *ret);

/*
 * Write <runtime>/system/locald.toml (proxyd as a notify-ready worker, restarted
 * always) and apply it. Without a locald-proxyd binary, *ret_warning says so (malloc'd)
 * and nothing is applied; returns 0.
 */
int system_project_apply(Engine *e, const char *runtime, const SystemPorts *ports,
			 char **ret_warning);
