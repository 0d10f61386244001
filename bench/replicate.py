#!/usr/bin/env python3
"""`bulwark replicate` vs `rclone sync`: copying a repository offsite, side by side.

    cargo build --release -p bulwark --features s3    # replicate.py builds nothing
    python3 bench/replicate.py --parts copy-local,copy-s3,noop10k-local --size 200M   # quick: ~1 min
    python3 bench/replicate.py --size 500M --runs 3 --rclone-checksum      # the committed report: ~8 min

(plus ~2 min once to build the source repository; the 10 000 small files to
moto, noop10k-s3, take ~5 of the 8 minutes.)

The source is a hub data directory, WORKDIR/hub, holding one real restic-format
repository at WORKDIR/hub/bench/repo: restic 0.14 backs up the deterministic
data set of gen_data.py (--size, --seed), then the same tree after a 5 %
change (two snapshots). It is built once and reused while size and seed match.
A second hub data directory, WORKDIR/hub10k, holds a synthetic repository of
--small-files files (default 10 000): small random files named by the SHA-256
of their content under data/xx/, plus keys, index, snapshots and a config.

Cases, each run --runs times with the tools in alternating order (run 1:
bulwark then rclone, run 2: rclone then bulwark, ...):

  (a) full copy to an empty local directory:
      `bulwark -c CFG replicate --target usb`  vs  `rclone sync HUB TARGET`
  (b) full copy to a fresh bucket of a moto_server on 127.0.0.1 (started here,
      one bucket per tool and run): `bulwark ... replicate --target moto`
      vs `rclone sync HUB moto:BUCKET`
  (c) the same command again when nothing changed (no-op), after (a) and (b)
  (d) no-op on the synthetic 10 000-file repository, already fully copied
      (once per tool, timed and reported as the initial copy) to a local
      directory and to moto.

Every copy is checked: the target must hold exactly the source's files (names
and sizes; bulwark's empty `keys/` marker object on S3 is ignored and counted),
and on a local target every file's SHA-256 must match its name (config: same
bytes as the source). A no-op is checked to have written nothing (names, sizes,
mtimes / ETags unchanged). Per measurement: wall time (monotonic clock), the
child's peak RSS (wait4 ru_maxrss), user/sys CPU, and for S3 the CPU that
moto_server spent meanwhile. Writes a Markdown report (medians, ratios
bulwark/rclone, raw runs) to stdout and --out. Logs stay under WORKDIR/runs/.

Both tools run with their default settings (bulwark: 4 parallel copies;
rclone: 4 transfers, 8 checkers, size+modtime comparison). rclone gets its S3
remote from environment variables (provider Other, RCLONE_S3_NO_HEAD=true) and
an empty --config; AWS_CA_BUNDLE is unset for every tool. --rclone-checksum
adds `rclone sync --checksum` as a third tool. The harness never runs git.
"""

import argparse
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_data  # noqa: E402
from run import SCRUB_PREFIXES, SCRUB_VARS, StepFailed, run_step, warm  # noqa: E402
from hub import f0, f1, f2, free_port, machine_info, med, proc_stats, ratio, tail  # noqa: E402

MARKER = ".bulwark-bench-replicate"  # marks a workdir this harness may wipe
MIB = 1 << 20
MB = 1_000_000
REPO = "bench/repo"     # repository path inside the hub data dir (source of (a)-(c))
SMALL = "bench/small"   # the synthetic many-file repository (d)
SMALL_VERSION = 1       # bump when the synthetic repository's bytes change
MUTATE_PERCENT = 5
GOAL_NOOP_10K_S = 1.0
S3_KEY = S3_SECRET = "bench"
BUILD_HINT = ("build it with: cargo build --release -p bulwark --features s3  "
              "(replicate.py builds nothing; without --features s3 the moto cases fail)")
PARTS = ["copy-local", "copy-s3", "noop10k-local", "noop10k-s3"]
CASES = [  # (key, label in the report)
    ("full-local", "(a) full copy → local dir"),
    ("noop-local", "(c) no-op → local dir"),
    ("full-s3", "(b) full copy → moto (S3)"),
    ("noop-s3", "(c) no-op → moto (S3)"),
    ("noop10k-local", "(d) no-op, 10k-file repo → local dir"),
    ("noop10k-s3", "(d) no-op, 10k-file repo → moto (S3)"),
]
SETUPS = [
    ("setup10k-local", "(d) initial copy of the 10k-file repo → local dir (once)"),
    ("setup10k-s3", "(d) initial copy of the 10k-file repo → moto (S3) (once)"),
]


