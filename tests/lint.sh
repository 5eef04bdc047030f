#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Include rules of the layered source tree (README "Layout"), checked on the C++ sources that git
# tracks (tests/ and bench/ excluded):
#   * third-party headers stay in their layer: <openssl/...> only in crypto/, <nlohmann/...>
#     only in format/, libfuse (<fuse*.h>, <fuse3/...>) only in fs/fuse/, <yaml-cpp/...> only
#     in config/; <systemd/...> (libsystemd's sd_notify) only in cmd/service_notify.cc;
#     <p11-kit/...> (the Cryptoki header) only in keys/pkcs11_token.cc;
#   * project headers point down only: base <- {crypto, format, config} <- {keys, policy} <- fs
#     <- fs/fuse <- cmd (so e.g. no "fs/..." header below fs, no "cmd/..." header outside cmd).
# Prints one line per violation ("FILE:LINE: ...") and exits 1 if there is any.
#
# Usage: tests/lint.sh [ROOT]      lint the tree at ROOT (default: this repository)
#        tests/lint.sh --self-test plant one violation of each rule in a copy of the tree and
#                                  check that each is reported (and that the clean copy passes)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# allowed[layer] = layers whose headers it may include.
declare -A allowed=(
  [base]="base"
  [crypto]="base crypto"
  [format]="base format"
  [config]="base config"
  [keys]="base crypto format config keys"
  [policy]="base crypto format config policy"
  [fs]="base crypto format config keys policy fs"
  [fs/fuse]="base crypto format config keys policy fs fs/fuse"
  [cmd]="base crypto format config keys policy fs fs/fuse cmd"
)

