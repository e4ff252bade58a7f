/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm-devices.h"
#include "vmm-virtio.h"
#include "vmm-vm.h"

#define KICK_SIGNAL SIGUSR1
#define TSS_ADDR 0xfffbd000ULL
#define IDENTITY_MAP_ADDR 0xfffbc000ULL
#define CPUID_ENTRIES_MAX 256

typedef struct Vcpu {
	Vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
} Vcpu;

struct Vm {
	VmCallbacks cb;
	int kvm_fd, fd;
	GuestMemory *mem;
	BootSetup boot;
	char *cmdline;
	size_t run_size;
	unsigned n_vcpus;
	Vcpu vcpus[VMM_VCPUS_MAX];

	pthread_mutex_t io_lock; /* serial, i8042 */
	DeviceHost host;
	Serial serial;
	I8042 i8042;
	VirtioDevice *virtio[VIRTIO_DEVICES_MAX];
	unsigned n_virtio;
	VirtioDevice *vsock;

	int ended; /* atomic: the first exit wins */
	uint64_t exits;
};

const char *vm_exit_kind_to_string(VmExitKind k)
{
	static const char *const t[] = {
		[VM_EXIT_POWEROFF] = "poweroff",         [VM_EXIT_RESET] = "reset",
		[VM_EXIT_TRIPLE_FAULT] = "triple-fault", [VM_EXIT_STOPPED] = "stopped",
		[VM_EXIT_ERROR] = "internal-error",
	};
	return k >= 0 && k < _VM_EXIT_KIND_MAX ? t[k] : NULL;
}

static void on_kick(int sig)
{
	(void)sig;
}

/* ---- device host callbacks ---- */

static void host_console_out(void *userdata, const uint8_t *data, size_t len)
{
	Vm *vm = userdata;
	if (vm->cb.console_out)
		vm->cb.console_out(vm->cb.userdata, data, len);
}

static void host_irq_line(void *userdata, unsigned irq, int level)
{
	Vm *vm = userdata;
	struct kvm_irq_level l = { .irq = irq, .level = (uint32_t)level };
	(void)ioctl(vm->fd, KVM_IRQ_LINE, &l);
}

static void host_reset(void *userdata)
{
	vm_stop(userdata, VM_EXIT_RESET, 0, NULL);
}

static void host_poweroff(void *userdata, int code)
{
	vm_stop(userdata, VM_EXIT_POWEROFF, code, NULL);
}

/* ---- exits ---- */

static void port_io(Vm *vm, uint16_t port, bool write, uint8_t *data, unsigned size)
{
	pthread_mutex_lock(&vm->io_lock);
	if (port >= SERIAL_COM1_BASE && port < SERIAL_COM1_BASE + 8 && size == 1) {
		if (write)
			serial_write(&vm->serial, port - SERIAL_COM1_BASE, data[0]);
		else
			data[0] = serial_read(&vm->serial, port - SERIAL_COM1_BASE);
	} else if ((port == I8042_DATA || port == I8042_CMD) && size == 1) {
		if (write)
			i8042_write(&vm->i8042, port, data[0]);
		else
			data[0] = i8042_read(&vm->i8042, port);
	} else if (port == DEBUG_EXIT_PORT && write) {
		pthread_mutex_unlock(&vm->io_lock);
		vm_stop(vm, VM_EXIT_POWEROFF, data[0], NULL);
		return;
	} else if (!write)
		memset(data, 0xff, size);
	pthread_mutex_unlock(&vm->io_lock);
}

static void mmio(Vm *vm, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
	if (addr >= VIRTIO_MMIO_BASE && addr < VIRTIO_MMIO_BASE + vm->n_virtio * VIRTIO_MMIO_SIZE &&
	    len <= 8) {
		VirtioDevice *d = vm->virtio[(addr - VIRTIO_MMIO_BASE) / VIRTIO_MMIO_SIZE];
		uint64_t off = (addr - VIRTIO_MMIO_BASE) % VIRTIO_MMIO_SIZE;
		if (write)
			virtio_mmio_write(d, off, data, len);
		else
			virtio_mmio_read(d, off, data, len);
		return;
	}
	if (!write)
		memset(data, 0, len);
}

