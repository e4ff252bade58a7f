/* SPDX-License-Identifier: MIT */
/* The worker sandbox, each step in a forked child. */

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "test.h"
#include "vmm-sandbox.h"

static int run_child(void (*fn)(void))
{
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

static void seccomp_child(void)
{
	SandboxReport r = { 0 };
	if (sandbox_no_new_privs(&r) < 0 || sandbox_seccomp(&r) < 0)
		_exit(3);
	/* allowed: write, getpid; a non-KVM ioctl fails with ENOTTY */
	if (getpid() <= 0)
		_exit(4);
	struct termios t;
	if (ioctl(STDIN_FILENO, TCGETS, &t) == 0 || errno != ENOTTY)
		_exit(5);
	/* not allowed: socket() kills the process */
	(void)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	_exit(6);
}

TEST(seccomp_kills_what_is_not_allowed)
{
	int st = run_child(seccomp_child);
	ASSERT_TRUE(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGSYS);
}

static void on_usr1(int sig)
{
	(void)sig;
}

static void *worker_like_thread(void *arg)
{
	/* what a vCPU thread does besides KVM_RUN: allocate, format, signal, eventfd */
	char *p = malloc(1 << 20);
	if (!p)
		return (void *)1;
	memset(p, 1, 1 << 20);
	free(p);
	char buf[64];
	snprintf(buf, sizeof(buf), "thread %d", 1);
	uint64_t one = 1;
	if (write(*(int *)arg, &one, sizeof(one)) != sizeof(one))
		return (void *)2;
	return NULL;
}

static void worker_like_child(void)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	SandboxReport r = { 0 };
	if (efd < 0 || sandbox_no_new_privs(&r) < 0 || sandbox_seccomp(&r) < 0)
		_exit(3);
	struct sigaction sa = { .sa_handler = on_usr1 };
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		_exit(4);
	void *m = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED || fcntl(efd, F_SETFD, FD_CLOEXEC) < 0)
		_exit(5);
	for (int i = 0; i < 4; i++) {
		pthread_t t;
		void *ret = (void *)9;
		if (pthread_create(&t, NULL, worker_like_thread, &efd) != 0)
			_exit(6);
		pthread_kill(t, SIGUSR1);
		if (pthread_join(t, &ret) != 0 || ret != NULL)
			_exit(7);
	}
	uint64_t v;
	if (read(efd, &v, sizeof(v)) != sizeof(v) || v != 4)
		_exit(8);
	munmap(m, 64 << 20);
	_exit(0);
}

TEST(seccomp_allows_what_a_worker_does)
{
	int st = run_child(worker_like_child);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

static void threads_child(void)
{
	SandboxReport r = { 0 };
	if (sandbox_no_new_privs(&r) < 0 || sandbox_seccomp(&r) < 0)
		_exit(3);
	/* fork() (clone without CLONE_THREAD) is not allowed */
	(void)fork();
	_exit(6);
}

TEST(seccomp_no_fork)
{
	int st = run_child(threads_child);
	ASSERT_TRUE(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGSYS);
}

static void root_child(void)
{
	SandboxReport r = { 0 };
	if (sandbox_empty_root(test_tmpdir(), &r) < 0)
		_exit(77);
	DIR *d = opendir("/");
	if (!d)
		_exit(3);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	if (n != 0)
		_exit(4);
	if (access("/etc/passwd", F_OK) == 0 || access("/dev/kvm", F_OK) == 0)
		_exit(5);
	if (sandbox_drop_privileges(&r) < 0)
		_exit(6);
	if (getuid() == 0 && !r.uid_dropped)
		_exit(7);
	/* no capabilities left: even a former root cannot chroot */
	if (chroot("/") == 0)
		_exit(8);
	_exit(0);
}

TEST(empty_root_and_no_privileges)
{
	if (geteuid() != 0)
		SKIP("needs root (mount namespace, pivot_root)");
	int st = run_child(root_child);
	ASSERT_TRUE(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		SKIP("no mount namespace here");
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

TEST_MAIN();
