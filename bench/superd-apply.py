#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ApplyProject(wait=True) → every service RUNNING, for 50 trivial TCP listeners.

Floor: the same 50 listeners started by a plain shell loop (`PORT=$p tcp-listen &`),
with the driver poll-connecting each port until it accepts. superd: a fresh daemon per
round (started before the clock runs), one project of 50 services, no dependencies,
default health check (TCP on $PORT), ApplyProject(wait=True) timed until its reply,
which comes once every service is RUNNING (checked).

The chain variant puts the 50 in 5 levels of 10, each service depending on all 10 of the
level before; its floor starts a level with the shell loop, waits for its ports, then
starts the next.

Goal (issue 3): superd ≤ 1.2 × floor + 50 ms.

    /usr/bin/python3 bench/superd-apply.py [--rounds 5] [--services 50] [--no-chain]
"""

import subprocess
import time
from pathlib import Path

import benchlib as bl

LEVELS = 5


def write_project(d, name, listener, n, chain):
    d.mkdir(parents=True, exist_ok=True)
    per = n // LEVELS if chain else n
    out = [f'[project]\nname = "{name}"\n']
    names = []
    for i in range(n):
        svc = f"l{i // per}s{i % per:02d}" if chain else f"s{i:02d}"
        names.append(svc)
        out.append(f'[services.{svc}]\ncommand = "{listener}"\n')
        if chain and i >= per:
            level = i // per
            deps = ", ".join(f'"l{level - 1}s{j:02d}"' for j in range(per))
            out.append(f"depends_on = [{deps}]\n")
    (d / "locald.toml").write_text("".join(out))
    return names


def floor_once(listener, n, chain):
    """Shell loop(s) + poll-connect; returns seconds."""
    levels = LEVELS if chain else 1
    per = n // levels
    ports = bl.free_ports(n)
    procs = []
    t0 = time.monotonic()
    try:
        for lv in range(levels):
            lp = ports[lv * per:(lv + 1) * per]
            script = f'for p in {" ".join(map(str, lp))}; do PORT=$p {listener} & done'
            procs.append(subprocess.Popen(["sh", "-c", script], start_new_session=True))
            bl.wait_ports(lp)
        return time.monotonic() - t0
    finally:
        for p in procs:
            bl.kill_group(p)


def superd_once(binary, root, project_dir, n, extra_args=()):
    """Fresh superd; returns (seconds, superd's CPU seconds during the apply, seconds from
    the first service's start to the last one's, as superd reports them)."""
    _, sv = bl.pb()
    d = bl.start_superd(binary, root, extra_args)
    c = d.client()
    try:
        cpu0 = bl.proc_cpu_ticks(d.proc.pid)
        t0 = time.monotonic()
        rep = c.call(timeout=120, apply_project=sv.ApplyProject(path=str(project_dir), wait=True))
        dt = time.monotonic() - t0
        cpu = (bl.proc_cpu_ticks(d.proc.pid) - cpu0) / bl.CLK_TCK
        services = rep.apply_project.project.services
        bad = [f"{s.service}={sv.ServiceState.Name(s.state)}" for s in services
               if s.state != sv.SERVICE_STATE_RUNNING]
        if len(services) != n or bad:
            raise RuntimeError(f"not all RUNNING ({len(services)} services): {bad[:5]}")
        starts = [s.start_time_usec for s in services]
        return dt, cpu, (max(starts) - min(starts)) / 1e6
    finally:
        c.close()
        bl.stop_superd(d, [Path(project_dir).name])


def run_variant(args, binary, tmp, listener, chain, label):
    name = "benchchain" if chain else "benchflat"
    project_dir = tmp / name
    write_project(project_dir, name, listener, args.services, chain)
    floors, supers, cpus, spreads = [], [], [], []
    for r in range(args.rounds):
        floors.append(floor_once(listener, args.services, chain))
        dt, cpu, spread = superd_once(binary, tmp / f"{name}-root{r}", project_dir, args.services,
                              ["--no-cgroups"] if args.no_cgroups else [])
        supers.append(dt)
        cpus.append(cpu)
        spreads.append(spread)
        print(f"  {label} round {r + 1}: floor {bl.fmt_ms(floors[-1])}, superd {bl.fmt_ms(dt)}"
              f" (superd CPU {cpu * 1000:.0f} ms, first to last spawn {bl.fmt_ms(spread)})",
              flush=True)
    f, s = bl.median(floors), bl.median(supers)
    goal = 1.2 * f + 0.050
    return [label, bl.fmt_ms(f), bl.fmt_ms(s), f"{s / f:.2f}x", bl.fmt_ms(goal),
            "met" if s <= goal else "MISSED", f"{bl.median(cpus) * 1000:.0f} ms",
            bl.fmt_ms(bl.median(spreads))]


def main():
    p = bl.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--services", type=int, default=50)
    p.add_argument("--no-chain", action="store_true", help="skip the 5-level dependency variant")
    p.add_argument("--no-cgroups", action="store_true", help="run superd with --no-cgroups")
    args = p.parse_args()
    if args.services % LEVELS:
        p.error(f"--services must be a multiple of {LEVELS}")
    binary = bl.superd_binary(args.build)
    tmp = bl.scratch(args, "bench-superd-apply-")
    try:
        listener = bl.build_tool("tcp-listen", tmp)
        print(f"superd-apply: {args.services} TCP listeners, {args.rounds} rounds, {bl.machine_note()}")
        rows = [run_variant(args, binary, tmp, listener, False, f"{args.services} independent")]
        if not args.no_chain:
            rows.append(run_variant(args, binary, tmp, listener, True,
                                    f"{LEVELS} levels x {args.services // LEVELS}"))
        print()
        bl.table(["variant", "floor (sh loop)", "superd", "ratio", "goal 1.2x+50ms", "", "superd CPU", "spawn spread"],
                 rows)
        print("\nmedians; floor = plain shell loop + poll-connect; superd = ApplyProject(wait=True)"
              " until all RUNNING;\nsuperd CPU = its utime+stime during the apply; spawn spread ="
              " first to last service start")
    finally:
        bl.cleanup(args, tmp)


if __name__ == "__main__":
    main()
