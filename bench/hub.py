#!/usr/bin/env python3
"""`bulwark hub` vs `rclone serve restic`: two restic REST servers, side by side.

    cargo build --release -p bulwark                  # hub.py builds nothing
    python3 bench/hub.py --size 200M --ingest 256M --runs 3    # quick
    python3 bench/hub.py --size 2G --runs 3                    # full

Both servers run on loopback with no authentication, each from a fresh data
directory per measurement, in alternating order between runs (run 1: bulwark
then rclone, run 2: rclone then bulwark, ...). Two parts:

(a) restic backup through the server: the deterministic data set of
    gen_data.py (generated once into --workdir and reused while size and seed
    match). Per server and run: fresh server data dir, fresh restic cache;
    `restic init` then `restic backup` against
    rest:http://127.0.0.1:PORT/bench. Measures restic's wall time, the
    server's CPU seconds (utime+stime from /proc/PID/stat) and its peak RSS
    (VmHWM from /proc/PID/status, read just before the server is stopped).
    Afterwards `restic check` runs on the server's data dir as a local
    repository (server stopped), so what the server stored is verified too.

(b) raw ingest: a load generator (threads + http.client, one keep-alive
    connection per thread, --conns of them) uploads pre-built files of 4-16 MiB
    of random bytes (deterministic seed, held in memory) to
    /bench/data/<sha256> after POST /bench/?create=true, then checks the v2
    listing and reads every file back: 4 Range requests of 64 KiB-1 MiB and one
    full GET per file, every byte compared. Measures write and read MB/s,
    server CPU and peak RSS. Each run also measures the disk's fsync'd write
    speed with `dd if=/dev/zero of=WORKDIR/ddtest bs=1M count=N conv=fsync`.

Writes a Markdown report (medians, ratios bulwark/rclone, goals, raw runs) to
stdout and --out. Server logs stay under WORKDIR/runs/.

`--bulwark-bin /usr/bin/rclone` puts rclone in the bulwark slot too (a
harness test; the report says so).
"""

import argparse
import datetime
import hashlib
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_data  # noqa: E402
from run import SCRUB_PREFIXES, SCRUB_VARS, StepFailed, disk_usage, run_step, warm  # noqa: E402

MARKER = ".bulwark-bench-hub"  # marks a workdir this harness may wipe
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
MB = 1_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
V2 = "application/vnd.x.restic.rest.v2"
REPO = "bench"

GOAL_BACKUP_RATIO = 1.00   # bulwark/rclone restic-backup wall time: never slower
GOAL_WRITE_RATIO = 1.5     # bulwark/rclone raw write MB/s
GOAL_RSS_MB = 100          # hub peak RSS during raw ingest
GOAL_DD_SHARE = 0.80       # hub raw write MB/s / dd conv=fsync MB/s


class HarnessError(Exception):
    pass


def scrubbed_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(SCRUB_PREFIXES) and k not in SCRUB_VARS
            and not k.startswith("RCLONE_")}


def tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------- servers


