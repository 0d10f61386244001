//! Backups: local paths plus command sources (database dumps) in one snapshot.
//!
//! rustic_core's archiver drops a file it cannot read and only logs it. We
//! wrap its source so every such file is *recorded* (path and reason), which
//! lets the caller report it and exit with "incomplete". Command sources are
//! streamed straight from the child's stdout into the snapshot — no temp file —
//! and a command that exits non-zero, or writes a line matching one of its
//! `fail_on_stderr` patterns to stderr, fails its file: a truncated dump is
//! never stored as if it were whole. A command's environment (`env`, where
//! passwords go) is set for that child only and never shown.

use std::{
    ffi::OsStr,
    io::{self, Read},
    iter::Peekable,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use rustic_core::{
    repofile::{Metadata, Node, NodeType},
    BackupOptions, DevIdOption, Excludes, LocalSource, LocalSourceFilterOptions,
    LocalSourceSaveOptions, ReadSource, ReadSourceEntry, ReadSourceOpen, RusticError, RusticResult,
    SnapshotOptions, StringList, TimeOption,
};
use serde::Serialize;

use crate::{
    error::{guard, Error, ErrorKind, Result},
    repo::{absolute, Repo},
    snapshots::SnapshotInfo,
};

/// A command whose standard output becomes one file in the snapshot.
///
/// The file fails (is left out of the snapshot and listed in
/// [`BackupSummary::skipped`]) when the command exits non-zero, is killed,
/// or writes a line to stderr that contains one of `fail_on_stderr`.
/// `Debug` shows the names of `env`, never its values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CommandSource {
    /// Program to run.
    pub program: String,
    /// Its arguments (never put a secret here: other users can read argv).
    pub args: Vec<String>,
    /// Path of the file inside the snapshot, relative (stored under `/`).
    pub filename: String,
    /// How to name the command in messages (never includes secrets we know of).
    pub display: String,
    /// Environment variables set for this child only (e.g. `PGPASSWORD`).
    /// Their values are never shown in messages or logs.
    pub env: Vec<(String, String)>,
    /// The file fails if a line the command writes to stderr contains one of
    /// these (case-sensitive; empty patterns are ignored). Every line is
    /// scanned, not just the tail kept for messages.
    pub fail_on_stderr: Vec<String>,
    /// Set when the source could not even be prepared (its password could
    /// not be loaded, its tool is not installed, ...): nothing is run and the
    /// file fails with this message.
    pub unavailable: Option<String>,
}

impl std::fmt::Debug for CommandSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<String> = self.env.iter().map(|(k, _)| format!("{k}=***")).collect();
        f.debug_struct("CommandSource")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("filename", &self.filename)
            .field("display", &self.display)
            .field("env", &env)
            .field("fail_on_stderr", &self.fail_on_stderr)
            .field("unavailable", &self.unavailable)
            .finish()
    }
}

/// What to back up and how.
#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// Command sources.
    pub commands: Vec<CommandSource>,
    /// Exclude patterns (restic/gitignore style globs).
    pub excludes: Vec<String>,
    /// Skip directories that contain a file with one of these names.
    pub exclude_if_present: Vec<String>,
    /// Don't cross file-system boundaries.
    pub one_file_system: bool,
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Tags to record.
    pub tags: Vec<String>,
}

/// A file that could not be backed up.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SkippedFile {
    /// Path as it would appear in the snapshot ("" when unknown).
    pub path: String,
    /// Why it was skipped.
    pub error: String,
}

/// The outcome of a backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    /// The snapshot that landed.
    pub snapshot: SnapshotInfo,
    /// Files that could not be read (the snapshot lacks them).
    pub skipped: Vec<SkippedFile>,
    /// True when anything was skipped.
    pub incomplete: bool,
}

type Recorder = Arc<Mutex<Vec<SkippedFile>>>;

fn record(rec: &Recorder, path: &Path, error: impl Into<String>) {
    let path = path.to_string_lossy().into_owned();
    if let Ok(mut v) = rec.lock() {
        if !v.iter().any(|s| s.path == path && !path.is_empty()) {
            v.push(SkippedFile {
                path,
                error: crate::error::one_line(&error.into()),
            });
        }
    }
}

