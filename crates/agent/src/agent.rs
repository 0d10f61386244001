//! The agent's main loop: scheduler, runs, report delivery, long-poll.
//!
//! ```text
//!   config (file, or fetched from the hub) ──► scheduler ──► run task ──► queue ──► delivery ──► hub
//!                                                   ▲                                     │
//!   hub long-poll: triggers, config changes ────────┘◄────────────────────────────────────┘
//!
//!   config ──► monitors (probes on their intervals) ──► batches of results ──► hub
//! ```
//!
//! Runs on one host happen one at a time (a backup competes for disk and
//! network with the next one; hooks may stop shared services). Each job is
//! planned once per run with `Schedule::plan`, so a catch-up run doesn't move
//! when the loop wakes up for other reasons.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use bulwark_api::{
    Command, LeaseKind, LeaseRequest, PlannedRun, PollRequest, RunKind, RunReport, RunningJob,
    Trigger,
};
use bulwark_config::{Config, JobSchedule, RepoUrl};
use bulwark_schedule::{seed_for, NextRun};
use jiff::Timestamp;
use tokio::sync::{mpsc, watch, Notify};

use crate::{
    client::HubClient,
    clock::Clock,
    error::{AgentError, Result},
    fsutil::{private_dir, write_atomic},
    queue::Queue,
    runner::{Executor, RunOutcome, RunRequest},
    signing::ConfigKey,
    state::LastRuns,
};

/// Where the agent's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A local `bulwark.toml`, re-read when it changes.
    File(PathBuf),
    /// This host's part of the hub's file (`GET /api/v1/agent/config`),
    /// cached in the state directory, re-fetched when the hub says it changed.
    Hub,
}

/// How to run an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// This host's name (with `ConfigSource::Hub`: None = take the hub's word).
    pub host: Option<String>,
    /// The state directory (queue, last runs, fetched config).
    pub state_dir: PathBuf,
    /// Where the configuration comes from.
    pub config: ConfigSource,
    /// How long one long-poll waits.
    pub poll_wait: Duration,
    /// How often a local config file is checked for changes.
    pub reload_every: Duration,
    /// The public key a configuration fetched from the hub must be signed
    /// with (`ConfigSource::Hub`: required; an unsigned or wrongly signed
    /// file is refused and the last verified one keeps running).
    pub config_key: Option<ConfigKey>,
}

/// A loaded configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Parsed.
    pub config: Arc<Config>,
    /// The file the job processes read.
    pub path: PathBuf,
    /// The hub's version of it (hub-sourced only).
    pub version: Option<String>,
    /// The host this agent is.
    pub host: String,
}

/// One schedulable unit: a job or a maintenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Name.
    pub name: String,
    /// Backup or maintenance.
    pub kind: RunKind,
    /// When.
    pub schedule: Option<JobSchedule>,
    /// Repository name.
    pub repository: String,
    /// Lease key: the repository's address without credentials.
    pub lease_key: String,
}

/// The units `host` runs.
pub fn units_of(cfg: &Config, host: &str) -> Vec<Unit> {
    let key = |repo: &str| {
        cfg.repositories
            .get(repo)
            .map(|r| lease_key(&r.url, host))
            .unwrap_or_default()
    };
    let mut v: Vec<Unit> = cfg
        .jobs_of(host)
        .map(|j| Unit {
            name: j.name.clone(),
            kind: RunKind::Backup,
            schedule: j.schedule.clone(),
            repository: j.repository.clone(),
            lease_key: key(&j.repository),
        })
        .collect();
    v.extend(cfg.maintenance_of(host).map(|m| Unit {
        name: m.name.clone(),
        kind: RunKind::Maintenance,
        schedule: m.schedule.clone(),
        repository: m.repository.clone(),
        lease_key: key(&m.repository),
    }));
    v
}

/// The name every host uses for a repository: its URL without credentials
/// (a local path is only shared by jobs of the same host). The hub computes
/// the same name with the same function (`RepoUrl::lease_key`).
pub fn lease_key(url: &RepoUrl, host: &str) -> String {
    url.lease_key(host)
}

