# SPDX-License-Identifier: Apache-2.0
"""Benchmark fixtures: a model-sized, LLM-shaped set of safetensors shards with random data,
its `ctfs encrypt`ed copy, a gocryptfs cipher directory holding the same plaintext, and a
transformers Llama (plain + encrypted). Each fixture has a stamp file; a fixture whose stamp
matches the wanted parameters is reused, anything else is rebuilt from scratch.

Tensor shapes follow a TinyLlama-1.1B-style decoder (vocab 32000, hidden 2048, MLP 5632,
4 KV heads): embedding and LM head 131 MB each, per layer q/o 8 MiB, k/v 1 MiB, gate/up/down
22 MiB, norms 8 KiB; the number of layers sets the size. numpy has no bfloat16 and the real
`safetensors` numpy loader refuses BF16, so the 2-byte weights are F16 (same bytes, same I/O);
norms are F32.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import struct
from pathlib import Path

import numpy as np

from util import CTFS, PY_TORCH, BENCH, drop_caches, gocryptfs_mount, log, run, tree_bytes

FIXTURE_VERSION = 3
GiB = 1 << 30


def _stamp(d: Path) -> Path:
    # Next to the directory, never inside it: served trees hold only the model files.
    return d.parent / f".{d.name}.bench-stamp.json"


def _write_stamp(d: Path, params: dict) -> None:
    _stamp(d).write_text(json.dumps(params, sort_keys=True))


def _stamp_ok(d: Path, params: dict) -> bool:
    try:
        return d.exists() and json.loads(_stamp(d).read_text()) == params
    except (OSError, ValueError):
        return False


def llm_tensors(size_gib: float) -> tuple[list[tuple[str, str, tuple]], dict]:
    """[(name, dtype, shape)] and a config dict for a decoder of about size_gib (at least)."""
    if size_gib >= 0.25:
        vocab, hidden, inter, kv = 32000, 2048, 5632, 256
    else:
        vocab, hidden, inter, kv = 8000, 512, 1408, 128
    fixed = 2 * vocab * hidden * 2 + hidden * 4
    per_layer = (2 * hidden * hidden + 2 * kv * hidden + 3 * inter * hidden) * 2 + 2 * hidden * 4
    layers = max(1, math.ceil((size_gib * GiB - fixed) / per_layer))
    t = [("model.embed_tokens.weight", "F16", (vocab, hidden)),
         ("model.norm.weight", "F32", (hidden,)),
         ("lm_head.weight", "F16", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        t += [(p + "input_layernorm.weight", "F32", (hidden,)),
              (p + "post_attention_layernorm.weight", "F32", (hidden,)),
              (p + "self_attn.q_proj.weight", "F16", (hidden, hidden)),
              (p + "self_attn.k_proj.weight", "F16", (kv, hidden)),
              (p + "self_attn.v_proj.weight", "F16", (kv, hidden)),
              (p + "self_attn.o_proj.weight", "F16", (hidden, hidden)),
              (p + "mlp.gate_proj.weight", "F16", (inter, hidden)),
              (p + "mlp.up_proj.weight", "F16", (inter, hidden)),
              (p + "mlp.down_proj.weight", "F16", (hidden, inter))]
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab,
              "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
              "num_attention_heads": hidden // 64, "num_key_value_heads": kv // 64,
              "torch_dtype": "float16"}
    return t, config


def _key_id(key: Path) -> str:
    return hashlib.sha256(key.read_bytes()).hexdigest()


def encrypt_default_chunk_size() -> int | None:
    """The chunk size `ctfs encrypt` writes by default (from its --help): part of the stamp of
    encrypted fixtures, so a changed default re-encrypts them."""
    m = re.search(r"--chunk-size[^\n]*\n?[^\n]*\(default (\d+)\)",
                  run([CTFS, "encrypt", "--help"]).stdout)
    return int(m.group(1)) if m else None


def chunk_size_of(enc_file: Path) -> int | None:
    """chunk_size of an encrypted file, from `ctfs inspect --json` (None: not chunked)."""
    return json.loads(run([CTFS, "inspect", "--json", enc_file]).stdout).get("chunk_size")


def _nbytes(dtype, shape):
    return int(np.prod(shape)) * (2 if dtype == "F16" else 4)


def _random_tensor(rng, dtype, shape) -> bytes:
    n = int(np.prod(shape))
    if dtype == "F16":
        a = np.frombuffer(rng.bytes(2 * n), dtype=np.uint16).copy()
        a &= 0xBFFF          # exponent < 31: every value finite, |x| < 2
        return a.tobytes()
    return (1.0 + 0.02 * rng.standard_normal(n, dtype=np.float32)).astype("<f4").tobytes()


def write_plain_model(d: Path, size_gib: float, seed: int = 1234) -> None:
    tensors, config = llm_tensors(size_gib)
    total = sum(_nbytes(dt, sh) for _, dt, sh in tensors)
    nshards = max(3, math.ceil(total / (512 << 20)))
    target = total / nshards
    shards, cur, cur_bytes = [], [], 0
    for t in tensors:
        cur.append(t)
        cur_bytes += _nbytes(t[1], t[2])
        if cur_bytes >= target and len(shards) < nshards - 1:
            shards.append(cur)
            cur, cur_bytes = [], 0
    if cur:
        shards.append(cur)
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True)
    weight_map = {}
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        shard = sorted(shard)
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for tname, dt, sh in shard:
            n = _nbytes(dt, sh)
            header[tname] = {"dtype": dt, "shape": list(sh), "data_offsets": [off, off + n]}
            off += n
            weight_map[tname] = name
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(d / name, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for tname, dt, sh in shard:
                f.write(_random_tensor(rng, dt, sh))
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2))
    (d / "config.json").write_text(json.dumps(config, indent=2))
    log(f"wrote {d}: {len(shards)} shards, {len(tensors)} tensors, {total / GiB:.3f} GiB")


def ensure_keys(work: Path) -> tuple[Path, Path]:
    kd = work / "keys"
    full, reader = kd / "full.jwk", kd / "reader.jwk"
    if not (full.exists() and reader.exists()):
        kd.mkdir(parents=True, exist_ok=True)
        for p in (full, reader):
            p.unlink(missing_ok=True)
        run([CTFS, "keygen", "--out", full, "--reader-out", reader])
    return full, reader


def ensure_model(work: Path, size_gib: float, full_key: Path, gocryptfs: bool,
                 logdir: Path) -> dict:
    """Plain + encrypted (+ gocryptfs) copies of the synthetic model; reused when stamped."""
    base = work / f"model-{size_gib:g}GiB"
    plain, enc, gcipher = base / "plain", base / "enc", base / "gocryptfs-cipher"
    params = {"v": FIXTURE_VERSION, "size_gib": size_gib, "seed": 1234}
    if not _stamp_ok(plain, params):
        log(f"creating model fixture {base} ({size_gib:g} GiB)")
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        write_plain_model(plain, size_gib)
        _write_stamp(plain, params)
    key_params = dict(params, key=_key_id(full_key), chunk_size=encrypt_default_chunk_size())
    if not _stamp_ok(enc, key_params):
        shutil.rmtree(enc, ignore_errors=True)
        log(f"encrypting {plain} -> {enc}")
        run([CTFS, "encrypt", plain, enc, "--key", full_key, "-q"], timeout=3600)
        _write_stamp(enc, key_params)
    out = {"dir": base, "plain": plain, "enc": enc, "bytes": tree_bytes(plain), "gocryptfs": None}
    if gocryptfs and shutil.which("gocryptfs"):
        if not _stamp_ok(gcipher, params):
            shutil.rmtree(gcipher, ignore_errors=True)
            gcipher.mkdir()
            log(f"creating gocryptfs copy {gcipher}")
            run(["gocryptfs", "-init", "-q", "-extpass", "echo pw", gcipher])
            m = gocryptfs_mount(gcipher, work / "mnt" / "gocryptfs", logdir)
            try:
                for f in sorted(plain.iterdir()):
                    if f.is_file():
                        shutil.copyfile(f, m.mnt / f.name)
                run(["sync"])
            finally:
                m.close()
            _write_stamp(gcipher, params)
        out["gocryptfs"] = gcipher
    return out


def ensure_llama(work: Path, smoke: bool, full_key: Path) -> dict | None:
    """A transformers Llama (bf16, sharded) made with .venv-torch, plus its encrypted copy."""
    if not PY_TORCH.exists():
        return None
    base = work / ("llama-smoke" if smoke else "llama-0.5GiB")
    plain, enc = base / "plain", base / "enc"
    params = {"v": FIXTURE_VERSION, "smoke": smoke, "key": _key_id(full_key),
              "chunk_size": encrypt_default_chunk_size()}
    if not _stamp_ok(enc, params):
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        log(f"creating transformers fixture {base}")
        run([PY_TORCH, BENCH / "make_llama.py", plain, "smoke" if smoke else "full"], timeout=1800)
        run([CTFS, "encrypt", plain, enc, "--key", full_key, "-q"], timeout=1800)
        _write_stamp(enc, params)
    return {"plain": plain, "enc": enc, "bytes": tree_bytes(plain)}
