# SPDX-License-Identifier: Apache-2.0
"""A mount whose daemon runs in another pid namespace, as in a container or a Kubernetes pod,
operated from the node. The daemon knows itself by its pid in its own namespace, and that number
may name any process on the node, even another ctfs daemon serving another mount. The mount's
source names the daemon's pid and its pid namespace ("ctfs:<pid>@<pidns inode>"), so `ctfs
status`, `ctfs revoke` and `ctfs umount` from the node reach that daemon (through
/proc/PID/root for its control socket) and never the other one.

The container here: `unshare --pid --fork --mount --propagation unchanged` with a private
/run/ctfs (so the control sockets of the two daemons do not meet) and a mountpoint under a
shared bind mount (so the mount made inside shows on the node, as with Bidirectional
propagation). Inside, /proc/sys/kernel/ns_last_pid makes the daemon's pid there equal the node
pid of another, ordinary daemon: the collision these commands must not fall for."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap

import pytest

from . import mount_util as M

# Runs as pid 1 of the new pid namespace: a private /run/ctfs, then `ctfs mount -f` as the
# next child, whose pid in the namespace is $1 (ns_last_pid is the last pid handed out there).
CONTAINER = textwrap.dedent("""\
    set -e
    mount -t tmpfs -o mode=0755 ctfs-run /run/ctfs
    want=$1; shift
    echo $((want - 1)) > /proc/sys/kernel/ns_last_pid
    "$@" &
    wait $!
