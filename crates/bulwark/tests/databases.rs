//! Database sources end to end, against real databases: a PostgreSQL cluster
//! started by the test (dumped by pg_dump / pg_dumpall through `bulwark run`,
//! restored with psql / pg_restore into a *fresh* cluster and compared row by
//! row), SQLite copied online while a writer commits continuously, and the
//! failure rules (a failed dump fails the job, exit 1).
//!
//! PostgreSQL binaries are required: without them these tests fail with what
//! to install, they never skip.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicI64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::*;

/// A role that can only log in with a password (scram), to prove the
/// password really reaches pg_dump through PGPASSWORD.
const BACKUP_PASSWORD: &str = "Dump-Pässword-7f3a9c";

fn repo_section(env: &Env) -> String {
    format!(
        "[repositories.main]\nurl = \"{}\"\npassword_file = \"{}\"\n\n",
        env.repo.display(),
        env.pw.display()
    )
}

fn write_config(env: &Env, job_body: &str) -> PathBuf {
    let cfg = env.path("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[jobs.j]\nrepository = \"main\"\n{job_body}",
            repo_section(env)
        ),
    )
    .unwrap();
    let check = env.bulwark(&[
        std::ffi::OsStr::new("config"),
        std::ffi::OsStr::new("check"),
        cfg.as_os_str(),
    ]);
    assert_eq!(
        check.code,
        0,
        "the test's config is invalid:\n{}\n{}",
        check.stderr,
        std::fs::read_to_string(&cfg).unwrap()
    );
    cfg
}

/// `[[jobs.j.databases]]` for a database of `pg` (None: pg_dumpall).
fn pg_source(pg: &PgCluster, database: Option<&str>, extra: &str) -> String {
    let db = database
        .map(|d| format!("database = \"{d}\"\n"))
        .unwrap_or_default();
    format!(
        "[[jobs.j.databases]]\ntype = \"postgres\"\n{db}host = \"{}\"\nport = {}\n{extra}\n",
        pg.host().display(),
        pg.port
    )
}

/// Two databases: `appdb` (10 000 rows with unicode, NULLs, bytea, numeric,
/// tabs, newlines and backslashes, plus a second table) and `otherdb`; and
/// the password-only role `backup` that can read everything.
fn fill(pg: &PgCluster) {
    pg.sql(
        "postgres",
        &format!(
            "CREATE DATABASE appdb; CREATE DATABASE otherdb;\n\
             CREATE ROLE backup LOGIN PASSWORD '{BACKUP_PASSWORD}';\n\
             GRANT pg_read_all_data TO backup;"
        ),
    );
    pg.sql(
        "appdb",
        "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, note text, data bytea, price numeric(12,2), seen timestamptz);\n\
         INSERT INTO items\n\
           SELECT i,\n\
                  'item ' || i || ' Zürich ✓ 東京 🦀 ' || repeat('ß', i % 5),\n\
                  CASE WHEN i % 7 = 0 THEN NULL ELSE E'tab\\there\\nnew line \\\\ back''slash ' || md5(i::text) END,\n\
                  CASE WHEN i % 11 = 0 THEN NULL ELSE decode(md5(i::text) || md5((i * 31)::text), 'hex') || '\\x00ff00'::bytea END,\n\
                  CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 1.25)::numeric(12,2) END,\n\
                  timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'\n\
           FROM generate_series(1, 10000) AS i;\n\
         CREATE TABLE tags (id serial PRIMARY KEY, item integer REFERENCES items(id), tag text);\n\
         INSERT INTO tags (item, tag) SELECT i, 'tag-' || (i % 17) FROM generate_series(1, 10000, 3) AS i;\n\
         CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 100;",
    );
    pg.sql("otherdb", "CREATE TABLE notes (id integer PRIMARY KEY, body text);\nINSERT INTO notes VALUES (1, 'first'), (2, NULL), (3, 'drei ✓');");
}

