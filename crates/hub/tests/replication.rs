//! The hub replicating by itself, end to end: restic 0.14 backs up through
//! an in-process hub; the hub copies the repository to its `[targets]`
//! soon after each snapshot upload; restic reads the copies; the 3-2-1
//! report, the alerts and the metrics say what happened. A target on a
//! closed port stands for an unreachable peer, a deleted repository for a
//! wiped hub.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Arc,
    time::{Duration, Instant},
};

use bulwark_config::{RepoUrl, Target};
use bulwark_hub::{ControlConfig, ControlPlan, ReplicationSettings, TargetOpener, TokenKind};
use bulwark_store::{local::LocalStore, Store};
use common::{req, Server};
use serde_json::Value;
use tokio::sync::watch;

const RESTIC: &str = "/usr/bin/restic";

fn restic(repo: &str, home: &Path, args: &[&str]) -> Output {
    let o = Command::new("timeout")
        .arg("120")
        .arg(RESTIC)
        .args(["-r", repo, "--no-cache"])
        .args(args)
        .env("RESTIC_PASSWORD", "repo-password")
        .env("HOME", home)
        .env_remove("RESTIC_REPOSITORY")
        .output()
        .expect("run restic");
    assert!(
        o.status.success(),
        "restic {args:?} on {repo} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

async fn restic_async(repo: String, home: PathBuf, args: Vec<&'static str>) -> Output {
    tokio::task::spawn_blocking(move || restic(&repo, &home, &args))
        .await
        .unwrap()
}

/// Opens local and rest: targets (what the binary's opener does, minus S3).
fn opener() -> TargetOpener {
    Arc::new(|t: &Target| -> Result<Arc<dyn Store>, String> {
        match &t.url {
            RepoUrl::Local(p) => {
                std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
                Ok(Arc::new(
                    LocalStore::new(p.clone()).map_err(|e| e.to_string())?,
                ))
            }
            RepoUrl::Rest(u) => Ok(Arc::new(
                bulwark_store::RestStore::new(u, None, None).map_err(|e| e.to_string())?,
            )),
            RepoUrl::S3 { .. } => Err("no S3 in this test".into()),
        }
    })
}

fn fast_settings() -> ReplicationSettings {
    let mut s = ReplicationSettings::new(opener());
    s.tick = Duration::from_millis(300);
    s.retry_base = Duration::from_millis(500);
    s.retry_max = Duration::from_secs(2);
    s.failing_after = 2;
    s.start_delay = Duration::from_millis(200);
    s
}

fn plan_of(text: &str) -> ControlPlan {
    let cfg = bulwark_config::parse(text, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    ControlPlan::from_config(&cfg, text)
}

struct Setup {
    server: Server,
    plan: watch::Sender<Arc<ControlPlan>>,
    admin: String,
    dir: tempfile::TempDir,
}

impl Setup {
    fn data(&self) -> PathBuf {
        self.server.data.clone()
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn hub_repo(&self) -> String {
        format!("rest:http://alice:pw-alice@{}/alice/main", self.server.addr)
    }
    async fn api(&self, path: &str) -> Value {
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
    async fn open_alerts(&self) -> Vec<Value> {
        self.api("/api/v1/alerts?open=true")
            .await
            .as_array()
            .unwrap()
            .clone()
    }
}

/// A hub whose plan is `config(data dir, temp dir)`.
async fn start(config: impl Fn(&Path, &Path) -> String) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_, admin) = bulwark_hub::create_token(&state, TokenKind::Admin).unwrap();
    let mut c = common::config(dir.path());
    let text = config(&c.data, dir.path());
    let (mut control, plan) = ControlConfig::new(&state, plan_of(&text));
    control.replication = Some(fast_settings());
    c.control = Some(control);
    let server = Server::start(c).await;
    Setup {
        server,
        plan,
        admin,
        dir,
    }
}

fn make_source(dir: &Path, seed: u64) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut x = seed | 1;
    for (i, size) in [400_000usize, 90_000, 10].into_iter().enumerate() {
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(
            dir.join(if i == 0 {
                "big.bin".to_string()
            } else {
                format!("sub/f{i}")
            }),
            data,
        )
        .unwrap();
    }
}

/// The snapshot file names of a repository directory.
fn snapshots(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("snapshots"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn wait_for(what: &str, secs: u64, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn config_text(data: &Path, tmp: &Path, broken_port: u16) -> String {
    format!(
        r#"
[repositories.main]
url = "{data}/alice/main"
password_file = "/tmp/unused.pass"

[hosts.nas]

[jobs.docs]
repository = "main"
host = "nas"
paths = ["/srv/docs"]
schedule = "hourly"
rpo = "2h"

[targets.usb]
url = "{tmp}/usb"
medium = "removable"
offsite = false
after_upload = "1s"

[targets.cloud]
url = "{tmp}/cloud"
medium = "cloud"
offsite = true
after_upload = "1s"

[targets.friend]
url = "rest:http://127.0.0.1:{broken_port}/"
medium = "peer"
offsite = true
after_upload = "1s"
"#,
        data = data.display(),
        tmp = tmp.display()
    )
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hub_copies_new_snapshots_to_its_targets_and_reports_3_2_1() {
    let port = closed_port();
    let s = start(|data, tmp| config_text(data, tmp, port)).await;
    let home = s.path("home");
    let src = s.path("src");
    make_source(&src, 7);
    restic_async(s.hub_repo(), home.clone(), vec!["init"]).await;
    let src_s: &'static str = Box::leak(src.to_string_lossy().into_owned().into_boxed_str());
    restic_async(s.hub_repo(), home.clone(), vec!["backup", src_s]).await;

    // the hub copies the new snapshot by itself, soon after the upload
    let hub_repo = s.data().join("alice/main");
    let (usb, cloud) = (s.path("usb/alice/main"), s.path("cloud/alice/main"));
    wait_for("usb and cloud hold the hub's snapshot", 60, async || {
        let want = snapshots(&hub_repo);
        !want.is_empty() && snapshots(&usb) == want && snapshots(&cloud) == want
    })
    .await;
    // restic reads the copies directly: checks every byte, restores the same files
    restic(&usb.to_string_lossy(), &home, &["check", "--read-data"]);
    let out = s.path("restored");
    restic(
        &cloud.to_string_lossy(),
        &home,
        &["restore", "latest", "--target", &out.to_string_lossy()],
    );
    for f in ["big.bin", "sub/f1", "sub/f2"] {
        let restored = out.join(src.strip_prefix("/").unwrap()).join(f);
        assert_eq!(
            std::fs::read(&restored).unwrap(),
            std::fs::read(src.join(f)).unwrap(),
            "{f}"
        );
    }

    // a second backup reaches the targets too
    std::fs::write(src.join("sub/new"), b"a new file").unwrap();
    restic_async(s.hub_repo(), home.clone(), vec!["backup", src_s]).await;
    wait_for(
        "the second snapshot reaches usb and cloud",
        60,
        async || {
            let want = snapshots(&hub_repo);
            want.len() == 2 && snapshots(&usb) == want && snapshots(&cloud) == want
        },
    )
    .await;

    // the unreachable peer: retried with backoff, alert after 2 failures in a row
    wait_for("replication.failing for the peer", 30, async || {
        s.open_alerts()
            .await
            .iter()
            .any(|a| a["kind"] == "replication.failing" && a["subject"] == "friend/alice/main")
    })
    .await;
    let failures = |r: &Value| {
        r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == "friend")
            .map(|t| t["consecutive_failures"].as_u64().unwrap())
            .unwrap()
    };
    let before = failures(&s.api("/api/v1/replication").await);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = failures(&s.api("/api/v1/replication").await);
    // without backoff (every 0.5 s) there would be ~12 more; with it (0.5, 1, 2, 2 s …) at most ~5
    assert!(after > before, "the peer is retried ({before} → {after})");
    assert!(
        after - before <= 6,
        "retries back off ({before} → {after} in 6 s)"
    );

    // the 3-2-1 report: hub + usb + cloud are current; the peer is behind with its error
    let r = s.api("/api/v1/replication").await;
    let job = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "docs")
        .unwrap()
        .clone();
    assert_eq!(
        (
            job["copies"].as_u64(),
            job["media"].as_u64(),
            job["offsite"].as_u64()
        ),
        (Some(3), Some(3), Some(1)),
        "{job:#}"
    );
    assert_eq!(job["snapshots"], 2);
    assert_eq!(
        job["replication_lag_seconds"], 0,
        "the cloud copy is current: {job:#}"
    );
    assert_eq!(
        job["effective_rpo_seconds"], 3600,
        "hourly schedule + 0 lag"
    );
    assert_eq!(job["violations"].as_array().unwrap().len(), 0, "{job:#}");
    let friend = job["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["place"] == "friend")
        .unwrap()
        .clone();
    assert_eq!(friend["current"], false);
    assert!(
        friend["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{friend:#}"
    );
    let usb_state = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "usb")
        .unwrap()
        .clone();
    assert!(
        usb_state["last_success"].is_string() && usb_state["copied_files"].as_u64().unwrap() > 0,
        "{usb_state:#}"
    );
    assert!(r["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "replication.failing"));

    // metrics say the same
    let m = s.metrics().await;
    for line in [
        "bulwark_job_copies{job=\"docs\"} 3",
        "bulwark_job_offsite_copies{job=\"docs\"} 1",
        "bulwark_job_effective_rpo_seconds{job=\"docs\"} 3600",
        "bulwark_replication_lag_seconds{target=\"usb\",repo=\"alice/main\"} 0",
        "bulwark_alerts_open{kind=\"replication.failing\",severity=\"warning\"} 1",
    ] {
        assert!(m.lines().any(|l| l == line), "missing `{line}` in\n{m}");
    }
    assert!(m.contains(
        "bulwark_replication_last_success_timestamp_seconds{target=\"cloud\",repo=\"alice/main\"}"
    ));
    assert!(m.contains(
        "bulwark_replication_consecutive_failures{target=\"friend\",repo=\"alice/main\"}"
    ));

    // the peer comes back (here: the target now points at a working place): resolved
    let fixed = config_text(&s.data(), s.dir.path(), port).replace(
        &format!("rest:http://127.0.0.1:{port}/"),
        &s.path("friend").to_string_lossy(),
    );
    s.plan.send(Arc::new(plan_of(&fixed))).unwrap();
    wait_for(
        "the peer catches up and its alert is resolved",
        30,
        async || {
            snapshots(&s.path("friend/alice/main")).len() == 2
                && !s
                    .open_alerts()
                    .await
                    .iter()
                    .any(|a| a["kind"] == "replication.failing")
        },
    )
    .await;
    let resolved = s.api("/api/v1/alerts?open=false").await;
    assert!(resolved
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "replication.failing" && a["resolved"].is_string()));
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_offsite_target_lets_the_lag_grow_until_the_rpo_alert() {
    let port = closed_port();
    let s = start(|data, tmp| {
        format!(
            r#"
[repositories.main]
url = "{data}/alice/main"
password_file = "/tmp/unused.pass"

[hosts.nas]

[jobs.docs]
repository = "main"
host = "nas"
paths = ["/srv/docs"]
schedule = "*:*:0/2"
rpo = "5s"

[targets.usb]
url = "{tmp}/usb"
medium = "disk"
offsite = false
after_upload = "1s"

[targets.offsite]
url = "rest:http://127.0.0.1:{port}/"
medium = "cloud"
offsite = true
after_upload = "1s"
"#,
            data = data.display(),
            tmp = tmp.display()
        )
    })
    .await;
    let home = s.path("home");
    let src = s.path("src");
    make_source(&src, 11);
    restic_async(s.hub_repo(), home.clone(), vec!["init"]).await;
    let src_s: &'static str = Box::leak(src.to_string_lossy().into_owned().into_boxed_str());
    restic_async(s.hub_repo(), home.clone(), vec!["backup", src_s]).await;

    // the lag of the only offsite copy grows; over 2 s interval + lag > 5 s: alert
    let lag = |r: &Value| r["jobs"][0]["replication_lag_seconds"].as_u64();
    wait_for("the RPO alert", 40, async || {
        s.open_alerts()
            .await
            .iter()
            .any(|a| a["kind"] == "replication.rpo" && a["subject"] == "docs")
    })
    .await;
    let r1 = s.api("/api/v1/replication").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r2 = s.api("/api/v1/replication").await;
    assert!(
        lag(&r2).unwrap() > lag(&r1).unwrap_or(0),
        "the lag grows: {r1:#} {r2:#}"
    );
    let job = &r2["jobs"][0];
    assert!(
        job["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().contains("exceeds the job's rpo")),
        "{job:#}"
    );
    assert!(
        job["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().contains("no current offsite copy")),
        "{job:#}"
    );
    let alert = s
        .open_alerts()
        .await
        .into_iter()
        .find(|a| a["kind"] == "replication.rpo")
        .unwrap();
    assert!(
        alert["message"].as_str().unwrap().contains("offsite"),
        "{alert:#}"
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_hub_repository_raises_shrink_and_the_targets_keep_everything() {
    let s = start(|data, tmp| {
        format!(
            r#"
[repositories.main]
url = "{data}/alice/main"
password_file = "/tmp/unused.pass"

[hosts.nas]

[jobs.docs]
repository = "main"
host = "nas"
paths = ["/srv/docs"]

[targets.usb]
url = "{tmp}/usb"
medium = "removable"
offsite = true
after_upload = "1s"
schedule = "*:*:0/2"
propagate_deletes = true
quarantine = "1s"
delete_cap = "100%"
"#,
            data = data.display(),
            tmp = tmp.display()
        )
    })
    .await;
    let home = s.path("home");
    let src = s.path("src");
    make_source(&src, 3);
    restic_async(s.hub_repo(), home.clone(), vec!["init"]).await;
    let src_s: &'static str = Box::leak(src.to_string_lossy().into_owned().into_boxed_str());
    restic_async(s.hub_repo(), home.clone(), vec!["backup", src_s]).await;
    let hub_repo = s.data().join("alice/main");
    let usb = s.path("usb/alice/main");
    wait_for("the copy", 60, async || {
        !snapshots(&hub_repo).is_empty() && snapshots(&usb) == snapshots(&hub_repo)
    })
    .await;
    let copy_before = common::tree(&usb);

    // ransomware, or a slip of the hand: the hub's repository is gone
    std::fs::remove_dir_all(&hub_repo).unwrap();
    wait_for("replication.shrink", 30, async || {
        s.open_alerts().await.iter().any(|a| {
            a["kind"] == "replication.shrink"
                && a["severity"] == "critical"
                && a["subject"] == "alice/main"
        })
    })
    .await;
    // several more passes (every 2 s, quarantine 1 s, cap 100 %): still nothing deleted
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(common::tree(&usb), copy_before, "the copy keeps every file");
    restic(&usb.to_string_lossy(), &home, &["check", "--read-data"]);

    // an event alert stays open until an administrator resolves it
    let alert = s
        .open_alerts()
        .await
        .into_iter()
        .find(|a| a["kind"] == "replication.shrink")
        .unwrap();
    let auth = format!("Bearer {}", s.admin);
    let path = format!("/api/v1/alerts/{}/resolve", alert["id"]);
    let r = req(
        s.server.addr,
        "POST",
        &path,
        None,
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!s
        .open_alerts()
        .await
        .iter()
        .any(|a| a["kind"] == "replication.shrink"));
    let r = req(
        s.server.addr,
        "POST",
        "/api/v1/alerts/999999/resolve",
        None,
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pruned_files_leave_the_target_only_after_quarantine_and_within_the_cap() {
    let config = |data: &Path, tmp: &Path, cap: &str| {
        format!(
            r#"
[repositories.main]
url = "{data}/alice/main"
password_file = "/tmp/unused.pass"

[targets.usb]
url = "{tmp}/usb"
medium = "removable"
offsite = true
after_upload = "1s"
schedule = "*:*:0/2"
propagate_deletes = true
quarantine = "2s"
delete_cap = "{cap}"
"#,
            data = data.display(),
            tmp = tmp.display()
        )
    };
    let s = start(|d, t| config(d, t, "5%")).await;
    let home = s.path("home");
    let src = s.path("src");
    make_source(&src, 5);
    restic_async(s.hub_repo(), home.clone(), vec!["init"]).await;
    let src_s: &'static str = Box::leak(src.to_string_lossy().into_owned().into_boxed_str());
    for i in 0..3 {
        std::fs::write(src.join(format!("sub/run{i}")), format!("run {i}")).unwrap();
        restic_async(s.hub_repo(), home.clone(), vec!["backup", src_s]).await;
    }
    let hub_repo = s.data().join("alice/main");
    let usb = s.path("usb/alice/main");
    wait_for("3 snapshots copied", 60, async || {
        snapshots(&hub_repo).len() == 3 && snapshots(&usb) == snapshots(&hub_repo)
    })
    .await;

    // forget + prune at the hub, then a new backup (its upload starts a pass)
    restic_async(
        s.hub_repo(),
        home.clone(),
        vec!["forget", "--keep-last", "1", "--prune"],
    )
    .await;
    restic_async(s.hub_repo(), home.clone(), vec!["backup", src_s]).await;
    // the deletions are far more than 5 % of the copy: over the cap, nothing deleted, alert
    wait_for("replication.delete_cap", 30, async || {
        s.open_alerts()
            .await
            .iter()
            .any(|a| a["kind"] == "replication.delete_cap" && a["subject"] == "usb/alice/main")
    })
    .await;
    assert_eq!(
        snapshots(&usb).len(),
        4,
        "the copy still has the forgotten snapshots"
    );

    // the administrator agrees to this prune: a cap that allows it, then the next pass deletes
    s.plan
        .send(Arc::new(plan_of(&config(&s.data(), s.dir.path(), "100%"))))
        .unwrap();
    wait_for("the copy equals the hub again", 30, async || {
        let (a, b) = (common::tree(&hub_repo), common::tree(&usb));
        let files = |t: &std::collections::BTreeMap<String, u64>| {
            t.keys()
                .filter(|k| !k.starts_with("locks") && !k.ends_with('/'))
                .cloned()
                .collect::<Vec<_>>()
        };
        files(&a) == files(&b)
    })
    .await;
    assert!(
        !s.open_alerts()
            .await
            .iter()
            .any(|a| a["kind"] == "replication.delete_cap"),
        "resolved"
    );
    restic(&usb.to_string_lossy(), &home, &["check", "--read-data"]);
    let m = s.metrics().await;
    assert!(
        m.lines().any(|l| l.starts_with(
            "bulwark_replication_deleted_files_total{target=\"usb\",repo=\"alice/main\"}"
        ) && !l.ends_with(" 0")),
        "{m}"
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_verify_schedule_finds_a_rotten_pack_at_a_target_and_copies_it_again() {
    let s = start(|data, tmp| {
        format!(
            r#"
[repositories.main]
url = "{data}/alice/main"
password_file = "/tmp/unused.pass"

[targets.usb]
url = "{tmp}/usb"
medium = "removable"
offsite = true
after_upload = "1s"
verify = "*:*:0/3"
verify_sample = "100%"
"#,
            data = data.display(),
            tmp = tmp.display()
        )
    })
    .await;
    let home = s.path("home");
    let src = s.path("src");
    make_source(&src, 13);
    restic_async(s.hub_repo(), home.clone(), vec!["init"]).await;
    let src_s: &'static str = Box::leak(src.to_string_lossy().into_owned().into_boxed_str());
    restic_async(s.hub_repo(), home.clone(), vec!["backup", src_s]).await;
    let hub_repo = s.data().join("alice/main");
    let usb = s.path("usb/alice/main");
    wait_for("the copy", 60, async || {
        !snapshots(&hub_repo).is_empty() && snapshots(&usb) == snapshots(&hub_repo)
    })
    .await;

    // bit rot on the USB disk
    let pack = std::fs::read_dir(usb.join("data"))
        .unwrap()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let good = std::fs::read(&pack).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 0x55;
    std::fs::write(&pack, &bad).unwrap();

    wait_for(
        "replication.corrupt and the pack copied again",
        30,
        async || {
            std::fs::read(&pack).is_ok_and(|b| b == good)
                && s.open_alerts()
                    .await
                    .iter()
                    .any(|a| a["kind"] == "replication.corrupt" && a["subject"] == "usb/alice/main")
        },
    )
    .await;
    let alert = s
        .open_alerts()
        .await
        .into_iter()
        .find(|a| a["kind"] == "replication.corrupt")
        .unwrap();
    let msg = alert["message"].as_str().unwrap();
    assert!(
        msg.contains("1 corrupt") && msg.contains("re-copied"),
        "{msg}"
    );
    assert_eq!(alert["severity"], "info", "repaired: {alert:#}");
    restic(&usb.to_string_lossy(), &home, &["check", "--read-data"]);
    let r = s.api("/api/v1/replication").await;
    assert!(r["targets"][0]["last_verified"].is_string(), "{r:#}");
    s.server.stop().await;
}