/// State shared by the agent's tasks.
struct Shared {
    clock: Arc<dyn Clock>,
    executor: Arc<dyn Executor>,
    hub: Option<HubClient>,
    config: watch::Sender<Option<Loaded>>,
    last_runs: Mutex<LastRuns>,
    queue: Mutex<Queue>,
    running: Mutex<Vec<RunningJob>>,
    in_flight: Mutex<BTreeSet<String>>,
    next_runs: Mutex<Vec<PlannedRun>>,
    /// The hub's config version last refused (bad or missing signature):
    /// not fetched again until the hub's version changes.
    refused_version: Mutex<Option<String>>,
    deliver: Notify,
    wake: Notify,
    slot: tokio::sync::Mutex<()>,
    stop: watch::Receiver<bool>,
    runs: tokio::sync::Mutex<tokio::task::JoinSet<()>>,
}

/// A running agent's handle for tests and `bulwark up`.
pub struct Agent {
    shared: Arc<Shared>,
    opts: AgentOptions,
}

impl Agent {
    /// Prepares an agent: opens its state directory and loads what it
    /// remembers. `hub`: where to report (None: run and log only).
    pub fn new(
        opts: AgentOptions,
        hub: Option<HubClient>,
        executor: Arc<dyn Executor>,
        clock: Arc<dyn Clock>,
        stop: watch::Receiver<bool>,
    ) -> Result<Self> {
        private_dir(&opts.state_dir)?;
        let (last_runs, warning) = LastRuns::load(&opts.state_dir)?;
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        let queue = Queue::open(&opts.state_dir)?;
        let (config, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            clock,
            executor,
            hub,
            config,
            last_runs: Mutex::new(last_runs),
            queue: Mutex::new(queue),
            running: Mutex::default(),
            in_flight: Mutex::default(),
            next_runs: Mutex::default(),
            refused_version: Mutex::default(),
            deliver: Notify::new(),
            wake: Notify::new(),
            slot: tokio::sync::Mutex::new(()),
            stop,
            runs: tokio::sync::Mutex::new(tokio::task::JoinSet::new()),
        });
        Ok(Self { shared, opts })
    }

    /// Uses this configuration (instead of loading one at `run`); it is
    /// still replaced when the file or the hub's copy changes.
    pub fn use_config(&self, loaded: Loaded) {
        self.shared.config.send_replace(Some(loaded));
        self.shared.wake.notify_one();
    }

    /// A receiver of the configuration path the job processes must read.
    pub fn config_path(&self) -> watch::Receiver<Option<Loaded>> {
        self.shared.config.subscribe()
    }

    /// Loads the configuration the first time: the file, or the hub's (then
    /// the cached copy when the hub is unreachable). Fails only when there is
    /// nothing to run from.
    pub async fn load_config(&self) -> Result<()> {
        match &self.opts.config {
            ConfigSource::File(path) => {
                let loaded = load_file(path, self.opts.host.as_deref())?;
                self.shared.config.send_replace(Some(loaded));
                Ok(())
            }
            ConfigSource::Hub => match fetch_config(&self.shared, &self.opts).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_temporary() || matches!(e, AgentError::Unverified { .. }) => {
                    let cached = self.opts.state_dir.join("config.json");
                    match load_cached(&self.opts, &cached) {
                        Ok(l) if e.is_temporary() => {
                            tracing::warn!(error = %e, "hub unreachable; running from the cached configuration");
                            self.shared.config.send_replace(Some(l));
                            Ok(())
                        }
                        Ok(l) => {
                            tracing::error!(
                                "the hub's configuration is refused; running the last verified one: {e}{}",
                                e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default()
                            );
                            self.shared.config.send_replace(Some(l));
                            Ok(())
                        }
                        Err(_) => Err(e),
                    }
                }
                Err(e) => Err(e),
            },
        }
    }

    /// Runs until `stop` turns true: then stops running jobs (their cleanup
    /// hooks still run), queues their reports, tries one last delivery and
    /// returns.
    pub async fn run(self) -> Result<()> {
        if self.shared.config.borrow().is_none() {
            self.load_config().await?;
        }
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(scheduler(self.shared.clone(), cmd_rx));
        if let Some(hub) = self.shared.hub.clone() {
            tasks.spawn(poller(self.shared.clone(), self.opts.clone(), cmd_tx));
            tasks.spawn(deliverer(self.shared.clone()));
            // the probe monitors `on` this host (their results only mean
            // something at the hub, which decides and alerts)
            tasks.spawn(crate::monitors::run(self.shared.config.subscribe(), hub));
        } else {
            drop(cmd_tx);
        }
        if let ConfigSource::File(path) = &self.opts.config {
            tasks.spawn(watch_file(
                self.shared.clone(),
                path.clone(),
                self.opts.host.clone(),
                self.opts.reload_every,
            ));
        }
        let mut stop = self.shared.stop.clone();
        crate::runner::stopped(&mut stop).await;
        tracing::info!("agent stopping");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        // wait for the running jobs (they got SIGTERM through `stop`)
        let mut runs = std::mem::take(&mut *self.shared.runs.lock().await);
        while runs.join_next().await.is_some() {}
        if let Some(hub) = &self.shared.hub {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), deliver_all(&self.shared, hub)).await;
        }
        Ok(())
    }
}

