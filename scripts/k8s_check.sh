#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# OPT-IN, not part of CI (~10 min the first time, mostly building Kubernetes; ~1-1.5 min cached).
# Runs ctfs on a real multi-node Kubernetes 1.34 cluster on this one machine and measures it:
#   * control plane on the host: etcd (Debian etcd-server), kube-apiserver (token auth, RBAC and
#     the Node authorizer), kube-controller-manager, kube-scheduler, built from the Go module
#     proxy by scripts/k8s/build-kubernetes.sh (Debian packages no Kubernetes server);
#   * N+1 nodes (--nodes N, default 2), each a privileged podman container running Debian's
#     containerd and the kubelet (scripts/k8s/node-entrypoint.sh), images imported from tarballs;
#   * a PyKMIP server (mutual TLS) on the host holding the model key; each node has its own client
#     certificate in /etc/ctfs/node, so the key is released per node, by the broker; the extra
#     node's certificate comes from another CA (a node the broker does not know);
#   * the manifests of deploy/kubernetes applied through a kustomize overlay that only points
#     the config at this KMIP server, shortens the lease (6 s, grace 2 s) and sets the API
#     server's address (no kube-proxy here), plus a consumer DaemonSet (the role of
#     vllm-example.yaml: nodeSelector ctfs.io/llama=ready, HostToContainer) whose probe checks
#     the sha256 of every model file every 0.2 s and logs each change with a timestamp.
# It checks and prints: every trusted node mounts and is labelled ready, the untrusted one gets
# no key, no label and no consumer; every consumer reads every file with the plaintext's sha256;
# the access policy lets only the inference executable open the weights; the time to recover
# after the ctfs process of a DaemonSet pod is killed (kill -9) and after the pod is deleted;
# the time from revoking the key at the KMIP server to denial on every node, which must be
# within lease + grace, and to every node label removed and every ctfs pod unready.
# Exit 0 only if every check passed.
#
# Usage: scripts/k8s_check.sh [--nodes N] [--keep] [--cache DIR]
#        scripts/k8s_check.sh --down     (removes a cluster left by --keep or an interrupted run)
#   --keep    leave the cluster running at the end (kubectl: --kubeconfig
#             /var/lib/ctfs-k8s-check/admin.kubeconfig)
#   --cache   Kubernetes binaries and image roots (default /var/cache/ctfs-k8s)
# Needs root, /dev/fuse, podman, mmdebstrap, openssl, containerd, etcd-server (apt-get install
# containerd etcd-server; the rest: scripts/install-deps.sh), build/cmd/ctfs and the .venv
# (scripts/venv.sh) for the test model; Go >= 1.24 is used from PATH or fetched from the proxy.
# Uses ports 16443, 12379-12380 and 15696.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
nodes=2 keep=0 cache=/var/cache/ctfs-k8s down=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --down) down=1; shift ;;
    --cache) cache=$2; shift 2 ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "k8s_check: unknown argument $1" >&2; exit 2 ;;
  esac
done
k8s_version=v1.34.4
work=/var/lib/ctfs-k8s-check
api_port=16443 etcd_port=12379 kmip_port=15696
lease_s=6 grace_s=2
prefix=ctfs-k8s
# podman needs a containers.conf on these machines (runc; ulimits without CAP_SYS_RESOURCE);
# it is kept with the cache so that --down can still reach the containers of a removed run.
export CONTAINERS_CONF=$cache/containers.conf
kbin="$cache/$k8s_version/bin"
failures=0

log() { printf '%s k8s_check: %s\n' "$(date +%T)" "$*"; }
fail() { log "FAIL: $*"; failures=$((failures + 1)); }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
kc() { "$kbin/kubectl" --kubeconfig "$work/admin.kubeconfig" "$@"; }

