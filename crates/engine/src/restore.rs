//! Restore, written against rustic_core's public read API instead of its
//! `restore` command.
//!
//! rustic_core's restore uses 20 reader threads and an unbounded write queue
//! (≈1.1 GB peak on a 2 GB set) and `unwrap`s inside worker threads, so one
//! damaged pack takes the process down. Here:
//! - a fixed number of workers take whole files from a shared cursor — memory
//!   is bounded by `workers × largest chunk` plus rustic's 32 MiB blob cache;
//! - each file is restored inside its own panic guard; a file whose blobs
//!   can't be read is removed, listed, and the restore carries on;
//! - paths from the repository are checked component by component, so a
//!   hostile repository can't write outside the target directory;
//! - `verify` re-reads every restored file and checks each chunk's SHA-256
//!   against the blob ids the snapshot records.

use std::{
    collections::{HashMap, HashSet},
    ffi::OsStr,
    fs,
    io::{Read, Write},
    os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt},
    path::{Component, Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Mutex,
    },
};

use globset::{Glob, GlobSetBuilder};
use rustic_core::{
    repofile::{BlobType, Metadata, Node, NodeType},
    BlobId, DataId, IndexedFullStatus, LsOptions, Repository,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    error::{guard, Error, ErrorKind, Result},
    repo::Repo,
    snapshots::{SnapshotFilter, SnapshotInfo},
    Unit,
};

/// What to restore and where.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    /// `latest` or a snapshot id (prefix).
    pub snapshot: String,
    /// Narrows which snapshots `latest` considers.
    pub filter: SnapshotFilter,
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Restore only paths matching these patterns (and everything below a matching directory).
    /// Patterns are globs on the snapshot path, e.g. `/etc/nginx` or `/home/*/.ssh`.
    pub includes: Vec<String>,
    /// Re-read restored files and compare them with the snapshot's content hashes.
    pub verify: bool,
    /// Parallel file workers (0 = automatic).
    pub workers: usize,
}

/// A file or directory that could not be restored (or failed verification).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedPath {
    /// Path inside the snapshot.
    pub path: String,
    /// What went wrong.
    pub error: String,
}

/// The outcome of a restore.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreSummary {
    /// The snapshot restored.
    pub snapshot: SnapshotInfo,
    /// Where it went.
    pub target: String,
    /// Regular files restored (including hard links).
    pub files_restored: u64,
    /// Directories restored.
    pub dirs_restored: u64,
    /// Symlinks and other special files restored.
    pub special_restored: u64,
    /// Bytes of file content written.
    pub bytes_restored: u64,
    /// Files checked by `verify` (None when not asked).
    pub files_verified: Option<u64>,
    /// What could not be restored, or did not verify.
    pub failed: Vec<FailedPath>,
    /// Metadata (owner, mode, times) that could not be set; the content is fine.
    pub metadata_warnings: Vec<FailedPath>,
    /// True when anything failed.
    pub incomplete: bool,
}

struct FileJob {
    path: PathBuf,
    dest: PathBuf,
    blobs: Vec<(DataId, u64)>,
    sort_key: (String, u32),
}

pub(crate) fn go_mode_to_unix(go: u32) -> u32 {
    let mut mode = go & 0o777;
    if go & (1 << 23) != 0 {
        mode |= 0o4000;
    }
    if go & (1 << 22) != 0 {
        mode |= 0o2000;
    }
    if go & (1 << 20) != 0 {
        mode |= 0o1000;
    }
    mode
}

