//! Certificates: https through the http probe and the tls probe, against
//! servers on 127.0.0.1 with certificates made by the test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bulwark_monitor::{probe, HttpProbe, Probe, ProbeResult, TlsProbe};
use common::{assert_days, Pki};

const T: Duration = Duration::from_secs(5);
const NAMES: &[&str] = &["localhost", "127.0.0.1"];

async fn http(p: HttpProbe) -> ProbeResult {
    probe(&Probe::Http(p), T).await
}

async fn tls(p: TlsProbe) -> ProbeResult {
    probe(&Probe::Tls(p), T).await
}

#[tokio::test]
async fn valid_certificate_trusted_through_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let addr = common::serve(Some(pki.leaf(NAMES, -1, 90).server_config())).await;

    let mut p = HttpProbe::new(format!("https://127.0.0.1:{}/ok", addr.port()));
    p.ca_file = Some(pki.ca_file.clone());
    p.min_cert_days = Some(14);
    let r = http(p.clone()).await;
    assert!(r.up, "{r:?}");
    assert_days(r.cert_days_left, 90.0);
    assert!(
        r.message.contains("certificate expires in 90.0 days"),
        "{}",
        r.message
    );
    // by name, too
    p.url = format!("https://localhost:{}/ok", addr.port());
    assert!(http(p).await.up);

    let mut t = TlsProbe::new("127.0.0.1", addr.port());
    t.ca_file = Some(pki.ca_file.clone());
    let r = tls(t.clone()).await;
    assert!(r.up, "{r:?}");
    assert_days(r.cert_days_left, 90.0);
    assert!(
        r.message
            .starts_with("certificate for 127.0.0.1 trusted, certificate expires in 90.0 days"),
        "{}",
        r.message
    );
    t.server_name = Some("localhost".into());
    assert!(tls(t).await.up);
}

#[tokio::test]
async fn certificate_expiring_in_three_days_is_down_with_min_days_14() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let addr = common::serve(Some(pki.leaf(NAMES, -60, 3).server_config())).await;

    let mut p = HttpProbe::new(format!("https://127.0.0.1:{}/ok", addr.port()));
    p.ca_file = Some(pki.ca_file.clone());
    // without a minimum it is fine
    let r = http(p.clone()).await;
    assert!(r.up, "{r:?}");
    assert_days(r.cert_days_left, 3.0);
    p.min_cert_days = Some(14);
    let r = http(p).await;
    assert!(!r.up);
    assert_days(r.cert_days_left, 3.0);
    assert!(
        r.message.starts_with("expected a certificate valid for at least 14 days, got: certificate expires in 3.0 days"),
        "{}",
        r.message
    );

    let mut t = TlsProbe::new("127.0.0.1", addr.port());
    t.ca_file = Some(pki.ca_file.clone());
    let r = tls(t.clone()).await;
    assert!(!r.up, "default min_days is 14: {r:?}");
    assert_days(r.cert_days_left, 3.0);
    assert!(
        r.message
            .contains("at least 14 days, got: certificate expires in 3.0 days"),
        "{}",
        r.message
    );
    t.min_days = 2;
    assert!(tls(t).await.up);
}

#[tokio::test]
async fn expired_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let addr = common::serve(Some(pki.leaf(NAMES, -60, -2).server_config())).await;

    // verified: the handshake fails, reqwest says why
    let mut p = HttpProbe::new(format!("https://127.0.0.1:{}/ok", addr.port()));
    p.ca_file = Some(pki.ca_file.clone());
    let r = http(p.clone()).await;
    assert!(!r.up);
    assert!(
        r.message.to_lowercase().contains("expired"),
        "{}",
        r.message
    );
    // insecure: the request goes through and days left are negative
    p.insecure = true;
    let r = http(p.clone()).await;
    assert!(r.up, "{r:?}");
    assert_days(r.cert_days_left, -2.0);
    assert!(
        r.message.contains("certificate expired 2.0 days ago"),
        "{}",
        r.message
    );
    p.min_cert_days = Some(1);
    assert!(!http(p).await.up);

    let mut t = TlsProbe::new("127.0.0.1", addr.port());
    t.ca_file = Some(pki.ca_file.clone());
    let r = tls(t.clone()).await;
    assert!(!r.up);
    assert_days(r.cert_days_left, -2.0);
    assert!(r.message.contains("not trusted ("), "{}", r.message);
    assert!(
        r.message.contains("certificate expired 2.0 days ago"),
        "{}",
        r.message
    );
    // insecure ignores trust, not expiry
    t.insecure = true;
    let r = tls(t).await;
    assert!(!r.up);
    assert!(r.message.contains("at least 14 days"), "{}", r.message);
}

