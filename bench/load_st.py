# SPDX-License-Identifier: Apache-2.0
"""Loads every tensor of every *.safetensors in a directory, keeping them all (like a model
load), and prints one JSON line: seconds, tensors, bytes, peak RSS (ru_maxrss, KiB).
Run in a fresh process so ru_maxrss is this load's alone.

Usage: load_st.py safetensors DIR
       load_st.py cryptotensors DIR READER_JWK    (the reference package, same key)"""
import json
import resource
import sys
import time
from pathlib import Path

mode, d = sys.argv[1], Path(sys.argv[2])
if mode == "cryptotensors":
    from cryptotensors import safe_open
    keys = json.loads(Path(sys.argv[3]).read_text())["keys"]
    config = {"enc_key": next(k for k in keys if k["kty"] == "oct"),
              "sign_key": next(k for k in keys if k["kty"] == "okp")}

    def opener(p):
        return safe_open(str(p), framework="np", config=config)
else:
    from safetensors import safe_open

    def opener(p):
        return safe_open(str(p), framework="np")

keep, nbytes = [], 0
t0 = time.perf_counter()
for shard in sorted(d.glob("*.safetensors")):
    with opener(shard) as f:
        for name in f.keys():
            a = f.get_tensor(name)
            nbytes += a.nbytes
            keep.append(a)
secs = time.perf_counter() - t0
print(json.dumps({"seconds": secs, "tensors": len(keep), "bytes": nbytes,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
