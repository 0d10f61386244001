//! A client of restic's REST protocol: repositories on a peer Bulwark hub, a
//! restic `rest-server`, or `rclone serve restic`.
//!
//! A [`RestStore`] has a base URL such as `https://hub.example:8000/`; the
//! repository `nas/main` lives at `{base}/nas/main/` and its files at
//! `{base}/nas/main/config` and `{base}/nas/main/{type}/{name}` (restic's
//! REST layout, every path segment percent-encoded). Requests:
//!
//! | operation       | request                                                     |
//! |-----------------|-------------------------------------------------------------|
//! | `create_repo`   | `POST {repo}/?create=true`                                  |
//! | `repo_exists`   | `HEAD {repo}/config`, else `GET {repo}/keys/` (404 = absent) |
//! | `list`          | `GET {repo}/{type}/` with `Accept: application/vnd.x.restic.rest.v2` (v1 answers are stat'ed name by name) |
//! | `stat`          | `HEAD` (the `Content-Length` header)                        |
//! | `load`          | `GET`, with `Range: bytes=a-b` for partial reads (after a `HEAD` for the size) |
//! | `save`          | `HEAD` (exists: [`ErrorKind::AlreadyExists`]), then a streamed `POST` |
//! | `delete`        | `DELETE`                                                    |
//!
//! **Saving** streams the body (chunked transfer encoding, nothing is
//! buffered) while counting and hashing it. Servers differ in what they
//! check (`rclone serve restic` verifies no hashes, and overwrites), so the
//! client enforces the [`Store`] contract itself: if the body fails, grows
//! past `max_len` or does not hash to the file's name, the request is
//! aborted *before* its final chunk, so the server sees a truncated upload
//! and stores nothing. Overwrites are refused by a `HEAD` before the upload;
//! two racing uploads of the same name can both pass it, and then the
//! server decides (the hub and an append-only rest-server answer 403, which
//! maps to [`ErrorKind::AlreadyExists`]; others store identical, verified
//! bytes twice, which is harmless).
//!
//! **Status codes** map to [`ErrorKind`]s: 404 → `NotFound`; 403 on a save →
//! `AlreadyExists` (what the hub and append-only servers answer for an
//! existing file); 400 on a save → `HashMismatch` (the server's own hash
//! check); 413 → `TooLarge`; 416 → `RangeNotSatisfiable`; 507 → `NoSpace`;
//! everything else (401/403 refusals, 5xx, network errors, timeouts) →
//! [`ErrorKind::Io`] with a message naming the status. The enum has no
//! "permission denied" kind, so authentication failures are `Io` too:
//! callers that retry `Io` should cap their retries.
//!
//! **Limits of the protocol:** it cannot list repositories, so
//! [`Store::list_repos`] fails with [`ErrorKind::Io`]; `repo_exists` needs a
//! server that answers 404 for a missing repository's listing (the hub and
//! rest-server do; `rclone serve restic` answers an empty list, so there
//! every repository "exists").
//!
//! Credentials (HTTP basic auth, from the URL's userinfo or given
//! separately) are sent only as an `Authorization` header; they never
//! appear in [`RestStore::describe`], `Debug` or error messages. Redirects
//! are not followed. Connecting times out after 10 s, and a response that
//! stalls for 60 s between reads fails; retries are the caller's job.