/// Joins a snapshot path onto `target`, refusing anything but normal components.
fn safe_join(target: &Path, rel: &Path) -> Option<PathBuf> {
    let mut out = target.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn display(p: &Path) -> String {
    Path::new("/").join(p).to_string_lossy().into_owned()
}

struct Failures(Mutex<Vec<FailedPath>>);

impl Failures {
    fn add(&self, path: &Path, error: impl Into<String>) {
        if let Ok(mut v) = self.0.lock() {
            v.push(FailedPath {
                path: display(path),
                error: crate::error::one_line(&error.into()),
            });
        }
    }
    fn take(self) -> Vec<FailedPath> {
        let mut v = self.0.into_inner().unwrap_or_default();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }
}

fn root_node(tree: rustic_core::TreeId) -> Node {
    let mut node = Node::new_node(OsStr::new(""), NodeType::Dir, Metadata::default());
    node.subtree = Some(tree);
    node
}

/// Lists every node of a snapshot (depth-first, sorted), recording unreadable trees.
pub(crate) fn walk_snapshot(
    repo: &Repository<IndexedFullStatus>,
    tree: rustic_core::TreeId,
    failures: &mut Vec<FailedPath>,
) -> Vec<(PathBuf, Node)> {
    let mut opts = LsOptions::default();
    opts.recursive = true;
    let mut out = Vec::new();
    match repo.ls(&root_node(tree), &opts) {
        Ok(iter) => {
            for item in iter {
                match item {
                    Ok(entry) => out.push(entry),
                    Err(e) => {
                        failures.push(FailedPath {
                            path: String::new(),
                            error: Error::from_rustic("a directory listing could not be read", &e)
                                .message,
                        });
                        if failures.len() > 10_000 {
                            break;
                        }
                    }
                }
            }
        }
        Err(e) => failures.push(FailedPath {
            path: "/".into(),
            error: Error::from_rustic("the snapshot's root directory could not be read", &e)
                .message,
        }),
    }
    out
}

/// Keeps nodes matching `includes`, their descendants and their ancestors.
fn apply_includes(
    nodes: Vec<(PathBuf, Node)>,
    includes: &[String],
) -> Result<Vec<(PathBuf, Node)>> {
    if includes.is_empty() {
        return Ok(nodes);
    }
    let mut b = GlobSetBuilder::new();
    for inc in includes {
        let pat = if inc.starts_with('/') {
            inc.trim_end_matches('/').to_string()
        } else {
            format!("**/{inc}")
        };
        let pat = if pat.is_empty() { "/".to_string() } else { pat };
        b.add(Glob::new(&pat).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("`{inc}` is not a valid include pattern: {e}"),
            )
            .hint("use a path like /etc/nginx or a glob like /home/*/.ssh")
        })?);
    }
    let set = b
        .build()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()))?;
    let mut included: Vec<bool> = Vec::with_capacity(nodes.len());
    let mut inc_dirs: Vec<PathBuf> = Vec::new();
    let mut ancestors: HashSet<PathBuf> = HashSet::new();
    for (path, node) in &nodes {
        while inc_dirs.last().is_some_and(|d| !path.starts_with(d)) {
            inc_dirs.pop();
        }
        let hit = !inc_dirs.is_empty() || set.is_match(Path::new("/").join(path));
        if hit {
            if node.is_dir() {
                inc_dirs.push(path.clone());
            }
            let mut a = path.parent();
            while let Some(p) = a {
                if p.as_os_str().is_empty() || !ancestors.insert(p.to_path_buf()) {
                    break;
                }
                a = p.parent();
            }
        }
        included.push(hit);
    }
    let kept: Vec<_> = nodes
        .into_iter()
        .zip(included)
        .filter(|((path, _), hit)| *hit || ancestors.contains(path))
        .map(|(n, _)| n)
        .collect();
    if kept.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "no path in the snapshot matches the --include patterns",
        )
        .hint(
            "list the snapshot with `bulwark ls SNAPSHOT` and use absolute paths like /etc/hosts",
        ));
    }
    Ok(kept)
}

fn restore_file(
    repo: &Repository<IndexedFullStatus>,
    job: &FileJob,
    phase: &dyn crate::Phase,
) -> std::result::Result<u64, (std::io::Error, bool)> {
    // Replace whatever is at the destination by unlinking it first: never
    // write through a symlink planted in the target, and a read-only file
    // from an earlier restore doesn't stop this one. After a failure we only
    // remove the file we created ourselves.
    match fs::symlink_metadata(&job.dest) {
        Ok(m) if !m.is_dir() => fs::remove_file(&job.dest).map_err(|e| (e, true))?,
        _ => {}
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&job.dest)
        .map_err(|e| (e, true))?;
    let written = write_blobs(repo, job, phase, &mut f);
    if written.is_err() {
        drop(f);
        let _ = fs::remove_file(&job.dest);
    }
    written
}

