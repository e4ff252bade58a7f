/* SPDX-License-Identifier: MIT */
/* The bus calls of vmm.proto and the vm.<name> events. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strutil.h"
#include "time-util.h"
#include "vmmd-internal.h"

#define CONSOLE_READ_DEFAULT 65536
#define CONSOLE_READ_MAX (1u << 20)
#define CONSOLE_WAIT_MAX_MS 30000
#define CONSOLE_WRITE_MAX 65536

typedef struct StatusBuf {
	Locald__V1__VmStatus s;
	Locald__V1__VmDisk disks[VMMD_DISKS_MAX];
	Locald__V1__VmDisk *disk_ptrs[VMMD_DISKS_MAX];
} StatusBuf;

static void fill_status(VmmdVm *vm, StatusBuf *b)
{
	Locald__V1__VmStatus *s = &b->s;
	locald__v1__vm_status__init(s);
	s->name = vm->name;
	s->state = vm->state;
	s->exit_reason = (char *)strempty(vm->exit_reason);
	s->exit_code = vm->exit_code;
	if (vm->start_usec)
		s->uptime_usec = (vm->end_usec ? vm->end_usec : now_monotonic()) - vm->start_usec;
	s->worker_pid = vm->pid > 0 ? (uint32_t)vm->pid : 0;
	s->vcpus = vm->vcpus;
	s->memory_mib = vm->memory_mib;
	s->kernel = vm->kernel;
	s->console_bytes = vm->total;
	s->starts = vm->starts;
	s->vsock_path = (char *)strempty(vm->vsock_path);
	s->cmdline = vm->effective_cmdline ? vm->effective_cmdline : vm->cmdline;
	s->boot_protocol = (char *)strempty(kernel_format_to_string(vm->format));
	for (unsigned i = 0; i < vm->n_disks; i++) {
		locald__v1__vm_disk__init(&b->disks[i]);
		b->disks[i].path = vm->disks[i].path;
		b->disks[i].read_only = vm->disks[i].read_only;
		b->disk_ptrs[i] = &b->disks[i];
	}
	s->n_disks = vm->n_disks;
	s->disks = b->disk_ptrs;
}

#define REPLY_VM(callp, vm, Type, type_init, CASE, field)                                          \
	do {                                                                                       \
		StatusBuf _b;                                                                      \
		fill_status((vm), &_b);                                                            \
		Type _r = type_init;                                                               \
		_r.vm = &_b.s;                                                                     \
		BusReply _reply = LOCALD__V1__REPLY__INIT;                                         \
		_reply.result_case = CASE;                                                         \
		_reply.field = &_r;                                                                \
		bus_call_reply((callp), &_reply);                                                  \
	} while (0)

static VmmdVm *lookup(BusCall **call, Vmmd *d, const char *name)
{
	VmmdVm *vm = vmmd_find(d, strempty(name));
	if (!vm)
		bus_call_reply_error(call, LOCALD__V1__ERROR__CODE__NOT_FOUND,
				     "`localctl vm ls` lists the VMs", "no VM named \"%s\"",
				     strempty(name));
	return vm;
}

static int on_create(BusCall *call, const BusRequest *req, void *userdata)
{
	Vmmd *d = userdata;
	VmmdVm *vm = NULL;
	BusErrorCode code;
	char *msg = NULL;
	if (vmmd_create(d, req->create_vm, &vm, &code, &msg) < 0) {
		bus_call_reply_error(&call, code, NULL, "%s", msg ? msg : "invalid VM");
		free(msg);
		return 0;
	}
	log_info("vm %s: created (%s, %u vcpus, %u MiB)", vm->name,
		 kernel_format_to_string(vm->format), vm->vcpus, vm->memory_mib);
	vmmd_bus_publish_state(vm);
	REPLY_VM(&call, vm, Locald__V1__CreateVmResult, LOCALD__V1__CREATE_VM_RESULT__INIT,
		 LOCALD__V1__REPLY__RESULT_CREATE_VM, create_vm);
	return 0;
}

static int on_start(BusCall *call, const BusRequest *req, void *userdata)
{
	VmmdVm *vm = lookup(&call, userdata, req->start_vm->name);
	if (!vm)
		return 0;
	if (vm->proc || vm->start_call)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION,
					    NULL, "VM \"%s\" is already running", vm->name),
		       0;
	char *msg = NULL;
	if (vmmd_start(vm, &msg) < 0) {
		bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION, NULL,
				     "%s", msg ? msg : "cannot start the VM");
		free(msg);
		return 0;
	}
	vm->start_call = bus_call_defer(call);
	return 0;
}

void vmmd_bus_answer_start(VmmdVm *vm, const char *error)
{
	if (!vm->start_call)
		return;
	BusCall *call = TAKE_PTR(vm->start_call);
	if (error) {
		bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION,
				     strstr(error, "/dev/kvm") ? "this host has no usable KVM"
							       : NULL,
				     "VM \"%s\" did not start: %s", vm->name, error);
		return;
	}
	REPLY_VM(&call, vm, Locald__V1__StartVmResult, LOCALD__V1__START_VM_RESULT__INIT,
		 LOCALD__V1__REPLY__RESULT_START_VM, start_vm);
}

static int on_stop(BusCall *call, const BusRequest *req, void *userdata)
{
	VmmdVm *vm = lookup(&call, userdata, req->stop_vm->name);
	if (!vm)
		return 0;
	if (!vm->proc) {
		REPLY_VM(&call, vm, Locald__V1__StopVmResult, LOCALD__V1__STOP_VM_RESULT__INIT,
			 LOCALD__V1__REPLY__RESULT_STOP_VM, stop_vm);
		return 0;
	}
	if (vm->n_stop_calls == ELEMENTSOF(vm->stop_calls))
		return -EBUSY;
	vm->stop_calls[vm->n_stop_calls++] = bus_call_defer(call);
	vmmd_stop(vm, req->stop_vm->grace_ms ? req->stop_vm->grace_ms : VMMD_STOP_GRACE_MS_DEFAULT);
	return 0;
}

void vmmd_bus_answer_stops(VmmdVm *vm)
{
	while (vm->n_stop_calls) {
		BusCall *call = vm->stop_calls[--vm->n_stop_calls];
		REPLY_VM(&call, vm, Locald__V1__StopVmResult, LOCALD__V1__STOP_VM_RESULT__INIT,
			 LOCALD__V1__REPLY__RESULT_STOP_VM, stop_vm);
	}
}

static int on_destroy(BusCall *call, const BusRequest *req, void *userdata)
{
	VmmdVm *vm = lookup(&call, userdata, req->destroy_vm->name);
	if (!vm)
		return 0;
	if (vm->proc)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION,
					    "stop it first: `localctl vm stop NAME`",
					    "VM \"%s\" is running", vm->name),
		       0;
	log_info("vm %s: destroyed", vm->name);
	vmmd_destroy(vm);
	Locald__V1__DestroyVmResult r = LOCALD__V1__DESTROY_VM_RESULT__INIT;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_DESTROY_VM;
	reply.destroy_vm = &r;
	bus_call_reply(&call, &reply);
	return 0;
}

static int on_get(BusCall *call, const BusRequest *req, void *userdata)
{
	VmmdVm *vm = lookup(&call, userdata, req->get_vm->name);
	if (vm)
		REPLY_VM(&call, vm, Locald__V1__GetVmResult, LOCALD__V1__GET_VM_RESULT__INIT,
			 LOCALD__V1__REPLY__RESULT_GET_VM, get_vm);
	return 0;
}

static int on_list(BusCall *call, const BusRequest *req, void *userdata)
{
	Vmmd *d = userdata;
	StatusBuf *b = calloc(d->n_vms ? d->n_vms : 1, sizeof(*b));
	Locald__V1__VmStatus **l = calloc(d->n_vms ? d->n_vms : 1, sizeof(*l));
	if (!b || !l) {
		free(b);
		free(l);
		return -ENOMEM;
	}
	size_t n = 0;
	for (unsigned i = 0; i < d->n_vms; i++) {
		if (d->vms[i]->destroyed)
			continue;
		fill_status(d->vms[i], &b[n]);
		l[n] = &b[n].s;
		n++;
	}
	Locald__V1__ListVmsResult r = LOCALD__V1__LIST_VMS_RESULT__INIT;
	r.n_vms = n;
	r.vms = l;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_LIST_VMS;
	reply.list_vms = &r;
	bus_call_reply(&call, &reply);
	free(b);
	free(l);
	return 0;
}

static void reply_console(BusCall **call, VmmdVm *vm, uint64_t cursor, uint32_t max)
{
	uint8_t *buf = malloc(max ? max : 1);
	if (!buf) {
		bus_call_reply_error(call, LOCALD__V1__ERROR__CODE__UNAVAILABLE, NULL,
				     "out of memory");
		return;
	}
	size_t n = 0;
	uint64_t first = 0;
	vmmd_console_slice(vm, cursor, max, &first, buf, &n);
	Locald__V1__ConsoleReadResult r = LOCALD__V1__CONSOLE_READ_RESULT__INIT;
	r.data.data = buf;
	r.data.len = n;
	r.first = first;
	r.next = first + n;
	r.state = vm->state;
	r.exit_reason = (char *)strempty(vm->exit_reason);
	r.exit_code = vm->exit_code;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_CONSOLE_READ;
	reply.console_read = &r;
	bus_call_reply(call, &reply);
	free(buf);
}

static void waiter_remove(ConsoleWaiter *w)
{
	VmmdVm *vm = w->vm;
	for (unsigned i = 0; i < vm->n_waiters; i++)
		if (vm->waiters[i] == w) {
			vm->waiters[i] = vm->waiters[--vm->n_waiters];
			break;
		}
	loop_timer_free(w->timer);
	free(w);
}

static void on_waiter_timeout(LoopTimer *t, void *userdata)
{
	ConsoleWaiter *w = userdata;
	reply_console(&w->call, w->vm, w->cursor, w->max_bytes);
	waiter_remove(w);
}

void vmmd_bus_answer_waiters(VmmdVm *vm)
{
	bool ended = !vm->proc;
	for (unsigned i = 0; i < vm->n_waiters;) {
		ConsoleWaiter *w = vm->waiters[i];
		if (ended || w->cursor < vm->total) {
			reply_console(&w->call, vm, w->cursor, w->max_bytes);
			waiter_remove(w); /* moves the last one into slot i */
		} else
			i++;
	}
}

