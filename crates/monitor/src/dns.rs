//! The dns probe: one query to one given server.
//!
//! Built on hickory-proto's message encoding only: the probe sends exactly
//! one question to exactly the configured server (UDP, retried over TCP when
//! the answer is truncated), with no cache, no search domains and no system
//! resolver configuration in between.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::{Name, RData, Record};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::duration::human;
use crate::{quote, ProbeResult, SpecError};

/// A DNS record type a probe can ask for.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RecordType {
    /// IPv4 address.
    #[default]
    A,
    /// IPv6 address.
    AAAA,
    /// Canonical name (alias).
    CNAME,
    /// Mail exchanger; an answer reads `"10 mail.example.com"`.
    MX,
    /// Text; an answer is the record's strings concatenated.
    TXT,
    /// Name server.
    NS,
    /// Service; an answer reads `"priority weight port target"`.
    SRV,
    /// Reverse pointer.
    PTR,
    /// Start of authority; an answer reads `"mname rname serial"`.
    SOA,
    /// Certification authority authorization; an answer reads
    /// `"flags tag value"`, e.g. `0 issue "letsencrypt.org"`.
    CAA,
}

impl RecordType {
    fn to_hickory(self) -> hickory_proto::rr::RecordType {
        use hickory_proto::rr::RecordType as H;
        match self {
            RecordType::A => H::A,
            RecordType::AAAA => H::AAAA,
            RecordType::CNAME => H::CNAME,
            RecordType::MX => H::MX,
            RecordType::TXT => H::TXT,
            RecordType::NS => H::NS,
            RecordType::SRV => H::SRV,
            RecordType::PTR => H::PTR,
            RecordType::SOA => H::SOA,
            RecordType::CAA => H::CAA,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A DNS response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Rcode {
    /// `NOERROR` (0): the name exists (possibly with no records of the type).
    #[default]
    #[serde(rename = "NOERROR")]
    NoError,
    /// `FORMERR` (1).
    #[serde(rename = "FORMERR")]
    FormErr,
    /// `SERVFAIL` (2).
    #[serde(rename = "SERVFAIL")]
    ServFail,
    /// `NXDOMAIN` (3): the name does not exist.
    #[serde(rename = "NXDOMAIN")]
    NxDomain,
    /// `NOTIMP` (4).
    #[serde(rename = "NOTIMP")]
    NotImp,
    /// `REFUSED` (5).
    #[serde(rename = "REFUSED")]
    Refused,
}

impl Rcode {
    fn code(self) -> u16 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
        }
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(rcode_name(self.code()).as_str())
    }
}

fn rcode_name(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE {n}"),
    }
}

/// Asks `server` for `name`/`record_type` and checks the response code and
/// answers.
///
/// Up when the response code is `expected_rcode` and every entry of
/// `expected_answers` is among the answers of the asked type. With
/// `expected_rcode` NOERROR and no expected answers, at least one answer of
/// the type is required. Comparison: addresses as addresses, names without
/// the trailing dot and case-insensitively, TXT exactly; an MX may be given
/// as `"10 mail.example.com"` or just `"mail.example.com"`, an SRV as
/// `"1 5 8080 web.example.com"` or just its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsProbe {
    /// The DNS server to ask (`ip:port`).
    pub server: SocketAddr,
    /// The name to look up, e.g. `nas.home.arpa`.
    pub name: String,
    /// The record type (default `A`).
    #[serde(default)]
    pub record_type: RecordType,
    /// Answers that must all appear (default: none, see above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_answers: Vec<String>,
    /// The response code (default `NOERROR`; `NXDOMAIN` checks that a name
    /// does *not* exist).
    #[serde(default)]
    pub expected_rcode: Rcode,
}

