//! The alerting state machine of every monitor: probe results and built-in
//! verdicts in, notices out. Pure: time is passed in, nothing here does I/O;
//! [`Changes`] says what to write to the database (in one transaction), so
//! the durable record and the queued notices never disagree.
//!
//! Per monitor (per *item* for built-ins that watch several things: a
//! `backup` monitor's jobs, a `replication` monitor's alerts) the engine
//! keeps:
//!
//! - one threshold machine per vantage point ([`MonitorState`], persisted
//!   when its confirmed state changes; the streak in between lives in
//!   memory, so a restart costs at most a partial streak, never a confirmed
//!   state);
//! - the state it acted on (`up`, `down`, `unknown`), since when, when the
//!   down notice went out and when the last reminder did.
//!
//! Each evaluation combines the vantage points with [`decide`] (quorum,
//! stale votes ignored) and compares with the acted-on state:
//!
//! | verdict | acted on | muted (silence, no network) | notice |
//! |---|---|---|---|
//! | down | not down | no | **down**, once |
//! | down | down, notice sent | no | **reminder** every `remind_every` |
//! | down | down, no notice yet (it was muted) | no | **down** now |
//! | up | down, notice sent | no | **recovery** (if `recovery`) |
//! | up | down | yes | none (the outage ends silently) |
//! | unknown | anything | — | none; the acted-on state stays |

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use bulwark_api::{MonitorHealth, MonitorStatus, Severity, VantageStatus};
use bulwark_config::{MonitorCheck, MonitorDecl};
use bulwark_monitor::{decide, MonitorState, ProbeResult, State};
use bulwark_notify::{Event, Message};
use jiff::{SignedDuration, Timestamp};

/// The database key of a monitor (or of one item of a built-in monitor).
pub(crate) fn key_of(monitor: &str, item: Option<&str>) -> String {
    match item {
        Some(i) => format!("{monitor}/{i}"),
        None => monitor.to_string(),
    }
}

pub(crate) fn health(s: State) -> MonitorHealth {
    match s {
        State::Unknown => MonitorHealth::Unknown,
        State::Up => MonitorHealth::Up,
        State::Down => MonitorHealth::Down,
    }
}

fn parse_state(s: &str) -> State {
    match s {
        "up" => State::Up,
        "down" => State::Down,
        _ => State::Unknown,
    }
}

/// A vantage point's last probe (memory only).
#[derive(Debug, Clone)]
pub(crate) struct LastProbe {
    pub(crate) result: ProbeResult,
    pub(crate) at: Timestamp,
}

/// A built-in monitor's verdict about one item, set by the hub.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Direct {
    /// Up or down.
    pub(crate) up: bool,
    /// What was seen.
    pub(crate) message: String,
    /// At least this severity (a critical replication alert stays critical).
    pub(crate) severity: Option<Severity>,
}

/// One monitor or item.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) monitor: String,
    pub(crate) item: Option<String>,
    /// The state acted on.
    pub(crate) state: State,
    pub(crate) since: Option<Timestamp>,
    /// When the down notice of this outage was queued.
    pub(crate) notified: Option<Timestamp>,
    /// When the last reminder (or the down notice) was queued.
    pub(crate) reminded: Option<Timestamp>,
    pub(crate) message: String,
    /// Threshold machines by vantage point (probe monitors).
    pub(crate) machines: BTreeMap<String, MonitorState>,
    /// Last probe by vantage point.
    pub(crate) last: BTreeMap<String, LastProbe>,
    /// Built-ins: the latest verdict.
    pub(crate) direct: Option<Direct>,
    /// Whether a silence held it at the last evaluation.
    pub(crate) silenced: bool,
    dirty: bool,
}

impl Entry {
    fn new(monitor: &str, item: Option<&str>) -> Self {
        Self {
            monitor: monitor.to_string(),
            item: item.map(str::to_string),
            state: State::Unknown,
            since: None,
            notified: None,
            reminded: None,
            message: String::new(),
            machines: BTreeMap::new(),
            last: BTreeMap::new(),
            direct: None,
            silenced: false,
            dirty: true,
        }
    }