teardown() {
  set +e
  if [ -x "$kbin/kubectl" ] && [ -f "$work/admin.kubeconfig" ]; then
    # Graceful first: each ctfs pod revokes (preStop) and unmounts.
    kc delete namespace ctfs-check ctfs-system --wait=true --timeout=60s >/dev/null 2>&1
  fi
  for c in $(podman ps -a --format '{{.Names}}' 2>/dev/null | grep "^$prefix-"); do
    podman rm -f -t 5 "$c" >/dev/null 2>&1
  done
  # The control plane, and wait until it is gone (its ports are reused by the next run).
  local pattern="^($kbin/kube-[a-z-]+|etcd --name $prefix) "
  pkill -f "$pattern" 2>/dev/null
  for _ in $(seq 100); do pgrep -f "$pattern" >/dev/null || break; sleep 0.2; done
  pkill -KILL -f "$pattern" 2>/dev/null
  # Mounts a node container left behind (its root is gone with it; these are the host's view).
  grep -o " $work/[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  rm -rf "$work"
}
mkdir -p "$cache"
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n' \
  > "$CONTAINERS_CONF"
if [ "$down" = 1 ]; then teardown; log "torn down"; exit 0; fi

[ "$(id -u)" = 0 ] || die "needs root"
[ -c /dev/fuse ] || die "no /dev/fuse"
for tool in podman mmdebstrap openssl containerd etcd curl python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install containerd etcd-server; scripts/install-deps.sh)"
done
[ -x build/cmd/ctfs ] || die "no build/cmd/ctfs (scripts/build.sh)"
[ -x .venv/bin/python ] || die "no .venv (scripts/venv.sh)"
if [ -d "$work" ]; then log "removing a previous run's cluster"; teardown; fi
for port in "$api_port" "$etcd_port" "$((etcd_port + 1))" "$kmip_port"; do
  ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "port $port is in use"