static void *vcpu_thread(void *arg)
{
	Vcpu *c = arg;
	Vm *vm = c->vm;
	char msg[160];
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!__atomic_load_n(&vm->ended, __ATOMIC_ACQUIRE)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				c->run->immediate_exit = 0;
				continue;
			}
			snprintf(msg, sizeof(msg), "vcpu %u: KVM_RUN: %s", c->index,
				 strerror(errno));
			vm_stop(vm, VM_EXIT_ERROR, 0, msg);
			break;
		}
		__atomic_add_fetch(&vm->exits, 1, __ATOMIC_RELAXED);
		struct kvm_run *run = c->run;
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *p = (uint8_t *)run + run->io.data_offset;
			for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
				port_io(vm, run->io.port, run->io.direction == KVM_EXIT_IO_OUT, p,
					run->io.size);
			break;
		}
		case KVM_EXIT_MMIO:
			mmio(vm, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			     run->mmio.is_write);
			break;
		case KVM_EXIT_SHUTDOWN:
			vm_stop(vm, VM_EXIT_TRIPLE_FAULT, 0, NULL);
			break;
		case KVM_EXIT_HLT:
			vm_stop(vm, VM_EXIT_POWEROFF, 0, NULL);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
				vm_stop(vm, VM_EXIT_RESET, 0, NULL);
			else
				vm_stop(vm, VM_EXIT_POWEROFF, 0, NULL);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(msg, sizeof(msg), "vcpu %u: entry failed, reason 0x%llx", c->index,
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vm_stop(vm, VM_EXIT_ERROR, 0, msg);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			snprintf(msg, sizeof(msg), "vcpu %u: KVM internal error, suberror %u%s",
				 c->index, run->internal.suberror,
				 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
				     ? " (emulation failure)"
				     : "");
			vm_stop(vm, VM_EXIT_ERROR, 0, msg);
			break;
		case KVM_EXIT_INTR:
			break;
		default:
			snprintf(msg, sizeof(msg), "vcpu %u: unexpected KVM exit %u", c->index,
				 run->exit_reason);
			vm_stop(vm, VM_EXIT_ERROR, 0, msg);
			break;
		}
	}
	return NULL;
}

/* ---- setup ---- */

static int fail(char **ret_error, int r, const char *what)
{
	if (ret_error) {
		char buf[256];
		snprintf(buf, sizeof(buf), "%s: %s", what, strerror(-r));
		free(*ret_error);
		*ret_error = strdup(buf);
	}
	return r;
}

static int setup_cpuid(Vm *vm, Vcpu *c)
{
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_ENTRIES_MAX * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, sz);
	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = CPUID_ENTRIES_MAX;
	int r = 0;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		r = -errno;
		goto out;
	}
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x00ffffff) | (c->index << 24);
			e->ecx |= 1u << 31; /* hypervisor present */
			break;
		case 0xb:
		case 0x1f:
			e->edx = c->index;
			break;
		default:
			break;
		}
	}
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		r = -errno;
out:
	free(cpuid);
	return r;
}

