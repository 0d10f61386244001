//! `bulwark replicate`: copy the hub's repositories to the `[targets]` of the
//! configuration, keyless and verified (`bulwark-replicate`), once.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, Result};
use bulwark_config::{RepoUrl, Target};
use bulwark_replicate::{mirror_repo, repair, verify_sample, MirrorOptions, MirrorReport, RepairReport, Sample, VerifyReport};
use bulwark_store::{local::LocalStore, RepoPath, Store};
use clap::Args;
use serde::Serialize;

use crate::{
    cli::Global,
    context::{fail, load_config},
    exit,
};

/// `bulwark replicate`.
#[derive(Debug, Args)]
pub(crate) struct ReplicateArgs {
    /// Only these targets (repeatable) [default: every `[targets.NAME]`].
    #[arg(long = "target", value_name = "NAME")]
    pub(crate) targets: Vec<String>,
    /// The hub's data directory [default: `[hub] data`].
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// Afterwards re-hash a sample of each copy (the target's `verify_sample`)
    /// and re-copy what is missing or corrupt.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Only show what would be copied.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// One repository copied to one target.
#[derive(Debug, Serialize)]
struct Outcome {
    target: String,
    repo: String,
    medium: &'static str,
    offsite: bool,
    mirror: Option<MirrorReport>,
    verify: Option<VerifyReport>,
    repair: Option<RepairReport>,
    error: Option<String>,
}

impl Outcome {
    fn clean(&self) -> bool {
        self.error.is_none()
            && self.mirror.as_ref().is_some_and(|m| m.is_complete() && m.corrupt_source.is_empty())
            && self.repair.as_ref().is_none_or(RepairReport::is_complete)
    }
}

fn target_store(t: &Target) -> Result<Arc<dyn Store>> {
    match &t.url {
        RepoUrl::Local(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create the target directory {}", dir.display()))?;
            Ok(Arc::new(LocalStore::new(dir.clone()).with_context(|| format!("cannot use {}", dir.display()))?))
        }
        RepoUrl::S3 { endpoint, bucket, prefix } => s3_target(t, endpoint, bucket, prefix),
        RepoUrl::Rest(url) => {
            let auth = match &t.rest {
                Some(bulwark_config::TargetRestAuth { username: Some(user), password }) => {
                    let pw = match password {
                        Some(p) => p.load().map_err(|e| fail(e.to_string(), "fix the target's password_file"))?.expose().to_string(),
                        None => String::new(),
                    };
                    Some((user.clone(), pw))
                }
                _ => None,
            };
            // a peer's HTTPS certificate is checked against the system's roots
            Ok(Arc::new(
                bulwark_store::RestStore::new(url, auth, None).map_err(|e| fail(format!("target `{}`: {e}", t.name), "check its url"))?,
            ))
        }
    }
}

#[cfg(feature = "s3")]
fn s3_target(t: &Target, endpoint: &str, bucket: &str, prefix: &str) -> Result<Arc<dyn Store>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let secret = |s: &Option<bulwark_config::SecretSource>, var: &str| -> Result<Option<String>> {
        match s {
            Some(src) => Ok(Some(src.load().map_err(|e| fail(e.to_string(), "fix the target's key files"))?.expose().to_string())),
            None => Ok(env(var)),
        }
    };
    let s3 = t.s3.clone().unwrap_or(bulwark_config::S3Settings { region: "us-east-1".into(), access_key_id: None, secret_access_key: None });
    let (Some(access_key_id), Some(secret_access_key)) =
        (secret(&s3.access_key_id, "AWS_ACCESS_KEY_ID")?, secret(&s3.secret_access_key, "AWS_SECRET_ACCESS_KEY")?)
    else {
        return Err(fail(
            format!("target `{}`: no S3 credentials", t.name),
            "set access_key_id_file and secret_access_key_file on the target (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
        ));
    };
    let store = bulwark_store::s3::S3Store::new(bulwark_store::s3::S3Config {
        endpoint: endpoint.to_string(),
        region: s3.region,
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        access_key_id,
        secret_access_key,
    })
    .with_context(|| format!("target `{}`: cannot use the bucket {bucket}", t.name))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "s3"))]
fn s3_target(t: &Target, _endpoint: &str, _bucket: &str, _prefix: &str) -> Result<Arc<dyn Store>> {
    Err(fail(
        format!("target `{}` is an S3 bucket, but this bulwark was built without S3 support", t.name),
        "build it with `cargo build --release -p bulwark --features s3`",
    ))
}

