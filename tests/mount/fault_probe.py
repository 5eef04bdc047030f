# SPDX-License-Identifier: Apache-2.0
"""Child-process reader of the real-mount fault matrix: `python fault_probe.py 'JSON args'`.

Reads files of a mount in passes (pread at a piece size, a MAP_SHARED mapping in pieces, stock
safetensors `safe_open` tensor by tensor) and compares every byte with an oracle file. Each
pass first drops the file's pages from the page cache (POSIX_FADV_DONTNEED), so its reads
reach the daemon. Reads run in a forked worker: a mapped read of a range the daemon answers
EIO for kills it with SIGBUS; the item it was reading is recorded as "SIGBUS" and a new worker
goes on with the next item.

Args: {"files": [{"mnt", "oracle", "tensors": {name: [begin, end]}}], "passes": [{"method":
"pread" | "mmap" | "safe_open", "piece": N}]}. Prints one JSON line per file and pass:
{"file", "method", "piece", "items": [[lo, hi, status, at], ...]} where status is "ok",
"WRONG" (at: first wrong byte), "EOF" (at: where a read returned 0 early), "SIGBUS", an errno
name (at: where the read failed) or "EXC: ...".
"""
import errno
import json
import mmap
import os
import signal
import sys


def items_of(method, size, piece, tensors):
    if method == "safe_open":
        return [(b, e, name) for name, (b, e) in sorted(tensors.items(), key=lambda t: t[1])]
    return [(lo, min(lo + piece, size), None) for lo in range(0, size, piece)]


def first_diff(a, b):
    for j in range(min(len(a), len(b))):
        if a[j] != b[j]:
            return j
    return min(len(a), len(b))


def read_pread(fd, lo, hi, oracle):
    pos = lo
    while pos < hi:
        try:
            b = os.pread(fd, hi - pos, pos)
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno)), pos
        if not b:
            return "EOF", pos
        if b != oracle[pos:pos + len(b)]:
            return "WRONG", pos + first_diff(b, oracle[pos:pos + len(b)])
        pos += len(b)
    return "ok", None


def worker(method, path, oracle, items, start, out_fd):
    """Reads items[start:], writing "k status at" per item; may die by SIGBUS."""
    fd = os.open(path, os.O_RDONLY)
    mapped = st = None
    try:
        if method == "mmap" and os.fstat(fd).st_size:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        if method == "safe_open":
            from safetensors import safe_open
            st = safe_open(path, framework="np").__enter__()
        for k in range(start, len(items)):
            lo, hi, name = items[k]
            at = None
            try:
                if method == "pread":
                    status, at = read_pread(fd, lo, hi, oracle)
                else:
                    got = mapped[lo:hi] if method == "mmap" else st.get_tensor(name).tobytes()
                    status = "ok" if got == oracle[lo:hi] else "WRONG"
                    if status == "WRONG":
                        at = lo + first_diff(got, oracle[lo:hi])
            except OSError as e:
                status, at = errno.errorcode.get(e.errno, str(e.errno)), lo
            except Exception as e:  # noqa: BLE001 - safetensors raises its own types
                status = f"EXC: {type(e).__name__}: {e}"[:200]
            os.write(out_fd, (json.dumps([k, status, at]) + "\n").encode())
    finally:
        os.close(fd)


def run_pass(method, path, oracle, items):
    results = [None] * len(items)
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # make this pass's reads reach the daemon
    os.close(fd)
    start = 0
    while start < len(items):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                worker(method, path, oracle, items, start, w)
            except BaseException as e:  # noqa: BLE001 - reported by the parent
                os.write(w, (json.dumps([-1, f"EXC: {e!r}"[:200], None]) + "\n").encode())
                code = 1
            os._exit(code)
        os.close(w)
        buf = b""
        while True:
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            buf += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        last = start - 1
        for line in buf.decode().splitlines():
            k, st, at = json.loads(line)
            if k < 0:
                raise SystemExit(f"worker failed: {st}")
            results[k] = [items[k][0], items[k][1], st, at]
            last = k
        if os.WIFSIGNALED(status):
            k = last + 1
            sig = os.WTERMSIG(status)
            name = "SIGBUS" if sig == signal.SIGBUS else f"signal {sig}"
            results[k] = [items[k][0], items[k][1], name, items[k][0]]
            start = k + 1
        elif last + 1 < len(items):
            raise SystemExit(f"worker exited {status} after item {last} of {len(items)}")
        else:
            start = len(items)
    return results


def main():
    args = json.loads(sys.argv[1])
    for i, f in enumerate(args["files"]):
        with open(f["oracle"], "rb") as o:
            oracle = o.read()
        for p in args["passes"]:
            if p["method"] == "safe_open" and not f.get("tensors"):
                continue
            items = items_of(p["method"], len(oracle), p.get("piece", 0), f.get("tensors", {}))
            res = run_pass(p["method"], f["mnt"], oracle, items)
            print(json.dumps({"file": i, "method": p["method"], "piece": p.get("piece"),
                              "items": res}), flush=True)


if __name__ == "__main__":
    main()
