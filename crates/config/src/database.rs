//! `[[jobs.NAME.databases]]`: database sources, dumped by their tool (or
//! copied through SQLite's backup API) and streamed into the snapshot.
//!
//! ```toml
//! [[jobs.nas.databases]]
//! type = "postgres"            # or "mysql", "sqlite"
//! database = "vaultwarden"     # postgres/mysql: leave out for all databases
//! user = "postgres"
//! format = "custom"            # postgres only: "plain" (default) or "custom"
//! ```

use std::{
    ops::Range,
    path::{Path, PathBuf},
};

use serde_spanned::Spanned;

use crate::{
    fields::{secret, stderr_patterns, valid_snapshot_filename, Claim},
    raw::RawDatabase,
    read::{closest, Ctx},
    DatabaseKind, DatabaseSource, PgFormat,
};

/// The engines, as `type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Postgres,
    Mysql,
    Sqlite,
}

/// Every key of a database table except `type` and `filename` (which apply
/// to all engines).
const KEYS: &[&str] = &[
    "database",
    "host",
    "port",
    "user",
    "password_file",
    "password_env",
    "format",
    "socket",
    "path",
    "options",
    "fail_on_stderr",
];

/// Accepted `type` values.
const TYPES: &[&str] = &["postgres", "postgresql", "mysql", "mariadb", "sqlite"];

impl Engine {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::Mysql),
            "sqlite" => Some(Self::Sqlite),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Sqlite => "sqlite",
        }
    }

    /// The keys (besides `type` and `filename`) this engine takes.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Postgres => &[
                "database",
                "host",
                "port",
                "user",
                "password_file",
                "password_env",
                "format",
                "options",
                "fail_on_stderr",
            ],
            Self::Mysql => &[
                "database",
                "host",
                "port",
                "socket",
                "user",
                "password_file",
                "password_env",
                "options",
                "fail_on_stderr",
            ],
            Self::Sqlite => &["path"],
        }
    }

    /// Why `key` does not apply, when there is more to say than the list.
    fn why_not(self, key: &str) -> Option<&'static str> {
        Some(match (self, key) {
            (Self::Postgres | Self::Mysql, "path") => {
                "`path` is for sqlite database files; a server is reached with `host`, `port`, `user` and `database`"
            }
            (Self::Postgres, "socket") => "for a postgres socket, give its directory as `host`, e.g. host = \"/run/postgresql\"",
            (Self::Mysql, "format") => "only postgres has dump formats; mysql dumps are always SQL",
            (Self::Sqlite, "database" | "host" | "port" | "user" | "socket") => {
                "a sqlite database is one file: give it as path = \"/var/lib/app/db.sqlite\""
            }
            (Self::Sqlite, "password_file" | "password_env") => "a sqlite database file has no password",
            (Self::Sqlite, "options" | "fail_on_stderr") => {
                "sqlite is copied through SQLite's backup API, not by a dump tool; remove it"
            }
            (Self::Sqlite, "format") => "a sqlite copy is the database file itself",
            _ => return None,
        })
    }
}

/// The span of each key that is set.
fn set_keys(r: &RawDatabase) -> Vec<(&'static str, Range<usize>)> {
    let spans = [
        r.database.as_ref().map(Spanned::span),
        r.host.as_ref().map(Spanned::span),
        r.port.as_ref().map(Spanned::span),
        r.user.as_ref().map(Spanned::span),
        r.password_file.as_ref().map(Spanned::span),
        r.password_env.as_ref().map(Spanned::span),
        r.format.as_ref().map(Spanned::span),
        r.socket.as_ref().map(Spanned::span),
        r.path.as_ref().map(Spanned::span),
        r.options.as_ref().map(Spanned::span),
        r.fail_on_stderr.as_ref().map(Spanned::span),
    ];
    KEYS.iter()
        .zip(spans)
        .filter_map(|(k, s)| s.map(|s| (*k, s)))
        .collect()
}

/// A string key that, when present, must not be empty.
fn non_empty(
    cx: &mut Ctx<'_>,
    v: Option<&Spanned<String>>,
    key: &str,
    hint: &str,
) -> Option<String> {
    let v = v?;
    if v.get_ref().trim().is_empty() {
        cx.err_at(v, format!("`{key}` is empty"), hint);
        return None;
    }
    Some(v.get_ref().clone())
}

