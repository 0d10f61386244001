//! A declared monitor: probe + schedule + thresholds + vantage points.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::serde_duration;
use crate::state::{DEFAULT_FAILURE_THRESHOLD, DEFAULT_SUCCESS_THRESHOLD};
use crate::{MonitorState, Probe};

/// A problem with a spec, found without doing any I/O.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A required field is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field, as written in config files.
        field: &'static str,
    },
    /// A field's value is not acceptable.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The field, as written in config files.
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The quorum asks for more vantage points than the monitor runs on.
    #[error("quorum {quorum} needs at least {quorum} vantage points, the monitor has {vantages}")]
    Quorum {
        /// The quorum asked for.
        quorum: usize,
        /// How many vantage points there are.
        vantages: usize,
    },
}

impl SpecError {
    pub(crate) fn invalid(
        field: &'static str,
        value: impl fmt::Display,
        reason: impl fmt::Display,
    ) -> Self {
        SpecError::Invalid {
            field,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Where a monitor runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vantage {
    /// On the hub itself.
    Hub,
    /// On the agent of the named host.
    Agent(String),
}

impl Vantage {
    /// The name its votes carry ([`crate::Vote::vantage`]): `"hub"`, or the
    /// agent's host name.
    pub fn name(&self) -> &str {
        match self {
            Vantage::Hub => "hub",
            Vantage::Agent(host) => host,
        }
    }
}

impl fmt::Display for Vantage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Vantage::Hub => f.write_str("hub"),
            Vantage::Agent(host) => write!(f, "agent {host}"),
        }
    }
}

/// Default time between two probes of a monitor.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default timeout of one probe.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn default_interval() -> Duration {
    DEFAULT_INTERVAL
}
fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}
fn default_failure_threshold() -> u32 {
    DEFAULT_FAILURE_THRESHOLD
}
fn default_success_threshold() -> u32 {
    DEFAULT_SUCCESS_THRESHOLD
}
fn default_vantage() -> Vec<Vantage> {
    vec![Vantage::Hub]
}
fn default_quorum() -> usize {
    1
}

/// One monitor as a config file declares it.
///
/// In JSON, durations are strings such as `"60s"`; every field but `name` and
/// `probe` has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSpec {
    /// The monitor's name (unique in a config file).
    pub name: String,
    /// What to check.
    pub probe: Probe,
    /// Time between two probes (default 60s).
    #[serde(with = "serde_duration", default = "default_interval")]
    pub interval: Duration,
    /// Timeout of one probe (default 10s); at most `interval`.
    #[serde(with = "serde_duration", default = "default_timeout")]
    pub timeout: Duration,
    /// Consecutive failures before down (default 3).
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// Consecutive successes before up (default 2).
    #[serde(default = "default_success_threshold")]
    pub success_threshold: u32,
    /// Where the monitor runs (default: the hub only).
    #[serde(default = "default_vantage")]
    pub vantage: Vec<Vantage>,
    /// How many vantage points must agree before the monitor is down
    /// (default 1).
    #[serde(default = "default_quorum")]
    pub quorum: usize,
}

impl MonitorSpec {
    /// A monitor with every default: every 60s, 10s timeout, thresholds 3
    /// and 2, on the hub, quorum 1.
    pub fn new(name: impl Into<String>, probe: Probe) -> Self {
        MonitorSpec {
            name: name.into(),
            probe,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
            vantage: default_vantage(),
            quorum: 1,
        }
    }

    /// A fresh threshold state machine with this monitor's thresholds.
    pub fn new_state(&self) -> MonitorState {
        MonitorState::new(self.failure_threshold, self.success_threshold)
    }

    /// How old a vantage point's vote may be before [`crate::decide`]
    /// ignores it: two intervals plus the timeout (one missed report is
    /// tolerated, two are not).
    pub fn stale_after(&self) -> Duration {
        self.interval.saturating_mul(2).saturating_add(self.timeout)
    }

    /// Whether the monitor runs at `vantage`.
    pub fn runs_on(&self, vantage: &Vantage) -> bool {
        self.vantage.contains(vantage)
    }

