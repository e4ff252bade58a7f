/* SPDX-License-Identifier: MIT */
/*
 * A mount's life: spec → ignore patterns → Fs → FUSE session on its own threads.
 */

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312 /* fuse_session_loop_mt() with struct fuse_loop_config */
#include <fuse_lowlevel.h>

#include "fsd-mount.h"
#include "log.h"
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

/* ---- rootless: fusermount3, /dev/fuse, libfuse's messages ---- */

/* Where libfuse looks for it first; then $PATH. */
#define FUSERMOUNT_PATH "/usr/bin/fusermount3"

static int fusermount_find(char **ret)
{
	if (access(FUSERMOUNT_PATH, X_OK) == 0)
		return (*ret = strdup(FUSERMOUNT_PATH)) ? 0 : -ENOMEM;
	const char *path = getenv("PATH");
	if (isempty(path))
		return -ENOENT;
	for (const char *p = path;;) {
		size_t n = strcspn(p, ":");
		if (n > 0) {
			char *cand = strdupf("%.*s/fusermount3", (int)n, p);
			if (!cand)
				return -ENOMEM;
			if (access(cand, X_OK) == 0) {
				*ret = cand;
				return 0;
			}
			free(cand);
		}
		if (!p[n])
			return -ENOENT;
		p += n + 1;
	}
}

/*
 * What libfuse will need to mount, checked first: a failure then is one line naming
 * what is missing and how to get it, instead of libfuse's and fusermount3's stderr.
 * /dev/fuse is opened by us in every mode (libfuse opens it before it would fall back
 * to fusermount3). An euid of 0 is root or the root of a user namespace, which mounts
 * FUSE with mount(2) itself; anyone else mounts through the setuid fusermount3.
 */
static int mount_preflight(const char *mountpoint, char **ret_error, const char **ret_hint)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		bool missing = r == -ENOENT || r == -ENODEV || r == -ENXIO;
		*ret_error = strdupf("cannot open /dev/fuse: %s", strerror(-r));
		*ret_hint = missing ? "load the fuse module (modprobe fuse); in a container, pass "
				      "/dev/fuse in"
				    : "make /dev/fuse 0666 (the fuse3 package's udev rule does), or "
				      "add the user to the group that owns it";
		return r;
	}
	close(fd);
	if (geteuid() == 0)
		return 0;

	_cleanup_free_ char *fm = NULL;
	int r = fusermount_find(&fm);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		*ret_error = strdup("fusermount3 not found (in " FUSERMOUNT_PATH " or $PATH)");
		*ret_hint = "install the fuse3 package, or run locald-fsd as root or in a user "
			    "namespace with its own mount namespace: unshare -U -r -m";
		return -ENOENT;
	}
	struct stat st;
	struct statvfs sv;
	if (stat(fm, &st) < 0 || !(st.st_mode & S_ISUID) || st.st_uid != 0 ||
	    (statvfs(fm, &sv) == 0 && (sv.f_flag & ST_NOSUID))) {
		*ret_error = strdupf("%s is not setuid root here, so it cannot mount for "
				     "the user",
				     fm);
		*ret_hint = "reinstall the fuse3 package, or run locald-fsd in a user "
			    "namespace: unshare -U -r -m";
		return -EPERM;
	}
	/* fusermount3 mounts only on directories the user may write to */
	if (access(mountpoint, W_OK) < 0 ||
	    (stat(mountpoint, &st) == 0 && (st.st_mode & S_ISVTX) && st.st_uid != getuid())) {
		*ret_error = strdupf("mountpoint %s is not writable by uid %u", mountpoint,
				     (unsigned)getuid());
		*ret_hint = "fusermount3 mounts only on a directory the user owns or may write to";
		return -EACCES;
	}
	return 0;
}

/* libfuse's messages while a mount is being set up on this thread go into the error
 * line (one line, not libfuse's stderr); at other times into our log. */
#define FUSE_MSG_MAX 256
static _Thread_local char *fuse_msg;

