//! The alerting rules, driven with simulated time (every call takes its
//! `now`), and persisted through a real SQLite database to check that a
//! hub restart neither repeats nor loses a notice.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use bulwark_config::{ProbeCheck, Silence, SilenceWindow};
use bulwark_monitor::{MonitorSpec, Probe, TcpProbe};
use bulwark_notify::Route;

use super::*;

const MIN: i64 = 60;
const HOUR: i64 = 3600;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn probe_decl(name: &str, on: &[&str], quorum: usize) -> MonitorDecl {
    let mut spec = MonitorSpec::new(
        name,
        Probe::Tcp(TcpProbe {
            host: "127.0.0.1".into(),
            port: 9,
        }),
    );
    spec.vantage = on
        .iter()
        .map(|v| {
            if *v == "hub" {
                bulwark_monitor::Vantage::Hub
            } else {
                bulwark_monitor::Vantage::Agent((*v).into())
            }
        })
        .collect();
    spec.quorum = quorum;
    MonitorDecl {
        name: name.into(),
        check: MonitorCheck::Probe(ProbeCheck {
            spec,
            secret_headers: BTreeMap::new(),
        }),
        severity: Severity::Critical,
        remind_every: Some(Duration::from_secs(3600)),
        recovery: true,
        enabled: true,
    }
}

fn res(up: bool) -> ProbeResult {
    ProbeResult {
        up,
        latency: Duration::from_millis(3),
        message: if up {
            "connected".into()
        } else {
            "connection refused".into()
        },
        cert_days_left: None,
    }
}

/// A hub in miniature: engine + monitors + silences + the outbox (a list).
struct Harness {
    engine: Engine,
    monitors: BTreeMap<String, MonitorDecl>,
    silences: Vec<Silence>,
    held: bool,
    sent: Vec<(Event, String)>,
}

impl Harness {
    fn new(decls: Vec<MonitorDecl>) -> Self {
        Self {
            engine: Engine::default(),
            monitors: decls.into_iter().map(|d| (d.name.clone(), d)).collect(),
            silences: Vec::new(),
            held: false,
            sent: Vec::new(),
        }
    }

    fn observe(&mut self, monitor: &str, vantage: &str, up: bool, at: Timestamp) {
        let d = self.monitors[monitor].clone();
        self.engine.observe(&d, vantage, res(up), at);
    }

    /// Evaluates at `now`; returns the notices of this evaluation.
    fn eval(&mut self, now: Timestamp) -> Vec<(Event, String)> {
        let silences = self.silences.clone();
        let silenced = move |m: &str| silences.iter().any(|s| s.silences(m, now));
        let cx = Context {
            monitors: &self.monitors,
            silenced: &silenced,
            held: self.held,
            now,
        };
        let ch = self.engine.evaluate(&cx);
        let got: Vec<(Event, String)> = ch
            .notices
            .iter()
            .map(|m| (m.event, m.title.clone()))
            .collect();
        self.sent.extend(got.clone());
        got
    }

    /// Probes `monitor` at `vantage` every minute from `from` for `n`
    /// minutes, evaluating after each; returns all notices.
    fn run(
        &mut self,
        monitor: &str,
        vantage: &str,
        up: bool,
        from: i64,
        n: i64,
    ) -> Vec<(Event, String)> {
        let mut out = Vec::new();
        for i in 0..n {
            let at = t(from + i * MIN);
            self.observe(monitor, vantage, up, at);
            out.extend(self.eval(at));
        }
        out
    }

    fn state(&self, key: &str) -> State {
        self.engine
            .entries()
            .find(|e| key_of(&e.monitor, e.item.as_deref()) == key)
            .map_or(State::Unknown, |e| e.state)
    }
}

fn events(v: &[(Event, String)]) -> Vec<Event> {
    v.iter().map(|(e, _)| *e).collect()
}

