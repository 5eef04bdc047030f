# SPDX-License-Identifier: Apache-2.0
"""Key leases on real mounts (README "Key leases"): an exec helper hands out the reader key
with "exp": now + 3; the mount refreshes it before it ends. When the helper starts failing,
the mount revokes access within exp + grace while a reader holds an mmap: opens and reads of
the encrypted file answer EACCES and the mapping's next touch gets SIGBUS; the audit log has
the loss; once the helper answers again, fresh opens read the plaintext. A withdrawn key
(helper exit status 77) is lost at once, whatever the grace period; with on_key_loss: unmount
the mount goes away and the daemon exits."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

from . import mount_util as M

REL = "weights.safetensors"
LIFE_S = 3

HELPER = r"""#!{python}
# A lease helper: the reader key with "exp" = now + LIFE; fails while DIR/fail exists, says
# "withdrawn" (exit 77) while DIR/withdraw exists.
import json, os, sys, time
d = sys.argv[1]
if os.path.exists(os.path.join(d, "withdraw")):
    print("vault: key withdrawn", file=sys.stderr)
    sys.exit(77)
if os.path.exists(os.path.join(d, "fail")):
    print("vault: unreachable", file=sys.stderr)
    sys.exit(1)
doc = json.load(open({reader!r}))
if "keys" not in doc:
    doc = {{"keys": [doc]}}
doc["exp"] = int(time.time()) + {life}
with open(os.path.join(d, "calls"), "a") as f:
    f.write("x")
print(json.dumps(doc))
"""

MAPPER = r"""
import mmap, sys
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
print("mapped", bytes(m[:]).hex()[:64], flush=True)
sys.stdin.readline()              # the key is lost
try:
    data = bytes(m[:])            # every page again: dropped pages fault into a refused read
    print("read", len(data), flush=True)
except Exception as e:
    print("error", e, flush=True)
