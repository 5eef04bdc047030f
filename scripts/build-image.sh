#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the ctfs container image from Debian packages only: a minbase Debian 12 root made by
# mmdebstrap (the runtime libraries of ctfs, fuse3, clevis for the Tang key helper,
# python3-pykmip for the KMIP key helper and server), cached by
# its package list, then the ctfs binary (stripped), the entrypoint and the key helpers on top.
# No registry is used. The image runs `ctfs mount --config $CTFS_CONFIG --foreground`
# (deploy/container/entrypoint.sh).
#
# Usage: scripts/build-image.sh [--ctfs BIN] [--tag NAME] [--cache DIR] [--save FILE.tar]
#   --ctfs   the ctfs binary (default build/cmd/ctfs)
#   --tag    image name (default localhost/ctfs:latest)
#   --cache  where the base root tarball is kept (default /var/cache/ctfs-image)
#   --save   also write the image as a docker-archive tarball (for `ctr images import`)
# Needs root, podman and mmdebstrap (scripts/install-deps.sh); CONTAINERS_CONF is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/cmd/ctfs tag=localhost/ctfs:latest cache=/var/cache/ctfs-image save=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ctfs) bin=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --save) save=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "build-image: no ctfs binary at $bin (build it first)" >&2; exit 2; }
for tool in podman mmdebstrap strip; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (scripts/install-deps.sh)" >&2; exit 2; }
done

# The runtime libraries of the binary, by Debian package (bookworm names).
packages=(fuse3 libfuse3-3 libssl3 libspdlog1.10 libfmt9 libyaml-cpp0.7 libsystemd0
          libstdc++6 clevis python3-pykmip)
mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
         | grep -v security | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
key=$(printf '%s\n' v1 bookworm "${packages[@]}" | sha256sum | cut -c1-12)
base_tar="$cache/base-$key.tar"
base_tag="localhost/ctfs-base:$key"
mkdir -p "$cache"
if [ ! -s "$base_tar" ]; then
  echo "build-image: mmdebstrap bookworm minbase (${packages[*]}) -> $base_tar"
  # No docs, man pages or locales; no apt lists: the image never installs anything.
  mmdebstrap --format=tar --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$base_tar.tmp" "$mirror" >"$cache/mmdebstrap.log" 2>&1 \
    || { tail -20 "$cache/mmdebstrap.log" >&2; exit 1; }
  mv "$base_tar.tmp" "$base_tar"
fi
if ! podman image exists "$base_tag"; then
  podman import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/sh"]' "$base_tar" "$base_tag" >/dev/null
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
strip -o "$ctx/ctfs" "$bin"
cp deploy/container/entrypoint.sh "$ctx/ctfs-entrypoint"
cp deploy/helpers/ctfs-tang-helper deploy/helpers/ctfs-kmip-helper "$ctx/"
cat > "$ctx/Containerfile" <<CONTAINERFILE
FROM $base_tag
COPY ctfs ctfs-entrypoint /usr/local/bin/
COPY ctfs-tang-helper ctfs-kmip-helper /usr/libexec/ctfs/
LABEL org.opencontainers.image.title="ctfs" \\
      org.opencontainers.image.description="CryptoTensors FS: encrypted models mounted as plain safetensors"
ENTRYPOINT ["/usr/local/bin/ctfs-entrypoint"]
CONTAINERFILE
podman build --pull=never --network=none -q -t "$tag" "$ctx" >/dev/null
size=$(podman image inspect "$tag" --format '{{.Size}}')
echo "build-image: $tag ($((size / 1000000)) MB)"
if [ -n "$save" ]; then
  podman save --format docker-archive -o "$save" "$tag" >/dev/null
  echo "build-image: saved $save"
fi
