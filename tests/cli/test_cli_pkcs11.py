# SPDX-License-Identifier: Apache-2.0
"""PKCS#11 master keys on the CLI, against a SoftHSM2 token the test sets up
(tests/softhsm_util.py): `keygen --pkcs11` creates a sensitive, non-extractable AES key in the
token and writes only the signing key to the files; encrypt/verify/decrypt wrap and unwrap the
data keys inside the token; every failure (wrong PIN, no PIN, missing token or key, another
token's key, an extractable key, chacha20, a bad URI) is a clear error and writes nothing."""
import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import softhsm_util as H  # noqa: E402

EXIT_INVALID, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_PERMISSION, EXIT_EXISTS = 3, 4, 5, 6, 8


def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture()
def hsm(tmp_path):
    return H.SoftHsm(tmp_path / "hsm")


@pytest.fixture()
def token_keys(ctfs, hsm, tmp_path):
    """A master key "kek" made in the token, and the signing key files."""
    sign, reader = tmp_path / "sign.jwk", tmp_path / "sign.pub.jwk"
    r = ctfs("keygen", "--pkcs11", hsm.uri("kek"), "--out", sign, "--reader-out", reader,
             env=hsm.env, check=0)
    assert 'created aes256gcm key "kek" in token "ctfs-test" (sensitive, non-extractable)' \
        in r.stdout, r.stdout
    return sign, reader


def test_keygen_keeps_the_master_key_in_the_token(ctfs, hsm, token_keys):
    sign, reader = token_keys
    for f in (sign, reader):
        ks = json.loads(f.read_text())["keys"]
        assert [k["kty"] for k in ks] == ["okp"], ks          # no oct key, no "k" anywhere
        assert '"k"' not in f.read_text()
    listing = hsm.tool("--list-objects", "--type", "secrkey")
    assert listing.returncode == 0, listing.stderr
    assert "label:      kek" in listing.stdout, listing.stdout
    assert "never extractable" in listing.stdout and "sensitive" in listing.stdout, listing.stdout
    # The token itself refuses to hand out the value.
    out = hsm.tool("--read-object", "--type", "secrkey", "--label", "kek")
    assert out.returncode != 0 and "CKR_ATTRIBUTE_SENSITIVE" in out.stderr + out.stdout, out
    # A second key with the same label is refused; the first stays.
    r = ctfs("keygen", "--pkcs11", hsm.uri("kek"), "--out", sign.with_name("again.jwk"),
             env=hsm.env)
    assert r.returncode == EXIT_EXISTS and "already exists" in r.stderr, r.stderr
    assert not sign.with_name("again.jwk").exists()


def test_round_trip_through_the_token(ctfs, hsm, token_keys, plain, tmp_path):
    sign, reader = token_keys
    e, d = tmp_path / "e.safetensors", tmp_path / "d.safetensors"
    ctfs("encrypt", plain, e, "--key", sign, "--pkcs11", hsm.uri("kek"), "-q", env=hsm.env,
         check=0)
    info = ctfs("inspect", e, check=0).stdout
    assert "aes256gcm, key id kek" in info, info
    ctfs("verify", e, "--key", reader, "--pkcs11", hsm.uri("kek"), env=hsm.env, check=0)
    ctfs("decrypt", e, d, "--key", reader, "--pkcs11", hsm.uri("kek"), "-q", env=hsm.env,
         check=0)
    assert sha(d) == sha(plain)
    # Without the token there is no master key.
    r = ctfs("decrypt", e, tmp_path / "x.safetensors", "--key", reader)
    assert r.returncode == EXIT_NOT_FOUND and 'no oct key with kid "kek"' in r.stderr, r.stderr


def test_token_failures_are_clear_errors(ctfs, hsm, token_keys, plain, tmp_path):
    sign, reader = token_keys
    e = tmp_path / "e.safetensors"
    ctfs("encrypt", plain, e, "--key", sign, "--pkcs11", hsm.uri("kek"), "-q", env=hsm.env,
         check=0)
    bad_pin = tmp_path / "bad.pin"
    bad_pin.write_text("0000\n")
    bad_pin.chmod(0o600)
    # Another token with a key of the same label: the tag of the wrapped key does not verify.
    hsm.init_token("other")
    ctfs("keygen", "--pkcs11", hsm.uri("kek", token="other"), "--out", tmp_path / "o.jwk",
         env=hsm.env, check=0)
    loose = tmp_path / "loose.pin"
    loose.write_text(H.PIN + "\n")
    loose.chmod(0o644 | 0o020)
    cases = [
        (hsm.uri("kek", pin_file=bad_pin), EXIT_PERMISSION, 'token "ctfs-test": wrong PIN'),
        (hsm.uri("kek", pin_file=False), EXIT_INVALID, "needs a PIN: add pin-source="),
        (hsm.uri("kek", pin_file=loose), EXIT_PERMISSION, "group- or world-writable"),
        (hsm.uri("kek", token="nope"), EXIT_NOT_FOUND, 'no token "nope" (tokens present: '),
        (hsm.uri("nokey"), EXIT_NOT_FOUND, 'PKCS#11 key "nokey" in token "ctfs-test": no such'),
        (hsm.uri("kek", token="other"), EXIT_AUTH,
         'cannot unwrap its data key (kid "kek"): wrong master key or tampered header'),
        (hsm.uri("kek", module="/nonexistent/module.so"), 1,
         "PKCS#11 module /nonexistent/module.so: cannot load it"),
        (hsm.uri("kek") + "&pin-value=1234", EXIT_INVALID, "pin-value is not accepted"),
        (hsm.uri("kek").replace("token=", "tokne="), EXIT_INVALID,
         'unsupported path attribute "tokne"'),
    ]
    for uri, code, text in cases:
        out = tmp_path / "d.safetensors"
        r = ctfs("decrypt", e, out, "--key", reader, "--pkcs11", uri, "-q", env=hsm.env)
        assert r.returncode == code and text in r.stderr, (uri, r.returncode, r.stderr)
        assert not out.exists(), uri
        assert H.PIN not in r.stderr and "0000" not in r.stderr


