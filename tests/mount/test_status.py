# SPDX-License-Identifier: Apache-2.0
"""`ctfs status MNT [--json]`: the daemon's control socket (/run/ctfs/ctl/<pid>.sock, mode 0600
in a root-only directory) answers what the test did through the mount: files served, opens and
denials per file, bytes read and decrypted, pid; other users are refused (by the directory's
mode and, should that be loosened, by the daemon's peer-credential check); a path that is not
a ctfs mount exits 5; the socket file is gone after unmount."""
from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from . import mount_util as M
from .conftest import EXTRA_MOUNT_ARGS, log_tail

EXIT_PERMISSION = 6
OTHER_UID = 4242


@pytest.fixture
def public_dir(tmp_path_factory):
    """A directory other users can traverse (pytest's tmp dirs are 0700): the mountpoint must
    be reachable for `ctfs status` run as another uid."""
    d = Path(f"/tmp/ctfs-status-test-{os.getpid()}")
    d.mkdir(mode=0o755, exist_ok=True)
    os.chmod(d, 0o755)
    yield d
    for p in d.iterdir():
        if not M.mounts_at(p):
            try:
                p.rmdir()
            except OSError:
                pass
    try:
        d.rmdir()
    except OSError:
        pass


def mount_at(ctfs, keys, mounter, src, mnt, args=()):
    mnt.mkdir(mode=0o755)
    mounter.mnts.append(mnt)
    log = mounter.dir / f"status-{mnt.name}.log"
    r = ctfs.run("mount", src, mnt, "--key", keys.reader, "--log-file", log, *args,
                 *EXTRA_MOUNT_ARGS, timeout=60)
    assert r.rc == 0, r.describe() + "\n" + log_tail(log)
    (e,) = M.mounts_at(mnt)
    mounter.pids[mnt] = e.pid
    return e.pid, log


def status_json(ctfs, mnt):
    r = ctfs.run("status", "--json", mnt, timeout=30)
    assert r.rc == 0, r.describe()
    return json.loads(r.stdout)


def by_path(doc):
    return {f["path"]: f for f in doc["files"]}


def test_status_counts_what_was_done(ctfs, keys, small_model, mounter, public_dir):
    mnt = public_dir / "mnt-counts"
    pid, log = mount_at(ctfs, keys, mounter, small_model.enc, mnt)
    before = by_path(status_json(ctfs, mnt))
    assert before["weights.safetensors"]["opens"] == 0, before
    assert before["weights.safetensors"]["bytes_decrypted"] == 0, before
    size = len(small_model.plain_bytes("weights.safetensors"))
    for _ in range(2):
        assert (mnt / "weights.safetensors").read_bytes() == \
            small_model.plain_bytes("weights.safetensors")
    assert (mnt / "config.json").read_bytes() == small_model.plain_bytes("config.json")

    doc = status_json(ctfs, mnt)
    files = by_path(doc)
    assert doc["pid"] == pid and doc["uid"] == 0
    assert doc["mountpoint"] == str(mnt) and doc["source"] == str(small_model.enc.resolve())
    assert doc["files_served"] == len(small_model.files()) == len(files), (doc, small_model.files())
    w, c = files["weights.safetensors"], files["config.json"]
    assert w["kind"] == "encrypted" and c["kind"] == "plain"
    assert w["opens"] >= 2 and c["opens"] >= 1, files
    assert files["sub/notes.txt"]["opens"] == 0
    assert w["denials"] == 0 and doc["totals"]["denials"] == 0
    # The first read went to the daemon (later ones may come from the page cache).
    assert size <= w["bytes_read"], w
    assert w["bytes_decrypted"] > 0 and c["bytes_decrypted"] == 0, files
    assert doc["totals"]["bytes_decrypted"] >= w["bytes_decrypted"]
    assert doc["totals"]["opens"] == sum(f["opens"] for f in files.values())
    assert doc["cache"]["misses"] > 0 and doc["cache"]["capacity_bytes"] > 0, doc["cache"]
    assert doc["uptime_s"] > 0 and doc["rss_bytes"] > 0 and doc["revoked"] is False
    assert doc["policy"]["mode"] == "none"

    r = ctfs.run("status", mnt, timeout=30)
    assert r.rc == 0, r.describe()
    assert f"pid {pid}" in r.stdout and "weights.safetensors" in r.stdout, r.stdout
    assert "policy:   none" in r.stdout, r.stdout


