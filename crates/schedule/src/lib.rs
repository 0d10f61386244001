//! Schedules: systemd `OnCalendar` expressions, randomized delay and
//! persistent catch-up, as pure functions of (calendar, last run, now, seed).
//!
//! - [`Calendar`] — a parsed expression; [`Calendar::next_after`] is the
//!   first fire time strictly after an instant.
//! - [`Schedule`] — a calendar plus `randomized_delay` and `persistent`;
//!   [`Schedule::plan`] / [`Schedule::next_run`] say when the agent should run
//!   the job next.
//!
//! Nothing here reads the clock, sleeps or does IO: time and seed go in, an
//! instant comes out. See `docs/schedules.md` for the user-facing description.
//!
//! ```
//! use std::time::Duration;
//! use bulwark_schedule::{seed_for, Calendar, Schedule};
//!
//! let calendar = Calendar::parse("Mon..Fri 03:00 Europe/Berlin")?;
//! let now: jiff::Zoned = "2025-03-07T12:00:00+01:00[Europe/Berlin]".parse()?; // a Friday
//! // The next weekday at 03:00 is Monday.
//! let next = calendar.next_after(now.clone()).expect("fires");
//! assert_eq!(next.to_string(), "2025-03-10T03:00:00+01:00[Europe/Berlin]");
//!
//! // With a randomized delay: somewhere in [03:00, 03:30), the same for the
//! // same job and fire time on every call.
//! let schedule = Schedule { calendar, randomized_delay: Duration::from_secs(30 * 60), persistent: true };
//! let seed = seed_for(&["nas", "photos"]);
//! let at = schedule.next_run(None, now.clone(), seed).expect("fires");
//! assert!(at >= next && at < next.checked_add(jiff::Span::new().minutes(30))?);
//! assert_eq!(Some(at), schedule.next_run(None, now, seed));
//!
//! // Errors say where and what.
//! let err = Calendar::parse("Mon..Fri 25:00").unwrap_err();
//! assert_eq!(err.to_string(), "`25:00` (column 10): hour must be 0-23, not 25; write midnight as `00:00`");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod calendar;
mod error;
mod parse;
#[cfg(test)]
mod tests;

use std::time::Duration;

use jiff::{Timestamp, Zoned};

pub use calendar::{Calendar, VALIDATE_YEARS};
pub use error::ScheduleError;

/// The longest delay before a persistent catch-up run (the randomized delay,
/// capped to this, spreads hosts that come back from the same power cut).
pub const CATCH_UP_MAX_DELAY: Duration = Duration::from_secs(5 * 60);

/// A run whose planned time passed less than this long ago is *due* (run it
/// now), not *missed*: it covers an agent that wakes up a little late.
pub const DUE_GRACE: Duration = Duration::from_secs(60);

/// At most this many fire times are looked at per plan (only reachable with
/// a randomized delay far longer than the interval between fire times).
const SCAN_LIMIT: usize = 100_000;

/// When a job runs: a calendar, a randomized delay, and whether missed runs
/// are caught up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The fire times.
    pub calendar: Calendar,
    /// Each run starts at its fire time plus a delay in `[0, randomized_delay)`,
    /// fixed per (seed, fire time). Zero = exactly at the fire time.
    pub randomized_delay: Duration,
    /// Catch up once on a run missed while the host (or agent) was down.
    pub persistent: bool,
}

/// The agent's next run, as planned by [`Schedule::plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextRun {
    /// When to start the run. May be `<= now`: the run is due, start it now.
    pub at: Zoned,
    /// The calendar fire time this run stands for (for a catch-up: the first
    /// missed one).
    pub slot: Zoned,
    /// This is a persistent catch-up of a missed fire time.
    pub catch_up: bool,
}

impl Schedule {
    /// A schedule firing exactly at the calendar's times, not persistent.
    pub fn new(calendar: Calendar) -> Self {
        Self {
            calendar,
            randomized_delay: Duration::ZERO,
            persistent: false,
        }
    }

    /// The randomized delay of the run for fire time `slot`: in
    /// `[0, randomized_delay)`, whole seconds when the bound is at least a
    /// second, and the same for the same (`seed`, `slot`) every time — so a
    /// restart doesn't reshuffle it and tests are reproducible.
    pub fn delay_for(&self, slot: Timestamp, seed: u64) -> Duration {
        scaled(mix(seed, slot.as_second()), self.randomized_delay)
    }

    /// The delay of a persistent catch-up run: in
    /// `[0, min(randomized_delay, CATCH_UP_MAX_DELAY))`, fixed per (`seed`,
    /// missed fire time).
    pub fn catch_up_delay(&self, missed: Timestamp, seed: u64) -> Duration {
        let bound = self.randomized_delay.min(CATCH_UP_MAX_DELAY);
        scaled(mix(seed ^ 0x6361_7463_6875_7021, missed.as_second()), bound)
    }

