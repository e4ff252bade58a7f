# SPDX-License-Identifier: MIT
"""locald-fsd without root, in the two rootless forms:

- user:   an unprivileged user in the initial user namespace; libfuse mounts through
          the setuid fusermount3 and fsd unmounts through `fusermount3 -u -z`;
- userns: the same user inside `unshare -U -r -m` (root of its own user namespace):
          FUSE mounted with mount(2) directly, trusted.* xattrs refused although the
          euid is 0.

/dev/fuse here is 0600 root: each test runs in a private mount namespace (as root)
that bind-mounts a fresh 0666 node over /dev/fuse, then drops to the test user. The
real device is never changed. Checked each time: reads, writes, copy-up, whiteouts,
an opaque directory through user.overlay.opaque, ignore patterns, SIGTERM unmounting
while a file is held open, and that the upper reads the same under kernel overlayfs
with `-o userxattr`. The daemon is driven by `localctl fs mount/unmount` as the user.
Failures to mount say what is missing in one line with a hint."""

import json
import os
import shlex
import stat
from pathlib import Path

import pytest

from fsd_fixtures import RootlessWorld, need_rootless_tools, userns_unavailable
from shim_fixtures import shim_user  # noqa: F401  (session-scoped unprivileged user)

HERE = Path(__file__).resolve().parent
IGNORED = {"secret.key", "build", "build/out.o"}


@pytest.fixture(scope="session")
def rootless_tools():
    """Skip with the precise reason before the user fixture would give the shim's."""
    need_rootless_tools()


@pytest.fixture
def world(rootless_tools, shim_user, build_binary):  # noqa: F811
    w = RootlessWorld(shim_user, [build_binary("services/fsd/locald-fsd"),
                                  build_binary("ctl/localctl"), HERE / "fsd_rootless_scenario.py"])
    try:
        yield w
    finally:
        w.cleanup()


def modes(world, mode):
    if mode == "userns":
        why = userns_unavailable(world)
        if why:
            pytest.skip(why)
    return mode == "userns"


def run_scenario(world, what, cfg, userns):
    cfg_path = world.home / f"{what}.json"
    cfg_path.write_text(json.dumps(cfg))
    os.chmod(cfg_path, 0o644)
    cmd = world.user_cmd(["/usr/bin/python3", world.exe["fsd_rootless_scenario.py"], what, cfg_path],
                         userns=userns)
    r = world.run(cmd)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and lines, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
    return json.loads(lines[-1])


def kernel_version():
    import re
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def xattrs(path):
    return {k: os.getxattr(path, k, follow_symlinks=False) for k in os.listxattr(path, follow_symlinks=False)}


def overlay_as_root(world, lower, upper):
    """The upper under kernel overlayfs -o userxattr, mounted by root in a private
    mount namespace; the merged tree as the scenario's snapshot."""
    work, mnt = (world.home / n for n in ("kwork", "kmnt"))
    for d in (work, mnt):
        d.mkdir(exist_ok=True)
    opts = (f"lowerdir={lower},upperdir={upper},workdir={work},userxattr,"
            "index=off,xino=off")
    script = (f"mount -t overlay overlay -o {shlex.quote(opts)} {shlex.quote(str(mnt))} || exit 3\n"
              f"/usr/bin/python3 {shlex.quote(str(world.exe['fsd_rootless_scenario.py']))} "
              f"snapshot {shlex.quote(str(mnt))}")
    r = world.run(script)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["user", "userns"])