def test_status_counts_policy_denials(ctfs, keys, small_model, mounter, public_dir, tmp_path):
    cfg = tmp_path / "ctfs.yaml"
    cfg.write_text("policy:\n  rules:\n"
                   "    - {name: no-notes, decision: deny, subject: {uid: 0}, "
                   "object: {path: \"sub/*\"}}\n"
                   "    - {name: rest, decision: allow, subject: {uid: 0}}\n")
    mnt = public_dir / "mnt-policy"
    mount_at(ctfs, keys, mounter, small_model.enc, mnt, ("--config", cfg))
    with pytest.raises(PermissionError):
        (mnt / "sub" / "notes.txt").read_bytes()
    (mnt / "config.json").read_bytes()
    doc = status_json(ctfs, mnt)
    files = by_path(doc)
    assert files["sub/notes.txt"]["denials"] >= 1 and files["sub/notes.txt"]["opens"] == 0, files
    assert files["config.json"]["opens"] >= 1 and files["config.json"]["denials"] == 0, files
    assert doc["policy"]["mode"] == "enforce" and doc["policy"]["rules"] == 2, doc["policy"]
    assert doc["policy"]["loaded_unix"] > 0


def test_control_socket_is_private_and_removed(ctfs, keys, small_model, mounter, public_dir):
    mnt = public_dir / "mnt-socket"
    pid, log = mount_at(ctfs, keys, mounter, small_model.enc, mnt)
    sock = Path(f"/run/ctfs/ctl/{pid}.sock")
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    dst = os.lstat(sock.parent)
    assert stat.S_ISDIR(dst.st_mode) and stat.S_IMODE(dst.st_mode) == 0o700, oct(dst.st_mode)
    r = ctfs.run("umount", mnt, timeout=30)
    assert r.rc == 0, r.describe()
    assert M.wait_until(lambda: not M.alive(pid), 10), log_tail(log)
    assert not sock.exists(), "the daemon left its control socket behind"


def test_status_refused_for_other_users(ctfs, keys, small_model, mounter, public_dir):
    mnt = public_dir / "mnt-other"
    pid, _ = mount_at(ctfs, keys, mounter, small_model.enc, mnt)
    as_other = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups",
                str(ctfs.bin), "status", "--json", str(mnt)]
    r = subprocess.run(as_other, capture_output=True, text=True, timeout=30)
    assert r.returncode == EXIT_PERMISSION, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "" and "permission denied" in r.stderr.lower(), r.stderr
    # Loosen the file modes: the daemon's own peer-credential check still refuses.
    sock = Path(f"/run/ctfs/ctl/{pid}.sock")
    os.chmod(sock.parent, 0o711)
    try:
        os.chmod(sock, 0o666)
        r = subprocess.run(as_other, capture_output=True, text=True, timeout=30)
        assert r.returncode == EXIT_PERMISSION, (r.returncode, r.stdout, r.stderr)
        assert "only root and uid 0" in r.stderr and r.stdout == "", r.stderr
    finally:
        os.chmod(sock.parent, 0o700)
    # Root still gets its answer.
    assert status_json(ctfs, mnt)["pid"] == pid


def test_revoke_goes_over_the_control_socket(ctfs, keys, small_model, mounter, public_dir):
    """`ctfs revoke MNT` asks the daemon over its socket (the daemon logs why it revokes); another
    user is refused there and the mount stays; a daemon whose socket is gone gets SIGTERM."""
    mnt = public_dir / "mnt-revoke"
    pid, log = mount_at(ctfs, keys, mounter, small_model.enc, mnt)
    as_other = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups",
                str(ctfs.bin), "revoke", str(mnt)]
    r = subprocess.run(as_other, capture_output=True, text=True, timeout=30)
    assert r.returncode == EXIT_PERMISSION, (r.returncode, r.stdout, r.stderr)
    assert M.alive(pid) and M.mounts_at(mnt), "another user's revoke ended the mount"
    with open(mnt / "weights.safetensors", "rb") as f:
        held = f.read(64)
        r = ctfs.run("revoke", mnt, timeout=30)
        assert r.rc == 0, r.describe()
        assert "revoked and unmounted" in r.stdout, r.stdout
        assert not M.alive(pid) and not M.mounts_at(mnt)
    assert held == small_model.plain_bytes("weights.safetensors")[:64]
    assert "revoke requested (ctfs revoke): revoking access" in log.read_text(), log_tail(log)

    # No socket (removed behind the daemon's back): the signal does the same.
    mnt2 = public_dir / "mnt-revoke-signal"
    pid2, log2 = mount_at(ctfs, keys, mounter, small_model.enc, mnt2)
    os.unlink(f"/run/ctfs/ctl/{pid2}.sock")
    r = ctfs.run("revoke", mnt2, timeout=30)
    assert r.rc == 0, r.describe()
    assert not M.alive(pid2) and not M.mounts_at(mnt2)
    assert "signal received: revoking access" in log2.read_text(), log_tail(log2)


