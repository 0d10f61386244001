//! Re-hashing a sample of the target, and repairing what is found.

use std::time::Instant;

use bulwark_store::{ErrorKind as StoreKind, FileRef, FileType, RepoPath, Store};
use futures::StreamExt;
use rand::{seq::SliceRandom, SeedableRng};

use crate::{
    copy::{hash_file, CopyOutcome, FileId, FileProblem},
    error::{ReplicateError, Result},
    mirror::{copy_with_retries, limiter, sync_config, MirrorOptions, PHASES},
};

/// Which data packs [`verify_sample`] re-hashes (keys, index and snapshot
/// files are always all checked: they are small and everything depends on
/// them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// Every pack.
    All,
    /// A fraction 0.0–1.0 of the packs (rounded up; NaN is 0).
    Fraction(f64),
    /// This many packs (or all, if there are fewer).
    Count(usize),
}

/// What [`verify_sample`] found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// The store checked.
    pub store: String,
    /// The repository path.
    pub repo: String,
    /// Whether the repository has a `config`.
    pub config_present: bool,
    /// Files read to the end and hashed.
    pub checked: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Data packs in the repository.
    pub data_total: u64,
    /// Data packs sampled.
    pub data_sampled: u64,
    /// Files whose content does not hash to their name.
    pub corrupt: Vec<FileId>,
    /// Files listed but gone when read.
    pub missing: Vec<FileId>,
    /// Files that could not be read (not proven corrupt).
    pub unreadable: Vec<FileProblem>,
    /// How long it took, in seconds.
    pub duration_secs: f64,
}

impl VerifyReport {
    /// True when everything checked was present and intact.
    pub fn is_clean(&self) -> bool {
        self.config_present
            && self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.unreadable.is_empty()
    }
}

enum Checked {
    Ok(u64),
    Corrupt(u64),
    Missing,
    Unreadable(String),
}

async fn check(store: &dyn Store, repo: &RepoPath, id: &FileId) -> Checked {
    match hash_file(store, repo, &id.file_ref()).await {
        Ok((hash, len)) if hash == id.name.as_str() => Checked::Ok(len),
        Ok((_, len)) => Checked::Corrupt(len),
        Err(e) if e.kind == StoreKind::NotFound => Checked::Missing,
        Err(e) => Checked::Unreadable(e.to_string()),
    }
}

/// Re-hashes files of `repo` in `target` against their names: every
/// `keys`, `index` and `snapshots` file, and the data packs chosen by
/// `sample` (a random choice reproducible from `seed`). Fails only if a
/// listing fails.
pub async fn verify_sample(
    target: &dyn Store,
    repo: &RepoPath,
    sample: Sample,
    seed: u64,
) -> Result<VerifyReport> {
    let start = Instant::now();
    let desc = target.describe();
    let mut report = VerifyReport {
        store: desc.clone(),
        repo: repo.to_string(),
        ..VerifyReport::default()
    };
    report.config_present = target
        .stat(repo, &FileRef::Config)
        .await
        .map_err(|e| ReplicateError::store(format!("checking config of {repo} in {desc}"), e))?
        .is_some();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut files = Vec::new();
    for tpe in PHASES {
        let mut entries = target
            .list(repo, tpe)
            .await
            .map_err(|e| ReplicateError::store(format!("listing {repo}/{tpe} in {desc}"), e))?;
        // Sorted first so the same seed picks the same files.
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        if tpe == FileType::Data {
            report.data_total = entries.len() as u64;
            let keep = match sample {
                Sample::All => entries.len(),
                Sample::Count(n) => n.min(entries.len()),
                Sample::Fraction(f) => {
                    let f = if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
                    #[allow(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        clippy::cast_precision_loss
                    )]
                    let keep = (entries.len() as f64 * f).ceil() as usize;
                    keep.min(entries.len())
                }
            };
            entries.shuffle(&mut rng);
            entries.truncate(keep);
            report.data_sampled = keep as u64;
        }
        files.extend(entries.into_iter().map(|e| FileId { tpe, name: e.name }));
    }
    let mut results = futures::stream::iter(files.into_iter().map(|id| async move {
        let c = check(target, repo, &id).await;
        (id, c)
    }))
    .buffer_unordered(4);
    while let Some((id, checked)) = results.next().await {
        match checked {
            Checked::Ok(len) => {
                report.checked += 1;
                report.bytes += len;
            }
            Checked::Corrupt(len) => {
                tracing::error!(
                    "{repo}/{id} in {desc} is corrupt: its content does not hash to its name"
                );
                report.checked += 1;
                report.bytes += len;
                report.corrupt.push(id);
            }
            Checked::Missing => report.missing.push(id),
            Checked::Unreadable(error) => report.unreadable.push(FileProblem {
                file: id.to_string(),
                error,
            }),
        }
    }
    report.corrupt.sort();
    report.missing.sort();
    report.unreadable.sort_by(|a, b| a.file.cmp(&b.file));
    report.duration_secs = start.elapsed().as_secs_f64();
    Ok(report)
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// True if a missing `config` was copied.
    pub config_copied: bool,
    /// Files (corrupt or missing at the target) copied again from the source.
    pub recopied: Vec<FileId>,
    /// Files reported corrupt that now hash correctly (left alone).
    pub intact: Vec<FileId>,
    /// Corrupt target files the target store would not delete (so they
    /// could not be replaced), with its answer.
    pub undeletable: Vec<FileProblem>,
    /// Files that are corrupt at the source too (or missing there): the
    /// target could not be repaired from it.
    pub unrepairable: Vec<FileProblem>,
    /// Other failures.
    pub errors: Vec<FileProblem>,
}

