# SPDX-License-Identifier: Apache-2.0
"""The manifests of deploy/kubernetes agree with each other and with the mount config they carry:
the DaemonSet mounts what the ConfigMap's config names, probes and revokes that mountpoint,
shares it with Bidirectional propagation, and sees the callers its access policy decides on;
the example consumer reads it with HostToContainer on nodes the DaemonSet labels.
scripts/k8s_check.sh applies them to a real cluster; this runs in CI without one."""
from pathlib import Path, PurePosixPath

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def docs(name):
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def one(name, kind):
    (doc,) = [d for d in docs(name) if d["kind"] == kind]
    return doc


def mount_config():
    return yaml.safe_load(one("configmap.yaml", "ConfigMap")["data"]["ctfs.yaml"])


def host_path_of(pod_spec, container, path):
    """The host path behind `path` in `container` (a hostPath volume mounted at or above it)."""
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    for m in container["volumeMounts"]:
        mnt = PurePosixPath(m["mountPath"])
        p = PurePosixPath(path)
        if p == mnt or mnt in p.parents:
            hp = volumes[m["name"]].get("hostPath")
            assert hp, f"{path} is on volume {m['name']}, not a hostPath"
            return PurePosixPath(hp["path"]) / p.relative_to(mnt), m
    raise AssertionError(f"{path} is on no volume of {container['name']}")


def test_kustomization_lists_every_manifest_but_the_example():
    k = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml", "vllm-example.yaml"}
    assert set(k["resources"]) == files


def test_daemonset_serves_the_configured_mount():
    ds = one("daemonset.yaml", "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    cfg = mount_config()
    env = {e["name"]: e for e in c["env"]}
    cm_dir = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "config")
    assert env["CTFS_CONFIG"]["value"] == f"{cm_dir}/ctfs.yaml"
    mnt = cfg["mountpoint"]
    # The mount appears on the host (and in consumer pods) only through Bidirectional
    # propagation of a hostPath above it, which Kubernetes allows only in privileged containers.
    _, m = host_path_of(spec, c, mnt)
    assert m.get("mountPropagation") == "Bidirectional"
    assert c["securityContext"]["privileged"] is True
    # The encrypted models and the audit log are on hostPaths; the source read-only.
    _, src = host_path_of(spec, c, cfg["source"])
    assert src.get("readOnly") is True
    host_path_of(spec, c, cfg["audit"]["file"])
    # Ready only while `ctfs status` answers for that mountpoint; preStop revokes it.
    assert c["readinessProbe"]["exec"]["command"] == ["ctfs", "status", "--ready", mnt]
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre[:2] == ["ctfs", "revoke"] and pre[-1] == mnt
    timeout = int(pre[pre.index("--timeout") + 1])
    assert timeout < spec["terminationGracePeriodSeconds"]
    # Every helper file the key source names is in a read-only volume.
    for arg in cfg["keys"][0]["exec"]:
        if str(arg).startswith("/etc/ctfs/"):
            _, v = host_path_of(spec, c, arg)
            assert v.get("readOnly") is True, arg
    # The node label the entrypoint sets needs NODE_NAME and the RBAC to patch nodes.
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    role = one("rbac.yaml", "ClusterRole")
    assert {"get", "patch"} <= set(role["rules"][0]["verbs"]) and role["rules"][0]["resources"] == ["nodes"]
    binding = one("rbac.yaml", "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == spec["serviceAccountName"]


def test_daemonset_sees_the_callers_its_policy_decides_on():
    """A caller in another pid namespace reaches the daemon as pid 0, which a policy can only
    deny: with a policy, the daemon must share the node's pid namespace."""
    assert mount_config()["policy"]["rules"], "the shipped config has an access policy"
    spec = one("daemonset.yaml", "DaemonSet")["spec"]["template"]["spec"]
    assert spec.get("hostPID") is True


def test_example_consumer_reads_the_mount_where_it_is_ready():
    ds = one("daemonset.yaml", "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    label = next(e["value"] for e in c["env"] if e["name"] == "CTFS_NODE_LABEL")
    host_mnt, _ = host_path_of(spec, c, mount_config()["mountpoint"])
    dep = one("vllm-example.yaml", "Deployment")["spec"]["template"]["spec"]
    assert dep["nodeSelector"] == {label: "ready"}
    volumes = {v["name"]: v for v in dep["volumes"]}
    (vc,) = dep["containers"]
    (m,) = vc["volumeMounts"]
    assert m["mountPropagation"] == "HostToContainer" and m["readOnly"] is True
    parent = PurePosixPath(volumes[m["name"]]["hostPath"]["path"])
    assert parent in host_mnt.parents, "the consumer binds a parent of the mount, not the mount"
