#!/usr/bin/env python3
"""The hub's footprint running many HTTP monitors: CPU and RSS of `bulwark hub`.

    cargo build --release -p bulwark                   # monitors.py builds nothing
    python3 bench/monitors.py                          # 1000 monitors, 10 s interval, 2 min: ~3 min
    python3 bench/monitors.py --monitors 200 --duration 30 --idle-duration 10 --out /tmp/m.md   # quick

The goal (monitoring issue): 1 000 HTTP monitors at a 10 s interval against a
local server, measured for 2 minutes, cost the hub **< 5 % of one core** and
**< 150 MB RSS**.

What it does:

1. Starts a small HTTP server on 127.0.0.1 in a child process (asyncio
   streams; it answers every request `HTTP/1.1 200 OK` with a 3-byte body and
   `Connection: close`) that counts requests, in total and per monitor (the
   `?i=NNNN` of the URL).
2. Writes WORKDIR/bulwark.toml with --monitors `[monitors.mNNNN]` of
   `type = "http"`, `url = "http://127.0.0.1:PORT/health?i=NNNN"`,
   `interval` (--interval, 10s) and `timeout` (--timeout, 5s); every other
   key keeps its default (GET, 200-399, failure_threshold 3,
   success_threshold 2, on = ["hub"]). `bulwark config check` must accept it.
3. Creates an admin token (`bulwark hub token create --admin --state STATE
   --output FILE`) and starts `bulwark -c bulwark.toml hub --listen
   127.0.0.1:PORT --data DATA --state STATE --no-auth --prometheus-no-auth`
   with a fresh data and state directory.
4. Warm-up (--warmup, 20 s: every monitor's first probe falls in the first
   min(interval, 10 s), and a monitor is up after 2 successes), then the
   measurement window (--duration, 120 s). Over the window: the hub's CPU time
   (utime+stime of /proc/PID/stat) → % of one core; VmRSS of
   /proc/PID/status once a second → peak, median, first/last and growth;
   VmHWM (peak RSS since start) at the end; threads and open file
   descriptors; CPU per hub thread (/proc/PID/task/*/stat); the whole
   machine's busy and steal % (/proc/stat); requests the server answered,
   in total and per monitor.
5. After the window (not during it, so the harness's own requests don't count
   against the hub): `GET /api/v1/monitors` with the admin token, and
   `bulwark_monitor_up` in `GET /metrics`: how many http monitors are up.
6. The same with 0 monitors for --idle-duration (30 s, after a 10 s warm-up):
   the idle hub, so the monitors' own cost shows. `--no-idle` skips it.

A run is **valid** only if ≥ 99 % of the monitors are up at the end and the
server saw within 10 % of the expected number of requests
(monitors × duration / interval); the report says so, and the exit status is
1 otherwise (2 if the harness failed).

Writes a Markdown report to stdout and --out (default
bench/results/monitors-YYYY-MM-DD.md), with the Gatus comparison (what Gatus
publishes about its footprint, with sources). Logs, configs and the raw RSS
series (samples.json) stay in --workdir (default /tmp/bulwark-bench-monitors).
The harness never runs git; the report gives the binary's build time.
Units: MB = 10^6 bytes.
"""

import argparse
import asyncio
import datetime
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from hub import f1, free_port, machine_info, proc_stats, scrubbed_env, tail  # noqa: E402

MARKER = ".bulwark-bench-monitors"  # marks a workdir this harness may wipe
MB = 1_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOAL_CPU_PCT = 5.0      # % of one core
GOAL_RSS_MB = 150.0     # MB (10^6 bytes)
MIN_UP_SHARE = 0.99     # valid run: at least 99 % of the monitors up at the end
RATE_TOLERANCE = 0.10   # valid run: requests within 10 % of monitors × duration / interval
BUILD_HINT = "build it with: cargo build --release -p bulwark  (monitors.py builds nothing)"

GATUS_COMMIT = "08c463542f56872a267e5b2e1e1cf421f0ea8a6a"  # TwiN/gatus master, 2026-08-17, where the quotes were read


class HarnessError(Exception):
    pass


# --------------------------------------------------------------------------- the local HTTP server


