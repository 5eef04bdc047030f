# SPDX-License-Identifier: Apache-2.0
"""Unmounting and revocation: plain umount, busy umount, `umount --force`, SIGTERM/SIGINT,
fusermount3, foreground mode. Revocation probes run in forked grandchildren of a holder process
that keeps the file mapped: after revocation every touch must die with SIGBUS (or get EIO),
including pages the holder had already read; plaintext must never come back."""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from . import mount_util as M
from .conftest import EXTRA_MOUNT_ARGS

BIG = "model-00001-of-00003.safetensors"


def assert_daemon_gone(m, timeout):
    assert M.wait_until(lambda: not M.alive(m.pid), timeout), \
        f"daemon {m.pid} still running {timeout}s after unmount\n{m.log_tail()}"


@pytest.mark.parametrize("how", ["ctfs_umount", "fusermount3_u"])
def test_plain_umount(ctfs, mounter, model, how):
    m = mounter.mount(model.enc)
    assert M.sha256(m.mnt / BIG) == M.sha256(model.plain / BIG)
    if how == "ctfs_umount":
        r = ctfs.run("umount", m.mnt, timeout=30)
    else:
        r = M.run(["fusermount3", "-u", m.mnt], timeout=30)
    assert r.rc == 0, r.describe() + "\n" + m.log_tail()
    assert not M.mounts_at(m.mnt)
    assert_daemon_gone(m, 10)
    assert os.listdir(m.mnt) == []


@pytest.mark.parametrize("hold", ["open_fd", "mmap_only"])
def test_plain_umount_refused_while_busy(ctfs, mounter, model, hold):
    m = mounter.mount(model.enc)
    args = {"path": str(m.mnt / BIG), "plain": str(model.plain / BIG), "fraction": 0.25}
    args.update({"how": "open"} if hold == "open_fd" else {"how": "mmap_shared", "close_fd": True})
    h = M.Holder(args)
    try:
        assert h.ready["prefix_ok"], h.ready
        r = ctfs.run("umount", m.mnt, timeout=30)
        assert r.rc == M.EXIT_BUSY, f"umount of a busy mount should fail (7)\n{r.describe()}"
        assert "--force" in r.stderr + r.stdout, f"no hint at --force\n{r.describe()}"
        assert M.mounts_at(m.mnt), "a refused umount must leave the mount in place"
        assert M.alive(m.pid), "a refused umount must leave the daemon running"
        res = h.ask("check", timeout=60)
        assert res.get("matches_plain") is True, f"holder reads after refused umount: {res}"
    finally:
        h.close()
    r = ctfs.run("umount", m.mnt, timeout=30)
    assert r.rc == 0, r.describe()
    assert f"unmounted {M.mount_path(m.mnt)} (daemon pid {m.pid} " in r.stdout, r.describe()
    assert not M.mounts_at(m.mnt)
    assert_daemon_gone(m, 10)


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("trigger,how", [("umount_force", "mmap_shared"),
                                         ("umount_force", "mmap_private"),
                                         ("sigterm", "mmap_shared"),
                                         ("sigint", "mmap_shared"),
                                         ("sighup", "mmap_shared"),
                                         ("sigquit", "mmap_private")])
