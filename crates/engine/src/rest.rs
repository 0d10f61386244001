//! restic's REST protocol (a Bulwark hub, rest-server, `rclone serve restic`)
//! as a rustic backend.
//!
//! Ours rather than rustic_backend's: that one builds its HTTP client with a
//! second TLS crypto provider (aws-lc) next to the ring provider everything
//! else here uses, and reads any refusal of `HEAD config` — a 401 or a 403 —
//! as "there is no repository". Here a 404 is absence and every other refusal
//! is an error that keeps its status; credentials from the URL travel only in
//! the `Authorization` header and never appear in a message; temporary
//! failures (connection, 5xx, 429) are retried with backoff, a refusal (4xx)
//! or a certificate problem never is; response sizes are capped.

use std::{io::Read, path::Path, time::Duration};

use bytes::Bytes;
use reqwest::{
    blocking::{Client, RequestBuilder, Response},
    StatusCode, Url,
};
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};

/// Attempts for a temporary failure (the first try included).
const ATTEMPTS: u32 = 5;
/// The largest file read whole (index, snapshot, key files are far smaller).
const MAX_FULL_READ: u64 = 512 << 20;
/// The largest listing accepted from a server.
const MAX_LISTING: u64 = 256 << 20;

/// A repository reached over restic's REST protocol (v2).
pub(crate) struct RestBackend {
    /// The repository URL without credentials, ending in `/`.
    url: Url,
    user: Option<String>,
    password: Option<String>,
    client: Client,
}

/// Makes sure one process-wide TLS crypto provider (ring) is installed before a
/// client is built; a second call does nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl std::fmt::Debug for RestBackend {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestBackend")
            .field("url", &self.url.as_str())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl RestBackend {
    /// Parses `http(s)://[user:password@]host[:port]/path` and builds the
    /// client (trusting `ca_file` in addition to the system's roots).
    pub(crate) fn new(url: &str, ca_file: Option<&Path>) -> RusticResult<Self> {
        let mut parsed = Url::parse(url).map_err(|e| {
            RusticError::new(
                ErrorKind::InvalidInput,
                format!(
                    "`{}` is not a valid REST URL ({e}): expected http(s)://host:port/path",
                    bulwark_api::redact_url(url)
                ),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RusticError::new(
                ErrorKind::InvalidInput,
                format!(
                    "a REST repository URL starts with http:// or https://, not {}://",
                    parsed.scheme()
                ),
            ));
        }
        let user = (!parsed.username().is_empty()).then(|| decode(parsed.username()));
        let password = parsed.password().map(decode);
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        if !parsed.path().ends_with('/') {
            let path = format!("{}/", parsed.path());
            parsed.set_path(&path);
        }
        install_tls_provider();
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(600))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                RusticError::new(
                    ErrorKind::InvalidInput,
                    format!("cannot read the CA file {}: {e}", ca.display()),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RusticError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} holds no PEM certificate ({e}): give the CA's certificate in PEM form",
                        ca.display()
                    ),
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| {
            RusticError::new(
                ErrorKind::Backend,
                format!("cannot set up the HTTP client: {e}"),
            )
        })?;
        Ok(Self {
            url: parsed,
            user,
            password,
            client,
        })
    }

    fn file_url(&self, tpe: FileType, id: &Id) -> RusticResult<Url> {
        let path = if tpe == FileType::Config {
            "config".to_string()
        } else {
            format!("{}/{}", tpe.dirname(), &*id.to_hex())
        };
        self.join(&path)
    }

    fn join(&self, path: &str) -> RusticResult<Url> {
        self.url.join(path).map_err(|e| {
            RusticError::new(
                ErrorKind::Internal,
                format!("cannot form the URL of {path}: {e}"),
            )
        })
    }

    fn auth(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.user {
            Some(user) => req.basic_auth(user, self.password.as_ref()),
            None => req,
        }
    }

    /// Sends the request made by `make`, retrying temporary failures; returns
    /// the response of any status the caller accepts in `ok`.
    fn send(
        &self,
        what: &str,
        ok: &[StatusCode],
        make: impl Fn() -> RequestBuilder,
    ) -> RusticResult<Response> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            let result = match self.auth(make()).send() {
                Ok(resp) if resp.status().is_success() || ok.contains(&resp.status()) => {
                    return Ok(resp);
                }
                other => other,
            };
            let temporary = match &result {
                Ok(resp) => {
                    resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS
                }
                Err(e) => !is_certificate_error(e) && !e.is_builder(),
            };
            if !temporary || attempt >= ATTEMPTS {
                return Err(self.failure(what, result));
            }
            tracing::warn!(
                "{what} at {}: {}; retrying in {delay:?}",
                self.location(),
                short(&result)
            );
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(8));
            attempt += 1;
        }
    }

    fn failure(&self, what: &str, result: reqwest::Result<Response>) -> Box<RusticError> {
        match result {
            Ok(resp) => {
                let status = resp.status();
                let mut msg = format!(
                    "{what} at {}: the server answered {status}",
                    self.location()
                );
                match status {
                    StatusCode::UNAUTHORIZED => msg.push_str(&format!(
                        " — it refused the credentials{}",
                        self.user
                            .as_ref()
                            .map(|u| format!(" of user {u}"))
                            .unwrap_or_default()
                    )),
                    StatusCode::FORBIDDEN => msg.push_str(&format!(
                        " — {} may not do this on this repository",
                        self.user
                            .as_ref()
                            .map(|u| format!("user {u}"))
                            .unwrap_or_else(|| "this client".into())
                    )),
                    _ => {}
                }
                RusticError::new(ErrorKind::Backend, msg)
            }
            Err(e) => {
                let mut msg = format!("{what} at {}: {}", self.location(), chain(&e));
                if is_certificate_error(&e) {
                    msg.push_str(
                        " — the server's certificate is not trusted: give the CA that signed it \
                         (ca_file / --ca-file)",
                    );
                }
                RusticError::new(ErrorKind::Backend, msg)
            }
        }
    }
}

