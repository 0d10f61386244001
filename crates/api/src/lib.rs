//! The control API between Bulwark's agents, hub and CLI: versioned JSON over
//! HTTP(S), described by [`OPENAPI`] (served by the hub at
//! `/api/v1/openapi.json`, and checked against the server's responses in the
//! hub's tests).
//!
//! This crate is only the *contract*: serde types and path constants. The hub
//! serves it, the agent and `bulwark status`/`trigger` are its clients.
//!
//! Conventions:
//! - every time is an RFC 3339 UTC timestamp (`jiff::Timestamp`);
//! - every error response (4xx/5xx) has an [`ApiError`] body;
//! - authentication is `Authorization: Bearer TOKEN` — an *admin* token, or a
//!   *host* token that may only report and read for its own host;
//! - the hub never receives a repository password: runs carry summaries the
//!   agent computed, never keys.
//!
//! ```
//! use bulwark_api::{RunReport, RunStatus, RunKind, Trigger};
//! let json = r#"{"id":"7f3a9c0e5b1d4e2f8a6b0c1d2e3f4a5b","host":"nas","job":"photos","kind":"backup",
//!   "trigger":"schedule","started":"2026-11-23T02:00:00Z","finished":"2026-11-23T02:03:10Z",
//!   "status":"success"}"#;
//! let r: RunReport = serde_json::from_str(json)?;
//! assert_eq!(r.status, RunStatus::Success);
//! assert_eq!(r.kind, RunKind::Backup);
//! assert_eq!(r.trigger, Trigger::Schedule);
//! assert!(r.validate().is_ok());
//! # Ok::<(), serde_json::Error>(())
//! ```

mod redact;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use redact::redact_url;

/// Every control API path starts with this.
pub const PREFIX: &str = "/api/v1";

/// healthchecks-style pings live under this prefix: `/ping/{uuid}`,
/// `/ping/{uuid}/start`, `/ping/{uuid}/fail`, `/ping/{uuid}/{exit-status}`.
pub const PING_PREFIX: &str = "/ping";

/// The OpenAPI 3.1 document describing every path and type here.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Largest request body the hub accepts on the control API.
pub const MAX_BODY: usize = 1024 * 1024;

/// At most this many skipped files are listed in a report (the count is exact).
pub const MAX_SKIPPED_LISTED: usize = 100;

/// At most this many errors are listed in a report.
pub const MAX_ERRORS_LISTED: usize = 20;

/// Longest long-poll the hub holds (seconds).
pub const MAX_POLL_WAIT: u64 = 60;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, one line.
    pub error: String,
    /// How to fix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For 409 on leases and 429: try again after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Everything was backed up (or maintained).
    Success,
    /// A snapshot landed but some files could not be read.
    Partial,
    /// No usable result: a hook, a dump or the backup failed.
    Failed,
    /// Stopped by a signal (agent shutdown, Ctrl-C).
    Interrupted,
}

impl RunStatus {
    /// `success`, `partial`, `failed`, `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// `[jobs.NAME]`: a backup (with hooks and database sources).
    Backup,
    /// `[maintenance.NAME]`: forget + prune of a repository.
    Maintenance,
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Its schedule fired.
    Schedule,
    /// A persistent catch-up of a fire time missed while the host was down.
    CatchUp,
    /// `bulwark trigger` / `POST /api/v1/jobs/{job}/trigger`.
    Manual,
}

/// Counters of a backup run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// Files new since the parent snapshot.
    #[serde(default)]
    pub files_new: u64,
    /// Files changed.
    #[serde(default)]
    pub files_changed: u64,
    /// Files unchanged.
    #[serde(default)]
    pub files_unmodified: u64,
    /// Directories new.
    #[serde(default)]
    pub dirs_new: u64,
    /// Directories changed.
    #[serde(default)]
    pub dirs_changed: u64,
    /// Files processed in all.
    #[serde(default)]
    pub files_processed: u64,
    /// Bytes read from the sources.
    #[serde(default)]
    pub bytes_processed: u64,
    /// Bytes added to the repository (before compression).
    #[serde(default)]
    pub bytes_added: u64,
    /// Bytes added to the repository (compressed, encrypted).
    #[serde(default)]
    pub bytes_stored: u64,
    /// Snapshots removed by retention (maintenance).
    #[serde(default)]
    pub snapshots_removed: u64,
    /// Bytes freed by prune (maintenance).
    #[serde(default)]
    pub bytes_freed: u64,
}

