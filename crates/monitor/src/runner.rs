//! Running monitors on their intervals: [`Prober`] (one monitor, its HTTP
//! client built once) and [`spawn`] (every monitor of a vantage point, each
//! in its own task, results on a channel).

use std::{
    hash::{Hash, Hasher},
    time::Duration,
};

use jiff::Timestamp;
use tokio::{sync::mpsc, task::JoinSet, time::MissedTickBehavior};

use crate::{http, probe, MonitorSpec, Probe, ProbeResult};

/// One monitor, ready to probe again and again. For `http` probes the
/// client (with its TLS settings and CA file) is built once, not per probe,
/// and shared between monitors with the same settings; connections are
/// still fresh each time.
#[derive(Debug)]
pub struct Prober {
    probe: Probe,
    timeout: Duration,
    http: Option<Result<reqwest::Client, String>>,
}

impl Prober {
    /// Prepares `probe` with `timeout` (a zero timeout is one millisecond).
    pub fn new(probe: Probe, timeout: Duration) -> Self {
        let timeout = timeout.max(Duration::from_millis(1));
        let http = match &probe {
            Probe::Http(h) if probe.validate().is_ok() => Some(http::shared_client(h, timeout)),
            _ => None,
        };
        Self {
            probe,
            timeout,
            http,
        }
    }

    /// Runs the probe once; same contract as [`crate::probe`].
    pub async fn run(&self) -> ProbeResult {
        match (&self.probe, &self.http) {
            (Probe::Http(h), Some(Ok(client))) => {
                let work = http::run_with(h, client, self.timeout);
                match tokio::time::timeout(self.timeout + Duration::from_secs(1), work).await {
                    Ok(r) => r,
                    Err(_) => ProbeResult::down(
                        self.timeout,
                        format!("no answer within {}", crate::duration::human(self.timeout)),
                    ),
                }
            }
            (Probe::Http(_), Some(Err(e))) => ProbeResult::down(Duration::ZERO, e.clone()),
            _ => probe(&self.probe, self.timeout).await,
        }
    }
}

/// One result of a scheduled monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The monitor's name.
    pub monitor: String,
    /// What the probe saw.
    pub result: ProbeResult,
    /// When the probe finished.
    pub at: Timestamp,
}

/// The delay before a monitor's first probe: spread over the first
/// `min(interval, 10s)` by its name, so a thousand monitors don't all fire
/// in the same millisecond, yet the same monitor always starts at the same
/// offset.
pub fn first_delay(name: &str, interval: Duration) -> Duration {
    let window = interval.min(Duration::from_secs(10));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(h.finish() % millis)
}

/// Runs every spec on its interval, each in its own task, and sends each
/// result on `tx`. A probe never overlaps the next one of the same monitor
/// (a slow probe delays the next tick). The tasks end when `tx`'s receiver
/// is dropped, or when the returned set is dropped or aborted.
pub fn spawn(specs: &[MonitorSpec], tx: &mpsc::Sender<Observation>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for spec in specs {
        let prober = Prober::new(spec.probe.clone(), spec.timeout);
        let name = spec.name.clone();
        let interval = spec.interval.max(Duration::from_millis(10));
        let tx = tx.clone();
        set.spawn(async move {
            let start = tokio::time::Instant::now() + first_delay(&name, interval);
            let mut tick = tokio::time::interval_at(start, interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let result = prober.run().await;
                let o = Observation {
                    monitor: name.clone(),
                    result,
                    at: Timestamp::now(),
                };
                if tx.send(o).await.is_err() {
                    return;
                }
            }
        });
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TcpProbe;

    #[test]
    fn first_delay_is_stable_and_within_the_window() {
        let a = first_delay("nextcloud", Duration::from_secs(60));
        assert_eq!(a, first_delay("nextcloud", Duration::from_secs(60)));
        assert!(a < Duration::from_secs(10));
        assert!(first_delay("x", Duration::from_millis(200)) < Duration::from_millis(200));
        // different names spread out
        let distinct: std::collections::BTreeSet<_> = (0..50)
            .map(|i| first_delay(&format!("m{i}"), Duration::from_secs(10)))
            .collect();
        assert!(distinct.len() > 40, "{distinct:?}");
    }

    #[tokio::test]
    async fn spawned_monitors_report_on_their_interval() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        });
        let mut up = MonitorSpec::new(
            "open",
            Probe::Tcp(TcpProbe {
                host: "127.0.0.1".into(),
                port,
            }),
        );
        up.interval = Duration::from_millis(100);
        up.timeout = Duration::from_millis(100);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut down = MonitorSpec::new(
            "closed",
            Probe::Tcp(TcpProbe {
                host: "127.0.0.1".into(),
                port: closed_port,
            }),
        );
        down.interval = Duration::from_millis(100);
        down.timeout = Duration::from_millis(100);
        let (tx, mut rx) = mpsc::channel(16);
        let set = spawn(&[up, down], &tx);
        let mut seen: std::collections::BTreeMap<String, Vec<bool>> = Default::default();
        while seen.values().map(Vec::len).min().unwrap_or(0) < 3 || seen.len() < 2 {
            let o = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            seen.entry(o.monitor).or_default().push(o.result.up);
        }
        assert!(seen["open"].iter().all(|u| *u), "{seen:?}");
        assert!(seen["closed"].iter().all(|u| !*u), "{seen:?}");
        drop(set);
    }
}
