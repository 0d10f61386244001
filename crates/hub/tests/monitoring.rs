//! The hub's monitoring end to end, with real parts: local HTTP servers that
//! answer 200 or 500 on demand, a webhook receiver that records what it
//! gets (and can refuse), an agent's results posted with a host token, a
//! hub restarted on the same state directory, a connectivity canary on a
//! closed port, and run reports that make the built-in backup monitor fire.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        atomic::{AtomicU16, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use bulwark_hub::{ControlConfig, ControlPlan, MonitoringSettings, TokenKind};
use common::{req, Server};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

// ------------------------------------------------------------ test servers

/// Reads one HTTP/1.1 request (headers and a Content-Length body).
async fn read_request(s: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = head.lines().next().unwrap_or("").to_string();
    Some((line, String::from_utf8_lossy(&buf[head_end..]).to_string()))
}

async fn respond(s: &mut TcpStream, status: u16, body: &str) {
    let reason = if status < 400 { "OK" } else { "Error" };
    let r = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(r.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A service whose status code the test switches.
struct Service {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
}

impl Service {
    async fn start(status: u16) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let st = Arc::new(AtomicU16::new(status));
        let s2 = Arc::clone(&st);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    continue;
                };
                let st = Arc::clone(&s2);
                tokio::spawn(async move {
                    if read_request(&mut s).await.is_some() {
                        let code = st.load(Ordering::Relaxed);
                        respond(&mut s, code, if code == 200 { "ok" } else { "broken" }).await;
                    }
                });
            }
        });
        Self { addr, status: st }
    }
    fn set(&self, code: u16) {
        self.status.store(code, Ordering::Relaxed);
    }
    fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }
}

/// A webhook receiver: records every delivered message (JSON body); refuses
/// the first `refuse` requests with 500.
struct Hook {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<AtomicUsize>,
}

