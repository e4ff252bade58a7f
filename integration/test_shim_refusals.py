# SPDX-License-Identifier: MIT
"""locald-shim refuses everything outside its grammar, and writes nothing when it does.

Every /etc/hosts run happens in a private mount namespace with a copy bind-mounted
over /etc/hosts (tests/README: the real file is never touched).
"""

import os
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from shim_fixtures import *  # noqa: F401,F403
from shim_fixtures import as_user

REFUSED = 3
NOT_SETUID = 4
USAGE = 2

HOSTS = (b"127.0.0.1\tlocalhost\n# a comment  with  spaces\n::1 ip6-localhost ip6-loopback\n"
         b"\n10.0.0.1 intranet # trailing\r\n192.168.1.1 r\xc3\xa9seau\n")


@pytest.fixture
def hosts_copy():
    d = Path(tempfile.mkdtemp(prefix="locald-hosts-"))
    f = d / "hosts"
    f.write_bytes(HOSTS)
    os.chmod(f, 0o644)
    yield f
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def assert_untouched(f):
    assert f.read_bytes() == HOSTS
    assert sorted(p.name for p in f.parent.iterdir()) == ["hosts"]


def one_line_error(r, code):
    assert r.returncode == code, (r.returncode, r.stderr)
    err = r.stderr.decode()
    assert err.startswith("locald-shim: ") and err.count("\n") == 1, err
    return err


# ---- installation ----

def test_version_needs_no_privilege(run_shim):
    r = run_shim(["version"])
    assert r.returncode == 0
    assert r.stdout.decode().startswith("locald-shim ")


def test_not_setuid_refused(build_binary, shim_user):
    # The build output is not setuid: as the user it is not root, as root it is not setuid.
    binary = build_binary("shim/locald-shim")
    r = subprocess.run(as_user(shim_user, [binary, "bind-port", "80"]), capture_output=True)
    assert "admin setup" in one_line_error(r, NOT_SETUID)
    r = subprocess.run([binary, "hosts-clear"], capture_output=True)
    one_line_error(r, NOT_SETUID)


