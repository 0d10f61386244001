//! Delivery over HTTP for every HTTP notifier and the pinger: one shared
//! client, a timeout, one retry for network errors and 5xx, 429 honoured up
//! to a bound, and errors that quote the server without quoting a secret.

use std::{path::Path, sync::OnceLock, time::Duration};

use reqwest::{
    header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER},
    Method, StatusCode, Url,
};

use crate::error::{ErrorKind, NotifyError};

/// How hard [`Notifier::send`](crate::Notifier::send) and the [`Pinger`](crate::Pinger) try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    /// The limit for one attempt: connecting, sending, and reading the
    /// answer. For SMTP it bounds each step of the dialogue, and the whole
    /// dialogue gets three times as much. Default 10 s.
    pub timeout: Duration,
    /// The wait before the one retry after a network error or a 5xx answer,
    /// and after a 429 without `Retry-After`. Default 2 s.
    pub retry_delay: Duration,
    /// The longest `Retry-After` of a 429 answer we wait for (twice at most);
    /// a longer one fails with [`ErrorKind::RateLimited`]. Default 30 s.
    pub max_retry_after: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// How many bytes of an answer an error quotes.
pub(crate) const ANSWER_EXCERPT: usize = 200;
/// How much of an answer we read at most (the rest is dropped unread).
const ANSWER_READ_LIMIT: usize = 64 * 1024;
/// How many 429 answers we wait out in one delivery.
const MAX_RATE_LIMIT_WAITS: u32 = 2;

/// Strings that must never appear in an error or a log line, replaced by `***`.
#[derive(Default, Clone)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    /// Adds a secret (empty and very short strings are ignored: replacing
    /// them would mangle the text without protecting anything).
    pub(crate) fn add(&mut self, s: &str) {
        if s.len() >= 4 && !self.0.iter().any(|x| x == s) {
            self.0.push(s.to_string());
            // longest first, so a URL is replaced before its parts
            self.0.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    /// Adds a URL whose path and query are secret (Discord, Slack, pings,
    /// webhooks): the whole URL, its normalized form, its path, its last
    /// path segment and any long one (tokens, UUIDs), its query and the
    /// query's values; a server may quote any of them alone.
    pub(crate) fn add_url(&mut self, url: &str) {
        self.add(url);
        if let Ok(u) = Url::parse(url) {
            self.add(u.as_str());
            if let Some(p) = u.password() {
                self.add(p);
            }
            let path = u.path().trim_matches('/');
            self.add(path);
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            if let Some(last) = segments.last() {
                self.add(last);
            }
            for s in segments.iter().filter(|s| s.len() >= 16) {
                self.add(s);
            }
            if let Some(q) = u.query() {
                self.add(q);
                for (_, v) in u.query_pairs() {
                    self.add(&v);
                }
            }
        }
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

/// A URL shown without its secret parts: `scheme://host[:port]/***`.
pub(crate) fn origin_only(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => match u.host_str() {
            Some(host) => match u.port() {
                Some(p) => format!("{}://{host}:{p}/***", u.scheme()),
                None => format!("{}://{host}/***", u.scheme()),
            },
            None => "***".into(),
        },
        Err(_) => "***".into(),
    }
}

/// Parses an http(s) URL from the configuration.
pub(crate) fn parse_http_url(
    name: &str,
    channel: &'static str,
    what: &str,
    url: &str,
    secret: bool,
) -> Result<Url, NotifyError> {
    let shown = if secret {
        origin_only(url)
    } else {
        url.to_string()
    };
    let u = Url::parse(url.trim()).map_err(|e| {
        NotifyError::config(
            name,
            channel,
            format!("the {what} `{shown}` is not a URL ({e})"),
            "give a full URL such as https://host/path",
        )
    })?;
    if !secret && (!u.username().is_empty() || u.password().is_some()) {
        return Err(NotifyError::config(
            name,
            channel,
            format!("the {what} holds a user name or password"),
            "leave credentials out of the URL: give the token in its own setting (read from a file)",
        ));
    }
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(NotifyError::config(
            name,
            channel,
            format!("the {what} `{shown}` is not an http(s) URL"),
            "give a full URL such as https://host/path",
        ));
    }
    Ok(u)
}

/// Reads a PEM file of one or more CA certificates.
pub(crate) fn read_ca_file(
    name: &str,
    channel: &'static str,
    path: &Path,
) -> Result<Vec<u8>, NotifyError> {
    let hint =
        "give the PEM file of the CA that signed the server's certificate (or of that certificate)";
    let pem = std::fs::read(path).map_err(|e| {
        NotifyError::config(
            name,
            channel,
            format!("cannot read ca_file {}: {e}", path.display()),
            hint,
        )
    })?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(pem),
        Ok(_) => Err(NotifyError::config(
            name,
            channel,
            format!("ca_file {} holds no PEM certificate", path.display()),
            hint,
        )),
        Err(e) => Err(NotifyError::config(
            name,
            channel,
            format!("ca_file {} is not a PEM certificate: {e}", path.display()),
            hint,
        )),
    }
}