/// How to open one entry of the combined source.
#[derive(Debug)]
pub(crate) enum Open {
    Local(<LocalSource as ReadSource>::Open, PathBuf, Recorder),
    Command(CommandSource, PathBuf, Recorder),
}

impl ReadSourceOpen for Open {
    type Reader = Box<dyn Read + Send>;

    fn open(self) -> RusticResult<Self::Reader> {
        match self {
            Self::Local(inner, path, rec) => match inner.open() {
                Ok(file) => Ok(Box::new(Recording {
                    inner: file,
                    path,
                    rec,
                    failed: false,
                })),
                Err(e) => {
                    record(&rec, &path, open_error_text(&e));
                    Err(e)
                }
            },
            Self::Command(cmd, path, rec) if cmd.unavailable.is_some() => {
                let msg = cmd.unavailable.unwrap_or_default();
                record(
                    &rec,
                    &path,
                    format!("command `{}` was not run: {msg}", cmd.display),
                );
                Err(RusticError::new(
                    rustic_core::ErrorKind::ExternalCommand,
                    "command source unavailable",
                ))
            }
            Self::Command(cmd, path, rec) => match CommandReader::spawn(&cmd) {
                Ok(reader) => Ok(Box::new(Recording {
                    inner: reader,
                    path,
                    rec,
                    failed: false,
                })),
                Err(e) => {
                    let msg = format!("command `{}` could not be started: {e}", cmd.display);
                    record(&rec, &path, msg.clone());
                    Err(RusticError::with_source(
                        rustic_core::ErrorKind::ExternalCommand,
                        "command source failed",
                        e,
                    ))
                }
            },
        }
    }
}

fn open_error_text(e: &RusticError) -> String {
    let log = e.display_log();
    match log.split_once(": caused by: ") {
        Some((_, cause)) => cause
            .split(" : (source")
            .next()
            .unwrap_or(cause)
            .trim()
            .to_string(),
        None => log,
    }
}

/// The directory walker's errors carry the path only in their text
/// ("/src/x: IO error for operation on /src/x: Permission denied"); split it
/// into (path, reason) so the summary names what was skipped.
fn split_walk_error(text: &str) -> (String, String) {
    if let Some((_, rest)) = text.split_once("for operation on ") {
        if let Some((path, why)) = rest.split_once(": ") {
            return (path.to_string(), why.trim().to_string());
        }
    }
    if text.starts_with('/') {
        if let Some((path, why)) = text.split_once(": ") {
            return (path.to_string(), why.trim().to_string());
        }
    }
    (String::new(), text.to_string())
}

/// Records the first read error of a file.
struct Recording<R> {
    inner: R,
    path: PathBuf,
    rec: Recorder,
    failed: bool,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                if !self.failed {
                    self.failed = true;
                    record(&self.rec, &self.path, e.to_string());
                }
                Err(e)
            }
            ok => ok,
        }
    }
}