def test_revocation(ctfs, mounter, model, trigger, how):
    m = mounter.mount(model.enc)
    h = M.Holder({"path": str(m.mnt / BIG), "plain": str(model.plain / BIG), "how": how,
                  "fraction": 0.5})
    try:
        ready = h.ready
        assert ready["prefix_ok"], f"holder read wrong bytes before revocation: {ready}"
        upto, size = ready["read_upto"], ready["size"]
        read_offs = [0, 3 * M.PAGE, upto // 2, upto - M.PAGE]
        unread_offs = [upto + M.PAGE, (upto + size) // 2, size - 1]
        # Control: before revocation the probe mechanism does return plaintext.
        for off in (3 * M.PAGE, upto + 5 * M.PAGE):
            res = h.ask(f"touch {off}")
            assert res.get("matches_plain") is True, f"control touch at {off}: {res}"

        if trigger == "umount_force":
            r = ctfs.run("umount", "--force", m.mnt, timeout=30)
            assert r.rc == 0, r.describe() + "\n" + m.log_tail()
            assert not M.alive(m.pid), \
                f"`ctfs umount --force` returned while daemon {m.pid} still runs"
        else:
            sig = {"sigterm": signal.SIGTERM, "sigint": signal.SIGINT, "sighup": signal.SIGHUP,
                   "sigquit": signal.SIGQUIT}[trigger]
            os.kill(m.pid, sig)
            assert_daemon_gone(m, 15)
        assert M.wait_until(lambda: not M.mounts_at(m.mnt), 5), \
            f"still mounted after revocation: {M.mounts_at(m.mnt)}"

        leaks = []
        for off in read_offs + unread_offs:
            res = h.ask(f"touch {off}")
            if res.get("signal") != signal.SIGBUS and "errno" not in res:
                leaks.append(("mmap touch", off, "read before" if off < upto else "unread", res))
        for off in (0, upto - M.PAGE, size - 1):
            res = h.ask(f"pread {off}")
            if "errno" not in res:
                leaks.append(("pread on held fd", off, res))
        assert not leaks, "after revocation, reads must die with SIGBUS or fail with an error; " \
                          f"got: {leaks}"
    finally:
        h.close()
    with pytest.raises(OSError):
        with open(m.mnt / BIG, "rb") as f:
            f.read(1)


@pytest.mark.parametrize("stop", ["fusermount3_u", "sigterm"])
def test_foreground_mode(mounter, model, stop):
    p, m = mounter.foreground(model.enc)
    assert m.pid == p.pid, f"/proc/mounts names pid {m.pid}, the foreground daemon is {p.pid}"
    assert M.sha256(m.mnt / "config.json") == M.sha256(model.plain / "config.json")
    assert M.sha256(m.mnt / BIG) == M.sha256(model.plain / BIG)
    if stop == "fusermount3_u":
        r = M.run(["fusermount3", "-u", m.mnt], timeout=30)
        assert r.rc == 0, r.describe()
    else:
        p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(15)
    except Exception:  # noqa: BLE001
        pytest.fail(f"foreground daemon did not exit after {stop}\n{m.log_tail()}")
    assert rc == 0, f"foreground daemon exit {rc} after {stop}\n{m.log_tail()}"
    assert not M.mounts_at(m.mnt)


def test_background_mount_releases_callers_stdout_stderr(mounter, keys, model):
    """`out=$(ctfs mount ...)` or subprocess.run(capture_output=True) must return once mounted:
    the background daemon must not keep the caller's stdout/stderr pipes open."""
    mnt = mounter.new_mnt()
    mounter.mnts.append(mnt)
    p = subprocess.Popen([mounter.ctfs.bin, "mount", model.enc, mnt, "--key", keys.reader,
                          *EXTRA_MOUNT_ARGS], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=M.clean_env(), start_new_session=True)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        rc = p.poll()
        holders = [pid for pid in M.ctfs_processes_with_arg(str(mnt)) if pid != p.pid]
        p.stdout.close()
        p.stderr.close()
        if rc is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        pytest.fail(f"`ctfs mount` exited {rc}, but its stdout/stderr pipes stayed open for 20 s "
                    f"(held by daemon {holders}: {[M.fd_targets(h, (0, 1, 2)) for h in holders]})"
                    if rc is not None else "`ctfs mount` did not exit within 20 s")
    assert p.returncode == 0, err
    assert M.mounts_at(mnt)


def test_relative_paths(ctfs, mounter, keys, small_model, tmp_path):
    """SRC, MNT and --log-file relative to the caller's directory (the daemon may chdir("/"))."""
    # Unique names: a daemon that resolved them against "/" must find nothing there.
    work = tmp_path / "work"
    src, mnt = f"ctfs-test-src-{os.getpid()}", f"ctfs-test-mnt-{os.getpid()}"
    M.copy_tree(small_model.enc, work / src)
    (work / mnt).mkdir()
    mounter.mnts += [work / mnt, Path("/") / mnt]
    log_name = f"ctfs-test-{os.getpid()}.log"
    stray = Path("/") / log_name
    stray_before = stray.exists()
    try:
        r = ctfs.run("mount", src, mnt, "--key", keys.reader, "--log-file", log_name,
                     *EXTRA_MOUNT_ARGS, cwd=work, timeout=30)
        assert r.rc == 0, r.describe()
        entries = M.mounts_at(work / mnt)
        assert entries, f"not mounted at {work / mnt}; ctfs mounts: {M.ctfs_mounts()}"
        mounter.pids[work / mnt] = entries[0].pid
        for rel in small_model.files():
            assert M.sha256(work / mnt / rel) == M.sha256(small_model.plain / rel), rel
        assert (work / log_name).is_file(), \
            f"relative --log-file not created in the caller's directory " \
            f"(created at {stray} instead: {stray.exists() and not stray_before})"
    finally:
        if stray.exists() and not stray_before:
            stray.unlink()


def test_umount_of_a_directory_that_is_not_mounted(ctfs, tmp_path):
    d = tmp_path / "plain-dir"
    d.mkdir()
    r = ctfs.run("umount", d, timeout=30)
    assert r.rc not in (0, None), r.describe()
    M.error_line(r)
    r = ctfs.run("umount", tmp_path / "missing", timeout=30)
    assert r.rc not in (0, None), r.describe()


@pytest.mark.timeout_s(90)
def test_revocation_under_concurrent_load(ctfs, mounter, model):
    """`umount --force` while 8 threads keep reading (pread, O_DIRECT, page-cache evictions):
    the revocation completes, and readers then get errors, never wrong bytes (a read cut short
    by the revocation may return a correct prefix)."""
    m = mounter.mount(model.enc)
    rels = model.encrypted
    pairs = [[str(m.mnt / r), str(model.plain / r)] for r in rels]
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(M.probe, "random_reads", {"pairs": pairs, "seed": 9, "threads": 8,
                                                  "seconds": 5, "mode": "pread",
                                                  "allow_short": True}, 60)
        time.sleep(2)
        r = ctfs.run("umount", "--force", m.mnt, timeout=30)
        pr, out = fut.result(timeout=70)
    assert r.rc == 0, r.describe() + "\n" + m.log_tail()
    assert not M.alive(m.pid) and not M.mounts_at(m.mnt)
    assert pr.rc == 0 and out, M.describe_probe(pr)
    assert out["n_mismatch"] == 0, "wrong bytes: " + json.dumps(out["mismatches"])
    assert out["ops"] > 0 and out["n_errors"] > 0, f"readers saw no error after revocation: {out}"


def test_daemon_does_not_leak_descriptors(mounter, model):
    m = mounter.mount(model.enc)
    fds = lambda: len(os.listdir(f"/proc/{m.pid}/fd"))
    rels = model.files()
    for rel in rels:  # warm-up: first opens may set up lasting state
        with open(m.mnt / rel, "rb") as f:
            f.read(100)
    before = fds()
    for i in range(300):
        rel = rels[i % len(rels)]
        with open(m.mnt / rel, "rb") as f:
            f.read(4096)
        fd = os.open(m.mnt / rel, os.O_RDONLY | os.O_DIRECT)
        try:
            os.pread(fd, 100, 0)
        finally:
            os.close(fd)
    assert M.wait_until(lambda: fds() <= before + 4, 5), \
        f"daemon descriptors grew from {before} to {fds()} over 600 open/close cycles"


def test_many_files_under_a_low_soft_open_file_limit(ctfs, keys, mounter, tmp_path):
    """The daemon keeps two descriptors per encrypted file; it lifts the soft RLIMIT_NOFILE it
    inherits to the hard limit, so a directory with more files than the soft limit allows
    still mounts and serves every file."""
    import resource
    from safetensors.numpy import save_file
    import numpy as np

    n_files, soft = 48, 64  # 2 * 48 descriptors do not fit under 64
    soft_now, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4 * n_files:
        pytest.skip(f"hard RLIMIT_NOFILE {hard} too low for this test")
    plain, enc = tmp_path / "plain", tmp_path / "enc"
    plain.mkdir()
    for i in range(n_files):
        save_file({"w": np.full(1000 + i, i, dtype=np.int16)}, str(plain / f"s{i:02d}.safetensors"))
    ctfs.ok("encrypt", plain, enc, "--key", keys.full, "-q", timeout=120)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # inherited by `ctfs mount`
    try:
        m = mounter.mount(enc)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft_now, hard))
    limits = Path(f"/proc/{m.pid}/limits").read_text()
    line = next(l for l in limits.splitlines() if l.startswith("Max open files"))
    assert line.split()[3] != str(soft), f"soft limit not raised: {line}"
    for i in range(n_files):
        got = (m.mnt / f"s{i:02d}.safetensors").read_bytes()
        assert got == (plain / f"s{i:02d}.safetensors").read_bytes(), f"s{i:02d}"
