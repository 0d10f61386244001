//! Listing, comparing and reading snapshots; retention; prune; check; copy.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use rustic_core::{
    repofile::{Node, NodeType, SnapshotFile},
    CheckOptions, IndexedFullStatus, PruneOptions, ReadSubsetOption, Repository,
};
use serde::Serialize;

use crate::{
    error::{guard, Error, ErrorKind, Result},
    repo::Repo,
    restore::{walk_snapshot, FailedPath},
    snapshots::{SnapshotFilter, SnapshotInfo},
};

/// One entry of `ls`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LsEntry {
    /// Absolute path inside the snapshot.
    pub path: String,
    /// `file`, `dir`, `symlink`, `dev`, `chardev`, `fifo` or `socket`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Size in bytes (files).
    pub size: u64,
    /// Unix permission bits, e.g. 0o644 (as a number).
    pub mode: Option<u32>,
    /// Modification time, RFC 3339.
    pub mtime: Option<String>,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner gid.
    pub gid: Option<u32>,
    /// Symlink target.
    pub link_target: Option<String>,
}

fn kind_name(n: &Node) -> &'static str {
    match n.node_type {
        NodeType::File => "file",
        NodeType::Dir => "dir",
        NodeType::Symlink { .. } => "symlink",
        NodeType::Dev { .. } => "dev",
        NodeType::Chardev { .. } => "chardev",
        NodeType::Fifo => "fifo",
        NodeType::Socket => "socket",
    }
}

fn entry(path: &Path, n: &Node) -> LsEntry {
    LsEntry {
        path: Path::new("/").join(path).to_string_lossy().into_owned(),
        kind: kind_name(n).to_string(),
        size: n.meta.size,
        mode: n.meta.mode.map(crate::restore::go_mode_to_unix),
        mtime: n.meta.mtime.map(|t| t.to_string()),
        uid: n.meta.uid,
        gid: n.meta.gid,
        link_target: match &n.node_type {
            NodeType::Symlink { .. } => Some(n.node_type.to_link().to_string_lossy().into_owned()),
            _ => None,
        },
    }
}

/// One difference between two snapshots.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiffEntry {
    /// Absolute path inside the snapshots.
    pub path: String,
    /// `+` added, `-` removed, `M` content modified, `U` metadata only, `T` type changed.
    pub change: String,
}

/// Totals of a diff.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DiffSummary {
    /// Entries added.
    pub added: u64,
    /// Entries removed.
    pub removed: u64,
    /// Files whose content changed.
    pub modified: u64,
    /// Entries whose metadata only changed.
    pub metadata: u64,
    /// Entries whose type changed.
    pub type_changed: u64,
    /// Every change, in path order.
    pub changes: Vec<DiffEntry>,
}

/// A retention policy (restic's `--keep-*` options). Empty means "keep everything".
#[derive(Debug, Clone, Default)]
pub struct KeepPolicy {
    /// Keep the last N snapshots.
    pub last: Option<u32>,
    /// Keep the last snapshot of each of the last N hours.
    pub hourly: Option<u32>,
    /// ... days.
    pub daily: Option<u32>,
    /// ... weeks.
    pub weekly: Option<u32>,
    /// ... months.
    pub monthly: Option<u32>,
    /// ... years.
    pub yearly: Option<u32>,
    /// Keep every snapshot within this span of the newest one.
    pub within: Option<jiff::Span>,
}

