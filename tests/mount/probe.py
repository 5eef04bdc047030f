# SPDX-License-Identifier: Apache-2.0
"""Child-process probes of the mount suite: `python probe.py CMD 'JSON args'`.

Memory-mapped reads of a FUSE file can kill the reader with SIGBUS, and a broken daemon can
block a reader forever; so such reads run here, in a child the test runs with a timeout, never
in the pytest process. Each command prints one JSON object as its last stdout line (`hold`
prints one per request). Everything is compared with the plaintext oracle read from disk.
"""
import errno
import json
import mmap
import os
import random
import signal
import sys
import threading
import time

PAGE = mmap.PAGESIZE
LENS = [0, 1, 2, 7, 13, 4095, 4096, 4097, 65520, 65521, 65522, 65536, 131072, 262147,
        1 << 20, (1 << 20) + 3, 3 << 20]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def close_quietly(fd):
    try:
        os.close(fd)   # FLUSH fails with ENOTCONN once the daemon is gone; the fd is closed anyway
    except OSError:
        pass


def read_plain(path):
    with open(path, "rb") as f:
        return f.read()


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(0, n, 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, min(i + 4096, n)):
                if a[j] != b[j]:
                    return j
    return n if len(a) != len(b) else None


def map_file(fd, mode):
    if mode == "shared":
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)                 # MAP_SHARED, PROT_READ
    return mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)


def fork_read(fn, expect=None, timeout=10.0):
    """Runs fn() (returns bytes) in a forked child; reports how the child ended:
    {"len", "head" (hex of the first 32 bytes), "matches_plain" (if `expect` given)}
    | {"errno": n} | {"exc": repr} | {"signal": n} | {"hung": true}"""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            d = fn()
            res = {"len": len(d), "head": d[:32].hex()}
            if expect is not None:
                res["matches_plain"] = d == expect
        except OSError as e:
            res = {"errno": e.errno}
        except BaseException as e:  # noqa: BLE001 - report anything
            res = {"exc": repr(e)}
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    status = None
    while True:
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid:
            status = st
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.005)
    raw = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        raw += b
    os.close(r)
    if status is None:
        return {"hung": True}
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return json.loads(raw) if raw else {"exc": "child wrote nothing"}


# ---------------------------------------------------------------------------------------------