#[test]
fn down_after_the_failure_threshold_once_then_reminders_then_recovery() {
    let mut h = Harness::new(vec![probe_decl("web", &["hub"], 1)]);
    assert!(
        h.run("web", "hub", true, 0, 2).is_empty(),
        "unknown → up sends nothing"
    );
    assert_eq!(h.state("web"), State::Up);
    // two failures: below the threshold of 3
    assert!(h.run("web", "hub", false, 2 * MIN, 2).is_empty());
    assert_eq!(h.state("web"), State::Up);
    // the third confirms it: one down notice
    let n = h.run("web", "hub", false, 4 * MIN, 1);
    assert_eq!(events(&n), [Event::Down], "{n:?}");
    assert_eq!(n[0].1, "web is down");
    // still down for 59 more minutes: nothing more
    assert!(h.run("web", "hub", false, 5 * MIN, 58).is_empty());
    // an hour after the down notice: a reminder, then again an hour later
    let n = h.run("web", "hub", false, 63 * MIN, 2);
    assert_eq!(events(&n), [Event::Reminder], "{n:?}");
    assert!(n[0].1.starts_with("web is still down ("), "{n:?}");
    let n = h.run("web", "hub", false, 65 * MIN, 60);
    assert_eq!(events(&n), [Event::Reminder]);
    // one success is not enough (threshold 2); the second is
    assert!(h.run("web", "hub", true, 125 * MIN, 1).is_empty());
    let n = h.run("web", "hub", true, 126 * MIN, 5);
    assert_eq!(events(&n), [Event::Up]);
    assert_eq!(n[0].1, "web is up again");
    assert_eq!(h.state("web"), State::Up);
    assert_eq!(
        events(&h.sent),
        [Event::Down, Event::Reminder, Event::Reminder, Event::Up]
    );
}

#[test]
fn a_flapping_service_keeps_its_state() {
    let mut h = Harness::new(vec![probe_decl("web", &["hub"], 1)]);
    h.run("web", "hub", true, 0, 2);
    for i in 0..30 {
        // down, down, up, down, down, up, ...: never three in a row
        let up = i % 3 == 2;
        h.run("web", "hub", up, 2 * MIN + i * MIN, 1);
    }
    assert!(h.sent.is_empty(), "{:?}", h.sent);
}

#[test]
fn no_reminders_when_off_and_no_recovery_when_not_wanted() {
    let mut d = probe_decl("web", &["hub"], 1);
    d.remind_every = None;
    d.recovery = false;
    let mut h = Harness::new(vec![d]);
    h.run("web", "hub", false, 0, 3 * 24 * 60);
    h.run("web", "hub", true, 3 * 24 * HOUR, 3);
    assert_eq!(events(&h.sent), [Event::Down]);
}

#[test]
fn quorum_needs_enough_vantage_points_and_ignores_stale_ones() {
    let mut h = Harness::new(vec![probe_decl("api", &["hub", "nas", "vps"], 2)]);
    for m in 0..3 {
        for v in ["hub", "nas", "vps"] {
            h.observe("api", v, true, t(m * MIN));
        }
        h.eval(t(m * MIN));
    }
    assert_eq!(h.state("api"), State::Up);
    // the hub's link is flaky: only the hub sees it down
    for m in 3..10 {
        h.observe("api", "hub", false, t(m * MIN));
        h.observe("api", "nas", true, t(m * MIN));
        h.observe("api", "vps", true, t(m * MIN));
        assert!(h.eval(t(m * MIN)).is_empty());
    }
    let view = h.engine.view(&h.monitors, t(9 * MIN));
    assert!(
        view[0]
            .message
            .contains("down only from hub (quorum 2 not reached)"),
        "{:?}",
        view[0].message
    );
    // the NAS agrees now: down
    let mut got = Vec::new();
    for m in 10..14 {
        h.observe("api", "hub", false, t(m * MIN));
        h.observe("api", "nas", false, t(m * MIN));
        h.observe("api", "vps", true, t(m * MIN));
        got.extend(h.eval(t(m * MIN)));
    }
    assert_eq!(events(&got), [Event::Down], "{got:?}");
    let view = h.engine.view(&h.monitors, t(13 * MIN));
    assert!(
        view[0].message.starts_with(
            "down from 2 of 3 vantage points (hub: connection refused; nas: connection refused)"
        ),
        "{}",
        view[0].message
    );
    // the NAS agent stops reporting: its vote goes stale (2 intervals + timeout)
    // and one vantage point is not a quorum: up again
    let mut got = Vec::new();
    for m in 14..20 {
        h.observe("api", "hub", false, t(m * MIN));
        h.observe("api", "vps", true, t(m * MIN));
        got.extend(h.eval(t(m * MIN)));
    }
    assert_eq!(events(&got), [Event::Up], "{got:?}");
    let view = h.engine.view(&h.monitors, t(19 * MIN));
    let nas = view[0]
        .vantages
        .iter()
        .find(|v| v.vantage == "nas")
        .unwrap();
    assert!(nas.stale, "{nas:?}");
}

