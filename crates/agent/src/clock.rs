//! Time for the scheduler, injectable so tests drive it.

use jiff::{Timestamp, Zoned};

/// Where the scheduler gets "now" from. It sleeps with `tokio::time`, so a
/// test pauses tokio's clock and uses [`TokioClock`]: time then advances only
/// as the scheduler sleeps, and a 3-day outage takes no real time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in the zone schedules without a zone use.
    fn now(&self) -> Zoned;
}

/// The system's wall clock in the system's time zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Zoned {
        Zoned::now()
    }
}

/// A clock that starts at a given instant and advances with tokio's
/// (pausable) clock.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base: Zoned,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at `base` now.
    pub fn starting_at(base: Zoned) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Zoned {
        let elapsed = self.start.elapsed();
        let ts = self
            .base
            .timestamp()
            .checked_add(elapsed)
            .unwrap_or(Timestamp::MAX);
        ts.to_zoned(self.base.time_zone().clone())
    }
}