impl KeepPolicy {
    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
            && self.hourly.is_none()
            && self.daily.is_none()
            && self.weekly.is_none()
            && self.monthly.is_none()
            && self.yearly.is_none()
            && self.within.is_none()
    }

    /// Decides which snapshots of one group to keep, exactly like restic
    /// 0.14: newest first; each rule keeps the newest snapshot of each of its
    /// last N buckets (hour, day, ISO week, month, year; `last` = every
    /// snapshot); `within` keeps everything newer than the newest snapshot
    /// minus the span. Returns (keep, reasons) in the order of `snaps`, which
    /// must be sorted newest first.
    fn decide(&self, snaps: &[SnapshotFile]) -> Vec<(bool, Vec<String>)> {
        type Bucket = fn(&jiff::Zoned, usize) -> i64;
        let rules: [(Option<u32>, Bucket, &str); 6] = [
            (self.last, |_, nr| nr as i64, "last"),
            (
                self.hourly,
                |t, _| ymd(t) * 100 + i64::from(t.hour()),
                "hourly",
            ),
            (self.daily, |t, _| ymd(t), "daily"),
            (
                self.weekly,
                |t, _| {
                    let w = t.date().iso_week_date();
                    i64::from(w.year()) * 100 + i64::from(w.week())
                },
                "weekly",
            ),
            (
                self.monthly,
                |t, _| i64::from(t.year()) * 100 + i64::from(t.month()),
                "monthly",
            ),
            (self.yearly, |t, _| i64::from(t.year()), "yearly"),
        ];
        let mut counts: Vec<Option<u32>> = rules.iter().map(|r| r.0).collect();
        let mut last: Vec<i64> = vec![i64::MIN; rules.len()];
        let now = jiff::Timestamp::now();
        let latest = snaps
            .iter()
            .filter(|s| s.time.timestamp() < now)
            .max_by_key(|s| s.time.timestamp())
            .map(|s| s.time.clone());
        let within_limit = match (&self.within, &latest) {
            (Some(span), Some(l)) => l.checked_sub(*span).ok().map(|z| z.timestamp()),
            _ => None,
        };
        let mut out = Vec::with_capacity(snaps.len());
        for (nr, s) in snaps.iter().enumerate() {
            let mut reasons = Vec::new();
            if let Some(limit) = within_limit {
                if s.time.timestamp() > limit {
                    reasons.push("within".to_string());
                }
            }
            for (i, (_, bucket, name)) in rules.iter().enumerate() {
                if let Some(n) = counts[i] {
                    if n > 0 {
                        let v = bucket(&s.time, nr);
                        if v != last[i] {
                            last[i] = v;
                            counts[i] = Some(n - 1);
                            reasons.push((*name).to_string());
                        }
                    }
                }
            }
            out.push((!reasons.is_empty(), reasons));
        }
        out
    }
}

fn ymd(t: &jiff::Zoned) -> i64 {
    i64::from(t.year()) * 10_000 + i64::from(t.month()) * 100 + i64::from(t.day())
}

/// A snapshot with the retention decision.
#[derive(Debug, Clone, Serialize)]
pub struct ForgetDecision {
    /// The snapshot.
    pub snapshot: SnapshotInfo,
    /// Kept or removed.
    pub keep: bool,
    /// Which rules kept it (e.g. `daily`, `last`).
    pub reasons: Vec<String>,
}

/// One group of snapshots (same host and paths) and its decisions.
#[derive(Debug, Clone, Serialize)]
pub struct ForgetGroup {
    /// Host of the group.
    pub host: String,
    /// Paths of the group.
    pub paths: Vec<String>,
    /// Decisions, newest first.
    pub snapshots: Vec<ForgetDecision>,
}

/// The outcome of `forget`.
#[derive(Debug, Clone, Serialize)]
pub struct ForgetSummary {
    /// Per-group decisions.
    pub groups: Vec<ForgetGroup>,
    /// Ids removed (or that would be, with `dry_run`).
    pub removed: Vec<String>,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// The outcome of `prune`.
#[derive(Debug, Clone, Serialize)]
pub struct PruneSummary {
    /// Packs deleted now.
    pub packs_removed: u64,
    /// Packs rewritten to drop unused data.
    pub packs_repacked: u64,
    /// Packs kept.
    pub packs_kept: u64,
    /// Bytes of unused data removed or repacked away.
    pub bytes_freed: u64,
    /// Bytes still in use.
    pub bytes_used: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// What `check` reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum CheckData {
    /// Structure only (index, packs listed, trees).
    #[default]
    None,
    /// Read and verify every pack.
    All,
    /// Read and verify a random subset of packs (percent of total size).
    Percent(f64),
}

/// The outcome of `check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckSummary {
    /// No error was found (warnings allowed).
    pub ok: bool,
    /// Problems that mean damage.
    pub errors: Vec<String>,
    /// Harmless findings (e.g. unreferenced packs that prune will remove).
    pub warnings: Vec<String>,
    /// Whether pack data was read.
    pub read_data: bool,
}

