//! Probe monitors on this host: the agent runs the enabled `[monitors.NAME]`
//! whose `on` names its host, and delivers every result to the hub, which
//! applies the thresholds and the quorum and sends the alerts.
//!
//! ```text
//!   config (watch) ──► specs (secret headers loaded) ──► bulwark_monitor::runner::spawn
//!                                                            │ observations
//!                                                            ▼
//!                       hub ◄── POST /api/v1/agent/monitors ◄── outbox (newest MAX_PENDING)
//! ```
//!
//! - The probes are restarted only when the set of specs changes (a config
//!   reload that touches only jobs leaves them running, on their rhythm).
//! - Results go out in batches: every [`SEND_EVERY`], or at once when
//!   [`SEND_NOW`] are waiting; at most [`BATCH`] per request.
//! - While the hub is unreachable the newest [`MAX_PENDING`] results are
//!   kept (older ones would be stale at the hub anyway) and sent when it is
//!   back; failures are logged at most once per [`LOG_EVERY`].
//! - Results for monitors the hub does not run on this host (`ignored`: the
//!   hub's file and the agent's differ) are logged once per monitor.
//!
//! The specs hold secrets (credential headers): they are never logged.

use std::{collections::BTreeSet, collections::VecDeque, time::Duration};

use bulwark_api::{MonitorResult, MonitorResults, MonitorResultsStored};
use bulwark_config::{BuildError, Config, MonitorCheck};
use bulwark_monitor::{runner, MonitorSpec, Observation};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
    time::{Instant, MissedTickBehavior},
};

use crate::{agent::Loaded, client::HubClient, error::AgentError};

/// How often waiting results are sent.
pub const SEND_EVERY: Duration = Duration::from_secs(2);
/// Send at once when this many results are waiting.
pub const SEND_NOW: usize = 500;
/// At most this many results in one request (the hub takes up to
/// [`bulwark_api::MAX_MONITOR_RESULTS`]).
pub const BATCH: usize = 500;
/// The most results kept while the hub is unreachable (the newest ones).
pub const MAX_PENDING: usize = 1000;
const _: () = assert!(BATCH <= bulwark_api::MAX_MONITOR_RESULTS && SEND_NOW <= MAX_PENDING);
/// Delivery failures are logged at most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// The longest wait between two delivery attempts while the hub fails.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The probe specs `host` runs, with their secret headers loaded, by name,
/// and the monitors that cannot run (a secret that cannot be read) with why.
/// The specs hold secrets: don't log them.
pub fn specs_of(config: &Config, host: &str) -> (Vec<MonitorSpec>, Vec<(String, BuildError)>) {
    let mut specs = Vec::new();
    let mut broken = Vec::new();
    for decl in config.monitors_of(host) {
        if let MonitorCheck::Probe(p) = &decl.check {
            match p.load() {
                Ok(spec) => specs.push(spec),
                Err(e) => broken.push((decl.name.clone(), e)),
            }
        }
    }
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    (specs, broken)
}

/// Whether the probes must be restarted: the set of specs changed (a
/// monitor added, removed, or any of its settings, secret headers included).
pub fn specs_changed(running: &[MonitorSpec], wanted: &[MonitorSpec]) -> bool {
    running != wanted
}

/// A probe result as the control API carries it.
pub fn to_result(o: &Observation) -> MonitorResult {
    MonitorResult {
        monitor: o.monitor.clone(),
        up: o.result.up,
        latency_ms: o.result.latency.as_secs_f64() * 1000.0,
        message: o.result.message.clone(),
        cert_days_left: o.result.cert_days_left,
        at: o.at,
    }
}

/// Results waiting for delivery, oldest first, never more than a bound:
/// when full, the oldest result gives way.
#[derive(Debug)]
pub struct Outbox {
    items: VecDeque<MonitorResult>,
    cap: usize,
    dropped: u64,
}

