//! The http probe: status, body, JSON field, response time, certificate.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::{human, serde_opt_duration};
use crate::{cert, quote, ProbeResult, SpecError};

/// How much of a response body is read (and searched); the rest is ignored.
pub(crate) const MAX_BODY: usize = 1 << 20;
/// How many redirects are followed when `follow_redirects` is on.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// An inclusive range of HTTP status codes, written `"200-399"` or `"204"`
/// (a bare number such as `204` is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted status.
    pub min: u16,
    /// Highest accepted status.
    pub max: u16,
}

impl StatusRange {
    /// One status code.
    pub const fn single(code: u16) -> Self {
        StatusRange {
            min: code,
            max: code,
        }
    }

    /// Whether `code` is in the range.
    pub fn contains(&self, code: u16) -> bool {
        (self.min..=self.max).contains(&code)
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

impl FromStr for StatusRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let code = |t: &str| -> Result<u16, String> {
            match t.trim().parse::<u16>() {
                Ok(c) if (100..=599).contains(&c) => Ok(c),
                _ => Err(format!("{:?} is not an HTTP status (100-599)", t.trim())),
            }
        };
        let range = match s.split_once('-') {
            Some((a, b)) => StatusRange {
                min: code(a)?,
                max: code(b)?,
            },
            None => StatusRange::single(code(s)?),
        };
        if range.min > range.max {
            return Err(format!("{s:?}: the range is empty"));
        }
        Ok(range)
    }
}

impl Serialize for StatusRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => n.to_string().parse(),
            Raw::Text(t) => t.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// A JSON field that must have a given value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonCheck {
    /// A JSON pointer (RFC 6901) such as `/status` or `/checks/0/ok`.
    pub pointer: String,
    /// The value it must equal (compared as JSON: `"200"` is not `200`).
    pub equals: serde_json::Value,
}

fn default_method() -> String {
    "GET".into()
}
fn default_statuses() -> Vec<StatusRange> {
    vec![StatusRange { min: 200, max: 399 }]
}
fn default_true() -> bool {
    true
}
fn is_default_method(m: &str) -> bool {
    m == "GET"
}

/// An HTTP(S) request and what its response must look like.
///
/// Checks, in order (the first that fails makes the result down): status in
/// `expected_status`, `body_contains`, `json`, `max_response_time`,
/// `min_cert_days`. Proxies from the environment are not used: the probe
/// measures the direct path.
///
/// `Debug` hides what may be secret: the URL's user name and password,
/// header values (an `Authorization` header is the usual place for a token)
/// and the body.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpProbe {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Request method (default `GET`).
    #[serde(default = "default_method", skip_serializing_if = "is_default_method")]
    pub method: String,
    /// Request headers (values never appear in messages).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body (for POST and friends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Accepted statuses (default `200-399`).
    #[serde(default = "default_statuses")]
    pub expected_status: Vec<StatusRange>,
    /// Text the body must contain (searched in the first 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A JSON field of the body that must have a given value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonCheck>,
    /// A slower response (headers and body) is down.
    #[serde(
        default,
        with = "serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_response_time: Option<Duration>,
    /// Follow up to 10 redirects (default true); when false a 3xx is the
    /// response checked.
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Trust only the CA certificates in this PEM file instead of the
    /// system's (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification.
    #[serde(default)]
    pub insecure: bool,
    /// For https: fewer days left on the server certificate is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cert_days: Option<u32>,
}

impl std::fmt::Debug for HttpProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: BTreeMap<&str, &str> =
            self.headers.keys().map(|k| (k.as_str(), "***")).collect();
        f.debug_struct("HttpProbe")
            .field("url", &bulwark_api::redact_url(&self.url))
            .field("method", &self.method)
            .field("headers", &headers)
            .field(
                "body",
                &self.body.as_ref().map(|b| format!("<{} bytes>", b.len())),
            )
            .field("expected_status", &self.expected_status)
            .field("body_contains", &self.body_contains)
            .field("json", &self.json)
            .field("max_response_time", &self.max_response_time)
            .field("follow_redirects", &self.follow_redirects)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .field("min_cert_days", &self.min_cert_days)
            .finish()
    }
}

