/* SPDX-License-Identifier: MIT */
#include "superd-cgroup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "macro.h"
#include "paths.h"
#include "strutil.h"

/*
 * Escaping and parsing need no kernel, so they are in both builds (superd-notify names
 * its sockets with cgroup_escape_name() too).
 */
#define NAME_KEEP_MAX 64

static uint64_t fnv1a64(const char *s)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

char *cgroup_escape_name(const char *name)
{
	size_t n = strlen(name);
	bool changed = n == 0 || n > NAME_KEEP_MAX;
	_cleanup_buf_ Buf b = BUF_INIT(0);

	for (size_t i = 0; i < n && i < NAME_KEEP_MAX; i++) {
		bool ok = name_char_ok(name[i]);
		changed = changed || !ok;
		if (buf_append_byte(&b, ok ? (uint8_t)name[i] : '_') < 0)
			return NULL;
	}
	if (changed && buf_printf(&b, "-%016" PRIx64, fnv1a64(name)) < 0)
		return NULL;
	return buf_steal(&b, NULL);
}

/* ---- Sans-I/O parsing, in every build ---- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *mountinfo_unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[j++] =
			    (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else
			out[j++] = s[i];
	}
	out[j] = 0;
	return out;
}

/* Split one line into space-separated fields (pointers + lengths into the line). */
static size_t split_fields(const char *line, size_t len, const char **f, size_t *flen, size_t max)
{
	size_t n = 0, i = 0;
	while (i < len && n < max) {
		while (i < len && line[i] == ' ')
			i++;
		if (i >= len)
			break;
		size_t start = i;
		while (i < len && line[i] != ' ')
			i++;
		f[n] = line + start;
		flen[n] = i - start;
		n++;
	}
	return n;
}

