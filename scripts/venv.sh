#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Creates .venv with the pinned Python test/tooling requirements (tests/requirements.txt).
# Python is for tests and tooling only; the product is the C++ binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r tests/requirements.txt
  echo "$want" > "$stamp"
fi
