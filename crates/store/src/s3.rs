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
//! plus, directly under `<prefix>/`, the one-object probe
//! `.bulwark-conditional-write-probe` (see below), normally deleted again
//! right away; its name is no repository path, so nothing lists it.
//!
//! # Writing a file
//!
//! The guarantees: a file is never overwritten ([`ErrorKind::AlreadyExists`]);
//! a file whose content does not hash to its name, or that outgrew
//! `max_len`, or whose body failed, is never visible; an aborted upload
//! leaves nothing visible. Within them a save costs as few requests as
//! possible (the benchmark in `bench/replicate.py` counts them):
//!
//! - The body is read into memory, hashed and counted, up to `SINGLE_PUT_MAX`
//!   (32 MiB). If it ends there - as every file restic writes with its
//!   default pack size does: packs of ~16 MiB, and much smaller index,
//!   snapshot and key files - it is checked (length, hash) and then sent in
//!   **one PUT**, which makes it appear complete in one step. A failed check
//!   uploads nothing (a wrong hash or an oversized body costs one HEAD, so
//!   that an existing name is still answered with `AlreadyExists`, as by a
//!   store that checks before reading).
//! - A longer body becomes a multipart upload of `PART` (16 MiB) parts: one
//!   HEAD as soon as the body passes the threshold (so a large body for an
//!   existing name is refused before it is uploaded), then create and parts
//!   while the body streams, and only once the body ended cleanly, stayed
//!   within `max_len` and hashed to the name, a second HEAD and the
//!   complete, which makes the object appear in one step. Anything else
//!   aborts the upload. (An upload cancelled by dropping the future can
//!   leave an unfinished multipart upload, invisible, cleaned up by the
//!   bucket's lifecycle rules; a cancelled single PUT leaves nothing.)
//!
//! Per file that is 1 request (content-addressed files up to 32 MiB on a
//! server that honours conditional writes) or 2 (HEAD + PUT otherwise, and
//! always for `config`), where it used to be HEAD + PUT + HEAD below 8 MiB
//! and HEAD + create + parts + HEAD + complete above (6-7 requests for a
//! restic pack).
//!
//! ## Refusing overwrites
//!
//! The single PUT carries `If-None-Match: *` when the server is known to
//! honour it (AWS S3 since August 2024; moto 5.2, which the tests run,
//! checks it on PUT and on complete): the server then
//! refuses an existing name itself (412; atomically on AWS, so racing
//! uploads are settled by the server) and a content-addressed file needs no
//! HEAD. Whether the server honours the header is probed, not assumed,
//! because many S3-compatible servers silently ignore it, which would turn
//! the PUT into an overwrite: once per store (shared by its clones), at the
//! first save, two conditional PUTs of the tiny probe object - the second
//! must be refused with 412 - and its DELETE (see `Conditional`). Where the
//! header is not honoured, or rejected, or the probe could not tell (a
//! temporary error: it is tried again at the next save), the header is not
//! sent and every single PUT is preceded by one HEAD, made after the body
//! was verified, as close to the write as possible.
//!
//! `config`, the one file that is not content-addressed, always gets that
//! HEAD, plus the header where honoured: its check stays strict whatever the
//! server. The complete of a multipart upload never carries the header
//! (servers that honour it on PUT do not all honour it on complete, and one
//! that rejected it there would fail every large upload): the HEAD before
//! the complete is the check.
//!
//! Without a server-side condition there is a small window between the
//! final HEAD and the PUT/complete in which two concurrent uploads of the
//! *same* name can both succeed. That cannot corrupt anything: a named
//! file's name is the SHA-256 of its content and both uploads were verified,
//! so they carry identical bytes. `config` is the only file this could
//! matter for; it is written once, by `init`, and gets the server-side
//! condition wherever the server offers one.
//!
//! ## Memory
//!
//! An upload holds about 32 MiB of body at most (never more than its
//! `max_len`): a single PUT its whole body, a multipart upload the 32 MiB
//! read before the switch, then two 16 MiB parts (the one on the wire, the
//! next one).
//! The former 8 MiB multipart writer held up to 16 MiB per upload (the part
//! on the wire plus the next), so for restic's default ~16 MiB packs memory
//! is the same, and the worst case per upload is twice as high.
//! `bulwark replicate` runs `parallel` uploads (default 4): at most 128 MiB
//! of buffers by default (~2 GiB at the configurable maximum of 64, meant
//! for many small files over high-latency links, where buffers stay small).
//! The hub holds one buffer per upload in flight; restic opens 5
//! connections per backend by default, so one client backing up costs
//! ~80 MiB with default packs, as before.

