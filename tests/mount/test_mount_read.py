# SPDX-License-Identifier: Apache-2.0
"""What a mounted model shows: the same tree, sizes and bytes as the plaintext it was encrypted
from, through every way loaders read (read, pread, mmap shared/private, O_DIRECT, threads,
processes, the real safetensors loader). The plain tree on disk is the oracle; nothing here is
a hard-coded expectation."""
from __future__ import annotations

import concurrent.futures
import mmap
import os
import random
import stat
import time

import pytest

from . import mount_util as M

BIG = "model-00001-of-00003.safetensors"
LENS = [0, 1, 2, 7, 13, 4095, 4096, 4097, M.CHUNK - 1, M.CHUNK, M.CHUNK + 1, 3 * M.CHUNK + 5,
        131072, (1 << 20) + 3, 3 << 20]


def offsets_for(model, rel):
    p = model.plain / rel
    if rel.endswith(".safetensors"):
        chunk = model.chunk if rel in model.encrypted else None
        return M.interesting_offsets(M.layout(p), chunk)
    n = p.stat().st_size
    return sorted({0, 1, max(0, n - 1), n, n + 1})


def test_stat_sizes_before_any_read(mounter, model):
    m = mounter.mount(model.enc)
    want = M.tree_listing(model.plain)
    # Only LOOKUP/GETATTR have happened when these stats run: no file was opened or read yet.
    for rel, kind in sorted(want.items()):
        st = os.stat(m.mnt / rel)
        if kind == "dir":
            assert stat.S_ISDIR(st.st_mode), rel
        else:
            assert stat.S_ISREG(st.st_mode), rel
            plain_size = (model.plain / rel).stat().st_size
            assert st.st_size == plain_size, \
                f"{rel}: stat size {st.st_size} before reading, plain size {plain_size}"
    for rel in model.encrypted:  # guards the test: the encrypted size differs from the plain one
        assert (model.enc / rel).stat().st_size != (model.plain / rel).stat().st_size
    for missing in ("no-such-file", "sub/nope.safetensors", "emptydir/x"):
        with pytest.raises(FileNotFoundError):
            os.stat(m.mnt / missing)
    # After a full read the size is unchanged, also through fstat on the open descriptor.
    with open(m.mnt / BIG, "rb") as f:
        data = f.read()
        assert os.fstat(f.fileno()).st_size == len(data) == (model.plain / BIG).stat().st_size
    assert os.stat(m.mnt / BIG).st_size == len(data)


def test_listing_equals_plain_tree(mounted, model):
    assert M.tree_listing(mounted.mnt) == M.tree_listing(model.plain)
    assert sorted(os.listdir(mounted.mnt)) == sorted(os.listdir(model.plain))
    kinds = {e.name: (e.is_dir(), e.is_file()) for e in os.scandir(mounted.mnt / "sub")}
    assert kinds == {e.name: (e.is_dir(), e.is_file()) for e in os.scandir(model.plain / "sub")}
    assert os.listdir(mounted.mnt / "emptydir") == []


def test_sha256_of_every_file(mounted, model):
    bad = [rel for rel in model.files()
           if M.sha256(mounted.mnt / rel) != M.sha256(model.plain / rel)]
    assert not bad, f"files whose bytes differ from the plaintext: {bad}"
    assert len(model.files()) >= 10


@pytest.mark.parametrize("mode", ["buffered", "direct"])
def test_random_pread_matches_plaintext(mounted, model, mode):
    """pread at chunk/tensor/header edges +-1, 0-length, past EOF and random ranges (seeded).
    "buffered" evicts the page cache every 16 reads; "direct" (O_DIRECT) sends every range to
    the daemon as is."""
    rng = random.Random(20240607)
    bad, n_cases = [], 0
    for rel in model.files():
        want = model.plain_bytes(rel)
        size = len(want)
        cases = []
        for o in offsets_for(model, rel):
            cases += [(o, 0), (o, 1), (o, rng.choice(LENS))]
        for _ in range(60):
            cases.append((rng.randrange(size + 100), rng.choice(LENS)))
            cases.append((rng.randrange(size + 100), rng.randrange(1, 1 << 21)))
        rng.shuffle(cases)
        flags = os.O_RDONLY | (os.O_DIRECT if mode == "direct" else 0)
        fd = os.open(mounted.mnt / rel, flags)
        try:
            for i, (off, ln) in enumerate(cases):
                if mode == "buffered" and i % 16 == 0:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                try:
                    got = os.pread(fd, ln, off)
                except OSError as e:
                    bad.append(f"{rel} pread({ln}, {off}): {e}")
                    continue
                exp = want[off:off + ln]
                if got != exp:
                    what = "short read" if exp.startswith(got) else \
                        f"wrong bytes from +{M.first_diff(got, exp)}"
                    bad.append(f"{rel} pread({ln}, {off}): {what} (got {len(got)}, "
                               f"want {len(exp)} bytes)")
        finally:
            os.close(fd)
        n_cases += len(cases)
    assert not bad, f"{len(bad)} of {n_cases} reads wrong; first: " + "\n".join(bad[:15])
    assert n_cases > 1000


