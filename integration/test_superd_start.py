# SPDX-License-Identifier: MIT
"""locald-superd start order: dependencies gate their dependents on health, independent
branches start in parallel, a failed dependency blocks, stop runs in reverse order."""

import pytest

pytest.importorskip("zmq")
pytest.importorskip("google.protobuf")

from superd_fixtures import *  # noqa: E402,F401,F403

# Sleeps, then listens on $PORT: healthy (tcp) only after the delay.
SLOW_LISTENER = """
import os, socket, sys, time
time.sleep(float(sys.argv[1]))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


def running_time(sd, project, service):
    """When superd noted the service RUNNING (its SYSTEM line "running: …")."""
    for l in sd.system_lines(project, service):
        if l.text.startswith("running"):
            return l.time_usec
    raise AssertionError(f"{service} never noted running: "
                         f"{[l.text for l in sd.system_lines(project, service)]}")


def test_dependency_waits_for_health(sd):
    proj = sd.project(f"""
        [services.db]
        command = "{PY} slow.py 2"
        health_check = {{ type = "tcp", interval = "100ms" }}

        [services.api]
        command = "{PY} slow.py 0"
        depends_on = ["db"]
    """, files={"slow.py": SLOW_LISTENER})
    res = sd.apply(proj)
    states = {s.service: state_name(s.state) for s in res.project.services}
    assert states == {"db": "running", "api": "running"}, res

    st = sd.status(proj)
    db_ready = running_time(sd, proj, "db")
    assert st["api"].start_time_usec > db_ready, (st["api"].start_time_usec, db_ready)
    # db really took its time: it was started well before it turned healthy.
    assert db_ready - st["db"].start_time_usec >= 1_500_000
    # While it waited, api said what it waited for.
    waits = [l.text for l in sd.system_lines(proj, "api") if l.text.startswith("waiting")]
    assert any('"db"' in w for w in waits), waits


def test_parallel_branches_start_together(sd):
    # base ─┬─ b1 (healthy after 2 s) ── c1
    #       └─ b2 (healthy at once)   ── c2
    proj = sd.project(f"""
        [services.base]
        command = "{PY} slow.py 0"

        [services.b1]
        command = "{PY} slow.py 2"
        depends_on = ["base"]
        health_check = {{ type = "tcp", interval = "100ms" }}

        [services.b2]
        command = "{PY} slow.py 0"
        depends_on = ["base"]

        [services.c1]
        command = "{PY} slow.py 0"
        depends_on = ["b1"]

        [services.c2]
        command = "{PY} slow.py 0"
        depends_on = ["b2"]
    """, files={"slow.py": SLOW_LISTENER})
    sd.apply(proj)
    st = sd.status(proj)
    assert all(state_name(s.state) == "running" for s in st.values()), st
    b1_ready = running_time(sd, proj, "b1")
    # Both branches started as soon as base was up; b2 and its dependent did not wait
    # for the slow sibling.
    assert st["b1"].start_time_usec < b1_ready
    assert st["b2"].start_time_usec < b1_ready
    assert running_time(sd, proj, "b2") < b1_ready
    assert st["c2"].start_time_usec < b1_ready
    assert st["c1"].start_time_usec > b1_ready


def test_failed_dependency_blocks_dependents(sd):
    proj = sd.project(f"""
        [services.broken]
        command = "echo cannot open database; exit 3"
        restart = "no"

        [services.api]
        command = "{PY} slow.py 0"
        depends_on = ["broken"]

        [services.web]
        command = "{PY} slow.py 0"
        depends_on = ["api"]

        [services.free]
        command = "{PY} slow.py 0"
    """, files={"slow.py": SLOW_LISTENER})
    sd.apply(proj)
    st = sd.status(proj)
    assert state_name(st["broken"].state) == "failed"
    assert "status 3" in st["broken"].status_reason
    assert state_name(st["api"].state) == "blocked"
    assert '"broken"' in st["api"].status_reason, st["api"].status_reason
    assert st["api"].pid == 0 and st["api"].start_time_usec == 0
    assert state_name(st["web"].state) == "blocked"
    assert '"api"' in st["web"].status_reason
    assert state_name(st["free"].state) == "running"

    # Fixing the dependency (a start request) unblocks the chain.
    sd.write_config(proj, f"""
        [services.broken]
        command = "{PY} slow.py 0"
        restart = "no"

        [services.api]
        command = "{PY} slow.py 0"
        depends_on = ["broken"]

        [services.web]
        command = "{PY} slow.py 0"
        depends_on = ["api"]

        [services.free]
        command = "{PY} slow.py 0"
    """)
    res = sd.apply(proj)
    assert {state_name(s.state) for s in res.project.services} == {"running"}, res


def test_stop_in_reverse_dependency_order(sd):
    proj = sd.project(f"""
        [services.db]
        command = "{PY} slow.py 0"

        [services.api]
        command = "{PY} slow.py 0"
        depends_on = ["db"]

        [services.web]
        command = "{PY} slow.py 0"
        depends_on = ["api"]
    """, files={"slow.py": SLOW_LISTENER})
    sd.apply(proj)
    pids = {n: s.pid for n, s in sd.status(proj).items()}
    assert all(pids.values())

    sub = sd.subscribe(f"service.state.{proj}.")
    rep = sd.call(stop_project=sv.StopProject(project=proj))
    assert {state_name(s.state) for s in rep.stop_project.project.services} == {"stopped"}
    for pid in pids.values():
        assert not pid_alive(pid)

    # Events: each service is sent its signal only after its dependent has stopped.
    order = []
    while True:
        ev = sub.receive(timeout=1.0)
        if ev is None:
            break
        ch = ev.service_state_changed
        order.append((ch.service.service, state_name(ch.service.state)))
    sub.close()
    pos = {e: i for i, e in enumerate(order)}
    for dependent, dependency in (("web", "api"), ("api", "db")):
        assert pos[(dependent, "stopped")] < pos[(dependency, "stopping")], order

    # The stored SYSTEM lines say the same, by time.
    def t(service, prefix):
        return next(l.time_usec for l in sd.system_lines(proj, service)
                    if l.text.startswith(prefix))
    assert t("web", "stopped") <= t("api", "stopping") <= t("api", "stopped")
    assert t("api", "stopped") <= t("db", "stopping")


def test_spawn_failures_are_reported(sd):
    proj = sd.project(f"""
        [services.noexec]
        type = "worker"
        command = ["/nonexistent/program", "--flag"]
        restart = "no"

        [services.nodir]
        type = "worker"
        command = "exec sleep 1000"
        workdir = "does/not/exist"
        restart = "no"

        [services.fine]
        type = "worker"
        command = "exec sleep 1000"
    """)
    sd.apply(proj)
    noexec = sd.wait_state(proj, "noexec", "failed")
    assert "/nonexistent/program" in noexec.status_reason, noexec.status_reason
    assert "No such file" in noexec.status_reason, noexec.status_reason
    nodir = sd.wait_state(proj, "nodir", "failed")
    assert "does/not/exist" in nodir.status_reason, nodir.status_reason
    assert state_name(sd.service(proj, "fine").state) == "running"
    assert sd.call(ping=env_pb.Ping()).pong.daemon == "superd"
