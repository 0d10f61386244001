//! The control plane's SQLite database (`<state_dir>/control.sqlite`): tokens,
//! hosts, jobs, run history, commands, pings; alerts ([`super::alerts`]) and
//! replication state (`crate::replication`).
//!
//! - WAL journal with `synchronous=NORMAL`: a committed transaction survives
//!   a crash of the hub; a power loss may drop the last few commits (an
//!   agent re-sends a report it got no answer for, and reports are
//!   idempotent, so nothing is lost for good).
//! - Migrations: [`MIGRATIONS`] applied in order by `PRAGMA user_version`,
//!   each in the same transaction as the version bump. A database from a
//!   newer Bulwark is refused, never touched.
//! - Times are stored as Unix milliseconds; a report is stored as the JSON
//!   the agent sent (re-serialized), with the columns queries need beside it.
//!
//! Everything here is synchronous; async code reaches it through [`Db`]:
//! [`Db::call`] runs on the one writer connection's own thread,
//! [`Db::read`] on one of a few read-only connections, each on a thread of
//! its own (WAL lets readers run beside the writer). None of it uses the
//! async runtime's blocking pool, which serves the repositories' IO: a slow
//! or busy database cannot starve uploads.
//! - Run history is kept for [`super::ControlConfig::run_history`] (90 days
//!   by default), and always the newest [`KEEP_RUNS_PER_JOB`] runs of each
//!   job and its newest success ([`prune_runs`]).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use bulwark_api::{
    Command, CommandKind, PollRequest, Run, RunKind, RunReport, RunStatus, SnapshotRecord,
};
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::state::PingKind;

/// The database file in the state directory.
pub(crate) const FILE_NAME: &str = "control.sqlite";

/// Schema scripts; version N is the state after the first N.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('admin', 'host')),
    host TEXT,
    created INTEGER NOT NULL,
    last_used INTEGER
);
CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER,
    agent_version TEXT,
    running TEXT NOT NULL DEFAULT '[]',
    next_runs TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE jobs (
    host TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    known_since INTEGER NOT NULL,
    PRIMARY KEY (host, name)
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    report_id TEXT NOT NULL,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    trigger TEXT NOT NULL,
    command_id INTEGER,
    started INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    snapshot_id TEXT,
    report TEXT NOT NULL,
    received INTEGER NOT NULL,
    UNIQUE (host, report_id)
);
CREATE INDEX runs_by_job ON runs (host, job, started);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE TABLE commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    created INTEGER NOT NULL,
    delivered INTEGER
);
CREATE INDEX commands_pending ON commands (host, delivered);
CREATE TABLE pings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('start', 'success', 'fail')),
    exit_code INTEGER,
    at INTEGER NOT NULL,
    body BLOB
);
CREATE INDEX pings_by_name ON pings (name, id);
"#,
    r#"
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message TEXT NOT NULL,
    opened INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    resolved INTEGER
);
CREATE UNIQUE INDEX alerts_open ON alerts (kind, subject) WHERE resolved IS NULL;
CREATE TABLE replication (
    target TEXT NOT NULL,
    repo TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_attempt INTEGER,
    last_success INTEGER,
    in_sync_at INTEGER,
    last_verified INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_retry INTEGER,
    last_error TEXT,
    copied_files INTEGER NOT NULL DEFAULT 0,
    copied_bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (target, repo)
);
CREATE TABLE replication_pending (
    target TEXT NOT NULL,
    repo TEXT NOT NULL,
    file TEXT NOT NULL,
    first_missing INTEGER NOT NULL,
    PRIMARY KEY (target, repo, file)
);
CREATE TABLE replication_sources (
    repo TEXT PRIMARY KEY,
    snapshots INTEGER NOT NULL,
    data INTEGER NOT NULL,
    seen INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE monitor_state (
    key TEXT PRIMARY KEY,
    monitor TEXT NOT NULL,
    item TEXT,
    state TEXT NOT NULL CHECK (state IN ('unknown', 'up', 'down')),
    since INTEGER,
    notified INTEGER,
    reminded INTEGER,
    message TEXT NOT NULL DEFAULT '',
    vantages TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE notify_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notifier TEXT NOT NULL,
    message TEXT NOT NULL,
    created INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error TEXT
);
"#,
];

