//! Bytes and files per repository and type, counted once at start (by
//! listing the store) and then kept up to date on every save and delete;
//! quota reservations for uploads in flight.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use bulwark_store::{FileRef, FileType, RepoPath, Store};

/// Index of `config` in the per-type arrays (after the five [`FileType`]s).
pub(crate) const CONFIG: usize = 5;
/// Names of the per-type slots, for metrics labels.
pub(crate) const SLOT_NAMES: [&str; 6] = ["data", "keys", "locks", "snapshots", "index", "config"];

pub(crate) fn slot(file: &FileRef) -> usize {
    match file {
        FileRef::Config => CONFIG,
        FileRef::Named(t, _) => type_slot(*t),
    }
}

pub(crate) fn type_slot(t: FileType) -> usize {
    match t {
        FileType::Data => 0,
        FileType::Keys => 1,
        FileType::Locks => 2,
        FileType::Snapshots => 3,
        FileType::Index => 4,
    }
}

/// One repository's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RepoUsage {
    pub(crate) bytes: [u64; 6],
    pub(crate) files: [u64; 6],
    /// Bytes announced by uploads in flight (their Content-Length).
    pub(crate) reserved: u64,
}

impl RepoUsage {
    pub(crate) fn total(&self) -> u64 {
        self.bytes.iter().sum()
    }
}

/// Counts a repository by listing it.
pub(crate) async fn count(store: &dyn Store, repo: &RepoPath) -> bulwark_store::Result<RepoUsage> {
    let mut u = RepoUsage::default();
    for t in FileType::ALL {
        let entries = store.list(repo, t).await?;
        let i = type_slot(t);
        u.files[i] = entries.len() as u64;
        u.bytes[i] = entries.iter().map(|e| e.size).sum();
    }
    if let Some(size) = store.stat(repo, &FileRef::Config).await? {
        u.files[CONFIG] = 1;
        u.bytes[CONFIG] = size;
    }
    Ok(u)
}

/// Why an upload may not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The repository's quota would be exceeded.
    Quota,
    /// The data directory's `max_size` would be exceeded.
    MaxSize,
}

/// A granted upload: how many bytes it may write, and what it reserved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    /// Byte limit imposed by quotas (`u64::MAX`: none).
    pub(crate) limit: u64,
    reserved: u64,
}

/// All repositories' usage plus the limits.
#[derive(Debug)]
pub(crate) struct Usage {
    repos: Mutex<HashMap<RepoPath, RepoUsage>>,
    quotas: BTreeMap<String, u64>,
    max_size: Option<u64>,
}

impl Usage {
    pub(crate) fn new(quotas: BTreeMap<String, u64>, max_size: Option<u64>) -> Self {
        Self {
            repos: Mutex::new(HashMap::new()),
            quotas,
            max_size,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RepoPath, RepoUsage>> {
        self.repos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The quota of `repo`, if any.
    pub(crate) fn quota(&self, repo: &RepoPath) -> Option<u64> {
        self.quotas.get(&repo.to_string()).copied()
    }

    /// Every configured quota (for metrics).
    pub(crate) fn quotas(&self) -> &BTreeMap<String, u64> {
        &self.quotas
    }

    /// The data directory's limit.
    pub(crate) fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// True if `repo` is counted already.
    pub(crate) fn known(&self, repo: &RepoPath) -> bool {
        self.lock().contains_key(repo)
    }

    /// Records a freshly counted repository (unless counted meanwhile).
    pub(crate) fn insert(&self, repo: RepoPath, usage: RepoUsage) {
        self.lock().entry(repo).or_insert(usage);
    }

    /// A copy of everything, for metrics.
    pub(crate) fn snapshot(&self) -> Vec<(RepoPath, RepoUsage)> {
        let mut v: Vec<_> = self
            .lock()
            .iter()
            .map(|(r, u)| (r.clone(), u.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Bytes used by every repository plus reservations.
    pub(crate) fn grand_total(&self) -> u64 {
        self.lock().values().map(|u| u.total() + u.reserved).sum()
    }

    /// Starts an upload to `repo` of `announced` bytes (its Content-Length,
    /// when known): refuses it if a limit would be exceeded, otherwise
    /// reserves the bytes and returns the limit for the body.
    pub(crate) fn begin(&self, repo: &RepoPath, announced: Option<u64>) -> Result<Grant, Refusal> {
        let mut repos = self.lock();
        let grand: u64 = repos.values().map(|u| u.total() + u.reserved).sum();
        let u = repos.entry(repo.clone()).or_default();
        let mut limit = u64::MAX;
        let mut refusal = None;
        if let Some(q) = self.quota(repo) {
            let left = q.saturating_sub(u.total() + u.reserved);
            limit = limit.min(left);
            if announced.unwrap_or(0) > left {
                refusal = Some(Refusal::Quota);
            }
        }
        if let Some(max) = self.max_size {
            let left = max.saturating_sub(grand);
            if refusal.is_none() && announced.unwrap_or(0) > left {
                refusal = Some(Refusal::MaxSize);
            }
            limit = limit.min(left);
        }
        if let Some(r) = refusal {
            return Err(r);
        }
        let reserved = announced.unwrap_or(0);
        u.reserved += reserved;
        Ok(Grant { limit, reserved })
    }

    /// Ends an upload: releases its reservation and counts `stored` bytes
    /// (if it succeeded) as a new file in `slot`.
    pub(crate) fn end(&self, repo: &RepoPath, grant: Grant, stored: Option<(usize, u64)>) {
        let mut repos = self.lock();
        let u = repos.entry(repo.clone()).or_default();
        u.reserved = u.reserved.saturating_sub(grant.reserved);
        if let Some((slot, bytes)) = stored {
            u.bytes[slot] += bytes;
            u.files[slot] += 1;
        }
    }

    /// Counts a deleted file.
    pub(crate) fn deleted(&self, repo: &RepoPath, slot: usize, bytes: u64) {
        let mut repos = self.lock();
        if let Some(u) = repos.get_mut(repo) {
            u.bytes[slot] = u.bytes[slot].saturating_sub(bytes);
            u.files[slot] = u.files[slot].saturating_sub(1);
        }
    }
}

impl PartialEq for Grant {
    fn eq(&self, other: &Self) -> bool {
        self.limit == other.limit && self.reserved == other.reserved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_max_size() {
        let repo = RepoPath::parse("a").expect("repo");
        let other = RepoPath::parse("b").expect("repo");
        let u = Usage::new([("a".to_owned(), 100)].into(), Some(150));
        let g = u.begin(&repo, Some(60)).expect("fits");
        assert_eq!(g.limit, 100);
        assert_eq!(u.begin(&repo, Some(50)), Err(Refusal::Quota)); // 60 reserved
        let g2 = u.begin(&repo, None).expect("unknown size");
        assert_eq!(g2.limit, 40);
        u.end(&repo, g2, None);
        u.end(&repo, g, Some((0, 60)));
        assert_eq!(u.begin(&other, Some(91)).map(|_| ()), Err(Refusal::MaxSize));
        let g3 = u.begin(&other, Some(90)).expect("fits");
        u.end(&other, g3, Some((1, 90)));
        assert_eq!(u.grand_total(), 150);
        u.deleted(&repo, 0, 60);
        assert_eq!(u.grand_total(), 90);
    }
}
