/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/openat2.h>
#include <sys/syscall.h>
#endif

#include "buf.h"
#include "macro.h"
#include "static.h"
#include "strutil.h"

#ifdef __APPLE__
#define st_mtim st_mtimespec
#endif

/* Search-only directory fds where the system has them: no read permission needed. */
#if defined(O_PATH)
#define DIR_WALK_FLAGS O_PATH
#elif defined(O_SEARCH)
#define DIR_WALK_FLAGS O_SEARCH
#else
#define DIR_WALK_FLAGS O_RDONLY
#endif

#define STATIC_PATH_MAX 4096u
#define STATIC_SYMLINKS_MAX 40u
#define STATIC_DEPTH_MAX 256u
#define STATIC_LISTING_ENTRIES_MAX 10000u
#define STATIC_LISTING_MAX (4u * 1024u * 1024u)

#define OPEN_FILE_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Tests set this to run the portable resolver where openat2() exists too. */
extern bool static_portable_only;
bool static_portable_only = false;

typedef struct MimeType {
	const char *ext, *type;
} MimeType;

static const MimeType mime_types[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "cjs", "text/javascript; charset=utf-8" },
	{ "json", "application/json" },
	{ "map", "application/json" },
	{ "webmanifest", "application/manifest+json" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "md", "text/markdown; charset=utf-8" },
	{ "csv", "text/csv; charset=utf-8" },
	{ "xml", "application/xml" },
	{ "xhtml", "application/xhtml+xml" },
	{ "rss", "application/rss+xml" },
	{ "atom", "application/atom+xml" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "apng", "image/apng" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "avif", "image/avif" },
	{ "ico", "image/x-icon" },
	{ "bmp", "image/bmp" },
	{ "tif", "image/tiff" },
	{ "tiff", "image/tiff" },
	{ "woff", "font/woff" },
	{ "woff2", "font/woff2" },
	{ "ttf", "font/ttf" },
	{ "otf", "font/otf" },
	{ "wasm", "application/wasm" },
	{ "pdf", "application/pdf" },
	{ "mp4", "video/mp4" },
	{ "m4v", "video/mp4" },
	{ "webm", "video/webm" },
	{ "ogv", "video/ogg" },
	{ "mp3", "audio/mpeg" },
	{ "m4a", "audio/mp4" },
	{ "ogg", "audio/ogg" },
	{ "oga", "audio/ogg" },
	{ "opus", "audio/ogg" },
	{ "wav", "audio/wav" },
	{ "flac", "audio/flac" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },
	{ "tar", "application/x-tar" },
	{ "wat", "text/plain; charset=utf-8" },
	{ "yaml", "text/yaml; charset=utf-8" },
	{ "yml", "text/yaml; charset=utf-8" },
	{ "toml", "text/plain; charset=utf-8" },
};

const char *static_mime_type(const char *path)
{
	if (!path)
		return "application/octet-stream";
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	if (!dot || dot == base)
		return "application/octet-stream";
	for (size_t i = 0; i < ELEMENTSOF(mime_types); i++)
		if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
			return mime_types[i].type;
	return "application/octet-stream";
}

void static_response_done(StaticResponse *r)
{
	if (!r)
		return;
	safe_close(r->fd);
	free(r->location);
	free(r->body);
	*r = (StaticResponse){ .fd = -1 };
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * "/a/%2e%2e/b/" → "b" (relative to the root) and whether it ended in a slash.
 * -EINVAL: malformed escape, a NUL, a control byte; -EXDEV: ".." above the root.
 */
static int path_normalize(const char *raw, Buf *ret, bool *ret_slash)
{
	_cleanup_buf_ Buf dec = BUF_INIT(STATIC_PATH_MAX);
	int r;

	if (!raw || raw[0] != '/')
		return -EINVAL;
	for (const char *p = raw; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '%') {
			int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (unsigned char)(hi * 16 + lo);
			p += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
		r = buf_append_byte(&dec, c);
		if (r < 0)
			return r == -E2BIG ? -ENAMETOOLONG : r;
	}

	/* Lexically: ".", "" dropped, ".." pops; what stays has neither. */
	bool slash = false;
	const char *p = dec.data;
	while (*p) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		const char *c = p;
		p += n;
		if (n == 0)
			break;
		slash = *p == '/';
		if (n == 1 && c[0] == '.') {
			slash = true;
			continue;
		}
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (ret->len == 0)
				return -EXDEV;
			while (ret->len > 0 && ret->data[ret->len - 1] != '/')
				ret->len--;
			if (ret->len > 0)
				ret->len--;
			ret->data[ret->len] = 0;
			slash = true;
			continue;
		}
		if (ret->len > 0) {
			r = buf_append_byte(ret, '/');
			if (r < 0)
				return r;
		}
		r = buf_append(ret, c, n);
		if (r < 0)
			return r;
	}
	if (ret->len == 0)
		slash = true;
	*ret_slash = slash;
	return 0;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		safe_close(fds[i]);
}

