/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "parse-util.h"
#include "strutil.h"
#include "vmm-sandbox.h"
#include "vmm-virtio.h"
#include "vmm-vm.h"
#include "vmm-worker.h"

#define CONSOLE_BUF 4096

typedef struct Worker {
	int ctl;    /* seqpacket to vmmd, or -1 in `run` mode */
	int out_fd; /* `run` mode: console output */
	int wake;   /* eventfd: console output pending or the VM ended */
	pthread_mutex_t lock;
	uint8_t buf[CONSOLE_BUF];
	size_t len;
	int ended;
	VmExitKind kind;
	int code;
	char message[200];
} Worker;

static void send_msg(Worker *w, char type, const void *data, size_t len)
{
	if (w->ctl < 0)
		return;
	uint8_t pkt[1 + CONSOLE_BUF + 256];
	if (len > sizeof(pkt) - 1)
		len = sizeof(pkt) - 1;
	pkt[0] = (uint8_t)type;
	memcpy(pkt + 1, data, len);
	while (send(w->ctl, pkt, len + 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void flush_locked(Worker *w)
{
	if (!w->len)
		return;
	if (w->ctl >= 0)
		send_msg(w, WORKER_MSG_OUTPUT, w->buf, w->len);
	else {
		size_t done = 0;
		while (done < w->len) {
			ssize_t n = write(w->out_fd, w->buf + done, w->len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			done += (size_t)n;
		}
	}
	w->len = 0;
}

static void wake(Worker *w)
{
	uint64_t one = 1;
	(void)!write(w->wake, &one, sizeof(one));
}

static void wake_cb(void *userdata)
{
	wake(userdata);
}

/* vCPU thread: buffer; wake the main thread when the buffer was empty, flush when full. */
static void on_console(void *userdata, const uint8_t *data, size_t len)
{
	Worker *w = userdata;
	pthread_mutex_lock(&w->lock);
	bool was_empty = w->len == 0;
	for (size_t i = 0; i < len; i++) {
		if (w->len == sizeof(w->buf))
			flush_locked(w);
		w->buf[w->len++] = data[i];
	}
	pthread_mutex_unlock(&w->lock);
	if (was_empty)
		wake(w);
}

static void on_exited(void *userdata, VmExitKind kind, int code, const char *message)
{
	Worker *w = userdata;
	pthread_mutex_lock(&w->lock);
	w->kind = kind;
	w->code = code;
	snprintf(w->message, sizeof(w->message), "%s", message ? message : "");
	w->ended = 1;
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

static int map_fd(int fd, const uint8_t **ret, size_t *ret_size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return -EINVAL;
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*ret = p;
	*ret_size = (size_t)st.st_size;
	return 0;
}

typedef struct WorkerArgs {
	int ctl_fd, kernel_fd, initrd_fd;
	VmConfig cfg;
	const char *root;
} WorkerArgs;

/* Both modes: parse options into args (fds or paths opened here). */
static int parse_args(int argc, char **argv, bool paths, WorkerArgs *a, char *err, size_t errsz)
{
	static const struct option opts[] = {
		{ "ctl-fd", required_argument, NULL, 'c' },
		{ "kernel-fd", required_argument, NULL, 'k' },
		{ "initrd-fd", required_argument, NULL, 'i' },
		{ "disk-fd", required_argument, NULL, 'd' },
		{ "kernel", required_argument, NULL, 'K' },
		{ "initrd", required_argument, NULL, 'I' },
		{ "disk", required_argument, NULL, 'D' },
		{ "rng", no_argument, NULL, 'r' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "memory-mib", required_argument, NULL, 'm' },
		{ "memory", required_argument, NULL, 'm' },
		{ "cmdline", required_argument, NULL, 'C' },
		{ "root", required_argument, NULL, 'R' },
		{ "worker", no_argument, NULL, 'W' },
		{ "vsock-cid", required_argument, NULL, 'V' },
		{ "vsock-fd", required_argument, NULL, 'S' },
		{},
	};
	*a = (WorkerArgs){ .ctl_fd = -1, .kernel_fd = -1, .initrd_fd = -1 };
	a->cfg.vcpus = 1;
	a->cfg.memory = 64ULL << 20;
	a->cfg.kvm_fd = -1;
	a->cfg.vsock_listen_fd = -1;
	int c;
	uint32_t u;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 'c':
		case 'k':
		case 'i':
			if (safe_atou32(optarg, &u) < 0 || u > 65535) {
				snprintf(err, errsz, "bad fd \"%s\"", optarg);
				return -EINVAL;
			}
			*(c == 'c'   ? &a->ctl_fd
			  : c == 'k' ? &a->kernel_fd
				     : &a->initrd_fd) = (int)u;
			break;
		case 'K':
		case 'I': {
			int fd = open(optarg, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				snprintf(err, errsz, "%s: %s", optarg, strerror(errno));
				return -errno;
			}
			*(c == 'K' ? &a->kernel_fd : &a->initrd_fd) = fd;
			break;
		}
		case 'd':
		case 'D': {
			if (a->cfg.n_disks == VM_DISKS_MAX) {
				snprintf(err, errsz, "at most %d disks", VM_DISKS_MAX);
				return -E2BIG;
			}
			char *s = strdup(optarg);
			if (!s)
				return -ENOMEM;
			bool ro = endswith(s, ":ro");
			if (ro)
				s[strlen(s) - 3] = 0;
			int fd;
			if (c == 'd')
				fd = safe_atou32(s, &u) < 0 ? -1 : (int)u;
			else
				fd = open(s, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
			if (fd < 0) {
				snprintf(err, errsz, "disk %s: %s", s,
					 c == 'd' ? "bad fd" : strerror(errno));
				free(s);
				return -EINVAL;
			}
			free(s);
			a->cfg.disks[a->cfg.n_disks++] = (VmDiskConfig){ fd, ro };
			break;
		}
		case 'r':
			a->cfg.rng = true;
			break;
		case 'v':
			if (safe_atou32(optarg, &u) < 0 || u == 0 || u > VMM_VCPUS_MAX) {
				snprintf(err, errsz, "vcpus: \"%s\" is not 1-%d", optarg,
					 VMM_VCPUS_MAX);
				return -EINVAL;
			}
			a->cfg.vcpus = u;
			break;
		case 'm':
			if (safe_atou32(optarg, &u) < 0 || u == 0) {
				snprintf(err, errsz, "memory: \"%s\" is not a size in MiB", optarg);
				return -EINVAL;
			}
			a->cfg.memory = (uint64_t)u << 20;
			break;
		case 'C':
			a->cfg.cmdline = optarg;
			break;
		case 'R':
			a->root = optarg;
			break;
		case 'W':
			break;
		case 'V':
			if (safe_atou32(optarg, &u) < 0 || u < 3) {
				snprintf(err, errsz, "vsock cid: \"%s\" is not 3 or more", optarg);
				return -EINVAL;
			}
			a->cfg.vsock_cid = u;
			break;
		case 'S':
			if (safe_atou32(optarg, &u) < 0 || u > 65535) {
				snprintf(err, errsz, "bad fd \"%s\"", optarg);
				return -EINVAL;
			}
			a->cfg.vsock_listen_fd = (int)u;
			break;
		default:
			snprintf(err, errsz, "unknown option");
			return -EINVAL;
		}
	}
	if (a->kernel_fd < 0) {
		snprintf(err, errsz, "no kernel given");
		return -EINVAL;
	}
	(void)paths;
	return 0;
}

/* The common part: map the images, sandbox, build, run, wait; returns the exit kind. */
static int run_vm(Worker *w, WorkerArgs *a, int input_fd, char *err, size_t errsz)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		snprintf(err, errsz, "/dev/kvm: %s", strerror(errno));
		return -errno;
	}
	a->cfg.kvm_fd = kvm;
	int r = map_fd(a->kernel_fd, &a->cfg.kernel, &a->cfg.kernel_size);
	if (r < 0) {
		snprintf(err, errsz, "kernel: %s",
			 r == -EINVAL ? "empty or not a regular file" : strerror(-r));
		return r;
	}
	if (a->initrd_fd >= 0) {
		r = map_fd(a->initrd_fd, &a->cfg.initrd, &a->cfg.initrd_size);
		if (r < 0) {
			snprintf(err, errsz, "initrd: %s", strerror(-r));
			return r;
		}
	}
	w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake < 0) {
		snprintf(err, errsz, "eventfd: %s", strerror(errno));
		return -errno;
	}

	SandboxReport sb;
	r = sandbox_enter(a->root, &sb);
	if (r < 0) {
		snprintf(err, errsz, "sandbox: %.400s", sb.notes);
		return r;
	}
	if (sb.notes[0]) {
		char n[600];
		int l = snprintf(n, sizeof(n), "sandbox incomplete: %s", sb.notes);
		if (w->ctl >= 0 && l > 0)
			send_msg(w, WORKER_MSG_NOTICE, n, MIN((size_t)l, sizeof(n) - 1));
	}

	if (a->cfg.vsock_cid && a->cfg.vsock_listen_fd < 0) {
		snprintf(err, errsz, "vsock: no listening socket given");
		return -EINVAL;
	}
	a->cfg.vsock_wake = wake_cb;
	a->cfg.vsock_wake_userdata = w;
	VmCallbacks cb = { .console_out = on_console, .exited = on_exited, .userdata = w };
	Vm *vm = NULL;
	char *why = NULL;
	r = vm_new(&a->cfg, &cb, &vm, &why);
	if (r < 0) {
		snprintf(err, errsz, "%s", why ? why : strerror(-r));
		free(why);
		return r;
	}
	r = vm_start(vm);
	if (r < 0) {
		snprintf(err, errsz, "starting vcpus: %s", strerror(-r));
		vm_free(vm);
		return r;
	}
	if (w->ctl >= 0) {
		char info[4200];
		int l =
		    snprintf(info, sizeof(info), "%s\n%s",
			     kernel_format_to_string(vm_boot_setup(vm)->format), vm_cmdline(vm));
		send_msg(w, WORKER_MSG_RUNNING, info, (size_t)MIN(l, (int)sizeof(info) - 1));
	}

	uint8_t in[WORKER_MSG_MAX];
	for (;;) {
		struct pollfd p[2 + VSOCK_CONNS_MAX + 1] = { { .fd = w->wake, .events = POLLIN },
							     { .fd = input_fd, .events = POLLIN } };
		size_t nv =
		    vm_vsock(vm) ? vsock_poll_fill(vm_vsock(vm), p + 2, ELEMENTSOF(p) - 2) : 0;
		if (input_fd < 0)
			p[1].fd = -1; /* poll() ignores negative fds */
		int n = poll(p, 2 + nv, -1);
		if (n < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			uint64_t v;
			(void)!read(w->wake, &v, sizeof(v));
			pthread_mutex_lock(&w->lock);
			flush_locked(w);
			bool ended = w->ended;
			pthread_mutex_unlock(&w->lock);
			if (ended)
				break;
		}
		if (nv)
			vsock_poll_handle(vm_vsock(vm), p + 2, nv);
		if (input_fd >= 0 && p[1].revents) {
			ssize_t k = read(input_fd, in, sizeof(in));
			if (k <= 0) {
				if (w->ctl >= 0) { /* vmmd went away */
					vm_stop(vm, VM_EXIT_STOPPED, 0, "control socket closed");
					continue;
				}
				input_fd = -1; /* run mode: stdin at EOF, keep running */
				continue;
			}
			if (w->ctl < 0)
				vm_console_input(vm, in, (size_t)k);
			else if (in[0] == WORKER_MSG_INPUT)
				vm_console_input(vm, in + 1, (size_t)k - 1);
			else if (in[0] == WORKER_MSG_SHUTDOWN)
				vm_request_shutdown(vm);
		}
	}
	vm_join(vm);
	pthread_mutex_lock(&w->lock);
	flush_locked(w);
	pthread_mutex_unlock(&w->lock);
	vm_free(vm);
	return 0;
}

int worker_main(int argc, char **argv)
{
	Worker w = { .ctl = -1, .out_fd = -1, .wake = -1 };
	pthread_mutex_init(&w.lock, NULL);
	WorkerArgs a;
	char err[512] = "";
	int r = parse_args(argc, argv, false, &a, err, sizeof(err));
	if (r < 0 || a.ctl_fd < 0) {
		fprintf(stderr, "locald-vmmd --worker: %s\n", err[0] ? err : "no --ctl-fd");
		return 2;
	}
	w.ctl = a.ctl_fd;
	r = run_vm(&w, &a, a.ctl_fd, err, sizeof(err));
	if (r < 0) {
		send_msg(&w, WORKER_MSG_FAILED, err, strlen(err));
		return 1;
	}
	uint8_t pkt[8 + sizeof(w.message)];
	int32_t kind = (int32_t)w.kind, code = w.code;
	memcpy(pkt, &kind, 4);
	memcpy(pkt + 4, &code, 4);
	size_t ml = strlen(w.message);
	memcpy(pkt + 8, w.message, ml);
	send_msg(&w, WORKER_MSG_EXIT, pkt, 8 + ml);
	return 0;
}

int run_main(int argc, char **argv)
{
	Worker w = { .ctl = -1, .out_fd = STDOUT_FILENO, .wake = -1 };
	pthread_mutex_init(&w.lock, NULL);
	WorkerArgs a;
	char err[512] = "";
	if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
		printf("Usage: locald-vmmd run --kernel FILE [--initrd FILE] [--cmdline S]\n"
		       "       [--disk FILE[:ro]]... [--rng] [--vcpus N] [--memory MiB]\n");
		return 0;
	}
	int r = parse_args(argc, argv, true, &a, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "locald-vmmd run: %s\n", err);
		return 2;
	}
	r = run_vm(&w, &a, STDIN_FILENO, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "locald-vmmd run: %s\n", err);
		return 125;
	}
	if (w.kind == VM_EXIT_POWEROFF)
		return w.code;
	fprintf(stderr, "locald-vmmd run: VM ended: %s%s%s\n", vm_exit_kind_to_string(w.kind),
		w.message[0] ? ": " : "", w.message);
	return 125;
}