static int on_console_read(BusCall *call, const BusRequest *req, void *userdata)
{
	const Locald__V1__ConsoleRead *c = req->console_read;
	VmmdVm *vm = lookup(&call, userdata, c->name);
	if (!vm)
		return 0;
	uint32_t max = c->max_bytes ? MIN(c->max_bytes, CONSOLE_READ_MAX) : CONSOLE_READ_DEFAULT;
	if (c->cursor >= vm->total && c->wait_ms && vm->proc &&
	    vm->n_waiters < VMMD_CONSOLE_WAITERS_MAX) {
		ConsoleWaiter *w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		w->vm = vm;
		w->cursor = c->cursor;
		w->max_bytes = max;
		if (loop_timer_new(vm->d->loop, MIN(c->wait_ms, CONSOLE_WAIT_MAX_MS), 0,
				   on_waiter_timeout, w, &w->timer) < 0) {
			free(w);
			return -ENOMEM;
		}
		w->call = bus_call_defer(call);
		vm->waiters[vm->n_waiters++] = w;
		return 0;
	}
	reply_console(&call, vm, c->cursor, max);
	return 0;
}

static int on_console_write(BusCall *call, const BusRequest *req, void *userdata)
{
	const Locald__V1__ConsoleWrite *c = req->console_write;
	VmmdVm *vm = lookup(&call, userdata, c->name);
	if (!vm)
		return 0;
	if (c->data.len > CONSOLE_WRITE_MAX)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__INVALID_ARGUMENT, NULL,
					    "console input: at most %d bytes per call",
					    CONSOLE_WRITE_MAX),
		       0;
	int r = vmmd_console_write(vm, c->data.data, c->data.len);
	if (r < 0)
		return bus_call_reply_error(&call, LOCALD__V1__ERROR__CODE__FAILED_PRECONDITION,
					    NULL, "VM \"%s\" is not running", vm->name),
		       0;
	Locald__V1__ConsoleWriteResult res = LOCALD__V1__CONSOLE_WRITE_RESULT__INIT;
	res.written = (uint32_t)r;
	BusReply reply = LOCALD__V1__REPLY__INIT;
	reply.result_case = LOCALD__V1__REPLY__RESULT_CONSOLE_WRITE;
	reply.console_write = &res;
	bus_call_reply(&call, &reply);
	return 0;
}

