# SPDX-License-Identifier: Apache-2.0
"""Files written by the reference `cryptotensors` wheel, read by ctfs (verify, decrypt, inspect).

Keys are generated in Python (independent of `ctfs keygen`) and handed to ctfs as JWK Set files,
through CRYPTOTENSOR_KEYS, or through a file:// jku written into the header by the reference.
Decrypted output is read with stock `safetensors` and compared with what was saved.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from cryptotensors.numpy import save_file as ref_save_np

from . import interop_util as U

ALGS = ["aes256gcm", "aes128gcm", "chacha20poly1305"]
DEFAULT_CHUNK = 2097152
DEFAULT_POLICY = "package model\nallow = true"
META = {"format": "pt"}


def mixed_tensors(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "model.embed.weight": rng.standard_normal((3, 1000)).astype(np.float32),  # 12000 B
        "model.norm.weight": rng.standard_normal(17).astype(np.float16),
        "model.lm_head.bias": rng.standard_normal(5).astype(np.float32),
        "quant.zeros": rng.integers(-128, 127, size=(7, 3), dtype=np.int8),
        "pos.ids": np.arange(9, dtype=np.int64) * 1234567891011,
        "mask": rng.integers(0, 2, size=(2, 5)).astype(np.bool_),
        "scalar": np.array(3.5, dtype=np.float32),                                # shape []
    }


def check_ctfs_reads(ctfs, tmp_path, path, specs, key_args, *, version, chunk_size, alg,
                     encrypted, enc_kid, sign_kid, arrays=None, env=None, metadata=META):
    """verify + decrypt + inspect of a reference-written encrypted file, checked against `specs`."""
    # The reference wrote what we think it wrote (guards the test itself).
    ck, enc = U.crypto_meta(path)
    assert ck is not None and set(enc) == set(encrypted)

    ctfs.ok("verify", path, *key_args, env=env)

    out = tmp_path / (path.stem + ".decrypted.safetensors")
    ctfs.ok("decrypt", path, out, *key_args, env=env)
    U.assert_raw_equal(U.stock_load_raw(out), U.expected_raw(specs), f"decrypt {path.name}")
    assert U.stock_metadata(out) == metadata, "user metadata must survive, reserved keys must go"
    _, h, _, _ = U.read_header(out)
    assert not any(k in (h.get("__metadata__") or {}) for k in U.RESERVED_KEYS)
    if arrays:
        from safetensors import safe_open as stock_open
        with stock_open(str(out), framework="np") as f:
            for name, arr in arrays.items():
                got = f.get_tensor(name)
                assert U.arrays_equal(got, arr), \
                    f"{name}: got {got.dtype}{got.shape}, want {arr.dtype}{arr.shape} (or values differ)"

    info = ctfs.inspect(path)  # no keys needed
    assert info["encrypted"] is True
    assert info["version"] == version
    assert info["chunk_size"] == (chunk_size if version == "2" else None)
    assert info["enc"]["alg"] == alg and info["enc"]["kty"] == "oct" and info["enc"]["kid"] == enc_kid
    assert info["sign"]["alg"] == "ed25519" and info["sign"]["kty"] == "okp"
    assert info["sign"]["kid"] == sign_kid
    assert info["policy"] == {"local": DEFAULT_POLICY, "remote": DEFAULT_POLICY}
    assert info["metadata"] == (metadata or {})
    _, hdr, _, _ = U.read_header(path)
    by_name = {t["name"]: t for t in info["tensors"]}
    assert set(by_name) == set(specs)
    for name, t in by_name.items():
        assert t["dtype"] == hdr[name]["dtype"], name
        assert list(t["shape"]) == hdr[name]["shape"], name
        assert list(t["data_offsets"]) == hdr[name]["data_offsets"], name
        assert t["encrypted"] is (name in encrypted), name

    plain_info = ctfs.inspect(out)
    assert plain_info["encrypted"] is False
    assert not any(t["encrypted"] for t in plain_info["tensors"])
    return out


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("version", ["1", "2"])
def test_versions_and_algorithms(ctfs, py_keys, tmp_path, version, alg):
    keys = py_keys(alg=alg, enc_kid=f"enc-{alg}", sign_kid="sign-x")
    arrays = mixed_tensors(seed=len(alg) + int(version))
    path = tmp_path / f"ref_v{version}_{alg}.safetensors"
    cfg = {**keys.config, "version": version}
    if version == "2":
        cfg["chunk_size"] = 4097  # 12000-byte tensor: 3 chunks, short last one
    ref_save_np(arrays, str(path), metadata=META, config=cfg)
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays), ctfs.key_args(keys),
                     version=version, chunk_size=4097, alg=alg, encrypted=set(arrays),
                     enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, arrays=arrays)


@pytest.mark.parametrize("version", ["1", "2"])
def test_partially_encrypted(ctfs, py_keys, tmp_path, version):
    keys = py_keys()
    arrays = mixed_tensors(seed=7)
    selected = ["model.embed.weight", "mask", "no.such.tensor"]  # unknown names are ignored
    path = tmp_path / f"ref_partial_v{version}.safetensors"
    cfg = {**keys.config, "version": version, "tensors": selected}
    if version == "2":
        cfg["chunk_size"] = 1000
    ref_save_np(arrays, str(path), metadata=META, config=cfg)
    encrypted = {"model.embed.weight", "mask"}
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays), ctfs.key_args(keys),
                     version=version, chunk_size=1000, alg="aes256gcm", encrypted=encrypted,
                     enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, arrays=arrays)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096, 4097, None])
def test_chunk_sizes(ctfs, py_keys, tmp_path, chunk_size):
    keys = py_keys(alg="aes256gcm")
    rng = np.random.default_rng(11)
    arrays = {
        "a": rng.standard_normal((3, 1367)).astype(np.float32),  # 16404 B: 4 x 4097 + 16
        "b": rng.standard_normal(5).astype(np.float16),          # smaller than most chunks
        "c": rng.integers(0, 255, size=4097, dtype=np.uint8),    # exactly one 4097 chunk
        "d": rng.integers(0, 255, size=8192, dtype=np.uint8),    # exactly two 4096 chunks
    }
    path = tmp_path / f"ref_chunk_{chunk_size}.safetensors"
    cfg = dict(keys.config)
    if chunk_size is not None:
        cfg["chunk_size"] = chunk_size
    ref_save_np(arrays, str(path), metadata=META, config=cfg)
    ck, enc = U.crypto_meta(path)
    expect_cs = chunk_size or DEFAULT_CHUNK
    assert ck["chunk_size"] == expect_cs
    n_tags = len(base64.b64decode(enc["a"]["tags"])) // 16
    assert n_tags == max(1, -(-16404 // expect_cs))
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays), ctfs.key_args(keys),
                     version="2", chunk_size=expect_cs, alg="aes256gcm", encrypted=set(arrays),
                     enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, arrays=arrays)


@pytest.mark.parametrize("version", ["1", "2"])
def test_zero_size_tensors(ctfs, py_keys, tmp_path, version):
    """Several empty tensors, some at the same data offset (the §3.1 tie-break case).

    The reference writer signs ties in (dtype descending, name ascending) order; a correct
    verifier reproduces that order. (The reference's own reader is flaky on such files.)
    """
    keys = py_keys()
    arrays = {
        "w": np.arange(4, dtype=np.float32),
        "a_empty": np.zeros((0,), np.float32),
        "b_empty": np.zeros((2, 0), np.float32),     # same dtype and offset as a_empty
        "c_empty": np.zeros((0, 3), np.float16),
        "d": np.arange(3, dtype=np.int8),
        "e_empty": np.zeros((0,), np.bool_),         # at the very end of the data region
        "f_empty": np.zeros((0,), np.int64),
    }
    path = tmp_path / f"ref_empty_v{version}.safetensors"
    cfg = {**keys.config, "version": version, "chunk_size": 3}
    ref_save_np(arrays, str(path), metadata=META, config=cfg)
    offs = [tuple(v["data_offsets"]) for k, v in U.read_header(path)[1].items() if k != "__metadata__"]
    assert len(offs) != len(set(offs)), "fixture should contain tied zero-size tensors"
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays), ctfs.key_args(keys),
                     version=version, chunk_size=3, alg="aes256gcm", encrypted=set(arrays),
                     enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, arrays=arrays)


def _dtype_specs():
    rng = np.random.default_rng(5)
    specs = {}
    for i, (name, (_, bits)) in enumerate(sorted(U.DTYPES.items())):
        shape = [3, i + 2]
        n = 3 * (i + 2) * bits // 8
        data = rng.bytes(n)
        if name == "bool":
            data = bytes(b & 1 for b in data)  # only 0/1 are valid bools
        specs[f"t_{name}"] = {"dtype": name, "shape": shape, "data": data}
    return specs


@pytest.mark.parametrize("version", ["1", "2"])
def test_dtypes(ctfs, py_keys, tmp_path, version):
    """Every dtype the reference accepts by name (bf16, f8 variants included), raw-byte compare."""
    keys = py_keys()
    specs = _dtype_specs()
    path = tmp_path / f"ref_dtypes_v{version}.safetensors"
    U.ref_save_specs(specs, path, config={**keys.config, "version": version, "chunk_size": 5},
                     metadata=META)
    hdr = U.read_header(path)[1]
    for name, s in specs.items():
        assert hdr[name]["dtype"] == U.HEADER_DTYPE[s["dtype"]]
    np_native = {n: np.frombuffer(s["data"], dtype=s["dtype"]).reshape(s["shape"])
                 for n, s in specs.items()
                 if s["dtype"] in ("bool", "uint8", "int8", "int16", "uint16", "float16", "int32",
                                   "uint32", "float32", "complex64", "float64", "int64", "uint64")}
    check_ctfs_reads(ctfs, tmp_path, path, specs, ctfs.key_args(keys), version=version,
                     chunk_size=5, alg="aes256gcm", encrypted=set(specs), enc_kid=keys.enc_kid,
                     sign_kid=keys.sign_kid, arrays=np_native)


def _small_ref_file(tmp_path, keys, name="ref.safetensors", **cfg):
    arrays = mixed_tensors(seed=3)
    path = tmp_path / name
    ref_save_np(arrays, str(path), metadata=META, config={**keys.config, "chunk_size": 777, **cfg})
    return path, arrays


def test_key_reader_only_jwk(ctfs, py_keys, tmp_path):
    """Verification needs only x: the reader JWK Set (no "d") must suffice."""
    keys = py_keys()
    assert all("d" not in j for j in json.loads(keys.reader_path.read_text())["keys"])
    path, arrays = _small_ref_file(tmp_path, keys)
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays),
                     ["--key", keys.reader_path], version="2", chunk_size=777,
                     alg="aes256gcm", encrypted=set(arrays), enc_kid=keys.enc_kid,
                     sign_kid=keys.sign_kid, arrays=arrays)


def test_key_split_over_two_files(ctfs, py_keys, tmp_path):
    """--key may repeat: enc key in one file, verify key in another (plus an unrelated key)."""
    keys = py_keys(enc_kid="enc-split", sign_kid="sign-split")
    other = py_keys(enc_kid="unrelated-enc", sign_kid="unrelated-sign")
    enc_only = U.write_jwks(tmp_path / "enc_only.jwk", {"keys": [keys.jwks["keys"][0]]})
    sign_only = U.write_jwks(tmp_path / "sign_only.jwk",
                             {"keys": [other.jwks["keys"][1], keys.jwks["keys"][1]]})
    path, arrays = _small_ref_file(tmp_path, keys)
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays),
                     ["--key", other.path, "--key", enc_only, "--key", sign_only],
                     version="2", chunk_size=777, alg="aes256gcm", encrypted=set(arrays),
                     enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, arrays=arrays)


def test_keys_from_env(ctfs, py_keys, tmp_path):
    keys = py_keys(enc_kid="env-enc", sign_kid="env-sign")
    path, arrays = _small_ref_file(tmp_path, keys)
    env = {"CRYPTOTENSOR_KEYS": json.dumps(keys.jwks)}
    # Without any key source ctfs cannot find the key...
    r = ctfs.run("verify", path)
    assert r.returncode == 5, "no key source must give 'key not found' (5)\n" + \
        f"exit {r.returncode}: {r.stderr}"
    # ...with CRYPTOTENSOR_KEYS it can.
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays), [], env=env, version="2",
                     chunk_size=777, alg="aes256gcm", encrypted=set(arrays),
                     enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, arrays=arrays)


def test_single_jwk_in_env_plus_key_file(ctfs, py_keys, tmp_path):
    """CRYPTOTENSOR_KEYS may hold a single JWK (not a set); the verify key comes from --key."""
    keys = py_keys(enc_kid="env1-enc", sign_kid="env1-sign")
    path, arrays = _small_ref_file(tmp_path, keys)
    sign_only = U.write_jwks(tmp_path / "sign_only.jwk", {"keys": [keys.jwks["keys"][1]]})
    env = {"CRYPTOTENSOR_KEYS": json.dumps(keys.jwks["keys"][0])}
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays), ["--key", sign_only],
                     env=env, version="2", chunk_size=777, alg="aes256gcm",
                     encrypted=set(arrays), enc_kid=keys.enc_kid, sign_kid=keys.sign_kid,
                     arrays=arrays)


def test_large_tensor_default_chunk_size(ctfs, py_keys, tmp_path):
    """A 5.2 MB tensor with the default 2 MiB chunks: 3 chunks, the last one short."""
    keys = py_keys()
    arrays = {"big": np.random.default_rng(2).standard_normal(1_300_000).astype(np.float32),
              "small": np.arange(10, dtype=np.int32)}
    path = tmp_path / "ref_big.safetensors"
    ref_save_np(arrays, str(path), metadata=META, config=keys.config)
    _, enc = U.crypto_meta(path)
    assert len(base64.b64decode(enc["big"]["tags"])) == 3 * 16
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays), ctfs.key_args(keys),
                     version="2", chunk_size=DEFAULT_CHUNK, alg="aes256gcm",
                     encrypted=set(arrays), enc_kid=keys.enc_kid, sign_kid=keys.sign_kid,
                     arrays=arrays)


def test_keys_from_file_jku(ctfs, py_keys, tmp_path):
    """The reference writes enc/sign `jku` into __crypto_keys__; ctfs must follow file:// jkus."""
    keys = py_keys(enc_kid="jku-enc", sign_kid="jku-sign")
    jku = "file://" + str(keys.path.resolve())
    cfg = json.loads(json.dumps(keys.config))
    cfg["enc_key"]["jku"] = jku
    cfg["sign_key"]["jku"] = jku
    arrays = mixed_tensors(seed=9)
    path = tmp_path / "ref_jku.safetensors"
    ref_save_np(arrays, str(path), metadata=META, config={**cfg, "chunk_size": 500})
    ck, _ = U.crypto_meta(path)
    assert ck["enc"]["jku"] == jku and ck["sign"]["jku"] == jku
    check_ctfs_reads(ctfs, tmp_path, path, U.specs_from_np(arrays), [], version="2",
                     chunk_size=500, alg="aes256gcm", encrypted=set(arrays),
                     enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, arrays=arrays)


def test_verify_directory_of_reference_files(ctfs, py_keys, tmp_path):
    keys = py_keys()
    d = tmp_path / "model"
    d.mkdir()
    _small_ref_file(d, keys, name="model-00001-of-00002.safetensors")
    _small_ref_file(d, keys, name="model-00002-of-00002.safetensors", version="1")
    (d / "config.json").write_text('{"architectures": ["X"]}\n')
    ctfs.ok("verify", d, *ctfs.key_args(keys))