@pytest.mark.parametrize("size", [1 << 20, 4093, 65537, (3 << 20) + 1])
def test_sequential_read(mounted, model, size):
    for rel in model.files():
        want = model.plain_bytes(rel)
        parts = []
        with open(mounted.mnt / rel, "rb", buffering=0) as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            while True:
                b = f.read(size)
                if not b:
                    break
                parts.append(b)
        got = b"".join(parts)
        assert got == want, f"{rel}: read({size}) loop: {len(got)} bytes, want {len(want)}, " \
                            f"first difference at {M.first_diff(got, want)}"
        short = [i for i, p in enumerate(parts[:-1]) if len(p) != size]
        assert not short, f"{rel}: short reads before EOF at calls {short[:5]}"


@pytest.mark.parametrize("mode", ["shared", "private"])
def test_mmap_matches_plaintext(mounted, model, mode):
    """Python mmap ACCESS_READ (MAP_SHARED) and MAP_PRIVATE|PROT_READ, run in a child."""
    pairs = [[str(mounted.mnt / rel), str(model.plain / rel)] for rel in model.files()
             if (model.plain / rel).stat().st_size > 0]
    r, out = M.probe("mmap_compare", {"pairs": pairs, "mode": mode, "seed": 7, "slices": 300})
    assert r.rc == 0 and out, M.describe_probe(r)
    assert len(out["files"]) == len(pairs)
    bad = [f for f in out["files"] if f["size"] != f["want_size"] or f["bad_slices"] or
           f["first_diff"] is not None]
    assert not bad, f"mmap {mode} mismatches: {bad}"


def test_o_direct_aligned_reads(mounted, model):
    big = model.plain_bytes(BIG)
    lay = M.layout(model.plain / BIG)
    b, _ = lay.tensors["model.embed_tokens.weight"]
    down = lambda x: x // 4096 * 4096
    size = len(big)
    cases = [(0, 4096), (0, 1 << 20), (4096, 4 << 20), (down(b + 5 * M.CHUNK), 4096),
             (down(b + 5 * M.CHUNK) - 4096, 3 * 4096), (down(b + 64 * M.CHUNK), 1 << 20),
             (down(size) - 8192, 16384), (down(size), 4096), (down(size) + 4096, 4096),
             (0, down(size) + 4096)]
    buf = mmap.mmap(-1, 16 << 20)  # page-aligned buffer, as O_DIRECT users allocate
    fd = os.open(mounted.mnt / BIG, os.O_RDONLY | os.O_DIRECT)
    try:
        for off, ln in cases:
            n = os.preadv(fd, [memoryview(buf)[:ln]], off)
            exp = big[off:off + ln]
            assert n == len(exp) and buf[:n] == exp, \
                f"O_DIRECT preadv({ln}, {off}): {n} bytes, want {len(exp)}, " \
                f"diff at {M.first_diff(buf[:n], exp)}"
        # unaligned O_DIRECT reads (loaders do this; FUSE passes them through)
        for off, ln in [(1, 100), (b + M.CHUNK - 3, 7), (12345, 1_000_001), (size - 5, 100)]:
            got = os.pread(fd, ln, off)
            assert got == big[off:off + ln], f"O_DIRECT pread({ln}, {off})"
    finally:
        os.close(fd)
        buf.close()


def _reader_pairs(m, model):
    rels = model.encrypted + ["plain_extra.safetensors", "model.safetensors.index.json"]
    pairs = [[str(m.mnt / r), str(model.plain / r)] for r in rels]
    bounds = [offsets_for(model, r) for r in rels]
    return pairs, bounds


@pytest.mark.timeout_s(90)
def test_16_threads_random_ranges(mounter, model):
    m = mounter.mount(model.enc)  # fresh: nothing cached yet
    pairs, bounds = _reader_pairs(m, model)
    r, out = M.probe("random_reads", {"pairs": pairs, "boundaries": bounds, "seed": 16,
                                      "threads": 16, "seconds": 4, "mode": "pread"},
                     timeout=70)
    assert r.rc == 0 and out, M.describe_probe(r) + "\n" + m.log_tail()
    assert out["n_mismatch"] == 0 and out["n_errors"] == 0, out
    assert out["ops"] > 200, f"too few reads to mean anything: {out}"


