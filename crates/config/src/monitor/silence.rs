//! `[[silences]]`: maintenance windows, one-off (`from`/`until`) or
//! recurring (`schedule`/`duration`), in which matching monitors send
//! nothing.

use std::{collections::BTreeSet, time::Duration};

use bulwark_schedule::Calendar;
use jiff::{tz::TimeZone, Timestamp, Zoned};
use serde_spanned::Spanned;

use crate::{
    fields::{glob_route, monitor_patterns, subject},
    multihost::{self, ScheduleKeys},
    raw::RawSilence,
    read::{Ctx, Item},
};

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

pub(super) fn silence(
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
}
