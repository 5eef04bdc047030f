# SPDX-License-Identifier: Apache-2.0
"""Refused mounts (exit code, one-line message naming file and key id, nothing mounted),
--allow-bad-files, tampered ciphertext (EIO for that range only, never wrong bytes), read-only
behaviour, key sources, and files written by the reference `cryptotensors` package."""
from __future__ import annotations

import base64
import errno
import json
import os
import signal

import numpy as np
import pytest

from . import mount_util as M

BIG = "model-00001-of-00003.safetensors"
BAD = "model-00002-of-00003.safetensors"
TWO_MIB = 2 << 20


def assert_refused(r, mnt, code, *needles):
    """Exit `code`, one `ctfs: error:` line containing every needle (a tuple = any of them),
    nothing mounted at mnt, no daemon left behind."""
    assert r.rc == code, f"expected exit {code}\n" + r.describe()
    line = M.error_line(r)
    for n in needles:
        alts = n if isinstance(n, tuple) else (n,)
        assert any(a in line for a in alts), f"error line lacks {alts}: {line!r}"
    assert not M.mounts_at(mnt), f"refused mount left a mount at {mnt}: {M.mounts_at(mnt)}"
    assert M.wait_until(lambda: not M.ctfs_processes_with_arg(str(mnt)), 5), \
        f"ctfs processes left running for {mnt}: {M.ctfs_processes_with_arg(str(mnt))}"
    return line


def flip_signature(path):
    h, data = M.read_header(path)
    s = h["__metadata__"]["__signature__"]
    h["__metadata__"]["__signature__"] = ("B" if s[0] != "B" else "C") + s[1:]
    M.write_header(path, h, data)


def change_metadata(path):
    h, data = M.read_header(path)
    h["__metadata__"]["format"] = "tf"
    M.write_header(path, h, data)


# ---- refused mounts ---------------------------------------------------------------------------

def _wrong_enc_key(keys, d):
    j = keys.reader_jwks()
    for k in j["keys"]:
        if k["kty"] == "oct":
            k["k"] = base64.b64encode(os.urandom(32)).decode()
    return [M.write_jwks(d / "wrong-enc.jwk", j)]


def _wrong_sign_key(keys, d):
    j = keys.reader_jwks()
    other = json.loads(keys.other.read_text())
    ox = next(k["x"] for k in other["keys"] if k["kty"] == "okp")
    for k in j["keys"]:
        if k["kty"] == "okp":
            k["x"] = ox
    return [M.write_jwks(d / "wrong-sign.jwk", j)]


def _sign_key_only(keys, d):
    j = keys.reader_jwks()
    j["keys"] = [k for k in j["keys"] if k["kty"] == "okp"]
    return [M.write_jwks(d / "sign-only.jwk", j)]


KEY_CASES = {
    # case: (key files, tamper, exit code, kid needle)
    "wrong_enc_key": (_wrong_enc_key, None, M.EXIT_AUTH, "enc"),
    "wrong_sign_key": (_wrong_sign_key, None, M.EXIT_AUTH, "sign"),
    "missing_enc_kid": (_sign_key_only, None, M.EXIT_NOT_FOUND, "enc"),
    "unrelated_keys_only": (lambda k, d: [k.other], None, M.EXIT_NOT_FOUND, "any"),
    "no_key_source": (lambda k, d: [], None, M.EXIT_NOT_FOUND, "any"),
    "bad_signature": (lambda k, d: [k.reader], flip_signature, M.EXIT_AUTH, "sign"),
    "changed_signed_metadata": (lambda k, d: [k.reader], change_metadata, M.EXIT_AUTH, "sign"),
}


