//! The built-in monitors the hub evaluates from what it knows: `backup`
//! (freshness and failures of jobs), `replication` (routes the hub's
//! `replication.*` alerts) and `disk` (free space in the hub's data
//! directory).

use std::time::Duration;

use serde_spanned::Spanned;

use super::{interval, Known, DEFAULT_MAX_AGE, DEFAULT_MIN_FREE_PERCENT};
use crate::{
    hub::parse_size,
    multihost,
    raw::{RawMonitor, RawSize},
    read::{closest, Ctx},
};

/// `type = "backup"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCheck {
    /// The jobs watched (`job` or `jobs`); empty: every job.
    pub jobs: Vec<String>,
    /// A job whose newest successful run is older is down (default 48h).
    pub max_age: Duration,
    /// How often the hub evaluates it (default 60s).
    pub interval: Duration,
}

/// `type = "replication"`: which of the hub's `replication.*` alerts this
/// monitor routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationCheck {
    /// Targets whose alerts (`replication.failing`, `.delete_cap`,
    /// `.corrupt` about `TARGET/REPO`) are routed.
    pub targets: Vec<String>,
    /// Jobs whose `replication.rpo` alerts are routed (each has an `rpo`).
    pub jobs: Vec<String>,
}

impl ReplicationCheck {
    /// Whether the hub's alert of `kind` (`replication.rpo`, …) about
    /// `subject` belongs to this monitor: with neither `targets` nor `jobs`
    /// every replication alert does; otherwise those about a listed target
    /// (`TARGET/REPO`) or, for `replication.rpo`, a listed job.
    pub fn covers(&self, kind: &str, subject: &str) -> bool {
        if !kind.starts_with("replication.") {
            return false;
        }
        if self.targets.is_empty() && self.jobs.is_empty() {
            return true;
        }
        if kind == "replication.rpo" {
            return self.jobs.iter().any(|j| j == subject);
        }
        subject
            .split_once('/')
            .is_some_and(|(target, _)| self.targets.iter().any(|t| t == target))
    }
}

/// `type = "disk"`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskCheck {
    /// Down when less is free.
    pub min_free: MinFree,
    /// How often the hub measures (default 60s).
    pub interval: Duration,
}

/// `min_free`: a share of the file system or an amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    /// Percent of the file system's size (0 < p < 100).
    Percent(f64),
    /// Bytes.
    Bytes(u64),
}

impl MinFree {
    /// True when `free` bytes of `total` is below the minimum.
    pub fn is_low(self, free: u64, total: u64) -> bool {
        match self {
            // sizes far below 2^53
            #[allow(clippy::cast_precision_loss)]
            Self::Percent(p) => (free as f64) < (total as f64) * p / 100.0,
            Self::Bytes(b) => free < b,
        }
    }
}

/// `jobs` / `job` of a backup or replication monitor: declared, each once.
fn job_list(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    known: &Known,
    need_rpo: bool,
) -> Option<Vec<String>> {
    let mut list: Vec<&Spanned<String>> = Vec::new();
    match (&r.job, &r.jobs) {
        (Some(a), Some(b)) => {
            let later = if a.span().start > b.span().start {
                a.span()
            } else {
                b.span()
            };
            cx.err(
                later,
                "both `job` and `jobs` are set",
                Some(
                    "keep one: job = \"NAME\" for one job, jobs = [\"A\", \"B\"] for several"
                        .into(),
                ),
            );
            return None;
        }
        (Some(j), None) => list.push(j),
        (None, Some(js)) => {
            if js.get_ref().is_empty() {
                cx.err_at(
                    js,
                    "`jobs` is empty",
                    "remove it to watch every job, or list job names",
                );
                return None;
            }
            list.extend(js.get_ref().iter());
        }
        (None, None) => {}
    }
    let names: Vec<&str> = known.jobs.keys().map(String::as_str).collect();
    let mut out: Vec<String> = Vec::new();
    for j in list {
        let v = j.get_ref();
        match known.jobs.get(v) {
            None => {
                let hint = match closest(v, &names) {
                    Some(best) => format!("did you mean `{best}`? (declared jobs: {})", names.join(", ")),
                    None if names.is_empty() => "no jobs are declared; declare one with [jobs.NAME]".to_string(),
                    None => format!("declared jobs: {}", names.join(", ")),
                };
                cx.err_at(j, format!("unknown job `{v}`"), hint);
            }
            Some(false) if need_rpo => cx.err_at(
                j,
                format!("job `{v}` has no `rpo`, so the hub never raises a replication.rpo alert for it"),
                format!("add rpo = \"26h\" to [jobs.{v}], or remove it from `jobs`"),
            ),
            Some(_) if out.contains(v) => cx.err_at(j, format!("job `{v}` is listed twice"), "remove one"),
            Some(_) => out.push(v.clone()),
        }
    }
    Some(out)
}

