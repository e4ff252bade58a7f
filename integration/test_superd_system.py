# SPDX-License-Identifier: MIT
"""Embedded mode: superd runs locald's own daemons as the built-in `system` project.

These tests stand a small notify-ready program in for locald-proxyd ($LOCALD_PROXYD), so
they test superd's side: the project exists, the daemon is supervised (restarted when it
dies), it is told the proxy ports superd chose, and service URLs carry those ports. The
real proxyd under superd is tested in test_proxyd_*.py."""

import json
import os
import signal
import subprocess
import textwrap

import pytest

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
    assert set(_system(sd)) - {"fsd"} == {"proxyd"}


def test_no_embedded_means_no_system_project(sd):
    sd.start()
    rep = sd.call(status=sv.Status())
    assert "system" not in [p.name for p in rep.status.projects]


# ---- locald-fsd as a system service ----

def _need_fuse():
    if os.geteuid() != 0 or not os.access("/dev/fuse", os.R_OK | os.W_OK):
        pytest.skip("needs root and /dev/fuse for real FUSE mounts")


def _ctl_fs(sd, localctl, *args, check=True):
    env = dict(os.environ, LOCALD_RUNTIME_DIR=str(sd.runtime), LOCALD_STATE_DIR=str(sd.state))
    r = subprocess.run([str(localctl), "fs", *map(str, args)], env=env, capture_output=True,
                       text=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def _overlay_dirs(tmp_path):
    d = {n: tmp_path / n for n in ("lower", "upper", "work", "mnt")}
    for p in d.values():
        p.mkdir()
    (d["lower"] / "hello.txt").write_text("from the lower\n")
    return d


def _read_or_none(path):
    try:
        return path.read_text()
    except OSError:
        return None


def test_system_project_supervises_fsd_and_its_mounts_survive_a_crash(sd, tmp_path, build_binary):
    _need_fuse()
    localctl = build_binary("ctl/localctl")
    exe, log = _fake(tmp_path)
    sd.start(embedded=True, env={"LOCALD_PROXYD": str(exe), "FAKE_PROXYD_LOG": str(log)})
    first = sd.wait_state("system", "fsd", "running").pid
    d = _overlay_dirs(tmp_path)
    try:
        _ctl_fs(sd, localctl, "mount", d["lower"], "--upper", d["upper"], "--work", d["work"],
                "--mountpoint", d["mnt"])
        assert (d["mnt"] / "hello.txt").read_text() == "from the lower\n"
        (d["mnt"] / "new.txt").write_text("written through the overlay\n")
        # fsd dies: superd restarts it and the new one re-creates the mount
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: (s := _system(sd)["fsd"]).state == sv.SERVICE_STATE_RUNNING
                   and s.pid != first, timeout=15, what="fsd restarted")
        wait_until(lambda: _read_or_none(d["mnt"] / "new.txt") == "written through the overlay\n",
                   timeout=15, what="the mount re-created by the new fsd")
        ls = json.loads(_ctl_fs(sd, localctl, "ls", "--json").stdout)
        assert [m["mountpoint"] for m in ls] == [str(d["mnt"])]
        _ctl_fs(sd, localctl, "unmount", d["mnt"])
        assert not os.path.ismount(d["mnt"])
        assert (d["upper"] / "new.txt").read_text() == "written through the overlay\n"
    finally:
        subprocess.run(["umount", "-l", str(d["mnt"])], stderr=subprocess.DEVNULL)


def test_supervised_fsd_takes_over_from_one_localctl_started(sd, tmp_path, build_binary):
    _need_fuse()
    localctl = build_binary("ctl/localctl")
    d = _overlay_dirs(tmp_path)
    try:
        # no superd yet: `localctl fs mount` starts a detached fsd of its own
        sd.daemon.stop()
        _ctl_fs(sd, localctl, "mount", d["lower"], "--upper", d["upper"], "--work", d["work"],
                "--mountpoint", d["mnt"])
        detached = int((sd.runtime / "fsd.lock").read_text())
        exe, log = _fake(tmp_path)
        sd.start(embedded=True, env={"LOCALD_PROXYD": str(exe), "FAKE_PROXYD_LOG": str(log)})
        s = sd.wait_state("system", "fsd", "running")
        assert s.pid != detached and "standing by" in s.health_detail
        assert (d["mnt"] / "hello.txt").read_text() == "from the lower\n"  # still served
        os.kill(detached, signal.SIGTERM)
        wait_until(lambda: int((sd.runtime / "fsd.lock").read_text() or 0) == s.pid,
                   timeout=15, what="the supervised fsd took the lock")
        wait_until(lambda: _read_or_none(d["mnt"] / "hello.txt") == "from the lower\n",
                   timeout=15, what="the mount re-created by the supervised fsd")
        assert _system(sd)["fsd"].pid == s.pid
        _ctl_fs(sd, localctl, "unmount", d["mnt"])
    finally:
        subprocess.run(["umount", "-l", str(d["mnt"])], stderr=subprocess.DEVNULL)
