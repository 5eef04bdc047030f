#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) into build-fuzz/ and runs each
# for a bounded time, starting from seeds made from tests/testdata (tests/fuzz/make_seeds.py).
# Prints a summary table and exits non-zero if any target found a crash, leak, timeout or OOM;
# the inputs that caused them are saved under WORK/artifacts/<target>/.
#
# Usage: scripts/fuzz.sh [--seconds N | --total-seconds N] [--jobs J] [--work DIR]
#                        [--build DIR] [--no-build] [TARGET...]
#   --seconds N        fuzzing time per target (open_file gets twice as much); default 45,
#                      or $CTFS_FUZZ_SECONDS
#   --total-seconds N  instead: a fixed wall-clock budget for all targets together (split by
#                      those weights over the jobs)
#   --jobs J           targets run at the same time (default 1, or $CTFS_FUZZ_JOBS)
#   --work DIR         corpora, artifacts and logs (default ${TMPDIR:-/tmp}/ctfs-fuzz); corpora
#                      are kept there and grow from run to run
#   TARGET...          some of: base64 strict_json jwk safetensors_header crypt_metadata
#                      plain_view open_file config glob embedded_policy pkcs11_uri (default: all)
# Reproduce a finding: build-fuzz/tests/fuzz/<target>_fuzzer WORK/artifacts/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(open_file crypt_metadata safetensors_header plain_view jwk strict_json base64 config
             glob embedded_policy pkcs11_uri)
seconds=${CTFS_FUZZ_SECONDS:-45}
total_seconds=""
jobs=${CTFS_FUZZ_JOBS:-1}
work=${TMPDIR:-/tmp}/ctfs-fuzz
build=build-fuzz
do_build=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --total-seconds) total_seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '3,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [ -f "tests/fuzz/${t}_fuzzer.cc" ] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
done

weight() { if [ "$1" = open_file ]; then echo 2; else echo 1; fi; }
if [ -n "$total_seconds" ]; then
  shares=0
  for t in "${targets[@]}"; do shares=$((shares + $(weight "$t"))); done
  seconds=$((total_seconds * jobs / shares))
  [ "$seconds" -ge 5 ] || seconds=5
fi

if [ "$do_build" = 1 ]; then
  cxx=${CTFS_FUZZ_CXX:-clang++-14}
  command -v "$cxx" > /dev/null || {
    echo "fuzz.sh: $cxx not found (scripts/install-deps.sh installs clang-14)" >&2
    exit 1
  }
  cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCTFS_BUILD_FUZZERS=ON -DCTFS_BUILD_TESTS=OFF > /dev/null
  cmake --build "$build" --target ctfs_fuzzers -j "$(nproc)"
fi

mkdir -p "$work"
rm -rf "$work/seeds" "$work/logs" "$work/artifacts"
python3 tests/fuzz/make_seeds.py tests/testdata "$work/seeds" > /dev/null

# run_target T: fuzz T for its share of the time; its exit status goes to logs/T.rc.
run_target() {
  local t=$1 secs=$(($(weight "$1") * seconds))
  local args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$work/artifacts/$t/")
  # A target's own dictionary (tests/fuzz/T.dict), else the JSON one; base64 has none.
  if [ -f "tests/fuzz/$t.dict" ]; then
    args+=(-dict="tests/fuzz/$t.dict")
  elif [ "$t" != base64 ]; then
    args+=(-dict=tests/fuzz/ctfs.dict)
  fi
  case "$t" in
    open_file|plain_view|safetensors_header|crypt_metadata|config) args+=(-max_len=8192) ;;
    glob) args+=(-max_len=330) ;;  # the fuzzer caps pattern (64) and text (256) anyway
    embedded_policy) args+=(-max_len=2048) ;;
    pkcs11_uri) args+=(-max_len=1024) ;;
  esac
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  local rc=0
  CTFS_FUZZ_STATS=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/tests/fuzz/${t}_fuzzer" "${args[@]}" "$work/corpus/$t" "$work/seeds/$t" \
    > "$work/logs/$t.log" 2>&1 || rc=$?
  echo "$rc" > "$work/logs/$t.rc"
}

mkdir -p "$work/logs"
echo "fuzz.sh: ${targets[*]}: ${seconds}s each (open_file $((2 * seconds))s)," \
  "$jobs at a time; work dir $work"
start=$SECONDS
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
  run_target "$t" &
  running=$((running + 1))
done
wait

final_stat() { grep -m1 "^stat::$2:" "$work/logs/$1.log" | awk '{print $2}'; }
failed=0
printf '\n%-20s %12s %8s %10s %8s %s\n' target executions exec/s new_units corpus result
for t in "${targets[@]}"; do
  rc=$(cat "$work/logs/$t.rc" 2>/dev/null || echo "?")
  findings=$(find "$work/artifacts/$t" -type f | wc -l)
  result=ok
  if [ "$rc" != 0 ] || [ "$findings" -gt 0 ]; then
    result="FAILED (exit $rc, $findings artifact(s) in $work/artifacts/$t, log $work/logs/$t.log)"
    failed=1
  fi
  printf '%-20s %12s %8s %10s %8s %s\n' "$t" "$(final_stat "$t" number_of_executed_units)" \
    "$(final_stat "$t" average_exec_per_sec)" "$(final_stat "$t" new_units_added)" \
    "$(find "$work/corpus/$t" -type f | wc -l)" "$result"
done
grep -h "outcomes:" "$work/logs/"*.log || true
echo "fuzz.sh: $((SECONDS - start)) s of fuzzing"
if [ "$failed" != 0 ]; then
  for t in "${targets[@]}"; do
    for a in "$work/artifacts/$t"/*; do
      [ -e "$a" ] && echo "reproduce: $build/tests/fuzz/${t}_fuzzer $a"
    done
  done
  exit 1
fi
