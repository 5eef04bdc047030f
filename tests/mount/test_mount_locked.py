# SPDX-License-Identifier: Apache-2.0
"""Locked layers on a real mount: a tiny Llama encrypted with `ctfs encrypt --lock` (layer 0 in
a locked shard under its own key).

With the lock key every file reads exactly like `ctfs decrypt`'s output and transformers gives
the plaintext model's logits. Without it the mount still comes up: the locked shard is listed
with its real size and every open of it is EACCES, every other file reads correctly, and
from_pretrained fails on the locked shard (never zeros or made-up weights). A locked shard
whose signed marker does not verify is refused like any damaged file."""
import errno
import json
import os
from pathlib import Path

import pytest

from .test_transformers import drive, torch_python  # noqa: F401  (fixture)

LOCKED = "model-locked.safetensors"

LOAD_DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import tiny_llama
try:
    tiny_llama.logits(sys.argv[2])
    print(json.dumps({"loaded": True}))
except Exception as e:  # report what the loader raised
    print(json.dumps({"loaded": False, "type": type(e).__name__, "error": str(e)}))
"""


@pytest.fixture(scope="module")
def locked_model(ctfs, keys, tmp_path_factory, torch_python):  # noqa: F811
    root = tmp_path_factory.mktemp("locked")
    plain, enc, dec = root / "plain", root / "enc", root / "dec"
    drive(torch_python, "make", plain)
    lock = root / "lock.jwk"
    ctfs.ok("keygen", "--out", lock, "--enc-kid", "lock-enc", "--sign-kid", "lock-sign")
    ctfs.ok("encrypt", plain, enc, "--key", keys.full, "--lock", "model.layers.0.*",
            "--lock-key", lock, "-q", timeout=120)
    assert (enc / LOCKED).exists()
    wm = json.loads((enc / "model.safetensors.index.json").read_text())["weight_map"]
    assert {k for k, f in wm.items() if f == LOCKED} == \
        {k for k in wm if k.startswith("model.layers.0.")}
    ctfs.ok("decrypt", enc, dec, "--key", keys.full, "--key", lock, "-q", timeout=120)
    return plain, enc, dec, lock


def files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def test_mount_with_lock_key_serves_everything(keys, mounter, locked_model, torch_python):  # noqa: F811
    plain, enc, dec, lock = locked_model
    m = mounter.mount(enc, keys=[keys.reader, lock])
    assert files(m.mnt) == files(dec)
    for rel in files(dec):
        assert (m.mnt / rel).read_bytes() == (dec / rel).read_bytes(), rel
    r = drive(torch_python, "compare", plain, m.mnt)
    assert r["equal"], r
    assert r["norm"] > 0, r


def test_mount_without_lock_key_denies_only_the_locked_shard(ctfs, keys, mounter, locked_model,
                                                             torch_python):  # noqa: F811
    plain, enc, dec, _ = locked_model
    m = mounter.mount(enc, keys=[keys.reader])
    assert files(m.mnt) == files(dec)
    assert os.stat(m.mnt / LOCKED).st_size == (dec / LOCKED).stat().st_size
    with pytest.raises(PermissionError) as e:
        open(m.mnt / LOCKED, "rb")
    assert e.value.errno == errno.EACCES
    for rel in files(dec):
        if rel != LOCKED:
            assert (m.mnt / rel).read_bytes() == (dec / rel).read_bytes(), rel
    said = m.result.stderr + m.log.read_text(errors="replace")
    assert "locked: model-locked.safetensors: lock key lock-enc not available" in said, said[-2000:]
    p = __import__("subprocess").run(
        [torch_python, "-c", LOAD_DRIVER, str(Path(__file__).resolve().parent), str(m.mnt)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert not r["loaded"], r
    # The kernel answers EACCES (checked above); the safetensors binding reports every failed
    # open of a shard as FileNotFoundError. Either way the load fails on the locked shard.
    assert r["type"] in ("PermissionError", "FileNotFoundError", "OSError"), r
    assert LOCKED in r["error"], r
    ctfs.ok("umount", m.mnt, timeout=30)


def test_unverifiable_locked_marker_is_refused(ctfs, keys, mounter, locked_model, tmp_path):
    """A "locked" claim whose signature does not verify is no excuse: the mount refuses the
    file (a missing key, as for any file), and --allow-bad-files answers EIO, not EACCES."""
    _, enc, _, _ = locked_model
    bad = tmp_path / "bad"
    bad.mkdir()
    for rel in files(enc):
        (bad / rel).write_bytes((enc / rel).read_bytes())
    raw = bytearray((bad / LOCKED).read_bytes())
    at = raw.index(b'"model.layers.0.*"')
    raw[at + 1:at + 6] = b"MODEL"  # same length: the header stays valid, the signature does not
    (bad / LOCKED).write_bytes(bytes(raw))
    r = mounter.try_mount(bad, keys=[keys.reader])
    assert r.rc != 0, r.describe()
    assert "lock-enc" in r.stderr, r.describe()
    m = mounter.mount(bad, keys=[keys.reader], args=("--allow-bad-files",))
    with pytest.raises(OSError) as e:
        open(m.mnt / LOCKED, "rb")
    assert e.value.errno == errno.EIO
    ctfs.ok("umount", m.mnt, timeout=30)


@pytest.fixture
def public_mounter(ctfs, keys):
    """A Mounter under a world-traversable directory: readers of other uids reach its mounts."""
    import shutil
    import tempfile
    from . import mount_util as M
    from .conftest import Mounter
    pub = Path(tempfile.mkdtemp(prefix="ctfs-locked-", dir="/tmp"))
    pub.chmod(0o755)
    m = Mounter(ctfs, keys, pub)
    try:
        yield m
    finally:
        notes = m.cleanup()
        left = [p for p in pub.iterdir() if M.mounts_at(p)]
        shutil.rmtree(pub, ignore_errors=True)
        assert not notes and not left, (notes, left)


def public_copy(src, dst):
    import shutil
    shutil.copytree(src, dst)
    for d, _, names in os.walk(dst):
        os.chmod(d, 0o755)
        for n in names:
            os.chmod(os.path.join(d, n), 0o644)
    return dst


def read_as(uid, path):
    import subprocess
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                           "cat", str(path)], capture_output=True, timeout=60)


def test_policy_restricts_the_locked_layers_to_one_subject(keys, public_mounter, locked_model,
                                                           torch_python):  # noqa: F811
    """With the lock key mounted, an object rule on the locked tensors gives them to one
    subject (here root: the attested inference service) and nobody else; everyone may read the
    rest. The allowed subject's transformers load gives the plaintext logits; a denied reader
    gets EACCES on the locked shard and correct bytes for every other file."""
    plain, enc, dec, lock = locked_model
    src = public_copy(enc, public_mounter.dir / "src")
    audit = public_mounter.dir / "audit.jsonl"
    cfg = public_mounter.dir / "ctfs.yaml"
    cfg.write_text(f"""\
