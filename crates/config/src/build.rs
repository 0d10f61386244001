//! Live objects from the model: a monitor's spec with its secret headers
//! ([`ProbeCheck::load`]), a notifier ([`NotifierDecl::build`]) and the hub's
//! pinger ([`Alerts::pinger`]), each with its secrets loaded and checked.
//!
//! This is the one module that builds `bulwark_monitor` / `bulwark_notify`
//! values; everything else in the crate is data and validation.

use bulwark_monitor::{MonitorSpec, Probe, SpecError};
use bulwark_notify::Notifier;

use crate::{Alerts, NotifierDecl, ProbeCheck, SecretError, SecretSource};

/// A notifier, pinger or monitor could not be built from the configuration
/// (its secrets loaded). Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A secret could not be loaded.
    #[error("cannot load the secret of {what}: {error}")]
    Secret {
        /// Whose secret (`notifier `phone` (token_file)`).
        what: String,
        /// Why.
        error: SecretError,
    },
    /// `bulwark_notify` refused the settings with their secrets (a token with
    /// a newline, a URL file that holds no URL).
    #[error("{0}")]
    Notify(bulwark_notify::NotifyError),
    /// `bulwark_monitor` refused the spec with its secret headers.
    #[error("monitor `{monitor}`: {error}")]
    Monitor {
        /// The monitor.
        monitor: String,
        /// What is wrong.
        error: SpecError,
    },
}

impl ProbeCheck {
    /// The spec with the secret headers loaded into it. The result holds
    /// secrets: don't log it.
    pub fn load(&self) -> Result<MonitorSpec, BuildError> {
        let mut spec = self.spec.clone();
        if let Probe::Http(h) = &mut spec.probe {
            for (header, source) in &self.secret_headers {
                let value = source.load().map_err(|error| BuildError::Secret {
                    what: format!("header `{header}` of monitor `{}`", self.spec.name),
                    error,
                })?;
                h.headers
                    .insert(header.clone(), value.expose().trim().to_string());
            }
        }
        spec.validate().map_err(|error| BuildError::Monitor {
            monitor: spec.name.clone(),
            error,
        })?;
        Ok(spec)
    }
}

impl Alerts {
    /// The hub's pinger, with its URL loaded and checked; `None` without
    /// `hub_ping_url_*`.
    pub fn pinger(&self) -> Result<Option<bulwark_notify::Pinger>, BuildError> {
        let Some(source) = &self.hub_ping else {
            return Ok(None);
        };
        let url = source.load().map_err(|error| BuildError::Secret {
            what: "the hub's ping URL ([alerts])".into(),
            error,
        })?;
        let pinger = bulwark_notify::Pinger::new(url.expose().trim());
        pinger.validate().map_err(BuildError::Notify)?;
        Ok(Some(pinger))
    }
}

impl NotifierDecl {
    /// Loads the secrets and builds the notifier, checked with
    /// [`Notifier::validate`] (which also reads `ca_file`).
    pub fn build(&self) -> Result<Notifier, BuildError> {
        let notifier = self.channel(&mut |source: &SecretSource, key: &str| {
            source
                .load()
                .map(|s| s.expose().to_string())
                .map_err(|error| BuildError::Secret {
                    what: format!("notifier `{}` ({key})", self.name),
                    error,
                })
        })?;
        notifier.validate().map_err(BuildError::Notify)?;
        Ok(notifier)
    }
}