/// Pings kept per check (older ones are deleted).
const PINGS_KEPT: i64 = 100;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("control database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored JSON could not be (de)serialized.
    #[error("control database: bad stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The file was written by a newer Bulwark.
    #[error("{}: schema version {found} is newer than this Bulwark knows ({known}); upgrade bulwark (or use another --state directory)", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The state directory could not be created.
    #[error("cannot create the state directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A blocking task failed.
    #[error("control database task failed: {0}")]
    Task(String),
}

/// Unix milliseconds of a timestamp.
pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// The timestamp of Unix milliseconds (clamped into range).
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Opens (creating it and the directory if needed) and migrates the
/// database in `state_dir`.
pub(crate) fn open(state_dir: &Path) -> Result<Connection, DbError> {
    if !state_dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(state_dir).map_err(|source| DbError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
    }
    let path = state_dir.join(FILE_NAME);
    let mut conn = Connection::open(&path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn, &path)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(DbError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// Work for a database thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Read-only connections (and threads) beside the writer.
const READERS: usize = 2;
/// Jobs waiting for a database thread before callers wait to queue more.
const QUEUE: usize = 256;

/// The database shared by requests: one writer connection on a thread of
/// its own, and [`READERS`] read-only connections on threads of their own.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    writer: tokio::sync::mpsc::Sender<Job>,
    readers: tokio::sync::mpsc::Sender<Job>,
}

/// Opens a read-only connection to the database at `path`.
fn open_read(path: &Path) -> Result<Connection, DbError> {
    let c = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(10))?;
    Ok(c)
}

/// Runs jobs from `rx` on `conn` on a new thread until every sender is gone.
fn spawn_worker(
    name: &str,
    mut conn: Connection,
    rx: Arc<Mutex<tokio::sync::mpsc::Receiver<Job>>>,
) -> Result<(), DbError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || loop {
            let job = rx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .blocking_recv();
            let Some(job) = job else { return };
            // a panicking job loses its answer, not the thread
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
        })
        .map(|_| ())
        .map_err(|e| DbError::Task(format!("cannot start a database thread: {e}")))
}

impl Db {
    /// Opens (creating and migrating) the database of `state_dir` and
    /// starts its threads.
    pub(crate) async fn open(state_dir: PathBuf) -> Result<Self, DbError> {
        let (writer, readers) = tokio::task::spawn_blocking(move || {
            let w = open(&state_dir)?;
            let path = state_dir.join(FILE_NAME);
            let r = (0..READERS)
                .map(|_| open_read(&path))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, DbError>((w, r))
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))??;
        let (wtx, wrx) = tokio::sync::mpsc::channel::<Job>(QUEUE);
        spawn_worker("control-db-write", writer, Arc::new(Mutex::new(wrx)))?;
        let (rtx, rrx) = tokio::sync::mpsc::channel::<Job>(QUEUE);
        let rrx = Arc::new(Mutex::new(rrx));
        for c in readers {
            spawn_worker("control-db-read", c, Arc::clone(&rrx))?;
        }
        Ok(Self {
            writer: wtx,
            readers: rtx,
        })
    }

    /// Runs `f` on the writer connection (its own thread).
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        Self::run(&self.writer, f).await
    }

    /// Runs `f` on a read-only connection (a thread of its own): for
    /// queries that change nothing. It sees every write whose `call`
    /// returned before.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        Self::run(&self.readers, f).await
    }

    async fn run<T, F>(tx: &tokio::sync::mpsc::Sender<Job>, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        let (otx, orx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |c| {
            let _ = otx.send(f(c));
        });
        tx.send(job)
            .await
            .map_err(|_| DbError::Task("the database thread stopped".into()))?;
        orx.await
            .map_err(|_| DbError::Task("the database task failed (see the log)".into()))?
    }
}

// ---------------------------------------------------------------- tokens

/// A stored token (without its secret).
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub(crate) id: i64,
    pub(crate) hash: String,
    pub(crate) host: Option<String>,
    pub(crate) created: i64,
    pub(crate) last_used: Option<i64>,
}