done
mkdir -p "$work"/{pki,images,models-enc,plain,logs,kmip/policies,overlay}
trap 'if [ "$keep" = 0 ]; then teardown; else log "kept: $work (scripts/k8s_check.sh --down)"; fi' EXIT
host_ip=$(ip -4 route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$host_ip" ] || die "cannot find this machine's IPv4 address"
t_begin=$(now)

# --- binaries and images ---------------------------------------------------------------------
bash scripts/k8s/build-kubernetes.sh --version "$k8s_version" --cache "$cache"
bash scripts/build-image.sh --save "$work/images/ctfs.tar"
# The node image: Debian's containerd, runc, CNI plugins and iptables (for the pod bridge's
# masquerade), plus this version's kubelet and the node entrypoint.
node_pkgs=(containerd runc containernetworking-plugins iptables iproute2 procps util-linux mount
           fuse3 ca-certificates)
node_key=$(printf '%s\n' v1 bookworm "${node_pkgs[@]}" | sha256sum | cut -c1-12)
node_tar="$cache/node-$node_key.tar"
if [ ! -s "$node_tar" ]; then
  log "mmdebstrap the node image (${node_pkgs[*]})"
  mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
           | grep -v security | head -n 1)
  mmdebstrap --format=tar --variant=minbase --include="$(IFS=,; echo "${node_pkgs[*]}")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    bookworm "$node_tar.tmp" "${mirror:-http://deb.debian.org/debian}" \
    >"$work/logs/mmdebstrap.log" 2>&1 || { tail -20 "$work/logs/mmdebstrap.log"; die "mmdebstrap failed"; }
  mv "$node_tar.tmp" "$node_tar"
fi
podman image exists "localhost/$prefix-node-base:$node_key" ||
  podman import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$node_tar" "localhost/$prefix-node-base:$node_key" >/dev/null
# Kubernetes needs a pause image for pod sandboxes; podman's own (catatonit) serves.
podman pod create --name "$prefix-pausegen" >/dev/null && podman pod rm -f "$prefix-pausegen" >/dev/null
pause=$(podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/podman-pause:' | sed -n 1p)
[ -n "$pause" ] || die "podman made no pause image"
podman tag "$pause" localhost/pause:ctfs
podman save --format docker-archive -o "$work/images/pause.tar" localhost/pause:ctfs >/dev/null

# --- the model and the key broker -------------------------------------------------------------
.venv/bin/python scripts/make_demo_model.py "$work/plain/llama" >/dev/null
build/cmd/ctfs keygen --enc-kid llama-enc --out "$work/pki/model.jwk" --reader-out "$work/pki/reader.jwk" >/dev/null
build/cmd/ctfs encrypt "$work/plain/llama" "$work/models-enc/llama" --key "$work/pki/model.jwk" -q
(cd "$work/plain/llama" && sha256sum -- *) > "$work/want.sha256"
nfiles=$(wc -l < "$work/want.sha256")
shard=$(awk '/\.safetensors$/ {print $2; exit}' "$work/want.sha256")

cd "$work/pki"
ossl() { openssl "$@" >/dev/null 2>&1 || die "openssl $*"; }
ca() { ossl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$1.key" -out "$1.crt" -subj "/CN=$1"; }
cert() {  # cert NAME ISSUER EXTENSIONS
  printf '%s\n' "$3" > "$1.ext"
  ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
  ossl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 2 -out "$1.crt" -extfile "$1.ext"
}
ca cluster-ca
cert apiserver cluster-ca "subjectAltName=IP:$host_ip,IP:127.0.0.1,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
ossl genrsa -out sa.key 2048
ossl rsa -in sa.key -pubout -out sa.pub
ca kmip-ca
ca other-ca
cert kmip-server kmip-ca "subjectAltName=IP:$host_ip,IP:127.0.0.1
extendedKeyUsage=serverAuth"
cert kmip-admin kmip-ca "extendedKeyUsage=clientAuth"
chmod 600 ./*.key
cd "$repo"

# A KMIP server (PyKMIP from the ctfs image) on the host network: it holds the model's data-key
# wrapping key (the oct key of the reader key set) under the name llama-enc. Its policy lets
# every client certificate of kmip-ca get the key and only the administrator revoke it.
printf '{"ctfs-nodes": {"preset": {"SYMMETRIC_KEY": {"LOCATE": "ALLOW_ALL", "GET": "ALLOW_ALL", "GET_ATTRIBUTES": "ALLOW_ALL", "GET_ATTRIBUTE_LIST": "ALLOW_ALL", "ACTIVATE": "ALLOW_OWNER", "REVOKE": "ALLOW_OWNER", "DESTROY": "ALLOW_OWNER"}}}}\n' \
  > "$work/kmip/policies/ctfs.json"
cp "$work/pki/kmip-server.crt" "$work/pki/kmip-server.key" "$work/pki/kmip-ca.crt" "$work/kmip/"
cat > "$work/kmip/server.conf" <<EOF
[server]
hostname=0.0.0.0
port=$kmip_port
certificate_path=/kmip/kmip-server.crt
key_path=/kmip/kmip-server.key
ca_path=/kmip/kmip-ca.crt
auth_suite=TLS1.2
enable_tls_client_auth=True
database_path=/kmip/kmip.db
policy_path=/kmip/policies
logging_level=INFO
EOF
podman run -d --name "$prefix-kmip" --network host -v "$work/kmip:/kmip" --entrypoint pykmip-server \
  localhost/ctfs:latest -f /kmip/server.conf -l /kmip/server.log >/dev/null
for _ in $(seq 150); do
  grep -qs "Loading policy: ctfs-nodes" "$work/kmip/server.log" && break; sleep 0.2
done
grep -qs "Loading policy: ctfs-nodes" "$work/kmip/server.log" || die "the KMIP server did not start"
mkdir -p "$work/kmip-admin"
cp "$work/pki/kmip-ca.crt" "$work/kmip-admin/ca.crt"
cp "$work/pki/kmip-admin.crt" "$work/kmip-admin/admin.crt"
cp "$work/pki/kmip-admin.key" "$work/kmip-admin/admin.key"
kmip_admin() {
  podman run --rm --network host -v "$work/kmip-admin:/certs:ro" -v "$repo/tests/containers:/tests:ro" \
    -v "$work/pki:/keys:ro" --entrypoint python3 localhost/ctfs:latest /tests/kmip_admin.py \
    "$1" "$kmip_port" /certs "${@:2}"
}
kmip_admin register llama-enc /keys/reader.jwk || die "could not register the key at the KMIP server"
.venv/bin/python - "$work/pki/reader.jwk" "$work/pki/verify.jwk" <<'EOF'
import json, sys
keys = json.load(open(sys.argv[1]))["keys"]
json.dump({"keys": [k for k in keys if k["kty"] == "okp"]}, open(sys.argv[2], "w"))
EOF

# --- control plane ----------------------------------------------------------------------------
declare -A token
# One more node than --nodes, whose key identity is a client certificate from another CA: a node
# the broker does not know. It joins the cluster but must never get the key.
untrusted=node$((nodes + 1))
all_nodes=$((nodes + 1))
for who in admin controller-manager scheduler $(seq -f 'node%g' 1 "$all_nodes"); do
  token[$who]=$(openssl rand -hex 16)
done
{
  echo "${token[admin]},admin,admin,system:masters"
  echo "${token[controller-manager]},system:kube-controller-manager,kcm"
  echo "${token[scheduler]},system:kube-scheduler,ksched"
  for i in $(seq "$all_nodes"); do echo "${token[node$i]},system:node:node$i,node$i,system:nodes"; done
} > "$work/pki/tokens.csv"
kubeconfig() {  # kubeconfig FILE TOKEN
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://$host_ip:$api_port", certificate-authority-data: $(base64 -w0 "$work/pki/cluster-ca.crt")}}]
users: [{name: u, user: {token: "$2"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
EOF
}
kubeconfig "$work/admin.kubeconfig" "${token[admin]}"
kubeconfig "$work/kcm.kubeconfig" "${token[controller-manager]}"
kubeconfig "$work/sched.kubeconfig" "${token[scheduler]}"

log "control plane: etcd, kube-apiserver $k8s_version on $host_ip:$api_port, controller-manager, scheduler"
etcd --name "$prefix" --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
  >"$work/logs/etcd.log" 2>&1 &
disown  # stopped by teardown; no job-control notice when it is killed
"$kbin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" --secure-port "$api_port" \
  --bind-address 0.0.0.0 --advertise-address "$host_ip" \
  --tls-cert-file "$work/pki/apiserver.crt" --tls-private-key-file "$work/pki/apiserver.key" \
  --client-ca-file "$work/pki/cluster-ca.crt" --token-auth-file "$work/pki/tokens.csv" \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$work/pki/sa.pub" \
  --service-account-signing-key-file "$work/pki/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --kubelet-preferred-address-types InternalIP \
  >"$work/logs/kube-apiserver.log" 2>&1 &
api_pid=$!
disown
for _ in $(seq 120); do
  kc get --raw /readyz >/dev/null 2>&1 && break
  kill -0 "$api_pid" 2>/dev/null || break
  sleep 0.5
done
kc get --raw /readyz >/dev/null 2>&1 || { tail -20 "$work/logs/kube-apiserver.log"; die "kube-apiserver is not ready"; }
"$kbin/kube-controller-manager" --kubeconfig "$work/kcm.kubeconfig" --leader-elect=false \
  --service-account-private-key-file "$work/pki/sa.key" --root-ca-file "$work/pki/cluster-ca.crt" \
  --use-service-account-credentials=true --bind-address 127.0.0.1 \
  >"$work/logs/kube-controller-manager.log" 2>&1 &
disown  # stopped by teardown; no job-control notice when it is killed
"$kbin/kube-scheduler" --kubeconfig "$work/sched.kubeconfig" --leader-elect=false --bind-address 127.0.0.1 \
  >"$work/logs/kube-scheduler.log" 2>&1 &
disown  # stopped by teardown; no job-control notice when it is killed

# --- nodes ------------------------------------------------------------------------------------
mkdir -p "$work/node-image"
cp "$kbin/kubelet" scripts/k8s/node-entrypoint.sh "$work/node-image/"
cat > "$work/node-image/Containerfile" <<EOF
FROM localhost/$prefix-node-base:$node_key
COPY kubelet /usr/local/bin/kubelet
COPY node-entrypoint.sh /usr/local/bin/node-entrypoint
ENTRYPOINT ["/usr/local/bin/node-entrypoint"]
EOF
podman build --pull=never --network=none -q -t "localhost/$prefix-node:latest" "$work/node-image" >/dev/null
for i in $(seq "$all_nodes"); do
  n=node$i d="$work/nodes/node$i"
  mkdir -p "$d"/{etc,containerd,kubelet,identity}
  echo "NODE_NAME=$n POD_SUBNET=10.244.$i.0/24 POD_GATEWAY=10.244.$i.1" > "$d/etc/node.env"
  kubeconfig "$d/etc/kubelet.kubeconfig" "${token[$n]}"
  cat > "$d/etc/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$n
failCgroupV1: false
failSwapOn: false
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
localStorageCapacityIsolation: false
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
readOnlyPort: 0
EOF
  cat > "$d/etc/containerd.toml" <<'EOF'
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:ctfs"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
EOF
  cp "$work/pki/kmip-ca.crt" "$d/identity/ca.crt"
  cp "$work/pki/verify.jwk" "$d/identity/llama.verify.jwk"
  issuer=kmip-ca; [ "$n" != "$untrusted" ] || issuer=other-ca
  (cd "$work/pki" && cert "$n" "$issuer" "extendedKeyUsage=clientAuth")
  mv "$work/pki/$n.crt" "$d/identity/client.crt"
  mv "$work/pki/$n.key" "$d/identity/client.key"
  chmod 600 "$d/identity/client.key"
  podman run -d --name "$prefix-$n" --hostname "$n" --privileged --cgroupns=host \
    -v "$d/etc:/etc/kubernetes:ro" -v "$work/images:/images:ro" \
    -v "$d/containerd:/var/lib/containerd" -v "$d/kubelet:/var/lib/kubelet" \
    -v "$work/models-enc:/srv/models-enc:ro" -v "$d/identity:/etc/ctfs/node:ro" \
    "localhost/$prefix-node:latest" >/dev/null
done
log "waiting for $all_nodes nodes to be Ready ($untrusted: client certificate from another CA)"
for _ in $(seq 90); do
  [ "$(kc get nodes --no-headers 2>/dev/null | grep -cw Ready)" = "$all_nodes" ] && break; sleep 2
done
kc get nodes -o wide
[ "$(kc get nodes --no-headers 2>/dev/null | grep -cw Ready)" = "$all_nodes" ] ||
  { podman logs --tail 30 "$prefix-node1"; die "not every node became Ready"; }
t_cluster=$(now)

# --- ctfs: the DaemonSet of deploy/kubernetes, and consumers -----------------------------------
# Pods get cgroup v2 paths of their own (what a policy's cgroup rule matches) only on nodes with
# the unified hierarchy; on a hybrid cgroup v1 host every pod of a node container shows that
# container's v2 path, so there the rule names the executable alone.
pod_cgroup=""
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  pod_cgroup=', cgroup: ["/kubepods", "/*/kubepods"]'
else
  log "cgroup v1 host: the policy names the inference executable only (no pod cgroup v2 paths)"
fi
base_rel=$(realpath --relative-to="$work/overlay" "$repo/deploy/kubernetes")
cat > "$work/overlay/kustomization.yaml" <<EOF
# deploy/kubernetes, pointed at this check's KMIP server with a short lease.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$base_rel]
patches:
  - path: config.yaml
  - path: api-address.yaml
EOF
cat > "$work/overlay/config.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: ctfs-llama, namespace: ctfs-system}
data:
  ctfs.yaml: |
    source: /srv/models-enc/llama
    mountpoint: /run/ctfs/models/llama
    allow_other: true
    keys:
      - exec: [/usr/libexec/ctfs/ctfs-kmip-helper, --server, "$host_ip:$kmip_port",
               --cert, /etc/ctfs/node/client.crt, --key, /etc/ctfs/node/client.key,
               --ca, /etc/ctfs/node/ca.crt, --name, llama-enc,
               --verify-key, /etc/ctfs/node/llama.verify.jwk, --lease, "$lease_s"]
        timeout_s: 20
    key_lease: {grace_s: $grace_s, on_key_loss: deny}
    policy:
      mode: enforce
      rules:
        - name: inference
          decision: allow
          subject: {exe: [/usr/bin/sha256sum]$pod_cgroup}
          object: {path: "*"}
    audit: {file: /var/log/ctfs/llama.audit.jsonl}
EOF
# This cluster runs no kube-proxy, so the service address of the API server is not routed; the
# entrypoint's node labelling goes to the API server's own address instead.
cat > "$work/overlay/api-address.yaml" <<EOF
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ctfs-llama, namespace: ctfs-system}
spec:
  template:
    spec:
      containers:
        - name: ctfs
          env:
            - {name: KUBERNETES_SERVICE_HOST, value: "$host_ip"}
            - {name: KUBERNETES_SERVICE_PORT, value: "$api_port"}
EOF
# The consumers stand in for vLLM: scheduled only on nodes labelled ready, the mount's parent
# bound HostToContainer, and a probe that logs "<time> ok|fail" whenever the result of checking
# every file's sha256 changes. Only /usr/bin/sha256sum may open the weights (the policy above).
cat > "$work/consumers.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: ctfs-check}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: want, namespace: ctfs-check}
data:
  want.sha256: |
$(sed 's#  #  /models/llama/#; s/^/    /' "$work/want.sha256")
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: consumer, namespace: ctfs-check}
spec:
  selector: {matchLabels: {app: consumer}}
  template:
    metadata: {labels: {app: consumer}}
    spec:
      nodeSelector: {ctfs.io/llama: ready}
      terminationGracePeriodSeconds: 1
      containers:
        - name: probe
          image: localhost/ctfs:latest
          imagePullPolicy: Never
          command: [/bin/sh, -c]
          args:
            - |
              last=none
              while :; do
                if sha256sum --quiet -c /want/want.sha256 >/dev/null 2>&1; then s=ok; else s=fail; fi
                [ "\$s" = "\$last" ] || echo "\$(date +%s.%N) \$s"
                last=\$s
                sleep 0.2
              done
          volumeMounts:
            - {name: models, mountPath: /models, mountPropagation: HostToContainer, readOnly: true}
            - {name: want, mountPath: /want}
      volumes:
        - name: models
          hostPath: {path: /run/ctfs/models, type: DirectoryOrCreate}
        - name: want
          configMap: {name: want}
EOF
kc apply -f "$work/consumers.yaml" >/dev/null
log "applying deploy/kubernetes (overlay: $work/overlay)"
t_apply=$(now)
kc apply -k "$work/overlay" >/dev/null

ready_nodes() { kc get nodes -l ctfs.io/llama=ready --no-headers 2>/dev/null | wc -l; }
consumer_pod() { kc -n ctfs-check get pods -l app=consumer --field-selector "spec.nodeName=$1" \
                   -o jsonpath='{.items[0].metadata.name}' 2>/dev/null; }
ctfs_pod() { kc -n ctfs-system get pods -l app=ctfs-llama --field-selector "spec.nodeName=$1" \
               -o jsonpath='{.items[0].metadata.name}' 2>/dev/null; }
# first_after NODE T STATE: the time of the first probe line STATE logged after T by NODE's consumer.
first_after() {
  local pod; pod=$(consumer_pod "$1")
  [ -n "$pod" ] || return 1
  # awk reads to the end: an early exit would SIGPIPE kubectl and fail the pipeline (pipefail).
  kc -n ctfs-check logs "$pod" 2>/dev/null |
    awk -v t="$2" -v s="$3" '!found && $1 > t && $2 == s {print $1; found = 1}'
}
wait_all() {  # wait_all T STATE TIMEOUT_S: sets "at[node]" to each node's first STATE after T
  local deadline=$(( $(date +%s) + $3 )) i t
  declare -gA at=()
  while [ "$(date +%s)" -lt "$deadline" ]; do
    for i in $(seq "$nodes"); do
      [ -n "${at[node$i]:-}" ] && continue
      t=$(first_after "node$i" "$1" "$2") && [ -n "$t" ] && at[node$i]=$t
    done
    [ "${#at[@]}" = "$nodes" ] && return 0
    sleep 0.5
  done
  return 1
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

if wait_all "$t_apply" ok 180; then
  for i in $(seq "$nodes"); do log "node$i: consumer reads every file correctly $(secs "$t_apply" "${at[node$i]}") s after apply"; done
else
  fail "not every node served correct bytes within 180 s (ready nodes: $(ready_nodes))"
  kc get pods -A -o wide
  for i in $(seq "$nodes"); do kc -n ctfs-system logs "$(ctfs_pod "node$i")" --tail 20; done
  exit 1
fi
[ "$(ready_nodes)" = "$nodes" ] && log "every trusted node is labelled ctfs.io/llama=ready" || fail "ready labels: $(ready_nodes) of $nodes"
kc -n ctfs-system get pods -o wide
# The untrusted node: the KMIP server refuses its certificate, so its mount never starts, it is
# never labelled, and no consumer is scheduled there.
if [ -n "$(kc get node "$untrusted" -L ctfs.io/llama --no-headers | awk '$NF == "ready"')" ]; then
  fail "$untrusted was labelled ready"
elif [ -n "$(consumer_pod "$untrusted")" ]; then
  fail "a consumer was scheduled on $untrusted"
elif [ "$(kc -n ctfs-system get pod "$(ctfs_pod "$untrusted")" -o jsonpath='{.status.containerStatuses[0].ready}')" = true ]; then
  fail "the ctfs pod on $untrusted is ready"
else
  why=$(podman exec "$prefix-$untrusted" sh -c 'cat /var/log/pods/ctfs-system_*/ctfs/*.log' 2>/dev/null \
        | grep -o 'ctfs: error: .*' | sed -n 1p | cut -c1-220)  # no early exit: SIGPIPE + pipefail
  log "$untrusted: no key (KMIP refused its certificate), not labelled, no consumer: ${why:-no log}"
fi

# Every file, byte-exact, from a shell in each consumer: and the policy in force.
for i in $(seq "$nodes"); do
  pod=$(consumer_pod "node$i")
  if kc -n ctfs-check exec "$pod" -- sha256sum -c /want/want.sha256 >"$work/logs/sums-node$i.txt" 2>&1; then
    log "node$i: sha256sum -c: $nfiles/$nfiles files OK"
  else
    fail "node$i: wrong bytes: $(cat "$work/logs/sums-node$i.txt")"
  fi
  if kc -n ctfs-check exec "$pod" -- cat "/models/llama/$shard" >/dev/null 2>"$work/logs/cat-node$i.txt"; then
    fail "node$i: the policy let /usr/bin/cat open the weights"
  else
    log "node$i: cat is refused by the policy: $(tail -n 1 "$work/logs/cat-node$i.txt")"
    log "node$i: its audit record: $(podman exec "$prefix-node$i" grep "\"exe\":\"/usr/bin/cat\"" /var/log/ctfs/llama.audit.jsonl 2>&1 | tail -n 1)"
  fi
done

# Recovery after the ctfs process of node1's pod is killed with SIGKILL (the container restarts;
# its entrypoint detaches the dead mount and mounts again), then after node2's pod is deleted
# (preStop revokes; the DaemonSet makes a new pod).
# cycle NODE T0 TIMEOUT_S: the first probe failure on NODE after T0 (c_fail), then the first
# success after that (c_ok); returns 1 if either is missing by the deadline.
cycle() {
  local deadline=$(( $(date +%s) + $3 ))
  c_fail="" c_ok=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ -n "$c_fail" ] || c_fail=$(first_after "$1" "$2" fail || true)
    [ -z "$c_fail" ] || c_ok=$(first_after "$1" "$c_fail" ok || true)
    [ -n "$c_ok" ] && return 0
    sleep 0.3
  done
  return 1
}
t_kill=$(now)
podman exec "$prefix-node1" pkill -KILL -x ctfs || fail "no ctfs process on node1"
if cycle node1 "$t_kill" 120; then
  log "node1: kill -9 of ctfs: consumer failing after $(secs "$t_kill" "$c_fail") s, correct bytes again after $(secs "$t_kill" "$c_ok") s"
  recover_kill=$(secs "$t_kill" "$c_ok")
