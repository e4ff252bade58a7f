# SPDX-License-Identifier: MIT
"""Helpers for the locald-fsd tests: real FUSE and overlayfs mounts, always undone.

Every mount made here is registered and lazily unmounted at teardown (fusermount3 -u -z
or umount -l), whatever happened in the test; every fsd process is killed."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest


def need_root_and_fuse():
    if os.geteuid() != 0:
        pytest.skip("fsd tests mount filesystems: run as root")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing")


def is_mount(path):
    path = os.path.realpath(str(path))
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == path:
                return True
    return False


def wait_mounted(path, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_mount(path):
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"locald-fsd exited ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.02)
    raise AssertionError(f"{path} was not mounted within {timeout}s")


def lazy_unmount(path):
    path = str(path)
    while is_mount(path):
        r = subprocess.run(["fusermount3", "-u", "-z", path], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True)
            if is_mount(path):
                break


class Mounts:
    def __init__(self, fsd_binary):
        self.fsd = fsd_binary
        self.paths = []
        self.procs = []

    def fsd_mount(self, lowers, upper, work, mnt, extra_opts="", patterns=(), env=None):
        opts = "lowerdir=" + ":".join(str(l) for l in lowers) + f",upperdir={upper},workdir={work}"
        if extra_opts:
            opts += "," + extra_opts
        argv = [str(self.fsd), "mount", "-o", opts]
        for p in patterns:
            argv += ["--pattern", p]
        argv.append(str(mnt))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env)
        self.procs.append(proc)
        self.paths.append(str(mnt))
        wait_mounted(mnt, proc)
        return proc

    def overlay_mount(self, lowers, upper, work, mnt):
        opts = ("lowerdir=" + ":".join(str(l) for l in lowers) +
                f",upperdir={upper},workdir={work},redirect_dir=off,index=off,metacopy=off,xino=off")
        self.paths.append(str(mnt))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(mnt)], check=True,
                       capture_output=True)

    def stop_fsd(self, proc, mnt, sig=signal.SIGTERM):
        proc.send_signal(sig)
        proc.wait(timeout=15)

    def umount(self, mnt):
        lazy_unmount(mnt)

    def cleanup(self):
        for p in reversed(self.paths):
            lazy_unmount(p)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass


@pytest.fixture
def mounts(build_binary):
    need_root_and_fuse()
    m = Mounts(build_binary("services/fsd/locald-fsd"))
    try:
        yield m
    finally:
        m.cleanup()


@pytest.fixture
def fsd_tmp(tmp_path):
    """A scratch dir not under another FUSE mount; removed after the mounts are gone."""
    yield tmp_path


# ---- rootless: an unprivileged user, a private /dev/fuse, user namespaces ----

def need_rootless_tools():
    if os.geteuid() != 0:
        pytest.skip("the rootless fsd tests create a user and a private /dev/fuse: run as root")
    for tool in ("useradd", "setpriv", "unshare", "mount", "mknod", "fusermount3"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing")


class RootlessWorld:
    """A root-owned 0755 directory the test user can traverse: bin/ (copies of the
    binaries, readable and executable by anyone: build dirs may be private), dev/
    (the fresh /dev/fuse nodes), and home/ owned by the user for its directories.

    run(body) runs a bash script as root in a private mount and pid namespace (every
    mount and process in it dies with it, whatever happens): the script first
    bind-mounts a fresh `fuse_mode` /dev/fuse node over the real one (never changed),
    then runs `body`. user_cmd(argv, userns) gives the shell words that run argv as
    the user, optionally in a user namespace where the user is root (unshare -U -r -m)."""

    PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

    def __init__(self, user, binaries):
        import tempfile
        self.user = user
        self.root = Path(tempfile.mkdtemp(prefix="locald-fsdrl-"))
        os.chmod(self.root, 0o755)
        self.bin = self.root / "bin"
        self.dev = self.root / "dev"
        self.home = self.root / "home"
        for d in (self.bin, self.dev, self.home):
            d.mkdir(mode=0o755)
        os.chown(self.home, user.pw_uid, user.pw_gid)
        self.exe = {}
        for src in binaries:
            dst = self.bin / Path(src).name
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o755)
            self.exe[Path(src).name] = dst

    def user_dir(self, *names):
        out = []
        for n in names:
            p = self.home / n
            p.mkdir(mode=0o755)
            os.chown(p, self.user.pw_uid, self.user.pw_gid)
            out.append(p)
        return out

    def user_cmd(self, argv, userns=False, env=()):
        import shlex
        words = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}",
                 "--clear-groups"]
        if userns:
            words += ["unshare", "-U", "-r", "-m"]
        words += ["env", "-i", f"PATH={self.PATH}", f"HOME={self.home}", *env]
        return shlex.join(words + [str(a) for a in argv])

    def run(self, body, fuse_mode="0666", timeout=180):
        import shlex
        node = self.dev / f"fuse{len(list(self.dev.iterdir()))}"
        script = "\n".join([
            "set -e",
            f"mknod -m {fuse_mode} {shlex.quote(str(node))} c 10 229",
            f"mount --bind {shlex.quote(str(node))} /dev/fuse",
            "set +e",
            body,
        ])
        return subprocess.run(
            ["unshare", "-m", "-p", "-f", "--kill-child", "--mount-proc", "--propagation", "private",
             "bash", "-c", script],
            capture_output=True, text=True, timeout=timeout, env={"PATH": self.PATH})

    def cleanup(self):
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.root)], check=False)


def userns_unavailable(world):
    """None if the user may create a user namespace (with a mount namespace), else why."""
    r = subprocess.run(["bash", "-c", world.user_cmd(["true"], userns=True)], capture_output=True,
                       text=True, env={"PATH": RootlessWorld.PATH})
    if r.returncode == 0:
        return None
    why = r.stderr.strip()
    for knob in ("/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/user/max_user_namespaces",
                 "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"):
        if os.path.exists(knob):
            with open(knob) as f:
                why += f"; {knob}={f.read().strip()}"
    return f"unshare -U -r -m as an unprivileged user fails: {why}"
