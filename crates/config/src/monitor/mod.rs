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
//! One module per kind ([`http`], [`tcp`], [`dns`], [`tls`], [`path`],
//! [`command`]) turns its keys into the probe; [`probe`] wraps it into the
//! spec (interval, timeout, thresholds, vantage points, quorum). The
//! built-ins are in [`builtin`], `[[silences]]` in [`silence`], `[alerts]` in
//! [`alerts`]; [`keys`] says which keys apply to which type.
//! The built-in types (`backup`, `replication`, `disk`) are evaluated by the
//! hub itself. Agents receive exactly the probe monitors that run on them
//! (see [`crate::extract_host`]); notifiers, routes, silences and `[alerts]`
//! stay with the hub.

mod alerts;
mod builtin;
mod command;
mod dns;
mod http;
mod keys;
mod path;
mod probe;
mod silence;
mod tcp;
mod tls;

pub use alerts::Alerts;
pub use builtin::{BackupCheck, DiskCheck, MinFree, ReplicationCheck};
pub use silence::{Silence, SilenceWindow};

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::IpAddr,
    path::Path,
    time::Duration,
};

use bulwark_monitor::{MonitorSpec, Probe, Vantage};
use bulwark_notify::{Route, Severity};
use serde_spanned::Spanned;

use crate::{
    fields::{severity, valid_name, NAME_HINT},
    multihost,
    raw::RawMonitor,
    read::{closest, Ctx, Doc, Entry},
    SecretSource,
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
        .map(|a| alerts::alerts(cx, a, base))
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
        .filter_map(|s| silence::silence(cx, s, &monitor_names))
        .collect();
    Monitoring {
        monitors,
        notifiers,
        routes,
        silences,
        alerts,
    }
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
    keys::foreign_keys(cx, &r, kind);
    let after_keys = cx.diags.len();
    let check = match kind {
        MonitorKind::Backup => builtin::backup(cx, &r, known).map(MonitorCheck::Backup),
        MonitorKind::Replication => {
            builtin::replication(cx, &r, &name, known).map(MonitorCheck::Replication)
        }
        MonitorKind::Disk => builtin::disk(cx, &r).map(MonitorCheck::Disk),
        _ if cx.diags.len() > after_keys => None,
        _ => probe::probe_check(cx, &r, kind, &name, clean, known, base).map(MonitorCheck::Probe),
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
