//! The dns probe against a real dnsmasq started by the test on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_monitor::{probe, DnsProbe, Probe, ProbeResult, Rcode, RecordType};

/// dnsmasq on 127.0.0.1 and a free port, killed when dropped.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dnsmasq_binary() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = PathBuf::from(dir).join("dnsmasq");
        if p.is_file() {
            return p;
        }
    }
    panic!("dnsmasq is not installed; run scripts/test.sh (it installs dnsmasq-base), or apt-get install dnsmasq-base");
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

async fn start_dnsmasq() -> Dnsmasq {
    let bin = dnsmasq_binary();
    let mut last_err = String::new();
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--local=/test/",
            "--host-record=web.test,10.1.2.3,fd00::3",
            "--host-record=multi.test,10.0.0.1",
            "--host-record=multi.test,10.0.0.2",
            "--cname=alias.test,web.test",
            "--mx-host=mail.test,mx1.mail.test,10",
            "--txt-record=txt.test,hello world",
            "--srv-host=_http._tcp.web.test,web.test,8080,1,5",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--pid-file={}", dir.path().join("pid").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if nix::unistd::geteuid().is_root() {
            cmd.arg("--user=root");
        }
        let mut child = cmd.spawn().expect("start dnsmasq");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Ready when it answers a known name.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                last_err = format!("dnsmasq exited with {status}: {err}");
                break;
            }
            let r = probe(
                &Probe::Dns(DnsProbe::new(addr, "web.test")),
                Duration::from_millis(200),
            )
            .await;
            if r.up {
                return Dnsmasq {
                    child,
                    addr,
                    _dir: dir,
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last_err = format!("dnsmasq on port {port} did not answer: {}", r.message);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("could not start dnsmasq: {last_err}");
}

async fn ask(server: SocketAddr, name: &str, t: RecordType, expect: &[&str]) -> ProbeResult {
    let mut p = DnsProbe::new(server, name);
    p.record_type = t;
    p.expected_answers = expect.iter().map(|s| s.to_string()).collect();
    probe(&Probe::Dns(p), Duration::from_secs(3)).await
}

#[tokio::test]
async fn records_of_every_kind() {
    let dns = start_dnsmasq().await;
    let s = dns.addr;

    let r = ask(s, "web.test", RecordType::A, &["10.1.2.3"]).await;
    assert!(r.up, "{r:?}");
    assert!(
        r.message
            .starts_with(&format!("web.test from {s}: NOERROR, A 10.1.2.3 in ")),
        "{}",
        r.message
    );
    let r = ask(s, "web.test", RecordType::A, &[]).await;
    assert!(r.up, "any answer will do: {r:?}");

    let r = ask(s, "web.test", RecordType::A, &["10.9.9.9"]).await;
    assert!(!r.up);
    assert_eq!(r.message, "expected web.test A 10.9.9.9, got 10.1.2.3");

    let r = ask(s, "web.test", RecordType::AAAA, &["fd00:0:0::3"]).await;
    assert!(r.up, "{r:?}");

    let r = ask(s, "multi.test", RecordType::A, &["10.0.0.2", "10.0.0.1"]).await;
    assert!(r.up, "{r:?}");
    let r = ask(s, "multi.test", RecordType::A, &["10.0.0.1", "10.0.0.3"]).await;
    assert!(!r.up);
    assert!(
        r.message
            .starts_with("expected multi.test A 10.0.0.3, got "),
        "{}",
        r.message
    );

    let r = ask(s, "alias.test", RecordType::CNAME, &["web.test."]).await;
    assert!(r.up, "{r:?}");
    // an A query of an alias follows the CNAME
    let r = ask(s, "alias.test", RecordType::A, &["10.1.2.3"]).await;
    assert!(r.up, "{r:?}");

    let r = ask(s, "mail.test", RecordType::MX, &["10 mx1.mail.test"]).await;
    assert!(r.up, "{r:?}");
    let r = ask(s, "mail.test", RecordType::MX, &["MX1.mail.test."]).await;
    assert!(r.up, "{r:?}");
    let r = ask(s, "mail.test", RecordType::MX, &["20 mx1.mail.test"]).await;
    assert!(!r.up);
    assert_eq!(
        r.message,
        "expected mail.test MX \"20 mx1.mail.test\", got \"10 mx1.mail.test\""
    );

    let r = ask(s, "txt.test", RecordType::TXT, &["hello world"]).await;
    assert!(r.up, "{r:?}");
    let r = ask(s, "txt.test", RecordType::TXT, &["hello"]).await;
    assert!(!r.up);

    let r = ask(
        s,
        "_http._tcp.web.test",
        RecordType::SRV,
        &["1 5 8080 web.test"],
    )
    .await;
    assert!(r.up, "{r:?}");
}

#[tokio::test]
async fn nxdomain_and_nodata() {
    let dns = start_dnsmasq().await;
    let s = dns.addr;

    let r = ask(s, "missing.test", RecordType::A, &[]).await;
    assert!(!r.up);
    assert_eq!(
        r.message,
        "expected rcode NOERROR for missing.test A, got NXDOMAIN"
    );

    let mut p = DnsProbe::new(s, "missing.test");
    p.expected_rcode = Rcode::NxDomain;
    let r = probe(&Probe::Dns(p.clone()), Duration::from_secs(3)).await;
    assert!(r.up, "{r:?}");
    assert_eq!(
        r.message.split(" in ").next().unwrap(),
        format!("missing.test from {s}: NXDOMAIN")
    );
    // expecting NXDOMAIN for a name that exists is down
    p.name = "web.test".into();
    let r = probe(&Probe::Dns(p), Duration::from_secs(3)).await;
    assert!(!r.up);
    assert_eq!(
        r.message,
        "expected rcode NXDOMAIN for web.test A, got NOERROR (10.1.2.3)"
    );

    // the name exists but has no record of the type
    let r = ask(s, "txt.test", RecordType::A, &[]).await;
    assert!(!r.up, "{r:?}");
    assert_eq!(
        r.message,
        "expected at least one A answer for txt.test, got none (NOERROR)"
    );
}

#[tokio::test]
async fn server_not_listening_is_down_within_the_timeout() {
    let port = free_udp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = Instant::now();
    let r = probe(
        &Probe::Dns(DnsProbe::new(addr, "web.test")),
        Duration::from_millis(500),
    )
    .await;
    assert!(!r.up);
    assert!(start.elapsed() < Duration::from_millis(1500));
    assert!(
        r.message.starts_with(&format!(
            "expected an answer to web.test A from {addr}, got: "
        )),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    // a UDP socket that reads and never replies
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let start = Instant::now();
    let r = probe(
        &Probe::Dns(DnsProbe::new(addr, "web.test")),
        Duration::from_millis(400),
    )
    .await;
    assert!(!r.up);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1400),
        "{took:?}"
    );
    assert_eq!(
        r.message,
        format!("expected an answer to web.test A from {addr}, got: no answer within 400ms")
    );
    drop(sock);
}