_printf_(2, 0) static void fuse_log_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char buf[FUSE_MSG_MAX];
	vsnprintf(buf, sizeof buf, fmt, ap);
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (fuse_msg) {
		if (!fuse_msg[0] && level <= FUSE_LOG_WARNING)
			memcpy(fuse_msg, buf, n + 1);
		return;
	}
	if (level <= FUSE_LOG_ERR)
		log_error("%s", buf);
	else if (level <= FUSE_LOG_WARNING)
		log_warning("%s", buf);
	else
		log_debug("%s", buf);
}

/* A stop interrupts the session thread's wait with this signal when it cannot abort
 * the connection (see join_session); only that thread takes it. */
static int wake_signal(void)
{
	return SIGRTMIN + 2;
}

static void on_wake(int sig)
{
	(void)sig;
}

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void setup(void)
{
	fuse_set_log_func(fuse_log_sink);
	/* no SA_RESTART: the point is to end the wait */
	struct sigaction sa = { .sa_handler = on_wake };
	sigemptyset(&sa.sa_mask);
	(void)sigaction(wake_signal(), &sa, NULL);
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
	_cleanup_free_ char *fm = NULL;
	if (fusermount_find(&fm) < 0)
		return -EPERM;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execl(fm, "fusermount3", "-u", "-z", "--", path, (char *)NULL);
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
	sigset_t wake;
	sigemptyset(&wake);
	sigaddset(&wake, wake_signal());
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
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

int fsd_mount_start(const MountSpec *spec, FsdMount **ret, char **ret_error,
		    const char **ret_hint)
{
	*ret_error = NULL;
	*ret_hint = NULL;
	pthread_once(&setup_once, setup);
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
	fuse_opt_free_args(&args); /* the session keeps what it parsed, not the vector */
	if (!m->se) {
		*ret_error = strdup("creating the FUSE session failed");
		r = -EIO;
		goto fail;
	}
	r = mount_preflight(m->spec.mountpoint, ret_error, ret_hint);
	if (r < 0)
		goto fail;
	char msg[FUSE_MSG_MAX] = "";
	fuse_msg = msg;
	r = fuse_session_mount(m->se, m->spec.mountpoint);
	fuse_msg = NULL;
	if (r != 0) {
		*ret_error = strdupf("mounting on %s failed: %s", m->spec.mountpoint,
				     msg[0] ? msg : "libfuse gave no reason");
		*ret_hint = geteuid() == 0 ? "in a user namespace, FUSE mounts only in a mount "
					     "namespace it owns: unshare -U -r -m"
					   : "check that fusermount3 works for this user";
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

/* Abort through fusectl (root only): the session threads then see ENODEV. */
static bool abort_connection(dev_t dev)
{
	char p[64];
	snprintf(p, sizeof p, "/sys/fs/fuse/connections/%u/abort", minor(dev));
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT &&
	    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0)
		fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, "1", 1) == 1;
	close(fd);
	return ok;
}

static void deadline_in(struct timespec *ts, long msec)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += msec / 1000;
	ts->tv_nsec += (msec % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * Wait for the session thread after the unmount. Open files keep a lazily unmounted
 * connection alive: give them a moment, then abort it. Without fusectl (rootless),
 * interrupt the loop's wait instead: libfuse then cancels its workers, and closing
 * the last /dev/fuse fd ends the connection just the same (open files get ENOTCONN).
 * The signal is repeated because it may arrive just before the thread starts waiting.
 */
static void join_session(FsdMount *m)
{
	struct timespec ts;
	deadline_in(&ts, 2000);
	if (pthread_timedjoin_np(m->thread, NULL, &ts) == 0)
		return;
	if (m->dev && abort_connection(m->dev)) {
		pthread_join(m->thread, NULL);
		return;
	}
	for (;;) {
		(void)pthread_kill(m->thread, wake_signal());
		deadline_in(&ts, 100);
		if (pthread_timedjoin_np(m->thread, NULL, &ts) == 0)
			return;
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
		join_session(m);
	}
	if (m->se) {
		/* After our own unmount the connection is gone and this only frees libfuse's
		 * copy of the mountpoint (it polls the fd and sees the error first). */
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
