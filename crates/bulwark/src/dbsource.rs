//! Database sources: `[[jobs.NAME.databases]]` → command sources for the
//! engine, and the hidden `sqlite-backup` command behind SQLite sources.
//!
//! Every database is dumped by its own tool straight into the snapshot (the
//! engine streams the tool's stdout; nothing touches the disk):
//!
//! - PostgreSQL: `pg_dump --no-password [--format=custom] [options] -- DB`,
//!   or `pg_dumpall --no-password [options]` for all databases and roles.
//!   Host, port and user go in `PGHOST`/`PGPORT`/`PGUSER`, the password in
//!   `PGPASSWORD`, set for that child only.
//! - MySQL/MariaDB: `mariadb-dump` (else `mysqldump`) with
//!   `--single-transaction --routines --events --triggers`, connection flags,
//!   options, then `--databases DB` or `--all-databases`; the password in
//!   `MYSQL_PWD`.
//! - SQLite: this very binary, `bulwark sqlite-backup PATH` (SQLite's online
//!   backup API, see `bulwark_agent::sqlite`).
//!
//! Passwords are never in argv, messages or `display` strings. A source that
//! cannot even be prepared (password not loadable, tool not installed) still
//! becomes a command source, marked `unavailable`: it fails like a failed
//! dump, with the reason, and the job fails.