impl Outbox {
    /// An empty outbox that keeps at most `cap` results (at least one).
    pub fn new(cap: usize) -> Self {
        Self {
            items: VecDeque::new(),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    /// How many results wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds the newest result, dropping the oldest when full.
    pub fn push(&mut self, r: MonitorResult) {
        self.items.push_back(r);
        self.trim();
    }

    /// Takes the oldest `max` results (at least one when any wait) for a request.
    pub fn take_batch(&mut self, max: usize) -> Vec<MonitorResult> {
        let n = self.items.len().min(max.max(1));
        self.items.drain(..n).collect()
    }

    /// Puts back a batch that could not be delivered, before the results
    /// that came in since; the oldest give way if that is too many.
    pub fn put_back(&mut self, batch: Vec<MonitorResult>) {
        for r in batch.into_iter().rev() {
            self.items.push_front(r);
        }
        self.trim();
    }

    /// Keeps only the results of monitors that `keep` accepts (after the
    /// probes changed, results of removed monitors are not sent).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.items.retain(|r| keep(&r.monitor));
    }

    /// How many results were dropped since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn trim(&mut self) {
        while self.items.len() > self.cap {
            self.items.pop_front();
            self.dropped += 1;
        }
    }
}

/// Lets a repeated warning through at most once per period, counting the
/// ones held back.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    /// A throttle letting one message through per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held: 0,
        }
    }

    /// `Some(n)` when a message may be logged at `now` (`n`: how many were
    /// held back since the last one), `None` when it must be held back.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.held += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }

    /// Forgets the last message (the condition cleared): the next one is logged.
    pub fn reset(&mut self) {
        self.last = None;
        self.held = 0;
    }
}

/// Where results are delivered: the hub, or a stand-in in tests.
pub trait Deliver: Send + Sync {
    /// Delivers one batch.
    fn deliver(
        &self,
        batch: &MonitorResults,
    ) -> impl std::future::Future<Output = Result<MonitorResultsStored, AgentError>> + Send;
}

impl Deliver for HubClient {
    async fn deliver(&self, batch: &MonitorResults) -> Result<MonitorResultsStored, AgentError> {
        self.monitor_results(batch).await
    }
}

/// The delivery side: outbox, backoff, log throttling, `ignored` bookkeeping.
struct Delivery {
    outbox: Outbox,
    failing: Throttle,
    failed: bool,
    next_try: Option<Instant>,
    every: Duration,
    backoff: Duration,
    ignored: BTreeSet<String>,
}

impl Delivery {
    fn new(every: Duration) -> Self {
        Self {
            outbox: Outbox::new(MAX_PENDING),
            failing: Throttle::new(LOG_EVERY),
            failed: false,
            next_try: None,
            every,
            backoff: every,
            ignored: BTreeSet::new(),
        }
    }

    /// Sends what waits, batch by batch, until the outbox is empty or a
    /// request fails; nothing while backing off after a failure.
    async fn flush(&mut self, hub: &impl Deliver) {
        if self.next_try.is_some_and(|t| Instant::now() < t) {
            return;
        }
        while !self.outbox.is_empty() {
            let batch = MonitorResults {
                results: self.outbox.take_batch(BATCH),
            };
            match hub.deliver(&batch).await {
                Ok(stored) => {
                    if self.failed {
                        tracing::info!("monitor results reach the hub again");
                        self.failed = false;
                        self.failing.reset();
                    }
                    self.next_try = None;
                    self.backoff = self.every;
                    for name in stored.ignored {
                        if self.ignored.insert(name.clone()) {
                            tracing::info!(
                                monitor = %name,
                                "the hub ignores this monitor's results from this host: its configuration differs from the agent's \
                                 (is the agent's copy of bulwark.toml older or newer than the hub's?)"
                            );
                        }
                    }
                }
                Err(e) => {
                    let temporary = e.is_temporary();
                    let n = batch.results.len();
                    if temporary {
                        self.outbox.put_back(batch.results);
                    }
                    self.failed = true;
                    match self.failing.allow(Instant::now()) {
                        Some(not_logged) if temporary => tracing::warn!(
                            pending = self.outbox.len(),
                            dropped_oldest = self.outbox.take_dropped(),
                            not_logged,
                            "monitor results kept for the hub (retrying; the newest {MAX_PENDING} are kept): {e}"
                        ),
                        Some(not_logged) => tracing::warn!(
                            discarded = n,
                            not_logged,
                            "the hub refused monitor results; they are discarded: {e}"
                        ),
                        None => tracing::debug!("monitor results not delivered: {e}"),
                    }
                    self.next_try = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    return;
                }
            }
        }
    }
}

