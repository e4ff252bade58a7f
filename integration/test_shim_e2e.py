# SPDX-License-Identifier: MIT
"""Issue 7 end to end: after `sudo localctl admin setup`, an unprivileged user's
`localctl up` serves https://web.demo.localhost/ on port 443 (a listener bound by the setuid
shim and passed to the user's proxyd with SCM_RIGHTS), and curl verifies it against the
system trust store, with no --cacert and no -k.

Each test is one script inside `unshare -m -n`: a private network namespace (nothing else
holds 443; only lo) and private copies of everything the shim writes, bind-mounted over the
real paths: /etc/ssl (the store update-ca-certificates rebuilds), the anchors directory
/usr/local/share/ca-certificates (empty), update-ca-certificates' hook directory (empty) and
/etc/hosts. The real files are never touched; the namespace dies with the script.

Installed like a real install with `--prefix P`: P/bin holds localctl, locald-superd and
locald-proxyd (copies the user can execute), `admin setup --prefix P` puts the shim in
P/libexec/locald/, and nothing points the daemons at it ($LOCALD_SHIM unset): they must find
it there themselves. The user is made for the test (shim_fixtures); its home (from useradd,
removed by userdel) is HOME, because the shim only trusts a CA under the passwd home.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from shim_fixtures import *  # noqa: F401,F403
from shim_fixtures import as_user

ANCHORS = "/usr/local/share/ca-certificates"
HOOKS = "/etc/ca-certificates/update.d"
UPDATE = "/usr/sbin/update-ca-certificates"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
CGROUP_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")


def _need_tools():
    if os.geteuid() != 0:
        pytest.skip("needs root: installs a setuid shim, creates a user, mounts in a namespace")
    for tool in ("unshare", "setpriv", "curl", "ss", "ip", "openssl", "pkill"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    if not os.access(UPDATE, os.X_OK):
        pytest.skip(f"{UPDATE} is missing (Debian's ca-certificates): the test uses Debian's store")
    r = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "true"],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot make mount + network namespaces here: "
                    + r.stderr.decode(errors="replace").strip())


def _rm_cgroup_tree(path):
    """rmdir a cgroup and its children, deepest first (cgroupfs has no rm -r)."""
    for dirpath, dirnames, _ in os.walk(path, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


class World:
    """The temp tree one test runs in, and the script that runs in its namespace."""

    def __init__(self, build_binary, source_dir, user):
        self.user = user
        self.uid = user.pw_uid
        self.root = Path(tempfile.mkdtemp(prefix="locald-e2e-"))
        os.chmod(self.root, 0o755)
        self.prefix = self.root / "prefix"
        bindir = self.prefix / "bin"
        bindir.mkdir(parents=True)
        for rel in ("ctl/localctl", "services/superd/locald-superd",
                    "services/proxyd/locald-proxyd"):
            dst = bindir / Path(rel).name
            shutil.copyfile(build_binary(rel), dst)
            dst.chmod(0o755)
        os.chmod(self.prefix, 0o755)
        os.chmod(bindir, 0o755)
        self.shim_source = build_binary("shim/locald-shim")
        self.localctl = bindir / "localctl"
        for d in ("rt", "cf"):
            (self.root / d).mkdir(mode=0o700)
            os.chown(self.root / d, self.uid, user.pw_gid)
        self.demo = self.root / "demo"
        shutil.copytree(source_dir / "examples/demo", self.demo)
        for p in [self.demo, *self.demo.rglob("*")]:
            os.chown(p, self.uid, user.pw_gid)
        # the private store: /etc/ssl as it is (symlinks kept), no local anchors, no hooks
        subprocess.run(["cp", "-a", "/etc/ssl", str(self.root / "ssl")], check=True)
        (self.root / "anchors").mkdir(mode=0o755)
        (self.root / "hooks").mkdir(mode=0o755)
        self.hosts = self.root / "hosts"
        shutil.copyfile("/etc/hosts", self.hosts)
        self.home = Path(user.pw_dir)
        self.state = self.home / ".local/state/locald"
        shutil.rmtree(self.state, ignore_errors=True)
        self.binds = [(self.root / "ssl", "/etc/ssl"), (self.root / "anchors", ANCHORS),
                      (self.hosts, "/etc/hosts")]
        if os.path.isdir(HOOKS):
            self.binds.append((self.root / "hooks", HOOKS))

    def user_cmd(self, *argv):
        env = ["env", "-i", f"PATH={PATH}", f"HOME={self.home}",
               f"LOCALD_RUNTIME_DIR={self.root / 'rt'}", f"LOCALD_STATE_DIR={self.state}",
               f"LOCALD_CONFIG_DIR={self.root / 'cf'}"]
        return shlex.join(as_user(self.user, [*env, *argv]))

    def admin_cmd(self, verb):
        env = ["env", "-i", f"PATH={PATH}", f"SUDO_USER={self.user.pw_name}",
               f"SUDO_UID={self.uid}", f"SUDO_GID={self.user.pw_gid}",
               f"LOCALD_SHIM_SOURCE={self.shim_source}"]
        return shlex.join([*env, str(self.localctl), "admin", verb, "--prefix", str(self.prefix)])

    def wait_proxyd(self):
        """Shell: wait (bounded) until superd reports the system project's proxyd running.
        Its first start creates the CA and has the shim trust it before it is ready."""
        status = self.user_cmd(self.localctl, "status", "--json", "system")
        return (f"for i in $(seq 1 1200); do {status} 2>/dev/null | "
                f"grep -q '\"state\": *\"running\"' && break; sleep 0.1; done")

    def run(self, steps):
        """steps: [(name, shell)]; each step's output and exit code, by name."""
        lines = ["set -u", "ip link set lo up"]
        for src, dst in self.binds:
            lines.append(f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)} || exit 99")
        for name, body in steps:
            lines.append(f"echo '@@step {name}'")
            lines.append(f"{{ {body}\n}} 2>&1")
            lines.append(f"echo \"@@rc $?\"")
        # whatever the steps left: nothing of the user's may outlive the namespace
        lines.append(f"pkill -KILL -u {self.uid}")
        p = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "bash", "-c",
                            "\n".join(lines)], capture_output=True, timeout=900,
                           env={"PATH": PATH})
        out = p.stdout.decode(errors="replace")
        assert p.returncode != 99, out + p.stderr.decode(errors="replace")
        res = {}
        for chunk in out.split("@@step ")[1:]:
            name, _, rest = chunk.partition("\n")
            text, _, rc = rest.rpartition("@@rc ")
            res[name] = (int(rc.split()[0]), text)
        self.transcript = out + p.stderr.decode(errors="replace")
        return res

    def close(self):
        subprocess.run(["pkill", "-KILL", "-u", str(self.uid)], check=False)
        for root in CGROUP_ROOTS:
            cg = Path(root) / "locald" / str(self.uid)
            if cg.is_dir():
                _rm_cgroup_tree(cg)
            try:
                os.rmdir(Path(root) / "locald")
            except OSError:
                pass
        shutil.rmtree(self.state, ignore_errors=True)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.root)], check=False)


