/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Strict number/value parsing. Whole string must match (no trailing junk, no leading
 * whitespace, no empty string); overflow is an error. Return 0 or -EINVAL / -ERANGE,
 * and never touch *ret on failure.
 */

#include <stdbool.h>
#include <stdint.h>

int safe_atoi64(const char *s, int64_t *ret);
int safe_atou64(const char *s, uint64_t *ret);
int safe_atoi(const char *s, int *ret);
int safe_atou32(const char *s, uint32_t *ret);
/* TCP/UDP port 1..65535. */
int parse_port(const char *s, uint16_t *ret);
/* "1", "yes", "true", "on" / "0", "no", "false", "off" (case-insensitive). */
int parse_boolean(const char *s, bool *ret);
/*
 * Durations: "250ms", "1s", "1.5s", "2m", "1h", "1m30s", a bare number means seconds.
 * Result in milliseconds, must fit in uint32 ms (~49 days).
 */
int parse_duration_ms(const char *s, uint64_t *ret_ms);

/* "SIGTERM", "TERM", "sigterm", "15" → SIGTERM. -EINVAL for unknown names. */
int signal_from_string(const char *s);
/* SIGTERM → "SIGTERM"; NULL for unknown. */
const char *signal_to_string(int sig);
