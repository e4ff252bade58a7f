# SPDX-License-Identifier: MIT
"""A small synchronous client for the locald bus, for tests and benchmarks.

    pb = generate_protos()                 # once; puts locald.v1 modules on sys.path
    c = Client(runtime_dir, "superd")
    reply = c.call(apply_project=sv.ApplyProject(path="/abs/dir", wait=True))

Errors come back as BusError (code name, message, hint, details).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import zmq

SOURCE_DIR = Path(__file__).resolve().parent.parent
_PB_DIR = None


def generate_protos(out=None):
    """protoc --python_out for proto/locald/v1/*.proto; returns the directory."""
    global _PB_DIR
    if _PB_DIR is not None:
        return _PB_DIR
    out = Path(out or tempfile.mkdtemp(prefix="locald-pb-"))
    protos = sorted(str(p) for p in (SOURCE_DIR / "proto" / "locald" / "v1").glob("*.proto"))
    subprocess.run([shutil.which("protoc") or "protoc", f"-I{SOURCE_DIR / 'proto'}",
                    f"--python_out={out}", *protos], check=True)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    _PB_DIR = out
    return out


def pb():
    """(envelope_pb2, supervisor_pb2)"""
    generate_protos()
    from locald.v1 import envelope_pb2, supervisor_pb2
    return envelope_pb2, supervisor_pb2


class BusError(Exception):
    def __init__(self, error):
        env, _ = pb()
        self.code = env.Error.Code.Name(error.code)
        self.message = error.message
        self.hint = error.hint
        self.details = list(error.details)
        super().__init__(f"{self.code}: {error.message}" + (f" (hint: {error.hint})" if error.hint else ""))


class Client:
    def __init__(self, runtime_dir, daemon="superd", ctx=None):
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(f"ipc://{runtime_dir}/{daemon}.rpc")

    def call(self, timeout=30.0, **kw):
        env, _ = pb()
        req = env.Request(api_version=1, request_id=uuid.uuid4().hex, **kw)
        self.sock.send(req.SerializeToString())
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise TimeoutError(f"no reply within {timeout}s")
            rep = env.Reply.FromString(self.sock.recv())
            if rep.request_id != req.request_id:
                continue
            if rep.WhichOneof("result") == "error":
                raise BusError(rep.error)
            return rep

    def send_raw(self, data, timeout=10.0):
        """Send arbitrary bytes as a request frame; return the decoded Reply."""
        env, _ = pb()
        self.sock.send(data)
        if not self.sock.poll(int(timeout * 1000)):
            raise TimeoutError("no reply")
        return env.Reply.FromString(self.sock.recv())

    def close(self):
        self.sock.close()


class Subscriber:
    def __init__(self, runtime_dir, prefix="", daemon="superd", ctx=None):
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.linger = 0
        self.sock.connect(f"ipc://{runtime_dir}/{daemon}.events")
        self.sock.subscribe(prefix.encode())

    def receive(self, timeout=5.0):
        env, _ = pb()
        if not self.sock.poll(int(timeout * 1000)):
            return None
        _topic, data = self.sock.recv_multipart()
        return env.Event.FromString(data)

    def close(self):
        self.sock.close()


class Superd:
    """A locald-superd of its own: runtime and state dirs, started and stopped."""

    def __init__(self, binary, root, extra_args=(), env=None, embedded=False):
        """embedded=False passes --no-embedded: no proxyd as the `system` project (tests
        of superd alone); embedded=True lets superd start it, on free ports unless `env`
        says otherwise."""
        self.binary = str(binary)
        self.root = Path(root)
        self.runtime = self.root / "rt"
        self.state = self.root / "st"
        self.runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, LOCALD_RUNTIME_DIR=str(self.runtime),
                        LOCALD_STATE_DIR=str(self.state), **(env or {}))
        self.args = list(extra_args)
        if not embedded:
            self.args.append("--no-embedded")
        else:
            self.env.setdefault("LOCALD_HTTP_PORT", "0")
            self.env.setdefault("LOCALD_HTTPS_PORT", "0")
        self.proc = None
        self.log = self.root / "superd.log"

    def start(self, timeout=10.0):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, *self.args], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf)
        deadline = time.monotonic() + timeout
        c = Client(self.runtime)
        try:
            while True:
                env, _ = pb()
                try:
                    c.call(timeout=0.5, ping=env.Ping())
                    return self
                except TimeoutError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"superd did not start: {self.log.read_text()}")
        finally:
            c.close()

    def client(self):
        return Client(self.runtime)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout=30.0):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
