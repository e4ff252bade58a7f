/* SPDX-License-Identifier: MIT */
/*
 * `localctl vm run|create|start|stop|rm|ls|console`: micro-VMs through locald-vmmd.
 * vmmd is started (detached, output to <state>/vmmd.log) when it does not answer. The
 * console is attached by long-polling ConsoleRead from one thread while another sends
 * stdin with ConsoleWrite; on a terminal stdin is raw and Ctrl-] detaches.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "parse-util.h"
#include "paths.h"
#include "strutil.h"
#include "time-util.h"

#define VM_CALL_TIMEOUT_MS 30000
#define DETACH_KEY 0x1d /* Ctrl-] */

static const char vm_help[] =
    "Usage: localctl vm COMMAND [ARGS…]\n\n"
    "  run --kernel FILE [--initrd FILE] [--cmdline S] [--disk FILE[:ro]]…\n"
    "      [--vcpus N] [--memory MiB] [--rng] [--vsock CID] [--name NAME]\n"
    "                 boot a VM with its console attached (Ctrl-] detaches); exits\n"
    "                 with the guest's exit code and removes the VM\n"
    "  create NAME --kernel FILE [same options]   define a VM\n"
    "  start NAME [--attach]   start it (and attach the console)\n"
    "  stop NAME [--grace MS]  shut it down through the guest, kill after MS (2000)\n"
    "  rm NAME                 remove a VM that is not running\n"
    "  ls [--json]             list VMs\n"
    "  console NAME            attach to a running VM's console (Ctrl-] detaches)\n";

/* ---- talking to vmmd ---- */

static int vmmd_binary(char **ret)
{
	const char *e = getenv("LOCALD_VMMD");
	if (!isempty(e))
		return (*ret = strdup(e)) ? 0 : -ENOMEM;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -errno;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	static const char *const candidates[] = { "locald-vmmd", "../services/vmmd/locald-vmmd",
						  "../libexec/locald/locald-vmmd" };
	for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
		_cleanup_free_ char *p = path_join(self, candidates[i]);
		if (!p)
			return -ENOMEM;
		if (access(p, X_OK) == 0) {
			*ret = TAKE_PTR(p);
			return 0;
		}
	}
	return -ENOENT;
}

static int vm_client(Ctl *ctl, BusZmtpClient **ret)
{
	return ctl_client_new(ctl, "vmmd", ret);
}

static bool vmmd_alive(BusZmtpClient *c, uint64_t timeout_ms)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__Ping p = LOCALD__V1__PING__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_PING;
	req.ping = &p;
	BusReply *reply = NULL;
	if (bus_zmtp_client_call(c, &req, timeout_ms, &reply) < 0)
		return false;
	bool ok = reply->result_case == LOCALD__V1__REPLY__RESULT_PONG;
	bus_reply_free(reply);
	return ok;
}

/* Connected to a vmmd that answers, starting one if needed; else an exit code (printed). */
static int vmmd_ensure(Ctl *ctl, BusZmtpClient **ret)
{
	BusZmtpClient *c = NULL;
	int r = vm_client(ctl, &c);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, "check $LOCALD_RUNTIME_DIR",
				"cannot reach locald-vmmd: %s", strerror(-r));
	if (vmmd_alive(c, 500)) {
		*ret = c;
		return 0;
	}
	_cleanup_free_ char *binary = NULL, *state = NULL, *log_path = NULL;
	if (vmmd_binary(&binary) < 0) {
		bus_zmtp_client_free(c);
		return ctl_fail(ctl, EXIT_UNREACHABLE, "set $LOCALD_VMMD to its path",
				"locald-vmmd not found next to localctl");
	}
	if (locald_state_dir_ensure(&state) < 0 || !(log_path = path_join(state, "vmmd.log"))) {
		bus_zmtp_client_free(c);
		return ctl_fail(ctl, EXIT_FAILED, NULL, "state directory unusable");
	}
	pid_t pid = fork();
	if (pid < 0) {
		bus_zmtp_client_free(c);
		return ctl_fail(ctl, EXIT_FAILED, NULL, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int log =
		    open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
		/* double fork: the daemon is not our child */
		if (null < 0 || log < 0 || setsid() < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
		    dup2(log, 2) < 0 || chdir("/") < 0)
			_exit(127);
		/* keep no fd of ours (or of whoever started us) open in the daemon */
		long max = sysconf(_SC_OPEN_MAX);
		for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			close(fd);
		if (fork() != 0)
			_exit(0);
		execl(binary, binary, (char *)NULL);
		_exit(127);
	}
	(void)waitpid(pid, NULL, 0);
	usec_t deadline = now_monotonic() + 5 * USEC_PER_SEC;
	while (now_monotonic() < deadline)
		if (vmmd_alive(c, 200)) {
			*ret = c;
			return 0;
		}
	bus_zmtp_client_free(c);
	return ctl_fail(ctl, EXIT_UNREACHABLE, "see its log", "locald-vmmd did not start (%s)",
			log_path);
}

