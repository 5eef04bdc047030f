#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Kubernetes binaries the cluster check needs (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl) from the Go module proxy, since Debian 12 packages none of them.
# `go install k8s.io/kubernetes/cmd/...` does not work (its go.mod replaces the staging modules with
# local paths), so this makes a small wrapper module that requires k8s.io/kubernetes and replaces
# every staging module named in that go.mod with its published v0.<minor>.<patch> version.
#
# Usage: scripts/k8s/build-kubernetes.sh [--version v1.34.4] [--cache DIR]
#   Binaries land in DIR/<version>/bin (default DIR /var/cache/ctfs-k8s) and are reused when present.
# Needs the Go module proxy, and Go >= 1.24 (fetched from the proxy if PATH has none); about 3 GB
# of build cache, 7-8 minutes on 2 cores.
set -euo pipefail
version=v1.34.4 cache=/var/cache/ctfs-k8s
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-kubernetes: unknown argument $1" >&2; exit 2 ;;
  esac
done
commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
out="$cache/$version/bin"
missing=0
for c in "${commands[@]}"; do [ -x "$out/$c" ] || missing=1; done
if [ "$missing" = 0 ]; then echo "build-kubernetes: cached in $out"; exit 0; fi
# Go >= 1.24 is needed; Debian 12 packages 1.19. Without one on PATH, the official toolchain is
# fetched from the Go module proxy (the golang.org/toolchain module that GOTOOLCHAIN uses).
go_recent() {
  command -v go >/dev/null || return 1
  local v; v=$(go env GOVERSION 2>/dev/null) || return 1   # e.g. go1.26.8
  v=${v#go}
  [ "${v%%.*}" -gt 1 ] || { local m=${v#1.}; [ "${m%%.*}" -ge 24 ]; }
}
if ! go_recent; then
  tc=go1.24.11
  tdir="$cache/toolchain/$tc"
  if [ ! -x "$tdir/bin/go" ]; then
    proxy=$(printf '%s' "${GOPROXY:-https://proxy.golang.org}" | cut -d, -f1)
    [ "$proxy" != direct ] && [ "$proxy" != off ] || proxy=https://proxy.golang.org
    echo "build-kubernetes: no Go >= 1.24 on PATH; fetching $tc from $proxy"
    mkdir -p "$cache/toolchain"
    curl -fsSL -o "$cache/toolchain/$tc.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-$tc.linux-amd64.zip"
    # The module zip holds golang.org/toolchain@v0.0.1-$tc.linux-amd64/...; keep the file modes.
    python3 - "$cache/toolchain/$tc.zip" "$tdir" <<'PY'
import os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        parts = info.filename.split("/", 2)  # golang.org, toolchain@..., the path
        name = parts[2] if len(parts) == 3 else ""
        if not name or name.endswith("/"):
            continue
        out = os.path.join(dst, name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as f, open(out, "wb") as g:
            g.write(f.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(out, mode or 0o644)
PY
    rm -f "$cache/toolchain/$tc.zip"
  fi
  export PATH="$tdir/bin:$PATH" GOTOOLCHAIN=local
  go_recent || { echo "build-kubernetes: the fetched Go toolchain does not run" >&2; exit 1; }
fi

src="$cache/$version/src"
mkdir -p "$src" "$out"
cd "$src"
staging_version="v0.${version#v1.}"
if [ ! -f go.mod ]; then
  modfile=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" \
            | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -s "$modfile" ] || { echo "build-kubernetes: could not fetch k8s.io/kubernetes@$version" >&2; exit 1; }
  {
    echo "module ctfs.local/k8sbuild"
    echo
    grep -m1 '^go ' "$modfile"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$modfile"
    echo ")"
  } > go.mod.tmp
  grep -q 'k8s.io/client-go =>' go.mod.tmp || { echo "build-kubernetes: no staging replaces found in $modfile" >&2; exit 1; }
  {
    echo "//go:build tools"
    echo
    echo "// Package tools pins the Kubernetes commands this module builds."
    echo "package tools"
    echo
    echo "import ("
    for c in "${commands[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ")"
  } > tools.go
  mv go.mod.tmp go.mod
fi
echo "build-kubernetes: go mod tidy ($version, staging $staging_version)"
go mod tidy >tidy.log 2>&1 || { tail -20 tidy.log >&2; exit 1; }
# The version the binaries report (kubectl version, the node's kubeletVersion); the apiserver
# also derives its emulation version from it.
minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
for c in "${commands[@]}"; do
  [ -x "$out/$c" ] && continue
  start=$(date +%s)
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  mv "$out/$c.tmp" "$out/$c"
  echo "build-kubernetes: $c built in $(( $(date +%s) - start )) s"
done
