# SPDX-License-Identifier: Apache-2.0
"""Passphrase-protected key files on the CLI: keygen --passphrase-file seals both sets (the
key bytes are not in the files), encrypt/verify/decrypt open them with --passphrase-file, a
wrong passphrase exits 4 (auth), a sealed file without a passphrase says how to give one, and
the passphrase file gets the key-file permission checks."""
import hashlib
import json
import os


def sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def secret(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def sealed_keys(ctfs, tmp_path):
    pw = secret(tmp_path / "pw", "correct horse battery\n")
    full, reader = tmp_path / "k.jwk", tmp_path / "r.jwk"
    r = ctfs("keygen", "--out", full, "--reader-out", reader, "--passphrase-file", pw, check=0)
    assert "passphrase-protected" in r.stdout
    return pw, full, reader


def test_keygen_writes_envelopes(ctfs, tmp_path):
    _, full, reader = sealed_keys(ctfs, tmp_path)
    for f in (full, reader):
        env = json.loads(f.read_text())
        assert env["ctfs_encrypted_jwks"] == 1 and env["kdf"] == "scrypt", env
        assert (env["n"], env["r"], env["p"]) == (32768, 8, 1), env
        assert set(env) == {"ctfs_encrypted_jwks", "kdf", "n", "r", "p", "salt", "nonce",
                            "ciphertext"}
        assert '"kty"' not in f.read_text()
        assert os.stat(f).st_mode & 0o777 == 0o600
    # Fresh salt and nonce per file.
    assert json.loads(full.read_text())["salt"] != json.loads(reader.read_text())["salt"]


def test_round_trip_with_passphrase(ctfs, plain, tmp_path):
    pw, full, reader = sealed_keys(ctfs, tmp_path)
    e, d = tmp_path / "e.safetensors", tmp_path / "d.safetensors"
    ctfs("encrypt", plain, e, "--key", full, "--passphrase-file", pw, "-q", check=0)
    ctfs("verify", e, "--key", reader, "--passphrase-file", pw, check=0)
    ctfs("decrypt", e, d, "--key", reader, "--passphrase-file", pw, "-q", check=0)
    assert sha(d) == sha(plain)


def test_wrong_passphrase_exits_4(ctfs, plain, tmp_path):
    pw, full, reader = sealed_keys(ctfs, tmp_path)
    e = tmp_path / "e.safetensors"
    ctfs("encrypt", plain, e, "--key", full, "--passphrase-file", pw, "-q", check=0)
    bad = secret(tmp_path / "bad", "correct horse battery staple\n")
    for cmd in (["verify", e], ["decrypt", e, tmp_path / "d.safetensors", "-q"]):
        r = ctfs(*cmd, "--key", reader, "--passphrase-file", bad, check=4)
        assert f"wrong passphrase or damaged key file {reader}" in r.stderr, r.stderr
    assert not (tmp_path / "d.safetensors").exists()
    # A tampered envelope is the same error.
    env = json.loads(reader.read_text())
    env["n"] = 16384
    secret(reader, json.dumps(env))
    r = ctfs("verify", e, "--key", reader, "--passphrase-file", pw, check=4)
    assert "wrong passphrase or damaged key file" in r.stderr, r.stderr


def test_sealed_key_without_passphrase(ctfs, plain, tmp_path):
    pw, full, reader = sealed_keys(ctfs, tmp_path)
    e = tmp_path / "e.safetensors"
    ctfs("encrypt", plain, e, "--key", full, "--passphrase-file", pw, "-q", check=0)
    r = ctfs("verify", e, "--key", reader, check=3)  # stdin is not a terminal here
    assert "is passphrase-protected: give its passphrase with --passphrase-file" in r.stderr, \
        r.stderr


def test_passphrase_file_permissions(ctfs, tmp_path):
    pw = secret(tmp_path / "pw", "x\n", 0o622)
    r = ctfs("keygen", "--out", tmp_path / "k.jwk", "--passphrase-file", pw, check=6)
    assert "passphrase file" in r.stderr and "group- or world-writable" in r.stderr, r.stderr
    assert not (tmp_path / "k.jwk").exists()
    empty = secret(tmp_path / "empty", "\n")
    r = ctfs("keygen", "--out", tmp_path / "k.jwk", "--passphrase-file", empty, check=3)
    assert "empty passphrase" in r.stderr, r.stderr