def serve(port_out, total, per_monitor, ready):
    """Child process: answers every request 200 with a tiny body, Connection: close; counts them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    body = b"ok\n"
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % len(body)) + body
    n = len(per_monitor)
    query = re.compile(rb"[?&]i=(\d+)")

    async def handle(reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            total.value += 1
            m = query.search(head.split(b"\r\n", 1)[0])
            if m:
                i = int(m.group(1))
                if 0 <= i < n:
                    per_monitor[i] += 1
            writer.write(response)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, OSError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096, reuse_address=True)
        port_out.value = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class HealthServer:
    def __init__(self, monitors):
        ctx = multiprocessing.get_context("fork")
        self.total = ctx.Value("Q", 0, lock=False)  # written by the child only
        self.per_monitor = ctx.Array("I", max(monitors, 1), lock=False)
        port = ctx.Value("i", 0, lock=False)
        ready = ctx.Event()
        self.proc = ctx.Process(target=serve, args=(port, self.total, self.per_monitor, ready), daemon=True)
        self.proc.start()
        if not ready.wait(15):
            self.stop()
            raise HarnessError("the local HTTP server did not start")
        self.port = port.value

    def counts(self):
        if not self.proc.is_alive():
            raise HarnessError("the local HTTP server died (exit %s)" % self.proc.exitcode)
        return self.total.value, list(self.per_monitor)

    def cpu(self):
        return proc_stats(self.proc.pid)["cpu"]

    def stop(self):
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()


# --------------------------------------------------------------------------- /proc readings


def threads_cpu(pid):
    """tid -> (thread name, CPU seconds) of every thread of a process."""
    out = {}
    base = "/proc/%d/task" % pid
    for tid in os.listdir(base):
        try:
            with open("%s/%s/stat" % (base, tid)) as f:
                s = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        name = s[s.index("(") + 1:s.rindex(")")]
        rest = s[s.rfind(")") + 2:].split()
        out[int(tid)] = (name, (int(rest[11]) + int(rest[12])) / CLK_TCK)
    return out


def cpu_split(pid):
    """(user, system) CPU seconds of a process (utime, stime of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    rest = s[s.rfind(")") + 2:].split()
    return int(rest[11]) / CLK_TCK, int(rest[12]) / CLK_TCK


def status_fields(pid, keys):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0]) * (1024 if v.strip().endswith("kB") else 1)
    return out


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def machine_cpu():
    """(busy jiffies, steal jiffies, total jiffies) of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    steal = v[7] if len(v) > 7 else 0
    total = sum(v[:8])
    return total - idle - steal, steal, total


# --------------------------------------------------------------------------- the hub


def write_config(path, monitors, port, interval, timeout):
    with open(path, "w") as f:
        f.write("# written by bench/monitors.py\n")
        for i in range(monitors):
            f.write('\n[monitors.m%04d]\ntype = "http"\nurl = "http://127.0.0.1:%d/health?i=%04d"\n'
                    'interval = "%s"\ntimeout = "%s"\n' % (i, port, i, interval, timeout))


def run_cmd(cmd, log, env, timeout=120):
    with open(log, "ab") as lf:
        lf.write(("$ %s\n" % " ".join(cmd)).encode())
        lf.flush()
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        lf.write(p.stdout)
    return p.returncode, p.stdout.decode(errors="replace")


class Hub:
    def __init__(self, binary, cfg, base, log):
        self.binary, self.cfg, self.log = binary, cfg, log
        self.data, self.state = os.path.join(base, "data"), os.path.join(base, "state")
        os.makedirs(self.data)
        self.env = scrubbed_env()
        self.token_file = os.path.join(base, "admin.token")
        code, out = run_cmd([binary, "-c", cfg, "hub", "token", "create", "--admin", "--state", self.state,
                             "--output", self.token_file], log, self.env)
        if code != 0 or not os.path.exists(self.token_file):
            raise HarnessError("`bulwark hub token create --admin` failed (exit %d):\n%s" % (code, out[-2000:]))
        self.token = open(self.token_file).read().strip()
        for _ in range(3):
            self.port = free_port()
            self.cmd = [binary, "-c", cfg, "hub", "--listen", "127.0.0.1:%d" % self.port, "--data", self.data,
                        "--state", self.state, "--no-auth", "--prometheus-no-auth"]
            self.logf = open(log, "ab")
            self.logf.write(("$ %s\n" % " ".join(self.cmd)).encode())
            self.logf.flush()
            self.started = time.monotonic()
            self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=base, stdin=subprocess.DEVNULL, stdout=self.logf,
                                         stderr=subprocess.STDOUT)
            if self._wait_ready(60):
                return
            self.logf.close()
            if "address already in use" not in tail(log).lower():
                break
        raise HarnessError("the hub did not start on 127.0.0.1:%d (exit %s)\n--- last lines of %s ---\n%s"
                           % (self.port, self.proc.returncode, log, tail(log)))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.get("/api/v1/monitors", auth=True)[0] == 200:
                    self.ready_s = time.monotonic() - self.started
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        self.kill()
        return False

    def get(self, path, auth=False):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + self.token} if auth else {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def alive(self):
        if self.proc.poll() is not None:
            raise HarnessError("the hub exited unexpectedly (exit %s)\n--- last lines of %s ---\n%s"
                               % (self.proc.returncode, self.log, tail(self.log)))

    def monitor_states(self):
        """From the API: {state: count} of the http monitors, plus the raw view's size."""
        status, body = self.get("/api/v1/monitors", auth=True)
        if status != 200:
            raise HarnessError("GET /api/v1/monitors: HTTP %d %r" % (status, body[:300]))
        view = json.loads(body)
        counts = {}
        for m in view.get("monitors", []):
            if m.get("kind") == "http":
                s = str(m.get("state", "?")).lower()
                counts[s] = counts.get(s, 0) + 1
        return counts, len(view.get("monitors", []))

    def metrics_up(self):
        """From /metrics: {value: count} of bulwark_monitor_up{type="http"}."""
        status, body = self.get("/metrics")
        if status != 200:
            return None
        counts = {}
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("bulwark_monitor_up{") and 'type="http"' in line:
                v = line.rsplit(None, 1)[-1]
                counts[v] = counts.get(v, 0) + 1
        return counts

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