REQUEST_LINE = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) [^"]*HTTP/1\.[01]" \d{3}')


class HarnessError(Exception):
    pass


def scrubbed_env():
    """The inherited environment without anything that could change a tool's behaviour."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(SCRUB_PREFIXES + ("RCLONE_", "AWS_")) and k not in SCRUB_VARS}


def version_of(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    out = (p.stdout or p.stderr).strip()
    return out.splitlines()[0] if p.returncode == 0 and out else "unknown"


# --------------------------------------------------------------------------- moto_server


class Moto:
    """moto_server on a free loopback port; plain unsigned HTTP requests (moto accepts them) for setup."""

    def __init__(self, binary, log):
        self.binary, self.log = binary, log
        for _ in range(3):
            self.port = free_port()
            self.logf = open(log, "ab")
            cmd = [binary, "-H", "127.0.0.1", "-p", str(self.port)]
            self.logf.write(("$ %s\n" % " ".join(cmd)).encode())
            self.logf.flush()
            env = scrubbed_env()
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.logf,
                                         stderr=subprocess.STDOUT)
            if self._wait_ready(60):
                return
            self.logf.close()
            if "address already in use" not in tail(log).lower():
                break
        raise HarnessError("moto_server did not start on 127.0.0.1:%d\n--- last lines of %s ---\n%s"
                           % (self.port, log, tail(log)))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.request("GET", "/")[0] == 200:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        self.proc.kill()
        self.proc.wait()
        return False

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def alive(self):
        if self.proc.poll() is not None:
            raise HarnessError("moto_server exited (exit %s)\n--- last lines of %s ---\n%s"
                               % (self.proc.returncode, self.log, tail(self.log)))

    def cpu(self):
        self.alive()
        return proc_stats(self.proc.pid)["cpu"]

    def create_bucket(self, name):
        self.alive()
        status, body = self.request("PUT", "/" + name)
        if status != 200:
            raise HarnessError("creating bucket %s: HTTP %d %r" % (name, status, body[:300]))

    def reset(self):
        """Drops every bucket (frees moto's memory between runs)."""
        self.alive()
        status, body = self.request("POST", "/moto-api/reset")
        if status != 200:
            raise HarnessError("moto reset: HTTP %d %r" % (status, body[:300]))

    def listing(self, bucket):
        """key -> (size, etag, last-modified) of every object (ListObjectsV2, paged)."""
        out, token = {}, None
        while True:
            q = {"list-type": "2", "max-keys": "1000"}
            if token:
                q["continuation-token"] = token
            status, body = self.request("GET", "/%s?%s" % (bucket, urllib.parse.urlencode(q)))
            if status != 200:
                raise HarnessError("listing bucket %s: HTTP %d %r" % (bucket, status, body[:300]))
            root = ET.fromstring(body)
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for c in root.findall(ns + "Contents"):
                out[c.findtext(ns + "Key")] = (int(c.findtext(ns + "Size")), c.findtext(ns + "ETag"),
                                               c.findtext(ns + "LastModified"))
            if root.findtext(ns + "IsTruncated") != "true":
                return out
            token = root.findtext(ns + "NextContinuationToken")

    def log_offset(self):
        return os.path.getsize(self.log)

    def requests_since(self, offset):
        """Requests moto logged since `offset`, by method, e.g. {'PUT': 60, 'HEAD': 120}."""
        time.sleep(0.2)  # moto logs a request after answering it
        counts = {}
        with open(self.log, "rb") as f:
            f.seek(offset)
            for line in f.read().decode(errors="replace").splitlines():
                m = REQUEST_LINE.search(line)
                if m:
                    counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        return counts

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


# --------------------------------------------------------------------------- tools


class Tool:
    """kind 'bulwark' (bulwark replicate) or 'rclone' (rclone sync [extra])."""

    def __init__(self, name, kind, binary, extra=()):
        self.name, self.kind, self.binary, self.extra = name, kind, binary, list(extra)

    def command(self, hub, target, cfg, rclone_conf, moto):
        """target: ('local', dir) or ('s3', bucket). Writes bulwark's config to `cfg`."""
        kind, where = target
        if self.kind == "bulwark":
            name = "usb" if kind == "local" else "moto"
            with open(cfg, "w") as f:
                f.write('[hub]\ndata = "%s"\n\n[targets.%s]\n' % (hub, name))
                if kind == "local":
                    f.write('url = "%s"\nmedium = "removable"\noffsite = false\n' % where)
                else:
                    f.write('url = "s3:%s/%s"\nmedium = "cloud"\noffsite = true\n' % (moto.endpoint, where))
            return [self.binary, "-c", cfg, "replicate", "--target", name]
        dst = where if kind == "local" else "moto:" + where
        return [self.binary, "--config", rclone_conf, "sync"] + self.extra + [hub, dst]

    def env(self, moto):
        env = scrubbed_env()  # no AWS_CA_BUNDLE, no inherited RCLONE_*/AWS_*/BULWARK_*
        if self.kind == "bulwark":
            env.update(AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET, AWS_EC2_METADATA_DISABLED="true")
        elif moto is not None:
            env.update(RCLONE_CONFIG_MOTO_TYPE="s3", RCLONE_CONFIG_MOTO_PROVIDER="Other",
                       RCLONE_CONFIG_MOTO_ENDPOINT=moto.endpoint, RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=S3_KEY,
                       RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY=S3_SECRET, RCLONE_CONFIG_MOTO_REGION="us-east-1",
                       RCLONE_S3_NO_HEAD="true")
        return env

    def version(self):
        return version_of([self.binary, "--version"] if self.kind == "bulwark" else [self.binary, "version"])


def bucket_name(*parts):
    s = "-".join(parts).lower().replace(" ", "").replace("--", "-")
    s = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in s).strip("-")
    return s[:63]


# --------------------------------------------------------------------------- checking copies


def tree_map(root):
    """relpath -> size of every regular file below root (the layout check)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if os.path.isfile(p) and not os.path.islink(p):
                out[os.path.relpath(p, root)] = st.st_size
    return out


def tree_state(root):
    """relpath -> (size, mtime_ns, inode): to prove a no-op wrote nothing."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            out[os.path.relpath(os.path.join(dirpath, n), root)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def diff_maps(want, got):
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(k for k in want if k in got and got[k] != want[k])
    if not (missing or extra or differ):
        return None
    lines = ["%d missing, %d extra, %d with another size (target has %d files, source %d)"
             % (len(missing), len(extra), len(differ), len(got), len(want))]
    for label, keys in (("missing", missing), ("extra", extra), ("size differs", differ)):
        for k in keys[:5]:
            lines.append("  %s: %s (source %s, target %s)" % (label, k, want.get(k), got.get(k)))
    return "\n".join(lines)


def check_local(src_hub, src_map, target):
    """The target dir must hold exactly the source's files, each hashing to its name. Returns (files, bytes)."""
    got = tree_map(target)
    d = diff_maps(src_map, got)
    if d:
        raise HarnessError("target %s is not a copy of the source: %s" % (target, d))
    bad = []
    for rel in got:
        p = os.path.join(target, rel)
        base = os.path.basename(rel)
        if base == "config":
            ok = open(p, "rb").read() == open(os.path.join(src_hub, rel), "rb").read()
        else:
            ok = sha256_file(p) == base
        if not ok:
            bad.append(rel)
    if bad:
        raise HarnessError("target %s: %d file(s) with wrong content, e.g. %s" % (target, len(bad), bad[:3]))
    return len(got), sum(got.values())


def check_s3(moto, bucket, src_map):
    """The bucket must hold exactly the source's files (names + sizes); 'dir/' markers are counted apart."""
    listing = moto.listing(bucket)
    markers = sorted(k for k in listing if k.endswith("/"))
    got = {k: v[0] for k, v in listing.items() if not k.endswith("/")}
    d = diff_maps(src_map, got)
    if d:
        raise HarnessError("bucket %s is not a copy of the source: %s" % (bucket, d))
    return len(got), sum(got.values()), markers, listing


# --------------------------------------------------------------------------- source repositories


def claim(wd):
    if os.path.isdir(wd) and os.listdir(wd) and not os.path.exists(os.path.join(wd, MARKER)):
        raise SystemExit("workdir %s is not empty and has no %s marker: refusing to use it (pick another --workdir)"
                         % (wd, MARKER))
    os.makedirs(wd, exist_ok=True)
    open(os.path.join(wd, MARKER), "w").close()


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def composition(repo_dir):
    """Per restic file type: files and bytes."""
    out = {}
    for rel, size in tree_map(repo_dir).items():
        t = rel.split(os.sep)[0] if os.sep in rel else rel
        c = out.setdefault(t, {"files": 0, "bytes": 0})
        c["files"] += 1
        c["bytes"] += size
    return out


def prepare_repo(wd, size, seed, jobs, restic, pw):
    """WORKDIR/hub/bench/repo: restic init + backup of the data set + backup after a 5 % change; reused."""
    hub = os.path.join(wd, "hub")
    repo = os.path.join(hub, REPO)
    info_path = os.path.join(wd, "repo.json")
    want = {"size": size, "seed": seed, "generator_version": gen_data.GENERATOR_VERSION,
            "mutate_percent": MUTATE_PERCENT, "restic": version_of([restic, "version"])}
    info = load_json(info_path)
    if info and info.get("key") == want and os.path.exists(os.path.join(repo, "config")):
        print("reusing source repository %s (%s, seed %d)" % (repo, gen_data.fmt_bytes(size), seed), flush=True)
        return hub, info
    for p in (hub, info_path):
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    data, cache, logs = (os.path.join(wd, n) for n in ("data", "restic-cache", "setup-logs"))
    for p in (data, cache, logs):
        shutil.rmtree(p, ignore_errors=True)
    os.makedirs(logs)
    print("generating %s data set (seed %d) in %s ..." % (gen_data.fmt_bytes(size), seed, data), flush=True)
    gen = gen_data.generate(size, data, seed, jobs)
    env = scrubbed_env()
    env.update(RESTIC_REPOSITORY=repo, RESTIC_PASSWORD_FILE=pw, XDG_CACHE_HOME=cache)
    print("restic init + backup into %s ..." % repo, flush=True)
    try:
        run_step([restic, "init"], env, wd, os.path.join(logs, "1-init.log"))
        b1 = run_step([restic, "backup", "--host", "bench", data], env, wd, os.path.join(logs, "2-backup.log"))
        mut = gen_data.mutate(data, MUTATE_PERCENT, seed + 1)
        b2 = run_step([restic, "backup", "--host", "bench", data], env, wd, os.path.join(logs, "3-backup-changed.log"))
    except StepFailed as e:
        raise SystemExit("building the source repository failed: %s" % e)
    shutil.rmtree(data)
    shutil.rmtree(cache)
    if os.listdir(os.path.join(repo, "locks")):
        raise SystemExit("restic left a lock in %s" % repo)
    info = {"key": want, "generated": gen, "mutation": mut, "backup_s": [b1["wall"], b2["wall"]],
            "composition": composition(repo)}
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1)
    return hub, info