def test_setuid_in_user_writable_dir_refused(shim, shim_user, tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chown(d, shim_user.pw_uid, shim_user.pw_gid)  # the user could swap the binary
    dst = d / "locald-shim"
    dst.write_bytes(shim.read_bytes())
    os.chown(dst, 0, 0)
    os.chmod(dst, 0o4755)
    r = subprocess.run(as_user(shim_user, [dst, "bind-port", "80"]), capture_output=True)
    assert "writable only by root" in one_line_error(r, NOT_SETUID)


# ---- grammar ----

@pytest.mark.parametrize("args", [[], ["nope"], ["bind-port"], ["bind-port", "80", "81"],
                                  ["bind-port", "80", "--ipv4"], ["hosts-sync", "x"],
                                  ["cgroup-setup", "--all"], ["version", "x"],
                                  ["trust-ca", "a", "b"], ["--help"]])
def test_usage(run_shim, args):
    one_line_error(run_shim(args), USAGE)


@pytest.mark.parametrize("port", ["22", "8080", "0", "65536", "080", "-1", "80x", "", "1e3"])
def test_bind_port_refused(run_shim, port):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        r = run_shim(["bind-port", port], fd3=b.fileno())
        one_line_error(r, REFUSED)
        a.setblocking(False)
        with pytest.raises(BlockingIOError):
            a.recvmsg(1, 64)  # nothing was sent


def test_bind_port_fd3_missing(run_shim):
    assert "fd 3" in one_line_error(run_shim(["bind-port", "80"]), REFUSED)


@pytest.mark.parametrize("kind", ["devnull", "pipe", "tcp", "dir"])
def test_bind_port_fd3_not_a_unix_socket(run_shim, kind, tmp_path):
    if kind == "devnull":
        fd = os.open("/dev/null", os.O_RDWR)
    elif kind == "pipe":
        fd, w = os.pipe()
        os.close(w)
    elif kind == "dir":
        fd = os.open(tmp_path, os.O_RDONLY)
    else:
        s = socket.socket()
        fd = s.detach()
    try:
        assert "fd 3" in one_line_error(run_shim(["bind-port", "443"], fd3=fd), REFUSED)
    finally:
        os.close(fd)


BAD_NAMES = [
    b"web\nevil.localhost",  # two lines: "web" has no suffix
    b"we b.localhost\n",
    b"web..localhost\n",
    b"web.localhost.\n",
    b"web.example.com\n",
    b"localhost\n",
    b"x" * 64 + b".localhost\n",
    (b"a." * 122) + b"bb.localhost\n",  # 256 bytes
    b"WEB.localhost\n",
    b"web.localhost\r\n",
    b"\n",
    b"web.localhost\x00.evil\n",
    b"1.2.3.4 evil.localhost\n",
    b"-x.localhost\n",
    b"\xff\xfe\n",
]


@pytest.mark.parametrize("payload", BAD_NAMES)
def test_hosts_sync_bad_name_refused(run_shim, hosts_copy, payload):
    r = run_shim(["hosts-sync"], input=payload, binds=[(hosts_copy, "/etc/hosts")])
    assert "not a host name" in one_line_error(r, REFUSED)
    assert_untouched(hosts_copy)


def test_hosts_sync_too_many_names_refused(run_shim, hosts_copy):
    payload = b"".join(b"n%d.localhost\n" % i for i in range(10000))
    r = run_shim(["hosts-sync"], input=payload, binds=[(hosts_copy, "/etc/hosts")])
    one_line_error(r, REFUSED)
    assert_untouched(hosts_copy)
    payload = b"".join(b"n%d.localhost\n" % i for i in range(513))
    r = run_shim(["hosts-sync"], input=payload, binds=[(hosts_copy, "/etc/hosts")])
    assert "more than 512 names" in one_line_error(r, REFUSED)
    assert_untouched(hosts_copy)


def test_hosts_sync_garbage_on_stdin_refused(run_shim, hosts_copy):
    for payload in (os.urandom(4096), os.urandom(1 << 20)):
        r = run_shim(["hosts-sync"], input=payload, binds=[(hosts_copy, "/etc/hosts")])
        one_line_error(r, REFUSED)
        assert_untouched(hosts_copy)


def test_env_injection_ignored(run_shim, hosts_copy, tmp_path):
    # A library that would announce itself if the loader or the shim honoured it.
    marker = tmp_path / "pwned"
    lib = tmp_path / "evil.so"
    src = tmp_path / "evil.c"
    # Only a process running setuid (the shim) leaves the marker, not bash or setpriv.
    src.write_text('#include <stdio.h>\n#include <unistd.h>\n'
                   '__attribute__((constructor)) static void f(void)'
                   '{ if (geteuid() == 0 && getuid() != 0) { FILE *f = fopen("%s", "w");'
                   ' if (f) fclose(f); } }\n' % marker)
    if subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, src]).returncode != 0:
        pytest.skip("no C compiler")
    os.chmod(tmp_path, 0o755)
    os.chmod(lib, 0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "LD_PRELOAD": str(lib),
           "LD_LIBRARY_PATH": str(tmp_path), "LOCALD_STATE_DIR": str(tmp_path),
           "HOME": str(tmp_path), "IFS": "/", "LOCALD_SHIM_CONF": str(tmp_path / "c"),
           "TMPDIR": str(tmp_path), "MALLOC_CHECK_": "3", "GCONV_PATH": str(tmp_path)}
    (tmp_path / "c").write_text("allow-port 22\n")
    r = run_shim(["bind-port", "22"], env=env)
    one_line_error(r, REFUSED)
    r = run_shim(["hosts-sync"], input=b"ok.localhost\n", env=env,
                 binds=[(hosts_copy, "/etc/hosts")])
    assert r.returncode == 0, r.stderr
    assert not marker.exists()
    assert b"ok.localhost" in hosts_copy.read_bytes()
