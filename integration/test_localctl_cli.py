# SPDX-License-Identifier: MIT
"""localctl's smaller commands: help and usage errors, init, try, run, env, start/stop/
restart, open, version."""

import json
import os
import socket

import pytest

from localctl_harness import lc  # noqa: F401  (fixture)

COMMANDS = ["up", "down", "start", "stop", "restart", "status", "logs", "env", "run", "try",
            "init", "open", "dashboard", "server", "version"]


def test_help_and_usage_errors(lc):
    r = lc.run("--help")
    assert r.returncode == 0
    for c in COMMANDS:
        assert f"  {c} " in r.stdout
        h = lc.run(c, "--help")
        assert h.returncode == 0 and h.stdout.startswith("Usage: localctl "), (c, h.stderr)
    r = lc.run("frobnicate")
    assert r.returncode == 2
    assert r.stderr.splitlines() == ['error: unknown command "frobnicate"',
                                     "hint: `localctl --help` lists the commands"]
    r = lc.run("status", "--bogus")
    assert r.returncode == 2
    r = lc.run("logs", "-n", "lots")
    assert r.returncode == 2 and r.stderr.startswith('error: -n: "lots" is not a number')
    r = lc.run()
    assert r.returncode == 2


def test_init_from_procfile_and_never_overwrites(lc, tmp_path):
    d = tmp_path / "My_Shop"
    d.mkdir()
    (d / "Procfile").write_text("web: python3 -m http.server $PORT\nworker: sh -c 'echo \"hi\"'\n")
    r = lc.run("init", cwd=d)
    assert r.returncode == 0, r.stderr
    text = (d / "locald.toml").read_text()
    assert 'name = "my-shop"' in text
    assert '[services.web]\ncommand = "python3 -m http.server $PORT"' in text
    assert '[services.worker]\ntype = "worker"\ncommand = "sh -c \'echo \\"hi\\"\'"' in text
    r = lc.run("init", cwd=d)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == f"error: {d}/locald.toml already exists"
    assert (d / "locald.toml").read_text() == text


def test_init_detects_package_json_and_makefile(lc, tmp_path):
    a = tmp_path / "node-app"
    a.mkdir()
    (a / "package.json").write_text(json.dumps({"scripts": {"dev": "vite", "build": "x"}}))
    assert lc.run("init", cwd=a).returncode == 0
    assert 'command = "npm run dev"' in (a / "locald.toml").read_text()
    b = tmp_path / "made"
    b.mkdir()
    (b / "Makefile").write_text("all:\n\ttrue\nserve:\n\tpython3 -m http.server\n")
    assert lc.run("init", cwd=b).returncode == 0
    assert 'command = "make serve"' in (b / "locald.toml").read_text()
    c = tmp_path / "nothing"
    c.mkdir()
    r = lc.run("init", cwd=c)
    assert r.returncode == 1 and r.stderr.startswith("error: nothing to detect in")
    assert not (c / "locald.toml").exists()


def test_try_gives_a_free_port_and_passes_the_exit_code(lc, tmp_path):
    r = lc.run("try", "echo port=$PORT; exit 5", cwd=tmp_path)
    assert r.returncode == 5
    port = int(r.stdout.strip().split("=")[1])
    assert 1024 <= port <= 65535
    assert f"PORT={port}" in r.stderr
    s = socket.socket()
    s.bind(("127.0.0.1", port))  # it was free (and is again)
    s.close()
    assert not (tmp_path / "locald.toml").exists()  # not a terminal: nothing offered


def test_try_offers_to_save_on_a_terminal(lc, tmp_path):
    d = tmp_path / "tryme"
    d.mkdir()
    (d / "locald.toml").write_text('[project]\nname = "tryme"\n\n# keep this comment\n')
    p = lc.pty_spawn("try", "true", cwd=d)
    try:
        p.wait_for(r"Save it as a service", timeout=20)
        p.write(b"y\n")
        p.wait_for(r"Service name \[web\]", timeout=10)
        p.write(b"\n")
        assert p.wait(timeout=20) == 0
    finally:
        p.kill()
    text = (d / "locald.toml").read_text()
    assert text.startswith('[project]\nname = "tryme"\n\n# keep this comment\n')
    assert text.endswith('\n[services.web]\ncommand = "true"\n')


