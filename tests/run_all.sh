#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every ctfs test on a fresh Debian 12 machine: installs dependencies, builds, runs the
# GoogleTest units (normal, AddressSanitizer+UBSan and ThreadSanitizer builds), the CLI tests,
# the Python interop tests against the real `cryptotensors` and `safetensors` packages, the
# real-mount tests (among them a revocation stress run of the ThreadSanitizer-built daemon and a
# fault matrix), the container tests (the image with podman, Tang and KMIP key brokers), and the
# libFuzzer targets for a bounded time, after a lint of the include rules (tests/lint.sh).
# Exits non-zero if anything fails. Usage: tests/run_all.sh   (as root, or with sudo)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== 0/7 include-rule lint (tests/lint.sh) and its self-test"
bash tests/lint.sh
bash tests/lint.sh --self-test

echo "== 1/7 dependencies"
bash scripts/install-deps.sh

echo "== 2/7 build (RelWithDebInfo) + unit tests"
bash scripts/build.sh build
ctest --test-dir build --output-on-failure -L unit

echo "== 3/7 build (ASan+UBSan) + unit tests"
bash scripts/build.sh build-asan -DCTFS_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -L unit

echo "== 4/7 build (ThreadSanitizer) + unit tests"
# gcc 12's TSan runtime aborts at start ("FATAL: ThreadSanitizer: unexpected memory mapping")
# where the kernel randomizes mmap addresses with more than 28 bits (vm.mmap_rnd_bits = 32 on
# some newer kernels); without address randomization (setarch -R) it runs. The build needs it
# too: gtest_discover_tests runs each test binary to list its tests.
# tests/mount/test_tsan_stress.py does the same for the daemons it starts.
tsan_run=()
if [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ]; then
  tsan_run=(setarch "$(uname -m)" -R)
fi
"${tsan_run[@]}" bash scripts/build.sh build-tsan -DCTFS_SANITIZE=thread
# A report fails its test binary (exit 66). CTFS_TEST_SHRINK: tests whose byte loops are slow
# under TSan check fewer bytes (each names what it keeps). ~2-4 min on 2 cores.
TSAN_OPTIONS="second_deadlock_stack=1 history_size=4" CTFS_TEST_SHRINK=1 \
  "${tsan_run[@]}" ctest --test-dir build-tsan --output-on-failure -L unit

echo "== 5/7 python venvs (pinned: tests/requirements.txt, tests/requirements-torch.txt)"
bash scripts/venv.sh
bash scripts/venv-torch.sh   # torch (CPU use of the PyPI build) + transformers, ~2.8 GB once
export CTFS_TORCH_PYTHON="$PWD/.venv-torch/bin/python"

echo "== 6/7 CLI, interop and real-mount tests (pytest)"
# Real FUSE mounts need root and /dev/fuse; in CI the mount tests fail (never skip) without them.
# CTFS_TSAN_BIN: the TSan-built daemon of tests/mount/test_tsan_stress.py (~1 min).
rc=0
failed=()  # what failed, repeated at the very end (where a CI log's tail shows it)
logs="${TMPDIR:-/tmp}/ctfs-test-logs"
mkdir -p "$logs"
# tests/containers: the image from Debian packages (mmdebstrap + podman, base cached in
# /var/cache/ctfs-image), producer and consumer containers, Tang and KMIP broker containers
# (~1-2 min).
set +e
CTFS_BIN="$PWD/build/cmd/ctfs" CTFS_TSAN_BIN="$PWD/build-tsan/cmd/ctfs" \
  .venv/bin/python -m pytest -q -rfE tests/cli tests/interop tests/mount tests/containers \
  2>&1 | tee "$logs/pytest.log"
pytest_rc=${PIPESTATUS[0]}
set -e
if [ "$pytest_rc" -ne 0 ]; then
  rc=1
  failed+=("pytest: $(grep -E '^(FAILED|ERROR) ' "$logs/pytest.log" | cut -c1-200 | tr '\n' ';')")
fi

echo "== 7/7 fuzzers (clang, ASan+UBSan; 5 min of fuzzing for all targets on 2 cores)"
# Seeds come from tests/testdata; a crash, leak, timeout or OOM fails the run (artifacts and
# the command that reproduces each are printed).
if ! bash scripts/fuzz.sh --total-seconds 300 --jobs 2 --work "${TMPDIR:-/tmp}/ctfs-fuzz-ci" \
     2>&1 | tee "$logs/fuzz.log"; then
  rc=1
  # The summary table's rows whose result is not "ok" (crash, leak, timeout, oom, ...).
  failed+=("fuzz: $(grep -E '^[a-z_]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ ' "$logs/fuzz.log" \
                    | grep -v ' ok$' | tr -s ' ' | tr '\n' ';')")
fi

echo "== benchmark harness smoke run (tiny fixture; no timing is asserted)"
smoke_out="${TMPDIR:-/tmp}/ctfs-bench-smoke/out"
bash bench/run --smoke --work "${TMPDIR:-/tmp}/ctfs-bench-smoke" --out "$smoke_out" \
  || { rc=1; failed+=("bench/run --smoke"); }
# A saved run re-renders to the same markdown (bench/report.py RESULTS_JSON).
if ! diff <(.venv/bin/python bench/report.py "$smoke_out/results.json") \
          <(cat "$smoke_out/results.md"; echo) > /dev/null; then
  echo "FAIL: bench/report.py does not re-render $smoke_out/results.json to its results.md"; rc=1
  failed+=("bench/report.py re-render")
fi
.venv/bin/python bench/chunk_sizes.py --work "${TMPDIR:-/tmp}/ctfs-bench-smoke" --size-gib 0.02 \
  --repeats 1 --fio-runtime 1 --chunk-kib 64,256 || { rc=1; failed+=("bench/chunk_sizes.py"); }
head -c $((9 << 20)) /dev/urandom > "${TMPDIR:-/tmp}/ctfs-bench-smoke/direct_read.bin"
.venv/bin/python bench/direct_read.py "${TMPDIR:-/tmp}/ctfs-bench-smoke/direct_read.bin" \
  --repeats 2 || { rc=1; failed+=("bench/direct_read.py"); }
.venv/bin/python bench/copy_offsets.py "${TMPDIR:-/tmp}/ctfs-bench-smoke/direct_read.bin" \
  --repeats 1 || { rc=1; failed+=("bench/copy_offsets.py"); }
.venv/bin/python bench/policy_open.py --work "${TMPDIR:-/tmp}/ctfs-bench-smoke/policy" \
  --opens 200 --size-mib 8 --rounds 1 || { rc=1; failed+=("bench/policy_open.py"); }

left=$(grep -c ' fuse.ctfs ' /proc/mounts || true)
if [ "$left" != "0" ]; then
  echo "FAIL: $left ctfs mount(s) left behind:"; grep ' fuse.ctfs ' /proc/mounts
  rc=1
  failed+=("$left ctfs mount(s) left behind")
fi
if [ "$rc" -ne 0 ]; then
  echo "== FAILED steps (details above; logs in $logs):"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "== all tests passed"
