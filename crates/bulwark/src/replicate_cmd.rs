//! `bulwark replicate`: copy the hub's repositories to the `[targets]` of the
//! configuration, keyless and verified (`bulwark-replicate`), once.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, Result};
use bulwark_config::{RepoUrl, Target};
use bulwark_replicate::{
    mirror_repo, repair, verify_sample, MirrorOptions, MirrorReport, RepairReport, Sample,
    VerifyReport,
};
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
            && self
                .mirror
                .as_ref()
                .is_some_and(|m| m.is_complete() && m.corrupt_source.is_empty())
            && self.repair.as_ref().is_none_or(RepairReport::is_complete)
    }
}

fn target_store(t: &Target) -> Result<Arc<dyn Store>> {
    match &t.url {
        RepoUrl::Local(dir) => {
            // Never created here: a USB disk that is not mounted must not
            // turn into a copy on the root file system.
            if !dir.is_dir() {
                return Err(fail(
                    format!(
                        "target `{}`: {} is not a directory (is the disk mounted?)",
                        t.name,
                        dir.display()
                    ),
                    format!(
                        "mount the disk, or create the directory once with `mkdir -p {}`",
                        dir.display()
                    ),
                ));
            }
            Ok(Arc::new(LocalStore::new(dir.clone()).with_context(
                || format!("cannot use {}", dir.display()),
            )?))
        }
        RepoUrl::S3 {
            endpoint,
            bucket,
            prefix,
        } => s3_target(t, endpoint, bucket, prefix),
        RepoUrl::Rest(url) => {
            let auth = match &t.rest {
                Some(bulwark_config::TargetRestAuth {
                    username: Some(user),
                    password,
                }) => {
                    let pw = match password {
                        Some(p) => p
                            .load()
                            .map_err(|e| fail(e.to_string(), "fix the target's password_file"))?
                            .expose()
                            .to_string(),
                        None => String::new(),
                    };
                    Some((user.clone(), pw))
                }
                _ => None,
            };
            // a peer's HTTPS certificate is checked against the system's roots
            Ok(Arc::new(
                bulwark_store::RestStore::new(url, auth, None)
                    .map_err(|e| fail(format!("target `{}`: {e}", t.name), "check its url"))?,
            ))
        }
    }
}

#[cfg(feature = "s3")]
fn s3_target(t: &Target, endpoint: &str, bucket: &str, prefix: &str) -> Result<Arc<dyn Store>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let secret = |s: &Option<bulwark_config::SecretSource>, var: &str| -> Result<Option<String>> {
        match s {
            Some(src) => Ok(Some(
                src.load()
                    .map_err(|e| fail(e.to_string(), "fix the target's key files"))?
                    .expose()
                    .to_string(),
            )),
            None => Ok(env(var)),
        }
    };
    let s3 = t.s3.clone().unwrap_or(bulwark_config::S3Settings {
        region: "us-east-1".into(),
        access_key_id: None,
        secret_access_key: None,
    });
    let (Some(access_key_id), Some(secret_access_key)) = (
        secret(&s3.access_key_id, "AWS_ACCESS_KEY_ID")?,
        secret(&s3.secret_access_key, "AWS_SECRET_ACCESS_KEY")?,
    ) else {
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
        format!(
            "target `{}` is an S3 bucket, but this bulwark was built without S3 support",
            t.name
        ),
        "build it with `cargo build --release -p bulwark --features s3`",
    ))
}