static void publish(VmmdVm *vm, Locald__V1__VmEvent *e)
{
	char topic[BUS_TOPIC_MAX + 1];
	if (strfmt(topic, sizeof(topic), "vm.%s", vm->name) < 0)
		return;
	BusEvent ev = LOCALD__V1__EVENT__INIT;
	ev.payload_case = LOCALD__V1__EVENT__PAYLOAD_VM;
	ev.vm = e;
	(void)bus_server_publish(vm->d->server, topic, &ev, NULL);
}

void vmmd_bus_publish_console(VmmdVm *vm, const uint8_t *data, size_t len, uint64_t offset)
{
	Locald__V1__VmEvent e = LOCALD__V1__VM_EVENT__INIT;
	e.name = vm->name;
	e.console.data = (uint8_t *)data;
	e.console.len = len;
	e.offset = offset;
	e.state = vm->state;
	publish(vm, &e);
}

void vmmd_bus_publish_state(VmmdVm *vm)
{
	Locald__V1__VmEvent e = LOCALD__V1__VM_EVENT__INIT;
	e.name = vm->name;
	e.offset = vm->total;
	e.state = vm->state;
	e.exit_reason = (char *)strempty(vm->exit_reason);
	e.exit_code = vm->exit_code;
	publish(vm, &e);
}

int vmmd_bus_register(Vmmd *d)
{
	static const struct {
		BusCallCase c;
		BusHandler h;
	} t[] = {
		{ LOCALD__V1__REQUEST__CALL_CREATE_VM, on_create },
		{ LOCALD__V1__REQUEST__CALL_START_VM, on_start },
		{ LOCALD__V1__REQUEST__CALL_STOP_VM, on_stop },
		{ LOCALD__V1__REQUEST__CALL_DESTROY_VM, on_destroy },
		{ LOCALD__V1__REQUEST__CALL_GET_VM, on_get },
		{ LOCALD__V1__REQUEST__CALL_LIST_VMS, on_list },
		{ LOCALD__V1__REQUEST__CALL_CONSOLE_READ, on_console_read },
		{ LOCALD__V1__REQUEST__CALL_CONSOLE_WRITE, on_console_write },
	};
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		int r = bus_server_add_handler(d->server, t[i].c, t[i].h, d);
		if (r < 0)
			return r;
	}
	return 0;
}
