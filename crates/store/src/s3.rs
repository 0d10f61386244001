//! An S3-compatible bucket (via opendal), in restic's S3 layout.
//!
//! Object keys (`<prefix>/` is left out when the prefix is empty):
//!
//! ```text
//! <prefix>/<repo path>/config
//! <prefix>/<repo path>/data/<first 2 hex digits>/<name>
//! <prefix>/<repo path>/{keys,locks,snapshots,index}/<name>
//! <prefix>/<repo path>/keys/          (empty marker written by create_repo)
//! ```
//!
//! so `restic -r s3:<endpoint>/<bucket>/<prefix>/<repo path>` reads a
//! repository directly (restic skips the empty `keys/` marker).
//!
//! Writing a file: the store first checks that the key does not exist
//! ([`ErrorKind::AlreadyExists`] without reading the body), then streams the
//! body into an opendal writer (a multipart upload once it passes one
//! chunk) while hashing and counting it. Only if the body ended cleanly,
//! stayed within `max_len` and hashes to the file's name, and the key is
//! still absent, is the writer closed, which makes the object appear
//! complete in one step; otherwise the upload is aborted and nothing is
//! visible. (An upload cancelled by dropping the future can leave an
//! unfinished multipart upload, which is invisible and cleaned up by the
//! bucket's lifecycle rules.)
//!
//! S3 has no atomic "create if absent" that every compatible server
//! supports, so between the final existence check and `close` there is a
//! small window in which two concurrent uploads of the *same* name can both
//! succeed. That cannot corrupt anything: a named file's name is the SHA-256
//! of its content and both uploads were verified, so they carry identical
//! bytes. `config` is the only file this could matter for, and a repository's
//! config is written once, by `init`.

use std::fmt;

use futures::StreamExt;
use opendal::{services::S3, Operator};
use sha2::{Digest, Sha256};

use crate::{
    util::{already_exists, body_error, hash_mismatch, not_found, resolve_range, too_large},
    ByteStream, Entry, Error, ErrorKind, FileRef, FileType, Name, Range, RepoPath, Result, Store,
};

/// Upload chunk (multipart part) size: above S3's 5 MiB minimum.
const CHUNK: usize = 8 * 1024 * 1024;

/// Where the bucket is and how to sign requests.
#[derive(Clone, Default)]
pub struct S3Config {
    /// Endpoint URL, e.g. `https://s3.eu-central-1.amazonaws.com` or
    /// `http://127.0.0.1:9000` (empty: AWS's default for the region).
    pub endpoint: String,
    /// Region, e.g. `us-east-1` (empty: `us-east-1`).
    pub region: String,
    /// Bucket name (the bucket must exist).
    pub bucket: String,
    /// Key prefix inside the bucket (may be empty; surrounding `/` ignored).
    pub prefix: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never printed by `Debug`).
    pub secret_access_key: String,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .finish()
    }
}

/// Repositories in an S3-compatible bucket (see the [module docs](self)).
#[derive(Clone)]
pub struct S3Store {
    op: Operator,
    desc: String,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store").field("location", &self.desc).finish()
    }
}

/// Maps an opendal error about `what` to a store error.
fn od_error(e: &opendal::Error, what: &dyn fmt::Display) -> Error {
    use opendal::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::AlreadyExists | K::ConditionNotMatch => ErrorKind::AlreadyExists,
        K::RangeNotSatisfied => ErrorKind::RangeNotSatisfiable,
        _ => ErrorKind::Io,
    };
    Error::new(kind, format!("{what}: {e}"))
}

fn key(repo: &RepoPath, file: &FileRef) -> String {
    match file {
        FileRef::Config => format!("{repo}/config"),
        FileRef::Named(FileType::Data, name) => format!("{repo}/data/{}/{name}", &name.as_str()[..2]),
        FileRef::Named(tpe, name) => format!("{repo}/{tpe}/{name}"),
    }
}

impl S3Store {
    /// Connects (lazily: no request is made here) to the bucket in `cfg`.
    /// Credentials come only from `cfg` (no environment, profile or
    /// instance metadata lookups).
    pub fn new(cfg: S3Config) -> Result<S3Store> {
        opendal::install_default();
        let prefix = cfg.prefix.trim_matches('/');
        let root = if prefix.is_empty() { "/".to_owned() } else { format!("/{prefix}/") };
        let region = if cfg.region.is_empty() { "us-east-1" } else { &cfg.region };
        let mut builder = S3::default()
            .bucket(&cfg.bucket)
            .root(&root)
            .region(region)
            .access_key_id(&cfg.access_key_id)
            .secret_access_key(&cfg.secret_access_key)
            .disable_config_load()
            .disable_ec2_metadata();
        if !cfg.endpoint.is_empty() {
            builder = builder.endpoint(&cfg.endpoint);
        }
        let desc = format!(
            "s3 bucket {} at {}, prefix {prefix:?}",
            cfg.bucket,
            if cfg.endpoint.is_empty() { "AWS" } else { &cfg.endpoint }
        );
        let op = Operator::new(builder).map_err(|e| od_error(&e, &format_args!("configuring {desc}")))?;
        Ok(S3Store { op, desc })
    }

