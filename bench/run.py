#!/usr/bin/env python3
"""Bulwark vs restic, side by side in one run.

    python3 bench/run.py --size 2G --runs 3
    python3 bench/run.py --size 200M --runs 3      # quick

Steps per tool and run: init, first backup, unchanged backup, backup after a
deterministic 5 % change, full restore (verified against the source). Runs
alternate the order of the tools (run 1: bulwark first, run 2: restic first,
...). Reports median wall time and median peak RSS per step and the ratio
bulwark/restic, as Markdown on stdout and in --out.
"""

import argparse
import datetime
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_data  # noqa: E402

STEPS = ["init", "first backup", "unchanged backup", "backup after 5 % change", "full restore"]


class Tool:
    def __init__(self, name, binary, repo_var, pw_var, extra_env=None):
        self.name, self.binary, self.repo_var, self.pw_var = name, binary, repo_var, pw_var
        self.extra_env = extra_env or {}

    def env(self, repo, pw, cache):
        e = dict(os.environ)
        for k in ["RESTIC_REPOSITORY", "RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "BULWARK_REPO",
                  "BULWARK_PASSWORD", "BULWARK_PASSWORD_FILE", "GOMAXPROCS"]:
            e.pop(k, None)
        e[self.repo_var] = repo
        e[self.pw_var] = pw
        e["XDG_CACHE_HOME"] = cache
        e.update(self.extra_env)
        return e


def run(cmd, env, log):
    start = time.monotonic()
    with open(log, "ab") as lf:
        lf.write(("\n$ %s\n" % " ".join(cmd)).encode())
        lf.flush()
        p = subprocess.Popen(cmd, env=env, stdout=lf, stderr=lf)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit("%s failed with exit %d; see %s" % (" ".join(cmd), code, log))
    return wall, ru.ru_maxrss / 1024.0  # MiB


