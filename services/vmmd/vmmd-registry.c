/* SPDX-License-Identifier: MIT */
/*
 * VMs and their workers. A VM is created (checked, nothing runs), started (a worker is
 * spawned with the VM's files open on fixed fds, and the call is answered when the worker
 * says the vCPUs run, or why it could not), stopped (Ctrl-Alt-Del through the worker,
 * SIGKILL after the grace period) and destroyed. The worker's death, whatever its cause,
 * ends the run: the exit reason is what the worker reported, else how it died.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "parse-util.h"
#include "paths.h"
#include "strutil.h"
#include "time-util.h"
#include "vmm-worker.h"
#include "vmmd-internal.h"

static bool path_is_absolute(const char *p)
{
	return p && p[0] == '/';
}

static const char *strna(const char *s)
{
	return s ? s : "n/a";
}

static bool name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
		if (!ok)
			return false;
	}
	return true;
}

VmmdVm *vmmd_find(Vmmd *d, const char *name)
{
	for (unsigned i = 0; i < d->n_vms; i++)
		if (streq(d->vms[i]->name, name) && !d->vms[i]->destroyed)
			return d->vms[i];
	return NULL;
}

static void vm_free_now(VmmdVm *vm)
{
	Vmmd *d = vm->d;
	for (unsigned i = 0; i < d->n_vms; i++)
		if (d->vms[i] == vm) {
			d->vms[i] = d->vms[--d->n_vms];
			break;
		}
	free(vm->name);
	free(vm->kernel);
	free(vm->initrd);
	free(vm->cmdline);
	for (unsigned i = 0; i < vm->n_disks; i++)
		free(vm->disks[i].path);
	free(vm->exit_reason);
	free(vm->effective_cmdline);
	free(vm->vsock_path);
	free(vm->ring);
	loop_timer_free(vm->stop_timer);
	free(vm);
}

static int fail_msg(char **ret_msg, const char *fmt, ...) _printf_(2, 3);
static int fail_msg(char **ret_msg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(ret_msg, fmt, ap) < 0)
		*ret_msg = NULL;
	va_end(ap);
	return -EINVAL;
}

/* Is the file a kernel we can boot? Maps it read-only to look. */
static int check_kernel(const char *path, KernelFormat *ret, char **ret_msg)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_msg(ret_msg, "kernel %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return fail_msg(ret_msg, "kernel %s: not a regular file", path);
	if (st.st_size == 0)
		return fail_msg(ret_msg, "kernel %s: empty file", path);
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return fail_msg(ret_msg, "kernel %s: %s", path, strerror(errno));
	const char *why = NULL;
	int r = boot_detect(p, (size_t)st.st_size, ret, &why);
	munmap(p, (size_t)st.st_size);
	if (r < 0)
		return fail_msg(ret_msg, "kernel %s: %s", path, why);
	return 0;
}

