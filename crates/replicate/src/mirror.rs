//! The mirror run: list both sides, copy what the target lacks, phase by phase.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use bulwark_store::{FileRef, FileType, RepoPath, Store};
use bytes::Bytes;
use futures::StreamExt;

use crate::{
    copy::{copy_file, read_small, CopyOutcome, FileId, FileProblem},
    error::{ErrorKind, ReplicateError, Result},
    limiter::RateLimiter,
};

/// The order in which named files are copied: keys, then packs, then the
/// index that points into them, then the snapshots that point into the
/// index. Locks are never copied.
pub const PHASES: [FileType; 4] = [
    FileType::Keys,
    FileType::Data,
    FileType::Index,
    FileType::Snapshots,
];

/// The largest `config` file accepted (restic's is a few hundred bytes).
const MAX_CONFIG: usize = 1 << 20;

/// How to mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Files copied concurrently within a phase (0 is taken as 1).
    pub parallel: usize,
    /// Bandwidth limit in bytes/s for the whole run (`None`: unlimited;
    /// `Some(0)` is refused).
    pub bandwidth: Option<u64>,
    /// Only list and compare; copy nothing (the report's `copied` counts
    /// are what would be copied).
    pub dry_run: bool,
    /// How often a failed copy (read or write error, not corruption) is
    /// tried again before it counts as an error.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_delay: Duration,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        Self {
            parallel: 4,
            bandwidth: None,
            dry_run: false,
            retries: 2,
            retry_delay: Duration::from_secs(1),
        }
    }
}

/// Counts for one file type.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TypeReport {
    /// Files copied (or, in a dry run, to copy).
    pub copied: u64,
    /// Bytes copied (in a dry run: the source's listed sizes).
    pub copied_bytes: u64,
    /// Files the target already had.
    pub present: u64,
    /// Files the target has under the same name but with a different size
    /// than the source: corrupt at one side; left alone (run
    /// [`verify_sample`](crate::verify_sample) and [`repair`](crate::repair)).
    pub size_mismatch: Vec<FileId>,
}

/// What a [`mirror_repo`] run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorReport {
    /// The source store (no credentials).
    pub source: String,
    /// The target store (no credentials).
    pub target: String,
    /// The repository path.
    pub repo: String,
    /// When the run started.
    pub started: jiff::Timestamp,
    /// How long it took, in seconds.
    pub duration_secs: f64,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// True if `config` was copied in this run.
    pub config_copied: bool,
    /// Per file type (`keys`, `data`, `index`, `snapshots`).
    pub types: BTreeMap<String, TypeReport>,
    /// Source files whose content does not hash to their name: not copied.
    pub corrupt_source: Vec<FileId>,
    /// Source files listed but gone when read (e.g. pruned meanwhile).
    pub vanished: Vec<FileId>,
    /// Files that could not be copied (read or write errors).
    pub errors: Vec<FileProblem>,
    /// Phases not run because an earlier phase had errors (so the target
    /// never gets an index or snapshot whose packs failed to copy).
    pub skipped_phases: Vec<String>,
}

impl MirrorReport {
    /// Files copied over all types.
    pub fn copied_files(&self) -> u64 {
        self.types.values().map(|t| t.copied).sum()
    }

    /// Bytes copied over all types.
    pub fn copied_bytes(&self) -> u64 {
        self.types.values().map(|t| t.copied_bytes).sum()
    }

    /// Files the target already had, over all types.
    pub fn present_files(&self) -> u64 {
        self.types.values().map(|t| t.present).sum()
    }

    /// True when the target now has every source file (nothing failed,
    /// nothing corrupt, no phase skipped, no size mismatch).
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
            && self.corrupt_source.is_empty()
            && self.skipped_phases.is_empty()
            && self.types.values().all(|t| t.size_mismatch.is_empty())
    }

    /// The counts of one type.
    pub fn get(&self, tpe: FileType) -> TypeReport {
        self.types.get(tpe.as_str()).cloned().unwrap_or_default()
    }
}

pub(crate) fn limiter(opts: &MirrorOptions) -> Result<Option<Arc<RateLimiter>>> {
    match opts.bandwidth {
        None => Ok(None),
        Some(0) => Err(ReplicateError::new(
            ErrorKind::InvalidOptions,
            "bandwidth limit must be > 0 bytes/s (use None for unlimited)",
        )),
        Some(b) => Ok(Some(Arc::new(RateLimiter::new(b)))),
    }
}

/// [`copy_file`], tried again after read/write failures as `opts` says.
pub(crate) async fn copy_with_retries(
    source: &dyn Store,
    target: &dyn Store,
    repo: &RepoPath,
    file: &FileRef,
    limiter: Option<Arc<RateLimiter>>,
    opts: &MirrorOptions,
) -> CopyOutcome {
    let mut delay = opts.retry_delay;
    let mut attempt = 0;
    loop {
        let outcome = copy_file(source, target, repo, file, limiter.clone()).await;
        match outcome {
            CopyOutcome::Failed(ref error) if attempt < opts.retries => {
                attempt += 1;
                tracing::info!(
                    "copying {repo}/{file} failed ({error}); retry {attempt} of {} in {delay:?}",
                    opts.retries
                );
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
            other => return other,
        }
    }
}

/// Makes sure the target has the source's `config`: copies it if absent,
/// refuses if present and different. Returns true if it was copied.
pub(crate) async fn sync_config(
    source: &dyn Store,
    target: &dyn Store,
    repo: &RepoPath,
    dry_run: bool,
) -> Result<bool> {
    let (src, dst) = (source.describe(), target.describe());
    let config = match read_small(source, repo, &FileRef::Config, MAX_CONFIG).await {
        Ok(c) => c,
        Err(e) if e.kind == bulwark_store::ErrorKind::NotFound => {
            return Err(ReplicateError::new(
                ErrorKind::SourceNotFound,
                format!("repository {repo} in {src} has no config: not a repository"),
            ));
        }
        Err(e) => {
            return Err(ReplicateError::store(
                format!("reading config of {repo} from {src}"),
                e,
            ))
        }
    };
    let compare = |existing: Vec<u8>| {
        if existing == config {
            Ok(false)
        } else {
            Err(ReplicateError::new(
                ErrorKind::ConfigMismatch,
                format!("config of {repo} differs between {src} and {dst}: they are different repositories; refusing to mirror"),
            ))
        }
    };
    let existing = target
        .stat(repo, &FileRef::Config)
        .await
        .map_err(|e| ReplicateError::store(format!("checking config of {repo} in {dst}"), e))?;
    if existing.is_some() {
        let current = read_small(target, repo, &FileRef::Config, MAX_CONFIG)
            .await
            .map_err(|e| {
                ReplicateError::store(format!("reading config of {repo} from {dst}"), e)
            })?;
        return compare(current);
    }
    if dry_run {
        return Ok(true);
    }
    let body: bulwark_store::ByteStream =
        Box::pin(futures::stream::iter([Ok(Bytes::from(config.clone()))]));
    match target.save(repo, &FileRef::Config, body, u64::MAX).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind == bulwark_store::ErrorKind::AlreadyExists => {
            let current = read_small(target, repo, &FileRef::Config, MAX_CONFIG)
                .await
                .map_err(|e| {
                    ReplicateError::store(format!("reading config of {repo} from {dst}"), e)
                })?;
            compare(current)
        }
        Err(e) => Err(ReplicateError::store(
            format!("writing config of {repo} to {dst}"),
            e,
        )),
    }
}