else
  fail "node1 did not recover within 120 s of kill -9 (fail at ${c_fail:-never})"
fi
victim=node$nodes
t_del=$(now)
kc -n ctfs-system delete pod "$(ctfs_pod "$victim")" --wait=false >/dev/null
if cycle "$victim" "$t_del" 120; then
  log "$victim: pod deleted: consumer failing after $(secs "$t_del" "$c_fail") s (preStop revoke), correct bytes again after $(secs "$t_del" "$c_ok") s (new pod)"
  recover_delete=$(secs "$t_del" "$c_ok")
else
  fail "$victim: no revoke-and-recover cycle within 120 s of deleting its ctfs pod (fail at ${c_fail:-never})"
fi

# Fleet revocation: the key is revoked at the KMIP server; every node's next lease refresh
# fails (the helper refuses a key that is not Active) and its mount denies.
sleep 2
t_rev=$(now)
kmip_admin revoke llama-enc >/dev/null || fail "could not revoke the key at the KMIP server"
if wait_all "$t_rev" fail $((lease_s + grace_s + 30)); then
  worst=0
  for i in $(seq "$nodes"); do
    d=$(secs "$t_rev" "${at[node$i]}")
    log "node$i: denied $d s after the key was revoked at the KMIP server"
    worst=$(awk -v a="$worst" -v b="$d" 'BEGIN {print (b > a) ? b : a}')
  done
  log "fleet revocation: every node denies within $worst s (lease ${lease_s} s, grace ${grace_s} s)"
  limit=$((lease_s + grace_s))
  awk -v w="$worst" -v l="$limit" 'BEGIN {exit !(w <= l)}' || fail "denial took longer than lease + grace ($limit s)"
