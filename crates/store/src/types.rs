//! The store interface shared by every implementation.

use std::{fmt, pin::Pin};

use bytes::Bytes;
use futures::Stream;

/// A stream of body chunks (upload or download).
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarse enough to map onto HTTP statuses and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Repository path, file type or file name is not acceptable (HTTP 400).
    InvalidName,
    /// The file or repository does not exist (HTTP 404).
    NotFound,
    /// The file exists and files are never overwritten (HTTP 403).
    AlreadyExists,
    /// The content's SHA-256 is not the file's name (HTTP 400).
    HashMismatch,
    /// The upload is larger than allowed (HTTP 413 / 507 for quotas).
    TooLarge,
    /// The requested range is outside the file (HTTP 416).
    RangeNotSatisfiable,
    /// No space left on the device or bucket quota hit (HTTP 507).
    NoSpace,
    /// The body stream failed (client went away) (HTTP 400).
    Body,
    /// Anything else from the backing storage (HTTP 500); may be temporary.
    Io,
}

/// A store error: a kind plus a sentence naming the object and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Coarse classification.
    pub kind: ErrorKind,
    /// Human-readable description (never contains credentials).
    pub message: String,
}

impl Error {
    /// Builds an error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The five named file types of a restic repository (`config` is separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    /// Pack files (`data/xx/<id>`).
    Data,
    /// Key files.
    Keys,
    /// Lock files.
    Locks,
    /// Snapshot files.
    Snapshots,
    /// Index files.
    Index,
}

impl FileType {
    /// All types, in the order a replicator should copy them (data before
    /// the index and snapshots that refer to it).
    pub const ALL: [FileType; 5] = [
        FileType::Keys,
        FileType::Data,
        FileType::Index,
        FileType::Snapshots,
        FileType::Locks,
    ];

    /// The directory / URL segment name (`data`, `keys`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Data => "data",
            FileType::Keys => "keys",
            FileType::Locks => "locks",
            FileType::Snapshots => "snapshots",
            FileType::Index => "index",
        }
    }

    /// Parses a URL segment; `None` for anything else (including `config`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "data" => FileType::Data,
            "keys" => FileType::Keys,
            "locks" => FileType::Locks,
            "snapshots" => FileType::Snapshots,
            "index" => FileType::Index,
            _ => return None,
        })
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file name: exactly 64 lowercase hex characters (the SHA-256 of the content).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Validates `s`.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::new(
                ErrorKind::InvalidName,
                format!("invalid file name {s:?}: expected 64 lowercase hex characters"),
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One file of a repository: its `config`, or a named file of a type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileRef {
    /// The repository's `config` file (not content-addressed).
    Config,
    /// A content-addressed file.
    Named(FileType, Name),
}

impl fmt::Display for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileRef::Config => f.write_str("config"),
            FileRef::Named(t, n) => write!(f, "{t}/{n}"),
        }
    }
}

/// A repository path inside a store: one or two segments of
/// `[A-Za-z0-9._-]`, none starting with `.`, none equal to a file-type
/// name or `config` (so URLs stay unambiguous).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath(Vec<String>);

impl RepoPath {
    /// Maximum number of segments.
    pub const MAX_DEPTH: usize = 2;

    /// Parses `a` or `a/b` (no leading/trailing slash, no empty segments).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidName,
                format!("invalid repository path {s:?}: {why}"),
            )
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let segs: Vec<&str> = s.split('/').collect();
        if segs.len() > Self::MAX_DEPTH {
            return Err(bad("at most two segments (user/repo)"));
        }
        for seg in &segs {
            if seg.is_empty() || seg.len() > 128 {
                return Err(bad("segments must be 1-128 characters"));
            }
            if seg.starts_with('.') {
                return Err(bad("segments must not start with '.'"));
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(bad("only letters, digits, '.', '-' and '_' are allowed"));
            }
            if *seg == "config" || FileType::parse(seg).is_some() {
                return Err(bad("a segment must not be a file-type name or 'config'"));
            }
        }
        Ok(Self(segs.into_iter().map(str::to_owned).collect()))
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// A listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name.
    pub name: Name,
    /// Its size in bytes.
    pub size: u64,
}

/// A byte range to read: `offset..offset+length` (`length: None` = to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    /// First byte.
    pub offset: u64,
    /// Number of bytes, or everything from `offset`.
    pub length: Option<u64>,
}

/// Storage for many repositories' opaque files. Implementations must:
/// - write atomically (never a visible partial file, also after a crash);
/// - refuse to overwrite an existing file ([`ErrorKind::AlreadyExists`]),
///   also when two uploads of the same name race;
/// - check that a named file's content hashes (SHA-256) to its name while
///   saving, and store nothing otherwise ([`ErrorKind::HashMismatch`]);
/// - stop reading the body and store nothing once it exceeds `max_len`
///   ([`ErrorKind::TooLarge`]).
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Where the store is, for logs (no credentials).
    fn describe(&self) -> String;

    /// Creates the repository's layout; succeeds if it already exists.
    async fn create_repo(&self, repo: &RepoPath) -> Result<()>;

    /// True if the repository was created (its layout or config exists).
    async fn repo_exists(&self, repo: &RepoPath) -> Result<bool>;

    /// Every repository in the store.
    async fn list_repos(&self) -> Result<Vec<RepoPath>>;

    /// Every file of one type, with sizes (order unspecified).
    async fn list(&self, repo: &RepoPath, tpe: FileType) -> Result<Vec<Entry>>;

    /// The size of a file, or `None` if it does not exist.
    async fn stat(&self, repo: &RepoPath, file: &FileRef) -> Result<Option<u64>>;

    /// Reads a file or a range of it. A range starting past the end is
    /// [`ErrorKind::RangeNotSatisfiable`]; a length past the end is cut.
    async fn load(&self, repo: &RepoPath, file: &FileRef, range: Range) -> Result<ByteStream>;

    /// Stores a file from `body`, verifying its hash (except `config`);
    /// returns the number of bytes stored.
    async fn save(
        &self,
        repo: &RepoPath,
        file: &FileRef,
        body: ByteStream,
        max_len: u64,
    ) -> Result<u64>;

    /// Removes a file ([`ErrorKind::NotFound`] if absent).
    async fn delete(&self, repo: &RepoPath, file: &FileRef) -> Result<()>;

    /// When the newest file of `tpe` was stored, if the store knows (the hub
    /// uses it for backup freshness after a restart). Default: unknown.
    async fn newest(
        &self,
        _repo: &RepoPath,
        _tpe: FileType,
    ) -> Result<Option<std::time::SystemTime>> {
        Ok(None)
    }
}