use std::{fmt, sync::Arc};

use bytes::Bytes;
use futures::StreamExt;
use opendal::{services::S3, Buffer, Operator};
use sha2::{Digest, Sha256};

use crate::{
    util::{already_exists, body_error, hash_mismatch, not_found, resolve_range, too_large},
    ByteStream, Entry, Error, ErrorKind, FileRef, FileType, Name, Range, RepoPath, Result, Store,
};

/// Bodies up to this size (inclusive) are buffered and sent in one PUT.
///
/// One request per file where a multipart upload costs at least three
/// (create, part(s), complete), and restic's packs (default target 16 MiB,
/// a pack can overshoot it by its last blob) stay below it. Larger would
/// buy little (restic writes bigger files only with `--pack-size`) and cost
/// memory per upload (see the module docs).
const SINGLE_PUT_MAX: usize = 32 * 1024 * 1024;

/// Multipart part size above [`SINGLE_PUT_MAX`]: S3's minimum is 5 MiB and
/// at most 10 000 parts are allowed (160 GiB at 16 MiB). Twice the former
/// 8 MiB, so a 128 MiB pack (`restic --pack-size 128`) takes 8 parts.
const PART: usize = 16 * 1024 * 1024;

/// Key (below the store's prefix) of the object that probes whether the
/// server honours `If-None-Match: *` (see [`Conditional`]). Starts with a
/// dot: never a repository path, so `list_repos` skips it.
const PROBE_KEY: &str = ".bulwark-conditional-write-probe";

/// Whether the server refuses a PUT with `If-None-Match: *` when the key
/// exists - probed once per store, since an S3-compatible server that
/// ignores the header would overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conditional {
    /// A conditional PUT of an existing key was refused (412): single PUTs
    /// of content-addressed files skip the HEAD and rely on the header.
    Honoured,
    /// Ignored (the second PUT succeeded) or rejected (the first failed):
    /// the header is never sent, every save does its HEAD.
    NotHonoured,
}

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
    /// The probe's verdict, shared by clones; unset until the first save
    /// (and after a probe that failed for a temporary reason).
    conditional: Arc<tokio::sync::OnceCell<Conditional>>,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("location", &self.desc)
            .finish()
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
        FileRef::Named(FileType::Data, name) => {
            format!("{repo}/data/{}/{name}", &name.as_str()[..2])
        }
        FileRef::Named(tpe, name) => format!("{repo}/{tpe}/{name}"),
    }
}

