//! One request: authenticate, route, check access, talk to the store, log.

use std::{
    io,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bulwark_store::{ByteStream, ErrorKind, FileRef, FileType, Range, RepoPath, Store};
use bytes::Bytes;
use futures::TryStreamExt;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};

use crate::{
    acl::Policy,
    auth::{parse_basic, parse_bearer, secrets_equal, Htpasswd, RateLimiter, Verdict},
    config::{Access, HubConfig},
    metrics::{now_secs, rt, Metrics, RepoLabel, RequestLabels, StatusLabels},
    route::{self, Target},
    usage::{self, Refusal, Usage},
};

/// Response body: a whole buffer or a stream from the store.
pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;

const V2: &str = "application/vnd.x.restic.rest.v2";
const V1: &str = "application/vnd.x.restic.rest.v1";

/// Everything requests share. Its `Debug` names no secret (the metrics
/// token, the users' hashes and the plan's ping uuids stay out).
pub(crate) struct State {
    pub(crate) config: HubConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) htpasswd: Option<Htpasswd>,
    pub(crate) limiter: RateLimiter,
    pub(crate) policy: Policy,
    pub(crate) usage: Usage,
    pub(crate) metrics: Metrics,
    pub(crate) metrics_token: Option<Vec<u8>>,
    /// The control plane (None: not enabled; its paths answer 404).
    pub(crate) control: Option<Arc<crate::control::Control>>,
    /// Announces every stored snapshot file's repository (replication
    /// copies it soon after).
    pub(crate) uploads: tokio::sync::broadcast::Sender<bulwark_store::RepoPath>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("store", &self.store.describe())
            .field("htpasswd", &self.htpasswd)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("control", &self.control.is_some())
            .finish_non_exhaustive()
    }
}

/// The `method` label: one of a fixed set, whatever the client sent.
pub(crate) fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        _ => "other",
    }
}

/// A refusal: status and a one-line reason (sent as the body).
struct Fail(StatusCode, String);

impl Fail {
    fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        Self(status, msg.into())
    }
}

fn store_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidName | ErrorKind::HashMismatch | ErrorKind::Body => {
            StatusCode::BAD_REQUEST
        }
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists => StatusCode::FORBIDDEN,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorKind::NoSpace => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<bulwark_store::Error> for Fail {
    fn from(e: bulwark_store::Error) -> Self {
        let status = store_status(e.kind);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("store: {e}");
        }
        Fail(status, e.message)
    }
}

/// What the access log line reports.
#[derive(Default)]
struct Ctx {
    user: Option<String>,
    /// The request was authenticated (or no authentication is configured).
    authenticated: bool,
    bytes_in: u64,
    bytes_out: u64,
}

pub(crate) fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn stream(s: ByteStream) -> Body {
    StreamBody::new(s.map_ok(Frame::data)).boxed_unsync()
}

fn empty() -> Body {
    full(Bytes::new())
}

fn response(status: StatusCode, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}

fn fail_response(f: Fail) -> Response<Body> {
    let mut r = response(f.0, full(format!("{}\n", f.1)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if f.0 == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"restic\""),
        );
    }
    if f.0 == StatusCode::TOO_MANY_REQUESTS || f.0 == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(if f.0 == StatusCode::TOO_MANY_REQUESTS {
                "60"
            } else {
                "1"
            }),
        );
    }
    r
}

