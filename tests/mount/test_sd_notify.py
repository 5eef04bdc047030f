# SPDX-License-Identifier: Apache-2.0
"""systemd Type=notify: `ctfs mount -f` with $NOTIFY_SOCKET sends READY=1 only once reads through
the mount work (the test reads a file the moment READY=1 arrives), STATUS= lines saying what it
does, and STOPPING=1 when SIGTERM revokes. Both socket forms systemd uses: a path and an
abstract name ("@...")."""
from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from . import mount_util as M
from .conftest import EXTRA_MOUNT_ARGS, log_tail


@pytest.mark.parametrize("form", ["path", "abstract"])
def test_ready_after_reads_work_and_stopping_on_sigterm(ctfs, keys, small_model, mounter,
                                                        tmp_path, form):
    address = (str(tmp_path / "notify.sock") if form == "path"
               else f"@ctfs-test-notify-{os.getpid()}-{form}")
    listener = M.NotifyListener(address)
    mnt = mounter.new_mnt()
    mounter.mnts.append(mnt)
    log = tmp_path / "daemon.log"
    want = small_model.plain_bytes("weights.safetensors")
    try:
        p = subprocess.Popen([ctfs.bin, "mount", "-f", "--key", keys.reader, "--log-file", log,
                              small_model.enc, mnt, *EXTRA_MOUNT_ARGS],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=M.clean_env(listener.env()),
                             start_new_session=True)
        mounter.procs.append(p)
        # Read through the mount as soon as each message arrives: READY=1 must find it working.
        seen_before_ready = []

        def on_message(msg):
            if "READY" not in msg:
                seen_before_ready.append(msg["_raw"])

        ready = listener.wait_for("READY", 30, on_message)
        assert ready is not None, (f"no READY=1 within 30 s (exit {p.poll()}); got "
                                   f"{listener.messages}\n{log_tail(log)}")
        got = (mnt / "weights.safetensors").read_bytes()
        assert got == want, "READY=1 arrived before reads through the mount return the plaintext"
        assert ready["READY"] == "1"
        assert ready.get("MAINPID") == str(p.pid), ready
        status = ready.get("STATUS", "")
        assert re.fullmatch(rf"serving \d+ files from {re.escape(str(small_model.enc))} at "
                            rf"{re.escape(str(mnt))}", status), status
        # Before READY: what it was doing (loading keys, verifying), never READY itself.
        assert any("STATUS=verifying" in raw for raw in seen_before_ready), seen_before_ready
        assert p.poll() is None

        p.send_signal(signal.SIGTERM)
        stopping = listener.wait_for("STOPPING", 30)
        assert stopping is not None and stopping["STOPPING"] == "1", listener.messages
        assert "revoking" in stopping.get("STATUS", ""), stopping
        assert p.wait(30) == 0
        assert not M.mounts_at(mnt)
        # Exactly one READY=1: no reload happened.
        assert sum("READY" in m for m in listener.messages) == 1, listener.messages
    finally:
        listener.close()

