# SPDX-License-Identifier: MIT
"""locald-superd health checks with real services: http, tcp, command, notify (with
STATUS=), a log line, and a service that never becomes ready."""

import pytest

pytest.importorskip("zmq")
pytest.importorskip("google.protobuf")

from superd_fixtures import *  # noqa: E402,F401,F403

HTTP_SERVER = """
import http.server, os, sys, time
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"no")
    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""

TCP_SERVER = """
import os, socket, time
time.sleep(0.5)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(4)
while True:
    s.accept()[0].close()
"""

NOTIFY_SERVICE = """
import os, socket, time

def notify(msg):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg.encode(), addr)
    s.close()

notify("STATUS=warming up")
while not os.path.exists("go"):
    time.sleep(0.05)
notify("READY=1\\nSTATUS=serving")
while True:
    time.sleep(1)
"""


def test_http_check(sd):
    proj = sd.project(f"""
        [services.web]
        command = "{PY} srv.py 0.5"
        health_check = {{ type = "http", path = "/healthz", interval = "100ms" }}

        [services.wrongpath]
        command = "{PY} srv.py"
        health_check = {{ type = "http", path = "/nope", start_timeout = "1500ms" }}
    """, files={"srv.py": HTTP_SERVER})
    res = sd.apply(proj)
    st = {s.service: s for s in res.project.services}
    web = st["web"]
    assert state_name(web.state) == "running", web
    assert web.health == sv.HEALTH_PASSING
    assert web.health_source == sv.HEALTH_SOURCE_HTTP
    assert web.port > 0
    # 404 is not healthy: it never became ready, and the reason says what it answered.
    bad = st["wrongpath"]
    assert state_name(bad.state) == "failed", bad
    assert "404" in bad.status_reason, bad.status_reason


def test_tcp_and_inferred_port_check(sd):
    proj = sd.project(f"""
        [services.explicit]
        command = "{PY} tcp.py"
        health_check = {{ type = "tcp", interval = "100ms" }}

        [services.inferred]
        command = "{PY} tcp.py"

        [services.job]
        type = "worker"
        command = "sleep 1000"
    """, files={"tcp.py": TCP_SERVER})
    res = sd.apply(proj)
    st = {s.service: s for s in res.project.services}
    assert state_name(st["explicit"].state) == "running"
    assert st["explicit"].health_source == sv.HEALTH_SOURCE_TCP
    # No check configured, but a port: superd waits for it to accept connections.
    assert state_name(st["inferred"].state) == "running"
    assert st["inferred"].health_source == sv.HEALTH_SOURCE_PORT
    # A worker has no port: running is ready.
    assert state_name(st["job"].state) == "running"
    assert st["job"].health_source == sv.HEALTH_SOURCE_NONE
    assert st["job"].port == 0


def test_command_check(sd):
    proj = sd.project("""
        [services.app]
        type = "worker"
        command = "sleep 0.5; touch ready; exec sleep 1000"
        health_check = { type = "command", command = "test -e ready", interval = "100ms" }
    """)
    res = sd.apply(proj)
    (app,) = res.project.services
    assert state_name(app.state) == "running", app
    assert app.health_source == sv.HEALTH_SOURCE_COMMAND
    assert (sd.dir(proj) / "ready").exists()
    # It was not declared ready before the file existed.
    lines = [l.text for l in sd.system_lines(proj, "app")]
    assert any(t.startswith("starting") for t in lines), lines


def test_notify_ready_and_status(sd):
    proj = sd.project(f"""
        [services.svc]
        type = "worker"
        command = "{PY} notify.py"
        health_check = {{ type = "notify" }}
    """, files={"notify.py": NOTIFY_SERVICE})
    sd.apply(proj, wait=False)
    s = sd.wait_state(proj, "svc", "starting", pred=lambda s: s.health_detail == "warming up")
    assert s.health_source == sv.HEALTH_SOURCE_NOTIFY
    (sd.dir(proj) / "go").touch()
    s = sd.wait_state(proj, "svc", "running")
    assert s.health == sv.HEALTH_PASSING
    s = sd.wait_state(proj, "svc", "running", pred=lambda s: s.health_detail == "serving")


def test_notify_from_a_stranger_is_ignored(sd):
    # READY=1 on the service's socket from a process outside its tree does not count.
    proj = sd.project(f"""
        [services.svc]
        type = "worker"
        command = "sleep 1000"
        health_check = {{ type = "notify", start_timeout = "60s" }}
    """)
    sd.apply(proj, wait=False)
    s = sd.wait_state(proj, "svc", "starting")
    env = dict(e.split("=", 1) for e in
               (f"{v.name}={v.value}" for v in sd.call(get_service_env=sv.GetServiceEnv(
                   project=proj, service="svc")).get_service_env.environment))
    addr = env["NOTIFY_SOCKET"]
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.sendto(b"READY=1", "\0" + addr[1:] if addr.startswith("@") else addr)
    sock.close()
    sd.wait_log(proj, "svc", lambda l: "ignored a notification" in l.text, streams=["system"])
    assert state_name(sd.service(proj, "svc").state) == "starting"


def test_log_line_readiness(sd):
    # Colours do not break the anchors of the expression.
    proj = sd.project("""
        [services.app]
        type = "worker"
        command = "./app.sh"
        ready_log_line = "^ready to serve$"
    """, files={"app.sh": r"""
        #!/bin/sh
        echo booting
        sleep 0.5
        printf '\033[32mready\033[0m to serve\n'
        exec sleep 1000
    """})
    res = sd.apply(proj)
    (app,) = res.project.services
    assert state_name(app.state) == "running", app
    assert app.health_source == sv.HEALTH_SOURCE_LOG
    out = [l.text for l in sd.logs(proj, "app", streams=["stdout"])]
    assert out == ["booting", "\x1b[32mready\x1b[0m to serve"]


def test_never_ready_fails_with_last_output(sd):
    proj = sd.project("""
        [services.stuck]
        command = "echo step one; echo step two >&2; echo connecting to nowhere; exec sleep 1000"
        health_check = { type = "tcp", start_timeout = "2s" }
        restart = "no"
    """)
    res = sd.apply(proj)
    (s,) = res.project.services
    assert state_name(s.state) == "failed", s
    assert s.pid == 0
    assert "never became ready" in s.status_reason
    # The reason carries the last lines the service wrote.
    for text in ("step one", "step two", "connecting to nowhere"):
        assert text in s.status_reason, s.status_reason
