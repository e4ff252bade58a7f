/* SPDX-License-Identifier: MIT */
/*
 * The daemon: the bus side (Mount, Unmount, ListMounts, MountStats) over the live
 * mounts, and their persistence (fsd-state.c). Mount calls are answered when the
 * kernel has the mount; they run on the loop thread, the filesystems on their own.
 */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bus.h"
#include "daemon-util.h"
#include "fsd-bus.h"
#include "fsd-mount.h"
#include "fsd-state.h"
#include "log.h"
#include "loop.h"
#include "parse-util.h"
#include "paths.h"
#include "strutil.h"

#define FSD_MOUNTS_MAX 256

typedef struct Daemon {
	Loop *loop;
	BusServer *server;
	FsdMount *mounts[FSD_MOUNTS_MAX];
	size_t n_mounts;
	char *state_path;
} Daemon;

static void save_state(Daemon *d)
{
	const MountSpec *specs[FSD_MOUNTS_MAX];
	for (size_t i = 0; i < d->n_mounts; i++)
		specs[i] = fsd_mount_spec(d->mounts[i]);
	int r = fsd_state_save(d->state_path, specs, d->n_mounts);
	if (r < 0)
		log_warning_errno(r, "saving %s: %m (mounts will not come back after a restart)",
				  d->state_path);
}

static ssize_t find_mount(Daemon *d, const char *mountpoint)
{
	_cleanup_free_ char *real = realpath(mountpoint, NULL);
	for (size_t i = 0; i < d->n_mounts; i++) {
		const char *mp = fsd_mount_spec(d->mounts[i])->mountpoint;
		if (streq(mp, mountpoint) || (real && streq(mp, real)))
			return (ssize_t)i;
	}
	return -1;
}

static void remove_at(Daemon *d, size_t i)
{
	fsd_mount_stop(d->mounts[i]);
	memmove(&d->mounts[i], &d->mounts[i + 1], (d->n_mounts - i - 1) * sizeof(FsdMount *));
	d->n_mounts--;
}

/* ---- MountInfo ---- */

typedef struct InfoBuf {
	Locald__V1__MountInfo info;
	Locald__V1__MountOptions options;
	Locald__V1__FsCounters stats;
} InfoBuf;

static void fill_info(FsdMount *m, InfoBuf *b)
{
	const MountSpec *s = fsd_mount_spec(m);
	locald__v1__mount_info__init(&b->info);
	locald__v1__mount_options__init(&b->options);
	locald__v1__fs_counters__init(&b->stats);
	b->info.mountpoint = s->mountpoint;
	b->info.lowers = s->lowers;
	b->info.n_lowers = strv_length(s->lowers);
	b->info.upper = s->upper;
	b->info.work = s->work;
	b->info.ignore_files = s->ignore_files;
	b->info.n_ignore_files = strv_length(s->ignore_files);
	b->info.ignore_patterns = s->patterns;
	b->info.n_ignore_patterns = strv_length(s->patterns);
	Fs *fs = fsd_mount_fs(m);
	b->info.ignore_pattern_count = (uint32_t)ignore_count(fs->ignore);
	b->info.mounted_usec = (int64_t)fsd_mount_started_usec(m);
	b->options.cache_timeout_sec = fs->timeout;
	b->options.writeback = s->writeback;
	b->options.threads = s->max_threads ? s->max_threads : FSD_MAX_THREADS_DEFAULT;
	b->info.options = &b->options;
	FsStats st;
	fs_get_stats(fs, &st);
	b->stats.ops = st.ops;
	b->stats.lookups = st.lookups;
	b->stats.cache_hits = st.cache_hits;
	b->stats.copy_ups = st.copy_ups;
	b->stats.whiteouts = st.whiteouts;
	b->stats.cached_inodes = st.nodes;
	b->stats.errors = st.errors;
	b->info.stats = &b->stats;
}

/* ---- handlers ---- */