def test_rootless_mount_changes_sigterm_and_overlayfs_compat(world, mode):
    userns = modes(world, mode)
    lower, upper, work, mnt, owork, omnt = world.user_dir("lower", "upper", "work", "mnt", "owork",
                                                          "omnt")
    log = world.home / "fsd.log"
    cfg = {"fsd": str(world.exe["locald-fsd"]), "lower": str(lower), "upper": str(upper),
           "work": str(work), "mnt": str(mnt), "log": str(log)}
    if userns:
        cfg["overlay"] = {"work": str(owork), "mnt": str(omnt)}
    out = run_scenario(world, "mount", cfg, userns)
    fsd_log = out["log"]

    assert out["euid"] == (0 if userns else world.user.pw_uid)
    seen = out["seen"]
    assert seen["read"] == "lower data\n"
    assert seen["copied_up"] == "lower data\nappended\n"
    assert seen["gone"] == "ENOENT"
    assert seen["opaque_dir"] == ["c"]
    assert seen["root"] == [".dockerignore", "dir", "f.txt", "held.txt", "keep", "link", "renamed.txt"]
    assert seen["secret"] == "ENOENT" and seen["build"] == "ENOENT"
    assert out["held_read"] == "held\n"
    # SIGTERM with a file held open: fsd ends and nothing stays mounted in its namespace
    assert out["fsd_exit"] == 0, fsd_log
    assert out["mounted_after_sigterm"] is False
    assert "opaque: user.overlay.opaque" in fsd_log, fsd_log

    # the upper as written without root: kernel forms, user.overlay.* xattrs only
    if "whiteouts: 0/0 devices" in fsd_log:
        st = os.lstat(upper / "gone.txt")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    else:
        assert (upper / ".wh.gone.txt").is_file(), os.listdir(upper)
    assert xattrs(upper / "dir").get("user.overlay.opaque") == b"y"
    assert not any(k.startswith("trusted.") for k in xattrs(upper / "dir"))
    assert sorted(os.listdir(upper / "dir")) == ["c"]
    assert not (upper / "secret.key").exists()
    owner = os.lstat(upper / "renamed.txt")
    assert (owner.st_uid, owner.st_gid) == (world.user.pw_uid, world.user.pw_gid)
    # the lower is untouched
    assert (lower / "f.txt").read_text() == "lower data\n"
    assert (lower / "gone.txt").exists() and sorted(os.listdir(lower / "dir")) == ["a", "b"]

    # kernel overlayfs with -o userxattr (Linux >= 5.11, in a user namespace too) shows
    # the same tree, ignore patterns aside: mounted in the user namespace itself, or by
    # root for the ordinary user's upper
    if kernel_version() < (5, 11):
        pytest.skip(f"overlayfs has no userxattr before Linux 5.11 (this is {os.uname().release})")
    if userns:
        assert "overlay_snapshot" in out, out.get("overlay_error")
        kernel = out["overlay_snapshot"]
    else:
        kernel = overlay_as_root(world, lower, upper)
    kernel = {k: v for k, v in kernel.items() if k not in IGNORED}
    assert kernel == out["snapshot"]


def test_userns_upper_where_mknod_of_whiteouts_is_refused(world):
    """Where 0/0 devices cannot be made (seccomp makes mknod fail here, as an older
    kernel or some filesystems would; Linux >= 5.8 allows them in a user namespace),
    fsd writes `.wh.<name>` files, hides them, and reads them back after a remount."""
    import platform
    if platform.machine() != "x86_64":
        pytest.skip("the seccomp filter uses x86-64 syscall numbers")
    modes(world, "userns")  # fusermount3 cannot run under no_new_privs: user namespace only
    lower, upper, work, mnt = world.user_dir("lower", "upper", "work", "mnt")
    cfg = {"fsd": str(world.exe["locald-fsd"]), "lower": str(lower), "upper": str(upper),
           "work": str(work), "mnt": str(mnt), "log": str(world.home / "fsd.log"),
           "no_mknod": True, "remount": True}
    out = run_scenario(world, "mount", cfg, True)
    log = out["log"]
    assert "whiteouts: .wh. files, opaque: user.overlay.opaque" in log, log
    seen = out["seen"]
    assert seen["gone"] == "ENOENT" and seen["opaque_dir"] == ["c"]
    assert seen["root"] == [".dockerignore", "dir", "f.txt", "held.txt", "keep", "link", "renamed.txt"]
    assert out["fsd_exit"] == 0 and out["mounted_after_sigterm"] is False
    wh = upper / ".wh.gone.txt"
    assert wh.is_file() and wh.stat().st_size == 0 and not os.path.lexists(upper / "gone.txt")
    assert xattrs(upper / "dir").get("user.overlay.opaque") == b"y"
    assert out["remount_exit"] == 0
    assert out["remount_snapshot"] == out["snapshot"]


