# SPDX-License-Identifier: Apache-2.0
"""Shared helpers of the benchmark harness: commands, page cache, mounts, statistics.

Every mount started here is tracked in MOUNTS; `cleanup_all()` (called from a `finally` in
main.py) unmounts each one with `fusermount3 -u -z` and ends the daemons this harness started,
by pid.
"""
from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CTFS = Path(os.environ.get("CTFS_BIN", REPO / "build" / "cmd" / "ctfs"))
PY = REPO / ".venv" / "bin" / "python"
PY_TORCH = REPO / ".venv-torch" / "bin" / "python"
BENCH = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(argv, timeout=600, check=True, env=None, cwd=None) -> subprocess.CompletedProcess:
    argv = [str(a) for a in argv]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(argv)}\n"
                           f"{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def tree_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in tree_files(root))


# ---------------------------------------------------------------------------------------------
# Mounts
# ---------------------------------------------------------------------------------------------

def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts() -> list[tuple[str, str]]:
    """(mountpoint, fstype) of every line of /proc/mounts."""
    out = []
    for line in Path("/proc/mounts").read_text().splitlines():
        f = line.split()
        if len(f) >= 3:
            out.append((_unescape(f[1]), f[2]))
    return out


def is_mounted(mnt: Path) -> bool:
    m = str(Path(mnt).resolve())
    return any(p == m for p, _ in mounts())


def fuse_mounts_under(prefix: Path) -> list[str]:
    pre = str(Path(prefix).resolve())
    return [p for p, t in mounts() if t.startswith("fuse") and (p == pre or p.startswith(pre + "/"))]


class Mount:
    """A FUSE daemon started in the foreground by this harness (so its pid is known)."""

    def __init__(self, kind: str, argv: list, mnt: Path, logfile: Path):
        self.kind, self.mnt, self.argv = kind, Path(mnt), [str(a) for a in argv]
        self.mnt.mkdir(parents=True, exist_ok=True)
        if is_mounted(self.mnt):
            force_unmount(self.mnt)
        self.logf = open(logfile, "ab")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        MOUNTS.append(self)
        deadline = time.monotonic() + 60
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} daemon exited ({self.proc.returncode}) before mounting; "
                                   f"see {logfile}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind}: mount at {self.mnt} did not appear in 60 s")
            time.sleep(0.01)
        self.mount_seconds = time.monotonic() - self.t0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def hwm_kib(self) -> int | None:
        """VmHWM (peak resident set) of the daemon, KiB."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the daemon so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.proc.poll() is None or is_mounted(self.mnt):
            if is_mounted(self.mnt):
                r = run(["fusermount3", "-u", str(self.mnt)], check=False, timeout=30)
                if r.returncode != 0:
                    force_unmount(self.mnt)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        self.logf.close()
        if self in MOUNTS:
            MOUNTS.remove(self)


MOUNTS: list[Mount] = []


def force_unmount(mnt: Path) -> None:
    run(["fusermount3", "-u", "-z", str(mnt)], check=False, timeout=30)
    if is_mounted(mnt):
        run(["umount", "-l", str(mnt)], check=False, timeout=30)


def cleanup_all(mnt_root: Path | None = None) -> None:
    for m in list(MOUNTS):
        try:
            force_unmount(m.mnt)
            m.close()
        except Exception as e:  # keep cleaning the others
            log(f"cleanup of {m.mnt}: {e}")
            try:
                m.proc.kill()
            except Exception:
                pass
    if mnt_root is not None:
        for p in fuse_mounts_under(mnt_root):
            force_unmount(Path(p))


def ctfs_mount(src: Path, mnt: Path, key: Path, logdir: Path, extra=()) -> Mount:
    argv = [CTFS, "mount", src, mnt, "--key", key, "-f", "--log-level", "warn", *extra]
    return Mount("ctfs", argv, mnt, logdir / "ctfs-daemon.log")


def gocryptfs_mount(cipher: Path, mnt: Path, logdir: Path) -> Mount:
    argv = ["gocryptfs", "-fg", "-q", "-extpass", "echo pw", cipher, mnt]
    return Mount("gocryptfs", argv, mnt, logdir / "gocryptfs.log")


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

def summary(values: list[float]) -> dict:
    v = [x for x in values if x is not None]
    if not v:
        return {"n": 0, "median": None, "min": None, "max": None, "spread_pct": None, "values": []}
    med = statistics.median(v)
    return {"n": len(v), "median": med, "min": min(v), "max": max(v),
            "spread_pct": (100.0 * (max(v) - min(v)) / med) if med else None, "values": v}
