# SPDX-License-Identifier: Apache-2.0
"""AutoModelForCausalLM.from_pretrained(DIR) on the CPU (bf16); prints one JSON line with the
seconds of from_pretrained alone (imports excluded) and the peak RSS. Run with .venv-torch.
Usage: load_hf.py DIR"""
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
t0 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16, device_map=None,
                                             local_files_only=True)
secs = time.perf_counter() - t0
n = sum(p.numel() for p in model.parameters())
# Touch the weights so lazily mapped storage (if any) is really read.
chk = float(sum(p.detach().float().abs().sum() for p in model.parameters()))
print(json.dumps({"seconds": secs, "params": n, "checksum": chk,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
