//! Monitoring: `[monitors.NAME]`, `[[silences]]` and `[alerts]` (the
//! notifiers and routes are in `notify.rs`).
//!
//! ```toml
//! [monitors.nextcloud]
//! type = "http"
//! url = "https://cloud.example.org/status.php"
//! json_pointer = "/maintenance"
//! json_equals = false
//! on = ["hub", "vps"]
//! quorum = 2
//! severity = "critical"
//!
//! [monitors.backups]
//! type = "backup"
//! max_age = "26h"
//!
//! [[silences]]
//! monitors = ["nextcloud"]
//! schedule = "Sun 03:00"
//! duration = "1h"
//!
//! [alerts]
//! hub_ping_url_file = "/etc/bulwark/hc-ping.url"
//! connectivity = ["tcp:1.1.1.1:53", "http://192.168.1.1"]
//! ```
//!
//! The six probe types map one to one onto [`bulwark_monitor`]'s probe
//! specs, and each monitor is also checked with [`MonitorSpec::validate`].
//! The built-in types (`backup`, `replication`, `disk`) are evaluated by the
//! hub itself. Agents receive exactly the probe monitors that run on them
//! (see [`crate::extract_host`]); notifiers, routes, silences and `[alerts]`
//! stay with the hub.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::{IpAddr, SocketAddr},
    ops::Range,
    path::Path,
    time::Duration,
};

use bulwark_monitor::{
    CommandLine as ProbeCommand, CommandProbe, DnsProbe, HttpProbe, JsonCheck, MonitorSpec,
    PathCheck, PathProbe, Probe, Rcode, RecordType, SpecError, StatusRange, TcpProbe, TlsProbe,
    Vantage,
};
use bulwark_notify::{Event, Message, Route, Severity};
use bulwark_schedule::Calendar;
use jiff::{tz::TimeZone, Timestamp, Zoned};
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::{
    hub::{parse_size, RawSize},
    multihost::{self, ScheduleKeys},
    raw::{
        RawAlerts, RawCommandLine, RawMonitor, RawSilence, RawStatus, RawStatuses, RawStringMap,
    },
    read::{closest, Ctx, Doc, Entry, Item},
    validate::{secret, secret_file, valid_name, NAME_HINT},
    SecretError, SecretSource,
};

/// `max_age` of a `backup` monitor when not set.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(48 * 3600);
/// `remind_every` when neither the monitor nor `[alerts]` sets it.
pub const DEFAULT_REMIND_EVERY: Duration = Duration::from_secs(24 * 3600);
/// `hub_ping_interval` when not set.
pub const DEFAULT_HUB_PING_INTERVAL: Duration = Duration::from_secs(60);
/// `min_free` of a `disk` monitor when not set, in percent.
pub const DEFAULT_MIN_FREE_PERCENT: f64 = 10.0;
/// The port of a `tls` monitor when not set.
pub const DEFAULT_TLS_PORT: u16 = 443;

// ---------------------------------------------------------------- the model

/// The `type` of a monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MonitorKind {
    /// An HTTP(S) request ([`HttpProbe`]).
    Http,
    /// A TCP connect ([`TcpProbe`]).
    Tcp,
    /// A DNS query to a given server ([`DnsProbe`]).
    Dns,
    /// The certificate of a TLS port ([`TlsProbe`]).
    Tls,
    /// A local path: exists, is a mountpoint, readable ([`PathProbe`]).
    Path,
    /// A local command's exit code ([`CommandProbe`]).
    Command,
    /// Built in: backup freshness and failures of jobs.
    Backup,
    /// Built in: the hub's replication alerts (lag, RPO, failures).
    Replication,
    /// Built in: free space in the hub's data directory.
    Disk,
}

impl MonitorKind {
    /// Every kind, in the order of the docs.
    pub const ALL: [Self; 9] = [
        Self::Http,
        Self::Tcp,
        Self::Dns,
        Self::Tls,
        Self::Path,
        Self::Command,
        Self::Backup,
        Self::Replication,
        Self::Disk,
    ];

    /// The name used in `type = "…"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Path => "path",
            Self::Command => "command",
            Self::Backup => "backup",
            Self::Replication => "replication",
            Self::Disk => "disk",
        }
    }

    /// True for the six probe kinds (they run on vantage points, with
    /// timeouts and thresholds); false for the built-ins the hub evaluates.
    pub fn is_probe(self) -> bool {
        !matches!(self, Self::Backup | Self::Replication | Self::Disk)
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for MonitorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[monitors.NAME]`: one monitor, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorDecl {
    /// Its name: the subject of its messages, what routes and silences match.
    pub name: String,
    /// What it checks and how.
    pub check: MonitorCheck,
    /// The severity of its messages (`severity`, default warning).
    pub severity: Severity,
    /// While it stays down, remind this often (`remind_every`; `None`:
    /// `"off"`). Default: `[alerts] remind_every`, else 24 hours.
    pub remind_every: Option<Duration>,
    /// Send a notice when it is up again (`recovery`, default true).
    pub recovery: bool,
    /// `enabled` (default true). A disabled monitor is checked here but
    /// never runs, and agents don't receive it.
    pub enabled: bool,
}

impl MonitorDecl {
    /// Its `type`.
    pub fn kind(&self) -> MonitorKind {
        match &self.check {
            MonitorCheck::Probe(p) => match &p.spec.probe {
                Probe::Http(_) => MonitorKind::Http,
                Probe::Tcp(_) => MonitorKind::Tcp,
                Probe::Dns(_) => MonitorKind::Dns,
                Probe::Tls(_) => MonitorKind::Tls,
                Probe::Path(_) => MonitorKind::Path,
                Probe::Command(_) => MonitorKind::Command,
            },
            MonitorCheck::Backup(_) => MonitorKind::Backup,
            MonitorCheck::Replication(_) => MonitorKind::Replication,
            MonitorCheck::Disk(_) => MonitorKind::Disk,
        }
    }

    /// The probe spec of a probe monitor (without the headers that come
    /// from secrets: see [`ProbeCheck::load`]); `None` for the built-ins.
    pub fn spec(&self) -> Option<&MonitorSpec> {
        match &self.check {
            MonitorCheck::Probe(p) => Some(&p.spec),
            _ => None,
        }
    }

    /// Whether it runs at `vantage` (built-ins run on the hub only), enabled
    /// or not.
    pub fn runs_on(&self, vantage: &Vantage) -> bool {
        match &self.check {
            MonitorCheck::Probe(p) => p.spec.runs_on(vantage),
            _ => *vantage == Vantage::Hub,
        }
    }
}

/// What a monitor checks.
// (built once per file: the size of the probe variant doesn't matter)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorCheck {
    /// `http`, `tcp`, `dns`, `tls`, `path`, `command`: a probe run on its
    /// vantage points.
    Probe(ProbeCheck),
    /// `backup`: the newest successful run of each job is at most `max_age`
    /// old, and its last run did not fail.
    Backup(BackupCheck),
    /// `replication`: routes the hub's `replication.*` alerts.
    Replication(ReplicationCheck),
    /// `disk`: free space in the hub's data directory.
    Disk(DiskCheck),
}

/// A probe monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeCheck {
    /// The probe, interval, timeout, thresholds, vantage points (`on`) and
    /// quorum, exactly as [`bulwark_monitor`] runs it. For http it holds only
    /// the plain `headers`.
    pub spec: MonitorSpec,
    /// http only: headers whose values are secrets (`header_files`,
    /// `header_envs`), by header name.
    pub secret_headers: BTreeMap<String, SecretSource>,
}

impl ProbeCheck {
    /// The spec with the secret headers loaded into it. The result holds
    /// secrets: don't log it.
    pub fn load(&self) -> Result<MonitorSpec, BuildError> {
        let mut spec = self.spec.clone();
        if let Probe::Http(h) = &mut spec.probe {
            for (header, source) in &self.secret_headers {
                let value = source.load().map_err(|error| BuildError::Secret {
                    what: format!("header `{header}` of monitor `{}`", self.spec.name),
                    error,
                })?;
                h.headers
                    .insert(header.clone(), value.expose().trim().to_string());
            }
        }
        spec.validate().map_err(|error| BuildError::Monitor {
            monitor: spec.name.clone(),
            error,
        })?;
        Ok(spec)
    }
}

/// `type = "backup"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCheck {
    /// The jobs watched (`job` or `jobs`); empty: every job.
    pub jobs: Vec<String>,
    /// A job whose newest successful run is older is down (default 48h).
    pub max_age: Duration,
    /// How often the hub evaluates it (default 60s).
    pub interval: Duration,
}

/// `type = "replication"`: which of the hub's `replication.*` alerts this
/// monitor routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationCheck {
    /// Targets whose alerts (`replication.failing`, `.delete_cap`,
    /// `.corrupt` about `TARGET/REPO`) are routed.
    pub targets: Vec<String>,
    /// Jobs whose `replication.rpo` alerts are routed (each has an `rpo`).
    pub jobs: Vec<String>,
}

impl ReplicationCheck {
    /// Whether the hub's alert of `kind` (`replication.rpo`, …) about
    /// `subject` belongs to this monitor: with neither `targets` nor `jobs`
    /// every replication alert does; otherwise those about a listed target
    /// (`TARGET/REPO`) or, for `replication.rpo`, a listed job.
    pub fn covers(&self, kind: &str, subject: &str) -> bool {
        if !kind.starts_with("replication.") {
            return false;
        }
        if self.targets.is_empty() && self.jobs.is_empty() {
            return true;
        }
        if kind == "replication.rpo" {
            return self.jobs.iter().any(|j| j == subject);
        }
        subject
            .split_once('/')
            .is_some_and(|(target, _)| self.targets.iter().any(|t| t == target))
    }
}

/// `type = "disk"`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskCheck {
    /// Down when less is free.
    pub min_free: MinFree,
    /// How often the hub measures (default 60s).
    pub interval: Duration,
}

/// `min_free`: a share of the file system or an amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    /// Percent of the file system's size (0 < p < 100).
    Percent(f64),
    /// Bytes.
    Bytes(u64),
}