/// Checks that a secret can travel in an HTTP header.
pub(crate) fn check_header_secret(
    name: &str,
    channel: &'static str,
    what: &str,
    value: &str,
) -> Result<(), NotifyError> {
    if value.is_empty() || value.trim() != value || HeaderValue::from_str(value).is_err() {
        return Err(NotifyError::config(
            name,
            channel,
            format!("the {what} is empty or holds spaces or control characters"),
            format!("the file holding the {what} must contain it on one line"),
        ));
    }
    Ok(())
}

static SHARED: OnceLock<reqwest::Client> = OnceLock::new();

fn builder() -> reqwest::ClientBuilder {
    // one TLS crypto provider (ring) for the process
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        // a redirected POST turns into a GET without its body, and an
        // Authorization header would follow it: say so instead
        .redirect(reqwest::redirect::Policy::none())
        // alerts are rare: no idle connections (which would also be tied to
        // the runtime that opened them)
        .pool_max_idle_per_host(0)
        .user_agent(concat!("bulwark/", env!("CARGO_PKG_VERSION")))
}

/// The shared client, or one that also trusts `ca_file`.
fn client(
    name: &str,
    channel: &'static str,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, NotifyError> {
    let setup = |e: reqwest::Error| {
        NotifyError::config(
            name,
            channel,
            format!("cannot set up HTTPS: {}", describe(e)),
            "check ca_file and the system's certificate store",
        )
    };
    match ca_file {
        None => {
            if let Some(c) = SHARED.get() {
                return Ok(c.clone());
            }
            let c = builder().build().map_err(setup)?;
            Ok(SHARED.get_or_init(|| c).clone())
        }
        Some(path) => {
            let pem = read_ca_file(name, channel, path)?;
            let mut b = builder();
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(setup)? {
                b = b.add_root_certificate(cert);
            }
            b.build().map_err(setup)
        }
    }
}

/// reqwest's errors hide the cause behind "error sending request"; walk the
/// chain for the useful part. The URL is left out (it may hold a secret).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// One HTTP request a notifier wants delivered.
pub(crate) struct Outgoing {
    /// GET, POST or PUT.
    pub method: Method,
    /// Where to.
    pub url: Url,
    /// Extra headers (auth, content type).
    pub headers: HeaderMap,
    /// The body (empty for none).
    pub body: Vec<u8>,
    /// How errors name the target, secrets removed (`POST https://discord.com/***`).
    pub shown: String,
}

impl Outgoing {
    /// A JSON request.
    pub(crate) fn json(method: Method, url: Url, body: &serde_json::Value, shown: String) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self {
            method,
            url,
            headers,
            body: body.to_string().into_bytes(),
            shown,
        }
    }
}

/// The hint for an HTTP 4xx status, specific to a service.
pub(crate) type HintFn = fn(u16) -> Option<&'static str>;

/// Who is sending, for errors and hints.
pub(crate) struct Sender<'a> {
    /// The notifier's name.
    pub name: &'a str,
    /// Its type.
    pub channel: &'static str,
    /// What must not appear in errors.
    pub secrets: &'a Secrets,
    /// Timeouts and retries.
    pub options: &'a SendOptions,
    /// Extra CA to trust.
    pub ca_file: Option<&'a Path>,
    /// The hint for a 4xx status, specific to the service.
    pub hint_for: HintFn,
}

