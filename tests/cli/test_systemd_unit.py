# SPDX-License-Identifier: Apache-2.0
"""The systemd unit stays valid (`systemd-analyze verify` with the built binary in place), `cmake
--install` puts the binary, unit, docs and examples where the unit expects them, and the unit's
hardening score does not regress."""
import os
import re
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


def build_dir(ctfs_bin):
    build = Path(ctfs_bin).resolve().parents[1]
    if not (build / "cmake_install.cmake").exists():
        pytest.fail(f"{build} is not a CMake build folder (CTFS_BIN={ctfs_bin})")
    return build


def cmake_install(ctfs_bin, *args, env=None):
    p = subprocess.run(["cmake", "--install", str(build_dir(ctfs_bin)), *args],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_cmake_install_puts_everything_where_the_unit_expects_it(ctfs_bin, tmp_path):
    root = tmp_path / "root"
    cmake_install(ctfs_bin, env={**os.environ, "DESTDIR": str(root)})
    modes = {str(p.relative_to(root)): p.stat().st_mode & 0o7777
             for p in root.rglob("*") if p.is_file()}
    assert modes == {
        "usr/local/bin/ctfs": 0o755,
        "usr/local/libexec/ctfs/ctfs-tang-helper": 0o755,
        "usr/local/libexec/ctfs/ctfs-kmip-helper": 0o755,
        "usr/local/lib/systemd/system/ctfs@.service": 0o644,
        "usr/local/share/doc/ctfs/README.md": 0o644,
        "usr/local/share/doc/ctfs/systemd/README.md": 0o644,
        "usr/local/share/doc/ctfs/examples/ctfs.yaml": 0o644,
        "usr/local/share/doc/ctfs/examples/credential-encrypted.conf": 0o644,
    }, modes
    # The folder the unit reads instance configs and keys from: private to root.
    assert (root / "etc/ctfs").is_dir() and (root / "etc/ctfs").stat().st_mode & 0o777 == 0o700
    unit = (root / "usr/local/lib/systemd/system/ctfs@.service").read_text()
    assert unit == (REPO / "systemd" / "ctfs@.service").read_text()  # default prefix: as shipped
    assert (root / "usr/local/share/doc/ctfs/examples/ctfs.yaml").read_bytes() == \
        (REPO / "config" / "example.yaml").read_bytes()
    p = subprocess.run([str(root / "usr/local/bin/ctfs"), "--version"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.strip(), p.stdout + p.stderr


def test_installed_unit_and_encrypted_credential_drop_in_verify(ctfs_bin, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    prefix = tmp_path / "prefix"
    cmake_install(ctfs_bin, "--prefix", str(prefix))
    installed = prefix / "lib/systemd/system/ctfs@.service"
    text = installed.read_text()
    # The prefix given at install time is the one the unit names.
    assert f"ExecStart={prefix}/bin/ctfs mount --foreground" in text, text
    assert f"Documentation=file://{prefix}/share/doc/ctfs/README.md" in text, text
    assert (prefix / "share/doc/ctfs/README.md").is_file()
    units = tmp_path / "units"
    (units / "ctfs@llama.service.d").mkdir(parents=True)
    shutil.copy(installed, units / "ctfs@.service")
    shutil.copy(prefix / "share/doc/ctfs/examples/credential-encrypted.conf",
                units / "ctfs@llama.service.d" / "credential-encrypted.conf")
    drop_in = (units / "ctfs@llama.service.d" / "credential-encrypted.conf").read_text()
    assert "LoadCredentialEncrypted=ctfs.jwk:/etc/ctfs/%i.jwk.cred" in drop_in
    for target, env in ((str(installed), None),
                        ("ctfs@llama.service", {**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"})):
        p = subprocess.run([analyze, "verify", target], capture_output=True, text=True,
                           timeout=60, env=env)
        # Not "ignoring": an unknown or malformed key is only a warning to systemd.
        problems = [l for l in (p.stdout + p.stderr).splitlines()
                    if "ctfs@" in l or "ignoring" in l.lower()]
        assert p.returncode == 0 and not problems, (target, p.stdout + p.stderr)


def test_unit_hardening_score(tmp_path):
    """The exposure score the README reports; fails if a change weakens the sandbox."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    p = subprocess.run([analyze, "security", "--offline=yes", "--no-pager",
                        str(REPO / "systemd" / "ctfs@.service")],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= 4.6, p.stdout