    fn key(&self) -> String {
        key_of(&self.monitor, self.item.as_deref())
    }

    fn row(&self) -> Row {
        Row {
            key: self.key(),
            monitor: self.monitor.clone(),
            item: self.item.clone(),
            state: self.state.as_str().to_string(),
            since: self.since,
            notified: self.notified,
            reminded: self.reminded,
            message: self.message.clone(),
            vantages: serde_json::to_string(&self.machines).unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// A row of `monitor_state`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) key: String,
    pub(crate) monitor: String,
    pub(crate) item: Option<String>,
    pub(crate) state: String,
    pub(crate) since: Option<Timestamp>,
    pub(crate) notified: Option<Timestamp>,
    pub(crate) reminded: Option<Timestamp>,
    pub(crate) message: String,
    /// JSON: vantage point → [`MonitorState`].
    pub(crate) vantages: String,
}

/// A change to the alert history (the `alerts` table).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum History {
    /// The monitor (item) went down: open `monitor` / key.
    Open {
        key: String,
        severity: Severity,
        message: String,
    },
    /// It is up again: resolve it.
    Close { key: String },
}

/// What one evaluation wants written, in one transaction.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) upserts: Vec<Row>,
    pub(crate) deletes: Vec<String>,
    pub(crate) notices: Vec<Message>,
    pub(crate) history: Vec<History>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.upserts.is_empty()
            && self.deletes.is_empty()
            && self.notices.is_empty()
            && self.history.is_empty()
    }
}

/// Everything an evaluation needs to know besides the entries.
pub(crate) struct Context<'a> {
    /// The monitors in effect (declared and implicit), by name.
    pub(crate) monitors: &'a BTreeMap<String, MonitorDecl>,
    /// Whether a maintenance window holds `monitor` at `now`.
    pub(crate) silenced: &'a dyn Fn(&str) -> bool,
    /// The hub's network is down: hold every notice back.
    pub(crate) held: bool,
    pub(crate) now: Timestamp,
}

/// The state of every monitor.
#[derive(Debug, Default)]
pub(crate) struct Engine {
    entries: BTreeMap<String, Entry>,
    deleted: Vec<String>,
}

fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn ago(since: Option<Timestamp>, now: Timestamp) -> String {
    match since {
        Some(s) => {
            let secs = now.duration_since(s).as_secs().max(0);
            human(Duration::from_secs(secs.unsigned_abs()))
        }
        None => "a moment".into(),
    }
}

