# SPDX-License-Identifier: Apache-2.0
"""The access policy on real mounts (README "Policies"): for each subject attribute an allowed and
a denied reader; windows that end (also under a live mapping); permissive mode; SIGHUP reloads;
the audit log. Readers are copies of cat(1) run through setpriv(1), so the executable path, its
hash, the uid/gid/groups and the cgroup are the test's to choose."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from . import mount_util as M

FILE = "weights.safetensors"


def cgroup2_root():
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] == "cgroup2":
            return Path(left.split()[4])
    return None


class Env:
    def __init__(self, mounter, small_model, keys, tmp_path):
        # tmp_path's parents are private to root: readers of other uids need a public path.
        os.chmod(tmp_path, 0o755)
        self.mounter, self.model, self.keys, self.dir = mounter, small_model, keys, tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.bin.chmod(0o755)
        self.reader = self.bin / "ctfs-reader"
        self.other_reader = self.bin / "other-reader"
        for p in (self.reader, self.other_reader):
            shutil.copy2(shutil.which("cat"), p)
            p.chmod(0o755)
        # Readable by everyone through file modes: only the policy decides.
        self.src = M.copy_tree(small_model.enc, tmp_path / "src")
        for d, _, files in os.walk(self.src):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        self.audit = tmp_path / "audit.jsonl"
        self.cfg = tmp_path / "ctfs.yaml"
        self.mount = None

    def write_config(self, policy, mode="enforce"):
        body = textwrap.dedent(f"""\
            keys: [{{file: {self.keys.reader}}}]
            allow_other: true
            audit: {{file: {self.audit}}}
            """)
        if policy is not None:
            body += f"policy:\n  mode: {mode}\n  rules:\n" + textwrap.indent(policy, "    ")
        self.cfg.write_text(body)

    def start(self, policy, mode="enforce"):
        self.write_config(policy, mode)
        self.mount = self.mounter.mount(self.src, args=("--config", self.cfg))
        return self.mount

    def read(self, rel=FILE, exe=None, uid=0, gid=0, groups=(), cgroup=None, timeout=30):
        """Reads mnt/rel with `exe` (a cat copy) as uid/gid/groups, optionally inside `cgroup`;
        returns (ok, bytes or error text)."""
        exe = exe or self.reader
        argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
        argv += [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
        argv += [str(exe), str(self.mount.mnt / rel)]

        def enter_cgroup():
            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))
        p = subprocess.run(argv, capture_output=True, timeout=timeout, preexec_fn=enter_cgroup)
        if p.returncode == 0:
            return True, p.stdout
        return False, p.stderr.decode(errors="replace")

    def expect_allowed(self, **kw):
        ok, out = self.read(**kw)
        assert ok, f"reader {kw} was denied: {out}\n{self.mount.log_tail()}"
        assert out == self.model.plain_bytes(kw.get("rel", FILE)), f"reader {kw}: wrong bytes"

    def expect_denied(self, **kw):
        ok, out = self.read(**kw)
        assert not ok, f"reader {kw} was allowed"
        assert "Permission denied" in out, f"reader {kw}: want EACCES, got: {out}"

    def audit_lines(self):
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines()]

    def audited(self, **fields):
        return [e for e in self.audit_lines() if all(e.get(k) == v for k, v in fields.items())]


@pytest.fixture
def env(ctfs, small_model, keys):
    from .conftest import Mounter
    pub = Path(tempfile.mkdtemp(prefix="ctfs-policy-", dir="/tmp"))
    mounter = Mounter(ctfs, keys, pub)
    try:
        yield Env(mounter, small_model, keys, pub)
    finally:
        notes = mounter.cleanup()
        leftover = M.mounts_at(mounter.dir / "mnt1")
        shutil.rmtree(pub, ignore_errors=True)
        assert not notes and not leftover, (notes, leftover)


def rule(name, decision="allow", subject=None, obj=None, **extra):
    out = f"- name: {name}\n  decision: {decision}\n"
    if subject:
        out += f"  subject: {json.dumps(subject)}\n"
    if obj:
        out += f"  object: {json.dumps(obj)}\n"
    for k, v in extra.items():
        out += f"  {k}: {v}\n"
    return out


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def test_uid_rule_allows_that_uid_and_denies_others_including_root(env):
    env.start(rule("svc", subject={"uid": [1234]}))
    env.expect_allowed(uid=1234, gid=1234)
    env.expect_denied(uid=1235, gid=1234)
    env.expect_denied(uid=0, gid=0)  # the policy applies to root too
    allow = env.audited(event="open", path=FILE, decision="allow", rule="svc", uid=1234)
    deny = env.audited(event="open", path=FILE, decision="deny", uid=1235)
    assert allow and deny, env.audit_lines()
    assert deny[0]["reason"] and deny[0]["mode"] == "enforce" and deny[0]["exe"] == str(env.reader)
    assert oct(env.audit.stat().st_mode & 0o777) == "0o600"


def test_group_rule_matches_supplementary_groups(env):
    env.start(rule("team", subject={"gid": [4321]}))
    env.expect_allowed(uid=2000, gid=2000, groups=[4321])
    env.expect_allowed(uid=2000, gid=4321)
    env.expect_denied(uid=2000, gid=2000, groups=[4322])


def test_exe_path_rule(env):
    env.start(rule("reader-only", subject={"exe": str(env.reader)}))
    env.expect_allowed(exe=env.reader)
    env.expect_denied(exe=env.other_reader)  # same bytes, other path


def test_exe_hash_rule_denies_the_same_path_with_other_bytes(env):
    digest = hashlib.sha256(env.reader.read_bytes()).hexdigest()
    env.start(rule("pinned", subject={"exe": str(env.reader), "exe_sha256": digest}))
    env.expect_allowed(exe=env.reader)
    # Same path, different image (a trailing byte still runs): denied.
    tmp = env.bin / "swap"
    tmp.write_bytes(env.reader.read_bytes() + b"\0")
    tmp.chmod(0o755)
    os.replace(tmp, env.reader)
    env.expect_denied(exe=env.reader)


@pytest.fixture
def test_cgroup():
    root = cgroup2_root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    d = root / f"ctfs-test-{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir()
    try:
        yield d
    finally:
        for _ in range(50):
            try:
                d.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def test_cgroup_rule(env, test_cgroup):
    rel = "/" + str(test_cgroup.relative_to(cgroup2_root()))
    env.start(rule("in-cgroup", subject={"cgroup": rel}))
    env.expect_allowed(cgroup=test_cgroup)
    env.expect_denied()
    line = env.audited(event="open", decision="allow", rule="in-cgroup")
    assert line and line[0]["cgroup"] == rel, env.audit_lines()


def test_machine_id_rule(env):
    mine = Path("/etc/machine-id").read_text().strip()
    wrong = "0" * 32 if mine != "0" * 32 else "1" * 32
    env.start(rule("other-host", subject={"machine_id": wrong}) +
              rule("this-host", subject={"machine_id": mine}, obj={"path": "config.json"}))
    env.expect_denied()  # only the wrong host may read the weights
    env.expect_allowed(rel="config.json")


def test_expired_and_future_windows_deny(env):
    now = time.time()
    env.start(rule("expired", not_after=iso(now - 60)) +
              rule("future", obj={"path": "config.json"}, not_before=iso(now + 3600)))
    env.expect_denied()
    env.expect_denied(rel="config.json")
    lines = env.audited(event="open", decision="deny", path=FILE)
    assert lines and "expired" in lines[0]["reason"], env.audit_lines()


def test_tensor_glob_selects_files_holding_a_matching_tensor(env):
    env.start(rule("weights", obj={"tensor": "w"}))
    env.expect_allowed()
    env.expect_denied(rel="config.json")  # holds no tensor


def test_permissive_mode_allows_and_audits_would_deny(env):
    env.start(rule("nobody", subject={"uid": [99999]}), mode="permissive")
    env.expect_allowed()
    lines = env.audited(event="open", decision="would-deny", path=FILE)
    assert lines and lines[0]["mode"] == "permissive", env.audit_lines()


MAPPER = r"""
import mmap, os, signal, sys, time
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
first = bytes(m[:4096])
print("mapped", flush=True)
sys.stdin.readline()              # the window has ended
try:
    data = bytes(m[:])              # every page again: dropped pages fault into a refused read
    print("read", len(data), flush=True)