static int on_mount(BusCall *call, const BusRequest *req, void *userdata)
{
	Daemon *d = userdata;
	const Locald__V1__Mount *mr = req->mount;
	if (mr->n_lowers == 0 || isempty(mr->upper) || isempty(mr->work) || isempty(mr->mountpoint))
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
					    "give lowers, upper, work and mountpoint",
					    "Mount: a directory is missing"),
		       0;
	if (find_mount(d, mr->mountpoint) >= 0)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__ALREADY_EXISTS,
					    "unmount it first", "%s is already mounted by fsd",
					    mr->mountpoint),
		       0;
	if (d->n_mounts >= FSD_MOUNTS_MAX)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__UNAVAILABLE, NULL,
					    "too many mounts (%d)", FSD_MOUNTS_MAX),
		       0;
	MountSpec spec = {
		.upper = mr->upper,
		.work = mr->work,
		.mountpoint = mr->mountpoint,
		.no_ignore = mr->no_default_ignore,
	};
	/* the request's arrays are not NULL-terminated: copy them */
	_cleanup_(strv_freep) char **lowers = NULL, **files = NULL, **pats = NULL;
	for (size_t i = 0; i < mr->n_lowers; i++)
		if (strv_extend(&lowers, mr->lowers[i]) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < mr->n_ignore_files; i++)
		if (strv_extend(&files, mr->ignore_files[i]) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < mr->n_ignore_patterns; i++)
		if (strv_extend(&pats, mr->ignore_patterns[i]) < 0)
			return -ENOMEM;
	spec.lowers = lowers;
	spec.ignore_files = files;
	spec.patterns = pats;
	if (mr->options) {
		if (mr->options->cache_timeout_sec < 0 || mr->options->cache_timeout_sec > 86400 ||
		    mr->options->threads > 256)
			return bus_call_reply_error(&call,
						    LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT,
						    "cache_timeout_sec 0-86400, threads 0-256",
						    "Mount: option out of range"),
			       0;
		spec.timeout = mr->options->cache_timeout_sec;
		spec.writeback = mr->options->writeback;
		spec.max_threads = mr->options->threads;
	}
	FsdMount *m = NULL;
	_cleanup_free_ char *err = NULL;
	const char *hint = NULL;
	int r = fsd_mount_start(&spec, &m, &err, &hint);
	if (r < 0)
		return bus_call_reply_errno(&call, r, hint, "Mount: %s", strempty(err)), 0;
	d->mounts[d->n_mounts++] = m;
	save_state(d);
	log_info("mounted %s", fsd_mount_spec(m)->mountpoint);

	InfoBuf b;
	fill_info(m, &b);
	Locald__V1__MountResult res = LOCALD__V1__MOUNT_RESULT__INIT;
	res.mount = &b.info;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_MOUNT;
	reply.mount = &res;
	(void)bus_call_reply(&call, &reply);
	return 0;
}

static int on_unmount(BusCall *call, const BusRequest *req, void *userdata)
{
	Daemon *d = userdata;
	const char *mp = req->unmount->mountpoint;
	if (isempty(mp))
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, NULL,
					    "Unmount: mountpoint is empty"),
		       0;
	ssize_t i = find_mount(d, mp);
	if (i < 0)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND,
					    "`localctl fs ls` lists fsd's mounts",
					    "%s is not mounted by fsd", mp),
		       0;
	log_info("unmounting %s", fsd_mount_spec(d->mounts[i])->mountpoint);
	remove_at(d, (size_t)i);
	save_state(d);
	Locald__V1__UnmountResult res = LOCALD__V1__UNMOUNT_RESULT__INIT;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_UNMOUNT;
	reply.unmount = &res;
	(void)bus_call_reply(&call, &reply);
	return 0;
}