layer_of() {  # path relative to the root -> $layer (empty for files outside the layers)
  case "$1" in
    fs/fuse/*) layer=fs/fuse ;;
    base/* | crypto/* | format/* | config/* | keys/* | policy/* | fs/* | cmd/*) layer=${1%%/*} ;;
    *) layer="" ;;
  esac
}

list_sources() {  # root -> tracked C++ sources, relative paths
  local root=$1
  if git -C "$root" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    git -C "$root" ls-files -- '*.h' '*.hh' '*.hpp' '*.cc' '*.cpp' '*.cxx'
  else
    (cd "$root" && find . -type f \( -name '*.h' -o -name '*.hh' -o -name '*.hpp' \
      -o -name '*.cc' -o -name '*.cpp' -o -name '*.cxx' \) | sed 's|^\./||' | sort)
  fi | grep -Ev '^(tests|bench)/' || true
}

lint() {  # root -> prints violations, returns 1 if any
  local root=$1 bad=0 file lineno target flayer f
  local -a files=()
  while IFS= read -r f; do
    layer_of "$f"
    [ -n "$layer" ] && [ -f "$root/$f" ] && files+=("$f")  # skip deleted, not yet staged
  done < <(list_sources "$root")
  [ ${#files[@]} -gt 0 ] || return 0
  while IFS=$'\t' read -r file lineno target; do
    layer_of "$file"
    flayer=$layer
    case "$target" in
      openssl/*) [ "$flayer" = crypto ] || { echo "$file:$lineno: <$target>: OpenSSL is included only in crypto/"; bad=1; } ;;
      nlohmann/*) [ "$flayer" = format ] || { echo "$file:$lineno: <$target>: nlohmann-json is included only in format/"; bad=1; } ;;
      fuse* | fuse3/*) [ "$flayer" = fs/fuse ] || { echo "$file:$lineno: <$target>: libfuse is included only in fs/fuse/"; bad=1; } ;;
      yaml-cpp/*) [ "$flayer" = config ] || { echo "$file:$lineno: <$target>: yaml-cpp is included only in config/"; bad=1; } ;;
      systemd/*) [ "$file" = cmd/service_notify.cc ] || { echo "$file:$lineno: <$target>: libsystemd is included only in cmd/service_notify.cc"; bad=1; } ;;
      p11-kit/*) [ "$file" = keys/pkcs11_token.cc ] || { echo "$file:$lineno: <$target>: the PKCS#11 header is included only in keys/pkcs11_token.cc"; bad=1; } ;;
    esac
    layer_of "$target"
    if [ -n "$layer" ] && [[ " ${allowed[$flayer]} " != *" $layer "* ]]; then
      echo "$file:$lineno: \"$target\": $flayer/ may not include $layer/ (layers point down: ${allowed[$flayer]})"
      bad=1
    fi
  done < <(cd "$root" && awk '{
             if (match($0, /^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^>"]+[>"]/)) {
               s = substr($0, RSTART, RLENGTH); sub(/^[^<"]*[<"]/, "", s); sub(/[>"]$/, "", s)
               print FILENAME "\t" FNR "\t" s
             }
           }' "${files[@]}")
  return $bad
}

self_test() {
  local repo tmp rc=0 out
  repo="$(cd "$here/.." && pwd)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/ctfs-lint-selftest.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  (cd "$repo" && list_sources "$repo" | while IFS= read -r f; do
     [ -f "$f" ] && mkdir -p "$tmp/${f%/*}" && cp "$f" "$tmp/$f"
   done)
  if ! out=$(lint "$tmp"); then
    echo "lint self-test: the unmodified copy of the tree fails:"; echo "$out"; return 1
  fi
  # case: file to plant | line to add | text the report must contain
  local cases=(
    "base/lint_probe.h|#include <openssl/evp.h>|base/lint_probe.h:2: <openssl/evp.h>"
    "fs/lint_probe.cc|#include <nlohmann/json.hpp>|fs/lint_probe.cc:2: <nlohmann/json.hpp>"
    "cmd/lint_probe.cc|#include <fuse_lowlevel.h>|cmd/lint_probe.cc:2: <fuse_lowlevel.h>"
    "fs/lint_probe.h|  #  include <fuse3/fuse.h>|fs/lint_probe.h:2: <fuse3/fuse.h>"
    "format/lint_probe.cc|#include <yaml-cpp/yaml.h>|format/lint_probe.cc:2: <yaml-cpp/yaml.h>"
    "cmd/lint_probe.cc|#include <systemd/sd-daemon.h>|cmd/lint_probe.cc:2: <systemd/sd-daemon.h>"
    "fs/fuse/lint_probe.cc|#include <systemd/sd-daemon.h>|fs/fuse/lint_probe.cc:2: <systemd/sd-daemon.h>"
    "keys/lint_probe.cc|#include <p11-kit/pkcs11.h>|keys/lint_probe.cc:2: <p11-kit/pkcs11.h>"
    "crypto/lint_probe.cc|#include \"fs/model_tree.h\"|crypto/lint_probe.cc:2: \"fs/model_tree.h\""
    "keys/lint_probe.h|#include \"fs/fuse/daemon.h\"|keys/lint_probe.h:2: \"fs/fuse/daemon.h\""
    "fs/lint_probe.cc|#include \"cmd/common.h\"|fs/lint_probe.cc:2: \"cmd/common.h\""
    "base/lint_probe.cc|#include \"format/jwk.h\"|base/lint_probe.cc:2: \"format/jwk.h\""
  )
  local c file line want
  for c in "${cases[@]}"; do
    IFS='|' read -r file line want <<< "$c"
    mkdir -p "$tmp/$(dirname "$file")"
    printf '// SPDX-License-Identifier: Apache-2.0\n%s\n' "$line" > "$tmp/$file"
    if out=$(lint "$tmp"); then
      echo "lint self-test: FAILED to report $line in $file"; rc=1
    elif [[ "$out" != *"$want"* ]]; then
      echo "lint self-test: report for $file lacks '$want':"; echo "$out"; rc=1
    fi
    rm -f "$tmp/$file"
  done
  # Allowed uses stay allowed (cmd/service_notify.cc includes <systemd/sd-daemon.h>: checked
  # by the clean copy above).
  if ! grep -q '^#include <systemd/sd-daemon.h>' "$tmp/cmd/service_notify.cc" 2>/dev/null; then
    echo "lint self-test: cmd/service_notify.cc no longer includes <systemd/sd-daemon.h>"; rc=1
  fi
  printf '#include <openssl/evp.h>\n#include "base/status.h"\n' > "$tmp/crypto/lint_probe.cc"
  printf '#include <fuse_lowlevel.h>\n#include "fs/served_tree.h"\n' > "$tmp/fs/fuse/lint_probe.cc"
  if ! out=$(lint "$tmp"); then
    echo "lint self-test: allowed includes were reported:"; echo "$out"; rc=1
  fi
  [ $rc -eq 0 ] && echo "lint self-test: ok (${#cases[@]} planted violations reported)"
  return $rc
}

if [ "${1:-}" = "--self-test" ]; then
  self_test
  exit $?
fi
root="${1:-$(cd "$here/.." && pwd)}"
if out=$(lint "$root"); then
  echo "lint: ok (include rules hold)"
else
  echo "$out"
  echo "lint: FAILED: include rules broken (see tests/lint.sh)"
  exit 1
fi
