#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/fs: the build context, side by side — native directory, kernel overlayfs,
fuse-overlayfs (Debian's) and locald-fsd — over one generated tree.

Rows: context setup for an N-file tree (mount vs `cp -a` vs `cp --reflink=always`
where the filesystem allows), stat of every file with cold caches and warm, `grep -r`
of a source tree (a copy of this repository's C sources), sequential read of a big
file (cold), create + write of 10,000 small files in the upper, meson + ninja of this
project (no tests) with the build dir inside the mount. Prints seconds and
ratios against fuse-overlayfs and the kernel. Needs root (mounts, drop_caches).

    /usr/bin/python3 bench/fs.py [--files 100000] [--big-mib 1024] [--small 10000] [--no-build]
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import SOURCE_DIR, arg_parser, cleanup, scratch

sys.path.insert(0, str(SOURCE_DIR / "integration"))
from fsd_fixtures import is_mount, lazy_unmount  # noqa: E402


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def make_tree(root, n_files):
    per_dir = 100
    for d in range((n_files + per_dir - 1) // per_dir):
        dd = root / "tree" / f"d{d // 100:03d}" / f"s{d % 100:02d}"
        dd.mkdir(parents=True)
        for i in range(min(per_dir, n_files - d * per_dir)):
            with open(dd / f"f{i:03d}.c", "wb") as f:
                f.write(b"int x%d;\n" % i * 8)


def make_src(root):
    src = root / "src"
    for sub in ["lib", "services", "ctl", "proto", "fuzz", "shim"]:
        if (SOURCE_DIR / sub).exists():
            shutil.copytree(SOURCE_DIR / sub, src / sub, symlinks=True)


def make_project(root):
    """This repository's tracked files at HEAD, for the build row."""
    dst = root / "project"
    dst.mkdir()
    arc = subprocess.run(["git", "-C", str(SOURCE_DIR), "archive", "HEAD"], capture_output=True,
                         check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=arc, check=True)


def build_project(root, name):
    """meson setup + ninja of this project (no tests) in a build dir inside `root`."""
    bld = root / "project" / f"bld-{name.replace(' ', '')}"
    subprocess.run(["meson", "setup", str(bld), "-Dtests=false", "-Dbuildtype=debugoptimized"],
                   cwd=root / "project", check=True, capture_output=True)
    subprocess.run(["ninja", "-C", str(bld)], check=True, capture_output=True)
    return bld


def make_big(root, mib):
    with open(root / "big", "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(mib):
            f.write(chunk)


class FsdDaemon:
    """The product path: a running locald-fsd (superd's system service) taking Mount calls."""

    def __init__(self, fsd, base):
        from locald_bus import Client
        self.rt, self.st = base / "fsd-rt", base / "fsd-st"
        self.rt.mkdir(mode=0o700)
        self.st.mkdir()
        self.env = dict(os.environ, LOCALD_RUNTIME_DIR=str(self.rt), LOCALD_STATE_DIR=str(self.st))
        self.proc = subprocess.Popen([str(fsd)], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = Client(self.rt, "fsd")
        deadline = time.monotonic() + 15
        while not (self.rt / "fsd.rpc").exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                sys.exit("locald-fsd (daemon) did not start")
            time.sleep(0.01)

    threads = 0  # 0: fsd's default

    def mount(self, lower, up, wk, mnt):
        from locald.v1 import fs_pb2
        self.client.call(mount=fs_pb2.Mount(lowers=[str(lower)], upper=str(up), work=str(wk),
                                            mountpoint=str(mnt), no_default_ignore=True,
                                            options=fs_pb2.MountOptions(threads=self.threads)))

    def unmount(self, mnt):
        from locald.v1 import fs_pb2
        self.client.call(unmount=fs_pb2.Unmount(mountpoint=str(mnt)))

    def stop(self):
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Setup:
    def __init__(self, name, base, lower, fsd, daemon=None, localctl=None):
        self.name, self.base, self.lower, self.fsd = name, base, lower, fsd
        self.daemon, self.localctl = daemon, localctl
        self.proc = None
        slug = name.replace(" (", "-").rstrip(")")
        self.mnt = lower if name == "native" else base / f"mnt-{slug}"
        self.up, self.wk = base / f"up-{slug}", base / f"wk-{slug}"

    def mount(self):
        if self.name == "native":
            return 0.0
        up, wk = self.up, self.wk
        for d in (up, wk, self.mnt):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        t = time.perf_counter()
        if self.name == "fsd":
            self.daemon.mount(self.lower, up, wk, self.mnt)
        elif self.name == "fsd (localctl)":
            subprocess.run([str(self.localctl), "fs", "mount", str(self.lower), "--upper", str(up),
                            "--work", str(wk), "--mountpoint", str(self.mnt), "--no-ignore"],
                           env=self.daemon.env, check=True, stdout=subprocess.DEVNULL)
        elif self.name == "overlayfs":
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={self.lower},upperdir={up},workdir={wk}", str(self.mnt)],
                           check=True)
        elif self.name == "fuse-overlayfs":
            subprocess.run(["fuse-overlayfs", "-o", f"lowerdir={self.lower},upperdir={up},workdir={wk}",
                            str(self.mnt)], check=True)
        else:
            self.proc = subprocess.Popen([str(self.fsd), "mount", "-o",
                                          f"lowerdir={self.lower},upperdir={up},workdir={wk},noignore"
                                          + (f",threads={FsdDaemon.threads}" if FsdDaemon.threads else ""),
                                          str(self.mnt)], stderr=subprocess.DEVNULL)
            # poll finely: the row measures the mount, not a sleep granularity
            while not is_mount(self.mnt):
                if self.proc.poll() is not None:
                    sys.exit("locald-fsd exited during mount")
                time.sleep(0.0005)
        os.stat(self.mnt / "big")  # answered: the context is usable
        return time.perf_counter() - t

    def umount(self):
        if self.name in ("fsd", "fsd (localctl)"):
            self.daemon.unmount(self.mnt)
        elif self.name != "native":
            lazy_unmount(self.mnt)
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def stat_all(root):
    subprocess.run(["find", str(root / "tree"), "-printf", "%s\n"], stdout=subprocess.DEVNULL, check=True)


def grep_src(root):
    subprocess.run(["grep", "-r", "-q", "no-such-string-anywhere-xyzzy", str(root / "src")])


def read_big(root):
    subprocess.run(["dd", f"if={root / 'big'}", "of=/dev/null", "bs=1M"], check=True,
                   capture_output=True)


def write_small(root, n):
    d = root / "new"
    d.mkdir()
    data = b"x" * 1024
    for i in range(n):
        with open(d / f"n{i}", "wb") as f:
            f.write(data)


def main():
    p = arg_parser(__doc__)
    p.add_argument("--files", type=int, default=100000)
    p.add_argument("--big-mib", type=int, default=1024)
    p.add_argument("--small", type=int, default=10000)
    p.add_argument("--no-build", action="store_true", help="skip the row building this project")
    p.add_argument("--fsd-threads", type=int, default=0, help="fsd worker threads (0: its default)")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/fs needs root (mounts, drop_caches)")
    fsd = Path(args.build) / "services" / "fsd" / "locald-fsd"
    if not fsd.exists():
        sys.exit(f"{fsd} not found: meson setup {args.build} -Dbuildtype=release && ninja -C {args.build}")
    if not shutil.which("fuse-overlayfs"):
        sys.exit("fuse-overlayfs is not installed (apt-get install fuse-overlayfs)")

    base = scratch(args, "locald-bench-fs-")
    lower = base / "lower"
    lower.mkdir()
    print(f"generating {args.files} files, a source tree, a {args.big_mib} MiB file in {base} ...",
          flush=True)
    make_tree(lower, args.files)
    make_src(lower)
    make_big(lower, args.big_mib)
    if not args.no_build:
        make_project(lower)

    results = {}
    # context setup by copying, for the "setup" row
    drop_caches()
    results[("setup", "cp -a")] = timed(lambda: subprocess.run(["cp", "-a", str(lower), str(base / "copy")],
                                                               check=True))
    shutil.rmtree(base / "copy")
    r = subprocess.run(["cp", "-a", "--reflink=always", str(lower / "big"), str(base / "reflink-probe")],
                       capture_output=True)
    if r.returncode == 0:
        os.unlink(base / "reflink-probe")
        drop_caches()
        results[("setup", "cp --reflink")] = timed(lambda: subprocess.run(
            ["cp", "-a", "--reflink=always", str(lower), str(base / "copy")], check=True))
        shutil.rmtree(base / "copy")

    sys.path.insert(0, str(SOURCE_DIR / "integration"))
    from locald_bus import generate_protos
    generate_protos()
    daemon = FsdDaemon(fsd, base)
    FsdDaemon.threads = args.fsd_threads
    localctl = Path(args.build) / "ctl" / "localctl"
    names = ["native", "overlayfs", "fuse-overlayfs", "fsd"]
    # setup: median of 5 mount → first answered stat, each on fresh upper/work dirs;
    # fsd through its running daemon (what superd and buildd use), and the same through
    # `localctl fs mount` (a user's command: plus the CLI's process start), and a cold
    # `locald-fsd mount` process (what fuse-overlayfs is)
    for name in ["overlayfs", "fuse-overlayfs", "fsd", "fsd (localctl)", "fsd (process)"]:
        times = []
        for _ in range(5):
            s = Setup(name, base, lower, fsd, daemon, localctl)
            try:
                times.append(s.mount())
            finally:
                s.umount()
        results[("setup", name)] = statistics.median(times)
    results[("setup", "native")] = 0.0
    for name in names:
        s = Setup(name, base, lower, fsd, daemon, localctl)
        try:
            drop_caches()
            s.mount()
            drop_caches()
            results[("stat cold", name)] = timed(lambda: stat_all(s.mnt))
            results[("stat warm", name)] = min(timed(lambda: stat_all(s.mnt)) for _ in range(3))
            grep_src(s.mnt)
            results[("grep -r warm", name)] = min(timed(lambda: grep_src(s.mnt)) for _ in range(3))
            drop_caches()
            results[("read big cold", name)] = timed(lambda: read_big(s.mnt))
            if name == "native":
                nd = base / "native-new"
                nd.mkdir()
                results[("write small", name)] = timed(lambda: write_small(nd, args.small))
            else:
                results[("write small", name)] = timed(lambda: write_small(s.mnt, args.small))
            if not args.no_build:
                drop_caches()
                t = time.perf_counter()
                bld = build_project(s.mnt, name)
                results[("build project", name)] = time.perf_counter() - t
                if name == "native":
                    shutil.rmtree(bld)
            print(f"  {name} done", flush=True)
        finally:
            s.umount()

    rows = ["setup", "stat cold", "stat warm", "grep -r warm", "read big cold", "write small",
            "build project"]
    print(f"\nfiles {args.files}, big file {args.big_mib} MiB, small files {args.small}; seconds "
          "(ratio fsd/fuse-overlayfs, fsd/overlayfs: lower is better for fsd)\n")
    print(f"{'row':<16}" + "".join(f"{n:>16}" for n in names) + f"{'fsd/fuse-ovl':>14}{'fsd/kernel':>12}")
    for row in rows:
        line = f"{row:<16}"
        for n in names:
            v = results.get((row, n))
            line += f"{v:>16.4f}" if v is not None else f"{'-':>16}"
        f, fo, k = results.get((row, "fsd")), results.get((row, "fuse-overlayfs")), results.get((row, "overlayfs"))
        line += f"{f / fo:>14.2f}" if f and fo else f"{'-':>14}"
        line += f"{f / k:>12.2f}" if f and k else f"{'-':>12}"
        print(line)
    for k in [("setup", "fsd (localctl)"), ("setup", "fsd (process)"), ("setup", "cp -a"),
              ("setup", "cp --reflink")]:
        if k in results:
            print(f"{'setup by ' + k[1]:<24}{results[k]:>10.4f}")
    daemon.stop()
    for n in names:
        if n != "native" and is_mount(base / f"mnt-{n}"):
            lazy_unmount(base / f"mnt-{n}")
    cleanup(args, base)


if __name__ == "__main__":
    main()
