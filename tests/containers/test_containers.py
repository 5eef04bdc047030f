# SPDX-License-Identifier: Apache-2.0
"""ctfs in containers, with the key released per node by a real key broker (issue 19, CI part).

The image is built from Debian packages only (scripts/build-image.sh: mmdebstrap + podman, no
registry). Two brokers, each in its own container:
* Tang (an image of Debian's `tang` + `socat`, made here the same way): the reader key set is
  sealed to the server with Clevis; the producer's config asks deploy/helpers/ctfs-tang-helper,
  which can unseal it only while the server answers.
* KMIP (Debian's PyKMIP server, run from the ctfs image, which carries python3-pykmip for its
  helper), mutual TLS: the master key is registered as an AES key named by its kid;
  deploy/helpers/ctfs-kmip-helper fetches it with the node's client certificate and checks its
  state. A client certificate from another CA is refused.
Both helpers hand out the key as a lease (exp = now + 6 s), refreshed by the mount.

* A consumer container started first, binding the shared folder with rslave propagation, reads
  every file through the producer's mount (rshared) with the plaintext's sha256; the producer's
  readiness probe (`ctfs status` in the container) passes.
* `kill -9` of the producer (its ctfs is PID 1): the consumer gets ENOTCONN; restarting the
  container clears the stale mount (the entrypoint) and the consumer reads again.
* Withdrawing the key at the broker makes the consumer's opens fail with EACCES: Tang stops
  answering, so the lease refresh fails and the mount denies within the lease's remaining time
  plus the grace period; the KMIP key is revoked, so the helper says "withdrawn" (exit 77) at
  the next refresh and the mount denies at once. The broker back (Tang), reads are restored.

Needs root, /dev/fuse, podman, mmdebstrap, clevis and openssl (scripts/install-deps.sh); CI fails,
never skips, without them. Times seen are printed (pytest -s) and reported in the README."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CTFS = Path(os.environ.get("CTFS_BIN", REPO / "build" / "cmd" / "ctfs"))
CACHE = Path(os.environ.get("CTFS_IMAGE_CACHE", "/var/cache/ctfs-image"))
IMAGE = "localhost/ctfs-test:latest"
TANG_IMAGE = "localhost/ctfs-test-tang:bookworm"
TANG_PORT = 18000 + os.getpid() % 1000
KMIP_PORT = TANG_PORT + 1000
LEASE_S, GRACE_S = 6, 2


def run(*argv, check=True, timeout=300, env=None):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, errors="replace",
                       timeout=timeout,
                       env={**os.environ, **(env or {})})
    if check and r.returncode != 0:
        raise AssertionError(f"$ {' '.join(map(str, argv))}\nexit {r.returncode}\n"
                             f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """CONTAINERS_CONF for these machines (runc; ulimits the sandbox can set), the ctfs image
    and the Tang server image."""
    for tool in ("podman", "mmdebstrap", "clevis", "fusermount3", "openssl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (scripts/install-deps.sh)", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("container tests need root", pytrace=False)
    d = tmp_path_factory.mktemp("podman")
    conf = d / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", '
                    '"nproc=32768:32768"]\n[engine]\nruntime = "runc"\n')
    os.environ["CONTAINERS_CONF"] = str(conf)
    t0 = time.monotonic()
    r = run("bash", REPO / "scripts" / "build-image.sh", "--ctfs", CTFS, "--tag", IMAGE,
            "--cache", CACHE, timeout=900)
    size_mb = int(run("podman", "image", "inspect", IMAGE, "--format", "{{.Size}}").stdout) / 1e6
    print(f"\n[containers] {r.stdout.strip()} in {time.monotonic() - t0:.0f} s")
    assert size_mb < 250, f"image is {size_mb:.0f} MB (target < 250 MB)"
    if run("podman", "image", "exists", TANG_IMAGE, check=False).returncode != 0:
        tar = CACHE / "tang-server.tar"
        if not tar.exists():
            run("mmdebstrap", "--format=tar", "--variant=minbase", "--include=tang,socat",
                "bookworm", f"{tar}.tmp", timeout=900)
            os.rename(f"{tar}.tmp", tar)
        run("podman", "import", "-q", "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", tar,
            TANG_IMAGE)
    yield
    os.environ.pop("CONTAINERS_CONF", None)


class Scene:
    """A model, its keys sealed to a Tang server container, a shared folder with rshared
    propagation, and the producer and consumer containers; all removed at the end."""

    def __init__(self, root: Path):
        self.root = root
        self.prefix = f"ctfs-test-{os.getpid()}-"
        self.containers = []
        self.shared = root / "shared"
        for sub in ("plain", "conf", "shared", "tang"):
            (root / sub).mkdir()
        self.make_model()
        run("mount", "--bind", self.shared, self.shared)
        run("mount", "--make-rshared", self.shared)

    def make_model(self):
        import numpy as np
        from safetensors.numpy import save_file
        rng = np.random.default_rng(19)
        plain = self.root / "plain"
        save_file({"w": rng.standard_normal((512, 300)).astype(np.float32),
                   "b": np.arange(77, dtype=np.int64)}, str(plain / "model.safetensors"))
        (plain / "config.json").write_text('{"model_type": "tiny"}\n')
        run(CTFS, "keygen", "--out", self.root / "k.jwk", "--reader-out", self.root / "r.jwk")
        run(CTFS, "encrypt", plain, self.root / "enc", "--key", self.root / "k.jwk", "-q")
        self.want = {p.name: sha(p) for p in plain.iterdir()}

    def name(self, what):
        return self.prefix + what

    def start(self, what, *args):
        self.containers.append(self.name(what))
        run("podman", "run", "-d", "--name", self.name(what), *args)

    def start_tang(self):
        run("podman", "run", "--rm", "-v", f"{self.root / 'tang'}:/db", TANG_IMAGE,
            "/usr/libexec/tangd-keygen", "/db")
        self.start("broker", "--network", "host", "-v", f"{self.root / 'tang'}:/db:ro",
                   TANG_IMAGE, "socat", f"TCP-LISTEN:{TANG_PORT},bind=127.0.0.1,reuseaddr,fork",
                   "EXEC:/usr/libexec/tangd /db")

        def answers():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{TANG_PORT}/adv", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        assert self.wait(answers, 20, 0.2), \
            "the Tang server did not answer:\n" + self.logs("broker")
        # The reader key set, sealed to the Tang server: the only copy the producer gets.
        jwe = self.root / "conf" / "reader.jwe"
        with open(self.root / "r.jwk", "rb") as src, open(jwe, "wb") as out:
            subprocess.run(["clevis", "encrypt", "tang",
                            f'{{"url":"http://127.0.0.1:{TANG_PORT}"}}', "-y"],
                           stdin=src, stdout=out, check=True, timeout=60)
        self.write_config(f"[/usr/libexec/ctfs/ctfs-tang-helper, /etc/ctfs/reader.jwe, "
                          f"\"{LEASE_S}\"]")

    def make_certs(self):
        """A CA, the KMIP server's certificate, a client certificate per node and one for the
        administrator, and a client certificate from another CA."""
        d = self.root / "conf" / "certs"
        d.mkdir()

        def ca(name):
            run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", d / f"{name}.key", "-out", d / f"{name}.crt", "-subj", f"/CN={name}")

        def cert(name, issuer, usage):
            ext = d / f"{name}.ext"
            ext.write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
            run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d / f"{name}.key",
                "-out", d / f"{name}.csr", "-subj", f"/CN={name}")
            run("openssl", "x509", "-req", "-in", d / f"{name}.csr", "-CA", d / f"{issuer}.crt",
                "-CAkey", d / f"{issuer}.key", "-CAcreateserial", "-days", "2",
                "-out", d / f"{name}.crt", "-extfile", ext)

        ca("ca")
        ca("other-ca")
        cert("server", "ca", "serverAuth")
        for client in ("node1", "admin"):
            cert(client, "ca", "clientAuth")
        cert("rogue", "other-ca", "clientAuth")
        for f in d.glob("*.key"):
            f.chmod(0o600)
        return d

    def start_kmip(self):
        certs = self.make_certs()
        kmip = self.root / "kmip"
        kmip.mkdir()
        (kmip / "policies").mkdir()
        read = {op: "ALLOW_ALL" for op in ("LOCATE", "GET", "GET_ATTRIBUTES",
                                           "GET_ATTRIBUTE_LIST")}
        own = {op: "ALLOW_OWNER" for op in ("ACTIVATE", "REVOKE", "DESTROY")}
        (kmip / "policies" / "ctfs.json").write_text(
            json.dumps({"ctfs-nodes": {"preset": {"SYMMETRIC_KEY": {**read, **own}}}}))
        (kmip / "server.conf").write_text(
            f"[server]\nhostname=127.0.0.1\nport={KMIP_PORT}\n"
            "certificate_path=/certs/server.crt\nkey_path=/certs/server.key\n"
            "ca_path=/certs/ca.crt\nauth_suite=TLS1.2\nenable_tls_client_auth=True\n"
            "database_path=/kmip/kmip.db\npolicy_path=/kmip/policies\nlogging_level=INFO\n")
        self.start("broker", "--network", "host", "-v", f"{certs}:/certs:ro",
                   "-v", f"{kmip}:/kmip", "--entrypoint", "pykmip-server", IMAGE,
                   "-f", "/kmip/server.conf", "-l", "/kmip/server.log")
        self.kid = next(k["kid"] for k in json.loads((self.root / "r.jwk").read_text())["keys"]
                        if k["kty"] == "oct")
        def listening():
            try:
                socket.create_connection(("127.0.0.1", KMIP_PORT), timeout=1).close()
            except OSError:
                return False
            # Its policy files are loaded by a monitor about a second after the start.
            log = kmip / "server.log"
            return log.exists() and "Loading policy: ctfs-nodes" in log.read_text()
        assert self.wait(listening, 30, 0.2), "no KMIP server:\n" + self.logs("broker")
        r = self.kmip_admin("register", self.kid, "/keys/k.jwk")
        assert r.returncode == 0, f"could not register the key: {r.stderr[-2000:]}\n" + \
            self.logs("broker")
        verify = {"keys": [k for k in json.loads((self.root / "r.jwk").read_text())["keys"]
                           if k["kty"] == "okp"]}
        (self.root / "conf" / "verify.jwk").write_text(json.dumps(verify))
        self.write_config(
            f"[/usr/libexec/ctfs/ctfs-kmip-helper, --server, \"127.0.0.1:{KMIP_PORT}\", "
            "--cert, /etc/ctfs/certs/node1.crt, --key, /etc/ctfs/certs/node1.key, "
            f"--ca, /etc/ctfs/certs/ca.crt, --name, {self.kid}, "
            f"--verify-key, /etc/ctfs/verify.jwk, --lease, \"{LEASE_S}\"]")

    def kmip_admin(self, *args):
        return run("podman", "run", "--rm", "--network", "host",
                   "-v", f"{self.root / 'conf' / 'certs'}:/certs:ro",
                   "-v", f"{Path(__file__).parent}:/tests:ro", "-v", f"{self.root}:/keys:ro",
                   "--entrypoint", "python3", IMAGE, "/tests/kmip_admin.py", args[0],
                   str(KMIP_PORT), "/certs", *args[1:], check=False)

    def kmip_helper(self, client):
        """The KMIP helper run in the image with `client`'s certificate."""
        return run("podman", "run", "--rm", "--network", "host",
                   "-v", f"{self.root / 'conf'}:/etc/ctfs:ro", "--entrypoint",
                   "/usr/libexec/ctfs/ctfs-kmip-helper", IMAGE,
                   "--server", f"127.0.0.1:{KMIP_PORT}", "--cert", f"/etc/ctfs/certs/{client}.crt",
                   "--key", f"/etc/ctfs/certs/{client}.key", "--ca", "/etc/ctfs/certs/ca.crt",
                   "--name", self.kid, "--verify-key", "/etc/ctfs/verify.jwk", check=False)

    def write_config(self, helper_argv):
        (self.root / "conf" / "ctfs.yaml").write_text(
            "source: /srv/enc\nmountpoint: /mnt/models/llama\n"
            f"keys: [{{exec: {helper_argv}}}]\n"
            f"key_lease: {{grace_s: {GRACE_S}, on_key_loss: deny}}\nallow_other: true\n")

    def start_consumer(self):
        self.start("consumer", "--network", "none", "--mount",
                   f"type=bind,src={self.shared},dst=/models,bind-propagation=rslave,ro",
                   "--entrypoint", "sleep", IMAGE, "infinity")

    def start_producer(self):
        self.start("producer", "--network", "host", "--device", "/dev/fuse", "--cap-add",
                   "SYS_ADMIN", "--mount",
                   f"type=bind,src={self.shared},dst=/mnt/models,bind-propagation=rshared",
                   "-v", f"{self.root / 'enc'}:/srv/enc:ro",
                   "-v", f"{self.root / 'conf'}:/etc/ctfs:ro", IMAGE)

    def exec(self, what, *cmd, check=False):
        return run("podman", "exec", self.name(what), *cmd, check=check, timeout=60)

    def consumer_sums(self):
        r = self.exec("consumer", "sha256sum", *[f"/models/llama/{n}" for n in self.want])
        got = {Path(line.split()[1]).name: line.split()[0] for line in r.stdout.splitlines()}
        return got, r

    def wait(self, cond, timeout, step=0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(step)
        return cond()

    def ready(self):
        return self.exec("producer", "ctfs", "status", "/mnt/models/llama").returncode == 0

    def logs(self, what="producer"):
        r = run("podman", "logs", self.name(what), check=False)
        return (r.stdout + r.stderr)[-3000:]

    def close(self):
        for c in reversed(self.containers):
            run("podman", "rm", "-f", "-t", "0", c, check=False)
        for line in Path("/proc/self/mounts").read_text().splitlines():
            mnt = line.split()[1]
            if mnt.startswith(str(self.shared) + "/"):
                run("umount", "-l", mnt, check=False)
        run("umount", "-l", self.shared, check=False)


@pytest.fixture(params=["tang", "kmip"])
def scene(request, podman, tmp_path):
    s = Scene(tmp_path)
    s.broker = request.param
    try:
        s.start_tang() if s.broker == "tang" else s.start_kmip()
        s.start_consumer()  # first: it must see a mount made after it started
        t0 = time.monotonic()
        s.start_producer()
        assert s.wait(s.ready, 60), "the producer never became ready:\n" + s.logs()
        print(f"\n[containers] {s.broker}: producer ready {time.monotonic() - t0:.2f} s after "
              f"start")
        yield s
    finally:
        s.close()
    left = [line for line in Path("/proc/self/mounts").read_text().splitlines()
            if str(tmp_path) in line]
    assert not left, f"mounts left behind: {left}"


def test_consumer_reads_through_the_producer_and_survives_kill9(scene):
    got, r = scene.consumer_sums()
    assert got == scene.want, (got, scene.want, r.stderr, scene.logs())

    run("podman", "kill", "-s", "KILL", scene.name("producer"))
    r = scene.exec("consumer", "cat", "/models/llama/config.json")
    assert r.returncode != 0 and "Transport endpoint is not connected" in r.stderr, r
    t0 = time.monotonic()
    run("podman", "start", scene.name("producer"))
    assert scene.wait(lambda: scene.consumer_sums()[0] == scene.want, 60), \
        "the consumer did not read again after the producer's restart:\n" + scene.logs()
    print(f"\n[containers] consumer reads again {time.monotonic() - t0:.2f} s after the restart "
          f"of a kill -9ed producer")
    assert "detaching the mount a previous run left" in scene.logs()
    assert scene.ready()


def test_withdrawing_the_key_at_the_broker_denies(scene):
    assert scene.consumer_sums()[0] == scene.want
    if scene.broker == "kmip":
        # Mutual TLS: a certificate from another CA gets nothing; the node's own gets the key.
        r = scene.kmip_helper("rogue")
        assert r.returncode == 1 and "unknown ca" in r.stderr.lower() and not r.stdout, r
        r = scene.kmip_helper("node1")
        assert r.returncode == 0 and '"kty":"oct"' in r.stdout, r.stderr
        r = scene.kmip_admin("revoke", scene.kid)
        assert r.returncode == 0, r.stderr
    else:
        run("podman", "stop", "-t", "0", scene.name("broker"))
    t_withdrawn = time.monotonic()

    def denied():
        r = scene.exec("consumer", "head", "-c", "1", "/models/llama/model.safetensors")
        return r.returncode != 0 and "Permission denied" in r.stderr

    # The last refresh was at most LEASE_S ago, and the next one comes at 2/3 of the lease:
    # a withdrawn KMIP key is lost then; an unreachable Tang server, when the key expires plus
    # GRACE_S (plus the mount's 1 s refresh tick and the probe's own time).
    limit = LEASE_S + 2 if scene.broker == "kmip" else LEASE_S + GRACE_S + 3
    assert scene.wait(denied, limit), \
        "the consumer could still read after the broker withdrew the key:\n" + scene.logs()
    print(f"\n[containers] {scene.broker}: denied {time.monotonic() - t_withdrawn:.2f} s after "
          f"the key was withdrawn (lease {LEASE_S} s, grace {GRACE_S} s)")
    logs = scene.logs()
    assert "key lease" in logs and "lost" in logs, logs
    if scene.broker == "kmip":
        assert "withdrawn" in logs, logs
    # Files that are not encrypted (config, tokenizer) are still served.
    assert scene.exec("consumer", "cat", "/models/llama/config.json").returncode == 0

    if scene.broker == "tang":
        run("podman", "start", scene.name("broker"))
        assert scene.wait(lambda: scene.consumer_sums()[0] == scene.want, 30), \
            "reads were not restored after the broker came back:\n" + scene.logs()
        assert "restored" in scene.logs()


class FakeApiServer:
    """An HTTPS server on 127.0.0.1 that records the node PATCHes the entrypoint sends (the
    Kubernetes API as far as node labelling goes), with its CA and a service account token in
    the layout a pod gets."""

    def __init__(self, root: Path, scene: Scene):
        import http.server
        import ssl
        import threading
        certs = scene.make_certs()
        self.sa = root / "serviceaccount"
        self.sa.mkdir()
        shutil.copy(certs / "ca.crt", self.sa / "ca.crt")
        (self.sa / "token").write_text("test-token")
        self.patches = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PATCH(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.patches.append((self.path, self.headers.get("Authorization"),
                                      self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs / "server.crt", certs / "server.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


LABEL_HELPER = """import json, os, sys, time
# The key as a 3 s lease while /etc/ctfs/withdraw does not exist; "withdrawn" (77) after.
if os.path.exists("/etc/ctfs/withdraw"):
    sys.exit(77)
doc = json.load(open("/etc/ctfs/r.jwk"))
doc["exp"] = int(time.time()) + 3
print(json.dumps(doc))
"""


def test_entrypoint_labels_its_node_while_serving(podman, tmp_path):
    """CTFS_NODE_LABEL (deploy/kubernetes): the node label is cleared first (a predecessor may
    have left it), set to "ready" once reads work, with the pod's service account token,
    removed when reads stop working (the key withdrawn) while the container still runs, and
    never set again after the mount ends."""
    s = Scene(tmp_path)
    api = FakeApiServer(tmp_path, s)
    try:
        shutil.copy(s.root / "r.jwk", s.root / "conf" / "r.jwk")
        (s.root / "conf" / "r.jwk").chmod(0o600)
        (s.root / "conf" / "helper.py").write_text(LABEL_HELPER)
        s.write_config("[/usr/bin/python3, /etc/ctfs/helper.py]")
        s.start("producer", "--network", "host", "--device", "/dev/fuse", "--cap-add",
                "SYS_ADMIN", "--mount",
                f"type=bind,src={s.shared},dst=/mnt/models,bind-propagation=rshared",
                "-v", f"{s.root / 'enc'}:/srv/enc:ro", "-v", f"{s.root / 'conf'}:/etc/ctfs:ro",
                "-v", f"{api.sa}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
                "-e", "CTFS_NODE_LABEL=ctfs.io/llama", "-e", "NODE_NAME=node-7",
                "-e", "CTFS_LABEL_CHECK_S=0.5", "-e", "KUBERNETES_SERVICE_HOST=127.0.0.1",
                "-e", f"KUBERNETES_SERVICE_PORT={api.port}", IMAGE)
        ready = {"metadata": {"labels": {"ctfs.io/llama": "ready"}}}
        unset = {"metadata": {"labels": {"ctfs.io/llama": None}}}
        assert s.wait(lambda: any(p[3] == ready for p in api.patches), 30), \
            f"no label set: {api.patches}\n" + s.logs()
        assert sha(s.shared / "llama" / "model.safetensors") == s.want["model.safetensors"]
        path, auth, ctype, _ = api.patches[0]
        assert path == "/api/v1/nodes/node-7" and auth == "Bearer test-token", api.patches
        assert ctype == "application/merge-patch+json", ctype
        # Every PATCH is a change: cleared before the mount served, then ready.
        assert [p[3] for p in api.patches] == [unset, ready], api.patches
        # The key is withdrawn at the "broker": reads stop, the label goes, the pod stays.
        (s.root / "conf" / "withdraw").write_text("")
        assert s.wait(lambda: len(api.patches) >= 3, 15), \
            f"label kept after the key was withdrawn: {api.patches}\n" + s.logs()
        assert api.patches[2][3] == unset, api.patches
        assert s.exec("producer", "true").returncode == 0, "the container stopped"
        assert s.exec("producer", "ctfs", "status", "--ready",
                      "/mnt/models/llama").returncode == 1
        with pytest.raises(OSError):
            sha(s.shared / "llama" / "model.safetensors")
        run("podman", "stop", "-t", "20", s.name("producer"))
        code = run("podman", "inspect", s.name("producer"), "--format", "{{.State.ExitCode}}")
        assert code.stdout.strip() == "0", s.logs()
        assert not (s.shared / "llama").is_mount()
        assert len(api.patches) == 3, api.patches
    finally:
        api.close()
        s.close()
