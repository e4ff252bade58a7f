# SPDX-License-Identifier: MIT
"""The test guest itself, checked on a second VMM: QEMU's microvm machine, without KVM
(TCG), booting the guest's ELF through its PVH note. This shows the guest's own code
(UART, virtio-mmio driver, SMP trampoline, debug-exit) is right independently of vmmd, so
a failure in test_vmmd_api.py points at vmmd. QEMU's isa-debug-exit exits with
(code << 1) | 1; QEMU cannot boot the guest's bzImage (it has no real-mode setup code,
which only a 64-bit boot protocol loader like vmmd's skips)."""

import shutil
import subprocess

import pytest

QEMU = shutil.which("qemu-system-x86_64")
pytestmark = pytest.mark.skipif(not QEMU, reason="qemu-system-x86_64 not installed")

# QEMU's microvm puts its virtio-mmio windows here, 512 bytes apart; the guest finds its
# devices from these entries exactly as it does from vmmd's.
VIRTIO = " ".join(f"virtio_mmio.device=512@{0xfeb00000 + i * 512:#x}:{12 + i}" for i in range(24))


@pytest.fixture
def elf(build_dir):
    p = build_dir / "services/vmmd/test-guest.elf"
    if not p.exists():
        pytest.skip("test guest not built")
    return p


def qemu(elf, cmdline, *extra, stdin=None, smp=1):
    argv = [QEMU, "-M", "microvm", "-accel", "tcg", "-m", "64", "-smp", str(smp),
            "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
            "-global", "virtio-mmio.force-legacy=false",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
            "-kernel", str(elf), "-append", f"{cmdline} {VIRTIO}", *extra]
    p = subprocess.run(argv, input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def test_hello_and_exit_code(elf):
    rc, out = qemu(elf, "test=hello exit=21")
    assert "locald-test-guest: hello from pvh" in out
    assert rc == (21 << 1) | 1


def test_disk_round_trip(elf, tmp_path):
    img = tmp_path / "d.img"
    img.write_bytes(b"qemu disk".ljust(1 << 20, b"\0"))
    rc, out = qemu(elf, "test=disk", "-drive", f"id=d0,file={img},format=raw,if=none",
                   "-device", "virtio-blk-device,drive=d0")
    assert "sector 0 says 'qemu disk'" in out and "round trip ok" in out, out
    assert rc == 1
    assert img.read_bytes()[512:544] == b"written by the locald test guest"


def test_two_cpus(elf):
    rc, out = qemu(elf, "test=smp cpus=2", smp=2)
    assert "smp: cpu with apic id 1 is up" in out and "smp: ok" in out, out


def test_console_input(elf):
    rc, out = qemu(elf, "test=echo", stdin=b"quit\r")
    assert "echo: got 'quit'" in out and rc == 1, out
