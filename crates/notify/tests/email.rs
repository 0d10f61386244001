//! The email notifier against a real SMTP server: aiosmtpd on 127.0.0.1,
//! plain, STARTTLS and implicit TLS, with a certificate from a throwaway CA
//! trusted through `ca_file`. The server's handler (written below) writes
//! each message it accepts as JSON into a directory, checks logins and
//! refuses recipients called `nobody@…`.

mod common;

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bulwark_notify::{
    Channel, Email, ErrorKind, Event, Message, Notifier, SendOptions, Severity, SmtpSecurity,
};
use common::Pki;

const HANDLER: &str = r#"
import base64, email, email.policy, itertools, json, os
from aiosmtpd.smtp import AuthResult, LoginPassword, MISSING

class Recorder:
    counter = itertools.count()

    def __init__(self, outdir, user=None, password=None):
        self.outdir, self.user, self.password = outdir, user, password

    @classmethod
    def from_cli(cls, parser, *args):
        if not 1 <= len(args) <= 3:
            parser.error("Recorder takes OUTDIR [USER PASSWORD]")
        return cls(*args)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.user is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        transport = server.transport
        login = session.login_data.decode() if isinstance(session.login_data, bytes) else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "x_subject": str(msg["X-Bulwark-Subject"]),
            "x_severity": str(msg["X-Bulwark-Severity"]),
            "x_event": str(msg["X-Bulwark-Event"]),
            "content_type": msg.get_content_type(),
            "body": msg.get_content(),
            "starttls": session.ssl is not None,
            "implicit_tls": transport is not None and transport.get_extra_info("sslcontext") is not None and session.ssl is None,
            "login": login,
        }
        n = next(self.counter)
        tmp = os.path.join(self.outdir, ".%d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.outdir, "%04d.json" % n))
        return "250 Message accepted for delivery"

    async def auth_PLAIN(self, server, args):
        if len(args) == 1:
            data = await server.challenge_auth("")
            if data is MISSING:
                return AuthResult(success=False)
        else:
            data = base64.b64decode(args[1])
        try:
            _, login, password = data.split(b"\0")
        except ValueError:
            return AuthResult(success=False, handled=False)
        ok = self.user is not None and login.decode() == self.user and password.decode() == self.password
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(login, password))
"#;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Starttls,
    Smtps,
}

/// `python3 -m aiosmtpd` on 127.0.0.1 with the recording handler; killed when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require_aiosmtpd() {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python3 with aiosmtpd is needed for the SMTP tests: run scripts/test.sh (it pip-installs aiosmtpd)");
}

impl SmtpServer {
    fn start(mode: Mode, pki: &Pki, login: Option<(&str, &str)>) -> Self {
        require_aiosmtpd();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bulwark_test_smtp.py"), HANDLER).expect("write handler");
        let out = dir.path().join("mail");
        std::fs::create_dir(&out).expect("mail dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "bulwark_test_smtp.Recorder",
        ])
        .env("PYTHONPATH", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        match mode {
            Mode::Plain => {}
            Mode::Starttls => {
                cmd.arg("--tlscert")
                    .arg(&pki.cert_file)
                    .arg("--tlskey")
                    .arg(&pki.key_file);
            }
            Mode::Smtps => {
                cmd.arg("--smtpscert")
                    .arg(&pki.cert_file)
                    .arg("--smtpskey")
                    .arg(&pki.key_file);
            }
        }
        cmd.arg("--").arg(&out);
        if let Some((u, p)) = login {
            cmd.args([u, p]);
        }
        let mut child = cmd
            .spawn()
            .expect("start python3 -m aiosmtpd (run scripts/test.sh)");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("aiosmtpd exited ({status}): {err}\n(run scripts/test.sh)");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on 127.0.0.1:{port} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, dir }
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The messages received so far, in order.
    fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.mail_dir())
            .expect("mail dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("JSON record"))
            .collect()
    }
}

