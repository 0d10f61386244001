//! A directory holding repositories in rest-server's layout.
//!
//! ```text
//! <root>/<repo path>/config
//!                   /data/<first 2 hex digits>/<name>
//!                   /keys/<name>   /locks/<name>   /snapshots/<name>   /index/<name>
//! ```
//!
//! (`<repo path>` is one or two directories, e.g. `alice/laptop`.) This is
//! also restic's local layout, so `restic -r <root>/<repo path>` reads a
//! repository directly.
//!
//! Writing a file: the body is streamed into `.tmp-<random>` in the target
//! directory while its SHA-256 and length are computed; it is deleted as soon
//! as the body grows past the limit, fails, or turns out not to hash to the
//! file's name. Otherwise it is fsynced and published with `link(2)` under
//! its final name (which fails if that name exists, so of two racing uploads
//! exactly one wins and nothing is ever overwritten), the temporary name is
//! removed and the directory fsynced. A crash leaves at most a temporary
//! file, which [`LocalStore::list`](crate::Store::list) never shows and
//! [`LocalStore::new`] removes: at once when its writer is gone (the name is
//! `.tmp-<pid>-<host tag>-<random>`, and a process of this host with that
//! PID no longer exists), otherwise once it is an hour old (a writer on
//! another host sharing the directory, or a file of an older version). The file system must
//! support hard links (every local Unix file system does).
//!
//! Symbolic links below the root are never followed: a repository directory,
//! type directory or file that is a symlink is treated as absent for reading
//! and refused for writing. (The root itself may be a symlink.)

use std::{
    fmt, fs,
    io::{self, Write as _},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{
    util::{already_exists, body_error, hash_mismatch, not_found, resolve_range, too_large},
    ByteStream, Entry, Error, ErrorKind, FileRef, FileType, Name, Range, RepoPath, Result, Store,
};

/// Prefix of temporary upload files (never a valid [`Name`]).
const TEMP_PREFIX: &str = ".tmp-";
/// Temporary files older than this are removed by [`LocalStore::new`].
const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);
/// Size of the chunks [`Store::load`] yields.
const READ_CHUNK: usize = 256 * 1024;

/// Uploads are written in batches of this size.
const WRITE_BATCH: usize = 1 << 20;

fn nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

/// A directory holding many repositories (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

/// Where a file lives: directories below the root, then the file name.
struct Location {
    dirs: Vec<String>,
    /// How many of `dirs` are the repository path.
    repo_depth: usize,
    file: String,
}

impl Location {
    fn new(repo: &RepoPath, file: &FileRef) -> Self {
        let mut dirs = repo.segments().to_vec();
        let repo_depth = dirs.len();
        let file = match file {
            FileRef::Config => "config".to_owned(),
            FileRef::Named(tpe, name) => {
                dirs.push(tpe.as_str().to_owned());
                if *tpe == FileType::Data {
                    dirs.push(name.as_str()[..2].to_owned());
                }
                name.as_str().to_owned()
            }
        };
        Self {
            dirs,
            repo_depth,
            file,
        }
    }
}

/// What a chain of directories below the root turned out to be.
enum DirState {
    /// All real directories.
    Present(PathBuf),
    /// One is missing (the path of the first missing one).
    Missing,
    /// One is a symlink or not a directory.
    Refused,
}

/// Walks `dirs` below `root` without following symlinks.
fn check_dirs(root: &Path, dirs: &[String]) -> io::Result<DirState> {
    let mut path = root.to_path_buf();
    for d in dirs {
        path.push(d);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                tracing::warn!(
                    "{} is a symbolic link or not a directory; not following it",
                    path.display()
                );
                return Ok(DirState::Refused);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DirState::Missing),
            Err(e) => return Err(e),
        }
    }
    Ok(DirState::Present(path))
}

/// Creates `dir` (its parent must exist); fine if it is already a real directory.
fn ensure_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(dir)?.file_type().is_dir() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} is not a directory (symbolic links are not followed)",
                    dir.display()
                )))
            }
        }
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

fn is_no_space(e: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(e.raw_os_error(), Some(c) if c == Errno::ENOSPC as i32 || c == Errno::EDQUOT as i32)
}

/// Maps an I/O error about `what` (a repository-relative description, never
/// a server path) to a store error.
fn io_error(e: &io::Error, what: &dyn fmt::Display) -> Error {
    let kind = if is_no_space(e) {
        ErrorKind::NoSpace
    } else if e.kind() == io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Io
    };
    Error::new(kind, format!("{what}: {e}"))
}