/*
 * Open `rel` under `rootfd` one component at a time, never following a symlink blindly:
 * each one is read and spliced into the rest of the path; an absolute target or a ".."
 * above the root → -EXDEV. The last component is opened for reading.
 */
static int open_beneath_portable(int rootfd, const char *rel, int *ret_fd)
{
	_cleanup_free_ char *path = strdup(rel);
	int fds[STATIC_DEPTH_MAX + 1];
	size_t depth = 0;
	unsigned links = 0;
	int r;

	if (!path)
		return -ENOMEM;
	fds[0] = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (fds[0] < 0)
		return negative_errno();

	char *p = path;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p) {
			/* Everything consumed: the directory we are in is the result. */
			int fd = openat(fds[depth], ".", OPEN_FILE_FLAGS | O_DIRECTORY);
			r = fd < 0 ? negative_errno() : 0;
			close_fds(fds, depth + 1);
			if (r < 0)
				return r;
			*ret_fd = fd;
			return 0;
		}
		char *c = p;
		p += strcspn(p, "/");
		if (*p == '/')
			*p++ = 0;
		const char *rest = p;
		while (*rest == '/')
			rest++;
		bool last = *rest == 0;

		if (streq(c, "."))
			continue;
		if (streq(c, "..")) {
			if (depth == 0) {
				r = -EXDEV;
				goto fail;
			}
			fds[depth] = safe_close(fds[depth]);
			depth--;
			continue;
		}

		int fd = openat(fds[depth], c,
				(last ? OPEN_FILE_FLAGS : DIR_WALK_FLAGS | O_CLOEXEC) | O_NOFOLLOW);
		bool is_link = false;
		struct stat st;
		if (fd < 0) {
			if (errno != ELOOP && errno != EMLINK) {
				r = negative_errno();
				goto fail;
			}
			is_link = true;
		} else if (fstat(fd, &st) < 0) {
			r = negative_errno();
			safe_close(fd);
			goto fail;
		} else if (S_ISLNK(st.st_mode)) {
			/* O_PATH | O_NOFOLLOW opens the link itself. */
			fd = safe_close(fd);
			is_link = true;
		}

		if (is_link) {
			char target[PATH_MAX];
			if (++links > STATIC_SYMLINKS_MAX) {
				r = -ELOOP;
				goto fail;
			}
			ssize_t n = readlinkat(fds[depth], c, target, sizeof(target));
			if (n < 0) {
				r = negative_errno();
				goto fail;
			}
			if ((size_t)n >= sizeof(target) || n == 0) {
				r = n == 0 ? -ENOENT : -ENAMETOOLONG;
				goto fail;
			}
			if (target[0] == '/') {
				r = -EXDEV;
				goto fail;
			}
			char *joined = strdupf("%.*s/%s", (int)n, target, rest);
			if (!joined) {
				r = -ENOMEM;
				goto fail;
			}
			free(path);
			path = joined;
			p = path;
			continue;
		}

		if (last) {
			close_fds(fds, depth + 1);
			*ret_fd = fd;
			return 0;
		}
		if (!S_ISDIR(st.st_mode)) {
			safe_close(fd);
			r = -ENOTDIR;
			goto fail;
		}
		if (depth >= STATIC_DEPTH_MAX) {
			safe_close(fd);
			r = -ENAMETOOLONG;
			goto fail;
		}
		fds[++depth] = fd;
	}

fail:
	close_fds(fds, depth + 1);
	return r;
}

