# SPDX-License-Identifier: MIT
"""Helpers for the dashboard tests (test_dashboard_*.py): requests to the dashboard
through a real locald-proxyd next to a real superd, and a small SSE reader.

    from dashboard_fixtures import *     # sd, px, Dash, SseReader, ...

    def test_x(sd, px):
        d = Dash(px)                      # Host: locald.localhost:<http port>
        state = d.json("/api/state")
"""

import http.client
import json
import socket
import time

from proxyd_fixtures import *  # noqa: F401,F403
from proxyd_fixtures import PY, sv, wait_until  # noqa: F401

__all__ = ["Dash", "SseReader", "sd", "px", "start_proxyd", "PY", "sv", "wait_until",
           "TALKER"]

# A service that prints a numbered line every 50 ms (and serves HTTP on $PORT).
TALKER = r'''
import http.server, itertools, os, sys, threading, time
PORT = int(os.environ["PORT"])
def talk():
    for i in itertools.count():
        print(f"line {i}", flush=True)
        time.sleep(0.05)
threading.Thread(target=talk, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
'''


class Dash:
    """The dashboard of proxyd `px`, as a browser on http://locald.localhost:<port> sees it."""

    def __init__(self, px, host=None):
        self.px = px
        self.host = host or f"locald.localhost:{px.http_port}"
        self.origin = f"http://{self.host}"
        self.csrf = None

    def request(self, method, path, headers=None, body=None):
        return self.px.get(self.host, path, method=method, headers=headers or {}, body=body)

    def json(self, path, status=200):
        r = self.request("GET", path)
        assert r.status == status, r
        return json.loads(r.body)

    def token(self):
        """Load the page: its Set-Cookie carries the CSRF token."""
        if self.csrf is None:
            r = self.request("GET", "/")
            assert r.status == 200, r
            cookie = r.header("Set-Cookie")
            assert cookie and cookie.startswith("locald_csrf="), r
            assert "SameSite=Strict" in cookie
            self.csrf = cookie.split(";")[0].split("=", 1)[1]
        return self.csrf

    def post(self, path, origin=True, token=True, cookie=True, extra=None):
        t = self.token()
        h = {}
        if origin:
            h["Origin"] = self.origin if origin is True else origin
        if token:
            h["X-Locald-CSRF"] = t if token is True else token
        if cookie:
            h["Cookie"] = f"locald_csrf={t}"
        h.update(extra or {})
        return self.request("POST", path, headers=h, body=b"")


class SseReader:
    """GET /api/events over a raw connection to proxyd; parses events as they come."""

    def __init__(self, dash, last_event_id=None, timeout=10.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", dash.px.http_port, timeout=timeout)
        h = {"Host": dash.host, "Accept": "text/event-stream"}
        if last_event_id:
            h["Last-Event-ID"] = last_event_id
        self.conn.request("GET", "/api/events", headers=h)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.status
        assert self.resp.getheader("Content-Type").startswith("text/event-stream")
        self.last_id = None

    def next(self, timeout=10.0):
        """The next event as (id, name, data-as-JSON); comments are skipped."""
        deadline = time.monotonic() + timeout
        ev_id = name = None
        data = []
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("no event")
            line = self.resp.readline()
            if not line:
                raise EOFError("the event stream ended")
            line = line.decode().rstrip("\n")
            if line == "":
                if name is None and not data:
                    continue
                if ev_id is not None:
                    self.last_id = ev_id
                return ev_id, name or "message", json.loads("\n".join(data)) if data else None
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if k == "id":
                ev_id = v
            elif k == "event":
                name = v
            elif k == "data":
                data.append(v)

    def until(self, pred, timeout=15.0):
        """Events until pred(id, name, data) is true; returns them all."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"condition not met; got {[(e[1]) for e in out][-20:]}")
            e = self.next(left)
            out.append(e)
            if pred(*e):
                return out

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