/// Handles one request; never fails (errors become statuses).
pub(crate) async fn handle(
    state: Arc<State>,
    peer: IpAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if crate::control::claims(&path) {
        let resp = crate::control::handle(&state, peer, req).await;
        let status = resp.status().as_u16();
        let elapsed = start.elapsed();
        state
            .metrics
            .requests
            .get_or_create(&StatusLabels {
                repo: String::new(),
                method: method_label(&method).to_owned(),
                code: status.to_string(),
            })
            .inc();
        tracing::info!(
            target: "bulwark_hub::access",
            method = %method,
            path = %crate::control::log_path(&path),
            status,
            duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "control request"
        );
        return resp;
    }
    let target = route::parse(&path);
    let repo = target.as_ref().ok().and_then(Target::repo).cloned();
    let mut ctx = Ctx::default();
    let resp = match respond(&state, peer, req, target, &mut ctx).await {
        Ok(r) => r,
        Err(f) => fail_response(f),
    };
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    // Labels only for authenticated requests to repositories that exist:
    // junk from anyone must not create series.
    let repo_label = repo
        .filter(|r| ctx.authenticated && state.usage.known(r))
        .map(|r| r.to_string())
        .unwrap_or_default();
    let m = &state.metrics;
    m.requests
        .get_or_create(&StatusLabels {
            repo: repo_label.clone(),
            method: method_label(&method).to_owned(),
            code: status.to_string(),
        })
        .inc();
    m.latency
        .get_or_create(&RequestLabels {
            repo: repo_label.clone(),
            method: method_label(&method).to_owned(),
        })
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "bulwark_hub::access",
        user = ctx.user.as_deref().unwrap_or("-"),
        repo = %repo_label,
        method = %method,
        path = %path,
        status,
        bytes_in = ctx.bytes_in,
        bytes_out = ctx.bytes_out,
        duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    resp
}

/// Who is asking.
enum Who {
    Anonymous,
    User(String),
}

impl Who {
    fn name(&self) -> Option<&str> {
        match self {
            Who::Anonymous => None,
            Who::User(u) => Some(u),
        }
    }
}

fn too_many_failures() -> Fail {
    Fail::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed authentications from this address; try again in a minute",
    )
}

/// Records a failed authentication (metrics and the per-source limiter).
/// `repo`: the addressed repository, used as a label only if it exists.
pub(crate) fn auth_failed(state: &State, peer: IpAddr, repo: Option<&RepoPath>) {
    let repo = repo
        .filter(|r| state.usage.known(r))
        .map(ToString::to_string)
        .unwrap_or_default();
    state
        .metrics
        .auth_failures
        .get_or_create(&RepoLabel { repo })
        .inc();
    if state.limiter.failed(peer) {
        tracing::warn!("too many failed authentications from {peer}; refusing it for a while");
    }
}

async fn authenticate(
    state: &State,
    peer: IpAddr,
    headers: &HeaderMap,
    repo: Option<&RepoPath>,
) -> Result<Who, Fail> {
    if state.config.no_auth {
        return Ok(Who::Anonymous);
    }
    if state.limiter.blocked(peer) {
        return Err(too_many_failures());
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Fail::new(
            StatusCode::UNAUTHORIZED,
            "authentication required",
        ));
    };
    let creds = parse_basic(value.as_bytes());
    let verdict = match (&creds, &state.htpasswd) {
        (Some(c), Some(h)) => h.check(c).await,
        _ => Verdict::Invalid,
    };
    match creds {
        Some(c) if verdict == Verdict::Valid => Ok(Who::User(c.user)),
        _ if verdict == Verdict::Busy => Err(Fail::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the hub is checking the most passwords it checks at once ({}); try again in a moment",
                state.htpasswd.as_ref().map_or(0, Htpasswd::max_checks)
            ),
        )),
        _ => {
            auth_failed(state, peer, repo);
            Err(Fail::new(
                StatusCode::UNAUTHORIZED,
                "wrong user name or password",
            ))
        }
    }
}

