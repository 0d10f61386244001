//! The tls probe: the certificate of any TLS port, trusted or not.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

use crate::duration::human;
use crate::tcp::{connect, display_addr, resolve, validate_host_port};
use crate::{cert, ProbeResult, SpecError};

fn default_min_days() -> u32 {
    14
}

/// Connects to a TLS port, reads the server certificate and checks its
/// trust and expiry.
///
/// Days left are reported even when the chain is not trusted; an untrusted
/// chain (unknown issuer, expired, wrong name) is down unless `insecure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsProbe {
    /// Host name or IP address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The name to ask for (SNI) and verify; default `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Fewer days left than this is down (default 14).
    #[serde(default = "default_min_days")]
    pub min_days: u32,
    /// Trust only the CA certificates in this PEM file instead of the
    /// system's (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Do not require a trusted chain (expiry is still checked).
    #[serde(default)]
    pub insecure: bool,
}

impl TlsProbe {
    /// A probe of `host:port` with the defaults (SNI = host, 14 days, system
    /// roots, verified).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        TlsProbe {
            host: host.into(),
            port,
            server_name: None,
            min_days: default_min_days(),
            ca_file: None,
            insecure: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        validate_host_port(&self.host, self.port)?;
        let name = self.server_name.as_deref().unwrap_or(&self.host);
        server_name(name).map_err(|e| SpecError::invalid("server_name", name, e))?;
        Ok(())
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|e| e.to_string())
}

/// The crypto provider used by every TLS connection of this crate (ring,
/// explicitly: the workspace links more than one provider, so rustls'
/// process default would be ambiguous).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trust anchors, loaded once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!("loading system certificates: {e}");
            }
            let (_added, _ignored) = store.add_parsable_certificates(found.certs);
            Arc::new(store)
        })
        .clone()
}

/// Accepts every certificate but records what the real verifier said and
/// the leaf certificate, so days left can be reported for untrusted chains.
/// Handshake signatures are still verified.
#[derive(Debug)]
struct Recording {
    inner: Result<Arc<WebPkiServerVerifier>, String>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default, Clone)]
struct Seen {
    leaf: Option<Vec<u8>>,
    trust: Option<Result<(), String>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let trust = match &self.inner {
            Ok(v) => v
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.leaf = Some(end_entity.as_ref().to_vec());
        seen.trust = Some(trust);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn recording_verifier(ca_file: Option<&std::path::Path>) -> Result<Arc<Recording>, String> {
    let provider = provider();
    let roots = match ca_file {
        Some(path) => {
            let mut store = RootCertStore::empty();
            for c in cert::read_pem_file(path)? {
                store.add(c).map_err(|e| {
                    format!("ca_file {}: unusable certificate: {e}", path.display())
                })?;
            }
            Arc::new(store)
        }
        None => system_roots(),
    };
    let inner = if roots.is_empty() {
        Err("no trusted root certificates on this system".to_string())
    } else {
        WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| e.to_string())
    };
    Ok(Arc::new(Recording {
        inner,
        algorithms: provider.signature_verification_algorithms,
        seen: Mutex::new(Seen::default()),
    }))
}

pub(crate) async fn run(p: &TlsProbe, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let deadline = start + timeout;
    let target = display_addr(&p.host, p.port);
    let name_text = p.server_name.as_deref().unwrap_or(&p.host);
    let down = |msg: String| ProbeResult::down(start.elapsed(), msg);

    let name = match server_name(name_text) {
        Ok(n) => n,
        Err(e) => return down(format!("invalid server_name {name_text:?}: {e}")),
    };
    let verifier = match recording_verifier(p.ca_file.as_deref()) {
        Ok(v) => v,
        Err(e) => return down(e),
    };
    let config = match rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth(),
        Err(e) => return down(format!("TLS setup failed: {e}")),
    };
    let addrs = match resolve(&p.host, p.port, deadline).await {
        Ok(a) => a,
        Err(e) => return down(format!("expected a TLS handshake with {target}, got: {e}")),
    };
    let tcp = match connect(&addrs, deadline).await {
        Ok(s) => s,
        Err(e) => {
            return down(format!(
                "expected a TLS handshake with {target}, got no connection: {e}"
            ))
        }
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let left = deadline.saturating_duration_since(Instant::now());
    let handshake = tokio::time::timeout(left, connector.connect(name, tcp)).await;
    let latency = start.elapsed();
    let seen = verifier
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let handshake_error = match handshake {
        Ok(Ok(_stream)) => None,
        Ok(Err(e)) => Some(format!("TLS handshake with {target} failed: {e}")),
        Err(_) => Some(format!(
            "no TLS handshake with {target} within {}",
            human(timeout)
        )),
    };
    let Some(leaf) = seen.leaf else {
        let msg = handshake_error.unwrap_or_else(|| format!("{target} sent no certificate"));
        return ProbeResult::down(latency, msg);
    };
    let info = match cert::parse(&leaf) {
        Ok(i) => i,
        Err(e) => return ProbeResult::down(latency, format!("{target}: {e}")),
    };
    let days = info.days_left(cert::now());
    let result = judge(JudgeInput {
        target: &target,
        name: name_text,
        days,
        min_days: p.min_days,
        info: &info,
        trust: seen.trust.unwrap_or_else(|| Err("not verified".into())),
        insecure: p.insecure,
        handshake_error,
        latency,
    });
    result.with_cert_days(Some(days))
}

struct JudgeInput<'a> {
    target: &'a str,
    name: &'a str,
    days: f64,
    min_days: u32,
    info: &'a cert::CertInfo,
    trust: Result<(), String>,
    insecure: bool,
    handshake_error: Option<String>,
    latency: Duration,
}