@pytest.mark.parametrize("mode", ["user", "userns"])
def test_rootless_daemon_through_localctl(world, mode):
    userns = modes(world, mode)
    names = ("lower", "upper", "work", "upper2", "work2", "mnt", "mnt2", "rt", "st", "cf")
    d = dict(zip(names, world.user_dir(*names)))
    os.chmod(d["rt"], 0o700)
    cfg = {k: str(v) for k, v in d.items()}
    cfg.update(runtime=cfg.pop("rt"), state=cfg.pop("st"), config=cfg.pop("cf"),
               fsd=str(world.exe["locald-fsd"]), localctl=str(world.exe["localctl"]),
               log=str(world.home / "daemon.log"))
    out = run_scenario(world, "daemon", cfg, userns)
    log = out["log"]
    assert out["mount"]["rc"] == 0, (out["mount"], log)
    assert out["mounted"] and out["read"] == "lower data\n"
    assert out["secret"] == "ENOENT" and out["gone"] == "ENOENT"
    assert out["mount2"]["rc"] == 0, (out["mount2"], log)
    listed = json.loads(out["ls"]["out"])
    points = sorted(m["mountpoint"] for m in (listed if isinstance(listed, list) else listed["mounts"]))
    assert points == sorted([cfg["mnt"], cfg["mnt2"]])
    assert out["unmount"]["rc"] == 0, (out["unmount"], log)
    assert out["mounted_after_unmount"] is False and out["mounted2"] is True
    # after a SIGKILL, a new fsd clears the dead mount and mounts it again (once)
    assert out["dead_mount"] == "ENOTCONN"
    assert out["restored_read"] == "lower data\n"
    assert out["mounts_after_restart"] == [cfg["mnt2"]], log
    # SIGTERM unmounts what is left
    assert out["fsd_exit"] == 0, log
    assert out["mounted2_after_sigterm"] is False, log
    st = os.lstat(d["upper"] / "gone.txt")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 or (d["upper"] / ".wh.gone.txt").exists()


def test_rootless_daemon_mount_refused_without_dev_fuse(world):
    """The daemon starts without /dev/fuse access; Mount says why, localctl prints it."""
    names = ("lower", "upper", "work", "mnt", "mnt2", "rt", "st", "cf")
    d = dict(zip(names, world.user_dir(*names)))
    os.chmod(d["rt"], 0o700)
    cfg = {k: str(v) for k, v in d.items()}
    cfg.update(runtime=cfg.pop("rt"), state=cfg.pop("st"), config=cfg.pop("cf"),
               fsd=str(world.exe["locald-fsd"]), localctl=str(world.exe["localctl"]),
               log=str(world.home / "daemon.log"), refused=True)
    cfg_path = world.home / "daemon.json"
    cfg_path.write_text(json.dumps(cfg))
    cmd = world.user_cmd(["/usr/bin/python3", world.exe["fsd_rootless_scenario.py"], "daemon",
                          cfg_path])
    r = world.run(cmd, fuse_mode="0600")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["mount"]["rc"] != 0
    err = [l for l in out["mount"]["err"].splitlines() if l.strip()]
    # localctl's two lines: what failed, then what to do
    assert len(err) == 2 and "cannot open /dev/fuse: Permission denied" in err[0], err
    assert err[0].startswith("error:") and err[1].startswith("hint:"), err
    assert json.loads(out["ls"]["out"]) in ([], {"mounts": []})
    assert out["fsd_exit"] == 0


def refused(world, cmd, prefix="", **kw):
    """Run the fsd command (after `prefix`, as root in the namespace): it must fail with
    exactly one line on stderr and leave nothing mounted; that line."""
    r = world.run(f"{prefix}\n{cmd}\necho rc=$?\n"
                  f"grep -q ' {world.root}/.* - fuse.locald-fsd ' /proc/self/mountinfo && "
                  "echo STILL-MOUNTED\nexit 0", **kw)
    assert "STILL-MOUNTED" not in r.stdout, r.stdout
    assert "rc=0" not in r.stdout and "rc=" in r.stdout, (r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert "hint:" in lines[0], lines[0]
    return lines[0]


def test_rootless_mount_failures_name_what_is_missing(world):
    lower, upper, work, mnt = world.user_dir("lower", "upper", "work", "mnt")
    fsd = world.exe["locald-fsd"]
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    cmd = world.user_cmd([fsd, "mount", "-o", opts, mnt])

    # /dev/fuse not openable by the user (a 0600 root node, as on this machine)
    line = refused(world, cmd, fuse_mode="0600")
    assert "cannot open /dev/fuse: Permission denied" in line, line

    # no fusermount3: a non-executable file over it, and none in $PATH
    empty = world.dev / "empty"
    empty.write_text("")
    os.chmod(empty, 0o644)
    line = refused(world, cmd, f"mount --bind {empty} /usr/bin/fusermount3")
    assert "fusermount3 not found" in line, line

    # a fusermount3 that is not setuid root
    plain = world.dev / "fusermount3"
    plain.write_bytes(Path("/usr/bin/fusermount3").read_bytes())
    os.chmod(plain, 0o755)
    line = refused(world, cmd, f"mount --bind {plain} /usr/bin/fusermount3")
    assert "is not setuid root" in line, line

    # a mountpoint the user may not write to (fusermount3 would refuse it)
    rootmnt = world.dev / "mnt"
    rootmnt.mkdir(mode=0o755)
    line = refused(world, world.user_cmd([fsd, "mount", "-o", opts, rootmnt]))
    assert f"mountpoint {rootmnt} is not writable" in line, line
