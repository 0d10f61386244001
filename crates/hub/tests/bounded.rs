//! Bounded by construction: junk from anyone who can reach the port does not
//! grow the hub (its metrics, its tables, its memory), and every limit
//! answers quickly with a sentence instead of queueing or hanging.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{basic, config, parse, req, Resp, Server};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpSocket,
};

const METRICS: Option<(&str, &str)> = Some(("metrics", "pw-metrics"));
const ALICE: Option<(&str, &str)> = Some(("alice", "pw-alice"));

/// Sends `request` from the loopback address `from` (any 127.x.y.z).
async fn send_from(addr: SocketAddr, from: [u8; 4], request: &[u8]) -> Resp {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf))
        .await
        .expect("response in time");
    parse(&buf)
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

async fn metrics_len(server: &Server) -> usize {
    let r = req(server.addr, "GET", "/metrics", METRICS, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.body.len()
}

/// A small deterministic generator (no timing, no global state).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// One junk request: random repository paths, invented methods, garbage or
/// wrong credentials, from changing loopback addresses.
fn junk(rng: &mut Lcg, i: u64) -> ([u8; 4], Vec<u8>) {
    let methods = ["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS"];
    let method = if rng.next().is_multiple_of(2) {
        format!("FOO{}", rng.next() % 100_000)
    } else {
        methods[(rng.next() % methods.len() as u64) as usize].to_owned()
    };
    let path = match rng.next() % 5 {
        0 => format!("/r{}/config", rng.next()),
        1 => format!("/u{}/r{}/data/{:064x}", rng.next(), rng.next(), rng.next()),
        2 => format!("/r{}/keys/", rng.next()),
        3 => format!("/%2e%2e/x{}", rng.next()),
        _ => format!("/api/v1/x{}", rng.next()),
    };
    let auth = match rng.next() % 4 {
        0 => String::new(),
        1 => format!("Authorization: Bearer junk{}\r\n", rng.next()),
        // a real user with a wrong password (cheap bcrypt in the tests)
        2 => format!(
            "Authorization: {}\r\n",
            basic("alice", &format!("wrong{}", rng.next()))
        ),
        _ => format!("Authorization: Basic {}\r\n", rng.next()),
    };
    let from = [127, 1, (i / 250 % 250) as u8 + 1, (i % 250) as u8 + 1];
    let text = format!("{method} {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n{auth}\r\n");
    (from, text.into_bytes())
}

/// 3,000 junk requests: /metrics and the process's memory stay within a
/// small bound (before this was fixed they grew /metrics from 1.5 KB to
/// 5.2 MB: every invented path and method became a new label series).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_requests_do_not_grow_metrics_or_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).await;
    assert_eq!(
        req(server.addr, "POST", "/alice/?create=true", ALICE, &[], b"")
            .await
            .status,
        200
    );
    let mut rng = Lcg(12345);
    // warm up: every code path once, so allocator arenas and thread pools exist
    for i in 0..300 {
        let (from, r) = junk(&mut rng, i);
        send_from(server.addr, from, &r).await;
    }
    let metrics_before = metrics_len(&server).await;
    let rss_before = vm_rss_kib();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 300..3300 {
        let (from, r) = junk(&mut rng, i);
        let resp = send_from(server.addr, from, &r).await;
        *statuses.entry(resp.status).or_insert(0u32) += 1;
    }
    let metrics_after = metrics_len(&server).await;
    let rss_after = vm_rss_kib();
    eprintln!(
        "after 3,000 junk requests: /metrics {metrics_before} -> {metrics_after} bytes, \
         VmRSS {rss_before} -> {rss_after} KiB; statuses {statuses:?}"
    );
    let m = req(server.addr, "GET", "/metrics", METRICS, &[], b"").await;
    let text = m.text();
    assert!(
        !text.contains("FOO"),
        "an invented method became a label:\n{text}"
    );
    assert!(
        !text.contains("repo=\"r"),
        "a repository that does not exist became a label"
    );
    assert!(
        metrics_after <= metrics_before + 16 * 1024,
        "/metrics grew from {metrics_before} to {metrics_after} bytes"
    );
    assert!(
        rss_after <= rss_before + 4 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    server.stop().await;
}

/// Password checks are capped: with two admitted at once, a burst of wrong
/// passwords (from many addresses, so the failure limiter stays out of it)
/// gets some quick 503s with a sentence instead of a queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_at_once_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    // an expensive entry, so checks overlap
    let slow = bcrypt::hash("right", 13).unwrap();
    std::fs::write(c.htpasswd_path(), format!("slow:{slow}\n")).unwrap();
    c.max_auth_checks = 2;
    let server = Server::start(c).await;
    let mut tasks = Vec::new();
    for i in 0..12u8 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let r = format!(
                "GET /slow/config HTTP/1.1\r\nHost: h\r\nConnection: close\r\nAuthorization: {}\r\n\r\n",
                basic("slow", &format!("wrong{i}"))
            );
            send_from(addr, [127, 2, 0, i + 1], r.as_bytes()).await
        }));
    }
    let mut busy = 0;
    let mut refused = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            503 => {
                busy += 1;
                assert!(
                    r.text()
                        .contains("the most passwords it checks at once (2)"),
                    "{}",
                    r.text()
                );
                assert!(r.header("retry-after").is_some());
            }
            401 => refused += 1,
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!(busy > 0, "no check was refused: {refused} x 401");
    assert!(refused >= 2, "the admitted checks ran: {refused} x 401");
    server.stop().await;
}

/// Over `max_connections` a new connection gets a 503 with a sentence at
/// once (never a hang); when a connection closes, service resumes.
#[tokio::test]
async fn connections_over_the_cap_get_a_503_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_connections = 2;
    let server = Server::start(c).await;
    let idle1 = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let idle2 = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let r = req(server.addr, "GET", "/metrics", METRICS, &[], b"").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text()
            .contains("the hub is serving the most connections it allows at once (2)"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("retry-after"), Some("5"));
    drop(idle1);
    // the hub notices the close and serves again
    let mut status = 0;
    for _ in 0..600 {
        status = req(server.addr, "GET", "/metrics", METRICS, &[], b"")
            .await
            .status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    drop(idle2);
    server.stop().await;
}

/// The /metrics bearer token is limited like every other way in: after
/// the failure limit even the right token is refused from that address.
#[tokio::test]
async fn metrics_bearer_guesses_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    std::fs::write(dir.path().join("token"), "s3cret-token\n").unwrap();
    c.metrics.token_file = Some(dir.path().join("token"));
    c.auth_failure_limit = 3;
    let server = Server::start(c).await;
    let get = |from: [u8; 4], token: &str| {
        let r = format!(
            "GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        let addr = server.addr;
        async move { send_from(addr, from, r.as_bytes()).await }
    };
    let guesser = [127, 3, 0, 1];
    for i in 0..3 {
        assert_eq!(get(guesser, &format!("guess{i}")).await.status, 401);
    }
    let r = get(guesser, "s3cret-token").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("too many failed authentications"));
    // another address is not affected
    assert_eq!(get([127, 3, 0, 2], "s3cret-token").await.status, 200);
    server.stop().await;
}
