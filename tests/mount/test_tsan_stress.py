# SPDX-License-Identifier: Apache-2.0
"""Revocation under load with the daemon built with ThreadSanitizer ($CTFS_TSAN_BIN, a `ctfs`
from `scripts/build.sh build-tsan -DCTFS_SANITIZE=thread`).

Each cycle mounts an encrypted model (several files, chunk sizes 65521 B, 256 KiB and 2 MiB, a
format v1 file, a plain file) in the foreground, starts 16 reader processes (random and
sequential preads, O_DIRECT preads, MAP_SHARED and MAP_PRIVATE page touches, every byte
compared with the plaintext) and revokes the mount while they read (`ctfs umount --force` or
SIGTERM). Then: readers got only correct bytes (a read cut short by the revocation: a correct
prefix) or, after the revocation, errors (EACCES, EIO, ENOENT, ENOTCONN, ECONNABORTED: a
request in flight when the connection is torn down) or, for mapped pages, SIGBUS; the daemon
exited 0; no mount is left; and ThreadSanitizer reported nothing (its log files, named in the
failure, are empty).

Without $CTFS_TSAN_BIN the module is skipped with a visible reason, except under CI=1, where
it fails: tests/run_all.sh builds the TSan binary and sets the variable.
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import mount_util as M
from .conftest import Mounter  # the `mounter` fixture mounts with $CTFS_BIN, not the TSan build

READERS = 16
ALLOWED_ERRNOS = {"EACCES", "EIO", "ENOENT", "ENOTCONN", "ECONNABORTED"}
# Files of the model: name -> (MiB of tensor data, ctfs encrypt arguments; None: left plain).
FILES = {
    "model-00001-of-00003.safetensors": (12, ["--chunk-size", str(M.CHUNK)]),
    "model-00002-of-00003.safetensors": (10, ["--chunk-size", str(256 << 10)]),
    "model-00003-of-00003.safetensors": (8, ["--chunk-size", str(2 << 20)]),
    "v1.safetensors": (3, ["--format-version", "1"]),
    "plain_extra.safetensors": (1, None),
}
ADDR_NO_RANDOMIZE = 0x0040000


@pytest.fixture(scope="module")
def tsan_bin():
    path = os.environ.get("CTFS_TSAN_BIN")
    if not path:
        msg = ("CTFS_TSAN_BIN is not set (build with `bash scripts/build.sh build-tsan "
               "-DCTFS_SANITIZE=thread` and point it at build-tsan/cmd/ctfs)")
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    p = Path(path)
    if not p.is_file() or not os.access(p, os.X_OK):
        pytest.fail(f"CTFS_TSAN_BIN={path} is not an executable file", pytrace=False)
    if b"__tsan_init" not in p.read_bytes():
        pytest.fail(f"CTFS_TSAN_BIN={path} is not built with ThreadSanitizer", pytrace=False)
    return M.Ctfs(p)


@pytest.fixture(scope="module", autouse=True)
def no_aslr_if_needed():
    """gcc 12's TSan runtime aborts at start ("FATAL: ThreadSanitizer: unexpected memory
    mapping") when the kernel randomizes mmap addresses with more than 28 bits
    (vm.mmap_rnd_bits, 32 on some newer kernels): its shadow memory layout does not expect such
    addresses. Processes started without address randomization (`setarch -R`) run; so on such
    kernels this module turns randomization off for the programs it starts (the personality
    flag is inherited through exec) and restores it afterwards."""
    try:
        bits = int(Path("/proc/sys/vm/mmap_rnd_bits").read_text())
    except (OSError, ValueError):
        bits = 28
    if bits <= 28:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    old = libc.personality(0xFFFFFFFF)
    libc.personality(old | ADDR_NO_RANDOMIZE)
    try:
        yield
    finally:
        libc.personality(old)


@dataclasses.dataclass
class StressModel:
    plain: Path
    enc: Path
    files: list          # relative paths read by the stress readers
    edges: dict          # relative path -> offsets worth hitting (tensor and chunk edges)


@pytest.fixture(scope="module")
def stress_model(ctfs, keys, tmp_path_factory):
    """~34 MB: three shards at three chunk sizes, a format v1 file, a plain file, a config."""
    import numpy as np
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("tsan-model")
    plain, enc = root / "plain", root / "enc"
    plain.mkdir()
    enc.mkdir()
    rng = np.random.default_rng(1234)
    for i, (rel, (mib, enc_args)) in enumerate(FILES.items()):
        n = (mib << 20) // 4
        # Odd sizes: tensor edges fall inside chunks and pages.
        tensors = {"a.weight": rng.standard_normal(n - 1001 * (i + 1), dtype=np.float32),
                   "b.bias": rng.standard_normal(1001 * (i + 1) - 3).astype(np.float16),
                   "c.ids": rng.integers(0, 255, 4099 + i, dtype=np.uint8)}
        save_file(tensors, str(plain / rel), metadata={"format": "pt"})
        if enc_args is None:
            (enc / rel).write_bytes((plain / rel).read_bytes())
        else:
            ctfs.ok("encrypt", plain / rel, enc / rel, "--key", keys.full, "-q", *enc_args,
                    timeout=120)
    for d in (plain, enc):
        (d / "config.json").write_text('{"model_type": "llama"}')
    edges = {}
    for rel in FILES:
        chunk = M.crypto_chunk_size(enc / rel)
        edges[rel] = M.interesting_offsets(M.layout(plain / rel), chunk)
    return StressModel(plain, enc, list(FILES) + ["config.json"], edges)


def tsan_env(log_dir):
    # halt_on_error=0: report every race, keep serving (the test checks the logs at the end);
    # the exit status is then 66 if anything was reported. history_size=4: longer access
    # histories, so that the "previous access" stack of a report is not lost under load.
    return {"TSAN_OPTIONS": f"halt_on_error=0 second_deadlock_stack=1 history_size=4 "
                            f"log_path={log_dir}/tsan"}


def tsan_reports(log_dir):
    """(path, text) of every non-empty ThreadSanitizer log in log_dir."""
    out = []
    for p in sorted(Path(log_dir).glob("tsan*")):
        text = p.read_text(errors="replace")
        if text.strip():
            out.append((p, text))
    return out


def format_reports(reports, limit=30000):
    text = "\n".join(f"===== {p} =====\n{t}" for p, t in reports)
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text)} chars in all)"


class Reader:
    """One `probe.py stress_reader` child; its JSON progress lines go to a file."""

    def __init__(self, workdir, idx, args):
        self.idx, self.mode = idx, args["mode"]
        self.out_path = Path(workdir) / f"reader-{idx}.out"
        self.err_path = Path(workdir) / f"reader-{idx}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.p = subprocess.Popen([sys.executable, str(M.PROBE), "stress_reader",
                                       json.dumps(args)], stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=err, env=M.clean_env(), start_new_session=True)

    def last(self):
        lines = [l for l in self.out_path.read_text().splitlines() if l.strip()]
        for line in reversed(lines):
            try:
                return json.loads(line)
            except json.JSONDecodeError:  # a line cut by the process's death
                continue
        return None

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait()

    def describe(self):
        rc = self.p.poll()
        how = ("running" if rc is None else
               f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}")
        return (f"reader {self.idx} ({self.mode}, pid {self.p.pid}, {how}): {self.last()}; "
                f"stderr: {self.err_path.read_text(errors='replace')[-500:]}")


def reader_args(model, mnt, mode, seed, seq_len):
    rels = model.files
    return {"files": [str(mnt / r) for r in rels], "plains": [str(model.plain / r) for r in rels],
            "edges": [model.edges.get(r, []) for r in rels], "mode": mode, "seed": seed,
            "seconds": 60, "give_up": 30, "report_s": 0.2, "len": seq_len, "stride": 7}


def cache_stats(log_text):
    """(waits for a load in flight, prefetch jobs) from the daemon's exit summary, or None."""
    m = re.search(r"chunk cache: \d+ hits \((\d+) waited .*?(\d+) prefetch jobs", log_text)
    return (int(m.group(1)), int(m.group(2))) if m else None


