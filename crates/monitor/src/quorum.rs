//! Quorum: the confirmed states of several vantage points → one verdict.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{ProbeResult, State};

/// One vantage point's confirmed state of a monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The vantage point's name (`"hub"` or an agent's host name).
    pub vantage: String,
    /// Its confirmed state ([`crate::MonitorState::state`]).
    pub state: State,
    /// When it last reported (its latest observation).
    pub at: Timestamp,
}

impl Vote {
    /// A vote.
    pub fn new(vantage: impl Into<String>, state: State, at: Timestamp) -> Self {
        Vote {
            vantage: vantage.into(),
            state,
            at,
        }
    }
}

/// The combined state of a monitor, with who said what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Down when at least `quorum` fresh vantage points say down; else up
    /// when at least one fresh vantage point says up; else unknown.
    pub state: State,
    /// Fresh vantage points saying down, sorted by name.
    pub down: Vec<String>,
    /// Fresh vantage points saying up, sorted by name.
    pub up: Vec<String>,
    /// Fresh vantage points whose own state is still unknown, sorted.
    pub unknown: Vec<String>,
    /// Vantage points whose latest vote is older than `stale_after`, sorted.
    pub stale: Vec<String>,
}

/// Combines votes into a [`Verdict`]. Pure: `now` is passed in.
///
/// - Only each vantage point's latest vote counts (by `at`; a later vote
///   from the same name replaces an earlier one).
/// - A vote older than `stale_after` (`now - at > stale_after`) is ignored
///   and listed in [`Verdict::stale`]. A vote from the future (clock skew)
///   counts as fresh.
/// - Down when at least `quorum` fresh vantage points say down (a quorum of
///   0 is treated as 1); up when not down and at least one fresh vantage
///   point says up; unknown otherwise.
///
/// ```
/// use std::time::Duration;
/// use bulwark_monitor::{decide, State, Vote};
/// let now = jiff::Timestamp::from_second(1_000_000).unwrap();
/// let votes = [
///     Vote::new("hub", State::Down, now),
///     Vote::new("nas", State::Down, now),
///     Vote::new("vps", State::Up, now),
/// ];
/// assert_eq!(decide(&votes, 2, now, Duration::from_secs(300)).state, State::Down);
/// assert_eq!(decide(&votes, 3, now, Duration::from_secs(300)).state, State::Up);
/// ```
pub fn decide(votes: &[Vote], quorum: usize, now: Timestamp, stale_after: Duration) -> Verdict {
    let stale_after = SignedDuration::try_from(stale_after).unwrap_or(SignedDuration::MAX);
    let mut latest: BTreeMap<&str, &Vote> = BTreeMap::new();
    for v in votes {
        match latest.get(v.vantage.as_str()) {
            Some(prev) if prev.at >= v.at => {}
            _ => {
                latest.insert(v.vantage.as_str(), v);
            }
        }
    }
    let mut verdict = Verdict {
        state: State::Unknown,
        down: Vec::new(),
        up: Vec::new(),
        unknown: Vec::new(),
        stale: Vec::new(),
    };
    for (name, v) in latest {
        let age = now.duration_since(v.at);
        let list = if age > stale_after {
            &mut verdict.stale
        } else {
            match v.state {
                State::Down => &mut verdict.down,
                State::Up => &mut verdict.up,
                State::Unknown => &mut verdict.unknown,
            }
        };
        list.push(name.to_string());
    }
    verdict.state = if verdict.down.len() >= quorum.max(1) {
        State::Down
    } else if !verdict.up.is_empty() {
        State::Up
    } else {
        State::Unknown
    };
    verdict
}

