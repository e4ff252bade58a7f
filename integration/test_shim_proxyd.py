# SPDX-License-Identifier: MIT
"""proxyd with locald-shim installed, as an unprivileged user: port 443 comes from the
shim (SCM_RIGHTS), and /etc/hosts' locald block lists the routed names.

Everything happens inside `unshare -m -n`: a private network namespace (so nothing else
on the machine holds 443) and a private copy of /etc/hosts bind-mounted over the real one
(tests never touch the real file)."""

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import pytest

from shim_fixtures import *  # noqa: F401,F403
from shim_fixtures import as_user


def test_proxyd_gets_443_from_the_shim_and_syncs_etc_hosts(shim, shim_user, build_binary):
    proxyd = build_binary("services/proxyd/locald-proxyd")
    root = Path(tempfile.mkdtemp(prefix="locald-shimpx-"))
    os.chmod(root, 0o755)
    dirs = {n: root / n for n in ("rt", "st", "cf")}
    for d in dirs.values():
        d.mkdir(mode=0o700)
        os.chown(d, shim_user.pw_uid, shim_user.pw_gid)
    # a proxyd binary the user can execute (build dirs may be private)
    exe = root / "locald-proxyd"
    exe.write_bytes(Path(proxyd).read_bytes())
    exe.chmod(0o755)
    hosts = root / "hosts"
    original = b"127.0.0.1\tlocalhost\n# a comment the shim must keep\n::1 ip6-localhost\n"
    hosts.write_bytes(original)
    env = " ".join(shlex.quote(x) for x in [
        f"LOCALD_RUNTIME_DIR={dirs['rt']}", f"LOCALD_STATE_DIR={dirs['st']}",
        f"LOCALD_CONFIG_DIR={dirs['cf']}", f"LOCALD_SHIM={shim}",
        "LOCALD_HTTP_PORT=0", "LOCALD_HTTPS_PORT=443", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
    run_proxyd = shlex.join(as_user(shim_user, ["env", "-i", *shlex.split(env), exe]))
    script = f"""
set -u
ip link set lo up
mount --bind {shlex.quote(str(hosts))} /etc/hosts
{run_proxyd} > {shlex.quote(str(root / 'proxyd.log'))} 2>&1 &
pid=$!
for i in $(seq 1 100); do
  curl -sk -o /dev/null --max-time 2 https://127.0.0.1:443/ && break
  sleep 0.1
done
echo "STATUS $(curl -sk -o /dev/null -w '%{{http_code}}' -H 'Host: locald.localhost' https://127.0.0.1:443/)"
echo "OWNER $(ss -Hltnp 'sport = :443' | grep -o 'pid=[0-9]*' | head -1)"
echo "PROXYD pid=$pid"
sleep 0.5
cat /etc/hosts
kill $pid
wait $pid
echo "EXIT $?"
"""
    try:
        p = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "bash", "-c", script],
                           capture_output=True, timeout=120)
        out = p.stdout.decode(errors="replace")
        log = (root / "proxyd.log").read_text(errors="replace")
        assert "STATUS 200" in out, out + log
        # the listener on 443 is held by proxyd (running as the user), not by the shim
        owner = next(l for l in out.splitlines() if l.startswith("OWNER")).split()[-1]
        mine = next(l for l in out.splitlines() if l.startswith("PROXYD")).split()[-1]
        assert owner == mine, out
        assert "# BEGIN locald" in out and "locald.localhost" in out, out + log
        assert "# a comment the shim must keep" in out
        assert "EXIT 0" in out, out + log
        # the real /etc/hosts is untouched
        assert b"BEGIN locald" not in Path("/etc/hosts").read_bytes()
    finally:
        subprocess.run(["rm", "-rf", str(root)])