MIXED = (["pread_random"] * 4 + ["pread_seq"] * 3 + ["direct"] +
         ["mmap_shared"] * 4 + ["mmap_private"] * 4)
# Large sequential reads of big-chunk files with few decrypt-ahead threads: readers keep
# catching up with chunks that are still being decrypted ahead of them and wait for them.
DECRYPT_AHEAD = ["pread_seq"] * 12 + ["mmap_shared"] * 2 + ["mmap_private"] * 2
CYCLES = {
    # name: (reader modes, sequential read length, extra mount arguments)
    "mixed": (MIXED, 1 << 20, []),
    "decrypt_ahead": (DECRYPT_AHEAD, 4 << 20,
                      ["--prefetch-threads", "1", "--decrypt-threads", "0", "--cache-mb", "64"]),
    # An access policy and audit log (config file); SIGHUPs reload the policy while readers run
    # (every open decided and audited, grants re-decided by the policy thread).
    "policy": (MIXED, 1 << 20, []),
}
POLICY_CONFIG = """\
audit: {{file: {audit}}}
policy:
  rules:
    - {{name: nobody, decision: deny, subject: {{uid: 4242}}}}
    - {{name: readers, decision: allow, subject: {{uid: 0}}, not_after: 2100-01-01T00:00:00Z}}
"""


