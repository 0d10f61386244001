//! Snapshot listing and selection.

use std::path::PathBuf;

use rustic_core::repofile::SnapshotFile;
use serde::Serialize;

use crate::{
    error::{Error, ErrorKind, Result},
    repo::Repo,
};

/// A snapshot as Bulwark reports it (`--json` output is this struct).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SnapshotInfo {
    /// Full id (64 hex chars).
    pub id: String,
    /// First 8 hex chars of the id.
    pub short_id: String,
    /// When the backup started, RFC 3339 in UTC.
    pub time: String,
    /// Host name recorded in the snapshot.
    pub hostname: String,
    /// User who ran the backup.
    pub username: String,
    /// Backed-up paths.
    pub paths: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Parent snapshot id, if the backup used one.
    pub parent: Option<String>,
    /// Root tree id.
    pub tree: String,
    /// Statistics recorded by the backup, when present.
    pub summary: Option<SnapshotStats>,
}

/// The statistics a backup recorded in its snapshot.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SnapshotStats {
    /// New files.
    pub files_new: u64,
    /// Changed files.
    pub files_changed: u64,
    /// Unchanged files.
    pub files_unmodified: u64,
    /// Files in the snapshot.
    pub total_files_processed: u64,
    /// Bytes in the snapshot's files.
    pub total_bytes_processed: u64,
    /// New directories.
    pub dirs_new: u64,
    /// Changed directories.
    pub dirs_changed: u64,
    /// Unchanged directories.
    pub dirs_unmodified: u64,
    /// Bytes of new data added to the repository (before compression).
    pub data_added: u64,
    /// Bytes actually stored (after compression and encryption).
    pub data_added_packed: u64,
    /// Seconds the backup took.
    pub backup_duration: f64,
}

impl SnapshotInfo {
    pub(crate) fn from_file(s: &SnapshotFile) -> Self {
        let id = s.id.to_hex().to_string();
        Self {
            short_id: id.chars().take(8).collect(),
            id,
            time: s.time.timestamp().to_string(),
            hostname: s.hostname.clone(),
            username: s.username.clone(),
            paths: s.paths.iter().cloned().collect(),
            tags: s.tags.iter().cloned().collect(),
            parent: s.parent.map(|p| p.to_hex().to_string()),
            tree: s.tree.to_hex().to_string(),
            summary: s.summary.as_ref().map(|m| SnapshotStats {
                files_new: m.files_new,
                files_changed: m.files_changed,
                files_unmodified: m.files_unmodified,
                total_files_processed: m.total_files_processed,
                total_bytes_processed: m.total_bytes_processed,
                dirs_new: m.dirs_new,
                dirs_changed: m.dirs_changed,
                dirs_unmodified: m.dirs_unmodified,
                data_added: m.data_added,
                data_added_packed: m.data_added_packed,
                backup_duration: m.backup_duration,
            }),
        }
    }
}

/// Which snapshots an operation looks at. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    /// Only these hosts.
    pub hosts: Vec<String>,
    /// Only snapshots carrying all of these tags.
    pub tags: Vec<String>,
    /// Only snapshots whose path set equals these paths.
    pub paths: Vec<PathBuf>,
}

impl SnapshotFilter {
    pub(crate) fn matches(&self, s: &SnapshotFile) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && self.tags.iter().all(|t| s.tags.contains(t))
            && (self.paths.is_empty() || {
                let mut want: Vec<String> = self
                    .paths
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                want.sort();
                let mut have: Vec<String> = s.paths.iter().cloned().collect();
                have.sort();
                want == have
            })
    }
}

impl Repo {
    /// All snapshots matching `filter`, oldest first.
    pub fn snapshots(&self, filter: &SnapshotFilter) -> Result<Vec<SnapshotInfo>> {
        Ok(self
            .snapshot_files(filter)?
            .iter()
            .map(SnapshotInfo::from_file)
            .collect())
    }

    pub(crate) fn snapshot_files(&self, filter: &SnapshotFilter) -> Result<Vec<SnapshotFile>> {
        let mut snaps: Vec<_> = self
            .all_snapshot_files()?
            .into_iter()
            .filter(|s| filter.matches(s))
            .collect();
        snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(snaps)
    }

    /// Finds one snapshot by id prefix, or `latest` (the newest matching `filter`).
    pub fn find_snapshot(&self, spec: &str, filter: &SnapshotFilter) -> Result<SnapshotInfo> {
        Ok(SnapshotInfo::from_file(
            &self.find_snapshot_file(spec, filter)?,
        ))
    }

    pub(crate) fn find_snapshot_file(
        &self,
        spec: &str,
        filter: &SnapshotFilter,
    ) -> Result<SnapshotFile> {
        let snaps = self.snapshot_files(filter)?;
        if spec == "latest" {
            return snaps.into_iter().last().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "there is no snapshot to use as `latest`",
                )
                .hint("run a backup first, or check the --host/--tag/--path filters")
            });
        }
        let spec_lc = spec.to_ascii_lowercase();
        if spec_lc.is_empty() || !spec_lc.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{spec}` is not a snapshot id"),
            )
            .hint("give `latest` or an id (or its first 8 characters) from `bulwark snapshots`"));
        }
        let mut found = snaps
            .into_iter()
            .filter(|s| s.id.to_hex().to_string().starts_with(&spec_lc));
        match (found.next(), found.next()) {
            (Some(s), None) => Ok(s),
            (None, _) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("no snapshot with id `{spec}`"),
            )
            .hint("list the snapshots with `bulwark snapshots`")),
            (Some(_), Some(_)) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{spec}` matches more than one snapshot"),
            )
            .hint("give more characters of the id")),
        }
    }
}