static bool option_listed(const char *opts, size_t n, const char *want)
{
	size_t wl = strlen(want);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && opts[j] != ',')
			j++;
		if (j - i == wl && memcmp(opts + i, want, wl) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

int cgroup2_mount_parse(const char *mountinfo, char **ret_mountpoint, char **ret_root,
			bool *ret_read_only)
{
	for (const char *line = mountinfo; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *f[64];
		size_t fl[64];
		size_t n = split_fields(line, len, f, fl, ELEMENTSOF(f));

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [optional...] - FSTYPE SOURCE SUPER */
		size_t sep = 6;
		while (sep < n && !(fl[sep] == 1 && f[sep][0] == '-'))
			sep++;
		if (sep + 1 < n && fl[sep + 1] == 7 && memcmp(f[sep + 1], "cgroup2", 7) == 0) {
			_cleanup_free_ char *root = mountinfo_unescape(f[3], fl[3]);
			_cleanup_free_ char *mp = mountinfo_unescape(f[4], fl[4]);
			if (!root || !mp)
				return -ENOMEM;
			bool ro = option_listed(f[5], fl[5], "ro") ||
				  (sep + 3 < n && option_listed(f[sep + 3], fl[sep + 3], "ro"));
			*ret_mountpoint = TAKE_PTR(mp);
			*ret_root = TAKE_PTR(root);
			if (ret_read_only)
				*ret_read_only = ro;
			return 0;
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

int cgroup2_own_path_parse(const char *proc_cgroup, char **ret)
{
	for (const char *line = proc_cgroup; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		if (len >= 3 && memcmp(line, "0::", 3) == 0 && len > 3 && line[3] == '/') {
			char *p = strndup_safe(line + 3, len - 3);
			if (!p)
				return -ENOMEM;
			*ret = p;
			return 0;
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

static int set_reason(char **ret_reason, char *reason, int r)
{
	if (ret_reason)
		*ret_reason = reason;
	else
		free(reason);
	return r;
}

int cgroup_base_choose(const CgroupFacts *f, char **ret_base, char **ret_why)
{
	_cleanup_free_ char *delegated = strdupf("%s/locald/%u", f->mountpoint, (unsigned)f->uid);
	_cleanup_free_ char *leaf = delegated ? path_join(delegated, CGROUP_SUPERD_LEAF) : NULL;
	char *base = NULL, *why = NULL;
	if (!leaf)
		return -ENOMEM;

	if (f->delegated_writable && f->own && (streq(f->own, delegated) || streq(f->own, leaf))) {
		base = path_join(delegated, CGROUP_SERVICES_DIR);
		why = strdupf("uid %u's cgroup delegated by locald-shim, superd runs in %s",
			      (unsigned)f->uid, f->own);
	} else if (f->own && f->own_writable) {
		base = path_join(f->own, "locald-superd");
		why = strdupf("superd's own cgroup %s is writable", f->own);
	} else if (f->uid == 0 && f->mount_writable) {
		/* uid 0's place in the per-uid layout: never beside the users' dirs, so a
		 * project named "1000" cannot land in uid 1000's delegated cgroup */
		base = strdupf("%s/locald/0/%s", f->mountpoint, CGROUP_SERVICES_DIR);
		why = strdupf("root: superd uses %s/locald/0", f->mountpoint);
	} else if (f->delegated_writable)
		return set_reason(
		    ret_why,
		    strdupf("the delegated cgroup %s exists but superd runs outside it (in %s) and "
			    "no locald-shim moved it in (run 'sudo localctl admin setup')",
			    delegated, f->own ? f->own : "an unknown cgroup"),
		    -EACCES);
	else
		return set_reason(
		    ret_why,
		    strdupf("cgroup %s is not writable by uid %u and no delegated cgroup %s exists "
			    "(run 'sudo localctl admin setup')",
			    f->own ? f->own : "(unknown)", (unsigned)f->uid, delegated),
		    -EACCES);

	if (!base || !why) {
		free(base);
		free(why);
		return -ENOMEM;
	}
	*ret_base = base;
	return set_reason(ret_why, why, 0);
}

#if defined(__linux__) && defined(LOCALD_LINUX_EXTRAS)

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse-util.h"
#include "shim-client.h"

/* Is `path` equal to or below `dir` (whole path components)? */
static bool path_is_below(const char *path, const char *dir)
{
	const char *rest = startswith(path, dir);
	return rest && (*rest == 0 || *rest == '/' || endswith(dir, "/"));
}

/* cgroup interface files are small; mountinfo on a busy host is the largest we read. */
#define SMALL_FILE_MAX (4u * 1024 * 1024)
/* How deep a service may nest its own sub-cgroups before we stop following. */
#define CGROUP_DEPTH_MAX 16
/* Rounds of "list, signal the new ones" before cgroup_signal_all() gives up on a fork storm. */
#define SIGNAL_ROUNDS_MAX 32

static int read_text(const char *path, char **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	_cleanup_buf_ Buf b = BUF_INIT(SMALL_FILE_MAX);
	for (;;) {
		size_t room = MIN((size_t)65536, SMALL_FILE_MAX - b.len);
		if (room == 0)
			return -EFBIG;
		int r = buf_reserve(&b, room);
		if (r < 0)
			return r;
		ssize_t n = read(fd, b.data + b.len, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	b.data[b.len] = 0; /* buf_reserve() leaves the new room uninitialized */
	*ret = buf_steal(&b, NULL);
	return 0;
}

static int write_text(const char *dir, const char *file, const char *text)
{
	_cleanup_free_ char *p = path_join(dir, file);
	if (!p)
		return -ENOMEM;
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	if (w < 0)
		return -errno;
	return (size_t)w == n ? 0 : -EIO;
}

/* We may create children in dir and move processes through its cgroup.procs. */
static bool cgroup_writable(const char *dir)
{
	_cleanup_free_ char *procs = path_join(dir, "cgroup.procs");
	return procs && faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) == 0 &&
	       faccessat(AT_FDCWD, procs, W_OK, AT_EACCESS) == 0;
}

/* What cgroup_base_choose() needs, read from the kernel; the strings are owned here. */
typedef struct CgroupProbe {
	CgroupFacts facts;
	char *mountpoint, *own, *delegated;
} CgroupProbe;

static void cgroup_probe_done(CgroupProbe *p)
{
	free(p->mountpoint);
	free(p->own);
	free(p->delegated);
}

static int cgroup_probe(CgroupProbe *p, char **ret_reason)
{
	_cleanup_free_ char *mountinfo = NULL, *proc_cgroup = NULL, *root = NULL, *own = NULL;
	bool ro = false;
	int r;

	*p = (CgroupProbe){ .facts.uid = geteuid() };
	r = read_text("/proc/self/mountinfo", &mountinfo);
	if (r < 0)
		return set_reason(ret_reason,
				  strdupf("cannot read /proc/self/mountinfo: %s", strerror(-r)), r);
	r = cgroup2_mount_parse(mountinfo, &p->mountpoint, &root, &ro);
	if (r == -ENOENT)
		return set_reason(ret_reason,
				  strdup("no cgroup2 filesystem is mounted (cgroup v1 only)"),
				  -EOPNOTSUPP);
	if (r < 0)
		return r;
	if (ro)
		return set_reason(
		    ret_reason,
		    strdupf("the cgroup2 filesystem at %s is mounted read-only", p->mountpoint),
		    -EROFS);

	r = read_text("/proc/self/cgroup", &proc_cgroup);
	if (r >= 0)
		r = cgroup2_own_path_parse(proc_cgroup, &own);
	if (r >= 0 && path_is_below(own, root)) {
		const char *rel = streq(root, "/") ? own : own + strlen(root);
		p->own = path_join(p->mountpoint, rel);
		if (!p->own)
			return -ENOMEM;
		p->facts.own_writable = cgroup_writable(p->own);
	}
	p->delegated = strdupf("%s/locald/%u", p->mountpoint, (unsigned)p->facts.uid);
	if (!p->delegated)
		return -ENOMEM;
	p->facts.mountpoint = p->mountpoint;
	p->facts.own = p->own;
	p->facts.delegated_writable =
	    access(p->delegated, F_OK) == 0 && cgroup_writable(p->delegated);
	p->facts.mount_writable = faccessat(AT_FDCWD, p->mountpoint, W_OK, AT_EACCESS) == 0;
	return 0;
}

int cgroup_find_base(char **ret_base, char **ret_why)
{
	_cleanup_(cgroup_probe_done) CgroupProbe p = {};
	int r = cgroup_probe(&p, ret_why);
	if (r < 0)
		return r;
	return cgroup_base_choose(&p.facts, ret_base, ret_why);
}

static const char *shim_error(int r)
{
	switch (r) {
	case -EACCES:
		return "it refused";
	case -EPERM:
		return "it is not installed setuid root in a root-owned directory";
	case -EIO:
		return "it failed (its message is above)";
	default:
		return strerror(-r);
	}
}

/*
 * 1: superd moved into <delegated>/superd (through locald-shim when it started outside
 * the delegated tree), 0: nothing to do, -errno and a sentence: a step failed.
 */
static int join_delegated(char **ret_reason)
{
	_cleanup_(cgroup_probe_done) CgroupProbe p = {};
	if (geteuid() == 0 || cgroup_probe(&p, NULL) < 0)
		return 0; /* root may use any cgroup; cgroup_find_base() says what is wrong */
	_cleanup_free_ char *leaf = path_join(p.delegated, CGROUP_SUPERD_LEAF);
	if (!leaf)
		return -ENOMEM;
	if (streq_ptr(p.own, leaf) || (p.facts.own_writable && !streq_ptr(p.own, p.delegated)))
		return 0;

	if (!streq_ptr(p.own, p.delegated)) {
		/* Only the owner of the common ancestor (root's cgroup here) may move us in. */
		_cleanup_free_ char *shim = NULL;
		if (shim_find(&shim) < 0)
			return 0;
		char *const args[] = { (char *)"cgroup-setup", (char *)"--move-parent", NULL };
		int r = shim_run(args);
		if (r < 0)
			return set_reason(
			    ret_reason,
			    strdupf("%s cgroup-setup --move-parent: %s", shim, shim_error(r)), r);
		cgroup_probe_done(&p);
		r = cgroup_probe(&p, ret_reason);
		if (r < 0)
			return r;
		if (!streq_ptr(p.own, p.delegated))
			return set_reason(ret_reason,
					  strdupf("%s cgroup-setup --move-parent succeeded but "
						  "superd is in %s, not %s",
						  shim, strempty(p.own), p.delegated),
					  -EIO);
	}

	/* A cgroup with processes cannot enable controllers for its children ("no internal
	 * processes"): superd keeps the delegated directory itself free of processes. */
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
		int e = errno;
		return set_reason(ret_reason, strdupf("creating %s: %s", leaf, strerror(e)), -e);
	}
	int r = cgroup_move_pid(leaf, getpid());
	if (r < 0)
		return set_reason(ret_reason,
				  strdupf("moving superd into %s: %s", leaf, strerror(-r)), r);
	return 1;
}

int cgroup_setup_base(char **ret_base, char **ret_why)
{
	_cleanup_free_ char *join_why = NULL, *base = NULL, *why = NULL;
	int j = join_delegated(&join_why);
	int r = cgroup_find_base(&base, &why);
	if (j != 0) {
		char *w = j > 0 ? strdupf("%s (moved there at start)", strempty(why))
				: strdupf("%s; %s", strempty(join_why), strempty(why));
		if (!w)
			return -ENOMEM;
		free(why);
		why = w;
	}
	if (r >= 0)
		*ret_base = TAKE_PTR(base);
	if (ret_why)
		*ret_why = TAKE_PTR(why);
	return r;
}

int cgroup_service_create(const char *base, const char *project, const char *service,
			  char **ret_path)
{
	_cleanup_free_ char *p = cgroup_escape_name(project), *s = cgroup_escape_name(service);
	if (!p || !s)
		return -ENOMEM;
	_cleanup_free_ char *path = strdupf("%s/%s/%s", base, p, s);
	if (!path)
		return -ENOMEM;
	int r = mkdir_p(path, 0755);
	if (r < 0)
		return r;

	/* A leaf with controllers enabled below it could not hold processes. */
	_cleanup_free_ char *sc_path = path_join(path, "cgroup.subtree_control"), *sc = NULL;
	if (!sc_path)
		return -ENOMEM;
	r = read_text(sc_path, &sc);
	if (r == -ENOENT)
		return -ENOTDIR; /* not a cgroup2 directory at all */
	if (r < 0)
		return r;
	if (!isempty(strstrip(sc)))
		return -EBUSY;

	*ret_path = TAKE_PTR(path);
	return 0;
}

int cgroup_move_pid(const char *path, pid_t pid)
{
	char text[32];
	int r = strfmt(text, sizeof(text), "%d\n", (int)pid);
	if (r < 0)
		return r;
	return write_text(path, "cgroup.procs", text);
}

static int pids_parse(const char *text, pid_t **pids, size_t *n, size_t *allocated)
{
	for (const char *line = text; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		char num[16];
		int v;
		if (len > 0 && len < sizeof(num)) {
			memcpy(num, line, len);
			num[len] = 0;
			if (safe_atoi(num, &v) >= 0 && v > 0) {
				if (*n == *allocated) {
					size_t na = *allocated ? *allocated * 2 : 16;
					pid_t *np = reallocarray(*pids, na, sizeof(pid_t));
					if (!np)
						return -ENOMEM;
					*pids = np;
					*allocated = na;
				}
				(*pids)[(*n)++] = (pid_t)v;
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return 0;
}

int cgroup_get_pids(const char *path, pid_t **ret, size_t *ret_n)
{
	_cleanup_free_ char *p = path_join(path, "cgroup.procs"), *text = NULL;
	if (!p)
		return -ENOMEM;
	int r = read_text(p, &text);
	if (r < 0)
		return r;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0, allocated = 0;
	r = pids_parse(text, &pids, &n, &allocated);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(pids);
	*ret_n = n;
	return 0;
}

/* Pids of path and every descendant cgroup, appended to *pids. */
static int collect_pids(const char *path, unsigned depth, pid_t **pids, size_t *n,
			size_t *allocated)
{
	_cleanup_free_ char *p = path_join(path, "cgroup.procs"), *text = NULL;
	if (!p)
		return -ENOMEM;
	int r = read_text(p, &text);
	if (r < 0)
		return r;
	r = pids_parse(text, pids, n, allocated);
	if (r < 0)
		return r;
	if (depth >= CGROUP_DEPTH_MAX)
		return 0;

	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		_cleanup_free_ char *child = path_join(path, de->d_name);
		if (!child) {
			r = -ENOMEM;
			break;
		}
		r = collect_pids(child, depth + 1, pids, n, allocated);
		if (r == -ENOENT) /* removed meanwhile */
			r = 0;
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

int cgroup_contains_pid(const char *path, pid_t pid)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0, allocated = 0;
	int r = collect_pids(path, 0, &pids, &n, &allocated);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

/* The value of `key` in <path>/cgroup.events ("populated", "frozen"): 0 or 1. */
static int cgroup_event(const char *path, const char *key)
{
	_cleanup_free_ char *p = path_join(path, "cgroup.events"), *text = NULL;
	if (!p)
		return -ENOMEM;
	int r = read_text(p, &text);
	if (r < 0)
		return r;
	size_t kl = strlen(key);
	for (const char *line = text; line && *line;) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
			return line[kl + 1] == '1';
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -EBADMSG;
}

int cgroup_is_empty(const char *path)
{
	int r = cgroup_event(path, "populated");
	return r < 0 ? r : !r;
}

int cgroup_signal_all(const char *path, int sig)
{
	_cleanup_free_ pid_t *done = NULL;
	size_t n_done = 0, allocated_done = 0;
	int r = 0;

	/* Frozen processes cannot fork between our reading cgroup.procs and signalling.
	 * A cgroup someone else froze stays frozen: we neither freeze nor thaw it. */
	bool frozen =
	    cgroup_event(path, "frozen") == 0 && write_text(path, "cgroup.freeze", "1") >= 0;

	for (unsigned round = 0; round < SIGNAL_ROUNDS_MAX; round++) {
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0, allocated = 0;
		r = collect_pids(path, 0, &pids, &n, &allocated);
		if (r < 0)
			break;
		size_t fresh = 0;
		for (size_t i = 0; i < n; i++) {
			bool seen = false;
			for (size_t j = 0; j < n_done && !seen; j++)
				seen = done[j] == pids[i];
			if (seen)
				continue;
			if (kill(pids[i], sig) < 0 && errno != ESRCH) {
				r = -errno;
				break;
			}
			if (n_done == allocated_done) {
				size_t na = allocated_done ? allocated_done * 2 : 16;
				pid_t *np = reallocarray(done, na, sizeof(pid_t));
				if (!np) {
					r = -ENOMEM;
					break;
				}
				done = np;
				allocated_done = na;
			}
			done[n_done++] = pids[i];
			fresh++;
		}
		if (r < 0 || fresh == 0)
			break;
	}

	if (frozen)
		(void)write_text(path, "cgroup.freeze", "0");
	return r < 0 ? r : (int)MIN(n_done, (size_t)INT32_MAX);
}

int cgroup_kill(const char *path)
{
	int r = write_text(path, "cgroup.kill", "1");
	if (r != -ENOENT)
		return r;
	/* Before Linux 5.14. Make sure it is the file that is missing, not the cgroup. */
	if (access(path, F_OK) < 0)
		return -errno;
	r = cgroup_signal_all(path, SIGKILL);
	return r < 0 ? r : 0;
}

static int rmdir_tree(const char *path, unsigned depth)
{
	if (depth < CGROUP_DEPTH_MAX) {
		DIR *d = opendir(path);
		if (!d)
			return errno == ENOENT ? 0 : -errno;
		struct dirent *de;
		int r = 0;
		while ((de = readdir(d))) {
			if (de->d_type != DT_DIR || streq(de->d_name, ".") ||
			    streq(de->d_name, ".."))
				continue;
			_cleanup_free_ char *child = path_join(path, de->d_name);
			if (!child) {
				r = -ENOMEM;
				break;
			}
			r = rmdir_tree(child, depth + 1);
			if (r < 0)
				break;
		}
		closedir(d);
		if (r < 0)
			return r;
	}
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int cgroup_service_remove(const char *path)
{
	int r = rmdir_tree(path, 0);
	if (r < 0)
		return r;
	_cleanup_free_ char *parent = strdup(path);
	if (!parent)
		return -ENOMEM;
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		/* Other services of the project may still live there: then it stays. */
		if (rmdir(parent) < 0 && errno != ENOTEMPTY && errno != EBUSY && errno != ENOENT)
			return -errno;
	}
	return 0;
}

#else /* no cgroup support in this build */

int cgroup_find_base(char **ret_base, char **ret_reason)
{
	if (ret_reason)
		*ret_reason = strdup("cgroup support is not built in (linux_extras disabled)");
	return -EOPNOTSUPP;
}

int cgroup_setup_base(char **ret_base, char **ret_why)
{
	return cgroup_find_base(ret_base, ret_why);
}

int cgroup_service_create(const char *base, const char *project, const char *service,
			  char **ret_path)
{
	return -EOPNOTSUPP;
}

int cgroup_move_pid(const char *path, pid_t pid)
{
	return -EOPNOTSUPP;
}

int cgroup_kill(const char *path)
{
	return -EOPNOTSUPP;
}

int cgroup_signal_all(const char *path, int sig)
{
	return -EOPNOTSUPP;
}

int cgroup_is_empty(const char *path)
{
	return -EOPNOTSUPP;
}

int cgroup_get_pids(const char *path, pid_t **ret, size_t *ret_n)
{
	return -EOPNOTSUPP;
}

int cgroup_contains_pid(const char *path, pid_t pid)
{
	return -EOPNOTSUPP;
}

int cgroup_service_remove(const char *path)
{
	return -EOPNOTSUPP;
}

#endif
