# SPDX-License-Identifier: Apache-2.0
"""Bad input gets one clear error line, a specific exit code, and never a partial output."""
import json
import struct
from pathlib import Path

import pytest

from conftest import read_header, write_header

USAGE, INVALID, AUTH, NOT_FOUND, EXISTS = 2, 3, 4, 5, 8
COMMANDS = ("keygen", "encrypt", "decrypt", "inspect", "verify", "mount", "umount", "revoke",
            "check-config")


def assert_one_line_error(p, *needles):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("ctfs: error: "), p.stderr
    for n in needles:
        assert n in lines[0], (n, p.stderr)


def no_output_left(directory, stem):
    left = [x.name for x in Path(directory).iterdir() if x.name.startswith(stem)]
    assert left == [], left


@pytest.fixture()
def encrypted(ctfs, keys, plain, tmp_path):
    e = tmp_path / "enc.safetensors"
    ctfs("encrypt", plain, e, "--key", keys / "k.jwk", "--chunk-size", "256", "-q", check=0)
    return e


# ---- malformed safetensors containers: encrypt and inspect both refuse them ----

def corrupt_plain_cases(plain_bytes):
    (n,) = struct.unpack("<Q", plain_bytes[:8])
    hdr = json.loads(plain_bytes[8:8 + n])
    data = plain_bytes[8 + n:]

    def with_header(h, d=data):
        t = json.dumps(h, separators=(",", ":")).encode()
        t += b" " * (-len(t) % 8)
        return struct.pack("<Q", len(t)) + t + d

    gap = json.loads(json.dumps(hdr))
    gap["ids"]["data_offsets"] = [gap["ids"]["data_offsets"][0] + 8, gap["ids"]["data_offsets"][1] + 8]
    overlap = json.loads(json.dumps(hdr))
    first = min(hdr[k]["data_offsets"][0] for k in hdr if k != "__metadata__")
    name = next(k for k in hdr if k != "__metadata__" and hdr[k]["data_offsets"][0] != first and
                hdr[k]["data_offsets"][1] > hdr[k]["data_offsets"][0])
    b, e = overlap[name]["data_offsets"]
    overlap[name]["data_offsets"] = [b - 4, e - 4]
    mismatch = json.loads(json.dumps(hdr))
    mismatch["embed"]["shape"] = [64, 32]
    dup_text = plain_bytes[8:8 + n].decode().replace('{"__metadata__"', '{"x":1,"x":2,"__metadata__"', 1)
    dup = dup_text.encode()
    return {
        "truncated_to_5_bytes": (plain_bytes[:5], "too small"),
        "header_length_past_eof": (struct.pack("<Q", len(plain_bytes)) + plain_bytes[8:], "header"),
        "oversized_header": (struct.pack("<Q", 200_000_000) + plain_bytes[8:], "header"),
        "invalid_json": (struct.pack("<Q", n) + b"X" + plain_bytes[9:], "JSON"),
        "duplicate_keys": (struct.pack("<Q", len(dup)) + dup + data, "duplicate"),
        "gap_in_offsets": (with_header(gap, data + b"\0" * 8), "ids"),
        "overlapping_offsets": (with_header(overlap, data[:-4]), ""),
        "shape_dtype_mismatch": (with_header(mismatch), "embed"),
        "truncated_data": (plain_bytes[:-3], "length"),
        "trailing_bytes": (plain_bytes + b"\0", "length"),
    }


@pytest.mark.parametrize("case", [
    "truncated_to_5_bytes", "header_length_past_eof", "oversized_header", "invalid_json",
    "duplicate_keys", "gap_in_offsets", "overlapping_offsets", "shape_dtype_mismatch",
    "truncated_data", "trailing_bytes"])
def test_malformed_plain_input(ctfs, keys, plain, tmp_path, case):
    bad_bytes, needle = corrupt_plain_cases(plain.read_bytes())[case]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bad_bytes)
    out = tmp_path / "out"
    p = ctfs("encrypt", bad, out / "x.safetensors", "--key", keys / "k.jwk")
    assert p.returncode != 0  # output directory missing
    out.mkdir()
    p = ctfs("encrypt", bad, out / "x.safetensors", "--key", keys / "k.jwk")
    assert p.returncode == INVALID, p.stderr
    assert_one_line_error(p, needle)
    assert list(out.iterdir()) == []
    p = ctfs("inspect", bad)
    assert p.returncode == INVALID, p.stderr
    assert_one_line_error(p)


# ---- tampered encrypted headers ----

def edit_crypto(path, key, fn):
    h, data = read_header(path)
    inner = json.loads(h["__metadata__"][key])
    fn(inner)
    h["__metadata__"][key] = json.dumps(inner, separators=(",", ":"))
    write_header(path, h, data)


