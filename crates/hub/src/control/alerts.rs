//! Durable alerts: one open alert per (kind, subject). Raising an open one
//! again refreshes it (`last_seen`, message, severity) instead of adding a
//! duplicate, so a condition that persists across passes or hub restarts is
//! one alert; resolving closes it, and the next occurrence opens a new one.

use bulwark_api::{Alert, Severity};
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use super::db::{ms, ts, DbError};

fn severity_of(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        _ => Severity::Info,
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let severity: String = r.get(3)?;
    Ok(Alert {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        severity: severity_of(&severity),
        message: r.get(4)?,
        opened: ts(r.get(5)?),
        last_seen: ts(r.get(6)?),
        resolved: r.get::<_, Option<i64>>(7)?.map(ts),
    })
}

const COLUMNS: &str = "id, kind, subject, severity, message, opened, last_seen, resolved";

/// Opens the alert (kind, subject), or refreshes it if it is open. Returns
/// the alert and whether it was newly opened.
pub(crate) fn raise(
    c: &mut Connection,
    kind: &str,
    subject: &str,
    severity: Severity,
    message: &str,
    now: Timestamp,
) -> Result<(Alert, bool), DbError> {
    let tx = c.transaction()?;
    let out = raise_in(&tx, kind, subject, severity, message, now)?;
    tx.commit()?;
    Ok(out)
}

/// [`raise`] within the caller's transaction.
pub(crate) fn raise_in(
    tx: &Connection,
    kind: &str,
    subject: &str,
    severity: Severity,
    message: &str,
    now: Timestamp,
) -> Result<(Alert, bool), DbError> {
    let open: Option<i64> = tx
        .query_row(
            "SELECT id FROM alerts WHERE kind = ?1 AND subject = ?2 AND resolved IS NULL",
            params![kind, subject],
            |r| r.get(0),
        )
        .optional()?;
    let (id, new) = match open {
        Some(id) => {
            tx.execute(
                "UPDATE alerts SET last_seen = ?2, message = ?3, severity = ?4 WHERE id = ?1",
                params![id, ms(now), message, severity.as_str()],
            )?;
            (id, false)
        }
        None => {
            tx.execute(
                "INSERT INTO alerts (kind, subject, severity, message, opened, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![kind, subject, severity.as_str(), message, ms(now)],
            )?;
            (tx.last_insert_rowid(), true)
        }
    };
    let alert = tx.query_row(
        &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
        [id],
        row,
    )?;
    Ok((alert, new))
}

/// Resolves the open alert (kind, subject), if any; returns it.
pub(crate) fn resolve(
    c: &Connection,
    kind: &str,
    subject: &str,
    now: Timestamp,
) -> Result<Option<Alert>, DbError> {
    let open: Option<Alert> = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM alerts WHERE kind = ?1 AND subject = ?2 AND resolved IS NULL"),
            params![kind, subject],
            row,
        )
        .optional()?;
    let Some(mut a) = open else { return Ok(None) };
    c.execute(
        "UPDATE alerts SET resolved = ?2 WHERE id = ?1",
        params![a.id, ms(now)],
    )?;
    a.resolved = Some(now);
    Ok(Some(a))
}

/// Resolves alert `id` (an administrator's acknowledgement); returns it, or
/// None if there is no such alert. Resolving a resolved alert changes nothing.
pub(crate) fn resolve_id(
    c: &Connection,
    id: i64,
    now: Timestamp,
) -> Result<Option<Alert>, DbError> {
    c.execute(
        "UPDATE alerts SET resolved = ?2 WHERE id = ?1 AND resolved IS NULL",
        params![id, ms(now)],
    )?;
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
        [id],
        row,
    )
    .optional()?)
}

/// Alerts, newest first: only open ones (`Some(true)`), only resolved ones
/// (`Some(false)`) or all.
pub(crate) fn list(c: &Connection, open: Option<bool>, limit: u32) -> Result<Vec<Alert>, DbError> {
    let filter = match open {
        Some(true) => "WHERE resolved IS NULL",
        Some(false) => "WHERE resolved IS NOT NULL",
        None => "",
    };
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM alerts {filter} ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([limit], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_open_alert_per_kind_and_subject() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::db::open(dir.path()).unwrap();
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = Timestamp::from_second(1_700_000_060).unwrap();
        let (a, new) = raise(
            &mut c,
            "replication.failing",
            "usb/nas",
            Severity::Warning,
            "first",
            t0,
        )
        .unwrap();
        assert!(new);
        let (b, new) = raise(
            &mut c,
            "replication.failing",
            "usb/nas",
            Severity::Critical,
            "second",
            t1,
        )
        .unwrap();
        assert!(!new, "raised again while open: refreshed, not duplicated");
        assert_eq!(
            (b.id, b.opened, b.last_seen, b.message.as_str(), b.severity),
            (a.id, t0, t1, "second", Severity::Critical)
        );
        raise(
            &mut c,
            "replication.failing",
            "cloud/nas",
            Severity::Warning,
            "other subject",
            t1,
        )
        .unwrap();
        assert_eq!(list(&c, Some(true), 10).unwrap().len(), 2);

        let r = resolve(&c, "replication.failing", "usb/nas", t1)
            .unwrap()
            .unwrap();
        assert_eq!(r.resolved, Some(t1));
        assert!(
            resolve(&c, "replication.failing", "usb/nas", t1)
                .unwrap()
                .is_none(),
            "nothing open any more"
        );
        let (c2, new) = raise(
            &mut c,
            "replication.failing",
            "usb/nas",
            Severity::Warning,
            "again",
            t1,
        )
        .unwrap();
        assert!(new && c2.id != a.id, "a new occurrence is a new alert");
        assert_eq!(list(&c, Some(false), 10).unwrap().len(), 1);
        assert_eq!(list(&c, None, 10).unwrap().len(), 3);
        assert_eq!(list(&c, None, 1).unwrap()[0].id, c2.id, "newest first");

        let acked = resolve_id(&c, c2.id, t1).unwrap().unwrap();
        assert_eq!(acked.resolved, Some(t1));
        assert!(resolve_id(&c, 9999, t1).unwrap().is_none());
    }
}