fn load_file(path: &std::path::Path, host: Option<&str>) -> Result<Loaded> {
    let config = bulwark_config::load(path)
        .map_err(|e| AgentError::Config(format!("the configuration is not valid:\n{e}")))?;
    let host = host
        .map(str::to_string)
        .or_else(|| config.settings.host.clone())
        .ok_or_else(|| AgentError::Setup {
            message: "this host's name is not known".into(),
            hint: "pass --host NAME".into(),
        })?;
    if !config.hosts.is_empty() && !config.hosts.contains_key(&host) {
        return Err(AgentError::Setup {
            message: format!(
                "host `{host}` is not declared in {} (hosts: {})",
                path.display(),
                config.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            hint: "pass --host NAME with one of them, or add a [hosts.NAME] table".into(),
        });
    }
    Ok(Loaded {
        config: Arc::new(config),
        path: path.to_path_buf(),
        version: None,
        host,
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    host: String,
    version: String,
    /// The id of the key whose signature was verified before the copy was
    /// written (None: written by an agent that did not verify).
    #[serde(default)]
    key: Option<String>,
}

fn load_cached(opts: &AgentOptions, meta: &std::path::Path) -> Result<Loaded> {
    let bytes = std::fs::read(meta).map_err(|source| AgentError::State {
        action: "cannot read",
        path: meta.to_path_buf(),
        source,
    })?;
    let c: Cached = serde_json::from_slice(&bytes).map_err(|e| AgentError::Damaged {
        path: meta.to_path_buf(),
        reason: e.to_string(),
    })?;
    if let Some(k) = &opts.config_key {
        if c.key.as_deref() != Some(k.id().as_str()) {
            return Err(AgentError::Config(format!(
                "the cached configuration in {} was not verified with key {}; it is not used",
                opts.state_dir.display(),
                k.id()
            )));
        }
    }
    let path = opts.state_dir.join("config.toml");
    let mut l = load_file(&path, Some(&c.host))?;
    l.version = Some(c.version);
    Ok(l)
}

/// Checks the signature of the hub's whole file and extracts this host's
/// part from it here: the hub's own extract (`toml`) is never used, so a
/// hub that edits the file or the extract cannot add a hook or a command.
fn verified_extract(ac: &bulwark_api::AgentConfig, key: &ConfigKey) -> Result<String> {
    let refuse = |problem: String, hint: &str| AgentError::Unverified {
        problem,
        hint: hint.to_string(),
    };
    let Some(file) = &ac.file else {
        return Err(refuse(
            "the hub sent no signed file (an older hub?)".into(),
            "upgrade the hub to this agent's version",
        ));
    };
    let sign_it = format!(
        "sign the file on the admin machine: `bulwark config sign bulwark.toml --key config.key` \
         (key {}), and put bulwark.toml.sig next to bulwark.toml on the hub",
        key.id()
    );
    key.verify(file.as_bytes(), ac.signature.as_deref())
        .map_err(|e| {
            let hint = match e {
                crate::signing::SignatureError::Mismatch { .. } => format!(
                    "if you changed the file, {sign_it}; if you did not, the hub or the network altered it"
                ),
                crate::signing::SignatureError::OtherKey { .. } => format!(
                    "sign with the key this agent trusts, or give the agent the new public key (--config-key); {sign_it}"
                ),
                _ => sign_it.clone(),
            };
            refuse(e.to_string(), &hint)
        })?;
    let origin = PathBuf::from(ac.source.as_deref().unwrap_or("/etc/bulwark/bulwark.toml"));
    let cfg = bulwark_config::parse(file, &origin)
        .map_err(|e| AgentError::Config(format!("the signed configuration is not valid:\n{e}")))?;
    if cfg.hosts.is_empty() {
        // a single-machine file: all of it is this host's
        return Ok(file.clone());
    }
    bulwark_config::extract_host(file, &origin, &ac.host).map_err(|e| {
        AgentError::Config(format!(
            "the signed configuration has no part for host `{}`: {e}",
            ac.host
        ))
    })
}

async fn fetch_config(shared: &Shared, opts: &AgentOptions) -> Result<()> {
    let Some(hub) = &shared.hub else {
        return Err(AgentError::Setup {
            message: "no hub to fetch the configuration from".into(),
            hint: "pass --hub URL".into(),
        });
    };
    let ac = hub.config().await?;
    let Some(key) = &opts.config_key else {
        return Err(AgentError::Setup {
            message: "this agent takes its configuration from the hub but holds no key to check its signature; \
                      a hub (or a network in the middle) could otherwise make it run any command"
                .into(),
            hint: "pass --config-key ed25519:… (or BULWARK_CONFIG_KEY), the public key `bulwark config keygen` printed; \
                   or give the agent its own file with -c"
                .into(),
        });
    };
    let toml = match verified_extract(&ac, key) {
        Ok(t) => t,
        Err(e) => {
            if let Ok(mut r) = shared.refused_version.lock() {
                *r = Some(ac.version.clone());
            }
            return Err(e);
        }
    };
    if let Some(h) = &opts.host {
        if *h != ac.host {
            return Err(AgentError::Setup {
                message: format!(
                    "the hub knows this token as host `{}`, but the agent was started as `{h}`",
                    ac.host
                ),
                hint: "use the token of this host, or fix --host".into(),
            });
        }
    }
    let path = opts.state_dir.join("config.toml");
    write_atomic(&path, toml.as_bytes(), 0o600)?;
    let mut loaded = load_file(&path, Some(&ac.host))?;
    loaded.version = Some(ac.version.clone());
    write_atomic(
        &opts.state_dir.join("config.json"),
        &serde_json::to_vec(&Cached {
            host: ac.host.clone(),
            version: ac.version,
            key: Some(key.id()),
        })
        .unwrap_or_default(),
        0o600,
    )?;
    tracing::info!(host = %ac.host, version = ?loaded.version, key = %key.id(), "signed configuration from the hub verified");
    if let Ok(mut r) = shared.refused_version.lock() {
        *r = None;
    }
    shared.config.send_replace(Some(loaded));
    shared.wake.notify_one();
    Ok(())
}

async fn watch_file(shared: Arc<Shared>, path: PathBuf, host: Option<String>, every: Duration) {
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut last = stamp(&path);
    loop {
        tokio::time::sleep(every).await;
        let now = stamp(&path);
        if now == last {
            continue;
        }
        last = now;
        match load_file(&path, host.as_deref()) {
            Ok(l) => {
                tracing::info!(file = %path.display(), "configuration reloaded");
                shared.config.send_replace(Some(l));
                shared.wake.notify_one();
            }
            Err(e) => tracing::error!(file = %path.display(), "configuration change ignored: {e}"),
        }
    }
}

/// Plans, sleeps, starts runs; takes commands.
async fn scheduler(shared: Arc<Shared>, mut commands: mpsc::Receiver<Command>) {
    // job → (its schedule when planned, the plan)
    let mut plans: BTreeMap<String, (JobSchedule, NextRun)> = BTreeMap::new();
    let mut commands_open = true;
    loop {
        let Some(loaded) = shared.config.borrow().clone() else {
            shared.wake.notified().await;
            continue;
        };
        let units = units_of(&loaded.config, &loaded.host);
        let now = shared.clock.now();
        let in_flight = shared
            .in_flight
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        plans.retain(|name, (sched, _)| {
            units
                .iter()
                .any(|u| u.name == *name && u.schedule.as_ref() == Some(sched))
        });
        let mut due = Vec::new();
        for u in &units {
            let Some(sched) = &u.schedule else { continue };
            if in_flight.contains(&u.name) {
                plans.remove(&u.name);
                continue;
            }
            if !plans.contains_key(&u.name) {
                let last = shared.last_runs.lock().ok().and_then(|l| l.get(&u.name));
                let seed = seed_for(&[&loaded.host, &u.name]);
                if let Some(p) = sched.schedule.plan(last, now.clone(), seed) {
                    tracing::debug!(job = %u.name, at = %p.at, catch_up = p.catch_up, "planned");
                    plans.insert(u.name.clone(), (sched.clone(), p));
                }
            }
            if let Some((_, p)) = plans.get(&u.name) {
                if p.at.timestamp() <= now.timestamp() {
                    due.push((u.clone(), p.catch_up));
                }
            }
        }
        for (u, catch_up) in due {
            plans.remove(&u.name);
            start_run(
                &shared,
                &loaded,
                u,
                if catch_up {
                    Trigger::CatchUp
                } else {
                    Trigger::Schedule
                },
                None,
            )
            .await;
        }
        if let Ok(mut nr) = shared.next_runs.lock() {
            *nr = plans
                .iter()
                .map(|(job, (_, p))| PlannedRun {
                    job: job.clone(),
                    at: p.at.timestamp(),
                    catch_up: p.catch_up,
                })
                .collect();
        }
        let next = plans.values().map(|(_, p)| p.at.timestamp()).min();
        let now = shared.clock.now().timestamp();
        // wake at the next run, and at least every minute (the wall clock
        // may jump: NTP, suspend)
        let sleep_for = next
            .map(|t| {
                t.duration_since(now)
                    .unsigned_abs()
                    .min(Duration::from_secs(60))
            })
            .filter(|_| next.is_some_and(|t| t > now))
            .unwrap_or(if next.is_some() {
                Duration::ZERO
            } else {
                Duration::from_secs(60)
            });
        tokio::select! {
            () = tokio::time::sleep(sleep_for) => {}
            () = shared.wake.notified() => {}
            cmd = commands.recv(), if commands_open => match cmd {
                Some(c) => {
                    if let Some(u) = units.iter().find(|u| u.name == c.job) {
                        tracing::info!(job = %c.job, command = c.id, "triggered");
                        plans.remove(&u.name);
                        start_run(&shared, &loaded, u.clone(), Trigger::Manual, Some(c.id)).await;
                    } else {
                        tracing::warn!(job = %c.job, "trigger for a job this host does not run; ignored");
                    }
                }
                None => commands_open = false,
            },
        }
    }
}

/// Starts a run in the background (it waits for the host's run slot).
async fn start_run(
    shared: &Arc<Shared>,
    loaded: &Loaded,
    unit: Unit,
    trigger: Trigger,
    command_id: Option<i64>,
) {
    if let Ok(mut f) = shared.in_flight.lock() {
        if !f.insert(unit.name.clone()) {
            tracing::info!(job = %unit.name, "already running or waiting to run; not started twice");
            return;
        }
    }
    let shared2 = shared.clone();
    let host = loaded.host.clone();
    shared.runs.lock().await.spawn(async move {
        let report = run_one(&shared2, &host, &unit, trigger, command_id).await;
        if let Ok(mut f) = shared2.in_flight.lock() {
            f.remove(&unit.name);
        }
        log_report(&report);
        if shared2.hub.is_some() {
            let pushed = shared2.queue.lock().map_err(|_| ()).and_then(|mut q| {
                q.push(&report)
                    .map_err(|e| tracing::error!("cannot queue the report: {e}"))
            });
            if pushed.is_ok() {
                shared2.deliver.notify_one();
            }
        }
        shared2.wake.notify_one();
    });
}

fn log_report(r: &RunReport) {
    let secs = r.finished.duration_since(r.started).as_secs_f64();
    match r.status {
        bulwark_api::RunStatus::Success => {
            tracing::info!(job = %r.job, status = "success", seconds = secs, snapshot = ?r.snapshot.as_ref().map(|s| &s.id[..8]), "run finished")
        }
        s => {
            tracing::warn!(job = %r.job, status = s.as_str(), seconds = secs, errors = ?r.errors, "run finished")
        }
    }
}

async fn run_one(
    shared: &Arc<Shared>,
    host: &str,
    unit: &Unit,
    trigger: Trigger,
    command_id: Option<i64>,
) -> RunReport {
    let _slot = shared.slot.lock().await;
    let started = shared.clock.now().timestamp();
    if let Ok(mut l) = shared.last_runs.lock() {
        if let Err(e) = l.set(&unit.name, started) {
            tracing::error!("{e}");
        }
    }
    if let Ok(mut r) = shared.running.lock() {
        r.push(RunningJob {
            job: unit.name.clone(),
            started,
        });
    }
    tracing::info!(job = %unit.name, trigger = ?trigger, "run starting");
    let lease = acquire_lease(shared, unit).await;
    let outcome = match lease {
        Err(e) => RunOutcome::failed(e),
        Ok(lease) => {
            let req = RunRequest {
                job: unit.name.clone(),
                kind: unit.kind,
                trigger,
                command_id,
                repository: unit.repository.clone(),
            };
            let outcome = shared.executor.execute(req, shared.stop.clone()).await;
            if let (Some(hub), Some(id)) = (&shared.hub, lease) {
                if let Err(e) = hub.release(&id).await {
                    tracing::warn!(
                        "could not release the repository lease (it lapses by itself): {e}"
                    );
                }
            }
            outcome
        }
    };
    if let Ok(mut r) = shared.running.lock() {
        r.retain(|j| j.job != unit.name);
    }
    let finished = shared.clock.now().timestamp().max(started);
    RunReport {
        id: new_id(),
        host: host.to_string(),
        job: unit.name.clone(),
        kind: unit.kind,
        trigger,
        command_id,
        started,
        finished,
        status: outcome.status,
        exit_code: outcome.exit_code,
        snapshot: outcome.snapshot,
        stats: outcome.stats,
        skipped: outcome.skipped,
        skipped_count: outcome.skipped_count,
        errors: outcome.errors,
    }
}

/// The hub's lease for the repository: shared for a backup, exclusive for
/// maintenance. Waits while the hub says busy. Without a hub, or when it is
/// unreachable, runs without one — the repository's own locks still keep a
/// prune from running under a backup.
async fn acquire_lease(shared: &Shared, unit: &Unit) -> Result<Option<String>, String> {
    let Some(hub) = &shared.hub else {
        return Ok(None);
    };
    let req = LeaseRequest {
        repository: unit.lease_key.clone(),
        kind: if unit.kind == RunKind::Maintenance {
            LeaseKind::Maintenance
        } else {
            LeaseKind::Backup
        },
        job: unit.name.clone(),
    };
    let mut stop = shared.stop.clone();
    let mut waited = Duration::ZERO;
    loop {
        match hub.lease(&req).await {
            Ok(l) => return Ok(Some(l.id)),
            Err(AgentError::Refused {
                status: 409,
                retry_after,
                message,
                ..
            }) => {
                let wait = Duration::from_secs(retry_after.unwrap_or(10).clamp(1, 60));
                if waited.is_zero() {
                    tracing::info!(job = %unit.name, "repository busy ({message}); waiting");
                }
                waited += wait;
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = crate::runner::stopped(&mut stop) => return Err("interrupted while waiting for the repository".into()),
                }
            }
            Err(e) if e.is_temporary() => {
                tracing::warn!(job = %unit.name, "no repository lease ({e}); running on the repository's own locks");
                return Ok(None);
            }
            Err(AgentError::Refused { status: 404, .. }) => return Ok(None), // a hub without leases
            Err(e) => return Err(format!("the hub refused the repository lease: {e}")),
        }
    }
}

fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Delivers queued reports in order until the queue is empty or the hub is
/// unreachable.
async fn deliver_all(shared: &Shared, hub: &HubClient) -> Result<()> {
    loop {
        let next = shared
            .queue
            .lock()
            .map_err(|_| AgentError::Unreachable("poisoned".into()))?
            .oldest()?;
        let Some(item) = next else { return Ok(()) };
        match hub.report(&item.report).await {
            Ok(stored) => {
                tracing::debug!(job = %item.report.job, run = stored.run, duplicate = stored.duplicate, "report delivered");
                shared
                    .queue
                    .lock()
                    .map_err(|_| AgentError::Unreachable("poisoned".into()))?
                    .remove(&item)?;
            }
            Err(e) if e.is_temporary() => return Err(e),
            Err(e) => {
                tracing::error!(job = %item.report.job, "the hub refused a run report for good; moved to rejected/: {e}");
                shared
                    .queue
                    .lock()
                    .map_err(|_| AgentError::Unreachable("poisoned".into()))?
                    .reject(&item.path)?;
            }
        }
    }
}

async fn deliverer(shared: Arc<Shared>) {
    let Some(hub) = shared.hub.clone() else {
        return;
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let wait = match deliver_all(&shared, &hub).await {
            Ok(()) => {
                backoff = Duration::from_secs(1);
                Duration::from_secs(60)
            }
            Err(e) => {
                let pending = shared.queue.lock().map(|q| q.len()).unwrap_or(0);
                tracing::warn!(pending, "run reports kept in the queue: {e}");
                let w = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                w
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.deliver.notified() => {}
        }
    }
}

async fn poller(shared: Arc<Shared>, opts: AgentOptions, commands: mpsc::Sender<Command>) {
    let Some(hub) = shared.hub.clone() else {
        return;
    };
    let mut backoff = Duration::from_secs(1);
    let mut warned = false;
    loop {
        let loaded = shared.config.borrow().clone();
        let req = PollRequest {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            config_version: loaded.as_ref().and_then(|l| l.version.clone()),
            running: shared.running.lock().map(|r| r.clone()).unwrap_or_default(),
            next_runs: shared
                .next_runs
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default(),
        };
        match hub.poll(&req, opts.poll_wait).await {
            Ok(resp) => {
                if warned {
                    tracing::info!("hub reachable again");
                    warned = false;
                    shared.deliver.notify_one();
                }
                backoff = Duration::from_secs(1);
                for c in resp.commands {
                    if commands.send(c).await.is_err() {
                        return;
                    }
                }
                let current = loaded.and_then(|l| l.version);
                let refused = shared.refused_version.lock().ok().and_then(|r| r.clone());
                if opts.config == ConfigSource::Hub
                    && resp.config_version.is_some()
                    && resp.config_version != current
                    && resp.config_version != refused
                {
                    if let Err(e) = fetch_config(&shared, &opts).await {
                        tracing::error!(
                            "the hub's new configuration is refused; the last verified one keeps running: {e}{}",
                            e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default()
                        );
                    }
                }
            }
            Err(e) => {
                if !warned {
                    tracing::warn!("hub poll failed (retrying): {e}");
                    warned = true;
                } else {
                    tracing::debug!("hub poll failed: {e}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// When the scheduler would start runs, for `--dry-run`-style output and tests.
pub fn planned(
    cfg: &Config,
    host: &str,
    last: &dyn Fn(&str) -> Option<Timestamp>,
    now: &jiff::Zoned,
) -> Vec<(String, NextRun)> {
    units_of(cfg, host)
        .into_iter()
        .filter_map(|u| {
            let s = u.schedule?;
            let p = s
                .schedule
                .plan(last(&u.name), now.clone(), seed_for(&[host, &u.name]))?;
            Some((u.name, p))
        })
        .collect()
}