# --------------------------------------------------------------------------- one measurement


def measure(args, label, monitors, warmup, duration, server):
    """Starts a hub with `monitors` http monitors, waits `warmup`, measures for `duration` seconds."""
    base = os.path.join(args.workdir, "runs", label)
    os.makedirs(base)
    log = os.path.join(base, "hub.log")
    cfg = os.path.join(base, "bulwark.toml")
    write_config(cfg, monitors, server.port, args.interval, args.timeout)
    code, out = run_cmd([args.bulwark_bin, "config", "check", cfg], log, scrubbed_env())
    if code != 0:
        raise HarnessError("`bulwark config check %s` refused the generated file (exit %d):\n%s" % (cfg, code, out[-3000:]))
    print("[%s] %d monitors: starting the hub ..." % (label, monitors), flush=True)
    hub = Hub(args.bulwark_bin, cfg, base, log)
    r = {"label": label, "monitors": monitors, "warmup": warmup, "duration": duration, "ready_s": hub.ready_s,
         "cmd": " ".join(hub.cmd)}
    try:
        t_end_warm = time.monotonic() + warmup
        while time.monotonic() < t_end_warm:
            hub.alive()
            time.sleep(0.5)
        # before the window (not inside it): how far the warm-up got
        r["up_at_start"] = hub.monitor_states()[0] if monitors else {}
        hub.alive()
        pid = hub.proc.pid
        req0, per0 = server.counts()
        srv_cpu0 = server.cpu()
        m0 = machine_cpu()
        th0 = threads_cpu(pid)
        st0 = proc_stats(pid)
        us0 = cpu_split(pid)
        t0 = time.monotonic()
        samples = []  # (t, rss, anon, threads, fds)
        next_fd = t0
        k = 0
        while True:
            t = time.monotonic()
            if t - t0 >= duration:
                break
            hub.alive()
            f = status_fields(pid, ("VmRSS", "RssAnon", "Threads"))
            fds = None
            if t >= next_fd:
                fds = open_fds(pid)
                next_fd += 10
            samples.append((round(t - t0, 3), f.get("VmRSS", 0), f.get("RssAnon", 0), f.get("Threads", 0), fds))
            k += 1
            time.sleep(max(0.0, t0 + k - time.monotonic()))
        st1 = proc_stats(pid)
        us1 = cpu_split(pid)
        t1 = time.monotonic()
        th1 = threads_cpu(pid)
        m1 = machine_cpu()
        srv_cpu1 = server.cpu()
        req1, per1 = server.counts()
        hwm = status_fields(pid, ("VmHWM",)).get("VmHWM", 0)
        fds_end = open_fds(pid)
        # after the window: what the hub reports
        api_counts, api_total = hub.monitor_states()
        met = hub.metrics_up()
        hub.alive()
    finally:
        hub.stop()
    wall = t1 - t0
    rss = [s[1] for s in samples]
    r.update(
        wall=wall, cpu_s=st1["cpu"] - st0["cpu"], user_s=us1[0] - us0[0], sys_s=us1[1] - us0[1], hwm=hwm, rss=rss, anon=[s[2] for s in samples],
        rss_peak=max(rss), rss_median=statistics.median(rss), rss_first=rss[0], rss_last=rss[-1],
        rss_slope=slope([s[0] for s in samples], rss), threads=max(s[3] for s in samples),
        fds=[s[4] for s in samples if s[4] is not None] + [fds_end],
        requests=req1 - req0, per_monitor=[b - a for a, b in zip(per0[:monitors], per1[:monitors])],
        server_cpu_s=srv_cpu1 - srv_cpu0,
        machine_busy=(m1[0] - m0[0]) / max(1, m1[2] - m0[2]) * 100, machine_steal=(m1[1] - m0[1]) / max(1, m1[2] - m0[2]) * 100,
        api=api_counts, api_total=api_total, metrics=met, exit=hub.proc.returncode, samples=samples,
    )
    r["cpu_pct"] = r["cpu_s"] / wall * 100
    per_thread = {}
    for tid, (name, c1) in th1.items():
        c0 = th0.get(tid, (name, 0.0))[1]
        key = name
        n, c = per_thread.get(key, (0, 0.0))
        per_thread[key] = (n + 1, c + c1 - c0)
    r["per_thread"] = sorted(per_thread.items(), key=lambda kv: -kv[1][1])
    # CPU of threads that ended during the window (counted in the process total, not per thread)
    r["threads_gone_cpu"] = r["cpu_s"] - sum(c for _, (_, c) in r["per_thread"])
    with open(os.path.join(base, "samples.json"), "w") as f:
        json.dump({"columns": ["t_s", "VmRSS", "RssAnon", "Threads", "fds"], "samples": samples}, f)
    print("[%s] CPU %.2f %% of one core, RSS peak %.1f MB, median %.1f MB, %d requests in %.0f s"
          % (label, r["cpu_pct"], r["rss_peak"] / MB, r["rss_median"] / MB, r["requests"], wall), flush=True)
    return r


