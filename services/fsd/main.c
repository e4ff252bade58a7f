/* SPDX-License-Identifier: MIT */
/*
 * locald-fsd: the zero-copy build context.
 *
 *   locald-fsd                      the daemon: Mount/Unmount/List/Stats on the bus
 *                                   (<runtime>/fsd.rpc); mounts survive a restart
 *   locald-fsd mount -o OPTS MNT    one mount in the foreground, until SIGTERM or an
 *                                   unmount from outside (tests, benchmarks, scripts)
 *
 * SIGTERM and SIGINT unmount cleanly in both modes.
 */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsd-bus.h"
#include "fsd-cmdline.h"
#include "fsd-mount.h"
#include "log.h"
#include "strutil.h"

static void help(void)
{
	printf("locald-fsd — FUSE overlay filesystem for build contexts\n\n"
	       "Usage: locald-fsd                       run the daemon (bus: <runtime>/fsd.rpc)\n"
	       "       locald-fsd mount -o OPTIONS [--pattern P]... MOUNTPOINT\n\n"
	       "Mount options (overlayfs syntax, comma-separated):\n"
	       "  lowerdir=A:B   read-only layers, first wins (':' and ',' escaped with '\\')\n"
	       "  upperdir=DIR   where changes go      workdir=DIR  scratch, same fs as upper\n"
	       "  ignore=FILE    .dockerignore-style file (repeatable; default: the first\n"
	       "                 lower's .dockerignore then .localdignore)\n"
	       "  noignore       no default ignore files\n"
	       "  timeout=SEC    kernel entry/attribute cache (default 60)\n"
	       "  writeback      kernel writeback cache     threads=N  FUSE worker threads\n");
}

/* One fd per cached inode (like passthrough_ll): take what the system allows. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	unsigned long nr = 0;
	if (f) {
		if (fscanf(f, "%lu", &nr) != 1)
			nr = 0;
		fclose(f);
	}
	if (nr > rl.rlim_max && geteuid() == 0)
		rl.rlim_max = nr;
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

static int block_signals(sigset_t *ret)
{
	sigemptyset(ret);
	sigaddset(ret, SIGTERM);
	sigaddset(ret, SIGINT);
	sigaddset(ret, SIGHUP);
	return -pthread_sigmask(SIG_BLOCK, ret, NULL);
}

static int run_mount(int argc, char **argv)
{
	MountSpec spec = { .timeout = 0 };
	_cleanup_free_ char *err = NULL;
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "options", required_argument, NULL, 'o' },
		{ "pattern", required_argument, NULL, 'p' },
		{},
	};
	int c, r;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:p:", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			help();
			return 0;
		case 'o':
			r = mount_spec_parse_options(&spec, optarg, &err);
			if (r < 0) {
				log_error("%s", err ? err : strerror(-r));
				mount_spec_done(&spec);
				return 2;
			}
			break;
		case 'p':
			if (strv_extend(&spec.patterns, optarg) < 0)
				return log_oom(), 1;
			break;
		default:
			mount_spec_done(&spec);
			return 2;
		}
	if (optind + 1 != argc) {
		log_error("mount: expected exactly one MOUNTPOINT (see --help)");
		mount_spec_done(&spec);
		return 2;
	}
	spec.mountpoint = strdup(argv[optind]);
	if (!spec.mountpoint)
		return log_oom(), 1;

	sigset_t mask;
	block_signals(&mask);
	_cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		return log_error_errno(-errno, "signalfd: %m"), 1;

	FsdMount *m = NULL;
	const char *hint = NULL;
	r = fsd_mount_start(&spec, &m, &err, &hint);
	mount_spec_done(&spec);
	if (r < 0) {
		/* one line: the reason, then what to do */
		if (hint)
			log_error("%s (hint: %s)", err, hint);
		else
			log_error("%s", err);
		return 1;
	}
	const Fs *fs = fsd_mount_fs(m);
	log_info("mounted %s (whiteouts: %s, opaque: %s)", fsd_mount_spec(m)->mountpoint,
		 fs->aufs_whiteouts ? ".wh. files" : "0/0 devices", fs->opaque_xattr);
	struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
			       { .fd = fsd_mount_end_fd(m), .events = POLLIN } };
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			struct signalfd_siginfo si;
			(void)!read(sfd, &si, sizeof si);
			log_info("signal %u: unmounting", si.ssi_signo);
			break;
		}
		if (p[1].revents) {
			log_info("unmounted from outside");
			break;
		}
	}
	fsd_mount_stop(m);
	return 0;
}

int main(int argc, char **argv)
{
	log_setup(argv[0]);
	umask(0); /* modes come from the callers, already masked by the kernel */
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && streq(argv[1], "mount"))
		return run_mount(argc - 1, argv + 1);
	if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
		help();
		return 0;
	}
	if (argc > 1 && (streq(argv[1], "--version") || streq(argv[1], "-V"))) {
		printf("locald-fsd %s\n", LOCALD_VERSION);
		return 0;
	}
	if (argc > 1) {
		log_error("unknown argument \"%s\" (see --help)", argv[1]);
		return 2;
	}
	sigset_t mask;
	block_signals(&mask);
	return fsd_daemon_run(&mask);
}
