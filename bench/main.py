# SPDX-License-Identifier: Apache-2.0
"""ctfs benchmark harness (issue 4). Entry point: bench/run (see --help).

Measures, side by side and repeated (median, min-max, spread): sequential 1 MiB reads and mmap
page touches (cold/warm) on the ctfs mount of the encrypted model, the same daemon serving the
plaintext (plain FUSE), the plaintext on disk, and gocryptfs; fio random reads; loading every
tensor with safetensors (and the reference cryptotensors); transformers from_pretrained; daemon
peak RSS at two model sizes; `ctfs encrypt` vs `cp -r`. Prints a markdown table and writes
results.md / results.json. Targets are reported, never asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import mmap
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import fixture
import report
from util import (BENCH, CTFS, PY, PY_TORCH, cleanup_all, ctfs_mount, drop_caches,
                  fuse_mounts_under, gocryptfs_mount, log, run, summary, tree_files)

MiB = 1 << 20
PAGE = mmap.PAGESIZE
CTFS_V, PLAINFUSE_V, DISK_V, GOCRYPT_V = "ctfs (encrypted)", "plain FUSE (same daemon)", \
    "disk (no FUSE)", "gocryptfs"
REF_V = "reference cryptotensors"


# ---------------------------------------------------------------------------------------------
# Workloads (in this process; each returns bytes, seconds)
# ---------------------------------------------------------------------------------------------

def seq_read(root: Path, rel: list[str]) -> tuple[int, float]:
    """1 MiB reads into one page-aligned buffer, as dd, cp and fio read. Not a bytearray:
    where malloc puts one depends on the process's past (16 bytes past a page in a fresh
    process, 416 in a smoke run of this script), and on this VM's CPU the kernel's copy into a
    destination 1-31 bytes past a page boundary runs 4-6x slower (bench/copy_offsets.py), a
    reader cost that would crowd the daemon on 2 vCPUs, whatever is mounted."""
    buf = mmap.mmap(-1, MiB)
    mv = memoryview(buf)
    total = 0
    t0 = time.perf_counter()
    for r in rel:
        fd = os.open(root / r, os.O_RDONLY)
        try:
            while True:
                n = os.readv(fd, [mv])
                if n <= 0:
                    break
                total += n
        finally:
            os.close(fd)
    return total, time.perf_counter() - t0


def mmap_touch(root: Path, rel: list[str]) -> tuple[int, float]:
    """MAP_SHARED, PROT_READ; reads one byte of every page in order."""
    total, acc = 0, 0
    t0 = time.perf_counter()
    for r in rel:
        with open(root / r, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                continue
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                a = np.frombuffer(mm, dtype=np.uint8)
                acc += int(a[::PAGE].sum(dtype=np.uint64))
                del a
            finally:
                mm.close()
            total += size
    return total, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.a = args
        self.work = Path(args.work)
        self.mnt = self.work / "mnt"
        self.logdir = self.work / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.rep = 0  # the repeat under way
        self.results: dict = {"tests": {}, "repeat_of": {}, "daemon_hwm_kib": {}, "notes": [],
                              "skipped": []}
        self.failures: list[str] = []
        self.hwm: dict = {}        # (size label, test, variant) -> [KiB]

    # -- bookkeeping --------------------------------------------------------------------------
    def record(self, test, variant, phase, value):
        self.results["tests"].setdefault(test, {}).setdefault(variant, {}).setdefault(phase, []) \
            .append(value)
        # which repeat each sample is from: the report pairs variants repeat by repeat
        self.results["repeat_of"].setdefault(test, {}).setdefault(variant, {}) \
            .setdefault(phase, []).append(self.rep)

    def note_hwm(self, size, test, variant, m):
        if m is not None and m.kind == "ctfs":
            h = m.hwm_kib()
            if h is not None:
                self.hwm.setdefault((size, test, variant), []).append(h)

    def guarded(self, what, fn, *args):
        """Runs one measurement; a failure is recorded (and makes the exit code 1) but the
        other measurements go on."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001
            log(f"FAILED {what}: {e}")
            self.failures.append(f"{what}: {str(e).splitlines()[0] if str(e) else type(e)}")

    def mount(self, variant, model):
        """Starts the variant's daemon (if any); returns (root dir to read, Mount or None)."""
        if variant == CTFS_V:
            m = ctfs_mount(model["enc"], self.mnt / "ctfs", self.reader, self.logdir,
                           self.a.ctfs_arg)
        elif variant == PLAINFUSE_V:
            m = ctfs_mount(model["plain"], self.mnt / "plainfuse", self.reader, self.logdir,
                           self.a.ctfs_arg)
        elif variant == GOCRYPT_V:
            m = gocryptfs_mount(model["gocryptfs"], self.mnt / "gocryptfs", self.logdir)
        else:
            return model["plain"], None
        return m.mnt, m

    # -- (1) + (2) sequential read and mmap touch, cold then warm ----------------------------
    def cold_warm(self, test, fn, variant, model, size="main"):
        root, m = self.mount(variant, model)
        try:
            if m is not None:
                self.record("mount time", variant, "s", m.mount_seconds)
            drop_caches()
            for phase in ("cold", *["warm"] * self.a.warm_passes):
                cpu0 = m.cpu_seconds() if m is not None else None
                flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                nbytes, secs = fn(root, self.rel)
                if fn is mmap_touch:  # the faults this process took to map the model's pages
                    self.record(f"page faults: {test}", variant, phase,
                                resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt0)
                if nbytes != model["bytes"]:
                    raise RuntimeError(f"{test}/{variant}: read {nbytes} bytes, "
                                       f"expected {model['bytes']}")
                self.record(test, variant, phase, nbytes / secs / 1e9)
                cpu1 = m.cpu_seconds() if m is not None else None
                if cpu0 is not None and cpu1 is not None and phase == "cold":
                    self.record(f"daemon CPU: {test}", variant, phase, cpu1 - cpu0)
            self.note_hwm(size, test, variant, m)
        finally:
            if m is not None:
                m.close()

    # -- (3) fio random reads -----------------------------------------------------------------
    def fio(self, variant, model, bs):
        root, m = self.mount(variant, model)
        try:
            files = ":".join(str(root / r) for r in self.shards)
            drop_caches()
            out = run(["fio", "--name=randread", "--rw=randread", f"--bs={bs}", "--numjobs=4",
                       "--ioengine=psync", f"--filename={files}", "--readonly",
                       "--time_based", f"--runtime={self.a.fio_runtime}", "--group_reporting",
                       "--invalidate=1", "--output-format=json", "--randrepeat=0"],
                      timeout=self.a.fio_runtime + 120)
            j = json.loads(out.stdout[out.stdout.index("{"):])
            rd = j["jobs"][0]["read"]
            self.record(f"fio randread {bs}, 4 jobs", variant, "IOPS", rd["iops"])
            self.record(f"fio randread {bs}, 4 jobs", variant, "MB/s", rd["bw_bytes"] / 1e6)
            self.note_hwm("main", f"fio {bs}", variant, m)
        finally:
            if m is not None:
                m.close()

    # -- (4) load every tensor -----------------------------------------------------------------
    def st_load(self, variant, model, size="main", framework="np"):
        py, flags = (PY_TORCH, ["--pt"]) if framework == "pt" else (PY, [])
        if variant == REF_V:
            root, m = model["enc"], None
            argv = [py, BENCH / "load_st.py", *flags, "cryptotensors", root, self.reader]
        else:
            root, m = self.mount(variant, model)
            argv = [py, BENCH / "load_st.py", *flags, "safetensors", root]
        rss_test = "loader peak RSS" + (" (pt)" if framework == "pt" else "")
        try:
            drop_caches()
            for phase in ("cold", *["warm"] * self.a.warm_passes):
                out = run(argv, timeout=3600)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                self.record(f"safetensors load ({framework})", variant, phase, r["seconds"])
                self.record(rss_test, variant, phase, r["maxrss_kib"] / 1024)
                if framework == "np":
                    self.record("page faults: safetensors load (np)", variant, phase, r["minflt"])
            self.note_hwm(size, "safetensors load", variant, m)
        finally:
            if m is not None:
                m.close()

    # -- (5) transformers from_pretrained --------------------------------------------------------
    def hf_load(self, variant, llama):
        if variant == CTFS_V:
            m = ctfs_mount(llama["enc"], self.mnt / "ctfs", self.reader, self.logdir,
                           self.a.ctfs_arg)
            root = m.mnt
        else:
            m, root = None, llama["plain"]
        try:
            out = run([PY_TORCH, BENCH / "load_hf.py", root], timeout=3600)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            for phase in ("cold", "warm"):
                self.record("transformers from_pretrained", variant, phase, r[phase])
            self.record("transformers peak RSS", variant, "MiB", r["maxrss_kib"] / 1024)
            self.results.setdefault("hf_checksums", {}).setdefault(variant, []).append(r["checksum"])
            self.note_hwm("main", "transformers", variant, m)
        finally:
            if m is not None:
                m.close()

    # -- (7) ctfs encrypt vs cp -r ---------------------------------------------------------------
    def encrypt_vs_cp(self, model, which):
        out = self.work / "scratch" / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        seq_read(model["plain"], self.rel)          # warm source: measure the tool, not the disk
        if which == "ctfs encrypt":
            argv = [CTFS, "encrypt", model["plain"], out, "--key", self.full, "-q"]
        else:
            argv = ["cp", "-r", model["plain"], out]
        t0 = time.perf_counter()
        run(argv, timeout=3600)
        os.sync()
        secs = time.perf_counter() - t0
        self.record("write copy (warm src, incl. sync)", which, "GB/s", model["bytes"] / secs / 1e9)
        shutil.rmtree(out, ignore_errors=True)
        os.sync()

    # -- driver -----------------------------------------------------------------------------------
    def main(self) -> int:
        a = self.a
        self.full, self.reader = fixture.ensure_keys(self.work)
        have_gocryptfs = shutil.which("gocryptfs") is not None
        have_fio = shutil.which("fio") is not None
        if not have_gocryptfs:
            (self.failures if not a.smoke else self.results["skipped"]).append(
                "gocryptfs not installed: gocryptfs rows skipped")
        if not have_fio:
            (self.failures if not a.smoke else self.results["skipped"]).append(
                "fio not installed: random-read rows skipped")
        model = fixture.ensure_model(self.work, a.size_gib, self.full, have_gocryptfs, self.logdir)
        self.rel = [str(p.relative_to(model["plain"])) for p in tree_files(model["plain"])]
        self.shards = [r for r in self.rel if r.endswith(".safetensors")]
        llama = None
        if not a.no_transformers:
            if PY_TORCH.exists():
                llama = fixture.ensure_llama(self.work, a.smoke, self.full)
            else:
                (self.failures if not a.smoke else self.results["skipped"]).append(
                    f"{PY_TORCH} missing: transformers rows skipped")
        self.results["fixture"] = {
            "size_gib": a.size_gib, "bytes": model["bytes"], "files": len(self.rel),
            "shards": len(self.shards),
            "tensors": sum(_tensor_count(model["plain"] / s) for s in self.shards),
            "llama_bytes": llama["bytes"] if llama else None,
            "chunk_size": fixture.chunk_size_of(model["enc"] / self.shards[0])}
        variants = [CTFS_V, PLAINFUSE_V, DISK_V] + ([GOCRYPT_V] if have_gocryptfs else [])

        for rep in range(a.repeats):
            log(f"repeat {rep + 1}/{a.repeats}")
            self.rep = rep

            def order(vs):  # each repeat starts with another variant: no fixed-order bias
                k = rep % len(vs)
                return vs[k:] + vs[:k]
            for v in order(variants):
                self.guarded(f"seq read {v}", self.cold_warm, "sequential read 1 MiB", seq_read, v,
                             model)
            for v in order(variants):
                self.guarded(f"mmap {v}", self.cold_warm, "mmap touch every page", mmap_touch, v,
                             model)
            if have_fio:
                for bs in ("4k", "64k"):
                    for v in order([CTFS_V, PLAINFUSE_V]):
                        self.guarded(f"fio {bs} {v}", self.fio, v, model, bs)
            for v in order([CTFS_V, DISK_V, PLAINFUSE_V, REF_V]):
                self.guarded(f"st load {v}", self.st_load, v, model)
            if PY_TORCH.exists():
                for v in order([CTFS_V, DISK_V, PLAINFUSE_V, REF_V]):
                    self.guarded(f"st load pt {v}", self.st_load, v, model, "main", "pt")
            if llama:
                for v in order([CTFS_V, DISK_V]):
                    self.guarded(f"transformers {v}", self.hf_load, v, llama)
            for which in order(["ctfs encrypt", "cp -r"]):
                self.guarded(which, self.encrypt_vs_cp, model, which)

        # (6) second model size: daemon RSS only
        if a.second_size_gib:
            log(f"second model size {a.second_size_gib:g} GiB (daemon RSS)")
            m2 = fixture.ensure_model(self.work, a.second_size_gib, self.full, False, self.logdir)
            saved = self.rel
            self.rel = [str(p.relative_to(m2["plain"])) for p in tree_files(m2["plain"])]
            self.guarded("seq read (2nd size)", self.cold_warm_second, "sequential read 1 MiB",
                         seq_read, m2)
            self.guarded("mmap (2nd size)", self.cold_warm_second, "mmap touch every page",
                         mmap_touch, m2)
            self.guarded("st load (2nd size)", self.st_load_second, m2)
            self.rel = saved
            self.results["fixture"]["second_bytes"] = m2["bytes"]
        return 0

    @contextlib.contextmanager
    def timings_dropped(self):
        """The second model size is measured for the daemon's RSS only: its timings go."""
        keep = {k: self.results[k] for k in ("tests", "repeat_of")}
        self.results["tests"], self.results["repeat_of"] = {}, {}
        try:
            yield
        finally:
            self.results.update(keep)

    def cold_warm_second(self, test, fn, model):
        with self.timings_dropped():
            self.cold_warm(test, fn, CTFS_V, model, size="second")

    def st_load_second(self, model):
        with self.timings_dropped():
            self.st_load(CTFS_V, model, size="second")


