/* SPDX-License-Identifier: MIT */
#include "bus-names.h"
#include "locald/v1/envelope.pb-c.h"
#include "macro.h"

const char *bus_service_state_name(int state)
{
	static const char *const names[] = {
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPED] = "stopped",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_WAITING] = "waiting",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BUILDING] = "building",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STARTING] = "starting",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_RUNNING] = "running",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_UNHEALTHY] = "unhealthy",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_STOPPING] = "stopping",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BACKOFF] = "backoff",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_FAILED] = "failed",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_EXITED] = "exited",
		[LOCALD__V1__SERVICE_STATE__SERVICE_STATE_BLOCKED] = "blocked",
	};
	if (state <= 0 || (unsigned)state >= ELEMENTSOF(names) || !names[state])
		return "unknown";
	return names[state];
}
