# SPDX-License-Identifier: MIT
"""Fixtures shared by the end-to-end tests.

Run with the Python that has pyzmq and protobuf (Debian's):
    LOCALD_BUILD_DIR=/work/main/build /usr/bin/python3 -m pytest integration/

- build_dir:     the meson build dir ($LOCALD_BUILD_DIR, default <repo>/build)
- build_binary:  path of a built binary (relative to build_dir), skips if not built
- source_dir:    the repository
- runtime_dir:   a fresh 0700 directory, also exported as LOCALD_RUNTIME_DIR
- start_binary:  start a program, optionally wait for a line on its stdout; stopped
                 (SIGTERM, then SIGKILL) at teardown
- pb_dir:        Python modules generated from proto/ with protoc (once per session)
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

SOURCE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def source_dir():
    return SOURCE_DIR


@pytest.fixture(scope="session")
def build_dir():
    d = Path(os.environ.get("LOCALD_BUILD_DIR", SOURCE_DIR / "build"))
    if not d.is_dir():
        pytest.skip(f"build dir {d} does not exist (set LOCALD_BUILD_DIR)")
    return d


@pytest.fixture(scope="session")
def build_binary(build_dir):
    def find(relpath):
        p = build_dir / relpath
        if not os.access(p, os.X_OK):
            pytest.skip(f"{relpath} is not built in {build_dir}")
        return p

    return find


@pytest.fixture
def runtime_dir(monkeypatch):
    # Short, under /tmp: socket paths must fit in sun_path (108 bytes).
    d = tempfile.mkdtemp(prefix="locald-rt-")
    os.chmod(d, 0o700)
    monkeypatch.setenv("LOCALD_RUNTIME_DIR", d)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


class Process:
    """A started program whose stdout is collected line by line in the background."""

    def __init__(self, argv, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, text=True, bufsize=1)
        self.lines = []
        self.stderr_lines = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, sink):
        for line in stream:
            with self._cond:
                sink.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, predicate, timeout=10.0):
        """The first stdout line for which predicate(line) is true."""
        if isinstance(predicate, str):
            prefix = predicate
            predicate = lambda line: line.startswith(prefix)  # noqa: E731
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._pumping()):
                    raise AssertionError(
                        f"{self.argv[0]}: no matching line within {timeout}s; "
                        f"stdout={self.lines!r} stderr={self.stderr_lines!r} rc={self.proc.poll()}")
                self._cond.wait(min(left, 0.1))

    def _pumping(self):
        return any(t.is_alive() for t in self._threads)

    def output(self):
        with self._cond:
            return list(self.lines)

    def stop(self, timeout=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(1)
        return self.proc.returncode


@pytest.fixture
def start_binary():
    started = []

    def start(argv, env=None, ready=None, timeout=10.0, cwd=None):
        p = Process(argv, env=env, cwd=cwd)
        started.append(p)
        if ready is not None:
            p.wait_for_line(ready, timeout)
        return p

    yield start
    for p in reversed(started):
        p.stop()


@pytest.fixture(scope="session")
def pb_dir(tmp_path_factory):
    protoc = shutil.which("protoc")
    if not protoc:
        pytest.skip("protoc (protobuf-compiler) is not installed")
    out = tmp_path_factory.mktemp("locald-pb")
    protos = sorted(str(p) for p in (SOURCE_DIR / "proto" / "locald" / "v1").glob("*.proto"))
    subprocess.run([protoc, f"-I{SOURCE_DIR / 'proto'}", f"--python_out={out}", *protos], check=True)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    return out