/* LINT0 = ExtINT (the PIC), LINT1 = NMI, as a BIOS leaves them. */
static int setup_lapic(Vcpu *c)
{
	struct kvm_lapic_state l;
	if (ioctl(c->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	uint32_t v;
	memcpy(&v, l.regs + 0x350, 4);
	v = (v & ~0x700u) | 0x700u;
	memcpy(l.regs + 0x350, &v, 4);
	memcpy(&v, l.regs + 0x360, 4);
	v = (v & ~0x700u) | 0x400u;
	memcpy(l.regs + 0x360, &v, 4);
	return ioctl(c->fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}

static int setup_boot_cpu(Vm *vm, Vcpu *c)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	boot_cpu_state(&vm->boot, &regs, &sregs);
	if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	return ioctl(c->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

static int add_virtio(Vm *vm, VirtioDevice *d)
{
	vm->virtio[vm->n_virtio++] = d;
	char *n = NULL;
	if (asprintf(&n, "%s virtio_mmio.device=4K@0x%llx:%u", vm->cmdline,
		     (unsigned long long)d->base, d->irq) < 0)
		return -ENOMEM;
	free(vm->cmdline);
	vm->cmdline = n;
	return 0;
}

int vm_new(const VmConfig *cfg, const VmCallbacks *cb, Vm **ret, char **ret_error)
{
	int r;
	if (cfg->vcpus == 0 || cfg->vcpus > VMM_VCPUS_MAX)
		return fail(ret_error, -EINVAL, "vcpus: 1 to 32");
	Vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->fd = -1;
	vm->kvm_fd = cfg->kvm_fd;
	vm->cb = *cb;
	pthread_mutex_init(&vm->io_lock, NULL);
	vm->host = (DeviceHost){ .console_out = host_console_out,
				 .irq_line = host_irq_line,
				 .reset = host_reset,
				 .poweroff = host_poweroff,
				 .userdata = vm };
	serial_init(&vm->serial, &vm->host);
	i8042_init(&vm->i8042, &vm->host);
	vm->cmdline = strdup(cfg->cmdline ? cfg->cmdline : "");
	if (!vm->cmdline) {
		r = -ENOMEM;
		goto fail;
	}

	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		r = fail(ret_error, -ENOTSUP, "/dev/kvm: unexpected API version");
		goto fail;
	}
	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		r = fail(ret_error, -errno, "KVM_CREATE_VM");
		goto fail;
	}
	(void)fcntl(vm->fd, F_SETFD, FD_CLOEXEC);
	uint64_t ident = IDENTITY_MAP_ADDR;
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) < 0 ||
	    ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0 ||
	    ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		r = fail(ret_error, -errno, "KVM irqchip setup");
		goto fail;
	}
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0) {
		r = fail(ret_error, -errno, "KVM_CREATE_PIT2");
		goto fail;
	}

	r = guest_memory_new(cfg->memory, &vm->mem);
	if (r < 0) {
		fail(ret_error, r, "guest memory");
		goto fail;
	}
	for (unsigned i = 0; i < vm->mem->n_regions; i++) {
		struct kvm_userspace_memory_region reg = {
			.slot = i,
			.guest_phys_addr = vm->mem->regions[i].gpa,
			.memory_size = vm->mem->regions[i].size,
			.userspace_addr = (uintptr_t)vm->mem->regions[i].host,
		};
		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0) {
			r = fail(ret_error, -errno, "KVM_SET_USER_MEMORY_REGION");
			goto fail;
		}
	}

	/* Devices before loading: their windows go on the command line. */
	for (unsigned i = 0; i < cfg->n_disks; i++) {
		VirtioDevice *d;
		r = virtio_blk_new(cfg->disks[i].fd, cfg->disks[i].read_only, vm->mem, &vm->host,
				   vm->n_virtio, &d);
		if (r < 0) {
			fail(ret_error, r, "virtio-blk");
			goto fail;
		}
		r = add_virtio(vm, d);
		if (r < 0)
			goto fail;
	}
	if (cfg->rng) {
		VirtioDevice *d;
		r = virtio_rng_new(vm->mem, &vm->host, vm->n_virtio, &d);
		if (r >= 0)
			r = add_virtio(vm, d);
		if (r < 0)
			goto fail;
	}

	if (cfg->vsock_cid) {
		VirtioDevice *d;
		r = virtio_vsock_new(cfg->vsock_cid, cfg->vsock_listen_fd, cfg->vsock_wake,
				     cfg->vsock_wake_userdata, vm->mem, &vm->host, vm->n_virtio,
				     &d);
		if (r < 0) {
			fail(ret_error, r, "virtio-vsock");
			goto fail;
		}
		vm->vsock = d;
		r = add_virtio(vm, d);
		if (r < 0)
			goto fail;
	}

	const char *why = NULL;
	r = boot_load(vm->mem, cfg->kernel, cfg->kernel_size, cfg->initrd, cfg->initrd_size,
		      vm->cmdline, cfg->vcpus, &vm->boot, &why);
	if (r < 0) {
		if (ret_error) {
			free(*ret_error);
			*ret_error = strdup(why ? why : "cannot load the kernel");
		}
		goto fail;
	}

	int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size <= 0) {
		r = fail(ret_error, -errno, "KVM_GET_VCPU_MMAP_SIZE");
		goto fail;
	}
	vm->run_size = (size_t)mmap_size;
	for (unsigned i = 0; i < cfg->vcpus; i++) {
		Vcpu *c = &vm->vcpus[i];
		c->vm = vm;
		c->index = i;
		c->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (c->fd < 0) {
			r = fail(ret_error, -errno, "KVM_CREATE_VCPU");
			goto fail;
		}
		vm->n_vcpus++;
		(void)fcntl(c->fd, F_SETFD, FD_CLOEXEC);
		c->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
		if (c->run == MAP_FAILED) {
			c->run = NULL;
			r = fail(ret_error, -errno, "mmap of kvm_run");
			goto fail;
		}
		r = setup_cpuid(vm, c);
		if (r >= 0)
			r = setup_lapic(c);
		if (r >= 0 && i == 0)
			r = setup_boot_cpu(vm, c);
		if (r < 0) {
			fail(ret_error, r, "vcpu setup");
			goto fail;
		}
	}
	/* The disks' fds now belong to their devices. */
	*ret = vm;
	return 0;