/// An absolute path key.
fn absolute(cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str, example: &str) -> Option<PathBuf> {
    if !Path::new(v.get_ref()).is_absolute() {
        cx.err_at(
            v,
            format!("`{key}` must be an absolute path"),
            format!("e.g. {key} = \"{example}\""),
        );
        return None;
    }
    Some(PathBuf::from(v.get_ref()))
}

/// One database source of job `jname`: the validated source (None if
/// anything was reported) and where it writes in the snapshot (None if that
/// can't be known).
pub(crate) fn database(
    cx: &mut Ctx<'_>,
    jname: &str,
    d: &Spanned<RawDatabase>,
    clean: bool,
    base: &Path,
) -> (Option<DatabaseSource>, Option<Claim>) {
    let r = d.get_ref();
    let before = cx.diags.len();
    let engine = match &r.kind {
        None => {
            if clean {
                cx.err_at(
                    d,
                    format!("a database source of job `{jname}` has no `type`"),
                    "add type = \"postgres\", \"mysql\" or \"sqlite\"",
                );
            }
            None
        }
        Some(t) => {
            let engine = Engine::parse(t.get_ref());
            if engine.is_none() {
                let hint = match closest(t.get_ref(), TYPES) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => "use \"postgres\", \"mysql\" or \"sqlite\" (\"postgresql\" and \"mariadb\" work too)".into(),
                };
                cx.err_at(t, format!("unknown database type `{}`", t.get_ref()), hint);
            }
            engine
        }
    };
    if let Some(e) = engine {
        for (key, span) in set_keys(r) {
            if !e.keys().contains(&key) {
                let hint = e.why_not(key).map_or_else(
                    || {
                        format!(
                            "a {} source takes: type, {}, filename",
                            e.name(),
                            e.keys().join(", ")
                        )
                    },
                    str::to_string,
                );
                cx.err(
                    span,
                    format!("`{key}` does not apply to a {} database", e.name()),
                    Some(hint),
                );
            }
        }
    }
    let port = r
        .port
        .as_ref()
        .and_then(|p| match u16::try_from(*p.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                let example = if engine == Some(Engine::Mysql) {
                    3306
                } else {
                    5432
                };
                cx.err_at(
                    p,
                    "`port` must be 1-65535",
                    format!("e.g. port = {example}, or remove it for the default"),
                );
                None
            }
        });
    let name = non_empty(
        cx,
        r.database.as_ref(),
        "database",
        "name a database, or remove the key to dump all of them",
    );
    let host = non_empty(
        cx,
        r.host.as_ref(),
        "host",
        "give a host name, or remove the key to use the local socket",
    );
    let user = non_empty(
        cx,
        r.user.as_ref(),
        "user",
        "give a user name, or remove the key for the tool's default",
    );
    let password = secret(
        cx,
        r.password_file.as_ref(),
        r.password_env.as_ref(),
        "password",
        base,
    )
    .ok()
    .flatten();
    let format = match &r.format {
        None => PgFormat::Plain,
        Some(f) => match f.get_ref().as_str() {
            "plain" => PgFormat::Plain,
            "custom" => {
                if r.database.is_none() && engine == Some(Engine::Postgres) {
                    cx.err_at(
                        f,
                        "format = \"custom\" needs a `database`",
                        "without `database` every database is dumped by pg_dumpall, which writes only plain SQL: add database = \"NAME\", or remove `format`",
                    );
                }
                PgFormat::Custom
            }
            _ => {
                cx.err_at(
                    f,
                    "`format` must be \"plain\" or \"custom\"",
                    "plain: SQL text, restored with psql; custom: pg_dump's archive, restored with pg_restore",
                );
                PgFormat::Plain
            }
        },
    };
    let socket = r
        .socket
        .as_ref()
        .and_then(|s| absolute(cx, s, "socket", "/run/mysqld/mysqld.sock"));
    let path = match &r.path {
        Some(p) => absolute(cx, p, "path", "/var/lib/app/db.sqlite").and_then(|abs| {
            if abs.file_name().is_none() {
                cx.err_at(
                    p,
                    "`path` does not name a file",
                    "give the database file, e.g. path = \"/var/lib/app/db.sqlite\"",
                );
                return None;
            }
            Some(abs)
        }),
        None => {
            if clean && engine == Some(Engine::Sqlite) {
                cx.err_at(
                    d,
                    format!("a sqlite source of job `{jname}` has no `path`"),
                    "add path = \"/var/lib/app/db.sqlite\" (the live database file)",
                );
            }
            None
        }
    };
    let options: Vec<String> = r
        .options
        .as_ref()
        .map(|o| {
            o.get_ref()
                .iter()
                .filter_map(|v| {
                    if v.get_ref().is_empty() {
                        cx.err_at(v, "empty argument in `options`", "remove it");
                        return None;
                    }
                    Some(v.get_ref().clone())
                })
                .collect()
        })
        .unwrap_or_default();
    let fail_on_stderr = r
        .fail_on_stderr
        .as_ref()
        .map(|p| stderr_patterns(cx, p.get_ref()))
        .unwrap_or_default();

    // Where it writes: `filename`, or a default from the engine and database.
    let claim = match (&r.filename, engine) {
        (Some(f), _) => {
            if valid_snapshot_filename(f.get_ref()) {
                Some(Claim {
                    at: f.span(),
                    filename: f.get_ref().clone(),
                    database: true,
                })
            } else {
                cx.err_at(
                    f,
                    format!("`{}` is not a valid filename inside the snapshot", f.get_ref()),
                    "use a relative path without `.` or `..` components, e.g. databases/postgres/app.sql",
                );
                None
            }
        }
        (None, Some(e)) => {
            default_filename(cx, e, r, format, path.as_deref()).map(|filename| Claim {
                at: d.span(),
                filename,
                database: true,
            })
        }
        (None, None) => None,
    };

    let valid = cx.diags.len() == before && clean;
    let source = match (engine, &claim) {
        (Some(engine), Some(claim)) if valid => {
            let kind = match engine {
                Engine::Postgres => Some(DatabaseKind::Postgres {
                    database: name,
                    host,
                    port,
                    user,
                    password,
                    format,
                }),
                Engine::Mysql => Some(DatabaseKind::Mysql {
                    database: name,
                    host,
                    port,
                    socket,
                    user,
                    password,
                }),
                Engine::Sqlite => path.map(|path| DatabaseKind::Sqlite { path }),
            };
            kind.map(|kind| DatabaseSource {
                kind,
                filename: claim.filename.clone(),
                options,
                fail_on_stderr,
            })
        }
        _ => None,
    };
    (source, claim)
}