/// A URL's user or password with its `%XX` escapes undone.
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The error and its causes in one line, without the URL.
fn chain(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn short(result: &reqwest::Result<Response>) -> String {
    match result {
        Ok(r) => format!("the server answered {}", r.status()),
        Err(e) => chain(e),
    }
}

/// A TLS certificate problem is permanent: retrying cannot fix it.
fn is_certificate_error(e: &reqwest::Error) -> bool {
    let text = chain(e).to_ascii_lowercase();
    text.contains("certificate") || text.contains("unknownissuer")
}

/// Reads at most `limit` bytes of a body; more is an error, not a truncation.
fn read_capped(resp: Response, limit: u64, what: &str) -> RusticResult<Bytes> {
    let mut buf = Vec::new();
    resp.take(limit + 1).read_to_end(&mut buf).map_err(|e| {
        RusticError::new(
            ErrorKind::Backend,
            format!("{what}: the connection broke while reading: {e}"),
        )
    })?;
    if buf.len() as u64 > limit {
        return Err(RusticError::new(
            ErrorKind::Backend,
            format!("{what}: the server sent more than the {limit} bytes expected"),
        ));
    }
    Ok(Bytes::from(buf))
}

impl ReadBackend for RestBackend {
    fn location(&self) -> String {
        format!("rest:{}", self.url)
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        #[derive(serde::Deserialize)]
        struct Entry {
            name: String,
            size: u64,
        }
        if tpe == FileType::Config {
            let url = self.join("config")?;
            let resp = self.send(
                "looking for the repository",
                &[StatusCode::NOT_FOUND],
                || self.client.head(url.clone()),
            )?;
            return Ok(if resp.status() == StatusCode::NOT_FOUND {
                Vec::new()
            } else {
                vec![(Id::default(), 0)]
            });
        }
        let url = self.join(&format!("{}/", tpe.dirname()))?;
        let what = format!("listing {}", tpe.dirname());
        let resp = self.send(&what, &[], || {
            self.client
                .get(url.clone())
                .header("Accept", "application/vnd.x.restic.rest.v2")
        })?;
        let body = read_capped(resp, MAX_LISTING, &what)?;
        let entries: Option<Vec<Entry>> = serde_json::from_slice(&body).map_err(|e| {
            RusticError::new(
                ErrorKind::Backend,
                format!(
                    "{what} at {}: the server's answer is not a REST v2 listing ({e})",
                    self.location()
                ),
            )
        })?;
        // names that are not a file id are skipped, never used in a request
        Ok(entries
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| Some((e.name.parse::<Id>().ok()?, u32::try_from(e.size).ok()?)))
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let url = self.file_url(tpe, id)?;
        let what = format!("reading {}/{}", tpe.dirname(), &*id.to_hex());
        let resp = self.send(&what, &[], || self.client.get(url.clone()))?;
        read_capped(resp, MAX_FULL_READ, &what)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let url = self.file_url(tpe, id)?;
        let what = format!("reading {}/{}", tpe.dirname(), &*id.to_hex());
        let end = u64::from(offset) + u64::from(length.max(1)) - 1;
        let range = format!("bytes={offset}-{end}");
        let resp = self.send(&what, &[], || {
            self.client.get(url.clone()).header("Range", range.clone())
        })?;
        if resp.status() != StatusCode::PARTIAL_CONTENT && offset != 0 {
            return Err(RusticError::new(
                ErrorKind::Backend,
                format!(
                    "{what} at {}: the server ignored the byte range (answered {})",
                    self.location(),
                    resp.status()
                ),
            ));
        }
        let body = read_capped(resp, u64::from(length), &what)?;
        if body.len() != length as usize {
            return Err(RusticError::new(
                ErrorKind::Backend,
                format!(
                    "{what} at {}: expected {length} bytes, got {}",
                    self.location(),
                    body.len()
                ),
            ));
        }
        Ok(body)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.file_url(tpe, id)
            .map(|u| u.to_string())
            .unwrap_or_default()
    }
}

impl WriteBackend for RestBackend {
    fn create(&self) -> RusticResult<()> {
        let url = self.join("?create=true")?;
        self.send("creating the repository", &[], || {
            self.client.post(url.clone())
        })?;
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        buf: BytesList,
    ) -> RusticResult<()> {
        let url = self.file_url(tpe, id)?;
        let what = format!("saving {}/{}", tpe.dirname(), &*id.to_hex());
        let body: Vec<u8> = buf.into_vec().concat();
        let body = Bytes::from(body);
        self.send(&what, &[], || {
            self.client.post(url.clone()).body(body.clone())
        })?;
        Ok(())
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let url = self.file_url(tpe, id)?;
        let what = format!("removing {}/{}", tpe.dirname(), &*id.to_hex());
        self.send(&what, &[], || self.client.delete(url.clone()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let be = RestBackend::new("http://nas:s%40cret@127.0.0.1:8000/nas/main", None)
            .expect("valid URL");
        assert_eq!(be.location(), "rest:http://127.0.0.1:8000/nas/main/");
        assert_eq!(be.user.as_deref(), Some("nas"));
        assert_eq!(be.password.as_deref(), Some("s@cret"));
        assert!(!format!("{be:?}").contains("s@cret"), "{be:?}");
    }

    #[test]
    fn a_bad_url_is_refused_with_a_sentence() {
        let err = RestBackend::new("ftp://host/repo", None).expect_err("ftp is refused");
        assert!(err.to_string().contains("http:// or https://"), "{err}");
    }
}
