//! Shared helpers for the end-to-end tests: run the real `bulwark` binary and
//! restic 0.14 against temporary repositories, and compare directory trees.

#![allow(dead_code, clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsStr,
    io::Read,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_bulwark");

/// No single command of these tests may take longer than this; a hang is a
/// failure with a message, never a stuck test run.
pub const TIMEOUT: Duration = Duration::from_secs(240);

/// A test workspace: a temp dir with a repository path and a password file.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub pw: PathBuf,
}

/// What a process did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout as bytes (dump output, names that are not UTF-8)
    pub raw: Vec<u8>,
    pub timed_out: bool,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<std::process::Output> for Out {
    fn from(o: std::process::Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            raw: o.stdout,
            timed_out: false,
        }
    }
}

/// Runs `cmd` to completion (stdin closed), killing it after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Out {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let te = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let raw = to.join().unwrap();
    let mut err = te.join().unwrap();
    if timed_out {
        err.extend_from_slice(
            format!("\n[test harness: killed after {limit:?}: the command hung]").as_bytes(),
        );
    }
    Out {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&raw).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        raw,
        timed_out,
    }
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let pw = dir.path().join("password");
        std::fs::write(&pw, "correct horse battery staple\n").unwrap();
        Self { dir, repo, pw }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A `bulwark` command with this env's repository, password and cache.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("BULWARK_REPO", &self.repo)
            .env("BULWARK_PASSWORD_FILE", &self.pw)
            .env("TZ", "UTC");
        c
    }

    /// The same command, run as `nobody` when the tests run as root (so that
    /// `chmod 000` really makes a file unreadable). Makes the workspace
    /// accessible to nobody first.
    pub fn cmd_unprivileged(&self) -> Command {
        if !is_root() {
            return self.cmd();
        }
        let st = Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::set_permissions(&self.pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c.env_clear();
        for (k, v) in self.cmd().get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c.env("XDG_CACHE_HOME", self.path("nobody-cache"));
        c
    }

    pub fn bulwark<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        run(self.cmd().args(args), TIMEOUT)
    }

    /// `bulwark -c CONFIG ARGS`, the repository and password coming from the
    /// config only (no BULWARK_REPO / BULWARK_PASSWORD_FILE).
    pub fn bulwark_cfg<S: AsRef<OsStr>>(&self, cfg: &Path, args: &[S]) -> Out {
        let mut c = self.cmd();
        c.env_remove("BULWARK_REPO")
            .env_remove("BULWARK_PASSWORD_FILE")
            .arg("-c")
            .arg(cfg)
            .args(args);
        run(&mut c, TIMEOUT)
    }

    pub fn restic<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        restic_at(&self.repo, &self.pw, args)
    }

    pub fn init(&self) {
        self.bulwark(&["init"]).ok();
    }

    /// Ids of all snapshots, as bulwark lists them.
    pub fn snapshot_ids(&self) -> Vec<String> {
        self.bulwark(&["--json", "snapshots"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// restic 0.14 against `repo`, without a cache, in UTC.
pub fn restic_at<S: AsRef<OsStr>>(repo: &Path, pw: &Path, args: &[S]) -> Out {
    let mut c = Command::new("restic");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", repo.parent().unwrap())
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD_FILE", pw)
        .env("TZ", "UTC")
        .arg("--no-cache")
        .args(args);
    run(&mut c, TIMEOUT)
}

/// `target` + the absolute `path` (where restore puts a backed-up path).
pub fn under(target: &Path, path: &Path) -> PathBuf {
    target.join(path.strip_prefix("/").unwrap())
}

/// One entry of a directory tree, for comparison.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub content: Option<Vec<u8>>,
    pub mode: u32,
    pub mtime: i64,
    pub link: Option<PathBuf>,
    /// the first path (in walk order) sharing this inode, for hard links
    pub link_group: Option<PathBuf>,
    /// owner, compared only when the tests run as root
    pub owner: Option<(u32, u32)>,
}

/// Everything strictly below `root`, keyed by relative path.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let ft = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            let (kind, content, link) = if ft.is_symlink() {
                ("symlink", None, Some(std::fs::read_link(&p).unwrap()))
            } else if ft.is_dir() {
                stack.push(p.clone());
                ("dir", None, None)
            } else if ft.is_file() {
                ("file", Some(std::fs::read(&p).unwrap()), None)
            } else if ft.is_fifo() {
                ("fifo", None, None)
            } else {
                ("other", None, None)
            };
            let link_group = (ft.is_file() && m.nlink() > 1)
                .then(|| inodes.entry(m.ino()).or_insert(rel.clone()).clone());
            let owner = is_root().then(|| (m.uid(), m.gid()));
            out.insert(
                rel,
                Entry {
                    kind,
                    content,
                    mode: m.permissions().mode() & 0o7777,
                    mtime: m.mtime(),
                    link,
                    link_group,
                    owner,
                },
            );
        }
    }
    out
}

