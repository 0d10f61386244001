//! Opening, creating and describing repositories.

use std::{
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
        /// A PEM file with the CA (or self-signed certificate) to trust in
        /// addition to the system roots (`[agent] ca_file`, `--ca-file`).
        ca_file: Option<PathBuf>,
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
            Self::Rest { url, .. } => write!(f, "rest:{}", redact_url(url)),
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
            Location::Rest { url, ca_file } => {
                let be = crate::rest::RestBackend::new(url, ca_file.as_deref()).map_err(|e| {
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
                let be = crate::s3::S3Backend::new(&crate::s3::S3Options {
                    endpoint,
                    bucket,
                    prefix,
                    region,
                    access_key_id: access_key_id.as_deref(),
                    secret_access_key: secret_access_key.as_deref(),
                })
                .map_err(|e| Error::from_rustic(&format!("cannot use {}", self.location), &e))?;
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
        if let Location::Rest { url, ca_file } = &self.location {
            // one request, no retries: a refused certificate or credential
            // is permanent and named as such (rustic's backend would retry
            // for half a minute, then call a 401/403 "no repository")
            return probe_rest(url, ca_file.as_deref(), &self.location);
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

/// The hint for a certificate the system roots (and `ca_file`) don't trust.
pub const CA_FILE_HINT: &str =
    "set ca_file = \"/path/ca.pem\" in [agent] or pass --ca-file (the CA that signed the hub's certificate)";

/// A blocking HTTP client for a REST server: the system roots plus
/// `ca_file`.
pub(crate) fn http_client(
    ca_file: Option<&Path>,
    timeout: std::time::Duration,
) -> Result<reqwest::blocking::Client> {
    crate::rest::install_tls_provider();
    let mut b = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(10));
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| Error::io(format!("cannot read the CA file {}", ca.display()), &e))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not a PEM certificate: {e}", ca.display()),
            )
            .hint("give the hub's CA certificate (or its self-signed certificate) in PEM form")
        })?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| {
        Error::new(
            ErrorKind::Backend,
            format!("cannot set up HTTP: {}", error_chain(&e)),
        )
    })
}

/// reqwest hides the cause ("error sending request"); the whole chain
/// names it (`invalid peer certificate: UnknownIssuer`, `Connection refused`).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// The user name in `scheme://user:password@host/...`, if any.
fn url_user(url: &reqwest::Url) -> Option<String> {
    let u = url.username();
    (!u.is_empty()).then(|| percent_decode(u))
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `HEAD <url>/config`, once: Ok(true) when it exists, Ok(false) on 404;
/// 401, 403 and certificate errors become errors of their own kind.
fn probe_rest(url: &str, ca_file: Option<&Path>, location: &Location) -> Result<bool> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{location} is not a valid URL: {e}"),
        )
    })?;
    let config = format!("{}/config", url.trim_end_matches('/'));
    let client = http_client(ca_file, std::time::Duration::from_secs(60))?;
    let resp = client.head(&config).send().map_err(|e| {
        let text = error_chain(&e);
        let cert = [
            "certificate",
            "UnknownIssuer",
            "CaUsedAsEndEntity",
            "NotValidForName",
            "Expired",
        ]
        .iter()
        .any(|k| text.contains(k));
        let err = Error::new(
            ErrorKind::Backend,
            format!("cannot reach {location}: {text}"),
        );
        if cert {
            err.hint(CA_FILE_HINT)
        } else {
            err.hint("check the address and that the server runs")
        }
    })?;
    let user = url_user(&parsed);
    let repo = parsed.path().trim_matches('/').to_string();
    let repo = if repo.is_empty() {
        "/".to_string()
    } else {
        repo
    };
    match resp.status().as_u16() {
        200..=299 => Ok(true),
        404 => Ok(false),
        401 => Err(Error::new(
            ErrorKind::Unauthorized,
            match &user {
                Some(u) => format!("the hub refused the credentials of user `{u}` ({location}: HTTP 401)"),
                None => format!("the hub asks for credentials and none were given ({location}: HTTP 401)"),
            },
        )
        .hint(match &user {
            Some(u) => format!(
                "check the user name and password_file in the repository's [repositories.NAME.rest] table; \
                 on the hub, `bulwark hub passwd FILE {u}` sets that user's password"
            ),
            None => "give the user name and password in [repositories.NAME.rest] (username, password_file)".into(),
        })),
        403 => Err(Error::new(
            ErrorKind::Forbidden,
            format!(
                "user `{}` has no read access to repository `{repo}` ({location}: HTTP 403)",
                user.as_deref().unwrap_or("(none)")
            ),
        )
        .hint(format!(
            "on the hub, add a [[hub.acl]] entry: user = \"{}\", repo = \"{repo}\", access = \"append\" (or \"modify\")",
            user.as_deref().unwrap_or("NAME")
        ))),
        s => Err(Error::new(
            ErrorKind::Backend,
            format!("cannot read {location}: the server answered HTTP {s}"),
        )
        .hint("check the address, and the server's log")),
    }
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
