//! The durable report queue: every finished run is written here first, then
//! delivered to the hub in order, oldest first, and removed only once the hub
//! acknowledged it. With the report's `id` as idempotency key on the hub, a
//! report is stored exactly once even if the agent crashes between the hub's
//! answer and the removal.
//!
//! Layout: `DIR/queue/00000000000000000042.json` (one report per file, the
//! number orders them); reports the hub refuses for good are moved to
//! `DIR/rejected/` and logged, so one bad report can't block the rest.

use std::path::{Path, PathBuf};

use bulwark_api::RunReport;

use crate::{
    error::{AgentError, Result},
    fsutil::{private_dir, write_atomic},
};

/// A FIFO of run reports on disk.
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
    rejected: PathBuf,
    next: u64,
}

/// One queued report.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Its file.
    pub path: PathBuf,
    /// The report.
    pub report: RunReport,
}

impl Queue {
    /// Opens (creates) `STATE/queue`.
    pub fn open(state: &Path) -> Result<Self> {
        let dir = state.join("queue");
        let rejected = state.join("rejected");
        private_dir(&dir)?;
        let next = Self::entries(&dir)?.last().map_or(1, |(n, _)| n + 1);
        Ok(Self {
            dir,
            rejected,
            next,
        })
    }

    fn entries(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
        let rd = std::fs::read_dir(dir).map_err(|source| AgentError::State {
            action: "cannot list",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut v: Vec<(u64, PathBuf)> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let n = name.strip_suffix(".json")?.parse::<u64>().ok()?;
                Some((n, e.path()))
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Appends a report (durably, before returning).
    pub fn push(&mut self, report: &RunReport) -> Result<()> {
        let path = self.dir.join(format!("{:020}.json", self.next));
        let bytes = serde_json::to_vec(report).unwrap_or_default();
        write_atomic(&path, &bytes, 0o600)?;
        self.next += 1;
        Ok(())
    }

    /// The oldest report, if any. A damaged file is moved to `rejected/` and
    /// the next one is returned.
    pub fn oldest(&self) -> Result<Option<Queued>> {
        for (_, path) in Self::entries(&self.dir)? {
            let bytes = std::fs::read(&path).map_err(|source| AgentError::State {
                action: "cannot read",
                path: path.clone(),
                source,
            })?;
            match serde_json::from_slice::<RunReport>(&bytes) {
                Ok(report) => return Ok(Some(Queued { path, report })),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "damaged report in the queue; moved to rejected/");
                    self.reject(&path)?;
                }
            }
        }
        Ok(None)
    }

    /// Number of reports waiting.
    pub fn len(&self) -> usize {
        Self::entries(&self.dir).map(|v| v.len()).unwrap_or(0)
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes a delivered report.
    pub fn remove(&self, q: &Queued) -> Result<()> {
        match std::fs::remove_file(&q.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(AgentError::State {
                action: "cannot remove",
                path: q.path.clone(),
                source,
            }),
        }
    }

    /// Moves a report the hub refused for good out of the way.
    pub fn reject(&self, path: &Path) -> Result<()> {
        private_dir(&self.rejected)?;
        let to = self.rejected.join(path.file_name().unwrap_or_default());
        std::fs::rename(path, &to).map_err(|source| AgentError::State {
            action: "cannot move",
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bulwark_api::{RunKind, RunStatus, Trigger};

    fn report(n: u8) -> RunReport {
        RunReport {
            id: format!("{n:032x}"),
            host: "nas".into(),
            job: "photos".into(),
            kind: RunKind::Backup,
            trigger: Trigger::Schedule,
            command_id: None,
            started: "2026-11-23T02:00:00Z".parse().unwrap(),
            finished: "2026-11-23T02:01:00Z".parse().unwrap(),
            status: RunStatus::Success,
            exit_code: Some(0),
            snapshot: None,
            stats: Default::default(),
            skipped: vec![],
            skipped_count: 0,
            errors: vec![],
        }
    }

    #[test]
    fn fifo_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path()).unwrap();
        for n in 1..=3 {
            q.push(&report(n)).unwrap();
        }
        // a restart in between keeps order and numbering
        let mut q = Queue::open(dir.path()).unwrap();
        q.push(&report(4)).unwrap();
        let mut seen = vec![];
        while let Some(item) = q.oldest().unwrap() {
            seen.push(item.report.id.clone());
            q.remove(&item).unwrap();
        }
        assert_eq!(
            seen,
            (1..=4).map(|n| format!("{n:032x}")).collect::<Vec<_>>()
        );
        assert!(q.is_empty());
    }

    #[test]
    fn damaged_entries_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path()).unwrap();
        q.push(&report(1)).unwrap();
        q.push(&report(2)).unwrap();
        let first = q.oldest().unwrap().unwrap();
        std::fs::write(&first.path, b"garbage").unwrap();
        let next = q.oldest().unwrap().unwrap();
        assert_eq!(next.report.id, format!("{:032x}", 2));
        assert_eq!(
            std::fs::read_dir(dir.path().join("rejected"))
                .unwrap()
                .count(),
            1
        );
    }
}
