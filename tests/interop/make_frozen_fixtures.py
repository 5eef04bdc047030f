#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generator of the FROZEN reference fixtures in tests/testdata/encrypted/.

Run once (see tests/testdata/encrypted/README.md). The committed outputs are golden vectors for the
C++ tests and must never be regenerated: DEKs and nonces are random, so a new run gives different
bytes. This script refuses to write into a directory that already has a MANIFEST.json unless
--force is given; use --out DIR to experiment elsewhere.

Every file is written with the reference `cryptotensors` wheel and the fixed public test key pair
of the reference repo (format doc §1.8); the plaintext each fixture decrypts to is written next to
it by stock `safetensors` (*.plain.safetensors). Before writing the manifest the script checks
each fixture by decrypting it with the reference and by verifying its signature with an
independent Python implementation of the canonical message (§3.1).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop_util as U  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "testdata" / "encrypted"

# Fixed public test key pair of the reference repo (integration-tests/utils/write_jwk.py).
ENC_K = "L+xl38kCEteXk+6Tm1mzu5JvFriVibzAsgpYX2WmAgA="
SIGN_D = "uTKTjQL6pX1Tqb7Hpor4A1s+TdgHReQEITZWWAf7DIc="
SIGN_X = "xkqFcGjXCBMk75q0259N1ggRJsqc+FTAiXMuKX72fd8="
ENC_KID, ENC_KID_CHACHA, SIGN_KID = "enc-key", "enc-key-chacha", "sign-key"

JWKS = {"keys": [
    {"kty": "oct", "alg": "aes256gcm", "kid": ENC_KID, "k": ENC_K},
    # Same key bytes under its own kid: a provider JWK's alg overrides the header alg (§2.5), so
    # a chacha20poly1305 file needs a JWK whose alg says so.
    {"kty": "oct", "alg": "chacha20poly1305", "kid": ENC_KID_CHACHA, "k": ENC_K},
    {"kty": "okp", "alg": "ed25519", "kid": SIGN_KID, "x": SIGN_X, "d": SIGN_D},
]}
SIGN_KEY = {"kty": "okp", "alg": "ed25519", "kid": SIGN_KID, "x": SIGN_X, "d": SIGN_D}


def enc_key(alg, kid):
    return {"kty": "oct", "alg": alg, "kid": kid, "k": ENC_K}


def _spec(dtype, shape, data: bytes):
    return {"dtype": dtype, "shape": list(shape), "data": data}


def base_specs():
    """Deterministic plaintext. Sizes chosen around chunk_size 64 (see README)."""
    embed = (np.arange(35, dtype=np.float32) * 0.25 - 3.0).reshape(5, 7)     # 140 B: 64+64+12
    proj = (np.arange(24, dtype=np.float32) / 7.0).reshape(4, 6)             # 96 B: 64+32
    bias = np.linspace(-1, 1, 8).astype(np.float16)                          # 16 B
    f32 = (np.arange(10, dtype=np.float32) * 0.5 - 2.0)
    scale_bf16 = (f32.view(np.uint32) >> 16).astype(np.uint16).tobytes()     # 20 B, exact bf16
    ids = np.array([1, -2, 1 << 40], dtype=np.int64)                          # 24 B
    mask = np.array([1, 0, 1, 1, 0], dtype=np.bool_)                          # 5 B
    q = np.arange(-4, 5, dtype=np.int8)                                       # 9 B
    block = np.arange(128, dtype=np.uint8)                                    # 128 B: 2 full chunks
    row = (255 - np.arange(64)).astype(np.uint8)                              # 64 B: 1 full chunk
    return {
        "embed": U.spec_from_np(embed),
        "proj": U.spec_from_np(proj),
        "bias": U.spec_from_np(bias),
        "scale": _spec("bfloat16", [10], scale_bf16),
        "ids": U.spec_from_np(ids),
        "mask": U.spec_from_np(mask),
        "q": U.spec_from_np(q),
        "block": U.spec_from_np(block),
        "row": U.spec_from_np(row),
        "empty": _spec("float32", [0], b""),
    }


def ties_specs():
    """Several zero-size tensors at one data offset (§3.1 tie-break: dtype desc, then name)."""
    return {
        "w": U.spec_from_np(np.arange(6, dtype=np.float32)),
        "z_f32_a": _spec("float32", [0], b""),
        "z_f32_b": _spec("float32", [3, 0], b""),
        "z_f16": _spec("float16", [0, 2], b""),
        "z_i8": _spec("int8", [0], b""),
        "z_bool": _spec("bool", [0], b""),
        "tail": U.spec_from_np(np.arange(5, dtype=np.int8)),
    }


def escapes_specs():
    return {
        "caf\u00e9.weight": U.spec_from_np(np.arange(12, dtype=np.float32)),
        "a/b\"c\\d": U.spec_from_np(np.arange(3, dtype=np.int16)),
    }


