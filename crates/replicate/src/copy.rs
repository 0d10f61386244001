//! Copying one file with its hash checked in flight.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
};

use bulwark_store::{
    ByteStream, ErrorKind as StoreKind, FileRef, FileType, Name, Range, RepoPath, Store,
};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::limiter::RateLimiter;

/// A content-addressed file of a repository (`data/<sha256>`, ...);
/// serialized as that path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// Its type.
    pub tpe: FileType,
    /// Its name (the SHA-256 of its content).
    pub name: Name,
}

impl FileId {
    /// The [`FileRef`] of this file.
    pub fn file_ref(&self) -> FileRef {
        FileRef::Named(self.tpe, self.name.clone())
    }

    /// Parses the text [`Display`](fmt::Display) writes (`type/name`, e.g.
    /// `data/<64 hex>`); `None` for anything else, including `config`.
    pub fn parse(s: &str) -> Option<FileId> {
        let (tpe, name) = s.split_once('/')?;
        Some(FileId {
            tpe: FileType::parse(tpe)?,
            name: Name::parse(name).ok()?,
        })
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tpe, self.name)
    }
}

impl serde::Serialize for FileId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A file and what went wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileProblem {
    /// The file (`config` or `type/name`).
    pub file: String,
    /// The cause.
    pub error: String,
}

/// How the source stream ended (shared between the stream and the copier).
const PENDING: u8 = 0;
const VERIFIED: u8 = 1;
const CORRUPT: u8 = 2;
const READ_ERROR: u8 = 3;

/// What happened to one copy.
#[derive(Debug)]
pub(crate) enum CopyOutcome {
    /// Stored at the target; bytes.
    Copied(u64),
    /// The target had it already (e.g. a concurrent run stored it).
    AlreadyPresent,
    /// The source content does not hash to its name; nothing was kept.
    CorruptSource,
    /// The source file disappeared (e.g. pruned) before it could be read.
    Vanished,
    /// Anything else; the cause.
    Failed(String),
}

/// Wraps `inner` so that each chunk waits for `limiter`, is hashed, and at
/// the end the hash is compared with `expected`: on a mismatch the stream
/// yields an error instead of ending, so the target stores nothing even if
/// it did not verify names itself.
fn verified_stream(
    inner: ByteStream,
    expected: Option<Name>,
    limiter: Option<Arc<RateLimiter>>,
    status: Arc<AtomicU8>,
) -> ByteStream {
    struct State {
        inner: ByteStream,
        hasher: Sha256,
        expected: Option<Name>,
        limiter: Option<Arc<RateLimiter>>,
        status: Arc<AtomicU8>,
        done: bool,
    }
    let state = State {
        inner,
        hasher: Sha256::new(),
        expected,
        limiter,
        status,
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        match st.inner.next().await {
            Some(Ok(chunk)) => {
                if let Some(l) = &st.limiter {
                    l.acquire(chunk.len()).await;
                }
                st.hasher.update(&chunk);
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.done = true;
                st.status.store(READ_ERROR, Ordering::SeqCst);
                Some((Err(e), st))
            }
            None => {
                st.done = true;
                let actual = hex::encode(std::mem::take(&mut st.hasher).finalize());
                match &st.expected {
                    Some(name) if name.as_str() != actual => {
                        st.status.store(CORRUPT, Ordering::SeqCst);
                        let msg =
                            format!("source content hashes to {actual}, not to its name {name}");
                        Some((
                            Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg)),
                            st,
                        ))
                    }
                    _ => {
                        st.status.store(VERIFIED, Ordering::SeqCst);
                        None
                    }
                }
            }
        }
    }))
}

