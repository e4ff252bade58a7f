/* SPDX-License-Identifier: MIT */
/*
 * locald-vmmd: KVM micro-VMs (README.md).
 *
 *   locald-vmmd              the daemon: vmm.proto on <runtime>/vmmd.rpc, vm.<name> events
 *   locald-vmmd run ...      one VM in the foreground, console on stdio (no daemon)
 *   locald-vmmd --worker ... one VM's worker process (started by the daemon)
 *
 * One daemon per user: <runtime>/vmmd.lock is held for life. SIGTERM/SIGINT kill every
 * worker and exit.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "bus.h"
#include "log.h"
#include "loop.h"
#include "paths.h"
#include "strutil.h"
#include "vmm-worker.h"
#include "vmmd.h"

static void on_signal(LoopSignal *s, int signo, void *userdata)
{
	loop_exit(userdata, 0);
}

static int daemon_main(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return log_error_errno(-errno, "/proc/self/exe: %m"), 1;
	self[n] = 0;

	_cleanup_free_ char *runtime = NULL;
	int r = locald_runtime_dir_ensure(&runtime);
	if (r < 0)
		return log_error_errno(r, "runtime directory: %m"), 1;
	_cleanup_free_ char *lock_path = path_join(runtime, "vmmd.lock");
	if (!lock_path)
		return log_oom(), 1;
	_cleanup_close_ int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0)
		return log_error_errno(-errno, "%s: %m", lock_path), 1;
	if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			log_info("another locald-vmmd already runs for %s", runtime);
			return 0;
		}
		return log_error_errno(-errno, "locking %s: %m", lock_path), 1;
	}
	signal(SIGPIPE, SIG_IGN);

	_cleanup_(loop_freep) Loop *loop = NULL;
	r = loop_new(&loop);
	if (r < 0)
		return log_error_errno(r, "event loop: %m"), 1;
	_cleanup_(bus_server_freep) BusServer *server = NULL;
	r = bus_server_new(loop, NULL, runtime, "vmmd", &server);
	if (r < 0)
		return log_error_errno(r, "binding %s/vmmd.rpc: %m", runtime), 1;
	Vmmd *d = NULL;
	r = vmmd_new(loop, server, runtime, self, &d);
	if (r < 0)
		return log_error_errno(r, "vmmd: %m"), 1;

	_cleanup_(loop_signal_freep) LoopSignal *sigterm = NULL, *sigint = NULL;
	loop_signal_new(loop, SIGTERM, on_signal, loop, &sigterm);
	loop_signal_new(loop, SIGINT, on_signal, loop, &sigint);
	if (access("/dev/kvm", R_OK | W_OK) < 0)
		log_warning("/dev/kvm: %s: VMs can be created but not started", strerror(errno));
	log_info("ready on %s", bus_server_get_rpc_path(server));
	r = loop_run(loop);
	if (vmmd_running(d))
		log_info("stopping: killing %u running VM(s)", vmmd_running(d));
	vmmd_free(d);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	log_setup(argv[0]);
	if (argc > 1 && streq(argv[1], "--worker"))
		return worker_main(argc, argv);
	if (argc > 1 && streq(argv[1], "run"))
		return run_main(argc - 1, argv + 1);
	if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
		printf("locald-vmmd — the locald micro-VM monitor (KVM)\n\n"
		       "Usage: locald-vmmd            the daemon (normally started by localctl)\n"
		       "       locald-vmmd run --kernel FILE [--initrd FILE] [--cmdline S]\n"
		       "                       [--disk FILE[:ro]]... [--rng] [--vcpus N] [--memory "
		       "MiB]\n");
		return 0;
	}
	if (argc > 1 && (streq(argv[1], "--version") || streq(argv[1], "-V"))) {
		printf("locald-vmmd %s\n", LOCALD_VERSION);
		return 0;
	}
	if (argc > 1) {
		log_error("unknown argument \"%s\" (--help lists the usage)", argv[1]);
		return 2;
	}
	return daemon_main();
}