"""


class Lease:
    def __init__(self, mounter, small_model, keys, tmp_path, grace_s, on_key_loss="deny",
                 env=None):
        self.mounter, self.model, self.dir = mounter, small_model, tmp_path
        self.helper = tmp_path / "lease-helper.py"
        self.helper.write_text(HELPER.format(python=sys.executable, reader=str(keys.reader),
                                             life=LIFE_S))
        os.chmod(self.helper, 0o700)
        self.audit = tmp_path / "audit.jsonl"
        self.cfg = tmp_path / "lease.yaml"
        self.cfg.write_text(
            f"keys: [{{exec: [{self.helper}, {tmp_path}], timeout_s: 5}}]\n"
            f"key_lease: {{grace_s: {grace_s}, on_key_loss: {on_key_loss}}}\n"
            f"audit: {{file: {self.audit}}}\n")
        # keys=[]: no --key, so the config's helper is the only key source.
        self.mount = mounter.mount(small_model.enc, keys=[], args=("--config", self.cfg),
                                   env=env)
        self.path = self.mount.mnt / REL

    def set_flag(self, name, on):
        p = self.dir / name
        if on:
            p.write_text("1")
        elif p.exists():
            p.unlink()

    def calls(self):
        p = self.dir / "calls"
        return len(p.read_text()) if p.exists() else 0

    def audited(self, **fields):
        if not self.audit.exists():
            return []
        lines = [json.loads(line) for line in self.audit.read_text().splitlines()]
        return [e for e in lines if all(e.get(k) == v for k, v in fields.items())]

    def want(self):
        return self.model.plain_bytes(REL)

    def open_denied(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except PermissionError:
            return True
        os.close(fd)
        return False

    def reads_again(self):
        try:
            return self.path.read_bytes() == self.want()
        except OSError:
            return False

    def status(self):
        r = self.mounter.ctfs.run("status", "--json", self.mount.mnt, timeout=30)
        assert r.rc == 0, r.describe()
        return json.loads(r.stdout)

    def ready(self):
        """`ctfs status --ready` (the Kubernetes readiness probe): (exit status, output)."""
        r = self.mounter.ctfs.run("status", "--ready", self.mount.mnt, timeout=30)
        return r.rc, r.stdout + r.stderr

    def diag(self):
        return f"audit: {self.audited()}\n{self.mount.log_tail()}"


def test_unrenewed_lease_revokes_a_live_mapping_and_renewal_restores(
        mounter, small_model, keys, tmp_path):
    lease = Lease(mounter, small_model, keys, tmp_path, grace_s=2)
    assert lease.path.read_bytes() == lease.want()
    assert (lease.mount.mnt / "config.json").read_bytes() == \
        (small_model.plain / "config.json").read_bytes()
    # Past the first exp + grace: refreshes keep the mount readable.
    time.sleep(LIFE_S + 2 + 2)
    assert lease.reads_again(), f"a renewed lease stopped reads\n{lease.diag()}"
    assert lease.calls() >= 2, f"the helper was not asked again ({lease.calls()} calls)"
    assert not lease.audited(event="key_lease_lost"), lease.diag()
    keys_status = lease.status()["keys"]
    assert len(keys_status) == 1 and keys_status[0]["state"] in ("valid", "refreshing"), \
        keys_status
    assert keys_status[0]["exp_unix"] >= int(time.time()), keys_status

    held = os.open(lease.path, os.O_RDONLY)
    p = subprocess.Popen([sys.executable, "-c", MAPPER, str(lease.path)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().split()
        assert line and line[0] == "mapped" and line[1] == lease.want()[:32].hex(), line
        assert os.pread(held, 4096, 0) == lease.want()[:4096]

        lease.set_flag("fail", True)
        t0 = time.time()
        # exp is at most LIFE_S away, then grace 2 s, plus a second of retry and slack.
        assert M.wait_until(lease.open_denied, LIFE_S + 2 + 8), \
            f"opens still allowed {time.time() - t0:.1f} s after the helper failed\n{lease.diag()}"
        lost = lease.audited(event="key_lease_lost")
        assert lost and "not renewed" in lost[0]["reason"] and "vault: unreachable" in \
            lost[0]["reason"], lease.diag()
        time.sleep(1)  # the tree is suspended before the page cache is dropped
        try:
            os.pread(held, 4096, 0)
            raise AssertionError("a read through an fd opened before the loss succeeded")
        except OSError as e:
            assert e.errno == errno.EACCES, e
        p.stdin.write("\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=30)
        assert p.returncode == -signal.SIGBUS, \
            f"mapping still readable: rc {p.returncode} {out!r}\n{lease.diag()}"
        # Plain files are not key-protected: still served.
        assert (lease.mount.mnt / "config.json").read_bytes() == \
            (small_model.plain / "config.json").read_bytes()
        assert lease.status()["keys"][0]["state"] == "lost"
        assert M.wait_until(lambda: [e for e in lease.audited(decision="deny")
                                     if "key lease lost" in e.get("reason", "")], 5), \
            f"the refused open was not audited\n{lease.diag()}"
    finally:
        os.close(held)
        if p.poll() is None:
            p.kill()
            p.wait()

    lease.set_flag("fail", False)
    assert M.wait_until(lease.reads_again, 10), f"renewing did not restore reads\n{lease.diag()}"
    assert lease.audited(event="key_lease_restored"), lease.diag()
    assert lease.status()["keys"][0]["state"] in ("valid", "refreshing")


def wait_for_status(listener, text, timeout):
    """Reads notify messages until a STATUS= contains `text`; returns it (None on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = listener.next(max(0.05, deadline - time.monotonic()))
        if msg is not None and text in msg.get("STATUS", ""):
            return msg["STATUS"]
    return None


def test_withdrawn_key_is_lost_at_once(mounter, small_model, keys, tmp_path):
    listener = M.NotifyListener(str(tmp_path / "notify.sock"))
    try:
        # A grace period far longer than the test: only the withdrawn answer can revoke in time.
        lease = Lease(mounter, small_model, keys, tmp_path, grace_s=600, env=listener.env())
        assert lease.path.read_bytes() == lease.want()
        rc, out = lease.ready()
        assert rc == 0 and out.startswith(f"{lease.mount.mnt}: ready, "), out
        lease.set_flag("withdraw", True)
        assert M.wait_until(lease.open_denied, LIFE_S + 5), \
            f"a withdrawn key still serves\n{lease.diag()}"
        lost = lease.audited(event="key_lease_lost")
        assert lost and "withdrawn" in lost[0]["reason"], lease.diag()
        assert wait_for_status(listener, "key lease lost", 10), listener.messages
        rc, out = lease.ready()
        assert rc == 1 and "not ready: key lease lost" in out, out
        lease.set_flag("withdraw", False)
        assert M.wait_until(lease.reads_again, 10), \
            f"the key came back but reads did not\n{lease.diag()}"
        assert lease.audited(event="key_lease_restored"), lease.diag()
        assert lease.ready()[0] == 0, lease.ready()
        assert wait_for_status(listener, "key lease restored", 10), listener.messages
    finally:
        listener.close()


def test_on_key_loss_unmount_ends_the_mount(mounter, small_model, keys, tmp_path):
    lease = Lease(mounter, small_model, keys, tmp_path, grace_s=1, on_key_loss="unmount")
    assert lease.path.read_bytes() == lease.want()
    pid = lease.mount.pid
    lease.set_flag("fail", True)
    assert M.wait_until(lambda: not M.mounts_at(lease.mount.mnt), LIFE_S + 1 + 10), \
        f"still mounted after the key was lost\n{lease.diag()}"
    assert M.wait_until(lambda: not M.alive(pid), 10), f"daemon {pid} still running"
    assert lease.audited(event="key_lease_lost"), lease.diag()
    revoke = lease.audited(event="revoke")
    assert revoke and "key lease lost" in revoke[0]["reason"], lease.diag()
