//! The hub's monitoring: runs the plan's monitors, combines what the hub
//! and the agents see, and notifies — once per outage, with reminders and
//! recovery notices — through the configured notifiers.
//!
//! - **Probes at the hub**: every enabled probe monitor whose `on` includes
//!   `"hub"` runs in its own task ([`bulwark_monitor::runner`]); agents run
//!   theirs and post the results (`POST /api/v1/agent/monitors`).
//! - **Built-ins**, evaluated by the hub itself: `backup` (per job: the
//!   newest successful run is at most `max_age` old and the last run did not
//!   fail), `replication` (the hub's open `replication.*` alerts), `disk`
//!   (free space of the data directory). Without a declared monitor of a
//!   built-in type the hub adds one (see [`effective_monitors`]): backups
//!   are watched even in a file that says nothing about monitoring.
//! - **Alerting** ([`engine`]): thresholds per vantage point, quorum,
//!   silences, reminders, recoveries; state in SQLite (`monitor_state`),
//!   history in the `alerts` table (kind `monitor`).
//! - **Delivery**: notices go to a durable outbox (`notify_outbox`) in the
//!   same transaction as the state change, and a sender delivers them to
//!   the routes' notifiers with retries (30 s doubling to 1 h, given up
//!   after 3 days).
//! - **The hub itself**: a healthchecks.io-style ping every
//!   `hub_ping_interval` (dead-man's switch); `connectivity` canaries — while
//!   none answers for two rounds in a row, the hub's own probe results are
//!   not counted and every notice is held back.

pub(crate) mod db;
pub(crate) mod engine;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bulwark_api::{
    MonitorResult, MonitorResultsStored, MonitorsView, RunKind, RunStatus, Severity,
};
use bulwark_config::{
    BackupCheck, DiskCheck, MinFree, MonitorCheck, MonitorDecl, ReplicationCheck, DEFAULT_MAX_AGE,
    DEFAULT_MIN_FREE_PERCENT,
};
use bulwark_monitor::{runner, MonitorSpec, ProbeResult, Vantage};
use bulwark_notify::Notifier;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;

use crate::{
    control::{alerts, Control, ControlPlan, MonitoringPlan},
    handler::State,
    metrics::{JobHostLabels, MonitorLabels, NotifierLabel, VantageLabels},
};
use engine::{Context, Direct, Engine};

/// How the hub runs its monitoring (the monitors come from the plan).
#[derive(Debug, Clone)]
pub struct MonitoringSettings {
    /// How often the alerting is evaluated (default 1 s).
    pub tick: Duration,
    /// Wait before the first retry of a failed delivery; doubled for each
    /// further failure (default 30 s).
    pub retry_base: Duration,
    /// The longest wait between delivery retries (default 1 h).
    pub retry_max: Duration,
    /// A notice still undelivered this long after it was queued is dropped
    /// (default 3 days).
    pub give_up_after: Duration,
    /// How often the connectivity canaries are probed (default 10 s).
    pub canary_interval: Duration,
    /// How often the replication alerts are looked at (default 5 s).
    pub replication_every: Duration,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            canary_interval: Duration::from_secs(10),
            replication_every: Duration::from_secs(5),
        }
    }
}