impl S3Store {
    /// Connects (lazily: no request is made here) to the bucket in `cfg`.
    /// Credentials come only from `cfg` (no environment, profile or
    /// instance metadata lookups).
    pub fn new(cfg: S3Config) -> Result<S3Store> {
        // one TLS crypto provider (ring) for the process, then opendal's
        // reqwest transport (its own default install would need aws-lc)
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal_http_transport_reqwest::install_default();
        let prefix = cfg.prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            "/".to_owned()
        } else {
            format!("/{prefix}/")
        };
        let region = if cfg.region.is_empty() {
            "us-east-1"
        } else {
            &cfg.region
        };
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
            if cfg.endpoint.is_empty() {
                "AWS"
            } else {
                &cfg.endpoint
            }
        );
        let op = Operator::new(builder)
            .map_err(|e| od_error(&e, &format_args!("configuring {desc}")))?;
        Ok(S3Store {
            op,
            desc,
            conditional: Arc::new(tokio::sync::OnceCell::new()),
        })
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
        let path = if dir.is_empty() {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        let entries = self
            .op
            .list(&path)
            .await
            .map_err(|e| od_error(&e, &format_args!("listing {path}")))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_dir() && e.path() != path)
            .map(|e| e.name().trim_end_matches('/').to_owned())
            .collect())
    }

    /// The verdict on conditional writes, probing at the first call; `None`
    /// while it cannot be told (the probe failed for a temporary reason):
    /// the caller takes the path that needs no condition, and the next save
    /// probes again.
    async fn conditional(&self) -> Option<Conditional> {
        match self.conditional.get_or_try_init(|| self.probe()).await {
            Ok(verdict) => Some(*verdict),
            Err(e) => {
                tracing::debug!(
                    "{}: cannot tell yet whether conditional writes are honoured: {e}",
                    self.desc
                );
                None
            }
        }
    }

    /// Finds out whether the server refuses `If-None-Match: *` on a PUT of
    /// an existing key: a conditional PUT of [`PROBE_KEY`] (must succeed),
    /// a second one (must be refused with 412), then a DELETE. Only a 412
    /// from the server counts as honoured: a server that ignores the header
    /// never sends one, and anything that goes wrong (a racing probe of
    /// another process deleting the object, say) ends in `NotHonoured`,
    /// the safe verdict. Temporary errors are returned, not judged.
    async fn probe(&self) -> Result<Conditional, opendal::Error> {
        use opendal::ErrorKind as K;
        let put = || {
            self.op
                .write_with(
                    PROBE_KEY,
                    Bytes::from_static(b"bulwark: probe for conditional writes, safe to delete\n"),
                )
                .if_not_exists(true)
        };
        let refused = |e: &opendal::Error| e.kind() == K::ConditionNotMatch && !e.is_temporary();
        let verdict = match put().await {
            Ok(_) => match put().await {
                Err(e) if refused(&e) => Conditional::Honoured,
                Ok(_) => Conditional::NotHonoured,
                Err(e) if e.is_temporary() => {
                    self.delete_probe().await;
                    return Err(e);
                }
                Err(e) => {
                    tracing::debug!("{}: a second conditional PUT failed: {e}", self.desc);
                    Conditional::NotHonoured
                }
            },
            // The object is there already (an earlier probe could not
            // delete it) and the server refused to overwrite it.
            Err(e) if refused(&e) => match self.op.stat(PROBE_KEY).await {
                Ok(_) => Conditional::Honoured,
                Err(e) if e.is_temporary() => return Err(e),
                Err(_) => Conditional::NotHonoured,
            },
            Err(e) if e.is_temporary() => return Err(e),
            // Rejected (501 NotImplemented, 400) or not allowed: never send it.
            Err(e) => {
                tracing::info!("{}: conditional PUT not accepted ({e}); every save checks for an existing file first", self.desc);
                Conditional::NotHonoured
            }
        };
        self.delete_probe().await;
        tracing::debug!("{}: conditional writes {verdict:?}", self.desc);
        Ok(verdict)
    }

    /// Removes the probe object (best effort: a leftover one is harmless
    /// and reused by the next probe).
    async fn delete_probe(&self) {
        if let Err(e) = self.op.delete(PROBE_KEY).await {
            tracing::warn!(
                "{}: cannot delete the probe object {PROBE_KEY}: {e}",
                self.desc
            );
        }
    }

    /// The store error for a failed final PUT or complete of `key`.
    async fn write_error(&self, e: &opendal::Error, key: &str, what: &str) -> Error {
        let conflict = e.kind() == opendal::ErrorKind::ConditionNotMatch;
        if conflict && !e.is_temporary() {
            // 412: the server refused because the key exists.
            return already_exists(&what);
        }
        if !conflict && !e.is_temporary() {
            return od_error(e, &what);
        }
        // 409 ConditionalRequestConflict (another conditional write of the
        // same key was in flight), or a temporary failure (5xx, timeout)
        // that a concurrent write of the same name may have caused - moto
        // answers 500 to a PUT that a concurrent PUT of the same key
        // overtook. If the name exists now, it is taken (an S3 PUT or
        // complete is all or nothing, so nothing partial is there); if
        // not, the error stands, and the caller may try again.
        match self.size_of(key, what).await {
            Ok(Some(_)) => already_exists(&what),
            Ok(None) if conflict => Error::new(
                ErrorKind::Io,
                format!(
                    "{what}: a concurrent upload of the same name was in progress, try again ({e})"
                ),
            ),
            Ok(None) => od_error(e, &what),
            Err(err) => err,
        }
    }

    /// Reads `body` up to [`SINGLE_PUT_MAX`] bytes: a body that ends there
    /// goes up in one PUT, a longer one as a multipart upload (module docs).
    async fn upload(
        &self,
        file: &FileRef,
        key: &str,
        what: &str,
        mut body: ByteStream,
        max_len: u64,
    ) -> Result<u64> {
        let mut incoming = Incoming::new(what, max_len);
        let mut head = Vec::new();
        let mut head_len = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = incoming.take(chunk)?;
            head_len += chunk.len();
            head.push(chunk);
            if head_len > SINGLE_PUT_MAX {
                return self.save_multipart(file, key, head, body, incoming).await;
            }
        }
        let len = incoming.verify(file)?;
        self.put_whole(file, key, what, head, len).await
    }

    /// Stores a verified body that fit in memory with one PUT (module docs).
    async fn put_whole(
        &self,
        file: &FileRef,
        key: &str,
        what: &str,
        body: Vec<Bytes>,
        len: u64,
    ) -> Result<u64> {
        let honoured = self.conditional().await == Some(Conditional::Honoured);
        // The one existence check, right before the write: skipped only
        // where the server enforces it and a racing writer could only
        // store the same bytes (content-addressed files).
        let check = !honoured || *file == FileRef::Config;
        if check && self.size_of(key, what).await?.is_some() {
            return Err(already_exists(&what));
        }
        match self
            .op
            .write_with(key, Buffer::from(body))
            .if_not_exists(honoured)
            .await
        {
            Ok(_) => Ok(len),
            Err(e) => Err(self.write_error(&e, key, what).await),
        }
    }

    /// Stores a body longer than [`SINGLE_PUT_MAX`] as a multipart upload:
    /// `head` is what was read of it so far, `body` the rest.
    async fn save_multipart(
        &self,
        file: &FileRef,
        key: &str,
        head: Vec<Bytes>,
        mut body: ByteStream,
        mut incoming: Incoming<'_>,
    ) -> Result<u64> {
        let what = incoming.what;
        // Before uploading anything: a large body for an existing name is
        // refused without sending it.
        if self.size_of(key, what).await?.is_some() {
            return Err(already_exists(&what));
        }
        let mut writer = self
            .op
            .writer_with(key)
            .chunk(PART)
            .await
            .map_err(|e| od_error(&e, &what))?;
        let outcome: Result<u64> = async {
            for chunk in head {
                writer.write(chunk).await.map_err(|e| od_error(&e, &what))?;
            }
            while let Some(chunk) = body.next().await {
                let chunk = incoming.take(chunk)?;
                writer.write(chunk).await.map_err(|e| od_error(&e, &what))?;
            }
            let len = incoming.verify(file)?;
            // The check the complete relies on (it carries no condition:
            // see the module docs), as close to it as possible.
            if self.size_of(key, what).await?.is_some() {
                return Err(already_exists(&what));
            }
            Ok(len)
        }
        .await;
        let result = match outcome {
            Ok(len) => match writer.close().await {
                Ok(_) => return Ok(len),
                Err(e) => self.write_error(&e, key, what).await,
            },
            Err(e) => e,
        };
        if let Err(abort) = writer.abort().await {
            tracing::warn!("aborting the upload of {what} failed: {abort}");
        }
        Err(result)
    }
}

