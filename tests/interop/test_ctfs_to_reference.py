# SPDX-License-Identifier: Apache-2.0
"""Plain files written by stock `safetensors`, encrypted by ctfs, read by the reference wheel.

A successful reference `safe_open(..., config=keys)` proves that it accepted the ctfs signature
(it verifies at open) and unwrapped the DEKs; `get_tensor` checks every AEAD tag. ctfs `decrypt`
must then give back the original file byte for byte.
"""
from __future__ import annotations

import base64
import fnmatch
import json
import os
import stat

import numpy as np
import pytest
import safetensors.numpy as stock_np

from . import interop_util as U

ALGS = ["aes256gcm", "aes128gcm", "chacha20poly1305"]
META = {"format": "pt"}


def plain_tensors(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "model.embed_tokens.weight": rng.standard_normal((16, 300)).astype(np.float32),  # 19200 B
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((24, 24)).astype(np.float16),
        "model.layers.0.self_attn.q_proj.bias": rng.standard_normal(24).astype(np.float16),
        "model.layers.1.mlp.up_proj.weight": rng.standard_normal((8, 40)).astype(np.float32),
        "model.layers.1.mlp.up_proj.bias": np.zeros((0,), np.float32),   # one empty tensor
        "model.norm.weight": rng.standard_normal(64).astype(np.float64),
        "lm_head.weight": rng.standard_normal((5, 300)).astype(np.float32),
        "quant.q": rng.integers(-128, 127, size=(33,), dtype=np.int8),
        "position_ids": np.arange(513, dtype=np.int64),
        "attn_mask": rng.integers(0, 2, size=(3, 7)).astype(np.bool_),
        "scalar": np.array(-2.25, np.float32),
    }


def write_plain(tmp_path, name="plain.safetensors", arrays=None, metadata=META):
    arrays = plain_tensors() if arrays is None else arrays
    path = tmp_path / name
    stock_np.save_file(arrays, str(path), metadata=metadata)
    return path, arrays


def check_reference_reads(path, arrays, config, metadata=META):
    got = U.ref_load_np(path, config)
    assert sorted(got) == sorted(arrays)
    for name, arr in arrays.items():
        assert U.arrays_equal(got[name], arr), \
            f"{name}: reference got {got[name].dtype}{got[name].shape}, want {arr.dtype}{arr.shape}" \
            " (or values differ)"
    from cryptotensors import safe_open
    with safe_open(str(path), framework="np", config=config) as f:
        assert f.metadata() == metadata