fn write_blobs(
    repo: &Repository<IndexedFullStatus>,
    job: &FileJob,
    phase: &dyn crate::Phase,
    f: &mut fs::File,
) -> std::result::Result<u64, (std::io::Error, bool)> {
    let mut written = 0;
    for (id, _) in &job.blobs {
        let data = repo
            .get_blob_cached(&BlobId::from(**id), BlobType::Data)
            .map_err(|e| {
                let err = Error::from_rustic(
                    &format!("chunk {} could not be read", &id.to_hex().to_string()[..8]),
                    &e,
                );
                (std::io::Error::other(err.message), false)
            })?;
        f.write_all(&data).map_err(|e| (e, true))?;
        written += data.len() as u64;
        phase.inc(data.len() as u64);
    }
    Ok(written)
}

fn verify_file(path: &Path, blobs: &[(DataId, u64)]) -> std::result::Result<(), String> {
    let mut f = fs::File::open(path).map_err(|e| format!("cannot re-read: {e}"))?;
    let mut buf = Vec::new();
    for (i, (id, len)) in blobs.iter().enumerate() {
        buf.clear();
        let n = (&mut f)
            .take(*len)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot re-read: {e}"))?;
        if n as u64 != *len {
            return Err(format!("file is shorter than in the snapshot (chunk {i})"));
        }
        let digest = Sha256::digest(&buf);
        if hex::encode(digest) != id.to_hex().to_string() {
            return Err(format!("content differs from the snapshot (chunk {i})"));
        }
    }
    let mut extra = [0u8; 1];
    if f.read(&mut extra)
        .map_err(|e| format!("cannot re-read: {e}"))?
        != 0
    {
        return Err("file is longer than in the snapshot".into());
    }
    Ok(())
}