impl DnsProbe {
    /// Asks `server` for the `A` records of `name`, expecting at least one.
    pub fn new(server: SocketAddr, name: impl Into<String>) -> Self {
        DnsProbe {
            server,
            name: name.into(),
            record_type: RecordType::A,
            expected_answers: Vec::new(),
            expected_rcode: Rcode::NoError,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        if self.name.trim().is_empty() {
            return Err(SpecError::Empty { field: "name" });
        }
        query_name(&self.name).map_err(|e| SpecError::invalid("name", &self.name, e))?;
        if self.server.port() == 0 {
            return Err(SpecError::invalid(
                "server",
                self.server,
                "port must be 1-65535",
            ));
        }
        for a in &self.expected_answers {
            if a.trim().is_empty() {
                return Err(SpecError::Empty {
                    field: "expected answer",
                });
            }
            if matches!(self.record_type, RecordType::A | RecordType::AAAA)
                && a.trim().parse::<IpAddr>().is_err()
            {
                return Err(SpecError::invalid(
                    "expected answer",
                    a,
                    "not an IP address",
                ));
            }
        }
        Ok(())
    }
}

fn query_name(name: &str) -> Result<Name, String> {
    let mut n = Name::from_utf8(name.trim()).map_err(|e| e.to_string())?;
    n.set_fqdn(true);
    Ok(n)
}

/// Builds the query; returns (id, wire bytes).
fn build_query(p: &DnsProbe) -> Result<(u16, Vec<u8>), String> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(
        query_name(&p.name)?,
        p.record_type.to_hickory(),
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    let bytes = msg
        .to_vec()
        .map_err(|e| format!("cannot encode the query: {e}"))?;
    Ok((msg.metadata.id, bytes))
}

fn is_our_response(msg: &Message, id: u16) -> bool {
    msg.metadata.id == id && msg.metadata.message_type == MessageType::Response
}

/// One UDP exchange (resent every second until `deadline`).
async fn ask_udp(
    server: SocketAddr,
    id: u16,
    query: &[u8],
    deadline: Instant,
) -> Result<Message, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    sock.connect(server)
        .await
        .map_err(|e| format!("cannot reach {server}: {e}"))?;
    let mut buf = vec![0u8; 65_535];
    loop {
        sock.send(query)
            .await
            .map_err(|e| format!("cannot send to {server}: {e}"))?;
        let resend_at = (Instant::now() + Duration::from_secs(1)).min(deadline);
        loop {
            let left = resend_at.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(format!("{server}: {e}")),
                Ok(Ok(n)) => {
                    // Garbage or someone else's answer: ignore and keep waiting.
                    if let Ok(msg) = Message::from_vec(&buf[..n]) {
                        if is_our_response(&msg, id) {
                            return Ok(msg);
                        }
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(String::from("timeout"));
        }
    }
}

/// One TCP exchange (RFC 1035 §4.2.2 length prefix).
async fn ask_tcp(
    server: SocketAddr,
    id: u16,
    query: &[u8],
    deadline: Instant,
) -> Result<Message, String> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(server)
            .await
            .map_err(|e| format!("TCP to {server}: {e}"))?;
        let len = u16::try_from(query.len()).map_err(|_| "query too long".to_string())?;
        let mut out = Vec::with_capacity(query.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(query);
        stream
            .write_all(&out)
            .await
            .map_err(|e| format!("TCP to {server}: {e}"))?;
        loop {
            let mut len = [0u8; 2];
            stream
                .read_exact(&mut len)
                .await
                .map_err(|e| format!("TCP from {server}: {e}"))?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream
                .read_exact(&mut buf)
                .await
                .map_err(|e| format!("TCP from {server}: {e}"))?;
            let msg = Message::from_vec(&buf)
                .map_err(|e| format!("unreadable answer from {server}: {e}"))?;
            if is_our_response(&msg, id) {
                return Ok(msg);
            }
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, work).await {
        Ok(r) => r,
        Err(_) => Err(String::from("timeout")),
    }
}

/// The text form of an answer (see [`DnsProbe`]); names lowercased without
/// the trailing dot.
fn answer_text(r: &Record) -> String {
    match &r.data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => name_text(&n.0),
        RData::NS(n) => name_text(&n.0),
        RData::PTR(n) => name_text(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name_text(&mx.exchange)),
        RData::SRV(s) => format!(
            "{} {} {} {}",
            s.priority,
            s.weight,
            s.port,
            name_text(&s.target)
        ),
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s))
            .collect::<Vec<_>>()
            .concat(),
        RData::SOA(s) => format!(
            "{} {} {}",
            name_text(&s.mname),
            name_text(&s.rname),
            s.serial
        ),
        other => other.to_string(),
    }
}

fn name_text(n: &Name) -> String {
    normalize_name(&n.to_utf8())
}

