//! Scrubbing every repository of a store (re-hash files against their
//! names, no key needed): on demand ([`scrub_store`], [`scrub_dir`]) and on
//! a schedule inside the hub.

use std::{path::Path, sync::Arc, time::Duration};

use bulwark_store::{local::LocalStore, Store};

use crate::{
    handler::State,
    metrics::{now_secs, RepoLabel},
    HubError,
};

/// A damaged or unreadable file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadFile {
    /// `type/name`.
    pub file: String,
    /// Why it is listed (`content does not match its name`, or the read error).
    pub problem: String,
}

/// The result of scrubbing one repository.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepoScrub {
    /// The repository path.
    pub repo: String,
    /// Files re-hashed.
    pub checked: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Files whose content does not hash to their name.
    pub corrupt: Vec<BadFile>,
    /// Files that could not be read.
    pub unreadable: Vec<BadFile>,
    /// Set if the repository could not be listed at all.
    pub error: Option<String>,
}

/// The result of scrubbing a whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScrubSummary {
    /// Per repository, in path order.
    pub repos: Vec<RepoScrub>,
    /// Files re-hashed in total.
    pub checked: u64,
    /// Bytes read in total.
    pub bytes: u64,
    /// Corrupt files in total.
    pub corrupt: u64,
    /// Unreadable files (plus repositories that could not be listed).
    pub unreadable: u64,
}

impl ScrubSummary {
    /// True if nothing corrupt or unreadable was found.
    pub fn is_clean(&self) -> bool {
        self.corrupt == 0 && self.unreadable == 0
    }
}

/// Scrubs every repository of `store`. Fails only if the repositories
/// cannot be listed; a repository that cannot be scrubbed is reported in
/// its [`RepoScrub::error`].
pub async fn scrub_store(store: &dyn Store) -> Result<ScrubSummary, HubError> {
    let mut summary = ScrubSummary::default();
    for repo in store.list_repos().await? {
        let r = match bulwark_store::scrub_repo(store, &repo, None).await {
            Ok(rep) => RepoScrub {
                repo: repo.to_string(),
                checked: rep.checked,
                bytes: rep.bytes,
                corrupt: rep
                    .corrupt
                    .iter()
                    .map(|(t, n)| BadFile {
                        file: format!("{t}/{n}"),
                        problem: "content does not match its name".into(),
                    })
                    .collect(),
                unreadable: rep
                    .unreadable
                    .iter()
                    .map(|(t, n, e)| BadFile {
                        file: format!("{t}/{n}"),
                        problem: e.clone(),
                    })
                    .collect(),
                error: None,
            },
            Err(e) => RepoScrub {
                repo: repo.to_string(),
                checked: 0,
                bytes: 0,
                corrupt: Vec::new(),
                unreadable: Vec::new(),
                error: Some(e.message),
            },
        };
        summary.checked += r.checked;
        summary.bytes += r.bytes;
        summary.corrupt += r.corrupt.len() as u64;
        summary.unreadable += r.unreadable.len() as u64 + u64::from(r.error.is_some());
        summary.repos.push(r);
    }
    Ok(summary)
}

/// Scrubs every repository in a hub data directory (for `bulwark hub scrub`).
pub async fn scrub_dir(data: &Path) -> Result<ScrubSummary, HubError> {
    if !data.is_dir() {
        return Err(HubError::Config(format!(
            "{} is not a directory",
            data.display()
        )));
    }
    let store = LocalStore::new(data)?;
    scrub_store(&store).await
}

/// Runs one scrub and publishes the results in the metrics and the log.
pub(crate) async fn scrub_once(state: &State) {
    tracing::info!("scrub started");
    match scrub_store(state.store.as_ref()).await {
        Ok(summary) => {
            let now = now_secs();
            for r in &summary.repos {
                let label = RepoLabel {
                    repo: r.repo.clone(),
                };
                let m = &state.metrics;
                m.scrub_checked.get_or_create(&label).inc_by(r.checked);
                m.scrub_corrupt
                    .get_or_create(&label)
                    .set(i64::try_from(r.corrupt.len()).unwrap_or(i64::MAX));
                let unreadable = r.unreadable.len() + usize::from(r.error.is_some());
                m.scrub_unreadable
                    .get_or_create(&label)
                    .set(i64::try_from(unreadable).unwrap_or(i64::MAX));
                m.scrub_last.get_or_create(&label).set(now);
                for f in &r.corrupt {
                    tracing::error!(repo = %r.repo, file = %f.file, "scrub: corrupt file (content does not match its name)");
                }
                for f in &r.unreadable {
                    tracing::error!(repo = %r.repo, file = %f.file, problem = %f.problem, "scrub: unreadable file");
                }
                if let Some(e) = &r.error {
                    tracing::error!(repo = %r.repo, "scrub: cannot scrub the repository: {e}");
                }
            }
            tracing::info!(
                checked = summary.checked,
                bytes = summary.bytes,
                corrupt = summary.corrupt,
                unreadable = summary.unreadable,
                "scrub finished"
            );
        }
        Err(e) => tracing::error!("scrub failed: {e}"),
    }
}

/// Scrubs every `interval` (the first run one interval after start).
pub(crate) async fn schedule(state: Arc<State>, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        scrub_once(&state).await;
    }
}