/* Call; an Error in the reply is printed and returned as an exit code. */
static int call(Ctl *ctl, BusZmtpClient *c, BusRequest *req, BusReply **ret)
{
	BusReply *reply = NULL;
	int r = bus_zmtp_client_call(c, req, VM_CALL_TIMEOUT_MS, &reply);
	if (r < 0)
		return ctl_fail(ctl, EXIT_UNREACHABLE, NULL, "locald-vmmd did not answer: %s",
				strerror(-r));
	if (reply->result_case == LOCALD__V1__REPLY__RESULT_ERROR) {
		int code = ctl_fail_reply(ctl, reply->error, NULL);
		bus_reply_free(reply);
		return code;
	}
	*ret = reply;
	return 0;
}

static const char *state_name(Locald__V1__VmState s)
{
	switch (s) {
	case LOCALD__V1__VM_STATE__VM_STATE_CREATED:
		return "created";
	case LOCALD__V1__VM_STATE__VM_STATE_RUNNING:
		return "running";
	case LOCALD__V1__VM_STATE__VM_STATE_STOPPING:
		return "stopping";
	case LOCALD__V1__VM_STATE__VM_STATE_STOPPED:
		return "stopped";
	default:
		return "unknown";
	}
}

/* ---- console ---- */

typedef struct Attach {
	Ctl *ctl;
	BusZmtpClient *writer;
	const char *name;
	volatile int detached;
	bool tty;
	struct termios saved;
} Attach;

static void *stdin_thread(void *userdata)
{
	Attach *a = userdata;
	uint8_t buf[4096];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		size_t len = (size_t)n;
		if (a->tty) {
			uint8_t *k = memchr(buf, DETACH_KEY, len);
			if (k) {
				len = (size_t)(k - buf);
				a->detached = 1;
			}
		}
		if (len) {
			BusRequest req = LOCALD__V1__REQUEST__INIT;
			Locald__V1__ConsoleWrite w = LOCALD__V1__CONSOLE_WRITE__INIT;
			w.name = (char *)a->name;
			w.data.data = buf;
			w.data.len = len;
			req.call_case = LOCALD__V1__REQUEST__CALL_CONSOLE_WRITE;
			req.console_write = &w;
			BusReply *reply = NULL;
			if (bus_zmtp_client_call(a->writer, &req, VM_CALL_TIMEOUT_MS, &reply) == 0)
				bus_reply_free(reply);
		}
		if (a->detached)
			return NULL;
	}
}

/*
 * Copy console output to stdout until the VM stops (returns 0 and fills ret_state,
 * reason, code) or the user detaches (returns 1).
 */
static int attach(Ctl *ctl, BusZmtpClient *c, const char *name, char **ret_reason, int *ret_code)
{
	Attach a = { .ctl = ctl, .name = name, .tty = isatty(STDIN_FILENO) };
	int r = vm_client(ctl, &a.writer);
	if (r < 0)
		return ctl_fail(ctl, EXIT_FAILED, NULL, "cannot reach locald-vmmd: %s",
				strerror(-r));
	if (a.tty && tcgetattr(STDIN_FILENO, &a.saved) == 0) {
		struct termios raw = a.saved;
		cfmakeraw(&raw);
		raw.c_oflag |= OPOST | ONLCR;
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		fprintf(stderr, "[attached to %s: Ctrl-] detaches]\r\n", name);
	} else
		a.tty = false;
	pthread_t t;
	bool have_thread = pthread_create(&t, NULL, stdin_thread, &a) == 0;
	if (have_thread)
		pthread_detach(t);

	uint64_t cursor = 0;
	int result = -1;
	while (result < 0) {
		if (a.detached) {
			result = 1;
			break;
		}
		BusRequest req = LOCALD__V1__REQUEST__INIT;
		Locald__V1__ConsoleRead cr = LOCALD__V1__CONSOLE_READ__INIT;
		cr.name = (char *)name;
		cr.cursor = cursor;
		cr.wait_ms = 300;
		req.call_case = LOCALD__V1__REQUEST__CALL_CONSOLE_READ;
		req.console_read = &cr;
		BusReply *reply = NULL;
		r = call(ctl, c, &req, &reply);
		if (r > 0) {
			result = r + 100; /* printed */
			break;
		}
		const Locald__V1__ConsoleReadResult *res = reply->console_read;
		if (res->data.len)
			(void)!fwrite(res->data.data, 1, res->data.len, stdout);
		fflush(stdout);
		cursor = res->next;
		if (res->state == LOCALD__V1__VM_STATE__VM_STATE_STOPPED && !res->data.len) {
			*ret_reason = strdup(res->exit_reason);
			*ret_code = res->exit_code;
			result = 0;
		}
		bus_reply_free(reply);
	}
	if (a.tty)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &a.saved);
	/* the stdin thread may still be blocked in read(): leave its client to process exit */
	return result;
}