const ITEMS: &str = "SELECT * FROM items ORDER BY id";
const TAGS: &str = "SELECT * FROM tags ORDER BY id";
const NOTES: &str = "SELECT * FROM notes ORDER BY id";

/// Asserts the table contents of `db` in `b` equal those of `appdb` in `a`.
fn assert_same_appdb(a: &PgCluster, b: &PgCluster, db: &str) {
    let (x, y) = (a.copy_out("appdb", ITEMS), b.copy_out(db, ITEMS));
    assert_eq!(
        x.iter().filter(|c| **c == b'\n').count(),
        10_000,
        "the source has 10 000 rows"
    );
    assert!(
        x == y,
        "items in {db} differ from the source ({} vs {} bytes)",
        y.len(),
        x.len()
    );
    assert!(
        a.copy_out("appdb", TAGS) == b.copy_out(db, TAGS),
        "tags in {db} differ"
    );
    let view = b.copy_out(db, "SELECT count(*) FROM cheap");
    assert_eq!(
        view,
        a.copy_out("appdb", "SELECT count(*) FROM cheap"),
        "the view is restored"
    );
}

fn run_json(env: &Env, cfg: &Path) -> (Out, serde_json::Value) {
    let out = env.bulwark_cfg(cfg, &["--json", "run"]);
    assert_no_crash_text("bulwark run", &format!("{}{}", out.stdout, out.stderr));
    let j = out.json();
    (out, j)
}

fn ls_paths(env: &Env) -> Vec<String> {
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- PostgreSQL

/// One database (plain SQL, through a password-only role) and pg_dumpall in
/// one job: both dumps land in the snapshot, restic reads them, and psql
/// restores them into a fresh cluster with identical contents.
#[test]
fn postgres_plain_and_dumpall_restore_into_a_fresh_cluster() {
    let pg = PgCluster::start(&["local all backup scram-sha-256"]);
    fill(&pg);
    let denied = run(
        pg.tool("psql")
            .args(["-X", "-w", "-U", "backup", "-d", "appdb", "-c", "SELECT 1"]),
        TIMEOUT,
    );
    assert_ne!(
        denied.code, 0,
        "the backup role can only log in with its password: {}",
        denied.stdout
    );
    let env = Env::new();
    let pwfile = env.path("pg.pass");
    std::fs::write(&pwfile, format!("{BACKUP_PASSWORD}\n")).unwrap();
    let cfg = write_config(
        &env,
        &format!(
            "{}{}",
            pg_source(
                &pg,
                Some("appdb"),
                &format!(
                    "user = \"backup\"\npassword_file = \"{}\"\nfilename = \"pg/appdb.sql\"",
                    pwfile.display()
                )
            ),
            pg_source(&pg, None, "user = \"postgres\"\nfilename = \"pg/all.sql\"")
        ),
    );
    env.init();
    let (out, j) = run_json(&env, &cfg);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(j[0]["status"], "success", "{j}");
    assert!(
        !out.stdout.contains(BACKUP_PASSWORD) && !out.stderr.contains(BACKUP_PASSWORD),
        "the password leaked"
    );

    let paths = ls_paths(&env);
    assert!(
        paths.contains(&"/pg/appdb.sql".to_string()) && paths.contains(&"/pg/all.sql".to_string()),
        "{paths:?}"
    );
    let plain = env
        .bulwark(&["dump", "latest", "/pg/appdb.sql"])
        .ok()
        .raw
        .clone();
    let all = env
        .bulwark(&["dump", "latest", "/pg/all.sql"])
        .ok()
        .raw
        .clone();
    assert!(
        String::from_utf8_lossy(&plain).contains("PostgreSQL database dump complete"),
        "a whole pg_dump"
    );
    assert!(
        String::from_utf8_lossy(&all).contains("PostgreSQL database cluster dump complete"),
        "a whole pg_dumpall"
    );
    // restic 0.14 reads the same bytes
    let r = env
        .restic(&["dump", "latest", "/pg/appdb.sql"])
        .ok()
        .raw
        .clone();
    assert!(
        !r.is_empty() && r == plain,
        "restic dump gives {} bytes, bulwark {}",
        r.len(),
        plain.len()
    );

    let fresh = PgCluster::start(&[]);
    // pg_dumpall: roles and every database
    let all_file = fresh.dir.path().join("all.sql");
    std::fs::write(&all_file, &all).unwrap();
    // (the dump re-creates the `postgres` role, which exists: that one error is expected)
    let restored = run(
        fresh
            .tool("psql")
            .args(["-X", "-q", "-d", "postgres", "-f"])
            .arg(&all_file),
        TIMEOUT,
    );
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    let errors: Vec<&str> = restored
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert!(
        errors
            .iter()
            .all(|l| l.contains("role \"postgres\" already exists")),
        "{errors:?}"
    );
    assert_same_appdb(&pg, &fresh, "appdb");
    assert_eq!(
        pg.copy_out("otherdb", NOTES),
        fresh.copy_out("otherdb", NOTES)
    );
    let role = fresh.copy_out(
        "postgres",
        "SELECT rolname FROM pg_roles WHERE rolname = 'backup'",
    );
    assert_eq!(role, b"backup\n", "pg_dumpall carries the roles");

    // the single database, plain SQL, into an empty database with psql
    fresh.sql("postgres", "CREATE DATABASE appdb_plain");
    let plain_file = fresh.dir.path().join("appdb.sql");
    std::fs::write(&plain_file, &plain).unwrap();
    let restored = run(
        fresh
            .tool("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "appdb_plain",
                "-f",
            ])
            .arg(&plain_file),
        TIMEOUT,
    );
    assert_eq!(
        restored.code, 0,
        "psql restore of the plain dump: {}",
        restored.stderr
    );
    assert_same_appdb(&pg, &fresh, "appdb_plain");
}

