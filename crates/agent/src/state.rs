//! What the agent remembers across restarts: when each job last started (for
//! persistent catch-up) — `last_runs.json` in the state directory.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use jiff::Timestamp;

use crate::{
    error::{AgentError, Result},
    fsutil::write_atomic,
};

/// Start times of the last run of each job, persisted atomically.
#[derive(Debug)]
pub struct LastRuns {
    path: PathBuf,
    runs: BTreeMap<String, Timestamp>,
}

impl LastRuns {
    /// Loads `DIR/last_runs.json` (empty when absent). A damaged file is
    /// moved aside to `last_runs.json.damaged` and reported, never silently
    /// dropped: the agent then behaves as if the jobs never ran.
    pub fn load(dir: &Path) -> Result<(Self, Option<AgentError>)> {
        let path = dir.join("last_runs.json");
        let mut warning = None;
        let runs = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    let aside = dir.join("last_runs.json.damaged");
                    let _ = std::fs::rename(&path, &aside);
                    warning = Some(AgentError::Damaged {
                        path: path.clone(),
                        reason: format!("{e} (moved to {})", aside.display()),
                    });
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(AgentError::State {
                    action: "cannot read",
                    path,
                    source,
                })
            }
        };
        Ok((Self { path, runs }, warning))
    }

    /// When `job` last started.
    pub fn get(&self, job: &str) -> Option<Timestamp> {
        self.runs.get(job).copied()
    }

    /// Records a start and saves it before the run begins (a crash during the
    /// run must not make the agent run the job again and again).
    pub fn set(&mut self, job: &str, started: Timestamp) -> Result<()> {
        self.runs.insert(job.to_string(), started);
        let bytes = serde_json::to_vec_pretty(&self.runs).unwrap_or_default();
        write_atomic(&self.path, &bytes, 0o600)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn survives_restart_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (mut l, w) = LastRuns::load(dir.path()).unwrap();
        assert!(w.is_none());
        let t: Timestamp = "2026-11-23T02:00:00Z".parse().unwrap();
        l.set("photos", t).unwrap();
        let (l2, _) = LastRuns::load(dir.path()).unwrap();
        assert_eq!(l2.get("photos"), Some(t));
        std::fs::write(dir.path().join("last_runs.json"), b"{not json").unwrap();
        let (l3, w) = LastRuns::load(dir.path()).unwrap();
        assert!(w.unwrap().to_string().contains("damaged"));
        assert_eq!(l3.get("photos"), None);
        assert!(dir.path().join("last_runs.json.damaged").exists());
    }
}
