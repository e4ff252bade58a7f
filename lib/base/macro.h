/* SPDX-License-Identifier: MIT */
#pragma once

/* Small macros every layer uses: cleanup attributes, ownership hand-off, sizes. */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _pure_ __attribute__((pure))
#define _fallthrough_ __attribute__((fallthrough))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define STRLEN(x) (sizeof("" x "") - 1)

/* MIN/MAX evaluate each argument once; __COUNTER__ gives every expansion its own
 * temporaries, so MIN(MIN(a, b), c) does not shadow. */
#undef MIN /* <sys/param.h> (pulled in by <uv.h>) has its own */
#undef MAX
#define MIN(a, b) MINMAX_IMPL_(a, b, <, __COUNTER__)
#define MAX(a, b) MINMAX_IMPL_(a, b, >, __COUNTER__)
#define MINMAX_IMPL_(a, b, op, n) MINMAX_IMPL2_(a, b, op, n)
#define MINMAX_IMPL2_(a, b, op, n)                                                                 \
	({                                                                                         \
		__typeof__(a) a_##n = (a);                                                         \
		__typeof__(b) b_##n = (b);                                                         \
		a_##n op b_##n ? a_##n : b_##n;                                                    \
	})

/* Hand ownership of a pointer/fd to someone else: returns the value, leaves NULL/-1 behind. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p = (p);                                                            \
		(p) = NULL;                                                                        \
		_p;                                                                                \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_fd;                                                                               \
	})

/* Define `static inline void name(type *p)` calling func(*p) when *p is set. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
	static inline void func##p(type *p)                                                        \
	{                                                                                          \
		if (*p)                                                                            \
			func(*p);                                                                  \
	}

/* free() for `p = mfree(p)`. */
static inline void *mfree(void *p)
{
	free(p);
	return NULL;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* close() that keeps errno and accepts -1; returns -1 for `fd = safe_close(fd)`. */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}
static inline void closep(int *fd)
{
	safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* errno as a negative value, never 0 (some libc paths leave errno unset). */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* Run a libc-style call (-1 + errno on failure) and turn it into 0 / -errno. */
#define RET_NERRNO(expr)                                                                           \
	({                                                                                         \
		int _r = (expr);                                                                   \
		_r < 0 ? negative_errno() : _r;                                                    \
	})