def manifest(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.islink(p):
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            out[os.path.relpath(p, root)] = (os.path.getsize(p), h.hexdigest())
    return out


def du(path):
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            total += os.path.getsize(os.path.join(dirpath, n))
    return total


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return "%d cores, %s, %s RAM, Linux %s" % (os.cpu_count() or 0, cpu, mem, platform.release())


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    except Exception as e:  # noqa: BLE001
        return "unknown (%s)" % e


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2G")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bulwark-bin", default=os.path.join(ROOT, "target", "release", "bulwark"))
    ap.add_argument("--restic-bin", default=shutil.which("restic") or "restic")
    ap.add_argument("--workdir", default="/tmp/bulwark-bench")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "backup-restore-%s.md" % datetime.date.today().isoformat()))
    a = ap.parse_args()

    if not os.path.exists(a.bulwark_bin):
        raise SystemExit("no %s: build it first with `cargo build --release -p bulwark`" % a.bulwark_bin)
    tools = [
        Tool("bulwark", a.bulwark_bin, "BULWARK_REPO", "BULWARK_PASSWORD_FILE"),
        Tool("restic", a.restic_bin, "RESTIC_REPOSITORY", "RESTIC_PASSWORD_FILE"),
    ]
    os.makedirs(a.workdir, exist_ok=True)
    wd = a.workdir
    orig, mut, data = os.path.join(wd, "data.orig"), os.path.join(wd, "data.mut"), os.path.join(wd, "data")
    marker = os.path.join(wd, "generated-%s-%d" % (a.size, a.seed))
    if not os.path.exists(marker):
        for p in [orig, mut, data]:
            if os.path.exists(p):
                shutil.rmtree(p)
        for m in [f for f in os.listdir(wd) if f.startswith("generated-")]:
            os.remove(os.path.join(wd, m))
        print("generating %s data set in %s ..." % (a.size, orig), flush=True)
        gen_data.generate(gen_data.parse_size(a.size), orig, a.seed)
        gen_data.mutate(orig, mut, 5, a.seed + 1)
        open(marker, "w").close()
    if os.path.exists(data):
        raise SystemExit("%s exists from an interrupted run: rename it back to data.orig or data.mut" % data)
    expected = manifest(mut)
    n_files = len(manifest(orig))
    total = du(orig)
    pw = os.path.join(wd, "password")
    with open(pw, "w") as f:
        f.write("benchmark password\n")
    log = os.path.join(wd, "bench.log")
    open(log, "w").close()

    results = {t.name: {s: [] for s in STEPS + ["repo size"]} for t in tools}
    for r in range(a.runs):
        order = tools if r % 2 == 0 else list(reversed(tools))
        for t in order:
            repo = os.path.join(wd, "repo-%s" % t.name)
            cache = os.path.join(wd, "cache-%s" % t.name)
            target = os.path.join(wd, "restore-%s" % t.name)
            for p in [repo, cache, target]:
                if os.path.exists(p):
                    shutil.rmtree(p)
            env = t.env(repo, pw, cache)
            res = results[t.name]
            res["init"].append(run([t.binary, "init"], env, log))
            os.rename(orig, data)
            try:
                res["first backup"].append(run([t.binary, "backup", data], env, log))
                res["unchanged backup"].append(run([t.binary, "backup", data], env, log))
            finally:
                os.rename(data, orig)
            os.rename(mut, data)
            try:
                res["backup after 5 % change"].append(run([t.binary, "backup", data], env, log))
            finally:
                os.rename(data, mut)
            res["repo size"].append((du(repo), 0))
            res["full restore"].append(run([t.binary, "restore", "latest", "--target", target], env, log))
            got = manifest(os.path.join(target, data.lstrip("/")))
            if got != expected:
                missing = set(expected) - set(got)
                raise SystemExit("%s restored a different tree (%d files missing, %d differ)" % (
                    t.name, len(missing), sum(1 for k in got if k in expected and got[k] != expected[k])))
            shutil.rmtree(target)
            print("run %d %-8s %s" % (r + 1, t.name, "  ".join(
                "%s %.2fs/%.0fMiB" % (s.split()[0], res[s][-1][0], res[s][-1][1]) for s in STEPS)), flush=True)

    med = lambda xs: statistics.median(xs)  # noqa: E731
    lines = []
    lines.append("# Bulwark vs restic: backup and restore")
    lines.append("")
    lines.append("- date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    lines.append("- machine: %s" % machine())
    lines.append("- bulwark: %s; restic: %s" % (version([a.bulwark_bin, "--version"]), version([a.restic_bin, "version"])))
    lines.append("- data set: %s requested, %.2f GiB in %d files (random 1 KB-200 MB, compressible logs, small 1-8 KB files); seed %d"
                 % (a.size, total / (1 << 30), n_files, a.seed))
    lines.append("- %d runs per tool, alternating order; warm page cache (caches can't be dropped here); medians" % a.runs)
    lines.append("")
    lines.append("| step | bulwark s | restic s | time ratio | bulwark peak RSS MiB | restic peak RSS MiB | RSS ratio |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for s in STEPS:
        bt, rt = med([x[0] for x in results["bulwark"][s]]), med([x[0] for x in results["restic"][s]])
        bm, rm = med([x[1] for x in results["bulwark"][s]]), med([x[1] for x in results["restic"][s]])
        lines.append("| %s | %.2f | %.2f | %.2f | %.0f | %.0f | %.2f |" % (s, bt, rt, bt / rt, bm, rm, bm / rm))
    bs, rs = med([x[0] for x in results["bulwark"]["repo size"]]), med([x[0] for x in results["restic"]["repo size"]])
    lines.append("| repository size (MiB) | %.0f | %.0f | %.2f | | | |" % (bs / (1 << 20), rs / (1 << 20), bs / rs))
    lines.append("")
    lines.append("Ratios are bulwark / restic: below 1 means Bulwark is faster or smaller.")
    lines.append("")
    lines.append("## Raw runs (seconds / peak RSS MiB)")
    lines.append("")
    lines.append("| tool | run | " + " | ".join(STEPS) + " |")
    lines.append("|---|---|" + "---|" * len(STEPS))
    for t in tools:
        for i in range(a.runs):
            lines.append("| %s | %d | %s |" % (t.name, i + 1, " | ".join(
                "%.2f / %.0f" % results[t.name][s][i] for s in STEPS)))
    report = "\n".join(lines) + "\n"
    print(report)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(report)
    print("written to %s" % a.out)


if __name__ == "__main__":
    main()