/// PIDs of running command sources, so an interrupt can stop them.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Sends SIGTERM to the process group of every command source this process is running (for a
/// Ctrl-C handler that exits without unwinding: a `pg_dump` must not outlive
/// the backup that reads it).
pub fn stop_running_commands() {
    if let Ok(pids) = RUNNING.lock() {
        for pid in pids.iter() {
            if let Ok(pid) = i32::try_from(*pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(-pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
}

fn forget_pid(pid: u32) {
    if let Ok(mut pids) = RUNNING.lock() {
        pids.retain(|p| *p != pid);
    }
}

/// What the stderr reader saw.
#[derive(Debug, Default)]
struct StderrScan {
    /// The last few KiB, to say why a command failed.
    tail: Vec<u8>,
    /// The first `fail_on_stderr` pattern found, and the line holding it.
    matched: Option<(String, String)>,
}

/// Bytes of stderr kept for messages.
const STDERR_TAIL: usize = 2048;
/// A line longer than this is scanned in pieces (a command printing
/// megabytes without a newline must not grow memory without bound).
const MAX_LINE: usize = 64 * 1024;

impl StderrScan {
    fn check(&mut self, line: &[u8], patterns: &[String]) {
        if self.matched.is_some() {
            return;
        }
        if let Some(p) = patterns.iter().find(|p| contains(line, p.as_bytes())) {
            let text = String::from_utf8_lossy(line);
            let text: String = text.trim().chars().take(300).collect();
            self.matched = Some((p.clone(), text));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads a child's stderr to its end: keeps the tail and scans every line
/// for the `fail_on_stderr` patterns.
fn scan_stderr(mut err: impl Read, patterns: &[String]) -> StderrScan {
    let longest = patterns.iter().map(String::len).max().unwrap_or(0);
    let mut scan = StderrScan::default();
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match err.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        scan.tail.extend_from_slice(chunk);
        if scan.tail.len() > 2 * STDERR_TAIL {
            scan.tail.drain(..scan.tail.len() - STDERR_TAIL);
        }
        if patterns.is_empty() {
            continue;
        }
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            line.extend_from_slice(piece);
            if piece.ends_with(b"\n") {
                scan.check(&line, patterns);
                line.clear();
            } else if line.len() > MAX_LINE {
                // scan what we have; keep enough to find a pattern that
                // straddles the cut
                scan.check(&line, patterns);
                let keep = longest.saturating_sub(1).min(line.len());
                line.drain(..line.len() - keep);
            }
        }
    }
    if !line.is_empty() {
        scan.check(&line, patterns);
    }
    scan
}

/// The last (at most two) non-empty lines of a command's stderr, for messages.
fn stderr_summary(tail: &[u8]) -> String {
    let text = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(2)..].join(" / ")
}

/// Streams a child's stdout; at EOF, fails unless the child exited 0 and
/// wrote no line matching a `fail_on_stderr` pattern. The archiver records
/// the number of bytes it read as the file's size (see vendor/README.md).
struct CommandReader {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<StderrScan>>,
    display: String,
    done: bool,
}

impl CommandReader {
    fn spawn(cmd: &CommandSource) -> io::Result<Self> {
        // its own process group, so an interrupt can stop the whole pipeline
        // (`sh -c "pg_dump | gzip"`), not just the shell
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Ok(mut pids) = RUNNING.lock() {
            pids.push(child.id());
        }
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let patterns: Vec<String> = cmd
            .fail_on_stderr
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect();
        let stderr = child
            .stderr
            .take()
            .map(|err| std::thread::spawn(move || scan_stderr(err, &patterns)));
        Ok(Self {
            child,
            stdout,
            stderr,
            display: cmd.display.clone(),
            done: false,
        })
    }

    fn finish(&mut self) -> io::Result<()> {
        self.done = true;
        let status = self.child.wait();
        forget_pid(self.child.id());
        let status = status?;
        let scan = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if status.success() && scan.matched.is_none() {
            return Ok(());
        }
        let msg = match (status.success(), scan.matched) {
            (true, Some((pattern, line))) => format!(
                "command `{}` wrote `{pattern}` to stderr (fail_on_stderr); its output was not stored: {line}",
                self.display
            ),
            _ => {
                let what = match status.code() {
                    Some(c) => format!("exited with status {c}"),
                    None => "was killed by a signal".to_string(),
                };
                let mut msg = format!("command `{}` {what}; its output was not stored", self.display);
                let tail = stderr_summary(&scan.tail);
                if !tail.is_empty() {
                    msg.push_str(": ");
                    msg.push_str(&tail);
                }
                msg
            }
        };
        Err(io::Error::other(msg))
    }
}

impl Read for CommandReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 {
            self.finish()?;
        }
        Ok(n)
    }
}

impl Drop for CommandReader {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
            forget_pid(self.child.id());
        }
    }
}

type Entry = RusticResult<ReadSourceEntry<Open>>;

/// Local paths and command outputs as one sorted stream of entries.
struct CombinedSource {
    local: Option<LocalSource>,
    /// The backed-up directories and every directory above them: rustic_core's
    /// walker skips them, which would store them with default metadata (0755,
    /// no mtime, no owner) and restore a private home directory world-readable.
    roots: Vec<(PathBuf, Node)>,
    /// The backed-up paths (files or directories).
    local_paths: Vec<PathBuf>,
    commands: Vec<(PathBuf, CommandSource)>,
    rec: Recorder,
}

/// restic's (Go's) file-mode bits for a directory with unix `mode`.
fn go_dir_mode(mode: u32) -> u32 {
    let mut go = (mode & 0o777) | (1 << 31);
    if mode & 0o4000 != 0 {
        go |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        go |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        go |= 1 << 20;
    }
    go
}

