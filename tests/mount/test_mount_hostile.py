# SPDX-License-Identifier: Apache-2.0
"""Hostile and damaged sources, for real: damaged CryptoTensors files are never served as if
they were plain (the mount is refused naming the file, or EIO with --allow-bad-files, and stock
safetensors never gets ciphertext as weights); files swapped under a live mount (symlink to a
secret, FIFO, socket, device node, directory, replaced, truncated, grown; a symlinked parent
directory) are refused at open without blocking, other files keep being served, and revocation
still completes; and the key hygiene the README promises, checked on the running daemon."""
from __future__ import annotations

import base64
import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import mount_util as M

WEIGHTS = "weights.safetensors"


def _dump(header):
    return json.dumps(header, separators=(",", ":"), ensure_ascii=False)


def _raw(json_text: str, data: bytes) -> bytes:
    text = json_text.encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data


def damage(kind, path: Path, plain_path: Path):
    """Rewrites `path` (an encrypted file) into one damaged file; returns the file name the
    damaged content ends up under (renames for some cases)."""
    h, data = M.read_header(path)
    if kind == "same_data_offsets":      # two tensors on the same bytes
        h["n"] = dict(h["w"])
        path.write_bytes(_raw(_dump(h), data))
    elif kind == "duplicate_metadata_key":
        text = _dump(h).replace('"__metadata__":{', '"__metadata__":{"format":"pt",', 1)
        path.write_bytes(_raw(text, data))
    elif kind == "cut_in_header":
        raw = path.read_bytes()
        path.write_bytes(raw[:8 + (int.from_bytes(raw[:8], "little") // 2)])
    elif kind == "stripped_encryption":  # keys, policy and signature left, __encryption__ gone
        del h["__metadata__"]["__encryption__"]
        path.write_bytes(_raw(_dump(h), data))
    elif kind == "plain_with_reserved_key":
        ph, pdata = M.read_header(plain_path)
        ph.setdefault("__metadata__", {})["__signature__"] = "AAAA"
        path.write_bytes(_raw(_dump(ph), pdata))
    elif kind == "renamed_to_bin":
        path.rename(path.with_name("weights.bin"))
        return "weights.bin"
    else:
        raise AssertionError(kind)
    return path.name


DAMAGE = ["same_data_offsets", "duplicate_metadata_key", "cut_in_header", "stripped_encryption",
          "plain_with_reserved_key", "renamed_to_bin"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_file_is_never_served_as_plain(mounter, small_model, tmp_path, kind):
    src = M.copy_tree(small_model.enc, tmp_path / "src")
    name = damage(kind, src / WEIGHTS, small_model.plain / WEIGHTS)
    mnt = mounter.new_mnt()
    r = mounter.try_mount(src, mnt)
    assert r.rc not in (0, M.EXIT_ERROR), f"mount of a damaged file: {kind}\n" + r.describe()
    line = M.error_line(r)
    assert name in line, f"the error does not name {name}: {line!r}"
    assert not M.mounts_at(mnt), f"refused mount left a mount: {M.mounts_at(mnt)}"

    m = mounter.mount(src, args=["--allow-bad-files"])
    with pytest.raises(OSError) as ei:
        with open(m.mnt / name, "rb") as f:
            f.read(16)
    assert ei.value.errno == errno.EIO, f"open of the damaged file: {ei.value!r}, want EIO"
    # Stock safetensors must fail loudly on it, never hand out ciphertext as weights.
    from safetensors.numpy import load_file
    with pytest.raises(Exception):
        load_file(str(m.mnt / name))
    assert (m.mnt / "config.json").read_bytes() == (small_model.plain / "config.json").read_bytes()


# ---- files swapped under a live mount --------------------------------------------------------

def _swap(kind, path: Path, secret: Path, holder: list):
    """Replaces `path` (config.json in the source) by something hostile."""
    if kind == "grown":
        with open(path, "ab") as f:
            f.write(b" " * 10)
        return
    if kind == "truncated":
        os.truncate(path, 3)
        return
    path.unlink()
    if kind == "symlink_to_secret":
        path.symlink_to(secret)
    elif kind == "hardlink_to_secret":
        os.link(secret, path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        holder.append(s)
    elif kind == "device":
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    elif kind == "directory":
        path.mkdir()
    elif kind == "replaced":
        path.write_text('{"model_type": "evil"}')
    else:
        raise AssertionError(kind)


SWAPS = ["symlink_to_secret", "hardlink_to_secret", "fifo", "socket", "device", "directory",
         "replaced", "truncated", "grown"]

OPEN_AS_NOBODY = r"""
import errno, os, sys
dir_fd = int(sys.argv[1])
os.setgid(65534); os.setuid(65534)
try:
    fd = os.open(sys.argv[2], os.O_RDONLY, dir_fd=dir_fd)
    data = os.read(fd, 1 << 20)
    print("READ", data.hex())
except OSError as e:
    print("ERR", errno.errorcode.get(e.errno, e.errno))
"""


def _open_as_nobody(mnt: Path, name, timeout=10):
    """Opens mnt/name as uid 65534 (through a directory fd: the test's temp directories are
    not searchable by others). Returns (stdout, timed_out)."""
    dir_fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        p = subprocess.run([sys.executable, "-c", OPEN_AS_NOBODY, str(dir_fd), name],
                           pass_fds=[dir_fd], capture_output=True, text=True, timeout=timeout)
        return p.stdout + p.stderr, False
    except subprocess.TimeoutExpired:
        return "", True
    finally:
        os.close(dir_fd)


@pytest.mark.parametrize("kind", SWAPS)
def test_swapped_passthrough_file_is_refused_without_blocking(mounter, small_model, tmp_path, kind):
    src = M.copy_tree(small_model.enc, tmp_path / "src")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$not-for-you:19000:0:99999:7:::\n")
    os.chmod(secret, 0o600)
    os.chmod(tmp_path, 0o755)
    m = mounter.mount(src, args=["--allow-other"])
    # Served and readable by others before the swap (mode 0644 shown read-only).
    before, _ = _open_as_nobody(m.mnt, "config.json")
    assert before.startswith("READ"), before
    holder = []
    _swap(kind, src / "config.json", secret, holder)
    t0 = time.monotonic()
    out, timed_out = _open_as_nobody(m.mnt, "config.json", timeout=15)
    took = time.monotonic() - t0
    assert not timed_out, f"open through the mount blocked after a {kind} swap"
    assert b"not-for-you".hex() not in out, f"{kind}: the secret was read through the mount"
    assert out.startswith("ERR"), f"{kind}: open after the swap succeeded: {out[:200]}"
    assert "EIO" in out or "ENOENT" in out, out
    assert took < 10
    # The rest is still served, and revocation is not blocked.
    from safetensors.numpy import load_file
    got = load_file(str(m.mnt / WEIGHTS))
    want = load_file(str(small_model.plain / WEIGHTS))
    assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in got)
    rr = mounter.ctfs.run("umount", "--force", m.mnt, timeout=30)
    assert rr.rc == 0, rr.describe()
    assert not M.mounts_at(m.mnt)
    for s in holder:
        s.close()
    assert "changed since the mount" in m.log_tail() or "no longer exists" in m.log_tail(), \
        m.log_tail()


def test_symlinked_parent_directory_is_refused(mounter, small_model, tmp_path):
    src = M.copy_tree(small_model.enc, tmp_path / "src")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text("secret notes\n")
    m = mounter.mount(src)
    shutil.rmtree(src / "sub")
    (src / "sub").symlink_to(outside)
    with pytest.raises(OSError) as ei:
        (m.mnt / "sub" / "notes.txt").read_bytes()
    assert ei.value.errno in (errno.EIO, errno.ENOENT), ei.value


def test_encrypted_file_swapped_or_changed_under_the_mount(mounter, small_model, tmp_path):
    """The daemon holds each verified file open: replacing it at its path changes nothing
    served; changing it in place gives EIO for what changed, never wrong bytes."""
    src = M.copy_tree(small_model.enc, tmp_path / "src")
    m = mounter.mount(src, args=["--cache-mb", "0", "--prefetch-mb", "0"])
    want = (small_model.plain / WEIGHTS).read_bytes()
    evil = tmp_path / "evil.safetensors"
    shutil.copy(small_model.plain / WEIGHTS, evil)
    os.rename(evil, src / WEIGHTS)  # the plaintext (another inode) where the encrypted file was
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=False)
    assert (m.mnt / WEIGHTS).read_bytes() == want


def test_encrypted_file_changed_in_place_gives_eio_not_wrong_bytes(mounter, small_model, tmp_path):
    src = M.copy_tree(small_model.enc, tmp_path / "src")
    m = mounter.mount(src, args=["--cache-mb", "0", "--prefetch-mb", "0", "--no-direct-io"])
    lay = M.layout(src / WEIGHTS)
    b, e = lay.tensors["w"]
    with open(src / WEIGHTS, "r+b") as f:  # the same inode, one byte changed
        f.seek(b + 10)
        c = f.read(1)
        f.seek(b + 10)
        f.write(bytes([c[0] ^ 0xFF]))
    want = (small_model.plain / WEIGHTS).read_bytes()
    fd = os.open(m.mnt / WEIGHTS, os.O_RDONLY)
    try:
        served_lay = M.layout(small_model.plain / WEIGHTS)
        sb, se = served_lay.tensors["w"]
        with pytest.raises(OSError) as ei:
            os.pread(fd, 100, sb)
        assert ei.value.errno == errno.EIO
        nb, ne = served_lay.tensors["n"]
        assert os.pread(fd, ne - nb, nb) == want[nb:ne]
    finally:
        os.close(fd)


# ---- key hygiene on the running daemon --------------------------------------------------------

def _status_kb(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _secret_vmas(pid):
    """VmFlags of the daemon's mappings that hold secrets: locked (lo), not dumped (dd) and wiped
    on fork (wf) at once."""
    out, flags = [], None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if line.startswith("VmFlags:"):
            flags = line.split()[1:]
            if {"lo", "dd", "wf"} <= set(flags):
                out.append(flags)
    return out


@pytest.mark.parametrize("mode", ["background", "foreground"])
def test_daemon_key_hygiene(mounter, keys, small_model, tmp_path, mode):
    if mode == "background":
        m = mounter.mount(small_model.enc)
        pid = m.pid
    else:
        p, m = mounter.foreground(small_model.enc)
        pid = m.pid
    assert _status_kb(pid, "VmLck") > 0, "the daemon holds keys in unlocked memory"
    assert _secret_vmas(pid), "no locked, undumped, wipe-on-fork mapping holds the keys"
    limits = Path(f"/proc/{pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4] == "0", core
    (m.mnt / WEIGHTS).read_bytes()
    r = mounter.ctfs.run("umount", m.mnt, timeout=30)
    assert r.rc == 0, r.describe()
    assert M.wait_until(lambda: not M.alive(pid), 10)
    log = m.log.read_text()
    assert "keys wiped: 0 secret bytes left in memory" in log, log[-2000:]
    n_files = len(M.files_of(small_model.enc))
    assert f"({n_files} files)" in log, f"the mount log miscounts {n_files} files: {log[:2000]}"
    # No key material in the log, in any of the encodings it exists in.
    for k in json.loads(keys.reader.read_text())["keys"]:
        for member in ("k", "d"):
            if member in k:
                raw = base64.b64decode(k[member])
                for form in (k[member], raw.hex(), base64.urlsafe_b64encode(raw).decode()):
                    assert form not in log, f"key bytes ({member}) in the daemon log"
