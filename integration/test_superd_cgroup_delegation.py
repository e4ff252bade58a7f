# SPDX-License-Identifier: MIT
"""An unprivileged locald-superd with locald-shim installed runs in the cgroup the shim
delegates: superd asks `locald-shim cgroup-setup --move-parent`, moves itself into
<cgroup2>/locald/<uid>/superd and starts every service in its own leaf under
<cgroup2>/locald/<uid>/services, so stopping a service also kills what escaped its
process group. A superd restarted while the services run (kill -9, then a new one)
re-adopts them in the same tree.

Run as root (a user is created, the shim installed setuid root); skipped under systemd
(it delegates through user@.service and the shim refuses) or without cgroup2."""

import json
import os
import secrets
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from shim_fixtures import *  # noqa: F401,F403
from shim_fixtures import as_user
from superd_fixtures import wait_until

WAIT = 60.0


def cgroup2_mount():
    """The first cgroup2 mount point (the one locald-shim and superd use), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4]
    return None


def own_cgroup(pid):
    """The cgroup v2 path of pid ("/locald/1001/superd"), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def pids_running(argv):
    """Live processes whose argv is exactly argv."""
    want = b"\0".join(a.encode() for a in argv) + b"\0"
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if Path(f"/proc/{p}/cmdline").read_bytes() == want and alive(int(p)):
                out.append(int(p))
        except OSError:
            pass
    return out


