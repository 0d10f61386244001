#!/usr/bin/env python3
"""Deterministic benchmark data set for Bulwark vs restic.

    gen_data.py generate --size 2G --out DIR [--seed 1]
    gen_data.py mutate --src DIR --out DIR [--percent 5] [--seed 2]

generate: ~60 % incompressible random files (1 KB .. 200 MB, capped at 30 % of
the total), ~20 % compressible logs (1-50 MB), and small files of 1-8 KB
(50 000 at 2G, scaled, at least 500) in nested directories. Same seed and
size → same bytes.

mutate: builds OUT as a hard-link copy of SRC (unchanged files keep their
inodes, as on a real system between two backups), then changes ~PERCENT % of
the bytes without touching SRC: rewrites regions of some random files (as new
files renamed over the links), appends to logs, adds new files and deletes
some small ones.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys

MIB = 1 << 20


def parse_size(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": MIB, "G": 1 << 30}
    if s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


def write_random(path: str, size: int, rng: random.Random) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 4 * MIB)
            f.write(rng.randbytes(n))
            left -= n


WORDS = ("GET POST PUT DELETE /api/v1/items /login /static/app.js user=alice user=bob "
         "status=200 status=404 status=500 latency_ms= db=ok cache=miss cache=hit").split()


def write_log(path: str, size: int, rng: random.Random) -> None:
    levels = ["INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR"]
    with open(path, "w") as f:
        written, t = 0, 1_700_000_000
        chunk = []
        while written < size:
            t += rng.randint(0, 3)
            line = "%d %s [%s] %s %s %s %d\n" % (
                t, levels[rng.randrange(len(levels))], "worker-%d" % rng.randrange(8),
                rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS), rng.randrange(100000))
            chunk.append(line)
            written += len(line)
            if len(chunk) > 5000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))


def generate(size: int, out: str, seed: int) -> None:
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    n_small = max(500, int(50_000 * size / (2 << 30)))
    small_budget = n_small * 4500
    log_budget = int(size * 0.20)
    rand_budget = max(0, size - log_budget - small_budget)

    # random files: a few big, many medium, cap 200 MB and 30 % of total
    cap = min(200 * MIB, int(size * 0.30))
    os.makedirs(os.path.join(out, "media"), exist_ok=True)
    left, i = rand_budget, 0
    sizes = []
    while left > 0:
        if i < 2:
            s = cap
        elif i < 10:
            s = rng.randint(10 * MIB, max(10 * MIB + 1, cap // 3))
        else:
            s = int(rng.choice([rng.randint(1024, 64 * 1024), rng.randint(64 * 1024, 4 * MIB), rng.randint(4 * MIB, 20 * MIB)]))
        s = min(s, left)
        sizes.append(s)
        left -= s
        i += 1
    for i, s in enumerate(sizes):
        write_random(os.path.join(out, "media", "blob-%04d.bin" % i), s, rng)

    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    left, i = log_budget, 0
    while left > 0:
        s = min(left, rng.randint(1 * MIB, 50 * MIB))
        write_log(os.path.join(out, "logs", "app-%03d.log" % i), s, rng)
        left -= s
        i += 1

    for i in range(n_small):
        d = os.path.join(out, "small", "d%03d" % (i % 200), "e%02d" % (i % 17))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d.dat" % i), "wb") as f:
            f.write(rng.randbytes(rng.randint(1024, 8192)))


def files_under(root: str):
    out = []
    for dirpath, _, names in os.walk(root):
        for n in sorted(names):
            out.append(os.path.join(dirpath, n))
    out.sort()
    return out


def replace(path: str, data_fn) -> None:
    """Writes a new file and renames it over `path` (the old inode stays with SRC)."""
    tmp = path + ".bench-tmp"
    shutil.copyfile(path, tmp)
    with open(tmp, "r+b") as f:
        data_fn(f)
    os.replace(tmp, path)


def mutate(src: str, out: str, percent: float, seed: int) -> None:
    rng = random.Random(seed)
    if os.path.exists(out):
        shutil.rmtree(out)
    subprocess.run(["cp", "-al", src, out], check=True)
    files = files_under(out)
    total = sum(os.path.getsize(f) for f in files)
    budget = int(total * percent / 100)
    changed = 0
    media = [f for f in files if "/media/" in f and os.path.getsize(f) > 64 * 1024]
    logs = [f for f in files if "/logs/" in f]
    small = [f for f in files if "/small/" in f]
    rng.shuffle(media)
    # 1. rewrite regions of some random files (~60 % of the budget)
    for f in media:
        if changed >= budget * 0.6:
            break
        size = os.path.getsize(f)
        n = min(size // 4, 2 * MIB, int(budget * 0.6) - changed)
        if n <= 0:
            break
        off = rng.randrange(0, max(1, size - n))

        def rewrite(fh, off=off, n=n):
            fh.seek(off)
            fh.write(rng.randbytes(n))
        replace(f, rewrite)
        changed += n
    # 2. append to logs (~20 %)
    for f in logs[: max(1, len(logs) // 3)]:
        n = int(budget * 0.2 / max(1, len(logs) // 3))

        def append(fh, n=n):
            fh.seek(0, 2)
            fh.write(("%d INFO [bench] appended line\n" % rng.randrange(10**9)).encode() * (n // 32 + 1))
        replace(f, append)
        changed += n
    # 3. new files (~20 %)
    newdir = os.path.join(out, "new")
    os.makedirs(newdir, exist_ok=True)
    left, i = int(budget * 0.2), 0
    while left > 0:
        n = min(left, rng.randint(4 * 1024, 4 * MIB))
        write_random(os.path.join(newdir, "n%04d.bin" % i), n, rng)
        left -= n
        changed += n
        i += 1
    # 4. delete 1 % of the small files
    for f in rng.sample(small, max(1, len(small) // 100)):
        os.remove(f)
    print("mutated %s: ~%.1f MiB changed of %.1f MiB (%.1f %%)" % (out, changed / MIB, total / MIB, 100 * changed / max(1, total)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--size", default="2G")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=1)
    m = sub.add_parser("mutate")
    m.add_argument("--src", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--percent", type=float, default=5)
    m.add_argument("--seed", type=int, default=2)
    a = ap.parse_args()
    if a.cmd == "generate":
        generate(parse_size(a.size), a.out, a.seed)
    else:
        mutate(a.src, a.out, a.percent, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