def test_extractable_and_chacha_keys_are_refused(ctfs, hsm, plain, tmp_path):
    r = hsm.tool("--keygen", "--key-type", "AES:32", "--label", "loose", "--extractable")
    assert r.returncode == 0, r.stderr
    r = ctfs("verify", plain, "--pkcs11", hsm.uri("loose"), "--allow-plain", env=hsm.env)
    assert r.returncode == EXIT_PERMISSION, r.stderr
    assert 'PKCS#11 key "loose" in token "ctfs-test" is extractable' in r.stderr, r.stderr
    r = ctfs("keygen", "--pkcs11", hsm.uri("cc"), "--alg", "chacha20poly1305", "--out",
             tmp_path / "cc.jwk", env=hsm.env)
    assert r.returncode == EXIT_INVALID and "AES-GCM only" in r.stderr, r.stderr
    assert not (tmp_path / "cc.jwk").exists()
    # A chacha20 file cannot be read with a token key of the same kid.
    ctfs("keygen", "--out", tmp_path / "c.jwk", "--alg", "chacha20poly1305", "--enc-kid", "kek2",
         check=0)
    e = tmp_path / "c.safetensors"
    ctfs("encrypt", plain, e, "--key", tmp_path / "c.jwk", "-q", check=0)
    ctfs("keygen", "--pkcs11", hsm.uri("kek2"), "--out", tmp_path / "s.jwk", env=hsm.env,
         check=0)
    keys = json.loads((tmp_path / "c.jwk").read_text())["keys"]
    sign_only = tmp_path / "sign-only.jwk"
    sign_only.write_text(json.dumps({"keys": [k for k in keys if k["kty"] == "okp"]}))
    sign_only.chmod(0o600)
    r = ctfs("decrypt", e, tmp_path / "d.safetensors", "--key", sign_only, "--pkcs11",
             hsm.uri("kek2"), env=hsm.env)
    assert r.returncode == EXIT_INVALID, (r.returncode, r.stderr)
    assert "encrypted with chacha20poly1305" in r.stderr and "AES-GCM only" in r.stderr, r.stderr


def test_import_moves_a_file_key_into_the_token(ctfs, hsm, plain, keys, tmp_path):
    """--import-key: files written with the file key read through the token key."""
    e, d = tmp_path / "e.safetensors", tmp_path / "d.safetensors"
    ctfs("encrypt", plain, e, "--key", keys / "k.jwk", "-q", check=0)
    kid = next(k["kid"] for k in json.loads((keys / "k.jwk").read_text())["keys"]
               if k["kty"] == "oct")
    r = ctfs("keygen", "--pkcs11", hsm.uri(kid), "--import-key", keys / "k.jwk", "--out",
             tmp_path / "s.jwk", env=hsm.env, check=0)
    assert f'imported aes256gcm key "{kid}"' in r.stdout, r.stdout
    pub = [k for k in json.loads((keys / "r.jwk").read_text())["keys"] if k["kty"] == "okp"]
    sign_only = tmp_path / "sign-only.jwk"
    sign_only.write_text(json.dumps({"keys": pub}))
    sign_only.chmod(0o600)
    ctfs("decrypt", e, d, "--key", sign_only, "--pkcs11", hsm.uri(kid), "-q", env=hsm.env,
         check=0)
    assert sha(d) == sha(plain)


def test_config_pkcs11_entries(ctfs, hsm, token_keys, plain, tmp_path):
    sign, reader = token_keys
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    src.mkdir()
    mnt.mkdir()
    ctfs("encrypt", plain, src / "m.safetensors", "--key", sign, "--pkcs11", hsm.uri("kek"),
         "-q", env=hsm.env, check=0)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"source: {src}\nmountpoint: {mnt}\n"
                   f"keys:\n  - file: {reader}\n  - pkcs11: \"{hsm.uri('kek')}\"\n")
    r = ctfs("check-config", cfg, env=hsm.env, check=0)
    assert "1 encrypted" in r.stdout, r.stdout
    cfg.write_text(f"source: {src}\nmountpoint: {mnt}\n"
                   f"keys:\n  - file: {reader}\n  - pkcs11: \"{hsm.uri('nokey')}\"\n")
    r = ctfs("check-config", cfg, env=hsm.env)
    assert r.returncode != 0 and f"{cfg}:5:13:" in r.stderr and "no such secret key" in r.stderr, \
        r.stderr
    cfg.write_text(f"source: {src}\nmountpoint: {mnt}\nkeys: [{{pkcs11: token=kek}}]\n")
    r = ctfs("check-config", cfg, env=hsm.env)
    assert r.returncode == EXIT_INVALID and "expected a PKCS#11 URI" in r.stderr, r.stderr