class Server:
    """A name and how to start it: kind 'bulwark' (bulwark hub) or 'rclone' (rclone serve restic)."""

    def __init__(self, name, binary, kind, rclone_config):
        self.name, self.binary, self.kind, self.rclone_config = name, binary, kind, rclone_config

    def command(self, port, datadir):
        addr = "127.0.0.1:%d" % port
        if self.kind == "bulwark":
            return [self.binary, "hub", "--listen", addr, "--data", datadir, "--no-auth"]
        return [self.binary, "serve", "restic", "--config", self.rclone_config, "--addr", addr, datadir]

    def version(self):
        args = [["--version"]] if self.kind == "bulwark" else [["version"]]
        for a in args:
            try:
                p = subprocess.run([self.binary] + a, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if p.returncode == 0 and p.stdout.strip():
                return p.stdout.strip().splitlines()[0]
        return "unknown"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid):
    """CPU seconds (utime+stime), VmHWM and VmRSS in bytes, thread count of a live process."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    rest = s[s.rfind(")") + 2:].split()  # rest[0] is field 3 (state); utime is field 14, stime 15
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    st = {"cpu": cpu, "hwm": 0, "rss": 0, "threads": 0}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "VmHWM":
                st["hwm"] = int(v.split()[0]) * 1024
            elif k == "VmRSS":
                st["rss"] = int(v.split()[0]) * 1024
            elif k == "Threads":
                st["threads"] = int(v.split()[0])
    return st


class Running:
    """A started server: waits until it accepts connections; stop() returns its final stats."""

    def __init__(self, server, datadir, log):
        self.server, self.datadir, self.log = server, datadir, log
        os.makedirs(datadir, exist_ok=True)
        for attempt in range(3):
            self.port = free_port()
            cmd = server.command(self.port, datadir)
            self.logf = open(log, "ab")
            self.logf.write(("$ %s\n" % " ".join(cmd)).encode())
            self.logf.flush()
            self.started = time.monotonic()
            self.proc = subprocess.Popen(cmd, env=scrubbed_env(), cwd=os.path.dirname(datadir),
                                         stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT)
            if self._wait_ready(30):
                return
            self.logf.close()
            if "address already in use" not in tail(log).lower():
                break
        raise HarnessError("%s did not start listening on 127.0.0.1:%d (exit %s)\n--- last lines of %s ---\n%s"
                           % (server.name, self.port, self.proc.returncode, log, tail(log)))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                self.ready_s = time.monotonic() - self.started
                return True
            except OSError:
                time.sleep(0.05)
        self._kill()
        return False

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def url(self, path=""):
        return "http://127.0.0.1:%d/%s%s" % (self.port, REPO, path)

    def alive(self):
        if self.proc.poll() is not None:
            raise HarnessError("%s server exited unexpectedly (exit %s)\n--- last lines of %s ---\n%s"
                               % (self.server.name, self.proc.returncode, self.log, tail(self.log)))

    def stats(self):
        self.alive()
        return proc_stats(self.proc.pid)

    def stop(self):
        """Reads the stats just before stopping, then SIGTERM (SIGKILL after 10 s). Returns stats + exit info."""
        st = self.stats()
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        status = ru = None
        while time.monotonic() - t0 < 10:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        else:
            self.proc.kill()
            _, status, ru = os.wait4(self.proc.pid, 0)
            st["stop"] = "ignored SIGTERM for 10 s; killed"
        self.proc.returncode = code = os.waitstatus_to_exitcode(status)
        st.setdefault("stop", "%s %.2f s after SIGTERM" % (
            "killed by signal %d" % -code if code < 0 else "exit %d" % code, time.monotonic() - t0))
        st["ru_cpu"] = ru.ru_utime + ru.ru_stime
        st["ru_maxrss"] = ru.ru_maxrss * 1024
        self.logf.close()
        return st


# --------------------------------------------------------------------------- (a) restic backup


def backup_phase(server, restic, base, data, pw):
    srvdata, cache, logs = (os.path.join(base, n) for n in ("server-data", "restic-cache", "logs"))
    os.makedirs(cache)
    os.makedirs(logs)
    os.sync()  # the previous measurement's dirty pages are not this one's to write back
    srv = Running(server, srvdata, os.path.join(logs, "server.log"))
    try:
        env = scrubbed_env()
        env.update(RESTIC_REPOSITORY="rest:" + srv.url("/"), RESTIC_PASSWORD_FILE=pw, XDG_CACHE_HOME=cache)
        cpu0 = srv.stats()["cpu"]
        res = {"ready_s": srv.ready_s}
        res["init"] = run_step([restic, "init"], env, base, os.path.join(logs, "1-init.log"))
        srv.alive()
        res["backup"] = run_step([restic, "backup", "--host", "bench", data], env, base,
                                 os.path.join(logs, "2-backup.log"))
    except StepFailed as e:
        msg = str(e)
        try:
            srv.alive()
        except HarnessError as d:
            msg += "\n" + str(d)
        raise HarnessError(msg)
    finally:
        st = srv.stop() if srv.proc.poll() is None else None
    if st is None:
        srv.alive()  # raises: the server died
    res["server"] = st
    res["server_cpu"] = st["cpu"] - cpu0
    res["ingested"] = disk_usage(srvdata)[1]
    # verify what the server stored: restic check on its data dir as a local repository
    env = scrubbed_env()
    env.update(RESTIC_REPOSITORY=os.path.join(srvdata, REPO), RESTIC_PASSWORD_FILE=pw, XDG_CACHE_HOME=cache)
    try:
        res["check"] = run_step([restic, "check"], env, base, os.path.join(logs, "3-check-local.log"))
        res["check"]["ok"] = True
    except StepFailed as e:
        res["check"] = {"ok": False, "wall": float("nan"), "msg": str(e)}
    return res


# --------------------------------------------------------------------------- (b) raw ingest


def build_files(total, seed):
    """[(sha256 hex, bytes)]: files of 4-16 MiB of random bytes until `total` is reached."""
    rng = random.Random(gen_data.derive("hub-ingest", seed, total))
    files, n = [], 0
    while n < total:
        s = rng.randint(4 * MIB, 16 * MIB)
        b = random.Random(gen_data.derive("hub-ingest-file", seed, len(files))).randbytes(s)
        files.append((hashlib.sha256(b).hexdigest(), b))
        n += s
    return files


def read_plan(files, seed):
    """Per file: 4 random (offset, length) ranges of 64 KiB-1 MiB, then None for a full read."""
    plan = []
    for i, (_, b) in enumerate(files):
        rng = random.Random(gen_data.derive("hub-ranges", seed, i))
        reqs = []
        for _ in range(4):
            ln = min(len(b), rng.randint(64 * KIB, 1 * MIB))
            reqs.append((rng.randrange(0, len(b) - ln + 1), ln))
        reqs.append(None)
        plan.append((i, reqs))
    return plan


class Client:
    """One keep-alive connection; request() returns (status, response, body) or raises HarnessError.

    A request that fails on a reused keep-alive connection because the server had closed it is retried
    once on a fresh connection (counted in Client.reconnects); any other failure is an error.
    """

    reconnects = 0  # over all clients, for the report

    def __init__(self, port):
        self.port = port
        self.conn = None
        self.used = False

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
                self.used = False
            reused = self.used
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                self.used = True
                if r.will_close:
                    self.close()
                return r.status, r, data
            except (http.client.HTTPException, OSError) as e:
                self.close()
                stale = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError))
                if attempt == 2 or not (reused and stale):
                    raise HarnessError("%s %s: %s: %s" % (method, path, type(e).__name__, e))
                Client.reconnects += 1
        raise AssertionError("unreachable")

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None


def parallel(port, conns, items, fn):
    """Runs fn(client, item) over items with `conns` threads; stops at the first error and raises it."""
    lock = threading.Lock()
    it = iter(items)
    errors = []
    count = [0]

    def worker():
        c = Client(port)
        try:
            while not errors:
                with lock:
                    item = next(it, None)
                if item is None:
                    return
                try:
                    n = fn(c, item)
                except HarnessError as e:
                    errors.append(str(e))
                    return
                with lock:
                    count[0] += n
        finally:
            c.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise HarnessError("%d error(s); first: %s" % (len(errors), errors[0]))
    return count[0]


def ingest_phase(server, base, files, plan, conns):
    srvdata, logs = os.path.join(base, "server-data"), os.path.join(base, "logs")
    os.makedirs(logs)
    os.sync()
    srv = Running(server, srvdata, os.path.join(logs, "server.log"))
    res = {"ready_s": srv.ready_s}
    reconnects0 = Client.reconnects
    try:
        c = Client(srv.port)
        status, _, body = c.request("POST", "/%s/?create=true" % REPO)
        if not 200 <= status < 300:
            raise HarnessError("POST /%s/?create=true: HTTP %d %r" % (REPO, status, body[:200]))
        c.close()
        st0 = srv.stats()

        def put(cl, f):
            name, b = f
            status, _, body = cl.request("POST", "/%s/data/%s" % (REPO, name), body=b,
                                         headers={"Content-Type": "application/octet-stream"})
            if not 200 <= status < 300:
                raise HarnessError("POST data/%s (%d bytes): HTTP %d %r" % (name, len(b), status, body[:200]))
            return len(b)

        cpu_t0 = os.times()
        t0 = time.monotonic()
        res["written"] = parallel(srv.port, conns, files, put)
        res["write_s"] = time.monotonic() - t0
        cpu_t1 = os.times()
        st1 = srv.stats()

        # listing (not timed): every file, with its size
        c = Client(srv.port)
        status, _, body = c.request("GET", "/%s/data/" % REPO, headers={"Accept": V2})
        c.close()
        if status != 200:
            raise HarnessError("GET data/ (v2): HTTP %d %r" % (status, body[:200]))
        try:
            listed = {e["name"]: e["size"] for e in json.loads(body)}
        except (ValueError, TypeError, KeyError) as e:
            raise HarnessError("GET data/ (v2): not a v2 listing (%s): %r" % (e, body[:200]))
        want = {n: len(b) for n, b in files}
        if listed != want:
            raise HarnessError("GET data/ (v2): listing differs: %d listed, %d uploaded, %d missing, %d size mismatches"
                               % (len(listed), len(want), len(set(want) - set(listed)),
                                  sum(1 for k in want if k in listed and listed[k] != want[k])))

        def get(cl, p):
            i, reqs = p
            name, b = files[i]
            n = 0
            for r in reqs:
                if r is None:
                    status, _, body = cl.request("GET", "/%s/data/%s" % (REPO, name))
                    if status != 200 or body != b:
                        raise HarnessError("GET data/%s: HTTP %d, %d bytes (want 200, %d identical bytes)"
                                           % (name, status, len(body), len(b)))
                else:
                    off, ln = r
                    status, _, body = cl.request("GET", "/%s/data/%s" % (REPO, name),
                                                 headers={"Range": "bytes=%d-%d" % (off, off + ln - 1)})
                    if status != 206 or memoryview(b)[off:off + ln] != body:
                        raise HarnessError("GET data/%s Range bytes=%d-%d: HTTP %d, %d bytes (want 206, %d identical bytes)"
                                           % (name, off, off + ln - 1, status, len(body), ln))
                n += len(body)
            return n

        t0 = time.monotonic()
        res["read"] = parallel(srv.port, conns, plan, get)
        res["read_s"] = time.monotonic() - t0
        cpu_t2 = os.times()
        res["requests_read"] = sum(len(r) for _, r in plan)

        # not timed, informational: does the server refuse a data file whose name is not its SHA-256?
        c = Client(srv.port)
        status, _, _ = c.request("POST", "/%s/data/%s" % (REPO, "0" * 64), body=b"not the hash of this")
        c.close()
        res["bad_hash_status"] = status
    except HarnessError as e:
        if srv.proc.poll() is not None:  # say so if the server died under the load
            raise HarnessError("%s\n%s server exited during the test (exit %s)\n--- last lines of %s ---\n%s"
                               % (e, server.name, srv.proc.returncode, srv.log, tail(srv.log)))
        raise
    finally:
        st2 = srv.stop() if srv.proc.poll() is None else None
    if st2 is None:
        srv.alive()
    res["server"] = st2
    res["cpu_write"] = st1["cpu"] - st0["cpu"]
    res["cpu_read"] = st2["cpu"] - st1["cpu"]
    res["client_cpu_write"] = (cpu_t1.user + cpu_t1.system) - (cpu_t0.user + cpu_t0.system)
    res["client_cpu_read"] = (cpu_t2.user + cpu_t2.system) - (cpu_t1.user + cpu_t1.system)
    res["reconnects"] = Client.reconnects - reconnects0
    res["stored"] = disk_usage(srvdata)[1]
    res["files"] = len(files)
    return res


def dd_speed(workdir, mib_count):
    path = os.path.join(workdir, "ddtest")
    os.sync()
    t0 = time.monotonic()
    p = subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=%d" % mib_count, "conv=fsync"],
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    os.remove(path)
    if p.returncode != 0:
        raise HarnessError("dd failed: %s" % p.stderr)
    return {"wall": wall, "mbps": mib_count * MIB / wall / MB, "dd_says": p.stderr.strip().splitlines()[-1]}


# --------------------------------------------------------------------------- workdir / data set


def prepare_dataset(wd, size, seed, jobs):
    data, info_path = os.path.join(wd, "data"), os.path.join(wd, "dataset.json")
    want = {"size": size, "seed": seed, "generator_version": gen_data.GENERATOR_VERSION}
    info = None
    if os.path.exists(info_path):
        try:
            info = json.load(open(info_path))
        except ValueError:
            info = None
    if info and info.get("key") == want and os.path.isdir(data):
        print("reusing data set in %s (%s, seed %d)" % (data, gen_data.fmt_bytes(size), seed), flush=True)
        return data, info
    if os.path.exists(data):
        shutil.rmtree(data)
    if os.path.exists(info_path):
        os.remove(info_path)
    print("generating %s data set (seed %d) in %s ..." % (gen_data.fmt_bytes(size), seed, data), flush=True)
    info = {"key": want, "generated": gen_data.generate(size, data, seed, jobs)}
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1)
    return data, info


def claim(wd):
    if os.path.isdir(wd) and os.listdir(wd) and not os.path.exists(os.path.join(wd, MARKER)):
        raise SystemExit("workdir %s is not empty and has no %s marker: refusing to use it (pick another --workdir)"
                         % (wd, MARKER))
    os.makedirs(wd, exist_ok=True)
    open(os.path.join(wd, MARKER), "w").close()


# --------------------------------------------------------------------------- report


def machine_info(workdir):
    first = gen_data.proc_field
    mem = first("/proc/meminfo", "MemTotal")
    try:
        mem = "%.1f GiB" % (int(mem.split()[0]) / (1 << 20))
    except (ValueError, IndexError):
        pass
    disk = "?"
    try:
        p = subprocess.run(["df", "-T", "-B1", workdir], capture_output=True, text=True).stdout.splitlines()[1].split()
        dev, fs, total = p[0], p[1], int(p[2])
        rot = "?"
        base = os.path.basename(dev)
        for cand in (base, base.rstrip("0123456789"), base.split("p")[0]):
            q = "/sys/block/%s/queue/rotational" % cand
            if os.path.exists(q):
                rot = "queue/rotational=%s" % open(q).read().strip()
                break
        disk = "%s, %s, %s (%s)" % (dev, fs, gen_data.fmt_bytes(total), rot)
    except (OSError, IndexError, ValueError):
        pass
    return {"nproc": str(len(os.sched_getaffinity(0))), "cpu": first("/proc/cpuinfo", "model name"), "ram": mem,
            "kernel": platform.release(), "disk": disk}


def git_commit(binary=None):
    """HEAD's short hash, flagged if the work tree is dirty or `binary` is older than HEAD's commit."""
    try:
        h = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %ct", "--abbrev=12"],
                           capture_output=True, text=True).stdout.split()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        out = h[0] + (" (working tree has uncommitted changes)" if dirty else "")
        if binary and os.path.getmtime(binary) < int(h[1]):
            out += " — **the binary is older than this commit: it may not contain it**"
        return out
    except (OSError, IndexError, ValueError):
        return "?"


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def ratio(a, b):
    return a / b if b and a == a and b == b else float("nan")


def f2(x):
    return "–" if x != x else "%.2f" % x


def f1(x):
    return "–" if x != x else "%.1f" % x


def f0(x):
    return "–" if x != x else "%.0f" % x


def yesno(ok):
    if ok is None:
        return "n/a"
    return "**yes**" if ok else "**NO**"


def build_report(args, servers, info, res, dd, order_log, failures, started, machine, restic_version):
    b, r = servers
    L = []
    parts = [p for p in ("backup", "ingest") if p in args.parts]
    L.append("# bulwark hub vs rclone serve restic (%s)" % ", ".join(
        (["restic backup of %s" % args.size] if "backup" in parts else []) +
        (["raw ingest of %s" % args.ingest] if "ingest" in parts else [])))
    L.append("")
    L.append("- date: %s (harness took %.0f min)" % (started.strftime("%Y-%m-%d %H:%M %Z").strip(),
                                                     (time.time() - started.timestamp()) / 60))
    L.append("- command: `python3 bench/hub.py %s`" % " ".join(sys.argv[1:]))
    L.append("- machine: %s cores, %s, %s RAM, Linux %s" % (machine["nproc"], machine["cpu"], machine["ram"], machine["kernel"]))
    L.append("- disk of the workdir (`%s`): %s" % (args.workdir, machine["disk"]))
    L.append("- load average (1 min) before / after the runs: %.2f / %.2f%s" % (
        args.load_before, os.getloadavg()[0],
        " — **machine was busy: numbers are noisier**" if args.load_before > 0.5 else ""))
    L.append("- bulwark: `%s` — %s, git commit %s, binary built %s" % (
        b.binary, b.version(), git_commit(b.binary if b.kind == "bulwark" else None),
        datetime.datetime.fromtimestamp(os.path.getmtime(b.binary)).astimezone().strftime("%Y-%m-%d %H:%M %Z")))
    if b.kind != "bulwark":
        L.append("  - **the bulwark column runs `%s` (%s): harness test, not a Bulwark result**" % (b.binary, b.kind))
    L.append("- rclone: `%s` — %s (`rclone serve restic`, default settings)" % (r.binary, r.version()))
    L.append("- restic (client): `%s` — %s" % (args.restic_bin, restic_version))
    L.append("- servers: loopback only (127.0.0.1), no authentication (`bulwark hub --no-auth`, rclone without "
             "`--htpasswd`), no TLS; fresh server data dir per measurement; all (a) runs first, then all (b) runs; order alternating between runs (%s)"
             % "; ".join(order_log))
    if "backup" in parts:
        g = info["generated"]
        L.append("- (a) data set: %s requested (seed %d): %s in %d files, largest %s" % (
            args.size, args.seed, gen_data.fmt_bytes(g["bytes"]), g["files"], gen_data.fmt_bytes(g["largest"])))
        for k, v in g["categories"].items():
            L.append("  - %s: %d files, %s (%.0f %%)" % (k, v["files"], gen_data.fmt_bytes(v["bytes"]), 100 * v["bytes"] / g["bytes"]))
        L.append("  - per run: fresh restic cache, `restic init`, `restic backup` (timed), server stopped, then "
                 "`restic check` on the server's data dir as a local repository (correctness, not timed against "
                 "anything); warm page cache for the source (read once before run 1)")
    if "ingest" in parts:
        L.append("- (b) raw ingest: %d files of 4–16 MiB random bytes (%s, seed %d, held in memory), POSTed to "
                 "`/bench/data/<sha256>` over %d keep-alive connections; v2 listing checked; then per file 4 Range "
                 "reads of 64 KiB–1 MiB and one full GET, every byte compared (reads come from the page cache)"
                 % (args.n_files, gen_data.fmt_bytes(args.ingest_bytes), args.seed, args.conns))
        L.append("- disk reference: `dd if=/dev/zero of=WORKDIR/ddtest bs=1M count=%d conv=fsync`, once per run"
                 % args.dd_mib)
    L.append("- units: MB = 10^6 bytes (throughput and RSS), MiB/GiB = 2^20/2^30 bytes; `sync` before each measurement")
    L.append("")

    def ok_runs(part, name):
        return [x for x in res[part][name] if x is not None]

    L.append("## Summary")
    L.append("")
    L.append("Medians over the successful runs; ratio = bulwark / rclone.")
    L.append("")
    L.append("| measure | bulwark hub | rclone serve restic | ratio | goal | goal met |")
    L.append("|---|---:|---:|---:|---|---|")
    goals = []
    if "backup" in parts:
        B, R = ok_runs("backup", b.name), ok_runs("backup", r.name)
        bi, ri = med([x["init"]["wall"] for x in B]), med([x["init"]["wall"] for x in R])
        bw, rw = med([x["backup"]["wall"] for x in B]), med([x["backup"]["wall"] for x in R])
        L.append("| (a) restic init, s | %s | %s | %s | | |" % (f2(bi), f2(ri), f2(ratio(bi, ri))))
        ok = None if bw != bw or rw != rw else ratio(bw, rw) <= GOAL_BACKUP_RATIO
        L.append("| (a) restic backup wall time, s | %s | %s | %s | ≤ %.2f (never slower) | %s |"
                 % (f2(bw), f2(rw), f2(ratio(bw, rw)), GOAL_BACKUP_RATIO, yesno(ok)))
        goals.append(("restic backup through the hub is never slower than through rclone", ok,
                      "median backup %s s vs %s s, ratio %s" % (f2(bw), f2(rw), f2(ratio(bw, rw)))))
        pairs = [(x, y) for x, y in zip(res["backup"][b.name], res["backup"][r.name]) if x and y]
        slower = sum(1 for x, y in pairs if x["backup"]["wall"] > y["backup"]["wall"])
        if pairs:
            goals.append(("  run by run", slower == 0, "the hub was slower in %d of %d paired runs (per-run ratios: %s)"
                          % (slower, len(pairs), ", ".join(f2(x["backup"]["wall"] / y["backup"]["wall"]) for x, y in pairs))))
        bc, rc = (med([x["server_cpu"] / (x["ingested"] / GIB) for x in S]) for S in (B, R))
        L.append("| (a) server CPU s per GiB ingested (utime+stime) | %s | %s | %s | | |" % (f2(bc), f2(rc), f2(ratio(bc, rc))))
        bm, rm = (med([x["server"]["hwm"] / MB for x in S]) for S in (B, R))
        L.append("| (a) server peak RSS (VmHWM), MB | %s | %s | %s | | |" % (f0(bm), f0(rm), f2(ratio(bm, rm))))
        bg, rg = (med([x["ingested"] / GIB for x in S]) for S in (B, R))
        L.append("| (a) repository bytes the server stored, GiB | %s | %s | %s | | |" % (f2(bg), f2(rg), f2(ratio(bg, rg))))
        bk = sum(1 for x in B if x["check"]["ok"])
        rk = sum(1 for x in R if x["check"]["ok"])
        L.append("| (a) `restic check` of the stored repository passed | %d / %d | %d / %d | | all pass | %s |"
                 % (bk, len(B), rk, len(R), yesno(bk == len(B) == args.runs)))
    if "ingest" in parts:
        B, R = ok_runs("ingest", b.name), ok_runs("ingest", r.name)
        bw, rw = (med([x["written"] / x["write_s"] / MB for x in S]) for S in (B, R))
        ok = None if bw != bw or rw != rw else ratio(bw, rw) >= GOAL_WRITE_RATIO
        L.append("| (b) raw write, MB/s | %s | %s | %s | ≥ %.1f× rclone | %s |" % (f0(bw), f0(rw), f2(ratio(bw, rw)), GOAL_WRITE_RATIO, yesno(ok)))
        goals.append(("hub raw write ≥ %.1f× rclone's" % GOAL_WRITE_RATIO, ok,
                      "%s vs %s MB/s, ratio %s" % (f0(bw), f0(rw), f2(ratio(bw, rw)))))
        br, rr = (med([x["read"] / x["read_s"] / MB for x in S]) for S in (B, R))
        L.append("| (b) raw read (ranges + full), MB/s | %s | %s | %s | | |" % (f0(br), f0(rr), f2(ratio(br, rr))))
        bm, rm = (med([x["server"]["hwm"] / MB for x in S]) for S in (B, R))
        ok = None if bm != bm else bm < GOAL_RSS_MB
        L.append("| (b) server peak RSS (VmHWM), MB | %s | %s | %s | hub < %d MB | %s |" % (f0(bm), f0(rm), f2(ratio(bm, rm)), GOAL_RSS_MB, yesno(ok)))
        mx = max([x["server"]["hwm"] / MB for x in B], default=float("nan"))
        goals.append(("hub peak RSS < %d MB during raw ingest" % GOAL_RSS_MB, ok,
                      "median %s MB, highest run %s MB" % (f0(bm), f0(mx))))
        bc, rc = (med([x["cpu_write"] / (x["written"] / GIB) for x in S]) for S in (B, R))
        L.append("| (b) server CPU s per GiB written | %s | %s | %s | | |" % (f2(bc), f2(rc), f2(ratio(bc, rc))))
        bc, rc = (med([x["cpu_read"] / (x["read"] / GIB) for x in S]) for S in (B, R))
        L.append("| (b) server CPU s per GiB read | %s | %s | %s | | |" % (f2(bc), f2(rc), f2(ratio(bc, rc))))
        ddm = med([x["mbps"] for x in dd])
        L.append("| disk: `dd … conv=fsync` write, MB/s | %s (same disk) | | | | |" % f0(ddm))
        share = ratio(bw, ddm)
        ok = None if share != share else share >= GOAL_DD_SHARE
        L.append("| (b) hub raw write / dd conv=fsync | %s | %s | | ≥ %.2f | %s |"
                 % (f2(share), f2(ratio(rw, ddm)), GOAL_DD_SHARE, yesno(ok)))
        goals.append(("hub raw write ≥ %d %% of the disk's fsync'd dd speed" % (GOAL_DD_SHARE * 100), ok,
                      "%s MB/s vs dd %s MB/s = %s %%" % (f0(bw), f0(ddm), f0(share * 100))))
    L.append("")
    L.append("### Goals, plainly")
    L.append("")
    for what, ok, detail in goals:
        if what.startswith("  "):
            L.append("  - %s: %s" % (what.strip(), detail))
        else:
            L.append("- %s: %s — %s." % (what, {None: "not measured", True: "met", False: "NOT met"}[ok], detail))
    if failures:
        L.append("- **%d measurement(s) failed** (see Failures below); medians exclude them." % len(failures))
    L.append("")
    if "ingest" in parts:
        for sv in servers:
            st = sorted({x["bad_hash_status"] for x in ok_runs("ingest", sv.name)})
            if st:
                L.append("- %s %s a data file whose name is not the SHA-256 of its content (HTTP %s)." % (
                    sv.name, "refused" if all(c >= 400 for c in st) else "**accepted**", ", ".join(map(str, st))))
        L.append("- `rclone serve restic` writes each file without fsync (see bench/README.md); the write goals compare "
                 "it with a server that fsyncs, so the dd row is the fairer reference.")
        L.append("")
    L.append("With %d runs on a shared 2-core machine, differences under ~15 %% are noise (restic against itself "
             "varied that much in `run.py`); the load generator and restic share the two cores with the server." % args.runs)
    L.append("")
    L.append("## Raw runs")
    L.append("")
    if "backup" in parts:
        L.append("### (a) restic backup through the server")
        L.append("")
        L.append("| run | pos | server | init s | backup s | restic peak RSS MB | restic user+sys s | stored MiB | server CPU s | server CPU s/GiB | server peak RSS MB | server threads | check | server stop |")
        L.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for i in range(args.runs):
            for pos, s in enumerate(servers if i % 2 == 0 else servers[::-1]):
                x = res["backup"][s.name][i] if i < len(res["backup"][s.name]) else None
                if x is None:
                    L.append("| %d | %d | %s | FAILED | | | | | | | | | | | |" % (i + 1, pos + 1, s.name))
                    continue
                L.append("| %d | %d | %s | %.2f | %.2f | %.0f | %.2f | %.1f | %.2f | %.2f | %.0f | %d | %s | %s |" % (
                    i + 1, pos + 1, s.name, x["init"]["wall"], x["backup"]["wall"], x["backup"]["rss"] * MIB / MB,
                    x["backup"]["user"] + x["backup"]["sys"], x["ingested"] / MIB, x["server_cpu"],
                    x["server_cpu"] / (x["ingested"] / GIB), x["server"]["hwm"] / MB, x["server"]["threads"],
                    "ok (%.1f s)" % x["check"]["wall"] if x["check"]["ok"] else "**FAILED**", x["server"]["stop"]))
        L.append("")
    if "ingest" in parts:
        L.append("### (b) raw ingest")
        L.append("")
        L.append("| run | pos | server | write s | write MB/s | read s | read MB | read MB/s | server CPU s write / read | client CPU s write / read | server peak RSS MB | server threads | keep-alive reconnects | wrong-hash POST | server stop |")
        L.append("|---:|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|---|")
        for i in range(args.runs):
            for pos, s in enumerate(servers if i % 2 == 0 else servers[::-1]):
                x = res["ingest"][s.name][i] if i < len(res["ingest"][s.name]) else None
                if x is None:
                    L.append("| %d | %d | %s | FAILED | | | | | | | | | | | |" % (i + 1, pos + 1, s.name))
                    continue
                L.append("| %d | %d | %s | %.2f | %.0f | %.2f | %.0f | %.0f | %.2f / %.2f | %.2f / %.2f | %.0f | %d | %d | %s | %s |" % (
                    i + 1, pos + 1, s.name, x["write_s"], x["written"] / x["write_s"] / MB, x["read_s"], x["read"] / MB,
                    x["read"] / x["read_s"] / MB, x["cpu_write"], x["cpu_read"], x["client_cpu_write"],
                    x["client_cpu_read"], x["server"]["hwm"] / MB, x["server"]["threads"], x["reconnects"],
                    "HTTP %d (%s)" % (x["bad_hash_status"], "refused" if x["bad_hash_status"] >= 400 else "accepted"),
                    x["server"]["stop"]))
        L.append("")
        L.append("| run | dd conv=fsync MB/s | dd's own line |")
        L.append("|---:|---:|---|")
        for i, x in enumerate(dd):
            L.append("| %d | %.0f | %s |" % (i + 1, x["mbps"], x["dd_says"]))
        L.append("")
    if failures:
        L.append("## Failures")
        L.append("")
        for f in failures:
            L.append("- %s" % f["what"])
            L.append("")
            L.append("```")
            L.append(f["msg"].strip()[-2500:])
            L.append("```")
        L.append("")
    L.append("Server logs and restic output: `%s/runs/runN-PART-SERVER/logs/`." % args.workdir)
    L.append("")
    return "\n".join(L)


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2G", help="(a) data-set size, e.g. 200M, 2G (default 2G)")
    ap.add_argument("--ingest", default="1G", help="(b) total bytes uploaded per run (default 1G)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--conns", type=int, default=8, help="(b) concurrent connections (default 8)")
    ap.add_argument("--dd-mib", type=int, default=1024, help="dd reference write size in MiB (default 1024)")
    ap.add_argument("--parts", default="backup,ingest", help="comma-separated: backup (a), ingest (b)")
    ap.add_argument("--seed", type=int, default=1)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    ap.add_argument("--bulwark-bin", default=os.path.join(target, "release", "bulwark"))
    ap.add_argument("--rclone-bin", default=shutil.which("rclone") or "/usr/bin/rclone")
    ap.add_argument("--restic-bin", default=shutil.which("restic") or "/usr/bin/restic")
    ap.add_argument("--workdir", default="/tmp/bulwark-bench-hub", help="data set, server data dirs, logs")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "hub-%s.md" % datetime.date.today().isoformat()))
    ap.add_argument("--jobs", type=int, default=0, help="processes for data generation (default: CPUs)")
    ap.add_argument("--keep", action="store_true", help="keep every server data dir and restic cache")
    args = ap.parse_args()
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if args.runs < 1 or not args.parts or set(args.parts) - {"backup", "ingest"}:
        ap.error("--runs must be ≥ 1 and --parts a list of backup, ingest")
    args.workdir = os.path.abspath(args.workdir)
    size = gen_data.parse_size(args.size)
    args.ingest_bytes = gen_data.parse_size(args.ingest)

    for label, path in (("bulwark", args.bulwark_bin), ("rclone", args.rclone_bin), ("restic", args.restic_bin)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise SystemExit("%s binary not found at %s%s" % (label, path, ": build it with cargo build --release -p bulwark"
                                                               if label == "bulwark" else ""))
    kind = "rclone" if os.path.basename(args.bulwark_bin).startswith("rclone") else "bulwark"
    if kind == "bulwark":
        p = subprocess.run([args.bulwark_bin, "hub", "--help"], capture_output=True, text=True)
        if p.returncode != 0 or "--listen" not in p.stdout:
            raise SystemExit("%s has no usable `hub` subcommand (bulwark hub --help: exit %d)\n%s"
                             % (args.bulwark_bin, p.returncode, (p.stdout + p.stderr)[-1500:]))
    claim(args.workdir)
    rclone_conf = os.path.join(args.workdir, "rclone.conf")
    open(rclone_conf, "w").close()  # no remotes: rclone must not read the user's config
    servers = [Server("bulwark", os.path.abspath(args.bulwark_bin), kind, rclone_conf),
               Server("rclone", os.path.abspath(args.rclone_bin), "rclone", rclone_conf)]
    restic_version = subprocess.run([args.restic_bin, "version"], capture_output=True, text=True).stdout.strip()
    print("bulwark: %s (%s)   rclone: %s   restic: %s" % (servers[0].binary, kind, servers[1].binary, args.restic_bin),
          flush=True)

    started = datetime.datetime.now().astimezone()
    args.load_before = os.getloadavg()[0]
    if args.load_before > 0.5:
        print("warning: load average %.2f: something else is running; results will be noisy" % args.load_before,
              file=sys.stderr)
    info = data = None
    if "backup" in args.parts:
        free = shutil.disk_usage(args.workdir).free
        if free < 2.5 * size:
            print("warning: only %s free under %s; part (a) needs about 2.5x the data size"
                  % (gen_data.fmt_bytes(free), args.workdir), file=sys.stderr)
        data, info = prepare_dataset(args.workdir, size, args.seed, args.jobs)
        print("warming the page cache ...", flush=True)
        warm(data)
    files = plan = None
    pw = os.path.join(args.workdir, "password")
    with open(pw, "w") as f:
        f.write("bulwark-bench password\n")
    runs_dir = os.path.join(args.workdir, "runs")
    if os.path.exists(runs_dir):
        shutil.rmtree(runs_dir)

    res = {p: {s.name: [] for s in servers} for p in ("backup", "ingest")}
    dd, failures = [], []
    order_log = ["run %d: %s" % (i + 1, " → ".join(s.name for s in (servers if i % 2 == 0 else servers[::-1])))
                 for i in range(args.runs)]
    # part by part (all backup runs, then all ingest runs): the ingest files are only built, in this
    # process's memory, after the restic runs, so fork() doesn't copy them into restic's peak RSS
    for part in [p for p in ("backup", "ingest") if p in args.parts]:
        if part == "ingest":
            print("building %s of ingest files in memory ..." % gen_data.fmt_bytes(args.ingest_bytes), flush=True)
            files = build_files(args.ingest_bytes, args.seed)
            plan = read_plan(files, args.seed)
            args.ingest_bytes = sum(len(b) for _, b in files)
            args.n_files = len(files)
        for i in range(args.runs):
            order = servers if i % 2 == 0 else servers[::-1]
            if part == "ingest":
                try:
                    dd.append(dd_speed(args.workdir, args.dd_mib))
                    print("  run %d/%d dd conv=fsync %.0f MB/s" % (i + 1, args.runs, dd[-1]["mbps"]), flush=True)
                except HarnessError as e:
                    failures.append({"what": "run %d dd" % (i + 1), "msg": str(e)})
            for s in order:
                base = os.path.join(runs_dir, "run%d-%s-%s" % (i + 1, part, s.name))
                os.makedirs(base)
                try:
                    if part == "backup":
                        x = backup_phase(s, args.restic_bin, base, data, pw)
                        print("  run %d/%d %-7s backup: init %.2f s, backup %.2f s, stored %.0f MiB, server CPU %.1f s, "
                              "peak RSS %.0f MB, check %s" % (
                                  i + 1, args.runs, s.name, x["init"]["wall"], x["backup"]["wall"], x["ingested"] / MIB,
                                  x["server_cpu"], x["server"]["hwm"] / MB, "ok" if x["check"]["ok"] else "FAILED"),
                              flush=True)
                        if not x["check"]["ok"]:
                            failures.append({"what": "run %d backup %s: restic check of the stored repository" % (i + 1, s.name),
                                             "msg": x["check"]["msg"]})
                    else:
                        x = ingest_phase(s, base, files, plan, args.conns)
                        print("  run %d/%d %-7s ingest: write %.0f MB/s (%.2f s), read %.0f MB/s (%.2f s), "
                              "server CPU %.1f + %.1f s, peak RSS %.0f MB" % (
                                  i + 1, args.runs, s.name, x["written"] / x["write_s"] / MB, x["write_s"],
                                  x["read"] / x["read_s"] / MB, x["read_s"], x["cpu_write"], x["cpu_read"],
                                  x["server"]["hwm"] / MB), flush=True)
                except HarnessError as e:
                    x = None
                    failures.append({"what": "run %d %s %s" % (i + 1, part, s.name), "msg": str(e)})
                    print("  run %d/%d %-7s %s FAILED:\n%s" % (i + 1, args.runs, s.name, part, e), flush=True)
                res[part][s.name].append(x)
                if not args.keep:
                    for n in ("server-data", "restic-cache"):
                        shutil.rmtree(os.path.join(base, n), ignore_errors=True)

    report = build_report(args, servers, info, res, dd, order_log, failures, started, machine_info(args.workdir),
                          restic_version)
    print()
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print("report written to %s; server logs under %s" % (args.out, runs_dir))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
