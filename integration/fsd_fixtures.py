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
