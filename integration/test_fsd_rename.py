# SPDX-License-Identifier: MIT
"""renameat2(RENAME_EXCHANGE) through locald-fsd, step by step against the kernel's
overlayfs on a copy of the same lower: results, errno, the merged tree, inode numbers
following their objects, and each upper read back by the other implementation."""

import ctypes
import errno
import os
import shutil

import pytest

from fsd_fixtures import mounts  # noqa: F401
from test_fsd_differential import describe, exchange, snapshot

RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(a, b, flags):
    if _libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), flags):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


def errno_of(fn):
    try:
        fn()
    except OSError as e:
        return errno.errorcode[e.errno]
    return "ok"


def make_lower(root):
    (root / "d" / "e").mkdir(parents=True)
    (root / "full").mkdir()
    (root / "a").write_bytes(b"lower a\n")
    (root / "b").write_bytes(b"lower b\n")
    (root / "d" / "x").write_bytes(b"lower d/x\n")
    (root / "d" / "e" / "z").write_bytes(b"lower z\n")
    (root / "full" / "f1").write_bytes(b"1")
    (root / "full" / "f2").write_bytes(b"2")
    os.setxattr(root / "a", "user.origin", b"lower-a")


class Pair:
    """The same lower under fsd (f) and overlayfs (k), each with its own upper."""

    def __init__(self, mounts, tmp_path):
        self.mounts, self.tmp = mounts, tmp_path
        self.lower = tmp_path / "lower"
        self.lower.mkdir()
        make_lower(self.lower)
        for n in ["fu", "fw", "fm", "ku", "kw", "km"]:
            (tmp_path / n).mkdir()
        self.fm, self.km = tmp_path / "fm", tmp_path / "km"
        self.fu, self.ku = tmp_path / "fu", tmp_path / "ku"
        mounts.fsd_mount([self.lower], self.fu, tmp_path / "fw", self.fm, "noignore")
        mounts.overlay_mount([self.lower], self.ku, tmp_path / "kw", self.km)

    def step(self, fn):
        """Apply fn(root) to both; same result (or errno) and the same tree after."""
        rf, rk = errno_of(lambda: fn(self.fm)), errno_of(lambda: fn(self.km))
        assert rf == rk, f"fsd={rf} overlayfs={rk}"
        sf, sk = snapshot(self.fm), snapshot(self.km)
        assert sf == sk, describe(sf, sk)
        return rf

    def cross_check(self):
        """Each upper under the other implementation shows the same tree."""
        final = snapshot(self.fm)
        self.mounts.umount(self.fm)
        self.mounts.umount(self.km)
        for n in ["x1", "x2", "w1", "w2"]:
            (self.tmp / n).mkdir()
        self.mounts.overlay_mount([self.lower], self.fu, self.tmp / "w1", self.tmp / "x1")
        self.mounts.fsd_mount([self.lower], self.ku, self.tmp / "w2", self.tmp / "x2", "noignore")
        kf, fk = snapshot(self.tmp / "x1"), snapshot(self.tmp / "x2")
        assert kf == final, "fsd's upper under overlayfs:\n" + describe(final, kf)
        assert fk == final, "overlayfs's upper under fsd:\n" + describe(final, fk)
        return self.tmp / "x1"


@pytest.fixture
def pair(mounts, tmp_path):  # noqa: F811
    return Pair(mounts, tmp_path)