impl HttpProbe {
    /// A `GET url` expecting 200-399, following redirects, nothing else
    /// checked.
    pub fn new(url: impl Into<String>) -> Self {
        HttpProbe {
            url: url.into(),
            method: default_method(),
            headers: BTreeMap::new(),
            body: None,
            expected_status: default_statuses(),
            body_contains: None,
            json: None,
            max_response_time: None,
            follow_redirects: true,
            ca_file: None,
            insecure: false,
            min_cert_days: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        let url =
            reqwest::Url::parse(&self.url).map_err(|e| SpecError::invalid("url", &self.url, e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SpecError::invalid(
                "url",
                &self.url,
                "must start with http:// or https://",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SpecError::invalid("url", &self.url, "has no host"));
        }
        reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| SpecError::invalid("method", &self.method, "not an HTTP method"))?;
        for (name, value) in &self.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SpecError::invalid("header name", name, "not a valid header name"))?;
            reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                SpecError::invalid("header value of", name, "not a valid header value")
            })?;
        }
        if self.expected_status.is_empty() {
            return Err(SpecError::Empty {
                field: "expected_status",
            });
        }
        if let Some(j) = &self.json {
            if !(j.pointer.is_empty() || j.pointer.starts_with('/')) {
                return Err(SpecError::invalid(
                    "json pointer",
                    &j.pointer,
                    "must start with '/'",
                ));
            }
        }
        if self.body_contains.as_deref() == Some("") {
            return Err(SpecError::Empty {
                field: "body_contains",
            });
        }
        Ok(())
    }

    fn expected_status_text(&self) -> String {
        self.expected_status
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A client for `p`, shared by every monitor with the same timeout,
/// redirect and verification settings when it uses the system's CAs (a
/// client holds its own copy of the TLS configuration: a thousand monitors
/// need a handful of clients, not a thousand). A `ca_file` gets a client of
/// its own, read now.
pub(crate) fn shared_client(p: &HttpProbe, timeout: Duration) -> Result<reqwest::Client, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Key = (Duration, bool, bool);
    static CLIENTS: OnceLock<Mutex<HashMap<Key, reqwest::Client>>> = OnceLock::new();
    if p.ca_file.is_some() {
        return client(p, timeout);
    }
    let key = (timeout, p.follow_redirects, p.insecure);
    let mut map = CLIENTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(c) = map.get(&key) {
        return Ok(c.clone());
    }
    let c = client(p, timeout)?;
    map.insert(key, c.clone());
    Ok(c)
}

pub(crate) fn client(p: &HttpProbe, timeout: Duration) -> Result<reqwest::Client, String> {
    // one TLS crypto provider (ring) for the process
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        // every probe opens its own connection: a probe must see a server
        // that stopped accepting, not a kept-alive socket
        .pool_max_idle_per_host(0)
        .connect_timeout(timeout)
        .no_proxy()
        .tls_info(true)
        .user_agent(concat!("bulwark-monitor/", env!("CARGO_PKG_VERSION")))
        .redirect(if p.follow_redirects {
            reqwest::redirect::Policy::limited(MAX_REDIRECTS)
        } else {
            reqwest::redirect::Policy::none()
        });
    if let Some(path) = &p.ca_file {
        let mut certs = Vec::new();
        for der in cert::read_pem_file(path)? {
            certs.push(
                reqwest::Certificate::from_der(der.as_ref()).map_err(|e| {
                    format!("ca_file {}: unusable certificate: {e}", path.display())
                })?,
            );
        }
        b = b.tls_certs_only(certs);
    }
    if p.insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| format!("HTTP client setup failed: {}", describe(e)))
}

/// reqwest's errors hide the cause behind "error sending request"; walk the
/// chain (without the URL, which may carry credentials).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Host and port of a URL for messages (no credentials, no path or query).
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{}://{}", u.scheme(), crate::tcp::display_addr(h, p)),
            _ => "the server".into(),
        },
        Err(_) => "the server".into(),
    }
}

pub(crate) async fn run(p: &HttpProbe, timeout: Duration) -> ProbeResult {
    match client(p, timeout) {
        Ok(c) => run_with(p, &c, timeout).await,
        Err(e) => ProbeResult::down(Duration::ZERO, e),
    }
}