fn set_metadata(dest: &Path, node: &Node, as_root: bool) -> std::result::Result<(), String> {
    let meta = &node.meta;
    let is_link = matches!(node.node_type, NodeType::Symlink { .. });
    let mut problems = Vec::new();
    if as_root {
        if let (Some(uid), Some(gid)) = (meta.uid, meta.gid) {
            if let Err(e) = nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                dest,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                problems.push(format!("owner: {e}"));
            }
        }
    }
    // after the owner (chown clears file capabilities) and before the mode
    problems.extend(crate::xattrs::restore(
        dest,
        meta.extended_attributes
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref())),
        as_root,
    ));
    if !is_link {
        if let Some(mode) = meta.mode {
            if let Err(e) =
                fs::set_permissions(dest, fs::Permissions::from_mode(go_mode_to_unix(mode)))
            {
                problems.push(format!("mode: {e}"));
            }
        }
    }
    if let Some(mtime) = meta.mtime {
        let to_ft = |t: jiff::Timestamp| {
            filetime::FileTime::from_unix_time(
                t.as_second(),
                u32::try_from(t.subsec_nanosecond()).unwrap_or(0),
            )
        };
        let m = to_ft(mtime);
        let a = meta.atime.map_or(m, to_ft);
        // never follows or opens `dest` (opening a FIFO would block forever)
        if let Err(e) = filetime::set_symlink_file_times(dest, a, m) {
            problems.push(format!("times: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn create_special(dest: &Path, node: &Node) -> std::result::Result<bool, String> {
    let _ = fs::remove_file(dest);
    match &node.node_type {
        NodeType::Symlink { .. } => symlink(node.node_type.to_link(), dest)
            .map(|()| true)
            .map_err(|e| e.to_string()),
        NodeType::Fifo => {
            nix::unistd::mkfifo(dest, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map(|()| true)
                .map_err(|e| e.to_string())
        }
        NodeType::Dev { device } | NodeType::Chardev { device } => {
            let kind = if matches!(node.node_type, NodeType::Dev { .. }) {
                nix::sys::stat::SFlag::S_IFBLK
            } else {
                nix::sys::stat::SFlag::S_IFCHR
            };
            nix::sys::stat::mknod(
                dest,
                kind,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                *device,
            )
            .map(|()| true)
            .map_err(|e| format!("cannot create device node (needs root): {e}"))
        }
        _ => Ok(false),
    }
}

impl Repo {
    /// Restores a snapshot (or part of it) into a directory.
    ///
    /// Never panics on a damaged repository: files whose content can't be
    /// read are removed, listed in `failed`, and everything else is restored.
    pub fn restore(&self, req: &RestoreRequest) -> Result<RestoreSummary> {
        let _lock = self.lock(false)?;
        let snap = self.find_snapshot_file(&req.snapshot, &req.filter)?;
        let repo = guard("reading the index", || {
            self.fresh()?
                .to_indexed()
                .map_err(|e| Error::from_rustic("cannot read the repository index", &e))
        })?;
        let mut tree_failures = Vec::new();
        let nodes = guard("reading the snapshot", || {
            Ok(walk_snapshot(&repo, snap.tree, &mut tree_failures))
        })?;
        let nodes = apply_includes(nodes, &req.includes)?;
        let failures = Failures(Mutex::new(tree_failures));
        let mut meta_warnings = Vec::new();

        let target = crate::repo::absolute(&req.target)?;
        fs::create_dir_all(&target)
            .map_err(|e| Error::io(format!("cannot create {}", target.display()), &e))?;
        let as_root = nix::unistd::geteuid().is_root();

        // 1. directories, 2. plan files, hard links and special files
        let mut dirs = Vec::new();
        let mut jobs = Vec::new();
        let mut links: Vec<(PathBuf, PathBuf, Node)> = Vec::new();
        let mut canonical: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let mut specials = Vec::new();
        let mut file_nodes: HashMap<PathBuf, Node> = HashMap::new();
        let mut total = 0u64;
        for (path, node) in nodes {
            let Some(dest) = safe_join(&target, &path) else {
                failures.add(&path, "refused: the name would escape the target directory");
                continue;
            };
            match &node.node_type {
                NodeType::Dir => {
                    if let Err(e) = fs::create_dir_all(&dest) {
                        if e.raw_os_error() == Some(28) {
                            return Err(Error::io(format!("cannot create {}", dest.display()), &e));
                        }
                        failures.add(&path, format!("cannot create directory: {e}"));
                        continue;
                    }
                    dirs.push((dest, node));
                }
                NodeType::File => {
                    let key = (node.meta.device_id, node.meta.inode);
                    if node.meta.links > 1 && key.0 != 0 && key.1 != 0 {
                        if let Some(first) = canonical.get(&key) {
                            links.push((path, first.clone(), node));
                            continue;
                        }
                        canonical.insert(key, path.clone());
                    }
                    let mut blobs = Vec::new();
                    let mut missing = None;
                    for id in node.content.iter().flatten() {
                        match repo.get_index_entry(id) {
                            Ok(ie) => blobs.push((
                                *id,
                                u64::from(ie.location.data_length()),
                                ie.pack.to_hex().to_string(),
                                ie.location.offset,
                            )),
                            Err(_) => {
                                missing = Some(id.to_hex().to_string());
                                break;
                            }
                        }
                    }
                    if let Some(id) = missing {
                        failures.add(
                            &path,
                            format!(
                                "chunk {} is not in the repository index (its pack is missing)",
                                &id[..8]
                            ),
                        );
                        continue;
                    }
                    total += blobs.iter().map(|b| b.1).sum::<u64>();
                    let sort_key = blobs
                        .first()
                        .map_or((String::new(), 0), |b| (b.2.clone(), b.3));
                    jobs.push(FileJob {
                        dest,
                        blobs: blobs.into_iter().map(|b| (b.0, b.1)).collect(),
                        sort_key,
                        path: path.clone(),
                    });
                    file_nodes.insert(path, node);
                }
                _ => specials.push((path, dest, node)),
            }
        }
        // read packs roughly in order
        jobs.sort_by(|a, b| a.sort_key.cmp(&b.sort_key));

        // 3. file contents, by a bounded set of workers
        let workers = if req.workers > 0 {
            req.workers
        } else {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 8)
        };
        let phase = self.progress().begin("restoring", Unit::Bytes);
        phase.set_length(total);
        let cursor = AtomicUsize::new(0);
        let bytes = AtomicUsize::new(0);
        let disk_full = AtomicBool::new(false);
        let done: Mutex<Vec<bool>> = Mutex::new(vec![false; jobs.len()]);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    if disk_full.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        restore_file(&repo, job, phase.as_ref())
                    }));
                    match r {
                        Ok(Ok(n)) => {
                            bytes.fetch_add(
                                usize::try_from(n).unwrap_or(usize::MAX),
                                Ordering::Relaxed,
                            );
                            if let Ok(mut d) = done.lock() {
                                d[i] = true;
                            }
                        }
                        Ok(Err((e, local))) => {
                            if local && e.raw_os_error() == Some(28) {
                                disk_full.store(true, Ordering::Relaxed);
                            }
                            let what = if local {
                                "cannot write"
                            } else {
                                "content unreadable"
                            };
                            failures.add(&job.path, format!("{what}: {e}"));
                        }
                        Err(_) => {
                            let _ = fs::remove_file(&job.dest);
                            failures.add(
                                &job.path,
                                "content unreadable: the storage engine failed on a damaged chunk",
                            );
                        }
                    }
                });
            }
        });
        phase.finish();
        if disk_full.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "the disk holding {} is full; the restore stopped",
                    target.display()
                ),
            )
            .hint("free some space or restore to another disk, then run the restore again"));
        }
        let done = done.into_inner().unwrap_or_default();
        let restored: HashSet<&Path> = jobs
            .iter()
            .zip(&done)
            .filter(|(_, d)| **d)
            .map(|(j, _)| j.path.as_path())
            .collect();

        // 4. hard links to files restored above
        let mut files_restored = restored.len() as u64;
        for (path, first, _) in &links {
            let (Some(dest), Some(src)) = (safe_join(&target, path), safe_join(&target, first))
            else {
                continue;
            };
            if !restored.contains(first.as_path()) {
                failures.add(path, "hard link target could not be restored");
                continue;
            }
            let _ = fs::remove_file(&dest);
            match fs::hard_link(&src, &dest) {
                Ok(()) => files_restored += 1,
                Err(e) => failures.add(path, format!("cannot create hard link: {e}")),
            }
        }

        // 5. special files
        let mut special_restored = 0;
        for (path, dest, node) in &specials {
            match create_special(dest, node) {
                Ok(true) => special_restored += 1,
                Ok(false) => {}
                Err(e) => failures.add(path, e),
            }
            if let Err(e) = set_metadata(dest, node, as_root) {
                meta_warnings.push(FailedPath {
                    path: display(path),
                    error: e,
                });
            }
        }

        // 6. verify content
        let mut files_verified = None;
        if req.verify {
            let vphase = self.progress().begin("verifying", Unit::Count);
            vphase.set_length(jobs.len() as u64);
            let mut n = 0;
            for (job, ok) in jobs.iter().zip(&done) {
                if *ok {
                    match verify_file(&job.dest, &job.blobs) {
                        Ok(()) => n += 1,
                        Err(e) => failures.add(&job.path, format!("verification failed: {e}")),
                    }
                }
                vphase.inc(1);
            }
            vphase.finish();
            files_verified = Some(n);
        }

        // 7. file metadata, then directories deepest first (so their mtimes stick)
        for job in jobs.iter().zip(&done).filter(|(_, d)| **d).map(|(j, _)| j) {
            if let Some(node) = file_nodes.get(&job.path) {
                if let Err(e) = set_metadata(&job.dest, node, as_root) {
                    meta_warnings.push(FailedPath {
                        path: display(&job.path),
                        error: e,
                    });
                }
            }
        }
        for (dest, node) in dirs.iter().rev() {
            if let Err(e) = set_metadata(dest, node, as_root) {
                meta_warnings.push(FailedPath {
                    path: dest.to_string_lossy().into_owned(),
                    error: e,
                });
            }
        }

        let failed = failures.take();
        Ok(RestoreSummary {
            snapshot: SnapshotInfo::from_file(&snap),
            target: target.to_string_lossy().into_owned(),
            files_restored,
            dirs_restored: dirs.len() as u64,
            special_restored,
            bytes_restored: bytes.load(Ordering::Relaxed) as u64,
            files_verified,
            incomplete: !failed.is_empty(),
            failed,
            metadata_warnings: meta_warnings,
        })
    }
}