/// The snapshot a backup run created (what the agent saw; the hub can't decrypt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// Full snapshot id (64 hex digits).
    pub id: String,
    /// Snapshot time.
    pub time: Timestamp,
    /// Repository name in the configuration.
    pub repository: String,
    /// Host name recorded in the snapshot.
    #[serde(default)]
    pub hostname: String,
    /// Backed-up paths.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A file a backup could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// Path as it would appear in the snapshot.
    pub path: String,
    /// Why.
    pub error: String,
}

/// One finished run, as an agent reports it (`POST /api/v1/agent/runs`).
///
/// `id` makes delivery idempotent: the agent may send the same report again
/// (after a timeout, from its durable queue) and the hub stores it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Chosen by the agent: 32 lowercase hex digits, unique per host.
    pub id: String,
    /// The reporting host (must be the token's host).
    pub host: String,
    /// Job (or maintenance) name.
    pub job: String,
    /// Backup or maintenance.
    pub kind: RunKind,
    /// Why it ran.
    pub trigger: Trigger,
    /// The trigger command this run answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<i64>,
    /// Start.
    pub started: Timestamp,
    /// End (not before `started`).
    pub finished: Timestamp,
    /// Outcome.
    pub status: RunStatus,
    /// Exit status of the job process, if it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The snapshot that landed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSummary>,
    /// Counters.
    #[serde(default)]
    pub stats: RunStats,
    /// Files not backed up (at most [`MAX_SKIPPED_LISTED`]).
    #[serde(default)]
    pub skipped: Vec<SkippedFile>,
    /// How many files were not backed up in all.
    #[serde(default)]
    pub skipped_count: u64,
    /// What went wrong (at most [`MAX_ERRORS_LISTED`], each one line).
    #[serde(default)]
    pub errors: Vec<String>,
}

impl RunReport {
    /// Checks the fields a server must not trust blindly; the message names
    /// the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.len() != 32
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("`id` must be 32 lowercase hex digits".into());
        }
        if !valid_name(&self.host) {
            return Err("`host` must be 1-64 letters, digits, `-` or `_`".into());
        }
        if !valid_name(&self.job) {
            return Err("`job` must be 1-64 letters, digits, `-` or `_`".into());
        }
        if self.finished < self.started {
            return Err("`finished` is before `started`".into());
        }
        if self.skipped.len() > MAX_SKIPPED_LISTED {
            return Err(format!(
                "`skipped` lists more than {MAX_SKIPPED_LISTED} files"
            ));
        }
        if self.errors.len() > MAX_ERRORS_LISTED {
            return Err(format!(
                "`errors` lists more than {MAX_ERRORS_LISTED} entries"
            ));
        }
        if let Some(s) = &self.snapshot {
            if s.id.len() != 64 || !s.id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("`snapshot.id` must be 64 hex digits".into());
            }
        }
        Ok(())
    }
}

/// A host, job, repository or ping name: 1-64 of `[A-Za-z0-9_-]`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The hub's answer to a stored report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The run's id on the hub.
    pub run: i64,
    /// True when this report had been stored before (nothing changed).
    pub duplicate: bool,
}

/// A job the agent is running right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningJob {
    /// Job name.
    pub job: String,
    /// Since when.
    pub started: Timestamp,
}

/// When the agent will run a job next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Job name.
    pub job: String,
    /// Planned start.
    pub at: Timestamp,
    /// It is a persistent catch-up.
    #[serde(default)]
    pub catch_up: bool,
}

/// The agent's long-poll (`POST /api/v1/agent/poll?wait=SECONDS`): its state
/// in, commands out. The hub answers at once when a command is pending,
/// else when one arrives or `wait` runs out (then with no commands).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollRequest {
    /// The agent's version.
    #[serde(default)]
    pub agent_version: String,
    /// The config version the agent runs (see [`AgentConfig::version`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
    /// Jobs running now.
    #[serde(default)]
    pub running: Vec<RunningJob>,
    /// The next run of each scheduled job.
    #[serde(default)]
    pub next_runs: Vec<PlannedRun>,
}

