//! The 3-2-1 report: for every backup job, the places that hold a current
//! copy of its repository (the hub and each target), their media, how many
//! are offsite, how far behind each is, and the effective RPO — computed
//! without any key, from listings and from what replication recorded.
//!
//! Two modes: **live** lists the snapshots at the hub and at every target
//! (what `bulwark report` and `GET /api/v1/replication` do), **recorded**
//! uses only the database and the hub's last upload times (what the hub
//! does every tick for metrics and RPO alerts, without touching targets).

use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
    sync::Arc,
    time::Duration,
};

use bulwark_api::{CopyPlace, JobCopies, ReplicationReport, TargetRepoState};
use bulwark_config::{JobSchedule, RepoUrl, Target};
use bulwark_store::{ErrorKind, FileType, RepoPath, Store};
use jiff::Timestamp;

/// A backup job, as the report needs it.
#[derive(Debug, Clone)]
pub struct ReportJob {
    /// Its name.
    pub name: String,
    /// The host that runs it.
    pub host: Option<String>,
    /// Where its repository is.
    pub repo_url: RepoUrl,
    /// When it runs.
    pub schedule: Option<JobSchedule>,
    /// Its declared recovery point objective.
    pub rpo: Option<Duration>,
}

/// A target and its store (or why it could not be opened).
pub type OpenedTarget = (Target, Result<Arc<dyn Store>, String>);

/// The path on the hub of a repository at `url`: a local path under the
/// hub's data directory, or the path of a `rest:` URL (which names the hub).
pub fn hub_repo_of(url: &RepoUrl, data: &Path) -> Option<RepoPath> {
    let s = match url {
        RepoUrl::Local(p) => p
            .strip_prefix(data)
            .ok()?
            .to_string_lossy()
            .trim_matches('/')
            .to_string(),
        RepoUrl::Rest(u) => {
            let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
            rest.split_once('/')?.1.trim_matches('/').to_string()
        }
        RepoUrl::S3 { .. } => return None,
    };
    RepoPath::parse(&s).ok()
}

/// Seconds between the next two fire times of a schedule.
pub fn interval_of(s: &JobSchedule) -> Option<u64> {
    let now = jiff::Zoned::now();
    let a = s.schedule.calendar.next_after(now)?;
    let b = s.schedule.calendar.next_after(a.clone())?;
    u64::try_from(b.timestamp().as_second() - a.timestamp().as_second()).ok()
}

/// Whether `target` copies `repo`.
pub(crate) fn selects(target: &Target, repo: &RepoPath) -> bool {
    target.repositories.is_empty() || target.repositories.iter().any(|r| *r == repo.to_string())
}

fn secs_between(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(to.as_second().saturating_sub(from.as_second())).unwrap_or(0)
}

/// The lag of a target from what replication recorded: 0 while no snapshot
/// arrived at the hub after the start of its last complete pass; otherwise
/// the time since then (or since the pair was first seen, if never in sync).
pub(crate) fn recorded_lag(
    row: Option<&super::db::Row>,
    last_upload: Option<Timestamp>,
    now: Timestamp,
) -> Option<u64> {
    let row = row?;
    match (row.state.in_sync_at, last_upload) {
        (Some(sync), Some(up)) if up <= sync => Some(0),
        (Some(_), None) => Some(0),
        (Some(sync), Some(_)) => Some(secs_between(sync, now)),
        (None, _) => Some(secs_between(row.first_seen, now)),
    }
}

/// What the report is built from.
pub struct ReportInput<'a> {
    /// Backup jobs.
    pub jobs: &'a [ReportJob],
    /// The hub's data directory (to find local repositories on it).
    pub data: &'a Path,
    /// The hub's store.
    pub source: &'a dyn Store,
    /// Every target, opened (only used when `live`).
    pub targets: &'a [OpenedTarget],
    /// What replication recorded (possibly empty).
    pub state: &'a [super::db::Row],
    /// The last snapshot upload per repository (only used when not `live`).
    pub last_upload: &'a HashMap<String, Timestamp>,
    /// List snapshots at the hub and the targets (true), or use only the
    /// record (false).
    pub live: bool,
    /// Now.
    pub now: Timestamp,
}

impl std::fmt::Debug for ReportInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportInput")
            .field("jobs", &self.jobs.len())
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