fn refused(what: &dyn fmt::Display) -> Error {
    Error::new(ErrorKind::Io, format!("{what}: a directory on the way is a symbolic link or not a directory; refusing to follow it"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("storage task failed: {e}")))?
}

/// Removes a temporary file when dropped, unless disarmed (also when the
/// saving future is cancelled).
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!("cannot remove temporary file {}: {e}", path.display());
                }
            }
        }
    }
}

fn is_hex2(s: &str) -> bool {
    s.len() == 2
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Eight hex digits of the SHA-256 of this host's name, in temporary file
/// names so that only this host's dead writers are judged by PID.
fn host_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        hex::encode(&Sha256::digest(host.as_bytes())[..4])
    })
}

/// A fresh temporary file name: `.tmp-<pid>-<host tag>-<random>`.
fn temp_name() -> String {
    format!(
        "{TEMP_PREFIX}{}-{}-{:016x}{:016x}",
        std::process::id(),
        host_tag(),
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// Whether the temporary file `name` was written by a process of this host
/// that no longer exists (killed mid-upload): crash residue, safe to remove
/// whatever its age. A live PID (the writer, or a process that reused its
/// PID) keeps the file until it is [`STALE_TEMP_AGE`] old.
fn writer_gone(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let mut parts = rest.splitn(3, '-');
    let (Some(pid), Some(tag), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    pid > 0
        && tag == host_tag()
        && matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}

/// Removes `.tmp-*` files whose writer is gone ([`writer_gone`]) or that
/// are older than [`STALE_TEMP_AGE`] in real directories
/// (`dir` and at most `depth - 1` levels below it); returns how many were
/// removed.
fn clean_stale_temps(dir: &Path, depth: usize, now: SystemTime) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ft.is_file() && name.starts_with(TEMP_PREFIX) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= STALE_TEMP_AGE)
                .unwrap_or(false);
            if old || writer_gone(&name) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::warn!(
                        "cannot remove stale temporary file {}: {e}",
                        entry.path().display()
                    ),
                }
            }
        } else if ft.is_dir() && depth > 1 && !name.starts_with('.') {
            removed += clean_stale_temps(&entry.path(), depth - 1, now);
        }
    }
    removed
}

