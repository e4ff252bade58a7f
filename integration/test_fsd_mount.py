# SPDX-License-Identifier: MIT
"""locald-fsd through real mounts: .dockerignore hiding, SIGTERM, the daemon's bus
API and restarts, and building this project inside an overlay of its own tree."""

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fsd_fixtures import is_mount, lazy_unmount, mounts, need_root_and_fuse, wait_mounted  # noqa: F401
from locald_bus import BusError, Client, generate_protos


def dirs(tmp_path, *names):
    out = []
    for n in names:
        p = tmp_path / n
        p.mkdir(parents=True, exist_ok=True)
        out.append(p)
    return out


def errno_of(fn):
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


def test_dockerignore_hides_paths_whatever_the_access(mounts, tmp_path):  # noqa: F811
    lower, up, wk, mnt = dirs(tmp_path, "lower", "up", "wk", "mnt")
    (lower / ".dockerignore").write_text(
        "# build context\nnode_modules\n**/*.secret\n.env\nlogs/*.log\n!logs/keep.log\n")
    (lower / ".localdignore").write_text("notes.txt\n")
    (lower / "node_modules" / "pkg").mkdir(parents=True)
    (lower / "node_modules" / "pkg" / "index.js").write_text("module")
    (lower / "src" / "deep").mkdir(parents=True)
    (lower / "src" / "deep" / "key.secret").write_text("SECRET")
    (lower / "src" / "main.c").write_text("int main;")
    (lower / ".env").write_text("TOKEN=1")
    (lower / "logs").mkdir()
    (lower / "logs" / "a.log").write_text("a")
    (lower / "logs" / "keep.log").write_text("keep")
    (lower / "notes.txt").write_text("n")
    (lower / "visible.txt").write_text("v")

    mounts.fsd_mount([lower], up, wk, mnt)
    hidden = [".env", "node_modules", "node_modules/pkg/index.js", "src/deep/key.secret",
              "logs/a.log", "notes.txt"]
    for h in hidden:
        p = mnt / h
        assert errno_of(lambda: os.lstat(p)) == errno.ENOENT, h
        assert errno_of(lambda: open(p, "rb")) == errno.ENOENT, h
        assert errno_of(lambda: os.rename(p, mnt / "stolen")) == errno.ENOENT, h
        assert errno_of(lambda: os.link(p, mnt / "stolen")) == errno.ENOENT, h
        assert errno_of(lambda: os.listxattr(p)) == errno.ENOENT, h
    assert sorted(os.listdir(mnt)) == [".dockerignore", ".localdignore", "logs", "src", "visible.txt"]
    assert sorted(os.listdir(mnt / "src" / "deep")) == []
    assert sorted(os.listdir(mnt / "logs")) == ["keep.log"]
    # find(1) through readdir+stat sees nothing hidden either
    found = subprocess.run(["find", str(mnt)], capture_output=True, text=True, check=True).stdout
    assert "SECRET" not in found and "node_modules" not in found and ".env" not in found
    assert subprocess.run(["grep", "-r", "SECRET", str(mnt)], capture_output=True).returncode == 1
    # a visible file renamed onto a hidden name shows its own data, never the hidden one
    os.rename(mnt / "visible.txt", mnt / ".env")
    assert (mnt / ".env").read_text() == "v"
    os.link(mnt / "src" / "main.c", mnt / "notes.txt")
    assert (mnt / "notes.txt").read_text() == "int main;"
    # a directory created over a hidden one does not reveal its contents
    os.mkdir(mnt / "node_modules")
    assert os.listdir(mnt / "node_modules") == []
    # mounting created nothing for the hidden paths (no whiteouts): the upper holds only
    # what was written through the mount
    assert sorted(os.listdir(up)) == [".env", "node_modules", "notes.txt", "src", "visible.txt"] or \
        sorted(os.listdir(up)) == [".env", "node_modules", "notes.txt", "src"]
    assert not (up / "logs").exists() and os.listdir(up / "src") == ["main.c"]
    # the lower tree is untouched
    assert (lower / ".env").read_text() == "TOKEN=1"
    assert (lower / "visible.txt").read_text() == "v"


