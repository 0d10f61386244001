//! The parsed calendar and its next-fire search.

use std::fmt;
use std::str::FromStr;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan, Zoned};

use super::error::ScheduleError;

/// Smallest year a calendar can name (systemd's lower bound).
pub(crate) const MIN_YEAR: u32 = 1970;
/// Largest year a calendar can name (jiff's upper bound).
pub(crate) const MAX_YEAR: u32 = 9999;
/// The Gregorian calendar (month lengths and weekdays) repeats every 400 years.
const CYCLE_YEARS: i16 = 400;
/// How far ahead [`Calendar::validate`] looks.
pub const VALIDATE_YEARS: i16 = 5;

/// One element of a list: `v`, `a..b`, `v/step`, `a..b/step`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub start: u32,
    pub end: Option<u32>,
    /// 0 = no repetition.
    pub step: u32,
}

impl Item {
    /// The smallest value `>= v` this item produces, not above `max`.
    pub fn next_at_least(&self, v: u32, max: u32) -> Option<u32> {
        let hi = self
            .end
            .unwrap_or(if self.step > 0 { max } else { self.start })
            .min(max);
        let candidate = if v <= self.start {
            self.start
        } else if self.step > 0 {
            let k = (v - self.start).div_ceil(self.step);
            self.start.checked_add(k.checked_mul(self.step)?)?
        } else if self.end.is_some() {
            v
        } else {
            return None;
        };
        (candidate <= hi).then_some(candidate)
    }
}

/// The day-of-month field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Days {
    /// Bit `d` set = day `d` (1..=31).
    Forward(u32),
    /// `~` syntax: counted from the end of the month, `~1` = the last day.
    FromEnd(Vec<Item>),
}

/// A parsed systemd `OnCalendar` expression.
///
/// Build one with [`Calendar::parse`] (or `str::parse`); ask it for fire times
/// with [`Calendar::next_after`]. Pure: no clock is read; the time zone
/// database is only consulted at parse time for a trailing zone name.
///
/// `Display` prints the expression as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    pub(crate) source: String,
    /// Bit 0 = Monday .. bit 6 = Sunday.
    pub(crate) weekdays: u8,
    /// `None` = any year.
    pub(crate) years: Option<Vec<Item>>,
    /// Bit `m` set = month `m` (1..=12).
    pub(crate) months: u16,
    pub(crate) days: Days,
    pub(crate) hours: u32,
    pub(crate) minutes: u64,
    pub(crate) seconds: u64,
    pub(crate) tz: Option<TimeZone>,
}

impl fmt::Display for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Calendar {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Civil fields during the search (wider ints than jiff's, so carries can't overflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Fields {
    y: i16,
    mo: i8,
    d: i8,
    h: i8,
    mi: i8,
    s: i8,
}

impl Fields {
    fn next_year(&mut self) {
        *self = Fields {
            y: self.y.saturating_add(1),
            mo: 1,
            d: 1,
            h: 0,
            mi: 0,
            s: 0,
        };
    }
    fn next_month(&mut self) {
        if self.mo >= 12 {
            self.next_year();
        } else {
            *self = Fields {
                mo: self.mo + 1,
                d: 1,
                h: 0,
                mi: 0,
                s: 0,
                ..*self
            };
        }
    }
    fn next_day(&mut self) {
        if self.d >= days_in_month(self.y, self.mo) {
            self.next_month();
        } else {
            *self = Fields {
                d: self.d + 1,
                h: 0,
                mi: 0,
                s: 0,
                ..*self
            };
        }
    }
    fn next_hour(&mut self) {
        if self.h >= 23 {
            self.next_day();
        } else {
            *self = Fields {
                h: self.h + 1,
                mi: 0,
                s: 0,
                ..*self
            };
        }
    }
    fn next_minute(&mut self) {
        if self.mi >= 59 {
            self.next_hour();
        } else {
            *self = Fields {
                mi: self.mi + 1,
                s: 0,
                ..*self
            };
        }
    }
}

pub(crate) fn is_leap(y: i16) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i16, m: i8) -> i8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Smallest set bit `>= v` in `mask`.
fn next_bit(mask: u64, v: i8) -> Option<i8> {
    let v = u32::try_from(v).ok()?;
    if v >= 64 {
        return None;
    }
    let rest = mask >> v;
    (rest != 0).then(|| (v + rest.trailing_zeros()) as i8)
}

impl Calendar {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The time zone named in the expression, if any.
    pub fn time_zone(&self) -> Option<&TimeZone> {
        self.tz.as_ref()
    }