/// One probe with a client built by [`client`] for the same probe and
/// timeout (a monitor that runs every few seconds builds it once).
pub(crate) async fn run_with(
    p: &HttpProbe,
    client: &reqwest::Client,
    timeout: Duration,
) -> ProbeResult {
    let start = Instant::now();
    let deadline = start + timeout;
    let method = reqwest::Method::from_bytes(p.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method, &p.url);
    for (k, v) in &p.headers {
        req = req.header(k, v);
    }
    if let Some(body) = &p.body {
        req = req.body(body.clone());
    }
    let timed_out = || {
        ProbeResult::down(
            start.elapsed(),
            format!(
                "expected a response from {} within {}, got none",
                origin(&p.url),
                human(timeout)
            ),
        )
    };
    let resp = match tokio::time::timeout(timeout, req.send()).await {
        Err(_) => return timed_out(),
        Ok(Err(e)) if e.is_timeout() => return timed_out(),
        Ok(Err(e)) => {
            return ProbeResult::down(
                start.elapsed(),
                format!(
                    "expected a response from {}, got: {}",
                    origin(&p.url),
                    describe(e)
                ),
            )
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let peer_cert = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .map(<[u8]>::to_vec);
    // Read the body (bounded in size and time).
    let mut resp = resp;
    let mut body: Vec<u8> = Vec::new();
    let mut body_error: Option<String> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Err(_) => return timed_out(),
            Ok(Err(e)) if e.is_timeout() => return timed_out(),
            Ok(Err(e)) => {
                body_error = Some(describe(e));
                break;
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => {
                let room = MAX_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY {
                    break;
                }
            }
        }
    }
    let latency = start.elapsed();
    let cert = peer_cert.map(|der| cert::parse(&der));
    let days = match &cert {
        Some(Ok(info)) => Some(info.days_left(cert::now())),
        _ => None,
    };
    let judged = judge(p, status, &body, body_error, latency, cert.as_ref(), days);
    judged.with_cert_days(days)
}

fn judge(
    p: &HttpProbe,
    status: u16,
    body: &[u8],
    body_error: Option<String>,
    latency: Duration,
    cert: Option<&Result<cert::CertInfo, String>>,
    days: Option<f64>,
) -> ProbeResult {
    let down = |m: String| ProbeResult::down(latency, m);
    if !p.expected_status.iter().any(|r| r.contains(status)) {
        return down(format!(
            "expected status {}, got {status}",
            p.expected_status_text()
        ));
    }
    if (p.body_contains.is_some() || p.json.is_some()) && body_error.is_some() {
        let e = body_error.unwrap_or_default();
        return down(format!("status {status}, but reading the body failed: {e}"));
    }
    let text = String::from_utf8_lossy(body);
    if let Some(needle) = &p.body_contains {
        if !text.contains(needle.as_str()) {
            return down(format!(
                "expected the body to contain {}, got {}",
                quote(needle, 80),
                if text.trim().is_empty() {
                    "an empty body".to_string()
                } else {
                    quote(text.trim(), 80)
                }
            ));
        }
    }
    if let Some(j) = &p.json {
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return down(format!(
                    "expected a JSON body, got {} ({e})",
                    quote(text.trim(), 60)
                ))
            }
        };
        match value.pointer(&j.pointer) {
            Some(v) if *v == j.equals => {}
            Some(v) => {
                return down(format!(
                    "expected {} = {}, got {}",
                    j.pointer,
                    json_text(&j.equals),
                    json_text(v)
                ))
            }
            None => {
                return down(format!(
                    "expected {} = {}, got no such field",
                    j.pointer,
                    json_text(&j.equals)
                ))
            }
        }
    }
    if let Some(max) = p.max_response_time {
        if latency > max {
            return down(format!(
                "expected a response within {}, got one after {}",
                human(max),
                human(latency)
            ));
        }
    }
    let cert_text = match (cert, days) {
        (Some(Ok(info)), Some(d)) => Some(cert::describe_days(d, info)),
        (Some(Err(e)), _) => Some(e.clone()),
        _ => None,
    };
    if let Some(min) = p.min_cert_days {
        match (days, &cert_text) {
            (Some(d), Some(t)) if d < f64::from(min) => {
                return down(format!(
                    "expected a certificate valid for at least {min} days, got: {t}"
                ))
            }
            (Some(_), _) => {}
            (None, t) => {
                return down(format!(
                    "expected a certificate valid for at least {min} days, got {}",
                    t.clone()
                        .unwrap_or_else(|| "no certificate (not https)".into())
                ))
            }
        }
    }
    let mut msg = format!("status {status} in {}", human(latency));
    if let Some(t) = cert_text {
        msg.push_str("; ");
        msg.push_str(&t);
    }
    ProbeResult::up(latency, msg)
}

