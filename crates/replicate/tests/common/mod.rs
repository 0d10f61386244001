//! Shared test helpers: a real restic repository (or, without restic, a
//! synthetic one of files named by their SHA-256), file access, and a
//! faulty store wrapper.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use bulwark_store::{
    local::LocalStore, ByteStream, Entry, Error, ErrorKind, FileRef, FileType, Name, Range,
    RepoPath, Result, Store,
};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};

pub const PASSWORD: &str = "correct horse battery staple";

pub fn repo() -> RepoPath {
    RepoPath::parse("alice/laptop").unwrap()
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::fill(&mut v[..]);
    v
}

pub fn name_of(data: &[u8]) -> Name {
    Name::parse(&hex::encode(Sha256::digest(data))).unwrap()
}

pub fn body(data: &[u8]) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

pub fn restic_available() -> bool {
    Command::new("restic")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs restic on the repository directory `dir`; panics on failure.
pub fn restic(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("restic")
        .arg("-r")
        .arg(dir)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env_remove("RESTIC_REPOSITORY")
        .env_remove("RESTIC_PASSWORD_FILE")
        .output()
        .expect("run restic");
    assert!(
        out.status.success(),
        "restic {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The directory of `repo` in a local store rooted at `root`.
pub fn repo_dir(root: &Path, repo: &RepoPath) -> PathBuf {
    repo.segments()
        .iter()
        .fold(root.to_path_buf(), |p, s| p.join(s))
}

/// Where a file of `repo` lives in a local store rooted at `root`.
pub fn file_path(root: &Path, repo: &RepoPath, tpe: FileType, name: &Name) -> PathBuf {
    let dir = repo_dir(root, repo).join(tpe.as_str());
    if tpe == FileType::Data {
        dir.join(&name.as_str()[..2]).join(name.as_str())
    } else {
        dir.join(name.as_str())
    }
}

/// Creates a real restic repository (init + two backups of random files)
/// in a local store rooted at `root`. restic is required: a test that
/// silently used something else would prove less than it says.
pub async fn make_repo(root: &Path, repo: &RepoPath) -> Arc<LocalStore> {
    std::fs::create_dir_all(root).unwrap();
    let store = Arc::new(LocalStore::new(root).unwrap());
    assert!(
        restic_available(),
        "restic 0.14 must be installed (scripts/test.sh installs it)"
    );
    {
        let dir = repo_dir(root, repo);
        let data = root
            .parent()
            .unwrap()
            .join(format!("backup-data-{}", rand::random::<u32>()));
        std::fs::create_dir_all(&data).unwrap();
        restic(&dir, &["init"]);
        for i in 0..3 {
            std::fs::write(data.join(format!("file{i}")), random_bytes(2_500_000)).unwrap();
        }
        std::fs::write(data.join("small"), b"hello").unwrap();
        restic(&dir, &["backup", "--host", "test", data.to_str().unwrap()]);
        std::fs::write(data.join("file-new"), random_bytes(300_000)).unwrap();
        restic(&dir, &["backup", "--host", "test", data.to_str().unwrap()]);
        std::fs::remove_dir_all(&data).unwrap();
    }
    store
}

pub async fn load_all(store: &dyn Store, repo: &RepoPath, file: &FileRef) -> Vec<u8> {
    let mut s = store.load(repo, file, Range::default()).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

pub async fn names(store: &dyn Store, repo: &RepoPath, tpe: FileType) -> Vec<Name> {
    let mut v: Vec<Name> = store
        .list(repo, tpe)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    v.sort();
    v
}

/// Every file of the repository but locks, with content, keyed `type/name`.
pub async fn contents(store: &dyn Store, repo: &RepoPath) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    out.insert(
        "config".to_owned(),
        load_all(store, repo, &FileRef::Config).await,
    );
    for tpe in [
        FileType::Keys,
        FileType::Data,
        FileType::Index,
        FileType::Snapshots,
    ] {
        for name in names(store, repo, tpe).await {
            let file = FileRef::Named(tpe, name);
            out.insert(file.to_string(), load_all(store, repo, &file).await);
        }
    }
    out
}

/// Number of named files of the four mirrored types.
pub async fn count_named(store: &dyn Store, repo: &RepoPath) -> u64 {
    let mut n = 0;
    for tpe in [
        FileType::Keys,
        FileType::Data,
        FileType::Index,
        FileType::Snapshots,
    ] {
        n += store.list(repo, tpe).await.unwrap().len() as u64;
    }
    n
}

pub fn flip_byte(path: &Path, at: usize) {
    let mut content = std::fs::read(path).unwrap();
    let at = at.min(content.len() - 1);
    content[at] ^= 0x40;
    std::fs::write(path, content).unwrap();
}

/// Wraps a store: saves number `fail_from .. fail_from + fail_count`
/// (counting from 0) read one chunk of their body and then the body fails
/// (a crash mid-upload, as the inner store sees it); with
/// `refuse_delete`, deletes are refused.
#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<dyn Store>,
    pub saves: AtomicUsize,
    pub fail_from: usize,
    pub fail_count: usize,
    pub refuse_delete: bool,
}

impl Faulty {
    pub fn new(
        inner: Arc<dyn Store>,
        fail_from: usize,
        fail_count: usize,
        refuse_delete: bool,
    ) -> Self {
        Self {
            inner,
            saves: AtomicUsize::new(0),
            fail_from,
            fail_count,
            refuse_delete,
        }
    }
}

#[async_trait::async_trait]
impl Store for Faulty {
    fn describe(&self) -> String {
        format!("faulty {}", self.inner.describe())
    }
    async fn create_repo(&self, repo: &RepoPath) -> Result<()> {
        self.inner.create_repo(repo).await
    }
    async fn repo_exists(&self, repo: &RepoPath) -> Result<bool> {
        self.inner.repo_exists(repo).await
    }
    async fn list_repos(&self) -> Result<Vec<RepoPath>> {
        self.inner.list_repos().await
    }
    async fn list(&self, repo: &RepoPath, tpe: FileType) -> Result<Vec<Entry>> {
        self.inner.list(repo, tpe).await
    }
    async fn stat(&self, repo: &RepoPath, file: &FileRef) -> Result<Option<u64>> {
        self.inner.stat(repo, file).await
    }
    async fn load(&self, repo: &RepoPath, file: &FileRef, range: Range) -> Result<ByteStream> {
        self.inner.load(repo, file, range).await
    }
    async fn save(
        &self,
        repo: &RepoPath,
        file: &FileRef,
        body: ByteStream,
        max_len: u64,
    ) -> Result<u64> {
        let n = self.saves.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_from || n - self.fail_from >= self.fail_count {
            return self.inner.save(repo, file, body, max_len).await;
        }
        let broken = body
            .take(1)
            .chain(futures::stream::iter([Err(std::io::Error::other(
                "connection reset (simulated crash)",
            ))]));
        self.inner.save(repo, file, Box::pin(broken), max_len).await
    }
    async fn delete(&self, repo: &RepoPath, file: &FileRef) -> Result<()> {
        if self.refuse_delete {
            return Err(Error::new(
                ErrorKind::Io,
                format!("{repo}/{file}: deleting is not allowed (append-only)"),
            ));
        }
        self.inner.delete(repo, file).await
    }
}
