//! The tcp probe against ports opened (or not) by the test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bulwark_monitor::{probe, Probe, TcpProbe};

fn tcp(host: &str, port: u16) -> Probe {
    Probe::Tcp(TcpProbe {
        host: host.into(),
        port,
    })
}

#[tokio::test]
async fn open_port_is_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = probe(&tcp("127.0.0.1", port), Duration::from_secs(2)).await;
    assert!(r.up, "{r:?}");
    assert!(
        r.message
            .starts_with(&format!("connected to 127.0.0.1:{port} in ")),
        "{}",
        r.message
    );
    // by name
    let r = probe(&tcp("localhost", port), Duration::from_secs(2)).await;
    assert!(r.up, "{r:?}");
}

#[tokio::test]
async fn closed_port_is_down() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = probe(&tcp("127.0.0.1", port), Duration::from_secs(2)).await;
    assert!(!r.up);
    assert!(
        r.message.starts_with(&format!(
            "expected a connection to 127.0.0.1:{port}, got: 127.0.0.1:{port}: "
        )),
        "{}",
        r.message
    );
    assert!(
        r.message.to_lowercase().contains("refused"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn ipv6_loopback() {
    let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
        // no IPv6 on this machine: the closed-port case still must be down
        let r = probe(&tcp("::1", 1), Duration::from_secs(2)).await;
        assert!(!r.up);
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let r = probe(&tcp("::1", port), Duration::from_secs(2)).await;
    assert!(r.up, "{r:?}");
    assert!(
        r.message.contains(&format!("[::1]:{port}")),
        "{}",
        r.message
    );
}
