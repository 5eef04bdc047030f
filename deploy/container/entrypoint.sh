#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Entrypoint of the ctfs image: serve one mount in the foreground from a config file.
#   CTFS_CONFIG      the mount's YAML config (default /etc/ctfs/ctfs.yaml): source, mountpoint,
#                    keys (e.g. the Tang or KMIP helper), key_lease, policy, audit.
#   CTFS_NODE_LABEL  (Kubernetes) a node label set to "ready" while the mount serves; see below.
#   CTFS_LABEL_CHECK_S  seconds between checks of the mount for that label (default 2).
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
if [ -z "${CTFS_NODE_LABEL:-}" ]; then
  exec ctfs mount --config "$config" --foreground "$@"
fi

# On Kubernetes (deploy/kubernetes): label this node CTFS_NODE_LABEL=ready while reads through
# the mount work (`ctfs status --ready`: live, not revoked, no key lease lost), so that
# consumers schedule only there; remove the label when they stop working (a key withdrawn at
# the broker) or the mount ends. The label is cleared first, in case a predecessor killed with
# SIGKILL left it set. Needs NODE_NAME (the downward API) and a service account that may patch
# nodes. A failed PATCH is retried at the next check.
label() {  # label VALUE: "\"ready\"" or null
  sa=/var/run/secrets/kubernetes.io/serviceaccount
  curl -sS --fail --max-time 10 --cacert "$sa/ca.crt" \
    -H "Authorization: Bearer $(cat "$sa/token")" \
    -H 'Content-Type: application/merge-patch+json' -X PATCH \
    -d "{\"metadata\":{\"labels\":{\"$CTFS_NODE_LABEL\":$1}}}" \
    "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/nodes/$NODE_NAME" \
    >/dev/null && return 0
  echo "ctfs-entrypoint: could not set node label $CTFS_NODE_LABEL=$1" >&2
  return 1
}
check_s="${CTFS_LABEL_CHECK_S:-2}"
ctfs mount --config "$config" --foreground "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
labelled=unknown
while kill -0 "$pid" 2>/dev/null; do
  want=null
  ctfs status --ready "$mnt" >/dev/null 2>&1 && want='"ready"'
  if [ "$want" != "$labelled" ] && label "$want"; then labelled=$want; fi
  sleep "$check_s" &
  wait $! 2>/dev/null || true  # a trapped SIGTERM ends the wait at once
done
rc=0
wait "$pid" || rc=$?
[ "$labelled" = null ] || label null || true
exit "$rc"
