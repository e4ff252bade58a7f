/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * superd on the bus: the supervisor.proto calls mapped onto the engine, and the engine's
 * changes published as service.state.<project>.<service> and log.<project>.<service>.
 *
 * Calls that change state answer when the change is done, not when it was asked for:
 * StopService when the process is gone, Start/RestartService when the service is
 * running (or failed), StopProject when every process is gone, ApplyProject right away
 * or, with `wait`, once every service is ready, failed or blocked.
 */

#include "bus.h"
#include "loop.h"
#include "superd-engine.h"

typedef struct SuperdBus SuperdBus;

/* Registers the handlers on server; engine callbacks must be routed to
 * superd_bus_on_state()/superd_bus_on_log() by the caller (main.c). */
int superd_bus_new(Loop *loop, BusServer *server, Engine *engine, SuperdBus **ret);
SuperdBus *superd_bus_free(SuperdBus *b);

void superd_bus_on_state(void *userdata, Unit *u, UnitState previous, const char *reason);
void superd_bus_on_log(void *userdata, Unit *u, const LogRecord *rec);

void superd_bus_set_engine(SuperdBus *b, Engine *engine);
/* From now on, end the loop once no service has a process. */
void superd_bus_drain(SuperdBus *b);

/* Set once Shutdown was called: main stops the services, then exits. */
bool superd_bus_shutdown_requested(SuperdBus *b);
