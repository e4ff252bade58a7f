# SPDX-License-Identifier: MIT
"""Differential test: locald-fsd against the kernel's overlayfs.

One lower tree holds a small base tree per sequence (seq0/, seq1/, ...). It is mounted
twice, by fsd and by overlayfs (redirect_dir=off, index=off, metacopy=off: the
semantics fsd implements), each with its own upper. Each sequence applies seeded
random operations inside its own subtree to both mounts; after every step the errno
of the operation and the whole subtree (names, types, permissions, owner, sizes,
contents, link counts, symlink targets, user xattrs) must agree. At the end each
upper is mounted by the other implementation and must show the same tree: what fsd
writes reads the same under overlayfs, and back.

Operations: create, write, append, truncate, read, rename (plain, to a fresh name, and
RENAME_EXCHANGE through renameat2, also right after a mkdir so that directories move),
unlink, mkdir, rmdir, link, symlink, chmod, setxattr, mkfifo. A second run holds fsd to
a tiny fd limit, so that its nodes keep no fds and reopen them per operation.

Reproduce a failure: FSD_DIFF_SEED=<seed> FSD_DIFF_SEQS=<sequence + 1> pytest ... -k differential
(both printed with the failure; FSD_DIFF_STEPS changes the length of each sequence).
"""

import ctypes
import errno
import hashlib
import os
import random
import stat

import pytest

from fsd_fixtures import mounts  # noqa: F401
from fsd_limits import fsd_mount_low_nofile

SEQS = int(os.environ.get("FSD_DIFF_SEQS", "300"))
STEPS = int(os.environ.get("FSD_DIFF_STEPS", "25"))
SEED = int(os.environ.get("FSD_DIFF_SEED", "20261123"))

NAMES = ["a", "b", "h", "s", "p", "d", "d/x", "d/y", "d/e", "d/e/z", "e0", "n1", "n2",
         "d/n3", "e0/n4", "dd", "dd/q", "d/e/n5", "a/x"]


AT_FDCWD = -100
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a, b):
    """renameat2(RENAME_EXCHANGE): Python's os has no renameat2."""
    if _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


def make_base(root):
    os.makedirs(root / "d" / "e")
    os.makedirs(root / "e0")
    (root / "a").write_bytes(b"alpha\n" * 3)
    (root / "b").write_bytes(b"")
    (root / "d" / "x").write_bytes(b"x-data")
    (root / "d" / "y").write_bytes(b"y" * 5000)
    (root / "d" / "e" / "z").write_bytes(b"zz")
    os.link(root / "a", root / "h")
    os.symlink("a", root / "s")
    os.mkfifo(root / "p")
    os.setxattr(root / "d" / "x", "user.origin", b"lower")
    os.chmod(root / "d" / "y", 0o600)


def snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            e = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    e["data"] = hashlib.sha1(f.read()).hexdigest()
                e["size"] = st.st_size
                e["nlink"] = st.st_nlink
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            else:
                e["nlink"] = st.st_nlink if not stat.S_ISDIR(st.st_mode) else None
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                e["xattrs"] = sorted((k, os.getxattr(p, k)) for k in os.listxattr(p)
                                     if k.startswith("user."))
            out[rel] = e
    return out


def run(fn):
    try:
        r = fn()
        return ("ok", r)
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, e.errno))


def gen_op(rng):
    k = rng.choice(["create", "write", "append", "truncate", "rename", "rename", "unlink",
                    "mkdir", "rmdir", "link", "symlink", "chmod", "setxattr", "mkfifo",
                    "read", "rename_noreplace_dir", "exchange", "exchange", "mkdir_exchange"])
    a, b = rng.choice(NAMES), rng.choice(NAMES)
    return (k, a, b, rng.randrange(0, 9000), rng.choice([0o600, 0o644, 0o755, 0o700]),
            rng.randbytes(rng.randrange(0, 300)))