def prepare_small(wd, n_files, seed):
    """WORKDIR/hub10k/bench/small: a synthetic repository of n_files small files with correct names."""
    hub = os.path.join(wd, "hub10k")
    repo = os.path.join(hub, SMALL)
    info_path = os.path.join(wd, "small.json")
    want = {"files": n_files, "seed": seed, "version": SMALL_VERSION}
    info = load_json(info_path)
    if info and info.get("key") == want and os.path.exists(os.path.join(repo, "config")):
        print("reusing %d-file synthetic repository %s" % (n_files, repo), flush=True)
        return hub, info
    shutil.rmtree(hub, ignore_errors=True)
    print("writing a %d-file synthetic repository to %s ..." % (n_files, repo), flush=True)
    rng = random.Random(gen_data.derive("replicate-small", seed, n_files))
    for t in ("keys", "locks", "snapshots", "index", "data"):
        os.makedirs(os.path.join(repo, t))
    for i in range(256):
        os.makedirs(os.path.join(repo, "data", "%02x" % i))
    n_keys, n_index, n_snap = 1, max(1, n_files // 300), max(1, n_files // 500)
    n_data = max(1, n_files - 1 - n_keys - n_index - n_snap)

    def put(tpe, lo, hi):
        b = rng.randbytes(rng.randint(lo, hi))
        name = hashlib.sha256(b).hexdigest()
        d = os.path.join(repo, tpe, name[:2]) if tpe == "data" else os.path.join(repo, tpe)
        with open(os.path.join(d, name), "wb") as f:
            f.write(b)

    with open(os.path.join(repo, "config"), "wb") as f:
        f.write(rng.randbytes(155))  # the size of a restic config; content is opaque to the mirror
    for _ in range(n_keys):
        put("keys", 440, 460)
    for _ in range(n_data):
        put("data", 512, 4096)
    for _ in range(n_index):
        put("index", 1024, 16384)
    for _ in range(n_snap):
        put("snapshots", 250, 400)
    info = {"key": want, "composition": composition(repo)}
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1)
    return hub, info