static int check_file(const char *what, const char *path, bool writable, char **ret_msg)
{
	if (!path_is_absolute(path))
		return fail_msg(ret_msg, "%s \"%s\": not an absolute path", what, path);
	if (access(path, writable ? R_OK | W_OK : R_OK) < 0)
		return fail_msg(ret_msg, "%s %s: %s", what, path, strerror(errno));
	struct stat st;
	if (stat(path, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return fail_msg(ret_msg, "%s %s: not a regular file or block device", what, path);
	return 0;
}

int vmmd_create(Vmmd *d, const Locald__V1__CreateVm *c, VmmdVm **ret, BusErrorCode *ret_code,
		char **ret_msg)
{
	*ret_code = LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT;
	if (!name_valid(c->name))
		return fail_msg(ret_msg,
				"VM name \"%s\" is not valid: 1-63 of a-z, 0-9 and -, "
				"not starting with -",
				strempty(c->name));
	if (vmmd_find(d, c->name)) {
		*ret_code = LOCALD__V1__ERROR__CODE__ALREADY_EXISTS;
		return fail_msg(ret_msg, "a VM named \"%s\" already exists", c->name);
	}
	if (d->n_vms >= VMMD_VMS_MAX) {
		*ret_code = LOCALD__V1__ERROR__CODE__UNAVAILABLE;
		return fail_msg(ret_msg, "too many VMs (at most %d)", VMMD_VMS_MAX);
	}
	if (isempty(c->kernel))
		return fail_msg(ret_msg, "no kernel given");
	if (!path_is_absolute(c->kernel))
		return fail_msg(ret_msg, "kernel \"%s\": not an absolute path", c->kernel);
	KernelFormat format;
	int r = check_kernel(c->kernel, &format, ret_msg);
	if (r < 0)
		return r;
	if (!isempty(c->initrd) && (r = check_file("initrd", c->initrd, false, ret_msg)) < 0)
		return r;
	uint32_t vcpus = c->vcpus ? c->vcpus : 1;
	if (vcpus > VMM_VCPUS_MAX)
		return fail_msg(ret_msg, "vcpus: %u is more than %d", vcpus, VMM_VCPUS_MAX);
	if (c->memory_mib < 2)
		return fail_msg(ret_msg, "memory: %u MiB is too small (at least 2 MiB)",
				c->memory_mib);
	struct sysinfo si;
	if (sysinfo(&si) == 0) {
		uint64_t host_mib = (uint64_t)si.totalram * si.mem_unit >> 20;
		if (c->memory_mib > host_mib)
			return fail_msg(
			    ret_msg, "memory: %u MiB is more than the host has (%" PRIu64 " MiB)",
			    c->memory_mib, host_mib);
	}
	if (c->n_disks > VMMD_DISKS_MAX)
		return fail_msg(ret_msg, "at most %d disks", VMMD_DISKS_MAX);
	for (size_t i = 0; i < c->n_disks; i++)
		if ((r = check_file("disk", c->disks[i]->path, !c->disks[i]->read_only, ret_msg)) <
		    0)
			return r;
	if (c->vsock_cid) {
		if (c->vsock_cid < 3 || c->vsock_cid == UINT32_MAX)
			return fail_msg(ret_msg, "vsock_cid: %u is reserved (use 3 or more)",
					c->vsock_cid);
		for (unsigned i = 0; i < d->n_vms; i++)
			if (d->vms[i]->vsock_cid == c->vsock_cid && !d->vms[i]->destroyed) {
				*ret_code = LOCALD__V1__ERROR__CODE__ALREADY_EXISTS;
				return fail_msg(ret_msg, "vsock_cid: %u is used by VM \"%s\"",
						c->vsock_cid, d->vms[i]->name);
			}
	}
	if (strlen(strempty(c->cmdline)) > 2048)
		return fail_msg(ret_msg, "cmdline: longer than 2048 bytes");

	VmmdVm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		goto oom;
	vm->d = d;
	vm->ctl = -1;
	vm->format = format;
	vm->state = LOCALD__V1__VM_STATE__VM_STATE_CREATED;
	vm->vcpus = vcpus;
	vm->memory_mib = c->memory_mib;
	vm->rng = c->rng;
	vm->vsock_cid = c->vsock_cid;
	vm->name = strdup(c->name);
	vm->kernel = strdup(c->kernel);
	vm->initrd = isempty(c->initrd) ? NULL : strdup(c->initrd);
	vm->cmdline = strdup(strempty(c->cmdline));
	if (!vm->name || !vm->kernel || !vm->cmdline || (!isempty(c->initrd) && !vm->initrd))
		goto oom_vm;
	for (size_t i = 0; i < c->n_disks; i++) {
		vm->disks[i].path = strdup(c->disks[i]->path);
		vm->disks[i].read_only = c->disks[i]->read_only;
		vm->n_disks++;
		if (!vm->disks[i].path)
			goto oom_vm;
	}
	d->vms[d->n_vms++] = vm;
	*ret = vm;
	return 0;
oom_vm:
	vm->destroyed = true;
	d->vms[d->n_vms++] = vm;
	vm_free_now(vm);
oom:
	*ret_code = LOCALD__V1__ERROR__CODE__UNAVAILABLE;
	return fail_msg(ret_msg, "out of memory");
}

/* ---- worker messages ---- */

static void console_append(VmmdVm *vm, const uint8_t *data, size_t len)
{
	if (!vm->ring)
		return;
	uint64_t offset = vm->total;
	for (size_t i = 0; i < len; i++)
		vm->ring[(vm->total + i) % VMMD_CONSOLE_RING] = data[i];
	vm->total += len;
	vmmd_bus_publish_console(vm, data, len, offset);
	vmmd_bus_answer_waiters(vm);
}

static void set_reason(VmmdVm *vm, const char *fmt, ...) _printf_(2, 3);
static void set_reason(VmmdVm *vm, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(vm->exit_reason);
	vm->exit_reason = s;
}

static const char *const exit_kinds[] = { "poweroff", "reset", "triple-fault", "stopped",
					  "internal-error" };

static void handle_msg(VmmdVm *vm, const uint8_t *m, size_t n)
{
	if (n == 0)
		return;
	switch (m[0]) {
	case WORKER_MSG_OUTPUT:
		console_append(vm, m + 1, n - 1);
		break;
	case WORKER_MSG_RUNNING: {
		const char *nl = memchr(m + 1, '\n', n - 1);
		free(vm->effective_cmdline);
		vm->effective_cmdline =
		    nl ? strndup(nl + 1, n - (size_t)(nl + 1 - (const char *)m)) : NULL;
		vmmd_bus_answer_start(vm, NULL);
		break;
	}
	case WORKER_MSG_EXIT: {
		if (n < 9)
			break;
		int32_t kind, code;
		memcpy(&kind, m + 1, 4);
		memcpy(&code, m + 5, 4);
		const char *k = kind >= 0 && kind < (int32_t)ELEMENTSOF(exit_kinds)
				    ? exit_kinds[kind]
				    : "unknown";
		if (n > 9)
			set_reason(vm, "%s: %.*s", k, (int)(n - 9), (const char *)m + 9);
		else
			set_reason(vm, "%s", k);
		vm->exit_code = code;
		vm->got_exit = true;
		break;
	}
	case WORKER_MSG_FAILED:
		set_reason(vm, "%.*s", (int)(n - 1), (const char *)m + 1);
		vm->got_exit = true;
		vm->exit_code = -1;
		/* StartVm is answered when the worker is gone, so the VM is stopped by then. */
		break;
	case WORKER_MSG_NOTICE:
		log_notice("vm %s: %.*s", vm->name, (int)(n - 1), (const char *)m + 1);
		break;
	default:
		break;
	}
}

static void drain(VmmdVm *vm)
{
	static uint8_t buf[1 + 4096 + 256 + 64];
	for (;;) {
		ssize_t n = recv(vm->ctl, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		handle_msg(vm, buf, (size_t)n);
	}
}

static void on_ctl(uv_poll_t *h, int status, int events)
{
	VmmdVm *vm = h->data;
	drain(vm);
	if (status < 0 || (events & UV_DISCONNECT))
		uv_poll_stop(h);
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

static void on_worker_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
	VmmdVm *vm = p->data;
	if (vm->ctl >= 0)
		drain(vm);
	if (vm->killed_by_stop && !(vm->got_exit && vm->exit_reason))
		set_reason(vm, "killed: the guest did not stop within the grace period");
	else if (!vm->got_exit) {
		if (term_signal)
			set_reason(vm, "worker died: %s", strna(signal_to_string(term_signal)));
		else
			set_reason(vm, "worker died: exit status %" PRIi64, exit_status);
		vm->exit_code = -1;
	}
	vm->state = LOCALD__V1__VM_STATE__VM_STATE_STOPPED;
	vm->end_usec = now_monotonic();
	log_info("vm %s: ended: %s (code %d)", vm->name, strna(vm->exit_reason), vm->exit_code);
	if (vm->poll) {
		uv_poll_stop(vm->poll);
		uv_close((uv_handle_t *)vm->poll, free_handle);
		vm->poll = NULL;
	}
	if (vm->ctl >= 0)
		close(vm->ctl);
	vm->ctl = -1;
	uv_close((uv_handle_t *)p, free_handle);
	vm->proc = NULL;
	vm->pid = 0;
	if (vm->vsock_path) {
		(void)unlink(vm->vsock_path);
		free(vm->vsock_path);
		vm->vsock_path = NULL;
	}
	if (vm->stop_timer)
		loop_timer_stop(vm->stop_timer);
	vmmd_bus_answer_start(vm, vm->exit_reason ? vm->exit_reason : "the worker died");
	vmmd_bus_answer_stops(vm);
	vmmd_bus_answer_waiters(vm);
	vmmd_bus_publish_state(vm);
	if (vm->destroyed)
		vm_free_now(vm);
}

int vmmd_start(VmmdVm *vm, char **ret_msg)
{
	Vmmd *d = vm->d;
	if (vm->proc)
		return fail_msg(ret_msg, "VM \"%s\" is already running", vm->name);
	if (!vm->ring) {
		vm->ring = malloc(VMMD_CONSOLE_RING);
		if (!vm->ring)
			return fail_msg(ret_msg, "out of memory");
	}
	/* ctl, kernel, initrd, disks..., vsock listener: child fds 3, 4, 5, 6.., 10 */
	int fds[3 + VMMD_DISKS_MAX + 1] = { -1, -1, -1, -1, -1, -1, -1, -1 };
	int sp[2] = { -1, -1 };
	int r = -EINVAL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return fail_msg(ret_msg, "socketpair: %s", strerror(errno));
	fds[0] = sp[1];
	fds[1] = open(vm->kernel, O_RDONLY | O_CLOEXEC);
	if (fds[1] < 0) {
		fail_msg(ret_msg, "kernel %s: %s", vm->kernel, strerror(errno));
		goto out;
	}
	if (vm->initrd && (fds[2] = open(vm->initrd, O_RDONLY | O_CLOEXEC)) < 0) {
		fail_msg(ret_msg, "initrd %s: %s", vm->initrd, strerror(errno));
		goto out;
	}
	for (unsigned i = 0; i < vm->n_disks; i++) {
		fds[3 + i] = open(vm->disks[i].path,
				  (vm->disks[i].read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fds[3 + i] < 0) {
			fail_msg(ret_msg, "disk %s: %s", vm->disks[i].path, strerror(errno));
			goto out;
		}
	}

	if (vm->vsock_cid) {
		free(vm->vsock_path);
		vm->vsock_path = strdupf("%s/vm-%s.vsock", d->runtime_dir, vm->name);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (!vm->vsock_path ||
		    strscpy(sa.sun_path, sizeof(sa.sun_path), vm->vsock_path) < 0) {
			fail_msg(ret_msg, "vsock: socket path too long");
			goto out;
		}
		int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		(void)unlink(vm->vsock_path);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    chmod(vm->vsock_path, 0600) < 0 || listen(lfd, 16) < 0) {
			fail_msg(ret_msg, "vsock %s: %s", vm->vsock_path, strerror(errno));
			if (lfd >= 0)
				close(lfd);
			goto out;
		}
		fds[3 + VMMD_DISKS_MAX] = lfd;
	}

	/* Child fds: 0 /dev/null, 1-2 ours, 3 ctl, 4 kernel, 5 initrd, 6.. disks, 10 vsock. */
	char vcpus[16], mem[16], disk_args[VMMD_DISKS_MAX][16], cid[16];
	snprintf(vcpus, sizeof(vcpus), "%u", vm->vcpus);
	snprintf(mem, sizeof(mem), "%u", vm->memory_mib);
	char *argv[32];
	unsigned a = 0;
	argv[a++] = d->self_exe;
	argv[a++] = (char *)"--worker";
	argv[a++] = (char *)"--ctl-fd=3";
	argv[a++] = (char *)"--kernel-fd=4";
	if (vm->initrd)
		argv[a++] = (char *)"--initrd-fd=5";
	for (unsigned i = 0; i < vm->n_disks; i++) {
		snprintf(disk_args[i], sizeof(disk_args[i]), "%u%s", 6 + i,
			 vm->disks[i].read_only ? ":ro" : "");
		argv[a++] = (char *)"--disk-fd";
		argv[a++] = disk_args[i];
	}
	if (vm->rng)
		argv[a++] = (char *)"--rng";
	if (vm->vsock_cid) {
		snprintf(cid, sizeof(cid), "%u", vm->vsock_cid);
		argv[a++] = (char *)"--vsock-cid";
		argv[a++] = cid;
		argv[a++] = (char *)"--vsock-fd=10";
	}
	argv[a++] = (char *)"--vcpus";
	argv[a++] = vcpus;
	argv[a++] = (char *)"--memory-mib";
	argv[a++] = mem;
	argv[a++] = (char *)"--cmdline";
	argv[a++] = vm->cmdline;
	if (d->empty_root) {
		argv[a++] = (char *)"--root";
		argv[a++] = d->empty_root;
	}
	argv[a] = NULL;

	uv_stdio_container_t stdio[6 + VMMD_DISKS_MAX + 1];
	unsigned n_stdio = vm->vsock_cid ? 6 + VMMD_DISKS_MAX + 1 : 6 + vm->n_disks;
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = STDOUT_FILENO;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = STDERR_FILENO;
	for (unsigned i = 0; i + 3 < n_stdio; i++) {
		stdio[3 + i].flags = fds[i] >= 0 ? UV_INHERIT_FD : UV_IGNORE;
		stdio[3 + i].data.fd = fds[i];
	}
	uv_process_options_t o = {
		.exit_cb = on_worker_exit,
		.file = d->self_exe,
		.args = argv,
		.stdio_count = (int)n_stdio,
		.stdio = stdio,
	};
	vm->proc = calloc(1, sizeof(*vm->proc));
	vm->poll = calloc(1, sizeof(*vm->poll));
	if (!vm->proc || !vm->poll) {
		free(vm->proc);
		free(vm->poll);
		vm->proc = NULL;
		vm->poll = NULL;
		fail_msg(ret_msg, "out of memory");
		goto out;
	}
	vm->proc->data = vm;
	r = uv_spawn(loop_get_uv(d->loop), vm->proc, &o);
	if (r < 0) {
		fail_msg(ret_msg, "cannot start the worker %s: %s", d->self_exe, uv_strerror(r));
		uv_close((uv_handle_t *)vm->proc, free_handle);
		free(vm->poll);
		vm->proc = NULL;
		vm->poll = NULL;
		goto out;
	}
	vm->pid = vm->proc->pid;
	vm->ctl = sp[0];
	sp[0] = -1;
	(void)fcntl(vm->ctl, F_SETFL, O_NONBLOCK);
	uv_poll_init(loop_get_uv(d->loop), vm->poll, vm->ctl);
	vm->poll->data = vm;
	uv_poll_start(vm->poll, UV_READABLE | UV_DISCONNECT, on_ctl);

	vm->state = LOCALD__V1__VM_STATE__VM_STATE_RUNNING;
	free(vm->exit_reason);
	vm->exit_reason = NULL;
	vm->exit_code = 0;
	vm->got_exit = vm->killed_by_stop = false;
	vm->total = 0;
	vm->start_usec = now_monotonic();
	vm->end_usec = 0;
	vm->starts++;
	log_info("vm %s: worker %d started", vm->name, (int)vm->pid);
	vmmd_bus_publish_state(vm);
	r = 0;
out:
	if (r < 0 && vm->vsock_path) {
		(void)unlink(vm->vsock_path);
		free(vm->vsock_path);
		vm->vsock_path = NULL;
	}
	for (unsigned i = 0; i < ELEMENTSOF(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (sp[0] >= 0)
		close(sp[0]);
	return r;
}

static void on_stop_timeout(LoopTimer *t, void *userdata)
{
	VmmdVm *vm = userdata;
	if (vm->proc && vm->pid > 0) {
		log_info("vm %s: did not stop in time, killing worker %d", vm->name, (int)vm->pid);
		vm->killed_by_stop = true;
		uv_process_kill(vm->proc, SIGKILL);
	}
}

void vmmd_stop(VmmdVm *vm, uint32_t grace_ms)
{
	if (!vm->proc)
		return;
	if (vm->state != LOCALD__V1__VM_STATE__VM_STATE_STOPPING) {
		vm->state = LOCALD__V1__VM_STATE__VM_STATE_STOPPING;
		uint8_t m = WORKER_MSG_SHUTDOWN;
		if (vm->ctl < 0 || send(vm->ctl, &m, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			grace_ms = 0;
		vmmd_bus_publish_state(vm);
	}
	if (!vm->stop_timer)
		(void)loop_timer_new(vm->d->loop, grace_ms, 0, on_stop_timeout, vm,
				     &vm->stop_timer);
	else if (!loop_timer_is_armed(vm->stop_timer) || grace_ms == 0)
		(void)loop_timer_set(vm->stop_timer, grace_ms, 0);
	if (!vm->stop_timer)
		on_stop_timeout(NULL, vm);
}

void vmmd_destroy(VmmdVm *vm)
{
	vm->destroyed = true;
	if (vm->proc) {
		uv_process_kill(vm->proc, SIGKILL);
		return;
	}
	vm_free_now(vm);
}

int vmmd_console_write(VmmdVm *vm, const uint8_t *data, size_t len)
{
	if (vm->ctl < 0 || vm->state != LOCALD__V1__VM_STATE__VM_STATE_RUNNING)
		return -ESRCH;
	uint8_t pkt[WORKER_MSG_MAX];
	size_t done = 0;
	while (done < len) {
		size_t n = MIN(len - done, sizeof(pkt) - 1);
		pkt[0] = WORKER_MSG_INPUT;
		memcpy(pkt + 1, data + done, n);
		if (send(vm->ctl, pkt, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			return done ? (int)done : -errno;
		done += n;
	}
	return (int)done;
}

void vmmd_console_slice(VmmdVm *vm, uint64_t cursor, uint32_t max, uint64_t *ret_first,
			uint8_t *buf, size_t *ret_len)
{
	uint64_t first = vm->total > VMMD_CONSOLE_RING ? vm->total - VMMD_CONSOLE_RING : 0;
	if (cursor < first)
		cursor = first;
	if (cursor > vm->total)
		cursor = vm->total;
	size_t n = (size_t)MIN((uint64_t)max, vm->total - cursor);
	for (size_t i = 0; i < n && vm->ring; i++)
		buf[i] = vm->ring[(cursor + i) % VMMD_CONSOLE_RING];
	*ret_first = cursor;
	*ret_len = vm->ring ? n : 0;
}

unsigned vmmd_running(Vmmd *d)
{
	unsigned n = 0;
	for (unsigned i = 0; i < d->n_vms; i++)
		n += d->vms[i]->proc != NULL;
	return n;
}

int vmmd_new(Loop *loop, BusServer *server, const char *runtime_dir, const char *self_exe,
	     Vmmd **ret)
{
	Vmmd *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->server = server;
	d->runtime_dir = strdup(runtime_dir);
	d->self_exe = strdup(self_exe);
	d->empty_root = path_join(runtime_dir, "vmmd-root");
	if (!d->runtime_dir || !d->self_exe || !d->empty_root) {
		vmmd_free(d);
		return -ENOMEM;
	}
	/* The workers' root: an empty directory a tmpfs is mounted over in their namespace. */
	if (mkdir(d->empty_root, 0555) < 0 && errno != EEXIST) {
		free(d->empty_root);
		d->empty_root = NULL;
	}
	int r = vmmd_bus_register(d);
	if (r < 0) {
		vmmd_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

Vmmd *vmmd_free(Vmmd *d)
{
	if (!d)
		return NULL;
	while (d->n_vms) {
		VmmdVm *vm = d->vms[0];
		if (vm->proc) {
			uv_process_kill(vm->proc, SIGKILL);
			vm->proc->data = NULL;
			uv_close((uv_handle_t *)vm->proc, free_handle);
		}
		if (vm->poll) {
			uv_poll_stop(vm->poll);
			uv_close((uv_handle_t *)vm->poll, free_handle);
		}
		if (vm->ctl >= 0)
			close(vm->ctl);
		for (unsigned i = 0; i < vm->n_waiters; i++) {
			bus_call_free(vm->waiters[i]->call);
			loop_timer_free(vm->waiters[i]->timer);
			free(vm->waiters[i]);
		}
		bus_call_free(vm->start_call);
		for (unsigned i = 0; i < vm->n_stop_calls; i++)
			bus_call_free(vm->stop_calls[i]);
		vm_free_now(vm);
	}
	free(d->runtime_dir);
	free(d->self_exe);
	free(d->empty_root);
	free(d);
	return NULL;
}
