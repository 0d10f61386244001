//! Pure state computations of the control plane: whether a scheduled job is
//! late, what state a job is in, what state a ping check is in. Time goes in
//! as arguments; nothing here reads the clock, so every rule is unit-tested
//! with explicit instants.
//!
//! The late rule: for a scheduled job, the *expected* run is the latest
//! calendar fire time `f` with `f + randomized_delay + late_after <= now` and
//! `f >= known_since` (when the hub first knew the job). If no run started at
//! or after `f`, the job is late, since `f + randomized_delay`.

use std::time::Duration;

use bulwark_api::{JobState, PingState, RunStatus};
use bulwark_config::JobSchedule;
use bulwark_schedule::Calendar;
use jiff::{tz::TimeZone, Timestamp};

/// Fire times looked at per window when searching the latest one.
const SCAN_LIMIT: usize = 100_000;

/// The latest fire time of `calendar` in `[lo, hi]` (in `zone` unless the
/// calendar names its own).
pub(crate) fn latest_fire(
    calendar: &Calendar,
    zone: &TimeZone,
    lo: Timestamp,
    hi: Timestamp,
) -> Option<Timestamp> {
    if hi < lo {
        return None;
    }
    let zone = calendar.time_zone().unwrap_or(zone).clone();
    // next_after is strict: start a second before `lo` so `lo` itself counts.
    let floor = lo
        .checked_sub(Duration::from_secs(1))
        .unwrap_or(Timestamp::MIN);
    const DAY: u64 = 86_400;
    let windows = [
        60,
        3_600,
        DAY,
        35 * DAY,
        400 * DAY,
        5 * 366 * DAY,
        30 * 366 * DAY,
        u64::MAX,
    ];
    for w in windows {
        let start = if w == u64::MAX {
            floor
        } else {
            hi.checked_sub(Duration::from_secs(w))
                .unwrap_or(Timestamp::MIN)
                .max(floor)
        };
        let mut cur = match calendar.next_after(start.to_zoned(zone.clone())) {
            Some(c) if c.timestamp() <= hi => c,
            _ => {
                if start <= floor {
                    return None;
                }
                continue;
            }
        };
        for _ in 0..SCAN_LIMIT {
            match calendar.next_after(cur.clone()) {
                Some(n) if n.timestamp() <= hi => cur = n,
                _ => break,
            }
        }
        let f = cur.timestamp();
        return (f >= lo).then_some(f);
    }
    None
}

/// When a scheduled job is late: `Some(late_since)`, else `None`.
///
/// `last_started` is the latest start of any run of the job.
pub(crate) fn late_since(
    schedule: &JobSchedule,
    zone: &TimeZone,
    known_since: Timestamp,
    last_started: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let delay = schedule.schedule.randomized_delay;
    let hi = now
        .checked_sub(delay)
        .and_then(|t| t.checked_sub(schedule.late_after))
        .ok()?;
    let f = latest_fire(&schedule.schedule.calendar, zone, known_since, hi)?;
    if last_started.is_some_and(|s| s >= f) {
        return None;
    }
    Some(f.checked_add(delay).unwrap_or(f))
}

/// What the hub knows about one job.
#[derive(Debug, Clone)]
pub(crate) struct JobFacts<'a> {
    /// Its schedule (None: only triggered).
    pub(crate) schedule: Option<&'a JobSchedule>,
    /// When the hub first knew it.
    pub(crate) known_since: Timestamp,
    /// Latest start of any run.
    pub(crate) last_started: Option<Timestamp>,
    /// Status of the last run.
    pub(crate) last_status: Option<RunStatus>,
    /// The (online) host reports it running.
    pub(crate) running: bool,
}

/// A job's state and, when late, since when:
/// running > late > failed (or interrupted) > partial > ok; never ran and
/// not late → pending.
pub(crate) fn job_state(
    facts: &JobFacts<'_>,
    zone: &TimeZone,
    now: Timestamp,
) -> (JobState, Option<Timestamp>) {
    if facts.running {
        return (JobState::Running, None);
    }
    if let Some(s) = facts.schedule {
        if let Some(since) = late_since(s, zone, facts.known_since, facts.last_started, now) {
            return (JobState::Late, Some(since));
        }
    }
    let state = match facts.last_status {
        None => JobState::Pending,
        Some(RunStatus::Failed | RunStatus::Interrupted) => JobState::Failed,
        Some(RunStatus::Partial) => JobState::Partial,
        Some(RunStatus::Success) => JobState::Ok,
    };
    (state, None)
}

