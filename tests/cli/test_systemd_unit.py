# SPDX-License-Identifier: Apache-2.0
"""The systemd unit stays valid: `systemd-analyze verify` with the built binary in place."""
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_unit_verifies(ctfs_bin, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    text = (REPO / "systemd" / "ctfs@.service").read_text()
    assert "/usr/local/bin/ctfs mount --foreground --config /etc/ctfs/%i.yaml" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    unit = tmp_path / "ctfs@demo.service"
    unit.write_text(text.replace("/usr/local/bin/ctfs", str(Path(ctfs_bin).resolve()))
                    .replace("ConditionPathExists=/etc/ctfs/%i.yaml\n", ""))
    p = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [l for l in (p.stdout + p.stderr).splitlines() if "ctfs@demo" in l]
    assert p.returncode == 0 and not problems, p.stdout + p.stderr