# Each round reads with other seeds and revokes after a different time.
ROUND_DELAY_S = [0.5, 1.5]


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("round_", range(len(ROUND_DELAY_S)))
@pytest.mark.parametrize("revoke", ["umount_force", "sigterm"])
@pytest.mark.parametrize("cycle", list(CYCLES))
def test_revocation_under_tsan(tsan_bin, keys, stress_model, tmp_path, cycle, revoke, round_):
    modes, seq_len, mount_args = CYCLES[cycle]
    assert len(modes) == READERS
    log_dir = tmp_path / "tsan-logs"
    log_dir.mkdir()
    env = tsan_env(log_dir)
    mounter = Mounter(tsan_bin, keys, tmp_path)
    readers = []
    if cycle == "policy":
        cfg = tmp_path / "policy.yaml"
        cfg.write_text(POLICY_CONFIG.format(audit=tmp_path / "audit.jsonl"))
        mount_args = [*mount_args, "--config", cfg]
    try:
        p, m = mounter.foreground(stress_model.enc, args=mount_args, env=env)
        t_start = time.time()
        readers = [Reader(tmp_path, i, reader_args(stress_model, m.mnt, mode,
                                                   1000 * round_ + 77 * i + 1, seq_len))
                   for i, mode in enumerate(modes)]
        # Revoke mid-read: once every reader has done some reads and all are still reading.
        started = M.wait_until(lambda: all((r.last() or {}).get("ops", 0) > 0 for r in readers),
                               45, interval=0.1)
        if cycle == "policy":
            for _ in range(3):  # reloads race the readers' opens and reads
                p.send_signal(signal.SIGHUP)
                time.sleep(0.1)
        time.sleep(ROUND_DELAY_S[round_])
        early = [r.describe() for r in readers if r.p.poll() is not None]
        assert started and not early, (
            "readers did not all get going before the revocation:\n" +
            "\n".join(r.describe() for r in readers) + "\n" + m.log_tail() + "\n" +
            format_reports(tsan_reports(log_dir)))
        t_revoke = time.time()
        umount = None
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            if revoke == "umount_force":
                # In a thread: `ctfs umount` waits until the daemon is gone, and the daemon, our
                # child, stays a zombie (alive to kill(pid, 0)) until p.wait() below reaps it.
                umount = ex.submit(tsan_bin.run, "umount", "--force", m.mnt, env=env,
                                   timeout=60)
            else:
                p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"daemon {p.pid} still running 60 s after the revocation: "
                            f"{M.kernel_stack(p.pid)}\n{m.log_tail()}")
            t_exit = time.time()
            if umount is not None:
                r = umount.result()
                assert r.rc == 0, r.describe() + "\n" + m.log_tail()
        hung = []
        for rd in readers:
            try:
                rd.p.wait(max(1.0, t_exit + 20 - time.time()))
            except subprocess.TimeoutExpired:
                hung.append(rd.describe())
                rd.kill()
        left = M.mounts_at(m.mnt)
        log_text = m.log.read_text(errors="replace") if m.log.exists() else ""
        reports = tsan_reports(log_dir)

        problems = []
        if reports:
            problems.append(f"ThreadSanitizer reported (TSAN_OPTIONS={env['TSAN_OPTIONS']}):\n"
                            + format_reports(reports))
        if rc != 0:
            problems.append(f"daemon exit status {rc} (66: ThreadSanitizer reports)")
        if left:
            problems.append(f"mount left behind: {left}")
        if hung:
            problems.append("readers still blocked 20 s after the daemon exited:\n" +
                            "\n".join(hung))
        saw_revocation = 0
        for rd in readers:
            st, rc_r = rd.last(), rd.p.returncode
            if st is None:
                problems.append("no report: " + rd.describe())
                continue
            if st["n_mismatch"]:
                problems.append("WRONG BYTES: " + rd.describe())
            bad = set(st["errors"]) - ALLOWED_ERRNOS
            if bad:
                problems.append(f"unexpected errors {sorted(bad)}: " + rd.describe())
            if st["first_error_t"] is not None and st["first_error_t"] < t_revoke:
                problems.append("error before the revocation: " + rd.describe())
            if st["first_short_t"] is not None and st["first_short_t"] < t_revoke:
                problems.append("short read before the revocation: " + rd.describe())
            if rc_r == -signal.SIGBUS and rd.mode.startswith("mmap"):
                saw_revocation += 1  # the touch of a mapped page after revocation
            elif rc_r != 0:
                problems.append("reader ended badly: " + rd.describe())
            elif st["errors"]:
                saw_revocation += 1
        if saw_revocation == 0:
            problems.append("no reader saw the revocation (errors or SIGBUS): the test did not "
                            "revoke mid-read\n" + "\n".join(r.describe() for r in readers))
        stats = cache_stats(log_text)
        if cycle == "decrypt_ahead" and (stats is None or 0 in stats):
            problems.append("no read waited for a chunk being decrypted ahead, or no "
                            f"decrypt-ahead job ran (daemon summary (waits, jobs): {stats})")
        if cycle == "policy":
            audit = (tmp_path / "audit.jsonl").read_text()
            events = [json.loads(line)["event"] for line in audit.splitlines()]
            if events.count("reload") < 3 or "open" not in events or "unmount" not in events:
                problems.append(f"audit log lacks opens, 3 reloads or the unmount: {events}")
        assert not problems, "\n\n".join(problems) + "\n\n" + m.log_tail()
        ops = sum(r.last()["ops"] for r in readers)
        print(f"{cycle}/{revoke}/{round_}: {ops} reads compared by {READERS} readers; revoked "
              f"after {t_revoke - t_start:.1f} s; {saw_revocation} readers saw it; daemon "
              f"(waits, prefetch jobs): {stats}")
    finally:
        for rd in readers:
            rd.kill()
        for note in mounter.cleanup():
            print(f"teardown: {note}")
