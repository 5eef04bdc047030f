# SPDX-License-Identifier: Apache-2.0
"""No key byte and no plaintext left in the daemon's memory when it exits (issue 18, item 5).

The test attaches to the mount's daemon with ptrace (PTRACE_SEIZE + PTRACE_O_TRACEEXIT on the
thread-group leader: the daemon keeps running and has no test hook), reads every tensor through
the mount (read(), pread() past the header, which the daemon answers straight from its
decrypted chunks, and mmap), ends the mount (`ctfs umount`, or SIGTERM: the revocation path;
a second test: a mount refused after its keys were loaded) and, when the leader stops at PTRACE_EVENT_EXIT (main() returned, exit handlers and static
destructors ran, the kernel has not freed the address space yet), reads every readable mapping
of /proc/PID/mem (heap, anonymous mappings, thread stacks, the secret arena, file mappings) and
searches it for
  * the master key (the decoded JWK `k`, and its base64 text as in the key file),
  * every per-tensor data key, unwrapped here independently with Python `cryptography`,
  * the plaintext of every tensor (random bytes).
Each secret is searched as its 8-aligned 8-byte words, at every address: any copy of 15 or more
bytes is found, also a freed heap block whose first 16 bytes the allocator overwrote. A word of
a random secret matching by chance is a ~1e-6 event for the whole dump.

Controls make sure the search can fail: the same scan of the live daemon, after the reads, must
find every data key and some plaintext (the daemon holds them while it serves), and the exit
dump must contain the mountpoint's path (the daemon's argv). Checked by hand: a daemon built
with a deliberately freed-but-unwiped copy of each direct reply's plaintext, or with a leaked
heap copy of each data key, fails every case.

Needs root (CAP_SYS_PTRACE): the daemon is not dumpable (PR_SET_DUMPABLE 0).
"""
from __future__ import annotations

import base64
import ctypes
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from . import mount_util as M
from .conftest import EXTRA_MOUNT_ARGS, MOUNT_TIMEOUT, Mount, log_tail

