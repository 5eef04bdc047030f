# SPDX-License-Identifier: Apache-2.0
"""Files modified after signing must be rejected by ctfs (exit 4) and by the reference.

Every tamper keeps the file a structurally valid safetensors file of the same length, so the
rejection has to come from the signature or an AEAD tag, not from a parse error. Each case is run
on a file written by the reference and on one written by `ctfs encrypt`.
"""
from __future__ import annotations

import base64
import re
import shutil

import numpy as np
import pytest
import safetensors.numpy as stock_np
from cryptotensors import SafetensorError
from cryptotensors.numpy import save_file as ref_save_np

from . import interop_util as U

META = {"format": "pt"}
CHUNK = 64


def tensors():
    rng = np.random.default_rng(21)
    return {
        "w": rng.standard_normal((4, 6)).astype(np.float32),     # 96 B: 2 chunks
        "big": rng.standard_normal(100).astype(np.float32),      # 400 B: 6 full chunks + 16 B
        "b": rng.standard_normal(3).astype(np.float16),
    }


@pytest.fixture(params=["reference", "ctfs"])
def writer(request):
    return request.param


def make_file(ctfs, tmp_path, keys, writer, version="2"):
    arrays = tensors()
    path = tmp_path / f"{writer}_v{version}.safetensors"
    if writer == "reference":
        ref_save_np(arrays, str(path), metadata=META,
                    config={**keys.config, "version": version, "chunk_size": CHUNK})
    else:
        plain = tmp_path / "plain.safetensors"
        stock_np.save_file(arrays, str(plain), metadata=META)
        args = ["--format-version", version]
        if version == "2":
            args += ["--chunk-size", str(CHUNK)]
        ctfs.ok("encrypt", plain, path, "--key", keys.path, *args)
    # Baseline: the untampered file is fine for both implementations.
    ctfs.ok("verify", path, "--key", keys.path)
    got = U.ref_load_np(path, keys.config)
    assert all(np.array_equal(got[n], a) for n, a in arrays.items())
    return path


def tampered_copy(path, name, mutate):
    out = path.with_name(name)
    shutil.copyfile(path, out)
    data = bytearray(out.read_bytes())
    mutate(data)
    assert len(data) == path.stat().st_size
    assert bytes(data) != path.read_bytes(), "tamper did not change the file"
    out.write_bytes(bytes(data))
    return out


def header_span(data):
    n = int.from_bytes(data[:8], "little")
    return 8, 8 + n


def sub_header(data, pattern, repl_fn):
    """Replace the first regex match inside the header with repl_fn(match) (same length)."""
    lo, hi = header_span(data)
    m = re.search(pattern, bytes(data[lo:hi]))
    assert m, f"pattern {pattern!r} not in header"
    new = repl_fn(m)
    assert len(new) == m.end() - m.start()
    data[lo + m.start(): lo + m.end()] = new


def expect_rejected(ctfs, path, keys, code=4, tensor=None):
    r = ctfs.run("verify", path, "--key", keys.path)
    assert r.returncode == code, f"ctfs verify: expected exit {code}, got {r.returncode}\n" \
        f"{r.stdout}\n{r.stderr}"
    if tensor is not None:
        assert tensor in (r.stdout + r.stderr), f"verify output should name tensor {tensor!r}"
    dec = path.with_suffix(".dec")
    r = ctfs.run("decrypt", path, dec, "--key", keys.path)
    assert r.returncode == code, f"ctfs decrypt: expected exit {code}, got {r.returncode}\n" \
        f"{r.stderr}"
    with pytest.raises(SafetensorError):
        U.ref_load_np(path, keys.config)


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_ciphertext_bit_flip(ctfs, py_keys, tmp_path, writer, version, where):
    keys = py_keys()
    path = make_file(ctfs, tmp_path, keys, writer, version)
    b, e = U.tensor_file_range(path, "big")
    pos = {"first": b, "middle": b + 3 * CHUNK + 5, "last": e - 1}[where]

    def flip(d):
        d[pos] ^= 0x01
    bad = tampered_copy(path, f"flip_{where}.safetensors", flip)
    expect_rejected(ctfs, bad, keys, tensor="big")


def test_chunks_swapped(ctfs, py_keys, tmp_path, writer):
    """The chunk index is in the nonce: reordering chunks of one tensor must fail."""
    keys = py_keys()
    path = make_file(ctfs, tmp_path, keys, writer, "2")
    b, _ = U.tensor_file_range(path, "big")

    def swap(d):
        c0, c1 = bytes(d[b:b + CHUNK]), bytes(d[b + CHUNK:b + 2 * CHUNK])
        d[b:b + CHUNK], d[b + CHUNK:b + 2 * CHUNK] = c1, c0
    bad = tampered_copy(path, "swap.safetensors", swap)
    expect_rejected(ctfs, bad, keys, tensor="big")


def test_header_user_metadata_changed(ctfs, py_keys, tmp_path, writer):
    keys = py_keys()
    path = make_file(ctfs, tmp_path, keys, writer)
    bad = tampered_copy(path, "meta.safetensors", lambda d: sub_header(
        d, rb'"format"\s*:\s*"pt"', lambda m: m.group(0)[:-4] + b'"tf"'))
    expect_rejected(ctfs, bad, keys)