impl Hook {
    async fn start(refuse: usize) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicUsize::new(0));
        let (g2, a2) = (Arc::clone(&got), Arc::clone(&attempts));
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    continue;
                };
                let (g, a) = (Arc::clone(&g2), Arc::clone(&a2));
                tokio::spawn(async move {
                    let Some((_, body)) = read_request(&mut s).await else {
                        return;
                    };
                    let n = a.fetch_add(1, Ordering::SeqCst);
                    if n < refuse {
                        respond(&mut s, 500, "not now").await;
                        return;
                    }
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    g.lock().unwrap().push(v);
                    respond(&mut s, 200, "").await;
                });
            }
        });
        Self {
            addr,
            got,
            attempts,
        }
    }
    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
    /// (event, title) of every delivered message.
    fn events(&self) -> Vec<(String, String)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["event"].as_str().unwrap_or("").to_string(),
                    v["title"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
    fn titles_of(&self, subject_prefix: &str) -> Vec<(String, String)> {
        self.events()
            .into_iter()
            .filter(|(_, t)| t.starts_with(subject_prefix))
            .collect()
    }
    async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[(String, String)]) -> bool,
    ) {
        let start = Instant::now();
        loop {
            if pred(&self.events()) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "waited {timeout:?} for {what}; the webhook got {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ------------------------------------------------------------ the hub

fn settings() -> MonitoringSettings {
    MonitoringSettings {
        tick: Duration::from_millis(100),
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_millis(400),
        give_up_after: Duration::from_secs(600),
        canary_interval: Duration::from_millis(200),
        replication_every: Duration::from_millis(300),
    }
}

fn plan_of(text: &str) -> ControlPlan {
    let cfg = bulwark_config::parse(text, Path::new("/etc/bulwark/bulwark.toml"))
        .unwrap_or_else(|e| panic!("test config does not validate:\n{e}\n{text}"));
    ControlPlan::from_config(&cfg, text)
}

struct Hub {
    server: Server,
    admin: String,
}

async fn start_hub(dir: &Path, text: &str, admin: &str) -> Hub {
    let state = dir.join("state");
    let mut c = common::config(dir);
    let (mut control, plan) = ControlConfig::new(&state, plan_of(text));
    std::mem::forget(plan); // keep the plan fixed
    control.monitoring = Some(settings());
    c.control = Some(control);
    Hub {
        server: Server::start(c).await,
        admin: admin.to_string(),
    }
}

impl Hub {
    async fn get(&self, path: &str) -> Value {
        let auth = format!("Bearer {}", self.admin);
        let r = req(
            self.server.addr,
            "GET",
            path,
            None,
            &[("Authorization", &auth)],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        serde_json::from_str(&r.text()).unwrap()
    }
    async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        let bytes = serde_json::to_vec(body).unwrap();
        let r = req(
            self.server.addr,
            "POST",
            path,
            None,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &bytes,
        )
        .await;
        (
            r.status,
            serde_json::from_str(&r.text()).unwrap_or(Value::Null),
        )
    }
    async fn monitor(&self, name: &str) -> Value {
        let v = self.get("/api/v1/monitors").await;
        validate(&v);
        v["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }
    async fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let m = self.monitor(name).await;
            if m["state"] == state {
                return m;
            }
            assert!(
                start.elapsed() < timeout,
                "waited {timeout:?} for {name} to be {state}: {m:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    async fn metrics(&self) -> String {
        req(
            self.server.addr,
            "GET",
            "/metrics",
            Some(("metrics", "pw-metrics")),
            &[],
            b"",
        )
        .await
        .text()
    }
}

/// Checks `GET /api/v1/monitors` against the OpenAPI document.
fn validate(instance: &Value) {
    let doc: Value = serde_json::from_str(bulwark_api::OPENAPI).unwrap();
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"].clone(),
        "allOf": [{"$ref": "#/components/schemas/MonitorsView"}],
    });
    let v = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap();
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "monitors view does not match the OpenAPI schema: {errors:?}\n{instance:#}"
    );
}

fn result(monitor: &str, up: bool) -> Value {
    json!({"monitor": monitor, "up": up, "latency_ms": 4.5, "message": if up {"200 OK"} else {"expected status 200-399, got 500"}, "at": jiff::Timestamp::now().to_string()})
}

// ------------------------------------------------------------ tests

#[tokio::test]
async fn a_service_going_down_notifies_once_reminds_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let good = Service::start(200).await;
    let flaky = Service::start(200).await;
    let hook = Hook::start(2).await; // the first two deliveries fail: retried
    let text = format!(
        r#"
[monitors.good]
type = "http"
url = "{good}"
interval = "1s"
timeout = "1s"
[monitors.flaky]
type = "http"
url = "{flaky}"
interval = "1s"
timeout = "1s"
failure_threshold = 2
success_threshold = 1
remind_every = "3s"
severity = "critical"
[notifiers.hook]
type = "webhook"
url = "{hook}"
"#,
        good = good.url(),
        flaky = flaky.url(),
        hook = hook.url()
    );
    let (_, admin) =
        bulwark_hub::create_token(&dir.path().join("state"), TokenKind::Admin).unwrap();
    let hub = start_hub(dir.path(), &text, &admin).await;
    let m = hub.wait_state("good", "up", Duration::from_secs(15)).await;
    assert_eq!(m["vantages"][0]["vantage"], "hub");
    assert_eq!(m["vantages"][0]["last_up"], true);
    hub.wait_state("flaky", "up", Duration::from_secs(15)).await;
    assert!(
        hook.events().is_empty(),
        "going up from unknown says nothing: {:?}",
        hook.events()
    );

    flaky.set(500);
    let m = hub
        .wait_state("flaky", "down", Duration::from_secs(15))
        .await;
    assert!(
        m["message"].as_str().unwrap().contains("expected status"),
        "{m:#}"
    );
    hook.wait_for(
        "the down notice (after two refused deliveries)",
        Duration::from_secs(15),
        |e| e.iter().any(|(ev, t)| ev == "down" && t == "flaky is down"),
    )
    .await;
    assert!(
        hook.attempts.load(Ordering::SeqCst) >= 3,
        "two refusals, then delivered"
    );
    hook.wait_for("a reminder", Duration::from_secs(15), |e| {
        e.iter().any(|(ev, _)| ev == "reminder")
    })
    .await;
    let m = hub.monitor("flaky").await;
    assert!(m["notified"].is_string(), "{m:#}");
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains(r#"bulwark_monitor_up{monitor="flaky",item="",type="http"} 0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bulwark_monitor_up{monitor="good",item="",type="http"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bulwark_monitor_latency_seconds{monitor="good",vantage="hub"}"#),
        "{metrics}"
    );
    // (the webhook sender retries once by itself before the outbox does)
    let failed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"bulwark_notifications_failed_total{notifier="hook"} "#))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0);
    assert!(failed >= 1.0, "{metrics}");

    flaky.set(200);
    hook.wait_for("the recovery notice", Duration::from_secs(15), |e| {
        e.iter()
            .any(|(ev, t)| ev == "up" && t == "flaky is up again")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let flaky_events = hook.titles_of("flaky");
    let kinds: Vec<&str> = flaky_events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "down").count(),
        1,
        "{flaky_events:?}"
    );
    assert_eq!(kinds.last(), Some(&"up"), "{flaky_events:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "up").count(),
        1,
        "{flaky_events:?}"
    );
    assert!(hook.titles_of("good").is_empty(), "{:?}", hook.events());
    // the outage is in the history, resolved
    let alerts = hub.get("/api/v1/alerts?open=false").await;
    let a = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "monitor" && a["subject"] == "flaky")
        .unwrap();
    assert_eq!(a["severity"], "critical");
    assert!(a["resolved"].is_string());
    assert_eq!(
        hub.get("/api/v1/monitors").await["pending_notifications"],
        0
    );
    hub.server.stop().await;
}