    /// The first fire time strictly after `t`.
    ///
    /// Computed in the calendar's own zone if the expression names one,
    /// otherwise in `t`'s zone; the result is in that zone. `None` if the
    /// calendar never fires after `t`.
    ///
    /// Wall-clock semantics, as systemd: a time that doesn't exist on a
    /// spring-forward day (02:30 in Europe/Berlin on the last Sunday of
    /// March) is skipped; a time that exists twice on a fall-back day fires
    /// once, at its first occurrence, and the repeated hour fires nothing
    /// (so `hourly` has a two-hour gap that night).
    ///
    /// The search skips by field (year, month, day, hour, minute, second), so
    /// even a calendar that never fires answers in well under a millisecond.
    pub fn next_after(&self, t: Zoned) -> Option<Zoned> {
        let tz = self.tz.clone().unwrap_or_else(|| t.time_zone().clone());
        let after = t.timestamp();
        let local = after.to_zoned(tz.clone()).datetime();
        let mut from = Fields {
            y: local.year(),
            mo: local.month(),
            d: local.day(),
            h: local.hour(),
            mi: local.minute(),
            s: local.second(),
        };
        let cap = if self.years.is_none() {
            from.y.saturating_add(CYCLE_YEARS + 1)
        } else {
            MAX_YEAR as i16
        };
        loop {
            let c = self.next_civil(from, cap)?;
            let dt = DateTime::new(c.y, c.mo, c.d, c.h, c.mi, c.s, 0).ok()?;
            let amb = tz.to_ambiguous_timestamp(dt);
            // Gap: the wall-clock time doesn't exist that day; skip it.
            if !matches!(amb.offset(), AmbiguousOffset::Gap { .. }) {
                // Fold: `compatible` is the earlier of the two instants.
                let at: Timestamp = amb.compatible().ok()?;
                if at > after {
                    return Some(at.to_zoned(tz));
                }
            }
            let next = dt.checked_add(1.second()).ok()?;
            from = Fields {
                y: next.year(),
                mo: next.month(),
                d: next.day(),
                h: next.hour(),
                mi: next.minute(),
                s: next.second(),
            };
        }
    }

    /// Check that the calendar fires within [`VALIDATE_YEARS`] years after
    /// `now`; returns the first fire time.
    ///
    /// `config check` uses this to say "schedule never fires" (`*-02-30`, a
    /// year in the past) or "fires too rarely" (`Mon *-02-29`).
    pub fn validate(&self, now: &Zoned) -> Result<Zoned, ScheduleError> {
        let Some(first) = self.next_after(now.clone()) else {
            return Err(ScheduleError::NeverFires {
                expr: self.source.clone(),
            });
        };
        let horizon = now.checked_add(VALIDATE_YEARS.years()).ok();
        if horizon.is_some_and(|h| first.timestamp() > h.timestamp()) {
            return Err(ScheduleError::TooRare {
                expr: self.source.clone(),
                years: VALIDATE_YEARS,
                first: first.to_string(),
            });
        }
        Ok(first)
    }

    fn next_year(&self, y: i16) -> Option<i16> {
        let v = u32::try_from(y).ok()?;
        match &self.years {
            None => Some(y),
            Some(items) => items
                .iter()
                .filter_map(|i| i.next_at_least(v, MAX_YEAR))
                .min()
                .and_then(|n| i16::try_from(n).ok()),
        }
    }

    fn day_matches(&self, y: i16, m: i8, d: i8) -> bool {
        let dim = days_in_month(y, m);
        let ok = match &self.days {
            Days::Forward(mask) => mask & (1 << d) != 0,
            Days::FromEnd(items) => items.iter().any(|i| from_end_matches(i, dim, d)),
        };
        ok && {
            let wd =
                jiff::civil::Date::new(y, m, d).map(|date| date.weekday().to_monday_zero_offset());
            wd.is_ok_and(|w| self.weekdays & (1 << w) != 0)
        }
    }

    /// The first civil time `>= f` whose fields all match, not beyond year `cap`.
    fn next_civil(&self, mut f: Fields, cap: i16) -> Option<Fields> {
        loop {
            if f.y > cap || f.y > MAX_YEAR as i16 {
                return None;
            }
            let y = self.next_year(f.y)?;
            if y > f.y {
                f = Fields {
                    y,
                    mo: 1,
                    d: 1,
                    h: 0,
                    mi: 0,
                    s: 0,
                };
                continue;
            }
            match next_bit(u64::from(self.months), f.mo) {
                None => {
                    f.next_year();
                    continue;
                }
                Some(m) if m > f.mo => {
                    f = Fields {
                        mo: m,
                        d: 1,
                        h: 0,
                        mi: 0,
                        s: 0,
                        ..f
                    };
                }
                Some(_) => {}
            }
            let dim = days_in_month(f.y, f.mo);
            match (f.d..=dim).find(|&d| self.day_matches(f.y, f.mo, d)) {
                None => {
                    f.next_month();
                    continue;
                }
                Some(d) if d > f.d => {
                    f = Fields {
                        d,
                        h: 0,
                        mi: 0,
                        s: 0,
                        ..f
                    };
                }
                Some(_) => {}
            }
            match next_bit(u64::from(self.hours), f.h) {
                None => {
                    f.next_day();
                    continue;
                }
                Some(h) if h > f.h => {
                    f = Fields {
                        h,
                        mi: 0,
                        s: 0,
                        ..f
                    };
                }
                Some(_) => {}
            }
            match next_bit(self.minutes, f.mi) {
                None => {
                    f.next_hour();
                    continue;
                }
                Some(mi) if mi > f.mi => {
                    f = Fields { mi, s: 0, ..f };
                }
                Some(_) => {}
            }
            match next_bit(self.seconds, f.s) {
                None => {
                    f.next_minute();
                    continue;
                }
                Some(s) => return Some(Fields { s, ..f }),
            }
        }
    }
}

/// Does day `d` of a month with `dim` days match a `~` item?
fn from_end_matches(item: &Item, dim: i8, d: i8) -> bool {
    let dim = i32::from(dim);
    let d = i32::from(d);
    let to_day = |n: u32| dim + 1 - n as i32;
    let a = to_day(item.start);
    let (lo, hi) = match item.end {
        Some(e) => {
            let b = to_day(e);
            (a.min(b), a.max(b))
        }
        None if item.step > 0 => (a, dim),
        None => (a, a),
    };
    if d < lo || d > hi {
        return false;
    }
    item.step == 0 || (d - lo) % item.step as i32 == 0
}