@pytest.fixture
def world(build_binary, source_dir, shim_user):
    _need_tools()
    w = World(build_binary, source_dir, shim_user)
    try:
        yield w
    finally:
        w.close()
    # the real files were never touched
    assert b"BEGIN locald" not in Path("/etc/hosts").read_bytes()
    assert not Path(ANCHORS, f"locald-{shim_user.pw_uid}.crt").exists()


def _listener_owners():
    """Shell: who holds 127.0.0.1:443 — `pid uid comm` per listening socket."""
    return ("ss -Hltnp 'sport = :443' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | "
            "while read p; do echo \"owner $p $(awk '/^Uid:/ {print $2, $3}' /proc/$p/status)"
            " $(cat /proc/$p/comm)\"; done")


def _curl(w, *extra):
    return w.user_cmd("curl", "-sS", "--max-time", "30", *extra, "-w",
                      "\n@port %{remote_port} @code %{http_code}\n",
                      "https://web.demo.localhost/")


def _check_served_on_443(w, res, ctx):
    # the user could not have bound 443 itself in this namespace: the listener is the shim's
    assert int(res["unprivileged_ports"][1]) > 443, ctx
    rc, out = res["curl"]
    assert rc == 0, ctx
    assert "<h1>locald demo shop</h1>" in out, ctx
    assert "@port 443 @code 200" in out, ctx
    # the listener is the user's proxyd's: the shim bound it and passed it over
    owners = [l.split() for l in res["listeners"][1].splitlines() if l.startswith("owner ")]
    assert owners, ctx
    for _, pid, ruid, euid, comm in owners:
        assert (ruid, euid, comm) == (str(w.uid), str(w.uid), "locald-proxyd"), ctx