impl RepairReport {
    /// True when everything reported was repaired (or found intact).
    pub fn is_complete(&self) -> bool {
        self.undeletable.is_empty() && self.unrepairable.is_empty() && self.errors.is_empty()
    }
}

/// Repairs what `found` (a [`verify_sample`] of `target`) reported, from
/// `source`: a file reported corrupt is hashed again and, only if it is
/// still corrupt, deleted at the target (if the store allows) and copied
/// again (verified); missing files and a missing `config` are copied.
/// Unreadable files are left alone (not proven corrupt). Fails only on a
/// config mismatch or a failing config read/write.
pub async fn repair(
    source: &dyn Store,
    target: &dyn Store,
    repo: &RepoPath,
    found: &VerifyReport,
    opts: &MirrorOptions,
) -> Result<RepairReport> {
    let limiter = limiter(opts)?;
    let desc = target.describe();
    let mut report = RepairReport::default();
    if !found.config_present {
        report.config_copied = sync_config(source, target, repo, false).await?;
    }
    let mut to_copy: Vec<FileId> = found.missing.clone();
    for id in &found.corrupt {
        match check(target, repo, id).await {
            Checked::Ok(_) => report.intact.push(id.clone()),
            Checked::Missing => to_copy.push(id.clone()),
            Checked::Unreadable(error) => report.errors.push(FileProblem {
                file: id.to_string(),
                error,
            }),
            Checked::Corrupt(_) => match target.delete(repo, &id.file_ref()).await {
                Ok(()) => {
                    tracing::warn!("deleted corrupt {repo}/{id} from {desc}; copying it again");
                    to_copy.push(id.clone());
                }
                Err(e) if e.kind == StoreKind::NotFound => to_copy.push(id.clone()),
                Err(e) => report.undeletable.push(FileProblem {
                    file: id.to_string(),
                    error: e.to_string(),
                }),
            },
        }
    }
    // Phase order again: packs before index before snapshots.
    to_copy.sort_by_key(|id| (PHASES.iter().position(|t| *t == id.tpe), id.name.clone()));
    for id in to_copy {
        match copy_with_retries(source, target, repo, &id.file_ref(), limiter.clone(), opts).await {
            CopyOutcome::Copied(_) | CopyOutcome::AlreadyPresent => report.recopied.push(id),
            CopyOutcome::CorruptSource => report.unrepairable.push(FileProblem {
                file: id.to_string(),
                error: "corrupt at the source too".into(),
            }),
            CopyOutcome::Vanished => report.unrepairable.push(FileProblem {
                file: id.to_string(),
                error: "missing at the source".into(),
            }),
            CopyOutcome::Failed(error) => report.errors.push(FileProblem {
                file: id.to_string(),
                error,
            }),
        }
    }
    Ok(report)
}
