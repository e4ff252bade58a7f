#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Supervisor footprint with 50 services running: RSS, and CPU and wakeups while idle.

The 50 services are bench/tcp-listen.c on their own ports. Measured for each supervisor,
once all 50 ports accept and a settle delay has passed (superd checks each service's
ports once, 3 s after its start):

  RSS, PSS   VmRSS and Pss (shared pages split among their users) of the supervisor's own
             processes, not the services; for a many-process peer PSS is the fair sum
  idle CPU   utime+stime over the idle window (--idle, 10 s), from /proc/<pid>/stat
  wakeups    context switches of all its threads over the window (/proc/<pid>/task/*/status):
             a supervisor without polling loops should have ~0

Peers, each in its own column when installed (both are Debian packages):
  supervisord   apt-get install supervisor   (one Python process; logs captured like superd)
  runit         apt-get install runit        (runsvdir + one runsv per service; no log
                                               capture in this setup, so it does less work)

Goal (issue 3): superd RSS < 10 MB, idle CPU ~0.

    /usr/bin/python3 bench/superd-footprint.py [--services 50] [--idle 10] [--settle 5]
"""

import glob
import os
import shutil
import signal
import subprocess
import time

import benchlib as bl


def ctxt_switches(pid):
    n = 0
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def measure(pids_fn, args):
    """(RSS kB, PSS kB, idle CPU s, wakeups, processes) summed over pids_fn()."""
    time.sleep(args.settle)
    pids = pids_fn()
    rss = sum(bl.proc_rss_kb(p) for p in pids)
    pss = sum(bl.proc_pss_kb(p) for p in pids)
    cpu0 = sum(bl.proc_cpu_ticks(p) for p in pids)
    cs0 = sum(ctxt_switches(p) for p in pids)
    time.sleep(args.idle)
    cpu1 = sum(bl.proc_cpu_ticks(p) for p in pids)
    cs1 = sum(ctxt_switches(p) for p in pids)
    return rss, pss, (cpu1 - cpu0) / bl.CLK_TCK, cs1 - cs0, len(pids)


def run_superd(args, binary, tmp, listener):
    _, sv = bl.pb()
    project = tmp / "superd-proj"
    project.mkdir()
    (project / "locald.toml").write_text(
        '[project]\nname = "benchfoot"\n\n'
        + "".join(f'[services.s{i:02d}]\ncommand = "{listener}"\n' for i in range(args.services)))
    t0 = time.monotonic()
    d = bl.start_superd(binary, tmp / "superd")
    c = d.client()
    try:
        rep = c.call(timeout=120, apply_project=sv.ApplyProject(path=str(project), wait=True))
        up = time.monotonic() - t0
        running = sum(s.state == sv.SERVICE_STATE_RUNNING for s in rep.apply_project.project.services)
        if running != args.services:
            raise RuntimeError(f"only {running} of {args.services} services RUNNING")
        rss, pss, cpu, cs, n = measure(lambda: [d.proc.pid], args)
        with open(f"/proc/{d.proc.pid}/status") as f:
            hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM"))
        threads = len(os.listdir(f"/proc/{d.proc.pid}/task"))
        return dict(name="locald-superd", rss=rss, pss=pss, cpu=cpu, cs=cs, procs=f"1 ({threads} threads)",
                    up=up, note=f"peak RSS {hwm / 1024:.1f} MB")
    finally:
        c.close()
        bl.stop_superd(d, ["benchfoot"])


def run_supervisord(args, tmp, listener):
    exe = shutil.which("supervisord")
    if not exe:
        return None
    d = tmp / "supervisord"
    d.mkdir()
    ports = bl.free_ports(args.services)
    conf = [f"[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\npidfile={d}/pid\n"
            f"childlogdir={d}\n\n[unix_http_server]\nfile={d}/sock\n\n"
            "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
            "supervisor.rpcinterface:make_main_rpcinterface\n"]
    for i, port in enumerate(ports):
        conf.append(f"\n[program:s{i:02d}]\ncommand={listener}\nenvironment=PORT=\"{port}\"\n"
                    "startsecs=0\nautorestart=unexpected\n")
    (d / "supervisord.conf").write_text("".join(conf))
    t0 = time.monotonic()
    p = subprocess.Popen([exe, "-c", str(d / "supervisord.conf")], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bl.wait_ports(ports, timeout=60)
        up = time.monotonic() - t0
        rss, pss, cpu, cs, n = measure(lambda: [p.pid], args)
        return dict(name="supervisord", rss=rss, pss=pss, cpu=cpu, cs=cs, procs="1", up=up,
                    note=subprocess.run([exe, "--version"], capture_output=True,
                                        text=True).stdout.strip())
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            pass
        bl.kill_group(p)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def run_runit(args, tmp, listener):
    exe = shutil.which("runsvdir")
    if not exe:
        return None
    d = tmp / "runit"
    ports = bl.free_ports(args.services)
    for i, port in enumerate(ports):
        sd = d / f"s{i:02d}"
        sd.mkdir(parents=True)
        run = sd / "run"
        run.write_text(f"#!/bin/sh\nPORT={port} exec {listener}\n")
        run.chmod(0o755)
    t0 = time.monotonic()
    p = subprocess.Popen([exe, "-P", str(d)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bl.wait_ports(ports, timeout=60)
        up = time.monotonic() - t0
        # runsvdir and its runsv children; the services are the runsv's children.
        rss, pss, cpu, cs, n = measure(lambda: [p.pid] + children(p.pid), args)
        return dict(name="runit (runsvdir + runsv)", rss=rss, pss=pss, cpu=cpu, cs=cs,
                    procs=f"{n}", up=up, note="runsvdir rescans its directory every 5 s")
    finally:
        p.send_signal(signal.SIGHUP)  # TERM to every runsv, which stops its service
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.5)
        bl.kill_group(p)


def main():
    p = bl.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=50)
    p.add_argument("--idle", type=float, default=10.0, help="idle window, seconds")
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds between all-running and the measurement")
    args = p.parse_args()
    binary = bl.superd_binary(args.build)
    tmp = bl.scratch(args, "bench-superd-footprint-")
    try:
        listener = bl.build_tool("tcp-listen", tmp)
        print(f"superd-footprint: {args.services} TCP listeners, idle window {args.idle:.0f} s, "
              f"{bl.machine_note()}")
        results = [run_superd(args, binary, tmp, listener)]
        for name, fn, how in (("supervisord", run_supervisord, "apt-get install supervisor"),
                              ("runit", run_runit, "apt-get install runit")):
            r = fn(args, tmp, listener)
            if r is None:
                print(f"  {name}: not installed, column skipped ({how})")
            else:
                results.append(r)
        base = results[0]
        rows = []
        for r in results:
            rows.append([r["name"], r["procs"], f"{r['rss'] / 1024:.1f} MB",
                         f"{r['pss'] / 1024:.1f} MB", f"{r['pss'] / base['pss']:.2f}x",
                         f"{r['cpu'] * 1000:.0f} ms ({100 * r['cpu'] / args.idle:.2f}%)",
                         f"{r['cs']} ({r['cs'] / args.idle:.1f}/s)", bl.fmt_ms(r["up"]), r["note"]])
        print()
        bl.table(["supervisor", "processes", "RSS", "PSS", "PSS vs superd", f"CPU in {args.idle:.0f} s idle",
                  "wakeups", "start → all up", ""], rows)
        goal_rss = base["rss"] < 10 * 1024
        print(f"\ngoal: superd RSS < 10 MB -> {'met' if goal_rss else 'MISSED'}; idle CPU ~0 -> "
              f"{base['cpu'] * 1000:.0f} ms in {args.idle:.0f} s, {base['cs']} wakeups")
        print("start → all up: superd = daemon start + ApplyProject(wait); peers = launch until"
              " every port accepts")
    finally:
        bl.cleanup(args, tmp)


if __name__ == "__main__":
    main()
