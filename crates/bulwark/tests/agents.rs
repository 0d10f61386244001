//! One hub and two agents as real processes on loopback, configured from one
//! `bulwark.toml`: scheduled runs, triggers, failure reports, late detection,
//! reports queued while the hub is down and delivered once when it returns,
//! and configuration changes picked up without a restart.
//!
//! - host `nas` runs its agent from a local copy of the file and backs up
//!   through the hub's REST repository server;
//! - host `vps` fetches its part of the file from the hub (`--hub --token-file`)
//!   and backs up a live SQLite database into a local repository;
//! - host `ghost` has a scheduled job but no agent: it must show up as late.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use serde_json::Value;

struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn stop(&mut self) {
        // SIGTERM first: the agent/hub shut down gracefully
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Lab {
    dir: tempfile::TempDir,
    port: u16,
    config: PathBuf,
}

impl Lab {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn bulwark(&self, args: &[&str]) -> Out {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("XDG_CACHE_HOME", self.p("cache"))
            .env("HOME", self.p("home"))
            .env_remove("BULWARK_CONFIG");
        run(&mut c, TIMEOUT)
    }

    fn spawn(&self, name: &'static str, args: &[String]) -> Proc {
        let log = std::fs::File::create(self.p(&format!("{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .env("XDG_CACHE_HOME", self.p("cache"))
            .env("HOME", self.p("home"))
            .env("BULWARK_LOG", "info")
            .env_remove("BULWARK_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc { child, name }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.p(&format!("{name}.log"))).unwrap_or_default()
    }

    fn hub(&self) -> Proc {
        let args: Vec<String> = vec![
            "-c".into(),
            self.config.display().to_string(),
            "hub".into(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.port),
            "--data".into(),
            self.p("hub-data").display().to_string(),
            "--state".into(),
            self.p("hub-state").display().to_string(),
            "--scrub-interval".into(),
            "0".into(),
        ];
        let mut hub = self.spawn("hub", &args);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(s) = hub.child.try_wait().unwrap() {
                panic!("the hub exited early ({s}):\n{}", self.log("hub"));
            }
            assert!(
                Instant::now() < deadline,
                "the hub did not start:\n{}",
                self.log("hub")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        hub
    }

    fn sign(&self) {
        let key = self.p("config.key");
        self.bulwark(&[
            "config",
            "sign",
            self.config.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .ok();
    }

    fn admin(&self) -> String {
        std::fs::read_to_string(self.p("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// GET on the control API with the admin token.
    fn get(&self, path: &str) -> Value {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}/api/v1{path}", self.url()))
            .bearer_auth(self.admin())
            .timeout(Duration::from_secs(20))
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().unwrap()
    }

    fn status(&self) -> Value {
        let tf = self.p("admin.token");
        let out = self.bulwark(&[
            "--json",
            "status",
            "--hub",
            &self.url(),
            "--token-file",
            tf.to_str().unwrap(),
        ]);
        out.ok();
        out.json()
    }

    fn job(&self, status: &Value, name: &str) -> Value {
        status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Polls `bulwark status --json` until `pred` holds for job `name`.
    fn wait_job(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status();
            let j = self.job(&s, name);
            if pred(&j) {
                return j;
            }
            assert!(
                Instant::now() < deadline,
                "job {name}: {what} did not happen within {limit:?}\nlast: {j:#}\nhub log:\n{}\nnas log:\n{}\nvps log:\n{}",
                self.log("hub"),
                self.log("agent-nas"),
                self.log("agent-vps")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn runs(&self, job: &str) -> Vec<Value> {
        self.get(&format!("/runs?job={job}"))
            .as_array()
            .unwrap()
            .clone()
    }
}

fn token(lab: &Lab, args: &[&str], out: &Path) {
    let state = lab.p("hub-state");
    let mut a = vec!["hub", "token", "create", "--state", state.to_str().unwrap()];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--output", out.to_str().unwrap()]);
    lab.bulwark(&a).ok();
}

fn setup() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let lab = Lab {
        config: dir.path().join("bulwark.toml"),
        dir,
        port,
    };
    for d in ["nas-src/docs", "vps-src", "home", "cache", "repos"] {
        std::fs::create_dir_all(lab.p(d)).unwrap();
    }
    for i in 0..20 {
        std::fs::write(
            lab.p(&format!("nas-src/docs/file{i}.txt")),
            random_bytes(i, 10_000),
        )
        .unwrap();
    }
    // a live SQLite database on the vps
    let db = rusqlite::Connection::open(lab.p("vps-src/app.db")).unwrap();
    db.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'),('b'),('c');").unwrap();
    drop(db);
    std::fs::write(lab.p("nas.pass"), "nas repository password\n").unwrap();
    std::fs::write(lab.p("vps.pass"), "vps repository password\n").unwrap();
    std::fs::write(lab.p("nas-http.pass"), "http-secret-of-nas\n").unwrap();
    let t = |p: PathBuf| p.display().to_string();
    let text = format!(
        r#"[agent]
hub_url = "{url}"

[hosts.nas]
token_file = "{nas_token}"
[hosts.vps]
token_file = "{vps_token}"
[hosts.ghost]

[repositories.nas]
url = "rest:{url}/nas/main"
password_file = "{nas_pass}"
[repositories.nas.rest]
username = "nas"
password_file = "{nas_http}"

# a disk on the nas itself: backups into it go on while the hub is down
[repositories.nas-local]
url = "{nas_local}"
password_file = "{nas_pass}"

[repositories.vps]
url = "{vps_repo}"
password_file = "{vps_pass}"

[repositories.ghost]
url = "{ghost_repo}"
password_file = "{vps_pass}"

# scheduled every 4 seconds, so the test sees a scheduled run soon
[jobs.nas-docs]
host = "nas"
repository = "nas"
paths = ["{nas_src}"]
schedule = "*:*:0/4"

[jobs.nas-broken]
host = "nas"
repository = "nas"
paths = ["{nas_src}"]
[jobs.nas-broken.hooks]
before = ["echo 'the service would not stop' >&2; exit 3"]

[jobs.nas-slow]
host = "nas"
repository = "nas-local"
paths = ["{nas_src}"]
[jobs.nas-slow.hooks]
before = ["sleep 4"]

[jobs.vps-app]
host = "vps"
repository = "vps"
paths = ["{vps_src}"]
exclude = ["*.db", "*.db-wal", "*.db-shm"]
[[jobs.vps-app.databases]]
type = "sqlite"
path = "{vps_db}"

# no agent ever runs this
[jobs.ghost-job]
host = "ghost"
repository = "ghost"
paths = ["/etc/hostname"]
schedule = "*:*:0/2"
late_after = "1s"
"#,
        url = lab.url(),
        nas_token = t(lab.p("nas.token")),
        vps_token = t(lab.p("vps.token")),
        nas_pass = t(lab.p("nas.pass")),
        nas_http = t(lab.p("nas-http.pass")),
        vps_pass = t(lab.p("vps.pass")),
        vps_repo = t(lab.p("repos/vps")),
        nas_local = t(lab.p("repos/nas-local")),
        ghost_repo = t(lab.p("repos/ghost")),
        nas_src = t(lab.p("nas-src")),
        vps_src = t(lab.p("vps-src")),
        vps_db = t(lab.p("vps-src/app.db")),
    );
    std::fs::write(&lab.config, text).unwrap();
    let check = lab.bulwark(&["config", "check", lab.config.to_str().unwrap()]);
    assert_eq!(
        check.code, 0,
        "config check: {}{}",
        check.stdout, check.stderr
    );
    // the REST user of nas on the hub (append-only is the hub's default ACL story)
    let htpasswd = lab.p("hub-data/.htpasswd");
    std::fs::create_dir_all(lab.p("hub-data")).unwrap();
    let mut c = Command::new(BIN);
    c.args(["hub", "passwd"])
        .arg(&htpasswd)
        .arg("nas")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"http-secret-of-nas\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    token(&lab, &["--admin"], &lab.p("admin.token"));
    token(&lab, &["--host", "nas"], &lab.p("nas.token"));
    token(&lab, &["--host", "vps"], &lab.p("vps.token"));
    // the administrator signs the file: vps takes it from the hub and runs
    // it only with a valid signature (docs/agent.md)
    let key = lab.p("config.key");
    lab.bulwark(&["config", "keygen", "--output", key.to_str().unwrap()])
        .ok();
    lab.sign();
    lab
}

fn init_repos(lab: &Lab) {
    let cfg = lab.config.to_str().unwrap();
    lab.bulwark(&["-c", cfg, "--job", "nas-docs", "init"]).ok();
    lab.bulwark(&["-c", cfg, "--job", "vps-app", "init"]).ok();
    lab.bulwark(&["-c", cfg, "--job", "nas-slow", "init"]).ok();
}

fn start_agents(lab: &Lab) -> (Proc, Proc) {
    let cfg = lab.config.display().to_string();
    let nas = lab.spawn(
        "agent-nas",
        &[
            "-c".into(),
            cfg,
            "agent".into(),
            "--host".into(),
            "nas".into(),
            "--state-dir".into(),
            lab.p("agent-nas").display().to_string(),
            "--poll-wait".into(),
            "2".into(),
        ],
    );
    let vps = lab.spawn(
        "agent-vps",
        &[
            "agent".into(),
            "--hub".into(),
            lab.url(),
            "--token-file".into(),
            lab.p("vps.token").display().to_string(),
            "--config-key".into(),
            lab.p("config.key.pub").display().to_string(),
            "--state-dir".into(),
            lab.p("agent-vps").display().to_string(),
            "--poll-wait".into(),
            "2".into(),
        ],
    );
    (nas, vps)
}

#[test]
fn two_hosts_on_one_hub() {
    let lab = setup();
    let mut hub = lab.hub();
    init_repos(&lab);
    let (mut nas, mut vps) = start_agents(&lab);

    // 1. a scheduled run lands and is reported
    let j = lab.wait_job(
        "nas-docs",
        "a scheduled success",
        Duration::from_secs(90),
        |j| j["last_run"]["status"] == "success" && j["last_run"]["trigger"] == "schedule",
    );
    let snap = j["last_run"]["snapshot"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(snap.len(), 64);
    assert!(
        j["last_run"]["stats"]["files_new"].as_u64().unwrap() >= 20,
        "{j:#}"
    );
    assert!(j["last_success"].is_string());
    // the agent reports its next run; the hub shows it
    lab.wait_job("nas-docs", "a next run", Duration::from_secs(30), |j| {
        j["next_run"].is_string() || j["running_since"].is_string()
    });

    // 2. a trigger reaches the vps agent (which fetched its config from the hub)
    let tf = lab.p("admin.token");
    let out = lab.bulwark(&[
        "trigger",
        "vps-app",
        "--hub",
        &lab.url(),
        "--token-file",
        tf.to_str().unwrap(),
    ]);
    out.ok();
    assert!(out.stdout.contains("vps"), "{}", out.stdout);
    let j = lab.wait_job(
        "vps-app",
        "the triggered run",
        Duration::from_secs(90),
        |j| j["last_run"]["trigger"] == "manual",
    );
    assert_eq!(j["last_run"]["status"], "success", "{j:#}");
    assert_eq!(j["host"], "vps");
    // the snapshot it reported is really in the repository, with the database copy
    let vps_snap = j["last_run"]["snapshot"]["id"].as_str().unwrap();
    let ls = lab.bulwark(&[
        "-r",
        lab.p("repos/vps").to_str().unwrap(),
        "--password-file",
        lab.p("vps.pass").to_str().unwrap(),
        "--json",
        "ls",
        vps_snap,
    ]);
    ls.ok();
    assert!(
        ls.stdout.contains("databases/sqlite/app.db"),
        "{}",
        ls.stdout
    );
    // the hub's snapshot list has both hosts' snapshots
    let snaps = lab.get("/snapshots");
    let hosts: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["host"].as_str().unwrap())
        .collect();
    assert!(
        hosts.contains(&"nas") && hosts.contains(&"vps"),
        "{snaps:#}"
    );
    assert!(
        !lab.log("agent-vps").contains("vps repository password"),
        "a secret leaked into the log"
    );

    // 3. a failing job is reported as failed, with its reason
    lab.bulwark(&[
        "trigger",
        "nas-broken",
        "--hub",
        &lab.url(),
        "--token-file",
        tf.to_str().unwrap(),
    ])
    .ok();
    let j = lab.wait_job(
        "nas-broken",
        "the failure report",
        Duration::from_secs(60),
        |j| j["state"] == "failed",
    );
    let errors = j["last_run"]["errors"].to_string();
    assert!(errors.contains("before hook"), "{j:#}");

    // 4. the host without an agent is late
    let j = lab.wait_job(
        "ghost-job",
        "late detection",
        Duration::from_secs(30),
        |j| j["state"] == "late",
    );
    assert!(j["late_since"].is_string(), "{j:#}");

    // the human view highlights them
    let out = lab.bulwark(&[
        "status",
        "--hub",
        &lab.url(),
        "--token-file",
        tf.to_str().unwrap(),
    ]);
    out.ok();
    for needle in ["nas-docs", "vps-app", "FAILED", "LATE", "ghost", "online"] {
        assert!(
            out.stdout.contains(needle),
            "`{needle}` missing from:\n{}",
            out.stdout
        );
    }
    println!("bulwark status:\n{}", out.stdout);

    // 5. the hub goes down while a job runs: the report is queued, then
    //    delivered once the hub is back, exactly once
    lab.bulwark(&[
        "trigger",
        "nas-slow",
        "--hub",
        &lab.url(),
        "--token-file",
        tf.to_str().unwrap(),
    ])
    .ok();
    lab.wait_job(
        "nas-slow",
        "the slow job to start",
        Duration::from_secs(60),
        |j| j["state"] == "running",
    );
    hub.stop();
    let queue = lab.p("agent-nas/queue");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let queued = std::fs::read_dir(&queue).map(|d| d.count()).unwrap_or(0);
        if queued > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the report was not queued while the hub was down:\n{}",
            lab.log("agent-nas")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut hub = lab.hub();
    let j = lab.wait_job(
        "nas-slow",
        "the queued report",
        Duration::from_secs(90),
        |j| j["last_run"]["trigger"] == "manual",
    );
    assert_eq!(j["last_run"]["status"], "success", "{j:#}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&queue).map(|d| d.count()).unwrap_or(0) > 0 {
        assert!(Instant::now() < deadline, "the queue did not drain");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lab.runs("nas-slow").len(),
        1,
        "stored exactly once: {:#}",
        lab.get("/runs?job=nas-slow")
    );

    // 6. history survived the restart
    assert!(!lab.runs("nas-docs").is_empty());

    nas.stop();
    vps.stop();
    hub.stop();
    let log = lab.log("agent-nas");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn config_changes_reach_a_running_agent_without_restart() {
    let lab = setup();
    let mut hub = lab.hub();
    init_repos(&lab);
    let (mut nas, mut vps) = start_agents(&lab);
    // vps got its config from the hub
    let cached = lab.p("agent-vps/config.toml");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cached.exists() {
        assert!(
            Instant::now() < deadline,
            "vps never fetched its config:\n{}",
            lab.log("agent-vps")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = std::fs::read_to_string(&cached).unwrap();
    assert!(
        first.contains("vps-app") && !first.contains("nas-docs") && !first.contains("[hub"),
        "only its own part:\n{first}"
    );
    assert!(!first.contains("ghost"), "{first}");
    // give vps a scheduled job in the one file: the hub reloads it, the agent fetches it and runs the job
    let text = std::fs::read_to_string(&lab.config).unwrap();
    let text = text.replace(
        "[jobs.vps-app]\nhost = \"vps\"\n",
        "[jobs.vps-app]\nhost = \"vps\"\nschedule = \"*:*:0/3\"\n",
    );
    std::fs::write(&lab.config, text).unwrap();
    lab.sign();
    let j = lab.wait_job(
        "vps-app",
        "a scheduled run after the change",
        Duration::from_secs(90),
        |j| j["last_run"]["trigger"] == "schedule",
    );
    assert_eq!(j["last_run"]["status"], "success", "{j:#}");
    assert!(std::fs::read_to_string(&cached)
        .unwrap()
        .contains("*:*:0/3"));
    nas.stop();
    vps.stop();
    hub.stop();
}

/// The systemd units in packaging/ load cleanly (`systemd-analyze verify`
/// reports unknown keys, bad values and missing executables).
#[test]
fn packaged_systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd");
    let mut units = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("/usr/bin/bulwark", BIN);
        let to = dir.path().join(p.file_name().unwrap());
        std::fs::write(&to, text).unwrap();
        units.push(to);
    }
    assert_eq!(units.len(), 2, "hub and agent units");
    let out = run(
        Command::new("systemd-analyze").arg("verify").args(&units),
        TIMEOUT,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("bulwark-"),
        "warnings about our units:\n{}",
        out.stderr
    );
}

/// `bulwark up`: from nothing to a reported backup, found by `bulwark status`
/// with no flags; a trigger runs the job again; SIGTERM stops it cleanly.
#[test]
fn up_from_nothing_to_a_reported_backup() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("bulwark");
    let port = free_port();
    let env = |c: &mut Command| {
        c.env("BULWARK_HOME", &home)
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env("HOME", dir.path())
            .env_remove("BULWARK_CONFIG");
    };
    let log = std::fs::File::create(dir.path().join("up.log")).unwrap();
    let mut c = Command::new(BIN);
    c.args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    env(&mut c);
    let mut up = Proc {
        child: c.spawn().unwrap(),
        name: "up",
    };
    let up_log = || std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default();
    let status = || {
        let mut c = Command::new(BIN);
        c.args(["--json", "status"]);
        env(&mut c);
        run(&mut c, TIMEOUT)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let out = status();
        if out.code == 0 {
            let s = out.json();
            let j = s["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["name"] == "default")
                .cloned();
            if let Some(j) = j.filter(|j| j["last_run"].is_object()) {
                break j;
            }
        }
        if let Some(st) = up.child.try_wait().unwrap() {
            panic!("bulwark up exited ({st}):\n{}", up_log());
        }
        assert!(
            Instant::now() < deadline,
            "no first run reported:\n{}\n{}",
            out.stderr,
            up_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // /etc as root backs up fully; as a normal user some files are unreadable
    let st = job["last_run"]["status"].as_str().unwrap();
    assert!(st == "success" || st == "partial", "{job:#}\n{}", up_log());
    assert_eq!(
        job["last_run"]["trigger"], "manual",
        "the first start runs the job at once"
    );
    assert!(
        job["schedule"].as_str().unwrap().contains("02:00"),
        "{job:#}"
    );
    assert!(job["next_run"].is_string(), "{job:#}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("repo.password"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let id = job["last_run"]["snapshot"]["id"].as_str().unwrap();
    let cfg = home.join("bulwark.toml");
    let mut c = Command::new(BIN);
    c.args([
        "-c",
        cfg.to_str().unwrap(),
        "--job",
        "default",
        "--json",
        "snapshots",
    ]);
    env(&mut c);
    let snaps = run(&mut c, TIMEOUT);
    snaps.ok();
    assert!(snaps.stdout.contains(id), "{}", snaps.stdout);
    // a trigger with no flags at all
    let mut c = Command::new(BIN);
    c.args(["trigger", "default"]);
    env(&mut c);
    run(&mut c, TIMEOUT).ok();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = status().json();
        let j = s["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "default")
            .cloned()
            .unwrap();
        if j["last_run"]["snapshot"]["id"]
            .as_str()
            .is_some_and(|s| s != id)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the triggered run was not reported:\n{}",
            up_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut c = Command::new(BIN);
    c.arg("status");
    env(&mut c);
    let human = run(&mut c, TIMEOUT);
    human.ok();
    assert!(
        human.stdout.contains("default") && human.stdout.contains("HOSTS"),
        "{}",
        human.stdout
    );
    up.stop();
    let code = up.child.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", up_log());
}

/// `bulwark maintenance NAME`: the retention of a `[maintenance.NAME]` over
/// every host's snapshots, then prune — what the agent on the host with
/// `modify` credentials runs.
#[test]
fn maintenance_applies_retention_to_every_group_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let d = |r: &str| dir.path().join(r);
    std::fs::create_dir_all(d("src")).unwrap();
    std::fs::write(d("pw"), "pw\n").unwrap();
    let cfg = d("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "[repositories.r]\nurl = \"{repo}\"\npassword_file = \"{pw}\"\n\n[jobs.a]\nrepository = \"r\"\nhost = \"alpha\"\npaths = [\"{src}\"]\n\n[jobs.b]\nrepository = \"r\"\nhost = \"beta\"\npaths = [\"{src}\"]\n\n[maintenance.weekly]\nrepository = \"r\"\ncheck = true\n[maintenance.weekly.retention]\nkeep_last = 1\n",
            repo = d("repo").display(),
            pw = d("pw").display(),
            src = d("src").display()
        ),
    )
    .unwrap();
    let b = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("-c")
            .arg(&cfg)
            .args(args)
            .env("XDG_CACHE_HOME", d("cache"))
            .env_remove("BULWARK_CONFIG");
        run(&mut c, TIMEOUT)
    };
    b(&["--job", "a", "init"]).ok();
    for i in 0..3 {
        std::fs::write(d("src/f"), format!("version {i}")).unwrap();
        b(&["--job", "a", "run"]).ok();
        b(&["--job", "b", "run"]).ok();
    }
    let out = b(&["--json", "maintenance", "weekly"]);
    out.ok();
    let r = out.json();
    assert_eq!(r["status"], "success", "{r:#}");
    // keep_last = 1 per host/paths group: 2 of 3 removed for each of the 2 hosts
    assert_eq!(r["forget"]["removed"].as_array().unwrap().len(), 4, "{r:#}");
    assert!(r["prune"].is_object() && r["check"]["ok"] == true, "{r:#}");
    let snaps = b(&["--job", "a", "--json", "snapshots"]);
    assert_eq!(snaps.json().as_array().unwrap().len(), 2);
    let bad = b(&["maintenance", "nope"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("weekly"),
        "lists what exists: {}",
        bad.stderr
    );
}

/// Agent and CLI reach a hub over HTTPS with a self-signed certificate given
/// as `[agent] ca_file`; without it the certificate is refused, loudly.
#[test]
fn agent_and_status_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = |r: &str| dir.path().join(r);
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        // a self-signed *server* certificate (rustls refuses a CA certificate
        // used as the server's own, which is openssl's default)
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(d("key.pem"))
        .arg("-out")
        .arg(d("cert.pem"))
        .output()
        .expect("openssl is installed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::create_dir_all(d("data")).unwrap();
    std::fs::create_dir_all(d("src")).unwrap();
    std::fs::write(d("src/f"), "x").unwrap();
    std::fs::write(d("data/.htpasswd"), "").unwrap();
    std::fs::write(d("pw"), "pw\n").unwrap();
    let port = free_port();
    let cfg = d("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nhub_url = \"https://127.0.0.1:{port}\"\nca_file = \"{ca}\"\n\n[repositories.r]\nurl = \"{repo}\"\npassword_file = \"{pw}\"\n\n[jobs.t]\nrepository = \"r\"\npaths = [\"{src}\"]\nschedule = \"*:*:0/2\"\n",
            ca = d("cert.pem").display(),
            repo = d("repo").display(),
            pw = d("pw").display(),
            src = d("src").display()
        ),
    )
    .unwrap();
    let b = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("XDG_CACHE_HOME", d("cache"))
            .env("HOME", dir.path())
            .env_remove("BULWARK_CONFIG");
        run(&mut c, TIMEOUT)
    };
    let state = d("state");
    let s = state.to_str().unwrap();
    b(&[
        "hub",
        "token",
        "create",
        "--state",
        s,
        "--admin",
        "--output",
        d("admin.token").to_str().unwrap(),
    ])
    .ok();
    b(&[
        "hub",
        "token",
        "create",
        "--state",
        s,
        "--host",
        "h",
        "--output",
        d("h.token").to_str().unwrap(),
    ])
    .ok();
    b(&["-c", cfg.to_str().unwrap(), "--job", "t", "init"]).ok();
    let spawn = |name: &'static str, args: Vec<String>| {
        let log = std::fs::File::create(d(&format!("{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .env("XDG_CACHE_HOME", d("cache"))
            .env("BULWARK_LOG", "info")
            .env_remove("BULWARK_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc { child, name }
    };
    let s2 = |p: PathBuf| p.display().to_string();
    let mut hub = spawn(
        "hub",
        vec![
            "hub".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data".into(),
            s2(d("data")),
            "--state".into(),
            s2(d("state")),
            "--tls-cert".into(),
            s2(d("cert.pem")),
            "--tls-key".into(),
            s2(d("key.pem")),
            "--scrub-interval".into(),
            "0".into(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "hub did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut agent = spawn(
        "agent",
        vec![
            "-c".into(),
            s2(cfg.clone()),
            "agent".into(),
            "--host".into(),
            "h".into(),
            "--token-file".into(),
            s2(d("h.token")),
            "--state-dir".into(),
            s2(d("agent")),
            "--poll-wait".into(),
            "2".into(),
        ],
    );
    let admin = d("admin.token");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = b(&[
            "-c",
            cfg.to_str().unwrap(),
            "--json",
            "status",
            "--token-file",
            admin.to_str().unwrap(),
        ]);
        if out.code == 0 {
            let s = out.json();
            if s["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j["name"] == "t" && j["last_run"]["status"] == "success")
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no run reported over HTTPS: {}\nagent:\n{}",
            out.stderr,
            std::fs::read_to_string(d("agent.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // without the CA the hub's certificate is not trusted
    let out = b(&[
        "status",
        "--hub",
        &format!("https://127.0.0.1:{port}"),
        "--token-file",
        admin.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    agent.stop();
    hub.stop();
}
