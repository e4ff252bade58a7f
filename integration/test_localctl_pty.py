# SPDX-License-Identifier: MIT
"""`localctl up` in the foreground on a terminal (a pseudo-terminal): the progress lines
redrawn in place, the URLs, the logs, and Ctrl-C stopping every service."""

import re
import time

from localctl_harness import alive, lc  # noqa: F401  (fixture)

CURSOR_UP = re.compile(rb"\x1b\[(\d+)A")


def test_foreground_up_ctrl_c_stops_everything(lc):
    demo = lc.demo()
    p = lc.pty_spawn("up", cwd=demo.dir)
    try:
        p.wait_for(r"following logs; Ctrl-C stops", timeout=90)
        out = p.text()
        # Progress: one line per service, redrawn in place (cursor up by the number of
        # rows), each ending "ready" with its elapsed time.
        ups = {int(m.group(1)) for m in CURSOR_UP.finditer(p.buf)}
        assert ups == {4}, ups
        last_frame = p.buf[p.buf.rindex(b"\x1b[4A"):].decode(errors="replace")
        last_frame = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", last_frame)
        for s in ("db", "api", "web", "ticker"):
            assert re.search(rf"✓ {s}\s+\d+\.\ds\s+ready", last_frame), last_frame
        assert "checking health (http)" in out  # api's explicit check was shown
        assert "waiting for deps" in out
        assert f"https://{demo.name}.localhost" in out
        # Logs follow, prefixed and coloured per service.
        p.wait_for(r"ticker \|\x1b\[0m ticker: \d+ visits", timeout=30)

        pids = lc.project_pids()
        assert len(pids) >= 4, pids
        superd = lc.superd_pids()
        assert len(superd) == 1

        p.write(b"\x03")  # Ctrl-C, delivered by the terminal to the foreground group
        assert p.wait(timeout=60) == 0, p.text()[-2000:]
        assert f"{demo.name} stopped" in p.text()
        # Every service process is gone (no orphans); superd itself keeps running.
        deadline = time.monotonic() + 5
        while any(alive(x) for x in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [x for x in pids if alive(x)] == []
        assert lc.project_pids() == []
        assert lc.superd_pids() == superd
        svcs = lc.services(demo.name)
        assert all(s["state"] == "stopped" for s in svcs.values()), svcs
    finally:
        p.kill()


def test_second_ctrl_c_exits_at_once(lc):
    proj = lc.project(
        '[services.slow]\ntype = "worker"\n'
        "command = \"trap 'sleep 30' TERM; while :; do sleep 1; done\"\n"
        'stop_timeout = "20s"\n')
    p = lc.pty_spawn("up", cwd=proj.dir)
    try:
        p.wait_for(r"following logs", timeout=60)
        p.write(b"\x03")
        p.wait_for(r"stopping .*Ctrl-C again", timeout=10)
        t0 = time.monotonic()
        p.write(b"\x03")
        rc = p.wait(timeout=10)
        assert rc == 130
        assert time.monotonic() - t0 < 5  # not the 20 s stop timeout
    finally:
        p.kill()


def test_no_color_on_a_terminal(lc):
    proj = lc.project('[services.w]\ntype = "worker"\ncommand = "sleep 600"\n')
    p = lc.pty_spawn("--no-color", "up", "-d", cwd=proj.dir)
    try:
        assert p.wait(timeout=60) == 0
        text = p.buf.replace(b"\x1b[2K", b"").replace(b"\r", b"")
        text = CURSOR_UP.sub(b"", text)
        assert b"\x1b[3" not in text and b"\x1b[1m" not in text, text
        assert b"w" in text and b"ready" in text
    finally:
        p.kill()


def test_foreground_up_ends_when_stopped_elsewhere(lc):
    proj = lc.project('[services.w]\ntype = "worker"\ncommand = "sleep 600"\n')
    p = lc.popen("up", proj.dir)
    try:
        deadline = time.monotonic() + 60
        while lc.run("status", proj.name).returncode != 0 or \
                lc.services(proj.name)["w"]["state"] != "running":
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.1)
        time.sleep(0.5)  # `up` is following by now
        assert lc.run("down", proj.name).returncode == 0
        assert p.wait(timeout=20) == 0
        assert f"every service of {proj.name} was stopped" in p.stderr.read()

        p = lc.popen("up", proj.dir)
        while lc.services(proj.name)["w"]["state"] != "running":
            assert p.poll() is None
            time.sleep(0.1)
        time.sleep(0.5)
        assert lc.run("server", "stop").returncode == 0
        # superd stops the services before it exits: `up` sees either first.
        rc = p.wait(timeout=20)
        err = p.stderr.read().splitlines()
        assert (rc, rc == 0 and f"every service of {proj.name} was stopped" in err
                or rc == 3 and "error: locald-superd stopped" in err) == (rc, True), err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