static int open_beneath(int rootfd, const char *rel, int *ret_fd)
{
#if defined(__linux__) && defined(SYS_openat2)
	if (!static_portable_only) {
		struct open_how how = {
			.flags = OPEN_FILE_FLAGS,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
		};
		for (int attempt = 0; attempt < 4; attempt++) {
			long fd =
			    syscall(SYS_openat2, rootfd, rel[0] ? rel : ".", &how, sizeof(how));
			if (fd >= 0) {
				*ret_fd = (int)fd;
				return 0;
			}
			/* EAGAIN: a concurrent rename or mount; try again. */
			if (errno != EAGAIN)
				break;
		}
		/* Older kernels and seccomp filters: the portable walk below. */
		if (errno != ENOSYS && errno != EPERM && errno != EAGAIN)
			return negative_errno();
	}
#endif
	return open_beneath_portable(rootfd, rel, ret_fd);
}

static int set_body(StaticResponse *s, int status, const char *type, char *body, size_t len)
{
	if (!body)
		return -ENOMEM;
	free(s->body);
	s->status = status;
	s->content_type = type;
	s->body = body;
	s->body_len = len;
	s->offset = 0;
	s->length = len;
	return 0;
}

static int set_error(StaticResponse *s, int status, const char *text)
{
	char *body = strdupf("%d %s\n", status, text);
	return set_body(s, status, "text/plain; charset=utf-8", body, body ? strlen(body) : 0);
}

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* IMF-fixdate, independent of the locale. */
static void format_http_date(time_t t, char ret[static 64])
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11) {
		ret[0] = 0;
		return;
	}
	(void)strfmt(ret, 64, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday], tm.tm_mday,
		     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool parse_digits(const char **p, size_t n, int *ret)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return true;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" only; anything else is no date (RFC 9110 says ignore). */
static bool parse_http_date(const char *s, time_t *ret)
{
	struct tm tm = { 0 };
	int mday, year, h, m, sec;
	const char *p = s;

	if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ')
		return false;
	p += 5;
	if (!parse_digits(&p, 2, &mday) || *p++ != ' ')
		return false;
	int mon = -1;
	for (int i = 0; i < 12; i++)
		if (strncmp(p, months[i], 3) == 0)
			mon = i;
	if (mon < 0)
		return false;
	p += 3;
	if (*p++ != ' ' || !parse_digits(&p, 4, &year) || *p++ != ' ' || !parse_digits(&p, 2, &h) ||
	    *p++ != ':' || !parse_digits(&p, 2, &m) || *p++ != ':' || !parse_digits(&p, 2, &sec) ||
	    !streq(p, " GMT"))
		return false;
	if (mday < 1 || mday > 31 || h > 23 || m > 59 || sec > 60 || year < 1970)
		return false;
	tm.tm_mday = mday;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*ret = t;
	return true;
}

/* If-None-Match: "*" or a list of entity tags, compared weakly. */
static bool etag_matches(const char *header, const char *etag)
{
	const char *ours = startswith(etag, "W/") ?: etag;
	size_t ours_len = strlen(ours);
	const char *p = header;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			return false;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p != '"')
			return false;
		const char *end = strchr(p + 1, '"');
		if (!end)
			return false;
		if ((size_t)(end + 1 - p) == ours_len && memcmp(p, ours, ours_len) == 0)
			return true;
		p = end + 1;
	}
}

static bool parse_u64(const char **p, uint64_t *ret)
{
	uint64_t v = 0;
	const char *s = *p;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*ret = v;
	return true;
}

/* 1: serve [*ret_first, *ret_last]; 0: ignore the field (whole file); -1: unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *ret_first, uint64_t *ret_last)
{
	uint64_t a, b;
	const char *p = h;

	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "bytes=", 6) != 0)
		return 0;
	p += 6;
	if (strchr(p, ','))
		return 0; /* several ranges: the whole file is simpler and allowed */
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-') {
		p++;
		if (!parse_u64(&p, &b))
			return 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*ret_first = b >= size ? 0 : size - b;
		*ret_last = size - 1;
		return 1;
	}
	if (!parse_u64(&p, &a) || *p++ != '-')
		return 0;
	bool open_end = *p == 0 || *p == ' ' || *p == '\t';
	if (!open_end && !parse_u64(&p, &b))
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p)
		return 0;
	if (!open_end && b < a)
		return 0; /* invalid: ignored, like a missing field */
	if (a >= size)
		return -1;
	*ret_first = a;
	*ret_last = open_end || b >= size ? size - 1 : b;
	return 1;
}

