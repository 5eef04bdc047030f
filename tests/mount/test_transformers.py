# SPDX-License-Identifier: Apache-2.0
"""Hugging Face transformers end to end: a tiny random Llama saved in several shards (so the
index file is used), encrypted with `ctfs encrypt`, mounted; `from_pretrained(MOUNTPOINT)` must
give logits identical to the original directory's. Runs in the torch venv
(scripts/venv-torch.sh) as a subprocess; CTFS_TORCH_PYTHON points at its python."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import tiny_llama
cmd = sys.argv[2]
if cmd == "make":
    tiny_llama.make_tiny_model(sys.argv[3], seed=0)
    print(json.dumps({"ok": True}))
elif cmd == "compare":
    a = tiny_llama.logits(sys.argv[3])
    b = tiny_llama.logits(sys.argv[4])
    print(json.dumps({"equal": bool(np.array_equal(a, b)), "shape": list(a.shape),
                      "max_abs_diff": float(np.max(np.abs(a - b))), "norm": float(np.abs(a).sum())}))
"""


@pytest.fixture(scope="module")
def torch_python():
    py = Path(os.environ.get("CTFS_TORCH_PYTHON", REPO / ".venv-torch" / "bin" / "python"))
    if not py.exists():
        msg = f"torch venv python not found at {py} (run scripts/venv-torch.sh)"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return str(py)


def drive(torch_python, *args, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    p = subprocess.run([torch_python, "-c", DRIVER, str(HERE), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def test_from_pretrained_through_mount(ctfs, keys, mounter, tmp_path, torch_python):
    plain, enc = tmp_path / "plain", tmp_path / "enc"
    drive(torch_python, "make", plain)
    shards = sorted(p.name for p in plain.glob("*.safetensors"))
    assert len(shards) >= 2 and (plain / "model.safetensors.index.json").exists(), shards
    ctfs.ok("encrypt", plain, enc, "--key", keys.full, "-q", timeout=120)
    for s in shards:
        assert ctfs.inspect(enc / s)["encrypted"], s
    m = mounter.mount(enc)
    for f in plain.iterdir():
        assert sha(m.mnt / f.name) == sha(f), f.name
    r = drive(torch_python, "compare", plain, m.mnt)
    assert r["equal"], r
    assert r["norm"] > 0 and r["shape"][0] == 2, r
    ctfs.ok("umount", m.mnt, timeout=30)