impl LocalStore {
    /// Opens (creating it if needed) the store at `root` and removes the
    /// temporary files left by interrupted uploads: those of a dead process
    /// of this host at once, any other once it is an hour old.
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalStore> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|e| io_error(&e, &format!("store root {}", root.display())))?;
        if !fs::metadata(&root)
            .map_err(|e| io_error(&e, &format!("store root {}", root.display())))?
            .is_dir()
        {
            return Err(Error::new(
                ErrorKind::Io,
                format!("store root {} is not a directory", root.display()),
            ));
        }
        // Temporary files live in root/a[/b][/type[/xx]]: up to five directory levels.
        let removed = clean_stale_temps(&root, 5, SystemTime::now());
        if removed > 0 {
            tracing::info!(
                "removed {removed} stale temporary upload file(s) below {}",
                root.display()
            );
        }
        Ok(LocalStore { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn is_repo_dir(dir: &Path) -> bool {
        let real = |p: PathBuf, dir: bool| {
            fs::symlink_metadata(p)
                .map(|m| {
                    if dir {
                        m.file_type().is_dir()
                    } else {
                        m.file_type().is_file()
                    }
                })
                .unwrap_or(false)
        };
        real(dir.join("config"), false)
            || real(dir.join("data"), true)
            || real(dir.join("keys"), true)
    }

    fn list_blocking(root: &Path, repo: &RepoPath, tpe: FileType) -> Result<Vec<Entry>> {
        let what = format!("{repo}/{tpe}");
        let mut dirs = repo.segments().to_vec();
        match check_dirs(root, &dirs).map_err(|e| io_error(&e, &repo))? {
            DirState::Present(dir) if Self::is_repo_dir(&dir) => {}
            _ => return Err(not_found(&format_args!("repository {repo}"))),
        }
        dirs.push(tpe.as_str().to_owned());
        let dir = match check_dirs(root, &dirs).map_err(|e| io_error(&e, &what))? {
            DirState::Present(dir) => dir,
            DirState::Missing => return Ok(Vec::new()),
            DirState::Refused => return Err(refused(&what)),
        };
        let mut out = Vec::new();
        if tpe == FileType::Data {
            for sub in fs::read_dir(&dir).map_err(|e| io_error(&e, &what))? {
                let sub = sub.map_err(|e| io_error(&e, &what))?;
                let name = sub.file_name();
                let Some(name) = name.to_str() else { continue };
                if !is_hex2(name) || !sub.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    continue;
                }
                Self::list_dir(&sub.path(), Some(name), &mut out, &what)?;
            }
        } else {
            Self::list_dir(&dir, None, &mut out, &what)?;
        }
        Ok(out)
    }

    /// Appends the regular files of `dir` named like [`Name`]s (starting with
    /// `prefix` if given).
    fn list_dir(
        dir: &Path,
        prefix: Option<&str>,
        out: &mut Vec<Entry>,
        what: &dyn fmt::Display,
    ) -> Result<()> {
        for entry in fs::read_dir(dir).map_err(|e| io_error(&e, what))? {
            let entry = entry.map_err(|e| io_error(&e, what))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let Ok(name) = Name::parse(file_name) else {
                continue;
            };
            if prefix.is_some_and(|p| !file_name.starts_with(p)) {
                continue;
            }
            // DirEntry::metadata does not follow symlinks.
            match entry.metadata() {
                Ok(m) if m.file_type().is_file() => out.push(Entry {
                    name,
                    size: m.len(),
                }),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {} // deleted meanwhile
                Err(e) => return Err(io_error(&e, what)),
            }
        }
        Ok(())
    }

    /// Checks the target's directories (creating type directories inside an
    /// existing repository) and returns the directory and the final path.
    fn prepare_save(
        root: &Path,
        repo: &RepoPath,
        loc: &Location,
        what: &dyn fmt::Display,
    ) -> Result<(PathBuf, PathBuf)> {
        match check_dirs(root, &loc.dirs[..loc.repo_depth]).map_err(|e| io_error(&e, what))? {
            DirState::Present(dir) if Self::is_repo_dir(&dir) => {}
            DirState::Present(_) | DirState::Missing => {
                return Err(not_found(&format_args!("repository {repo}")))
            }
            DirState::Refused => return Err(refused(what)),
        }
        let mut dir = root.to_path_buf();
        for (i, d) in loc.dirs.iter().enumerate() {
            dir.push(d);
            if i >= loc.repo_depth {
                ensure_dir(&dir).map_err(|e| io_error(&e, what))?;
            }
        }
        // Re-check the whole chain now that it exists.
        let dir = match check_dirs(root, &loc.dirs).map_err(|e| io_error(&e, what))? {
            DirState::Present(dir) => dir,
            DirState::Missing => return Err(not_found(&format_args!("repository {repo}"))),
            DirState::Refused => return Err(refused(what)),
        };
        let target = dir.join(&loc.file);
        match fs::symlink_metadata(&target) {
            Ok(_) => Err(already_exists(what)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((dir, target)),
            Err(e) => Err(io_error(&e, what)),
        }
    }

    /// Publishes the complete, fsynced `temp` as `target` without overwriting.
    fn publish(dir: &Path, temp: &Path, target: &Path, what: &dyn fmt::Display) -> Result<()> {
        match fs::hard_link(temp, target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(already_exists(what)),
            Err(e) => return Err(io_error(&e, what)),
        }
        if let Err(e) = fs::remove_file(temp) {
            // The file is published; the leftover is cleaned up by `new`.
            tracing::warn!("cannot remove temporary file {}: {e}", temp.display());
        }
        sync_dir(dir).map_err(|e| io_error(&e, what))
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    async fn create_repo(&self, repo: &RepoPath) -> Result<()> {
        let root = self.root.clone();
        let repo = repo.clone();
        blocking(move || {
            let what = format!("repository {repo}");
            let err = |e: io::Error| io_error(&e, &what);
            let mut dir = root.clone();
            let mut parent = root.clone();
            for seg in repo.segments() {
                parent.clone_from(&dir);
                dir.push(seg);
                ensure_dir(&dir).map_err(err)?;
            }
            for tpe in FileType::ALL {
                ensure_dir(&dir.join(tpe.as_str())).map_err(err)?;
            }
            let data = dir.join(FileType::Data.as_str());
            for i in 0..=255u8 {
                ensure_dir(&data.join(hex::encode([i]))).map_err(err)?;
            }
            sync_dir(&data).map_err(err)?;
            sync_dir(&dir).map_err(err)?;
            sync_dir(&parent).map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn repo_exists(&self, repo: &RepoPath) -> Result<bool> {
        let root = self.root.clone();
        let repo = repo.clone();
        blocking(move || {
            Ok(
                match check_dirs(&root, repo.segments()).map_err(|e| io_error(&e, &repo))? {
                    DirState::Present(dir) => Self::is_repo_dir(&dir),
                    DirState::Missing | DirState::Refused => false,
                },
            )
        })
        .await
    }

    async fn list_repos(&self) -> Result<Vec<RepoPath>> {
        let root = self.root.clone();
        blocking(move || {
            let what = "store root";
            let real_dirs = |dir: &Path| -> Result<Vec<(String, PathBuf)>> {
                let mut out = Vec::new();
                for entry in fs::read_dir(dir).map_err(|e| io_error(&e, &what))? {
                    let entry = entry.map_err(|e| io_error(&e, &what))?;
                    let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
                        out.push((name.to_owned(), entry.path()));
                    }
                }
                Ok(out)
            };
            let mut repos = Vec::new();
            for (a, a_path) in real_dirs(&root)? {
                let Ok(repo) = RepoPath::parse(&a) else {
                    continue;
                };
                if Self::is_repo_dir(&a_path) {
                    repos.push(repo);
                }
                for (b, b_path) in real_dirs(&a_path)? {
                    if let Ok(repo) = RepoPath::parse(&format!("{a}/{b}")) {
                        if Self::is_repo_dir(&b_path) {
                            repos.push(repo);
                        }
                    }
                }
            }
            repos.sort();
            Ok(repos)
        })
        .await
    }

    async fn newest(&self, repo: &RepoPath, tpe: FileType) -> Result<Option<SystemTime>> {
        let root = self.root.clone();
        let repo = repo.clone();
        blocking(move || {
            let mut newest = None;
            for entry in Self::list_blocking(&root, &repo, tpe)? {
                let loc = Location::new(&repo, &FileRef::Named(tpe, entry.name));
                let mut path = root.clone();
                path.extend(&loc.dirs);
                path.push(&loc.file);
                // listed files are plain files below checked directories
                if let Ok(t) = fs::symlink_metadata(&path).and_then(|m| m.modified()) {
                    newest = newest.max(Some(t));
                }
            }
            Ok(newest)
        })
        .await
    }

    async fn list(&self, repo: &RepoPath, tpe: FileType) -> Result<Vec<Entry>> {
        let root = self.root.clone();
        let repo = repo.clone();
        blocking(move || Self::list_blocking(&root, &repo, tpe)).await
    }

    async fn stat(&self, repo: &RepoPath, file: &FileRef) -> Result<Option<u64>> {
        let root = self.root.clone();
        let what = format!("{repo}/{file}");
        let loc = Location::new(repo, file);
        blocking(move || {
            let dir = match check_dirs(&root, &loc.dirs).map_err(|e| io_error(&e, &what))? {
                DirState::Present(dir) => dir,
                DirState::Missing | DirState::Refused => return Ok(None),
            };
            match fs::symlink_metadata(dir.join(&loc.file)) {
                Ok(m) if m.file_type().is_file() => Ok(Some(m.len())),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_error(&e, &what)),
            }
        })
        .await
    }

    async fn load(&self, repo: &RepoPath, file: &FileRef, range: Range) -> Result<ByteStream> {
        let what = format!("{repo}/{file}");
        let loc = Location::new(repo, file);
        let root = self.root.clone();
        let what2 = what.clone();
        let path = blocking(move || {
            match check_dirs(&root, &loc.dirs).map_err(|e| io_error(&e, &what2))? {
                DirState::Present(dir) => Ok(dir.join(&loc.file)),
                DirState::Missing | DirState::Refused => Err(not_found(&what2)),
            }
        })
        .await?;
        let mut f = match tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nofollow())
            .open(&path)
            .await
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
                return Err(not_found(&what))
            }
            Err(e) => return Err(io_error(&e, &what)),
        };
        let meta = f.metadata().await.map_err(|e| io_error(&e, &what))?;
        if !meta.file_type().is_file() {
            return Err(not_found(&what));
        }
        let (offset, length) = resolve_range(meta.size(), range, &what)?;
        if offset > 0 {
            f.seek(io::SeekFrom::Start(offset))
                .await
                .map_err(|e| io_error(&e, &what))?;
        }
        let stream = futures::stream::try_unfold((f, length), |(mut f, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(READ_CHUNK);
            let mut buf = BytesMut::zeroed(want);
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being read",
                ));
            }
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), (f, left - n as u64))))
        });
        Ok(Box::pin(stream))
    }

    async fn save(
        &self,
        repo: &RepoPath,
        file: &FileRef,
        mut body: ByteStream,
        max_len: u64,
    ) -> Result<u64> {
        let what = format!("{repo}/{file}");
        let loc = Location::new(repo, file);
        let (root, repo2, what2) = (self.root.clone(), repo.clone(), what.clone());
        let (dir, target) =
            blocking(move || Self::prepare_save(&root, &repo2, &loc, &what2)).await?;

        let temp = dir.join(temp_name());
        let (temp2, what2) = (temp.clone(), what.clone());
        let f = blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nofollow())
                .open(&temp2)
                .map_err(|e| io_error(&e, &what2))
        })
        .await?;
        let guard = TempGuard(Some(temp.clone()));

        // Body chunks are small (a few KiB); hashing and writing them one by
        // one would cost a blocking-pool hop each. Batch them into 1 MiB
        // writes, hashed and written together off the async threads.
        let mut state = Some((f, Sha256::new()));
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batch_len = 0usize;
        let mut len = 0u64;
        loop {
            let next = body.next().await;
            let end = next.is_none();
            if let Some(chunk) = next {
                let chunk = chunk.map_err(|e| body_error(&what, &e))?;
                len += chunk.len() as u64;
                if len > max_len {
                    return Err(too_large(&what, max_len));
                }
                batch_len += chunk.len();
                batch.push(chunk);
            }
            if batch_len >= WRITE_BATCH || (end && batch_len > 0) {
                let chunks = std::mem::take(&mut batch);
                batch_len = 0;
                let (mut f, mut hasher) = state
                    .take()
                    .ok_or_else(|| Error::new(ErrorKind::Io, "internal: lost the file"))?;
                let what2 = what.clone();
                state = Some(
                    blocking(move || {
                        for c in &chunks {
                            hasher.update(c);
                            f.write_all(c).map_err(|e| io_error(&e, &what2))?;
                        }
                        Ok((f, hasher))
                    })
                    .await?,
                );
            }
            if end {
                break;
            }
        }
        let (f, hasher) =
            state.ok_or_else(|| Error::new(ErrorKind::Io, "internal: lost the file"))?;
        if let FileRef::Named(_, name) = file {
            let actual = hex::encode(hasher.finalize());
            if actual != name.as_str() {
                return Err(hash_mismatch(&what, &actual));
            }
        }
        let what2 = what.clone();
        blocking(move || f.sync_all().map_err(|e| io_error(&e, &what2))).await?;

        blocking(move || {
            let _guard = guard; // removes the temporary file if publishing fails
            Self::publish(&dir, &temp, &target, &what)
        })
        .await?;
        Ok(len)
    }

    async fn delete(&self, repo: &RepoPath, file: &FileRef) -> Result<()> {
        let root = self.root.clone();
        let what = format!("{repo}/{file}");
        let loc = Location::new(repo, file);
        blocking(move || {
            let dir = match check_dirs(&root, &loc.dirs).map_err(|e| io_error(&e, &what))? {
                DirState::Present(dir) => dir,
                DirState::Missing | DirState::Refused => return Err(not_found(&what)),
            };
            let path = dir.join(&loc.file);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_file() => {}
                Ok(_) => return Err(not_found(&what)),
                Err(e) => return Err(io_error(&e, &what)),
            }
            fs::remove_file(&path).map_err(|e| io_error(&e, &what))?;
            sync_dir(&dir).map_err(|e| io_error(&e, &what))
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod residue_tests {
    use super::*;

    /// The PID of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn temps_of_dead_writers_are_removed_at_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("alice/nas/data/ab");
        fs::create_dir_all(&dir).unwrap();
        let tag = host_tag();
        let dead = format!("{TEMP_PREFIX}{}-{tag}-00aa", dead_pid());
        let live = format!("{TEMP_PREFIX}{}-{tag}-00bb", std::process::id());
        let other_host = format!("{TEMP_PREFIX}{}-0badc0de-00cc", dead_pid());
        let old_format = format!("{TEMP_PREFIX}0123456789abcdef0123456789abcdef");
        for n in [&dead, &live, &other_host, &old_format] {
            fs::write(dir.join(n), b"partial").unwrap();
        }
        // Also at the root of a repository (config uploads).
        let dead_root = format!("{TEMP_PREFIX}{}-{tag}-00dd", dead_pid());
        fs::write(root.path().join("alice/nas").join(&dead_root), b"x").unwrap();

        LocalStore::new(root.path()).unwrap();
        let left: std::collections::BTreeSet<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let want: std::collections::BTreeSet<String> =
            [live, other_host, old_format].into_iter().collect();
        assert_eq!(left, want, "only the dead writer's fresh temp goes");
        assert!(!root.path().join("alice/nas").join(&dead_root).exists());
    }

    #[test]
    fn temp_names_carry_pid_and_host() {
        let n = temp_name();
        assert!(n.starts_with(&format!(
            "{TEMP_PREFIX}{}-{}-",
            std::process::id(),
            host_tag()
        )));
        assert!(Name::parse(&n).is_err(), "never a valid name");
        assert!(!writer_gone(&n), "our own temps are in progress");
    }
}
