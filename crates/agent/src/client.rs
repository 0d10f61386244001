//! The agent's side of the control API (`bulwark_api`): report runs, long-poll
//! for commands, fetch this host's configuration, take repository leases,
//! deliver monitor results; and the CLI's calls (status, alerts, monitors,
//! triggers).

use std::{path::Path, time::Duration};

use bulwark_api::{
    AgentConfig, ApiError, Lease, LeaseRequest, MonitorResults, MonitorResultsStored, MonitorsView,
    PollRequest, PollResponse, RunReport, Status, Stored, Triggered,
};
use reqwest::{Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{AgentError, Result};

/// A client of the hub's control API.
#[derive(Clone)]
pub struct HubClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the token
        f.debug_struct("HubClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Reads a token file: one line, surrounding whitespace ignored.
pub fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| AgentError::Setup {
        message: format!("cannot read the hub token file {}: {e}", path.display()),
        hint: "create it with `bulwark hub token create --host NAME --output FILE` on the hub, and copy it here (mode 0600)".into(),
    })?;
    let token = text.trim().to_string();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(AgentError::Setup {
            message: format!(
                "the hub token file {} does not hold one token",
                path.display()
            ),
            hint: "it must contain the token on one line, as printed by `bulwark hub token create`"
                .into(),
        });
    }
    Ok(token)
}

/// Is `url` plain `http://` to a host that is not this machine? Decided
/// from the URL alone, before any connection (names other than
/// `localhost` are not resolved: they count as remote).
pub fn is_insecure_remote(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    if u.scheme() != "http" {
        return false;
    }
    let Some(host) = u.host_str() else {
        return true;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => !(ip.is_loopback() || ip.is_unspecified()),
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            !(d == "localhost" || d.ends_with(".localhost"))
        }
    }
}

/// Refuses plain `http://` to a remote hub unless `allowed`.
pub fn check_transport(url: &str, allowed: bool) -> Result<()> {
    if allowed || !is_insecure_remote(url) {
        return Ok(());
    }
    Err(AgentError::Insecure {
        message: format!(
            "refusing plain http:// to the hub at {url}: whoever can see or alter that traffic \
             could read the token and make the hub's answers its own"
        ),
        hint: "use https:// (with ca_file for a private CA); only over a link that encrypts on its own \
               (WireGuard, Tailscale) set allow_insecure_http = true in [agent] or pass --allow-insecure-http"
            .into(),
    })
}

impl HubClient {
    /// A client for `base` (`http(s)://host:port`), trusting `ca_file` in
    /// addition to the system roots when given. Plain `http://` to a hub
    /// that is not on loopback is refused (see [`HubClient::with_options`]).
    pub fn new(base: &str, token: String, ca_file: Option<&Path>) -> Result<Self> {
        Self::with_options(base, token, ca_file, false)
    }

