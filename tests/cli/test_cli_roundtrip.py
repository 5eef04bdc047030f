# SPDX-License-Identifier: Apache-2.0
"""Round trips through the CLI: byte-exact decrypt(encrypt(F)), directories, partial encryption,
key file modes, and keys taken from CRYPTOTENSOR_KEYS."""
import hashlib
import json
import os
import stat

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import make_tensors


def sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("opts", [[], ["--chunk-size", "1000"], ["--chunk-size", "1"],
                                  ["--format-version", "1"], ["--tensors", "emb*"]])
def test_byte_exact_round_trip(ctfs, keys, plain, tmp_path, opts):
    e, d = tmp_path / "e.safetensors", tmp_path / "d.safetensors"
    ctfs("encrypt", plain, e, "--key", keys / "k.jwk", "-q", *opts, check=0)
    assert sha(e) != sha(plain)
    ctfs("verify", e, "--key", keys / "r.jwk", check=0)
    ctfs("decrypt", e, d, "--key", keys / "r.jwk", "-q", check=0)
    assert sha(d) == sha(plain)


def test_non_canonical_header_round_trips_exactly(ctfs, keys, tmp_path):
    """A header with extra whitespace, metadata last and \\u escapes is restored byte for byte."""
    data = np.arange(10, dtype=np.float32).tobytes()
    text = ('{ "t": {"dtype": "F32", "shape": [10], "data_offsets": [0, 40]},\n'
            ' "__metadata__": {"format": "pt", "note": "caf\\u00e9"} }').encode()
    text += b" " * 21
    src = tmp_path / "odd.safetensors"
    src.write_bytes(len(text).to_bytes(8, "little") + text + data)
    e, d = tmp_path / "e.safetensors", tmp_path / "d.safetensors"
    ctfs("encrypt", src, e, "--key", keys / "k.jwk", "-q", check=0)
    ctfs("decrypt", e, d, "--key", keys / "r.jwk", "-q", check=0)
    assert d.read_bytes() == src.read_bytes()


def test_partial_encryption_marks_tensors(ctfs, keys, plain, tmp_path):
    e = tmp_path / "e.safetensors"
    ctfs("encrypt", plain, e, "--key", keys / "k.jwk", "--tensors", "embed", "--tensors", "ids",
         "-q", check=0)
    info = json.loads(ctfs("inspect", e, "--json", check=0).stdout)
    flags = {t["name"]: t["encrypted"] for t in info["tensors"]}
    assert flags == {"embed": True, "ids": True, "bias": False, "empty": False}
    assert info["encrypted"] and info["version"] == "2" and info["metadata"] == {"format": "pt"}
    p = ctfs("verify", e, "--key", keys / "r.jwk", check=0)
    assert "not integrity-protected" in p.stdout
    p = ctfs("encrypt", plain, tmp_path / "n.safetensors", "--key", keys / "k.jwk",
             "--tensors", "nomatch*")
    assert p.returncode == 3 and "no tensor matches" in p.stderr


def test_default_and_explicit_chunk_size(ctfs, keys, plain, tmp_path):
    """`ctfs encrypt` writes 256 KiB chunks unless told otherwise (bench/RESULTS.md)."""
    for args, want in (((), 262144), (("--chunk-size", "2097152"), 2097152)):
        e = tmp_path / f"e{want}.safetensors"
        ctfs("encrypt", plain, e, "--key", keys / "k.jwk", "-q", *args, check=0)
        assert json.loads(ctfs("inspect", e, "--json", check=0).stdout)["chunk_size"] == want
    assert "(default 262144)" in ctfs("encrypt", "--help", check=0).stdout


def test_directory_round_trip(ctfs, keys, tmp_path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    t = make_tensors()
    save_file({k: t[k] for k in ("embed", "bias")}, str(src / "model-00001-of-00002.safetensors"),
              metadata={"format": "pt"})
    save_file({k: t[k] for k in ("ids", "empty")}, str(src / "model-00002-of-00002.safetensors"),
              metadata={"format": "pt"})
    (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"embed": "x"}}))
    (src / "config.json").write_text('{"model_type": "llama"}')
    (src / "sub" / "tokenizer.json").write_text("{}")
    enc, dec = tmp_path / "enc", tmp_path / "dec"
    ctfs("encrypt", src, enc, "--key", keys / "k.jwk", "-q", check=0)
    for rel in ("model.safetensors.index.json", "config.json", "sub/tokenizer.json"):
        assert sha(enc / rel) == sha(src / rel), rel
    for rel in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        assert json.loads(ctfs("inspect", enc / rel, "--json", check=0).stdout)["encrypted"]
    ctfs("verify", enc, "--key", keys / "r.jwk", check=0)
    ctfs("decrypt", enc, dec, "--key", keys / "r.jwk", "-q", check=0)
    for f in src.rglob("*"):
        if f.is_file():
            assert sha(dec / f.relative_to(src)) == sha(f), f
    # existing output directory is refused without --force (exit 8), kept intact
    before = {f: sha(f) for f in enc.rglob("*") if f.is_file()}
    p = ctfs("encrypt", src, enc, "--key", keys / "k.jwk")
    assert p.returncode == 8 and "already exists" in p.stderr, (p.returncode, p.stderr)
    assert {f: sha(f) for f in enc.rglob("*") if f.is_file()} == before
    p = ctfs("decrypt", enc, dec, "--key", keys / "r.jwk")
    assert p.returncode == 8 and "already exists" in p.stderr, (p.returncode, p.stderr)
    ctfs("encrypt", src, enc, "--key", keys / "k.jwk", "-q", "--force", check=0)
    assert not [x for x in tmp_path.iterdir() if "ctfs-tmp" in x.name]


def test_failed_directory_encrypt_leaves_nothing(ctfs, keys, tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    save_file(make_tensors(), str(src / "a.safetensors"))
    (src / "b.safetensors").write_bytes(b"\x01\x00\x00\x00\x00\x00\x00\x00{")
    p = ctfs("encrypt", src, tmp_path / "enc", "--key", keys / "k.jwk", "-q")
    assert p.returncode == 3 and "b.safetensors" in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["model"]


def test_keygen_modes_and_reader_copy(ctfs, keys):
    for name in ("k.jwk", "r.jwk"):
        assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600
    full = json.loads((keys / "k.jwk").read_text())["keys"]
    reader = json.loads((keys / "r.jwk").read_text())["keys"]
    assert any("d" in k for k in full) and not any("d" in k for k in reader)
    assert {k["kid"] for k in full} == {k["kid"] for k in reader}


def test_keys_from_environment(ctfs, keys, plain, tmp_path):
    e = tmp_path / "e.safetensors"
    ctfs("encrypt", plain, e, "--key", keys / "k.jwk", "-q", check=0)
    p = ctfs("verify", e)
    assert p.returncode == 5
    env = {"CRYPTOTENSOR_KEYS": (keys / "r.jwk").read_text()}
    ctfs("verify", e, env=env, check=0)
    d = tmp_path / "d.safetensors"
    ctfs("decrypt", e, d, "-q", env=env, check=0)
    got = load_file(str(d))
    for k, v in make_tensors().items():
        assert np.array_equal(got[k], v), k
