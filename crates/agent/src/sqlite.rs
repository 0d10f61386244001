//! Consistent online copies of live SQLite databases.
//!
//! Copying the file of a database that an application (Vaultwarden,
//! Headscale, ...) is writing gives a torn copy: pages from before and after
//! a transaction, or a main file without the changes still in its `-wal`.
//! [`online_copy`] uses SQLite's online backup API instead, which copies a
//! consistent state of the database, WAL included, while the application
//! keeps writing:
//!
//! - the source is opened **read-only** (a missing file is an error, never a
//!   new empty database);
//! - pages are copied in steps of [`STEP_PAGES`]; between steps the
//!   application can write. When it commits in between, SQLite restarts the
//!   copy. After [`MAX_RESTARTS`] restarts the rest is copied in one step,
//!   which holds a read lock for as long as the copy takes (in WAL mode
//!   writers are not blocked by it at all; in rollback-journal mode they wait
//!   that long). A busy or locked database is retried with short pauses, for
//!   at most [`BUSY_LIMIT`] without progress;
//! - the copy goes into an in-memory database and is written out with
//!   SQLite's `serialize`, byte for byte the file a restore puts back.
//!   **Exception:** a database larger than [`MEMORY_LIMIT`] (512 MiB) is
//!   copied into a temporary file instead, in a private (0700) directory
//!   under `$TMPDIR` (default `/tmp`), streamed from there and deleted (also
//!   when the copy fails). That directory needs room for one copy of the
//!   database.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use rusqlite::{
    backup::{Backup, StepResult},
    Connection, ErrorCode, OpenFlags,
};

/// Databases larger than this are copied through a temporary file, not memory.
pub const MEMORY_LIMIT: u64 = 512 * 1024 * 1024;
/// Pages copied per backup step.
pub const STEP_PAGES: i32 = 1024;
/// Restarts (the database changed between two steps) before the rest is
/// copied in one step.
pub const MAX_RESTARTS: u32 = 8;
/// How long the database may stay busy/locked, without any progress, before
/// the copy gives up.
pub const BUSY_LIMIT: Duration = Duration::from_secs(300);
const BUSY_PAUSE: Duration = Duration::from_millis(20);