async fn metrics_allowed(
    state: &State,
    peer: IpAddr,
    headers: &HeaderMap,
    ctx: &mut Ctx,
) -> Result<(), Fail> {
    let mauth = &state.config.metrics;
    if state.config.no_auth || mauth.public {
        return Ok(());
    }
    if let (Some(token), Some(value)) = (&state.metrics_token, headers.get(header::AUTHORIZATION)) {
        if let Some(given) = parse_bearer(value.as_bytes()) {
            // limited like every other way in
            if state.limiter.blocked(peer) {
                return Err(too_many_failures());
            }
            if secrets_equal(given, token) {
                ctx.user = Some("(token)".into());
                return Ok(());
            }
            auth_failed(state, peer, None);
            return Err(Fail::new(StatusCode::UNAUTHORIZED, "wrong token"));
        }
    }
    let who = authenticate(state, peer, headers, None).await?;
    let name = who.name().unwrap_or_default().to_owned();
    ctx.user = Some(name.clone());
    if mauth.users.contains(&name) {
        Ok(())
    } else {
        Err(Fail::new(
            StatusCode::FORBIDDEN,
            "this user may not read metrics",
        ))
    }
}

fn require(state: &State, who: &Who, repo: &RepoPath, need: Access) -> Result<(), Fail> {
    let have = state.policy.access(who.name(), repo);
    if have >= need {
        Ok(())
    } else if have == Access::None {
        Err(Fail::new(
            StatusCode::FORBIDDEN,
            format!("no access to repository {repo}"),
        ))
    } else {
        Err(Fail::new(
            StatusCode::FORBIDDEN,
            format!("{have} access to {repo} does not allow this"),
        ))
    }
}

async fn respond(
    state: &Arc<State>,
    peer: IpAddr,
    req: Request<Incoming>,
    target: Result<Target, route::BadPath>,
    ctx: &mut Ctx,
) -> Result<Response<Body>, Fail> {
    let method = req.method().clone();
    if matches!(target, Ok(Target::Metrics)) {
        if method != Method::GET && method != Method::HEAD {
            return Err(Fail::new(StatusCode::METHOD_NOT_ALLOWED, "only GET"));
        }
        metrics_allowed(state, peer, req.headers(), ctx).await?;
        ctx.authenticated = true;
        // statvfs and /proc reads: off the async runtime
        let st = Arc::clone(state);
        let text =
            tokio::task::spawn_blocking(move || st.metrics.render(&st.usage, &st.config.data))
                .await
                .map_err(|e| {
                    Fail::new(StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}"))
                })?;
        let mut r = response(StatusCode::OK, full(text));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        return Ok(r);
    }
    // Authenticate before saying anything about the path.
    let repo = target.as_ref().ok().and_then(Target::repo);
    let who = authenticate(state, peer, req.headers(), repo).await?;
    ctx.authenticated = true;
    ctx.user = who.name().map(str::to_owned);
    let target = target.map_err(|e| Fail::new(StatusCode::BAD_REQUEST, e.0))?;
    let v2 = req.headers().get_all(header::ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|p| p.trim().starts_with(V2)))
    });

    match (target, method) {
        (Target::Metrics, _) => Err(Fail::new(StatusCode::NOT_FOUND, "not found")),
        (Target::Repo(repo), Method::POST) => {
            let create = req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "create=true"));
            if !create {
                return Err(Fail::new(
                    StatusCode::BAD_REQUEST,
                    "POST to a repository needs ?create=true",
                ));
            }
            require(state, &who, &repo, Access::Append)?;
            state.store.create_repo(&repo).await?;
            ensure_counted(state, &repo).await;
            tracing::info!("repository {repo} created (or already there)");
            Ok(response(StatusCode::OK, empty()))
        }
        (Target::Repo(repo), Method::DELETE) => {
            require(state, &who, &repo, Access::Modify)?;
            Err(Fail::new(
                StatusCode::NOT_IMPLEMENTED,
                "deleting a repository is not supported",
            ))
        }
        (Target::Repo(_), _) => Err(Fail::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        )),
        (Target::Config(repo), m) => {
            let need = if m == Method::DELETE {
                Access::Modify
            } else if m == Method::POST {
                Access::Append
            } else {
                Access::Read
            };
            require(state, &who, &repo, need)?;
            file_op(state, req, repo, FileRef::Config, ctx).await
        }
        (Target::List(repo, tpe), Method::GET) => {
            require(state, &who, &repo, Access::Read)?;
            let mut entries = state.store.list(&repo, tpe).await?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let json = if v2 {
                let v: Vec<_> = entries
                    .iter()
                    .map(|e| serde_json::json!({"name": e.name.as_str(), "size": e.size}))
                    .collect();
                serde_json::to_vec(&v)
            } else {
                serde_json::to_vec(&entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>())
            }
            .map_err(|e| Fail::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            ctx.bytes_out = json.len() as u64;
            let mut r = response(StatusCode::OK, full(json));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if v2 { V2 } else { V1 }),
            );
            Ok(r)
        }
        (Target::List(..), _) => Err(Fail::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        )),
        (Target::File(repo, tpe, name), m) => {
            let need = match m {
                Method::DELETE if tpe == FileType::Locks => Access::Append,
                Method::DELETE => Access::Modify,
                Method::POST => Access::Append,
                _ => Access::Read,
            };
            require(state, &who, &repo, need)?;
            file_op(state, req, repo, FileRef::Named(tpe, name), ctx).await
        }
    }
}