impl Engine {
    /// The engine as the database remembers it.
    pub(crate) fn from_rows(rows: Vec<Row>) -> Self {
        let mut entries = BTreeMap::new();
        for r in rows {
            let machines: BTreeMap<String, MonitorState> = match serde_json::from_str(&r.vantages) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(monitor = %r.key, "stored vantage state unreadable ({e}); starting it over");
                    BTreeMap::new()
                }
            };
            let e = Entry {
                monitor: r.monitor,
                item: r.item,
                state: parse_state(&r.state),
                since: r.since,
                notified: r.notified,
                reminded: r.reminded,
                message: r.message,
                machines,
                last: BTreeMap::new(),
                direct: None,
                silenced: false,
                dirty: false,
            };
            entries.insert(r.key, e);
        }
        Self {
            entries,
            deleted: Vec::new(),
        }
    }

    /// Entries, by key.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Counts one probe result of `decl` at `vantage`. Results of monitors
    /// that don't run there are the caller's to refuse.
    pub(crate) fn observe(
        &mut self,
        decl: &MonitorDecl,
        vantage: &str,
        result: ProbeResult,
        at: Timestamp,
    ) {
        let Some(spec) = decl.spec() else { return };
        let key = key_of(&decl.name, None);
        let e = self
            .entries
            .entry(key)
            .or_insert_with(|| Entry::new(&decl.name, None));
        let m = e
            .machines
            .entry(vantage.to_string())
            .or_insert_with(|| spec.new_state());
        // thresholds follow the configuration
        m.failure_threshold = spec.failure_threshold;
        m.success_threshold = spec.success_threshold;
        if m.observe(result.up, at).is_some() {
            e.dirty = true;
        }
        e.last.insert(vantage.to_string(), LastProbe { result, at });
    }

    /// Sets a built-in monitor's verdict about `item`.
    pub(crate) fn set_direct(&mut self, monitor: &str, item: Option<&str>, direct: Direct) {
        let key = key_of(monitor, item);
        let e = self
            .entries
            .entry(key)
            .or_insert_with(|| Entry::new(monitor, item));
        e.direct = Some(direct);
    }

    /// The acted-on state of the entry `key`, if there is one.
    pub(crate) fn state_of(&self, key: &str) -> Option<State> {
        self.entries.get(key).map(|e| e.state)
    }

    /// The items of built-in `monitor` that have entries.
    pub(crate) fn items_of(&self, monitor: &str) -> BTreeSet<String> {
        self.entries
            .values()
            .filter(|e| e.monitor == monitor)
            .filter_map(|e| e.item.clone())
            .collect()
    }

    /// Forgets an entry (its monitor or item is gone from the configuration).
    pub(crate) fn forget(&mut self, key: &str) {
        if self.entries.remove(key).is_some() {
            self.deleted.push(key.to_string());
        }
    }

    /// Forgets every entry whose monitor is not in `monitors` or is
    /// disabled, and vantage points a probe monitor no longer runs on.
    pub(crate) fn retain_declared(&mut self, monitors: &BTreeMap<String, MonitorDecl>) {
        let gone: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                monitors
                    .get(&e.monitor)
                    .is_none_or(|d| !d.enabled || (d.spec().is_some() && e.item.is_some()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.forget(&k);
        }
        for e in self.entries.values_mut() {
            if let Some(spec) = monitors.get(&e.monitor).and_then(|d| d.spec()) {
                let before = e.machines.len();
                e.machines
                    .retain(|v, _| spec.vantage.iter().any(|w| w.name() == v));
                e.last
                    .retain(|v, _| spec.vantage.iter().any(|w| w.name() == v));
                if e.machines.len() != before {
                    e.dirty = true;
                }
            }
        }
    }

    /// Evaluates every monitor; returns what to write and send.
    pub(crate) fn evaluate(&mut self, cx: &Context<'_>) -> Changes {
        let mut out = Changes {
            deletes: std::mem::take(&mut self.deleted),
            ..Changes::default()
        };
        // every enabled monitor has an entry (probe and disk monitors: one
        // without item), so `bulwark monitors` lists them from the start
        for d in cx.monitors.values().filter(|d| d.enabled) {
            if !matches!(
                d.check,
                MonitorCheck::Backup(_) | MonitorCheck::Replication(_)
            ) {
                self.entries
                    .entry(d.name.clone())
                    .or_insert_with(|| Entry::new(&d.name, None));
            }
        }
        for e in self.entries.values_mut() {
            let Some(decl) = cx.monitors.get(&e.monitor) else {
                continue;
            };
            evaluate_entry(e, decl, cx, &mut out);
            if std::mem::take(&mut e.dirty) {
                out.upserts.push(e.row());
            }
        }
        out
    }

    /// The monitors as `GET /api/v1/monitors` shows them.
    pub(crate) fn view(
        &self,
        monitors: &BTreeMap<String, MonitorDecl>,
        now: Timestamp,
    ) -> Vec<MonitorStatus> {
        let mut by_monitor: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
        for e in self.entries.values() {
            by_monitor.entry(e.monitor.as_str()).or_default().push(e);
        }
        let mut out = Vec::new();
        for d in monitors.values().filter(|d| d.enabled) {
            let mine = by_monitor.remove(d.name.as_str()).unwrap_or_default();
            if mine.is_empty() {
                let (state, message) = match &d.check {
                    MonitorCheck::Replication(_) => {
                        (MonitorHealth::Up, "no open replication alerts".to_string())
                    }
                    MonitorCheck::Backup(_) => {
                        (MonitorHealth::Unknown, "no jobs to watch yet".to_string())
                    }
                    _ => (MonitorHealth::Unknown, "no result yet".to_string()),
                };
                out.push(MonitorStatus {
                    name: d.name.clone(),
                    item: None,
                    kind: d.kind().as_str().to_string(),
                    state,
                    since: None,
                    severity: d.severity,
                    message,
                    silenced: false,
                    notified: None,
                    vantages: Vec::new(),
                });
                continue;
            }
            for e in mine {
                out.push(status_of(e, d, now));
            }
        }
        out
    }
}