pub(crate) fn token_insert(
    c: &Connection,
    hash: &str,
    host: Option<&str>,
    now: Timestamp,
) -> Result<i64, DbError> {
    let kind = if host.is_some() { "host" } else { "admin" };
    c.execute(
        "INSERT INTO tokens (hash, kind, host, created) VALUES (?1, ?2, ?3, ?4)",
        params![hash, kind, host, ms(now)],
    )?;
    Ok(c.last_insert_rowid())
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        hash: r.get(1)?,
        host: r.get(2)?,
        created: r.get(3)?,
        last_used: r.get(4)?,
    })
}

pub(crate) fn token_list(c: &Connection) -> Result<Vec<TokenRow>, DbError> {
    let mut st = c.prepare("SELECT id, hash, host, created, last_used FROM tokens ORDER BY id")?;
    let rows = st
        .query_map([], token_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn token_revoke(c: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(c.execute("DELETE FROM tokens WHERE id = ?1", [id])? > 0)
}

/// The token with this hash (read-only).
pub(crate) fn token_find(c: &Connection, hash: &str) -> Result<Option<TokenRow>, DbError> {
    Ok(c.query_row(
        "SELECT id, hash, host, created, last_used FROM tokens WHERE hash = ?1",
        [hash],
        token_row,
    )
    .optional()?)
}

/// Whether `row`'s `last_used` is due an update (at most once a minute).
pub(crate) fn token_touch_due(row: &TokenRow, now: Timestamp) -> bool {
    row.last_used.is_none_or(|t| ms(now) - t >= 60_000)
}

/// Marks token `id` used now.
pub(crate) fn token_touch(c: &Connection, id: i64, now: Timestamp) -> Result<(), DbError> {
    c.execute(
        "UPDATE tokens SET last_used = ?1 WHERE id = ?2",
        params![ms(now), id],
    )?;
    Ok(())
}

// ---------------------------------------------------------- hosts & jobs

/// Records that `host` was seen (a poll updates its state too).
pub(crate) fn host_seen(
    c: &Connection,
    host: &str,
    now: Timestamp,
    poll: Option<&PollRequest>,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO hosts (name, first_seen, last_seen) VALUES (?1, ?2, ?2)
         ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen",
        params![host, ms(now)],
    )?;
    if let Some(p) = poll {
        c.execute(
            "UPDATE hosts SET agent_version = ?2, running = ?3, next_runs = ?4 WHERE name = ?1",
            params![
                host,
                p.agent_version,
                serde_json::to_string(&p.running)?,
                serde_json::to_string(&p.next_runs)?
            ],
        )?;
    }
    Ok(())
}

/// Records a job the hub knows of (from the plan or a report); the first
/// time sets `known_since`.
pub(crate) fn job_known(
    c: &Connection,
    host: &str,
    name: &str,
    kind: RunKind,
    now: Timestamp,
) -> Result<(), DbError> {
    c.execute(
        "INSERT OR IGNORE INTO jobs (host, name, kind, known_since) VALUES (?1, ?2, ?3, ?4)",
        params![host, name, kind_str(kind), ms(now)],
    )?;
    Ok(())
}

fn kind_str(k: RunKind) -> &'static str {
    match k {
        RunKind::Backup => "backup",
        RunKind::Maintenance => "maintenance",
    }
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A host row.
#[derive(Debug, Clone)]
pub(crate) struct HostRow {
    pub(crate) name: String,
    pub(crate) last_seen: Option<i64>,
    pub(crate) agent_version: Option<String>,
    pub(crate) running: Vec<bulwark_api::RunningJob>,
    pub(crate) next_runs: Vec<bulwark_api::PlannedRun>,
}

/// A job row with what its state needs.
#[derive(Debug, Clone)]
pub(crate) struct JobRow {
    pub(crate) host: String,
    pub(crate) name: String,
    pub(crate) kind: RunKind,
    pub(crate) known_since: i64,
    pub(crate) last_run: Option<Run>,
    pub(crate) last_started: Option<i64>,
    pub(crate) last_success: Option<i64>,
}

/// Per ping check: last ping (kind, time), last success, last exit status.
#[derive(Debug, Clone, Default)]
pub(crate) struct PingFacts {
    pub(crate) last: Option<(PingKind, i64)>,
    pub(crate) last_success: Option<i64>,
    pub(crate) last_exit: Option<i32>,
}

/// Everything status needs, read in one transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub(crate) hosts: Vec<HostRow>,
    pub(crate) jobs: Vec<JobRow>,
    pub(crate) pings: std::collections::HashMap<String, PingFacts>,
}