fn normalize_name(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the expected text `want` matches the answer `got` of type `t`.
fn matches(t: RecordType, want: &str, got: &str) -> bool {
    let want = want.trim();
    match t {
        RecordType::A | RecordType::AAAA => {
            matches!((want.parse::<IpAddr>(), got.parse::<IpAddr>()), (Ok(a), Ok(b)) if a == b)
        }
        RecordType::TXT => want == got,
        RecordType::CAA => want.eq_ignore_ascii_case(got),
        RecordType::MX | RecordType::SRV | RecordType::SOA => {
            let want = normalize_words(want);
            want == normalize_words(got)
                || got.rsplit(' ').next().is_some_and(|target| want == target)
                || (t == RecordType::SOA && got.split(' ').next().is_some_and(|m| want == m))
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => normalize_name(want) == got,
    }
}

fn normalize_words(s: &str) -> String {
    s.split_whitespace()
        .map(normalize_name)
        .collect::<Vec<_>>()
        .join(" ")
}

fn list(items: &[String]) -> String {
    const SHOW: usize = 5;
    let shown: Vec<String> = items
        .iter()
        .take(SHOW)
        .map(|s| {
            if s.contains(' ') || s.is_empty() {
                quote(s, 60)
            } else {
                s.clone()
            }
        })
        .collect();
    let mut text = shown.join(", ");
    if items.len() > SHOW {
        text.push_str(&format!(" and {} more", items.len() - SHOW));
    }
    text
}

pub(crate) async fn run(p: &DnsProbe, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let deadline = start + timeout;
    let (id, query) = match build_query(p) {
        Ok(q) => q,
        Err(e) => {
            return ProbeResult::down(start.elapsed(), format!("invalid name {:?}: {e}", p.name))
        }
    };
    let asked = format!("{} {}", p.name.trim(), p.record_type);
    let failed = |e: String| {
        let e = if e == "timeout" {
            format!("no answer within {}", human(timeout))
        } else {
            e
        };
        ProbeResult::down(
            start.elapsed(),
            format!("expected an answer to {asked} from {}, got: {e}", p.server),
        )
    };
    let mut response = match ask_udp(p.server, id, &query, deadline).await {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    if response.metadata.truncation {
        response = match ask_tcp(p.server, id, &query, deadline).await {
            Ok(m) => m,
            Err(e) => return failed(format!("truncated over UDP, and over TCP: {e}")),
        };
    }
    judge(p, &response, start.elapsed())
}

fn judge(p: &DnsProbe, response: &Message, latency: Duration) -> ProbeResult {
    let rcode = u16::from(response.metadata.response_code);
    let rcode_text = rcode_name(rcode);
    let want_type = p.record_type.to_hickory();
    let answers: Vec<String> = response
        .answers
        .iter()
        .filter(|r| r.record_type() == want_type)
        .map(answer_text)
        .collect();
    let down = |m: String| ProbeResult::down(latency, m);
    if rcode != p.expected_rcode.code() {
        let got = if answers.is_empty() {
            rcode_text.clone()
        } else {
            format!("{rcode_text} ({})", list(&answers))
        };
        return down(format!(
            "expected rcode {} for {} {}, got {got}",
            p.expected_rcode,
            p.name.trim(),
            p.record_type
        ));
    }
    let missing: Vec<String> = p
        .expected_answers
        .iter()
        .filter(|want| !answers.iter().any(|got| matches(p.record_type, want, got)))
        .map(|s| s.trim().to_string())
        .collect();
    let seen = if answers.is_empty() {
        "none".to_string()
    } else {
        list(&answers)
    };
    if !missing.is_empty() {
        return down(format!(
            "expected {} {} {}, got {seen}",
            p.name.trim(),
            p.record_type,
            list(&missing)
        ));
    }
    if p.expected_rcode == Rcode::NoError && p.expected_answers.is_empty() && answers.is_empty() {
        return down(format!(
            "expected at least one {} answer for {}, got none ({rcode_text})",
            p.record_type,
            p.name.trim()
        ));
    }
    let what = if answers.is_empty() {
        rcode_text
    } else {
        format!("{rcode_text}, {} {seen}", p.record_type)
    };
    ProbeResult::up(
        latency,
        format!(
            "{} from {}: {what} in {}",
            p.name.trim(),
            p.server,
            human(latency)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        assert!(matches(RecordType::A, "10.0.0.1", "10.0.0.1"));
        assert!(!matches(RecordType::A, "10.0.0.2", "10.0.0.1"));
        assert!(matches(RecordType::AAAA, "fd00:0::1", "fd00::1"));
        assert!(matches(RecordType::CNAME, "Web.Test.", "web.test"));
        assert!(matches(
            RecordType::MX,
            "10 MX1.mail.test.",
            "10 mx1.mail.test"
        ));
        assert!(matches(RecordType::MX, "mx1.mail.test", "10 mx1.mail.test"));
        assert!(!matches(
            RecordType::MX,
            "20 mx1.mail.test",
            "10 mx1.mail.test"
        ));
        assert!(matches(
            RecordType::SRV,
            "1 5 8080 web.test",
            "1 5 8080 web.test"
        ));
        assert!(matches(RecordType::SRV, "web.test.", "1 5 8080 web.test"));
        assert!(matches(RecordType::TXT, "hello world", "hello world"));
        assert!(!matches(RecordType::TXT, "Hello world", "hello world"));
    }

    #[test]
    fn json_names() {
        let p: DnsProbe = serde_json::from_str(
            r#"{"server":"127.0.0.1:53","name":"x.test","record_type":"AAAA","expected_rcode":"NXDOMAIN"}"#,
        )
        .unwrap();
        assert_eq!(p.record_type, RecordType::AAAA);
        assert_eq!(p.expected_rcode, Rcode::NxDomain);
        assert_eq!(
            serde_json::to_string(&Rcode::NoError).unwrap(),
            "\"NOERROR\""
        );
        let d: DnsProbe =
            serde_json::from_str(r#"{"server":"127.0.0.1:53","name":"x.test"}"#).unwrap();
        assert_eq!(d, DnsProbe::new("127.0.0.1:53".parse().unwrap(), "x.test"));
    }

    #[test]
    fn validate_names_and_answers() {
        let mut p = DnsProbe::new("127.0.0.1:53".parse().unwrap(), "ok.test");
        p.validate().unwrap();
        p.expected_answers = vec!["not-an-ip".into()];
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not an IP address"));
        p.expected_answers.clear();
        p.name = "a..b".into();
        assert!(p.validate().is_err());
    }

    #[test]
    fn garbage_responses_do_not_parse_as_ours() {
        for bytes in [&b""[..], &[0u8; 3][..], &[0xffu8; 40][..]] {
            if let Ok(m) = Message::from_vec(bytes) {
                let _ = is_our_response(&m, 1);
            }
        }
    }
}
