#!/usr/bin/env python3
"""Crash evidence: `kill -9` Bulwark at random instants, then prove nothing broke.

    cargo build -p bulwark                  # chaos.py builds nothing
    python3 bench/chaos.py                  # 50 rounds per scenario (~20-40 min)
    python3 bench/chaos.py --rounds 10      # quick

Not part of the test suite (it takes minutes and its kill instants are
random). Four scenarios, each --rounds times:

  backup-local   `bulwark backup` into a local repository, killed (SIGKILL)
  backup-hub     `bulwark backup` through a `bulwark hub` (REST), client killed
  hub-upload     the same backup, but the *hub* is killed under upload (and
                 restarted before the next round)
  replicate      `bulwark -c CFG replicate --target usb` from the hub's data
                 directory to a local directory (a USB disk), killed

Each round first changes a few files of the source tree (so every backup has
new data to upload), starts the command, kills it after a random delay drawn
uniformly from [0, the duration of an uncut run], and then checks every
repository involved with `restic check --read-data` (restic 0.14, with
`--no-lock`: a killed process's lock is expected residue, counted below).

Residue counted after each kill: `.tmp-*` files (interrupted uploads) and
lock files in `locks/`. Bulwark must clean both itself: the next run of the
same kind removes the stale lock (`bulwark backup` removes locks of dead
processes) and the temporary files of dead writers (a store opened at the
start of a run or pass). After the last round every scenario runs once
uncut, and then no `.tmp-*` file and no lock may be left anywhere.

Output: one line per round, then a summary (rounds, kills that landed while
the process still ran, check failures, residue found and left) written to
stdout and WORKDIR/chaos-report.md. Exit status 1 if any check failed or any
residue was left at the end.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PASSWORD = "chaos-password"
REPO_PATH = "chaos/repo"  # repository path inside the hub's data directory


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg):
    print(msg, flush=True)


class Chaos:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bulwark)
        self.w = os.path.abspath(args.workdir)
        self.rng = random.Random(args.seed)
        self.pw = os.path.join(self.w, "password")
        self.src = os.path.join(self.w, "src")
        self.local_repo = os.path.join(self.w, "local-repo")
        self.hub_data = os.path.join(self.w, "hub")
        self.usb = os.path.join(self.w, "usb")
        self.cache = os.path.join(self.w, "cache")
        self.hub = None
        self.port = None
        self.results = {}
        self.env = dict(os.environ, RESTIC_PASSWORD_FILE=self.pw, RESTIC_CACHE_DIR=self.cache,
                        BULWARK_CACHE_DIR=self.cache)
        self.env.pop("BULWARK_REPO", None)
        self.env.pop("BULWARK_CONFIG", None)

    # ------------------------------------------------------------ setup

    def setup(self):
        if os.path.exists(self.w):
            if not os.path.exists(os.path.join(self.w, ".bulwark-chaos")):
                sys.exit("%s exists and is not a chaos workdir; pick another --workdir" % self.w)
            shutil.rmtree(self.w)
        os.makedirs(self.w)
        open(os.path.join(self.w, ".bulwark-chaos"), "w").close()
        with open(self.pw, "w") as f:
            f.write(PASSWORD + "\n")
        os.makedirs(self.src)
        for i in range(self.args.files):
            self.write_file(i)
        os.makedirs(self.usb)
        with open(os.path.join(self.w, "bulwark.toml"), "w") as f:
            f.write('[hub]\ndata = "%s"\n\n[targets.usb]\nurl = "%s"\nmedium = "removable"\n'
                    'offsite = false\n' % (self.hub_data, self.usb))
        self.run_ok([self.bin, "-r", self.local_repo, "--password-file", self.pw, "init"])
        self.start_hub()
        self.run_ok([self.bin, "-r", self.rest_url(), "--password-file", self.pw, "init"])

    def write_file(self, i):
        size = self.args.file_size
        with open(os.path.join(self.src, "f%04d.bin" % i), "wb") as f:
            f.write(self.rng.randbytes(size))

    def mutate(self):
        for i in self.rng.sample(range(self.args.files), max(1, self.args.files // 10)):
            self.write_file(i)

    def rest_url(self):
        return "rest:http://127.0.0.1:%d/%s" % (self.port, REPO_PATH)

    def run_ok(self, cmd, **kw):
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, **kw)
        if r.returncode != 0:
            raise SystemExit("failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout, r.stderr))
        return r

    def start_hub(self):
        self.port = self.port or free_port()
        self.hub_log = open(os.path.join(self.w, "hub.log"), "a")
        self.hub = subprocess.Popen(
            [self.bin, "hub", "--data", self.hub_data, "--listen", "127.0.0.1:%d" % self.port,
             "--no-auth"], env=self.env, stdout=self.hub_log, stderr=self.hub_log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.hub.poll() is not None:
                    raise SystemExit("the hub exited; see %s/hub.log" % self.w)
                time.sleep(0.1)
        raise SystemExit("the hub did not start listening")

    def stop_hub(self, sig=signal.SIGTERM):
        if self.hub and self.hub.poll() is None:
            self.hub.send_signal(sig)
            self.hub.wait(timeout=60)
        self.hub = None

    # ------------------------------------------------------------ commands

    def backup_cmd(self, repo):
        return [self.bin, "-r", repo, "--password-file", self.pw, "-q", "backup", self.src]

    def replicate_cmd(self):
        return [self.bin, "-c", os.path.join(self.w, "bulwark.toml"), "-q", "replicate",
                "--target", "usb"]

    def timed(self, cmd):
        t = time.monotonic()
        self.run_ok(cmd)
        return time.monotonic() - t

    # ------------------------------------------------------------ checks

    def residue(self, root):
        """(.tmp-* files, lock files) below root."""
        tmps, locks = [], []
        for d, _, files in os.walk(root):
            for f in files:
                if f.startswith(".tmp-"):
                    tmps.append(os.path.join(d, f))
                elif os.path.basename(d) == "locks":
                    locks.append(os.path.join(d, f))
        return tmps, locks

    def check(self, repo):
        r = subprocess.run(["restic", "-r", repo, "--no-lock", "check", "--read-data"],
                           env=self.env, capture_output=True, text=True)
        return r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-3:]

    # ------------------------------------------------------------ scenarios

    def scenario(self, name, run_round, repos, residue_roots, finish, prepare=None):
        prepare = prepare or self.mutate
        rounds = self.args.rounds
        res = {"rounds": rounds, "landed": 0, "check_failures": [], "tmp_seen": 0,
               "locks_seen": 0, "started": time.monotonic()}
        self.results[name] = res
        # One uncut run measures how long the operation takes.
        prepare()
        full = finish()
        res["uncut_seconds"] = full
        for i in range(rounds):
            prepare()
            delay = self.rng.uniform(0, max(full, 0.05))
            landed = run_round(delay)
            res["landed"] += landed
            tmps, locks = [], []
            for root in residue_roots:
                t, l = self.residue(root)
                tmps += t
                locks += l
            res["tmp_seen"] += len(tmps)
            res["locks_seen"] += len(locks)
            bad = []
            for repo in repos:
                ok, tail = self.check(repo)
                if not ok:
                    bad.append((repo, tail))
            res["check_failures"] += [(i, b) for b in bad]
            log("%-12s round %3d: kill after %.2fs (%s), residue: %d .tmp, %d lock(s); check %s"
                % (name, i + 1, delay, "while running" if landed else "after it ended",
                   len(tmps), len(locks), "FAILED " + repr(bad) if bad else "ok"))
        # A final uncut run must clean up after every crash.
        prepare()
        finish()
        left_t, left_l = [], []
        for root in residue_roots:
            t, l = self.residue(root)
            left_t += t
            left_l += l
        res["tmp_left"] = left_t
        res["locks_left"] = left_l
        for repo in repos:
            ok, tail = self.check(repo)
            if not ok:
                res["check_failures"].append(("final", (repo, tail)))
        res["seconds"] = time.monotonic() - res["started"]
        log("%-12s after a final uncut run: %d .tmp and %d lock(s) left%s"
            % (name, len(left_t), len(left_l), (": " + ", ".join(left_t + left_l)) if left_t or left_l else ""))

    def kill_after(self, cmd, delay):
        """Runs cmd, SIGKILLs it after delay; True if it was still running."""
        p = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=delay)
            return False
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return True

    def run(self):
        self.setup()
        local_cmd = self.backup_cmd(self.local_repo)
        self.scenario(
            "backup-local",
            lambda d: self.kill_after(local_cmd, d),
            [self.local_repo], [self.local_repo],
            lambda: self.timed(local_cmd))

        hub_repo_dir = os.path.join(self.hub_data, REPO_PATH)
        rest_cmd = self.backup_cmd(self.rest_url())
        self.scenario(
            "backup-hub",
            lambda d: self.kill_after(rest_cmd, d),
            [hub_repo_dir], [self.hub_data],
            lambda: self.timed(rest_cmd))

        def hub_round(delay):
            # The hub is killed under upload; the client then fails.
            client = subprocess.Popen(rest_cmd, env=self.env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            try:
                client.wait(timeout=delay)
                landed = False
            except subprocess.TimeoutExpired:
                landed = True
            self.hub.kill()
            self.hub.wait()
            try:
                client.wait(timeout=120)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
            self.start_hub()
            return landed

        self.scenario("hub-upload", hub_round, [hub_repo_dir], [self.hub_data],
                      lambda: self.timed(rest_cmd))

        # Replication reads the hub's data directory directly: no hub needed.
        self.stop_hub()
        usb_repo = os.path.join(self.usb, REPO_PATH)
        rep_cmd = self.replicate_cmd()

        into_hub = self.backup_cmd(hub_repo_dir)

        def rep_prepare():
            # New data at the source: a backup straight into the hub's data
            # directory (a local repository), so every pass has work to do.
            self.mutate()
            self.run_ok(into_hub)

        self.run_ok(rep_cmd)  # the first, full copy is not what is measured
        self.scenario("replicate", lambda d: self.kill_after(rep_cmd, d), [usb_repo],
                      [self.usb], lambda: self.timed(rep_cmd), prepare=rep_prepare)
        return self.report()

    def report(self):
        lines = ["# chaos.py report", "",
                 "bulwark: %s, rounds per scenario: %d, seed: %d, source: %d files x %d bytes"
                 % (self.bin, self.args.rounds, self.args.seed, self.args.files, self.args.file_size),
                 "",
                 "| scenario | rounds | kills while running | uncut run (s) | check --read-data failures "
                 "| .tmp seen after kills | locks seen after kills | .tmp left at end | locks left at end "
                 "| duration (s) |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        failed = False
        for name, r in self.results.items():
            failed |= bool(r["check_failures"] or r["tmp_left"] or r["locks_left"])
            lines.append("| %s | %d | %d | %.2f | %d | %d | %d | %d | %d | %.0f |" % (
                name, r["rounds"], r["landed"], r["uncut_seconds"], len(r["check_failures"]),
                r["tmp_seen"], r["locks_seen"], len(r["tmp_left"]), len(r["locks_left"]), r["seconds"]))
        for name, r in self.results.items():
            for f in r["check_failures"]:
                lines.append("- %s: check failed: %r" % (name, f))
        text = "\n".join(lines) + "\n"
        print("\n" + text)
        with open(os.path.join(self.w, "chaos-report.md"), "w") as f:
            f.write(text)
        return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=50, help="kills per scenario (default 50)")
    ap.add_argument("--bulwark", default=os.path.join(ROOT, "target/debug/bulwark"))
    ap.add_argument("--workdir", default="/tmp/bulwark-chaos")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", type=int, default=40, help="files in the source tree")
    ap.add_argument("--file-size", type=int, default=1 << 20, help="bytes per file")
    args = ap.parse_args()
    if not os.access(args.bulwark, os.X_OK):
        sys.exit("no bulwark binary at %s; build it with: cargo build -p bulwark" % args.bulwark)
    if not shutil.which("restic"):
        sys.exit("restic is not installed")
    c = Chaos(args)
    try:
        sys.exit(c.run())
    finally:
        c.stop_hub()


if __name__ == "__main__":
    main()
