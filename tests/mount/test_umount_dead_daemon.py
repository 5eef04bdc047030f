# SPDX-License-Identifier: Apache-2.0
"""`ctfs umount` when the daemon is not running normally: killed (a zombie its parent does not
reap), exited into a zombie under a subreaper that never reaps (a container without an init),
or gone with its pid now naming another program. umount must not wait for a process that
cannot answer, must never signal a process that is not the daemon, must detach or unmount the
mount, and must say what happened."""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from . import mount_util as M

MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
QUICK_S = 3.0   # "at once": far below umount's default --timeout of 10 s


def ppid_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def warning_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("ctfs: warning: "), r.describe()
    return lines[0]


# ---- (a) a killed daemon that stays a zombie ---------------------------------------------------

@pytest.mark.parametrize("force", [True, False], ids=["force", "plain"])
def test_umount_after_the_daemon_was_killed(ctfs, keys, mounter, small_model, force):
    """`ctfs mount -f` started by this test, killed with SIGKILL and not reaped (a zombie):
    umount detaches (--force) or unmounts (plain) at once, exit 0, and warns that the daemon was
    dead and nothing was revoked."""
    p, m = mounter.foreground(small_model.enc)
    os.kill(p.pid, signal.SIGKILL)
    assert M.wait_until(lambda: M.proc_state(p.pid) == "Z", 10), M.proc_state(p.pid)

    # A new mount on the dead mountpoint is refused as busy, naming the way out.
    r = ctfs.run("mount", small_model.enc, m.mnt, "--key", keys.reader, timeout=30)
    assert r.rc == M.EXIT_BUSY, r.describe()
    line = M.error_line(r)
    assert "daemon is gone" in line and "ctfs umount --force" in line, line

    r = ctfs.run("umount", *(["--force"] if force else []), m.mnt, timeout=30)
    assert r.rc == 0, r.describe()
    assert r.seconds < QUICK_S, f"umount took {r.seconds:.1f}s for a dead daemon\n{r.describe()}"
    assert not M.mounts_at(m.mnt), M.mounts_at(m.mnt)
    assert M.proc_state(p.pid) == "Z", "the scenario needs the daemon to stay an unreaped zombie"
    w = warning_line(r)
    assert f"(pid {p.pid}) was killed by SIGKILL" in w and "nothing revoked access" in w, w
    verb = "detached" if force else "unmounted"
    assert r.stdout == f"{verb} {M.mount_path(m.mnt)}\n", r.describe()


# ---- (b) a daemon that exits into a zombie under a subreaper that never reaps ----------------

# Runs `ctfs mount` (background mode) as a child subreaper: the daemon that `ctfs mount` forks is
# reparented to this process when `ctfs mount` returns, and this process never reaps it.
NON_REAPING_PARENT = textwrap.dedent("""
    import ctypes, json, subprocess, sys
    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d" % ctypes.get_errno())
    argv, log = json.loads(sys.argv[1]), sys.argv[2]
    with open(log, "w") as out:
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out).returncode
    print(json.dumps({"rc": rc}), flush=True)
    sys.stdin.read()  # until the test closes our stdin; never wait() for the daemon
""")


