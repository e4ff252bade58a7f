# SPDX-License-Identifier: MIT
"""locald-proxyd over HTTP/1.1: real superd, real proxyd, a real upstream service, real
clients (curl, raw sockets, http.client).

The upstream (echo.py, run by superd as the project's `web` service) answers:
  /echo...       JSON {method, path, headers, body} of what it received
  /chunked       a chunked response of three parts
  /big?n=N       N bytes
  /slow          the body after a second
  Upgrade: echo  101, then echoes raw bytes until the client closes
"""

import json
import os
import random
import select
import socket
import ssl
import struct
import subprocess
import time

import pytest

from locald_bus import Client
from proxyd_fixtures import *  # noqa: F401,F403
from proxyd_fixtures import PROXYD

ECHO = r'''
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        if self.headers.get("Upgrade", "").lower() == "echo":
            self.send_response(101)
            self.send_header("Upgrade", "echo")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.rfile.read1(65536)
                if not data:
                    break
                self.wfile.write(data)
                self.wfile.flush()
            self.close_connection = True
            return
        body = self.read_body()
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first,", b"second,", b"third"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/big"):
            n = int(self.path.split("n=")[1])
            return self.send(200, b"x" * n, "application/octet-stream")
        if self.path.startswith("/slow"):
            time.sleep(1)
            return self.send(200, b"slow body", "text/plain")
        self.send(200, json.dumps({
            "method": self.command, "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode(errors="replace")}).encode())

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = handle_any

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''


@pytest.fixture
def web(sd, px):
    """A project with the echo upstream as `web`; returns its host name once routed."""
    name = sd.project('''
        [services.web]
        command = "exec /usr/bin/python3 echo.py"
    ''', files={"echo.py": ECHO})
    sd.apply(name)
    sd.wait_state(name, "web", "running")
    host = f"web.{name}.localhost"
    wait_until(lambda: px.get(host, "/echo").status == 200, timeout=20, what=f"a route to {host}")
    return host


def echo(resp):
    assert resp.status == 200, resp
    return json.loads(resp.body)


def hdrs(e):
    """Received headers as {lower name: [values]}."""
    out = {}
    for k, v in e["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def raw(px, data, timeout=10.0, port=None):
    """Send bytes on a fresh connection; read until the server closes (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port or px.http_port), timeout=timeout)
    try:
        s.sendall(data)
        return read_until_close(s, timeout)
    finally:
        s.close()


def read_until_close(s, timeout=10.0):
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


def curl(*args, timeout=30):
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                          text=True, timeout=timeout)


# ---- plain and TLS ----

def test_plain_http_reaches_the_service_with_host_preserved(px, web):
    r = curl("-v", "-H", f"Host: {web}", f"http://127.0.0.1:{px.http_port}/echo?x=1")
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)
    assert e["method"] == "GET" and e["path"] == "/echo?x=1"
    h = hdrs(e)
    assert h["host"] == [web]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == [web]
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    assert "for=127.0.0.1" in h["forwarded"][0] and "proto=http" in h["forwarded"][0]


def test_https_verifies_against_the_local_ca_with_the_hosts_own_san(px, web):
    r = curl("--http1.1", "--cacert", str(px.ca_path), "--resolve",
             f"{web}:{px.https_port}:127.0.0.1", "-w", "\n%{http_version}",
             f"https://{web}:{px.https_port}/echo")
    assert r.returncode == 0, r.stderr  # curl verified the chain and the name
    body, version = r.stdout.rsplit("\n", 1)
    assert version == "1.1"
    h = hdrs(json.loads(body))
    assert h["x-forwarded-proto"] == ["https"]
    assert h["host"] == [f"{web}:{px.https_port}"]
    # The leaf names exactly this host (no wildcard).
    ctx = ssl.create_default_context(cafile=str(px.ca_path))
    with socket.create_connection(("127.0.0.1", px.https_port)) as s:
        with ctx.wrap_socket(s, server_hostname=web) as t:
            sans = [v for k, v in t.getpeercert()["subjectAltName"] if k == "DNS"]
    assert sans == [web]


def test_keep_alive_reuses_one_connection(px, web):
    url = f"http://127.0.0.1:{px.http_port}"
    r = curl("-v", "-H", f"Host: {web}", f"{url}/echo/1", f"{url}/echo/2")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("Connected to") == 1
    assert "Re-using existing connection" in r.stderr or "Reusing existing" in r.stderr
    assert '"/echo/1"' in r.stdout and '"/echo/2"' in r.stdout


def test_pipelined_requests_answered_in_order(px, web):
    reqs = b"".join(
        f"GET /echo/{i} HTTP/1.1\r\nHost: {web}\r\n{'Connection: close' if i == 3 else 'X-N: 1'}"
        f"\r\n\r\n".encode() for i in (1, 2, 3))
    out, closed = raw(px, reqs)
    assert closed
    assert out.count(b"HTTP/1.1 200 ") == 3, out
    positions = [out.index(f'"/echo/{i}"'.encode()) for i in (1, 2, 3)]
    assert positions == sorted(positions)


def test_chunked_request_and_response(px, web):
    c = px.connection()
    def gen():
        yield b"hello, "
        yield b"chunked "
        yield b"world"
    c.request("POST", "/echo", body=gen(), headers={"Host": web}, encode_chunked=True)
    r = c.getresponse()
    e = json.loads(r.read())
    assert e["body"] == "hello, chunked world"
    # Same connection: a chunked response from the service reaches us chunked.
    c.request("GET", "/chunked", headers={"Host": web})
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.getheader("Content-Length") is None
    assert r.read() == b"first,second,third"
    c.close()


def test_http10_client_gets_a_close_delimited_body(px, web):
    out, closed = raw(px, f"GET /chunked HTTP/1.0\r\nHost: {web}\r\n\r\n".encode())
    assert closed
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding" not in head.lower()
    assert body == b"first,second,third"


def test_hop_by_hop_fields_are_not_forwarded(px, web):
    e = echo(px.get(web, "/echo", headers={
        "Connection": "keep-alive, X-Drop-Me", "X-Drop-Me": "1", "Keep-Alive": "timeout=5",
        "TE": "trailers", "Proxy-Connection": "keep-alive", "X-Keep-Me": "yes"}))
    h = hdrs(e)
    for gone in ("x-drop-me", "keep-alive", "te", "proxy-connection"):
        assert gone not in h, (gone, h)
    assert h["x-keep-me"] == ["yes"]
    assert "upgrade" not in h


def test_expect_100_continue(px, web):
    s = socket.create_connection(("127.0.0.1", px.http_port), timeout=10)
    s.sendall(f"POST /echo HTTP/1.1\r\nHost: {web}\r\nContent-Length: 5\r\n"
              f"Expect: 100-continue\r\n\r\n".encode())
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
    s.sendall(b"12345")
    s.sendall(b"")
    data = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    while b'"body"' not in data:
        chunk = s.recv(65536)
        assert chunk
        data += chunk
    assert b'"body": "12345"' in data
    s.close()


def test_upgrade_tunnels_bytes_both_ways(px, web):
    s = socket.create_connection(("127.0.0.1", px.http_port), timeout=10)
    s.sendall(f"GET /tunnel HTTP/1.1\r\nHost: {web}\r\nConnection: Upgrade\r\n"
              f"Upgrade: echo\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"upgrade: echo" in head.lower()
    for msg in (b"ping one", b"\x00\x01binary\xff" * 1000):
        s.sendall(msg)
        got = rest
        while len(got) < len(msg):
            chunk = s.recv(65536)
            assert chunk
            got += chunk
        rest = b""
        assert got == msg
    s.close()


# ---- smuggling, limits, bad input ----

@pytest.mark.parametrize("name,request_bytes,status", [
    ("cl+te", b"POST /echo HTTP/1.1\r\nHost: {h}\r\nContent-Length: 4\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("obs-fold", b"GET /echo HTTP/1.1\r\nHost: {h}\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("bare-lf", b"GET /echo HTTP/1.1\nHost: {h}\n\n", 400),
    ("bare-lf-in-field", b"GET /echo HTTP/1.1\r\nHost: {h}\nX-A: 1\r\n\r\n", 400),
    ("two-content-lengths", b"POST /echo HTTP/1.1\r\nHost: {h}\r\nContent-Length: 1\r\n"
                            b"Content-Length: 2\r\n\r\nab", 400),
    ("space-before-colon", b"GET /echo HTTP/1.1\r\nHost : {h}\r\n\r\n", 400),
    ("te-gzip", b"POST /echo HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("http-2.0-line", b"GET /echo HTTP/2.0\r\nHost: {h}\r\n\r\n", 505),
    ("long-line", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: {h}\r\n\r\n", 414),
    ("many-fields", b"GET /echo HTTP/1.1\r\nHost: {h}\r\n" +
                    b"".join(b"X-F%d: v\r\n" % i for i in range(200)) + b"\r\n", 431),
    ("huge-head", b"GET /echo HTTP/1.1\r\nHost: {h}\r\n" +
                  b"".join(b"X-Big%d: %s\r\n" % (i, b"v" * 8000) for i in range(12)) + b"\r\n",
     431),
])
def test_bad_requests_get_their_status_and_the_connection_closed(px, web, name,
                                                                 request_bytes, status):
    out, closed = raw(px, request_bytes.replace(b"{h}", web.encode()))
    assert out.startswith(b"HTTP/1.1 %d " % status), (name, out[:200])
    assert b"connection: close" in out.lower().split(b"\r\n\r\n")[0]
    assert closed, name
    # and proxyd is fine
    assert px.get(web, "/echo").status == 200


def test_request_after_a_smuggled_one_is_never_served(px, web):
    # A classic CL.TE desync attempt: the "hidden" request must not reach the service.
    out, closed = raw(px, (f"POST /echo HTTP/1.1\r\nHost: {web}\r\nContent-Length: 30\r\n"
                           f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                           f"GET /hidden HTTP/1.1\r\nHost: {web}\r\n\r\n").encode())
    assert out.startswith(b"HTTP/1.1 400 ")
    assert b"/hidden" not in out
    assert out.count(b"HTTP/1.1 ") == 1


def test_slow_request_head_gets_408(start_proxyd, sd):
    px = start_proxyd(config='[proxy]\nheader_timeout = "1s"\n')
    s = socket.create_connection(("127.0.0.1", px.http_port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    out, closed = read_until_close(s, timeout=10)
    s.close()
    assert out.startswith(b"HTTP/1.1 408 "), out[:200]
    assert closed


def test_garbage_tls_handshakes_do_not_hurt(px, web):
    rnd = random.Random(4)
    payloads = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc" + bytes(rnd.getrandbits(8) for _ in range(508)),
        bytes(rnd.getrandbits(8) for _ in range(2000)),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # plaintext on the TLS port
        b"\x16\x03\x03\xff\xff",             # a record header promising 64 KiB, then silence
    ]
    for p in payloads:
        s = socket.create_connection(("127.0.0.1", px.https_port), timeout=5)
        s.sendall(p)
        read_until_close(s, timeout=0.5)
        s.close()
    r = curl("--cacert", str(px.ca_path), "--resolve", f"{web}:{px.https_port}:127.0.0.1",
             f"https://{web}:{px.https_port}/echo")
    assert r.returncode == 0, r.stderr
    assert px.proc.poll() is None


def test_thousand_concurrent_connections_then_still_answering(start_proxyd, sd):
    # An unrouted host: proxyd's own 404 page, so only proxyd's core is measured.
    px = start_proxyd(config="[proxy]\nmax_connections_per_client = 5000\n")
    socks = []
    try:
        for _ in range(1000):
            socks.append(socket.create_connection(("127.0.0.1", px.http_port), timeout=30))
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: nowhere.localhost\r\n\r\n")
        answered = 0
        for s in socks:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            if data[:13] in (b"HTTP/1.1 404 ", b"HTTP/1.1 503 "):  # 503 until superd is seen
                answered += 1
        assert answered == 1000
    finally:
        for s in socks:
            s.close()
    assert px.get("nowhere.localhost", "/").status in (404, 503)


def test_connections_per_client_are_limited(start_proxyd, sd):
    px = start_proxyd(config="[proxy]\nmax_connections_per_client = 10\n")
    socks = [socket.create_connection(("127.0.0.1", px.http_port), timeout=10) for _ in range(15)]
    try:
        # The excess five were accepted and closed at once; the first ten stay open (they
        # have sent nothing yet, so proxyd has nothing to say to them).
        refused = set()
        deadline = time.monotonic() + 10
        while len(refused) < 5 and time.monotonic() < deadline:
            r, _, _ = select.select([s for s in socks if s not in refused], [], [], 0.2)
            for s in r:
                try:
                    if s.recv(1) == b"":
                        refused.add(s)
                except ConnectionResetError:
                    refused.add(s)
        time.sleep(0.3)
        assert len(refused) == 5
        kept = [s for s in socks if s not in refused]
        r, _, _ = select.select(kept, [], [], 0)
        assert r == []
        # A kept one is served.
        kept[0].sendall(b"GET / HTTP/1.1\r\nHost: nowhere.localhost\r\n\r\n")
        assert kept[0].recv(100)[:13] in (b"HTTP/1.1 404 ", b"HTTP/1.1 503 ")
    finally:
        for s in socks:
            s.close()

    def answered():
        try:
            return px.get("nowhere.localhost", "/").status in (404, 503)
        except OSError:
            return False  # our closes may not have been seen yet: still over the limit
    wait_until(answered, timeout=10, what="a connection under the limit")


def test_requests_in_flight_finish_on_sigterm(px, web):
    s = socket.create_connection(("127.0.0.1", px.http_port), timeout=15)
    s.sendall(f"GET /slow HTTP/1.1\r\nHost: {web}\r\n\r\n".encode())
    time.sleep(0.3)
    px.proc.send_signal(15)
    out, closed = read_until_close(s, timeout=10)
    s.close()
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"slow body"), out
    assert b"connection: close" in out.lower()
    assert px.proc.wait(10) == 0


def test_second_proxyd_refuses_to_run(px):
    r = subprocess.run([px.binary], env=px.env, capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "another locald-proxyd" in r.stderr and "already runs" in r.stderr
    assert px.proc.poll() is None


def test_listeners_are_reported(px):
    P = px_pb()
    rep = px.call(list_listeners=P.ListListeners())
    got = {(l.address, l.scheme) for l in rep.list_listeners.listeners}
    assert ("127.0.0.1", P.SCHEME_HTTP) in got and ("127.0.0.1", P.SCHEME_HTTPS) in got
    for l in rep.list_listeners.listeners:
        assert l.port and not l.socket_activated
        s = socket.create_connection((l.address, l.port), timeout=5)
        s.close()


def test_head_response_keeps_its_length_and_the_connection_stays_usable(px, web):
    s = socket.create_connection(("127.0.0.1", px.http_port), timeout=10)
    s.sendall(f"HEAD /echo HTTP/1.1\r\nHost: {web}\r\n\r\n"
              f"GET /echo/after HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n".encode())
    out, closed = read_until_close(s)
    s.close()
    first, rest = out.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: " in first.lower()
    # No body after the HEAD response: the next bytes are the second response.
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:100]
    assert b'"/echo/after"' in rest


def test_large_bodies_stream_both_ways(px, web):
    n = 40 * 1024 * 1024
    c = px.connection(timeout=60)
    c.request("GET", f"/big?n={n}", headers={"Host": web})
    r = c.getresponse()
    got = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    assert got == n
    # Upload, chunked, on the same connection.
    part = b"u" * (1 << 20)
    def gen():
        for _ in range(16):
            yield part
    c.request("POST", "/echo", body=gen(), headers={"Host": web}, encode_chunked=True)
    e = json.loads(c.getresponse().read())
    assert len(e["body"]) == 16 * len(part)
    c.close()


def test_idle_keep_alive_connections_are_closed(start_proxyd, sd):
    px = start_proxyd(config='[proxy]\nclient_idle_timeout = "1s"\n')
    s = socket.create_connection(("127.0.0.1", px.http_port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: nowhere.localhost\r\n\r\n")
    out, closed = read_until_close(s, timeout=10)
    s.close()
    assert out[:13] in (b"HTTP/1.1 404 ", b"HTTP/1.1 503 ")
    assert closed  # by proxyd, after the idle timeout (the client never closed)


def test_request_events_are_published(px, web):
    sub = px.subscribe("proxy.request.")
    try:
        assert px.get(web, "/echo/evt?q=1").status == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ev = sub.receive(timeout=1)
            if ev and ev.proxy_request.path == "/echo/evt?q=1":
                break
        else:
            raise AssertionError("no proxy.request event")
        assert ev.topic == f"proxy.request.{web}"
        pr = ev.proxy_request
        assert (pr.method, pr.status, pr.host) == ("GET", 200, web)
        assert pr.protocol == "HTTP/1.1" and pr.response_bytes > 0
    finally:
        sub.close()


def test_socket_activation(sd, build_binary, tmp_path):
    binary = build_binary(PROXYD)
    socks = []
    for name in ("http", "https"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        socks.append(s)
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    env = dict(sd.daemon.env, LOCALD_CONFIG_DIR=str(cfg), LISTEN_FDS="2",
               LISTEN_FDNAMES="http:https")
    log = open(tmp_path / "proxyd.log", "wb")
    # fds 3 and 4 in the child, LISTEN_PID its own pid (exec keeps it).
    wrapper = ("import os, sys; a, b = int(sys.argv[1]), int(sys.argv[2]); "
               "os.dup2(a, 3); os.dup2(b, 4); os.environ['LISTEN_PID'] = str(os.getpid()); "
               "os.execv(sys.argv[3], sys.argv[3:])")
    p = subprocess.Popen([PY, "-c", wrapper, str(socks[0].fileno()), str(socks[1].fileno()),
                          str(binary)], env=env, pass_fds=[s.fileno() for s in socks],
                         stdout=log, stderr=log)
    try:
        P = px_pb()
        c = Client(sd.runtime, "proxyd")
        try:
            rep = wait_until(lambda: _try_call(c, P), timeout=15, what="proxyd on the bus")
        finally:
            c.close()
        got = sorted((l.port, l.scheme, l.socket_activated) for l in rep.list_listeners.listeners)
        assert got == sorted([(socks[0].getsockname()[1], P.SCHEME_HTTP, True),
                              (socks[1].getsockname()[1], P.SCHEME_HTTPS, True)])
        port = socks[0].getsockname()[1]
        for s in socks:
            s.close()  # only proxyd holds them now
        out, _ = raw(None, b"GET / HTTP/1.1\r\nHost: nowhere.localhost\r\nConnection: close\r\n\r\n",
                     port=port)
        assert out[:13] in (b"HTTP/1.1 404 ", b"HTTP/1.1 503 "), out[:200]
    finally:
        p.terminate()
        p.wait(10)
        print((tmp_path / "proxyd.log").read_text())


def _try_call(c, P):
    try:
        return c.call(timeout=0.5, list_listeners=P.ListListeners())
    except TimeoutError:
        return None


def _run_proxyd(sd, build_binary, tmp_path, config="", **env):
    cfg = tmp_path / "cfg"
    cfg.mkdir(exist_ok=True)
    (cfg / "locald.toml").write_text(config)
    e = dict(sd.daemon.env, LOCALD_CONFIG_DIR=str(cfg), LOCALD_HTTP_PORT="0",
             LOCALD_HTTPS_PORT="0")
    e.update(env)
    return subprocess.run([str(build_binary(PROXYD))], env=e, capture_output=True, text=True,
                          timeout=30)


def test_explicit_port_in_use_is_an_error(sd, build_binary, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        r = _run_proxyd(sd, build_binary, tmp_path, LOCALD_HTTP_PORT=str(port))
    finally:
        busy.close()
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr, r.stderr
    assert "Address already in use" in r.stderr


def test_config_errors_name_file_line_and_column(sd, build_binary, tmp_path):
    r = _run_proxyd(sd, build_binary, tmp_path, config="[proxy]\nworkers = 2\nhttp_prot = 1\n")
    assert r.returncode == 1
    assert "locald.toml:3:1: unknown key \"http_prot\" in [proxy]" in r.stderr, r.stderr
    r = _run_proxyd(sd, build_binary, tmp_path, LOCALD_HTTPS_PORT="https")
    assert r.returncode == 1
    assert "LOCALD_HTTPS_PORT" in r.stderr and "not a port" in r.stderr


def test_help_and_version(build_binary):
    b = str(build_binary(PROXYD))
    r = subprocess.run([b, "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("locald-proxyd ")
    r = subprocess.run([b, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "LOCALD_HTTP_PORT" in r.stdout
    r = subprocess.run([b, "--bogus"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2


def test_under_superd_proxyd_reports_ready_and_serves(sd):
    # Embedded mode: superd runs the real proxyd as system/proxyd with a notify health
    # check, on ports it picked (LOCALD_HTTP_PORT=0 makes it pick free ones).
    sd.start(embedded=True)
    p = sd.wait_state("system", "proxyd", "running", timeout=30)
    assert p.health_source == sv.HEALTH_SOURCE_NOTIFY
    assert "listening" in p.health_detail
    P = px_pb()
    c = Client(sd.runtime, "proxyd")
    try:
        rep = c.call(timeout=10, list_listeners=P.ListListeners())
    finally:
        c.close()
    port = [l.port for l in rep.list_listeners.listeners
            if l.address == "127.0.0.1" and l.scheme == P.SCHEME_HTTP][0]
    out, _ = raw(None, b"GET / HTTP/1.1\r\nHost: nowhere.localhost\r\nConnection: close\r\n\r\n",
                 port=port)
    assert out[:13] in (b"HTTP/1.1 404 ", b"HTTP/1.1 503 "), out[:200]


def _sockets(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def read_response(s):
    """One response with a Content-Length body from a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([l.split(b":", 1)[1] for l in head.split(b"\r\n")
                  if l.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return head, body


def test_client_resets_release_their_connections(px):
    base = _sockets(px.pid)
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", px.http_port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: nowhere.localhost\r\n\r\n")
        head, _ = read_response(s)
        assert head[:13] in (b"HTTP/1.1 404 ", b"HTTP/1.1 503 ")
        if i % 2:  # an RST instead of a FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    # Keep-alive connections whose client went away are closed at once, not after the
    # 75 s idle timeout.
    wait_until(lambda: _sockets(px.pid) <= base, timeout=10, what="sockets to be closed")
