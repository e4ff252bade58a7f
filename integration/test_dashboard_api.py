# SPDX-License-Identifier: MIT
"""The dashboard's HTTP API through a real locald-proxyd and superd: the state's shape,
the event stream (resume with Last-Event-ID without losing the lines written while
disconnected), service actions, the CSRF and cross-origin refusals, masked secrets,
logs with search, and the embedded UI files with their caching headers."""

import json
import time

from dashboard_fixtures import *  # noqa: F401,F403
from dashboard_fixtures import PY, TALKER, Dash, SseReader, wait_until

SERVICES = f'''
[services.web]
command = "{PY} -u talker.py"

[services.web.env]
API_TOKEN = "tok-123"
DB_PASSWORD = "hunter2"
DATABASE_URL = "postgres://app:s3cret@127.0.0.1:5432/app"
PLAIN = "visible"
'''


def project(sd):
    name = sd.project(SERVICES, files={"talker.py": TALKER})
    sd.apply(name)
    sd.wait_state(name, "web", "running")
    return name


def test_state_shape(sd, px):
    name = project(sd)
    d = Dash(px)
    st = d.json("/api/state")
    assert st["superd"] is True and st["now_usec"] > 0
    (p,) = [p for p in st["projects"] if p["name"] == name]
    assert p["domain"] == f"{name}.localhost" and p["path"]
    (s,) = p["services"]
    for key in ("project", "service", "type", "state", "health", "health_source", "url",
                "port", "pid", "uptime_usec", "restarts", "warnings", "status_reason",
                "last_exit", "depends_on"):
        assert key in s, key
    assert s["service"] == "web" and s["state"] == "running" and s["pid"] > 0
    assert s["port"] > 0 and s["url"].startswith(("http://", "https://"))
    assert s["type"] == "exec" and s["health"] in ("passing", "unknown")
    r = d.request("GET", "/api/state")
    assert r.header("Content-Type") == "application/json"
    assert r.header("Access-Control-Allow-Origin") is None


def test_events_resume_without_loss(sd, px):
    name = project(sd)
    d = Dash(px)

    def web_lines(events):
        return [e[2]["seq"] for e in events
                if e[1] == "log" and e[2]["project"] == name and e[2]["service"] == "web"]

    s = SseReader(d)
    first = s.until(lambda i, n, data: n == "ready")
    assert first[0][1] == "state" and all(e[0] for e in first)
    got = web_lines(s.until(lambda i, n, data: n == "log" and data["project"] == name
                            and data["seq"] >= 5))
    last_id, last_seq = s.last_id, got[-1]
    s.close()

    time.sleep(1.0)  # ~20 lines are written meanwhile
    after = sd.logs(name, "web")
    written = [l.seq for l in after if l.seq > last_seq]
    assert len(written) >= 10, written

    s = SseReader(d, last_event_id=last_id)
    events = s.until(lambda i, n, data: n == "log" and data["project"] == name
                     and data["seq"] >= written[-1] + 3)
    s.close()
    assert events[0][1] == "state" and events[0][0] == last_id
    seqs = web_lines(events)
    # Every line after the last one seen, once each, in order.
    assert seqs == list(range(last_seq + 1, seqs[-1] + 1)), seqs[:40]
    assert all(e[0] for e in events)  # every event has an id


def test_stale_event_id_resets(sd, px):
    d = Dash(px)
    s = SseReader(d, last_event_id="0123456789abcdef-5")
    names = [e[1] for e in s.until(lambda i, n, data: n == "ready")]
    s.close()
    assert names[:2] == ["reset", "state"]


def test_service_events_and_actions(sd, px):
    name = project(sd)
    d = Dash(px)
    s = SseReader(d)
    s.until(lambda i, n, data: n == "ready")
    r = d.post(f"/api/services/{name}/web/stop")
    assert r.status == 200, r
    s.until(lambda i, n, data: n == "service" and data["service"]["service"] == "web"
            and data["service"]["state"] == "stopped")
    r = d.post(f"/api/services/{name}/web/start")
    assert r.status == 200, r
    s.until(lambda i, n, data: n == "service" and data["service"]["state"] == "running")
    pid = sd.service(name, "web").pid
    r = d.post(f"/api/projects/{name}/restart")
    assert r.status == 200, r
    wait_until(lambda: sd.service(name, "web").pid not in (0, pid), what="restart")
    r = d.post(f"/api/services/{name}/nope/restart")
    assert r.status == 404 and json.loads(r.body)["error"]["code"] == "NOT_FOUND"
    r = d.post(f"/api/services/{name}/web/explode")
    assert r.status == 404
    s.close()


