# SPDX-License-Identifier: Apache-2.0
"""Builds a randomly initialised Llama (bf16) and saves it sharded; run with .venv-torch.
Usage: make_llama.py OUTDIR full|smoke   (full: ~0.5 GiB of weights; smoke: ~2 MiB)"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

out, kind = sys.argv[1], sys.argv[2]
if kind == "full":
    cfg = dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=18,
               num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048)
    shard = "200MB"
else:
    cfg = dict(vocab_size=1024, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
               num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128)
    shard = "1MB"
torch.manual_seed(0)
config = LlamaConfig(**cfg, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                     pad_token_id=0)
with torch.no_grad():
    model = LlamaForCausalLM(config).to(torch.bfloat16)
model.save_pretrained(out, max_shard_size=shard, safe_serialization=True)
n = sum(p.numel() for p in model.parameters())
print(f"saved {n} parameters ({n * 2 / 2**30:.3f} GiB bf16) to {out}")