    /// The size of the object at `key`, `None` if absent.
    async fn size_of(&self, key: &str, what: &str) -> Result<Option<u64>> {
        match self.op.stat(key).await {
            Ok(m) if m.is_file() => Ok(Some(m.content_length())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(od_error(&e, &what)),
        }
    }

    /// The immediate sub-"directories" of `dir` (`""` for the root), by name.
    async fn sub_dirs(&self, dir: &str) -> Result<Vec<String>> {
        let path = if dir.is_empty() { "/".to_owned() } else { format!("{dir}/") };
        let entries = self.op.list(&path).await.map_err(|e| od_error(&e, &format_args!("listing {path}")))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_dir() && e.path() != path)
            .map(|e| e.name().trim_end_matches('/').to_owned())
            .collect())
    }
}

#[async_trait::async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        self.desc.clone()
    }

    async fn create_repo(&self, repo: &RepoPath) -> Result<()> {
        if self.repo_exists(repo).await? {
            return Ok(());
        }
        let marker = format!("{repo}/keys/");
        self.op.create_dir(&marker).await.map_err(|e| od_error(&e, &format_args!("creating repository {repo}")))
    }

    async fn repo_exists(&self, repo: &RepoPath) -> Result<bool> {
        let what = format!("repository {repo}");
        if self.size_of(&key(repo, &FileRef::Config), &what).await?.is_some() {
            return Ok(true);
        }
        // A directory stat is a listing: true for the marker or any key file.
        self.op.exists(&format!("{repo}/keys/")).await.map_err(|e| od_error(&e, &what))
    }

    async fn list_repos(&self) -> Result<Vec<RepoPath>> {
        let mut repos = Vec::new();
        for a in self.sub_dirs("").await? {
            let Ok(repo) = RepoPath::parse(&a) else { continue };
            if self.repo_exists(&repo).await? {
                repos.push(repo);
            }
            for b in self.sub_dirs(&a).await? {
                if let Ok(repo) = RepoPath::parse(&format!("{a}/{b}")) {
                    if self.repo_exists(&repo).await? {
                        repos.push(repo);
                    }
                }
            }
        }
        repos.sort();
        Ok(repos)
    }

    async fn list(&self, repo: &RepoPath, tpe: FileType) -> Result<Vec<Entry>> {
        let what = format!("{repo}/{tpe}");
        let dir = format!("{repo}/{tpe}/");
        let entries = self
            .op
            .list_with(&dir)
            .recursive(tpe == FileType::Data)
            .await
            .map_err(|e| od_error(&e, &what))?;
        let mut out = Vec::new();
        for entry in entries {
            if !entry.metadata().is_file() {
                continue;
            }
            let Some(rel) = entry.path().strip_prefix(&dir) else { continue };
            let file_name = if tpe == FileType::Data {
                match rel.split_once('/') {
                    Some((sub, n)) if n.len() > 2 && n.starts_with(sub) => n,
                    _ => continue,
                }
            } else {
                rel
            };
            if let Ok(name) = Name::parse(file_name) {
                out.push(Entry { name, size: entry.metadata().content_length() });
            }
        }
        if out.is_empty() && !self.repo_exists(repo).await? {
            return Err(not_found(&format_args!("repository {repo}")));
        }
        Ok(out)
    }

    async fn stat(&self, repo: &RepoPath, file: &FileRef) -> Result<Option<u64>> {
        self.size_of(&key(repo, file), &format!("{repo}/{file}")).await
    }

    async fn load(&self, repo: &RepoPath, file: &FileRef, range: Range) -> Result<ByteStream> {
        let what = format!("{repo}/{file}");
        let key = key(repo, file);
        let Some(size) = self.size_of(&key, &what).await? else {
            return Err(not_found(&what));
        };
        let (offset, length) = resolve_range(size, range, &what)?;
        if length == 0 {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let reader = self.op.reader(&key).await.map_err(|e| od_error(&e, &what))?;
        let stream = reader.into_bytes_stream(offset..offset + length).await.map_err(|e| od_error(&e, &what))?;
        Ok(Box::pin(stream))
    }

    async fn save(&self, repo: &RepoPath, file: &FileRef, mut body: ByteStream, max_len: u64) -> Result<u64> {
        let what = format!("{repo}/{file}");
        let key = key(repo, file);
        if self.size_of(&key, &what).await?.is_some() {
            return Err(already_exists(&what));
        }
        let mut writer = self.op.writer_with(&key).chunk(CHUNK).await.map_err(|e| od_error(&e, &what))?;

        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let outcome: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| body_error(&what, &e))?;
                len += chunk.len() as u64;
                if len > max_len {
                    return Err(too_large(&what, max_len));
                }
                hasher.update(&chunk);
                writer.write(chunk).await.map_err(|e| od_error(&e, &what))?;
            }
            if let FileRef::Named(_, name) = file {
                let actual = hex::encode(hasher.finalize());
                if actual != name.as_str() {
                    return Err(hash_mismatch(&what, &actual));
                }
            }
            // Narrow the window for a racing upload of the same name.
            if self.size_of(&key, &what).await?.is_some() {
                return Err(already_exists(&what));
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            if let Err(abort) = writer.abort().await {
                tracing::warn!("aborting the upload of {what} failed: {abort}");
            }
            return Err(e);
        }
        writer.close().await.map_err(|e| od_error(&e, &what))?;
        Ok(len)
    }

    async fn delete(&self, repo: &RepoPath, file: &FileRef) -> Result<()> {
        let what = format!("{repo}/{file}");
        let key = key(repo, file);
        if self.size_of(&key, &what).await?.is_none() {
            return Err(not_found(&what));
        }
        self.op.delete(&key).await.map_err(|e| od_error(&e, &what))
    }
}
