# SPDX-License-Identifier: MIT
"""locald-proxyd's HTTP/2 side with real clients: curl (over TLS with the local CA, and
h2c prior knowledge), nghttp, h2load, and a small frame-level client (python3-h2's
hyperframe + hpack) for what curl cannot do: RFC 8441 WebSocket over HTTP/2, a flood of
streams past the concurrency limit, floods of PINGs and malformed frames.

The upstream is a plain HTTP/1.1 server in this process (threads): /hello, /slow,
/sha256 (hashes the request body, Content-Length or chunked), /headers, /sse, and a
WebSocket echo on /ws. Each test routes a host of its own to it with SetRoutes."""

import base64
import hashlib
import http.server
import os
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time

import pytest

from proxyd_fixtures import *  # noqa: F401,F403

hpack = pytest.importorskip("hpack", reason="python3-h2 (hpack, hyperframe) is not installed")
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame,  # noqa: E402
                              HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROTOCOL_ERROR, FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = (
    0x1, 0x6, 0x7, 0x9, 0xb)
SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x3, 0x8
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B3A"
BIG_BLOCK = bytes(range(256)) * 256  # 64 KiB
BIG_ABORTED = threading.Event()


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


# ---- the upstream ----

class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        """Yields the request body in pieces, Content-Length or chunked."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 16))
                    if not d:
                        return
                    left -= len(d)
                    yield d
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                d = self.rfile.read(min(left, 1 << 16))
                if not d:
                    return
                left -= len(d)
                yield d

    def do_GET(self):
        if self.path == "/hello":
            self.reply(200, b"hello over h2\n")
        elif self.path == "/slow":
            time.sleep(1.0)
            self.reply(200, b"slow\n")
        elif self.path == "/headers":
            self.reply(200, "".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode())
        elif self.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(2):
                ev = f"data: {i} {time.time():.6f}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                self.wfile.flush()
                time.sleep(3.0)
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.startswith("/big?"):
            n = int(self.path.split("?", 1)[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            try:
                while n:
                    k = min(n, len(BIG_BLOCK))
                    self.wfile.write(BIG_BLOCK[:k])
                    n -= k
            except OSError:
                BIG_ABORTED.set()
        elif self.path == "/die":
            # Promises 1,000 bytes, sends 10 and hangs up.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif self.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            self.websocket_echo()
        else:
            self.reply(404, b"no such path\n")

    def do_POST(self):
        if self.path == "/sha256":
            h, n = hashlib.sha256(), 0
            for d in self.read_body():
                h.update(d)
                n += len(d)
            framing = "chunked" if "Transfer-Encoding" in self.headers else "length"
            self.reply(200, f"{h.hexdigest()} {n} {framing}\n".encode())
        else:
            self.reply(404, b"no such path\n")

    do_PUT = do_POST

    def websocket_echo(self):
        key = self.headers["Sec-WebSocket-Key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            hdr = self.rfile.read(2)
            if len(hdr) < 2:
                return
            op, ln = hdr[0] & 0x0F, hdr[1] & 0x7F
            if ln == 126:
                ln = struct.unpack("!H", self.rfile.read(2))[0]
            elif ln == 127:
                ln = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if hdr[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(ln)))
            self.wfile.write(ws_frame(op, payload, masked=False))
            self.wfile.flush()
            if op == 8:
                return


def ws_frame(op, payload, masked=True):
    b1 = 0x80 | op
    n = len(payload)
    hdr = bytes([b1, (0x80 if masked else 0) | (n if n < 126 else 126)])
    if n >= 126:
        hdr += struct.pack("!H", n)
    if not masked:
        return hdr + payload
    mask = os.urandom(4)
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(data):
    """(opcode, payload) of one unmasked frame from the server."""
    op, ln = data[0] & 0x0F, data[1] & 0x7F
    off = 2
    if ln == 126:
        ln, off = struct.unpack("!H", data[2:4])[0], 4
    return op, data[off:off + ln]


class UpstreamServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024


@pytest.fixture
def upstream():
    srv = UpstreamServer(("127.0.0.1", 0), Upstream)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def h2(px, upstream):
    """px with h2app.localhost routed to the upstream."""
    px.set_routes("h2test", {"h2app.localhost": f"127.0.0.1:{upstream}"})
    px.host = "h2app.localhost"
    return px


def curl(px, *args, tls=True, path="/hello", **kw):
    need("curl")
    port = px.https_port if tls else px.http_port
    scheme = "https" if tls else "http"
    url = f"{scheme}://{px.host}:{port}{path}"
    cmd = ["curl", "-sS", "--max-time", "60", "--resolve", f"{px.host}:{port}:127.0.0.1"]
    if tls:
        cmd += ["--cacert", str(px.ca_path)]
    return subprocess.run(cmd + list(args) + [url], capture_output=True, timeout=90, **kw)


# ---- a frame-level HTTP/2 client ----

class RawH2:
    def __init__(self, px, tls=True, settings=None):
        port = px.https_port if tls else px.http_port
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        if tls:
            ctx = ssl.create_default_context(cafile=str(px.ca_path))
            ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(s, server_hostname=px.host)
            assert s.selected_alpn_protocol() == "h2"
        self.sock, self.host, self.buf = s, px.host, b""
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.server_settings = {}
        self.sock.sendall(PREFACE + SettingsFrame(0, settings or {}).serialize())

    def close(self):
        self.sock.close()

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def headers_frame(self, sid, headers, end_stream=False):
        f = HeadersFrame(sid)
        f.data = self.enc.encode(headers)
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def request(self, sid, path, method="GET", extra=(), end_stream=True):
        return self.headers_frame(sid, [(":method", method), (":scheme", "https"),
                                        (":authority", self.host), (":path", path), *extra],
                                  end_stream)

    def read_frame(self):
        """The next frame, or None when the server closed. SETTINGS are acknowledged,
        DATA is given back to the connection window, HEADERS come with .decoded."""
        while True:
            while len(self.buf) < 9:
                d = self.sock.recv(65536)
                if not d:
                    return None
                self.buf += d
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            while len(self.buf) < 9 + length:
                d = self.sock.recv(65536)
                if not d:
                    return None
                self.buf += d
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            if isinstance(f, DataFrame) and f.flow_controlled_length:
                # The connection window is given back at once; stream windows by response().
                self.send(WindowUpdateFrame(0, window_increment=f.flow_controlled_length))
            if isinstance(f, HeadersFrame):
                # Decoded here, in order, whoever reads it: HPACK state is per connection.
                f.decoded = self.dec.decode(f.data)
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                self.server_settings.update(f.settings)
                ack = SettingsFrame(0)
                ack.flags.add("ACK")
                self.send(ack)
            return f

    def until(self, pred, what):
        while True:
            f = self.read_frame()
            assert f is not None, f"connection closed while waiting for {what}"
            if pred(f):
                return f

    def response(self, sid):
        """(status, headers, body) of stream sid, reading until it ends."""
        status, headers, body = None, [], b""
        while True:
            f = self.read_frame()
            assert f is not None, f"connection closed before stream {sid} ended"
            if f.stream_id != sid:
                continue
            if isinstance(f, RstStreamFrame):
                raise AssertionError(f"stream {sid} reset: error code {f.error_code}")
            if isinstance(f, HeadersFrame):
                for k, v in f.decoded:
                    if k == ":status":
                        status = int(v)
                    else:
                        headers.append((k, v))
            elif isinstance(f, DataFrame):
                body += f.data
                if f.flow_controlled_length:
                    self.send(WindowUpdateFrame(sid, window_increment=f.flow_controlled_length))
            if "END_STREAM" in f.flags:
                return status, headers, body


# ---- tests ----

def test_curl_http2_over_tls_with_the_local_ca(h2):
    r = curl(h2, "--http2", "-w", "\n%{http_version} %{http_code}")
    assert r.returncode == 0, r.stderr
    body, _, info = r.stdout.decode().rpartition("\n")
    assert info == "2 200"
    assert body == "hello over h2\n"


def test_h2_request_reaches_upstream_as_http1_with_forwarded_fields(h2):
    r = curl(h2, "--http2", "-H", "Cookie: a=1", "-H", "Cookie: b=2", path="/headers")
    assert r.returncode == 0, r.stderr
    got = {}
    for line in r.stdout.decode().splitlines():
        k, _, v = line.partition(": ")
        got.setdefault(k.lower(), []).append(v)
    assert got["host"] == [f"{h2.host}:{h2.https_port}"]
    assert got["cookie"] == ["a=1; b=2"]  # crumbs joined once, not two Cookie fields
    assert got["x-forwarded-proto"] == ["https"]


def test_h2c_prior_knowledge_on_cleartext(h2):
    r = curl(h2, "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}", tls=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().endswith("hello over h2\n\n2 200")


def test_nghttp_sees_extended_connect_enabled(h2):
    need("nghttp")
    r = subprocess.run(["nghttp", "-nv", "-H", f":authority: {h2.host}",
                        f"https://127.0.0.1:{h2.https_port}/hello"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SETTINGS_ENABLE_CONNECT_PROTOCOL(0x08):1" in r.stdout, r.stdout
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128" in r.stdout
    assert ":status: 200" in r.stdout


def test_h2load_all_requests_succeed(h2):
    need("h2load")
    r = subprocess.run(["h2load", "-n", "2000", "-c", "10", "-m", "100",
                        f"--connect-to=127.0.0.1:{h2.https_port}",
                        f"https://{h2.host}:{h2.https_port}/hello"],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2000 succeeded" in r.stdout, r.stdout
    assert "status codes: 2000 2xx" in r.stdout, r.stdout


@pytest.fixture
def big_file(tmp_path):
    p = tmp_path / "big.bin"
    with open(p, "wb") as f:
        for _ in range(50):
            f.write(os.urandom(1 << 20))
    h = hashlib.sha256(p.read_bytes()).hexdigest()
    return p, h


def test_50mb_post_reaches_upstream_intact(h2, big_file):
    p, digest = big_file
    r = curl(h2, "--http2", "--data-binary", f"@{p}", path="/sha256")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == [digest, str(50 << 20), "length"]


def test_50mb_upload_of_unknown_length_is_chunked_upstream(h2, big_file):
    p, digest = big_file
    # From a pipe curl cannot know the length: an h2 body without content-length.
    with open(p, "rb") as f:
        r = curl(h2, "--http2", "-X", "POST", "-T", "-", path="/sha256", stdin=f)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == [digest, str(50 << 20), "chunked"]


def test_sse_over_h2_first_event_arrives_while_the_stream_stays_open(h2):
    need("curl")
    port = h2.https_port
    p = subprocess.Popen(["curl", "-sS", "-N", "--http2", "--cacert", str(h2.ca_path),
                          "--resolve", f"{h2.host}:{port}:127.0.0.1",
                          f"https://{h2.host}:{port}/sse"], stdout=subprocess.PIPE)
    try:
        line = p.stdout.readline().decode()
        got = time.time()
        assert line.startswith("data: 0 "), line
        written = float(line.split()[2])
        # The upstream writes the second event 3 s after the first and only then ends the
        # response: the first one got here while the response was still open (no
        # buffering until the end). The issue asks for 50 ms; the bound here is generous
        # because this machine runs other builds at the same time.
        assert got - written < 1.0
        assert p.poll() is None
        assert p.stdout.readline().decode().strip() == ""
        assert p.stdout.readline().decode().startswith("data: 1 ")
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_websocket_over_h2_extended_connect(h2):
    c = RawH2(h2)
    try:
        c.until(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags, "SETTINGS")
        assert c.server_settings.get(SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1
        c.send(c.headers_frame(1, [(":method", "CONNECT"), (":protocol", "websocket"),
                                   (":scheme", "https"), (":authority", h2.host),
                                   (":path", "/ws"), ("sec-websocket-version", "13")]))
        f = c.until(lambda f: f.stream_id == 1, "the CONNECT response")
        assert isinstance(f, HeadersFrame), f
        hdrs = dict(f.decoded)
        assert hdrs[":status"] == "200"
        assert "END_STREAM" not in f.flags

        for msg in (b"hello over RFC 8441", b"x" * 1000):
            d = DataFrame(1)
            d.data = ws_frame(1, msg)
            c.send(d)
            got = b""
            while len(got) < 2 or len(ws_parse(got)[1]) < len(msg):
                f = c.until(lambda f: f.stream_id == 1, "the echo")
                assert isinstance(f, DataFrame), f
                got += f.data
            assert ws_parse(got) == (1, msg)

        d = DataFrame(1)
        d.data = ws_frame(8, b"\x03\xe8")
        d.flags.add("END_STREAM")
        c.send(d)
        f = c.until(lambda f: f.stream_id == 1 and isinstance(f, DataFrame) and f.data,
                    "the close frame")
        assert ws_parse(f.data)[0] == 8
    finally:
        c.close()


def test_stream_flood_beyond_the_limit_is_refused(h2):
    c = RawH2(h2)
    try:
        # 1,000 requests at once, before even reading the server's SETTINGS.
        frames = [c.request(2 * i + 1, "/slow") for i in range(1000)]
        c.send(*frames)
        status, reset = {}, {}
        while len(status) + len(reset) < 1000:
            f = c.read_frame()
            assert f is not None, "connection closed"
            assert not isinstance(f, GoAwayFrame), f"GOAWAY {f.error_code}"
            if isinstance(f, RstStreamFrame):
                reset[f.stream_id] = f.error_code
            elif isinstance(f, HeadersFrame):
                status[f.stream_id] = dict(f.decoded)[":status"]
        limit = c.server_settings[SETTINGS_MAX_CONCURRENT_STREAMS]
        assert limit == 128
        assert set(reset.values()) == {REFUSED_STREAM}
        assert len(reset) == 1000 - limit
        assert set(status.values()) == {"200"} and len(status) == limit
        # The connection still serves requests.
        c.send(c.request(2001, "/hello"))
        assert c.response(2001)[::2] == (200, b"hello over h2\n")
    finally:
        c.close()


@pytest.mark.parametrize("bad,code", [
    # DATA on stream 0
    (b"\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd", PROTOCOL_ERROR),
    # a PING of 7 bytes
    (b"\x00\x00\x07\x06\x00\x00\x00\x00\x001234567", FRAME_SIZE_ERROR),
    # a header block that is not HPACK (index 0x7e beyond any table)
    (b"\x00\x00\x01\x01\x05\x00\x00\x00\x01\xfe", COMPRESSION_ERROR),
    # CONTINUATION without HEADERS
    (b"\x00\x00\x01\x09\x04\x00\x00\x00\x01\x82", PROTOCOL_ERROR),
], ids=["data-on-stream-0", "short-ping", "bad-hpack", "stray-continuation"])
def test_malformed_frames_close_only_that_connection(h2, bad, code):
    good = RawH2(h2)
    evil = RawH2(h2)
    try:
        good.send(good.request(1, "/slow"))  # in flight while the other one misbehaves
        evil.until(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags, "SETTINGS")
        evil.sock.sendall(bad)
        goaway = None
        while True:
            f = evil.read_frame()
            if f is None:
                break
            if isinstance(f, GoAwayFrame):
                goaway = f
        assert goaway is not None and goaway.error_code == code
        assert good.response(1)[::2] == (200, b"slow\n")
        good.send(good.request(3, "/hello"))
        assert good.response(3)[0] == 200
        assert h2.proc.poll() is None
    finally:
        good.close()
        evil.close()


def test_ping_flood_gets_enhance_your_calm(h2):
    c = RawH2(h2)
    try:
        c.sock.sendall(b"".join(PingFrame(0, opaque_data=struct.pack("!Q", i)).serialize()
                                for i in range(5000)))
        goaway = None
        while True:
            f = c.read_frame()
            if f is None:
                break
            if isinstance(f, GoAwayFrame):
                goaway = f
        assert goaway is not None and goaway.error_code == ENHANCE_YOUR_CALM
    finally:
        c.close()
    r = curl(h2, "--http2", "-w", "%{http_code}")
    assert r.stdout.decode().endswith("200")


def test_oversized_header_list_gets_431(h2):
    c = RawH2(h2)
    try:
        # Two 40 KB fields: past the advertised 64 KiB SETTINGS_MAX_HEADER_LIST_SIZE.
        block = c.enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", h2.host),
                              (":path", "/hello"), ("x-a", "a" * 40000), ("x-b", "b" * 40000)])
        h = HeadersFrame(1)
        h.data = block[:16000]
        h.flags.add("END_STREAM")
        frames = [h]
        rest = block[16000:]
        while rest:
            k = ContinuationFrame(1)
            k.data, rest = rest[:16000], rest[16000:]
            if not rest:
                k.flags.add("END_HEADERS")
            frames.append(k)
        c.send(*frames)
        assert c.response(1)[0] == 431
        c.send(c.request(3, "/hello"))
        assert c.response(3)[0] == 200
    finally:
        c.close()


def test_sigterm_sends_goaway_and_finishes_the_stream_in_flight(h2):
    c = RawH2(h2)
    try:
        c.send(c.request(1, "/slow"))
        c.until(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags, "SETTINGS")
        time.sleep(0.3)  # the request is with the upstream
        h2.proc.send_signal(signal.SIGTERM)
        goaway = c.until(lambda f: isinstance(f, GoAwayFrame), "GOAWAY")
        assert goaway.error_code == 0 and goaway.last_stream_id == 1
        assert c.response(1)[::2] == (200, b"slow\n")
        while c.read_frame() is not None:  # then the connection ends
            pass
        assert h2.proc.wait(timeout=10) == 0
    finally:
        c.close()


def test_200mb_download_over_h2_with_bounded_proxy_memory(h2):
    n = 200 << 20
    before = h2.rss_kb()
    need("curl")
    port = h2.https_port
    p = subprocess.Popen(["curl", "-sS", "--http2", "--cacert", str(h2.ca_path),
                          "--resolve", f"{h2.host}:{port}:127.0.0.1",
                          "--limit-rate", "100M", f"https://{h2.host}:{port}/big?{n}"],
                         stdout=subprocess.PIPE)
    h, got, peak = hashlib.sha256(), 0, 0
    while True:
        d = p.stdout.read(1 << 20)
        if not d:
            break
        h.update(d)
        got += len(d)
        peak = max(peak, h2.rss_kb())
    assert p.wait(timeout=60) == 0
    assert got == n
    want = hashlib.sha256()
    for _ in range(n // len(BIG_BLOCK)):
        want.update(BIG_BLOCK)
    assert h.hexdigest() == want.hexdigest()
    # The body streams through bounded buffers: proxyd never holds a noticeable part of it.
    # (Not under AddressSanitizer, whose quarantine keeps freed memory resident.)
    if "libasan" not in open(f"/proc/{h2.pid}/maps").read():
        assert peak - before < 48 * 1024, f"RSS grew by {peak - before} KiB"


def test_client_reset_mid_download_reaches_the_upstream(h2):
    BIG_ABORTED.clear()
    c = RawH2(h2)
    try:
        c.send(c.request(1, f"/big?{1 << 30}"))
        c.until(lambda f: isinstance(f, DataFrame) and f.stream_id == 1, "body bytes")
        c.send(RstStreamFrame(1, error_code=0x8))  # CANCEL
        # The exchange is cancelled and its upstream connection closed: the upstream's
        # write fails instead of pushing the whole gigabyte.
        assert BIG_ABORTED.wait(timeout=20)
        c.send(c.request(3, "/hello"))
        assert c.response(3)[::2] == (200, b"hello over h2\n")
    finally:
        c.close()


def test_upstream_dying_mid_body_resets_only_that_stream(h2):
    c = RawH2(h2)
    try:
        c.send(c.request(1, "/die"))
        f = c.until(lambda f: f.stream_id == 1 and isinstance(f, RstStreamFrame), "RST_STREAM")
        assert f.error_code == 0x2  # INTERNAL_ERROR: the client must not take it as complete
        c.send(c.request(3, "/hello"))
        assert c.response(3)[::2] == (200, b"hello over h2\n")
    finally:
        c.close()