def slope(xs, ys):
    """Least-squares slope dy/dx (bytes per second)."""
    if len(xs) < 2:
        return float("nan")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")


# --------------------------------------------------------------------------- report


def validity(args, r):
    """(valid, up, expected requests, [problems])."""
    n = r["monitors"]
    up = r["api"].get("up", 0)
    expected = n * r["wall"] / args.interval_s
    problems = []
    if up < MIN_UP_SHARE * n:
        problems.append("only %d of %d monitors up at the end (need ≥ %.0f %%)" % (up, n, MIN_UP_SHARE * 100))
    if expected and abs(r["requests"] - expected) > RATE_TOLERANCE * expected:
        problems.append("%d requests, expected %.0f ± %.0f %%" % (r["requests"], expected, RATE_TOLERANCE * 100))
    met_up = (r["metrics"] or {}).get("1")
    if r["metrics"] is not None and met_up != up:
        problems.append("/metrics says %s up, the API %d (informational)" % (met_up, up))
    return not [p for p in problems if "informational" not in p], up, expected, problems


def binary_info(path):
    try:
        v = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        v = "?"
    st = os.stat(path)
    built = datetime.datetime.fromtimestamp(st.st_mtime).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return v or "?", built, st.st_size


def mb(x):
    return f1(x / MB)


