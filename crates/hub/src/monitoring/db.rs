//! Monitoring's tables: `monitor_state` (what each monitor's alerting acted
//! on) and `notify_outbox` (notices not yet delivered). An evaluation's
//! [`Changes`] are written in one transaction — state, history and queued
//! notices together — so a crash can neither lose a notice nor make the hub
//! send it twice on the next start (delivery itself is at least once: a
//! crash between sending and deleting the row sends it again).

use bulwark_notify::{targets, Message, Route};
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use super::engine::{Changes, History, Row};
use crate::control::{
    alerts,
    db::{ms, ts, DbError},
};

/// The alert kind of monitors in the history.
pub(crate) const HISTORY_KIND: &str = "monitor";

/// Every row of `monitor_state`.
pub(crate) fn load(c: &Connection) -> Result<Vec<Row>, DbError> {
    let mut st = c.prepare(
        "SELECT key, monitor, item, state, since, notified, reminded, message, vantages FROM monitor_state ORDER BY key",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Row {
            key: r.get(0)?,
            monitor: r.get(1)?,
            item: r.get(2)?,
            state: r.get(3)?,
            since: r.get::<_, Option<i64>>(4)?.map(ts),
            notified: r.get::<_, Option<i64>>(5)?.map(ts),
            reminded: r.get::<_, Option<i64>>(6)?.map(ts),
            message: r.get(7)?,
            vantages: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes `changes` in one transaction: rows, history, and one outbox row
/// per (notice, notifier its routes name). Returns how many outbox rows
/// were queued.
pub(crate) fn apply(
    c: &mut Connection,
    changes: &Changes,
    routes: &[Route],
    notifiers: &std::collections::BTreeSet<String>,
    now: Timestamp,
) -> Result<usize, DbError> {
    let tx = c.transaction()?;
    for r in &changes.upserts {
        tx.execute(
            "INSERT INTO monitor_state (key, monitor, item, state, since, notified, reminded, message, vantages)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (key) DO UPDATE SET state = ?4, since = ?5, notified = ?6, reminded = ?7, message = ?8, vantages = ?9",
            params![
                r.key,
                r.monitor,
                r.item,
                r.state,
                r.since.map(ms),
                r.notified.map(ms),
                r.reminded.map(ms),
                r.message,
                r.vantages
            ],
        )?;
    }
    for k in &changes.deletes {
        tx.execute("DELETE FROM monitor_state WHERE key = ?1", [k])?;
        alerts::resolve(&tx, HISTORY_KIND, k, now)?;
    }
    for h in &changes.history {
        match h {
            History::Open {
                key,
                severity,
                message,
            } => {
                alerts::raise_in(&tx, HISTORY_KIND, key, *severity, message, now)?;
            }
            History::Close { key } => {
                alerts::resolve(&tx, HISTORY_KIND, key, now)?;
            }
        }
    }
    let mut queued = 0;
    for m in &changes.notices {
        let json = serde_json::to_string(m)?;
        for n in targets(routes, m) {
            if !notifiers.contains(&n) {
                continue;
            }
            tx.execute(
                "INSERT INTO notify_outbox (notifier, message, created, next_attempt) VALUES (?1, ?2, ?3, ?3)",
                params![n, json, ms(now)],
            )?;
            queued += 1;
        }
    }
    tx.commit()?;
    Ok(queued)
}

/// A queued notice.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) id: i64,
    pub(crate) notifier: String,
    pub(crate) message: Message,
    pub(crate) created: Timestamp,
    pub(crate) attempts: u32,
}

/// Notices due at `now`, oldest first (at most `limit`); rows whose message
/// cannot be read are deleted with a warning.
pub(crate) fn due(c: &Connection, now: Timestamp, limit: u32) -> Result<Vec<Queued>, DbError> {
    let mut st = c.prepare(
        "SELECT id, notifier, message, created, attempts FROM notify_outbox WHERE next_attempt <= ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows: Vec<(i64, String, String, i64, u32)> = st
        .query_map(params![ms(now), limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (id, notifier, json, created, attempts) in rows {
        match serde_json::from_str::<Message>(&json) {
            Ok(message) => out.push(Queued {
                id,
                notifier,
                message,
                created: ts(created),
                attempts,
            }),
            Err(e) => {
                tracing::warn!(id, "dropping an unreadable queued notification: {e}");
                c.execute("DELETE FROM notify_outbox WHERE id = ?1", [id])?;
            }
        }
    }
    Ok(out)
}

/// A notice was delivered (or given up on): remove it.
pub(crate) fn done(c: &Connection, id: i64) -> Result<(), DbError> {
    c.execute("DELETE FROM notify_outbox WHERE id = ?1", [id])?;
    Ok(())
}

/// A delivery failed: try again at `next`.
pub(crate) fn retry(c: &Connection, id: i64, next: Timestamp, error: &str) -> Result<(), DbError> {
    c.execute(
        "UPDATE notify_outbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3 WHERE id = ?1",
        params![id, ms(next), error],
    )?;
    Ok(())
}

/// Queued notices, and the time the next one is due.
pub(crate) fn pending(c: &Connection) -> Result<(u32, Option<Timestamp>), DbError> {
    let n: u32 = c.query_row("SELECT COUNT(*) FROM notify_outbox", [], |r| r.get(0))?;
    let next: Option<i64> = c
        .query_row("SELECT MIN(next_attempt) FROM notify_outbox", [], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    Ok((n, next.map(ts)))
}
