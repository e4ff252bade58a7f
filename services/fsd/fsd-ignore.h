/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The .dockerignore matcher (sans-I/O): Docker's rules as moby/patternmatcher and the
 * buildkit dockerignore reader implement them.
 *
 *   - a line starting with '#' is a comment; lines are trimmed of surrounding white
 *     space; empty lines are skipped; a UTF-8 BOM on the first line is dropped
 *   - '!' makes the pattern an exception (re-includes what earlier lines excluded)
 *   - patterns are cleaned like Go's filepath.Clean; a leading '/' is dropped
 *   - '*' any run of non-'/', '?' one non-'/', '[...]' a class ('^' negates, ranges),
 *     '\' escapes, '**' any number of directories ("**" at the end: anything)
 *   - a path is matched as is and through its parents (a pattern "a" hides "a/b/c")
 *   - the last matching line decides
 *
 * Patterns from several sources are appended in order (.dockerignore, then
 * .localdignore, then explicit patterns), so later sources override earlier ones.
 */

#include <stdbool.h>
#include <stddef.h>

typedef struct Ignore Ignore;

/* Hard limits: a file bigger than this is refused, not truncated. */
#define IGNORE_TEXT_MAX (1024 * 1024)
#define IGNORE_PATTERNS_MAX 10000
#define IGNORE_PATTERN_LEN_MAX 4096

int ignore_new(Ignore **ret);
Ignore *ignore_free(Ignore *ig);
static inline void ignore_freep(Ignore **ig)
{
	if (*ig)
		ignore_free(*ig);
}

/*
 * Add the lines of a .dockerignore text. -E2BIG past the limits, -ENOMEM; on error the
 * patterns already added stay. ret_line (may be NULL) gets the failing line number.
 */
int ignore_add_text(Ignore *ig, const char *text, size_t size, unsigned *ret_line);
/* One pattern, same syntax as a line. */
int ignore_add_pattern(Ignore *ig, const char *pattern);
size_t ignore_count(const Ignore *ig);
bool ignore_has_exceptions(const Ignore *ig);

/*
 * Whether `path` (relative to the context root, '/'-separated, no leading '/') is
 * excluded. Paths are cleaned first. BuildKit's MatchesOrParentMatches(): a pattern
 * matches the path itself or any of its parent directories.
 */
bool ignore_match(const Ignore *ig, const char *path);

/*
 * Whether `path` is hidden from the merged view: excluded, and (for a directory) no
 * exception pattern could re-include something beneath it. A directory kept only
 * because an exception may match inside stays visible; its children are then decided
 * one by one.
 */
bool ignore_hidden(const Ignore *ig, const char *path, bool is_dir);

/* Go's filepath.Clean on a '/'-separated path, in place. Returns s. */
char *ignore_path_clean(char *s);
