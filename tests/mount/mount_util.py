# SPDX-License-Identifier: Apache-2.0
"""Helpers of the real-mount suite (no pytest fixtures here; see conftest.py).

Everything that can hang on a broken FUSE daemon runs with a timeout: commands through `run()`
(stdout/stderr go to files, never pipes, so a daemon that keeps them open cannot block us), and
memory-mapped reads in child processes (`probe.py`), where a SIGBUS kills only the child.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().parent / "probe.py"
FSTYPE = "fuse.ctfs"
CHUNK = 65521           # ~64 KiB and prime: chunk boundaries never fall on page boundaries
PAGE = os.sysconf("SC_PAGE_SIZE")
FAULT_MATRIX = []       # lines of the fault matrix (test_mount_faults.py), shown in the summary

# Exit codes of the CLI contract (cmd/exit_codes.h).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INVALID, EXIT_AUTH, EXIT_NOT_FOUND = 0, 1, 2, 3, 4, 5
EXIT_BUSY, EXIT_EXISTS = 7, 8


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class CmdResult:
    argv: list
    rc: int | None          # None: timed out (the process group was killed)
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self):
        return self.rc is None

    def describe(self):
        return (f"$ {' '.join(map(str, self.argv))}\n"
                f"exit {'TIMEOUT' if self.rc is None else self.rc} after {self.seconds:.1f}s\n"
                f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}")


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k != "CRYPTOTENSOR_KEYS"}
    if extra:
        env.update(extra)
    return env


def run(argv, timeout=60, env=None, on_timeout=None, cwd=None) -> CmdResult:
    """Runs argv with stdout/stderr captured through files; kills its process group on timeout
    (after calling on_timeout(popen), which may collect diagnostics)."""
    argv = [str(a) for a in argv]
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env=env if env is not None else clean_env(), cwd=cwd,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if on_timeout:
                on_timeout(p)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            rc = None
        out.seek(0)
        err.seek(0)
        return CmdResult(argv, rc, out.read().decode(errors="replace"),
                         err.read().decode(errors="replace"), time.monotonic() - t0)


class Ctfs:
    """The ctfs CLI, run with a clean key environment (no inherited CRYPTOTENSOR_KEYS)."""

    def __init__(self, binary):
        self.bin = str(binary)

    def run(self, *args, env=None, timeout=60, on_timeout=None, cwd=None) -> CmdResult:
        return run([self.bin, *args], timeout=timeout, env=clean_env(env), on_timeout=on_timeout,
                   cwd=cwd)

    def ok(self, *args, **kw) -> CmdResult:
        r = self.run(*args, **kw)
        assert r.rc == 0, "expected exit 0\n" + r.describe()
        return r

    def inspect(self, path) -> dict:
        return json.loads(self.ok("inspect", path, "--json").stdout)


def error_line(r: CmdResult) -> str:
    """The single `ctfs: error: ...` line a failing command must print on stderr."""
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "expected exactly one stderr line\n" + r.describe()
    assert lines[0].startswith("ctfs: error: "), r.describe()
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Mounts and processes
# ---------------------------------------------------------------------------------------------

def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


@dataclasses.dataclass
class MountEntry:
    source: str
    mountpoint: str
    fstype: str
    options: str

    @property
    def pid(self):
        m = re.fullmatch(r"ctfs:(\d+)(?:@\d+)?", self.source)
        return int(m.group(1)) if m else None


def proc_mounts():
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4:
                out.append(MountEntry(_unescape(parts[0]), _unescape(parts[1]), parts[2], parts[3]))
    return out


def mount_path(mnt):
    """Canonical path of a mountpoint without touching it (realpath of the parent only): a
    stat of a hung FUSE mount blocks, so we never stat mountpoints in helpers."""
    mnt = os.path.abspath(str(mnt))
    return os.path.join(os.path.realpath(os.path.dirname(mnt)), os.path.basename(mnt))


def mounts_at(mnt):
    real = mount_path(mnt)
    return [e for e in proc_mounts() if e.mountpoint == real]


def ctfs_mounts():
    return [e for e in proc_mounts() if e.fstype == FSTYPE]


def fuse_mounts_under(prefix):
    prefix = os.path.realpath(str(prefix)).rstrip("/") + "/"
    return [e for e in proc_mounts() if e.fstype.startswith("fuse") and
            (e.mountpoint + "/").startswith(prefix)]


def proc_state(pid):
    """State letter of a process ('R', 'S', 'D', 'Z', ...) or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2]


