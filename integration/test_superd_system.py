# SPDX-License-Identifier: MIT
"""Embedded mode: superd runs locald's own daemons as the built-in `system` project.

These tests stand a small notify-ready program in for locald-proxyd ($LOCALD_PROXYD), so
they test superd's side: the project exists, the daemon is supervised (restarted when it
dies), it is told the proxy ports superd chose, and service URLs carry those ports. The
real proxyd under superd is tested in test_proxyd_*.py."""

import os
import signal
import textwrap

from superd_fixtures import *  # noqa: F401,F403

FAKE = textwrap.dedent("""\
    #!/usr/bin/python3
    import os, socket, time
    with open(os.environ["FAKE_PROXYD_LOG"], "a") as f:
        f.write(f"{os.getpid()} {os.environ['LOCALD_HTTP_PORT']} {os.environ['LOCALD_HTTPS_PORT']}\\n")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"READY=1\\nSTATUS=listening", os.environ["NOTIFY_SOCKET"])
    while True:
        time.sleep(60)
    """)


def _fake(tmp_path):
    exe = tmp_path / "fake-proxyd"
    exe.write_text(FAKE)
    exe.chmod(0o755)
    return exe, tmp_path / "fake.log"


def _system(sd):
    rep = sd.call(status=sv.Status(project="system"))
    (ps,) = rep.status.projects
    return {s.service: s for s in ps.services}


def test_system_project_runs_proxyd_on_the_ports_superd_chose(sd, tmp_path):
    exe, log = _fake(tmp_path)
    sd.start(embedded=True, env={"LOCALD_PROXYD": str(exe), "FAKE_PROXYD_LOG": str(log),
                                 "LOCALD_HTTP_PORT": "18080", "LOCALD_HTTPS_PORT": "18443"})
    p = sd.wait_state("system", "proxyd", "running")
    assert p.health_source == sv.HEALTH_SOURCE_NOTIFY
    assert "listening" in p.health_detail
    pid, http, https = log.read_text().split()
    assert (http, https) == ("18080", "18443")
    # Status of everything lists it; user services' URLs carry the proxy's https port.
    name = sd.project('''
        [services.web]
        command = "exec /usr/bin/python3 -m http.server $PORT"
    ''')
    sd.apply(name)
    web = sd.wait_state(name, "web", "running")
    assert web.url == f"https://{name}.localhost:18443"  # "web" is the project domain
    rep = sd.call(status=sv.Status())
    assert "system" in [p.name for p in rep.status.projects]


def test_system_proxyd_is_restarted_when_it_dies(sd, tmp_path):
    exe, log = _fake(tmp_path)
    sd.start(embedded=True, env={"LOCALD_PROXYD": str(exe), "FAKE_PROXYD_LOG": str(log)})
    first = sd.wait_state("system", "proxyd", "running").pid
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: (s := _system(sd)["proxyd"]).state == sv.SERVICE_STATE_RUNNING
               and s.pid != first, timeout=15, what="proxyd restarted")
    # free ports were chosen (LOCALD_*_PORT=0) and kept across the restart
    lines = log.read_text().split("\n")
    assert lines[0].split()[1:] == lines[1].split()[1:]
    assert all(int(x) > 1024 for x in lines[0].split()[1:])


def test_project_name_system_is_reserved(sd, tmp_path):
    exe, log = _fake(tmp_path)
    sd.start(embedded=True, env={"LOCALD_PROXYD": str(exe), "FAKE_PROXYD_LOG": str(log)})
    sd.wait_state("system", "proxyd", "running")
    d = tmp_path / "mine"
    d.mkdir()
    (d / "locald.toml").write_text('[project]\nname = "system"\n\n[services.x]\ncommand = "sleep 100"\n')
    try:
        sd.call(apply_project=sv.ApplyProject(path=str(d), wait=True))
        raise AssertionError("applying a project named system succeeded")
    except BusError as e:
        assert "reserved" in str(e)
    assert set(_system(sd)) == {"proxyd"}


def test_no_embedded_means_no_system_project(sd):
    sd.start()
    rep = sd.call(status=sv.Status())
    assert "system" not in [p.name for p in rep.status.projects]