def test_header_shape_changed(ctfs, py_keys, tmp_path, writer):
    """[4,6] -> [6,4]: same byte count, still valid safetensors, but not what was signed."""
    keys = py_keys()
    path = make_file(ctfs, tmp_path, keys, writer)

    def swap_dims(m):
        s = m.group(0)
        i4, i6 = s.rindex(b"4"), s.rindex(b"6")
        s = bytearray(s)
        s[i4], s[i6] = ord("6"), ord("4")
        return bytes(s)
    bad = tampered_copy(path, "shape.safetensors", lambda d: sub_header(
        d, rb'"w"\s*:\s*\{[^}]*?"shape"\s*:\s*\[\s*4\s*,\s*6\s*\]', swap_dims))
    assert U.read_header(bad)[1]["w"]["shape"] == [6, 4]
    expect_rejected(ctfs, bad, keys)


def _flip_b64_char(c: int) -> int:
    return ord("B") if c == ord("A") else ord("A")


def test_signature_byte_flipped(ctfs, py_keys, tmp_path, writer):
    keys = py_keys()
    path = make_file(ctfs, tmp_path, keys, writer)

    def repl(m):
        s = bytearray(m.group(0))
        s[-1] = _flip_b64_char(s[-1])   # first base64 char of the value: 6 significant bits
        return bytes(s)
    bad = tampered_copy(path, "sig.safetensors", lambda d: sub_header(
        d, rb'"__signature__"\s*:\s*"[A-Za-z0-9+/]', repl))
    expect_rejected(ctfs, bad, keys)


def test_encryption_entry_changed(ctfs, py_keys, tmp_path, writer):
    """A DEK-wrap nonce changed inside __encryption__ (signed as an opaque string)."""
    keys = py_keys()
    path = make_file(ctfs, tmp_path, keys, writer)

    def repl(m):
        s = bytearray(m.group(0))
        s[-1] = _flip_b64_char(s[-1])
        return bytes(s)
    bad = tampered_copy(path, "encentry.safetensors", lambda d: sub_header(
        d, rb'\\"key_iv\\"\s*:\s*\\"[A-Za-z0-9+/]', repl))
    expect_rejected(ctfs, bad, keys)


def test_truncated_file(ctfs, py_keys, tmp_path):
    keys = py_keys()
    path = make_file(ctfs, tmp_path, keys, "reference")
    bad = path.with_name("trunc.safetensors")
    bad.write_bytes(path.read_bytes()[:-5])
    r = ctfs.run("verify", bad, "--key", keys.path)
    assert r.returncode == 3, f"truncated file is invalid input (3), got {r.returncode}\n{r.stderr}"
    with pytest.raises(SafetensorError):
        U.ref_load_np(bad, keys.config)


# ------------------------------------------------------------------------------------------
# wrong / missing keys
# ------------------------------------------------------------------------------------------

def test_wrong_master_key_same_kid(ctfs, py_keys, tmp_path, writer):
    keys = py_keys(enc_kid="enc-k", sign_kid="sign-k")
    path = make_file(ctfs, tmp_path, keys, writer)
    # Same kids, same signing key, different master key bytes.
    d = base64.b64decode(keys.config["sign_key"]["d"])
    wrong = py_keys(enc_kid="enc-k", sign_kid="sign-k", d=d, name="wrong_k")
    assert wrong.config["enc_key"]["k"] != keys.config["enc_key"]["k"]
    for cmd in (["verify", path], ["decrypt", path, tmp_path / "out.safetensors"]):
        r = ctfs.run(*cmd, "--key", wrong.path)
        assert r.returncode == 4, f"{cmd[0]} with wrong master key: exit {r.returncode}\n{r.stderr}"
    with pytest.raises(SafetensorError):
        U.ref_load_np(path, wrong.config)


def test_wrong_verify_key_same_kid(ctfs, py_keys, tmp_path, writer):
    keys = py_keys(enc_kid="enc-k", sign_kid="sign-k")
    path = make_file(ctfs, tmp_path, keys, writer)
    k = base64.b64decode(keys.config["enc_key"]["k"])
    wrong = py_keys(enc_kid="enc-k", sign_kid="sign-k", k=k, name="wrong_x")
    assert wrong.config["sign_key"]["x"] != keys.config["sign_key"]["x"]
    r = ctfs.run("verify", path, "--key", wrong.path)
    assert r.returncode == 4, f"verify with wrong Ed25519 key: exit {r.returncode}\n{r.stderr}"
    with pytest.raises(SafetensorError):
        U.ref_load_np(path, wrong.config)


@pytest.mark.parametrize("missing", ["enc", "sign"])
def test_missing_kid(ctfs, py_keys, tmp_path, writer, missing):
    keys = py_keys(enc_kid="enc-k", sign_kid="sign-k")
    path = make_file(ctfs, tmp_path, keys, writer)
    other = py_keys(enc_kid="enc-k" if missing == "sign" else "enc-other",
                    sign_kid="sign-k" if missing == "enc" else "sign-other", name="other")
    if missing == "enc":   # right verify key, no oct key with kid enc-k
        jwks = {"keys": [other.jwks["keys"][0], keys.jwks["keys"][1]]}
    else:                  # right master key, no okp key with kid sign-k
        jwks = {"keys": [keys.jwks["keys"][0], other.jwks["keys"][1]]}
    kf = U.write_jwks(tmp_path / f"missing_{missing}.jwk", jwks)
    r = ctfs.run("verify", path, "--key", kf)
    assert r.returncode == 5, f"key id not found must exit 5, got {r.returncode}\n{r.stderr}"
    r = ctfs.run("decrypt", path, tmp_path / "out.safetensors", "--key", kf)
    assert r.returncode == 5, f"decrypt: key id not found must exit 5, got {r.returncode}"