/// `format = "custom"`: pg_restore brings it back into a fresh cluster.
#[test]
fn postgres_custom_format_restores_with_pg_restore() {
    let pg = PgCluster::start(&[]);
    fill(&pg);
    let env = Env::new();
    let cfg = write_config(
        &env,
        &pg_source(
            &pg,
            Some("appdb"),
            "user = \"postgres\"\nformat = \"custom\"\nfilename = \"pg/appdb.dump\"",
        ),
    );
    env.init();
    let (out, j) = run_json(&env, &cfg);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(j[0]["status"], "success", "{j}");
    let dump = env
        .bulwark(&["dump", "latest", "/pg/appdb.dump"])
        .ok()
        .raw
        .clone();
    assert!(dump.starts_with(b"PGDMP"), "custom format");

    let fresh = PgCluster::start(&[]);
    fresh.sql("postgres", "CREATE DATABASE restored");
    let f = fresh.dir.path().join("appdb.dump");
    std::fs::write(&f, &dump).unwrap();
    let r = run(
        fresh
            .tool("pg_restore")
            .args(["--exit-on-error", "--no-owner", "-d", "restored"])
            .arg(&f),
        TIMEOUT,
    );
    assert_eq!(r.code, 0, "pg_restore: {}", r.stderr);
    assert_same_appdb(&pg, &fresh, "restored");
}

