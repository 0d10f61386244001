//! Bulwark's backup engine.
//!
//! Reads and writes repositories in restic's format (restic can read what we
//! write and vice versa), using [`rustic_core`] underneath. Callers see only
//! this crate's API: typed requests in, typed summaries and progress events
//! out. Nothing here knows about servers, schedulers or terminals.
//!
//! What this layer adds on top of rustic_core:
//! - atomic, durable writes for local repositories ([`local`]): a crash never
//!   leaves a half-written file under its final name;
//! - skipped files during backup are recorded and reported, not just logged;
//! - command sources (database dumps) streamed into the snapshot, failing the
//!   file if the command fails;
//! - its own restore: bounded memory, never panics on a damaged pack, restores
//!   every intact file and lists the rest, and can verify what it wrote;
//! - panics inside rustic_core become errors, never crashes.
//!
//! ```no_run
//! use bulwark_engine::{BackupRequest, Location, RepoSpec};
//! let spec = RepoSpec::new(Location::Local("/tmp/repo".into()), "secret");
//! let repo = spec.init()?;
//! let summary = repo.backup(&BackupRequest { paths: vec!["/etc".into()], ..Default::default() })?;
//! println!("snapshot {} ({} files skipped)", summary.snapshot.short_id, summary.skipped.len());
//! # Ok::<(), bulwark_engine::Error>(())
//! ```

pub mod error;
pub mod local;
pub mod progress;

mod backup;
mod cancel;
mod keyfile;
mod lock;
mod ops;
mod repo;
mod rest;
mod restore;
#[cfg(feature = "s3")]
mod s3;
mod snapshots;
mod xattrs;

pub use backup::{stop_running_commands, BackupRequest, BackupSummary, CommandSource, SkippedFile};
pub use cancel::{cancel, is_cancelled};
pub use error::{Error, ErrorKind, Result};
pub use lock::{release_all_locks, LockInfo, RepoLock};
pub use ops::{
    CheckData, CheckSummary, CopySummary, DiffEntry, DiffSummary, ForgetDecision, ForgetGroup,
    ForgetSummary, KeepPolicy, LsEntry, PruneSummary,
};
pub use progress::{Phase, ProgressSink, Quiet, Unit};
pub use repo::{redact_url, Location, Repo, RepoSpec};
pub use rest::install_tls_provider;
pub use restore::{FailedPath, RestoreRequest, RestoreSummary};
pub use snapshots::{SnapshotFilter, SnapshotInfo, SnapshotStats};