impl MinFree {
    /// True when `free` bytes of `total` is below the minimum.
    pub fn is_low(self, free: u64, total: u64) -> bool {
        match self {
            // sizes far below 2^53
            #[allow(clippy::cast_precision_loss)]
            Self::Percent(p) => (free as f64) < (total as f64) * p / 100.0,
            Self::Bytes(b) => free < b,
        }
    }
}

/// `[[silences]]`: a maintenance window in which matching monitors send
/// nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// Monitor names or globs (`*`, `?`, `[abc]`, `{a,b}`, as in routes);
    /// empty: every monitor.
    pub monitors: Vec<String>,
    /// When.
    pub window: SilenceWindow,
    /// Why (shown by the hub).
    pub reason: Option<String>,
}

/// When a silence holds.
#[derive(Debug, Clone, PartialEq)]
pub enum SilenceWindow {
    /// Once, from `from` (inclusive) until `until` (exclusive).
    Once {
        /// Start.
        from: Timestamp,
        /// End (after `from`).
        until: Timestamp,
    },
    /// Each time `calendar` fires, for `duration`.
    Recurring {
        /// The `schedule` (same syntax as jobs'; local time unless it names a zone).
        calendar: Calendar,
        /// How long each window lasts (not zero).
        duration: Duration,
    },
}

impl Silence {
    /// Whether the window holds at `at`; a recurring calendar without a
    /// zone of its own is read in the system's time zone.
    pub fn active(&self, at: Timestamp) -> bool {
        self.active_in(&at.to_zoned(TimeZone::system()))
    }

    /// Whether the window holds at `at`; a recurring calendar without a
    /// zone of its own is read in `at`'s zone. Pure.
    pub fn active_in(&self, at: &Zoned) -> bool {
        let now = at.timestamp();
        match &self.window {
            SilenceWindow::Once { from, until } => *from <= now && now < *until,
            SilenceWindow::Recurring { calendar, duration } => {
                // The first start after `now - duration` is within the window iff it is not after `now`.
                let Ok(start) = now.checked_sub(*duration) else {
                    return false;
                };
                calendar
                    .next_after(start.to_zoned(at.time_zone().clone()))
                    .is_some_and(|fire| fire.timestamp() <= now)
            }
        }
    }

    /// Whether it applies to the monitor called `monitor`.
    pub fn covers(&self, monitor: &str) -> bool {
        self.monitors.is_empty() || glob_route(&self.monitors).matches(&subject(monitor))
    }

    /// Whether it silences `monitor` at `at`.
    pub fn silences(&self, monitor: &str, at: Timestamp) -> bool {
        self.covers(monitor) && self.active(at)
    }
}

/// A route that matches `patterns` (used to match monitor names with the
/// same glob rules as routes).
fn glob_route(patterns: &[String]) -> Route {
    Route {
        notifiers: Vec::new(),
        subjects: patterns.to_vec(),
        min_severity: Severity::Info,
    }
}

fn subject(name: &str) -> Message {
    Message::new(Event::Alert, Severity::Critical, name, "", "")
}

/// `[alerts]`: settings of the hub's alerting.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    /// `hub_ping_url_file` / `hub_ping_url_env`: a healthchecks.io-style
    /// ping URL the hub pings every `hub_ping_interval` (its dead-man's
    /// switch). A secret.
    pub hub_ping: Option<SecretSource>,
    /// How often the hub pings (default 1 minute).
    pub hub_ping_interval: Duration,
    /// Canaries: while none of them answers, the hub takes its own network
    /// to be down and holds back alerts ([`bulwark_monitor::connectivity_lost`]).
    /// `tcp:HOST:PORT` becomes a [`TcpProbe`]; an `http(s)://` URL an
    /// [`HttpProbe`] that takes any HTTP answer, without certificate checks.
    /// Empty (the default): never hold back.
    pub connectivity: Vec<Probe>,
    /// The default `remind_every` of monitors (default 24 hours; `None`:
    /// `"off"`).
    pub remind_every: Option<Duration>,
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            hub_ping: None,
            hub_ping_interval: DEFAULT_HUB_PING_INTERVAL,
            connectivity: Vec::new(),
            remind_every: Some(DEFAULT_REMIND_EVERY),
        }
    }
}

impl Alerts {
    /// The hub's pinger, with its URL loaded and checked; `None` without
    /// `hub_ping_url_*`.
    pub fn pinger(&self) -> Result<Option<bulwark_notify::Pinger>, BuildError> {
        let Some(source) = &self.hub_ping else {
            return Ok(None);
        };
        let url = source.load().map_err(|error| BuildError::Secret {
            what: "the hub's ping URL ([alerts])".into(),
            error,
        })?;
        let pinger = bulwark_notify::Pinger::new(url.expose().trim());
        pinger.validate().map_err(BuildError::Notify)?;
        Ok(Some(pinger))
    }
}

/// A notifier, pinger or monitor could not be built from the configuration
/// (its secrets loaded). Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A secret could not be loaded.
    #[error("cannot load the secret of {what}: {error}")]
    Secret {
        /// Whose secret (`notifier `phone` (token_file)`).
        what: String,
        /// Why.
        error: SecretError,
    },
    /// `bulwark_notify` refused the settings with their secrets (a token with
    /// a newline, a URL file that holds no URL).
    #[error("{0}")]
    Notify(bulwark_notify::NotifyError),
    /// `bulwark_monitor` refused the spec with its secret headers.
    #[error("monitor `{monitor}`: {error}")]
    Monitor {
        /// The monitor.
        monitor: String,
        /// What is wrong.
        error: SpecError,
    },
}

// ---------------------------------------------------------------- validation

/// Names declared elsewhere in the file (even when their tables have
/// problems, so a reference to them is not reported on top).
pub(crate) struct Known {
    /// `[hosts.NAME]`.
    pub hosts: BTreeSet<String>,
    /// `[jobs.NAME]`, and whether each sets `rpo`.
    pub jobs: BTreeMap<String, bool>,
    /// `[targets.NAME]`.
    pub targets: BTreeSet<String>,
}

impl Known {
    pub(crate) fn of(doc: &Doc) -> Self {
        Self {
            hosts: doc.hosts.iter().map(|e| e.name.get_ref().clone()).collect(),
            jobs: doc
                .jobs
                .iter()
                // (a job whose table has problems is taken to have one: no noise on top)
                .map(|e| (e.name.get_ref().clone(), !e.clean || e.raw.as_ref().is_none_or(|r| r.rpo.is_some())))
                .collect(),
            targets: doc
                .targets
                .iter()
                .map(|e| e.name.get_ref().clone())
                .collect(),
        }
    }
}

/// The monitoring part of the model.
#[derive(Default)]
pub(crate) struct Monitoring {
    pub monitors: BTreeMap<String, MonitorDecl>,
    pub notifiers: BTreeMap<String, crate::NotifierDecl>,
    pub routes: Vec<Route>,
    pub silences: Vec<Silence>,
    pub alerts: Alerts,
}

/// Takes the monitoring sections out of `doc` and validates them.
pub(crate) fn validate(cx: &mut Ctx<'_>, doc: &mut Doc, known: &Known, base: &Path) -> Monitoring {
    let alerts = doc
        .alerts
        .take()
        .map(|a| alerts(cx, a, base))
        .unwrap_or_default();
    let mut entries = std::mem::take(&mut doc.monitors);
    entries.sort_by_key(|e| e.name.span().start);
    let monitor_names: BTreeSet<String> =
        entries.iter().map(|e| e.name.get_ref().clone()).collect();
    let mut monitors = BTreeMap::new();
    for entry in entries {
        if let Some(m) = monitor(cx, entry, known, &alerts, base) {
            monitors.insert(m.name.clone(), m);
        }
    }
    let (notifiers, routes) = crate::notify::validate(
        cx,
        std::mem::take(&mut doc.notifiers),
        doc.routes_given.then(|| std::mem::take(&mut doc.routes)),
        &monitor_names,
        base,
    );
    let silences = std::mem::take(&mut doc.silences)
        .into_iter()
        .filter_map(|s| silence(cx, s, &monitor_names))
        .collect();
    Monitoring {
        monitors,
        notifiers,
        routes,
        silences,
        alerts,
    }
}

/// Monitor names or globs (`monitors` in routes and silences): valid globs,
/// and a name without wildcards must be a declared monitor. Empty list:
/// reported; `what` is "route" or "silence".
pub(crate) fn monitor_patterns(
    cx: &mut Ctx<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    what: &str,
    monitors: &BTreeSet<String>,
) -> Vec<String> {
    if list.get_ref().is_empty() {
        cx.err_at(
            list,
            "`monitors` is empty",
            format!("remove it to make the {what} apply to every monitor, or list monitor names or globs, e.g. monitors = [\"web-*\"]"),
        );
        return Vec::new();
    }
    let known: Vec<&str> = monitors.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for p in list.get_ref() {
        let v = p.get_ref();
        if let Err(e) = glob_route(std::slice::from_ref(v)).validate() {
            cx.err_at(
                p,
                format!("`{v}` is not a valid pattern: {}", e.reason),
                "use monitor names or globs: `*`, `?`, `[abc]`, `{a,b}`",
            );
        } else if !v.contains(['*', '?', '[', ']', '{', '}']) && !monitors.contains(v) {
            let hint = match closest(v, &known) {
                Some(best) => format!("did you mean `{best}`? (a name without `*` must be a declared [monitors.NAME])"),
                None if known.is_empty() => "no monitors are declared; declare one with [monitors.NAME]".to_string(),
                None => format!("declared monitors: {}; or use a glob such as \"{v}*\"", known.join(", ")),
            };
            cx.err_at(
                p,
                format!("the {what} names monitor `{v}`, which is not declared"),
                hint,
            );
        }
        out.push(v.clone());
    }
    out
}

