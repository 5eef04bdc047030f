# SPDX-License-Identifier: Apache-2.0
"""A SoftHSM2 token for the PKCS#11 tests, set up by the tests themselves: its own config and
token directory (SOFTHSM2_CONF, passed to every ctfs run through `env`) and a user PIN in a
0600 file.

CI installs softhsm2 and opensc (pkcs11-tool) (scripts/install-deps.sh); a missing tool fails
the test (never skips it)."""
from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

PIN = "4711-ctfs"
SO_PIN = "0815-ctfs"


def _first(*patterns):
    for p in patterns:
        hits = sorted(glob.glob(p))
        if hits:
            return hits[0]
    pytest.fail(f"not installed: none of {patterns} (scripts/install-deps.sh installs it)",
                pytrace=False)


def softhsm_module():
    return _first("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/*/softhsm/libsofthsm2.so")


class SoftHsm:
    def __init__(self, root: Path, label="ctfs-test"):
        self.root, self.label = Path(root), label
        (self.root / "tokens").mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {self.root / 'tokens'}\n"
                             "objectstore.backend = file\nlog.level = ERROR\n")
        self.pin_file = self.root / "pin"
        self.pin_file.write_text(PIN + "\n")
        os.chmod(self.pin_file, 0o600)
        self.env = {"SOFTHSM2_CONF": str(self.conf)}
        self.init_token(label)

    def init_token(self, label):
        r = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                            "--pin", PIN, "--so-pin", SO_PIN], env={**os.environ, **self.env},
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)

    def uri(self, obj, token=None, module=None, pin_file=None):
        """The PKCS#11 URI of key `obj` (pin_file=False: none)."""
        pin = self.pin_file if pin_file is None else pin_file
        u = (f"pkcs11:token={quote(token or self.label)};object={quote(obj)}"
             f"?module-path={module or softhsm_module()}")
        return u + (f"&pin-source=file:{pin}" if pin else "")

    def tool(self, *args, token=None):
        """pkcs11-tool (opensc) on this token, logged in."""
        r = subprocess.run(["pkcs11-tool", "--module", softhsm_module(), "--token-label",
                            token or self.label, "--login", "--pin", PIN, *map(str, args)],
                           env={**os.environ, **self.env}, capture_output=True, text=True,
                           timeout=60)
        return r
