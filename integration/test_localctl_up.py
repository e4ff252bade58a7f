# SPDX-License-Identifier: MIT
"""`localctl up` / `down` as a user runs them: the demo, broken configs, Procfile-only
projects, failures, and what happens when locald is not running."""

import json
import subprocess
import time
import urllib.request

from localctl_harness import lc  # noqa: F401  (fixture)

SERVICES = {"db", "api", "web", "ticker"}


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def test_up_detach_demo_then_down(lc):
    demo = lc.demo()
    r = lc.run("up", "-d", demo.dir)
    assert r.returncode == 0, r.stdout + r.stderr
    # Not a TTY: plain progress lines, every service reaches "ready", then the URLs.
    out = r.stdout
    for s in SERVICES:
        assert any(line.split()[1:2] == [s] and line.rstrip().endswith("ready")
                   for line in out.splitlines()), out
    assert "\x1b[" not in out  # no escape sequences when stdout is not a terminal
    assert f"https://{demo.name}.localhost" in out
    assert f"https://api.{demo.name}.localhost" in out

    svcs = lc.services(demo.name)
    assert set(svcs) == SERVICES
    assert all(s["state"] == "running" for s in svcs.values()), svcs
    # The front end answers, through the API, which needs db.
    status, body = http_get(f"http://127.0.0.1:{svcs['web']['port']}/")
    assert status == 200 and "visits so far" in body

    # `up` again is idempotent: nothing restarts, also when typed in another directory
    # (the shell's PWD/OLDPWD differ).
    r = lc.run("up", "-d", cwd=demo.dir, env={"PWD": str(demo.dir), "OLDPWD": "/"})
    assert r.returncode == 0, r.stderr
    again = lc.services(demo.name)
    assert {k: v["pid"] for k, v in again.items()} == {k: v["pid"] for k, v in svcs.items()}

    r = lc.run("down", cwd=demo.dir)
    assert r.returncode == 0, r.stderr
    svcs = lc.services(demo.name)
    assert all(s["state"] == "stopped" and s["pid"] is None for s in svcs.values()), svcs
    assert lc.project_pids() == []


def test_up_broken_config_leaves_running_project_alone(lc):
    demo = lc.demo()
    assert lc.run("up", "-d", demo.dir).returncode == 0
    before = {k: v["pid"] for k, v in lc.services(demo.name).items()}

    text = demo.toml.read_text()
    demo.toml.write_text(text.replace('command = "python3 db.py"', "command = 42", 1))
    lineno = next(i for i, l in enumerate(demo.toml.read_text().splitlines(), 1)
                  if l.startswith("command = 42"))
    r = lc.run("up", "-d", cwd=demo.dir)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith(f"error: locald.toml:{lineno}:"), lines
    assert "command" in lines[0]
    assert lines[1].startswith("hint: "), lines
    assert r.stdout == ""

    after = lc.services(demo.name)
    assert {k: v["pid"] for k, v in after.items()} == before
    assert all(s["state"] == "running" for s in after.values())


def test_up_procfile_only(lc):
    proj = lc.procfile_project(
        "web: exec python3 -m http.server --bind 127.0.0.1 $PORT\n"
        "clock: while :; do echo tick; sleep 1; done\n")
    r = lc.run("up", "-d", cwd=proj.dir)
    assert r.returncode == 0, r.stdout + r.stderr
    svcs = lc.services(proj.name)
    assert set(svcs) == {"web", "clock"}
    assert svcs["web"]["type"] == "exec" and svcs["web"]["port"]
    assert svcs["web"]["url"] == f"https://{proj.name}.localhost"
    assert svcs["clock"]["type"] == "worker" and svcs["clock"]["port"] is None
    status, _ = http_get(f"http://127.0.0.1:{svcs['web']['port']}/")
    assert status == 200
    r = lc.run("logs", "clock", "-n", "all", cwd=proj.dir)
    deadline = time.monotonic() + 10
    while "tick" not in r.stdout and time.monotonic() < deadline:
        time.sleep(0.2)
        r = lc.run("logs", "clock", "-n", "all", cwd=proj.dir)
    assert "clock | tick" in r.stdout


def test_up_detach_names_the_failed_service(lc):
    proj = lc.project(
        '[services.ok]\ncommand = "sleep 600"\ntype = "worker"\n\n'
        '[services.broken]\ncommand = "echo cannot open the frobnicator >&2; exit 3"\n'
        'restart = "no"\n')
    r = lc.run("up", "-d", proj.dir)
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr
    assert 'error: service "broken" failed' in err, err
    assert "hint: " in err
    assert "cannot open the frobnicator" in err  # its last log lines


def test_up_unknown_service_and_missing_project(lc, tmp_path):
    demo = lc.demo()
    r = lc.run("up", "-d", demo.dir, "nope")
    assert r.returncode == 4
    assert r.stderr.startswith(f'error: project {demo.name} has no service "nope"')
    empty = tmp_path / "empty"
    empty.mkdir()
    r = lc.run("up", "-d", cwd=empty)
    assert r.returncode == 4
    assert r.stderr.splitlines()[0].startswith("error: no locald.toml or Procfile in")
    assert r.stderr.splitlines()[1].startswith("hint: ")
    assert lc.superd_pids() == []  # nothing to start: superd was not started


def test_commands_without_daemon_exit_3(lc):
    demo = lc.demo()
    for args in (["status"], ["logs"], ["stop", "web"], ["down"], ["env", "web"]):
        r = lc.run(*args, cwd=demo.dir)
        assert r.returncode == 3, (args, r.stdout, r.stderr)
        lines = r.stderr.splitlines()
        assert lines[0] == f"error: locald is not running (no locald-superd in {lc.runtime})", lines
        assert lines[1] == "hint: `localctl up` starts it"
    # status does not start superd
    assert lc.superd_pids() == []
    assert not (lc.runtime / "superd.rpc").exists()


def test_up_then_through_proxy(lc):
    """curl by host name over HTTP and HTTPS (with --cacert) through locald-proxyd."""
    import pytest

    demo = lc.demo()
    assert lc.run("up", "-d", demo.dir).returncode == 0
    v = json.loads(lc.run("version", "--json").stdout)
    if not v["proxyd"]["running"]:
        pytest.skip("locald-proxyd does not answer on <runtime>/proxyd.rpc: superd's embedded "
                    "mode does not start it yet (enable when issue 4 lands)")
    https, http = v["proxyd"]["https_port"], v["proxyd"]["http_port"]
    r = lc.run("open", "web", cwd=demo.dir, env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert r.returncode == 0
    url = r.stdout.strip()
    host = f"{demo.name}.localhost"
    assert url == (f"https://{host}" if https == 443 else f"https://{host}:{https}"), url
    ca = lc.state / "ca" / "ca.crt"
    assert ca.exists(), f"no CA certificate at {ca}"
    for scheme, port, extra in (("https", https, ["--cacert", str(ca)]), ("http", http, [])):
        out = subprocess.run(["curl", "-sS", "--max-time", "10", *extra,
                              "--resolve", f"{host}:{port}:127.0.0.1",
                              f"{scheme}://{host}:{port}/"], capture_output=True, text=True)
        assert out.returncode == 0, (scheme, out.stderr)
        assert "visits so far" in out.stdout, (scheme, out.stdout)