fn notifier(
    port: u16,
    security: SmtpSecurity,
    ca_file: Option<&Path>,
    login: Option<(&str, &str)>,
    to: &[&str],
) -> Notifier {
    Notifier::new(
        "mail",
        Channel::Email(Email {
            host: "127.0.0.1".into(),
            port: Some(port),
            security,
            username: login.map(|(u, _)| u.to_string()),
            password: login.map(|(_, p)| p.to_string()),
            from: "Bulwark <bulwark@example.org>".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            ca_file: ca_file.map(Path::to_path_buf),
        }),
    )
    .with_options(SendOptions {
        timeout: Duration::from_secs(5),
        retry_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    })
}

fn alert() -> Message {
    Message::new(
        Event::Down,
        Severity::Critical,
        "nas-backup",
        "Backup of nas failed — exit 3",
        "restic said:\nrepository is locked",
    )
    .with_at("2024-05-01T10:00:00Z".parse().expect("timestamp"))
    .with_link("https://hub.example/jobs/nas-backup")
}

fn assert_delivered(m: &serde_json::Value, rcpt: &[&str], to_header: &str) {
    assert_eq!(m["mail_from"], "bulwark@example.org");
    assert_eq!(m["rcpt_tos"], serde_json::json!(rcpt));
    assert_eq!(m["from"], "Bulwark <bulwark@example.org>");
    assert_eq!(m["to"], to_header);
    assert_eq!(m["subject"], "Backup of nas failed — exit 3");
    assert_eq!(m["x_subject"], "nas-backup");
    assert_eq!(m["x_severity"], "critical");
    assert_eq!(m["x_event"], "down");
    assert_eq!(m["content_type"], "text/plain");
    let body = m["body"].as_str().expect("body").replace("\r\n", "\n");
    assert_eq!(
        body.trim_end(),
        "restic said:\nrepository is locked\n\nSubject: nas-backup\nSeverity: critical\nEvent: down\n\
         At: 2024-05-01T10:00:00Z\nLink: https://hub.example/jobs/nas-backup"
    );
}

#[tokio::test]
async fn plain_smtp_delivers_to_every_recipient() {
    let pki = Pki::new();
    let srv = SmtpServer::start(Mode::Plain, &pki, None);
    let to = ["ops@example.org", "Second <two@example.org>"];
    let n = notifier(srv.port, SmtpSecurity::None, None, None, &to);
    n.validate().expect("valid");
    n.send(&alert()).await.expect("delivered");
    let msgs = srv.messages();
    assert_eq!(msgs.len(), 1);
    assert_delivered(
        &msgs[0],
        &["ops@example.org", "two@example.org"],
        "ops@example.org, Second <two@example.org>",
    );
    assert_eq!(msgs[0]["starttls"], false);
    assert_eq!(msgs[0]["implicit_tls"], false);
}

#[tokio::test]
async fn starttls_with_login_and_ca_file_delivers() {
    let pki = Pki::new();
    let srv = SmtpServer::start(Mode::Starttls, &pki, Some(("bulwark", "s3cret-pw")));
    let n = notifier(
        srv.port,
        SmtpSecurity::Starttls,
        Some(&pki.ca_file),
        Some(("bulwark", "s3cret-pw")),
        &["ops@example.org"],
    );
    n.validate().expect("valid");
    n.send(&alert()).await.expect("delivered");
    let msgs = srv.messages();
    assert_eq!(msgs.len(), 1);
    assert_delivered(&msgs[0], &["ops@example.org"], "ops@example.org");
    assert_eq!(msgs[0]["starttls"], true);
    assert_eq!(msgs[0]["login"], "bulwark");
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let pki = Pki::new();
    let srv = SmtpServer::start(Mode::Smtps, &pki, None);
    let n = notifier(
        srv.port,
        SmtpSecurity::Tls,
        Some(&pki.ca_file),
        None,
        &["ops@example.org"],
    );
    n.send(&alert()).await.expect("delivered");
    let msgs = srv.messages();
    assert_eq!(msgs.len(), 1);
    assert_delivered(&msgs[0], &["ops@example.org"], "ops@example.org");
    assert_eq!(msgs[0]["implicit_tls"], true);
    assert_eq!(msgs[0]["starttls"], false);
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_without_the_password() {
    let pki = Pki::new();
    let srv = SmtpServer::start(Mode::Starttls, &pki, Some(("bulwark", "right-pw")));
    let n = notifier(
        srv.port,
        SmtpSecurity::Starttls,
        Some(&pki.ca_file),
        Some(("bulwark", "WrOnG-pAsS")),
        &["ops@example.org"],
    );
    let e = n.send(&alert()).await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert_eq!(e.status, Some(535));
    assert_eq!(e.channel, "email");
    assert_eq!(e.notifier, "mail");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "email notifier `mail`: the SMTP server 127.0.0.1:{} answered 535",
            srv.port
        )),
        "{text}"
    );
    assert!(
        text.contains("Authentication credentials invalid"),
        "{text}"
    );
    assert!(
        text.contains("hint: the server refused the login"),
        "{text}"
    );
    assert!(
        !text.contains("WrOnG-pAsS") && !format!("{e:?}").contains("WrOnG-pAsS"),
        "{text}"
    );
    assert!(!format!("{n:?}").contains("WrOnG-pAsS"));
    assert!(srv.messages().is_empty());
}

