//! The accept loop: TCP (or TLS) connections served by hyper's HTTP/1.1
//! with header-read timeouts and a header-count limit; graceful shutdown.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use bulwark_store::{local::LocalStore, Store};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::net::TcpListener;

use crate::{
    acl::Policy,
    auth::{Htpasswd, RateLimiter},
    config::{HubConfig, TlsFiles},
    handler::{self, State},
    metrics::Metrics,
    scrub,
    usage::{self, Usage},
    HubError,
};

/// A hub ready to serve: settings checked, users loaded, usage counted.
#[derive(Clone)]
pub struct Hub {
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("store", &self.state.store.describe())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

fn load_tls(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, HubError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| HubError::Tls(format!("certificate {}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(HubError::Tls(format!(
            "{} holds no certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| HubError::Tls(format!("key {}: {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| HubError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| HubError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn read_token(path: &Path) -> Result<Vec<u8>, HubError> {
    let text = std::fs::read(path).map_err(|source| HubError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim_ascii().to_vec();
    if token.is_empty() {
        return Err(HubError::BadFile {
            path: path.to_path_buf(),
            message: "the metrics token file is empty".into(),
        });
    }
    Ok(token)
}

impl Hub {
    /// Opens the data directory as a [`LocalStore`] and prepares the hub.
    pub async fn new(config: HubConfig) -> Result<Self, HubError> {
        let store = LocalStore::new(&config.data)?;
        Self::with_store(config, Arc::new(store)).await
    }

    /// Prepares a hub over any store: loads the htpasswd file (unless
    /// `no_auth`), the TLS files and the metrics token, and counts the usage
    /// of every repository once.
    pub async fn with_store(config: HubConfig, store: Arc<dyn Store>) -> Result<Self, HubError> {
        let htpasswd = if config.no_auth {
            None
        } else {
            let path = config.htpasswd_path();
            if !path.exists() {
                return Err(HubError::Config(format!(
                    "no htpasswd file at {} (create one with `bulwark hub passwd {} USER`, or pass --no-auth)",
                    path.display(),
                    path.display()
                )));
            }
            Some(Htpasswd::open(path, config.max_auth_checks)?)
        };
        let tls = config.tls.as_ref().map(load_tls).transpose()?;
        let metrics_token = config
            .metrics
            .token_file
            .as_deref()
            .map(read_token)
            .transpose()?;
        let usage = Usage::new(config.quotas.clone(), config.max_size);
        let metrics = Metrics::new();
        for repo in store.list_repos().await? {
            let u = usage::count(store.as_ref(), &repo).await?;
            // freshness survives a restart: the newest stored snapshot file
            if let Ok(Some(t)) = store
                .newest(&repo, bulwark_store::FileType::Snapshots)
                .await
            {
                if let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) {
                    metrics
                        .last_snapshot
                        .get_or_create(&crate::metrics::RepoLabel {
                            repo: repo.to_string(),
                        })
                        .set(d.as_secs_f64());
                }
            }
            usage.insert(repo, u);
        }
        let control = match &config.control {
            Some(cc) => Some(Arc::new(
                crate::control::Control::open(cc)
                    .await
                    .map_err(|e| HubError::Control(e.to_string()))?,
            )),
            None => None,
        };
        let state = State {
            control,
            policy: Policy::new(&config),
            limiter: RateLimiter::new(config.auth_failure_limit),
            metrics,
            htpasswd,
            usage,
            store,
            metrics_token,
            config,
            uploads: tokio::sync::broadcast::channel(1024).0,
        };
        Ok(Self {
            state: Arc::new(state),
            tls,
        })
    }

    /// Serves connections from `listener` until `shutdown` completes, then
    /// stops accepting, lets requests in flight finish (at most
    /// [`HubConfig::shutdown_grace`]) and returns.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), HubError> {
        let state = self.state;
        let local = listener.local_addr()?;
        if self.tls.is_none() && !local.ip().is_loopback() {
            tracing::warn!("{}", plain_http_warning(local));
        }
        tracing::info!(
            "hub listening on {}://{local}, storing in {} ({} repositories)",
            if self.tls.is_some() { "https" } else { "http" },
            state.store.describe(),
            state.usage.snapshot().len()
        );
        let scrubber = state
            .config
            .scrub_interval
            .filter(|d| !d.is_zero())
            .map(|d| tokio::spawn(scrub::schedule(Arc::clone(&state), d)));
        let background = state
            .control
            .as_ref()
            .map(|c| tokio::spawn(Arc::clone(c).background()));
        let replication = match (
            &state.control,
            state
                .config
                .control
                .as_ref()
                .and_then(|c| c.replication.clone()),
        ) {
            (Some(ctl), Some(settings)) => {
                let r = crate::replication::Replication::new(
                    Arc::clone(&state),
                    Arc::clone(ctl),
                    settings,
                );
                ctl.set_replication(&r);
                Some(tokio::spawn(r.run()))
            }
            _ => None,
        };
        let monitoring = match (
            &state.control,
            state
                .config
                .control
                .as_ref()
                .and_then(|c| c.monitoring.clone()),
        ) {
            (Some(ctl), Some(settings)) => {
                let m = crate::monitoring::Monitoring::open(
                    Arc::clone(&state),
                    Arc::clone(ctl),
                    settings,
                )
                .await;
                Some(tokio::spawn(m.run()))
            }
            _ => None,
        };
        if state.control.is_some() {
            tracing::info!(
                "control API on {}, state in {}",
                bulwark_api::PREFIX,
                c_state_dir(&state.config)
            );
        }
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(state.config.header_read_timeout)
            .max_headers(state.config.max_headers)
            .keep_alive(true);
        let mut busy_http = http.clone();
        busy_http.keep_alive(false);
        let max_conns = state.config.max_connections.max(1);
        let conns = Arc::new(tokio::sync::Semaphore::new(max_conns));
        // connections being turned away (a 503 each) are capped as well;
        // beyond that they are closed at once
        let turning_away = Arc::new(tokio::sync::Semaphore::new(64));
        let mut last_busy_log: Option<std::time::Instant> = None;
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (socket, peer) = tokio::select! {
                res = listener.accept() => match res {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and the like: don't spin.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = socket.set_nodelay(true);
            let Ok(permit) = Arc::clone(&conns).try_acquire_owned() else {
                if last_busy_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    last_busy_log = Some(std::time::Instant::now());
                    tracing::warn!(
                        "serving the most connections allowed ({max_conns}); turning new ones away with 503 (raise max_connections in [hub] or --max-connections if this is legitimate load)"
                    );
                }
                let Ok(slot) = Arc::clone(&turning_away).try_acquire_owned() else {
                    drop(socket);
                    continue;
                };
                let http = busy_http.clone();
                let tls = self.tls.clone();
                let handshake_timeout = state.config.header_read_timeout;
                tokio::spawn(async move {
                    let _slot = slot;
                    let svc = hyper::service::service_fn(move |_req| async move {
                        Ok::<_, std::convert::Infallible>(busy_response(max_conns))
                    });
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(socket), svc).await;
                        }
                        Some(acceptor) => {
                            if let Ok(Ok(s)) =
                                tokio::time::timeout(handshake_timeout, acceptor.accept(socket))
                                    .await
                            {
                                let _ = http.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                    }
                });
                continue;
            };
            let state = Arc::clone(&state);
            let http = http.clone();
            let watcher = graceful.watcher();
            let tls = self.tls.clone();
            let handshake_timeout = state.config.header_read_timeout;
            tokio::spawn(async move {
                let _permit = permit;
                let svc = service(Arc::clone(&state), peer);
                match tls {
                    None => {
                        let conn = http.serve_connection(TokioIo::new(socket), svc);
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!("connection from {peer}: {e}");
                        }
                    }
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(handshake_timeout, acceptor.accept(socket))
                                .await
                            {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!("TLS handshake with {peer}: {e}");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!("TLS handshake with {peer} timed out");
                                    return;
                                }
                            };
                        let conn = http.serve_connection(TokioIo::new(stream), svc);
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!("connection from {peer}: {e}");
                        }
                    }
                }
            });
        }
        drop(listener);
        if let Some(s) = scrubber {
            s.abort();
        }
        if let Some(b) = background {
            b.abort();
        }
        if let Some(m) = monitoring {
            // queued notices stay in the outbox for the next start
            m.abort();
        }
        if let Some(r) = replication {
            // copies in flight stop here; stores write atomically, so the
            // next pass copies just what is still missing
            r.abort();
        }
        if let Some(c) = &state.control {
            // open long-polls answer now instead of holding shutdown up
            c.shut_down();
        }
        tracing::info!("shutting down: waiting for requests in flight");
        let grace = state.config.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "requests still running after {}s; stopping anyway",
                grace.as_secs()
            );
        }
        tracing::info!("hub stopped");
        Ok(())
    }

    /// Runs one scrub of every repository now and publishes the result in
    /// the metrics (what the schedule does).
    pub async fn scrub_now(&self) {
        scrub::scrub_once(&self.state).await;
    }
}