use std::{
    fmt,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::{
    util::{already_exists, body_error, hash_mismatch, not_found, resolve_range, too_large},
    ByteStream, Entry, Error, ErrorKind, FileRef, FileType, Name, Range, RepoPath, Result, Store,
};

/// restic's v2 listing media type (names with sizes).
const V2: &str = "application/vnd.x.restic.rest.v2";
/// Time allowed to establish a connection (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between two reads of a response.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this much of a server's error text goes into a message.
const MAX_SERVER_TEXT: usize = 200;
/// At most this much of an error response's body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest listing accepted from a server: 256 MiB is about 2.8 million
/// v2 entries (`{"name":"<64 hex>","size":N}`), far beyond any real
/// repository's `data/`; a larger answer is refused rather than buffered.
pub const MAX_LISTING_BYTES: usize = 256 << 20;

/// Reads `resp`'s body, at most `max` bytes: `Ok(Err(()))` when it is longer
/// (what was read so far is dropped).
async fn read_capped(
    mut resp: Response,
    max: usize,
) -> std::result::Result<std::result::Result<Vec<u8>, ()>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() + chunk.len() > max {
            return Ok(Err(()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Ok(out))
}

/// Characters escaped in a path segment: all but unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// HTTP basic-auth credentials; `Debug` never shows them.
#[derive(Clone)]
struct Credentials {
    user: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// Repositories on a restic REST server (see the [module docs](self)).
#[derive(Clone)]
pub struct RestStore {
    client: reqwest::Client,
    /// Base URL without userinfo, ending in `/`.
    base: Url,
    auth: Option<Credentials>,
}

impl fmt::Debug for RestStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestStore")
            .field("base", &self.base.as_str())
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A list entry of a v2 listing.
#[derive(serde::Deserialize)]
struct V2Entry {
    name: String,
    size: u64,
}

/// Where a save's body stream failed, for the error after the aborted request.
type Failure = Arc<Mutex<Option<Error>>>;

impl RestStore {
    /// A store for the REST server at `base_url` (`http://` or `https://`,
    /// optionally with a path prefix). Basic-auth credentials come from
    /// `auth` or else from the URL's userinfo (`https://user:pass@host/`);
    /// `ca_file` adds PEM certificates to the trusted roots (for a hub with
    /// a private CA). No request is made here.
    pub fn new(
        base_url: &str,
        auth: Option<(String, String)>,
        ca_file: Option<&Path>,
    ) -> Result<Self> {
        // The URL may hold a password: it is never quoted in errors.
        let mut base = Url::parse(base_url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidName,
                format!("invalid REST server URL (not shown, it may contain credentials): {e}"),
            )
        })?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err(Error::new(
                ErrorKind::InvalidName,
                "a REST server URL must start with http:// or https://",
            ));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                "a REST server URL needs a host",
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(Error::new(
                ErrorKind::InvalidName,
                "a REST server URL must not have a query or fragment",
            ));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let from_url =
            (!base.username().is_empty() || base.password().is_some()).then(|| Credentials {
                user: decode(base.username()),
                password: decode(base.password().unwrap_or("")),
            });
        let auth = auth
            .map(|(user, password)| Credentials { user, password })
            .or(from_url);
        // Dropping the userinfo cannot fail for an http(s) URL with a host.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }

        // one TLS crypto provider (ring) for the process
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bulwark/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("reading the CA file {}: {e}", path.display()),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidName,
                    format!("the CA file {} is not PEM: {e}", path.display()),
                )
            })?;
            if certs.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidName,
                    format!("the CA file {} holds no certificate", path.display()),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("setting up the HTTP client for {base}: {}", chain(&e)),
            )
        })?;
        Ok(Self { client, base, auth })
    }

    /// The URL of `segments` under the base (`dir`: with a trailing `/`).
    fn url(&self, segments: &[&str], dir: bool) -> String {
        let mut s = self.base.as_str().to_owned();
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                s.push('/');
            }
            s.extend(utf8_percent_encode(seg, SEGMENT));
        }
        if dir {
            s.push('/');
        }
        s
    }

    fn repo_url(&self, repo: &RepoPath, tail: &[&str], dir: bool) -> String {
        let segs: Vec<&str> = repo
            .segments()
            .iter()
            .map(String::as_str)
            .chain(tail.iter().copied())
            .collect();
        self.url(&segs, dir)
    }

    fn file_url(&self, repo: &RepoPath, file: &FileRef) -> String {
        match file {
            FileRef::Config => self.repo_url(repo, &["config"], false),
            FileRef::Named(tpe, name) => self.repo_url(repo, &[tpe.as_str(), name.as_str()], false),
        }
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let req = self.client.request(method, url);
        match &self.auth {
            Some(c) => req.basic_auth(&c.user, Some(&c.password)),
            None => req,
        }
    }

    /// Sends `req`; a transport failure is an [`ErrorKind::Io`] about `what`.
    async fn send(&self, req: RequestBuilder, what: &str) -> Result<Response> {
        req.send().await.map_err(|e| transport_error(&e, what))
    }

    /// The size from a `HEAD` of `url`, `None` on 404.
    async fn head(&self, url: &str, what: &str) -> Result<Option<u64>> {
        let resp = self.send(self.request(Method::HEAD, url), what).await?;
        match resp.status() {
            s if s.is_success() => {
                // Not `Response::content_length`: for a HEAD that is the
                // (empty) body's length.
                let len = resp
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                len.map(Some).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Io,
                        format!("{what}: the server sent no valid Content-Length for HEAD"),
                    )
                })
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(resp, what, Op::Other).await),
        }
    }

    /// Lists `repo/tpe`: `Ok(None)` on 404.
    async fn list_raw(&self, repo: &RepoPath, tpe: FileType) -> Result<Option<Vec<Entry>>> {
        let what = format!("listing {repo}/{tpe} on {}", self.base);
        let url = self.repo_url(repo, &[tpe.as_str()], true);
        let resp = self
            .send(
                self.request(Method::GET, &url).header(header::ACCEPT, V2),
                &what,
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(resp, &what, Op::Other).await);
        }
        let body = read_capped(resp, MAX_LISTING_BYTES)
            .await
            .map_err(|e| transport_error(&e, &what))?
            .map_err(|()| {
                Error::new(
                    ErrorKind::Io,
                    format!(
                        "{what}: the server's answer is larger than {MAX_LISTING_BYTES} bytes; refused (a broken or hostile server?)"
                    ),
                )
            })?;
        if let Ok(v2) = serde_json::from_slice::<Vec<V2Entry>>(&body) {
            return Ok(Some(
                v2.into_iter()
                    .filter_map(|e| {
                        Name::parse(&e.name)
                            .ok()
                            .map(|name| Entry { name, size: e.size })
                    })
                    .collect(),
            ));
        }
        // A server that only speaks v1 answers names without sizes.
        let names: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("{what}: the server's answer is not a restic listing: {e}"),
            )
        })?;
        let mut out = Vec::new();
        for name in names.iter().filter_map(|n| Name::parse(n).ok()) {
            let file = FileRef::Named(tpe, name);
            if let Some(size) = self.stat(repo, &file).await? {
                let FileRef::Named(_, name) = file else {
                    continue;
                };
                out.push(Entry { name, size });
            }
        }
        Ok(Some(out))
    }

    /// `what` for messages about one file.
    fn what(&self, repo: &RepoPath, file: &FileRef) -> String {
        format!("{repo}/{file} on {}", self.base)
    }
}

