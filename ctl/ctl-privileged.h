/* SPDX-License-Identifier: MIT */
#pragma once

/* The commands of issue 7 (ctl-admin.c, ctl-trust.c, ctl-doctor.c); they need
 * shim_client_dep (shim/shim-client.h) and, for doctor, gnutls. */

#include "ctl.h"

int cmd_admin(Ctl *ctl, int argc, char **argv);
int cmd_trust(Ctl *ctl, int argc, char **argv);
int cmd_untrust(Ctl *ctl, int argc, char **argv);
int cmd_doctor(Ctl *ctl, int argc, char **argv);