#[tokio::test]
async fn self_signed_certificate_is_untrusted_but_measured() {
    let addr = common::serve(Some(common::self_signed(NAMES, 40).server_config())).await;

    let p = HttpProbe::new(format!("https://127.0.0.1:{}/ok", addr.port()));
    let r = http(p.clone()).await;
    assert!(!r.up);
    assert!(r.message.contains("certificate"), "{}", r.message);
    let r = http(HttpProbe {
        insecure: true,
        ..p
    })
    .await;
    assert!(r.up, "{r:?}");
    assert_days(r.cert_days_left, 40.0);

    let t = TlsProbe::new("127.0.0.1", addr.port());
    let r = tls(t.clone()).await;
    assert!(!r.up);
    assert_days(r.cert_days_left, 40.0);
    assert!(
        r.message.starts_with(&format!(
            "expected a trusted certificate for 127.0.0.1 at 127.0.0.1:{}, got: not trusted (",
            addr.port()
        )),
        "{}",
        r.message
    );
    assert!(r.message.contains("expires in 40.0 days"), "{}", r.message);
    let r = tls(TlsProbe {
        insecure: true,
        ..t
    })
    .await;
    assert!(r.up, "{r:?}");
    assert!(r.message.contains("allowed by insecure"), "{}", r.message);
}

#[tokio::test]
async fn wrong_name_is_untrusted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let addr = common::serve(Some(pki.leaf(&["other.test"], -1, 90).server_config())).await;
    let mut t = TlsProbe::new("127.0.0.1", addr.port());
    t.ca_file = Some(pki.ca_file.clone());
    t.server_name = Some("web.test".into());
    let r = tls(t.clone()).await;
    assert!(!r.up);
    assert!(r.message.contains("not trusted"), "{}", r.message);
    assert_days(r.cert_days_left, 90.0);
    t.server_name = Some("other.test".into());
    assert!(tls(t).await.up);
}

#[tokio::test]
async fn tls_probe_of_a_plain_port_fails_the_handshake() {
    let addr = common::serve(None).await;
    let r = tls(TlsProbe::new("127.0.0.1", addr.port())).await;
    assert!(!r.up);
    assert!(
        r.message.contains("TLS handshake with 127.0.0.1"),
        "{}",
        r.message
    );
    assert_eq!(r.cert_days_left, None);
}

#[tokio::test]
async fn tls_probe_of_a_silent_port_times_out() {
    // accepts TCP, never speaks
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let start = std::time::Instant::now();
    let r = probe(
        &Probe::Tls(TlsProbe::new("127.0.0.1", port)),
        Duration::from_millis(300),
    )
    .await;
    assert!(!r.up);
    assert!(start.elapsed() < Duration::from_millis(1500));
    assert!(
        r.message.contains("no TLS handshake with 127.0.0.1"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn bad_ca_file_is_down_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let mut t = TlsProbe::new("127.0.0.1", 1);
    t.ca_file = Some(bogus.clone());
    let r = tls(t).await;
    assert!(!r.up);
    assert!(r.message.contains("holds no certificate"), "{}", r.message);
    let mut p = HttpProbe::new("https://127.0.0.1:1/");
    p.ca_file = Some(bogus);
    let r = http(p).await;
    assert!(r.message.contains("holds no certificate"), "{}", r.message);
}
