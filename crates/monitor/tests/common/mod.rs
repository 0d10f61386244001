//! Test helpers: a small HTTP(S) server on 127.0.0.1 and certificates made
//! with rcgen.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The routes of the test server:
/// `/ok` 200, `/fail` 500, `/slow/<ms>` 200 after a delay, `/json` a JSON
/// document, `/redirect` 302 → `/ok`, `/header` echoes `x-probe`, `/method`
/// echoes the method, `/hang` never answers.
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let reply = |status: u16, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        r
    };
    let resp = match path.as_str() {
        "/ok" => reply(200, "all good: ready\n".into()),
        "/fail" => reply(500, "boom\n".into()),
        "/json" => {
            let mut r = reply(
                200,
                r#"{"status":"ok","checks":{"db":true,"disk":"degraded"},"count":3}"#.into(),
            );
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r
        }
        "/redirect" => {
            let mut r = reply(302, String::new());
            r.headers_mut().insert("location", "/ok".parse().unwrap());
            r
        }
        "/header" => {
            let v = req
                .headers()
                .get("x-probe")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string();
            reply(200, format!("x-probe={v}"))
        }
        "/method" => reply(200, format!("method={}", req.method())),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            reply(200, String::new())
        }
        p if p.starts_with("/slow/") => {
            let ms: u64 = p["/slow/".len()..].parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(200, "slow but fine\n".into())
        }
        _ => reply(404, "not found\n".into()),
    };
    Ok(resp)
}

/// Starts the test server on 127.0.0.1 (plain HTTP, or TLS with `tls`);
/// it runs until the test's runtime ends.
pub async fn serve(tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                let http = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        // A client that refuses our certificate ends the
                        // handshake: nothing to serve then.
                        if let Ok(tls) = acceptor.accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    });
    addr
}

/// A test CA and certificates it (or nobody) signs.
pub struct Pki {
    ca_params: CertificateParams,
    ca_key: KeyPair,
    /// The CA certificate as PEM, written to `ca_file`.
    pub ca_file: PathBuf,
}

/// A server certificate and its key, ready for rustls.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ServerCert {
    /// A rustls server config presenting this certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .unwrap();
        Arc::new(config)
    }
}

fn leaf_params(names: &[&str], valid_from_days: i64, valid_until_days: i64) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("test"));
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(valid_from_days);
    p.not_after = now + time::Duration::days(valid_until_days);
    p
}

impl Pki {
    /// A new CA; its certificate is written to `dir/ca.pem`.
    pub fn new(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Bulwark Test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        ca_params.not_before = now - time::Duration::days(30);
        ca_params.not_after = now + time::Duration::days(3650);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        Pki {
            ca_params,
            ca_key,
            ca_file,
        }
    }

    /// A leaf for `names` signed by the CA, valid from `from` to `until`
    /// days from now (negative = in the past).
    pub fn leaf(&self, names: &[&str], from: i64, until: i64) -> ServerCert {
        let key = KeyPair::generate().unwrap();
        let params = leaf_params(names, from, until);
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        ServerCert {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

/// A self-signed leaf (trusted by nobody).
pub fn self_signed(names: &[&str], until: i64) -> ServerCert {
    let key = KeyPair::generate().unwrap();
    let params = leaf_params(names, -1, until);
    let cert = params.self_signed(&key).unwrap();
    ServerCert {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// Asserts `days` is within half a day of `want`.
pub fn assert_days(days: Option<f64>, want: f64) {
    let d = days.expect("cert_days_left should be reported");
    assert!(
        (d - want).abs() < 0.5,
        "cert_days_left {d}, expected about {want}"
    );
}