pub(crate) fn replicate(g: &Global, a: ReplicateArgs) -> Result<u8> {
    let cfg = load_config(g)?.ok_or_else(|| fail("replicate needs a configuration file with [targets]", "give it with -c FILE"))?;
    let data = a
        .data
        .clone()
        .or_else(|| cfg.hub.as_ref().and_then(|h| h.data.clone()))
        .ok_or_else(|| fail("which repositories? no hub data directory", "set `data` in [hub], or pass --data DIR"))?;
    let targets: Vec<&Target> = if a.targets.is_empty() {
        cfg.targets.values().collect()
    } else {
        a.targets
            .iter()
            .map(|n| {
                cfg.targets.get(n).ok_or_else(|| {
                    fail(format!("there is no [targets.{n}]"), format!("targets: {}", cfg.targets.keys().cloned().collect::<Vec<_>>().join(", ")))
                })
            })
            .collect::<Result<_>>()?
    };
    if targets.is_empty() {
        return Err(fail("the configuration has no [targets]", "add a [targets.NAME] table (docs/replication.md)"));
    }
    let source: Arc<dyn Store> = Arc::new(LocalStore::new(data.clone()).with_context(|| format!("cannot use the hub data directory {}", data.display()))?);
    let rt = crate::hub_cmd::runtime()?;
    let outcomes = rt.block_on(async {
        let all = source.list_repos().await.map_err(|e| fail(format!("cannot list the repositories in {}: {e}", data.display()), "check --data"))?;
        let mut out = Vec::new();
        for t in &targets {
            let store = match target_store(t) {
                Ok(s) => s,
                Err(e) => {
                    out.push(Outcome { target: t.name.clone(), repo: String::new(), medium: t.medium.as_str(), offsite: t.offsite, mirror: None, verify: None, repair: None, error: Some(format!("{e:#}")) });
                    continue;
                }
            };
            let repos: Vec<RepoPath> = if t.repositories.is_empty() {
                all.clone()
            } else {
                t.repositories.iter().filter_map(|r| RepoPath::parse(r).ok()).collect()
            };
            let opts = MirrorOptions {
                parallel: usize::try_from(t.parallel).unwrap_or(4),
                bandwidth: t.bandwidth,
                dry_run: a.dry_run,
                ..MirrorOptions::default()
            };
            for repo in repos {
                let mut o = Outcome { target: t.name.clone(), repo: repo.to_string(), medium: t.medium.as_str(), offsite: t.offsite, mirror: None, verify: None, repair: None, error: None };
                match mirror_repo(source.as_ref(), store.as_ref(), &repo, &opts).await {
                    Ok(m) => o.mirror = Some(m),
                    Err(e) => o.error = Some(e.to_string()),
                }
                if a.verify && o.error.is_none() && !a.dry_run {
                    let seed: u64 = rand::random();
                    match verify_sample(store.as_ref(), &repo, Sample::Fraction(t.verify_sample_percent / 100.0), seed).await {
                        Ok(v) => {
                            if !v.is_clean() {
                                match repair(source.as_ref(), store.as_ref(), &repo, &v, &opts).await {
                                    Ok(r) => o.repair = Some(r),
                                    Err(e) => o.error = Some(format!("repair: {e}")),
                                }
                            }
                            o.verify = Some(v);
                        }
                        Err(e) => o.error = Some(format!("verify: {e}")),
                    }
                }
                out.push(o);
            }
        }
        Ok::<_, anyhow::Error>(out)
    })?;
    if g.json {
        crate::output::json(&outcomes)?;
    } else {
        for o in &outcomes {
            let head = format!("{} → {} ({}{})", if o.repo.is_empty() { "*" } else { &o.repo }, o.target, o.medium, if o.offsite { ", offsite" } else { "" });
            match (&o.mirror, &o.error) {
                (_, Some(e)) => println!("{head}: FAILED: {e}"),
                (Some(m), None) => {
                    println!(
                        "{head}: {} file(s) copied ({}), {} already there{}",
                        m.copied_files(),
                        crate::output::size(m.copied_bytes()),
                        m.present_files(),
                        if m.dry_run { " [dry run]" } else { "" }
                    );
                    for c in &m.corrupt_source {
                        println!("  CORRUPT at the source, not copied: {c}");
                    }
                }
                (None, None) => {}
            }
            if let Some(v) = &o.verify {
                println!("  verified {} file(s): {} corrupt, {} missing", v.checked, v.corrupt.len(), v.missing.len());
            }
            if let Some(r) = &o.repair {
                println!("  repaired: {} re-copied, {} could not be repaired", r.recopied.len(), r.unrepairable.len() + r.undeletable.len());
            }
        }
    }
    Ok(if outcomes.iter().all(Outcome::clean) { exit::OK } else if outcomes.iter().any(|o| o.error.is_some()) { exit::FATAL } else { exit::INCOMPLETE })
}

