/* SPDX-License-Identifier: MIT */
#pragma once

/* Names of protocol enums as locald shows them everywhere (CLI, dashboard, pages). */

/* Locald__V1__ServiceState → "running", "starting", …; "unknown" for anything else. */
const char *bus_service_state_name(int state);
