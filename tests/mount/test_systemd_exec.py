# SPDX-License-Identifier: Apache-2.0
"""The systemd unit's commands, run as systemd would run them (CI has no systemd as PID 1):
ExecStartPre, ExecStart (foreground, config file + credential key), ExecReload (SIGHUP: the
policy is re-read, the mount stays), then the stop signal (SIGTERM: revoked and unmounted).
Type=notify: a $NOTIFY_SOCKET listener sees READY=1 only once the mount answers reads,
RELOADING=1 then READY=1 around the reload, and STOPPING=1 on SIGTERM. The same life under
strace: every system call and socket family used passes the unit's SystemCallFilter=,
ProtectClock= and RestrictAddressFamilies=."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import mount_util as M

REPO = Path(__file__).resolve().parents[2]


def unit_commands(ctfs_bin, instance, etc, creds):
    text = (REPO / "systemd" / "ctfs@.service").read_text()
    cmds = {}
    for line in text.splitlines():
        m = re.match(r"^(ExecStartPre|ExecStart|ExecReload)=(-?)(.*)$", line)
        if not m:
            continue
        cmd = (m.group(3).replace("/usr/local/bin/ctfs", str(ctfs_bin))
               .replace("/etc/ctfs/", f"{etc}/").replace("%i", instance)
               .replace("${CREDENTIALS_DIRECTORY}", str(creds)))
        cmds.setdefault(m.group(1), []).append((m.group(2) == "-", cmd))
    assert "KillSignal=SIGTERM" in text
    assert "Type=notify" in text
    return cmds


def test_unit_commands_mount_reload_and_revoke(ctfs, keys, small_model, tmp_path):
    instance = f"ctfs-test-{os.getpid()}"
    mnt = Path("/run/ctfs") / instance
    etc, creds = tmp_path / "etc", tmp_path / "creds"
    etc.mkdir()
    creds.mkdir()
    shutil.copy(keys.reader, creds / "ctfs.jwk")
    audit = tmp_path / "audit.jsonl"
    cfg = etc / f"{instance}.yaml"
    policy = "policy:\n  rules:\n    - {name: root, decision: allow, subject: {uid: 0}}\n"
    cfg.write_text(f"source: {small_model.enc}\nmountpoint: {mnt}\naudit: {{file: {audit}}}\n"
                   + policy)
    cmds = unit_commands(ctfs.bin, instance, etc, creds)
    daemon = None
    listener = M.NotifyListener(str(tmp_path / "notify.sock"))
    try:
        for ignore_failure, cmd in cmds["ExecStartPre"]:
            r = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=60)
            assert ignore_failure or r.returncode == 0, (cmd, r.stdout, r.stderr)
        (start,) = cmds["ExecStart"]
        daemon = subprocess.Popen(shlex.split(start[1]), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                  env=M.clean_env(listener.env()))
        # systemd starts the units ordered after this one at READY=1: reads must work by then.
        ready = listener.wait_for("READY", 30)
        assert ready is not None, (listener.messages, daemon.poll())
        assert (mnt / "weights.safetensors").read_bytes() == \
            small_model.plain_bytes("weights.safetensors")
        assert ready.get("MAINPID") == str(daemon.pid) and "serving" in ready["STATUS"], ready
        # ExecReload with a policy that denies root: the next open is refused, still mounted.
        cfg.write_text(cfg.read_text().replace("uid: 0", "uid: 4242"))
        (reload,) = cmds["ExecReload"]
        subprocess.run(shlex.split(reload[1].replace("$MAINPID", str(daemon.pid))), check=True)
        assert M.wait_until(lambda: '"event":"reload"' in audit.read_text(), 10), \
            audit.read_text()
        assert listener.wait_for("RELOADING", 10) is not None, listener.messages
        reloaded = listener.wait_for("READY", 10)
        assert reloaded is not None and "policy reloaded" in reloaded["STATUS"], \
            listener.messages
        try:
            (mnt / "weights.safetensors").read_bytes()
            raise AssertionError("the reloaded policy did not deny root")
        except PermissionError:
            pass
        assert M.mounts_at(mnt) and daemon.poll() is None
        # systemctl stop: SIGTERM revokes and unmounts.
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, out
        stopping = listener.wait_for("STOPPING", 5)
        assert stopping is not None and "revoking" in stopping["STATUS"], listener.messages
        assert not M.mounts_at(mnt)
        assert '"event":"revoke"' in audit.read_text()
    finally:
        listener.close()
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
        if M.mounts_at(mnt):
            M.force_unmount(mnt)
        time.sleep(0.1)
        try:
            mnt.rmdir()
        except OSError:
            pass
        assert not M.mounts_at(mnt)


def unit_setting(name):
    """The values of a `Name=` setting of the unit, split on whitespace."""
    text = (REPO / "systemd" / "ctfs@.service").read_text()
    values = []
    for line in text.splitlines():
        if line.startswith(name + "="):
            values += line.split("=", 1)[1].split()
    return values


def expand_syscall_groups(names):
    """The system calls that `names` (syscalls and @groups) allow, as systemd expands them."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if re.fullmatch(r"@[\w-]+", line):
            cur = groups.setdefault(line, [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.split()[0])
    allowed, todo, seen = set(), list(names), set()
    while todo:
        n = todo.pop()
        if n.startswith("@"):
            assert n in groups, f"unknown syscall group {n}"
            if n not in seen:
                seen.add(n)
                todo += groups[n]
        else:
            allowed.add(n)
    return allowed


def test_daemon_syscalls_and_sockets_pass_the_unit_sandbox(ctfs, keys, small_model, tmp_path):
    """CI has no systemd to enforce SystemCallFilter=, RestrictAddressFamilies= and
    ProtectClock=: run the unit's commands under strace, with the unit's capability bounding
    set and no-new-privileges applied (setpriv), through a whole service life (start, reads by
    pread and mmap, `ctfs status`, metrics file, reload, stop), and check that it works and
    that every system call and socket family used is one the unit allows, so the sandbox
    cannot kill or cripple the real service."""
    if shutil.which("strace") is None or shutil.which("systemd-analyze") is None:
        import pytest
        pytest.fail("strace and systemd-analyze are needed (scripts/install-deps.sh)")
    instance = f"ctfs-sys-{os.getpid()}"
    mnt = Path("/run/ctfs") / instance
    etc, creds = tmp_path / "etc", tmp_path / "creds"
    etc.mkdir()
    creds.mkdir()
    shutil.copy(keys.reader, creds / "ctfs.jwk")
    audit, prom = tmp_path / "audit.jsonl", tmp_path / "ctfs.prom"
    (etc / f"{instance}.yaml").write_text(
        f"source: {small_model.enc}\nmountpoint: {mnt}\naudit: {{file: {audit}}}\n"
        f"metrics: {{file: {prom}, interval_s: 1}}\n"
        "policy:\n  rules:\n    - {name: root, decision: allow, subject: {uid: 0}}\n")
    cmds = unit_commands(ctfs.bin, instance, etc, creds)
    traces = tmp_path / "traces"
    traces.mkdir()
    # The unit's capability bounding set and NoNewPrivileges=, as systemd would apply them.
    caps = [c.lower().replace("cap_", "+", 1) for c in unit_setting("CapabilityBoundingSet")]
    assert caps and unit_setting("NoNewPrivileges") == ["yes"]
    sandbox = ["setpriv", "--no-new-privs", "--bounding-set", ",".join(["-all"] + caps)]
    strace = sandbox + ["strace", "-f", "-qq", "-e", "trace=all", "-e", "signal=none"]
    daemon = None
    try:
        for i, (ignore_failure, cmd) in enumerate(cmds["ExecStartPre"]):
            r = subprocess.run(strace + ["-o", str(traces / f"pre{i}")] + shlex.split(cmd),
                               capture_output=True, text=True, timeout=60)
            assert ignore_failure or r.returncode == 0, (cmd, r.stdout, r.stderr)
        (start,) = cmds["ExecStart"]
        daemon = subprocess.Popen(strace + ["-o", str(traces / "daemon")] + shlex.split(start[1]),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True, env=M.clean_env())
        M.wait_until(lambda: M.mounts_at(mnt) or daemon.poll() is not None, 30)
        if not M.mounts_at(mnt):
            out = daemon.communicate(timeout=10)[0] if daemon.poll() is not None else ""
            raise AssertionError(f"not mounted under the unit's sandbox: {out}")
        want = small_model.plain_bytes("weights.safetensors")
        assert (mnt / "weights.safetensors").read_bytes() == want
        probe = ("import mmap,sys; f=open(sys.argv[1],'rb'); "
                 "m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); sys.stdout.buffer.write(m[:])")
        got = subprocess.run([sys.executable, "-c", probe, str(mnt / "weights.safetensors")],
                             capture_output=True, timeout=60).stdout
        assert got == want
        r = ctfs.run("status", "--json", mnt, timeout=30)
        assert r.rc == 0, r.describe()
        assert M.wait_until(lambda: prom.exists(), 10)
        time.sleep(1.5)  # at least one rewrite of the metrics file by its thread
        daemon_pid = M.mounts_at(mnt)[0].pid
        os.kill(daemon_pid, signal.SIGHUP)
        assert M.wait_until(lambda: '"event":"reload"' in audit.read_text(), 10)
        os.kill(daemon_pid, signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, out
        assert not M.mounts_at(mnt)
    finally:
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
        if M.mounts_at(mnt):
            M.force_unmount(mnt)
        time.sleep(0.1)
        try:
            mnt.rmdir()
        except OSError:
            pass
        assert not M.mounts_at(mnt)
    used, families = set(), set()
    for t in traces.iterdir():
        for line in t.read_text(errors="replace").splitlines():
            m = re.match(r"^\d+ +(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
            if m and m.group(1) not in ("exited", "killed", "resumed"):
                used.add(m.group(1))
            f = re.search(r"\bsocket\((AF_[A-Z0-9]+)", line)
            if f:
                families.add(f.group(1))
    # strace's own startup (before the traced program's execve) is not the service's.
    assert "mount" in used and "pread64" in used and "execve" in used, sorted(used)
    allowed = expand_syscall_groups(unit_setting("SystemCallFilter"))
    assert unit_setting("ProtectClock") == ["yes"]
    clock = expand_syscall_groups(["@clock"])
    assert not used - allowed, f"not allowed by SystemCallFilter=: {sorted(used - allowed)}"
    assert not used & clock, f"denied by ProtectClock=: {sorted(used & clock)}"
    assert families <= set(unit_setting("RestrictAddressFamilies")), families