@pytest.mark.timeout_s(90)
def test_4_processes_mixed_access(mounter, model):
    m = mounter.mount(model.enc)
    pairs, bounds = _reader_pairs(m, model)

    def one(seed):
        return M.probe("random_reads", {"pairs": pairs, "boundaries": bounds, "seed": seed,
                                        "threads": 2, "seconds": 4, "mode": "mixed"},
                       timeout=70)

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(one, [101, 102, 103, 104]))
    for r, out in results:
        assert r.rc == 0 and out, M.describe_probe(r) + "\n" + m.log_tail()
        assert out["n_mismatch"] == 0 and out["n_errors"] == 0, out
        assert out["ops"] > 50, out
        assert {"mmap_shared", "mmap_private", "direct", "evict"} <= set(out["by_op"]), out


def test_safetensors_safe_open_loads_every_tensor(mounted, model):
    """The real loader: safetensors.safe_open(framework="np") maps the file (MAP_PRIVATE)."""
    rels = [r for r in model.files() if r.endswith(".safetensors")]
    pairs = [[str(mounted.mnt / r), str(model.plain / r)] for r in rels]
    r, out = M.probe("safe_open_compare", {"pairs": pairs})
    assert r.rc == 0 and out, M.describe_probe(r)
    assert out["problems"] == [], out["problems"]
    want = sum(len(t) for t in M.model_shards().values()) + 2  # + plain_extra's two tensors
    assert out["tensors"] == want


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("opts", [["--cache-mb", "1", "--threads", "1"],
                                  ["--cache-mb", "64", "--threads", "4"]],
                         ids=["cache1M-threads1", "cache64M-threads4"])
def test_daemon_options(mounter, model, opts):
    """The same oracle under other cache and FUSE worker settings."""
    m = mounter.mount(model.enc, args=opts)
    bad = [rel for rel in model.files()
           if M.sha256(m.mnt / rel) != M.sha256(model.plain / rel)]
    assert not bad, bad
    pairs, bounds = _reader_pairs(m, model)
    r, out = M.probe("random_reads", {"pairs": pairs, "boundaries": bounds, "seed": 5,
                                      "threads": 8, "seconds": 2, "mode": "mixed"}, timeout=60)
    assert r.rc == 0 and out, M.describe_probe(r) + "\n" + m.log_tail()
    assert out["n_mismatch"] == 0 and out["n_errors"] == 0, out


@pytest.mark.timeout_s(60)
def test_close_right_after_read_does_not_race_the_reply(mounter, model):
    """Reads that the daemon answers through its copy path (a file's header; a passthrough
    file), each followed at once by a close: the kernel sends RELEASE as soon as the READ is
    answered, and its handler frees the open handle on another daemon thread. A read handler
    that touches the handle after replying crashes the daemon here (it did, in a bench run)."""
    m = mounter.mount(model.enc)
    paths = [m.mnt / model.encrypted[0], m.mnt / "model.safetensors.index.json"]
    want = {p: (model.plain / p.name).read_bytes()[:4096] for p in paths}
    deadline = time.monotonic() + 4

    def worker(i):
        buf = mmap.mmap(-1, 4096)  # page-aligned, for O_DIRECT
        ops, bad = 0, []
        try:
            while time.monotonic() < deadline and not bad:
                p = paths[(i + ops) % len(paths)]
                fd = os.open(p, os.O_RDONLY | os.O_DIRECT)  # every read goes to the daemon
                try:
                    n = os.preadv(fd, [buf], 0)
                finally:
                    os.close(fd)
                if buf[:n] != want[p]:
                    bad.append(f"{p.name}: {n} bytes, diff at {M.first_diff(buf[:n], want[p])}")
                ops += 1
        except OSError as e:
            bad.append(f"{e!r}")
        finally:
            buf.close()
        return ops, bad

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(worker, range(8)))
    ops = sum(o for o, _ in results)
    bad = [b for _, bs in results for b in bs]
    assert not bad, f"{bad[:3]} (daemon alive: {M.alive(m.pid)})\n{m.log_tail()}"
    assert M.alive(m.pid), f"daemon {m.pid} died after {ops} open-read-close rounds"
    assert ops > 500, f"too few rounds to mean anything: {ops}"
