# SPDX-License-Identifier: MIT
"""Run by test_fsd_rootless.py as the unprivileged test user (standard library only:
it is copied to a directory that user can read, and runs outside pytest).

    fsd_rootless_scenario.py mount CONFIG.json     foreground `locald-fsd mount`: changes
                                                   through the mount, SIGTERM, then (with
                                                   "overlay" in the config) the same upper
                                                   under kernel overlayfs -o userxattr
    fsd_rootless_scenario.py daemon CONFIG.json    the bus daemon driven by `localctl fs`
    fsd_rootless_scenario.py snapshot DIR          the merged tree as JSON
    fsd_rootless_scenario.py nomknod ARGV...       exec ARGV with mknod refused (seccomp)

Each prints one JSON object on stdout: what it saw, for the test to assert on."""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def wait_until(pred, what, timeout=15.0, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited {proc.returncode}: {read(log)}")
        time.sleep(0.02)
    raise RuntimeError(f"{what}: not within {timeout}s: {read(log)}")


def read(path):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def snapshot(root):
    """names, types, permission bits, contents and symlink targets of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            e = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode)}
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    e["data"] = f.read().decode(errors="replace")
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            out[os.path.relpath(p, root)] = e
    return out


def errno_of(fn):
    try:
        fn()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "OK"


def make_lower(lower):
    os.makedirs(os.path.join(lower, "dir"))
    os.makedirs(os.path.join(lower, "keep"))
    os.makedirs(os.path.join(lower, "build"))
    files = {
        "f.txt": "lower data\n", "gone.txt": "to be removed\n", "dir/a": "a\n",
        "dir/b": "b\n", "keep/x": "x\n", "secret.key": "KEY\n", "build/out.o": "obj\n",
        "held.txt": "held\n", ".dockerignore": "*.key\nbuild\n",
    }
    for rel, data in files.items():
        with open(os.path.join(lower, rel), "w") as f:
            f.write(data)


def changes(mnt):
    """Changes through the mount; returns what was observed."""
    seen = {}
    j = lambda *p: os.path.join(mnt, *p)  # noqa: E731
    seen["read"] = open(j("f.txt")).read()
    with open(j("new.txt"), "w") as f:  # a new file
        f.write("new\n")
    with open(j("f.txt"), "a") as f:  # copy-up
        f.write("appended\n")
    seen["copied_up"] = open(j("f.txt")).read()
    os.unlink(j("gone.txt"))  # a whiteout
    seen["gone"] = errno_of(lambda: os.lstat(j("gone.txt")))
    for n in os.listdir(j("dir")):  # rmdir a lower directory, mkdir over its whiteout
        os.unlink(j("dir", n))
    os.rmdir(j("dir"))
    os.mkdir(j("dir"))
    with open(j("dir", "c"), "w") as f:
        f.write("c\n")
    seen["opaque_dir"] = sorted(os.listdir(j("dir")))
    os.chmod(j("keep", "x"), 0o600)  # metadata copy-up
    os.rename(j("new.txt"), j("renamed.txt"))
    os.symlink("renamed.txt", j("link"))
    seen["root"] = sorted(os.listdir(mnt))
    seen["secret"] = errno_of(lambda: os.lstat(j("secret.key")))
    seen["build"] = errno_of(lambda: os.listdir(j("build")))
    return seen


def exec_without_mknod(argv):
    """exec argv with mknod/mknodat failing EPERM (a seccomp filter; x86-64 numbers):
    a filesystem or kernel that refuses 0/0 whiteouts, so fsd takes its fallback."""
    import ctypes
    import struct
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    allow, eperm = 0x7fff0000, 0x00050000 | errno.EPERM
    prog = [(ld_abs, 0, 0, 4), (jeq, 1, 0, 0xc000003e), (ret, 0, 0, allow),
            (ld_abs, 0, 0, 0), (jeq, 2, 0, 259), (jeq, 1, 0, 133), (ret, 0, 0, allow),
            (ret, 0, 0, eperm)]
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0):
        raise OSError(ctypes.get_errno(), "seccomp")
    os.execv(argv[0], argv)


def start_fsd(cfg, log):
    opts = f"lowerdir={cfg['lower']},upperdir={cfg['upper']},workdir={cfg['work']}"
    argv = [cfg["fsd"], "mount", "-o", opts, cfg["mnt"]]
    if cfg.get("no_mknod"):
        argv = [sys.executable, os.path.abspath(__file__), "nomknod", *argv]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(log, "a"))
    wait_until(lambda: mounted(cfg["mnt"]), "locald-fsd mount", proc=proc, log=log)
    return proc


def kernel_overlay(cfg, out):
    """Mount the upper fsd wrote under kernel overlayfs (-o userxattr) and snapshot it."""
    o = cfg["overlay"]
    opts = (f"lowerdir={cfg['lower']},upperdir={cfg['upper']},workdir={o['work']},userxattr,"
            "index=off,xino=off")
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, o["mnt"]],
                       capture_output=True, text=True)
    if r.returncode != 0:
        out["overlay_error"] = (r.stderr or r.stdout).strip()
        return
    try:
        out["overlay_snapshot"] = snapshot(o["mnt"])
    finally:
        subprocess.run(["umount", o["mnt"]], capture_output=True)


def run_mount(cfg):
    out = {"euid": os.geteuid()}
    make_lower(cfg["lower"])
    log = cfg["log"]
    proc = start_fsd(cfg, log)
    try:
        out["seen"] = changes(cfg["mnt"])
        out["snapshot"] = snapshot(cfg["mnt"])
        held = os.open(os.path.join(cfg["mnt"], "held.txt"), os.O_RDONLY)
        out["held_read"] = os.read(held, 100).decode()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out["fsd_exit"] = proc.wait(timeout=30)
        out["stop_seconds"] = round(time.monotonic() - t0, 2)  # for the curious, not asserted
        out["mounted_after_sigterm"] = mounted(cfg["mnt"])
        out["held_after"] = errno_of(lambda: os.pread(held, 100, 0))
        out["held_close"] = errno_of(lambda: os.close(held))  # flush: ENOTCONN, fd freed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if cfg.get("remount"):  # the same upper mounted again shows the same tree
        proc = start_fsd(cfg, log)
        try:
            out["remount_snapshot"] = snapshot(cfg["mnt"])
            proc.send_signal(signal.SIGTERM)
            out["remount_exit"] = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out["log"] = read(log)
    if cfg.get("overlay"):
        kernel_overlay(cfg, out)
    return out


def run_daemon(cfg):
    """locald-fsd as a daemon of the user; `localctl fs` mounts and unmounts through it."""
    out = {}
    make_lower(cfg["lower"])
    env = dict(os.environ, LOCALD_RUNTIME_DIR=cfg["runtime"], LOCALD_STATE_DIR=cfg["state"],
               LOCALD_CONFIG_DIR=cfg["config"], LOCALD_FSD=cfg["fsd"])
    log = cfg["log"]

    def start():
        return subprocess.Popen([cfg["fsd"]], env=env, stdin=subprocess.DEVNULL,
                                stdout=open(log, "a"), stderr=subprocess.STDOUT)

    proc = start()

    def ctl(*args):
        r = subprocess.run([cfg["localctl"], "fs", *args], env=env, capture_output=True,
                           text=True, timeout=60)
        return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}

    try:
        wait_until(lambda: "ready on" in read(log), "locald-fsd daemon", proc=proc, log=log)
        m1, m2 = cfg["mnt"], cfg["mnt2"]
        if cfg.get("refused"):  # the daemon runs; the mount fails with a reason
            out["mount"] = ctl("mount", cfg["lower"], "--upper", cfg["upper"], "--work",
                               cfg["work"], "--mountpoint", m1)
            out["ls"] = ctl("ls", "--json")
            proc.send_signal(signal.SIGTERM)
            out["fsd_exit"] = proc.wait(timeout=30)
            return out
        out["mount"] = ctl("mount", cfg["lower"], "--upper", cfg["upper"], "--work", cfg["work"],
                           "--mountpoint", m1)
        out["mounted"] = mounted(m1)
        if out["mounted"]:
            out["read"] = open(os.path.join(m1, "f.txt")).read()
            out["secret"] = errno_of(lambda: os.lstat(os.path.join(m1, "secret.key")))
            os.unlink(os.path.join(m1, "gone.txt"))
            out["gone"] = errno_of(lambda: os.lstat(os.path.join(m1, "gone.txt")))
        out["mount2"] = ctl("mount", cfg["lower"], "--upper", cfg["upper2"], "--work",
                            cfg["work2"], "--mountpoint", m2)
        out["ls"] = ctl("ls", "--json")
        out["unmount"] = ctl("unmount", m1)
        out["mounted_after_unmount"] = mounted(m1)
        out["mounted2"] = mounted(m2)
        # SIGKILL leaves a dead mount (ENOTCONN); the next fsd clears it (fusermount3 -u -z
        # or umount2 in a user namespace) and mounts it again from its state file
        proc.kill()
        proc.wait()
        out["dead_mount"] = errno_of(lambda: os.stat(os.path.join(m2, "f.txt")))
        proc = start()
        wait_until(lambda: read(log).count("ready on") == 2 and "re-created" in read(log),
                   "locald-fsd restart", proc=proc, log=log)
        out["restored_read"] = open(os.path.join(m2, "f.txt")).read()
        mine = os.path.dirname(m2) + "/"  # the namespace also holds copies of others' mounts
        out["mounts_after_restart"] = [line.split()[4] for line in open("/proc/self/mountinfo")
                                       if " fuse.locald-fsd " in line and
                                       line.split()[4].startswith(mine)]
        proc.send_signal(signal.SIGTERM)
        out["fsd_exit"] = proc.wait(timeout=30)
        out["mounted2_after_sigterm"] = mounted(m2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out["log"] = read(log)
    return out


def main():
    if sys.argv[1] == "nomknod":
        exec_without_mknod(sys.argv[2:])
    if sys.argv[1] == "snapshot":
        print(json.dumps(snapshot(sys.argv[2])))
        return
    with open(sys.argv[2]) as f:
        cfg = json.load(f)
    out = run_mount(cfg) if sys.argv[1] == "mount" else run_daemon(cfg)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