# --------------------------------------------------------------------------- measuring


def copied_line(log):
    """bulwark's summary line ('... N file(s) copied (X), M already there'), if any."""
    try:
        for line in open(log, errors="replace"):
            if "file(s) copied" in line:
                return line.split(": ", 1)[-1].strip()
    except OSError:
        pass
    return ""


def measure(tool, cmd, env, cwd, log, moto):
    """Runs one command; returns run_step's numbers plus moto's CPU seconds meanwhile. Raises HarnessError."""
    os.sync()  # the previous measurement's dirty pages are not this one's to write back
    cpu0 = moto.cpu() if moto else None
    off = moto.log_offset() if moto else None
    try:
        r = run_step(cmd, env, cwd, log)
    except StepFailed as e:
        msg = str(e)
        if moto:
            try:
                moto.alive()
            except HarnessError as d:
                msg += "\n" + str(d)
        raise HarnessError(msg)
    r["moto_cpu"] = moto.cpu() - cpu0 if moto else None
    r["requests"] = moto.requests_since(off) if moto else None
    r["summary"] = copied_line(log) if tool.kind == "bulwark" else ""
    return r


class Bench:
    def __init__(self, args, tools):
        self.args, self.tools = args, tools
        self.res = {c: {t.name: [] for t in tools} for c, _ in CASES + SETUPS}
        self.raw = []        # (run, pos, case, tool, result-or-None, check text)
        self.failures = []
        self.moto = None

    def record(self, run, pos, case, tool, r, check):
        self.res[case][tool.name].append(r)
        self.raw.append((run, pos, case, tool.name, r, check))
        if r is None:
            print("  run %s %-16s %-18s FAILED" % (run, tool.name, case), flush=True)
        else:
            print("  run %s %-16s %-18s %8.2f s %6.0f MiB  %s %s" % (run, tool.name, case, r["wall"], r["rss"], check,
                                                                   r.get("summary", "")), flush=True)

    def fail(self, what, e):
        self.failures.append({"what": what, "msg": str(e)})
        print("  %s FAILED:\n%s" % (what, e), flush=True)

    def target_for(self, base, kind, tool, label):
        if kind == "local":
            return ("local", os.path.join(base, "target"))
        return ("s3", bucket_name(label, tool.name))

    def check(self, kind, target, src_hub, src_map):
        if kind == "local":
            n, b = check_local(src_hub, src_map, target[1])
            return "ok: %d files, %.1f MiB, content verified" % (n, b / MIB), None
        n, b, markers, listing = check_s3(self.moto, target[1], src_map)
        return ("ok: %d objects, %.1f MiB%s" % (n, b / MIB, ", + %d empty marker %s" % (
            len(markers), ", ".join("`%s`" % m for m in markers)) if markers else "")), listing

    def state(self, kind, target):
        return tree_state(target[1]) if kind == "local" else self.moto.listing(target[1])

    def noop_verdict(self, run, pos, case, tool, kind, target, before, r):
        """A no-op must leave the target as it was and (on S3) send no write request."""
        changed = self.state(kind, target) != before
        writes = sum(n for m, n in (r.get("requests") or {}).items() if m in ("PUT", "POST", "DELETE"))
        if changed or writes:
            self.record(run, pos, case, tool, r, "**the no-op wrote to the target**")
            self.failures.append({"what": "run %s %s %s: the no-op wrote to the target" % (run, case, tool.name),
                                  "msg": "target listing changed: %s; write requests to moto: %d" % (changed, writes)})
        else:
            self.record(run, pos, case, tool, r, "ok, target untouched")

    def copy_part(self, kind, src_hub, src_map):
        """(a)/(b) + (c): per run and tool a full copy into a fresh target, then the same command again."""
        full, noop = "full-" + kind, "noop-" + kind
        for i in range(self.args.runs):
            order = self.tools if i % 2 == 0 else self.tools[::-1]
            for pos, t in enumerate(order):
                base = os.path.join(self.args.runs_dir, "run%d-copy-%s-%s" % (i + 1, kind, t.name.replace(" ", "")))
                os.makedirs(os.path.join(base, "logs"))
                target = self.target_for(base, kind, t, "r%d" % (i + 1))
                moto = self.moto if kind == "s3" else None
                try:
                    if kind == "s3":
                        self.moto.create_bucket(target[1])
                    cmd = t.command(src_hub, target, os.path.join(base, "bulwark.toml"), self.args.rclone_conf, moto)
                    env = t.env(moto)
                    r = measure(t, cmd, env, base, os.path.join(base, "logs", "1-full.log"), moto)
                    check, _ = self.check(kind, target, src_hub, src_map)
                    self.record(i + 1, pos + 1, full, t, r, check)
                except HarnessError as e:
                    self.record(i + 1, pos + 1, full, t, None, "FAILED")
                    self.res[noop][t.name].append(None)
                    self.fail("run %d %s %s" % (i + 1, full, t.name), e)
                    continue
                try:
                    before = self.state(kind, target)
                    r = measure(t, cmd, env, base, os.path.join(base, "logs", "2-noop.log"), moto)
                    self.check(kind, target, src_hub, src_map)
                    self.noop_verdict(i + 1, pos + 1, noop, t, kind, target, before, r)
                except HarnessError as e:
                    self.record(i + 1, pos + 1, noop, t, None, "FAILED")
                    self.fail("run %d %s %s" % (i + 1, noop, t.name), e)
                if not self.args.keep:
                    if kind == "local":
                        shutil.rmtree(target[1], ignore_errors=True)
            if kind == "s3" and not self.args.keep:
                self.moto.reset()  # frees the buckets of this run

    def noop10k_part(self, kind, src_hub, src_map):
        """(d): each tool copies the synthetic repository once (timed, reported apart), then N no-op runs."""
        setup, noop = "setup10k-" + kind, "noop10k-" + kind
        moto = self.moto if kind == "s3" else None
        ready = {}
        for t in self.tools:
            base = os.path.join(self.args.runs_dir, "10k-%s-%s" % (kind, t.name.replace(" ", "")))
            os.makedirs(os.path.join(base, "logs"))
            target = self.target_for(base, kind, t, "small")
            try:
                if kind == "s3":
                    self.moto.create_bucket(target[1])
                cmd = t.command(src_hub, target, os.path.join(base, "bulwark.toml"), self.args.rclone_conf, moto)
                env = t.env(moto)
                r = measure(t, cmd, env, base, os.path.join(base, "logs", "0-initial-copy.log"), moto)
                check, _ = self.check(kind, target, src_hub, src_map)
                self.record("setup", 0, setup, t, r, check)
                ready[t.name] = (base, target, cmd, env)
            except HarnessError as e:
                self.record("setup", 0, setup, t, None, "FAILED")
                self.fail("%s %s" % (setup, t.name), e)
        for i in range(self.args.runs):
            order = self.tools if i % 2 == 0 else self.tools[::-1]
            for pos, t in enumerate(order):
                if t.name not in ready:
                    self.res[noop][t.name].append(None)
                    continue
                base, target, cmd, env = ready[t.name]
                try:
                    before = self.state(kind, target)
                    r = measure(t, cmd, env, base, os.path.join(base, "logs", "run%d-noop.log" % (i + 1)), moto)
                    self.noop_verdict(i + 1, pos + 1, noop, t, kind, target, before, r)
                except HarnessError as e:
                    self.record(i + 1, pos + 1, noop, t, None, "FAILED")
                    self.fail("run %d %s %s" % (i + 1, noop, t.name), e)
        # the last no-op left everything in place: check the copies once more
        for name, (base, target, _, _) in ready.items():
            try:
                self.check(kind, target, src_hub, src_map)
            except HarnessError as e:
                self.fail("%s %s after the no-op runs" % (noop, name), e)
            if not self.args.keep and kind == "local":
                shutil.rmtree(target[1], ignore_errors=True)
        if kind == "s3" and not self.args.keep:
            self.moto.reset()


