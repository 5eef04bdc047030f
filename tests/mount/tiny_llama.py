# SPDX-License-Identifier: Apache-2.0
"""A tiny, randomly initialised Llama causal LM for model-loading tests (CPU only, no hub).

make_tiny_model(dir) saves it as several safetensors shards plus model.safetensors.index.json,
so loading goes through the sharded path of transformers. logits(dir) loads a directory with
AutoModelForCausalLM.from_pretrained and returns the logits for a fixed input as numpy.

Standalone check (needs .venv-torch, see scripts/venv-torch.sh):
    .venv-torch/bin/python tests/mount/tiny_llama.py DIR
makes the model in DIR, loads it back and prints whether the logits round-trip exactly.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Never reach for the Hugging Face hub: everything here is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.utils import logging as _hf_logging  # noqa: E402

_hf_logging.disable_progress_bar()

# ~156k float32 parameters, ~620 KB of weights: with 200 KB shards that is 4 shards.
MAX_SHARD_SIZE = "200KB"
INDEX_NAME = "model.safetensors.index.json"

# Fixed input: batch of 2, 16 tokens each, all < vocab_size.
INPUT_IDS = [[(7 * i + 3) % 256 for i in range(16)], [(31 * i + 1) % 256 for i in range(16)]]


def tiny_config() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        # head_dim = 64 / 2 = 32: vLLM's CPU attention only takes head sizes 32, 64, 80, ...
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def build_model(seed: int = 0) -> LlamaForCausalLM:
    """The in-memory model, deterministic for a given seed."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_config()).to(dtype=torch.float32)
    return model.eval()


def model_logits(model) -> np.ndarray:
    """Logits (float32, shape [2, 16, 256]) of `model` on INPUT_IDS."""
    model.eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor(INPUT_IDS, dtype=torch.long))
    return out.logits.detach().to(torch.float32).cpu().numpy()


def make_tiny_model(dir, seed: int = 0) -> None:
    """Saves the tiny model in `dir` as ≥2 safetensors shards with model.safetensors.index.json."""
    d = Path(dir)
    d.mkdir(parents=True, exist_ok=True)
    build_model(seed).save_pretrained(d, max_shard_size=MAX_SHARD_SIZE, safe_serialization=True)
    shards = shard_files(d)
    if len(shards) < 2:
        raise RuntimeError(f"expected several shards in {d}, got {shards}")


def shard_files(dir) -> list[str]:
    """The shard file names listed in the directory's model.safetensors.index.json."""
    index = json.loads((Path(dir) / INDEX_NAME).read_text())
    return sorted(set(index["weight_map"].values()))


def logits(dir) -> np.ndarray:
    """Loads `dir` with AutoModelForCausalLM.from_pretrained on the CPU; logits on INPUT_IDS."""
    model = AutoModelForCausalLM.from_pretrained(
        str(dir), dtype=torch.float32, device_map=None, local_files_only=True
    )
    return model_logits(model)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} DIR", file=sys.stderr)
        return 2
    d = Path(argv[1])
    make_tiny_model(d)
    expected = model_logits(build_model(0))
    got = logits(d)
    shards = shard_files(d)
    exact = got.shape == expected.shape and np.array_equal(got, expected)
    print(f"torch {torch.__version__}, shards: {len(shards)} ({', '.join(shards)})")
    print(f"logits shape {got.shape}, max |diff| = {float(np.max(np.abs(got - expected))):.3g}")
    print("logits round-trip exactly: " + ("yes" if exact else "NO"))
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