/// Rounds of failed canaries before the hub takes its network to be down.
const CANARY_ROUNDS: u32 = 2;
/// Timeout of one canary probe.
const CANARY_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of one delivery.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The monitors in effect: the declared ones, plus a built-in of each kind
/// the file does not declare — `backups` (every job, `max_age` 48 h),
/// `replication` (every replication alert; only with `[targets]`) and
/// `hub-disk` (10 % free) — each unless a monitor of that name exists.
pub fn effective_monitors(plan: &ControlPlan) -> BTreeMap<String, MonitorDecl> {
    let m: &MonitoringPlan = &plan.monitoring;
    let mut out = m.monitors.clone();
    let has = |f: fn(&MonitorCheck) -> bool| m.monitors.values().any(|d| f(&d.check));
    let mut add = |name: &str, check: MonitorCheck| {
        if !out.contains_key(name) {
            out.insert(
                name.to_string(),
                MonitorDecl {
                    name: name.to_string(),
                    check,
                    severity: Severity::Warning,
                    remind_every: m.alerts.remind_every,
                    recovery: true,
                    enabled: true,
                },
            );
        }
    };
    if !has(|c| matches!(c, MonitorCheck::Backup(_))) {
        add(
            "backups",
            MonitorCheck::Backup(BackupCheck {
                jobs: Vec::new(),
                max_age: DEFAULT_MAX_AGE,
                interval: Duration::from_secs(60),
            }),
        );
    }
    if !plan.targets.is_empty() && !has(|c| matches!(c, MonitorCheck::Replication(_))) {
        add(
            "replication",
            MonitorCheck::Replication(ReplicationCheck {
                targets: Vec::new(),
                jobs: Vec::new(),
            }),
        );
    }
    if !has(|c| matches!(c, MonitorCheck::Disk(_))) {
        add(
            "hub-disk",
            MonitorCheck::Disk(DiskCheck {
                min_free: MinFree::Percent(DEFAULT_MIN_FREE_PERCENT),
                interval: Duration::from_secs(60),
            }),
        );
    }
    out
}

/// The running monitoring.
pub(crate) struct Monitoring {
    state: Arc<State>,
    ctl: Arc<Control>,
    settings: MonitoringSettings,
    engine: Mutex<Engine>,
    /// The monitors in effect.
    monitors: Mutex<Arc<BTreeMap<String, MonitorDecl>>>,
    notifiers: Mutex<BTreeMap<String, Arc<Notifier>>>,
    /// The hub's network is down (canaries): hold notices, ignore own probes.
    held: AtomicBool,
    pending: AtomicU32,
    outbox: tokio::sync::Notify,
    /// When each built-in monitor was last evaluated.
    builtin_due: Mutex<BTreeMap<String, tokio::time::Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn secs(t: Timestamp) -> f64 {
    // milliseconds since the epoch fit an f64 exactly
    #[allow(clippy::cast_precision_loss)]
    let ms = t.as_millisecond() as f64;
    ms / 1000.0
}

impl Monitoring {
    /// Loads the monitoring state from the control database.
    pub(crate) async fn open(
        state: Arc<State>,
        ctl: Arc<Control>,
        settings: MonitoringSettings,
    ) -> Arc<Self> {
        let rows = match ctl.db.call(|c| db::load(c)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(
                    "monitoring: cannot read the stored monitor state ({e}); starting without it"
                );
                Vec::new()
            }
        };
        let me = Arc::new(Self {
            state,
            ctl,
            settings,
            engine: Mutex::new(Engine::from_rows(rows)),
            monitors: Mutex::new(Arc::new(BTreeMap::new())),
            notifiers: Mutex::new(BTreeMap::new()),
            held: AtomicBool::new(false),
            pending: AtomicU32::new(0),
            outbox: tokio::sync::Notify::new(),
            builtin_due: Mutex::new(BTreeMap::new()),
        });
        me.ctl.set_monitoring(&me);
        me
    }

