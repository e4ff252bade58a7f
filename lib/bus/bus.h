/* SPDX-License-Identifier: MIT */
#pragma once

/* The locald bus: everything a daemon or the CLI needs (see README.md). */

#include "bus-client.h"
#include "bus-codec.h"
#include "bus-endpoint.h"
#include "bus-server.h"
#include "bus-subscriber.h"
