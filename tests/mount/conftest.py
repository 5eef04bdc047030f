# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the real-mount suite: FUSE availability, a run lock, a hang watchdog, a final
leftover-mount check, keys, a plain model and its encrypted twin, and mount helpers.

The binary comes from $CTFS_BIN (default <repo>/build/cmd/ctfs); a missing binary or a binary
without `mount` is an error, never a skip. A missing or unusable /dev/fuse skips the suite with
a visible reason, except when $CI is set: then it fails (a CI run that mounts nothing must not
pass).

$CTFS_MOUNT_ARGS (split on whitespace) is appended to every `ctfs mount` the suite runs, to
repeat the suite under other daemon options (e.g. "--cache-mb 0 --threads 2").
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from . import mount_util as M

DEFAULT_TEST_TIMEOUT = 60
LOCK_FILE = "/tmp/ctfs-mount-tests.lock"
EXTRA_MOUNT_ARGS = shlex.split(os.environ.get("CTFS_MOUNT_ARGS", ""))
MOUNT_TIMEOUT = 30          # mounting the test models takes well under a second
_skip_reason = []
_foreign_mounts = []
_hung_mount = []            # first `ctfs mount` that timed out: later mounts fail fast


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "timeout_s(seconds): watchdog limit of one mount test (default 60)")


def pytest_terminal_summary(terminalreporter):
    if _skip_reason:
        terminalreporter.write_line(f"tests/mount: SKIPPED, {_skip_reason[0]} "
                                    f"(set CI=1 to make this an error)", yellow=True, bold=True)
    if _foreign_mounts:
        terminalreporter.write_line("tests/mount: fuse.ctfs mounts outside this run's temp dir "
                                    "(not ours, left alone): " + "; ".join(_foreign_mounts),
                                    yellow=True)
    if EXTRA_MOUNT_ARGS:
        terminalreporter.write_line(f"tests/mount: every mount ran with {EXTRA_MOUNT_ARGS}")
    if M.FAULT_MATRIX:
        terminalreporter.write_line("tests/mount: fault matrix (faults injected under the "
                                    "daemon's reads; ok/failed: reads right / EIO or SIGBUS)")
        for line in M.FAULT_MATRIX:
            terminalreporter.write_line("  " + line)


def fuse_problem():
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse cannot be opened ({e}); run as root or fix its mode"
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed (Debian: apt-get install fuse3)"
    return None


@dataclasses.dataclass
class Env:
    base: Path
    deadline_file: Path
    fired_file: Path


