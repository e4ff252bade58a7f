# SPDX-License-Identifier: MIT
"""Embedded mode: `localctl up` starts superd, idempotently and race-free."""

import time

from localctl_harness import lc  # noqa: F401  (fixture)


def test_two_racing_ups_make_one_superd(lc):
    a = lc.project('[services.a]\ntype = "worker"\ncommand = "sleep 600"\n')
    b = lc.project('[services.b]\ntype = "worker"\ncommand = "sleep 600"\n')
    assert lc.superd_pids() == []
    procs = [lc.popen("up", "-d", p.dir) for p in (a, b, a)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for rc, out, err in results:
        assert rc == 0, (out, err)
    assert len(lc.superd_pids()) == 1, lc.superd_pids()
    st = lc.status_json("--all")
    names = {p["name"] for p in st["projects"]}
    assert {a.name, b.name} <= names


def test_server_stop_and_restart(lc):
    proj = lc.project('[services.w]\ntype = "worker"\ncommand = "sleep 600"\n')
    assert lc.run("up", "-d", proj.dir).returncode == 0
    (old,) = lc.superd_pids()
    r = lc.run("server", "status")
    assert r.returncode == 0 and f"(pid {old}," in r.stdout

    r = lc.run("server", "restart")
    assert r.returncode == 0, r.stderr
    (new,) = lc.superd_pids()
    assert new != old
    # The project is restored by the new superd.
    deadline = time.monotonic() + 20
    while lc.services(proj.name)["w"]["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    r = lc.run("server", "stop")
    assert r.returncode == 0 and "locald stopped" in r.stdout
    assert lc.superd_pids() == []
    assert lc.project_pids() == []
    r = lc.run("server", "status")
    assert r.returncode == 3
    assert r.stderr.startswith("error: locald is not running")


def test_superd_that_cannot_start_is_reported(lc, tmp_path):
    fake = tmp_path / "fake-superd"
    fake.write_text("#!/bin/sh\necho 'fake superd: cannot bind anything' >&2\nexit 1\n")
    fake.chmod(0o755)
    proj = lc.project('[services.w]\ntype = "worker"\ncommand = "sleep 600"\n')
    r = lc.run("up", "-d", proj.dir, env={"LOCALD_SUPERD": str(fake)})
    assert r.returncode == 3
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error: locald-superd did not start"), lines
    assert lines[1].startswith("hint: ")
    assert "fake superd: cannot bind anything" in r.stderr