def _tensor_count(path: Path) -> int:
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return sum(1 for k in json.loads(f.read(n)) if k != "__metadata__")


def machine_info() -> dict:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "mem_gib": round(int(mem) / 2**20, 1),
            "ctfs": str(CTFS),
            "gocryptfs": (run(["gocryptfs", "-version"], check=False).stdout.strip()
                          if shutil.which("gocryptfs") else None),
            "fio": (run(["fio", "--version"], check=False).stdout.strip()
                    if shutil.which("fio") else None)}


def parse(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-gib", type=float, default=2.0, help="model size (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of every measurement (default 3)")
    p.add_argument("--second-size-gib", type=float, default=None,
                   help="second model size for the daemon-RSS flatness check "
                        "(default: half of --size-gib; 0 = skip)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny fixture (~20 MiB), 1 repeat, short fio; asserts no timing; exits 0 "
                        "if every measurement ran")
    p.add_argument("--work", default="/var/tmp/ctfs-bench", help="fixtures and mountpoints")
    p.add_argument("--out", default=None, help="directory for results.md and results.json "
                                               "(default: WORK/results)")
    p.add_argument("--warm-passes", type=int, default=3,
                   help="warm passes after each cold one, same mount (default 3): warm timings "
                        "on this VM vary by up to 1.7x with no work in the daemon")
    p.add_argument("--fio-runtime", type=int, default=10, help="seconds per fio run (default 10)")
    p.add_argument("--no-transformers", action="store_true", help="skip from_pretrained")
    p.add_argument("--ctfs-arg", action="append", default=[],
                   help="extra argument for ctfs mount (repeatable), e.g. --ctfs-arg=--cache-mb=64")
    a = p.parse_args(argv)
    if a.repeats < 1 or a.warm_passes < 1:
        p.error("--repeats and --warm-passes must be at least 1")
    if a.smoke:
        a.size_gib, a.repeats, a.fio_runtime, a.warm_passes = 0.02, 1, 1, 1
        if a.second_size_gib is None:
            a.second_size_gib = 0.04
        a.work = a.work.rstrip("/") + "-smoke" if a.work == "/var/tmp/ctfs-bench" else a.work
    if a.second_size_gib is None:
        a.second_size_gib = a.size_gib / 2
    return a


def main(argv=None) -> int:
    a = parse(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("bench/run: needs root (drop_caches, FUSE mounts)", file=sys.stderr)
        return 2
    if not CTFS.exists():
        print(f"bench/run: {CTFS} not built", file=sys.stderr)
        return 2
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(a.out) if a.out else work / "results"
    out.mkdir(parents=True, exist_ok=True)
    lock = open(work / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"bench/run: another run holds {work}/.lock", file=sys.stderr)
        return 2

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    b = Bench(a)
    cleanup_all(b.mnt)                     # mounts left by an earlier, killed run
    t0 = time.monotonic()
    rc = 1
    try:
        rc = b.main()
    except KeyboardInterrupt:
        log("interrupted")
        b.failures.append("interrupted")
    except Exception as e:  # noqa: BLE001
        log(f"FAILED: {e}")
        b.failures.append(f"harness: {e}")
    finally:
        cleanup_all(b.mnt)
        left = fuse_mounts_under(b.mnt)
        if left:
            b.failures.append(f"mounts left behind: {left}")
    b.results["machine"] = machine_info()
    b.results["command"] = "bench/run " + " ".join(sys.argv[1:] if argv is None else argv)
    b.results["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    b.results["wall_seconds"] = time.monotonic() - t0
    b.results["failures"] = b.failures
    b.results["args"] = vars(a)
    md, js = report.build(b.results, b.hwm, a)
    (out / "results.md").write_text(md)
    (out / "results.json").write_text(json.dumps(js, indent=2, default=str))
    print(md)
    log(f"results in {out}/results.md and results.json ({b.results['wall_seconds']:.0f} s)")
    if b.failures:
        log("failures:\n  " + "\n  ".join(b.failures))
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