@pytest.mark.parametrize("case,code,needle", [
    ("unknown_version", INVALID, "version"),
    ("unknown_alg", INVALID, "algorithm"),
    ("bad_base64", INVALID, "base64"),
    ("short_tags", INVALID, "tags"),
    ("shape_no_longer_matches_offsets", INVALID, ""),
    ("changed_metadata", AUTH, "signature"),
    ("flipped_signature", AUTH, "signature"),
])
def test_tampered_header(ctfs, keys, encrypted, tmp_path, case, code, needle):
    if case == "unknown_version":
        edit_crypto(encrypted, "__crypto_keys__", lambda c: c.update(version="3"))
    elif case == "unknown_alg":
        edit_crypto(encrypted, "__crypto_keys__", lambda c: c["enc"].update(alg="A256GCM"))
    elif case == "bad_base64":
        edit_crypto(encrypted, "__encryption__",
                    lambda c: c["embed"].update(key_iv=c["embed"]["key_iv"][:-1] + "*"))
    elif case == "short_tags":
        edit_crypto(encrypted, "__encryption__",
                    lambda c: c["embed"].update(tags=c["embed"]["tags"][:24]))
    elif case == "shape_no_longer_matches_offsets":
        h, data = read_header(encrypted)
        h["embed"]["shape"] = [33, 64, 2]
        write_header(encrypted, h, data)
    elif case == "changed_metadata":
        h, data = read_header(encrypted)
        h["__metadata__"]["format"] = "tf"
        write_header(encrypted, h, data)
    elif case == "flipped_signature":
        h, data = read_header(encrypted)
        s = h["__metadata__"]["__signature__"]
        h["__metadata__"]["__signature__"] = ("B" if s[0] != "B" else "C") + s[1:]
        write_header(encrypted, h, data)
    for cmd in (["verify", encrypted], ["decrypt", encrypted, tmp_path / "out.safetensors"]):
        p = ctfs(*cmd, "--key", keys / "r.jwk")
        assert p.returncode == code, (cmd[0], p.returncode, p.stderr)
        assert_one_line_error(p, needle)
    no_output_left(tmp_path, "out.safetensors")


def test_flipped_ciphertext_byte(ctfs, keys, encrypted, tmp_path):
    h, data = read_header(encrypted)
    b, _ = h["embed"]["data_offsets"]
    raw = bytearray(encrypted.read_bytes())
    pos = len(raw) - len(data) + b + 300  # inside chunk 1 of "embed" (chunk size 256)
    raw[pos] ^= 0x01
    encrypted.write_bytes(bytes(raw))
    for cmd in (["verify", encrypted], ["decrypt", encrypted, tmp_path / "out.safetensors"]):
        p = ctfs(*cmd, "--key", keys / "r.jwk")
        assert p.returncode == AUTH, p.stderr
        assert_one_line_error(p, '"embed"', "chunk 1", "authentication failed")
    no_output_left(tmp_path, "out.safetensors")


def test_wrong_key_same_kid(ctfs, keys, encrypted, tmp_path):
    real = json.loads((keys / "r.jwk").read_text())
    other = json.loads((keys / "other.jwk").read_text())
    for k in real["keys"]:
        if k["kty"] == "oct":
            k["k"] = next(o["k"] for o in other["keys"] if o["kty"] == "oct")
    wrong = tmp_path / "wrong.jwk"
    wrong.write_text(json.dumps(real))
    wrong.chmod(0o600)
    p = ctfs("decrypt", encrypted, tmp_path / "out.safetensors", "--key", wrong)
    assert p.returncode == AUTH, p.stderr
    assert_one_line_error(p, "unwrap", "wrong master key")
    no_output_left(tmp_path, "out.safetensors")


def test_missing_key_id(ctfs, keys, encrypted, tmp_path):
    p = ctfs("verify", encrypted, "--key", keys / "other.jwk")
    assert p.returncode == NOT_FOUND, p.stderr
    assert_one_line_error(p, "kid")


def test_decrypt_plain_file_is_refused(ctfs, keys, plain, tmp_path):
    p = ctfs("decrypt", plain, tmp_path / "out.safetensors", "--key", keys / "r.jwk")
    assert p.returncode == INVALID
    assert_one_line_error(p, "not encrypted")


