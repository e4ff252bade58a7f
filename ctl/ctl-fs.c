/* SPDX-License-Identifier: MIT */
/*
 * `localctl fs mount|unmount|ls|stats`: overlay mounts served by locald-fsd (the
 * zero-copy build context). fsd is started detached when it does not answer.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "paths.h"
#include "strutil.h"
#include "time-util.h"

static const char fs_help[] =
    "Usage: localctl fs mount LOWER... --upper DIR --work DIR --mountpoint DIR\n"
    "                         [--ignore FILE]... [--pattern PATTERN]... [--no-ignore]\n"
    "                         [--writeback] [--cache-timeout SEC]\n"
    "       localctl fs unmount MOUNTPOINT\n"
    "       localctl fs ls [--json]\n"
    "       localctl fs stats [MOUNTPOINT] [--json]\n\n"
    "A merged view of LOWER... (read-only, first wins) at MOUNTPOINT; changes go to the\n"
    "upper DIR. Paths matching the ignore patterns are hidden without copying anything:\n"
    "by default LOWER/.dockerignore, then LOWER/.localdignore (later lines win).\n";

#define FS_CALL_TIMEOUT_MS 30000

static int fsd_binary(char **ret)
{
	const char *e = secure_getenv("LOCALD_FSD");
	if (!isempty(e))
		return (*ret = strdup(e)) ? 0 : -ENOMEM;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			const char *cand[] = { "locald-fsd", "../services/fsd/locald-fsd" };
			for (size_t i = 0; i < ELEMENTSOF(cand); i++) {
				char *p = strdupf("%s/%s", self, cand[i]);
				if (!p)
					return -ENOMEM;
				if (access(p, X_OK) == 0) {
					*ret = p;
					return 0;
				}
				free(p);
			}
		}
	}
	return (*ret = strdup("locald-fsd")) ? 0 : -ENOMEM; /* from $PATH */
}

static int fsd_client(Ctl *ctl, BusZmtpClient **ret)
{
	return ctl_client_new(ctl, "fsd", ret);
}

static bool fsd_alive(BusZmtpClient *c)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Ping ping = LOCALD__V1__PING__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_PING;
	req.ping = &ping;
	BusReply *reply = NULL;
	if (bus_zmtp_client_call(c, &req, 500, &reply) < 0)
		return false;
	bus_reply_free(reply);
	return true;
}