/* ---- commands ---- */

typedef struct VmOpts {
	char *kernel, *initrd, *cmdline, *name;
	char *disks[4];
	bool disk_ro[4];
	unsigned n_disks;
	uint32_t vcpus, memory;
	bool rng, attach;
	uint32_t grace, vsock_cid;
	bool json;
} VmOpts;

static void opts_done(VmOpts *o)
{
	free(o->kernel);
	free(o->initrd);
	for (unsigned i = 0; i < o->n_disks; i++)
		free(o->disks[i]);
}

static char *absolute(const char *p)
{
	char *r = realpath(p, NULL);
	return r ? r : strdup(p); /* vmmd names what is wrong with it */
}

static int parse_opts(Ctl *ctl, int argc, char **argv, VmOpts *o, bool *ret_help)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "disk", required_argument, NULL, 'd' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "memory", required_argument, NULL, 'm' },
		{ "rng", no_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "attach", no_argument, NULL, 'a' },
		{ "grace", required_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ "vsock", required_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	*o = (VmOpts){ .vcpus = 1, .memory = 128 };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
		switch (c) {
		case 'k':
			free(o->kernel);
			o->kernel = absolute(optarg);
			break;
		case 'i':
			free(o->initrd);
			o->initrd = absolute(optarg);
			break;
		case 'c':
			o->cmdline = optarg;
			break;
		case 'd': {
			if (o->n_disks == 4)
				return ctl_fail(ctl, EXIT_USAGE, NULL, "at most 4 disks");
			_cleanup_free_ char *s = strdup(optarg);
			if (!s)
				return ctl_fail(ctl, EXIT_FAILED, NULL, "out of memory");
			bool ro = endswith(s, ":ro");
			if (ro)
				s[strlen(s) - 3] = 0;
			o->disks[o->n_disks] = absolute(s);
			o->disk_ro[o->n_disks++] = ro;
			break;
		}
		case 'v':
			if (safe_atou32(optarg, &o->vcpus) < 0 || o->vcpus == 0)
				return ctl_fail(ctl, EXIT_USAGE, NULL,
						"--vcpus: \"%s\" is not a positive number", optarg);
			break;
		case 'm':
			if (safe_atou32(optarg, &o->memory) < 0)
				return ctl_fail(ctl, EXIT_USAGE, NULL,
						"--memory: \"%s\" is not a number of MiB", optarg);
			break;
		case 'g':
			if (safe_atou32(optarg, &o->grace) < 0)
				return ctl_fail(ctl, EXIT_USAGE, NULL,
						"--grace: \"%s\" is not a number of ms", optarg);
			break;
		case 'r':
			o->rng = true;
			break;
		case 'V':
			if (safe_atou32(optarg, &o->vsock_cid) < 0)
				return ctl_fail(ctl, EXIT_USAGE, NULL,
						"--vsock: \"%s\" is not a context id", optarg);
			break;
		case 'n':
			o->name = optarg;
			break;
		case 'a':
			o->attach = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			*ret_help = true;
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	return 0;
}

static int do_create(Ctl *ctl, BusZmtpClient *c, const char *name, VmOpts *o)
{
	if (!o->kernel)
		return ctl_fail(ctl, EXIT_USAGE, "`localctl vm --help`", "--kernel is required");
	Locald__V1__CreateVm cv = LOCALD__V1__CREATE_VM__INIT;
	Locald__V1__VmDisk disks[4], *dp[4];
	cv.name = (char *)name;
	cv.kernel = o->kernel;
	cv.initrd = o->initrd ? o->initrd : (char *)"";
	cv.cmdline = o->cmdline ? o->cmdline : (char *)"console=ttyS0";
	cv.vcpus = o->vcpus;
	cv.memory_mib = o->memory;
	cv.rng = o->rng;
	cv.vsock_cid = o->vsock_cid;
	for (unsigned i = 0; i < o->n_disks; i++) {
		locald__v1__vm_disk__init(&disks[i]);
		disks[i].path = o->disks[i];
		disks[i].read_only = o->disk_ro[i];
		dp[i] = &disks[i];
	}
	cv.n_disks = o->n_disks;
	cv.disks = dp;
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_CREATE_VM;
	req.create_vm = &cv;
	BusReply *reply = NULL;
	int r = call(ctl, c, &req, &reply);
	if (r == 0)
		bus_reply_free(reply);
	return r;
}

#define SIMPLE_CALL(ctl, c, CASE, field, Type, INIT, nm, ret)                                      \
	({                                                                                         \
		Type _m = INIT;                                                                    \
		_m.name = (char *)(nm);                                                            \
		BusRequest _req = LOCALD__V1__REQUEST__INIT;                                       \
		_req.call_case = CASE;                                                             \
		_req.field = &_m;                                                                  \
		call((ctl), (c), &_req, (ret));                                                    \
	})

static int do_start(Ctl *ctl, BusZmtpClient *c, const char *name)
{
	BusReply *reply = NULL;
	int r = SIMPLE_CALL(ctl, c, LOCALD__V1__REQUEST__CALL_START_VM, start_vm,
			    Locald__V1__StartVm, LOCALD__V1__START_VM__INIT, name, &reply);
	if (r == 0)
		bus_reply_free(reply);
	return r;
}

static int do_destroy(Ctl *ctl, BusZmtpClient *c, const char *name)
{
	BusReply *reply = NULL;
	int r = SIMPLE_CALL(ctl, c, LOCALD__V1__REQUEST__CALL_DESTROY_VM, destroy_vm,
			    Locald__V1__DestroyVm, LOCALD__V1__DESTROY_VM__INIT, name, &reply);
	if (r == 0)
		bus_reply_free(reply);
	return r;
}

/* Attach and turn the end of the VM into localctl's exit code. */
static int attach_and_exit_code(Ctl *ctl, BusZmtpClient *c, const char *name, bool remove)
{
	_cleanup_free_ char *reason = NULL;
	int code = 0;
	int r = attach(ctl, c, name, &reason, &code);
	if (r == 1) {
		fprintf(stderr,
			"\r\n[detached: the VM %s keeps running; `localctl vm console %s`]\n", name,
			name);
		return EXIT_OK;
	}
	if (r > 100)
		return r - 100;
	if (r < 0)
		return EXIT_FAILED;
	if (remove)
		(void)do_destroy(ctl, c, name);
	if (streq_ptr(reason, "poweroff"))
		return code & 0xff;
	return ctl_fail(ctl, EXIT_FAILED, NULL, "VM %s ended: %s", name, strempty(reason));
}

static int cmd_vm_ls(Ctl *ctl, BusZmtpClient *c, bool json)
{
	BusRequest req = LOCALD__V1__REQUEST__INIT;
	Locald__V1__ListVms l = LOCALD__V1__LIST_VMS__INIT;
	req.call_case = LOCALD__V1__REQUEST__CALL_LIST_VMS;
	req.list_vms = &l;
	BusReply *reply = NULL;
	int r = call(ctl, c, &req, &reply);
	if (r)
		return r;
	const Locald__V1__ListVmsResult *res = reply->list_vms;
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < res->n_vms; i++) {
			const Locald__V1__VmStatus *v = res->vms[i];
			json_array_append_new(
			    arr, json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:s,s:I,s:I}", "name", v->name,
					   "state", state_name(v->state), "exit_reason",
					   v->exit_reason, "exit_code", v->exit_code, "vcpus",
					   (int)v->vcpus, "memory_mib", (int)v->memory_mib,
					   "kernel", v->kernel, "pid", (json_int_t)v->worker_pid,
					   "uptime_usec", (json_int_t)v->uptime_usec));
		}
		bus_reply_free(reply);
		return ctl_print_json(ctl, arr);
	}
	if (res->n_vms == 0)
		printf("no VMs\n");
	else
		printf("%-20s %-9s %5s %7s %8s  %s\n", "NAME", "STATE", "VCPUS", "MEMORY", "UPTIME",
		       "EXIT");
	for (size_t i = 0; i < res->n_vms; i++) {
		const Locald__V1__VmStatus *v = res->vms[i];
		char up[32] = "-";
		if (v->uptime_usec)
			ctl_format_duration(v->uptime_usec, up, sizeof(up));
		char mem[16];
		snprintf(mem, sizeof(mem), "%uM", v->memory_mib);
		printf("%-20s %-9s %5u %7s %8s  %s", v->name, state_name(v->state), v->vcpus, mem,
		       up, v->exit_reason);
		if (streq(v->exit_reason, "poweroff"))
			printf(" (%d)", v->exit_code);
		printf("\n");
	}
	bus_reply_free(reply);
	return EXIT_OK;
}

