//! The threshold state machine: single probe results → a confirmed state.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A monitor's confirmed state (at one vantage point, or after quorum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not enough results yet (or no fresh vantage point).
    #[default]
    Unknown,
    /// Confirmed up.
    Up,
    /// Confirmed down.
    Down,
}

impl State {
    /// `"unknown"`, `"up"` or `"down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of confirmed state, returned by [`MonitorState::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The confirmed state before.
    pub from: State,
    /// The confirmed state now (never [`State::Unknown`]).
    pub to: State,
    /// When the observation that confirmed it was made.
    pub at: Timestamp,
    /// When the streak of results that confirmed it began (the first of the
    /// `failure_threshold` failures, say): "down since".
    pub since: Timestamp,
}

/// Default number of consecutive failures before a monitor is down.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// Default number of consecutive successes before a monitor is up.
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 2;

/// The threshold state machine of one monitor at one vantage point.
///
/// Pure: it never reads the clock; each observation carries its time. It
/// starts [`State::Unknown`], becomes [`State::Down`] after
/// `failure_threshold` consecutive failures and [`State::Up`] after
/// `success_threshold` consecutive successes. A result that breaks a streak
/// resets it, so a flapping service keeps its confirmed state. Serializable,
/// so the hub can persist it across restarts.
///
/// ```
/// use bulwark_monitor::{MonitorState, State};
/// let t = |s: i64| jiff::Timestamp::from_second(s).unwrap();
/// let mut m = MonitorState::new(3, 2);
/// assert!(m.observe(true, t(0)).is_none());
/// let up = m.observe(true, t(60)).unwrap();
/// assert_eq!((up.from, up.to), (State::Unknown, State::Up));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// Consecutive failures needed to confirm down (0 is treated as 1).
    pub failure_threshold: u32,
    /// Consecutive successes needed to confirm up (0 is treated as 1).
    pub success_threshold: u32,
    state: State,
    /// Since when the confirmed state holds (start of its streak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Timestamp>,
    /// Length of the current streak of equal results.
    streak: u32,
    /// Whether the current streak is of successes.
    streak_up: bool,
    /// Time of the first result of the current streak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    streak_start: Option<Timestamp>,
    /// Time of the last observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_observed: Option<Timestamp>,
}

impl Default for MonitorState {
    /// Thresholds 3 (failures) and 2 (successes).
    fn default() -> Self {
        MonitorState::new(DEFAULT_FAILURE_THRESHOLD, DEFAULT_SUCCESS_THRESHOLD)
    }
}

impl MonitorState {
    /// A new machine in [`State::Unknown`] with the given thresholds.
    pub fn new(failure_threshold: u32, success_threshold: u32) -> Self {
        MonitorState {
            failure_threshold,
            success_threshold,
            state: State::Unknown,
            since: None,
            streak: 0,
            streak_up: false,
            streak_start: None,
            last_observed: None,
        }
    }

    /// The confirmed state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Since when the confirmed state holds (when the streak that confirmed
    /// it began); `None` while unknown.
    pub fn since(&self) -> Option<Timestamp> {
        self.since
    }

    /// The current streak: its length and whether it is of successes.
    /// `(0, false)` before the first observation.
    pub fn streak(&self) -> (u32, bool) {
        (self.streak, self.streak_up)
    }

    /// When the last result was observed.
    pub fn last_observed(&self) -> Option<Timestamp> {
        self.last_observed
    }

