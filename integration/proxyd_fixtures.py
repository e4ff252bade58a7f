# SPDX-License-Identifier: MIT
"""Fixtures for the locald-proxyd end-to-end tests (test_proxyd_*.py).

    from proxyd_fixtures import *        # sd (superd), px, start_proxyd, ProxydHarness, ...

    def test_x(sd, px):
        proj = sd.project('''[services.web]\ncommand = "..."''')
        sd.apply(proj)
        r = px.get(f"web.{proj}.localhost", "/")      # -> Response(status, headers, body)

`px` is a locald-proxyd of the test's own next to the test's superd (`sd`, started with
--no-embedded): same runtime and state dirs, HTTP and HTTPS on free ports (asked for
with ListListeners), its own config dir. `start_proxyd(config="...")` starts one with a
[proxy] table of its own. Every proxyd is stopped (SIGTERM, then SIGKILL) at teardown,
and its log is printed when the test failed.
"""

import http.client
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from locald_bus import Client, Subscriber, pb
from superd_fixtures import *  # noqa: F401,F403
from superd_fixtures import sd  # noqa: F401

PROXYD = "services/proxyd/locald-proxyd"

__all__ = ["sd", "px", "start_proxyd", "ProxydHarness", "Response", "px_pb", "wait_until",
           "state_name", "sv", "PY"]


def px_pb():
    """The proxy_pb2 module (Route, SetRoutes, ListListeners, ProxyRequest)."""
    pb()
    from locald.v1 import proxy_pb2
    return proxy_pb2


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    @property
    def text(self):
        return self.body.decode(errors="replace")

    def __repr__(self):
        return f"Response({self.status}, {self.headers!r}, {self.body[:300]!r})"


class ProxydHarness:
    def __init__(self, binary, superd, root, config="", env=None):
        self.binary = str(binary)
        self.superd = superd  # locald_bus.Superd
        self.root = Path(root)
        self.config_dir = self.root / "cfg"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "locald.toml").write_text(config)
        self.log = self.root / "proxyd.log"
        self.env = dict(superd.env, LOCALD_CONFIG_DIR=str(self.config_dir),
                        LOCALD_HTTP_PORT="0", LOCALD_HTTPS_PORT="0", **(env or {}))
        self.proc = None
        self.http_port = self.https_port = None
        self._client = None

    @property
    def runtime(self):
        return self.superd.runtime

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=15.0):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf)
        P = px_pb()
        deadline = time.monotonic() + timeout
        while True:
            try:
                rep = self.client.call(timeout=0.5, list_listeners=P.ListListeners())
                break
            except TimeoutError:
                self._reset()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"proxyd did not start: {self.log.read_text()}")
        for l in rep.list_listeners.listeners:
            if l.address == "127.0.0.1":
                if l.scheme == P.SCHEME_HTTP:
                    self.http_port = l.port
                elif l.scheme == P.SCHEME_HTTPS:
                    self.https_port = l.port
        assert self.http_port and self.https_port, rep
        return self

    def _reset(self):
        if self._client:
            self._client.close()
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = Client(self.runtime, "proxyd")
        return self._client

    def call(self, timeout=10.0, **kw):
        return self.client.call(timeout=timeout, **kw)

    def set_routes(self, owner, routes):
        """routes: {host: "127.0.0.1:port"}"""
        P = px_pb()
        return self.call(set_routes=P.SetRoutes(
            owner=owner, routes=[P.Route(host=h, upstream=u) for h, u in routes.items()]))

    def subscribe(self, prefix):
        s = Subscriber(self.runtime, prefix, daemon="proxyd")
        time.sleep(0.3)  # slow joiner
        return s

    @property
    def ca_path(self):
        return Path(self.superd.state) / "ca" / "ca.crt"

    def connection(self, timeout=30.0):
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)

    def get(self, host, path="/", method="GET", headers=None, body=None, timeout=30.0):
        """One request over a fresh connection with Host: host."""
        c = self.connection(timeout)
        try:
            h = {"Host": host}
            h.update(headers or {})
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            c.close()

    def rss_kb(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self, timeout=10.0):
        self._reset()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None


@pytest.fixture
def start_proxyd(sd, build_binary):
    binary = build_binary(PROXYD)
    started = []

    def start(config="", env=None):
        root = Path(sd.root) / f"px{len(started)}"
        root.mkdir()
        h = ProxydHarness(binary, sd.daemon, root, config=config, env=env)
        started.append(h)
        return h.start()

    yield start
    for h in started:
        rc = h.stop()
        # pytest shows this only for a failed test.
        try:
            print(f"--- proxyd log ({h.log}) rc={rc} ---\n" + h.log.read_text()[-6000:])
        except OSError:
            pass


@pytest.fixture
def px(start_proxyd):
    return start_proxyd()