#[tokio::test]
async fn quorum_across_the_hub_and_an_agent_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let api = Service::start(500).await; // the hub sees it down from the start
    let hook = Hook::start(0).await;
    let text = format!(
        r#"
[hosts.nas]
[monitors.api]
type = "http"
url = "{api}"
interval = "1s"
timeout = "1s"
failure_threshold = 2
success_threshold = 1
on = ["hub", "nas"]
quorum = 2
[monitors.local]
type = "tcp"
host = "127.0.0.1"
port = 9
on = ["hub"]
enabled = false
[notifiers.hook]
type = "webhook"
url = "{hook}"
"#,
        api = api.url(),
        hook = hook.url()
    );
    let state = dir.path().join("state");
    let (_, admin) = bulwark_hub::create_token(&state, TokenKind::Admin).unwrap();
    let (_, nas) = bulwark_hub::create_token(&state, TokenKind::Host("nas".into())).unwrap();
    let hub = start_hub(dir.path(), &text, &admin).await;

    // the NAS sees it up: one vantage point down is not a quorum
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        let (status, v) = hub
            .post(
                &nas,
                "/api/v1/agent/monitors",
                &json!({"results": [result("api", true)]}),
            )
            .await;
        assert_eq!((status, v["accepted"].as_u64()), (200, Some(1)), "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = hub.monitor("api").await;
    assert_eq!(m["state"], "up", "{m:#}");
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("down only from hub (quorum 2 not reached)"),
        "{m:#}"
    );
    let hubv = m["vantages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vantage"] == "hub")
        .unwrap()
        .clone();
    assert_eq!(hubv["state"], "down", "{m:#}");
    assert!(hook.events().is_empty(), "{:?}", hook.events());
    assert!(
        hub.monitor("local").await.is_null(),
        "a disabled monitor does not run"
    );

    // refused results
    let (status, v) = hub
        .post(
            &nas,
            "/api/v1/agent/monitors",
            &json!({"results": [result("local", false), result("nope", true)]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["accepted"], 0);
    assert_eq!(v["ignored"], json!(["local", "nope"]));
    let (status, _) = hub
        .post(&admin, "/api/v1/agent/monitors", &json!({"results": []}))
        .await;
    assert_eq!(status, 403, "an admin token is not a host");
    let (status, v) = hub.post(&nas, "/api/v1/agent/monitors", &json!({"results": [{"monitor": "../x", "up": true, "latency_ms": 1, "message": "", "at": "2026-01-01T00:00:00Z"}]})).await;
    assert_eq!(status, 400, "{v}");
    let (status, _) = hub
        .post(&nas, "/api/v1/agent/monitors", &json!({"results": "many"}))
        .await;
    assert_eq!(status, 400);

    // the NAS agrees now: down, one notice
    let post_down = |n: usize| {
        let hub = &hub;
        let nas = nas.clone();
        async move {
            for _ in 0..n {
                hub.post(
                    &nas,
                    "/api/v1/agent/monitors",
                    &json!({"results": [result("api", false)]}),
                )
                .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    post_down(3).await;
    hook.wait_for("the down notice", Duration::from_secs(10), |e| {
        e.iter().any(|(ev, _)| ev == "down")
    })
    .await;
    let m = hub.wait_state("api", "down", Duration::from_secs(5)).await;
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .starts_with("down from 2 of 2 vantage points"),
        "{m:#}"
    );

    // restart the hub on the same state directory while it stays down
    hub.server.stop().await;
    let hub = start_hub(dir.path(), &text, &admin).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        hub.post(
            &nas,
            "/api/v1/agent/monitors",
            &json!({"results": [result("api", false)]}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = hub.monitor("api").await;
    assert_eq!(m["state"], "down", "{m:#}");
    assert!(m["notified"].is_string(), "the notice is remembered: {m:#}");
    assert_eq!(
        hook.events().iter().filter(|(e, _)| e == "down").count(),
        1,
        "no second down notice: {:?}",
        hook.events()
    );

    // it comes back (both agree: the quorum of down is gone)
    api.set(200);
    let start = Instant::now();
    while !hook.events().iter().any(|(e, _)| e == "up") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no recovery notice: {:?}",
            hook.events()
        );
        hub.post(
            &nas,
            "/api/v1/agent/monitors",
            &json!({"results": [result("api", true)]}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kinds: Vec<String> = hook.events().into_iter().map(|(e, _)| e).collect();
    assert_eq!(kinds, ["down", "up"]);
    hub.server.stop().await;
}

#[tokio::test]
async fn no_network_holds_alerts_back_until_a_canary_answers() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(500).await;
    let hook = Hook::start(0).await;
    let canary = closed_port();
    let text = format!(
        r#"
[monitors.web]
type = "http"
url = "{svc}"
interval = "1s"
timeout = "1s"
failure_threshold = 1
[notifiers.hook]
type = "webhook"
url = "{hook}"
[alerts]
connectivity = ["tcp:127.0.0.1:{canary}"]
"#,
        svc = svc.url(),
        hook = hook.url()
    );
    let (_, admin) =
        bulwark_hub::create_token(&dir.path().join("state"), TokenKind::Admin).unwrap();
    let hub = start_hub(dir.path(), &text, &admin).await;
    let start = Instant::now();
    loop {
        let v = hub.get("/api/v1/monitors").await;
        if v["connectivity"] == false {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the hub never noticed its canary is down: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hook.events().is_empty(), "held back: {:?}", hook.events());
    assert!(hub
        .metrics()
        .await
        .contains("bulwark_hub_connectivity_up 0"));
    // the canary answers again: the outage is real, and now reported
    let _listener = TcpListener::bind(("127.0.0.1", canary)).await.unwrap();
    hook.wait_for(
        "the down notice after the network came back",
        Duration::from_secs(15),
        |e| e.iter().any(|(ev, t)| ev == "down" && t == "web is down"),
    )
    .await;
    assert_eq!(hub.get("/api/v1/monitors").await["connectivity"], true);
    hub.server.stop().await;
}

fn run_report(host: &str, job: &str, status: &str) -> Value {
    let id: String = (0..32)
        .map(|i| char::from_digit((i * 7 + status.len() as u32) % 16, 16).unwrap())
        .collect();
    let now = jiff::Timestamp::now();
    json!({
        "id": id, "host": host, "job": job, "kind": "backup", "trigger": "schedule",
        "started": (now - jiff::SignedDuration::from_secs(3)).to_string(), "finished": now.to_string(),
        "status": status, "errors": if status == "failed" { vec!["restic: repository is locked"] } else { vec![] },
    })
}

#[tokio::test]
async fn the_backup_monitor_watches_each_job() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start(0).await;
    let text = format!(
        r#"
[hosts.nas]
[repositories.main]
url = "/srv/backup"
password_file = "/etc/bulwark/main.pass"
[jobs.photos]
host = "nas"
repository = "main"
paths = ["/srv/photos"]
[monitors.fresh]
type = "backup"
max_age = "3s"
interval = "1s"
[notifiers.hook]
type = "webhook"
url = "{hook}"
"#,
        hook = hook.url()
    );
    let state = dir.path().join("state");
    let (_, admin) = bulwark_hub::create_token(&state, TokenKind::Admin).unwrap();
    let (_, nas) = bulwark_hub::create_token(&state, TokenKind::Host("nas".into())).unwrap();
    let hub = start_hub(dir.path(), &text, &admin).await;
    // no success within max_age of the hub learning of the job: down
    hook.wait_for("the stale-backup notice", Duration::from_secs(15), |e| {
        e.iter()
            .any(|(ev, t)| ev == "down" && t == "fresh/photos is down")
    })
    .await;
    let m = hub.monitor("fresh").await;
    assert_eq!(m["item"], "photos");
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("no successful backup of photos on nas yet"),
        "{m:#}"
    );
    // a successful run: up again
    let (status, v) = hub
        .post(
            &nas,
            "/api/v1/agent/runs",
            &run_report("nas", "photos", "success"),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    hook.wait_for("the recovery", Duration::from_secs(10), |e| {
        e.iter().any(|(ev, _)| ev == "up")
    })
    .await;
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains(r#"bulwark_job_last_run_success{job="photos",host="nas"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bulwark_job_last_success_timestamp_seconds{job="photos",host="nas"}"#),
        "{metrics}"
    );
    // a failed run: down again, saying why
    let (status, _) = hub
        .post(
            &nas,
            "/api/v1/agent/runs",
            &run_report("nas", "photos", "failed"),
        )
        .await;
    assert_eq!(status, 201);
    hook.wait_for("the failure notice", Duration::from_secs(10), |e| {
        e.iter().filter(|(ev, _)| ev == "down").count() == 2
    })
    .await;
    let m = hub.monitor("fresh").await;
    assert!(
        m["message"].as_str().unwrap().contains("failed at")
            && m["message"]
                .as_str()
                .unwrap()
                .contains("repository is locked"),
        "{m:#}"
    );
    // the hub's own disk is watched without being asked
    let disk = hub.monitor("hub-disk").await;
    assert_eq!(disk["kind"], "disk");
    assert!(disk["state"] == "up" || disk["state"] == "down", "{disk:#}");
    assert!(hub.metrics().await.contains("bulwark_hub_disk_size_bytes "));
    hub.server.stop().await;
}

#[tokio::test]
async fn the_hub_pings_its_dead_mans_switch() {
    let dir = tempfile::tempdir().unwrap();
    let hc = Hook::start(0).await;
    let url_file = dir.path().join("hc.url");
    std::fs::write(&url_file, format!("http://{}/ping/6f1d3c2a\n", hc.addr)).unwrap();
    let text = format!(
        r#"
[alerts]
hub_ping_url_file = "{}"
hub_ping_interval = "1s"
"#,
        url_file.display()
    );
    let (_, admin) =
        bulwark_hub::create_token(&dir.path().join("state"), TokenKind::Admin).unwrap();
    let hub = start_hub(dir.path(), &text, &admin).await;
    let start = Instant::now();
    while hc.attempts.load(Ordering::SeqCst) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pinged {} times in 10 s",
            hc.attempts.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.server.stop().await;
    // stopped: no more pings
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = hc.attempts.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        hc.attempts.load(Ordering::SeqCst),
        after,
        "a stopped hub does not ping"
    );
}

#[tokio::test]
async fn unreadable_secrets_are_alerts_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(200).await;
    let text = format!(
        r#"
[monitors.grafana]
type = "http"
url = "{svc}"
header_files = {{ "Authorization" = "{missing}/grafana.auth" }}
[notifiers.phone]
type = "ntfy"
server = "http://127.0.0.1:9"
topic = "homelab"
token_file = "{missing}/ntfy.token"
"#,
        svc = svc.url(),
        missing = dir.path().join("nowhere").display()
    );
    let (_, admin) =
        bulwark_hub::create_token(&dir.path().join("state"), TokenKind::Admin).unwrap();
    let hub = start_hub(dir.path(), &text, &admin).await;
    let start = Instant::now();
    let open = loop {
        let open = hub.get("/api/v1/alerts?open=true").await;
        if open.as_array().unwrap().len() >= 2 {
            break open;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no config alerts: {open:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let find = |kind: &str, subject: &str| {
        open.as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == kind && a["subject"] == subject)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let m = find("monitor.config", "grafana");
    assert_eq!(m["severity"], "critical", "{open:#}");
    assert!(
        m["message"].as_str().unwrap().contains("grafana.auth"),
        "names the file: {m:#}"
    );
    let n = find("notify.config", "phone");
    assert!(
        n["message"].as_str().unwrap().contains("ntfy.token"),
        "names the file: {n:#}"
    );
    assert_eq!(hub.monitor("grafana").await["state"], "unknown");
    hub.server.stop().await;
}
