# SPDX-License-Identifier: Apache-2.0
"""Fixtures for CLI tests: the ctfs binary, a key pair, and a small plain model."""
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ctfs_bin():
    path = Path(os.environ.get("CTFS_BIN", REPO / "build" / "cmd" / "ctfs"))
    if not path.exists():
        pytest.fail(f"ctfs binary not found at {path}; build first or set CTFS_BIN")
    return str(path)


class Ctfs:
    def __init__(self, binary):
        self.binary = binary

    def __call__(self, *args, env=None, check=None):
        full_env = dict(os.environ)
        full_env.pop("CRYPTOTENSOR_KEYS", None)
        if env:
            full_env.update(env)
        p = subprocess.run([self.binary, *map(str, args)], capture_output=True, text=True,
                           env=full_env, timeout=120)
        if check is not None:
            assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
        return p


@pytest.fixture(scope="session")
def ctfs(ctfs_bin):
    return Ctfs(ctfs_bin)


@pytest.fixture(scope="session")
def keys(ctfs, tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    ctfs("keygen", "--out", d / "k.jwk", "--reader-out", d / "r.jwk", check=0)
    ctfs("keygen", "--out", d / "other.jwk", "--enc-kid", "other-enc", "--sign-kid", "other-sign",
         check=0)
    return d


def make_tensors():
    rng = np.random.default_rng(1234)
    return {
        "embed": rng.standard_normal((64, 33), dtype=np.float32),
        "bias": rng.standard_normal(17).astype(np.float16),
        "ids": np.arange(40, dtype=np.int64),
        "empty": np.zeros((0, 4), np.float32),
    }


@pytest.fixture()
def plain(tmp_path):
    p = tmp_path / "plain.safetensors"
    save_file(make_tensors(), str(p), metadata={"format": "pt"})
    return p


def read_header(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_header(path, header, data):
    """Writes `header` (a dict, serialized compactly and space-padded to 8) + data."""
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + data)
