#!/usr/bin/env python3
"""Deterministic benchmark data set for Bulwark vs restic (standard library only).

    gen_data.py --size 2G --out DIR [--seed 1] [--jobs N]
    gen_data.py mutate --dir DIR [--percent 5] [--seed 2]

generate (the default command; `generate` may also be spelled out): writes a
fresh data set into DIR (which must not exist or be empty). Same seed and size
→ same bytes, whatever --jobs is. Composition, scaled with --size:

  small/   small files of 1-8 KB in nested directories: 50 000 at 2G, scaled
           with the size, at least 500 (about 70 % random bytes, 30 % text)
  logs/    ~20 % compressible text logs (timestamps, levels, repeated words),
           files of 1-50 MB
  media/   the rest (~60-70 %): incompressible random files from 1 KB up to
           min(200 MB, 30 % of the total) — a few big, many medium, more small.
           Every file has its own PRNG stream: no block repeats anywhere, so
           nothing compresses or deduplicates.

mutate: changes ~PERCENT % of the bytes of DIR in place, deterministically for
the same tree, seed and percent: overwrites regions of some random files,
appends to some logs, rewrites and deletes a few small files, adds new files.
Files with more than one hard link are first replaced by a private copy, so
DIR may be a hard-link copy (`cp -al SRC DIR`) of a pristine tree: SRC stays
untouched and unchanged files keep their inodes, as between two real backups.
"""

import argparse
import hashlib
import math
import multiprocessing
import os
import random
import shutil
import sys
import time

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
GENERATOR_VERSION = 1  # bump when the produced bytes change


def parse_size(s: str) -> int:
    """'2G', '200M', '512K', '1.5G' or a plain byte count (binary units)."""
    s = s.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": KIB, "M": MIB, "G": GIB, "T": 1 << 40}
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)



def proc_field(path, key):
    """The value of the first `key: value` line of a /proc-style file, or "?"."""
    try:
        for line in open(path):
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"

def fmt_bytes(n: float) -> str:
    for unit, div in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= div:
            return "%.2f %s" % (n / div, unit)
    return "%d B" % n


