# SPDX-License-Identifier: Apache-2.0
"""Ctrl-C / SIGTERM / SIGHUP during `ctfs encrypt` and `ctfs decrypt`: the command removes its
staging directory (DST.ctfs-tmp-XXXXXX), leaves nothing at DST (an existing DST stays as it
was), says so, and exits with 128 + the signal number. The signal is sent while the command is
writing (a staged file has data), on a model large enough that the work is not done by then."""
import os
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
    env = dict(os.environ)
    env.pop("CRYPTOTENSOR_KEYS", None)
    return subprocess.Popen([ctfs.binary, *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec)


def wait_for_staged_data(p, dst, timeout=30):
    """Waits until a file below DST.ctfs-tmp-* holds data; fails if the command ends first."""
    parent, stem = Path(dst).parent, Path(dst).name + ".ctfs-tmp-"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert p.poll() is None, ("the command ended before it could be interrupted "
                                  f"(rc {p.returncode}): {p.communicate()}")
        for stage in parent.glob(stem + "*"):
            if any(f.is_file() and f.stat().st_size > 0 for f in stage.rglob("*")):
                return stage
        time.sleep(0.005)
    pytest.fail(f"no staged data under {parent}/{stem}* within {timeout}s")


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


def interrupt_and_check(p, dst, signame, existing=None):
    stage = wait_for_staged_data(p, dst)
    p.send_signal(SIGNALS[signame])
    out, err = p.communicate(timeout=30)
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
    p = start(ctfs, ["encrypt", src, dst, "--key", keys / "k.jwk", "-q"])
    interrupt_and_check(p, dst, signame)


@pytest.mark.parametrize("mode,signame", [("dir", "SIGINT"), ("file", "SIGTERM")])
def test_interrupted_decrypt(ctfs, keys, big, tmp_path, mode, signame):
    src = big["enc"] if mode == "dir" else big["enc_file"]
    dst = tmp_path / ("dec" if mode == "dir" else "d.safetensors")
    p = start(ctfs, ["decrypt", src, dst, "--key", keys / "r.jwk", "-q"])
    interrupt_and_check(p, dst, signame)


def test_interrupted_forced_encrypt_keeps_the_existing_output(ctfs, keys, big, tmp_path):
    dst = tmp_path / "e.safetensors"
    dst.write_bytes(b"the previous output")
    p = start(ctfs, ["encrypt", big["plain_file"], dst, "--key", keys / "k.jwk", "-q", "--force"])
    interrupt_and_check(p, dst, "SIGINT", existing=b"the previous output")


def test_ignored_sighup_stays_ignored(ctfs, keys, big, tmp_path):
    """Under nohup (SIGHUP ignored) a hangup neither stops the command nor removes anything."""
    dst = tmp_path / "e.safetensors"
    p = start(ctfs, ["encrypt", big["plain_file"], dst, "--key", keys / "k.jwk", "-q"],
              preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    wait_for_staged_data(p, dst)
    p.send_signal(signal.SIGHUP)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, (p.returncode, out, err)
    assert dst.stat().st_size > big["plain_file"].stat().st_size
    assert tmp_leftovers(tmp_path) == []
