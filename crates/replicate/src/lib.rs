//! Offsite replication: mirror a restic-format repository from one keyless
//! [`Store`](bulwark_store::Store) to another — incrementally, verified;
//! deletions reach the target only through [`propagate_deletes`].
//!
//! Repository files are immutable and named by the SHA-256 of their
//! content (all but `config`), so a mirror needs no key: it lists both
//! sides and copies what the target lacks. [`mirror_repo`]:
//!
//! - copies `config` first, and refuses (error [`ErrorKind::ConfigMismatch`])
//!   if the target has a different one: that is another repository;
//! - then copies `keys`, `data`, `index`, `snapshots`, each phase finished
//!   before the next, so a snapshot only appears at the target once its
//!   index and packs are there; `locks` are never copied;
//! - hashes every file while it streams; a source file whose content does
//!   not match its name is not stored (the stream fails before its end, so
//!   even a target that does not verify names stores nothing) and is
//!   reported in [`MirrorReport::corrupt_source`];
//! - copies `parallel` files at once, under an optional shared bandwidth
//!   limit;
//! - never deletes at the target. Stores write atomically, so an
//!   interrupted run leaves complete files only, and the next run copies
//!   just what is still missing.
//!
//! [`verify_sample`] re-hashes the target (all keys, index and snapshots,
//! a seeded random sample of packs); [`repair`] deletes files it proved
//! corrupt (if the target store allows) and copies them and missing ones
//! again from the source.
//!
//! [`propagate_deletes`] carries deletions (forget, prune) over to the
//! target, separately from the mirror and cautiously: a file missing at
//! the source enters a [`Pending`] list the caller keeps between runs, and
//! is deleted only once it has been missing for [`DeletePolicy::quarantine`];
//! a run that would delete more than [`DeletePolicy::cap_percent`] of the
//! target deletes nothing and reports [`DeleteReport::over_cap`]. Deletes go
//! in [`DELETE_ORDER`] (snapshots, index, data, keys); a source that is
//! gone, has no `config`, holds another repository or cannot be listed
//! fails the run before anything is deleted.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bulwark_replicate::{mirror_repo, repair, verify_sample, MirrorOptions, Sample};
//! use bulwark_store::{local::LocalStore, RepoPath};
//!
//! let source = LocalStore::new("/srv/bulwark")?;
//! let target = LocalStore::new("/mnt/offsite")?;
//! let repo = RepoPath::parse("alice/laptop")?;
//! let opts = MirrorOptions { parallel: 4, bandwidth: Some(10 << 20), ..MirrorOptions::default() };
//!
//! let report = mirror_repo(&source, &target, &repo, &opts).await?;
//! println!("{} files, {} bytes copied", report.copied_files(), report.copied_bytes());
//! for file in &report.corrupt_source {
//!     eprintln!("corrupt at the source, not copied: {file}");
//! }
//!
//! let found = verify_sample(&target, &repo, Sample::Fraction(0.05), 42).await?;
//! if !found.is_clean() {
//!     let fixed = repair(&source, &target, &repo, &found, &opts).await?;
//!     println!("re-copied {} files", fixed.recopied.len());
//! }
//! # Ok(()) }
//! ```

mod copy;
mod deletes;
mod error;
mod limiter;
mod mirror;
mod verify;

pub use copy::{FileId, FileProblem};
pub use deletes::{propagate_deletes, DeletePolicy, DeleteReport, Pending, DELETE_ORDER};
pub use error::{ErrorKind, ReplicateError, Result};
pub use limiter::RateLimiter;
pub use mirror::{mirror_repo, MirrorOptions, MirrorReport, TypeReport, PHASES};
pub use verify::{repair, verify_sample, RepairReport, Sample, VerifyReport};
