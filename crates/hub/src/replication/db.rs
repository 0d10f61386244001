//! Replication's tables in the control database: per (target, repository)
//! progress, files waiting out their deletion quarantine, and the source's
//! last counts (to notice a hub repository that suddenly shrinks).

use std::collections::BTreeMap;

use bulwark_api::TargetRepoState;
use bulwark_replicate::{FileId, Pending};
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use crate::control::db::{ms, ts, DbError};

const COLUMNS: &str = "target, repo, last_attempt, last_success, in_sync_at, last_verified, consecutive_failures, \
     next_retry, last_error, copied_files, copied_bytes, \
     (SELECT count(*) FROM replication_pending p WHERE p.target = r.target AND p.repo = r.repo), first_seen";

/// What replication recorded about one (target, repository), with the time
/// the pair was first seen (for the lag of a target never in sync).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The recorded state.
    pub state: TargetRepoState,
    /// When the hub first tried to copy this repository to this target.
    pub first_seen: Timestamp,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let opt = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(ts))
    };
    let u =
        |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    Ok(Row {
        state: TargetRepoState {
            target: r.get(0)?,
            repo: r.get(1)?,
            last_attempt: opt(2)?,
            last_success: opt(3)?,
            in_sync_at: opt(4)?,
            last_verified: opt(5)?,
            consecutive_failures: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(u32::MAX),
            next_retry: opt(7)?,
            last_error: r.get(8)?,
            copied_files: u(9)?,
            copied_bytes: u(10)?,
            pending_deletes: u(11)?,
        },
        first_seen: ts(r.get(12)?),
    })
}

/// Every recorded (target, repository), ordered.
pub(crate) fn all(c: &Connection) -> Result<Vec<Row>, DbError> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM replication r ORDER BY target, repo"
    ))?;
    let rows = st.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A pass starts: records the pair (first time) and the attempt.
pub(crate) fn attempt(
    c: &Connection,
    target: &str,
    repo: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO replication (target, repo, first_seen, last_attempt) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (target, repo) DO UPDATE SET last_attempt = excluded.last_attempt",
        params![target, repo, ms(now)],
    )?;
    Ok(())
}

/// A pass copied everything the source had when it started (`started`).
pub(crate) fn success(
    c: &Connection,
    target: &str,
    repo: &str,
    started: Timestamp,
    now: Timestamp,
    files: u64,
    bytes: u64,
) -> Result<(), DbError> {
    c.execute(
        "UPDATE replication SET last_success = ?3, in_sync_at = ?4, consecutive_failures = 0, next_retry = NULL,
           last_error = NULL, copied_files = copied_files + ?5, copied_bytes = copied_bytes + ?6
         WHERE target = ?1 AND repo = ?2",
        params![target, repo, ms(now), ms(started), i64::try_from(files).unwrap_or(i64::MAX), i64::try_from(bytes).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

/// A pass failed (or was incomplete); returns the number of consecutive
/// failures now.
pub(crate) fn failure(
    c: &Connection,
    target: &str,
    repo: &str,
    error: &str,
    next_retry: Option<Timestamp>,
    files: u64,
    bytes: u64,
) -> Result<u32, DbError> {
    c.execute(
        "UPDATE replication SET consecutive_failures = consecutive_failures + 1, last_error = ?3, next_retry = ?4,
           copied_files = copied_files + ?5, copied_bytes = copied_bytes + ?6
         WHERE target = ?1 AND repo = ?2",
        params![
            target,
            repo,
            error,
            next_retry.map(ms),
            i64::try_from(files).unwrap_or(i64::MAX),
            i64::try_from(bytes).unwrap_or(i64::MAX)
        ],
    )?;
    let n: i64 = c.query_row(
        "SELECT consecutive_failures FROM replication WHERE target = ?1 AND repo = ?2",
        params![target, repo],
        |r| r.get(0),
    )?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A verify pass finished.
pub(crate) fn verified(
    c: &Connection,
    target: &str,
    repo: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO replication (target, repo, first_seen, last_verified) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (target, repo) DO UPDATE SET last_verified = excluded.last_verified",
        params![target, repo, ms(now)],
    )?;
    Ok(())
}

/// The files of (target, repo) waiting out their quarantine.
pub(crate) fn pending(c: &Connection, target: &str, repo: &str) -> Result<Pending, DbError> {
    let mut st = c.prepare(
        "SELECT file, first_missing FROM replication_pending WHERE target = ?1 AND repo = ?2",
    )?;
    let rows = st.query_map(params![target, repo], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = BTreeMap::new();
    for r in rows {
        let (file, at) = r?;
        match FileId::parse(&file) {
            Some(id) => {
                out.insert(id, ts(at));
            }
            None => tracing::warn!(
                "replication: ignoring a bad pending file name {file:?} of {target}/{repo}"
            ),
        }
    }
    Ok(out)
}

/// Replaces the pending files of (target, repo).
pub(crate) fn set_pending(
    c: &mut Connection,
    target: &str,
    repo: &str,
    pending: &Pending,
) -> Result<(), DbError> {
    let tx = c.transaction()?;
    tx.execute(
        "DELETE FROM replication_pending WHERE target = ?1 AND repo = ?2",
        params![target, repo],
    )?;
    {
        let mut ins = tx.prepare("INSERT INTO replication_pending (target, repo, file, first_missing) VALUES (?1, ?2, ?3, ?4)")?;
        for (file, at) in pending {
            ins.execute(params![target, repo, file.to_string(), ms(*at)])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The source's counts (snapshots, data files) seen by the previous pass,
/// replaced by `now_counts`.
pub(crate) fn swap_source_counts(
    c: &Connection,
    repo: &str,
    now_counts: Option<(u64, u64)>,
    now: Timestamp,
) -> Result<Option<(u64, u64)>, DbError> {
    let prev: Option<(i64, i64)> = c
        .query_row(
            "SELECT snapshots, data FROM replication_sources WHERE repo = ?1",
            [repo],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (s, d) = now_counts.unwrap_or((0, 0));
    c.execute(
        "INSERT INTO replication_sources (repo, snapshots, data, seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (repo) DO UPDATE SET snapshots = excluded.snapshots, data = excluded.data, seen = excluded.seen",
        params![repo, i64::try_from(s).unwrap_or(i64::MAX), i64::try_from(d).unwrap_or(i64::MAX), ms(now)],
    )?;
    Ok(prev.map(|(s, d)| (u64::try_from(s).unwrap_or(0), u64::try_from(d).unwrap_or(0))))
}

/// Every repository a previous pass saw at the hub (so one that vanished
/// is still looked at, and its disappearance noticed).
pub(crate) fn source_repos(c: &Connection) -> Result<Vec<String>, DbError> {
    let mut st = c.prepare("SELECT repo FROM replication_sources ORDER BY repo")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Reads what replication recorded, and the open alerts, from the control
/// database in `state_dir` without changing it (a running hub may hold it
/// open). Empty if there is no database, or one from before replication.
pub fn read_state(
    state_dir: &std::path::Path,
) -> Result<(Vec<Row>, Vec<bulwark_api::Alert>), DbError> {
    let path = state_dir.join(crate::control::db::FILE_NAME);
    if !path.exists() {
        return Ok((Vec::new(), Vec::new()));
    }
    let c = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 2 {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut open = crate::control::alerts::list(&c, Some(true), 1000)?;
    open.retain(|a| a.kind.starts_with("replication."));
    Ok((all(&c)?, open))
}