/// A body being read: hashed and counted, held to `max_len`.
struct Incoming<'a> {
    what: &'a str,
    hasher: Sha256,
    len: u64,
    max_len: u64,
}

impl<'a> Incoming<'a> {
    fn new(what: &'a str, max_len: u64) -> Self {
        Self {
            what,
            hasher: Sha256::new(),
            len: 0,
            max_len,
        }
    }

    /// Accounts for the next chunk of the body.
    fn take(&mut self, chunk: std::io::Result<Bytes>) -> Result<Bytes> {
        let chunk = chunk.map_err(|e| body_error(&self.what, &e))?;
        self.len += chunk.len() as u64;
        if self.len > self.max_len {
            return Err(too_large(&self.what, self.max_len));
        }
        self.hasher.update(&chunk);
        Ok(chunk)
    }

    /// After the body's end: its length, if its hash is `file`'s name.
    fn verify(self, file: &FileRef) -> Result<u64> {
        if let FileRef::Named(_, name) = file {
            let actual = hex::encode(self.hasher.finalize());
            if actual != name.as_str() {
                return Err(hash_mismatch(&self.what, &actual));
            }
        }
        Ok(self.len)
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
        self.op
            .create_dir(&marker)
            .await
            .map_err(|e| od_error(&e, &format_args!("creating repository {repo}")))
    }

