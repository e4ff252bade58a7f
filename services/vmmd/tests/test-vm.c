/* SPDX-License-Identifier: MIT */
/*
 * The VMM end to end in-process: the test guest on real KVM (skipped without /dev/kvm).
 * Each case boots the guest with one `test=` and checks its serial output and exit.
 */

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "vmm-vm.h"

typedef struct Run {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char out[8192];
	size_t n;
	int ended;
	VmExitKind kind;
	int code;
} Run;

static void on_out(void *u, const uint8_t *d, size_t n)
{
	Run *r = u;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < n && r->n < sizeof(r->out) - 1; i++)
		r->out[r->n++] = (char)d[i];
	pthread_mutex_unlock(&r->lock);
}

static void on_exit_(void *u, VmExitKind kind, int code, const char *msg)
{
	Run *r = u;
	pthread_mutex_lock(&r->lock);
	r->ended = 1;
	r->kind = kind;
	r->code = code;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static uint8_t *slurp(const char *env, size_t *ret_size)
{
	const char *p = getenv(env);
	if (!p)
		SKIP("test guest not built");
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ASSERT_TRUE(fd >= 0 && fstat(fd, &st) == 0);
	uint8_t *b = malloc((size_t)st.st_size);
	ASSERT_EQ(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*ret_size = (size_t)st.st_size;
	return b;
}

static int kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP("no /dev/kvm on this host");
	return fd;
}

/* Boot, wait up to 10 s, return the run (output NUL-terminated). */
static void boot(const char *env, const char *cmdline, unsigned vcpus, int disk_fd, bool ro,
		 const char *input, Run *r)
{
	size_t n;
	uint8_t *k = slurp(env, &n);
	VmConfig cfg = { .kvm_fd = kvm(),
			 .vcpus = vcpus,
			 .memory = 64 << 20,
			 .kernel = k,
			 .kernel_size = n,
			 .cmdline = cmdline,
			 .rng = true };
	if (disk_fd >= 0) {
		cfg.disks[0] = (VmDiskConfig){ disk_fd, ro };
		cfg.n_disks = 1;
	}
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	VmCallbacks cb = { .console_out = on_out, .exited = on_exit_, .userdata = r };
	Vm *vm = NULL;
	char *err = NULL;
	int q = vm_new(&cfg, &cb, &vm, &err);
	if (q < 0)
		test_fail(__FILE__, __LINE__, "vm_new: %s", err ? err : strerror(-q));
	ASSERT_OK(vm_start(vm));
	if (input)
		vm_console_input(vm, (const uint8_t *)input, strlen(input));
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&r->lock);
	while (!r->ended)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0)
			break;
	int ended = r->ended;
	pthread_mutex_unlock(&r->lock);
	if (!ended)
		vm_stop(vm, VM_EXIT_STOPPED, 0, NULL);
	vm_free(vm);
	close(cfg.kvm_fd);
	free(k);
	r->out[r->n] = 0;
}

TEST(bzimage_hello_exit_code)
{
	Run r;
	boot("VMMD_TEST_GUEST", "test=hello exit=7", 1, -1, false, NULL, &r);
	ASSERT_STRCONTAINS(r.out, "hello from bzimage64");
	ASSERT_EQ(r.kind, VM_EXIT_POWEROFF);
	ASSERT_EQ(r.code, 7);
}

TEST(pvh_hello)
{
	Run r;
	boot("VMMD_TEST_GUEST_ELF", "test=hello", 1, -1, false, NULL, &r);
	ASSERT_STRCONTAINS(r.out, "hello from pvh");
	ASSERT_EQ(r.kind, VM_EXIT_POWEROFF);
	ASSERT_EQ(r.code, 0);
}

TEST(two_vcpus)
{
	Run r;
	boot("VMMD_TEST_GUEST", "test=smp", 2, -1, false, NULL, &r);
	ASSERT_STRCONTAINS(r.out, "smp: 2 cpus");
	ASSERT_STRCONTAINS(r.out, "smp: ok");
	ASSERT_EQ(r.code, 0);
}

TEST(disk_round_trip)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/d.img", test_tmpdir());
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_OK(ftruncate(fd, 1 << 20));
	ASSERT_EQ(pwrite(fd, "from the host", 13, 0), 13);
	Run r;
	boot("VMMD_TEST_GUEST", "test=disk", 1, dup(fd), false, NULL, &r);
	ASSERT_STRCONTAINS(r.out, "sector 0 says 'from the host'");
	ASSERT_STRCONTAINS(r.out, "disk: round trip ok");
	char back[32] = { 0 };
	ASSERT_EQ(pread(fd, back, 32, 512), 32);
	ASSERT_TRUE(memcmp(back, "written by the locald test guest", 32) == 0);
	close(fd);
}

TEST(console_input)
{
	Run r;
	boot("VMMD_TEST_GUEST", "test=echo", 1, -1, false, "hello vm\r", &r);
	ASSERT_STRCONTAINS(r.out, "echo: got 'hello vm'");
	ASSERT_EQ(r.code, 8);
}

TEST(triple_fault)
{
	Run r;
	boot("VMMD_TEST_GUEST", "test=triple", 1, -1, false, NULL, &r);
	ASSERT_EQ(r.kind, VM_EXIT_TRIPLE_FAULT);
}

TEST(not_a_kernel)
{
	int k = kvm();
	static const uint8_t junk[4096] = "not a kernel";
	VmConfig cfg = { .kvm_fd = k,
			 .vcpus = 1,
			 .memory = 16 << 20,
			 .kernel = junk,
			 .kernel_size = sizeof(junk) };
	VmCallbacks cb = { 0 };
	Vm *vm = NULL;
	char *err = NULL;
	ASSERT_EQ(vm_new(&cfg, &cb, &vm, &err), -ENOEXEC);
	ASSERT_STRCONTAINS(err, "not a kernel");
	free(err);
	close(k);
}

TEST_MAIN();
