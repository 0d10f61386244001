//! Database sources: `[[jobs.NAME.databases]]` → command sources for the
//! engine, and the hidden `sqlite-backup` command behind SQLite sources.

use std::path::Path;

use anyhow::Result;

/// `bulwark sqlite-backup PATH`: a consistent online copy on stdout.
pub(crate) fn sqlite_backup(path: &Path) -> Result<u8> {
    Err(crate::context::fail(format!("sqlite-backup {} is not implemented yet", path.display()), "wait"))
}
