# SPDX-License-Identifier: MIT
"""cgroup-setup: <cgroup2>/locald/<uid> owned by the caller (skipped under systemd or
without cgroup2); --move-parent refused unless the parent is the caller's."""

import os
import re

import pytest

from shim_fixtures import *  # noqa: F401,F403


def test_cgroup_setup_delegates_to_the_caller(run_shim, shim_user):
    if os.path.exists("/run/systemd/system"):
        pytest.skip("systemd delegates cgroups here")
    r = run_shim(["cgroup-setup"])
    if r.returncode == 6:
        pytest.skip(r.stderr.decode().strip())
    assert r.returncode == 0, r.stderr
    path = r.stdout.decode().strip()
    assert re.fullmatch(rf"/.+/locald/{shim_user.pw_uid}", path)
    try:
        for f in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
            st = os.stat(os.path.join(path, f))
            assert (st.st_uid, st.st_gid) == (shim_user.pw_uid, shim_user.pw_gid), f
        top = os.stat(os.path.dirname(path))
        assert (top.st_uid, top.st_gid) == (0, 0)
        # Idempotent.
        assert run_shim(["cgroup-setup"]).returncode == 0
        # The parent here is root's bash: not the caller's.
        r = run_shim(["cgroup-setup", "--move-parent"])
        assert r.returncode == 3 and b"parent" in r.stderr
    finally:
        os.rmdir(path)
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass
