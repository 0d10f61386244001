//! Bulwark's agent: runs a host's jobs on their schedules, reports every run
//! to the hub, and takes triggers — with no inbound port on the host.
//!
//! - [`agent`] — the main loop ([`Agent`]): plans each job with
//!   `bulwark_schedule` (randomized delay, persistent catch-up), runs one job
//!   at a time, long-polls the hub for triggers and configuration changes.
//! - [`runner`] — a run is a child `bulwark run --job NAME --json` process
//!   ([`ProcessExecutor`]); its JSON report becomes a `bulwark_api::RunReport`.
//! - [`queue`] — reports go to a durable queue first and are delivered in
//!   order; the report id makes delivery exactly-once on the hub.
//! - [`monitors`] — the probe monitors whose `on` names this host: run on
//!   their intervals (restarted when the configuration changes them), their
//!   results delivered to the hub in batches.
//! - [`client`] — the control API client ([`HubClient`]).
//! - [`sqlite`] — consistent online copies of live SQLite databases.
//! - [`clock`] — injectable time: tests pause tokio's clock and drive days of
//!   schedule in milliseconds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bulwark_agent::AgentError> {
//! use std::{sync::Arc, time::Duration};
//! use bulwark_agent::*;
//! let (stop_tx, stop) = tokio::sync::watch::channel(false);
//! let opts = AgentOptions {
//!     host: Some("nas".into()),
//!     state_dir: "/var/lib/bulwark/agent".into(),
//!     config: ConfigSource::File("/etc/bulwark/bulwark.toml".into()),
//!     poll_wait: Duration::from_secs(30),
//!     reload_every: Duration::from_secs(5),
//!     config_key: None,
//! };
//! let token = read_token("/etc/bulwark/agent.token".as_ref())?;
//! let hub = HubClient::new("https://hub.lan:8000", token, None)?;
//! let exec = ProcessExecutor {
//!     program: "/usr/bin/bulwark".into(),
//!     config: "/etc/bulwark/bulwark.toml".into(),
//!     extra_args: vec![],
//!     stop_grace: Duration::from_secs(60),
//! };
//! let agent = Agent::new(opts, Some(hub), Arc::new(exec), Arc::new(SystemClock), stop)?;
//! agent.run().await
//! # }
//! ```

pub mod agent;
pub mod client;
pub mod clock;
mod error;
mod fsutil;
pub mod monitors;
pub mod queue;
pub mod runner;
pub mod signing;
pub mod sqlite;
pub mod state;

pub use agent::{lease_key, units_of, Agent, AgentOptions, ConfigSource, Loaded, Unit};
pub use client::{read_token, HubClient};
pub use clock::{Clock, SystemClock, TokioClock};
pub use error::{AgentError, Result};
pub use fsutil::write_atomic;
pub use runner::{parse_report, Executor, ProcessExecutor, RunOutcome, RunRequest};
pub use signing::{ConfigKey, SignatureError, SigningSecret};