ESCAPES_META = {
    "format": "pt",
    "description": "quote \" backslash \\ slash / tab \t newline \n bell \x07 del \x7f",
    "unicode": "\u00fcn\u00efc\u00f6de \u4e2d\u6587 \U0001F600",
}

FIXTURES = [
    # name, specs, metadata, config extras, enc kid, alg, encrypted tensor list (None = all)
    ("ref_v2_aes256", base_specs, {"format": "pt"},
     {"version": "2", "chunk_size": 64}, ENC_KID, "aes256gcm", None),
    ("ref_v1_aes256", base_specs, {"format": "pt"},
     {"version": "1"}, ENC_KID, "aes256gcm", None),
    ("ref_v2_chacha_partial", base_specs, {"format": "pt"},
     {"version": "2", "chunk_size": 48}, ENC_KID_CHACHA, "chacha20poly1305",
     ["embed", "scale", "block", "empty"]),
    ("ref_v2_zero_ties", ties_specs, {"format": "pt"},
     {"version": "2", "chunk_size": 16}, ENC_KID, "aes256gcm", None),
    ("ref_v2_escapes", escapes_specs, ESCAPES_META,
     {"version": "2", "chunk_size": 20}, ENC_KID, "aes256gcm", None),
]


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def reference_decrypts(path, specs, config, tries):
    """Reference round trip. Files with tied zero-size tensors verify only when the reference's
    HashMap order happens to match the writer's (§3.1), so allow retries there."""
    import cryptotensors

    last = None
    for _ in range(tries):
        try:
            got = U.ref_load_raw(path, config)
            U.assert_raw_equal(got, U.expected_raw(specs), f"reference decrypt of {path.name}")
            return
        except cryptotensors.SafetensorError as e:
            last = e
    raise SystemExit(f"reference cannot read back {path}: {last}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="overwrite an existing fixture set")
    args = ap.parse_args()

    import cryptotensors
    import safetensors

    out: Path = args.out
    if (out / "MANIFEST.json").exists() and not args.force:
        raise SystemExit(f"{out} already holds frozen fixtures; they must not be regenerated "
                         "(use --out DIR to experiment)")
    out.mkdir(parents=True, exist_ok=True)
    assert base64.b64decode(SIGN_X) == U.ed25519_public_from_seed(base64.b64decode(SIGN_D))

    keys_path = U.write_jwks(out / "keys.jwk", JWKS)
    manifest = {
        "generator": "tests/interop/make_frozen_fixtures.py",
        "cryptotensors": cryptotensors.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "keys": "keys.jwk",
        "note": "FROZEN: never regenerate. keys.jwk must be chmod 0600 before use (git drops it).",
        "fixtures": {},
        "sha256": {},
    }
    for name, make_specs, meta, extra, kid, alg, selected in FIXTURES:
        specs = make_specs()
        enc_path, plain_path = out / f"{name}.safetensors", out / f"{name}.plain.safetensors"
        config = {"enc_key": enc_key(alg, kid), "sign_key": dict(SIGN_KEY), **extra}
        if selected is not None:
            config["tensors"] = selected
        U.ref_save_specs(specs, enc_path, config=config, metadata=meta)
        U.stock_save_specs(specs, plain_path, metadata=meta)

        ck, enc = U.crypto_meta(enc_path)
        encrypted = sorted(enc)
        assert encrypted == sorted(selected if selected is not None else specs), name
        assert ck["enc"]["alg"] == alg and ck["enc"]["kid"] == kid
        if not U.verify_signature_independently(enc_path, SIGN_X):
            raise SystemExit(f"{name}: independent canonical-message check failed (§3.1)")
        read_cfg = {"enc_key": enc_key(alg, kid), "sign_key": dict(SIGN_KEY)}
        reference_decrypts(enc_path, specs, read_cfg, tries=1000 if name.endswith("ties") else 1)
        assert U.raw_tensors(plain_path) == U.expected_raw(specs)
        assert U.user_metadata(enc_path) == meta and U.user_metadata(plain_path) == meta
        for p in (enc_path, plain_path):
            if p.stat().st_size >= 16 * 1024:
                raise SystemExit(f"{p} is {p.stat().st_size} bytes, over 16 KiB")

        manifest["fixtures"][enc_path.name] = {
            "plain": plain_path.name,
            "version": ck["version"],
            "chunk_size": ck.get("chunk_size"),
            "alg": alg,
            "enc_kid": kid,
            "sign_kid": SIGN_KID,
            "encrypted": encrypted,
            "tensors": {n: {"dtype": U.HEADER_DTYPE[s["dtype"]], "shape": s["shape"],
                            "bytes": len(s["data"])} for n, s in specs.items()},
            "metadata": meta,
        }
    for p in sorted(out.iterdir()):
        if p.is_file() and p.name not in ("MANIFEST.json", "README.md"):
            manifest["sha256"][p.name] = sha256(p)
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    os.chmod(keys_path, 0o600)
    print(f"wrote {len(FIXTURES)} fixtures to {out}")


if __name__ == "__main__":
    main()