/// What the hub tells a polling agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResponse {
    /// Commands to carry out, oldest first. Each is delivered once.
    #[serde(default)]
    pub commands: Vec<Command>,
    /// The current version of this host's configuration on the hub (None
    /// when the hub serves no configuration); fetch it when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
}

/// A command for an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Its id (echoed as `RunReport::command_id`).
    pub id: i64,
    /// What to do.
    pub kind: CommandKind,
    /// The job (or maintenance) it concerns.
    pub job: String,
    /// When it was issued.
    pub created: Timestamp,
}

/// What a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Run the job now.
    Run,
}

/// `GET /api/v1/agent/config`: this host's part of the hub's `bulwark.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// The host it is for.
    pub host: String,
    /// Changes whenever the text does (a hash of it).
    pub version: String,
    /// TOML text: this host's jobs, maintenance and the repositories they
    /// use — paths to secret files only, never secrets.
    pub toml: String,
    /// The hub's whole configuration file, byte for byte as the
    /// administrator signed it: an agent that holds a `config_key` verifies
    /// [`AgentConfig::signature`] over it and extracts its own part itself
    /// (never trusting `toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The detached signature (`bulwark.toml.sig`) the hub found next to the
    /// file, relayed unchanged; None when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Where the hub reads the file: relative paths in it are relative to
    /// this file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Kinds of repository lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseKind {
    /// Shared: many backups may write to a repository at once.
    Backup,
    /// Exclusive: forget + prune, alone on the repository.
    Maintenance,
}

/// `POST /api/v1/agent/leases`: ask to work on a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// The repository, as its URL without credentials (all hosts must name
    /// it the same way).
    pub repository: String,
    /// Shared or exclusive.
    pub kind: LeaseKind,
    /// The job that wants it.
    pub job: String,
}

/// A granted lease (201). Refusals are 409 with `retry_after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Release it with `DELETE /api/v1/agent/leases/{id}`.
    pub id: String,
    /// It lapses by itself then (a crashed agent can't block a repository).
    pub expires: Timestamp,
}

/// A job's state, as `bulwark status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// The last run succeeded and the next one isn't overdue.
    Ok,
    /// Running now.
    Running,
    /// The last run failed (or was interrupted).
    Failed,
    /// The last run was partial.
    Partial,
    /// A run expected by its schedule has not been seen.
    Late,
    /// Never ran, and no run is overdue yet.
    Pending,
}

/// A host (`GET /api/v1/hosts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Name.
    pub name: String,
    /// Last time its agent polled or reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// Its agent's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// Seen within the last two poll intervals.
    pub online: bool,
    /// Its jobs and maintenance, by name.
    #[serde(default)]
    pub jobs: Vec<String>,
}

/// A run as the hub stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The run's id on the hub (`GET /api/v1/runs/{run}`); `id` is the
    /// agent's report id.
    pub run: i64,
    /// The agent's report, as received.
    #[serde(flatten)]
    pub report: RunReport,
    /// When the hub received it.
    pub received: Timestamp,
}

/// A job (`GET /api/v1/jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Name.
    pub name: String,
    /// The host that runs it.
    pub host: String,
    /// Backup or maintenance.
    pub kind: RunKind,
    /// Repository name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Its `OnCalendar` expression (None: runs only when triggered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// What it is now.
    pub state: JobState,
    /// Since when it is late (the fire time that wasn't followed by a run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_since: Option<Timestamp>,
    /// Running since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<Timestamp>,
    /// The agent's planned next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<Timestamp>,
    /// The last run, any status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Run>,
    /// When the last successful run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
}

/// Healthchecks-style ping check states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PingState {
    /// Never pinged.
    New,
    /// The last ping was a success and is within period + grace.
    Up,
    /// A `/start` arrived, no end yet.
    Started,
    /// The last ping was a failure.
    Down,
    /// No ping within period + grace.
    Late,
}

