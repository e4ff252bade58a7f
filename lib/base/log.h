/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging for daemons and tools. Library code does not log; its caller logs once.
 *
 * Sink: stderr. Format: "<ident>: <level>: message" (levels colored when stderr is a TTY).
 * When $JOURNAL_STREAM names our stderr (we run under systemd), lines carry the
 * "<N>" syslog-priority prefix that journald parses instead, and no ident or color.
 * Messages are one line: embedded newlines are replaced by spaces.
 * "%m" works in formats and prints strerror(-error) for the *_errno variants.
 */

#include "macro.h"

typedef enum LogLevel {
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
	_LOG_LEVEL_INVALID = -22,
} LogLevel;

/* Call once from main(): ident (program name), and reads $LOCALD_LOG_LEVEL if set. */
void log_setup(const char *ident);
void log_set_max_level(LogLevel level);
LogLevel log_get_max_level(void);
/* "error", "warning", "notice", "info", "debug" (or 3..7) → level; -EINVAL otherwise. */
int log_level_from_string(const char *s);

/* Returns -abs(error) if error != 0, else 0, so callers can `return log_…_errno(r, …)`. */
int log_internal(LogLevel level, int error, const char *file, int line, const char *func,
		 const char *fmt, ...) _printf_(6, 7);

#define log_full_errno(level, error, ...)                                                          \
	({                                                                                         \
		int _e = (error);                                                                  \
		(LogLevel)(level) <= log_get_max_level()                                           \
			? log_internal(level, _e, __FILE__, __LINE__, __func__, __VA_ARGS__)       \
			: (_e < 0 ? _e : -_e);                                                     \
	})
#define log_full(level, ...) (void)log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_LEVEL_ERROR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_LEVEL_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_LEVEL_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...) log_full_errno(LOG_LEVEL_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_LEVEL_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_LEVEL_ERROR, error, __VA_ARGS__)

/* Log "out of memory" and return -ENOMEM. */
#define log_oom() log_error_errno(-ENOMEM, "out of memory")