/// The node of a directory on the path to a backed-up path (or of a
/// backed-up directory itself), with the metadata restic records for every
/// directory: mode, owner (ids and names), mtime/atime/ctime, inode, device
/// id and extended attributes. `None` if it is not a directory or cannot be
/// read (rustic_core then stores it as a bare 0755 directory).
fn dir_node(path: &Path) -> Option<Node> {
    use std::os::unix::fs::MetadataExt;
    let name = path.file_name()?;
    let m = std::fs::symlink_metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_dir)?;
    let ts = |s: i64, ns: i64| jiff::Timestamp::new(s, i32::try_from(ns).unwrap_or(0)).ok();
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(m.uid()))
        .ok()
        .flatten()
        .map(|u| u.name);
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(m.gid()))
        .ok()
        .flatten()
        .map(|g| g.name);
    let meta = Metadata {
        mode: Some(go_dir_mode(m.mode())),
        mtime: ts(m.mtime(), m.mtime_nsec()),
        atime: ts(m.atime(), m.atime_nsec()),
        ctime: ts(m.ctime(), m.ctime_nsec()),
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        user,
        group,
        inode: m.ino(),
        device_id: m.dev(),
        extended_attributes: serde_json::from_value(crate::xattrs::read(path)).unwrap_or_default(),
        ..Metadata::default()
    };
    Some(Node::new_node(name, NodeType::Dir, meta))
}

/// Every directory from `/` down to each backed-up path (the paths
/// themselves included when they are directories), once each, sorted — so
/// each one is stored with its real metadata. rustic_core would make up the
/// missing ones with mode 0755 and nothing else, and a restore would give
/// back `/home/alice` world-readable and owned by root.
fn path_dirs(paths: &[PathBuf]) -> Vec<(PathBuf, Node)> {
    let mut dirs = std::collections::BTreeMap::new();
    for p in paths {
        for a in p.ancestors() {
            if a.parent().is_none() || dirs.contains_key(a) {
                continue; // `/` itself has no node (it is the snapshot's root tree)
            }
            if let Some(node) = dir_node(a) {
                dirs.insert(a.to_path_buf(), node);
            }
        }
    }
    dirs.into_iter().collect()
}

/// Makes a walked node's fields what restic 0.14 records: no size for a
/// symlink (rustic_core stores the target's length) and no link count for a
/// FIFO or socket (see the parity test in crates/bulwark/tests/parity.rs).
fn restic_fields(node: &mut Node) {
    match node.node_type {
        NodeType::Symlink { .. } => node.meta.size = 0,
        NodeType::Fifo | NodeType::Socket => node.meta.links = 0,
        _ => {}
    }
}

/// Puts each root directory's entry right before its first child.
struct WithRoots<I: Iterator<Item = Entry>> {
    inner: Peekable<I>,
    roots: std::vec::IntoIter<(PathBuf, Node)>,
    next_root: Option<(PathBuf, Node)>,
}

impl<I: Iterator<Item = Entry>> Iterator for WithRoots<I> {
    type Item = Entry;
    fn next(&mut self) -> Option<Entry> {
        let due = match (&self.next_root, self.inner.peek()) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some((root, _)), Some(Ok(e))) => root.as_path() <= e.path.as_path(),
            (Some(_), Some(Err(_))) => false,
        };
        if due {
            let (path, node) = self.next_root.take()?;
            self.next_root = self.roots.next();
            return Some(Ok(ReadSourceEntry {
                path,
                node,
                open: None,
            }));
        }
        self.inner.next()
    }
}

impl ReadSource for CombinedSource {
    type Open = Open;
    type Iter = Box<dyn Iterator<Item = Entry> + Send>;

    fn size(&self) -> RusticResult<Option<u64>> {
        match &self.local {
            Some(l) => l.size(),
            None => Ok(None),
        }
    }

