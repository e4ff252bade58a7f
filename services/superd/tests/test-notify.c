/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "paths.h"
#include "strutil.h"
#include "superd-cgroup.h"
#include "superd-notify.h"
#include "superd-spawn.h"
#include "test.h"

#define WAIT_MS 30000
#define PYTHON "/usr/bin/python3"

static char *const base_env[] = { (char *)"PATH=/usr/local/bin:/usr/bin:/bin", NULL };

/* Sends each argument as one datagram to $NOTIFY_SOCKET; then lingers or exits. */
static const char sender_py[] = "import os, socket, sys, time\n"
				"a = os.environ['NOTIFY_SOCKET']\n"
				"if a.startswith('@'): a = '\\0' + a[1:]\n"
				"s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
				"for m in sys.argv[2:]: s.sendto(m.encode(), a)\n"
				"if sys.argv[1] == 'linger': time.sleep(300)\n";

typedef struct Received {
	int n;
	NotifyMessage msg[8];
	char status[8][128];
	char rejected[8][160];
	NotifySocket *free_me;
} Received;

static void on_notify(NotifySocket *ns, const NotifyMessage *m, const char *rejected,
		      void *userdata)
{
	Received *r = userdata;
	ASSERT_TRUE(r->n < 8);
	r->msg[r->n] = *m;
	strscpy(r->status[r->n], sizeof(r->status[0]), strempty(m->status));
	r->msg[r->n].status = NULL;
	strscpy(r->rejected[r->n], sizeof(r->rejected[0]), strempty(rejected));
	r->n++;
	if (r->free_me)
		r->free_me = notify_socket_free(r->free_me);
}

static void on_guard(uv_timer_t *t)
{
	test_fail(__FILE__, __LINE__, "timed out waiting for notify messages");
}

typedef struct Env {
	uv_loop_t loop;
	uv_timer_t guard;
} Env;

static void env_init(Env *e)
{
	ASSERT_OK(uv_loop_init(&e->loop));
	uv_timer_init(&e->loop, &e->guard);
	uv_timer_start(&e->guard, on_guard, WAIT_MS, 0);
}

static void env_wait(Env *e, Received *r, int n)
{
	while (r->n < n)
		uv_run(&e->loop, UV_RUN_ONCE);
}