def cmd_mmap_compare(a):
    """Maps each file (shared or private), touches random slices, then compares it whole."""
    rng = random.Random(a["seed"])
    files = []
    for m, p in a["pairs"]:
        want = read_plain(p)
        fd = os.open(m, os.O_RDONLY)
        try:
            mm = map_file(fd, a["mode"])
        finally:
            os.close(fd)  # the mapping outlives the descriptor, as in loaders
        res = {"file": m, "size": len(mm), "want_size": len(want), "bad_slices": []}
        n = len(want)
        for _ in range(a["slices"]):
            off = rng.randrange(n)
            ln = rng.choice(LENS)
            if mm[off:off + ln] != want[off:off + ln]:
                res["bad_slices"].append([off, ln])
        # pages in descending order (defeats sequential readahead), then the whole map
        for off in range(((n - 1) // PAGE) * PAGE, -1, -PAGE * 97):
            if mm[off:off + PAGE] != want[off:off + PAGE]:
                res["bad_slices"].append([off, PAGE])
        whole = mm[:]
        res["first_diff"] = first_diff(whole, want)
        res["bad_slices"] = res["bad_slices"][:10]
        mm.close()
        files.append(res)
    emit({"files": files})


def cmd_random_reads(a):
    """T threads doing random reads for `seconds`; counts mismatches and errors.

    mode "pread": os.pread on a per-thread or a shared descriptor (buffered or O_DIRECT), with
    posix_fadvise(DONTNEED) evictions so that reads keep reaching the daemon.
    mode "mixed": also mmap shared/private slices and sequential read().
    A short read is a mismatch, unless allow_short: then a correct prefix only counts in n_short."""
    pairs = a["pairs"]
    plains = [read_plain(p) for _, p in pairs]
    bounds = a.get("boundaries") or [[] for _ in pairs]
    shared_fds = [os.open(m, os.O_RDONLY) for m, _ in pairs]
    stop = time.monotonic() + a["seconds"]
    lock = threading.Lock()
    tot = {"ops": 0, "bytes": 0, "n_mismatch": 0, "n_errors": 0, "n_short": 0, "mismatches": [],
           "errors": [], "by_op": {}}

    def note(kind, item):
        with lock:
            tot["n_" + ("mismatch" if kind == "mismatches" else "errors")] += 1
            if len(tot[kind]) < 10:
                tot[kind].append(item)

    def worker(i):
        rng = random.Random(a["seed"] * 1000 + i)
        own, direct, maps = {}, {}, {}
        ops = 0
        nbytes = 0
        by_op = {}
        try:
            while time.monotonic() < stop:
                j = rng.randrange(len(pairs))
                want = plains[j]
                n = len(want)
                if bounds[j] and rng.random() < 0.4:
                    off = max(0, rng.choice(bounds[j]) + rng.choice([-1, 0, 1]))
                else:
                    off = rng.randrange(n + 64)
                ln = rng.choice(LENS) if rng.random() < 0.7 else rng.randrange(1, 2 << 20)
                if a["mode"] == "pread":
                    op = rng.choice(["pread_own", "pread_shared", "pread_own", "pread_shared",
                                     "direct", "evict"])
                else:
                    op = rng.choice(["pread_own", "pread_shared", "mmap_shared", "mmap_private",
                                     "direct", "read_seq", "evict"])
                by_op[op] = by_op.get(op, 0) + 1
                try:
                    if op == "evict":
                        os.posix_fadvise(shared_fds[j], 0, 0, os.POSIX_FADV_DONTNEED)
                        continue
                    if op == "pread_shared":
                        got = os.pread(shared_fds[j], ln, off)
                    elif op == "pread_own":
                        if j not in own:
                            own[j] = os.open(pairs[j][0], os.O_RDONLY)
                        got = os.pread(own[j], ln, off)
                    elif op == "direct":
                        if j not in direct:
                            direct[j] = os.open(pairs[j][0], os.O_RDONLY | os.O_DIRECT)
                        got = os.pread(direct[j], ln, off)
                    elif op == "read_seq":
                        with open(pairs[j][0], "rb", buffering=0) as f:
                            f.seek(off)
                            got = b""
                            while len(got) < ln:
                                b = f.read(min(ln - len(got), 1 << 20))
                                if not b:
                                    break
                                got += b
                    else:
                        key = (j, op)
                        if key not in maps:
                            fd = os.open(pairs[j][0], os.O_RDONLY)
                            try:
                                maps[key] = map_file(fd, "shared" if op == "mmap_shared"
                                                     else "private")
                            finally:
                                os.close(fd)
                        got = maps[key][off:off + ln]
                except OSError as e:
                    note("errors", {"file": pairs[j][0], "op": op, "off": off, "len": ln,
                                    "errno": e.errno})
                    continue
                ops += 1
                nbytes += len(got)
                exp = want[off:off + ln]
                if got != exp and a.get("allow_short") and len(got) < len(exp) and \
                        exp.startswith(got):
                    with lock:
                        tot["n_short"] += 1  # a partial read (cut by revocation): not wrong bytes
                elif got != exp:
                    note("mismatches", {"file": pairs[j][0], "op": op, "off": off, "len": ln,
                                        "got_len": len(got), "want_len": len(exp),
                                        "first_diff": first_diff(got, exp)})
        finally:
            for fd in list(own.values()) + list(direct.values()):
                close_quietly(fd)
            for mm in maps.values():
                mm.close()
            with lock:
                tot["ops"] += ops
                tot["bytes"] += nbytes
                for k, v in by_op.items():
                    tot["by_op"][k] = tot["by_op"].get(k, 0) + v

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for fd in shared_fds:
        close_quietly(fd)
    emit(tot)


def cmd_safe_open_compare(a):
    """The real safetensors loader (mmap inside) on the mount vs on the plain file."""
    import numpy as np
    from safetensors import safe_open

    problems, n = [], 0
    for m, p in a["pairs"]:
        with safe_open(m, framework="np") as f, safe_open(p, framework="np") as g:
            if sorted(f.keys()) != sorted(g.keys()):
                problems.append(f"{m}: keys {sorted(f.keys())} != {sorted(g.keys())}")
                continue
            if f.metadata() != g.metadata():
                problems.append(f"{m}: metadata {f.metadata()} != {g.metadata()}")
            for k in g.keys():
                x, y = np.asarray(f.get_tensor(k)), np.asarray(g.get_tensor(k))
                n += 1
                if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                    problems.append(f"{m}: tensor {k}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
                                    f" or bytes differ")
    emit({"tensors": n, "problems": problems})


def cmd_mmap_touch(a):
    """Maps a file and reads `len` bytes at each offset, each in a forked grandchild."""
    want = read_plain(a["plain"]) if a.get("plain") else None
    fd = os.open(a["path"], os.O_RDONLY)
    mm = map_file(fd, a.get("mode", "shared"))
    os.close(fd)
    out = []
    for off in a["offsets"]:
        res = fork_read(lambda off=off: mm[off:off + a["len"]],
                        None if want is None else want[off:off + a["len"]])
        res["off"] = off
        out.append(res)
    emit({"results": out})


def cmd_hold(a):
    """Holds a file open ("open") or mapped ("mmap_shared"/"mmap_private", descriptor kept too
    unless close_fd), having read its first `fraction`; then serves requests from stdin:
    touch OFF (read the mapping in a forked grandchild), pread OFF, check, quit."""
    want = read_plain(a["plain"])
    n = len(want)
    fd = os.open(a["path"], os.O_RDONLY)
    mm = None
    upto = (int(n * a.get("fraction", 0.5)) // PAGE) * PAGE
    ok = True
    if a["how"].startswith("mmap"):
        mm = map_file(fd, "shared" if a["how"] == "mmap_shared" else "private")
        for off in range(0, upto, PAGE):
            if mm[off:off + PAGE] != want[off:off + PAGE]:
                ok = False
        if a.get("close_fd"):
            os.close(fd)
            fd = None
    else:
        got = os.pread(fd, upto, 0)
        ok = got == want[:upto]
    emit({"ready": True, "prefix_ok": ok, "read_upto": upto, "size": n, "pid": os.getpid()})
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        cmd = parts[0]
        if cmd == "quit":
            break
        if cmd == "touch":
            off = int(parts[1])
            res = fork_read(lambda: mm[off:off + 64], want[off:off + 64])
            res["off"] = off
            emit(res)
        elif cmd == "pread":
            off = int(parts[1])
            res = fork_read(lambda: os.pread(fd, 64, off), want[off:off + 64])
            res["off"] = off
            emit(res)
        elif cmd == "check":
            if mm is not None:
                res = fork_read(lambda: mm[:], want)
            else:
                res = fork_read(lambda: os.pread(fd, n + 1, 0), want)
            emit(res)
        else:
            emit({"error": f"unknown command {cmd}"})


def cmd_stress_reader(a):
    """One reader of tests/mount/test_tsan_stress.py: reads `files` of the mount (each compared
    with the plaintext `plains`, mapped, not copied, so 16 readers share one copy) until
    `seconds` pass or `give_up` operations in a row fail (the mount was revoked). Prints a
    progress line every `report_s` seconds and a last one with "done": true, so a reader that
    dies of SIGBUS has reported what it saw before. mode:
      pread_random  preads of random length at random offsets (some at chunk edges), with the
                    file's pages evicted now and then so that reads keep reaching the daemon
      pread_seq     whole-file passes of `len`-byte preads (decrypt-ahead), pages evicted first
      direct        O_DIRECT preads at random offsets (never from the page cache)
      mmap_shared / mmap_private
                    map a file, touch pages at random then every `stride`-th page in order,
                    unmap and evict; after revocation a touch raises SIGBUS, which kills this
                    process (the test expects that, and only after revocation)
    A short read is counted apart (n_short, first_short_t) if what it returned is a correct
    prefix (a read cut by the revocation)."""
    rng = random.Random(a["seed"])
    files, mode = a["files"], a["mode"]
    plains = []
    for p in a["plains"]:
        fd = os.open(p, os.O_RDONLY)
        plains.append(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        os.close(fd)
    edges = a.get("edges") or [[] for _ in files]
    stop = time.monotonic() + a["seconds"]
    st = {"mode": mode, "ops": 0, "bytes": 0, "n_mismatch": 0, "mismatches": [], "n_short": 0,
          "first_short_t": None, "errors": {}, "first_error_t": None, "pid": os.getpid()}
    fails_in_a_row = 0
    last_report = 0.0
    fds = {}

    def report(done=False):
        st["t"] = time.time()
        st["done"] = done
        emit(st)

    def check(j, off, got, want_len, op):
        want = plains[j][off:off + want_len]
        st["ops"] += 1
        st["bytes"] += len(got)
        if got == want:
            return
        if len(got) < len(want) and want.startswith(got):
            st["n_short"] += 1
            if st["first_short_t"] is None:
                st["first_short_t"] = time.time()
            return
        st["n_mismatch"] += 1
        if len(st["mismatches"]) < 5:
            st["mismatches"].append({"file": files[j], "op": op, "off": off, "len": want_len,
                                     "got_len": len(got), "first_diff": first_diff(got, want)})

    def fd_of(j, flags=os.O_RDONLY):
        if (j, flags) not in fds:
            fds[(j, flags)] = os.open(files[j], flags)
        return fds[(j, flags)]

    def evict(j):
        fd = os.open(files[j], os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            close_quietly(fd)

    def one_op():
        j = rng.randrange(len(files))
        n = len(plains[j])
        if mode in ("pread_random", "direct"):
            if edges[j] and rng.random() < 0.4:
                off = max(0, rng.choice(edges[j]) + rng.choice([-1, 0, 1]))
            else:
                off = rng.randrange(n + 64)
            ln = rng.choice(LENS)
            if mode == "direct":
                off -= off % PAGE
                ln = max(PAGE, ln - ln % PAGE)
                flags = os.O_RDONLY | os.O_DIRECT
            else:
                flags = os.O_RDONLY
                if rng.random() < 0.1:
                    evict(j)
            check(j, off, os.pread(fd_of(j, flags), ln, off), ln, mode)
        elif mode == "pread_seq":
            evict(j)
            fd = os.open(files[j], os.O_RDONLY)
            try:
                ln = a["len"]
                for off in range(0, n + 1, ln):
                    check(j, off, os.pread(fd, ln, off), ln, mode)
                    if time.monotonic() > stop:
                        break
            finally:
                close_quietly(fd)
        else:
            fd = os.open(files[j], os.O_RDONLY)
            try:
                mm = map_file(fd, "shared" if mode == "mmap_shared" else "private")
            finally:
                close_quietly(fd)
            try:
                pages = (n + PAGE - 1) // PAGE
                order = [rng.randrange(pages) for _ in range(64)]
                order += list(range(rng.randrange(a["stride"]), pages, a["stride"]))
                for pg in order:
                    off = pg * PAGE
                    check(j, off, mm[off:off + PAGE], min(PAGE, n - off), mode)
            finally:
                mm.close()
            evict(j)

    while time.monotonic() < stop and fails_in_a_row < a["give_up"]:
        try:
            one_op()
            fails_in_a_row = 0
        except OSError as e:
            name = errno_name(e.errno)
            st["errors"][name] = st["errors"].get(name, 0) + 1
            if st["first_error_t"] is None:
                st["first_error_t"] = time.time()
            fails_in_a_row += 1
            for fd in fds.values():
                close_quietly(fd)
            fds.clear()
            time.sleep(0.01)
        if time.monotonic() - last_report > a["report_s"]:
            last_report = time.monotonic()
            report()
    for fd in fds.values():
        close_quietly(fd)
    report(done=True)


def errno_name(n):
    return errno.errorcode.get(n, str(n))


def cmd_watchdog(a):
    """Session watchdog: when the deadline in `deadline_file` passes, SIGKILL the ctfs daemons
    of mounts under `prefix` and lazily unmount them, so a test blocked in a FUSE syscall gets
    an error instead of hanging the suite. Exits when the pytest process goes away."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mount_util as M

    parent = a["parent"]
    while True:
        if os.getppid() != parent:
            return
        try:
            with open(a["deadline_file"]) as f:
                text = f.read().strip()
            deadline = float(text.split()[0]) if text else 0.0
            what = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
        except (OSError, ValueError):
            deadline, what = 0.0, ""
        if deadline and time.time() > deadline:
            victims = [f"{e.mountpoint} (daemon {e.pid})" for e in M.fuse_mounts_under(a["prefix"])]
            M.kill_mounts_under(a["prefix"])
            with open(a["fired_file"], "a") as f:
                f.write(f"{what}: deadline passed; killed and unmounted: {victims}\n")
            with open(a["deadline_file"], "w") as f:
                f.write("0")
        time.sleep(0.25)


def main():
    cmd, args = sys.argv[1], json.loads(sys.argv[2])
    globals()["cmd_" + cmd](args)


if __name__ == "__main__":
    main()
