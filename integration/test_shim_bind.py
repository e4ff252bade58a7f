# SPDX-License-Identifier: MIT
"""bind-port: an unprivileged user gets a loopback listener on 80/443 over fd 3.

Each case runs in a private network namespace (`unshare -n`, lo up) so a proxy already
listening on the machine's 80/443 does not get in the way; the check itself (receive the
fd, it listens on loopback, a client connects) runs inside that namespace."""

import subprocess
import sys

import pytest

from shim_fixtures import *  # noqa: F401,F403
from shim_fixtures import shim_cmd

CHECK = r'''
import array, socket, subprocess, sys
port, ipv6, shim_cmd = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
family, addr = (socket.AF_INET6, "::1") if ipv6 else (socket.AF_INET, "127.0.0.1")
busy = None
if sys.argv[4] == "busy":
    busy = socket.socket(family)
    busy.bind((addr, port))
    busy.listen()
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
cmd = shim_cmd + " bind-port %d%s" % (port, " --ipv6" if ipv6 else "")
r = subprocess.run(["bash", "-c", "exec %s 3<&%d" % (cmd, b.fileno())], pass_fds=[b.fileno()],
                   capture_output=True)
sys.stderr.buffer.write(r.stderr)
if r.returncode != 0:
    sys.exit(r.returncode)
a.settimeout(5)
msg, anc, _, _ = a.recvmsg(1, socket.CMSG_SPACE(4))
assert msg == b"L" and len(anc) == 1, anc
level, typ, data = anc[0]
assert (level, typ) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
lst = socket.socket(fileno=array.array("i", data[:4])[0])
assert lst.getsockname()[:2] == (addr, port), lst.getsockname()
assert lst.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
c = socket.create_connection((addr, port), timeout=5)
conn, _ = lst.accept()
c.sendall(b"hi")
assert conn.recv(2) == b"hi"
print("ok")
'''


def run_check(shim, user, port, ipv6, mode="free"):
    return subprocess.run(["unshare", "-n", sys.executable, "-c", CHECK, str(port),
                           "1" if ipv6 else "0", shim_cmd(shim, user, []), mode],
                          capture_output=True, timeout=60)


@pytest.mark.parametrize("port,ipv6", [(80, False), (443, False), (443, True), (80, True)])
def test_bind_port_passes_a_loopback_listener(shim, shim_user, port, ipv6):
    r = run_check(shim, shim_user, port, ipv6)
    assert r.returncode == 0 and r.stdout == b"ok\n", r.stderr.decode()


def test_bind_port_busy_port_is_a_one_line_failure(shim, shim_user):
    r = run_check(shim, shim_user, 443, False, "busy")
    assert r.returncode == 1, r.stderr
    assert r.stderr.decode().count("\n") == 1 and b"in use" in r.stderr
