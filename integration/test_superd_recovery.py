# SPDX-License-Identifier: MIT
"""locald-superd crash safety: after `kill -9` of superd and a restart, running services
are re-adopted (same pids, no second copy), their output written meanwhile is not lost,
services that died meanwhile are started again, and nothing is orphaned."""

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("zmq")
pytest.importorskip("google.protobuf")

from superd_fixtures import *  # noqa: E402,F401,F403

QUIET = """
import sys, time
while True:
    time.sleep(1)
"""

CHATTY = """
import sys, time
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.1)
"""

SLOW_LISTENER = """
import os, socket, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(16)
while True:
    s.accept()[0].close()
"""


def processes_with(marker):
    """pids of processes whose command line contains marker (argv, not a shell's -c)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv and pid_alive(int(p)):
            found.append(int(p))
    return found


def counters(sd, proj):
    return [int(l.text) for l in sd.logs(proj, "chatty", streams=["stdout"])]


def test_kill9_readopts_and_loses_no_output(sd):
    mark = uuid.uuid4().hex[:12]  # counting processes must see only ours
    proj = sd.project(f"""
        [services.quiet]
        type = "worker"
        command = "exec {PY} quiet.py quiet-{mark}"

        [services.chatty]
        type = "worker"
        command = "exec {PY} chatty.py chatty-{mark}"

        [services.victim]
        type = "worker"
        command = "exec sleep 1000"
    """, files={"quiet.py": QUIET, "chatty.py": CHATTY})
    sd.apply(proj)
    before = sd.status(proj)
    assert {state_name(s.state) for s in before.values()} == {"running"}
    wait_until(lambda: len(counters(sd, proj)) >= 5, what="chatty output")

    sd.kill9()
    # Services outlive superd.
    for name in ("quiet", "chatty", "victim"):
        assert pid_alive(before[name].pid), name
    # One dies while nobody watches.
    os.kill(before["victim"].pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(before["victim"].pid), what="victim to die")
    time.sleep(1.0)  # chatty writes ~10 lines into its FIFO meanwhile

    sd.start()
    after = sd.status(proj)
    assert after["quiet"].pid == before["quiet"].pid
    assert after["chatty"].pid == before["chatty"].pid
    assert state_name(after["quiet"].state) == "running"
    assert state_name(after["chatty"].state) == "running"
    assert processes_with(f"quiet-{mark}") == [before["quiet"].pid]
    assert processes_with(f"chatty-{mark}") == [before["chatty"].pid]

    # The dead one is started again (a new process).
    v = sd.wait_state(proj, "victim", "running", pred=lambda s: s.pid != 0)
    assert v.pid != before["victim"].pid

    # The counter goes on in the logs without a hole, across the restart.
    last_before = max(counters(sd, proj))
    wait_until(lambda: max(counters(sd, proj)) >= last_before + 15, what="chatty to go on")
    got = counters(sd, proj)
    assert got == list(range(1, len(got) + 1)), got

    # Stopping through the new superd stops the adopted processes too.
    rep = sd.call(stop_project=sv.StopProject(project=proj))
    assert {state_name(s.state) for s in rep.stop_project.project.services} == {"stopped"}
    for name in ("quiet", "chatty"):
        assert not pid_alive(before[name].pid), name
    assert not pid_alive(v.pid)


def test_kill9_while_a_dependency_is_starting(sd):
    # db is not ready yet when superd dies; after the restart api must still wait for it.
    proj = sd.project(f"""
        [services.db]
        command = "exec {PY} slow.py go"
        health_check = {{ type = "tcp", interval = "100ms" }}

        [services.api]
        type = "worker"
        command = "exec sleep 1000"
        depends_on = ["db"]
    """, files={"slow.py": SLOW_LISTENER})
    sd.apply(proj, wait=False)
    db = sd.wait_state(proj, "db", "starting")
    sd.kill9()
    sd.start()
    st = sd.status(proj)
    assert st["db"].pid == db.pid
    assert state_name(st["api"].state) == "waiting", st["api"]
    assert st["api"].pid == 0
    (sd.dir(proj) / "go").touch()
    sd.wait_state(proj, "api", "running")
    st = sd.status(proj)
    assert state_name(st["db"].state) == "running"
    assert st["db"].pid == db.pid


def test_kill9_twice_and_shutdown_leaves_nothing(sd):
    proj = sd.project(f"""
        [services.a]
        type = "worker"
        command = "exec {PY} quiet.py"

        [services.b]
        type = "worker"
        command = "./fork.sh"
    """, files={"quiet.py": QUIET, "fork.sh": """
        #!/bin/sh
        setsid sleep 1000 &
        exec sleep 1000
    """})
    sd.apply(proj)
    first = sd.status(proj)
    for _ in range(2):
        sd.kill9()
        sd.start()
        st = sd.status(proj)
        assert {n: s.pid for n, s in st.items()} == {n: s.pid for n, s in first.items()}
    # A Shutdown call stops every service, adopted ones included, then superd exits.
    sd.call(shutdown=sv.Shutdown())
    assert sd.daemon.proc.wait(timeout=30) == 0
    for s in first.values():
        assert not pid_alive(s.pid)
    # (the fixture's teardown checks that the double-forked sleep is gone too)


FLAKY_HTTP = """
import http.server, os

