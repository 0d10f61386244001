//! `bulwark notify test NAME` against real receivers on loopback: a generic
//! webhook and an ntfy-style server, each a tiny HTTP server in this test
//! that records what it gets and answers with a chosen status. Also the
//! errors a person meets: a notifier that isn't declared, a token file that
//! can't be read, a receiver that fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Request {
    /// `POST /hook HTTP/1.1`
    line: String,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 server: records every request, answers `status`.
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Some(r) = serve(stream, status) {
                    seen.lock().unwrap().push(r);
                }
            }
        });
        Self { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads one request (head, then `Content-Length` bytes of body) and answers.
fn serve(mut stream: TcpStream, status: u16) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let answer = if status < 300 {
        "{\"id\":\"ok\"}"
    } else {
        "upstream exploded"
    };
    let reason = if status < 300 {
        "OK"
    } else {
        "Internal Server Error"
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.flush();
    Some(Request {
        line,
        headers,
        body,
    })
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a secret file (mode 0600).
    fn secret(&self, name: &str, value: &str) -> PathBuf {
        let p = self.p(name);
        std::fs::write(&p, value).unwrap();
        chmod(&p, 0o600);
        p
    }

    /// A config with a webhook `hook` and an ntfy notifier `phone`.
    fn config(&self, hook_url: &str, ntfy_server: &str, ntfy_token: &Path) -> PathBuf {
        let auth = self.secret("hook.auth", "Bearer hook-s3cret-value\n");
        let text = format!(
            r#"
[notifiers.hook]
type = "webhook"
url = "{hook_url}"
header_files = {{ "Authorization" = "{auth}" }}

[notifiers.phone]
type = "ntfy"
server = "{ntfy_server}"
topic = "bulwark-test"
token_file = "{token}"

[[routes]]
notifiers = ["hook", "phone"]
"#,
            auth = auth.display(),
            token = ntfy_token.display(),
        );
        let p = self.p("bulwark.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn bulwark(&self, args: &[&str]) -> Out {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("TZ", "UTC")
            .args(args);
        let out = run(&mut c, Duration::from_secs(60));
        assert!(!out.timed_out, "{out:?}");
        assert_no_crash_text("stderr", &out.stderr);
        out
    }
}

#[test]
fn a_test_message_reaches_a_webhook_and_an_ntfy_server() {
    let lab = Lab::new();
    let hook = Receiver::start(200);
    let ntfy = Receiver::start(200);
    let token = lab.secret("ntfy.token", "tk_ntfys3cret\n");
    let cfg = lab.config(&hook.url("/hook"), &ntfy.url(""), &token);
    let cfg = cfg.to_str().unwrap();

    let out = lab.bulwark(&["-c", cfg, "notify", "test", "hook"]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        "sent a test message through hook (webhook)"
    );
    let got = hook.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].line.starts_with("POST /hook "), "{got:?}");
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer hook-s3cret-value"),
        "the secret header was loaded"
    );
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["title"], "Bulwark test notification (hook)", "{body}");
    assert_eq!(body["event"], "test", "{body}");
    assert!(ntfy.requests().is_empty(), "only the named notifier");

    let out = lab.bulwark(&["-c", cfg, "--json", "notify", "test", "phone"]);
    out.ok();
    assert_eq!(
        out.json(),
        serde_json::json!({"notifier": "phone", "kind": "ntfy", "sent": true})
    );
    let got = ntfy.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].line.starts_with("POST / "),
        "ntfy's JSON publishing goes to the server's root: {got:?}"
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer tk_ntfys3cret"));
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["topic"], "bulwark-test", "{body}");
    assert_eq!(body["title"], "Bulwark test notification (phone)", "{body}");
    assert_eq!(hook.requests().len(), 1, "nothing more to the webhook");
}

#[test]
fn an_unknown_notifier_names_the_declared_ones() {
    let lab = Lab::new();
    let token = lab.secret("ntfy.token", "tk_x\n");
    // nothing listens there: these must fail before sending anything
    let cfg = lab.config("http://127.0.0.1:9/hook", "http://127.0.0.1:9", &token);
    let cfg = cfg.to_str().unwrap();

    let out = lab.bulwark(&["-c", cfg, "notify", "test", "phon"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("there is no [notifiers.phon]"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("did you mean `phone`? (declared: hook, phone)"),
        "{}",
        out.stderr
    );

    let out = lab.bulwark(&["-c", cfg, "notify", "test", "discord"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("declared: hook, phone") && !out.stderr.contains("did you mean"),
        "{}",
        out.stderr
    );

    // no configuration at all
    let out = lab.bulwark(&["notify", "test", "phone"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("needs the configuration file") && out.stderr.contains("-c FILE"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_token_file_that_cannot_be_read_is_named() {
    let lab = Lab::new();
    let ntfy = Receiver::start(200);
    let missing = lab.p("no-such.token");
    let cfg = lab.config(&ntfy.url("/hook"), &ntfy.url(""), &missing);
    let out = lab.bulwark(&["-c", cfg.to_str().unwrap(), "notify", "test", "phone"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("notifier `phone` (token_file)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("{} does not exist", missing.display())),
        "{}",
        out.stderr
    );

    // a directory where the token file should be: unreadable, also as root
    let dir = lab.p("token-dir");
    std::fs::create_dir(&dir).unwrap();
    let cfg = lab.config(&ntfy.url("/hook"), &ntfy.url(""), &dir);
    let out = lab.bulwark(&["-c", cfg.to_str().unwrap(), "notify", "test", "phone"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("the secret file {} cannot be read", dir.display())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert!(ntfy.requests().is_empty(), "nothing was sent");
}

#[test]
fn a_receiver_that_fails_is_an_error_without_secrets() {
    let lab = Lab::new();
    let hook = Receiver::start(500);
    let token = lab.secret("ntfy.token", "tk_ntfys3cret\n");
    let cfg = lab.config(&hook.url("/hook"), &hook.url(""), &token);
    let cfg = cfg.to_str().unwrap();

    let out = lab.bulwark(&["-c", cfg, "--json", "notify", "test", "phone"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty(), "no success JSON: {}", out.stdout);
    assert!(
        out.stderr.contains("ntfy notifier `phone`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("500"),
        "the status is quoted: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("upstream exploded"),
        "the start of the answer is quoted: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("tk_ntfys3cret"), "{}", out.stderr);
    assert_eq!(hook.requests().len(), 2, "one retry after a 5xx");

    let out = lab.bulwark(&["-c", cfg, "notify", "test", "hook"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("webhook notifier `hook`") && out.stderr.contains("500"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hook-s3cret-value"), "{}", out.stderr);
}