def test_setup_then_up_serves_443_trusted_by_the_system_store(world):
    w = world
    cert = f"locald-{w.uid}.crt"
    ca = w.state / "ca/ca.crt"
    res = w.run([
        ("setup", w.admin_cmd("setup")),
        ("up", w.user_cmd(w.localctl, "up", "-d", w.demo)),
        ("wait", w.wait_proxyd()),
        ("anchors", f"ls {ANCHORS}"),
        ("curl", _curl(w, "--fail")),
        ("listeners", _listener_owners()),
        ("unprivileged_ports", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"),
        ("hosts", "cat /etc/hosts"),
        ("down", w.user_cmd(w.localctl, "down", w.demo)),
        # locald still runs: the cgroup stays (and says why), the rest is undone
        ("uninstall", w.admin_cmd("uninstall")),
        ("anchors_after", f"ls {ANCHORS}"),
        ("hosts_after", "cat /etc/hosts"),
        ("curl_untrusted", _curl(w)),
        ("curl_cacert", _curl(w, "--cacert", ca)),
        ("stop", w.user_cmd(w.localctl, "server", "stop")),
        ("uninstall_again", w.admin_cmd("uninstall")),
    ])
    ctx = w.transcript
    rc, out = res["setup"]
    assert rc == 0 and "shim: installed" in out, ctx
    # the CA does not exist yet: setup says who will trust it
    assert "CA: none yet" in out and "localctl up" in out, ctx
    assert res["up"][0] == 0, ctx
    # no :8443 in the URLs: superd found the shim in PREFIX/libexec/locald by itself
    assert re.search(r"^\s+web\s+https://demo\.localhost\s", res["up"][1], re.M), ctx
    assert ":8443" not in res["up"][1], ctx
    assert res["anchors"][1].split() == [cert], ctx
    _check_served_on_443(w, res, ctx)
    hosts = res["hosts"][1]
    assert "# BEGIN locald" in hosts and "# END locald" in hosts, ctx
    assert re.search(r"^127\.0\.0\.1 web\.demo\.localhost$", hosts, re.M), ctx
    assert res["down"][0] == 0, ctx

    rc, out = res["uninstall"]
    assert "CA: removed" in out and "shim: removed" in out, ctx
    if "cgroup: delegated" in res["setup"][1]:
        # superd runs in the delegated cgroup: it stays, uninstall says why and fails
        assert "still has processes" in out and rc == 1, ctx
    assert res["anchors_after"][1].split() == [], ctx
    assert "BEGIN locald" not in res["hosts_after"][1], ctx
    # proxyd still answers on 443, but the system store no longer vouches for it
    rc, out = res["curl_untrusted"]
    assert rc == 60, ctx  # CURLE_PEER_FAILED_VERIFICATION
    assert "@code 000" in out, ctx
    rc, out = res["curl_cacert"]
    assert rc == 0 and "@port 443" in out, ctx
    assert res["stop"][0] == 0, ctx
    rc, out = res["uninstall_again"]
    assert rc == 0, ctx
    assert "shim: not installed" in out, ctx
    for root in CGROUP_ROOTS:
        assert not os.path.exists(f"{root}/locald/{w.uid}"), ctx
    assert not (w.prefix / "libexec/locald/locald-shim").exists()
    assert not (w.root / "anchors" / cert).exists()


def test_up_then_setup_says_to_restart_and_then_serves_443(world):
    w = world
    res = w.run([
        ("up", w.user_cmd(w.localctl, "up", "-d", w.demo)),
        ("wait", w.wait_proxyd()),
        ("status", w.user_cmd(w.localctl, "status", "--json", "demo")),
        ("setup", w.admin_cmd("setup")),
        ("restart", w.user_cmd(w.localctl, "server", "restart")),
        ("wait_again", w.wait_proxyd()),
        ("curl", _curl(w, "--fail")),
        ("listeners", _listener_owners()),
        ("unprivileged_ports", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"),
        ("stop", w.user_cmd(w.localctl, "server", "stop")),
        ("uninstall", w.admin_cmd("uninstall")),
    ])
    ctx = w.transcript
    # without the shim the proxy falls back to 8443
    assert res["up"][0] == 0 and ":8443" in res["up"][1], ctx
    demo = json.loads(res["status"][1])["projects"][0]
    assert {s["name"]: s["state"] for s in demo["services"]}["web"] == "running", ctx
    # setup trusts the CA proxyd made, and says the running proxy keeps 8443 until restart
    rc, out = res["setup"]
    assert rc == 0 and "CA: trusted by the system store" in out, ctx
    assert re.search(r"running locald-proxyd \(pid \d+\) keeps its ports: run "
                     r"`localctl server restart`", out), ctx
    assert res["restart"][0] == 0, ctx
    _check_served_on_443(w, res, ctx)
    assert res["stop"][0] == 0 and res["uninstall"][0] == 0, ctx
    for root in CGROUP_ROOTS:
        assert not os.path.exists(f"{root}/locald/{w.uid}"), ctx