static int reply_infos(Daemon *d, BusCall *call, const char *only, bool stats)
{
	InfoBuf *bufs = calloc(d->n_mounts ? d->n_mounts : 1, sizeof(InfoBuf));
	Locald__V1__MountInfo **ptrs = calloc(d->n_mounts ? d->n_mounts : 1, sizeof(void *));
	size_t n = 0;
	if (!bufs || !ptrs) {
		free(bufs);
		free(ptrs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d->n_mounts; i++) {
		if (only && !streq(fsd_mount_spec(d->mounts[i])->mountpoint, only))
			continue;
		fill_info(d->mounts[i], &bufs[n]);
		ptrs[n] = &bufs[n].info;
		n++;
	}
	BusReply reply = LOCALD__V1__REPLY__INIT;
	Locald__V1__ListMountsResult lr = LOCALD__V1__LIST_MOUNTS_RESULT__INIT;
	Locald__V1__MountStatsResult sr = LOCALD__V1__MOUNT_STATS_RESULT__INIT;
	if (stats) {
		sr.n_mounts = n;
		sr.mounts = ptrs;
		reply.result_case = LOCALD__V1__REPLY__RESULT_MOUNT_STATS;
		reply.mount_stats = &sr;
	} else {
		lr.n_mounts = n;
		lr.mounts = ptrs;
		reply.result_case = LOCALD__V1__REPLY__RESULT_LIST_MOUNTS;
		reply.list_mounts = &lr;
	}
	(void)bus_call_reply(&call, &reply);
	free(bufs);
	free(ptrs);
	return 0;
}

static int on_list(BusCall *call, const BusRequest *req, void *userdata)
{
	return reply_infos(userdata, call, NULL, false);
}

static int on_stats(BusCall *call, const BusRequest *req, void *userdata)
{
	Daemon *d = userdata;
	const char *mp = req->mount_stats->mountpoint;
	if (!isempty(mp)) {
		ssize_t i = find_mount(d, mp);
		if (i < 0)
			return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__NOT_FOUND, NULL,
						    "%s is not mounted by fsd", mp),
			       0;
		mp = fsd_mount_spec(d->mounts[i])->mountpoint;
	}
	return reply_infos(d, call, isempty(mp) ? NULL : mp, true);
}

/* ---- life ---- */

static void on_signal(LoopSignal *s, int signo, void *userdata)
{
	Daemon *d = userdata;
	log_info("%s: unmounting %zu mount(s)", signal_to_string(signo), d->n_mounts);
	loop_exit(d->loop, 0);
}

static void on_tick(LoopTimer *t, void *userdata)
{
	Daemon *d = userdata;
	bool changed = false;
	for (size_t i = 0; i < d->n_mounts;)
		if (fsd_mount_ended(d->mounts[i])) {
			log_notice("%s was unmounted from outside; forgetting it",
				   fsd_mount_spec(d->mounts[i])->mountpoint);
			remove_at(d, i);
			changed = true;
		} else
			i++;
	if (changed)
		save_state(d);
}

static void restore(Daemon *d)
{
	MountSpec *specs = NULL;
	size_t n = 0;
	int r = fsd_state_load(d->state_path, &specs, &n);
	if (r < 0) {
		log_warning_errno(r, "%s unreadable, starting without mounts: %m", d->state_path);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (d->n_mounts < FSD_MOUNTS_MAX) {
			/* whatever a dead fsd left there goes first */
			if (fsd_unmount_stale(specs[i].mountpoint) > 0)
				log_info("lazily unmounted a stale mount on %s",
					 specs[i].mountpoint);
			FsdMount *m = NULL;
			_cleanup_free_ char *err = NULL;
			const char *hint = NULL;
			r = fsd_mount_start(&specs[i], &m, &err, &hint);
			if (r < 0)
				log_warning("re-creating %s failed, dropping it: %s%s%s%s",
					    specs[i].mountpoint, strempty(err), hint ? " (hint: " : "",
					    strempty(hint), hint ? ")" : "");
			else {
				d->mounts[d->n_mounts++] = m;
				log_info("re-created %s", fsd_mount_spec(m)->mountpoint);
			}
		}
		mount_spec_done(&specs[i]);
	}
	free(specs);
	save_state(d);
}