/// Copies `file` from `source` to `target` (same repository path), hashing
/// it on the way. Never overwrites (the store refuses) and never panics.
pub(crate) async fn copy_file(
    source: &dyn Store,
    target: &dyn Store,
    repo: &RepoPath,
    file: &FileRef,
    limiter: Option<Arc<RateLimiter>>,
) -> CopyOutcome {
    let stream = match source.load(repo, file, Range::default()).await {
        Ok(s) => s,
        Err(e) if e.kind == StoreKind::NotFound => return CopyOutcome::Vanished,
        Err(e) => return CopyOutcome::Failed(format!("reading source {}: {e}", source.describe())),
    };
    let expected = match file {
        FileRef::Config => None,
        FileRef::Named(_, name) => Some(name.clone()),
    };
    let status = Arc::new(AtomicU8::new(PENDING));
    let body = verified_stream(stream, expected, limiter, status.clone());
    let result = target.save(repo, file, body, u64::MAX).await;
    let status = status.load(Ordering::SeqCst);
    match result {
        Ok(_) if status == CORRUPT => {
            // The target ignored the body error and kept the file: remove it.
            tracing::error!(
                "{} stored {repo}/{file} despite a failed hash check; deleting it",
                target.describe()
            );
            if let Err(e) = target.delete(repo, file).await {
                tracing::error!("cannot delete the corrupt copy of {repo}/{file}: {e}");
            }
            CopyOutcome::CorruptSource
        }
        Ok(n) => CopyOutcome::Copied(n),
        Err(_) if status == CORRUPT => CopyOutcome::CorruptSource,
        Err(e) if e.kind == StoreKind::AlreadyExists => CopyOutcome::AlreadyPresent,
        Err(e) if e.kind == StoreKind::HashMismatch => CopyOutcome::CorruptSource,
        Err(e) if status == READ_ERROR => {
            CopyOutcome::Failed(format!("reading source {}: {e}", source.describe()))
        }
        Err(e) => CopyOutcome::Failed(format!("writing target {}: {e}", target.describe())),
    }
}

/// Streams `file` from `store` and returns its SHA-256 (hex) and length.
pub(crate) async fn hash_file(
    store: &dyn Store,
    repo: &RepoPath,
    file: &FileRef,
) -> bulwark_store::Result<(String, u64)> {
    let mut stream = store.load(repo, file, Range::default()).await?;
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            bulwark_store::Error::new(StoreKind::Io, format!("reading {repo}/{file}: {e}"))
        })?;
        len += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hex::encode(hasher.finalize()), len))
}

/// Reads a small file (e.g. `config`) fully, refusing more than `max` bytes.
pub(crate) async fn read_small(
    store: &dyn Store,
    repo: &RepoPath,
    file: &FileRef,
    max: usize,
) -> bulwark_store::Result<Vec<u8>> {
    let mut stream = store.load(repo, file, Range::default()).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            bulwark_store::Error::new(StoreKind::Io, format!("reading {repo}/{file}: {e}"))
        })?;
        if out.len() + chunk.len() > max {
            return Err(bulwark_store::Error::new(
                StoreKind::TooLarge,
                format!("{repo}/{file} is larger than {max} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;

    async fn run(data: &[u8], expected: Name) -> (Vec<std::io::Result<Bytes>>, u8) {
        let chunks: Vec<std::io::Result<Bytes>> = data
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let status = Arc::new(AtomicU8::new(PENDING));
        let s = verified_stream(
            Box::pin(futures::stream::iter(chunks)),
            Some(expected),
            None,
            status.clone(),
        );
        let items: Vec<_> = s.collect().await;
        (items, status.load(Ordering::SeqCst))
    }

    #[test]
    fn file_id_parses_what_it_displays() {
        let name = Name::parse(&hex::encode(Sha256::digest(b"x"))).unwrap();
        for tpe in FileType::ALL {
            let id = FileId {
                tpe,
                name: name.clone(),
            };
            assert_eq!(FileId::parse(&id.to_string()), Some(id.clone()), "{id}");
        }
        let hex = name.as_str();
        for bad in [
            String::new(),
            "config".to_owned(),
            "data".to_owned(),
            "data/".to_owned(),
            hex.to_owned(),
            format!("/{hex}"),
            format!("config/{hex}"),
            format!("Data/{hex}"),
            format!("data/{}", hex.to_uppercase()),
            format!("data/{}", &hex[..63]),
            format!("data/{hex}0"),
            format!("data/{hex}/"),
            format!("data/{}/{hex}", &hex[..2]),
            format!("data//{hex}"),
            format!(" data/{hex}"),
        ] {
            assert_eq!(FileId::parse(&bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn matching_content_passes_unchanged() {
        let data = b"some repository file".to_vec();
        let name = Name::parse(&hex::encode(Sha256::digest(&data))).unwrap();
        let (items, status) = run(&data, name).await;
        assert_eq!(status, VERIFIED);
        let out: Vec<u8> = items
            .into_iter()
            .flat_map(|i| i.unwrap().to_vec())
            .collect();
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn mismatch_fails_the_stream_before_its_end() {
        // A target that does not verify names still sees a failing body.
        let name = Name::parse(&hex::encode(Sha256::digest(b"other"))).unwrap();
        let (items, status) = run(b"some repository file", name).await;
        assert_eq!(status, CORRUPT);
        let last = items.last().unwrap();
        assert_eq!(
            last.as_ref().unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        assert!(items[..items.len() - 1].iter().all(Result::is_ok));
    }
}
