# SPDX-License-Identifier: MIT
"""Shared fixtures and helpers for the locald-superd end-to-end tests (test_superd_*.py).

    from superd_fixtures import *       # the `sd` fixture, sv, env_pb, BusError, helpers

    def test_x(sd):
        proj = sd.project('''
            [services.web]
            command = "/usr/bin/python3 -m http.server $PORT"
        ''', files={"x.py": "..."})
        sd.apply(proj)                               # ApplyProject(wait=True)
        web = sd.wait_state(proj, "web", "running")
        lines = sd.logs(proj, "web", streams=["system"])

Each test gets its own superd (short runtime/state dirs under /tmp: socket paths must fit
in sun_path), and projects with unique names (service cgroups live in one tree shared by
every superd on the machine). At teardown superd is stopped (SIGTERM: it stops every
service), then the fixture looks for anything of the test that survived — processes whose
environment names one of its projects, or that run in its project directories, and
non-empty cgroups of its projects — kills it and fails the test.
"""

import os
import shutil
import signal
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from locald_bus import BusError, Client, Subscriber, Superd, pb  # noqa: F401

env_pb, sv = pb()

SUPERD = "services/superd/locald-superd"
PY = "/usr/bin/python3"
CGROUP_BASE = "/sys/fs/cgroup/unified/locald-superd"

__all__ = ["sd", "sv", "env_pb", "BusError", "Subscriber", "PY", "state_name", "wait_until",
           "pid_alive", "proc_env", "SuperdHarness"]


def state_name(s):
    """SERVICE_STATE_RUNNING -> "running"."""
    return sv.ServiceState.Name(s).removeprefix("SERVICE_STATE_").lower()


