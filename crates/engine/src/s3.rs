//! S3-compatible repositories: rustic_core's backend traits over opendal's S3
//! service alone (rustic_backend's opendal backend compiles some thirty storage
//! services, and with them crates that carry security advisories).
//!
//! restic's S3 layout: `config`, `keys/ID`, `data/XX/ID`, `index/ID`,
//! `snapshots/ID`, `locks/ID` under the prefix. Errors are reduced to a cause a
//! user can act on (missing bucket, refused credentials, unreachable endpoint),
//! never a raw library dump.

use std::sync::OnceLock;

use bytes::Bytes;
use opendal::{services::S3, ErrorKind as K, Operator};
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};
use tokio::runtime::Runtime;

/// Where and how to reach a bucket.
pub(crate) struct S3Options<'a> {
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub region: &'a str,
    pub access_key_id: Option<&'a str>,
    pub secret_access_key: Option<&'a str>,
}

/// An S3-compatible bucket as a rustic backend.
#[derive(Debug)]
pub(crate) struct S3Backend {
    op: Operator,
    location: String,
}

/// One runtime for every S3 backend of the process: rustic_core calls the
/// backend from its own (non-async) threads.
fn runtime() -> RusticResult<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("bulwark-s3")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| {
            RusticError::new(
                ErrorKind::Backend,
                "cannot start the S3 client's runtime (out of threads or memory?)",
            )
        })
}

impl S3Backend {
    /// Configures the client; no request is made here. Without keys in the
    /// options, the usual `AWS_*` environment variables are used.
    pub(crate) fn new(o: &S3Options<'_>) -> RusticResult<Self> {
        // one TLS crypto provider (ring) for the process, then opendal's
        // reqwest transport (its own default install would need aws-lc)
        crate::rest::install_tls_provider();
        opendal_http_transport_reqwest::install_default();
        let prefix = o.prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            "/".to_string()
        } else {
            format!("/{prefix}/")
        };
        let region = if o.region.is_empty() {
            "us-east-1"
        } else {
            o.region
        };
        let mut builder = S3::default()
            .bucket(o.bucket)
            .root(&root)
            .region(region)
            .disable_ec2_metadata();
        if !o.endpoint.is_empty() {
            builder = builder.endpoint(o.endpoint);
        }
        if let Some(k) = o.access_key_id {
            builder = builder.access_key_id(k);
        }
        if let Some(k) = o.secret_access_key {
            builder = builder.secret_access_key(k);
        }
        let location = if prefix.is_empty() {
            format!("s3:{}/{}", o.endpoint, o.bucket)
        } else {
            format!("s3:{}/{}/{prefix}", o.endpoint, o.bucket)
        };
        let op =
            Operator::new(builder).map_err(|e| error(&e, &format!("configuring {location}")))?;
        Ok(Self { op, location })
    }

    fn block_on<F: std::future::IntoFuture>(&self, f: F) -> RusticResult<F::Output> {
        Ok(runtime()?.block_on(f.into_future()))
    }
}

/// The object key of a repository file.
fn key(tpe: FileType, id: &Id) -> String {
    let hex = id.to_hex();
    match tpe {
        FileType::Config => "config".to_string(),
        FileType::Pack => format!("data/{}/{}", &hex[..2], &*hex),
        _ => format!("{}/{}", tpe.dirname(), &*hex),
    }
}

/// One sentence with the cause and the fix, from what the server answered.
pub(crate) fn explain(e: &opendal::Error) -> String {
    let text = e.to_string();
    let has = |s: &str| text.contains(s);
    if has("NoSuchBucket") {
        "the bucket does not exist: create it, or fix `bucket` in the repository URL".into()
    } else if has("InvalidAccessKeyId") || has("SignatureDoesNotMatch") || has("AccessDenied") {
        "the server refused the credentials: check the access key id and secret \
         (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the repository's key settings)"
            .into()
    } else if has("failed to load signing credential") || has("no valid credential") {
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
         (or the repository's key settings)"
            .into()
    } else if e.kind() == K::PermissionDenied {
        "the server denied access: check the credentials and the bucket's policy".into()
    } else if has("error sending request") || has("connect") || has("dns error") {
        "cannot reach the S3 endpoint: check the URL and that the server is running".into()
    } else {
        // the kind and the first line of the server's answer, never a whole dump
        let first = text.lines().next().unwrap_or("").trim();
        let short: String = first.chars().take(300).collect();
        format!("{} ({short})", e.kind())
    }
}

fn error(e: &opendal::Error, what: &str) -> Box<RusticError> {
    RusticError::new(ErrorKind::Backend, format!("{what}: {}", explain(e)))
}

impl ReadBackend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            return match self.block_on(self.op.stat("config"))? {
                Ok(m) => Ok(vec![(
                    Id::default(),
                    u32::try_from(m.content_length()).unwrap_or(u32::MAX),
                )]),
                Err(e) if e.kind() == K::NotFound && !e.to_string().contains("NoSuchBucket") => {
                    Ok(Vec::new())
                }
                Err(e) => Err(error(&e, &format!("reading {}/config", self.location))),
            };
        }
        let dir = format!("{}/", tpe.dirname());
        let entries = self
            .block_on(self.op.list_with(&dir).recursive(true))?
            .map_err(|e| error(&e, &format!("listing {}/{dir}", self.location)))?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let meta = entry.metadata();
            if !meta.is_file() {
                continue;
            }
            // names that are not a file id (a stray object) are skipped
            let Ok(id) = entry.name().parse::<Id>() else {
                continue;
            };
            let Ok(size) = u32::try_from(meta.content_length()) else {
                continue;
            };
            out.push((id, size));
        }
        Ok(out)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let k = key(tpe, id);
        self.block_on(self.op.read(&k))?
            .map(|b| b.to_bytes())
            .map_err(|e| error(&e, &format!("reading {}/{k}", self.location)))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let k = key(tpe, id);
        let range = u64::from(offset)..u64::from(offset) + u64::from(length);
        self.block_on(self.op.read_with(&k).range(range))?
            .map(|b| b.to_bytes())
            .map_err(|e| error(&e, &format!("reading {}/{k}", self.location)))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        key(tpe, id)
    }
}

impl WriteBackend for S3Backend {
    fn create(&self) -> RusticResult<()> {
        // S3 has no directories; checking that the bucket answers turns a
        // missing bucket into one clear sentence before anything is written
        match self.block_on(self.op.list_with("keys/").limit(1))? {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == K::NotFound && !e.to_string().contains("NoSuchBucket") => Ok(()),
            Err(e) => Err(error(&e, &format!("using {}", self.location))),
        }
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        buf: BytesList,
    ) -> RusticResult<()> {
        let k = key(tpe, id);
        let body: opendal::Buffer = buf.into_vec().into_iter().collect();
        self.block_on(self.op.write(&k, body))?
            .map(|_| ())
            .map_err(|e| error(&e, &format!("writing {}/{k}", self.location)))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let k = key(tpe, id);
        self.block_on(self.op.delete(&k))?
            .map_err(|e| error(&e, &format!("removing {}/{k}", self.location)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_restics_layout() {
        let id = Id::default();
        let hex = id.to_hex();
        assert_eq!(key(FileType::Config, &id), "config");
        assert_eq!(
            key(FileType::Pack, &id),
            format!("data/{}/{}", &hex[..2], &*hex)
        );
        assert_eq!(key(FileType::Snapshot, &id), format!("snapshots/{}", &*hex));
        assert_eq!(key(FileType::Key, &id), format!("keys/{}", &*hex));
    }
}
