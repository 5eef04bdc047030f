#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages ctfs needs to build and test (idempotent; needs root or sudo).
# Everything comes from Debian packages: nothing is vendored or downloaded at build time.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libssl-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libyaml-cpp-dev
  libfuse3-dev fuse3 libsystemd-dev libgtest-dev libgmock-dev
  libp11-kit-dev                # the PKCS#11 (Cryptoki) header; modules are dlopen()ed
  softhsm2 opensc               # tests: a software token, and pkcs11-tool to inspect it
  podman mmdebstrap runc conmon containernetworking-plugins iptables uidmap catatonit
  fuse-overlayfs clevis openssl # the image (scripts/build-image.sh) and tests/containers
  systemd strace                # systemd-analyze (unit verify, security score, syscall groups);
                                # strace (the daemon's syscalls against the unit's filter)
  python3 python3-venv python3-pip
  gocryptfs fio vmtouch
  clang-14 libclang-rt-14-dev   # libFuzzer + sanitizer runtimes (scripts/fuzz.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
