# SPDX-License-Identifier: Apache-2.0
"""Loads every tensor of a model directory and compares it with the plain original.
Usage: demo_load.py reference|plain PLAIN_DIR OTHER_DIR READER_JWK
  reference: OTHER_DIR is encrypted; load with cryptotensors.safe_open and the reader key.
  plain:     OTHER_DIR is plain safetensors; load with stock safetensors (mmap)."""
import json
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open as plain_open

mode, plain_dir, other_dir, jwk = sys.argv[1:5]
keys = json.loads(Path(jwk).read_text())["keys"]
config = {"enc_key": next(k for k in keys if k["kty"] == "oct"),
          "sign_key": next(k for k in keys if k["kty"] == "okp")}
n = 0
for shard in sorted(Path(plain_dir).glob("*.safetensors")):
    other = Path(other_dir) / shard.name
    if mode == "reference":
        from cryptotensors import safe_open as ref_open
        handle = ref_open(str(other), framework="np", config=config)
    else:
        handle = plain_open(str(other), framework="np")
    with plain_open(str(shard), framework="np") as p, handle as o:
        assert sorted(p.keys()) == sorted(o.keys()), shard
        for name in p.keys():
            assert np.array_equal(p.get_tensor(name), o.get_tensor(name)), name
            n += 1
print(f"{mode}: {n} tensors equal to the original")
