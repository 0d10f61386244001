//! Deletion propagation: removing at a target what the source no longer
//! has, after a quarantine and under a cap.
//!
//! A file missing at the source is not deleted at the target when it is
//! first noticed: it enters the caller's [`Pending`] list with the time it
//! was first seen missing, and only once it has stayed missing for the
//! whole quarantine is it deleted — and then only if the run would not
//! delete more than a percentage of the target at once. A source that is
//! gone, has no `config`, holds a different repository or fails to list is
//! never a reason to delete: the run fails before touching anything.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use bulwark_store::{ErrorKind as StoreKind, FileRef, FileType, RepoPath, Store};
use futures::StreamExt;

use crate::{
    copy::{read_small, FileId, FileProblem},
    error::{ErrorKind, ReplicateError, Result},
};

/// The order in which [`propagate_deletes`] deletes: snapshots, then the
/// index, then packs, then keys — the reverse of the copy order
/// ([`PHASES`](crate::PHASES)), so the target never holds a snapshot or
/// an index entry whose packs are already gone. Locks and `config` are
/// never deleted.
pub const DELETE_ORDER: [FileType; 4] = [
    FileType::Snapshots,
    FileType::Index,
    FileType::Data,
    FileType::Keys,
];

/// The largest `config` file read (restic's is a few hundred bytes).
const MAX_CONFIG: usize = 1 << 20;

/// Deletes (and source checks) running at once within one file type.
const PARALLEL_DELETES: usize = 8;

/// How deletions at the source reach a target.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletePolicy {
    /// How long a file must have been missing at the source (since it was
    /// first seen missing) before it is deleted at the target.
    pub quarantine: Duration,
    /// The most a run may delete, in percent (0 < p <= 100) of the files
    /// the target holds (keys, data, index and snapshots together, rounded
    /// down). A run that would delete more deletes nothing and reports
    /// [`DeleteReport::over_cap`].
    pub cap_percent: f64,
    /// Only compute and report: delete nothing and leave the pending list
    /// as it was.
    pub dry_run: bool,
}

impl DeletePolicy {
    fn validate(&self) -> Result<()> {
        let p = self.cap_percent;
        if p.is_finite() && p > 0.0 && p <= 100.0 {
            Ok(())
        } else {
            Err(ReplicateError::new(
                ErrorKind::InvalidOptions,
                format!("delete cap must be a percentage above 0 and at most 100, not {p}"),
            ))
        }
    }
}

/// Files the target holds that the source no longer has, with the time they were first seen missing.
///
/// The caller keeps one per (target, repository) between runs (e.g. in a
/// database, keyed by [`FileId`]'s `type/name` text, see
/// [`FileId::parse`]); [`propagate_deletes`] updates it.
pub type Pending = BTreeMap<FileId, jiff::Timestamp>;

/// What a [`propagate_deletes`] run did (or, in a dry run, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeleteReport {
    /// The source store (no credentials).
    pub source: String,
    /// The target store (no credentials).
    pub target: String,
    /// The repository path.
    pub repo: String,
    /// Whether this was a dry run (nothing deleted, pending list unchanged;
    /// the counts are what a real run would have done).
    pub dry_run: bool,
    /// Files at the target (keys, data, index and snapshots) when listed.
    pub total: usize,
    /// Files deleted at the target (or already gone from it), in deletion
    /// order; in a dry run, the files that would be deleted.
    pub deleted: Vec<FileId>,
    /// Files found missing at the source for the first time in this run.
    pub newly_pending: usize,
    /// Entries in the pending list after the run.
    pub pending: usize,
    /// Pending files whose quarantine was over in this run.
    pub eligible: usize,
    /// The most files this run was allowed to delete.
    pub cap: usize,
    /// True if more files were eligible than `cap`: nothing was deleted
    /// (the caller should alert; a person decides).
    pub over_cap: bool,
    /// Pending files that are back at the source: no longer pending.
    pub reappeared: usize,
    /// Pending files no longer at the target (deleted by someone else):
    /// no longer pending.
    pub gone: usize,
    /// When the next pending file's quarantine ends, if one has not ended yet.
    pub next_eligible: Option<jiff::Timestamp>,
    /// Files that could not be deleted (or checked at the source); they
    /// stay pending.
    pub errors: Vec<FileProblem>,
    /// File types (`index`, `data`, `keys`) with eligible files that were
    /// not deleted because deleting an earlier type failed.
    pub skipped: Vec<String>,
}

impl DeleteReport {
    /// True when the run did everything it was allowed to: not over the
    /// cap, no errors, nothing skipped.
    pub fn is_clean(&self) -> bool {
        !self.over_cap && self.errors.is_empty() && self.skipped.is_empty()
    }
}

/// What happened to one eligible file.
enum Outcome {
    /// Deleted, already absent, or (dry run) would be deleted.
    Deleted,
    /// The source has it again: not deleted.
    BackAtSource,
    /// The cause.
    Failed(String),
}

