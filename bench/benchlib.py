# SPDX-License-Identifier: MIT
"""What the superd benchmarks share: paths, the C helpers, ports, timing, tables.

Run the benchmarks with /usr/bin/python3 (it has python3-zmq and python3-protobuf).
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SOURCE_DIR = BENCH_DIR.parent
sys.path.insert(0, str(SOURCE_DIR / "integration"))

from locald_bus import Superd, pb  # noqa: E402,F401 (pb is re-exported)


def arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--build", default=os.environ.get("LOCALD_BUILD", str(SOURCE_DIR / "build-bench")),
                   help="meson build directory (default: build-bench, or $LOCALD_BUILD)")
    p.add_argument("--tmp", default=None, help="scratch directory (default: a fresh one in $TMPDIR)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    return p


def superd_binary(build):
    b = Path(build) / "services" / "superd" / "locald-superd"
    if not b.exists():
        sys.exit(f"{b} not found: meson setup {build} -Dbuildtype=release && ninja -C {build}")
    return b


def scratch(args, prefix):
    d = Path(args.tmp or tempfile.mkdtemp(prefix=prefix))
    d.mkdir(parents=True, exist_ok=True)
    return d


def cleanup(args, d):
    if not args.keep and not args.tmp:
        shutil.rmtree(d, ignore_errors=True)


def build_tool(name, outdir):
    """cc -O2 bench/<name>.c → outdir/<name>."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        sys.exit("a C compiler (cc) is needed for the bench helpers")
    out = Path(outdir) / name
    subprocess.run([cc, "-O2", "-o", str(out), str(BENCH_DIR / f"{name}.c")], check=True)
    return out


def free_ports(n):
    """n distinct ports the kernel says are free now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def port_accepts(port):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_ports(ports, timeout=30.0):
    """Poll-connect until every port accepts, 1 ms between passes: tighter than superd's
    own checks (10 ms doubling), so a slow poll never flatters the floor, yet not a busy
    loop stealing a core from the processes being started."""
    pending = list(ports)
    deadline = time.monotonic() + timeout
    while True:
        pending = [p for p in pending if not port_accepts(p)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} ports never accepted: {pending[:5]}")
        time.sleep(0.001)


def kill_group(proc):
    """SIGKILL the process group a floor's shell started (start_new_session=True)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def start_superd(binary, root, extra_args=()):
    return Superd(binary, root, extra_args=extra_args).start(timeout=20)


def stop_superd(d, projects=()):
    """Stop superd (it stops every service), then remove the empty cgroup leaves it keeps
    for a next run of these projects."""
    d.stop()
    try:
        log = d.log.read_text(errors="replace")
    except OSError:
        return
    base = next((l.split("service cgroups under ", 1)[1].strip() for l in log.splitlines()
                 if "service cgroups under " in l), None)
    for name in projects if base else ():
        top = Path(base) / name
        if not top.is_dir():
            continue
        for leaf in sorted(top.rglob("*"), key=lambda p: -len(p.parts)):
            if leaf.is_dir():
                try:
                    leaf.rmdir()
                except OSError:
                    pass
        try:
            top.rmdir()
        except OSError:
            pass


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_pss_kb(pid):
    """Proportional set size: shared pages split among their users (fair across processes)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_ticks(pid):
    """utime + stime of one process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


CLK_TCK = os.sysconf("SC_CLK_TCK")


def median(xs):
    return statistics.median(xs)


def fmt_ms(s):
    return f"{s * 1000:.1f} ms"


def table(headers, rows):
    """Print a plain aligned table."""
    cols = [headers] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    line = lambda r: "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
    print(line(headers))
    print("  ".join("-" * x for x in w))
    for r in cols[1:]:
        print(line(r))


def machine_note():
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        model = "?"
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} CPUs ({model}), kernel {os.uname().release}, load {load:.2f}"
