# SPDX-License-Identifier: Apache-2.0
"""The systemd unit's commands, run as systemd would run them (CI has no systemd as PID 1):
ExecStartPre, ExecStart (foreground, config file + credential key), ExecReload (SIGHUP: the
policy is re-read, the mount stays), then the stop signal (SIGTERM: revoked and unmounted).
Type=notify: a $NOTIFY_SOCKET listener sees READY=1 only once the mount answers reads,
RELOADING=1 then READY=1 around the reload, and STOPPING=1 on SIGTERM."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import mount_util as M

REPO = Path(__file__).resolve().parents[2]


def unit_commands(ctfs_bin, instance, etc, creds):
    text = (REPO / "systemd" / "ctfs@.service").read_text()
    cmds = {}
    for line in text.splitlines():
        m = re.match(r"^(ExecStartPre|ExecStart|ExecReload)=(-?)(.*)$", line)
        if not m:
            continue
        cmd = (m.group(3).replace("/usr/local/bin/ctfs", str(ctfs_bin))
               .replace("/etc/ctfs/", f"{etc}/").replace("%i", instance)
               .replace("${CREDENTIALS_DIRECTORY}", str(creds)))
        cmds.setdefault(m.group(1), []).append((m.group(2) == "-", cmd))
    assert "KillSignal=SIGTERM" in text
    assert "Type=notify" in text
    return cmds


def test_unit_commands_mount_reload_and_revoke(ctfs, keys, small_model, tmp_path):
    instance = f"ctfs-test-{os.getpid()}"
    mnt = Path("/run/ctfs") / instance
    etc, creds = tmp_path / "etc", tmp_path / "creds"
    etc.mkdir()
    creds.mkdir()
    shutil.copy(keys.reader, creds / "ctfs.jwk")
    audit = tmp_path / "audit.jsonl"
    cfg = etc / f"{instance}.yaml"
    policy = "policy:\n  rules:\n    - {name: root, decision: allow, subject: {uid: 0}}\n"
    cfg.write_text(f"source: {small_model.enc}\nmountpoint: {mnt}\naudit: {{file: {audit}}}\n"
                   + policy)
    cmds = unit_commands(ctfs.bin, instance, etc, creds)
    daemon = None
    listener = M.NotifyListener(str(tmp_path / "notify.sock"))
    try:
        for ignore_failure, cmd in cmds["ExecStartPre"]:
            r = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=60)
            assert ignore_failure or r.returncode == 0, (cmd, r.stdout, r.stderr)
        (start,) = cmds["ExecStart"]
        daemon = subprocess.Popen(shlex.split(start[1]), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                  env=M.clean_env(listener.env()))
        # systemd starts the units ordered after this one at READY=1: reads must work by then.
        ready = listener.wait_for("READY", 30)
        assert ready is not None, (listener.messages, daemon.poll())
        assert (mnt / "weights.safetensors").read_bytes() == \
            small_model.plain_bytes("weights.safetensors")
        assert ready.get("MAINPID") == str(daemon.pid) and "serving" in ready["STATUS"], ready
        # ExecReload with a policy that denies root: the next open is refused, still mounted.
        cfg.write_text(cfg.read_text().replace("uid: 0", "uid: 4242"))
        (reload,) = cmds["ExecReload"]
        subprocess.run(shlex.split(reload[1].replace("$MAINPID", str(daemon.pid))), check=True)
        assert M.wait_until(lambda: '"event":"reload"' in audit.read_text(), 10), \
            audit.read_text()
        assert listener.wait_for("RELOADING", 10) is not None, listener.messages
        reloaded = listener.wait_for("READY", 10)
        assert reloaded is not None and "policy reloaded" in reloaded["STATUS"], \
            listener.messages
        try:
            (mnt / "weights.safetensors").read_bytes()
            raise AssertionError("the reloaded policy did not deny root")
        except PermissionError:
            pass
        assert M.mounts_at(mnt) and daemon.poll() is None
        # systemctl stop: SIGTERM revokes and unmounts.
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, out
        stopping = listener.wait_for("STOPPING", 5)
        assert stopping is not None and "revoking" in stopping["STATUS"], listener.messages
        assert not M.mounts_at(mnt)
        assert '"event":"revoke"' in audit.read_text()
    finally:
        listener.close()
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
        if M.mounts_at(mnt):
            M.force_unmount(mnt)
        time.sleep(0.1)
        try:
            mnt.rmdir()
        except OSError:
            pass
        assert not M.mounts_at(mnt)