/// The outcome of `copy`.
#[derive(Debug, Clone, Serialize)]
pub struct CopySummary {
    /// Snapshots copied (source ids).
    pub copied: Vec<String>,
    /// Snapshots skipped because the destination already has them.
    pub skipped: Vec<String>,
}

impl Repo {
    fn indexed(&self) -> Result<Repository<IndexedFullStatus>> {
        guard("reading the index", || {
            self.fresh()?
                .to_indexed()
                .map_err(|e| Error::from_rustic("cannot read the repository index", &e))
        })
    }

    /// Lists the entries of a snapshot, optionally only at or below `path`.
    pub fn ls(
        &self,
        snapshot: &str,
        filter: &SnapshotFilter,
        path: Option<&Path>,
    ) -> Result<(SnapshotInfo, Vec<LsEntry>, Vec<FailedPath>)> {
        let _lock = self.lock(false)?;
        let snap = self.find_snapshot_file(snapshot, filter)?;
        let repo = self.indexed()?;
        let mut failures = Vec::new();
        let nodes = guard("listing", || {
            Ok(walk_snapshot(&repo, snap.tree, &mut failures))
        })?;
        let prefix = path.map(|p| p.strip_prefix("/").unwrap_or(p).to_path_buf());
        let entries: Vec<LsEntry> = nodes
            .iter()
            .filter(|(p, _)| prefix.as_ref().is_none_or(|pre| p.starts_with(pre)))
            .map(|(p, n)| entry(p, n))
            .collect();
        if let Some(pre) = &prefix {
            if entries.is_empty() && !pre.as_os_str().is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "/{} is not in snapshot {}",
                        pre.display(),
                        &snap.id.to_hex().to_string()[..8]
                    ),
                )
                .hint("list the whole snapshot with `bulwark ls SNAPSHOT`"));
            }
        }
        Ok((SnapshotInfo::from_file(&snap), entries, failures))
    }

    /// Compares two snapshots.
    pub fn diff(&self, a: &str, b: &str, filter: &SnapshotFilter) -> Result<DiffSummary> {
        let _lock = self.lock(false)?;
        let sa = self.find_snapshot_file(a, filter)?;
        let sb = self.find_snapshot_file(b, filter)?;
        let repo = self.indexed()?;
        let mut failures = Vec::new();
        let na = guard("diff", || Ok(walk_snapshot(&repo, sa.tree, &mut failures)))?;
        let nb = guard("diff", || Ok(walk_snapshot(&repo, sb.tree, &mut failures)))?;
        if let Some(f) = failures.first() {
            return Err(Error::new(ErrorKind::Damaged, f.error.clone())
                .hint("run `bulwark check` to find out what is damaged"));
        }
        let ma: BTreeMap<&PathBuf, &Node> = na.iter().map(|(p, n)| (p, n)).collect();
        let mb: BTreeMap<&PathBuf, &Node> = nb.iter().map(|(p, n)| (p, n)).collect();
        let mut out = DiffSummary::default();
        let push = |p: &Path, c: &str, out: &mut DiffSummary| {
            out.changes.push(DiffEntry {
                path: Path::new("/").join(p).to_string_lossy().into_owned(),
                change: c.to_string(),
            });
        };
        let mut keys: Vec<&PathBuf> = ma.keys().chain(mb.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            match (ma.get(k), mb.get(k)) {
                (Some(_), None) => {
                    out.removed += 1;
                    push(k, "-", &mut out);
                }
                (None, Some(_)) => {
                    out.added += 1;
                    push(k, "+", &mut out);
                }
                (Some(x), Some(y)) => {
                    if std::mem::discriminant(&x.node_type) != std::mem::discriminant(&y.node_type)
                    {
                        out.type_changed += 1;
                        push(k, "T", &mut out);
                    } else if x.content != y.content || x.node_type != y.node_type {
                        out.modified += 1;
                        push(k, "M", &mut out);
                    } else if !x.is_dir()
                        && (x.meta.mode != y.meta.mode
                            || x.meta.mtime != y.meta.mtime
                            || x.meta.uid != y.meta.uid
                            || x.meta.gid != y.meta.gid
                            || x.meta.size != y.meta.size)
                    {
                        out.metadata += 1;
                        push(k, "U", &mut out);
                    }
                }
                (None, None) => {}
            }
        }
        Ok(out)
    }

    /// Writes the contents of the file at `path` in a snapshot to `w`.
    pub fn dump(
        &self,
        snapshot: &str,
        filter: &SnapshotFilter,
        path: &Path,
        w: &mut dyn Write,
    ) -> Result<()> {
        let _lock = self.lock(false)?;
        let snap = self.find_snapshot_file(snapshot, filter)?;
        let repo = self.indexed()?;
        let rel = path.strip_prefix("/").unwrap_or(path);
        let node = guard("dump", || {
            repo.node_from_path(snap.tree, rel).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} is not in snapshot {}",
                        path.display(),
                        &snap.id.to_hex().to_string()[..8]
                    ),
                )
                .hint("find the path with `bulwark ls SNAPSHOT`")
            })
        })?;
        if !node.is_file() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} is a {}, not a file", path.display(), kind_name(&node)),
            )
            .hint("use `bulwark restore SNAPSHOT --include PATH --target DIR` for directories"));
        }
        let mut w = PipeWatch {
            inner: w,
            closed: false,
        };
        let r = guard("dump", || {
            repo.dump(&node, &mut w).map_err(|e| {
                let err = Error::from_rustic(&format!("cannot read {}", path.display()), &e);
                if err.kind == ErrorKind::Io {
                    err.hint("the output could not be written (full disk?)")
                } else {
                    err
                }
            })
        })
        .and_then(|()| {
            w.flush()
                .map_err(|e| Error::io("cannot write the output", &e))
        });
        if w.closed {
            return Err(Error::new(
                ErrorKind::OutputClosed,
                "the reader of the output went away",
            ));
        }
        r
    }

    /// Applies a retention policy per group (host + paths). Removes the
    /// snapshots it does not keep, unless `dry_run`.
    pub fn forget(
        &self,
        policy: &KeepPolicy,
        filter: &SnapshotFilter,
        dry_run: bool,
    ) -> Result<ForgetSummary> {
        if policy.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "no retention policy given; refusing to forget anything",
            )
            .hint(
                "give --keep-daily 7 (etc.), or a job (--job) whose config has a [retention] table",
            ));
        }
        let _lock = self.lock(!dry_run)?;
        let snaps = self.snapshot_files(filter)?;
        let mut groups: BTreeMap<(String, Vec<String>), Vec<SnapshotFile>> = BTreeMap::new();
        for s in snaps {
            let mut paths: Vec<String> = s.paths.iter().cloned().collect();
            paths.sort();
            groups
                .entry((s.hostname.clone(), paths))
                .or_default()
                .push(s);
        }
        let mut out = ForgetSummary {
            groups: Vec::new(),
            removed: Vec::new(),
            dry_run,
        };
        let mut remove_ids = Vec::new();
        for ((host, paths), mut snaps) in groups {
            // newest first; ties keep listing order, like restic's stable sort
            snaps.sort_by_key(|s| std::cmp::Reverse(s.time.timestamp()));
            let decided = policy.decide(&snaps);
            let mut group = ForgetGroup {
                host,
                paths,
                snapshots: Vec::new(),
            };
            for (snap, (keep, reasons)) in snaps.iter().zip(decided) {
                if !keep {
                    remove_ids.push(snap.id);
                    out.removed.push(snap.id.to_hex().to_string());
                }
                group.snapshots.push(ForgetDecision {
                    snapshot: SnapshotInfo::from_file(snap),
                    keep,
                    reasons,
                });
            }
            out.groups.push(group);
        }
        if !dry_run && !remove_ids.is_empty() {
            guard("forget", || {
                self.inner
                    .delete_snapshots(&remove_ids)
                    .map_err(|e| Error::from_rustic("cannot remove snapshots", &e))
            })?;
        }
        Ok(out)
    }

    /// Removes data no snapshot references.
    pub fn prune(&self, dry_run: bool) -> Result<PruneSummary> {
        let _lock = self.lock(!dry_run)?;
        let repo = self.fresh()?;
        let mut opts = PruneOptions::default();
        // like restic: unused packs go now (a crash in between only leaves
        // unreferenced packs, which the next prune removes)
        opts.instant_delete = true;
        guard("prune", || {
            let plan = repo
                .prune_plan(&opts)
                .map_err(|e| Error::from_rustic("cannot plan the prune", &e))?;
            let st = &plan.stats;
            let sum = st.size_sum();
            let summary = PruneSummary {
                packs_removed: st.packs_to_delete.remove,
                packs_repacked: st.packs.repack,
                packs_kept: st.packs.keep,
                bytes_freed: sum.remove + sum.repackrm,
                bytes_used: sum.used,
                dry_run,
            };
            if !dry_run {
                repo.prune(&opts, plan)
                    .map_err(|e| Error::from_rustic("prune failed", &e))?;
            }
            Ok(summary)
        })
    }

    /// Checks the repository's structure, and optionally its data.
    pub fn check(&self, data: CheckData) -> Result<CheckSummary> {
        let _lock = self.lock(false)?;
        let repo = self.fresh()?;
        let mut opts = CheckOptions::default();
        opts.read_data = data != CheckData::None;
        if let CheckData::Percent(p) = data {
            opts.read_data_subset = ReadSubsetOption::Percentage(p);
        }
        guard("check", || {
            let results = repo
                .check(opts)
                .map_err(|e| Error::from_rustic("check could not run", &e))?;
            let ok = results.is_ok().is_ok();
            let mut errors = Vec::new();
            let mut warnings = Vec::new();
            for (level, err) in &results.0 {
                // rustic_core doesn't export the level type; its Debug name is stable
                if format!("{level:?}") == "Error" {
                    errors.push(crate::error::one_line(&err.to_string()));
                } else {
                    warnings.push(crate::error::one_line(&err.to_string()));
                }
            }
            Ok(CheckSummary {
                ok: ok && errors.is_empty(),
                errors,
                warnings,
                read_data: opts.read_data,
            })
        })
    }

    /// Copies snapshots to `dest` (all matching `filter`, or those named in
    /// `ids`), skipping any the destination already holds.
    pub fn copy_to(
        &self,
        dest: &Repo,
        ids: &[String],
        filter: &SnapshotFilter,
    ) -> Result<CopySummary> {
        let snaps: Vec<SnapshotFile> = if ids.is_empty() {
            self.snapshot_files(filter)?
        } else {
            ids.iter()
                .map(|id| self.find_snapshot_file(id, filter))
                .collect::<Result<_>>()?
        };
        let _lock = self.lock(false)?;
        let _dest_lock = dest.lock(false)?;
        let src = self.indexed()?;
        let dst = guard("reading the destination index", || {
            dest.fresh()?
                .to_indexed_ids()
                .map_err(|e| Error::from_rustic("cannot read the destination index", &e))
        })?;
        guard("copy", || {
            let rel = dst
                .relevant_copy_snapshots(|_| true, &snaps)
                .map_err(|e| Error::from_rustic("cannot compare snapshots", &e))?;
            let mut out = CopySummary {
                copied: Vec::new(),
                skipped: Vec::new(),
            };
            let mut todo = Vec::new();
            for c in rel {
                if c.relevant {
                    out.copied.push(c.sn.id.to_hex().to_string());
                    todo.push(c.sn);
                } else {
                    out.skipped.push(c.sn.id.to_hex().to_string());
                }
            }
            if !todo.is_empty() {
                src.copy(&dst, todo.iter())
                    .map_err(|e| Error::from_rustic("copy failed", &e))?;
            }
            Ok(out)
        })
    }
}

/// Remembers whether the reader of our output went away (EPIPE), which
/// rustic_core's error would otherwise hide inside its own text.
struct PipeWatch<'a> {
    inner: &'a mut dyn Write,
    closed: bool,
}

impl Write for PipeWatch<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner
            .write(buf)
            .inspect_err(|e| self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner
            .flush()
            .inspect_err(|e| self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