pub(crate) fn severity(cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<Severity> {
    match v.get_ref().as_str() {
        "info" => Some(Severity::Info),
        "warning" => Some(Severity::Warning),
        "critical" => Some(Severity::Critical),
        other => {
            let hint = match closest(
                &other.to_ascii_lowercase(),
                &["info", "warning", "critical"],
            ) {
                Some(best) => format!(
                    "did you mean `{best}`? ({key} = \"info\", \"warning\" or \"critical\")"
                ),
                None => format!("use {key} = \"info\", \"warning\" or \"critical\""),
            };
            cx.err_at(v, format!("`{other}` is not a severity"), hint);
            None
        }
    }
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Header names whose values are credentials: they may only come from
/// `header_files` / `header_envs`.
pub(crate) fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api-key",
        "apikey",
        "api_key",
        "-key",
        "auth",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// `headers`, `header_files` and `header_envs` of an http monitor or a
/// webhook: plain headers (none of them a credential), secret headers, each
/// header name once.
pub(crate) fn headers(
    cx: &mut Ctx<'_>,
    plain: Option<&Spanned<RawStringMap>>,
    files: Option<&Spanned<RawStringMap>>,
    envs: Option<&Spanned<RawStringMap>>,
    base: &Path,
) -> (BTreeMap<String, String>, BTreeMap<String, SecretSource>) {
    let mut seen: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut twice = |cx: &mut Ctx<'_>, k: &Spanned<String>, key: &'static str| -> bool {
        let lower = k.get_ref().to_ascii_lowercase();
        if let Some(first) = seen.get(&lower) {
            cx.err_at(
                k,
                format!("header `{}` is set twice (also in `{first}`)", k.get_ref()),
                "keep one of them",
            );
            return true;
        }
        seen.insert(lower, key);
        false
    };
    let mut out = BTreeMap::new();
    for (k, v) in plain.map(|p| p.get_ref().iter()).into_iter().flatten() {
        if twice(cx, k, "headers") {
            continue;
        }
        if secret_header(k.get_ref()) {
            // never echo the value
            cx.err_at(
                k,
                format!("the value of header `{}` is a credential, and secrets are never written in bulwark.toml", k.get_ref()),
                format!(
                    "put the whole value (e.g. `Bearer …`) in a file (mode 0600) and set header_files = {{ \"{0}\" = \"/etc/bulwark/{1}.header\" }}, or name an environment variable with header_envs = {{ \"{0}\" = \"VARIABLE\" }}",
                    k.get_ref(),
                    k.get_ref().to_ascii_lowercase()
                ),
            );
            continue;
        }
        out.insert(k.get_ref().clone(), v.get_ref().clone());
    }
    let mut secrets = BTreeMap::new();
    for (k, v) in files.map(|p| p.get_ref().iter()).into_iter().flatten() {
        if !twice(cx, k, "header_files") {
            if let Some(p) = secret_file(cx, v, "header_files", base) {
                secrets.insert(k.get_ref().clone(), SecretSource::File(p));
            }
        }
    }
    for (k, v) in envs.map(|p| p.get_ref().iter()).into_iter().flatten() {
        if twice(cx, k, "header_envs") {
            continue;
        }
        if valid_env_name(v.get_ref()) {
            secrets.insert(k.get_ref().clone(), SecretSource::Env(v.get_ref().clone()));
        } else {
            cx.err_at(
                v,
                "a value in `header_envs` must be the name of an environment variable (letters, digits and `_`)",
                format!(
                    "put the header value in a variable and name it, e.g. header_envs = {{ \"{}\" = \"APP_AUTH\" }}",
                    k.get_ref()
                ),
            );
        }
    }
    (out, secrets)
}

/// The `http://` / `https://` URL of a monitor, connectivity canary or
/// notifier: the right scheme, a host, no `user:password@` (never echoed).
pub(crate) fn http_url(
    cx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    example: &str,
    credentials_hint: &str,
) -> bool {
    let url = v.get_ref().trim();
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        cx.err_at(
            v,
            format!("`{key}` must start with http:// or https://"),
            format!("e.g. {key} = \"{example}\""),
        );
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        cx.err_at(
            v,
            format!("`{key}` must not contain a user name or password"),
            credentials_hint.to_string(),
        );
        return false;
    }
    if authority.is_empty() || authority.starts_with(':') {
        cx.err_at(
            v,
            format!("`{key}` has no host"),
            format!("e.g. {key} = \"{example}\""),
        );
        return false;
    }
    true
}

/// An integer key in `range`.
fn int<T: TryFrom<i64>>(
    cx: &mut Ctx<'_>,
    v: &Spanned<i64>,
    key: &str,
    range: (i64, i64),
    example: &str,
) -> Option<T> {
    let n = *v.get_ref();
    if n < range.0 || n > range.1 {
        // (a huge upper bound is only the type's limit: not worth naming unless crossed)
        let what = match range {
            (min, max) if max > 1_000_000 && n < min => format!("at least {min}"),
            (_, max) if max > 1_000_000 => format!("at most {max}"),
            (min, max) => format!("between {min} and {max}"),
        };
        cx.err_at(
            v,
            format!("`{key}` must be {what}"),
            format!("e.g. {example}"),
        );
        return None;
    }
    T::try_from(n).ok()
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The keys that only some types take, with their spans, in file order.
fn typed_keys(r: &RawMonitor) -> Vec<(&'static str, Range<usize>)> {
    fn s<T>(v: Option<&Spanned<T>>) -> Option<Range<usize>> {
        v.map(Spanned::span)
    }
    let mut keys: Vec<(&'static str, Range<usize>)> = [
        ("interval", s(r.interval.as_ref())),
        ("timeout", s(r.timeout.as_ref())),
        ("failure_threshold", s(r.failure_threshold.as_ref())),
        ("success_threshold", s(r.success_threshold.as_ref())),
        ("on", s(r.on.as_ref())),
        ("quorum", s(r.quorum.as_ref())),
        ("url", s(r.url.as_ref())),
        ("method", s(r.method.as_ref())),
        ("headers", s(r.headers.as_ref())),
        ("header_files", s(r.header_files.as_ref())),
        ("header_envs", s(r.header_envs.as_ref())),
        ("body", s(r.body.as_ref())),
        ("expected_status", s(r.expected_status.as_ref())),
        ("body_contains", s(r.body_contains.as_ref())),
        ("json_pointer", s(r.json_pointer.as_ref())),
        ("json_equals", s(r.json_equals.as_ref())),
        ("max_response_time", s(r.max_response_time.as_ref())),
        ("min_cert_days", s(r.min_cert_days.as_ref())),
        ("follow_redirects", s(r.follow_redirects.as_ref())),
        ("ca_file", s(r.ca_file.as_ref())),
        ("insecure", s(r.insecure.as_ref())),
        ("host", s(r.host.as_ref())),
        ("port", s(r.port.as_ref())),
        ("server_name", s(r.server_name.as_ref())),
        ("min_days", s(r.min_days.as_ref())),
        ("server", s(r.server.as_ref())),
        ("name", s(r.name.as_ref())),
        ("record", s(r.record.as_ref())),
        ("expect", s(r.expect.as_ref())),
        ("rcode", s(r.rcode.as_ref())),
        ("path", s(r.path.as_ref())),
        ("check", s(r.check.as_ref())),
        ("command", s(r.command.as_ref())),
        ("exit_code", s(r.exit_code.as_ref())),
        ("job", s(r.job.as_ref())),
        ("jobs", s(r.jobs.as_ref())),
        ("max_age", s(r.max_age.as_ref())),
        ("targets", s(r.targets.as_ref())),
        ("min_free", s(r.min_free.as_ref())),
    ]
    .into_iter()
    .filter_map(|(k, span)| span.map(|span| (k, span)))
    .collect();
    keys.sort_by_key(|(_, span)| span.start);
    keys
}

/// Whether a type-specific key applies to `kind`.
fn applies(key: &str, kind: MonitorKind) -> bool {
    use MonitorKind as K;
    match key {
        "url" | "method" | "headers" | "header_files" | "header_envs" | "body"
        | "expected_status" | "body_contains" | "json_pointer" | "json_equals"
        | "max_response_time" | "min_cert_days" | "follow_redirects" => kind == K::Http,
        "ca_file" | "insecure" => matches!(kind, K::Http | K::Tls),
        "host" | "port" => matches!(kind, K::Tcp | K::Tls),
        "server_name" | "min_days" => kind == K::Tls,
        "server" | "name" | "record" | "expect" | "rcode" => kind == K::Dns,
        "path" | "check" => kind == K::Path,
        "command" | "exit_code" => kind == K::Command,
        "job" | "max_age" => kind == K::Backup,
        "jobs" => matches!(kind, K::Backup | K::Replication),
        "targets" => kind == K::Replication,
        "min_free" => kind == K::Disk,
        "timeout" | "failure_threshold" | "success_threshold" | "on" | "quorum" => kind.is_probe(),
        "interval" => kind != K::Replication,
        _ => true,
    }
}

/// Refuses the keys that don't apply to `kind`.
fn foreign_keys(cx: &mut Ctx<'_>, r: &RawMonitor, kind: MonitorKind) {
    for (key, span) in typed_keys(r) {
        if applies(key, kind) {
            continue;
        }
        let hint = match (kind, key) {
            (MonitorKind::Replication, "interval") => {
                "a replication monitor routes the alerts the hub raises as it replicates; it has no interval of its own; remove it".to_string()
            }
            (k, "timeout" | "failure_threshold" | "success_threshold" | "on" | "quorum") if !k.is_probe() => format!(
                "a `{k}` monitor is evaluated by the hub itself, from what it knows: it has no probe timeout, thresholds or vantage points; remove it"
            ),
            _ => {
                let kinds: Vec<String> =
                    MonitorKind::ALL.iter().filter(|k| applies(key, **k)).map(|k| format!("`{k}`")).collect();
                format!("`{key}` applies to {} monitors; remove it, or change the type", kinds.join(", "))
            }
        };
        cx.err(
            span,
            format!("`{key}` does not apply to a `{kind}` monitor"),
            Some(hint),
        );
    }
}

/// `[monitors.NAME]`.
fn monitor(
    cx: &mut Ctx<'_>,
    entry: Entry<RawMonitor>,
    known: &Known,
    alerts: &Alerts,
    base: &Path,
) -> Option<MonitorDecl> {
    let Entry { name, raw, clean } = entry;
    let before = cx.diags.len();
    let mname = name.get_ref().clone();
    if !valid_name(&mname) {
        cx.err_at(
            &name,
            format!("`{mname}` is not a valid monitor name"),
            NAME_HINT,
        );
    }
    let r = raw?;
    let kinds: Vec<&str> = MonitorKind::ALL.iter().map(|k| k.as_str()).collect();
    let kind = match &r.kind {
        None => {
            if clean {
                cx.err_at(
                    &name,
                    format!("monitor `{mname}` has no `type`"),
                    format!(
                        "add type = \"http\" (or {})",
                        kinds[1..]
                            .iter()
                            .map(|k| format!("\"{k}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            None
        }
        Some(t) => match MonitorKind::parse(t.get_ref()) {
            Some(k) => Some(k),
            None => {
                let hint = match closest(t.get_ref(), &kinds) {
                    Some(best) => format!("did you mean `{best}`? (types: {})", kinds.join(", ")),
                    None => format!("types: {}", kinds.join(", ")),
                };
                cx.err_at(t, format!("`{}` is not a monitor type", t.get_ref()), hint);
                None
            }
        },
    };
    let severity = r
        .severity
        .as_ref()
        .map_or(Some(Severity::Warning), |s| severity(cx, s, "severity"));
    let remind_every = match &r.remind_every {
        None => Some(alerts.remind_every),
        Some(v) => remind(cx, v),
    };
    let recovery = r.recovery.as_ref().is_none_or(|v| *v.get_ref());
    let enabled = r.enabled.as_ref().is_none_or(|v| *v.get_ref());
    let kind = kind?;
    foreign_keys(cx, &r, kind);
    let after_keys = cx.diags.len();
    let check = match kind {
        MonitorKind::Backup => backup(cx, &r, known).map(MonitorCheck::Backup),
        MonitorKind::Replication => {
            replication(cx, &r, &name, known).map(MonitorCheck::Replication)
        }
        MonitorKind::Disk => disk(cx, &r).map(MonitorCheck::Disk),
        _ if cx.diags.len() > after_keys => None,
        _ => probe_check(cx, &r, kind, &name, clean, known, base).map(MonitorCheck::Probe),
    };
    if cx.diags.len() > before || !clean {
        return None;
    }
    Some(MonitorDecl {
        name: mname,
        check: check?,
        severity: severity?,
        remind_every: remind_every?,
        recovery,
        enabled,
    })
}

/// `remind_every`: a positive duration or `"off"`.
fn remind(cx: &mut Ctx<'_>, v: &Spanned<String>) -> Option<Option<Duration>> {
    if v.get_ref().trim().eq_ignore_ascii_case("off") {
        return Some(None);
    }
    let d = multihost::duration(cx, v, "remind_every", "24h")?;
    if d.is_zero() {
        cx.err_at(
            v,
            "`remind_every` must not be zero",
            "write remind_every = \"off\" for no reminders, or e.g. \"24h\"",
        );
        return None;
    }
    Some(Some(d))
}

/// The interval of a monitor (or its default).
fn interval(cx: &mut Ctx<'_>, r: &RawMonitor) -> Option<Duration> {
    r.interval
        .as_ref()
        .map_or(Some(bulwark_monitor::DEFAULT_INTERVAL), |v| {
            multihost::positive(
                cx,
                v,
                "interval",
                "60s",
                "the monitor would run without pause",
            )
        })
}

/// `jobs` / `job` of a backup or replication monitor: declared, each once.
fn job_list(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    known: &Known,
    need_rpo: bool,
) -> Option<Vec<String>> {
    let mut list: Vec<&Spanned<String>> = Vec::new();
    match (&r.job, &r.jobs) {
        (Some(a), Some(b)) => {
            let later = if a.span().start > b.span().start {
                a.span()
            } else {
                b.span()
            };
            cx.err(
                later,
                "both `job` and `jobs` are set",
                Some(
                    "keep one: job = \"NAME\" for one job, jobs = [\"A\", \"B\"] for several"
                        .into(),
                ),
            );
            return None;
        }
        (Some(j), None) => list.push(j),
        (None, Some(js)) => {
            if js.get_ref().is_empty() {
                cx.err_at(
                    js,
                    "`jobs` is empty",
                    "remove it to watch every job, or list job names",
                );
                return None;
            }
            list.extend(js.get_ref().iter());
        }
        (None, None) => {}
    }
    let names: Vec<&str> = known.jobs.keys().map(String::as_str).collect();
    let mut out: Vec<String> = Vec::new();
    for j in list {
        let v = j.get_ref();
        match known.jobs.get(v) {
            None => {
                let hint = match closest(v, &names) {
                    Some(best) => format!("did you mean `{best}`? (declared jobs: {})", names.join(", ")),
                    None if names.is_empty() => "no jobs are declared; declare one with [jobs.NAME]".to_string(),
                    None => format!("declared jobs: {}", names.join(", ")),
                };
                cx.err_at(j, format!("unknown job `{v}`"), hint);
            }
            Some(false) if need_rpo => cx.err_at(
                j,
                format!("job `{v}` has no `rpo`, so the hub never raises a replication.rpo alert for it"),
                format!("add rpo = \"26h\" to [jobs.{v}], or remove it from `jobs`"),
            ),
            Some(_) if out.contains(v) => cx.err_at(j, format!("job `{v}` is listed twice"), "remove one"),
            Some(_) => out.push(v.clone()),
        }
    }
    Some(out)
}

fn backup(cx: &mut Ctx<'_>, r: &RawMonitor, known: &Known) -> Option<BackupCheck> {
    let jobs = job_list(cx, r, known, false);
    let max_age = r.max_age.as_ref().map_or(Some(DEFAULT_MAX_AGE), |v| {
        multihost::positive(
            cx,
            v,
            "max_age",
            "48h",
            "every backup would be too old at once",
        )
    });
    let interval = interval(cx, r);
    Some(BackupCheck {
        jobs: jobs?,
        max_age: max_age?,
        interval: interval?,
    })
}

fn replication(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    known: &Known,
) -> Option<ReplicationCheck> {
    let jobs = job_list(cx, r, known, true);
    let mut targets = Vec::new();
    if let Some(list) = &r.targets {
        if list.get_ref().is_empty() {
            cx.err_at(
                list,
                "`targets` is empty",
                "remove it to route the alerts of every target, or list target names",
            );
        }
        let names: Vec<&str> = known.targets.iter().map(String::as_str).collect();
        for t in list.get_ref() {
            let v = t.get_ref();
            if !known.targets.contains(v) {
                let hint = match closest(v, &names) {
                    Some(best) => format!(
                        "did you mean `{best}`? (declared targets: {})",
                        names.join(", ")
                    ),
                    None if names.is_empty() => {
                        "no targets are declared; declare one with [targets.NAME]".to_string()
                    }
                    None => format!("declared targets: {}", names.join(", ")),
                };
                cx.err_at(t, format!("unknown target `{v}`"), hint);
            } else if targets.contains(v) {
                cx.err_at(t, format!("target `{v}` is listed twice"), "remove one");
            } else {
                targets.push(v.clone());
            }
        }
    } else if known.targets.is_empty() && r.jobs.is_none() {
        cx.err_at(
            name,
            format!("monitor `{}` watches replication, but no [targets.NAME] is declared", name.get_ref()),
            "nothing is replicated, so it would never fire: declare a replication target (docs/replication.md), or remove the monitor",
        );
    }
    Some(ReplicationCheck {
        targets,
        jobs: jobs?,
    })
}

fn disk(cx: &mut Ctx<'_>, r: &RawMonitor) -> Option<DiskCheck> {
    const HINT: &str =
        "a share of the disk such as min_free = \"10%\", or an amount such as \"50 GiB\"";
    let min_free = match &r.min_free {
        None => Some(MinFree::Percent(DEFAULT_MIN_FREE_PERCENT)),
        Some(v) => {
            let parsed = match v.get_ref() {
                RawSize::Text(t) if t.trim().ends_with('%') => {
                    match t.trim().trim_end_matches('%').trim().parse::<f64>() {
                        Ok(p) if p > 0.0 && p < 100.0 => Ok(MinFree::Percent(p)),
                        Ok(_) => Err("`min_free` must be more than 0% and less than 100%"),
                        Err(_) => Err("`min_free` is not a percentage or a size"),
                    }
                }
                RawSize::Text(t) => match parse_size(t) {
                    Some(0) => Err("`min_free` must not be zero"),
                    Some(n) => Ok(MinFree::Bytes(n)),
                    None => Err("`min_free` is not a percentage or a size"),
                },
                RawSize::Bytes(n) => match u64::try_from(*n) {
                    Ok(0) | Err(_) => Err("`min_free` must be more than zero"),
                    Ok(n) => Ok(MinFree::Bytes(n)),
                },
            };
            match parsed {
                Ok(m) => Some(m),
                Err(message) => {
                    cx.err_at(v, message, HINT);
                    None
                }
            }
        }
    };
    let interval = interval(cx, r);
    Some(DiskCheck {
        min_free: min_free?,
        interval: interval?,
    })
}

/// Reports a missing required key of a probe monitor.
fn missing(
    cx: &mut Ctx<'_>,
    clean: bool,
    name: &Spanned<String>,
    kind: MonitorKind,
    key: &str,
    example: &str,
) {
    if clean {
        cx.err_at(
            name,
            format!("{kind} monitor `{}` has no `{key}`", name.get_ref()),
            format!("add {example}"),
        );
    }
}

/// The vantage points (`on`): "hub" or declared hosts, each once.
fn vantage(cx: &mut Ctx<'_>, r: &RawMonitor, hosts: &BTreeSet<String>) -> Option<Vec<Vantage>> {
    let Some(on) = &r.on else {
        return Some(vec![Vantage::Hub]);
    };
    if on.get_ref().is_empty() {
        cx.err_at(
            on,
            "`on` is empty",
            "remove it to run the monitor on the hub, or list where it runs, e.g. on = [\"hub\", \"nas\"]",
        );
        return None;
    }
    let mut names: Vec<&str> = vec!["hub"];
    names.extend(hosts.iter().map(String::as_str).filter(|h| *h != "hub"));
    let mut out: Vec<Vantage> = Vec::new();
    let mut ok = true;
    for v in on.get_ref() {
        let n = v.get_ref();
        let vantage = if n == "hub" {
            Vantage::Hub
        } else if hosts.contains(n) {
            Vantage::Agent(n.clone())
        } else {
            let hint = match closest(n, &names) {
                Some(best) => format!("did you mean `{best}`? (\"hub\" or a declared host: {})", names.join(", ")),
                None if hosts.is_empty() => {
                    "a monitor runs on \"hub\" or on the agent of a declared host: declare it with [hosts.NAME]"
                        .to_string()
                }
                None => {
                    format!("a monitor runs on \"hub\" or on the agent of a declared host ({})", names[1..].join(", "))
                }
            };
            cx.err_at(v, format!("unknown host `{n}` in `on`"), hint);
            ok = false;
            continue;
        };
        if out.contains(&vantage) {
            cx.err_at(v, format!("`{n}` is listed twice in `on`"), "remove one");
            ok = false;
            continue;
        }
        out.push(vantage);
    }
    ok.then_some(out)
}

/// A probe monitor: the probe, then the spec around it, then
/// [`MonitorSpec::validate`] as a backstop.
fn probe_check(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    kind: MonitorKind,
    name: &Spanned<String>,
    clean: bool,
    known: &Known,
    base: &Path,
) -> Option<ProbeCheck> {
    let before = cx.diags.len();
    let interval = interval(cx, r);
    let timeout = r
        .timeout
        .as_ref()
        .map_or(Some(bulwark_monitor::DEFAULT_TIMEOUT), |v| {
            multihost::positive(cx, v, "timeout", "10s", "every probe would fail at once")
        });
    if let (Some(i), Some(t)) = (interval, timeout) {
        if t > i {
            match (&r.timeout, &r.interval) {
                (Some(tv), _) => cx.err_at(
                    tv,
                    format!("`timeout` ({}) is longer than `interval` ({})", human(t), human(i)),
                    "a probe must end before the next one starts: make the timeout shorter, or the interval longer",
                ),
                (None, Some(iv)) => cx.err_at(
                    iv,
                    format!("`interval` ({}) is shorter than the default timeout ({})", human(i), human(t)),
                    format!("a probe must end before the next one starts: set timeout = \"{}\" or less, or a longer interval", human(i)),
                ),
                (None, None) => {}
            }
        }
    }
    let threshold = |cx: &mut Ctx<'_>,
                     v: Option<&Spanned<i64>>,
                     key: &str,
                     default: u32,
                     what: &str|
     -> Option<u32> {
        v.map_or(Some(default), |v| {
            int(
                cx,
                v,
                key,
                (1, i64::from(u32::MAX)),
                &format!("{key} = {default} ({what})"),
            )
        })
    };
    let failure_threshold = threshold(
        cx,
        r.failure_threshold.as_ref(),
        "failure_threshold",
        bulwark_monitor::DEFAULT_FAILURE_THRESHOLD,
        "consecutive failures before the monitor is down",
    );
    let success_threshold = threshold(
        cx,
        r.success_threshold.as_ref(),
        "success_threshold",
        bulwark_monitor::DEFAULT_SUCCESS_THRESHOLD,
        "consecutive successes before it is up again",
    );
    let vantage = vantage(cx, r, &known.hosts);
    let quorum = match (&r.quorum, &vantage) {
        (None, _) => Some(1),
        (Some(q), Some(v)) if usize::try_from(*q.get_ref()).is_ok_and(|n| n > v.len()) => {
            let places = v
                .iter()
                .map(|v| format!("\"{}\"", v.name()))
                .collect::<Vec<_>>()
                .join(", ");
            cx.err_at(
                q,
                format!(
                    "`quorum` is {}, but monitor `{}` runs on only {} vantage point{}",
                    q.get_ref(),
                    name.get_ref(),
                    v.len(),
                    if v.len() == 1 { "" } else { "s" }
                ),
                format!("quorum is how many of the places in `on` must see it down; at most {} here (on = [{places}]), or add places to `on`", v.len()),
            );
            None
        }
        (Some(q), _) => int(
            cx,
            q,
            "quorum",
            (1, i64::MAX),
            "quorum = 2 (how many vantage points must see it down)",
        ),
    };
    let (probe, secret_headers) = match kind {
        MonitorKind::Http => match http(cx, r, name, clean, base) {
            Some((p, s)) => (Some(Probe::Http(p)), s),
            None => (None, BTreeMap::new()),
        },
        MonitorKind::Tcp => (tcp(cx, r, name, clean).map(Probe::Tcp), BTreeMap::new()),
        MonitorKind::Dns => (dns(cx, r, name, clean).map(Probe::Dns), BTreeMap::new()),
        MonitorKind::Tls => (
            tls(cx, r, name, clean, base).map(Probe::Tls),
            BTreeMap::new(),
        ),
        MonitorKind::Path => (path(cx, r, name, clean).map(Probe::Path), BTreeMap::new()),
        _ => (
            command(cx, r, name, clean).map(Probe::Command),
            BTreeMap::new(),
        ),
    };
    if cx.diags.len() > before {
        return None;
    }
    let spec = MonitorSpec {
        name: name.get_ref().clone(),
        probe: probe?,
        interval: interval?,
        timeout: timeout?,
        failure_threshold: failure_threshold?,
        success_threshold: success_threshold?,
        vantage: vantage?,
        quorum: quorum?,
    };
    if let Err(e) = spec.validate() {
        let at = spec_span(r, &e).unwrap_or_else(|| name.span());
        cx.err(
            at,
            format!("monitor `{}`: {e}", name.get_ref()),
            Some(spec_hint(&e).into()),
        );
        return None;
    }
    Some(ProbeCheck {
        spec,
        secret_headers,
    })
}

/// Where a [`SpecError`] points in the table.
fn spec_span(r: &RawMonitor, e: &SpecError) -> Option<Range<usize>> {
    fn s<T>(v: Option<&Spanned<T>>) -> Option<Range<usize>> {
        v.map(Spanned::span)
    }
    let field = match e {
        SpecError::Empty { field } | SpecError::Invalid { field, .. } => *field,
        SpecError::Quorum { .. } => "quorum",
    };
    match field {
        "url" => s(r.url.as_ref()),
        "method" => s(r.method.as_ref()),
        "header name" | "header value of" => s(r.headers.as_ref()),
        "expected_status" => s(r.expected_status.as_ref()),
        "json pointer" => s(r.json_pointer.as_ref()),
        "body_contains" => s(r.body_contains.as_ref()),
        "name" => s(r.name.as_ref()),
        "server" => s(r.server.as_ref()),
        "expected answer" => s(r.expect.as_ref()),
        "host" => s(r.host.as_ref()),
        "port" => s(r.port.as_ref()),
        "server_name" => s(r.server_name.as_ref()).or_else(|| s(r.host.as_ref())),
        "path" => s(r.path.as_ref()),
        "argv" | "shell" => s(r.command.as_ref()),
        "interval" => s(r.interval.as_ref()),
        "timeout" => s(r.timeout.as_ref()),
        "vantage" | "vantage agent name" => s(r.on.as_ref()),
        "quorum" => s(r.quorum.as_ref()),
        _ => None,
    }
}

fn spec_hint(e: &SpecError) -> &'static str {
    let field = match e {
        SpecError::Empty { field } | SpecError::Invalid { field, .. } => *field,
        SpecError::Quorum { .. } => "quorum",
    };
    match field {
        "url" => "e.g. url = \"https://nas.lan:8443/health\"",
        "method" => "e.g. method = \"HEAD\"",
        "header name" | "header value of" => {
            "header names are letters, digits and `-`; values are one line of visible text"
        }
        "json pointer" => "a JSON pointer starts with `/`, e.g. json_pointer = \"/status\"",
        "name" => "e.g. name = \"nas.home.arpa\"",
        "expected answer" => {
            "A and AAAA answers are IP addresses, e.g. expect = [\"192.168.1.10\"]"
        }
        "host" => "a host name or IP address without port or path, e.g. host = \"nas.lan\"",
        "server_name" => "a DNS name, e.g. server_name = \"nas.example.org\"",
        "path" => "an absolute path, e.g. path = \"/mnt/nas\"",
        "argv" | "shell" => "e.g. command = [\"/usr/local/bin/check-raid\"]",
        _ => "see docs/monitoring.md",
    }
}

type HttpParts = (HttpProbe, BTreeMap<String, SecretSource>);

fn http(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
    base: &Path,
) -> Option<HttpParts> {
    let before = cx.diags.len();
    const EXAMPLE: &str = "https://nas.lan:8443/health";
    let url = match &r.url {
        None => {
            missing(cx, clean, name, MonitorKind::Http, "url", "url = \"https://nas.lan:8443/health\"");
            None
        }
        Some(u) => http_url(
            cx,
            u,
            "url",
            EXAMPLE,
            "send credentials in a header read from a file: header_files = { \"Authorization\" = \"/etc/bulwark/app.auth\" } (the file holds e.g. `Basic dXNlcjpwYXNz`)",
        )
        .then(|| u.get_ref().trim().to_string()),
    };
    let mut p = HttpProbe::new(url.clone().unwrap_or_default());
    if let Some(m) = &r.method {
        if m.get_ref().trim().is_empty() {
            cx.err_at(
                m,
                "`method` is empty",
                "remove it for GET, or e.g. method = \"HEAD\"",
            );
        }
        p.method = m.get_ref().trim().to_ascii_uppercase();
    }
    let (headers, secret_headers) = headers(
        cx,
        r.headers.as_ref(),
        r.header_files.as_ref(),
        r.header_envs.as_ref(),
        base,
    );
    p.headers = headers;
    p.body = r.body.as_ref().map(|b| b.get_ref().clone());
    if let Some(st) = &r.expected_status {
        let raw: Vec<&RawStatus> = match st.get_ref() {
            RawStatuses::One(s) => vec![s],
            RawStatuses::Many(v) => v.iter().collect(),
        };
        if raw.is_empty() {
            cx.err_at(
                st,
                "`expected_status` is empty",
                "remove it for 200-399, or e.g. expected_status = [\"200-299\", 401]",
            );
        }
        let mut ranges = Vec::new();
        for s in raw {
            let parsed = match s {
                RawStatus::Code(n) => n.to_string().parse::<StatusRange>(),
                RawStatus::Text(t) => t.parse::<StatusRange>(),
            };
            match parsed {
                Ok(range) => ranges.push(range),
                Err(e) => cx.err_at(
                    st,
                    format!("bad `expected_status`: {e}"),
                    "a status (100-599) or a range such as \"200-299\", or an array of them",
                ),
            }
        }
        p.expected_status = ranges;
    }
    if let Some(b) = &r.body_contains {
        if b.get_ref().is_empty() {
            cx.err_at(
                b,
                "`body_contains` is empty",
                "remove it, or give the text the body must contain",
            );
        }
        p.body_contains = Some(b.get_ref().clone());
    }
    match (&r.json_pointer, &r.json_equals) {
        (Some(ptr), Some(eq)) => {
            if !(ptr.get_ref().is_empty() || ptr.get_ref().starts_with('/')) {
                cx.err_at(
                    ptr,
                    format!("`{}` is not a JSON pointer", ptr.get_ref()),
                    format!(
                        "a JSON pointer starts with `/`, e.g. json_pointer = \"/{}\"",
                        ptr.get_ref().trim_start_matches(['.', '$'])
                    ),
                );
            }
            if matches!(eq.get_ref(), toml::Value::Datetime(_)) {
                cx.err_at(
                    eq,
                    "`json_equals` can't be a TOML date/time: JSON has none",
                    "write it as a string, e.g. json_equals = \"2026-01-01\"",
                );
            } else {
                let t = toml::Value::Table(toml::Table::from_iter([
                    (
                        "pointer".to_string(),
                        toml::Value::String(ptr.get_ref().clone()),
                    ),
                    ("equals".to_string(), eq.get_ref().clone()),
                ]));
                match JsonCheck::deserialize(t) {
                    Ok(j) => p.json = Some(j),
                    Err(e) => cx.err_at(
                        eq,
                        format!("`json_equals` can't be compared as JSON: {}", e.message()),
                        "give a string, number, boolean, array or table",
                    ),
                }
            }
        }
        (Some(v), None) => cx.err_at(
            v,
            "`json_pointer` without `json_equals`",
            "add the value the field must have, e.g. json_equals = \"ok\"",
        ),
        (None, Some(v)) => cx.err_at(
            v,
            "`json_equals` without `json_pointer`",
            "add the field to compare, e.g. json_pointer = \"/status\"",
        ),
        (None, None) => {}
    }
    let timeout = r
        .timeout
        .as_ref()
        .and_then(|t| humantime::parse_duration(t.get_ref().trim()).ok());
    if let Some(m) = &r.max_response_time {
        if let Some(d) = multihost::positive(
            cx,
            m,
            "max_response_time",
            "2s",
            "every response would be too slow",
        ) {
            let limit = timeout.unwrap_or(bulwark_monitor::DEFAULT_TIMEOUT);
            if d > limit {
                cx.err_at(
                    m,
                    format!("`max_response_time` ({}) is longer than the timeout ({})", human(d), human(limit)),
                    "a slower response times out first: make it shorter than `timeout`, or raise the timeout",
                );
            }
            p.max_response_time = Some(d);
        }
    }
    if let Some(d) = &r.min_cert_days {
        p.min_cert_days = int(cx, d, "min_cert_days", (0, 3650), "min_cert_days = 14");
        if url.as_deref().is_some_and(|u| !u.starts_with("https://")) {
            cx.err_at(
                d,
                "`min_cert_days` needs an https:// url",
                "remove it, or change the url to https://",
            );
        }
    }
    if let Some(f) = &r.follow_redirects {
        p.follow_redirects = *f.get_ref();
    }
    tls_trust(cx, r, base, &mut p.ca_file, &mut p.insecure);
    if cx.diags.len() > before {
        return None;
    }
    url.map(|_| (p, secret_headers))
}

/// `ca_file` and `insecure` (not both).
fn tls_trust(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    base: &Path,
    ca_file: &mut Option<std::path::PathBuf>,
    insecure: &mut bool,
) {
    if let Some(c) = &r.ca_file {
        if c.get_ref().trim().is_empty() {
            cx.err_at(
                c,
                "`ca_file` is empty",
                "give the PEM file of the private CA, or remove it to trust the system's CAs",
            );
        }
        *ca_file = Some(base.join(c.get_ref()));
    }
    if let Some(i) = &r.insecure {
        *insecure = *i.get_ref();
        if *insecure && r.ca_file.is_some() {
            cx.err_at(
                i,
                "`insecure = true` and `ca_file` together",
                "insecure skips the certificate check, so the CA would never be used: keep `ca_file` (better) or `insecure`",
            );
        }
    }
}

/// `host` and `port` of a tcp or tls monitor.
fn host_port(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
    kind: MonitorKind,
    default_port: Option<u16>,
) -> Option<(String, u16)> {
    let host = match &r.host {
        None => {
            missing(cx, clean, name, kind, "host", "host = \"nas.lan\"");
            None
        }
        Some(h) => {
            let v = h.get_ref().trim();
            if v.contains(':') && v.parse::<IpAddr>().is_err() && !v.starts_with('[') {
                cx.err_at(
                    h,
                    format!("`host` must not include a port or scheme: `{v}`"),
                    "give the host name alone and the port in `port`, e.g. host = \"nas.lan\" and port = 22",
                );
                None
            } else {
                Some(v.trim_start_matches('[').trim_end_matches(']').to_string())
            }
        }
    };
    let port = match (&r.port, default_port) {
        (Some(p), _) => int(cx, p, "port", (1, 65535), "port = 443"),
        (None, Some(d)) => Some(d),
        (None, None) => {
            missing(cx, clean, name, kind, "port", "port = 22");
            None
        }
    };
    Some((host?, port?))
}

fn tcp(cx: &mut Ctx<'_>, r: &RawMonitor, name: &Spanned<String>, clean: bool) -> Option<TcpProbe> {
    let (host, port) = host_port(cx, r, name, clean, MonitorKind::Tcp, None)?;
    Some(TcpProbe { host, port })
}

fn tls(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
    base: &Path,
) -> Option<TlsProbe> {
    let hp = host_port(cx, r, name, clean, MonitorKind::Tls, Some(DEFAULT_TLS_PORT));
    let mut p = TlsProbe::new("", DEFAULT_TLS_PORT);
    if let Some(s) = &r.server_name {
        if s.get_ref().trim().is_empty() {
            cx.err_at(
                s,
                "`server_name` is empty",
                "remove it to use `host`, or give the name the certificate must carry",
            );
        }
        p.server_name = Some(s.get_ref().trim().to_string());
    }
    if let Some(d) = &r.min_days {
        p.min_days = int(cx, d, "min_days", (0, 3650), "min_days = 14")?;
    }
    tls_trust(cx, r, base, &mut p.ca_file, &mut p.insecure);
    let (host, port) = hp?;
    Some(TlsProbe { host, port, ..p })
}

fn dns(cx: &mut Ctx<'_>, r: &RawMonitor, name: &Spanned<String>, clean: bool) -> Option<DnsProbe> {
    let server = match &r.server {
        None => {
            missing(
                cx,
                clean,
                name,
                MonitorKind::Dns,
                "server",
                "server = \"192.168.1.1:53\" (the DNS server to ask)",
            );
            None
        }
        Some(s) => {
            let v = s.get_ref().trim();
            let parsed = v.parse::<SocketAddr>().ok().or_else(|| {
                v.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 53))
            });
            match parsed {
                Some(a) if a.port() == 0 => {
                    cx.err_at(
                        s,
                        "the port of `server` must be 1-65535",
                        "e.g. server = \"192.168.1.1:53\"",
                    );
                    None
                }
                Some(a) => Some(a),
                None => {
                    cx.err_at(
                        s,
                        format!("`{v}` is not an IP address (with an optional port)"),
                        "the probe asks exactly this server, so give its address, e.g. server = \"192.168.1.1:53\", \"9.9.9.9\" or \"[2620:fe::fe]:53\"",
                    );
                    None
                }
            }
        }
    };
    let qname = match &r.name {
        None => {
            missing(
                cx,
                clean,
                name,
                MonitorKind::Dns,
                "name",
                "name = \"nas.home.arpa\" (the name to look up)",
            );
            None
        }
        Some(n) => Some(n.get_ref().trim().to_string()),
    };
    const RECORDS: [(&str, RecordType); 10] = [
        ("A", RecordType::A),
        ("AAAA", RecordType::AAAA),
        ("CNAME", RecordType::CNAME),
        ("MX", RecordType::MX),
        ("TXT", RecordType::TXT),
        ("NS", RecordType::NS),
        ("SRV", RecordType::SRV),
        ("PTR", RecordType::PTR),
        ("SOA", RecordType::SOA),
        ("CAA", RecordType::CAA),
    ];
    let record = match &r.record {
        None => Some(RecordType::A),
        Some(t) => {
            let up = t.get_ref().trim().to_ascii_uppercase();
            let found = RECORDS.iter().find(|(n, _)| *n == up).map(|(_, r)| *r);
            if found.is_none() {
                let names: Vec<&str> = RECORDS.iter().map(|(n, _)| *n).collect();
                let hint = match closest(&up, &names) {
                    Some(best) => format!(
                        "did you mean `{best}`? (record types: {})",
                        names.join(", ")
                    ),
                    None => format!("record types: {}", names.join(", ")),
                };
                cx.err_at(t, format!("`{}` is not a record type", t.get_ref()), hint);
            }
            found
        }
    };
    const RCODES: [(&str, Rcode); 6] = [
        ("NOERROR", Rcode::NoError),
        ("FORMERR", Rcode::FormErr),
        ("SERVFAIL", Rcode::ServFail),
        ("NXDOMAIN", Rcode::NxDomain),
        ("NOTIMP", Rcode::NotImp),
        ("REFUSED", Rcode::Refused),
    ];
    let rcode = match &r.rcode {
        None => Some(Rcode::NoError),
        Some(c) => {
            let up = c.get_ref().trim().to_ascii_uppercase();
            let found = RCODES.iter().find(|(n, _)| *n == up).map(|(_, r)| *r);
            if found.is_none() {
                let names: Vec<&str> = RCODES.iter().map(|(n, _)| *n).collect();
                let hint = match closest(&up, &names) {
                    Some(best) => format!("did you mean `{best}`? (codes: {})", names.join(", ")),
                    None => format!("codes: {}", names.join(", ")),
                };
                cx.err_at(
                    c,
                    format!("`{}` is not a DNS response code", c.get_ref()),
                    hint,
                );
            }
            found
        }
    };
    let mut expected_answers = Vec::new();
    if let Some(list) = &r.expect {
        for a in list.get_ref() {
            if a.get_ref().trim().is_empty() {
                cx.err_at(a, "empty answer in `expect`", "remove it");
            } else if matches!(record, Some(RecordType::A | RecordType::AAAA))
                && a.get_ref().trim().parse::<IpAddr>().is_err()
            {
                cx.err_at(
                    a,
                    format!(
                        "`{}` is not an IP address, and {} answers are",
                        a.get_ref(),
                        record.map_or(String::new(), |r| r.to_string())
                    ),
                    "e.g. expect = [\"192.168.1.10\"], or set record = \"CNAME\" to check an alias",
                );
            }
            expected_answers.push(a.get_ref().trim().to_string());
        }
        if rcode.is_some_and(|c| c != Rcode::NoError) && !list.get_ref().is_empty() {
            cx.err_at(
                list,
                "`expect` with an rcode other than NOERROR",
                "a name that doesn't resolve has no answers: remove `expect` or `rcode`",
            );
        }
    }
    Some(DnsProbe {
        server: server?,
        name: qname?,
        record_type: record?,
        expected_answers,
        expected_rcode: rcode?,
    })
}

fn path(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
) -> Option<PathProbe> {
    let path = match &r.path {
        None => {
            missing(
                cx,
                clean,
                name,
                MonitorKind::Path,
                "path",
                "path = \"/mnt/nas\"",
            );
            None
        }
        Some(p) if !Path::new(p.get_ref()).is_absolute() => {
            cx.err_at(
                p,
                format!("path `{}` is relative", p.get_ref()),
                "use an absolute path, e.g. path = \"/mnt/nas\" (it is checked on each vantage point, not relative to anything)",
            );
            None
        }
        Some(p) => Some(p.get_ref().clone()),
    };
    let check = match &r.check {
        None => Some(PathCheck::Readable),
        Some(c) => match c.get_ref().as_str() {
            "exists" => Some(PathCheck::Exists),
            "mountpoint" => Some(PathCheck::Mountpoint),
            "readable" => Some(PathCheck::Readable),
            other => {
                let hint = match closest(other, &["exists", "mountpoint", "readable"]) {
                    Some(best) => {
                        format!("did you mean `{best}`? (check = \"exists\", \"mountpoint\" or \"readable\")")
                    }
                    None => "use check = \"exists\", \"mountpoint\" or \"readable\"".to_string(),
                };
                cx.err_at(c, format!("`{other}` is not a path check"), hint);
                None
            }
        },
    };
    Some(PathProbe::new(path?, check?))
}

fn command(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
) -> Option<CommandProbe> {
    let command = match &r.command {
        None => {
            missing(
                cx,
                clean,
                name,
                MonitorKind::Command,
                "command",
                "command = [\"/usr/local/bin/check-raid\"] (or a string run with sh -c)",
            );
            None
        }
        Some(c) => match c.get_ref() {
            RawCommandLine::Shell(s) if s.trim().is_empty() => {
                cx.err_at(c, "empty command", "give the command to run");
                None
            }
            RawCommandLine::Argv(v) if v.first().is_none_or(String::is_empty) => {
                cx.err_at(
                    c,
                    "empty command array",
                    "give the program and its arguments, e.g. [\"/usr/local/bin/check-raid\"]",
                );
                None
            }
            RawCommandLine::Shell(s) => Some(ProbeCommand::Shell(s.clone())),
            RawCommandLine::Argv(v) => Some(ProbeCommand::Argv(v.clone())),
        },
    };
    let exit = r.exit_code.as_ref().map_or(Some(0), |e| {
        int(cx, e, "exit_code", (0, 255), "exit_code = 0")
    });
    Some(CommandProbe {
        command: command?,
        expected_exit_code: exit?,
    })
}

// ---------------------------------------------------------------- [alerts]

fn alerts(cx: &mut Ctx<'_>, a: RawAlerts, base: &Path) -> Alerts {
    let hub_ping = secret(
        cx,
        a.hub_ping_url_file.as_ref(),
        a.hub_ping_url_env.as_ref(),
        "hub_ping_url",
        base,
    )
    .ok()
    .flatten();
    let mut out = Alerts {
        hub_ping,
        ..Alerts::default()
    };
    if let Some(i) = &a.hub_ping_interval {
        if a.hub_ping_url_file.is_none() && a.hub_ping_url_env.is_none() {
            cx.err_at(
                i,
                "`hub_ping_interval` only applies with a ping URL",
                "add hub_ping_url_file = \"/etc/bulwark/hc-ping.url\" (a file holding the URL of your healthchecks.io check), or remove it",
            );
        }
        if let Some(d) = multihost::positive(
            cx,
            i,
            "hub_ping_interval",
            "1m",
            "the hub would ping without pause",
        ) {
            out.hub_ping_interval = d;
        }
    }
    if let Some(r) = &a.remind_every {
        if let Some(d) = remind(cx, r) {
            out.remind_every = d;
        }
    }
    if let Some(list) = &a.connectivity {
        for c in list.get_ref() {
            if let Some(p) = canary(cx, c) {
                out.connectivity.push(p);
            }
        }
    }
    out
}

/// One `connectivity` entry: `tcp:HOST:PORT` or an http(s) URL.
fn canary(cx: &mut Ctx<'_>, c: &Spanned<String>) -> Option<Probe> {
    const HINT: &str =
        "write \"tcp:HOST:PORT\" (e.g. \"tcp:1.1.1.1:53\") or an http:// or https:// URL (e.g. \"http://192.168.1.1\")";
    let v = c.get_ref().trim();
    let probe = if let Some(rest) = v.strip_prefix("tcp:") {
        let parsed = rest.rsplit_once(':').and_then(|(h, p)| {
            let port = p.parse::<u16>().ok().filter(|p| *p > 0)?;
            let host = h.trim_start_matches('[').trim_end_matches(']');
            (!host.is_empty()).then(|| TcpProbe {
                host: host.to_string(),
                port,
            })
        });
        match parsed {
            Some(t) => Probe::Tcp(t),
            None => {
                cx.err_at(c, format!("`{v}` is not tcp:HOST:PORT"), HINT);
                return None;
            }
        }
    } else if v.starts_with("http://") || v.starts_with("https://") {
        if !http_url(
            cx,
            c,
            "connectivity",
            "http://192.168.1.1",
            "a canary only needs an answer: give the URL without credentials",
        ) {
            return None;
        }
        // Any answer means the network works: every status, no certificate check, no redirects.
        Probe::Http(HttpProbe {
            expected_status: vec![StatusRange { min: 100, max: 599 }],
            insecure: true,
            follow_redirects: false,
            ..HttpProbe::new(v)
        })
    } else {
        cx.err_at(c, format!("`{v}` is not a connectivity check"), HINT);
        return None;
    };
    if let Err(e) = probe.validate() {
        cx.err_at(c, format!("bad connectivity check: {e}"), HINT);
        return None;
    }
    Some(probe)
}

// ---------------------------------------------------------------- [[silences]]

/// A `from` / `until` value: RFC 3339, `2026-12-01 02:00` (the system's
/// time zone), `2026-12-01 02:00 Europe/Berlin`, a date alone (midnight), or
/// a TOML date-time.
fn time(v: &toml::Value) -> Result<Timestamp, &'static str> {
    match v {
        toml::Value::String(s) => parse_time(s.trim()).ok_or("bad"),
        toml::Value::Datetime(d) if d.date.is_none() => Err("time only"),
        toml::Value::Datetime(d) => parse_time(&d.to_string()).ok_or("bad"),
        _ => Err("type"),
    }
}

pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(z) = s.parse::<Zoned>() {
        return Some(z.timestamp());
    }
    let local = |text: &str| -> Option<jiff::civil::DateTime> {
        text.parse::<jiff::civil::DateTime>().ok().or_else(|| {
            text.parse::<jiff::civil::Date>()
                .ok()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
    };
    if let Some((rest, zone)) = s.rsplit_once(' ') {
        if let (Ok(tz), Some(dt)) = (TimeZone::get(zone), local(rest.trim())) {
            return dt.to_zoned(tz).ok().map(|z| z.timestamp());
        }
    }
    local(s)
        .and_then(|dt| dt.to_zoned(TimeZone::system()).ok())
        .map(|z| z.timestamp())
}

fn silence(
    cx: &mut Ctx<'_>,
    item: Item<RawSilence>,
    monitors: &BTreeSet<String>,
) -> Option<Silence> {
    let Item { span, raw, clean } = item;
    let before = cx.diags.len();
    let s = raw?;
    let patterns = s
        .monitors
        .as_ref()
        .map(|m| monitor_patterns(cx, m, "silence", monitors))
        .unwrap_or_default();
    let when = |cx: &mut Ctx<'_>, v: &Spanned<toml::Value>, key: &str| -> Option<Timestamp> {
        const EXAMPLES: &str = "\"2026-12-01 02:00\" (the hub's local time), \"2026-12-01 02:00 Europe/Berlin\" or \"2026-12-01T02:00:00+01:00\"";
        match time(v.get_ref()) {
            Ok(t) => Some(t),
            Err("type") => {
                let found = match v.get_ref() {
                    toml::Value::Integer(_) => "an integer",
                    toml::Value::Float(_) => "a float",
                    toml::Value::Boolean(_) => "a boolean",
                    toml::Value::Array(_) => "an array",
                    _ => "a table",
                };
                cx.err_at(
                    v,
                    format!("wrong type for `{key}`: expected a date and time (a string or a TOML date-time), found {found}"),
                    format!("e.g. {key} = \"2026-12-01 02:00\""),
                );
                None
            }
            Err("time only") => {
                cx.err_at(v, format!("`{key}` has a time but no date"), format!("write the date too, e.g. {key} = \"2026-12-01 02:00\"; for every day, use schedule = \"*-*-* 02:00\" and duration"));
                None
            }
            Err(_) => {
                let shown = match v.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                cx.err_at(
                    v,
                    format!("`{shown}` is not a date and time"),
                    format!("write {EXAMPLES}"),
                );
                None
            }
        }
    };
    let from = s.from.as_ref().and_then(|v| when(cx, v, "from"));
    let until = s.until.as_ref().and_then(|v| when(cx, v, "until"));
    let window = match (&s.schedule, &s.from, &s.until) {
        (Some(expr), f, u) => {
            for (key, v) in [("from", f), ("until", u)] {
                if let Some(v) = v {
                    cx.err_at(
                        v,
                        format!("`{key}` and `schedule` together"),
                        "a silence is either one-off (`from` and `until`) or recurring (`schedule` and `duration`); remove one kind",
                    );
                }
            }
            let calendar = multihost::schedule(
                cx,
                ScheduleKeys {
                    schedule: Some(expr),
                    randomized_delay: None,
                    persistent: None,
                    late_after: None,
                },
            )
            .map(|s| s.schedule.calendar);
            let duration = match &s.duration {
                None => {
                    if clean {
                        cx.err_at(
                            expr,
                            "a recurring silence needs `duration`",
                            "add how long each window lasts, e.g. duration = \"2h\"",
                        );
                    }
                    None
                }
                Some(d) => {
                    multihost::positive(cx, d, "duration", "2h", "the window would never be open")
                }
            };
            match (calendar, duration) {
                (Some(calendar), Some(duration)) => {
                    Some(SilenceWindow::Recurring { calendar, duration })
                }
                _ => None,
            }
        }
        (None, f, u) => {
            if let Some(d) = &s.duration {
                cx.err_at(
                    d,
                    "`duration` only applies with `schedule`",
                    "a one-off silence ends at `until`; for a recurring one add e.g. schedule = \"Sun 03:00\"",
                );
            }
            match (f, u) {
                (None, None) => {
                    if clean {
                        cx.err(
                            span.clone(),
                            "a silence needs a time: `from` and `until` (one-off), or `schedule` and `duration` (recurring)",
                            Some("e.g. from = \"2026-12-01 02:00\" and until = \"2026-12-01 06:00\", or schedule = \"Sun 03:00\" and duration = \"1h\"".into()),
                        );
                    }
                    None
                }
                (Some(f), None) => {
                    if clean {
                        cx.err_at(
                            f,
                            "a silence with `from` needs `until`",
                            "add when it ends, e.g. until = \"2026-12-01 06:00\"",
                        );
                    }
                    None
                }
                (None, Some(u)) => {
                    if clean {
                        cx.err_at(
                            u,
                            "a silence with `until` needs `from`",
                            "add when it starts, e.g. from = \"2026-12-01 02:00\"",
                        );
                    }
                    None
                }
                (Some(_), Some(u)) => match (from, until) {
                    (Some(a), Some(b)) if b <= a => {
                        cx.err_at(
                            u,
                            "`until` is not after `from`",
                            "the window would hold no time at all; check the dates (and the time zones)",
                        );
                        None
                    }
                    (Some(from), Some(until)) => Some(SilenceWindow::Once { from, until }),
                    _ => None,
                },
            }
        }
    };
    let reason = match &s.reason {
        Some(r) if r.get_ref().trim().is_empty() => {
            cx.err_at(
                r,
                "`reason` is empty",
                "say why (it is shown while the silence holds), or remove it",
            );
            None
        }
        r => r.as_ref().map(|r| r.get_ref().clone()),
    };
    if cx.diags.len() > before || !clean {
        return None;
    }
    Some(Silence {
        monitors: patterns,
        window: window?,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn zoned(s: &str) -> Zoned {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn one_off_windows_are_half_open() {
        let s = Silence {
            monitors: vec![],
            window: SilenceWindow::Once {
                from: ts("2026-12-01T02:00:00Z"),
                until: ts("2026-12-01T06:00:00Z"),
            },
            reason: None,
        };
        assert!(!s.active(ts("2026-12-01T01:59:59Z")));
        assert!(s.active(ts("2026-12-01T02:00:00Z")));
        assert!(s.active(ts("2026-12-01T05:59:59Z")));
        assert!(!s.active(ts("2026-12-01T06:00:00Z")));
        assert!(s.covers("anything"));
    }

    #[test]
    fn recurring_windows_follow_the_calendar() {
        let calendar = match Calendar::parse("Sun 03:00") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let s = Silence {
            monitors: vec!["web-*".into(), "nas".into()],
            window: SilenceWindow::Recurring {
                calendar,
                duration: Duration::from_secs(3600),
            },
            reason: Some("updates".into()),
        };
        // 2026-03-01 is a Sunday.
        let at = |t: &str| s.active_in(&zoned(&format!("{t}[Europe/Berlin]")));
        assert!(!at("2026-03-01T02:59:59+01:00"));
        assert!(at("2026-03-01T03:00:00+01:00"));
        assert!(at("2026-03-01T03:59:59+01:00"));
        assert!(!at("2026-03-01T04:00:00+01:00"));
        assert!(!at("2026-03-02T03:30:00+01:00"), "a Monday");
        assert!(at("2026-03-08T03:30:00+01:00"), "the next Sunday");
        // The calendar is read in the zone of `at`: 03:00 UTC is 04:00 in Berlin.
        assert!(s.active_in(&zoned("2026-03-01T03:30:00+00:00[UTC]")));
        assert!(!s.active_in(&zoned("2026-03-01T02:30:00+00:00[UTC]")));
        assert!(s.covers("web-front") && s.covers("nas") && !s.covers("nas2") && !s.covers("db"));
        assert!(
            s.silences("nas", ts("2026-03-01T03:30:00Z")) == s.active(ts("2026-03-01T03:30:00Z"))
        );
    }

    #[test]
    fn recurring_windows_longer_than_the_gap_overlap() {
        let calendar = match Calendar::parse("hourly") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let s = Silence {
            monitors: vec![],
            window: SilenceWindow::Recurring {
                calendar,
                duration: Duration::from_secs(2 * 3600),
            },
            reason: None,
        };
        assert!(s.active_in(&zoned("2026-03-01T03:30:00+00:00[UTC]")));
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2026-12-01T02:00:00Z"),
            Some(ts("2026-12-01T02:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-12-01T02:00:00+01:00"),
            Some(ts("2026-12-01T01:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-12-01T02:00:00+01:00[Europe/Berlin]"),
            Some(ts("2026-12-01T01:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-12-01 02:00 Europe/Berlin"),
            Some(ts("2026-12-01T01:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-07-01 02:00 Europe/Berlin"),
            Some(ts("2026-07-01T00:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-12-01 02:00 UTC"),
            Some(ts("2026-12-01T02:00:00Z"))
        );
        let local = jiff::civil::date(2026, 12, 1)
            .at(2, 0, 0, 0)
            .to_zoned(TimeZone::system())
            .map(|z| z.timestamp())
            .ok();
        assert_eq!(parse_time("2026-12-01 02:00"), local);
        assert_eq!(parse_time("2026-12-01T02:00"), local);
        let midnight = jiff::civil::date(2026, 12, 1)
            .at(0, 0, 0, 0)
            .to_zoned(TimeZone::system())
            .map(|z| z.timestamp())
            .ok();
        assert_eq!(parse_time("2026-12-01"), midnight);
        for bad in [
            "",
            "tomorrow",
            "2026-02-30 02:00",
            "2026-12-01 25:00",
            "2026-12-01 02:00 Mars/Olympus",
            "02:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn replication_filters() {
        let all = ReplicationCheck {
            targets: vec![],
            jobs: vec![],
        };
        assert!(
            all.covers("replication.failing", "usb/nas/main")
                && all.covers("replication.shrink", "nas/main")
        );
        assert!(!all.covers("job.failed", "nas"));
        let some = ReplicationCheck {
            targets: vec!["usb".into()],
            jobs: vec!["nas".into()],
        };
        assert!(some.covers("replication.failing", "usb/nas/main"));
        assert!(!some.covers("replication.failing", "cloud/nas/main"));
        assert!(some.covers("replication.rpo", "nas") && !some.covers("replication.rpo", "vps"));
        assert!(
            !some.covers("replication.shrink", "nas/main"),
            "a hub-side alert is not about a target"
        );
    }

    #[test]
    fn min_free() {
        assert!(MinFree::Percent(10.0).is_low(9, 100));
        assert!(!MinFree::Percent(10.0).is_low(10, 100));
        assert!(MinFree::Bytes(50 << 30).is_low(49 << 30, 1 << 40));
        assert!(!MinFree::Bytes(50 << 30).is_low(50 << 30, 1 << 40));
    }

    #[test]
    fn secret_headers() {
        for h in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "X-Api-Key",
            "X-Auth-Token",
            "X-Gotify-Key",
            "Private-Token",
        ] {
            assert!(secret_header(h), "{h}");
        }
        for h in ["Accept", "User-Agent", "Content-Type", "X-Source", "Host"] {
            assert!(!secret_header(h), "{h}");
        }
    }
}