# ptrace(2) requests, options and events (linux/ptrace.h).
PTRACE_CONT, PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 7, 17, 0x4206, 0x4207
PTRACE_O_TRACEEXIT = 0x40
PTRACE_EVENT_EXIT = 6
WALL = 0x40000000  # __WALL: wait for tracees that are not our children, threads included

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def ptrace(request, pid, addr=0, data=0):
    rc = _libc.ptrace(request, pid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
    if rc == -1:
        e = ctypes.get_errno()
        raise OSError(e, f"ptrace({request}, {pid}): {os.strerror(e)}")
    return rc


class ExitTracer:
    """Seizes the daemon's thread-group leader so that it stops at PTRACE_EVENT_EXIT. Signals
    it receives meanwhile (SIGTERM, the loop's SIGUSR2 wake-up) are passed on unchanged."""

    def __init__(self, pid):
        self.pid = pid
        self.attached = False
        self.passed = []            # signals passed on, for diagnostics
        try:
            ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACEEXIT)
        except OSError as e:
            pytest.fail(f"cannot ptrace daemon {pid} ({e.strerror}): this test needs root with "
                        f"CAP_SYS_PTRACE (the daemon is not dumpable)", pytrace=False)
        self.attached = True

    def wait_exit_stop(self, timeout):
        """Returns True once the leader is stopped at its exit; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG | WALL)
            if pid == 0:
                time.sleep(0.005)
                continue
            if os.WIFSTOPPED(status):
                if status >> 8 == (signal.SIGTRAP | (PTRACE_EVENT_EXIT << 8)):
                    return True
                sig = os.WSTOPSIG(status)
                self.passed.append(sig)
                # A signal-delivery stop: deliver it. (Group stops do not occur here.)
                ptrace(PTRACE_CONT, self.pid, 0, sig)
                continue
            # Exited without an exit stop: cannot happen for a seized leader.
            self.attached = False
            raise AssertionError(f"daemon {self.pid} ended without PTRACE_EVENT_EXIT "
                                 f"(wait status {status:#x})")
        return False

    def detach(self):
        """Lets the daemon go. PTRACE_DETACH needs a stopped tracee: one that is not (a test
        that failed before the exit) is stopped with PTRACE_INTERRUPT first, and a signal it
        was stopped for is delivered on the way out."""
        if not self.attached:
            return
        self.attached = False
        sig = 0
        try:
            ptrace(PTRACE_DETACH, self.pid, 0, 0)
            return
        except OSError as e:
            if e.errno != errno.ESRCH:
                raise
        try:
            ptrace(PTRACE_INTERRUPT, self.pid, 0, 0)
            _, status = os.waitpid(self.pid, WALL)
            if not os.WIFSTOPPED(status):
                return
            if os.WSTOPSIG(status) != signal.SIGTRAP:
                sig = os.WSTOPSIG(status)
            ptrace(PTRACE_DETACH, self.pid, 0, sig)
        except (OSError, ChildProcessError):
            pass  # gone meanwhile


# ---------------------------------------------------------------------------------------------
# Reading the daemon's memory
# ---------------------------------------------------------------------------------------------

_MAPS_LINE = re.compile(r"([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)")


class Region:
    def __init__(self, start, end, perms, name, data):
        self.start, self.end, self.perms, self.name, self.data = start, end, perms, name, data

    def where(self, off):
        return f"{self.start + off:#x} in {self.start:#x}-{self.end:#x} {self.perms} " \
               f"{self.name or '[anonymous]'} (+{off:#x})"


def dump_memory(pid):
    """Every readable mapping of `pid` (skipping [vvar]/[vsyscall] and pages that cannot be
    read, which stay in as zeros so that offsets are those of the mapping)."""
    regions, unreadable = [], []
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read().splitlines()
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for line in maps:
            m = _MAPS_LINE.fullmatch(line)
            assert m, f"unparsed maps line: {line!r}"
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            perms, name = m.group(3), m.group(4).strip()
            if perms[0] != "r" or name in ("[vvar]", "[vvar_vclock]", "[vsyscall]"):
                continue
            parts, addr = [], start
            while addr < end:
                n = min(end - addr, 1 << 24)
                try:
                    parts.append(os.pread(fd, n, addr))
                except OSError as e:
                    unreadable.append(f"{addr:#x}+{n:#x} {name}: {e.strerror}")
                    parts.append(bytes(n))
                addr += n
            regions.append(Region(start, end, perms, name, b"".join(parts)))
    finally:
        os.close(fd)
    return regions, unreadable


def find_bytes(regions, needle):
    """Where `needle` occurs (at most 5 places)."""
    hits = []
    for r in regions:
        i = r.data.find(needle)
        while i >= 0 and len(hits) < 5:
            hits.append(r.where(i))
            i = r.data.find(needle, i + 1)
    return hits


class WordIndex:
    """Every 8-aligned 8-byte word of some named secrets; `find` looks for them at every
    address, so any copy of 15 or more bytes of a secret is found, also when part of it was
    overwritten (a freed heap block keeps all but its first 16 bytes)."""

    def __init__(self, secrets):
        words, owners = [], []
        for i, data in enumerate(secrets.values()):
            w = np.frombuffer(data[:len(data) // 8 * 8], dtype="<u8")
            words.append(w)
            owners.append(np.full(len(w), i, dtype=np.int64))
        words, owners = np.concatenate(words), np.concatenate(owners)
        order = np.argsort(words, kind="stable")
        self.names = list(secrets)
        self.words, self.owners = words[order], owners[order]
        self.filter = np.zeros(1 << 24, dtype=bool)   # cheap pre-filter on 24 low bits
        self.filter[(self.words & 0xFFFFFF).astype(np.int64)] = True

    def find(self, regions, limit=10):
        """{name: (count of matching words, up to `limit` places)} for each secret found."""
        out = {}
        for r in regions:
            buf = np.frombuffer(r.data, dtype=np.uint8)
            for shift in range(8):
                n = (len(buf) - shift) // 8
                if n <= 0:
                    continue
                w = buf[shift:shift + 8 * n].view("<u8")
                cand = np.nonzero(self.filter[(w & 0xFFFFFF).astype(np.int64)])[0]
                if len(cand) == 0:
                    continue
                vals = w[cand]
                pos = np.searchsorted(self.words, vals)
                pos[pos == len(self.words)] = 0
                ok = self.words[pos] == vals
                for i, owner in zip(cand[ok], self.owners[pos[ok]]):
                    count, places = out.setdefault(self.names[owner], [0, []])
                    out[self.names[owner]][0] = count + 1
                    if len(places) < limit:
                        places.append(r.where(shift + 8 * int(i)))
        return out


# ---------------------------------------------------------------------------------------------
# The model and its secrets
# ---------------------------------------------------------------------------------------------

TENSORS = {"a": 1_500_007, "b": 131_101, "c.weight": 65_521 * 3 + 5, "d": 17}


def b64decode_any(s):
    s = s.strip()
    pad = "=" * (-len(s) % 4)
    return (base64.urlsafe_b64decode(s + pad) if ("-" in s or "_" in s)
            else base64.b64decode(s + pad))


def aead_for(alg, key):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    a = alg.lower().replace("-", "").replace("_", "")
    return ChaCha20Poly1305(key) if "chacha" in a else AESGCM(key)


class Secrets:
    def __init__(self, keys, enc_path):
        jwk = next(k for k in keys.reader_jwks()["keys"] if k["kty"] == "oct")
        self.master = b64decode_any(jwk["k"])
        self.master_text = jwk["k"].encode()
        self.kid = jwk["kid"]
        header, data = M.read_header(enc_path)
        meta = header["__metadata__"]
        alg = json.loads(meta["__crypto_keys__"])["enc"]["alg"]
        self.data_keys = {}
        for name, e in json.loads(meta["__encryption__"]).items():
            wrapped = base64.b64decode(e["wrapped_key"]) + base64.b64decode(e["key_tag"])
            self.data_keys[name] = aead_for(jwk.get("alg", alg), self.master).decrypt(
                base64.b64decode(e["key_iv"]), wrapped, None)
        assert set(self.data_keys) == set(TENSORS), self.data_keys.keys()
        for name, dk in self.data_keys.items():
            assert len(dk) in (16, 32) and dk != self.master, name

    def named(self):
        out = {"master key": self.master, "master key's base64 text (key file)": self.master_text}
        out.update({f"data key of {n!r}": dk for n, dk in self.data_keys.items()})
        return out


@pytest.fixture(scope="session")
def random_model(ctfs, keys, tmp_path_factory):
    """One file of U8 tensors of random bytes (any 8 bytes of it are unique in a memory dump),
    encrypted in ~64 KiB chunks; returns (plain dir, enc dir, rel, {tensor: plaintext})."""
    from safetensors.numpy import save_file
    root = tmp_path_factory.mktemp("memmodel")
    plain, enc = root / "plain", root / "enc"
    plain.mkdir()
    rng = np.random.default_rng()
    tensors = {n: rng.integers(0, 256, size, dtype=np.uint8) for n, size in TENSORS.items()}
    save_file(tensors, str(plain / "model.safetensors"), metadata={"format": "pt"})
    ctfs.ok("encrypt", plain, enc, "--key", keys.full, "--chunk-size", M.CHUNK, "-q")
    return plain, enc, "model.safetensors", {n: t.tobytes() for n, t in tensors.items()}


READ_BY_MMAP = r"""
import hashlib, mmap, sys
with open(sys.argv[1], "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
    print(hashlib.sha256(m[:]).hexdigest())
"""


def read_through_mount(mnt, plain_dir, rel):
    """Every byte by read() (whole file), by pread() of 100 KiB pieces from the first tensor
    byte on (requests past the header: replies straight from the decrypted chunks) and by mmap
    (in a child: a SIGBUS kills only it)."""
    want_bytes = (plain_dir / rel).read_bytes()
    want = M.sha256(plain_dir / rel)
    assert M.sha256(mnt / rel) == want, "read() through the mount returned wrong bytes"
    start = M.layout(plain_dir / rel).data_start
    fd = os.open(mnt / rel, os.O_RDONLY)
    try:
        for off in range(start, len(want_bytes), 100 * 1024):
            got = os.pread(fd, 100 * 1024, off)
            assert got == want_bytes[off:off + 100 * 1024], f"pread at {off}: wrong bytes"
    finally:
        os.close(fd)
    r = M.run([sys.executable, "-c", READ_BY_MMAP, mnt / rel], timeout=30)
    assert r.rc == 0 and r.stdout.strip() == want, "mmap through the mount: " + r.describe()


def scan(regions, keys_index, plain_index=None):
    """{what: [places]} for every secret found (whole or in part)."""
    found = {}
    for name, (n, places) in keys_index.find(regions).items():
        found[f"{name} ({n} words of 8 bytes)"] = places
    if plain_index is not None:
        for name, (n, places) in plain_index.find(regions, limit=20).items():
            found[f"{name} ({n} words of 8 bytes)"] = places
    return found


def check_live_daemon(pid, secrets, keys_index, plain_index):
    """Scans the serving daemon after every tensor was read. Control: it holds its data keys
    and some plaintext (cached chunks), so the reader and the searches do find them. And no
    master key: the master keys are wiped (or, in a token, never held) once the data keys are
    unwrapped, before serving."""
    live, _ = dump_memory(pid)
    live_found = scan(live, keys_index, plain_index)
    del live
    missing = [n for n in secrets.data_keys
               if not any(k.startswith(f"data key of {n!r} ") for k in live_found)]
    assert not missing, (f"control failed: data keys of {missing} not found in the live "
                         f"daemon's memory (is the reader or the unwrap broken?)\n"
                         f"found:\n{describe(live_found)}")
    assert any(k.startswith("plaintext") for k in live_found), \
        "control failed: no plaintext in the live daemon's memory after reading every byte"
    master = {k: v for k, v in live_found.items() if k.startswith("master key")}
    assert not master, "master key in the serving daemon:\n" + describe(master)


def describe(found):
    return "\n".join(f"  {what}:\n" + "\n".join(f"    {p}" for p in places)
                     for what, places in found.items())


def mount_with_exec_helper(mounter, keys, src):
    """A background mount whose keys come from an exec helper (config `keys: [{exec: ...}]`)
    that prints the reader JWK Set: the key text reaches the daemon through a pipe."""
    helper = mounter.dir / "helper.sh"
    helper.write_text(f"#!/bin/sh\ncat '{keys.reader}'\n")
    os.chmod(helper, 0o700)
    mnt = mounter.new_mnt()
    mounter.mnts.append(mnt)
    log = mounter.dir / f"ctfs-{mounter.n}.log"
    cfg = mounter.dir / f"m{mounter.n}.yaml"
    cfg.write_text(f"source: {src}\nmountpoint: {mnt}\nkeys: [{{exec: [{helper}]}}]\n"
                   f"log: {{file: {log}}}\n")
    r = mounter.ctfs.run("mount", "--config", cfg, *EXTRA_MOUNT_ARGS, timeout=MOUNT_TIMEOUT)
    assert r.rc == 0, r.describe() + "\n" + log_tail(log)
    entries = M.mounts_at(mnt)
    assert len(entries) == 1 and entries[0].pid, (entries, r.describe())
    mounter.pids[mnt] = entries[0].pid
    return Mount(Path(src), mnt, entries[0].pid, log, r)


@pytest.mark.timeout_s(180)
@pytest.mark.parametrize("mode,stop,key_from", [("background", "umount", "file"),
                                                ("background", "sigterm", "file"),
                                                ("foreground", "umount", "file"),
                                                ("background", "umount", "env"),
                                                ("background", "sigterm", "exec")])
def test_no_secret_in_daemon_memory_at_exit(ctfs, keys, mounter, random_model, mode, stop,
                                            key_from):
    """key_from: the reader JWK Set as a --key file, in CRYPTOTENSOR_KEYS, or printed by an
    exec helper."""
    plain_dir, enc_dir, rel, plaintexts = random_model
    secrets = Secrets(keys, enc_dir / rel)
    keys_index = WordIndex(secrets.named())
    plain_index = WordIndex({f"plaintext of {n!r}": p for n, p in plaintexts.items()})
    proc = None
    if key_from == "exec":
        m = mount_with_exec_helper(mounter, keys, enc_dir)
    else:
        key_args = {"keys": None} if key_from == "file" else \
            {"keys": [], "env": {"CRYPTOTENSOR_KEYS": keys.reader.read_text()}}
        if mode == "background":
            m = mounter.mount(enc_dir, **key_args)
        else:
            proc, m = mounter.foreground(enc_dir, **key_args)
            assert m.pid == proc.pid

    tracer = ExitTracer(m.pid)
    umount = None
    try:
        read_through_mount(m.mnt, plain_dir, rel)

        check_live_daemon(m.pid, secrets, keys_index, plain_index)

        if stop == "umount":
            umount = subprocess.Popen([ctfs.bin, "umount", "--timeout", "120", m.mnt],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=M.clean_env(),
                                      start_new_session=True, text=True)
        else:
            os.kill(m.pid, signal.SIGTERM)
        assert tracer.wait_exit_stop(60), \
            f"daemon {m.pid} did not reach its exit within 60 s\n{m.log_tail()}"

        regions, unreadable = dump_memory(m.pid)
        total = sum(len(r.data) for r in regions)
        # Control: the dump holds what the daemon surely still has (its argv names MNT).
        assert find_bytes(regions, os.fsencode(str(m.mnt))), \
            f"control failed: the mountpoint path is not in the dump ({total} bytes read)"
        found = scan(regions, keys_index, plain_index)
        del regions
    except BaseException:
        if umount is not None and umount.poll() is None:
            umount.kill()
            umount.wait()
        raise
    finally:
        tracer.detach()

    ended = []
    if umount is not None:
        out, err = umount.communicate(timeout=60)
        if umount.returncode != 0 or "wiped its keys and exited" not in out:
            ended.append(f"ctfs umount: exit {umount.returncode}\n{out}\n{err}")
    if proc is not None and proc.wait(30) != 0:
        ended.append(f"foreground daemon exit {proc.returncode}")
    if not M.wait_until(lambda: not M.alive(m.pid), 30):
        ended.append(f"daemon {m.pid} still running")
    if not M.wait_until(lambda: not M.mounts_at(m.mnt), 10):
        ended.append(f"still mounted: {M.mounts_at(m.mnt)}")

    assert not found, (f"secrets left in daemon {m.pid}'s memory at exit ({mode} daemon, "
                       f"{stop}; {total} bytes read, unreadable: {unreadable[:3]}):\n"
                       f"{describe(found)}\n{m.log_tail()}")
    assert not ended, "\n".join(ended) + "\n" + m.log_tail()
    assert "keys wiped: 0 secret bytes left in memory" in Path(m.log).read_text(), m.log_tail()


@pytest.mark.timeout_s(120)
def test_no_secret_in_daemon_memory_after_a_refused_mount(ctfs, keys, mounter, random_model):
    """The error exit: a foreground mount of a source whose second file is encrypted under a
    key the reader does not have is refused after the keys were loaded (and the first file's
    data keys unwrapped, if it was opened first). Its exit leaves no key byte either. The exec
    helper waits a second before printing the keys, so the test attaches before any is read."""
    plain_dir, enc_dir, rel, _ = random_model
    src = mounter.dir / "src"
    src.mkdir()
    (src / "a.safetensors").write_bytes((enc_dir / rel).read_bytes())
    ctfs.ok("encrypt", plain_dir / rel, src / "z.safetensors", "--key", keys.other, "-q")
    secrets = Secrets(keys, src / "a.safetensors")
    keys_index = WordIndex(secrets.named())

    helper = mounter.dir / "helper.sh"
    helper.write_text(f"#!/bin/sh\nsleep 1\ncat '{keys.reader}'\n")
    os.chmod(helper, 0o700)
    mnt = mounter.new_mnt()
    mounter.mnts.append(mnt)
    cfg = mounter.dir / "refused.yaml"
    cfg.write_text(f"source: {src}\nmountpoint: {mnt}\n"
                   f"keys: [{{exec: [{helper}], timeout_s: 30}}]\n")
    out = open(mounter.dir / "refused.out", "w+")
    p = subprocess.Popen([ctfs.bin, "mount", "--config", cfg, "-f", *EXTRA_MOUNT_ARGS],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         env=M.clean_env(), start_new_session=True)
    mounter.procs.append(p)
    tracer = ExitTracer(p.pid)
    try:
        assert tracer.wait_exit_stop(60), f"`ctfs mount -f` {p.pid} did not exit within 60 s"
        regions, _ = dump_memory(p.pid)
        total = sum(len(r.data) for r in regions)
        assert find_bytes(regions, os.fsencode(str(cfg))), \
            f"control failed: the config path is not in the dump ({total} bytes read)"
        found = scan(regions, keys_index)
        del regions
    finally:
        tracer.detach()
    rc = p.wait(30)
    out.seek(0)
    text = out.read()
    assert rc not in (0, None) and "z.safetensors" in text, f"exit {rc}:\n{text}"
    assert not M.mounts_at(mnt)
    assert not found, f"secrets left in a refused mount's memory at exit:\n{describe(found)}"
