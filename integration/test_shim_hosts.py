# SPDX-License-Identifier: MIT
"""hosts-sync / hosts-clear against a private copy of /etc/hosts (mount namespace).

Two set-ups: the copy bind-mounted over /etc/hosts (a mount point: the shim rewrites it
in place under its lock, as in containers), and a private /etc directory bind-mounted
over /etc (the temp file + rename path)."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from shim_fixtures import *  # noqa: F401,F403
from shim_fixtures import ns_script, shim_cmd

HOSTS = (b"127.0.0.1\tlocalhost\n# keep  this\t comment\n::1 ip6-localhost ip6-loopback\n"
         b"\n10.0.0.1 intranet # trailing\r\n192.168.1.1 r\xc3\xa9seau\n"
         b"# last line\n")
BLOCK = re.compile(rb"# BEGIN locald\n(?:[^\n]*\n)*?# END locald\n")


def strip_block(data):
    out = BLOCK.sub(b"", data, count=1)
    return out


def block_names(data):
    m = re.search(rb"# BEGIN locald\n((?:[^\n]*\n)*?)# END locald\n", data)
    assert m, data
    lines = m.group(1).decode().splitlines()
    v4 = [l.split()[1] for l in lines if l.startswith("127.0.0.1 ")]
    v6 = [l.split()[1] for l in lines if l.startswith("::1 ")]
    assert v4 == v6 and len(lines) == 2 * len(v4), lines
    return v4


@pytest.fixture(params=["file-bind", "etc-bind"])
def hosts_env(request):
    d = Path(tempfile.mkdtemp(prefix="locald-etc-"))
    os.chmod(d, 0o755)
    f = d / "hosts"
    f.write_bytes(HOSTS)
    os.chmod(f, 0o640)
    os.chown(f, 0, 4)  # an unusual owner/mode the shim must keep
    if request.param == "file-bind":
        binds = [(f, "/etc/hosts")]
    else:
        shutil.copy2("/etc/ld.so.cache", d / "ld.so.cache")
        binds = [(d, "/etc")]
    yield f, binds
    shutil.rmtree(d)


def run_script(shim, user, binds, body):
    script = ns_script(binds, body.replace("SHIM", shim_cmd(shim, user, [])))
    return subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", script],
                          capture_output=True, timeout=300)


def check_file(f, names):
    data = f.read_bytes()
    st = f.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 0, 4)
    if names:
        assert block_names(data) == names
        # The rest is byte for byte what it was; the block is appended at the end.
        assert data.startswith(HOSTS + b"# BEGIN locald\n")
    assert strip_block(data) == HOSTS
    assert sorted(p.name for p in f.parent.iterdir() if p.name.startswith(".")) == []


def test_sync_100_times_keeps_every_other_byte(shim, shim_user, hosts_env):
    f, binds = hosts_env
    body = """
for i in $(seq 1 100); do
  printf 'web.demo.localhost\\napi%d.demo.localhost\\n' $i | SHIM hosts-sync || exit 1
done
"""
    r = run_script(shim, shim_user, binds, body)
    assert r.returncode == 0, r.stderr
    check_file(f, ["web.demo.localhost", "api100.demo.localhost"])
    # Unchanged input: the file is not rewritten (same inode and mtime).
    before = f.stat()
    r = run_script(shim, shim_user, binds,
                   "printf 'web.demo.localhost\\napi100.demo.localhost\\n' | SHIM hosts-sync")
    assert r.returncode == 0, r.stderr
    after = f.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    r = run_script(shim, shim_user, binds, "SHIM hosts-clear")
    assert r.returncode == 0, r.stderr
    assert f.read_bytes() == HOSTS
    r = run_script(shim, shim_user, binds, "SHIM hosts-clear")
    assert r.returncode == 0 and f.read_bytes() == HOSTS


def test_concurrent_syncs_are_serialized(shim, shim_user, hosts_env):
    f, binds = hosts_env
    body = """
pids=""
for i in $(seq 1 40); do
  ( for j in 1 2 3; do printf 'w%d.localhost\\nx%d.localhost\\n' $i $i | SHIM hosts-sync || exit 1; done ) &
  pids="$pids $!"
done
rc=0
for p in $pids; do wait $p || rc=1; done
exit $rc
"""
    r = run_script(shim, shim_user, binds, body)
    assert r.returncode == 0, r.stderr
    data = f.read_bytes()
    names = block_names(data)
    assert len(names) == 2 and re.fullmatch(r"w(\d+)\.localhost", names[0])
    n = names[0][1:].split(".")[0]
    assert names == [f"w{n}.localhost", f"x{n}.localhost"]
    check_file(f, names)


def test_empty_sync_removes_block(shim, shim_user, hosts_env):
    f, binds = hosts_env
    r = run_script(shim, shim_user, binds,
                   "printf 'a.localhost' | SHIM hosts-sync && SHIM hosts-sync </dev/null")
    assert r.returncode == 0, r.stderr
    assert f.read_bytes() == HOSTS


def test_damaged_markers_left_alone(shim, shim_user, hosts_env):
    f, binds = hosts_env
    damaged = HOSTS + b"\n# BEGIN locald\n127.0.0.1 half.localhost\n"
    f.write_bytes(damaged)
    r = run_script(shim, shim_user, binds, "printf 'a.localhost\\n' | SHIM hosts-sync")
    assert r.returncode == 1
    assert b"markers" in r.stderr
    assert f.read_bytes() == damaged
