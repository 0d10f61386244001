//! Bulwark's service monitors: probes, thresholds and quorum.
//!
//! This crate is the monitoring *library*; it knows nothing of config files,
//! the hub or agents. It has three layers, each usable on its own:
//!
//! 1. **Probes** ([`Probe`], [`probe`]): one check of one thing, bounded by a
//!    timeout, answering [`ProbeResult`] (up or down, latency, a one-line
//!    message saying what was expected and what was seen, certificate days
//!    left). Kinds: [`HttpProbe`], [`TcpProbe`], [`DnsProbe`], [`TlsProbe`],
//!    [`PathProbe`] (including the hung-NFS case) and [`CommandProbe`]. Every
//!    spec is a plain serde struct, so the hub can send it to an agent as JSON.
//! 2. **Thresholds** ([`MonitorState`]): a pure state machine (time is passed
//!    in, nothing reads the clock) that turns single results into a confirmed
//!    state: down after `failure_threshold` consecutive failures (default 3),
//!    up after `success_threshold` consecutive successes (default 2).
//! 3. **Quorum** ([`decide`]): a pure function that combines the confirmed
//!    states of several vantage points (the hub, named agents) into one
//!    [`Verdict`]; a monitor is down only when `quorum` fresh vantage points
//!    agree. [`connectivity_lost`] tells the hub its own network is down.
//!
//! [`runner`] runs monitors on their intervals ([`Prober`] keeps an HTTP
//! client per monitor; [`runner::spawn`] gives every monitor a task).
//!
//! [`MonitorSpec`] bundles a probe with its interval, timeout, thresholds,
//! vantage points and quorum, the unit a config file declares.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use bulwark_monitor::{probe, HttpProbe, MonitorState, Probe, Transition};
//!
//! # async fn run() {
//! let spec = Probe::Http(HttpProbe {
//!     body_contains: Some("ok".into()),
//!     ..HttpProbe::new("http://127.0.0.1:8080/health")
//! });
//! let mut state = MonitorState::default(); // 3 failures → down, 2 successes → up
//! loop {
//!     let result = probe(&spec, Duration::from_secs(10)).await;
//!     println!("{}: {}", if result.up { "up" } else { "down" }, result.message);
//!     if let Some(Transition { from, to, .. }) = state.observe(result.up, jiff::Timestamp::now()) {
//!         println!("confirmed: {from} → {to}");
//!     }
//!     tokio::time::sleep(Duration::from_secs(60)).await;
//! }
//! # }
//! ```
//!
//! Probes never panic on what they read from the network or the filesystem,
//! and every probe returns within its timeout (plus a few milliseconds).

mod cert;
mod command;
mod dns;
mod duration;
mod http;
mod path;
mod quorum;
pub mod runner;
mod spec;
mod state;
mod tcp;
mod tls;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use command::{CommandLine, CommandProbe};
pub use dns::{DnsProbe, Rcode, RecordType};
pub use http::{HttpProbe, JsonCheck, StatusRange};
pub use path::{hung_path_checks, PathCheck, PathProbe};
pub use quorum::{connectivity_lost, decide, Verdict, Vote};
pub use runner::{Observation, Prober};
pub use spec::{MonitorSpec, SpecError, Vantage, DEFAULT_INTERVAL, DEFAULT_TIMEOUT};
pub use state::{
    MonitorState, State, Transition, DEFAULT_FAILURE_THRESHOLD, DEFAULT_SUCCESS_THRESHOLD,
};
pub use tcp::TcpProbe;
pub use tls::TlsProbe;

/// What to check: one probe of one kind.
///
/// Serialized with a `type` tag, e.g.
/// `{"type":"tcp","host":"127.0.0.1","port":22}`, so the hub can hand a
/// probe to an agent as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Probe {
    /// An HTTP(S) request: status, body, JSON field, response time,
    /// certificate days left.
    Http(HttpProbe),
    /// A TCP connect.
    Tcp(TcpProbe),
    /// A DNS query to a given server.
    Dns(DnsProbe),
    /// The certificate of any TLS port: trust and days left.
    Tls(TlsProbe),
    /// A local path: exists, is a mountpoint, answers reads.
    Path(PathProbe),
    /// A local command's exit code.
    Command(CommandProbe),
}

impl Probe {
    /// The probe's kind as written in config files (`"http"`, `"tcp"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Tcp(_) => "tcp",
            Probe::Dns(_) => "dns",
            Probe::Tls(_) => "tls",
            Probe::Path(_) => "path",
            Probe::Command(_) => "command",
        }
    }

    /// Checks the spec without doing any I/O: URLs parse, names are valid,
    /// argv is not empty, and so on. [`probe`] reports the same problems as a
    /// down result, so calling this first is optional; it lets a config
    /// loader reject a bad monitor before it ever runs.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            Probe::Http(p) => p.validate(),
            Probe::Tcp(p) => p.validate(),
            Probe::Dns(p) => p.validate(),
            Probe::Tls(p) => p.validate(),
            Probe::Path(p) => p.validate(),
            Probe::Command(p) => p.validate(),
        }
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Whether every expectation of the probe held.
    pub up: bool,
    /// How long the probe took (for http: until the body was read; for a
    /// probe that timed out: the timeout).
    #[serde(with = "duration::serde_duration")]
    pub latency: Duration,
    /// One line saying what was expected and what was seen, e.g.
    /// `expected status 200-399, got 500`. Never contains header values,
    /// passwords or more than a few hundred characters of remote data.
    pub message: String,
    /// Days until the server certificate's notAfter (negative when expired),
    /// for https and tls probes that got as far as a certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<f64>,
}

