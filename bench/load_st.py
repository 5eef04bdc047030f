# SPDX-License-Identifier: Apache-2.0
"""Loads every tensor of every *.safetensors in a directory, keeping them all (like a model
load), and prints one JSON line: seconds, tensors, bytes, peak RSS (ru_maxrss, KiB), minor
page faults taken by the load (ru_minflt).
Run in a fresh process so ru_maxrss is this load's alone.

Usage: load_st.py [--pt] safetensors DIR
       load_st.py [--pt] cryptotensors DIR READER_JWK    (the reference package, same key)

--pt loads with framework="pt" (needs torch) and reads one byte of every page of every
tensor: safetensors hands out tensors over its memory map, so this is what makes it read them;
the reference package decrypts whole tensors into memory either way."""
import json
import resource
import sys
import time
from pathlib import Path

args = sys.argv[1:]
pt = args[0] == "--pt"
if pt:
    args = args[1:]
framework = "pt" if pt else "np"
mode, d = args[0], Path(args[1])
if mode == "cryptotensors":
    from cryptotensors import safe_open
    keys = json.loads(Path(args[2]).read_text())["keys"]
    config = {"enc_key": next(k for k in keys if k["kty"] == "oct"),
              "sign_key": next(k for k in keys if k["kty"] == "okp")}

    def opener(p):
        return safe_open(str(p), framework=framework, config=config)
else:
    from safetensors import safe_open

    def opener(p):
        return safe_open(str(p), framework=framework)

if pt:
    import torch
PAGE = 4096
keep, nbytes, touched = [], 0, 0
minflt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
t0 = time.perf_counter()
for shard in sorted(d.glob("*.safetensors")):
    with opener(shard) as f:
        for name in f.keys():
            a = f.get_tensor(name)
            if pt:
                flat = a.reshape(-1).view(torch.uint8)
                nbytes += flat.numel()
                if flat.numel():
                    touched += int(flat[::PAGE].sum())  # one byte per page
            else:
                nbytes += a.nbytes
            keep.append(a)
secs = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": secs, "tensors": len(keep), "bytes": nbytes,
                  "maxrss_kib": ru.ru_maxrss, "minflt": ru.ru_minflt - minflt0}))