async fn delete_one(
    source: &dyn Store,
    target: &dyn Store,
    repo: &RepoPath,
    id: &FileId,
    dry_run: bool,
) -> Outcome {
    // One last look at the source: a listing that missed a file must not
    // be enough to delete it.
    match source.stat(repo, &id.file_ref()).await {
        Ok(Some(_)) => return Outcome::BackAtSource,
        Ok(None) => {}
        Err(e) => {
            return Outcome::Failed(format!("checking the source {}: {e}", source.describe()))
        }
    }
    if dry_run {
        return Outcome::Deleted;
    }
    match target.delete(repo, &id.file_ref()).await {
        Ok(()) => Outcome::Deleted,
        Err(e) if e.kind == StoreKind::NotFound => Outcome::Deleted,
        Err(e) => Outcome::Failed(format!("deleting at the target {}: {e}", target.describe())),
    }
}

/// Reads `config` of `repo` from `store`; `None` if it has none.
async fn config_of(store: &dyn Store, repo: &RepoPath) -> Result<Option<Vec<u8>>> {
    match read_small(store, repo, &FileRef::Config, MAX_CONFIG).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind == StoreKind::NotFound => Ok(None),
        Err(e) => Err(ReplicateError::store(
            format!("reading config of {repo} from {}", store.describe()),
            e,
        )),
    }
}

fn source_not_found(src: &str, repo: &RepoPath, why: &str) -> ReplicateError {
    ReplicateError::new(
        ErrorKind::SourceNotFound,
        format!("{src}: repository {repo} {why}; deleting nothing at the target"),
    )
}