class UserLocald:
    """superd and localctl run as `user`, with directories of its own."""

    def __init__(self, user, shim, superd, localctl, mount):
        self.user = user
        self.mount = mount
        self.delegated = Path(mount, "locald", str(user.pw_uid))
        self.root = Path(tempfile.mkdtemp(prefix="locald-cgd-"))
        os.chmod(self.root, 0o755)
        # Copies the user can execute (the build dir may be private), in a root-owned dir.
        self.bin = self.root / "bin"
        self.bin.mkdir(mode=0o755)
        self.superd = self.bin / "locald-superd"
        self.localctl = self.bin / "localctl"
        for src, dst in ((superd, self.superd), (localctl, self.localctl)):
            dst.write_bytes(Path(src).read_bytes())
            dst.chmod(0o755)
        self.dirs = {}
        for n in ("rt", "st", "cf", "proj"):
            d = self.root / n
            d.mkdir(mode=0o700)
            os.chown(d, user.pw_uid, user.pw_gid)
            self.dirs[n] = d
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": user.pw_dir,
            "LOCALD_RUNTIME_DIR": str(self.dirs["rt"]),
            "LOCALD_STATE_DIR": str(self.dirs["st"]),
            "LOCALD_CONFIG_DIR": str(self.dirs["cf"]),
            "LOCALD_SHIM": str(shim),
            "LOCALD_EMBEDDED": "0",
            "NO_COLOR": "1",
        }
        self.daemons = []

    def start_superd(self):
        n = len(self.daemons)
        log = self.root / f"superd-{n}.log"
        with open(log, "wb") as logf:
            proc = subprocess.Popen(as_user(self.user, [self.superd, "--no-embedded"]),
                                    env=self.env, stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=logf, cwd=self.root)
        self.daemons.append((proc, log))

        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"superd exited {proc.returncode}: {log.read_text()}")
            return "ready on" in log.read_text(errors="replace")

        wait_until(ready, timeout=WAIT, what="superd to be ready")
        return proc, log

    def localctl_run(self, *args, cwd=None, check=True):
        r = subprocess.run(as_user(self.user, [self.localctl, *args]), env=self.env,
                           cwd=cwd or self.root, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        if check:
            logs = "".join(l.read_text(errors="replace") for _, l in self.daemons)
            assert r.returncode == 0, f"localctl {args}: {r.stdout}{r.stderr}\n{logs}"
        return r

    def project(self, name, toml):
        d = self.dirs["proj"] / name
        d.mkdir()
        (d / "locald.toml").write_text(f'[project]\nname = "{name}"\n\n{toml}')
        os.chown(d, self.user.pw_uid, self.user.pw_gid)
        os.chown(d / "locald.toml", self.user.pw_uid, self.user.pw_gid)
        return d

    def services(self, project):
        st = json.loads(self.localctl_run("status", "--json", "--all").stdout)
        for p in st["projects"]:
            if p["name"] == project:
                return {s["name"]: s for s in p["services"]}
        raise AssertionError(f"project {project} not in status: {st}")

    def teardown(self):
        for proc, _ in self.daemons:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        # Whatever survived in the delegated tree goes, then the directories (leaves first).
        left = []
        if self.delegated.is_dir():
            for procs in self.delegated.rglob("cgroup.procs"):
                left += procs.read_text().split()
            if left:
                (self.delegated / "cgroup.kill").write_text("1")
                wait_until(lambda: "populated 0" in
                           (self.delegated / "cgroup.events").read_text(),
                           timeout=WAIT, what="cgroup to empty")
            for dirpath, _, _ in sorted(os.walk(self.delegated), key=lambda w: -len(w[0])):
                os.rmdir(dirpath)
            try:
                os.rmdir(self.delegated.parent)  # other users' directories may remain
            except OSError:
                pass
        subprocess.run(["rm", "-rf", str(self.root)], check=False)
        return left


@pytest.fixture
def user_locald(shim, shim_user, build_binary):
    if os.path.exists("/run/systemd/system"):
        pytest.skip("/run/systemd/system exists: systemd delegates cgroups through "
                    "user@.service and locald-shim refuses cgroup-setup")
    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 filesystem is mounted (cgroup v1 only)")
    if Path(mount, "locald", str(shim_user.pw_uid)).exists():
        pytest.skip(f"{mount}/locald/{shim_user.pw_uid} exists already (left by someone else)")
    lu = UserLocald(shim_user, shim, build_binary("services/superd/locald-superd"),
                    build_binary("ctl/localctl"), mount)
    try:
        yield lu
    finally:
        left = lu.teardown()
    assert not left, f"processes left in the delegated cgroup after superd's exit: {left}"


def test_unprivileged_superd_runs_services_in_the_delegated_cgroup(user_locald):
    lu = user_locald
    uid = lu.user.pw_uid
    mark = str(900000 + secrets.randbelow(90000))
    name = f"cgd{secrets.token_hex(4)}"
    # `stubborn` ignores SIGTERM and leaves a grandchild in a session of its own: neither
    # the stop signal nor a process-group SIGKILL reaches it, only its cgroup does.
    proj = lu.project(name, f"""
[services.web]
type = "worker"
command = "exec sleep {mark}1"

[services.stubborn]
type = "worker"
command = "trap '' TERM; setsid sleep {mark}2 & exec sleep {mark}3"
stop_timeout = "1s"
""")

    superd, log = lu.start_superd()
    text = log.read_text(errors="replace")
    base = f"{lu.delegated}/services"
    assert f"service cgroups under {base}: " in text, text
    assert "delegated by locald-shim" in text and "moved there at start" in text, text
    assert own_cgroup(superd.pid) == f"/locald/{uid}/superd"
    # The delegated directory itself holds no process (it may get controllers).
    assert (lu.delegated / "cgroup.procs").read_text() == ""

    lu.localctl_run("up", "-d", str(proj), cwd=proj)
    svcs = lu.services(name)
    assert {s["state"] for s in svcs.values()} == {"running"}, svcs
    for s in svcs.values():
        cg = own_cgroup(s["pid"])
        assert cg.startswith(f"/locald/{uid}/services/{name}/{s['name']}"), (s, cg)
    (grandchild,) = wait_until(lambda: pids_running(["sleep", f"{mark}2"]), timeout=WAIT,
                               what="the grandchild")
    assert own_cgroup(grandchild) == own_cgroup(svcs["stubborn"]["pid"])
    assert os.getsid(grandchild) != svcs["stubborn"]["pid"]

    # superd dies; a new one (started the same way) re-adopts the services in place.
    superd.kill()
    superd.wait()
    assert alive(svcs["web"]["pid"]) and alive(grandchild)
    superd2, log2 = lu.start_superd()
    assert f"service cgroups under {base}: " in log2.read_text(errors="replace")
    assert own_cgroup(superd2.pid) == f"/locald/{uid}/superd"
    again = lu.services(name)
    assert {n: s["pid"] for n, s in again.items()} == {n: s["pid"] for n, s in svcs.items()}
    assert {s["state"] for s in again.values()} == {"running"}, again

    # Stopping `stubborn` leaves nothing of it behind.
    lu.localctl_run("stop", "stubborn", cwd=proj)
    assert lu.services(name)["stubborn"]["state"] == "stopped"
    wait_until(lambda: not alive(grandchild), timeout=WAIT, what="the grandchild to be killed")
    assert not alive(svcs["stubborn"]["pid"])
    assert alive(svcs["web"]["pid"])
    assert not pids_running(["sleep", f"{mark}3"])

    # SIGTERM: superd stops what is left and exits; its services' cgroups are empty.
    superd2.terminate()
    assert superd2.wait(60) == 0, log2.read_text(errors="replace")
    assert not alive(svcs["web"]["pid"])
    assert "populated 0" in (lu.delegated / "services" / "cgroup.events").read_text()


def doctor_cgroup(lu, env=None, user=True):
    argv = [lu.localctl, "doctor", "--json"]
    e = dict(lu.env, **(env or {}))
    r = subprocess.run(as_user(lu.user, argv) if user else argv, env=e, capture_output=True,
                       text=True, timeout=60, cwd=lu.root, stdin=subprocess.DEVNULL)
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    return checks["cgroup.delegation"]


def test_doctor_says_which_cgroup_superd_uses(user_locald):
    lu = user_locald
    # A user without the shim: nothing delegated, and the fix is named.
    c = doctor_cgroup(lu, {"LOCALD_SHIM": str(lu.root / "no-such-shim")})
    assert c["status"] == "warn" and c["fix"] == "sudo localctl admin setup", c
    assert f"{lu.delegated} is not delegated to us" in c["summary"], c
    # With the shim installed, superd gets the delegated cgroup when it starts.
    c = doctor_cgroup(lu)
    assert c["status"] == "pass", c
    assert f"uses {lu.delegated}/services" in c["summary"], c
    # Root: its own cgroup here, or <cgroup2>/locald; never "not delegated".
    c = doctor_cgroup(lu, user=False)
    assert c["status"] == "pass" and "superd uses" in c["summary"], c


def test_a_failing_shim_is_named_and_superd_falls_back(user_locald):
    lu = user_locald
    # Root-owned and setuid, so it counts as installed; a script runs without privilege
    # and fails the way a refusing shim does (exit 3, one line on stderr).
    fake = lu.bin / "locald-shim"
    fake.write_text("#!/bin/sh\necho 'locald-shim: cgroup-setup: refused for this test' >&2\n"
                    "exit 3\n")
    fake.chmod(0o4755)
    lu.env["LOCALD_SHIM"] = str(fake)
    superd, log = lu.start_superd()
    text = log.read_text(errors="replace")
    assert "locald-shim: cgroup-setup: refused for this test" in text, text
    (line,) = [l for l in text.splitlines() if "without their own cgroups" in l]
    assert f"{fake} cgroup-setup --move-parent: it refused" in line, line
    assert "stop uses process groups" in line
    assert own_cgroup(superd.pid) == own_cgroup(os.getpid())
    assert not lu.delegated.exists()