# --------------------------------------------------------------------------- report


def ok_runs(xs):
    return [x for x in xs if x is not None]


def build_report(args, tools, bench, repo_info, small_info, versions, machine, started, src_bytes, small_files, src_files):
    b, r = tools[0], tools[1]
    extra = tools[2:]
    res = bench.res
    L = []
    L.append("# bulwark replicate vs rclone sync (%s repository, %d-file no-op)" % (args.size, args.small_files))
    L.append("")
    L.append("- date: %s (harness took %.0f min)" % (started.strftime("%Y-%m-%d %H:%M %Z").strip(),
                                                     (time.time() - started.timestamp()) / 60))
    L.append("- command: `python3 bench/replicate.py %s`" % " ".join(sys.argv[1:]))
    L.append("- machine: %s cores, %s, %s RAM, Linux %s" % (machine["nproc"], machine["cpu"], machine["ram"],
                                                            machine["kernel"]))
    L.append("- disk of the workdir (`%s`; source and local targets): %s" % (args.workdir, machine["disk"]))
    busy = args.load_before > 0.5 or os.getloadavg()[0] > 1.0
    L.append("- load average (1 min) before / after the runs: %.2f / %.2f%s" % (
        args.load_before, os.getloadavg()[0], " — **machine was busy (other builds share these 2 cores): numbers "
                                               "are noisier**" if busy else ""))
    L.append("- bulwark: `%s` — %s, binary built %s (the harness runs no git: see the binary's date)" % (
        b.binary, versions["bulwark"], datetime.datetime.fromtimestamp(os.path.getmtime(b.binary)).astimezone()
        .strftime("%Y-%m-%d %H:%M %Z")))
    L.append("- rclone: `%s` — %s (default settings: `--transfers 4 --checkers 8`, compares size + modtime)"
             % (r.binary, versions["rclone"]))
    for t in extra:
        L.append("- third column: `rclone sync %s` (same binary)" % " ".join(t.extra))
    L.append("- moto_server: `%s` — moto %s, on 127.0.0.1 (in-memory S3, single Python process; its CPU time per "
             "measurement is in the raw table)" % (args.moto_bin, versions["moto"]))
    L.append("- restic (builds the source repository): `%s` — %s" % (args.restic_bin, versions["restic"]))
    g = repo_info["generated"]
    L.append("- source (a)–(c): hub data dir `WORKDIR/hub`, one restic repository `%s`: restic backup of the "
             "`gen_data.py` data set (%s requested, seed %d: %s in %d files), then of the same tree after a %d %% "
             "change (two snapshots). The repository: %s"
             % (REPO, args.size, args.seed, gen_data.fmt_bytes(g["bytes"]), g["files"], MUTATE_PERCENT,
                ", ".join("%s %d files / %s" % (k, v["files"], gen_data.fmt_bytes(v["bytes"]))
                          for k, v in sorted(repo_info["composition"].items()))))
    L.append("- source (d): hub data dir `WORKDIR/hub10k`, synthetic repository `%s` (seed %d): %s — random "
             "bytes, each file named by its SHA-256 (not decryptable: the mirror never needs the key)"
             % (SMALL, args.seed, ", ".join("%s %d files / %s" % (k, v["files"], gen_data.fmt_bytes(v["bytes"]))
                                           for k, v in sorted(small_info["composition"].items()))))
    L.append("- commands: `bulwark -c CFG replicate --target usb|moto` (CFG: `[hub] data` + one `[targets.NAME]`, "
             "local dir or `s3:http://127.0.0.1:PORT/BUCKET`) vs `rclone --config EMPTY sync HUB_DIR TARGET` "
             "(TARGET: a dir or `moto:BUCKET`, the remote from `RCLONE_CONFIG_MOTO_*` env vars, provider Other, "
             "`RCLONE_S3_NO_HEAD=true`); `AWS_CA_BUNDLE` unset; S3 keys `bench`/`bench`")
    L.append("- method: %d runs; order alternating between runs (run 1: %s; run 2: %s); per tool and run a fresh "
             "empty target dir or bucket; `sync` before every measurement; warm page cache for the source (read "
             "once before run 1); moto reset (all buckets dropped) after each run's (b) and after (d)"
             % (args.runs, " → ".join(t.name for t in tools), " → ".join(t.name for t in tools[::-1])))
    L.append("- checks: after every copy the target holds exactly the source's files (names + sizes; on local "
             "targets every file also re-hashed against its name); after every no-op the target is unchanged "
             "(names, sizes, mtimes and inodes / ETags and LastModified) — a failed check makes the measurement a "
             "failure, left out of the medians")
    L.append("")
    L.append("## Summary")
    L.append("")
    L.append("Medians over the successful runs; ratio = bulwark / rclone: **below 1.00 means Bulwark is faster "
             "(or uses less memory)**.")
    L.append("")
    L.append("| case | bulwark s | rclone s | ratio time | bulwark rate | rclone rate | bulwark peak RSS MiB "
             "| rclone peak RSS MiB | ratio RSS | ok runs bulwark, rclone |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    meds = {}
    for case, label in CASES + SETUPS:
        B, R = ok_runs(res[case][b.name]), ok_runs(res[case][r.name])
        if not res[case][b.name] and not res[case][r.name]:
            continue
        bt, rt = med([x["wall"] for x in B]), med([x["wall"] for x in R])
        bm, rm = med([x["rss"] for x in B]), med([x["rss"] for x in R])
        meds[case] = (bt, rt)
        if case.startswith("full"):
            rate = lambda t: f0(src_bytes / t / MB) + " MB/s" if t == t and t > 0 else ""  # noqa: E731
        elif case.startswith("setup"):
            rate = lambda t: f0(small_files / t) + " files/s" if t == t and t > 0 else ""  # noqa: E731
        else:
            rate = lambda t: ""  # noqa: E731
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d, %d/%d |" % (
            label, f2(bt), f2(rt), f2(ratio(bt, rt)), rate(bt), rate(rt), f0(bm), f0(rm), f2(ratio(bm, rm)),
            len(B), len(res[case][b.name]), len(R), len(res[case][r.name])))
    L.append("")
    if extra:
        for t in extra:
            L.append("`rclone sync %s` (third column), same cases:" % " ".join(t.extra))
            L.append("")
            L.append("| case | %s s | ratio bulwark / it | peak RSS MiB |" % t.name)
            L.append("|---|---:|---:|---:|")
            for case, label in CASES + SETUPS:
                X = ok_runs(res[case].get(t.name, []))
                if not X:
                    continue
                xt = med([x["wall"] for x in X])
                L.append("| %s | %s | %s | %s |" % (label, f2(xt), f2(ratio(meds.get(case, (float("nan"),))[0], xt)),
                                                    f0(med([x["rss"] for x in X]))))
            L.append("")
    L.append("Rate: MB/s (10^6 bytes) of repository copied for full copies, files/s for the initial copies of "
             "the synthetic repository.")
    L.append("")
    L.append("### Goal and requests")
    L.append("")
    bt = meds.get("noop10k-local", (float("nan"), float("nan")))[0]
    B = ok_runs(res["noop10k-local"][b.name])
    if B:
        worst = max(x["wall"] for x in B)
        L.append("- no-op `bulwark replicate` on a %d-file repository, local target, < %.0f s: **%s** — median "
                 "%.2f s, slowest run %.2f s (rclone: %s s)." % (
                     args.small_files, GOAL_NOOP_10K_S, "met" if bt < GOAL_NOOP_10K_S else "NOT met", bt, worst,
                     f2(meds["noop10k-local"][1])))
    else:
        L.append("- no-op on a %d-file repository < %.0f s: not measured." % (args.small_files, GOAL_NOOP_10K_S))
    B = ok_runs(res["noop10k-s3"][b.name])
    if B:
        L.append("- the same to moto (no goal): median %.2f s (rclone: %s s)." % (
            med([x["wall"] for x in B]), f2(meds["noop10k-s3"][1])))
    for case, what in (("setup10k-s3", "initial copy of the %d-file repository" % small_files),
                       ("noop10k-s3", "no-op on the %d-file repository" % small_files),
                       ("full-s3", "full copy of `%s` (%d files)" % (REPO, src_files))):
        parts = []
        for t in tools:
            X = [x for x in ok_runs(res[case].get(t.name, [])) if x.get("requests") is not None]
            if X:
                q = X[-1]["requests"]
                parts.append("%s %d (%s)" % (t.name, sum(q.values()), ", ".join("%s %d" % kv for kv in sorted(q.items()))))
        if parts:
            L.append("- requests to moto, %s: %s." % (what, "; ".join(parts)))
    if bench.failures:
        L.append("- **%d measurement(s) or check(s) failed** (see Failures below); medians leave them out."
                 % len(bench.failures))
    L.append("")
    L.append("## What each tool does (not the same work)")
    L.append("")
    L.append("- **Bulwark** lists the source and the target per file type, then copies the `config` first "
             "(or, if the target has one, reads and compares it: a different repository there stops the run), then "
             "`keys`, `data`, `index`, `snapshots` in that order, each phase finished before the next starts (a "
             "snapshot never appears before the packs it needs), 4 files at a time. Every file is SHA-256-hashed "
             "while it streams and refused if it doesn't hash to its name; `locks` are never copied; nothing is ever "
             "deleted or overwritten at the target. A local target gets each file written to a temporary name, "
             "fsynced, hard-linked to its name and the directory fsynced (crash-safe), and all 256 `data/xx` "
             "directories are created up front. On S3 a file up to 32 MiB is read into memory, hashed "
             "and sent in one PUT with `If-None-Match: *` when the server honours it (probed once per store; "
             "otherwise a HEAD before the PUT refuses overwrites); above 32 MiB a multipart upload of 16 MiB "
             "parts with a HEAD before completing it; "
             "`create_repo` writes an empty `keys/` marker object. A no-op lists both sides and reads the "
             "target's `config` to compare it.")
    L.append("- **rclone sync** walks both trees and compares each file by size and modification time (default), "
             "copies what differs with 4 transfers and 8 checkers, and deletes at the target what the source no "
             "longer has. It doesn't verify content against the name; a local copy is checked against the source's "
             "MD5 after the transfer (rclone's default hash check), and is not fsynced. On S3 (`RCLONE_S3_NO_HEAD=true`) "
             "it doesn't HEAD after an upload and sends every file below 200 MiB in one PUT "
             "(`--s3-upload-cutoff`), but a no-op needs the modtime it stored in each object's metadata, "
             "which the listing doesn't return: one HEAD per object. It copies `locks` too and knows nothing about "
             "the order of a repository's files (a snapshot can land before its packs).")
    if extra:
        L.append("- **rclone sync --checksum** compares size + hash instead of modtime: on S3 the listing's ETag "
                 "(MD5 for single-part uploads) against an MD5 of every source file, which it reads; no HEADs.")
    L.append("- With %d runs on a shared 2-core machine, differences under ~15 %% are noise; short measurements "
             "(well under a second) are dominated by process start-up." % args.runs)
    L.append("")
    L.append("## Raw runs")
    L.append("")
    L.append("| run | pos | case | tool | wall s | peak RSS MiB | user s | sys s | moto CPU s | requests to moto "
             "| bulwark's summary | check |")
    L.append("|---|---:|---|---|---:|---:|---:|---:|---:|---|---|---|")
    for run, pos, case, tool, x, check in bench.raw:
        if x is None:
            L.append("| %s | %s | %s | %s | FAILED | | | | | | | %s |" % (run, pos or "", case, tool, check))
            continue
        reqs = x.get("requests")
        reqs = ", ".join("%s %d" % (m, n) for m, n in sorted(reqs.items())) if reqs else ("none" if reqs == {} else "")
        L.append("| %s | %s | %s | %s | %.2f | %.0f | %.2f | %.2f | %s | %s | %s | %s |" % (
            run, pos or "", case, tool, x["wall"], x["rss"], x["user"], x["sys"],
            f1(x["moto_cpu"]) if x["moto_cpu"] is not None else "", reqs, x["summary"], check))
    L.append("")
    if bench.failures:
        L.append("## Failures")
        L.append("")
        for f in bench.failures:
            L.append("- %s" % f["what"])
            L.append("")
            L.append("```")
            L.append(f["msg"].strip()[-2500:])
            L.append("```")
        L.append("")
    L.append("Logs (commands, bulwark configs, output): `%s/runs/`." % args.workdir)
    L.append("")
    return "\n".join(L)


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="500M", help="data set backed up into the source repository (default 500M)")
    ap.add_argument("--small-files", type=int, default=10000, help="files in the synthetic repository (default 10000)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated, of: %s" % ", ".join(PARTS))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    ap.add_argument("--bulwark-bin", default=os.path.join(target, "release", "bulwark"),
                    help="default $CARGO_TARGET_DIR/release/bulwark, else target/release/bulwark; " + BUILD_HINT)
    ap.add_argument("--rclone-bin", default=shutil.which("rclone") or "/usr/bin/rclone")
    ap.add_argument("--restic-bin", default=shutil.which("restic") or "/usr/bin/restic")
    ap.add_argument("--moto-bin", default=shutil.which("moto_server") or "moto_server")
    ap.add_argument("--rclone-checksum", action="store_true", help="also measure `rclone sync --checksum`")
    ap.add_argument("--workdir", default="/tmp/bulwark-bench-replicate")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "replicate-%s.md" % datetime.date.today().isoformat()))
    ap.add_argument("--jobs", type=int, default=0, help="processes for data generation (default: CPUs)")
    ap.add_argument("--keep", action="store_true", help="keep every target dir and bucket")
    args = ap.parse_args()
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if args.runs < 1 or not args.parts or set(args.parts) - set(PARTS):
        ap.error("--runs must be ≥ 1 and --parts a list of " + ", ".join(PARTS))
    args.workdir = os.path.abspath(args.workdir)
    size = gen_data.parse_size(args.size)

    for label, path in (("bulwark", args.bulwark_bin), ("rclone", args.rclone_bin), ("restic", args.restic_bin)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise SystemExit("%s binary not found at %s%s" % (label, path, ": " + BUILD_HINT if label == "bulwark" else ""))
    p = subprocess.run([args.bulwark_bin, "replicate", "--help"], capture_output=True, text=True)
    if p.returncode != 0 or "--target" not in p.stdout:
        raise SystemExit("%s has no usable `replicate` subcommand: %s" % (args.bulwark_bin, (p.stdout + p.stderr)[-800:]))
    needs_moto = any(p.endswith("s3") for p in args.parts)
    if needs_moto and not shutil.which(args.moto_bin) and not os.access(args.moto_bin, os.X_OK):
        raise SystemExit("moto_server not found (%s): pip install 'moto[server]', or leave out the s3 parts" % args.moto_bin)

    tools = [Tool("bulwark", "bulwark", os.path.abspath(args.bulwark_bin)),
             Tool("rclone", "rclone", os.path.abspath(args.rclone_bin))]
    if args.rclone_checksum:
        tools.append(Tool("rclone --checksum", "rclone", os.path.abspath(args.rclone_bin), ["--checksum"]))
    versions = {"bulwark": tools[0].version(), "rclone": tools[1].version(),
                "restic": version_of([args.restic_bin, "version"]), "moto": "?"}
    if needs_moto:
        versions["moto"] = version_of([sys.executable, "-c", "import moto; print(moto.__version__)"])
        if versions["moto"] == "unknown":  # moto_server may live in another Python
            versions["moto"] = version_of([args.moto_bin, "--version"])

    started = datetime.datetime.now().astimezone()
    args.load_before = os.getloadavg()[0]
    if args.load_before > 0.5:
        print("warning: load average %.2f: something else is running; results will be noisy" % args.load_before,
              file=sys.stderr)
    claim(args.workdir)
    pw = os.path.join(args.workdir, "password")
    with open(pw, "w") as f:
        f.write("bulwark-bench password\n")
    args.rclone_conf = os.path.join(args.workdir, "rclone.conf")
    open(args.rclone_conf, "w").close()  # no remotes from a file: rclone must not read the user's config
    hub, repo_info = prepare_repo(args.workdir, size, args.seed, args.jobs, args.restic_bin, pw)
    hub10k, small_info = prepare_small(args.workdir, args.small_files, args.seed)
    src_map, small_map = tree_map(hub), tree_map(hub10k)
    src_bytes, small_bytes = sum(src_map.values()), sum(small_map.values())
    print("source: %d files, %s; synthetic: %d files, %s" % (len(src_map), gen_data.fmt_bytes(src_bytes),
                                                          len(small_map), gen_data.fmt_bytes(small_bytes)), flush=True)
    print("warming the page cache ...", flush=True)
    warm(hub)
    warm(hub10k)
    args.runs_dir = os.path.join(args.workdir, "runs")
    if os.path.exists(args.runs_dir):
        shutil.rmtree(args.runs_dir)
    os.makedirs(args.runs_dir)

    bench = Bench(args, tools)
    try:
        if needs_moto:
            bench.moto = Moto(args.moto_bin, os.path.join(args.runs_dir, "moto.log"))
            print("moto_server on %s" % bench.moto.endpoint, flush=True)
        for part in args.parts:
            print("%s ..." % part, flush=True)
            if part == "copy-local":
                bench.copy_part("local", hub, src_map)
            elif part == "copy-s3":
                bench.copy_part("s3", hub, src_map)
            elif part == "noop10k-local":
                bench.noop10k_part("local", hub10k, small_map)
            elif part == "noop10k-s3":
                bench.noop10k_part("s3", hub10k, small_map)
    except HarnessError as e:
        bench.fail("harness (the remaining parts were not run)", e)
    finally:
        if bench.moto:
            bench.moto.stop()

    report = build_report(args, tools, bench, repo_info, small_info, versions, machine_info(args.workdir), started,
                          src_bytes, len(small_map), len(src_map))
    print()
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print("report written to %s; logs under %s" % (args.out, args.runs_dir))
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