fail:
	/* Do not close the caller's disk fds on failure: detach them from the devices. */
	for (unsigned i = 0; i < vm->n_virtio; i++)
		if (vm->virtio[i]->ops->device_id == VIRTIO_ID_BLOCK)
			*(int *)vm->virtio[i]->impl = -1;
	if (vm->vsock)
		vsock_forget_listen_fd(vm->vsock);
	vm_free(vm);
	return r;
}

int vm_start(Vm *vm)
{
	struct sigaction sa = { .sa_handler = on_kick };
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		int r = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);
		if (r != 0) {
			vm_stop(vm, VM_EXIT_ERROR, 0, "cannot start a vcpu thread");
			return -r;
		}
		vm->vcpus[i].started = true;
	}
	return 0;
}

size_t vm_console_input(Vm *vm, const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&vm->io_lock);
	size_t n = serial_input(&vm->serial, data, len);
	pthread_mutex_unlock(&vm->io_lock);
	return n;
}

void vm_request_shutdown(Vm *vm)
{
	pthread_mutex_lock(&vm->io_lock);
	i8042_ctrl_alt_del(&vm->i8042);
	pthread_mutex_unlock(&vm->io_lock);
}

void vm_stop(Vm *vm, VmExitKind kind, int code, const char *message)
{
	if (__atomic_exchange_n(&vm->ended, 1, __ATOMIC_ACQ_REL))
		return;
	pthread_t self = pthread_self();
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		Vcpu *c = &vm->vcpus[i];
		if (c->run)
			__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELEASE);
		if (c->started && !pthread_equal(c->thread, self))
			pthread_kill(c->thread, KICK_SIGNAL);
	}
	if (vm->cb.exited)
		vm->cb.exited(vm->cb.userdata, kind, code, message);
}

void vm_join(Vm *vm)
{
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		if (vm->vcpus[i].started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].started = false;
		}
}

Vm *vm_free(Vm *vm)
{
	if (!vm)
		return NULL;
	vm_join(vm);
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		if (vm->vcpus[i].run)
			munmap(vm->vcpus[i].run, vm->run_size);
		if (vm->vcpus[i].fd >= 0)
			close(vm->vcpus[i].fd);
	}
	for (unsigned i = 0; i < vm->n_virtio; i++)
		virtio_device_free(vm->virtio[i]);
	if (vm->fd >= 0)
		close(vm->fd);
	guest_memory_free(vm->mem);
	pthread_mutex_destroy(&vm->io_lock);
	free(vm->cmdline);
	free(vm);
	return NULL;
}

const BootSetup *vm_boot_setup(Vm *vm)
{
	return &vm->boot;
}

const char *vm_cmdline(Vm *vm)
{
	return vm->cmdline;
}

VirtioDevice *vm_vsock(Vm *vm)
{
	return vm->vsock;
}

uint64_t vm_exits(Vm *vm)
{
	return __atomic_load_n(&vm->exits, __ATOMIC_RELAXED);
}