#[tokio::test]
async fn a_refused_recipient_is_a_rejected_error_quoting_the_server() {
    let pki = Pki::new();
    let srv = SmtpServer::start(Mode::Plain, &pki, None);
    let n = notifier(
        srv.port,
        SmtpSecurity::None,
        None,
        None,
        &["nobody@example.org"],
    );
    let e = n.send(&alert()).await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Rejected, "{e}");
    assert_eq!(e.status, Some(550));
    let text = e.to_string();
    assert!(text.contains("answered 550"), "{text}");
    assert!(
        text.contains("Recipient address rejected: User unknown"),
        "{text}"
    );
    assert!(
        e.hint
            .as_deref()
            .expect("hint")
            .contains("check to and from"),
        "{e}"
    );
    assert!(srv.messages().is_empty());
}

#[tokio::test]
async fn starttls_without_the_private_ca_fails_with_a_ca_file_hint() {
    let pki = Pki::new();
    let srv = SmtpServer::start(Mode::Starttls, &pki, None);
    let n = notifier(
        srv.port,
        SmtpSecurity::Starttls,
        None,
        None,
        &["ops@example.org"],
    );
    let e = n.send(&alert()).await.expect_err("unknown issuer");
    assert_eq!(e.kind, ErrorKind::Connect, "{e}");
    assert!(
        e.message
            .contains("TLS failed: Connection error: invalid peer certificate: UnknownIssuer"),
        "{e}"
    );
    assert!(e.hint.as_deref().expect("hint").contains("ca_file"), "{e}");
    assert!(srv.messages().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let n = notifier(port, SmtpSecurity::None, None, None, &["ops@example.org"]);
    let e = n.send(&alert()).await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Connect, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("the SMTP server 127.0.0.1:{port}: cannot deliver")),
        "{e}"
    );
    assert!(e.to_string().contains("(after one retry)"), "{e}");
}

#[tokio::test]
async fn starttls_against_an_implicit_tls_port_times_out_with_a_security_hint() {
    let pki = Pki::new();
    let srv = SmtpServer::start(Mode::Smtps, &pki, None);
    let n = notifier(
        srv.port,
        SmtpSecurity::Starttls,
        Some(&pki.ca_file),
        None,
        &["ops@example.org"],
    )
    .with_options(SendOptions {
        timeout: Duration::from_millis(500),
        ..SendOptions::default()
    });
    let started = Instant::now();
    let e = n
        .send(&alert())
        .await
        .expect_err("no greeting in plain text");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        e.to_string().contains(&format!(
            "the SMTP server 127.0.0.1:{}: no answer within 1.5 s",
            srv.port
        )),
        "{e}"
    );
    assert!(
        e.hint
            .as_deref()
            .expect("hint")
            .contains("security matches the port"),
        "{e}"
    );
    assert!(srv.messages().is_empty());
}
