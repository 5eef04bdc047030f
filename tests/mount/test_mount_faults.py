# SPDX-License-Identifier: Apache-2.0
"""The fault matrix under a real mount: the daemon runs with tests/fault/faultio.c preloaded,
which makes its reads of chosen byte ranges of the backing files fail with EIO, come back
short, look truncated, return flipped bits, or wait (a slow disk), at the syscall, under
everything the daemon does (header checks, chunk cache, decrypt-ahead with O_DIRECT runs and
its fallback). The faults are armed after the mount has verified the headers, then every file
of the mount is read in full, from a child process, by pread at three sizes, through a
MAP_SHARED mapping and with stock safetensors (`safe_open`), each pass after dropping the
file's pages so that its reads reach the daemon.

Expected: every read returns exactly the plaintext or fails with EIO (a mapping: SIGBUS);
a read fails only if a page it needs overlaps an affected authentication unit (a v2 chunk, a
v1 tensor; a truncation: everything from there on), and every read touching one fails; other
files and ranges are served; the daemon stays up; once the fault is gone the same ranges read
right (no error is cached); `ctfs umount --force` still revokes and the daemon exits 0. Files
stored in plain (config.json, plain safetensors) carry no integrity: an EIO gives EIO,
changed bytes are served as they now are. A fault while mounting (a header that cannot be
read, or was changed) refuses the mount naming the file; with --allow-bad-files only that
file answers EIO.

This stands in for a device-mapper error/flakey target, which needs a kernel with
device-mapper (neither this machine nor CI has one). Each case prints one line of the fault
matrix in the session summary."""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from . import mount_util as M
from .conftest import EXTRA_MOUNT_ARGS

PROBE = Path(__file__).resolve().parent / "fault_probe.py"
ODD, BIG, V1 = "v2_odd.safetensors", "v2_256k.safetensors", "v1.safetensors"
PLAIN, CONFIG = "plain.safetensors", "config.json"
PASSES = [{"method": "pread", "piece": 4096}, {"method": "pread", "piece": 131072},
          {"method": "pread", "piece": (1 << 20) + 3}, {"method": "mmap", "piece": 65536},
          {"method": "safe_open"}]
PASS_NAMES = ["pread 4K", "pread 128K", "pread 1M+3", "mmap 64K", "safe_open"]


def align_down(x, a=M.PAGE):
    return x // a * a