def test_run_env_and_service_commands(lc):
    proj = lc.project(
        '[services.api]\ncommand = "exec python3 -m http.server --bind 127.0.0.1 $PORT"\n'
        'env = { GREETING = "hello", SELF = "${services.api.url}" }\n\n'
        '[services.w]\ntype = "worker"\ncommand = "sleep 600"\n')
    assert lc.run("up", "-d", proj.dir).returncode == 0
    port = lc.services(proj.name)["api"]["port"]

    r = lc.run("env", "api", cwd=proj.dir)
    assert r.returncode == 0
    env = dict(l.split("=", 1) for l in r.stdout.splitlines())
    assert env["GREETING"] == "hello" and env["PORT"] == str(port)
    assert env["SELF"] == f"http://127.0.0.1:{port}"
    r = lc.run("env", "--json", f"{proj.name}:api", cwd="/")
    assert json.loads(r.stdout)["GREETING"] == "hello"

    r = lc.run("run", "api", "--", "sh", "-c", 'echo "$GREETING $PORT"; exit 9', cwd=proj.dir)
    assert r.returncode == 9
    assert r.stdout == f"hello {port}\n"
    r = lc.run("run", "api", "no-such-program-here", cwd=proj.dir)
    assert r.returncode == 127 and r.stderr.startswith("error: cannot run no-such-program-here")

    old = lc.services(proj.name)["w"]["pid"]
    r = lc.run("restart", "w", cwd=proj.dir)
    assert r.returncode == 0 and r.stdout == f"{proj.name}:w running\n"
    assert lc.services(proj.name)["w"]["pid"] != old
    r = lc.run("stop", f"{proj.name}:w", cwd="/")
    assert r.returncode == 0 and r.stdout == f"{proj.name}:w stopped\n"
    r = lc.run("start", "w", cwd=proj.dir)
    assert r.returncode == 0 and lc.services(proj.name)["w"]["state"] == "running"
    r = lc.run("stop", "nope", cwd=proj.dir)
    assert r.returncode == 4 and r.stderr.startswith("error: ")

    r = lc.run("open", "api", cwd=proj.dir, env={"DISPLAY": ""})
    assert r.returncode == 0 and r.stdout == f"https://api.{proj.name}.localhost\n"
    r = lc.run("open", "w", cwd=proj.dir)
    assert r.returncode == 1 and 'service "w" has no URL' in r.stderr


def test_version(lc):
    r = lc.run("version")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].startswith("localctl ")
    assert "locald-superd not running" in r.stdout
    v = json.loads(lc.run("version", "--json").stdout)
    assert v["superd"] == {"running": False} and "version" in v["localctl"]


def test_doctor_reports_stable_checks_and_a_running_superd(lc, tmp_path):
    r = lc.run("doctor", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    checks = {c["id"]: c for c in d["checks"]}
    for cid in ("shim.installed", "shim.version", "ports.proxy", "ca.trusted", "hosts.block",
                "systemd", "cgroup.delegation", "dev.fuse", "dev.kvm", "runtime.dir", "daemons"):
        assert cid in checks, cid
        assert checks[cid]["status"] in ("pass", "warn", "fail", "skip"), checks[cid]
    assert d["ok"] is True
    # anything not passing says how to fix it, or why it is skipped
    for c in d["checks"]:
        assert c["summary"], c
    assert checks["daemons"]["status"] == "skip" and checks["daemons"]["fix"] == "localctl up"
    # with a project up, the daemons are reachable and their versions match
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "locald.toml").write_text('[project]\nname = "doc"\n\n[services.w]\n'
                                      'type = "worker"\ncommand = "sleep 1000"\n')
    assert lc.run("up", "-d", str(proj)).returncode == 0
    try:
        d = json.loads(lc.run("doctor", "--json").stdout)
        checks = {c["id"]: c for c in d["checks"]}
        assert checks["daemons"]["status"] == "pass", checks["daemons"]
        text = lc.run("doctor").stdout
        assert "daemons" in text and "cgroup.delegation" in text
    finally:
        lc.run("down", str(proj))


def test_init_asks_on_a_terminal(lc, tmp_path):
    d = tmp_path / "asked"
    d.mkdir()
    p = lc.pty_spawn("init", cwd=d)
    try:
        p.wait_for(r"Command \(gets \$PORT\)", timeout=20)
        p.write(b"python3 -m http.server $PORT\n")
        p.wait_for(r"Service name \[web\]", timeout=10)
        p.write(b"\n")
        p.wait_for(r"(?s)Command \(gets \$PORT\).*Command \(gets \$PORT\)", timeout=10)
        p.write(b"\n")
        assert p.wait(timeout=20) == 0
    finally:
        p.kill()
    assert (d / "locald.toml").read_text() == (
        '[project]\nname = "asked"\n\n[services.web]\ncommand = "python3 -m http.server $PORT"\n')