/// A dump that fails (the database does not exist; a password file that is
/// missing) fails the job: exit 1, status "failed", each source named, and
/// no trace of the dumps in the snapshot. The good source still lands.
#[test]
fn a_failing_postgres_dump_fails_the_job() {
    let pg = PgCluster::start(&[]);
    pg.sql(
        "postgres",
        "CREATE DATABASE good; \\c good\nCREATE TABLE t (id int); INSERT INTO t VALUES (1);",
    );
    let env = Env::new();
    let secret = "never-show-this-5e1f";
    let pwfile = env.path("pg.pass");
    std::fs::write(&pwfile, format!("{secret}\n")).unwrap();
    let cfg = write_config(
        &env,
        &format!(
            "{}{}{}",
            pg_source(
                &pg,
                Some("good"),
                "user = \"postgres\"\nfilename = \"pg/good.sql\""
            ),
            pg_source(
                &pg,
                Some("nosuchdb"),
                &format!(
                    "user = \"postgres\"\npassword_file = \"{}\"\nfilename = \"pg/nosuchdb.sql\"",
                    pwfile.display()
                )
            ),
            pg_source(
                &pg,
                Some("good"),
                &format!(
                    "user = \"postgres\"\npassword_file = \"{}\"\nfilename = \"pg/nopw.sql\"",
                    env.path("missing.pass").display()
                )
            ),
        ),
    );
    env.init();
    let (out, j) = run_json(&env, &cfg);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(j[0]["status"], "failed", "{j}");
    let err = j[0]["error"].as_str().unwrap();
    assert!(
        err.contains("database source postgres `nosuchdb` failed"),
        "{err}"
    );
    assert!(
        err.contains("pg_dump nosuchdb") && err.contains("exited with status 1"),
        "{err}"
    );
    assert!(
        err.contains("\"nosuchdb\" does not exist"),
        "pg_dump's own words: {err}"
    );
    assert!(
        err.contains("database source postgres `good` failed"),
        "{err}"
    );
    assert!(
        err.contains("missing.pass"),
        "the password file is named: {err}"
    );
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "the password leaked"
    );
    let paths = ls_paths(&env);
    assert!(paths.contains(&"/pg/good.sql".to_string()), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("nosuchdb") || p.contains("nopw")),
        "{paths:?}"
    );
    // no retention ran on a failed job, and the text output says it too
    let text = env.bulwark_cfg(&cfg, &["run"]);
    assert_eq!(text.code, 1);
    assert!(
        text.stderr.contains("job j failed") && text.stderr.contains("`nosuchdb`"),
        "{}",
        text.stderr
    );
}

// ---------------------------------------------------------------- commands and SQLite failures

/// `fail_on_stderr`: a command that exits 0 but prints a matching line fails
/// the job; so does an SQLite source whose file does not exist.
#[test]
fn stderr_patterns_and_missing_sqlite_files_fail_the_job() {
    let env = Env::new();
    let cfg = write_config(
        &env,
        "[[jobs.j.commands]]\ncommand = \"printf 'looks fine'; echo 'mysqldump: Got error: 1044: Access denied' >&2; exit 0\"\n\
         filename = \"db/my.sql\"\nfail_on_stderr = [\"Got error\"]\n\
         [[jobs.j.commands]]\ncommand = \"printf fine; echo 'Warning: nothing' >&2\"\nfilename = \"db/ok.sql\"\nfail_on_stderr = [\"error\"]\n",
    );
    env.init();
    let (out, j) = run_json(&env, &cfg);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(j[0]["status"], "failed", "{j}");
    let err = j[0]["error"].as_str().unwrap();
    assert!(err.contains("command source `printf 'looks fine'"), "{err}");
    assert!(err.contains("`Got error`"), "the pattern is named: {err}");
    let paths = ls_paths(&env);
    assert!(
        paths.contains(&"/db/ok.sql".to_string()) && !paths.contains(&"/db/my.sql".to_string()),
        "{paths:?}"
    );

    let missing = env.path("no/such.sqlite3");
    let cfg = write_config(
        &env,
        &format!(
            "[[jobs.j.databases]]\ntype = \"sqlite\"\npath = \"{}\"\nfilename = \"app.sqlite3\"\n",
            missing.display()
        ),
    );
    let (out, j) = run_json(&env, &cfg);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(j[0]["status"], "failed", "{j}");
    let err = j[0]["error"].as_str().unwrap();
    assert!(
        err.contains(&format!(
            "database source sqlite `{}` failed",
            missing.display()
        )),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists(), "the database was not created");
}