fn status_of(e: &Entry, d: &MonitorDecl, now: Timestamp) -> MonitorStatus {
    let mut vantages = Vec::new();
    if let Some(spec) = d.spec() {
        let stale_after =
            SignedDuration::try_from(spec.stale_after()).unwrap_or(SignedDuration::MAX);
        for v in &spec.vantage {
            let name = v.name();
            let m = e.machines.get(name);
            let last = e.last.get(name);
            let last_at = last
                .map(|l| l.at)
                .or_else(|| m.and_then(MonitorState::last_observed));
            vantages.push(VantageStatus {
                vantage: name.to_string(),
                state: health(m.map_or(State::Unknown, MonitorState::state)),
                last_check: last_at,
                last_up: last.map(|l| l.result.up),
                latency_ms: last.map(|l| l.result.latency.as_secs_f64() * 1000.0),
                message: last.map(|l| l.result.message.clone()).unwrap_or_default(),
                cert_days_left: last.and_then(|l| l.result.cert_days_left),
                stale: last_at.is_none_or(|t| now.duration_since(t) > stale_after),
            });
        }
    }
    let severity = e
        .direct
        .as_ref()
        .and_then(|x| x.severity)
        .map_or(d.severity, |s| s.max(d.severity));
    MonitorStatus {
        name: e.monitor.clone(),
        item: e.item.clone(),
        kind: d.kind().as_str().to_string(),
        state: health(e.state),
        since: e.since,
        severity,
        message: e.message.clone(),
        silenced: e.silenced,
        notified: e.notified,
        vantages,
    }
}