    /// Checks the whole spec without I/O: the probe ([`Probe::validate`]),
    /// a non-empty name, non-zero interval and timeout with timeout ≤
    /// interval, thresholds ≥ 1, at least one vantage point, no duplicates,
    /// and 1 ≤ quorum ≤ number of vantage points.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.name.trim().is_empty() {
            return Err(SpecError::Empty { field: "name" });
        }
        self.probe.validate()?;
        if self.interval.is_zero() {
            return Err(SpecError::invalid(
                "interval",
                "0s",
                "must be more than zero",
            ));
        }
        if self.timeout.is_zero() {
            return Err(SpecError::invalid(
                "timeout",
                "0s",
                "must be more than zero",
            ));
        }
        if self.timeout > self.interval {
            return Err(SpecError::invalid(
                "timeout",
                crate::duration::human(self.timeout),
                format!(
                    "must not exceed the interval ({})",
                    crate::duration::human(self.interval)
                ),
            ));
        }
        if self.failure_threshold == 0 {
            return Err(SpecError::invalid(
                "failure_threshold",
                0,
                "must be at least 1",
            ));
        }
        if self.success_threshold == 0 {
            return Err(SpecError::invalid(
                "success_threshold",
                0,
                "must be at least 1",
            ));
        }
        if self.vantage.is_empty() {
            return Err(SpecError::Empty { field: "vantage" });
        }
        for (i, v) in self.vantage.iter().enumerate() {
            if let Vantage::Agent(host) = v {
                if host.trim().is_empty() {
                    return Err(SpecError::Empty {
                        field: "vantage agent name",
                    });
                }
            }
            if self.vantage[..i].iter().any(|w| w.name() == v.name()) {
                return Err(SpecError::invalid("vantage", v.name(), "listed twice"));
            }
        }
        if self.quorum == 0 || self.quorum > self.vantage.len() {
            return Err(SpecError::Quorum {
                quorum: self.quorum,
                vantages: self.vantage.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TcpProbe;

    fn tcp() -> Probe {
        Probe::Tcp(TcpProbe {
            host: "127.0.0.1".into(),
            port: 22,
        })
    }

    #[test]
    fn defaults_from_minimal_json() {
        let s: MonitorSpec = serde_json::from_str(
            r#"{"name":"ssh","probe":{"type":"tcp","host":"127.0.0.1","port":22}}"#,
        )
        .unwrap();
        assert_eq!(s, MonitorSpec::new("ssh", tcp()));
        assert_eq!(s.new_state(), MonitorState::new(3, 2));
        assert_eq!(s.stale_after(), Duration::from_secs(130));
        s.validate().unwrap();
    }

    #[test]
    fn full_json_round_trip() {
        let mut s = MonitorSpec::new("ssh", tcp());
        s.interval = Duration::from_secs(30);
        s.timeout = Duration::from_millis(2500);
        s.vantage = vec![
            Vantage::Hub,
            Vantage::Agent("nas".into()),
            Vantage::Agent("vps".into()),
        ];
        s.quorum = 2;
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""interval":"30s""#), "{json}");
        assert!(
            json.contains(r#""vantage":["hub",{"agent":"nas"},{"agent":"vps"}]"#),
            "{json}"
        );
        let back: MonitorSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        back.validate().unwrap();
        assert!(back.runs_on(&Vantage::Agent("nas".into())));
        assert!(!back.runs_on(&Vantage::Agent("pi".into())));
    }

    #[test]
    fn validate_refuses_bad_specs() {
        let base = MonitorSpec::new("ssh", tcp());
        let cases: Vec<(MonitorSpec, &str)> = vec![
            (
                MonitorSpec {
                    name: " ".into(),
                    ..base.clone()
                },
                "name must not be empty",
            ),
            (
                MonitorSpec {
                    quorum: 2,
                    ..base.clone()
                },
                "quorum 2 needs at least 2 vantage points, the monitor has 1",
            ),
            (
                MonitorSpec {
                    quorum: 0,
                    ..base.clone()
                },
                "quorum 0",
            ),
            (
                MonitorSpec {
                    vantage: vec![],
                    ..base.clone()
                },
                "vantage must not be empty",
            ),
            (
                MonitorSpec {
                    vantage: vec![Vantage::Hub, Vantage::Hub],
                    ..base.clone()
                },
                "listed twice",
            ),
            (
                MonitorSpec {
                    timeout: Duration::from_secs(90),
                    ..base.clone()
                },
                "must not exceed the interval (1m)",
            ),
            (
                MonitorSpec {
                    failure_threshold: 0,
                    ..base.clone()
                },
                "failure_threshold",
            ),
            (
                MonitorSpec {
                    probe: Probe::Tcp(TcpProbe {
                        host: "".into(),
                        port: 1,
                    }),
                    ..base.clone()
                },
                "host must not be empty",
            ),
        ];
        for (spec, want) in cases {
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }
}