def apply(root, op):
    k, a, b, n, mode, data = op
    pa, pb = os.path.join(root, a), os.path.join(root, b)

    def create():
        fd = os.open(pa, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NONBLOCK, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def write():
        fd = os.open(pa, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.pwrite(fd, data, n)
        finally:
            os.close(fd)

    def append():
        fd = os.open(pa, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def read():
        fd = os.open(pa, os.O_RDONLY | os.O_NONBLOCK)
        try:
            return hashlib.sha1(os.pread(fd, 100000, 0)).hexdigest()
        finally:
            os.close(fd)

    def mkdir_exchange():
        # a fresh (pure upper) directory is what overlayfs lets move
        mk = run(lambda: os.mkdir(pa, mode))
        return mk, run(lambda: exchange(pa, pb))

    fns = {
        "create": create,
        "write": write,
        "append": append,
        "read": read,
        "truncate": lambda: os.truncate(pa, n % 7000),
        "rename": lambda: os.rename(pa, pb),
        "rename_noreplace_dir": lambda: os.rename(pa, pb + "_m"),
        "exchange": lambda: exchange(pa, pb),
        "mkdir_exchange": mkdir_exchange,
        "unlink": lambda: os.unlink(pa),
        "mkdir": lambda: os.mkdir(pa, mode),
        "rmdir": lambda: os.rmdir(pa),
        "link": lambda: os.link(pa, pb, follow_symlinks=False),
        "symlink": lambda: os.symlink(b, pa),
        "chmod": lambda: os.chmod(pa, mode, follow_symlinks=not os.path.islink(pa)) if not os.path.islink(pa) else None,
        "setxattr": lambda: os.setxattr(pa, "user.k", data[:40], follow_symlinks=False),
        "mkfifo": lambda: os.mkfifo(pa, mode),
    }
    return run(fns[k])


def describe(diff_a, diff_b):
    keys = sorted(set(diff_a) | set(diff_b))
    lines = []
    for k in keys:
        if diff_a.get(k) != diff_b.get(k):
            lines.append(f"  {k}: fsd={diff_a.get(k)} overlayfs={diff_b.get(k)}")
    return "\n".join(lines[:20])


def run_differential(mounts, tmp_path, seqs, fsd_mount):
    lower = tmp_path / "lower"
    lower.mkdir()
    for i in range(seqs):
        make_base(lower / f"seq{i}")
    dirs = {}
    for n in ["fu", "fw", "fm", "ku", "kw", "km"]:
        dirs[n] = tmp_path / n
        dirs[n].mkdir()
    fsd_mount([lower], dirs["fu"], dirs["fw"], dirs["fm"])
    mounts.overlay_mount([lower], dirs["ku"], dirs["kw"], dirs["km"])

    rng0 = random.Random(SEED)
    seeds = [rng0.randrange(1 << 30) for _ in range(seqs)]
    for i, seed in enumerate(seeds):
        rng = random.Random(seed)
        fr, kr = dirs["fm"] / f"seq{i}", dirs["km"] / f"seq{i}"
        history = []
        for step in range(STEPS):
            op = gen_op(rng)
            history.append(op[:3])
            rf, rk = apply(fr, op), apply(kr, op)
            ctx = (f"FSD_DIFF_SEED={SEED} sequence {i} (seed {seed}), step {step}: "
                   f"{history[-6:]}")
            assert rf == rk, f"{ctx}\n  result fsd={rf} overlayfs={rk}"
            sf, sk = snapshot(fr), snapshot(kr)
            assert sf == sk, f"{ctx}\n{describe(sf, sk)}"

    # Cross-check the on-disk format: each upper under the other implementation.
    final_f, final_k = snapshot(dirs["fm"]), snapshot(dirs["km"])
    assert final_f == final_k
    mounts.umount(dirs["fm"])
    mounts.umount(dirs["km"])
    for n in ["x1", "x2", "w1", "w2"]:
        (tmp_path / n).mkdir()
    mounts.overlay_mount([lower], dirs["fu"], tmp_path / "w1", tmp_path / "x1")
    mounts.fsd_mount([lower], dirs["ku"], tmp_path / "w2", tmp_path / "x2", "noignore")
    kf = snapshot(tmp_path / "x1")
    assert kf == final_f, "fsd's upper under overlayfs:\n" + describe(final_f, kf)
    fk = snapshot(tmp_path / "x2")
    assert fk == final_k, "overlayfs's upper under fsd:\n" + describe(fk, final_k)


def test_differential_against_overlayfs(mounts, tmp_path):  # noqa: F811
    run_differential(mounts, tmp_path, SEQS,
                     lambda lowers, u, w, m: mounts.fsd_mount(lowers, u, w, m, "noignore"))


def test_differential_past_the_fd_budget(mounts, tmp_path):  # noqa: F811
    """The same (fewer sequences) with fsd held to 64 fds, a budget of 32 node fds for
    a tree of hundreds of directories: nearly every node opens its fds per operation
    from an ancestor's, through copy-ups, renames and exchanges."""
    run_differential(mounts, tmp_path, max(1, SEQS // 5),
                     lambda lowers, u, w, m: fsd_mount_low_nofile(
                         mounts, lowers, u, w, m, 64, "noignore,threads=2"))


def test_inode_numbers_stable_across_copy_up(mounts, tmp_path):  # noqa: F811
    lower, up, wk, mnt = (tmp_path / n for n in ["lower", "up", "wk", "mnt"])
    for d in (lower, up, wk, mnt):
        d.mkdir()
    make_base(lower)
    mounts.fsd_mount([lower], up, wk, mnt, "noignore")
    before = {n: os.lstat(mnt / n).st_ino for n in ["a", "d", "d/x", "d/e"]}
    os.chmod(mnt / "a", 0o600)             # copy-up of a file
    (mnt / "d" / "e" / "new").write_text("n")  # copy-up of d and d/e
    os.setxattr(mnt / "d" / "x", "user.k", b"v")
    after = {n: os.lstat(mnt / n).st_ino for n in before}
    assert before == after
    # statfs answers from the upper's filesystem
    assert os.statvfs(mnt).f_bsize > 0


def test_differential_with_the_writeback_cache(mounts, tmp_path):  # noqa: F811
    """The same (fewer sequences) with the kernel's writeback cache on (`writeback`):
    writes are cached and sent later, sizes and times come from the kernel's view."""
    run_differential(mounts, tmp_path, max(1, SEQS // 5),
                     lambda lowers, u, w, m: mounts.fsd_mount(lowers, u, w, m,
                                                              "noignore,writeback"))