int fsd_daemon_run(const sigset_t *signals)
{
	Daemon d = {};
	_cleanup_free_ char *runtime = NULL, *state = NULL, *dir = NULL;
	int r = locald_runtime_dir_ensure(&runtime);
	if (r < 0)
		return log_error_errno(r, "runtime directory: %m"), 1;
	r = locald_state_dir_ensure(&state);
	if (r < 0)
		return log_error_errno(r, "state directory: %m"), 1;
	dir = path_join(state, "fsd");
	if (!dir || mkdir_p(dir, 0700) < 0)
		return log_error("cannot create %s", strempty(dir)), 1;
	d.state_path = path_join(dir, "mounts.json");
	if (!d.state_path)
		return log_oom(), 1;
	_cleanup_close_ int lock = -1;
	pid_t holder = 0;
	r = daemon_lock(runtime, "fsd", false, &lock, &holder);
	if (r == -EBUSY && isempty(getenv("NOTIFY_SOCKET"))) {
		log_error("another locald-fsd (pid %d) already serves %s; only one per user",
			  (int)holder, runtime);
		return 1;
	}
	if (r == -EBUSY) {
		/* Supervised (superd's system project) while one started by `localctl fs`
		 * runs: stand by and take its mounts over (from the state file) when it exits.
		 * Nothing is mounted yet, so SIGTERM may simply end us while we wait. */
		log_info("another locald-fsd (pid %d) serves %s; standing by until it exits",
			 (int)holder, runtime);
		(void)daemon_notify("READY=1\nSTATUS=standing by for another locald-fsd");
		pthread_sigmask(SIG_UNBLOCK, signals, NULL);
		r = daemon_lock(runtime, "fsd", true, &lock, NULL);
		pthread_sigmask(SIG_BLOCK, signals, NULL);
	}
	if (r < 0)
		return log_error_errno(r, "%s/fsd.lock: %m", runtime), 1;
	/* the daemon's main thread handles signals through the loop */
	pthread_sigmask(SIG_UNBLOCK, signals, NULL);

	r = loop_new(&d.loop);
	if (r < 0)
		return log_error_errno(r, "event loop: %m"), 1;
	r = bus_server_new(d.loop, NULL, runtime, "fsd", &d.server);
	if (r < 0) {
		log_error_errno(r, "binding %s/fsd.rpc: %m%s", runtime,
				r == -EADDRINUSE ? " (another locald-fsd runs)" : "");
		loop_free(d.loop);
		free(d.state_path);
		return 1;
	}
	bus_server_add_handler(d.server, LOCALD__V1__REQUEST__CALL_MOUNT, on_mount, &d);
	bus_server_add_handler(d.server, LOCALD__V1__REQUEST__CALL_UNMOUNT, on_unmount, &d);
	bus_server_add_handler(d.server, LOCALD__V1__REQUEST__CALL_LIST_MOUNTS, on_list, &d);
	bus_server_add_handler(d.server, LOCALD__V1__REQUEST__CALL_MOUNT_STATS, on_stats, &d);

	restore(&d);

	LoopSignal *sigterm = NULL, *sigint = NULL;
	LoopTimer *tick = NULL;
	loop_signal_new(d.loop, SIGTERM, on_signal, &d, &sigterm);
	loop_signal_new(d.loop, SIGINT, on_signal, &d, &sigint);
	loop_timer_new(d.loop, 1000, 1000, on_tick, &d, &tick);
	log_info("ready on %s", bus_server_get_rpc_path(d.server));
	(void)daemon_notify("READY=1\nSTATUS=serving");
	r = loop_run(d.loop);

	/* unmount everything, keep the list: the next start re-creates the mounts */
	while (d.n_mounts > 0) {
		log_info("unmounting %s", fsd_mount_spec(d.mounts[d.n_mounts - 1])->mountpoint);
		fsd_mount_stop(d.mounts[--d.n_mounts]);
	}
	loop_timer_free(tick);
	loop_signal_free(sigterm);
	loop_signal_free(sigint);
	bus_server_free(d.server);
	loop_free(d.loop);
	free(d.state_path);
	return r < 0 ? 1 : 0;
}