/* Connect to fsd, starting it (detached, log in <state>/fsd.log) when it is not up. */
static int fsd_ensure(Ctl *ctl, bool start, BusZmtpClient **ret)
{
	BusZmtpClient *c = NULL;
	int r = fsd_client(ctl, &c);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "cannot reach locald-fsd: %s",
				strerror(-r));
	if (fsd_alive(c) || !start) {
		*ret = c;
		return 0;
	}
	_cleanup_free_ char *bin = NULL, *state = NULL, *logp = NULL;
	if (fsd_binary(&bin) < 0 || locald_state_dir_ensure(&state) < 0 ||
	    !(logp = path_join(state, "fsd.log"))) {
		bus_zmtp_client_free(c);
		return ctl_fail(ctl, EXIT_FAILED, NULL, "cannot start locald-fsd");
	}
	pid_t pid = fork();
	if (pid < 0) {
		bus_zmtp_client_free(c);
		return ctl_fail(ctl, EXIT_FAILED, NULL, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		setsid();
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int lf = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (nul >= 0)
			dup2(nul, 0);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		if (fork() == 0) {
			execl(bin, "locald-fsd", (char *)NULL);
			_exit(127);
		}
		_exit(0);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	for (int i = 0; i < 100; i++) {
		if (fsd_alive(c)) {
			*ret = c;
			return 0;
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	bus_zmtp_client_free(c);
	return ctl_fail(ctl, EXIT_UNREACHABLE, "see its log",
			"locald-fsd did not start (%s, log %s)", bin, logp);
}

static int call(Ctl *ctl, BusZmtpClient *c, BusRequest *req, BusReply **ret)
{
	BusReply *reply = NULL;
	int r = bus_zmtp_client_call(c, req, FS_CALL_TIMEOUT_MS, &reply);
	if (r == -ETIMEDOUT || r == -ECONNREFUSED)
		return ctl_fail(ctl, EXIT_UNREACHABLE,
				"`localctl fs ls` starts nothing; `localctl fs mount` starts it",
				"locald-fsd did not answer");
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "talking to locald-fsd: %s", strerror(-r));
	const BusErrorMessage *e = bus_reply_get_error(reply);
	if (e) {
		r = ctl_fail_reply(ctl, e, NULL);
		bus_reply_free(reply);
		return r;
	}
	*ret = reply;
	return 0;
}

static char *absolute(const char *p)
{
	char *a = realpath(p, NULL);
	return a ? a : strdup(p); /* fsd names what is missing */
}

static json_t *info_json(const Locald__V1__MountInfo *m)
{
	json_t *lowers = json_array(), *pats = json_array();
	for (size_t i = 0; i < m->n_lowers; i++)
		json_array_append_new(lowers, json_string(m->lowers[i]));
	for (size_t i = 0; i < m->n_ignore_patterns; i++)
		json_array_append_new(pats, json_string(m->ignore_patterns[i]));
	json_t *o = json_pack(
	    "{s:s, s:o, s:s, s:s, s:o, s:i, s:I}", "mountpoint", m->mountpoint, "lowers", lowers,
	    "upper", m->upper, "work", m->work, "ignore_patterns", pats, "ignore_pattern_count",
	    (int)m->ignore_pattern_count, "mounted_usec", (json_int_t)m->mounted_usec);
	if (o && m->stats)
		json_object_set_new(o, "stats",
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ops",
					      (json_int_t)m->stats->ops, "lookups",
					      (json_int_t)m->stats->lookups, "cache_hits",
					      (json_int_t)m->stats->cache_hits, "copy_ups",
					      (json_int_t)m->stats->copy_ups, "whiteouts",
					      (json_int_t)m->stats->whiteouts, "cached_inodes",
					      (json_int_t)m->stats->cached_inodes, "errors",
					      (json_int_t)m->stats->errors));
	return o;
}

static int fs_mount(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "upper", required_argument, NULL, 'u' },
		{ "work", required_argument, NULL, 'w' },
		{ "mountpoint", required_argument, NULL, 'm' },
		{ "ignore", required_argument, NULL, 'i' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "no-ignore", no_argument, NULL, 'N' },
		{ "writeback", no_argument, NULL, 'W' },
		{ "cache-timeout", required_argument, NULL, 't' },
		{},
	};
	_cleanup_free_ char *upper = NULL, *work = NULL, *mnt = NULL;
	_cleanup_(strv_freep) char **ignores = NULL, **patterns = NULL, **lowers = NULL;
	Locald__V1__MountOptions mo = LOCALD__V1__MOUNT_OPTIONS__INIT;
	bool no_ignore = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
		switch (c) {
		case 'h':
			return ctl_usage(ctl, true, fs_help);
		case 'u':
			free(upper);
			upper = absolute(optarg);
			break;
		case 'w':
			free(work);
			work = absolute(optarg);
			break;
		case 'm':
			free(mnt);
			mnt = absolute(optarg);
			break;
		case 'i': {
			_cleanup_free_ char *a = absolute(optarg);
			if (!a || strv_extend(&ignores, a) < 0)
				return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
			break;
		}
		case 'p':
			if (strv_extend(&patterns, optarg) < 0)
				return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
			break;
		case 'N':
			no_ignore = true;
			break;
		case 'W':
			mo.writeback = true;
			break;
		case 't': {
			char *end;
			double t = strtod(optarg, &end);
			if (*optarg == 0 || *end || t < 0 || t > 86400)
				return ctl_fail(ctl, EXIT_USAGE, "e.g. --cache-timeout 1.5",
						"--cache-timeout: \"%s\" is not seconds (0-86400)",
						optarg);
			mo.cache_timeout_sec = t;
			break;
		}
		default:
			return ctl_usage(ctl, false, fs_help);
		}
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *a = absolute(argv[i]);
		if (!a || strv_extend(&lowers, a) < 0)
			return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	}
	if (!lowers)
		return ctl_fail(
		    ctl, EXIT_USAGE,
		    "localctl fs mount LOWER... --upper DIR --work DIR --mountpoint DIR",
		    "fs mount: no LOWER directory given");
	if (!upper || !work || !mnt)
		return ctl_fail(ctl, EXIT_USAGE, "localctl fs mount --help",
				"fs mount: --%s is required",
				!upper  ? "upper"
				: !work ? "work"
					: "mountpoint");

	BusZmtpClient *cl = NULL;
	int r = fsd_ensure(ctl, true, &cl);
	if (r)
		return r;
	Locald__V1__Mount m = LOCALD__V1__MOUNT__INIT;
	m.lowers = lowers;
	m.n_lowers = strv_length(lowers);
	m.upper = upper;
	m.work = work;
	m.mountpoint = mnt;
	m.ignore_files = ignores;
	m.n_ignore_files = strv_length(ignores);
	m.ignore_patterns = patterns;
	m.n_ignore_patterns = strv_length(patterns);
	m.no_default_ignore = no_ignore;
	m.options = &mo;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_MOUNT;
	req.mount = &m;
	BusReply *reply = NULL;
	r = call(ctl, cl, &req, &reply);
	bus_zmtp_client_free(cl);
	if (r)
		return r;
	const Locald__V1__MountInfo *mi = reply->mount ? reply->mount->mount : NULL;
	if (ctl->json && mi)
		r = ctl_print_json(ctl, info_json(mi));
	else if (!ctl->quiet && mi)
		printf("mounted %s (%zu lower%s, %u ignore pattern%s)\n", mi->mountpoint,
		       mi->n_lowers, mi->n_lowers == 1 ? "" : "s", mi->ignore_pattern_count,
		       mi->ignore_pattern_count == 1 ? "" : "s");
	bus_reply_free(reply);
	return r;
}