/// A ping check (`[pings.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingCheck {
    /// Name.
    pub name: String,
    /// What it is now.
    pub state: PingState,
    /// Last ping of any kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ping: Option<Timestamp>,
    /// Last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// Exit status of the last `/ping/{uuid}/{exit}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<i32>,
}

/// `GET /api/v1/status`: everything `bulwark status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// When the hub computed it.
    pub generated: Timestamp,
    /// Hosts.
    pub hosts: Vec<Host>,
    /// Jobs and maintenance.
    pub jobs: Vec<Job>,
    /// Ping checks.
    #[serde(default)]
    pub pings: Vec<PingCheck>,
}

/// `POST /api/v1/jobs/{job}/trigger` → 202.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triggered {
    /// The command's id.
    pub command: i64,
    /// The host that will run it.
    pub host: String,
    /// The job.
    pub job: String,
}

/// A snapshot as reported by the run that made it (`GET /api/v1/snapshots`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The host that made it.
    pub host: String,
    /// The job that made it.
    pub job: String,
    /// The run (id on the hub).
    pub run: i64,
    /// What the agent saw.
    #[serde(flatten)]
    pub snapshot: SnapshotSummary,
}

/// How much an alert matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing (e.g. a corrupt copy found and repaired).
    Info,
    /// Something needs attention soon (a target failing, an RPO exceeded).
    Warning,
    /// Data is at risk now (the hub's repositories shrank or vanished).
    Critical,
}

impl Severity {
    /// Its name in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most probe results an agent may send in one request.
pub const MAX_MONITOR_RESULTS: usize = 2000;

/// One probe result an agent measured (`POST /api/v1/agent/monitors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorResult {
    /// The monitor (`[monitors.NAME]`).
    pub monitor: String,
    /// Whether every expectation held.
    pub up: bool,
    /// How long the probe took, in milliseconds.
    pub latency_ms: f64,
    /// What was expected and what was seen, one line.
    pub message: String,
    /// Days left on the server's certificate (https and tls probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<f64>,
    /// When the probe finished.
    pub at: Timestamp,
}

/// A batch of probe results (`POST /api/v1/agent/monitors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorResults {
    /// The results, oldest first (at most [`MAX_MONITOR_RESULTS`]).
    pub results: Vec<MonitorResult>,
}

/// What the hub did with a batch of probe results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorResultsStored {
    /// Results counted.
    pub accepted: u32,
    /// Monitors the hub does not run on this host (results ignored): the
    /// agent's configuration is older than the hub's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// A monitor's confirmed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitorHealth {
    /// Not enough fresh results to say.
    Unknown,
    /// Up.
    Up,
    /// Down.
    Down,
}

impl MonitorHealth {
    /// `unknown`, `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// One vantage point's view of a probe monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VantageStatus {
    /// `hub` or an agent's host name.
    pub vantage: String,
    /// Its confirmed state (after the thresholds).
    pub state: MonitorHealth,
    /// Its last probe, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<Timestamp>,
    /// Whether the last probe was up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_up: Option<bool>,
    /// The last probe's latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The last probe's message.
    #[serde(default)]
    pub message: String,
    /// Days left on the certificate at the last probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<f64>,
    /// Its last result is too old to count towards the quorum.
    #[serde(default)]
    pub stale: bool,
}

/// A monitor as the hub sees it (`GET /api/v1/monitors`). Built-in monitors
/// that watch several things (a `backup` monitor's jobs, a `replication`
/// monitor's alerts) have one entry per thing, named in `item`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorStatus {
    /// The monitor (`[monitors.NAME]`).
    pub name: String,
    /// What it watches within the monitor: a job, `KIND SUBJECT` of a
    /// replication alert. None for probe and disk monitors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Its `type`: http, tcp, dns, tls, path, command, backup, replication, disk.
    pub kind: String,
    /// The confirmed state (after thresholds and quorum).
    pub state: MonitorHealth,
    /// Since when it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Its severity.
    pub severity: Severity,
    /// What the last evaluation saw.
    #[serde(default)]
    pub message: String,
    /// A maintenance window holds its alerts back now.
    #[serde(default)]
    pub silenced: bool,
    /// When the down notice went out (None: none sent for this outage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<Timestamp>,
    /// Probe monitors: each vantage point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vantages: Vec<VantageStatus>,
}

