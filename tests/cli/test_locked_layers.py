# SPDX-License-Identifier: Apache-2.0
"""`ctfs encrypt --lock GLOB --lock-key K`: locked layers (the writer, decrypt, verify, inspect).

The matching tensors move into one locked shard per model directory, encrypted under the lock
key and marked locked in signed metadata; the transformers index is written or rewritten so the
whole model still loads. The reference package reads the locked shard given the lock key.
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

LOCKED = "model-locked.safetensors"
INDEX = "model.safetensors.index.json"


def model_tensors():
    rng = np.random.default_rng(7)
    t = {"model.embed_tokens.weight": rng.standard_normal((32, 16)).astype(np.float32),
         "lm_head.weight": rng.standard_normal((32, 16)).astype(np.float16),
         "model.norm.weight": rng.standard_normal(16).astype(np.float32)}
    for i in range(3):
        t[f"model.layers.{i}.mlp.weight"] = rng.standard_normal((16, 16)).astype(np.float32)
        t[f"model.layers.{i}.attn.bias"] = rng.standard_normal(16).astype(np.float16)
    return t


@pytest.fixture(scope="module")
def lock_key(ctfs, tmp_path_factory):
    d = tmp_path_factory.mktemp("lockkey")
    ctfs("keygen", "--out", d / "lock.jwk", "--enc-kid", "lock-enc", "--sign-kid", "lock-sign",
         check=0)
    return d / "lock.jwk"


@pytest.fixture()
def single(tmp_path):
    """A single-file model directory: model.safetensors + config.json."""
    d = tmp_path / "single"
    d.mkdir()
    tensors = model_tensors()
    save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text('{"model_type": "test"}\n')
    return d, tensors


@pytest.fixture()
def sharded(tmp_path):
    """A two-shard model with an index; layers 0-1 in shard 1, the rest in shard 2."""
    d = tmp_path / "sharded"
    d.mkdir()
    tensors = model_tensors()
    s1 = {k: v for k, v in tensors.items() if ".layers.0." in k or ".layers.1." in k}
    s2 = {k: v for k, v in tensors.items() if k not in s1}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    save_file(s1, str(d / names[0]), metadata={"format": "pt"})
    save_file(s2, str(d / names[1]), metadata={"format": "pt"})
    wm = {k: names[0] for k in s1} | {k: names[1] for k in s2}
    index = {"metadata": {"total_size": sum(v.nbytes for v in tensors.values())}, "weight_map": wm}
    (d / INDEX).write_text(json.dumps(index, indent=2))
    return d, tensors


def load_model(d):
    """Every tensor of a model directory, through its index."""
    wm = json.loads((Path(d) / INDEX).read_text())["weight_map"]
    out = {}
    for f in sorted(set(wm.values())):
        for k, v in load_file(str(Path(d) / f)).items():
            assert wm[k] == f, f"{k} is in {f} but the index says {wm[k]}"
            out[k] = v
    assert sorted(out) == sorted(wm)
    return out


def assert_same(got, want):
    assert sorted(got) == sorted(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        assert np.array_equal(got[k], v), k


def header_meta(path):
    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]).get("__metadata__", {})


def test_single_file_model_split_index_and_round_trip(ctfs, keys, lock_key, single, tmp_path):
    src, tensors = single
    enc = tmp_path / "enc"
    p = ctfs("encrypt", src, enc, "--key", keys / "k.jwk", "--lock", "model.layers.[0-1].*",
             "--lock-key", lock_key, check=0)
    assert "locked 4 tensor(s) into model-locked.safetensors" in p.stdout
    assert sorted(os.listdir(enc)) == sorted(
        ["config.json", INDEX, LOCKED, "model-00001-of-00001.safetensors"])
    assert not any(n.startswith("enc.") for n in os.listdir(tmp_path)), "staging left behind"
    wm = json.loads((enc / INDEX).read_text())["weight_map"]
    assert sorted(wm) == sorted(tensors)
    for k, f in wm.items():
        want = LOCKED if k.startswith(("model.layers.0.", "model.layers.1.")) else \
            "model-00001-of-00001.safetensors"
        assert f == want, k
    # The marker is user metadata, so it is covered by the signature; the lock key encrypts.
    meta = header_meta(enc / LOCKED)
    assert meta["ctfs.locked"] == "model.layers.[0-1].*"
    assert json.loads(meta["__crypto_keys__"])["enc"]["kid"] == "lock-enc"
    assert "ctfs.locked" not in header_meta(enc / "model-00001-of-00001.safetensors")
    insp = json.loads(ctfs("inspect", "--json", enc / LOCKED, check=0).stdout)
    assert insp["locked"] is True and all(t["encrypted"] for t in insp["tensors"])
    assert "locked:" in ctfs("inspect", enc / LOCKED, check=0).stdout
    assert json.loads(ctfs("inspect", "--json", enc / "model-00001-of-00001.safetensors",
                           check=0).stdout)["locked"] is False

    # Both keys: verify passes, decrypt restores every original tensor.
    ctfs("verify", enc, "--key", keys / "k.jwk", "--key", lock_key, check=0)
    out = tmp_path / "dec"
    ctfs("decrypt", enc, out, "--key", keys / "k.jwk", "--key", lock_key, check=0)
    assert_same(load_model(out), tensors)
    assert (out / "config.json").read_text() == (src / "config.json").read_text()

    # Main key only: verify reports the locked shard and passes; decrypt cannot.
    v = ctfs("verify", enc, "--key", keys / "r.jwk", check=0)
    assert "LOCKED" in v.stdout and "lock key lock-enc not available" in v.stdout
    d = ctfs("decrypt", enc, tmp_path / "dec2", "--key", keys / "k.jwk")
    assert d.returncode != 0 and "lock-enc" in d.stderr
    assert not (tmp_path / "dec2").exists()
    # Without the signing key the marker cannot be trusted: verify fails.
    v = ctfs("verify", enc / LOCKED, "--key", keys / "other.jwk")
    assert v.returncode != 0


def test_sharded_model_rewrites_only_affected_shards(ctfs, keys, lock_key, sharded, tmp_path):
    src, tensors = sharded
    enc = tmp_path / "enc"
    ctfs("encrypt", src, enc, "--key", keys / "k.jwk", "--lock", "model.layers.1.*",
         "--lock", "lm_head.*", "--lock-key", lock_key, "-q", check=0)
    assert sorted(os.listdir(enc)) == sorted(
        [INDEX, LOCKED, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
    index = json.loads((enc / INDEX).read_text())
    assert index["metadata"]["total_size"] == sum(v.nbytes for v in tensors.values())
    wm = index["weight_map"]
    assert wm["lm_head.weight"] == LOCKED
    assert wm["model.layers.1.mlp.weight"] == LOCKED
    assert wm["model.layers.0.mlp.weight"] == "model-00001-of-00002.safetensors"
    assert wm["model.norm.weight"] == "model-00002-of-00002.safetensors"
    out = tmp_path / "dec"
    ctfs("decrypt", enc, out, "--key", keys / "k.jwk", "--key", lock_key, check=0)
    assert_same(load_model(out), tensors)


def test_reference_reads_locked_shard_with_lock_key(ctfs, keys, lock_key, single, tmp_path):
    cryptotensors = pytest.importorskip("cryptotensors")
    src, tensors = single
    enc = tmp_path / "enc"
    ctfs("encrypt", src, enc, "--key", keys / "k.jwk", "--lock", "model.layers.2.*",
         "--lock-key", lock_key, "-q", check=0)
    lock = json.loads(Path(lock_key).read_text())["keys"]
    main = json.loads((keys / "k.jwk").read_text())["keys"]
    enc_key = next(k for k in lock if k["kty"] == "oct")
    sign_key = next(k for k in main if k["kty"] == "okp")
    config = {"enc_key": {f: enc_key[f] for f in ("kty", "alg", "kid", "k")},
              "sign_key": {f: sign_key[f] for f in ("kty", "alg", "kid", "x")}}
    with cryptotensors.safe_open(str(enc / LOCKED), framework="np", config=config) as f:
        got = {k: np.array(f.get_tensor(k)) for k in f.keys()}
        assert f.metadata()["ctfs.locked"] == "model.layers.2.*"
    assert_same(got, {k: v for k, v in tensors.items() if k.startswith("model.layers.2.")})


def test_errors_leave_nothing(ctfs, keys, lock_key, single, tmp_path):
    src, _ = single
    enc = tmp_path / "enc"
    cases = [
        (["--lock", "nomatch.*", "--lock-key", lock_key], "'nomatch.*' matches no tensor"),
        (["--lock", "model.layers.0.*"], "--lock needs --lock-key"),
        (["--lock-key", lock_key], "--lock-key needs --lock"),
        (["--lock", "model.layers.0.*", "--lock-key", keys / "k.jwk"], "same kid"),
    ]
    for extra, msg in cases:
        p = ctfs("encrypt", src, enc, "--key", keys / "k.jwk", *extra)
        assert p.returncode != 0, extra
        assert msg in p.stderr, (extra, p.stderr)
        assert not enc.exists()
        assert sorted(os.listdir(tmp_path)) == ["single"], os.listdir(tmp_path)
    # A lock key set without an encryption key.
    no_oct = tmp_path / "sign-only.jwk"
    sign = [k for k in json.loads(Path(lock_key).read_text())["keys"] if k["kty"] == "okp"]
    fd = os.open(no_oct, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps({"keys": sign}).encode())
    os.close(fd)
    p = ctfs("encrypt", src, enc, "--key", keys / "k.jwk", "--lock", "model.*",
             "--lock-key", no_oct)
    assert p.returncode != 0 and "no encryption key" in p.stderr
    # A single file as SRC.
    p = ctfs("encrypt", src / "model.safetensors", tmp_path / "x.safetensors", "--key",
             keys / "k.jwk", "--lock", "model.*", "--lock-key", lock_key)
    assert p.returncode != 0 and "model directory" in p.stderr
    # Several shards and no index.
    save_file({"x": np.zeros(2, np.float32)}, str(src / "extra.safetensors"))
    p = ctfs("encrypt", src, enc, "--key", keys / "k.jwk", "--lock", "model.*",
             "--lock-key", lock_key)
    assert p.returncode != 0 and "index" in p.stderr
    assert not enc.exists()