static int fs_unmount(Ctl *ctl, int argc, char **argv)
{
	if (argc - optind != 1)
		return ctl_fail(ctl, EXIT_USAGE, "localctl fs unmount MOUNTPOINT",
				"fs unmount: give one mountpoint");
	_cleanup_free_ char *mnt = absolute(argv[optind]);
	if (!mnt)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	BusZmtpClient *cl = NULL;
	int r = fsd_ensure(ctl, false, &cl);
	if (r)
		return r;
	Locald__V1__Unmount u = LOCALD__V1__UNMOUNT__INIT;
	u.mountpoint = mnt;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_UNMOUNT;
	req.unmount = &u;
	BusReply *reply = NULL;
	r = call(ctl, cl, &req, &reply);
	bus_zmtp_client_free(cl);
	if (r)
		return r;
	if (!ctl->quiet && !ctl->json)
		printf("unmounted %s\n", mnt);
	bus_reply_free(reply);
	return 0;
}

static int fs_list(Ctl *ctl, int argc, char **argv, bool stats)
{
	_cleanup_free_ char *only = NULL;
	if (argc - optind > (stats ? 1 : 0))
		return ctl_usage(ctl, false, fs_help);
	if (argc - optind == 1 && !(only = absolute(argv[optind])))
		return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
	BusZmtpClient *cl = NULL;
	int r = fsd_ensure(ctl, false, &cl);
	if (r)
		return r;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__ListMounts lm = LOCALD__V1__LIST_MOUNTS__INIT;
	Locald__V1__MountStats ms = LOCALD__V1__MOUNT_STATS__INIT;
	if (stats) {
		ms.mountpoint = only ? only : (char *)"";
		req.call_case = LOCALD__V1__REQUEST__CALL_MOUNT_STATS;
		req.mount_stats = &ms;
	} else {
		req.call_case = LOCALD__V1__REQUEST__CALL_LIST_MOUNTS;
		req.list_mounts = &lm;
	}
	BusReply *reply = NULL;
	if (!fsd_alive(cl)) {
		bus_zmtp_client_free(cl);
		if (ctl->json)
			return ctl_print_json(ctl, json_array());
		if (!ctl->quiet)
			printf("locald-fsd is not running: no mounts\n");
		return EXIT_OK;
	}
	r = call(ctl, cl, &req, &reply);
	bus_zmtp_client_free(cl);
	if (r)
		return r;
	size_t n = stats ? reply->mount_stats->n_mounts : reply->list_mounts->n_mounts;
	Locald__V1__MountInfo **ms_ =
	    stats ? reply->mount_stats->mounts : reply->list_mounts->mounts;
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, info_json(ms_[i]));
		r = ctl_print_json(ctl, a);
	} else if (n == 0) {
		if (!ctl->quiet)
			printf("no mounts\n");
	} else
		for (size_t i = 0; i < n; i++) {
			const Locald__V1__MountInfo *m = ms_[i];
			if (stats && m->stats)
				printf(
				    "%s  ops %llu  lookups %llu (cache hits %llu)  copy-ups %llu  "
				    "whiteouts %llu  inodes %llu  errors %llu\n",
				    m->mountpoint, (unsigned long long)m->stats->ops,
				    (unsigned long long)m->stats->lookups,
				    (unsigned long long)m->stats->cache_hits,
				    (unsigned long long)m->stats->copy_ups,
				    (unsigned long long)m->stats->whiteouts,
				    (unsigned long long)m->stats->cached_inodes,
				    (unsigned long long)m->stats->errors);
			else {
				printf("%s%s%s  upper %s  lowers", ctl_color(ctl, false, ANSI_BOLD),
				       m->mountpoint, ctl_color(ctl, false, ANSI_RESET), m->upper);
				for (size_t j = 0; j < m->n_lowers; j++)
					printf(" %s", m->lowers[j]);
				printf("  (%u ignore pattern%s)\n", m->ignore_pattern_count,
				       m->ignore_pattern_count == 1 ? "" : "s");
			}
		}
	bus_reply_free(reply);
	return r;
}

int cmd_fs(Ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage(ctl, false, fs_help);
	const char *verb = argv[1];
	if (streq(verb, "--help") || streq(verb, "-h") || streq(verb, "help"))
		return ctl_usage(ctl, true, fs_help);
	if (streq(verb, "mount"))
		return fs_mount(ctl, argc - 1, argv + 1);
	/* the other verbs take --json and --help only */
	int pr = ctl_parse_simple(ctl, argc - 1, argv + 1, CTL_PARSE_JSON, fs_help);
	if (pr >= 0)
		return pr;
	if (streq(verb, "unmount") || streq(verb, "umount"))
		return fs_unmount(ctl, argc - 1, argv + 1);
	if (streq(verb, "ls") || streq(verb, "list"))
		return fs_list(ctl, argc - 1, argv + 1, false);
	if (streq(verb, "stats"))
		return fs_list(ctl, argc - 1, argv + 1, true);
	return ctl_fail(ctl, EXIT_USAGE, "localctl fs --help", "fs: unknown command \"%s\"", verb);
}