typedef struct Entry {
	char *name;
	bool dir;
	uint64_t size;
	time_t mtime;
} Entry;

static int entry_compare(const void *x, const void *y)
{
	const Entry *a = x, *b = y;
	if (a->dir != b->dir)
		return a->dir ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int append_html_escaped(Buf *b, const char *s)
{
	_cleanup_buf_ Buf u = BUF_INIT(0);
	int r = utf8_sanitize(s, strlen(s), &u);
	if (r < 0)
		return r;
	for (size_t i = 0; i < u.len; i++) {
		unsigned char c = (unsigned char)u.data[i];
		switch (c) {
		case '&':
			r = buf_append_str(b, "&amp;");
			break;
		case '<':
			r = buf_append_str(b, "&lt;");
			break;
		case '>':
			r = buf_append_str(b, "&gt;");
			break;
		case '"':
			r = buf_append_str(b, "&quot;");
			break;
		case '\'':
			r = buf_append_str(b, "&#39;");
			break;
		default:
			/* A control character in a file name is shown as U+FFFD. */
			r = c < 0x20 || c == 0x7f ? buf_append_str(b, "\xef\xbf\xbd")
						  : buf_append_byte(b, c);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int append_url_escaped(Buf *b, const char *s)
{
	int r = 0;
	for (const unsigned char *p = (const unsigned char *)s; r >= 0 && *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
			r = buf_append_byte(b, *p);
		else
			r = buf_printf(b, "%%%02X", *p);
	}
	return r < 0 ? r : 0;
}

static void entries_free(Entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

static void format_size(uint64_t v, char ret[static 32])
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;
	uint64_t tenths = v * 10;
	if (v < 1024) {
		(void)strfmt(ret, 32, "%" PRIu64 " B", v);
		return;
	}
	while (v >= 1024 * 1024 && u < ELEMENTSOF(units) - 2) {
		v /= 1024;
		u++;
	}
	tenths = v * 10 / 1024;
	(void)strfmt(ret, 32, "%" PRIu64 ".%" PRIu64 " %s", tenths / 10, tenths % 10, units[u + 1]);
}

static const char *const listing_css =
    ":root{color-scheme:light dark;--bg:#f5f6f8;--card:#fff;--fg:#1c2128;--muted:#5c6570;"
    "--line:#e2e5e9;--soft:#f0f2f4;--accent:#2f6fdb}"
    "@media (prefers-color-scheme:dark){:root{--bg:#0e1116;--card:#161b22;--fg:#e4e8ed;"
    "--muted:#8b949e;--line:#2b323b;--soft:#1f252d;--accent:#5b9cf5}}"
    "body{margin:0;padding:6vh 20px 40px;background:var(--bg);color:var(--fg);"
    "font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\","
    "\"Noto Sans\",\"Liberation Sans\",Arial,sans-serif}"
    "main{max-width:860px;margin:0 auto;background:var(--card);border:1px solid var(--line);"
    "border-radius:10px;padding:22px 26px}"
    "h1{font-size:19px;font-weight:600;margin:0 0 14px;overflow-wrap:anywhere}"
    "table{width:100%;border-collapse:collapse;font-size:14px}"
    "td{padding:6px 8px;border-top:1px solid var(--line)}"
    "td.n{width:100%;overflow-wrap:anywhere}td.s,td.m{white-space:nowrap;color:var(--muted);"
    "text-align:right;font-variant-numeric:tabular-nums}"
    "a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}"
    "tr:hover td{background:var(--soft)}";

/* An HTML index of the directory `dirfd`; `shown` is its decoded path ("/a/b/"). */
static int render_listing(int dir_fd, const char *shown, bool at_root, char **ret, size_t *ret_len)
{
	_cleanup_buf_ Buf b = BUF_INIT(STATIC_LISTING_MAX);
	Entry *entries = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return negative_errno();
	DIR *d = fdopendir(fd);
	if (!d) {
		r = negative_errno();
		safe_close(fd);
		return r;
	}
	rewinddir(d);
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			r = errno > 0 ? -errno : 0;
			break;
		}
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (n >= STATIC_LISTING_ENTRIES_MAX)
			break;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			Entry *ne = realloc(entries, ncap * sizeof(Entry));
			if (!ne) {
				r = -ENOMEM;
				break;
			}
			entries = ne;
			cap = ncap;
		}
		struct stat st;
		Entry e = { 0 };
		/* Follow links for the type; one pointing outside is listed, then refused. */
		if (fstatat(dirfd(d), de->d_name, &st, 0) >= 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
			e.dir = S_ISDIR(st.st_mode);
			e.size = (uint64_t)st.st_size;
			e.mtime = st.st_mtim.tv_sec;
		}
		e.name = strdup(de->d_name);
		if (!e.name) {
			r = -ENOMEM;
			break;
		}
		entries[n++] = e;
	}
	closedir(d);
	if (r < 0) {
		entries_free(entries, n);
		return r;
	}
	if (n > 0)
		qsort(entries, n, sizeof(Entry), entry_compare);

	r = buf_printf(&b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
			   "<meta name=\"viewport\" content=\"width=device-width, "
			   "initial-scale=1\">\n<meta name=\"color-scheme\" content=\"light "
			   "dark\">\n<title>Index of ");
	if (r >= 0)
		r = append_html_escaped(&b, shown);
	if (r >= 0)
		r = buf_printf(&b,
			       "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n"
			       "<h1>Index of ",
			       listing_css);
	if (r >= 0)
		r = append_html_escaped(&b, shown);
	if (r >= 0)
		r = buf_append_str(&b, "</h1>\n<table>\n");
	if (r >= 0 && !at_root)
		r = buf_append_str(&b, "<tr><td class=\"n\"><a href=\"../\">../</a></td>"
				       "<td class=\"s\"></td><td class=\"m\"></td></tr>\n");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char size[32] = "", date[64] = "";
		format_http_date(entries[i].mtime, date);
		if (!entries[i].dir)
			format_size(entries[i].size, size);
		r = buf_append_str(&b, "<tr><td class=\"n\"><a href=\"./");
		if (r >= 0)
			r = append_url_escaped(&b, entries[i].name);
		if (r >= 0 && entries[i].dir)
			r = buf_append_byte(&b, '/');
		if (r >= 0)
			r = buf_append_str(&b, "\">");
		if (r >= 0)
			r = append_html_escaped(&b, entries[i].name);
		if (r >= 0 && entries[i].dir)
			r = buf_append_byte(&b, '/');
		if (r >= 0)
			r = buf_printf(&b,
				       "</a></td><td class=\"s\">%s</td><td class=\"m\">%.17s"
				       "</td></tr>\n",
				       size, date + 5);
	}
	if (r >= 0 && n == 0)
		r = buf_append_str(&b, "<tr><td class=\"n\">(empty)</td></tr>\n");
	if (r >= 0)
		r = buf_append_str(&b, "</table>\n</main>\n</body>\n</html>\n");
	entries_free(entries, n);
	if (r < 0)
		return r == -E2BIG ? -ENOMEM : r;
	*ret = buf_steal(&b, ret_len);
	return *ret ? 0 : -ENOMEM;
}

