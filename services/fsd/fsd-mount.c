/* SPDX-License-Identifier: MIT */
/*
 * A mount's life: spec → ignore patterns → Fs → FUSE session on its own threads.
 */

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312 /* fuse_session_loop_mt() with struct fuse_loop_config */
#include <fuse_lowlevel.h>

#include "fsd-mount.h"
#include "paths.h"
#include "strutil.h"
#include "time-util.h"

struct FsdMount {
	MountSpec spec;
	Ignore *ignore;
	Fs *fs;
	struct fuse_session *se;
	pthread_t thread;
	bool thread_started;
	int end_fd; /* eventfd, written when the session loop returns */
	bool ended;
	dev_t dev;
	uint64_t started_usec;
};

void mount_spec_done(MountSpec *s)
{
	strv_free(s->lowers);
	free(s->upper);
	free(s->work);
	free(s->mountpoint);
	strv_free(s->ignore_files);
	strv_free(s->patterns);
	*s = (MountSpec){};
}

static int dup_str(const char *s, char **ret)
{
	if (!s) {
		*ret = NULL;
		return 0;
	}
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int mount_spec_copy(const MountSpec *src, MountSpec *dst)
{
	MountSpec s = *src;
	s.lowers = s.ignore_files = s.patterns = NULL;
	s.upper = s.work = s.mountpoint = NULL;
	if ((src->lowers && !(s.lowers = strv_copy(src->lowers))) ||
	    (src->ignore_files && !(s.ignore_files = strv_copy(src->ignore_files))) ||
	    (src->patterns && !(s.patterns = strv_copy(src->patterns))) ||
	    dup_str(src->upper, &s.upper) < 0 || dup_str(src->work, &s.work) < 0 ||
	    dup_str(src->mountpoint, &s.mountpoint) < 0) {
		mount_spec_done(&s);
		return -ENOMEM;
	}
	*dst = s;
	return 0;
}

static int absolutize(char **p, const char *what, char **ret_error)
{
	if (isempty(*p)) {
		*ret_error = strdupf("%s is missing", what);
		return -EINVAL;
	}
	char *a = realpath(*p, NULL);
	if (!a) {
		int r = -errno;
		*ret_error = strdupf("%s %s: %s", what, *p, strerror(errno));
		return r;
	}
	struct stat st;
	if (stat(a, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*ret_error = strdupf("%s %s is not a directory", what, a);
		free(a);
		return -ENOTDIR;
	}
	free(*p);
	*p = a;
	return 0;
}

int mount_spec_resolve(MountSpec *s, char **ret_error)
{
	*ret_error = NULL;
	size_t n = strv_length(s->lowers);
	if (n == 0) {
		*ret_error = strdup("at least one lower directory is needed");
		return -EINVAL;
	}
	if (n + 1 > FSD_LAYERS_MAX) {
		*ret_error =
		    strdupf("too many lower directories (%zu, at most %d)", n, FSD_LAYERS_MAX - 1);
		return -E2BIG;
	}
	int r;
	for (size_t i = 0; i < n; i++)
		if ((r = absolutize(&s->lowers[i], "lower", ret_error)) < 0)
			return r;
	if ((r = absolutize(&s->upper, "upper", ret_error)) < 0 ||
	    (r = absolutize(&s->work, "work", ret_error)) < 0)
		return r;
	/* the mountpoint may be a dead FUSE mount (ENOTCONN): clear it first */
	if (isempty(s->mountpoint)) {
		*ret_error = strdup("mountpoint is missing");
		return -EINVAL;
	}
	struct stat st;
	if (stat(s->mountpoint, &st) < 0 && errno == ENOTCONN)
		(void)fsd_unmount_stale(s->mountpoint);
	if ((r = absolutize(&s->mountpoint, "mountpoint", ret_error)) < 0)
		return r;
	if (streq(s->upper, s->work)) {
		*ret_error = strdup("upper and work must be different directories");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (streq(s->lowers[i], s->mountpoint) || streq(s->upper, s->mountpoint)) {
			*ret_error = strdupf("mountpoint %s is also a layer", s->mountpoint);
			return -EINVAL;
		}
	return 0;
}

static int read_file_bounded(const char *path, char **ret, size_t *ret_size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size > IGNORE_TEXT_MAX)
		return -E2BIG;
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -errno;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	buf[got] = 0;
	*ret = buf;
	*ret_size = got;
	return 0;
}

static int add_file(Ignore *ig, const char *path, bool optional, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	size_t size = 0;
	int r = read_file_bounded(path, &text, &size);
	if (r == -ENOENT && optional)
		return 0;
	if (r < 0) {
		*ret_error = strdupf("ignore file %s: %s", path,
				     r == -E2BIG ? "larger than 1 MiB" : strerror(-r));
		return r;
	}
	unsigned line = 0;
	r = ignore_add_text(ig, text, size, &line);
	if (r < 0) {
		*ret_error = strdupf("ignore file %s line %u: %s", path, line,
				     r == -EINVAL ? "bad pattern" : strerror(-r));
		return r;
	}
	return 0;
}

int mount_spec_load_ignore(const MountSpec *s, Ignore **ret, char **ret_error)
{
	_cleanup_(ignore_freep) Ignore *ig = NULL;
	int r = ignore_new(&ig);
	if (r < 0)
		return r;
	if (s->ignore_files) {
		for (char **f = s->ignore_files; *f; f++)
			if ((r = add_file(ig, *f, false, ret_error)) < 0)
				return r;
	} else if (!s->no_ignore && s->lowers && s->lowers[0]) {
		const char *names[] = { ".dockerignore", ".localdignore" };
		for (size_t i = 0; i < ELEMENTSOF(names); i++) {
			_cleanup_free_ char *p = path_join(s->lowers[0], names[i]);
			if (!p)
				return -ENOMEM;
			if ((r = add_file(ig, p, true, ret_error)) < 0)
				return r;
		}
	}
	for (char **p = s->patterns; p && *p; p++) {
		r = ignore_add_pattern(ig, *p);
		if (r < 0) {
			*ret_error = strdupf("ignore pattern \"%s\": %s", *p,
					     r == -EINVAL ? "bad pattern" : strerror(-r));
			return r;
		}
	}
	*ret = TAKE_PTR(ig);
	return 0;
}

int fsd_unmount_stale(const char *path)
{
	if (umount2(path, MNT_DETACH) == 0)
		return 1;
	if (errno == EINVAL || errno == ENOENT)
		return 0;
	if (errno != EPERM)
		return -errno;
	/* not root: fusermount3 does it for the mount's owner */
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execlp("fusermount3", "fusermount3", "-u", "-z", "--", path, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 1 : -EPERM;
}

static void *session_thread(void *userdata)
{
	FsdMount *m = userdata;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (cfg) {
		unsigned n = m->spec.max_threads ? m->spec.max_threads : FSD_MAX_THREADS_DEFAULT;
		/* Idle workers stay: with fewer kept, libfuse ends and re-creates a thread (a
		 * clone, a /dev/fuse clone fd, a splice pipe) around almost every request of
		 * a sequential caller. */
		fuse_loop_cfg_set_clone_fd(cfg, 1);
		fuse_loop_cfg_set_max_threads(cfg, n);
		fuse_loop_cfg_set_idle_threads(cfg, n);
	}
	/* with cfg NULL libfuse uses its defaults */
	(void)fuse_session_loop_mt(m->se, cfg);
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	__atomic_store_n(&m->ended, true, __ATOMIC_RELEASE);
	uint64_t one = 1;
	(void)!write(m->end_fd, &one, sizeof one);
	return NULL;
}

int fsd_mount_start(const MountSpec *spec, FsdMount **ret, char **ret_error)
{
	*ret_error = NULL;
	FsdMount *m = calloc(1, sizeof(FsdMount));
	if (!m)
		return -ENOMEM;
	m->end_fd = -1;
	int r = mount_spec_copy(spec, &m->spec);
	if (r < 0)
		goto fail;
	r = mount_spec_resolve(&m->spec, ret_error);
	if (r < 0)
		goto fail;
	r = mount_spec_load_ignore(&m->spec, &m->ignore, ret_error);
	if (r < 0)
		goto fail;
	FsConfig cfg = {
		.lowers = m->spec.lowers,
		.upper = m->spec.upper,
		.work = m->spec.work,
		.ignore = m->ignore,
		.timeout = m->spec.timeout > 0 ? m->spec.timeout : FSD_TIMEOUT_DEFAULT,
		.writeback = m->spec.writeback,
	};
	r = fs_new(&cfg, &m->fs);
	if (r < 0) {
		*ret_error =
		    strdupf("opening the layers: %s%s", strerror(-r),
			    r == -EXDEV ? " (work must be on the upper's filesystem)" : "");
		goto fail;
	}
	m->end_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->end_fd < 0) {
		r = -errno;
		goto fail;
	}

	char opts[256];
	snprintf(opts, sizeof opts, "fsname=locald-fsd,subtype=locald-fsd,default_permissions%s",
		 geteuid() == 0 ? ",allow_other" : "");
	char *argv[] = { (char *)"locald-fsd", (char *)"-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	m->se = fuse_session_new(&args, &fsd_ops, sizeof fsd_ops, m->fs);
	if (!m->se) {
		*ret_error = strdup("creating the FUSE session failed");
		r = -EIO;
		goto fail;
	}
	if (fuse_session_mount(m->se, m->spec.mountpoint) != 0) {
		*ret_error =
		    strdupf("mounting on %s failed (is /dev/fuse usable? fusermount3 installed?)",
			    m->spec.mountpoint);
		r = -EPERM;
		goto fail;
	}
	m->started_usec = now_realtime();
	/* the session's threads take no signals: the caller's main thread handles them */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&m->thread, NULL, session_thread, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		fuse_session_unmount(m->se);
		goto fail;
	}
	m->thread_started = true;
	*ret = m;
	return 0;
fail:
	if (!*ret_error)
		*ret_error = strdupf("%s", strerror(-r));
	fsd_mount_stop(m);
	return r;
}

/* The device of the mount on `path`, from /proc/self/mountinfo (a stat() of the
 * mountpoint would ask our own filesystem, maybe no longer served). */
static dev_t mountinfo_dev(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	char line[4096];
	dev_t dev = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned maj, min;
		char mp[4096];
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) != 3)
			continue;
		if (streq(mp, path))
			dev = makedev(maj, min); /* the last one is the top of the stack */
	}
	fclose(f);
	return dev;
}