use std::{
    ffi::OsStr,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Result;
use bulwark_config::{DatabaseKind, DatabaseSource, PgFormat, SecretSource};
use bulwark_engine::CommandSource;

use crate::exit;

/// Where Debian/Ubuntu install each PostgreSQL version's tools.
const PG_LIB: &str = "/usr/lib/postgresql";

/// How a database source is named in a job's error ("database source
/// postgres `vaultwarden`").
pub(crate) fn describe(db: &DatabaseSource) -> String {
    match &db.kind {
        DatabaseKind::Postgres {
            database: Some(d), ..
        } => format!("database source postgres `{d}`"),
        DatabaseKind::Postgres { database: None, .. } => {
            "database source postgres (all databases)".into()
        }
        DatabaseKind::Mysql {
            database: Some(d), ..
        } => format!("database source mysql `{d}`"),
        DatabaseKind::Mysql { database: None, .. } => {
            "database source mysql (all databases)".into()
        }
        DatabaseKind::Sqlite { path } => format!("database source sqlite `{}`", path.display()),
    }
}

/// The engine command source that dumps `db` (passwords are loaded now).
pub(crate) fn command_source(db: &DatabaseSource) -> CommandSource {
    build(
        db,
        &|tool| find_tool(tool, std::env::var_os("PATH").as_deref(), Path::new(PG_LIB)),
        &current_exe,
    )
}

fn current_exe() -> Result<PathBuf, String> {
    std::env::current_exe()
        .map_err(|e| format!("cannot find the bulwark executable to run `sqlite-backup`: {e}"))
}

/// [`command_source`] with the tool lookup and our own path injected (tests).
fn build(
    db: &DatabaseSource,
    find: &dyn Fn(&str) -> Option<PathBuf>,
    exe: &dyn Fn() -> Result<PathBuf, String>,
) -> CommandSource {
    let mut src = CommandSource {
        filename: db.filename.clone(),
        fail_on_stderr: db.fail_on_stderr.clone(),
        ..CommandSource::default()
    };
    let mut problems: Vec<String> = Vec::new();
    match &db.kind {
        DatabaseKind::Postgres {
            database,
            host,
            port,
            user,
            password,
            format,
        } => {
            let tool = if database.is_some() {
                "pg_dump"
            } else {
                "pg_dumpall"
            };
            src.display = match database {
                Some(d) => format!("{tool} {d}"),
                None => tool.to_string(),
            };
            match find(tool) {
                Some(p) => src.program = p.to_string_lossy().into_owned(),
                None => {
                    src.program = tool.to_string();
                    problems.push(format!(
                        "{tool} was not found on PATH nor in {PG_LIB}/*/bin; install the PostgreSQL client tools \
                         (Debian/Ubuntu: apt install postgresql-client), the same major version as the server or newer"
                    ));
                }
            }
            src.args.push("--no-password".into());
            if *format == PgFormat::Custom {
                if database.is_some() {
                    src.args.push("--format=custom".into());
                } else {
                    problems.push("pg_dumpall has no custom format; use format = \"plain\", or name a database".into());
                }
            }
            src.args.extend(db.options.iter().cloned());
            if let Some(d) = database {
                src.args.push("--".into());
                src.args.push(d.clone());
            }
            if let Some(h) = host {
                src.env.push(("PGHOST".into(), h.clone()));
            }
            if let Some(p) = port {
                src.env.push(("PGPORT".into(), p.to_string()));
            }
            if let Some(u) = user {
                src.env.push(("PGUSER".into(), u.clone()));
            }
            load_password(password.as_ref(), "PGPASSWORD", &mut src, &mut problems);
        }
        DatabaseKind::Mysql {
            database,
            host,
            port,
            socket,
            user,
            password,
        } => {
            let tool = ["mariadb-dump", "mysqldump"]
                .into_iter()
                .find_map(|t| find(t).map(|p| (t, p)));
            let name = tool.as_ref().map_or("mysqldump", |(t, _)| *t);
            src.display = match database {
                Some(d) => format!("{name} {d}"),
                None => format!("{name} --all-databases"),
            };
            match tool {
                Some((_, p)) => src.program = p.to_string_lossy().into_owned(),
                None => {
                    src.program = name.to_string();
                    problems.push(
                        "neither mariadb-dump nor mysqldump was found on PATH; install the client tools \
                         (Debian/Ubuntu: apt install mariadb-client)"
                            .into(),
                    );
                }
            }
            src.args = mysql_args(
                database.as_deref(),
                host.as_deref(),
                *port,
                socket.as_deref(),
                user.as_deref(),
                &db.options,
            );
            load_password(password.as_ref(), "MYSQL_PWD", &mut src, &mut problems);
        }
        DatabaseKind::Sqlite { path } => {
            src.display = format!("bulwark sqlite-backup {}", path.display());
            match exe() {
                Ok(p) => src.program = p.to_string_lossy().into_owned(),
                Err(e) => {
                    src.program = "bulwark".into();
                    problems.push(e);
                }
            }
            src.args = vec!["sqlite-backup".into(), path.to_string_lossy().into_owned()];
        }
    }
    if !problems.is_empty() {
        src.unavailable = Some(problems.join("; "));
    }
    src
}

/// `mariadb-dump`/`mysqldump` arguments (no password: that is `MYSQL_PWD`).
fn mysql_args(
    database: Option<&str>,
    host: Option<&str>,
    port: Option<u16>,
    socket: Option<&Path>,
    user: Option<&str>,
    options: &[String],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--single-transaction",
        "--routines",
        "--events",
        "--triggers",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    if let Some(h) = host {
        args.push(format!("--host={h}"));
    }
    if let Some(p) = port {
        args.push(format!("--port={p}"));
    }
    if let Some(s) = socket {
        args.push(format!("--socket={}", s.display()));
    }
    if let Some(u) = user {
        args.push(format!("--user={u}"));
    }
    args.extend(options.iter().cloned());
    match database {
        Some(d) => {
            args.push("--databases".into());
            args.push(d.to_string());
        }
        None => args.push("--all-databases".into()),
    }
    args
}

/// Loads the password into the child's environment as `var`; a load error
/// makes the source unavailable (the message names the file or variable,
/// never a secret).
fn load_password(
    password: Option<&SecretSource>,
    var: &str,
    src: &mut CommandSource,
    problems: &mut Vec<String>,
) {
    if let Some(p) = password {
        match p.load() {
            Ok(secret) => src.env.push((var.to_string(), secret.expose().to_string())),
            Err(e) => problems.push(format!("cannot load its password: {e}")),
        }
    }
}

/// `tool` on `path_var`, else in the highest-versioned `pg_lib/VERSION/bin`.
fn find_tool(tool: &str, path_var: Option<&OsStr>, pg_lib: &Path) -> Option<PathBuf> {
    if let Some(paths) = path_var {
        if let Some(p) = std::env::split_paths(paths)
            .map(|d| d.join(tool))
            .find(|p| is_executable(p))
        {
            return Some(p);
        }
    }
    if !tool.starts_with("pg_") {
        return None;
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(pg_lib)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name
                .split('.')
                .map(|n| n.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let p = e.path().join("bin").join(tool);
            is_executable(&p).then_some((version, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `bulwark sqlite-backup PATH`: a consistent online copy on stdout.
pub(crate) fn sqlite_backup(path: &Path) -> Result<u8> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let result = bulwark_agent::sqlite::online_copy(path, &mut out);
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(_), Ok(())) => Ok(exit::OK),
        (Err(e), _) => {
            eprintln!("bulwark sqlite-backup: {e}");
            Ok(exit::FATAL)
        }
        (Ok(_), Err(e)) => {
            eprintln!(
                "bulwark sqlite-backup: cannot write the copy of {}: {e}",
                path.display()
            );
            Ok(exit::FATAL)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn db(kind: DatabaseKind) -> DatabaseSource {
        DatabaseSource {
            kind,
            filename: "databases/x.sql".into(),
            options: vec![],
            fail_on_stderr: vec!["FATAL".into()],
        }
    }

    fn tools(have: &'static [&'static str]) -> impl Fn(&str) -> Option<PathBuf> {
        move |t: &str| {
            have.contains(&t)
                .then(|| PathBuf::from(format!("/opt/bin/{t}")))
        }
    }

    fn exe() -> Result<PathBuf, String> {
        Ok(PathBuf::from("/usr/bin/bulwark"))
    }

    fn pw_file(dir: &Path, secret: &str) -> SecretSource {
        let f = dir.join("pw");
        std::fs::write(&f, format!("{secret}\n")).unwrap();
        SecretSource::File(f)
    }

    fn shown(src: &CommandSource) -> String {
        format!(
            "{} {} {} {:?} {:?}",
            src.display,
            src.args.join(" "),
            src.program,
            src,
            src.unavailable
        )
    }

    #[test]
    fn postgres_one_database_plain_and_custom() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = db(DatabaseKind::Postgres {
            database: Some("vaultwarden".into()),
            host: Some("/run/postgresql".into()),
            port: Some(5433),
            user: Some("backup".into()),
            password: Some(pw_file(tmp.path(), "s3cr3t-pg")),
            format: PgFormat::Plain,
        });
        d.options = vec!["--exclude-table=sessions".into()];
        let src = build(&d, &tools(&["pg_dump"]), &exe);
        assert_eq!(src.program, "/opt/bin/pg_dump");
        assert_eq!(
            src.args,
            vec![
                "--no-password",
                "--exclude-table=sessions",
                "--",
                "vaultwarden"
            ]
        );
        assert_eq!(src.display, "pg_dump vaultwarden");
        assert_eq!(src.filename, "databases/x.sql");
        assert_eq!(src.fail_on_stderr, vec!["FATAL".to_string()]);
        assert_eq!(
            src.env,
            vec![
                ("PGHOST".to_string(), "/run/postgresql".to_string()),
                ("PGPORT".to_string(), "5433".to_string()),
                ("PGUSER".to_string(), "backup".to_string()),
                ("PGPASSWORD".to_string(), "s3cr3t-pg".to_string()),
            ]
        );
        assert_eq!(src.unavailable, None);
        assert!(!shown(&src).contains("s3cr3t-pg"), "{}", shown(&src));

        if let DatabaseKind::Postgres { format, .. } = &mut d.kind {
            *format = PgFormat::Custom;
        }
        let src = build(&d, &tools(&["pg_dump"]), &exe);
        assert_eq!(
            src.args,
            vec![
                "--no-password",
                "--format=custom",
                "--exclude-table=sessions",
                "--",
                "vaultwarden"
            ]
        );
    }

    #[test]
    fn postgres_all_databases_uses_pg_dumpall() {
        let d = db(DatabaseKind::Postgres {
            database: None,
            host: None,
            port: None,
            user: Some("postgres".into()),
            password: None,
            format: PgFormat::Plain,
        });
        let src = build(&d, &tools(&["pg_dump", "pg_dumpall"]), &exe);
        assert_eq!(src.program, "/opt/bin/pg_dumpall");
        assert_eq!(src.args, vec!["--no-password"]);
        assert_eq!(src.display, "pg_dumpall");
        assert_eq!(
            src.env,
            vec![("PGUSER".to_string(), "postgres".to_string())]
        );
        assert_eq!(describe(&d), "database source postgres (all databases)");
    }

    #[test]
    fn a_missing_tool_or_password_makes_the_source_unavailable_without_leaking() {
        let d = db(DatabaseKind::Postgres {
            database: Some("app".into()),
            host: None,
            port: None,
            user: None,
            password: Some(SecretSource::File("/nonexistent/bulwark/pg.pass".into())),
            format: PgFormat::Plain,
        });
        let src = build(&d, &tools(&[]), &exe);
        let why = src.unavailable.clone().unwrap();
        assert!(why.contains("pg_dump was not found"), "{why}");
        assert!(why.contains("/nonexistent/bulwark/pg.pass"), "{why}");
        assert!(src.env.iter().all(|(k, _)| k != "PGPASSWORD"));
        assert_eq!(describe(&d), "database source postgres `app`");
    }

    #[test]
    fn mysql_prefers_mariadb_dump_and_passes_the_password_in_the_environment() {
        let tmp = tempfile::tempdir().unwrap();
        let d = db(DatabaseKind::Mysql {
            database: Some("nextcloud".into()),
            host: Some("db.lan".into()),
            port: Some(3307),
            socket: None,
            user: Some("backup".into()),
            password: Some(pw_file(tmp.path(), "my-Secret!")),
        });
        let src = build(&d, &tools(&["mariadb-dump", "mysqldump"]), &exe);
        assert_eq!(src.program, "/opt/bin/mariadb-dump");
        assert_eq!(
            src.args,
            vec![
                "--single-transaction",
                "--routines",
                "--events",
                "--triggers",
                "--host=db.lan",
                "--port=3307",
                "--user=backup",
                "--databases",
                "nextcloud"
            ]
        );
        assert_eq!(
            src.env,
            vec![("MYSQL_PWD".to_string(), "my-Secret!".to_string())]
        );
        assert_eq!(src.display, "mariadb-dump nextcloud");
        assert!(!shown(&src).contains("my-Secret!"), "{}", shown(&src));
        assert_eq!(describe(&d), "database source mysql `nextcloud`");
    }

    #[test]
    fn mysql_falls_back_to_mysqldump_and_dumps_everything() {
        let mut d = db(DatabaseKind::Mysql {
            database: None,
            host: None,
            port: None,
            socket: Some("/run/mysqld/mysqld.sock".into()),
            user: Some("root".into()),
            password: None,
        });
        d.options = vec!["--skip-lock-tables".into()];
        let src = build(&d, &tools(&["mysqldump"]), &exe);
        assert_eq!(src.program, "/opt/bin/mysqldump");
        assert_eq!(
            src.args,
            vec![
                "--single-transaction",
                "--routines",
                "--events",
                "--triggers",
                "--socket=/run/mysqld/mysqld.sock",
                "--user=root",
                "--skip-lock-tables",
                "--all-databases"
            ]
        );
        assert!(src.env.is_empty());
        assert_eq!(src.display, "mysqldump --all-databases");
        let none = build(&d, &tools(&[]), &exe);
        assert!(none
            .unavailable
            .unwrap()
            .contains("neither mariadb-dump nor mysqldump"));
    }

    #[test]
    fn mysql_password_env_unset_is_a_clear_error() {
        let d = db(DatabaseKind::Mysql {
            database: Some("x".into()),
            host: None,
            port: None,
            socket: None,
            user: None,
            password: Some(SecretSource::Env("BULWARK_TEST_SURELY_UNSET_PW".into())),
        });
        let src = build(&d, &tools(&["mysqldump"]), &exe);
        let why = src.unavailable.unwrap();
        assert!(
            why.contains("cannot load its password")
                && why.contains("BULWARK_TEST_SURELY_UNSET_PW"),
            "{why}"
        );
    }

    #[test]
    fn sqlite_runs_this_binary() {
        let d = db(DatabaseKind::Sqlite {
            path: "/var/lib/vaultwarden/db.sqlite3".into(),
        });
        let src = build(&d, &tools(&[]), &exe);
        assert_eq!(src.program, "/usr/bin/bulwark");
        assert_eq!(
            src.args,
            vec!["sqlite-backup", "/var/lib/vaultwarden/db.sqlite3"]
        );
        assert!(src.env.is_empty());
        assert_eq!(src.unavailable, None);
        assert_eq!(
            describe(&d),
            "database source sqlite `/var/lib/vaultwarden/db.sqlite3`"
        );
    }

    #[test]
    fn tools_are_found_on_path_first_then_in_the_newest_postgresql_lib() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let exe_at = |p: &Path| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let lib = tmp.path().join("lib");
        for v in ["9.6", "13", "15"] {
            exe_at(&lib.join(v).join("bin/pg_dump"));
        }
        // a higher version without pg_dump, and a non-version directory
        std::fs::create_dir_all(lib.join("16/bin")).unwrap();
        exe_at(&lib.join("extra/bin/pg_dump"));
        let empty = tmp.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert_eq!(
            find_tool("pg_dump", Some(empty.as_os_str()), &lib),
            Some(lib.join("15/bin/pg_dump"))
        );
        let bin = tmp.path().join("bin");
        exe_at(&bin.join("pg_dump"));
        let path = std::env::join_paths([&empty, &bin]).unwrap();
        assert_eq!(
            find_tool("pg_dump", Some(&path), &lib),
            Some(bin.join("pg_dump"))
        );
        // not executable: not a candidate
        std::fs::write(empty.join("mysqldump"), "x").unwrap();
        assert_eq!(find_tool("mysqldump", Some(empty.as_os_str()), &lib), None);
        assert_eq!(
            find_tool("pg_dumpall", None, &tmp.path().join("nope")),
            None
        );
    }
}
