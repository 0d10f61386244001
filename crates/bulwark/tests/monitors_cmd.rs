//! `bulwark monitors` end to end: a real hub and a real agent (host `nas`)
//! on loopback, one `bulwark.toml` with probe monitors that run at the hub,
//! at the agent, or both. The agent's results reach the hub (its vantage
//! shows up in the hub's view), a monitor that is down makes the command
//! exit 3, and once it is up again the command exits 0.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use serde_json::Value;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Lab {
    dir: tempfile::TempDir,
    port: u16,
}

impl Lab {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.p("home"))
            .env("XDG_CACHE_HOME", self.p("cache"))
            .env("TZ", "UTC");
        c
    }

    fn bulwark(&self, args: &[&str]) -> Out {
        let out = run(self.cmd().args(args), Duration::from_secs(60));
        assert!(!out.timed_out, "{out:?}");
        assert_no_crash_text("stderr", &out.stderr);
        out
    }

    fn spawn(&self, name: &str, args: &[&str]) -> Proc {
        let log = std::fs::File::create(self.p(&format!("{name}.log"))).unwrap();
        let child = self
            .cmd()
            .env("BULWARK_LOG", "info")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc(child)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.p(&format!("{name}.log"))).unwrap_or_default()
    }

    /// `bulwark [--json] monitors` with the admin token.
    fn monitors(&self, json: bool) -> Out {
        let tf = self.p("admin.token");
        let url = self.url();
        let mut args = vec![];
        if json {
            args.push("--json");
        }
        args.extend([
            "monitors",
            "--hub",
            url.as_str(),
            "--token-file",
            tf.to_str().unwrap(),
        ]);
        self.bulwark(&args)
    }

    /// Polls `bulwark --json monitors` until `pred` holds.
    fn wait(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.monitors(true);
            assert!(out.code == 0 || out.code == 3, "{out:?}");
            let v = out.json();
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within 60s\nlast: {v:#}\nhub log:\n{}\nagent log:\n{}",
                self.log("hub"),
                self.log("agent")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn monitor<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or(&Value::Null)
}

fn vantage<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["vantages"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["vantage"] == name))
        .unwrap_or(&Value::Null)
}

#[test]
fn monitors_show_the_agents_results_and_the_exit_code_follows_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab {
        dir,
        port: free_port(),
    };
    for d in ["home", "cache"] {
        std::fs::create_dir_all(lab.p(d)).unwrap();
    }
    // a service that answers
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in open.incoming() {
            drop(s)
        }
    });
    let later = free_port(); // nothing listens there yet
    let config = lab.p("bulwark.toml");
    std::fs::write(
        &config,
        format!(
            r#"[agent]
hub_url = "{url}"

[hosts.nas]
token_file = "{nas_token}"

[monitors.service]
type = "tcp"
host = "127.0.0.1"
port = {open_port}
on = ["hub", "nas"]
interval = "1s"
timeout = "1s"
failure_threshold = 1
success_threshold = 1

[monitors.later]
type = "tcp"
host = "127.0.0.1"
port = {later}
on = ["nas"]
interval = "1s"
timeout = "1s"
failure_threshold = 1
success_threshold = 1

[monitors.hub-disk]
type = "disk"
min_free = "1 KiB"
"#,
            url = lab.url(),
            nas_token = lab.p("nas.token").display(),
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    lab.bulwark(&["config", "check", cfg]).ok();
    let state = lab.p("hub-state");
    let state = state.to_str().unwrap();
    for (who, file) in [("--admin", "admin.token"), ("--host", "nas.token")] {
        let out = lab.p(file);
        let mut args = vec!["hub", "token", "create", "--state", state, who];
        if who == "--host" {
            args.push("nas");
        }
        args.extend(["--output", out.to_str().unwrap()]);
        lab.bulwark(&args).ok();
    }
    let listen = format!("127.0.0.1:{}", lab.port);
    let data = lab.p("hub-data");
    // (no REST repositories here: --no-auth; the control API still wants tokens)
    let mut hub = lab.spawn(
        "hub",
        &[
            "-c",
            cfg,
            "hub",
            "--listen",
            &listen,
            "--data",
            data.to_str().unwrap(),
            "--state",
            state,
            "--scrub-interval",
            "0",
            "--no-auth",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", lab.port)).is_err() {
        if let Some(s) = hub.0.try_wait().unwrap() {
            panic!("the hub exited early ({s}):\n{}", lab.log("hub"));
        }
        assert!(
            Instant::now() < deadline,
            "the hub did not start:\n{}",
            lab.log("hub")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let agent_state = lab.p("agent-state");
    let _agent = lab.spawn(
        "agent",
        &[
            "-c",
            cfg,
            "agent",
            "--host",
            "nas",
            "--state-dir",
            agent_state.to_str().unwrap(),
            "--poll-wait",
            "2",
        ],
    );

    // `later` is down as the agent sees it; `service` up from both places
    let v = lab.wait("`later` down at nas, `service` up at hub and nas", |v| {
        let (s, l) = (monitor(v, "service"), monitor(v, "later"));
        l["state"] == "down"
            && vantage(l, "nas")["state"] == "down"
            && s["state"] == "up"
            && vantage(s, "hub")["state"] == "up"
            && vantage(s, "nas")["state"] == "up"
    });
    assert_eq!(monitor(&v, "later")["kind"], "tcp");
    assert!(
        vantage(monitor(&v, "later"), "hub").is_null(),
        "`later` does not run at the hub: {v:#}"
    );
    assert!(
        vantage(monitor(&v, "service"), "nas")["latency_ms"]
            .as_f64()
            .is_some(),
        "{v:#}"
    );

    let out = lab.monitors(false);
    assert_eq!(out.code, 3, "a monitor is down: {out:?}");
    let row = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name}:\n{}", out.stdout))
            .to_string()
    };
    assert!(
        out.stdout.starts_with("NAME"),
        "no warning lines: {}",
        out.stdout
    );
    let later_row = row("later");
    assert!(
        later_row.contains(" tcp ") && later_row.contains("DOWN") && later_row.contains("nas:down"),
        "{later_row}"
    );
    let service_row = row("service");
    assert!(
        service_row.contains("UP")
            && service_row.contains("hub:up ")
            && service_row.contains("nas:up "),
        "{service_row}"
    );
    assert_eq!(lab.monitors(true).code, 3, "also with --json");

    // the service comes up: nothing is down any more
    let up = TcpListener::bind(("127.0.0.1", later)).unwrap();
    std::thread::spawn(move || {
        for s in up.incoming() {
            drop(s)
        }
    });
    lab.wait("`later` up", |v| monitor(v, "later")["state"] == "up");
    let out = lab.monitors(false);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        row_state(&out.stdout, "later").contains("UP"),
        "{}",
        out.stdout
    );

    // a host token is not enough: a 403 has its own exit code (14, issue 13)
    let out = lab.bulwark(&[
        "monitors",
        "--hub",
        &lab.url(),
        "--token-file",
        lab.p("nas.token").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 14, "{out:?}");
    assert!(
        out.stderr.contains("403") && out.stderr.contains("admin token"),
        "{}",
        out.stderr
    );
    assert!(
        !lab.log("agent").contains("monitor results kept"),
        "no delivery failures:\n{}",
        lab.log("agent")
    );
}

fn row_state(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_default()
        .to_string()
}
