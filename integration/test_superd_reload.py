# SPDX-License-Identifier: MIT
"""locald-superd reload: re-applying a changed locald.toml restarts only what changed,
stops removed services, starts new ones; a broken file changes nothing."""

import re

import pytest

pytest.importorskip("zmq")
pytest.importorskip("google.protobuf")

from superd_fixtures import *  # noqa: E402,F401,F403


def config(api_greeting="hello", extra=""):
    return f"""
        [services.db]
        type = "worker"
        command = "exec sleep 1000"

        [services.api]
        type = "worker"
        command = "echo $GREETING; exec sleep 1000"
        depends_on = ["db"]
        env = {{ GREETING = "{api_greeting}" }}

        [services.worker]
        type = "worker"
        command = "exec sleep 1000"
    """ + extra


def pids(sd, proj):
    return {n: s.pid for n, s in sd.status(proj).items()}


def test_reload_restarts_only_changed_services(sd):
    proj = sd.project(config())
    sd.apply(proj)
    before = pids(sd, proj)
    assert all(before.values()), before
    # a worker is ready at spawn: let it print before it is restarted
    sd.wait_log(proj, "api", lambda l: l.text == "hello", streams=["stdout"])

    # Unchanged: applying again changes nothing.
    sd.apply(proj)
    assert pids(sd, proj) == before

    # One service's env changed: only it restarts.
    sd.write_config(proj, config(api_greeting="bonjour"))
    res = sd.apply(proj)
    after = {s.service: s.pid for s in res.project.services}
    assert after["api"] and after["api"] != before["api"]
    assert after["db"] == before["db"]
    assert after["worker"] == before["worker"]
    assert not pid_alive(before["api"])
    sd.wait_log(proj, "api", lambda l: l.text == "bonjour", streams=["stdout"])
    out = [l.text for l in sd.logs(proj, "api", streams=["stdout"])]
    assert out == ["hello", "bonjour"]
    lines = [l.text for l in sd.system_lines(proj, "api")]
    assert any("configuration changed" in t for t in lines), lines


def test_reload_removes_and_adds_services(sd):
    proj = sd.project(config())
    sd.apply(proj)
    before = pids(sd, proj)

    # worker removed, cache added (and the rest untouched).
    new = config().replace("[services.worker]", "[services.cache]")
    sd.write_config(proj, new)
    res = sd.apply(proj)
    states = {s.service: state_name(s.state) for s in res.project.services}
    assert states.get("cache") == "running", states
    wait_until(lambda: "worker" not in sd.status(proj), what="worker to go away")
    assert not pid_alive(before["worker"])
    now = pids(sd, proj)
    assert now["db"] == before["db"] and now["api"] == before["api"]
    assert now["cache"] and now["cache"] != before["worker"]


def test_broken_file_leaves_project_untouched(sd):
    proj = sd.project(config())
    sd.apply(proj)
    before = pids(sd, proj)

    good = (sd.dir(proj) / "locald.toml").read_text()
    broken = good.replace('command = "exec sleep 1000"\n\n[services.api]',
                          'command = "exec sleep 1000"\nrestart = "sometimes"\n\n[services.api]')
    assert broken != good
    (sd.dir(proj) / "locald.toml").write_text(broken)
    with pytest.raises(BusError) as ei:
        sd.apply(proj)
    e = ei.value
    assert e.code == "INVALID_ARGUMENT"
    where = re.compile(r"locald\.toml:\d+:\d+")
    assert where.search(e.message), e.message
    assert any(where.search(d) for d in e.details), e.details
    assert "sometimes" in e.message or "restart" in e.message

    # A TOML syntax error too.
    (sd.dir(proj) / "locald.toml").write_text(good + "\n[services.oops\n")
    with pytest.raises(BusError) as ei:
        sd.apply(proj)
    assert where.search(ei.value.message), ei.value.message

    st = sd.status(proj)
    assert {n: s.pid for n, s in st.items()} == before
    assert {state_name(s.state) for s in st.values()} == {"running"}
    for pid in before.values():
        assert pid_alive(pid)