/// Propagates deletions of repository `repo` from `source` to `target`
/// (same path at both), keeping the files first seen missing in `pending`
/// (which the caller stores between runs) and deleting them only after
/// `policy.quarantine`, under `policy.cap_percent`.
///
/// 1. Checks that the source repository exists with a `config` and at
///    least one key, and that the target has the same `config`; otherwise
///    fails ([`ErrorKind::SourceNotFound`] / [`ErrorKind::ConfigMismatch`])
///    and deletes nothing. Lists `snapshots`, `index`, `data` and `keys`
///    at both sides (target first); a listing error fails the run. `config`
///    and `locks` are never touched.
/// 2. Every file at the target but not at the source enters `pending`
///    with `now` (if not already there); entries back at the source
///    (`reappeared`) or no longer at the target (`gone`) leave it.
/// 3. Entries first seen at least `quarantine` before `now` are eligible.
/// 4. If more are eligible than `cap_percent` of the target's files
///    (rounded down), nothing is deleted and the report says `over_cap`.
/// 5. Otherwise each eligible file is checked once more at the source (if
///    it is back, it leaves `pending` undeleted) and deleted, in
///    [`DELETE_ORDER`]. A deleted or already absent file leaves `pending`;
///    a failure is reported and the file stays pending, the rest of its
///    type goes on, and later types are skipped (reported).
///
/// In a dry run nothing is deleted and `pending` is not modified; the
/// report says what a real run would have done.
pub async fn propagate_deletes(
    source: &dyn Store,
    target: &dyn Store,
    repo: &RepoPath,
    pending: &mut Pending,
    now: jiff::Timestamp,
    policy: &DeletePolicy,
) -> Result<DeleteReport> {
    policy.validate()?;
    let (src, dst) = (source.describe(), target.describe());

    // 1. The source must be there and be the same repository as the target.
    let exists = source
        .repo_exists(repo)
        .await
        .map_err(|e| ReplicateError::store(format!("checking repository {repo} in {src}"), e))?;
    if !exists {
        return Err(source_not_found(&src, repo, "does not exist"));
    }
    let Some(src_config) = config_of(source, repo).await? else {
        return Err(source_not_found(&src, repo, "has no config"));
    };
    match config_of(target, repo).await? {
        Some(c) if c == src_config => {}
        Some(_) => {
            return Err(ReplicateError::new(
                ErrorKind::ConfigMismatch,
                format!("config of {repo} differs between {src} and {dst}: they are different repositories; deleting nothing"),
            ))
        }
        None => {
            return Err(ReplicateError::new(
                ErrorKind::ConfigMismatch,
                format!("{dst} has no config for {repo}, so it cannot be confirmed to hold the source's repository; deleting nothing (mirror it first)"),
            ))
        }
    }

    // The target first: a file copied after its listing cannot look missing.
    let mut at_target = BTreeSet::new();
    for tpe in DELETE_ORDER {
        let entries = target
            .list(repo, tpe)
            .await
            .map_err(|e| ReplicateError::store(format!("listing {repo}/{tpe} in {dst}"), e))?;
        at_target.extend(entries.into_iter().map(|e| FileId { tpe, name: e.name }));
    }
    let mut at_source = BTreeSet::new();
    for tpe in DELETE_ORDER {
        let entries = source.list(repo, tpe).await.map_err(|e| {
            let kind = if e.kind == StoreKind::NotFound {
                ErrorKind::SourceNotFound
            } else {
                ErrorKind::Store
            };
            ReplicateError {
                kind,
                context: format!("listing {repo}/{tpe} in {src}: {e}; deleting nothing"),
                source: Some(e),
            }
        })?;
        at_source.extend(entries.into_iter().map(|e| FileId { tpe, name: e.name }));
    }
    // A source wiped while it was listed (an object store lists an empty
    // prefix without error) or left without keys is not a repository.
    let still = source
        .stat(repo, &FileRef::Config)
        .await
        .map_err(|e| ReplicateError::store(format!("checking config of {repo} in {src}"), e))?;
    if still.is_none() {
        return Err(source_not_found(
            &src,
            repo,
            "lost its config while it was listed",
        ));
    }
    if !at_source.iter().any(|id| id.tpe == FileType::Keys) {
        return Err(source_not_found(
            &src,
            repo,
            "has no keys (not a usable repository)",
        ));
    }

    // 2. Bookkeeping, on a copy that replaces `pending` only in a real run.
    let mut next = pending.clone();
    let missing: BTreeSet<&FileId> = at_target.difference(&at_source).collect();
    let (mut reappeared, mut gone) = (0, 0);
    next.retain(|id, _| {
        if missing.contains(id) {
            true
        } else {
            if at_target.contains(id) {
                reappeared += 1;
            } else {
                // Also entries of types never deleted (e.g. locks).
                gone += 1;
            }
            false
        }
    });
    let mut newly_pending = 0;
    for id in missing {
        if !next.contains_key(id) {
            next.insert(id.clone(), now);
            newly_pending += 1;
        }
    }

    // 3. Eligible: quarantine over (an end past jiff's range never comes).
    let ends = |first_seen: &jiff::Timestamp| first_seen.checked_add(policy.quarantine).ok();
    let mut eligible: Vec<FileId> = next
        .iter()
        .filter(|(_, t)| ends(t).is_some_and(|end| end <= now))
        .map(|(id, _)| id.clone())
        .collect();
    eligible.sort_by_key(|id| {
        (
            DELETE_ORDER.iter().position(|t| *t == id.tpe),
            id.name.clone(),
        )
    });
    let next_eligible = next
        .values()
        .filter_map(ends)
        .filter(|end| *end > now)
        .min();

    // 4. The cap.
    let total = at_target.len();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let cap = (policy.cap_percent * total as f64 / 100.0).floor() as usize;

    let mut report = DeleteReport {
        source: src.clone(),
        target: dst.clone(),
        repo: repo.to_string(),
        dry_run: policy.dry_run,
        total,
        deleted: Vec::new(),
        newly_pending,
        pending: 0,
        eligible: eligible.len(),
        cap,
        over_cap: false,
        reappeared,
        gone,
        next_eligible,
        errors: Vec::new(),
        skipped: Vec::new(),
    };

    if eligible.len() > cap {
        tracing::error!(
            "deletes {repo} {src} -> {dst}: {} files are due for deletion but the cap is {cap} ({}% of {total}); deleting nothing",
            eligible.len(),
            policy.cap_percent
        );
        report.over_cap = true;
    } else {
        // 5. Delete, type by type.
        for tpe in DELETE_ORDER {
            let ids: Vec<FileId> = eligible
                .iter()
                .filter(|id| id.tpe == tpe)
                .cloned()
                .collect();
            if ids.is_empty() {
                continue;
            }
            if !report.errors.is_empty() {
                tracing::warn!(
                    "deletes {repo}: not deleting {} {tpe} files because earlier deletes failed",
                    ids.len()
                );
                report.skipped.push(tpe.to_string());
                continue;
            }
            // Owned ids: a closure over references would make the future not `Send`.
            let mut results = futures::stream::iter(ids.into_iter().map(|id| async move {
                let outcome = delete_one(source, target, repo, &id, policy.dry_run).await;
                (id, outcome)
            }))
            .buffer_unordered(PARALLEL_DELETES);
            let mut deleted = Vec::new();
            while let Some((id, outcome)) = results.next().await {
                match outcome {
                    Outcome::Deleted => {
                        next.remove(&id);
                        deleted.push(id);
                    }
                    Outcome::BackAtSource => {
                        tracing::info!("deletes {repo}: {id} is back at {src}; not deleting it");
                        next.remove(&id);
                        report.reappeared += 1;
                    }
                    Outcome::Failed(error) => {
                        tracing::warn!("deletes {repo}: {id}: {error}");
                        report.errors.push(FileProblem {
                            file: id.to_string(),
                            error,
                        });
                    }
                }
            }
            deleted.sort();
            report.deleted.extend(deleted);
        }
        report.errors.sort_by(|a, b| a.file.cmp(&b.file));
    }

    report.pending = next.len();
    if !policy.dry_run {
        *pending = next;
    }
    tracing::info!(
        "deletes {repo} {src} -> {dst}{}: {} deleted, {} newly pending, {} pending, {} eligible (cap {cap}), {} errors",
        if policy.dry_run { " (dry run)" } else { "" },
        report.deleted.len(),
        report.newly_pending,
        report.pending,
        report.eligible,
        report.errors.len()
    );
    Ok(report)
}