static void env_done(Env *e)
{
	uv_close((uv_handle_t *)&e->guard, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	ASSERT_OK(uv_loop_close(&e->loop));
}

static void need_python(void)
{
	if (access(PYTHON, X_OK) < 0)
		SKIP(PYTHON " is not installed");
}

/* Start the python sender as a service would run: own session, NOTIFY_SOCKET set. */
static Spawned spawn_sender(const char *address, const char *cgroup, const char *mode,
			    const char *m1, const char *m2)
{
	char *const argv[] = {
		(char *)PYTHON, (char *)"-c", (char *)sender_py, (char *)mode, (char *)m1,
		(char *)m2,     NULL
	};
	SpawnOptions o = {
		.argv = argv,
		.envp = base_env,
		.notify_socket = address,
		.output = SPAWN_OUTPUT_NULL,
		.cgroup = cgroup,
	};
	Spawned s = SPAWNED_NULL;
	_cleanup_free_ char *error = NULL;
	if (spawn_process(&o, &s, &error) < 0)
		test_fail(__FILE__, __LINE__, "spawn: %s", error);
	return s;
}

static void kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

TEST(parse)
{
	char buf[256];
	NotifyMessage m;
	const char *text =
	    "READY=1\nSTATUS=Serving\t on :8080\nMAINPID=4321\nERRNO=2\nFOO=bar\nnoequals\n"
	    "WATCHDOG=1\nEXTEND_TIMEOUT_USEC=5000000";
	strscpy(buf, sizeof(buf), text);
	ASSERT_OK(notify_parse(buf, strlen(text), &m));
	ASSERT_TRUE(m.ready);
	ASSERT_FALSE(m.stopping);
	ASSERT_TRUE(m.watchdog);
	ASSERT_STREQ(m.status, "Serving  on :8080");
	ASSERT_EQ(m.main_pid, 4321);
	ASSERT_EQ(m.errno_value, 2);
	ASSERT_EQ(m.extend_timeout_usec, 5000000);

	text = "READY=0\nSTOPPING=1\nSTATUS=a\nSTATUS=b\nMAINPID=-3\nERRNO=x\nWATCHDOG=trigger\n";
	strscpy(buf, sizeof(buf), text);
	ASSERT_OK(notify_parse(buf, strlen(text), &m));
	ASSERT_FALSE(m.ready);
	ASSERT_TRUE(m.stopping);
	ASSERT_STREQ(m.status, "b");
	ASSERT_EQ(m.main_pid, 0);
	ASSERT_EQ(m.errno_value, -1);
	ASSERT_TRUE(m.watchdog_trigger);
	ASSERT_FALSE(m.watchdog);

	memcpy(buf, "READY=1\0X", 9);
	ASSERT_ERR(notify_parse(buf, 9, &m), EBADMSG);
	ASSERT_OK(notify_parse(buf, 0, &m));
	ASSERT_FALSE(m.ready);
}

TEST(address_fallbacks)
{
	char *a = NULL;
	ASSERT_OK(notify_socket_address_for("/run/user/1000/locald", "shop", "web", &a));
	ASSERT_STREQ(a, "/run/user/1000/locald/notify/shop.web.sock");
	free(a);

	/* Escaped like cgroup names: no '/' or '.' from a name reaches the path. */
	ASSERT_OK(notify_socket_address_for("/r", "a/b", "c", &a));
	ASSERT_TRUE(startswith(a, "/r/notify/a_b-") != NULL);
	ASSERT_TRUE(endswith(a, ".c.sock"));
	free(a);

	char dir[128];
	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	dir[75] = 0; /* + "/notify/" + 16 hex + ".sock" = 104 < 108 */
	char *b = NULL;
	ASSERT_OK(notify_socket_address_for(dir, "a-rather-long-project-name", "and-service", &a));
	ASSERT_OK(notify_socket_address_for(dir, "a-rather-long-project-name", "and-service", &b));
	ASSERT_STREQ(a, b); /* deterministic: a re-adopted service keeps its address */
	ASSERT_TRUE(startswith(a, dir) != NULL);
	ASSERT_TRUE(strlen(a) < sizeof(((struct sockaddr_un *)0)->sun_path));
	ASSERT_TRUE(endswith(a, ".sock"));
	free(a);
	free(b);

	dir[75] = 'd';
	dir[120] = 0;
	ASSERT_OK(notify_socket_address_for(dir, "p", "s", &a));
	ASSERT_TRUE(startswith(a, "@locald/") != NULL);
	free(a);
}

TEST(ready_and_status_from_service)
{
	need_python();
	Env e;
	env_init(&e);
	Received r = { 0 };
	NotifySocket *ns = NULL;
	ASSERT_OK(notify_socket_new(&e.loop, test_tmpdir(), "shop", "web", on_notify, &r, &ns));
	_cleanup_free_ char *want = strdupf("%s/notify/shop.web.sock", test_tmpdir());
	ASSERT_STREQ(notify_socket_address(ns), want);

	Spawned s = spawn_sender(notify_socket_address(ns), NULL, "linger", "STATUS=warming up",
				 "READY=1\nSTATUS=serving");
	ASSERT_OK(notify_socket_set_scope(ns, s.pid, NULL));
	env_wait(&e, &r, 2);
	for (int i = 0; i < 2; i++) {
		ASSERT_STREQ(r.rejected[i], "");
		ASSERT_EQ(r.msg[i].sender_pid, s.pid);
		ASSERT_EQ(r.msg[i].sender_uid, geteuid());
		ASSERT_FALSE(r.msg[i].sender_gone);
	}
	ASSERT_FALSE(r.msg[0].ready);
	ASSERT_STREQ(r.status[0], "warming up");
	ASSERT_TRUE(r.msg[1].ready);
	ASSERT_STREQ(r.status[1], "serving");
	ASSERT_EQ(notify_socket_scope_contains(ns, s.pid), 1);
	ASSERT_EQ(notify_socket_scope_contains(ns, getpid()), 0);

	kill_and_reap(s.pid);
	notify_socket_free(ns);
	env_done(&e);
	ASSERT_EQ(access(want, F_OK), -1); /* unlinked */
}

TEST(unrelated_sender_rejected)
{
	need_python();
	Env e;
	env_init(&e);
	Received r = { 0 };
	NotifySocket *ns = NULL;
	ASSERT_OK(notify_socket_new(&e.loop, test_tmpdir(), "shop", "web", on_notify, &r, &ns));

	/* Before any scope is set, nobody may talk. */
	Spawned early =
	    spawn_sender(notify_socket_address(ns), NULL, "linger", "READY=1", "STATUS=x");
	env_wait(&e, &r, 2);
	ASSERT_STRCONTAINS(r.rejected[0], "the service is not running");

	/* The service is `service`; `stranger` sends to its socket while alive. */
	char *const argv[] = { (char *)"sleep", (char *)"300", NULL };
	SpawnOptions o = { .argv = argv, .envp = base_env };
	Spawned service = SPAWNED_NULL;
	ASSERT_OK(spawn_process(&o, &service, NULL));
	ASSERT_OK(notify_socket_set_scope(ns, service.pid, NULL));
	Spawned stranger =
	    spawn_sender(notify_socket_address(ns), NULL, "linger", "READY=1", "STATUS=evil");
	env_wait(&e, &r, 4);
	for (int i = 2; i < 4; i++) {
		ASSERT_EQ(r.msg[i].sender_pid, stranger.pid);
		ASSERT_STRCONTAINS(r.rejected[i], "is not in the service's session");
	}

	kill_and_reap(early.pid);
	kill_and_reap(service.pid);
	kill_and_reap(stranger.pid);
	notify_socket_free(ns);
	env_done(&e);
}

static char *cgroup_base_or_skip(void)
{
	char *base = NULL, *reason = NULL;
	if (cgroup_find_base(&base, &reason) < 0) {
		static char why[512];
		snprintf(why, sizeof(why), "no writable cgroup2 hierarchy: %s", strempty(reason));
		free(reason);
		SKIP(why);
	}
	free(reason);
	return base;
}

TEST(cgroup_scope)
{
	need_python();
	_cleanup_free_ char *base = cgroup_base_or_skip();
	_cleanup_free_ char *project = strdupf("test-%d-notify", (int)getpid());
	_cleanup_free_ char *cg = NULL;
	ASSERT_OK(cgroup_service_create(base, project, "web", &cg));

	Env e;
	env_init(&e);
	Received r = { 0 };
	NotifySocket *ns = NULL;
	ASSERT_OK(notify_socket_new(&e.loop, test_tmpdir(), "shop", "web", on_notify, &r, &ns));
	/* The sender runs in the cgroup but in a session of its own: the cgroup decides. */
	Spawned inside =
	    spawn_sender(notify_socket_address(ns), cg, "linger", "READY=1", "STATUS=in");
	ASSERT_OK(notify_socket_set_scope(ns, 0, cg));
	env_wait(&e, &r, 2);
	ASSERT_STREQ(r.rejected[0], "");
	ASSERT_TRUE(r.msg[0].ready);

	Spawned outside =
	    spawn_sender(notify_socket_address(ns), NULL, "linger", "READY=1", "STATUS=out");
	env_wait(&e, &r, 4);
	ASSERT_STRCONTAINS(r.rejected[2], "is not in the service's cgroup");

	kill_and_reap(inside.pid);
	kill_and_reap(outside.pid);
	notify_socket_free(ns);
	env_done(&e);
	ASSERT_OK(cgroup_service_remove(cg));
}

/* A C sender: child of ours in its own session; sends, optionally with an fd attached. */
static pid_t c_sender(const char *address, const char *text, bool pass_fd, const int *hold)
{
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid > 0)
		return pid;
	setsid();
	if (hold)
		close(hold[1]);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(address);
	memcpy(sa.sun_path, address, n);
	if (address[0] == '@')
		sa.sun_path[0] = 0;
	struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = {
		.msg_name = &sa,
		.msg_namelen =
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (address[0] != '@')),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	if (pass_fd) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		mh.msg_control = &ctl;
		mh.msg_controllen = sizeof(ctl);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(s, &mh, 0) < 0)
		_exit(2);
	if (hold) {
		/* Stay alive until the test closes its end. */
		char c;
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
	}
	_exit(0);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	ASSERT_NOT_NULL(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

TEST(c_sender_and_passed_fds_closed)
{
	Env e;
	env_init(&e);
	Received r = { 0 };
	NotifySocket *ns = NULL;
	ASSERT_OK(notify_socket_new(&e.loop, test_tmpdir(), "p", "s", on_notify, &r, &ns));
	int hold[2];
	ASSERT_OK(pipe2(hold, O_CLOEXEC));
	int before = count_fds();
	pid_t pid = c_sender(notify_socket_address(ns), "READY=1\nFDSTORE=1", true, hold);
	ASSERT_OK(notify_socket_set_scope(ns, pid, NULL));
	env_wait(&e, &r, 1);
	ASSERT_STREQ(r.rejected[0], "");
	ASSERT_TRUE(r.msg[0].ready);
	ASSERT_EQ(r.msg[0].sender_pid, pid);
	ASSERT_EQ(count_fds(), before); /* the /dev/null it passed was closed */
	close(hold[1]);
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	close(hold[0]);
	notify_socket_free(ns);
	env_done(&e);
}

TEST(sender_gone_is_accepted_and_marked)
{
	Env e;
	env_init(&e);
	Received r = { 0 };
	NotifySocket *ns = NULL;
	ASSERT_OK(notify_socket_new(&e.loop, test_tmpdir(), "p", "s", on_notify, &r, &ns));
	char *const argv[] = { (char *)"sleep", (char *)"300", NULL };
	SpawnOptions o = { .argv = argv, .envp = base_env };
	Spawned service = SPAWNED_NULL;
	ASSERT_OK(spawn_process(&o, &service, NULL));
	ASSERT_OK(notify_socket_set_scope(ns, service.pid, NULL));

	/* `systemd-notify --ready` style: send and exit; reaped before we read the message. */
	pid_t pid = c_sender(notify_socket_address(ns), "READY=1", false, NULL);
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	env_wait(&e, &r, 1);
	ASSERT_STREQ(r.rejected[0], "");
	ASSERT_TRUE(r.msg[0].sender_gone);
	ASSERT_TRUE(r.msg[0].ready);

	kill_and_reap(service.pid);
	notify_socket_free(ns);
	env_done(&e);
}

TEST(oversized_message_rejected)
{
	Env e;
	env_init(&e);
	Received r = { 0 };
	NotifySocket *ns = NULL;
	ASSERT_OK(notify_socket_new(&e.loop, test_tmpdir(), "p", "s", on_notify, &r, &ns));
	char *big = malloc(6000);
	memset(big, 'x', 5999);
	memcpy(big, "STATUS=", 7);
	big[5999] = 0;
	pid_t pid = c_sender(notify_socket_address(ns), big, false, NULL);
	ASSERT_OK(notify_socket_set_scope(ns, pid, NULL));
	env_wait(&e, &r, 1);
	ASSERT_STRCONTAINS(r.rejected[0], "longer than 4096");
	waitpid(pid, NULL, 0);
	free(big);
	notify_socket_free(ns);
	env_done(&e);
}

static void long_path(size_t total, bool want_abstract)
{
	need_python();
	/* A runtime dir deep enough that "<dir>/notify/<project>.<service>.sock" does not fit
	 * sun_path (and with `total` > 80, neither does the hashed name). */
	_cleanup_free_ char *dir = strdup(test_tmpdir());
	while (strlen(dir) < total) {
		char *d = strdupf("%s/%s", dir, "deeper-directory");
		free(dir);
		dir = d;
	}
	ASSERT_OK(mkdir_p(dir, 0700));

	Env e;
	env_init(&e);
	Received r = { 0 };
	NotifySocket *ns = NULL;
	ASSERT_OK(notify_socket_new(&e.loop, dir, "a-rather-long-project-name",
				    "and-a-long-service-name", on_notify, &r, &ns));
	const char *a = notify_socket_address(ns);
	ASSERT_EQ(a[0] == '@', want_abstract);
	Spawned s = spawn_sender(a, NULL, "linger", "READY=1", "STATUS=long");
	ASSERT_OK(notify_socket_set_scope(ns, s.pid, NULL));
	env_wait(&e, &r, 2);
	ASSERT_STREQ(r.rejected[1], "");
	ASSERT_STREQ(r.status[1], "long");
	kill_and_reap(s.pid);

	/* Freed from inside the callback. */
	r.free_me = ns;
	Spawned t = spawn_sender(a, NULL, "linger", "READY=1", "STATUS=again");
	ASSERT_OK(notify_socket_set_scope(ns, t.pid, NULL));
	env_wait(&e, &r, 3);
	ASSERT_NULL(r.free_me);
	kill_and_reap(t.pid);
	env_done(&e);
}

TEST(long_path_hashed_name)
{
	/* The test dir itself is short; grow it to about 80 bytes. */
	if (strlen(test_tmpdir()) > 60)
		SKIP("TMPDIR too long for this case");
	long_path(72, false);
}

TEST(long_path_abstract)
{
	long_path(110, true);
}

TEST(stale_socket_replaced_but_not_other_files)
{
	Env e;
	env_init(&e);
	Received r = { 0 };
	NotifySocket *ns = NULL;
	char *address = NULL;
	ASSERT_OK(notify_socket_address_for(test_tmpdir(), "p", "s", &address));
	_cleanup_free_ char *dir = strdupf("%s/notify", test_tmpdir());
	ASSERT_OK(mkdir(dir, 0700));

	/* A socket file left by a superd that was kill -9'd. */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strscpy(sa.sun_path, sizeof(sa.sun_path), address);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	close(fd);
	ASSERT_OK(notify_socket_new(&e.loop, test_tmpdir(), "p", "s", on_notify, &r, &ns));
	notify_socket_free(ns);

	fd = open(address, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	ASSERT_ERR(notify_socket_new(&e.loop, test_tmpdir(), "p", "s", on_notify, &r, &ns), EEXIST);
	free(address);
	env_done(&e);
}

TEST_MAIN();
