#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""localctl as a user feels it: `status` latency, and `up -d` from cold.

1. `localctl status` with one project of 50 services (tcp-listen), all running: the wall
   time of the whole command (exec, dynamic loading, one Status call, the table),
   median and p99 over --rounds runs. Floors in the same run: `/bin/true` (the cost of
   exec'ing any program from here) and the Status round trip alone from an already
   connected Python client. Goal (issue 5): < 5 ms median.

2. `localctl up -d examples/demo` from cold (no daemon): wall time until it returns
   (every service ready), minus the services' own start time: along the longest
   depends_on chain, each service's time from "started pid" to "running" as superd's
   log store records them (their own Python start-up and health checks, not locald's
   work). Goal (issue 5): < 300 ms of locald overhead.

No peer (docker compose, overmind, process-compose) is packaged in Debian 12, so the
numbers are absolute, next to those floors.

    /usr/bin/python3 bench/ctl.py [--rounds 200] [--up-rounds 5]
"""

import json
import os
import resource
import shutil
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import benchlib as bl
from locald_bus import Client, pb


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


CPU = []  # CPU time (user + system) of each timed child, in the order run


def timed(argv, env, cwd=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if r.returncode != 0:
        raise SystemExit(f"{argv}: exit {r.returncode}: {r.stderr}")
    return dt


def timed_n(argv, env, n, cwd=None):
    """n runs: (wall times, CPU times)."""
    start = len(CPU)
    wall = [timed(argv, env, cwd) for _ in range(n)]
    return wall, CPU[start:]


def env_for(root):
    rt, st, cf = root / "rt", root / "st", root / "cf"
    return dict(os.environ, LOCALD_RUNTIME_DIR=str(rt), LOCALD_STATE_DIR=str(st),
                LOCALD_CONFIG_DIR=str(cf))


def stop(localctl, env):
    subprocess.run([localctl, "server", "stop"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120)


def bench_status(localctl, tmp, listener, rounds):
    root = tmp / "status"
    root.mkdir()
    env = env_for(root)
    proj = tmp / "st50"
    proj.mkdir()
    name = f"st{uuid.uuid4().hex[:6]}"
    body = [f'[project]\nname = "{name}"\n']
    for i in range(50):
        body.append(f'[services.s{i:02d}]\ncommand = "{listener}"\n')
    (proj / "locald.toml").write_text("".join(body))
    try:
        r = subprocess.run([localctl, "up", "-d", "-q", str(proj)], env=env, capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            raise SystemExit(f"up failed: {r.stderr}")
        for _ in range(10):  # warm the page cache
            timed([localctl, "status"], env, cwd=proj)
        true_t = timed_n(["/bin/true"], env, rounds)
        help_t = timed_n([localctl, "--help"], env, rounds)
        st_t = timed_n([localctl, "status"], env, rounds, cwd=proj)
        js_t = timed_n([localctl, "status", "--json"], env, rounds, cwd=proj)
        env_pb, sv = pb()
        c = Client(root / "rt")
        rt_t = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            c.call(status=sv.Status(project=name))
            rt_t.append(time.perf_counter() - t0)
        c.close()
        return [("/bin/true (exec floor)", true_t),
                ("localctl --help (exec + dynamic loading)", help_t),
                ("Status call alone (Python, connected)", (rt_t, None)),
                ("localctl status", st_t), ("localctl status --json", js_t)]
    finally:
        stop(localctl, env)


def chain_time(svcs, lines):
    """Longest depends_on chain, each service weighted by its own started → running time."""
    started, ready = {}, {}
    for l in lines:
        if l["stream"] != "system":
            continue
        if l["text"].startswith("started pid") and l["service"] not in started:
            started[l["service"]] = l["time_usec"]
        elif l["text"].startswith("running") and l["service"] not in ready:
            ready[l["service"]] = l["time_usec"]
    own = {s: (ready.get(s, 0) - started.get(s, 0)) / 1e6 for s in svcs}
    memo = {}

    def longest(s):
        if s not in memo:
            memo[s] = own[s] + max((longest(d) for d in svcs[s]["depends_on"] if d in svcs),
                                   default=0)
        return memo[s]

    return max(longest(s) for s in svcs), own


def bench_up(localctl, tmp, rounds):
    out = []
    for i in range(rounds):
        root = tmp / f"up{i}"
        root.mkdir()
        env = env_for(root)
        d = tmp / f"demo{i}"
        shutil.copytree(bl.SOURCE_DIR / "examples" / "demo", d)
        name = f"demo-{uuid.uuid4().hex[:6]}"
        t = d / "locald.toml"
        t.write_text(t.read_text().replace('name = "demo"', f'name = "{name}"', 1))
        try:
            wall = timed([localctl, "up", "-d", "-q", str(d)], env)
            st = json.loads(subprocess.run([localctl, "status", "--json", name], env=env,
                                           capture_output=True, text=True).stdout)
            svcs = {s["name"]: s for s in st["projects"][0]["services"]}
            logs = subprocess.run([localctl, "logs", "--json", "-n", "all", f"{name}:"], env=env,
                                  capture_output=True, text=True).stdout
            lines = [json.loads(x) for x in logs.splitlines()]
            chain, own = chain_time(svcs, lines)
            out.append((wall, chain, own))
        finally:
            stop(localctl, env)
    return out


def main():
    p = bl.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--up-rounds", type=int, default=5)
    args = p.parse_args()
    localctl = Path(args.build).resolve() / "ctl" / "localctl"
    if not localctl.exists():
        raise SystemExit(f"{localctl} not found: meson setup {args.build} -Dbuildtype=release "
                         f"&& ninja -C {args.build}")
    tmp = bl.scratch(args, "locald-bench-ctl-")
    try:
        listener = bl.build_tool("tcp-listen", tmp)
        print(f"# {bl.machine_note()}\n")
        print(f"## status, 50 services, {args.rounds} runs each\n")
        rows = []
        for label, (xs, cpu) in bench_status(localctl, tmp, listener, args.rounds):
            rows.append((label, f"{statistics.median(xs) * 1000:.2f} ms",
                         f"{pct(xs, 99) * 1000:.2f} ms",
                         f"{statistics.mean(cpu) * 1000:.2f} ms" if cpu else "-"))
        bl.table(["what", "wall median", "wall p99", "CPU mean"], rows)
        print(f"\n## up -d examples/demo from cold, {args.up_rounds} rounds\n")
        res = bench_up(localctl, tmp, args.up_rounds)
        rows = []
        for wall, chain, own in res:
            rows.append((f"{wall * 1000:.0f} ms", f"{chain * 1000:.0f} ms",
                         f"{(wall - chain) * 1000:.0f} ms",
                         " ".join(f"{k}={v * 1000:.0f}" for k, v in sorted(own.items()))))
        bl.table(["wall", "services' own (chain)", "locald overhead", "per service (ms)"], rows)
        over = [w - c for w, c, _ in res]
        print(f"\nmedian overhead {statistics.median(over) * 1000:.0f} ms (goal < 300 ms)")
    finally:
        bl.cleanup(args, tmp)


if __name__ == "__main__":
    main()