#[test]
fn a_maintenance_window_holds_notices_back_and_releases_them_after() {
    let mut h = Harness::new(vec![
        probe_decl("web", &["hub"], 1),
        probe_decl("db", &["hub"], 1),
    ]);
    h.silences.push(Silence {
        monitors: vec!["we*".into()],
        window: SilenceWindow::Once {
            from: t(10 * MIN),
            until: t(40 * MIN),
        },
        reason: Some("upgrade".into()),
    });
    h.run("web", "hub", true, 0, 2);
    h.run("db", "hub", true, 0, 2);
    // both go down inside the window: only db (not covered) notifies
    let mut got = Vec::new();
    for m in 12..20 {
        h.observe("web", "hub", false, t(m * MIN));
        h.observe("db", "hub", false, t(m * MIN));
        got.extend(h.eval(t(m * MIN)));
    }
    assert_eq!(got, [(Event::Down, "db is down".to_string())]);
    assert_eq!(h.state("web"), State::Down, "the state is still tracked");
    let view = h.engine.view(&h.monitors, t(19 * MIN));
    assert!(view.iter().find(|s| s.name == "web").unwrap().silenced);
    // web is still down when the window ends: its down notice goes out then
    let n = h.run("web", "hub", false, 20 * MIN, 20);
    assert!(n.is_empty());
    let n = h.run("web", "hub", false, 40 * MIN, 1);
    assert_eq!(n, [(Event::Down, "web is down".to_string())]);

    // a recurring window: every day 03:00 for an hour (UTC here)
    let mut h = Harness::new(vec![probe_decl("web", &["hub"], 1)]);
    h.silences.push(Silence {
        monitors: vec![],
        window: SilenceWindow::Recurring {
            calendar: bulwark_schedule::Calendar::parse("*-*-* 03:00 UTC").unwrap(),
            duration: Duration::from_secs(3600),
        },
        reason: None,
    });
    // find the next 03:00 UTC after t(0)
    let zoned = t(0).to_zoned(jiff::tz::TimeZone::UTC);
    let three = zoned
        .date()
        .at(3, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let three = if three <= t(0) {
        three + SignedDuration::from_hours(24)
    } else {
        three
    };
    let base = three.as_second() - 1_800_000_000;
    h.run("web", "hub", true, base - 10 * MIN, 2);
    // down from 03:05 to 03:30, up again before the window ends: no message at all
    let n = h.run("web", "hub", false, base + 5 * MIN, 25);
    assert!(n.is_empty(), "{n:?}");
    let n = h.run("web", "hub", true, base + 30 * MIN, 3);
    assert!(n.is_empty(), "{n:?}");
    assert!(h.sent.is_empty());
}

#[test]
fn no_network_holds_notices_back_like_a_silence() {
    let mut h = Harness::new(vec![probe_decl("web", &["nas"], 1)]);
    h.run("web", "nas", true, 0, 2);
    h.held = true;
    assert!(h.run("web", "nas", false, 2 * MIN, 10).is_empty());
    h.held = false;
    assert_eq!(
        events(&h.run("web", "nas", false, 12 * MIN, 1)),
        [Event::Down]
    );
}

#[test]
fn built_in_verdicts_notify_per_item_with_the_higher_severity() {
    let decl = MonitorDecl {
        name: "offsite".into(),
        check: MonitorCheck::Replication(bulwark_config::ReplicationCheck {
            targets: vec![],
            jobs: vec![],
        }),
        severity: Severity::Warning,
        remind_every: None,
        recovery: true,
        enabled: true,
    };
    let mut h = Harness::new(vec![decl]);
    let item = "replication.shrink nas/main";
    h.engine.set_direct(
        "offsite",
        Some(item),
        Direct {
            up: false,
            message: "shrank".into(),
            severity: Some(Severity::Critical),
        },
    );
    let silenced = |_: &str| false;
    let cx = Context {
        monitors: &h.monitors,
        silenced: &silenced,
        held: false,
        now: t(0),
    };
    let ch = h.engine.evaluate(&cx);
    assert_eq!(ch.notices.len(), 1);
    assert_eq!(
        ch.notices[0].severity,
        Severity::Critical,
        "a critical alert stays critical"
    );
    assert_eq!(
        ch.notices[0].subject, "offsite",
        "routes match the monitor's name"
    );
    assert_eq!(
        ch.notices[0].title,
        "offsite/replication.shrink nas/main is down"
    );
    assert!(
        ch.history.is_empty(),
        "replication alerts are already in the history"
    );
    let ch = h.engine.evaluate(&cx);
    assert!(ch.notices.is_empty(), "once");
    h.engine.set_direct(
        "offsite",
        Some(item),
        Direct {
            up: true,
            message: "resolved".into(),
            severity: None,
        },
    );
    let ch = h.engine.evaluate(&Context { now: t(60), ..cx });
    assert_eq!(
        ch.notices.iter().map(|m| m.event).collect::<Vec<_>>(),
        [Event::Up]
    );
}

// ------------------------------------------------------------ persistence

fn open_db(dir: &std::path::Path) -> rusqlite::Connection {
    crate::control::db::open(dir).unwrap()
}

/// Evaluates and writes like the service does; returns the notices.
fn eval_persist(
    engine: &mut Engine,
    c: &mut rusqlite::Connection,
    monitors: &BTreeMap<String, MonitorDecl>,
    now: Timestamp,
) -> Vec<Event> {
    let silenced = |_: &str| false;
    let cx = Context {
        monitors,
        silenced: &silenced,
        held: false,
        now,
    };
    let ch = engine.evaluate(&cx);
    let routes = vec![Route {
        notifiers: vec!["phone".into()],
        subjects: vec![],
        min_severity: Severity::Info,
    }];
    let names: BTreeSet<String> = ["phone".to_string()].into();
    super::super::db::apply(c, &ch, &routes, &names, now).unwrap();
    ch.notices.iter().map(|m| m.event).collect()
}

#[test]
fn a_restart_neither_repeats_nor_loses_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let monitors: BTreeMap<String, MonitorDecl> =
        [("web".to_string(), probe_decl("web", &["hub"], 1))].into();
    let mut c = open_db(dir.path());
    let mut engine = Engine::from_rows(super::super::db::load(&c).unwrap());
    let mut sent = Vec::new();
    for m in 0..2 {
        engine.observe(&monitors["web"], "hub", res(true), t(m * MIN));
        sent.extend(eval_persist(&mut engine, &mut c, &monitors, t(m * MIN)));
    }
    for m in 2..10 {
        engine.observe(&monitors["web"], "hub", res(false), t(m * MIN));
        sent.extend(eval_persist(&mut engine, &mut c, &monitors, t(m * MIN)));
    }
    assert_eq!(sent, [Event::Down]);
    // the down notice is in the outbox, the outage in the history
    let queued = super::super::db::due(&c, t(10 * MIN), 10).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].notifier.as_str(), queued[0].message.event),
        ("phone", Event::Down)
    );
    let open = crate::control::alerts::list(&c, Some(true), 10).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].kind.as_str(), open[0].subject.as_str()),
        ("monitor", "web")
    );

    // the hub stops (the notice was not delivered yet) and starts again
    drop(engine);
    drop(c);
    let mut c = open_db(dir.path());
    let mut engine = Engine::from_rows(super::super::db::load(&c).unwrap());
    assert_eq!(
        super::super::db::due(&c, t(20 * MIN), 10).unwrap().len(),
        1,
        "the undelivered notice survived"
    );
    let mut sent = Vec::new();
    // right after the restart, before any new result: unknown → nothing
    sent.extend(eval_persist(&mut engine, &mut c, &monitors, t(20 * MIN)));
    // still down: no second down notice; the reminder keeps its hour
    for m in 21..64 {
        engine.observe(&monitors["web"], "hub", res(false), t(m * MIN));
        sent.extend(eval_persist(&mut engine, &mut c, &monitors, t(m * MIN)));
    }
    assert!(sent.is_empty(), "no duplicate: {sent:?}");
    for m in 64..65 {
        engine.observe(&monitors["web"], "hub", res(false), t(m * MIN));
        sent.extend(eval_persist(&mut engine, &mut c, &monitors, t(m * MIN)));
    }
    assert_eq!(
        sent,
        [Event::Reminder],
        "the reminder is due an hour after the notice at minute 4"
    );
    // a restart in the middle of the recovery streak
    engine.observe(&monitors["web"], "hub", res(true), t(65 * MIN));
    eval_persist(&mut engine, &mut c, &monitors, t(65 * MIN));
    drop(engine);
    let mut engine = Engine::from_rows(super::super::db::load(&c).unwrap());
    let mut sent = Vec::new();
    for m in 66..70 {
        engine.observe(&monitors["web"], "hub", res(true), t(m * MIN));
        sent.extend(eval_persist(&mut engine, &mut c, &monitors, t(m * MIN)));
    }
    assert_eq!(sent, [Event::Up], "recovery exactly once");
    assert!(
        crate::control::alerts::list(&c, Some(true), 10)
            .unwrap()
            .is_empty(),
        "the outage is closed in the history"
    );
    assert_eq!(crate::control::alerts::list(&c, None, 10).unwrap().len(), 1);
    let all = super::super::db::due(&c, t(100 * MIN), 10).unwrap();
    assert_eq!(
        all.iter().map(|q| q.message.event).collect::<Vec<_>>(),
        [Event::Down, Event::Reminder, Event::Up]
    );
}