/// Reads hosts, jobs (with their last runs) and pings; `host`: only that host's.
pub(crate) fn facts(c: &mut Connection, host: Option<&str>, pings: bool) -> Result<Facts, DbError> {
    let tx = c.transaction()?;
    let mut out = Facts::default();
    {
        let mut st = tx.prepare(
            "SELECT name, last_seen, agent_version, running, next_runs FROM hosts
             WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
        )?;
        let rows = st.query_map([host], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (name, last_seen, agent_version, running, next_runs) = row?;
            out.hosts.push(HostRow {
                name,
                last_seen,
                agent_version,
                running: serde_json::from_str(&running).unwrap_or_default(),
                next_runs: serde_json::from_str(&next_runs).unwrap_or_default(),
            });
        }
        let mut st = tx.prepare(
            "SELECT host, name, kind, known_since FROM jobs WHERE ?1 IS NULL OR host = ?1 ORDER BY name, host",
        )?;
        let jobs = st
            .query_map([host], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut last = tx.prepare(
            "SELECT id, report, received, started FROM runs WHERE host = ?1 AND job = ?2
             ORDER BY started DESC, id DESC LIMIT 1",
        )?;
        let mut success = tx.prepare(
            "SELECT MAX(finished) FROM runs WHERE host = ?1 AND job = ?2 AND status = 'success'",
        )?;
        for (h, name, kind, known_since) in jobs {
            let lr = last
                .query_row(params![h, name], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .optional()?;
            let (last_run, last_started) = match lr {
                Some((id, report, received, started)) => {
                    (Some(run_of(id, &report, received)?), Some(started))
                }
                None => (None, None),
            };
            let last_success: Option<i64> = success.query_row(params![h, name], |r| r.get(0))?;
            out.jobs.push(JobRow {
                host: h,
                name,
                kind: if kind == "maintenance" {
                    RunKind::Maintenance
                } else {
                    RunKind::Backup
                },
                known_since,
                last_run,
                last_started,
                last_success,
            });
        }
        if pings {
            let mut st = tx.prepare(
                "SELECT p.name, p.kind, p.at,
                   (SELECT MAX(at) FROM pings s WHERE s.name = p.name AND s.kind = 'success'),
                   (SELECT exit_code FROM pings e WHERE e.name = p.name AND e.exit_code IS NOT NULL ORDER BY e.id DESC LIMIT 1)
                 FROM pings p WHERE p.id = (SELECT MAX(id) FROM pings q WHERE q.name = p.name)",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i32>>(4)?,
                ))
            })?;
            for row in rows {
                let (name, kind, at, last_success, last_exit) = row?;
                out.pings.insert(
                    name,
                    PingFacts {
                        last: PingKind::parse(&kind).map(|k| (k, at)),
                        last_success,
                        last_exit,
                    },
                );
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

// ------------------------------------------------------------------ runs

fn run_of(id: i64, report: &str, received: i64) -> Result<Run, DbError> {
    Ok(Run {
        run: id,
        report: serde_json::from_str(report)?,
        received: ts(received),
    })
}

/// Stores a report once: `(run id, duplicate)`. A report already stored
/// (same host and id) changes nothing.
pub(crate) fn insert_run(
    c: &mut Connection,
    r: &RunReport,
    now: Timestamp,
) -> Result<(i64, bool), DbError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM runs WHERE host = ?1 AND report_id = ?2",
            params![r.host, r.id],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        host_seen(&tx, &r.host, now, None)?;
        tx.commit()?;
        return Ok((id, true));
    }
    tx.execute(
        "INSERT INTO runs (host, report_id, job, kind, trigger, command_id, started, finished,
                           status, exit_code, snapshot_id, report, received)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            r.host,
            r.id,
            r.job,
            kind_str(r.kind),
            enum_str(&r.trigger),
            r.command_id,
            ms(r.started),
            ms(r.finished),
            r.status.as_str(),
            r.exit_code,
            r.snapshot.as_ref().map(|s| s.id.as_str()),
            serde_json::to_string(r)?,
            ms(now),
        ],
    )?;
    let id = tx.last_insert_rowid();
    job_known(&tx, &r.host, &r.job, r.kind, now)?;
    host_seen(&tx, &r.host, now, None)?;
    tx.commit()?;
    Ok((id, false))
}