    fn entries(&self) -> Self::Iter {
        let rec = self.rec.clone();
        let local: Box<dyn Iterator<Item = Entry> + Send> = match &self.local {
            Some(l) => {
                let rec = rec.clone();
                Box::new(l.entries().filter_map(move |item| match item {
                    Ok(mut e) => {
                        restic_fields(&mut e.node);
                        let path = e.path.clone();
                        Some(Ok(ReadSourceEntry {
                            path: e.path,
                            node: e.node,
                            open: e.open.map(|o| Open::Local(o, path, rec.clone())),
                        }))
                    }
                    Err(err) => {
                        // unreadable directory, vanished entry, ...: record, skip
                        let (path, why) = split_walk_error(&open_error_text(&err));
                        record(&rec, Path::new(&path), why);
                        None
                    }
                }))
            }
            None => Box::new(std::iter::empty()),
        };
        let mut roots = self.roots.clone().into_iter();
        let next_root = roots.next();
        let local: Box<dyn Iterator<Item = Entry> + Send> = Box::new(WithRoots {
            inner: local.peekable(),
            roots,
            next_root,
        });
        let now = jiff::Timestamp::now();
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        // a fresh mtime makes sure the parent snapshot never "matches" and
        // the command is really run every time
        let meta = |mode: u32| Metadata {
            mode: Some(mode),
            mtime: Some(now),
            atime: Some(now),
            ctime: Some(now),
            uid: Some(uid.as_raw()),
            gid: Some(gid.as_raw()),
            user: nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name),
            group: nix::unistd::Group::from_gid(gid)
                .ok()
                .flatten()
                .map(|g| g.name),
            ..Metadata::default()
        };
        // the directories a command's file goes in (`/postgres` for
        // `postgres/all.sql`) that no backed-up path provides: owner-only,
        // with times and owner (rustic_core would store a bare 0755 node
        // without mtime, which restic restores as 1901 and other readers refuse)
        let provided = |dir: &Path| {
            self.roots.iter().any(|(p, _)| p == dir)
                || self.local_paths.iter().any(|p| dir.starts_with(p))
        };
        let mut cmds: std::collections::BTreeMap<PathBuf, Entry> =
            std::collections::BTreeMap::new();
        for (path, cmd) in &self.commands {
            for dir in path.ancestors().skip(1) {
                let Some(name) = dir.file_name() else {
                    continue;
                };
                if provided(dir) || cmds.contains_key(dir) {
                    continue;
                }
                cmds.insert(
                    dir.to_path_buf(),
                    Ok(ReadSourceEntry {
                        path: dir.to_path_buf(),
                        node: Node::new_node(name, NodeType::Dir, meta(go_dir_mode(0o700))),
                        open: None,
                    }),
                );
            }
            let name = path.file_name().unwrap_or_else(|| OsStr::new("stdout"));
            // dumps hold secrets: owner-only
            cmds.insert(
                path.clone(),
                Ok(ReadSourceEntry {
                    path: path.clone(),
                    node: Node::new_node(name, NodeType::File, meta(0o600)),
                    open: Some(Open::Command(cmd.clone(), path.clone(), rec.clone())),
                }),
            );
        }
        let cmds: Vec<Entry> = cmds.into_values().collect();
        Box::new(Merge {
            a: local.peekable(),
            b: cmds.into_iter().peekable(),
            rec,
        })
    }
}

/// Merges two path-sorted entry streams; on equal paths the local entry wins.
struct Merge<A: Iterator<Item = Entry>, B: Iterator<Item = Entry>> {
    a: Peekable<A>,
    b: Peekable<B>,
    rec: Recorder,
}

fn entry_path(e: &Entry) -> Option<&Path> {
    e.as_ref().ok().map(|e| e.path.as_path())
}

impl<A: Iterator<Item = Entry>, B: Iterator<Item = Entry>> Iterator for Merge<A, B> {
    type Item = Entry;
    fn next(&mut self) -> Option<Entry> {
        loop {
            let order = match (self.a.peek().map(entry_path), self.b.peek().map(entry_path)) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(pa), Some(pb)) => match (pa, pb) {
                    (Some(pa), Some(pb)) => pa.cmp(pb),
                    _ => std::cmp::Ordering::Less,
                },
            };
            return match order {
                std::cmp::Ordering::Less => self.a.next(),
                std::cmp::Ordering::Greater => self.b.next(),
                std::cmp::Ordering::Equal => {
                    if let Some(Ok(e)) = self.b.next() {
                        record(
                            &self.rec,
                            &e.path,
                            "a command source has the same path as a backed-up file; the file was kept",
                        );
                    }
                    continue;
                }
            };
        }
    }
}