/* Fill *s for a regular file: validators, conditionals and the range. */
static int serve_file(StaticResponse *s, int *fd, const struct stat *st, const char *name,
		      const StaticRequest *req, bool get)
{
	uint64_t size = (uint64_t)st->st_size;
	uint64_t mtime_ns =
	    (uint64_t)st->st_mtim.tv_sec * UINT64_C(1000000000) + (uint64_t)st->st_mtim.tv_nsec;

	s->file_size = size;
	s->content_type = static_mime_type(name);
	(void)strfmt(s->etag, sizeof(s->etag), "W/\"%" PRIu64 "-%" PRIx64 "\"", size, mtime_ns);
	format_http_date(st->st_mtim.tv_sec, s->last_modified);

	bool not_modified = false;
	if (req->if_none_match)
		not_modified = etag_matches(req->if_none_match, s->etag);
	else if (req->if_modified_since) {
		time_t since;
		if (parse_http_date(req->if_modified_since, &since) && since <= time(NULL))
			not_modified = st->st_mtim.tv_sec <= since;
	}
	if (not_modified) {
		s->status = 304;
		s->offset = s->length = 0;
		return 0;
	}

	uint64_t first = 0, last = 0;
	int k = get && req->range ? parse_range(req->range, size, &first, &last) : 0;
	if (k < 0) {
		(void)strfmt(s->content_range, sizeof(s->content_range), "bytes */%" PRIu64, size);
		int r = set_error(s, 416, "range not satisfiable");
		s->content_type = "text/plain; charset=utf-8";
		return r;
	}
	if (k > 0) {
		s->status = 206;
		s->offset = first;
		s->length = last - first + 1;
		(void)strfmt(s->content_range, sizeof(s->content_range),
			     "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
	} else {
		s->status = 200;
		s->offset = 0;
		s->length = size;
	}
	/* O_NONBLOCK only guarded the open against a FIFO. */
	int fl = fcntl(*fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
	s->fd = TAKE_FD(*fd);
	return 0;
}

static int resolve(const char *root, const StaticRequest *req, StaticResponse *s)
{
	_cleanup_buf_ Buf rel = BUF_INIT(STATIC_PATH_MAX);
	_cleanup_close_ int rootfd = -1, fd = -1;
	bool slash = false, get;
	struct stat st;
	int r;

	if (!req->method || !(streq(req->method, "GET") || streq(req->method, "HEAD"))) {
		s->allow = "GET, HEAD";
		return set_error(s, 405, "method not allowed");
	}
	get = streq(req->method, "GET");

	r = path_normalize(req->path, &rel, &slash);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return set_error(s, 404, "not found");

	if (isempty(root))
		return set_error(s, 500, "site has no directory");
	rootfd = open(root, DIR_WALK_FLAGS | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		char *body = strdupf("500 site directory %s: %s\n", root, strerror(errno));
		return set_body(s, 500, "text/plain; charset=utf-8", body, body ? strlen(body) : 0);
	}

	r = open_beneath(rootfd, rel.data ? rel.data : "", &fd);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		return set_error(s, 404, "not found");

	if (S_ISREG(st.st_mode)) {
		if (slash)
			return set_error(s, 404, "not found");
		return serve_file(s, &fd, &st, rel.data, req, get);
	}

	/* A directory. */
	if (!slash) {
		_cleanup_buf_ Buf loc = BUF_INIT(STATIC_PATH_MAX * 3 + 2);
		r = buf_append_byte(&loc, '/');
		if (r >= 0)
			r = append_url_escaped(&loc, rel.data);
		if (r >= 0)
			r = buf_append_byte(&loc, '/');
		if (r < 0)
			return -ENOMEM;
		s->location = buf_steal(&loc, NULL);
		if (!s->location)
			return -ENOMEM;
		return set_error(s, 301, "moved permanently");
	}

	_cleanup_free_ char *index =
	    strdupf("%s%sindex.html", strempty(rel.data), rel.len > 0 ? "/" : "");
	if (!index)
		return -ENOMEM;
	_cleanup_close_ int ifd = -1;
	struct stat ist;
	r = open_beneath(rootfd, index, &ifd);
	if (r == -ENOMEM)
		return r;
	if (r >= 0 && fstat(ifd, &ist) >= 0 && S_ISREG(ist.st_mode))
		return serve_file(s, &ifd, &ist, index, req, get);

	_cleanup_free_ char *shown = strdupf("/%s%s", strempty(rel.data), rel.len > 0 ? "/" : "");
	if (!shown)
		return -ENOMEM;
	char *body;
	size_t len;
	r = render_listing(fd, shown, rel.len == 0, &body, &len);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return set_error(s, 404, "not found");
	return set_body(s, 200, "text/html; charset=utf-8", body, len);
}

int static_resolve(const char *root, const StaticRequest *req, StaticResponse *ret)
{
	_cleanup_(static_response_done) StaticResponse s = { .fd = -1 };
	int r;

	if (!req || !ret)
		return -EINVAL;
	r = resolve(root, req, &s);
	if (r < 0)
		return r;
	*ret = s;
	s = (StaticResponse){ .fd = -1 };
	return 0;
}