def test_status_of_a_non_mount_exits_5(ctfs, tmp_path):
    r = ctfs.run("status", tmp_path, timeout=30)
    assert r.rc == M.EXIT_NOT_FOUND, r.describe()
    assert "not a ctfs mount" in r.stderr, r.stderr
    r = ctfs.run("status", "--json", tmp_path / "missing", timeout=30)
    assert r.rc == M.EXIT_NOT_FOUND and r.stdout == "", r.describe()
    r = ctfs.run("status", "--ready", tmp_path, timeout=30)  # a probe of no mount fails
    assert r.rc == M.EXIT_NOT_FOUND and r.stdout == "", r.describe()


def prom_samples(text):
    """{(name, labels): value} of a Prometheus text file, every line checked for shape."""
    import re
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = re.fullmatch(r'([a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)+)\} ([0-9.]+)', line)
        assert m, f"malformed metrics line: {line!r}"
        out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


def test_metrics_file_follows_activity_and_is_removed(ctfs, keys, small_model, mounter,
                                                      public_dir, tmp_path):
    mnt = public_dir / "mnt-metrics"
    prom_dir = tmp_path / "textfile"
    prom_dir.mkdir()
    prom = prom_dir / "ctfs.prom"
    pid, log = mount_at(ctfs, keys, mounter, small_model.enc, mnt,
                        args=("--metrics-file", prom, "--metrics-interval-s", "1"))
    # Written once before the mount answers, then every second.
    assert prom.exists() and stat.S_IMODE(prom.stat().st_mode) == 0o644
    label = f'mountpoint="{mnt}"'
    weights = f'{label},path="weights.safetensors",kind="encrypted"'
    first = prom_samples(prom.read_text())
    assert first[("ctfs_up", label)] == 1
    assert first[("ctfs_file_opens_total", weights)] == 0
    data = (mnt / "weights.safetensors").read_bytes()
    assert data == small_model.plain_bytes("weights.safetensors")
    seen = {}

    def updated():
        seen.update(prom_samples(prom.read_text()))
        return seen.get(("ctfs_file_opens_total", weights)) == 1

    assert M.wait_until(updated, timeout=10), seen
    assert seen[("ctfs_file_read_bytes_total", weights)] == len(data)
    assert seen[("ctfs_file_decrypted_bytes_total", weights)] >= len(data) * 0.9
    assert seen[("ctfs_files_served", label)] == len(by_path(status_json(ctfs, mnt)))
    # Rewritten by rename: no temporary left next to it for the collector to trip over.
    assert [p.name for p in prom_dir.iterdir()] == ["ctfs.prom"]
    r = ctfs.run("umount", mnt, timeout=30)
    assert r.rc == 0, r.describe()
    assert M.wait_until(lambda: not prom.exists(), timeout=10), "metrics file left after umount"
    assert list(prom_dir.iterdir()) == []


def test_metrics_file_in_a_missing_folder_is_refused(ctfs, keys, small_model, public_dir,
                                                     tmp_path):
    mnt = public_dir / "mnt-metrics-missing"
    mnt.mkdir(mode=0o755)
    r = ctfs.run("mount", small_model.enc, mnt, "--key", keys.reader, "--metrics-file",
                 tmp_path / "no" / "such" / "ctfs.prom", timeout=60)
    assert r.rc == 5 and "no folder" in r.stderr, r.describe()
    assert not M.mounts_at(mnt)
