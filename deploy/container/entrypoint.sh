#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Entrypoint of the ctfs image: serve one mount in the foreground from a config file.
#   CTFS_CONFIG  the mount's YAML config (default /etc/ctfs/ctfs.yaml): source, mountpoint, keys
#                (e.g. the Tang helper), key_lease, policy, audit.
# A predecessor killed with SIGKILL leaves its FUSE mount behind ("Transport endpoint is not
# connected"); it is detached first, so that a restart mounts again and consumers that bind
# the mount's parent with rslave propagation read again. SIGTERM (docker/podman stop, a pod's
# deletion) reaches ctfs itself, which revokes: deny, drop the page cache (mapped pages too),
# wipe keys, unmount.
set -eu
config="${CTFS_CONFIG:-/etc/ctfs/ctfs.yaml}"
[ -r "$config" ] || { echo "ctfs-entrypoint: no config at $config (set CTFS_CONFIG)" >&2; exit 2; }
mnt=$(sed -n 's/^mountpoint:[[:space:]]*//p' "$config" | sed 's/[[:space:]]*#.*$//; s/^"\(.*\)"$/\1/' | head -n 1)
if [ -n "$mnt" ]; then
  mkdir -p "$mnt" 2>/dev/null || true
  if ! stat "$mnt" >/dev/null 2>&1 || grep -q " $mnt fuse" /proc/self/mounts; then
    echo "ctfs-entrypoint: detaching the mount a previous run left at $mnt" >&2
    fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    mkdir -p "$mnt" 2>/dev/null || true
  fi
fi
exec ctfs mount --config "$config" --foreground "$@"