/// An online copy could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The database file does not exist.
    #[error("the SQLite database {} does not exist; check the path (nothing was created)", .0.display())]
    Missing(PathBuf),
    /// The file is not a SQLite database.
    #[error("{} is not a SQLite database ({reason}); check the path", path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// The database could not be opened or read.
    #[error("cannot read the SQLite database {}: {reason}; check its permissions (the -wal and -shm files next to it too)", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The backup itself failed.
    #[error("the online backup of the SQLite database {} failed: {reason}", path.display())]
    Backup {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The temporary copy of a large database could not be made.
    #[error("cannot make the temporary copy of the SQLite database {} (it is larger than 512 MiB): {reason}; point TMPDIR to a directory with room for one copy", path.display())]
    Temp {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The copy could not be written to the output.
    #[error("cannot write the copy of the SQLite database {}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Writes a consistent copy of the live SQLite database at `path` to `out`
/// (see the module docs) and returns the number of bytes written.
pub fn online_copy(path: &Path, out: &mut dyn Write) -> Result<u64, SqliteError> {
    copy_with_limit(path, out, MEMORY_LIMIT, &std::env::temp_dir())
}

/// [`online_copy`] with the size limit and the temporary directory's parent
/// given (tests).
fn copy_with_limit(
    path: &Path,
    out: &mut dyn Write,
    memory_limit: u64,
    tmp: &Path,
) -> Result<u64, SqliteError> {
    let src = open_source(path)?;
    let read_err = |e: rusqlite::Error| classify(path, &e);
    let page_size: i64 = src
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .map_err(read_err)?;
    let page_count: i64 = src
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .map_err(read_err)?;
    let size = u64::try_from(page_size.saturating_mul(page_count)).unwrap_or(0);
    let write_err = |e: io::Error| SqliteError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if size <= memory_limit {
        // the memdb VFS lets `serialize` hand out the copy's own buffer
        // instead of a second copy of it
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut dst = Connection::open_with_flags("file:bulwark-copy?vfs=memdb", flags)
            .map_err(|e| backup_error(path, &e))?;
        copy_into(path, &src, &mut dst, page_size)?;
        drop(src);
        let data = dst
            .serialize(rusqlite::MAIN_DB)
            .map_err(|e| backup_error(path, &e))?;
        out.write_all(&data).map_err(write_err)?;
        out.flush().map_err(write_err)?;
        Ok(data.len() as u64)
    } else {
        let temp_err = |e: &dyn std::fmt::Display| SqliteError::Temp {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let dir = PrivateDir::new(tmp).map_err(|e| temp_err(&e))?;
        let file = dir.0.join("copy.sqlite");
        {
            let mut dst = Connection::open(&file).map_err(|e| temp_err(&e))?;
            // a scratch file: no journal, no fsync
            dst.pragma_update(None, "journal_mode", "OFF")
                .map_err(|e| temp_err(&e))?;
            dst.pragma_update(None, "synchronous", "OFF")
                .map_err(|e| temp_err(&e))?;
            copy_into(path, &src, &mut dst, page_size)?;
            dst.close().map_err(|(_, e)| temp_err(&e))?;
        }
        drop(src);
        let mut f = fs::File::open(&file).map_err(|e| temp_err(&e))?;
        let n = io::copy(&mut f, out).map_err(write_err)?;
        out.flush().map_err(write_err)?;
        Ok(n)
    }
}

/// Opens `path` read-only and makes sure it is a database we can read.
fn open_source(path: &Path) -> Result<Connection, SqliteError> {
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SqliteError::Missing(path.to_path_buf()))
        }
        Err(e) => {
            return Err(SqliteError::Open {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
        Ok(m) if m.is_dir() => {
            return Err(SqliteError::NotADatabase {
                path: path.to_path_buf(),
                reason: "it is a directory".into(),
            })
        }
        Ok(m) if !m.is_file() => {
            return Err(SqliteError::NotADatabase {
                path: path.to_path_buf(),
                reason: "it is not a regular file".into(),
            })
        }
        Ok(_) => {}
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, &e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| classify(path, &e))?;
    // opening is lazy: the first read finds out what the file is
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| classify(path, &e))?;
    Ok(conn)
}

fn classify(path: &Path, e: &rusqlite::Error) -> SqliteError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => SqliteError::NotADatabase {
            path: path.to_path_buf(),
            reason: "file is not a database".into(),
        },
        _ => SqliteError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

fn backup_error(path: &Path, e: &dyn std::fmt::Display) -> SqliteError {
    SqliteError::Backup {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// `PRAGMA data_version`: changes whenever another connection commits.
fn data_version(path: &Path, src: &Connection) -> Result<i64, SqliteError> {
    src.pragma_query_value(None, "data_version", |r| r.get(0))
        .map_err(|e| backup_error(path, &e))
}

/// Copies `src` into the empty `dst` with the backup API (see the module docs).
fn copy_into(
    path: &Path,
    src: &Connection,
    dst: &mut Connection,
    page_size: i64,
) -> Result<(), SqliteError> {
    // an in-memory destination cannot change its page size during the backup
    dst.pragma_update(None, "page_size", page_size)
        .map_err(|e| backup_error(path, &e))?;
    let backup = Backup::new(src, dst).map_err(|e| backup_error(path, &e))?;
    let mut version = data_version(path, src)?;
    let mut restarts = 0u32;
    let mut stalled_since: Option<Instant> = None;
    loop {
        let pages = if restarts >= MAX_RESTARTS {
            -1
        } else {
            STEP_PAGES
        };
        match backup.step(pages).map_err(|e| backup_error(path, &e))? {
            StepResult::Done => return Ok(()),
            StepResult::More => {
                stalled_since = None;
                // a commit by anyone else since the last step makes SQLite
                // start over with the next one
                let now = data_version(path, src)?;
                if now != version {
                    version = now;
                    restarts += 1;
                    tracing::debug!(db = %path.display(), restarts, "sqlite changed during the backup; it restarts");
                }
            }
            // Busy, Locked (and anything a newer rusqlite may add): retry
            _ => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > BUSY_LIMIT {
                    return Err(SqliteError::Backup {
                        path: path.to_path_buf(),
                        reason: format!(
                            "the database stayed locked for {} s; is a process holding a long write transaction?",
                            BUSY_LIMIT.as_secs()
                        ),
                    });
                }
                thread::sleep(BUSY_PAUSE);
            }
        }
    }
}

/// A 0700 directory under `base` (`$TMPDIR`), removed with everything in it
/// on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new(base: &Path) -> io::Result<Self> {
        for _ in 0..16 {
            let dir = base.join(format!("bulwark-sqlite-{:016x}", rand::random::<u64>()));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", base.display()))),
            }
        }
        Err(io::Error::other(format!(
            "no free directory name under {}",
            base.display()
        )))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn small_db(path: &Path) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, data BLOB);",
        )
        .unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for i in 0..3000i64 {
            tx.execute(
                "INSERT INTO t(id, name, data) VALUES (?1, ?2, ?3)",
                rusqlite::params![i, format!("név {i} ✓"), vec![(i % 251) as u8; 100]],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        // leave rows in the WAL only: the copy must include them
        c.execute(
            "INSERT INTO t(id, name) VALUES (100000, 'only in the wal')",
            [],
        )
        .unwrap();
        std::mem::forget(c); // keep the WAL un-checkpointed while we copy
    }

    fn check_copy(bytes: &[u8], dir: &Path) {
        let restored = dir.join("restored.sqlite");
        fs::write(&restored, bytes).unwrap();
        let c = Connection::open(&restored).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3001);
        let s: String = c
            .query_row("SELECT name FROM t WHERE id = 100000", [], |r| r.get(0))
            .unwrap();
        assert_eq!(s, "only in the wal");
        let s: String = c
            .query_row("SELECT name FROM t WHERE id = 7", [], |r| r.get(0))
            .unwrap();
        assert_eq!(s, "név 7 ✓");
    }

    #[test]
    fn copies_a_small_database_with_its_wal() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.sqlite");
        small_db(&db);
        let mut out = Vec::new();
        let n = online_copy(&db, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        assert!(out.starts_with(b"SQLite format 3\0"));
        check_copy(&out, tmp.path());
    }

    #[test]
    fn large_databases_go_through_a_private_temp_file_that_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.sqlite");
        small_db(&db);
        let scratch = tmp.path().join("scratch");
        fs::create_dir(&scratch).unwrap();
        /// Looks at the scratch directory while the copy is being streamed.
        struct Spy {
            scratch: PathBuf,
            seen: Vec<(u32, Vec<String>)>,
            bytes: Vec<u8>,
        }
        impl Write for Spy {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                use std::os::unix::fs::PermissionsExt;
                if self.seen.is_empty() {
                    for d in fs::read_dir(&self.scratch)? {
                        let d = d?;
                        let mode = d.metadata()?.permissions().mode() & 0o777;
                        let files = fs::read_dir(d.path())?
                            .map(|f| f.map(|f| f.file_name().to_string_lossy().into_owned()))
                            .collect::<io::Result<_>>()?;
                        self.seen.push((mode, files));
                    }
                }
                self.bytes.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = Spy {
            scratch: scratch.clone(),
            seen: Vec::new(),
            bytes: Vec::new(),
        };
        let n = copy_with_limit(&db, &mut out, 1024, &scratch).unwrap();
        assert_eq!(
            out.seen,
            vec![(0o700, vec!["copy.sqlite".to_string()])],
            "streamed from a private temp file"
        );
        assert_eq!(n, out.bytes.len() as u64);
        check_copy(&out.bytes, tmp.path());
        assert_eq!(
            fs::read_dir(&scratch).unwrap().count(),
            0,
            "the temporary copy is deleted"
        );
        // a temp directory that cannot be made: a clear error, nothing written
        let mut out = Vec::new();
        let e = copy_with_limit(&db, &mut out, 1024, &tmp.path().join("no/such/dir")).unwrap_err();
        assert!(
            matches!(e, SqliteError::Temp { .. }) && e.to_string().contains("TMPDIR"),
            "{e}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_missing_file_is_an_error_and_is_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("nope.sqlite");
        let mut out = Vec::new();
        let e = online_copy(&db, &mut out).unwrap_err();
        assert!(matches!(e, SqliteError::Missing(_)), "{e:?}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(!db.exists(), "a read-only open never creates the database");
        assert!(out.is_empty());
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("notes.txt");
        fs::write(
            &f,
            "these are not the pages you are looking for\n".repeat(200),
        )
        .unwrap();
        let before = fs::read(&f).unwrap();
        let mut out = Vec::new();
        let e = online_copy(&f, &mut out).unwrap_err();
        assert!(matches!(e, SqliteError::NotADatabase { .. }), "{e:?}");
        assert!(e.to_string().contains("is not a SQLite database"), "{e}");
        assert_eq!(fs::read(&f).unwrap(), before, "the file is untouched");
        let e = online_copy(tmp.path(), &mut out).unwrap_err();
        assert!(
            matches!(e, SqliteError::NotADatabase { .. }),
            "a directory: {e:?}"
        );
        assert!(out.is_empty());
    }
}