def test_encrypt_refuses_existing_output_and_reader_key(ctfs, keys, plain, encrypted, tmp_path):
    out = tmp_path / "e.safetensors"
    out.write_bytes(b"keep me")
    p = ctfs("encrypt", plain, out, "--key", keys / "k.jwk")
    assert p.returncode == EXISTS, p.stderr
    assert_one_line_error(p, "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    p = ctfs("decrypt", encrypted, out, "--key", keys / "r.jwk")
    assert p.returncode == EXISTS, p.stderr
    assert_one_line_error(p, "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    p = ctfs("keygen", "--out", out)
    assert p.returncode == EXISTS, p.stderr
    assert_one_line_error(p, "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    no_output_left(tmp_path, "e.safetensors.")
    p = ctfs("encrypt", plain, tmp_path / "f.safetensors", "--key", keys / "r.jwk")
    assert p.returncode == NOT_FOUND
    assert_one_line_error(p, "signing key")


def test_usage_errors_and_help(ctfs):
    assert ctfs("--help").returncode == 0
    for sub in COMMANDS:
        p = ctfs(sub, "--help")
        assert p.returncode == 0 and "Usage" in p.stdout, sub
    assert ctfs("encrypt").returncode == USAGE


@pytest.mark.parametrize("argv", [["frobnicate"], ["bogus", "x", "y"], ["mnt"]])
def test_unknown_command(ctfs, argv):
    """One line naming the unknown word and listing the commands; exit 2."""
    p = ctfs(*argv)
    assert p.returncode == USAGE, (p.returncode, p.stderr)
    assert_one_line_error(p, f"unknown command '{argv[0]}'", "ctfs --help")
    line = p.stderr.strip()
    for sub in COMMANDS:
        assert sub in line, (sub, line)
    assert "A subcommand is required" not in p.stderr


def test_no_arguments_prints_usage(ctfs):
    p = ctfs()
    assert p.returncode == USAGE
    assert "Usage" in p.stderr and "encrypt" in p.stderr, p.stderr
    assert "ctfs: error: a command is required" in p.stderr, p.stderr


@pytest.mark.parametrize("argv", [
    ["keygen", "--out", "{out}", "-f"],
    ["encrypt", "{plain}", "{out}", "--key", "{keys}/k.jwk", "-f"],
    ["decrypt", "{enc}", "{out}", "--key", "{keys}/r.jwk", "-f"],
])
def test_f_never_means_force(ctfs, keys, plain, encrypted, tmp_path, argv):
    """`-f` is `--foreground` (mount) only; for commands with --force it is a usage error and the
    existing output stays untouched."""
    out = tmp_path / "existing.out"
    out.write_bytes(b"keep me")
    fill = {"out": out, "plain": plain, "enc": encrypted, "keys": keys}
    p = ctfs(*[a.format(**fill) for a in argv])
    assert p.returncode == USAGE, (p.returncode, p.stderr)
    assert "-f" in p.stderr, p.stderr
    assert out.read_bytes() == b"keep me"
    for sub in ("keygen", "encrypt", "decrypt"):
        h = ctfs(sub, "--help", check=0).stdout
        assert "--force" in h and "-f," not in h, (sub, h)
    h = ctfs("mount", "--help", check=0).stdout
    assert "-f,--foreground" in h, h


# Not safetensors at all: the first 8 bytes read as an absurd header length.
NOT_SAFETENSORS = {
    "text": b"hello, this is a text file, not a model\n" * 3,
    "jpeg": bytes.fromhex("ffd8ffe000104a464946000101") + b"\0" * 300,
    "tiny": b"abc",
    "empty": b"",
}


@pytest.mark.parametrize("kind", list(NOT_SAFETENSORS))
def test_not_a_safetensors_file(ctfs, keys, tmp_path, kind):
    """Every command that reads a model file says plainly that this is no safetensors file."""
    f = tmp_path / f"input.{kind}"
    f.write_bytes(NOT_SAFETENSORS[kind])
    out = tmp_path / "out.safetensors"
    for argv in (["inspect", f], ["inspect", f, "--json"], ["verify", f, "--key", keys / "r.jwk"],
                 ["decrypt", f, out, "--key", keys / "r.jwk"],
                 ["encrypt", f, out, "--key", keys / "k.jwk"]):
        p = ctfs(*argv)
        assert p.returncode == INVALID, (argv, p.returncode, p.stderr)
        assert_one_line_error(p, str(f), "not a safetensors file")
        assert "header too large: N =" not in p.stderr
        if kind in ("text", "jpeg"):  # why: the length the first 8 bytes give vs the file size
            assert "header length" in p.stderr and str(len(NOT_SAFETENSORS[kind])) in p.stderr
    no_output_left(tmp_path, "out.safetensors")


def test_inspect_of_a_directory(ctfs, tmp_path):
    p = ctfs("inspect", tmp_path)
    assert p.returncode == INVALID, p.stderr
    assert_one_line_error(p, "is a directory", "verify")


# ---- verify of plain (unencrypted) files: a deployment gate must not pass them ----

def test_verify_plain_file_fails_unless_allowed(ctfs, keys, plain):
    p = ctfs("verify", plain, "--key", keys / "r.jwk")
    assert p.returncode == INVALID, (p.returncode, p.stdout, p.stderr)
    assert_one_line_error(p, str(plain), "NOT ENCRYPTED", "--allow-plain")
    assert "NOT ENCRYPTED" in p.stdout and not p.stdout.startswith("OK")
    p = ctfs("verify", plain, "--key", keys / "r.jwk", "-q")
    assert p.returncode == INVALID and p.stdout == ""
    p = ctfs("verify", plain, "--allow-plain", check=0)
    assert p.stdout.startswith("PLAIN ") and "NOT encrypted, NOT authenticated" in p.stdout, p.stdout


def test_verify_directory_lists_every_plain_file(ctfs, keys, plain, encrypted, tmp_path):
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "a.safetensors").write_bytes(encrypted.read_bytes())
    (d / "b.safetensors").write_bytes(plain.read_bytes())
    (d / "sub" / "c.safetensors").write_bytes(plain.read_bytes())
    p = ctfs("verify", d, "--key", keys / "r.jwk")
    assert p.returncode == INVALID, (p.returncode, p.stdout, p.stderr)
    assert_one_line_error(p, "b.safetensors", "c.safetensors", "NOT ENCRYPTED")
    assert "a.safetensors" not in p.stderr
    assert any(l.startswith("OK") and "a.safetensors" in l for l in p.stdout.splitlines())
    p = ctfs("verify", d, "--key", keys / "r.jwk", "--allow-plain", check=0)
    plain_lines = [l for l in p.stdout.splitlines() if l.startswith("PLAIN")]
    assert len(plain_lines) == 2 and all("NOT encrypted" in l for l in plain_lines), p.stdout
    # a bad encrypted file is still the error, plain files or not
    raw = bytearray((d / "a.safetensors").read_bytes())
    raw[-1] ^= 1
    (d / "a.safetensors").write_bytes(bytes(raw))
    p = ctfs("verify", d, "--key", keys / "r.jwk", "--allow-plain")
    assert p.returncode == AUTH, p.stderr


def test_verify_refuses_what_the_mount_refuses(ctfs, keys, plain, encrypted, tmp_path):
    """A CryptoTensors file stripped of __encryption__ is 'valid plain safetensors' whose data
    is ciphertext; one under another name is not checked as a model: --allow-plain must not
    pass either (the mount refuses both)."""
    h, data = read_header(encrypted)
    del h["__metadata__"]["__encryption__"]
    stripped = tmp_path / "stripped.safetensors"
    write_header(stripped, h, data)
    for extra in ([], ["--allow-plain"]):
        p = ctfs("verify", stripped, "--key", keys / "r.jwk", *extra)
        assert p.returncode == INVALID, (extra, p.returncode, p.stdout, p.stderr)
        assert_one_line_error(p, "stripped.safetensors", "reserved name", "no __encryption__")
    p = ctfs("inspect", stripped)
    assert p.returncode == 0 and "DAMAGED:" in p.stdout, p.stdout
    assert json.loads(ctfs("inspect", "--json", stripped).stdout)["damaged"] is True
    assert json.loads(ctfs("inspect", "--json", encrypted).stdout)["damaged"] is False
    d = tmp_path / "model"
    d.mkdir()
    (d / "ok.safetensors").write_bytes(encrypted.read_bytes())
    (d / "weights.bin").write_bytes(encrypted.read_bytes())
    p = ctfs("verify", d, "--key", keys / "r.jwk", "--allow-plain")
    assert p.returncode == INVALID, (p.returncode, p.stdout, p.stderr)
    assert_one_line_error(p, "weights.bin", "not named *.safetensors")
    (d / "weights.bin").unlink()
    p = ctfs("verify", d, "--key", keys / "r.jwk")
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("opt,bad", [("--cache-mb", "1048577"), ("--prefetch-mb", "65537"),
                                     ("--prefetch-mb", "-1"), ("--threads", "0"),
                                     ("--decrypt-threads", "257"), ("--read-ahead-kb", "x"),
                                     ("--prefetch-threads", "0"), ("--prefetch-threads", "257")])
def test_mount_option_ranges(ctfs, tmp_path, opt, bad):
    """Out-of-range tuning options are usage errors naming the option; nothing is mounted."""
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    src.mkdir()
    mnt.mkdir()
    p = ctfs("mount", src, mnt, opt, bad)
    assert p.returncode == 2 and opt in p.stderr, (p.returncode, p.stderr)
    assert str(mnt) not in open("/proc/mounts").read()