def wait_until(pred, timeout=20.0, interval=0.05, what="condition"):
    """Poll pred() until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def proc_env(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return {}
    out = {}
    for kv in data.split(b"\0"):
        k, sep, v = kv.partition(b"=")
        if sep:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def _all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


STREAMS = {"stdout": sv.LOG_STREAM_STDOUT, "stderr": sv.LOG_STREAM_STDERR,
           "system": sv.LOG_STREAM_SYSTEM}


class SuperdHarness:
    def __init__(self, binary, root, tmp_path):
        self.binary = binary
        self.root = Path(root)
        self.tmp_path = Path(tmp_path)
        self.daemons = []
        self.projects = {}  # name -> directory
        self._client = None

    # ---- the daemon ----

    def start(self, embedded=False, env=None):
        """Start a superd (the fixture already started one: this one replaces it)."""
        if self.daemons and self.daemons[-1].proc.poll() is None:
            self.daemons[-1].stop(timeout=40)
        d = Superd(self.binary, self.root, embedded=embedded, env=env).start()
        self.daemons.append(d)
        self._reset_client()
        return d

    @property
    def daemon(self):
        return self.daemons[-1]

    @property
    def runtime(self):
        return self.root / "rt"

    @property
    def state(self):
        return self.root / "st"

    def kill9(self):
        self.daemon.kill9()
        self._reset_client()

    def _reset_client(self):
        if self._client:
            self._client.close()
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self.daemon.client()
        return self._client

    def call(self, timeout=60.0, **kw):
        return self.client.call(timeout=timeout, **kw)

    def subscribe(self, prefix):
        s = Subscriber(self.runtime, prefix)
        # ZeroMQ subscriptions take a moment to reach the publisher ("slow joiner").
        time.sleep(0.3)
        return s

    def superd_log(self):
        return self.daemon.log.read_text(errors="replace")

    # ---- projects ----

    def project(self, services_toml, files=None, name=None, dotenv=None):
        """A project dir under tmp_path with a unique name; returns that name."""
        name = name or f"t{uuid.uuid4().hex[:10]}"
        d = self.tmp_path / name
        d.mkdir()
        self.projects[name] = d
        self.write_config(name, services_toml)
        for fname, text in (files or {}).items():
            p = d / fname
            p.write_text(textwrap.dedent(text).lstrip())
            if fname.endswith(".sh"):
                p.chmod(0o755)
        if dotenv is not None:
            (d / ".env").write_text(textwrap.dedent(dotenv).lstrip())
        return name

    def write_config(self, name, services_toml):
        d = self.projects[name]
        (d / "locald.toml").write_text(
            f'[project]\nname = "{name}"\n\n' + textwrap.dedent(services_toml).lstrip())

    def dir(self, name):
        return self.projects[name]

    def apply(self, name, wait=True, timeout=60.0, services=()):
        rep = self.call(timeout=timeout, apply_project=sv.ApplyProject(
            path=str(self.projects[name]), wait=wait, services=list(services)))
        return rep.apply_project

    # ---- status ----

    def status(self, project):
        rep = self.call(status=sv.Status(project=project))
        (ps,) = rep.status.projects
        return {s.service: s for s in ps.services}

    def service(self, project, service):
        return self.status(project)[service]

    def wait_state(self, project, service, states, timeout=30.0, pred=None):
        """Poll Status until the service is in one of states (names like "running");
        returns its ServiceStatus."""
        if isinstance(states, str):
            states = [states]
        last = [None]

        def check():
            s = self.service(project, service)
            last[0] = s
            if state_name(s.state) in states and (pred is None or pred(s)):
                return s
            return None

        try:
            return wait_until(check, timeout, what=f"{service} in {states}")
        except AssertionError:
            s = last[0]
            raise AssertionError(
                f"{service}: wanted {states}, is {state_name(s.state) if s else '?'} "
                f"({s.status_reason if s else ''!r}); logs: "
                f"{[l.text for l in self.logs(project, service)][-20:]}") from None

    # ---- logs ----

    def logs_page(self, project, service="", cursor="", limit=10000, streams=None, tail=False,
                  since_usec=0):
        rep = self.call(logs=sv.Logs(project=project, service=service, cursor=cursor,
                                     limit=limit, tail=tail, since_usec=since_usec,
                                     streams=[STREAMS[s] for s in (streams or [])]))
        return rep.logs

    def logs(self, project, service="", streams=None, cursor=""):
        """Every stored line from the cursor on (paging until `more` is false)."""
        out = []
        while True:
            page = self.logs_page(project, service, cursor, streams=streams)
            out.extend(page.lines)
            cursor = page.next_cursor
            if not page.more:
                return out

    def system_lines(self, project, service):
        return [l for l in self.logs(project, service, streams=["system"])]

    def wait_log(self, project, service, pred, streams=None, timeout=30.0):
        """The first stored line for which pred(line) holds."""
        def check():
            for l in self.logs(project, service, streams=streams):
                if pred(l):
                    return l
            return None
        return wait_until(check, timeout, interval=0.1, what=f"a log line of {service}")

    # ---- teardown ----

    def _leftovers(self):
        names = set(self.projects)
        dirs = [str(d) for d in self.projects.values()]
        mine = {os.getpid()}
        found = []
        for pid in _all_pids():
            if pid in mine or not pid_alive(pid):
                continue
            env = proc_env(pid)
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                cwd = ""
            if env.get("LOCALD_PROJECT") in names or any(
                    cwd == d or cwd.startswith(d + "/") for d in dirs):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                    stat = Path(f"/proc/{pid}/stat").read_text().strip()
                except OSError:
                    cmd, stat = b"?", "?"
                found.append((pid, cmd.decode(errors="replace").strip(), stat))
        return found

    def _cgroup_leftovers(self):
        found = []
        for name in self.projects:
            base = Path(CGROUP_BASE) / name
            if not base.is_dir():
                continue
            for procs in base.rglob("cgroup.procs"):
                try:
                    pids = procs.read_text().split()
                except OSError:
                    continue
                if pids:
                    found.append((str(procs.parent), pids))
        return found

    def teardown(self):
        self._reset_client()
        problems = []
        for d in self.daemons:
            if d.proc and d.proc.poll() is None:
                d.stop(timeout=40)
        # What superd killed last (cgroup.kill does not wait) may take a moment to go.
        deadline = time.monotonic() + 3
        while (left := self._leftovers()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            problems.append(f"processes survived superd's exit: {left}")
            for pid, *_ in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        cg = self._cgroup_leftovers()
        if cg:
            problems.append(f"non-empty service cgroups after superd's exit: {cg}")
            for path, _ in cg:
                try:
                    Path(path, "cgroup.kill").write_text("1")
                except OSError:
                    pass
        # Empty leaves of our projects go (superd leaves them for the next run).
        for name in self.projects:
            base = Path(CGROUP_BASE) / name
            if base.is_dir():
                for leaf in sorted(base.rglob("*"), key=lambda p: -len(p.parts)):
                    if leaf.is_dir():
                        try:
                            leaf.rmdir()
                        except OSError:
                            pass
                try:
                    base.rmdir()
                except OSError:
                    pass
        return problems


@pytest.fixture
def sd(build_binary, tmp_path):
    """A running superd of the test's own (SuperdHarness)."""
    binary = build_binary(SUPERD)
    root = tempfile.mkdtemp(prefix="sd-", dir="/tmp")
    h = SuperdHarness(binary, root, tmp_path)
    h.start()
    failed = None
    try:
        yield h
    finally:
        problems = h.teardown()
        log = ""
        try:
            log = Path(root, "superd.log").read_text(errors="replace")
        except OSError:
            pass
        shutil.rmtree(root, ignore_errors=True)
        if problems:
            failed = "; ".join(problems) + f"\nsuperd log:\n{log[-4000:]}"
    if failed:
        pytest.fail(failed)
