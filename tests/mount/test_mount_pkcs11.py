# SPDX-License-Identifier: Apache-2.0
"""Mounts whose master key lives in a PKCS#11 token (SoftHSM2, set up by the test:
tests/softhsm_util.py).

* `--pkcs11 URI` and a config `keys: [{pkcs11: URI}]` entry: the mount serves correct bytes,
  read with the stock `safetensors` loader; a wrong PIN is a clear error and nothing is mounted.
* The master key is never held by the daemon. It is imported into the token from a known JWK
  (`keygen --pkcs11 --import-key`) so its bytes can be searched for; the daemon's whole memory
  is read (tests/mount/test_daemon_memory.py's reader) while it serves, after every tensor was
  read, and again at its exit: no word of the master key, no data key and no plaintext at
  exit. Controls: the live scan finds every data key (unwrapped by the token) and plaintext.
  SoftHSM2 is a library: during each C_Decrypt it decrypts the key inside the daemon process,
  and this test cannot see such a transient copy; a hardware token keeps the key out
  entirely. (`p11-kit server`, which would hold SoftHSM in another process, answers
  CKR_MECHANISM_INVALID for CKM_AES_GCM in Debian 12's p11-kit 0.24.1: its RPC does not
  carry GCM parameters.)"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from . import mount_util as M
from .conftest import EXTRA_MOUNT_ARGS, MOUNT_TIMEOUT, log_tail

__all__ = ["random_model"]  # the fixture, shared with test_daemon_memory.py
from .test_daemon_memory import (ExitTracer, Secrets, WordIndex, check_live_daemon, describe,
                                 dump_memory, random_model, read_through_mount, scan)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import softhsm_util as H  # noqa: E402


def sign_only(keys, path):
    """The verification key of `keys` alone (the master key comes from the token)."""
    pub = [k for k in keys.reader_jwks()["keys"] if k["kty"] == "okp"]
    path.write_text(json.dumps({"keys": pub}))
    path.chmod(0o600)
    return path


def master_kid(keys):
    return next(k["kid"] for k in keys.reader_jwks()["keys"] if k["kty"] == "oct")


@pytest.fixture()
def hsm_with_key(ctfs, keys, mounter):
    """A token holding the test key set's master key (imported, non-extractable)."""
    hsm = H.SoftHsm(mounter.dir / "hsm")
    r = ctfs.run("keygen", "--pkcs11", hsm.uri(master_kid(keys)), "--import-key", keys.full,
                 "--out", mounter.dir / "token-sign.jwk", env=hsm.env, timeout=60)
    assert r.rc == 0 and "imported aes256gcm key" in r.stdout, r.describe()
    return hsm


def check_loader(mnt, model):
    """The stock safetensors loader reads every tensor of every file as written."""
    from safetensors.numpy import load_file
    n = 0
    for rel in model.files():
        if not rel.endswith(".safetensors"):
            continue
        got, want = load_file(str(mnt / rel)), load_file(str(model.plain / rel))
        assert got.keys() == want.keys(), rel
        for name in want:
            assert got[name].tobytes() == want[name].tobytes(), f"{rel}:{name}"
            n += 1
    assert n > 0


def test_mount_with_token_key(ctfs, keys, small_model, mounter, hsm_with_key):
    hsm = hsm_with_key
    uri = hsm.uri(master_kid(keys))
    pub = sign_only(keys, mounter.dir / "pub.jwk")
    m = mounter.mount(small_model.enc, keys=[pub], args=("--pkcs11", uri), env=hsm.env)
    check_loader(m.mnt, small_model)
    r = ctfs.run("umount", m.mnt, timeout=30)
    assert r.rc == 0, r.describe()

    # The same from a config file's keys: entry.
    mnt = mounter.new_mnt()
    mounter.mnts.append(mnt)
    log = mounter.dir / "cfg.log"
    cfg = mounter.dir / "pkcs11.yaml"
    cfg.write_text(f"source: {small_model.enc}\nmountpoint: {mnt}\n"
                   f"keys:\n  - file: {pub}\n  - pkcs11: \"{uri}\"\nlog: {{file: {log}}}\n")
    r = ctfs.run("mount", "--config", cfg, *EXTRA_MOUNT_ARGS, env=hsm.env, timeout=MOUNT_TIMEOUT)
    assert r.rc == 0, r.describe() + "\n" + log_tail(log)
    (e,) = M.mounts_at(mnt)
    mounter.pids[mnt] = e.pid
    check_loader(mnt, small_model)
    st = ctfs.run("status", "--json", mnt, timeout=30)
    assert st.rc == 0, st.describe()

    # A wrong PIN: a clear error, nothing mounted.
    bad = mounter.dir / "bad.pin"
    bad.write_text("0000\n")
    bad.chmod(0o600)
    mnt2 = mounter.new_mnt()
    r = mounter.try_mount(small_model.enc, mnt2, keys=[pub],
                          args=("--pkcs11", hsm.uri(master_kid(keys), pin_file=bad)), env=hsm.env)
    assert r.rc == 6 and "wrong PIN" in r.stderr, r.describe()
    assert not M.mounts_at(mnt2)


@pytest.mark.timeout_s(180)
def test_master_key_never_in_daemon_memory(ctfs, keys, mounter, hsm_with_key, random_model):
    hsm = hsm_with_key
    plain, enc, rel, plaintexts = random_model  # random bytes, written with the same master key
    secrets = Secrets(keys, enc / rel)
    keys_index = WordIndex(secrets.named())
    plain_index = WordIndex({f"plaintext of {n!r}": p for n, p in plaintexts.items()})
    pub = sign_only(keys, mounter.dir / "pub.jwk")

    uri = hsm.uri(master_kid(keys))
    # CRYPTOTENSOR_KEYS is dropped by the runner; no key file holds the master key.
    m = mounter.mount(enc, keys=[pub], args=("--pkcs11", uri), env=hsm.env)
    # Every data key was unwrapped in the token before the mount went live; then the resolver
    # let go of the token: its session is closed and the module unloaded while the mount serves.
    assert "libsofthsm2" not in Path(f"/proc/{m.pid}/maps").read_text()
    tracer = ExitTracer(m.pid)
    try:
        read_through_mount(m.mnt, plain, rel)
        check_live_daemon(m.pid, secrets, keys_index, plain_index)

        os.kill(m.pid, 15)
        assert tracer.wait_exit_stop(60), m.log_tail()
        regions, _ = dump_memory(m.pid)
        found = scan(regions, keys_index, plain_index)
        del regions
    finally:
        tracer.detach()
    assert M.wait_until(lambda: not M.alive(m.pid), 30)
    assert M.wait_until(lambda: not M.mounts_at(m.mnt), 10)
    assert not found, "secrets in the daemon's memory at exit:\n" + describe(found)