#[test]
fn a_removed_monitor_is_forgotten_and_its_history_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut monitors: BTreeMap<String, MonitorDecl> =
        [("web".to_string(), probe_decl("web", &["hub"], 1))].into();
    let mut c = open_db(dir.path());
    let mut engine = Engine::default();
    for m in 0..3 {
        engine.observe(&monitors["web"], "hub", res(false), t(m * MIN));
        eval_persist(&mut engine, &mut c, &monitors, t(m * MIN));
    }
    assert_eq!(super::super::db::load(&c).unwrap().len(), 1);
    monitors.clear();
    engine.retain_declared(&monitors);
    eval_persist(&mut engine, &mut c, &monitors, t(5 * MIN));
    assert!(super::super::db::load(&c).unwrap().is_empty());
    assert!(crate::control::alerts::list(&c, Some(true), 10)
        .unwrap()
        .is_empty());
}

#[test]
fn backup_verdicts() {
    use crate::control::db::{ms, JobRow};
    let now = t(10 * 24 * HOUR);
    let max = Duration::from_secs(48 * 3600);
    let mut row = JobRow {
        host: "nas".into(),
        name: "photos".into(),
        kind: bulwark_api::RunKind::Backup,
        known_since: ms(t(0)),
        last_run: None,
        last_started: None,
        last_success: None,
    };
    let v = super::super::backup_verdict("photos", Some(&row), max, now);
    assert!(
        !v.up
            && v.message
                .contains("no successful backup of photos on nas yet"),
        "{v:?}"
    );
    row.known_since = ms(now - SignedDuration::from_hours(47));
    assert!(
        super::super::backup_verdict("photos", Some(&row), max, now).up,
        "new job: give it max_age"
    );
    row.last_success = Some(ms(now - SignedDuration::from_hours(49)));
    let v = super::super::backup_verdict("photos", Some(&row), max, now);
    assert!(
        !v.up && v.message.contains("is 2days 1h old (max_age 2days)"),
        "{v:?}"
    );
    row.last_success = Some(ms(now - SignedDuration::from_hours(3)));
    assert!(super::super::backup_verdict("photos", Some(&row), max, now).up);
}
