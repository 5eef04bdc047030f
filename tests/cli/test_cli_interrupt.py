# SPDX-License-Identifier: Apache-2.0
"""Ctrl-C / SIGTERM / SIGHUP during `ctfs encrypt` and `ctfs decrypt`: the command removes its
staging directory (DST.ctfs-tmp-XXXXXX), leaves nothing at DST (an existing DST stays as it
was), says so, and exits with 128 + the signal number. The signal is sent while the command is
writing: it is stopped once a staged file has data, and signalled only if its output is not yet
committed (signal_mid_work)."""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

SHARD_MIB = 96
SHARDS = 3


def tmp_leftovers(root):
    return sorted(str(p) for p in Path(root).rglob("*") if ".ctfs-tmp-" in p.name)


@pytest.fixture(scope="module")
def big(ctfs, keys, tmp_path_factory):
    """A model of SHARDS x SHARD_MIB MiB (plain and encrypted) and a single big file."""
    root = tmp_path_factory.mktemp("big")
    plain = root / "plain"
    plain.mkdir()
    n = SHARD_MIB << 18  # float32 elements
    for i in range(SHARDS):
        t = np.arange(n, dtype=np.float32) * (i + 1)
        save_file({f"w{i}": t, f"b{i}": t[:1000].copy()},
                  str(plain / f"model-{i:05d}-of-{SHARDS:05d}.safetensors"))
    (plain / "config.json").write_text('{"model_type": "llama"}')
    enc = root / "enc"
    ctfs("encrypt", plain, enc, "--key", keys / "k.jwk", "-q", check=0)
    return {"plain": plain, "enc": enc,
            "plain_file": plain / f"model-00000-of-{SHARDS:05d}.safetensors",
            "enc_file": enc / f"model-00000-of-{SHARDS:05d}.safetensors"}


def start(ctfs, argv, preexec=None):
    """Starts ctfs with the default action for the signals under test, as from a terminal:
    ignored dispositions are inherited, and the test run itself may run under nohup (SIGHUP
    ignored) or in the background of a shell (SIGINT ignored). `preexec` runs after that."""
    env = dict(os.environ)
    env.pop("CRYPTOTENSOR_KEYS", None)

    def setup():
        for signo in SIGNALS.values():
            signal.signal(signo, signal.SIG_DFL)
        if preexec is not None:
            preexec()

    return subprocess.Popen([ctfs.binary, *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=setup)


def wait_for_staged_data(p, dst, timeout=30):
    """Waits until a file below DST.ctfs-tmp-* holds data and returns that staging directory;
    None if the command ends first."""
    parent, stem = Path(dst).parent, Path(dst).name + ".ctfs-tmp-"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            return None
        for stage in parent.glob(stem + "*"):
            if any(f.is_file() and f.stat().st_size > 0 for f in stage.rglob("*")):
                return stage
        time.sleep(0.005)
    pytest.fail(f"no staged data under {parent}/{stem}* within {timeout}s")


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


def output_untouched(dst, existing):
    if existing is None:
        return not os.path.lexists(dst)
    return Path(dst).stat().st_size == len(existing) and Path(dst).read_bytes() == existing


def signal_mid_work(launch, dst, signo, existing=None, tries=5):
    """Starts the command with launch() and sends `signo` while it is writing: the command is
    stopped (SIGSTOP) once a staged file holds data, the signal is sent only if the staging
    directory is still there and DST untouched, then the command continues. The command can
    still finish in the moment between seeing the data and stopping it (a loaded machine); then
    its output must be complete, it is put back and the command runs again, up to `tries` times.
    Returns (popen, stage, stdout, stderr) of the interrupted run."""
    for _ in range(tries):
        p = launch()
        stage = wait_for_staged_data(p, dst)
        if stage is not None:
            p.send_signal(signal.SIGSTOP)
            if p.poll() is None and stage.exists() and output_untouched(dst, existing):
                p.send_signal(signo)
                p.send_signal(signal.SIGCONT)
                out, err = p.communicate(timeout=60)
                return p, stage, out, err
            p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, ("the command failed before it could be interrupted",
                                   p.returncode, out, err)
        assert os.path.exists(dst) and tmp_leftovers(Path(dst).parent) == []
        if Path(dst).is_dir():
            shutil.rmtree(dst)
        else:
            os.unlink(dst)
        if existing is not None:
            Path(dst).write_bytes(existing)
    pytest.fail(f"the command finished before the signal in all {tries} tries")


def interrupt_and_check(launch, dst, signame, existing=None):
    p, stage, out, err = signal_mid_work(launch, dst, SIGNALS[signame], existing)
    assert p.returncode == 128 + SIGNALS[signame], (p.returncode, out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ctfs: interrupted by {signame}: removed the partial output "), err
    assert str(stage) in lines[0], (stage, err)
    assert tmp_leftovers(Path(dst).parent) == []
    if existing is None:
        assert not Path(dst).exists(), f"{dst} exists after an interrupted run"
    else:
        assert Path(dst).read_bytes() == existing, f"{dst} changed by an interrupted run"


@pytest.mark.parametrize("mode,signame", [("dir", "SIGINT"), ("dir", "SIGTERM"),
                                          ("file", "SIGINT"), ("file", "SIGHUP")])
def test_interrupted_encrypt(ctfs, keys, big, tmp_path, mode, signame):
    src = big["plain"] if mode == "dir" else big["plain_file"]
    dst = tmp_path / ("enc" if mode == "dir" else "e.safetensors")
    interrupt_and_check(lambda: start(ctfs, ["encrypt", src, dst, "--key", keys / "k.jwk", "-q"]),
                        dst, signame)


@pytest.mark.parametrize("mode,signame", [("dir", "SIGINT"), ("file", "SIGTERM")])
def test_interrupted_decrypt(ctfs, keys, big, tmp_path, mode, signame):
    src = big["enc"] if mode == "dir" else big["enc_file"]
    dst = tmp_path / ("dec" if mode == "dir" else "d.safetensors")
    interrupt_and_check(lambda: start(ctfs, ["decrypt", src, dst, "--key", keys / "r.jwk", "-q"]),
                        dst, signame)


def test_interrupted_forced_encrypt_keeps_the_existing_output(ctfs, keys, big, tmp_path):
    dst = tmp_path / "e.safetensors"
    dst.write_bytes(b"the previous output")
    argv = ["encrypt", big["plain_file"], dst, "--key", keys / "k.jwk", "-q", "--force"]
    interrupt_and_check(lambda: start(ctfs, argv), dst, "SIGINT", existing=b"the previous output")


def test_ignored_sighup_stays_ignored(ctfs, keys, big, tmp_path):
    """Under nohup (SIGHUP ignored) a hangup neither stops the command nor removes anything."""
    dst = tmp_path / "e.safetensors"
    argv = ["encrypt", big["plain_file"], dst, "--key", keys / "k.jwk", "-q"]
    p, _, out, err = signal_mid_work(
        lambda: start(ctfs, argv, preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)),
        dst, signal.SIGHUP)
    assert p.returncode == 0, (p.returncode, out, err)
    assert dst.stat().st_size > big["plain_file"].stat().st_size
    assert tmp_leftovers(tmp_path) == []