// ---------------------------------------------------------------- SQLite online copy

/// The writer's rows: id and a payload that can be checked.
fn payload(id: i64) -> String {
    format!("{id}:{}", "row-data ✓ ".repeat(40))
}

/// A database copied while a writer commits small transactions as fast as it
/// can (WAL mode, like Vaultwarden): the copy is consistent and holds every
/// row committed before the backup started.
#[test]
fn sqlite_online_copy_while_a_writer_commits() {
    let env = Env::new();
    let db = env.path("app/db.sqlite3");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    {
        // big enough (~20 MB) that the copy takes many steps
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);").unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for id in 1..=40_000i64 {
            tx.execute(
                "INSERT INTO t (id, payload) VALUES (?1, ?2)",
                rusqlite::params![id, payload(id)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let committed = Arc::new(AtomicI64::new(40_000));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, committed, stop) = (db.clone(), committed.clone(), stop.clone());
        std::thread::spawn(move || -> Result<u64, String> {
            let c = rusqlite::Connection::open(&db).map_err(|e| e.to_string())?;
            c.busy_timeout(Duration::from_secs(30))
                .map_err(|e| e.to_string())?;
            c.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| e.to_string())?;
            let mut id = committed.load(Ordering::SeqCst);
            let mut txs = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let tx = c.unchecked_transaction().map_err(|e| e.to_string())?;
                for _ in 0..3 {
                    id += 1;
                    tx.execute(
                        "INSERT INTO t (id, payload) VALUES (?1, ?2)",
                        rusqlite::params![id, payload(id)],
                    )
                    .map_err(|e| format!("insert {id}: {e}"))?;
                }
                tx.commit().map_err(|e| format!("commit up to {id}: {e}"))?;
                committed.store(id, Ordering::SeqCst);
                txs += 1;
            }
            Ok(txs)
        })
    };
    // the writer is really going before the backup starts
    let t0 = Instant::now();
    while committed.load(Ordering::SeqCst) < 40_300 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let cfg = write_config(
        &env,
        &format!("[[jobs.j.databases]]\ntype = \"sqlite\"\npath = \"{}\"\nfilename = \"sqlite/app.sqlite3\"\n", db.display()),
    );
    env.init();
    let before = committed.load(Ordering::SeqCst);
    let (out, j) = run_json(&env, &cfg);
    let after = committed.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let txs = writer
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("the writer failed while the backup ran: {e}"));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(j[0]["status"], "success", "{j}");
    assert!(
        after > before,
        "the writer committed during the backup ({before} → {after}, {txs} transactions)"
    );

    let copy = env
        .bulwark(&["dump", "latest", "/sqlite/app.sqlite3"])
        .ok()
        .raw
        .clone();
    assert!(copy.starts_with(b"SQLite format 3\0"), "an SQLite file");
    let restored = env.path("restored.sqlite3");
    std::fs::write(&restored, &copy).unwrap();
    let c = rusqlite::Connection::open(&restored).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let (n, max): (i64, i64) = c
        .query_row(
            "SELECT count(*), coalesce(max(id), 0) FROM t WHERE id <= ?1",
            [before],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (n, max),
        (before, before),
        "every row committed before the backup is in the copy"
    );
    let total: i64 = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    let top: i64 = c
        .query_row("SELECT max(id) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        total, top,
        "whole transactions only: ids 1..={top} without gaps"
    );
    assert_eq!(
        top % 3,
        40_000 % 3,
        "a transaction inserts 3 rows: the copy never holds part of one"
    );
    let mut stmt = c
        .prepare("SELECT id, payload FROM t WHERE id % 997 = 0 OR id = ?1")
        .unwrap();
    let rows = stmt
        .query_map([before], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap();
    for row in rows {
        let (id, p) = row.unwrap();
        assert_eq!(p, payload(id), "row {id}");
    }
}
