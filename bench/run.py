#!/usr/bin/env python3
"""Bulwark vs restic: backup and restore, side by side on one machine.

    cargo build --release -p bulwark                  # run.py builds nothing
    python3 bench/run.py --size 200M --runs 3         # quick
    python3 bench/run.py --size 2G --runs 3           # full

Generates a deterministic data set once into --workdir (kept and reused while
size and seed match), plus a hard-link copy of it with a deterministic ~5 %
change. For each run the tools go in alternating order (run 1: bulwark then
restic, run 2: restic then bulwark, ...), each with a fresh repository and a
fresh cache directory (XDG_CACHE_HOME), through these steps:

    init, first backup, unchanged backup, backup after 5 % change, full restore

`WORKDIR/data` is the backed-up path: the original and the changed tree are
swapped in under that name by rename, so the paths are identical and
unchanged files keep their inodes. Every restore is verified file by file
(size + SHA-256) against the changed tree. Per step: wall time (monotonic
clock) and the child's peak RSS (wait4 ru_maxrss); per run: the repository
size on disk after the last backup. Writes a Markdown report (medians and
ratios bulwark/restic, plus every raw run) to stdout and to --out.

A tool is a name, a binary and an env mapping, so `--bulwark-bin
/usr/bin/restic` (restic on both sides, to test the harness) works: a binary
named restic* gets restic's variable names (see --bulwark-env).
"""

import argparse
import datetime
import hashlib
import json
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
MUTATE_PERCENT = 5
MARKER = ".bulwark-bench"  # marks a workdir this harness may wipe
BUILD_HINT = "build it with: cargo build --release -p bulwark  (run.py builds nothing)"

