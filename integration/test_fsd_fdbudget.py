# SPDX-License-Identifier: MIT
"""locald-fsd with a small RLIMIT_NOFILE: a tree with many more directories (and files)
than the fd limit must still be walked, read, written and listed without EMFILE, and
fsd must stay within its limit.

fsd keeps an O_PATH fd per node (per directory part) only within a budget, half of
RLIMIT_NOFILE; past it a node's fd is opened per operation from the nearest ancestor
that keeps one. See fsd_limits.py for how the limit is kept small."""

import hashlib
import os

from fsd_fixtures import mounts  # noqa: F401
from fsd_limits import fd_count, fsd_mount_low_nofile

NOFILE = 160          # fsd's limit: a budget of 80 node fds
BOUND = NOFILE // 2 + 32  # the budget plus the session's own fds (threads=2)
TOP, SUB, DEEP = 12, 12, 3  # 12 * 12 * 3 chains: ~600 directories


def make_tree(root, root2):
    """Two lowers with the same directories: every directory of the merged view has a
    part in each (and in the upper once something is written in it)."""
    files = {}
    for i in range(TOP):
        for j in range(SUB):
            rel = os.path.join(f"t{i}", f"s{j}", *(f"k{k}" for k in range(DEEP)))
            (root / rel).mkdir(parents=True)
            (root2 / rel).mkdir(parents=True)
            data = f"{i}/{j}\n".encode() * (j + 1)
            (root / rel / "f.txt").write_bytes(data)
            files[f"{rel}/f.txt"] = data
            (root2 / rel / "l2.txt").write_bytes(b"second %d" % j)
            files[f"{rel}/l2.txt"] = b"second %d" % j
            (root / f"t{i}" / f"s{j}" / "top.txt").write_bytes(b"top")
            files[f"t{i}/s{j}/top.txt"] = b"top"
    return files


def test_many_more_directories_than_fds(mounts, tmp_path):  # noqa: F811
    lower, lower2, up, wk, mnt = (tmp_path / n for n in ["lower", "lower2", "up", "wk", "mnt"])
    for d in (lower, lower2, up, wk, mnt):
        d.mkdir()
    files = make_tree(lower, lower2)
    ndirs = sum(1 for _ in os.walk(lower))
    assert ndirs > 3 * NOFILE

    proc = fsd_mount_low_nofile(mounts, [lower, lower2], up, wk, mnt, NOFILE,
                                "noignore,threads=2")

    # Walk, stat and read everything: every directory stays known to the kernel (and
    # so to fsd) for the whole walk, far more of them than fsd may hold fds for.
    seen = {}
    for dirpath, dirnames, filenames in os.walk(mnt):
        for n in dirnames + filenames:
            os.lstat(os.path.join(dirpath, n))
        for n in filenames:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                seen[os.path.relpath(p, mnt)] = f.read()
    assert seen == files
    assert fd_count(proc.pid) <= BOUND

    # Changes deep in the tree: copy-up of every ancestor, a whiteout, a new directory,
    # renames within the upper; then the merged view and the upper agree with them.
    for i in range(TOP):
        for j in range(0, SUB, 3):
            d = mnt / f"t{i}" / f"s{j}" / "k0" / "k1" / "k2"
            (d / "new.txt").write_bytes(b"new %d %d" % (i, j))
            os.unlink(d / "f.txt")
            os.mkdir(d / "made")
            (d / "made" / "m").write_bytes(b"m")
            os.rename(d / "made", d / "moved")
            os.rename(mnt / f"t{i}" / f"s{j}" / "top.txt", d / "top-moved.txt")
    for i in range(TOP):
        for j in range(SUB):
            d = mnt / f"t{i}" / f"s{j}" / "k0" / "k1" / "k2"
            if j % 3 == 0:
                assert sorted(os.listdir(d)) == ["l2.txt", "moved", "new.txt", "top-moved.txt"]
                assert (d / "new.txt").read_bytes() == b"new %d %d" % (i, j)
                assert (d / "moved" / "m").read_bytes() == b"m"
                assert (d / "top-moved.txt").read_bytes() == b"top"
                assert sorted(os.listdir(d.parent.parent.parent)) == ["k0"]
            else:
                assert sorted(os.listdir(d)) == ["f.txt", "l2.txt"]
                assert (d / "f.txt").read_bytes() == files[f"t{i}/s{j}/k0/k1/k2/f.txt"]
    ud = up / "t0" / "s0" / "k0" / "k1" / "k2"
    assert (ud / "new.txt").read_bytes() == b"new 0 0"
    assert os.stat(ud / "f.txt").st_rdev == 0 and os.path.exists(ud / "f.txt")  # whiteout

    # A second full walk with hashing: nothing was lost on the way.
    digest = hashlib.sha1()
    count = 0
    for dirpath, dirnames, filenames in os.walk(mnt):
        dirnames.sort()
        for n in sorted(filenames):
            with open(os.path.join(dirpath, n), "rb") as f:
                digest.update(f.read())
            count += 1
    assert count == len(files) + TOP * (SUB // 3)  # -f.txt +new.txt +moved/m
    assert fd_count(proc.pid) <= BOUND
    assert proc.poll() is None, proc.stderr.read()
