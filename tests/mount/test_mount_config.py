# SPDX-License-Identifier: Apache-2.0
"""`ctfs mount --config FILE` on real mounts: SRC, MNT, keys and settings from the file; options
on the command line override the file's keys; a bad config mounts nothing. (check-config and
the config errors of both commands: tests/cli/test_config.py.)"""
from __future__ import annotations

from . import mount_util as M
from .conftest import MOUNT_TIMEOUT, EXTRA_MOUNT_ARGS


def mount_with_config(mounter, cfg, *args, mnt=None):
    """Runs `ctfs mount --config cfg ARGS`; registers the mountpoint for teardown."""
    if mnt is not None:
        mounter.mnts.append(mnt)
    return mounter.ctfs.run("mount", "--config", cfg, *args, *EXTRA_MOUNT_ARGS,
                            timeout=MOUNT_TIMEOUT)


def assert_mounted_and_reads(mounter, small_model, mnt):
    entries = M.mounts_at(mnt)
    assert len(entries) == 1 and entries[0].fstype == M.FSTYPE, entries
    mounter.pids[mnt] = entries[0].pid
    rel = "weights.safetensors"
    assert (mnt / rel).read_bytes() == small_model.plain_bytes(rel)


def test_mount_from_config_alone(mounter, small_model, keys, tmp_path):
    """source, mountpoint, keys and log file all from the file (relative paths against its
    directory); `quiet: true` silences the success line."""
    mnt = mounter.new_mnt()
    (tmp_path / "conf").mkdir()
    cfg = tmp_path / "conf" / "m.yaml"
    cfg.write_text(f"source: {small_model.enc}\nmountpoint: ../{mnt.name}\n"
                   f"keys: [{{file: {keys.reader}}}]\nquiet: true\n"
                   f"log: {{file: daemon.log, level: debug}}\n")
    r = mount_with_config(mounter, cfg, mnt=mnt)
    assert r.rc == 0, r.describe()
    assert r.stdout == "", r.stdout
    assert_mounted_and_reads(mounter, small_model, mnt)
    assert (tmp_path / "conf" / "daemon.log").exists()
    M.cleanup_mount(mnt, [mounter.pids.get(mnt)])
    assert not M.mounts_at(mnt)


def test_command_line_overrides_the_file(mounter, small_model, keys, tmp_path):
    """SRC/MNT given as arguments replace source/mountpoint; --log-file replaces log.file;
    --key replaces keys (the file's key is the wrong one)."""
    file_mnt = mounter.new_mnt()
    cli_mnt = mounter.new_mnt()
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"source: {tmp_path}/nowhere\nmountpoint: {file_mnt}\n"
                   f"keys: [{{file: {keys.other}}}]\n"
                   f"log: {{file: {tmp_path}/file.log}}\n")
    mounter.mnts.append(file_mnt)
    r = mount_with_config(mounter, cfg, small_model.enc, cli_mnt, "--key", keys.reader,
                          "--log-file", tmp_path / "cli.log", mnt=cli_mnt)
    assert r.rc == 0, r.describe()
    assert f"mounted {small_model.enc} at {cli_mnt}" in r.stdout, r.stdout
    assert not M.mounts_at(file_mnt)
    assert_mounted_and_reads(mounter, small_model, cli_mnt)
    assert (tmp_path / "cli.log").exists() and not (tmp_path / "file.log").exists()


def test_bad_config_mounts_nothing(mounter, small_model, keys, tmp_path):
    mnt = mounter.new_mnt()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"source: {small_model.enc}\nmountpoint: {mnt}\n"
                   f"keys: [{{file: {keys.reader}}}]\n"
                   "policy:\n  rules:\n    - {name: a, decision: allow, object: {path: '[x'}}\n")
    r = mount_with_config(mounter, cfg, mnt=mnt)
    assert r.rc == 3, r.describe()
    assert f"{cfg}:6:49: " in M.error_line(r), r.describe()
    assert not M.mounts_at(mnt)
    assert not M.ctfs_processes_with_arg(str(cfg))
