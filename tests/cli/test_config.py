# SPDX-License-Identifier: Apache-2.0
"""`ctfs check-config FILE` and the config errors of `ctfs mount --config FILE`: the one-paragraph
summary of what would be served to whom, and bad configs (YAML syntax, unknown key, wrong type,
bad glob, missing or broken key file) failing with FILE:LINE:COLUMN and exit 3 from both
commands, with nothing mounted. Mounts that succeed are in tests/mount/test_mount_config.py."""
import shutil
from pathlib import Path

import pytest

from conftest import REPO

INVALID, USAGE = 3, 2


@pytest.fixture()
def setup(ctfs, keys, plain, tmp_path):
    """An encrypted model dir (one encrypted file, one config.json), an empty mountpoint."""
    src = tmp_path / "plainsrc"
    src.mkdir()
    shutil.copy(plain, src / "model.safetensors")
    (src / "config.json").write_text('{"model_type": "tiny"}')
    enc = tmp_path / "enc"
    ctfs("encrypt", src, enc, "--key", keys / "k.jwk", "-q", check=0)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    return enc, mnt, keys / "r.jwk"


def write_cfg(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def base_cfg(enc, mnt, key):
    return f"source: {enc}\nmountpoint: {mnt}\nkeys: [{{file: {key}}}]\n"


def mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(mnt) for line in f)


def one_error_line(p):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("ctfs: error: "), p.stderr
    return lines[0]


def test_check_config_without_policy(ctfs, setup, tmp_path):
    enc, mnt, key = setup
    cfg = write_cfg(tmp_path, base_cfg(enc, mnt, key))
    p = ctfs("check-config", cfg, check=0)
    out = p.stdout.strip()
    assert "\n" not in out, out  # one paragraph
    assert out.startswith(f"{cfg}: OK. Would serve 2 files (1 encrypted) from {enc} at {mnt}"), out
    assert "to root only (allow_other is off)" in out, out
    assert "no policy: file modes decide (as without a config)" in out, out
    assert not mounted(mnt)
    cfg2 = write_cfg(tmp_path, base_cfg(enc, mnt, key) + "allow_other: true\n", "cfg2.yaml")
    assert "to the users file modes allow (allow_other)" in ctfs("check-config", cfg2,
                                                                   check=0).stdout


def test_check_config_policy_summary(ctfs, setup, tmp_path):
    enc, mnt, key = setup
    cfg = write_cfg(tmp_path, base_cfg(enc, mnt, key) + """\
allow_other: true
audit: {file: audit.jsonl}
policy:
  rules:
    - name: meta
      decision: allow
      subject: {group: root}
      object: {path: "*.json"}
    - name: weights-for-cat
      decision: allow
      subject: {uid: 1000, exe: /usr/bin/cat}
      object: {tensor: "emb*"}
      not_after: 2999-01-01T00:00:00+01:00
    - name: expired
      decision: allow
      not_after: 2001-01-01T00:00:00Z
    - name: rest
      decision: deny
""")
    p = ctfs("check-config", cfg, check=0)
    out = p.stdout.strip()
    assert "\n" not in out, out
    for needle in [
            "Would serve 2 files (1 encrypted)",
            "to the callers its policy allows (mode enforce, first match wins)",
            'rule "meta" (allow): gid 0; 1 file;',
            'rule "weights-for-cat" (allow): uid 1000 and exe /usr/bin/cat; 1 file; '
            "until 2998-12-31T23:00:00Z;",
            'rule "expired" (allow): everyone; 2 files; until 2001-01-01T00:00:00Z (ended',
            'rule "rest" (deny): everyone; 2 files;',
            "anything else: denied.",
            f"Audit log: {tmp_path}/audit.jsonl."]:
        assert needle in out, (needle, out)
    assert "Permissive" not in out and "Without allow_other" not in out, out
    cfg = write_cfg(tmp_path, base_cfg(enc, mnt, key) + """\
policy:
  mode: permissive
  rules: [{name: nobody, decision: deny}]
""", "perm.yaml")
    out = ctfs("check-config", cfg, check=0).stdout
    assert "mode permissive" in out and "audited as would-deny" in out, out
    assert "Without allow_other only root can open the mount at all." in out, out


def test_check_config_example(ctfs, setup, tmp_path):
    """config/example.yaml with its host paths and names replaced is a valid config."""
    enc, mnt, key = setup
    text = (REPO / "config" / "example.yaml").read_text()
    for a, b in [("/srv/models-enc/llama", str(enc)), ("/run/ctfs/llama", str(mnt)),
                 ("/etc/ctfs/llama.reader.jwk", str(key)), ("/var/log/ctfs", str(tmp_path)),
                 ("[mlops]", "[root]"), ("group: mlops", "group: root"),
                 ("user: trainer", "user: root")]:
        assert a in text, a
        text = text.replace(a, b)
    cfg = write_cfg(tmp_path, text)
    out = ctfs("check-config", cfg, check=0).stdout
    for rule in ("vllm", "readers-get-metadata", "pinned-trainer", "nobody-else-reads-weights"):
        assert f'rule "{rule}"' in out, out


def test_check_config_kubernetes_configmap(ctfs, setup, tmp_path):
    """The mount config shipped in deploy/kubernetes/configmap.yaml, with its host paths
    replaced and the KMIP helper replaced by one that prints the reader keys, is valid."""
    enc, mnt, key = setup
    lines = (REPO / "deploy" / "kubernetes" / "configmap.yaml").read_text().splitlines()
    start = lines.index("  ctfs.yaml: |") + 1
    text = "\n".join(line[4:] for line in lines[start:]) + "\n"
    helper = tmp_path / "helper.sh"
    helper.write_text(f"#!/bin/sh\ncat '{key}'\n")
    helper.chmod(0o700)
    for a, b in [("/srv/models-enc/llama", str(enc)), ("/run/ctfs/models/llama", str(mnt)),
                 ("/usr/libexec/ctfs/ctfs-kmip-helper", str(helper)),
                 ("/var/log/ctfs", str(tmp_path))]:
        assert a in text, a
        text = text.replace(a, b)
    cfg = write_cfg(tmp_path, text, "k8s.yaml")
    out = ctfs("check-config", cfg, check=0).stdout
    assert 'rule "vllm"' in out and "anything else: denied." in out, out