@pytest.mark.parametrize("case", list(KEY_CASES))
def test_mount_refused_key_and_signature_errors(mounter, keys, small_model, tmp_path, case):
    key_fn, tamper, code, kid = KEY_CASES[case]
    src = M.copy_tree(small_model.enc, tmp_path / "src")
    if tamper:
        tamper(src / "weights.safetensors")
    kid_needle = {"enc": keys.enc_kid, "sign": keys.sign_kid,
                  "any": (keys.enc_kid, keys.sign_kid)}[kid]
    before = M.ctfs_mounts()
    mnt = mounter.new_mnt()
    r = mounter.try_mount(src, mnt, keys=key_fn(keys, tmp_path))
    assert_refused(r, mnt, code, "weights.safetensors", kid_needle)
    assert M.ctfs_mounts() == before
    assert os.listdir(mnt) == []


def test_mount_refused_mountpoint_not_empty(mounter, small_model, tmp_path):
    mnt = tmp_path / "busy-mnt"
    mnt.mkdir()
    (mnt / "keep.txt").write_text("mine")
    r = mounter.try_mount(small_model.enc, mnt)
    assert_refused(r, mnt, M.EXIT_BUSY, "busy-mnt", "not empty")
    assert os.listdir(mnt) == ["keep.txt"] and (mnt / "keep.txt").read_text() == "mine"


def test_mount_refused_mountpoint_missing(mounter, small_model, tmp_path):
    mnt = tmp_path / "no-such-mnt"
    r = mounter.try_mount(small_model.enc, mnt)
    assert_refused(r, mnt, M.EXIT_NOT_FOUND, "no-such-mnt")
    assert not mnt.exists()


def test_mount_refused_source_missing(mounter, tmp_path):
    mnt = mounter.new_mnt()
    r = mounter.try_mount(tmp_path / "no-such-src", mnt)
    assert_refused(r, mnt, M.EXIT_NOT_FOUND, "no-such-src")
    assert os.listdir(mnt) == []


# ---- one bad file among good ones -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bad_signature", "unknown_kid", "truncated"])
def test_one_bad_file_refuses_mount_unless_allow_bad_files(ctfs, mounter, keys, model, tmp_path,
                                                           kind):
    src = M.copy_tree(model.enc, tmp_path / "src")
    if kind == "bad_signature":
        flip_signature(src / BAD)
        code, needles = M.EXIT_AUTH, [keys.sign_kid]
    elif kind == "unknown_kid":  # encrypted under keys the mount is not given
        (src / BAD).unlink()
        ctfs.ok("encrypt", model.plain / BAD, src / BAD, "--key", keys.other, "-q")
        code, needles = M.EXIT_NOT_FOUND, [(keys.other_enc_kid, keys.other_sign_kid)]
    else:  # ciphertext cut short: the (encrypted) header is intact, the length no longer fits
        os.truncate(src / BAD, (src / BAD).stat().st_size - 100)
        code, needles = M.EXIT_INVALID, []
    mnt = mounter.new_mnt()
    r = mounter.try_mount(src, mnt)
    assert_refused(r, mnt, code, BAD, *needles)

    m = mounter.mount(src, args=["--allow-bad-files"])
    with pytest.raises(OSError) as ei:
        with open(m.mnt / BAD, "rb") as f:
            f.read(1)
    assert ei.value.errno == errno.EIO, f"open of the bad file: {ei.value!r}, want EIO"
    for rel in model.files():
        if rel != BAD:
            assert M.sha256(m.mnt / rel) == M.sha256(model.plain / rel), rel


# ---- tampered ciphertext ----------------------------------------------------------------------

