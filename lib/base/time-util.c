/* SPDX-License-Identifier: MIT */
#include "time-util.h"

#include <time.h>

static usec_t now(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

usec_t now_monotonic(void)
{
	return now(CLOCK_MONOTONIC);
}

usec_t now_realtime(void)
{
	return now(CLOCK_REALTIME);
}