/// Which request a status belongs to (the same code means different things).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Save,
    Other,
}

/// The error for a non-success `resp` to a request about `what`.
async fn status_error(resp: Response, what: &str, op: Op) -> Error {
    let status = resp.status();
    let text = match read_capped(resp, MAX_ERROR_BODY).await {
        Ok(Ok(body)) => String::from_utf8_lossy(&body).into_owned(),
        _ => String::new(),
    };
    let text: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SERVER_TEXT)
        .collect();
    let detail = if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    };
    let (kind, why) = match status {
        StatusCode::NOT_FOUND => (ErrorKind::NotFound, "does not exist"),
        StatusCode::FORBIDDEN if op == Op::Save => {
            (ErrorKind::AlreadyExists, "refused, the file already exists")
        }
        StatusCode::BAD_REQUEST if op == Op::Save => (
            ErrorKind::HashMismatch,
            "refused by the server's content check (hash mismatch)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorKind::TooLarge, "too large for the server"),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            (ErrorKind::RangeNotSatisfiable, "range not satisfiable")
        }
        StatusCode::INSUFFICIENT_STORAGE => (ErrorKind::NoSpace, "no space left on the server"),
        StatusCode::UNAUTHORIZED => (
            ErrorKind::Io,
            "authentication failed (wrong or missing user name or password)",
        ),
        StatusCode::FORBIDDEN => (
            ErrorKind::Io,
            "refused by the server (permissions or append-only mode)",
        ),
        s if s.is_server_error() => (ErrorKind::Io, "server error, may be temporary"),
        _ => (ErrorKind::Io, "unexpected answer"),
    };
    Error::new(kind, format!("{what}: {why} (HTTP {status}){detail}"))
}