# (name, config text after the base keys, line, column, text in the error)
BAD = [
    ("yaml-syntax", "log: {level: info\n", 5, 1, "YAML syntax error"),
    ("unknown-key", "cache: 5\n", 4, 1, 'unknown key "cache"'),
    ("unknown-nested-key", "policy:\n  rules:\n    - name: a\n      decision: allow\n"
     "      subject: {usr: root}\n", 8, 17, 'unknown key "usr"'),
    ("wrong-type", "cache_mb: lots\n", 4, 11, "expected a whole number"),
    ("wrong-bool", "allow_other: yes\n", 4, 14, "expected true or false"),
    ("out-of-range", "threads: 0\n", 4, 10, "out of range (1 to 1024)"),
    ("bad-glob", "policy:\n  rules:\n    - name: a\n      decision: allow\n"
     "      object: {path: \"[abc\"}\n", 8, 22, "bad pattern"),
    ("bad-time", "policy:\n  rules:\n    - name: a\n      decision: allow\n"
     "      not_after: 2027-06-30\n", 8, 18, "RFC 3339"),
    ("no-rules", "policy:\n  rules: []\n", 5, 10, "to allow everyone, add a rule"),
    ("unknown-group", "policy:\n  rules:\n    - name: a\n      decision: allow\n"
     "      subject: {group: ctfs-no-such-group}\n", 8, 24, "unknown group"),
]


@pytest.mark.parametrize("name,extra,line,col,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_config(ctfs, setup, tmp_path, name, extra, line, col, needle):
    enc, mnt, key = setup
    cfg = write_cfg(tmp_path, base_cfg(enc, mnt, key) + extra)
    for argv in (["check-config", cfg], ["mount", "--config", cfg]):
        p = ctfs(*argv)
        assert p.returncode == INVALID, (argv, p.returncode, p.stderr)
        err = one_error_line(p)
        assert f"{cfg}:{line}:{col}: " in err, (argv, err)
        assert needle in err, (argv, err)
        assert p.stdout == "", p.stdout
        assert not mounted(mnt)


def test_missing_key_file(ctfs, setup, tmp_path):
    enc, mnt, key = setup
    cfg = write_cfg(tmp_path, f"source: {enc}\nmountpoint: {mnt}\nkeys:\n  - file: {key}\n"
                              "  - file: nope.jwk\n")
    for argv in (["check-config", cfg], ["mount", "--config", cfg]):
        p = ctfs(*argv)
        assert p.returncode == INVALID, (argv, p.stderr)
        err = one_error_line(p)
        assert f"{cfg}:5:11: key file {tmp_path}/nope.jwk: No such file or directory" in err, err
        assert not mounted(mnt)


def test_key_file_that_is_not_a_jwk(ctfs, setup, tmp_path):
    """check-config reads each key file and points at its entry."""
    enc, mnt, key = setup
    (tmp_path / "junk.jwk").write_text("not json")
    cfg = write_cfg(tmp_path, f"source: {enc}\nmountpoint: {mnt}\n"
                              "keys: [{file: junk.jwk}]\n")
    p = ctfs("check-config", cfg)
    assert p.returncode == INVALID, p.stderr
    err = one_error_line(p)
    assert f"{cfg}:3:15: " in err and "junk.jwk" in err, err


def test_check_config_checks_what_mount_needs(ctfs, setup, tmp_path, keys):
    enc, mnt, key = setup
    cases = [
        (f"mountpoint: {mnt}\nkeys: [{{file: {key}}}]\n", "source: not set"),
        (f"source: {tmp_path}/none\nmountpoint: {mnt}\n", "does not exist"),
        (f"source: {enc}\nmountpoint: {tmp_path}/none\n", "mountpoint"),
        # The wrong key: the tree does not open, as the mount would not.
        (f"source: {enc}\nmountpoint: {mnt}\nkeys: [{{file: {keys}/other.jwk}}]\n", "enc"),
    ]
    for i, (text, needle) in enumerate(cases):
        cfg = write_cfg(tmp_path, text, f"c{i}.yaml")
        p = ctfs("check-config", cfg)
        assert p.returncode == INVALID, (text, p.returncode, p.stderr)
        err = one_error_line(p)
        assert str(cfg) in err and needle in err, (text, err)
    (mnt / "stray").write_text("x")
    cfg = write_cfg(tmp_path, base_cfg(enc, mnt, key), "full.yaml")
    err = one_error_line(ctfs("check-config", cfg, check=INVALID))
    assert "not empty" in err, err


def test_missing_config_file_and_args(ctfs, tmp_path):
    p = ctfs("check-config", tmp_path / "none.yaml")
    assert p.returncode == INVALID, p.stderr
    assert "none.yaml" in one_error_line(p)
    p = ctfs("mount")
    assert p.returncode == USAGE, p.stderr
    assert "SRC and MNT" in one_error_line(p)
    cfg = write_cfg(tmp_path, "cache_mb: 1\n")
    p = ctfs("mount", "--config", cfg)
    assert p.returncode == USAGE, p.stderr
    assert "source: and mountpoint:" in one_error_line(p)
    assert "check-config" in ctfs("--help", check=0).stdout
