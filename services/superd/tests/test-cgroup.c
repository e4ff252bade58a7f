/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parse-util.h"
#include "strutil.h"
#include "superd-cgroup.h"
#include "superd-spawn.h"
#include "test.h"

#define WAIT_MS 30000

static char *const base_env[] = { (char *)"PATH=/usr/local/bin:/usr/bin:/bin", NULL };

TEST(mountinfo_parse)
{
	const char *hybrid =
	    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
	char *mp = NULL, *root = NULL;
	bool ro = true;
	ASSERT_OK(cgroup2_mount_parse(hybrid, &mp, &root, &ro));
	ASSERT_STREQ(mp, "/sys/fs/cgroup/unified");
	ASSERT_STREQ(root, "/");
	ASSERT_FALSE(ro);
	free(mp);
	free(root);

	const char *v2_ns =
	    "29 23 0:26 /../.. /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
	ASSERT_OK(cgroup2_mount_parse(v2_ns, &mp, &root, &ro));
	ASSERT_STREQ(mp, "/sys/fs/cgroup");
	ASSERT_STREQ(root, "/../..");
	ASSERT_TRUE(ro);
	free(mp);
	free(root);

	const char *escaped = "50 1 0:40 /a /mnt/my\\040cg rw - cgroup2 none rw";
	ASSERT_OK(cgroup2_mount_parse(escaped, &mp, &root, &ro));
	ASSERT_STREQ(mp, "/mnt/my cg");
	free(mp);
	free(root);

	ASSERT_ERR(
	    cgroup2_mount_parse("31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", &mp,
				&root, &ro),
	    ENOENT);
	ASSERT_ERR(cgroup2_mount_parse("", &mp, &root, &ro), ENOENT);
}

TEST(own_path_parse)
{
	char *p = NULL;
	ASSERT_OK(
	    cgroup2_own_path_parse("9:name=systemd:/\n4:memory:/x\n0::/user.slice/u.scope\n", &p));
	ASSERT_STREQ(p, "/user.slice/u.scope");
	free(p);
	ASSERT_OK(cgroup2_own_path_parse("0::/", &p));
	ASSERT_STREQ(p, "/");
	free(p);
	ASSERT_ERR(cgroup2_own_path_parse("4:memory:/x\n", &p), ENOENT);
}

TEST(escape_name)
{
	_cleanup_free_ char *a = cgroup_escape_name("web");
	_cleanup_free_ char *b = cgroup_escape_name("web.api");
	_cleanup_free_ char *c = cgroup_escape_name("web_api");
	_cleanup_free_ char *d = cgroup_escape_name("..");
	_cleanup_free_ char *e = cgroup_escape_name("");
	ASSERT_STREQ(a, "web");
	ASSERT_STREQ(c, "web_api");
	ASSERT_TRUE(startswith(b, "web_api-") != NULL);
	ASSERT_FALSE(streq(b, c));
	ASSERT_TRUE(startswith(d, "__-") != NULL);
	ASSERT_TRUE(startswith(e, "-") != NULL);
	ASSERT_NULL(strchr(b, '.'));
}

static void choose(const CgroupFacts *f, int want, const char *want_base, const char *want_why)
{
	char *base = NULL, *why = NULL;
	int r = cgroup_base_choose(f, &base, &why);
	ASSERT_EQ(r, want);
	if (want_base)
		ASSERT_STREQ(base, want_base);
	else
		ASSERT_NULL(base);
	ASSERT_STRCONTAINS(why, want_why);
	free(base);
	free(why);
}

TEST(base_choose)
{
	const char *mp = "/sys/fs/cgroup/unified";
	/* Moved into the delegated tree by locald-shim: its leaf, or (just moved) the top. */
	CgroupFacts f = { .mountpoint = mp,
			  .own = "/sys/fs/cgroup/unified/locald/1000/superd",
			  .own_writable = true,
			  .delegated_writable = true,
			  .uid = 1000 };
	choose(&f, 0, "/sys/fs/cgroup/unified/locald/1000/services", "delegated by locald-shim");
	f.own = "/sys/fs/cgroup/unified/locald/1000";
	choose(&f, 0, "/sys/fs/cgroup/unified/locald/1000/services", "superd runs in");
	/* Not another uid's, nor a look-alike prefix. */
	f.own = "/sys/fs/cgroup/unified/locald/10000/superd";
	f.own_writable = false;
	choose(&f, -EACCES, NULL, "exists but superd runs outside it");
	/* Somewhere else below it (a superd run as a service): its own cgroup, as before. */
	f.own = "/sys/fs/cgroup/unified/locald/1000/services/p/s";
	f.own_writable = true;
	choose(&f, 0, "/sys/fs/cgroup/unified/locald/1000/services/p/s/locald-superd",
	       "own cgroup");
	/* systemd's user@.service delegation, or root in a writable cgroup. */
	f = (CgroupFacts){ .mountpoint = "/sys/fs/cgroup",
			   .own = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app",
			   .own_writable = true,
			   .uid = 1000 };
	choose(&f, 0,
	       "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app/locald-superd",
	       "is writable");
	/* Root may use <root>/locald from anywhere. */
	f = (CgroupFacts){ .mountpoint = mp,
			   .own = "/sys/fs/cgroup/unified/x",
			   .uid = 0,
			   .mount_writable = true };
	choose(&f, 0, "/sys/fs/cgroup/unified/locald/0/services", "root: superd uses");
	/* A user with nothing: the fix is named. */
	f = (CgroupFacts){ .mountpoint = mp,
			   .own = "/sys/fs/cgroup/unified",
			   .uid = 1000,
			   .mount_writable = false };
	choose(&f, -EACCES, NULL, "sudo localctl admin setup");
	f.own = NULL;
	choose(&f, -EACCES, NULL, "/sys/fs/cgroup/unified/locald/1000");
}

static char *base_or_skip(void)
{
	char *base = NULL, *reason = NULL;
	int r = cgroup_find_base(&base, &reason);
	if (r < 0) {
		static char why[512];
		snprintf(why, sizeof(why), "no writable cgroup2 hierarchy: %s",
			 reason ? reason : strerror(-r));
		free(reason);
		SKIP(why);
	}
	free(reason);
	return base;
}

static char *project_name(const char *test)
{
	char *p = strdupf("test-%d-%s", (int)getpid(), test);
	ASSERT_NOT_NULL(p);
	return p;
}