/// `e` and its causes, one sentence (reqwest's own `Display` is terse).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// A failed request (no answer): always [`ErrorKind::Io`], may be temporary.
/// The request URL is left out (`what` names the object and server).
fn transport_error(e: &reqwest::Error, what: &str) -> Error {
    let kind = if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let e = clone_without_url(e);
    Error::new(ErrorKind::Io, format!("{what}: {kind}: {}", chain(&e)))
}

/// reqwest's `without_url` takes the error by value; errors aren't `Clone`,
/// so this formats via a borrowed wrapper instead.
fn clone_without_url(e: &reqwest::Error) -> impl std::error::Error + '_ {
    struct NoUrl<'a>(&'a reqwest::Error);
    impl fmt::Debug for NoUrl<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Display::fmt(self, f)
        }
    }
    impl fmt::Display for NoUrl<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let text = self.0.to_string();
            // reqwest appends " for url (...)"; the URL has no credentials
            // (they travel in a header) but is redundant with `what`.
            match text.find(" for url (") {
                Some(i) => f.write_str(&text[..i]),
                None => f.write_str(&text),
            }
        }
    }
    impl std::error::Error for NoUrl<'_> {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            std::error::Error::source(self.0)
        }
    }
    NoUrl(e)
}

/// Wraps a response body: skips `skip` bytes, passes at most `take`, maps
/// transport errors to I/O errors.
fn body_stream(resp: Response, skip: u64, take: u64, what: String) -> ByteStream {
    let inner = resp.bytes_stream();
    let stream = futures::stream::unfold(
        (Box::pin(inner), skip, take, what),
        |(mut inner, mut skip, mut take, what)| async move {
            loop {
                if take == 0 {
                    return None;
                }
                match inner.next().await? {
                    Err(e) => {
                        let err = std::io::Error::other(transport_error(&e, &what).message);
                        // End the stream after the error.
                        return Some((Err(err), (inner, skip, 0, what)));
                    }
                    Ok(mut chunk) => {
                        let len = chunk.len() as u64;
                        if skip >= len {
                            skip -= len;
                            continue;
                        }
                        // skip < len <= usize::MAX, so the casts are lossless.
                        let chunk_skip = skip as usize;
                        skip = 0;
                        chunk = chunk.slice(chunk_skip..);
                        if chunk.len() as u64 > take {
                            chunk.truncate(take as usize);
                        }
                        take -= chunk.len() as u64;
                        if chunk.is_empty() {
                            continue;
                        }
                        return Some((Ok(chunk), (inner, skip, take, what)));
                    }
                }
            }
        },
    );
    Box::pin(stream)
}

