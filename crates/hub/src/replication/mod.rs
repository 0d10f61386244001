//! The hub replicating by itself: every `[targets.NAME]` of the plan gets a
//! task that copies the hub's repositories there with
//! [`bulwark_replicate::mirror_repo`] — keyless, verified, never deleting
//! unless the target says `propagate_deletes` — on the target's `schedule`,
//! `after_upload` after a new snapshot arrives, once at start (catch-up), and
//! again with exponential backoff after a failure. On its `verify` schedule
//! it re-hashes a sample of the copy and re-copies what is missing or
//! corrupt.
//!
//! Progress lives in the control database ([`db`]): per (target,
//! repository) the last attempt, last complete pass, the moment the target
//! was last known to hold everything (`in_sync_at`), last verify, failures,
//! files in deletion quarantine. From it, every tick, the hub computes the
//! recorded 3-2-1 report ([`report`]) for the metrics and raises or resolves
//! durable alerts:
//!
//! | kind | subject | when |
//! |---|---|---|
//! | `replication.failing` | `TARGET/REPO` | `failing_after` passes in a row failed (unreachable target, full disk, …) |
//! | `replication.rpo` | job | the job's effective RPO (interval + lag of its best offsite copy) exceeds its `rpo` |
//! | `replication.shrink` | repo | the hub's repository lost ≥ 20 % (and ≥ 2) of its snapshots or data files since the previous pass, or vanished |
//! | `replication.delete_cap` | `TARGET/REPO` | more files are due for deletion than `delete_cap` allows: nothing was deleted |
//! | `replication.corrupt` | `TARGET/REPO` or repo | verify found missing/corrupt files at a target, or the hub holds a corrupt file |
//!
//! Alerts that describe a state (failing, rpo, delete_cap) resolve by
//! themselves when it clears; alerts that describe an event (shrink,
//! corrupt) stay open until an administrator resolves them
//! (`POST /api/v1/alerts/{id}/resolve`).

mod db;
pub use db::{read_state, Row};
pub mod report;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use bulwark_api::Severity;
use bulwark_config::Target;
use bulwark_replicate::{
    mirror_repo, propagate_deletes, repair, verify_sample, DeletePolicy, ErrorKind as ReplKind,
    MirrorOptions, Sample,
};
use bulwark_store::{RepoPath, Store};
use jiff::Timestamp;
use tokio::{sync::broadcast, task::JoinHandle, time::Instant};

use crate::{
    control::{alerts, Control, ControlPlan},
    handler::State,
    metrics::{AlertLabels, JobLabel, TargetRepoLabels},
};

/// Opens the store of a target (the binary knows how: S3 needs a cargo
/// feature); the error is a sentence for logs and reports.
pub type TargetOpener = Arc<dyn Fn(&Target) -> Result<Arc<dyn Store>, String> + Send + Sync>;

/// How the hub replicates (the targets themselves come from the plan).
#[derive(Clone)]
pub struct ReplicationSettings {
    /// Opens a target's store.
    pub opener: TargetOpener,
    /// How often lag, RPO alerts and metrics are re-evaluated. Default 30 s.
    pub tick: Duration,
    /// Wait before the first retry of a failed pass; doubled for each
    /// further failure. Default 1 minute.
    pub retry_base: Duration,
    /// The longest wait between retries. Default 1 hour.
    pub retry_max: Duration,
    /// Failed passes in a row before `replication.failing` is raised.
    /// Default 3.
    pub failing_after: u32,
    /// Delay of the catch-up pass after the hub starts. Default 10 s.
    pub start_delay: Duration,
}

impl ReplicationSettings {
    /// The defaults, with `opener`.
    pub fn new(opener: TargetOpener) -> Self {
        Self {
            opener,
            tick: Duration::from_secs(30),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            failing_after: 3,
            start_delay: Duration::from_secs(10),
        }
    }

