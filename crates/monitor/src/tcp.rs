//! The tcp probe: can a connection be opened?

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::duration::human;
use crate::{ProbeResult, SpecError};

/// Opens a TCP connection to `host:port` (and closes it at once).
///
/// Up when a connection to any address `host` resolves to is accepted
/// within the timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpProbe {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl TcpProbe {
    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        validate_host_port(&self.host, self.port)
    }
}

pub(crate) fn validate_host_port(host: &str, port: u16) -> Result<(), SpecError> {
    if host.trim().is_empty() {
        return Err(SpecError::Empty { field: "host" });
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(SpecError::invalid(
            "host",
            host,
            "not a host name or IP address",
        ));
    }
    if port == 0 {
        return Err(SpecError::invalid("port", port, "must be 1-65535"));
    }
    Ok(())
}

/// `host:port` for messages, with brackets around IPv6 addresses.
pub(crate) fn display_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves `host` (an IP literal without a lookup) within `deadline`.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, tokio::net::lookup_host((bare, port))).await {
        Err(_) => Err(format!("could not resolve {bare} within the timeout")),
        Ok(Err(e)) => Err(format!("could not resolve {bare}: {e}")),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("{bare} resolves to no address"))
            } else {
                Ok(addrs)
            }
        }
    }
}

/// Connects to the first address of `addrs` that accepts within `deadline`.
pub(crate) async fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, String> {
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: no answer"),
        }
    }
    Err(last)
}

pub(crate) async fn run(p: &TcpProbe, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let deadline = start + timeout;
    let target = display_addr(&p.host, p.port);
    let addrs = match resolve(&p.host, p.port, deadline).await {
        Ok(a) => a,
        Err(e) => {
            return ProbeResult::down(
                start.elapsed(),
                format!("expected a connection to {target}, got: {e}"),
            )
        }
    };
    match connect(&addrs, deadline).await {
        Ok(stream) => {
            let latency = start.elapsed();
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| target.clone());
            drop(stream);
            ProbeResult::up(
                latency,
                format!("connected to {peer} in {}", human(latency)),
            )
        }
        Err(e) => {
            let latency = start.elapsed();
            let e = if latency >= timeout {
                format!("no connection within {} ({e})", human(timeout))
            } else {
                e
            };
            ProbeResult::down(
                latency,
                format!("expected a connection to {target}, got: {e}"),
            )
        }
    }
}