def test_sigterm_unmounts_cleanly(mounts, tmp_path):  # noqa: F811
    lower, up, wk, mnt = dirs(tmp_path, "lower", "up", "wk", "mnt")
    (lower / "f").write_text("data")
    proc = mounts.fsd_mount([lower], up, wk, mnt, "noignore")
    assert (mnt / "f").read_text() == "data"
    held = os.open(mnt / "f", os.O_RDONLY)  # an open file does not keep fsd from exiting
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        try:
            os.close(held)  # the connection is gone: flush may fail, the fd is freed
        except OSError:
            pass
    assert not is_mount(mnt)
    assert os.listdir(mnt) == []


def test_bad_arguments_are_one_line_errors(build_binary, tmp_path):
    need_root_and_fuse()
    fsd = str(build_binary("services/fsd/locald-fsd"))
    lower, up, wk, mnt = dirs(tmp_path, "lower", "up", "wk", "mnt")
    cases = [
        (["mount", "-o", f"upperdir={up},workdir={wk}", str(mnt)], "lower"),
        (["mount", "-o", f"lowerdir={tmp_path}/nope,upperdir={up},workdir={wk}", str(mnt)], "nope"),
        (["mount", "-o", f"lowerdir={lower},upperdir={up},workdir={wk},bogus=1", str(mnt)], "bogus"),
        (["mount", "-o", f"lowerdir={lower},upperdir={up},workdir={up}", str(mnt)], "different"),
        (["mount", "-o", f"lowerdir={lower},upperdir={up},workdir={wk},ignore={tmp_path}/none",
          str(mnt)], "none"),
        (["--frobnicate"], "frobnicate"),
    ]
    (lower / ".dockerignore").write_text("ok\n[broken\n")
    cases.append((["mount", "-o", f"lowerdir={lower},upperdir={up},workdir={wk}", str(mnt)],
                  "line 2"))
    for argv, needle in cases:
        r = subprocess.run([fsd, *argv], capture_output=True, text=True, timeout=20)
        assert r.returncode != 0, argv
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and needle in lines[0], (argv, r.stderr)
        assert not is_mount(mnt)


class Daemon:
    def __init__(self, binary, root):
        self.binary = str(binary)
        self.rt, self.st = root / "rt", root / "st"
        self.rt.mkdir(mode=0o700, exist_ok=True)
        self.st.mkdir(exist_ok=True)
        self.env = dict(os.environ, LOCALD_RUNTIME_DIR=str(self.rt), LOCALD_STATE_DIR=str(self.st))
        self.log = root / "fsd.log"
        self.proc = None

    def start(self):
        seen = self.log.read_bytes().count(b"ready on") if self.log.exists() else 0
        self.proc = subprocess.Popen([self.binary], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.log.read_bytes().count(b"ready on") > seen:
                return
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError("fsd not ready: " + self.log.read_text())

    def client(self):
        return Client(self.rt, "fsd")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)


@pytest.fixture
def daemon(build_binary, tmp_path):
    need_root_and_fuse()
    generate_protos()
    d = Daemon(build_binary("services/fsd/locald-fsd"), tmp_path)
    try:
        yield d
    finally:
        d.stop(signal.SIGKILL)
        for m in (tmp_path / "mnt", tmp_path / "mnt2"):
            lazy_unmount(m)