/// The verdict about one entry now: state, message, since.
fn verdict(e: &Entry, decl: &MonitorDecl, now: Timestamp) -> (State, String, Option<Timestamp>) {
    if let Some(spec) = decl.spec() {
        let votes: Vec<bulwark_monitor::Vote> = spec
            .vantage
            .iter()
            .filter_map(|v| {
                let m = e.machines.get(v.name())?;
                let at = e
                    .last
                    .get(v.name())
                    .map(|l| l.at)
                    .or_else(|| m.last_observed())?;
                Some(bulwark_monitor::Vote::new(v.name(), m.state(), at))
            })
            .collect();
        let v = decide(&votes, spec.quorum, now, spec.stale_after());
        let single = spec.vantage.len() == 1;
        let msg_of = |names: &[String]| -> String {
            names
                .iter()
                .filter_map(|n| {
                    e.last.get(n).map(|l| {
                        if single {
                            l.result.message.clone()
                        } else {
                            format!("{n}: {}", l.result.message)
                        }
                    })
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let since_of = |names: &[String]| {
            names
                .iter()
                .filter_map(|n| e.machines.get(n).and_then(MonitorState::since))
                .min()
        };
        return match v.state {
            State::Down => {
                let detail = msg_of(&v.down);
                let m = if single {
                    detail
                } else {
                    let mut m = format!(
                        "down from {} of {} vantage points",
                        v.down.len(),
                        spec.vantage.len()
                    );
                    if !detail.is_empty() {
                        m.push_str(" (");
                        m.push_str(&detail);
                        m.push(')');
                    }
                    m
                };
                (State::Down, m, since_of(&v.down))
            }
            State::Up => {
                let mut m = msg_of(&v.up);
                if !v.down.is_empty() {
                    m = format!(
                        "{m}; down only from {} (quorum {} not reached)",
                        v.down.join(", "),
                        spec.quorum
                    );
                }
                (State::Up, m, since_of(&v.up))
            }
            State::Unknown => {
                let m = if v.stale.is_empty() {
                    "waiting for enough results".to_string()
                } else {
                    format!("no fresh result from {}", v.stale.join(", "))
                };
                (State::Unknown, m, None)
            }
        };
    }
    match &e.direct {
        Some(d) => (
            if d.up { State::Up } else { State::Down },
            d.message.clone(),
            None,
        ),
        None => (State::Unknown, "not evaluated yet".into(), None),
    }
}

fn name_of(e: &Entry) -> String {
    key_of(&e.monitor, e.item.as_deref())
}

fn notice(e: &Entry, event: Event, severity: Severity, now: Timestamp) -> Message {
    let name = name_of(e);
    let (title, body) = match event {
        Event::Down => (format!("{name} is down"), e.message.clone()),
        Event::Reminder => (
            format!("{name} is still down ({})", ago(e.since, now)),
            format!(
                "{}\ndown since {}",
                e.message,
                e.since.map_or_else(|| "?".into(), |s| s.to_string())
            ),
        ),
        Event::Up => (
            format!("{name} is up again"),
            format!("{}\nit was down for {}", e.message, ago(e.since, now)),
        ),
        _ => (name.clone(), e.message.clone()),
    };
    Message::new(event, severity, e.monitor.clone(), title, body).with_at(now)
}

fn evaluate_entry(e: &mut Entry, decl: &MonitorDecl, cx: &Context<'_>, out: &mut Changes) {
    let now = cx.now;
    let (state, message, since) = verdict(e, decl, now);
    let severity = e
        .direct
        .as_ref()
        .and_then(|x| x.severity)
        .map_or(decl.severity, |s| s.max(decl.severity));
    e.silenced = (cx.silenced)(&decl.name);
    let muted = cx.held || e.silenced;
    let history = !matches!(decl.check, MonitorCheck::Replication(_));
    if state != State::Unknown || e.message.is_empty() {
        e.message = message;
    }
    match state {
        State::Down => {
            if e.state != State::Down {
                e.state = State::Down;
                e.since = Some(since.unwrap_or(now));
                e.notified = None;
                e.reminded = None;
                e.dirty = true;
                if history {
                    out.history.push(History::Open {
                        key: e.key(),
                        severity,
                        message: e.message.clone(),
                    });
                }
            }
            if !muted {
                if e.notified.is_none() {
                    out.notices.push(notice(e, Event::Down, severity, now));
                    e.notified = Some(now);
                    e.reminded = Some(now);
                    e.dirty = true;
                } else if let (Some(every), Some(last)) = (decl.remind_every, e.reminded) {
                    let every = SignedDuration::try_from(every).unwrap_or(SignedDuration::MAX);
                    if now.duration_since(last) >= every {
                        out.notices.push(notice(e, Event::Reminder, severity, now));
                        e.reminded = Some(now);
                        e.dirty = true;
                    }
                }
            }
        }
        State::Up => {
            if e.state == State::Down {
                if history {
                    out.history.push(History::Close { key: e.key() });
                }
                if e.notified.is_some() && decl.recovery && !muted {
                    out.notices.push(notice(e, Event::Up, severity, now));
                }
            }
            if e.state != State::Up {
                e.state = State::Up;
                e.since = Some(since.unwrap_or(now));
                e.notified = None;
                e.reminded = None;
                e.dirty = true;
            }
        }
        State::Unknown => {}
    }
}

#[cfg(test)]
mod tests;
