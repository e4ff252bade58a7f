# SPDX-License-Identifier: MIT
"""locald-superd's bus API as a client sees it: errors for garbage and bad arguments,
fixed-port conflicts, GetServiceEnv, service calls that reply when done."""

import os
import socket
import uuid

import pytest

pytest.importorskip("zmq")
pytest.importorskip("google.protobuf")

from superd_fixtures import *  # noqa: E402,F401,F403


def exec_env(pid):
    """The environment of a service's process once it has exec'd (right after the fork it
    still has superd's)."""
    return wait_until(lambda: (e := proc_env(pid)).get("LOCALD_SERVICE") and e,
                      what=f"pid {pid} to exec")


def test_garbage_on_the_bus_is_answered(sd):
    c = sd.client
    for junk in (os.urandom(64), b"\xff" * 3, b"", os.urandom(4096)):
        rep = c.send_raw(junk)
        assert rep.WhichOneof("result") == "error", rep
        assert env_pb.Error.Code.Name(rep.error.code) == "INVALID_ARGUMENT", rep
    # A well-formed frame with a wrong api_version.
    req = env_pb.Request(api_version=7, request_id="v7", ping=env_pb.Ping())
    rep = c.send_raw(req.SerializeToString())
    assert rep.WhichOneof("result") == "error"
    assert env_pb.Error.Code.Name(rep.error.code) == "FAILED_PRECONDITION"
    # superd is still there and answers.
    assert sd.call(ping=env_pb.Ping(token="still")).pong.token == "still"
    assert sd.daemon.proc.poll() is None


def test_bad_arguments(sd):
    with pytest.raises(BusError) as ei:
        sd.call(apply_project=sv.ApplyProject(path="relative/dir"))
    assert ei.value.code == "INVALID_ARGUMENT"
    assert "absolute" in ei.value.message

    with pytest.raises(BusError) as ei:
        sd.call(status=sv.Status(project="no-such-project"))
    assert ei.value.code == "NOT_FOUND"

    with pytest.raises(BusError) as ei:
        sd.call(apply_project=sv.ApplyProject(path="/nonexistent/dir/for/sure"))
    assert ei.value.code in ("NOT_FOUND", "INVALID_ARGUMENT")

    proj = sd.project("""
        [services.w]
        type = "worker"
        command = "exec sleep 1000"
    """)
    sd.apply(proj)
    for call in (dict(stop_service=sv.StopService(project=proj, service="nope")),
                 dict(start_service=sv.StartService(project="nope", service="w")),
                 dict(logs=sv.Logs(project=proj, service="nope")),
                 dict(get_service_env=sv.GetServiceEnv(project=proj, service="nope"))):
        with pytest.raises(BusError) as ei:
            sd.call(**call)
        assert ei.value.code == "NOT_FOUND", call
    # Status with no project lists every project.
    names = [p.name for p in sd.call(status=sv.Status()).status.projects]
    assert names == [proj]


def test_fixed_port_conflict_names_the_holder(sd):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        proj = sd.project(f"""
            [services.web]
            command = "exec {PY} -m http.server {port} --bind 127.0.0.1"
            port = {port}
        """)
        res = sd.apply(proj)
        (web,) = res.project.services
        assert state_name(web.state) == "failed", web
        assert f"port {port} is in use by python3 (pid {os.getpid()})" in web.status_reason, \
            web.status_reason
        assert web.pid == 0
    finally:
        holder.close()
    # Once the port is free, starting it works.
    rep = sd.call(start_service=sv.StartService(project=proj, service="web"))
    assert state_name(rep.start_service.service.state) == "running", rep
    assert rep.start_service.service.port == port


def test_service_env(sd):
    proj = sd.project("""
        [services.db]
        command = "exec sleep 1000"
        health_check = { type = "command", command = "true" }
        env = { FROM_SERVICE = "db-own", SHARED = "service-wins" }

        [services.api]
        type = "worker"
        command = "exec sleep 1000"
        env = { DATABASE_URL = "${services.db.url}/app", DB_PORT = "${services.db.port}" }
    """, dotenv="""
        SHARED=dotenv
        ONLY_DOTENV=from-dotenv
    """)
    sd.apply(proj)
    st = sd.status(proj)

    def env(service):
        rep = sd.call(get_service_env=sv.GetServiceEnv(project=proj, service=service))
        return {v.name: v.value for v in rep.get_service_env.environment}

    db = env("db")
    assert db["PORT"] == str(st["db"].port) and st["db"].port > 0
    assert db["LOCALD_PROJECT"] == proj
    assert db["LOCALD_SERVICE"] == "db"
    assert db["LOCALD_URL"] == st["db"].url and db["LOCALD_URL"].startswith("https://db.")
    assert db["NOTIFY_SOCKET"]
    # .env is layered under the service's env.
    assert db["SHARED"] == "service-wins"
    assert db["ONLY_DOTENV"] == "from-dotenv"
    assert db["FROM_SERVICE"] == "db-own"

    api = env("api")
    assert api["DATABASE_URL"] == f"http://127.0.0.1:{st['db'].port}/app"
    assert api["DB_PORT"] == str(st["db"].port)
    assert "PORT" not in api  # a worker gets no port
    assert api["SHARED"] == "dotenv"
    assert api["LOCALD_SERVICE"] == "api"

    # And that is what the running processes really have.
    real = exec_env(st["db"].pid)
    for k in ("PORT", "LOCALD_PROJECT", "LOCALD_SERVICE", "LOCALD_URL", "SHARED",
              "ONLY_DOTENV", "NOTIFY_SOCKET"):
        assert real.get(k) == db[k], k
    assert exec_env(st["api"].pid)["DATABASE_URL"] == api["DATABASE_URL"]


