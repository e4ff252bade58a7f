# SPDX-License-Identifier: MIT
"""Debian's kernel (linux-image-amd64) on vmmd, with an initramfs built here from
busybox-static. Needs both packages (skipped without them, saying which); the boot
itself needs /dev/kvm. Where KVM is nested the boot may stall after the banner (see
services/vmmd/README.md): the test asserts what is reachable — the kernel banner on the
serial console — and reports how far it got."""

import glob
import gzip
import io
import os
import stat
import time
from pathlib import Path

import pytest

from test_vmmd_api import HAVE_KVM, Vmmd, console_until, vmpb  # noqa: F401

KERNELS = sorted(glob.glob("/boot/vmlinuz-*"))
BUSYBOX = "/bin/busybox" if os.path.exists("/bin/busybox") else None
pytestmark = pytest.mark.skipif(
    not KERNELS or not BUSYBOX,
    reason="needs linux-image-amd64 and busybox-static (apt-get install them): "
           + ("no /boot/vmlinuz-*" if not KERNELS else "no /bin/busybox"))


def cpio_newc(entries):
    """entries: (name, mode, data) -> a gzip'd newc archive."""
    out = io.BytesIO()
    ino = 1

    def put(name, mode, data):
        nonlocal ino
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out.write(hdr.encode() + nb)
        out.write(b"\0" * (-(110 + len(nb)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
        ino += 1
    for e in entries:
        put(*e)
    put("TRAILER!!!", 0, b"")
    return gzip.compress(out.getvalue())


@pytest.fixture
def initramfs(tmp_path):
    init = (b"#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n"
            b"/bin/busybox echo locald-linux-init: hello from $(/bin/busybox uname -r)\n"
            b"/bin/busybox reboot -f\n")
    p = tmp_path / "initramfs.gz"
    p.write_bytes(cpio_newc([
        ("bin", stat.S_IFDIR | 0o755, b""), ("proc", stat.S_IFDIR | 0o755, b""),
        ("dev", stat.S_IFDIR | 0o755, b""),
        ("bin/busybox", stat.S_IFREG | 0o755, Path(BUSYBOX).read_bytes()),
        ("init", stat.S_IFREG | 0o755, init)]))
    return p


@pytest.fixture
def vmmd(build_binary, tmp_path):
    d = Vmmd(build_binary("services/vmmd/locald-vmmd"), tmp_path).start()
    yield d
    d.stop()


def test_debian_kernel_is_accepted(vmmd, initramfs):
    _, vm = vmpb()
    s = vmmd.call(create_vm=vm.CreateVm(name="linux", kernel=KERNELS[-1], initrd=str(initramfs),
                                        memory_mib=256)).create_vm.vm
    assert s.boot_protocol == "bzimage"


@pytest.mark.skipif(not HAVE_KVM, reason="no usable /dev/kvm on this host")
def test_debian_kernel_boots_to_banner(vmmd, initramfs):
    _, vm = vmpb()
    vmmd.call(create_vm=vm.CreateVm(
        name="linux", kernel=KERNELS[-1], initrd=str(initramfs), memory_mib=256, vcpus=1,
        cmdline="console=ttyS0 earlyprintk=serial reboot=k panic=-1 pci=off nokaslr"))
    vmmd.call(start_vm=vm.StartVm(name="linux"))
    try:
        out, r = console_until(vmmd, "linux", "locald-linux-init: hello", timeout=60)
    except AssertionError as e:
        out = str(e)
    finally:
        s = vmmd.call(stop_vm=vm.StopVm(name="linux", grace_ms=500)).stop_vm.vm
    last = [line for line in out.splitlines() if line.strip()][-3:]
    print("Linux got as far as:", *last, "exit:", s.exit_reason, sep="\n  ")
    assert "Linux version" in out
