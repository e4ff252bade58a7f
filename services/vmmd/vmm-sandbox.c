/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "vmm-sandbox.h"

#ifndef CLONE_THREAD
#define CLONE_THREAD 0x00010000
#endif

static void note(SandboxReport *r, const char *what, int err)
{
	size_t l = strlen(r->notes);
	if (l + 2 >= sizeof(r->notes))
		return;
	snprintf(r->notes + l, sizeof(r->notes) - l, "%s%s: %s", l ? "; " : "", what,
		 strerror(err));
}

int sandbox_no_new_privs(SandboxReport *r)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		note(r, "no_new_privs", errno);
		return -errno;
	}
	r->no_new_privs = 1;
	return 0;
}

int sandbox_empty_root(const char *mountpoint, SandboxReport *r)
{
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount("vmm-root", mountpoint, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=4k,nr_inodes=4,mode=0555") == 0) {
		if (chdir(mountpoint) == 0 && syscall(SYS_pivot_root, ".", ".") == 0 &&
		    umount2(".", MNT_DETACH) == 0 && chdir("/") == 0) {
			(void)mount(NULL, "/", NULL,
				    MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				    NULL);
			r->empty_root = 1;
			return 0;
		}
		note(r, "pivot_root", errno);
	} else
		note(r, "mount namespace", errno);
	/* Fallback: chroot into the (empty) mountpoint itself. */
	if (chroot(mountpoint) == 0 && chdir("/") == 0) {
		r->empty_root = 1;
		return 0;
	}
	note(r, "chroot", errno);
	return -EPERM;
}

int sandbox_drop_privileges(SandboxReport *r)
{
	if (geteuid() == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			note(r, "setuid(65534)", errno);
		else
			r->uid_dropped = 1;
	}
	for (int c = 0; c <= 63; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL)
			break;
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = {};
	if (syscall(SYS_capset, &h, d) < 0) {
		note(r, "capset", errno);
		return -errno;
	}
	r->caps_dropped = 1;
	return 0;
}

#define ALLOW(nr)                                                                                  \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                                           \
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int sandbox_seccomp(SandboxReport *r)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* x32 syscalls have bit 30 set: not ours */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),

		/* ioctl: KVM's type only (_IOC_TYPE == 0xAE); others fail with ENOTTY */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff00),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xae00, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOTTY),

		/* clone: threads only */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, CLONE_THREAD),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CLONE_THREAD, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef SYS_clone3
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
#endif
		ALLOW(SYS_read),
		ALLOW(SYS_write),
		ALLOW(SYS_readv),
		ALLOW(SYS_writev),
		ALLOW(SYS_pread64),
		ALLOW(SYS_pwrite64),
		ALLOW(SYS_preadv),
		ALLOW(SYS_pwritev),
		ALLOW(SYS_lseek),
		ALLOW(SYS_close),
		ALLOW(SYS_fcntl),
		ALLOW(SYS_fstat),
		ALLOW(SYS_newfstatat),
		ALLOW(SYS_fsync),
		ALLOW(SYS_fdatasync),
		ALLOW(SYS_poll),
		ALLOW(SYS_ppoll),
		ALLOW(SYS_sendmsg),
		ALLOW(SYS_sendto),
		ALLOW(SYS_recvmsg),
		ALLOW(SYS_recvfrom),
		ALLOW(SYS_accept4),
		ALLOW(SYS_shutdown),
		ALLOW(SYS_mmap),
		ALLOW(SYS_munmap),
		ALLOW(SYS_mprotect),
		ALLOW(SYS_mremap),
		ALLOW(SYS_madvise),
		ALLOW(SYS_brk),
		ALLOW(SYS_futex),
		ALLOW(SYS_set_robust_list),
		ALLOW(SYS_rseq),
		ALLOW(SYS_rt_sigprocmask),
		ALLOW(SYS_rt_sigaction),
		ALLOW(SYS_rt_sigreturn),
		ALLOW(SYS_sigaltstack),
		ALLOW(SYS_tgkill),
		ALLOW(SYS_getpid),
		ALLOW(SYS_gettid),
		ALLOW(SYS_clock_gettime),
		ALLOW(SYS_clock_nanosleep),
		ALLOW(SYS_nanosleep),
		ALLOW(SYS_getrandom),
		ALLOW(SYS_sched_yield),
		ALLOW(SYS_sched_getaffinity),
		ALLOW(SYS_eventfd2),
		ALLOW(SYS_exit),
		ALLOW(SYS_exit_group),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = { .len = (unsigned short)ELEMENTSOF(f), .filter = f };
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
		note(r, "seccomp", errno);
		return -errno;
	}
	r->seccomp = 1;
	return 0;
}

int sandbox_enter(const char *mountpoint, SandboxReport *r)
{
	memset(r, 0, sizeof(*r));
	int ret = sandbox_no_new_privs(r);
	if (ret < 0)
		return ret;
	if (mountpoint)
		(void)sandbox_empty_root(mountpoint, r);
	(void)sandbox_drop_privileges(r);
	return sandbox_seccomp(r);
}
