//! The agent's errors.

use std::path::PathBuf;

/// What went wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file in the state directory could not be read or written.
    #[error("{action} {path}: {source}; check that the agent's state directory is writable")]
    State {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A state file is damaged (it is moved aside, never silently dropped).
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The configuration could not be used.
    #[error("{0}")]
    Config(String),
    /// The hub could not be reached (temporary: retried).
    #[error("the hub is unreachable: {0}")]
    Unreachable(String),
    /// The hub refused a request (permanent for that request).
    #[error("the hub refused {what}: HTTP {status}: {message}")]
    Refused {
        /// The request.
        what: String,
        /// HTTP status.
        status: u16,
        /// The hub's explanation.
        message: String,
        /// Seconds to wait, when the hub said (409 on leases, 429).
        retry_after: Option<u64>,
    },
    /// The hub's configuration is not signed, or not by the trusted key, or
    /// was changed after signing: it is not run.
    #[error("the hub's configuration is refused: {problem}")]
    Unverified {
        /// What is wrong with the signature.
        problem: String,
        /// How to fix it.
        hint: String,
    },
    /// A TLS certificate could not be verified (permanent: never retried).
    #[error("{message}")]
    Certificate {
        /// What is wrong, with the TLS library's reason.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// Plain http:// to a hub that is not on loopback, not allowed.
    #[error("{message}")]
    Insecure {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The agent was set up wrongly (token file missing, bad URL, ...).
    #[error("{message}")]
    Setup {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
}

impl AgentError {
    /// How to fix it, when known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Unverified { hint, .. }
            | Self::Certificate { hint, .. }
            | Self::Insecure { hint, .. }
            | Self::Setup { hint, .. } => Some(hint),
            _ => None,
        }
    }

    /// True when retrying later may succeed (network trouble, 5xx, 429).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

/// Shorthand.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;