/* Declared here until ctl.h lists it with the other commands. */
int cmd_vm(Ctl *ctl, int argc, char **argv)
{
	if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help"))
		return ctl_usage(ctl, argc >= 2, vm_help);
	const char *sub = argv[1];
	VmOpts o;
	bool help = false;
	if (!streq(sub, "run") && !streq(sub, "create") && !streq(sub, "start") &&
	    !streq(sub, "stop") && !streq(sub, "rm") && !streq(sub, "ls") && !streq(sub, "console"))
		return ctl_fail(ctl, EXIT_USAGE, "`localctl vm --help` lists them",
				"unknown vm command \"%s\"", sub);
	bool named = !streq(sub, "run") && !streq(sub, "ls");
	if (named && (argc < 3 || argv[2][0] == '-')) {
		if (argc >= 3 && (streq(argv[2], "--help") || streq(argv[2], "-h")))
			return ctl_usage(ctl, true, vm_help);
		return ctl_fail(ctl, EXIT_USAGE, "`localctl vm --help`", "vm %s: which VM?", sub);
	}
	int r = parse_opts(ctl, argc - (named ? 2 : 1), argv + (named ? 2 : 1), &o, &help);
	if (r || help) {
		opts_done(&o);
		return help ? ctl_usage(ctl, true, vm_help) : r;
	}
	const char *name = named ? argv[2] : o.name;
	BusZmtpClient *c = NULL;
	r = vmmd_ensure(ctl, &c);
	if (r) {
		opts_done(&o);
		return r;
	}
	char gen[64];
	if (streq(sub, "run")) {
		if (!name) {
			snprintf(gen, sizeof(gen), "run-%d-%u", (int)getpid(),
				 (unsigned)(now_realtime() % 100000));
			name = gen;
		}
		r = do_create(ctl, c, name, &o);
		if (!r) {
			r = do_start(ctl, c, name);
			if (r)
				(void)do_destroy(ctl, c, name);
			else
				r = attach_and_exit_code(ctl, c, name, true);
		}
	} else if (streq(sub, "create")) {
		r = do_create(ctl, c, name, &o);
		if (!r && !ctl->quiet)
			printf("created %s\n", name);
	} else if (streq(sub, "start")) {
		r = do_start(ctl, c, name);
		if (!r && o.attach)
			r = attach_and_exit_code(ctl, c, name, false);
		else if (!r && !ctl->quiet)
			printf("started %s\n", name);
	} else if (streq(sub, "stop")) {
		Locald__V1__StopVm sv = LOCALD__V1__STOP_VM__INIT;
		sv.name = (char *)name;
		sv.grace_ms = o.grace;
		BusRequest req = LOCALD__V1__REQUEST__INIT;
		req.call_case = LOCALD__V1__REQUEST__CALL_STOP_VM;
		req.stop_vm = &sv;
		BusReply *reply = NULL;
		r = call(ctl, c, &req, &reply);
		if (!r) {
			if (!ctl->quiet)
				printf("stopped %s: %s\n", name, reply->stop_vm->vm->exit_reason);
			bus_reply_free(reply);
		}
	} else if (streq(sub, "rm")) {
		r = do_destroy(ctl, c, name);
	} else if (streq(sub, "ls")) {
		r = cmd_vm_ls(ctl, c, o.json || ctl->json);
	} else if (streq(sub, "console")) {
		r = attach_and_exit_code(ctl, c, name, false);
	}
	bus_zmtp_client_free(c);
	opts_done(&o);
	return r;
}
