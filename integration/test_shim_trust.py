# SPDX-License-Identifier: MIT
"""trust-ca / untrust-ca into a private copy of the system store (mount namespace:
/etc/ssl, /usr/local/share/ca-certificates and update-ca-certificates' hook dir are
private copies), verified with `openssl verify` against the system bundle; and every
refusal leaves the store untouched."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from shim_fixtures import *  # noqa: F401,F403
from shim_fixtures import ns_script, shim_cmd

ANCHORS = "/usr/local/share/ca-certificates"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki():
    if not shutil.which("openssl") or not os.access("/usr/sbin/update-ca-certificates", os.X_OK):
        pytest.skip("needs openssl and update-ca-certificates")
    d = Path(tempfile.mkdtemp(prefix="locald-pki-"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
            "-subj", "/CN=locald development CA (test)/O=locald",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr",
            "-subj", "/CN=web.demo.localhost", cwd=d)
    (d / "ext").write_text("subjectAltName=DNS:web.demo.localhost\nextendedKeyUsage=serverAuth\n"
                           "basicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "leaf.crt", "-days", "30", "-extfile", "ext", cwd=d)
    openssl("req", "-x509", *ec, "-keyout", "o.key", "-out", "other.crt", "-days", "30",
            "-subj", "/CN=x/O=other", "-addext", "basicConstraints=critical,CA:TRUE", cwd=d)
    os.chmod(d, 0o755)
    for f in d.iterdir():
        os.chmod(f, 0o644)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def store():
    """Private copies of the trust store, as bind mounts for the namespace."""
    d = Path(tempfile.mkdtemp(prefix="locald-store-"))
    shutil.copytree("/etc/ssl", d / "ssl", symlinks=True)
    shutil.copytree(ANCHORS, d / "anchors", symlinks=True)
    (d / "hooks").mkdir()
    binds = [(d / "ssl", "/etc/ssl"), (d / "anchors", ANCHORS)]
    if os.path.isdir("/etc/ca-certificates/update.d"):
        binds.append((d / "hooks", "/etc/ca-certificates/update.d"))
    yield d, binds
    shutil.rmtree(d)


@pytest.fixture
def state_ca(shim_user, pki):
    """The user's <state>/ca/ca.crt (their file, in their home)."""
    home = Path(shim_user.pw_dir)
    ca_dir = home / ".local/state/locald/ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    for p in [home / ".local", home / ".local/state", home / ".local/state/locald", ca_dir]:
        os.chown(p, shim_user.pw_uid, shim_user.pw_gid)
    f = ca_dir / "ca.crt"
    yield f
    shutil.rmtree(home / ".local/state/locald")


def put(f, src, user, owner=None):
    if f.exists() or f.is_symlink():
        f.unlink()
    shutil.copyfile(src, f)
    uid = user.pw_uid if owner is None else owner
    os.chown(f, uid, user.pw_gid)


def in_ns(shim, user, binds, body):
    script = ns_script(binds, body.replace("SHIM", shim_cmd(shim, user, [])))
    return subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", script],
                          capture_output=True, timeout=300)


def verify(pki):
    return (f"openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt {pki}/leaf.crt"
            f" >/dev/null 2>&1 && echo verified || echo unverified")


def test_trust_then_untrust(shim, shim_user, pki, store, state_ca):
    d, binds = store
    put(state_ca, pki / "ca.crt", shim_user)
    body = f"""
{verify(pki)}
SHIM trust-ca || exit 1
{verify(pki)}
SHIM trust-ca || exit 1
{verify(pki)}
SHIM untrust-ca || exit 1
{verify(pki)}
SHIM untrust-ca || exit 1
"""
    r = in_ns(shim, shim_user, binds, body)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["unverified", "verified", "verified", "unverified"]
    assert not (d / "anchors" / f"locald-{shim_user.pw_uid}.crt").exists()


def test_trust_with_explicit_path_installs_checked_pem(shim, shim_user, pki, store, state_ca):
    d, binds = store
    put(state_ca, pki / "ca.crt", shim_user)
    r = in_ns(shim, shim_user, binds, f"SHIM trust-ca {state_ca}")
    assert r.returncode == 0, r.stderr
    installed = d / "anchors" / f"locald-{shim_user.pw_uid}.crt"
    assert installed.read_bytes() == (pki / "ca.crt").read_bytes()
    st = installed.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o644)


def refused(r):
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert r.stderr.decode().count("\n") == 1


def assert_store_untouched(d):
    assert sorted(p.name for p in (d / "anchors").iterdir()) == sorted(os.listdir(ANCHORS))
    assert (d / "ssl/certs/ca-certificates.crt").read_bytes() == \
        Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()


def test_refusals_write_nothing(shim, shim_user, pki, store, state_ca, tmp_path):
    d, binds = store
    home = shim_user.pw_dir
    # Not a locald CA: a leaf, and a CA of another organisation.
    for src in ("leaf.crt", "other.crt"):
        put(state_ca, pki / src, shim_user)
        r = in_ns(shim, shim_user, binds, "SHIM trust-ca")
        refused(r)
        assert b"not a locald CA" in r.stderr
    # Garbage, a private key, an empty file.
    for data in (os.urandom(3000), (pki / "ca.key").read_bytes(), b""):
        state_ca.write_bytes(data)
        refused(in_ns(shim, shim_user, binds, "SHIM trust-ca"))
    # A symlink to /etc/shadow (and to a real CA: symlinks are refused, full stop).
    for target in ("/etc/shadow", str(pki / "ca.crt")):
        state_ca.unlink()
        os.symlink(target, state_ca)
        os.lchown(state_ca, shim_user.pw_uid, shim_user.pw_gid)
        r = in_ns(shim, shim_user, binds, "SHIM trust-ca")
        refused(r)
        assert b"not a regular file" in r.stderr
    # A CA file the user does not own.
    put(state_ca, pki / "ca.crt", shim_user, owner=0)
    r = in_ns(shim, shim_user, binds, "SHIM trust-ca")
    refused(r)
    assert b"not owned" in r.stderr
    # Paths outside the user's state dir.
    put(state_ca, pki / "ca.crt", shim_user)
    outside = tmp_path / "ca" / "ca.crt"
    outside.parent.mkdir()
    shutil.copyfile(pki / "ca.crt", outside)
    os.chmod(tmp_path, 0o755)
    os.chown(outside, shim_user.pw_uid, shim_user.pw_gid)
    for p in (str(outside), "/etc/shadow", "/etc/ssl/certs/ca-certificates.crt",
              f"{home}/../../{outside}", f"{home}/.local/state/locald/ca/../ca/ca.crt",
              f"{home}//.local/state/locald/ca/ca.crt", f"{home}/.local/state/locald/ca.crt",
              "relative/ca/ca.crt", f"{home}/.local/state/locald/./ca/ca.crt"):
        r = in_ns(shim, shim_user, binds, f"SHIM trust-ca '{p}'")
        refused(r)
    assert_store_untouched(d)