@pytest.fixture(scope="session", autouse=True)
def mount_env(tmp_path_factory):
    problem = fuse_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"FUSE is not usable: {problem}", pytrace=False)
        _skip_reason.append(problem)
        pytest.skip(f"FUSE is not usable: {problem}")

    # One run at a time: two suites mounting and killing daemons would confuse each other.
    lock = open(LOCK_FILE, "w")
    deadline = time.monotonic() + 120
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"another mount test run holds {LOCK_FILE} for > 120 s", pytrace=False)
            time.sleep(0.5)

    base = tmp_path_factory.getbasetemp()
    pre = {(e.mountpoint, e.source) for e in M.ctfs_mounts()}
    env = Env(base, base / "watchdog.deadline", base / "watchdog.fired")
    env.deadline_file.write_text("0")
    env.fired_file.write_text("")
    watchdog = subprocess.Popen(
        [sys.executable, str(M.PROBE), "watchdog",
         json.dumps({"parent": os.getpid(), "deadline_file": str(env.deadline_file),
                     "fired_file": str(env.fired_file), "prefix": str(base)})],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield env
    finally:
        watchdog.kill()
        watchdog.wait()
        # Every mountpoint of this run lies under `base`; what is elsewhere belongs to someone
        # else (e.g. a developer's own mount) and is only reported.
        # A new ctfs mount elsewhere is ours too if its daemon's command line names `base`
        # (a daemon that mounted at the wrong place).
        left = M.fuse_mounts_under(base)
        for e in M.ctfs_mounts():
            if (e.mountpoint, e.source) in pre or e in left:
                continue
            if e.pid and any(str(base) in a for a in M.proc_argv(e.pid)):
                left.append(e)
            else:
                _foreign_mounts.append(f"{e.source} on {e.mountpoint}")
        for e in left:
            M.cleanup_mount(e.mountpoint, [e.pid])
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        if left:
            pytest.fail("FUSE mounts were left behind (now cleaned up): " +
                        "; ".join(f"{e.source} on {e.mountpoint} ({e.fstype})" for e in left),
                        pytrace=False)


@pytest.fixture(autouse=True)
def hang_guard(request, mount_env):
    """Arms the watchdog for this test: past the limit it kills this run's daemons."""
    marker = request.node.get_closest_marker("timeout_s")
    limit = marker.args[0] if marker else DEFAULT_TEST_TIMEOUT
    mount_env.deadline_file.write_text(f"{time.time() + limit} {request.node.nodeid}")
    yield
    mount_env.deadline_file.write_text("0")
    fired = mount_env.fired_file.read_text()
    if fired:
        mount_env.fired_file.write_text("")
        pytest.fail(f"watchdog fired (test hung on the mount for > {limit} s): {fired}",
                    pytrace=False)


# ---------------------------------------------------------------------------------------------
# Binary and keys
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def ctfs():
    path = Path(os.environ.get("CTFS_BIN", M.REPO / "build" / "cmd" / "ctfs"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"ctfs binary not found or not executable: {path} "
                    f"(build it, or point CTFS_BIN at it)", pytrace=False)
    c = M.Ctfs(path)
    for sub in ("mount", "umount"):
        r = c.run(sub, "--help", timeout=30)
        if r.rc != 0:
            pytest.fail(f"{path} has no working `{sub}` subcommand yet:\n{r.describe()}",
                        pytrace=False)
    return c


@dataclasses.dataclass
class Keys:
    full: Path         # enc key + signing key (for ctfs encrypt)
    reader: Path       # enc key + verification key (what a mount needs)
    enc_kid: str
    sign_kid: str
    other: Path        # an unrelated full key set
    other_enc_kid: str
    other_sign_kid: str

    def reader_jwks(self):
        return json.loads(self.reader.read_text())


@pytest.fixture(scope="session")
def keys(ctfs, tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    ctfs.ok("keygen", "--out", d / "k.jwk", "--reader-out", d / "r.jwk")
    ctfs.ok("keygen", "--out", d / "other.jwk", "--enc-kid", "other-enc",
            "--sign-kid", "other-sign")
    kid = lambda p, kty: next(k["kid"] for k in json.loads(p.read_text())["keys"]
                              if k["kty"] == kty)
    return Keys(d / "k.jwk", d / "r.jwk", kid(d / "r.jwk", "oct"), kid(d / "r.jwk", "okp"),
                d / "other.jwk", "other-enc", "other-sign")


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Model:
    plain: Path                 # oracle: what the mount must show
    enc: Path                   # SRC of the mount
    chunk: int
    encrypted: list             # relative paths of the encrypted files
    _cache: dict = dataclasses.field(default_factory=dict)

    def files(self):
        return M.files_of(self.plain)

    def plain_bytes(self, rel):
        if rel not in self._cache:
            self._cache[rel] = (self.plain / rel).read_bytes()
        return self._cache[rel]


@pytest.fixture(scope="session")
def model(ctfs, keys, tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    plain, enc = root / "plain", root / "enc"
    M.build_plain_model(plain)
    ctfs.ok("encrypt", plain, enc, "--key", keys.full, "--chunk-size", M.CHUNK, "-q",
            timeout=120)
    M.add_after_encrypt(plain, enc)
    encrypted = []
    for rel in M.files_of(enc):
        if rel.endswith(".safetensors") and rel != "plain_extra.safetensors":
            info = ctfs.inspect(enc / rel)
            assert info["encrypted"] and info["chunk_size"] == M.CHUNK, rel  # guards the fixture
            encrypted.append(rel)
    assert len(encrypted) == 4, encrypted
    assert M.tree_listing(plain) == M.tree_listing(enc)
    return Model(plain, enc, M.CHUNK, encrypted)


@pytest.fixture(scope="session")
def small_model(ctfs, keys, tmp_path_factory):
    """One encrypted file plus a config: refused-mount tests need a single candidate file."""
    root = tmp_path_factory.mktemp("small")
    plain, enc = root / "plain", root / "enc"
    plain.mkdir()
    from safetensors.numpy import save_file
    import numpy as np
    rng = np.random.default_rng(3)
    save_file({"w": rng.standard_normal((50, 41), dtype=np.float32),
               "n": np.arange(11, dtype=np.int32)},
              str(plain / "weights.safetensors"), metadata={"format": "pt"})
    (plain / "config.json").write_text('{"model_type": "tiny"}')
    (plain / "sub").mkdir()
    (plain / "sub" / "notes.txt").write_text("small model\n")
    ctfs.ok("encrypt", plain, enc, "--key", keys.full, "--chunk-size", "1000", "-q")
    return Model(plain, enc, 1000, ["weights.safetensors"])


# ---------------------------------------------------------------------------------------------
# Mounting
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Mount:
    src: Path
    mnt: Path
    pid: int | None
    log: Path
    result: M.CmdResult

    def log_tail(self):
        return log_tail(self.log)


def log_tail(path, n=3000):
    try:
        return f"--- daemon log {path} ---\n" + Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return f"(no daemon log at {path})"


class Mounter:
    """Mounts for one test (or the session); `cleanup()` always lazily unmounts everything it
    touched and kills daemons that outlive their mount."""

    def __init__(self, ctfs, keys, workdir):
        self.ctfs, self.keys, self.dir = ctfs, keys, Path(workdir)
        self.mnts, self.procs = [], []
        self.pids = {}      # mountpoint -> daemon pid
        self.n = 0

    def new_mnt(self):
        self.n += 1
        mnt = self.dir / f"mnt{self.n}"
        mnt.mkdir()
        return mnt

    def key_args(self, keys):
        keys = [self.keys.reader] if keys is None else keys
        return [a for k in keys for a in ("--key", k)]

    def try_mount(self, src, mnt=None, keys=None, args=(), env=None, timeout=MOUNT_TIMEOUT):
        """Runs `ctfs mount` (background mode) and returns its CmdResult, whatever happened."""
        if _hung_mount:
            pytest.fail(f"not mounting: an earlier `ctfs mount` hung ({_hung_mount[0]})",
                        pytrace=False)
        mnt = self.new_mnt() if mnt is None else Path(mnt)
        self.mnts.append(mnt)
        stuck = []

        def diagnose(_popen):
            for pid in M.ctfs_processes_with_arg(str(mnt)):
                stuck.append(f"pid {pid} ({M.proc_state(pid)}): {M.kernel_stack(pid)}")

        r = self.ctfs.run("mount", src, mnt, *self.key_args(keys), *args,
                          *EXTRA_MOUNT_ARGS, env=env, timeout=timeout, on_timeout=diagnose)
        if r.timed_out:
            _hung_mount.append(f"{' '.join(r.argv)}: no answer in {timeout}s; mounted: "
                               f"{bool(M.mounts_at(mnt))}; ctfs processes: {stuck or 'none'}")
            pytest.fail(f"`ctfs mount` hung: {_hung_mount[0]}\n{r.describe()}", pytrace=False)
        return r

    def mount(self, src, keys=None, args=(), env=None, timeout=MOUNT_TIMEOUT) -> Mount:
        """Mounts src in the background; checks it is mounted and ready when the command returns."""
        mnt = self.new_mnt()
        log = self.dir / f"ctfs-{self.n}.log"
        r = self.try_mount(src, mnt, keys, ("--log-file", log, *args), env, timeout)
        assert r.rc == 0, f"ctfs mount failed\n{r.describe()}\n{log_tail(log)}"
        entries = M.mounts_at(mnt)
        assert len(entries) == 1, (f"`ctfs mount` returned 0 but {mnt} is not mounted (the "
                                   f"contract: return only once ready): {entries}\n"
                                   f"{r.describe()}\n{log_tail(log)}")
        e = entries[0]
        assert e.fstype == M.FSTYPE, f"mount type {e.fstype!r}, want {M.FSTYPE!r}"
        assert e.pid is not None, f"mount source {e.source!r}, want 'ctfs:<daemon pid>'"
        assert M.alive(e.pid) and M.is_ctfs_process(e.pid), \
            f"source names pid {e.pid}, which is not a live ctfs process ({M.proc_argv(e.pid)})"
        self.pids[mnt] = e.pid
        return Mount(Path(src), mnt, e.pid, log, r)

    def foreground(self, src, keys=None, args=(), timeout=MOUNT_TIMEOUT, env=None):
        """Starts `ctfs mount -f` (with `env` added to its environment) and waits until the
        mount shows up and answers; returns (Popen, Mount)."""
        if _hung_mount:
            pytest.fail(f"not mounting: an earlier `ctfs mount` hung ({_hung_mount[0]})",
                        pytrace=False)
        mnt = self.new_mnt()
        self.mnts.append(mnt)
        log = self.dir / f"ctfs-{self.n}.log"
        out = open(self.dir / f"fg-{self.n}.out", "w+")
        p = subprocess.Popen([self.ctfs.bin, "mount", src, mnt, "-f", *self.key_args(keys),
                              "--log-file", log, *map(str, args), *EXTRA_MOUNT_ARGS],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=M.clean_env(env), start_new_session=True)
        self.procs.append(p)
        ok = M.wait_until(lambda: M.mounts_at(mnt) or p.poll() is not None, timeout)
        out.seek(0)
        assert ok and M.mounts_at(mnt), (f"`ctfs mount -f` did not mount in {timeout}s "
                                         f"(exit {p.poll()}):\n{out.read()}\n{log_tail(log)}")
        e = M.mounts_at(mnt)[0]
        self.pids[mnt] = e.pid
        # Shown in /proc/mounts is not yet answering: stat it from a child, with a timeout.
        r = M.run([sys.executable, "-c", "import os, sys; os.stat(sys.argv[1])", mnt],
                  timeout=10)
        if r.rc != 0:
            stack = M.kernel_stack(e.pid) if e.pid else "?"
            _hung_mount.append(f"ctfs mount -f {src} {mnt}: mounted but a stat of the mountpoint "
                               f"got no answer in 10 s; daemon {e.pid}: {stack}")
            pytest.fail(_hung_mount[-1] + "\n" + r.describe(), pytrace=False)
        return p, Mount(Path(src), mnt, e.pid, log, None)

    def cleanup(self):
        notes = []
        for mnt in self.mnts:
            notes += M.cleanup_mount(mnt, [self.pids.get(mnt)])
        for p in self.procs:
            if p.poll() is None:
                notes.append(f"foreground daemon {p.pid} still running at teardown; killed")
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)
        for pid in self.pids.values():
            if M.alive(pid) and M.is_ctfs_process(pid):
                notes.append(f"daemon {pid} still alive at teardown; killed")
                M.kill_daemon(pid)
        return notes


@pytest.fixture
def mounter(ctfs, keys, tmp_path):
    m = Mounter(ctfs, keys, tmp_path)
    try:
        yield m
    finally:
        for note in m.cleanup():
            warnings.warn(f"mount teardown: {note}")


@pytest.fixture(scope="session")
def mounted(ctfs, keys, model, tmp_path_factory):
    """The model mounted once (background mode) for the read-only oracle tests."""
    m = Mounter(ctfs, keys, tmp_path_factory.mktemp("session-mount"))
    try:
        yield m.mount(model.enc)
    finally:
        for mnt in m.mnts:
            r = ctfs.run("umount", mnt, timeout=30)
            if r.rc != 0:
                warnings.warn(f"session mount: plain `ctfs umount` failed (a test left a file "
                              f"open or mapped?):\n{r.describe()}")
        for note in m.cleanup():
            warnings.warn(f"session mount teardown: {note}")