/// `bulwark report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The hub's data directory [default: `[hub] data`].
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
}

/// One copy of a job's repository.
#[derive(Debug, Serialize)]
struct Copy {
    /// `hub` or the target's name.
    place: String,
    medium: &'static str,
    offsite: bool,
    /// Holds every snapshot the hub holds.
    current: bool,
    /// Snapshots the hub has that this copy lacks.
    missing_snapshots: usize,
    error: Option<String>,
}

/// The 3-2-1 line of one job.
#[derive(Debug, Serialize)]
struct JobCopies {
    job: String,
    host: Option<String>,
    repo: Option<String>,
    snapshots: usize,
    copies: usize,
    media: usize,
    offsite: usize,
    /// Seconds between two scheduled runs (None: not scheduled).
    interval_seconds: Option<u64>,
    /// The age of the newest snapshot on the hub, when no offsite copy holds it.
    replication_lag_seconds: Option<u64>,
    /// Worst case data loss if the hub burns: interval + offsite lag.
    effective_rpo_seconds: Option<u64>,
    rpo_seconds: Option<u64>,
    copies_detail: Vec<Copy>,
    violations: Vec<String>,
}

/// The repository path on the hub of a job's repository: a local path under
/// the data directory, or the path of a `rest:` URL.
fn hub_repo_of(url: &RepoUrl, data: &std::path::Path) -> Option<String> {
    match url {
        RepoUrl::Local(p) => p.strip_prefix(data).ok().map(|r| r.to_string_lossy().trim_matches('/').to_string()),
        RepoUrl::Rest(u) => {
            let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
            rest.split_once('/').map(|(_, p)| p.trim_matches('/').to_string())
        }
        RepoUrl::S3 { .. } => None,
    }
}

/// Seconds between the next two fire times of a schedule.
fn interval_of(s: &bulwark_config::JobSchedule) -> Option<u64> {
    let now = jiff::Zoned::now();
    let a = s.schedule.calendar.next_after(now)?;
    let b = s.schedule.calendar.next_after(a.clone())?;
    u64::try_from(b.timestamp().as_second() - a.timestamp().as_second()).ok()
}

