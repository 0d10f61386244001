//! Opening, creating and describing repositories.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use rustic_core::{
    repofile::{MasterKey, SnapshotFile},
    ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository, RepositoryBackends,
    RepositoryOptions, WriteBackend,
};

use crate::{
    error::{guard, Error, ErrorKind, Result},
    local::SafeLocalBackend,
    progress::{Bridge, ProgressSink, Quiet},
};

/// Where a repository lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on a local (or mounted) file system.
    Local(PathBuf),
    /// A restic REST server or Bulwark hub; the URL may carry `user:password@`.
    Rest {
        /// `http(s)://[user:password@]host:port/path`
        url: String,
    },
    /// An S3-compatible bucket (needs the `s3` cargo feature).
    S3 {
        /// `http(s)://host:port`
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket ("" for the bucket root).
        prefix: String,
        /// Region (most S3-compatible servers accept `us-east-1`).
        region: String,
        /// Access key id (else taken from the environment by the S3 client).
        access_key_id: Option<String>,
        /// Secret access key.
        secret_access_key: Option<String>,
    },
}

impl fmt::Display for Location {
    /// The user-facing form, with any password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::Rest { url } => write!(f, "rest:{}", redact_url(url)),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
                ..
            } => {
                write!(f, "s3:{}/{bucket}", redact_url(endpoint))?;
                if !prefix.is_empty() {
                    write!(f, "/{prefix}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// The workspace's one URL redactor (user name and password hidden), shared
/// with `bulwark-config`.
pub use bulwark_api::redact_url;

/// Everything needed to reach and unlock a repository.
#[derive(Clone)]
pub struct RepoSpec {
    /// Where it lives.
    pub location: Location,
    /// The repository password (never logged).
    pub password: String,
    /// Cache directory for index and snapshot files; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Where progress goes.
    pub progress: Arc<dyn ProgressSink>,
}

impl fmt::Debug for RepoSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoSpec")
            .field("location", &self.location)
            .field("password", &"***")
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl RepoSpec {
    /// A spec with no cache and no progress output.
    pub fn new(location: Location, password: impl Into<String>) -> Self {
        Self {
            location,
            password: password.into(),
            cache_dir: None,
            progress: Arc::new(Quiet),
        }
    }

    pub(crate) fn backend(&self) -> Result<Arc<dyn WriteBackend>> {
        Ok(Arc::new(crate::cancel::Cancellable(self.raw_backend()?)))
    }

    fn raw_backend(&self) -> Result<Arc<dyn WriteBackend>> {
        match &self.location {
            Location::Local(path) => {
                Ok(Arc::new(SafeLocalBackend::new(path).map_err(|e| {
                    Error::from_rustic(&format!("cannot use {}", path.display()), &e)
                })?))
            }
            Location::Rest { url } => {
                let be = rustic_backend::RestBackend::new(url, BTreeMap::new()).map_err(|e| {
                    Error::from_rustic(&format!("cannot use rest:{}", redact_url(url)), &e)
                })?;
                Ok(Arc::new(be))
            }
            #[cfg(feature = "s3")]
            Location::S3 {
                endpoint,
                bucket,
                prefix,
                region,
                access_key_id,
                secret_access_key,
            } => {
                let mut opts = BTreeMap::new();
                opts.insert("endpoint".to_string(), endpoint.clone());
                opts.insert("bucket".to_string(), bucket.clone());
                opts.insert("root".to_string(), format!("/{prefix}"));
                opts.insert("region".to_string(), region.clone());
                if let Some(k) = access_key_id {
                    opts.insert("access_key_id".to_string(), k.clone());
                }
                if let Some(k) = secret_access_key {
                    opts.insert("secret_access_key".to_string(), k.clone());
                }
                let be = rustic_backend::OpenDALBackend::new("s3", opts).map_err(|e| {
                    Error::from_rustic(&format!("cannot use {}", self.location), &e)
                })?;
                Ok(Arc::new(be))
            }
            #[cfg(not(feature = "s3"))]
            Location::S3 { .. } => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} is an S3 repository, but this build has no S3 support",
                    self.location
                ),
            )
            .hint("rebuild with `cargo build --release --features s3`")),
        }
    }

    fn unopened(&self) -> Result<Repository<()>> {
        let backends = RepositoryBackends::new(self.backend()?, None);
        let mut opts = RepositoryOptions::default();
        match &self.cache_dir {
            Some(dir) => opts.cache_dir = Some(dir.clone()),
            None => opts.no_cache = true,
        }
        Repository::new_with_progress(&opts, &backends, Bridge(self.progress.clone()))
            .map_err(|e| Error::from_rustic("cannot prepare the repository", &e))
    }

    /// Does a repository exist here? `Err` when the location can't be reached.
    pub fn exists(&self) -> Result<bool> {
        if let Location::Local(path) = &self.location {
            return Ok(path.join("config").is_file());
        }
        if let Location::Rest { url } = &self.location {
            // fail fast with a clear sentence instead of a minute of retries
            probe_tcp(url).map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    format!("cannot reach {}: {e}", self.location),
                )
                .hint("check the address and that the server runs")
            })?;
        }
        let repo = self.unopened()?;
        let id = repo.config_id().map_err(|e| {
            let mut err = Error::from_rustic(&format!("cannot reach {}", self.location), &e);
            err.kind = ErrorKind::Backend;
            err.hint("check the address, that the server runs, and the credentials")
        })?;
        Ok(id.is_some())
    }

    /// Creates a new repository (restic format version 2, compressed).
    pub fn init(&self) -> Result<Repo> {
        if self.exists()? {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("a repository already exists at {}", self.location),
            )
            .hint("use it as it is, or choose another location"));
        }
        if let Location::Local(path) = &self.location {
            std::fs::create_dir_all(path)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), &e))?;
        }
        // rustic_core would derive the key with scrypt N=2^17 (128 MiB for
        // every later open); write the key file ourselves with the parameters
        // restic calibrates to on small machines (N=2^15, r=8, p=4: 32 MiB).
        let master = MasterKey::new();
        let backend = self.backend()?;
        let repo = self.unopened()?;
        guard("init", || {
            repo.init(
                &Credentials::Masterkey(master.clone()),
                &KeyOptions::default(),
                &ConfigOptions::default(),
            )
            .map_err(|e| {
                Error::from_rustic(
                    &format!("cannot create a repository at {}", self.location),
                    &e,
                )
            })
        })?;
        crate::keyfile::write_key(backend.as_ref(), &master, &self.password)?;
        self.open()
    }

    /// Opens an existing repository.
    pub fn open(&self) -> Result<Repo> {
        if !self.exists()? {
            return Err(Error::new(
                ErrorKind::RepoNotFound,
                format!("there is no repository at {}", self.location),
            )
            .hint("check the repository address, or create one with `bulwark init`"));
        }
        let repo = self.unopened()?;
        let creds = Credentials::password(&self.password);
        let repo = guard("open", || {
            repo.open(&creds).map_err(|e| {
                let err = Error::from_rustic(&format!("cannot open {}", self.location), &e);
                if err.kind == ErrorKind::WrongPassword {
                    Error::new(
                        ErrorKind::WrongPassword,
                        format!("the password does not open the repository at {}", self.location),
                    )
                    .hint("check the password file or BULWARK_PASSWORD; no key of this repository matches it")
                } else {
                    err
                }
            })
        })?;
        Ok(Repo {
            inner: repo,
            spec: self.clone(),
        })
    }
}