def build_report(args, load, idle, run, started, failure):
    machine = machine_info(args.workdir)
    version, built, size = binary_info(args.bulwark_bin)
    L = []
    L.append("# bulwark hub: %d HTTP monitors at a %s interval (%d s measured)" % (args.monitors, args.interval,
                                                                                 args.duration))
    L.append("")
    L.append("- date: %s (harness took %.1f min)" % (started.strftime("%Y-%m-%d %H:%M %Z").strip(),
                                                     (time.time() - started.timestamp()) / 60))
    L.append("- command: `python3 bench/monitors.py %s`" % " ".join(sys.argv[1:]))
    L.append("- machine: %s cores (nproc), %s, %s RAM, Linux %s" % (machine["nproc"], machine["cpu"], machine["ram"],
                                                                   machine["kernel"]))
    L.append("- load average (1 min) before / after: %.2f / %.2f%s" % (
        load, os.getloadavg()[0], " — **the machine was busy: numbers are noisier**" if load > 0.5 else ""))
    L.append("- binary: `%s` (%s, %.1f MB, built %s; the harness never runs git)" % (
        args.bulwark_bin, version, size / MB, built))
    L.append("- monitors: %d × `type = \"http\"`, `url = \"http://127.0.0.1:PORT/health?i=NNNN\"`, "
             "`interval = \"%s\"`, `timeout = \"%s\"`, everything else default (GET, 200-399, on = [\"hub\"], "
             "failure/success thresholds 3/2); the local server answers `200 OK`, 3-byte body, `Connection: close`"
             % (args.monitors, args.interval, args.timeout))
    L.append("- hub: `bulwark -c bulwark.toml hub --listen 127.0.0.1:PORT --data DATA --state STATE --no-auth "
             "--prometheus-no-auth`, fresh data and state directories")
    L.append("- window: %d s warm-up, then %d s measured; the harness reads the API and /metrics only outside "
             "the window" % (args.warmup, args.duration))
    L.append("")
    if failure:
        L.append("## Harness failure")
        L.append("")
        L.append("```")
        L.append(failure.strip()[-3000:])
        L.append("```")
        L.append("")
    if run is None:
        return "\n".join(L)
    valid, up, expected, problems = validity(args, run)
    L.append("## Summary")
    L.append("")
    L.append("| | measured | goal | |")
    L.append("|---|---:|---:|---|")
    L.append("| hub CPU, %% of one core | **%.2f %%** | < %.0f %% | %s |" % (
        run["cpu_pct"], GOAL_CPU_PCT, "met" if run["cpu_pct"] < GOAL_CPU_PCT else "**NOT met**"))
    L.append("| hub RSS, peak of 1 s samples | **%s MB** | < %.0f MB | %s |" % (
        mb(run["rss_peak"]), GOAL_RSS_MB, "met" if run["rss_peak"] / MB < GOAL_RSS_MB else "**NOT met**"))
    L.append("| hub RSS, median | %s MB | | |" % mb(run["rss_median"]))
    L.append("| hub VmHWM (peak since start, incl. warm-up) | %s MB | < %.0f MB | %s |" % (
        mb(run["hwm"]), GOAL_RSS_MB, "met" if run["hwm"] / MB < GOAL_RSS_MB else "**NOT met**"))
    L.append("")
    L.append("**Run %s.** %s" % (
        "valid" if valid else "NOT valid",
        "%d of %d monitors up at the end (API; need ≥ %.0f %%); %d requests in %.1f s = %.1f req/s, "
        "expected %.1f req/s (%d × 1/%s; %+.1f %%, need within ±%.0f %%)." % (
            up, run["monitors"], MIN_UP_SHARE * 100, run["requests"], run["wall"], run["requests"] / run["wall"],
            expected / run["wall"], run["monitors"], args.interval, (run["requests"] / expected - 1) * 100 if expected else 0,
            RATE_TOLERANCE * 100)))
    if problems:
        L.append("")
        for p in problems:
            L.append("- %s" % p)
    L.append("")
    # ---------------------------------------------------------------- idle + cost
    L.append("## Idle hub and the monitors' own cost")
    L.append("")
    if idle is not None:
        L.append("| | idle (0 monitors) | %d monitors | monitors' own cost |" % run["monitors"])
        L.append("|---|---:|---:|---:|")
        L.append("| window | %.0f s (after %d s) | %.0f s (after %d s) | |" % (idle["wall"], idle["warmup"], run["wall"],
                                                                         run["warmup"]))
        L.append("| CPU, %% of one core | %.2f %% | %.2f %% | %+.2f %% |" % (idle["cpu_pct"], run["cpu_pct"],
                                                                         run["cpu_pct"] - idle["cpu_pct"]))
        L.append("| CPU seconds in the window (user + system) | %.2f (%.2f + %.2f) | %.2f (%.2f + %.2f) | |" % (
            idle["cpu_s"], idle["user_s"], idle["sys_s"], run["cpu_s"], run["user_s"], run["sys_s"]))
        L.append("| RSS median | %s MB | %s MB | %+.1f MB |" % (mb(idle["rss_median"]), mb(run["rss_median"]),
                                                             (run["rss_median"] - idle["rss_median"]) / MB))
        L.append("| RSS peak | %s MB | %s MB | %+.1f MB |" % (mb(idle["rss_peak"]), mb(run["rss_peak"]),
                                                           (run["rss_peak"] - idle["rss_peak"]) / MB))
        L.append("| VmHWM | %s MB | %s MB | |" % (mb(idle["hwm"]), mb(run["hwm"])))
        L.append("| threads (max) | %d | %d | |" % (idle["threads"], run["threads"]))
        L.append("| open file descriptors (max of 10 s samples) | %d | %d | |" % (max(idle["fds"]), max(run["fds"])))
        L.append("| start-up until the API answered | %.2f s | %.2f s | |" % (idle["ready_s"], run["ready_s"]))
        L.append("")
    else:
        L.append("Not measured (`--no-idle`).")
        L.append("")
    probes = run["requests"]
    if probes:
        extra = run["cpu_s"] - (idle["cpu_pct"] / 100 * run["wall"] if idle else 0)
        L.append("Per probe: %.0f µs of hub CPU in all (%s), %s KB of RSS per monitor above the idle hub's median." % (
            run["cpu_s"] / probes * 1e6,
            "%.0f µs above idle" % (extra / probes * 1e6) if idle else "no idle baseline",
            f1((run["rss_median"] - idle["rss_median"]) / 1000 / run["monitors"]) if idle and run["monitors"] else "–"))
        L.append("")
    # ---------------------------------------------------------------- details
    L.append("## Details of the %d-monitor run" % run["monitors"])
    L.append("")
    per = run["per_monitor"]
    if per:
        want = run["wall"] / args.interval_s
        L.append("- probes per monitor in the window (server's count by `?i=`): min %d, median %s, max %d "
                 "(%.1f expected); monitors never probed in the window: %d" % (
                     min(per), f1(statistics.median(per)), max(per), want, sum(1 for x in per if x == 0)))
    L.append("- monitor states at the end, API: %s; `bulwark_monitor_up{type=\"http\"}` in /metrics: %s; "
             "at the start of the window: %s; monitors in the API view (with built-ins): %d" % (
                 fmt_counts(run["api"]), fmt_counts(run["metrics"], {"1": "up", "0": "down", "-1": "unknown"}),
                 fmt_counts(run["up_at_start"]), run["api_total"]))
    L.append("- RSS: first sample %s MB, last %s MB, least-squares trend %+.1f MB/min over the window; "
             "RssAnon median %s MB" % (mb(run["rss_first"]), mb(run["rss_last"]), run["rss_slope"] * 60 / MB,
                                      mb(statistics.median(run["anon"]))))
    L.append("- RSS every 10 s (MB): %s" % ", ".join(mb(x) for x in run["rss"][::10]))
    L.append("- open file descriptors every 10 s: %s" % ", ".join(str(x) for x in run["fds"]))
    L.append("- the local server's own CPU: %.1f s (%.1f %% of one core); the whole machine was %.1f %% busy "
             "(steal %.1f %%) over the window" % (run["server_cpu_s"], run["server_cpu_s"] / run["wall"] * 100,
                                                  run["machine_busy"], run["machine_steal"]))
    L.append("")
    L.append("Hub CPU by thread name over the window (`/proc/PID/task/*/stat`):")
    L.append("")
    L.append("| thread name | threads | CPU s | % of one core |")
    L.append("|---|---:|---:|---:|")
    for name, (n, c) in run["per_thread"][:12]:
        L.append("| `%s` | %d | %.2f | %.2f %% |" % (name, n, c, c / run["wall"] * 100))
    if run["threads_gone_cpu"] >= 0.05:
        L.append("| (threads that ended during the window: process total − threads) | | %.2f | %.2f %% |"
                 % (run["threads_gone_cpu"], run["threads_gone_cpu"] / run["wall"] * 100))
    L.append("")
    # ---------------------------------------------------------------- Gatus
    L.append("## Compared with Gatus")
    L.append("")
    L.append("No Gatus binary was run here. What Gatus publishes about its footprint (read %s; "
             "TwiN/gatus at `%s`):" % (datetime.date.today().isoformat(), GATUS_COMMIT[:12]))
    L.append("")
    L.append("- README, *Features*: \"Low resource consumption: As with most Go applications, the resource "
             "footprint that this application requires is negligibly small.\" No number, no endpoint count. "
             "<https://github.com/TwiN/gatus#features>")
    L.append("- The Kubernetes example, `.examples/kubernetes/gatus.yaml`: requests `cpu: 50m`, `memory: 30M`; "
             "limits `cpu: 250m`, `memory: 100M`, for a config of **4 endpoints** at 1–5 min intervals. A sizing "
             "in an example, not a measurement, and not at 1 000 endpoints. "
             "<https://github.com/TwiN/gatus/blob/master/.examples/kubernetes/gatus.yaml>")
    L.append("- Issue #1016 (2025-03, v5.15.0): a user with ~1 000 endpoints at 1 min saw each checked only about "
             "every 8 minutes (the default monitoring lock ran them one at a time) while the VM was \"like 6%cpu "
             "busy, 2gb ram free\" — the whole VM, of unknown size, at a fraction of the intended rate; not a "
             "footprint figure. <https://github.com/TwiN/gatus/issues/1016>")
    L.append("- Gatus evaluates at most `concurrency` endpoints at once (default 3; README *Concurrency*), so a "
             "comparable Gatus run of this workload should set `concurrency: 0` (unlimited) and check that the "
             "requests reach the expected rate, as this harness does.")
    L.append("")
    L.append("**No concrete Gatus figure for many endpoints is published**, so the numbers above are the figure "
             "to beat: %.2f %% of one core and %s MB peak RSS (%s MB median) for %d HTTP monitors at %s, "
             "%.1f requests/s." % (run["cpu_pct"], mb(run["rss_peak"]), mb(run["rss_median"]), run["monitors"],
                                   args.interval, run["requests"] / run["wall"]))
    L.append("")
    L.append("## Caveats")
    L.append("")
    L.append("- The local server, the hub and the harness share the machine's %s cores; the server answers in "
             "well under a millisecond, so this measures the hub's cost per probe, not network waits. "
             "Real services are slower and further away: more concurrent probes in flight, more sockets and "
             "memory at a time." % machine["nproc"])
    L.append("- `Connection: close` makes every probe a new TCP connection (as the hub's probes do anyway: "
             "no connection reuse between probes).")
    L.append("- CPU is utime+stime from /proc in ticks of 1/%d s: over %d s the resolution is %.3f %% of one "
             "core." % (CLK_TCK, args.duration, 100 / CLK_TCK / args.duration))
    L.append("- A busy machine (load average above, machine busy %) slows every thread, which shows as more "
             "CPU time per probe (cache misses, migrations) and as steal on VMs. Re-run on a quiet machine "
             "before drawing fine conclusions.")
    L.append("")
    L.append("Logs, generated configs and the raw RSS samples (`samples.json`): `%s/runs/`." % args.workdir)
    L.append("")
    return "\n".join(L)