    /// Like [`HubClient::new`]; `allow_insecure_http` permits plain
    /// `http://` to a remote hub (for a WireGuard/Tailscale link).
    pub fn with_options(
        base: &str,
        token: String,
        ca_file: Option<&Path>,
        allow_insecure_http: bool,
    ) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(AgentError::Setup {
                message: format!("the hub URL `{base}` is not an http(s) URL"),
                hint: "give it as https://hub.lan:8000".into(),
            });
        }
        check_transport(&base, allow_insecure_http)?;
        // one TLS crypto provider (ring) for the process
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("bulwark-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).map_err(|e| AgentError::Setup {
                message: format!("cannot read the hub CA file {}: {e}", ca.display()),
                hint: "fix [agent] ca_file".into(),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| AgentError::Setup {
                message: format!("{} is not a PEM certificate: {e}", ca.display()),
                hint: "give the hub's certificate (or its CA) in PEM form".into(),
            })?;
            b = b.add_root_certificate(cert);
        }
        let http = b.build().map_err(|e| AgentError::Setup {
            message: format!("cannot set up HTTP: {e}"),
            hint: "check [agent] ca_file".into(),
        })?;
        Ok(Self { base, token, http })
    }

    /// The hub's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<(StatusCode, T)> {
        let what = format!("{method} {path}");
        let url = format!("{}{}{}", self.base, bulwark_api::PREFIX, path);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .timeout(timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| transport_error(&e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| AgentError::Unreachable(describe(&e)))?;
        if status.is_success() {
            let value = if bytes.is_empty() {
                serde_json::from_slice(b"null")
            } else {
                serde_json::from_slice(&bytes)
            };
            return value.map(|v| (status, v)).map_err(|e| AgentError::Refused {
                what,
                status: status.as_u16(),
                message: format!("unexpected answer: {e}"),
                retry_after: None,
            });
        }
        let err: Option<ApiError> = serde_json::from_slice(&bytes).ok();
        Err(AgentError::Refused {
            what,
            status: status.as_u16(),
            message: err.as_ref().map_or_else(
                || String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                |e| match &e.hint {
                    Some(h) => format!("{} (hint: {h})", e.error),
                    None => e.error.clone(),
                },
            ),
            retry_after: err.and_then(|e| e.retry_after),
        })
    }

    /// Delivers a run report; Ok for new and duplicate alike.
    pub async fn report(&self, r: &RunReport) -> Result<Stored> {
        self.call(
            Method::POST,
            "/agent/runs",
            Some(r),
            Duration::from_secs(30),
        )
        .await
        .map(|(_, s)| s)
    }

    /// Long-polls for commands for up to `wait`.
    pub async fn poll(&self, req: &PollRequest, wait: Duration) -> Result<PollResponse> {
        let path = format!("/agent/poll?wait={}", wait.as_secs());
        self.call(
            Method::POST,
            &path,
            Some(req),
            wait + Duration::from_secs(15),
        )
        .await
        .map(|(_, r)| r)
    }

    /// This host's configuration as the hub serves it.
    pub async fn config(&self) -> Result<AgentConfig> {
        self.call::<(), _>(Method::GET, "/agent/config", None, Duration::from_secs(30))
            .await
            .map(|(_, c)| c)
    }

    /// Asks for a repository lease; `Refused{status: 409, retry_after}` when busy.
    pub async fn lease(&self, req: &LeaseRequest) -> Result<Lease> {
        self.call(
            Method::POST,
            "/agent/leases",
            Some(req),
            Duration::from_secs(30),
        )
        .await
        .map(|(_, l)| l)
    }

    /// Gives a lease back.
    pub async fn release(&self, id: &str) -> Result<()> {
        let path = format!("/agent/leases/{id}");
        self.call::<(), serde_json::Value>(Method::DELETE, &path, None, Duration::from_secs(30))
            .await
            .map(|_| ())
    }

    /// Delivers a batch of probe results (`POST /api/v1/agent/monitors`, at
    /// most [`bulwark_api::MAX_MONITOR_RESULTS`]).
    pub async fn monitor_results(&self, r: &MonitorResults) -> Result<MonitorResultsStored> {
        self.call(
            Method::POST,
            "/agent/monitors",
            Some(r),
            Duration::from_secs(30),
        )
        .await
        .map(|(_, s)| s)
    }

    /// `GET /api/v1/monitors`: every monitor's state, as the hub sees it.
    pub async fn monitors(&self) -> Result<MonitorsView> {
        self.call::<(), _>(Method::GET, "/monitors", None, Duration::from_secs(30))
            .await
            .map(|(_, m)| m)
    }

    /// `GET /api/v1/status`.
    pub async fn status(&self) -> Result<Status> {
        self.call::<(), _>(Method::GET, "/status", None, Duration::from_secs(30))
            .await
            .map(|(_, s)| s)
    }

    /// `GET /api/v1/alerts`: open ones (`Some(true)`), resolved ones
    /// (`Some(false)`) or all, newest first.
    pub async fn alerts(&self, open: Option<bool>, limit: u32) -> Result<Vec<bulwark_api::Alert>> {
        let filter = open.map(|o| format!("&open={o}")).unwrap_or_default();
        let path = format!("/alerts?limit={limit}{filter}");
        self.call::<(), _>(Method::GET, &path, None, Duration::from_secs(30))
            .await
            .map(|(_, a)| a)
    }

    /// `POST /api/v1/alerts/{id}/resolve`.
    pub async fn resolve_alert(&self, id: i64) -> Result<bulwark_api::Alert> {
        let path = format!("/alerts/{id}/resolve");
        self.call::<(), _>(Method::POST, &path, None, Duration::from_secs(30))
            .await
            .map(|(_, a)| a)
    }

    /// `POST /api/v1/jobs/{job}/trigger`.
    pub async fn trigger(&self, job: &str) -> Result<Triggered> {
        let path = format!("/jobs/{job}/trigger");
        self.call::<(), _>(Method::POST, &path, None, Duration::from_secs(30))
            .await
            .map(|(_, t)| t)
    }
}

/// A certificate problem is permanent (never retried) and says how to fix
/// it; anything else on the way is temporary.
fn transport_error(e: &reqwest::Error) -> AgentError {
    let text = describe(e);
    let cert = [
        "certificate",
        "UnknownIssuer",
        "CaUsedAsEndEntity",
        "NotValidForName",
        "Expired",
    ]
    .iter()
    .any(|k| text.contains(k));
    if cert {
        AgentError::Certificate {
            message: format!("cannot connect to the hub: {text}"),
            hint: "set ca_file = \"/path/ca.pem\" in [agent] or pass --ca-file (the CA that signed the hub's certificate)".into(),
        }
    } else {
        AgentError::Unreachable(text)
    }
}

/// reqwest's errors hide the cause behind "error sending request"; walk the
/// chain for the useful part (connection refused, certificate, timeout).
fn describe(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    let text = parts.join(": ");
    if text.contains("CaUsedAsEndEntity") {
        return format!(
            "{text} (the hub's certificate is a CA certificate used as a server certificate; make a self-signed one with \
             `openssl req -x509 ... -addext basicConstraints=critical,CA:FALSE`, or sign it with a CA and give that as ca_file)"
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_only_off_loopback_and_unless_allowed() {
        for local in [
            "http://127.0.0.1:8000",
            "http://127.1.2.3:80",
            "http://[::1]:8000",
            "http://localhost:8000",
            "http://0.0.0.0:8130",
            "https://192.0.2.1:8000",
            "https://hub.lan",
        ] {
            assert!(!is_insecure_remote(local), "{local}");
            assert!(check_transport(local, false).is_ok(), "{local}");
        }
        for remote in [
            "http://192.0.2.1:8000",
            "http://10.255.255.1",
            "http://[2001:db8::1]:8000",
            "http://hub.lan:8000",
            "http://localhost.evil.example",
        ] {
            assert!(is_insecure_remote(remote), "{remote}");
            assert!(
                matches!(
                    check_transport(remote, false),
                    Err(AgentError::Insecure { .. })
                ),
                "{remote}"
            );
            assert!(check_transport(remote, true).is_ok(), "{remote}");
        }
        // refused before any connection: constructing the client is enough
        assert!(HubClient::new("http://192.0.2.1:8000", "t".into(), None).is_err());
        assert!(HubClient::with_options("http://192.0.2.1:8000", "t".into(), None, true).is_ok());
    }
}