/// Counts a repository's usage if it is not counted yet (a repository
/// created outside the hub after it started).
async fn ensure_counted(state: &State, repo: &RepoPath) {
    if state.usage.known(repo) {
        return;
    }
    match usage::count(state.store.as_ref(), repo).await {
        Ok(u) => state.usage.insert(repo.clone(), u),
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot count the usage of {repo}: {e}"),
    }
}

/// Parses `Range: bytes=a-b` (also `a-` and `-n`) against a file of `size`
/// bytes. `Ok(None)`: no (usable) range, serve everything; `Err`: 416.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let Some(spec) = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: not supported, serve the whole file
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (false, true) => (num(a).ok_or(())?, size.saturating_sub(1)),
        (false, false) => {
            let (s, e) = (num(a).ok_or(())?, num(b).ok_or(())?);
            if e < s {
                return Err(());
            }
            (s, e.min(size.saturating_sub(1)))
        }
        (true, false) => {
            let n = num(b).ok_or(())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (true, true) => return Err(()),
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, Fail> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| Fail::new(StatusCode::BAD_REQUEST, "bad Content-Length")),
    }
}

/// The request body as a store stream, failing if the client stalls for
/// longer than `idle` between two chunks.
fn upload_stream(body: Incoming, idle: Duration) -> ByteStream {
    Box::pin(futures::stream::unfold(Some(body), move |st| async move {
        let mut body = st?;
        loop {
            match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => {
                    let e = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no data from the client for {}s", idle.as_secs()),
                    );
                    return Some((Err(e), None));
                }
                Ok(None) => return None,
                Ok(Some(Err(e))) => return Some((Err(io::Error::other(e)), None)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), Some(body)));
                    }
                    // trailers: ignore
                }
            }
        }
    }))
}

fn type_label(file: &FileRef) -> &'static str {
    usage::SLOT_NAMES[usage::slot(file)]
}

