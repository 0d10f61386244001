//! The hub's error type.

use std::path::PathBuf;

/// Why the hub could not start or a hub operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] bulwark_store::Error),
    /// Reading a file the hub needs (htpasswd, TLS, token) failed.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing a file (htpasswd) failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file the hub needs has bad content.
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// TLS setup failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// The control plane's database or state failed.
    #[error("{0}")]
    Control(String),
    /// Socket-level failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
