# SPDX-License-Identifier: Apache-2.0
"""Shared helpers of the Python interop suite (no pytest fixtures here; see conftest.py).

Tensor "specs" are the low-level dicts the reference `cryptotensors.serialize_file` takes:
    {name: {"dtype": "float32" | "bfloat16" | ..., "shape": [..], "data": bytes}}
Everything here parses files independently of both ctfs and the reference package, so the tests
compare real values read from disk.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np

# dtype name as the Python writers take it -> safetensors header dtype, element bits.
DTYPES = {
    "bool": ("BOOL", 8),
    "uint8": ("U8", 8),
    "int8": ("I8", 8),
    "float8_e5m2": ("F8_E5M2", 8),
    "float8_e4m3fn": ("F8_E4M3", 8),
    "float8_e8m0fnu": ("F8_E8M0", 8),
    "int16": ("I16", 16),
    "uint16": ("U16", 16),
    "float16": ("F16", 16),
    "bfloat16": ("BF16", 16),
    "int32": ("I32", 32),
    "uint32": ("U32", 32),
    "float32": ("F32", 32),
    "complex64": ("C64", 64),
    "float64": ("F64", 64),
    "int64": ("I64", 64),
    "uint64": ("U64", 64),
}
HEADER_DTYPE = {k: v[0] for k, v in DTYPES.items()}
RESERVED_KEYS = ("__crypto_keys__", "__encryption__", "__policy__", "__signature__")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def sha256_file(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Independent safetensors parsing
# ---------------------------------------------------------------------------------------------

def read_header(path):
    """Return (n, header_dict, header_bytes, data_start) of a safetensors file."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    hb = raw[8 : 8 + n]
    return n, json.loads(hb), hb, 8 + n


def crypto_meta(path):
    """Parsed reserved metadata of an encrypted file: (crypto_keys, encryption) or (None, None)."""
    _, h, _, _ = read_header(path)
    meta = h.get("__metadata__") or {}
    if "__encryption__" not in meta:
        return None, None
    return json.loads(meta["__crypto_keys__"]), json.loads(meta["__encryption__"])


def user_metadata(path):
    _, h, _, _ = read_header(path)
    meta = h.get("__metadata__") or {}
    return {k: v for k, v in meta.items() if k not in RESERVED_KEYS}


def raw_tensors(path):
    """{name: (HEADER_DTYPE, shape list, bytes)} straight from the file (ciphertext if encrypted)."""
    raw = Path(path).read_bytes()
    n, h, _, start = read_header(path)
    out = {}
    for name, info in h.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], list(info["shape"]), raw[start + b : start + e])
    return out


def tensor_file_range(path, name):
    """Absolute [begin, end) byte range of tensor `name` in the file."""
    _, h, _, start = read_header(path)
    b, e = h[name]["data_offsets"]
    return start + b, start + e


def spec_from_np(arr: np.ndarray):
    arr = np.asarray(arr).copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    if arr.dtype.byteorder == ">":
        arr = arr.byteswap().view(arr.dtype.newbyteorder("<"))
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": arr.tobytes()}


def specs_from_np(tensors):
    return {k: spec_from_np(v) for k, v in tensors.items()}


def expected_raw(specs):
    """specs -> {name: (HEADER_DTYPE, shape, bytes)} for comparison with raw_tensors()."""
    return {k: (HEADER_DTYPE[s["dtype"]], list(s["shape"]), bytes(s["data"])) for k, s in specs.items()}


def assert_raw_equal(actual, expected, what=""):
    assert sorted(actual) == sorted(expected), f"{what}: tensor names differ"
    for name in expected:
        adt, ashape, adata = actual[name]
        edt, eshape, edata = expected[name]
        assert adt == edt, f"{what}: {name}: dtype {adt} != {edt}"
        assert ashape == eshape, f"{what}: {name}: shape {ashape} != {eshape}"
        assert adata == edata, f"{what}: {name}: data differs ({len(adata)} vs {len(edata)} bytes)"


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------

def stock_save_specs(specs, path, metadata=None):
    """Write a plain file with stock `safetensors` (0.8 TensorSpec API), any dtype incl. bf16."""
    import safetensors

    keep = []
    flat = {}
    for name, s in specs.items():
        buf = np.frombuffer(bytes(s["data"]), dtype=np.uint8).copy()
        keep.append(buf)
        flat[name] = safetensors.TensorSpec(
            dtype=s["dtype"], shape=list(s["shape"]),
            data_ptr=buf.ctypes.data if buf.size else 0, data_len=buf.size)
    safetensors.serialize_file(flat, str(path), metadata=metadata)
    del keep


def ref_save_specs(specs, path, config, metadata=None):
    """Write with the reference package from raw specs (needed for dtypes numpy lacks: bf16...)."""
    import cryptotensors

    cryptotensors.serialize_file(specs, str(path), metadata=metadata, config=config)


# ---------------------------------------------------------------------------------------------
# Readers through the reference package
# ---------------------------------------------------------------------------------------------

def ref_load_np(path, config, names=None):
    """All (or `names`) tensors through reference safe_open(framework="np", config=...)."""
    from cryptotensors import safe_open

    with safe_open(str(path), framework="np", config=config) as f:
        return {n: np.array(f.get_tensor(n)) for n in (names if names is not None else f.keys())}