/// Whether the hub's own connectivity looks lost: it has connectivity
/// probes (say its router and two public resolvers) and none of them is up.
///
/// The hub runs these canary probes beside the real monitors; while this is
/// true, its down results say more about its own network than about the
/// services, so alerts should be held back. An empty slice is `false`
/// (no canaries configured, nothing to conclude).
pub fn connectivity_lost(canaries: &[ProbeResult]) -> bool {
    !canaries.is_empty() && canaries.iter().all(|r| !r.up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }
    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn two_of_three_down_with_quorum_two_is_down() {
        let now = t(1000);
        let votes = [
            Vote::new("hub", State::Down, t(990)),
            Vote::new("nas", State::Down, t(980)),
            Vote::new("vps", State::Up, t(995)),
        ];
        let v = decide(&votes, 2, now, FIVE_MIN);
        assert_eq!(v.state, State::Down);
        assert_eq!(v.down, vec!["hub", "nas"]);
        assert_eq!(v.up, vec!["vps"]);
        assert!(v.stale.is_empty());
    }

    #[test]
    fn one_of_three_down_with_quorum_two_is_up() {
        let now = t(1000);
        let votes = [
            Vote::new("hub", State::Down, t(990)),
            Vote::new("nas", State::Up, t(980)),
            Vote::new("vps", State::Up, t(995)),
        ];
        let v = decide(&votes, 2, now, FIVE_MIN);
        assert_eq!(v.state, State::Up);
        assert_eq!(v.down, vec!["hub"]);
    }

    #[test]
    fn stale_votes_are_ignored() {
        let now = t(1000);
        let votes = [
            Vote::new("hub", State::Down, t(990)),
            // older than 5 minutes: does not count towards the quorum
            Vote::new("nas", State::Down, t(1000 - 301)),
            Vote::new("vps", State::Up, t(995)),
        ];
        let v = decide(&votes, 2, now, FIVE_MIN);
        assert_eq!(v.state, State::Up);
        assert_eq!(v.stale, vec!["nas"]);
        // exactly stale_after old is still fresh
        let votes = [
            Vote::new("hub", State::Down, t(990)),
            Vote::new("nas", State::Down, t(1000 - 300)),
        ];
        assert_eq!(decide(&votes, 2, now, FIVE_MIN).state, State::Down);
    }

    #[test]
    fn all_stale_or_unknown_is_unknown() {
        let now = t(10_000);
        let votes = [
            Vote::new("hub", State::Up, t(0)),
            Vote::new("nas", State::Unknown, t(9_999)),
        ];
        let v = decide(&votes, 1, now, FIVE_MIN);
        assert_eq!(v.state, State::Unknown);
        assert_eq!(v.unknown, vec!["nas"]);
        assert_eq!(v.stale, vec!["hub"]);
        assert_eq!(decide(&[], 1, now, FIVE_MIN).state, State::Unknown);
    }

    #[test]
    fn down_below_quorum_without_up_is_unknown() {
        let now = t(1000);
        let votes = [
            Vote::new("hub", State::Down, t(990)),
            Vote::new("nas", State::Unknown, t(990)),
        ];
        assert_eq!(decide(&votes, 2, now, FIVE_MIN).state, State::Unknown);
        assert_eq!(decide(&votes, 1, now, FIVE_MIN).state, State::Down);
        // quorum 0 behaves as 1
        assert_eq!(decide(&votes, 0, now, FIVE_MIN).state, State::Down);
    }

    #[test]
    fn only_the_latest_vote_of_a_vantage_counts() {
        let now = t(1000);
        let votes = [
            Vote::new("hub", State::Down, t(900)),
            Vote::new("hub", State::Up, t(990)),
            Vote::new("hub", State::Down, t(950)),
            Vote::new("nas", State::Down, t(990)),
        ];
        let v = decide(&votes, 2, now, FIVE_MIN);
        assert_eq!(v.state, State::Up, "{v:?}");
        assert_eq!(v.up, vec!["hub"]);
        assert_eq!(v.down, vec!["nas"]);
    }

    #[test]
    fn future_votes_count_as_fresh() {
        let now = t(1000);
        let votes = [Vote::new("hub", State::Down, t(1060))];
        assert_eq!(decide(&votes, 1, now, FIVE_MIN).state, State::Down);
    }

    #[test]
    fn connectivity_lost_only_when_every_canary_is_down() {
        let up = ProbeResult::up(Duration::ZERO, "ok");
        let down = ProbeResult::down(Duration::ZERO, "no");
        assert!(!connectivity_lost(&[]));
        assert!(!connectivity_lost(&[down.clone(), up.clone()]));
        assert!(connectivity_lost(&[down.clone(), down.clone()]));
        assert!(!connectivity_lost(&[up]));
    }
}
