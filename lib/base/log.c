/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "parse-util.h"
#include "strutil.h"

#define LOG_LINE_MAX 4096

static LogLevel max_level = LOG_LEVEL_INFO;
static char ident[64] = "locald";
static bool to_journal;
static bool use_color;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",   [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info",     [LOG_LEVEL_DEBUG] = "debug",
};

int log_level_from_string(const char *s)
{
	if (isempty(s))
		return -EINVAL;
	for (int l = LOG_LEVEL_ERROR; l <= LOG_LEVEL_DEBUG; l++)
		if (strcasecmp(s, level_names[l]) == 0)
			return l;
	int n;
	if (safe_atoi(s, &n) == 0 && n >= LOG_LEVEL_ERROR && n <= LOG_LEVEL_DEBUG)
		return n;
	return -EINVAL;
}

/* $JOURNAL_STREAM is "<dev>:<inode>" of the stream journald gave us; it only counts if
 * stderr is still that stream (a child with redirected stderr inherits the variable). */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	if (isempty(e))
		return false;
	unsigned long long dev, ino;
	if (sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	struct stat st;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(const char *name)
{
	if (name) {
		const char *slash = strrchr(name, '/');
		strscpy(ident, sizeof(ident), slash ? slash + 1 : name);
	}
	to_journal = stderr_is_journal();
	use_color = !to_journal && isatty(STDERR_FILENO) && !getenv("NO_COLOR");
	int l = log_level_from_string(getenv("LOCALD_LOG_LEVEL"));
	if (l >= 0)
		max_level = (LogLevel)l;
}

void log_set_max_level(LogLevel level)
{
	max_level = level;
}

LogLevel log_get_max_level(void)
{
	return max_level;
}

int log_internal(LogLevel level, int error, const char *file, int line, const char *func,
		 const char *fmt, ...)
{
	int saved_errno = errno;
	int err = error < 0 ? -error : error;
	char msg[LOG_LINE_MAX];
	char prefix[128];
	va_list ap;

	if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_ERROR;

	/* "%m" prints strerror(errno): make it the error we were given. */
	errno = err ? err : saved_errno;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* One message, one line: a newline inside would forge a second log entry. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	if (to_journal)
		strfmt(prefix, sizeof(prefix), "<%d>", (int)level);
	else if (use_color) {
		const char *color = level <= LOG_LEVEL_ERROR	 ? "\033[1;31m"
				    : level == LOG_LEVEL_WARNING ? "\033[1;33m"
				    : level == LOG_LEVEL_DEBUG	 ? "\033[2m"
								 : "";
		strfmt(prefix, sizeof(prefix), "%s: %s%s%s: ", ident, color, level_names[level],
		       *color ? "\033[0m" : "");
	} else
		strfmt(prefix, sizeof(prefix), "%s: %s: ", ident, level_names[level]);

	if (max_level >= LOG_LEVEL_DEBUG && file)
		strfmt(prefix + strlen(prefix), sizeof(prefix) - strlen(prefix), "(%s:%d %s) ",
		       strrchr(file, '/') ? strrchr(file, '/') + 1 : file, line, func);

	struct iovec iov[] = {
		{ .iov_base = prefix, .iov_len = strlen(prefix) },
		{ .iov_base = msg, .iov_len = strlen(msg) },
		{ .iov_base = (char *)"\n", .iov_len = 1 },
	};
	(void)!writev(STDERR_FILENO, iov, ELEMENTSOF(iov));

	errno = saved_errno;
	return err ? -err : 0;
}
