//! The hub's control plane: a versioned JSON API (`/api/v1/...`, described
//! by [`bulwark_api::OPENAPI`]) over a SQLite database in the state
//! directory, and healthchecks-style pings (`/ping/{uuid}`).
//!
//! - **Run history**: agents report every run (`POST /api/v1/agent/runs`);
//!   a report is stored exactly once per (host, report id).
//! - **Triggers**: `POST /api/v1/jobs/{job}/trigger` queues a command; the
//!   host's agent long-polls (`POST /api/v1/agent/poll?wait=S`) and gets
//!   each command once.
//! - **Leases** ([`lease`]): shared backups, exclusive maintenance, with
//!   writer preference.
//! - **Status**: hosts, jobs (with the late rule of [`state`]) and ping
//!   checks.
//! - **Tokens**: `Authorization: Bearer bwk_...`; admin tokens, or host
//!   tokens limited to their host ([`create_token`]).
//!
//! The configuration's view ([`ControlPlan`]) arrives through a
//! `tokio::sync::watch` channel, so the binary can replace it while the hub
//! runs. The names `api` and `ping` are reserved: those paths never reach
//! the repository server.

pub(crate) mod alerts;
pub(crate) mod db;
mod lease;
mod plan;
mod state;
mod token;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    net::IpAddr,
    path::PathBuf,
    pin::pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use bulwark_api::{
    ApiError, Host, Job, LeaseRequest, MonitorResults, PingCheck, PollRequest, PollResponse,
    RunReport, RunStatus, Status, Stored, Triggered, MAX_BODY, MAX_MONITOR_RESULTS, MAX_POLL_WAIT,
};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use jiff::{tz::TimeZone, Timestamp};
use subtle::ConstantTimeEq;
use tokio::sync::{watch, Notify};

pub use db::DbError;
pub use plan::{
    config_version, ControlPlan, Monitoring as MonitoringPlan, PlanHost, PlanJob, PlanPing,
};
pub use token::{create_token, list_tokens, revoke_token, TokenInfo, TokenKind, TOKEN_PREFIX};

use crate::handler::{Body, State};
use db::Db;
use lease::Leases;
use state::PingKind;

/// Leases one host may hold at once (a host runs a handful of jobs; a
/// crashed agent's leases lapse after the TTL).
pub(crate) const MAX_LEASES_PER_HOST: usize = 32;

/// Largest ping body stored (longer ones are truncated).
pub const MAX_PING_BODY: usize = 10 * 1024;

/// A host is online when it was seen this recently.
const ONLINE_WITHIN: Duration = Duration::from_secs(2 * MAX_POLL_WAIT + 30);

/// How the hub runs its control plane.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Where `control.sqlite` lives (created if missing).
    pub state_dir: PathBuf,
    /// The current plan; send a new one to replace it.
    pub plan: watch::Receiver<Arc<ControlPlan>>,
    /// How long a repository lease lasts unless released.
    pub lease_ttl: Duration,
    /// Replication to the plan's `[targets]` (None: the hub does not
    /// replicate by itself; `bulwark replicate` still can).
    pub replication: Option<crate::replication::ReplicationSettings>,
    /// Monitoring of the plan's `[monitors]` with notifications (None: the
    /// hub runs no monitors).
    pub monitoring: Option<crate::monitoring::MonitoringSettings>,
    /// How long run history is kept (None: forever); each job's newest
    /// runs and newest success are kept whatever their age. Pruned at
    /// start and every hour.
    pub run_history: Option<Duration>,
}

impl ControlConfig {
    /// Default run history: 90 days.
    pub const DEFAULT_RUN_HISTORY: Duration = Duration::from_secs(90 * 24 * 3600);
    /// Default lease lifetime: 12 hours.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(12 * 3600);

    /// A control plane in `state_dir` with `plan`; send new plans on the
    /// returned sender (dropping it keeps the plan fixed).
    pub fn new(
        state_dir: impl Into<PathBuf>,
        plan: ControlPlan,
    ) -> (Self, watch::Sender<Arc<ControlPlan>>) {
        let (tx, rx) = watch::channel(Arc::new(plan));
        (
            Self {
                state_dir: state_dir.into(),
                plan: rx,
                lease_ttl: Self::DEFAULT_LEASE_TTL,
                replication: None,
                monitoring: None,
                run_history: Some(Self::DEFAULT_RUN_HISTORY),
            },
            tx,
        )
    }
}

