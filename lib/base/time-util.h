/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

typedef uint64_t usec_t;
#define USEC_PER_SEC ((usec_t)1000000)
#define USEC_PER_MSEC ((usec_t)1000)

usec_t now_monotonic(void); /* CLOCK_MONOTONIC */
usec_t now_realtime(void);  /* CLOCK_REALTIME */