keys: [{{file: {keys.reader}}}, {{file: {lock}}}]
allow_other: true
audit: {{file: {audit}}}
policy:
  rules:
    - {{name: inference-service, decision: allow, subject: {{uid: 0}}}}
    - {{name: locked-layers, decision: deny, object: {{tensor: "model.layers.0.*"}}}}
    - {{name: everyone-else, decision: allow}}
""")
    m = public_mounter.mount(src, keys=[], args=("--config", cfg))
    r = drive(torch_python, "compare", plain, m.mnt)
    assert r["equal"] and r["norm"] > 0, r
    denied = read_as(1234, m.mnt / LOCKED)
    assert denied.returncode != 0 and b"Permission denied" in denied.stderr, denied
    for rel in files(dec):
        if rel != LOCKED:
            got = read_as(1234, m.mnt / rel)
            assert got.returncode == 0 and got.stdout == (dec / rel).read_bytes(), rel
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert any(e.get("path") == LOCKED and e.get("decision") == "deny" and
               e.get("rule") == "locked-layers" and e.get("uid") == 1234 for e in lines), lines


def test_locked_shard_without_key_is_audited_with_the_reason(keys, public_mounter,
                                                             locked_model):
    _, enc, _, _ = locked_model
    audit = public_mounter.dir / "audit.jsonl"
    cfg = public_mounter.dir / "ctfs.yaml"
    cfg.write_text(f"keys: [{{file: {keys.reader}}}]\naudit: {{file: {audit}}}\n"
                   "policy:\n  rules:\n    - {name: all, decision: allow}\n")
    m = public_mounter.mount(enc, keys=[], args=("--config", cfg))
    with pytest.raises(PermissionError):
        open(m.mnt / LOCKED, "rb")
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert any(e.get("path") == LOCKED and e.get("decision") == "deny" and
               "lock key lock-enc not available" in e.get("reason", "") for e in lines), lines