fn json_text(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(80).collect();
        format!("{cut}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let mut p = HttpProbe::new("https://urluser:urlpass@example.org/health");
        p.headers
            .insert("Authorization".into(), "Bearer hdrsecret".into());
        p.body = Some("bodysecret".into());
        let dbg = format!("{p:?}");
        for secret in ["urluser", "urlpass", "hdrsecret", "bodysecret"] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
        assert!(
            dbg.contains("Authorization") && dbg.contains("example.org"),
            "{dbg}"
        );
    }

    #[test]
    fn status_ranges_parse_and_print() {
        assert_eq!(
            "200-399".parse::<StatusRange>().unwrap(),
            StatusRange { min: 200, max: 399 }
        );
        assert_eq!(
            "204".parse::<StatusRange>().unwrap(),
            StatusRange::single(204)
        );
        assert!("399-200".parse::<StatusRange>().is_err());
        assert!("abc".parse::<StatusRange>().is_err());
        assert!("99".parse::<StatusRange>().is_err());
        let v: Vec<StatusRange> = serde_json::from_str(r#"["200-299", 404, "503"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"["200-299","404","503"]"#
        );
    }

    #[test]
    fn json_defaults() {
        let p: HttpProbe = serde_json::from_str(r#"{"url":"http://127.0.0.1/"}"#).unwrap();
        assert_eq!(p, HttpProbe::new("http://127.0.0.1/"));
        let p: HttpProbe = serde_json::from_str(
            r#"{"url":"https://127.0.0.1/","max_response_time":"500ms","json":{"pointer":"/ok","equals":true}}"#,
        )
        .unwrap();
        assert_eq!(p.max_response_time, Some(Duration::from_millis(500)));
        assert_eq!(
            p.json.as_ref().unwrap().equals,
            serde_json::Value::Bool(true)
        );
        let back: HttpProbe = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn validate_catches_bad_fields() {
        let bad = |f: &dyn Fn(&mut HttpProbe)| {
            let mut p = HttpProbe::new("http://127.0.0.1/");
            f(&mut p);
            p.validate().unwrap_err().to_string()
        };
        assert!(bad(&|p| p.url = "ftp://x/".into()).contains("http://"));
        assert!(bad(&|p| p.url = "not a url".into()).contains("invalid url"));
        assert!(bad(&|p| p.method = "GE T".into()).contains("method"));
        assert!(bad(&|p| {
            p.headers.insert("X-Bad Name".into(), "v".into());
        })
        .contains("header name"));
        assert!(bad(&|p| p.expected_status.clear()).contains("expected_status"));
        assert!(bad(&|p| {
            p.json = Some(JsonCheck {
                pointer: "status".into(),
                equals: serde_json::Value::Null,
            })
        })
        .contains("must start with '/'"));
    }

    #[test]
    fn origin_hides_credentials_and_query() {
        assert_eq!(
            origin("https://user:secret@example.com/x?token=abc"),
            "https://example.com:443"
        );
        assert_eq!(origin("http://[::1]:8080/"), "http://[::1]:8080");
    }

    #[test]
    fn judge_messages() {
        let mut p = HttpProbe::new("http://127.0.0.1/");
        let r = judge(&p, 500, b"", None, Duration::from_millis(3), None, None);
        assert_eq!(r.message, "expected status 200-399, got 500");
        p.body_contains = Some("ready".into());
        let r = judge(&p, 200, b"starting\n", None, Duration::ZERO, None, None);
        assert_eq!(
            r.message,
            "expected the body to contain \"ready\", got \"starting\""
        );
        p.body_contains = None;
        p.min_cert_days = Some(14);
        let r = judge(&p, 200, b"", None, Duration::ZERO, None, None);
        assert!(!r.up);
        assert!(
            r.message.contains("no certificate (not https)"),
            "{}",
            r.message
        );
    }
}