first_run = not os.path.exists("ran-once")
open("ran-once", "w").close()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if first_run and os.path.exists("sick") else 200)
        self.end_headers()
    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""

NOTIFY_TWICE = """
import os, socket, time

def notify(msg):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(msg.encode(), addr)
    except OSError:
        pass
    s.close()

notify("READY=1\\nSTATUS=first")
while not os.path.exists("again"):
    time.sleep(0.05)
while True:
    notify("STATUS=second")
    time.sleep(0.2)
"""


def test_health_checks_resume_after_kill9(sd):
    proj = sd.project(f"""
        [services.web]
        command = "exec {PY} flaky.py"
        health_check = {{ type = "http", liveness = true, interval = "200ms", retries = 2 }}
        restart = {{ policy = "on-failure", backoff = "100ms" }}

        [services.note]
        type = "worker"
        command = "exec {PY} note.py"
        health_check = {{ type = "notify" }}
    """, files={"flaky.py": FLAKY_HTTP, "note.py": NOTIFY_TWICE})
    sd.apply(proj)
    before = sd.status(proj)
    assert before["note"].health_detail == "first"
    sd.kill9()
    sd.start()
    st = sd.status(proj)
    assert st["web"].pid == before["web"].pid and st["note"].pid == before["note"].pid
    assert state_name(st["web"].state) == "running"
    # The notify socket is back: STATUS= still reaches status.
    (sd.dir(proj) / "again").touch()
    sd.wait_state(proj, "note", "running", pred=lambda s: s.health_detail == "second")
    # Liveness still watches the re-adopted web.
    (sd.dir(proj) / "sick").touch()
    s = sd.wait_state(proj, "web", "running", pred=lambda s: s.restarts >= 1 and s.pid)
    assert s.pid != before["web"].pid
    assert not pid_alive(before["web"].pid)


def test_kill9_with_a_pty_service(sd):
    # A PTY cannot be handed over: its terminal dies with superd. The service must come
    # back one way or the other, once, and nothing of the old one may linger.
    mark = uuid.uuid4().hex[:12]
    proj = sd.project(f"""
        [services.tty]
        type = "worker"
        command = "exec {PY} quiet.py tty-{mark}"
        pty = true
        restart = {{ policy = "on-failure", backoff = "100ms" }}
    """, files={"quiet.py": QUIET})
    sd.apply(proj)
    before = sd.service(proj, "tty")
    sd.kill9()
    sd.start()
    s = sd.wait_state(proj, "tty", "running", pred=lambda s: s.pid != 0)
    wait_until(lambda: processes_with(f"tty-{mark}") == [s.pid], timeout=10,
               what="exactly one copy of the pty service")
    if s.pid != before.pid:
        assert not pid_alive(before.pid)