/// The kinds of ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PingKind {
    /// `/ping/{uuid}/start`.
    Start,
    /// `/ping/{uuid}` or exit status 0.
    Success,
    /// `/ping/{uuid}/fail` or a non-zero exit status.
    Fail,
}

impl PingKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Success => "success",
            Self::Fail => "fail",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "start" => Self::Start,
            "success" => Self::Success,
            "fail" => Self::Fail,
            _ => return None,
        })
    }
}

/// When a ping check expects its pings.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect<'a> {
    /// Every this long.
    Period(Duration),
    /// On this schedule.
    Schedule(&'a JobSchedule),
}

/// A ping check's state from its last ping (kind and time) and last success.
///
/// - never pinged: new;
/// - last ping a failure: down;
/// - last ping a start: started, late once `grace` passed without an end;
/// - last ping a success: up, late once the next expected ping (period after
///   it, or the next fire time of the schedule after it) plus `grace` passed.
pub(crate) fn ping_state(
    expect: Option<Expect<'_>>,
    grace: Duration,
    zone: &TimeZone,
    last: Option<(PingKind, Timestamp)>,
    now: Timestamp,
) -> PingState {
    let Some((kind, at)) = last else {
        return PingState::New;
    };
    let past = |t: Timestamp, d: Duration| t.checked_add(d).is_ok_and(|end| end < now);
    match kind {
        PingKind::Fail => PingState::Down,
        PingKind::Start => {
            if past(at, grace) {
                PingState::Late
            } else {
                PingState::Started
            }
        }
        PingKind::Success => {
            let late = match expect {
                None => false,
                Some(Expect::Period(p)) => past(at, p.saturating_add(grace)),
                Some(Expect::Schedule(s)) => {
                    let cal = &s.schedule.calendar;
                    let zone = cal.time_zone().unwrap_or(zone).clone();
                    cal.next_after(at.to_zoned(zone))
                        .is_some_and(|next| past(next.timestamp(), grace))
                }
            };
            if late {
                PingState::Late
            } else {
                PingState::Up
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sched(expr: &str, delay: u64, late_after: u64) -> JobSchedule {
        JobSchedule {
            expression: expr.into(),
            schedule: bulwark_schedule::Schedule {
                calendar: Calendar::parse(expr).unwrap(),
                randomized_delay: Duration::from_secs(delay),
                persistent: false,
            },
            late_after: Duration::from_secs(late_after),
        }
    }

    #[test]
    fn latest_fire_finds_the_last_one_in_range() {
        let c = Calendar::parse("*-*-* 02:00:00").unwrap();
        let z = TimeZone::UTC;
        let lo = ts("2026-01-01T00:00:00Z");
        assert_eq!(
            latest_fire(&c, &z, lo, ts("2026-01-10T12:00:00Z")),
            Some(ts("2026-01-10T02:00:00Z"))
        );
        assert_eq!(
            latest_fire(&c, &z, lo, ts("2026-01-10T02:00:00Z")),
            Some(ts("2026-01-10T02:00:00Z"))
        );
        assert_eq!(latest_fire(&c, &z, lo, ts("2026-01-01T01:00:00Z")), None);
        // far in the past: still found quickly
        assert_eq!(
            latest_fire(
                &c,
                &z,
                ts("2000-01-01T00:00:00Z"),
                ts("2026-01-10T12:00:00Z")
            ),
            Some(ts("2026-01-10T02:00:00Z"))
        );
        let every_sec = Calendar::parse("*:*:*").unwrap();
        assert_eq!(
            latest_fire(&every_sec, &z, lo, ts("2026-01-10T12:00:00Z")),
            Some(ts("2026-01-10T12:00:00Z"))
        );
    }

    #[test]
    fn late_rule() {
        let z = TimeZone::UTC;
        let s = sched("*-*-* 02:00:00", 1800, 3600);
        let known = ts("2026-01-01T00:00:00Z");
        // day 2, 03:29: 02:00 + 30 min + 1 h not reached; 01-01 02:00 expected, no run yet
        let now = ts("2026-01-02T03:29:00Z");
        assert_eq!(
            late_since(&s, &z, known, None, now),
            Some(ts("2026-01-01T02:30:00Z"))
        );
        // a run started after 01-01 02:00: not late until 01-02 03:30
        let ran = Some(ts("2026-01-01T02:10:00Z"));
        assert_eq!(late_since(&s, &z, known, ran, now), None);
        assert_eq!(
            late_since(&s, &z, known, ran, ts("2026-01-02T03:30:00Z")),
            Some(ts("2026-01-02T02:30:00Z"))
        );
        // a job the hub learned about after the fire time isn't late for it
        assert_eq!(
            late_since(
                &s,
                &z,
                ts("2026-01-02T02:00:01Z"),
                None,
                ts("2026-01-02T05:00:00Z")
            ),
            None
        );
        // exactly at the fire time counts
        assert_eq!(
            late_since(
                &s,
                &z,
                known,
                Some(ts("2026-01-02T02:00:00Z")),
                ts("2026-01-02T05:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn state_precedence() {
        let z = TimeZone::UTC;
        let s = sched("*-*-* 02:00:00", 0, 3600);
        let now = ts("2026-01-05T12:00:00Z");
        let base = JobFacts {
            schedule: Some(&s),
            known_since: ts("2026-01-01T00:00:00Z"),
            last_started: Some(ts("2026-01-05T02:00:05Z")),
            last_status: Some(RunStatus::Success),
            running: false,
        };
        let st = |f: &JobFacts<'_>| job_state(f, &z, now).0;
        assert_eq!(st(&base), JobState::Ok);
        assert_eq!(
            st(&JobFacts {
                last_status: Some(RunStatus::Partial),
                ..base.clone()
            }),
            JobState::Partial
        );
        assert_eq!(
            st(&JobFacts {
                last_status: Some(RunStatus::Failed),
                ..base.clone()
            }),
            JobState::Failed
        );
        assert_eq!(
            st(&JobFacts {
                last_status: Some(RunStatus::Interrupted),
                ..base.clone()
            }),
            JobState::Failed
        );
        let late = JobFacts {
            last_started: Some(ts("2026-01-04T02:00:05Z")),
            last_status: Some(RunStatus::Failed),
            ..base.clone()
        };
        assert_eq!(
            job_state(&late, &z, now),
            (JobState::Late, Some(ts("2026-01-05T02:00:00Z")))
        );
        assert_eq!(
            st(&JobFacts {
                running: true,
                ..late.clone()
            }),
            JobState::Running
        );
        // never ran, not yet expected
        let fresh = JobFacts {
            known_since: ts("2026-01-05T03:00:00Z"),
            last_started: None,
            last_status: None,
            ..base.clone()
        };
        assert_eq!(st(&fresh), JobState::Pending);
        // unscheduled jobs are never late
        let manual = JobFacts {
            schedule: None,
            last_started: None,
            last_status: None,
            ..base
        };
        assert_eq!(st(&manual), JobState::Pending);
    }

    #[test]
    fn ping_states() {
        let z = TimeZone::UTC;
        let now = ts("2026-01-05T12:00:00Z");
        let hour = Duration::from_secs(3600);
        let p = Some(Expect::Period(Duration::from_secs(86_400)));
        assert_eq!(ping_state(p, hour, &z, None, now), PingState::New);
        let at = |s| Some((PingKind::Success, ts(s)));
        assert_eq!(
            ping_state(p, hour, &z, at("2026-01-04T12:00:00Z"), now),
            PingState::Up
        );
        assert_eq!(
            ping_state(p, hour, &z, at("2026-01-04T10:59:00Z"), now),
            PingState::Late
        );
        assert_eq!(
            ping_state(
                p,
                hour,
                &z,
                Some((PingKind::Fail, ts("2026-01-05T11:00:00Z"))),
                now
            ),
            PingState::Down
        );
        assert_eq!(
            ping_state(
                p,
                hour,
                &z,
                Some((PingKind::Start, ts("2026-01-05T11:30:00Z"))),
                now
            ),
            PingState::Started
        );
        assert_eq!(
            ping_state(
                p,
                hour,
                &z,
                Some((PingKind::Start, ts("2026-01-05T10:30:00Z"))),
                now
            ),
            PingState::Late
        );
        let s = sched("*-*-* 02:00:00", 0, 0);
        let e = Some(Expect::Schedule(&s));
        assert_eq!(
            ping_state(e, hour, &z, at("2026-01-05T02:01:00Z"), now),
            PingState::Up
        );
        assert_eq!(
            ping_state(e, hour, &z, at("2026-01-04T02:01:00Z"), now),
            PingState::Late
        );
    }
}
