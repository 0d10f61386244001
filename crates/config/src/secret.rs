//! Secrets referenced by the config: files or environment variables, loaded
//! on demand, never printed.

use std::{fmt, path::PathBuf};

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file holding the secret (one trailing newline is ignored).
    File(PathBuf),
    /// An environment variable holding the secret.
    Env(String),
}

/// A loaded secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }
    /// The secret itself; don't log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A secret could not be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// The file does not exist.
    #[error("the secret file {0} does not exist; create it (e.g. `install -m 600 /dev/null {0}` and write the secret into it) or fix the path")]
    Missing(String),
    /// The file can't be read.
    #[error("the secret file {path} cannot be read: {reason}; check its permissions")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is empty.
    #[error("the secret file {0} is empty; write the secret into it")]
    EmptyFile(String),
    /// The variable is unset or empty.
    #[error("the environment variable {0} is not set (or empty); export it, or use a password file instead")]
    EnvUnset(String),
}

impl SecretSource {
    /// Loads the secret.
    pub fn load(&self) -> Result<Secret, SecretError> {
        match self {
            Self::File(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        SecretError::Missing(shown.clone())
                    } else {
                        SecretError::Unreadable {
                            path: shown.clone(),
                            reason: e.to_string(),
                        }
                    }
                })?;
                let value = text
                    .strip_suffix("\r\n")
                    .or_else(|| text.strip_suffix('\n'))
                    .unwrap_or(&text)
                    .to_string();
                if value.is_empty() {
                    return Err(SecretError::EmptyFile(shown));
                }
                Ok(Secret(value))
            }
            Self::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                _ => Err(SecretError::EnvUnset(name.clone())),
            },
        }
    }
}
