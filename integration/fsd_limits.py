# SPDX-License-Identifier: MIT
"""A locald-fsd mount with a small RLIMIT_NOFILE, for the tests of its fd budget.

fsd keeps node fds within half of RLIMIT_NOFILE and raises its soft limit to the hard
one at start (as root, the hard one too). To hold it to a small limit the mount runs
with a low hard limit and without CAP_SYS_RESOURCE (setpriv), so it cannot raise it."""

import os
import resource
import shutil
import subprocess

import pytest

from fsd_fixtures import wait_mounted


def fsd_mount_low_nofile(mounts, lowers, upper, work, mnt, nofile, extra_opts=""):
    """Mount like Mounts.fsd_mount, registered for its cleanup; returns the process."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to drop CAP_SYS_RESOURCE")
    opts = "lowerdir=" + ":".join(str(l) for l in lowers) + f",upperdir={upper},workdir={work}"
    if extra_opts:
        opts += "," + extra_opts
    argv = ["setpriv", "--inh-caps=-sys_resource", "--bounding-set=-sys_resource",
            str(mounts.fsd), "mount", "-o", opts, str(mnt)]

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    mounts.procs.append(proc)
    mounts.paths.append(str(mnt))
    wait_mounted(mnt, proc)
    with open(f"/proc/{proc.pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert line.split()[3] == str(nofile), f"fsd raised its fd limit: {line}"
    return proc


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