/* Wait (inotify on cgroup.events, not a sleep loop) until the cgroup has no process. */
static void wait_empty(const char *path)
{
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	ASSERT_TRUE(fd >= 0);
	_cleanup_free_ char *events = strdupf("%s/cgroup.events", path);
	ASSERT_TRUE(inotify_add_watch(fd, events, IN_MODIFY) >= 0);
	for (;;) {
		int r = cgroup_is_empty(path);
		ASSERT_OK(r);
		if (r == 1)
			break;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ASSERT_TRUE(poll(&pfd, 1, WAIT_MS) > 0);
		char buf[4096];
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
	close(fd);
}

static bool process_dead(pid_t pid)
{
	ProcessStat st;
	int r = process_stat(pid, &st);
	return r == -ESRCH || (r >= 0 && st.state == 'Z');
}

static int wait_status(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		ASSERT_EQ(errno, EINTR);
	return status;
}

TEST(find_base)
{
	_cleanup_free_ char *base = base_or_skip();
	ASSERT_TRUE(base[0] == '/');
	ASSERT_TRUE(endswith(base, "/locald-superd") || endswith(base, "/locald/0/services") ||
		    strstr(base, "/locald/") != NULL);
}

TEST(find_base_unprivileged_says_why)
{
	if (geteuid() != 0)
		SKIP("needs root to become another user");
	_cleanup_free_ char *probe = base_or_skip(); /* a cgroup2 mount exists */
	/* This test runs in its own forked process: dropping privileges here is fine. */
	ASSERT_OK(setgroups(0, NULL));
	ASSERT_OK(setresgid(65534, 65534, 65534));
	ASSERT_OK(setresuid(65534, 65534, 65534));
	char *base = NULL, *reason = NULL;
	int r = cgroup_find_base(&base, &reason);
	if (r >= 0)
		SKIP("nobody may write our cgroup here (delegated tree?)");
	ASSERT_ERR(r, EACCES);
	ASSERT_STRCONTAINS(reason, "not writable by uid 65534");
	ASSERT_STRCONTAINS(reason, "/locald/65534");
	free(reason);
}

static void create_move_kill(bool fork_path)
{
	_cleanup_free_ char *base = base_or_skip();
	_cleanup_free_ char *project = project_name(fork_path ? "fork" : "clone3");
	_cleanup_free_ char *path = NULL;
	ASSERT_OK(cgroup_service_create(base, project, "svc.one", &path));
	ASSERT_STRCONTAINS(path, project);
	ASSERT_STRCONTAINS(path, "/svc_one-");
	ASSERT_EQ(cgroup_is_empty(path), 1);

	/* Reused, not an error, when it exists (re-adoption). */
	_cleanup_free_ char *again = NULL;
	ASSERT_OK(cgroup_service_create(base, project, "svc.one", &again));
	ASSERT_STREQ(again, path);

	spawn_force_fork_fallback(fork_path);
	/* The outer shell double-forks a sleep into its own session and exits; the sleep
	 * prints its pid once it runs there. Only the cgroup still knows it is the service's. */
	SpawnOptions o = {
		.command = "setsid sh -c 'echo $$; exec sleep 1000 >/dev/null 2>&1' </dev/null &",
		.envp = base_env,
		.output = SPAWN_OUTPUT_PIPES,
		.cgroup = path,
	};
	Spawned s = SPAWNED_NULL;
	_cleanup_free_ char *error = NULL;
	int r = spawn_process(&o, &s, &error);
	if (r < 0)
		test_fail(__FILE__, __LINE__, "spawn: %s", error);

	char buf[64] = { 0 };
	size_t len = 0;
	while (!memchr(buf, '\n', len)) {
		struct pollfd pfd = { .fd = s.stdout_fd, .events = POLLIN };
		ASSERT_TRUE(poll(&pfd, 1, WAIT_MS) > 0);
		ssize_t n = read(s.stdout_fd, buf + len, sizeof(buf) - 1 - len);
		ASSERT_TRUE(n > 0);
		len += (size_t)n;
	}
	int grandchild;
	*strchr(buf, '\n') = 0;
	ASSERT_OK(safe_atoi(buf, &grandchild));
	ASSERT_EQ(wait_status(s.pid), 0);

	ASSERT_EQ(cgroup_contains_pid(path, grandchild), 1);
	ASSERT_EQ(cgroup_contains_pid(path, getpid()), 0);
	pid_t *pids = NULL;
	size_t n = 0;
	ASSERT_OK(cgroup_get_pids(path, &pids, &n));
	ASSERT_EQ(n, 1);
	ASSERT_EQ(pids[0], grandchild);
	free(pids);
	ASSERT_EQ(cgroup_is_empty(path), 0);
	ASSERT_NE(getsid(grandchild), s.pid); /* a process group kill would miss it */

	ASSERT_ERR(cgroup_service_remove(path), EBUSY);
	ASSERT_OK(cgroup_kill(path));
	wait_empty(path);
	ASSERT_TRUE(process_dead(grandchild));

	ASSERT_OK(cgroup_service_remove(path));
	ASSERT_EQ(access(path, F_OK), -1);
	_cleanup_free_ char *project_dir = strdupf("%s/%s", base, project);
	ASSERT_EQ(access(project_dir, F_OK), -1);
	spawned_close(&s);
}

TEST(create_move_kill_clone3)
{
	create_move_kill(false);
}

TEST(create_move_kill_fork_fallback)
{
	create_move_kill(true);
}

TEST(move_pid_and_signal_all)
{
	_cleanup_free_ char *base = base_or_skip();
	_cleanup_free_ char *project = project_name("signal");
	_cleanup_free_ char *path = NULL, *other = NULL;
	ASSERT_OK(cgroup_service_create(base, project, "a", &path));
	ASSERT_OK(cgroup_service_create(base, project, "b", &other));

	/* Started outside any cgroup of ours, then moved in (argv: nothing forks before). */
	char *const argv[] = { (char *)"sleep", (char *)"1000", NULL };
	SpawnOptions o = { .argv = argv, .envp = base_env };
	Spawned s = SPAWNED_NULL;
	ASSERT_OK(spawn_process(&o, &s, NULL));
	ASSERT_OK(cgroup_move_pid(path, s.pid));
	ASSERT_EQ(cgroup_contains_pid(path, s.pid), 1);

	/* A service may nest cgroups of its own; they belong to it too. */
	_cleanup_free_ char *sub = strdupf("%s/sub", path);
	ASSERT_OK(mkdir(sub, 0755));
	Spawned t = SPAWNED_NULL;
	o.cgroup = sub;
	ASSERT_OK(spawn_process(&o, &t, NULL));
	ASSERT_EQ(cgroup_contains_pid(path, t.pid), 1);
	ASSERT_EQ(cgroup_contains_pid(other, t.pid), 0);

	/* The pre-5.14 path: freeze, signal each, thaw. */
	int r = cgroup_signal_all(path, SIGKILL);
	ASSERT_OK(r);
	ASSERT_TRUE(r >= 2);
	ASSERT_TRUE(WIFSIGNALED(wait_status(s.pid)));
	ASSERT_TRUE(WIFSIGNALED(wait_status(t.pid)));
	wait_empty(path);
	ASSERT_OK(cgroup_service_remove(path));
	ASSERT_EQ(access(sub, F_OK), -1);
	/* The project directory stays while "b" is in it. */
	_cleanup_free_ char *project_dir = strdupf("%s/%s", base, project);
	ASSERT_EQ(access(project_dir, F_OK), 0);
	ASSERT_OK(cgroup_service_remove(other));
	ASSERT_EQ(access(project_dir, F_OK), -1);
	/* Removing what is gone is fine. */
	ASSERT_OK(cgroup_service_remove(path));
}

static void write_file(const char *dir, const char *file, const char *text)
{
	_cleanup_free_ char *p = strdupf("%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static bool file_says(const char *path, const char *file, const char *line)
{
	_cleanup_free_ char *p = strdupf("%s/%s", path, file);
	char buf[256] = { 0 };
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	return strstr(buf, line) != NULL;
}

static bool events_say(const char *path, const char *line)
{
	return file_says(path, "cgroup.events", line);
}

TEST(signal_all_leaves_a_frozen_cgroup_frozen)
{
	_cleanup_free_ char *base = base_or_skip();
	_cleanup_free_ char *project = project_name("frozen");
	_cleanup_free_ char *path = NULL;
	ASSERT_OK(cgroup_service_create(base, project, "s", &path));
	char *const argv[] = { (char *)"sleep", (char *)"1000", NULL };
	SpawnOptions o = { .argv = argv, .envp = base_env, .cgroup = path };
	Spawned s = SPAWNED_NULL;
	ASSERT_OK(spawn_process(&o, &s, NULL));

	/* Frozen by someone else (a "pause" feature, a debugger): wait until it is. */
	int fd = inotify_init1(IN_CLOEXEC);
	_cleanup_free_ char *events = strdupf("%s/cgroup.events", path);
	ASSERT_TRUE(inotify_add_watch(fd, events, IN_MODIFY) >= 0);
	write_file(path, "cgroup.freeze", "1");
	while (!events_say(path, "frozen 1")) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ASSERT_TRUE(poll(&pfd, 1, WAIT_MS) > 0);
		char buf[1024];
		ASSERT_TRUE(read(fd, buf, sizeof(buf)) > 0);
	}
	close(fd);

	ASSERT_EQ(cgroup_signal_all(path, SIGTERM), 1);
	/* Still asked to be frozen. (Not cgroup.events' "frozen": delivering the signal wakes
	 * the task for a moment, so that can read 0 until it is frozen again.) */
	ASSERT_TRUE(file_says(path, "cgroup.freeze", "1"));
	/* A fatal signal may kill it even frozen; thawed, it certainly has. */
	write_file(path, "cgroup.freeze", "0");
	int status = wait_status(s.pid);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	wait_empty(path);
	ASSERT_OK(cgroup_service_remove(path));
}

TEST(spawn_into_missing_cgroup_fails_clearly)
{
	_cleanup_free_ char *base = base_or_skip();
	SpawnOptions o = { .command = "true",
			   .envp = base_env,
			   .cgroup = "/sys/fs/cgroup/nonexistent-locald" };
	Spawned s = SPAWNED_NULL;
	_cleanup_free_ char *error = NULL;
	ASSERT_ERR(spawn_process(&o, &s, &error), ENOENT);
	ASSERT_STRCONTAINS(error, "cannot open cgroup '/sys/fs/cgroup/nonexistent-locald'");
}

TEST_MAIN();