/// `GET /api/v1/monitors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorsView {
    /// Every monitor, by name then item.
    pub monitors: Vec<MonitorStatus>,
    /// False while the hub's connectivity canaries all fail (alerts are held
    /// back); true otherwise, and when none are configured.
    pub connectivity: bool,
    /// Notifications waiting to be delivered (retried with backoff).
    pub pending_notifications: u32,
}

/// An alert the hub raised (`GET /api/v1/alerts`). One alert is open per
/// (kind, subject) at a time: a condition that persists refreshes
/// `last_seen`, and the alert is resolved when the condition clears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id.
    pub id: i64,
    /// What kind of condition: `replication.failing`, `replication.rpo`,
    /// `replication.shrink`, `replication.delete_cap`, `replication.corrupt`.
    pub kind: String,
    /// What it is about: `TARGET/REPO`, a repository path or a job name.
    pub subject: String,
    /// How much it matters.
    pub severity: Severity,
    /// What happened and what to do, in one or two sentences.
    pub message: String,
    /// When it was raised.
    pub opened: Timestamp,
    /// When the condition was last seen.
    pub last_seen: Timestamp,
    /// When the condition cleared (None: still open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Timestamp>,
}

/// Replication of one hub repository to one target, as the hub recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRepoState {
    /// The target's name.
    pub target: String,
    /// The hub repository path.
    pub repo: String,
    /// When a copy pass last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Timestamp>,
    /// When a pass last completed with every file copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// The start of the last complete pass: the target held everything the
    /// hub held at that moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_sync_at: Option<Timestamp>,
    /// When a verify pass (re-hash of a sample) last completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<Timestamp>,
    /// Failed passes since the last complete one.
    pub consecutive_failures: u32,
    /// When the next retry is due after failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<Timestamp>,
    /// Why the last pass failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Files deleted at the hub, waiting out the quarantine at the target.
    pub pending_deletes: u64,
    /// Files copied over all passes.
    pub copied_files: u64,
    /// Bytes copied over all passes.
    pub copied_bytes: u64,
}

/// One place that holds a copy of a job's repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyPlace {
    /// `hub` or the target's name.
    pub place: String,
    /// `disk`, `cloud`, `peer` or `removable`.
    pub medium: String,
    /// Outside the building.
    pub offsite: bool,
    /// Holds every snapshot the hub holds (listed now).
    pub current: bool,
    /// Snapshots the hub holds that this copy lacks.
    pub missing_snapshots: u64,
    /// How far behind the hub this copy is, in seconds (0 when current;
    /// None when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<u64>,
    /// When the last complete copy pass finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// When the copy was last verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<Timestamp>,
    /// Why it could not be listed, or why the last pass failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The 3-2-1 line of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCopies {
    /// The job.
    pub job: String,
    /// The host that runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Its repository's path on the hub (None: not on this hub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Snapshots in that repository on the hub.
    pub snapshots: u64,
    /// Current copies: the hub and every target holding all its snapshots.
    pub copies: u64,
    /// Distinct media among the current copies.
    pub media: u64,
    /// Current copies outside the building.
    pub offsite: u64,
    /// Seconds between two scheduled runs (None: not scheduled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// How far the best offsite copy is behind the hub, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_lag_seconds: Option<u64>,
    /// Worst-case data loss if the building burns: interval + lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_rpo_seconds: Option<u64>,
    /// The job's declared `rpo`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<u64>,
    /// Every place, current or not.
    pub places: Vec<CopyPlace>,
    /// 3-2-1 and RPO violations, one sentence each.
    pub violations: Vec<String>,
}

/// `GET /api/v1/replication`: the 3-2-1 report (what `bulwark report` shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationReport {
    /// When it was computed.
    pub generated: Timestamp,
    /// One line per backup job.
    pub jobs: Vec<JobCopies>,
    /// Per target and repository: what replication recorded.
    pub targets: Vec<TargetRepoState>,
    /// Open alerts.
    pub alerts: Vec<Alert>,
}