/// One run by id.
pub(crate) fn get_run(c: &Connection, id: i64) -> Result<Option<Run>, DbError> {
    let row = c
        .query_row(
            "SELECT id, report, received FROM runs WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    row.map(|(id, rep, rec)| run_of(id, &rep, rec)).transpose()
}

/// Filters of run and snapshot listings.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunFilter {
    pub(crate) host: Option<String>,
    pub(crate) job: Option<String>,
    pub(crate) status: Option<RunStatus>,
    pub(crate) with_snapshot: bool,
    pub(crate) limit: u32,
}

/// Runs, newest first.
pub(crate) fn list_runs(c: &Connection, f: &RunFilter) -> Result<Vec<Run>, DbError> {
    let mut st = c.prepare(
        "SELECT id, report, received FROM runs
         WHERE (?1 IS NULL OR host = ?1) AND (?2 IS NULL OR job = ?2) AND (?3 IS NULL OR status = ?3)
           AND (?4 = 0 OR snapshot_id IS NOT NULL)
         ORDER BY id DESC LIMIT ?5",
    )?;
    let rows = st
        .query_map(
            params![
                f.host,
                f.job,
                f.status.map(RunStatus::as_str),
                i64::from(f.with_snapshot),
                f.limit
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, rep, rec)| run_of(id, &rep, rec))
        .collect()
}

/// Snapshots reported by runs, newest first.
pub(crate) fn list_snapshots(
    c: &Connection,
    f: &RunFilter,
) -> Result<Vec<SnapshotRecord>, DbError> {
    let f = RunFilter {
        with_snapshot: true,
        ..f.clone()
    };
    Ok(list_runs(c, &f)?
        .into_iter()
        .filter_map(|run| {
            let snapshot = run.report.snapshot?;
            Some(SnapshotRecord {
                host: run.report.host,
                job: run.report.job,
                run: run.run,
                snapshot,
            })
        })
        .collect())
}

/// Runs kept per job whatever their age.
pub(crate) const KEEP_RUNS_PER_JOB: i64 = 20;

/// Deletes runs received before `before`, except each job's newest
/// `keep` runs and its newest success, and delivered commands older than
/// `before`. Returns the number of runs deleted.
pub(crate) fn prune_runs(
    c: &mut Connection,
    before: Timestamp,
    keep: i64,
) -> Result<usize, DbError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "DELETE FROM runs WHERE received < ?1 AND id NOT IN (
           SELECT id FROM (
             SELECT id, ROW_NUMBER() OVER (PARTITION BY host, job ORDER BY started DESC, id DESC) AS n
             FROM runs) WHERE n <= ?2
           UNION
           SELECT id FROM (
             SELECT id, ROW_NUMBER() OVER (PARTITION BY host, job ORDER BY finished DESC, id DESC) AS n
             FROM runs WHERE status = 'success') WHERE n = 1)",
        params![ms(before), keep],
    )?;
    tx.execute(
        "DELETE FROM commands WHERE delivered IS NOT NULL AND delivered < ?1",
        params![ms(before)],
    )?;
    tx.commit()?;
    Ok(n)
}

// -------------------------------------------------------------- commands

/// Queues a run command for `host`.
pub(crate) fn insert_command(
    c: &Connection,
    host: &str,
    job: &str,
    now: Timestamp,
) -> Result<Command, DbError> {
    c.execute(
        "INSERT INTO commands (host, job, kind, created) VALUES (?1, ?2, 'run', ?3)",
        params![host, job, ms(now)],
    )?;
    Ok(Command {
        id: c.last_insert_rowid(),
        kind: CommandKind::Run,
        job: job.to_owned(),
        created: ts(ms(now)),
    })
}

