//! The error type of this crate.

use std::fmt;

/// What went wrong, coarse enough for callers to decide (retry, alert, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The source has no such repository (or it has no `config`).
    SourceNotFound,
    /// Both sides have a `config` and they differ: different repositories.
    ConfigMismatch,
    /// The options are unusable (e.g. a bandwidth of 0).
    InvalidOptions,
    /// A store operation that the whole run depends on failed (listing,
    /// creating the repository, reading or writing `config`).
    Store,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::SourceNotFound => "source not found",
            ErrorKind::ConfigMismatch => "config mismatch",
            ErrorKind::InvalidOptions => "invalid options",
            ErrorKind::Store => "store error",
        })
    }
}

/// A replication error: a kind, a sentence of context, and the store
/// error that caused it (if any).
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct ReplicateError {
    /// Coarse classification.
    pub kind: ErrorKind,
    /// What was being done, naming stores and repository (no credentials).
    pub context: String,
    /// The underlying store error.
    #[source]
    pub source: Option<bulwark_store::Error>,
}

impl ReplicateError {
    /// An error of `kind` without an underlying store error.
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        Self {
            kind,
            context: context.into(),
            source: None,
        }
    }

    /// A [`ErrorKind::Store`] error: `context` plus the store's message.
    pub fn store(context: impl fmt::Display, source: bulwark_store::Error) -> Self {
        Self {
            kind: ErrorKind::Store,
            context: format!("{context}: {source}"),
            source: Some(source),
        }
    }

    /// The kind of the underlying store error, if there is one.
    pub fn store_kind(&self) -> Option<bulwark_store::ErrorKind> {
        self.source.as_ref().map(|e| e.kind)
    }
}

/// Result alias of this crate.
pub type Result<T, E = ReplicateError> = std::result::Result<T, E>;