def test_exchange_lower_file_with_upper_file(mounts, tmp_path):  # noqa: F811
    lower, up, wk, mnt = (tmp_path / n for n in ["lower", "up", "wk", "mnt"])
    for p in (lower, up, wk, mnt):
        p.mkdir()
    make_lower(lower)
    mounts.fsd_mount([lower], up, wk, mnt, "noignore")
    (mnt / "u").write_bytes(b"upper u\n")
    ino = {n: os.lstat(mnt / n).st_ino for n in ["a", "u", "d/x"]}

    exchange(mnt / "a", mnt / "u")
    assert (mnt / "a").read_bytes() == b"upper u\n"
    assert (mnt / "u").read_bytes() == b"lower a\n"
    assert os.getxattr(mnt / "u", "user.origin") == b"lower-a"  # copied up with it
    # the kernel's inodes follow their objects: the numbers move with the names
    assert os.lstat(mnt / "a").st_ino == ino["u"]
    assert os.lstat(mnt / "u").st_ino == ino["a"]
    # across directories: the lower d/x against what is now at u (the copied-up a)
    exchange(mnt / "d" / "x", mnt / "u")
    assert (mnt / "d" / "x").read_bytes() == b"lower a\n"
    assert (mnt / "u").read_bytes() == b"lower d/x\n"
    assert os.lstat(mnt / "d" / "x").st_ino == ino["a"]
    assert os.lstat(mnt / "u").st_ino == ino["d/x"]
    assert sorted(os.listdir(mnt / "d")) == ["e", "x"]
    # the lower is untouched; the upper holds plain files at both names
    assert (lower / "a").read_bytes() == b"lower a\n"
    assert (lower / "d" / "x").read_bytes() == b"lower d/x\n"
    assert (up / "a").read_bytes() == b"upper u\n"
    assert (up / "d" / "x").read_bytes() == b"lower a\n"

    # the upper written by fsd reads the same under the kernel's overlayfs
    mounts.umount(mnt)
    (tmp_path / "kw").mkdir()
    (tmp_path / "km").mkdir()
    mounts.overlay_mount([lower], up, tmp_path / "kw", tmp_path / "km")
    km = tmp_path / "km"
    assert (km / "a").read_bytes() == b"upper u\n"
    assert (km / "u").read_bytes() == b"lower d/x\n"
    assert (km / "d" / "x").read_bytes() == b"lower a\n"
    assert sorted(os.listdir(km)) == ["a", "b", "d", "full", "u"]


def test_exchange_steps_like_overlayfs(pair):
    p = pair
    # files: lower with lower, lower with upper, twice back and forth
    assert p.step(lambda r: exchange(r / "a", r / "b")) == "ok"
    assert p.step(lambda r: (r / "n").write_bytes(b"new")) == "ok"
    assert p.step(lambda r: exchange(r / "n", r / "d" / "e" / "z")) == "ok"
    assert p.step(lambda r: exchange(r / "d" / "e" / "z", r / "n")) == "ok"
    # a missing side, the same name, both flags at once, RENAME_WHITEOUT
    assert p.step(lambda r: exchange(r / "a", r / "nothing")) == "ENOENT"
    assert p.step(lambda r: exchange(r / "nothing", r / "a")) == "ENOENT"
    assert p.step(lambda r: exchange(r / "a", r / "a")) == "ok"
    assert p.step(lambda r: renameat2(r / "a", r / "b",
                                      RENAME_EXCHANGE | RENAME_NOREPLACE)) == "EINVAL"
    assert p.step(lambda r: renameat2(r / "a", r / "q", RENAME_WHITEOUT)) == "EINVAL"
    # directories with lower parts do not move, on either side
    assert p.step(lambda r: exchange(r / "d", r / "a")) == "EXDEV"
    assert p.step(lambda r: exchange(r / "a", r / "d" / "e")) == "EXDEV"
    assert p.step(lambda r: os.mkdir(r / "m")) == "ok"
    assert p.step(lambda r: (r / "m" / "inside").write_bytes(b"in m")) == "ok"
    assert p.step(lambda r: exchange(r / "m", r / "d")) == "EXDEV"
    # a pure upper directory with files, into a merged parent and back
    assert p.step(lambda r: exchange(r / "m", r / "d" / "x")) == "ok"
    assert p.step(lambda r: os.listdir(r / "d" / "x")) == "ok"
    assert p.step(lambda r: exchange(r / "d" / "x", r / "m")) == "ok"
    # two pure upper directories
    assert p.step(lambda r: os.makedirs(r / "d" / "m2" / "sub")) == "ok"
    assert p.step(lambda r: exchange(r / "m", r / "d" / "m2")) == "ok"
    assert p.step(lambda r: (r / "m" / "sub" / "later").write_bytes(b"later")) == "ok"
    # then ordinary changes on the exchanged names: whiteouts where lower names go
    assert p.step(lambda r: os.unlink(r / "a")) == "ok"
    assert p.step(lambda r: os.unlink(r / "b")) == "ok"
    assert p.step(lambda r: os.rename(r / "n", r / "a")) == "ok"
    p.cross_check()


