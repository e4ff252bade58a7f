# SPDX-License-Identifier: MIT
"""`localctl admin setup|uninstall` and `localctl trust|untrust` end to end, in a mount
namespace with private copies of the trust store and /etc/hosts, installing into a temp
prefix (never /usr/local). $LOCALD_TEST_LOCALCTL overrides the localctl under test."""

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from shim_fixtures import *  # noqa: F401,F403
from shim_fixtures import as_user, ns_script
from test_shim_trust import pki, state_ca, store, put, verify  # noqa: F401


@pytest.fixture(scope="module")
def localctl(build_dir):
    p = Path(os.environ.get("LOCALD_TEST_LOCALCTL", build_dir / "ctl/localctl"))
    if not os.access(p, os.X_OK):
        pytest.skip(f"{p} is not built")
    if subprocess.run([p, "admin", "--help"], capture_output=True).returncode != 0:
        pytest.skip("this localctl has no `admin` command yet")
    return p


@pytest.fixture
def prefix():
    d = Path(tempfile.mkdtemp(prefix="locald-prefix-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def hosts_file():
    d = Path(tempfile.mkdtemp(prefix="locald-hosts-"))
    f = d / "hosts"
    f.write_bytes(b"127.0.0.1 localhost\n# BEGIN locald\n127.0.0.1 a.localhost\n"
                  b"::1 a.localhost\n# END locald\n")
    yield f
    shutil.rmtree(d)


def in_ns(binds, body, env):
    return subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c",
                           ns_script(binds, body)], capture_output=True, timeout=600, env=env)


def test_admin_setup_is_idempotent_and_uninstall_reverses_it(
        localctl, build_binary, shim_user, pki, store, state_ca, prefix, hosts_file):
    d, binds = store
    binds = binds + [(hosts_file, "/etc/hosts")]
    put(state_ca, pki / "ca.crt", shim_user)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SUDO_UID": str(shim_user.pw_uid),
           "LOCALD_SHIM_SOURCE": str(build_binary("shim/locald-shim"))}
    lc = shlex.quote(str(localctl))
    body = f"""
{lc} admin setup --prefix {prefix} || exit 1
echo ---
{verify(pki)}
{lc} admin setup --prefix {prefix} || exit 1
echo ---
{lc} admin uninstall --prefix {prefix} || exit 1
echo ---
{verify(pki)}
"""
    r = in_ns(binds, body, env)
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr.decode())
    first, second, third, last = out.split("---\n")
    assert "shim: installed" in first and "CA: trusted" in first
    assert second.split()[0] == "verified" and "already installed" in second
    assert "shim: removed" in third and "CA: removed" in third
    assert last.strip() == "unverified"
    assert not (prefix / "libexec/locald/locald-shim").exists()
    assert hosts_file.read_bytes() == b"127.0.0.1 localhost\n"
    assert not (d / "anchors" / f"locald-{shim_user.pw_uid}.crt").exists()
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        assert not os.path.exists(f"{root}/locald/{shim_user.pw_uid}")


def test_admin_needs_root(localctl, shim_user):
    r = subprocess.run(as_user(shim_user, [localctl, "admin", "setup", "--prefix", "/tmp/x"]),
                       capture_output=True)
    assert r.returncode == 1 and b"needs root" in r.stderr


def test_trust_each_store_on_its_own(localctl, build_binary, shim_user, pki, store, state_ca,
                                     prefix, hosts_file):
    if not shutil.which("certutil"):
        pytest.skip("certutil (libnss3-tools) is not installed")
    d, binds = store
    put(state_ca, pki / "ca.crt", shim_user)
    home = Path(shim_user.pw_dir)
    nssdb = home / ".pki/nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    for p in (home / ".pki", nssdb):
        os.chown(p, shim_user.pw_uid, shim_user.pw_gid)
    user_env = {"PATH": "/usr/bin:/bin", "HOME": str(home),
                "LOCALD_STATE_DIR": str(home / ".local/state/locald")}
    subprocess.run(as_user(shim_user, ["certutil", "-N", "--empty-password", "-d",
                                       f"sql:{nssdb}"]), check=True, env=user_env)
    try:
        shim = prefix / "libexec/locald/locald-shim"
        env = dict(user_env, LOCALD_SHIM=str(shim))
        admin_env = {"PATH": "/usr/bin:/bin", "SUDO_UID": str(shim_user.pw_uid),
                     "LOCALD_SHIM_SOURCE": str(build_binary("shim/locald-shim"))}
        # Only the shim matters here; uninstall (finally) removes the cgroup it delegates.
        inst = in_ns(binds, f"{shlex.quote(str(localctl))} admin setup --prefix {prefix}",
                     admin_env)
        assert shim.exists(), inst.stderr
        lc = shlex.join(as_user(shim_user, [localctl]))
        listing = shlex.join(as_user(shim_user, ["certutil", "-L", "-d", f"sql:{nssdb}"]))
        body = f"""
export {" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())}
{lc} trust || exit 1
echo ---
{verify(pki)}
{listing}
echo ---
{lc} untrust || exit 1
echo ---
{verify(pki)}
{listing}
"""
        r = in_ns(binds, body, env)
        out = r.stdout.decode()
        assert r.returncode == 0, (out, r.stderr.decode())
        a, b, c, e = out.split("---\n")
        assert "system store: trusted" in a and f"NSS {nssdb}: trusted" in a
        assert "verified" in b.split() and "locald development CA" in b
        assert "system store: removed" in c
        assert "unverified" in e.split() and "locald development CA" not in e
        # Without the shim, the NSS store is still done and the failure is reported.
        env2 = dict(env, LOCALD_SHIM="/nonexistent")
        r = in_ns(binds, f"export LOCALD_SHIM=/nonexistent {' '.join(f'{k}={shlex.quote(v)}' for k, v in user_env.items())}\n{lc} trust", env2)
        assert r.returncode == 1
        assert b"not installed" in r.stderr and f"NSS {nssdb}: trusted".encode() in r.stdout
    finally:
        shutil.rmtree(home / ".pki")
        in_ns(binds + [(hosts_file, "/etc/hosts")],
              f"{shlex.quote(str(localctl))} admin uninstall --prefix {prefix}",
              {"PATH": "/usr/bin:/bin", "SUDO_UID": str(shim_user.pw_uid)})
