# SPDX-License-Identifier: Apache-2.0
"""Process hygiene of every ctfs command (README "Daemon hygiene"): no core dumps (RLIMIT_CORE 0)
and not dumpable (PR_SET_DUMPABLE 0: the kernel then makes the files of /proc/PID, mem and environ
among them, owned by root, and other processes of the same user cannot ptrace it or read its
memory). Checked on a live `ctfs verify`
run as an unprivileged user, held inside a read by the fault-injection preload (a 'delay' rule,
tests/fault/faultio.c) so that it can be looked at."""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def faultio_lib(ctfs_bin):
    lib = Path(os.environ.get("CTFS_FAULTIO_LIB") or
               Path(ctfs_bin).resolve().parents[1] / "tests" / "libctfs_faultio.so")
    if not lib.is_file():
        pytest.fail(f"fault injection library not found: {lib} (build target ctfs_faultio)")
    return lib


def test_ctfs_process_is_not_dumpable_and_has_no_core_limit(ctfs_bin, ctfs, keys, plain):
    if os.geteuid() != 0:
        pytest.skip("needs root to run ctfs as another user")
    # Everything the unprivileged run needs, in a directory it can reach (pytest's are 0700).
    d = Path(tempfile.mkdtemp(prefix="ctfs-hygiene-", dir="/tmp"))
    try:
        _run_checks(ctfs_bin, ctfs, keys, plain, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run_checks(ctfs_bin, ctfs, keys, plain, d):
    os.chmod(d, 0o755)
    binary = d / "ctfs"
    shutil.copy(ctfs_bin, binary)
    lib = d / "libctfs_faultio.so"
    shutil.copy(faultio_lib(ctfs_bin), lib)
    enc = d / "enc.safetensors"
    ctfs("encrypt", plain, enc, "--key", keys / "k.jwk", "-q", check=0)
    os.chmod(enc, 0o644)
    key = d / "r.jwk"
    key.write_bytes((keys / "r.jwk").read_bytes())
    os.chown(key, NOBODY, NOBODY)
    os.chmod(key, 0o600)
    control = d / "faults"
    # Only the read of the last chunk is held (the header reads come first, undelayed).
    control.write_text(f"delay {enc} {enc.stat().st_size - 1} 1 ms=3000\n")
    os.chmod(control, 0o644)
    env = dict(os.environ, LD_PRELOAD=str(lib), CTFS_FAULTIO_CONTROL=str(control))
    env.pop("CRYPTOTENSOR_KEYS", None)
    p = subprocess.Popen([str(binary), "verify", str(enc), "--key", str(key)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: (os.setgid(NOBODY), os.setuid(NOBODY)))
    try:
        # Wait until it runs as nobody (after exec) and is inside the delayed read.
        deadline = time.monotonic() + 10
        status = ""
        while time.monotonic() < deadline:
            status = Path(f"/proc/{p.pid}/status").read_text()
            if "ctfs" in Path(f"/proc/{p.pid}/comm").read_text() and \
                    f"Uid:\t{NOBODY}" in status:
                break
            time.sleep(0.02)
        time.sleep(0.3)
        assert p.poll() is None, f"ctfs verify ended before it could be inspected: {p.communicate()}"
        for name in ("mem", "environ", "status"):
            st = os.stat(f"/proc/{p.pid}/{name}")
            assert (st.st_uid, st.st_gid) == (0, 0), \
                f"/proc/{p.pid}/{name} is owned by {st.st_uid}:{st.st_gid}: the process is dumpable"
        limits = Path(f"/proc/{p.pid}/limits").read_text()
        core = next(l for l in limits.splitlines() if l.startswith("Max core file size"))
        assert core.split()[4] == "0" and core.split()[5] == "0", core
    finally:
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, (out, err)
    assert out.startswith("OK"), out