/// The undelivered commands of `host`, oldest first, marked delivered in
/// the same transaction (each is handed out once).
pub(crate) fn take_commands(
    c: &mut Connection,
    host: &str,
    now: Timestamp,
) -> Result<Vec<Command>, DbError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let cmds = {
        let mut st = tx.prepare(
            "SELECT id, job, created FROM commands WHERE host = ?1 AND delivered IS NULL ORDER BY id",
        )?;
        let v = st
            .query_map([host], |r| {
                Ok(Command {
                    id: r.get(0)?,
                    kind: CommandKind::Run,
                    job: r.get(1)?,
                    created: ts(r.get(2)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        v
    };
    for cmd in &cmds {
        tx.execute(
            "UPDATE commands SET delivered = ?1 WHERE id = ?2",
            params![ms(now), cmd.id],
        )?;
    }
    tx.commit()?;
    Ok(cmds)
}

// ----------------------------------------------------------------- pings

/// Records a ping (keeping the newest [`PINGS_KEPT`] per check).
pub(crate) fn insert_ping(
    c: &mut Connection,
    name: &str,
    kind: PingKind,
    exit_code: Option<i32>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), DbError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO pings (name, kind, exit_code, at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, kind.as_str(), exit_code, ms(now), body],
    )?;
    tx.execute(
        "DELETE FROM pings WHERE name = ?1 AND id <= (SELECT id FROM pings WHERE name = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![name, PINGS_KEPT],
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn opens_twice_and_refuses_a_future_schema() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path()).unwrap();
        token_insert(&c, "h", None, Timestamp::now()).unwrap();
        drop(c);
        let c = open(dir.path()).unwrap();
        assert_eq!(token_list(&c).unwrap().len(), 1);
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = open(dir.path()).unwrap_err();
        assert!(matches!(err, DbError::TooNew { found: 99, .. }), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn run_history_is_pruned_but_keeps_each_jobs_newest_runs_and_success() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path()).unwrap();
        let day = 86_400_000i64;
        let now = ms(Timestamp::now());
        let mut n = 0;
        let mut add = |c: &Connection, job: &str, status: &str, age_days: i64| {
            n += 1;
            let t = now - age_days * day + n; // distinct, increasing times
            c.execute(
                "INSERT INTO runs (host, report_id, job, kind, trigger, started, finished, status, report, received)
                 VALUES ('nas', ?1, ?2, 'backup', 'schedule', ?3, ?3, ?4, '{}', ?3)",
                params![format!("r{n}"), job, t, status],
            )
            .unwrap();
        };
        // "many": 30 old runs; "few": 5 old runs; "fresh": 3 new runs;
        // "failing": an old success, then 25 old failures
        for _ in 0..30 {
            add(&c, "many", "success", 200);
        }
        for _ in 0..5 {
            add(&c, "few", "success", 200);
        }
        for _ in 0..3 {
            add(&c, "fresh", "failed", 1);
        }
        add(&c, "failing", "success", 300);
        for _ in 0..25 {
            add(&c, "failing", "failed", 200);
        }
        let deleted = prune_runs(&mut c, ts(now - 90 * day), KEEP_RUNS_PER_JOB).unwrap();
        let count = |c: &Connection, job: &str| -> i64 {
            c.query_row("SELECT COUNT(*) FROM runs WHERE job = ?1", [job], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert_eq!(count(&c, "many"), 20);
        assert_eq!(count(&c, "few"), 5);
        assert_eq!(count(&c, "fresh"), 3);
        assert_eq!(count(&c, "failing"), 21, "20 newest + the last success");
        let success: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM runs WHERE job = 'failing' AND status = 'success'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(success, 1);
        assert_eq!(deleted, 15);
        // pruning again deletes nothing
        assert_eq!(
            prune_runs(&mut c, ts(now - 90 * day), KEEP_RUNS_PER_JOB).unwrap(),
            0
        );
    }

    #[test]
    fn commands_are_taken_once_and_pings_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path()).unwrap();
        let now = Timestamp::now();
        insert_command(&c, "nas", "photos", now).unwrap();
        insert_command(&c, "other", "x", now).unwrap();
        assert_eq!(take_commands(&mut c, "nas", now).unwrap().len(), 1);
        assert!(take_commands(&mut c, "nas", now).unwrap().is_empty());
        for _ in 0..PINGS_KEPT + 10 {
            insert_ping(&mut c, "p", PingKind::Success, None, b"", now).unwrap();
        }
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM pings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, PINGS_KEPT);
    }
}