fn judge(j: JudgeInput<'_>) -> ProbeResult {
    let expiry = cert::describe_days(j.days, j.info);
    if let Some(e) = j.handshake_error {
        return ProbeResult::down(j.latency, format!("{e}; {expiry}"));
    }
    let trust_note = match (&j.trust, j.insecure) {
        (Ok(()), _) => format!("certificate for {} trusted", j.name),
        (Err(e), true) => format!(
            "certificate for {} not trusted ({e}), allowed by insecure",
            j.name
        ),
        (Err(e), false) => {
            return ProbeResult::down(
                j.latency,
                format!(
                    "expected a trusted certificate for {} at {}, got: not trusted ({e}); {expiry}",
                    j.name, j.target
                ),
            )
        }
    };
    if j.days < f64::from(j.min_days) {
        return ProbeResult::down(
            j.latency,
            format!(
                "expected a certificate valid for at least {} days, got: {expiry}",
                j.min_days
            ),
        );
    }
    ProbeResult::up(j.latency, format!("{trust_note}, {expiry}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> cert::CertInfo {
        cert::CertInfo {
            not_after: 1_000_000,
        }
    }

    fn input(days: f64, trust: Result<(), String>, insecure: bool) -> ProbeResult {
        let info = info();
        judge(JudgeInput {
            target: "h:443",
            name: "h",
            days,
            min_days: 14,
            info: &info,
            trust,
            insecure,
            handshake_error: None,
            latency: Duration::ZERO,
        })
    }

    #[test]
    fn judgement_table() {
        assert!(input(30.0, Ok(()), false).up);
        let r = input(3.0, Ok(()), false);
        assert!(!r.up);
        assert!(
            r.message
                .contains("at least 14 days, got: certificate expires in 3.0 days"),
            "{}",
            r.message
        );
        let r = input(30.0, Err("UnknownIssuer".into()), false);
        assert!(!r.up);
        assert!(
            r.message.contains("not trusted (UnknownIssuer)"),
            "{}",
            r.message
        );
        let r = input(30.0, Err("UnknownIssuer".into()), true);
        assert!(r.up, "{}", r.message);
        assert!(r.message.contains("allowed by insecure"));
        assert!(!input(-1.0, Err("expired".into()), true).up);
    }

    #[test]
    fn validate_server_name() {
        let mut p = TlsProbe::new("127.0.0.1", 443);
        p.validate().unwrap();
        p.server_name = Some("bad name!".into());
        assert!(p.validate().is_err());
        p.server_name = Some("::1".into());
        p.validate().unwrap();
    }
}
