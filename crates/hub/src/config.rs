//! The hub's settings ([`HubConfig`]), filled from command-line flags and/or
//! the `[hub]` section of `bulwark.toml` by the binary.

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf, time::Duration};

/// What a user may do in a repository. Ordered: each level includes the
/// ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Nothing at all.
    None,
    /// Read files and list them.
    Read,
    /// Read, create the repository, create new files; delete only `locks`.
    Append,
    /// Everything, including deleting any file.
    Modify,
}

impl Access {
    /// Parses `none`, `read`, `append` or `modify`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Access::None,
            "read" => Access::Read,
            "append" => Access::Append,
            "modify" => Access::Modify,
            _ => return None,
        })
    }

    /// The level's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::Read => "read",
            Access::Append => "append",
            Access::Modify => "modify",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One access-control entry: `user` gets `access` on the repositories
/// `repo` names.
///
/// `user` is a user name or `*` (every authenticated user). `repo` is a
/// repository path (`alice/laptop`: that repository only), a first segment
/// (`alice`: the repository `alice` and every `alice/*`), a path ending in
/// `/*` (`alice/*`: only the repositories below `alice`) or `*` (every
/// repository). The most specific matching entry wins (an exact path over a
/// prefix over `*`; a named user over `*` at the same specificity).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AclEntry {
    /// User name or `*`.
    pub user: String,
    /// Repository path, prefix or `*`.
    pub repo: String,
    /// The granted level.
    pub access: Access,
}

/// Certificate and key files for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsAuth {
    /// Users (from the htpasswd file) allowed to read `/metrics`.
    pub users: Vec<String>,
    /// A file holding a bearer token (`Authorization: Bearer <token>`).
    pub token_file: Option<PathBuf>,
    /// Serve `/metrics` without any authentication.
    pub public: bool,
}

impl Default for MetricsAuth {
    fn default() -> Self {
        Self {
            users: vec!["metrics".to_owned()],
            token_file: None,
            public: false,
        }
    }
}

/// Everything the hub needs to run.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Address to listen on (used by the binary; [`crate::serve`] takes a listener).
    pub listen: SocketAddr,
    /// The data directory (rest-server's `--path`): one directory per repository.
    pub data: PathBuf,
    /// The htpasswd file; `None` means `<data>/.htpasswd` (as rest-server).
    pub htpasswd: Option<PathBuf>,
    /// Everyone is at most `append` (rest-server's `--append-only`).
    pub append_only: bool,
    /// A user may only use repositories whose first segment is their name
    /// (unless an ACL entry grants more). On by default.
    pub private_repos: bool,
    /// No authentication at all (everyone is anonymous with full access,
    /// capped by `append_only`; ACL entries for `*` still apply).
    pub no_auth: bool,
    /// Serve HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// Maximum bytes stored in the whole data directory.
    pub max_size: Option<u64>,
    /// Maximum size of one uploaded file (413 beyond).
    pub max_file_size: u64,
    /// Quotas per repository path (bytes).
    pub quotas: BTreeMap<String, u64>,
    /// Access-control entries.
    pub acl: Vec<AclEntry>,
    /// Who may read `/metrics`.
    pub metrics: MetricsAuth,
    /// How often to scrub every repository (`None`: never).
    pub scrub_interval: Option<Duration>,
    /// How long a client may take to send the request line and headers.
    pub header_read_timeout: Duration,
    /// How long an upload may stall between two chunks.
    pub body_idle_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Maximum number of request headers (431 beyond).
    pub max_headers: usize,
    /// Failed authentications per source (IPv4 address or IPv6 /64) per
    /// minute before 429.
    pub auth_failure_limit: u32,
    /// Connections served at once; one more gets a 503 with a sentence
    /// (and is closed), never a hang.
    pub max_connections: usize,
    /// Password (bcrypt) checks admitted at once, running or waiting for a
    /// CPU; one more is refused with a 503 at once.
    pub max_auth_checks: usize,
    /// The control plane (`/api/v1`, `/ping`); `None`: those paths answer
    /// 404 and only the repository server runs.
    pub control: Option<crate::control::ControlConfig>,
}

impl HubConfig {
    /// Default maximum size of one file: 128 MiB (restic packs are smaller).
    pub const DEFAULT_MAX_FILE_SIZE: u64 = 128 << 20;
    /// Default cap on connections served at once.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
    /// Default cap on password checks at once.
    pub const DEFAULT_MAX_AUTH_CHECKS: usize = 16;
    /// Default scrub interval: a week.
    pub const DEFAULT_SCRUB_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Defaults for a data directory: listen on `:8000`, auth from
    /// `<data>/.htpasswd`, no quotas, weekly scrubbing.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            data: data.into(),
            htpasswd: None,
            append_only: false,
            private_repos: true,
            no_auth: false,
            tls: None,
            max_size: None,
            max_file_size: Self::DEFAULT_MAX_FILE_SIZE,
            quotas: BTreeMap::new(),
            acl: Vec::new(),
            metrics: MetricsAuth::default(),
            scrub_interval: Some(Self::DEFAULT_SCRUB_INTERVAL),
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            max_headers: 100,
            auth_failure_limit: 10,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_auth_checks: Self::DEFAULT_MAX_AUTH_CHECKS,
            control: None,
        }
    }

    /// The htpasswd file in use.
    pub fn htpasswd_path(&self) -> PathBuf {
        self.htpasswd
            .clone()
            .unwrap_or_else(|| self.data.join(".htpasswd"))
    }
}