/// `databases/postgres/NAME.sql` (`.dump` for the custom format),
/// `databases/postgres/all.sql`, `databases/mysql/NAME.sql` / `all.sql`,
/// `databases/sqlite/FILE_NAME`. None (and, for a database name that gives
/// no valid file name, a diagnostic) when it can't be derived.
fn default_filename(
    cx: &mut Ctx<'_>,
    engine: Engine,
    r: &RawDatabase,
    format: PgFormat,
    path: Option<&Path>,
) -> Option<String> {
    let dir = format!("databases/{}", engine.name());
    let filename = match engine {
        Engine::Sqlite => format!("{dir}/{}", path?.file_name()?.to_string_lossy()),
        Engine::Postgres | Engine::Mysql => {
            let ext = if engine == Engine::Postgres && format == PgFormat::Custom {
                "dump"
            } else {
                "sql"
            };
            match &r.database {
                None => format!("{dir}/all.{ext}"),
                Some(db) if db.get_ref().trim().is_empty() => return None,
                Some(db) => {
                    let filename = format!("{dir}/{}.{ext}", db.get_ref());
                    if db.get_ref().contains('/') || !valid_snapshot_filename(&filename) {
                        cx.err_at(
                            db,
                            format!(
                                "the database name `{}` gives no valid default filename",
                                db.get_ref()
                            ),
                            format!("set filename = \"{dir}/NAME.{ext}\" for this source"),
                        );
                        return None;
                    }
                    filename
                }
            }
        }
    };
    Some(filename)
}