except Exception as e:
    print("error", e, flush=True)
"""


def test_window_end_takes_away_a_live_mapping(env):
    end = time.time() + 6
    env.start(rule("until-soon", not_after=iso(end)))
    env.expect_allowed()
    p = subprocess.Popen([sys.executable, "-c", MAPPER, str(env.mount.mnt / FILE)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "mapped"
        assert M.wait_until(lambda: env.audited(event="window"), end - time.time() + 10), \
            f"no window event audited\n{env.audit_lines()}\n{env.mount.log_tail()}"
        env.expect_denied()  # new opens
        time.sleep(1)  # the audit line is written before the page cache is dropped
        p.stdin.write("\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGBUS, f"mapping still readable: rc {p.returncode} {out!r}"
    window = env.audited(event="window", decision="deny")
    assert window and window[0]["path"] == FILE, env.audit_lines()


def test_sighup_reload_applies_a_stricter_policy_and_keeps_the_old_on_a_broken_file(env):
    m = env.start(rule("root", subject={"uid": [0]}))
    env.expect_allowed()
    held = open(m.mnt / FILE, "rb")  # an open the reload will take away
    try:
        held.read(10)
        # A broken file: rejected, the old policy stays.
        env.cfg.write_text(env.cfg.read_text() + "    - name: [oops\n")
        os.kill(m.pid, signal.SIGHUP)
        assert M.wait_until(lambda: env.audited(event="reload"), 10), env.audit_lines()
        assert "rejected" in env.audited(event="reload")[0]["reason"]
        env.expect_allowed()
        assert M.alive(m.pid) and M.mounts_at(m.mnt)
        # A stricter policy: takes effect at once, also for the open descriptor.
        env.write_config(rule("someone-else", subject={"uid": [4242]}))
        os.kill(m.pid, signal.SIGHUP)
        assert M.wait_until(lambda: len(env.audited(event="reload")) >= 2, 10), env.audit_lines()
        env.expect_denied()

        def held_read_refused():
            held.seek(1 << 12)
            try:
                held.read(1 << 16)
                return False
            except PermissionError:
                return True
        assert M.wait_until(held_read_refused, 5), "an open from before the reload still reads"
    finally:
        held.close()


def test_no_policy_section_behaves_as_without_config_and_audits(env):
    env.start(None)
    env.expect_allowed()
    env.expect_allowed(uid=3000, gid=3000)
    assert env.audited(event="open", decision="allow", uid=3000), env.audit_lines()


def test_audit_coalesces_repeated_opens(env):
    env.start(rule("root", subject={"uid": [0]}))
    for _ in range(200):
        with open(env.mount.mnt / FILE, "rb") as f:
            f.read(1)
    # One line for the first open, one count line for the rest (after the 1 s window).
    assert M.wait_until(lambda: sum(e.get("count", 1) for e in
                                    env.audited(event="open", path=FILE, uid=0)) >= 200, 10)
    lines = env.audited(event="open", path=FILE, uid=0)
    assert sum(e.get("count", 1) for e in lines) == 200
    assert len(lines) <= 10, lines


def test_hide_rule_hides_denied_files_from_listings_and_lookups(env):
    env.start(rule("root-sees-all", subject={"uid": [0]}) +
              rule("metadata", obj={"path": "*.json"}) +
              rule("hide-the-rest", decision="deny") + "  hide: true\n")

    def as_uid(uid, *argv):
        return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                               *map(str, argv)], capture_output=True, text=True, timeout=30)
    mnt = env.mount.mnt
    listing = as_uid(1234, "ls", "-1", mnt)
    assert listing.returncode == 0, listing.stderr
    assert sorted(listing.stdout.split()) == ["config.json", "sub"], listing.stdout
    st = as_uid(1234, "stat", mnt / FILE)
    assert st.returncode != 0 and "No such file" in st.stderr, (st.stdout, st.stderr)
    # Root's rule comes first: it sees and reads everything, and its lookup is not cached for
    # the others.
    assert sorted(os.listdir(mnt)) == sorted(["config.json", FILE, "sub"])
    env.expect_allowed()
    st = as_uid(1234, "stat", mnt / FILE)
    assert st.returncode != 0 and "No such file" in st.stderr, (st.stdout, st.stderr)
    env.expect_allowed(uid=1234, gid=1234, rel="config.json")