def derive(*parts) -> int:
    """A stable 64-bit seed from any printable parts (independent of PYTHONHASHSEED)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    if hi <= lo:
        return lo
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# --------------------------------------------------------------------------- content


def write_random(f, size: int, rng: random.Random) -> None:
    """`size` incompressible bytes from one PRNG stream (never repeats a block)."""
    left = size
    while left > 0:
        n = min(left, 4 * MIB)
        f.write(rng.randbytes(n))
        left -= n


LEVELS = ["INFO"] * 14 + ["DEBUG"] * 6 + ["WARN"] * 3 + ["ERROR"]
SERVICES = ["api", "auth", "billing", "search", "worker", "scheduler", "gateway", "db-proxy",
            "mailer", "indexer", "thumbnailer", "sync"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
PATHS = ["/api/v1/items", "/api/v1/items/{id}", "/api/v1/users/{id}", "/login", "/logout",
         "/static/app.js", "/static/style.css", "/api/v2/search", "/healthz", "/metrics"]
STATUS = [200] * 20 + [201, 204, 301, 304, 400, 401, 403, 404, 404, 500, 502, 503]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "-"]
WORDS = ("the request was processed successfully after retry cache miss for key upstream timeout "
         "connection reset by peer slow query detected transaction committed rolled back queue "
         "depth exceeded threshold scheduled job started finished worker pool resized").split()


def log_lines(rng: random.Random, t_ms: int, nbytes: int):
    """Yields (text, t_ms) batches of log lines totalling at least `nbytes`."""
    written = 0
    sec_cache = {}
    while written < nbytes:
        n = 4000
        lv = rng.choices(LEVELS, k=n)
        sv = rng.choices(SERVICES, k=n)
        kinds = rng.choices(range(5), weights=[6, 2, 1, 1, 1], k=n)
        out = []
        for i in range(n):
            t_ms += rng.getrandbits(6)
            sec = t_ms // 1000
            ts = sec_cache.get(sec)
            if ts is None:
                if len(sec_cache) > 4096:
                    sec_cache.clear()
                ts = sec_cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            k = kinds[i]
            r = rng.getrandbits(32)
            if k == 0:
                msg = "request %s %s status=%d latency_ms=%d user=%s bytes=%d" % (
                    METHODS[(r & 7) % 6], PATHS[(r >> 3) % 10].replace("{id}", str(r >> 20)),
                    STATUS[(r >> 7) % 32], (r >> 12) % 900 + 1, USERS[(r >> 16) % 11], r % 65536)
            elif k == 1:
                msg = "cache %s key=item:%d ttl=%ds" % ("hit" if r & 1 else "miss", r >> 12, (r >> 4) % 3600)
            elif k == 2:
                msg = "job %08x finished in %d ms (%d items)" % (r, (r >> 8) % 60000, r % 5000)
            elif k == 3:
                msg = "connection from 10.%d.%d.%d:%d accepted" % (r >> 24, (r >> 16) & 255, (r >> 8) & 255, 1024 + (r & 0xFFFF) % 60000)
            else:
                msg = " ".join(rng.choices(WORDS, k=4 + (r & 7)))
            out.append("%s.%03dZ %-5s [%s] %s\n" % (ts, t_ms % 1000, lv[i], sv[i], msg))
        text = "".join(out).encode()
        written += len(text)
        yield text, t_ms


def write_log(f, size: int, rng: random.Random, t_ms: int = 1_700_000_000_000) -> None:
    left = size
    for text, _ in log_lines(rng, t_ms, size):
        f.write(text[:left])
        left -= min(left, len(text))
        if left == 0:
            break


def small_text(rng: random.Random, size: int) -> bytes:
    """Config-file-like text of exactly `size` bytes."""
    parts = []
    n = 0
    while n < size:
        line = "%s.%s = %s\n" % (rng.choice(SERVICES), rng.choice(WORDS), rng.choice(
            [str(rng.randrange(100000)), rng.choice(WORDS), "true", "false", '"%s"' % rng.choice(USERS)]))
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()[:size]


# --------------------------------------------------------------------------- plan


def plan(size: int, seed: int):
    """The list of files to write: (kind, relpath, size, fileseed), plus a summary.

    Depends only on (size, seed), so the data set is the same whatever --jobs is.
    """
    rng = random.Random(derive("plan", GENERATOR_VERSION, seed, size))
    tasks = []

    # small files in nested directories: small/aNN/bNN/cNN/, ~100 per leaf
    n_small = max(500, round(50_000 * size / (2 * GIB)))
    per_leaf = 100
    small_bytes = 0
    for i in range(n_small):
        leaf = i // per_leaf
        rel = "small/a%02d/b%02d/c%02d/f%06d.%s" % (leaf // 100, (leaf // 10) % 10, leaf % 10, i,
                                                  "txt" if rng.random() < 0.3 else "dat")
        s = rng.randint(1 * KIB, 8 * KIB)
        tasks.append(("small-text" if rel.endswith(".txt") else "small-bin", rel, s, derive(seed, rel)))
        small_bytes += s

    # compressible logs, 1-50 MB each (at most a quarter of the log budget each)
    log_budget = int(size * 0.20)
    log_hi = min(50 * MIB, max(1 * MIB, log_budget // 4))
    left, i = log_budget, 0
    while left > 0:
        s = min(left, rng.randint(1 * MIB, log_hi))
        rel = "logs/%s/%s-%03d.log" % (SERVICES[i % len(SERVICES)], SERVICES[i % len(SERVICES)], i)
        tasks.append(("log", rel, s, derive(seed, rel)))
        left -= s
        i += 1

    # incompressible random files: the rest of the size
    rand_budget = max(0, size - log_budget - small_bytes)
    cap = max(64 * KIB, min(200 * MIB, int(size * 0.30)))
    tiers = [  # (name, share of the random budget, min size, max size)
        ("big", 0.35, cap // 2, cap),
        ("medium", 0.50, 1 * MIB, min(32 * MIB, cap)),
        ("small", 0.15, 1 * KIB, min(1 * MIB, cap)),
    ]
    spent, idx = 0, 0
    for t, (tier, share, lo, hi) in enumerate(tiers):
        budget = rand_budget - spent if t == len(tiers) - 1 else int(rand_budget * share)
        left = budget
        while left > 0:
            s = min(left, log_uniform(rng, lo, hi))
            rel = "media/%s/%s%02d/blob-%05d.bin" % (tier, tier[0], idx % 16, idx) if tier != "big" \
                else "media/big/blob-%05d.bin" % idx
            tasks.append(("random", rel, s, derive(seed, rel)))
            left -= s
            spent += s
            idx += 1
    return tasks


def _write_task(task, out: str) -> int:
    kind, rel, size, fseed = task
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = random.Random(fseed)
    with open(path, "wb") as f:
        if kind == "random":
            write_random(f, size, rng)
        elif kind == "log":
            write_log(f, size, rng)
        elif kind == "small-bin":
            f.write(rng.randbytes(size))
        else:
            f.write(small_text(rng, size))
    return size


def _write_batch(args) -> int:
    batch, out = args
    return sum(_write_task(t, out) for t in batch)


def summarize(tasks):
    cats = {}
    for kind, _, size, _ in tasks:
        c = {"random": "random (incompressible)", "log": "logs (compressible text)"}.get(kind, "small files (1-8 KB)")
        n, b = cats.get(c, (0, 0))
        cats[c] = (n + 1, b + size)
    return {
        "files": len(tasks),
        "bytes": sum(t[2] for t in tasks),
        "largest": max(t[2] for t in tasks),
        "categories": {k: {"files": v[0], "bytes": v[1]} for k, v in sorted(cats.items())},
    }


def generate(size: int, out: str, seed: int = 1, jobs: int = 0, quiet: bool = False) -> dict:
    """Writes the data set into `out` (created; must be empty). Returns a summary dict."""
    if os.path.exists(out) and os.listdir(out):
        raise SystemExit("gen_data: %s is not empty; remove it first" % out)
    os.makedirs(out, exist_ok=True)
    start = time.monotonic()
    tasks = plan(size, seed)
    # batches of ~64 MiB (or ~500 small files), biggest first, for the pool
    batches, cur, cur_bytes = [], [], 0
    for t in sorted(tasks, key=lambda t: -t[2]):
        cur.append(t)
        cur_bytes += t[2] + 16 * KIB
        if cur_bytes >= 64 * MIB or len(cur) >= 500:
            batches.append(cur)
            cur, cur_bytes = [], 0
    if cur:
        batches.append(cur)
    jobs = jobs or len(os.sched_getaffinity(0))
    done = 0
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for n in pool.imap_unordered(_write_batch, [(b, out) for b in batches]):
                done += n
    else:
        for b in batches:
            done += _write_batch((b, out))
    summary = summarize(tasks)
    summary.update(size_requested=size, seed=seed, generator_version=GENERATOR_VERSION,
                   seconds=round(time.monotonic() - start, 1))
    if not quiet:
        print_summary(out, summary)
    return summary


def print_summary(out, s):
    print("generated %s: %s in %d files (largest %s) in %.1f s" % (
        out, fmt_bytes(s["bytes"]), s["files"], fmt_bytes(s["largest"]), s["seconds"]))
    for k, v in s["categories"].items():
        print("  %-26s %7d files %12s (%4.1f %%)" % (k, v["files"], fmt_bytes(v["bytes"]), 100 * v["bytes"] / max(1, s["bytes"])))


# --------------------------------------------------------------------------- mutate


def _files(root: str):
    """Sorted (relpath, size) of the regular files under root."""
    out = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        for n in names:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append((os.path.relpath(p, root), st.st_size))
    out.sort()
    return out


def _own(path: str) -> None:
    """Gives `path` its own inode if it shares one (hard-link copy of a pristine tree)."""
    if os.lstat(path).st_nlink > 1:
        tmp = path + ".bench-tmp"
        shutil.copy2(path, tmp)
        os.replace(tmp, path)


def _replace_with(path: str, data: bytes) -> None:
    tmp = path + ".bench-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def mutate(root: str, percent: float = 5.0, seed: int = 2, quiet: bool = False) -> dict:
    """Changes ~percent % of the bytes under `root` in place (see the module doc)."""
    rng = random.Random(derive("mutate", GENERATOR_VERSION, seed, float(percent)))
    files = _files(root)
    if not files:
        raise SystemExit("gen_data mutate: no files under %s" % root)
    total = sum(s for _, s in files)
    budget = int(total * percent / 100)
    logs = [(r, s) for r, s in files if r.endswith(".log")]
    small = [(r, s) for r, s in files if not r.endswith(".log") and s <= 8 * KIB]
    bulk = [(r, s) for r, s in files if not r.endswith(".log") and s >= 64 * KIB]
    st = {"overwritten_files": 0, "overwritten_bytes": 0, "appended_logs": 0, "appended_bytes": 0,
          "rewritten_small": 0, "rewritten_bytes": 0, "deleted_small": 0, "new_files": 0, "new_bytes": 0}

    # 1. overwrite a region of some random files in place (~40 % of the budget)
    goal = int(budget * (0.40 if logs else 0.60))
    order = bulk[:]
    rng.shuffle(order)
    for rel, size in order:
        if st["overwritten_bytes"] >= goal:
            break
        n = min(goal - st["overwritten_bytes"], max(1, size // 2), rng.randint(256 * KIB, 4 * MIB))
        off = rng.randrange(0, size - n + 1)
        path = os.path.join(root, rel)
        _own(path)
        with open(path, "r+b") as f:
            f.seek(off)
            f.write(rng.randbytes(n))
        st["overwritten_files"] += 1
        st["overwritten_bytes"] += n

    # 2. append to a quarter of the logs (~20 %)
    if logs:
        chosen = rng.sample(logs, max(1, len(logs) // 4))
        per = int(budget * 0.20) // len(chosen)
        for rel, _ in chosen:
            path = os.path.join(root, rel)
            _own(path)
            with open(path, "ab") as f:
                write_log(f, per, random.Random(derive(seed, "append", rel)), t_ms=1_800_000_000_000)
            st["appended_logs"] += 1
            st["appended_bytes"] += per

    # 3. rewrite 1 % and delete 1 % of the small files
    if small:
        k = max(1, len(small) // 100)
        picked = rng.sample(small, min(len(small), 2 * k))
        for rel, _ in picked[:k]:
            data = rng.randbytes(rng.randint(1 * KIB, 8 * KIB))
            _replace_with(os.path.join(root, rel), data)
            st["rewritten_small"] += 1
            st["rewritten_bytes"] += len(data)
        for rel, _ in picked[k:]:
            os.remove(os.path.join(root, rel))
            st["deleted_small"] += 1

    # 4. new files: the rest of the budget, a few random files plus new small files
    newdir = os.path.join(root, "new-%d" % seed)
    n_new_small = max(5, len(small) // 200)
    for i in range(n_new_small):
        path = os.path.join(newdir, "small", "s%02d" % (i // 100), "n%05d.dat" % i)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = rng.randbytes(rng.randint(1 * KIB, 8 * KIB))
        with open(path, "wb") as f:
            f.write(data)
        st["new_files"] += 1
        st["new_bytes"] += len(data)
    left = budget - st["overwritten_bytes"] - st["appended_bytes"] - st["rewritten_bytes"] - st["new_bytes"]
    i = 0
    while left > 0:
        n = min(left, log_uniform(rng, 64 * KIB, 8 * MIB))
        path = os.path.join(newdir, "media", "n%04d.bin" % i)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            write_random(f, n, random.Random(derive(seed, "new", i)))
        st["new_files"] += 1
        st["new_bytes"] += n
        left -= n
        i += 1

    changed = st["overwritten_bytes"] + st["appended_bytes"] + st["rewritten_bytes"] + st["new_bytes"]
    st.update(total_before=total, changed_bytes=changed, percent=percent, seed=seed)
    if not quiet:
        print("mutated %s: %s changed of %s (%.2f %%)" % (root, fmt_bytes(changed), fmt_bytes(total), 100 * changed / total))
        print("  overwrote a region of %d files (%s), appended to %d logs (%s),"
              % (st["overwritten_files"], fmt_bytes(st["overwritten_bytes"]), st["appended_logs"], fmt_bytes(st["appended_bytes"])))
        print("  rewrote %d small files (%s), deleted %d small files, added %d files (%s)"
              % (st["rewritten_small"], fmt_bytes(st["rewritten_bytes"]), st["deleted_small"], st["new_files"], fmt_bytes(st["new_bytes"])))
    return st


# --------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "mutate":
        ap = argparse.ArgumentParser(prog="gen_data.py mutate", description="Change ~PERCENT %% of DIR in place.")
        ap.add_argument("--dir", required=True)
        ap.add_argument("--percent", type=float, default=5.0)
        ap.add_argument("--seed", type=int, default=2)
        a = ap.parse_args(argv[1:])
        mutate(a.dir, a.percent, a.seed)
        return 0
    if argv and argv[0] == "generate":
        argv = argv[1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2G", help="total size, e.g. 2G, 200M (binary units; default 2G)")
    ap.add_argument("--out", required=True, help="directory to create (must not exist or be empty)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=0, help="writer processes (default: CPUs); does not change the bytes")
    a = ap.parse_args(argv)
    generate(parse_size(a.size), a.out, a.seed, a.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