def ref_load_raw(path, config):
    """Raw decrypted bytes of every tensor through the reference, for dtypes numpy cannot hold.

    `cryptotensors.deserialize` takes no config, so the keys go through the (process-global)
    DirectKeyProvider; registering again replaces the previous keys.
    """
    import cryptotensors

    cryptotensors.register_direct_key_provider(keys=[config["enc_key"], config["sign_key"]])
    out = {}
    for name, t in cryptotensors.deserialize(Path(path).read_bytes()):
        out[name] = (t["dtype"], list(t["shape"]), bytes(t["data"]))
    return out


def stock_load_raw(path):
    """{name: (dtype, shape, bytes)} through stock safetensors.deserialize (any dtype)."""
    import safetensors

    out = {}
    for name, t in safetensors.deserialize(Path(path).read_bytes()):
        out[name] = (t["dtype"], list(t["shape"]), bytes(t["data"]))
    return out


def stock_metadata(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return f.metadata()


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------

ALG_KEY_LEN = {"aes256gcm": 32, "aes128gcm": 16, "chacha20poly1305": 32}


def new_ed25519():
    from cryptography.hazmat.primitives import serialization as S
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sk = Ed25519PrivateKey.generate()
    d = sk.private_bytes(S.Encoding.Raw, S.PrivateFormat.Raw, S.NoEncryption())
    x = sk.public_key().public_bytes(S.Encoding.Raw, S.PublicFormat.Raw)
    return d, x


def ed25519_public_from_seed(d: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization as S
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(d).public_key().public_bytes(
        S.Encoding.Raw, S.PublicFormat.Raw)


def make_jwks(alg="aes256gcm", enc_kid="enc-1", sign_kid="sign-1", k=None, d=None):
    """A fresh JWK Set in the reference dialect (§4.1): lowercase kty, padded standard base64."""
    if k is None:
        k = os.urandom(ALG_KEY_LEN[alg])
    if d is None:
        d, x = new_ed25519()
    else:
        x = ed25519_public_from_seed(d)
    return {"keys": [
        {"kty": "oct", "alg": alg, "kid": enc_kid, "k": b64(k)},
        {"kty": "okp", "alg": "ed25519", "kid": sign_kid, "x": b64(x), "d": b64(d)},
    ]}


def write_jwks(path, jwks):
    path = Path(path)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(jwks, f, indent=1)
    os.chmod(path, 0o600)
    return path


def ref_config_from_jwks(jwks, enc_kid=None, sign_kid=None):
    """The reference `config` dict ({"enc_key":..,"sign_key":..}) from a JWK Set."""
    enc = [j for j in jwks["keys"] if j["kty"] == "oct" and (enc_kid is None or j.get("kid") == enc_kid)]
    sig = [j for j in jwks["keys"] if j["kty"] == "okp" and (sign_kid is None or j.get("kid") == sign_kid)]
    assert enc, "no oct key in JWK set"
    assert sig, "no okp key in JWK set"
    e, s = enc[0], sig[0]
    cfg = {"enc_key": {f: e[f] for f in ("kty", "alg", "kid", "k") if f in e},
           "sign_key": {f: s[f] for f in ("kty", "alg", "kid", "x", "d") if f in s}}
    return cfg


# ---------------------------------------------------------------------------------------------
# Canonical signed message (§3.1), independent of ctfs and the reference
# ---------------------------------------------------------------------------------------------

DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]


def canonical_message(header: dict) -> bytes:
    """Message the writer signs: __metadata__ (sorted, minus __signature__) first, then tensors
    by (begin, end, dtype descending, name) with keys dtype, shape, data_offsets; compact JSON."""
    meta = header.get("__metadata__") or {}
    out = {"__metadata__": {k: meta[k] for k in sorted(meta) if k != "__signature__"}}
    names = [n for n in header if n != "__metadata__"]
    names.sort(key=lambda n: (header[n]["data_offsets"][0], header[n]["data_offsets"][1],
                              -DTYPE_ORDER.index(header[n]["dtype"]), n))
    for n in names:
        t = header[n]
        out[n] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": t["data_offsets"]}
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_signature_independently(path, x_b64: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    _, h, _, _ = read_header(path)
    sig = base64.b64decode(h["__metadata__"]["__signature__"], validate=True)
    pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(x_b64, validate=True))
    try:
        pub.verify(sig, canonical_message(h))
        return True
    except InvalidSignature:
        return False


def arrays_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and values (NaNs from random bit patterns compare equal)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def rewrite_plain_header(src, dst, *, reverse_metadata=False, reverse_tensors=False,
                         pretty=False, pad_to=8):
    """Copy a plain safetensors file with a differently laid out (still valid) header: metadata
    keys or tensor entries in another order, JSON with spaces, padding to `pad_to` bytes."""
    raw = Path(src).read_bytes()
    n, h, _, start = read_header(src)
    meta = h.get("__metadata__")
    names = [k for k in h if k != "__metadata__"]
    if reverse_tensors:
        names.reverse()
    out = {}
    if meta is not None:
        keys = sorted(meta, reverse=True) if reverse_metadata else list(meta)
        out["__metadata__"] = {k: meta[k] for k in keys}
    for k in names:
        out[k] = h[k]
    text = json.dumps(out, ensure_ascii=False, **({"indent": 1} if pretty else
                                                  {"separators": (",", ":")})).encode()
    text += b" " * (-len(text) % pad_to)
    Path(dst).write_bytes(struct.pack("<Q", len(text)) + text + raw[start:])
