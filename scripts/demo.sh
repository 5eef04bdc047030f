#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The ctfs demo, from a fresh Debian 12 machine: install dependencies, build, generate keys,
# generate a small random model (two safetensors shards + index + config), encrypt it, inspect
# and verify it, load it with the reference `cryptotensors` package, decrypt it and check the
# result is byte-identical and loads with stock `safetensors`.
# Output goes to demo-out/ (removed and recreated on each run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh build
bash scripts/venv.sh
CTFS="$PWD/build/cmd/ctfs"
PY="$PWD/.venv/bin/python"
OUT="$PWD/demo-out"
rm -rf "$OUT" && mkdir -p "$OUT"

echo; echo "== 1. keys"
"$CTFS" keygen --out "$OUT/owner.jwk" --reader-out "$OUT/reader.jwk"

echo; echo "== 2. a small random model (plain)"
"$PY" scripts/make_demo_model.py "$OUT/model"
ls -l "$OUT/model"

echo; echo "== 3. encrypt the model directory"
"$CTFS" encrypt "$OUT/model" "$OUT/model-enc" --key "$OUT/owner.jwk"
"$CTFS" inspect "$OUT/model-enc/model-00001-of-00002.safetensors" | head -12

echo; echo "== 4. verify signature and every chunk (reader key: cannot sign)"
"$CTFS" verify "$OUT/model-enc" --key "$OUT/reader.jwk"

echo; echo "== 5. load the encrypted model with the reference cryptotensors package"
"$PY" scripts/demo_load.py reference "$OUT/model" "$OUT/model-enc" "$OUT/reader.jwk"

echo; echo "== 6. decrypt back and compare"
"$CTFS" decrypt "$OUT/model-enc" "$OUT/model-dec" --key "$OUT/reader.jwk"
(cd "$OUT/model" && sha256sum *) > "$OUT/plain.sha256"
(cd "$OUT/model-dec" && sha256sum -c --quiet "$OUT/plain.sha256") && echo "all files byte-identical"
"$PY" scripts/demo_load.py plain "$OUT/model" "$OUT/model-dec" "$OUT/reader.jwk"

echo; echo "demo OK (outputs in demo-out/)"