def test_exchange_makes_the_moved_directory_opaque(pair):
    """A pure upper directory exchanged to a name where a lower directory with contents
    is hidden (removed, then a file put there) must not show that lower directory's
    entries: overlayfs marks it opaque when it goes into a merged parent."""
    p = pair
    for f in ["f1", "f2"]:
        p.step(lambda r, f=f: os.unlink(r / "full" / f))
    assert p.step(lambda r: os.rmdir(r / "full")) == "ok"
    assert p.step(lambda r: (r / "full").write_bytes(b"a file now")) == "ok"
    assert p.step(lambda r: os.mkdir(r / "fresh")) == "ok"
    assert p.step(lambda r: (r / "fresh" / "n").write_bytes(b"n")) == "ok"
    assert p.step(lambda r: exchange(r / "fresh", r / "full")) == "ok"
    assert sorted(os.listdir(p.fm / "full")) == ["n"]
    assert (p.fm / "fresh").read_bytes() == b"a file now"
    # and back: the directory stays opaque wherever it goes
    assert p.step(lambda r: exchange(r / "full", r / "fresh")) == "ok"
    assert p.step(lambda r: exchange(r / "fresh", r / "full")) == "ok"
    x1 = p.cross_check()
    assert sorted(os.listdir(x1 / "full")) == ["n"]


def test_exchange_upper_hard_link(pair):
    p = pair
    assert p.step(lambda r: (r / "h1").write_bytes(b"linked")) == "ok"
    assert p.step(lambda r: os.link(r / "h1", r / "h2")) == "ok"
    assert p.step(lambda r: exchange(r / "h2", r / "b")) == "ok"
    # "b" is now the other name of h1's inode, h2 the copied-up lower b
    assert os.lstat(p.fm / "b").st_ino == os.lstat(p.fm / "h1").st_ino
    assert os.lstat(p.fm / "b").st_nlink == 2
    assert p.step(lambda r: (r / "h1").write_bytes(b"through h1")) == "ok"
    assert (p.fm / "b").read_bytes() == b"through h1"
    assert p.step(lambda r: exchange(r / "h1", r / "b")) == "ok"  # one inode: nothing
    assert p.step(lambda r: os.unlink(r / "h1")) == "ok"
    assert os.lstat(p.fm / "b").st_nlink == 1
    p.cross_check()


def test_exchange_keeps_nodes_right_for_later_lookups(mounts, tmp_path):  # noqa: F811
    """After an exchange every name resolves to the right object, also for objects
    the kernel had already looked up below an exchanged directory."""
    lower, up, wk, mnt = (tmp_path / n for n in ["lower", "up", "wk", "mnt"])
    for p in (lower, up, wk, mnt):
        p.mkdir()
    make_lower(lower)
    mounts.fsd_mount([lower], up, wk, mnt, "noignore,timeout=0")  # every stat asks fsd
    os.makedirs(mnt / "p" / "q")
    (mnt / "p" / "q" / "f").write_bytes(b"pf")
    os.makedirs(mnt / "r" / "q")
    (mnt / "r" / "q" / "f").write_bytes(b"rf")
    ino = {n: os.lstat(mnt / n).st_ino for n in ["p", "r", "p/q", "r/q", "p/q/f", "r/q/f"]}
    fd = os.open(mnt / "p" / "q" / "f", os.O_RDONLY)
    try:
        exchange(mnt / "p", mnt / "r")
        assert os.pread(fd, 10, 0) == b"pf"
    finally:
        os.close(fd)
    assert (mnt / "p" / "q" / "f").read_bytes() == b"rf"
    assert (mnt / "r" / "q" / "f").read_bytes() == b"pf"
    assert os.lstat(mnt / "p").st_ino == ino["r"]
    assert os.lstat(mnt / "r" / "q" / "f").st_ino == ino["p/q/f"]
    (mnt / "r" / "q" / "g").write_bytes(b"g")
    assert sorted(os.listdir(up / "r" / "q")) == ["f", "g"]
    assert sorted(os.listdir(mnt / "p" / "q")) == ["f"]
    shutil.rmtree(mnt / "p")
    assert sorted(os.listdir(mnt)) == ["a", "b", "d", "full", "r"]