pub(super) fn backup(cx: &mut Ctx<'_>, r: &RawMonitor, known: &Known) -> Option<BackupCheck> {
    let jobs = job_list(cx, r, known, false);
    let max_age = r.max_age.as_ref().map_or(Some(DEFAULT_MAX_AGE), |v| {
        multihost::positive(
            cx,
            v,
            "max_age",
            "48h",
            "every backup would be too old at once",
        )
    });
    let interval = interval(cx, r);
    Some(BackupCheck {
        jobs: jobs?,
        max_age: max_age?,
        interval: interval?,
    })
}

pub(super) fn replication(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    known: &Known,
) -> Option<ReplicationCheck> {
    let jobs = job_list(cx, r, known, true);
    let mut targets = Vec::new();
    if let Some(list) = &r.targets {
        if list.get_ref().is_empty() {
            cx.err_at(
                list,
                "`targets` is empty",
                "remove it to route the alerts of every target, or list target names",
            );
        }
        let names: Vec<&str> = known.targets.iter().map(String::as_str).collect();
        for t in list.get_ref() {
            let v = t.get_ref();
            if !known.targets.contains(v) {
                let hint = match closest(v, &names) {
                    Some(best) => format!(
                        "did you mean `{best}`? (declared targets: {})",
                        names.join(", ")
                    ),
                    None if names.is_empty() => {
                        "no targets are declared; declare one with [targets.NAME]".to_string()
                    }
                    None => format!("declared targets: {}", names.join(", ")),
                };
                cx.err_at(t, format!("unknown target `{v}`"), hint);
            } else if targets.contains(v) {
                cx.err_at(t, format!("target `{v}` is listed twice"), "remove one");
            } else {
                targets.push(v.clone());
            }
        }
    } else if known.targets.is_empty() && r.jobs.is_none() {
        cx.err_at(
            name,
            format!("monitor `{}` watches replication, but no [targets.NAME] is declared", name.get_ref()),
            "nothing is replicated, so it would never fire: declare a replication target (docs/replication.md), or remove the monitor",
        );
    }
    Some(ReplicationCheck {
        targets,
        jobs: jobs?,
    })
}

pub(super) fn disk(cx: &mut Ctx<'_>, r: &RawMonitor) -> Option<DiskCheck> {
    const HINT: &str =
        "a share of the disk such as min_free = \"10%\", or an amount such as \"50 GiB\"";
    let min_free = match &r.min_free {
        None => Some(MinFree::Percent(DEFAULT_MIN_FREE_PERCENT)),
        Some(v) => {
            let parsed = match v.get_ref() {
                RawSize::Text(t) if t.trim().ends_with('%') => {
                    match t.trim().trim_end_matches('%').trim().parse::<f64>() {
                        Ok(p) if p > 0.0 && p < 100.0 => Ok(MinFree::Percent(p)),
                        Ok(_) => Err("`min_free` must be more than 0% and less than 100%"),
                        Err(_) => Err("`min_free` is not a percentage or a size"),
                    }
                }
                RawSize::Text(t) => match parse_size(t) {
                    Some(0) => Err("`min_free` must not be zero"),
                    Some(n) => Ok(MinFree::Bytes(n)),
                    None => Err("`min_free` is not a percentage or a size"),
                },
                RawSize::Bytes(n) => match u64::try_from(*n) {
                    Ok(0) | Err(_) => Err("`min_free` must be more than zero"),
                    Ok(n) => Ok(MinFree::Bytes(n)),
                },
            };
            match parsed {
                Ok(m) => Some(m),
                Err(message) => {
                    cx.err_at(v, message, HINT);
                    None
                }
            }
        }
    };
    let interval = interval(cx, r);
    Some(DiskCheck {
        min_free: min_free?,
        interval: interval?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_filters() {
        let all = ReplicationCheck {
            targets: vec![],
            jobs: vec![],
        };
        assert!(
            all.covers("replication.failing", "usb/nas/main")
                && all.covers("replication.shrink", "nas/main")
        );
        assert!(!all.covers("job.failed", "nas"));
        let some = ReplicationCheck {
            targets: vec!["usb".into()],
            jobs: vec!["nas".into()],
        };
        assert!(some.covers("replication.failing", "usb/nas/main"));
        assert!(!some.covers("replication.failing", "cloud/nas/main"));
        assert!(some.covers("replication.rpo", "nas") && !some.covers("replication.rpo", "vps"));
        assert!(
            !some.covers("replication.shrink", "nas/main"),
            "a hub-side alert is not about a target"
        );
    }

    #[test]
    fn min_free() {
        assert!(MinFree::Percent(10.0).is_low(9, 100));
        assert!(!MinFree::Percent(10.0).is_low(10, 100));
        assert!(MinFree::Bytes(50 << 30).is_low(49 << 30, 1 << 40));
        assert!(!MinFree::Bytes(50 << 30).is_low(50 << 30, 1 << 40));
    }
}