else
  fail "not every node denied within $((lease_s + grace_s + 30)) s of the revocation"
fi
sleep 1
for i in $(seq "$nodes"); do
  pod=$(consumer_pod "node$i")
  # Encrypted files are denied; plain files beside them (config.json) are not secret and stay.
  if kc -n ctfs-check exec "$pod" -- sha256sum "/models/llama/$shard" >/dev/null 2>&1; then
    fail "node$i still reads $shard after the revocation"
  else
    log "node$i: $shard is denied after the revocation"
  fi
done
# Each entrypoint sees `ctfs status --ready` fail and removes its node's label (consumers no
# longer schedule there); the readiness probe turns the ctfs pods unready.
for _ in $(seq 150); do [ "$(ready_nodes)" = 0 ] && break; sleep 0.2; done
if [ "$(ready_nodes)" = 0 ]; then
  unlabel=$(secs "$t_rev" "$(now)")
  log "every node's ctfs.io/llama label removed within $unlabel s of the revocation"
else
  fail "nodes still labelled ready 30 s after the revocation: $(ready_nodes)"
fi
pods_ready() { kc -n ctfs-system get pods -o jsonpath='{range .items[*]}{.status.containerStatuses[0].ready}{"\n"}{end}' | grep -c true; }
for _ in $(seq 150); do [ "$(pods_ready)" = 0 ] && break; sleep 0.2; done
if [ "$(pods_ready)" = 0 ]; then
  log "every ctfs pod unready within $(secs "$t_rev" "$(now)") s of the revocation (probe every 5 s, 2 failures)"
else
  fail "ctfs pods still ready 30 s after the revocation: $(pods_ready)"
fi
for i in $(seq "$nodes"); do
  log "node$i: audit: $(podman exec "$prefix-node$i" grep -m1 key_lease /var/log/ctfs/llama.audit.jsonl 2>&1 | cut -c1-400)"
done

t_end=$(now)
log "summary: nodes=$nodes cluster_up=$(secs "$t_begin" "$t_cluster") s" \
  "recover_kill9=${recover_kill:-none} s recover_pod_delete=${recover_delete:-none} s" \
  "fleet_deny_max=${worst:-none} s unlabelled=${unlabel:-none} s total=$(secs "$t_begin" "$t_end") s"
if [ "$failures" -gt 0 ]; then log "$failures check(s) FAILED"; exit 1; fi
log "all checks passed"
