//! The http probe against a real HTTP server on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bulwark_monitor::{probe, HttpProbe, JsonCheck, Probe, ProbeResult, StatusRange};

const T: Duration = Duration::from_secs(5);

async fn run(p: HttpProbe) -> ProbeResult {
    probe(&Probe::Http(p), T).await
}

#[tokio::test]
async fn status_200_is_up_and_500_is_down() {
    let addr = common::serve(None).await;
    let r = run(HttpProbe::new(format!("http://{addr}/ok"))).await;
    assert!(r.up, "{r:?}");
    assert!(r.message.starts_with("status 200 in "), "{}", r.message);
    assert_eq!(r.cert_days_left, None);

    let r = run(HttpProbe::new(format!("http://{addr}/fail"))).await;
    assert!(!r.up);
    assert_eq!(r.message, "expected status 200-399, got 500");

    // 500 accepted when the spec says so; 404 refused with a list of ranges
    let mut p = HttpProbe::new(format!("http://{addr}/fail"));
    p.expected_status = vec![StatusRange::single(500)];
    assert!(run(p).await.up);
    let mut p = HttpProbe::new(format!("http://{addr}/nowhere"));
    p.expected_status = vec!["200-299".parse().unwrap(), StatusRange::single(401)];
    assert_eq!(
        run(p).await.message,
        "expected status 200-299, 401, got 404"
    );
}

#[tokio::test]
async fn body_contains() {
    let addr = common::serve(None).await;
    let mut p = HttpProbe::new(format!("http://{addr}/ok"));
    p.body_contains = Some("ready".into());
    assert!(run(p.clone()).await.up);
    p.body_contains = Some("maintenance".into());
    let r = run(p).await;
    assert!(!r.up);
    assert_eq!(
        r.message,
        "expected the body to contain \"maintenance\", got \"all good: ready\""
    );
}

#[tokio::test]
async fn json_field_equals() {
    let addr = common::serve(None).await;
    let check = |pointer: &str, equals: serde_json::Value| {
        let mut p = HttpProbe::new(format!("http://{addr}/json"));
        p.json = Some(JsonCheck {
            pointer: pointer.into(),
            equals,
        });
        p
    };
    assert!(run(check("/status", "ok".into())).await.up);
    assert!(run(check("/checks/db", true.into())).await.up);
    assert!(run(check("/count", 3.into())).await.up);

    let r = run(check("/checks/disk", "ok".into())).await;
    assert!(!r.up);
    assert_eq!(r.message, r#"expected /checks/disk = "ok", got "degraded""#);
    // JSON comparison is typed
    let r = run(check("/count", "3".into())).await;
    assert_eq!(r.message, r#"expected /count = "3", got 3"#);
    let r = run(check("/missing", true.into())).await;
    assert_eq!(r.message, "expected /missing = true, got no such field");
    // a body that is not JSON
    let mut p = check("/status", "ok".into());
    p.url = format!("http://{addr}/ok");
    let r = run(p).await;
    assert!(!r.up);
    assert!(
        r.message
            .starts_with("expected a JSON body, got \"all good: ready\""),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn slow_response_beyond_max_response_time_is_down() {
    let addr = common::serve(None).await;
    let mut p = HttpProbe::new(format!("http://{addr}/slow/300"));
    p.max_response_time = Some(Duration::from_millis(100));
    let r = run(p.clone()).await;
    assert!(!r.up, "{r:?}");
    assert!(
        r.message
            .starts_with("expected a response within 100ms, got one after "),
        "{}",
        r.message
    );
    assert!(r.latency >= Duration::from_millis(300));
    p.max_response_time = Some(Duration::from_secs(2));
    assert!(run(p).await.up);
}

#[tokio::test]
async fn timeout_bounds_the_probe() {
    let addr = common::serve(None).await;
    let start = Instant::now();
    let r = probe(
        &Probe::Http(HttpProbe::new(format!("http://{addr}/hang"))),
        Duration::from_millis(300),
    )
    .await;
    let took = start.elapsed();
    assert!(!r.up);
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(
        r.message,
        format!("expected a response from http://{addr} within 300ms, got none")
    );
}

#[tokio::test]
async fn connection_refused_is_down_with_the_cause() {
    // a port that was just free: nothing listens
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(HttpProbe::new(format!(
        "http://user:secret@127.0.0.1:{port}/x?token=abc"
    )))
    .await;
    assert!(!r.up);
    assert!(
        r.message.starts_with(&format!(
            "expected a response from http://127.0.0.1:{port}, got: "
        )),
        "{}",
        r.message
    );
    assert!(
        r.message.to_lowercase().contains("refused"),
        "{}",
        r.message
    );
    assert!(
        !r.message.contains("secret") && !r.message.contains("token"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn redirects_followed_or_not() {
    let addr = common::serve(None).await;
    let mut p = HttpProbe::new(format!("http://{addr}/redirect"));
    p.body_contains = Some("ready".into());
    assert!(run(p.clone()).await.up);
    p.follow_redirects = false;
    p.body_contains = None;
    p.expected_status = vec![StatusRange::single(200)];
    assert_eq!(run(p).await.message, "expected status 200, got 302");
}

#[tokio::test]
async fn method_and_headers_are_sent() {
    let addr = common::serve(None).await;
    let mut p = HttpProbe::new(format!("http://{addr}/header"));
    p.headers.insert("X-Probe".into(), "hello-42".into());
    p.body_contains = Some("x-probe=hello-42".into());
    assert!(run(p).await.up);
    let mut p = HttpProbe::new(format!("http://{addr}/method"));
    p.method = "POST".into();
    p.body = Some("{}".into());
    p.body_contains = Some("method=POST".into());
    assert!(run(p).await.up);
}

#[tokio::test]
async fn min_cert_days_on_plain_http_is_down() {
    let addr = common::serve(None).await;
    let mut p = HttpProbe::new(format!("http://{addr}/ok"));
    p.min_cert_days = Some(14);
    let r = run(p).await;
    assert!(!r.up);
    assert!(
        r.message.contains("no certificate (not https)"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn invalid_spec_is_down_not_a_panic() {
    let r = run(HttpProbe::new("ftp://127.0.0.1/")).await;
    assert!(!r.up);
    assert!(
        r.message.starts_with("invalid http probe: invalid url"),
        "{}",
        r.message
    );
}
