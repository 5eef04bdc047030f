# SPDX-License-Identifier: Apache-2.0
"""AutoModelForCausalLM.from_pretrained(DIR) on the CPU (bf16), run with .venv-torch.

After the (slow) imports it drops the page cache (root), loads cold, frees the model, loads
again warm, and prints one JSON line: seconds of each load (from_pretrained plus touching every
weight, so lazily mapped storage is really read; imports excluded) and the peak RSS.
Usage: load_hf.py DIR"""
import gc
import json
import os
import resource
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()


def load_once():
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16,
                                                 device_map=None, local_files_only=True)
    chk = float(sum(p.detach().float().abs().sum() for p in model.parameters()))
    secs = time.perf_counter() - t0
    n = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    return secs, n, chk


os.sync()
with open("/proc/sys/vm/drop_caches", "w") as f:
    f.write("3\n")
cold, n, chk1 = load_once()
warm, _, chk2 = load_once()
print(json.dumps({"cold": cold, "warm": warm, "params": n, "checksum": chk1,
                  "same": chk1 == chk2,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