/// Asserts the trees below `expected` and `actual` are identical (type,
/// content, mode bits, mtime in seconds, symlink target, hard-link groups,
/// owner when root), naming the first difference.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let (a, b) = (tree(expected), tree(actual));
    let mut problems = Vec::new();
    for (path, e) in &a {
        match b.get(path) {
            None => problems.push(format!("{} is missing", path.display())),
            Some(f) => {
                let p = path.display();
                if e.kind != f.kind {
                    problems.push(format!("type of {p}: {} != {}", e.kind, f.kind));
                    continue;
                }
                if e.content != f.content {
                    problems.push(format!("content of {p} differs"));
                }
                if e.mode != f.mode {
                    problems.push(format!("mode of {p}: {:o} != {:o}", e.mode, f.mode));
                }
                if e.mtime != f.mtime {
                    problems.push(format!("mtime of {p}: {} != {}", e.mtime, f.mtime));
                }
                if e.link != f.link {
                    problems.push(format!(
                        "symlink target of {p}: {:?} != {:?}",
                        e.link, f.link
                    ));
                }
                if e.link_group != f.link_group {
                    problems.push(format!(
                        "hard-link group of {p}: {:?} != {:?}",
                        e.link_group, f.link_group
                    ));
                }
                if e.owner != f.owner {
                    problems.push(format!("owner of {p}: {:?} != {:?}", e.owner, f.owner));
                }
            }
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        problems.push(format!("unexpected entry {}", k.display()));
    }
    assert!(
        problems.is_empty(),
        "{} differs from {}:\n  {}",
        actual.display(),
        expected.display(),
        problems.join("\n  ")
    );
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `bytes` of /dev/urandom to `path`.
pub fn urandom_file(path: &Path, bytes: u64) {
    let mut src = std::fs::File::open("/dev/urandom").unwrap();
    let mut dst = std::fs::File::create(path).unwrap();
    std::io::copy(&mut Read::take(&mut src, bytes), &mut dst).unwrap();
}

pub fn is_root() -> bool {
    euid() == 0
}

fn euid() -> u32 {
    // our effective uid from /proc (no extra crate, no unsafe)
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Sets an entry's mtime (not following symlinks) via `touch -h -d @SECS`.
pub fn set_mtime(p: &Path, secs: i64) {
    let st = Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The pack files under `repo/data`.
pub fn packs(repo: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for d in std::fs::read_dir(repo.join("data")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            out.insert(f.unwrap().path());
        }
    }
    out
}

/// Text that must never reach a user.
pub fn assert_no_crash_text(what: &str, text: &str) {
    for bad in [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE=1 for details",
        "internal error",
    ] {
        assert!(!text.contains(bad), "{what}: `{bad}` in output:\n{text}");
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// The directory with the PostgreSQL server binaries (initdb, pg_ctl, psql,
/// pg_restore): the highest version under /usr/lib/postgresql. Panics with
/// what to install when there is none: these tests never skip silently.
pub fn pg_bin() -> PathBuf {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e
                .file_name()
                .to_string_lossy()
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file()
                && bin.join("pg_ctl").is_file()
                && bin.join("psql").is_file())
            .then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/VERSION/bin/initdb, pg_ctl, psql): \
             install PostgreSQL 15 (Debian: apt-get install postgresql postgresql-client; scripts/test.sh does)"
        ),
    }
}

/// A free TCP port on this machine (also names the unix socket).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway PostgreSQL cluster: initdb on a temp dir, listening only on a
/// unix socket in that dir, local connections trusted (plus `hba_extra`
/// lines first). Run as the `postgres` user when the tests run as root
/// (initdb refuses root). Stopped (immediately) on drop, even when the test
/// failed.
pub struct PgCluster {
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
    pub port: u16,
    data: PathBuf,
    running: bool,
}

impl PgCluster {
    pub fn start(hba_extra: &[&str]) -> Self {
        let bin = pg_bin();
        let dir = tempfile::Builder::new().prefix("bwpg").tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let st = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown postgres {}", dir.path().display());
        }
        let init = run(
            Self::as_pg(&bin.join("initdb")).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]),
            TIMEOUT,
        );
        assert_eq!(
            init.code, 0,
            "initdb failed:\n{}\n{}",
            init.stdout, init.stderr
        );
        let mut hba: String = hba_extra.iter().map(|l| format!("{l}\n")).collect();
        hba.push_str("local all all trust\n");
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let port = free_port();
        let mut c = Self {
            bin,
            port,
            data,
            dir,
            running: false,
        };
        let opts = format!(
            "-p {port} -k {} -c listen_addresses='' -c fsync=off",
            c.dir.path().display()
        );
        let log = c.dir.path().join("server.log");
        let st = run(
            Self::as_pg(&c.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&c.data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &opts, "-w", "-t", "120", "start"]),
            TIMEOUT,
        );
        c.running = st.code == 0;
        assert!(
            c.running,
            "pg_ctl start failed:\n{}\n{}\nserver log:\n{}",
            st.stdout,
            st.stderr,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        c
    }

    /// `program`, run as `postgres` when we are root.
    fn as_pg(program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// The socket directory (PGHOST).
    pub fn host(&self) -> &Path {
        self.dir.path()
    }

    /// A client tool of this cluster's version (psql, pg_restore, ...)
    /// connecting as `postgres`.
    pub fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        c.env("PGHOST", self.host())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres");
        c
    }

    /// Runs SQL in `db` (stops at the first error) and returns psql's output.
    pub fn sql(&self, db: &str, sql: &str) -> Out {
        let f = self.dir.path().join(format!("q-{}.sql", rand_suffix()));
        std::fs::write(&f, sql).unwrap();
        let out = run(
            self.tool("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
                .arg(&f),
            TIMEOUT,
        );
        let _ = std::fs::remove_file(&f);
        assert_eq!(
            out.code, 0,
            "psql -d {db} failed:\n{sql}\n{}\n{}",
            out.stdout, out.stderr
        );
        out
    }

    /// `COPY (query) TO STDOUT` in `db`: the exact text form of the rows.
    pub fn copy_out(&self, db: &str, query: &str) -> Vec<u8> {
        let out = run(
            self.tool("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c"])
                .arg(format!("COPY ({query}) TO STDOUT")),
            TIMEOUT,
        );
        assert_eq!(out.code, 0, "COPY in {db} failed: {}", out.stderr);
        out.raw
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = run(
                Self::as_pg(&self.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&self.data)
                    .args(["-m", "immediate", "-w", "stop"]),
                Duration::from_secs(60),
            );
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