def fmt_counts(c, names=None):
    if c is None:
        return "n/a"
    if not c:
        return "none"
    return ", ".join("%s %d" % ((names or {}).get(k, k), v) for k, v in sorted(c.items(), key=lambda kv: -kv[1]))


# --------------------------------------------------------------------------- main


def parse_duration(s):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", s)
    if not m:
        raise argparse.ArgumentTypeError("expected a duration like 10s, 500ms or 1m: %r" % s)
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def claim(workdir):
    if os.path.exists(workdir):
        if not os.path.exists(os.path.join(workdir, MARKER)):
            if os.listdir(workdir):
                raise SystemExit("%s exists and was not made by this harness (no %s); pick another --workdir"
                                 % (workdir, MARKER))
        else:
            shutil.rmtree(os.path.join(workdir, "runs"), ignore_errors=True)
    os.makedirs(os.path.join(workdir, "runs"), exist_ok=True)
    open(os.path.join(workdir, MARKER), "w").close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--monitors", type=int, default=1000, help="HTTP monitors (default 1000)")
    ap.add_argument("--interval", default="10s", help="each monitor's interval (default 10s)")
    ap.add_argument("--timeout", default="5s", help="each monitor's timeout (default 5s)")
    ap.add_argument("--warmup", type=int, default=20, help="seconds before the window (default 20)")
    ap.add_argument("--duration", type=int, default=120, help="seconds measured (default 120)")
    ap.add_argument("--idle-duration", type=int, default=30, help="seconds measured with 0 monitors (default 30)")
    ap.add_argument("--idle-warmup", type=int, default=10, help="seconds before the idle window (default 10)")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle (0 monitors) baseline")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    ap.add_argument("--bulwark-bin", default=os.path.join(target, "release", "bulwark"),
                    help="default $CARGO_TARGET_DIR/release/bulwark, else target/release/bulwark; " + BUILD_HINT)
    ap.add_argument("--workdir", default="/tmp/bulwark-bench-monitors")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "monitors-%s.md" % datetime.date.today().isoformat()))
    args = ap.parse_args()
    args.interval_s = parse_duration(args.interval)
    parse_duration(args.timeout)
    if args.monitors < 1 or args.monitors > 9999 or args.duration < 5 or args.interval_s <= 0:
        ap.error("--monitors must be 1..9999, --duration ≥ 5 s, --interval > 0")
    args.workdir = os.path.abspath(args.workdir)
    args.bulwark_bin = os.path.abspath(args.bulwark_bin)
    if not (os.path.isfile(args.bulwark_bin) and os.access(args.bulwark_bin, os.X_OK)):
        raise SystemExit("bulwark binary not found at %s: %s" % (args.bulwark_bin, BUILD_HINT))
    p = subprocess.run([args.bulwark_bin, "hub", "--help"], capture_output=True, text=True)
    if p.returncode != 0 or "--state" not in p.stdout or "--prometheus-no-auth" not in p.stdout:
        raise SystemExit("%s has no usable `hub` subcommand (needs --state, --prometheus-no-auth): %s"
                         % (args.bulwark_bin, (p.stdout + p.stderr)[-800:]))

    started = datetime.datetime.now().astimezone()
    load = os.getloadavg()[0]
    if load > 0.5:
        print("warning: load average %.2f: something else is running; results will be noisy" % load, file=sys.stderr)
    claim(args.workdir)
    idle = run = None
    failure = None
    server = HealthServer(args.monitors)
    print("local HTTP server on 127.0.0.1:%d" % server.port, flush=True)
    try:
        if not args.no_idle:
            idle = measure(args, "idle", 0, args.idle_warmup, args.idle_duration, server)
        run = measure(args, "monitors-%d" % args.monitors, args.monitors, args.warmup, args.duration, server)
    except (HarnessError, subprocess.TimeoutExpired, OSError) as e:
        failure = str(e)
        print("harness failure: %s" % failure, file=sys.stderr)
    finally:
        server.stop()
    report = build_report(args, load, idle, run, started, failure)
    print()
    print(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print("report written to %s; logs under %s/runs" % (args.out, args.workdir))
    if failure or run is None:
        return 2
    return 0 if validity(args, run)[0] else 1


if __name__ == "__main__":
    sys.exit(main())