def check_header(path, plain, *, alg, version, chunk_size, enc_kid, sign_kid, encrypted):
    """Independent look at the ctfs-written header (reserved metadata, sizes, ciphertext)."""
    ck, enc = U.crypto_meta(path)
    assert ck is not None, "ctfs output has no __encryption__: not encrypted"
    assert ck["version"] == version
    assert ck["enc"] == {**ck["enc"], "alg": alg, "kty": "oct", "kid": enc_kid}
    assert ck["sign"]["kty"] == "okp" and ck["sign"]["kid"] == sign_kid
    assert ck["sign"]["alg"].lower() == "ed25519"
    assert not any(f in ck["enc"] for f in ("k", "d", "x")), "secret material in header"
    if version == "1":
        assert "chunk_size" not in ck
    elif chunk_size is not None:
        assert ck["chunk_size"] == chunk_size
    assert set(enc) == set(encrypted)
    meta = U.read_header(path)[1]["__metadata__"]
    assert len(base64.b64decode(meta["__signature__"], validate=True)) == 64
    pol = json.loads(meta["__policy__"])
    assert set(pol) == {"local", "remote"}

    dek_len = 16 if alg == "aes128gcm" else 32
    enc_raw, plain_raw = U.raw_tensors(path), U.raw_tensors(plain)
    assert {k: v[:2] for k, v in enc_raw.items()} == {k: v[:2] for k, v in plain_raw.items()}
    for name, entry in enc.items():
        assert len(base64.b64decode(entry["wrapped_key"])) == dek_len
        assert len(base64.b64decode(entry["key_iv"])) == 12
        assert len(base64.b64decode(entry["key_tag"])) == 16
        n = len(plain_raw[name][2])
        if version == "1":
            assert "base_iv" not in entry and "tags" not in entry
            if n:
                assert len(base64.b64decode(entry["iv"])) == 12
                assert len(base64.b64decode(entry["tag"])) == 16
        else:
            cs = ck.get("chunk_size", 2097152)
            assert len(base64.b64decode(entry["base_iv"])) == 12
            assert len(base64.b64decode(entry["tags"])) == 16 * max(1, -(-n // cs)), name
        if n >= 16:
            assert enc_raw[name][2] != plain_raw[name][2], f"{name}: stored as plaintext"
    for name in set(plain_raw) - set(enc):
        assert enc_raw[name][2] == plain_raw[name][2], f"{name}: unselected tensor changed"


def encrypt_and_check(ctfs, tmp_path, keys, extra_args=(), *, alg=None, version="2",
                      chunk_size=None, encrypted=None, arrays=None, metadata=META, tag="x"):
    plain, arrays = write_plain(tmp_path, f"plain_{tag}.safetensors", arrays, metadata)
    enc = tmp_path / f"enc_{tag}.safetensors"
    ctfs.ok("encrypt", plain, enc, "--key", keys.path, *extra_args)
    encrypted = set(arrays) if encrypted is None else encrypted
    check_header(enc, plain, alg=alg or keys.alg, version=version, chunk_size=chunk_size,
                 enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, encrypted=encrypted)

    info = ctfs.inspect(enc)
    assert info["encrypted"] is True and info["version"] == version
    assert {t["name"]: t["encrypted"] for t in info["tensors"]} == \
        {n: n in encrypted for n in arrays}

    check_reference_reads(enc, arrays, keys.config, metadata)
    check_reference_reads(enc, arrays, keys.reader_config, metadata)   # x only suffices
    ctfs.ok("verify", enc, "--key", keys.path)

    dec = tmp_path / f"dec_{tag}.safetensors"
    ctfs.ok("decrypt", enc, dec, "--key", keys.path)
    assert U.sha256_file(dec) == U.sha256_file(plain), "decrypt is not byte-identical"
    return enc


# ------------------------------------------------------------------------------------------
# keygen
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ALGS)
def test_keygen_jwk_dialect(ctfs, keygen, alg):
    keys = keygen(alg=alg, enc_kid=f"my-enc-{alg}", sign_kid="my-sign")
    assert stat.S_IMODE(os.stat(keys.path).st_mode) == 0o600
    full = json.loads(keys.path.read_text())
    oct_ = [j for j in full["keys"] if j["kty"] == "oct"]
    okp = [j for j in full["keys"] if j["kty"] == "okp"]
    assert len(oct_) == 1 and len(okp) == 1 and len(full["keys"]) == 2
    assert oct_[0]["alg"] == alg and oct_[0]["kid"] == f"my-enc-{alg}"
    assert okp[0]["alg"].lower() == "ed25519" and okp[0]["kid"] == "my-sign"
    assert "crv" not in okp[0] or okp[0]["crv"] == "Ed25519"
    k = base64.b64decode(oct_[0]["k"], validate=True)   # standard padded base64 (§4.1)
    assert len(k) == U.ALG_KEY_LEN[alg]
    d = base64.b64decode(okp[0]["d"], validate=True)
    x = base64.b64decode(okp[0]["x"], validate=True)
    assert len(d) == 32 and U.ed25519_public_from_seed(d) == x
    reader = json.loads(keys.reader_path.read_text())
    assert all("d" not in j for j in reader["keys"])
    r_okp = [j for j in reader["keys"] if j["kty"] == "okp"]
    assert r_okp and r_okp[0]["x"] == okp[0]["x"] and r_okp[0]["kid"] == "my-sign"


def test_keygen_fresh_and_no_clobber(ctfs, keygen, tmp_path):
    a = keygen(name="a")
    b = keygen(name="b")
    assert a.config["enc_key"]["k"] != b.config["enc_key"]["k"]
    assert a.config["sign_key"]["d"] != b.config["sign_key"]["d"]
    before = a.path.read_bytes()
    r = ctfs.run("keygen", "--out", a.path)
    assert r.returncode != 0, "keygen must refuse to overwrite without --force"
    assert a.path.read_bytes() == before
    ctfs.ok("keygen", "--out", a.path, "--force")
    assert a.path.read_bytes() != before


# ------------------------------------------------------------------------------------------
# encrypt variants -> reference
# ------------------------------------------------------------------------------------------

def test_encrypt_default(ctfs, keygen, tmp_path):
    keys = keygen()
    arrays = plain_tensors()
    # 5.2 MB: more than one chunk at the reference's default 2 MiB chunk size.
    arrays["big"] = np.random.default_rng(1).standard_normal(1_300_000).astype(np.float32)
    enc = encrypt_and_check(ctfs, tmp_path, keys, arrays=arrays, tag="default")
    ck, _ = U.crypto_meta(enc)
    assert isinstance(ck["chunk_size"], int) and ck["chunk_size"] > 0


@pytest.mark.parametrize("chunk_size", [1, 1000, 4096, 4097, 65536])
def test_encrypt_chunk_size(ctfs, keygen, tmp_path, chunk_size):
    keys = keygen()
    encrypt_and_check(ctfs, tmp_path, keys, ["--chunk-size", str(chunk_size)],
                      chunk_size=chunk_size, tag=f"cs{chunk_size}")


@pytest.mark.parametrize("alg", ALGS)
def test_encrypt_algorithms(ctfs, keygen, tmp_path, alg):
    keys = keygen(alg=alg)
    encrypt_and_check(ctfs, tmp_path, keys, ["--alg", alg, "--chunk-size", "3001"], alg=alg,
                      chunk_size=3001, tag=alg)


@pytest.mark.parametrize("alg", ALGS)
def test_encrypt_format_version_1(ctfs, keygen, tmp_path, alg):
    keys = keygen(alg=alg)
    encrypt_and_check(ctfs, tmp_path, keys, ["--format-version", "1"], alg=alg, version="1",
                      tag=f"v1_{alg}")


def test_encrypt_partial_globs(ctfs, keygen, tmp_path):
    keys = keygen()
    patterns = ["model.layers.*.weight", "lm_head*"]
    arrays = plain_tensors(seed=4)
    selected = {n for n in arrays if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
    assert selected == {"model.layers.0.self_attn.q_proj.weight",
                        "model.layers.1.mlp.up_proj.weight", "lm_head.weight"}
    args = [a for p in patterns for a in ("--tensors", p)] + ["--chunk-size", "512"]
    encrypt_and_check(ctfs, tmp_path, keys, args, chunk_size=512, encrypted=selected,
                      arrays=arrays, tag="partial")


def test_encrypt_without_user_metadata(ctfs, keygen, tmp_path):
    """No __metadata__ in the source: still reference-readable and byte-identical on decrypt."""
    keys = keygen()
    encrypt_and_check(ctfs, tmp_path, keys, ["--chunk-size", "4097"], chunk_size=4097,
                      metadata=None, tag="nometa")


@pytest.mark.parametrize("layout", ["unsorted_metadata", "pretty_reordered_padded"])
def test_encrypt_non_canonical_source_header(ctfs, keygen, tmp_path, layout):
    """Byte-identical decrypt must not assume the source header is in the writer's canonical
    layout. (Stock safetensors 0.8.0 itself writes multi-key metadata in HashMap order.)"""
    keys = keygen()
    meta = {"format": "pt", "zzz": "last", "author": "ctfs \u00e9 \"q\"", "Alpha": "1"}
    stock, arrays = write_plain(tmp_path, "stock.safetensors", metadata=meta)
    plain = tmp_path / f"plain_{layout}.safetensors"
    if layout == "unsorted_metadata":
        U.rewrite_plain_header(stock, plain, reverse_metadata=True)
    else:
        U.rewrite_plain_header(stock, plain, reverse_tensors=True, pretty=True, pad_to=64)
    assert U.stock_load_raw(plain) == U.stock_load_raw(stock)   # still the same valid file
    enc = tmp_path / f"enc_{layout}.safetensors"
    ctfs.ok("encrypt", plain, enc, "--key", keys.path, "--chunk-size", "1000")
    check_header(enc, plain, alg="aes256gcm", version="2", chunk_size=1000,
                 enc_kid=keys.enc_kid, sign_kid=keys.sign_kid, encrypted=set(arrays))
    check_reference_reads(enc, arrays, keys.config, metadata=meta)
    dec = tmp_path / f"dec_{layout}.safetensors"
    ctfs.ok("decrypt", enc, dec, "--key", keys.path)
    assert U.sha256_file(dec) == U.sha256_file(plain), "decrypt is not byte-identical"


def test_encrypt_other_dtypes(ctfs, keygen, tmp_path):
    """bf16 / f8 / unsigned dtypes (written with stock safetensors' TensorSpec API)."""
    keys = keygen()
    rng = np.random.default_rng(8)
    specs = {}
    for i, name in enumerate(["bfloat16", "float8_e4m3fn", "float8_e5m2", "uint16", "uint32",
                              "uint64", "int16", "int32", "complex64", "uint8"]):
        _, bits = U.DTYPES[name]
        specs[f"t.{name}"] = {"dtype": name, "shape": [i + 1, 37],
                              "data": rng.bytes((i + 1) * 37 * bits // 8)}
    plain = tmp_path / "plain_dtypes.safetensors"
    U.stock_save_specs(specs, plain, metadata=META)
    enc = tmp_path / "enc_dtypes.safetensors"
    ctfs.ok("encrypt", plain, enc, "--key", keys.path, "--chunk-size", "100")
    check_header(enc, plain, alg="aes256gcm", version="2", chunk_size=100, enc_kid=keys.enc_kid,
                 sign_kid=keys.sign_kid, encrypted=set(specs))
    U.assert_raw_equal(U.ref_load_raw(enc, keys.config), U.expected_raw(specs), "reference")
    dec = tmp_path / "dec_dtypes.safetensors"
    ctfs.ok("decrypt", enc, dec, "--key", keys.path)
    assert U.sha256_file(dec) == U.sha256_file(plain)


def test_encrypt_refuses_to_clobber(ctfs, keygen, tmp_path):
    keys = keygen()
    plain, _ = write_plain(tmp_path)
    dst = tmp_path / "exists.safetensors"
    dst.write_bytes(b"do not touch")
    r = ctfs.run("encrypt", plain, dst, "--key", keys.path)
    assert r.returncode != 0, "encrypt must not overwrite without --force"
    assert dst.read_bytes() == b"do not touch"
    ctfs.ok("encrypt", plain, dst, "--key", keys.path, "--force")
    check_reference_reads(dst, plain_tensors(), keys.config)


# ------------------------------------------------------------------------------------------
# directory mode
# ------------------------------------------------------------------------------------------

def test_directory_mode(ctfs, keygen, tmp_path):
    keys = keygen()
    src = tmp_path / "model"
    src.mkdir()
    all_arrays = plain_tensors(seed=12)
    names = sorted(all_arrays)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for fname, tnames in shards.items():
        stock_np.save_file({n: all_arrays[n] for n in tnames}, str(src / fname), metadata=META)
    index = {"metadata": {"total_size": int(sum(a.nbytes for a in all_arrays.values()))},
             "weight_map": {n: f for f, tn in shards.items() for n in tn}}
    (src / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    (src / "config.json").write_text('{"model_type": "llama", "torch_dtype": "float32"}\n')
    src_files = sorted(p.name for p in src.iterdir())

    dst = tmp_path / "model.enc"
    ctfs.ok("encrypt", src, dst, "--key", keys.path, "--chunk-size", "4097")
    assert sorted(p.name for p in dst.iterdir()) == src_files
    for name in src_files:
        if name.endswith(".safetensors"):
            info = ctfs.inspect(dst / name)
            assert info["encrypted"] is True
            assert all(t["encrypted"] for t in info["tensors"])
            assert U.sha256_file(dst / name) != U.sha256_file(src / name)
            check_reference_reads(dst / name, {n: all_arrays[n] for n in shards[name]},
                                  keys.config)
        else:
            assert U.sha256_file(dst / name) == U.sha256_file(src / name), name

    ctfs.ok("verify", dst, "--key", keys.path)

    back = tmp_path / "model.dec"
    ctfs.ok("decrypt", dst, back, "--key", keys.path)
    assert sorted(p.name for p in back.iterdir()) == src_files
    for name in src_files:
        assert U.sha256_file(back / name) == U.sha256_file(src / name), name