fn check_filename(name: &str) -> Result<PathBuf> {
    let p = Path::new(name);
    let ok = !name.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        && !name.starts_with('/');
    if !ok {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{name}` is not a valid file name for a command source"),
        )
        .hint("use a relative path without `..`, e.g. `postgres/all.sql`"));
    }
    Ok(Path::new("/").join(p))
}

impl Repo {
    /// Backs up `req` into a new snapshot.
    ///
    /// Unreadable files are skipped and listed in the summary (`incomplete`);
    /// the snapshot still lands. Fatal problems (repository unreachable,
    /// nothing to back up, a source path that does not exist) are errors.
    pub fn backup(&self, req: &BackupRequest) -> Result<BackupSummary> {
        if req.paths.is_empty() && req.commands.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "nothing to back up")
                .hint("give one or more paths, a command source, or a job with sources"));
        }
        let mut paths = Vec::new();
        for p in &req.paths {
            let abs = absolute(p)?;
            if std::fs::symlink_metadata(&abs).is_err() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("the source path {} does not exist", abs.display()),
                )
                .hint("fix the path on the command line or in the job's `paths`"));
            }
            if !paths.contains(&abs) {
                paths.push(abs);
            }
        }
        paths.sort();
        // `backup /a /a/b`: /a already holds /a/b; walking both would store
        // its entries twice
        let all = paths.clone();
        paths.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q)));
        let mut commands = Vec::new();
        for c in &req.commands {
            let path = check_filename(&c.filename)?;
            if commands.iter().any(|(p, _)| *p == path) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("two command sources write `{}`", c.filename),
                )
                .hint("give each command source its own filename"));
            }
            commands.push((path, c.clone()));
        }
        commands.sort_by(|a, b| a.0.cmp(&b.0));

        let rec: Recorder = Arc::default();
        let _lock = self.lock(false)?;
        let local = if paths.is_empty() {
            None
        } else {
            let mut excludes = Excludes::default();
            excludes.globs = req.excludes.iter().map(|g| format!("!{g}")).collect();
            let mut filter = LocalSourceFilterOptions::default();
            filter.exclude_if_present = req.exclude_if_present.clone();
            filter.one_file_system = req.one_file_system;
            // as restic records them: the real atime (rustic_core's default
            // repeats the mtime) and the device id of every node (not only of
            // hard links)
            let mut save = LocalSourceSaveOptions::default();
            save.set_atime = Some(TimeOption::Yes);
            save.set_devid = Some(DevIdOption::Yes);
            let src = LocalSource::new(save, &excludes, &filter, &paths).map_err(|e| {
                Error::from_rustic("cannot prepare the source paths", &e)
                    .hint("check the exclude patterns")
            })?;
            Some(src)
        };
        let mut backup_paths = paths.clone();
        backup_paths.extend(commands.iter().map(|(p, _)| p.clone()));
        let roots = path_dirs(&paths);
        let source = CombinedSource {
            local,
            roots,
            local_paths: paths.clone(),
            commands,
            rec: rec.clone(),
        };

        let mut snap_opts = SnapshotOptions::default();
        snap_opts.host = req.host.clone();
        snap_opts.command = Some("bulwark backup".to_string());
        for t in &req.tags {
            let list: StringList = t.parse().map_err(|_| {
                Error::new(ErrorKind::InvalidInput, format!("`{t}` is not a valid tag"))
            })?;
            snap_opts.tags.push(list);
        }
        let snap = snap_opts
            .to_snapshot()
            .map_err(|e| Error::from_rustic("cannot prepare the snapshot", &e))?;

        let snap = guard("backup", || {
            let indexed = self
                .fresh()?
                .to_indexed_ids()
                .map_err(|e| Error::from_rustic("cannot read the repository index", &e))?;
            indexed
                .archive(&BackupOptions::default(), &source, snap, &backup_paths)
                .map_err(|e| Error::from_rustic("backup failed", &e))
        })?;
        let mut skipped = rec.lock().map(|v| v.clone()).unwrap_or_default();
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(BackupSummary {
            snapshot: SnapshotInfo::from_file(&snap),
            incomplete: !skipped.is_empty(),
            skipped,
        })
    }
}
