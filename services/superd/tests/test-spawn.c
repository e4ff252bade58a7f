/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "strutil.h"
#include "superd-spawn.h"
#include "test.h"

/* Generous bounds: the machine may be loaded; we wait for events, not for speed. */
#define WAIT_MS 30000

static char *const base_env[] = { (char *)"PATH=/usr/local/bin:/usr/bin:/bin",
				  (char *)"FOO=bar baz", NULL };

/* Read fd (non-blocking) until EOF, or EIO for a PTY master. */
static char *read_all(int fd)
{
	Buf b = BUF_INIT(1024 * 1024);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, WAIT_MS);
		ASSERT_TRUE(r > 0);
		char tmp[4096];
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0 && errno == EIO)
			break;
		ASSERT_TRUE(n >= 0);
		if (n == 0)
			break;
		ASSERT_OK(buf_append(&b, tmp, (size_t)n));
	}
	return buf_steal(&b, NULL);
}

static int wait_status(pid_t pid)
{
	int status;
	pid_t r;
	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	ASSERT_EQ(r, pid);
	return status;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Run o to completion; returns stdout, and stderr in *ret_err if asked. */
static char *run(const SpawnOptions *o, char **ret_err, int *ret_status)
{
	Spawned s = SPAWNED_NULL;
	_cleanup_free_ char *error = NULL;
	int r = spawn_process(o, &s, &error);
	if (r < 0)
		test_fail(__FILE__, __LINE__, "spawn: %s", error ? error : strerror(-r));
	char *out = read_all(o->output == SPAWN_OUTPUT_PTY ? s.pty_fd : s.stdout_fd);
	if (ret_err)
		*ret_err = read_all(s.stderr_fd);
	int status = wait_status(s.pid);
	if (ret_status)
		*ret_status = status;
	spawned_close(&s);
	return out;
}

TEST(shell_command_env_and_cwd)
{
	_cleanup_free_ char *cwd = realpath(test_tmpdir(), NULL);
	SpawnOptions o = {
		.command = "echo \"$FOO\"; pwd; echo \"home=${HOME-unset}\"",
		.envp = base_env,
		.workdir = cwd,
		.output = SPAWN_OUTPUT_PIPES,
	};
	int status;
	_cleanup_free_ char *err = NULL;
	_cleanup_free_ char *out = run(&o, &err, &status);
	_cleanup_free_ char *want = strdupf("bar baz\n%s\nhome=unset\n", cwd);
	ASSERT_STREQ(out, want);
	ASSERT_STREQ(err, "");
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(argv_exec_uses_path_of_env)
{
	char *const argv[] = { (char *)"printf", (char *)"%s|%s\n", (char *)"a b", (char *)"$FOO",
			       NULL };
	SpawnOptions o = { .argv = argv, .envp = base_env, .output = SPAWN_OUTPUT_PIPES };
	_cleanup_free_ char *err = NULL;
	_cleanup_free_ char *out = run(&o, &err, NULL);
	ASSERT_STREQ(out, "a b|$FOO\n");
	ASSERT_STREQ(err, "");
}

TEST(notify_socket_replaces_env)
{
	char *const env[] = { (char *)"PATH=/usr/bin:/bin", (char *)"NOTIFY_SOCKET=/old", NULL };
	SpawnOptions o = {
		.command = "env | grep ^NOTIFY_SOCKET=",
		.envp = env,
		.notify_socket = "@locald/x",
		.output = SPAWN_OUTPUT_PIPES,
	};
	_cleanup_free_ char *err = NULL;
	_cleanup_free_ char *out = run(&o, &err, NULL);
	ASSERT_STREQ(out, "NOTIFY_SOCKET=@locald/x\n");
}

TEST(stdout_and_stderr_apart)
{
	SpawnOptions o = {
		.command = "echo out1; echo err1 >&2; echo out2; read x || echo stdin-eof",
		.envp = base_env,
		.output = SPAWN_OUTPUT_PIPES,
	};
	_cleanup_free_ char *err = NULL;
	_cleanup_free_ char *out = run(&o, &err, NULL);
	ASSERT_STREQ(out, "out1\nout2\nstdin-eof\n");
	ASSERT_STREQ(err, "err1\n");
}

TEST(merged_output)
{
	SpawnOptions o = { .command = "echo a; echo b >&2",
			   .envp = base_env,
			   .output = SPAWN_OUTPUT_MERGED };
	_cleanup_free_ char *out = run(&o, NULL, NULL);
	ASSERT_STREQ(out, "a\nb\n");
}

TEST(pty_is_a_terminal_with_colours)
{
	SpawnOptions o = {
		.command = "test -t 0 && test -t 1 && test -t 2 && echo tty; "
			   ": </dev/tty && echo ctty; stty size; echo \"$TERM\"; "
			   "printf '\\033[31mred\\033[0m\\n'",
		.envp = base_env,
		.output = SPAWN_OUTPUT_PTY,
	};
	_cleanup_free_ char *out = run(&o, NULL, NULL);
	ASSERT_STREQ(out, "tty\nctty\n40 120\nxterm-256color\n\033[31mred\033[0m\n");
}

TEST(pty_keeps_term_and_size)
{
	char *const env[] = { (char *)"PATH=/usr/bin:/bin", (char *)"TERM=screen", NULL };
	SpawnOptions o = {
		.command = "stty size; echo \"$TERM\"",
		.envp = env,
		.output = SPAWN_OUTPUT_PTY,
		.pty_columns = 80,
		.pty_rows = 24,
	};
	_cleanup_free_ char *out = run(&o, NULL, NULL);
	ASSERT_STREQ(out, "24 80\nscreen\n");
}

static void assert_no_children(void)
{
	ASSERT_EQ(waitpid(-1, NULL, WNOHANG), -1);
	ASSERT_EQ(errno, ECHILD);
}

TEST(exec_failure_is_reported)
{
	char *const argv[] = { (char *)"/nonexistent/foo", NULL };
	SpawnOptions o = { .argv = argv, .envp = base_env, .output = SPAWN_OUTPUT_PIPES };
	Spawned s = SPAWNED_NULL;
	_cleanup_free_ char *error = NULL;
	ASSERT_ERR(spawn_process(&o, &s, &error), ENOENT);
	ASSERT_STREQ(error, "exec of '/nonexistent/foo' failed: No such file or directory");
	ASSERT_EQ(s.pid, 0);
	assert_no_children();

	char *const argv2[] = { (char *)"no-such-command-locald", NULL };
	o.argv = argv2;
	free(error);
	error = NULL;
	ASSERT_ERR(spawn_process(&o, &s, &error), ENOENT);
	ASSERT_STREQ(error, "exec of 'no-such-command-locald' failed: No such file or directory");
	assert_no_children();
}

TEST(exec_failure_permission_and_format)
{
	_cleanup_free_ char *noexec = strdupf("%s/noexec", test_tmpdir());
	_cleanup_free_ char *garbage = strdupf("%s/garbage", test_tmpdir());
	int fd = open(noexec, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	fd = open(garbage, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, "\x7f\x01\x02garbage", 10), 10);
	close(fd);

	Spawned s = SPAWNED_NULL;
	_cleanup_free_ char *e1 = NULL, *e2 = NULL;
	char *const argv1[] = { noexec, NULL };
	SpawnOptions o = { .argv = argv1, .envp = base_env, .output = SPAWN_OUTPUT_NULL };
	/* root bypasses the permission bits, but not a missing execute bit. */
	ASSERT_ERR(spawn_process(&o, &s, &e1), EACCES);
	ASSERT_STRCONTAINS(e1, "Permission denied");

	char *const argv2[] = { garbage, NULL };
	o.argv = argv2;
	ASSERT_ERR(spawn_process(&o, &s, &e2), ENOEXEC);
	ASSERT_STRCONTAINS(e2, "Exec format error");
	assert_no_children();
}

TEST(workdir_missing_is_reported)
{
	SpawnOptions o = { .command = "true", .envp = base_env, .workdir = "/nonexistent/dir" };
	Spawned s = SPAWNED_NULL;
	_cleanup_free_ char *error = NULL;
	ASSERT_ERR(spawn_process(&o, &s, &error), ENOENT);
	ASSERT_STREQ(
	    error,
	    "cannot change to working directory '/nonexistent/dir': No such file or directory");
	assert_no_children();
}

TEST(bad_options)
{
	Spawned s;
	SpawnOptions none = { .envp = base_env };
	ASSERT_ERR(spawn_process(&none, &s, NULL), EINVAL);
	char *const argv[] = { (char *)"true", NULL };
	SpawnOptions both = { .command = "true", .argv = argv };
	ASSERT_ERR(spawn_process(&both, &s, NULL), EINVAL);
}

TEST(signals_reset_and_fds_closed)
{
	/* Things a daemon typically has that must not leak into a service. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int leaked = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
	ASSERT_TRUE(leaked >= 0);
	int high = fcntl(leaked, F_DUPFD, 100);
	ASSERT_TRUE(high >= 100);

	char *const argv[] = { (char *)"grep", (char *)"-E", (char *)"^Sig(Blk|Ign)",
			       (char *)"/proc/self/status", NULL };
	SpawnOptions o = { .argv = argv, .envp = base_env, .output = SPAWN_OUTPUT_PIPES };
	_cleanup_free_ char *out = run(&o, NULL, NULL);
	ASSERT_STREQ(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");

	char *const argv2[] = { (char *)"ls", (char *)"/proc/self/fd", NULL };
	o.argv = argv2;
	_cleanup_free_ char *fds = run(&o, NULL, NULL);
	/* 0-2 and the directory ls itself opened. */
	ASSERT_STREQ(fds, "0\n1\n2\n3\n");
	close(leaked);
	close(high);
}

TEST(stdio_closed_in_parent)
{
	/* A daemon started with fd 0-2 closed: our pipes land there and must still work. */
	close(STDIN_FILENO);
	int saved_out = dup(STDOUT_FILENO);
	close(STDOUT_FILENO);
	SpawnOptions o = { .command = "echo out; echo err >&2",
			   .envp = base_env,
			   .output = SPAWN_OUTPUT_PIPES };
	_cleanup_free_ char *err = NULL;
	_cleanup_free_ char *out = run(&o, &err, NULL);
	dup2(saved_out, STDOUT_FILENO);
	ASSERT_STREQ(out, "out\n");
	ASSERT_STREQ(err, "err\n");
}

TEST(process_group_kill)
{
	SpawnOptions o = {
		.command = "sleep 1000 & sleep 1000 & echo started; wait",
		.envp = base_env,
		.output = SPAWN_OUTPUT_PIPES,
	};
	Spawned s = SPAWNED_NULL;
	ASSERT_OK(spawn_process(&o, &s, NULL));
	ASSERT_EQ(getsid(s.pid), s.pid);
	ASSERT_EQ(getpgid(s.pid), s.pid);

	/* Wait until the shell has forked its sleeps. */
	char buf[16];
	struct pollfd pfd = { .fd = s.stdout_fd, .events = POLLIN };
	ASSERT_TRUE(poll(&pfd, 1, WAIT_MS) > 0);
	ASSERT_TRUE(read(s.stdout_fd, buf, sizeof(buf)) > 0);

	ASSERT_OK(spawn_kill_group(s.pid, SIGTERM));
	int status = wait_status(s.pid);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	/* The sleeps got it too; they are reparented to init, so we watch the group empty. */
	int r = 0;
	for (int i = 0; i < WAIT_MS / 10; i++) {
		r = spawn_kill_group(s.pid, 0);
		if (r == -ESRCH)
			break;
		sleep_ms(10);
	}
	ASSERT_ERR(r, ESRCH);
	ASSERT_ERR(spawn_kill_group(s.pid, SIGTERM), ESRCH);
	spawned_close(&s);
}

TEST(start_time_identifies_process)
{
	/* argv, not a shell: when spawn_process() returns, the pid has exec'd sleep itself. */
	char *const argv[] = { (char *)"sleep", (char *)"1000", NULL };
	SpawnOptions o = { .argv = argv, .envp = base_env, .output = SPAWN_OUTPUT_NULL };
	Spawned s = SPAWNED_NULL;
	ASSERT_OK(spawn_process(&o, &s, NULL));
	ASSERT_EQ(s.stdout_fd, -1);
	ASSERT_TRUE(s.start_time > 0);

	uint64_t st;
	ASSERT_OK(process_get_start_time(s.pid, &st));
	ASSERT_EQ(st, s.start_time);
	ASSERT_EQ(process_exists_with_start_time(s.pid, s.start_time), 1);
	ASSERT_EQ(process_exists_with_start_time(s.pid, s.start_time + 1), 0);

	ProcessStat ps;
	ASSERT_OK(process_stat(s.pid, &ps));
	ASSERT_STREQ(ps.comm, "sleep");
	ASSERT_EQ(ps.ppid, getpid());
	ASSERT_EQ(ps.pgrp, s.pid);
	ASSERT_EQ(ps.session, s.pid);

	ASSERT_OK(kill(s.pid, SIGKILL));
	/* A zombie is not "the process": it no longer runs the service. */
	for (int i = 0; i < WAIT_MS / 10; i++) {
		ASSERT_OK(process_stat(s.pid, &ps));
		if (ps.state == 'Z')
			break;
		sleep_ms(10);
	}
	ASSERT_EQ(ps.state, 'Z');
	ASSERT_EQ(process_exists_with_start_time(s.pid, s.start_time), 0);
	wait_status(s.pid);
	ASSERT_EQ(process_exists_with_start_time(s.pid, s.start_time), 0);
	ASSERT_ERR(process_stat(s.pid, &ps), ESRCH);
}

TEST(proc_stat_parse)
{
	ProcessStat st;
	const char *text = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 "
			   "987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";
	ASSERT_OK(process_stat_parse(text, &st));
	ASSERT_STREQ(st.comm, "a) b (c");
	ASSERT_EQ(st.state, 'S');
	ASSERT_EQ(st.ppid, 1);
	ASSERT_EQ(st.pgrp, 1234);
	ASSERT_EQ(st.session, 1234);
	ASSERT_EQ(st.start_time, 987654);
	ASSERT_ERR(process_stat_parse("1234 (x S 1", &st), EBADMSG);
	ASSERT_ERR(process_stat_parse("1234 (x) S 1 2", &st), EBADMSG);
	ASSERT_ERR(process_stat_parse("", &st), EBADMSG);
}

TEST(describe_status)
{
	char buf[64];
	ASSERT_OK(spawn_describe_status(3 << 8, buf, sizeof(buf)));
	ASSERT_STREQ(buf, "exited with status 3");
	ASSERT_OK(spawn_describe_status(SIGKILL, buf, sizeof(buf)));
	ASSERT_STREQ(buf, "killed by SIGKILL");
}

TEST(reap_all)
{
	SpawnOptions o = { .command = "exit 7", .envp = base_env };
	Spawned s = SPAWNED_NULL;
	ASSERT_OK(spawn_process(&o, &s, NULL));
	SpawnReaped r[4];
	size_t n = 0;
	for (int i = 0; i < WAIT_MS / 10 && n == 0; i++) {
		n = spawn_reap_all(r, ELEMENTSOF(r));
		if (n == 0)
			sleep_ms(10);
	}
	ASSERT_EQ(n, 1);
	ASSERT_EQ(r[0].pid, s.pid);
	ASSERT_TRUE(WIFEXITED(r[0].status) && WEXITSTATUS(r[0].status) == 7);
	ASSERT_EQ(spawn_reap_all(r, ELEMENTSOF(r)), 0);
}

typedef struct ReapCtx {
	int seen;
	pid_t pid[4];
	int status[4];
	ChildReaper *reaper;
	bool free_in_callback;
} ReapCtx;

static void on_exit_cb(pid_t pid, int status, void *userdata)
{
	ReapCtx *c = userdata;
	c->pid[c->seen] = pid;
	c->status[c->seen] = status;
	c->seen++;
	if (c->free_in_callback)
		c->reaper = child_reaper_free(c->reaper);
}

static void on_timeout(uv_timer_t *t)
{
	test_fail(__FILE__, __LINE__, "timed out waiting for the loop");
}

TEST(child_reaper)
{
	uv_loop_t loop;
	ASSERT_OK(uv_loop_init(&loop));
	uv_timer_t guard;
	uv_timer_init(&loop, &guard);
	uv_timer_start(&guard, on_timeout, WAIT_MS, 0);
	uv_unref((uv_handle_t *)&guard);

	ReapCtx c = { 0 };
	ASSERT_OK(child_reaper_new(&loop, &c.reaper));

	/* An unwatched child stays a zombie for someone else (uv_spawn) to reap. */
	Spawned other = SPAWNED_NULL, a = SPAWNED_NULL, b = SPAWNED_NULL;
	SpawnOptions o = { .command = "exit 0", .envp = base_env };
	ASSERT_OK(spawn_process(&o, &other, NULL));
	o.command = "exit 3";
	ASSERT_OK(spawn_process(&o, &a, NULL));
	ASSERT_OK(child_reaper_watch(c.reaper, a.pid, on_exit_cb, &c));
	o.command = "kill -9 $$";
	ASSERT_OK(spawn_process(&o, &b, NULL));
	ASSERT_OK(child_reaper_watch(c.reaper, b.pid, on_exit_cb, &c));

	while (c.seen < 2)
		uv_run(&loop, UV_RUN_ONCE);
	for (int i = 0; i < 2; i++) {
		if (c.pid[i] == a.pid)
			ASSERT_TRUE(WIFEXITED(c.status[i]) && WEXITSTATUS(c.status[i]) == 3);
		else {
			ASSERT_EQ(c.pid[i], b.pid);
			ASSERT_TRUE(WIFSIGNALED(c.status[i]) && WTERMSIG(c.status[i]) == SIGKILL);
		}
	}
	ASSERT_EQ(wait_status(other.pid), 0);

	/* Freed from inside its own callback. */
	c.free_in_callback = true;
	o.command = "exit 1";
	ASSERT_OK(spawn_process(&o, &a, NULL));
	ASSERT_OK(child_reaper_watch(c.reaper, a.pid, on_exit_cb, &c));
	while (c.seen < 3)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_NULL(c.reaper);

	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_OK(uv_loop_close(&loop));
}

TEST(child_reaper_fallback)
{
	uv_loop_t loop;
	ASSERT_OK(uv_loop_init(&loop));
	ReapCtx c = { 0 };
	ASSERT_OK(child_reaper_new(&loop, &c.reaper));
	child_reaper_set_fallback(c.reaper, on_exit_cb, &c);
	SpawnOptions o = { .command = "exit 5", .envp = base_env };
	Spawned s = SPAWNED_NULL;
	ASSERT_OK(spawn_process(&o, &s, NULL));
	/* It may have exited before we looked: check once by hand, then wait for SIGCHLD. */
	child_reaper_check(c.reaper);
	while (c.seen < 1)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_EQ(c.pid[0], s.pid);
	ASSERT_TRUE(WIFEXITED(c.status[0]) && WEXITSTATUS(c.status[0]) == 5);
	child_reaper_free(c.reaper);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_OK(uv_loop_close(&loop));
}

TEST_MAIN();