/// The probes running now.
struct Probes {
    running: Vec<MonitorSpec>,
    // dropping a JoinSet aborts its tasks
    tasks: Option<JoinSet<()>>,
}

impl Probes {
    /// Follows a (new) configuration: restarts the probes when the specs changed.
    fn apply(
        &mut self,
        loaded: Option<&Loaded>,
        tx: &mpsc::Sender<Observation>,
        delivery: &mut Delivery,
    ) {
        let (wanted, broken) = match loaded {
            Some(l) => specs_of(&l.config, &l.host),
            None => (Vec::new(), Vec::new()),
        };
        for (name, e) in &broken {
            tracing::warn!(monitor = %name, "monitor not run on this host: {e}");
        }
        if !specs_changed(&self.running, &wanted) {
            return;
        }
        self.tasks = None;
        let names: BTreeSet<&str> = wanted.iter().map(|s| s.name.as_str()).collect();
        delivery.outbox.retain(|m| names.contains(m));
        delivery.ignored.clear();
        if wanted.is_empty() {
            if !self.running.is_empty() {
                tracing::info!("no monitors run on this host any more");
            }
        } else {
            tracing::info!(count = wanted.len(), monitors = ?names, "running monitors");
            self.tasks = Some(runner::spawn(&wanted, tx));
        }
        self.running = wanted;
    }
}

/// Runs this host's probe monitors for as long as the future is polled,
/// following configuration changes, and delivers their results to `hub`
/// every [`SEND_EVERY`]. Dropping the future stops the probes.
pub async fn run<D: Deliver>(config: watch::Receiver<Option<Loaded>>, hub: D) {
    run_every(config, hub, SEND_EVERY).await;
}