def proc_argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def kernel_stack(pid):
    """Kernel stacks of the threads of `pid` that are in D state (where a hung daemon waits)."""
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            if proc_state(f"{pid}/task/{t}") == "D":
                try:
                    with open(f"/proc/{pid}/task/{t}/stack") as f:
                        frames = [l.split()[-1].split("+")[0] for l in f if l.strip()]
                except OSError:
                    frames = ["?"]
                out.append(f"tid {t}: " + " <- ".join(frames[:6]))
    except OSError:
        pass
    return "; ".join(out) or "(no thread in D state)"


def fd_targets(pid, fds):
    out = {}
    for fd in fds:
        try:
            out[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError as e:
            out[fd] = f"({e.strerror})"
    return out


def is_ctfs_process(pid):
    argv = proc_argv(pid)
    return bool(argv) and os.path.basename(argv[0]) == "ctfs"


def alive(pid):
    """True while `pid` is a running (not zombie) process."""
    return pid is not None and proc_state(pid) not in (None, "Z", "X")


def ctfs_processes_with_arg(arg):
    """pids of live ctfs processes whose command line contains `arg` (e.g. a mountpoint)."""
    arg = str(arg)
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and alive(int(d)):
            argv = proc_argv(int(d))
            if argv and os.path.basename(argv[0]) == "ctfs" and arg in argv:
                out.append(int(d))
    return out


def wait_until(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def kill_daemon(pid, grace=3.0):
    """SIGTERM, then SIGKILL, a ctfs daemon that is still alive (checked by name first)."""
    if not alive(pid) or not is_ctfs_process(pid):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        if wait_until(lambda: not alive(pid), grace):
            return True
    return True


def force_unmount(mnt):
    """`fusermount3 -u -z MNT` (errors ignored), then `umount -l` if still mounted."""
    run(["fusermount3", "-u", "-z", str(mnt)], timeout=15)
    if mounts_at(mnt):
        run(["umount", "-l", str(mnt)], timeout=15)


def cleanup_mount(mnt, pids=()):
    """Guaranteed teardown of one mountpoint: lazy unmount, then make sure its daemon(s) exit.

    Returns a list of what had to be cleaned up the hard way (for diagnostics)."""
    notes = []
    pids = set(p for p in pids if p)
    for _ in range(5):
        entries = mounts_at(mnt)
        pids |= {e.pid for e in entries if e.pid}
        force_unmount(mnt)
        if not mounts_at(mnt):
            break
    else:
        notes.append(f"{mnt} still mounted after 5 lazy unmounts")
    pids |= set(ctfs_processes_with_arg(mount_path(mnt))) | \
        set(ctfs_processes_with_arg(str(mnt)))
    for pid in pids:
        if not wait_until(lambda: not alive(pid), 5.0):
            notes.append(f"daemon {pid} did not exit after unmount; killed")
            kill_daemon(pid)
    return notes


def kill_mounts_under(prefix):
    """SIGKILL the ctfs daemons of FUSE mounts under `prefix` and lazily unmount them (the
    watchdog's last resort: a dead daemon makes blocked FUSE syscalls fail instead of hang)."""
    for e in fuse_mounts_under(prefix):
        if e.pid and alive(e.pid) and is_ctfs_process(e.pid):
            try:
                os.kill(e.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        force_unmount(e.mountpoint)


# ---------------------------------------------------------------------------------------------
# Files, headers, layouts
# ---------------------------------------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tree_listing(root):
    """{relative path: "dir" | "file"} of everything under root (no symlinks expected)."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames:
            out[str((Path(dirpath) / n).relative_to(root))] = "dir"
        for n in filenames:
            out[str((Path(dirpath) / n).relative_to(root))] = "file"
    return out


def files_of(root):
    return sorted(p for p, kind in tree_listing(root).items() if kind == "file")


def read_header(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_header(path, header, data):
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + data)


@dataclasses.dataclass
class Layout:
    size: int
    data_start: int
    tensors: dict            # name -> (absolute begin, absolute end) in the file


def layout(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    h = json.loads(raw[8:8 + n])
    start = 8 + n
    t = {k: (start + v["data_offsets"][0], start + v["data_offsets"][1])
         for k, v in h.items() if k != "__metadata__"}
    return Layout(len(raw), start, t)


def crypto_chunk_size(enc_path):
    h, _ = read_header(enc_path)
    meta = h.get("__metadata__") or {}
    if "__crypto_keys__" not in meta:
        return None
    return json.loads(meta["__crypto_keys__"]).get("chunk_size")


def interesting_offsets(lay: Layout, chunk_size):
    """Offsets where bugs live: header/data edge, tensor edges and chunk edges (+-1), EOF."""
    offs = {0, 1, 7, 8, 9, lay.data_start - 1, lay.data_start, lay.data_start + 1,
            lay.size - 1, lay.size, lay.size + 1, lay.size + 4096}
    for b, e in lay.tensors.values():
        offs |= {b - 1, b, b + 1, e - 1, e, e + 1}
        if chunk_size and e > b:
            for c in range(b + chunk_size, e, chunk_size):
                offs |= {c - 1, c, c + 1}
    return sorted(o for o in offs if o >= 0)


def first_diff(a: bytes, b: bytes):
    n = min(len(a), len(b))
    step = 4096
    for i in range(0, n, step):
        if a[i:i + step] != b[i:i + step]:
            for j in range(i, min(i + step, n)):
                if a[j] != b[j]:
                    return j
    return n if len(a) != len(b) else None


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------

def write_jwks(path, jwks):
    path = Path(path)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(jwks, f)
    os.chmod(path, 0o600)
    return path


def make_py_jwks(enc_kid, sign_kid):
    """A JWK Set made in Python (independent of ctfs keygen), in the reference dialect."""
    from cryptography.hazmat.primitives import serialization as S
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sk = Ed25519PrivateKey.generate()
    d = sk.private_bytes(S.Encoding.Raw, S.PrivateFormat.Raw, S.NoEncryption())
    x = sk.public_key().public_bytes(S.Encoding.Raw, S.PublicFormat.Raw)
    b64 = lambda r: base64.b64encode(r).decode()
    return {"keys": [
        {"kty": "oct", "alg": "aes256gcm", "kid": enc_kid, "k": b64(os.urandom(32))},
        {"kty": "okp", "alg": "ed25519", "kid": sign_kid, "x": b64(x), "d": b64(d)},
    ]}


def ref_config(jwks):
    e = next(j for j in jwks["keys"] if j["kty"] == "oct")
    s = next(j for j in jwks["keys"] if j["kty"] == "okp")
    return {"enc_key": dict(e), "sign_key": dict(s)}


# ---------------------------------------------------------------------------------------------
# The plain model
# ---------------------------------------------------------------------------------------------

def model_shards(seed=20240607):
    rng = np.random.default_rng(seed)
    return {
        "model-00001-of-00003.safetensors": {
            "model.embed_tokens.weight": rng.standard_normal(2_097_155, dtype=np.float32),  # 8 MiB+12
            "model.norm.weight": rng.standard_normal(17).astype(np.float16),
        },
        "model-00002-of-00003.safetensors": {
            "layers.0.q.weight": rng.standard_normal((333, 257), dtype=np.float32),
            "layers.0.k.bias": rng.standard_normal((3, 7, 11)),                  # float64
            "layers.0.mask": rng.integers(0, 2, 1001).astype(np.bool_),
            "layers.0.scale": np.array(0.125, dtype=np.float32),                  # shape []
            "layers.0.empty": np.zeros((0, 5), np.float32),
            "layers.0.quant": rng.integers(-128, 128, 1_000_003, dtype=np.int8),
            "layers.0.ids": np.arange(129, dtype=np.int64) * 7919,
        },
        "model-00003-of-00003.safetensors": {
            "lm_head.weight": rng.standard_normal(65537).astype(np.float16),      # 2 chunks + 30 B
            "tiny": np.array([7], np.uint8),
        },
        "sub/adapter_model.safetensors": {
            "lora_A": rng.standard_normal((16, 4099), dtype=np.float32),
            "lora_B": rng.standard_normal((4099, 3)).astype(np.float16),
        },
    }


def build_plain_model(d):
    """A small HF-style model directory (input of `ctfs encrypt DIR`)."""
    from safetensors.numpy import save_file

    d = Path(d)
    (d / "sub" / "deep").mkdir(parents=True)
    weight_map, total = {}, 0
    for rel, tensors in model_shards().items():
        save_file(tensors, str(d / rel), metadata={"format": "pt"})
        if "/" not in rel:
            for name, arr in tensors.items():
                weight_map[name] = rel
                total += arr.nbytes
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (d / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"],
                                               "model_type": "llama", "hidden_size": 4}))
    rnd = random.Random(5)
    (d / "sub" / "tokenizer.json").write_text(
        json.dumps({"vocab": {f"tok{i}_{rnd.random():.6f}": i for i in range(6000)}}))
    (d / "sub" / "deep" / "README.md").write_text("# nested\n" * 3)
    (d / "empty.txt").write_bytes(b"")
    (d / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    (d / "sub" / "name with spaces \u00fc.json").write_text('{"x": 1}')


def add_after_encrypt(plain, enc):
    """Things `ctfs encrypt DIR` would not produce: a plain (never encrypted) safetensors file and
    an empty directory; added to both trees so the plain tree stays the oracle of the view."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(99)
    tensors = {"w": rng.standard_normal((77, 129), dtype=np.float32),
               "b": np.arange(5, dtype=np.int16)}
    for root in (Path(plain), Path(enc)):
        save_file(tensors, str(root / "plain_extra.safetensors"), metadata={"format": "np"})
        (root / "emptydir").mkdir()


# ---------------------------------------------------------------------------------------------
# Child-process probes
# ---------------------------------------------------------------------------------------------

def probe(cmd, args, timeout=60):
    """Runs `probe.py CMD JSON` in a child; returns (CmdResult, parsed last stdout line or None).

    A child killed by a signal shows as rc == -signum."""
    r = run([sys.executable, str(PROBE), cmd, json.dumps(args)], timeout=timeout,
            env=clean_env())
    out = None
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    if lines:
        try:
            out = json.loads(lines[-1])
        except json.JSONDecodeError:
            out = None
    return r, out


def describe_probe(r: CmdResult):
    if r.rc is not None and r.rc < 0:
        return f"probe killed by signal {-r.rc} ({signal.Signals(-r.rc).name})\n" + r.describe()
    return r.describe()


class Holder:
    """A long-lived child (`probe.py hold`) that keeps a file open and/or mapped; talks JSON lines."""

    def __init__(self, args, ready_timeout=60):
        self.log = tempfile.TemporaryFile()
        self.p = subprocess.Popen([sys.executable, str(PROBE), "hold", json.dumps(args)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                  env=clean_env(), bufsize=0, start_new_session=True)
        self.buf = b""
        self.ready = self.recv(ready_timeout)

    def recv(self, timeout=30):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"holder: no answer in {timeout}s; {self.stderr()}")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    rc = self.p.wait(5)
                    raise AssertionError(f"holder exited (rc {rc}) without answering; "
                                         f"{self.stderr()}")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, line, timeout=30):
        self.p.stdin.write((line + "\n").encode())
        return self.recv(timeout)

    def stderr(self):
        self.log.seek(0)
        return "holder stderr: " + self.log.read().decode(errors="replace")[-2000:]

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write(b"quit\n")
                self.p.stdin.close()
                self.p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait()
        self.log.close()


def copy_tree(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return Path(dst)


# ---------------------------------------------------------------------------------------------
# systemd notifications
# ---------------------------------------------------------------------------------------------

class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET: `address` is a path,
    or "@name" for an abstract socket (how systemd hands it out). `env()` is what the daemon
    needs in its environment; `next(timeout)` returns one message as a dict of its assignments
    (plus "_raw"), or None on timeout."""

    def __init__(self, address: str):
        import socket
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages = []

    def env(self):
        return {"NOTIFY_SOCKET": self.address}

    def next(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        raw = self.sock.recv(65536).decode()
        msg = dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)
        msg["_raw"] = raw
        self.messages.append(msg)
        return msg

    def wait_for(self, key, timeout, on_message=None):
        """Reads messages until one assigns `key`; returns it (None on timeout). `on_message`
        is called on each message as it arrives."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.next(left)
            if msg is None:
                return None
            if on_message:
                on_message(msg)
            if key in msg:
                return msg
        return None

    def close(self):
        self.sock.close()
        if not self.address.startswith("@"):
            try:
                os.unlink(self.address)
            except FileNotFoundError:
                pass
