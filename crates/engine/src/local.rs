//! A local-directory backend that never leaves a half-written file under a
//! final name.
//!
//! rustic_backend's `LocalBackend` writes straight to the final path (create,
//! set_len, write). A crash mid-write leaves a pack of the right length full of
//! zeros, which `restic check --read-data` reports as damage. This wrapper
//! keeps the reading side of `LocalBackend` and replaces writing with: temp file
//! in the same directory (named `<id>-tmp-<nonce>`, the pattern restic itself
//! uses, which every reader ignores because it is not an id), fsync, rename,
//! fsync of the directory.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use rustic_backend::LocalBackend;
use rustic_core::{
    BytesList, ErrorKind as RErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult,
    WriteBackend,
};

/// Local directory repository with atomic, durable writes.
#[derive(Debug)]
pub struct SafeLocalBackend {
    inner: LocalBackend,
    root: PathBuf,
}

static NONCE: AtomicU64 = AtomicU64::new(0);

impl SafeLocalBackend {
    /// Opens (does not create) a repository directory.
    pub fn new(root: &Path) -> RusticResult<Self> {
        let inner = LocalBackend::new(root.to_string_lossy(), std::collections::BTreeMap::new())?;
        Ok(Self {
            inner,
            root: root.to_path_buf(),
        })
    }

    fn path_of(&self, tpe: FileType, id: &Id) -> (PathBuf, String) {
        let hex = id.to_hex().to_string();
        match tpe {
            FileType::Config => (self.root.clone(), "config".to_string()),
            FileType::Pack => (self.root.join("data").join(&hex[0..2]), hex),
            _ => (self.root.join(tpe.dirname()), hex),
        }
    }
}

fn io_err(what: &'static str, path: &Path, err: std::io::Error) -> Box<RusticError> {
    RusticError::with_source(RErrorKind::InputOutput, what, err)
        .attach_context("path", path.display().to_string())
}

/// Writes `content` to `dir/name` atomically and durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, chunks: &[Bytes]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{name}-tmp-{}-{nonce}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        for c in chunks {
            f.write_all(c)?;
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(name))?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl ReadBackend for SafeLocalBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.inner.list_with_size(tpe)
    }
    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        self.inner.list(tpe)
    }
    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.inner.read_full(tpe, id)
    }
    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.inner.read_partial(tpe, id, cacheable, offset, length)
    }
    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.inner.warmup_path(tpe, id)
    }
}

impl WriteBackend for SafeLocalBackend {
    fn create(&self) -> RusticResult<()> {
        self.inner.create()
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let (dir, name) = self.path_of(tpe, id);
        write_atomic(&dir, &name, content.slice()).map_err(|e| {
            io_err(
                "Failed to write the repository file `{path}`.",
                &dir.join(&name),
                e,
            )
        })
    }

    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)?;
        let (dir, _) = self.path_of(tpe, id);
        // make the removal durable too: a crash must not resurrect a deleted index
        // while the packs it names are gone.
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("Failed to sync the directory `{path}`.", &dir, e))
    }
}