@pytest.mark.timeout_s(90)
def test_flipped_ciphertext_byte_fails_only_its_chunk(mounter, model, tmp_path):
    C = model.chunk
    name = "model.embed_tokens.weight"
    k = 40                                  # ~2.6 MB into the tensor
    src = M.copy_tree(model.enc, tmp_path / "src")
    eb, ee = M.layout(src / BIG).tensors[name]
    raw = bytearray((src / BIG).read_bytes())
    raw[eb + k * C + 1000] ^= 0x20
    (src / BIG).write_bytes(bytes(raw))
    m = mounter.mount(src)                  # the signature covers the header only: mount works

    want = model.plain_bytes(BIG)
    lay = M.layout(model.plain / BIG)
    pb, pe = lay.tensors[name]
    cb, ce = pb + k * C, pb + (k + 1) * C   # the bad chunk in plain-view coordinates
    assert pe - pb == ee - eb and ce < pe
    bad_ranges = [(cb + 1000, 1), (cb, C), (cb - 10, 20), (ce - 10, 20), (cb - 3 * C, 8 * C),
                  (cb + C // 2, 3)]
    # Far ranges: in other 2 MiB blocks than the bad chunk, so no page-cache folio or readahead
    # window can join them with it (the kernel reads and fails whole folios).
    blocks = set(range(cb // TWO_MIB, (ce - 1) // TWO_MIB + 1))
    far = lambda o, n: not blocks & set(range(o // TWO_MIB, (o + n - 1) // TWO_MIB + 1))
    good_ranges = [(0, lay.data_start + 16), (pb, C), (pb + C, 2 * C), (pb + 80 * C, C),
                   (pe - 1000, 1000), (pe, len(want) - pe), (len(want) - 7, 7)]
    assert all(far(o, n) for o, n in good_ranges)
    # Near ranges: the neighbouring chunks in full; with O_DIRECT the daemon gets exactly these.
    near_ranges = [(cb - C, C), (ce, C), (cb - 2 * C, 2 * C), (ce, 2 * C)]

    def pread(fd, off, n):
        try:
            return os.pread(fd, n, off)
        except OSError as e:
            return e

    def check_bad(fd, off, n, label):
        """A read touching the bad chunk fails with EIO; one that starts before it may instead
        return a short, correct prefix that stops before the chunk (POSIX partial read), after
        which reading on fails with EIO. Never bytes from the bad chunk."""
        got = pread(fd, off, n)
        if isinstance(got, OSError):
            assert got.errno == errno.EIO, f"{label} pread({n}, {off}): {got!r}, want EIO"
            return
        assert 0 < len(got) < n and off + len(got) <= cb and got == want[off:off + len(got)], \
            f"{label} pread({n}, {off}) over the tampered chunk returned {len(got)} bytes " \
            f"(chunk starts at {cb}): {got[:64]!r}"
        check_bad(fd, off + len(got), n - len(got), label)

    for flags, label in [(os.O_RDONLY, "buffered"), (os.O_RDONLY | os.O_DIRECT, "O_DIRECT")]:
        fd = os.open(m.mnt / BIG, flags)
        try:
            for rnd in range(2):  # a failed read must not leave wrong bytes cached
                for off, n in bad_ranges:
                    check_bad(fd, off, n, label)
                goods = good_ranges + (near_ranges if label == "O_DIRECT" else [])
                for off, n in goods:
                    got = pread(fd, off, n)
                    assert got == want[off:off + n], \
                        f"{label} pread({n}, {off}) away from the tampered chunk: {got!r:.200}"
        finally:
            os.close(fd)

    # A whole-file read stops with EIO; everything delivered before that is correct.
    got = b""
    with open(m.mnt / BIG, "rb", buffering=0) as f:
        with pytest.raises(OSError) as ei:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                got += b
    assert ei.value.errno == errno.EIO
    assert len(got) <= cb and got == want[:len(got)]

    # Under mmap the bad chunk is SIGBUS (probed in a child), far pages still read fine.
    offs = [cb + 1000, ce - 1, pb + 80 * C, 0]
    r, out = M.probe("mmap_touch", {"path": str(m.mnt / BIG), "plain": str(model.plain / BIG),
                                    "offsets": offs, "len": 1, "mode": "shared"})
    assert r.rc == 0 and out, M.describe_probe(r)
    res = {x["off"]: x for x in out["results"]}
    for off in offs[:2]:
        assert res[off].get("signal") == signal.SIGBUS, f"mmap touch of the bad chunk: {res[off]}"
    for off in offs[2:]:
        assert res[off].get("matches_plain") is True, f"mmap touch far away: {res[off]}"


# ---- read-only ---------------------------------------------------------------------------------

def test_read_only(mounter, small_model, tmp_path):
    src = M.copy_tree(small_model.enc, tmp_path / "src")
    src_before = {rel: M.sha256(src / rel) for rel in M.files_of(src)}
    m = mounter.mount(src)
    f, d = m.mnt / "weights.safetensors", m.mnt
    ops = {
        "open O_WRONLY": lambda: os.open(f, os.O_WRONLY),
        "open O_RDWR": lambda: os.open(f, os.O_RDWR),
        "open O_WRONLY|O_TRUNC": lambda: os.open(f, os.O_WRONLY | os.O_TRUNC),
        "open O_WRONLY|O_APPEND": lambda: os.open(f, os.O_WRONLY | os.O_APPEND),
        "open O_RDWR config": lambda: os.open(d / "config.json", os.O_RDWR),
        "create": lambda: os.open(d / "new.txt", os.O_WRONLY | os.O_CREAT, 0o644),
        "create excl": lambda: os.open(d / "new2", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600),
        "mkdir": lambda: os.mkdir(d / "newdir"),
        "rmdir": lambda: os.rmdir(d / "sub"),
        "unlink in subdir": lambda: os.unlink(d / "sub" / "notes.txt"),
        "unlink": lambda: os.unlink(f),
        "unlink config": lambda: os.unlink(d / "config.json"),
        "rename": lambda: os.rename(f, d / "renamed.safetensors"),
        "rename over": lambda: os.rename(d / "config.json", f),
        "chmod": lambda: os.chmod(f, 0o777),
        "chown": lambda: os.chown(f, 1, 1),
        "truncate": lambda: os.truncate(f, 0),
        "truncate config": lambda: os.truncate(d / "config.json", 1),
        "utime": lambda: os.utime(f, (0, 0)),
        "symlink": lambda: os.symlink("weights.safetensors", d / "link"),
        "link": lambda: os.link(f, d / "hardlink"),
        "mkfifo": lambda: os.mkfifo(d / "fifo"),
    }
    wrong = []
    for what, op in ops.items():
        try:
            res = op()
        except OSError as e:
            if e.errno not in (errno.EROFS, errno.EACCES):
                wrong.append(f"{what}: {e!r} (want EROFS or EACCES)")
            continue
        if isinstance(res, int):
            os.close(res)
        wrong.append(f"{what}: succeeded")
    try:
        os.setxattr(f, "user.ctfs_test", b"1")
        wrong.append("setxattr: succeeded")
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTSUP):
            wrong.append(f"setxattr: {e!r}")
    assert not os.access(f, os.W_OK)
    assert not wrong, wrong
    assert {rel: M.sha256(src / rel) for rel in M.files_of(src)} == src_before, \
        "SRC changed through a read-only mount"
    assert M.tree_listing(m.mnt) == M.tree_listing(small_model.plain)
    for rel in small_model.files():
        assert M.sha256(m.mnt / rel) == M.sha256(small_model.plain / rel), rel


# ---- key sources and other file kinds ---------------------------------------------------------

@pytest.mark.parametrize("source", ["CRYPTOTENSOR_KEYS", "two_key_files"])
def test_key_sources(mounter, keys, small_model, tmp_path, source):
    j = keys.reader_jwks()
    if source == "CRYPTOTENSOR_KEYS":
        m = mounter.mount(small_model.enc, keys=[], env={"CRYPTOTENSOR_KEYS": json.dumps(j)})
    else:
        enc = M.write_jwks(tmp_path / "enc.jwk",
                           {"keys": [k for k in j["keys"] if k["kty"] == "oct"]})
        sig = M.write_jwks(tmp_path / "sig.jwk",
                           {"keys": [k for k in j["keys"] if k["kty"] == "okp"]})
        m = mounter.mount(small_model.enc, keys=[keys.other, enc, sig])
    for rel in small_model.files():
        assert M.sha256(m.mnt / rel) == M.sha256(small_model.plain / rel), rel


def test_v1_and_partially_encrypted_files(ctfs, mounter, keys, small_model, tmp_path):
    plain = small_model.plain / "weights.safetensors"
    src = tmp_path / "src"
    src.mkdir()
    ctfs.ok("encrypt", plain, src / "v1.safetensors", "--key", keys.full,
            "--format-version", "1", "-q")
    ctfs.ok("encrypt", plain, src / "partial.safetensors", "--key", keys.full,
            "--tensors", "w", "--chunk-size", "333", "-q")
    assert ctfs.inspect(src / "v1.safetensors")["version"] == "1"
    m = mounter.mount(src)
    for name in ("v1.safetensors", "partial.safetensors"):
        assert (m.mnt / name).stat().st_size == plain.stat().st_size, name
        assert M.sha256(m.mnt / name) == M.sha256(plain), name


@pytest.mark.parametrize("key_source", ["key_file", "file_jku", "env"])
def test_reference_cryptotensors_file(ctfs, mounter, tmp_path, key_source):
    """A v2 file written by the reference package mounts and loads through safe_open."""
    from cryptotensors.numpy import save_file as ref_save
    from safetensors.numpy import save_file as stock_save

    jwks = M.make_py_jwks(f"ref-enc-{key_source}", f"ref-sign-{key_source}")
    keyfile = M.write_jwks(tmp_path / "ref.jwk", jwks)
    cfg = M.ref_config(jwks)
    if key_source == "file_jku":
        cfg["enc_key"]["jku"] = cfg["sign_key"]["jku"] = "file://" + str(keyfile.resolve())
    cfg.update(version="2", chunk_size=4097)
    rng = np.random.default_rng(42)
    arrays = {"embed": rng.standard_normal((3, 1000)).astype(np.float32),
              "norm": rng.standard_normal(17).astype(np.float16),
              "ids": np.arange(9, dtype=np.int64) * 1234567891011,
              "mask": rng.integers(0, 2, size=(2, 5)).astype(np.bool_),
              "scalar": np.array(3.5, dtype=np.float32)}
    src = tmp_path / "src"
    src.mkdir()
    ref_save(arrays, str(src / "model.safetensors"), metadata={"format": "pt"}, config=cfg)
    expect = tmp_path / "expect.safetensors"
    stock_save(arrays, str(expect), metadata={"format": "pt"})
    dec = tmp_path / "dec.safetensors"
    ctfs.ok("decrypt", src / "model.safetensors", dec, "--key", keyfile, "-q")

    if key_source == "key_file":
        m = mounter.mount(src, keys=[keyfile])
    elif key_source == "file_jku":
        m = mounter.mount(src, keys=[])
    else:
        m = mounter.mount(src, keys=[], env={"CRYPTOTENSOR_KEYS": json.dumps(jwks)})
    view = m.mnt / "model.safetensors"
    r, out = M.probe("safe_open_compare", {"pairs": [[str(view), str(expect)]]})
    assert r.rc == 0 and out, M.describe_probe(r)
    assert out["problems"] == [] and out["tensors"] == len(arrays), out
    # Same plain view as `ctfs decrypt`, also at chunk edges.
    want = dec.read_bytes()
    assert view.stat().st_size == len(want)
    assert M.sha256(view) == M.sha256(dec)
    with open(view, "rb") as f:
        for off in M.interesting_offsets(M.layout(dec), 4097):
            for n in (1, 4097, 9000):
                assert os.pread(f.fileno(), n, off) == want[off:off + n], (off, n)
