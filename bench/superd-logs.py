#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Log ingestion: one service printing 100-byte lines as fast as it can.

The writer is bench/linegen.c: N lines of 99 bytes + '\\n', each its own zero-padded line
number, in 64 KiB writes. Three ways to take them, timed from start to the last line:

  floor     linegen N | cat > file                      (the kernel pipe and a file)
  ingest    linegen N | logstore-ingest --dir D         (superd's log store alone, no daemon)
  superd    a worker service `linegen N` under locald-superd: ApplyProject, then poll
            Logs(tail, limit 1, stdout) every 10 ms until it returns line N-1

Afterwards superd is stopped (SIGTERM: the store flushes) and its files are read back
record by record: sequence numbers consecutive, stdout payloads 0..N-1 in order. With the
default retention (5 files of 16 MiB) the oldest lines are rotated away by design; those
are accounted for by sequence number (the first kept stdout line L must have seq
L + the system lines before line 0), so "lost" means lost, not rotated.

Goal (issue 3): superd ≥ 0.3 × floor lines/s, 0 lines lost.

    /usr/bin/python3 bench/superd-logs.py [--lines 2000000] [--rounds 3]
"""

import os
import struct
import subprocess
import time
from pathlib import Path

import benchlib as bl

LINE = 100
FILE_HEADER = 40
REC_HEADER = struct.Struct("<IIQQBBH")  # crc, len, seq, time, stream, flags, reserved
STDOUT, STDERR, SYSTEM = 0, 1, 2


def timed(cmd):
    t0 = time.monotonic()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def read_records(logdir, service):
    """Every record of <service>.log*, oldest file first: (seq, stream, payload)."""
    files = sorted(logdir.glob(f"{service}.log*"),
                   key=lambda p: -int(p.name.rsplit(".", 1)[1]) if p.suffix != ".log" else 1)
    for path in files:
        data = path.read_bytes()
        off = FILE_HEADER
        while off + REC_HEADER.size <= len(data):
            _crc, n, seq, _t, stream, _flags, _r = REC_HEADER.unpack_from(data, off)
            start = off + REC_HEADER.size
            if start + n > len(data):
                break
            yield seq, stream, data[start:start + n]
            off = start + n


def verify(logdir, service, n_lines, system_before):
    """(lines stored, lost, problem or None) from the files on disk."""
    expect_seq = None
    first_out = None  # (seq, line number)
    next_line = None
    kept = 0
    for seq, stream, payload in read_records(logdir, service):
        if expect_seq is not None and seq != expect_seq:
            return kept, None, f"sequence gap: {seq} after {expect_seq - 1}"
        expect_seq = seq + 1
        if stream != STDOUT:
            continue
        num = int(payload)
        if first_out is None:
            first_out = (seq, num)
            next_line = num
        if num != next_line:
            return kept, None, f"line {num} where {next_line} was due (seq {seq})"
        next_line += 1
        kept += 1
    if first_out is None:
        return 0, n_lines, "no stdout line stored"
    seq0, line0 = first_out
    if system_before is None and line0 > 0:
        return kept, None, "lines were rotated away and superd's first records were not seen"
    if system_before is not None and seq0 - 1 != line0 + system_before:
        return kept, None, (f"first kept line {line0} has seq {seq0}: expected "
                            f"{line0 + system_before + 1}")
    stored = line0 + kept  # the rotated lines 0..line0-1, then every kept one
    return stored, n_lines - stored, None


def superd_once(args, binary, linegen, root):
    _, sv = bl.pb()
    project = root / "proj"
    project.mkdir(parents=True, exist_ok=True)
    (project / "locald.toml").write_text(
        f'[project]\nname = "benchlogs"\n\n[services.writer]\ntype = "worker"\n'
        f'command = "{linegen} {args.lines}"\nrestart = "never"\n')
    d = bl.start_superd(binary, root / "superd")
    c = d.client()
    stop_at = f"{args.lines - 1:099d}"
    try:
        cpu0 = bl.proc_cpu_ticks(d.proc.pid)
        t0 = time.monotonic()
        c.call(apply_project=sv.ApplyProject(path=str(project), wait=True))
        # The first records, while they are surely still kept: how many superd notes
        # come before line 0 (for the rotation arithmetic in verify()).
        head = c.call(logs=sv.Logs(project="benchlogs", service="writer", limit=50)).logs.lines
        system_before = None
        if head and head[0].seq == 1:
            firsts = [i for i, l in enumerate(head) if l.stream == sv.LOG_STREAM_STDOUT]
            if firsts and head[firsts[0]].text == f"{0:099d}":
                system_before = firsts[0]
        while True:
            tail = c.call(logs=sv.Logs(project="benchlogs", service="writer", tail=True, limit=1,
                                       streams=[sv.LOG_STREAM_STDOUT])).logs.lines
            if tail and tail[-1].text == stop_at:
                break
            if time.monotonic() - t0 > args.timeout:
                raise TimeoutError(f"superd did not store line {args.lines - 1} in {args.timeout}s"
                                   f" (last: {tail[-1].text[-12:] if tail else None})")
            time.sleep(0.01)
        dt = time.monotonic() - t0
        cpu = (bl.proc_cpu_ticks(d.proc.pid) - cpu0) / bl.CLK_TCK
        with open(f"/proc/{d.proc.pid}/status") as f:
            hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM"))
    finally:
        c.close()
        bl.stop_superd(d, ["benchlogs"])
    stored, lost, problem = verify(d.state / "logs" / "benchlogs", "writer", args.lines, system_before)
    return dt, cpu, hwm, stored, lost, problem


def main():
    p = bl.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=2_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=300)
    args = p.parse_args()
    binary = bl.superd_binary(args.build)
    ingest = Path(args.build) / "services" / "superd" / "logstore-ingest"
    tmp = bl.scratch(args, "bench-superd-logs-")
    try:
        linegen = bl.build_tool("linegen", tmp)
        n = args.lines
        print(f"superd-logs: {n} lines of {LINE} bytes, {args.rounds} rounds, {bl.machine_note()}")
        floors, ingests, supers, cpus, hwms, losts, problems = [], [], [], [], [], [], []
        for r in range(args.rounds):
            floors.append(timed(f"{linegen} {n} | cat > {tmp}/floor.out"))
            os.unlink(tmp / "floor.out")
            if ingest.exists():
                ingests.append(timed(f"{linegen} {n} | {ingest} --dir {tmp}/ingest"))
                subprocess.run(["rm", "-rf", str(tmp / "ingest")], check=True)
            dt, cpu, hwm, stored, lost, problem = superd_once(args, binary, linegen, tmp / f"round{r}")
            subprocess.run(["rm", "-rf", str(tmp / f"round{r}")], check=True)
            supers.append(dt)
            cpus.append(cpu)
            hwms.append(hwm)
            losts.append(lost)
            if problem:
                problems.append(problem)
            print(f"  round {r + 1}: floor {bl.fmt_ms(floors[-1])}"
                  + (f", ingest {bl.fmt_ms(ingests[-1])}" if ingests else "")
                  + f", superd {bl.fmt_ms(dt)} (superd CPU {cpu * 1000:.0f} ms, peak RSS"
                  f" {hwm / 1024:.1f} MB),"
                  f" stored {stored}, lost {lost if lost is not None else '?'}"
                  + (f" — {problem}" if problem else ""), flush=True)

        if ingest.exists():
            out = subprocess.run(f"{linegen} {n} | {ingest} --verify", shell=True,
                                 capture_output=True, text=True)
            ingest_lost = next((l.split()[1] for l in out.stdout.splitlines() if l.startswith("lost")),
                               "?")
        f = bl.median(floors)
        rows = [["floor: linegen | cat > file", bl.fmt_ms(f), f"{n / f / 1e6:.2f} M", "1.00x", "-", "-",
                 "0"]]
        if ingests:
            i = bl.median(ingests)
            rows.append(["linegen | logstore-ingest", bl.fmt_ms(i), f"{n / i / 1e6:.2f} M",
                         f"{f / i:.2f}x", "-", "-", ingest_lost])
        s = bl.median(supers)
        lost_s = "?" if any(l is None for l in losts) else str(max(losts))
        rows.append(["superd (worker, Logs)", bl.fmt_ms(s), f"{n / s / 1e6:.2f} M", f"{f / s:.2f}x",
                     f"{bl.median(cpus) * 1000:.0f} ms", f"{max(hwms) / 1024:.1f} MB", lost_s])
        print()
        bl.table(["", "time", "lines/s", "vs floor", "superd CPU", "superd peak RSS", "lost"], rows)
        print(f"\nmedians of {args.rounds}; goal: superd >= 0.30x floor lines/s, 0 lost -> "
              f"{'met' if f / s >= 0.3 and lost_s == '0' else 'MISSED'}")
        if problems:
            print("problems:", *problems, sep="\n  ")
    finally:
        bl.cleanup(args, tmp)


if __name__ == "__main__":
    main()
