//! What the agent and the CLI trust, with real `bulwark hub` and
//! `bulwark agent` processes on loopback:
//!
//! - an agent that fetches its configuration from the hub runs only a file
//!   the administrator signed (`bulwark config keygen/sign`): unsigned and
//!   tampered files are refused, the last verified one keeps running, and a
//!   hook added on the hub never runs;
//! - plain http:// to a hub that is not on loopback is refused before any
//!   connection;
//! - one `ca_file` (or `--ca-file`) for every connection to the hub: control
//!   API, REST repositories, fetch-mode agents; a certificate error is
//!   reported once, with its cause and the fix, never retried;
//! - 401 and 403 from the hub say what happened, with their own exit codes;
//! - `bulwark run` never fails silently; `hub token create --output` with a
//!   relative path works, and a failed write leaves no live token behind.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Self {
        let lab = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["home", "cache"] {
            std::fs::create_dir_all(lab.p(d)).unwrap();
        }
        lab
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.p(rel).display().to_string()
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("XDG_CACHE_HOME", self.p("cache"))
            .env("HOME", self.p("home"))
            .env_remove("BULWARK_CONFIG")
            .env_remove("BULWARK_CA_FILE")
            .env_remove("BULWARK_CONFIG_KEY")
            .env_remove("SSL_CERT_FILE")
            .current_dir(self.dir.path());
        c
    }

    fn bulwark(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        run(&mut c, TIMEOUT)
    }

    fn spawn(&self, name: &str, args: &[String]) -> Proc {
        let log = std::fs::File::create(self.p(&format!("{name}.log"))).unwrap();
        let mut c = self.cmd();
        let child = c
            .args(args)
            .env("BULWARK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc { child }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.p(&format!("{name}.log"))).unwrap_or_default()
    }

    /// `bulwark hub` on 127.0.0.1:`port` with `extra` arguments; waits until
    /// it accepts connections.
    fn hub(&self, port: u16, config: Option<&Path>, extra: &[String]) -> Proc {
        let mut args: Vec<String> = vec![];
        if let Some(c) = config {
            args.extend(["-c".into(), c.display().to_string()]);
        }
        args.extend([
            "hub".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data".into(),
            self.s("hub-data"),
            "--state".into(),
            self.s("hub-state"),
            "--scrub-interval".into(),
            "0".into(),
        ]);
        args.extend(extra.iter().cloned());
        std::fs::create_dir_all(self.p("hub-data")).unwrap();
        let mut hub = self.spawn("hub", &args);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
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

    fn token(&self, args: &[&str], out: &str) {
        let state = self.s("hub-state");
        let mut a = vec!["hub", "token", "create", "--state", &state];
        a.extend_from_slice(args);
        let out = self.s(out);
        a.extend_from_slice(&["--output", &out]);
        self.bulwark(&a).ok();
    }

    /// Adds `user` with `password` to the hub's htpasswd file.
    fn user(&self, user: &str, password: &str) {
        std::fs::create_dir_all(self.p("hub-data")).unwrap();
        let mut c = self.cmd();
        c.args(["hub", "passwd"])
            .arg(self.p("hub-data/.htpasswd"))
            .arg(user)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// A private CA and a server certificate for 127.0.0.1 signed by it:
    /// `ca.pem`, `cert.pem`, `key.pem`.
    fn private_ca(&self) {
        let openssl = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(self.dir.path())
                .output()
                .expect("openssl is installed");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-days",
            "2",
            "-subj",
            "/CN=Bulwark test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&ca);
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend([
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "req.csr",
        ]);
        openssl(&req);
        std::fs::write(
            self.p("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ]);
    }

    /// A fresh public configuration key (`bulwark config keygen`).
    fn public_key(&self) -> String {
        let name = format!("k{}.key", rand_suffix());
        let out = self.bulwark(&["config", "keygen", "--output", &name]);
        out.ok();
        out.stdout.trim().to_string()
    }

    fn tls_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.s("cert.pem"),
            "--tls-key".into(),
            self.s("key.pem"),
        ]
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn wait_for(
    what: &str,
    limit: Duration,
    mut pred: impl FnMut() -> bool,
    diag: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !pred() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}\n{}",
            diag()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The configuration an agent fetches from the hub runs only when the
/// administrator signed it: unsigned → refused at start; signed → its job
/// runs; edited on the hub after signing → refused, the verified version
/// keeps running, and the hook the edit added never runs. Over HTTPS with a
/// private CA given to the fetch-mode agent by `--ca-file`.
#[test]
fn an_agent_runs_only_a_configuration_the_administrator_signed() {
    let lab = Lab::new();
    lab.private_ca();
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    for d in ["src", "repos"] {
        std::fs::create_dir_all(lab.p(d)).unwrap();
    }
    std::fs::write(lab.p("src/f"), "data").unwrap();
    std::fs::write(lab.p("vps.pass"), "vps password\n").unwrap();
    let signed_marker = lab.p("signed-hook-ran");
    let evil_marker = lab.p("EVIL-hook-ran");
    let text = format!(
        "[agent]\nhub_url = \"{url}\"\n\n[hosts.vps]\ntoken_file = \"{tok}\"\n\n\
         [repositories.vps]\nurl = \"{repo}\"\npassword_file = \"{pw}\"\n\n\
         [jobs.vps-app]\nhost = \"vps\"\nrepository = \"vps\"\npaths = [\"{src}\"]\nschedule = \"*:*:0/2\"\n\
         [jobs.vps-app.hooks]\nbefore = [\"touch {signed}\"]\n",
        tok = lab.s("vps.token"),
        repo = lab.s("repos/vps"),
        pw = lab.s("vps.pass"),
        src = lab.s("src"),
        signed = signed_marker.display(),
    );
    let cfg = lab.p("bulwark.toml");
    std::fs::write(&cfg, &text).unwrap();
    let cfg_s = cfg.display().to_string();
    lab.bulwark(&["-c", &cfg_s, "--job", "vps-app", "init"])
        .ok();
    std::fs::create_dir_all(lab.p("hub-data")).unwrap();
    std::fs::write(lab.p("hub-data/.htpasswd"), "").unwrap();

    // the key pair: private key 0600, public key printed and written
    let keygen = lab.bulwark(&["config", "keygen", "--output", "config.key"]);
    keygen.ok();
    let public = keygen.stdout.trim().to_string();
    assert!(public.starts_with("ed25519:"), "{}", keygen.stdout);
    let mode = std::fs::metadata(lab.p("config.key"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(lab.p("config.key.pub"))
            .unwrap()
            .trim(),
        public
    );
    // never overwrites a key
    assert_eq!(
        lab.bulwark(&["config", "keygen", "--output", "config.key"])
            .code,
        1
    );

    let _hub = lab.hub(port, Some(&cfg), &lab.tls_args());
    lab.token(&["--host", "vps"], "vps.token");
    let agent_args = |state: &str| -> Vec<String> {
        vec![
            "agent".into(),
            "--hub".into(),
            url.clone(),
            "--ca-file".into(),
            lab.s("ca.pem"),
            "--token-file".into(),
            lab.s("vps.token"),
            "--config-key".into(),
            public.clone(),
            "--state-dir".into(),
            lab.s(state),
            "--poll-wait".into(),
            "1".into(),
        ]
    };

    // 1. unsigned: refused at start (nothing verified to fall back on)
    let a = agent_args("agent-state");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = lab.bulwark(&a);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the hub's configuration is refused: the configuration is not signed")
            && out.stderr.contains("bulwark config sign"),
        "{}",
        out.stderr
    );
    assert!(!signed_marker.exists());
    // without a key at all: refused before fetching anything
    let mut no_key = agent_args("agent-state");
    no_key.drain(7..9);
    let no_key: Vec<&str> = no_key.iter().map(String::as_str).collect();
    let out = lab.bulwark(&no_key);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("--config-key"), "{}", out.stderr);

    // 2. signed: accepted, its job runs (the hub picks the .sig up by itself)
    let sign = lab.bulwark(&["config", "sign", &cfg_s, "--key", "config.key"]);
    sign.ok();
    assert!(lab.p("bulwark.toml.sig").exists());
    wait_for(
        "the hub's reload of the signed file",
        Duration::from_secs(30),
        || lab.log("hub").contains("changed: control plan reloaded"),
        || lab.log("hub"),
    );
    let _agent = lab.spawn("agent", &agent_args("agent-state"));
    wait_for(
        "the signed job's hook",
        Duration::from_secs(90),
        || signed_marker.exists(),
        || format!("agent:\n{}\nhub:\n{}", lab.log("agent"), lab.log("hub")),
    );
    assert!(lab
        .log("agent")
        .contains("signed configuration from the hub verified"));

    // 3. tampered on the hub: a hook added without the administrator's key
    let tampered = text.replace(
        &format!("before = [\"touch {}\"]", signed_marker.display()),
        &format!(
            "before = [\"touch {}\", \"touch {}\"]",
            signed_marker.display(),
            evil_marker.display()
        ),
    );
    assert_ne!(tampered, text);
    std::fs::write(&cfg, &tampered).unwrap();
    wait_for(
        "the agent's refusal of the edited file",
        Duration::from_secs(60),
        || {
            lab.log("agent")
                .contains("does not match the configuration")
        },
        || format!("agent:\n{}\nhub:\n{}", lab.log("agent"), lab.log("hub")),
    );
    // the verified configuration keeps running: two more runs of the job
    for _ in 0..2 {
        std::fs::remove_file(&signed_marker).unwrap();
        wait_for(
            "another run of the verified job",
            Duration::from_secs(60),
            || signed_marker.exists(),
            || lab.log("agent"),
        );
    }
    assert!(
        !evil_marker.exists(),
        "a hook added on the hub ran:\n{}",
        lab.log("agent")
    );
    let cached = std::fs::read_to_string(lab.p("agent-state/config.toml")).unwrap();
    assert!(!cached.contains("EVIL"), "{cached}");
    let log = lab.log("agent");
    assert!(
        log.contains("the hub or the network altered it") && log.contains("last verified"),
        "{log}"
    );
    // a restarted agent refuses the tampered file too and runs the last verified one
    drop(_agent);
    let _agent = lab.spawn("agent2", &agent_args("agent-state"));
    wait_for(
        "the restarted agent's refusal",
        Duration::from_secs(60),
        || lab.log("agent2").contains("running the last verified one"),
        || lab.log("agent2"),
    );
    std::fs::remove_file(&signed_marker).unwrap();
    wait_for(
        "a run of the verified job after the restart",
        Duration::from_secs(60),
        || signed_marker.exists(),
        || lab.log("agent2"),
    );
    assert!(!evil_marker.exists(), "{}", lab.log("agent2"));

    // 4. the administrator signs the edit: now it runs
    lab.bulwark(&["config", "sign", &cfg_s, "--key", "config.key"])
        .ok();
    wait_for(
        "the newly signed hook",
        Duration::from_secs(90),
        || evil_marker.exists(),
        || lab.log("agent2"),
    );
}

/// Plain http:// to a hub that is not on loopback is refused by the agent
/// and the CLI before any connection (the addresses are documentation/
/// unroutable ones; nothing is sent there), with the reason and the way out.
#[test]
fn plain_http_to_a_remote_hub_is_refused_before_connecting() {
    let lab = Lab::new();
    std::fs::write(lab.p("t.token"), "sometoken\n").unwrap();
    let tf = lab.s("t.token");
    for url in [
        "http://192.0.2.1:8000",
        "http://10.255.255.1:8000",
        "http://hub.lan:8000",
    ] {
        let out = lab.bulwark(&["status", "--hub", url, "--token-file", &tf]);
        assert_eq!(out.code, 1, "{url}: {}", out.stderr);
        assert!(
            out.stderr.contains("refusing plain http:// to the hub")
                && out.stderr.contains("could read the token")
                && out.stderr.contains("--allow-insecure-http"),
            "{url}: {}",
            out.stderr
        );
        for cmd in ["trigger", "alerts", "monitors"] {
            let mut args = vec![cmd];
            if cmd == "trigger" {
                args.push("job");
            }
            args.extend(["--hub", url, "--token-file", &tf]);
            let out = lab.bulwark(&args);
            assert!(
                out.stderr.contains("refusing plain http://"),
                "{cmd} {url}: {}",
                out.stderr
            );
        }
    }
    let state = lab.s("state");
    let out = lab.bulwark(&[
        "agent",
        "--hub",
        "http://10.255.255.1:8000",
        "--token-file",
        &tf,
        "--config-key",
        &lab.public_key(),
        "--state-dir",
        &state,
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("refusing plain http://"),
        "{}",
        out.stderr
    );
    // the same from [agent] hub_url in a local file
    std::fs::write(
        lab.p("b.toml"),
        format!(
            "[agent]\nhub_url = \"http://192.0.2.1:8000\"\n\n[hosts.h]\ntoken_file = \"{tf}\"\n"
        ),
    )
    .unwrap();
    let cfg = lab.s("b.toml");
    let out = lab.bulwark(&["-c", &cfg, "agent", "--host", "h", "--state-dir", &state]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("refusing plain http://"),
        "{}",
        out.stderr
    );
    // loopback is fine (nothing listens there: the error is a connection one)
    let port = free_port();
    let out = lab.bulwark(&[
        "status",
        "--hub",
        &format!("http://127.0.0.1:{port}"),
        "--token-file",
        &tf,
    ]);
    assert_eq!(out.code, 1);
    assert!(
        !out.stderr.contains("refusing plain http://"),
        "{}",
        out.stderr
    );
}

/// A hub over HTTPS with a private CA: with `[agent] ca_file` (or
/// `--ca-file`) a backup through the hub's REST repository and `status`
/// work; without it the error is immediate — one attempt, no retries — and
/// names the cause and the fix.
#[test]
fn one_ca_file_for_every_connection_to_the_hub() {
    let lab = Lab::new();
    lab.private_ca();
    lab.user("nas", "http-secret-of-nas");
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let _hub = lab.hub(port, None, &lab.tls_args());
    lab.token(&["--admin"], "admin.token");
    std::fs::create_dir_all(lab.p("src")).unwrap();
    std::fs::write(lab.p("src/f"), random_bytes(3, 50_000)).unwrap();
    std::fs::write(lab.p("nas.pass"), "nas password\n").unwrap();
    std::fs::write(lab.p("nas-http.pass"), "http-secret-of-nas\n").unwrap();
    let body = format!(
        "[repositories.nas]\nurl = \"rest:{url}/nas/main\"\npassword_file = \"{pw}\"\n\
         [repositories.nas.rest]\nusername = \"nas\"\npassword_file = \"{http}\"\n\n\
         [jobs.docs]\nrepository = \"nas\"\npaths = [\"{src}\"]\n",
        pw = lab.s("nas.pass"),
        http = lab.s("nas-http.pass"),
        src = lab.s("src"),
    );
    let with_ca = lab.p("with-ca.toml");
    std::fs::write(
        &with_ca,
        format!(
            "[agent]\nhub_url = \"{url}\"\nca_file = \"{}\"\n\n{body}",
            lab.s("ca.pem")
        ),
    )
    .unwrap();
    let without = lab.p("without.toml");
    std::fs::write(&without, format!("[agent]\nhub_url = \"{url}\"\n\n{body}")).unwrap();
    let (w, wo) = (with_ca.display().to_string(), without.display().to_string());

    // with ca_file: init, backup (REST through the hub, locks included), status
    lab.bulwark(&["-c", &w, "--job", "docs", "init"]).ok();
    let b = lab.bulwark(&["-c", &w, "--job", "docs", "backup"]);
    b.ok();
    let snaps = lab.bulwark(&["-c", &w, "--job", "docs", "--json", "snapshots"]);
    snaps.ok();
    assert_eq!(snaps.json().as_array().unwrap().len(), 1);
    let admin = lab.s("admin.token");
    lab.bulwark(&["-c", &w, "status", "--token-file", &admin])
        .ok();
    // --ca-file does the same without the key
    lab.bulwark(&[
        "-c",
        &wo,
        "--ca-file",
        &lab.s("ca.pem"),
        "--job",
        "docs",
        "backup",
    ])
    .ok();
    lab.bulwark(&[
        "status",
        "--hub",
        &url,
        "--ca-file",
        &lab.s("ca.pem"),
        "--token-file",
        &admin,
    ])
    .ok();

    // without: the cause and the fix, after a single attempt (-v shows
    // rustic's "retrying" warnings, of which there must be none)
    let out = lab.bulwark(&["-v", "-c", &wo, "--job", "docs", "backup"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("UnknownIssuer")
            && out
                .stderr
                .contains("set ca_file = \"/path/ca.pem\" in [agent] or pass --ca-file"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("there is no repository"),
        "{}",
        out.stderr
    );
    let out = lab.bulwark(&["-v", "-c", &wo, "run"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("UnknownIssuer"), "{}", out.stderr);
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    let out = lab.bulwark(&["status", "--hub", &url, "--token-file", &admin]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("UnknownIssuer") && out.stderr.contains("--ca-file"),
        "{}",
        out.stderr
    );
    // a fetch-mode agent without the CA stops at once with the same sentence
    lab.token(&["--host", "h"], "h.token");
    let out = lab.bulwark(&[
        "agent",
        "--hub",
        &url,
        "--token-file",
        &lab.s("h.token"),
        "--config-key",
        &lab.public_key(),
        "--state-dir",
        &lab.s("agent-h"),
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("UnknownIssuer") && out.stderr.contains("--ca-file"),
        "{}",
        out.stderr
    );
}

/// 401 and 403 from the hub: named as such, with exit codes 13 and 14 —
/// never "there is no repository"; `run` prints why a job failed.
#[test]
fn refused_credentials_and_missing_access_say_so() {
    let lab = Lab::new();
    lab.user("nas", "right");
    lab.user("other", "other-pass");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _hub = lab.hub(port, None, &[]);
    lab.token(&["--admin"], "admin.token");
    lab.token(&["--host", "h"], "h.token");
    std::fs::create_dir_all(lab.p("src")).unwrap();
    std::fs::write(lab.p("src/f"), "x").unwrap();
    std::fs::write(lab.p("pw"), "repo password\n").unwrap();
    let write = |name: &str, user: &str, pass: &str, repo: &str| {
        std::fs::write(lab.p(&format!("{name}.pass")), format!("{pass}\n")).unwrap();
        let f = lab.p(&format!("{name}.toml"));
        std::fs::write(
            &f,
            format!(
                "[repositories.r]\nurl = \"rest:{url}/{repo}\"\npassword_file = \"{pw}\"\n\
                 [repositories.r.rest]\nusername = \"{user}\"\npassword_file = \"{hp}\"\n\n\
                 [jobs.j]\nrepository = \"r\"\npaths = [\"{src}\"]\n",
                pw = lab.s("pw"),
                hp = lab.s(&format!("{name}.pass")),
                src = lab.s("src"),
            ),
        )
        .unwrap();
        f.display().to_string()
    };
    let good = write("good", "nas", "right", "nas/main");
    lab.bulwark(&["-c", &good, "--job", "j", "init"]).ok();
    let wrong_pw = write("wrongpw", "nas", "wrong", "nas/main");
    let no_user = write("nouser", "nobody", "x", "nas/main");
    let other = write("other", "other", "other-pass", "nas/main");
    let missing = write("missing", "nas", "right", "nas/none");

    for cfg in [&wrong_pw, &no_user] {
        let out = lab.bulwark(&["-c", cfg, "--job", "j", "snapshots"]);
        assert_eq!(out.code, 13, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("the hub refused the credentials of user `"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("no repository"), "{}", out.stderr);
        assert!(!out.stderr.contains("bulwark init"), "{}", out.stderr);
    }
    let out = lab.bulwark(&["-c", &other, "--job", "j", "snapshots"]);
    assert_eq!(out.code, 14, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("user `other` has no read access to repository `nas/main`")
            && out.stderr.contains("[[hub.acl]]"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("bulwark init"), "{}", out.stderr);

    // `run` prints the reason (it used to print nothing) and keeps the code
    let out = lab.bulwark(&["-c", &wrong_pw, "run"]);
    assert_eq!(out.code, 13, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("job j failed: the hub refused the credentials of user `nas`"),
        "{}",
        out.stderr
    );
    let out = lab.bulwark(&["-c", &missing, "run"]);
    assert_eq!(out.code, 10, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("job j failed: there is no repository at rest:")
            && out.stderr.contains("hint:"),
        "{}",
        out.stderr
    );

    // the control API: an unknown token is 401 (exit 13), a host token
    // where an admin one is needed is 403 (exit 14)
    std::fs::write(lab.p("bogus.token"), "bogus\n").unwrap();
    let out = lab.bulwark(&[
        "status",
        "--hub",
        &url,
        "--token-file",
        &lab.s("bogus.token"),
    ]);
    assert_eq!(out.code, 13, "{}", out.stderr);
    assert!(
        out.stderr.contains("the hub refused the token"),
        "{}",
        out.stderr
    );
    let out = lab.bulwark(&[
        "trigger",
        "j",
        "--hub",
        &url,
        "--token-file",
        &lab.s("h.token"),
    ]);
    assert_eq!(out.code, 14, "{}", out.stderr);
    assert!(out.stderr.contains("admin token"), "{}", out.stderr);
}

/// `hub token create --output` with a relative path succeeds (it used to
/// exit 1 after registering the token and writing the file); a write that
/// fails revokes the token it registered, so a retry leaves one live token.
#[test]
fn token_files_with_relative_paths_and_failed_writes() {
    let lab = Lab::new();
    let out = lab.bulwark(&[
        "hub",
        "token",
        "create",
        "--state",
        "st",
        "--host",
        "nas",
        "--output",
        "nas.token",
    ]);
    out.ok();
    assert!(lab.p("nas.token").is_file());
    let list = lab.bulwark(&["--json", "hub", "token", "list", "--state", "st"]);
    list.ok();
    assert_eq!(list.json().as_array().unwrap().len(), 1, "{}", list.stdout);

    let out = lab.bulwark(&[
        "hub",
        "token",
        "create",
        "--state",
        "st",
        "--host",
        "vps",
        "--output",
        "no/such/dir/vps.token",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("was revoked again"), "{}", out.stderr);
    // only nas's token is live: the failed one was revoked
    let list = lab.bulwark(&["--json", "hub", "token", "list", "--state", "st"]);
    list.ok();
    let live: Vec<_> = list.json().as_array().unwrap().clone();
    assert_eq!(live.len(), 1, "{}", list.stdout);
    assert_eq!(live[0]["host"], "nas", "{}", list.stdout);
}