impl ProbeResult {
    pub(crate) fn up(latency: Duration, message: impl Into<String>) -> Self {
        ProbeResult {
            up: true,
            latency,
            message: one_line(message.into()),
            cert_days_left: None,
        }
    }

    pub(crate) fn down(latency: Duration, message: impl Into<String>) -> Self {
        ProbeResult {
            up: false,
            latency,
            message: one_line(message.into()),
            cert_days_left: None,
        }
    }

    pub(crate) fn with_cert_days(mut self, days: Option<f64>) -> Self {
        self.cert_days_left = days;
        self
    }
}

/// Runs one probe, bounded by `timeout`: whatever happens (a server that
/// never answers, a hung NFS mount, a command that sleeps forever), the
/// result comes back within the timeout plus scheduling slack, as a down
/// result whose message says what did not answer.
///
/// A zero timeout is treated as one millisecond. Must be called within a
/// tokio runtime (with the time and IO drivers enabled).
pub async fn probe(spec: &Probe, timeout: Duration) -> ProbeResult {
    let timeout = timeout.max(Duration::from_millis(1));
    let start = Instant::now();
    if let Err(e) = spec.validate() {
        return ProbeResult::down(
            start.elapsed(),
            format!("invalid {} probe: {e}", spec.kind()),
        );
    }
    let work = async {
        match spec {
            Probe::Http(p) => http::run(p, timeout).await,
            Probe::Tcp(p) => tcp::run(p, timeout).await,
            Probe::Dns(p) => dns::run(p, timeout).await,
            Probe::Tls(p) => tls::run(p, timeout).await,
            Probe::Command(p) => command::run(p, timeout).await,
            Probe::Path(p) => path::run(p, timeout).await,
        }
    };
    // Each kind handles its own deadline (with a more precise message); this
    // backstop fires only if one of them overran by a margin.
    match tokio::time::timeout(timeout + Duration::from_secs(1), work).await {
        Ok(result) => result,
        Err(_) => ProbeResult::down(
            start.elapsed(),
            format!("no answer within {}", duration::human(timeout)),
        ),
    }
}

/// Keeps a message to one line of bounded length.
pub(crate) fn one_line(s: String) -> String {
    const MAX: usize = 400;
    let mut out = String::with_capacity(s.len().min(MAX));
    let mut last_space = false;
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if out.len() + c.len_utf8() > MAX {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim().to_string()
}

/// Quotes a piece of remote data for a message: at most `max` characters,
/// control characters replaced, in double quotes.
pub(crate) fn quote(s: &str, max: usize) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_flattens_and_bounds() {
        assert_eq!(one_line("a\nb\t\tc".into()), "a b c");
        let long = "x".repeat(1000);
        let l = one_line(long);
        assert!(l.chars().count() <= 401, "{}", l.len());
        assert!(l.ends_with('…'));
    }

    #[test]
    fn quote_bounds_and_escapes() {
        assert_eq!(quote("a\"b\nc", 10), "\"a\\\"b c\"");
        assert_eq!(quote("abcdef", 3), "\"abc…\"");
    }

    #[test]
    fn every_kind_round_trips_through_json() {
        let mut http = HttpProbe::new("https://127.0.0.1:8443/health");
        http.max_response_time = Some(Duration::from_millis(750));
        http.json = Some(JsonCheck {
            pointer: "/status".into(),
            equals: "ok".into(),
        });
        http.min_cert_days = Some(14);
        let mut dns = DnsProbe::new("127.0.0.1:53".parse().unwrap(), "nas.home.arpa");
        dns.record_type = RecordType::MX;
        dns.expected_answers = vec!["10 mx.home.arpa".into()];
        let probes = vec![
            Probe::Http(http),
            Probe::Tcp(TcpProbe {
                host: "::1".into(),
                port: 22,
            }),
            Probe::Dns(dns),
            Probe::Tls(TlsProbe::new("127.0.0.1", 443)),
            Probe::Path(PathProbe::new("/mnt/nas", PathCheck::Mountpoint)),
            Probe::Command(CommandProbe::argv(["/usr/bin/true"])),
        ];
        for p in probes {
            let json = serde_json::to_string(&p).unwrap();
            assert!(
                json.starts_with(&format!("{{\"type\":\"{}\"", p.kind())),
                "{json}"
            );
            let back: Probe = serde_json::from_str(&json).unwrap();
            assert_eq!(back, p, "{json}");
            let spec = MonitorSpec::new("m", p);
            let back: MonitorSpec =
                serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
            assert_eq!(back, spec);
        }
    }

    #[test]
    fn probe_result_round_trips_through_json() {
        let mut r = ProbeResult::down(
            Duration::from_nanos(122_021),
            "expected status 200-399, got 500",
        );
        r.cert_days_left = Some(3.25);
        let json = serde_json::to_string(&r).unwrap();
        let back: ProbeResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "{json}");
        let up = ProbeResult::up(Duration::from_secs(2), "ok");
        let json = serde_json::to_string(&up).unwrap();
        assert_eq!(json, r#"{"up":true,"latency":"2s","message":"ok"}"#);
    }

    #[test]
    fn probe_json_round_trip() {
        let p = Probe::Tcp(TcpProbe {
            host: "127.0.0.1".into(),
            port: 22,
        });
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(j, r#"{"type":"tcp","host":"127.0.0.1","port":22}"#);
        let back: Probe = serde_json::from_str(&j).unwrap();
        assert_eq!(back, p);
    }
}
