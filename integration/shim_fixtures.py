# SPDX-License-Identifier: MIT
"""Fixtures for the locald-shim tests (run as root; skipped otherwise).

- shim_user:  an unprivileged user made for the session (useradd), removed afterwards
- shim:       locald-shim installed root:root 4755 in a fresh root-owned 0755 directory
- run_shim:   run the shim as shim_user (setpriv), optionally inside a private mount
              namespace with bind mounts, optionally with fd 3

Tests never touch the real /etc/hosts or trust store: anything the shim writes is a
private copy bind-mounted over the real path inside `unshare -m`.
"""

import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("the shim tests install a setuid binary and create a user: run as root")
    for tool in ("useradd", "userdel", "setpriv", "unshare", "mount"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="session")
def shim_user():
    _need_root()
    # Unique per fixture instance: each test module that imports this gets its own.
    name = f"lshim{os.getpid() % 100000}{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", name], check=True)
    pw = pwd.getpwnam(name)
    try:
        yield pw
    finally:
        subprocess.run(["userdel", "-r", "-f", name], check=False, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def shim(build_binary):
    _need_root()
    src = build_binary("shim/locald-shim")
    d = Path(tempfile.mkdtemp(prefix="locald-shim-bin-"))
    os.chmod(d, 0o755)
    dst = d / "locald-shim"
    shutil.copyfile(src, dst)
    os.chown(dst, 0, 0)
    os.chmod(dst, 0o4755)
    try:
        yield dst
    finally:
        shutil.rmtree(d, ignore_errors=True)


def ns_script(binds, body):
    """A sh script: private mount namespace with `binds` (src -> dst) then `body`."""
    lines = ["set -e"]
    for src, dst in binds:
        lines.append(f"mount --bind {shlex.quote(str(src))} {shlex.quote(str(dst))}")
    lines.append("set +e")
    lines.append(body)
    return "\n".join(lines)


def as_user(user, argv):
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            *[str(a) for a in argv]]


@pytest.fixture
def run_shim(shim, shim_user):
    """run_shim(args, input=b"", binds=(), fd3=None, env=None, user=shim_user) -> CompletedProcess"""

    def run(args, input=b"", binds=(), fd3=None, env=None, user=shim_user, timeout=60):
        cmd = shlex.join(as_user(user, [shim, *args]))
        pass_fds = ()
        if fd3 is not None:
            cmd = f"exec {cmd} 3<&{fd3}"
            pass_fds = (fd3,)
        if binds:
            argv = ["unshare", "-m", "--propagation", "private", "bash", "-c", ns_script(binds, cmd)]
        else:
            argv = ["bash", "-c", cmd]
        return subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                              pass_fds=pass_fds, env=env if env is not None else
                              {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    return run


def shim_cmd(shim, user, args):
    """The shell words that run the shim as `user` (for scripts run in a namespace)."""
    return shlex.join(as_user(user, [shim, *args]))
