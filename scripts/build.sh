#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds ctfs into build/ (or $1), Release with debug info. Extra arguments
# after the build dir go to cmake (e.g. -DCTFS_SANITIZE=address or =thread).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