    /// The wait after `failures` failed passes in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(1 << exp).min(self.retry_max)
    }
}

impl std::fmt::Debug for ReplicationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationSettings")
            .field("tick", &self.tick)
            .field("retry_base", &self.retry_base)
            .field("retry_max", &self.retry_max)
            .field("failing_after", &self.failing_after)
            .finish_non_exhaustive()
    }
}

/// The share of snapshots or data files whose loss since the previous pass
/// raises `replication.shrink` (together with at least [`SHRINK_MIN`]).
const SHRINK_PERCENT: u64 = 20;
/// The fewest lost files that count as a shrink.
const SHRINK_MIN: u64 = 2;

/// Why a repository shrank, if it did: `prev` and `now` are (snapshots,
/// data files) at the previous and this pass.
pub(crate) fn shrink(prev: (u64, u64), now: (u64, u64)) -> Option<String> {
    let (lost_s, lost_d) = (prev.0.saturating_sub(now.0), prev.1.saturating_sub(now.1));
    if prev.0 > 0 && now.0 == 0 {
        return Some(format!(
            "all {} snapshots vanished (and {lost_d} of {} data files)",
            prev.0, prev.1
        ));
    }
    let big = |lost: u64, of: u64| lost >= SHRINK_MIN && lost * 100 >= of * SHRINK_PERCENT;
    if big(lost_s, prev.0) || big(lost_d, prev.1) {
        return Some(format!(
            "lost {lost_s} of {} snapshots and {lost_d} of {} data files since the previous pass",
            prev.0, prev.1
        ));
    }
    None
}

/// A running replication: one task per target, plus the tick.
pub(crate) struct Replication {
    state: Arc<State>,
    ctl: Arc<Control>,
    settings: ReplicationSettings,
}

fn subject(target: &str, repo: &RepoPath) -> String {
    format!("{target}/{repo}")
}