    /// Records one probe result made at `at`; returns the transition when the
    /// confirmed state changes (Unknown→Up and Unknown→Down count), `None`
    /// otherwise.
    ///
    /// Observations are expected in time order; an out-of-order one is still
    /// counted (the machine has no clock to judge it by).
    pub fn observe(&mut self, up: bool, at: Timestamp) -> Option<Transition> {
        self.last_observed = Some(at);
        if self.streak > 0 && self.streak_up == up {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.streak = 1;
            self.streak_up = up;
            self.streak_start = Some(at);
        }
        let (target, needed) = if up {
            (State::Up, self.success_threshold.max(1))
        } else {
            (State::Down, self.failure_threshold.max(1))
        };
        if self.state == target || self.streak < needed {
            return None;
        }
        let since = self.streak_start.unwrap_or(at);
        let from = self.state;
        self.state = target;
        self.since = Some(since);
        Some(Transition {
            from,
            to: target,
            at,
            since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    /// Feeds results one a minute; returns the transitions with their index.
    fn run(m: &mut MonitorState, results: &[bool]) -> Vec<(usize, State, State)> {
        results
            .iter()
            .enumerate()
            .filter_map(|(i, &up)| {
                m.observe(up, t(i as i64 * 60))
                    .map(|tr| (i, tr.from, tr.to))
            })
            .collect()
    }

    #[test]
    fn starts_unknown_and_confirms_up_after_two_successes() {
        let mut m = MonitorState::default();
        assert_eq!(m.state(), State::Unknown);
        assert_eq!(m.since(), None);
        assert_eq!(m.observe(true, t(0)), None);
        assert_eq!(m.state(), State::Unknown);
        let tr = m.observe(true, t(60)).unwrap();
        assert_eq!(
            tr,
            Transition {
                from: State::Unknown,
                to: State::Up,
                at: t(60),
                since: t(0)
            }
        );
        assert_eq!(m.state(), State::Up);
        assert_eq!(m.since(), Some(t(0)));
        // more successes: no new transition
        assert_eq!(m.observe(true, t(120)), None);
    }

    #[test]
    fn unknown_to_down_after_three_failures() {
        let mut m = MonitorState::default();
        assert_eq!(
            run(&mut m, &[false, false, false, false]),
            vec![(2, State::Unknown, State::Down)]
        );
        assert_eq!(m.since(), Some(t(0)));
    }

    #[test]
    fn up_to_down_needs_three_consecutive_failures() {
        let mut m = MonitorState::default();
        let got = run(
            &mut m,
            &[
                true, true, false, false, true, false, false, false, true, true,
            ],
        );
        assert_eq!(
            got,
            vec![
                (1, State::Unknown, State::Up),
                (7, State::Up, State::Down),
                (9, State::Down, State::Up)
            ]
        );
    }

    #[test]
    fn down_since_is_the_first_failure_of_the_streak() {
        let mut m = MonitorState::default();
        run(&mut m, &[true, true]);
        m.observe(false, t(1000));
        m.observe(false, t(1060));
        let tr = m.observe(false, t(1120)).unwrap();
        assert_eq!((tr.since, tr.at), (t(1000), t(1120)));
        assert_eq!(m.since(), Some(t(1000)));
    }

    #[test]
    fn flapping_never_confirms() {
        let mut m = MonitorState::default();
        let flaps: Vec<bool> = (0..50).map(|i| i % 2 == 0).collect();
        assert_eq!(run(&mut m, &flaps), vec![]);
        assert_eq!(m.state(), State::Unknown);
        // flapping while up keeps it up
        let mut m = MonitorState::default();
        run(&mut m, &[true, true]);
        // one failure in every three results: never three in a row
        let flaps: Vec<bool> = (0..50).map(|i| i % 3 != 0).collect();
        assert_eq!(run(&mut m, &flaps), vec![]);
        assert_eq!(m.state(), State::Up);
    }

    #[test]
    fn thresholds_of_one_and_zero() {
        let mut m = MonitorState::new(1, 1);
        assert_eq!(
            run(&mut m, &[false, true, false]),
            vec![
                (0, State::Unknown, State::Down),
                (1, State::Down, State::Up),
                (2, State::Up, State::Down)
            ]
        );
        let mut z = MonitorState::new(0, 0);
        assert_eq!(run(&mut z, &[true]), vec![(0, State::Unknown, State::Up)]);
    }

    #[test]
    fn custom_thresholds() {
        let mut m = MonitorState::new(5, 3);
        let got = run(&mut m, &[false, false, false, false, true, true, true]);
        assert_eq!(got, vec![(6, State::Unknown, State::Up)]);
        let got = run(&mut m, &[false; 5]);
        assert_eq!(got, vec![(4, State::Up, State::Down)]);
    }

    #[test]
    fn persists_through_json() {
        let mut m = MonitorState::default();
        m.observe(false, t(0));
        m.observe(false, t(60));
        let json = serde_json::to_string(&m).unwrap();
        let mut back: MonitorState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        // the restored machine continues the streak
        assert_eq!(
            back.observe(false, t(120)).map(|tr| tr.to),
            Some(State::Down)
        );
        assert_eq!(back.streak(), (3, false));
        assert_eq!(back.last_observed(), Some(t(120)));
    }
}
