//! Bulwark's hub: a keyless repository server that speaks restic's REST
//! protocol (v1 and v2), a drop-in replacement for rest-server.
//!
//! The hub stores opaque repository files through a [`bulwark_store::Store`]
//! (by default a [`LocalStore`](bulwark_store::local::LocalStore) with
//! rest-server's directory layout) and **never holds a repository key**: it
//! checks that every uploaded file (except `config`) hashes to its name,
//! never overwrites, and writes atomically. On top of the protocol it adds:
//!
//! - **authentication**: HTTP Basic against an htpasswd file (bcrypt),
//!   reloaded when it changes, verified results cached, failed attempts
//!   rate-limited per source address ([`set_password`] edits the file);
//! - **access control** per user and repository: `read`, `append` (create
//!   files, delete only locks), `modify` ([`Access`], [`AclEntry`]), plus
//!   rest-server's `--append-only`, `--private-repos` and `--no-auth`;
//! - **quotas** per repository and for the whole data directory, counted
//!   incrementally (507 when exceeded, nothing stored);
//! - **metrics** on `/metrics` (Prometheus text): bytes and files per
//!   repository and type, time of the last snapshot upload, reads, writes,
//!   deletes, latency, auth failures, scrub results, process figures;
//! - **scrubbing** on a schedule and on demand ([`scrub_dir`]);
//! - a **control plane** ([`ControlConfig`]): a versioned JSON API under
//!   `/api/v1` (run history in SQLite, triggers with agent long-poll,
//!   repository leases, job status with late detection, bearer tokens) and
//!   healthchecks-style pings under `/ping`; the repository names `api` and
//!   `ping` are therefore reserved;
//! - **replication** ([`replication`]): with [`ControlConfig::replication`]
//!   set, every `[targets.NAME]` of the plan receives a keyless, verified
//!   copy of the hub's repositories on its schedule and soon after each new
//!   snapshot, with progress and durable alerts in the control database and
//!   the 3-2-1 report on `/api/v1/replication` and in the metrics;
//! - optional **TLS** (rustls, TLS 1.2+), header and body timeouts, a
//!   header-count limit, graceful shutdown.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bulwark_hub::HubError> {
//! use bulwark_hub::{serve, HubConfig};
//! let mut config = HubConfig::new("/srv/bulwark");
//! config.append_only = true;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! serve(listener, config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod acl;
mod auth;
mod config;
mod control;
mod error;
mod handler;
mod metrics;
pub mod monitoring;
pub mod replication;
/// Request paths → what they address. Public only for the fuzz targets and
/// property tests (`fuzz/`, `tests/prop.rs`); not a stable API.
#[doc(hidden)]
pub mod route;
mod scrub;
mod server;
mod usage;

pub use auth::{parse_htpasswd, set_password};
pub use config::{Access, AclEntry, HubConfig, MetricsAuth, TlsFiles};
pub use control::{
    config_version, create_token, list_tokens, revoke_token, routes as control_routes,
    ControlConfig, ControlPlan, DbError, PlanHost, PlanJob, PlanPing, TokenInfo, TokenKind,
    MAX_PING_BODY, TOKEN_PREFIX,
};
pub use error::HubError;
pub use monitoring::MonitoringSettings;
pub use replication::{ReplicationSettings, TargetOpener};
pub use scrub::{scrub_dir, scrub_store, BadFile, RepoScrub, ScrubSummary};
pub use server::{serve, Hub};