def test_daemon_mount_list_stats_unmount_and_restart(daemon, tmp_path):
    from locald.v1 import fs_pb2
    lower, up, wk, mnt, mnt2, up2, wk2 = dirs(tmp_path, "lower", "up", "wk", "mnt", "mnt2", "up2", "wk2")
    (lower / "f").write_text("one")
    (lower / "hide.me").write_text("x")
    daemon.start()
    c = daemon.client()
    rep = c.call(mount=fs_pb2.Mount(lowers=[str(lower)], upper=str(up), work=str(wk),
                                    mountpoint=str(mnt), ignore_patterns=["*.me"]))
    assert rep.mount.mount.mountpoint == str(mnt)
    assert rep.mount.mount.ignore_pattern_count == 1
    assert (mnt / "f").read_text() == "one"
    assert not (mnt / "hide.me").exists()
    (mnt / "new").write_text("two")
    with pytest.raises(BusError) as e:
        c.call(mount=fs_pb2.Mount(lowers=[str(lower)], upper=str(up), work=str(wk), mountpoint=str(mnt)))
    assert e.value.code == "ALREADY_EXISTS"
    with pytest.raises(BusError) as e:
        c.call(mount=fs_pb2.Mount(lowers=[str(tmp_path / "missing")], upper=str(up2), work=str(wk2),
                                  mountpoint=str(mnt2)))
    assert e.value.code in ("NOT_FOUND", "INVALID_ARGUMENT") and "missing" in e.value.message
    c.call(mount=fs_pb2.Mount(lowers=[str(lower)], upper=str(up2), work=str(wk2), mountpoint=str(mnt2)))
    listed = c.call(list_mounts=fs_pb2.ListMounts()).list_mounts.mounts
    assert sorted(m.mountpoint for m in listed) == sorted([str(mnt), str(mnt2)])
    stats = c.call(mount_stats=fs_pb2.MountStats(mountpoint=str(mnt))).mount_stats.mounts
    assert len(stats) == 1 and stats[0].stats.ops > 0 and stats[0].stats.lookups > 0
    assert stats[0].stats.copy_ups == 0

    # SIGTERM: both unmounted cleanly; a new fsd brings them back from its state
    daemon.stop()
    assert not is_mount(mnt) and not is_mount(mnt2)
    daemon.start()
    wait_mounted(mnt)
    wait_mounted(mnt2)
    assert (mnt / "new").read_text() == "two"
    assert not (mnt / "hide.me").exists()

    # SIGKILL leaves dead mounts behind: the next fsd lazily unmounts and re-creates them
    daemon.stop(signal.SIGKILL)
    assert errno_of(lambda: os.stat(mnt / "f")) == errno.ENOTCONN
    daemon.start()
    wait_mounted(mnt)
    assert (mnt / "f").read_text() == "one"

    c = daemon.client()
    c.call(unmount=fs_pb2.Unmount(mountpoint=str(mnt2)))
    assert not is_mount(mnt2)
    with pytest.raises(BusError) as e:
        c.call(unmount=fs_pb2.Unmount(mountpoint=str(mnt2)))
    assert e.value.code == "NOT_FOUND"
    listed = c.call(list_mounts=fs_pb2.ListMounts()).list_mounts.mounts
    assert [m.mountpoint for m in listed] == [str(mnt)]


def tree_hash(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)} {st.st_mode} {st.st_size} {st.st_mtime_ns}\n".encode())
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def test_build_this_project_inside_an_overlay(mounts, tmp_path, source_dir):  # noqa: F811
    """meson setup + ninja of this whole project (without its tests) inside an fsd overlay
    of this repository: the build works, its binaries run, and the lower tree is
    byte-for-byte unchanged afterwards."""
    if not shutil.which("meson") or not shutil.which("ninja"):
        pytest.skip("meson/ninja not installed")
    lower = tmp_path / "src"
    # a copy of the tracked sources, so other work in the repository cannot race us
    files = subprocess.run(["git", "-C", str(source_dir), "ls-files", "-co", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if f.startswith("build") or not (source_dir / f).is_file():
            continue
        dst = lower / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source_dir / f, dst)
    (lower / ".dockerignore").write_text("build*\n.git\n")
    up, wk, mnt = dirs(tmp_path, "up", "wk", "mnt")
    before = tree_hash(lower)
    mounts.fsd_mount([lower], up, wk, mnt)
    r = subprocess.run(["meson", "setup", "bld", "-Dtests=false"],
                       cwd=mnt, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run(["ninja", "-C", "bld"], cwd=mnt, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run([str(mnt / "bld" / "ctl" / "localctl"), "--version"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "localctl" in r.stdout, r.stdout + r.stderr
    assert (up / "bld" / "ctl" / "localctl").exists()  # the build went to the upper
    mounts.umount(mnt)
    assert tree_hash(lower) == before
