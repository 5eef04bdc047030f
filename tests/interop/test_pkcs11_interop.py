# SPDX-License-Identifier: Apache-2.0
"""Token keys are the CryptoTensors format bit for bit: a master key imported into a SoftHSM2
token (`ctfs keygen --pkcs11 --import-key`, tests/softhsm_util.py) wraps data keys (CKM_AES_GCM,
12-byte nonce, no AAD, 16-byte tag) exactly as the reference `cryptotensors` package does with
the same key bytes, both ways:
  * ctfs encrypt --pkcs11 -> the reference reads every tensor with the JWK;
  * the reference writes with the JWK -> ctfs decrypt --pkcs11 gives the same tensors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from . import interop_util as U

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import softhsm_util as H  # noqa: E402


def tensors():
    rng = np.random.default_rng(7)
    return {"model.w": rng.standard_normal((33, 70)).astype(np.float32),
            "model.b": rng.standard_normal(5).astype(np.float16),
            "ids": np.arange(12, dtype=np.int64)}


@pytest.mark.parametrize("alg", ["aes256gcm", "aes128gcm"])
def test_token_key_interop_with_the_reference(ctfs, py_keys, tmp_path, alg):
    keys = py_keys(alg=alg, enc_kid="kek-" + alg)
    hsm = H.SoftHsm(tmp_path / "hsm")
    uri = hsm.uri(keys.enc_kid)
    r = ctfs.ok("keygen", "--pkcs11", uri, "--import-key", keys.path, "--out",
                tmp_path / "unused-sign.jwk", env=hsm.env)
    assert f'imported {alg} key "{keys.enc_kid}"' in r.stdout, r.stdout
    sign_only = tmp_path / "sign.jwk"
    U.write_jwks(sign_only, {"keys": [k for k in keys.jwks["keys"] if k["kty"] == "okp"]})

    specs = U.specs_from_np(tensors())
    plain = tmp_path / "plain.safetensors"
    U.stock_save_specs(specs, plain, metadata={"format": "pt"})

    # ctfs (token) -> reference (JWK).
    ours = tmp_path / "ours.safetensors"
    ctfs.ok("encrypt", plain, ours, "--key", sign_only, "--pkcs11", uri, "-q", env=hsm.env)
    ck, _ = U.crypto_meta(ours)
    assert ck["enc"]["kid"] == keys.enc_kid and ck["enc"]["alg"] == alg, ck
    U.assert_raw_equal(U.ref_load_raw(ours, keys.config), U.expected_raw(specs),
                       "reference reading a token-wrapped file")

    # reference (JWK) -> ctfs (token).
    theirs = tmp_path / "theirs.safetensors"
    U.ref_save_specs(specs, theirs, keys.config, metadata={"format": "pt"})
    out = tmp_path / "theirs.plain.safetensors"
    ctfs.ok("decrypt", theirs, out, "--key", sign_only, "--pkcs11", uri, "-q", env=hsm.env)
    U.assert_raw_equal(U.stock_load_raw(out), U.expected_raw(specs),
                       "ctfs unwrapping a reference file in the token")
    assert json.loads(json.dumps(U.stock_metadata(out))) == {"format": "pt"}
