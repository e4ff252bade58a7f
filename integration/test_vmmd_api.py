# SPDX-License-Identifier: MIT
"""locald-vmmd over the bus: VM definitions, bad inputs, the worker's lifecycle, and —
where /dev/kvm works — the test guest booting on the real VMM.

The guest (services/vmmd/guest) picks what it does from `test=` on its command line;
see services/vmmd/guest/README.md."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from locald_bus import BusError, Client, Subscriber, generate_protos

HAVE_KVM = os.access("/dev/kvm", os.R_OK | os.W_OK)
needs_kvm = pytest.mark.skipif(not HAVE_KVM, reason="no usable /dev/kvm on this host "
                               "(the VM paths are covered by services/vmmd/tests/test-vm.c "
                               "and these tests where KVM exists)")


def vmpb():
    generate_protos()
    from locald.v1 import envelope_pb2, vmm_pb2
    return envelope_pb2, vmm_pb2


class Vmmd:
    def __init__(self, binary, root):
        self.binary = str(binary)
        self.runtime = Path(root) / "rt"
        self.runtime.mkdir(mode=0o700)
        self.log = Path(root) / "vmmd.log"
        self.env = dict(os.environ, LOCALD_RUNTIME_DIR=str(self.runtime))
        self.proc = None

    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf)
        env, _ = vmpb()
        c = Client(self.runtime, "vmmd")
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    c.call(timeout=0.5, ping=env.Ping())
                    return self
                except TimeoutError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("vmmd did not start: " + self.log.read_text())
        finally:
            c.close()

    def call(self, timeout=30.0, **kw):
        c = Client(self.runtime, "vmmd")
        try:
            return c.call(timeout=timeout, **kw)
        finally:
            c.close()

    def alive(self):
        env, _ = vmpb()
        return self.proc.poll() is None and self.call(timeout=5, ping=env.Ping()).pong is not None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def vmmd(build_binary, tmp_path):
    d = Vmmd(build_binary("services/vmmd/locald-vmmd"), tmp_path).start()
    yield d
    d.stop()


@pytest.fixture
def guest(build_dir):
    p = build_dir / "services/vmmd/test-guest.bzImage"
    if not p.exists():
        pytest.skip("test guest not built")
    return p


def create(vmmd, name, kernel, **kw):
    _, vm = vmpb()
    kw.setdefault("memory_mib", 64)
    disks = [vm.VmDisk(path=str(p), read_only=ro) for p, ro in kw.pop("disks", [])]
    return vmmd.call(create_vm=vm.CreateVm(name=name, kernel=str(kernel), disks=disks, **kw)).create_vm.vm


def error_of(fn):
    with pytest.raises(BusError) as e:
        fn()
    assert "\n" not in e.value.message
    return e.value


def pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie of vmmd's counts as gone once vmmd reaped it; wait a little
    return False


def test_create_list_get_destroy(vmmd, guest):
    _, vm = vmpb()
    s = create(vmmd, "one", guest, vcpus=2, cmdline="test=hello", rng=True)
    assert s.state == vm.VM_STATE_CREATED and s.boot_protocol == "bzimage" and s.vcpus == 2
    elf = Path(str(guest).replace(".bzImage", ".elf"))
    assert create(vmmd, "two", elf).boot_protocol == "pvh"
    names = sorted(v.name for v in vmmd.call(list_vms=vm.ListVms()).list_vms.vms)
    assert names == ["one", "two"]
    assert vmmd.call(get_vm=vm.GetVm(name="one")).get_vm.vm.cmdline == "test=hello"
    vmmd.call(destroy_vm=vm.DestroyVm(name="one"))
    e = error_of(lambda: vmmd.call(get_vm=vm.GetVm(name="one")))
    assert e.code == "NOT_FOUND"


def test_bad_inputs_are_one_line_errors(vmmd, guest, tmp_path):
    _, vm = vmpb()
    notkernel = tmp_path / "notes.txt"
    notkernel.write_text("this is not a kernel\n" * 100)
    create(vmmd, "dup", guest)
    cases = [
        (dict(name="x", kernel=notkernel), "INVALID_ARGUMENT", "not a kernel"),
        (dict(name="x", kernel=tmp_path / "missing"), "INVALID_ARGUMENT", "No such file"),
        (dict(name="x", kernel=guest, memory_mib=0), "INVALID_ARGUMENT", "memory: 0 MiB"),
        (dict(name="x", kernel=guest, memory_mib=64 << 20), "INVALID_ARGUMENT",
         "more than the host has"),
        (dict(name="x", kernel=guest, disks=[(tmp_path / "nodisk.img", False)]),
         "INVALID_ARGUMENT", "nodisk.img: No such file"),
        (dict(name="x", kernel=guest, vcpus=99), "INVALID_ARGUMENT", "vcpus"),
        (dict(name="Bad Name", kernel=guest), "INVALID_ARGUMENT", "not valid"),
        (dict(name="x", kernel="relative/bzImage"), "INVALID_ARGUMENT", "absolute"),
        (dict(name="dup", kernel=guest), "ALREADY_EXISTS", "already exists"),
        (dict(name="x", kernel=guest, vsock_cid=2), "INVALID_ARGUMENT", "vsock_cid: 2"),
    ]
    for kw, code, text in cases:
        e = error_of(lambda: create(vmmd, **kw))
        assert e.code == code, (kw, e)
        assert text in e.message, (kw, e)
    for call in (dict(start_vm=vm.StartVm(name="nope")), dict(stop_vm=vm.StopVm(name="nope")),
                 dict(console_read=vm.ConsoleRead(name="nope"))):
        assert error_of(lambda: vmmd.call(**call)).code == "NOT_FOUND"
    assert vmmd.alive()


def test_vsock_cid_unique(vmmd, guest):
    create(vmmd, "v1", guest, vsock_cid=7)
    e = error_of(lambda: create(vmmd, "v2", guest, vsock_cid=7))
    assert e.code == "ALREADY_EXISTS" and "v1" in e.message


@pytest.mark.skipif(HAVE_KVM, reason="checks the error on hosts without KVM")
def test_start_without_kvm_removes_vsock_socket(vmmd, guest):
    _, vm = vmpb()
    create(vmmd, "vs", guest, vsock_cid=9)
    error_of(lambda: vmmd.call(start_vm=vm.StartVm(name="vs")))
    assert not (vmmd.runtime / "vm-vs.vsock").exists()
    assert vmmd.call(get_vm=vm.GetVm(name="vs")).get_vm.vm.vsock_path == ""


@pytest.mark.skipif(HAVE_KVM, reason="checks the error on hosts without KVM")
def test_start_without_kvm_fails_cleanly(vmmd, guest):
    _, vm = vmpb()
    create(vmmd, "nokvm", guest)
    e = error_of(lambda: vmmd.call(start_vm=vm.StartVm(name="nokvm")))
    assert e.code == "FAILED_PRECONDITION"
    assert "/dev/kvm" in e.message and "KVM" in e.hint
    s = vmmd.call(get_vm=vm.GetVm(name="nokvm")).get_vm.vm
    assert s.state == vm.VM_STATE_STOPPED and "/dev/kvm" in s.exit_reason
    assert s.worker_pid == 0
    # and again: a stopped VM starts anew (and fails the same way), vmmd stays up
    error_of(lambda: vmmd.call(start_vm=vm.StartVm(name="nokvm")))
    assert vmmd.call(get_vm=vm.GetVm(name="nokvm")).get_vm.vm.starts == 2
    assert vmmd.alive()


# ---- on KVM ----

def console_until(vmmd, name, text, timeout=20.0):
    """Console output (long-polling ConsoleRead) until `text` appears or the VM ends."""
    _, vm = vmpb()
    out, cursor = b"", 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = vmmd.call(console_read=vm.ConsoleRead(name=name, cursor=cursor, wait_ms=1000)).console_read
        out += r.data
        cursor = r.next
        if text.encode() in out or r.state == vm.VM_STATE_STOPPED:
            return out.decode(errors="replace"), r
    raise AssertionError(f"{text!r} not seen within {timeout}s; got {out!r}")


def run_guest(vmmd, guest, name, cmdline, **kw):
    _, vm = vmpb()
    create(vmmd, name, guest, cmdline=cmdline, **kw)
    t0 = time.monotonic()
    vmmd.call(start_vm=vm.StartVm(name=name))
    out, r = console_until(vmmd, name, "\x00never\x00")
    return out, r, time.monotonic() - t0


@needs_kvm
def test_guest_boots_to_serial_and_exit_code(vmmd, guest):
    _, vm = vmpb()
    sub = Subscriber(vmmd.runtime, "vm.hello", daemon="vmmd")
    time.sleep(0.2)
    out, r, _ = run_guest(vmmd, guest, "hello", "test=hello exit=42")
    assert "locald-test-guest: hello from bzimage64" in out
    assert r.exit_reason == "poweroff" and r.exit_code == 42
    seen = b""
    while (ev := sub.receive(timeout=1)) is not None:
        seen += ev.vm.console
    assert b"hello from" in seen
    sub.close()


@needs_kvm
def test_pvh_elf_boots(vmmd, guest):
    out, r, _ = run_guest(vmmd, Path(str(guest).replace(".bzImage", ".elf")), "pvh", "test=hello")
    assert "hello from pvh" in out and r.exit_code == 0


@needs_kvm
def test_disk_round_trip(vmmd, guest, tmp_path):
    img = tmp_path / "disk.img"
    img.write_bytes(b"hello disk".ljust(1 << 20, b"\0"))
    out, r, _ = run_guest(vmmd, guest, "disk", "test=disk", disks=[(img, False)])
    assert "sector 0 says 'hello disk'" in out and "round trip ok" in out, out
    assert img.read_bytes()[512:544] == b"written by the locald test guest"
    ro = tmp_path / "ro.img"
    ro.write_bytes(b"read only".ljust(1 << 20, b"\0"))
    out, r, _ = run_guest(vmmd, guest, "diskro", "test=disk", disks=[(ro, True)])
    assert "write refused (read-only), ok" in out and r.exit_code == 0
    assert ro.read_bytes()[512:520] == b"\0" * 8


@needs_kvm
def test_two_vcpus(vmmd, guest):
    out, r, _ = run_guest(vmmd, guest, "smp", "test=smp", vcpus=2)
    assert "smp: 2 cpus" in out and "smp: ok" in out and r.exit_code == 0, out


@needs_kvm
def test_rng(vmmd, guest):
    out, r, _ = run_guest(vmmd, guest, "rng", "test=rng", rng=True)
    assert "rng: got 16 bytes" in out and r.exit_code == 0


@needs_kvm
def test_console_input(vmmd, guest):
    _, vm = vmpb()
    create(vmmd, "echo", guest, cmdline="test=echo")
    vmmd.call(start_vm=vm.StartVm(name="echo"))
    console_until(vmmd, "echo", "echo: ready")
    vmmd.call(console_write=vm.ConsoleWrite(name="echo", data=b"quit\r"))
    out, r = console_until(vmmd, "echo", "\x00never\x00")
    assert "echo: got 'quit'" in out and r.exit_code == 0


@needs_kvm
def test_triple_fault_is_reported_and_vmmd_stays_up(vmmd, guest):
    _, vm = vmpb()
    out, r, _ = run_guest(vmmd, guest, "tf", "test=triple")
    assert r.exit_reason.startswith("triple-fault")
    s = vmmd.call(get_vm=vm.GetVm(name="tf")).get_vm.vm
    assert s.worker_pid == 0
    assert vmmd.alive()


@needs_kvm
def test_stop_hung_guest(vmmd, guest):
    _, vm = vmpb()
    create(vmmd, "spin", guest, cmdline="test=spin")
    pid = vmmd.call(start_vm=vm.StartVm(name="spin")).start_vm.vm.worker_pid
    console_until(vmmd, "spin", "spin: forever")
    s = vmmd.call(stop_vm=vm.StopVm(name="spin", grace_ms=300)).stop_vm.vm
    assert s.state == vm.VM_STATE_STOPPED and s.exit_reason.startswith("killed")
    assert pid_gone(pid)
    assert vmmd.alive()


@needs_kvm
def test_graceful_stop(vmmd, guest):
    _, vm = vmpb()
    create(vmmd, "wait", guest, cmdline="test=wait")
    vmmd.call(start_vm=vm.StartVm(name="wait"))
    console_until(vmmd, "wait", "idle until stopped")
    s = vmmd.call(stop_vm=vm.StopVm(name="wait", grace_ms=5000)).stop_vm.vm
    assert s.exit_reason == "poweroff" and s.exit_code == 0


@needs_kvm
def test_worker_death_is_the_exit_reason(vmmd, guest):
    _, vm = vmpb()
    create(vmmd, "victim", guest, cmdline="test=wait")
    pid = vmmd.call(start_vm=vm.StartVm(name="victim")).start_vm.vm.worker_pid
    console_until(vmmd, "victim", "idle until stopped")
    os.kill(pid, signal.SIGKILL)
    out, r = console_until(vmmd, "victim", "\x00never\x00")
    assert r.exit_reason == "worker died: SIGKILL"
    assert vmmd.alive()


@needs_kvm
def test_vsock_echo(vmmd, guest):
    import socket
    _, vm = vmpb()
    create(vmmd, "vsock", guest, cmdline="test=vsock vsock_port=5000", vsock_cid=3)
    s = vmmd.call(start_vm=vm.StartVm(name="vsock")).start_vm.vm
    console_until(vmmd, "vsock", "listening on port 5000")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(s.vsock_path)
    c.sendall(b"CONNECT 5000\n")
    assert c.recv(64).startswith(b"OK ")
    payload = bytes(range(256)) * 40
    c.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = c.recv(65536)
        assert chunk
        got += chunk
    assert got == payload
    c.close()
    out, r = console_until(vmmd, "vsock", "\x00never\x00")
    assert f"peer closed after {len(payload)} bytes echoed" in out and r.exit_code == 0