    /// When to run next; [`Schedule::plan`] without the details.
    pub fn next_run(&self, last_run: Option<Timestamp>, now: Zoned, seed: u64) -> Option<Zoned> {
        self.plan(last_run, now, seed).map(|p| p.at)
    }

    /// Plan the next run.
    ///
    /// - `last_run`: when the last run of this job started (`None`: never ran,
    ///   or no record).
    /// - `now`: the current time.
    /// - `seed`: per job (see [`seed_for`]); fixes each fire time's random delay.
    ///
    /// Each fire time `f` after `last_run` has a planned start `f + delay(f)`.
    /// A planned start more than [`DUE_GRACE`] before `now` was *missed* (the
    /// host was off):
    ///
    /// - `persistent = true` and `last_run` is known: one catch-up run at
    ///   `now + catch_up_delay` — once, however many fire times were missed
    ///   (a 3-day outage of a daily job gives one run, not three); or the next
    ///   regular run if that comes earlier.
    /// - otherwise missed fire times are skipped, and the next regular run is
    ///   returned.
    ///
    /// The result may be `<= now` (a run planned within the last
    /// [`DUE_GRACE`]): start it now. `None` if the calendar never fires again.
    ///
    /// Contract for the agent: plan once, sleep until `at`, run, record the
    /// start as the new `last_run`, plan again. Don't re-plan in a loop to find
    /// out whether a catch-up is due: the catch-up is always `now + delay`, so
    /// re-planning moves it (by at most [`CATCH_UP_MAX_DELAY`]).
    ///
    /// A randomized delay longer than the interval between fire times merges
    /// runs: fire times before the last run's start are not run again.
    pub fn plan(&self, last_run: Option<Timestamp>, now: Zoned, seed: u64) -> Option<NextRun> {
        let zone = self
            .calendar
            .time_zone()
            .cloned()
            .unwrap_or_else(|| now.time_zone().clone());
        let now_ts = now.timestamp();
        // Planned starts at or before `cutoff` are missed; after it, due or pending.
        let cutoff = now_ts.checked_sub(DUE_GRACE).unwrap_or(Timestamp::MIN);
        // No fire time at or before `lo` can still be pending (its delay is < randomized_delay).
        let lo_pending = cutoff
            .checked_sub(self.randomized_delay)
            .unwrap_or(Timestamp::MIN);
        let lo = last_run.map_or(lo_pending, |l| l.max(lo_pending));

        let mut missed: Option<Zoned> = None;
        if let Some(last) = last_run {
            if let Some(first) = self.calendar.next_after(last.to_zoned(zone.clone())) {
                if first.timestamp() <= lo_pending {
                    missed = Some(first);
                }
            }
        }

        let mut best: Option<(Timestamp, Zoned)> = None;
        let mut next = self.calendar.next_after(lo.to_zoned(zone.clone()));
        for _ in 0..SCAN_LIMIT {
            let Some(slot) = next else { break };
            if best.as_ref().is_some_and(|(at, _)| slot.timestamp() >= *at) {
                break; // every later fire time starts later than the best found
            }
            let at = slot
                .timestamp()
                .checked_add(self.delay_for(slot.timestamp(), seed))
                .unwrap_or(Timestamp::MAX);
            if at > cutoff {
                if best.as_ref().is_none_or(|(b, _)| at < *b) {
                    best = Some((at, slot.clone()));
                }
            } else if missed.is_none() && last_run.is_some_and(|l| slot.timestamp() > l) {
                missed = Some(slot.clone());
            }
            next = self.calendar.next_after(slot);
        }

        let regular = best.map(|(at, slot)| NextRun {
            at: at.to_zoned(zone.clone()),
            slot,
            catch_up: false,
        });
        match missed {
            Some(slot) if self.persistent => {
                let at = now_ts
                    .checked_add(self.catch_up_delay(slot.timestamp(), seed))
                    .unwrap_or(now_ts);
                match regular {
                    Some(r) if r.at.timestamp() <= at => Some(r),
                    _ => Some(NextRun {
                        at: at.to_zoned(zone),
                        slot,
                        catch_up: true,
                    }),
                }
            }
            _ => regular,
        }
    }
}

/// A stable 64-bit seed from identifying strings (host, job name, ...):
/// FNV-1a over the parts, separated. Stable across builds and platforms,
/// unlike `std`'s `DefaultHasher`.
pub fn seed_for(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// splitmix64's finalizer: a well-mixed 64-bit value per input.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn mix(seed: u64, slot_second: i64) -> u64 {
    splitmix(seed ^ splitmix(slot_second as u64))
}

/// Map a uniform 64-bit value onto `[0, bound)`.
fn scaled(x: u64, bound: Duration) -> Duration {
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    let v = ((u128::from(x) * u128::from(nanos)) >> 64) as u64;
    let d = Duration::from_nanos(v);
    if bound >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs())
    } else {
        d
    }
}