/// An open repository: the entry point of every operation.
#[derive(Debug)]
pub struct Repo {
    pub(crate) inner: Repository<OpenStatus>,
    pub(crate) spec: RepoSpec,
}

impl Repo {
    /// Where the repository lives (passwords redacted when displayed).
    pub fn location(&self) -> &Location {
        &self.spec.location
    }

    /// The repository id (from its `config` file).
    pub fn id(&self) -> String {
        self.inner.config().id.to_string()
    }

    /// Another handle on the same repository, opened with the already
    /// unlocked master key (no password derivation). rustic_core's indexing
    /// consumes a handle, so each indexed operation takes a fresh one.
    pub(crate) fn fresh(&self) -> Result<Repository<OpenStatus>> {
        let repo = self.spec.unopened()?;
        let creds = Credentials::Masterkey(self.inner.key());
        guard("open", || {
            repo.open(&creds)
                .map_err(|e| Error::from_rustic(&format!("cannot open {}", self.spec.location), &e))
        })
    }

    pub(crate) fn progress(&self) -> &Arc<dyn ProgressSink> {
        &self.spec.progress
    }

    pub(crate) fn all_snapshot_files(&self) -> Result<Vec<SnapshotFile>> {
        guard("listing snapshots", || {
            self.inner
                .get_all_snapshots()
                .map_err(|e| Error::from_rustic("cannot read the snapshots", &e))
        })
    }
}

/// Opens (and closes) a TCP connection to the host of `url`.
fn probe_tcp(url: &str) -> std::io::Result<()> {
    use std::net::ToSocketAddrs;
    let parsed =
        reqwest::Url::parse(url).map_err(|e| std::io::Error::other(format!("bad URL: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| std::io::Error::other("the URL has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut last = std::io::Error::other("the host name resolves to no address");
    for addr in (host.trim_start_matches('[').trim_end_matches(']'), port).to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(10)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Turns a path into an absolute, `.`/`..`-free path without touching symlinks.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path)
        .map_err(|e| Error::io(format!("cannot resolve {}", path.display()), &e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}