impl Sender<'_> {
    fn error(&self, kind: ErrorKind, message: String) -> NotifyError {
        NotifyError::new(kind, self.name, self.channel, self.secrets.redact(&message))
    }

    /// Sends `out`, retrying once after a network error or a 5xx answer and
    /// waiting out 429 answers up to `max_retry_after`.
    pub(crate) async fn deliver(&self, out: &Outgoing) -> Result<(), NotifyError> {
        let client = client(self.name, self.channel, self.ca_file)?;
        let opts = self.options;
        let mut retried = false;
        let mut rate_waits = 0;
        loop {
            let attempt = client
                .request(out.method.clone(), out.url.clone())
                .headers(out.headers.clone())
                .body(out.body.clone())
                .timeout(opts.timeout)
                .send()
                .await;
            let resp = match attempt {
                Ok(r) => r,
                Err(e) => {
                    let err = self.network_error(out, e, retried);
                    if !retried && err.is_temporary() {
                        tracing::debug!(error = %err, "retrying once");
                        retried = true;
                        tokio::time::sleep(opts.retry_delay).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status();
            if status.is_success() {
                // the answer doesn't matter; don't wait for a slow body
                return Ok(());
            }
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| parse_retry_after(v.as_bytes()));
            let location = resp
                .headers()
                .get(LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let answer = self.secrets.redact(&read_excerpt(resp).await);

            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after.unwrap_or(opts.retry_delay);
                if wait <= opts.max_retry_after && rate_waits < MAX_RATE_LIMIT_WAITS {
                    rate_waits += 1;
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        "429: waiting before retrying"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let why = if wait > opts.max_retry_after {
                    format!(
                        "asked to wait {} s (Retry-After), more than the {} s we wait",
                        wait.as_secs(),
                        opts.max_retry_after.as_secs()
                    )
                } else {
                    format!("still limited after waiting {rate_waits} times")
                };
                return Err(self.status_error(out, status, &answer, ErrorKind::RateLimited, &why, retried).with_hint(
                    "the service limits how often you may post: send fewer alerts to this notifier (routes, \
                     reminders) or try again later",
                ));
            }
            if status.is_server_error() && !retried {
                tracing::debug!(status = status.as_u16(), "retrying once");
                retried = true;
                tokio::time::sleep(opts.retry_delay).await;
                continue;
            }
            let (kind, hint) = if status.is_server_error() {
                (
                    ErrorKind::Server,
                    "the service has a problem of its own (retried once); try again later"
                        .to_string(),
                )
            } else if status.is_redirection() {
                let to = location
                    .map(|l| self.secrets.redact(&l))
                    .unwrap_or_else(|| "elsewhere".into());
                (
                    ErrorKind::Rejected,
                    format!("the URL redirects to {to}; configure the final URL (redirects are not followed)"),
                )
            } else {
                let kind = if matches!(status.as_u16(), 401 | 403) {
                    ErrorKind::Auth
                } else {
                    ErrorKind::Rejected
                };
                let hint = (self.hint_for)(status.as_u16())
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        "check the notifier's settings against the service's documentation".into()
                    });
                (kind, hint)
            };
            return Err(self
                .status_error(out, status, &answer, kind, "", retried)
                .with_hint(hint));
        }
    }

    fn status_error(
        &self,
        out: &Outgoing,
        status: StatusCode,
        answer: &str,
        kind: ErrorKind,
        why: &str,
        retried: bool,
    ) -> NotifyError {
        let mut message = format!("{} answered {status}", out.shown);
        if !answer.is_empty() {
            message.push_str(&format!(": {answer:?}"));
        }
        if !why.is_empty() {
            message.push_str(&format!("; {why}"));
        }
        if retried {
            message.push_str(" (after one retry)");
        }
        let mut e = self.error(kind, message);
        e.status = Some(status.as_u16());
        e.answer = (!answer.is_empty()).then(|| answer.to_string());
        e
    }

    fn network_error(&self, out: &Outgoing, e: reqwest::Error, retried: bool) -> NotifyError {
        let timeout = e.is_timeout();
        let connect = e.is_connect();
        let text = describe(e);
        let after = if retried { " (after one retry)" } else { "" };
        if timeout {
            return self
                .error(
                    ErrorKind::Timeout,
                    format!("{}: no answer within {} s{after}", out.shown, self.options.timeout.as_secs_f32()),
                )
                .with_hint("the server accepted the connection but did not answer; check that it is healthy and that the URL points at it");
        }
        let lower = text.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls")
        {
            return self
                .error(ErrorKind::Connect, format!("{}: TLS failed: {text}{after}", out.shown))
                .with_hint("if the server's certificate comes from a private CA, give that CA as ca_file; check the host name in the URL");
        }
        let hint = if connect {
            "check that the server is up and that the host and port in the URL are right"
        } else {
            "check the URL and the network between this machine and the server"
        };
        self.error(
            ErrorKind::Connect,
            format!("{}: cannot connect: {text}{after}", out.shown),
        )
        .with_hint(hint)
    }
}

