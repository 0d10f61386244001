//! Shared helpers for the end-to-end tests: run the real `bulwark` binary and
//! restic 0.14 against temporary repositories, and compare directory trees.

#![allow(dead_code, clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_bulwark");

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
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
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

    /// A `bulwark` command with this env's repository and password.
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

    pub fn bulwark<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.cmd().args(args).output().unwrap().into()
    }

    pub fn restic<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        Command::new("restic")
            .env("RESTIC_REPOSITORY", &self.repo)
            .env("RESTIC_PASSWORD_FILE", &self.pw)
            .env("TZ", "UTC")
            .arg("--no-cache")
            .args(args)
            .output()
            .unwrap()
            .into()
    }

    pub fn init(&self) {
        self.bulwark(&["init"]).ok();
    }
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
    /// index of the first path sharing this inode (hard links)
    pub link_group: Option<PathBuf>,
    /// owner, compared only when the tests run as root
    pub owner: Option<(u32, u32)>,
}

/// Everything under `root`, keyed by relative path.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let ft = m.file_type();
            let (kind, content, link) = if ft.is_symlink() {
                ("symlink", None, Some(std::fs::read_link(&p).unwrap()))
            } else if ft.is_dir() {
                stack.push(p.clone());
                ("dir", None, None)
            } else if ft.is_file() {
                ("file", Some(std::fs::read(&p).unwrap()), None)
            } else {
                ("other", None, None)
            };
            let link_group = (ft.is_file() && m.nlink() > 1).then(|| inodes.entry(m.ino()).or_insert(rel.clone()).clone());
            let mtime = if ft.is_dir() { 0 } else { m.mtime() };
            let owner = is_root().then(|| (m.uid(), m.gid()));
            out.insert(rel, Entry { kind, content, mode: m.permissions().mode() & 0o7777, mtime, link, link_group, owner });
        }
    }
    out
}

/// Asserts two trees are identical, naming the first difference.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let (a, b) = (tree(expected), tree(actual));
    for (path, e) in &a {
        match b.get(path) {
            None => panic!("{} is missing from {}", path.display(), actual.display()),
            Some(f) => {
                assert_eq!(e.kind, f.kind, "type of {}", path.display());
                assert!(e.content == f.content, "content of {} differs", path.display());
                assert_eq!(e.mode, f.mode, "mode of {}", path.display());
                if e.kind != "symlink" {
                    assert_eq!(e.mtime, f.mtime, "mtime of {}", path.display());
                }
                assert_eq!(e.link, f.link, "symlink target of {}", path.display());
                assert_eq!(e.link_group, f.link_group, "hard-link group of {}", path.display());
                assert_eq!(e.owner, f.owner, "owner of {}", path.display());
            }
        }
    }
    let extra: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(extra.is_empty(), "unexpected entries in {}: {extra:?}", actual.display());
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn is_root() -> bool {
    nix_like_geteuid() == 0
}

fn nix_like_geteuid() -> u32 {
    // read our own effective uid from /proc (no extra crate, no unsafe)
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Sets a file's mtime via `touch -d @SECS`.
pub fn set_mtime(p: &Path, secs: i64) {
    let st = Command::new("touch").arg("-h").arg("-d").arg(format!("@{secs}")).arg(p).status().unwrap();
    assert!(st.success());
}