/// [`run`], sending every `every`.
pub async fn run_every<D: Deliver>(
    mut config: watch::Receiver<Option<Loaded>>,
    hub: D,
    every: Duration,
) {
    let (tx, mut rx) = mpsc::channel::<Observation>(1024);
    let mut probes = Probes {
        running: Vec::new(),
        tasks: None,
    };
    let mut delivery = Delivery::new(every);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let first = config.borrow_and_update().clone();
    probes.apply(first.as_ref(), &tx, &mut delivery);
    loop {
        tokio::select! {
            changed = config.changed() => {
                if changed.is_err() {
                    return; // the agent is gone
                }
                let loaded = config.borrow_and_update().clone();
                probes.apply(loaded.as_ref(), &tx, &mut delivery);
            }
            Some(o) = rx.recv() => {
                if !probes.running.iter().any(|s| s.name == o.monitor) {
                    continue; // probed just before its monitor was removed
                }
                delivery.outbox.push(to_result(&o));
                if delivery.outbox.len() >= SEND_NOW {
                    delivery.flush(&hub).await;
                }
            }
            _ = tick.tick() => {
                if !delivery.outbox.is_empty() {
                    delivery.flush(&hub).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::{
        path::Path,
        sync::{
            atomic::{AtomicBool, Ordering},
            Arc, Mutex,
        },
    };

    use jiff::Timestamp;

    use super::*;

    fn result(monitor: &str, i: u32) -> MonitorResult {
        MonitorResult {
            monitor: monitor.into(),
            up: true,
            latency_ms: f64::from(i),
            message: format!("#{i}"),
            cert_days_left: None,
            at: Timestamp::from_second(1_800_000_000 + i64::from(i)).unwrap(),
        }
    }

    fn numbers(v: &[MonitorResult]) -> Vec<u32> {
        v.iter()
            .map(|r| r.message.trim_start_matches('#').parse().unwrap())
            .collect()
    }

    #[test]
    fn the_outbox_keeps_the_newest_and_sends_the_oldest_first() {
        let mut o = Outbox::new(5);
        for i in 0..8 {
            o.push(result("m", i));
        }
        assert_eq!(o.len(), 5);
        assert_eq!(o.take_dropped(), 3, "0, 1 and 2 gave way");
        assert_eq!(o.take_dropped(), 0, "counted once");
        let batch = o.take_batch(2);
        assert_eq!(numbers(&batch), [3, 4], "oldest first");
        // the hub was unreachable: the batch goes back before what came in since
        o.push(result("m", 8));
        o.put_back(batch);
        assert_eq!(o.len(), 5, "6 would be too many: the oldest gives way");
        assert_eq!(o.take_dropped(), 1);
        assert_eq!(numbers(&o.take_batch(100)), [4, 5, 6, 7, 8], "order kept");
        assert!(o.is_empty());
        assert!(o.take_batch(10).is_empty());
    }

    #[test]
    fn the_outbox_at_its_real_bounds() {
        let mut o = Outbox::new(MAX_PENDING);
        for i in 0..2500 {
            o.push(result(if i % 2 == 0 { "even" } else { "odd" }, i));
        }
        assert_eq!(o.len(), MAX_PENDING);
        assert_eq!(o.take_dropped(), 1500);
        let b = o.take_batch(BATCH);
        assert_eq!(b.len(), BATCH);
        assert_eq!(numbers(&b)[0], 1500);
        o.retain(|m| m == "odd");
        assert_eq!(o.len(), 250);
        assert!(numbers(&o.take_batch(1000)).iter().all(|n| n % 2 == 1));
    }

    #[test]
    fn repeated_warnings_are_logged_once_a_minute() {
        let t0 = Instant::now();
        let mut t = Throttle::new(LOG_EVERY);
        assert_eq!(t.allow(t0), Some(0), "the first one is logged");
        assert_eq!(t.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(59)), None);
        assert_eq!(
            t.allow(t0 + Duration::from_secs(60)),
            Some(2),
            "then one a minute, saying how many were held"
        );
        assert_eq!(t.allow(t0 + Duration::from_secs(61)), None);
        t.reset();
        assert_eq!(
            t.allow(t0 + Duration::from_secs(62)),
            Some(0),
            "a new episode is logged at once"
        );
    }

    #[test]
    fn results_carry_the_probe_in_milliseconds() {
        let o = Observation {
            monitor: "web".into(),
            result: bulwark_monitor::ProbeResult {
                up: false,
                latency: Duration::from_micros(12_500),
                message: "expected status 200-399, got 500".into(),
                cert_days_left: Some(3.5),
            },
            at: Timestamp::from_second(1_800_000_000).unwrap(),
        };
        let r = to_result(&o);
        assert_eq!(
            (r.monitor.as_str(), r.up, r.cert_days_left, r.at),
            ("web", false, Some(3.5), o.at)
        );
        assert!((r.latency_ms - 12.5).abs() < 1e-9, "{}", r.latency_ms);
        assert_eq!(r.message, "expected status 200-399, got 500");
    }

    fn config(dir: &Path, monitors: &str) -> Arc<Config> {
        let text = format!(
            "[hosts.nas]\n[hosts.vps]\n\n[repositories.r]\nurl = \"{dir}/repo\"\npassword_file = \"{dir}/pw\"\n\n{monitors}",
            dir = dir.display()
        );
        Arc::new(
            bulwark_config::parse(&text, &dir.join("bulwark.toml"))
                .unwrap_or_else(|e| panic!("{e}\n{text}")),
        )
    }

    const MONITORS: &str = r#"
[monitors.data]
type = "path"
path = "/"
check = "exists"
on = ["nas", "vps"]
interval = "1s"
timeout = "1s"

[monitors.web]
type = "http"
url = "http://127.0.0.1:9/health"
header_files = { "Authorization" = "HEADER_FILE" }
on = ["nas"]

[monitors.elsewhere]
type = "tcp"
host = "127.0.0.1"
port = 22
on = ["vps"]

[monitors.off]
type = "tcp"
host = "127.0.0.1"
port = 22
on = ["nas"]
enabled = false

[monitors.hub-only]
type = "tcp"
host = "127.0.0.1"
port = 22
"#;

    #[test]
    fn the_specs_of_a_host_and_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let header = dir.path().join("web.auth");
        std::fs::write(&header, "Bearer s3cret\n").unwrap();
        let monitors = MONITORS.replace("HEADER_FILE", &header.display().to_string());
        let cfg = config(dir.path(), &monitors);

        let (nas, broken) = specs_of(&cfg, "nas");
        assert!(
            broken.is_empty(),
            "{:?}",
            broken
                .iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            nas.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["data", "web"],
            "not disabled, hub-only or other hosts' monitors"
        );
        let bulwark_monitor::Probe::Http(h) = &nas[1].probe else {
            panic!("{:?}", nas[1].probe.kind())
        };
        assert_eq!(
            h.headers.get("Authorization").map(String::as_str),
            Some("Bearer s3cret"),
            "secret header loaded"
        );
        let (vps, _) = specs_of(&cfg, "vps");
        assert_eq!(
            vps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["data", "elsewhere"]
        );
        assert!(specs_of(&cfg, "ghost").0.is_empty());

        // the same file read again (or with other jobs): nothing to restart
        let again = config(
            dir.path(),
            &format!(
                "{monitors}\n[jobs.j]\nrepository = \"r\"\nhost = \"nas\"\npaths = [\"/etc\"]\n"
            ),
        );
        assert!(!specs_changed(&nas, &specs_of(&again, "nas").0));
        // a monitor's setting changed, one added, one removed, one disabled
        for changed in [
            monitors.replace("interval = \"1s\"", "interval = \"2s\""),
            format!("{monitors}\n[monitors.new]\ntype = \"tcp\"\nhost = \"::1\"\nport = 22\non = [\"nas\"]\n"),
            monitors.replace("on = [\"nas\", \"vps\"]", "on = [\"vps\"]"),
            monitors.replace("on = [\"nas\"]\n\n[monitors.elsewhere]", "on = [\"nas\"]\nenabled = false\n\n[monitors.elsewhere]"),
        ] {
            assert!(specs_changed(&nas, &specs_of(&config(dir.path(), &changed), "nas").0), "{changed}");
        }
        // the secret header changed: restart with the new value
        std::fs::write(&header, "Bearer n3w\n").unwrap();
        assert!(specs_changed(&nas, &specs_of(&cfg, "nas").0));
        // the secret cannot be read: that monitor is skipped, with the file named
        std::fs::remove_file(&header).unwrap();
        let (nas, broken) = specs_of(&cfg, "nas");
        assert_eq!(
            nas.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["data"]
        );
        assert_eq!(broken.len(), 1);
        let text = broken[0].1.to_string();
        assert!(
            broken[0].0 == "web" && text.contains(&header.display().to_string()),
            "{text}"
        );
    }

    /// A stand-in for the hub: records batches; fails while `down`.
    #[derive(Clone, Default)]
    struct Hub {
        got: Arc<Mutex<Vec<Vec<MonitorResult>>>>,
        down: Arc<AtomicBool>,
    }

    impl Deliver for Hub {
        async fn deliver(
            &self,
            batch: &MonitorResults,
        ) -> Result<MonitorResultsStored, AgentError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(AgentError::Unreachable("connection refused (test)".into()));
            }
            self.got.lock().unwrap().push(batch.results.clone());
            Ok(MonitorResultsStored {
                accepted: u32::try_from(batch.results.len()).unwrap(),
                ignored: vec![],
            })
        }
    }

    impl Hub {
        fn names(&self) -> Vec<String> {
            self.got
                .lock()
                .unwrap()
                .iter()
                .flatten()
                .map(|r| r.monitor.clone())
                .collect()
        }
    }

    async fn until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn probes_run_their_results_reach_the_hub_and_follow_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().join("there");
        std::fs::create_dir(&there).unwrap();
        let probe = |name: &str, host: &str, path: &Path| {
            format!(
                "[monitors.{name}]\ntype = \"path\"\npath = \"{}\"\ncheck = \"exists\"\non = [\"{host}\"]\ninterval = \"100ms\"\ntimeout = \"100ms\"\n",
                path.display()
            )
        };
        let loaded = |monitors: &str| Loaded {
            config: config(dir.path(), monitors),
            path: dir.path().join("bulwark.toml"),
            version: None,
            host: "nas".into(),
        };
        let (cfg_tx, cfg_rx) = watch::channel(Some(loaded(&probe("a", "nas", &there))));
        let hub = Hub::default();
        let task = tokio::spawn(run_every(cfg_rx, hub.clone(), Duration::from_millis(100)));

        until("results of `a`", || {
            hub.names().iter().filter(|n| *n == "a").count() >= 3
        })
        .await;
        assert!(hub
            .got
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .all(|r| r.up && r.monitor == "a"));
        assert!(
            hub.got.lock().unwrap().len() >= 2,
            "sent in batches, not once at the end"
        );

        // the hub goes away: results wait, and reach it once it is back
        hub.down.store(true, Ordering::SeqCst);
        let (before, down_from) = (hub.names().len(), Timestamp::now());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(hub.names().len(), before, "nothing delivered while down");
        let down_until = Timestamp::now();
        hub.down.store(false, Ordering::SeqCst);
        let while_down = || {
            hub.got
                .lock()
                .unwrap()
                .iter()
                .flatten()
                .filter(|r| r.at > down_from && r.at < down_until)
                .count()
        };
        until("the results measured while the hub was down", || {
            while_down() >= 4
        })
        .await;
        let times: Vec<_> = hub
            .got
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|r| r.at)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "delivered in order: {times:?}"
        );

        // a config change that doesn't touch the monitors: `a` keeps running
        cfg_tx.send_replace(Some(loaded(&format!(
            "{}\n[jobs.j]\nrepository = \"r\"\nhost = \"nas\"\npaths = [\"/etc\"]\n",
            probe("a", "nas", &there)
        ))));
        // `a` is replaced by `b` (down: its path is missing); `c` runs on another host
        let missing = dir.path().join("missing");
        cfg_tx.send_replace(Some(loaded(&format!(
            "{}{}",
            probe("b", "nas", &missing),
            probe("c", "vps", &there)
        ))));
        until("results of `b`", || {
            hub.names().iter().filter(|n| *n == "b").count() >= 2
        })
        .await;
        let n = hub.names().len();
        until("more results", || hub.names().len() >= n + 3).await;
        let got = hub.got.lock().unwrap().clone();
        let after_b: Vec<&MonitorResult> = got
            .iter()
            .flatten()
            .skip_while(|r| r.monitor != "b")
            .collect();
        assert!(
            after_b.iter().all(|r| r.monitor == "b" && !r.up),
            "a stopped, c is not ours: {after_b:?}"
        );
        assert!(
            after_b[0].message.contains("missing"),
            "{}",
            after_b[0].message
        );

        // no monitors left: nothing more is sent
        cfg_tx.send_replace(Some(loaded("")));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = hub.names().len();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(hub.names().len(), n, "the probes stopped");

        // the agent stops: so does the task
        drop(cfg_tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