def test_caller_environment_is_inherited(sd):
    proj = sd.project("""
        [services.w]
        type = "worker"
        command = "exec sleep 1000"
        env = { OVERRIDDEN = "by-service" }
    """)
    sd.call(apply_project=sv.ApplyProject(
        path=str(sd.dir(proj)), wait=True,
        environment=[sv.EnvVar(name="FROM_CALLER", value="yes"),
                     sv.EnvVar(name="OVERRIDDEN", value="by-caller"),
                     sv.EnvVar(name="PATH", value="/usr/bin:/bin")]))
    pid = sd.service(proj, "w").pid
    real = exec_env(pid)
    assert real["FROM_CALLER"] == "yes"
    assert real["OVERRIDDEN"] == "by-service"


def test_service_calls_reply_when_done(sd):
    proj = sd.project(f"""
        [services.web]
        command = "sleep 0.5; exec {PY} -m http.server $PORT --bind 127.0.0.1"
    """)
    sd.apply(proj)
    first = sd.service(proj, "web")
    rep = sd.call(restart_service=sv.RestartService(project=proj, service="web"))
    s = rep.restart_service.service
    # The restart reply comes once the new process passed its check.
    assert state_name(s.state) == "running", s
    assert s.pid and s.pid != first.pid
    assert not pid_alive(first.pid)

    rep = sd.call(stop_service=sv.StopService(project=proj, service="web"))
    assert state_name(rep.stop_service.service.state) == "stopped"
    assert not pid_alive(s.pid)
    rep = sd.call(start_service=sv.StartService(project=proj, service="web"))
    assert state_name(rep.start_service.service.state) == "running"
    assert rep.start_service.service.port == first.port  # the port is sticky

    # ForgetProject stops it and the project is gone.
    pid = rep.start_service.service.pid
    sd.call(forget_project=sv.ForgetProject(project=proj))
    assert not pid_alive(pid)
    with pytest.raises(BusError) as ei:
        sd.call(status=sv.Status(project=proj))
    assert ei.value.code == "NOT_FOUND"
    # and it can be applied again
    res = sd.apply(proj)
    assert state_name(res.project.services[0].state) == "running"


def test_port_mismatch_is_a_warning(sd):
    # Listens, but not on $PORT: the proxy would never reach it; status says so.
    proj = sd.project(f"""
        [services.web]
        command = "exec {PY} wrong.py"
        health_check = {{ type = "command", command = "test -e bound", interval = "100ms" }}
    """, files={"wrong.py": """
        import socket, time
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        print(s.getsockname()[1], flush=True)
        open("bound", "w").close()
        while True:
            time.sleep(1)
    """})
    sd.apply(proj)
    web = sd.service(proj, "web")
    assert state_name(web.state) == "running"
    actual = int(sd.wait_log(proj, "web", lambda l: l.text.isdigit(), streams=["stdout"]).text)
    web = sd.wait_state(proj, "web", "running", pred=lambda s: len(s.warnings) > 0)
    assert f"listening on {actual} but $PORT is {web.port}" in web.warnings, web.warnings


def test_unsupported_type_fails_clearly(sd):
    proj = sd.project("""
        [services.pg]
        type = "postgres"

        [services.app]
        type = "worker"
        command = "exec sleep 1000"
    """)
    res = sd.apply(proj)
    st = {s.service: s for s in res.project.services}
    assert state_name(st["pg"].state) == "failed"
    assert "not supported yet" in st["pg"].status_reason
    assert state_name(st["app"].state) == "running"
    assert sd.call(ping=env_pb.Ping()).pong.daemon == "superd"


def test_procfile_project(sd, tmp_path):
    tag = uuid.uuid4().hex[:8]
    name = f"my-shop-{tag}"
    d = tmp_path / f"My_Shop_{tag}"
    d.mkdir()
    (d / "Procfile").write_text(
        f"web: exec {PY} -m http.server $PORT --bind 127.0.0.1\n"
        "clock: echo tick; exec sleep 1000\n")
    sd.projects[name] = d  # for the fixture's leftover checks
    rep = sd.call(apply_project=sv.ApplyProject(path=str(d), wait=True))
    ps = rep.apply_project.project
    assert ps.name == name
    st = {s.service: s for s in ps.services}
    assert state_name(st["web"].state) == "running" and st["web"].port > 0
    assert st["web"].health_source == sv.HEALTH_SOURCE_PORT
    assert st["clock"].type == sv.SERVICE_TYPE_WORKER and st["clock"].port == 0
    sd.wait_log(name, "clock", lambda l: l.text == "tick", streams=["stdout"])


def test_partial_apply_starts_only_the_named_and_their_dependencies(sd):
    proj = sd.project("""
        [services.db]
        type = "worker"
        command = "exec sleep 1000"

        [services.api]
        type = "worker"
        command = "exec sleep 1000"
        depends_on = ["db"]

        [services.other]
        type = "worker"
        command = "exec sleep 1000"
    """)
    sd.apply(proj, services=["api"])
    st = sd.status(proj)
    assert state_name(st["api"].state) == "running"
    assert state_name(st["db"].state) == "running"
    assert state_name(st["other"].state) == "stopped" and st["other"].pid == 0
    with pytest.raises(BusError) as ei:
        sd.apply(proj, services=["nope"])
    assert ei.value.code == "NOT_FOUND"
    # Then everything: the running ones are left alone.
    sd.apply(proj)
    st2 = sd.status(proj)
    assert st2["api"].pid == st["api"].pid and st2["db"].pid == st["db"].pid
    assert state_name(st2["other"].state) == "running"