""")


@pytest.fixture
def shared_dir(tmp_path):
    """A directory that is a shared mount: mounts below it made in a copy of the mount namespace
    show here too."""
    d = tmp_path / "shared"
    d.mkdir()
    subprocess.run(["mount", "--bind", d, d], check=True)
    try:
        subprocess.run(["mount", "--make-shared", d], check=True)
        yield d
    finally:
        for e in M.fuse_mounts_under(str(d)):
            M.force_unmount(e.mountpoint)
        subprocess.run(["umount", "-l", d], check=False)


def start_in_container(ctfs, keys, src, mnt, inner_pid, log):
    os.makedirs("/run/ctfs", exist_ok=True)
    argv = [ctfs.bin, "mount", src, mnt, "-f", "--key", keys.reader, "--log-file", log]
    return subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "unchanged",
         "sh", "-c", CONTAINER, "container", str(inner_pid), *map(str, argv)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)


def container_failure(box, log):
    out = box.stdout.read() if box.poll() is not None else "(still running)"
    text = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    return f"the container did not mount (exit {box.poll()}): {out}\n--- daemon log ---\n{text}"


def node_pid_of_namespaced_daemon(mnt):
    """The node pid of the ctfs process serving `mnt` from another pid namespace."""
    for pid in M.ctfs_processes_with_arg(str(mnt)):
        if os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid"):
            return pid
    return None


def status_json(ctfs, mnt):
    r = ctfs.run("status", mnt, "--json", timeout=30)
    assert r.rc == 0, r.describe()
    return json.loads(r.stdout)


def test_node_side_commands_reach_the_daemon_in_its_namespace(ctfs, keys, mounter, small_model,
                                                              shared_dir, tmp_path):
    # An ordinary daemon on the node, and one in a "container" whose own pid is that daemon's pid.
    _, a = mounter.foreground(small_model.enc)
    b_mnt = shared_dir / "b"
    b_mnt.mkdir()
    mounter.mnts.append(b_mnt)   # lazy unmount at teardown; its pid is not a node pid
    box = start_in_container(ctfs, keys, small_model.enc, b_mnt, a.pid, tmp_path / "b.log")
    try:
        ok = M.wait_until(lambda: M.mounts_at(b_mnt) or box.poll() is not None, 30)
        assert ok and M.mounts_at(b_mnt), container_failure(box, tmp_path / "b.log")
        src_b = M.mounts_at(b_mnt)[0].source
        src_a = M.mounts_at(a.mnt)[0].source
        ns_b = os.readlink(f"/proc/{node_pid_of_namespaced_daemon(b_mnt)}/ns/pid")
        assert src_b == f"ctfs:{a.pid}@{ns_b[5:-1]}", (src_b, a.pid, ns_b)
        assert src_a == f"ctfs:{a.pid}@{os.readlink('/proc/self/ns/pid')[5:-1]}", src_a
        b_node_pid = node_pid_of_namespaced_daemon(b_mnt)
        assert b_node_pid and b_node_pid != a.pid

        # Both read right through their own mounts.
        want = (small_model.plain / "weights.safetensors").read_bytes()
        assert (b_mnt / "weights.safetensors").read_bytes() == want
        assert (a.mnt / "weights.safetensors").read_bytes() == want

        # status answers for the mount asked about: its daemon's own pid and mountpoint.
        sb, sa = status_json(ctfs, b_mnt), status_json(ctfs, a.mnt)
        assert sb["pid"] == a.pid and sb["mountpoint"] == str(M.mount_path(b_mnt)), sb
        assert sa["pid"] == a.pid and sa["mountpoint"] == str(M.mount_path(a.mnt)), sa
        r = ctfs.run("status", b_mnt, "--ready", timeout=30)
        assert r.rc == 0 and "ready" in r.stdout, r.describe()

        # revoke ends the namespaced daemon and its mount; the node's daemon serves on.
        r = ctfs.run("revoke", b_mnt, timeout=30)
        assert r.rc == 0, r.describe()
        # "wiped its keys and exited" only if its exit status could still be read; the shell
        # that is pid 1 of the container may have reaped it first ("exited").
        assert r.stdout.startswith(f"revoked and unmounted {M.mount_path(b_mnt)} (daemon pid "
                                   f"{b_node_pid} "), r.describe()
        assert not M.mounts_at(b_mnt)
        assert M.wait_until(lambda: box.poll() is not None, 10), "the container did not end"
        assert M.alive(a.pid) and M.mounts_at(a.mnt)
        assert (a.mnt / "weights.safetensors").read_bytes() == want
        assert status_json(ctfs, a.mnt)["pid"] == a.pid
    finally:
        if box.poll() is None:
            os.killpg(box.pid, signal.SIGKILL)
        box.wait(10)


def test_node_side_status_of_a_killed_namespaced_daemon(ctfs, keys, mounter, small_model,
                                                        shared_dir, tmp_path):
    """The daemon in the container is killed: its pid names a live ctfs daemon on the node, but
    status says the mount's daemon is gone and umount --force detaches without signalling it."""
    _, a = mounter.foreground(small_model.enc)
    b_mnt = shared_dir / "b"
    b_mnt.mkdir()
    mounter.mnts.append(b_mnt)
    box = start_in_container(ctfs, keys, small_model.enc, b_mnt, a.pid, tmp_path / "b.log")
    try:
        ok = M.wait_until(lambda: M.mounts_at(b_mnt) or box.poll() is not None, 30)
        assert ok and M.mounts_at(b_mnt), container_failure(box, tmp_path / "b.log")
        os.killpg(box.pid, signal.SIGKILL)   # the whole container, as a crashed pod
        box.wait(10)
        assert M.wait_until(lambda: node_pid_of_namespaced_daemon(b_mnt) is None, 10)

        r = ctfs.run("status", b_mnt, timeout=30)
        assert r.rc == M.EXIT_NOT_FOUND, r.describe()
        assert "is gone" in M.error_line(r), r.describe()
        r = ctfs.run("umount", "--force", b_mnt, timeout=30)
        assert r.rc == 0, r.describe()
        assert r.stdout == f"detached {M.mount_path(b_mnt)}\n", r.describe()
        assert not M.mounts_at(b_mnt)
        assert M.alive(a.pid) and M.mounts_at(a.mnt), "umount signalled the node's daemon"
        want = (small_model.plain / "weights.safetensors").read_bytes()
        assert (a.mnt / "weights.safetensors").read_bytes() == want
    finally:
        if box.poll() is None:
            os.killpg(box.pid, signal.SIGKILL)
        box.wait(10)


def test_status_from_inside_a_container_of_a_node_mount(ctfs, mounter, small_model):
    """From a container (its own pid namespace and /proc) the node's daemon cannot be seen:
    status and revoke say so, and revoke does not detach the mount (that would revoke nothing)."""
    _, a = mounter.foreground(small_model.enc)
    inside = ["unshare", "--pid", "--fork", "--mount-proc", ctfs.bin]
    r = M.run([*inside, "status", a.mnt], timeout=30)
    assert r.rc == M.EXIT_NOT_FOUND, r.describe()
    assert "cannot see" in M.error_line(r) and f"pid {a.pid} in pid namespace" in r.stderr, \
        r.describe()
    r = M.run([*inside, "revoke", a.mnt], timeout=30)
    assert r.rc != 0 and "cannot see" in r.stderr and "ctfs revoke" in r.stderr, r.describe()
    assert M.alive(a.pid) and M.mounts_at(a.mnt)
    want = (small_model.plain / "weights.safetensors").read_bytes()
    assert (a.mnt / "weights.safetensors").read_bytes() == want
