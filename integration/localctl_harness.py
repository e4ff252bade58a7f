# SPDX-License-Identifier: MIT
"""Driving the real `localctl` as a user would, for integration/test_localctl_*.py.

    def test_x(lc):
        proj = lc.demo()                         # a copy of examples/demo, unique name
        r = lc.run("up", "-d", proj.dir)         # CompletedProcess (text)
        st = lc.status_json()

Each test gets its own LOCALD_RUNTIME_DIR / LOCALD_STATE_DIR / LOCALD_CONFIG_DIR in a
fresh directory under /tmp (socket paths must fit in sun_path), so the superd that
localctl starts (embedded mode) is the test's own. At teardown: `localctl server stop`,
then a fallback kill of any superd of that runtime dir, then every process that carries
the test's runtime dir in its environment (services inherit localctl's environment) is
killed and reported: nothing a test starts survives it.
"""

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

SOURCE_DIR = Path(__file__).resolve().parent.parent
LOCALCTL = "ctl/localctl"


def _pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def proc_env(pid):
    try:
        data = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for kv in data.split(b"\0"):
        k, sep, v = kv.partition(b"=")
        if sep:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Project:
    def __init__(self, name, d):
        self.name = name
        self.dir = Path(d)

    @property
    def toml(self):
        return self.dir / "locald.toml"


class Localctl:
    def __init__(self, binary, tmp_path):
        self.binary = str(binary)
        self.tmp_path = Path(tmp_path)
        self.root = Path(tempfile.mkdtemp(prefix="lc-", dir="/tmp"))
        self.runtime = self.root / "rt"
        self.state = self.root / "st"
        self.config = self.root / "cf"
        self.env = dict(os.environ, LOCALD_RUNTIME_DIR=str(self.runtime),
                        LOCALD_STATE_DIR=str(self.state), LOCALD_CONFIG_DIR=str(self.config))
        self.env.pop("NO_COLOR", None)
        self.projects = []

    # ---- running localctl ----

    def run(self, *args, cwd=None, timeout=120, env=None, input=None):
        e = dict(self.env, **(env or {}))
        return subprocess.run([self.binary, *map(str, args)], cwd=cwd, env=e, text=True,
                              capture_output=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, *args, cwd=None, env=None, text=True, **kw):
        e = dict(self.env, **(env or {}))
        return subprocess.Popen([self.binary, *map(str, args)], cwd=cwd, env=e, text=text,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, **kw)

    def pty_spawn(self, *args, cwd=None, cols=100):
        """Run under a pseudo-terminal; returns a PtyProcess."""
        return PtyProcess([self.binary, *map(str, args)], env=self.env, cwd=cwd)

    def status_json(self, *args, cwd=None):
        r = self.run("status", "--json", *args, cwd=cwd)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def services(self, project):
        st = self.status_json("--all")
        for p in st["projects"]:
            if p["name"] == project:
                return {s["name"]: s for s in p["services"]}
        raise AssertionError(f"project {project} not in status: {st}")

    # ---- projects ----

    def demo(self):
        """A copy of examples/demo with a unique project name (service cgroups are
        shared by every superd on the machine, keyed by project name)."""
        name = f"demo-{uuid.uuid4().hex[:8]}"
        d = self.tmp_path / name
        shutil.copytree(SOURCE_DIR / "examples" / "demo", d)
        toml = d / "locald.toml"
        toml.write_text(toml.read_text().replace('name = "demo"', f'name = "{name}"', 1))
        p = Project(name, d)
        self.projects.append(p)
        return p

    def project(self, toml_body, files=None, name=None):
        name = name or f"t{uuid.uuid4().hex[:10]}"
        d = self.tmp_path / name
        d.mkdir()
        (d / "locald.toml").write_text(f'[project]\nname = "{name}"\n\n{toml_body}')
        for fname, text in (files or {}).items():
            (d / fname).write_text(text)
        p = Project(name, d)
        self.projects.append(p)
        return p

    def procfile_project(self, procfile, dirname=None):
        dirname = dirname or f"pf{uuid.uuid4().hex[:8]}"
        d = self.tmp_path / dirname
        d.mkdir()
        (d / "Procfile").write_text(procfile)
        p = Project(dirname, d)
        self.projects.append(p)
        return p

    # ---- processes ----

    def superd_pids(self):
        out = []
        for pid in _pids():
            if not alive(pid):
                continue
            if "locald-superd" in cmdline(pid).split(" ")[0] and \
                    proc_env(pid).get("LOCALD_RUNTIME_DIR") == str(self.runtime):
                out.append(pid)
        return out

    def project_pids(self):
        """Service processes of this test's projects (superd sets LOCALD_PROJECT)."""
        names = {p.name for p in self.projects}
        return [pid for pid in _pids()
                if alive(pid) and proc_env(pid).get("LOCALD_PROJECT") in names]

    def leftovers(self):
        mine = os.getpid()
        return [(pid, cmdline(pid)) for pid in _pids()
                if pid != mine and alive(pid)
                and proc_env(pid).get("LOCALD_RUNTIME_DIR") == str(self.runtime)]

    def teardown(self):
        problems = []
        if self.superd_pids():
            r = self.run("server", "stop", timeout=90)
            if r.returncode != 0:
                problems.append(f"server stop failed: {r.stderr}")
        deadline = time.monotonic() + 5
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid, cmd in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            problems.append(f"processes survived `localctl server stop`: {left}")
        shutil.rmtree(self.root, ignore_errors=True)
        return problems

    def superd_log(self):
        try:
            return (self.state / "superd.log").read_text(errors="replace")
        except OSError:
            return ""


class PtyProcess:
    """A program on a pseudo-terminal: output collected as bytes, input as keystrokes."""

    def __init__(self, argv, env, cwd=None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                if cwd:
                    os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.buf = b""
        self.status = None

    def pump(self, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            r, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if r:
                try:
                    d = os.read(self.fd, 65536)
                except OSError:
                    return False
                if not d:
                    return False
                self.buf += d

    def wait_for(self, pattern, timeout=30):
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        end = time.monotonic() + timeout
        while not rx.search(self.buf):
            if time.monotonic() > end or not self.pump(0.1) and not rx.search(self.buf):
                if rx.search(self.buf):
                    break
                raise AssertionError(f"no {pattern!r} within {timeout}s in {self.text()[-3000:]!r}")
        return rx.search(self.buf)

    def text(self):
        return self.buf.decode(errors="replace")

    def write(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.05)
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                self.pump(0.1)
                return self.status
        raise AssertionError(f"still running after {timeout}s: {self.text()[-2000:]!r}")

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass


@pytest.fixture
def lc(build_binary, tmp_path):
    binary = build_binary(LOCALCTL)
    h = Localctl(binary, tmp_path)
    failed = None
    try:
        yield h
    finally:
        log = h.superd_log()
        problems = h.teardown()
        if problems:
            failed = "; ".join(problems) + f"\nsuperd log:\n{log[-4000:]}"
    if failed:
        pytest.fail(failed)
