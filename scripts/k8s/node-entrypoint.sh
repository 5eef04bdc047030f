#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Entrypoint of a Kubernetes node container for scripts/k8s_check.sh: containerd + kubelet in a
# privileged podman container, so that one machine holds several nodes. /etc/kubernetes holds
# this node's kubelet binary, kubeconfig and KubeletConfiguration (node.env names the node and
# its pod subnet); /images holds image tarballs to import (no registry is reachable).
set -euo pipefail
. /etc/kubernetes/node.env   # NODE_NAME, POD_SUBNET, POD_GATEWAY
# Mounts made in pods (the ctfs FUSE mount under a Bidirectional hostPath) must propagate to
# the other pods of this node: the node's root is a shared mount.
mount --make-rshared /
# The node's pod cgroups live under a cgroup of their own in every v1 hierarchy
# (KubeletConfiguration cgroupRoot), so that nodes do not share /kubepods.
for h in /sys/fs/cgroup/*/; do
  mkdir -p "$h$NODE_NAME"
done
[ -s /etc/machine-id ] || tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
sysctl -qw net.ipv4.ip_forward=1 || true

mkdir -p /etc/cni/net.d /var/log/node
cat > /etc/cni/net.d/10-bridge.conflist <<CNI
{"cniVersion": "0.4.0", "name": "pods", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CNI

containerd --config /etc/kubernetes/containerd.toml >/var/log/node/containerd.log 2>&1 &
for _ in $(seq 100); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.1; done
for tar in /images/*.tar; do
  ctr -n k8s.io images import --no-unpack "$tar" >/dev/null
done
node_ip=$(ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
exec /usr/local/bin/kubelet --config=/etc/kubernetes/kubelet.yaml \
  --kubeconfig=/etc/kubernetes/kubelet.kubeconfig \
  --container-runtime-endpoint=unix:///run/containerd/containerd.sock \
  --hostname-override="$NODE_NAME" --node-ip="$node_ip" \
  --node-labels=ctfs.io/gpu-node=true --v=1