/// The upload body: `body` counted against `max_len` and hashed against
/// `name`. On any problem it records the error in `failure` and yields an
/// error *instead of ending*, which aborts the request before its last
/// chunk so the server stores nothing.
fn upload_stream(
    body: ByteStream,
    name: Option<Name>,
    max_len: u64,
    what: String,
    failure: Failure,
    count: Arc<Mutex<u64>>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    struct St {
        body: ByteStream,
        hasher: Sha256,
        len: u64,
        done: bool,
    }
    let st = St {
        body,
        hasher: Sha256::new(),
        len: 0,
        done: false,
    };
    futures::stream::unfold(st, move |mut st| {
        let (name, what, failure, count) =
            (name.clone(), what.clone(), failure.clone(), count.clone());
        async move {
            if st.done {
                return None;
            }
            let fail = |st: St, e: Error| {
                let msg = e.message.clone();
                if let Ok(mut slot) = failure.lock() {
                    slot.get_or_insert(e);
                }
                Some((Err(std::io::Error::other(msg)), St { done: true, ..st }))
            };
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    st.len += chunk.len() as u64;
                    if st.len > max_len {
                        return fail(st, too_large(&what, max_len));
                    }
                    st.hasher.update(&chunk);
                    if let Ok(mut c) = count.lock() {
                        *c = st.len;
                    }
                    Some((Ok(chunk), st))
                }
                Some(Err(e)) => {
                    let err = body_error(&what, &e);
                    fail(st, err)
                }
                None => {
                    if let Some(name) = name {
                        let actual = hex::encode(st.hasher.clone().finalize());
                        if actual != name.as_str() {
                            return fail(st, hash_mismatch(&what, &actual));
                        }
                    }
                    None
                }
            }
        }
    })
}

#[async_trait::async_trait]
impl Store for RestStore {
    fn describe(&self) -> String {
        format!("REST server at {}", self.base)
    }