pub(crate) fn report(g: &Global, a: ReportArgs) -> Result<u8> {
    let cfg = load_config(g)?.ok_or_else(|| fail("report needs the hub's configuration file", "give it with -c FILE"))?;
    let data = a
        .data
        .clone()
        .or_else(|| cfg.hub.as_ref().and_then(|h| h.data.clone()))
        .ok_or_else(|| fail("which repositories? no hub data directory", "set `data` in [hub], or pass --data DIR"))?;
    let source: Arc<dyn Store> = Arc::new(LocalStore::new(data.clone()).with_context(|| format!("cannot use {}", data.display()))?);
    type Opened = Result<Arc<dyn Store>, String>;
    let stores: Vec<(&Target, Opened)> =
        cfg.targets.values().map(|t| (t, target_store(t).map_err(|e| format!("{e:#}")))).collect();
    let rt = crate::hub_cmd::runtime()?;
    let lines = rt.block_on(async {
        let mut lines = Vec::new();
        for job in cfg.jobs.values() {
            let repo_cfg = cfg.repository_for(job);
            let repo = hub_repo_of(&repo_cfg.url, &data);
            let mut line = JobCopies {
                job: job.name.clone(),
                host: job.host.clone(),
                repo: repo.clone(),
                snapshots: 0,
                copies: 0,
                media: 0,
                offsite: 0,
                interval_seconds: job.schedule.as_ref().and_then(interval_of),
                replication_lag_seconds: None,
                effective_rpo_seconds: None,
                rpo_seconds: job.rpo.map(|d| d.as_secs()),
                copies_detail: Vec::new(),
                violations: Vec::new(),
            };
            let Some(path) = repo.as_deref().and_then(|r| RepoPath::parse(r).ok()) else {
                line.violations.push("its repository is not on this hub: copies unknown".into());
                lines.push(line);
                continue;
            };
            let names = |v: Vec<bulwark_store::Entry>| v.into_iter().map(|e| e.name.to_string()).collect::<std::collections::BTreeSet<_>>();
            let at_hub = match source.list(&path, bulwark_store::FileType::Snapshots).await {
                Ok(v) => names(v),
                Err(e) => {
                    line.violations.push(format!("cannot list the hub's copy: {e}"));
                    lines.push(line);
                    continue;
                }
            };
            line.snapshots = at_hub.len();
            line.copies_detail.push(Copy { place: "hub".into(), medium: "disk", offsite: false, current: !at_hub.is_empty(), missing_snapshots: 0, error: None });
            for (t, store) in &stores {
                let selected = t.repositories.is_empty() || t.repositories.iter().any(|r| r == path.to_string().as_str());
                if !selected {
                    continue;
                }
                let mut c = Copy { place: t.name.clone(), medium: t.medium.as_str(), offsite: t.offsite, current: false, missing_snapshots: at_hub.len(), error: None };
                match store {
                    Err(e) => c.error = Some(e.clone()),
                    Ok(s) => match s.list(&path, bulwark_store::FileType::Snapshots).await {
                        Ok(v) => {
                            let there = names(v);
                            c.missing_snapshots = at_hub.difference(&there).count();
                            c.current = !at_hub.is_empty() && c.missing_snapshots == 0;
                        }
                        Err(e) if e.kind == bulwark_store::ErrorKind::NotFound => {}
                        Err(e) => c.error = Some(e.to_string()),
                    },
                }
                line.copies_detail.push(c);
            }
            let current: Vec<&Copy> = line.copies_detail.iter().filter(|c| c.current).collect();
            line.copies = current.len();
            line.media = current.iter().map(|c| c.medium).collect::<std::collections::BTreeSet<_>>().len();
            line.offsite = current.iter().filter(|c| c.offsite).count();
            if line.offsite == 0 && !at_hub.is_empty() {
                let newest = source.newest(&path, bulwark_store::FileType::Snapshots).await.ok().flatten();
                line.replication_lag_seconds = newest.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs());
            } else {
                line.replication_lag_seconds = Some(0);
            }
            line.effective_rpo_seconds = match (line.interval_seconds, line.replication_lag_seconds) {
                (Some(i), Some(l)) => Some(i + l),
                _ => None,
            };
            if line.copies < 3 {
                line.violations.push(format!("3-2-1: {} current cop{} (needs 3)", line.copies, if line.copies == 1 { "y" } else { "ies" }));
            }
            if line.media < 2 {
                line.violations.push(format!("3-2-1: {} medium (needs 2 different)", line.media));
            }
            if line.offsite < 1 {
                line.violations.push("3-2-1: no current offsite copy".into());
            }
            if let (Some(rpo), Some(eff)) = (line.rpo_seconds, line.effective_rpo_seconds) {
                if eff > rpo {
                    line.violations.push(format!("effective RPO {} exceeds the job's rpo {}", humantime::format_duration(std::time::Duration::from_secs(eff)), humantime::format_duration(std::time::Duration::from_secs(rpo))));
                }
            }
            lines.push(line);
        }
        Ok::<_, anyhow::Error>(lines)
    })?;
    if g.json {
        crate::output::json(&lines)?;
    } else {
        println!("{:20}  {:6}  {:5}  {:7}  {:10}  COPIES", "JOB", "COPIES", "MEDIA", "OFFSITE", "EFF. RPO");
        for l in &lines {
            let rpo = l.effective_rpo_seconds.map_or("-".to_string(), |s| humantime::format_duration(std::time::Duration::from_secs(s)).to_string());
            let places: Vec<String> = l
                .copies_detail
                .iter()
                .map(|c| format!("{} ({}{}){}", c.place, c.medium, if c.offsite { ", offsite" } else { "" }, if c.current { "" } else { " BEHIND" }))
                .collect();
            println!("{:20}  {:6}  {:5}  {:7}  {:10}  {}", l.job, l.copies, l.media, l.offsite, rpo, places.join(", "));
            for v in &l.violations {
                println!("{:20}  VIOLATION: {v}", "");
            }
        }
    }
    Ok(if lines.iter().all(|l| l.violations.is_empty()) { exit::OK } else { exit::INCOMPLETE })
}