class NonReapingParent:
    def __init__(self, argv, log):
        self.log = log
        self.p = subprocess.Popen([sys.executable, "-c", NON_REAPING_PARENT,
                                   json.dumps([str(a) for a in argv]), str(log)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, env=M.clean_env(),
                                  start_new_session=True)
        line = self.p.stdout.readline()
        try:
            self.result = json.loads(line)
        except json.JSONDecodeError:
            self.result = {"rc": None, "said": line.decode(errors="replace")}

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_umount_when_the_exited_daemon_is_never_reaped(ctfs, keys, small_model, tmp_path,
                                                       force):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log = tmp_path / "daemon.log"
    parent = NonReapingParent([ctfs.bin, "mount", small_model.enc, mnt, "--key", keys.reader,
                               "--log-file", log], tmp_path / "mount.out")
    pid = None
    try:
        assert parent.result.get("rc") == 0, (parent.result, (tmp_path / "mount.out").read_text())
        (e,) = M.mounts_at(mnt)
        pid = e.pid
        assert ppid_of(pid) == parent.p.pid, "the daemon was not reparented to the subreaper"
        assert (mnt / "config.json").read_bytes() == (small_model.plain / "config.json").read_bytes()

        r = ctfs.run("umount", *(["--force"] if force else []), mnt, timeout=30)
        assert r.rc == 0, r.describe() + "\n" + log.read_text()
        assert r.seconds < QUICK_S, f"umount took {r.seconds:.1f}s\n{r.describe()}"
        assert not M.mounts_at(mnt)
        assert M.proc_state(pid) == "Z", "the scenario needs the daemon to stay an unreaped zombie"
        verb = "revoked and unmounted" if force else "unmounted"
        assert r.stdout == (f"{verb} {M.mount_path(mnt)} (daemon pid {pid} wiped its keys and "
                            "exited)\n"), r.describe()
        assert r.stderr == "", r.describe()
    finally:
        parent.close()
        M.cleanup_mount(mnt, [pid])


# ---- (c) the pid in the mount source names another process ------------------------------------

def fake_ctfs_mount(mnt, source):
    """A fuse.ctfs mount with the given source and no daemon: the /dev/fuse descriptor is closed
    right away, so the connection is aborted (every access fails with ENOTCONN)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/dev/fuse", os.O_RDWR)
    try:
        opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
        if libc.mount(source.encode(), str(mnt).encode(), b"fuse.ctfs",
                      MS_RDONLY | MS_NOSUID | MS_NODEV, opts) != 0:
            pytest.fail(f"mount(2) of a fake fuse.ctfs failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
    (e,) = M.mounts_at(mnt)
    assert e.fstype == M.FSTYPE and e.source == source, e


SET_NAME_AND_SLEEP = textwrap.dedent("""
    import ctypes, sys, time
    ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
    print("ready", flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("other", ["sleep", "named_ctfs", "no_process"])
@pytest.mark.parametrize("force", [True, False], ids=["force", "plain"])
def test_umount_never_signals_a_reused_pid(ctfs, tmp_path, other, force):
    """The source names `sleep`, a process that calls itself "ctfs" but has no /dev/fuse open,
    or no process at all: umount leaves that process alone and detaches/unmounts at once."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    bystander = None
    if other == "sleep":
        bystander = subprocess.Popen(["sleep", "120"], start_new_session=True)
        pid = bystander.pid
    elif other == "named_ctfs":
        bystander = subprocess.Popen([sys.executable, "-c", SET_NAME_AND_SLEEP, "ctfs"],
                                     stdout=subprocess.PIPE, start_new_session=True)
        assert bystander.stdout.readline() == b"ready\n"
        pid = bystander.pid
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "ctfs"
    else:
        gone = subprocess.Popen(["true"])
        gone.wait()
        pid = gone.pid
    try:
        fake_ctfs_mount(mnt, f"ctfs:{pid}")
        r = ctfs.run("umount", *(["--force"] if force else []), mnt, timeout=30)
        assert r.rc == 0, r.describe()
        assert r.seconds < QUICK_S, r.describe()
        assert not M.mounts_at(mnt)
        if bystander is not None:
            time.sleep(0.2)
            assert bystander.poll() is None, f"umount signalled pid {pid}, which is not a daemon"
        w = warning_line(r)
        assert f"(pid {pid})" in w and "nothing revoked access" in w, w
        if other == "sleep":
            assert "another process, sleep" in w, w
        elif other == "named_ctfs":
            assert "ctfs without /dev/fuse open" in w, w
        else:
            assert "is not running" in w, w
        assert r.stdout == f"{'detached' if force else 'unmounted'} {M.mount_path(mnt)}\n"
    finally:
        M.cleanup_mount(mnt)
        if bystander is not None:
            bystander.kill()
            bystander.wait()


def test_mount_refused_on_a_ctfs_mount(ctfs, keys, mounter, small_model):
    """Mounting again on a live ctfs mount: exit 7, naming the mount and `ctfs umount`."""
    m = mounter.mount(small_model.enc)
    r = ctfs.run("mount", small_model.enc, m.mnt, "--key", keys.reader, timeout=30)
    assert r.rc == M.EXIT_BUSY, r.describe()
    line = M.error_line(r)
    assert "already mounted" in line and f"ctfs:{m.pid}" in line and "ctfs umount" in line, line
    assert len(M.mounts_at(m.mnt)) == 1
    r = ctfs.run("umount", "-q", m.mnt, timeout=30)
    assert r.rc == 0 and r.stdout == "" and r.stderr == "", r.describe()
    assert not M.mounts_at(m.mnt)