/// Mirrors repository `repo` from `source` to `target` (same path at both):
/// copies `config` (refusing a different existing one), then every `keys`,
/// `data`, `index` and `snapshots` file the target lacks, in that order,
/// each phase finished before the next starts. Every file is hashed while
/// it streams; a source file whose content does not match its name is not
/// stored and is reported. Nothing is ever deleted at the target; `locks`
/// are never copied. If a phase has copy errors, later phases are skipped
/// (reported), so the target never refers to packs it does not have; a
/// rerun copies only what is still missing.
///
/// Fails (without copying further) only if the source repository or its
/// config is missing, the configs differ, or a listing fails.
pub async fn mirror_repo(
    source: &dyn Store,
    target: &dyn Store,
    repo: &RepoPath,
    opts: &MirrorOptions,
) -> Result<MirrorReport> {
    let start = Instant::now();
    let started = jiff::Timestamp::now();
    let limiter = limiter(opts)?;
    let parallel = opts.parallel.max(1);
    let (src, dst) = (source.describe(), target.describe());

    let exists = source
        .repo_exists(repo)
        .await
        .map_err(|e| ReplicateError::store(format!("checking repository {repo} in {src}"), e))?;
    if !exists {
        return Err(ReplicateError::new(
            ErrorKind::SourceNotFound,
            format!("{src} has no repository {repo}"),
        ));
    }
    if !opts.dry_run {
        target.create_repo(repo).await.map_err(|e| {
            ReplicateError::store(format!("creating repository {repo} in {dst}"), e)
        })?;
    }
    let config_copied = sync_config(source, target, repo, opts.dry_run).await?;

    let mut report = MirrorReport {
        source: src.clone(),
        target: dst.clone(),
        repo: repo.to_string(),
        started,
        duration_secs: 0.0,
        dry_run: opts.dry_run,
        config_copied,
        types: BTreeMap::new(),
        corrupt_source: Vec::new(),
        vanished: Vec::new(),
        errors: Vec::new(),
        skipped_phases: Vec::new(),
    };

    for tpe in PHASES {
        if !report.errors.is_empty() {
            tracing::warn!("mirror {repo}: skipping {tpe} because earlier copies failed");
            report.skipped_phases.push(tpe.to_string());
            continue;
        }
        let mut tr = TypeReport::default();
        let source_files = source
            .list(repo, tpe)
            .await
            .map_err(|e| ReplicateError::store(format!("listing {repo}/{tpe} in {src}"), e))?;
        let target_files: HashMap<_, _> = match target.list(repo, tpe).await {
            Ok(v) => v.into_iter().map(|e| (e.name, e.size)).collect(),
            Err(e) if opts.dry_run && e.kind == bulwark_store::ErrorKind::NotFound => {
                HashMap::new()
            }
            Err(e) => {
                return Err(ReplicateError::store(
                    format!("listing {repo}/{tpe} in {dst}"),
                    e,
                ))
            }
        };
        let mut missing = Vec::new();
        for entry in source_files {
            match target_files.get(&entry.name) {
                Some(&size) => {
                    tr.present += 1;
                    if size != entry.size {
                        tracing::warn!("mirror {repo}: {tpe}/{} is {} bytes at the source but {size} at the target", entry.name, entry.size);
                        tr.size_mismatch.push(FileId {
                            tpe,
                            name: entry.name,
                        });
                    }
                }
                None => missing.push(entry),
            }
        }
        missing.sort_by(|a, b| a.name.cmp(&b.name));
        tracing::info!(
            "mirror {repo}: {tpe}: {} to copy, {} present",
            missing.len(),
            tr.present
        );

        if opts.dry_run {
            tr.copied = missing.len() as u64;
            tr.copied_bytes = missing.iter().map(|e| e.size).sum();
        } else {
            let mut results = futures::stream::iter(missing.into_iter().map(|entry| {
                let limiter = limiter.clone();
                async move {
                    let id = FileId {
                        tpe,
                        name: entry.name,
                    };
                    let outcome =
                        copy_with_retries(source, target, repo, &id.file_ref(), limiter, opts)
                            .await;
                    (id, outcome)
                }
            }))
            .buffer_unordered(parallel);
            while let Some((id, outcome)) = results.next().await {
                match outcome {
                    CopyOutcome::Copied(n) => {
                        tr.copied += 1;
                        tr.copied_bytes += n;
                    }
                    CopyOutcome::AlreadyPresent => tr.present += 1,
                    CopyOutcome::CorruptSource => {
                        tracing::error!("mirror {repo}: {id} at {src} is corrupt (content does not hash to its name); not copied");
                        report.corrupt_source.push(id);
                    }
                    CopyOutcome::Vanished => {
                        tracing::warn!("mirror {repo}: {id} vanished from {src}");
                        report.vanished.push(id);
                    }
                    CopyOutcome::Failed(error) => {
                        tracing::warn!("mirror {repo}: {id}: {error}");
                        report.errors.push(FileProblem {
                            file: id.to_string(),
                            error,
                        });
                    }
                }
            }
        }
        report.types.insert(tpe.to_string(), tr);
    }
    report.corrupt_source.sort();
    report.vanished.sort();
    report.errors.sort_by(|a, b| a.file.cmp(&b.file));
    report.duration_secs = start.elapsed().as_secs_f64();
    tracing::info!(
        "mirror {repo} {src} -> {dst}: {} files / {} bytes copied, {} present, {} corrupt at source, {} errors",
        report.copied_files(),
        report.copied_bytes(),
        report.present_files(),
        report.corrupt_source.len(),
        report.errors.len()
    );
    Ok(report)
}
