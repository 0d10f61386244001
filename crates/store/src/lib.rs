//! Keyless stores for restic-format repository files.
//!
//! A [`Store`] holds many repositories (a path of one or two segments, e.g.
//! `alice` or `alice/laptop`), each made of opaque files: `config`, and files
//! of the types `data`, `keys`, `locks`, `snapshots`, `index` named by the
//! SHA-256 of their content. A store never decrypts anything: it verifies
//! names against content hashes, refuses overwrites, and writes atomically
//! (a crash leaves each file complete or absent).
//!
//! Implementations: [`local::LocalStore`] (a directory, rest-server's layout)
//! and, with the `s3` feature, `s3::S3Store` (an S3-compatible bucket via
//! opendal, restic's S3 layout). With the `rest` feature, `rest::RestStore`
//! is a client of restic's REST protocol (a peer Bulwark hub, restic's
//! rest-server, `rclone serve restic`), for replicating to another host. The
//! local and S3 layouts are the ones restic itself
//! uses, so restic can open a repository in either directly. Every
//! implementation passes the conformance suite in `tests/suite/mod.rs`
//! (the REST store minus the checks its protocol cannot express, listed in
//! `tests/rest.rs`).
//!
//! [`scrub`] re-hashes stored files against their names ([`verify`],
//! [`scrub_repo`]): a keyless check for bit rot and tampering.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bulwark_store::Error> {
//! use bulwark_store::{local::LocalStore, FileRef, RepoPath, Store};
//! let store = LocalStore::new("/srv/bulwark")?;
//! let repo = RepoPath::parse("alice/laptop")?;
//! for entry in store.list(&repo, bulwark_store::FileType::Snapshots).await? {
//!     println!("{} {}", entry.name, entry.size);
//! }
//! # Ok(()) }
//! ```

pub mod local;
#[cfg(feature = "rest")]
pub mod rest;
#[cfg(feature = "s3")]
pub mod s3;
pub mod scrub;

mod types;
mod util;

#[cfg(feature = "rest")]
pub use rest::RestStore;
pub use scrub::{scrub_repo, verify, ScrubReport};
pub use types::{
    ByteStream, Entry, Error, ErrorKind, FileRef, FileType, Name, Range, RepoPath, Result, Store,
};
