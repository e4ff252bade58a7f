#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""vmmd against QEMU booting the same test guest (services/vmmd/guest), in one run:

  1. StartVm → first serial byte and → power-off (test=hello), median of N boots;
     QEMU: `qemu-system-x86_64 -enable-kvm -M microvm` with the guest's ELF (PVH) — QEMU
     cannot boot the guest's bzImage (no real-mode setup code; vmmd uses the 64-bit
     protocol entry), so the ELF is the common format — from spawn to first byte / exit;
  2. the worker's RSS minus the guest memory it touched (test=wait, idle);
  3. 100 sequential create/start/stop/destroy cycles.

Without /dev/kvm nothing of vmmd can run: the script says so, and reports what still
means something — QEMU/TCG booting the guest (a reference for the guest alone) and the
cost of a create/start/destroy cycle whose worker fails at /dev/kvm (spawn + sandbox-less
exit + bookkeeping).

    /usr/bin/python3 bench/vm.py --build build-bench
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchlib import arg_parser, cleanup, fmt_ms, median, proc_rss_kb, scratch, table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from locald_bus import BusError, Client, generate_protos  # noqa: E402

VIRTIO = " ".join(f"virtio_mmio.device=512@{0xfeb00000 + i * 512:#x}:{12 + i}" for i in range(4))


def pbs():
    generate_protos()
    from locald.v1 import envelope_pb2, vmm_pb2
    return envelope_pb2, vmm_pb2


def start_vmmd(binary, root):
    rt = root / "rt"
    rt.mkdir(mode=0o700)
    env = dict(os.environ, LOCALD_RUNTIME_DIR=str(rt))
    p = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL,
                         stdout=open(root / "vmmd.log", "ab"), stderr=subprocess.STDOUT)
    envpb, _ = pbs()
    c = Client(rt, "vmmd")
    for _ in range(100):
        try:
            c.call(timeout=0.2, ping=envpb.Ping())
            return p, c
        except TimeoutError:
            pass
    sys.exit("vmmd did not start: " + (root / "vmmd.log").read_text())


def qemu_boot(elf, kvm, cmdline="test=hello exit=3"):
    q = shutil.which("qemu-system-x86_64")
    if not q:
        return None
    argv = [q, "-M", "microvm", "-m", "64", "-nographic", "-no-reboot", "-nodefaults",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
            "-kernel", str(elf), "-append", f"{cmdline} {VIRTIO}"]
    argv[1:1] = ["-enable-kvm"] if kvm else ["-accel", "tcg"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.read(1)
    first = time.monotonic() - t0
    p.stdout.read()
    p.wait()
    return first, time.monotonic() - t0


def vmmd_boot(c, vm, guest, name):
    c.call(create_vm=vm.CreateVm(name=name, kernel=str(guest), memory_mib=64,
                                 cmdline="test=hello exit=3"))
    t0 = time.monotonic()
    c.call(start_vm=vm.StartVm(name=name))
    first = None
    cursor = 0
    while True:
        r = c.call(console_read=vm.ConsoleRead(name=name, cursor=cursor, wait_ms=5000)).console_read
        if r.data and first is None:
            first = time.monotonic() - t0
        cursor = r.next
        if r.state == vm.VM_STATE_STOPPED:
            break
    end = time.monotonic() - t0
    c.call(destroy_vm=vm.DestroyVm(name=name))
    return first, end


def main():
    ap = arg_parser(__doc__)
    ap.add_argument("-n", type=int, default=20, help="boots per VMM (default 20)")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    binary = build / "services/vmmd/locald-vmmd"
    guest = build / "services/vmmd/test-guest.bzImage"
    elf = build / "services/vmmd/test-guest.elf"
    if not binary.exists() or not guest.exists():
        sys.exit(f"build {build} first (ninja -C {build})")
    kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    root = scratch(args, "bench-vm-")
    envpb, vm = pbs()
    proc, c = start_vmmd(binary, root)
    try:
        rows = []
        if kvm:
            b = [vmmd_boot(c, vm, guest, f"b{i}") for i in range(args.n)]
            rows.append(["vmmd (bzImage, 64-bit entry)", fmt_ms(median([x[0] for x in b])),
                         fmt_ms(median([x[1] for x in b]))])
        q = [qemu_boot(elf, kvm) for _ in range(args.n)] if shutil.which("qemu-system-x86_64") else []
        if q:
            rows.append([f"QEMU microvm {'-enable-kvm' if kvm else 'TCG (no KVM)'} (ELF/PVH)",
                         fmt_ms(median([x[0] for x in q])), fmt_ms(median([x[1] for x in q]))])
        table(["boot of the test guest", "→ first serial byte", "→ power-off"], rows)
        if not kvm:
            print("\nno /dev/kvm on this host: vmmd cannot run a VM here; QEMU/TCG is the "
                  "guest alone, not a comparison.")

        if kvm:
            c.call(create_vm=vm.CreateVm(name="idle", kernel=str(guest), memory_mib=64,
                                         cmdline="test=wait"))
            pid = c.call(start_vm=vm.StartVm(name="idle")).start_vm.vm.worker_pid
            time.sleep(0.5)
            rss = proc_rss_kb(pid)
            guest_kb = 0
            with open(f"/proc/{pid}/smaps") as f:  # the 64 MiB guest mapping's Rss
                cur = False
                for line in f:
                    if "-" in line.split()[0] and len(line.split()) >= 5:
                        a, b2 = (int(x, 16) for x in line.split()[0].split("-"))
                        cur = b2 - a == 64 << 20
                    elif cur and line.startswith("Rss:"):
                        guest_kb += int(line.split()[1])
            print(f"\nworker RSS {rss} KiB, guest-touched {guest_kb} KiB: VMM overhead "
                  f"{rss - guest_kb} KiB")
            c.call(stop_vm=vm.StopVm(name="idle", grace_ms=1000))
            c.call(destroy_vm=vm.DestroyVm(name="idle"))

        t0 = time.monotonic()
        for i in range(100):
            c.call(create_vm=vm.CreateVm(name=f"c{i}", kernel=str(guest), memory_mib=64,
                                         cmdline="test=wait"))
            try:
                c.call(start_vm=vm.StartVm(name=f"c{i}"))
                c.call(stop_vm=vm.StopVm(name=f"c{i}", grace_ms=2000))
            except BusError as e:
                if kvm:
                    raise
                assert "/dev/kvm" in e.message
            c.call(destroy_vm=vm.DestroyVm(name=f"c{i}"))
        dt = time.monotonic() - t0
        what = "create/start/stop/destroy" if kvm else "create/start (fails at /dev/kvm)/destroy"
        print(f"\n100 sequential {what} cycles: {dt:.2f} s ({dt * 10:.1f} ms each)")
    finally:
        proc.terminate()
        proc.wait()
        cleanup(args, root)


if __name__ == "__main__":
    main()
