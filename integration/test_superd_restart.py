# SPDX-License-Identifier: MIT
"""locald-superd restarts and stops: back-off and crash loops, restart policies, liveness,
stop escalation to SIGKILL, stop_signal, and double-forked grandchildren (cgroup)."""

import os
import re

import pytest

pytest.importorskip("zmq")
pytest.importorskip("google.protobuf")

from superd_fixtures import *  # noqa: E402,F401,F403

# Answers 200 on its first run until `sick` exists, 500 afterwards; later runs always 200.
FLAKY_HTTP = """
import http.server, os

first_run = not os.path.exists("ran-once")
open("ran-once", "w").close()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        sick = first_run and os.path.exists("sick")
        self.send_response(500 if sick else 200)
        self.end_headers()
    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def test_crash_loop_backs_off_then_fails(sd):
    proj = sd.project("""
        [services.crasher]
        type = "worker"
        command = "echo boom; exit 1"
        restart = { policy = "on-failure", max_restarts = 3, backoff = "100ms" }
    """)
    sd.apply(proj)
    s = sd.wait_state(proj, "crasher", "failed")
    assert s.restarts == 3, s
    assert "crash loop" in s.status_reason, s.status_reason
    assert "boom" in s.status_reason
    assert s.last_exit.exited and s.last_exit.exit_code == 1
    # Four runs, and the delay doubled between them.
    sys_lines = [l.text for l in sd.system_lines(proj, "crasher")]
    assert sum(t.startswith("started pid") for t in sys_lines) == 4, sys_lines
    delays = [m.group(1) for t in sys_lines if (m := re.search(r"restarting in ([\d.]+)s", t))]
    assert delays == ["0.1", "0.2", "0.4"], sys_lines
    out = [l.text for l in sd.logs(proj, "crasher", streams=["stdout"])]
    assert out == ["boom"] * 4


def test_restart_no_fails_at_once(sd):
    proj = sd.project("""
        [services.once]
        type = "worker"
        command = "echo bad; exit 2"
        restart = "no"
    """)
    sd.apply(proj)
    s = sd.wait_state(proj, "once", "failed")
    assert s.restarts == 0
    assert "exited with status 2" in s.status_reason
    assert sum(l.text.startswith("started pid") for l in sd.system_lines(proj, "once")) == 1


def test_clean_exit_is_exited_not_restarted(sd):
    proj = sd.project("""
        [services.migrate]
        type = "worker"
        command = "echo migrated"
        restart = "on-failure"
    """)
    sd.apply(proj)
    s = sd.wait_state(proj, "migrate", "exited")
    assert s.restarts == 0 and s.pid == 0
    assert s.last_exit.exited and s.last_exit.exit_code == 0
    assert sum(l.text.startswith("started pid") for l in sd.system_lines(proj, "migrate")) == 1


def test_restart_always_restarts_clean_exit(sd):
    proj = sd.project("""
        [services.tick]
        type = "worker"
        command = "echo tick; sleep 0.2"
        restart = { policy = "always", backoff = "100ms", max_restarts = 0 }
    """)
    sd.apply(proj)
    s = wait_until(lambda: (s := sd.service(proj, "tick")).restarts >= 3 and s,
                   what="three restarts")
    assert state_name(s.state) in ("running", "backoff", "waiting", "starting"), s


def test_liveness_failure_restarts(sd):
    proj = sd.project(f"""
        [services.web]
        command = "{PY} flaky.py"
        health_check = {{ type = "http", path = "/", liveness = true, interval = "200ms", retries = 2 }}
        restart = {{ policy = "on-failure", backoff = "100ms" }}
    """, files={"flaky.py": FLAKY_HTTP})
    sd.apply(proj)
    first = sd.wait_state(proj, "web", "running")
    assert first.restarts == 0
    (sd.dir(proj) / "sick").touch()
    s = sd.wait_state(proj, "web", "running", pred=lambda s: s.restarts >= 1 and s.pid)
    assert s.pid != first.pid
    assert not pid_alive(first.pid)
    lines = [l.text for l in sd.system_lines(proj, "web")]
    assert any(t.startswith("unhealthy") for t in lines), lines
    assert any("(unhealthy)" in t for t in lines if t.startswith("stopping")), lines


def test_stop_escalates_to_sigkill(sd):
    proj = sd.project("""
        [services.stubborn]
        type = "worker"
        command = "trap '' TERM; echo ignoring TERM; while :; do sleep 0.1; done"
        stop_timeout = "1s"
    """)
    sd.apply(proj)
    s = sd.wait_state(proj, "stubborn", "running")
    sd.wait_log(proj, "stubborn", lambda l: l.text == "ignoring TERM")
    pid = s.pid
    rep = sd.call(stop_service=sv.StopService(project=proj, service="stubborn"))
    s = rep.stop_service.service
    assert state_name(s.state) == "stopped", s
    assert s.pid == 0
    assert not pid_alive(pid)
    assert s.last_exit.signal_name == "SIGKILL", s.last_exit
    lines = [l.text for l in sd.system_lines(proj, "stubborn")]
    assert any("did not stop within 1.0s" in t for t in lines), lines


def test_stop_signal(sd):
    proj = sd.project(f"""
        [services.polite]
        type = "worker"
        command = "exec {PY} sig.py"
        stop_signal = "SIGINT"
    """, files={"sig.py": """
        import signal, sys, time
        def on(sig, frame):
            open("marker", "w").write(signal.Signals(sig).name)
            sys.exit(0)
        signal.signal(signal.SIGINT, on)
        signal.signal(signal.SIGTERM, on)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """})
    sd.apply(proj)
    sd.wait_log(proj, "polite", lambda l: l.text == "ready")
    rep = sd.call(stop_service=sv.StopService(project=proj, service="polite"))
    assert state_name(rep.stop_service.service.state) == "stopped"
    assert (sd.dir(proj) / "marker").read_text() == "SIGINT"
    assert rep.stop_service.service.last_exit.exited
    assert rep.stop_service.service.last_exit.exit_code == 0


def test_double_forked_grandchild_dies_with_the_service(sd):
    if os.geteuid() != 0:
        pytest.skip("service cgroups need root here")
    proj = sd.project("""
        [services.forker]
        type = "worker"
        command = "./forker.sh"
    """, files={"forker.sh": """
        #!/bin/sh
        setsid sh -c 'echo $$ > gc.pid; exec sleep 1000' &
        exec sleep 1000
    """})
    sd.apply(proj)
    s = sd.wait_state(proj, "forker", "running")
    assert s.cgroup, "superd runs without service cgroups here"
    gc_file = sd.dir(proj) / "gc.pid"
    gc = int(wait_until(lambda: gc_file.exists() and gc_file.read_text().strip(),
                        what="gc.pid"))
    assert pid_alive(gc)
    # It really escaped the service's session and process group.
    assert os.getsid(gc) != os.getsid(s.pid)
    assert str(gc) in open(os.path.join(s.cgroup, "cgroup.procs")).read().split()

    rep = sd.call(stop_service=sv.StopService(project=proj, service="forker"))
    assert state_name(rep.stop_service.service.state) == "stopped"
    assert not pid_alive(s.pid)
    wait_until(lambda: not pid_alive(gc), timeout=10, what=f"grandchild {gc} to die")

    # And when the main process exits on its own, what it left behind goes too.
    (sd.dir(proj) / "gc.pid").unlink()
    sd.write_config(proj, """
        [services.forker]
        type = "worker"
        command = "setsid sh -c 'echo $$ > gc.pid; exec sleep 1000' & while [ ! -s gc.pid ]; do sleep 0.05; done; exit 0"
    """)
    sd.apply(proj)
    sd.wait_state(proj, "forker", "exited")
    gc = int(gc_file.read_text().strip())
    wait_until(lambda: not pid_alive(gc), timeout=10, what=f"grandchild {gc} to die")
