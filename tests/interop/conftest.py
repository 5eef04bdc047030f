# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the ctfs <-> cryptotensors (reference) interop suite.

The ctfs binary comes from $CTFS_BIN, default <repo>/build/cmd/ctfs. A missing binary is an
error in every test that needs it (pytest.fail, never skip): the suite must not pass vacuously.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
from pathlib import Path

import pytest

from . import interop_util as U

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CTFS = REPO / "build" / "cmd" / "ctfs"
TESTDATA = REPO / "tests" / "testdata"

# Exit codes of the CLI contract.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FORMAT, EXIT_AUTH, EXIT_NOKEY = 0, 1, 2, 3, 4, 5


def describe(r: subprocess.CompletedProcess) -> str:
    return (f"$ {' '.join(map(str, r.args))}\nexit {r.returncode}\n"
            f"--- stdout ---\n{r.stdout[-4000:]}\n--- stderr ---\n{r.stderr[-4000:]}")


class Ctfs:
    """Runs the CLI with a clean key environment (no inherited CRYPTOTENSOR_KEYS)."""

    def __init__(self, binary: Path):
        self.bin = binary

    def run(self, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
        e = {k: v for k, v in os.environ.items() if k != "CRYPTOTENSOR_KEYS"}
        if env:
            e.update(env)
        return subprocess.run([str(self.bin), *map(str, args)], capture_output=True, text=True,
                              env=e, timeout=timeout, stdin=subprocess.DEVNULL)

    def expect(self, code: int, *args, **kw) -> subprocess.CompletedProcess:
        r = self.run(*args, **kw)
        assert r.returncode == code, f"expected exit {code}\n" + describe(r)
        return r

    def ok(self, *args, **kw) -> subprocess.CompletedProcess:
        return self.expect(EXIT_OK, *args, **kw)

    def inspect(self, path, **kw) -> dict:
        r = self.ok("inspect", path, "--json", **kw)
        try:
            return json.loads(r.stdout)
        except json.JSONDecodeError as exc:  # pragma: no cover - diagnostic
            raise AssertionError(f"inspect --json did not print one JSON object: {exc}\n"
                                 + describe(r)) from exc

    @staticmethod
    def key_args(*keyfiles):
        return list(itertools.chain.from_iterable(("--key", str(k.path if hasattr(k, "path") else k))
                                                  for k in keyfiles))


@pytest.fixture(scope="session")
def ctfs_path() -> Path:
    p = Path(os.environ.get("CTFS_BIN", str(DEFAULT_CTFS)))
    if not p.is_file() or not os.access(p, os.X_OK):
        pytest.fail(f"ctfs binary not found or not executable: {p} "
                    f"(build it, or point CTFS_BIN at it)", pytrace=False)
    return p


@pytest.fixture(scope="session")
def ctfs(ctfs_path) -> Ctfs:
    return Ctfs(ctfs_path)


@dataclasses.dataclass
class KeyFiles:
    path: Path                 # full JWK Set (enc k + sign x/d), mode 0600
    jwks: dict
    config: dict               # reference config {"enc_key": .., "sign_key": ..}
    alg: str
    enc_kid: str
    sign_kid: str
    reader_path: Path | None = None   # JWK Set without "d" (verify/decrypt only)

    @property
    def reader_config(self) -> dict:
        c = json.loads(json.dumps(self.config))
        c["sign_key"].pop("d", None)
        return c


_counter = itertools.count()


@pytest.fixture
def keygen(ctfs, tmp_path):
    """Factory: keys made by `ctfs keygen`; returns KeyFiles (also checks the JWK shape lightly)."""

    def make(alg="aes256gcm", enc_kid=None, sign_kid=None, name=None) -> KeyFiles:
        name = name or f"keys{next(_counter)}"
        out = tmp_path / f"{name}.jwk"
        reader = tmp_path / f"{name}.pub.jwk"
        args = ["keygen", "--out", out, "--reader-out", reader, "--alg", alg]
        if enc_kid:
            args += ["--enc-kid", enc_kid]
        if sign_kid:
            args += ["--sign-kid", sign_kid]
        ctfs.ok(*args)
        jwks = json.loads(out.read_text())
        cfg = U.ref_config_from_jwks(jwks)
        return KeyFiles(path=out, jwks=jwks, config=cfg, alg=alg,
                        enc_kid=cfg["enc_key"].get("kid"), sign_kid=cfg["sign_key"].get("kid"),
                        reader_path=reader)

    return make


@pytest.fixture
def py_keys(tmp_path):
    """Factory: keys made in Python (independent of ctfs keygen), written as a 0600 JWK Set."""

    def make(alg="aes256gcm", enc_kid="enc-1", sign_kid="sign-1", k=None, d=None,
             name=None) -> KeyFiles:
        name = name or f"pykeys{next(_counter)}"
        jwks = U.make_jwks(alg=alg, enc_kid=enc_kid, sign_kid=sign_kid, k=k, d=d)
        path = U.write_jwks(tmp_path / f"{name}.jwk", jwks)
        reader = {"keys": [dict(j) for j in jwks["keys"]]}
        for j in reader["keys"]:
            j.pop("d", None)
        reader_path = U.write_jwks(tmp_path / f"{name}.pub.jwk", reader)
        return KeyFiles(path=path, jwks=jwks, config=U.ref_config_from_jwks(jwks), alg=alg,
                        enc_kid=enc_kid, sign_kid=sign_kid, reader_path=reader_path)

    return make