    async fn create_repo(&self, repo: &RepoPath) -> Result<()> {
        let what = format!("creating repository {repo} on {}", self.base);
        let mut url = self.repo_url(repo, &[], true);
        url.push_str("?create=true");
        let resp = self.send(self.request(Method::POST, &url), &what).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(resp, &what, Op::Other).await)
        }
    }

    async fn repo_exists(&self, repo: &RepoPath) -> Result<bool> {
        let what = format!("repository {repo} on {}", self.base);
        if self
            .head(&self.file_url(repo, &FileRef::Config), &what)
            .await?
            .is_some()
        {
            return Ok(true);
        }
        Ok(self.list_raw(repo, FileType::Keys).await?.is_some())
    }

    async fn list_repos(&self) -> Result<Vec<RepoPath>> {
        Err(Error::new(
            ErrorKind::Io,
            format!(
                "{}: restic's REST protocol has no way to list repositories",
                self.describe()
            ),
        ))
    }

    async fn list(&self, repo: &RepoPath, tpe: FileType) -> Result<Vec<Entry>> {
        self.list_raw(repo, tpe).await?.ok_or_else(|| {
            not_found(&format_args!(
                "repository {repo} on {} (listing {tpe})",
                self.base
            ))
        })
    }

    async fn stat(&self, repo: &RepoPath, file: &FileRef) -> Result<Option<u64>> {
        self.head(&self.file_url(repo, file), &self.what(repo, file))
            .await
    }

    async fn load(&self, repo: &RepoPath, file: &FileRef, range: Range) -> Result<ByteStream> {
        let what = self.what(repo, file);
        let url = self.file_url(repo, file);
        if range == Range::default() {
            let resp = self.send(self.request(Method::GET, &url), &what).await?;
            if resp.status() != StatusCode::OK {
                return Err(status_error(resp, &what, Op::Other).await);
            }
            return Ok(body_stream(resp, 0, u64::MAX, what));
        }
        // HTTP has no range for "empty at the end", so learn the size first.
        let Some(size) = self.head(&url, &what).await? else {
            return Err(not_found(&what));
        };
        let (offset, length) = resolve_range(size, range, &what)?;
        if length == 0 {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let last = offset + length - 1;
        let req = self
            .request(Method::GET, &url)
            .header(header::RANGE, format!("bytes={offset}-{last}"));
        let resp = self.send(req, &what).await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => Ok(body_stream(resp, 0, length, what)),
            // A server that ignores Range sends everything: cut it here.
            StatusCode::OK => Ok(body_stream(resp, offset, length, what)),
            _ => Err(status_error(resp, &what, Op::Other).await),
        }
    }

    async fn save(
        &self,
        repo: &RepoPath,
        file: &FileRef,
        body: ByteStream,
        max_len: u64,
    ) -> Result<u64> {
        let what = self.what(repo, file);
        let url = self.file_url(repo, file);
        if self.head(&url, &what).await?.is_some() {
            return Err(already_exists(&what));
        }
        let name = match file {
            FileRef::Named(_, name) => Some(name.clone()),
            FileRef::Config => None,
        };
        let failure: Failure = Arc::default();
        let count = Arc::new(Mutex::new(0u64));
        let stream = upload_stream(
            body,
            name,
            max_len,
            what.clone(),
            failure.clone(),
            count.clone(),
        );
        let req = self
            .request(Method::POST, &url)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream));
        let sent = req.send().await;
        // The body's own verdict wins: the request was aborted because of it.
        if let Some(e) = failure.lock().ok().and_then(|mut slot| slot.take()) {
            return Err(e);
        }
        let resp = sent.map_err(|e| transport_error(&e, &what))?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &what, Op::Save).await);
        }
        let len = count.lock().map(|c| *c).unwrap_or_default();
        Ok(len)
    }

    async fn delete(&self, repo: &RepoPath, file: &FileRef) -> Result<()> {
        let what = self.what(repo, file);
        let resp = self
            .send(
                self.request(Method::DELETE, &self.file_url(repo, file)),
                &what,
            )
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(resp, &what, Op::Other).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_redaction() {
        let s = RestStore::new("http://alice:s%3Acret@example.org:8000/prefix", None, None)
            .expect("store");
        let auth = s.auth.as_ref().expect("credentials from the URL");
        assert_eq!(
            (auth.user.as_str(), auth.password.as_str()),
            ("alice", "s:cret")
        );
        assert_eq!(s.base.as_str(), "http://example.org:8000/prefix/");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("cret") && !dbg.contains("alice"), "{dbg}");
        assert!(!s.describe().contains("cret"));
        let repo = RepoPath::parse("nas/main").expect("repo");
        assert_eq!(
            s.repo_url(&repo, &["keys"], true),
            "http://example.org:8000/prefix/nas/main/keys/"
        );
        assert_eq!(
            s.file_url(&repo, &FileRef::Config),
            "http://example.org:8000/prefix/nas/main/config"
        );
        assert_eq!(
            s.url(&["a b", "c/d"], false),
            "http://example.org:8000/prefix/a%20b/c%2Fd"
        );

        // Explicit credentials win over the URL's.
        let s =
            RestStore::new("https://u:p@h/", Some(("x".into(), "y".into())), None).expect("store");
        assert_eq!(s.auth.as_ref().map(|c| c.user.as_str()), Some("x"));

        for bad in [
            "ftp://u:hunter2@h/",
            "not a url hunter2",
            "http://h/?q=hunter2",
        ] {
            let e = RestStore::new(bad, None, None).expect_err(bad);
            assert_eq!(e.kind, ErrorKind::InvalidName);
            assert!(!e.message.contains("hunter2"), "{}", e.message);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod cap_tests {
    use std::io::{BufRead, BufReader, Write};

    use super::*;

    /// A server that answers every request with `len` bytes.
    fn server(len: usize) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(&vec![b'['; len]);
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn bodies_are_capped() {
        let url = server(1 << 20);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(read_capped(resp, 1000).await.unwrap(), Err(()));
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(
            read_capped(resp, 2 << 20).await.unwrap().unwrap().len(),
            1 << 20
        );
    }
}