/// The start-up warning for plain HTTP on an address other hosts reach.
pub(crate) fn plain_http_warning(local: SocketAddr) -> String {
    format!(
        "serving plain HTTP on {local}, which is not a loopback address: passwords, tokens and the agents' configuration cross the network readable and alterable by anyone on the path; serve HTTPS (tls_cert/tls_key in [hub], or --tls-cert/--tls-key), or listen on 127.0.0.1 behind a TLS proxy, or only on a WireGuard/Tailscale address"
    )
}

/// The answer on a connection over the cap.
fn busy_response(max: usize) -> http::Response<handler::Body> {
    let body = format!(
        "the hub is serving the most connections it allows at once ({max}); try again shortly (an administrator can raise max_connections in [hub] or --max-connections)\n"
    );
    let mut r = http::Response::new(handler::full(body));
    *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("5"),
    );
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}

fn c_state_dir(config: &HubConfig) -> String {
    config
        .control
        .as_ref()
        .map(|c| c.state_dir.display().to_string())
        .unwrap_or_default()
}

fn service(
    state: Arc<State>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<handler::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<handler::Body>, std::convert::Infallible>>
                 + Send,
> + Clone {
    hyper::service::service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { Ok(handler::handle(state, peer.ip(), req).await) }
    })
}

/// Serves the hub over the local directory `config.data` on `listener`
/// until `shutdown` completes (see [`Hub::run`]).
pub async fn serve(
    listener: TcpListener,
    config: HubConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HubError> {
    Hub::new(config).await?.run(listener, shutdown).await
}
