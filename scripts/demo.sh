#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The ctfs demo, from a fresh Debian 12 machine (as root, with /dev/fuse): install dependencies,
# build, generate keys, generate a small random model (two safetensors shards + index +
# config), encrypt it, verify it, MOUNT it, load every tensor from the mountpoint with stock
# `safetensors` (mmap), unmount; then load the encrypted files with the reference
# `cryptotensors` package and decrypt them byte-exactly.
# Output goes to demo-out/ (removed and recreated on each run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh build
bash scripts/venv.sh
CTFS="$PWD/build/cmd/ctfs"
PY="$PWD/.venv/bin/python"
OUT="$PWD/demo-out"
if grep -q " $OUT/mnt " /proc/mounts 2>/dev/null; then "$CTFS" umount --force "$OUT/mnt"; fi
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'grep -q " $OUT/mnt " /proc/mounts && "$CTFS" umount --force "$OUT/mnt"' EXIT

echo; echo "== 1. keys"
"$CTFS" keygen --out "$OUT/owner.jwk" --reader-out "$OUT/reader.jwk"

echo; echo "== 2. a small random model (plain)"
"$PY" scripts/make_demo_model.py "$OUT/model"
ls -l "$OUT/model"

echo; echo "== 3. encrypt the model directory"
"$CTFS" encrypt "$OUT/model" "$OUT/model-enc" --key "$OUT/owner.jwk"
"$CTFS" inspect "$OUT/model-enc/model-00001-of-00002.safetensors" | head -12

echo; echo "== 4. verify signature and every chunk (with the reader key, which cannot sign)"
"$CTFS" verify "$OUT/model-enc" --key "$OUT/reader.jwk"

echo; echo "== 5. mount the encrypted directory as plain safetensors"
mkdir -p "$OUT/mnt"
"$CTFS" mount "$OUT/model-enc" "$OUT/mnt" --key "$OUT/reader.jwk"
ls -l "$OUT/mnt"
(cd "$OUT/model" && sha256sum *) > "$OUT/plain.sha256"
(cd "$OUT/mnt" && sha256sum -c --quiet "$OUT/plain.sha256") && echo "mounted files are byte-identical to the originals"

echo; echo "== 6. load every tensor from the mountpoint with stock safetensors (mmap)"
"$PY" scripts/demo_load.py plain "$OUT/model" "$OUT/mnt" "$OUT/reader.jwk"

echo; echo "== 7. unmount (revokes access; the daemon wipes its keys)"
"$CTFS" umount "$OUT/mnt"
grep -q " $OUT/mnt " /proc/mounts && { echo "still mounted!"; exit 1; }

echo; echo "== 8. the reference cryptotensors package reads the same encrypted files"
"$PY" scripts/demo_load.py reference "$OUT/model" "$OUT/model-enc" "$OUT/reader.jwk"

echo; echo "== 9. decrypt back and compare"
"$CTFS" decrypt "$OUT/model-enc" "$OUT/model-dec" --key "$OUT/reader.jwk"
(cd "$OUT/model-dec" && sha256sum -c --quiet "$OUT/plain.sha256") && echo "all files byte-identical"
"$PY" scripts/demo_load.py plain "$OUT/model" "$OUT/model-dec" "$OUT/reader.jwk"

echo; echo "demo OK (outputs in demo-out/)"