def test_csrf_and_cross_origin(sd, px):
    name = project(sd)
    d = Dash(px)
    pid = sd.service(name, "web").pid
    path = f"/api/services/{name}/web/stop"
    # A cross-site form post: foreign Origin (with the cookie a browser would add).
    r = d.post(path, origin="https://evil.example", token=False)
    assert r.status == 403, r
    r = d.post(path, origin="https://evil.example")
    assert r.status == 403, r
    # Same origin without the token / with a wrong one / without Origin at all.
    assert d.post(path, token=False).status == 403
    assert d.post(path, token="0" * 64).status == 403
    assert d.post(path, cookie=False).status == 403
    assert d.post(path, origin=False).status == 403
    # Another port of localhost is another origin.
    assert d.post(path, origin=f"http://locald.localhost:{px.http_port + 1}").status == 403
    # Cross-origin reads are refused too, and nothing grants CORS.
    r = d.request("GET", "/api/state", headers={"Origin": "https://evil.example"})
    assert r.status == 403 and r.header("Access-Control-Allow-Origin") is None
    r = d.request("GET", "/api/state", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403
    # X-Forwarded-For is appended to by the proxy: a forged loopback entry does not help,
    # and the proxy's own (loopback) entry is what counts.
    r = d.request("GET", "/api/state", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status == 200
    assert sd.service(name, "web").pid == pid  # nothing was stopped
    # The real thing works.
    r = d.post(path)
    assert r.status == 200, r
    sd.wait_state(name, "web", "stopped")


def test_service_detail_masks_secrets(sd, px):
    name = project(sd)
    d = Dash(px)
    det = d.json(f"/api/services/{name}/web")
    assert det["command"] == f"{PY} -u talker.py"
    env = {e["name"]: e for e in det["env"]}
    assert env["API_TOKEN"]["masked"] and "tok-123" not in env["API_TOKEN"]["value"]
    assert env["DB_PASSWORD"]["masked"] and "hunter2" not in env["DB_PASSWORD"]["value"]
    url = env["DATABASE_URL"]
    assert url["masked"] and "s3cret" not in url["value"]
    assert url["value"].startswith("postgres://app:") and url["value"].endswith("@127.0.0.1:5432/app")
    assert env["PLAIN"]["value"] == "visible" and not env["PLAIN"]["masked"]
    assert "PORT" in env and not env["PORT"]["masked"]
    assert det["health"] and "last_exit" in det
    assert "hunter2" not in json.dumps(det) and "s3cret" not in json.dumps(det)
    d.json(f"/api/services/{name}/nope", status=404)


def test_logs_endpoint(sd, px):
    name = project(sd)
    d = Dash(px)
    wait_until(lambda: len(sd.logs(name, "web")) >= 20, what="20 lines")
    res = d.json(f"/api/services/{name}/web/logs?n=5")
    assert len(res["lines"]) == 5 and res["next_cursor"]
    seqs = [l["seq"] for l in res["lines"]]
    assert seqs == sorted(seqs)
    time.sleep(0.3)
    more = d.json(f"/api/services/{name}/web/logs?cursor={res['next_cursor']}&n=100")
    assert more["lines"] and more["lines"][0]["seq"] == seqs[-1] + 1
    found = d.json(f"/api/services/{name}/web/logs?q=LINE+1&n=3")
    assert 0 < len(found["lines"]) <= 3
    assert all("line 1" in l["text"] for l in found["lines"])
    r = d.request("GET", f"/api/services/{name}/web/logs?n=abc")
    assert r.status == 400 and "n must be" in json.loads(r.body)["error"]["message"]


def test_ui_files(px):
    d = Dash(px)
    r = d.request("GET", "/")
    assert r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8"
    assert b"<!doctype html>" in r.body.lower()
    assert "frame-ancestors 'none'" in r.header("Content-Security-Policy")
    r = d.request("GET", "/assets/app.js")
    assert r.status == 200 and r.header("Content-Type").startswith("text/javascript")
    etag = r.header("ETag")
    assert etag and etag.startswith('"')
    r = d.request("GET", "/assets/app.js", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""
    assert d.request("GET", "/assets/app.css").header("Content-Type").startswith("text/css")
    assert d.request("GET", "/assets/nope.js").status == 404
    # http://localhost:<port> serves it too.
    r = px.get(f"localhost:{px.http_port}", "/")
    assert r.status == 200 and b"locald" in r.body


def _read_all(s):
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def test_backend_socket(px):
    """The backend's own socket: owner-only, strict parsing, pipelined requests answered in
    order, a malformed request answered with 400 and the connection closed."""
    import os
    import socket
    import stat
    from pathlib import Path
    path = Path(px.runtime) / "proxyd-dashboard.sock"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    s.sendall(b"GET /api/state HTTP/1.1\r\nHost: localhost\r\n\r\n"
              b"HEAD /assets/app.css HTTP/1.1\r\nHost: localhost\r\n\r\n"
              b"GET /api/nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = _read_all(s)
    s.close()
    import re
    codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert codes == [b"200", b"200", b"404"], data.decode(errors="replace")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    s.sendall(b"GET / HTTP/1.1\nHost: localhost\n\n")
    data = _read_all(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"Connection: close" in data and b"LF" in data