pub(crate) fn replicate(g: &Global, a: ReplicateArgs) -> Result<u8> {
    let cfg = load_config(g)?.ok_or_else(|| {
        fail(
            "replicate needs a configuration file with [targets]",
            "give it with -c FILE",
        )
    })?;
    let data = a
        .data
        .clone()
        .or_else(|| cfg.hub.as_ref().and_then(|h| h.data.clone()))
        .ok_or_else(|| {
            fail(
                "which repositories? no hub data directory",
                "set `data` in [hub], or pass --data DIR",
            )
        })?;
    let targets: Vec<&Target> = if a.targets.is_empty() {
        cfg.targets.values().collect()
    } else {
        a.targets
            .iter()
            .map(|n| {
                cfg.targets.get(n).ok_or_else(|| {
                    fail(
                        format!("there is no [targets.{n}]"),
                        format!(
                            "targets: {}",
                            cfg.targets.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    if targets.is_empty() {
        return Err(fail(
            "the configuration has no [targets]",
            "add a [targets.NAME] table (docs/replication.md)",
        ));
    }
    let source: Arc<dyn Store> = Arc::new(
        LocalStore::new(data.clone())
            .with_context(|| format!("cannot use the hub data directory {}", data.display()))?,
    );
    let rt = crate::hub_cmd::runtime()?;
    let outcomes = rt.block_on(async {
        let all = source.list_repos().await.map_err(|e| {
            fail(
                format!("cannot list the repositories in {}: {e}", data.display()),
                "check --data",
            )
        })?;
        let mut out = Vec::new();
        for t in &targets {
            let store = match target_store(t) {
                Ok(s) => s,
                Err(e) => {
                    out.push(Outcome {
                        target: t.name.clone(),
                        repo: String::new(),
                        medium: t.medium.as_str(),
                        offsite: t.offsite,
                        mirror: None,
                        verify: None,
                        repair: None,
                        error: Some(format!("{e:#}")),
                    });
                    continue;
                }
            };
            let repos: Vec<RepoPath> = if t.repositories.is_empty() {
                all.clone()
            } else {
                t.repositories
                    .iter()
                    .filter_map(|r| RepoPath::parse(r).ok())
                    .collect()
            };
            let opts = MirrorOptions {
                parallel: usize::try_from(t.parallel).unwrap_or(4),
                bandwidth: t.bandwidth,
                dry_run: a.dry_run,
                ..MirrorOptions::default()
            };
            for repo in repos {
                let mut o = Outcome {
                    target: t.name.clone(),
                    repo: repo.to_string(),
                    medium: t.medium.as_str(),
                    offsite: t.offsite,
                    mirror: None,
                    verify: None,
                    repair: None,
                    error: None,
                };
                match mirror_repo(source.as_ref(), store.as_ref(), &repo, &opts).await {
                    Ok(m) => o.mirror = Some(m),
                    Err(e) => o.error = Some(e.to_string()),
                }
                if a.verify && o.error.is_none() && !a.dry_run {
                    let seed: u64 = rand::random();
                    match verify_sample(
                        store.as_ref(),
                        &repo,
                        Sample::Fraction(t.verify_sample_percent / 100.0),
                        seed,
                    )
                    .await
                    {
                        Ok(v) => {
                            if !v.is_clean() {
                                match repair(source.as_ref(), store.as_ref(), &repo, &v, &opts)
                                    .await
                                {
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
            let head = format!(
                "{} → {} ({}{})",
                if o.repo.is_empty() { "*" } else { &o.repo },
                o.target,
                o.medium,
                if o.offsite { ", offsite" } else { "" }
            );
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
                println!(
                    "  verified {} file(s): {} corrupt, {} missing",
                    v.checked,
                    v.corrupt.len(),
                    v.missing.len()
                );
            }
            if let Some(r) = &o.repair {
                println!(
                    "  repaired: {} re-copied, {} could not be repaired",
                    r.recopied.len(),
                    r.unrepairable.len() + r.undeletable.len()
                );
            }
        }
    }
    Ok(if outcomes.iter().all(Outcome::clean) {
        exit::OK
    } else if outcomes.iter().any(|o| o.error.is_some()) {
        exit::FATAL
    } else {
        exit::INCOMPLETE
    })
}

/// The opener the hub uses for its targets (S3 only with the `s3` feature).
pub(crate) fn opener() -> bulwark_hub::TargetOpener {
    Arc::new(|t: &Target| target_store(t).map_err(|e| format!("{e:#}")))
}

/// `bulwark report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The hub's data directory [default: `[hub] data`].
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// The hub's state directory, for what its replication recorded (last
    /// success, last verify, lag, alerts) [default: DATA/.bulwark].
    #[arg(long, value_name = "DIR")]
    pub(crate) state: Option<PathBuf>,
}

fn dur(secs: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

pub(crate) fn report(g: &Global, a: ReportArgs) -> Result<u8> {
    use bulwark_hub::replication::{
        read_state,
        report::{self, ReportInput, ReportJob},
    };
    let cfg = load_config(g)?.ok_or_else(|| {
        fail(
            "report needs the hub's configuration file",
            "give it with -c FILE",
        )
    })?;
    let data = a
        .data
        .clone()
        .or_else(|| cfg.hub.as_ref().and_then(|h| h.data.clone()))
        .ok_or_else(|| {
            fail(
                "which repositories? no hub data directory",
                "set `data` in [hub], or pass --data DIR",
            )
        })?;
    let source: Arc<dyn Store> = Arc::new(
        LocalStore::new(data.clone()).with_context(|| format!("cannot use {}", data.display()))?,
    );
    let targets: Vec<report::OpenedTarget> = cfg
        .targets
        .values()
        .map(|t| (t.clone(), target_store(t).map_err(|e| format!("{e:#}"))))
        .collect();
    let jobs: Vec<ReportJob> = cfg
        .jobs
        .values()
        .map(|j| ReportJob {
            name: j.name.clone(),
            host: j.host.clone(),
            repo_url: cfg.repository_for(j).url.clone(),
            schedule: j.schedule.clone(),
            rpo: j.rpo,
        })
        .collect();
    let state_dir = a.state.clone().unwrap_or_else(|| data.join(".bulwark"));
    let (rows, alerts) = read_state(&state_dir).unwrap_or_else(|e| {
        tracing::warn!(
            "cannot read the hub's replication state in {}: {e}",
            state_dir.display()
        );
        (Vec::new(), Vec::new())
    });
    let rt = crate::hub_cmd::runtime()?;
    let uploads = std::collections::HashMap::new();
    let mut r = rt.block_on(report::build(ReportInput {
        jobs: &jobs,
        data: &data,
        source: source.as_ref(),
        targets: &targets,
        state: &rows,
        last_upload: &uploads,
        live: true,
        now: jiff::Timestamp::now(),
    }));
    r.alerts = alerts;
    if g.json {
        crate::output::json(&r)?;
    } else {
        let rows: Vec<Vec<String>> = r
            .jobs
            .iter()
            .flat_map(|l| {
                let places: Vec<String> =
                    l.places
                        .iter()
                        .map(|c| {
                            format!(
                                "{} ({}{}){}",
                                c.place,
                                c.medium,
                                if c.offsite { ", offsite" } else { "" },
                                match (&c.error, c.current) {
                                    (Some(e), false) => format!(
                                        " UNKNOWN: {}",
                                        e.chars().take(120).collect::<String>()
                                    ),
                                    (_, true) => String::new(),
                                    (None, false) =>
                                        format!(" BEHIND {} snapshot(s)", c.missing_snapshots),
                                }
                            )
                        })
                        .collect();
                let head = vec![
                    l.job.clone(),
                    l.copies.to_string(),
                    l.media.to_string(),
                    l.offsite.to_string(),
                    l.replication_lag_seconds.map_or("-".into(), dur),
                    l.effective_rpo_seconds.map_or("-".into(), dur),
                    places.join(", "),
                ];
                std::iter::once(head).chain(l.violations.iter().map(|v| {
                    vec![
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        format!("VIOLATION: {v}"),
                    ]
                }))
            })
            .collect();
        print!(
            "{}",
            crate::output::table(
                &["JOB", "COPIES", "MEDIA", "OFFSITE", "LAG", "EFF. RPO", "PLACES"],
                &rows
            )
        );
        if !r.targets.is_empty() {
            let now = jiff::Timestamp::now();
            let when = |t: Option<jiff::Timestamp>| {
                t.map_or("never".to_string(), |t| {
                    format!("{} ago", crate::agent_cmd::age(t, now))
                })
            };
            let rows: Vec<Vec<String>> = r
                .targets
                .iter()
                .map(|t| {
                    vec![
                        t.target.clone(),
                        t.repo.clone(),
                        when(t.last_success),
                        when(t.last_verified),
                        t.consecutive_failures.to_string(),
                        t.pending_deletes.to_string(),
                        t.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            println!();
            print!(
                "{}",
                crate::output::table(
                    &[
                        "TARGET",
                        "REPO",
                        "LAST SUCCESS",
                        "LAST VERIFIED",
                        "FAILURES",
                        "PENDING DELETES",
                        "LAST ERROR"
                    ],
                    &rows
                )
            );
        }
        if !r.alerts.is_empty() {
            println!("\nOPEN ALERTS");
            for al in &r.alerts {
                println!(
                    "  #{} {} {} {}: {}",
                    al.id,
                    al.severity.as_str().to_uppercase(),
                    al.kind,
                    al.subject,
                    al.message
                );
            }
        }
    }
    Ok(
        if r.jobs.iter().all(|l| l.violations.is_empty()) && r.alerts.is_empty() {
            exit::OK
        } else {
            exit::INCOMPLETE
        },
    )
}
