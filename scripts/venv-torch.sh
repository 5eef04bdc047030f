#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Creates .venv-torch with torch + transformers on the CPU (tests/requirements-torch.txt, which
# includes tests/requirements.txt) for the model-loading tests in tests/mount.
# Python is for tests and tooling only; the product is the C++ binary.
# Fresh install: ~2.8 GB download, ~100 s, ~5.6 GB on disk (see the comment in the requirements
# file for why the CUDA wheels come along although nothing runs on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-torch/bin/python ]; then
  python3 -m venv .venv-torch
fi
stamp=.venv-torch/.requirements.sha256
want=$(cat tests/requirements-torch.txt tests/requirements.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv-torch/bin/python -m pip install -q --upgrade pip
  # --no-cache-dir: the wheels are ~2.8 GB; keeping a second copy in ~/.cache/pip buys little.
  .venv-torch/bin/python -m pip install -q --no-cache-dir -r tests/requirements-torch.txt
  echo "$want" > "$stamp"
fi
