# SPDX-License-Identifier: Apache-2.0
"""Writes a small random 'LLM-shaped' model directory: two safetensors shards, an index and a
config. Usage: make_demo_model.py OUT_DIR"""
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

out = Path(sys.argv[1])
out.mkdir(parents=True)
rng = np.random.default_rng(0)
hidden, vocab, layers = 256, 1000, 2
tensors = {"model.embed_tokens.weight": rng.standard_normal((vocab, hidden), np.float32)}
for i in range(layers):
    p = f"model.layers.{i}."
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        tensors[p + f"self_attn.{name}.weight"] = rng.standard_normal((hidden, hidden), np.float32)
    tensors[p + "mlp.up_proj.weight"] = rng.standard_normal((4 * hidden, hidden), np.float32)
    tensors[p + "mlp.down_proj.weight"] = rng.standard_normal((hidden, 4 * hidden), np.float32)
    tensors[p + "input_layernorm.weight"] = np.ones(hidden, np.float16)
tensors["lm_head.weight"] = rng.standard_normal((vocab, hidden), np.float32)
names = sorted(tensors)
shards = [names[: len(names) // 2], names[len(names) // 2:]]
weight_map = {}
for i, shard in enumerate(shards, 1):
    fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
    save_file({n: tensors[n] for n in shard}, str(out / fname), metadata={"format": "pt"})
    weight_map.update({n: fname for n in shard})
(out / "model.safetensors.index.json").write_text(
    json.dumps({"metadata": {"total_size": sum(t.nbytes for t in tensors.values())},
                "weight_map": weight_map}, indent=2))
(out / "config.json").write_text(json.dumps({"model_type": "demo", "hidden_size": hidden}))
print(f"wrote {len(tensors)} tensors in {len(shards)} shards to {out}")