async fn file_op(
    state: &State,
    req: Request<Incoming>,
    repo: RepoPath,
    file: FileRef,
    ctx: &mut Ctx,
) -> Result<Response<Body>, Fail> {
    let store = state.store.as_ref();
    let repo_s = repo.to_string();
    let labels = rt(&repo_s, type_label(&file));
    match *req.method() {
        Method::HEAD => {
            let size = store.stat(&repo, &file).await?.ok_or_else(|| {
                Fail::new(StatusCode::NOT_FOUND, format!("{repo}/{file} not found"))
            })?;
            let mut r = response(StatusCode::OK, empty());
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            r.headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            Ok(r)
        }
        Method::GET => {
            let size = store.stat(&repo, &file).await?.ok_or_else(|| {
                Fail::new(StatusCode::NOT_FOUND, format!("{repo}/{file} not found"))
            })?;
            let range = match parse_range(req.headers(), size) {
                Ok(r) => r,
                Err(()) => {
                    let mut r = fail_response(Fail::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "range not satisfiable",
                    ));
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        r.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return Ok(r);
                }
            };
            let (status, store_range, len) = match range {
                Some((a, b)) => (
                    StatusCode::PARTIAL_CONTENT,
                    Range {
                        offset: a,
                        length: Some(b - a + 1),
                    },
                    b - a + 1,
                ),
                None => (StatusCode::OK, Range::default(), size),
            };
            let body = store.load(&repo, &file, store_range).await?;
            let mut r = response(status, stream(body));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Some((a, b)) = range {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            ctx.bytes_out = len;
            state.metrics.reads.get_or_create(&labels).inc();
            state.metrics.read_bytes.get_or_create(&labels).inc_by(len);
            Ok(r)
        }
        Method::POST => {
            let announced = content_length(req.headers())?;
            let max_file = state.config.max_file_size;
            if announced.is_some_and(|n| n > max_file) {
                return Err(Fail::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("files are limited to {max_file} bytes"),
                ));
            }
            if !state.store.repo_exists(&repo).await? {
                return Err(Fail::new(
                    StatusCode::NOT_FOUND,
                    format!("repository {repo} does not exist"),
                ));
            }
            ensure_counted(state, &repo).await;
            let grant = state.usage.begin(&repo, announced).map_err(|r| match r {
                Refusal::Quota => Fail::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!("the quota of {repo} would be exceeded"),
                ),
                Refusal::MaxSize => Fail::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "the hub's data directory is full (max-size)",
                ),
            })?;
            let limit = grant.limit.min(max_file);
            let body = upload_stream(req.into_body(), state.config.body_idle_timeout);
            let result = store.save(&repo, &file, body, limit).await;
            let slot = usage::slot(&file);
            state
                .usage
                .end(&repo, grant, result.as_ref().ok().map(|n| (slot, *n)));
            match result {
                Ok(n) => {
                    ctx.bytes_in = n;
                    state.metrics.writes.get_or_create(&labels).inc();
                    state.metrics.write_bytes.get_or_create(&labels).inc_by(n);
                    if matches!(file, FileRef::Named(FileType::Snapshots, _)) {
                        state
                            .metrics
                            .last_snapshot
                            .get_or_create(&RepoLabel { repo: repo_s })
                            .set(now_secs());
                        // no receiver (replication off) is fine
                        let _ = state.uploads.send(repo.clone());
                    }
                    Ok(response(StatusCode::OK, empty()))
                }
                Err(e) if e.kind == ErrorKind::TooLarge && grant.limit < max_file => {
                    Err(Fail::new(
                        StatusCode::INSUFFICIENT_STORAGE,
                        format!("the quota of {repo} (or the hub's max-size) would be exceeded"),
                    ))
                }
                Err(e) => Err(e.into()),
            }
        }
        Method::DELETE => {
            let size = store.stat(&repo, &file).await?.ok_or_else(|| {
                Fail::new(StatusCode::NOT_FOUND, format!("{repo}/{file} not found"))
            })?;
            store.delete(&repo, &file).await?;
            state.usage.deleted(&repo, usage::slot(&file), size);
            state.metrics.deletes.get_or_create(&labels).inc();
            state
                .metrics
                .delete_bytes
                .get_or_create(&labels)
                .inc_by(size);
            tracing::info!("deleted {repo}/{file}");
            Ok(response(StatusCode::OK, empty()))
        }
        _ => Err(Fail::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(range: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::RANGE, HeaderValue::from_str(range).expect("header"));
        m
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(parse_range(&h("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(parse_range(&h("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(&h("bytes=5-100"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(&h("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(&h("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(&h("bytes=4-2"), 10), Err(()));
        assert_eq!(parse_range(&h("bytes=x-2"), 10), Err(()));
        assert_eq!(parse_range(&h("bytes=0-1,3-4"), 10), Ok(None));
        assert_eq!(parse_range(&h("items=0-1"), 10), Ok(None));
    }
}