    /// Runs until aborted.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut side = tokio::task::JoinSet::new();
        side.spawn(Arc::clone(&self).sender());
        let mut plan_rx = self.ctl.plan_receiver();
        let (obs_tx, mut obs_rx) = mpsc::channel::<runner::Observation>(4096);
        let mut probes: Option<(Vec<MonitorSpec>, tokio::task::JoinSet<()>)> = None;
        // (JoinSets: when this task is aborted, everything it started stops)
        let mut hub_tasks = tokio::task::JoinSet::new();
        let mut hub_alerts = None;
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fixed_plan = false;
        let mut ticks: u64 = 0;
        loop {
            let plan: Arc<ControlPlan> = Arc::clone(&plan_rx.borrow_and_update());
            let monitors = Arc::new(effective_monitors(&plan));
            lock(&self.engine).retain_declared(&monitors);
            *lock(&self.monitors) = Arc::clone(&monitors);
            self.build_notifiers(&plan.monitoring).await;
            let (specs, problems) = hub_specs(&monitors);
            self.record_config_problems(
                "monitor.config",
                "monitor",
                problems,
                monitors.keys().cloned().collect(),
            )
            .await;
            if probes.as_ref().is_none_or(|(s, _)| *s != specs) {
                if !specs.is_empty() {
                    tracing::info!("monitoring: {} monitors run on the hub", specs.len());
                }
                let set = runner::spawn(&specs, &obs_tx);
                probes = Some((specs, set)); // the old set is dropped: its tasks stop
            }
            if hub_alerts.as_ref() != Some(&plan.monitoring.alerts) {
                // dropping the old set stops the old ping and canaries
                drop(std::mem::replace(
                    &mut hub_tasks,
                    self.spawn_hub_checks(&plan.monitoring.alerts),
                ));
                hub_alerts = Some(plan.monitoring.alerts.clone());
            }
            loop {
                tokio::select! {
                    r = plan_rx.changed(), if !fixed_plan => {
                        if r.is_err() { fixed_plan = true; continue; }
                        break;
                    }
                    Some(o) = obs_rx.recv() => {
                        if self.held.load(Ordering::Relaxed) {
                            continue; // our own network is down: our results say nothing
                        }
                        if let Some(d) = monitors.get(&o.monitor) {
                            lock(&self.engine).observe(d, "hub", o.result, o.at);
                        }
                    }
                    _ = tick.tick() => {
                        ticks += 1;
                        self.evaluate(&plan, &monitors, ticks % 5 == 1).await;
                    }
                }
            }
        }
    }

    /// Counts an agent's probe results; returns what was accepted.
    pub(crate) fn agent_results(
        &self,
        host: &str,
        results: Vec<MonitorResult>,
    ) -> MonitorResultsStored {
        let monitors = Arc::clone(&lock(&self.monitors));
        let at_host = Vantage::Agent(host.to_string());
        let now = Timestamp::now();
        let mut accepted = 0u32;
        let mut ignored = BTreeSet::new();
        let mut engine = lock(&self.engine);
        for r in results {
            let Some(d) = monitors
                .get(&r.monitor)
                .filter(|d| d.enabled && d.spec().is_some() && d.runs_on(&at_host))
            else {
                ignored.insert(r.monitor);
                continue;
            };
            // an agent's clock ahead of ours: count the result as seen now
            let at = if r.at > now { now } else { r.at };
            let latency =
                Duration::try_from_secs_f64(r.latency_ms.max(0.0) / 1000.0).unwrap_or_default();
            let result = ProbeResult {
                up: r.up,
                latency,
                message: r.message,
                cert_days_left: r.cert_days_left,
            };
            engine.observe(d, host, result, at);
            accepted += 1;
        }
        MonitorResultsStored {
            accepted,
            ignored: ignored.into_iter().collect(),
        }
    }

    /// The monitors as the API shows them.
    pub(crate) fn view(&self) -> MonitorsView {
        let monitors = Arc::clone(&lock(&self.monitors));
        MonitorsView {
            monitors: lock(&self.engine).view(&monitors, Timestamp::now()),
            connectivity: !self.held.load(Ordering::Relaxed),
            pending_notifications: self.pending.load(Ordering::Relaxed),
        }
    }

    /// Builds the notifiers (loading their secrets); one that cannot be
    /// built is logged and raised as a `notify.config` alert.
    async fn build_notifiers(&self, plan: &MonitoringPlan) {
        let mut built = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, decl) in &plan.notifiers {
            match decl.build() {
                Ok(n) => {
                    built.insert(name.clone(), Arc::new(n));
                }
                Err(e) => {
                    tracing::error!(notifier = %name, "notifier {name} cannot be used: {e}");
                    problems.push((name.clone(), e.to_string()));
                }
            }
        }
        *lock(&self.notifiers) = built;
        self.record_config_problems(
            "notify.config",
            "notifier",
            problems,
            plan.notifiers.keys().cloned().collect(),
        )
        .await;
    }

    /// Raises a critical `kind` alert for each (name, why) in `problems` and
    /// resolves those of every other name in `all` (fixed, or gone).
    async fn record_config_problems(
        &self,
        kind: &'static str,
        what: &'static str,
        problems: Vec<(String, String)>,
        all: Vec<String>,
    ) {
        let r = self
            .ctl
            .db
            .call(move |c| {
                let now = Timestamp::now();
                for (name, e) in &problems {
                    alerts::raise(
                        c,
                        kind,
                        name,
                        Severity::Critical,
                        &format!("{what} {name} cannot be used: {e}"),
                        now,
                    )?;
                }
                for a in alerts::list(c, Some(true), 1000)?
                    .into_iter()
                    .filter(|a| a.kind == kind)
                {
                    if !problems.iter().any(|(n, _)| *n == a.subject) || !all.contains(&a.subject) {
                        alerts::resolve(c, kind, &a.subject, now)?;
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = r {
            tracing::error!("monitoring: {e}");
        }
    }

    /// One evaluation: built-ins that are due, the engine, the database,
    /// and (every few ticks) the metrics.
    async fn evaluate(
        &self,
        plan: &Arc<ControlPlan>,
        monitors: &Arc<BTreeMap<String, MonitorDecl>>,
        metrics: bool,
    ) {
        if let Err(e) = self.builtins(plan, monitors, metrics).await {
            tracing::error!("monitoring: {e}");
        }
        let now = Timestamp::now();
        let silences = plan.monitoring.silences.clone();
        let silenced = move |m: &str| silences.iter().any(|s| s.silences(m, now));
        let changes = {
            let cx = Context {
                monitors,
                silenced: &silenced,
                held: self.held.load(Ordering::Relaxed),
                now,
            };
            lock(&self.engine).evaluate(&cx)
        };
        if !changes.is_empty() {
            for m in &changes.notices {
                match m.event {
                    bulwark_notify::Event::Up => {
                        tracing::info!(monitor = %m.subject, event = "up", "{}", m.title)
                    }
                    _ => {
                        tracing::warn!(monitor = %m.subject, event = m.event.as_str(), severity = m.severity.as_str(), "{}: {}", m.title, m.body.lines().next().unwrap_or(""))
                    }
                }
            }
            let routes = plan.monitoring.routes.clone();
            let names: BTreeSet<String> = plan.monitoring.notifiers.keys().cloned().collect();
            match self
                .ctl
                .db
                .call(move |c| db::apply(c, &changes, &routes, &names, now))
                .await
            {
                Ok(0) => {}
                Ok(_) => self.outbox.notify_one(),
                Err(e) => tracing::error!("monitoring: cannot record alert state: {e}"),
            }
        }
        if metrics {
            self.publish(monitors);
        }
    }

    /// Whether built-in `name` (evaluated every `every`) is due now.
    fn due(&self, name: &str, every: Duration) -> bool {
        let now = tokio::time::Instant::now();
        let mut due = lock(&self.builtin_due);
        match due.get(name) {
            Some(last) if now.duration_since(*last) < every => false,
            _ => {
                due.insert(name.to_string(), now);
                true
            }
        }
    }

    async fn builtins(
        &self,
        plan: &Arc<ControlPlan>,
        monitors: &Arc<BTreeMap<String, MonitorDecl>>,
        metrics: bool,
    ) -> Result<(), crate::control::DbError> {
        let mut backups: Vec<(&MonitorDecl, &BackupCheck)> = Vec::new();
        let mut replication: Vec<(&MonitorDecl, &ReplicationCheck)> = Vec::new();
        for d in monitors.values().filter(|d| d.enabled) {
            match &d.check {
                MonitorCheck::Backup(b) if self.due(&d.name, b.interval) => backups.push((d, b)),
                MonitorCheck::Replication(r)
                    if self.due(&d.name, self.settings.replication_every) =>
                {
                    replication.push((d, r));
                }
                MonitorCheck::Disk(k) if self.due(&d.name, k.interval) => self.disk(d, k).await,
                _ => {}
            }
        }
        if metrics {
            self.job_metrics().await?;
        }
        if !backups.is_empty() {
            let facts = self
                .ctl
                .db
                .read(|c| crate::control::db::facts(c, None, false))
                .await?;
            let now = Timestamp::now();
            for (d, b) in backups {
                self.backup(plan, d, b, &facts.jobs, now);
            }
        }
        if !replication.is_empty() {
            let open = self
                .ctl
                .db
                .read(|c| alerts::list(c, Some(true), 1000))
                .await?;
            let mut engine = lock(&self.engine);
            for (d, r) in replication {
                let mut current = BTreeSet::new();
                for a in open.iter().filter(|a| r.covers(&a.kind, &a.subject)) {
                    let item = format!("{} {}", a.kind, a.subject);
                    engine.set_direct(
                        &d.name,
                        Some(&item),
                        Direct {
                            up: false,
                            message: a.message.clone(),
                            severity: Some(a.severity),
                        },
                    );
                    current.insert(item);
                }
                for item in engine.items_of(&d.name) {
                    if current.contains(&item) {
                        continue;
                    }
                    let key = engine::key_of(&d.name, Some(&item));
                    if engine
                        .state_of(&key)
                        .is_some_and(|s| s != bulwark_monitor::State::Down)
                    {
                        engine.forget(&key); // its recovery went out at an earlier evaluation
                    } else {
                        engine.set_direct(
                            &d.name,
                            Some(&item),
                            Direct {
                                up: true,
                                message: "the alert was resolved".into(),
                                severity: None,
                            },
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn backup(
        &self,
        plan: &ControlPlan,
        d: &MonitorDecl,
        b: &BackupCheck,
        rows: &[crate::control::db::JobRow],
        now: Timestamp,
    ) {
        let mut jobs: BTreeMap<String, Option<&crate::control::db::JobRow>> = BTreeMap::new();
        let watched = |name: &str| b.jobs.is_empty() || b.jobs.iter().any(|j| j == name);
        for j in plan
            .jobs
            .values()
            .filter(|j| j.kind == RunKind::Backup && watched(&j.name))
        {
            jobs.insert(
                j.name.clone(),
                rows.iter().find(|r| r.name == j.name && r.host == j.host),
            );
        }
        for r in rows
            .iter()
            .filter(|r| r.kind == RunKind::Backup && watched(&r.name))
        {
            jobs.entry(r.name.clone()).or_insert(Some(r));
        }
        let mut engine = lock(&self.engine);
        for item in engine.items_of(&d.name) {
            if !jobs.contains_key(&item) {
                engine.forget(&engine::key_of(&d.name, Some(&item)));
            }
        }
        for (job, row) in jobs {
            let direct = backup_verdict(&job, row, b.max_age, now);
            engine.set_direct(&d.name, Some(&job), direct);
        }
    }

    async fn disk(&self, d: &MonitorDecl, k: &DiskCheck) {
        // statvfs may hang on a dead mount: never on the async runtime
        let data = self.state.config.data.clone();
        let space = tokio::task::spawn_blocking(move || disk_space(&data))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let direct = match space {
            Ok((free, total)) => {
                let low = k.min_free.is_low(free, total);
                let limit = match k.min_free {
                    MinFree::Percent(p) => format!("{p}%"),
                    MinFree::Bytes(b) => bytes(b),
                };
                Direct {
                    up: !low,
                    message: format!(
                        "{} free of {} in {} (min_free {limit})",
                        bytes(free),
                        bytes(total),
                        self.state.config.data.display()
                    ),
                    severity: None,
                }
            }
            Err(e) => Direct {
                up: false,
                message: format!(
                    "cannot measure free space in {}: {e}",
                    self.state.config.data.display()
                ),
                severity: None,
            },
        };
        lock(&self.engine).set_direct(&d.name, None, direct);
    }

    /// Per-job metrics from the jobs as `bulwark status` sees them (one read).
    async fn job_metrics(&self) -> Result<(), crate::control::DbError> {
        let m = &self.state.metrics;
        let (_, jobs, _) = self.ctl.jobs_view().await?;
        for j in jobs {
            let l = JobHostLabels {
                job: j.name.clone(),
                host: j.host.clone(),
            };
            m.job_late
                .get_or_create(&l)
                .set(i64::from(j.state == bulwark_api::JobState::Late));
            if let Some(t) = j.last_success {
                m.job_last_success.get_or_create(&l).set(secs(t));
            }
            if let Some(run) = &j.last_run {
                let rep = &run.report;
                m.job_last_run.get_or_create(&l).set(secs(rep.finished));
                m.job_last_duration.get_or_create(&l).set(
                    rep.finished
                        .duration_since(rep.started)
                        .as_secs_f64()
                        .max(0.0),
                );
                m.job_last_bytes_added
                    .get_or_create(&l)
                    .set(i64::try_from(rep.stats.bytes_added).unwrap_or(i64::MAX));
                m.job_last_files
                    .get_or_create(&l)
                    .set(i64::try_from(rep.stats.files_processed).unwrap_or(i64::MAX));
                m.job_last_result.get_or_create(&l).set(i64::from(matches!(
                    rep.status,
                    RunStatus::Success | RunStatus::Partial
                )));
            }
        }
        Ok(())
    }

    /// Monitor metrics from the engine.
    fn publish(&self, monitors: &BTreeMap<String, MonitorDecl>) {
        let m = &self.state.metrics;
        let engine = lock(&self.engine);
        m.monitor_up.clear();
        m.monitor_silenced.clear();
        m.probe_up.clear();
        m.probe_latency.clear();
        m.probe_cert_days.clear();
        m.probe_last.clear();
        for e in engine.entries() {
            let Some(d) = monitors.get(&e.monitor) else {
                continue;
            };
            let l = MonitorLabels {
                monitor: e.monitor.clone(),
                item: e.item.clone().unwrap_or_default(),
                r#type: d.kind().as_str().to_string(),
            };
            m.monitor_up.get_or_create(&l).set(match e.state {
                bulwark_monitor::State::Up => 1,
                bulwark_monitor::State::Down => 0,
                bulwark_monitor::State::Unknown => -1,
            });
            m.monitor_silenced
                .get_or_create(&l)
                .set(i64::from(e.silenced));
            for (v, last) in &e.last {
                let vl = VantageLabels {
                    monitor: e.monitor.clone(),
                    vantage: v.clone(),
                };
                m.probe_up.get_or_create(&vl).set(i64::from(last.result.up));
                m.probe_latency
                    .get_or_create(&vl)
                    .set(last.result.latency.as_secs_f64());
                m.probe_last.get_or_create(&vl).set(secs(last.at));
                if let Some(days) = last.result.cert_days_left {
                    m.probe_cert_days.get_or_create(&vl).set(days);
                }
            }
        }
        m.connectivity
            .set(i64::from(!self.held.load(Ordering::Relaxed)));
    }

    /// The hub's dead-man ping and connectivity canaries.
    fn spawn_hub_checks(
        self: &Arc<Self>,
        alerts_cfg: &bulwark_config::Alerts,
    ) -> tokio::task::JoinSet<()> {
        let mut out = tokio::task::JoinSet::new();
        match alerts_cfg.pinger() {
            Ok(Some(pinger)) => {
                let every = alerts_cfg.hub_ping_interval.max(Duration::from_secs(1));
                out.spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut failing = false;
                    loop {
                        tick.tick().await;
                        match pinger.success().await {
                            Ok(()) if failing => {
                                tracing::info!("hub ping works again");
                                failing = false;
                            }
                            Ok(()) => {}
                            Err(e) if !failing => {
                                tracing::warn!("hub ping failed (will keep trying): {e}");
                                failing = true;
                            }
                            Err(_) => {}
                        }
                    }
                });
            }
            Ok(None) => {}
            Err(e) => tracing::error!("the hub's ping ([alerts]) cannot be used: {e}"),
        }
        if !alerts_cfg.connectivity.is_empty() {
            let canaries: Vec<runner::Prober> = alerts_cfg
                .connectivity
                .iter()
                .map(|p| runner::Prober::new(p.clone(), CANARY_TIMEOUT))
                .collect();
            let me = Arc::clone(self);
            let every = self.settings.canary_interval;
            out.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut failed_rounds = 0u32;
                loop {
                    tick.tick().await;
                    let results = futures::future::join_all(canaries.iter().map(runner::Prober::run)).await;
                    if bulwark_monitor::connectivity_lost(&results) {
                        failed_rounds += 1;
                        if failed_rounds >= CANARY_ROUNDS && !me.held.swap(true, Ordering::Relaxed) {
                            let why: Vec<&str> = results.iter().map(|r| r.message.as_str()).collect();
                            tracing::warn!(
                                "the hub's network looks down (no connectivity canary answers: {}); holding alerts back",
                                why.join("; ")
                            );
                        }
                    } else {
                        failed_rounds = 0;
                        if me.held.swap(false, Ordering::Relaxed) {
                            tracing::info!("the hub's network is back; alerts flow again");
                        }
                    }
                    me.state.metrics.connectivity.set(i64::from(!me.held.load(Ordering::Relaxed)));
                }
            });
        }
        out
    }

    /// Delivers queued notices until aborted.
    async fn sender(self: Arc<Self>) {
        loop {
            let now = Timestamp::now();
            let due = match self.ctl.db.call(move |c| db::due(c, now, 32)).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("monitoring: cannot read the notification queue: {e}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            let sends = due.into_iter().map(|q| {
                let n = lock(&self.notifiers).get(&q.notifier).cloned();
                async move {
                    let r = match &n {
                        None => Err(None),
                        Some(n) => {
                            match tokio::time::timeout(SEND_TIMEOUT, n.send(&q.message)).await {
                                Ok(Ok(())) => Ok(()),
                                Ok(Err(e)) => Err(Some(e.to_string())),
                                Err(_) => Err(Some(format!(
                                    "no answer within {}s",
                                    SEND_TIMEOUT.as_secs()
                                ))),
                            }
                        }
                    };
                    (q, r)
                }
            });
            let results = futures::future::join_all(sends).await;
            for (q, r) in results {
                let label = NotifierLabel {
                    notifier: q.notifier.clone(),
                };
                let id = q.id;
                let outcome = match r {
                    Ok(()) => {
                        self.state
                            .metrics
                            .notifications_sent
                            .get_or_create(&label)
                            .inc();
                        tracing::info!(notifier = %q.notifier, monitor = %q.message.subject, "notified: {}", q.message.title);
                        self.ctl.db.call(move |c| db::done(c, id)).await
                    }
                    Err(None) => {
                        tracing::warn!(notifier = %q.notifier, "dropping a notification for notifier {}: it is not configured (any more)", q.notifier);
                        self.ctl.db.call(move |c| db::done(c, id)).await
                    }
                    Err(Some(e)) => {
                        self.state
                            .metrics
                            .notifications_failed
                            .get_or_create(&label)
                            .inc();
                        let age = Timestamp::now().duration_since(q.created);
                        if age
                            >= SignedDuration::try_from(self.settings.give_up_after)
                                .unwrap_or(SignedDuration::MAX)
                        {
                            tracing::error!(notifier = %q.notifier, "giving up on a notification after {} attempts: {} ({e})", q.attempts + 1, q.message.title);
                            self.ctl.db.call(move |c| db::done(c, id)).await
                        } else {
                            let wait = backoff(&self.settings, q.attempts + 1);
                            tracing::warn!(notifier = %q.notifier, "cannot deliver \"{}\" (attempt {}; retrying in {}s): {e}", q.message.title, q.attempts + 1, wait.as_secs());
                            let next = Timestamp::now()
                                + SignedDuration::try_from(wait)
                                    .unwrap_or(SignedDuration::from_secs(3600));
                            self.ctl.db.call(move |c| db::retry(c, id, next, &e)).await
                        }
                    }
                };
                if let Err(e) = outcome {
                    tracing::error!("monitoring: cannot update the notification queue: {e}");
                }
            }
            let (n, next) = self
                .ctl
                .db
                .read(|c| db::pending(c))
                .await
                .unwrap_or((0, None));
            self.pending.store(n, Ordering::Relaxed);
            self.state.metrics.notifications_pending.set(i64::from(n));
            let wait = match next {
                Some(t) => {
                    let d = t.duration_since(Timestamp::now());
                    Duration::try_from(d)
                        .unwrap_or(Duration::ZERO)
                        .min(Duration::from_secs(60))
                }
                None => Duration::from_secs(60),
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                () = self.outbox.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn backoff(s: &MonitoringSettings, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(20);
    s.retry_base.saturating_mul(1 << exp).min(s.retry_max)
}

/// The probe monitors that run on the hub, with their secret headers.
/// The monitors whose secrets could not be loaded are returned with why.
fn hub_specs(
    monitors: &BTreeMap<String, MonitorDecl>,
) -> (Vec<MonitorSpec>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for d in monitors
        .values()
        .filter(|d| d.enabled && d.runs_on(&Vantage::Hub))
    {
        if let MonitorCheck::Probe(p) = &d.check {
            match p.load() {
                Ok(spec) => out.push(spec),
                Err(e) => {
                    tracing::error!(monitor = %d.name, "monitor {} cannot run on the hub: {e}", d.name);
                    problems.push((d.name.clone(), e.to_string()));
                }
            }
        }
    }
    (out, problems)
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Free and total bytes of the file system holding `path`.
pub(crate) fn disk_space(path: &std::path::Path) -> Result<(u64, u64), String> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|e| e.desc().to_string())?;
    #[allow(clippy::useless_conversion)]
    let (frag, avail, blocks) = (
        u64::from(s.fragment_size()),
        u64::from(s.blocks_available()),
        u64::from(s.blocks()),
    );
    Ok((avail.saturating_mul(frag), blocks.saturating_mul(frag)))
}

/// The verdict of a `backup` monitor about one job: down when its last run
/// failed, or its newest success (or, without one, the moment the hub
/// learned of the job) is older than `max_age`.
pub(crate) fn backup_verdict(
    job: &str,
    row: Option<&crate::control::db::JobRow>,
    max_age: Duration,
    now: Timestamp,
) -> Direct {
    let max = SignedDuration::try_from(max_age).unwrap_or(SignedDuration::MAX);
    let human = |d: SignedDuration| {
        humantime::format_duration(Duration::from_secs(d.as_secs().unsigned_abs())).to_string()
    };
    let Some(row) = row else {
        return Direct {
            up: true,
            message: format!("no run of {job} reported yet"),
            severity: None,
        };
    };
    if let Some(run) = &row.last_run {
        if run.report.status == RunStatus::Failed {
            let why = run
                .report
                .errors
                .first()
                .map_or_else(String::new, |e| format!(": {e}"));
            return Direct {
                up: false,
                message: format!(
                    "the last backup of {job} on {} failed at {}{why}",
                    row.host, run.report.finished
                ),
                severity: None,
            };
        }
    }
    match row.last_success.map(crate::control::db::ts) {
        Some(t) => {
            let age = now.duration_since(t);
            if age > max {
                Direct {
                    up: false,
                    message: format!(
                        "the newest successful backup of {job} on {} is {} old (max_age {})",
                        row.host,
                        human(age),
                        human(max)
                    ),
                    severity: None,
                }
            } else {
                Direct {
                    up: true,
                    message: format!("last success {} ago on {}", human(age), row.host),
                    severity: None,
                }
            }
        }
        None => {
            let known = now.duration_since(crate::control::db::ts(row.known_since));
            Direct {
                up: known <= max,
                message: format!(
                    "no successful backup of {job} on {} yet (known for {})",
                    row.host,
                    human(known)
                ),
                severity: None,
            }
        }
    }
}