async fn snapshot_names(
    store: &dyn Store,
    repo: &RepoPath,
) -> Result<BTreeSet<String>, bulwark_store::Error> {
    Ok(store
        .list(repo, FileType::Snapshots)
        .await?
        .into_iter()
        .map(|e| e.name.to_string())
        .collect())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Builds the report (alerts left empty: the caller adds them).
pub async fn build(input: ReportInput<'_>) -> ReplicationReport {
    let state_of = |target: &str, repo: &str| {
        input
            .state
            .iter()
            .find(|r| r.state.target == target && r.state.repo == repo)
    };
    let mut jobs = Vec::new();
    for job in input.jobs {
        let repo = hub_repo_of(&job.repo_url, input.data);
        let mut line = JobCopies {
            job: job.name.clone(),
            host: job.host.clone(),
            repo: repo.as_ref().map(ToString::to_string),
            snapshots: 0,
            copies: 0,
            media: 0,
            offsite: 0,
            interval_seconds: job.schedule.as_ref().and_then(interval_of),
            replication_lag_seconds: None,
            effective_rpo_seconds: None,
            rpo_seconds: job.rpo.map(|d| d.as_secs()),
            places: Vec::new(),
            violations: Vec::new(),
        };
        let Some(path) = repo else {
            line.violations
                .push("its repository is not on this hub: copies unknown".into());
            jobs.push(line);
            continue;
        };
        let at_hub = if input.live {
            match snapshot_names(input.source, &path).await {
                Ok(v) => Some(v),
                Err(e) if e.kind == ErrorKind::NotFound => Some(BTreeSet::new()),
                Err(e) => {
                    line.violations
                        .push(format!("cannot list the hub's copy: {e}"));
                    jobs.push(line);
                    continue;
                }
            }
        } else {
            None
        };
        let last_upload = input.last_upload.get(&path.to_string()).copied();
        let hub_has = at_hub
            .as_ref()
            .map_or(last_upload.is_some(), |s| !s.is_empty());
        line.snapshots = at_hub.as_ref().map_or(0, |s| s.len() as u64);
        line.places.push(CopyPlace {
            place: "hub".into(),
            medium: "disk".into(),
            offsite: false,
            current: hub_has,
            missing_snapshots: 0,
            lag_seconds: Some(0),
            last_success: None,
            last_verified: None,
            error: None,
        });
        for (t, store) in input.targets {
            if !selects(t, &path) {
                continue;
            }
            let row = state_of(&t.name, &path.to_string());
            let mut c = CopyPlace {
                place: t.name.clone(),
                medium: t.medium.as_str().into(),
                offsite: t.offsite,
                current: false,
                missing_snapshots: 0,
                lag_seconds: None,
                last_success: row.and_then(|r| r.state.last_success),
                last_verified: row.and_then(|r| r.state.last_verified),
                error: row.and_then(|r| r.state.last_error.clone()),
            };
            let recorded = recorded_lag(row, last_upload, input.now);
            match (&at_hub, store) {
                (Some(_), Err(e)) => c.error = Some(e.clone()),
                (Some(hub), Ok(s)) => match snapshot_names(s.as_ref(), &path).await {
                    Ok(there) => {
                        c.missing_snapshots = hub.difference(&there).count() as u64;
                        c.current = !hub.is_empty() && c.missing_snapshots == 0;
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => {
                        c.missing_snapshots = hub.len() as u64
                    }
                    Err(e) => c.error = Some(format!("cannot list: {e}")),
                },
                (None, _) => c.current = hub_has && recorded == Some(0),
            }
            c.lag_seconds = if c.current {
                Some(0)
            } else {
                // behind: since the last moment it was known to be in sync
                // (None: nothing recorded about this copy)
                match (recorded, row) {
                    (Some(0), Some(r)) => Some(secs_between(
                        r.state.in_sync_at.unwrap_or(r.first_seen),
                        input.now,
                    )),
                    (lag, _) => lag,
                }
            };
            line.places.push(c);
        }
        let current: Vec<&CopyPlace> = line.places.iter().filter(|c| c.current).collect();
        line.copies = current.len() as u64;
        line.media = current
            .iter()
            .map(|c| c.medium.as_str())
            .collect::<BTreeSet<_>>()
            .len() as u64;
        line.offsite = current.iter().filter(|c| c.offsite).count() as u64;
        // the best offsite copy decides how much is lost if the building burns
        line.replication_lag_seconds = line
            .places
            .iter()
            .filter(|c| c.offsite)
            .filter_map(|c| c.lag_seconds)
            .min();
        line.effective_rpo_seconds = match (line.interval_seconds, line.replication_lag_seconds) {
            (Some(i), Some(l)) => Some(i + l),
            _ => None,
        };
        if hub_has {
            if line.copies < 3 {
                line.violations.push(format!(
                    "3-2-1: {} (needs 3)",
                    plural(line.copies, "current copy", "current copies")
                ));
            }
            if line.media < 2 {
                line.violations.push(format!(
                    "3-2-1: {} (needs 2 different)",
                    plural(line.media, "medium", "media")
                ));
            }
            if line.offsite < 1 {
                line.violations
                    .push("3-2-1: no current offsite copy".into());
            }
        } else {
            line.violations.push("no snapshot on the hub yet".into());
        }
        match (line.rpo_seconds, line.effective_rpo_seconds) {
            (Some(rpo), Some(eff)) if eff > rpo => line.violations.push(format!(
                "effective RPO {} exceeds the job's rpo {}",
                humantime::format_duration(Duration::from_secs(eff)),
                humantime::format_duration(Duration::from_secs(rpo))
            )),
            (Some(rpo), None) if hub_has && line.interval_seconds.is_some() => line.violations.push(format!(
                "effective RPO unbounded (no offsite copy is known to be in sync) exceeds the job's rpo {}",
                humantime::format_duration(Duration::from_secs(rpo))
            )),
            _ => {}
        }
        jobs.push(line);
    }
    ReplicationReport {
        generated: input.now,
        jobs,
        targets: input
            .state
            .iter()
            .map(|r| r.state.clone())
            .collect::<Vec<TargetRepoState>>(),
        alerts: Vec::new(),
    }
}