impl Replication {
    pub(crate) fn new(
        state: Arc<State>,
        ctl: Arc<Control>,
        settings: ReplicationSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            state,
            ctl,
            settings,
        })
    }

    /// Runs until aborted: keeps one task per target of the current plan
    /// (restarted when its settings change) and evaluates lag, RPO alerts
    /// and metrics every tick.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut plan_rx = self.ctl.plan_receiver();
        let mut tasks: BTreeMap<String, (Target, JoinHandle<()>)> = BTreeMap::new();
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fixed_plan = false;
        loop {
            let plan: Arc<ControlPlan> = Arc::clone(&plan_rx.borrow_and_update());
            tasks.retain(|name, (t, handle)| {
                let keep = plan.targets.get(name) == Some(t);
                if !keep {
                    tracing::info!("replication to {name}: configuration changed; restarting");
                    handle.abort();
                }
                keep
            });
            for (name, t) in &plan.targets {
                if !tasks.contains_key(name) {
                    let me = Arc::clone(&self);
                    let target = t.clone();
                    tasks.insert(
                        name.clone(),
                        (t.clone(), tokio::spawn(me.target_loop(target))),
                    );
                }
            }
            loop {
                tokio::select! {
                    r = plan_rx.changed(), if !fixed_plan => {
                        if r.is_err() { fixed_plan = true; continue; }
                        break;
                    }
                    _ = tick.tick() => self.evaluate(&plan).await,
                }
            }
        }
    }

    /// The last snapshot upload per repository (from the hub's metrics,
    /// which are seeded from the store at start).
    fn last_uploads(&self) -> HashMap<String, Timestamp> {
        let mut out = HashMap::new();
        for repo in self
            .state
            .usage
            .snapshot()
            .into_iter()
            .map(|(r, _)| r.to_string())
        {
            let secs = self
                .state
                .metrics
                .last_snapshot
                .get_or_create(&crate::metrics::RepoLabel { repo: repo.clone() })
                .get();
            if secs > 0.0 {
                #[allow(clippy::cast_possible_truncation)]
                if let Ok(t) = Timestamp::from_millisecond((secs * 1000.0) as i64) {
                    out.insert(repo, t);
                }
            }
        }
        out
    }

    /// The backup jobs of the plan, as the report needs them.
    fn report_jobs(plan: &ControlPlan) -> Vec<report::ReportJob> {
        plan.jobs
            .values()
            .filter(|j| j.kind == bulwark_api::RunKind::Backup)
            .filter_map(|j| {
                Some(report::ReportJob {
                    name: j.name.clone(),
                    host: Some(j.host.clone()),
                    repo_url: j.repo_url.clone()?,
                    schedule: j.schedule.clone(),
                    rpo: j.rpo,
                })
            })
            .collect()
    }

    /// The report; `live` lists the hub and every target.
    pub(crate) async fn report(
        &self,
        live: bool,
    ) -> Result<bulwark_api::ReplicationReport, crate::control::DbError> {
        let plan = Arc::clone(&self.ctl.plan_receiver().borrow());
        let state = self.ctl.db.read(|c| db::all(c)).await?;
        let targets: Vec<report::OpenedTarget> = if live {
            plan.targets
                .values()
                .map(|t| (t.clone(), (self.settings.opener)(t)))
                .collect()
        } else {
            plan.targets
                .values()
                .map(|t| (t.clone(), Err(String::new())))
                .collect()
        };
        let jobs = Self::report_jobs(&plan);
        let uploads = self.last_uploads();
        let mut r = report::build(report::ReportInput {
            jobs: &jobs,
            data: &self.state.config.data,
            source: self.state.store.as_ref(),
            targets: &targets,
            state: &state,
            last_upload: &uploads,
            live,
            now: Timestamp::now(),
        })
        .await;
        r.alerts = self
            .ctl
            .db
            .read(|c| alerts::list(c, Some(true), 1000))
            .await?;
        // the report is about copies: monitors' outages are not its alerts
        r.alerts.retain(|a| a.kind.starts_with("replication."));
        Ok(r)
    }

    /// Every tick: the recorded report → metrics and RPO alerts.
    async fn evaluate(&self, plan: &ControlPlan) {
        let r = match self.report(false).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("replication: cannot read its state: {e}");
                return;
            }
        };
        let m = &self.state.metrics;
        for f in [
            &m.job_copies,
            &m.job_media,
            &m.job_offsite,
            &m.job_effective_rpo,
            &m.job_rpo,
        ] {
            f.clear();
        }
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for j in &r.jobs {
            let l = JobLabel { job: j.job.clone() };
            m.job_copies.get_or_create(&l).set(i(j.copies));
            m.job_media.get_or_create(&l).set(i(j.media));
            m.job_offsite.get_or_create(&l).set(i(j.offsite));
            if let Some(e) = j.effective_rpo_seconds {
                m.job_effective_rpo.get_or_create(&l).set(i(e));
            }
            if let Some(rpo) = j.rpo_seconds {
                m.job_rpo.get_or_create(&l).set(i(rpo));
            }
            // RPO alerts: only for jobs that declare one
            if let Some(rpo) = j.rpo_seconds {
                match j.effective_rpo_seconds {
                    Some(eff) if eff > rpo => {
                        let behind: Vec<String> = j
                            .places
                            .iter()
                            .filter(|p| p.offsite && !p.current)
                            .map(|p| match &p.error {
                                Some(e) => format!("{} ({e})", p.place),
                                None => p.place.clone(),
                            })
                            .collect();
                        let msg = format!(
                            "job {}: effective RPO {} exceeds its rpo {} (schedule interval + lag of the best offsite copy); behind: {}",
                            j.job,
                            humantime::format_duration(Duration::from_secs(eff)),
                            humantime::format_duration(Duration::from_secs(rpo)),
                            if behind.is_empty() { "-".to_string() } else { behind.join(", ") }
                        );
                        self.raise("replication.rpo", &j.job, Severity::Warning, msg)
                            .await;
                    }
                    Some(_) => self.resolve("replication.rpo", &j.job).await,
                    None => {}
                }
            }
        }
        for f in [&m.repl_lag, &m.repl_failures, &m.repl_pending_deletes] {
            f.clear();
        }
        m.repl_last_success.clear();
        m.repl_last_verified.clear();
        let uploads = self.last_uploads();
        let now = Timestamp::now();
        let rows = self.ctl.db.read(|c| db::all(c)).await.unwrap_or_default();
        for row in &rows {
            if !plan.targets.contains_key(&row.state.target) {
                continue;
            }
            let s = &row.state;
            let l = TargetRepoLabels {
                target: s.target.clone(),
                repo: s.repo.clone(),
            };
            if let Some(lag) = report::recorded_lag(Some(row), uploads.get(&s.repo).copied(), now) {
                m.repl_lag.get_or_create(&l).set(i(lag));
            }
            m.repl_failures
                .get_or_create(&l)
                .set(i64::from(s.consecutive_failures));
            m.repl_pending_deletes
                .get_or_create(&l)
                .set(i(s.pending_deletes));
            #[allow(clippy::cast_precision_loss)]
            let secs = |t: Timestamp| t.as_millisecond() as f64 / 1000.0;
            if let Some(t) = s.last_success {
                m.repl_last_success.get_or_create(&l).set(secs(t));
            }
            if let Some(t) = s.last_verified {
                m.repl_last_verified.get_or_create(&l).set(secs(t));
            }
        }
        m.alerts_open.clear();
        for a in &r.alerts {
            m.alerts_open
                .get_or_create(&AlertLabels {
                    kind: a.kind.clone(),
                    severity: a.severity.as_str().into(),
                })
                .inc();
        }
    }

    async fn raise(&self, kind: &str, subject: &str, severity: Severity, message: String) {
        let (k, s, m) = (kind.to_owned(), subject.to_owned(), message.clone());
        match self
            .ctl
            .db
            .call(move |c| alerts::raise(c, &k, &s, severity, &m, Timestamp::now()))
            .await
        {
            Ok((a, true)) => tracing::error!(
                alert = a.id,
                kind,
                subject,
                severity = severity.as_str(),
                "ALERT: {message}"
            ),
            Ok((_, false)) => tracing::debug!("alert {kind} {subject} still open: {message}"),
            Err(e) => tracing::error!("cannot record the alert {kind} {subject} ({message}): {e}"),
        }
    }

    async fn resolve(&self, kind: &str, subject: &str) {
        let (k, s) = (kind.to_owned(), subject.to_owned());
        match self
            .ctl
            .db
            .call(move |c| alerts::resolve(c, &k, &s, Timestamp::now()))
            .await
        {
            Ok(Some(a)) => tracing::info!(alert = a.id, kind, subject, "resolved: {}", a.message),
            Ok(None) => {}
            Err(e) => tracing::error!("cannot resolve the alert {kind} {subject}: {e}"),
        }
    }

    /// The hub repositories `target` copies (now).
    /// (Those a previous pass saw are included even if they are gone now,
    /// so that their disappearance raises `replication.shrink`.)
    async fn repos_of(&self, target: &Target) -> Result<Vec<RepoPath>, String> {
        let mut all = self
            .state
            .store
            .list_repos()
            .await
            .map_err(|e| format!("cannot list the hub's repositories: {e}"))?;
        let seen = self
            .ctl
            .db
            .read(|c| db::source_repos(c))
            .await
            .map_err(|e| e.to_string())?;
        all.extend(seen.iter().filter_map(|r| RepoPath::parse(r).ok()));
        all.sort();
        all.dedup();
        Ok(all
            .into_iter()
            .filter(|r| report::selects(target, r))
            .collect())
    }

    /// One target's life: passes on schedule, after uploads, at start and
    /// on retry; verify on its schedule.
    async fn target_loop(self: Arc<Self>, target: Target) {
        let name = target.name.clone();
        let mut uploads = self.state.uploads.subscribe();
        let next_fire = |cal: &bulwark_config::JobSchedule| -> Instant {
            let now = jiff::Zoned::now();
            let next = cal.schedule.calendar.next_after(now.clone());
            let wait = next.map_or(Duration::from_secs(365 * 86_400), |n| {
                Duration::try_from(n.timestamp().duration_since(now.timestamp()))
                    .unwrap_or_default()
            });
            Instant::now() + wait
        };
        // catch-up at start: a full pass soon; a verify if one is overdue
        let mut next_pass = Instant::now() + self.settings.start_delay;
        let mut next_verify = self.verify_due_at(&target).await;
        let mut dirty: BTreeMap<RepoPath, Instant> = BTreeMap::new();
        let mut failures: u32 = 0;
        tracing::info!("replication to {name} ({}): started", target.medium);
        loop {
            let wake = dirty
                .values()
                .copied()
                .chain([next_pass, next_verify])
                .min()
                .unwrap_or(next_pass);
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                up = uploads.recv() => {
                    match up {
                        Ok(repo) => {
                            if let Some(delay) = target.after_upload {
                                if report::selects(&target, &repo) {
                                    dirty.entry(repo).or_insert_with(|| Instant::now() + delay);
                                }
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            if let Some(delay) = target.after_upload {
                                next_pass = next_pass.min(Instant::now() + delay);
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                    continue;
                }
            }
            let now = Instant::now();
            if next_pass <= now {
                dirty.clear();
                let ok = match self.repos_of(&target).await {
                    Ok(repos) => self.pass(&target, &repos).await,
                    Err(e) => {
                        tracing::error!("replication to {name}: {e}");
                        false
                    }
                };
                failures = if ok { 0 } else { failures + 1 };
                next_pass = if ok {
                    next_fire(&target.schedule)
                } else {
                    now + self.settings.backoff(failures)
                };
            } else {
                let due: Vec<RepoPath> = dirty
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(r, _)| r.clone())
                    .collect();
                if !due.is_empty() {
                    for r in &due {
                        dirty.remove(r);
                    }
                    if !self.pass(&target, &due).await {
                        failures += 1;
                        next_pass = next_pass.min(now + self.settings.backoff(failures));
                    }
                }
            }
            if next_verify <= Instant::now() {
                if let Ok(repos) = self.repos_of(&target).await {
                    self.verify(&target, &repos).await;
                }
                next_verify = next_fire(&target.verify);
            }
        }
    }

    /// When the next verify of `target` is due: now if one was due since
    /// the last one recorded (or none was ever done), else its schedule.
    async fn verify_due_at(&self, target: &Target) -> Instant {
        let name = target.name.clone();
        let last = self
            .ctl
            .db
            .call(move |c| {
                Ok(db::all(c)?
                    .into_iter()
                    .filter(|r| r.state.target == name)
                    .filter_map(|r| r.state.last_verified)
                    .min())
            })
            .await
            .ok()
            .flatten();
        let cal = &target.verify.schedule.calendar;
        let tz = jiff::tz::TimeZone::system();
        let overdue = match last {
            None => true,
            Some(t) => cal
                .next_after(t.to_zoned(tz.clone()))
                .is_some_and(|n| n.timestamp() <= Timestamp::now()),
        };
        if overdue {
            // after the first copy pass
            Instant::now() + self.settings.start_delay * 2
        } else {
            let now = jiff::Zoned::now();
            cal.next_after(now.clone()).map_or(
                Instant::now() + Duration::from_secs(7 * 86_400),
                |n| {
                    Instant::now()
                        + Duration::try_from(n.timestamp().duration_since(now.timestamp()))
                            .unwrap_or_default()
                },
            )
        }
    }

    /// Copies `repos` to `target`; true if every one is complete.
    async fn pass(&self, target: &Target, repos: &[RepoPath]) -> bool {
        let store = match (self.settings.opener)(target) {
            Ok(s) => s,
            Err(e) => {
                let mut ok = true;
                for repo in repos {
                    ok &= self
                        .record_failure(target, repo, &format!("cannot open the target: {e}"), 0, 0)
                        .await;
                }
                return ok && repos.is_empty();
            }
        };
        let mut all_ok = true;
        for repo in repos {
            all_ok &= self.pass_repo(target, store.as_ref(), repo).await;
        }
        all_ok
    }

    /// Records a failed pass; raises `replication.failing` when enough
    /// failed in a row. Always false.
    async fn record_failure(
        &self,
        target: &Target,
        repo: &RepoPath,
        error: &str,
        files: u64,
        bytes: u64,
    ) -> bool {
        let (t, r, e) = (target.name.clone(), repo.to_string(), error.to_owned());
        let now = Timestamp::now();
        let (t2, r2) = (t.clone(), r.clone());
        let _ = self
            .ctl
            .db
            .call(move |c| db::attempt(c, &t2, &r2, now))
            .await;
        let n = match self
            .ctl
            .db
            .call(move |c| db::failure(c, &t, &r, &e, None, files, bytes))
            .await
        {
            Ok(n) => n,
            Err(err) => {
                tracing::error!("replication: cannot record a failure: {err}");
                return false;
            }
        };
        let wait = self.settings.backoff(n);
        tracing::warn!(
            "replication of {repo} to {}: failed ({n} in a row): {error}; retrying in {}",
            target.name,
            humantime::format_duration(wait)
        );
        if n >= self.settings.failing_after {
            self.raise(
                "replication.failing",
                &subject(&target.name, repo),
                Severity::Warning,
                format!(
                    "replication of {repo} to {} failed {n} times in a row: {error}. Check that the target is reachable and has space; the hub retries with backoff",
                    target.name
                ),
            )
            .await;
        }
        false
    }

    /// One repository to one target: mirror, shrink check, deletions.
    async fn pass_repo(&self, target: &Target, store: &dyn Store, repo: &RepoPath) -> bool {
        let started = Timestamp::now();
        let (t, r) = (target.name.clone(), repo.to_string());
        if let Err(e) = self
            .ctl
            .db
            .call(move |c| db::attempt(c, &t, &r, started))
            .await
        {
            tracing::error!("replication: {e}");
        }
        let opts = MirrorOptions {
            parallel: usize::try_from(target.parallel).unwrap_or(4),
            bandwidth: target.bandwidth,
            ..MirrorOptions::default()
        };
        let report = match mirror_repo(self.state.store.as_ref(), store, repo, &opts).await {
            Ok(r) => r,
            Err(e) if e.kind == ReplKind::SourceNotFound => {
                self.check_shrink(repo, None).await;
                // not the target's fault: no failure count, no retry storm
                tracing::warn!("replication of {repo} to {}: {e}", target.name);
                return true;
            }
            Err(e) => {
                return self
                    .record_failure(target, repo, &e.to_string(), 0, 0)
                    .await
            }
        };
        let count = |tpe| {
            let t = report.get(tpe);
            t.copied + t.present
        };
        let counts = (
            count(bulwark_store::FileType::Snapshots),
            count(bulwark_store::FileType::Data),
        );
        self.check_shrink(repo, Some(counts)).await;
        let labels = TargetRepoLabels {
            target: target.name.clone(),
            repo: repo.to_string(),
        };
        self.state
            .metrics
            .repl_copied_files
            .get_or_create(&labels)
            .inc_by(report.copied_files());
        self.state
            .metrics
            .repl_copied_bytes
            .get_or_create(&labels)
            .inc_by(report.copied_bytes());
        if !report.corrupt_source.is_empty() {
            let files: Vec<String> = report
                .corrupt_source
                .iter()
                .take(5)
                .map(ToString::to_string)
                .collect();
            self.raise(
                "replication.corrupt",
                &repo.to_string(),
                Severity::Critical,
                format!(
                    "{} file(s) of {repo} on the hub do not hash to their names and were not copied ({}{}); run `bulwark hub scrub` and `restic check --read-data`",
                    report.corrupt_source.len(),
                    files.join(", "),
                    if report.corrupt_source.len() > 5 { ", …" } else { "" }
                ),
            )
            .await;
        }
        if !report.is_complete() {
            let why = report
                .errors
                .first()
                .map(|p| format!("{}: {}", p.file, p.error))
                .or_else(|| {
                    report
                        .corrupt_source
                        .first()
                        .map(|f| format!("{f} is corrupt at the hub"))
                })
                .unwrap_or_else(|| {
                    "some files differ in size between the hub and the target (run a verify)".into()
                });
            let msg = format!(
                "{} file(s) not copied; first: {why}",
                report.errors.len() + report.corrupt_source.len()
            );
            return self
                .record_failure(
                    target,
                    repo,
                    &msg,
                    report.copied_files(),
                    report.copied_bytes(),
                )
                .await;
        }
        let (t, r) = (target.name.clone(), repo.to_string());
        let (files, bytes) = (report.copied_files(), report.copied_bytes());
        let now = Timestamp::now();
        if let Err(e) = self
            .ctl
            .db
            .call(move |c| db::success(c, &t, &r, started, now, files, bytes))
            .await
        {
            tracing::error!("replication: {e}");
        }
        self.resolve("replication.failing", &subject(&target.name, repo))
            .await;
        tracing::info!(
            "replication of {repo} to {}: {} file(s) copied ({} bytes), {} already there",
            target.name,
            files,
            bytes,
            report.present_files()
        );
        if target.propagate_deletes {
            self.deletions(target, store, repo).await;
        }
        true
    }

    /// Compares the hub repository's counts with the previous pass's.
    async fn check_shrink(&self, repo: &RepoPath, counts: Option<(u64, u64)>) {
        let r = repo.to_string();
        let prev = match self
            .ctl
            .db
            .call(move |c| db::swap_source_counts(c, &r, counts, Timestamp::now()))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("replication: {e}");
                return;
            }
        };
        let Some(prev) = prev else { return };
        let why = match counts {
            None if prev.0 > 0 || prev.1 > 0 => Some(format!(
                "the repository vanished from the hub (it had {} snapshots and {} data files)",
                prev.0, prev.1
            )),
            None => None,
            Some(now) => shrink(prev, now),
        };
        if let Some(why) = why {
            self.raise(
                "replication.shrink",
                &repo.to_string(),
                Severity::Critical,
                format!(
                    "{repo} on the hub suddenly shrank: {why}. Nothing was deleted at the targets; if this was not a planned prune, the hub may be compromised: restore from a target (docs/replication.md)"
                ),
            )
            .await;
        }
    }

    /// Propagates deletions from the hub to `target` under its quarantine
    /// and cap.
    async fn deletions(&self, target: &Target, store: &dyn Store, repo: &RepoPath) {
        let (t, r) = (target.name.clone(), repo.to_string());
        let mut pending = match self.ctl.db.call(move |c| db::pending(c, &t, &r)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("replication: {e}");
                return;
            }
        };
        let policy = DeletePolicy {
            quarantine: target.quarantine,
            cap_percent: target.delete_cap_percent,
            dry_run: false,
        };
        let result = propagate_deletes(
            self.state.store.as_ref(),
            store,
            repo,
            &mut pending,
            Timestamp::now(),
            &policy,
        )
        .await;
        let (t, r) = (target.name.clone(), repo.to_string());
        let save = pending.clone();
        if let Err(e) = self
            .ctl
            .db
            .call(move |c| db::set_pending(c, &t, &r, &save))
            .await
        {
            tracing::error!("replication: cannot save the deletion quarantine: {e}");
        }
        let sub = subject(&target.name, repo);
        match result {
            Ok(d) => {
                let labels = TargetRepoLabels {
                    target: target.name.clone(),
                    repo: repo.to_string(),
                };
                self.state
                    .metrics
                    .repl_deleted_files
                    .get_or_create(&labels)
                    .inc_by(d.deleted.len() as u64);
                if d.over_cap {
                    self.raise(
                        "replication.delete_cap",
                        &sub,
                        Severity::Warning,
                        format!(
                            "{} file(s) of {repo} are due for deletion at {} but the cap allows {} ({}% of its files): nothing was deleted. If the hub's prune was this big on purpose, raise delete_cap for one run; otherwise the hub may be compromised",
                            d.eligible, target.name, d.cap, target.delete_cap_percent
                        ),
                    )
                    .await;
                } else {
                    self.resolve("replication.delete_cap", &sub).await;
                    if !d.deleted.is_empty() {
                        tracing::info!("replication of {repo} to {}: {} file(s) deleted after their quarantine", target.name, d.deleted.len());
                    }
                }
                for p in &d.errors {
                    tracing::warn!(
                        "replication of {repo} to {}: cannot delete {}: {}",
                        target.name,
                        p.file,
                        p.error
                    );
                }
            }
            Err(e) => tracing::warn!(
                "replication of {repo} to {}: deletions skipped: {e}",
                target.name
            ),
        }
    }

    /// Re-hashes a sample of each copy; re-copies what is missing or corrupt.
    async fn verify(&self, target: &Target, repos: &[RepoPath]) {
        let store = match (self.settings.opener)(target) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("verify of {}: cannot open the target: {e}", target.name);
                return;
            }
        };
        for repo in repos {
            let seed: u64 = rand::random();
            let found = match verify_sample(
                store.as_ref(),
                repo,
                Sample::Fraction(target.verify_sample_percent / 100.0),
                seed,
            )
            .await
            {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("verify of {repo} at {}: {e}", target.name);
                    continue;
                }
            };
            let (t, r) = (target.name.clone(), repo.to_string());
            if let Err(e) = self
                .ctl
                .db
                .call(move |c| db::verified(c, &t, &r, Timestamp::now()))
                .await
            {
                tracing::error!("replication: {e}");
            }
            if found.is_clean() {
                tracing::info!(
                    "verify of {repo} at {}: {} file(s) re-hashed, all good",
                    target.name,
                    found.checked
                );
                continue;
            }
            let opts = MirrorOptions {
                parallel: usize::try_from(target.parallel).unwrap_or(4),
                bandwidth: target.bandwidth,
                ..MirrorOptions::default()
            };
            let fixed = repair(
                self.state.store.as_ref(),
                store.as_ref(),
                repo,
                &found,
                &opts,
            )
            .await;
            let (severity, outcome) = match &fixed {
                Ok(r) if r.is_complete() => (
                    Severity::Info,
                    format!("all {} re-copied from the hub", r.recopied.len()),
                ),
                Ok(r) => (
                    Severity::Warning,
                    format!(
                        "{} re-copied, {} could not be repaired",
                        r.recopied.len(),
                        r.unrepairable.len() + r.undeletable.len()
                    ),
                ),
                Err(e) => (Severity::Warning, format!("repair failed: {e}")),
            };
            self.raise(
                "replication.corrupt",
                &subject(&target.name, repo),
                severity,
                format!(
                    "verify of {repo} at {} found {} corrupt and {} missing file(s) among {} re-hashed: {outcome}",
                    target.name,
                    found.corrupt.len(),
                    found.missing.len(),
                    found.checked
                ),
            )
            .await;
        }
    }
}