static void abort_connection(dev_t dev)
{
	char p[64];
	snprintf(p, sizeof p, "/sys/fs/fuse/connections/%u/abort", minor(dev));
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT &&
	    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0)
		fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!write(fd, "1", 1);
		close(fd);
	}
}

FsdMount *fsd_mount_stop(FsdMount *m)
{
	if (!m)
		return NULL;
	if (m->thread_started) {
		fuse_session_exit(m->se);
		m->dev = mountinfo_dev(m->spec.mountpoint);
		if (!__atomic_load_n(&m->ended, __ATOMIC_ACQUIRE))
			(void)fsd_unmount_stale(m->spec.mountpoint);
		/* Open files keep a lazily unmounted connection alive: give them a moment,
		 * then abort it so the threads see ENODEV. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(m->thread, NULL, &ts) != 0) {
			if (m->dev)
				abort_connection(m->dev);
			pthread_join(m->thread, NULL);
		}
	}
	if (m->se) {
		if (!m->thread_started)
			fuse_session_unmount(m->se);
		fuse_session_destroy(m->se);
	}
	fs_free(m->fs);
	ignore_free(m->ignore);
	mount_spec_done(&m->spec);
	safe_close(m->end_fd);
	free(m);
	return NULL;
}

bool fsd_mount_ended(FsdMount *m)
{
	return __atomic_load_n(&m->ended, __ATOMIC_ACQUIRE);
}

const MountSpec *fsd_mount_spec(FsdMount *m)
{
	return &m->spec;
}

Fs *fsd_mount_fs(FsdMount *m)
{
	return m->fs;
}

uint64_t fsd_mount_started_usec(FsdMount *m)
{
	return m->started_usec;
}

int fsd_mount_end_fd(FsdMount *m)
{
	return m->end_fd;
}
