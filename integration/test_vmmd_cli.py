# SPDX-License-Identifier: MIT
"""`localctl vm …` end to end: localctl starts locald-vmmd on demand and drives it.
Skipped until `vm` is in localctl's command table."""

import os
import subprocess

import pytest

HAVE_KVM = os.access("/dev/kvm", os.R_OK | os.W_OK)


@pytest.fixture
def ctl(build_dir, build_binary, tmp_path):
    localctl = build_binary("ctl/localctl")
    vmmd = build_binary("services/vmmd/locald-vmmd")
    rt, st = tmp_path / "rt", tmp_path / "st"
    rt.mkdir(mode=0o700)
    st.mkdir()
    env = dict(os.environ, LOCALD_RUNTIME_DIR=str(rt), LOCALD_STATE_DIR=str(st),
               LOCALD_VMMD=str(vmmd))
    if "vm" not in subprocess.run([localctl, "--help"], capture_output=True, text=True, env=env).stdout:
        pytest.skip("localctl has no `vm` command yet")

    def run(*args, input=None, timeout=60):
        return subprocess.run([localctl, *map(str, args)], capture_output=True, env=env,
                              input=input, timeout=timeout)
    yield run
    lock = rt / "vmmd.lock"
    # stop the vmmd localctl started: the one holding our runtime dir's lock
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{pid}/exe") == str(vmmd) and any(
                    os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock)
                    for fd in os.listdir(f"/proc/{pid}/fd")):
                os.kill(int(pid), 15)
        except OSError:
            pass


@pytest.fixture
def guest(build_dir):
    return build_dir / "services/vmmd/test-guest.bzImage"


def test_define_list_remove(ctl, guest, tmp_path):
    assert ctl("vm", "create", "one", "--kernel", guest, "--cmdline", "test=hello").returncode == 0
    ls = ctl("vm", "ls").stdout.decode()
    assert "one" in ls and "created" in ls
    bad = tmp_path / "bad"
    bad.write_text("no kernel here\n")
    for args, text in [(("create", "two", "--kernel", bad), "not a kernel"),
                       (("create", "two", "--kernel", guest, "--memory", "0"), "memory: 0 MiB"),
                       (("create", "two", "--kernel", guest, "--disk", tmp_path / "none.img"),
                        "none.img: No such file"),
                       (("create", "one", "--kernel", guest), "already exists"),
                       (("frob",), "unknown vm command")]:
        p = ctl("vm", *args)
        err = p.stderr.decode()
        assert p.returncode != 0 and text in err, (args, err)
        assert err.splitlines()[0].startswith("error: "), err
    assert ctl("vm", "rm", "one").returncode == 0
    assert ctl("vm", "rm", "one").returncode == 4


@pytest.mark.skipif(HAVE_KVM, reason="checks the error on hosts without KVM")
def test_run_without_kvm(ctl, guest):
    p = ctl("vm", "run", "--kernel", guest)
    assert p.returncode == 1
    assert "/dev/kvm" in p.stderr.decode()


@pytest.mark.skipif(not HAVE_KVM, reason="no usable /dev/kvm on this host")
def test_run_exit_code_and_console(ctl, guest):
    p = ctl("vm", "run", "--kernel", guest, "--cmdline", "test=hello exit=9")
    assert p.returncode == 9
    assert b"hello from bzimage64" in p.stdout
    p = ctl("vm", "run", "--kernel", guest, "--cmdline", "test=echo", input=b"quit\r")
    assert p.returncode == 0 and b"echo: got 'quit'" in p.stdout