    async fn repo_exists(&self, repo: &RepoPath) -> Result<bool> {
        let what = format!("repository {repo}");
        if self
            .size_of(&key(repo, &FileRef::Config), &what)
            .await?
            .is_some()
        {
            return Ok(true);
        }
        // A directory stat is a listing: true for the marker or any key file.
        self.op
            .exists(&format!("{repo}/keys/"))
            .await
            .map_err(|e| od_error(&e, &what))
    }

    async fn list_repos(&self) -> Result<Vec<RepoPath>> {
        let mut repos = Vec::new();
        for a in self.sub_dirs("").await? {
            let Ok(repo) = RepoPath::parse(&a) else {
                continue;
            };
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
            let Some(rel) = entry.path().strip_prefix(&dir) else {
                continue;
            };
            let file_name = if tpe == FileType::Data {
                match rel.split_once('/') {
                    Some((sub, n)) if n.len() > 2 && n.starts_with(sub) => n,
                    _ => continue,
                }
            } else {
                rel
            };
            if let Ok(name) = Name::parse(file_name) {
                out.push(Entry {
                    name,
                    size: entry.metadata().content_length(),
                });
            }
        }
        if out.is_empty() && !self.repo_exists(repo).await? {
            return Err(not_found(&format_args!("repository {repo}")));
        }
        Ok(out)
    }

    async fn stat(&self, repo: &RepoPath, file: &FileRef) -> Result<Option<u64>> {
        self.size_of(&key(repo, file), &format!("{repo}/{file}"))
            .await
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
        let reader = self
            .op
            .reader(&key)
            .await
            .map_err(|e| od_error(&e, &what))?;
        let stream = reader
            .into_bytes_stream(offset..offset + length)
            .await
            .map_err(|e| od_error(&e, &what))?;
        Ok(Box::pin(stream))
    }

    async fn save(
        &self,
        repo: &RepoPath,
        file: &FileRef,
        body: ByteStream,
        max_len: u64,
    ) -> Result<u64> {
        let what = format!("{repo}/{file}");
        let key = key(repo, file);
        match self.upload(file, &key, &what, body, max_len).await {
            // Nothing was sent, and no HEAD made before reading the body. A
            // store that checks first answers "exists" for an existing name
            // whatever the body: so does this one, at the price of a HEAD
            // on these error paths only.
            Err(e) if matches!(e.kind, ErrorKind::HashMismatch | ErrorKind::TooLarge) => {
                if matches!(self.size_of(&key, &what).await, Ok(Some(_))) {
                    Err(already_exists(&what))
                } else {
                    Err(e)
                }
            }
            other => other,
        }
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