# How each tool is told where the repository and the password file are.
ENV_STYLES = {
    "bulwark": {"repo": "BULWARK_REPO", "password_file": "BULWARK_PASSWORD_FILE"},
    "restic": {"repo": "RESTIC_REPOSITORY", "password_file": "RESTIC_PASSWORD_FILE"},
}
# Inherited variables that could change either tool's behaviour: dropped.
SCRUB_PREFIXES = ("RESTIC_", "BULWARK_")
SCRUB_VARS = {"GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "RUST_LOG", "RUST_BACKTRACE", "RAYON_NUM_THREADS"}


class Tool:
    def __init__(self, name, binary, env_style, version_args):
        self.name, self.binary, self.env_style, self.version_args = name, binary, env_style, version_args

    def env(self, repo, password_file, cache_home):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(SCRUB_PREFIXES) and k not in SCRUB_VARS}
        names = ENV_STYLES[self.env_style]
        env[names["repo"]] = repo
        env[names["password_file"]] = password_file
        env["XDG_CACHE_HOME"] = cache_home  # restic and bulwark both put their cache under it
        return env

    def commands(self, data, target):
        return {
            "init": [self.binary, "init"],
            "first backup": [self.binary, "backup", data],
            "unchanged backup": [self.binary, "backup", data],
            "backup after 5 % change": [self.binary, "backup", data],
            "full restore": [self.binary, "restore", "latest", "--target", target],
        }

    def version(self):
        for args in self.version_args:
            try:
                p = subprocess.run([self.binary] + args, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if p.returncode == 0 and p.stdout.strip():
                return p.stdout.strip().splitlines()[0]
        return "unknown"


class StepFailed(SystemExit):
    pass


# --------------------------------------------------------------------------- measuring


def run_step(cmd, env, cwd, log):
    """Runs cmd with stdout+stderr into `log`; returns wall s, peak RSS MiB, user s, sys s."""
    with open(log, "wb") as lf:
        lf.write(("$ %s\n" % " ".join(cmd)).encode())
        lf.flush()
        start = time.monotonic()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - start
    p.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = open(log, "rb").read()[-3000:].decode(errors="replace")
        raise StepFailed("\nFAILED (exit %d): %s\n--- last lines of %s ---\n%s" % (code, " ".join(cmd), log, tail))
    return {"wall": wall, "rss": ru.ru_maxrss / 1024.0, "user": ru.ru_utime, "sys": ru.ru_stime}


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def manifest(root):
    """relpath -> [size, sha256] of every regular file (and 'symlink'/'other' markers)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ["symlink", os.readlink(p)]
            elif os.path.isfile(p):
                out[rel] = [os.path.getsize(p), file_sha256(p)]
            else:
                out[rel] = ["other", ""]
    return out


def verify(expected, restored_root, who):
    got = manifest(restored_root)
    if got == expected:
        return len(got)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    differ = sorted(k for k in expected if k in got and got[k] != expected[k])
    lines = ["RESTORE VERIFICATION FAILED for %s (%s): %d missing, %d extra, %d differ"
             % (who, restored_root, len(missing), len(extra), len(differ))]
    for label, keys in (("missing", missing), ("extra", extra), ("differs", differ)):
        for k in keys[:10]:
            lines.append("  %s: %s  expected %s got %s" % (label, k, expected.get(k), got.get(k)))
    raise SystemExit("\n".join(lines))


def disk_usage(path):
    """(allocated bytes as du counts them, apparent bytes) of a tree."""
    alloc = apparent = 0
    for dirpath, dirnames, names in os.walk(path):
        for n in names + dirnames:
            st = os.lstat(os.path.join(dirpath, n))
            alloc += st.st_blocks * 512
            if n in names:
                apparent += st.st_size
    return alloc, apparent


def warm(root):
    """Reads every file once, so run 1 doesn't pay alone for a cold page cache."""
    for dirpath, _, names in os.walk(root):
        for n in names:
            try:
                with open(os.path.join(dirpath, n), "rb") as f:
                    while f.read(4 << 20):
                        pass
            except OSError:
                pass


# --------------------------------------------------------------------------- workdir


class Workdir:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.orig = os.path.join(self.path, "tree-orig")
        self.mut = os.path.join(self.path, "tree-mutated")
        self.data = os.path.join(self.path, "data")
        self.dataset_json = os.path.join(self.path, "dataset.json")
        self.expected_json = os.path.join(self.path, "expected-mutated.json")

    def claim(self):
        p = self.path
        ours = os.path.exists(os.path.join(p, MARKER)) or (  # or the earlier harness's marker
            os.path.isdir(p) and any(n.startswith("generated-") for n in os.listdir(p)))
        if os.path.isdir(p) and os.listdir(p) and not ours:
            raise SystemExit("workdir %s is not empty and has no %s marker: refusing to use it (pick another --workdir)"
                             % (p, MARKER))
        os.makedirs(p, exist_ok=True)
        open(os.path.join(p, MARKER), "w").close()

    def wipe(self):
        for n in os.listdir(self.path):
            if n == MARKER:
                continue
            q = os.path.join(self.path, n)
            if os.path.isdir(q) and not os.path.islink(q):
                shutil.rmtree(q)
            else:
                os.remove(q)

    def park(self):
        """Puts `data` back under its tree name (also after an interrupted run)."""
        if os.path.isdir(self.data):
            if not os.path.exists(self.orig):
                os.rename(self.data, self.orig)
            elif not os.path.exists(self.mut):
                os.rename(self.data, self.mut)
            else:
                raise SystemExit("%s, %s and %s all exist: remove %s" % (self.data, self.orig, self.mut, self.data))

    def activate(self, tree):
        self.park()
        os.rename(tree, self.data)

    def prepare(self, size, seed, jobs):
        """Generates (or reuses) the original and the changed tree; returns the data-set info."""
        self.claim()
        self.park()
        want = {"size": size, "seed": seed, "generator_version": gen_data.GENERATOR_VERSION,
                "mutate_percent": MUTATE_PERCENT, "mutate_seed": seed + 1}
        info = None
        if os.path.exists(self.dataset_json):
            try:
                info = json.load(open(self.dataset_json))
            except ValueError:
                info = None
        if info and info.get("key") == want and os.path.isdir(self.orig) and os.path.isdir(self.mut) \
                and os.path.exists(self.expected_json):
            print("reusing data set in %s (%s, seed %d)" % (self.path, gen_data.fmt_bytes(size), seed), flush=True)
            return info
        self.wipe()
        print("generating %s data set (seed %d) in %s ..." % (gen_data.fmt_bytes(size), seed, self.orig), flush=True)
        gen = gen_data.generate(size, self.orig, seed, jobs)
        print("making the %d %% changed copy (hard links + private copies of changed files) in %s ..."
              % (MUTATE_PERCENT, self.mut), flush=True)
        subprocess.run(["cp", "-al", self.orig, self.mut], check=True)
        mut = gen_data.mutate(self.mut, MUTATE_PERCENT, seed + 1)
        print("hashing the changed tree for restore verification ...", flush=True)
        with open(self.expected_json, "w") as f:
            json.dump(manifest(self.mut), f)
        info = {"key": want, "generated": gen, "mutation": mut}
        with open(self.dataset_json, "w") as f:
            json.dump(info, f, indent=1)
        return info


def restored_root(target, data):
    """Where the restored copy of `data` is: restic restores the absolute path under the target."""
    for cand in (os.path.join(target, data.lstrip("/")), os.path.join(target, os.path.basename(data)), target):
        if os.path.isdir(cand):
            return cand
    return target


# --------------------------------------------------------------------------- report


def machine_info():
    first = gen_data.proc_field
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(len(os.sched_getaffinity(0)))
    mem = first("/proc/meminfo", "MemTotal")
    try:
        mem = "%.1f GiB" % (int(mem.split()[0]) / (1 << 20))
    except (ValueError, IndexError):
        pass
    return {"nproc": nproc, "cpu": first("/proc/cpuinfo", "model name"), "ram": mem,
            "kernel": platform.release(), "host": platform.node()}


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def ratio(a, b):
    return "%.2f" % (a / b) if b else "–"


def mib(n):
    return n / (1 << 20)


def build_report(args, tools, info, results, sizes, order_log, started, machine):
    b, r = tools  # bulwark slot, restic slot
    g, m = info["generated"], info["mutation"]
    L = []
    L.append("# Bulwark vs restic: backup and restore (%s)" % args.size)
    L.append("")
    L.append("- date: %s (harness took %.0f min)" % (started.strftime("%Y-%m-%d %H:%M %Z").strip(),
                                                     (time.time() - started.timestamp()) / 60))
    L.append("- machine: nproc %s, %s, %s RAM, Linux %s" % (machine["nproc"], machine["cpu"], machine["ram"], machine["kernel"]))
    L.append("- load average (1 min) before / after the runs: %.2f / %.2f%s" % (
        args.load_before, os.getloadavg()[0], " — **machine was busy: numbers are noisier**" if args.load_before > 0.5 else ""))
    L.append("- bulwark: `%s` — %s" % (b.binary, b.version()))
    if b.env_style != "bulwark":
        L.append("  - **the bulwark column runs `%s` with %s-style env vars: harness test, not a Bulwark result**"
                 % (b.binary, b.env_style))
    L.append("- restic: `%s` — %s" % (r.binary, r.version()))
    L.append("- data set: %s requested (seed %d): %s in %d files, largest %s" % (
        args.size, args.seed, gen_data.fmt_bytes(g["bytes"]), g["files"], gen_data.fmt_bytes(g["largest"])))
    for k, v in g["categories"].items():
        L.append("  - %s: %d files, %s (%.0f %%)" % (k, v["files"], gen_data.fmt_bytes(v["bytes"]), 100 * v["bytes"] / g["bytes"]))
    L.append("  - %d %% change: %s changed (%.1f %%): region overwritten in %d files, %d logs appended, "
             "%d small files rewritten, %d deleted, %d files added" % (
                 MUTATE_PERCENT, gen_data.fmt_bytes(m["changed_bytes"]), 100 * m["changed_bytes"] / m["total_before"],
                 m["overwritten_files"], m["appended_logs"], m["rewritten_small"], m["deleted_small"], m["new_files"]))
    L.append("- method: %d runs per tool, order alternating between runs (%s); fresh repository and cache dir "
             "per tool and run; default settings of both tools; warm page cache (caches can't be dropped here; "
             "the trees are read once before run 1); every restore verified (size + SHA-256 of every file)"
             % (args.runs, "; ".join(order_log)))
    L.append("")
    L.append("| step | bulwark median s | restic median s | ratio time (bulwark/restic) "
             "| bulwark peak RSS MiB (median) | restic peak RSS MiB (median) | ratio RSS |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for s in STEPS:
        bt, rt = median([x["wall"] for x in results[b.name][s]]), median([x["wall"] for x in results[r.name][s]])
        bm, rm = median([x["rss"] for x in results[b.name][s]]), median([x["rss"] for x in results[r.name][s]])
        L.append("| %s | %.2f | %.2f | %s | %.0f | %.0f | %s |" % (s, bt, rt, ratio(bt, rt), bm, rm, ratio(bm, rm)))
    bs, rs = median([x[0] for x in sizes[b.name]]), median([x[0] for x in sizes[r.name]])
    L.append("| repo size on disk after last backup (MiB, median) | %.1f | %.1f | %s | | | |" % (mib(bs), mib(rs), ratio(bs, rs)))
    L.append("")
    L.append("Ratios are bulwark / restic: below 1.00 means Bulwark is faster (or smaller). "
             "Medians of %d runs; with 3 runs on a 2-core machine, differences under ~15 %% are noise (restic vs itself varied that much)." % args.runs)
    L.append("")
    L.append("## Raw runs")
    L.append("")
    L.append("| run | position | tool | step | wall s | peak RSS MiB | user s | sys s |")
    L.append("|---:|---:|---|---|---:|---:|---:|---:|")
    for run_no, pos, tool in [(i + 1, p + 1, t) for i in range(args.runs)
                              for p, t in enumerate(tools if i % 2 == 0 else tools[::-1])]:
        for s in STEPS:
            x = results[tool.name][s][run_no - 1]
            L.append("| %d | %d | %s | %s | %.2f | %.0f | %.2f | %.2f |" % (run_no, pos, tool.name, s, x["wall"], x["rss"], x["user"], x["sys"]))
        alloc, apparent = sizes[tool.name][run_no - 1]
        L.append("| %d | %d | %s | repo size MiB on disk (apparent) | %.1f (%.1f) | | | |" % (run_no, pos, tool.name, mib(alloc), mib(apparent)))
    L.append("")
    return "\n".join(L)


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2G", help="data-set size, e.g. 200M, 2G (default 2G)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1, help="data-set seed (the change uses seed+1)")
    ap.add_argument("--bulwark-bin", default=os.path.join(ROOT, "target", "release", "bulwark"))
    ap.add_argument("--restic-bin", default=shutil.which("restic") or "/usr/bin/restic")
    ap.add_argument("--bulwark-env", choices=["auto", "bulwark", "restic"], default="auto",
                    help="env var names for the bulwark column (auto: restic's if the binary is named restic*)")
    ap.add_argument("--workdir", default="/tmp/bulwark-bench", help="data, repositories, restores, logs")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "restore-backup-%s.md" % datetime.date.today().isoformat()))
    ap.add_argument("--jobs", type=int, default=0, help="processes for data generation (default: CPUs)")
    ap.add_argument("--keep", action="store_true", help="keep repositories and restored trees of every run")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    size = gen_data.parse_size(args.size)

    for label, path in (("bulwark", args.bulwark_bin), ("restic", args.restic_bin)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            hint = BUILD_HINT if label == "bulwark" else "install restic or pass --restic-bin"
            raise SystemExit("%s binary not found at %s: %s" % (label, path, hint))
    env_style = args.bulwark_env
    if env_style == "auto":
        env_style = "restic" if os.path.basename(args.bulwark_bin).startswith("restic") else "bulwark"
    tools = [
        Tool("bulwark", os.path.abspath(args.bulwark_bin), env_style, [["--version"], ["version"]]),
        Tool("restic", os.path.abspath(args.restic_bin), "restic", [["version"], ["--version"]]),
    ]
    print("bulwark: %s (%s env vars)   restic: %s" % (tools[0].binary, env_style, tools[1].binary), flush=True)

    started = datetime.datetime.now().astimezone()
    args.load_before = os.getloadavg()[0]
    if args.load_before > 0.5:
        print("warning: load average %.2f: something else is running; results will be noisy" % args.load_before,
              file=sys.stderr)
    wd = Workdir(args.workdir)
    free = shutil.disk_usage(os.path.dirname(wd.path) if not os.path.exists(wd.path) else wd.path).free
    if free < 4.5 * size:
        print("warning: %s free under %s; a run needs about 4.5x the data size (data, changed copy, repo, restore)"
              % (gen_data.fmt_bytes(free), wd.path), file=sys.stderr)
    info = wd.prepare(size, args.seed, args.jobs)
    expected = json.load(open(wd.expected_json))
    print("warming the page cache ...", flush=True)
    warm(wd.orig)
    warm(wd.mut)

    pw = os.path.join(wd.path, "password")
    with open(pw, "w") as f:
        f.write("bulwark-bench password\n")
    runs_dir = os.path.join(wd.path, "runs")
    if os.path.exists(runs_dir):
        shutil.rmtree(runs_dir)

    results = {t.name: {s: [] for s in STEPS} for t in tools}
    sizes = {t.name: [] for t in tools}
    order_log = []
    try:
        for i in range(args.runs):
            order = tools if i % 2 == 0 else tools[::-1]
            order_log.append("run %d: %s" % (i + 1, " → ".join(t.name for t in order)))
            for t in order:
                base = os.path.join(runs_dir, "run%d-%s" % (i + 1, t.name))
                repo, cache, target, logs = (os.path.join(base, n) for n in ("repo", "cache", "restore", "logs"))
                os.makedirs(cache)
                os.makedirs(logs)
                env = t.env(repo, pw, cache)
                cmds = t.commands(wd.data, target)
                res = {}
                for n, s in enumerate(STEPS):
                    if s == "first backup":
                        wd.activate(wd.orig)
                    elif s == "backup after 5 % change":
                        wd.activate(wd.mut)
                    if s == "full restore":
                        sizes[t.name].append(disk_usage(repo))
                        wd.park()  # restore must not read the source
                    log = os.path.join(logs, "%d-%s.log" % (n + 1, s.replace(" ", "-").replace("%", "pct")))
                    res[s] = run_step(cmds[s], env, wd.path, log)
                    results[t.name][s].append(res[s])
                    print("  run %d/%d %-8s %-24s %8.2f s %7.0f MiB" % (i + 1, args.runs, t.name, s, res[s]["wall"], res[s]["rss"]),
                          flush=True)
                n_files = verify(expected, restored_root(target, wd.data), "%s run %d" % (t.name, i + 1))
                print("  run %d/%d %-8s restore verified: %d files identical; repo %.1f MiB" % (
                    i + 1, args.runs, t.name, n_files, mib(sizes[t.name][-1][0])), flush=True)
                if not args.keep:
                    shutil.rmtree(repo)
                    shutil.rmtree(target)
                    shutil.rmtree(cache)
    finally:
        wd.park()

    report = build_report(args, tools, info, results, sizes, order_log, started, machine_info())
    print()
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print("report written to %s; step logs under %s" % (args.out, runs_dir))


if __name__ == "__main__":
    main()