/// The running control plane.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) db: Db,
    plan: watch::Receiver<Arc<ControlPlan>>,
    /// How long run history is kept.
    run_history: Option<Duration>,
    /// The hub's replication, once it runs (for the report endpoint).
    replication: std::sync::OnceLock<std::sync::Weak<crate::replication::Replication>>,
    /// The hub's monitoring, once it runs.
    monitoring: std::sync::OnceLock<std::sync::Weak<crate::monitoring::Monitoring>>,
    /// The last plan whose jobs were recorded in the database.
    recorded: tokio::sync::Mutex<Option<Arc<ControlPlan>>>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    leases: Mutex<Leases>,
    shutdown: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Control {
    /// Opens the database and records the plan's jobs.
    pub(crate) async fn open(cfg: &ControlConfig) -> Result<Self, DbError> {
        let db = Db::open(cfg.state_dir.clone()).await?;
        let c = Self {
            db,
            plan: cfg.plan.clone(),
            run_history: cfg.run_history,
            recorded: tokio::sync::Mutex::new(None),
            wakers: Mutex::new(HashMap::new()),
            leases: Mutex::new(Leases::new(cfg.lease_ttl)),
            shutdown: watch::channel(false).0,
            replication: std::sync::OnceLock::new(),
            monitoring: std::sync::OnceLock::new(),
        };
        c.plan().await?;
        Ok(c)
    }

    /// The current plan, its jobs recorded (`known_since`) once per plan.
    async fn plan(&self) -> Result<Arc<ControlPlan>, DbError> {
        let plan = Arc::clone(&self.plan.borrow());
        let mut rec = self.recorded.lock().await;
        if rec.as_ref().is_none_or(|r| !Arc::ptr_eq(r, &plan)) {
            let p = Arc::clone(&plan);
            self.db
                .call(move |c| {
                    let tx = c.transaction()?;
                    let now = Timestamp::now();
                    for j in p.jobs.values() {
                        db::job_known(&tx, &j.host, &j.name, j.kind, now)?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            *rec = Some(Arc::clone(&plan));
        }
        Ok(plan)
    }

    fn waker(&self, host: &str) -> Arc<Notify> {
        Arc::clone(lock(&self.wakers).entry(host.to_owned()).or_default())
    }

    fn wake_all(&self) {
        for n in lock(&self.wakers).values() {
            n.notify_waiters();
        }
    }

    /// Makes open long-polls return now and new ones not wait.
    /// A receiver of the current plan.
    pub(crate) fn plan_receiver(&self) -> watch::Receiver<Arc<ControlPlan>> {
        self.plan.clone()
    }

    /// Makes `r` the replication the report endpoint asks.
    pub(crate) fn set_replication(&self, r: &Arc<crate::replication::Replication>) {
        let _ = self.replication.set(Arc::downgrade(r));
    }

    /// Makes `m` the monitoring the monitor endpoints use.
    pub(crate) fn set_monitoring(&self, m: &Arc<crate::monitoring::Monitoring>) {
        let _ = self.monitoring.set(Arc::downgrade(m));
    }

    fn monitoring(&self) -> Result<Arc<crate::monitoring::Monitoring>, Fail> {
        self.monitoring.get().and_then(std::sync::Weak::upgrade).ok_or_else(|| {
            fail(StatusCode::NOT_FOUND, "monitoring is not running on this hub")
                .hint("start the hub from a configuration file (`bulwark -c bulwark.toml hub`) or with `bulwark up`")
        })
    }

    /// Hosts and jobs with their states (no pings).
    pub(crate) async fn jobs_view(&self) -> Result<(Vec<Host>, Vec<Job>, Vec<PingCheck>), DbError> {
        self.view(None, false).await
    }

    pub(crate) fn shut_down(&self) {
        let _ = self.shutdown.send(true);
        self.wake_all();
    }

    /// Background work while the hub runs: wakes long-polls when the plan
    /// changes (so agents see the new config version), and logs jobs that
    /// become late.
    pub(crate) async fn background(self: Arc<Self>) {
        let mut plan_rx = self.plan.clone();
        let mut plan_open = true;
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        let mut prune = tokio::time::interval(Duration::from_secs(3600));
        let mut late: HashSet<(String, String)> = HashSet::new();
        loop {
            tokio::select! {
                r = plan_rx.changed(), if plan_open => {
                    if r.is_err() {
                        // fixed plan: only the periodic work remains
                        plan_open = false;
                        continue;
                    }
                    if let Err(e) = self.plan().await {
                        tracing::error!("control plane: {e}");
                    }
                    tracing::info!("control plane: configuration reloaded");
                    self.wake_all();
                }
                _ = tick.tick() => self.log_late(&mut late).await,
                _ = prune.tick(), if self.run_history.is_some() => self.prune_history().await,
            }
        }
    }

    /// Deletes run history older than `run_history` (each job's newest runs
    /// and newest success stay); runs at start and then hourly.
    async fn prune_history(&self) {
        let Some(keep) = self.run_history else {
            return;
        };
        let before = Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(keep).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(Timestamp::MIN);
        match self
            .db
            .call(move |c| db::prune_runs(c, before, db::KEEP_RUNS_PER_JOB))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                "run history: deleted {n} run(s) older than {} (run_history)",
                humantime::format_duration(keep)
            ),
            Err(e) => tracing::error!("run history: cannot prune: {e}"),
        }
    }

    async fn log_late(&self, seen: &mut HashSet<(String, String)>) {
        let Ok((_, jobs, _)) = self.view(None, false).await else {
            return;
        };
        let now: HashSet<(String, String)> = jobs
            .iter()
            .filter(|j| j.state == bulwark_api::JobState::Late)
            .map(|j| (j.host.clone(), j.name.clone()))
            .collect();
        for (host, job) in now.difference(seen) {
            tracing::warn!("job {job} on host {host} is late: a scheduled run has not been seen");
        }
        *seen = now;
    }

    /// Hosts, jobs and (for admins) pings as status shows them.
    async fn view(
        &self,
        only_host: Option<String>,
        with_pings: bool,
    ) -> Result<(Vec<Host>, Vec<Job>, Vec<PingCheck>), DbError> {
        let plan = self.plan().await?;
        let h = only_host.clone();
        let facts = self
            .db
            .read(move |c| db::facts(c, h.as_deref(), with_pings))
            .await?;
        Ok(build_view(
            &plan,
            facts,
            only_host.as_deref(),
            with_pings,
            &TimeZone::system(),
            Timestamp::now(),
        ))
    }
}

/// Combines plan and database into hosts, jobs and ping checks.
fn build_view(
    plan: &ControlPlan,
    facts: db::Facts,
    only_host: Option<&str>,
    with_pings: bool,
    zone: &TimeZone,
    now: Timestamp,
) -> (Vec<Host>, Vec<Job>, Vec<PingCheck>) {
    let visible = |h: &str| only_host.is_none_or(|o| o == h);
    let host_rows: HashMap<&str, &db::HostRow> =
        facts.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let online = |h: &db::HostRow| {
        h.last_seen
            .is_some_and(|t| now.as_millisecond() - t <= ONLINE_WITHIN.as_millis() as i64)
    };
    let mut job_rows: BTreeMap<(String, String), db::JobRow> = facts
        .jobs
        .into_iter()
        .map(|j| ((j.host.clone(), j.name.clone()), j))
        .collect();
    let mut jobs = Vec::new();
    let make = |name: &str,
                host: &str,
                kind: bulwark_api::RunKind,
                repository: Option<String>,
                schedule: Option<&bulwark_config::JobSchedule>,
                row: Option<db::JobRow>| {
        let hr = host_rows.get(host).copied();
        let hr_online = hr.filter(|h| online(h));
        let running_since = hr_online
            .and_then(|h| h.running.iter().find(|r| r.job == name))
            .map(|r| r.started);
        let next_run = hr
            .and_then(|h| h.next_runs.iter().find(|r| r.job == name))
            .map(|r| r.at);
        let facts = state::JobFacts {
            schedule,
            known_since: row.as_ref().map_or(now, |r| db::ts(r.known_since)),
            last_started: row.as_ref().and_then(|r| r.last_started).map(db::ts),
            last_status: row
                .as_ref()
                .and_then(|r| r.last_run.as_ref())
                .map(|r| r.report.status),
            running: running_since.is_some(),
        };
        let (state, late_since) = state::job_state(&facts, zone, now);
        let repository = repository.or_else(|| {
            row.as_ref()
                .and_then(|r| r.last_run.as_ref())
                .and_then(|r| r.report.snapshot.as_ref())
                .map(|s| s.repository.clone())
        });
        Job {
            name: name.to_owned(),
            host: host.to_owned(),
            kind,
            repository,
            schedule: schedule.map(|s| s.expression.clone()),
            state,
            late_since,
            running_since,
            next_run,
            last_success: row.as_ref().and_then(|r| r.last_success).map(db::ts),
            last_run: row.and_then(|r| r.last_run),
        }
    };
    for j in plan.jobs.values().filter(|j| visible(&j.host)) {
        let row = job_rows.remove(&(j.host.clone(), j.name.clone()));
        jobs.push(make(
            &j.name,
            &j.host,
            j.kind,
            j.repository.clone(),
            j.schedule.as_ref(),
            row,
        ));
    }
    for ((host, name), row) in job_rows {
        if visible(&host) {
            let kind = row.kind;
            jobs.push(make(&name, &host, kind, None, None, Some(row)));
        }
    }
    jobs.sort_by(|a, b| (&a.name, &a.host).cmp(&(&b.name, &b.host)));

    let mut host_names: BTreeSet<String> = plan.hosts.keys().cloned().collect();
    host_names.extend(facts.hosts.iter().map(|h| h.name.clone()));
    host_names.extend(jobs.iter().map(|j| j.host.clone()));
    let hosts = host_names
        .into_iter()
        .filter(|h| visible(h))
        .map(|name| {
            let hr = host_rows.get(name.as_str()).copied();
            Host {
                last_seen: hr.and_then(|h| h.last_seen).map(db::ts),
                agent_version: hr
                    .and_then(|h| h.agent_version.clone())
                    .filter(|v| !v.is_empty()),
                online: hr.is_some_and(online),
                jobs: jobs
                    .iter()
                    .filter(|j| j.host == name)
                    .map(|j| j.name.clone())
                    .collect(),
                name,
            }
        })
        .collect();

    let pings = if with_pings {
        plan.pings
            .values()
            .map(|p| {
                let f = facts.pings.get(&p.name).cloned().unwrap_or_default();
                let expect = match (&p.schedule, p.period) {
                    (Some(s), _) => Some(state::Expect::Schedule(s)),
                    (None, Some(d)) => Some(state::Expect::Period(d)),
                    (None, None) => None,
                };
                PingCheck {
                    name: p.name.clone(),
                    state: state::ping_state(
                        expect,
                        p.grace,
                        zone,
                        f.last.map(|(k, t)| (k, db::ts(t))),
                        now,
                    ),
                    last_ping: f.last.map(|(_, t)| db::ts(t)),
                    last_success: f.last_success.map(db::ts),
                    last_exit: f.last_exit,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    (hosts, jobs, pings)
}

// ------------------------------------------------------------------ routing

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    OpenApi,
    Status,
    Hosts,
    Host,
    Jobs,
    Job,
    Trigger,
    Runs,
    Run,
    Snapshots,
    Report,
    Poll,
    AgentConfig,
    LeaseCreate,
    LeaseDelete,
    Ping,
    PingStart,
    PingFail,
    PingExit,
    Replication,
    Alerts,
    AlertResolve,
    Monitors,
    AgentMonitors,
}

/// Every (method, path template) served, most specific template first.
const ROUTES: &[(&str, &str, Ep)] = &[
    ("GET", "/api/v1/openapi.json", Ep::OpenApi),
    ("GET", "/api/v1/status", Ep::Status),
    ("GET", "/api/v1/hosts", Ep::Hosts),
    ("GET", "/api/v1/hosts/{host}", Ep::Host),
    ("GET", "/api/v1/jobs", Ep::Jobs),
    ("GET", "/api/v1/jobs/{job}", Ep::Job),
    ("POST", "/api/v1/jobs/{job}/trigger", Ep::Trigger),
    ("GET", "/api/v1/runs", Ep::Runs),
    ("GET", "/api/v1/runs/{id}", Ep::Run),
    ("GET", "/api/v1/snapshots", Ep::Snapshots),
    ("GET", "/api/v1/replication", Ep::Replication),
    ("GET", "/api/v1/alerts", Ep::Alerts),
    ("POST", "/api/v1/alerts/{id}/resolve", Ep::AlertResolve),
    ("GET", "/api/v1/monitors", Ep::Monitors),
    ("POST", "/api/v1/agent/runs", Ep::Report),
    ("POST", "/api/v1/agent/monitors", Ep::AgentMonitors),
    ("POST", "/api/v1/agent/poll", Ep::Poll),
    ("GET", "/api/v1/agent/config", Ep::AgentConfig),
    ("POST", "/api/v1/agent/leases", Ep::LeaseCreate),
    ("DELETE", "/api/v1/agent/leases/{id}", Ep::LeaseDelete),
    ("GET", "/ping/{uuid}/start", Ep::PingStart),
    ("POST", "/ping/{uuid}/start", Ep::PingStart),
    ("HEAD", "/ping/{uuid}/start", Ep::PingStart),
    ("GET", "/ping/{uuid}/fail", Ep::PingFail),
    ("POST", "/ping/{uuid}/fail", Ep::PingFail),
    ("HEAD", "/ping/{uuid}/fail", Ep::PingFail),
    ("GET", "/ping/{uuid}/{exit_status}", Ep::PingExit),
    ("POST", "/ping/{uuid}/{exit_status}", Ep::PingExit),
    ("HEAD", "/ping/{uuid}/{exit_status}", Ep::PingExit),
    ("GET", "/ping/{uuid}", Ep::Ping),
    ("POST", "/ping/{uuid}", Ep::Ping),
    ("HEAD", "/ping/{uuid}", Ep::Ping),
];

/// The (method, path template) pairs the control plane serves.
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES.iter().map(|(m, p, _)| (*m, *p))
}

fn decode(seg: &str) -> Option<String> {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// True for paths the control plane owns (first segment `api` or `ping`,
/// also when percent-encoded): they never reach the repository server.
pub(crate) fn claims(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(decode(first).as_deref(), Some("api" | "ping"))
}

/// The path as logged: ping uuids are capabilities and are not logged.
pub(crate) fn log_path(path: &str) -> String {
    let rest = path.trim_start_matches('/');
    let mut segs = rest.split('/');
    if decode(segs.next().unwrap_or("")).as_deref() == Some("ping") {
        let mut out = String::from("/ping/…");
        for s in segs.skip(1) {
            out.push('/');
            out.push_str(s);
        }
        out
    } else {
        path.to_owned()
    }
}

enum Routed {
    Found(Ep, Vec<String>),
    NotFound,
    BadMethod(String),
}

fn route(method: &Method, path: &str) -> Routed {
    let Some(rest) = path.strip_prefix('/') else {
        return Routed::NotFound;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let mut chosen: Option<&str> = None;
    for (_, tpl, _) in ROUTES {
        let t: Vec<&str> = tpl[1..].split('/').collect();
        if t.len() == segs.len()
            && t.iter().zip(&segs).all(|(t, s)| {
                if t.starts_with('{') {
                    !s.is_empty()
                } else {
                    decode(s).as_deref() == Some(*t)
                }
            })
        {
            chosen = Some(tpl);
            break;
        }
    }
    let Some(tpl) = chosen else {
        return Routed::NotFound;
    };
    let params: Option<Vec<String>> = tpl[1..]
        .split('/')
        .zip(&segs)
        .filter(|(t, _)| t.starts_with('{'))
        .map(|(_, s)| decode(s))
        .collect();
    let Some(params) = params else {
        return Routed::NotFound;
    };
    let same: Vec<&(&str, &str, Ep)> = ROUTES.iter().filter(|(_, t, _)| *t == tpl).collect();
    match same.iter().find(|(m, _, _)| *m == method.as_str()) {
        Some((_, _, ep)) => Routed::Found(*ep, params),
        None => Routed::BadMethod(
            same.iter()
                .map(|(m, _, _)| *m)
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

// ---------------------------------------------------------------- responses

/// An error response: status and [`ApiError`] body.
#[derive(Debug)]
struct Fail {
    status: StatusCode,
    body: ApiError,
    allow: Option<String>,
}

fn fail(status: StatusCode, error: impl Into<String>) -> Fail {
    Fail {
        status,
        body: ApiError {
            error: error.into(),
            hint: None,
            retry_after: None,
        },
        allow: None,
    }
}

impl Fail {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.body.hint = Some(hint.into());
        self
    }
}

impl From<DbError> for Fail {
    fn from(e: DbError) -> Self {
        tracing::error!("{e}");
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the control database failed",
        )
        .hint("see the hub's log")
    }
}

fn full(data: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response<Body> {
    match serde_json::to_vec(v) {
        Ok(b) => bytes_response(status, "application/json", b),
        Err(e) => fail_response(fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the answer: {e}"),
        )),
    }
}

fn fail_response(f: Fail) -> Response<Body> {
    let body =
        serde_json::to_vec(&f.body).unwrap_or_else(|_| b"{\"error\":\"internal error\"}".to_vec());
    let mut r = bytes_response(f.status, "application/json", body);
    let h = r.headers_mut();
    if f.status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(s) = f.body.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    if let Some(a) = f.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        h.insert(header::ALLOW, a);
    }
    r
}

// ------------------------------------------------------------ request bits

/// Reads the body: at most `limit` bytes, else 413 (or, with `truncate`,
/// the first `limit` bytes).
async fn read_body(
    body: Incoming,
    headers: &HeaderMap,
    limit: usize,
    truncate: bool,
    idle: Duration,
) -> Result<Bytes, Fail> {
    let too_big = || {
        fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if !truncate && announced.is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let mut body = body;
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(fail(
                    StatusCode::REQUEST_TIMEOUT,
                    "the client stopped sending the body",
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                ))
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > limit {
                        if truncate {
                            let room = limit - out.len();
                            out.extend_from_slice(&data[..room]);
                            break;
                        }
                        return Err(too_big());
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
    Ok(Bytes::from(out))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Fail> {
    serde_json::from_slice(body).map_err(|e| {
        fail(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}"))
            .hint("see /api/v1/openapi.json for the expected body")
    })
}

fn query(req_query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in req_query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let d = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        out.insert(d(k), d(v));
    }
    out
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Admin,
    Host(String),
}

impl Who {
    fn host(&self) -> Option<&str> {
        match self {
            Who::Admin => None,
            Who::Host(h) => Some(h),
        }
    }
}

fn forbidden(msg: impl Into<String>) -> Fail {
    fail(StatusCode::FORBIDDEN, msg)
}

fn require_admin(who: &Who) -> Result<(), Fail> {
    match who {
        Who::Admin => Ok(()),
        Who::Host(h) => {
            Err(forbidden(format!("the token of host {h} may not do this"))
                .hint("use an admin token"))
        }
    }
}

fn require_host(who: &Who) -> Result<&str, Fail> {
    match who {
        Who::Host(h) => Ok(h),
        Who::Admin => Err(forbidden("only an agent's host token may do this")
            .hint("create one with `bulwark hub token create --host NAME`")),
    }
}

async fn authenticate(
    state: &State,
    ctl: &Control,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<Who, Fail> {
    if state.limiter.blocked(peer) {
        let mut f = fail(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed authentications; try again later",
        );
        f.body.retry_after = Some(60);
        return Err(f);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| crate::auth::parse_bearer(v.as_bytes()))
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(fail(StatusCode::UNAUTHORIZED, "authentication required")
            .hint("send `Authorization: Bearer TOKEN`; create a token with `bulwark hub token create`"));
    };
    let hash = token::hash(token);
    let h2 = hash.clone();
    let row = ctl.db.read(move |c| db::token_find(c, &h2)).await?;
    match row {
        Some(r) if bool::from(r.hash.as_bytes().ct_eq(hash.as_bytes())) => {
            let now = Timestamp::now();
            if db::token_touch_due(&r, now) {
                let id = r.id;
                ctl.db.call(move |c| db::token_touch(c, id, now)).await?;
            }
            Ok(match r.host {
                Some(h) => Who::Host(h),
                None => Who::Admin,
            })
        }
        _ => {
            crate::handler::auth_failed(state, peer, None);
            Err(fail(StatusCode::UNAUTHORIZED, "invalid or revoked token"))
        }
    }
}

// ---------------------------------------------------------------- handlers

/// Answers a request for a path [`claims`] returned true for.
pub(crate) async fn handle(state: &State, peer: IpAddr, req: Request<Incoming>) -> Response<Body> {
    let Some(ctl) = state.control.as_deref() else {
        return fail_response(
            fail(
                StatusCode::NOT_FOUND,
                "the control API is not enabled on this hub",
            )
            .hint("start the hub with a configuration file (-c bulwark.toml) or --state DIR"),
        );
    };
    match respond(state, ctl, peer, req).await {
        Ok(r) => r,
        Err(f) => fail_response(f),
    }
}

async fn respond(
    state: &State,
    ctl: &Control,
    peer: IpAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Fail> {
    let (ep, params) = match route(req.method(), req.uri().path()) {
        Routed::Found(ep, p) => (ep, p),
        Routed::NotFound => {
            return Err(
                fail(StatusCode::NOT_FOUND, "no such endpoint").hint("see /api/v1/openapi.json")
            )
        }
        Routed::BadMethod(allow) => {
            let mut f = fail(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed (allowed: {allow})"),
            );
            f.allow = Some(allow);
            return Err(f);
        }
    };
    let param = |i: usize| params.get(i).cloned().unwrap_or_default();
    let idle = state.config.body_idle_timeout;
    match ep {
        Ep::OpenApi => Ok(bytes_response(
            StatusCode::OK,
            "application/json",
            bulwark_api::OPENAPI,
        )),
        Ep::Ping | Ep::PingStart | Ep::PingFail | Ep::PingExit => {
            let (kind, exit) = match ep {
                Ep::PingStart => (PingKind::Start, None),
                Ep::PingFail => (PingKind::Fail, None),
                Ep::PingExit => {
                    let code: u8 = param(1).parse().map_err(|_| {
                        fail(StatusCode::NOT_FOUND, "no such ping action")
                            .hint("use /ping/UUID, /start, /fail or an exit status 0-255")
                    })?;
                    (
                        if code == 0 {
                            PingKind::Success
                        } else {
                            PingKind::Fail
                        },
                        Some(i32::from(code)),
                    )
                }
                _ => (PingKind::Success, None),
            };
            ping(ctl, req, &param(0), kind, exit, idle).await
        }
        _ => {
            let who = authenticate(state, ctl, peer, req.headers()).await?;
            api(ctl, who, ep, &params, req, idle).await
        }
    }
}

async fn ping(
    ctl: &Control,
    req: Request<Incoming>,
    uuid: &str,
    kind: PingKind,
    exit: Option<i32>,
    idle: Duration,
) -> Result<Response<Body>, Fail> {
    let plan = ctl.plan().await?;
    let Some(check) = plan.ping_by_uuid(uuid) else {
        return Err(fail(StatusCode::NOT_FOUND, "no ping check has this uuid")
            .hint("declare it as [pings.NAME] uuid = \"...\" in the hub's configuration"));
    };
    let name = check.name.clone();
    let (parts, body) = req.into_parts();
    let body = read_body(body, &parts.headers, MAX_PING_BODY, true, idle).await?;
    let now = Timestamp::now();
    ctl.db
        .call(move |c| db::insert_ping(c, &name, kind, exit, &body, now))
        .await?;
    Ok(bytes_response(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        "OK",
    ))
}

fn limit_of(q: &HashMap<String, String>) -> Result<u32, Fail> {
    match q.get("limit") {
        None => Ok(50),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n.min(1000)),
            _ => Err(fail(
                StatusCode::BAD_REQUEST,
                "`limit` must be a number from 1 to 1000",
            )),
        },
    }
}

fn run_filter(who: &Who, q: &HashMap<String, String>) -> Result<db::RunFilter, Fail> {
    let mut host = q.get("host").cloned().filter(|h| !h.is_empty());
    if let Some(own) = who.host() {
        if host.as_deref().is_some_and(|h| h != own) {
            return Err(forbidden(format!(
                "the token of host {own} may only read its own runs"
            )));
        }
        host = Some(own.to_owned());
    }
    let status = match q.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<RunStatus>(serde_json::Value::String(s.clone())).map_err(
                |_| {
                    fail(StatusCode::BAD_REQUEST, format!("unknown status {s:?}"))
                        .hint("one of success, partial, failed, interrupted")
                },
            )?,
        ),
    };
    Ok(db::RunFilter {
        host,
        job: q.get("job").cloned().filter(|j| !j.is_empty()),
        status,
        with_snapshot: false,
        limit: limit_of(q)?,
    })
}

async fn api(
    ctl: &Control,
    who: Who,
    ep: Ep,
    params: &[String],
    req: Request<Incoming>,
    idle: Duration,
) -> Result<Response<Body>, Fail> {
    let param = |i: usize| params.get(i).cloned().unwrap_or_default();
    let q = query(req.uri().query());
    match ep {
        Ep::Status => {
            let (hosts, jobs, pings) = ctl
                .view(who.host().map(str::to_owned), who == Who::Admin)
                .await?;
            Ok(json(
                StatusCode::OK,
                &Status {
                    generated: Timestamp::now(),
                    hosts,
                    jobs,
                    pings,
                },
            ))
        }
        Ep::Hosts => {
            let (hosts, _, _) = ctl.view(who.host().map(str::to_owned), false).await?;
            Ok(json(StatusCode::OK, &hosts))
        }
        Ep::Host => {
            let name = param(0);
            if who.host().is_some_and(|h| h != name) {
                return Err(forbidden("a host token may only read its own host"));
            }
            let (hosts, _, _) = ctl.view(Some(name.clone()), false).await?;
            hosts
                .into_iter()
                .find(|h| h.name == name)
                .map(|h| json(StatusCode::OK, &h))
                .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no host {name:?}")))
        }
        Ep::Jobs => {
            let (_, jobs, _) = ctl.view(who.host().map(str::to_owned), false).await?;
            Ok(json(StatusCode::OK, &jobs))
        }
        Ep::Job => {
            let name = param(0);
            let (_, jobs, _) = ctl.view(None, false).await?;
            let job = jobs
                .into_iter()
                .find(|j| j.name == name)
                .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no job {name:?}")))?;
            if who.host().is_some_and(|h| h != job.host) {
                return Err(forbidden("a host token may only read its own jobs"));
            }
            Ok(json(StatusCode::OK, &job))
        }
        Ep::Trigger => {
            require_admin(&who)?;
            let name = param(0);
            let plan = ctl.plan().await?;
            let Some(job) = plan.jobs.get(&name) else {
                return Err(fail(
                    StatusCode::NOT_FOUND,
                    format!("no job {name:?} in the hub's configuration"),
                )
                .hint("only jobs the hub's configuration assigns to a host can be triggered"));
            };
            let (host, jname) = (job.host.clone(), job.name.clone());
            let (h2, j2) = (host.clone(), jname.clone());
            let cmd = ctl
                .db
                .call(move |c| db::insert_command(c, &h2, &j2, Timestamp::now()))
                .await?;
            ctl.waker(&host).notify_waiters();
            tracing::info!("job {jname} on {host} triggered (command {})", cmd.id);
            Ok(json(
                StatusCode::ACCEPTED,
                &Triggered {
                    command: cmd.id,
                    host,
                    job: jname,
                },
            ))
        }
        Ep::Runs => {
            let f = run_filter(&who, &q)?;
            let runs = ctl.db.read(move |c| db::list_runs(c, &f)).await?;
            Ok(json(StatusCode::OK, &runs))
        }
        Ep::Run => {
            let id: i64 = param(0)
                .parse()
                .map_err(|_| fail(StatusCode::BAD_REQUEST, "a run id is a number"))?;
            let run = ctl.db.read(move |c| db::get_run(c, id)).await?;
            match run {
                Some(r) if who.host().is_none_or(|h| h == r.report.host) => {
                    Ok(json(StatusCode::OK, &r))
                }
                _ => Err(fail(StatusCode::NOT_FOUND, format!("no run {id}"))),
            }
        }
        Ep::Snapshots => {
            let mut f = run_filter(&who, &q)?;
            f.status = None;
            let snaps = ctl.db.read(move |c| db::list_snapshots(c, &f)).await?;
            Ok(json(StatusCode::OK, &snaps))
        }
        Ep::Report => {
            let host = require_host(&who)?.to_owned();
            let (parts, body) = req.into_parts();
            let body = read_body(body, &parts.headers, MAX_BODY, false, idle).await?;
            let report: RunReport = parse_json(&body, "run report")?;
            report
                .validate()
                .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("invalid run report: {e}")))?;
            if report.host != host {
                return Err(forbidden(format!(
                    "the token of host {host} may not report runs of host {}",
                    report.host
                )));
            }
            let plan = ctl.plan().await?;
            let mut planned = plan.jobs_of(&host).peekable();
            if planned.peek().is_some() && !plan.jobs_of(&host).any(|j| j.name == report.job) {
                return Err(fail(StatusCode::NOT_FOUND, format!("host {host} has no job {:?} in the hub's configuration", report.job))
                    .hint("the agent's configuration differs from the hub's; let the agent fetch /api/v1/agent/config"));
            }
            let (id, duplicate) = ctl
                .db
                .call(move |c| db::insert_run(c, &report, Timestamp::now()))
                .await?;
            let status = if duplicate {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json(status, &Stored { run: id, duplicate }))
        }
        Ep::Poll => {
            let host = require_host(&who)?.to_owned();
            let wait = match q.get("wait") {
                None => 0,
                Some(s) => s.parse::<u64>().map_err(|_| {
                    fail(
                        StatusCode::BAD_REQUEST,
                        "`wait` must be a whole number of seconds",
                    )
                })?,
            }
            .min(MAX_POLL_WAIT);
            let (parts, body) = req.into_parts();
            let body = read_body(body, &parts.headers, MAX_BODY, false, idle).await?;
            let poll: PollRequest = if body.iter().all(u8::is_ascii_whitespace) {
                PollRequest::default()
            } else {
                parse_json(&body, "poll request")?
            };
            let notify = ctl.waker(&host);
            let mut notified = pin!(notify.notified());
            notified.as_mut().enable();
            let mut plan_rx = ctl.plan.clone();
            plan_rx.borrow_and_update();
            let mut shutdown = ctl.shutdown.subscribe();
            let h2 = host.clone();
            let mut commands = ctl
                .db
                .call(move |c| {
                    let now = Timestamp::now();
                    db::host_seen(c, &h2, now, Some(&poll))?;
                    db::take_commands(c, &h2, now)
                })
                .await?;
            if commands.is_empty() && wait > 0 && !*shutdown.borrow_and_update() {
                let plan_changed = async {
                    if plan_rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep(Duration::from_secs(wait)) => {}
                    () = plan_changed => {}
                    _ = shutdown.changed() => {}
                }
                let h2 = host.clone();
                commands = ctl
                    .db
                    .call(move |c| {
                        // the agent was connected all along: seen now
                        let now = Timestamp::now();
                        db::host_seen(c, &h2, now, None)?;
                        db::take_commands(c, &h2, now)
                    })
                    .await?;
            }
            let plan = ctl.plan().await?;
            Ok(json(
                StatusCode::OK,
                &PollResponse {
                    commands,
                    config_version: plan.agent_config(&host).map(|c| c.version.clone()),
                },
            ))
        }
        Ep::AgentConfig => {
            let host = require_host(&who)?;
            let plan = ctl.plan().await?;
            plan.agent_config(host)
                .map(|c| json(StatusCode::OK, c))
                .ok_or_else(|| {
                    fail(StatusCode::NOT_FOUND, format!("the hub serves no configuration for host {host}"))
                        .hint(format!("declare [hosts.{host}] in the hub's configuration, or give the agent its own file"))
                })
        }
        Ep::LeaseCreate => {
            let host = require_host(&who)?.to_owned();
            let (parts, body) = req.into_parts();
            let body = read_body(body, &parts.headers, MAX_BODY, false, idle).await?;
            let lr: LeaseRequest = parse_json(&body, "lease request")?;
            if lr.repository.is_empty() || lr.repository.len() > 1024 {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    "`repository` must be 1-1024 characters",
                ));
            }
            if !bulwark_api::valid_name(&lr.job) {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    "`job` must be 1-64 letters, digits, `-` or `_`",
                ));
            }
            let plan = ctl.plan().await?;
            let Some(own) = plan.lease_keys.get(&host) else {
                return Err(fail(
                    StatusCode::NOT_FOUND,
                    format!("the hub's configuration names no jobs of host {host}, so it grants that host no leases"),
                )
                .hint(format!("declare the jobs of host {host} in the hub's configuration; until then the agent runs on the repository's own locks")));
            };
            if !own.contains(&lr.repository) {
                return Err(forbidden(format!(
                    "no job of host {host} uses the repository {:?}: a host may lease only the repositories of its own jobs in the hub's configuration",
                    lr.repository
                ))
                .hint("the agent's configuration differs from the hub's; let the agent fetch /api/v1/agent/config"));
            }
            let now = Timestamp::now();
            let mut leases = lock(&ctl.leases);
            let held = leases.held_by(&host, now);
            if held >= MAX_LEASES_PER_HOST {
                let mut f = fail(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("host {host} already holds {held} leases, the most one host may hold; release one (or wait until they lapse)"),
                );
                f.body.retry_after = Some(60);
                return Err(f);
            }
            let id = hex::encode(rand::random::<[u8; 16]>());
            let got = leases.acquire(&lr.repository, lr.kind, &host, id, now);
            drop(leases);
            match got {
                Ok((id, expires)) => {
                    tracing::info!(
                        "lease {id} on {} granted to {host} ({})",
                        lr.repository,
                        lr.job
                    );
                    Ok(json(
                        StatusCode::CREATED,
                        &bulwark_api::Lease { id, expires },
                    ))
                }
                Err(busy) => {
                    let mut f = fail(StatusCode::CONFLICT, busy.reason);
                    f.body.retry_after = Some(busy.retry_after);
                    Err(f)
                }
            }
        }
        Ep::LeaseDelete => {
            let host = require_host(&who)?;
            let id = param(0);
            if lock(&ctl.leases).release(&id, host, Timestamp::now()) {
                let mut r = Response::new(full(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                Ok(r)
            } else {
                Err(
                    fail(StatusCode::NOT_FOUND, "no such lease held by this host")
                        .hint("it may have expired"),
                )
            }
        }
        Ep::Replication => {
            require_admin(&who)?;
            let Some(r) = ctl.replication.get().and_then(std::sync::Weak::upgrade) else {
                return Err(fail(StatusCode::NOT_FOUND, "this hub does not replicate")
                    .hint("start the hub with a configuration file (-c) that declares [targets]"));
            };
            Ok(json(StatusCode::OK, &r.report(true).await?))
        }
        Ep::Alerts => {
            require_admin(&who)?;
            let open = match q.get("open").map(String::as_str) {
                None | Some("") => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                Some(o) => {
                    return Err(fail(
                        StatusCode::BAD_REQUEST,
                        format!("`open` must be true or false, not {o:?}"),
                    ))
                }
            };
            let limit = limit_of(&q)?;
            let list = ctl.db.read(move |c| alerts::list(c, open, limit)).await?;
            Ok(json(StatusCode::OK, &list))
        }
        Ep::AlertResolve => {
            require_admin(&who)?;
            let id: i64 = param(0)
                .parse()
                .map_err(|_| fail(StatusCode::BAD_REQUEST, "an alert id is a number"))?;
            match ctl
                .db
                .call(move |c| alerts::resolve_id(c, id, Timestamp::now()))
                .await?
            {
                Some(a) => {
                    tracing::info!(alert = a.id, kind = %a.kind, subject = %a.subject, "alert resolved by an administrator");
                    Ok(json(StatusCode::OK, &a))
                }
                None => Err(fail(StatusCode::NOT_FOUND, format!("no alert {id}"))),
            }
        }
        Ep::Monitors => {
            require_admin(&who)?;
            Ok(json(StatusCode::OK, &ctl.monitoring()?.view()))
        }
        Ep::AgentMonitors => {
            let host = require_host(&who)?.to_owned();
            let (parts, body) = req.into_parts();
            let body = read_body(body, &parts.headers, MAX_BODY, false, idle).await?;
            let batch: MonitorResults = parse_json(&body, "monitor results")?;
            if batch.results.len() > MAX_MONITOR_RESULTS {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{} results in one request; at most {MAX_MONITOR_RESULTS}",
                        batch.results.len()
                    ),
                )
                .hint("send them in several requests"));
            }
            if let Some(r) = batch
                .results
                .iter()
                .find(|r| !bulwark_api::valid_name(&r.monitor) || !r.latency_ms.is_finite())
            {
                return Err(fail(StatusCode::BAD_REQUEST, format!("invalid monitor result for {:?}: a monitor name is 1-64 letters, digits, `-` or `_`, and latency_ms a number", r.monitor)));
            }
            let stored = ctl.monitoring()?.agent_results(&host, batch.results);
            if !stored.ignored.is_empty() {
                tracing::debug!(host = %host, ignored = ?stored.ignored, "monitor results for monitors that do not run on this host");
            }
            Ok(json(StatusCode::OK, &stored))
        }
        Ep::OpenApi | Ep::Ping | Ep::PingStart | Ep::PingFail | Ep::PingExit => {
            Err(fail(StatusCode::NOT_FOUND, "no such endpoint"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn routes_match_the_openapi_document() {
        let doc: serde_json::Value = serde_json::from_str(bulwark_api::OPENAPI).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (m, _) in item.as_object().unwrap() {
                if ["get", "post", "put", "delete", "head", "patch", "options"]
                    .contains(&m.as_str())
                {
                    documented.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        let served: BTreeSet<(String, String)> = routes()
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
        assert_eq!(served, documented);
        for (_, p) in routes() {
            assert!(
                p.starts_with(bulwark_api::PREFIX) || p.starts_with(bulwark_api::PING_PREFIX),
                "{p}"
            );
        }
    }

    #[test]
    fn routing() {
        let ok = |m: Method, p: &str| match route(&m, p) {
            Routed::Found(ep, params) => Some((ep, params)),
            _ => None,
        };
        assert_eq!(
            ok(Method::GET, "/api/v1/status"),
            Some((Ep::Status, vec![]))
        );
        assert_eq!(
            ok(Method::POST, "/api/v1/jobs/photos/trigger"),
            Some((Ep::Trigger, vec!["photos".into()]))
        );
        assert_eq!(
            ok(Method::GET, "/ping/abc/start"),
            Some((Ep::PingStart, vec!["abc".into()]))
        );
        assert_eq!(
            ok(Method::HEAD, "/ping/abc/3"),
            Some((Ep::PingExit, vec!["abc".into(), "3".into()]))
        );
        assert_eq!(
            ok(Method::GET, "/%61pi/v1/status"),
            Some((Ep::Status, vec![]))
        );
        assert!(matches!(
            route(&Method::GET, "/api/v1/nope"),
            Routed::NotFound
        ));
        assert!(matches!(
            route(&Method::GET, "/api/v1/status/"),
            Routed::NotFound
        ));
        assert!(matches!(
            route(&Method::GET, "/api/v1/hosts/"),
            Routed::NotFound
        ));
        assert!(
            matches!(route(&Method::DELETE, "/api/v1/status"), Routed::BadMethod(a) if a == "GET")
        );
        assert!(claims("/api/v1/x") && claims("/ping/x") && claims("/%70ing/x") && claims("/api"));
        assert!(!claims("/apis/config") && !claims("/alice/config"));
        assert_eq!(log_path("/ping/secret-uuid/fail"), "/ping/…/fail");
        assert_eq!(log_path("/ping/secret-uuid"), "/ping/…");
    }
}
