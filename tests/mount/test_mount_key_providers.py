# SPDX-License-Identifier: Apache-2.0
"""Key providers on real mounts (README "Key providers"): a systemd credential
(CREDENTIALS_DIRECTORY set as systemd would), a passphrase-protected key file (--key +
--passphrase-file and `keys: [{file, passphrase_file}]`), and an exec helper (a shell script
printing the reader JWK Set). Each mounts the small model and reading through the mount gives
the plaintext bytes; a wrong passphrase or a failing helper mounts nothing."""
from __future__ import annotations

import os

from . import mount_util as M
from .conftest import MOUNT_TIMEOUT, EXTRA_MOUNT_ARGS

REL = "weights.safetensors"


def mount_config(mounter, tmp_path, src, keys_yaml, env=None):
    """Runs `ctfs mount --config` of SRC with `keys_yaml` as the keys: value; returns
    (result, mnt)."""
    mnt = mounter.new_mnt()
    mounter.mnts.append(mnt)
    cfg = tmp_path / f"m{mounter.n}.yaml"
    cfg.write_text(f"source: {src}\nmountpoint: {mnt}\nkeys: {keys_yaml}\n"
                   f"log: {{file: {tmp_path}/daemon{mounter.n}.log}}\n")
    r = mounter.ctfs.run("mount", "--config", cfg, *EXTRA_MOUNT_ARGS, env=env,
                         timeout=MOUNT_TIMEOUT)
    return r, mnt


def assert_reads(mounter, small_model, r, mnt):
    assert r.rc == 0, r.describe()
    entries = M.mounts_at(mnt)
    assert len(entries) == 1 and entries[0].fstype == M.FSTYPE, entries
    mounter.pids[mnt] = entries[0].pid
    assert (mnt / REL).read_bytes() == small_model.plain_bytes(REL)


def assert_nothing_mounted(mnt, r):
    assert not M.mounts_at(mnt), r.describe()
    assert not M.ctfs_processes_with_arg(str(mnt))


def secret_file(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_systemd_credential(mounter, small_model, keys, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    secret_file(creds / "llama.jwk", keys.reader.read_text(), 0o400)
    r, mnt = mount_config(mounter, tmp_path, small_model.enc, "[{credential: llama.jwk}]",
                          env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert_reads(mounter, small_model, r, mnt)


def test_credential_without_directory_mounts_nothing(mounter, small_model, tmp_path):
    env = {k: v for k, v in M.clean_env().items() if k != "CREDENTIALS_DIRECTORY"}
    mnt = mounter.new_mnt()
    mounter.mnts.append(mnt)
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"source: {small_model.enc}\nmountpoint: {mnt}\n"
                   "keys: [{credential: llama.jwk}]\n")
    r = M.run([mounter.ctfs.bin, "mount", "--config", cfg, *EXTRA_MOUNT_ARGS], env=env,
              timeout=MOUNT_TIMEOUT)
    assert r.rc != 0
    assert ('credential "llama.jwk": $CREDENTIALS_DIRECTORY is not set'
            in M.error_line(r)), r.describe()
    assert_nothing_mounted(mnt, r)


def test_passphrase_key_file_mounts(mounter, ctfs, tmp_path):
    """A model encrypted under a passphrase-protected key set mounts with --passphrase-file and
    reads correctly; a wrong passphrase exits 4 and mounts nothing."""
    import numpy as np
    from safetensors.numpy import save_file
    pw = secret_file(tmp_path / "pw", "s3cret passphrase\n")
    full, reader = tmp_path / "k.enc.jwk", tmp_path / "r.enc.jwk"
    ctfs.ok("keygen", "--out", full, "--reader-out", reader, "--passphrase-file", pw)
    plain, enc = tmp_path / "plain", tmp_path / "enc"
    plain.mkdir()
    save_file({"w": np.arange(3000, dtype=np.float32)}, str(plain / REL))
    ctfs.ok("encrypt", plain, enc, "--key", full, "--passphrase-file", pw, "-q")
    want = (plain / REL).read_bytes()

    m = mounter.mount(enc, keys=[reader], args=("--passphrase-file", pw))
    assert (m.mnt / REL).read_bytes() == want

    bad = secret_file(tmp_path / "bad", "not it\n")
    mnt = mounter.new_mnt()
    r = mounter.try_mount(enc, mnt, keys=[reader], args=("--passphrase-file", bad))
    assert r.rc == 4, r.describe()
    assert f"wrong passphrase or damaged key file {reader}" in M.error_line(r), r.describe()
    assert_nothing_mounted(mnt, r)

    # The same through the config file.
    r, mnt = mount_config(mounter, tmp_path, enc, f"[{{file: {reader}, passphrase_file: {pw}}}]")
    assert r.rc == 0, r.describe()
    mounter.pids[mnt] = M.mounts_at(mnt)[0].pid
    assert (mnt / REL).read_bytes() == want


def test_exec_helper(mounter, small_model, keys, tmp_path):
    helper = tmp_path / "helper.sh"
    helper.write_text("#!/bin/sh\n"
                      'echo "helper: fetching $1" >&2\n'
                      f"cat '{keys.reader}'\n")
    os.chmod(helper, 0o700)
    r, mnt = mount_config(mounter, tmp_path, small_model.enc,
                          f"[{{exec: [{helper}, llama], timeout_s: 20}}]")
    assert_reads(mounter, small_model, r, mnt)
    assert "helper: fetching llama" in r.stderr, r.describe()


def test_exec_helper_failures_mount_nothing(mounter, small_model, tmp_path):
    cases = {
        "exit": ("echo 'vault: permission denied' >&2\nexit 2",
                 "exited with status 2: vault: permission denied"),
        "garbage": ("echo hello", "stdout is not a JWK or JWK Set"),
        "hang": ("sleep 60", "did not finish within 1 s (killed)"),
        "huge": ("head -c 104857600 /dev/zero", "printed more than 1048576 bytes on stdout"),
    }
    for name, (body, want) in cases.items():
        helper = tmp_path / f"{name}.sh"
        helper.write_text(f"#!/bin/sh\n{body}\n")
        os.chmod(helper, 0o700)
        r, mnt = mount_config(mounter, tmp_path, small_model.enc,
                              f"[{{exec: [{helper}], timeout_s: 1}}]")
        assert r.rc != 0, (name, r.describe())
        err = [l for l in r.stderr.splitlines() if l.startswith("ctfs: error: ")]
        assert err and want in err[0] and f"exec helper {helper}" in err[0], (name, r.describe())
        assert_nothing_mounted(mnt, r)