/// The first [`ANSWER_EXCERPT`] bytes of an answer as text, reading at most
/// [`ANSWER_READ_LIMIT`] bytes; never fails (a broken body is described).
async fn read_excerpt(mut resp: reqwest::Response) -> String {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                buf.extend_from_slice(&chunk);
                if buf.len() >= ANSWER_READ_LIMIT {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                if buf.is_empty() {
                    return format!("(the answer could not be read: {})", describe(e));
                }
                break;
            }
        }
    }
    excerpt(&buf)
}

/// At most [`ANSWER_EXCERPT`] bytes of `bytes`, lossily decoded, trimmed.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let mut cut = &bytes[..bytes.len().min(ANSWER_EXCERPT)];
    // don't end on half a character
    if let Err(e) = std::str::from_utf8(cut) {
        if e.error_len().is_none() {
            cut = &cut[..e.valid_up_to()];
        }
    }
    let mut s = String::from_utf8_lossy(cut).trim().to_string();
    if bytes.len() > ANSWER_EXCERPT {
        s.push('…');
    }
    s
}

/// `Retry-After`: delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &[u8]) -> Option<Duration> {
    let s = std::str::from_utf8(v).ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = s.parse::<f64>() {
        // Discord sends fractions in its body, some proxies in the header
        if secs.is_finite() && (0.0..1e9).contains(&secs) {
            return Some(Duration::from_secs_f64(secs));
        }
        return None;
    }
    let when = jiff::fmt::rfc2822::parse(s).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let wait = now.until(when).ok()?;
    let secs = wait.total(jiff::Unit::Second).ok()?;
    Some(if secs > 0.0 {
        Duration::from_secs_f64(secs.min(1e9))
    } else {
        Duration::ZERO
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after(b"3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(b" 0.5 "),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(b"Mon, 01 Jan 1990 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        let future = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120))
            .strftime("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let d = parse_retry_after(future.as_bytes()).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after(b"soon"), None);
        assert_eq!(parse_retry_after(b"-1"), None);
        assert_eq!(parse_retry_after(&[0xff, 0xfe]), None);
    }

    #[test]
    fn secrets_are_redacted_longest_first() {
        let mut s = Secrets::default();
        s.add_url("https://discord.com/api/webhooks/123/abcSECRET");
        s.add("xy"); // too short to matter
        let t = s.redact("error for https://discord.com/api/webhooks/123/abcSECRET and api/webhooks/123/abcSECRET");
        assert_eq!(t, "error for *** and ***");
        assert_eq!(s.redact("Unknown Webhook abcSECRET"), "Unknown Webhook ***");
        let mut s = Secrets::default();
        s.add_url("https://hooks.example/in/0123456789abcdef0123/x?key=QueryKey1");
        assert_eq!(
            s.redact("bad 0123456789abcdef0123, key QueryKey1"),
            "bad ***, key ***"
        );
        assert_eq!(
            origin_only("https://discord.com/api/webhooks/123/abc"),
            "https://discord.com/***"
        );
        assert_eq!(
            origin_only("http://127.0.0.1:8080/x?y"),
            "http://127.0.0.1:8080/***"
        );
        assert_eq!(origin_only("not a url"), "***");
    }

    #[test]
    fn excerpt_is_bounded_and_lossy() {
        let long = vec![b'a'; 1000];
        assert_eq!(excerpt(&long).len(), ANSWER_EXCERPT + '…'.len_utf8());
        // a multi-byte character cut in the middle does not panic
        let mut cut = vec![b'a'; 199];
        cut.extend_from_slice("é".as_bytes());
        let e = excerpt(&cut);
        assert_eq!(e, format!("{}…", "a".repeat(199)));
        // invalid bytes inside become replacement characters
        assert_eq!(excerpt(b"a\xffb"), "a\u{fffd}b");
    }
}