def align_up(x, a=M.PAGE):
    return -(-x // a) * a


# ---- the model -------------------------------------------------------------------------------

@dataclasses.dataclass
class FaultModel:
    plain: Path                 # the oracle: what the mount must show
    src: Path                   # SRC of the mounts
    chunk: dict                 # encrypted file -> chunk size (None: v1, whole tensors)
    plain_layout: dict          # safetensors file -> M.Layout of the plain file
    cipher_layout: dict         # encrypted file -> M.Layout of the encrypted file

    def files(self):
        return [ODD, BIG, V1, PLAIN, CONFIG]


@pytest.fixture(scope="module")
def faultio_lib(ctfs):
    """The preload library: $CTFS_FAULTIO_LIB, else built next to the binary (build/tests/)."""
    lib = Path(os.environ.get("CTFS_FAULTIO_LIB") or
               Path(ctfs.bin).resolve().parents[1] / "tests" / "libctfs_faultio.so")
    if not lib.is_file():
        pytest.fail(f"fault injection library not found: {lib} (the build's ctfs_faultio "
                    f"target, tests/fault/faultio.c; or set CTFS_FAULTIO_LIB)", pytrace=False)
    return lib


@pytest.fixture(scope="module")
def fault_model(ctfs, keys, tmp_path_factory):
    """Two v2 files (65521-byte and 256 KiB chunks), a v1 file, a plain safetensors file and a
    config.json; about 8 MB."""
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("faults")
    plain, src = root / "plain", root / "src"
    plain.mkdir()
    src.mkdir()
    rng = np.random.default_rng(11)
    save_file({"a": rng.standard_normal(600_000, dtype=np.float32),          # 37 chunks
               "b": np.array([1, 2, 3], np.uint8),                           # one 3-byte chunk
               "c": rng.standard_normal(70_000).astype(np.float16)},          # 3 chunks
              str(plain / ODD), metadata={"format": "pt"})
    save_file({"w": rng.standard_normal((1024, 1024), dtype=np.float32),     # 16 chunks
               "bias": rng.standard_normal(1000, dtype=np.float32)},
              str(plain / BIG), metadata={"format": "pt"})
    save_file({"emb": rng.standard_normal(300_000, dtype=np.float32),
               "small": np.arange(100, dtype=np.int64)},
              str(plain / V1), metadata={"format": "pt"})
    save_file({"w": rng.standard_normal((77, 129), dtype=np.float32),
               "b": np.arange(5, dtype=np.int16)}, str(plain / PLAIN), metadata={"format": "np"})
    (plain / CONFIG).write_text(json.dumps({"model_type": "llama", "hidden_size": 1024}))
    chunk = {ODD: 65521, BIG: 262144, V1: None}
    for rel, c in chunk.items():
        args = ["--format-version", "1"] if c is None else ["--chunk-size", str(c)]
        ctfs.ok("encrypt", plain / rel, src / rel, "--key", keys.full, *args, "-q", timeout=120)
    for rel in (PLAIN, CONFIG):
        (src / rel).write_bytes((plain / rel).read_bytes())
    plain_layout = {rel: M.layout(plain / rel) for rel in (ODD, BIG, V1, PLAIN)}
    cipher_layout = {rel: M.layout(src / rel) for rel in chunk}
    for rel in chunk:  # the mapping below relies on it: same data offsets, plain and encrypted
        p, c = plain_layout[rel], cipher_layout[rel]
        assert {k: (b - p.data_start, e - p.data_start) for k, (b, e) in p.tensors.items()} == \
            {k: (b - c.data_start, e - c.data_start) for k, (b, e) in c.tensors.items()}, rel
    return FaultModel(plain, src, chunk, plain_layout, cipher_layout)


# ---- faults ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Case:
    id: str
    kind: str                 # eio short eof flip delay
    rel: str                  # the faulted file
    where: tuple = ()         # (tensor, unit, "first" | "mid" | "last") or () for the whole file
    direct: bool = True       # direct I/O for the ciphertext (the default) or --no-direct-io
    opts: str = ""            # extra rule options (fd=direct, ms=N)
    at: int | None = None     # a plain byte offset (passthrough files) instead of `where`

    def label(self, rule):
        where = f"{self.where[0]} unit {self.where[1]} ({self.where[2]} byte)" if self.where \
            else (f"byte {rule.split()[2]}" if self.at is not None else "whole file")
        return f"{self.kind:<5} {self.opts:<16} {self.rel}: {where}"


CASES = [
    Case("eio-chunk-direct", "eio", ODD, ("a", 5, "mid")),
    Case("eio-chunk-buffered", "eio", ODD, ("a", 5, "mid"), direct=False),
    Case("eio-256k-chunk", "eio", BIG, ("w", 7, "first")),
    Case("eio-v1-tensor", "eio", V1, ("emb", 0, "mid")),
    Case("flip-chunk-direct", "flip", ODD, ("a", 5, "last")),
    Case("flip-chunk-buffered", "flip", ODD, ("a", 5, "last"), direct=False),
    Case("flip-256k-first-chunk", "flip", BIG, ("w", 0, "first")),
    Case("flip-v1-tensor", "flip", V1, ("emb", 0, "first"), direct=False),
    Case("flip-3-byte-tensor", "flip", ODD, ("b", 0, "last")),
    Case("eof-in-256k-chunk", "eof", BIG, ("w", 3, "mid")),
    Case("eof-in-last-tensor", "eof", ODD, ("c", 1, "mid"), direct=False),
    Case("short-direct", "short", BIG),
    Case("short-buffered", "short", ODD, direct=False),
    Case("delay-chunk", "delay", BIG, ("w", 2, "mid"), opts="ms=150"),
    # O_DIRECT reads fail slowly, so readers queue on the decrypt-ahead run that fails.
    Case("eio-direct-reads-only", "eio", BIG, opts="fd=direct ms=300"),
    Case("eio-passthrough-json", "eio", CONFIG, at=3),
    Case("flip-passthrough-json", "flip", CONFIG, at=3),
    Case("short-passthrough-json", "short", CONFIG),
    Case("flip-plain-safetensors", "flip", PLAIN, at=-1),   # -1: a byte inside tensor "w"
]


def rule_for(fm: FaultModel, case: Case):
    """The faultio rule line of a case and the plain range it must make fail (None: nothing
    may fail)."""
    path = fm.src / case.rel
    if case.where:
        name, unit, pos = case.where
        lay = fm.cipher_layout[case.rel]
        b, e = lay.tensors[name]
        ulen = fm.chunk[case.rel] or (e - b)
        lo, hi = b + unit * ulen, min(b + (unit + 1) * ulen, e)
        assert lo < hi, case
        x = {"first": lo, "mid": (lo + hi) // 2, "last": hi - 1}[pos]
        shift = fm.plain_layout[case.rel].data_start - lay.data_start
        bad = (lo + shift, hi + shift)
        if case.kind == "eof":
            bad = (bad[0], (fm.plain / case.rel).stat().st_size)
        if case.kind in ("short", "delay") or "fd=direct" in case.opts:
            bad = None
        return f"{case.kind} {path} {x} 1 {case.opts}", bad
    if case.at is not None:
        x = case.at
        if x < 0:
            x = sum(fm.plain_layout[case.rel].tensors["w"]) // 2
        # Plain files are served as stored: the same offsets in the mount.
        return f"{case.kind} {path} {x} 1 {case.opts}", (x, x + 1) if case.kind == "eio" else None
    return f"{case.kind} {path} 0 - {case.opts}", None


def arm(control: Path, text: str):
    """Writes the rules as a new file (faultio re-reads a control file that changed)."""
    tmp = control.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, control)


def hits(log: Path):
    if not log.exists():
        return [], []
    lines = log.read_text().splitlines()
    return [l for l in lines if l.startswith("hit ")], [l for l in lines if l.startswith("error")]


def faultio_env(lib, control, log):
    return {"LD_PRELOAD": str(lib), "CTFS_FAULTIO_CONTROL": str(control),
            "CTFS_FAULTIO_LOG": str(log)}


def probe_reads(files, passes, timeout=90):
    """Runs fault_probe.py; returns {(file index, pass index): items}."""
    args = {"files": files, "passes": passes}
    r = M.run([sys.executable, str(PROBE), json.dumps(args)], timeout=timeout)
    assert r.rc == 0, "the reading child failed or hung\n" + M.describe_probe(r)
    out = {}
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        k = next(i for i, p in enumerate(passes)
                 if p["method"] == rec["method"] and p.get("piece") == rec["piece"])
        out[(rec["file"], k)] = rec["items"]
    return out


def judge(items, bad):
    """(ok, failed, problems) of one pass over one file: failures allowed only on pages that
    overlap `bad`, required on every item that overlaps it; never wrong bytes."""
    ok = failed = 0
    problems = []
    for lo, hi, status, at in items:
        touches = bad is not None and lo < bad[1] and hi > bad[0]
        near = bad is not None and lo < align_up(bad[1]) and hi > align_down(bad[0])
        if status == "ok":
            ok += 1
            if touches:
                problems.append(f"[{lo}, {hi}) overlaps the affected range {bad} but read fine")
        elif status in ("EIO", "SIGBUS"):
            failed += 1
            if not near or (status == "EIO" and
                            not align_down(bad[0]) <= at < align_up(bad[1])):
                problems.append(f"[{lo}, {hi}): {status} at {at}, outside the affected "
                                f"range {bad} (page-aligned)")
        else:
            problems.append(f"[{lo}, {hi}): {status} at {at}")
    return ok, failed, problems


def probe_files(fm: FaultModel, mnt: Path, rels, oracles=None):
    oracles = oracles or {}
    return [{"mnt": str(mnt / rel), "oracle": str(oracles.get(rel, fm.plain / rel)),
             "tensors": dict(fm.plain_layout[rel].tensors) if rel in fm.plain_layout else {}}
            for rel in rels]


def umount_force(mounter, m, proc=None):
    r = mounter.ctfs.run("umount", "--force", m.mnt, timeout=30)
    assert r.rc == 0, "`ctfs umount --force` failed after the faults\n" + r.describe()
    assert not M.mounts_at(m.mnt), f"still mounted after umount --force: {M.mounts_at(m.mnt)}"
    if proc is not None:
        rc = proc.wait(15)
        assert rc == 0, f"the daemon exited {rc} after revocation\n{m.log_tail()}"


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault_under_a_live_mount(mounter, fault_model, faultio_lib, tmp_path, case):
    fm = fault_model
    control, log = tmp_path / "faultio.rules", tmp_path / "faultio.log"
    t0 = time.monotonic()
    proc, m = mounter.foreground(fm.src, args=[] if case.direct else ["--no-direct-io"],
                                 env=faultio_env(faultio_lib, control, log))
    rule, bad = rule_for(fm, case)
    oracles = {}
    if case.kind == "flip" and case.rel in (CONFIG, PLAIN):
        # Stored in plain: no integrity; the changed byte is what the mount must show.
        x = int(rule.split()[2])
        data = bytearray((fm.plain / case.rel).read_bytes())
        data[x] ^= 1
        oracles[case.rel] = tmp_path / ("flipped-" + case.rel)
        oracles[case.rel].write_bytes(bytes(data))
    arm(control, rule)
    rels = fm.files()
    results = probe_reads(probe_files(fm, m.mnt, rels, oracles), PASSES)
    hit_lines, errors = hits(log)
    assert not errors, f"faultio could not use the rule {rule!r}: {errors}"
    assert proc.poll() is None, f"the daemon died under the fault (exit {proc.poll()})\n" \
        f"{m.log_tail()}"

    problems, counts = [], []
    for i, rel in enumerate(rels):
        for k, name in enumerate(PASS_NAMES):
            if (i, k) not in results:
                assert name == "safe_open" and rel == CONFIG, (rel, name, "not read")
                continue
            ok, failed, probs = judge(results[(i, k)], bad if rel == case.rel else None)
            problems += [f"{rel} {name}: {p}" for p in probs]
            if rel == case.rel:
                counts.append(f"{name} {ok}/{failed}")
            if rel == case.rel and bad is not None and failed == 0:
                problems.append(f"{rel} {name}: no read failed, though every pass reads {bad}")
    assert hit_lines, f"the fault {rule!r} was never reached (does the daemon still read its " \
        f"backing files with pread?)\n{m.log_tail()}"
    direct_hits = sum(l.endswith("direct=1") for l in hit_lines)
    if "fd=direct" in case.opts and "--no-direct-io" not in EXTRA_MOUNT_ARGS:
        assert direct_hits, "direct I/O was on, but no O_DIRECT read reached the fault"

    # The fault gone, the same ranges read right: no error was cached.
    arm(control, "# disarmed")
    after = probe_reads(probe_files(fm, m.mnt, [case.rel]), [PASSES[1], PASSES[4]])
    for items in after.values():
        _, _, probs = judge(items, None)
        problems += [f"{case.rel} after the fault was removed: {p}" for p in probs]
    assert proc.poll() is None, f"the daemon died (exit {proc.poll()})\n{m.log_tail()}"
    if bad is not None and case.rel not in (CONFIG, PLAIN):
        assert case.rel in m.log.read_text(), f"the daemon log does not name {case.rel}\n" \
            f"{m.log_tail()}"
    umount_force(mounter, m, proc)
    assert not problems, "\n".join(problems[:30]) + f"\n({len(problems)} problems)\n" + \
        m.log_tail()
    M.FAULT_MATRIX.append(
        f"{case.label(rule):<64} {'direct' if case.direct else 'buffered':<8} | ok/failed: "
        f"{', '.join(counts)} | wrong 0 | others right | hits {len(hit_lines)} "
        f"({direct_hits} O_DIRECT) | after: right | {time.monotonic() - t0:.1f}s")


# ---- faults while mounting -------------------------------------------------------------------

MOUNT_CASES = [
    ("eio-encrypted-header", "eio", ODD, 0, 8),
    ("flip-encrypted-header", "flip", ODD, 100, 1),
    ("flip-signed-metadata", "flip", ODD, b'"format":"pt"', 1),   # "pt" -> "pu": bad signature
    ("eio-v1-header", "eio", V1, 8, 1),
    ("eof-encrypted-header", "eof", BIG, 50, 1),
    ("eio-plain-safetensors-header", "eio", PLAIN, 0, 8),
    ("eio-passthrough-json", "eio", CONFIG, 0, 1),
]


@pytest.mark.parametrize("case", MOUNT_CASES, ids=[c[0] for c in MOUNT_CASES])
def test_fault_while_mounting_refuses_the_file(mounter, fault_model, faultio_lib, tmp_path,
                                               case):
    cid, kind, rel, off, length = case
    fm = fault_model
    control, log = tmp_path / "faultio.rules", tmp_path / "faultio.log"
    env = faultio_env(faultio_lib, control, log)
    if isinstance(off, bytes):  # the last byte but one of this text in the header
        off = (fm.src / rel).read_bytes().index(off) + len(off) - 2
    arm(control, f"{kind} {fm.src / rel} {off} {length}")
    mnt = mounter.new_mnt()
    r = mounter.try_mount(fm.src, mnt, env=env)
    assert r.rc != 0, f"a mount whose {rel} header cannot be read went live\n{r.describe()}"
    line = M.error_line(r)
    assert rel in line, f"the refusal does not name {rel}: {line!r}"
    assert not M.mounts_at(mnt)
    assert hits(log)[0], "the fault was never reached"

    m = mounter.mount(fm.src, args=["--allow-bad-files"], env=env)
    with pytest.raises(OSError) as ei:
        with open(m.mnt / rel, "rb") as f:
            f.read(16)
    assert ei.value.errno == errno.EIO, f"{rel} with a bad header: {ei.value!r}, want EIO"
    others = [x for x in fm.files() if x != rel]
    results = probe_reads(probe_files(fm, m.mnt, others), [PASSES[1], PASSES[4]])
    problems = [f"{others[i]}: {p}" for (i, _), items in results.items()
                for p in judge(items, None)[2]]
    assert not problems, "\n".join(problems[:20])
    umount_force(mounter, m)
    why = line.replace(str(fm.src) + "/", "").split(" (--allow-bad-files")[0]
    M.FAULT_MATRIX.append(f"{kind:<5} at mount {rel}, header byte {off}: refused, exit {r.rc} "
                          f"({why}); --allow-bad-files: {rel} EIO, {len(others)} others right")


def test_short_reads_while_mounting_and_serving(mounter, fault_model, faultio_lib, tmp_path):
    """Every read of every file the daemon opens (keys, headers, data) comes back short."""
    fm = fault_model
    control, log = tmp_path / "faultio.rules", tmp_path / "faultio.log"
    arm(control, "short * 0 -")
    proc, m = mounter.foreground(fm.src, env=faultio_env(faultio_lib, control, log))
    results = probe_reads(probe_files(fm, m.mnt, fm.files()), [PASSES[1], PASSES[4]])
    problems = [p for items in results.values() for p in judge(items, None)[2]]
    assert not problems, "\n".join(problems[:20])
    hit_lines, _ = hits(log)
    assert len(hit_lines) > 10, hit_lines
    umount_force(mounter, m, proc)
    M.FAULT_MATRIX.append(f"short at mount and after, every file: mounted, all reads right, "
                          f"hits {len(hit_lines)}")
